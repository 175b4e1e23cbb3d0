//! The SIP user agent shell: confgate calls the MCU (as the UAC) for each web
//! member bound to an MCU conference. Signalling only: the SDP is an opaque
//! string the caller provides and receives.
//!
//! ```text
//!  SipAgent ── one UDP socket ── dispatcher task ──(Call-ID)──► call task ─┐
//!      │                                                                  │ owns Invitation,
//!      └─ call(CallRequest) ─ spawns ─► call task ◄── TCP reader task ────┤ Dialog and
//!                                         │  ▲   (per call, TCP only)     │ ClientTransactions
//!                          CallEvent ◄────┘  └──── Command (Call methods) ┘
//! ```
//!
//! The protocol lives in [`confgate_signalling::sip`] (pure: bytes, time and
//! randomness in, messages and timers out); this module owns the sockets, the
//! clock and the random number generator. Each call is one tokio task that
//! owns all of the call's state; it ends (and takes its TCP reader and its
//! dispatcher entry with it) when the call is over or its [`Call`] is dropped.
//!
//! Not done here: DNS SRV/NAPTR (RFC 3263: a host name is resolved with A/AAAA
//! only), TLS, forking, retransmitting our 2xx to a re-INVITE on UDP until
//! its ACK.

mod call;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confgate_signalling::sip::{Message, TimerConfig};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The transport a call's signalling uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What [`SipAgent::call`] needs to place a call.
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// The conference at the MCU: `sip:room@host:port`.
    pub target: String,
    pub transport: Transport,
    /// `sip:host:port` of a proxy every request of the call goes through
    /// (added as a loose Route); `None` to send to the target directly.
    pub outbound_proxy: Option<String>,
    /// The member's SIP account (the user part of From and Contact).
    pub from_user: String,
    pub display_name: String,
    /// `(username, password)` for digest authentication.
    pub credentials: Option<(String, String)>,
    pub sdp_offer: String,
    /// How long the MCU may ring before the call is cancelled.
    pub ring_timeout: Duration,
    /// How often an in-dialog OPTIONS checks that the MCU still knows the
    /// call, when no session timer (RFC 4028) does; `None` for never. A 481
    /// or 408, or no answer at all, ends the call.
    pub keepalive: Option<Duration>,
}

/// Agent-wide settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct AgentConfig {
    /// SIP timers (T1 = 500 ms by default; Timer B = 64·T1 = 32 s). Tests
    /// shorten them.
    pub timers: TimerConfig,
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum SipAgentError {
    #[error("cannot bind the SIP socket on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Why a call could not be placed or an operation on it failed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The MCU answered 486 Busy Here or 600 Busy Everywhere.
    #[error("the MCU is busy")]
    Busy,
    /// The MCU refused the call with another final response.
    #[error("the MCU refused the call: {status} {reason}")]
    Rejected { status: u16, reason: String },
    /// Our credentials were refused (a second challenge, or 403 after them),
    /// or the MCU asked for credentials we do not have.
    #[error("the MCU refused our credentials")]
    AuthFailed,
    /// Nobody answered within the ring timeout: CANCEL sent, 487 received.
    #[error("no answer within the ring timeout")]
    NoAnswer,
    /// The MCU did not answer a request at all (Timer B/F).
    #[error("the MCU did not respond in time")]
    Timeout,
    /// A socket or connection failed (our side or the network).
    #[error("transport: {0}")]
    Transport(String),
    /// The MCU sent something we cannot use (a 2xx without SDP, a response
    /// that breaks the protocol).
    #[error("bad response from the MCU: {0}")]
    BadResponse(String),
    /// The caller's request is unusable (a bad target URI): our fault.
    #[error("invalid call request: {0}")]
    InvalidRequest(String),
    /// The call is already over.
    #[error("the call has ended")]
    Ended,
}

/// The owner's answer to a re-INVITE: our SDP, or a reason to refuse it
/// (sent as 488 Not Acceptable Here).
pub type ReInviteReply = Result<String, String>;

/// Something the MCU did during the call.
#[derive(Debug)]
pub enum CallEvent {
    /// The MCU hung up (its BYE was answered with 200). The call is over.
    Bye,
    /// The MCU sent a new offer (hold, unhold, codec change): answer it
    /// through `reply`. Dropping `reply` refuses the offer. `sdp` is empty
    /// for a re-INVITE without an offer (then `reply` carries our offer).
    ReInvite {
        sdp: String,
        reply: oneshot::Sender<ReInviteReply>,
    },
    /// The MCU asked for a key frame (SIP INFO, RFC 5168); already answered.
    PictureFastUpdate,
    /// The call ended for another reason (session expired, the MCU stopped
    /// answering, the connection closed).
    Failed(String),
}

/// A message from the network for one call.
#[derive(Debug)]
enum Inbound {
    Message(Box<Message>, SocketAddr),
    /// The call's TCP connection closed or broke.
    Closed(String),
}

/// A request from the owner to the call task.
#[derive(Debug)]
enum Command {
    PictureFastUpdate(oneshot::Sender<Result<(), CallError>>),
    Hangup(oneshot::Sender<Result<(), CallError>>),
    ReInvite(String, oneshot::Sender<Result<String, CallError>>),
}

/// Routes datagrams to calls by Call-ID. A lock in the shell: held only to
/// look up, insert or remove one entry, never across an await.
type CallTable = Arc<Mutex<HashMap<String, mpsc::Sender<Inbound>>>>;

