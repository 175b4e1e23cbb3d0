//! The RTP a subscribe connection sends without rtc's write path: each forwarded copy is
//! written into the send batch and sealed there ([`Sealer`]), kept for retransmission, and
//! counted for the sender reports. rtc still runs the connection (ICE, DTLS, RTCP in and out);
//! it only no longer carries the copies, which were most of the loop's work.
//!
//! What rtc's interceptors did for these packets is done here instead:
//! - NACKs are answered from a history of [`HISTORY`] packets per video stream (same SSRC,
//!   same sequence number: no RTX is negotiated);
//! - a sender report per stream every [`REPORT_INTERVAL`], written through rtc (SRTCP).

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp;
use rtc::shared::marshal::{Marshal, MarshalSize};

use crate::batch::SendBatch;
use crate::srtp_out::Sealer;

/// Packets of each outgoing video stream kept for retransmission on a NACK: 256 is 2 s of
/// 1 Mbit/s video (about 0.6 s at 4 Mbit/s), several round trips on any path a conference
/// works over. A power of two: the slot is the sequence number's low bits.
pub(crate) const HISTORY: usize = 256;

/// How often each stream's sender report goes out (rtc's default interval).
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// A stream that sent nothing for this long gets no more reports until it sends again.
const REPORT_IDLE: Duration = Duration::from_secs(5);

struct Sent {
    index: u64,
    packet: rtp::Packet,
}

/// One outgoing SSRC.
struct OutStream {
    ssrc: u32,
    clock_rate: u32,
    /// The highest packet index sent: rollover count × 2^16 + sequence number.
    highest: u64,
    /// By sequence number modulo [`HISTORY`]; empty for audio (no NACK is negotiated for it).
    history: Vec<Option<Sent>>,
    /// The RTP timestamp of the newest frame and when its first packet left.
    frame_timestamp: u32,
    frame_time: Instant,
    last_sent: Instant,
    packets: u32,
    octets: u32,
}

impl OutStream {
    fn new(ssrc: u32, clock_rate: u32, keep: bool, packet: &rtp::Packet, now: Instant) -> Self {
        let mut history = Vec::new();
        if keep {
            history.resize_with(HISTORY, || None);
        }
        OutStream {
            ssrc,
            clock_rate,
            highest: u64::from(packet.header.sequence_number),
            history,
            frame_timestamp: packet.header.timestamp,
            frame_time: now,
            last_sent: now,
            packets: 0,
            octets: 0,
        }
    }

    /// The packet index of `seq`: the one nearest the highest sent (RFC 3711 §3.3.1). None
    /// for a late packet from before the stream's first one across a wrap: it would need a
    /// rollover count of -1, and no receiver could open it.
    fn index(&mut self, seq: u16) -> Option<u64> {
        let delta = i64::from(seq.wrapping_sub(self.highest as u16) as i16);
        let index = u64::try_from(self.highest as i64 + delta).ok()?;
        self.highest = self.highest.max(index);
        Some(index)
    }

    fn count(&mut self, packet: &rtp::Packet, now: Instant) {
        if packet.header.timestamp != self.frame_timestamp {
            self.frame_timestamp = packet.header.timestamp;
            self.frame_time = now;
        }
        self.last_sent = now;
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(packet.payload.len() as u32);
    }

    fn report(&self, now: Instant, wall: SystemTime) -> SenderReport {
        let elapsed = now.saturating_duration_since(self.frame_time).as_secs_f64();
        SenderReport {
            ssrc: self.ssrc,
            ntp_time: crate::mcu_rtcp::ntp_time(wall),
            rtp_time: self
                .frame_timestamp
                .wrapping_add((elapsed * f64::from(self.clock_rate)) as u32),
            packet_count: self.packets,
            octet_count: self.octets,
            ..Default::default()
        }
    }
}

/// Writes `packet` into `buf` and seals it as packet `index` of its stream.
pub(crate) fn seal_into(
    sealer: &mut Sealer,
    packet: &rtp::Packet,
    index: u64,
    buf: &mut bytes::BytesMut,
) -> Result<(), ()> {
    let len = packet.marshal_size();
    buf.resize(len, 0);
    packet.marshal_to(&mut buf[..]).map_err(|_| ())?;
    sealer
        .seal(buf, packet.header.marshal_size(), index)
        .map_err(|_| ())
}

