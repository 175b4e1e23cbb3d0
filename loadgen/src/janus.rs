//! A synthetic member of a Janus VideoRoom, for the side-by-side benchmark.
//!
//! One WebSocket (subprotocol `janus-protocol`) and one Janus session per member, with two
//! VideoRoom handles:
//! - the control handle joins the room as a participant (`ptype: publisher`) whether the member
//!   publishes or not, so that it hears of every feed that comes up (`publishers`) or goes
//!   (`unpublished`, `leaving`); a publisher publishes on it;
//! - the subscriber handle holds one multistream subscription to every other feed of the room:
//!   `join` (`ptype: subscriber`) for the first feeds, `subscribe` for later ones; each brings an
//!   offer from Janus, answered with `start`.
//!
//! Replies are matched by `transaction`; an asynchronous request gets an `ack` and an `event` in
//! either order, and only the `event` completes it. Messages without a known transaction are
//! notifications, routed by handle.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::confgate::JoinOptions;
use crate::peer::{Peer, Sink};
use crate::rx::{Publisher, Receiver};
use crate::ws::spawn_json_socket;

/// How long a request may wait for its reply.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Janus destroys a session after 60 s without a request.
pub(crate) const KEEPALIVE_EVERY: Duration = Duration::from_secs(25);
/// How long to wait for a connection's own host candidates before sending its SDP.
const GATHER_TIMEOUT: Duration = Duration::from_secs(2);
/// VideoRoom "room already exists".
const ROOM_EXISTS: i64 = 427;
/// VideoRoom "no such feed": its publisher's connection is not up yet.
const NO_SUCH_FEED: i64 = 428;

/// An error Janus answered: a core one (`"janus": "error"`) or a VideoRoom one
/// (`plugindata.data.error_code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JanusError {
    pub(crate) code: i64,
    pub(crate) reason: String,
}

impl fmt::Display for JanusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Janus error {}: {}", self.code, self.reason)
    }
}

impl std::error::Error for JanusError {}

/// The code of the Janus error behind `e`, if it is one.
pub(crate) fn janus_code(e: &anyhow::Error) -> Option<i64> {
    e.downcast_ref::<JanusError>().map(|e| e.code)
}

/// A core error in a reply (`{"janus": "error", "error": {...}}`).
fn core_error(reply: &Value) -> Option<JanusError> {
    (reply["janus"] == "error").then(|| JanusError {
        code: reply["error"]["code"].as_i64().unwrap_or(0),
        reason: reply["error"]["reason"]
            .as_str()
            .unwrap_or("no reason")
            .to_owned(),
    })
}

/// The VideoRoom part of a reply to a `message`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PluginReply {
    /// `plugindata.data`.
    pub(crate) data: Value,
    /// The SDP of the reply's `jsep`, if any.
    pub(crate) sdp: Option<String>,
}

/// Reads a reply to a `message`: its plugin data and SDP, or the error it carries (synchronous
/// requests fail inside a `success`, asynchronous ones inside an `event`).
fn plugin_reply(reply: &Value) -> Result<PluginReply, JanusError> {
    if let Some(e) = core_error(reply) {
        return Err(e);
    }
    let data = reply["plugindata"]["data"].clone();
    if let Some(code) = data["error_code"].as_i64() {
        return Err(JanusError {
            code,
            reason: data["error"].as_str().unwrap_or("no reason").to_owned(),
        });
    }
    Ok(PluginReply {
        sdp: reply["jsep"]["sdp"].as_str().map(str::to_owned),
        data,
    })
}

/// The feed ids in a VideoRoom `publishers` list (of a `joined` or a notification).
fn publisher_ids(data: &Value) -> Vec<u64> {
    data["publishers"]
        .as_array()
        .map(|list| list.iter().filter_map(|p| p["id"].as_u64()).collect())
        .unwrap_or_default()
}

/// The feed named by a 428 reason, such as `No such feed (3378363257136188)`.
fn missing_feed(reason: &str) -> Option<u64> {
    let start = reason.rfind('(')? + 1;
    let end = start + reason[start..].find(')')?;
    reason[start..end].trim().parse().ok()
}

