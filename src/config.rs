//! One configuration tree, layered: defaults, then a TOML file (unknown keys
//! rejected), then `CONFGATE_…` environment variables, then command-line flags,
//! then [`Config::validate`].
//!
//! Environment variables name a key by its path in upper case, sections joined
//! by a double underscore: `CONFGATE_LISTEN`, `CONFGATE_DATABASE__URL`,
//! `CONFGATE_LINKS__FORMAT`. Their values are read as TOML values when they
//! parse as one (numbers, booleans, arrays) and as strings otherwise.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The prefix of every environment variable that configures confgate.
pub const ENV_PREFIX: &str = "CONFGATE_";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port for HTTPS and WSS (or plain HTTP with `plain_http`).
    /// Default `0.0.0.0:8443`.
    pub listen: SocketAddr,
    /// Serve plain HTTP instead of HTTPS. Default false: only for a TLS proxy in
    /// front, or tests.
    pub plain_http: bool,
    /// Directory for the SQLite database, the self-signed certificate and other
    /// state. Default `./data`.
    pub data_dir: PathBuf,
    /// The base URL printed in join links and used for `webrtcAddress`, such as
    /// `https://meet.example.com`. Default: derived from `listen` and this
    /// machine's first non-loopback address.
    pub public_url: Option<String>,
    /// Log filter (tracing `EnvFilter` syntax). Default `info`; `RUST_LOG`
    /// wins when set.
    pub log: String,
    pub database: DatabaseConfig,
    pub tls: TlsConfig,
    pub links: LinksConfig,
    pub tokens: TokensConfig,
    pub throttle: ThrottleConfig,
    pub authority: AuthorityConfig,
    pub http: HttpConfig,
    pub websocket: WebSocketConfig,
    pub sip: SipConfig,
    pub events: EventsConfig,
    pub node: NodeConfig,
    pub media: confgate_media::MediaConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            plain_http: false,
            data_dir: PathBuf::from("data"),
            public_url: None,
            log: "info".into(),
            database: DatabaseConfig::default(),
            tls: TlsConfig::default(),
            links: LinksConfig::default(),
            tokens: TokensConfig::default(),
            throttle: ThrottleConfig::default(),
            authority: AuthorityConfig::default(),
            http: HttpConfig::default(),
            websocket: WebSocketConfig::default(),
            sip: SipConfig::default(),
            events: EventsConfig::default(),
            node: NodeConfig::default(),
            media: confgate_media::MediaConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `mysql://USER:PASSWORD@HOST:PORT/DATABASE`. Default:
    /// SQLite at `<data_dir>/confgate.db`.
    pub url: Option<String>,
    /// Largest number of pooled connections. Default 10.
    pub max_connections: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain. Default: a self-signed certificate made on first
    /// start and kept under `<data_dir>/tls/`.
    pub cert: Option<PathBuf>,
    /// PEM private key for `cert`.
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkFormat {
    /// 4 random characters + base64(password), as the original design writes
    /// it. Anyone holding the link can decode the password from it.
    Seed,
    /// 160 random bits that reveal nothing; revocable, with an optional expiry.
    Opaque,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinksConfig {
    /// Which link new conferences print first. Both formats are always
    /// accepted. Default `seed`.
    pub format: LinkFormat,
    /// Lifetime of an opaque link in seconds; 0 means until the conference
    /// ends. Default 0.
    pub opaque_ttl_secs: u64,
}

impl Default for LinksConfig {
    fn default() -> Self {
        LinksConfig {
            format: LinkFormat::Seed,
            opaque_ttl_secs: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Access token (JWT) lifetime in seconds. Default 7200.
    pub access_ttl_secs: u64,
    /// Refresh token lifetime in seconds. Default 604800 (7 days).
    pub refresh_ttl_secs: u64,
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            access_ttl_secs: 7200,
            refresh_ttl_secs: 7 * 24 * 3600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Failed join codes, passwords or logins allowed from one IP address
    /// within `window_secs`; the next attempt gets HTTP 429. Default 10.
    pub max_failures: u32,
    /// The window in seconds. Default 3600.
    pub window_secs: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            max_failures: 10,
            window_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorityConfig {
    /// The XMPP domain of the conference authority, answered as `serverName`.
    /// Default `ips3000`.
    pub server_name: String,
    /// How often the sweeper removes the temporary accounts of ended
    /// conferences and expired refresh tokens, in seconds. Default 60.
    pub sweep_interval_secs: u64,
}

impl Default for AuthorityConfig {
    fn default() -> Self {
        AuthorityConfig {
            server_name: "ips3000".into(),
            sweep_interval_secs: 60,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// The WebRTC gateway pool answered as `webrtcAddress` (comma-separated in
    /// the answer). Default: this node's own gateway, `wss://` + the public
    /// host and port.
    pub gateway_addresses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketConfig {
    /// Origins allowed to open `/gzbwclient/websck`, such as
    /// `https://portal.example.com`. The page's own origin is always allowed,
    /// and so are clients that send no `Origin` (not browsers). Default none.
    pub allowed_origins: Vec<String>,
    /// Seconds between pings from the server. Default 15.
    pub ping_interval_secs: u64,
    /// A connection that sends nothing (not even a pong) this long is closed.
    /// Default 45.
    pub idle_timeout_secs: u64,
    /// How long a member whose connection dropped stays in the conference
    /// before it counts as having left, in milliseconds. Default 20000.
    pub grace_ms: u64,
    /// Requests per second one connection may make; past twice this within a
    /// second, requests get error 429, and a connection that keeps flooding is
    /// closed. Default 20.
    pub requests_per_second: u32,
    /// A conference's room with no member and no connection for this long
    /// closes, and the node stops following the conference's events on the
    /// bus; the next page opens it again. Default 60.
    pub room_idle_secs: u64,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            allowed_origins: Vec::new(),
            ping_interval_secs: 15,
            idle_timeout_secs: 45,
            grace_ms: 20_000,
            requests_per_second: 20,
            room_idle_secs: 60,
        }
    }
}

/// This node in a pool of nodes sharing one database (MySQL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// The node's id in the pool. Default: the host name and the HTTP port.
    pub id: Option<String>,
    /// How often the node refreshes its entry (load, liveness). Default 5.
    pub heartbeat_secs: u64,
    /// A node whose entry is older than this is dead: its conferences go to
    /// other nodes. Default 15.
    pub dead_after_secs: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            id: None,
            heartbeat_secs: 5,
            dead_after_secs: 15,
        }
    }
}

/// Conference events: how long they are kept for pages and nodes that
/// catch up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Stored events older than this are removed. Default 24.
    pub retention_hours: u64,
    /// RabbitMQ for the event bus, such as
    /// `amqp://guest:guest@127.0.0.1:5672/%2f` (`--amqp-url`). Default none:
    /// the in-process bus.
    pub amqp_url: Option<String>,
    /// The topic exchange. Default `confgate.events`.
    pub exchange: String,
    /// How long the broker keeps a silent node's queue. Default 600.
    pub queue_expires_secs: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            retention_hours: 24,
            amqp_url: None,
            exchange: "confgate.events".into(),
            queue_expires_secs: 600,
        }
    }
}

