//! Per-packet rewriting of forwarded RTP: sequence numbers and timestamps, payload types and
//! header-extension ids. Pure and allocation-free.
//!
//! A forwarded track keeps one server-chosen SSRC for its whole life, whatever happens on the
//! publisher side (a new publish connection with a new SSRC, forwarding paused and resumed). A
//! receiver must see one continuous stream on that SSRC: a jump in sequence numbers reads as
//! loss (and NACK storms), a jump back as duplicates. [`SequenceRewriter`] keeps the outgoing
//! numbering continuous across such switches, and lets the timestamp advance by the wall time
//! that really passed, so playout stays in sync.

use std::time::Instant;

/// `a` is later than `b` in RFC 3550 serial-number order.
fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// How far behind the newest packet a late one is still forwarded (a quarter of the sequence
/// space): the straggler floor trails the stream by this much, so a long stream is never
/// mistaken for an old one.
const MAX_LATE: u16 = 0x4000;

#[derive(Debug, Clone, Copy)]
struct Mapping {
    source_ssrc: u32,
    seq_offset: u16,
    ts_offset: u32,
    /// Incoming packets older than this are dropped: stragglers from before the switch (they
    /// would land on numbers already used), or from more than [`MAX_LATE`] ago. The first
    /// incoming sequence number under this mapping, then trailing the newest by `MAX_LATE`.
    base_seq: u16,
    highest_out_seq: u16,
    highest_out_ts: u32,
    highest_at: Instant,
}

/// Continuous sequence numbers and timestamps for one forwarded track.
#[derive(Debug, Clone)]
pub(crate) struct SequenceRewriter {
    clock_rate: u32,
    mapping: Option<Mapping>,
    resync: bool,
}

impl SequenceRewriter {
    pub(crate) fn new(clock_rate: u32) -> Self {
        SequenceRewriter {
            clock_rate: clock_rate.max(1),
            mapping: None,
            resync: false,
        }
    }

    /// Forwarding stopped: the next forwarded packet continues the numbering where it stopped.
    pub(crate) fn pause(&mut self) {
        self.resync = true;
    }

    pub(crate) fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    pub(crate) fn set_clock_rate(&mut self, clock_rate: u32) {
        self.clock_rate = clock_rate.max(1);
    }

    /// The outgoing `(sequence number, timestamp)` for an incoming packet, or `None` for a
    /// straggler that must not be forwarded.
    pub(crate) fn rewrite(
        &mut self,
        ssrc: u32,
        seq: u16,
        ts: u32,
        now: Instant,
    ) -> Option<(u16, u32)> {
        let mapping = match self.mapping {
            Some(m) if m.source_ssrc == ssrc && !self.resync => m,
            Some(previous) => {
                let elapsed = now.saturating_duration_since(previous.highest_at);
                let ticks = (elapsed.as_secs_f64() * f64::from(self.clock_rate)) as u64;
                // At least one tick, so two frames never share a timestamp across the switch.
                let ticks = ticks.clamp(1, u64::from(u32::MAX / 2)) as u32;
                let out_seq = previous.highest_out_seq.wrapping_add(1);
                let out_ts = previous.highest_out_ts.wrapping_add(ticks);
                let m = Mapping {
                    source_ssrc: ssrc,
                    seq_offset: out_seq.wrapping_sub(seq),
                    ts_offset: out_ts.wrapping_sub(ts),
                    base_seq: seq,
                    highest_out_seq: out_seq,
                    highest_out_ts: out_ts,
                    highest_at: now,
                };
                self.resync = false;
                self.mapping = Some(m);
                return Some((out_seq, out_ts));
            }
            None => {
                // The first source passes through unchanged.
                let m = Mapping {
                    source_ssrc: ssrc,
                    seq_offset: 0,
                    ts_offset: 0,
                    base_seq: seq,
                    highest_out_seq: seq,
                    highest_out_ts: ts,
                    highest_at: now,
                };
                self.resync = false;
                self.mapping = Some(m);
                return Some((seq, ts));
            }
        };
        if seq != mapping.base_seq && !seq_newer(seq, mapping.base_seq) {
            return None;
        }
        let out_seq = seq.wrapping_add(mapping.seq_offset);
        let out_ts = ts.wrapping_add(mapping.ts_offset);
        if seq_newer(out_seq, mapping.highest_out_seq) {
            let base_seq = if seq.wrapping_sub(mapping.base_seq) > MAX_LATE {
                seq.wrapping_sub(MAX_LATE)
            } else {
                mapping.base_seq
            };
            self.mapping = Some(Mapping {
                base_seq,
                highest_out_seq: out_seq,
                highest_out_ts: out_ts,
                highest_at: now,
                ..mapping
            });
        }
        Some((out_seq, out_ts))
    }
}

/// Publisher payload type -> subscriber payload type, for one forwarded track on one subscriber
/// connection. Payload types are 7 bits, so a flat table is both the smallest and fastest map.
#[derive(Clone)]
pub(crate) struct PayloadTypeMap([u8; 128]);

const UNMAPPED: u8 = 0xFF;

impl PayloadTypeMap {
    pub(crate) fn new() -> Self {
        PayloadTypeMap([UNMAPPED; 128])
    }

    pub(crate) fn insert(&mut self, from: u8, to: u8) {
        if let Some(slot) = self.0.get_mut(usize::from(from)) {
            *slot = to & 0x7F;
        }
    }

    pub(crate) fn get(&self, from: u8) -> Option<u8> {
        match self.0.get(usize::from(from)) {
            Some(&UNMAPPED) | None => None,
            Some(&to) => Some(to),
        }
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.iter().all(|&to| to == UNMAPPED)
    }
}

