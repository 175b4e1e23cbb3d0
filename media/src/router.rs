//! The routing table of one media loop: rooms, members, the tracks they publish, and which
//! subscriber connection receives each track. Pure: no sockets, no rtc, no clock (time is an
//! argument), no randomness (new SSRCs are supplied by the caller).
//!
//! The per-packet entry point is [`Router::forward`]: it decides, for one incoming RTP packet,
//! which subscriber connections get a copy and with which SSRC, sequence number, timestamp,
//! payload type and header-extension ids. It allocates nothing; the caller writes the copies.

use std::collections::HashMap;
use std::time::Instant;

use crate::keyframe::{KeyframeRequests, VideoCodec, starts_keyframe};
use crate::rewrite::{ExtensionMap, PayloadTypeMap, SequenceRewriter};
use crate::{MemberId, RoomId};

/// Index of a peer connection in its media loop.
pub(crate) type PeerKey = usize;
/// Index of a member in its media loop's router.
pub(crate) type MemberKey = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Audio,
    Video,
}

impl Kind {
    pub(crate) const ALL: [Kind; 2] = [Kind::Audio, Kind::Video];

    pub(crate) fn index(self) -> usize {
        match self {
            Kind::Audio => 0,
            Kind::Video => 1,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Audio => "audio",
            Kind::Video => "video",
        }
    }
}

/// One negotiated codec of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodecInfo {
    pub(crate) payload_type: u8,
    pub(crate) mime_type: String,
    pub(crate) clock_rate: u32,
    pub(crate) channels: u16,
    pub(crate) fmtp: String,
}

/// Header extensions whose meaning survives forwarding. Per-hop ones (transport-cc,
/// abs-send-time, mid, rid) are regenerated or meaningless on the subscriber leg.
pub(crate) const FORWARDED_EXTENSIONS: [&str; 2] = [
    crate::speaker::AUDIO_LEVEL_URI,
    "urn:3gpp:video-orientation",
];

fn fmtp_param<'a>(fmtp: &'a str, name: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// Whether a subscriber can decode what the publisher sends with `a` when it negotiated `b`.
pub(crate) fn codecs_match(a: &CodecInfo, b: &CodecInfo) -> bool {
    if !a.mime_type.eq_ignore_ascii_case(&b.mime_type) || a.clock_rate != b.clock_rate {
        return false;
    }
    if a.mime_type.eq_ignore_ascii_case("video/h264") {
        fn mode(c: &CodecInfo) -> &str {
            fmtp_param(&c.fmtp, "packetization-mode").unwrap_or("0")
        }
        // profile_idc (first byte of profile-level-id) must agree; the level may differ.
        let profile = |c: &CodecInfo| {
            fmtp_param(&c.fmtp, "profile-level-id")
                .and_then(|p| p.get(0..2))
                .map(str::to_ascii_lowercase)
        };
        return mode(a) == mode(b) && profile(a) == profile(b);
    }
    true
}

pub(crate) fn payload_type_map(
    publisher: &[CodecInfo],
    subscriber: &[CodecInfo],
) -> PayloadTypeMap {
    let mut map = PayloadTypeMap::new();
    for p in publisher {
        if let Some(s) = subscriber.iter().find(|s| codecs_match(p, s)) {
            map.insert(p.payload_type, s.payload_type);
        }
    }
    map
}

pub(crate) fn extension_map(
    publisher: &[(String, u8)],
    subscriber: &[(String, u8)],
) -> ExtensionMap {
    let mut map = ExtensionMap::new();
    for (uri, from) in publisher {
        if !FORWARDED_EXTENSIONS.contains(&uri.as_str()) {
            continue;
        }
        if let Some((_, to)) = subscriber.iter().find(|(u, _)| u == uri) {
            map.insert(*from, *to);
        }
    }
    map
}

/// How one subscriber connection receives one track.
#[derive(Debug, Clone)]
pub(crate) struct Fanout {
    pub(crate) subscriber: PeerKey,
    pub(crate) codecs: Vec<CodecInfo>,
    pub(crate) extensions: Vec<(String, u8)>,
    pub(crate) pt_map: PayloadTypeMap,
    pub(crate) ext_map: ExtensionMap,
    /// The subscriber connection has finished DTLS: packets can be written to it.
    pub(crate) active: bool,
    /// Video is held back until a keyframe starts.
    pub(crate) waiting_keyframe: bool,
}

/// A track a member publishes, as forwarded to the others.
#[derive(Debug)]
pub(crate) struct PublishedTrack {
    /// Chosen by the server, stable for the life of the track.
    pub(crate) out_ssrc: u32,
    /// The publisher's SSRC, once known (from SDP or the first packet): PLIs are addressed to it.
    pub(crate) source_ssrc: Option<u32>,
    pub(crate) codecs: Vec<CodecInfo>,
    pub(crate) extensions: Vec<(String, u8)>,
    video_codecs: Vec<(u8, VideoCodec)>,
    rewriter: SequenceRewriter,
    keyframes: KeyframeRequests,
    /// After forwarding resumed, nobody gets video until a keyframe starts.
    awaiting_keyframe: bool,
    pub(crate) fanout: Vec<Fanout>,
}

