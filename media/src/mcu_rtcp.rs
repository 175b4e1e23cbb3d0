//! RTCP reports on the plain-RTP leg toward an MCU (RFC 3550 §6.4): the server is an RTP
//! end point there, so it sends its own sender and receiver reports rather than relaying the
//! browser's (whose SSRCs, numbering and timing the bridge rewrites). Pure: time is an
//! argument, no sockets.
//!
//! Per bridged stream, [`Sent`] counts what goes to the MCU and [`Received`] what comes from
//! it (loss and jitter as in RFC 3550 A.3 and A.8). [`write_report`] builds the compound packet
//! sent every [`REPORT_INTERVAL`]: an SR (or an RR when nothing was sent) with one report block
//! for the MCU's stream, then an SDES CNAME, as every compound packet must carry.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Between two reports on one stream (RFC 3550's 5 s minimum, without randomisation: one
/// report per stream every 5 s is far below the 5 % bandwidth share).
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// The first report goes out this soon after the leg starts.
pub(crate) const FIRST_REPORT: Duration = Duration::from_secs(1);

const RTCP_SR: u8 = 200;
const RTCP_RR: u8 = 201;
const RTCP_SDES: u8 = 202;
const SDES_CNAME: u8 = 1;
/// Seconds from 1900 (NTP) to 1970 (Unix).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// What the server sent to the MCU on one stream.
#[derive(Debug, Default, Clone)]
pub(crate) struct Sent {
    packets: u32,
    octets: u32,
    /// The RTP timestamp of the latest packet, and when it left.
    last: Option<(u32, Instant)>,
}

impl Sent {
    pub(crate) fn on_packet(&mut self, timestamp: u32, payload_len: usize, now: Instant) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self
            .octets
            .wrapping_add(u32::try_from(payload_len).unwrap_or(u32::MAX));
        self.last = Some((timestamp, now));
    }
}

/// What the server received from the MCU on one stream.
#[derive(Debug, Default, Clone)]
pub(crate) struct Received {
    ssrc: u32,
    started: bool,
    base_seq: u16,
    max_seq: u16,
    /// Sequence number wrap-arounds, shifted left by 16.
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Interarrival jitter in timestamp units, scaled by 16 (RFC 3550 A.8).
    jitter: u32,
    /// The previous packet's transit time, in timestamp units.
    transit: Option<i64>,
    /// The middle 32 bits of the NTP time of the MCU's latest SR, and when it came.
    last_sr: Option<(u32, Instant)>,
}

impl Received {
    /// One RTP packet from the MCU; `arrival` in the stream's clock units on any fixed origin.
    pub(crate) fn on_packet(&mut self, ssrc: u32, seq: u16, timestamp: u32, arrival: i64) {
        if !self.started || ssrc != self.ssrc {
            *self = Received {
                ssrc,
                started: true,
                base_seq: seq,
                max_seq: seq,
                last_sr: self.last_sr.filter(|_| ssrc == self.ssrc),
                ..Received::default()
            };
        }
        self.received = self.received.wrapping_add(1);
        let delta = seq.wrapping_sub(self.max_seq);
        if delta != 0 && delta < 0x8000 {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(1 << 16);
            }
            self.max_seq = seq;
        }
        let transit = arrival - i64::from(timestamp);
        if let Some(previous) = self.transit {
            let d = (transit - previous).unsigned_abs();
            let d = u32::try_from(d).unwrap_or(u32::MAX);
            // J += (|D| - J/16) / 16, kept scaled by 16.
            self.jitter = self
                .jitter
                .wrapping_add(d)
                .wrapping_sub((self.jitter.wrapping_add(8)) >> 4);
        }
        self.transit = Some(transit);
    }

    /// The MCU's sender report: its NTP time, for LSR/DLSR.
    pub(crate) fn on_sender_report(&mut self, ssrc: u32, ntp: u64, now: Instant) {
        if ssrc == self.ssrc || !self.started {
            self.ssrc = ssrc;
            // The middle 32 bits of the 64-bit NTP timestamp (truncation intended).
            self.last_sr = Some(((ntp >> 16) as u32, now));
        }
    }

    /// The report block for this stream, and the interval counters moved on.
    fn report_block(&mut self, now: Instant) -> Option<[u8; 24]> {
        if !self.started {
            return None;
        }
        let extended_max = self.cycles | u32::from(self.max_seq);
        let expected = extended_max
            .wrapping_sub(u32::from(self.base_seq))
            .wrapping_add(1);
        let lost = i64::from(expected) - i64::from(self.received);
        // 24-bit signed, clamped.
        let cumulative = lost.clamp(-0x80_0000, 0x7F_FFFF) as i32;
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0u8
        } else {
            u8::try_from((lost_interval << 8) / i64::from(expected_interval)).unwrap_or(255)
        };
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => {
                let delay = now.saturating_duration_since(at);
                // Units of 1/65536 s.
                let dlsr = (delay.as_secs_f64() * 65_536.0).min(f64::from(u32::MAX)) as u32;
                (lsr, dlsr)
            }
            None => (0, 0),
        };
        let mut block = [0u8; 24];
        block[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        block[4] = fraction;
        block[5..8].copy_from_slice(&cumulative.to_be_bytes()[1..4]);
        block[8..12].copy_from_slice(&extended_max.to_be_bytes());
        block[12..16].copy_from_slice(&(self.jitter >> 4).to_be_bytes());
        block[16..20].copy_from_slice(&lsr.to_be_bytes());
        block[20..24].copy_from_slice(&dlsr.to_be_bytes());
        Some(block)
    }
}

