//! The event bus on RabbitMQ (AMQP 0-9-1, through lapin), recovering from
//! connection loss by itself.
//!
//! # Topology (a contract: external publishers rely on it)
//!
//! ```text
//!  publisher ──▶ exchange `confgate.events` (topic, durable)
//!                  │  routing key  conf.<confId>.<type>
//!                  │  binding      conf.<confId>.#   (one per watched conference)
//!                  ▼
//!                queue `confgate.node.<nodeId>` (durable, x-expires 10 min) ──▶ node
//! ```
//!
//! - **Exchange**: a durable topic exchange, `confgate.events` unless
//!   configured otherwise ([`AmqpConfig::exchange`]).
//! - **Routing key**: `conf.<confId>.<type>`, where `<type>` is the event's
//!   kind tag: `memberJoined`, `memberLeft`, `memberUpdated`,
//!   `mainVideoChanged` or `conferenceStateChanged`. A conference id is one
//!   routing key word: no `.`, `*`, `#` or whitespace.
//! - **Body**: the [`ConferenceEvent`] JSON exactly as serde writes it
//!   (`{"eventId":"<confId>:<seq>","seq":…,"confId":…,"at":…,"type":…,…}`),
//!   content type `application/json`, persistent delivery mode (2), message
//!   id = event id. Confgate publishes with publisher confirms.
//! - **Queues**: each node has its own durable, non-exclusive queue
//!   `confgate.node.<nodeId>` with `x-expires` (10 minutes unless configured,
//!   [`AmqpConfig::queue_expires`]): a dead node's queue disappears, a node
//!   that reconnects in time finds its queue, its bindings and the events that
//!   arrived meanwhile. The node binds `conf.<confId>.#` for each conference it
//!   watches, consumes with manual acks and a prefetch of 256.
//! - A message that is not a valid [`ConferenceEvent`] is logged (routing key
//!   and first bytes) and acknowledged, i.e. dropped.
//!
//! # Recovery
//!
//! lapin's own recovery is off: one supervisor task owns the connection. When
//! the connection or a channel fails, or the consumer stream ends, it
//! reconnects with exponential backoff (100 ms doubling to 5 s, plus up to
//! half as much random jitter), declares the exchange and the queue again,
//! binds every watched conference again, restarts the consumer and sends
//! [`BusMessage::Resumed`]. Publishes and watch/unwatch calls made meanwhile
//! wait for the new connection (up to 10 s) instead of failing at once.
//! Dropping the last [`AmqpBus`] handle stops the supervisor, which closes the
//! connection.
//!
//! An event whose confirm was lost with the connection is published again,
//! and a delivery whose ack was lost is delivered again: receivers dedupe on
//! the event id. A confirmed event routed to a node's queue is never lost
//! while that queue lives.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confgate_signalling::events::ConferenceEvent;
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::{Ack, BusError, BusMessage, DELIVERY_CAPACITY, EventBus, check_conf_id, kind_tag};

/// How long `publish`, `watch` and `unwatch` wait for a lost connection to
/// come back (and for the broker's answer) before failing: long enough to
/// ride out a broker restart or a forced close, short enough that a room
/// does not hang on a dead broker.
const OPERATION_WAIT: Duration = Duration::from_secs(10);
/// Connecting, declaring and binding everything must finish within this, or
/// the attempt counts as failed (a broker that accepts TCP but does not
/// answer).
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// First reconnect delay: a forced close or a broker restart is usually over
/// quickly.
const BACKOFF_START: Duration = Duration::from_millis(100);
/// Reconnect delay cap: a node notices a broker that came back within 5 s
/// (7.5 s with jitter) without hammering one that is down.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often the supervisor looks at the connection and channel states, in
/// case a failure produced neither a connection event nor the end of the
/// consumer stream.
const HEALTH_CHECK: Duration = Duration::from_secs(1);
/// Time given to a graceful connection close when the bus stops.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes of an undecodable body shown in the log: enough to recognize it.
const BODY_PREVIEW: usize = 64;
/// AMQP persistent delivery mode: the broker writes the message to disk in a
/// durable queue.
const PERSISTENT: u8 = 2;

