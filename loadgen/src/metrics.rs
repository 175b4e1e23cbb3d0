//! What the generator counts while it runs, lock-free (receive tasks add, the sampler reads
//! once a second), and what it reads of the server from /proc.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Latency buckets: 10 µs wide up to 1 ms, 100 µs up to 10 ms, 1 ms up to 100 ms, 10 ms up to
/// 1 s, then one overflow bucket.
const BUCKETS: usize = 100 + 90 + 90 + 90 + 1;

fn bucket_of(us: u64) -> usize {
    match us {
        0..1_000 => (us / 10) as usize,
        1_000..10_000 => 100 + ((us - 1_000) / 100) as usize,
        10_000..100_000 => 190 + ((us - 10_000) / 1_000) as usize,
        100_000..1_000_000 => 280 + ((us - 100_000) / 10_000) as usize,
        _ => BUCKETS - 1,
    }
}

/// The upper bound of bucket `i`, in µs.
fn bucket_upper(i: usize) -> u64 {
    let i = i as u64;
    match i {
        0..100 => (i + 1) * 10,
        100..190 => 1_000 + (i - 99) * 100,
        190..280 => 10_000 + (i - 189) * 1_000,
        280..370 => 100_000 + (i - 279) * 10_000,
        _ => u64::MAX,
    }
}

/// Counters of one member's receive side.
#[derive(Debug, Default)]
pub struct MemberCounters {
    /// Packets and bytes (RTP header included) received, duplicates and foreign packets too.
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// µs from the start of its join to its first received packet; 0 until then.
    pub join_us: AtomicU64,
    /// End to end, from the stamps' counters (see [`LossTracker`]): packets the senders sent
    /// from the first one this member received of each stream, and the distinct ones received.
    pub expected: AtomicU64,
    pub unique: AtomicU64,
    /// Packets the forwarded streams' RTP sequence numbers say should have come, from each
    /// stream's first packet. Blind to what the server withholds and renumbers over.
    pub seq_expected: AtomicU64,
}

/// Everything the receive tasks count.
#[derive(Debug)]
pub struct Metrics {
    pub members: Vec<MemberCounters>,
    pub sent_packets: AtomicU64,
    pub sent_bytes: AtomicU64,
    /// Packets the generator could not send (its socket would have blocked): lost before the
    /// server, yet counted as lost by the receivers.
    pub send_failed: AtomicU64,
    latency: Vec<AtomicU64>,
}

impl Metrics {
    pub fn new(members: usize) -> Metrics {
        Metrics {
            members: (0..members).map(|_| MemberCounters::default()).collect(),
            sent_packets: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
            send_failed: AtomicU64::new(0),
            latency: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn latency(&self, us: u64) {
        self.latency[bucket_of(us)].fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let per = |f: fn(&MemberCounters) -> &AtomicU64| -> Vec<u64> {
            self.members.iter().map(|m| f(m).load(Relaxed)).collect()
        };
        let member_packets = per(|m| &m.packets);
        let member_expected = per(|m| &m.expected);
        let member_unique = per(|m| &m.unique);
        let seq_expected = per(|m| &m.seq_expected);
        Snapshot {
            received: member_packets.iter().sum(),
            expected: member_expected.iter().sum(),
            unique: member_unique.iter().sum(),
            seq_expected: seq_expected.iter().sum(),
            member_packets,
            member_bytes: per(|m| &m.bytes),
            member_expected,
            member_unique,
            sent_packets: self.sent_packets.load(Relaxed),
            sent_bytes: self.sent_bytes.load(Relaxed),
            send_failed: self.send_failed.load(Relaxed),
            latency: self.latency.iter().map(|b| b.load(Relaxed)).collect(),
        }
    }

    /// Join times (µs) of the members that received something.
    pub fn join_times(&self) -> Vec<u64> {
        self.members
            .iter()
            .map(|m| m.join_us.load(Relaxed))
            .filter(|us| *us > 0)
            .collect()
    }
}

/// The counters at one instant.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub member_packets: Vec<u64>,
    pub member_bytes: Vec<u64>,
    /// Per member, end to end: packets expected from the stamps' counters, distinct ones
    /// received.
    pub member_expected: Vec<u64>,
    pub member_unique: Vec<u64>,
    /// Packets received by all members (duplicates and foreign packets too).
    pub received: u64,
    /// The sums of `member_expected` and `member_unique`.
    pub expected: u64,
    pub unique: u64,
    /// Packets the RTP sequence numbers say should have come, all members.
    pub seq_expected: u64,
    pub sent_packets: u64,
    pub sent_bytes: u64,
    pub send_failed: u64,
    pub latency: Vec<u64>,
}

/// `lost / expected`, 0..=1 (0 when nothing was expected).
fn share(expected: u64, got: u64) -> f64 {
    if expected == 0 {
        return 0.0;
    }
    expected.saturating_sub(got) as f64 / expected as f64
}

impl Snapshot {
    /// What happened between `earlier` and this one.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let diff = |a: &[u64], b: &[u64]| -> Vec<u64> {
            a.iter()
                .enumerate()
                .map(|(i, x)| x.saturating_sub(b.get(i).copied().unwrap_or(0)))
                .collect()
        };
        Snapshot {
            member_packets: diff(&self.member_packets, &earlier.member_packets),
            member_bytes: diff(&self.member_bytes, &earlier.member_bytes),
            member_expected: diff(&self.member_expected, &earlier.member_expected),
            member_unique: diff(&self.member_unique, &earlier.member_unique),
            received: self.received.saturating_sub(earlier.received),
            expected: self.expected.saturating_sub(earlier.expected),
            unique: self.unique.saturating_sub(earlier.unique),
            seq_expected: self.seq_expected.saturating_sub(earlier.seq_expected),
            sent_packets: self.sent_packets.saturating_sub(earlier.sent_packets),
            sent_bytes: self.sent_bytes.saturating_sub(earlier.sent_bytes),
            send_failed: self.send_failed.saturating_sub(earlier.send_failed),
            latency: diff(&self.latency, &earlier.latency),
        }
    }

    /// End-to-end loss, 0..=1: of the packets the senders sent after the first one each
    /// member received of each stream, the share that never reached it (withheld by the
    /// server, dropped, or late beyond [`LOSS_WINDOW`]).
    pub fn loss(&self) -> f64 {
        share(self.expected, self.unique)
    }

    /// The end-to-end loss of the member that lost the most.
    pub fn worst_member_loss(&self) -> f64 {
        self.member_expected
            .iter()
            .zip(&self.member_unique)
            .map(|(e, u)| share(*e, *u))
            .fold(0.0, f64::max)
    }

    /// Loss from the forwarded RTP sequence numbers, 0..=1: what the server's numbering
    /// admits to, blind to packets it withholds (it renumbers over them).
    pub fn seq_loss(&self) -> f64 {
        share(self.seq_expected, self.received)
    }

    /// The latency at quantile `q` (0..=1), in µs: the upper bound of its bucket.
    pub fn latency_quantile(&self, q: f64) -> Option<u64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.latency.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(bucket_upper(i));
            }
        }
        None
    }
}

