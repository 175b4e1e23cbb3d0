//! confgate: join an enterprise video conference from a browser link.
//!
//! This crate is the control plane and the server shell:
//!
//! ```text
//!  browser ──HTTPS── http::router ──┬── join links (links) ── authority ── store (SQLite | MySQL)
//!                                   ├── JSON-RPC (rpc::*) ─────┘   │
//!                                   ├── tokens (HS256 JWT)         └── sweeper (temporary accounts)
//!                                   └── /healthz /readyz /metrics
//! ```
//!
//! [`Server::start`] runs everything on a tokio runtime the caller owns, so
//! tests start a whole server in-process on `127.0.0.1:0`.

pub mod authority;
pub mod bridge;
pub mod config;
pub mod error;
pub mod events;
pub mod http;
pub mod links;
pub mod mcu;
pub mod nodes;
pub mod room;
pub mod rooms;
pub mod rpc;
pub mod sip;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::authority::Authority;
use crate::authority::embedded::EmbeddedAuthority;
use crate::config::Config;
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::throttle::FailureWindow;
use crate::tokens::TokenKeys;

/// Everything a request handler needs; shared by every connection.
pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub authority: Arc<dyn Authority>,
    pub keys: TokenKeys,
    /// Held only to check or record one failure: never across an await.
    pub throttle: Mutex<FailureWindow>,
    pub metrics: Metrics,
    pub rooms: rooms::Rooms,
    /// The media plane; absent for the CLI's commands, which serve no media.
    pub media: Option<confgate_media::Media>,
    /// Numbers WebSocket sessions.
    pub next_session: std::sync::atomic::AtomicU64,
    /// The nodes sharing this database, and this one.
    pub pool: nodes::Pool,
    /// The event bus; absent for the CLI's commands.
    pub bus: Option<Arc<dyn events::EventBus>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Store(#[from] store::StoreError),
    #[error("TLS: {0}")]
    Tls(#[from] http::tls::TlsError),
    #[error("media: {0}")]
    Media(#[from] confgate_media::MediaError),
    #[error("SIP: {0}")]
    Sip(#[from] sip::SipAgentError),
    #[error("{0}")]
    Bus(#[from] events::BusError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Opens the store and builds the shared state, without serving. The CLI's
/// `conference` commands use this against the same data as `serve`.
pub async fn open_state(config: Config) -> Result<Arc<AppState>, StartError> {
    open_state_with(config, None, None, None).await
}

async fn open_state_with(
    config: Config,
    media: Option<confgate_media::Media>,
    agent: Option<sip::SipAgent>,
    bus: Option<Arc<dyn events::EventBus>>,
) -> Result<Arc<AppState>, StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let store = Store::open(
        &config.database_url(),
        config.database.max_connections.unwrap_or(10),
    )
    .await?;
    let secret = store
        .setting_or_insert(tokens::SECRET_SETTING, TokenKeys::generate_secret)
        .await?;
    let throttle = FailureWindow::new(
        config.throttle.max_failures,
        Duration::from_secs(config.throttle.window_secs),
    );
    let bridge = match (&media, agent) {
        (Some(media), Some(agent)) => Some(Arc::new(bridge::Bridge {
            agent,
            media: media.clone(),
            store: store.clone(),
            defaults: config.sip.clone(),
        })),
        _ => None,
    };
    Ok(Arc::new(AppState {
        authority: Arc::new(EmbeddedAuthority::new(store.clone())),
        keys: TokenKeys::from_stored(&secret),
        throttle: Mutex::new(throttle),
        metrics: Metrics::default(),
        rooms: rooms::Rooms::new(
            Duration::from_millis(config.websocket.grace_ms),
            Duration::from_secs(config.websocket.room_idle_secs),
            media.clone(),
            bridge,
            Some(store.clone()),
            bus.clone(),
        ),
        media,
        next_session: std::sync::atomic::AtomicU64::new(1),
        pool: nodes::Pool::default(),
        bus,
        store,
        config,
    }))
}

/// A running server.
pub struct Server {
    local_addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    pump: Option<JoinHandle<()>>,
    bus_pump: Option<JoinHandle<()>>,
}

impl Server {
    /// Opens the store, binds the listener and starts serving and sweeping.
    pub async fn start(mut config: Config) -> Result<Server, StartError> {
        // Bound first: with port 0, the links, the gateway and the node id
        // name the port actually taken.
        let listen = config.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
        if config.listen.port() == 0 {
            config.listen.set_port(local_addr.port());
        }
        let media = confgate_media::Media::start(&config.media).await?;
        let media_events = media.take_events();
        let agent = sip::SipAgent::start(config.sip.listen).await?;
        tracing::debug!(addr = %agent.local_addr(), "SIP user agent listening");
        let node_id = config
            .node
            .id
            .clone()
            .unwrap_or_else(|| format!("{}:{}", http::tls::host_name(), local_addr.port()));
        let bus: Arc<dyn events::EventBus> = match &config.events.amqp_url {
            Some(url) => {
                let mut amqp = events::AmqpConfig::new(url.clone(), node_id.clone());
                amqp.exchange = config.events.exchange.clone();
                amqp.queue_expires = Duration::from_secs(config.events.queue_expires_secs);
                Arc::new(events::AmqpBus::connect(amqp).await?)
            }
            None => Arc::new(events::InProcessBus::new()),
        };
        let bus_messages = bus.take_messages();
        let state = open_state_with(config, Some(media), Some(agent), Some(bus)).await?;
        let tls = if state.config.plain_http {
            None
        } else {
            Some(http::tls::acceptor(&state.config)?)
        };
        state.pool.set_identity(nodes::NodeIdentity {
            id: node_id,
            gateway: state.config.own_gateway(local_addr),
            started_at: store::now_ms(),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let beat = tokio::spawn(nodes::heartbeat(state.clone(), shutdown_rx.clone()));
        let router = http::router::app(state.clone());
        let serve = tokio::spawn(http::serve(listener, router, tls, shutdown_rx.clone()));
        let clock = tokio::spawn(room_clock(state.clone(), shutdown_rx.clone()));
        let sweep = tokio::spawn(sweeper(state.clone(), shutdown_rx));
        // Runs as long as the media plane; stopped at shutdown.
        let pump =
            media_events.map(|events| tokio::spawn(rooms::media_events(state.clone(), events)));
        let bus_pump =
            bus_messages.map(|messages| tokio::spawn(rooms::bus_events(state.clone(), messages)));
        Ok(Server {
            local_addr,
            state,
            shutdown,
            tasks: vec![serve, sweep, clock, beat],
            pump,
            bus_pump,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Stops accepting, lets requests in flight finish (up to 10 s), stops the
    /// sweeper and closes the database.
    pub async fn shutdown(self) {
        // Pages are told first, so that they go on elsewhere at once.
        self.state.rooms.shutdown().await;
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        if let Some(pump) = self.pump {
            pump.abort();
        }
        if let Some(pump) = self.bus_pump {
            pump.abort();
        }
        self.state.store.close().await;
    }
}

/// How often rooms on this node look at their conference in the database: a
/// conference ended by another process (the CLI, another node) or reaching
/// its `ends_at` closes its room within this time.
const ROOM_CLOCK: Duration = Duration::from_secs(2);

async fn room_clock(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(ROOM_CLOCK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ended = std::collections::HashSet::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = store::now_ms();
        for conf_id in state.rooms.conf_ids() {
            if ended.contains(&conf_id) {
                continue;
            }
            match state.authority.conference(conf_id.clone()).await {
                Ok(Some(conf)) if conf.state(now) == store::ConferenceState::Ended => {
                    if let Some(room) = state.rooms.existing(&conf_id) {
                        let _ = room.send(rooms::RoomCommand::Ended).await;
                    }
                    tracing::info!(%conf_id, "conference over: room closed");
                    ended.insert(conf_id);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "room clock: cannot read the conference; will retry")
                }
            }
        }
    }
}

async fn sweeper(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(
        state.config.authority.sweep_interval_secs,
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        match state.authority.sweep(store::now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                accounts = n,
                "removed temporary accounts of ended conferences"
            ),
            Err(e) => tracing::warn!(error = %e, "sweep failed; will retry"),
        }
        let retention = Duration::from_secs(state.config.events.retention_hours * 3600);
        let before = store::now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        match state.store.prune_events(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "removed old conference events"),
            Err(e) => tracing::warn!(error = %e, "pruning events failed; will retry"),
        }
    }
}

impl AppState {
    /// Refuses an attempt from `ip` while it has too many recent failures.
    pub fn check_throttle(&self, ip: std::net::IpAddr) -> error::AppResult<()> {
        let verdict = self
            .throttle
            .lock()
            .map_or(Ok(()), |mut w| w.check(ip, std::time::Instant::now()));
        verdict.map_err(|retry_after| {
            self.metrics.throttled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(%ip, retry_after_secs = retry_after.as_secs(), "throttled: too many failed attempts");
            error::AppError::Throttled { retry_after_secs: retry_after.as_secs().max(1) }
        })
    }

    /// Records a failed code, password or login from `ip`.
    pub fn record_failure(&self, ip: std::net::IpAddr) {
        if let Ok(mut w) = self.throttle.lock() {
            w.fail(ip, std::time::Instant::now());
        }
    }
}
