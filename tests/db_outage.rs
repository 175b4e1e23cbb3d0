//! The database goes away under a running server and comes back: requests
//! fail quickly with a clear "unavailable" (503) meanwhile, `/readyz` says
//! so, and everything works again afterwards without a restart.
//!
//! The server reaches MariaDB through a TCP relay of the test's own, which
//! the test cuts (every connection dropped, new ones refused) and restores:
//! an outage of this server's database only, which the other tests do not
//! feel.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Backend, MySqlDatabase, TestServer};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A TCP relay to MariaDB that can be cut and restored.
struct Relay {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<tokio::sync::Mutex<JoinSet<()>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(to: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(true));
        let links = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
        let accept = tokio::spawn({
            let (up, links) = (up.clone(), links.clone());
            async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up.load(Ordering::SeqCst) {
                        drop(inbound); // refused: the database is "down"
                        continue;
                    }
                    links.lock().await.spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(to).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            }
        });
        Relay {
            addr,
            up,
            links,
            accept,
        }
    }

    /// Every open connection dropped, new ones refused.
    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.links.lock().await.abort_all();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn list(t: &TestServer, chair: &str) -> serde_json::Value {
    t.rpc(Some(chair), "conference.list", json!({})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_goes_away_and_comes_back() {
    let db = MySqlDatabase::create().await;
    let relay = Relay::start("127.0.0.1:3306".parse().expect("addr")).await;
    let url = db
        .url
        .replace("127.0.0.1:3306", &relay.addr.to_string())
        .replace("localhost:3306", &relay.addr.to_string());
    assert!(
        url.contains(&relay.addr.to_string()),
        "through the relay: {url}"
    );
    let t = TestServer::start_with(Backend::MySql, move |c| c.database.url = Some(url)).await;
    let (_, chair) = t.chair("Chair").await;
    let ok = list(&t, &chair).await;
    assert!(ok.get("result").is_some(), "{ok}");

    relay.cut().await;
    let started = Instant::now();
    let failed = list(&t, &chair).await;
    let took = started.elapsed();
    assert_eq!(failed["error"]["code"], 503, "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unavailable")),
        "a clear message: {failed}"
    );
    assert!(took < Duration::from_secs(8), "failed fast: {took:?}");
    let ready = t.client.get(t.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 503, "not ready without its database");

    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let again = list(&t, &chair).await;
        if again.get("result").is_some() {
            break;
        }
        assert_eq!(again["error"]["code"], 503, "{again}");
        assert!(Instant::now() < deadline, "never recovered: {again}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = t.client.get(t.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 200, "ready again");
    // Writes work again too.
    let created = t
        .rpc(
            Some(&chair),
            "conference.create",
            json!({"name": "after the outage"}),
        )
        .await;
    assert!(created.get("result").is_some(), "{created}");
    t.finish().await;
    drop(db);
}
