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
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// µs from the start of its join to its first received packet; 0 until then.
    pub join_us: AtomicU64,
}

/// Everything the receive tasks count.
#[derive(Debug)]
pub struct Metrics {
    pub members: Vec<MemberCounters>,
    /// Packets the sequence numbers say should have come (per forwarded stream, from its first
    /// packet), and packets that came.
    pub expected: AtomicU64,
    pub received: AtomicU64,
    pub sent_packets: AtomicU64,
    pub sent_bytes: AtomicU64,
    latency: Vec<AtomicU64>,
}

impl Metrics {
    pub fn new(members: usize) -> Metrics {
        Metrics {
            members: (0..members).map(|_| MemberCounters::default()).collect(),
            expected: AtomicU64::new(0),
            received: AtomicU64::new(0),
            sent_packets: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
            latency: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn latency(&self, us: u64) {
        self.latency[bucket_of(us)].fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            member_packets: self
                .members
                .iter()
                .map(|m| m.packets.load(Relaxed))
                .collect(),
            member_bytes: self.members.iter().map(|m| m.bytes.load(Relaxed)).collect(),
            expected: self.expected.load(Relaxed),
            received: self.received.load(Relaxed),
            sent_packets: self.sent_packets.load(Relaxed),
            sent_bytes: self.sent_bytes.load(Relaxed),
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
    pub expected: u64,
    pub received: u64,
    pub sent_packets: u64,
    pub sent_bytes: u64,
    pub latency: Vec<u64>,
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
            expected: self.expected.saturating_sub(earlier.expected),
            received: self.received.saturating_sub(earlier.received),
            sent_packets: self.sent_packets.saturating_sub(earlier.sent_packets),
            sent_bytes: self.sent_bytes.saturating_sub(earlier.sent_bytes),
            latency: diff(&self.latency, &earlier.latency),
        }
    }

    /// Lost share of the expected packets, 0..=1.
    pub fn loss(&self) -> f64 {
        if self.expected == 0 {
            return 0.0;
        }
        self.expected.saturating_sub(self.received) as f64 / self.expected as f64
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
        m.expected.store(200, Relaxed);
        m.received.store(199, Relaxed);
        let s = m.snapshot().since(&Snapshot::default());
        assert_eq!(s.latency_quantile(0.5), Some(510));
        assert_eq!(s.latency_quantile(0.99), Some(1_000));
        assert!((s.loss() - 0.005).abs() < 1e-9);
        assert_eq!(quantile(&mut [5, 1, 3], 0.5), 3);
    }

    #[test]
    fn reads_this_process() {
        let s = proc_sample(std::process::id()).expect("own /proc");
        assert!(s.rss_bytes > 0);
    }
}