/// Defaults for conferences bound to a SIP/MCU conference; a binding's own
/// values win.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// `udp` or `tcp`. Default `udp`.
    pub transport: String,
    /// Every call goes through this proxy, such as `sip:proxy.example.com:5060`.
    /// Default none.
    pub outbound_proxy: Option<String>,
    /// Digest credentials for the MCU. Default none.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Codecs in order of preference. Default opus, pcmu, pcma, vp8, h264.
    pub codecs: Vec<String>,
    /// Where the SIP user agent listens (UDP; TCP calls connect out). Default
    /// `0.0.0.0:0`, any free port: the MCU answers to the Via and Contact.
    /// Set a fixed port when a firewall sits between confgate and the MCU.
    pub listen: SocketAddr,
    /// How long the MCU may ring before the call is cancelled. Default 30.
    pub ring_timeout_secs: u64,
    /// How often an OPTIONS checks that the MCU still knows a call, when
    /// the MCU asked for no session timer; 0 for never. Default 30.
    pub keepalive_secs: u64,
    /// How long a member who does not publish (no camera, no microphone) is
    /// waited for before its call to the MCU goes out receive-only. Default
    /// 3000.
    pub publish_wait_ms: u64,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            transport: "udp".into(),
            outbound_proxy: None,
            username: None,
            password: None,
            codecs: ["opus", "pcmu", "pcma", "vp8", "h264"]
                .map(String::from)
                .to_vec(),
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            ring_timeout_secs: 30,
            keepalive_secs: 30,
            publish_wait_ms: 3000,
        }
    }
}

/// What went wrong while building the configuration; each message names the
/// source and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Values given on the command line; each overrides every other layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub plain_http: bool,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub log: Option<String>,
    pub amqp_url: Option<String>,
}

