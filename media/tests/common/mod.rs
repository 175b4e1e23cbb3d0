//! Browser stand-ins for the media tests: async `webrtc` 0.21 clients on 127.0.0.1 that publish
//! synthetic Opus/VP8-shaped RTP and count what they receive. Like browsers, they negotiate the
//! RFC 6464 audio-level header extension; a publisher puts it on its audio packets once told a
//! level ([`Publisher::set_audio_level`]).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use confgate_media::{Media, MediaConfig, MediaEvent, MemberId};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Attribute, Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::sansio::Protocol;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCPeerConnectionState,
};

pub const AUDIO_PT: u8 = 111;
pub const VIDEO_PT: u8 = 96;
/// RFC 6464 client-to-mixer audio level, as browsers negotiate it.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// 80 bytes: an Opus packet of 20 ms at 32 kb/s, what a browser sends for speech.
pub const OPUS_PAYLOAD_LEN: usize = 80;

/// The id `sdp` maps `uri` to (`a=extmap:<id> <uri>`); BUNDLE makes it one per session.
pub fn extmap_id(sdp: &str, uri: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("a=extmap:")?;
        let (id, rest) = rest.split_once(' ')?;
        let id = id.split('/').next()?;
        (rest.split_whitespace().next() == Some(uri))
            .then(|| id.parse().ok())
            .flatten()
    })
}

/// Media on 127.0.0.1, any port, one loop.
pub async fn start_media() -> Media {
    let config = MediaConfig {
        udp_port: 0,
        bind_ip: Some("127.0.0.1".parse().expect("ip")),
        loops: 1,
        ..MediaConfig::default()
    };
    Media::start(&config).await.expect("media starts")
}

