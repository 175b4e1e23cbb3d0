//! Throttling of guesses: join codes, passwords and logins that fail.
//!
//! [`FailureWindow`] is pure (time is an input): after `max_failures` failures
//! from one address within `window`, further attempts are refused until the
//! oldest failure leaves the window. A success does not reset the count, so a
//! guesser holding one valid code gains nothing.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Addresses tracked at most; past this the oldest idle entries are dropped
/// first, so that a flood of addresses cannot grow memory without bound.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug)]
pub struct FailureWindow {
    max_failures: usize,
    window: Duration,
    failures: HashMap<IpAddr, VecDeque<Instant>>,
}

impl FailureWindow {
    pub fn new(max_failures: u32, window: Duration) -> FailureWindow {
        FailureWindow {
            max_failures: max_failures.max(1) as usize,
            window,
            failures: HashMap::new(),
        }
    }

    /// `Err(retry_after)` when `ip` may not try now.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let window = self.window;
        let Some(times) = self.failures.get_mut(&ip) else {
            return Ok(());
        };
        while times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            times.pop_front();
        }
        if times.is_empty() {
            self.failures.remove(&ip);
            return Ok(());
        }
        if times.len() >= self.max_failures {
            let oldest = times.front().copied().unwrap_or(now);
            return Err((oldest + window)
                .saturating_duration_since(now)
                .max(Duration::from_secs(1)));
        }
        Ok(())
    }

    /// Records a failed attempt from `ip`.
    pub fn fail(&mut self, ip: IpAddr, now: Instant) {
        if self.failures.len() >= MAX_TRACKED && !self.failures.contains_key(&ip) {
            self.prune(now);
        }
        let times = self.failures.entry(ip).or_default();
        times.push_back(now);
        while times.len() > self.max_failures {
            times.pop_front();
        }
    }

    /// Drops addresses whose failures have all left the window; when still
    /// full, drops the entries whose newest failure is oldest.
    fn prune(&mut self, now: Instant) {
        let window = self.window;
        self.failures.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.saturating_duration_since(*t) < window)
        });
        if self.failures.len() >= MAX_TRACKED {
            let mut newest: Vec<(Instant, IpAddr)> = self
                .failures
                .iter()
                .filter_map(|(ip, t)| t.back().map(|t| (*t, *ip)))
                .collect();
            newest.sort_unstable();
            for (_, ip) in newest.iter().take(MAX_TRACKED / 10) {
                self.failures.remove(ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eleventh_attempt_is_refused_until_the_window_passes() {
        let start = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        let other: IpAddr = "192.0.2.8".parse().expect("ip");
        let mut w = FailureWindow::new(10, Duration::from_secs(3600));
        for i in 0..10 {
            let now = start + Duration::from_secs(i);
            assert_eq!(w.check(ip, now), Ok(()), "attempt {}", i + 1);
            w.fail(ip, now);
        }
        let now = start + Duration::from_secs(10);
        assert_eq!(w.check(ip, now), Err(Duration::from_secs(3590)));
        assert_eq!(
            w.check(other, now),
            Ok(()),
            "other addresses are not affected"
        );
        // The first failure leaves the window after an hour: one more try.
        let later = start + Duration::from_secs(3600);
        assert_eq!(w.check(ip, later), Ok(()));
        w.fail(ip, later);
        assert!(w.check(ip, later).is_err());
    }

    #[test]
    fn brute_force_over_six_digits_is_stopped() {
        let start = Instant::now();
        let ip: IpAddr = "198.51.100.1".parse().expect("ip");
        let mut w = FailureWindow::new(10, Duration::from_secs(3600));
        let mut tried = 0;
        // One guess per second for a day: at most 10 per hour get through.
        for second in 0..86_400u64 {
            let now = start + Duration::from_secs(second);
            if w.check(ip, now).is_ok() {
                tried += 1;
                w.fail(ip, now);
            }
        }
        assert_eq!(tried, 240, "a day buys 240 guesses of 1,000,000");
    }
}