/// The session version of an SDP (the third field of its `o=` line).
fn sdp_version(sdp: &str) -> Option<u64> {
    sdp.lines()
        .find_map(|line| line.strip_prefix("o="))
        .and_then(|origin| origin.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
}

/// A notification from Janus, as far as a member cares.
#[derive(Debug, Clone, PartialEq)]
enum Notice {
    /// Feeds came up in the room.
    Feeds(Vec<u64>),
    /// A feed went away (unpublished, or its participant left).
    Gone(u64),
    /// Janus renegotiates the subscription (`updated` with an offer).
    Offer(String),
    /// Nothing to act on.
    Other,
}

/// What a message without a known transaction means for the member whose handles are
/// `control` and `subscriber`.
fn notice(message: &Value, control: u64, subscriber: u64) -> Notice {
    if message["janus"] != "event" {
        return Notice::Other;
    }
    let sender = message["sender"].as_u64();
    let data = &message["plugindata"]["data"];
    if sender == Some(subscriber) {
        if data["videoroom"] == "updated"
            && let Some(sdp) = message["jsep"]["sdp"].as_str()
        {
            return Notice::Offer(sdp.to_owned());
        }
        return Notice::Other;
    }
    if sender != Some(control) {
        return Notice::Other;
    }
    let feeds = publisher_ids(data);
    if !feeds.is_empty() {
        return Notice::Feeds(feeds);
    }
    // `"unpublished": "ok"` / `"leaving": "ok"` answer our own requests; ids are others'.
    match data["unpublished"].as_u64().or(data["leaving"].as_u64()) {
        Some(feed) => Notice::Gone(feed),
        None => Notice::Other,
    }
}

/// A request waiting for its reply.
struct Waiter {
    /// Whether an `ack` completes it (`keepalive`, `trickle`); otherwise the `event` (or
    /// `success`/`error`) does.
    ack_ends: bool,
    reply: oneshot::Sender<Value>,
}

/// What became of one message from Janus.
#[derive(Debug)]
enum Routed {
    /// It completed a request.
    Replied,
    /// An `ack` of a request that waits for its event, or a reply nobody waits for any more.
    Ignored,
    /// A notification.
    Notification(Value),
}

/// The requests in flight on one WebSocket, by transaction.
#[derive(Default)]
struct Transactions {
    next: u64,
    waiting: HashMap<String, Waiter>,
}

impl Transactions {
    /// A new transaction and where its reply will come.
    fn open(&mut self, ack_ends: bool) -> (String, oneshot::Receiver<Value>) {
        self.next += 1;
        let transaction = format!("cg{}", self.next);
        let (tx, rx) = oneshot::channel();
        self.waiting.insert(
            transaction.clone(),
            Waiter {
                ack_ends,
                reply: tx,
            },
        );
        (transaction, rx)
    }

    fn forget(&mut self, transaction: &str) {
        self.waiting.remove(transaction);
    }

    /// Hands `message` to the request it answers, if it completes one.
    fn route(&mut self, message: Value) -> Routed {
        let Some(transaction) = message["transaction"].as_str() else {
            return Routed::Notification(message);
        };
        let Some(waiter) = self.waiting.get(transaction) else {
            // A late reply: an ack after its event, or a reply after its request timed out. A
            // late event may still carry news (an offer, feeds), so it goes to the
            // notifications.
            return if message["janus"] == "event" {
                Routed::Notification(message)
            } else {
                Routed::Ignored
            };
        };
        if message["janus"] == "ack" && !waiter.ack_ends {
            return Routed::Ignored;
        }
        let transaction = transaction.to_owned();
        if let Some(waiter) = self.waiting.remove(&transaction) {
            let _ = waiter.reply.send(message);
        }
        Routed::Replied
    }
}

/// A Janus API client over one WebSocket.
pub(crate) struct Janus {
    out: mpsc::UnboundedSender<Message>,
    transactions: Arc<StdMutex<Transactions>>,
}

impl Janus {
    /// Connects to `url`; returns the client and the notifications.
    pub(crate) async fn connect(url: &str) -> Result<(Arc<Janus>, mpsc::UnboundedReceiver<Value>)> {
        let mut request = url
            .into_client_request()
            .with_context(|| format!("Janus URL {url}"))?;
        // Without the subprotocol Janus drops the connection during the handshake.
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("janus-protocol"),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .with_context(|| format!("WebSocket {url}"))?;
        let (notify_tx, notifications) = mpsc::unbounded_channel::<Value>();
        let transactions: Arc<StdMutex<Transactions>> = Arc::default();
        // The writer ends when every sender is gone, after sending what was queued (the
        // goodbye of a member that leaves).
        let (out, _) = spawn_json_socket(
            socket,
            {
                let transactions = Arc::clone(&transactions);
                move |value| {
                    let routed = match transactions.lock() {
                        Ok(mut t) => t.route(value),
                        Err(_) => return,
                    };
                    if let Routed::Notification(value) = routed {
                        let _ = notify_tx.send(value);
                    }
                }
            },
            {
                let transactions = Arc::clone(&transactions);
                // The socket is gone: fail whoever waits.
                move || {
                    if let Ok(mut t) = transactions.lock() {
                        t.waiting.clear();
                    }
                }
            },
        );
        let janus = Arc::new(Janus { out, transactions });
        Ok((janus, notifications))
    }

    fn open(&self, ack_ends: bool) -> Result<(String, oneshot::Receiver<Value>)> {
        self.transactions
            .lock()
            .map(|mut t| t.open(ack_ends))
            .map_err(|_| anyhow!("Janus client state poisoned"))
    }

    fn forget(&self, transaction: &str) {
        if let Ok(mut t) = self.transactions.lock() {
            t.forget(transaction);
        }
    }

    /// Sends `request` and waits for its reply: the `ack` if `ack_ends`, else the final one.
    pub(crate) async fn call(&self, mut request: Value, ack_ends: bool) -> Result<Value> {
        let what = request["body"]["request"]
            .as_str()
            .or(request["janus"].as_str())
            .unwrap_or("request")
            .to_owned();
        let (transaction, rx) = self.open(ack_ends)?;
        request["transaction"] = Value::String(transaction.clone());
        if self.out.send(Message::text(request.to_string())).is_err() {
            self.forget(&transaction);
            return Err(anyhow!("{what}: the WebSocket is closed"));
        }
        let reply = match tokio::time::timeout(REPLY_TIMEOUT, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => return Err(anyhow!("{what}: the WebSocket closed")),
            Err(_) => {
                self.forget(&transaction);
                return Err(anyhow!("{what}: no reply in {} s", REPLY_TIMEOUT.as_secs()));
            }
        };
        if let Some(e) = core_error(&reply) {
            return Err(anyhow::Error::new(e).context(what));
        }
        Ok(reply)
    }

    /// The `data.id` of a `success` (a new session or handle).
    async fn create(&self, request: Value) -> Result<u64> {
        let reply = self.call(request, false).await?;
        reply["data"]["id"]
            .as_u64()
            .with_context(|| format!("no id in {reply}"))
    }

    pub(crate) async fn create_session(&self) -> Result<u64> {
        self.create(json!({"janus": "create"})).await
    }

    async fn attach(&self, session: u64) -> Result<u64> {
        self.attach_to(session, "janus.plugin.videoroom").await
    }

    /// A handle on `plugin` in `session`.
    pub(crate) async fn attach_to(&self, session: u64, plugin: &str) -> Result<u64> {
        self.create(json!({
            "janus": "attach",
            "plugin": plugin,
            "session_id": session,
        }))
        .await
    }

    /// Sends a keepalive on `session` every [`KEEPALIVE_EVERY`], until the task is aborted.
    pub(crate) fn keepalive(self: &Arc<Self>, session: u64) -> JoinHandle<()> {
        let janus = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval_at(Instant::now() + KEEPALIVE_EVERY, KEEPALIVE_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = janus
                    .call(json!({"janus": "keepalive", "session_id": session}), true)
                    .await
                {
                    eprintln!("Janus keepalive: {e:#}");
                }
            }
        })
    }

    /// A plugin request on `handle`, with an SDP if `jsep` is given; a plugin error comes back
    /// as a [`JanusError`].
    pub(crate) async fn message(
        &self,
        session: u64,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<PluginReply> {
        let what = body["request"].as_str().unwrap_or("message").to_owned();
        let mut request = json!({
            "janus": "message",
            "session_id": session,
            "handle_id": handle,
            "body": body,
        });
        if let Some(jsep) = jsep {
            request["jsep"] = jsep;
        }
        let reply = self.call(request, false).await?;
        plugin_reply(&reply).map_err(|e| anyhow::Error::new(e).context(what))
    }
}