impl Config {
    /// Builds the configuration from every layer and validates it.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.into(),
                    source,
                })?;
                text.parse::<toml::Table>().map_err(|e| ConfigError::File {
                    path: path.into(),
                    message: e.to_string(),
                })?
            }
            None => toml::Table::new(),
        };
        for (var, value) in env {
            let Some(key) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if key.is_empty() {
                continue;
            }
            merge_env(&mut table, &var, key, &value)?;
        }
        let mut config: Config = table.try_into_config(file)?;
        config.apply(flags);
        config.validate()?;
        Ok(config)
    }

    fn apply(&mut self, flags: &Overrides) {
        if let Some(listen) = flags.listen {
            self.listen = listen;
        }
        if flags.plain_http {
            self.plain_http = true;
        }
        if let Some(dir) = &flags.data_dir {
            self.data_dir = dir.clone();
        }
        if let Some(url) = &flags.database_url {
            self.database.url = Some(url.clone());
        }
        if let Some(url) = &flags.public_url {
            self.public_url = Some(url.clone());
        }
        if let Some(log) = &flags.log {
            self.log = log.clone();
        }
        if let Some(url) = &flags.amqp_url {
            self.events.amqp_url = Some(url.clone());
        }
    }

    /// Checks what serde cannot: relations between keys and value ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if let Some(url) = &self.database.url
            && !(url.starts_with("sqlite:")
                || url.starts_with("mysql://")
                || url.starts_with("mariadb://"))
        {
            return invalid(format!(
                "database.url must start with sqlite: or mysql://, got {url:?}"
            ));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return invalid("tls.cert and tls.key must be given together".into());
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return invalid(format!(
                "public_url must start with https:// or http://, got {url:?}"
            ));
        }
        if self.tokens.access_ttl_secs < 60 {
            return invalid("tokens.access_ttl_secs must be at least 60".into());
        }
        if self.tokens.refresh_ttl_secs < self.tokens.access_ttl_secs {
            return invalid(
                "tokens.refresh_ttl_secs must be at least tokens.access_ttl_secs".into(),
            );
        }
        if self.throttle.max_failures == 0 || self.throttle.window_secs == 0 {
            return invalid(
                "throttle.max_failures and throttle.window_secs must be above 0".into(),
            );
        }
        if self.authority.server_name.trim().is_empty() {
            return invalid("authority.server_name must not be empty".into());
        }
        if self.authority.sweep_interval_secs == 0 {
            return invalid("authority.sweep_interval_secs must be above 0".into());
        }
        for address in &self.http.gateway_addresses {
            if !(address.starts_with("wss://") || address.starts_with("ws://")) {
                return invalid(format!(
                    "http.gateway_addresses: {address:?} must start with wss:// or ws://"
                ));
            }
        }
        crate::mcu::validate_defaults(&self.sip)
            .map_err(|e| ConfigError::Invalid(format!("sip: {e}")))?;
        if self.node.heartbeat_secs == 0 || self.node.dead_after_secs <= self.node.heartbeat_secs {
            return invalid(
                "node.dead_after_secs must be longer than node.heartbeat_secs (at least 1)".into(),
            );
        }
        if self
            .node
            .id
            .as_deref()
            .is_some_and(|id| id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control()))
        {
            return invalid("node.id must be 1 to 128 characters".into());
        }
        if let Some(url) = &self.events.amqp_url
            && !url.starts_with("amqp://")
        {
            return invalid(format!(
                "events.amqp_url must be an amqp:// URL, got one for {:?}",
                url.split('@').next_back().unwrap_or("")
            ));
        }
        if self.events.exchange.is_empty() || self.events.exchange.starts_with("amq.") {
            return invalid("events.exchange must be a name not starting with amq.".into());
        }
        if self.websocket.room_idle_secs == 0 {
            return invalid("websocket.room_idle_secs must be at least 1".into());
        }
        if self.events.queue_expires_secs == 0 {
            return invalid("events.queue_expires_secs must be at least 1".into());
        }
        if self.events.retention_hours == 0 {
            return invalid("events.retention_hours must be at least 1".into());
        }
        if !(1..=600).contains(&self.sip.ring_timeout_secs) {
            return invalid("sip.ring_timeout_secs must be 1 to 600".into());
        }
        self.media
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("media: {e}")))?;
        Ok(())
    }

    /// The database URL in effect: the configured one, else SQLite under the
    /// data directory.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("confgate.db").display()
            ),
        }
    }

    /// The base URL of join links, without a trailing slash.
    pub fn public_base_url(&self) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_string();
        }
        let scheme = if self.plain_http { "http" } else { "https" };
        let host = if self.listen.ip().is_unspecified() {
            local_address().map_or_else(|| "127.0.0.1".to_string(), |ip| ip.to_string())
        } else {
            self.listen.ip().to_string()
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        format!("{scheme}://{host}:{}", self.listen.port())
    }

    /// The gateway pool answered as `webrtcAddress`.
    pub fn gateway_addresses(&self) -> Vec<String> {
        if !self.http.gateway_addresses.is_empty() {
            return self.http.gateway_addresses.clone();
        }
        vec![self.own_gateway(self.listen)]
    }

    /// This node's own WebSocket gateway when it listens on `bound` (the
    /// actual port when the configured one is 0).
    pub fn own_gateway(&self, bound: SocketAddr) -> String {
        let mut at = self.clone();
        at.listen = bound;
        let base = at.public_base_url();
        base.strip_prefix("https://")
            .map(|rest| format!("wss://{rest}"))
            .or_else(|| {
                base.strip_prefix("http://")
                    .map(|rest| format!("ws://{rest}"))
            })
            .unwrap_or(base)
    }
}

