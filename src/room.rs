//! A conference room's membership state, as pure code: who is in, their
//! microphone, camera and speaking state, the main video, and the numbered
//! event log. Time is an input; the shell in [`crate::rooms`] owns one `Room`
//! per conference in one task.
//!
//! Main video: the member a chair pinned, else the chair's camera (when on),
//! else the active speaker, else the member who joined first with a camera on.

use std::collections::{BTreeMap, VecDeque};

use confgate_signalling::events::{
    ConferenceEvent, EventKind, LeaveReason, MainVideoCause, MemberRole, MemberView, Snapshot,
};

/// Events kept for clients that reconnect and ask for what they missed;
/// older gaps are filled with a snapshot instead.
pub const LOG_CAPACITY: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    #[error("not a member of this conference")]
    NotAMember,
    #[error("no member {0} in this conference")]
    NoSuchMember(String),
    #[error("only the conference's chair may do this")]
    NotChair,
}

#[derive(Debug)]
pub struct Room {
    conf_id: String,
    conf_name: String,
    chair_user_id: Option<String>,
    state: u16,
    seq: u64,
    members: BTreeMap<String, MemberView>,
    pinned: Option<String>,
    speaker: Option<String>,
    main_video: (Option<String>, MainVideoCause),
    log: VecDeque<ConferenceEvent>,
}

impl Room {
    pub fn new(
        conf_id: String,
        conf_name: String,
        chair_user_id: Option<String>,
        state: u16,
    ) -> Room {
        Room {
            conf_id,
            conf_name,
            chair_user_id,
            state,
            seq: 0,
            members: BTreeMap::new(),
            pinned: None,
            speaker: None,
            main_video: (None, MainVideoCause::None),
            log: VecDeque::new(),
        }
    }

    pub fn conf_id(&self) -> &str {
        &self.conf_id
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn is_member(&self, user_id: &str) -> bool {
        self.members.contains_key(user_id)
    }

    pub fn member(&self, user_id: &str) -> Option<&MemberView> {
        self.members.get(user_id)
    }

    pub fn members(&self) -> impl Iterator<Item = &MemberView> {
        self.members.values()
    }

    pub fn is_chair(&self, user_id: &str) -> bool {
        self.chair_user_id.as_deref() == Some(user_id)
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            conf_id: self.conf_id.clone(),
            conf_name: self.conf_name.clone(),
            seq: self.seq,
            state: self.state,
            members: self.members.values().cloned().collect(),
            main_video: self.main_video.0.clone(),
            main_video_cause: self.main_video.1,
        }
    }

    /// Continues the numbering after `seq` (the last stored event of an
    /// earlier room of this conference). Only before the first event.
    pub fn resume_after(&mut self, seq: u64) {
        if self.log.is_empty() && self.seq < seq {
            self.seq = seq;
        }
    }

    /// Rebuilds the state an earlier room of this conference left, from its
    /// stored events in order (a restart, or a node that took the conference
    /// over from a dead one). Events at or below the current number are
    /// skipped; nothing is logged or emitted.
    pub fn replay(&mut self, event: &ConferenceEvent) {
        if event.seq <= self.seq || event.conf_id != self.conf_id {
            return;
        }
        self.seq = event.seq;
        match &event.kind {
            EventKind::MemberJoined { member } => {
                self.members.insert(member.user_id.clone(), member.clone());
            }
            EventKind::MemberLeft { user_id, .. } => {
                self.members.remove(user_id);
                if self.pinned.as_deref() == Some(user_id) {
                    self.pinned = None;
                }
                if self.speaker.as_deref() == Some(user_id) {
                    self.speaker = None;
                }
            }
            EventKind::MemberUpdated {
                user_id,
                audio_muted,
                video_enabled,
                speaking,
                role,
                connected,
            } => {
                if let Some(m) = self.members.get_mut(user_id) {
                    m.audio_muted = *audio_muted;
                    m.video_enabled = *video_enabled;
                    m.speaking = *speaking;
                    m.role = *role;
                    m.connected = *connected;
                }
                if *speaking {
                    self.speaker = Some(user_id.clone());
                }
            }
            EventKind::MainVideoChanged { user_id, cause } => {
                self.pinned = (*cause == MainVideoCause::Pinned)
                    .then(|| user_id.clone())
                    .flatten();
                self.main_video = (user_id.clone(), *cause);
            }
            EventKind::ConferenceStateChanged { state } => self.state = *state,
        }
    }