struct Inner {
    socket: Arc<UdpSocket>,
    local_addr: SocketAddr,
    calls: CallTable,
    config: AgentConfig,
    dispatcher: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.dispatcher.abort();
    }
}

/// The SIP user agent: one UDP socket shared by all calls. Cheap to clone;
/// the dispatcher stops when the last clone and the last call are gone.
#[derive(Clone)]
pub struct SipAgent {
    inner: Arc<Inner>,
}

impl SipAgent {
    /// Binds a UDP socket on `bind` (port 0 = any) for SIP; TCP connections
    /// are opened per call when the transport is TCP.
    pub async fn start(bind: SocketAddr) -> Result<SipAgent, SipAgentError> {
        SipAgent::start_with(bind, AgentConfig::default()).await
    }

    pub async fn start_with(
        bind: SocketAddr,
        config: AgentConfig,
    ) -> Result<SipAgent, SipAgentError> {
        let bind_err = |source| SipAgentError::Bind { addr: bind, source };
        let socket = Arc::new(UdpSocket::bind(bind).await.map_err(bind_err)?);
        let local_addr = socket.local_addr().map_err(bind_err)?;
        let calls: CallTable = Arc::default();
        let dispatcher = tokio::spawn(dispatch(socket.clone(), calls.clone()));
        Ok(SipAgent {
            inner: Arc::new(Inner {
                socket,
                local_addr,
                calls,
                config,
                dispatcher,
            }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Places a call; resolves when it is answered (2xx, ACK sent) or has
    /// failed. Dropping the future before then cancels or hangs up the call.
    pub async fn call(&self, req: CallRequest) -> Result<Call, CallError> {
        let (setup_tx, setup_rx) = oneshot::channel();
        let (event_tx, event_rx) = mpsc::channel(16);
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        tokio::spawn(call::run(self.clone(), req, setup_tx, event_tx, cmd_rx));
        let answer_sdp = setup_rx
            .await
            .map_err(|_| CallError::Transport("the call task ended unexpectedly".into()))??;
        Ok(Call {
            answer_sdp,
            events: event_rx,
            commands: cmd_tx,
        })
    }
}

/// An answered call. Dropping it hangs up (BYE, without waiting).
#[derive(Debug)]
pub struct Call {
    /// The MCU's SDP answer from the 2xx.
    pub answer_sdp: String,
    events: mpsc::Receiver<CallEvent>,
    commands: mpsc::Sender<Command>,
}

/// How long [`Call::hangup`] and [`Call::picture_fast_update`] wait at most.
const COMMAND_BOUND: Duration = Duration::from_secs(10);

impl Call {
    /// Events from the MCU; `None` once the call is over and all events were
    /// read.
    pub async fn next_event(&mut self) -> Option<CallEvent> {
        self.events.recv().await
    }

    /// Sends SIP INFO picture_fast_update (RFC 5168) and waits for its final
    /// response.
    pub async fn picture_fast_update(&self) -> Result<(), CallError> {
        self.command(Command::PictureFastUpdate).await
    }

    /// Sends a re-INVITE with a new offer (hold, unhold, a codec change) and
    /// returns the MCU's answer. A refusal (`Rejected`, 491 on glare) leaves
    /// the session as it was (RFC 3261 §14.1); a 481 or 408, or no answer,
    /// ends the call.
    pub async fn reinvite(&self, sdp_offer: String) -> Result<String, CallError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::ReInvite(sdp_offer, tx))
            .await
            .map_err(|_| CallError::Ended)?;
        // Timer B bounds the transaction; this bounds a stuck task.
        match tokio::time::timeout(COMMAND_BOUND * 4, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CallError::Ended),
            Err(_) => Err(CallError::Timeout),
        }
    }

    /// Sends BYE and waits (bounded) for its final response.
    pub async fn hangup(self) -> Result<(), CallError> {
        self.command(Command::Hangup).await
    }

    async fn command(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), CallError>>) -> Command,
    ) -> Result<(), CallError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| CallError::Ended)?;
        match tokio::time::timeout(COMMAND_BOUND, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CallError::Ended),
            Err(_) => Err(CallError::Timeout),
        }
    }
}

/// Reads the UDP socket and hands each message to its call. Malformed
/// datagrams are logged and dropped.
async fn dispatch(socket: Arc<UdpSocket>, calls: CallTable) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP port unreachable surfaces here on some systems: not fatal.
                tracing::debug!(error = %e, "SIP UDP receive error");
                continue;
            }
        };
        let bytes = &buf[..n];
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            continue; // keep-alive
        }
        let message = match Message::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%from, error = %e, len = n, "dropped malformed SIP datagram from the peer");
                continue;
            }
        };
        let Ok(call_id) = message.call_id().map(str::to_owned) else {
            tracing::warn!(%from, "dropped SIP datagram without Call-ID");
            continue;
        };
        let target = calls.lock().ok().and_then(|t| t.get(&call_id).cloned());
        match target {
            // Never block the socket on one slow call: drop when its queue is
            // full (UDP retransmissions recover).
            Some(tx) => {
                if tx
                    .try_send(Inbound::Message(Box::new(message), from))
                    .is_err()
                {
                    tracing::debug!(%call_id, "call queue full or closed; datagram dropped");
                }
            }
            None => tracing::debug!(%from, %call_id, "SIP message for no known call dropped"),
        }
    }
}
