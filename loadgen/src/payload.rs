//! The synthetic media: Opus-sized audio and VP8-shaped video whose payloads carry who sent
//! them, when, and their number in the sender's stream of that kind, so a receiver measures
//! the one-way time the server added and the packets it lost or withheld (whatever the server
//! did to the RTP sequence numbers). Sender and receivers run in one process and share one
//! clock ([`now_us`]).
//!
//! [`Synthetic`] is one sender's media clock (50 audio packets a second, `fps` video frames cut
//! into packets, periodic and requested keyframes, video paced as a browser paces it); the
//! WebRTC publishers ([`crate::peer`]) and the plain-RTP MCU ([`crate::mcu`]) both send what
//! it produces.

use std::sync::OnceLock;
use std::time::Instant;

/// Marks a payload as the generator's (after the VP8 descriptor and frame tag for video).
pub const MAGIC: [u8; 4] = *b"CGLG";
/// Magic, sender index (u32), send time (u64 µs), then the packet's counter (u32): its number
/// in the sender's stream of that kind, from 0, one more per packet sent.
pub const STAMP_LEN: usize = 20;
/// RTP fixed header: the payload of a packet of `size` bytes is `size - RTP_HEADER`.
pub const RTP_HEADER: usize = 12;
/// Where the stamp starts in a video payload: after the VP8 payload descriptor and frame tag.
const VIDEO_STAMP_AT: usize = 2;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Microseconds since the process's first call.
pub fn now_us() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// What a stamp says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub sender: u32,
    pub sent_us: u64,
    /// The packet's number in its sender's stream of its kind.
    pub counter: u32,
    /// A video payload (the stamp follows the VP8 descriptor), else audio.
    pub video: bool,
}

fn stamp(out: &mut Vec<u8>, sender: u32, sent_us: u64, counter: u32) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(&sent_us.to_be_bytes());
    out.extend_from_slice(&counter.to_be_bytes());
}

/// Appends an audio payload of `len` bytes (80: 20 ms of Opus at 32 kb/s) to `out`.
pub fn write_audio(out: &mut Vec<u8>, sender: u32, counter: u32, sent_us: u64, len: usize) {
    let end = out.len() + len.max(STAMP_LEN);
    stamp(out, sender, sent_us, counter);
    out.resize(end, 0);
}

/// Appends one packet's payload of a VP8 frame, `len` bytes, to `out`: the payload descriptor
/// (S=1 and PID=0 on the frame's first packet), the frame tag (P=0 for a keyframe), then the
/// stamp and padding.
pub fn write_video(
    out: &mut Vec<u8>,
    sender: u32,
    counter: u32,
    sent_us: u64,
    len: usize,
    first_of_frame: bool,
    keyframe: bool,
) {
    let end = out.len() + len.max(VIDEO_STAMP_AT + STAMP_LEN);
    out.push(if first_of_frame { 0x10 } else { 0x00 });
    // Frame tag: bit 0 is P (0 = keyframe); a keyframe also carries the start code.
    out.push(if keyframe { 0x00 } else { 0x01 });
    stamp(out, sender, sent_us, counter);
    if first_of_frame && keyframe {
        out.extend_from_slice(&[0x9d, 0x01, 0x2a]);
    }
    out.resize(end.max(out.len()), 0);
}

/// The stamp of a payload the generator made, if it is one.
pub fn read_stamp(payload: &[u8]) -> Option<Stamp> {
    let at = if payload.starts_with(&MAGIC) {
        0
    } else if payload.get(VIDEO_STAMP_AT..VIDEO_STAMP_AT + 4) == Some(&MAGIC[..]) {
        VIDEO_STAMP_AT
    } else {
        return None;
    };
    let s = payload.get(at + 4..at + STAMP_LEN)?;
    Some(Stamp {
        sender: u32::from_be_bytes(s[0..4].try_into().ok()?),
        sent_us: u64::from_be_bytes(s[4..12].try_into().ok()?),
        counter: u32::from_be_bytes(s[12..16].try_into().ok()?),
        video: at == VIDEO_STAMP_AT,
    })
}

