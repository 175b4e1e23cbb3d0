//! RabbitMQ as another system sees the event exchange: the broker's address
//! and a queue bound to one conference's events.

use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, Consumer};

/// RabbitMQ at 127.0.0.1:5672 (guest/guest), or `CONFGATE_TEST_AMQP_URL`.
pub fn broker_url() -> String {
    std::env::var("CONFGATE_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Declares `queue` and binds it to every event of `conf_id` on `exchange`
/// (`conf.<confId>.#`); returns its name. An empty name makes an exclusive
/// queue named by the broker, gone with the connection; a given name a
/// durable one, which outlives the connection and a broker restart.
pub async fn conference_queue(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    conf_id: &str,
) -> String {
    let options = if queue.is_empty() {
        QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        }
    } else {
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        }
    };
    let declared = channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await
        .expect("queue");
    let name = declared.name().as_str().to_owned();
    channel
        .queue_bind(
            name.as_str().into(),
            exchange.into(),
            format!("conf.{conf_id}.#").as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    name
}

/// A new connection consuming an exclusive queue bound to `conf_id`'s
/// events on `exchange` (which the server declared when it connected).
pub async fn conference_consumer(exchange: &str, conf_id: &str) -> (Connection, Channel, Consumer) {
    let connection = Connection::connect(&broker_url(), ConnectionProperties::default())
        .await
        .expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    let queue = conference_queue(&channel, "", exchange, conf_id).await;
    let consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    (connection, channel, consumer)
}