    /// The sequence numbers the log no longer has but a watcher at `seq`
    /// missed, `(from, to)`, when the rest of what it missed is in the log:
    /// the store may still have them.
    pub fn gap_after(&self, seq: u64) -> Option<(u64, u64)> {
        let first = self.log.front()?.seq;
        (seq < self.seq && seq + 1 < first).then_some((seq + 1, first - 1))
    }

    /// The logged events after `seq`.
    pub fn logged_after(&self, seq: u64) -> Vec<ConferenceEvent> {
        self.log.iter().filter(|e| e.seq > seq).cloned().collect()
    }

    /// The events after `seq`, when the log still has all of them.
    pub fn events_since(&self, seq: u64) -> Option<Vec<ConferenceEvent>> {
        if seq > self.seq {
            return None;
        }
        if seq == self.seq {
            return Some(Vec::new());
        }
        let first = self.log.front()?.seq;
        if seq + 1 < first {
            return None;
        }
        Some(self.log.iter().filter(|e| e.seq > seq).cloned().collect())
    }

    fn emit(&mut self, kind: EventKind, now: i64, out: &mut Vec<ConferenceEvent>) {
        self.seq += 1;
        let event = ConferenceEvent {
            event_id: format!("{}:{}", self.conf_id, self.seq),
            seq: self.seq,
            conf_id: self.conf_id.clone(),
            at: now,
            kind,
        };
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(event.clone());
        out.push(event);
    }

    fn updated(&mut self, user_id: &str, now: i64, out: &mut Vec<ConferenceEvent>) {
        if let Some(m) = self.members.get(user_id) {
            let kind = EventKind::MemberUpdated {
                user_id: m.user_id.clone(),
                audio_muted: m.audio_muted,
                video_enabled: m.video_enabled,
                speaking: m.speaking,
                role: m.role,
                connected: m.connected,
            };
            self.emit(kind, now, out);
        }
    }

    /// Adds a member, or marks a returning one connected. Returns the events.
    pub fn join(
        &mut self,
        user_id: &str,
        name: &str,
        audio_muted: bool,
        video_enabled: bool,
        now: i64,
    ) -> Vec<ConferenceEvent> {
        let mut out = Vec::new();
        if let Some(m) = self.members.get_mut(user_id) {
            if !m.connected {
                m.connected = true;
                self.updated(user_id, now, &mut out);
            }
            return out;
        }
        let role = if self.is_chair(user_id) {
            MemberRole::Chair
        } else {
            MemberRole::Member
        };
        let member = MemberView {
            user_id: user_id.to_string(),
            name: name.to_string(),
            role,
            audio_muted,
            video_enabled,
            speaking: false,
            connected: true,
            joined_at: now,
        };
        self.members.insert(user_id.to_string(), member.clone());
        self.emit(EventKind::MemberJoined { member }, now, &mut out);
        self.choose_main_video(now, &mut out);
        out
    }

    pub fn leave(&mut self, user_id: &str, reason: LeaveReason, now: i64) -> Vec<ConferenceEvent> {
        let mut out = Vec::new();
        if self.members.remove(user_id).is_none() {
            return out;
        }
        if self.pinned.as_deref() == Some(user_id) {
            self.pinned = None;
        }
        if self.speaker.as_deref() == Some(user_id) {
            self.speaker = None;
        }
        self.emit(
            EventKind::MemberLeft {
                user_id: user_id.to_string(),
                reason,
            },
            now,
            &mut out,
        );
        self.choose_main_video(now, &mut out);
        out
    }

