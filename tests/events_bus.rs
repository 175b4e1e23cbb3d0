//! A server on the real RabbitMQ (`--amqp-url`): its conference events go out
//! on the exchange in the documented form, and events another system
//! publishes there (in that form, with its own event ids) reach the pages as
//! that system's commands: a mute, a pin, the end of the conference; a
//! redelivered one is applied once.

mod common;

use std::time::Duration;

use common::amqp::broker_url;
use common::{Backend, TestServer};
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicPublishOptions, ExchangeDeleteOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_go_out_on_the_exchange_and_other_systems_events_come_in() {
    let exchange = format!("confgate.test.{:08x}", rand::random::<u32>());
    let node = format!("events-bus-{:08x}", rand::random::<u32>());
    let t = {
        let (exchange, node) = (exchange.clone(), node.clone());
        TestServer::start_with(Backend::Sqlite, move |c| {
            c.events.amqp_url = Some(broker_url());
            c.events.exchange = exchange;
            c.events.queue_expires_secs = 60;
            c.node.id = Some(node);
        })
        .await
    };
    let conf = t.conference("bus", Some("919191")).await;

    // What a consumer of the exchange sees: a queue bound to the conference.
    let (connection, channel, mut consumer) =
        common::amqp::conference_consumer(&exchange, &conf.conf_id).await;

    let j = t.join("919191", "Alice").await;
    let user_id = j["userId"].as_str().expect("id").to_string();
    let mut ws = t.ws(j["accessToken"].as_str().expect("token")).await;
    ws.request("conference.join", json!({})).await;

    // The join went out: routing key conf.<confId>.memberJoined, JSON body.
    let joined = loop {
        let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("an event on the exchange in time")
            .expect("stream")
            .expect("delivery");
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
        let body: Value = serde_json::from_slice(&delivery.data).expect("JSON body");
        if body["type"] == "memberJoined" {
            assert_eq!(
                delivery.routing_key.as_str(),
                format!("conf.{}.memberJoined", conf.conf_id)
            );
            break body;
        }
    };
    assert_eq!(joined["member"]["userId"], user_id.as_str());
    assert_eq!(
        joined["eventId"],
        format!("{}:{}", conf.conf_id, joined["seq"])
    );

    // Another system mutes Alice: the page sees it as an ordinary update.
    let publish = async |kind: &str, body: Value| {
        channel
            .basic_publish(
                exchange.as_str().into(),
                format!("conf.{}.{kind}", conf.conf_id).as_str().into(),
                BasicPublishOptions::default(),
                body.to_string().as_bytes(),
                BasicProperties::default().with_content_type("application/json".into()),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
    };
    let mute = json!({"eventId": "mcu-console-1", "seq": 0, "confId": conf.conf_id, "at": 0,
        "type": "memberUpdated", "userId": user_id, "audioMuted": true, "videoEnabled": true,
        "speaking": false, "role": "member", "connected": true});
    publish("memberUpdated", mute.clone()).await;
    let update = tokio::time::timeout(Duration::from_secs(5), ws.event("memberUpdated"))
        .await
        .expect("in time")
        .expect("the page sees the mute");
    assert_eq!(
        (update["userId"].as_str(), update["audioMuted"].as_bool()),
        (Some(user_id.as_str()), Some(true))
    );
    assert!(
        update["seq"]
            .as_u64()
            .is_some_and(|s| s > joined["seq"].as_u64().unwrap_or(0)),
        "numbered by the room: {update}"
    );
    // Alice unmutes herself; then the same mute event comes again (a
    // redelivery): it is not applied twice.
    let unmuted = ws
        .request("conference.setAudio", json!({"muted": false}))
        .await;
    assert_eq!(unmuted["result"], json!({}));
    let next = ws.event("memberUpdated").await.expect("own unmute");
    assert_eq!(next["audioMuted"], false);
    publish("memberUpdated", mute).await;
    // Then it pins Alice: the bus keeps the order, so once the page sees the
    // pin, the repeated mute was handled, and nothing came of it.
    publish(
        "mainVideoChanged",
        json!({"eventId": "mcu-console-3", "seq": 0, "confId": conf.conf_id, "at": 0,
            "type": "mainVideoChanged", "userId": user_id, "cause": "pinned"}),
    )
    .await;
    loop {
        let n = ws
            .notification("conference.event")
            .await
            .expect("the pin reaches the page");
        let p = &n["params"];
        assert_ne!(
            (p["type"].as_str(), p["audioMuted"].as_bool()),
            (Some("memberUpdated"), Some(true)),
            "the repeated mute was applied again: {p}"
        );
        if p["type"] == "mainVideoChanged" {
            assert_eq!(
                (p["userId"].as_str(), p["cause"].as_str()),
                (Some(user_id.as_str()), Some("pinned"))
            );
            break;
        }
    }

    // The conference system ends the conference.
    publish(
        "conferenceStateChanged",
        json!({"eventId": "mcu-console-2", "seq": 0, "confId": conf.conf_id, "at": 0,
            "type": "conferenceStateChanged", "state": 31}),
    )
    .await;
    let closed = tokio::time::timeout(Duration::from_secs(5), ws.notification("session.closed"))
        .await
        .expect("in time")
        .expect("closed");
    assert!(
        closed["params"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ended")),
        "{closed}"
    );

    t.finish().await;
    let _ = channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await;
    let _ = connection.close(200, "test done".into()).await;
}

/// `rabbitmqctl close_connection` on the connection named `confgate-<node>`.
fn break_bus_connection(node: &str) {
    let output = std::process::Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "pid",
            "client_properties",
            "--quiet",
            "--no-table-headers",
        ])
        .output()
        .expect("rabbitmqctl");
    let needle = format!("\"confgate-{node}\"");
    let pids: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.contains(&needle))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert_eq!(pids.len(), 1, "the server's bus connection: {pids:?}");
    let status = std::process::Command::new("rabbitmqctl")
        .args(["close_connection", &pids[0], "test: connection lost"])
        .status()
        .expect("rabbitmqctl");
    assert!(status.success());
}