/// Marks every inbound RTCP packet for the application, so tests see PLIs.
#[derive(Default)]
struct DeliverRtcp {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for DeliverRtcp {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if matches!(msg.message.packet, Packet::Rtcp(_)) {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.reads.push_back(msg);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }
    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Self::Error> {
        Ok(())
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }
}

impl Interceptor for DeliverRtcp {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn vp8() -> RTCRtpCodec {
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

/// A packet some client received.
#[derive(Debug, Clone)]
pub struct Received {
    pub kind: RtpCodecKind,
    pub packet: rtp::Packet,
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
            .store(state == RTCPeerConnectionState::Connected, Ordering::SeqCst);
    }
}

/// One browser connection.
pub struct Client {
    pub pc: Arc<dyn PeerConnection>,
    pub connected: Arc<AtomicBool>,
    /// RTP received on this connection, in arrival order.
    pub received: mpsc::UnboundedReceiver<Received>,
    /// Received packets of the kind a `collect` was not looking for, kept for the next one.
    stash: VecDeque<Received>,
    /// Remote tracks, for sending PLIs.
    pub remote_tracks: Arc<Mutex<Vec<Arc<dyn TrackRemote>>>>,
    /// PLI/FIR received about remote tracks (none expected) and local tracks.
    pub keyframe_requests: Arc<AtomicUsize>,
    /// Sender reports received about remote tracks, in arrival order.
    pub sender_reports: Arc<std::sync::Mutex<Vec<SenderReport>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Client {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn is_keyframe_request(packets: &[Box<dyn rtc::rtcp::Packet>]) -> bool {
    packets
        .iter()
        .any(|p| p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>())
}

impl Client {
    pub async fn new() -> Client {
        let mut media_engine = MediaEngine::default();
        media_engine
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: opus(),
                    payload_type: AUDIO_PT,
                },
                RtpCodecKind::Audio,
            )
            .expect("opus");
        media_engine
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: vp8(),
                    payload_type: VIDEO_PT,
                },
                RtpCodecKind::Video,
            )
            .expect("vp8");
        media_engine
            .register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: AUDIO_LEVEL_URI.to_owned(),
                },
                RtpCodecKind::Audio,
                None,
            )
            .expect("audio level");
        let registry = Registry::new().with(Slot::from(14_000), DeliverRtcp::default());
        let registry =
            register_default_interceptors(registry, &mut media_engine).expect("interceptors");
        let setting_engine = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .build();
        let (tracks_tx, mut tracks_rx) = mpsc::unbounded_channel();
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
            .with_udp_addrs(vec!["127.0.0.1:0"])
            .build()
            .await
            .expect("client peer connection");
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let (received_tx, received) = mpsc::unbounded_channel();
        let remote_tracks = Arc::new(Mutex::new(Vec::new()));
        let keyframe_requests = Arc::new(AtomicUsize::new(0));
        let sender_reports = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tracks = Arc::clone(&remote_tracks);
        let requests = Arc::clone(&keyframe_requests);
        let reports = Arc::clone(&sender_reports);
        let reader = tokio::spawn(async move {
            while let Some(track) = tracks_rx.recv().await {
                tracks.lock().await.push(Arc::clone(&track));
                let kind = track.kind().await;
                let received_tx = received_tx.clone();
                let requests = Arc::clone(&requests);
                let reports = Arc::clone(&reports);
                tokio::spawn(async move {
                    while let Some(event) = track.poll().await {
                        match event {
                            TrackRemoteEvent::OnRtpPacket(packet) => {
                                let _ = received_tx.send(Received { kind, packet });
                            }
                            TrackRemoteEvent::OnRtcpPacket(packets) => {
                                if is_keyframe_request(&packets) {
                                    requests.fetch_add(1, Ordering::SeqCst);
                                }
                                let mut reports = reports.lock().expect("reports");
                                reports.extend(packets.iter().filter_map(|p| {
                                    p.as_any().downcast_ref::<SenderReport>().cloned()
                                }));
                            }
                            _ => {}
                        }
                    }
                });
            }
        });
        Client {
            pc,
            connected,
            received,
            stash: VecDeque::new(),
            remote_tracks,
            keyframe_requests,
            sender_reports,
            tasks: vec![reader],
        }
    }

    /// Answers a server offer (subscribe leg).
    pub async fn answer(&self, offer_sdp: String) -> String {
        let offer = RTCSessionDescription::offer(offer_sdp).expect("server offer parses");
        self.pc
            .set_remote_description(offer)
            .await
            .expect("client takes the server offer");
        let answer = self.pc.create_answer(None).await.expect("client answers");
        self.pc
            .set_local_description(answer)
            .await
            .expect("client applies its answer");
        self.pc
            .local_description()
            .await
            .expect("local description")
            .sdp
    }

    /// The SDP this client last applied as its own (its offer or answer).
    pub async fn local_sdp(&self) -> String {
        self.pc
            .local_description()
            .await
            .expect("local description")
            .sdp
    }

    pub async fn wait_connected(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.connected.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "client did not connect within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `n` packets of `kind` arrived (others are kept aside), within `within`.
    pub async fn collect(
        &mut self,
        kind: RtpCodecKind,
        n: usize,
        within: Duration,
    ) -> Vec<rtp::Packet> {
        let deadline = tokio::time::Instant::now() + within;
        let mut got = Vec::new();
        let mut kept = VecDeque::new();
        while let Some(r) = self.stash.pop_front() {
            if r.kind == kind && got.len() < n {
                got.push(r.packet);
            } else {
                kept.push_back(r);
            }
        }
        self.stash = kept;
        while got.len() < n {
            match tokio::time::timeout_at(deadline, self.received.recv()).await {
                Ok(Some(r)) if r.kind == kind => got.push(r.packet),
                Ok(Some(r)) => self.stash.push_back(r),
                Ok(None) | Err(_) => break,
            }
        }
        got
    }

    /// Forgets everything received so far.
    pub fn clear(&mut self) {
        self.stash.clear();
        while self.received.try_recv().is_ok() {}
    }

    /// Everything received so far, without waiting.
    pub fn drain(&mut self) -> Vec<Received> {
        let mut all: Vec<Received> = self.stash.drain(..).collect();
        while let Ok(r) = self.received.try_recv() {
            all.push(r);
        }
        all
    }

    /// Sends a NACK for packet `seq` of the remote track with SSRC `media_ssrc`.
    pub async fn send_nack(&self, media_ssrc: u32, seq: u16) {
        for track in self.remote_tracks.lock().await.iter() {
            if track.ssrcs().await.contains(&media_ssrc) {
                track
                    .write_rtcp(vec![Box::new(TransportLayerNack {
                        sender_ssrc: 0,
                        media_ssrc,
                        nacks: vec![NackPair {
                            packet_id: seq,
                            lost_packets: 0,
                        }],
                    })])
                    .await
                    .expect("NACK sent");
            }
        }
    }

    /// Sends a PLI about every remote video track.
    pub async fn send_pli(&self) {
        for track in self.remote_tracks.lock().await.iter() {
            if track.kind().await != RtpCodecKind::Video {
                continue;
            }
            for media_ssrc in track.ssrcs().await {
                track
                    .write_rtcp(vec![Box::new(PictureLossIndication {
                        sender_ssrc: 0,
                        media_ssrc,
                    })])
                    .await
                    .expect("PLI sent");
            }
        }
    }
}

/// Synthetic audio payload number `n`, Opus-sized.
pub fn audio_payload(member: &str, n: u32) -> Bytes {
    let mut p = format!("AUDIO {member} ").into_bytes();
    p.extend_from_slice(&n.to_be_bytes());
    p.resize(p.len().max(OPUS_PAYLOAD_LEN), 0);
    Bytes::from(p)
}

