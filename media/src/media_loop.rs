//! A media loop: one tokio task that owns one UDP socket, every peer connection of the rooms it
//! serves, and their routing table. Control-plane requests arrive as [`Command`]s; datagrams and
//! timers drive the rest. Nothing here is shared: no lock is taken after start.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut as _, BytesMut};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::{RTCIceConnectionState, RTCPeerConnectionState};
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{
    RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::batch::SendBatch;
use crate::demux::{self, Demux, PacketClass};
use crate::direct::DirectSender;
use crate::keyframe::{KeyframeRequests, VideoCodec, starts_keyframe};
use crate::mcu::{self, McuInbound, McuStreamState};
use crate::mcu_rtcp::{self, Received, Sent};
use crate::peer;
use crate::rewrite::SequenceRewriter;
use crate::router::{
    CodecInfo, ForwardOutcome, KeyframeRequest, Kind, MemberKey, OtherRoom, PeerKey, Router,
    TrackRef, codecs_match,
};
use crate::sdp;
use crate::speaker::{self, RoomSpeakers, SpeakerChange};
use crate::srtp_out::{KeyTap, Sealer};
use crate::{
    Counters, Leg, McuLegPorts, McuStream, MediaConfig, MediaError, MediaEvent, MediaLoad,
    MemberId, RoomId,
};

type Reply<T> = oneshot::Sender<Result<T, MediaError>>;

/// A control-plane request to a loop.
pub(crate) enum Command {
    Publish {
        room: RoomId,
        member: MemberId,
        offer_sdp: String,
        reply: Reply<String>,
    },
    Subscribe {
        room: RoomId,
        member: MemberId,
        reply: Reply<String>,
    },
    SubscriberAnswer {
        member: MemberId,
        answer_sdp: String,
        reply: Reply<()>,
    },
    RemoteCandidate {
        member: MemberId,
        leg: Leg,
        candidate: String,
        reply: Reply<()>,
    },
    SetForwarding {
        member: MemberId,
        audio: bool,
        video: bool,
        reply: Reply<()>,
    },
    RemoveMember {
        member: MemberId,
        reply: Reply<()>,
    },
    OpenMcuLeg {
        member: MemberId,
        reply: Reply<McuLegPorts>,
    },
    ConnectMcuLeg {
        member: MemberId,
        audio: Option<McuStream>,
        video: Option<McuStream>,
        reply: Reply<()>,
    },
    CloseMcuLeg {
        member: MemberId,
        reply: Reply<()>,
    },
    RequestKeyframe {
        member: MemberId,
        reply: Reply<()>,
    },
    /// The loop's media streams, for the node's reported load.
    Load {
        reply: Reply<MediaLoad>,
    },
}

/// How the control plane reaches a loop. The command channel is unbounded because every
/// command is awaited by its caller: the queue never holds more than the number of concurrent
/// control-plane calls.
pub(crate) struct LoopHandle {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) local_addr: SocketAddr,
}

/// 50 ms: the granularity of keyframe-request retries (500 ms) and of event-queue retries.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(50);
/// At most this many datagrams are read per wake-up before timers get a turn.
const RECV_BATCH: usize = 64;
/// Receive buffers are carved from blocks of this size (see `read_socket`).
const RECV_BLOCK: usize = 64 * 1024;
/// 2048 bytes: a 1500-byte Ethernet MTU datagram with room to spare; larger ones are truncated
/// and fail authentication, as they would on any WebRTC path.
const MAX_DATAGRAM: usize = 2048;
/// 24 characters of ufrag and password: RFC 8445 asks for at least 4 and 22 characters of
/// randomness; a long ufrag also makes a collision in the demultiplexer negligible.
const ICE_UFRAG_LEN: usize = 24;
const ICE_PWD_LEN: usize = 32;
/// The label of the data channel every subscriber connection carries, so that its transport
/// exists even before any other member publishes.
const DATA_CHANNEL_LABEL: &str = "confgate";
/// The SSRC the server puts in the sender field of its PLIs. The publish leg sends no media,
/// so there is no SSRC of its own to name; browsers do not check it.
const PLI_SENDER_SSRC: u32 = 1;
/// The stream id (msid) of the MCU's tracks on a subscriber connection: the page shows that
/// stream as the main video.
const MCU_STREAM_ID: &str = "mcu";

/// What a publish leg learned about its incoming streams.
#[derive(Debug, Default)]
struct PublishLeg {
    /// The receivers whose media is forwarded: the first audio and the first video one.
    forwarded: Vec<(RTCRtpReceiverId, Kind)>,
    /// Incoming SSRC -> kind, filled as streams open. A handful of entries: a linear scan.
    ssrcs: Vec<(u32, Option<Kind>)>,
    /// The browser's ICE ufrag: a new offer with the same one renegotiates this connection.
    remote_ufrag: String,
    /// The id of the RFC 6464 audio-level extension negotiated on this connection, if any.
    audio_level_id: Option<u8>,
}

/// One forwarded track on a subscribe leg.
#[derive(Debug, Clone, Copy)]
struct OutSlot {
    track: TrackRef,
    sender: RTCRtpSenderId,
}

#[derive(Debug, Default)]
struct SubscribeLeg {
    slots: Vec<OutSlot>,
    /// Senders whose track was removed: their transceivers are reused for the next track of
    /// the same kind, so m-lines do not pile up.
    free: Vec<Kind>,
    /// The tracks of the member's MCU leg (stream id "mcu"), by kind.
    /// (kind, SSRC, sender).
    mcu: Vec<(Kind, u32, RTCRtpSenderId)>,
    awaiting_answer: bool,
    renegotiate: bool,
    /// The first answer was applied: the connection knows the member's ICE credentials.
    answered: bool,
    /// Connectivity checks that came before the first answer, kept to be replayed once it is
    /// applied: the member starts checking as soon as it has answered, and its first check
    /// races the answer, which travels over the WebSocket and the control plane. rtc drops a
    /// check it cannot authenticate, and the member would only try again a check interval
    /// later.
    early_checks: Vec<(BytesMut, SocketAddr)>,
}

/// Early connectivity checks kept per subscribe connection (a browser sends one per
/// candidate pair and check interval).
const EARLY_CHECKS: usize = 8;

/// The plain-RTP leg of one member toward an MCU: one socket per kind (RTP/AVP, RTCP muxed on
/// the same port), owned by the loop like its main socket.
struct McuLeg {
    member: MemberKey,
    /// By [`Kind::index`].
    sockets: [UdpSocket; 2],
    /// What each kind is bridged to, once `connect_mcu_leg` said; by [`Kind::index`].
    streams: [Option<McuStreamState>; 2],
    /// The origin of the arrival times of the MCU's packets (jitter).
    epoch: Instant,
    /// The RTCP CNAME of both streams (one participant: the MCU may sync them).
    cname: String,
}

#[derive(Debug)]
enum Role {
    Publish(PublishLeg),
    Subscribe(SubscribeLeg),
}

struct Peer {
    pc: RTCPeerConnection,
    member: MemberKey,
    ufrag: String,
    role: Role,
    /// DTLS is up: media can be written.
    connected: bool,
    /// `Connected` was reported to the control plane and not yet followed by `Disconnected`.
    reported: bool,
    /// The earliest of the connection's timers, as `poll_timeout` last said; `timeout_stale`
    /// asks for it again before the loop sleeps.
    next_timeout: Option<Instant>,
    timeout_stale: bool,
    /// RTP has been written to the connection. Only the first write can bring a timer
    /// forward (it arms the sender reports); later writes leave every timer where it was, so
    /// a forwarded copy does not cost a `poll_timeout` walk through rtc's whole pipeline.
    rtp_written: bool,
    /// A subscribe connection's crypto provider, which holds its SRTP keys once DTLS is up.
    tap: Option<Arc<KeyTap>>,
    /// A subscribe connection's own sending of RTP, from when DTLS is up.
    direct: Option<DirectSender>,
}

impl Peer {
    /// Sends one RTP packet on this connection, queued on `batch`: sealed by the loop once the
    /// connection has a [`DirectSender`], else through rtc. False if it could not be written.
    fn send_rtp(
        &mut self,
        packet: rtp::Packet,
        clock_rate: u32,
        kind: Kind,
        now: Instant,
        batch: &mut SendBatch,
    ) -> bool {
        if self.direct.is_none() && self.connected && self.tap.is_some() {
            self.start_direct(now);
        }
        if let Some(direct) = self.direct.as_mut() {
            return direct.send(packet, clock_rate, kind == Kind::Video, now, batch);
        }
        let written = self
            .pc
            .handle_write(TaggedRTCMessage {
                now,
                // rtc ignores the track id on this path; an empty String allocates nothing.
                message: RTCMessage::RtpPacket(String::new(), packet),
            })
            .is_ok();
        self.wrote_rtp();
        batch.queue(&mut self.pc);
        written
    }

    /// Starts sending RTP itself, at its first packet once DTLS is up: the tap holds the keys
    /// and ICE has chosen where media goes (found through a negotiated sender). Should the
    /// keys be missing or unusable (rtc derived them in a way the tap does not know; the tests
    /// would say so first), rtc sends this connection's media, without retransmissions or
    /// sender reports (logged once).
    fn start_direct(&mut self, now: Instant) {
        let Some(tap) = &self.tap else {
            return;
        };
        let sealer = match tap
            .local_keys()
            .map(|keys| Sealer::new(tap.as_ref(), &keys))
        {
            Some(Ok(sealer)) => sealer,
            failed => {
                let error = failed.and_then(Result::err).map(|e| e.to_string());
                tracing::warn!(
                    error = error.as_deref().unwrap_or("no SRTP keys"),
                    "cannot seal SRTP on a connected connection; rtc sends its media, \
                     with no retransmission and no sender reports"
                );
                self.tap = None;
                return;
            }
        };
        let Some(to) = peer::destination(&mut self.pc) else {
            return;
        };
        tracing::debug!(profile = ?sealer.profile(), %to, "sending forwarded media directly");
        self.direct = Some(DirectSender::new(sealer, to, now));
    }

    /// Notes that RTP was written: the first write makes the timers stale.
    fn wrote_rtp(&mut self) {
        if !self.rtp_written {
            self.rtp_written = true;
            self.timeout_stale = true;
        }
    }

    fn leg(&self) -> Leg {
        self.role.leg()
    }
}

