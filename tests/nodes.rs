//! Several nodes sharing one MariaDB: each registers and beats, every node
//! lists the live ones' gateways in `webrtcAddress`, a conference is served
//! by one node whichever node a page joins through, and a node that leaves
//! or is killed (SIGKILL) drops out so that its conferences go elsewhere,
//! where the members it served are shown as left.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Backend, TestServer};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_confgate");

/// A node on `url` (a shared MariaDB database) with quick heartbeats.
async fn node(url: Option<String>, id: &str) -> TestServer {
    let id = id.to_string();
    TestServer::start_with(Backend::MySql, move |c| {
        if let Some(url) = url {
            c.database.url = Some(url);
        }
        c.node.id = Some(id);
        c.node.heartbeat_secs = 1;
        c.node.dead_after_secs = 3;
    })
    .await
}

async fn pool_of(t: &TestServer) -> Vec<String> {
    let r = t
        .rpc(
            None,
            "config.getProperties",
            json!({"keys": ["webrtcAddress"]}),
        )
        .await;
    let mut pool: Vec<String> = r["result"]["webrtcAddress"]
        .as_str()
        .unwrap_or_else(|| panic!("webrtcAddress in {r}"))
        .split(',')
        .map(str::to_string)
        .collect();
    pool.sort();
    pool
}

