//! Client transactions (RFC 3261 §17.1) as pure state machines.
//!
//! A [`ClientTransaction`] owns one request sent by this UA. The shell feeds
//! it the responses whose [`TransactionKey`] matches and calls
//! [`ClientTransaction::on_timer`] at [`ClientTransaction::next_deadline`];
//! each call returns the [`TransactionAction`]s to carry out, in order. Time is
//! always the caller's `now`, so tests drive it on virtual time.
//!
//! ```text
//!  INVITE (§17.1.1, RFC 6026)                 non-INVITE (§17.1.2)
//!  Calling ──1xx──► Proceeding                 Trying ──1xx──► Proceeding
//!    │ A: retransmit, doubling (UDP only)        │ E: retransmit, doubling to T2
//!    │ B: 64·T1 ─► TimedOut                      │ F: 64·T1 ─► TimedOut (both states)
//!    ├─2xx─► Accepted ─ M: 64·T1 ─► Terminated   └─final─► Completed ─ K: T4 ─► Terminated
//!    └─300-699─► Completed (ACK sent,                       (UDP; 0 on TCP)
//!                re-sent per retransmission) ─ D: 32 s ─► Terminated (UDP; 0 on TCP)
//! ```
//!
//! 2xx responses are delivered every time (the dialog re-sends its ACK for
//! each, RFC 6026's Accepted state); non-2xx finals once, with the transaction
//! itself answering their retransmissions with the same ACK.

use std::time::{Duration, Instant};

use super::SipError;
use super::header::{BRANCH_MAGIC_COOKIE, CSeq, Method};
use super::message::{Headers, Message, StartLine};

/// The retransmission timers of RFC 3261 §17.1.1.1 and table 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// The round-trip estimate; 500 ms by default. Raise it only on networks
    /// known to be slower, since timeouts (64·T1) grow with it.
    pub t1: Duration,
    /// The longest interval between non-INVITE retransmissions; 4 s.
    pub t2: Duration,
    /// How long the network may hold a message; 5 s (Timer K on UDP).
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> TimerConfig {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// Timers B, F and M: 64·T1, 32 s by default.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// Timer D: at least 32 s on UDP, to absorb retransmitted final responses.
pub const TIMER_D: Duration = Duration::from_secs(32);

/// The states of both machines; `Calling` is INVITE-only, `Trying`
/// non-INVITE-only, `Accepted` is RFC 6026's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionState {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionAction {
    /// Send the request for the first time.
    Transmit(Vec<u8>),
    /// Send the request again (UDP only).
    Retransmit(Vec<u8>),
    /// Hand this response to the transaction user (the dialog or call).
    Deliver(Message),
    /// Send this ACK for a non-2xx final response (again, for a
    /// retransmitted one).
    SendAck(Vec<u8>),
    /// No final response in time (Timer B or F, or 64·T1 after a CANCEL):
    /// the transaction user treats it as a 408.
    TimedOut,
    /// The transport reported a failure to send (§17.1.4): as a 503.
    TransportFailed,
    /// The transaction is over; forget it.
    Terminated,
}

/// What a response is matched on (RFC 3261 §17.1.3): the top Via branch and
/// the CSeq method, which tells an INVITE's responses from its CANCEL's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    pub branch: String,
    pub method: Method,
}

impl TransactionKey {
    /// The key of a received response.
    pub fn of_response(response: &Message) -> Result<TransactionKey, SipError> {
        if !response.is_response() {
            return Err(SipError::Misuse(
                "only responses are matched to client transactions".into(),
            ));
        }
        let via = response.top_via()?;
        let branch = via
            .branch()
            .ok_or_else(|| SipError::bad_value("Via", "no branch"))?
            .to_owned();
        Ok(TransactionKey {
            branch,
            method: response.cseq()?.method,
        })
    }
}

