//! A synthetic member of a confgate conference, through the real join flow: the join link
//! (HTTP), the WebSocket (JSON-RPC 2.0), `conference.join`, then WebRTC: a publish connection
//! (`media.offer`) and the subscribe connection the server offers (`media.offer` notification,
//! answered with `media.answer`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::peer::{MediaShape, Sink, Srtp};
use crate::rx::{Publisher, Receiver, RxPath};
use crate::ws::spawn_json_socket;

/// A JSON-RPC 2.0 client over one WebSocket.
struct Rpc {
    out: mpsc::UnboundedSender<Message>,
    pending: Arc<StdMutex<HashMap<u64, oneshot::Sender<Value>>>>,
    next: AtomicU64,
}

impl Rpc {
    async fn request(&self, method: &str, params: Value) -> Result<Value> {
        let id = self.next.fetch_add(1, Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.out
            .send(Message::text(body.to_string()))
            .map_err(|_| anyhow!("{method}: the WebSocket is closed"))?;
        let reply = tokio::time::timeout(Duration::from_secs(20), rx)
            .await
            .map_err(|_| anyhow!("{method}: no answer in 20 s"))?
            .map_err(|_| anyhow!("{method}: the WebSocket closed"))?;
        if let Some(error) = reply.get("error") {
            bail!("{method}: {error}");
        }
        Ok(reply.get("result").cloned().unwrap_or(Value::Null))
    }
}

/// The replies awaited; a poisoned lock still holds them.
fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a member needs to join.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    pub bind_ip: IpAddr,
    pub srtp: Srtp,
    pub shape: MediaShape,
    /// How the subscribe connections receive.
    pub rx: RxPath,
    /// How the publish connection sends.
    pub tx: RxPath,
}

/// A member in a conference. Dropping it leaves (the WebSocket and connections close).
pub struct Member {
    publish: Option<Publisher>,
    subscribe: Arc<Mutex<Option<Receiver>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Member {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Member {
    /// Its connections are up (ICE and DTLS): the subscribe one, and the publish one if any.
    pub async fn connected(&self) -> bool {
        let subscribed = self
            .subscribe
            .lock()
            .await
            .as_ref()
            .is_some_and(Receiver::is_connected);
        subscribed && self.publish.as_ref().is_none_or(Publisher::is_connected)
    }
}

/// `http://host:port` and the code of a join link `http://host:port/gzbwclient/conference/CODE`.
fn split_link(link: &str) -> Result<(String, String)> {
    let at = link
        .find("/gzbwclient/conference/")
        .with_context(|| format!("not a join link: {link}"))?;
    let code = link[at + "/gzbwclient/conference/".len()..]
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .to_owned();
    anyhow::ensure!(!code.is_empty(), "no code in the join link {link}");
    Ok((link[..at].to_owned(), code))
}

/// Joins `link` as `name`. A publisher sends synthetic media as sender `index`; every member
/// subscribes and counts what it receives into `sink`.
pub async fn join(
    http: &reqwest::Client,
    link: &str,
    name: &str,
    publish: bool,
    options: &JoinOptions,
    sink: Sink,
) -> Result<Member> {
    let (base, code) = split_link(link)?;
    let answer: Value = http
        .post(format!("{base}/gzbwclient/conference/{code}"))
        .json(&json!({"name": name}))
        .send()
        .await
        .context("join link")?
        .error_for_status()
        .context("join link")?
        .json()
        .await
        .context("join answer")?;
    let token = answer["accessToken"]
        .as_str()
        .with_context(|| format!("the join answered no token: {answer}"))?;
    let gateway = answer["gateway"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| base.replacen("http", "ws", 1));
    let url = format!("{gateway}/gzbwclient/websck?token={token}");
    let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .with_context(|| format!("WebSocket {gateway}"))?;
    let pending: Arc<StdMutex<HashMap<u64, oneshot::Sender<Value>>>> = Arc::default();
    let (notify_tx, mut notifications) = mpsc::unbounded_channel::<Value>();
    let (out, [writer, reader]) = spawn_json_socket(
        socket,
        {
            let pending = Arc::clone(&pending);
            move |value| {
                if value.get("method").is_some() {
                    let _ = notify_tx.send(value);
                } else if let Some(id) = value.get("id").and_then(Value::as_u64)
                    && let Some(tx) = lock(&pending).remove(&id)
                {
                    let _ = tx.send(value);
                }
            }
        },
        || {},
    );
    let rpc = Arc::new(Rpc {
        out,
        pending,
        next: AtomicU64::new(1),
    });
    rpc.request(
        "conference.join",
        json!({"audioMuted": !publish, "videoEnabled": publish}),
    )
    .await?;

    // The subscribe connection: the server offers it at join and again whenever tracks come
    // or go; the same connection answers each offer.
    let subscribe: Arc<Mutex<Option<Receiver>>> = Arc::default();
    let (sender, metrics) = (sink.member as u32, Arc::clone(&sink.metrics));
    let subscriber = {
        let (rpc, subscribe, options) = (Arc::clone(&rpc), Arc::clone(&subscribe), options.clone());
        tokio::spawn(async move {
            while let Some(n) = notifications.recv().await {
                if n["method"] != "media.offer" {
                    continue;
                }
                let Some(sdp) = n["params"]["sdp"].as_str() else {
                    continue;
                };
                let mut slot = subscribe.lock().await;
                if slot.is_none() {
                    let receiver =
                        Receiver::new(options.rx, options.bind_ip, options.srtp, sink.clone());
                    match receiver.await {
                        Ok(peer) => *slot = Some(peer),
                        Err(e) => {
                            eprintln!("subscribe connection: {e:#}");
                            return;
                        }
                    }
                }
                let Some(peer) = slot.as_ref() else { return };
                match peer.answer(sdp.to_owned()).await {
                    Ok(answer) => {
                        drop(slot);
                        if let Err(e) = rpc.request("media.answer", json!({"sdp": answer})).await {
                            eprintln!("media.answer: {e:#}");
                        }
                    }
                    Err(e) => eprintln!("subscriber offer: {e:#}"),
                }
            }
        })
    };

    let publish_peer = if publish {
        let mut peer = Publisher::new(options.tx, options.bind_ip, options.srtp).await?;
        let offer = peer.offer(name).await?;
        let answer = rpc.request("media.offer", json!({"sdp": offer})).await?;
        let sdp = answer["sdp"]
            .as_str()
            .with_context(|| format!("media.offer answered no SDP: {answer}"))?;
        peer.apply_answer(sdp.to_owned()).await?;
        peer.start_sending(sender, options.shape, metrics);
        Some(peer)
    } else {
        None
    };
    Ok(Member {
        publish: publish_peer,
        subscribe,
        tasks: vec![writer, reader, subscriber],
    })
}