/// 1000 events while the server's broker connection is broken and a page's
/// WebSocket is dropped and reconnected: the page gets every event exactly
/// once, in order, and a consumer of the exchange gets every one too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_events_through_a_broken_broker_and_a_dropped_socket() {
    const TOGGLES: u64 = 1000;
    let exchange = format!("confgate.test.{:08x}", rand::random::<u32>());
    let node = format!("events-1000-{:08x}", rand::random::<u32>());
    let t = {
        let (exchange, node) = (exchange.clone(), node.clone());
        TestServer::start_with(Backend::Sqlite, move |c| {
            c.events.amqp_url = Some(broker_url());
            c.events.exchange = exchange;
            c.events.queue_expires_secs = 60;
            c.node.id = Some(node);
            c.websocket.requests_per_second = 100_000;
            c.websocket.grace_ms = 30_000;
        })
        .await
    };
    let conf = t.conference("thousand", Some("929292")).await;

    // An outside consumer of the conference's events.
    let (connection, channel, mut consumer) =
        common::amqp::conference_consumer(&exchange, &conf.conf_id).await;
    let outside = tokio::spawn(async move {
        let mut seen = std::collections::BTreeSet::new();
        while let Ok(Some(Ok(delivery))) =
            tokio::time::timeout(Duration::from_secs(3), consumer.next()).await
        {
            let _ = delivery.ack(BasicAckOptions::default()).await;
            if let Ok(body) = serde_json::from_slice::<Value>(&delivery.data)
                && let Some(seq) = body["seq"].as_u64()
            {
                seen.insert(seq);
            }
        }
        seen
    });

    let member = |name: &'static str| {
        let t = &t;
        async move {
            let j = t.join("929292", name).await;
            let token = j["accessToken"].as_str().expect("token").to_string();
            let mut ws = t.ws(&token).await;
            ws.request("conference.join", json!({})).await;
            (ws, token)
        }
    };
    let (mut a, _) = member("A").await;
    let (mut b, b_token) = member("B").await;
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

    let toggler = tokio::spawn(async move {
        for i in 0..TOGGLES {
            let res = a
                .request("conference.setAudio", json!({"muted": i % 2 == 0}))
                .await;
            assert_eq!(res["result"], json!({}), "{res}");
            if i == 300 {
                let node = node.clone();
                tokio::task::spawn_blocking(move || break_bus_connection(&node));
            }
        }
        a
    });
    // B reads for a while, drops its socket, and comes back with lastSeq.
    while seqs.last().copied().unwrap_or(0) < start + 500 {
        let n = b.read().await.expect("B's events");
        note(&n, &mut seqs);
    }
    b.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let last = seqs.last().copied().unwrap_or(0);
    let mut b = t
        .ws_query(&format!("token={b_token}&lastSeq={last}"))
        .await
        .expect("B reconnects");
    let a = toggler.await.expect("A's toggles");
    while let Some(n) = b.read_within(Duration::from_millis(1500)).await {
        note(&n, &mut seqs);
    }
    let end = seqs.last().copied().unwrap_or(0);
    assert!(
        end >= start + TOGGLES,
        "B got up to {end}, A made {TOGGLES} events after {start}"
    );
    let expected: Vec<u64> = (seqs[0]..=end).collect();
    assert_eq!(seqs, expected, "every event once, in order");

    // The outside consumer has them all too, the broken connection notwithstanding.
    let outside = outside.await.expect("consumer");
    let missing: Vec<u64> = (start + 1..=start + TOGGLES)
        .filter(|s| !outside.contains(s))
        .collect();
    assert!(
        missing.is_empty(),
        "the exchange lost {} events: {:?}…",
        missing.len(),
        &missing[..missing.len().min(10)]
    );

    drop(a);
    b.close().await;
    t.finish().await;
    let _ = channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await;
    let _ = connection.close(200, "test done".into()).await;
}

