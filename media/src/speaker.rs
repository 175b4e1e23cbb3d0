//! Active-speaker detection from the audio levels publishers put in their RTP packets (RFC 6464,
//! `urn:ietf:params:rtp-hdrext:ssrc-audio-level`). Pure: no clock (time is an argument), no
//! I/O, no logging, and no allocation per packet (a member's state is a fixed-size record,
//! added when its first level arrives).
//!
//! Browsers measure the loudness of every audio packet they send, in -dBov: 0 is full scale,
//! 127 is silence (and what a muted microphone sends). That tells the server who is talking
//! without decoding any Opus. [`RoomSpeakers`] turns the noisy per-packet number into facts a
//! main-video choice can follow without flickering:
//!
//! ```text
//!  level of each packet ──► smoothed ──► louder than -50 dBov for 300 ms ──► wants to speak
//!  (0 loudest..127,         (fast up,    quieter than -55 dBov (or no        │
//!   V flag if trusted)       slow down)  audio at all) for 800 ms ──► stops  ▼
//!                                              room: at most one new speaker per second
//! ```
//!
//! - **Per member**: a member starts speaking when its smoothed level has stayed louder than
//!   the onset threshold for [`ONSET_AFTER`], and stops when it has stayed quieter than the
//!   (lower) release threshold for [`RELEASE_AFTER`]. Two thresholds and two delays: a level
//!   that hovers around one threshold does not toggle anything, a click does not start
//!   anyone, a pause between words does not stop anyone.
//! - **Per room**: at most one member *starts* speaking per [`CHANGE_HOLD`]. An onset that
//!   comes too soon waits, and is granted only if its member is still talking when the hold
//!   ends, so a short interjection never reaches the main video. Stops are not held back:
//!   they never make anyone new the speaker, and a member's stop is already at least
//!   [`RELEASE_AFTER`] after its start.
//! - **Audio that stops arriving** (the browser stopped sending, the leg failed) counts as
//!   quiet: [`RoomSpeakers::tick`] applies the release rule on the loop's timer, so the member
//!   stops [`RELEASE_AFTER`] after its last loud packet even when no packet comes to say so.
//! - **Muted members**: a muted microphone sends level 127, which never starts anyone. A member
//!   the server stops forwarding is [`RoomSpeakers::forget`]-ten by the loop, which reports
//!   that it stopped speaking and feeds it nothing until forwarding resumes.

use std::time::{Duration, Instant};

use rtc::rtp;

use crate::router::MemberKey;

/// The RFC 6464 header extension: client-to-mixer audio level.
pub(crate) const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// 127 (-127 dBov): RFC 6464's value for silence, and what a muted source sends.
const SILENCE: u8 = 127;

/// Louder than -50 dBov (a level below 50) starts the onset count. Speech picked up by a
/// headset or laptop microphone after the browser's gain control sits around -20 to -40 dBov;
/// a room behind the browser's noise suppression stays below -60 dBov.
const ONSET_LEVEL: f32 = 50.0;
/// Quieter than -55 dBov (a level of 55 or more) starts the release count: 5 dB of
/// hysteresis below the onset threshold, so a level hovering around it decides nothing.
const RELEASE_LEVEL: f32 = 55.0;
/// 300 ms of loud audio make a speaker: longer than a cough, a click or a chair (which the
/// smoothing also flattens), shorter than a spoken word or two.
pub(crate) const ONSET_AFTER: Duration = Duration::from_millis(300);
/// 800 ms of quiet end a speaker: longer than the pauses between words and most pauses
/// between sentences of one turn (200-600 ms), short enough to follow turn-taking.
pub(crate) const RELEASE_AFTER: Duration = Duration::from_millis(800);
/// At most one member starts speaking per second in a room, so the main video, which
/// follows the latest speaker, changes at most once a second when people talk over each other.
pub(crate) const CHANGE_HOLD: Duration = Duration::from_secs(1);
/// Smoothing time constant while the level rises: 50 ms. One loud 20 ms packet (a click, a
/// key) moves the smoothed level less than a third of the way, and it falls back within a few
/// packets; speech from a quiet room crosses the onset threshold within 3 or 4 packets.
const ATTACK: Duration = Duration::from_millis(50);
/// Smoothing time constant while the level falls: 150 ms, so the quiet between syllables
/// (up to about 100 ms) does not break an onset count.
const DECAY: Duration = Duration::from_millis(150);
/// A packet more than 250 ms after the previous one starts afresh: smoothing and onset count
/// say nothing about audio that was not heard. Opus packets are at most 120 ms apart; longer
/// gaps are loss bursts, discontinuous transmission or a stream that had stopped.
const STREAM_GAP: Duration = Duration::from_millis(250);

