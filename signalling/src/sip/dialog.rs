//! The UAC side of one call into the MCU: [`Invitation`] until a dialog
//! exists, then [`Dialog`] (RFC 3261 §12–§15, RFC 4028 session timers,
//! RFC 5168 fast-update requests).
//!
//! ```text
//!  Invitation::invite ──► INVITE ──401/407──► Invitation::authenticate ──► INVITE (CSeq+1)
//!        │                      ──422──────► Invitation::retry_with_min_se
//!        │                      ──1xx+tag / 2xx──► Invitation::dialog ──► Dialog
//!        └── Invitation::cancel (after a 1xx, RFC 3261 §9.1)
//!
//!  Dialog: ack(2xx) · bye · reinvite · update · info_picture_fast_update · options
//!          on_response(responses to those) · on_request(the peer's) → PeerRequest
//!          next_deadline / on_timer(now) → DialogTimerEvent (refresh due, expired)
//! ```
//!
//! Requests are returned as [`Message`]s; every one but ACK goes through a
//! [`super::ClientTransaction`], which the shell creates. Randomness (Call-ID,
//! tags, branches, cnonces) and time are arguments.

use std::time::{Duration, Instant};

use super::SipError;
use super::digest::{ChallengeKind, DigestRequest};
use super::header::{CSeq, Method, NameAddr, Refresher, SessionExpires};
use super::message::{Branch, CallId, Message, RequestBuilder, SentBy, Tag};
use super::uri::SipUri;

/// The methods this UA accepts inside a dialog, for Allow headers.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";
/// RFC 5168 §3.
pub const MEDIA_CONTROL_CONTENT_TYPE: &str = "application/media_control+xml";
/// The body of an INFO asking the peer's encoder for a key frame (RFC 5168 §3).
pub const PICTURE_FAST_UPDATE_XML: &str = "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\r\n\
<media_control>\r\n  <vc_primitive>\r\n    <to_encoder>\r\n      <picture_fast_update/>\r\n    \
</to_encoder>\r\n  </vc_primitive>\r\n</media_control>\r\n";
pub const SDP_CONTENT_TYPE: &str = "application/sdp";

/// RFC 4028 session timer settings for the calls this UA places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimerConfig {
    /// The session interval asked for, in seconds; 1800 by default (RFC 4028
    /// §4 recommends it). A refresh goes out at half of it.
    pub session_expires: u32,
    /// The smallest interval accepted from the peer, in seconds; 90 by
    /// default, RFC 4028's floor. Shorter means more refresh traffic.
    pub min_se: u32,
}

impl Default for SessionTimerConfig {
    fn default() -> SessionTimerConfig {
        SessionTimerConfig {
            session_expires: 1800,
            min_se: 90,
        }
    }
}

/// What the shell knows about a call before placing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallConfig {
    /// Who calls (the web member), without a tag.
    pub from: NameAddr,
    /// The conference at the MCU, without a tag.
    pub to: NameAddr,
    /// Where the INVITE is addressed, usually the URI of `to`.
    pub request_uri: SipUri,
    /// Where the MCU reaches this UA for the rest of the call.
    pub contact: SipUri,
    /// This UA's transport address, for the Via.
    pub sent_by: SentBy,
    /// A preloaded route (an outbound proxy); usually empty.
    pub route: Vec<NameAddr>,
    /// `None` to not ask for session timers.
    pub session_timer: Option<SessionTimerConfig>,
    /// Sent as User-Agent when set.
    pub user_agent: Option<String>,
}

/// The identity of a dialog from this UA's point of view.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
}

impl DialogId {
    /// The dialog a request from the peer names: its To tag is ours.
    pub fn of_request(request: &Message) -> Result<DialogId, SipError> {
        Ok(DialogId {
            call_id: request.call_id()?.to_owned(),
            local_tag: request.to()?.tag().unwrap_or_default().to_owned(),
            remote_tag: request.from()?.tag().unwrap_or_default().to_owned(),
        })
    }

    /// The dialog a response to our request names: its From tag is ours.
    pub fn of_response(response: &Message) -> Result<DialogId, SipError> {
        Ok(DialogId {
            call_id: response.call_id()?.to_owned(),
            local_tag: response.from()?.tag().unwrap_or_default().to_owned(),
            remote_tag: response.to()?.tag().unwrap_or_default().to_owned(),
        })
    }
}

/// A call being placed: the INVITE and what follows it until a dialog
/// exists.
#[derive(Debug, Clone)]
pub struct Invitation {
    config: CallConfig,
    call_id: CallId,
    local_tag: Tag,
    cseq: u32,
    session_expires: Option<u32>,
    offer: Vec<u8>,
    invite: Option<Message>,
    /// Credentials sent with the current INVITE: (header, realm, nonce, nc).
    answered: Vec<(ChallengeKind, String, String, u32)>,
}

impl Invitation {
    /// `first_cseq` is arbitrary below 2^31 (RFC 3261 §8.1.1.5); 1 is fine.
    pub fn new(config: CallConfig, call_id: CallId, local_tag: Tag, first_cseq: u32) -> Invitation {
        let session_expires = config
            .session_timer
            .map(|s| s.session_expires.max(s.min_se));
        Invitation {
            config,
            call_id,
            local_tag,
            cseq: first_cseq,
            session_expires,
            offer: Vec::new(),
            invite: None,
            answered: Vec::new(),
        }
    }

