//! The event bus against a real RabbitMQ (`amqp://guest:guest@127.0.0.1:5672/%2f`,
//! or `CONFGATE_TEST_AMQP_URL`), with `rabbitmqctl` on the PATH to break
//! connections. Each test has its own exchange, node ids and conference ids,
//! so tests run in parallel and again and again.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::amqp::broker_url;
use confgate::events::{AmqpBus, AmqpConfig, BusMessage, EventBus};
use confgate_signalling::events::{ConferenceEvent, EventKind, MemberRole};
use lapin::options::{BasicPublishOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use tokio::sync::mpsc;

/// How long a test waits for one delivery before calling it lost.
const DELIVERY_WAIT: Duration = Duration::from_secs(15);

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "confgate=info".into()),
        )
        .with_test_writer()
        .try_init();
}

fn suffix() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// A conference id like the store's: eight digits.
fn conf_id() -> String {
    rand::random_range(10_000_000..100_000_000u32).to_string()
}

/// One test's corner of the broker.
struct Corner {
    exchange: String,
    nodes: Vec<String>,
}

impl Corner {
    fn new() -> Corner {
        Corner {
            exchange: format!("confgate.test.{}", suffix()),
            nodes: Vec::new(),
        }
    }

    /// Connects a node with a fresh id; returns the bus and its id.
    async fn node(&mut self, name: &str) -> (AmqpBus, String) {
        let node_id = format!("test-{name}-{}", suffix());
        let mut config = AmqpConfig::new(broker_url(), node_id.clone());
        config.exchange = self.exchange.clone();
        // Leftovers of a failed run go away by themselves.
        config.queue_expires = Duration::from_secs(60);
        let bus = AmqpBus::connect(config)
            .await
            .expect("connect to the test broker (is RabbitMQ running?)");
        self.nodes.push(node_id.clone());
        (bus, node_id)
    }

    /// Deletes the exchange and the nodes' queues.
    async fn clean_up(self) {
        let connection = raw_connection().await;
        let channel = connection.create_channel().await.expect("channel");
        for node_id in &self.nodes {
            channel
                .queue_delete(
                    format!("confgate.node.{node_id}").into(),
                    QueueDeleteOptions::default(),
                )
                .await
                .expect("delete a node's queue");
        }
        channel
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await
            .expect("delete the test exchange");
        let _ = connection.close(200, "test done".into()).await;
    }
}

async fn raw_connection() -> Connection {
    Connection::connect(&broker_url(), ConnectionProperties::default())
        .await
        .expect("raw connection to the test broker")
}

fn event(conf_id: &str, seq: u64) -> ConferenceEvent {
    ConferenceEvent {
        event_id: format!("{conf_id}:{seq}"),
        seq,
        conf_id: conf_id.to_owned(),
        at: 1_700_000_000_000 + i64::try_from(seq).expect("small seq"),
        kind: EventKind::MemberUpdated {
            user_id: format!("u{seq}"),
            audio_muted: seq.is_multiple_of(2),
            video_enabled: true,
            speaking: false,
            role: MemberRole::Member,
            connected: true,
        },
    }
}

/// The next event, acknowledged; skips `Resumed`.
async fn next_event(rx: &mut mpsc::Receiver<BusMessage>) -> ConferenceEvent {
    loop {
        let message = tokio::time::timeout(DELIVERY_WAIT, rx.recv())
            .await
            .expect("no delivery within 15 s")
            .expect("the bus closed its deliveries");
        if let BusMessage::Event { event, ack } = message {
            ack.ack().await;
            return event;
        }
    }
}