/// The level and voice-activity flag of a packet's audio-level extension negotiated as `id`.
/// Both the one-byte and the two-byte form carry `V | level` in the first byte.
pub(crate) fn audio_level(header: &rtp::header::Header, id: u8) -> Option<(u8, bool)> {
    let byte = *header
        .extensions
        .iter()
        .find(|e| e.id == id)?
        .payload
        .first()?;
    Some((byte & 0x7F, byte & 0x80 != 0))
}

/// A member started or stopped speaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpeakerChange {
    pub(crate) member: MemberKey,
    pub(crate) speaking: bool,
}

/// What the detector knows about one member: a fixed-size record.
#[derive(Debug, Clone, Copy)]
struct MemberLevel {
    member: MemberKey,
    /// Smoothed level in -dBov (0 loudest, 127 silence).
    smoothed: f32,
    last_packet: Option<Instant>,
    /// Not yet wanting to speak: since when the smoothed level has been above the onset
    /// threshold without a break.
    louder_since: Option<Instant>,
    /// Wanting to speak: the last time the smoothed level was above the release threshold.
    last_loud: Instant,
    /// The member's own debounced decision.
    wants: bool,
    /// What was reported: `wants`, delayed by the room's hold on onsets.
    speaking: bool,
    /// The sender has set the V flag at least once, so it runs a voice-activity detector and
    /// a clear V flag means "no voice". Senders that never set it (no VAD) are judged by
    /// level alone; browsers without discontinuous transmission set it on every packet.
    vad_seen: bool,
}

impl MemberLevel {
    fn new(member: MemberKey, now: Instant) -> Self {
        MemberLevel {
            member,
            smoothed: f32::from(SILENCE),
            last_packet: None,
            louder_since: None,
            last_loud: now,
            wants: false,
            speaking: false,
            vad_seen: false,
        }
    }

    fn hear(&mut self, level: u8, voice: bool, now: Instant) {
        self.vad_seen |= voice;
        let level = if self.vad_seen && !voice {
            SILENCE
        } else {
            level.min(SILENCE)
        };
        let level = f32::from(level);
        match self.last_packet {
            Some(last) if now.saturating_duration_since(last) <= STREAM_GAP => {
                self.smoothed = smooth(self.smoothed, level, now.saturating_duration_since(last));
            }
            _ => {
                self.smoothed = level;
                self.louder_since = None;
            }
        }
        self.last_packet = Some(now);
        if self.wants {
            if self.smoothed < RELEASE_LEVEL {
                self.last_loud = now;
            }
        } else if self.smoothed < ONSET_LEVEL {
            let since = *self.louder_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= ONSET_AFTER {
                self.wants = true;
                self.last_loud = now;
            }
        } else {
            self.louder_since = None;
        }
    }

    /// The release rule, on a packet or a tick. Returns whether a reported speaker stopped.
    fn release_if_quiet(&mut self, now: Instant) -> bool {
        if !self.wants || now.saturating_duration_since(self.last_loud) < RELEASE_AFTER {
            return false;
        }
        self.wants = false;
        self.louder_since = None;
        std::mem::replace(&mut self.speaking, false)
    }

    /// Still talking right now: an onset held back by the room may be granted.
    fn talking(&self, now: Instant) -> bool {
        self.wants
            && self.smoothed < RELEASE_LEVEL
            && self
                .last_packet
                .is_some_and(|t| now.saturating_duration_since(t) <= STREAM_GAP)
    }
}

/// First-order low-pass of the level over the time since the previous packet (the RC filter
/// `alpha = dt / (tau + dt)`), so 10 ms and 60 ms packetisation smooth alike. Rising and
/// falling levels have their own time constants (an envelope follower).
fn smooth(previous: f32, level: f32, elapsed: Duration) -> f32 {
    let tau = if level < previous { ATTACK } else { DECAY };
    let dt = elapsed.as_secs_f32();
    let alpha = dt / (tau.as_secs_f32() + dt);
    previous + alpha * (level - previous)
}