/// How to reach the broker and what this node is called there.
#[derive(Clone)]
pub struct AmqpConfig {
    /// `amqp://user:password@host:port/vhost` (the vhost URL-encoded: `%2f`
    /// for `/`). Plain AMQP only: no TLS.
    pub url: String,
    /// The topic exchange events go through. Default `confgate.events`.
    pub exchange: String,
    /// This node's name, unique among the nodes: its queue is
    /// `confgate.node.<nodeId>` and its connection is named
    /// `confgate-<nodeId>`.
    pub node_id: String,
    /// Unacknowledged deliveries the broker sends ahead. Default 256.
    pub prefetch: u16,
    /// How long the broker keeps this node's queue (and the events in it)
    /// once the node is gone. Default 10 minutes: a node that reconnects
    /// within it misses nothing; a dead node's queue does not pile up events
    /// forever.
    pub queue_expires: Duration,
}

impl AmqpConfig {
    /// The defaults for `node_id` on the broker at `url`.
    pub fn new(url: impl Into<String>, node_id: impl Into<String>) -> AmqpConfig {
        AmqpConfig {
            url: url.into(),
            exchange: "confgate.events".to_owned(),
            node_id: node_id.into(),
            prefetch: 256,
            queue_expires: Duration::from_secs(600),
        }
    }

    /// This node's queue: `confgate.node.<nodeId>`.
    pub fn queue_name(&self) -> String {
        format!("confgate.node.{}", self.node_id)
    }

    /// The connection's client-provided name: `confgate-<nodeId>`.
    pub fn connection_name(&self) -> String {
        format!("confgate-{}", self.node_id)
    }

    fn validate(&self) -> Result<(), BusError> {
        if !self.url.starts_with("amqp://") {
            return Err(BusError::Config(format!(
                "broker URL {} must start with amqp:// (amqps:// is not built in: the broker is reached on a trusted network)",
                self.redacted_url()
            )));
        }
        if self.node_id.is_empty() || self.node_id.len() > 200 {
            return Err(BusError::Config(format!(
                "node id {:?} must be 1 to 200 bytes long",
                self.node_id
            )));
        }
        if self.exchange.is_empty() || self.exchange.starts_with("amq.") {
            return Err(BusError::Config(format!(
                "exchange {:?} must be named, and not in the broker's reserved `amq.` space",
                self.exchange
            )));
        }
        if self.prefetch == 0 {
            return Err(BusError::Config(
                "prefetch 0 would let the broker push without limit; use at least 1".to_owned(),
            ));
        }
        if self.queue_expires.is_zero() {
            return Err(BusError::Config(
                "queue_expires must be positive: it is how long the broker keeps the queue of a node that is gone".to_owned(),
            ));
        }
        Ok(())
    }

    /// The URL without its password, for messages and logs.
    fn redacted_url(&self) -> String {
        redact_password(&self.url)
    }
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("url", &self.redacted_url())
            .field("exchange", &self.exchange)
            .field("node_id", &self.node_id)
            .field("prefetch", &self.prefetch)
            .field("queue_expires", &self.queue_expires)
            .finish()
    }
}

/// `amqp://user:secret@host/` → `amqp://user:***@host/`.
fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..scheme_end],
        &authority[..colon],
        &url[scheme_end + at..]
    )
}

/// The [`EventBus`] on RabbitMQ. Cheap to clone; the last clone dropped stops
/// the bus and closes its connection.
#[derive(Clone)]
pub struct AmqpBus {
    handle: Arc<Handle>,
}

/// What the handles share. Dropping it (with the last handle) drops `_stop`,
/// which tells the supervisor to close the connection and end.
struct Handle {
    shared: Arc<Shared>,
    /// Until `take_messages`.
    receiver: Mutex<Option<mpsc::Receiver<BusMessage>>>,
    _stop: oneshot::Sender<()>,
}

/// What the handles and the supervisor share.
struct Shared {
    config: AmqpConfig,
    queue: String,
    /// The conferences this node watches. A tokio lock because it is held
    /// across the broker round trips of a bind or unbind, and across the
    /// rebinding after a reconnect: watch/unwatch and recovery never
    /// interleave, so recovery binds exactly the set the callers see.
    watched: tokio::sync::Mutex<BTreeSet<String>>,
    /// The live session; `None` while reconnecting.
    session: watch::Sender<Option<Arc<Session>>>,
    /// Why the last connection attempt or operation failed, for the error a
    /// caller gets when its wait runs out. Held only to read or replace it.
    last_failure: Mutex<String>,
}