/// The exchange's bindings to `queue`, from `rabbitmqctl list_bindings`.
fn bindings_of(queue: &str) -> Vec<String> {
    let output = std::process::Command::new("rabbitmqctl")
        .args([
            "list_bindings",
            "destination_name",
            "routing_key",
            "--quiet",
            "--no-table-headers",
        ])
        .output()
        .expect("rabbitmqctl");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| {
            let mut cols = l.split('\t');
            (cols.next() == Some(queue)).then(|| cols.next().unwrap_or("").to_string())
        })
        .collect()
}

/// A room with nobody in it closes after `websocket.room_idle_secs`, and the
/// node stops following its conference on the bus; the next page opens it
/// again, numbering on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_room_closes_and_unbinds_then_opens_again() {
    let exchange = format!("confgate.test.{:08x}", rand::random::<u32>());
    let node = format!("events-idle-{:08x}", rand::random::<u32>());
    let t = {
        let (exchange, node) = (exchange.clone(), node.clone());
        TestServer::start_with(Backend::Sqlite, move |c| {
            c.events.amqp_url = Some(broker_url());
            c.events.exchange = exchange;
            c.events.queue_expires_secs = 60;
            c.node.id = Some(node);
            c.websocket.room_idle_secs = 1;
        })
        .await
    };
    let conf = t.conference("idle", Some("939393")).await;
    let queue = format!("confgate.node.{node}");
    let key = format!("conf.{}.#", conf.conf_id);
    let until = async |what: &str, done: &dyn Fn() -> bool| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };

    let j = t.join("939393", "A").await;
    let token = j["accessToken"].as_str().expect("token").to_string();
    let mut ws = t.ws(&token).await;
    ws.request("conference.join", json!({})).await;
    until("the node follows the conference", &|| {
        bindings_of(&queue).contains(&key)
    })
    .await;
    ws.request("conference.leave", json!({})).await;
    ws.close().await;
    until("the empty room closes", &|| {
        t.state().rooms.existing(&conf.conf_id).is_none()
    })
    .await;
    until("the node stops following it", &|| {
        !bindings_of(&queue).contains(&key)
    })
    .await;

    let mut ws = t.ws(&token).await;
    let snapshot = ws
        .notification("conference.snapshot")
        .await
        .expect("snapshot");
    assert!(
        snapshot["params"]["seq"].as_u64().is_some_and(|s| s >= 2),
        "the reopened room numbers on: {snapshot}"
    );
    assert!(t.state().rooms.existing(&conf.conf_id).is_some());
    ws.close().await;
    t.finish().await;
    let connection = Connection::connect(&broker_url(), ConnectionProperties::default())
        .await
        .expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    let _ = channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await;
    let _ = connection.close(200, "test done".into()).await;
}