    /// The member's page lost or regained its connection.
    pub fn set_connected(
        &mut self,
        user_id: &str,
        connected: bool,
        now: i64,
    ) -> Vec<ConferenceEvent> {
        let mut out = Vec::new();
        if let Some(m) = self.members.get_mut(user_id)
            && m.connected != connected
        {
            m.connected = connected;
            self.updated(user_id, now, &mut out);
        }
        out
    }

    pub fn set_audio(
        &mut self,
        user_id: &str,
        muted: bool,
        now: i64,
    ) -> Result<Vec<ConferenceEvent>, RoomError> {
        let mut out = Vec::new();
        let m = self.members.get_mut(user_id).ok_or(RoomError::NotAMember)?;
        if m.audio_muted != muted {
            m.audio_muted = muted;
            if muted {
                m.speaking = false;
            }
            self.updated(user_id, now, &mut out);
            if muted && self.speaker.as_deref() == Some(user_id) {
                self.choose_main_video(now, &mut out);
            }
        }
        Ok(out)
    }

    pub fn set_video(
        &mut self,
        user_id: &str,
        enabled: bool,
        now: i64,
    ) -> Result<Vec<ConferenceEvent>, RoomError> {
        let mut out = Vec::new();
        let m = self.members.get_mut(user_id).ok_or(RoomError::NotAMember)?;
        if m.video_enabled != enabled {
            m.video_enabled = enabled;
            self.updated(user_id, now, &mut out);
            self.choose_main_video(now, &mut out);
        }
        Ok(out)
    }

    /// The active speaker changed (debounced by the caller).
    pub fn set_speaking(
        &mut self,
        user_id: &str,
        speaking: bool,
        now: i64,
    ) -> Vec<ConferenceEvent> {
        let mut out = Vec::new();
        let Some(m) = self.members.get_mut(user_id) else {
            return out;
        };
        if m.speaking == speaking || (speaking && m.audio_muted) {
            return out;
        }
        m.speaking = speaking;
        self.updated(user_id, now, &mut out);
        if speaking {
            self.speaker = Some(user_id.to_string());
        }
        self.choose_main_video(now, &mut out);
        out
    }

    /// A chair pins a member as everyone's main video, or unpins (`None`).
    pub fn pin(
        &mut self,
        by: &str,
        target: Option<&str>,
        now: i64,
    ) -> Result<Vec<ConferenceEvent>, RoomError> {
        if !self.is_chair(by) {
            return Err(RoomError::NotChair);
        }
        self.pin_as_authority(target, now)
    }

    /// Pins without a chair: the conference system (an external event).
    pub fn pin_as_authority(
        &mut self,
        target: Option<&str>,
        now: i64,
    ) -> Result<Vec<ConferenceEvent>, RoomError> {
        if let Some(t) = target
            && !self.members.contains_key(t)
        {
            return Err(RoomError::NoSuchMember(t.to_string()));
        }
        self.pinned = target.map(str::to_string);
        let mut out = Vec::new();
        self.choose_main_video(now, &mut out);
        Ok(out)
    }

    /// The conference's state changed (ended, started).
    pub fn set_state(&mut self, state: u16, now: i64) -> Vec<ConferenceEvent> {
        let mut out = Vec::new();
        if self.state != state {
            self.state = state;
            self.emit(EventKind::ConferenceStateChanged { state }, now, &mut out);
        }
        out
    }

    fn choose_main_video(&mut self, now: i64, out: &mut Vec<ConferenceEvent>) {
        let chosen = main_video(
            self.pinned.as_deref(),
            self.chair_user_id.as_deref(),
            self.speaker.as_deref(),
            &self.members,
        );
        if chosen != self.main_video {
            self.main_video = chosen.clone();
            self.emit(
                EventKind::MainVideoChanged {
                    user_id: chosen.0,
                    cause: chosen.1,
                },
                now,
                out,
            );
        }
    }
}