impl Role {
    fn leg(&self) -> Leg {
        match self {
            Role::Publish(_) => Leg::Publish,
            Role::Subscribe(_) => Leg::Subscribe,
        }
    }
}

/// Starts a loop on a thread of its own (a single-threaded runtime): it binds the socket there
/// and serves until every handle is dropped. Forwarding never waits behind the control
/// plane's tasks, and the kernel schedules the loop as soon as a datagram wakes it.
pub(crate) async fn spawn(
    config: &MediaConfig,
    port: u16,
    events: mpsc::Sender<MediaEvent>,
    counters: Arc<Counters>,
) -> Result<LoopHandle, MediaError> {
    let bind_ip = config.bind_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let config = config.clone();
    let (started_tx, started) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("media-loop-{port}"))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = started_tx.send(Err(MediaError::Io(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                match MediaLoop::new(&config, bind_ip, port, events, counters) {
                    Ok((media_loop, handle)) => {
                        let (command_rx, handle) = handle;
                        if started_tx.send(Ok(handle)).is_ok() {
                            media_loop.run(command_rx).await;
                        }
                    }
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                    }
                }
            });
        });
    if let Err(e) = thread {
        return Err(MediaError::Io(e));
    }
    started
        .await
        .map_err(|_| MediaError::Internal("the media loop's thread ended at start".to_owned()))?
}

impl MediaLoop {
    /// Binds the socket (within the loop's runtime) and makes the loop and its handle.
    fn new(
        config: &MediaConfig,
        bind_ip: IpAddr,
        port: u16,
        events: mpsc::Sender<MediaEvent>,
        counters: Arc<Counters>,
    ) -> Result<(MediaLoop, (mpsc::UnboundedReceiver<Command>, LoopHandle)), MediaError> {
        let socket = bind(SocketAddr::new(bind_ip, port))?;
        let local_addr = socket.local_addr()?;
        let candidate_ips = candidate_ips(config, local_addr.ip());
        let tag_addr = SocketAddr::new(
            candidate_ips.first().copied().unwrap_or(local_addr.ip()),
            local_addr.port(),
        );
        let (commands, command_rx) = mpsc::unbounded_channel();
        let media_loop = MediaLoop {
            socket,
            port: local_addr.port(),
            candidate_ips,
            tag_addr,
            peers: Vec::new(),
            free_peers: Vec::new(),
            demux: Demux::new(),
            router: Router::new(),
            speakers: HashMap::new(),
            events,
            overflow: VecDeque::new(),
            counters,
            recv_buf: BytesMut::new(),
            bind_ip,
            mcu_legs: Vec::new(),
            mcu_by_member: HashMap::new(),
            send_buf: Vec::with_capacity(MAX_DATAGRAM),
            batch: SendBatch::default(),
        };
        let handle = LoopHandle {
            commands,
            local_addr,
        };
        Ok((media_loop, (command_rx, handle)))
    }
}

/// A datagram from `from` to the loop's socket (announced as `local`), as rtc takes it.
fn received(
    local: SocketAddr,
    from: SocketAddr,
    datagram: BytesMut,
    now: Instant,
) -> TaggedBytesMut {
    TaggedBytesMut {
        now,
        transport: TransportContext {
            local_addr: local,
            peer_addr: from,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        },
        message: datagram,
    }
}

/// 4 MiB of kernel buffer each way: a loop that is busy for a few milliseconds must not lose
/// the burst of a keyframe (tens of 1200-byte packets per publisher) meanwhile. The kernel caps
/// it at net.core.rmem_max / wmem_max; raise those on a production host.
const SOCKET_BUFFER: usize = 4 << 20;

fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer still works.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Host candidate addresses: the announced ones, else the bound address, else every
/// non-loopback address of the bound family (loopback if there is nothing else).
fn candidate_ips(config: &MediaConfig, bound: IpAddr) -> Vec<IpAddr> {
    if !config.announced_ips.is_empty() {
        return config.announced_ips.clone();
    }
    if !bound.is_unspecified() {
        return vec![bound];
    }
    let mut ips: Vec<IpAddr> = rtc::shared::ifaces::ifaces()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| i.addr.map(|a| a.ip()))
        .filter(|ip| ip.is_ipv4() == bound.is_ipv4() && !ip.is_loopback() && !ip.is_unspecified())
        .collect();
    ips.dedup();
    if ips.is_empty() {
        ips.push(if bound.is_ipv4() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        });
    }
    ips
}

fn kind_of(kind: RtpCodecKind) -> Option<Kind> {
    match kind {
        RtpCodecKind::Audio => Some(Kind::Audio),
        RtpCodecKind::Video => Some(Kind::Video),
        _ => None,
    }
}

struct MediaLoop {
    socket: UdpSocket,
    port: u16,
    candidate_ips: Vec<IpAddr>,
    /// The local address rtc is told every datagram arrived on: the first host candidate. A
    /// wildcard-bound socket does not tell which of its addresses a datagram was sent to.
    tag_addr: SocketAddr,
    peers: Vec<Option<Peer>>,
    free_peers: Vec<PeerKey>,
    demux: Demux<PeerKey>,
    router: Router,
    /// Who speaks in each room that has audio levels; a room's record is dropped when its
    /// last member's is forgotten.
    speakers: HashMap<RoomId, RoomSpeakers>,
    events: mpsc::Sender<MediaEvent>,
    /// Events the channel had no room for, oldest first.
    overflow: VecDeque<MediaEvent>,
    counters: Arc<Counters>,
    recv_buf: BytesMut,
    /// Where MCU leg sockets are bound: the main socket's address.
    bind_ip: IpAddr,
    /// MCU legs; a closed leg's slot is `None` and reused.
    mcu_legs: Vec<Option<McuLeg>>,
    mcu_by_member: HashMap<MemberKey, usize>,
    /// Outgoing plain RTP/RTCP is built here: one buffer, reused for every packet.
    send_buf: Vec<u8>,
    /// The copies of the packet being forwarded, sent together.
    batch: SendBatch,
}