/// One connection to the broker and its two channels.
struct Session {
    /// Counts connections from 1: a failed operation waits for a newer one.
    generation: u64,
    connection: Connection,
    /// Confirm mode: publishes only.
    publisher: lapin::Channel,
    /// QoS, consumer, bindings.
    consumer: lapin::Channel,
    /// Rung by a caller whose operation failed on this session: the
    /// supervisor then replaces it.
    broken: Notify,
}

impl Session {
    fn healthy(&self) -> bool {
        self.connection.status().connected()
            && self.publisher.status().connected()
            && self.consumer.status().connected()
    }
}

/// A session and what only the supervisor reads.
struct Established {
    session: Arc<Session>,
    deliveries: lapin::Consumer,
    connection_events: futures_util::stream::BoxStream<'static, lapin::Event>,
}

/// Why an operation on a session failed.
enum Failure {
    /// The session is unusable: wait for the next one.
    Session(lapin::Error),
    /// The broker said no (a negative publisher confirm): retry on the same
    /// session after a moment.
    Refused(String),
}

impl From<lapin::Error> for Failure {
    fn from(e: lapin::Error) -> Self {
        Failure::Session(e)
    }
}

impl AmqpBus {
    /// Connects to the broker, declares the exchange and this node's queue
    /// and starts consuming. Fails if the broker cannot be reached now;
    /// afterwards the bus reconnects by itself.
    pub async fn connect(config: AmqpConfig) -> Result<AmqpBus, BusError> {
        config.validate()?;
        let shared = Arc::new(Shared {
            queue: config.queue_name(),
            config,
            watched: tokio::sync::Mutex::new(BTreeSet::new()),
            session: watch::channel(None).0,
            last_failure: Mutex::new(String::new()),
        });
        let first = match tokio::time::timeout(SETUP_TIMEOUT, establish(&shared, 1)).await {
            Ok(Ok(established)) => established,
            Ok(Err(e)) => {
                return Err(BusError::Unavailable(format!(
                    "cannot connect to the broker at {} as node {:?}: {e}",
                    shared.config.redacted_url(),
                    shared.config.node_id
                )));
            }
            Err(_) => {
                return Err(BusError::Unavailable(format!(
                    "the broker at {} did not complete the connection within {SETUP_TIMEOUT:?}",
                    shared.config.redacted_url()
                )));
            }
        };
        tracing::info!(
            node = %shared.config.node_id,
            broker = %shared.config.redacted_url(),
            exchange = %shared.config.exchange,
            queue = %shared.queue,
            "event bus connected"
        );
        let (deliveries, receiver) = mpsc::channel(DELIVERY_CAPACITY);
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(supervise(shared.clone(), first, deliveries, stopped));
        Ok(AmqpBus {
            handle: Arc::new(Handle {
                shared,
                receiver: Mutex::new(Some(receiver)),
                _stop: stop,
            }),
        })
    }

    /// This bus's settings.
    pub fn config(&self) -> &AmqpConfig {
        &self.handle.shared.config
    }