/// The synthetic media a sender sends.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct MediaShape {
    pub fps: u32,
    pub video_kbps: u32,
    /// Bytes of a full video packet, RTP header included.
    pub packet_bytes: usize,
    /// A keyframe (three frames' worth of bytes) every this many seconds.
    pub keyframe_secs: u32,
    /// Opus-sized audio payloads, 50 a second.
    pub audio_bytes: usize,
    /// Video leaves at most this many times `video_kbps`, as a browser's pacer sends it
    /// (libwebrtc's pacing factor is 2.5): a keyframe spreads over some 40 ms instead of
    /// leaving in one burst. Audio is not paced. 0 sends each frame whole when it is due.
    pub pace: f32,
}

/// The pacer's interval: it sends at most once per this many milliseconds (libwebrtc's
/// pacer sends in bursts at most 5 ms apart), and its budget holds at most this long's worth.
pub const PACE_INTERVAL_MS: u64 = 5;

/// One packet [`Synthetic::next`] made: its RTP header fields (the payload is in the caller's
/// buffer). Sequence numbers and timestamps start at 0; the caller adds its own SSRC and
/// payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub video: bool,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub marker: bool,
}

/// One sender's media clock: which audio and video packets are due after how long, stamped.
/// Audio is 20 ms packets; each video frame is `video_kbps / fps` bytes (three times that for a
/// keyframe) cut into packets of at most `packet_bytes`.
#[derive(Debug, Clone)]
pub struct Synthetic {
    sender: u32,
    shape: MediaShape,
    payload_max: usize,
    frame_bytes: usize,
    keyframe_every: u64,
    audio_n: u64,
    frame_n: u64,
    video_seq: u16,
    video_counter: u32,
    /// The frame being cut: bytes left, whether it is a keyframe, whether its first packet is
    /// out, its timestamp.
    frame_left: usize,
    frame_keyframe: bool,
    frame_started: bool,
    frame_timestamp: u32,
    /// Video bytes the pacer lets out a millisecond (0: not paced), the bytes it may still
    /// send (negative: the debt of the last packet), and when it last filled up.
    pace_bytes_per_ms: f64,
    pace_budget: f64,
    pace_at_ms: u64,
}

impl Synthetic {
    pub fn new(sender: u32, shape: MediaShape) -> Synthetic {
        let fps = u64::from(shape.fps.max(1));
        Synthetic {
            sender,
            shape,
            payload_max: shape.packet_bytes.saturating_sub(RTP_HEADER).max(32),
            frame_bytes: (u64::from(shape.video_kbps) * 1000 / 8 / fps) as usize,
            keyframe_every: fps * u64::from(shape.keyframe_secs.max(1)),
            audio_n: 0,
            frame_n: 0,
            video_seq: 0,
            video_counter: 0,
            frame_left: 0,
            frame_keyframe: false,
            frame_started: false,
            frame_timestamp: 0,
            pace_bytes_per_ms: f64::from(shape.pace.max(0.0)) * f64::from(shape.video_kbps) / 8.0,
            pace_budget: 0.0,
            pace_at_ms: 0,
        }
    }

    /// Whether the pacer lets a video packet out `elapsed_ms` after the start. Its budget
    /// grows with time, up to one interval's worth; a packet may take it below zero (as
    /// libwebrtc's does), and the next waits until it is back to zero.
    fn paced(&mut self, elapsed_ms: u64) -> bool {
        if self.pace_bytes_per_ms <= 0.0 {
            return true;
        }
        let cap = self.pace_bytes_per_ms * PACE_INTERVAL_MS as f64;
        let grown = elapsed_ms.saturating_sub(self.pace_at_ms) as f64 * self.pace_bytes_per_ms;
        self.pace_budget = (self.pace_budget + grown).min(cap);
        self.pace_at_ms = self.pace_at_ms.max(elapsed_ms);
        self.pace_budget >= 0.0
    }

