//! The lean connections: rtc's sans-I/O `RTCPeerConnection` driven directly by one small task
//! per connection (one UDP socket, its timers, the requests of the member's signalling), as
//! the server drives its connections.
//!
//! - A lean subscribe connection only receives. The arrival time of every datagram is the
//!   kernel's (`SO_TIMESTAMPNS`, read with `recvmsg`), taken when the packet reached the
//!   member's socket, not when the generator got round to it: a generator busy with other
//!   members' packets adds nothing to the latency measured. It still loses packets if it falls
//!   so far behind that a socket's buffer (4 MiB asked) overflows.
//! - A lean publish connection stamps each packet, encrypts it and hands it to the kernel in
//!   one step of its task, so no other task of the generator runs between the send time in the
//!   stamp and the packet's leaving.
//!
//! The old path (webrtc-rs's async stack: driver task, channels, `TrackRemote` and
//! `TrackLocal`, the times taken when a packet reaches or leaves the member's task) is
//! [`RxPath::Webrtc`].

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use bytes::BytesMut;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::payload::{self, MediaShape, Synthetic};
use crate::peer::{self, Peer, RxCounter, Sink, Srtp, Tracks};

/// How a member's connections receive (or send).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RxPath {
    /// rtc's sans-I/O connection driven by one task per connection; arrival = the kernel's
    /// receive timestamp of the datagram, departure = the moment the task encrypts and sends.
    #[default]
    Lean,
    /// webrtc-rs's async stack; arrival = when the packet reaches the counting task,
    /// departure = when the sending task hands it to webrtc-rs.
    Webrtc,
}

impl RxPath {
    pub fn name(self) -> &'static str {
        match self {
            RxPath::Lean => "lean",
            RxPath::Webrtc => "webrtc",
        }
    }
}

/// A subscribe connection on either receive path. Dropping it closes the connection.
pub enum Receiver {
    Webrtc(Peer),
    Lean(LeanPeer),
}

impl Receiver {
    /// A receive-only connection on `bind_ip` (any port) offering only `srtp`, counting what it
    /// receives into `sink`.
    pub async fn new(path: RxPath, bind_ip: IpAddr, srtp: Srtp, sink: Sink) -> Result<Receiver> {
        Ok(match path {
            RxPath::Webrtc => Receiver::Webrtc(Peer::new(bind_ip, srtp, Some(sink)).await?),
            RxPath::Lean => Receiver::Lean(LeanPeer::new(bind_ip, srtp, Some(sink))?),
        })
    }

    /// Applies a remote offer and returns the answer. On the lean path the answer carries the
    /// host candidate and the end of candidates; on the webrtc path they may come later (see
    /// `janus::gathered_sdp`).
    pub async fn answer(&self, offer_sdp: String) -> Result<String> {
        match self {
            Receiver::Webrtc(peer) => peer.answer(offer_sdp).await,
            Receiver::Lean(lean) => lean.answer(offer_sdp).await,
        }
    }

    /// ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        match self {
            Receiver::Webrtc(peer) => peer.is_connected(),
            Receiver::Lean(lean) => lean.is_connected(),
        }
    }
}

/// A send-only connection on either path: it offers an Opus and a VP8 track and sends the
/// synthetic media on them. Dropping it closes the connection.
pub enum Publisher {
    /// The connection, and its tracks until sending starts.
    Webrtc(Peer, Option<Tracks>),
    Lean(LeanPeer),
}

impl Publisher {
    /// A connection on `bind_ip` (any port) offering only `srtp`.
    pub async fn new(path: RxPath, bind_ip: IpAddr, srtp: Srtp) -> Result<Publisher> {
        Ok(match path {
            RxPath::Webrtc => Publisher::Webrtc(Peer::new(bind_ip, srtp, None).await?, None),
            RxPath::Lean => Publisher::Lean(LeanPeer::new(bind_ip, srtp, None)?),
        })
    }

    /// Adds the tracks (streams named after `name`) and returns the offer. On the lean path it
    /// carries the host candidate and the end of candidates; on the webrtc path they may come
    /// later (see `janus::gathered_sdp`).
    pub async fn offer(&mut self, name: &str) -> Result<String> {
        match self {
            Publisher::Webrtc(peer, tracks) => {
                let (t, offer) = peer.offer_tracks(name).await?;
                *tracks = Some(t);
                Ok(offer)
            }
            Publisher::Lean(lean) => {
                lean.request(|reply| Request::Offer(name.to_owned(), reply))
                    .await
            }
        }
    }