/// Synthetic VP8-shaped payload of frame `n`: a payload descriptor with S=1, PID=0, then a
/// frame tag whose P bit says keyframe (0) or not (1).
pub fn video_payload(member: &str, n: u32, keyframe: bool) -> Bytes {
    let mut p = vec![0x10, if keyframe { 0x00 } else { 0x01 }];
    p.extend_from_slice(format!("VIDEO {member} ").as_bytes());
    p.extend_from_slice(&n.to_be_bytes());
    Bytes::from(p)
}

/// The frame counter of a synthetic payload, if it is one of `member`'s.
pub fn payload_counter(payload: &[u8], prefix: &str, member: &str) -> Option<u32> {
    let marker = format!("{prefix} {member} ");
    let at = payload
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())?;
    let bytes = payload.get(at + marker.len()..at + marker.len() + 4)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// Every 15th frame (0.5 s at 30 fps) is a keyframe.
pub const KEYFRAME_EVERY: u32 = 15;

/// A member's publish connection, sending synthetic media.
pub struct Publisher {
    pub client: Client,
    pub member: MemberId,
    audio: Arc<TrackLocalStaticRTP>,
    video: Arc<TrackLocalStaticRTP>,
    /// PLI/FIR the server sent about this publisher's video.
    pub plis: Arc<AtomicUsize>,
    /// Audio/video packets sent so far.
    pub sent_audio: Arc<AtomicUsize>,
    pub sent_video: Arc<AtomicUsize>,
    /// The audio-level extension id the server's answer agreed to, if it did.
    pub audio_level_id: Option<u8>,
    /// The audio-level byte (V flag and level) put on audio packets, or [`NO_AUDIO_LEVEL`].
    audio_level: Arc<AtomicU16>,
    tasks: Vec<JoinHandle<()>>,
}

/// Audio packets carry no audio-level extension.
const NO_AUDIO_LEVEL: u16 = u16::MAX;

impl Drop for Publisher {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Publisher {
    /// The offer `client` makes with one Opus and one VP8 track (for mangling).
    pub async fn connect_offer_only(client: &Client) -> String {
        let (_audio, _video, offer) = Self::offer(client, "x").await;
        offer
    }

