//! The event bus of a single node: no broker, events go straight from
//! `publish` to this node's deliveries.

use std::collections::HashSet;
use std::sync::Mutex;

use confgate_signalling::events::ConferenceEvent;
use tokio::sync::mpsc;

use super::{Ack, BusError, BusMessage, DELIVERY_CAPACITY, EventBus, check_conf_id};

/// An [`EventBus`] for one node: `publish` delivers to this node when it
/// watches the event's conference, in publish order. Acks do nothing and the
/// bus never says [`BusMessage::Resumed`].
///
/// Up to 1024 events wait for the receiver; beyond that `publish` waits for
/// it to catch up (an event is never dropped). An event published while its
/// conference is not watched goes nowhere, as with a broker.
pub struct InProcessBus {
    /// Held only to read or change the set: never across an await.
    watched: Mutex<HashSet<String>>,
    deliveries: mpsc::Sender<BusMessage>,
    /// Until `take_messages`.
    receiver: Mutex<Option<mpsc::Receiver<BusMessage>>>,
}

impl InProcessBus {
    pub fn new() -> InProcessBus {
        let (deliveries, receiver) = mpsc::channel(DELIVERY_CAPACITY);
        InProcessBus {
            watched: Mutex::new(HashSet::new()),
            deliveries,
            receiver: Mutex::new(Some(receiver)),
        }
    }

    fn watches(&self, conf_id: &str) -> bool {
        self.watched
            .lock()
            .map(|w| w.contains(conf_id))
            .unwrap_or(false)
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        InProcessBus::new()
    }
}

#[async_trait::async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, event: &ConferenceEvent) -> Result<(), BusError> {
        check_conf_id(&event.conf_id)?;
        if !self.watches(&event.conf_id) {
            return Ok(());
        }
        let message = BusMessage::Event {
            event: event.clone(),
            ack: Ack::noop(),
        };
        if self.deliveries.send(message).await.is_err() {
            // The receiver was taken and dropped: this node no longer listens.
            tracing::debug!(event_id = %event.event_id, "in-process bus: nobody receives; event dropped");
        }
        Ok(())
    }

    async fn watch(&self, conf_id: &str) -> Result<(), BusError> {
        check_conf_id(conf_id)?;
        if let Ok(mut watched) = self.watched.lock() {
            watched.insert(conf_id.to_owned());
        }
        Ok(())
    }

    async fn unwatch(&self, conf_id: &str) -> Result<(), BusError> {
        check_conf_id(conf_id)?;
        if let Ok(mut watched) = self.watched.lock() {
            watched.remove(conf_id);
        }
        Ok(())
    }

    fn take_messages(&self) -> Option<mpsc::Receiver<BusMessage>> {
        self.receiver.lock().ok().and_then(|mut r| r.take())
    }

    fn reaches_beyond(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confgate_signalling::events::EventKind;

    fn event(conf_id: &str, seq: u64) -> ConferenceEvent {
        ConferenceEvent {
            event_id: format!("{conf_id}:{seq}"),
            seq,
            conf_id: conf_id.into(),
            at: 1_700_000_000_000,
            kind: EventKind::ConferenceStateChanged { state: 0 },
        }
    }

    async fn next_event(rx: &mut mpsc::Receiver<BusMessage>) -> ConferenceEvent {
        match rx.try_recv() {
            Ok(BusMessage::Event { event, ack }) => {
                ack.ack().await;
                event
            }
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn delivers_watched_conferences_in_publish_order() {
        let bus = InProcessBus::new();
        let mut rx = bus.take_messages().expect("first take");
        bus.watch("100").await.expect("watch");
        bus.watch("100").await.expect("watching twice is fine");
        for seq in 1..=5 {
            bus.publish(&event("100", seq)).await.expect("publish");
            bus.publish(&event("200", seq)).await.expect("publish");
        }
        for seq in 1..=5 {
            assert_eq!(next_event(&mut rx).await, event("100", seq));
        }
        assert!(rx.try_recv().is_err(), "conference 200 is not watched");
    }

    #[tokio::test]
    async fn unwatch_stops_delivery() {
        let bus = InProcessBus::new();
        let mut rx = bus.take_messages().expect("first take");
        bus.watch("100").await.expect("watch");
        bus.publish(&event("100", 1)).await.expect("publish");
        bus.unwatch("100").await.expect("unwatch");
        bus.unwatch("100").await.expect("unwatching twice is fine");
        bus.publish(&event("100", 2)).await.expect("publish");
        assert_eq!(next_event(&mut rx).await, event("100", 1));
        assert!(rx.try_recv().is_err(), "published after unwatch");
    }

    #[tokio::test]
    async fn messages_are_taken_once() {
        let bus = InProcessBus::new();
        assert!(bus.take_messages().is_some());
        assert!(bus.take_messages().is_none());
        // Publishing with the receiver gone is not an error.
        bus.watch("100").await.expect("watch");
        bus.publish(&event("100", 1)).await.expect("publish");
    }

    #[tokio::test]
    async fn refuses_conf_ids_that_are_not_one_routing_key_word() {
        let bus = InProcessBus::new();
        assert!(matches!(
            bus.watch("1.2").await,
            Err(BusError::InvalidConfId(_))
        ));
        assert!(matches!(
            bus.publish(&event("1#", 1)).await,
            Err(BusError::InvalidConfId(_))
        ));
    }
}