/// How far back (in packets of one stream) a late packet is still told from a duplicate; an
/// older one counts as lost.
pub const LOSS_WINDOW: u64 = 1024;

/// One stream's packets as one receiver saw them, by the counters of the sender's stamps.
#[derive(Debug, Clone)]
struct StreamSeen {
    sender: u32,
    video: bool,
    first: u64,
    highest: u64,
    /// Bit `c % LOSS_WINDOW` is set when counter `c` (within the window below `highest`) came.
    seen: [u64; (LOSS_WINDOW / 64) as usize],
}

impl StreamSeen {
    fn new(sender: u32, video: bool, counter: u64) -> StreamSeen {
        let mut s = StreamSeen {
            sender,
            video,
            first: counter,
            highest: counter,
            seen: [0; (LOSS_WINDOW / 64) as usize],
        };
        s.mark(counter);
        s
    }

    fn slot(c: u64) -> (usize, u64) {
        let i = c % LOSS_WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn mark(&mut self, c: u64) {
        let (word, bit) = Self::slot(c);
        self.seen[word] |= bit;
    }

    /// (more packets expected, more distinct packets received) after counter `c` came.
    fn packet(&mut self, c: u64) -> (u64, u64) {
        if c > self.highest {
            let ahead = c - self.highest;
            if ahead >= LOSS_WINDOW {
                self.seen = [0; (LOSS_WINDOW / 64) as usize];
            } else {
                for k in self.highest + 1..c {
                    let (word, bit) = Self::slot(k);
                    self.seen[word] &= !bit;
                }
            }
            // `c`'s slot last held `c - LOSS_WINDOW`; mark overwrites it.
            let (word, bit) = Self::slot(c);
            self.seen[word] &= !bit;
            self.mark(c);
            self.highest = c;
            return (ahead, 1);
        }
        if self.highest - c >= LOSS_WINDOW {
            // Too late to tell from a duplicate: it stays counted as lost.
            return (0, 0);
        }
        let (word, bit) = Self::slot(c);
        if self.seen[word] & bit != 0 {
            return (0, 0);
        }
        self.seen[word] |= bit;
        if c < self.first {
            // Reordered ahead of the first packet received: the stream starts earlier.
            let more = self.first - c;
            self.first = c;
            return (more, 1);
        }
        (0, 1)
    }
}

/// End-to-end loss of one receive path (one track), per (sender, kind) stream, from the
/// counters in the payloads' stamps: expected = highest counter − first counter + 1, counting
/// from the first packet received of that stream (so a start that waits for a keyframe is not
/// loss), lost = expected − distinct counters received. Reordering within [`LOSS_WINDOW`]
/// packets is tolerated, duplicates count once. Owned by one receive task: no lock, and no
/// allocation but one per new stream.
#[derive(Debug, Default)]
pub struct LossTracker {
    streams: Vec<StreamSeen>,
}

impl LossTracker {
    /// Counts one stamped packet: returns how many more packets are expected and how many more
    /// distinct ones were received (each 0 or more; add them to the member's counters).
    pub fn packet(&mut self, sender: u32, video: bool, counter: u32) -> (u64, u64) {
        let c = u64::from(counter);
        match self
            .streams
            .iter_mut()
            .find(|s| s.sender == sender && s.video == video)
        {
            Some(s) => s.packet(c),
            None => {
                self.streams.push(StreamSeen::new(sender, video, c));
                (1, 1)
            }
        }
    }
}

/// A process's CPU time and resident memory, from /proc.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// User plus system CPU time, µs.
    pub cpu_us: u64,
    pub rss_bytes: u64,
}