    pub fn call_id(&self) -> &CallId {
        &self.call_id
    }

    pub fn local_tag(&self) -> &Tag {
        &self.local_tag
    }

    /// The INVITE last built, which the current transaction carries.
    pub fn current_invite(&self) -> Option<&Message> {
        self.invite.as_ref()
    }

    /// The first INVITE, carrying `offer` (SDP; empty for a delayed offer).
    pub fn invite(&mut self, offer: Vec<u8>, branch: &Branch) -> Result<Message, SipError> {
        if self.invite.is_some() {
            return Err(SipError::Misuse("the INVITE was already built".into()));
        }
        self.offer = offer;
        let invite = self.build_invite(branch, &[])?;
        self.invite = Some(invite.clone());
        Ok(invite)
    }

    fn build_invite(
        &self,
        branch: &Branch,
        credentials: &[(&'static str, String)],
    ) -> Result<Message, SipError> {
        let c = &self.config;
        let mut b = RequestBuilder::new(Method::Invite, c.request_uri.clone())
            .via(c.sent_by.via(branch))
            .from(
                c.from
                    .clone()
                    .without_tag()
                    .with_tag(self.local_tag.as_str()),
            )
            .to(c.to.clone().without_tag())
            .call_id(self.call_id.as_str())
            .cseq(self.cseq)
            .contact(NameAddr::new(c.contact.clone()));
        for route in &c.route {
            b = b.route(route.clone());
        }
        for (name, value) in credentials {
            b = b.header(name, value);
        }
        b = b.header("Allow", ALLOW);
        if let (Some(timer), Some(expires)) = (c.session_timer, self.session_expires) {
            b = b
                .header("Supported", "timer")
                .header(
                    "Session-Expires",
                    &SessionExpires {
                        delta: expires,
                        refresher: Some(Refresher::Uac),
                    }
                    .to_string(),
                )
                .header("Min-SE", &timer.min_se.max(90).to_string());
        }
        if let Some(ua) = &c.user_agent {
            b = b.header("User-Agent", ua);
        }
        if !self.offer.is_empty() {
            b = b.body(SDP_CONTENT_TYPE, self.offer.clone());
        }
        b.build()
    }

    /// The INVITE again, with credentials answering the 401 or 407
    /// `challenge` (RFC 3261 §22.2): CSeq + 1, a new branch, same Call-ID and
    /// tag. A second non-stale challenge for a realm already answered means
    /// the password is wrong: [`SipError::AuthenticationRejected`].
    pub fn authenticate(
        &mut self,
        challenge: &Message,
        username: &str,
        password: &str,
        cnonce: &str,
        branch: &Branch,
    ) -> Result<Message, SipError> {
        self.check_own_final(challenge, &[401, 407])?;
        let challenges = challenge.challenges()?;
        if challenges.is_empty() {
            return Err(SipError::Unsupported(
                "a 401/407 without a digest challenge this code can answer".into(),
            ));
        }
        let uri = self.config.request_uri.to_string();
        let mut credentials = Vec::new();
        let mut answered = Vec::new();
        for c in &challenges {
            if answered.iter().any(
                |(kind, realm, _, _): &(ChallengeKind, String, String, u32)| {
                    *kind == c.kind && *realm == c.realm
                },
            ) {
                continue;
            }
            let previous = self
                .answered
                .iter()
                .find(|(kind, realm, _, _)| *kind == c.kind && *realm == c.realm);
            if previous.is_some() && !c.stale {
                return Err(SipError::AuthenticationRejected {
                    realm: c.realm.clone(),
                });
            }
            let nc = match previous {
                Some((_, _, nonce, nc)) if *nonce == c.nonce => nc + 1,
                _ => 1,
            };
            let creds = c.respond(&DigestRequest {
                method: Method::Invite.as_str(),
                uri: &uri,
                username,
                password,
                cnonce,
                nc,
                body: &self.offer,
            })?;
            credentials.push((c.kind.credentials_header(), creds.to_header_value()));
            answered.push((c.kind, c.realm.clone(), c.nonce.clone(), nc));
        }
        self.next_cseq()?;
        let invite = self.build_invite(branch, &credentials)?;
        self.answered = answered;
        self.invite = Some(invite.clone());
        Ok(invite)
    }

    /// The INVITE again after a 422 (RFC 4028 §7.4): the session interval is
    /// raised to the response's Min-SE, with CSeq + 1 and a new branch.
    pub fn retry_with_min_se(
        &mut self,
        response: &Message,
        branch: &Branch,
    ) -> Result<Message, SipError> {
        self.check_own_final(response, &[422])?;
        let min_se = response
            .min_se()?
            .ok_or(SipError::MissingHeader("Min-SE"))?;
        let current = self.session_expires.unwrap_or(0);
        if min_se <= current {
            return Err(SipError::bad_value(
                "Min-SE",
                format!("{min_se} does not exceed the interval already asked for ({current})"),
            ));
        }
        self.session_expires = Some(min_se);
        if let Some(timer) = &mut self.config.session_timer {
            timer.min_se = timer.min_se.max(min_se);
        } else {
            self.config.session_timer = Some(SessionTimerConfig {
                session_expires: min_se,
                min_se,
            });
        }
        self.next_cseq()?;
        let credentials: Vec<(&'static str, String)> = self
            .invite
            .as_ref()
            .map(|i| {
                ["Authorization", "Proxy-Authorization"]
                    .into_iter()
                    .flat_map(|h| i.headers.get_all(h).map(move |v| (h, v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let invite = self.build_invite(branch, &credentials)?;
        self.invite = Some(invite.clone());
        Ok(invite)
    }

    /// The CANCEL for the current INVITE (RFC 3261 §9.1): same Request-URI,
    /// Call-ID, From, To, CSeq number and top Via (so the same branch), with
    /// CSeq method CANCEL. Send it only after a provisional response
    /// ([`super::ClientTransaction::can_cancel`]) and tell the INVITE
    /// transaction ([`super::ClientTransaction::cancel_sent`]).
    pub fn cancel(&self) -> Result<Message, SipError> {
        let invite = self
            .invite
            .as_ref()
            .ok_or_else(|| SipError::Misuse("no INVITE to cancel".into()))?;
        cancel_for(invite)
    }

    /// The dialog a 2xx, or a 1xx with a To tag, creates (RFC 3261 §12.1.2).
    pub fn dialog(&self, response: &Message, now: Instant) -> Result<Dialog, SipError> {
        let invite = self
            .invite
            .as_ref()
            .ok_or_else(|| SipError::Misuse("no INVITE was sent".into()))?;
        self.check_own(response)?;
        let status = response.status().unwrap_or_default();
        let to = response.to()?;
        let remote_tag = to
            .tag()
            .ok_or_else(|| SipError::bad_value("To", "a dialog-creating response without a tag"))?
            .to_owned();
        let state = match status {
            101..=199 => DialogState::Early,
            200..=299 => DialogState::Confirmed,
            _ => {
                return Err(SipError::Misuse(format!(
                    "a {status} response creates no dialog"
                )));
            }
        };
        let mut dialog = Dialog {
            id: DialogId {
                call_id: self.call_id.as_str().to_owned(),
                local_tag: self.local_tag.as_str().to_owned(),
                remote_tag,
            },
            state,
            local_uri: self.config.from.clone().without_tag(),
            remote_uri: to.without_tag(),
            remote_target: self.config.request_uri.clone(),
            route_set: Vec::new(),
            local_cseq: self.cseq,
            remote_cseq: None,
            contact: self.config.contact.clone(),
            sent_by: self.config.sent_by.clone(),
            user_agent: self.config.user_agent.clone(),
            invite_cseq: self.cseq,
            invite_credentials: ["Authorization", "Proxy-Authorization"]
                .into_iter()
                .flat_map(|h| invite.headers.get_all(h).map(move |v| (h, v.to_owned())))
                .collect(),
            peer_allows: Vec::new(),
            acks: Vec::new(),
            session_config: self.config.session_timer,
            session_expires: self.session_expires,
            session: None,
            pending_local_offer: None,
            pending_peer_offer: None,
            last_peer_request: None,
        };
        dialog.absorb_target_and_routes(response)?;
        if state == DialogState::Confirmed {
            dialog.negotiate_from_response(response, now)?;
        }
        Ok(dialog)
    }

    /// A response to the current INVITE: Call-ID, From tag and CSeq agree.
    fn check_own(&self, response: &Message) -> Result<(), SipError> {
        if !response.is_response() {
            return Err(SipError::Misuse("expected a response".into()));
        }
        let cseq = response.cseq()?;
        if response.call_id()? != self.call_id.as_str()
            || response.from()?.tag() != Some(self.local_tag.as_str())
            || cseq.method != Method::Invite
            || cseq.seq != self.cseq
        {
            return Err(SipError::Misuse(
                "the response does not answer the current INVITE".into(),
            ));
        }
        Ok(())
    }

    fn check_own_final(&self, response: &Message, statuses: &[u16]) -> Result<(), SipError> {
        self.check_own(response)?;
        let status = response.status().unwrap_or_default();
        if !statuses.contains(&status) {
            return Err(SipError::Misuse(format!(
                "expected {statuses:?}, got {status}"
            )));
        }
        Ok(())
    }

    fn next_cseq(&mut self) -> Result<(), SipError> {
        self.cseq = next_seq(self.cseq)?;
        Ok(())
    }
}

fn next_seq(seq: u32) -> Result<u32, SipError> {
    seq.checked_add(1)
        .filter(|s| *s <= super::header::MAX_CSEQ)
        .ok_or_else(|| SipError::Misuse("the CSeq number would reach 2^31".into()))
}

/// The CANCEL for a pending INVITE (RFC 3261 §9.1).
pub fn cancel_for(invite: &Message) -> Result<Message, SipError> {
    if invite.method() != Some(&Method::Invite) {
        return Err(SipError::Misuse("only an INVITE is cancelled".into()));
    }
    let uri = invite
        .request_uri()
        .cloned()
        .ok_or_else(|| SipError::Misuse("only an INVITE is cancelled".into()))?;
    let cseq = invite.cseq()?;
    let mut headers = super::message::Headers::new();
    let via = invite
        .headers
        .get("Via")
        .ok_or(SipError::MissingHeader("Via"))?;
    headers.push_known("Via", via);
    headers.push_known("Max-Forwards", super::message::DEFAULT_MAX_FORWARDS);
    for route in invite.headers.get_all("Route") {
        headers.push_known("Route", route);
    }
    headers.push_known("From", invite.from()?);
    headers.push_known("To", invite.to()?);
    headers.push_known("Call-ID", invite.call_id()?);
    headers.push_known(
        "CSeq",
        CSeq {
            seq: cseq.seq,
            method: Method::Cancel,
        },
    );
    Ok(Message {
        start_line: super::message::StartLine::Request {
            method: Method::Cancel,
            uri,
        },
        headers,
        body: Vec::new(),
    })
}

/// RFC 3261 §12: early (from a 1xx with a tag), confirmed (from a 2xx), or
/// over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    Early,
    Confirmed,
    Terminated,
}

/// RFC 4028 bookkeeping for a confirmed dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    interval: Duration,
    local_refreshes: bool,
    refreshed_at: Instant,
    refresh_reported: bool,
    expiry_reported: bool,
}

impl SessionTimer {
    fn new(delta: u32, local_refreshes: bool, now: Instant) -> SessionTimer {
        SessionTimer {
            interval: Duration::from_secs(u64::from(delta)),
            local_refreshes,
            refreshed_at: now,
            refresh_reported: false,
            expiry_reported: false,
        }
    }

    /// The negotiated session interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether this UA sends the refreshes.
    pub fn we_refresh(&self) -> bool {
        self.local_refreshes
    }

    /// When this UA should refresh: half the interval after the last
    /// refresh (RFC 4028 §10). `None` when the peer refreshes.
    pub fn refresh_at(&self) -> Option<Instant> {
        self.local_refreshes
            .then(|| self.refreshed_at + self.interval / 2)
    }

    /// When the session is over without a refresh: the interval minus the
    /// smaller of 32 s and a third of it (RFC 4028 §10), at which the side
    /// that saw no refresh sends BYE.
    pub fn expires_at(&self) -> Instant {
        let margin = Duration::from_secs(32).min(self.interval / 3);
        self.refreshed_at + self.interval - margin
    }
}

/// What a timer of the dialog asks the shell to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogTimerEvent {
    /// Send a refresh: [`Dialog::reinvite`] with the current SDP, or
    /// [`Dialog::update`] without a body when the peer allows UPDATE.
    RefreshDue,
    /// No refresh came in time: send BYE ([`Dialog::bye`]) and end the call.
    SessionExpired,
}

/// A request from the peer inside the dialog, classified, with the response
/// to send where the dialog can give it alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerRequest {
    /// The peer hung up: send `response` (200); the dialog is terminated.
    Bye { response: Message },
    /// A re-INVITE or UPDATE with an SDP offer (or a re-INVITE without one,
    /// asking for ours): answer with [`Dialog::answer`] or refuse with
    /// [`Dialog::reject`].
    Offer {
        method: Method,
        offer: Option<Vec<u8>>,
    },
    /// An UPDATE without a body (a session refresh), already answered.
    Refreshed { response: Message },
    /// The ACK for our 2xx to the peer's re-INVITE, with the SDP answer when
    /// our 2xx carried the offer. Nothing to send.
    Ack { body: Option<Vec<u8>> },
    /// An INFO asking for a key frame (RFC 5168): send `response` (200) and
    /// request a key frame from the browser.
    PictureFastUpdate { response: Message },
    /// Any other INFO, answered with 200.
    Info {
        content_type: Option<String>,
        body: Vec<u8>,
        response: Message,
    },
    /// OPTIONS (a keep-alive or capability query), answered with 200.
    Options { response: Message },
    /// A CANCEL: the request it names is already answered, so 200 and no
    /// effect (RFC 3261 §9.2).
    Cancel { response: Message },
    /// A retransmission of the peer's last request: re-send the response
    /// given for it, if one was given yet.
    Retransmission { response: Option<Message> },
    /// Refused by the dialog itself: an out-of-order CSeq (500), a re-INVITE
    /// while one is pending (491 or 500), a method not implemented (501), a
    /// session interval too small (422), or a request after the dialog ended
    /// (481). Send `response`.
    Rejected { response: Message },
}

/// One confirmed (or early) dialog with the MCU, from the UAC side.
#[derive(Debug, Clone)]
pub struct Dialog {
    id: DialogId,
    state: DialogState,
    local_uri: NameAddr,
    remote_uri: NameAddr,
    remote_target: SipUri,
    /// In the order requests visit them (Record-Route reversed).
    route_set: Vec<NameAddr>,
    local_cseq: u32,
    remote_cseq: Option<u32>,
    contact: SipUri,
    sent_by: SentBy,
    user_agent: Option<String>,
    /// The CSeq of the INVITE whose 2xx the next ACK answers.
    invite_cseq: u32,
    invite_credentials: Vec<(&'static str, String)>,
    /// The methods of the peer's last Allow.
    peer_allows: Vec<String>,
    /// ACKs sent, by the CSeq of the INVITE they acknowledge, for 2xx
    /// retransmissions. Two at most: the initial INVITE's and the last
    /// re-INVITE's.
    acks: Vec<(u32, Message)>,
    session_config: Option<SessionTimerConfig>,
    session_expires: Option<u32>,
    session: Option<SessionTimer>,
    /// Our re-INVITE or UPDATE awaiting a final response (CSeq, method).
    pending_local_offer: Option<(u32, Method)>,
    /// The peer's re-INVITE or UPDATE awaiting our answer (CSeq, method).
    pending_peer_offer: Option<(u32, Method)>,
    /// The peer's last request (CSeq, method, top Via branch) and the
    /// response given to it, for retransmissions.
    last_peer_request: Option<(u32, Method, String, Option<Message>)>,
}

impl Dialog {
    pub fn id(&self) -> &DialogId {
        &self.id
    }

    pub fn state(&self) -> DialogState {
        self.state
    }

    /// Where in-dialog requests go (the peer's Contact).
    pub fn remote_target(&self) -> &SipUri {
        &self.remote_target
    }

    /// The route set, in the order requests visit it.
    pub fn route_set(&self) -> &[NameAddr] {
        &self.route_set
    }

    pub fn local_cseq(&self) -> u32 {
        self.local_cseq
    }

    pub fn remote_cseq(&self) -> Option<u32> {
        self.remote_cseq
    }

    pub fn session_timer(&self) -> Option<&SessionTimer> {
        self.session.as_ref()
    }

    /// Whether the peer's last Allow listed `method` (false when it sent
    /// none): decides between UPDATE and re-INVITE for a refresh.
    pub fn peer_allows(&self, method: &Method) -> bool {
        self.peer_allows
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method.as_str()))
    }

    /// Ends the dialog without a request: after a BYE transaction, a timeout
    /// or a 481/408 reported by the shell.
    pub fn terminate(&mut self) {
        self.state = DialogState::Terminated;
    }

    /// A later response to the initial INVITE (a 2xx after the early dialog's
    /// 1xx, or a retransmitted 2xx): confirms the dialog and recomputes the
    /// target and route set (RFC 3261 §13.2.2.4). A non-2xx final ends an
    /// early dialog.
    pub fn on_invite_response(&mut self, response: &Message, now: Instant) -> Result<(), SipError> {
        if DialogId::of_response(response)?.remote_tag != self.id.remote_tag
            || response.call_id()? != self.id.call_id
        {
            return Err(SipError::NotThisDialog);
        }
        let status = response.status().unwrap_or_default();
        match (self.state, status) {
            (DialogState::Early, 101..=199) => self.absorb_target_and_routes(response),
            (DialogState::Early, 200..=299) => {
                self.state = DialogState::Confirmed;
                self.absorb_target_and_routes(response)?;
                self.negotiate_from_response(response, now)
            }
            (DialogState::Early, 300..) => {
                self.state = DialogState::Terminated;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The ACK for a 2xx to the initial INVITE or to a re-INVITE (RFC 3261
    /// §13.2.2.4): the INVITE's CSeq number with method ACK, its
    /// credentials, an optional body (the SDP answer when the 2xx held the
    /// offer). For a retransmitted 2xx the same ACK is returned again and
    /// `branch` and `body` are ignored. ACK has no transaction: send it as is.
    pub fn ack(
        &mut self,
        response: &Message,
        branch: &Branch,
        body: Option<Vec<u8>>,
    ) -> Result<Message, SipError> {
        let cseq = response.cseq()?;
        if cseq.method != Method::Invite || !(200..=299).contains(&response.status().unwrap_or(0)) {
            return Err(SipError::Misuse(
                "only a 2xx to an INVITE is ACKed here".into(),
            ));
        }
        if let Some((_, ack)) = self.acks.iter().find(|(seq, _)| *seq == cseq.seq) {
            return Ok(ack.clone());
        }
        if self.state == DialogState::Terminated {
            return Err(SipError::Misuse("the dialog is over".into()));
        }
        let mut b = self.builder(Method::Ack, cseq.seq, branch);
        for (name, value) in &self.invite_credentials {
            b = b.header(name, value);
        }
        if let Some(body) = body {
            b = b.body(SDP_CONTENT_TYPE, body);
        }
        let ack = b.build()?;
        self.acks.push((cseq.seq, ack.clone()));
        if self.acks.len() > 2 {
            self.acks.remove(0);
        }
        Ok(ack)
    }

    /// BYE (RFC 3261 §15.1.1): the dialog is over as soon as it is sent.
    pub fn bye(&mut self, branch: &Branch) -> Result<Message, SipError> {
        let bye = self.request(Method::Bye, branch, None)?;
        self.state = DialogState::Terminated;
        Ok(bye)
    }

    /// A re-INVITE with `offer` (the current SDP for a plain session
    /// refresh, with the same o= version).
    pub fn reinvite(&mut self, branch: &Branch, offer: Vec<u8>) -> Result<Message, SipError> {
        if self.pending_local_offer.is_some() || self.pending_peer_offer.is_some() {
            return Err(SipError::Misuse(
                "an offer is already pending (RFC 3261 §14.1)".into(),
            ));
        }
        let request = self.request(Method::Invite, branch, Some((SDP_CONTENT_TYPE, offer)))?;
        self.pending_local_offer = Some((self.local_cseq, Method::Invite));
        Ok(request)
    }

    /// An UPDATE (RFC 3311), without a body for a session refresh.
    pub fn update(&mut self, branch: &Branch, offer: Option<Vec<u8>>) -> Result<Message, SipError> {
        if self.pending_local_offer.is_some() {
            return Err(SipError::Misuse(
                "a refresh or offer is already pending".into(),
            ));
        }
        let body = offer.map(|o| (SDP_CONTENT_TYPE, o));
        let request = self.request(Method::Update, branch, body)?;
        self.pending_local_offer = Some((self.local_cseq, Method::Update));
        Ok(request)
    }

    /// An INFO asking the MCU's encoder for a key frame (RFC 5168).
    pub fn info_picture_fast_update(&mut self, branch: &Branch) -> Result<Message, SipError> {
        self.request(
            Method::Info,
            branch,
            Some((
                MEDIA_CONTROL_CONTENT_TYPE,
                PICTURE_FAST_UPDATE_XML.as_bytes().to_vec(),
            )),
        )
    }

    /// An in-dialog OPTIONS (a keep-alive).
    pub fn options(&mut self, branch: &Branch) -> Result<Message, SipError> {
        self.request(Method::Options, branch, None)
    }

    /// Any in-dialog request but ACK and CANCEL (RFC 3261 §12.2.1.1), with
    /// the next local CSeq.
    pub fn request(
        &mut self,
        method: Method,
        branch: &Branch,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Message, SipError> {
        if matches!(method, Method::Ack | Method::Cancel) {
            return Err(SipError::Misuse(format!(
                "{method} is not built with Dialog::request"
            )));
        }
        if self.state != DialogState::Confirmed {
            return Err(SipError::Misuse(format!(
                "{method} needs a confirmed dialog, this one is {:?}",
                self.state
            )));
        }
        let seq = next_seq(self.local_cseq)?;
        let mut b = self.builder(method.clone(), seq, branch);
        if matches!(method, Method::Invite | Method::Update) {
            b = b
                .contact(NameAddr::new(self.contact.clone()))
                .header("Allow", ALLOW);
            b = self.session_headers(b);
        }
        if let Some((content_type, body)) = body {
            b = b.body(content_type, body);
        }
        let request = b.build()?;
        self.local_cseq = seq;
        Ok(request)
    }

    /// A final response to one of our in-dialog requests (after its
    /// transaction delivered it): target refresh and session timer on a 2xx
    /// to re-INVITE or UPDATE (RFC 3261 §12.2.1.2, RFC 4028 §7.2), the dialog
    /// ends on 481 or 408. For 422, the next refresh asks for the Min-SE.
    pub fn on_response(&mut self, response: &Message, now: Instant) -> Result<(), SipError> {
        let id = DialogId::of_response(response)?;
        if id.call_id != self.id.call_id || id.local_tag != self.id.local_tag {
            return Err(SipError::NotThisDialog);
        }
        let status = response.status().unwrap_or_default();
        if status < 200 {
            return Ok(());
        }
        let cseq = response.cseq()?;
        let answers_offer = self
            .pending_local_offer
            .as_ref()
            .is_some_and(|(seq, method)| *seq == cseq.seq && *method == cseq.method);
        if answers_offer {
            self.pending_local_offer = None;
        }
        match status {
            200..=299 if matches!(cseq.method, Method::Invite | Method::Update) => {
                if cseq.method == Method::Invite {
                    self.invite_cseq = cseq.seq;
                }
                self.absorb_target(response)?;
                self.negotiate_from_response(response, now)?;
            }
            422 => {
                if let Some(min_se) = response.min_se()? {
                    self.session_expires = Some(self.session_expires.unwrap_or(0).max(min_se));
                    if let Some(s) = &mut self.session {
                        s.refresh_reported = false;
                    }
                }
            }
            481 | 408 => self.state = DialogState::Terminated,
            _ => {}
        }
        Ok(())
    }

    /// A request from the peer. Requests naming another dialog are
    /// [`SipError::NotThisDialog`] (the shell answers 481).
    pub fn on_request(&mut self, request: &Message, now: Instant) -> Result<PeerRequest, SipError> {
        let Some(method) = request.method().cloned() else {
            return Err(SipError::Misuse("expected a request".into()));
        };
        let id = DialogId::of_request(request)?;
        if id != self.id {
            return Err(SipError::NotThisDialog);
        }
        let cseq = request.cseq()?;
        let branch = request.top_via()?.branch().unwrap_or_default().to_owned();

        // ACK and CANCEL carry the CSeq number of the request they concern.
        if method == Method::Ack {
            return Ok(PeerRequest::Ack {
                body: (!request.body.is_empty()).then(|| request.body.clone()),
            });
        }
        if method == Method::Cancel {
            return Ok(PeerRequest::Cancel {
                response: Message::response_to(request, 200, "OK", None)?,
            });
        }
        if let Some((seq, last_method, last_branch, response)) = &self.last_peer_request
            && *seq == cseq.seq
            && *last_method == method
            && *last_branch == branch
        {
            return Ok(PeerRequest::Retransmission {
                response: response.clone(),
            });
        }
        if self.state == DialogState::Terminated {
            return self.rejected(request, 481, "Call/Transaction Does Not Exist", &[]);
        }
        if let Some(remote) = self.remote_cseq
            && cseq.seq <= remote
        {
            return self.rejected(request, 500, "Server Internal Error", &[]);
        }
        self.remote_cseq = Some(cseq.seq);
        self.last_peer_request = Some((cseq.seq, method.clone(), branch, None));

        match method {
            Method::Bye => {
                self.state = DialogState::Terminated;
                let response = self.respond(request, 200, "OK")?;
                Ok(PeerRequest::Bye { response })
            }
            Method::Invite | Method::Update => {
                if self.pending_local_offer.is_some() {
                    // RFC 3261 §14.2 (glare): our own offer is outstanding.
                    return self.rejected(request, 491, "Request Pending", &[]);
                }
                if self.pending_peer_offer.is_some() {
                    return self.rejected(
                        request,
                        500,
                        "Server Internal Error",
                        &[("Retry-After", "1")],
                    );
                }
                if let Some(se) = request.session_expires()? {
                    let floor = self.session_config.map_or(90, |c| c.min_se);
                    if se.delta < floor {
                        return self.rejected(
                            request,
                            422,
                            "Session Interval Too Small",
                            &[("Min-SE", &floor.to_string())],
                        );
                    }
                }
                let offer = (!request.body.is_empty()).then(|| request.body.clone());
                if method == Method::Update && offer.is_none() {
                    let response = self.answer_inner(request, None, now)?;
                    return Ok(PeerRequest::Refreshed { response });
                }
                self.pending_peer_offer = Some((cseq.seq, method.clone()));
                Ok(PeerRequest::Offer { method, offer })
            }
            Method::Info => {
                let content_type = request.content_type();
                let response = self.respond(request, 200, "OK")?;
                let fast_update = content_type.as_deref() == Some(MEDIA_CONTROL_CONTENT_TYPE)
                    && String::from_utf8_lossy(&request.body).contains("picture_fast_update");
                if fast_update {
                    Ok(PeerRequest::PictureFastUpdate { response })
                } else {
                    Ok(PeerRequest::Info {
                        content_type,
                        body: request.body.clone(),
                        response,
                    })
                }
            }
            Method::Options => {
                let mut response = self.respond(request, 200, "OK")?;
                response.headers.push_known("Allow", ALLOW);
                response.headers.push_known("Accept", SDP_CONTENT_TYPE);
                self.cache_response(&response);
                Ok(PeerRequest::Options { response })
            }
            _ => self.rejected(request, 501, "Not Implemented", &[("Allow", ALLOW)]),
        }
    }

    /// The 200 to the peer's re-INVITE or UPDATE that [`Dialog::on_request`]
    /// reported as [`PeerRequest::Offer`], carrying `sdp` (the answer, or
    /// our offer when theirs had none). Updates the remote target and the
    /// session timer.
    pub fn answer(
        &mut self,
        request: &Message,
        sdp: Vec<u8>,
        now: Instant,
    ) -> Result<Message, SipError> {
        self.check_pending_peer_offer(request)?;
        self.pending_peer_offer = None;
        self.answer_inner(request, Some(sdp), now)
    }

    /// Refuses the peer's pending re-INVITE or UPDATE (488 Not Acceptable
    /// Here for an offer that cannot be answered); the session goes on as
    /// before.
    pub fn reject(
        &mut self,
        request: &Message,
        status: u16,
        reason: &str,
    ) -> Result<Message, SipError> {
        self.check_pending_peer_offer(request)?;
        if !(300..=699).contains(&status) {
            return Err(SipError::Misuse(format!("{status} is not a rejection")));
        }
        self.pending_peer_offer = None;
        self.respond(request, status, reason)
    }

    /// The next instant at which [`Dialog::on_timer`] has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        let s = self
            .session
            .as_ref()
            .filter(|_| self.state == DialogState::Confirmed)?;
        let refresh = s.refresh_at().filter(|_| !s.refresh_reported);
        let expiry = (!s.expiry_reported).then(|| s.expires_at());
        [refresh, expiry].into_iter().flatten().min()
    }

    /// Session-timer events due at `now`, each reported once.
    pub fn on_timer(&mut self, now: Instant) -> Vec<DialogTimerEvent> {
        let mut events = Vec::new();
        if self.state != DialogState::Confirmed {
            return events;
        }
        let Some(s) = &mut self.session else {
            return events;
        };
        if !s.expiry_reported && s.expires_at() <= now {
            s.expiry_reported = true;
            s.refresh_reported = true;
            events.push(DialogTimerEvent::SessionExpired);
        } else if !s.refresh_reported && s.refresh_at().is_some_and(|t| t <= now) {
            s.refresh_reported = true;
            events.push(DialogTimerEvent::RefreshDue);
        }
        events
    }

    fn check_pending_peer_offer(&self, request: &Message) -> Result<(), SipError> {
        let cseq = request.cseq()?;
        match &self.pending_peer_offer {
            Some((seq, method)) if *seq == cseq.seq && *method == cseq.method => Ok(()),
            _ => Err(SipError::Misuse(
                "the request is not the peer's pending offer".into(),
            )),
        }
    }

    fn answer_inner(
        &mut self,
        request: &Message,
        sdp: Option<Vec<u8>>,
        now: Instant,
    ) -> Result<Message, SipError> {
        let mut response = Message::response_to(request, 200, "OK", None)?;
        response
            .headers
            .push_known("Contact", NameAddr::new(self.contact.clone()));
        response.headers.push_known("Allow", ALLOW);
        // RFC 4028 §9: the UAS answers the interval; "uac" in the peer's
        // request means the peer refreshes.
        match request.session_expires()? {
            Some(se) => {
                let refresher = se.refresher.unwrap_or(Refresher::Uac);
                response.headers.push_known(
                    "Session-Expires",
                    SessionExpires {
                        delta: se.delta,
                        refresher: Some(refresher),
                    },
                );
                if request.supports("timer") || request.requires("timer") {
                    response.headers.push_known("Require", "timer");
                }
                self.session = Some(SessionTimer::new(
                    se.delta,
                    refresher == Refresher::Uas,
                    now,
                ));
            }
            None => self.session = None,
        }
        if let Some(sdp) = sdp {
            response.set_body(SDP_CONTENT_TYPE, sdp);
        }
        if let Some(contact) = request.contact()? {
            self.remote_target = contact.uri;
        }
        self.cache_response(&response);
        Ok(response)
    }

    /// A response to the peer's request, remembered for its retransmissions.
    fn respond(
        &mut self,
        request: &Message,
        status: u16,
        reason: &str,
    ) -> Result<Message, SipError> {
        let response = Message::response_to(request, status, reason, None)?;
        self.cache_response(&response);
        Ok(response)
    }

    fn rejected(
        &mut self,
        request: &Message,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) -> Result<PeerRequest, SipError> {
        let mut response = Message::response_to(request, status, reason, None)?;
        for (name, value) in extra {
            response.headers.push(name, value)?;
        }
        self.cache_response(&response);
        Ok(PeerRequest::Rejected { response })
    }

    fn cache_response(&mut self, response: &Message) {
        if let (Some((seq, method, _, cached)), Ok(cseq)) =
            (&mut self.last_peer_request, response.cseq())
            && *seq == cseq.seq
            && *method == cseq.method
        {
            *cached = Some(response.clone());
        }
    }

    /// Session-Expires, Min-SE and Supported for a request of ours.
    fn session_headers(&self, mut b: RequestBuilder) -> RequestBuilder {
        let Some(config) = self.session_config else {
            return b;
        };
        b = b.header("Supported", "timer");
        let delta = self
            .session
            .map(|s| u32::try_from(s.interval.as_secs()).unwrap_or(u32::MAX))
            .or(self.session_expires)
            .unwrap_or(config.session_expires);
        let delta = delta.max(self.session_expires.unwrap_or(0));
        // We are the UAC of this transaction: "uas" hands refreshing to the
        // peer when it held it.
        let refresher = match self.session {
            Some(s) if !s.local_refreshes => Refresher::Uas,
            _ => Refresher::Uac,
        };
        b = b.header(
            "Session-Expires",
            &SessionExpires {
                delta,
                refresher: Some(refresher),
            }
            .to_string(),
        );
        b.header("Min-SE", &config.min_se.max(90).to_string())
    }

    fn builder(&self, method: Method, seq: u32, branch: &Branch) -> RequestBuilder {
        // RFC 3261 §12.2.1.1: a loose first route keeps the remote target as
        // Request-URI; a strict one takes its place and the target goes last.
        let (uri, routes) = match self.route_set.first() {
            Some(first) if !first.uri.is_loose_router() => {
                let mut routes: Vec<NameAddr> = self.route_set[1..].to_vec();
                routes.push(NameAddr::new(self.remote_target.clone()));
                (first.uri.clone(), routes)
            }
            _ => (self.remote_target.clone(), self.route_set.clone()),
        };
        let mut b = RequestBuilder::new(method, uri)
            .via(self.sent_by.via(branch))
            .from(self.local_uri.clone().with_tag(&self.id.local_tag))
            .to(self.remote_uri.clone().with_tag(&self.id.remote_tag))
            .call_id(&self.id.call_id)
            .cseq(seq);
        for route in routes {
            b = b.route(route);
        }
        if let Some(ua) = &self.user_agent {
            b = b.header("User-Agent", ua);
        }
        b
    }

    /// Remote target and route set from a dialog-creating response (RFC 3261
    /// §12.1.2: the route set is the Record-Route in reverse order).
    fn absorb_target_and_routes(&mut self, response: &Message) -> Result<(), SipError> {
        let mut routes = response.record_route()?;
        routes.reverse();
        self.route_set = routes;
        self.absorb_target(response)
    }

    /// The remote target from a Contact, and what the peer allows. A 2xx
    /// without Contact breaks RFC 3261 §13.3.1.4; the previous target is
    /// kept rather than failing the call.
    fn absorb_target(&mut self, response: &Message) -> Result<(), SipError> {
        if let Some(contact) = response.contact()? {
            self.remote_target = contact.uri;
        }
        let allows: Vec<String> = response.option_tags("Allow").map(str::to_owned).collect();
        if !allows.is_empty() {
            self.peer_allows = allows;
        }
        Ok(())
    }

    /// RFC 4028 §7.2: the session timer from a 2xx to our INVITE or UPDATE.
    /// No Session-Expires means no timer; a missing refresher means we
    /// refresh.
    fn negotiate_from_response(
        &mut self,
        response: &Message,
        now: Instant,
    ) -> Result<(), SipError> {
        self.session = response.session_expires()?.map(|se| {
            let local = se.refresher.unwrap_or(Refresher::Uac) == Refresher::Uac;
            SessionTimer::new(se.delta, local, now)
        });
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;