    pub async fn apply_answer(&self, answer_sdp: String) -> Result<()> {
        match self {
            Publisher::Webrtc(peer, _) => peer.apply_answer(answer_sdp).await,
            Publisher::Lean(lean) => lean
                .request(|reply| Request::ApplyAnswer(answer_sdp, reply))
                .await
                .map(drop),
        }
    }

    /// Sends `shape`'s media, as sender `sender`, until the connection is dropped.
    pub fn start_sending(&mut self, sender: u32, shape: MediaShape, metrics: Arc<Metrics>) {
        match self {
            Publisher::Webrtc(peer, tracks) => {
                if let Some(tracks) = tracks.take() {
                    peer.start_sending(tracks, sender, shape, metrics);
                }
            }
            Publisher::Lean(lean) => {
                let _ = lean
                    .requests
                    .send(Request::StartSending(Box::new(LeanSender::new(
                        sender, shape, metrics,
                    ))));
            }
        }
    }

    /// ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        match self {
            Publisher::Webrtc(peer, _) => peer.is_connected(),
            Publisher::Lean(lean) => lean.is_connected(),
        }
    }

    /// The webrtc-rs connection, on that path.
    pub fn webrtc(&self) -> Option<&Peer> {
        match self {
            Publisher::Webrtc(peer, _) => Some(peer),
            Publisher::Lean(_) => None,
        }
    }
}

type Reply = oneshot::Sender<Result<String>>;

/// What the member's signalling asks of a lean connection's task.
enum Request {
    /// Apply a remote offer and reply with the answer.
    Answer(String, Reply),
    /// Add an Opus and a VP8 track (streams named after the given name) and reply with the
    /// offer.
    Offer(String, Reply),
    /// Apply the remote answer to our offer (the reply carries nothing).
    ApplyAnswer(String, Reply),
    StartSending(Box<LeanSender>),
}

/// A lean connection. Its task owns the connection and the socket; dropping this ends the
/// task, which closes the connection (DTLS close_notify) first.
pub struct LeanPeer {
    requests: mpsc::UnboundedSender<Request>,
    connected: Arc<AtomicBool>,
}

/// 4 MiB asked for each member's receive buffer, as the server does (the kernel caps it at
/// net.core.rmem_max).
const SOCKET_BUFFER: usize = 4 << 20;
/// The largest datagram taken.
const MAX_DATAGRAM: usize = 2048;
/// Datagrams are received into blocks of this size and split off them (one allocation per block,
/// reused once rtc has dropped every datagram of it).
const RECV_BLOCK: usize = 64 * 1024;
/// Datagrams handled per wake-up before the task yields to the timers and the offers.
const RECV_BATCH: usize = 64;
/// How long the task sleeps when rtc has no timer.
const IDLE: Duration = Duration::from_secs(1);

impl LeanPeer {
    /// A connection on a new UDP socket bound to `bind_ip` (any port), counting the RTP it
    /// receives into `sink` if given. Needs a tokio runtime.
    pub fn new(bind_ip: IpAddr, srtp: Srtp, sink: Option<Sink>) -> Result<LeanPeer> {
        let (socket, out) = bind(SocketAddr::new(bind_ip, 0)).context("member socket")?;
        let local = socket.local_addr().context("member socket")?;
        let (media_engine, registry, setting_engine) = peer::engines(srtp)?;
        let pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media_engine)
            .with_setting_engine(setting_engine)
            .with_interceptor_registry(registry)
            .build(Instant::now())
            .context("peer connection")?;
        let connected = Arc::new(AtomicBool::new(false));
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let member = Member {
            pc,
            socket,
            out,
            local,
            counter: sink.map(RxCounter::new),
            sender: None,
            ssrcs: None,
            connected: Arc::clone(&connected),
            candidates_added: false,
            next_timeout: None,
            block: BytesMut::with_capacity(RECV_BLOCK),
            cmsg: nix::cmsg_space!(nix::sys::time::TimeSpec),
        };
        tokio::spawn(member.run(requests_rx));
        Ok(LeanPeer {
            requests,
            connected,
        })
    }

    /// Applies a remote offer and returns the answer (with the host candidate).
    pub async fn answer(&self, offer_sdp: String) -> Result<String> {
        self.request(|reply| Request::Answer(offer_sdp, reply))
            .await
    }

    async fn request(&self, request: impl FnOnce(Reply) -> Request) -> Result<String> {
        let (reply, replied) = oneshot::channel();
        self.requests
            .send(request(reply))
            .map_err(|_| anyhow!("the connection's task is gone"))?;
        replied
            .await
            .map_err(|_| anyhow!("the connection's task is gone"))?
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Relaxed)
    }
}

