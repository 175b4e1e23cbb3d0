//! The broker itself restarts (`rabbitmqctl stop_app`, then `start_app`)
//! in the middle of a stream of 1000 events. Pages lose nothing: every event
//! once, in order. A durable consumer of the exchange gets every event after
//! the broker is back, and an event another system publishes after the
//! restart still reaches the pages: the server reconnected, declared its
//! topology and bound its conference again by itself.
//!
//! Its own test binary: cargo runs test binaries one after another, so no
//! other test shares the broker while it is down.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::amqp::broker_url;
use common::{Backend, TestServer};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ExchangeDeleteOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::{Value, json};

fn rabbitmqctl(args: &[&str]) {
    let status = std::process::Command::new("rabbitmqctl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("rabbitmqctl");
    assert!(status.success(), "rabbitmqctl {args:?} failed");
}

/// Starts the broker's application again however the test ends.
struct BrokerBack;

impl Drop for BrokerBack {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl")
            .args(["start_app"])
            .stdout(std::process::Stdio::null())
            .status();
        let _ = std::process::Command::new("rabbitmqctl")
            .args(["await_startup"])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// Connects to the broker, retrying while it restarts.
async fn connect() -> (Connection, Channel) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Connection::connect(&broker_url(), ConnectionProperties::default()).await {
            Ok(connection) => match connection.create_channel().await {
                Ok(channel) => return (connection, channel),
                Err(e) => assert!(Instant::now() < deadline, "no channel: {e}"),
            },
            Err(e) => assert!(Instant::now() < deadline, "the broker is not back: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Reads the durable queue until it is quiet, reconnecting across the
/// restart; returns the sequence numbers seen (a redelivery counts once).
async fn drain(queue: String, until: u64) -> BTreeSet<u64> {
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    'connection: while Instant::now() < deadline {
        let (connection, channel) = connect().await;
        let Ok(mut consumer) = channel
            .basic_consume(
                queue.as_str().into(),
                "outside".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
        else {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        loop {
            match tokio::time::timeout(Duration::from_secs(5), consumer.next()).await {
                Ok(Some(Ok(delivery))) => {
                    let _ = delivery.ack(BasicAckOptions::default()).await;
                    if let Ok(body) = serde_json::from_slice::<Value>(&delivery.data)
                        && let Some(seq) = body["seq"].as_u64()
                    {
                        seen.insert(seq);
                    }
                }
                // The broker went away: connect again.
                Ok(Some(Err(_)) | None) => continue 'connection,
                Err(_) if seen.last().is_some_and(|l| *l >= until) => {
                    let _ = connection.close(200, "done".into()).await;
                    return seen;
                }
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                break 'connection;
            }
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_events_while_the_broker_restarts() {
    const TOGGLES: u64 = 1000;
    let exchange = format!("confgate.test.{:08x}", rand::random::<u32>());
    let node = format!("restart-{:08x}", rand::random::<u32>());
    let outside_queue = format!("confgate.test.outside.{:08x}", rand::random::<u32>());
    let t = {
        let (exchange, node) = (exchange.clone(), node.clone());
        TestServer::start_with(Backend::Sqlite, move |c| {
            c.events.amqp_url = Some(broker_url());
            c.events.exchange = exchange;
            c.events.queue_expires_secs = 120;
            c.node.id = Some(node);
            c.websocket.requests_per_second = 100_000;
        })
        .await
    };
    let conf = t.conference("restart", Some("939393")).await;

    // Another system's durable queue on the exchange: it outlives the restart.
    let (connection, channel) = connect().await;
    common::amqp::conference_queue(&channel, &outside_queue, &exchange, &conf.conf_id).await;
    let _ = connection.close(200, "declared".into()).await;

    let member = |name: &'static str| {
        let t = &t;
        async move {
            let j = t.join("939393", name).await;
            let user_id = j["userId"].as_str().expect("id").to_string();
            let mut ws = t.ws(j["accessToken"].as_str().expect("token")).await;
            ws.request("conference.join", json!({})).await;
            (ws, user_id)
        }
    };
    let (mut a, a_id) = member("A").await;
    let (mut b, _) = member("B").await;
    let mut seqs: Vec<u64> = Vec::new();
    let note = |n: &Value, seqs: &mut Vec<u64>| {
        if n["method"] == "conference.event" {
            seqs.push(n["params"]["seq"].as_u64().expect("seq"));
        }
    };
    while let Some(n) = b.read_within(Duration::from_millis(300)).await {
        note(&n, &mut seqs);
    }
    let start = seqs.last().copied().unwrap_or(0);

    let restarted = std::sync::Arc::new(tokio::sync::Notify::new());
    let guard = BrokerBack;
    let toggler = tokio::spawn({
        let restarted = restarted.clone();
        async move {
            for i in 0..TOGGLES {
                let res = a
                    .request("conference.setAudio", json!({"muted": i % 2 == 0}))
                    .await;
                assert_eq!(res["result"], json!({}), "{res}");
                if i == 300 {
                    let restarted = restarted.clone();
                    tokio::task::spawn_blocking(move || {
                        rabbitmqctl(&["stop_app"]);
                        rabbitmqctl(&["start_app"]);
                        rabbitmqctl(&["await_startup"]);
                        restarted.notify_one();
                    });
                }
                // Spread the stream over the restart.
                if i % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            a
        }
    });
    while seqs.last().copied().unwrap_or(0) < start + TOGGLES {
        let n = tokio::time::timeout(Duration::from_secs(30), b.read())
            .await
            .expect("B's events keep coming while the broker restarts")
            .expect("B's events");
        note(&n, &mut seqs);
    }
    let a = toggler.await.expect("A's toggles");
    let expected: Vec<u64> = (seqs[0]..=start + TOGGLES).collect();
    assert_eq!(seqs, expected, "B: every event once, in order");
    tokio::time::timeout(Duration::from_secs(60), restarted.notified())
        .await
        .expect("the broker restarted");
    drop(guard);

    // After the restart, another system's event still reaches the pages:
    // the server bound its conference again.
    let (connection, channel) = connect().await;
    let last = *seqs.last().expect("events");
    let mute = json!({"eventId": format!("console-{node}"), "seq": 0, "confId": conf.conf_id,
        "at": 0, "type": "memberUpdated", "userId": a_id, "audioMuted": false,
        "videoEnabled": false, "speaking": false, "role": "member", "connected": true});
    let deadline = Instant::now() + Duration::from_secs(30);
    let update = loop {
        // Until the server's queue is bound again, the exchange drops it: publish again.
        channel
            .basic_publish(
                exchange.as_str().into(),
                format!("conf.{}.memberUpdated", conf.conf_id)
                    .as_str()
                    .into(),
                BasicPublishOptions::default(),
                mute.to_string().as_bytes(),
                BasicProperties::default().with_content_type("application/json".into()),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        if let Ok(Some(update)) =
            tokio::time::timeout(Duration::from_secs(1), b.event("memberUpdated")).await
            && update["videoEnabled"] == json!(false)
        {
            break update;
        }
        assert!(
            Instant::now() < deadline,
            "an outside event never reached the page after the restart"
        );
    };
    assert_eq!(update["userId"], json!(a_id));
    assert!(
        update["seq"].as_u64().is_some_and(|s| s > last),
        "numbered after the stream: {update}"
    );

    // The durable outside queue has every one of the 1000, published through
    // the restart (at least once; a redelivery counts once).
    let outside = drain(outside_queue.clone(), start + TOGGLES).await;
    let missing: Vec<u64> = (start + 1..=start + TOGGLES)
        .filter(|s| !outside.contains(s))
        .collect();
    assert!(
        missing.is_empty(),
        "the exchange lost {} events: {:?}…",
        missing.len(),
        &missing[..missing.len().min(10)]
    );

    a.close().await;
    b.close().await;
    t.finish().await;
    let _ = channel
        .queue_delete(outside_queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await;
    let _ = connection.close(200, "test done".into()).await;
}
