//! Scenario S3 on Janus: its Streaming plugin (`janus.plugin.streaming`) as the peer of
//! confgate's MCU bridge. Plain RTP in, WebRTC out:
//!
//! - [`Source`] creates RTP mountpoints (Opus on `port`, VP8 on `port + 2`) through the API and
//!   feeds each with the generator's stamped RTP ([`Feeder`]), as the MCU does confgate's calls;
//! - each [`Viewer`] (its own WebSocket and session) `watch`es one mountpoint: Janus offers,
//!   the viewer answers with `start`, and counts what arrives like any member.
//!
//! With [`Mountpoints::PerMember`] every viewer has its own mountpoint and stream, as every
//! confgate member has its own call and stream from the MCU; with [`Mountpoints::Shared`] all
//! watch one.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::confgate::JoinOptions;
use crate::janus::{Janus, answer_in_full, janus_code};
use crate::mcu::{FeedTarget, Feeder};
use crate::metrics::Metrics;
use crate::payload::MediaShape;
use crate::peer::{AUDIO_PT, Sink, VIDEO_PT};
use crate::rx::Receiver;

const PLUGIN: &str = "janus.plugin.streaming";
/// Streaming "mountpoint already exists" (JANUS_STREAMING_ERROR_CANT_CREATE).
const CANT_CREATE: i64 = 456;

/// How S3's viewers share Janus's mountpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mountpoints {
    /// One mountpoint (and one incoming stream) per viewer, as confgate has one MCU call per
    /// member.
    PerMember,
    /// One mountpoint that every viewer watches.
    Shared,
}

/// The mountpoints and their feeds. Dropping it stops the feeds and ends the session.
pub struct Source {
    janus: Arc<Janus>,
    session: u64,
    _feeder: Feeder,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Source {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let (janus, session) = (Arc::clone(&self.janus), self.session);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let destroy = janus.call(json!({"janus": "destroy", "session_id": session}), false);
                let _ = tokio::time::timeout(Duration::from_secs(2), destroy).await;
            });
        }
    }
}

/// The `create` body of RTP mountpoint `id`: Opus (payload type [`AUDIO_PT`]) on `port`, VP8
/// ([`VIDEO_PT`]) on `port + 2`.
fn create_body(id: u64, port: u16) -> Value {
    json!({
        "request": "create",
        "type": "rtp",
        "id": id,
        "description": format!("confgate-loadgen S3 {id}"),
        "media": [
            {"type": "audio", "mid": "a", "port": port, "pt": AUDIO_PT, "codec": "opus"},
            {"type": "video", "mid": "v", "port": port + 2, "pt": VIDEO_PT, "codec": "vp8"},
        ],
    })
}

impl Source {
    /// Creates `count` mountpoints on the Janus at `url`, numbered from `id_base`, the i-th
    /// listening on `rtp_ip` port `base_port + 4 i` (audio) and `+ 2` (video), and feeds the
    /// i-th as sender `i` from sockets on `bind_ip`.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        url: &str,
        count: usize,
        id_base: u64,
        rtp_ip: IpAddr,
        base_port: u16,
        bind_ip: IpAddr,
        shape: MediaShape,
        metrics: Arc<Metrics>,
    ) -> Result<Source> {
        let (janus, mut notifications) = Janus::connect(url).await?;
        let session = janus.create_session().await.context("Janus session")?;
        let mut tasks = vec![janus.keepalive(session)];
        // Nothing to act on; drain them.
        tasks.push(tokio::spawn(async move {
            while notifications.recv().await.is_some() {}
        }));
        let handle = janus
            .attach_to(session, PLUGIN)
            .await
            .context("attaching to the Streaming plugin")?;
        let feeder = Feeder::start(shape, metrics);
        for i in 0..count {
            let id = id_base + i as u64;
            let port = u16::try_from(usize::from(base_port) + 4 * i)
                .context("mountpoint ports beyond 65535")?;
            match janus
                .message(session, handle, create_body(id, port), None)
                .await
            {
                Ok(_) => {}
                Err(e) if janus_code(&e) == Some(CANT_CREATE) => {
                    eprintln!("Janus mountpoint {id}: {e:#} (used as it is)");
                }
                Err(e) => return Err(e.context(format!("creating mountpoint {id}"))),
            }
            let bind = SocketAddr::new(bind_ip, 0);
            let sockets = (
                Arc::new(UdpSocket::bind(bind).await.context("RTP socket")?),
                Arc::new(UdpSocket::bind(bind).await.context("RTP socket")?),
            );
            let target = FeedTarget {
                audio: SocketAddr::new(rtp_ip, port),
                video: SocketAddr::new(rtp_ip, port + 2),
                audio_pt: AUDIO_PT,
                video_pt: VIDEO_PT,
            };
            // Janus takes no keyframe requests from viewers back to an RTP source without an
            // RTCP port: keyframes come by the period alone.
            let keyframes = Arc::new(AtomicBool::new(true));
            feeder.add(i as u64, i as u32, shape, sockets, target, keyframes);
        }
        Ok(Source {
            janus,
            session,
            _feeder: feeder,
            tasks,
        })
    }
}