/// A socket for one member: 4 MiB of receive buffer, kernel receive timestamps, non-blocking;
/// and a second handle on it that sends. Sends go straight to the kernel: tokio's
/// `try_send_to` refuses until its reactor has seen the socket writable, and a fresh socket's
/// first datagram (the first connectivity check) would be lost.
fn bind(addr: SocketAddr) -> io::Result<(UdpSocket, std::net::UdpSocket)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer still works.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    setsockopt(&socket, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let socket: std::net::UdpSocket = socket.into();
    let out = socket.try_clone()?;
    Ok((UdpSocket::from_std(socket)?, out))
}

/// One datagram: its length, sender and kernel receive time (ns since the Unix epoch).
fn recv_stamped(
    fd: RawFd,
    buf: &mut [u8],
    cmsg: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<u64>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(cmsg), MsgFlags::empty())
        .map_err(io::Error::from)?;
    let from = msg
        .address
        .as_ref()
        .and_then(socket_addr)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
    let mut stamp = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmTimestampns(ts) = c {
                let (s, ns) = (ts.tv_sec(), ts.tv_nsec());
                if s >= 0 && ns >= 0 {
                    stamp = Some(s as u64 * 1_000_000_000 + ns as u64);
                }
            }
        }
    }
    Ok((msg.bytes, from, stamp))
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// µs since the Unix epoch (CLOCK_REALTIME, the clock of SO_TIMESTAMPNS).
fn realtime_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The kernel receive time `stamp_ns` (CLOCK_REALTIME) on the generator's clock
/// ([`payload::now_us`], monotonic), given `offset_us` = realtime − generator clock, read
/// together.
fn on_generator_clock(stamp_ns: u64, offset_us: u64) -> u64 {
    (stamp_ns / 1_000).saturating_sub(offset_us)
}

/// The media a lean publish connection sends: its clock, whether a keyframe was asked for,
/// and the next send tick.
struct LeanSender {
    media: Synthetic,
    metrics: Arc<Metrics>,
    keyframe_wanted: bool,
    started: Instant,
    next_tick: Instant,
    body: Vec<u8>,
}

/// The send loop's tick, the pacer's interval.
const SEND_TICK: Duration = Duration::from_millis(payload::PACE_INTERVAL_MS);

impl LeanSender {
    fn new(sender: u32, shape: MediaShape, metrics: Arc<Metrics>) -> LeanSender {
        let now = Instant::now();
        LeanSender {
            media: Synthetic::new(sender, shape),
            metrics,
            // A new viewer needs a keyframe: the first frame is one.
            keyframe_wanted: true,
            started: now,
            next_tick: now,
            body: Vec::with_capacity(shape.packet_bytes),
        }
    }
}

/// A member's connection, socket and counters, owned by its task.
struct Member {
    pc: RTCPeerConnection,
    socket: UdpSocket,
    /// The same socket, for sending.
    out: std::net::UdpSocket,
    local: SocketAddr,
    /// Where received RTP is counted (subscribe connections).
    counter: Option<RxCounter>,
    /// What is sent (publish connections, once sending started), and the SSRCs offered.
    sender: Option<Box<LeanSender>>,
    ssrcs: Option<(u32, u32)>,
    connected: Arc<AtomicBool>,
    candidates_added: bool,
    next_timeout: Option<Instant>,
    /// Received datagrams are split off this block.
    block: BytesMut,
    /// Room for the timestamp's control message.
    cmsg: Vec<u8>,
}

impl Member {
    async fn run(mut self, mut requests: mpsc::UnboundedReceiver<Request>) {
        loop {
            let now = Instant::now();
            if self.next_timeout.is_some_and(|t| t <= now) {
                // A failing timer (a DTLS retransmission, say) is rtc's business: the
                // connection state tells if the connection is lost.
                let _ = self.pc.handle_timeout(now);
                self.drive(None);
            }
            if self.sender.as_ref().is_some_and(|s| s.next_tick <= now) {
                self.send_media(now);
            }
            // A deadline rtc leaves in the past is handled again a millisecond later, not in a
            // spin.
            let mut wake = self
                .next_timeout
                .unwrap_or(now + IDLE)
                .max(now + Duration::from_millis(1));
            if let Some(sender) = &self.sender {
                wake = wake.min(sender.next_tick);
            }
            tokio::select! {
                biased;
                request = requests.recv() => match request {
                    Some(request) => {
                        self.handle(request);
                        self.drive(None);
                    }
                    None => break,
                },
                ready = self.socket.readable() => {
                    if ready.is_ok() {
                        self.read();
                    }
                }
                () = tokio::time::sleep_until(wake.into()) => {}
            }
        }
        let _ = self.pc.close();
        self.send_all();
    }