    pub fn sender(&self) -> u32 {
        self.sender
    }

    /// The next packet due `elapsed_ms` after the start, its payload appended to `out`; `None`
    /// when nothing more is due yet or the pacer holds the video back. A new frame is a
    /// keyframe when one is due by the period or when `keyframe_wanted` says so (it is asked
    /// once per frame).
    pub fn next(
        &mut self,
        elapsed_ms: u64,
        keyframe_wanted: impl FnOnce() -> bool,
        out: &mut Vec<u8>,
    ) -> Option<Due> {
        if self.audio_n * 20 <= elapsed_ms {
            let n = self.audio_n;
            write_audio(out, self.sender, n as u32, now_us(), self.shape.audio_bytes);
            self.audio_n += 1;
            return Some(Due {
                video: false,
                sequence_number: n as u16,
                timestamp: (n as u32).wrapping_mul(960),
                marker: n == 0,
            });
        }
        if !self.paced(elapsed_ms) {
            return None;
        }
        if self.frame_left == 0 {
            if self.frame_n * 1000 > elapsed_ms * u64::from(self.shape.fps.max(1)) {
                return None;
            }
            self.frame_keyframe =
                self.frame_n.is_multiple_of(self.keyframe_every) || keyframe_wanted();
            self.frame_left = if self.frame_keyframe {
                self.frame_bytes * 3
            } else {
                self.frame_bytes
            }
            .max(1);
            self.frame_started = false;
            self.frame_timestamp =
                (self.frame_n as u32).wrapping_mul(90_000 / self.shape.fps.max(1));
            self.frame_n += 1;
        }
        let len = self.frame_left.min(self.payload_max);
        self.frame_left -= len;
        if self.pace_bytes_per_ms > 0.0 {
            self.pace_budget -= (len + RTP_HEADER) as f64;
        }
        write_video(
            out,
            self.sender,
            self.video_counter,
            now_us(),
            len,
            !self.frame_started,
            self.frame_keyframe,
        );
        self.frame_started = true;
        let due = Due {
            video: true,
            sequence_number: self.video_seq,
            timestamp: self.frame_timestamp,
            marker: self.frame_left == 0,
        };
        self.video_seq = self.video_seq.wrapping_add(1);
        self.video_counter = self.video_counter.wrapping_add(1);
        Some(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio(sender: u32, counter: u32, sent_us: u64, len: usize) -> Vec<u8> {
        let mut p = Vec::new();
        write_audio(&mut p, sender, counter, sent_us, len);
        p
    }

    fn video(
        sender: u32,
        counter: u32,
        sent_us: u64,
        len: usize,
        first: bool,
        key: bool,
    ) -> Vec<u8> {
        let mut p = Vec::new();
        write_video(&mut p, sender, counter, sent_us, len, first, key);
        p
    }

    #[test]
    fn stamps_read_back_from_audio_and_video() {
        let a = audio(7, 3, 123_456, 80);
        assert_eq!(a.len(), 80);
        assert_eq!(
            read_stamp(&a),
            Some(Stamp {
                sender: 7,
                sent_us: 123_456,
                counter: 3,
                video: false
            })
        );
        let v = video(9, 11, 42, 1188, true, true);
        assert_eq!(v.len(), 1188);
        assert_eq!(&v[..2], &[0x10, 0x00]);
        assert_eq!(
            read_stamp(&v),
            Some(Stamp {
                sender: 9,
                sent_us: 42,
                counter: 11,
                video: true
            })
        );
        let short = video(1, u32::MAX, 2, 10, false, false);
        assert_eq!(short.len(), 2 + STAMP_LEN);
        assert_eq!(read_stamp(&short).map(|s| s.counter), Some(u32::MAX));
        assert_eq!(read_stamp(b"garbage"), None);
        assert_eq!(read_stamp(&a[..STAMP_LEN - 1]), None);
    }

    #[test]
    fn the_clock_makes_the_shape_with_counters_per_kind() {
        let shape = MediaShape {
            fps: 30,
            video_kbps: 1000,
            packet_bytes: 1200,
            keyframe_secs: 2,
            audio_bytes: 80,
            pace: 0.0,
        };
        let mut s = Synthetic::new(5, shape);
        let mut buf = Vec::new();
        let (mut audio, mut video, mut keyframes) = (Vec::new(), Vec::new(), 0);
        let mut wanted = false;
        for ms in (0..=2_000).step_by(5) {
            // One keyframe asked for at 1 s.
            if ms == 1_000 {
                wanted = true;
            }
            loop {
                buf.clear();
                let Some(due) = s.next(ms, || std::mem::take(&mut wanted), &mut buf) else {
                    break;
                };
                let stamp = read_stamp(&buf).expect("stamped");
                assert_eq!((stamp.sender, stamp.video), (5, due.video));
                if due.video {
                    assert!(buf.len() <= 1200 - RTP_HEADER);
                    if buf[0] == 0x10 && buf[1] == 0x00 {
                        keyframes += 1;
                    }
                    video.push((stamp.counter, due.sequence_number));
                } else {
                    audio.push(stamp.counter);
                }
            }
        }
        // 0..=2000 ms: 101 audio packets, 61 frames of 4166 bytes (4 packets each, 11 for the
        // keyframes at 0 s, 1 s (asked) and 2 s).
        assert_eq!(audio, (0..101).collect::<Vec<u32>>());
        assert_eq!(keyframes, 3);
        assert_eq!(video.len(), 58 * 4 + 3 * 11);
        for (i, (counter, seq)) in video.iter().enumerate() {
            assert_eq!((*counter as usize, *seq as usize), (i, i));
        }
    }

    #[test]
    fn the_pacer_spreads_frames_and_keeps_the_rate() {
        let shape = MediaShape {
            fps: 30,
            video_kbps: 1000,
            packet_bytes: 1200,
            keyframe_secs: 2,
            audio_bytes: 80,
            pace: 2.5,
        };
        let mut s = Synthetic::new(1, shape);
        let mut buf = Vec::new();
        // Video bytes sent in each 5 ms tick, the frames' last packets, and the tick that
        // ends the first frame (the keyframe at 0 s).
        let (mut per_tick, mut frames) = (Vec::new(), 0);
        let (mut audio, mut keyframe_ticks) = (0, None);
        for ms in (0..=4_000).step_by(5) {
            let mut bytes = 0;
            loop {
                buf.clear();
                let Some(due) = s.next(ms, || false, &mut buf) else {
                    break;
                };
                if due.video {
                    bytes += buf.len() + RTP_HEADER;
                    frames += usize::from(due.marker);
                    if due.marker && keyframe_ticks.is_none() {
                        keyframe_ticks = Some(per_tick.len() + 1);
                    }
                } else {
                    audio += 1;
                }
            }
            per_tick.push(bytes);
        }
        // 2.5 Mbit/s is 1562 bytes in 5 ms: a tick sends one full packet, or two when the
        // budget left over from the last one allows.
        assert!(per_tick.iter().all(|b| *b <= 2 * 1200), "{per_tick:?}");
        // The keyframe at 0 s (12.5 kB) takes some 40 ms instead of one tick.
        assert!(
            matches!(keyframe_ticks, Some(8..=10)),
            "{keyframe_ticks:?} {per_tick:?}"
        );
        // Pacing delays frames but drops none: 4 s is 120 frames (and one due at 4 s).
        assert!((120..=121).contains(&frames), "{frames} frames");
        // Audio is not paced: one every 20 ms.
        assert_eq!(audio, 201);
    }
}