impl std::fmt::Debug for PayloadTypeMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .enumerate()
                    .filter(|(_, to)| **to != UNMAPPED)
                    .map(|(from, to)| (from, *to)),
            )
            .finish()
    }
}

/// Publisher header-extension id -> subscriber id. Ids are at most 255 (two-byte form); 0
/// means "not forwarded". Only extensions whose meaning survives forwarding are mapped (audio
/// level, video orientation): per-hop ones (transport-cc, abs-send-time, mid, rid) would lie.
#[derive(Clone)]
pub(crate) struct ExtensionMap([u8; 256]);

impl ExtensionMap {
    pub(crate) fn new() -> Self {
        ExtensionMap([0; 256])
    }

    pub(crate) fn insert(&mut self, from: u8, to: u8) {
        self.0[usize::from(from)] = to;
    }

    pub(crate) fn get(&self, from: u8) -> Option<u8> {
        match self.0[usize::from(from)] {
            0 => None,
            to => Some(to),
        }
    }
}

impl std::fmt::Debug for ExtensionMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .enumerate()
                    .filter(|(_, to)| **to != 0)
                    .map(|(from, to)| (from, *to)),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn first_source_passes_through_and_reordering_survives() {
        let t0 = Instant::now();
        let mut r = SequenceRewriter::new(90_000);
        assert_eq!(r.rewrite(1, 100, 5000, t0), Some((100, 5000)));
        assert_eq!(r.rewrite(1, 102, 8000, t0), Some((102, 8000)));
        assert_eq!(r.rewrite(1, 101, 5000, t0), Some((101, 5000)));
        assert_eq!(r.rewrite(1, 103, 8000, t0), Some((103, 8000)));
    }

    #[test]
    fn wraps_around_sequence_and_timestamp() {
        let t0 = Instant::now();
        let mut r = SequenceRewriter::new(48_000);
        assert_eq!(
            r.rewrite(1, 65535, u32::MAX - 10, t0),
            Some((65535, u32::MAX - 10))
        );
        assert_eq!(r.rewrite(1, 0, 949, t0), Some((0, 949)));
        // An old packet from before the first one is a straggler.
        assert_eq!(r.rewrite(1, 65534, 0, t0), None);
    }

    #[test]
    fn a_long_stream_is_forwarded_through_every_wrap() {
        let t0 = Instant::now();
        let mut r = SequenceRewriter::new(90_000);
        // Four times around the sequence space, from an arbitrary start.
        for i in 0..4 * 65_536u32 {
            let seq = (40_000 + i) as u16;
            let ts = i.wrapping_mul(3000);
            assert_eq!(
                r.rewrite(1, seq, ts, t0),
                Some((seq, ts)),
                "packet {i} of a continuous stream"
            );
            // A packet late by 100 is still forwarded, at its own number.
            if i > 100 && i % 1000 == 0 {
                let late = seq.wrapping_sub(100);
                assert_eq!(r.rewrite(1, late, 0, t0).map(|(s, _)| s), Some(late));
            }
        }
        // One from half the sequence space ago is not.
        let newest = (40_000 + 4 * 65_536u32 - 1) as u16;
        assert_eq!(r.rewrite(1, newest.wrapping_sub(0x7000), 0, t0), None);
    }

    #[test]
    fn a_new_source_continues_the_numbering() {
        let t0 = Instant::now();
        let mut r = SequenceRewriter::new(90_000);
        r.rewrite(1, 500, 1000, t0);
        r.rewrite(1, 501, 4000, t0);
        let later = t0 + Duration::from_millis(100);
        // New SSRC, unrelated numbering: continues at 502, timestamp advanced by 100 ms.
        assert_eq!(r.rewrite(2, 9, 77, later), Some((502, 4000 + 9000)));
        assert_eq!(
            r.rewrite(2, 10, 3077, later),
            Some((503, 4000 + 9000 + 3000))
        );
        // A straggler of the new source from before its first packet is dropped.
        assert_eq!(r.rewrite(2, 8, 0, later), None);
    }

    #[test]
    fn pause_and_resume_leave_no_gap() {
        let t0 = Instant::now();
        let mut r = SequenceRewriter::new(48_000);
        for i in 0..10u16 {
            r.rewrite(
                7,
                1000 + i,
                960 * u32::from(i),
                t0 + Duration::from_millis(20 * u64::from(i)),
            );
        }
        r.pause();
        // 50 packets (1 s) are not forwarded, then forwarding resumes.
        let resume = t0 + Duration::from_millis(20 * 60);
        let (seq, ts) = r.rewrite(7, 1060, 960 * 60, resume).expect("forwarded");
        assert_eq!(seq, 1010);
        // The timestamp advanced by the real 1020 ms since the last forwarded packet.
        assert_eq!(ts, 960 * 9 + 48 * 1020);
        assert_eq!(r.rewrite(7, 1061, 960 * 61, resume), Some((1011, ts + 960)));
    }

    #[test]
    fn an_immediate_switch_still_advances_the_timestamp() {
        let t0 = Instant::now();
        let mut r = SequenceRewriter::new(90_000);
        r.rewrite(1, 1, 100, t0);
        assert_eq!(r.rewrite(2, 50, 50, t0), Some((2, 101)));
    }

    #[test]
    fn payload_type_map() {
        let mut m = PayloadTypeMap::new();
        assert!(m.is_empty());
        m.insert(96, 100);
        assert_eq!(m.get(96), Some(100));
        assert_eq!(m.get(97), None);
        assert_eq!(m.get(200), None);
        assert!(!m.is_empty());
    }

    #[test]
    fn extension_map() {
        let mut m = ExtensionMap::new();
        m.insert(1, 3);
        assert_eq!(m.get(1), Some(3));
        assert_eq!(m.get(2), None);
        assert_eq!(m.get(255), None);
    }
}