    fn handle(&mut self, request: Request) {
        match request {
            Request::Answer(sdp, reply) => {
                let _ = reply.send(self.answer(sdp));
            }
            Request::Offer(name, reply) => {
                let _ = reply.send(self.offer(&name));
            }
            Request::ApplyAnswer(sdp, reply) => {
                let applied = RTCSessionDescription::answer(sdp)
                    .and_then(|answer| self.pc.set_remote_description(Instant::now(), answer));
                let _ = reply.send(applied.map(|()| String::new()).map_err(Into::into));
            }
            Request::StartSending(sender) => self.sender = Some(sender),
        }
    }

    fn answer(&mut self, sdp: String) -> Result<String> {
        let now = Instant::now();
        self.pc
            .set_remote_description(now, RTCSessionDescription::offer(sdp)?)?;
        let answer = self.pc.create_answer(None)?;
        self.pc.set_local_description(now, answer)?;
        self.add_host_candidate()?;
        self.local_sdp()
    }

    /// Adds the Opus and VP8 tracks (random SSRCs) and returns the offer.
    fn offer(&mut self, name: &str) -> Result<String> {
        let mut ssrcs = [0u32; 2];
        for (i, (kind, codec)) in [
            (RtpCodecKind::Audio, peer::opus()),
            (RtpCodecKind::Video, peer::vp8()),
        ]
        .into_iter()
        .enumerate()
        {
            ssrcs[i] = rand::random::<u32>() | 1;
            self.pc
                .add_track(peer::local_track(name, kind, codec, ssrcs[i]))
                .context("adding a track")?;
        }
        self.ssrcs = Some((ssrcs[0], ssrcs[1]));
        let offer = self.pc.create_offer(None)?;
        self.pc.set_local_description(Instant::now(), offer)?;
        self.add_host_candidate()?;
        self.local_sdp()
    }

    fn local_sdp(&self) -> Result<String> {
        Ok(self
            .pc
            .local_description()
            .context("no local description")?
            .sdp)
    }

    /// Sends the packets due by `now`, each stamped, encrypted and handed to the kernel before
    /// the next is made.
    fn send_media(&mut self, now: Instant) {
        let (Some(sender), Some((audio_ssrc, video_ssrc))) = (self.sender.as_mut(), self.ssrcs)
        else {
            return;
        };
        sender.next_tick = (sender.next_tick + SEND_TICK).max(now);
        let elapsed_ms = now.duration_since(sender.started).as_millis() as u64;
        loop {
            sender.body.clear();
            let Some(due) = sender.media.next(
                elapsed_ms,
                || std::mem::take(&mut sender.keyframe_wanted),
                &mut sender.body,
            ) else {
                break;
            };
            let len = sender.body.len() + payload::RTP_HEADER;
            let ssrc = if due.video { video_ssrc } else { audio_ssrc };
            let packet = peer::rtp_packet(&due, ssrc, &sender.body);
            let written = self.pc.handle_write(TaggedRTCMessage {
                now: Instant::now(),
                // rtc finds the sender by the SSRC; an empty track id allocates nothing.
                message: RTCMessage::RtpPacket(String::new(), packet),
            });
            while let Some(datagram) = self.pc.poll_write() {
                let _ = self
                    .out
                    .send_to(&datagram.message, datagram.transport.peer_addr);
            }
            if written.is_ok() {
                sender.metrics.sent_packets.fetch_add(1, Relaxed);
                sender.metrics.sent_bytes.fetch_add(len as u64, Relaxed);
            }
        }
        self.next_timeout = self.pc.poll_timeout();
    }

    /// Gives the connection its one host candidate (the socket's address) and the end of
    /// candidates, once.
    fn add_host_candidate(&mut self) -> Result<()> {
        if !self.candidates_added {
            self.candidates_added = true;
            let candidate = CandidateHostConfig {
                base_config: CandidateConfig {
                    network: "udp".to_owned(),
                    address: self.local.ip().to_string(),
                    port: self.local.port(),
                    component: 1,
                    ..Default::default()
                },
                ..Default::default()
            }
            .new_candidate_host()?;
            self.pc
                .add_local_candidate(RTCIceCandidate::from(&candidate).to_json()?)?;
            self.pc
                .add_local_candidate(RTCIceCandidateInit::default())?;
        }
        Ok(())
    }

