//! One synthetic browser connection on webrtc-rs 0.21: a publish connection sending synthetic
//! Opus and VP8, or a subscribe connection counting what arrives. The SRTP profile is pinned,
//! so the server under test uses the one the run names.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::{SettingEngine, SettingEngineBuilder};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCPeerConnectionState,
};

use crate::metrics::{LossTracker, Metrics};
pub use crate::payload::MediaShape;
use crate::payload::{self, Synthetic};

/// The pause between a member's ICE connectivity checks.
const CHECK_INTERVAL_MS: u64 = 50;

pub const AUDIO_PT: u8 = 111;
pub const VIDEO_PT: u8 = 96;

/// The SRTP protection profile of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Srtp {
    /// SRTP_AES128_CM_HMAC_SHA1_80.
    #[value(name = "aes-cm")]
    #[serde(rename = "AES128_CM_HMAC_SHA1_80")]
    AesCm,
    /// SRTP_AEAD_AES_128_GCM.
    #[value(name = "aes-gcm")]
    #[serde(rename = "AEAD_AES_128_GCM")]
    AesGcm,
}

impl Srtp {
    fn profile(self) -> SrtpProtectionProfile {
        match self {
            Srtp::AesCm => SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            Srtp::AesGcm => SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Srtp::AesCm => "AES128_CM_HMAC_SHA1_80",
            Srtp::AesGcm => "AEAD_AES_128_GCM",
        }
    }
}

pub(crate) fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

pub(crate) fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: [("nack", ""), ("nack", "pli"), ("ccm", "fir")]
            .into_iter()
            .map(|(t, p)| RTCPFeedback {
                typ: t.to_owned(),
                parameter: p.to_owned(),
            })
            .collect(),
    }
}

pub(crate) fn is_keyframe_request(packets: &[Box<dyn rtc::rtcp::Packet>]) -> bool {
    packets
        .iter()
        .any(|p| p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>())
}

/// The media engine, interceptors and settings of every member's connection, on either receive
/// path: Opus and VP8 (with NACK, PLI and FIR feedback), rtc's default interceptors plus
/// keyframe-request delivery, mDNS off, only `srtp`, and ICE checks every [`CHECK_INTERVAL_MS`].
pub(crate) fn engines(srtp: Srtp) -> Result<(MediaEngine, Registry, SettingEngine)> {
    let mut media_engine = MediaEngine::default();
    media_engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus(),
            payload_type: AUDIO_PT,
        },
        RtpCodecKind::Audio,
    )?;
    media_engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: vp8(),
            payload_type: VIDEO_PT,
        },
        RtpCodecKind::Video,
    )?;
    // rtc hands no RTCP to the application unless an interceptor marks it: without this,
    // keyframe requests never reach the sender and a new viewer waits for the next
    // periodic keyframe.
    let registry = Registry::new().with(
        Slot::from(confgate_media::DELIVER_SLOT),
        confgate_media::DeliverKeyframeRequests::default(),
    );
    let registry = register_default_interceptors(registry, &mut media_engine)?;
    let setting_engine = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_srtp_protection_profiles(vec![srtp.profile()])
        // Connectivity checks paced like a browser's (Ta = 50 ms), not webrtc-rs's 200 ms:
        // against an ICE-lite server the member's agent decides when a pair is nominated,
        // so its pacing is part of every join time measured. 28 attempts keep rtc's 1.4 s.
        .with_ice_connection_attempts(Some(Duration::from_millis(CHECK_INTERVAL_MS)), Some(28))
        .build();
    Ok((media_engine, registry, setting_engine))
}

struct Handler {
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
    connected: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(track);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.connected
            .store(state == RTCPeerConnectionState::Connected, Relaxed);
    }
}

/// Where a connection's received packets are counted.
#[derive(Clone)]
pub struct Sink {
    pub metrics: Arc<Metrics>,
    pub member: usize,
    /// When this member started to join (µs of [`payload::now_us`]).
    pub join_started_us: u64,
}

/// One connection. Dropping it closes the connection and stops its tasks.
pub struct Peer {
    pub pc: Arc<dyn PeerConnection>,
    /// Set while ICE and DTLS are up.
    connected: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let pc = self.pc.clone();
        tokio::spawn(async move {
            let _ = pc.close().await;
        });
    }
}