    async fn offer(
        client: &Client,
        member: &str,
    ) -> (Arc<TrackLocalStaticRTP>, Arc<TrackLocalStaticRTP>, String) {
        let track = |kind, codec: RTCRtpCodec| {
            Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                format!("{member}-stream"),
                format!("{member}-{kind}"),
                format!("{member}-{kind}"),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(rand_ssrc()),
                        ..Default::default()
                    },
                    codec,
                    ..Default::default()
                }],
            )))
        };
        let audio = track(RtpCodecKind::Audio, opus());
        let video = track(RtpCodecKind::Video, vp8());
        client
            .pc
            .add_track(Arc::clone(&audio) as Arc<dyn TrackLocal>)
            .await
            .expect("audio track");
        client
            .pc
            .add_track(Arc::clone(&video) as Arc<dyn TrackLocal>)
            .await
            .expect("video track");
        let offer = client.pc.create_offer(None).await.expect("offer");
        client
            .pc
            .set_local_description(offer)
            .await
            .expect("local offer");
        let offer_sdp = client
            .pc
            .local_description()
            .await
            .expect("local description")
            .sdp;
        (audio, video, offer_sdp)
    }

    /// Offers one Opus and one VP8 track to the server and applies its answer.
    pub async fn connect(media: &Media, room: &str, member: &str) -> Publisher {
        let client = Client::new().await;
        let (audio, video, offer_sdp) = Self::offer(&client, member).await;
        let answer = media
            .publish(room.to_owned(), member.to_owned(), offer_sdp)
            .await
            .expect("server answers the publish offer");
        let audio_level_id = extmap_id(&answer, AUDIO_LEVEL_URI);
        client
            .pc
            .set_remote_description(RTCSessionDescription::answer(answer).expect("answer parses"))
            .await
            .expect("client takes the answer");
        let plis = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&plis);
        let video_track = Arc::clone(&video);
        let pli_reader = tokio::spawn(async move {
            while let Some(event) = video_track.poll().await {
                let TrackLocalEvent::OnRtcpPacket(packets) = event else {
                    continue;
                };
                if is_keyframe_request(&packets) {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Publisher {
            client,
            member: member.to_owned(),
            audio,
            video,
            plis,
            sent_audio: Arc::new(AtomicUsize::new(0)),
            sent_video: Arc::new(AtomicUsize::new(0)),
            audio_level_id,
            audio_level: Arc::new(AtomicU16::new(NO_AUDIO_LEVEL)),
            tasks: vec![pli_reader],
        }
    }

    /// From the next audio packet on, sends the audio-level extension with `level` (-dBov: 0
    /// loudest, 127 silence) and the voice-activity flag, or no extension for `None`. The
    /// extension goes into the packet header by hand, under the id of the server's answer:
    /// webrtc 0.21's `write_rtp_with_extensions` takes ids from parameters captured when the
    /// track was added, before anything was negotiated.
    pub fn set_audio_level(&self, level: Option<(u8, bool)>) {
        let value = level.map_or(NO_AUDIO_LEVEL, |(level, voice)| {
            u16::from(level & 0x7F) | if voice { 0x80 } else { 0 }
        });
        self.audio_level.store(value, Ordering::SeqCst);
    }

    /// Starts sending 50 audio packets and 30 video frames (one packet each) per second until
    /// dropped.
    pub fn start_sending(&mut self) {
        let (audio, video) = (Arc::clone(&self.audio), Arc::clone(&self.video));
        let (sent_audio, sent_video) = (Arc::clone(&self.sent_audio), Arc::clone(&self.sent_video));
        let member = self.member.clone();
        let (audio_level_id, audio_level) = (self.audio_level_id, Arc::clone(&self.audio_level));
        self.tasks.push(tokio::spawn(async move {
            let audio_ssrc = audio.ssrcs().await[0];
            let video_ssrc = video.ssrcs().await[0];
            let started = tokio::time::Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let (mut a, mut v) = (0u32, 0u32);
            loop {
                tick.tick().await;
                let mut header = rtp::header::Header {
                    version: 2,
                    payload_type: AUDIO_PT,
                    sequence_number: a as u16,
                    timestamp: a.wrapping_mul(960),
                    ssrc: audio_ssrc,
                    marker: a == 0,
                    ..Default::default()
                };
                let level = audio_level.load(Ordering::SeqCst);
                if let (Some(id), Ok(byte)) = (audio_level_id, u8::try_from(level)) {
                    header
                        .set_extension(id, Bytes::copy_from_slice(&[byte]))
                        .expect("audio level extension");
                }
                let _ = audio
                    .write_rtp(rtp::Packet {
                        header,
                        payload: audio_payload(&member, a),
                    })
                    .await;
                a += 1;
                sent_audio.fetch_add(1, Ordering::SeqCst);
                // 30 fps: as many frames as are due by now.
                let due = (started.elapsed().as_millis() * 30 / 1000) as u32;
                while v <= due {
                    let _ = video
                        .write_rtp(rtp::Packet {
                            header: rtp::header::Header {
                                version: 2,
                                payload_type: VIDEO_PT,
                                sequence_number: v as u16,
                                timestamp: v.wrapping_mul(3000),
                                ssrc: video_ssrc,
                                marker: true,
                                ..Default::default()
                            },
                            payload: video_payload(&member, v, v % KEYFRAME_EVERY == 0),
                        })
                        .await;
                    v += 1;
                    sent_video.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
}

fn rand_ssrc() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    (h.finish() as u32) | 1
}

/// A member's subscribe connection.
pub struct Subscriber {
    pub client: Client,
    pub member: MemberId,
}

impl Subscriber {
    /// Opens the subscribe leg: server offer, client answer.
    pub async fn connect(media: &Media, room: &str, member: &str) -> Subscriber {
        let client = Client::new().await;
        let offer = media
            .subscribe(room.to_owned(), member.to_owned())
            .await
            .expect("server offers");
        let answer = client.answer(offer).await;
        media
            .subscriber_answer(member.to_owned(), answer)
            .await
            .expect("server takes the answer");
        Subscriber {
            client,
            member: member.to_owned(),
        }
    }

    /// Applies a renegotiation offer from the server.
    pub async fn renegotiate(&self, media: &Media, offer_sdp: String) {
        let answer = self.client.answer(offer_sdp).await;
        media
            .subscriber_answer(self.member.clone(), answer)
            .await
            .expect("server takes the renegotiation answer");
    }
}

/// Waits for the next `SubscriberOffer` for `member`, skipping other events.
pub async fn next_offer(
    events: &mut mpsc::Receiver<MediaEvent>,
    member: &str,
    within: Duration,
) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(MediaEvent::SubscriberOffer {
                member: m,
                offer_sdp,
            })) if m == member => {
                return offer_sdp;
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("event channel closed"),
            Err(_) => panic!("no subscriber offer for {member} within {within:?}"),
        }
    }
}

/// Polls `condition` every 10 ms until it holds or `within` passes; returns whether it held.
pub async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits for the first event `wanted` accepts, skipping others.
pub async fn wait_event(
    events: &mut mpsc::Receiver<MediaEvent>,
    within: Duration,
    wanted: impl Fn(&MediaEvent) -> bool,
) -> MediaEvent {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) if wanted(&event) => return event,
            Ok(Some(_)) => {}
            Ok(None) => panic!("event channel closed"),
            Err(_) => panic!("no such event within {within:?}"),
        }
    }
}