trait IntoConfig {
    fn try_into_config(self, file: Option<&Path>) -> Result<Config, ConfigError>;
}

impl IntoConfig for toml::Table {
    fn try_into_config(self, file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::deserialize(toml::Value::Table(self)).map_err(|e| ConfigError::File {
            path: file.map_or_else(|| PathBuf::from("(environment)"), Path::to_path_buf),
            message: e.to_string().trim().to_string(),
        })
    }
}

fn merge_env(
    table: &mut toml::Table,
    var: &str,
    key: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let path: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
    if path.iter().any(String::is_empty) {
        return Err(ConfigError::Env {
            var: var.into(),
            message: "empty key segment".into(),
        });
    }
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let (last, sections) = path.split_last().ok_or_else(|| ConfigError::Env {
        var: var.into(),
        message: "empty key".into(),
    })?;
    let mut node = table;
    for section in sections {
        let entry = node
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry.as_table_mut().ok_or_else(|| ConfigError::Env {
            var: var.into(),
            message: format!("{section} is not a section"),
        })?;
    }
    // A string key given as a bare number or boolean stays usable: serde
    // reports a type error naming the key if it really is wrong.
    node.insert(last.clone(), parsed);
    Ok(())
}

/// The first non-loopback IPv4 address of this machine, found by asking the
/// routing table (no packet is sent).
pub fn local_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::load(None, env(&[]), &Overrides::default()).expect("defaults");
        assert_eq!(config, Config::default());
        assert_eq!(config.listen.port(), 8443);
        assert!(
            config
                .database_url()
                .starts_with("sqlite://data/confgate.db")
        );
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nlog = \"debug\"\n[links]\nformat = \"opaque\"\n[throttle]\nmax_failures = 3\n",
        )
        .expect("write");
        let config = Config::load(
            Some(&file),
            env(&[
                ("CONFGATE_LOG", "warn"),
                ("CONFGATE_THROTTLE__MAX_FAILURES", "5"),
                ("OTHER", "x"),
            ]),
            &Overrides {
                log: Some("trace".into()),
                ..Overrides::default()
            },
        )
        .expect("config");
        assert_eq!(
            config.listen,
            "127.0.0.1:9000".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(config.links.format, LinkFormat::Opaque);
        assert_eq!(config.throttle.max_failures, 5, "env beats file");
        assert_eq!(config.log, "trace", "flag beats env");
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[links]\nformatt = \"seed\"\n").expect("write");
        let err =
            Config::load(Some(&file), env(&[]), &Overrides::default()).expect_err("unknown key");
        assert!(err.to_string().contains("formatt"), "{err}");
        let err = Config::load(None, env(&[("CONFGATE_NOPE", "1")]), &Overrides::default())
            .expect_err("unknown env key");
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn validation_names_the_key() {
        let err = Config::load(
            None,
            env(&[("CONFGATE_DATABASE__URL", "postgres://x")]),
            &Overrides::default(),
        )
        .expect_err("bad url");
        assert!(err.to_string().contains("database.url"), "{err}");
        let err = Config::load(
            None,
            env(&[("CONFGATE_TLS__CERT", "/x.pem")]),
            &Overrides::default(),
        )
        .expect_err("cert without key");
        assert!(err.to_string().contains("tls.key"), "{err}");
    }

    #[test]
    fn gateway_defaults_to_this_node() {
        let config = Config {
            public_url: Some("https://meet.example.com:8443/".into()),
            ..Config::default()
        };
        assert_eq!(config.public_base_url(), "https://meet.example.com:8443");
        assert_eq!(
            config.gateway_addresses(),
            vec!["wss://meet.example.com:8443".to_string()]
        );
    }
}