/// A viewer of a mountpoint. Dropping it ends its session.
pub struct Viewer {
    janus: Arc<Janus>,
    session: u64,
    peer: Option<Receiver>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        // Ending the session hangs the handle up. (A `stop` is not waited for: to a viewer
        // whose connection never came up Janus sends its ack but no event.)
        let (janus, session, peer) = (Arc::clone(&self.janus), self.session, self.peer.take());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let destroy = janus.call(json!({"janus": "destroy", "session_id": session}), false);
                let _ = tokio::time::timeout(Duration::from_secs(2), destroy).await;
                drop(peer);
            });
        }
    }
}

impl Viewer {
    /// Its connection is up (ICE and DTLS).
    pub fn connected(&self) -> bool {
        self.peer.as_ref().is_some_and(Receiver::is_connected)
    }
}

/// Watches mountpoint `mountpoint` of the Janus at `url`, counting what arrives into `sink`.
pub async fn watch(
    url: &str,
    mountpoint: u64,
    options: &JoinOptions,
    sink: Sink,
) -> Result<Viewer> {
    let (janus, mut notifications) = Janus::connect(url).await?;
    let session = janus.create_session().await.context("Janus session")?;
    let mut viewer = Viewer {
        janus: Arc::clone(&janus),
        session,
        peer: None,
        tasks: vec![janus.keepalive(session)],
    };
    viewer.tasks.push(tokio::spawn(async move {
        while let Some(n) = notifications.recv().await {
            match n["janus"].as_str() {
                Some("timeout") => eprintln!("Janus session {session} timed out"),
                Some("hangup") => eprintln!("Janus hung up a viewer: {}", n["reason"]),
                _ => {}
            }
        }
    }));
    let handle = janus
        .attach_to(session, PLUGIN)
        .await
        .context("attaching to the Streaming plugin")?;
    let offer = janus
        .message(
            session,
            handle,
            json!({"request": "watch", "id": mountpoint}),
            None,
        )
        .await
        .with_context(|| format!("watching mountpoint {mountpoint}"))?
        .sdp
        .with_context(|| format!("watching mountpoint {mountpoint}: no offer"))?;
    let peer = Receiver::new(options.rx, options.bind_ip, options.srtp, sink).await?;
    let answer = answer_in_full(&peer, offer).await?;
    viewer.peer = Some(peer);
    janus
        .message(
            session,
            handle,
            json!({"request": "start"}),
            Some(json!({"type": "answer", "sdp": answer, "trickle": false})),
        )
        .await
        .context("starting to watch")?;
    Ok(viewer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountpoints_are_opus_and_vp8_on_two_ports() {
        let body = create_body(9900, 20004);
        assert_eq!(body["type"], "rtp");
        assert_eq!(body["media"][0]["port"], 20004);
        assert_eq!(body["media"][0]["codec"], "opus");
        assert_eq!(body["media"][1]["port"], 20006);
        assert_eq!(body["media"][1]["pt"], VIDEO_PT);
    }
}