/// `sdp` without its RTCP (component 2) candidates, which an `rtcp-mux` connection (all of
/// them, for Janus) never uses.
fn without_rtcp_candidates(sdp: &str) -> String {
    if !sdp.contains("a=rtcp-mux") {
        return sdp.to_owned();
    }
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let component = line
            .strip_prefix("a=candidate:")
            .and_then(|c| c.split_whitespace().nth(1));
        if component != Some("2") {
            out.push_str(line);
        }
    }
    out
}

/// The local SDP of `peer` once its host candidates are in (or after [`GATHER_TIMEOUT`]):
/// Janus gets the full SDP and no trickle.
pub(crate) async fn gathered_sdp(peer: &Peer, fallback: String) -> String {
    let deadline = Instant::now() + GATHER_TIMEOUT;
    let mut sdp = fallback;
    loop {
        if let Some(local) = peer.pc.local_description().await {
            sdp = local.sdp;
        }
        if sdp.contains("a=end-of-candidates") || Instant::now() >= deadline {
            return without_rtcp_candidates(&sdp);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Applies Janus's offer on a receive connection and returns the full answer for it (host
/// candidates in, no RTCP ones: Janus gets no trickle).
pub(crate) async fn answer_in_full(receiver: &Receiver, offer: String) -> Result<String> {
    Ok(match receiver {
        Receiver::Webrtc(peer) => {
            let answer = peer.answer(offer).await?;
            gathered_sdp(peer, answer).await
        }
        Receiver::Lean(lean) => without_rtcp_candidates(&lean.answer(offer).await?),
    })
}

/// A member in a VideoRoom. Dropping it leaves.
pub struct Member {
    janus: Arc<Janus>,
    session: Option<u64>,
    control: Option<u64>,
    publish: Option<Publisher>,
    subscribe: Arc<Mutex<Option<Receiver>>>,
    /// Whether the member should have a subscription: a viewer always, a publisher once another
    /// feed is in its room.
    wants_subscription: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Member {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        // Best effort, in order: unpublish (so subscribers hear of it), leave, end the session.
        // Janus may handle one connection's requests out of order, so each waits for its reply.
        let (Some(session), Ok(runtime)) = (self.session, tokio::runtime::Handle::try_current())
        else {
            return;
        };
        // The publish connection closes after its `unpublish`, not before (Janus would hang it
        // up first and refuse the request).
        let (janus, control, publish) =
            (Arc::clone(&self.janus), self.control, self.publish.take());
        runtime.spawn(async move {
            let goodbye = async {
                if let Some(control) = control {
                    if publish.is_some() {
                        let body = json!({"request": "unpublish"});
                        let _ = janus.message(session, control, body, None).await;
                    }
                    let body = json!({"request": "leave"});
                    let _ = janus.message(session, control, body, None).await;
                }
                let _ = janus
                    .call(json!({"janus": "destroy", "session_id": session}), false)
                    .await;
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), goodbye).await;
            drop(publish);
        });
    }
}

impl Member {
    /// Its connections are up (ICE and DTLS): the publish one if any, and the subscription if it
    /// should have one.
    pub async fn connected(&self) -> bool {
        if !self.publish.as_ref().is_none_or(Publisher::is_connected) {
            return false;
        }
        if !self.wants_subscription.load(Relaxed) {
            return true;
        }
        self.subscribe
            .lock()
            .await
            .as_ref()
            .is_some_and(Receiver::is_connected)
    }
}

/// Joins VideoRoom `room` of the Janus at `url` (made when missing) as `name`. A publisher
/// sends synthetic media as sender `sink.member`; every member subscribes to every other feed
/// of the room and counts what it receives into `sink`.
pub async fn join(
    url: &str,
    room: u64,
    name: &str,
    publish: bool,
    options: &JoinOptions,
    sink: Sink,
) -> Result<Member> {
    // The reader and writer run until the socket closes: the writer closes it once the last
    // reference to the client is gone, after the goodbye of `Drop`.
    let (janus, mut notifications) = Janus::connect(url).await?;
    let mut member = Member {
        janus: Arc::clone(&janus),
        session: None,
        control: None,
        publish: None,
        subscribe: Arc::default(),
        wants_subscription: Arc::new(AtomicBool::new(!publish)),
        tasks: Vec::new(),
    };
    let session = janus.create_session().await.context("Janus session")?;
    member.session = Some(session);
    member.tasks.push(janus.keepalive(session));
    let control = janus.attach(session).await.context("attaching")?;
    member.control = Some(control);

    // Many members race to make the room; all but one hear "already exists".
    match janus
        .message(
            session,
            control,
            json!({"request": "create", "room": room, "publishers": 100, "bitrate": 2_500_000}),
            None,
        )
        .await
    {
        Ok(_) => {}
        Err(e) if janus_code(&e) == Some(ROOM_EXISTS) => {}
        Err(e) => return Err(e.context(format!("creating room {room}"))),
    }
    let joined = janus
        .message(
            session,
            control,
            json!({"request": "join", "ptype": "publisher", "room": room, "display": name}),
            None,
        )
        .await
        .with_context(|| format!("joining room {room}"))?;
    let own_feed = joined.data["id"].as_u64();

    // The subscription, driven by the room's notifications.
    let subscriber = janus.attach(session).await.context("attaching")?;
    let (feeds_tx, feeds_rx) = mpsc::unbounded_channel::<Notice>();
    let _ = feeds_tx.send(Notice::Feeds(publisher_ids(&joined.data)));
    member.tasks.push(tokio::spawn(async move {
        while let Some(message) = notifications.recv().await {
            if message["janus"] == "timeout" {
                eprintln!("Janus session {session} timed out");
            }
            match notice(&message, control, subscriber) {
                Notice::Other => {}
                n => {
                    if feeds_tx.send(n).is_err() {
                        return;
                    }
                }
            }
        }
    }));
    let subscription = Subscription {
        janus: Arc::clone(&janus),
        session,
        handle: subscriber,
        room,
        own_feed,
        peer: Arc::clone(&member.subscribe),
        wants: Arc::clone(&member.wants_subscription),
        options: options.clone(),
        sink: sink.clone(),
        joined: false,
        last_version: 0,
        wanted: BTreeSet::new(),
        have: BTreeSet::new(),
        retry: HashMap::new(),
    };
    member.tasks.push(tokio::spawn(subscription.run(feeds_rx)));

    if publish {
        let mut peer = Publisher::new(options.tx, options.bind_ip, options.srtp).await?;
        let offer = peer.offer(name).await?;
        let offer = match peer.webrtc() {
            Some(webrtc) => gathered_sdp(webrtc, offer).await,
            None => offer,
        };
        let reply = janus
            .message(
                session,
                control,
                json!({"request": "publish", "audio": true, "video": true}),
                Some(json!({"type": "offer", "sdp": offer, "trickle": false})),
            )
            .await
            .context("publishing")?;
        let answer = reply
            .sdp
            .with_context(|| format!("publish answered no SDP: {}", reply.data))?;
        peer.apply_answer(answer).await?;
        peer.start_sending(sink.member as u32, options.shape, Arc::clone(&sink.metrics));
        member.publish = Some(peer);
    }
    Ok(member)
}

/// The first delay before subscribing again to a feed Janus does not have yet.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(3);

/// One member's multistream subscription: every feed of the room but its own.
struct Subscription {
    janus: Arc<Janus>,
    session: u64,
    handle: u64,
    room: u64,
    own_feed: Option<u64>,
    peer: Arc<Mutex<Option<Receiver>>>,
    wants: Arc<AtomicBool>,
    options: JoinOptions,
    sink: Sink,
    /// Whether the handle joined as a subscriber (later feeds are added with `subscribe`).
    joined: bool,
    /// The session version of the last offer answered; older offers are stale.
    last_version: u64,
    /// Feeds in the room not subscribed yet.
    wanted: BTreeSet<u64>,
    /// Feeds subscribed.
    have: BTreeSet<u64>,
    /// Feeds Janus did not have yet: when to try again, and the delay after that.
    retry: HashMap<u64, (Instant, Duration)>,
}

impl Subscription {
    async fn run(mut self, mut notices: mpsc::UnboundedReceiver<Notice>) {
        loop {
            let next_retry = self.retry.values().map(|(at, _)| *at).min();
            let first = match next_retry {
                None => match notices.recv().await {
                    Some(n) => Some(n),
                    None => return,
                },
                Some(at) => match tokio::time::timeout_at(at, notices.recv()).await {
                    Ok(Some(n)) => Some(n),
                    Ok(None) => return,
                    Err(_) => None,
                },
            };
            if let Some(n) = first {
                self.apply(n).await;
                // Take whatever else is queued, so feeds that come together are subscribed in
                // one request.
                while let Ok(n) = notices.try_recv() {
                    self.apply(n).await;
                }
            }
            self.subscribe_wanted().await;
        }
    }

    async fn apply(&mut self, notice: Notice) {
        match notice {
            Notice::Feeds(feeds) => {
                for feed in feeds {
                    if Some(feed) != self.own_feed && !self.have.contains(&feed) {
                        self.wanted.insert(feed);
                    }
                }
                if !self.wanted.is_empty() {
                    self.wants.store(true, Relaxed);
                }
            }
            Notice::Gone(feed) => {
                self.wanted.remove(&feed);
                self.have.remove(&feed);
                self.retry.remove(&feed);
            }
            Notice::Offer(sdp) => self.answer(sdp).await,
            Notice::Other => {}
        }
    }

    /// Subscribes to the wanted feeds that are due, in one request; a feed Janus does not have
    /// yet (428) waits and the others go again at once.
    async fn subscribe_wanted(&mut self) {
        loop {
            let now = Instant::now();
            let due: Vec<u64> = self
                .wanted
                .iter()
                .copied()
                .filter(|f| self.retry.get(f).is_none_or(|(at, _)| *at <= now))
                .collect();
            if due.is_empty() {
                return;
            }
            let streams: Vec<Value> = due.iter().map(|f| json!({"feed": f})).collect();
            let body = if self.joined {
                json!({"request": "subscribe", "streams": streams})
            } else {
                json!({"request": "join", "ptype": "subscriber", "room": self.room, "streams": streams})
            };
            match self
                .janus
                .message(self.session, self.handle, body, None)
                .await
            {
                Ok(reply) => {
                    self.joined = true;
                    for feed in &due {
                        self.wanted.remove(feed);
                        self.retry.remove(feed);
                        self.have.insert(*feed);
                    }
                    if let Some(sdp) = reply.sdp {
                        self.answer(sdp).await;
                    }
                }
                Err(e) => {
                    let missing = e
                        .downcast_ref::<JanusError>()
                        .filter(|j| j.code == NO_SUCH_FEED)
                        .and_then(|j| missing_feed(&j.reason))
                        .filter(|f| due.contains(f));
                    match missing {
                        // Only that feed waits; the loop tries the others again.
                        Some(feed) => self.postpone(feed),
                        None => {
                            if janus_code(&e) != Some(NO_SUCH_FEED) {
                                eprintln!("Janus subscription: {e:#}");
                            }
                            for feed in due {
                                self.postpone(feed);
                            }
                            return;
                        }
                    }
                }
            }
        }
    }

    fn postpone(&mut self, feed: u64) {
        let delay = self
            .retry
            .get(&feed)
            .map_or(RETRY_FIRST, |(_, d)| (*d * 2).min(RETRY_MAX));
        self.retry.insert(feed, (Instant::now() + delay, delay));
    }

    /// Answers an offer of Janus on the subscription connection (made at the first offer).
    async fn answer(&mut self, offer: String) {
        if let Some(version) = sdp_version(&offer) {
            if version < self.last_version {
                return;
            }
            self.last_version = version;
        }
        let mut slot = self.peer.lock().await;
        if slot.is_none() {
            match Receiver::new(
                self.options.rx,
                self.options.bind_ip,
                self.options.srtp,
                self.sink.clone(),
            )
            .await
            {
                Ok(peer) => *slot = Some(peer),
                Err(e) => {
                    eprintln!("Janus subscription connection: {e:#}");
                    return;
                }
            }
        }
        let Some(peer) = slot.as_ref() else { return };
        let answer = match answer_in_full(peer, offer).await {
            Ok(answer) => answer,
            Err(e) => {
                eprintln!("Janus subscription offer: {e:#}");
                return;
            }
        };
        drop(slot);
        if let Err(e) = self
            .janus
            .message(
                self.session,
                self.handle,
                json!({"request": "start"}),
                Some(json!({"type": "answer", "sdp": answer, "trickle": false})),
            )
            .await
        {
            eprintln!("Janus subscription start: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).expect("valid JSON")
    }

    // Captured from Janus 1.1.2 (scripts/bench/README.md), SDPs cut.
    const JOINED: &str = r#"{"janus": "event", "session_id": 5546586725448176, "transaction": "KHVzlPWnwyQo", "sender": 3067750594468914, "plugindata": {"plugin": "janus.plugin.videoroom", "data": {"videoroom": "joined", "room": 777, "description": "Room 777", "id": 934424279602174, "private_id": 1458849, "publishers": [{"id": 4415879672129833, "display": "media-probe-1", "audio_codec": "opus", "video_codec": "vp8", "streams": [{"type": "audio", "mindex": 0, "mid": "0", "codec": "opus", "talking": false}, {"type": "video", "mindex": 1, "mid": "1", "codec": "vp8"}], "talking": false}]}}}"#;
    const PUBLISHED: &str = r#"{"janus": "event", "session_id": 3069754600294493, "transaction": "VLjkkiftEqFl", "sender": 8331498468308955, "plugindata": {"plugin": "janus.plugin.videoroom", "data": {"videoroom": "event", "room": 777, "configured": "ok", "audio_codec": "opus", "video_codec": "vp8", "streams": []}}, "jsep": {"type": "answer", "sdp": "v=0\r\no=- 4004849592 4004849592 IN IP4 10.77.0.1\r\n"}}"#;
    const ROOM_EXISTS_REPLY: &str = r#"{"janus": "success", "session_id": 5090470176637818, "transaction": "JJTVvzKDBeAd", "sender": 6278672447981474, "plugindata": {"plugin": "janus.plugin.videoroom", "data": {"videoroom": "event", "error_code": 427, "error": "Room 777 already exists"}}}"#;
    const NEW_PUBLISHER: &str = r#"{"janus": "event", "session_id": 5090470176637818, "sender": 6278672447981474, "plugindata": {"plugin": "janus.plugin.videoroom", "data": {"videoroom": "event", "room": 777, "publishers": [{"id": 4415879672129833, "display": "media-probe-1", "audio_codec": "opus", "video_codec": "vp8", "streams": [{"type": "audio", "mindex": 0, "mid": "0", "codec": "opus"}, {"type": "video", "mindex": 1, "mid": "1", "codec": "vp8"}]}]}}}"#;
    const UNPUBLISHED: &str = r#"{"janus": "event", "session_id": 5090470176637818, "sender": 6278672447981474, "plugindata": {"plugin": "janus.plugin.videoroom", "data": {"videoroom": "event", "room": 777, "unpublished": 4415879672129833}}}"#;
    const UPDATED: &str = r#"{"janus": "event", "session_id": 2741163289326160, "sender": 5155900928260294, "plugindata": {"plugin": "janus.plugin.videoroom", "data": {"videoroom": "updated", "room": 777, "streams": []}}, "jsep": {"type": "offer", "sdp": "v=0\r\no=- 1795860792872725 2 IN IP4 10.77.0.1\r\n"}}"#;

    #[test]
    fn the_event_completes_a_message_in_either_order() {
        let mut t = Transactions::default();
        let (a, mut rx_a) = t.open(false);
        // Ack first, then the event.
        let ack = json!({"janus": "ack", "session_id": 1, "transaction": a});
        assert!(matches!(t.route(ack), Routed::Ignored));
        assert!(rx_a.try_recv().is_err());
        let event = json!({"janus": "event", "transaction": a, "plugindata": {"data": {}}});
        assert!(matches!(t.route(event.clone()), Routed::Replied));
        assert_eq!(rx_a.try_recv().ok(), Some(event));

        // Event first; the late ack is dropped.
        let (b, mut rx_b) = t.open(false);
        let event = json!({"janus": "event", "transaction": b});
        assert!(matches!(t.route(event.clone()), Routed::Replied));
        assert_eq!(rx_b.try_recv().ok(), Some(event));
        let ack = json!({"janus": "ack", "transaction": b});
        assert!(matches!(t.route(ack), Routed::Ignored));
        assert!(t.waiting.is_empty());
    }

    #[test]
    fn an_ack_completes_a_keepalive_and_notifications_pass_through() {
        let mut t = Transactions::default();
        let (k, mut rx) = t.open(true);
        let ack = json!({"janus": "ack", "session_id": 1, "transaction": k});
        assert!(matches!(t.route(ack), Routed::Replied));
        assert!(rx.try_recv().is_ok());
        let up = json!({"janus": "webrtcup", "session_id": 1, "sender": 2});
        assert!(matches!(t.route(up), Routed::Notification(_)));
        assert!(matches!(
            t.route(parse(NEW_PUBLISHER)),
            Routed::Notification(_)
        ));
    }

    #[test]
    fn captured_replies_parse() {
        let joined = plugin_reply(&parse(JOINED)).expect("joined");
        assert_eq!(joined.data["id"].as_u64(), Some(934424279602174));
        assert_eq!(publisher_ids(&joined.data), vec![4415879672129833]);
        assert_eq!(joined.sdp, None);

        let published = plugin_reply(&parse(PUBLISHED)).expect("published");
        assert_eq!(published.data["configured"], "ok");
        assert!(
            published
                .sdp
                .as_deref()
                .is_some_and(|s| s.starts_with("v=0"))
        );

        let exists = plugin_reply(&parse(ROOM_EXISTS_REPLY)).expect_err("427");
        assert_eq!(exists.code, ROOM_EXISTS);
        let core = parse(
            r#"{"janus": "error", "session_id": 1, "transaction": "wkv9rXfNSaY4", "error": {"code": 458, "reason": "No such session 1"}}"#,
        );
        assert_eq!(plugin_reply(&core).expect_err("458").code, 458);
        let e = anyhow::Error::new(exists).context("create");
        assert_eq!(janus_code(&e), Some(ROOM_EXISTS));
    }

    #[test]
    fn notifications_are_routed_by_handle() {
        let (control, subscriber) = (6278672447981474, 5155900928260294);
        assert_eq!(
            notice(&parse(NEW_PUBLISHER), control, subscriber),
            Notice::Feeds(vec![4415879672129833])
        );
        assert_eq!(
            notice(&parse(UNPUBLISHED), control, subscriber),
            Notice::Gone(4415879672129833)
        );
        let Notice::Offer(sdp) = notice(&parse(UPDATED), control, subscriber) else {
            panic!("an offer");
        };
        assert_eq!(sdp_version(&sdp), Some(2));
        // Another member's handle, and our own unpublish being confirmed.
        assert_eq!(notice(&parse(NEW_PUBLISHER), 1, 2), Notice::Other);
        let ours = json!({"janus": "event", "sender": control,
            "plugindata": {"data": {"videoroom": "event", "unpublished": "ok"}}});
        assert_eq!(notice(&ours, control, subscriber), Notice::Other);
    }

    #[test]
    fn the_missing_feed_is_read_from_a_428() {
        assert_eq!(
            missing_feed("No such feed (3378363257136188)"),
            Some(3378363257136188)
        );
        assert_eq!(missing_feed("No such feed"), None);
        let sdp = "v=0\r\na=rtcp-mux\r\na=candidate:1677039433 1 udp 2130706431 10.77.0.1 50542 typ host\r\na=candidate:1677039433 2 udp 2130706431 10.77.0.1 50542 typ host\r\na=end-of-candidates\r\n";
        assert_eq!(
            without_rtcp_candidates(sdp),
            "v=0\r\na=rtcp-mux\r\na=candidate:1677039433 1 udp 2130706431 10.77.0.1 50542 typ host\r\na=end-of-candidates\r\n"
        );
        assert_eq!(
            sdp_version("v=0\r\no=- 4004849592 4004849592 IN IP4 10.77.0.1\r\n"),
            Some(4004849592)
        );
    }
}
