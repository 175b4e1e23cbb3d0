//! SIP (RFC 3261) for the bridge into the MCU's conference, as pure code.
//!
//! confgate is the UAC: for each web member it calls the MCU (the UAS) once,
//! keeps the call up (session timers, fast-update requests), and hangs up. This
//! module holds every part of that which is a function of bytes, time and
//! randomness; the shell owns the sockets, the clock and the random number
//! generator.
//!
//! ```text
//!           shell (sockets, clock, RNG)                     pure (this module)
//!  UDP datagram ─────────────────────────────► Message::parse ─┐
//!  TCP bytes ──► keepalive_len / frame ──► n ─► Message::parse ─┤
//!                                                               ▼
//!               ┌──── response (Via branch + CSeq method) ──► ClientTransaction
//!               │                                              on_response / on_timer(now)
//!               │                                              └► TransactionAction:
//!               │                                                 Transmit, Retransmit, SendAck,
//!               │                                                 Deliver, TimedOut, Terminated
//!               │     Deliver(2xx / 1xx with to-tag) ──────────► Invitation::dialog → Dialog
//!               └──── request (Call-ID + tags) ────────────────► Dialog::on_request(now)
//!                                                                └► PeerRequest (with the reply)
//!  timer wheel ◄── next_deadline() ── every state machine ── on_timer(now) ◄── timer wheel
//! ```
//!
//! - [`message`]: [`Message`] parsing (UDP datagrams and, with [`frame`], TCP
//!   streams) and building, with typed header access.
//! - [`uri`]: [`SipUri`] and the generic `;name=value` [`Params`].
//! - [`header`]: typed header values: [`NameAddr`] (From, To, Contact, Route),
//!   [`Via`], [`CSeq`], [`Method`], [`SessionExpires`].
//! - [`digest`]: HTTP digest authentication (RFC 2617, RFC 3261 §22), on
//!   [`md5`] (RFC 1321).
//! - [`transaction`]: the client INVITE and non-INVITE transactions (RFC 3261
//!   §17.1, with RFC 6026's Accepted state) on caller-supplied time.
//! - [`dialog`]: the UAC side of one call: [`Invitation`] before the dialog
//!   exists (INVITE, authenticated retry, CANCEL), then [`Dialog`] (ACK, BYE,
//!   re-INVITE, UPDATE, INFO picture_fast_update, OPTIONS, the peer's requests,
//!   RFC 4028 session timers).
//!
//! What this module does not do: resolve names (RFC 3263), pick transports,
//! hold sockets or connections, run server transactions for the peer's
//! requests beyond answering retransmissions from a cache, parse SDP (that is
//! [`crate::sdp`]), or fork
//! (one dialog per INVITE: an MCU answers once).
//!
//! Every input from the network is bounded ([`MAX_MESSAGE_BYTES`],
//! [`MAX_HEADERS`], [`MAX_LINE_BYTES`]) and every malformed input is a
//! [`SipError`], never a panic.

pub mod dialog;
pub mod digest;
pub mod header;
pub mod md5;
pub mod message;
mod syntax;
pub mod transaction;
pub mod uri;

pub use dialog::{
    CallConfig, Dialog, DialogId, DialogState, DialogTimerEvent, Invitation, PeerRequest,
    SessionTimer, SessionTimerConfig,
};
pub use digest::{Algorithm, Challenge, ChallengeKind, Credentials, DigestRequest};
pub use header::{CSeq, Method, NameAddr, Refresher, SessionExpires, Transport, Via};
pub use message::{
    Branch, CallId, Headers, MAX_HEADERS, MAX_LINE_BYTES, MAX_MESSAGE_BYTES, Message,
    RequestBuilder, SentBy, StartLine, Tag, frame, keepalive_len,
};
pub use transaction::{
    ClientTransaction, TimerConfig, TransactionAction, TransactionKey, TransactionState,
};
pub use uri::{Params, Scheme, SipUri};

/// Why SIP bytes were refused or an operation could not be carried out.
///
/// The variants say who is at fault: most mean the peer sent something
/// malformed or oversized; [`SipError::Unsupported`] means it is well-formed
/// but asks for something this code does not do; [`SipError::Misuse`] means
/// the caller used the API wrongly (a bug on our side).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SipError {
    /// The message (or the bytes buffered for it) exceeds the size limit.
    #[error("the SIP message is larger than {max} bytes")]
    TooLarge { max: usize },
    /// More header fields than the limit, counting each comma-separated value.
    #[error("the SIP message has more than {max} header fields")]
    TooManyHeaders { max: usize },
    /// One line (a folded header counts as one) exceeds the limit.
    #[error("a SIP header line is longer than {max} bytes")]
    LineTooLong { max: usize },
    /// The datagram ends before the empty line that closes the headers.
    #[error("the SIP message ends inside its headers")]
    Incomplete,
    /// Content-Length promises more body than the datagram holds.
    #[error("Content-Length is {declared} but only {available} body bytes are present")]
    Truncated { declared: usize, available: usize },
    /// Content-Length is not a number, or two Content-Length fields disagree.
    #[error("Content-Length is not a valid length")]
    BadContentLength,
    /// A stream message without Content-Length cannot be framed (RFC 3261 §18.3).
    #[error("a SIP message on a stream transport must carry Content-Length")]
    MissingContentLength,
    /// The start line is neither a request line nor a status line.
    #[error("malformed start line: {0}")]
    BadStartLine(String),
    /// A header line is not `name: value`, or contains forbidden bytes.
    #[error("malformed header line: {0}")]
    BadHeader(String),
    /// A mandatory header field is absent.
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    /// A header field's value does not follow its grammar.
    #[error("malformed {name} header: {reason}")]
    BadHeaderValue { name: String, reason: String },
    /// A SIP URI does not follow RFC 3261 §19.1.
    #[error("malformed SIP URI: {0}")]
    BadUri(String),
    /// Well-formed, but outside what this code implements (a URI scheme, an
    /// authentication scheme or algorithm, a SIP version).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The peer refused credentials computed from the configured password
    /// (a second, non-stale challenge for the same realm, RFC 3261 §22.2).
    #[error("the credentials for realm {realm:?} were rejected")]
    AuthenticationRejected { realm: String },
    /// A request that names another dialog (Call-ID or tags differ).
    #[error("the request does not belong to this dialog")]
    NotThisDialog,
    /// The API was called in a way or state that does not allow it.
    #[error("misuse: {0}")]
    Misuse(String),
}

impl SipError {
    pub(crate) fn bad_value(name: &str, reason: impl Into<String>) -> SipError {
        SipError::BadHeaderValue {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod traces;