/// The sending side of one subscribe connection once DTLS is up.
pub(crate) struct DirectSender {
    sealer: Sealer,
    to: SocketAddr,
    streams: Vec<OutStream>,
    next_report: Instant,
}

impl DirectSender {
    pub(crate) fn new(sealer: Sealer, to: SocketAddr, now: Instant) -> Self {
        DirectSender {
            sealer,
            to,
            streams: Vec::new(),
            next_report: now + REPORT_INTERVAL,
        }
    }

    /// Where the connection's selected candidate pair now leads.
    pub(crate) fn set_destination(&mut self, to: SocketAddr) {
        self.to = to;
    }

    /// Queues `packet` on `batch`; `keep` holds it for retransmission (video). False if it
    /// could not be sealed (nothing is queued then).
    pub(crate) fn send(
        &mut self,
        packet: rtp::Packet,
        clock_rate: u32,
        keep: bool,
        now: Instant,
        batch: &mut SendBatch,
    ) -> bool {
        let ssrc = packet.header.ssrc;
        let stream = match self.streams.iter().position(|s| s.ssrc == ssrc) {
            Some(i) => &mut self.streams[i],
            None => {
                self.streams
                    .push(OutStream::new(ssrc, clock_rate, keep, &packet, now));
                let last = self.streams.len() - 1;
                &mut self.streams[last]
            }
        };
        let Some(index) = stream.index(packet.header.sequence_number) else {
            return false;
        };
        let sealer = &mut self.sealer;
        if batch
            .push_with(self.to, |buf| seal_into(sealer, &packet, index, buf))
            .is_err()
        {
            return false;
        }
        stream.count(&packet, now);
        if !stream.history.is_empty() {
            let slot = usize::from(packet.header.sequence_number) % HISTORY;
            stream.history[slot] = Some(Sent { index, packet });
        }
        true
    }