/// `rabbitmqctl list_connections pid client_properties`: the pids of the
/// connections whose client-provided name is `confgate-<node_id>`.
fn connection_pids(node_id: &str) -> Vec<String> {
    let output = Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "pid",
            "client_properties",
            "--quiet",
            "--no-table-headers",
        ])
        .output()
        .expect("run rabbitmqctl");
    assert!(
        output.status.success(),
        "rabbitmqctl list_connections failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // 3.10 prints one line per connection: the pid, a tab, then the client
    // properties as an Erlang term, where the name reads
    // {"connection_name",longstr,"confgate-<nodeId>"}.
    let needle = format!("\"confgate-{node_id}\"");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains(&needle))
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Makes the broker close `node_id`'s connection, as an operator or a
/// network failure would.
fn close_connection(node_id: &str) {
    let pids = connection_pids(node_id);
    assert_eq!(
        pids.len(),
        1,
        "expected one connection named confgate-{node_id}, found {pids:?}"
    );
    let status = Command::new("rabbitmqctl")
        .args([
            "close_connection",
            &pids[0],
            "test: simulated connection loss",
        ])
        .status()
        .expect("run rabbitmqctl close_connection");
    assert!(status.success(), "rabbitmqctl close_connection failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_get_their_conferences_events_in_order() {
    init_logs();
    let mut corner = Corner::new();
    let (a, _) = corner.node("a").await;
    let (b, b_id) = corner.node("b").await;
    let mut rx = b.take_messages().expect("first take");
    assert!(b.take_messages().is_none(), "deliveries are taken once");
    let (x, y, z) = (conf_id(), conf_id(), conf_id());

    b.watch(&x).await.expect("watch X");
    b.watch(&x).await.expect("watching twice is fine");
    for seq in 1..=20 {
        a.publish(&event(&x, seq)).await.expect("publish X");
        if seq.is_multiple_of(4) {
            a.publish(&event(&y, seq / 4)).await.expect("publish Y");
        }
    }
    for seq in 1..=20 {
        // Y's events, published in between, would show up here.
        assert_eq!(next_event(&mut rx).await, event(&x, seq));
    }

    b.unwatch(&x).await.expect("unwatch X");
    b.unwatch(&x).await.expect("unwatching twice is fine");
    b.watch(&z).await.expect("watch Z");
    a.publish(&event(&x, 21))
        .await
        .expect("publish X after unwatch");
    a.publish(&event(&z, 1)).await.expect("publish Z");
    // Same publisher, same queue: had X's event been routed, it would come
    // before Z's.
    assert_eq!(next_event(&mut rx).await, event(&z, 1));

    // Dropping the last handle closes the connection.
    drop(a);
    let b2 = b.clone();
    drop(b);
    assert_eq!(connection_pids(&b_id).len(), 1, "a clone keeps the bus");
    drop(b2);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !connection_pids(&b_id).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the connection outlived the last bus handle by 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let end = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert!(
        matches!(end, Ok(None)),
        "the supervisor ended with the last handle"
    );
    corner.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_events_survive_broken_connections() {
    init_logs();
    const TOTAL: u64 = 1000;
    /// Here the publisher asks for both connections to be closed (its own
    /// first)…
    const KILL_AFTER: u64 = 400;
    /// …goes on publishing up to here, a publish every millisecond or so,
    /// while `rabbitmqctl` (about a second per call) closes them: some
    /// publishes are in flight when the close lands, others wait for the
    /// reconnect…
    const PACED_UNTIL: u64 = 900;
    const PACE: Duration = Duration::from_millis(1);
    // …then waits until both are closed before publishing the rest, so the
    // test holds whichever is faster, the publisher or `rabbitmqctl`.
    /// Acks the receiver holds back until the connections are closed: those
    /// events come again, and the receiver dedupes them.
    const HELD_ACKS: std::ops::RangeInclusive<u64> = 361..=400;

    let mut corner = Corner::new();
    let (a, a_id) = corner.node("a").await;
    let (b, b_id) = corner.node("b").await;
    let mut rx = b.take_messages().expect("first take");
    let x = conf_id();
    b.watch(&x).await.expect("watch X");

    let unique = Arc::new(AtomicUsize::new(0));
    let progress = unique.clone();
    let started = Instant::now();
    let run = async move {
        let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
        let (killed_tx, killed_rx) = tokio::sync::oneshot::channel::<()>();
        let killer = tokio::task::spawn_blocking({
            let (a_id, b_id) = (a_id.clone(), b_id.clone());
            move || {
                if kill_rx.blocking_recv().is_err() {
                    return;
                }
                // The publisher first: its paced publishes meet the close.
                close_connection(&a_id);
                close_connection(&b_id);
                let _ = killed_tx.send(());
            }
        });
        let publisher = tokio::spawn({
            let x = x.clone();
            async move {
                for seq in 1..=KILL_AFTER {
                    a.publish(&event(&x, seq))
                        .await
                        .expect("publish before the kill");
                }
                let _ = kill_tx.send(());
                for seq in KILL_AFTER + 1..=PACED_UNTIL {
                    a.publish(&event(&x, seq))
                        .await
                        .unwrap_or_else(|e| panic!("publish {seq} during the kill: {e}"));
                    tokio::time::sleep(PACE).await;
                }
                let _ = killed_rx.await;
                for seq in PACED_UNTIL + 1..=TOTAL {
                    a.publish(&event(&x, seq))
                        .await
                        .unwrap_or_else(|e| panic!("publish {seq} across the kill: {e}"));
                }
                a
            }
        });

        let mut seen = HashSet::new();
        let mut last_new = 0;
        let mut resumed = 0;
        let mut duplicates = 0;
        let mut held: Vec<confgate::events::Ack> = Vec::new();
        while seen.len() < TOTAL as usize {
            let message = tokio::time::timeout(DELIVERY_WAIT, rx.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("no delivery within 15 s; {} of {TOTAL} so far", seen.len())
                })
                .expect("the bus closed its deliveries");
            let (event, ack) = match message {
                BusMessage::Resumed => {
                    resumed += 1;
                    for ack in held.drain(..) {
                        // On the closed channel: fails quietly, the broker
                        // delivers those events again.
                        ack.ack().await;
                    }
                    continue;
                }
                BusMessage::Event { event, ack } => (event, ack),
            };
            assert_eq!(event.conf_id, x, "only X is watched");
            if seen.insert(event.event_id.clone()) {
                assert_eq!(
                    event.seq,
                    last_new + 1,
                    "new events come in seq order (after dedupe)"
                );
                last_new = event.seq;
                progress.store(seen.len(), Ordering::Relaxed);
                if HELD_ACKS.contains(&event.seq) && resumed == 0 {
                    held.push(ack);
                    continue;
                }
            } else {
                duplicates += 1;
            }
            ack.ack().await;
        }
        let a = publisher.await.expect("every publish succeeded");
        killer.await.expect("rabbitmqctl closed both connections");
        assert!(
            resumed >= 1,
            "B said Resumed after its connection came back"
        );
        assert!(
            duplicates >= HELD_ACKS.count(),
            "the events whose acks were held came again: {duplicates} duplicates"
        );
        (a, b, resumed, duplicates)
    };
    let (a, b, resumed, duplicates) = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "1000 events across broken connections did not finish within 60 s: {} unique events received",
                unique.load(Ordering::Relaxed)
            )
        });
    eprintln!(
        "1000 events across two broken connections in {:?}: {resumed} Resumed, {duplicates} duplicates",
        started.elapsed()
    );
    drop((a, b));
    corner.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_publishers_events_arrive_and_garbage_is_dropped() {
    init_logs();
    let mut corner = Corner::new();
    let (b, _) = corner.node("b").await;
    let mut rx = b.take_messages().expect("first take");
    let x = conf_id();
    b.watch(&x).await.expect("watch X");

    let connection = raw_connection().await;
    let channel = connection.create_channel().await.expect("channel");
    let routing_key = format!("conf.{x}.memberUpdated");
    let publish = async |body: &[u8]| {
        channel
            .basic_publish(
                corner.exchange.as_str().into(),
                routing_key.as_str().into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_content_type("application/json".into()),
            )
            .await
            .expect("external publish");
    };
    // The wire contract, written out by hand as an external publisher would.
    let first = format!(
        r#"{{"eventId":"{x}:1","seq":1,"confId":"{x}","at":1700000000001,"type":"memberUpdated","userId":"u1","audioMuted":false,"videoEnabled":true,"speaking":false,"role":"member","connected":true}}"#
    );
    publish(first.as_bytes()).await;
    assert_eq!(next_event(&mut rx).await, event(&x, 1));

    publish(b"\xff\xfe not a conference event at all").await;
    publish(br#"{"eventId":"half"}"#).await;
    let second = serde_json::to_vec(&event(&x, 2)).expect("json");
    publish(&second).await;
    assert_eq!(
        next_event(&mut rx).await,
        event(&x, 2),
        "garbage is dropped and the consumer goes on"
    );

    let _ = connection.close(200, "test done".into()).await;
    drop(b);
    corner.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_fails_fast_and_clearly() {
    init_logs();
    let started = Instant::now();
    let config = AmqpConfig::new("amqp://guest:hunter2@127.0.0.1:1/%2f", "unreachable");
    let error = AmqpBus::connect(config)
        .await
        .expect_err("nothing listens on port 1");
    let message = error.to_string();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        message.starts_with("the event bus is unavailable: cannot connect to the broker at amqp://guest:***@127.0.0.1:1/%2f"),
        "{message}"
    );
    assert!(
        !message.contains("hunter2"),
        "the password leaked: {message}"
    );
    eprintln!("{message}");
}