/// Who is speaking in one room.
#[derive(Debug, Default)]
pub(crate) struct RoomSpeakers {
    /// A handful of members per room: a linear scan.
    members: Vec<MemberLevel>,
    /// When a member last started speaking.
    last_onset: Option<Instant>,
}

impl RoomSpeakers {
    /// Feeds the audio level of one packet of `member` (`level` in -dBov, 0 loudest; `voice`
    /// the V flag). Returns the member's change, if this packet made one. The first packet of
    /// a member adds its record; no other call allocates.
    pub(crate) fn on_level(
        &mut self,
        member: MemberKey,
        level: u8,
        voice: bool,
        now: Instant,
    ) -> Option<SpeakerChange> {
        let hold_over = self.hold_over(now);
        let index = match self.members.iter().position(|m| m.member == member) {
            Some(index) => index,
            None => {
                self.members.push(MemberLevel::new(member, now));
                self.members.len() - 1
            }
        };
        let m = self.members.get_mut(index)?;
        // A release that fell due while no packet came (no tick ran), then this packet.
        let mut stopped = m.release_if_quiet(now);
        m.hear(level, voice, now);
        stopped |= m.release_if_quiet(now);
        if stopped {
            return Some(SpeakerChange {
                member,
                speaking: false,
            });
        }
        // An onset the hold kept waiting is granted only while the member still talks.
        if !m.speaking && hold_over && m.talking(now) {
            m.speaking = true;
            self.last_onset = Some(now);
            return Some(SpeakerChange {
                member,
                speaking: true,
            });
        }
        None
    }

    /// Timer work, every few tens of milliseconds: stops members whose audio went quiet or
    /// stopped arriving, and grants an onset the room's hold kept waiting.
    pub(crate) fn tick(&mut self, now: Instant, mut changed: impl FnMut(SpeakerChange)) {
        for m in &mut self.members {
            if m.release_if_quiet(now) {
                changed(SpeakerChange {
                    member: m.member,
                    speaking: false,
                });
            }
        }
        if !self.hold_over(now) {
            return;
        }
        // The loudest of those still waiting.
        let next = self
            .members
            .iter_mut()
            .filter(|m| !m.speaking && m.talking(now))
            .min_by(|a, b| a.smoothed.total_cmp(&b.smoothed));
        if let Some(m) = next {
            m.speaking = true;
            self.last_onset = Some(now);
            changed(SpeakerChange {
                member: m.member,
                speaking: true,
            });
        }
    }

    /// Forgets a member: it left, or its audio is no longer forwarded. Returns whether it was
    /// speaking, in which case the caller reports that it stopped.
    pub(crate) fn forget(&mut self, member: MemberKey) -> bool {
        match self.members.iter().position(|m| m.member == member) {
            Some(index) => self.members.swap_remove(index).speaking,
            None => false,
        }
    }