/// The 64-bit NTP time of `wall`.
pub(crate) fn ntp_time(wall: SystemTime) -> u64 {
    let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs() + NTP_UNIX_OFFSET;
    let fraction = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

/// The NTP time of an SR from the MCU, if `datagram` (compound) holds one: `(ssrc, ntp)`.
pub(crate) fn sender_report(mut d: &[u8]) -> Option<(u32, u64)> {
    while d.len() >= 4 && d[0] >> 6 == 2 {
        let len = (usize::from(u16::from_be_bytes([d[2], d[3]])) + 1) * 4;
        let packet = d.get(..len)?;
        if packet[1] == RTCP_SR && packet.len() >= 16 {
            let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
            let mut ntp = [0u8; 8];
            ntp.copy_from_slice(&packet[8..16]);
            return Some((ssrc, u64::from_be_bytes(ntp)));
        }
        d = &d[len..];
    }
    None
}

/// Builds the compound report of one stream into `buf`: an SR when something was sent (its RTP
/// time extrapolated to `now` at `clock_rate`), else an RR; one report block when the MCU's
/// stream was heard; then SDES CNAME `cname` (at most 255 bytes).
pub(crate) fn write_report(
    buf: &mut Vec<u8>,
    ssrc: u32,
    sent: &Sent,
    received: &mut Received,
    clock_rate: u32,
    cname: &str,
    (now, wall): (Instant, SystemTime),
) {
    buf.clear();
    let block = received.report_block(now);
    let count = u8::from(block.is_some());
    match sent.last {
        Some((timestamp, at)) => {
            let elapsed = now.saturating_duration_since(at).as_secs_f64();
            let rtp_now = timestamp.wrapping_add((elapsed * f64::from(clock_rate)) as u32);
            let words: u16 = 6 + 6 * u16::from(count);
            buf.extend_from_slice(&[0x80 | count, RTCP_SR]);
            buf.extend_from_slice(&words.to_be_bytes());
            buf.extend_from_slice(&ssrc.to_be_bytes());
            buf.extend_from_slice(&ntp_time(wall).to_be_bytes());
            buf.extend_from_slice(&rtp_now.to_be_bytes());
            buf.extend_from_slice(&sent.packets.to_be_bytes());
            buf.extend_from_slice(&sent.octets.to_be_bytes());
        }
        None => {
            let words: u16 = 1 + 6 * u16::from(count);
            buf.extend_from_slice(&[0x80 | count, RTCP_RR]);
            buf.extend_from_slice(&words.to_be_bytes());
            buf.extend_from_slice(&ssrc.to_be_bytes());
        }
    }
    if let Some(block) = block {
        buf.extend_from_slice(&block);
    }
    // SDES: one chunk (SSRC, CNAME item, end), padded to 32 bits.
    let name = &cname.as_bytes()[..cname.len().min(255)];
    let chunk = 4 + 2 + name.len() + 1;
    let padded = chunk.div_ceil(4) * 4;
    let words = u16::try_from(padded / 4).unwrap_or(u16::MAX);
    buf.extend_from_slice(&[0x81, RTCP_SDES]);
    buf.extend_from_slice(&words.to_be_bytes());
    buf.extend_from_slice(&ssrc.to_be_bytes());
    buf.extend_from_slice(&[SDES_CNAME, name.len() as u8]);
    buf.extend_from_slice(name);
    buf.resize(buf.len() + (padded - chunk) + 1, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], i: usize) -> u32 {
        u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
    }

    #[test]
    fn a_sender_report_with_a_block_and_a_cname() {
        let t0 = Instant::now();
        let mut sent = Sent::default();
        for i in 0..10u32 {
            sent.on_packet(1000 + i * 960, 100, t0);
        }
        let mut received = Received::default();
        // 20 sent by the MCU, 2 lost (seq 5 and 6), and a wrap at 65535.
        for seq in (65_530u16..=65_535).chain(0..14) {
            if seq == 5 || seq == 6 {
                continue;
            }
            received.on_packet(0xABCD, seq, u32::from(seq) * 960, i64::from(seq) * 960);
        }
        received.on_sender_report(0xABCD, 0x1122_3344_5566_7788, t0);
        let mut buf = Vec::new();
        let later = t0 + Duration::from_millis(500);
        write_report(
            &mut buf,
            0x1234,
            &sent,
            &mut received,
            48_000,
            "confgate",
            (later, UNIX_EPOCH + Duration::from_secs(1)),
        );
        assert_eq!(buf.len() % 4, 0);
        assert_eq!((buf[0], buf[1]), (0x81, RTCP_SR));
        let sr_len = (usize::from(u16::from_be_bytes([buf[2], buf[3]])) + 1) * 4;
        assert_eq!(sr_len, 52);
        assert_eq!(u32_at(&buf, 4), 0x1234);
        assert_eq!(u32_at(&buf, 8), (NTP_UNIX_OFFSET + 1) as u32, "NTP seconds");
        assert_eq!(u32_at(&buf, 16), 1000 + 9 * 960 + 24_000, "RTP time now");
        assert_eq!((u32_at(&buf, 20), u32_at(&buf, 24)), (10, 1000));
        let block = &buf[28..52];
        assert_eq!(u32_at(block, 0), 0xABCD);
        assert_eq!(block[4], 25, "fraction lost: 2 of 20, in 1/256");
        assert_eq!(&block[5..8], &[0, 0, 2], "cumulative lost");
        assert_eq!(
            u32_at(block, 8),
            (1 << 16) | 13,
            "extended highest sequence"
        );
        assert_eq!(u32_at(block, 16), 0x3344_5566, "LSR");
        assert_eq!(u32_at(block, 20), 32_768, "DLSR: 0.5 s");
        let sdes = &buf[52..];
        assert_eq!((sdes[0], sdes[1]), (0x81, RTCP_SDES));
        assert_eq!(u32_at(sdes, 4), 0x1234);
        assert_eq!((sdes[8], sdes[9]), (SDES_CNAME, 8));
        assert_eq!(&sdes[10..18], b"confgate");
        assert_eq!(
            sender_report(&buf),
            Some((
                0x1234,
                u64::from_be_bytes(buf[8..16].try_into().expect("8"))
            ))
        );
    }

    #[test]
    fn a_receiver_report_before_anything_was_sent_and_nothing_before_anything_came() {
        let mut buf = Vec::new();
        let now = Instant::now();
        write_report(
            &mut buf,
            7,
            &Sent::default(),
            &mut Received::default(),
            90_000,
            "c",
            (now, SystemTime::now()),
        );
        assert_eq!(
            (buf[0], buf[1], buf[3]),
            (0x80, RTCP_RR, 1),
            "an RR without blocks"
        );
        assert_eq!(buf.len(), 8 + 4 + 8, "then SDES");
        assert_eq!(buf.len() % 4, 0);
    }

    #[test]
    fn jitter_follows_uneven_arrival_and_the_interval_loss_resets() {
        let mut r = Received::default();
        for (i, arrival) in [0i64, 3000, 6000, 9900, 12000].into_iter().enumerate() {
            r.on_packet(1, i as u16, i as u32 * 3000, arrival);
        }
        assert!(r.jitter > 0, "uneven arrival makes jitter");
        let now = Instant::now();
        let first = r.report_block(now).expect("block");
        assert_eq!(first[4], 0);
        let again = r.report_block(now).expect("block");
        assert_eq!(again[4], 0, "no packets expected in the interval: no loss");
        assert_eq!(sender_report(&[0x80, 201, 0, 1, 0, 0, 0, 1]), None);
        assert_eq!(sender_report(&[0x80, 200, 0, 9]), None, "truncated");
    }
}
