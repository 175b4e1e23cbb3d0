//! `/gzbwclient/websck?token=JWT`: a member's live connection.
//!
//! JSON-RPC 2.0 both ways: the page sends requests (`conference.join`,
//! `conference.setAudio`, `media.offer`, …), the server sends notifications
//! (`conference.event`, `conference.snapshot`, `media.offer`, …).
//!
//! The original design's subscription flow: on connect the user's event
//! subscription starts (the page gets a snapshot, or the events it missed when
//! it passes `lastSeq`); on disconnect it is cancelled; on reconnect it is
//! made again. A member whose connection drops stays in the conference for a
//! grace period, so a reconnect is not a leave and a join.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Response};
use confgate_signalling::events::{ConferenceEvent, Snapshot, notify};
use confgate_signalling::jsonrpc::{self, Call, ErrorObject, Parsed, Request};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, header};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::room::RoomError;
use crate::rooms::{Initial, Push, RoomCommand, SessionId};
use crate::store::{Conference, ConferenceState, UserRow, now_ms};

/// Messages larger than this are refused (the connection is closed with
/// "message too big"): an SDP offer with simulcast fits in a quarter of it.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Pushes queued for one session; past this the session is too slow and the
/// room drops what does not fit (the client recovers with a snapshot).
const OUTBOX: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WsQuery {
    token: Option<String>,
    /// For a chair account (no conference in its token): which conference.
    conf_id: Option<String>,
    /// The last event sequence number the page saw, when reconnecting.
    last_seq: Option<u64>,
}

pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let (user, conf) = match admit(&state, &query, &headers).await {
        Ok(pair) => pair,
        Err(e) => return e.into_response(),
    };
    let last_seq = query.last_seq;
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            tracing::debug!(%remote, user_id = %user.user_id, conf_id = %conf.conf_id, "websocket open");
            Session::run(state, socket, user, conf, last_seq).await;
        })
}

/// Checks the token, the origin and the conference before the upgrade.
async fn admit(
    state: &AppState,
    query: &WsQuery,
    headers: &HeaderMap,
) -> AppResult<(UserRow, Conference)> {
    let user = crate::rpc::authenticate(state, query.token.as_deref())
        .await?
        .user;
    check_origin(state, headers)?;
    let conf_id = match (&user.conf_id, &query.conf_id) {
        (Some(own), _) => own.clone(),
        (None, Some(asked)) => asked.clone(),
        (None, None) => {
            return Err(AppError::InvalidParams(
                "confId is required for this account".into(),
            ));
        }
    };
    let conf = state
        .authority
        .conference(conf_id.clone())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no conference {conf_id}")))?;
    if user.conf_id.is_none() && conf.chair_user_id.as_deref() != Some(user.user_id.as_str()) {
        return Err(AppError::Forbidden(
            "this account does not chair that conference".into(),
        ));
    }
    // One node serves a conference: a second room elsewhere would split it.
    let serving = crate::nodes::serving(state, &conf.conf_id).await;
    if !serving.here {
        return Err(AppError::Conflict(format!(
            "conference {} is served by another node: connect to {}",
            conf.conf_id,
            serving.gateways.join(",")
        )));
    }
    Ok((user, conf))
}

/// Browsers send `Origin`: it must be this server's own or a configured one.
fn check_origin(state: &AppState, headers: &HeaderMap) -> AppResult<()> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let own = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host));
    let listed = state
        .config
        .websocket
        .allowed_origins
        .iter()
        .any(|o| o.trim_end_matches('/') == origin);
    // Pages of the pool's other nodes (live, or seen since this node
    // started: a page outlives its node), sent here to the node that serves
    // their conference.
    if own
        || listed
        || state.config.public_base_url() == origin
        || crate::nodes::is_pool_origin(state, origin)
    {
        Ok(())
    } else {
        tracing::warn!(%origin, "websocket refused: origin not allowed");
        Err(AppError::Forbidden(format!(
            "origin {origin} is not allowed"
        )))
    }
}

/// A request that takes this long is logged: a page's requests are answered in
/// order, so it delayed every later one.
const SLOW_REQUEST: Duration = Duration::from_millis(500);

struct Session {
    state: Arc<AppState>,
    id: SessionId,
    user: UserRow,
    conf: Conference,
    room: mpsc::Sender<RoomCommand>,
    outbox: mpsc::Sender<Push>,
    joined: bool,
    /// Requests in the current one-second window, and windows spent over the
    /// limit.
    window: (Instant, u32),
    floods: u32,
}

