//! The MCU side of scenario S3: plain RTP into the server, WebRTC out to the members.
//!
//! - [`Feeder`] sends synthetic stamped RTP ([`Synthetic`]: the same shapes and stamps as the
//!   WebRTC publishers, so receivers measure it unchanged), any number of streams from one
//!   task, each stream from its own pair of UDP sockets (audio, video) to a pair of addresses.
//!   Janus's Streaming plugin is fed with it directly (`crate::janus_streaming`).
//! - [`Mcu`] is a minimal SIP UAS over UDP that confgate calls once per member of a conference
//!   bound to it: INVITE → 100 Trying, then 200 OK with an SDP answer that picks the offer's
//!   Opus and VP8 payload types and names the call's own RTP ports; ACK starts the call's
//!   media to the offer's address and ports (from those ports, for confgate's symmetric RTP);
//!   BYE → 200 and the media stops; INFO → 200 (a `picture_fast_update` makes the next frame
//!   a keyframe, as does an RTCP PLI or FIR on the call's video port); OPTIONS, UPDATE and
//!   CANCEL → 200; a re-INVITE gets the same answer again. The 200 to an INVITE is sent again
//!   (500 ms, doubling to 4 s) until its ACK comes, for 32 s.
//!
//! Parsed: the start line, the headers needed to answer (Via, From, To, Call-ID, CSeq,
//! Record-Route, Content-Length; compact forms too), and in the SDP offer the connection
//! address, the m-lines' ports and the `a=rtpmap` lines. Not done: authentication, TCP, SIP
//! requests of its own (the MCU never hangs up), a re-INVITE that moves the media.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::payload::{self, MediaShape, Synthetic};

/// Where one stream's RTP goes, and with which payload types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedTarget {
    pub audio: SocketAddr,
    pub video: SocketAddr,
    pub audio_pt: u8,
    pub video_pt: u8,
}

/// One stream the feeder sends.
struct Feed {
    id: u64,
    media: Synthetic,
    audio_socket: Arc<UdpSocket>,
    video_socket: Arc<UdpSocket>,
    target: FeedTarget,
    audio_ssrc: u32,
    video_ssrc: u32,
    keyframe_wanted: Arc<AtomicBool>,
    started: Instant,
}

enum FeedCommand {
    Add(Box<Feed>),
    Remove(u64),
}