/// Waits until `t` lists exactly `expected` (sorted) as the pool.
async fn until_pool(t: &TestServer, expected: &[&str]) {
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let pool = pool_of(t).await;
        if pool == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pool is {pool:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn gateway(t: &TestServer) -> String {
    t.state()
        .pool
        .identity()
        .expect("a serving node")
        .gateway
        .clone()
}

async fn joined_gateway(t: &TestServer, code: &str, name: &str) -> String {
    let answer = t.join(code, name).await;
    answer["webrtcAddress"]
        .as_str()
        .unwrap_or_else(|| panic!("webrtcAddress in {answer}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_pool_and_agree_where_a_conference_goes() {
    // The database outlives both nodes.
    let db = common::MySqlDatabase::create().await;
    let one = node(Some(db.url.clone()), "node-1").await;
    let two = node(Some(db.url.clone()), "node-2").await;
    let (g1, g2) = (gateway(&one), gateway(&two));
    assert_ne!(g1, g2);
    until_pool(&one, &[&g1, &g2]).await;
    until_pool(&two, &[&g1, &g2]).await;

    // Whichever node a page joins through, it is sent to the same one.
    one.conference("shared", Some("616161")).await;
    let first = joined_gateway(&two, "616161", "A").await;
    assert!(first == g1 || first == g2, "{first}");
    for _ in 0..3 {
        assert_eq!(joined_gateway(&one, "616161", "B").await, first);
        assert_eq!(joined_gateway(&two, "616161", "C").await, first);
    }
    // A WebSocket on the node that does not serve it is refused, saying where.
    let (serving, other) = if first == g1 {
        (&one, &two)
    } else {
        (&two, &one)
    };
    let j = other.join("616161", "D").await;
    let token = j["accessToken"].as_str().expect("token");
    assert_eq!(
        other.ws_query(&format!("token={token}")).await.err(),
        Some(409),
        "a second room on another node would split the conference"
    );
    let mut ws = serving.ws(token).await;
    ws.request("conference.join", json!({})).await;
    ws.close().await;

    // The serving node leaves: the other takes the conference.
    let (leaving, staying, staying_gateway) = if first == g1 {
        (one, two, g2)
    } else {
        (two, one, g1)
    };
    leaving.finish().await;
    until_pool(&staying, &[&staying_gateway]).await;
    assert_eq!(
        joined_gateway(&staying, "616161", "D").await,
        staying_gateway
    );
    staying.finish().await;
    drop(db);
}

/// `confgate serve` as a separate process on the shared database.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_drops_out_and_its_conferences_move() {
    let survivor = node(None, "survivor").await;
    let url = survivor.state().config.database_url();
    let data = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--plain-http",
            "--log-level",
            "warn",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .args(["--database-url", &url])
        .env("CONFGATE_NODE__ID", "doomed")
        .env("CONFGATE_NODE__HEARTBEAT_SECS", "1")
        .env("CONFGATE_NODE__DEAD_AFTER_SECS", "3")
        .env("CONFGATE_MEDIA__UDP_PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("confgate serve");
    let stdout = child.stdout.take().expect("stdout");
    let doomed = Process(child);
    // Read all it prints (a closed pipe would kill it at its next line).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(base) = line.split(" serving ").nth(1) {
                let _ = tx.send(base.to_string());
            }
        }
    });
    let base = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(20)))
        .await
        .expect("read")
        .expect("the node prints where it serves");
    let doomed_gateway = base.replace("http://", "ws://");
    let own = gateway(&survivor);
    until_pool(&survivor, &[&own, &doomed_gateway]).await;

    // A conference served by the doomed node (it joins first through it).
    survivor.conference("moving", Some("727272")).await;
    let client = common::client();
    let answer: serde_json::Value = client
        .post(format!("{base}/gzbwclient/conference/727272"))
        .json(&json!({"name": "A"}))
        .send()
        .await
        .expect("join on the doomed node")
        .json()
        .await
        .expect("json");
    let served_by = answer["webrtcAddress"]
        .as_str()
        .expect("gateway")
        .to_string();
    assert_eq!(
        served_by, doomed_gateway,
        "equal loads: the lower node id takes it"
    );
    assert!(
        answer.get("gateway").is_none(),
        "served where the page joined: no redirection: {answer}"
    );
    // A's page is in the conference on the doomed node.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let a_id = answer["userId"].as_str().expect("id").to_string();
    let token = answer["accessToken"].as_str().expect("token");
    let request = format!("{doomed_gateway}/gzbwclient/websck?token={token}")
        .into_client_request()
        .expect("request");
    let mut a = common::WsClient::connect(request)
        .await
        .expect("A's WebSocket on the doomed node");
    let joined = a.request("conference.join", json!({})).await;
    assert!(joined.get("result").is_some(), "{joined}");
    let elsewhere = survivor.join("727272", "B").await;
    assert_eq!(
        (
            elsewhere["webrtcAddress"].as_str(),
            elsewhere["gateway"].as_str()
        ),
        (Some(served_by.as_str()), Some(served_by.as_str())),
        "both nodes agree, and the other one sends the page there"
    );

    // SIGKILL: no goodbye. Its heartbeat stops; it drops out of the pool and
    // its conference moves to the survivor.
    drop(doomed);
    until_pool(&survivor, &[&own]).await;
    let c = survivor.join("727272", "C").await;
    assert_eq!(c["webrtcAddress"].as_str(), Some(own.as_str()));
    assert!(c.get("gateway").is_none(), "served here now: {c}");
    // The survivor's room rebuilt the conference from the stored events: A,
    // whose page was on the dead node, is shown as left.
    let mut ws = survivor.ws(c["accessToken"].as_str().expect("token")).await;
    let snapshot = ws
        .notification("conference.snapshot")
        .await
        .expect("snapshot");
    assert_eq!(snapshot["params"]["members"], json!([]), "{snapshot}");
    let conf_id = snapshot["params"]["confId"].as_str().expect("conf");
    let seq = snapshot["params"]["seq"].as_u64().expect("seq");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let left = loop {
        let stored = survivor
            .state()
            .store
            .events_between(conf_id, 1, seq)
            .await
            .expect("store");
        if let Some(left) = stored.into_iter().find(|e| {
            matches!(&e.kind, confgate_signalling::events::EventKind::MemberLeft { user_id, .. } if *user_id == a_id)
        }) {
            break left;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "A never shown as left"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        matches!(
            left.kind,
            confgate_signalling::events::EventKind::MemberLeft {
                reason: confgate_signalling::events::LeaveReason::ConnectionLost,
                ..
            }
        ),
        "{left:?}"
    );
    ws.close().await;
    drop(a);
    survivor.finish().await;
}
