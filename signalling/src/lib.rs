//! confgate's wire protocols as pure, socket-free code.
//!
//! Everything here turns bytes or text received from a browser into typed
//! values, or typed values into bytes or text to send back, and nothing else:
//! no sockets, no async runtime, no clock and no global random number
//! generator (randomness is always an argument). Keeping the protocols pure
//! lets them be tested exhaustively, property tests included, and means that a
//! malformed input is always an error value, never a panic or a hung task.
//!
//! - [`events`]: conference events, snapshots and notification names.
//! - [`join_link`]: the codes at the end of a conference join link.
//! - [`jsonrpc`]: JSON-RPC 2.0 request and response envelopes.
//! - [`iq`]: the XMPP `<iq/>` stanzas carried by `org.user.processIQ`.
//! - [`methods`]: the typed parameters and results of the API methods.
//! - [`sdp`]: SDP offer/answer (RFC 3264) for the plain-RTP leg into the MCU.
//! - [`sip`]: SIP (RFC 3261) messages, digest auth, client transactions and the UAC dialog for the MCU bridge.

pub mod events;
pub mod fuzzing;
pub mod iq;
pub mod join_link;
pub mod jsonrpc;
pub mod methods;
pub mod sdp;
pub mod sip;