impl PublishedTrack {
    fn new(out_ssrc: u32, codecs: Vec<CodecInfo>, extensions: Vec<(String, u8)>) -> Self {
        let clock_rate = codecs.first().map_or(90_000, |c| c.clock_rate);
        let mut track = PublishedTrack {
            out_ssrc,
            source_ssrc: None,
            codecs: Vec::new(),
            extensions: Vec::new(),
            video_codecs: Vec::new(),
            rewriter: SequenceRewriter::new(clock_rate),
            keyframes: KeyframeRequests::default(),
            awaiting_keyframe: false,
            fanout: Vec::new(),
        };
        track.set_codecs(codecs, extensions);
        track
    }

    fn set_codecs(&mut self, codecs: Vec<CodecInfo>, extensions: Vec<(String, u8)>) {
        if let Some(first) = codecs.first() {
            self.rewriter.set_clock_rate(first.clock_rate);
        }
        self.video_codecs = codecs
            .iter()
            .map(|c| (c.payload_type, VideoCodec::from_mime(&c.mime_type)))
            .collect();
        self.codecs = codecs;
        self.extensions = extensions;
        for f in &mut self.fanout {
            f.pt_map = payload_type_map(&self.codecs, &f.codecs);
            f.ext_map = extension_map(&self.extensions, &f.extensions);
        }
    }

    fn video_codec(&self, payload_type: u8) -> VideoCodec {
        self.video_codecs
            .iter()
            .find(|(pt, _)| *pt == payload_type)
            .map_or(VideoCodec::Other, |(_, c)| *c)
    }

    /// Somebody needs a keyframe of this track. Until the publisher's first packet names the
    /// source, nothing can be asked: the request is deferred and goes out on the first timer
    /// tick after the source is known (not a retry interval later).
    fn keyframe_request(
        &mut self,
        publisher: Option<PeerKey>,
        now: Instant,
    ) -> Option<KeyframeRequest> {
        let (Some(publisher), Some(media_ssrc)) = (publisher, self.source_ssrc) else {
            self.keyframes.defer();
            return None;
        };
        self.keyframes.request(now).then_some(KeyframeRequest {
            publisher,
            media_ssrc,
        })
    }

    fn someone_waits(&self) -> bool {
        self.awaiting_keyframe || self.fanout.iter().any(|f| f.active && f.waiting_keyframe)
    }
}

#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) id: MemberId,
    pub(crate) room: RoomId,
    pub(crate) publisher: Option<PeerKey>,
    pub(crate) subscriber: Option<PeerKey>,
    pub(crate) forwarding: [bool; 2],
    pub(crate) tracks: [Option<PublishedTrack>; 2],
}

/// A track as a subscriber connection should carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrackRef {
    pub(crate) publisher: MemberKey,
    pub(crate) kind: Kind,
    pub(crate) out_ssrc: u32,
}

/// What [`Router::forward`] did with one packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ForwardOutcome {
    /// Copies handed to the sink.
    pub(crate) forwarded: u32,
    /// Withheld on purpose: forwarding switched off, or video waiting for a keyframe.
    pub(crate) withheld: u32,
    /// Could not be forwarded: no such track, a straggler, or a payload type the subscriber
    /// did not negotiate.
    pub(crate) dropped: u32,
}

/// One copy of a packet, as the subscriber connection must send it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Copy<'a> {
    pub(crate) subscriber: PeerKey,
    pub(crate) ssrc: u32,
    pub(crate) sequence_number: u16,
    pub(crate) timestamp: u32,
    pub(crate) payload_type: u8,
    /// The RTP clock rate of the copy's codec.
    pub(crate) clock_rate: u32,
    pub(crate) extensions: &'a ExtensionMap,
}

/// A PLI to send: to `publisher`'s connection, about its stream `media_ssrc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyframeRequest {
    pub(crate) publisher: PeerKey,
    pub(crate) media_ssrc: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OtherRoom(pub(crate) RoomId);

#[derive(Debug, Default)]
pub(crate) struct Router {
    members: Vec<Option<Member>>,
    free: Vec<MemberKey>,
    by_id: HashMap<MemberId, MemberKey>,
    /// Members in join order.
    rooms: HashMap<RoomId, Vec<MemberKey>>,
    by_out_ssrc: HashMap<u32, (MemberKey, Kind)>,
}

impl Router {
    pub(crate) fn new() -> Self {
        Router::default()
    }

    pub(crate) fn key(&self, id: &str) -> Option<MemberKey> {
        self.by_id.get(id).copied()
    }

    pub(crate) fn member(&self, key: MemberKey) -> Option<&Member> {
        self.members.get(key).and_then(Option::as_ref)
    }

    pub(crate) fn member_mut(&mut self, key: MemberKey) -> Option<&mut Member> {
        self.members.get_mut(key).and_then(Option::as_mut)
    }

