//! Keyframes: recognising them in RTP payloads, and deciding when to ask a publisher for one.
//!
//! A subscriber can only start decoding video at a keyframe. The server therefore holds a new
//! subscriber's video (and every subscriber's, after forwarding resumes) until a keyframe
//! starts, and asks the publisher for one with PLI. Browsers answer each PLI with a keyframe,
//! which costs bandwidth, so requests for one track are coalesced by [`KeyframeRequests`].

use std::time::{Duration, Instant};

/// The video codecs the server negotiates (see `peer.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VideoCodec {
    Vp8,
    H264,
    /// Anything else: every packet counts as a possible start, nothing is held back.
    Other,
}

impl VideoCodec {
    pub(crate) fn from_mime(mime: &str) -> Self {
        if mime.eq_ignore_ascii_case("video/vp8") {
            VideoCodec::Vp8
        } else if mime.eq_ignore_ascii_case("video/h264") {
            VideoCodec::H264
        } else {
            VideoCodec::Other
        }
    }
}

/// Whether this RTP payload starts a keyframe.
pub(crate) fn starts_keyframe(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::Vp8 => vp8_starts_keyframe(payload),
        VideoCodec::H264 => h264_starts_keyframe(payload),
        VideoCodec::Other => true,
    }
}

/// RFC 7741 §4.2 payload descriptor, then the VP8 frame tag (RFC 6386 §9.1): inverse key frame
/// flag P in bit 0 of the first byte of partition 0.
fn vp8_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let extended = first & 0x80 != 0;
    let start_of_partition = first & 0x10 != 0;
    let partition_id = first & 0x07;
    if !start_of_partition || partition_id != 0 {
        return false;
    }
    let mut at = 1;
    if extended {
        let Some(&x) = payload.get(at) else {
            return false;
        };
        at += 1;
        if x & 0x80 != 0 {
            // PictureID: 7 or 15 bits, the M bit says which.
            let Some(&pid) = payload.get(at) else {
                return false;
            };
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            at += 1; // TID/Y/KEYIDX
        }
    }
    payload.get(at).is_some_and(|tag| tag & 0x01 == 0)
}

const H264_IDR: u8 = 5;
const H264_SPS: u8 = 7;
const H264_STAP_A: u8 = 24;
const H264_FU_A: u8 = 28;

/// RFC 6184: an IDR slice or an SPS (which precedes the IDR in every browser's keyframe),
/// alone, in a STAP-A aggregate, or at the start of an FU-A fragment.
fn h264_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1F {
        H264_IDR | H264_SPS => true,
        H264_STAP_A => {
            let mut rest = &payload[1..];
            while rest.len() >= 3 {
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let nal_type = rest[2] & 0x1F;
                if nal_type == H264_IDR || nal_type == H264_SPS {
                    return true;
                }
                match rest.get(2 + size..) {
                    Some(next) => rest = next,
                    None => return false,
                }
            }
            false
        }
        H264_FU_A => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && matches!(fu & 0x1F, H264_IDR | H264_SPS)),
        _ => false,
    }
}

/// 500 ms: a browser answers a PLI within one round trip plus one frame interval, so a second
/// request sooner would only ask for the keyframe already on its way. Later than that, the
/// request or the keyframe was probably lost, and asking again is what gets video going.
pub(crate) const KEYFRAME_RETRY: Duration = Duration::from_millis(500);

/// The keyframe-request policy of one published video track.
///
/// - A request goes out at once unless one is outstanding (sent less than [`KEYFRAME_RETRY`]
///   ago and not yet answered by a keyframe); then it is deferred, never dropped.
/// - A deferred request, or an outstanding one that somebody still waits on, goes out again
///   when [`KEYFRAME_RETRY`] has passed.
/// - A keyframe answers everything requested before it.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyframeRequests {
    last_sent: Option<Instant>,
    outstanding: bool,
    deferred: bool,
}

impl KeyframeRequests {
    /// Somebody needs a keyframe: `true` if a PLI must be sent now.
    pub(crate) fn request(&mut self, now: Instant) -> bool {
        if self.outstanding
            && let Some(sent) = self.last_sent
            && now.saturating_duration_since(sent) < KEYFRAME_RETRY
        {
            self.deferred = true;
            return false;
        }
        self.sent(now);
        true
    }

    /// Somebody needs a keyframe that cannot be asked for yet (the publisher's source is not
    /// known): the next [`poll`](Self::poll) that can ask, asks.
    pub(crate) fn defer(&mut self) {
        self.deferred = true;
    }

    /// A request is sent now, whatever is outstanding (the earlier one could not be
    /// delivered).
    pub(crate) fn resend(&mut self, now: Instant) {
        self.sent(now);
    }

    /// Called on every timer tick: `true` if a PLI must be sent now. `waiting` says whether some
    /// subscriber is still holding video back for a keyframe.
    pub(crate) fn poll(&mut self, now: Instant, waiting: bool) -> bool {
        let due = self
            .last_sent
            .is_none_or(|sent| now.saturating_duration_since(sent) >= KEYFRAME_RETRY);
        if due && (self.deferred || (self.outstanding && waiting)) {
            self.sent(now);
            return true;
        }
        false
    }