impl Peer {
    /// A connection on `bind_ip` (any port) offering only `srtp`; received RTP is counted into
    /// `sink` when given.
    pub async fn new(bind_ip: IpAddr, srtp: Srtp, sink: Option<Sink>) -> Result<Peer> {
        let (media_engine, registry, setting_engine) = engines(srtp)?;
        let (tracks_tx, mut tracks_rx) = mpsc::unbounded_channel::<Arc<dyn TrackRemote>>();
        let connected = Arc::new(AtomicBool::new(false));
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media_engine)
            .with_setting_engine(setting_engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler {
                tracks: tracks_tx,
                connected: Arc::clone(&connected),
            }))
            .with_udp_addrs(vec![format!("{bind_ip}:0")])
            .build()
            .await
            .context("peer connection")?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let reader = tokio::spawn(async move {
            while let Some(track) = tracks_rx.recv().await {
                let Some(sink) = sink.clone() else { continue };
                tokio::spawn(count_track(track, sink));
            }
        });
        Ok(Peer {
            pc,
            connected,
            tasks: vec![reader],
        })
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Relaxed)
    }

    /// Applies a remote offer and returns the answer.
    pub async fn answer(&self, offer_sdp: String) -> Result<String> {
        self.pc
            .set_remote_description(RTCSessionDescription::offer(offer_sdp)?)
            .await?;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer).await?;
        Ok(self
            .pc
            .local_description()
            .await
            .context("no local description")?
            .sdp)
    }

    pub async fn apply_answer(&self, answer_sdp: String) -> Result<()> {
        self.pc
            .set_remote_description(RTCSessionDescription::answer(answer_sdp)?)
            .await?;
        Ok(())
    }

    /// Adds an Opus and a VP8 track and returns the offer, and the tracks to send on.
    pub async fn offer_tracks(&self, name: &str) -> Result<(Tracks, String)> {
        let track = |kind, codec: RTCRtpCodec| {
            Arc::new(TrackLocalStaticRTP::new(local_track(
                name,
                kind,
                codec,
                rand::random::<u32>() | 1,
            )))
        };
        let audio = track(RtpCodecKind::Audio, opus());
        let video = track(RtpCodecKind::Video, vp8());
        self.pc
            .add_track(Arc::clone(&audio) as Arc<dyn TrackLocal>)
            .await?;
        self.pc
            .add_track(Arc::clone(&video) as Arc<dyn TrackLocal>)
            .await?;
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        let sdp = self
            .pc
            .local_description()
            .await
            .context("no local description")?
            .sdp;
        Ok((Tracks { audio, video }, sdp))
    }

    /// Sends `shape`'s media on `tracks` until the peer is dropped, as sender `sender`.
    pub fn start_sending(
        &mut self,
        tracks: Tracks,
        sender: u32,
        shape: MediaShape,
        metrics: Arc<Metrics>,
    ) {
        self.tasks
            .push(tokio::spawn(send(tracks, sender, shape, metrics)));
    }
}

