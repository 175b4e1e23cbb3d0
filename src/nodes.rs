//! The pool of nodes sharing one database: this node's heartbeat, the live
//! nodes, and which node serves each conference.
//!
//! Every node refreshes its row in `nodes` every `node.heartbeat_secs` with
//! its gateway address and load, and reads back the nodes seen within
//! `node.dead_after_secs` (kept in memory, so requests never wait on it).
//! A conference is allocated to one node, the one already serving it while
//! that node lives, else the least loaded live node; a page that joins on
//! any node is told that node's gateway (`webrtcAddress`).

use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::AppState;
use crate::store::{self, NodeRow};

/// This node, once it listens (its gateway needs the port).
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub id: String,
    /// `wss://host:port` or `ws://host:port`.
    pub gateway: String,
    pub started_at: i64,
}

/// What a node knows of the pool.
#[derive(Debug, Default)]
pub struct Pool {
    identity: OnceLock<NodeIdentity>,
    /// The live nodes at the last heartbeat, least loaded first.
    live: RwLock<Vec<NodeRow>>,
    /// Every gateway seen live since this node started: their pages may
    /// still come here after their node went away.
    seen: RwLock<Vec<String>>,
}

impl Pool {
    pub fn identity(&self) -> Option<&NodeIdentity> {
        self.identity.get()
    }

    pub(crate) fn set_identity(&self, identity: NodeIdentity) {
        let _ = self.identity.set(identity);
    }

    /// The live nodes as of the last heartbeat.
    pub fn live(&self) -> Vec<NodeRow> {
        self.live
            .read()
            .map(|l| l.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn seen(&self) -> Vec<String> {
        self.seen
            .read()
            .map(|l| l.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn set_live(&self, nodes: Vec<NodeRow>) {
        {
            let mut seen = self.seen.write().unwrap_or_else(|p| p.into_inner());
            for node in &nodes {
                if !seen.contains(&node.gateway) {
                    seen.push(node.gateway.clone());
                }
            }
        }
        match self.live.write() {
            Ok(mut l) => *l = nodes,
            Err(p) => *p.into_inner() = nodes,
        }
    }
}

/// The gateway pool for `webrtcAddress`: the configured list when there is
/// one, else every live node's gateway, else this node's own.
pub fn gateways(state: &AppState) -> Vec<String> {
    if !state.config.http.gateway_addresses.is_empty() {
        return state.config.http.gateway_addresses.clone();
    }
    let mut live: Vec<String> = state.pool.live().into_iter().map(|n| n.gateway).collect();
    if let Some(me) = state.pool.identity()
        && !live.contains(&me.gateway)
    {
        live.insert(0, me.gateway.clone());
    }
    if live.is_empty() {
        return state.config.gateway_addresses();
    }
    live
}

/// The page origin (`https://host:port`) of a gateway (`wss://host:port`).
fn page_origin(gateway: &str) -> Option<String> {
    gateway
        .strip_prefix("wss://")
        .map(|rest| format!("https://{rest}"))
        .or_else(|| {
            gateway
                .strip_prefix("ws://")
                .map(|rest| format!("http://{rest}"))
        })
}

/// True when `origin` is the page origin of a node of the pool: a live one,
/// a configured one, or one seen since this node started.
pub fn is_pool_origin(state: &AppState, origin: &str) -> bool {
    gateways(state)
        .into_iter()
        .chain(state.pool.seen())
        .filter_map(|g| page_origin(&g))
        .any(|o| o.eq_ignore_ascii_case(origin))
}

/// Where a page of a conference goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serving {
    /// The serving node's gateway (for `webrtcAddress`).
    pub gateways: Vec<String>,
    /// True when that node is this one.
    pub here: bool,
}

/// The gateway a page of `conf_id` must use: the node the conference is
/// allocated to (allocating it when needed). The configured pool when this
/// process is not a node (the CLI) or the store cannot say.
pub async fn serving(state: &AppState, conf_id: &str) -> Serving {
    let Some(me) = state.pool.identity() else {
        return Serving {
            gateways: gateways(state),
            here: true,
        };
    };
    let here = |gateway: &str| Serving {
        gateways: vec![gateway.to_string()],
        here: true,
    };
    let live = state.pool.live();
    let mut alive: Vec<String> = live.iter().map(|n| n.node_id.clone()).collect();
    if !alive.contains(&me.id) {
        alive.push(me.id.clone());
    }
    // The least loaded live node takes a conference nobody serves.
    let candidate = live.first().map_or(me.id.as_str(), |n| n.node_id.as_str());
    match state
        .store
        .allocate_conference(conf_id, candidate, &alive, store::now_ms())
        .await
    {
        Ok(node_id) if node_id == me.id => here(&me.gateway),
        Ok(node_id) => match live.iter().find(|n| n.node_id == node_id) {
            Some(node) => Serving {
                gateways: vec![node.gateway.clone()],
                here: false,
            },
            None => here(&me.gateway),
        },
        Err(e) => {
            tracing::warn!(%conf_id, error = %e, "cannot allocate the conference to a node; answering this node");
            here(&me.gateway)
        }
    }
}

/// Refreshes this node's row and the live nodes until shutdown, then leaves
/// the pool.
pub async fn heartbeat(state: std::sync::Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let Some(me) = state.pool.identity().cloned() else {
        return;
    };
    let config = &state.config.node;
    let mut tick = tokio::time::interval(Duration::from_secs(config.heartbeat_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let dead_after = i64::try_from(config.dead_after_secs * 1000).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => break,
        }
        let now = store::now_ms();
        let row = NodeRow {
            node_id: me.id.clone(),
            gateway: me.gateway.clone(),
            members: state.rooms.active_members(),
            rooms: i64::try_from(state.rooms.conf_ids().len()).unwrap_or(i64::MAX),
            streams: match &state.media {
                Some(media) => i64::try_from(media.load().await.total()).unwrap_or(i64::MAX),
                None => 0,
            },
            started_at: me.started_at,
            heartbeat_at: now,
        };
        if let Err(e) = state.store.heartbeat(&row).await {
            tracing::warn!(error = %e, "node heartbeat failed; will retry");
            continue;
        }
        match state.store.live_nodes(now - dead_after).await {
            Ok(live) => {
                let before: Vec<String> =
                    state.pool.live().into_iter().map(|n| n.node_id).collect();
                for node in live.iter().filter(|n| !before.contains(&n.node_id)) {
                    tracing::info!(node_id = %node.node_id, gateway = %node.gateway, "node in the pool");
                }
                for gone in before
                    .iter()
                    .filter(|id| !live.iter().any(|n| &n.node_id == *id))
                {
                    tracing::info!(node_id = %gone, "node left the pool or stopped answering");
                }
                state.pool.set_live(live);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the node pool; will retry"),
        }
    }
    if let Err(e) = state.store.remove_node(&me.id).await {
        tracing::warn!(error = %e, "could not leave the node pool; the others will time it out");
    }
}