impl MediaLoop {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut housekeeping = Instant::now() + HOUSEKEEPING_INTERVAL;
        loop {
            let now = Instant::now();
            if now >= housekeeping {
                self.housekeeping(now);
                housekeeping = now + HOUSEKEEPING_INTERVAL;
            }
            self.run_timeouts(now);
            let deadline = self
                .next_deadline()
                .map_or(housekeeping, |d| d.min(housekeeping));
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    None => break,
                },
                ready = self.socket.readable() => {
                    if ready.is_ok() {
                        self.read_socket();
                    }
                }
                () = mcu_readable(&self.mcu_legs) => self.read_mcu_sockets(),
                () = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
        self.shutdown();
    }

    // ---------------------------------------------------------------- the per-packet path

    fn read_socket(&mut self) {
        for _ in 0..RECV_BATCH {
            // Datagrams are received straight into a block shared by consecutive datagrams and
            // split off it: one allocation per block instead of one (plus a copy) per datagram.
            // `reserve` reuses the block once rtc has dropped every datagram cut from it.
            if self.recv_buf.capacity() - self.recv_buf.len() < MAX_DATAGRAM {
                self.recv_buf.reserve(RECV_BLOCK);
            }
            let mut limited = (&mut self.recv_buf).limit(MAX_DATAGRAM);
            let from = match self.socket.try_recv_buf_from(&mut limited) {
                Ok((_, from)) => from,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // ICMP errors surface here on some systems: they concern one datagram.
                Err(_) => continue,
            };
            let datagram = self.recv_buf.split();
            let now = Instant::now();
            let key = match self.demux.route(&datagram, from) {
                Ok(key) => key,
                Err(_) => {
                    Counters::add(&self.counters.unrouted, 1);
                    continue;
                }
            };
            let Some(peer) = self.peers.get_mut(key).and_then(Option::as_mut) else {
                Counters::add(&self.counters.unrouted, 1);
                continue;
            };
            if let Role::Subscribe(leg) = &mut peer.role
                && !leg.answered
                && demux::classify(&datagram) == PacketClass::Stun
            {
                if leg.early_checks.len() < EARLY_CHECKS {
                    leg.early_checks.push((datagram, from));
                    Counters::add(&self.counters.early_checks, 1);
                }
                continue;
            }
            let message = received(self.tag_addr, from, datagram, now);
            let connecting = !peer.connected;
            if peer.pc.handle_read(message).is_err() {
                Counters::add(&self.counters.dropped, 1);
            }
            self.drive(key, now);
            if connecting {
                // While connecting, rtc acts on what a datagram changed (a nominated pair
                // starts DTLS, a flight calls for the next) only when its timers run: run them
                // now, once the datagram's events went through, not at the next ICE tick.
                if let Some(peer) = self.peers.get_mut(key).and_then(Option::as_mut) {
                    let _ = peer.pc.handle_timeout(now);
                }
                self.drive(key, now);
            }
        }
    }

    /// Drains everything a connection has for us after it was fed: events, inbound media,
    /// outbound datagrams.
    fn drive(&mut self, key: PeerKey, now: Instant) {
        let mut events = Vec::new();
        while let Some(peer) = self.peers.get_mut(key).and_then(Option::as_mut) {
            if let Some(event) = peer.pc.poll_event() {
                events.push(event);
                continue;
            }
            let Some(TaggedRTCMessage { message, .. }) = peer.pc.poll_read() else {
                break;
            };
            match message {
                RTCMessage::RtpPacket(track_id, packet) => self.on_rtp(key, &track_id, packet, now),
                RTCMessage::RtcpPacket(_, packets) => self.on_rtcp(key, &packets, now),
                _ => {}
            }
        }
        for event in events {
            self.on_event(key, event, now);
        }
        self.flush(key);
    }

    fn on_rtp(&mut self, key: PeerKey, track_id: &str, packet: rtp::Packet, now: Instant) {
        Counters::add(&self.counters.received, 1);
        let Some(kind) = self.publish_kind(key, track_id, packet.header.ssrc) else {
            Counters::add(&self.counters.dropped, 1);
            return;
        };
        let Some(member) = self
            .peers
            .get(key)
            .and_then(Option::as_ref)
            .map(|p| p.member)
        else {
            return;
        };
        if kind == Kind::Audio {
            self.hear_audio_level(key, member, &packet.header, now);
        }
        let MediaLoop {
            router,
            peers,
            counters,
            batch,
            ..
        } = self;
        let outcome = forward_packet(
            router,
            member,
            kind,
            &packet,
            now,
            |subscriber, out, clock_rate| {
                let Some(subscriber) = peers.get_mut(subscriber).and_then(Option::as_mut) else {
                    Counters::add(&counters.dropped, 1);
                    return;
                };
                if !subscriber.send_rtp(out, clock_rate, kind, now, batch) {
                    Counters::add(&counters.dropped, 1);
                }
            },
        );
        self.send_batch();
        Counters::add(&self.counters.forwarded, u64::from(outcome.forwarded));
        Counters::add(&self.counters.withheld, u64::from(outcome.withheld));
        Counters::add(&self.counters.dropped, u64::from(outcome.dropped));
        self.send_to_mcu(member, kind, &packet.header, &packet.payload, now);
    }

    /// Sends a member's published packet to its MCU leg, if it has one for this kind: plain
    /// RTP, the MCU's payload type, the leg's SSRC, continuous numbering, no header extension.
    fn send_to_mcu(
        &mut self,
        member: MemberKey,
        kind: Kind,
        header: &rtp::header::Header,
        payload: &[u8],
        now: Instant,
    ) {
        if self.mcu_by_member.is_empty() {
            return;
        }
        let Some(&index) = self.mcu_by_member.get(&member) else {
            return;
        };
        // Server-side mute holds the MCU's copy back too.
        if !self
            .router
            .member(member)
            .is_some_and(|m| m.forwarding[kind.index()])
        {
            return;
        }
        let MediaLoop {
            mcu_legs,
            send_buf,
            counters,
            router,
            ..
        } = self;
        let Some(leg) = mcu_legs.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        let Some(stream) = leg.streams[kind.index()].as_mut() else {
            return;
        };
        // Only media in the codec the MCU chose goes across (no transcoding); the verdict is
        // kept per payload type, so the lookup runs once per change of the browser's codec.
        let carried = match stream.source_checked {
            Some((pt, carried)) if pt == header.payload_type => carried,
            _ => {
                let carried = router
                    .member(member)
                    .and_then(|m| m.tracks[kind.index()].as_ref())
                    .and_then(|t| {
                        t.codecs
                            .iter()
                            .find(|c| c.payload_type == header.payload_type)
                    })
                    .and_then(mcu::codec_of)
                    == Some(stream.codec);
                stream.source_checked = Some((header.payload_type, carried));
                carried
            }
        };
        if !carried {
            Counters::add(&counters.withheld, 1);
            return;
        }
        let Some((seq, ts)) =
            stream
                .out
                .rewrite(header.ssrc, header.sequence_number, header.timestamp, now)
        else {
            Counters::add(&counters.dropped, 1);
            return;
        };
        mcu::write_rtp(
            send_buf,
            header.marker,
            stream.payload_type,
            seq,
            ts,
            stream.out_ssrc,
            payload,
        );
        match leg.sockets[kind.index()].try_send_to(send_buf, stream.remote) {
            Ok(_) => {
                stream.sent.on_packet(ts, payload.len(), now);
                Counters::add(&counters.forwarded, 1);
            }
            Err(_) => Counters::add(&counters.dropped, 1),
        }
    }

    /// Reads what the MCU legs' sockets hold, a batch per socket.
    fn read_mcu_sockets(&mut self) {
        for index in 0..self.mcu_legs.len() {
            for kind in Kind::ALL {
                for _ in 0..RECV_BATCH {
                    let Some(leg) = self.mcu_legs.get(index).and_then(Option::as_ref) else {
                        break;
                    };
                    if self.recv_buf.capacity() - self.recv_buf.len() < MAX_DATAGRAM {
                        self.recv_buf.reserve(RECV_BLOCK);
                    }
                    let mut limited = (&mut self.recv_buf).limit(MAX_DATAGRAM);
                    let from = match leg.sockets[kind.index()].try_recv_buf_from(&mut limited) {
                        Ok((_, from)) => from,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(_) => continue,
                    };
                    let datagram = self.recv_buf.split().freeze();
                    self.on_mcu_datagram(index, kind, &datagram, from, Instant::now());
                }
            }
        }
    }

    /// One datagram from the MCU (or from anyone) on a leg's socket of `kind`.
    fn on_mcu_datagram(
        &mut self,
        index: usize,
        kind: Kind,
        datagram: &bytes::Bytes,
        from: SocketAddr,
        now: Instant,
    ) {
        let Some(leg) = self.mcu_legs.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        let member = leg.member;
        // Only the MCU's host may speak on the leg (any port: symmetric RTP, RTCP from port+1).
        let Some(stream) = leg.streams[kind.index()]
            .as_mut()
            .filter(|s| s.remote.ip() == from.ip())
        else {
            Counters::add(&self.counters.unrouted, 1);
            return;
        };
        if mcu::is_rtcp(datagram) {
            if let Some((ssrc, ntp)) = mcu_rtcp::sender_report(datagram) {
                stream.received.on_sender_report(ssrc, ntp, now);
            }
            if kind == Kind::Video && mcu::keyframe_requested(datagram) {
                // The MCU wants a keyframe of the member's video: ask the member's browser.
                let request = self
                    .router
                    .member(member)
                    .and_then(|m| m.tracks[Kind::Video.index()].as_ref())
                    .map(|t| t.out_ssrc)
                    .and_then(|ssrc| self.router.keyframe_wanted(ssrc, now));
                if let Some(request) = request {
                    self.send_pli(request, now);
                }
            }
            return;
        }
        let Some(view) = mcu::parse_rtp(datagram).filter(|v| v.payload_type == stream.payload_type)
        else {
            Counters::add(&self.counters.unrouted, 1);
            return;
        };
        // Symmetric RTP: the first RTP from the MCU's host says where the MCU receives; from
        // then on only that address is heard (a stranger on the host cannot take over).
        if stream.latched && from != stream.remote {
            Counters::add(&self.counters.unrouted, 1);
            return;
        }
        stream.remote = from;
        stream.latched = true;
        let clock = i64::from(stream.codec.clock_rate());
        let arrival = i64::try_from(now.saturating_duration_since(leg.epoch).as_micros())
            .unwrap_or(i64::MAX)
            .saturating_mul(clock)
            / 1_000_000;
        stream
            .received
            .on_packet(view.ssrc, view.sequence_number, view.timestamp, arrival);
        Counters::add(&self.counters.received, 1);
        let Some(inbound) = stream.inbound.as_mut() else {
            Counters::add(&self.counters.dropped, 1);
            return;
        };
        inbound.source_ssrc = view.ssrc;
        let Some((subscriber, payload_type)) = inbound.subscriber.filter(|_| inbound.active) else {
            Counters::add(&self.counters.withheld, 1);
            return;
        };
        let payload = datagram.slice(view.payload.clone());
        if kind == Kind::Video && starts_keyframe(inbound.video_codec, &payload) {
            inbound.keyframes.on_keyframe();
            inbound.waiting_keyframe = false;
        } else if inbound.waiting_keyframe {
            Counters::add(&self.counters.withheld, 1);
            return;
        }
        let Some((seq, ts)) =
            inbound
                .rewriter
                .rewrite(view.ssrc, view.sequence_number, view.timestamp, now)
        else {
            Counters::add(&self.counters.dropped, 1);
            return;
        };
        let out = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                marker: view.marker,
                payload_type,
                sequence_number: seq,
                timestamp: ts,
                ssrc: inbound.out_ssrc,
                ..Default::default()
            },
            payload,
        };
        let clock_rate = inbound.rewriter.clock_rate();
        let Some(peer) = self.peers.get_mut(subscriber).and_then(Option::as_mut) else {
            Counters::add(&self.counters.dropped, 1);
            return;
        };
        if peer.send_rtp(out, clock_rate, kind, now, &mut self.batch) {
            Counters::add(&self.counters.forwarded, 1);
        } else {
            Counters::add(&self.counters.dropped, 1);
        }
        self.send_batch();
    }

    /// Sends what the send batch holds; a datagram the socket refused counts as dropped.
    fn send_batch(&mut self) {
        let unsent = self.batch.send(&self.socket) as u64;
        Counters::add(&self.counters.dropped, unsent);
    }

    /// RTCP sender/receiver reports on every MCU stream whose report is due.
    fn send_mcu_reports(&mut self, now: Instant) {
        let MediaLoop {
            mcu_legs, send_buf, ..
        } = self;
        let mut wall = None;
        for leg in mcu_legs.iter_mut().flatten() {
            for kind in Kind::ALL {
                let Some(stream) = leg.streams[kind.index()].as_mut() else {
                    continue;
                };
                if stream.next_report > now {
                    continue;
                }
                stream.next_report = now + mcu_rtcp::REPORT_INTERVAL;
                let wall = *wall.get_or_insert_with(std::time::SystemTime::now);
                mcu_rtcp::write_report(
                    send_buf,
                    stream.out_ssrc,
                    &stream.sent,
                    &mut stream.received,
                    stream.codec.clock_rate(),
                    &leg.cname,
                    (now, wall),
                );
                // Best effort: a lost report is followed by the next one.
                let to = stream.rtcp.unwrap_or(stream.remote);
                let _ = leg.sockets[kind.index()].try_send_to(send_buf, to);
            }
        }
    }

    /// The member's subscriber wants a keyframe of the MCU's video: a PLI to the MCU and an
    /// event for the control plane (SIP INFO picture_fast_update: ffmpeg-like MCUs ignore
    /// RTCP). Coalesced like requests to browsers (see `keyframe.rs`), unless `retry`.
    fn request_mcu_keyframe(&mut self, index: usize, now: Instant, retry: bool) {
        let MediaLoop {
            mcu_legs,
            send_buf,
            router,
            ..
        } = self;
        let Some(leg) = mcu_legs.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        let Some(stream) = leg.streams[Kind::Video.index()].as_mut() else {
            return;
        };
        let Some(inbound) = stream.inbound.as_mut() else {
            return;
        };
        if !retry && !inbound.keyframes.request(now) {
            return;
        }
        mcu::write_pli(send_buf, stream.out_ssrc, inbound.source_ssrc);
        // Lost like any datagram if the socket refuses it; the retry timer asks again.
        let to = stream.rtcp.unwrap_or(stream.remote);
        let _ = leg.sockets[Kind::Video.index()].try_send_to(send_buf, to);
        if let Some(m) = router.member(leg.member) {
            let member = m.id.clone();
            self.emit(MediaEvent::McuKeyframeRequest { member });
        }
    }

    /// The MCU leg whose video the subscriber knows by `ssrc`.
    fn mcu_leg_by_video_ssrc(&self, ssrc: u32) -> Option<usize> {
        self.mcu_legs.iter().position(|leg| {
            leg.as_ref()
                .and_then(|l| l.streams[Kind::Video.index()].as_ref())
                .and_then(|s| s.inbound.as_ref())
                .is_some_and(|i| i.out_ssrc == ssrc)
        })
    }

    /// Feeds the audio level of a publisher's audio packet to its room's speaker detector.
    /// Costs a hash of the room id per packet; allocates only when a room or a member first
    /// has a level, or when someone starts or stops speaking.
    fn hear_audio_level(
        &mut self,
        key: PeerKey,
        member: MemberKey,
        header: &rtp::header::Header,
        now: Instant,
    ) {
        let id = match self
            .peers
            .get(key)
            .and_then(Option::as_ref)
            .map(|p| &p.role)
        {
            Some(Role::Publish(leg)) => leg.audio_level_id,
            _ => None,
        };
        let Some((level, voice)) = id.and_then(|id| speaker::audio_level(header, id)) else {
            return;
        };
        let Some(m) = self.router.member(member) else {
            return;
        };
        // Audio the server does not forward makes nobody the speaker (see `set_forwarding`).
        if !m.forwarding[Kind::Audio.index()] {
            return;
        }
        let change = match self.speakers.get_mut(m.room.as_str()) {
            Some(room) => room.on_level(member, level, voice, now),
            None => {
                let mut room = RoomSpeakers::default();
                let change = room.on_level(member, level, voice, now);
                self.speakers.insert(m.room.clone(), room);
                change
            }
        };
        if let Some(change) = change {
            self.report_speaking(change);
        }
    }

    fn report_speaking(&mut self, change: SpeakerChange) {
        if let Some(m) = self.router.member(change.member) {
            let event = MediaEvent::Speaking {
                room: m.room.clone(),
                member: m.id.clone(),
                speaking: change.speaking,
            };
            self.emit(event);
        }
    }

    /// Forgets what the speaker detector knows of a member (it leaves, its audio is no longer
    /// forwarded, its publish leg is gone) and reports `speaking: false` if it was speaking.
    /// Call before the router forgets the member.
    fn stop_speaking(&mut self, member: MemberKey) {
        let Some(room) = self.router.member(member).map(|m| m.room.as_str()) else {
            return;
        };
        let Some(speakers) = self.speakers.get_mut(room) else {
            return;
        };
        let was_speaking = speakers.forget(member);
        if speakers.is_empty() {
            self.speakers.remove(room);
        }
        if was_speaking {
            self.report_speaking(SpeakerChange {
                member,
                speaking: false,
            });
        }
    }

    /// The kind of an incoming stream of a publish leg, if it is one we forward.
    fn publish_kind(&mut self, key: PeerKey, track_id: &str, ssrc: u32) -> Option<Kind> {
        let peer = self.peers.get_mut(key)?.as_mut()?;
        let Role::Publish(leg) = &mut peer.role else {
            return None;
        };
        if let Some((_, kind)) = leg.ssrcs.iter().find(|(s, _)| *s == ssrc) {
            return *kind;
        }
        // First packet of a stream we were not told about: find its receiver by track id.
        let mut found = None;
        for (receiver, kind) in &leg.forwarded {
            if let Some(r) = peer.pc.rtp_receiver(*receiver)
                && r.track().track_id() == track_id
            {
                found = Some(*kind);
            }
        }
        leg.ssrcs.push((ssrc, found));
        found
    }

    /// RTCP delivered by [`peer::DeliverKeyframeRequests`] on connection `key`: PLI and FIR
    /// from subscribers, and NACKs for what the loop sent itself.
    fn on_rtcp(&mut self, key: PeerKey, packets: &[Box<dyn rtc::rtcp::Packet>], now: Instant) {
        for packet in packets {
            let any = packet.as_any();
            if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                self.resend(key, nack);
            } else if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                if let Some(index) = self.mcu_leg_by_video_ssrc(pli.media_ssrc) {
                    self.request_mcu_keyframe(index, now, false);
                } else if let Some(request) = self.router.keyframe_wanted(pli.media_ssrc, now) {
                    self.send_pli(request, now);
                }
            } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                for entry in &fir.fir {
                    if let Some(index) = self.mcu_leg_by_video_ssrc(entry.ssrc) {
                        self.request_mcu_keyframe(index, now, false);
                    } else if let Some(request) = self.router.keyframe_wanted(entry.ssrc, now) {
                        self.send_pli(request, now);
                    }
                }
            }
        }
    }

    /// Answers a NACK from what connection `key` sent itself (rtc's NACK responder answers
    /// for what rtc sent).
    fn resend(&mut self, key: PeerKey, nack: &TransportLayerNack) {
        let Some(direct) = self
            .peers
            .get_mut(key)
            .and_then(Option::as_mut)
            .and_then(|p| p.direct.as_mut())
        else {
            return;
        };
        let resent = direct.resend(nack, &mut self.batch) as u64;
        Counters::add(&self.counters.retransmitted, resent);
        self.send_batch();
    }

    fn send_pli(&mut self, request: KeyframeRequest, now: Instant) {
        let MediaLoop {
            peers,
            socket,
            counters,
            ..
        } = self;
        let Some(peer) = peers.get_mut(request.publisher).and_then(Option::as_mut) else {
            return;
        };
        if !peer.connected {
            // Nothing can be sent before DTLS is up; a browser starts with a keyframe anyway.
            return;
        }
        let pli = PictureLossIndication {
            sender_ssrc: PLI_SENDER_SSRC,
            media_ssrc: request.media_ssrc,
        };
        if peer
            .pc
            .handle_write(TaggedRTCMessage {
                now,
                message: RTCMessage::RtcpPacket(String::new(), vec![Box::new(pli)]),
            })
            .is_ok()
        {
            peer.timeout_stale = true;
            send_all(socket, &mut peer.pc, counters);
        }
    }

    fn flush(&mut self, key: PeerKey) {
        let MediaLoop {
            peers,
            socket,
            counters,
            ..
        } = self;
        if let Some(peer) = peers.get_mut(key).and_then(Option::as_mut) {
            send_all(socket, &mut peer.pc, counters);
            peer.next_timeout = peer.pc.poll_timeout();
            peer.timeout_stale = false;
        }
    }

    // ---------------------------------------------------------------- timers

    fn next_deadline(&mut self) -> Option<Instant> {
        let mut deadline: Option<Instant> = None;
        for peer in self.peers.iter_mut().flatten() {
            if peer.timeout_stale {
                peer.next_timeout = peer.pc.poll_timeout();
                peer.timeout_stale = false;
            }
            if let Some(t) = peer.next_timeout {
                deadline = Some(deadline.map_or(t, |d| d.min(t)));
            }
        }
        deadline
    }

    fn run_timeouts(&mut self, now: Instant) {
        for key in 0..self.peers.len() {
            let due = self.peers[key]
                .as_ref()
                .is_some_and(|p| p.next_timeout.is_some_and(|t| t <= now));
            if !due {
                continue;
            }
            if let Some(peer) = self.peers[key].as_mut() {
                // A failing timer handler (say, a DTLS retransmission error) is rtc's business:
                // the connection state events tell us if the connection is lost.
                let _ = peer.pc.handle_timeout(now);
            }
            self.drive(key, now);
        }
    }

    /// The sender reports of every connection that sends RTP itself, when due; each also
    /// follows the connection's selected candidate pair, should ICE have moved it.
    fn send_sender_reports(&mut self, now: Instant) {
        let MediaLoop {
            peers,
            socket,
            counters,
            ..
        } = self;
        for peer in peers.iter_mut().flatten() {
            let Some(direct) = peer.direct.as_mut() else {
                continue;
            };
            let reports = direct.reports_due(now);
            if reports.is_empty() {
                continue;
            }
            if let Some(to) = peer::destination(&mut peer.pc) {
                direct.set_destination(to);
            }
            let packets = reports
                .into_iter()
                .map(|r| Box::new(r) as Box<dyn rtc::rtcp::Packet>)
                .collect();
            if peer
                .pc
                .handle_write(TaggedRTCMessage {
                    now,
                    message: RTCMessage::RtcpPacket(String::new(), packets),
                })
                .is_ok()
            {
                peer.timeout_stale = true;
                send_all(socket, &mut peer.pc, counters);
            }
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        let mut requests = Vec::new();
        self.router.poll_keyframes(now, |r| requests.push(r));
        for request in requests {
            self.send_pli(request, now);
        }
        // MCU video a subscriber still waits for: ask again (retry interval of `keyframe.rs`).
        for index in 0..self.mcu_legs.len() {
            let due = self
                .mcu_legs
                .get_mut(index)
                .and_then(Option::as_mut)
                .and_then(|l| l.streams[Kind::Video.index()].as_mut())
                .and_then(|s| s.inbound.as_mut())
                .is_some_and(|i| i.keyframes.poll(now, i.active && i.waiting_keyframe));
            if due {
                self.request_mcu_keyframe(index, now, true);
            }
        }
        self.send_mcu_reports(now);
        self.send_sender_reports(now);
        // Speakers whose audio went quiet or stopped arriving, and onsets the hold delayed.
        let mut changes = Vec::new();
        for room in self.speakers.values_mut() {
            room.tick(now, |change| changes.push(change));
        }
        for change in changes {
            self.report_speaking(change);
        }
        while let Some(event) = self.overflow.pop_front() {
            match self.events.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(event)) => {
                    self.overflow.push_front(event);
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.overflow.clear();
                    break;
                }
            }
        }
    }

    // ---------------------------------------------------------------- connection events

    fn on_event(&mut self, key: PeerKey, event: RTCPeerConnectionEvent, now: Instant) {
        match event {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                self.on_state(key, state, now);
            }
            RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(
                RTCIceConnectionState::Connected | RTCIceConnectionState::Completed,
            ) => {
                // ICE (re)connected, perhaps over another pair: media follows it at once.
                if let Some(peer) = self.peers.get_mut(key).and_then(Option::as_mut)
                    && let Some(to) = peer::destination(&mut peer.pc)
                    && let Some(direct) = peer.direct.as_mut()
                {
                    direct.set_destination(to);
                }
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                let Some(peer) = self.peers.get_mut(key).and_then(Option::as_mut) else {
                    return;
                };
                let member = peer.member;
                let Role::Publish(leg) = &mut peer.role else {
                    return;
                };
                let kind = leg
                    .forwarded
                    .iter()
                    .find(|(r, _)| *r == init.receiver_id)
                    .map(|(_, k)| *k);
                leg.ssrcs.retain(|(s, _)| *s != init.ssrc);
                leg.ssrcs.push((init.ssrc, kind));
                if let Some(kind) = kind
                    && let Some(m) = self.router.member_mut(member)
                    && let Some(track) = m.tracks[kind.index()].as_mut()
                {
                    track.source_ssrc = Some(init.ssrc);
                }
            }
            _ => {}
        }
    }

    fn on_state(&mut self, key: PeerKey, state: RTCPeerConnectionState, now: Instant) {
        let Some(peer) = self.peers.get_mut(key).and_then(Option::as_mut) else {
            return;
        };
        let leg = peer.leg();
        let member = peer.member;
        let mut report = None;
        match state {
            RTCPeerConnectionState::Connected => {
                peer.connected = true;
                if !peer.reported {
                    peer.reported = true;
                    report = Some(true);
                }
            }
            RTCPeerConnectionState::Disconnected
            | RTCPeerConnectionState::Failed
            | RTCPeerConnectionState::Closed
                if peer.reported =>
            {
                peer.reported = false;
                report = Some(false);
            }
            _ => {}
        }
        if let (Some(connected), Some(m)) = (report, self.router.member(member)) {
            let member = m.id.clone();
            self.emit(if connected {
                MediaEvent::Connected { member, leg }
            } else {
                MediaEvent::Disconnected { member, leg }
            });
        }
        if state == RTCPeerConnectionState::Connected
            && leg == Leg::Publish
            && let Some(request) = self.router.publisher_connected(member, now)
        {
            self.send_pli(request, now);
        }
        if state == RTCPeerConnectionState::Connected && leg == Leg::Subscribe {
            for request in self.router.activate_subscriber(key, now) {
                self.send_pli(request, now);
            }
            self.activate_mcu(member, key, now);
        }
        if state == RTCPeerConnectionState::Failed {
            tracing::info!(peer = key, ?leg, "media leg failed; closing it");
            self.drop_leg(key, now);
        }
    }

    /// A leg failed: close it; a publish leg takes its tracks with it.
    fn drop_leg(&mut self, key: PeerKey, now: Instant) {
        let Some(peer) = self.peers.get(key).and_then(Option::as_ref) else {
            return;
        };
        let member = peer.member;
        let publish = matches!(peer.role, Role::Publish(_));
        self.close_peer(key);
        if publish {
            self.stop_speaking(member);
            let mut changed = false;
            for kind in Kind::ALL {
                changed |= self.router.unpublish(member, kind);
            }
            if changed {
                self.renegotiate_room(member, now);
            }
        }
    }

    fn emit(&mut self, event: MediaEvent) {
        if !self.overflow.is_empty() {
            self.overflow.push_back(event);
            return;
        }
        match self.events.try_send(event) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(event)) => self.overflow.push_back(event),
        }
    }

    // ---------------------------------------------------------------- commands

    fn handle_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Publish {
                room,
                member,
                offer_sdp,
                reply,
            } => {
                let result = self.publish(&room, &member, offer_sdp, now);
                if let Err(e) = &result {
                    tracing::debug!(%room, %member, error = %e, "publish refused");
                }
                let _ = reply.send(result);
            }
            Command::Subscribe {
                room,
                member,
                reply,
            } => {
                let result = self.subscribe(&room, &member, now);
                let _ = reply.send(result);
            }
            Command::SubscriberAnswer {
                member,
                answer_sdp,
                reply,
            } => {
                let result = self.subscriber_answer(&member, answer_sdp, now);
                let _ = reply.send(result);
            }
            Command::RemoteCandidate {
                member,
                leg,
                candidate,
                reply,
            } => {
                let result = self.remote_candidate(&member, leg, &candidate);
                let _ = reply.send(result);
            }
            Command::SetForwarding {
                member,
                audio,
                video,
                reply,
            } => {
                let result = self.set_forwarding(&member, audio, video, now);
                let _ = reply.send(result);
            }
            Command::RemoveMember { member, reply } => {
                self.remove_member(&member, now);
                let _ = reply.send(Ok(()));
            }
            Command::Load { reply } => {
                let (incoming, outgoing) = self.router.streams();
                let mcu = self
                    .mcu_legs
                    .iter()
                    .flatten()
                    .map(|l| l.streams.iter().flatten().count() as u64)
                    .sum::<u64>();
                let _ = reply.send(Ok(MediaLoad {
                    incoming: incoming + mcu,
                    outgoing: outgoing + mcu,
                }));
            }
            Command::OpenMcuLeg { member, reply } => {
                let _ = reply.send(self.open_mcu_leg(&member));
            }
            Command::ConnectMcuLeg {
                member,
                audio,
                video,
                reply,
            } => {
                let _ = reply.send(self.connect_mcu_leg(&member, audio, video, now));
            }
            Command::CloseMcuLeg { member, reply } => {
                if let Some(key) = self.router.key(&member) {
                    self.close_mcu_leg(key, now);
                }
                let _ = reply.send(Ok(()));
            }
            Command::RequestKeyframe { member, reply } => {
                let request = self
                    .router
                    .key(&member)
                    .and_then(|key| self.router.member(key))
                    .and_then(|m| m.tracks[Kind::Video.index()].as_ref())
                    .map(|t| t.out_ssrc)
                    .and_then(|ssrc| self.router.keyframe_wanted(ssrc, now));
                if let Some(request) = request {
                    self.send_pli(request, now);
                }
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn join(&mut self, room: &str, member: &str) -> Result<MemberKey, MediaError> {
        self.router
            .join(room, member)
            .map_err(|OtherRoom(room)| MediaError::OtherRoom {
                member: member.to_owned(),
                room,
            })
    }

    fn member_key(&self, member: &str) -> Result<MemberKey, MediaError> {
        self.router
            .key(member)
            .ok_or_else(|| MediaError::NoSuchMember(member.to_owned()))
    }

    /// A member that has no connection left after a failed request is forgotten.
    fn forget_if_idle(&mut self, key: MemberKey) {
        if self
            .router
            .member(key)
            .is_some_and(|m| m.publisher.is_none() && m.subscriber.is_none())
        {
            self.stop_speaking(key);
            self.drop_mcu_leg(key);
            self.router.leave(key);
        }
    }

    fn new_peer(
        &mut self,
        member: MemberKey,
        role: Role,
        now: Instant,
    ) -> Result<PeerKey, MediaError> {
        let mut ufrag = peer::ice_string(ICE_UFRAG_LEN);
        while !self.demux.ufrag_free(&ufrag) {
            ufrag = peer::ice_string(ICE_UFRAG_LEN);
        }
        let (pc, tap) = peer::build(&ufrag, &peer::ice_string(ICE_PWD_LEN), role.leg(), now)?;
        let peer = Peer {
            pc,
            member,
            ufrag: ufrag.clone(),
            role,
            connected: false,
            reported: false,
            next_timeout: None,
            timeout_stale: true,
            rtp_written: false,
            tap,
            direct: None,
        };
        let key = match self.free_peers.pop() {
            Some(key) => {
                self.peers[key] = Some(peer);
                key
            }
            None => {
                self.peers.push(Some(peer));
                self.peers.len() - 1
            }
        };
        self.demux.add_ufrag(ufrag, key);
        Ok(key)
    }

    /// Closes a connection and forgets it: demultiplexer entries, fanouts, the member's
    /// reference. Reports `Disconnected` if `Connected` was reported.
    fn close_peer(&mut self, key: PeerKey) {
        let Some(mut peer) = self.peers.get_mut(key).and_then(Option::take) else {
            return;
        };
        self.free_peers.push(key);
        // Sends DTLS close_notify so the browser notices at once.
        let _ = peer.pc.close();
        send_all(&self.socket, &mut peer.pc, &self.counters);
        self.demux.remove(&peer.ufrag, key);
        let leg = peer.leg();
        if leg == Leg::Subscribe {
            self.router.remove_subscriber(key);
            for inbound in self.mcu_inbound_mut(peer.member) {
                if inbound.subscriber.is_some_and(|(k, _)| k == key) {
                    inbound.subscriber = None;
                    inbound.active = false;
                }
            }
        }
        if let Some(member) = self.router.member_mut(peer.member) {
            let slot = match leg {
                Leg::Publish => &mut member.publisher,
                Leg::Subscribe => &mut member.subscriber,
            };
            if *slot == Some(key) {
                *slot = None;
            }
            let id = member.id.clone();
            if peer.reported {
                self.emit(MediaEvent::Disconnected { member: id, leg });
            }
        }
    }

    fn publish(
        &mut self,
        room: &str,
        member: &str,
        offer_sdp: String,
        now: Instant,
    ) -> Result<String, MediaError> {
        let summary = sdp::inspect(&offer_sdp).map_err(MediaError::BadSdp)?;
        let offer = RTCSessionDescription::offer(offer_sdp)
            .map_err(|e| MediaError::BadSdp(e.to_string()))?;
        let member_key = self.join(room, member)?;
        let existing = self
            .router
            .member(member_key)
            .and_then(|m| m.publisher)
            .filter(|key| {
                matches!(
                    self.peers.get(*key).and_then(Option::as_ref).map(|p| &p.role),
                    Some(Role::Publish(leg)) if Some(&leg.remote_ufrag) == summary.ice_ufrag.as_ref()
                )
            });
        let result = match existing {
            Some(key) => self.answer_publish(key, offer, false),
            None => {
                let key = self.new_peer(
                    member_key,
                    Role::Publish(PublishLeg {
                        remote_ufrag: summary.ice_ufrag.clone().unwrap_or_default(),
                        ..PublishLeg::default()
                    }),
                    now,
                )?;
                match self.answer_publish(key, offer, true) {
                    Ok(answer) => {
                        if let Some(old) = self.router.member(member_key).and_then(|m| m.publisher)
                        {
                            self.close_peer(old);
                        }
                        if let Some(m) = self.router.member_mut(member_key) {
                            m.publisher = Some(key);
                        }
                        Ok(answer)
                    }
                    Err(e) => {
                        self.close_peer(key);
                        Err(e)
                    }
                }
            }
        };
        let answer = match result {
            Ok(answer) => answer,
            Err(e) => {
                self.forget_if_idle(member_key);
                return Err(e);
            }
        };
        let key = self.router.member(member_key).and_then(|m| m.publisher);
        if let Some(key) = key {
            self.register_tracks(key, member_key, now);
            self.flush(key);
        }
        Ok(answer)
    }

    fn answer_publish(
        &mut self,
        key: PeerKey,
        offer: RTCSessionDescription,
        fresh: bool,
    ) -> Result<String, MediaError> {
        let (ips, port) = (self.candidate_ips.clone(), self.port);
        let peer = self
            .peers
            .get_mut(key)
            .and_then(Option::as_mut)
            .ok_or(MediaError::Closed)?;
        let now = Instant::now();
        peer.pc
            .set_remote_description(now, offer)
            .map_err(|e| MediaError::BadSdp(e.to_string()))?;
        if fresh {
            peer::add_host_candidates(&mut peer.pc, &ips, port)?;
        }
        let answer = peer
            .pc
            .create_answer(None)
            .map_err(|e| MediaError::Incompatible(e.to_string()))?;
        peer.pc
            .set_local_description(now, answer)
            .map_err(|e| MediaError::Internal(format!("applying our answer: {e}")))?;
        let sdp = peer.pc.local_description().map(|d| d.sdp).ok_or_else(|| {
            MediaError::Internal("no local description after answering".to_owned())
        })?;
        // Which receivers carry media we can forward: the first audio and the first video one
        // with a negotiated codec.
        let mut forwarded: Vec<(RTCRtpReceiverId, Kind)> = Vec::new();
        let transceivers: Vec<_> = peer.pc.get_transceivers().collect();
        for id in transceivers {
            let Some(receiver) = peer.pc.rtp_transceiver(id).and_then(|t| t.receiver()) else {
                continue;
            };
            let Some(mut r) = peer.pc.rtp_receiver(receiver) else {
                continue;
            };
            let Some(kind) = kind_of(r.track().kind()) else {
                continue;
            };
            if r.get_parameters().rtp_parameters.codecs.is_empty()
                || forwarded.iter().any(|(_, k)| *k == kind)
            {
                continue;
            }
            forwarded.push((receiver, kind));
        }
        if forwarded.is_empty() {
            return Err(MediaError::Incompatible(
                "no offered audio or video codec is supported (the server takes audio/opus, video/VP8, video/H264)"
                    .to_owned(),
            ));
        }
        if let Role::Publish(leg) = &mut peer.role {
            leg.forwarded = forwarded;
            leg.ssrcs.clear();
        }
        Ok(sdp)
    }

    /// Publishes the tracks of a publish leg in the router, and re-offers the room's other
    /// subscribers if tracks came or went.
    fn register_tracks(&mut self, key: PeerKey, member: MemberKey, now: Instant) {
        let Some(peer) = self.peers.get_mut(key).and_then(Option::as_mut) else {
            return;
        };
        let Role::Publish(leg) = &peer.role else {
            return;
        };
        let forwarded = leg.forwarded.clone();
        let mut changed = false;
        let mut audio_level_id = None;
        for kind in Kind::ALL {
            let Some((receiver, _)) = forwarded.iter().find(|(_, k)| *k == kind) else {
                changed |= self.router.unpublish(member, kind);
                continue;
            };
            let Some(mut r) = peer.pc.rtp_receiver(*receiver) else {
                continue;
            };
            let source_ssrc = r.track().ssrcs().next();
            let (codecs, extensions) = peer::negotiated(&r.get_parameters().rtp_parameters);
            if kind == Kind::Audio {
                audio_level_id = extensions
                    .iter()
                    .find(|(uri, _)| uri == speaker::AUDIO_LEVEL_URI)
                    .map(|(_, id)| *id);
            }
            changed |= self.router.publish(
                member,
                kind,
                codecs,
                extensions,
                source_ssrc,
                peer::random_ssrc,
            );
        }
        if let Role::Publish(leg) = &mut peer.role {
            leg.audio_level_id = audio_level_id;
        }
        if changed {
            self.renegotiate_room(member, now);
        }
    }

    fn subscribe(&mut self, room: &str, member: &str, now: Instant) -> Result<String, MediaError> {
        let member_key = self.join(room, member)?;
        if let Some(old) = self.router.member(member_key).and_then(|m| m.subscriber) {
            self.close_peer(old);
        }
        let key = match self.new_peer(member_key, Role::Subscribe(SubscribeLeg::default()), now) {
            Ok(key) => key,
            Err(e) => {
                self.forget_if_idle(member_key);
                return Err(e);
            }
        };
        let (ips, port) = (self.candidate_ips.clone(), self.port);
        let setup = self
            .peers
            .get_mut(key)
            .and_then(Option::as_mut)
            .ok_or(MediaError::Closed)
            .and_then(|peer| {
                peer.pc
                    .create_data_channel(DATA_CHANNEL_LABEL, None)
                    .map_err(|e| MediaError::Internal(format!("creating the data channel: {e}")))?;
                peer::add_host_candidates(&mut peer.pc, &ips, port)
            });
        if let Some(m) = self.router.member_mut(member_key) {
            m.subscriber = Some(key);
        }
        let offer = setup.and_then(|()| {
            self.sync_slots(key);
            self.offer(key)
        });
        match offer {
            Ok(offer) => {
                self.flush(key);
                Ok(offer)
            }
            Err(e) => {
                self.close_peer(key);
                self.forget_if_idle(member_key);
                Err(e)
            }
        }
    }

    /// Brings a subscribe leg's senders in line with what its member should receive. Returns
    /// whether anything changed.
    fn sync_slots(&mut self, key: PeerKey) -> bool {
        let mcu_wanted = match self.peers.get(key).and_then(Option::as_ref) {
            Some(peer) => self.mcu_wanted(peer.member),
            None => return false,
        };
        let Some(peer) = self.peers.get_mut(key).and_then(Option::as_mut) else {
            return false;
        };
        let wanted = self.router.wanted_tracks(peer.member);
        let Role::Subscribe(leg) = &mut peer.role else {
            return false;
        };
        let mut changed = false;
        let mut kept = Vec::with_capacity(leg.slots.len());
        for slot in leg.slots.drain(..) {
            if wanted.contains(&slot.track) {
                kept.push(slot);
                continue;
            }
            changed = true;
            // The track is gone from the offer; removal only fails on a closed connection.
            let _ = peer.pc.remove_track(slot.sender);
            self.router.remove_fanout(slot.track, key);
            leg.free.push(slot.track.kind);
        }
        leg.slots = kept;
        for track in wanted {
            if leg.slots.iter().any(|s| s.track == track) {
                continue;
            }
            let Some(publisher) = self.router.member(track.publisher) else {
                continue;
            };
            let Some(published) = &publisher.tracks[track.kind.index()] else {
                continue;
            };
            let Some(codec) = published.codecs.first() else {
                continue;
            };
            let rtc_kind = match track.kind {
                Kind::Audio => RtpCodecKind::Audio,
                Kind::Video => RtpCodecKind::Video,
            };
            // msid: the stream is the publishing member, so the page can tell whose track it is.
            let media_track = MediaStreamTrack::new(
                publisher.id.clone(),
                format!("{}-{}", publisher.id, track.kind.as_str()),
                format!("{}-{}", publisher.id, track.kind.as_str()),
                rtc_kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(track.out_ssrc),
                        ..Default::default()
                    },
                    codec: RTCRtpCodec {
                        mime_type: codec.mime_type.clone(),
                        clock_rate: codec.clock_rate,
                        channels: codec.channels,
                        sdp_fmtp_line: codec.fmtp.clone(),
                        rtcp_feedback: Vec::new(),
                    },
                    ..Default::default()
                }],
            );
            let sender = if let Some(i) = leg.free.iter().position(|k| *k == track.kind) {
                leg.free.swap_remove(i);
                // Reuses the first stopped sender's transceiver of this kind (sendonly).
                peer.pc.add_track(media_track).ok()
            } else {
                peer.pc
                    .add_transceiver_from_track(
                        media_track,
                        Some(RTCRtpTransceiverInit {
                            direction: RTCRtpTransceiverDirection::Sendonly,
                            streams: vec![publisher.id.clone()],
                            send_encodings: vec![],
                        }),
                    )
                    .ok()
                    .and_then(|id| peer.pc.rtp_transceiver(id).and_then(|t| t.sender()))
            };
            if let Some(sender) = sender {
                leg.slots.push(OutSlot { track, sender });
                changed = true;
            }
        }
        // The MCU's picture and sound: stream id "mcu", which the page shows as the main video.
        let mut kept = Vec::with_capacity(leg.mcu.len());
        for (kind, ssrc, sender) in leg.mcu.drain(..) {
            if mcu_wanted[kind.index()]
                .as_ref()
                .is_some_and(|(s, _)| *s == ssrc)
            {
                kept.push((kind, ssrc, sender));
                continue;
            }
            changed = true;
            let _ = peer.pc.remove_track(sender);
            leg.free.push(kind);
        }
        leg.mcu = kept;
        for kind in Kind::ALL {
            let Some((ssrc, codec)) = &mcu_wanted[kind.index()] else {
                continue;
            };
            if leg.mcu.iter().any(|(k, _, _)| *k == kind) {
                continue;
            }
            let rtc_kind = match kind {
                Kind::Audio => RtpCodecKind::Audio,
                Kind::Video => RtpCodecKind::Video,
            };
            let media_track = MediaStreamTrack::new(
                MCU_STREAM_ID.to_owned(),
                format!("{MCU_STREAM_ID}-{}", kind.as_str()),
                format!("{MCU_STREAM_ID}-{}", kind.as_str()),
                rtc_kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(*ssrc),
                        ..Default::default()
                    },
                    codec: RTCRtpCodec {
                        mime_type: codec.mime_type.clone(),
                        clock_rate: codec.clock_rate,
                        channels: codec.channels,
                        sdp_fmtp_line: codec.fmtp.clone(),
                        rtcp_feedback: Vec::new(),
                    },
                    ..Default::default()
                }],
            );
            let sender = if let Some(i) = leg.free.iter().position(|k| *k == kind) {
                leg.free.swap_remove(i);
                peer.pc.add_track(media_track).ok()
            } else {
                peer.pc
                    .add_transceiver_from_track(
                        media_track,
                        Some(RTCRtpTransceiverInit {
                            direction: RTCRtpTransceiverDirection::Sendonly,
                            streams: vec![MCU_STREAM_ID.to_owned()],
                            send_encodings: vec![],
                        }),
                    )
                    .ok()
                    .and_then(|id| peer.pc.rtp_transceiver(id).and_then(|t| t.sender()))
            };
            if let Some(sender) = sender {
                leg.mcu.push((kind, *ssrc, sender));
                changed = true;
            }
        }
        changed
    }

    /// What the subscriber connection of `member` should carry from its MCU leg, by kind: the
    /// SSRC and codec of each MCU stream it can be given.
    fn mcu_wanted(&self, member: MemberKey) -> [Option<(u32, CodecInfo)>; 2] {
        let leg = self
            .mcu_by_member
            .get(&member)
            .and_then(|i| self.mcu_legs.get(*i))
            .and_then(Option::as_ref);
        Kind::ALL.map(|kind| {
            let inbound = leg?.streams[kind.index()].as_ref()?.inbound.as_ref()?;
            Some((inbound.out_ssrc, inbound.codec.clone()))
        })
    }

    fn mcu_inbound_mut(&mut self, member: MemberKey) -> impl Iterator<Item = &mut McuInbound> {
        let index = self.mcu_by_member.get(&member).copied();
        index
            .and_then(|i| self.mcu_legs.get_mut(i))
            .and_then(Option::as_mut)
            .into_iter()
            .flat_map(|leg| leg.streams.iter_mut())
            .flatten()
            .filter_map(|s| s.inbound.as_mut())
    }

    /// `subscriber` (of `member`) can receive the MCU's streams it answered for: they start,
    /// the video at a keyframe asked of the MCU.
    fn activate_mcu(&mut self, member: MemberKey, subscriber: PeerKey, now: Instant) {
        let mut wants_keyframe = false;
        for inbound in self.mcu_inbound_mut(member) {
            if inbound.active || inbound.subscriber.is_none_or(|(k, _)| k != subscriber) {
                continue;
            }
            inbound.active = true;
            inbound.waiting_keyframe = inbound.video;
            wants_keyframe |= inbound.video;
        }
        if wants_keyframe && let Some(&index) = self.mcu_by_member.get(&member) {
            self.request_mcu_keyframe(index, now, false);
        }
    }

    fn open_mcu_leg(&mut self, member: &str) -> Result<McuLegPorts, MediaError> {
        let key = self.member_key(member)?;
        if let Some(leg) = self
            .mcu_by_member
            .get(&key)
            .and_then(|i| self.mcu_legs.get(*i))
            .and_then(Option::as_ref)
        {
            return self.mcu_ports(leg);
        }
        let any = SocketAddr::new(self.bind_ip, 0);
        let leg = McuLeg {
            member: key,
            sockets: [bind(any)?, bind(any)?],
            streams: [None, None],
            epoch: Instant::now(),
            cname: format!("confgate-{:08x}", peer::random_ssrc()),
        };
        let ports = self.mcu_ports(&leg)?;
        let index = match self.mcu_legs.iter().position(Option::is_none) {
            Some(index) => {
                self.mcu_legs[index] = Some(leg);
                index
            }
            None => {
                self.mcu_legs.push(Some(leg));
                self.mcu_legs.len() - 1
            }
        };
        self.mcu_by_member.insert(key, index);
        Ok(ports)
    }

    /// The leg's ports at the address the MCU should send to: the first host candidate.
    fn mcu_ports(&self, leg: &McuLeg) -> Result<McuLegPorts, MediaError> {
        let ip = self.tag_addr.ip();
        let sending = |kind: Kind| {
            let track = self.router.member(leg.member)?.tracks[kind.index()].as_ref()?;
            mcu::codec_of(track.codecs.first()?)
        };
        Ok(McuLegPorts {
            audio: SocketAddr::new(ip, leg.sockets[Kind::Audio.index()].local_addr()?.port()),
            video: SocketAddr::new(ip, leg.sockets[Kind::Video.index()].local_addr()?.port()),
            audio_codec: sending(Kind::Audio),
            video_codec: sending(Kind::Video),
        })
    }

    fn connect_mcu_leg(
        &mut self,
        member: &str,
        audio: Option<McuStream>,
        video: Option<McuStream>,
        now: Instant,
    ) -> Result<(), MediaError> {
        let key = self.member_key(member)?;
        let index = *self
            .mcu_by_member
            .get(&key)
            .ok_or_else(|| MediaError::NoMcuLeg(member.to_owned()))?;
        for (kind, wanted) in [(Kind::Audio, &audio), (Kind::Video, &video)] {
            if wanted
                .as_ref()
                .is_some_and(|s| s.video != (kind == Kind::Video))
            {
                return Err(MediaError::BadSdp(format!(
                    "the MCU's {} stream is marked as the other kind",
                    kind.as_str()
                )));
            }
        }
        let mut changed = false;
        for (kind, wanted) in [(Kind::Audio, audio), (Kind::Video, video)] {
            let published = self
                .router
                .member(key)
                .and_then(|m| m.tracks[kind.index()].as_ref())
                .map(|t| t.codecs.clone())
                .unwrap_or_default();
            let fresh_ssrc = || loop {
                let ssrc = peer::random_ssrc();
                if ssrc != 0 && self.router.track_by_out_ssrc(ssrc).is_none() {
                    break ssrc;
                }
            };
            let (ssrc_a, ssrc_b) = (fresh_ssrc(), fresh_ssrc());
            let Some(leg) = self.mcu_legs.get_mut(index).and_then(Option::as_mut) else {
                return Err(MediaError::NoMcuLeg(member.to_owned()));
            };
            let slot = &mut leg.streams[kind.index()];
            let previous = slot.take();
            let before = previous
                .as_ref()
                .and_then(|s| s.inbound.as_ref())
                .map(|i| i.out_ssrc);
            let Some(wanted) = wanted else {
                changed |= before.is_some();
                continue;
            };
            let codec = mcu::inbound_codec(wanted.codec, wanted.payload_type, &published);
            let (out_ssrc, out, old_inbound, sent, received) = match previous {
                Some(p) => (p.out_ssrc, p.out, p.inbound, p.sent, p.received),
                None => (
                    ssrc_a,
                    SequenceRewriter::new(wanted.clock_rate),
                    None,
                    Sent::default(),
                    Received::default(),
                ),
            };
            let inbound = match (codec, old_inbound) {
                (Some(codec), Some(old)) if codecs_match(&codec, &old.codec) => Some(old),
                (Some(codec), _) => Some(McuInbound {
                    video_codec: VideoCodec::from_mime(&codec.mime_type),
                    rewriter: SequenceRewriter::new(codec.clock_rate),
                    codec,
                    video: kind == Kind::Video,
                    out_ssrc: ssrc_b,
                    subscriber: None,
                    active: false,
                    waiting_keyframe: false,
                    keyframes: KeyframeRequests::default(),
                    source_ssrc: 0,
                }),
                (None, _) => None,
            };
            changed |= before != inbound.as_ref().map(|i| i.out_ssrc);
            *slot = Some(McuStreamState {
                remote: wanted.remote,
                rtcp: (wanted.rtcp != wanted.remote).then_some(wanted.rtcp),
                latched: false,
                payload_type: wanted.payload_type & 0x7F,
                codec: wanted.codec,
                source_checked: None,
                sent,
                received,
                next_report: now + mcu_rtcp::FIRST_REPORT,
                out_ssrc,
                out,
                inbound,
            });
        }
        // The MCU starts from a keyframe of the member's video.
        let request = self
            .router
            .member(key)
            .and_then(|m| m.tracks[Kind::Video.index()].as_ref())
            .map(|t| t.out_ssrc)
            .and_then(|ssrc| self.router.keyframe_wanted(ssrc, now));
        if let Some(request) = request {
            self.send_pli(request, now);
        }
        if changed && let Some(subscriber) = self.router.member(key).and_then(|m| m.subscriber) {
            self.renegotiate(subscriber, now);
        }
        Ok(())
    }

    /// Closes the leg's sockets (both directions stop) and takes its tracks off the member's
    /// subscriber connection.
    fn close_mcu_leg(&mut self, member: MemberKey, now: Instant) {
        if self.drop_mcu_leg(member)
            && let Some(subscriber) = self.router.member(member).and_then(|m| m.subscriber)
        {
            self.renegotiate(subscriber, now);
        }
    }

    /// Forgets a member's MCU leg; `true` if there was one.
    fn drop_mcu_leg(&mut self, member: MemberKey) -> bool {
        let Some(index) = self.mcu_by_member.remove(&member) else {
            return false;
        };
        self.mcu_legs
            .get_mut(index)
            .and_then(Option::take)
            .is_some()
    }

    fn offer(&mut self, key: PeerKey) -> Result<String, MediaError> {
        let peer = self
            .peers
            .get_mut(key)
            .and_then(Option::as_mut)
            .ok_or(MediaError::Closed)?;
        let offer = peer
            .pc
            .create_offer(None)
            .map_err(|e| MediaError::Internal(format!("creating an offer: {e}")))?;
        peer.pc
            .set_local_description(Instant::now(), offer)
            .map_err(|e| MediaError::Internal(format!("applying our offer: {e}")))?;
        if let Role::Subscribe(leg) = &mut peer.role {
            leg.awaiting_answer = true;
            leg.renegotiate = false;
        }
        peer.pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| MediaError::Internal("no local description after offering".to_owned()))
    }

    /// Re-offers every subscribe leg in `member`'s room except its own.
    fn renegotiate_room(&mut self, member: MemberKey, now: Instant) {
        let Some(room) = self.router.member(member).map(|m| m.room.clone()) else {
            return;
        };
        let subscribers: Vec<PeerKey> = self
            .router
            .room_members(&room)
            .iter()
            .filter(|k| **k != member)
            .filter_map(|k| self.router.member(*k).and_then(|m| m.subscriber))
            .collect();
        for key in subscribers {
            self.renegotiate(key, now);
        }
    }

    /// Re-offers one subscribe leg if its tracks changed; waits for a pending answer first.
    fn renegotiate(&mut self, key: PeerKey, _now: Instant) {
        let Some(peer) = self.peers.get_mut(key).and_then(Option::as_mut) else {
            return;
        };
        let member = peer.member;
        if let Role::Subscribe(leg) = &mut peer.role
            && leg.awaiting_answer
        {
            leg.renegotiate = true;
            return;
        }
        if !self.sync_slots(key) {
            return;
        }
        match self.offer(key) {
            Ok(offer_sdp) => {
                self.flush(key);
                if let Some(m) = self.router.member(member) {
                    let member = m.id.clone();
                    self.emit(MediaEvent::SubscriberOffer { member, offer_sdp });
                }
            }
            Err(e) => {
                tracing::warn!(peer = key, error = %e, "cannot re-offer a subscribe leg; closing it");
                self.drop_leg(key, Instant::now());
            }
        }
    }

    fn subscriber_answer(
        &mut self,
        member: &str,
        answer_sdp: String,
        now: Instant,
    ) -> Result<(), MediaError> {
        let member_key = self.member_key(member)?;
        let key = self
            .router
            .member(member_key)
            .and_then(|m| m.subscriber)
            .ok_or_else(|| MediaError::NoOfferPending(member.to_owned()))?;
        let peer = self
            .peers
            .get_mut(key)
            .and_then(Option::as_mut)
            .ok_or(MediaError::Closed)?;
        let Role::Subscribe(leg) = &mut peer.role else {
            return Err(MediaError::NoOfferPending(member.to_owned()));
        };
        if !leg.awaiting_answer {
            return Err(MediaError::NoOfferPending(member.to_owned()));
        }
        let answer = RTCSessionDescription::answer(answer_sdp)
            .map_err(|e| MediaError::BadSdp(e.to_string()))?;
        peer.pc
            .set_remote_description(now, answer)
            .map_err(|e| MediaError::BadSdp(e.to_string()))?;
        leg.awaiting_answer = false;
        leg.answered = true;
        let early_checks = std::mem::take(&mut leg.early_checks);
        for (datagram, from) in early_checks {
            // A check that fails here fails as it would have on arrival.
            let _ = peer
                .pc
                .handle_read(received(self.tag_addr, from, datagram, now));
        }
        let renegotiate = leg.renegotiate;
        let slots = leg.slots.clone();
        let mcu_slots = leg.mcu.clone();
        let member_key = peer.member;
        let connected = peer.connected;
        let mut fanouts = Vec::with_capacity(slots.len());
        for slot in &slots {
            let Some(mut sender) = peer.pc.rtp_sender(slot.sender) else {
                continue;
            };
            let (codecs, extensions) = peer::negotiated(&sender.get_parameters().rtp_parameters);
            fanouts.push((slot.track, codecs, extensions));
        }
        let mut mcu_fanouts = Vec::with_capacity(mcu_slots.len());
        for (kind, ssrc, sender) in mcu_slots {
            if let Some(mut sender) = peer.pc.rtp_sender(sender) {
                let codecs: Vec<CodecInfo> = sender
                    .get_parameters()
                    .rtp_parameters
                    .codecs
                    .iter()
                    .map(peer::codec_info)
                    .collect();
                mcu_fanouts.push((kind, ssrc, codecs));
            }
        }
        let mut requests = Vec::new();
        for (track, codecs, extensions) in fanouts {
            self.router
                .set_fanout(track, key, codecs, extensions, false);
            if connected && let Some(request) = self.router.activate_fanout(track, key, now) {
                requests.push(request);
            }
        }
        for request in requests {
            self.send_pli(request, now);
        }
        for inbound in self.mcu_inbound_mut(member_key) {
            let Some((_, _, codecs)) = mcu_fanouts.iter().find(|(_, s, _)| *s == inbound.out_ssrc)
            else {
                continue;
            };
            let payload_type = codecs
                .iter()
                .find(|c| codecs_match(&inbound.codec, c))
                .map(|c| c.payload_type);
            if inbound.subscriber.map(|(k, _)| k) != Some(key) {
                inbound.active = false;
            }
            inbound.subscriber = payload_type.map(|pt| (key, pt));
        }
        if connected {
            self.activate_mcu(member_key, key, now);
        }
        self.flush(key);
        if renegotiate {
            self.renegotiate(key, now);
        }
        Ok(())
    }

    fn remote_candidate(
        &mut self,
        member: &str,
        leg: Leg,
        candidate: &str,
    ) -> Result<(), MediaError> {
        let member_key = self.member_key(member)?;
        let Some(candidate) = sdp::candidate(candidate).map_err(MediaError::BadCandidate)? else {
            return Ok(());
        };
        let key = self.router.member(member_key).and_then(|m| match leg {
            Leg::Publish => m.publisher,
            Leg::Subscribe => m.subscriber,
        });
        let Some(peer) = key
            .and_then(|k| self.peers.get_mut(k))
            .and_then(Option::as_mut)
        else {
            // No such leg (yet): under ICE-lite the candidate is not needed anyway.
            return Ok(());
        };
        if peer.pc.remote_description().is_some() {
            // rtc refuses some valid candidates (mDNS names with mDNS off, other transports);
            // the browser's checks reach us whatever the candidate said.
            let _ = peer.pc.add_remote_candidate(RTCIceCandidateInit {
                candidate: candidate.to_owned(),
                ..Default::default()
            });
        }
        Ok(())
    }

    fn set_forwarding(
        &mut self,
        member: &str,
        audio: bool,
        video: bool,
        now: Instant,
    ) -> Result<(), MediaError> {
        let key = self.member_key(member)?;
        if !audio {
            self.stop_speaking(key);
        }
        let mut requests = Vec::new();
        for (kind, on) in [(Kind::Audio, audio), (Kind::Video, video)] {
            if let Some(request) = self.router.set_forwarding(key, kind, on, now) {
                requests.push(request);
            }
        }
        for request in requests {
            self.send_pli(request, now);
        }
        Ok(())
    }

    fn remove_member(&mut self, member: &str, now: Instant) {
        let Some(key) = self.router.key(member) else {
            return;
        };
        self.stop_speaking(key);
        self.drop_mcu_leg(key);
        let legs: Vec<PeerKey> = self
            .router
            .member(key)
            .map(|m| m.publisher.into_iter().chain(m.subscriber).collect())
            .unwrap_or_default();
        for leg in legs {
            self.close_peer(leg);
        }
        let Some(removed) = self.router.leave(key) else {
            return;
        };
        if removed.tracks.iter().any(Option::is_some) {
            for other in self.router.room_members(&removed.room).to_vec() {
                if let Some(sub) = self.router.member(other).and_then(|m| m.subscriber) {
                    self.renegotiate(sub, now);
                }
            }
        }
    }

    fn shutdown(&mut self) {
        for key in 0..self.peers.len() {
            self.close_peer(key);
        }
    }
}

