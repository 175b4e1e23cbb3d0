//! The synthetic media: Opus-sized audio and VP8-shaped video whose payloads carry who sent
//! them and when, so a receiver measures the one-way time the server added. Sender and
//! receivers run in one process and share one clock ([`now_us`]).

use std::sync::OnceLock;
use std::time::Instant;

/// Marks a payload as the generator's (after the VP8 descriptor and frame tag for video).
pub const MAGIC: [u8; 4] = *b"CGLG";
/// Magic, sender index (u32) and send time (u64 µs).
pub const STAMP_LEN: usize = 16;
/// RTP fixed header: the payload of a packet of `size` bytes is `size - RTP_HEADER`.
pub const RTP_HEADER: usize = 12;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Microseconds since the process's first call.
pub fn now_us() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn stamp(out: &mut Vec<u8>, sender: u32, sent_us: u64) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(&sent_us.to_be_bytes());
}

/// An audio payload of `len` bytes (80: 20 ms of Opus at 32 kb/s).
pub fn audio(sender: u32, sent_us: u64, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(len.max(STAMP_LEN));
    stamp(&mut p, sender, sent_us);
    p.resize(len.max(STAMP_LEN), 0);
    p
}

/// One packet's payload of a VP8 frame, `len` bytes: the payload descriptor (S=1 and PID=0 on
/// the frame's first packet), the frame tag (P=0 for a keyframe), then the stamp and padding.
pub fn video(
    sender: u32,
    sent_us: u64,
    len: usize,
    first_of_frame: bool,
    keyframe: bool,
) -> Vec<u8> {
    let len = len.max(2 + STAMP_LEN);
    let mut p = Vec::with_capacity(len);
    p.push(if first_of_frame { 0x10 } else { 0x00 });
    // Frame tag: bit 0 is P (0 = keyframe); a keyframe also carries the start code.
    p.push(if keyframe { 0x00 } else { 0x01 });
    stamp(&mut p, sender, sent_us);
    if first_of_frame && keyframe {
        p.extend_from_slice(&[0x9d, 0x01, 0x2a]);
    }
    p.resize(len, 0);
    p
}

/// The sender and send time of a payload the generator made, if it is one.
pub fn read_stamp(payload: &[u8]) -> Option<(u32, u64)> {
    let at = if payload.starts_with(&MAGIC) {
        0
    } else if payload.get(2..6) == Some(&MAGIC[..]) {
        2
    } else {
        return None;
    };
    let sender = u32::from_be_bytes(payload.get(at + 4..at + 8)?.try_into().ok()?);
    let sent = u64::from_be_bytes(payload.get(at + 8..at + 16)?.try_into().ok()?);
    Some((sender, sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_read_back_from_audio_and_video() {
        assert_eq!(read_stamp(&audio(7, 123_456, 80)), Some((7, 123_456)));
        let v = video(9, 42, 1188, true, true);
        assert_eq!(v.len(), 1188);
        assert_eq!(&v[..2], &[0x10, 0x00]);
        assert_eq!(read_stamp(&v), Some((9, 42)));
        assert_eq!(read_stamp(&video(1, 2, 10, false, false)), Some((1, 2)));
        assert_eq!(read_stamp(b"garbage"), None);
    }
}