/// One client transaction, INVITE or not.
#[derive(Debug, Clone)]
pub struct ClientTransaction {
    request: Message,
    bytes: Vec<u8>,
    key: TransactionKey,
    invite: bool,
    reliable: bool,
    config: TimerConfig,
    state: TransactionState,
    /// Timer A or E.
    retransmit_at: Option<Instant>,
    interval: Duration,
    /// Timer B or F.
    timeout_at: Option<Instant>,
    /// 64·T1 after a CANCEL was sent for this INVITE (RFC 3261 §9.1).
    cancel_timeout_at: Option<Instant>,
    /// Timer D, K or M.
    linger_until: Option<Instant>,
    ack: Option<Vec<u8>>,
}

impl ClientTransaction {
    /// Starts a transaction for `request` (anything but ACK, which has none),
    /// sent at `now`. The transport, and so whether to retransmit, is read
    /// from the top Via, whose branch must carry the RFC 3261 magic cookie.
    /// The first action is the [`TransactionAction::Transmit`].
    pub fn new(
        request: Message,
        now: Instant,
        config: TimerConfig,
    ) -> Result<(ClientTransaction, Vec<TransactionAction>), SipError> {
        let Some(method) = request.method().cloned() else {
            return Err(SipError::Misuse(
                "a client transaction sends a request".into(),
            ));
        };
        if method == Method::Ack {
            return Err(SipError::Misuse("ACK has no client transaction".into()));
        }
        let via = request.top_via()?;
        let Some(branch) = via.branch().filter(|b| b.starts_with(BRANCH_MAGIC_COOKIE)) else {
            return Err(SipError::Misuse(
                "the Via branch must start with z9hG4bK".into(),
            ));
        };
        let key = TransactionKey {
            branch: branch.to_owned(),
            method: method.clone(),
        };
        let invite = method == Method::Invite;
        let reliable = via.transport.is_reliable();
        let bytes = request.to_bytes();
        let transaction = ClientTransaction {
            request,
            bytes: bytes.clone(),
            key,
            invite,
            reliable,
            config,
            state: if invite {
                TransactionState::Calling
            } else {
                TransactionState::Trying
            },
            retransmit_at: (!reliable).then(|| now + config.t1),
            interval: config.t1,
            timeout_at: Some(now + config.timeout()),
            cancel_timeout_at: None,
            linger_until: None,
            ack: None,
        };
        Ok((transaction, vec![TransactionAction::Transmit(bytes)]))
    }

    pub fn state(&self) -> TransactionState {
        self.state
    }

    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    pub fn request(&self) -> &Message {
        &self.request
    }

    /// Whether a CANCEL may be sent now: only once a provisional response
    /// has arrived (RFC 3261 §9.1).
    pub fn can_cancel(&self) -> bool {
        self.invite && self.state == TransactionState::Proceeding
    }

    /// The earliest instant at which [`ClientTransaction::on_timer`] has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.retransmit_at,
            self.timeout_at,
            self.cancel_timeout_at,
            self.linger_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether `response` belongs to this transaction.
    pub fn matches(&self, response: &Message) -> bool {
        TransactionKey::of_response(response).is_ok_and(|k| k == self.key)
    }

    /// Records that a CANCEL for this INVITE went out at `now`: if no final
    /// response arrives within 64·T1, the transaction times out (§9.1).
    pub fn cancel_sent(&mut self, now: Instant) {
        if self.invite
            && matches!(
                self.state,
                TransactionState::Calling | TransactionState::Proceeding
            )
        {
            self.cancel_timeout_at = Some(now + self.config.timeout());
        }
    }

