//! One call's task: owns the Invitation, the Dialog and every client
//! transaction, on the shell's clock and random number generator.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use confgate_signalling::sip::{
    Branch, CallConfig, CallId, ClientTransaction, Dialog, DialogTimerEvent, Invitation, Message,
    Method, NameAddr, PeerRequest, Scheme, SentBy, SessionTimerConfig, SipError, SipUri, Tag,
    TransactionAction, Transport as SipTransport, frame, keepalive_len,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{
    CallError, CallEvent, CallRequest, Command, Inbound, ReInviteReply, SipAgent, Transport,
};

fn branch() -> Branch {
    Branch::from_random(rand::random())
}

fn bad(e: SipError) -> CallError {
    CallError::BadResponse(e.to_string())
}

/// The wire for one call.
enum Wire {
    Udp {
        socket: std::sync::Arc<tokio::net::UdpSocket>,
        peer: SocketAddr,
    },
    Tcp {
        writer: OwnedWriteHalf,
    },
}

impl Wire {
    /// Sends a request (or an ACK) to the next hop.
    async fn send(&mut self, bytes: &[u8]) -> Result<(), CallError> {
        match self {
            Wire::Udp { socket, peer } => socket.send_to(bytes, *peer).await.map(|_| ()),
            Wire::Tcp { writer } => writer.write_all(bytes).await,
        }
        .map_err(|e| CallError::Transport(e.to_string()))
    }

    /// Sends a response to a request of the peer: on UDP to the top Via's
    /// rport/received (RFC 3261 §18.2.2, RFC 3581), on TCP on the connection.
    async fn respond(&mut self, response: &Message, source: SocketAddr) {
        let bytes = response.to_bytes();
        let result = match self {
            Wire::Udp { socket, .. } => {
                let dest = response_destination(response, source);
                socket.send_to(&bytes, dest).await.map(|_| ())
            }
            Wire::Tcp { writer } => writer.write_all(&bytes).await,
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not send a SIP response");
        }
    }
}

fn response_destination(response: &Message, source: SocketAddr) -> SocketAddr {
    let Ok(via) = response.top_via() else {
        return source;
    };
    if via.rport().is_some() {
        return source;
    }
    let ip = via
        .received()
        .and_then(|r| r.parse::<IpAddr>().ok())
        .or_else(|| via.host.trim_matches(['[', ']']).parse::<IpAddr>().ok());
    match ip {
        Some(ip) => SocketAddr::new(ip, via.port.unwrap_or(5060)),
        None => source,
    }
}

/// Removes the call from the dispatcher and stops its TCP reader when the
/// task ends, however it ends.
struct Registration {
    agent: SipAgent,
    call_id: String,
    reader: Option<JoinHandle<()>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut table) = self.agent.inner.calls.lock() {
            table.remove(&self.call_id);
        }
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
    }
}

async fn resolve(uri: &SipUri) -> Result<SocketAddr, CallError> {
    let host = uri.host.trim_matches(['[', ']']);
    let port = uri.port.unwrap_or(5060);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| CallError::Transport(format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| CallError::Transport(format!("{host} has no address")))
}

/// Our address as the peer sees it, for Via and Contact.
async fn local_ip_towards(bound: SocketAddr, peer: SocketAddr) -> IpAddr {
    if !bound.ip().is_unspecified() {
        return bound.ip();
    }
    let probe_bind = SocketAddr::new(bound.ip(), 0);
    match tokio::net::UdpSocket::bind(probe_bind).await {
        Ok(probe) if probe.connect(peer).await.is_ok() => {
            probe.local_addr().map(|a| a.ip()).unwrap_or(bound.ip())
        }
        _ => bound.ip(),
    }
}