    /// Runs `op` on the live session, waiting for a reconnect when there is
    /// none or when `op` found it broken, until [`OPERATION_WAIT`] is over.
    async fn with_session<T, F, Fut>(&self, what: &str, op: F) -> Result<T, BusError>
    where
        F: Fn(Arc<Session>) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let shared = &self.handle.shared;
        let deadline = Instant::now() + OPERATION_WAIT;
        let mut sessions = shared.session.subscribe();
        let mut min_generation = 0;
        loop {
            let newer = |s: &Option<Arc<Session>>| {
                s.as_ref().is_some_and(|s| s.generation >= min_generation)
            };
            // The watch guard is dropped at the end of this statement: it
            // must not be held while the supervisor replaces the session.
            let session = match tokio::time::timeout_at(deadline, sessions.wait_for(newer)).await {
                Ok(Ok(current)) => current.clone(),
                // Timed out, or the sender is gone (it lives in `shared`,
                // which we hold, so it cannot be).
                Ok(Err(_)) | Err(_) => None,
            };
            let Some(session) = session else {
                return Err(shared.gave_up(what));
            };
            match tokio::time::timeout_at(deadline, op(session.clone())).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(Failure::Session(e))) => {
                    tracing::debug!(error = %e, what, "event bus: operation failed; waiting for the reconnect");
                    shared.record_failure(format!("{what} failed: {e}"));
                    min_generation = session.generation + 1;
                    session.broken.notify_one();
                }
                Ok(Err(Failure::Refused(why))) => {
                    tracing::debug!(reason = %why, what, "event bus: the broker refused; retrying");
                    shared.record_failure(format!("{what} refused: {why}"));
                    tokio::time::sleep_until((Instant::now() + BACKOFF_START).min(deadline)).await;
                }
                Err(_) => return Err(shared.gave_up(what)),
            }
        }
    }
}

impl Shared {
    fn record_failure(&self, why: String) {
        if let Ok(mut last) = self.last_failure.lock() {
            *last = why;
        }
    }

    fn gave_up(&self, what: &str) -> BusError {
        let last = self
            .last_failure
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        let last = if last.is_empty() {
            String::new()
        } else {
            format!(" (last failure: {last})")
        };
        BusError::Unavailable(format!(
            "{what}: no working connection to the broker at {} within {OPERATION_WAIT:?}{last}",
            self.config.redacted_url()
        ))
    }
}

impl std::fmt::Debug for AmqpBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpBus")
            .field("config", &self.handle.shared.config)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl EventBus for AmqpBus {
    async fn publish(&self, event: &ConferenceEvent) -> Result<(), BusError> {
        check_conf_id(&event.conf_id)?;
        let body = serde_json::to_vec(event).map_err(|source| BusError::Encode {
            event_id: event.event_id.clone(),
            source,
        })?;
        let routing_key = format!("conf.{}.{}", event.conf_id, kind_tag(&event.kind));
        let exchange = &self.handle.shared.config.exchange;
        let (body, routing_key) = (&body, &routing_key);
        self.with_session("publish", |session| async move {
            let properties = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(PERSISTENT)
                .with_message_id(event.event_id.as_str().into());
            let confirmation = session
                .publisher
                .basic_publish(
                    exchange.as_str().into(),
                    routing_key.as_str().into(),
                    BasicPublishOptions::default(),
                    body,
                    properties,
                )
                .await?
                .await?;
            if confirmation.is_nack() {
                return Err(Failure::Refused(format!(
                    "negative confirm for event {}",
                    event.event_id
                )));
            }
            Ok(())
        })
        .await
    }

    async fn watch(&self, conf_id: &str) -> Result<(), BusError> {
        check_conf_id(conf_id)?;
        let shared = &self.handle.shared;
        self.with_session("watch", |session| async move {
            let mut watched = shared.watched.lock().await;
            bind(shared, &session.consumer, conf_id).await?;
            watched.insert(conf_id.to_owned());
            Ok(())
        })
        .await
    }

    async fn unwatch(&self, conf_id: &str) -> Result<(), BusError> {
        check_conf_id(conf_id)?;
        let shared = &self.handle.shared;
        self.with_session("unwatch", |session| async move {
            let mut watched = shared.watched.lock().await;
            session
                .consumer
                .queue_unbind(
                    shared.queue.as_str().into(),
                    shared.config.exchange.as_str().into(),
                    binding_key(conf_id).into(),
                    FieldTable::default(),
                )
                .await?;
            watched.remove(conf_id);
            Ok(())
        })
        .await
    }

    fn take_messages(&self) -> Option<mpsc::Receiver<BusMessage>> {
        self.handle.receiver.lock().ok().and_then(|mut r| r.take())
    }
}

/// `conf.<confId>.#`: every event of the conference.
fn binding_key(conf_id: &str) -> String {
    format!("conf.{conf_id}.#")
}