enum Flow {
    Continue,
    Close(&'static str),
}

impl Session {
    async fn run(
        state: Arc<AppState>,
        socket: WebSocket,
        user: UserRow,
        conf: Conference,
        last_seq: Option<u64>,
    ) {
        let id = state.next_session.fetch_add(1, Relaxed);
        let conf_state = match conf.state(now_ms()) {
            ConferenceState::Live => 0,
            ConferenceState::NotStarted => 30,
            ConferenceState::Ended => 31,
        };
        let room = state.rooms.room(&conf, conf_state);
        let (outbox, mut pushes) = mpsc::channel(OUTBOX);
        let (mut sink, mut stream) = socket.split();
        let mut session = Session {
            state: state.clone(),
            id,
            user,
            conf,
            room,
            outbox,
            joined: false,
            window: (Instant::now(), 0),
            floods: 0,
        };

        // Subscribe (the seed's subscription flow) and send where to start.
        let (reply, watch) = oneshot::channel();
        if session
            .room
            .send(RoomCommand::Watch {
                since: last_seq,
                reply,
            })
            .await
            .is_err()
        {
            return;
        }
        let Ok(watch) = watch.await else { return };
        let mut events = watch.events;
        let initial = match watch.initial {
            Initial::Snapshot(snapshot) => vec![snapshot_notification(&snapshot)],
            Initial::Events(missed) => missed.iter().map(event_notification).collect(),
            Initial::Gap {
                from,
                to,
                logged,
                snapshot,
            } => match stored_run(&state, &session.conf.conf_id, from, to).await {
                Some(stored) => stored
                    .iter()
                    .chain(logged.iter())
                    .map(event_notification)
                    .collect(),
                None => vec![snapshot_notification(&snapshot)],
            },
        };
        for text in initial {
            if sink.send(Message::Text(text)).await.is_err() {
                return;
            }
        }

        let ws = &state.config.websocket;
        let mut ping = tokio::time::interval(Duration::from_secs(ws.ping_interval_secs));
        ping.tick().await;
        let idle = Duration::from_secs(ws.idle_timeout_secs);
        let mut last_heard = Instant::now();
        let reason: &'static str = loop {
            tokio::select! {
                incoming = stream.next() => {
                    let Some(Ok(message)) = incoming else { break "connection closed" };
                    last_heard = Instant::now();
                    let text = match message {
                        Message::Text(text) => text,
                        Message::Binary(_) => {
                            let reply = jsonrpc::Response::error(Value::Null, ErrorObject::invalid_request("binary messages are not JSON-RPC"));
                            if send_json(&mut sink, &reply).await.is_err() { break "connection closed" }
                            continue;
                        }
                        Message::Close(_) => break "closed by the client",
                        Message::Ping(_) | Message::Pong(_) => continue,
                    };
                    match session.handle(text.as_str()).await {
                        (Some(reply), flow) => {
                            if sink.send(Message::Text(reply.to_string().into())).await.is_err() { break "connection closed" }
                            if let Flow::Close(why) = flow { break why }
                        }
                        (None, Flow::Close(why)) => break why,
                        (None, Flow::Continue) => {}
                    }
                }
                event = events.recv() => match event {
                    Ok(event) => {
                        if sink.send(Message::Text(event_notification(&event))).await.is_err() { break "connection closed" }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => break "too slow to receive events; reconnect with lastSeq",
                    Err(broadcast::error::RecvError::Closed) => break "the conference closed",
                },
                push = pushes.recv() => match push {
                    Some(Push::Notify(value)) => {
                        if sink.send(Message::Text(value.to_string().into())).await.is_err() { break "connection closed" }
                    }
                    Some(Push::Close(why)) => {
                        // Events the room published before closing us go out
                        // first: a removed member learns why, an ended
                        // conference says so.
                        while let Ok(event) = events.try_recv() {
                            if sink.send(Message::Text(event_notification(&event))).await.is_err() { break }
                        }
                        break why;
                    }
                    None => break "closed",
                },
                _ = ping.tick() => {
                    if last_heard.elapsed() > idle {
                        break "idle timeout";
                    }
                    if sink.send(Message::Ping(Default::default())).await.is_err() { break "connection closed" }
                }
            }
        };
        tracing::debug!(user_id = %session.user.user_id, reason, "websocket closing");
        let goodbye = jsonrpc::notification(notify::SESSION_CLOSED, json!({ "reason": reason }));
        let _ = sink.send(Message::Text(goodbye.to_string().into())).await;
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: Utf8Bytes::from_static("bye"),
            })))
            .await;
        if session.joined {
            let _ = session
                .room
                .send(RoomCommand::SessionClosed {
                    user_id: session.user.user_id.clone(),
                    session: id,
                })
                .await;
        }
    }

    /// One incoming text: the reply to send, if any, and whether to go on.
    async fn handle(&mut self, text: &str) -> (Option<Value>, Flow) {
        let call = match jsonrpc::parse_call(text.as_bytes()) {
            Ok(call) => call,
            Err(reply) => return (serde_json::to_value(reply).ok(), Flow::Continue),
        };
        match call {
            Call::Single(parsed) => {
                let (reply, flow) = self.one(parsed).await;
                (reply.and_then(|r| serde_json::to_value(r).ok()), flow)
            }
            Call::Batch(items) => {
                let mut replies = Vec::new();
                let mut flow = Flow::Continue;
                for parsed in items {
                    let (reply, f) = self.one(parsed).await;
                    replies.extend(reply.and_then(|r| serde_json::to_value(r).ok()));
                    if let Flow::Close(why) = f {
                        flow = Flow::Close(why);
                        break;
                    }
                }
                ((!replies.is_empty()).then_some(Value::Array(replies)), flow)
            }
        }
    }

    async fn one(&mut self, parsed: Parsed) -> (Option<jsonrpc::Response>, Flow) {
        let request = match parsed {
            Ok(r) => r,
            Err(invalid) => return (Some(invalid), Flow::Continue),
        };
        let mut flow = Flow::Continue;
        let outcome = if let Some(limited) = self.rate_limit() {
            if self.floods > 5 {
                flow = Flow::Close("too many requests");
            }
            Err(limited)
        } else {
            let started = Instant::now();
            let result = self.dispatch(&request).await;
            let took = started.elapsed();
            if took >= SLOW_REQUEST {
                tracing::warn!(
                    method = %request.method,
                    user_id = %self.user.user_id,
                    took_ms = took.as_millis() as u64,
                    "slow request: later requests on this connection waited for it"
                );
            }
            if request.method == "conference.leave" && result.is_ok() {
                flow = Flow::Close("left the conference");
            }
            result
        };
        let Some(id) = request.id else {
            return (None, flow);
        };
        let reply = match outcome {
            Ok(v) => jsonrpc::Response::success(id, v),
            Err(e) => jsonrpc::Response::error(id, e),
        };
        (Some(reply), flow)
    }

    fn rate_limit(&mut self) -> Option<ErrorObject> {
        let now = Instant::now();
        if now.duration_since(self.window.0) >= Duration::from_secs(1) {
            self.window = (now, 0);
        }
        self.window.1 += 1;
        let limit = self
            .state
            .config
            .websocket
            .requests_per_second
            .saturating_mul(2);
        if self.window.1 <= limit {
            return None;
        }
        if self.window.1 == limit + 1 {
            self.floods += 1;
            tracing::warn!(user_id = %self.user.user_id, "websocket request flood");
        }
        Some(
            AppError::Throttled {
                retry_after_secs: 1,
            }
            .to_rpc(),
        )
    }

    async fn dispatch(&mut self, req: &Request) -> Result<Value, ErrorObject> {
        let result = match req.method.as_str() {
            "conference.join" => self.join(req.params()?).await,
            method if !self.joined => {
                return Err(
                    AppError::Forbidden(format!("{method}: join the conference first")).to_rpc(),
                );
            }
            "conference.leave" => self.leave().await,
            "conference.setAudio" => {
                let p: SetAudio = req.params()?;
                let target = self.user.user_id.clone();
                self.set_audio(target, p.muted).await
            }
            "conference.muteMember" => {
                let p: MuteMember = req.params()?;
                self.set_audio(p.user_id, p.muted).await
            }
            "conference.setVideo" => {
                let p: SetVideo = req.params()?;
                let user_id = self.user.user_id.clone();
                self.ask(|reply| RoomCommand::SetVideo {
                    user_id,
                    enabled: p.enabled,
                    reply,
                })
                .await
            }
            "conference.setMainVideo" => {
                let p: SetMainVideo = req.params()?;
                let by = self.user.user_id.clone();
                self.ask(|reply| RoomCommand::Pin {
                    by,
                    target: p.user_id,
                    reply,
                })
                .await
            }
            "conference.removeMember" => {
                let p: RemoveMember = req.params()?;
                let by = self.user.user_id.clone();
                self.ask(|reply| RoomCommand::Remove {
                    by,
                    target: p.user_id,
                    reply,
                })
                .await
            }
            "media.offer" => {
                let p: Sdp = req.params()?;
                self.publish(p.sdp).await
            }
            "media.answer" => {
                let p: Sdp = req.params()?;
                let media = self.media()?;
                media
                    .subscriber_answer(self.user.user_id.clone(), p.sdp)
                    .await
                    .map_err(media_error)
                    .map(|()| json!({}))
            }
            "media.candidate" => {
                let p: Candidate = req.params()?;
                let media = self.media()?;
                let candidate = p.candidate.and_then(|c| c.candidate).unwrap_or_default();
                media
                    .remote_candidate(self.user.user_id.clone(), p.leg.into(), candidate)
                    .await
                    .map_err(media_error)
                    .map(|()| json!({}))
            }
            "media.restartIce" => {
                let p: RestartIce = req.params()?;
                match p.leg {
                    LegName::Subscribe => self.subscribe().await.map(|()| json!({})),
                    // The page restarts its own offer: it sends a new media.offer
                    // made with iceRestart.
                    LegName::Publish => Ok(json!({})),
                }
            }
            other => return Err(ErrorObject::method_not_found(other)),
        };
        self.state.metrics.rpc(&req.method, result.is_ok());
        result.map_err(|e| e.to_rpc())
    }

    async fn join(&mut self, p: JoinParams) -> AppResult<Value> {
        if self.joined {
            return Err(AppError::Conflict(
                "already joined on this connection".into(),
            ));
        }
        if self.conf.state(now_ms()) != ConferenceState::Live {
            return Err(AppError::Forbidden("the conference is not live".into()));
        }
        let (reply, rx) = oneshot::channel();
        let command = RoomCommand::Join {
            user_id: self.user.user_id.clone(),
            name: self.user.name.clone(),
            sip_account: self.user.sip_account.clone(),
            session: self.id,
            outbox: self.outbox.clone(),
            audio_muted: p.audio_muted,
            video_enabled: p.video_enabled,
            reply,
        };
        self.room.send(command).await.map_err(|_| closed())?;
        let member = rx.await.map_err(|_| closed())?.map_err(room_error)?;
        self.joined = true;
        self.state
            .rooms
            .bind_member(&self.user.user_id, &self.conf.conf_id);
        // The subscriber connection starts at once: the page receives the
        // others whether or not it publishes.
        if let Err(e) = self.subscribe().await {
            tracing::warn!(user_id = %self.user.user_id, error = %e, "subscriber offer failed");
        }
        // A conference bound to an MCU: the page prefers the MCU's codecs
        // when it publishes, so that nothing needs transcoding.
        let mut result = json!({ "confId": self.conf.conf_id, "member": member });
        match self.state.store.mcu_binding(&self.conf.conf_id).await {
            Ok(Some(binding)) => {
                let codecs: Vec<&str> = binding.codecs.split(',').collect();
                result["mcu"] = json!({ "codecs": codecs });
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the MCU binding"),
        }
        Ok(result)
    }

    fn media(&self) -> AppResult<&confgate_media::Media> {
        self.state
            .media
            .as_ref()
            .ok_or_else(|| AppError::Internal("no media plane on this node".into()))
    }

    async fn publish(&mut self, offer: String) -> AppResult<Value> {
        let media = self.media()?;
        let answer = media
            .publish(self.conf.conf_id.clone(), self.user.user_id.clone(), offer)
            .await
            .map_err(media_error)?;
        // A member who joined muted or with the camera off stays so on the
        // new connection.
        let command = RoomCommand::MediaPublished {
            user_id: self.user.user_id.clone(),
        };
        self.room.send(command).await.map_err(|_| closed())?;
        Ok(json!({ "sdp": answer }))
    }

    /// Makes a subscriber offer and queues it for the page.
    async fn subscribe(&mut self) -> AppResult<()> {
        let media = self.media()?;
        let offer = media
            .subscribe(self.conf.conf_id.clone(), self.user.user_id.clone())
            .await
            .map_err(media_error)?;
        // The outbox is drained by this session's own loop right after the
        // current request is answered.
        let _ = self
            .outbox
            .try_send(Push::Notify(crate::rooms::media_offer(&offer)));
        Ok(())
    }

    async fn leave(&mut self) -> AppResult<Value> {
        let command = RoomCommand::Leave {
            user_id: self.user.user_id.clone(),
            session: self.id,
        };
        self.room.send(command).await.map_err(|_| closed())?;
        self.joined = false;
        Ok(json!({}))
    }

    async fn set_audio(&mut self, target: String, muted: bool) -> AppResult<Value> {
        let by = self.user.user_id.clone();
        self.ask(|reply| RoomCommand::SetAudio {
            by,
            target,
            muted,
            reply,
        })
        .await
    }

    async fn ask(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<(), RoomError>>) -> RoomCommand,
    ) -> AppResult<Value> {
        let (reply, rx) = oneshot::channel();
        self.room.send(command(reply)).await.map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?.map_err(room_error)?;
        Ok(json!({}))
    }
}