    /// Reads what the socket holds (up to [`RECV_BATCH`] datagrams), each handed to rtc and
    /// drained before the next is read, so the RTP that comes out is that datagram's.
    fn read(&mut self) {
        // Realtime − generator clock, read together: converts the kernel's stamps.
        let offset_us = realtime_us().saturating_sub(payload::now_us());
        for _ in 0..RECV_BATCH {
            if self.block.capacity() < MAX_DATAGRAM {
                self.block.reserve(RECV_BLOCK);
            }
            self.block.resize(MAX_DATAGRAM, 0);
            let Member {
                socket,
                block,
                cmsg,
                ..
            } = self;
            let fd = socket.as_raw_fd();
            let got = socket.try_io(Interest::READABLE, || {
                recv_stamped(fd, &mut block[..], &mut cmsg[..])
            });
            let (len, from, stamp_ns) = match got {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // ICMP errors surface here: they concern one datagram.
                Err(_) => continue,
            };
            self.block.truncate(len);
            let datagram = self.block.split();
            let arrival_us =
                stamp_ns.map_or_else(payload::now_us, |ns| on_generator_clock(ns, offset_us));
            let message = TaggedBytesMut {
                now: Instant::now(),
                transport: TransportContext {
                    local_addr: self.local,
                    peer_addr: from,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: datagram,
            };
            let _ = self.pc.handle_read(message);
            self.drive(Some(arrival_us));
        }
        self.block.clear();
    }

    /// Drains the connection after it was fed: events, received RTP (counted as arrived at
    /// `arrival_us`, or now if none is given), datagrams to send; then its next timer.
    fn drive(&mut self, arrival_us: Option<u64>) {
        loop {
            if let Some(event) = self.pc.poll_event() {
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                    self.connected
                        .store(state == RTCPeerConnectionState::Connected, Relaxed);
                }
                continue;
            }
            let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() else {
                break;
            };
            match message {
                RTCMessage::RtpPacket(_, packet) => {
                    if let Some(counter) = &mut self.counter {
                        let at = arrival_us.unwrap_or_else(payload::now_us);
                        counter.packet(
                            packet.header.ssrc,
                            packet.header.sequence_number,
                            &packet.payload,
                            at,
                        );
                    }
                }
                RTCMessage::RtcpPacket(_, packets) => {
                    if let Some(sender) = &mut self.sender
                        && peer::is_keyframe_request(&packets)
                    {
                        sender.keyframe_wanted = true;
                    }
                }
                _ => {}
            }
        }
        self.send_all();
        self.next_timeout = self.pc.poll_timeout();
    }

    /// Sends what the connection queued (ICE, DTLS, RTCP); a datagram the socket refuses is
    /// dropped, as the network would.
    fn send_all(&mut self) {
        while let Some(datagram) = self.pc.poll_write() {
            let _ = self
                .out
                .send_to(&datagram.message, datagram.transport.peer_addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_stamps_convert_to_the_generator_clock() {
        // Realtime 1_000_000_000 µs when the generator clock read 5_000 µs.
        let offset = 1_000_000_000 - 5_000;
        assert_eq!(on_generator_clock(1_000_000_000_000, offset), 5_000);
        assert_eq!(on_generator_clock(999_999_000_000, offset), 4_000);
        // A stamp before the generator's epoch saturates.
        assert_eq!(on_generator_clock(1_000, offset), 0);
    }

    #[tokio::test]
    async fn a_member_socket_stamps_what_it_receives() {
        let (socket, _) = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let to = socket.local_addr().expect("addr");
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").expect("sender");
        let before = realtime_us();
        sender.send_to(b"hello", to).expect("send");
        socket.readable().await.expect("readable");
        let mut buf = [0u8; 64];
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        let (len, from, stamp) =
            recv_stamped(socket.as_raw_fd(), &mut buf, &mut cmsg).expect("recv");
        assert_eq!(&buf[..len], b"hello");
        assert_eq!(from, sender.local_addr().expect("addr"));
        let stamp_us = stamp.expect("a kernel timestamp") / 1_000;
        assert!(stamp_us + 1_000 >= before && stamp_us <= realtime_us() + 1_000);
    }
}