    pub(crate) fn on_keyframe(&mut self) {
        self.outstanding = false;
        self.deferred = false;
    }

    fn sent(&mut self, now: Instant) {
        self.last_sent = Some(now);
        self.outstanding = true;
        self.deferred = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframes() {
        // S=1, PID=0, no extension; frame tag with P=0.
        assert!(starts_keyframe(
            VideoCodec::Vp8,
            &[0x10, 0x00, 0x9d, 0x01, 0x2a]
        ));
        // P=1: interframe.
        assert!(!starts_keyframe(VideoCodec::Vp8, &[0x10, 0x01]));
        // Not the start of a partition.
        assert!(!starts_keyframe(VideoCodec::Vp8, &[0x00, 0x00]));
        // Partition 1.
        assert!(!starts_keyframe(VideoCodec::Vp8, &[0x11, 0x00]));
        // Extended: I with a 15-bit picture id, L, T: descriptor is 6 bytes.
        assert!(starts_keyframe(
            VideoCodec::Vp8,
            &[0x90, 0xE0, 0x80, 0x01, 0x05, 0x20, 0x00]
        ));
        assert!(!starts_keyframe(
            VideoCodec::Vp8,
            &[0x90, 0xE0, 0x80, 0x01, 0x05, 0x20, 0x01]
        ));
        // Extended with a 7-bit picture id only.
        assert!(starts_keyframe(VideoCodec::Vp8, &[0x90, 0x80, 0x05, 0x00]));
        // Truncated descriptors are not keyframes and do not panic.
        for bytes in [
            &[][..],
            &[0x90],
            &[0x90, 0x80],
            &[0x90, 0x80, 0x85],
            &[0x10],
        ] {
            assert!(!starts_keyframe(VideoCodec::Vp8, bytes));
        }
    }

    #[test]
    fn h264_keyframes() {
        assert!(starts_keyframe(VideoCodec::H264, &[0x65, 0x88]));
        assert!(starts_keyframe(VideoCodec::H264, &[0x67, 0x42]));
        assert!(!starts_keyframe(VideoCodec::H264, &[0x41, 0x9a]));
        // STAP-A with SPS first.
        assert!(starts_keyframe(
            VideoCodec::H264,
            &[0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce]
        ));
        // STAP-A with two non-IDR slices.
        assert!(!starts_keyframe(
            VideoCodec::H264,
            &[0x78, 0x00, 0x01, 0x41, 0x00, 0x01, 0x41]
        ));
        // STAP-A with a size running past the end.
        assert!(!starts_keyframe(
            VideoCodec::H264,
            &[0x78, 0x00, 0x09, 0x41]
        ));
        // FU-A start of an IDR, continuation of an IDR, start of a non-IDR.
        assert!(starts_keyframe(VideoCodec::H264, &[0x7c, 0x85, 0x00]));
        assert!(!starts_keyframe(VideoCodec::H264, &[0x7c, 0x05, 0x00]));
        assert!(!starts_keyframe(VideoCodec::H264, &[0x7c, 0x81, 0x00]));
        assert!(!starts_keyframe(VideoCodec::H264, &[]));
    }

    #[test]
    fn other_codecs_never_hold_video() {
        assert!(starts_keyframe(VideoCodec::Other, &[]));
        assert_eq!(VideoCodec::from_mime("video/VP8"), VideoCodec::Vp8);
        assert_eq!(VideoCodec::from_mime("video/h264"), VideoCodec::H264);
        assert_eq!(VideoCodec::from_mime("video/AV1"), VideoCodec::Other);
    }

    #[test]
    fn first_request_goes_out_at_once() {
        let t0 = Instant::now();
        let mut k = KeyframeRequests::default();
        assert!(k.request(t0));
    }

    #[test]
    fn requests_while_outstanding_are_deferred_not_lost() {
        let t0 = Instant::now();
        let mut k = KeyframeRequests::default();
        assert!(k.request(t0));
        assert!(!k.request(t0 + Duration::from_millis(100)));
        assert!(!k.poll(t0 + Duration::from_millis(499), false));
        assert!(k.poll(t0 + KEYFRAME_RETRY, false));
        // Sent again: nothing more is due.
        assert!(!k.poll(t0 + Duration::from_secs(2), false));
    }

    #[test]
    fn a_keyframe_answers_everything_before_it() {
        let t0 = Instant::now();
        let mut k = KeyframeRequests::default();
        assert!(k.request(t0));
        assert!(!k.request(t0 + Duration::from_millis(50)));
        k.on_keyframe();
        assert!(!k.poll(t0 + Duration::from_secs(1), true));
        // After a keyframe, a new request goes out at once even within the retry interval.
        assert!(k.request(t0 + Duration::from_millis(60)));
    }

    #[test]
    fn unanswered_requests_are_repeated_while_somebody_waits() {
        let t0 = Instant::now();
        let mut k = KeyframeRequests::default();
        assert!(k.request(t0));
        assert!(!k.poll(t0 + KEYFRAME_RETRY, false));
        assert!(k.poll(t0 + KEYFRAME_RETRY, true));
        assert!(!k.poll(t0 + KEYFRAME_RETRY + Duration::from_millis(10), true));
        assert!(k.poll(t0 + KEYFRAME_RETRY * 2, true));
    }
}