/// The media plane's errors on the wire: the peer's faults are -32602 with
/// the reason; ours are logged and internal.
fn media_error(e: confgate_media::MediaError) -> AppError {
    use confgate_media::MediaError as M;
    match e {
        M::BadSdp(_) | M::BadCandidate(_) | M::Incompatible(_) => {
            AppError::InvalidParams(e.to_string())
        }
        M::NoSuchMember(_) | M::NoOfferPending(_) => AppError::Conflict(format!(
            "{e}: send media.offer or wait for a server offer first"
        )),
        M::OtherRoom { .. } => AppError::Conflict(e.to_string()),
        other => AppError::Internal(other.to_string()),
    }
}

fn closed() -> AppError {
    AppError::Internal("room task stopped".into())
}

fn room_error(e: RoomError) -> AppError {
    match e {
        RoomError::NotAMember => AppError::Forbidden(e.to_string()),
        RoomError::NotChair => AppError::Forbidden(e.to_string()),
        RoomError::NoSuchMember(_) => AppError::NotFound(e.to_string()),
    }
}

/// How long a reconnecting page waits for the store before it gets a
/// snapshot instead of the events it missed.
const CATCH_UP_WAIT: Duration = Duration::from_secs(3);

/// The stored events `from..=to`, when the store has every one of them.
async fn stored_run(
    state: &AppState,
    conf_id: &str,
    from: u64,
    to: u64,
) -> Option<Vec<ConferenceEvent>> {
    if to - from >= u64::from(crate::store::MAX_CATCH_UP) {
        return None;
    }
    let read = state.store.events_between(conf_id, from, to);
    match tokio::time::timeout(CATCH_UP_WAIT, read).await {
        Ok(Ok(events))
            if events.len() as u64 == to - from + 1
                && events.iter().zip(from..).all(|(e, seq)| e.seq == seq) =>
        {
            Some(events)
        }
        Ok(Ok(_)) => None,
        Ok(Err(e)) => {
            tracing::warn!(%conf_id, error = %e, "cannot read missed events; sending a snapshot");
            None
        }
        Err(_) => None,
    }
}