    /// The member `id` of `room`, created on first use. A member is in one room at a time.
    pub(crate) fn join(&mut self, room: &str, id: &str) -> Result<MemberKey, OtherRoom> {
        if let Some(key) = self.key(id) {
            return match self.member(key) {
                Some(m) if m.room == room => Ok(key),
                Some(m) => Err(OtherRoom(m.room.clone())),
                None => Err(OtherRoom(String::new())),
            };
        }
        let member = Member {
            id: id.to_owned(),
            room: room.to_owned(),
            publisher: None,
            subscriber: None,
            forwarding: [true, true],
            tracks: [None, None],
        };
        let key = match self.free.pop() {
            Some(key) => {
                self.members[key] = Some(member);
                key
            }
            None => {
                self.members.push(Some(member));
                self.members.len() - 1
            }
        };
        self.by_id.insert(id.to_owned(), key);
        self.rooms.entry(room.to_owned()).or_default().push(key);
        Ok(key)
    }

    /// Removes a member with its tracks (and so every fanout of them).
    pub(crate) fn leave(&mut self, key: MemberKey) -> Option<Member> {
        let member = self.members.get_mut(key)?.take()?;
        self.free.push(key);
        self.by_id.remove(&member.id);
        if let Some(list) = self.rooms.get_mut(&member.room) {
            list.retain(|k| *k != key);
            if list.is_empty() {
                self.rooms.remove(&member.room);
            }
        }
        for track in member.tracks.iter().flatten() {
            self.by_out_ssrc.remove(&track.out_ssrc);
        }
        Some(member)
    }

    /// Every member of `room`, in join order.
    pub(crate) fn room_members(&self, room: &str) -> &[MemberKey] {
        self.rooms.get(room).map_or(&[], Vec::as_slice)
    }

    /// Media streams through this router: `(incoming, outgoing)`, the tracks members publish
    /// and the copies of them that subscriber connections receive.
    pub(crate) fn streams(&self) -> (u64, u64) {
        let mut incoming = 0u64;
        let mut outgoing = 0u64;
        for track in self
            .members
            .iter()
            .flatten()
            .flat_map(|m| m.tracks.iter().flatten())
        {
            incoming += 1;
            outgoing += track.fanout.iter().filter(|f| f.active).count() as u64;
        }
        (incoming, outgoing)
    }

    #[cfg(test)]
    pub(crate) fn rooms(&self) -> usize {
        self.rooms.len()
    }

    /// What `subscriber`'s subscriber connection should carry: every track of every other
    /// member of its room, in join order, audio before video.
    pub(crate) fn wanted_tracks(&self, subscriber: MemberKey) -> Vec<TrackRef> {
        let Some(me) = self.member(subscriber) else {
            return Vec::new();
        };
        let mut wanted = Vec::new();
        for &other in self.room_members(&me.room) {
            if other == subscriber {
                continue;
            }
            let Some(m) = self.member(other) else {
                continue;
            };
            for kind in Kind::ALL {
                if let Some(t) = &m.tracks[kind.index()] {
                    wanted.push(TrackRef {
                        publisher: other,
                        kind,
                        out_ssrc: t.out_ssrc,
                    });
                }
            }
        }
        wanted
    }

    /// Publishes (or updates) a track. Returns `true` if the track is new, which means the
    /// other members' subscriber connections must be renegotiated. `new_ssrc` is asked for a
    /// random SSRC until it returns one not in use.
    pub(crate) fn publish(
        &mut self,
        key: MemberKey,
        kind: Kind,
        codecs: Vec<CodecInfo>,
        extensions: Vec<(String, u8)>,
        source_ssrc: Option<u32>,
        mut new_ssrc: impl FnMut() -> u32,
    ) -> bool {
        let taken =
            |ssrc: u32, by: &HashMap<u32, (MemberKey, Kind)>| ssrc == 0 || by.contains_key(&ssrc);
        let Some(member) = self.members.get_mut(key).and_then(Option::as_mut) else {
            return false;
        };
        let slot = &mut member.tracks[kind.index()];
        if let Some(track) = slot {
            track.set_codecs(codecs, extensions);
            track.source_ssrc = source_ssrc.or(track.source_ssrc);
            return false;
        }
        let mut ssrc = new_ssrc();
        let mut tries = 0;
        while taken(ssrc, &self.by_out_ssrc) {
            tries += 1;
            // A source that keeps repeating itself (a broken RNG): probe upwards instead.
            ssrc = if tries < 64 {
                new_ssrc()
            } else {
                ssrc.wrapping_add(1)
            };
        }
        let mut track = PublishedTrack::new(ssrc, codecs, extensions);
        track.source_ssrc = source_ssrc;
        *slot = Some(track);
        self.by_out_ssrc.insert(ssrc, (key, kind));
        true
    }

    /// Removes a track. Returns `true` if there was one.
    pub(crate) fn unpublish(&mut self, key: MemberKey, kind: Kind) -> bool {
        let Some(member) = self.member_mut(key) else {
            return false;
        };
        match member.tracks[kind.index()].take() {
            Some(track) => {
                self.by_out_ssrc.remove(&track.out_ssrc);
                true
            }
            None => false,
        }
    }