    /// Queues again every packet `nack` asks for that is still kept; returns how many.
    pub(crate) fn resend(&mut self, nack: &TransportLayerNack, batch: &mut SendBatch) -> usize {
        let Some(stream) = self.streams.iter().find(|s| s.ssrc == nack.media_ssrc) else {
            return 0;
        };
        if stream.history.is_empty() {
            return 0;
        }
        let mut sent = 0;
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                let Some(kept) = &stream.history[usize::from(seq) % HISTORY] else {
                    continue;
                };
                if kept.packet.header.sequence_number != seq {
                    continue;
                }
                let sealer = &mut self.sealer;
                if batch
                    .push_with(self.to, |buf| {
                        seal_into(sealer, &kept.packet, kept.index, buf)
                    })
                    .is_ok()
                {
                    sent += 1;
                }
            }
        }
        sent
    }

    /// The sender reports due at `now`, one per stream that sent lately; empty until due.
    pub(crate) fn reports_due(&mut self, now: Instant) -> Vec<SenderReport> {
        if now < self.next_report {
            return Vec::new();
        }
        self.next_report = now + REPORT_INTERVAL;
        let wall = SystemTime::now();
        self.streams
            .iter()
            .filter(|s| s.packets > 0 && now.saturating_duration_since(s.last_sent) < REPORT_IDLE)
            .map(|s| s.report(now, wall))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp_out::{MasterKeys, Profile};
    use rtc::crypto::default_provider;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::NackPair;
    use rtc::srtp::context::Context;
    use rtc::srtp::protection_profile::ProtectionProfile;

    fn keys() -> MasterKeys {
        MasterKeys {
            profile: Profile::AeadAes128Gcm,
            key: vec![7; 16],
            salt: vec![9; 12],
        }
    }

    fn sender(now: Instant) -> DirectSender {
        let provider = default_provider().expect("provider");
        let sealer = Sealer::new(provider.crypto(), &keys()).expect("sealer");
        DirectSender::new(sealer, "127.0.0.1:9".parse().expect("addr"), now)
    }

    /// What the browser's SRTP context makes of what was queued.
    fn receiver() -> Context {
        let provider = default_provider().expect("provider");
        let k = keys();
        Context::new(
            &k.key,
            &k.salt,
            ProtectionProfile::AeadAes128Gcm,
            None,
            None,
            provider.crypto(),
        )
        .expect("context")
    }

    fn packet(ssrc: u32, seq: u16, timestamp: u32) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                payload_type: 96,
                sequence_number: seq,
                timestamp,
                ssrc,
                ..Default::default()
            },
            payload: bytes::Bytes::from(vec![seq as u8; 100]),
        }
    }

    #[test]
    fn the_index_follows_the_rollover_and_late_packets() {
        let now = Instant::now();
        let mut s = OutStream::new(1, 90_000, false, &packet(1, 65_534, 0), now);
        assert_eq!(s.index(65_534), Some(65_534));
        assert_eq!(s.index(65_535), Some(65_535));
        assert_eq!(s.index(0), Some(65_536), "wrapped: rollover count 1");
        assert_eq!(s.index(65_535), Some(65_535), "late, before the wrap");
        assert_eq!(s.index(1), Some(65_537));
        assert_eq!(s.highest, 65_537);

        // A stream that starts just after a wrap: a straggler from before it has no index,
        // and does not move the highest.
        let mut s = OutStream::new(1, 90_000, false, &packet(1, 5, 0), now);
        assert_eq!(s.index(5), Some(5));
        assert_eq!(s.index(65_535), None);
        assert_eq!(s.highest, 5);
        assert_eq!(s.index(6), Some(6));
    }

    /// Packets across a wrap and a retransmission all open in the receiver's context.
    #[test]
    fn sent_and_resent_packets_open_at_the_receiver() {
        let now = Instant::now();
        let mut direct = sender(now);
        let mut batch = SendBatch::default();
        let seqs = [65_533u16, 65_534, 65_535, 0, 1, 2];
        for (i, seq) in seqs.into_iter().enumerate() {
            assert!(direct.send(
                packet(0xAB, seq, i as u32 * 3000),
                90_000,
                true,
                now,
                &mut batch
            ));
        }
        let nack = TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 0xAB,
            // 65535 and 1 (bit 1 of the mask after 65535 is seq 1).
            nacks: vec![NackPair {
                packet_id: 65_535,
                lost_packets: 0b10,
            }],
        };
        assert_eq!(direct.resend(&nack, &mut batch), 2);
        let unknown = TransportLayerNack {
            media_ssrc: 0xCD,
            ..nack.clone()
        };
        assert_eq!(
            direct.resend(&unknown, &mut batch),
            0,
            "not a stream we send"
        );

        let mut rx = receiver();
        let queued = batch.take_for_test();
        assert_eq!(queued.len(), seqs.len() + 2);
        for (datagram, _) in &queued[..seqs.len()] {
            rx.decrypt_rtp(datagram).expect("opens");
        }
        // The retransmissions are the same packets again, byte for byte.
        assert_eq!(queued[seqs.len()].0, queued[2].0);
        assert_eq!(queued[seqs.len() + 1].0, queued[4].0);
    }

    #[test]
    fn audio_is_not_kept_for_retransmission() {
        let now = Instant::now();
        let mut direct = sender(now);
        let mut batch = SendBatch::default();
        assert!(direct.send(packet(0xA0, 10, 0), 48_000, false, now, &mut batch));
        let nack = TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 0xA0,
            nacks: vec![NackPair {
                packet_id: 10,
                lost_packets: 0,
            }],
        };
        assert_eq!(direct.resend(&nack, &mut batch), 0);
    }

    #[test]
    fn reports_count_what_was_sent_and_extrapolate_the_timestamp() {
        let t0 = Instant::now();
        let mut direct = sender(t0);
        let mut batch = SendBatch::default();
        assert!(direct.reports_due(t0).is_empty(), "nothing is due yet");
        for i in 0..3u16 {
            assert!(direct.send(packet(5, i, 9_000), 90_000, true, t0, &mut batch));
        }
        let at = t0 + REPORT_INTERVAL + Duration::from_millis(100);
        let reports = direct.reports_due(at);
        assert_eq!(reports.len(), 1);
        let sr = &reports[0];
        assert_eq!((sr.ssrc, sr.packet_count, sr.octet_count), (5, 3, 300));
        // 1.1 s after the frame at 9000, at 90 kHz.
        let expected = 9_000 + 99_000;
        assert!(sr.rtp_time.abs_diff(expected) <= 1, "{}", sr.rtp_time);
        assert!(
            direct.reports_due(at).is_empty(),
            "the next one is a second away"
        );
        let idle = at + REPORT_IDLE + REPORT_INTERVAL;
        assert!(
            direct.reports_due(idle).is_empty(),
            "an idle stream is not reported"
        );
    }
}