/// A local track of `kind` for member `name`, one encoding with `ssrc`.
pub(crate) fn local_track(
    name: &str,
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    ssrc: u32,
) -> MediaStreamTrack {
    MediaStreamTrack::new(
        format!("{name}-stream"),
        format!("{name}-{kind}"),
        format!("{name}-{kind}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )
}

/// The RTP packet of `due` on `ssrc`, with the payload type of its kind and `body` as payload.
pub(crate) fn rtp_packet(due: &payload::Due, ssrc: u32, body: &[u8]) -> rtp::Packet {
    rtp::Packet {
        header: rtp::header::Header {
            version: 2,
            payload_type: if due.video { VIDEO_PT } else { AUDIO_PT },
            sequence_number: due.sequence_number,
            timestamp: due.timestamp,
            ssrc,
            marker: due.marker,
            ..Default::default()
        },
        payload: Bytes::copy_from_slice(body),
    }
}

/// A publisher's local tracks.
pub struct Tracks {
    audio: Arc<TrackLocalStaticRTP>,
    video: Arc<TrackLocalStaticRTP>,
}

/// Counts one remote track's packets into `sink` (see [`RxCounter`]), each at the time it
/// reaches this task.
async fn count_track(track: Arc<dyn TrackRemote>, sink: Sink) {
    let mut counter = RxCounter::new(sink);
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        counter.packet(
            packet.header.ssrc,
            packet.header.sequence_number,
            &packet.payload,
            payload::now_us(),
        );
    }
}

/// What one receive path counts per packet: per member, packets and bytes, end-to-end loss
/// from the stamps' counters, loss from the sequence numbers (per SSRC), latency from the
/// stamps' send times, and the member's first packet (its join time). Per packet: a few atomic
/// additions to the member's own counters and one to the latency histogram; no lock, and no
/// allocation but one per new stream.
pub(crate) struct RxCounter {
    sink: Sink,
    /// Per SSRC, the highest extended sequence number received.
    highest: Vec<(u32, u64)>,
    loss: LossTracker,
}

impl RxCounter {
    pub(crate) fn new(sink: Sink) -> RxCounter {
        RxCounter {
            sink,
            highest: Vec::new(),
            loss: LossTracker::default(),
        }
    }

    /// One RTP packet of `ssrc` numbered `sequence_number`, that arrived at `arrival_us` (µs
    /// of [`payload::now_us`]).
    pub(crate) fn packet(&mut self, ssrc: u32, sequence_number: u16, body: &[u8], arrival_us: u64) {
        let m = &self.sink.metrics;
        let counters = &m.members[self.sink.member];
        if counters.join_us.load(Relaxed) == 0 {
            let _ = counters.join_us.compare_exchange(
                0,
                arrival_us.saturating_sub(self.sink.join_started_us).max(1),
                Relaxed,
                Relaxed,
            );
        }
        let bytes = (body.len() + payload::RTP_HEADER) as u64;
        counters.packets.fetch_add(1, Relaxed);
        counters.bytes.fetch_add(bytes, Relaxed);
        // Extended sequence number: the forwarded stream's numbering is continuous.
        let expected = match self.highest.iter_mut().find(|(s, _)| *s == ssrc) {
            None => {
                self.highest.push((ssrc, u64::from(sequence_number)));
                1
            }
            Some((_, h)) => {
                let ext = extend(*h, sequence_number);
                if ext > *h {
                    let more = ext - *h;
                    *h = ext;
                    more
                } else {
                    0
                }
            }
        };
        counters.seq_expected.fetch_add(expected, Relaxed);
        if let Some(stamp) = payload::read_stamp(body) {
            m.latency(arrival_us.saturating_sub(stamp.sent_us));
            let (expected, unique) = self.loss.packet(stamp.sender, stamp.video, stamp.counter);
            if expected > 0 {
                counters.expected.fetch_add(expected, Relaxed);
            }
            if unique > 0 {
                counters.unique.fetch_add(unique, Relaxed);
            }
        }
    }
}

/// The extended sequence number of `seq` nearest to `highest`.
fn extend(highest: u64, seq: u16) -> u64 {
    let cycle = highest & !0xFFFF;
    let candidates = [
        cycle.wrapping_sub(0x1_0000) | u64::from(seq),
        cycle | u64::from(seq),
        (cycle + 0x1_0000) | u64::from(seq),
    ];
    candidates
        .into_iter()
        .filter(|c| *c < u64::MAX / 2)
        .min_by_key(|c| c.abs_diff(highest))
        .unwrap_or(u64::from(seq))
}

async fn send(tracks: Tracks, sender: u32, shape: MediaShape, metrics: Arc<Metrics>) {
    let audio_ssrc = tracks.audio.ssrcs().await.first().copied().unwrap_or(1);
    let video_ssrc = tracks.video.ssrcs().await.first().copied().unwrap_or(2);
    // A keyframe request makes the next frame a keyframe.
    let keyframe_wanted = Arc::new(AtomicBool::new(true));
    let watcher = {
        let video = Arc::clone(&tracks.video);
        let wanted = Arc::clone(&keyframe_wanted);
        tokio::spawn(async move {
            while let Some(event) = video.poll().await {
                if let TrackLocalEvent::OnRtcpPacket(packets) = event
                    && is_keyframe_request(&packets)
                {
                    wanted.store(true, Relaxed);
                }
            }
        })
    };
    let mut media = Synthetic::new(sender, shape);
    let mut body = Vec::with_capacity(shape.packet_bytes);
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        loop {
            body.clear();
            let Some(due) = media.next(
                elapsed_ms,
                || keyframe_wanted.swap(false, Relaxed),
                &mut body,
            ) else {
                break;
            };
            let len = body.len() + payload::RTP_HEADER;
            let (track, ssrc) = if due.video {
                (&tracks.video, video_ssrc)
            } else {
                (&tracks.audio, audio_ssrc)
            };
            let packet = rtp_packet(&due, ssrc, &body);
            if track.write_rtp(packet).await.is_ok() {
                metrics.sent_packets.fetch_add(1, Relaxed);
                metrics.sent_bytes.fetch_add(len as u64, Relaxed);
            }
        }
        if watcher.is_finished() {
            // The connection is gone.
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::extend;

    #[test]
    fn sequence_numbers_extend_across_wraps() {
        assert_eq!(extend(65_535, 0), 65_536);
        assert_eq!(extend(65_536, 65_535), 65_535);
        assert_eq!(extend(10, 12), 12);
        assert_eq!(extend(0x2_0005, 3), 0x2_0003);
    }
}