    /// No member left: the room's record can go.
    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn hold_over(&self, now: Instant) -> bool {
        self.last_onset
            .is_none_or(|t| now.saturating_duration_since(t) >= CHANGE_HOLD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOUD: u8 = 20;
    const PACKET: Duration = Duration::from_millis(20);
    const TICK: Duration = Duration::from_millis(50);

    /// A room on virtual time: packets every 20 ms from each source, a tick every 50 ms, as
    /// the media loop does.
    struct Sim {
        room: RoomSpeakers,
        t0: Instant,
        /// Milliseconds since `t0`.
        ms: u64,
        events: Vec<(u64, SpeakerChange)>,
    }

    impl Sim {
        fn new() -> Self {
            Sim {
                room: RoomSpeakers::default(),
                t0: Instant::now(),
                ms: 0,
                events: Vec::new(),
            }
        }

        fn now(&self) -> Instant {
            self.t0 + Duration::from_millis(self.ms)
        }

        /// Runs for `ms` milliseconds with each source `(member, level, voice)` sending.
        fn run(&mut self, ms: u64, sources: &[(MemberKey, u8, bool)]) {
            let end = self.ms + ms;
            while self.ms < end {
                self.ms += 10;
                let now = self.now();
                if self.ms.is_multiple_of(PACKET.as_millis() as u64) {
                    for &(member, level, voice) in sources {
                        if let Some(change) = self.room.on_level(member, level, voice, now) {
                            self.events.push((self.ms, change));
                        }
                    }
                }
                if self.ms.is_multiple_of(TICK.as_millis() as u64) {
                    let (ms, events) = (self.ms, &mut self.events);
                    self.room.tick(now, |change| events.push((ms, change)));
                }
            }
        }

        fn quiet(&mut self, ms: u64) {
            self.run(ms, &[]);
        }

        fn changes(&self) -> Vec<(MemberKey, bool)> {
            self.events
                .iter()
                .map(|(_, c)| (c.member, c.speaking))
                .collect()
        }

        fn at(&self, member: MemberKey, speaking: bool) -> Option<u64> {
            self.events
                .iter()
                .find(|(_, c)| c.member == member && c.speaking == speaking)
                .map(|(ms, _)| *ms)
        }
    }

    #[test]
    fn onset_needs_300_ms_of_loud_audio() {
        let mut sim = Sim::new();
        // A 200 ms burst, then quiet: nobody.
        sim.run(200, &[(1, LOUD, true)]);
        sim.run(1000, &[(1, SILENCE, true)]);
        assert!(sim.events.is_empty(), "{:?}", sim.events);
        // Talking: speaking 300 ms after the level crossed the threshold.
        let start = sim.ms;
        sim.run(250, &[(1, LOUD, true)]);
        assert!(sim.events.is_empty());
        sim.run(500, &[(1, LOUD, true)]);
        // From silence the smoothed level needs 4 packets to cross the threshold.
        let onset = sim.at(1, true).expect("speaking") - start;
        assert!((300..=400).contains(&onset), "onset after {onset} ms");
        assert_eq!(sim.changes(), vec![(1, true)]);
    }

    #[test]
    fn release_comes_after_800_ms_of_quiet_and_pauses_do_not_break_a_turn() {
        let mut sim = Sim::new();
        sim.run(1000, &[(1, LOUD, true)]);
        // A 500 ms pause, a pause between sentences: still speaking.
        sim.run(500, &[(1, SILENCE, true)]);
        sim.run(500, &[(1, LOUD, true)]);
        // Louder than the release threshold but not the onset one: keeps the turn.
        sim.run(1500, &[(1, 52, true)]);
        assert_eq!(sim.changes(), vec![(1, true)]);
        let quiet_from = sim.ms;
        sim.run(2000, &[(1, SILENCE, true)]);
        assert_eq!(sim.changes(), vec![(1, true), (1, false)]);
        // The smoothed level takes a few packets to fall, then 800 ms.
        let release = sim.at(1, false).expect("stopped") - quiet_from;
        assert!(
            (800..=1000).contains(&release),
            "released after {release} ms"
        );
    }

    #[test]
    fn two_talkers_do_not_make_the_speaker_flicker() {
        let mut sim = Sim::new();
        // A talks; B interjects for half a second just after A started: B's onset falls in
        // the hold, and B has gone quiet again when the hold ends, so B never shows.
        sim.run(500, &[(1, LOUD, true), (2, SILENCE, true)]);
        sim.run(500, &[(1, LOUD, true), (2, LOUD, true)]);
        sim.run(2000, &[(1, LOUD, true), (2, SILENCE, true)]);
        assert_eq!(sim.changes(), vec![(1, true)], "{:?}", sim.events);
        // Both talk over each other, alternating every 400 ms: B starts once, no flicker.
        for _ in 0..5 {
            sim.run(400, &[(1, SILENCE, true), (2, LOUD, true)]);
            sim.run(400, &[(1, LOUD, true), (2, SILENCE, true)]);
        }
        assert_eq!(sim.changes(), vec![(1, true), (2, true)]);
        // Three start within 100 ms of each other: onsets come one per second.
        let mut sim = Sim::new();
        sim.run(40, &[(1, LOUD, true)]);
        sim.run(40, &[(1, LOUD, true), (2, LOUD, true)]);
        sim.run(3000, &[(1, LOUD, true), (2, LOUD, true), (3, LOUD, true)]);
        let onsets: Vec<u64> = sim
            .events
            .iter()
            .filter(|(_, c)| c.speaking)
            .map(|(ms, _)| *ms)
            .collect();
        assert_eq!(onsets.len(), 3, "{:?}", sim.events);
        for pair in onsets.windows(2) {
            assert!(pair[1] - pair[0] >= 1000, "onsets {onsets:?}");
        }
    }

    #[test]
    fn audio_that_stops_arriving_stops_speaking_on_a_tick() {
        let mut sim = Sim::new();
        sim.run(1000, &[(1, LOUD, true)]);
        let last_packet = sim.ms;
        sim.quiet(700);
        assert_eq!(sim.changes(), vec![(1, true)]);
        sim.quiet(300);
        assert_eq!(sim.changes(), vec![(1, true), (1, false)]);
        let stopped = sim.at(1, false).expect("stopped") - last_packet;
        assert!((800..=850).contains(&stopped), "stopped after {stopped} ms");
        // Audio coming back after the gap needs a fresh onset.
        sim.run(200, &[(1, LOUD, true)]);
        assert_eq!(sim.events.len(), 2);
        sim.run(200, &[(1, LOUD, true)]);
        assert_eq!(sim.events.len(), 3);
    }

    #[test]
    fn a_gap_does_not_count_towards_an_onset() {
        let mut room = RoomSpeakers::default();
        let t0 = Instant::now();
        assert_eq!(room.on_level(1, LOUD, true, t0), None);
        // No packet for a second, then one loud packet: 200 ms heard, not 1 s.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(room.on_level(1, LOUD, true, t1), None);
        let t2 = t1 + Duration::from_millis(200);
        for ms in (20..=200).step_by(20) {
            assert_eq!(
                room.on_level(1, LOUD, true, t1 + Duration::from_millis(ms)),
                None
            );
        }
        assert_eq!(
            room.on_level(1, LOUD, true, t2 + Duration::from_millis(100)),
            Some(SpeakerChange {
                member: 1,
                speaking: true
            })
        );
    }

    #[test]
    fn a_muted_microphone_never_speaks() {
        let mut sim = Sim::new();
        // What a browser sends for a disabled track: silence.
        sim.run(5000, &[(1, SILENCE, false)]);
        assert!(sim.events.is_empty());
        // A talker who mutes stops speaking.
        sim.run(1000, &[(1, LOUD, true)]);
        sim.run(2000, &[(1, SILENCE, false)]);
        assert_eq!(sim.changes(), vec![(1, true), (1, false)]);
    }

    #[test]
    fn a_steady_noise_floor_never_speaks() {
        let mut sim = Sim::new();
        // -52 dBov: between the two thresholds. -50 dBov exactly: not louder than it.
        sim.run(10_000, &[(1, 52, true), (2, 50, true)]);
        // A noise floor with a click every 200 ms.
        sim.run(500, &[(3, 60, true)]);
        for _ in 0..25 {
            sim.run(20, &[(3, 5, true)]);
            sim.run(180, &[(3, 60, true)]);
        }
        assert!(sim.events.is_empty(), "{:?}", sim.events);
    }

    #[test]
    fn a_clear_voice_flag_is_trusted_only_from_senders_that_set_it() {
        let mut sim = Sim::new();
        // Member 1's detector says "voice" once, then "no voice" on loud packets (typing,
        // music): not speaking. Member 2 never sets the flag: judged by level.
        sim.run(20, &[(1, LOUD, true)]);
        sim.run(3000, &[(1, LOUD, false), (2, LOUD, false)]);
        assert_eq!(sim.changes(), vec![(2, true)]);
    }

    #[test]
    fn forgetting_a_speaker_reports_that_it_stopped() {
        let mut sim = Sim::new();
        sim.run(1000, &[(1, LOUD, true), (2, SILENCE, true)]);
        assert!(sim.room.forget(1));
        assert!(!sim.room.forget(1));
        assert!(!sim.room.forget(2));
        assert!(sim.room.is_empty());
        // Nothing more about a forgotten member.
        sim.quiet(2000);
        assert_eq!(sim.changes(), vec![(1, true)]);
    }

    #[test]
    fn reads_the_negotiated_audio_level_extension() {
        let mut header = rtp::header::Header::default();
        assert_eq!(audio_level(&header, 1), None);
        header
            .set_extension(3, bytes::Bytes::from_static(&[0x80 | 42]))
            .expect("extension");
        header
            .set_extension(1, bytes::Bytes::from_static(&[0, 0, 0]))
            .expect("extension");
        assert_eq!(audio_level(&header, 3), Some((42, true)));
        assert_eq!(audio_level(&header, 1), Some((0, false)));
        assert_eq!(audio_level(&header, 2), None);
        header
            .set_extension(4, bytes::Bytes::new())
            .expect("extension");
        assert_eq!(audio_level(&header, 4), None);
    }
}