fn host_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// Reads a TCP stream, frames it and hands each message to the call.
async fn read_tcp(
    mut reader: tokio::net::tcp::OwnedReadHalf,
    peer: SocketAddr,
    tx: mpsc::Sender<Inbound>,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16_384];
    loop {
        let skip = keepalive_len(&buf);
        buf.drain(..skip);
        match frame(&buf) {
            Ok(Some(n)) => {
                let bytes: Vec<u8> = buf.drain(..n).collect();
                match Message::parse(&bytes) {
                    Ok(m) => {
                        if tx.send(Inbound::Message(Box::new(m), peer)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "dropped malformed SIP message from the peer (TCP)")
                    }
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%peer, error = %e, "unframeable SIP stream from the peer; closing");
                let _ = tx
                    .send(Inbound::Closed(format!(
                        "the peer sent an unframeable stream: {e}"
                    )))
                    .await;
                return;
            }
        }
        match reader.read(&mut chunk).await {
            Ok(0) => {
                let _ = tx
                    .send(Inbound::Closed("the peer closed the connection".into()))
                    .await;
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => {
                let _ = tx.send(Inbound::Closed(format!("TCP read: {e}"))).await;
                return;
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

/// What an in-dialog client transaction is for.
enum Purpose {
    /// The initial INVITE, lingering to absorb 2xx retransmissions.
    Invite,
    Bye(Option<oneshot::Sender<Result<(), CallError>>>),
    Info(Option<oneshot::Sender<Result<(), CallError>>>),
    Refresh,
    /// Our re-INVITE and its offer, which becomes the session's on a 2xx.
    ReInvite(Option<oneshot::Sender<Result<String, CallError>>>, String),
    KeepAlive,
}

/// The call task's entry point.
pub(super) async fn run(
    agent: SipAgent,
    req: CallRequest,
    setup: oneshot::Sender<Result<String, CallError>>,
    events: mpsc::Sender<CallEvent>,
    commands: mpsc::Receiver<Command>,
) {
    let call_id = CallId::from_random(rand::random());
    let (in_tx, in_rx) = mpsc::channel(64);
    if let Ok(mut table) = agent.inner.calls.lock() {
        table.insert(call_id.as_str().to_owned(), in_tx.clone());
    }
    let mut reg = Registration {
        agent: agent.clone(),
        call_id: call_id.as_str().to_owned(),
        reader: None,
    };
    let mut call = match CallTask::prepare(&agent, &req, call_id, in_tx, &mut reg).await {
        Ok(c) => c,
        Err(e) => {
            let _ = setup.send(Err(e));
            return;
        }
    };
    call.inbound = Some(in_rx);
    call.drive(req, setup, events, commands).await;
    drop(reg);
}

struct CallTask {
    wire: Wire,
    inv: Invitation,
    timers: confgate_signalling::sip::TimerConfig,
    inbound: Option<mpsc::Receiver<Inbound>>,
}

impl CallTask {
    async fn prepare(
        agent: &SipAgent,
        req: &CallRequest,
        call_id: CallId,
        in_tx: mpsc::Sender<Inbound>,
        reg: &mut Registration,
    ) -> Result<CallTask, CallError> {
        let target = SipUri::parse(&req.target)
            .map_err(|e| CallError::InvalidRequest(format!("target {}: {e}", req.target)))?;
        let proxy = match &req.outbound_proxy {
            Some(p) => Some(
                SipUri::parse(p)
                    .map_err(|e| CallError::InvalidRequest(format!("outbound proxy {p}: {e}")))?,
            ),
            None => None,
        };
        let next_hop = resolve(proxy.as_ref().unwrap_or(&target)).await?;
        let (wire, local) = match req.transport {
            Transport::Udp => {
                let ip = local_ip_towards(agent.local_addr(), next_hop).await;
                (
                    Wire::Udp {
                        socket: agent.inner.socket.clone(),
                        peer: next_hop,
                    },
                    SocketAddr::new(ip, agent.local_addr().port()),
                )
            }
            Transport::Tcp => {
                let stream = TcpStream::connect(next_hop)
                    .await
                    .map_err(|e| CallError::Transport(format!("TCP connect to {next_hop}: {e}")))?;
                let local = stream
                    .local_addr()
                    .map_err(|e| CallError::Transport(e.to_string()))?;
                let (reader, writer) = stream.into_split();
                reg.reader = Some(tokio::spawn(read_tcp(reader, next_hop, in_tx)));
                (Wire::Tcp { writer }, local)
            }
        };
        let (sip_transport, param) = match req.transport {
            Transport::Udp => (SipTransport::Udp, None),
            Transport::Tcp => (SipTransport::Tcp, Some("tcp")),
        };
        let host = host_of(local.ip());
        let user_uri = |with_port: bool| {
            SipUri::new(
                Scheme::Sip,
                Some(&req.from_user),
                &host,
                with_port.then_some(local.port()),
            )
            .map_err(|e| CallError::InvalidRequest(format!("from user {}: {e}", req.from_user)))
        };
        let mut contact = user_uri(true)?;
        if let Some(p) = param {
            contact = contact.with_param("transport", Some(p));
        }
        let route = proxy
            .map(|p| vec![NameAddr::new(p.with_param("lr", None))])
            .unwrap_or_default();
        let config = CallConfig {
            from: NameAddr::new(user_uri(false)?).with_display_name(&req.display_name),
            to: NameAddr::new(target.clone()),
            request_uri: target,
            contact,
            sent_by: SentBy {
                transport: sip_transport,
                host,
                port: Some(local.port()),
                rport: true,
            },
            route,
            session_timer: Some(SessionTimerConfig::default()),
            user_agent: Some(concat!("confgate/", env!("CARGO_PKG_VERSION")).to_owned()),
        };
        let inv = Invitation::new(config, call_id, Tag::from_random(rand::random()), 1);
        Ok(CallTask {
            wire,
            inv,
            timers: agent.inner.config.timers,
            inbound: None,
        })
    }

    async fn send_actions(&mut self, actions: &[TransactionAction]) -> Result<(), CallError> {
        for a in actions {
            match a {
                TransactionAction::Transmit(b)
                | TransactionAction::Retransmit(b)
                | TransactionAction::SendAck(b) => self.wire.send(b).await?,
                _ => {}
            }
        }
        Ok(())
    }

    fn start_tx(
        &self,
        request: Message,
    ) -> Result<(ClientTransaction, Vec<TransactionAction>), CallError> {
        ClientTransaction::new(request, Instant::now(), self.timers)
            .map_err(|e| CallError::Transport(format!("internal: {e}")))
    }

    async fn drive(
        mut self,
        req: CallRequest,
        setup: oneshot::Sender<Result<String, CallError>>,
        events: mpsc::Sender<CallEvent>,
        commands: mpsc::Receiver<Command>,
    ) {
        let Some(mut inbound) = self.inbound.take() else {
            return;
        };
        match self.establish(&req, &mut inbound).await {
            Ok((dialog, invite_tx, answer)) => {
                if setup.send(Ok(answer)).is_err() {
                    // The caller gave up while the call was being answered.
                    let mut dialog = dialog;
                    if let Ok(bye) = dialog.bye(&branch()) {
                        let _ = self.wire.send(&bye.to_bytes()).await;
                    }
                    return;
                }
                let keepalive = req.keepalive;
                self.established(
                    req.sdp_offer,
                    dialog,
                    invite_tx,
                    (inbound, events, commands),
                    keepalive,
                )
                .await;
            }
            Err(e) => {
                let _ = setup.send(Err(e));
            }
        }
    }

    /// INVITE until a final response.
    async fn establish(
        &mut self,
        req: &CallRequest,
        inbound: &mut mpsc::Receiver<Inbound>,
    ) -> Result<(Dialog, ClientTransaction, String), CallError> {
        let invite = self
            .inv
            .invite(req.sdp_offer.as_bytes().to_vec(), &branch())
            .map_err(|e| CallError::InvalidRequest(e.to_string()))?;
        let (mut tx, actions) = self.start_tx(invite)?;
        self.send_actions(&actions).await?;
        let ring_deadline = Instant::now() + req.ring_timeout;
        let mut want_cancel = false;
        let mut cancel_tx: Option<ClientTransaction> = None;
        let mut authenticated = false;
        loop {
            let ring = (!want_cancel).then_some(ring_deadline);
            let deadline = [
                ring,
                tx.next_deadline(),
                cancel_tx.as_ref().and_then(|c| c.next_deadline()),
            ]
            .into_iter()
            .flatten()
            .min();
            let message = tokio::select! {
                m = inbound.recv() => match m {
                    Some(Inbound::Message(m, _)) => Some(m),
                    Some(Inbound::Closed(why)) => return Err(CallError::Transport(why)),
                    None => return Err(CallError::Transport("the agent stopped".into())),
                },
                () = sleep_until(deadline) => None,
            };
            let now = Instant::now();
            let mut actions = Vec::new();
            match message {
                None => {
                    if !want_cancel && now >= ring_deadline {
                        want_cancel = true;
                    }
                    actions.extend(tx.on_timer(now));
                    if let Some(c) = cancel_tx.as_mut() {
                        let a = c.on_timer(now);
                        self.send_actions(&a).await?;
                    }
                }
                Some(m) if m.is_response() => {
                    if let Some(c) = cancel_tx.as_mut().filter(|c| c.matches(&m)) {
                        let a = c.on_response(&m, now);
                        self.send_actions(&a).await?;
                        continue;
                    }
                    actions.extend(tx.on_response(&m, now));
                }
                Some(m) => {
                    tracing::debug!(method = ?m.method(), "request from the peer before the answer; ignored");
                    continue;
                }
            }
            if want_cancel && cancel_tx.is_none() && tx.can_cancel() {
                let cancel = self.inv.cancel().map_err(bad)?;
                let (c, a) = self.start_tx(cancel)?;
                tx.cancel_sent(now);
                self.send_actions(&a).await?;
                cancel_tx = Some(c);
            }
            self.send_actions(&actions).await?;
            for action in actions {
                match action {
                    TransactionAction::TimedOut | TransactionAction::TransportFailed => {
                        return Err(CallError::Timeout);
                    }
                    TransactionAction::Deliver(response) => {
                        let status = response.status().unwrap_or_default();
                        match status {
                            100..=199 => {
                                if want_cancel && cancel_tx.is_none() && tx.can_cancel() {
                                    let cancel = self.inv.cancel().map_err(bad)?;
                                    let (c, a) = self.start_tx(cancel)?;
                                    tx.cancel_sent(now);
                                    self.send_actions(&a).await?;
                                    cancel_tx = Some(c);
                                }
                            }
                            200..=299 => {
                                let mut dialog = self.inv.dialog(&response, now).map_err(bad)?;
                                let ack = dialog.ack(&response, &branch(), None).map_err(bad)?;
                                self.wire.send(&ack.to_bytes()).await?;
                                if want_cancel {
                                    // Answered as we cancelled: hang up at once.
                                    if let Ok(bye) = dialog.bye(&branch()) {
                                        let _ = self.wire.send(&bye.to_bytes()).await;
                                    }
                                    return Err(CallError::NoAnswer);
                                }
                                if response.body.is_empty() {
                                    if let Ok(bye) = dialog.bye(&branch()) {
                                        let _ = self.wire.send(&bye.to_bytes()).await;
                                    }
                                    return Err(CallError::BadResponse(
                                        "a 2xx to the INVITE without an SDP answer".into(),
                                    ));
                                }
                                let answer = String::from_utf8_lossy(&response.body).into_owned();
                                return Ok((dialog, tx, answer));
                            }
                            401 | 407 => {
                                let Some((user, pass)) =
                                    req.credentials.as_ref().filter(|_| !authenticated)
                                else {
                                    return Err(CallError::AuthFailed);
                                };
                                let cnonce = hex8(rand::random());
                                let retry = match self.inv.authenticate(
                                    &response,
                                    user,
                                    pass,
                                    &cnonce,
                                    &branch(),
                                ) {
                                    Ok(r) => r,
                                    Err(SipError::AuthenticationRejected { .. }) => {
                                        return Err(CallError::AuthFailed);
                                    }
                                    Err(e) => return Err(bad(e)),
                                };
                                authenticated = true;
                                let (t, a) = self.start_tx(retry)?;
                                tx = t;
                                self.send_actions(&a).await?;
                            }
                            403 if authenticated => return Err(CallError::AuthFailed),
                            486 | 600 => return Err(CallError::Busy),
                            487 if cancel_tx.is_some() => return Err(CallError::NoAnswer),
                            _ => {
                                return Err(CallError::Rejected {
                                    status,
                                    reason: response.reason().unwrap_or_default().to_owned(),
                                });
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// The confirmed call until it ends.
    async fn established(
        mut self,
        mut local_sdp: String,
        mut dialog: Dialog,
        invite_tx: ClientTransaction,
        channels: (
            mpsc::Receiver<Inbound>,
            mpsc::Sender<CallEvent>,
            mpsc::Receiver<Command>,
        ),
        keepalive: Option<std::time::Duration>,
    ) {
        let (mut inbound, events, mut commands) = channels;
        let mut txs: Vec<(ClientTransaction, Purpose)> = vec![(invite_tx, Purpose::Invite)];
        let mut next_keepalive = keepalive.map(|k| Instant::now() + k);
        let mut pending_offer: Option<(Message, SocketAddr, oneshot::Receiver<ReInviteReply>)> =
            None;
        let mut hanging_up = false;
        let mut commands_open = true;
        loop {
            // A session timer already proves the dialog alive.
            let keepalive_due = next_keepalive.filter(|_| dialog.session_timer().is_none());
            let deadline = txs
                .iter()
                .filter_map(|(t, _)| t.next_deadline())
                .chain(dialog.next_deadline())
                .chain(keepalive_due)
                .min();
            let offer_reply = async {
                match pending_offer.as_mut() {
                    Some((_, _, rx)) => rx.await.unwrap_or_else(|_| Err("dropped".into())),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                m = inbound.recv() => {
                    let now = Instant::now();
                    match m {
                        Some(Inbound::Message(m, source)) if m.is_response() => {
                            let Some(i) = txs.iter().position(|(t, _)| t.matches(&m)) else { continue };
                            let actions = txs[i].0.on_response(&m, now);
                            if let Err(e) = self.send_actions(&actions).await {
                                tracing::warn!(error = %e, "send failed");
                            }
                            let _ = source;
                            for action in actions {
                                if let TransactionAction::Deliver(resp) = action
                                    && self.on_dialog_response(&mut dialog, &mut txs[i].1, &resp, now, &events, &mut local_sdp).await == Some(true)
                                {
                                    return;
                                }
                            }
                        }
                        Some(Inbound::Message(m, source)) => {
                            if self.on_peer_request(&mut dialog, *m, source, now, &events, &mut pending_offer).await {
                                return;
                            }
                        }
                        Some(Inbound::Closed(why)) => {
                            if !hanging_up {
                                let _ = events.send(CallEvent::Failed(why)).await;
                            }
                            for (_, p) in &mut txs {
                                if let Purpose::Bye(r) | Purpose::Info(r) = p
                                    && let Some(r) = r.take()
                                {
                                    let _ = r.send(Err(CallError::Transport("connection closed".into())));
                                }
                                if let Purpose::ReInvite(r, _) = p
                                    && let Some(r) = r.take()
                                {
                                    let _ = r.send(Err(CallError::Transport("connection closed".into())));
                                }
                            }
                            return;
                        }
                        None => return,
                    }
                }
                reply = offer_reply => {
                    let Some((request, source, _)) = pending_offer.take() else { continue };
                    let now = Instant::now();
                    let response = match reply {
                        Ok(sdp) => {
                            let r = dialog.answer(&request, sdp.clone().into_bytes(), now);
                            if r.is_ok() { local_sdp = sdp; }
                            r
                        }
                        Err(why) => {
                            tracing::info!(%why, "re-INVITE refused by the owner");
                            dialog.reject(&request, 488, "Not Acceptable Here")
                        }
                    };
                    match response {
                        Ok(r) => self.wire.respond(&r, source).await,
                        Err(e) => tracing::warn!(error = %e, "cannot answer the re-INVITE"),
                    }
                }
                cmd = commands.recv(), if commands_open => {
                    let cmd = match cmd {
                        Some(Command::ReInvite(sdp, reply)) => {
                            let sent = dialog
                                .reinvite(&branch(), sdp.clone().into_bytes())
                                .map_err(|e| CallError::InvalidRequest(e.to_string()))
                                .and_then(|r| self.start_tx(r));
                            match sent {
                                Ok((t, a)) => match self.send_actions(&a).await {
                                    Ok(()) => txs.push((t, Purpose::ReInvite(Some(reply), sdp))),
                                    Err(e) => { let _ = reply.send(Err(e)); }
                                },
                                Err(e) => { let _ = reply.send(Err(e)); }
                            }
                            continue;
                        }
                        other => other,
                    };
                    let (reply, is_bye) = match cmd {
                        Some(Command::Hangup(r)) => (Some(r), true),
                        Some(Command::PictureFastUpdate(r)) => (Some(r), false),
                        Some(Command::ReInvite(..)) => continue,
                        // The Call was dropped: hang up without waiting.
                        None => { commands_open = false; (None, true) }
                    };
                    let built = if is_bye { dialog.bye(&branch()) } else { dialog.info_picture_fast_update(&branch()) };
                    let request = match built {
                        Ok(r) => r,
                        Err(e) => {
                            if let Some(r) = reply { let _ = r.send(Err(if is_bye { CallError::Ended } else { CallError::Transport(e.to_string()) })); }
                            if is_bye { return; }
                            continue;
                        }
                    };
                    match self.start_tx(request) {
                        Ok((t, a)) => {
                            if let Err(e) = self.send_actions(&a).await {
                                if let Some(r) = reply { let _ = r.send(Err(e)); }
                                if is_bye { return; }
                                continue;
                            }
                            if is_bye { hanging_up = true; }
                            if reply.is_none() && is_bye {
                                // Nobody waits for the 200: done.
                                return;
                            }
                            txs.push((t, if is_bye { Purpose::Bye(reply) } else { Purpose::Info(reply) }));
                        }
                        Err(e) => { if let Some(r) = reply { let _ = r.send(Err(e)); } }
                    }
                }
                () = sleep_until(deadline) => {
                    let now = Instant::now();
                    let mut ended = false;
                    for (tx, purpose) in txs.iter_mut() {
                        let actions = tx.on_timer(now);
                        if let Err(e) = self.send_actions(&actions).await {
                            tracing::warn!(error = %e, "retransmission failed");
                        }
                        if actions.iter().any(|a| matches!(a, TransactionAction::TimedOut | TransactionAction::TransportFailed)) {
                            match purpose {
                                Purpose::Bye(r) => { if let Some(r) = r.take() { let _ = r.send(Err(CallError::Timeout)); } ended = true; }
                                Purpose::Info(r) => { if let Some(r) = r.take() { let _ = r.send(Err(CallError::Timeout)); } }
                                Purpose::Refresh => {
                                    let _ = events.send(CallEvent::Failed("the MCU did not answer the session refresh".into())).await;
                                    ended = true;
                                }
                                Purpose::ReInvite(r, _) => {
                                    if let Some(r) = r.take() { let _ = r.send(Err(CallError::Timeout)); }
                                    let _ = events.send(CallEvent::Failed("the MCU did not answer our re-INVITE".into())).await;
                                    ended = true;
                                }
                                Purpose::KeepAlive => {
                                    let _ = events.send(CallEvent::Failed("the MCU stopped answering keep-alive OPTIONS".into())).await;
                                    ended = true;
                                }
                                Purpose::Invite => {}
                            }
                        }
                    }
                    txs.retain(|(t, _)| t.next_deadline().is_some() || matches!(t.state(), confgate_signalling::sip::TransactionState::Proceeding | confgate_signalling::sip::TransactionState::Trying | confgate_signalling::sip::TransactionState::Calling));
                    if ended { return; }
                    if let (Some(due), Some(every)) = (keepalive_due, keepalive)
                        && due <= now
                    {
                        next_keepalive = Some(now + every);
                        match dialog.options(&branch()).map_err(|e| CallError::Transport(e.to_string())).and_then(|r| self.start_tx(r)) {
                            Ok((t, a)) => {
                                let _ = self.send_actions(&a).await;
                                txs.push((t, Purpose::KeepAlive));
                            }
                            Err(e) => tracing::warn!(error = %e, "cannot send a keep-alive OPTIONS"),
                        }
                    }
                    for ev in dialog.on_timer(now) {
                        match ev {
                            DialogTimerEvent::RefreshDue => {
                                let refresh = if dialog.peer_allows(&Method::Update) {
                                    dialog.update(&branch(), None)
                                } else {
                                    dialog.reinvite(&branch(), local_sdp.clone().into_bytes())
                                };
                                match refresh.map_err(|e| CallError::Transport(e.to_string())).and_then(|r| self.start_tx(r)) {
                                    Ok((t, a)) => {
                                        let _ = self.send_actions(&a).await;
                                        txs.push((t, Purpose::Refresh));
                                    }
                                    Err(e) => tracing::warn!(error = %e, "cannot refresh the session"),
                                }
                            }
                            DialogTimerEvent::SessionExpired => {
                                if let Ok(bye) = dialog.bye(&branch()) {
                                    let _ = self.wire.send(&bye.to_bytes()).await;
                                }
                                let _ = events.send(CallEvent::Failed("the session expired without a refresh".into())).await;
                                return;
                            }
                        }
                    }
                }
            }
        }
    }

    /// A final (or provisional) response delivered by one of our in-dialog
    /// transactions. `Some(true)` ends the call.
    async fn on_dialog_response(
        &mut self,
        dialog: &mut Dialog,
        purpose: &mut Purpose,
        response: &Message,
        now: Instant,
        events: &mpsc::Sender<CallEvent>,
        local_sdp: &mut String,
    ) -> Option<bool> {
        let status = response.status().unwrap_or_default();
        if let Purpose::Invite = purpose {
            // A retransmitted 2xx: the same ACK again.
            if let Ok(ack) = dialog.ack(response, &branch(), None) {
                let _ = self.wire.send(&ack.to_bytes()).await;
            }
            return None;
        }
        if status < 200 {
            return None;
        }
        if let Err(e) = dialog.on_response(response, now) {
            tracing::warn!(error = %e, "unusable in-dialog response");
        }
        match purpose {
            Purpose::Bye(reply) => {
                if let Some(r) = reply.take() {
                    let _ = r.send(Ok(()));
                }
                Some(true)
            }
            Purpose::Info(reply) => {
                let result = if (200..300).contains(&status) {
                    Ok(())
                } else {
                    Err(CallError::Rejected {
                        status,
                        reason: response.reason().unwrap_or_default().to_owned(),
                    })
                };
                if let Some(r) = reply.take() {
                    let _ = r.send(result);
                }
                if matches!(status, 481 | 408) {
                    let _ = events
                        .send(CallEvent::Failed(format!(
                            "the MCU answered {status}: the dialog is gone"
                        )))
                        .await;
                    return Some(true);
                }
                None
            }
            Purpose::Refresh => {
                if response.cseq().is_ok_and(|c| c.method == Method::Invite)
                    && (200..300).contains(&status)
                    && let Ok(ack) = dialog.ack(response, &branch(), None)
                {
                    let _ = self.wire.send(&ack.to_bytes()).await;
                }
                if matches!(status, 481 | 408) {
                    let _ = events
                        .send(CallEvent::Failed(format!(
                            "the MCU answered the refresh with {status}"
                        )))
                        .await;
                    return Some(true);
                }
                None
            }
            Purpose::ReInvite(reply, offer) => {
                let result = if (200..300).contains(&status) {
                    if let Ok(ack) = dialog.ack(response, &branch(), None) {
                        let _ = self.wire.send(&ack.to_bytes()).await;
                    }
                    if response.body.is_empty() {
                        Err(CallError::BadResponse(
                            "a 2xx to our re-INVITE without an SDP answer".into(),
                        ))
                    } else {
                        *local_sdp = std::mem::take(offer);
                        Ok(String::from_utf8_lossy(&response.body).into_owned())
                    }
                } else {
                    Err(CallError::Rejected {
                        status,
                        reason: response.reason().unwrap_or_default().to_owned(),
                    })
                };
                if let Some(r) = reply.take() {
                    let _ = r.send(result);
                }
                if matches!(status, 481 | 408) {
                    let _ = events
                        .send(CallEvent::Failed(format!(
                            "the MCU answered our re-INVITE with {status}"
                        )))
                        .await;
                    return Some(true);
                }
                None
            }
            Purpose::KeepAlive => {
                // Any answer but these proves the dialog alive (RFC 3261
                // §12.2.1.2); 405 or 501 is fine.
                if matches!(status, 481 | 408) {
                    let _ = events
                        .send(CallEvent::Failed(format!(
                            "the MCU no longer knows the call (keep-alive answered {status})"
                        )))
                        .await;
                    return Some(true);
                }
                None
            }
            Purpose::Invite => None,
        }
    }

    /// A request from the MCU. Returns true when the call is over.
    async fn on_peer_request(
        &mut self,
        dialog: &mut Dialog,
        request: Message,
        source: SocketAddr,
        now: Instant,
        events: &mpsc::Sender<CallEvent>,
        pending_offer: &mut Option<(Message, SocketAddr, oneshot::Receiver<ReInviteReply>)>,
    ) -> bool {
        let outcome = match dialog.on_request(&request, now) {
            Ok(o) => o,
            Err(SipError::NotThisDialog) => {
                if request.method() != Some(&Method::Ack)
                    && let Ok(r) =
                        Message::response_to(&request, 481, "Call/Transaction Does Not Exist", None)
                {
                    self.wire.respond(&r, source).await;
                }
                return false;
            }
            Err(e) => {
                tracing::warn!(error = %e, "dropped a malformed request from the MCU");
                return false;
            }
        };
        match outcome {
            PeerRequest::Bye { response } => {
                self.wire.respond(&response, source).await;
                let _ = events.send(CallEvent::Bye).await;
                true
            }
            PeerRequest::Offer { offer, .. } => {
                let (tx, rx) = oneshot::channel();
                let sdp = offer
                    .map(|o| String::from_utf8_lossy(&o).into_owned())
                    .unwrap_or_default();
                *pending_offer = Some((request, source, rx));
                // A lifecycle event: wait for room rather than drop it.
                let _ = events.send(CallEvent::ReInvite { sdp, reply: tx }).await;
                false
            }
            PeerRequest::PictureFastUpdate { response } => {
                self.wire.respond(&response, source).await;
                let _ = events.send(CallEvent::PictureFastUpdate).await;
                false
            }
            PeerRequest::Refreshed { response }
            | PeerRequest::Info { response, .. }
            | PeerRequest::Options { response }
            | PeerRequest::Cancel { response }
            | PeerRequest::Rejected { response }
            | PeerRequest::Retransmission {
                response: Some(response),
            } => {
                self.wire.respond(&response, source).await;
                false
            }
            PeerRequest::Ack { .. } | PeerRequest::Retransmission { response: None } => false,
        }
    }
}

fn hex8(bytes: [u8; 8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