    /// A response from the transport. Responses that do not match (see
    /// [`ClientTransaction::matches`]) are ignored.
    pub fn on_response(&mut self, response: &Message, now: Instant) -> Vec<TransactionAction> {
        use TransactionState::*;
        let Some(status) = response.status() else {
            return Vec::new();
        };
        if !self.matches(response) {
            return Vec::new();
        }
        let deliver = || TransactionAction::Deliver(response.clone());
        match (self.invite, self.state, status) {
            // INVITE, before a final response.
            (true, Calling | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.retransmit_at = None;
                self.timeout_at = None;
                vec![deliver()]
            }
            (true, Calling | Proceeding, 200..=299) => {
                self.stop_timers();
                self.state = Accepted;
                self.linger_until = Some(now + self.config.timeout());
                vec![deliver()]
            }
            (true, Calling | Proceeding, _) => {
                self.stop_timers();
                let ack = self.ack_for(response);
                self.ack = Some(ack.clone());
                let mut actions = vec![deliver(), TransactionAction::SendAck(ack)];
                if self.reliable {
                    self.state = Terminated;
                    actions.push(TransactionAction::Terminated);
                } else {
                    self.state = Completed;
                    self.linger_until = Some(now + TIMER_D);
                }
                actions
            }
            (true, Completed, 300..=699) => self
                .ack
                .clone()
                .map(TransactionAction::SendAck)
                .into_iter()
                .collect(),
            (true, Accepted, 200..=299) => vec![deliver()],

            // Non-INVITE, before a final response.
            (false, Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                vec![deliver()]
            }
            (false, Trying | Proceeding, _) => {
                self.stop_timers();
                let mut actions = vec![deliver()];
                if self.reliable {
                    self.state = Terminated;
                    actions.push(TransactionAction::Terminated);
                } else {
                    self.state = Completed;
                    self.linger_until = Some(now + self.config.t4);
                }
                actions
            }

            // Everything else is a retransmission or a stray: absorbed.
            _ => Vec::new(),
        }
    }

    /// Fires whatever timers are due at `now`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<TransactionAction> {
        use TransactionState::*;
        if self.state == Terminated {
            return Vec::new();
        }
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.linger_until) {
            self.stop_timers();
            self.state = Terminated;
            return vec![TransactionAction::Terminated];
        }
        if due(self.timeout_at) || due(self.cancel_timeout_at) {
            self.stop_timers();
            self.state = Terminated;
            return vec![TransactionAction::TimedOut, TransactionAction::Terminated];
        }
        if due(self.retransmit_at) {
            self.interval = match (self.invite, self.state) {
                (true, _) => self.interval * 2,
                (false, Proceeding) => self.config.t2,
                (false, _) => (self.interval * 2).min(self.config.t2),
            };
            self.retransmit_at = Some(now + self.interval);
            return vec![TransactionAction::Retransmit(self.bytes.clone())];
        }
        Vec::new()
    }

    /// The transport could not send (§17.1.4): the transaction ends at once.
    pub fn on_transport_error(&mut self) -> Vec<TransactionAction> {
        if self.state == TransactionState::Terminated {
            return Vec::new();
        }
        self.stop_timers();
        self.state = TransactionState::Terminated;
        vec![
            TransactionAction::TransportFailed,
            TransactionAction::Terminated,
        ]
    }

    fn stop_timers(&mut self) {
        self.retransmit_at = None;
        self.timeout_at = None;
        self.cancel_timeout_at = None;
        self.linger_until = None;
    }

    /// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): the
    /// INVITE's Request-URI, top Via, Route, From, Call-ID and CSeq number,
    /// the response's To (with its tag).
    fn ack_for(&self, response: &Message) -> Vec<u8> {
        let mut headers = Headers::new();
        if let Some(via) = self.request.headers.get("Via") {
            headers.push_known("Via", via);
        }
        headers.push_known("Max-Forwards", super::message::DEFAULT_MAX_FORWARDS);
        for route in self.request.headers.get_all("Route") {
            headers.push_known("Route", route);
        }
        if let Some(from) = self.request.headers.get("From") {
            headers.push_known("From", from);
        }
        if let Some(call_id) = self.request.headers.get("Call-ID") {
            headers.push_known("Call-ID", call_id);
        }
        if let Some(to) = response.headers.get("To") {
            headers.push_known("To", to);
        }
        if let Ok(cseq) = self.request.cseq() {
            headers.push_known(
                "CSeq",
                CSeq {
                    seq: cseq.seq,
                    method: Method::Ack,
                },
            );
        }
        let uri = match &self.request.start_line {
            StartLine::Request { uri, .. } => uri.clone(),
            // `new` refused anything but a request.
            StartLine::Response { .. } => return Vec::new(),
        };
        Message {
            start_line: StartLine::Request {
                method: Method::Ack,
                uri,
            },
            headers,
            body: Vec::new(),
        }
        .to_bytes()
    }
}

#[cfg(test)]
mod tests;