async fn bind(shared: &Shared, channel: &lapin::Channel, conf_id: &str) -> lapin::Result<()> {
    channel
        .queue_bind(
            shared.queue.as_str().into(),
            shared.config.exchange.as_str().into(),
            binding_key(conf_id).into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

/// Connects, declares the topology, binds every watched conference, starts
/// the consumer and makes the session the live one: all of it while holding
/// the watched set, so that no watch or unwatch slips in between.
async fn establish(shared: &Shared, generation: u64) -> lapin::Result<Established> {
    let config = &shared.config;
    let properties =
        ConnectionProperties::default().with_connection_name(config.connection_name().into());
    let connection = Connection::connect(&config.url, properties).await?;
    let connection_events = connection.events_listener().boxed();

    let publisher = connection.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    publisher
        .exchange_declare(
            config.exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;

    let consumer = connection.create_channel().await?;
    let mut arguments = FieldTable::default();
    let expires_ms = i64::try_from(config.queue_expires.as_millis()).unwrap_or(i64::MAX);
    arguments.insert("x-expires".into(), AMQPValue::LongLongInt(expires_ms));
    consumer
        .queue_declare(
            shared.queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await?;
    consumer
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await?;

    let watched = shared.watched.lock().await;
    for conf_id in watched.iter() {
        bind(shared, &consumer, conf_id).await?;
    }
    let deliveries = consumer
        .basic_consume(
            shared.queue.as_str().into(),
            config.connection_name().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let session = Arc::new(Session {
        generation,
        connection,
        publisher,
        consumer,
        broken: Notify::new(),
    });
    shared.session.send_replace(Some(session.clone()));
    drop(watched);
    Ok(Established {
        session,
        deliveries,
        connection_events,
    })
}

/// Why a session ended.
enum Ended {
    /// The last handle was dropped.
    Stopped,
    /// The connection, a channel or the consumer failed.
    Lost(String),
}

/// Owns the connection: runs a session until it fails, then reconnects, for
/// as long as a handle exists.
async fn supervise(
    shared: Arc<Shared>,
    first: Established,
    deliveries: mpsc::Sender<BusMessage>,
    mut stop: oneshot::Receiver<()>,
) {
    let node = shared.config.node_id.clone();
    let mut established = first;
    loop {
        let ended = run_session(&mut established, &deliveries, &mut stop).await;
        shared.session.send_replace(None);
        match ended {
            Ended::Stopped => {
                close(&established.session.connection).await;
                tracing::debug!(%node, "event bus stopped");
                return;
            }
            Ended::Lost(why) => {
                tracing::warn!(%node, reason = %why, "event bus: connection to the broker lost; reconnecting");
                shared.record_failure(why);
                // Best effort: the connection may still be half up (a failed
                // channel); never wait on it.
                let old = established.session.clone();
                tokio::spawn(async move { close(&old.connection).await });
            }
        }
        let generation = established.session.generation + 1;
        drop(established);
        let Some(next) = reconnect(&shared, generation, &mut stop).await else {
            tracing::debug!(%node, "event bus stopped while reconnecting");
            return;
        };
        established = next;
        shared.record_failure(String::new());
        tracing::info!(%node, generation, "event bus: reconnected to the broker");
        tokio::select! {
            sent = deliveries.send(BusMessage::Resumed) => {
                if sent.is_err() {
                    tracing::debug!(%node, "event bus: nobody receives; Resumed dropped");
                }
            }
            _ = &mut stop => {
                close(&established.session.connection).await;
                return;
            }
        }
    }
}

/// Forwards deliveries until the session fails or the bus stops.
async fn run_session(
    established: &mut Established,
    deliveries: &mpsc::Sender<BusMessage>,
    stop: &mut oneshot::Receiver<()>,
) -> Ended {
    let Established {
        session,
        deliveries: consumer,
        connection_events,
    } = established;
    let mut health = tokio::time::interval(HEALTH_CHECK);
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut *stop => return Ended::Stopped,
            () = session.broken.notified() => {
                return Ended::Lost("an operation on the connection failed".to_owned());
            }
            _ = health.tick() => {
                if !session.healthy() {
                    return Ended::Lost("the connection or a channel is no longer open".to_owned());
                }
            }
            event = connection_events.next() => match event {
                Some(lapin::Event::Error(e)) => return Ended::Lost(format!("connection error: {e}")),
                Some(_) => {}
                None => return Ended::Lost("the connection's event stream ended".to_owned()),
            },
            delivery = consumer.next() => match delivery {
                Some(Ok(delivery)) => {
                    let Some(message) = decode(delivery).await else { continue };
                    // Back-pressure, never a drop: while the receiver is
                    // full, the broker holds the rest (prefetch).
                    tokio::select! {
                        sent = deliveries.send(message) => {
                            if sent.is_err() {
                                // Unacknowledged: the broker keeps it for a
                                // later consumer of this queue.
                                tracing::debug!("event bus: nobody receives; delivery left unacknowledged");
                            }
                        }
                        _ = &mut *stop => return Ended::Stopped,
                    }
                }
                Some(Err(e)) => return Ended::Lost(format!("consumer error: {e}")),
                None => return Ended::Lost("the broker cancelled the consumer".to_owned()),
            },
        }
    }
}

/// A delivery as a [`BusMessage`], or `None` for a body that is not a
/// conference event: that one is logged and acknowledged, so that garbage from
/// an external publisher never blocks the queue.
async fn decode(delivery: lapin::message::Delivery) -> Option<BusMessage> {
    match serde_json::from_slice::<ConferenceEvent>(&delivery.data) {
        Ok(event) => Some(BusMessage::Event {
            event,
            ack: Ack::amqp(delivery.acker),
        }),
        Err(e) => {
            let preview = &delivery.data[..delivery.data.len().min(BODY_PREVIEW)];
            tracing::warn!(
                routing_key = %delivery.routing_key,
                bytes = delivery.data.len(),
                body_start = ?String::from_utf8_lossy(preview),
                error = %e,
                "event bus: dropped a message that is not a conference event"
            );
            Ack::amqp(delivery.acker).ack().await;
            None
        }
    }
}

/// Connects again, with exponential backoff and jitter, until it works or the
/// bus stops (`None`).
async fn reconnect(
    shared: &Shared,
    generation: u64,
    stop: &mut oneshot::Receiver<()>,
) -> Option<Established> {
    let mut delay = BACKOFF_START;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let half = u64::try_from(delay.as_millis() / 2).unwrap_or(u64::MAX);
        let pause = delay + Duration::from_millis(rand::random_range(0..=half));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = &mut *stop => return None,
        }
        let attempt_result = tokio::select! {
            result = tokio::time::timeout(SETUP_TIMEOUT, establish(shared, generation)) => result,
            _ = &mut *stop => return None,
        };
        let why = match attempt_result {
            Ok(Ok(established)) => return Some(established),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {SETUP_TIMEOUT:?}"),
        };
        tracing::warn!(
            node = %shared.config.node_id,
            attempt,
            error = %why,
            "event bus: cannot reconnect to the broker at {}; retrying",
            shared.config.redacted_url()
        );
        shared.record_failure(format!("reconnect: {why}"));
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

/// Closes a connection politely, without waiting long for a broker that is
/// gone.
async fn close(connection: &Connection) {
    if !connection.status().connected() {
        return;
    }
    let closing = connection.close(200, "confgate event bus closing".into());
    match tokio::time::timeout(CLOSE_TIMEOUT, closing).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "event bus: close failed"),
        Err(_) => tracing::debug!("event bus: the broker did not confirm the close in time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact_password("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            redact_password("amqp://127.0.0.1:5672/%2f"),
            "amqp://127.0.0.1:5672/%2f"
        );
        assert_eq!(redact_password("amqp://user@host"), "amqp://user@host");
        assert_eq!(redact_password("a:b@c"), "a:b@c");
    }

    #[test]
    fn defaults() {
        let config = AmqpConfig::new("amqp://127.0.0.1", "n1");
        assert_eq!(config.exchange, "confgate.events");
        assert_eq!(config.prefetch, 256);
        assert_eq!(config.queue_expires, Duration::from_secs(600));
        assert_eq!(config.queue_name(), "confgate.node.n1");
        assert_eq!(config.connection_name(), "confgate-n1");
        assert!(config.validate().is_ok());
        assert!(AmqpConfig::new("amqp://127.0.0.1", "").validate().is_err());
        assert!(
            AmqpConfig::new("amqps://127.0.0.1", "n1")
                .validate()
                .is_err()
        );
    }
}