    /// The track a subscriber knows by `out_ssrc`.
    pub(crate) fn track_by_out_ssrc(&self, out_ssrc: u32) -> Option<(MemberKey, Kind)> {
        self.by_out_ssrc.get(&out_ssrc).copied()
    }

    /// Sets how `subscriber` receives a track (after its answer was applied). A new video fanout
    /// waits for a keyframe.
    pub(crate) fn set_fanout(
        &mut self,
        track: TrackRef,
        subscriber: PeerKey,
        codecs: Vec<CodecInfo>,
        extensions: Vec<(String, u8)>,
        active: bool,
    ) {
        let Some(t) = self.track_mut(track.publisher, track.kind) else {
            return;
        };
        let pt_map = payload_type_map(&t.codecs, &codecs);
        let ext_map = extension_map(&t.extensions, &extensions);
        if let Some(f) = t.fanout.iter_mut().find(|f| f.subscriber == subscriber) {
            f.codecs = codecs;
            f.extensions = extensions;
            f.pt_map = pt_map;
            f.ext_map = ext_map;
            return;
        }
        t.fanout.push(Fanout {
            subscriber,
            codecs,
            extensions,
            pt_map,
            ext_map,
            active,
            waiting_keyframe: track.kind == Kind::Video,
        });
    }

    pub(crate) fn remove_fanout(&mut self, track: TrackRef, subscriber: PeerKey) {
        if let Some(t) = self.track_mut(track.publisher, track.kind) {
            t.fanout.retain(|f| f.subscriber != subscriber);
        }
    }

    /// Removes every fanout to `subscriber`.
    pub(crate) fn remove_subscriber(&mut self, subscriber: PeerKey) {
        for member in self.members.iter_mut().flatten() {
            for track in member.tracks.iter_mut().flatten() {
                track.fanout.retain(|f| f.subscriber != subscriber);
            }
        }
    }

    /// `subscriber` can now be written to (DTLS is up). Its video starts at the next keyframe,
    /// which is requested from each publisher: the requests to send are returned.
    pub(crate) fn activate_subscriber(
        &mut self,
        subscriber: PeerKey,
        now: Instant,
    ) -> Vec<KeyframeRequest> {
        let mut requests = Vec::new();
        for member in self.members.iter_mut().flatten() {
            let publisher = member.publisher;
            for (index, track) in member.tracks.iter_mut().enumerate() {
                let Some(track) = track else { continue };
                let mut video_starts = false;
                for f in track
                    .fanout
                    .iter_mut()
                    .filter(|f| f.subscriber == subscriber)
                {
                    if !f.active {
                        f.active = true;
                        f.waiting_keyframe = index == Kind::Video.index();
                        video_starts |= f.waiting_keyframe;
                    }
                }
                if video_starts && let Some(request) = track.keyframe_request(publisher, now) {
                    requests.push(request);
                }
            }
        }
        requests
    }

    /// A fanout was added to an already active subscriber: start it like a new subscriber.
    pub(crate) fn activate_fanout(
        &mut self,
        track: TrackRef,
        subscriber: PeerKey,
        now: Instant,
    ) -> Option<KeyframeRequest> {
        let publisher = self.member(track.publisher)?.publisher;
        let t = self.track_mut(track.publisher, track.kind)?;
        let f = t.fanout.iter_mut().find(|f| f.subscriber == subscriber)?;
        if f.active {
            return None;
        }
        f.active = true;
        if track.kind != Kind::Video {
            return None;
        }
        f.waiting_keyframe = true;
        t.keyframe_request(publisher, now)
    }

    /// A subscriber asked for a keyframe of the track it knows by `out_ssrc` (PLI or FIR).
    pub(crate) fn keyframe_wanted(
        &mut self,
        out_ssrc: u32,
        now: Instant,
    ) -> Option<KeyframeRequest> {
        let (key, kind) = self.track_by_out_ssrc(out_ssrc)?;
        self.request_keyframe(key, kind, now)
    }

    fn request_keyframe(
        &mut self,
        key: MemberKey,
        kind: Kind,
        now: Instant,
    ) -> Option<KeyframeRequest> {
        let publisher = self.member(key)?.publisher;
        self.track_mut(key, kind)?.keyframe_request(publisher, now)
    }

    /// Switches forwarding of a member's kind on or off. Resuming video waits for a keyframe,
    /// which is requested: the request to send, if any, is returned.
    pub(crate) fn set_forwarding(
        &mut self,
        key: MemberKey,
        kind: Kind,
        on: bool,
        now: Instant,
    ) -> Option<KeyframeRequest> {
        let member = self.member_mut(key)?;
        let was = std::mem::replace(&mut member.forwarding[kind.index()], on);
        if was == on {
            return None;
        }
        let track = member.tracks[kind.index()].as_mut()?;
        if !on {
            track.rewriter.pause();
            return None;
        }
        if kind != Kind::Video {
            return None;
        }
        track.awaiting_keyframe = true;
        self.request_keyframe(key, kind, now)
    }