/// Reads `/proc/<pid>/stat` (utime, stime) and `/proc/<pid>/status` (VmRSS).
pub fn proc_sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(ProcSample {
        cpu_us: ticks * 1_000_000 / clock_ticks(),
        rss_bytes: rss_kb * 1024,
    })
}

/// USER_HZ: 100 on every Linux this runs on (the kernel's exported tick for /proc times).
fn clock_ticks() -> u64 {
    100
}

/// The value at quantile `q` of `values` (sorted here), or 0 for none.
pub fn quantile(values: &mut [u64], q: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let rank = ((values.len() as f64) * q).ceil().max(1.0) as usize;
    values[rank.min(values.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_bound_their_values() {
        for us in [
            0, 9, 10, 999, 1_000, 1_050, 9_999, 10_000, 99_999, 100_000, 999_999,
        ] {
            let b = bucket_of(us);
            assert!(us < bucket_upper(b), "{us} in bucket {b}");
            if b > 0 {
                assert!(us >= bucket_upper(b - 1), "{us} above bucket {}", b - 1);
            }
        }
        assert_eq!(bucket_of(5_000_000), BUCKETS - 1);
    }

    #[test]
    fn quantiles_and_loss() {
        let m = Metrics::new(1);
        for us in 1..=100 {
            m.latency(us * 10);
        }
        m.members[0].expected.store(200, Relaxed);
        m.members[0].unique.store(199, Relaxed);
        m.members[0].packets.store(201, Relaxed);
        m.members[0].seq_expected.store(180, Relaxed);
        let s = m.snapshot().since(&Snapshot::default());
        assert_eq!(s.latency_quantile(0.5), Some(510));
        assert_eq!(s.latency_quantile(0.99), Some(1_000));
        assert!((s.loss() - 0.005).abs() < 1e-9);
        assert!((s.worst_member_loss() - 0.005).abs() < 1e-9);
        // More received than the numbering expected (duplicates): no loss, not negative.
        assert_eq!(s.seq_loss(), 0.0);
        assert_eq!(quantile(&mut [5, 1, 3], 0.5), 3);
    }

    /// Feeds `counters` of one stream; returns (expected, distinct received).
    fn feed(t: &mut LossTracker, counters: impl IntoIterator<Item = u32>) -> (u64, u64) {
        counters.into_iter().fold((0, 0), |(e, r), c| {
            let (de, dr) = t.packet(1, true, c);
            (e + de, r + dr)
        })
    }

    #[test]
    fn end_to_end_loss_counts_from_the_first_packet_received() {
        // The server withheld 0..100 (waiting for a keyframe), then lost 150 and 151.
        let mut t = LossTracker::default();
        let got = (100..150).chain(152..200);
        assert_eq!(feed(&mut t, got), (100, 98));
        // Duplicates count once; a reordered packet is not lost.
        let mut t = LossTracker::default();
        assert_eq!(feed(&mut t, [5, 6, 8, 7, 7, 8, 9, 9]), (5, 5));
        // Reordered ahead of the first one received.
        let mut t = LossTracker::default();
        assert_eq!(feed(&mut t, [10, 9, 11, 8]), (4, 4));
        // Streams are told apart by sender and kind.
        let mut t = LossTracker::default();
        assert_eq!(t.packet(1, true, 0), (1, 1));
        assert_eq!(t.packet(1, false, 50), (1, 1));
        assert_eq!(t.packet(2, true, 7), (1, 1));
        assert_eq!(t.packet(1, true, 2), (2, 1));
    }

    #[test]
    fn the_window_slides_without_forgetting_or_inventing_packets() {
        let w = LOSS_WINDOW as u32;
        let mut t = LossTracker::default();
        // Every other packet over many windows: half lost, whatever the wrap of the bitmap.
        let (e, r) = feed(&mut t, (0..10 * w).step_by(2));
        assert_eq!((e, r), (u64::from(10 * w - 1), u64::from(5 * w)));
        // A late one inside the window fills a hole once; one beyond it stays lost.
        assert_eq!(feed(&mut t, [10 * w - 3, 10 * w - 3]), (0, 1));
        assert_eq!(feed(&mut t, [10 * w - 3 - w - 2]), (0, 0));
        // A jump beyond the window.
        assert_eq!(
            feed(&mut t, [20 * w, 20 * w - 1]),
            (u64::from(10 * w + 2), 2)
        );
        assert_eq!(feed(&mut t, [20 * w]), (0, 0));
    }

    #[test]
    fn reads_this_process() {
        let s = proc_sample(std::process::id()).expect("own /proc");
        assert!(s.rss_bytes > 0);
    }
}