/// Sends synthetic RTP streams, all from one task that wakes every 5 ms; a send that would
/// block is counted in [`Metrics::send_failed`] (its packet is then lost before the server).
/// Dropping the last clone stops it.
#[derive(Clone)]
pub struct Feeder {
    commands: mpsc::UnboundedSender<FeedCommand>,
    _task: Arc<AbortOnDrop>,
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Feeder {
    pub fn start(shape: MediaShape, metrics: Arc<Metrics>) -> Feeder {
        let (commands, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(feed_loop(rx, shape, metrics));
        Feeder {
            commands,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }

    /// Starts stream `id` as sender `sender` (its stamps) from `sockets` (audio, video) to
    /// `target`; its next frame is a keyframe whenever `keyframe_wanted` is set (it is then
    /// cleared). The first frame is a keyframe.
    pub fn add(
        &self,
        id: u64,
        sender: u32,
        shape: MediaShape,
        sockets: (Arc<UdpSocket>, Arc<UdpSocket>),
        target: FeedTarget,
        keyframe_wanted: Arc<AtomicBool>,
    ) {
        let feed = Feed {
            id,
            media: Synthetic::new(sender, shape),
            audio_socket: sockets.0,
            video_socket: sockets.1,
            target,
            audio_ssrc: rand::random::<u32>() | 1,
            video_ssrc: rand::random::<u32>() | 1,
            keyframe_wanted,
            started: Instant::now(),
        };
        let _ = self.commands.send(FeedCommand::Add(Box::new(feed)));
    }

    pub fn remove(&self, id: u64) {
        let _ = self.commands.send(FeedCommand::Remove(id));
    }
}

/// Writes an RTP fixed header into `buf[..12]`.
fn write_header(buf: &mut [u8], pt: u8, marker: bool, seq: u16, timestamp: u32, ssrc: u32) {
    buf[0] = 0x80;
    buf[1] = (u8::from(marker) << 7) | (pt & 0x7f);
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&timestamp.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

async fn feed_loop(
    mut commands: mpsc::UnboundedReceiver<FeedCommand>,
    shape: MediaShape,
    metrics: Arc<Metrics>,
) {
    let mut feeds: Vec<Feed> = Vec::new();
    let mut buf = Vec::with_capacity(shape.packet_bytes.max(payload::RTP_HEADER + 64));
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        loop {
            match commands.try_recv() {
                Ok(FeedCommand::Add(feed)) => feeds.push(*feed),
                Ok(FeedCommand::Remove(id)) => feeds.retain(|f| f.id != id),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        }
        let (mut sent, mut bytes, mut failed) = (0u64, 0u64, 0u64);
        for feed in &mut feeds {
            let elapsed_ms = feed.started.elapsed().as_millis() as u64;
            loop {
                buf.clear();
                buf.resize(payload::RTP_HEADER, 0);
                let wanted = &feed.keyframe_wanted;
                let Some(due) =
                    feed.media
                        .next(elapsed_ms, || wanted.swap(false, Relaxed), &mut buf)
                else {
                    break;
                };
                let (socket, to, pt, ssrc) = if due.video {
                    (
                        &feed.video_socket,
                        feed.target.video,
                        feed.target.video_pt,
                        feed.video_ssrc,
                    )
                } else {
                    (
                        &feed.audio_socket,
                        feed.target.audio,
                        feed.target.audio_pt,
                        feed.audio_ssrc,
                    )
                };
                write_header(
                    &mut buf,
                    pt,
                    due.marker,
                    due.sequence_number,
                    due.timestamp,
                    ssrc,
                );
                match socket.try_send_to(&buf, to) {
                    Ok(_) => {
                        sent += 1;
                        bytes += buf.len() as u64;
                    }
                    Err(_) => failed += 1,
                }
            }
        }
        if sent > 0 {
            metrics.sent_packets.fetch_add(sent, Relaxed);
            metrics.sent_bytes.fetch_add(bytes, Relaxed);
        }
        if failed > 0 {
            metrics.send_failed.fetch_add(failed, Relaxed);
        }
    }
}

/// Whether a (compound) RTCP packet holds a PLI or a FIR.
pub fn rtcp_asks_keyframe(mut d: &[u8]) -> bool {
    while d.len() >= 4 {
        if d[0] >> 6 != 2 {
            return false;
        }
        let (fmt, pt) = (d[0] & 0x1f, d[1]);
        if pt == 206 && (fmt == 1 || fmt == 4) {
            return true;
        }
        let len = (usize::from(u16::from_be_bytes([d[2], d[3]])) + 1) * 4;
        if len > d.len() {
            return false;
        }
        d = &d[len..];
    }
    false
}

// --- SIP -------------------------------------------------------------------------------------

/// A SIP message, as far as the UAS reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SipMessage {
    /// The method of a request; `None` for a response.
    method: Option<String>,
    /// (canonical name, value), in order.
    headers: Vec<(String, String)>,
    body: String,
}

/// The full name of a compact header form, else the name as given.
fn canonical(name: &str) -> String {
    let full = match name.to_ascii_lowercase().as_str() {
        "v" | "via" => "Via",
        "f" | "from" => "From",
        "t" | "to" => "To",
        "i" | "call-id" => "Call-ID",
        "m" | "contact" => "Contact",
        "l" | "content-length" => "Content-Length",
        "c" | "content-type" => "Content-Type",
        "cseq" => "CSeq",
        "record-route" => "Record-Route",
        _ => return name.to_owned(),
    };
    full.to_owned()
}

impl SipMessage {
    fn parse(bytes: &[u8]) -> Option<SipMessage> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (head, body) = match text.find("\r\n\r\n") {
            Some(at) => (&text[..at], &text[at + 4..]),
            None => (text.trim_end(), ""),
        };
        let mut lines = head.split("\r\n");
        let start = lines.next()?.trim();
        let method = if start.starts_with("SIP/2.0") {
            None
        } else {
            let mut parts = start.split_whitespace();
            let method = parts.next()?.to_owned();
            parts.next()?;
            if parts.next()? != "SIP/2.0" {
                return None;
            }
            Some(method)
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // A folded line continues the previous header.
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            let (name, value) = line.split_once(':')?;
            headers.push((canonical(name.trim()), value.trim().to_owned()));
        }
        let mut message = SipMessage {
            method,
            headers,
            body: String::new(),
        };
        let len = message
            .header("Content-Length")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(body.len());
        message.body = body.get(..len.min(body.len()))?.to_owned();
        Some(message)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response to `request`: its Via, Record-Route, From, To (with `to_tag` added when it has
/// none), Call-ID and CSeq, then `extra` header lines and `body`.
fn response(
    request: &SipMessage,
    status: &str,
    to_tag: Option<&str>,
    extra: &[String],
    body: Option<(&str, &str)>,
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for via in request.all("Via") {
        let _ = write!(out, "Via: {via}\r\n");
    }
    for rr in request.all("Record-Route") {
        let _ = write!(out, "Record-Route: {rr}\r\n");
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        let Some(value) = request.header(name) else {
            continue;
        };
        let _ = write!(out, "{name}: {value}");
        if name == "To"
            && !value.contains(";tag=")
            && let Some(tag) = to_tag
        {
            let _ = write!(out, ";tag={tag}");
        }
        out.push_str("\r\n");
    }
    for line in extra {
        let _ = write!(out, "{line}\r\n");
    }
    match body {
        Some((content_type, body)) => {
            let _ = write!(
                out,
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
        None => out.push_str("Content-Length: 0\r\n\r\n"),
    }
    out.into_bytes()
}

/// One m-line of an SDP offer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OfferMedia {
    kind: String,
    port: u16,
    proto: String,
    formats: Vec<String>,
    /// Media-level `c=`.
    ip: Option<IpAddr>,
    /// (payload type, encoding name/clock rate[/channels]).
    rtpmaps: Vec<(u8, String)>,
}

impl OfferMedia {
    /// The payload type whose rtpmap names `codec` at `clock` (case-insensitive).
    fn payload_type(&self, codec: &str, clock: u32) -> Option<u8> {
        let want = format!("{}/{clock}", codec.to_ascii_lowercase());
        self.rtpmaps
            .iter()
            .find(|(_, map)| map.to_ascii_lowercase().starts_with(&want))
            .map(|(pt, _)| *pt)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Offer {
    ip: Option<IpAddr>,
    media: Vec<OfferMedia>,
}

fn connection_ip(value: &str) -> Option<IpAddr> {
    // c=IN IP4 10.77.0.1
    value
        .split_whitespace()
        .nth(2)?
        .split('/')
        .next()?
        .parse()
        .ok()
}

fn parse_offer(sdp: &str) -> Option<Offer> {
    let mut offer = Offer {
        ip: None,
        media: Vec::new(),
    };
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split_whitespace();
            offer.media.push(OfferMedia {
                kind: parts.next()?.to_owned(),
                port: parts.next()?.split('/').next()?.parse().ok()?,
                proto: parts.next()?.to_owned(),
                formats: parts.map(str::to_owned).collect(),
                ip: None,
                rtpmaps: Vec::new(),
            });
        } else if let Some(c) = line.strip_prefix("c=") {
            let ip = connection_ip(c);
            match offer.media.last_mut() {
                Some(m) => m.ip = ip,
                None => offer.ip = ip,
            }
        } else if let Some(map) = line.strip_prefix("a=rtpmap:")
            && let Some(m) = offer.media.last_mut()
            && let Some((pt, name)) = map.split_once(' ')
            && let Ok(pt) = pt.parse()
        {
            m.rtpmaps.push((pt, name.trim().to_owned()));
        }
    }
    Some(offer)
}

/// What the answer settles: where the MCU sends (from the offer) and the payload types.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settled {
    target: FeedTarget,
    answer: String,
}

/// The SDP answer to `offer`: the first audio m-line with Opus on `ports.0`, the first video
/// m-line with VP8 on `ports.1` (each with the offer's payload type), every other m-line
/// refused (port 0). Fails when the offer has no Opus audio or no VP8 video, or no address.
fn answer(offer: &Offer, local_ip: IpAddr, ports: (u16, u16), session: u64) -> Result<Settled> {
    let mut sdp = format!(
        "v=0\r\no=confgate-loadgen {session} 1 IN IP4 {local_ip}\r\ns=confgate-loadgen MCU\r\nc=IN IP4 {local_ip}\r\nt=0 0\r\n"
    );
    let (mut audio, mut video) = (None, None);
    for m in &offer.media {
        let chosen = match m.kind.as_str() {
            "audio" if audio.is_none() => m.payload_type("opus", 48_000).map(|pt| (pt, true)),
            "video" if video.is_none() => m.payload_type("VP8", 90_000).map(|pt| (pt, false)),
            _ => None,
        };
        let Some((pt, is_audio)) = chosen.filter(|_| m.port != 0) else {
            let first = m.formats.first().map_or("0", String::as_str);
            let _ = write!(sdp, "m={} 0 {} {first}\r\n", m.kind, m.proto);
            continue;
        };
        let remote_ip =
            m.ip.or(offer.ip)
                .context("the offer has no connection address")?;
        let remote = SocketAddr::new(remote_ip, m.port);
        if is_audio {
            let _ = write!(
                sdp,
                "m=audio {} RTP/AVP {pt}\r\na=rtpmap:{pt} opus/48000/2\r\na=sendrecv\r\na=rtcp-mux\r\n",
                ports.0
            );
            audio = Some((remote, pt));
        } else {
            let _ = write!(
                sdp,
                "m=video {} RTP/AVP {pt}\r\na=rtpmap:{pt} VP8/90000\r\na=rtcp-fb:{pt} nack pli\r\na=rtcp-fb:{pt} ccm fir\r\na=sendrecv\r\na=rtcp-mux\r\n",
                ports.1
            );
            video = Some((remote, pt));
        }
    }
    let (Some((audio, audio_pt)), Some((video, video_pt))) = (audio, video) else {
        bail!("the offer has no Opus audio or no VP8 video");
    };
    Ok(Settled {
        target: FeedTarget {
            audio,
            video,
            audio_pt,
            video_pt,
        },
        answer: sdp,
    })
}

/// What the UAS counts.
#[derive(Debug, Default)]
pub struct McuCounters {
    /// Calls answered (200 OK to an INVITE).
    pub answered: AtomicU64,
    /// Calls whose ACK came (their media flows).
    pub acked: AtomicU64,
    /// Calls ended by a BYE.
    pub ended: AtomicU64,
    /// INVITEs refused (no Opus or VP8, unreadable SDP).
    pub refused: AtomicU64,
    /// Keyframe requests: SIP INFO picture_fast_update, and RTCP PLI/FIR.
    pub info_keyframes: AtomicU64,
    pub rtcp_keyframes: AtomicU64,
}

/// A call in progress.
struct CallState {
    to_tag: String,
    /// The 200 OK to the INVITE, sent again for a retransmitted INVITE and until the ACK.
    ok: Arc<Vec<u8>>,
    acked: Arc<AtomicBool>,
    feed: u64,
    sender: u32,
    sockets: (Arc<UdpSocket>, Arc<UdpSocket>),
    target: FeedTarget,
    keyframe_wanted: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    feeding: bool,
}

impl Drop for CallState {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The synthetic MCU: a SIP UAS on UDP, each call fed by a [`Feeder`]. Dropping it stops it
/// (calls are not hung up).
pub struct Mcu {
    local: SocketAddr,
    pub counters: Arc<McuCounters>,
    task: JoinHandle<()>,
}

impl Drop for Mcu {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Mcu {
    /// Listens for SIP on `listen` (a specific address: it goes into Contact and SDP, and the
    /// RTP sockets are bound on it); each answered call sends `shape`'s media, counted into
    /// `metrics`, as sender `sender_base + n` for its n-th call.
    pub async fn start(
        listen: SocketAddr,
        shape: MediaShape,
        metrics: Arc<Metrics>,
        sender_base: u32,
    ) -> Result<Mcu> {
        if listen.ip().is_unspecified() {
            bail!(
                "the MCU needs a specific address to listen on (it names it in its SDP), not {listen}"
            );
        }
        let socket = Arc::new(
            UdpSocket::bind(listen)
                .await
                .with_context(|| format!("binding the MCU's SIP socket on {listen}"))?,
        );
        let local = socket.local_addr()?;
        let counters = Arc::new(McuCounters::default());
        let uas = Uas {
            socket,
            local,
            shape,
            feeder: Feeder::start(shape, metrics),
            counters: Arc::clone(&counters),
            calls: HashMap::new(),
            next_call: 0,
            sender_base,
        };
        let task = tokio::spawn(uas.run());
        Ok(Mcu {
            local,
            counters,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

struct Uas {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    shape: MediaShape,
    feeder: Feeder,
    counters: Arc<McuCounters>,
    calls: HashMap<String, CallState>,
    next_call: u64,
    sender_base: u32,
}

const ALLOW: &str = "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";

impl Uas {
    async fn run(mut self) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let (n, from) = match self.socket.recv_from(&mut buf).await {
                Ok(r) => r,
                // ICMP errors surface here: not fatal.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let bytes = &buf[..n];
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue; // keep-alive
            }
            let Some(message) = SipMessage::parse(bytes) else {
                eprintln!("MCU: unreadable SIP datagram from {from} ({n} bytes)");
                continue;
            };
            let Some(method) = message.method.clone() else {
                continue; // a response: the UAS sends no requests
            };
            self.request(&method, &message, from).await;
        }
    }

    async fn send(&self, bytes: &[u8], to: SocketAddr) {
        if let Err(e) = self.socket.send_to(bytes, to).await {
            eprintln!("MCU: sending to {to}: {e}");
        }
    }

    async fn request(&mut self, method: &str, m: &SipMessage, from: SocketAddr) {
        let call_id = m.header("Call-ID").unwrap_or_default().to_owned();
        match method {
            "INVITE" => self.invite(m, &call_id, from).await,
            "ACK" => {
                if let Some(call) = self.calls.get_mut(&call_id) {
                    call.acked.store(true, Relaxed);
                    if !call.feeding {
                        call.feeding = true;
                        self.counters.acked.fetch_add(1, Relaxed);
                        self.feeder.add(
                            call.feed,
                            call.sender,
                            self.shape,
                            call.sockets.clone(),
                            call.target,
                            Arc::clone(&call.keyframe_wanted),
                        );
                    }
                }
            }
            "BYE" => {
                self.answer_in_dialog(m, &call_id, from).await;
                if let Some(call) = self.calls.remove(&call_id) {
                    self.feeder.remove(call.feed);
                    self.counters.ended.fetch_add(1, Relaxed);
                }
            }
            "INFO" => {
                if let Some(call) = self.calls.get(&call_id)
                    && m.body.contains("picture_fast_update")
                {
                    call.keyframe_wanted.store(true, Relaxed);
                    self.counters.info_keyframes.fetch_add(1, Relaxed);
                }
                self.answer_in_dialog(m, &call_id, from).await;
            }
            "OPTIONS" | "UPDATE" | "CANCEL" | "PRACK" | "NOTIFY" => {
                let tag = self.calls.get(&call_id).map(|c| c.to_tag.clone());
                let extra = [
                    ALLOW.to_owned(),
                    "Accept: application/sdp, application/media_control+xml".to_owned(),
                ];
                self.send(
                    &response(m, "200 OK", tag.as_deref().or(Some("mcu")), &extra, None),
                    from,
                )
                .await;
            }
            _ => {
                self.send(
                    &response(
                        m,
                        "501 Not Implemented",
                        Some("mcu"),
                        &[ALLOW.to_owned()],
                        None,
                    ),
                    from,
                )
                .await;
            }
        }
    }

    /// 200 OK to a request in the dialog of call `call_id`; 481 if there is no such call.
    async fn answer_in_dialog(&self, m: &SipMessage, call_id: &str, from: SocketAddr) {
        let tag = self.calls.get(call_id).map(|c| c.to_tag.as_str());
        let status = if tag.is_some() {
            "200 OK"
        } else {
            "481 Call/Transaction Does Not Exist"
        };
        self.send(&response(m, status, tag, &[], None), from).await;
    }

    /// Turns an INVITE down with `status`, says why on stderr and counts it.
    async fn refuse(
        &self,
        m: &SipMessage,
        call_id: &str,
        from: SocketAddr,
        status: &str,
        reason: &str,
    ) {
        eprintln!("MCU: refusing call {call_id}: {reason}");
        self.counters.refused.fetch_add(1, Relaxed);
        self.send(&response(m, status, Some("mcu"), &[], None), from)
            .await;
    }

    async fn invite(&mut self, m: &SipMessage, call_id: &str, from: SocketAddr) {
        if let Some(call) = self.calls.get(call_id) {
            // A retransmission, or a re-INVITE (a session refresh, another codec): the same
            // answer again; the media stays where it is.
            let reinvite = m
                .header("To")
                .is_some_and(|to| to.contains(&format!("tag={}", call.to_tag)));
            if !reinvite {
                let ok = Arc::clone(&call.ok);
                self.send(&ok, from).await;
                return;
            }
            let answer = String::from_utf8_lossy(&call.ok)
                .split_once("\r\n\r\n")
                .map(|(_, body)| body.to_owned())
                .unwrap_or_default();
            let ok = response(
                m,
                "200 OK",
                None,
                &[self.contact(), ALLOW.to_owned()],
                Some(("application/sdp", &answer)),
            );
            self.send(&ok, from).await;
            return;
        }
        self.send(&response(m, "100 Trying", None, &[], None), from)
            .await;
        let Some(offer) = parse_offer(&m.body) else {
            self.refuse(
                m,
                call_id,
                from,
                "488 Not Acceptable Here",
                "unreadable SDP offer",
            )
            .await;
            return;
        };
        let sockets = match self.rtp_sockets().await {
            Ok(s) => s,
            Err(e) => {
                let reason = format!("{e:#}");
                self.refuse(m, call_id, from, "500 Server Internal Error", &reason)
                    .await;
                return;
            }
        };
        let ports = (
            sockets.0.local_addr().map(|a| a.port()).unwrap_or(0),
            sockets.1.local_addr().map(|a| a.port()).unwrap_or(0),
        );
        let n = self.next_call;
        self.next_call += 1;
        let settled = match answer(&offer, self.local.ip(), ports, 1000 + n) {
            Ok(s) => s,
            Err(e) => {
                let reason = format!("{e:#}");
                self.refuse(m, call_id, from, "488 Not Acceptable Here", &reason)
                    .await;
                return;
            }
        };
        let to_tag = format!("mcu{n}x{:08x}", rand::random::<u32>());
        let ok = Arc::new(response(
            m,
            "200 OK",
            Some(&to_tag),
            &[self.contact(), ALLOW.to_owned()],
            Some(("application/sdp", &settled.answer)),
        ));
        self.send(&ok, from).await;
        self.counters.answered.fetch_add(1, Relaxed);
        let acked = Arc::new(AtomicBool::new(false));
        let keyframe_wanted = Arc::new(AtomicBool::new(true));
        let retransmit = {
            let (socket, ok, acked) = (
                Arc::clone(&self.socket),
                Arc::clone(&ok),
                Arc::clone(&acked),
            );
            tokio::spawn(async move {
                let (mut wait, mut waited) = (Duration::from_millis(500), Duration::ZERO);
                while waited < Duration::from_secs(32) {
                    tokio::time::sleep(wait).await;
                    waited += wait;
                    if acked.load(Relaxed) {
                        return;
                    }
                    let _ = socket.send_to(&ok, from).await;
                    wait = (wait * 2).min(Duration::from_secs(4));
                }
            })
        };
        let rtcp = tokio::spawn(read_rtcp(
            Arc::clone(&sockets.1),
            Arc::clone(&keyframe_wanted),
            Arc::clone(&self.counters),
        ));
        self.calls.insert(
            call_id.to_owned(),
            CallState {
                to_tag,
                ok,
                acked,
                feed: n,
                sender: self.sender_base.wrapping_add(n as u32),
                sockets,
                target: settled.target,
                keyframe_wanted,
                tasks: vec![retransmit, rtcp],
                feeding: false,
            },
        );
    }

    fn contact(&self) -> String {
        format!("Contact: <sip:mcu@{}>", self.local)
    }

    /// A call's audio and video sockets, on the MCU's address.
    async fn rtp_sockets(&self) -> Result<(Arc<UdpSocket>, Arc<UdpSocket>)> {
        let bind = SocketAddr::new(self.local.ip(), 0);
        let audio = UdpSocket::bind(bind).await.context("RTP socket")?;
        let video = UdpSocket::bind(bind).await.context("RTP socket")?;
        Ok((Arc::new(audio), Arc::new(video)))
    }
}

/// Reads what comes to a call's video socket: a PLI or FIR makes the next frame a keyframe;
/// anything else (the member's media, were it sent) is dropped.
async fn read_rtcp(
    socket: Arc<UdpSocket>,
    keyframe_wanted: Arc<AtomicBool>,
    counters: Arc<McuCounters>,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((n, _)) = socket.recv_from(&mut buf).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let d = &buf[..n];
        // RTCP on a muxed port: payload types 192..=223 (RFC 5761).
        if n >= 8 && (192..=223).contains(&d[1]) && rtcp_asks_keyframe(d) {
            keyframe_wanted.store(true, Relaxed);
            counters.rtcp_keyframes.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An INVITE as confgate sends it to an MCU (signalling::sdp::offer, the sip crate's
    // Invitation), for a member who does not publish: every codec of the binding.
    const INVITE: &str = "INVITE sip:room@10.77.0.1:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.77.0.1:41234;branch=z9hG4bKabc;rport\r\n\
Max-Forwards: 70\r\n\
From: \"load-3\" <sip:u123@10.77.0.1>;tag=ft1\r\n\
To: <sip:room@10.77.0.1:5070>\r\n\
Call-ID: c4ll1d\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:u123@10.77.0.1:41234>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 407\r\n\
\r\n";
    const OFFER: &str = "v=0\r\n\
o=confgate 1 1 IN IP4 10.77.0.1\r\n\
s=confgate\r\n\
c=IN IP4 10.77.0.1\r\n\
t=0 0\r\n\
m=audio 30000 RTP/AVP 111 0 8\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 useinbandfec=1\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=sendrecv\r\n\
a=rtcp:30000\r\n\
a=rtcp-mux\r\n\
m=video 30002 RTP/AVP 96 97\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 H264/90000\r\n\
a=sendrecv\r\n\
a=rtcp:30002\r\n\
a=rtcp-mux\r\n";

    fn invite() -> Vec<u8> {
        INVITE
            .replace(
                "Content-Length: 407",
                &format!("Content-Length: {}", OFFER.len()),
            )
            .into_bytes()
            .into_iter()
            .chain(OFFER.bytes())
            .collect()
    }

    #[test]
    fn reads_an_invite_and_answers_with_the_offers_payload_types() {
        let m = SipMessage::parse(&invite()).expect("parses");
        assert_eq!(m.method.as_deref(), Some("INVITE"));
        assert_eq!(m.header("call-id"), Some("c4ll1d"));
        assert_eq!(m.body, OFFER);
        let offer = parse_offer(&m.body).expect("offer");
        let local: IpAddr = "10.77.0.1".parse().expect("ip");
        let settled = answer(&offer, local, (40000, 40002), 7).expect("answer");
        assert_eq!(
            settled.target,
            FeedTarget {
                audio: "10.77.0.1:30000".parse().expect("addr"),
                video: "10.77.0.1:30002".parse().expect("addr"),
                audio_pt: 111,
                video_pt: 96,
            }
        );
        assert!(settled.answer.contains("m=audio 40000 RTP/AVP 111\r\n"));
        assert!(settled.answer.contains("m=video 40002 RTP/AVP 96\r\n"));
        assert!(settled.answer.contains("c=IN IP4 10.77.0.1\r\n"));

        let ok = response(
            &m,
            "200 OK",
            Some("t4g"),
            &["Contact: <sip:mcu@10.77.0.1:5070>".into()],
            Some(("application/sdp", &settled.answer)),
        );
        let ok = SipMessage::parse(&ok).expect("our 200 parses");
        assert_eq!(ok.method, None);
        assert_eq!(
            ok.header("Via"),
            Some("SIP/2.0/UDP 10.77.0.1:41234;branch=z9hG4bKabc;rport")
        );
        assert_eq!(ok.header("To"), Some("<sip:room@10.77.0.1:5070>;tag=t4g"));
        assert_eq!(ok.header("CSeq"), Some("1 INVITE"));
        assert_eq!(ok.body, settled.answer);
    }

    #[test]
    fn refuses_offers_without_opus_or_vp8_and_refuses_extra_m_lines() {
        let local: IpAddr = "127.0.0.1".parse().expect("ip");
        let h264_only = OFFER.replace("a=rtpmap:96 VP8/90000\r\n", "");
        let offer = parse_offer(&h264_only).expect("offer");
        assert!(answer(&offer, local, (1, 2), 1).is_err());
        let extra = format!("{OFFER}m=application 5000 UDP/BFCP *\r\n");
        let settled =
            answer(&parse_offer(&extra).expect("offer"), local, (1, 2), 1).expect("answer");
        assert!(settled.answer.ends_with("m=application 0 UDP/BFCP *\r\n"));
    }

    #[test]
    fn compact_headers_and_keyframe_requests() {
        let m = SipMessage::parse(
            b"BYE sip:mcu@10.77.0.1:5070 SIP/2.0\r\nv: SIP/2.0/UDP a;branch=z9hG4bK1\r\ni: x\r\nl: 0\r\n\r\n",
        )
        .expect("parses");
        assert_eq!(m.method.as_deref(), Some("BYE"));
        assert_eq!(m.header("Call-ID"), Some("x"));
        assert_eq!(m.header("Via"), Some("SIP/2.0/UDP a;branch=z9hG4bK1"));
        assert!(SipMessage::parse(b"garbage").is_none());

        // RR (8 bytes) then PLI (12 bytes), compound.
        let mut rtcp = vec![0x80, 201, 0, 1, 0, 0, 0, 1];
        rtcp.extend_from_slice(&[0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert!(rtcp_asks_keyframe(&rtcp));
        assert!(!rtcp_asks_keyframe(&rtcp[..8]));
        let fir = [
            0x84, 206, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0,
        ];
        assert!(rtcp_asks_keyframe(&fir));
        let mut header = [0u8; 12];
        write_header(&mut header, 96, true, 0x0102, 0x03040506, 0x0708090a);
        assert_eq!(header, [0x80, 0xe0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }
}