    /// A member's publish connection is up: whoever already waits for its video asks now. A
    /// request made before could not reach the publisher (rtc drops RTCP written to a
    /// connection that is not connected), so it is not waited out.
    pub(crate) fn publisher_connected(
        &mut self,
        key: MemberKey,
        now: Instant,
    ) -> Option<KeyframeRequest> {
        let publisher = self.member(key)?.publisher?;
        let track = self.track_mut(key, Kind::Video)?;
        let media_ssrc = track.source_ssrc?;
        if !track.someone_waits() {
            return None;
        }
        track.keyframes.resend(now);
        Some(KeyframeRequest {
            publisher,
            media_ssrc,
        })
    }

    /// Timer work: keyframe requests that were deferred or went unanswered.
    pub(crate) fn poll_keyframes(&mut self, now: Instant, mut send: impl FnMut(KeyframeRequest)) {
        for member in self.members.iter_mut().flatten() {
            let Some(publisher) = member.publisher else {
                continue;
            };
            let Some(track) = member.tracks[Kind::Video.index()].as_mut() else {
                continue;
            };
            let Some(media_ssrc) = track.source_ssrc else {
                continue;
            };
            let waiting = track.someone_waits();
            if track.keyframes.poll(now, waiting) {
                send(KeyframeRequest {
                    publisher,
                    media_ssrc,
                });
            }
        }
    }

    fn track_mut(&mut self, key: MemberKey, kind: Kind) -> Option<&mut PublishedTrack> {
        self.member_mut(key)?.tracks[kind.index()].as_mut()
    }