fn event_notification(event: &ConferenceEvent) -> Utf8Bytes {
    let value = jsonrpc::notification(
        notify::EVENT,
        serde_json::to_value(event).unwrap_or(Value::Null),
    );
    value.to_string().into()
}

fn snapshot_notification(snapshot: &Snapshot) -> Utf8Bytes {
    let value = jsonrpc::notification(
        notify::SNAPSHOT,
        serde_json::to_value(snapshot).unwrap_or(Value::Null),
    );
    value.to_string().into()
}

async fn send_json<S>(sink: &mut S, value: &impl serde::Serialize) -> Result<(), axum::Error>
where
    S: futures_util::Sink<Message, Error = axum::Error> + Unpin,
{
    let text = serde_json::to_string(value).unwrap_or_default();
    sink.send(Message::Text(text.into())).await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JoinParams {
    #[serde(default)]
    audio_muted: bool,
    #[serde(default = "yes")]
    video_enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetAudio {
    muted: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetVideo {
    enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MuteMember {
    user_id: String,
    muted: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SetMainVideo {
    user_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Sdp {
    sdp: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
enum LegName {
    Publish,
    Subscribe,
}

impl From<LegName> for confgate_media::Leg {
    fn from(leg: LegName) -> Self {
        match leg {
            LegName::Publish => confgate_media::Leg::Publish,
            LegName::Subscribe => confgate_media::Leg::Subscribe,
        }
    }
}

/// The browser's `RTCIceCandidateInit`; only the candidate line matters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CandidateInit {
    candidate: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Candidate {
    leg: LegName,
    candidate: Option<CandidateInit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestartIce {
    leg: LegName,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RemoveMember {
    user_id: String,
}
