//! The event bus: how a conference's events reach every node that hosts
//! members of that conference.
//!
//! ```text
//!  room (node A) ── publish ──▶ EventBus ──▶ node B's deliveries ──▶ room (node B)
//!                                 │
//!                   InProcessBus (one node, tests, no broker)
//!                   AmqpBus      (RabbitMQ: topic exchange, one queue per node)
//! ```
//!
//! A node [`watch`](EventBus::watch)es the conferences it hosts and receives
//! their events as [`BusMessage::Event`]s on the receiver it takes once with
//! [`take_messages`](EventBus::take_messages). Each event is acknowledged with
//! [`Ack::ack`] after it reached the local subscribers; an event that was not
//! acknowledged may be delivered again, so receivers are idempotent on the
//! event id. After a broker outage the bus says [`BusMessage::Resumed`]: the
//! receiver then fills any gap from the store by sequence number.
//!
//! The bus does not order events of different conferences, does not dedupe
//! and does not persist anything itself: the store is the record, the bus only
//! carries.

mod amqp;
mod in_process;

pub use amqp::{AmqpBus, AmqpConfig};
pub use in_process::InProcessBus;

use confgate_signalling::events::{ConferenceEvent, EventKind};

/// Deliveries waiting for the receiver, per node. The AMQP consumer never has
/// more than its prefetch (256 by default) unacknowledged, so this bound is
/// reached only with a larger prefetch; a full channel makes the sender wait,
/// it never drops an event.
pub(crate) const DELIVERY_CAPACITY: usize = 1024;

/// What the bus hands to this node.
#[derive(Debug)]
pub enum BusMessage {
    /// An event of a conference this node watches. Call `ack.ack().await`
    /// after it reached the local subscribers (manual ack).
    Event { event: ConferenceEvent, ack: Ack },
    /// The broker connection came back after a loss (topology declared again,
    /// every watched conference bound again). Events may have been missed
    /// meanwhile on the publish side: the receiver fills gaps from the store
    /// by sequence number.
    Resumed,
}

/// The acknowledgement of one delivered event.
pub struct Ack(AckKind);

enum AckKind {
    /// The in-process bus has nothing to acknowledge.
    Noop,
    /// `basic.ack` of the delivery on the channel it came from.
    Amqp(lapin::Acker),
}

impl Ack {
    pub(crate) fn noop() -> Ack {
        Ack(AckKind::Noop)
    }

    pub(crate) fn amqp(acker: lapin::Acker) -> Ack {
        Ack(AckKind::Amqp(acker))
    }

    /// Tells the bus this event reached its local subscribers. Never fails: if
    /// the channel it came on is gone, the broker delivers the event again
    /// (receivers are idempotent on the event id), so the failure is only
    /// logged at debug level.
    pub async fn ack(self) {
        match self.0 {
            AckKind::Noop => {}
            AckKind::Amqp(acker) => {
                match acker.ack(lapin::options::BasicAckOptions::default()).await {
                    Ok(true) => {}
                    // lapin's answer when the delivery's channel closed since.
                    Ok(false) => tracing::debug!(
                        "event bus: ack not sent, the delivery's channel is closed; the broker will deliver the event again"
                    ),
                    Err(e) => tracing::debug!(
                        error = %e,
                        "event bus: ack failed; the broker will deliver the event again"
                    ),
                }
            }
        }
    }
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            AckKind::Noop => f.write_str("Ack(noop)"),
            AckKind::Amqp(_) => f.write_str("Ack(amqp)"),
        }
    }
}

/// Why the bus could not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The infrastructure failed: the broker is unreachable, refused an
    /// operation, or did not come back within the wait bound.
    #[error("the event bus is unavailable: {0}")]
    Unavailable(String),
    /// We were misused: a setting that cannot work.
    #[error("invalid event bus configuration: {0}")]
    Config(String),
    /// We were misused: a conference id that cannot be a routing key word.
    #[error(
        "invalid conference id {0:?} for the event bus: it must be 1 to 200 bytes without '.', '*', '#' or whitespace"
    )]
    InvalidConfId(String),
    /// The event could not be turned into JSON (a bug, not a broker problem).
    #[error("cannot encode event {event_id} for the event bus: {source}")]
    Encode {
        event_id: String,
        source: serde_json::Error,
    },
}

#[async_trait::async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes durably; resolves once the broker confirmed it (publisher
    /// confirms, persistent delivery mode). While the connection is down it
    /// waits for the reconnect and retries, up to a bound (10 s), then fails
    /// with [`BusError`].
    async fn publish(&self, event: &ConferenceEvent) -> Result<(), BusError>;
    /// Starts delivering `conf_id`'s events to this node (binds
    /// `conf.<confId>.#` to this node's queue). Idempotent.
    async fn watch(&self, conf_id: &str) -> Result<(), BusError>;
    /// Stops it (unbinds). Idempotent.
    async fn unwatch(&self, conf_id: &str) -> Result<(), BusError>;
    /// The deliveries; `Some` the first time only.
    fn take_messages(&self) -> Option<tokio::sync::mpsc::Receiver<BusMessage>>;
    /// Whether the bus reaches beyond this process (other nodes, other
    /// systems). A room on a bus that does not publishes nothing on it: its
    /// events would only come back to itself.
    fn reaches_beyond(&self) -> bool {
        true
    }
}

/// The kind tag of an event, exactly as serde writes it in `"type"`: the last
/// word of its routing key.
pub(crate) fn kind_tag(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::MemberJoined { .. } => "memberJoined",
        EventKind::MemberLeft { .. } => "memberLeft",
        EventKind::MemberUpdated { .. } => "memberUpdated",
        EventKind::MainVideoChanged { .. } => "mainVideoChanged",
        EventKind::ConferenceStateChanged { .. } => "conferenceStateChanged",
    }
}

/// Refuses a conference id that would not be exactly one word of a topic
/// routing key: a '.' would let `conf.1.#` match conference `1.2`, and `*` or
/// `#` would be wildcards in a binding.
pub(crate) fn check_conf_id(conf_id: &str) -> Result<(), BusError> {
    let bad = conf_id.is_empty()
        || conf_id.len() > 200
        || conf_id
            .chars()
            .any(|c| matches!(c, '.' | '*' | '#') || c.is_whitespace());
    if bad {
        return Err(BusError::InvalidConfId(conf_id.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use confgate_signalling::events::{MainVideoCause, MemberRole};

    #[test]
    fn kind_tags_are_the_serde_type_tags() {
        let kinds = [
            EventKind::MemberLeft {
                user_id: "u".into(),
                reason: confgate_signalling::events::LeaveReason::Left,
            },
            EventKind::MemberUpdated {
                user_id: "u".into(),
                audio_muted: false,
                video_enabled: true,
                speaking: false,
                role: MemberRole::Member,
                connected: true,
            },
            EventKind::MainVideoChanged {
                user_id: None,
                cause: MainVideoCause::None,
            },
            EventKind::ConferenceStateChanged { state: 0 },
        ];
        for kind in kinds {
            let json = serde_json::to_value(&kind).expect("json");
            assert_eq!(json["type"], kind_tag(&kind));
        }
    }

    #[test]
    fn conf_ids_must_be_one_routing_key_word() {
        assert!(check_conf_id("12345678").is_ok());
        for bad in ["", "1.2", "1*", "#", "a b"] {
            assert!(matches!(
                check_conf_id(bad),
                Err(BusError::InvalidConfId(_))
            ));
        }
    }
}