    /// Decides the fate of one RTP packet published by `key`. Each copy to write is handed to
    /// `sink`. Allocates nothing.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward(
        &mut self,
        key: MemberKey,
        kind: Kind,
        ssrc: u32,
        sequence_number: u16,
        timestamp: u32,
        payload_type: u8,
        payload: &[u8],
        now: Instant,
        mut sink: impl FnMut(Copy<'_>),
    ) -> ForwardOutcome {
        let mut outcome = ForwardOutcome::default();
        let Some(member) = self.members.get_mut(key).and_then(Option::as_mut) else {
            outcome.dropped = 1;
            return outcome;
        };
        let forwarding = member.forwarding[kind.index()];
        let Some(track) = member.tracks[kind.index()].as_mut() else {
            outcome.dropped = 1;
            return outcome;
        };
        if track.source_ssrc != Some(ssrc) {
            track.source_ssrc = Some(ssrc);
        }
        if !forwarding {
            outcome.withheld = 1;
            return outcome;
        }
        let keyframe =
            kind == Kind::Video && starts_keyframe(track.video_codec(payload_type), payload);
        if keyframe {
            track.keyframes.on_keyframe();
        }
        if track.awaiting_keyframe {
            if !keyframe {
                outcome.withheld = 1;
                return outcome;
            }
            track.awaiting_keyframe = false;
        }
        let Some((seq, ts)) = track
            .rewriter
            .rewrite(ssrc, sequence_number, timestamp, now)
        else {
            outcome.dropped = 1;
            return outcome;
        };
        let out_ssrc = track.out_ssrc;
        let clock_rate = track.rewriter.clock_rate();
        for f in track.fanout.iter_mut() {
            if !f.active {
                continue;
            }
            if f.waiting_keyframe {
                if !keyframe {
                    outcome.withheld += 1;
                    continue;
                }
                f.waiting_keyframe = false;
            }
            let Some(pt) = f.pt_map.get(payload_type) else {
                outcome.dropped += 1;
                continue;
            };
            sink(Copy {
                subscriber: f.subscriber,
                ssrc: out_ssrc,
                sequence_number: seq,
                timestamp: ts,
                payload_type: pt,
                clock_rate,
                extensions: &f.ext_map,
            });
            outcome.forwarded += 1;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn codec(pt: u8, mime: &str, clock_rate: u32, fmtp: &str) -> CodecInfo {
        CodecInfo {
            payload_type: pt,
            mime_type: mime.to_owned(),
            clock_rate,
            channels: 0,
            fmtp: fmtp.to_owned(),
        }
    }

    fn opus(pt: u8) -> CodecInfo {
        codec(pt, "audio/opus", 48_000, "minptime=10;useinbandfec=1")
    }

    fn vp8(pt: u8) -> CodecInfo {
        codec(pt, "video/VP8", 90_000, "")
    }

    const VP8_KEY: [u8; 3] = [0x10, 0x00, 0x9d];
    const VP8_DELTA: [u8; 2] = [0x10, 0x01];

    struct Room {
        router: Router,
        a: MemberKey,
        b: MemberKey,
    }

    /// A publishes audio and video on peer 10; B subscribes on peer 21.
    fn room() -> Room {
        let mut router = Router::new();
        let a = router.join("r", "a").expect("join");
        let b = router.join("r", "b").expect("join");
        router.member_mut(a).expect("a").publisher = Some(10);
        router.member_mut(b).expect("b").subscriber = Some(21);
        let mut ssrcs = [1000u32, 2000].into_iter();
        assert!(
            router.publish(a, Kind::Audio, vec![opus(111)], vec![], Some(11), || ssrcs
                .next()
                .unwrap_or(7))
        );
        assert!(
            router.publish(a, Kind::Video, vec![vp8(96)], vec![], Some(22), || ssrcs
                .next()
                .unwrap_or(7))
        );
        Room { router, a, b }
    }

    fn subscribe_b(r: &mut Room, now: Instant) -> Vec<KeyframeRequest> {
        for t in r.router.wanted_tracks(r.b) {
            let codecs = match t.kind {
                Kind::Audio => vec![opus(109)],
                Kind::Video => vec![vp8(100)],
            };
            r.router.set_fanout(t, 21, codecs, vec![], false);
        }
        r.router.activate_subscriber(21, now)
    }

    fn forward(
        r: &mut Room,
        kind: Kind,
        seq: u16,
        payload: &[u8],
        now: Instant,
    ) -> (ForwardOutcome, Vec<(PeerKey, u32, u16, u8)>) {
        let (ssrc, pt) = match kind {
            Kind::Audio => (11, 111),
            Kind::Video => (22, 96),
        };
        let mut copies = Vec::new();
        let outcome = r.router.forward(
            r.a,
            kind,
            ssrc,
            seq,
            u32::from(seq) * 10,
            pt,
            payload,
            now,
            |c| copies.push((c.subscriber, c.ssrc, c.sequence_number, c.payload_type)),
        );
        (outcome, copies)
    }

    #[test]
    fn members_are_in_one_room_and_leave_cleanly() {
        let mut router = Router::new();
        let a = router.join("r1", "a").expect("join");
        assert_eq!(router.join("r1", "a"), Ok(a));
        assert_eq!(router.join("r2", "a"), Err(OtherRoom("r1".to_owned())));
        let b = router.join("r2", "b").expect("join");
        assert_eq!(router.rooms(), 2);
        assert!(router.leave(a).is_some());
        assert_eq!(router.rooms(), 1);
        assert_eq!(router.key("a"), None);
        // The slot is reused.
        let c = router.join("r2", "c").expect("join");
        assert_eq!(c, a);
        assert_eq!(router.room_members("r2"), &[b, c]);
    }

    #[test]
    fn wanted_tracks_are_the_others_in_the_same_room() {
        let mut r = room();
        let other = r.router.join("elsewhere", "c").expect("join");
        assert!(r.router.wanted_tracks(r.a).is_empty());
        assert!(r.router.wanted_tracks(other).is_empty());
        let wanted = r.router.wanted_tracks(r.b);
        assert_eq!(
            wanted,
            vec![
                TrackRef {
                    publisher: r.a,
                    kind: Kind::Audio,
                    out_ssrc: 1000
                },
                TrackRef {
                    publisher: r.a,
                    kind: Kind::Video,
                    out_ssrc: 2000
                },
            ]
        );
        assert!(r.router.unpublish(r.a, Kind::Audio));
        assert!(!r.router.unpublish(r.a, Kind::Audio));
        assert_eq!(r.router.wanted_tracks(r.b).len(), 1);
        assert_eq!(r.router.track_by_out_ssrc(1000), None);
        assert_eq!(r.router.track_by_out_ssrc(2000), Some((r.a, Kind::Video)));
    }

    #[test]
    fn republishing_keeps_the_ssrc_and_new_ssrcs_are_unique() {
        let mut router = Router::new();
        let a = router.join("r", "a").expect("join");
        let b = router.join("r", "b").expect("join");
        assert!(router.publish(a, Kind::Audio, vec![opus(111)], vec![], None, || 5));
        assert!(!router.publish(a, Kind::Audio, vec![opus(109)], vec![], None, || 6));
        assert_eq!(router.wanted_tracks(b)[0].out_ssrc, 5);
        // A stuck source still yields a free SSRC.
        let c = router.join("r", "c").expect("join");
        assert!(router.publish(c, Kind::Audio, vec![opus(111)], vec![], None, || 5));
        assert_eq!(router.wanted_tracks(a).last().map(|t| t.out_ssrc), Some(6));
        // 0 is refused and 5 is in use: 9 is taken.
        let mut candidates = [0u32, 5, 9].into_iter();
        assert!(
            router.publish(b, Kind::Audio, vec![opus(111)], vec![], None, || candidates
                .next()
                .unwrap_or(1))
        );
        assert_eq!(router.wanted_tracks(a)[0].out_ssrc, 9);
    }

    #[test]
    fn forwards_with_the_subscribers_payload_type_and_the_stable_ssrc() {
        let mut r = room();
        let t0 = Instant::now();
        let requests = subscribe_b(&mut r, t0);
        // B's video starts: one PLI to A's publisher connection about A's video SSRC.
        assert_eq!(
            requests,
            vec![KeyframeRequest {
                publisher: 10,
                media_ssrc: 22
            }]
        );
        let (outcome, copies) = forward(&mut r, Kind::Audio, 1, &[1, 2, 3], t0);
        assert_eq!(outcome.forwarded, 1);
        assert_eq!(copies, vec![(21, 1000, 1, 109)]);
        // Video waits for a keyframe.
        let (outcome, copies) = forward(&mut r, Kind::Video, 1, &VP8_DELTA, t0);
        assert_eq!((outcome.forwarded, outcome.withheld), (0, 1));
        assert!(copies.is_empty());
        let (_, copies) = forward(&mut r, Kind::Video, 2, &VP8_KEY, t0);
        assert_eq!(copies, vec![(21, 2000, 2, 100)]);
        let (_, copies) = forward(&mut r, Kind::Video, 3, &VP8_DELTA, t0);
        assert_eq!(copies, vec![(21, 2000, 3, 100)]);
    }

    #[test]
    fn a_subscriber_before_the_first_packet_gets_its_keyframe_asked_at_once() {
        let mut router = Router::new();
        let a = router.join("r", "a").expect("join");
        let b = router.join("r", "b").expect("join");
        router.member_mut(a).expect("a").publisher = Some(10);
        router.member_mut(b).expect("b").subscriber = Some(21);
        // No a=ssrc in the offer: the source is known from the first packet only.
        assert!(router.publish(a, Kind::Video, vec![vp8(96)], vec![], None, || 2000));
        let t0 = Instant::now();
        let track = router.wanted_tracks(b)[0];
        router.set_fanout(track, 21, vec![vp8(100)], vec![], false);
        assert!(
            router.activate_subscriber(21, t0).is_empty(),
            "no source to ask yet"
        );
        let mut asked = Vec::new();
        router.poll_keyframes(t0, |r| asked.push(r));
        assert!(asked.is_empty());
        let outcome = router.forward(a, Kind::Video, 33, 1, 0, 96, &VP8_DELTA, t0, |_| {});
        assert_eq!(outcome.withheld, 1);
        // The next tick asks, without waiting out a retry interval.
        let t1 = t0 + Duration::from_millis(50);
        router.poll_keyframes(t1, |r| asked.push(r));
        assert_eq!(
            asked,
            vec![KeyframeRequest {
                publisher: 10,
                media_ssrc: 33
            }]
        );
        // Asked once: the next tick waits for the answer.
        router.poll_keyframes(t1 + Duration::from_millis(50), |r| asked.push(r));
        assert_eq!(asked.len(), 1);
    }

    #[test]
    fn a_publisher_that_connects_is_asked_again_at_once_for_whoever_waits() {
        let mut r = room();
        let t0 = Instant::now();
        assert_eq!(r.router.publisher_connected(r.a, t0), None, "nobody waits");
        // B's request went out while A's connection was not up yet, so it never arrived.
        assert_eq!(subscribe_b(&mut r, t0).len(), 1);
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(
            r.router.publisher_connected(r.a, t1),
            Some(KeyframeRequest {
                publisher: 10,
                media_ssrc: 22
            })
        );
        forward(&mut r, Kind::Video, 1, &VP8_KEY, t1);
        assert_eq!(
            r.router.publisher_connected(r.a, t1),
            None,
            "B has its keyframe"
        );
    }

    #[test]
    fn inactive_or_unnegotiated_fanouts_get_nothing() {
        let mut r = room();
        let t0 = Instant::now();
        let audio = r.router.wanted_tracks(r.b)[0];
        r.router.set_fanout(
            audio,
            21,
            vec![codec(0, "audio/PCMU", 8000, "")],
            vec![],
            false,
        );
        let (outcome, _) = forward(&mut r, Kind::Audio, 1, &[1], t0);
        assert_eq!(outcome, ForwardOutcome::default());
        r.router.activate_subscriber(21, t0);
        let (outcome, copies) = forward(&mut r, Kind::Audio, 2, &[1], t0);
        assert_eq!(outcome.dropped, 1);
        assert!(copies.is_empty());
        r.router.remove_subscriber(21);
        let (outcome, _) = forward(&mut r, Kind::Audio, 3, &[1], t0);
        assert_eq!(outcome, ForwardOutcome::default());
    }

    #[test]
    fn muting_withholds_and_resuming_video_waits_for_a_requested_keyframe() {
        let mut r = room();
        let t0 = Instant::now();
        subscribe_b(&mut r, t0);
        forward(&mut r, Kind::Video, 1, &VP8_KEY, t0);
        forward(&mut r, Kind::Audio, 1, &[0], t0);
        assert_eq!(r.router.set_forwarding(r.a, Kind::Audio, false, t0), None);
        let (outcome, _) = forward(&mut r, Kind::Audio, 2, &[0], t0);
        assert_eq!(outcome.withheld, 1);
        // Video is unaffected.
        let (_, copies) = forward(&mut r, Kind::Video, 2, &VP8_DELTA, t0);
        assert_eq!(copies.len(), 1);
        // Audio resumes with no gap in sequence numbers.
        assert_eq!(r.router.set_forwarding(r.a, Kind::Audio, true, t0), None);
        let (_, copies) = forward(&mut r, Kind::Audio, 50, &[0], t0 + Duration::from_secs(1));
        assert_eq!(copies, vec![(21, 1000, 2, 109)]);
        // Video off, then on: a PLI, and nothing until the keyframe.
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(r.router.set_forwarding(r.a, Kind::Video, false, t1), None);
        let request = r.router.set_forwarding(r.a, Kind::Video, true, t1);
        assert_eq!(
            request,
            Some(KeyframeRequest {
                publisher: 10,
                media_ssrc: 22
            })
        );
        let (outcome, _) = forward(&mut r, Kind::Video, 90, &VP8_DELTA, t1);
        assert_eq!(outcome.withheld, 1);
        let (_, copies) = forward(&mut r, Kind::Video, 91, &VP8_KEY, t1);
        assert_eq!(copies, vec![(21, 2000, 3, 100)]);
        // Setting the same state again does nothing.
        assert_eq!(r.router.set_forwarding(r.a, Kind::Video, true, t1), None);
    }

    #[test]
    fn subscriber_pli_is_relayed_and_coalesced() {
        let mut r = room();
        let t0 = Instant::now();
        subscribe_b(&mut r, t0);
        // The subscription's own request is outstanding: B's PLI is deferred...
        assert_eq!(
            r.router
                .keyframe_wanted(2000, t0 + Duration::from_millis(100)),
            None
        );
        let mut sent = Vec::new();
        r.router
            .poll_keyframes(t0 + Duration::from_millis(200), |k| sent.push(k));
        assert!(sent.is_empty());
        // ...and goes out when the retry interval has passed.
        r.router
            .poll_keyframes(t0 + Duration::from_millis(500), |k| sent.push(k));
        assert_eq!(
            sent,
            vec![KeyframeRequest {
                publisher: 10,
                media_ssrc: 22
            }]
        );
        // After a keyframe, a PLI is relayed at once.
        forward(
            &mut r,
            Kind::Video,
            1,
            &VP8_KEY,
            t0 + Duration::from_millis(600),
        );
        assert_eq!(
            r.router
                .keyframe_wanted(2000, t0 + Duration::from_millis(700)),
            Some(KeyframeRequest {
                publisher: 10,
                media_ssrc: 22
            })
        );
        // Unknown SSRCs are ignored.
        assert_eq!(r.router.keyframe_wanted(1, t0), None);
    }

    #[test]
    fn a_new_fanout_on_an_active_subscriber_starts_at_a_keyframe() {
        let mut router = Router::new();
        let a = router.join("r", "a").expect("join");
        let b = router.join("r", "b").expect("join");
        router.member_mut(a).expect("a").publisher = Some(10);
        let t0 = Instant::now();
        assert!(router.activate_subscriber(21, t0).is_empty());
        assert!(router.publish(a, Kind::Video, vec![vp8(96)], vec![], Some(22), || 3));
        let t = router.wanted_tracks(b)[0];
        router.set_fanout(t, 21, vec![vp8(98)], vec![], false);
        assert_eq!(
            router.activate_fanout(t, 21, t0),
            Some(KeyframeRequest {
                publisher: 10,
                media_ssrc: 22
            })
        );
        assert_eq!(router.activate_fanout(t, 21, t0), None);
        router.remove_fanout(t, 21);
        let mut n = 0;
        router.forward(a, Kind::Video, 22, 1, 1, 96, &VP8_KEY, t0, |_| n += 1);
        assert_eq!(n, 0);
    }

    #[test]
    fn codec_matching() {
        let h264 = |pt, fmtp| codec(pt, "video/H264", 90_000, fmtp);
        let pub_ = h264(
            102,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        );
        assert!(codecs_match(
            &pub_,
            &h264(108, "packetization-mode=1;profile-level-id=42001f")
        ));
        assert!(!codecs_match(
            &pub_,
            &h264(108, "packetization-mode=0;profile-level-id=42e01f")
        ));
        assert!(!codecs_match(
            &pub_,
            &h264(108, "packetization-mode=1;profile-level-id=640c1f")
        ));
        assert!(codecs_match(
            &opus(111),
            &codec(109, "audio/OPUS", 48_000, "")
        ));
        assert!(!codecs_match(&opus(111), &vp8(96)));
        let map = payload_type_map(
            &[vp8(96), pub_.clone()],
            &[h264(127, "packetization-mode=1;profile-level-id=42e01f")],
        );
        assert_eq!(map.get(96), None);
        assert_eq!(map.get(102), Some(127));
    }

    #[test]
    fn only_end_to_end_extensions_are_mapped() {
        let publisher = vec![
            (FORWARDED_EXTENSIONS[0].to_owned(), 1),
            (
                "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
                    .to_owned(),
                3,
            ),
        ];
        let subscriber = vec![
            (FORWARDED_EXTENSIONS[0].to_owned(), 5),
            (
                "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
                    .to_owned(),
                2,
            ),
        ];
        let map = extension_map(&publisher, &subscriber);
        assert_eq!(map.get(1), Some(5));
        assert_eq!(map.get(3), None);
    }
}