/// Forwards one RTP packet a member published: [`Router::forward`] decides who gets a copy,
/// and each copy is built by [`copy_packet`] and handed to `write` with the subscriber
/// connection it is for and its clock rate. This is the part of the per-packet path between
/// rtc handing a packet over (`poll_read`) and the copies being sent (`Peer::send_rtp`); it
/// touches no socket and no peer connection.
pub(crate) fn forward_packet(
    router: &mut Router,
    member: MemberKey,
    kind: Kind,
    packet: &rtp::Packet,
    now: Instant,
    mut write: impl FnMut(PeerKey, rtp::Packet, u32),
) -> ForwardOutcome {
    let header = &packet.header;
    router.forward(
        member,
        kind,
        header.ssrc,
        header.sequence_number,
        header.timestamp,
        header.payload_type,
        &packet.payload,
        now,
        |copy| write(copy.subscriber, copy_packet(packet, &copy), copy.clock_rate),
    )
}

/// The packet a subscriber connection sends for one copy of `packet`: the copy's SSRC,
/// sequence number, timestamp and payload type, and only the header extensions the copy maps
/// (renumbered). The payload and the kept extensions' payloads are shared, not copied; the
/// extension list is allocated when one is kept (rtc takes packets by value).
pub(crate) fn copy_packet(packet: &rtp::Packet, copy: &crate::router::Copy<'_>) -> rtp::Packet {
    let header = &packet.header;
    let extensions: Vec<rtp::header::Extension> = if header.extensions.is_empty() {
        Vec::new()
    } else {
        header
            .extensions
            .iter()
            .filter_map(|e| {
                copy.extensions.get(e.id).map(|id| rtp::header::Extension {
                    id,
                    payload: e.payload.clone(),
                })
            })
            .collect()
    };
    rtp::Packet {
        header: rtp::header::Header {
            version: 2,
            padding: header.padding,
            extension: !extensions.is_empty(),
            marker: header.marker,
            payload_type: copy.payload_type,
            sequence_number: copy.sequence_number,
            timestamp: copy.timestamp,
            ssrc: copy.ssrc,
            csrc: header.csrc.clone(),
            extension_profile: if extensions.is_empty() {
                0
            } else {
                header.extension_profile
            },
            extensions,
            extensions_padding: 0,
        },
        payload: packet.payload.clone(),
    }
}

/// Ready when a socket of an MCU leg has a datagram. Polls the sockets in place (no
/// allocation, no task per leg); only the loop polls them, so the one waker each keeps is the
/// loop's. With no leg it never completes.
fn mcu_readable(legs: &[Option<McuLeg>]) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(move |cx| {
        for leg in legs.iter().flatten() {
            for socket in &leg.sockets {
                if socket.poll_recv_ready(cx).is_ready() {
                    return std::task::Poll::Ready(());
                }
            }
        }
        std::task::Poll::Pending
    })
}

/// Sends every datagram a connection has queued. A datagram the socket refuses (buffer full)
/// is dropped, as the network would: blocking here would stall every conference of the loop.
fn send_all(socket: &UdpSocket, pc: &mut RTCPeerConnection, counters: &Counters) {
    while let Some(datagram) = pc.poll_write() {
        if socket
            .try_send_to(&datagram.message, datagram.transport.peer_addr)
            .is_err()
        {
            Counters::add(&counters.dropped, 1);
        }
    }
}