/// The main video: pinned, else the chair's camera when on, else the active
/// speaker, else the earliest member with a camera on.
pub fn main_video(
    pinned: Option<&str>,
    chair: Option<&str>,
    speaker: Option<&str>,
    members: &BTreeMap<String, MemberView>,
) -> (Option<String>, MainVideoCause) {
    if let Some(p) = pinned.filter(|p| members.contains_key(*p)) {
        return (Some(p.to_string()), MainVideoCause::Pinned);
    }
    if let Some(c) = chair
        .and_then(|c| members.get(c))
        .filter(|m| m.video_enabled)
    {
        return (Some(c.user_id.clone()), MainVideoCause::Chair);
    }
    if let Some(s) = speaker.filter(|s| members.contains_key(*s)) {
        return (Some(s.to_string()), MainVideoCause::Speaker);
    }
    members
        .values()
        .filter(|m| m.video_enabled)
        .min_by_key(|m| (m.joined_at, m.user_id.clone()))
        .map_or((None, MainVideoCause::None), |m| {
            (Some(m.user_id.clone()), MainVideoCause::Speaker)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_log_rebuilds_the_state() {
        let mut old = Room::new("c".into(), "C".into(), Some("chair".into()), 0);
        let mut log = Vec::new();
        log.extend(old.join("chair", "Chair", false, true, 1));
        log.extend(old.join("a", "A", true, true, 2));
        log.extend(old.join("b", "B", false, false, 3));
        log.extend(old.pin("chair", Some("b"), 4).expect("pin"));
        log.extend(old.set_audio("a", false, 5).expect("unmute"));
        log.extend(old.leave("chair", LeaveReason::Left, 6));
        let mut new = Room::new("c".into(), "C".into(), Some("chair".into()), 0);
        for event in &log {
            new.replay(event);
        }
        new.replay(&log[0]); // already applied: ignored
        let (was, is) = (old.snapshot(), new.snapshot());
        assert_eq!(is.seq, was.seq);
        assert_eq!(is.members, was.members);
        assert_eq!(
            (is.main_video, is.main_video_cause),
            (was.main_video, was.main_video_cause)
        );
        // Numbering goes on; the pin survived.
        let next = new.leave("b", LeaveReason::ConnectionLost, 7);
        assert_eq!(next[0].seq, was.seq + 1);
        assert_ne!(new.snapshot().main_video.as_deref(), Some("b"));
    }

    fn kinds(events: &[ConferenceEvent]) -> Vec<&'static str> {
        events
            .iter()
            .map(|e| match e.kind {
                EventKind::MemberJoined { .. } => "joined",
                EventKind::MemberLeft { .. } => "left",
                EventKind::MemberUpdated { .. } => "updated",
                EventKind::MainVideoChanged { .. } => "main",
                EventKind::ConferenceStateChanged { .. } => "state",
            })
            .collect()
    }

    fn room() -> Room {
        Room::new("c1".into(), "Weekly".into(), Some("chair".into()), 0)
    }

    #[test]
    fn sequence_numbers_have_no_gaps() {
        let mut r = room();
        let mut all = r.join("a", "A", false, true, 1);
        all.extend(r.join("b", "B", false, true, 2));
        all.extend(r.set_audio("a", true, 3).expect("member"));
        all.extend(r.leave("a", LeaveReason::Left, 4));
        let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
        assert_eq!(r.seq(), seqs.len() as u64);
        assert_eq!(all[0].event_id, "c1:1");
    }

    #[test]
    fn main_video_prefers_pin_then_chair_then_speaker() {
        let mut r = room();
        assert_eq!(kinds(&r.join("a", "A", false, true, 1)), ["joined", "main"]);
        assert_eq!(
            r.snapshot().main_video.as_deref(),
            Some("a"),
            "first camera by default"
        );
        r.join("b", "B", false, true, 2);
        r.set_speaking("b", true, 3);
        assert_eq!(r.snapshot().main_video.as_deref(), Some("b"));
        assert_eq!(r.snapshot().main_video_cause, MainVideoCause::Speaker);
        r.join("chair", "C", false, true, 4);
        assert_eq!(r.snapshot().main_video.as_deref(), Some("chair"));
        assert_eq!(r.snapshot().main_video_cause, MainVideoCause::Chair);
        assert_eq!(r.pin("a", Some("b"), 5), Err(RoomError::NotChair));
        r.pin("chair", Some("a"), 5).expect("pin");
        assert_eq!(r.snapshot().main_video.as_deref(), Some("a"));
        assert_eq!(r.snapshot().main_video_cause, MainVideoCause::Pinned);
        // The pinned member leaves: back to the chair.
        r.leave("a", LeaveReason::Left, 6);
        assert_eq!(r.snapshot().main_video.as_deref(), Some("chair"));
        // The chair's camera goes off: the speaker.
        r.set_video("chair", false, 7).expect("member");
        assert_eq!(r.snapshot().main_video.as_deref(), Some("b"));
        assert_eq!(
            r.pin("chair", Some("nobody"), 8),
            Err(RoomError::NoSuchMember("nobody".into()))
        );
    }

    #[test]
    fn unchanged_state_emits_nothing() {
        let mut r = room();
        r.join("a", "A", false, true, 1);
        assert!(r.set_audio("a", false, 2).expect("member").is_empty());
        assert!(
            r.join("a", "A", false, true, 3).is_empty(),
            "a second join is not a new member"
        );
        assert!(r.leave("zz", LeaveReason::Left, 4).is_empty());
        assert_eq!(r.set_audio("zz", true, 5), Err(RoomError::NotAMember));
        assert!(r.set_speaking("zz", true, 5).is_empty());
    }

    #[test]
    fn muted_members_do_not_speak() {
        let mut r = room();
        r.join("a", "A", true, true, 1);
        assert!(r.set_speaking("a", true, 2).is_empty());
        r.set_audio("a", false, 3).expect("member");
        assert_eq!(kinds(&r.set_speaking("a", true, 4)), ["updated"]);
        let events = r.set_audio("a", true, 5).expect("member");
        assert!(
            !r.member("a").expect("a").speaking,
            "muting stops speaking: {events:?}"
        );
    }

    #[test]
    fn reconnecting_clients_get_what_they_missed_or_a_snapshot() {
        let mut r = room();
        r.join("a", "A", false, true, 1);
        let seen = r.seq();
        r.join("b", "B", false, true, 2);
        r.set_audio("b", true, 3).expect("member");
        let missed = r.events_since(seen).expect("in the log");
        assert_eq!(missed.first().map(|e| e.seq), Some(seen + 1));
        assert_eq!(missed.last().map(|e| e.seq), Some(r.seq()));
        assert_eq!(r.events_since(r.seq()), Some(Vec::new()));
        assert_eq!(
            r.events_since(r.seq() + 1),
            None,
            "a future seq is not ours"
        );
        for i in 0..LOG_CAPACITY as i64 {
            r.set_audio("b", i % 2 == 0, 10 + i).expect("member");
        }
        assert_eq!(r.events_since(seen), None, "too old: snapshot instead");
        let snap = r.snapshot();
        assert_eq!(snap.members.len(), 2);
        assert_eq!(snap.seq, r.seq());
    }

    #[test]
    fn connection_state_is_visible() {
        let mut r = room();
        r.join("a", "A", false, true, 1);
        assert_eq!(kinds(&r.set_connected("a", false, 2)), ["updated"]);
        assert!(!r.member("a").expect("a").connected);
        assert_eq!(
            kinds(&r.join("a", "A", false, true, 3)),
            ["updated"],
            "rejoin reconnects"
        );
        assert!(r.member("a").expect("a").connected);
    }
}
