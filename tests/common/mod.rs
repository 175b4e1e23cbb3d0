//! The whole server in-process on `127.0.0.1:0`, on SQLite or on a fresh MySQL
//! database, with an HTTP client.
//!
//! MySQL tests are never skipped: MariaDB runs on every development and CI
//! machine (`CONFGATE_TEST_MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`),
//! and a missing server fails the test.

#![allow(dead_code)]

pub mod amqp;
pub mod sipp;

use std::sync::atomic::{AtomicU32, Ordering};

use confgate::Server;
use confgate::config::Config;
use serde_json::{Value, json};
use sqlx::{AnyConnection, Connection, Executor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
}

/// Generates `mod NAME { sqlite, mysql }` running `NAME(Backend)` on both.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                super::$name($crate::common::Backend::MySql).await
            }
        }
    )*};
}

pub fn mysql_admin_url() -> String {
    std::env::var("CONFGATE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// A MySQL database made for one test and dropped after it, even when the
/// test panics.
pub struct MySqlDatabase {
    pub url: String,
    name: String,
}

impl MySqlDatabase {
    pub async fn create() -> MySqlDatabase {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        sqlx::any::install_default_drivers();
        let name = format!(
            "confgate_t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            confgate::store::now_ms() % 1_000_000
        );
        let admin = mysql_admin_url();
        let mut conn = AnyConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("MariaDB is required for the MySQL tests and is not reachable at {admin}: {e}")
        });
        conn.execute(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        )))
        .await
        .expect("create test database");
        let _ = conn.close().await;
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(b, _)| b)
            .to_string();
        MySqlDatabase {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for MySqlDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = mysql_admin_url();
        // Drop runs outside any runtime's reach (and during unwinding): use a
        // thread with its own small runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async move {
                    if let Ok(mut conn) = AnyConnection::connect(&admin).await {
                        let _ = conn
                            .execute(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name}"
                            )))
                            .await;
                        let _ = conn.close().await;
                    }
                });
            }
        })
        .join();
    }
}

pub struct TestServer {
    pub server: Option<Server>,
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    mysql: Option<MySqlDatabase>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts with the test defaults, changed by `tweak`.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mysql = match backend {
            Backend::Sqlite => None,
            Backend::MySql => Some(MySqlDatabase::create().await),
        };
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            plain_http: true,
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.database.url = mysql.as_ref().map(|m| m.url.clone());
        // Any free port on loopback: tests run side by side.
        config.media.udp_port = 0;
        config.media.bind_ip = Some(std::net::Ipv4Addr::LOCALHOST.into());
        config.media.loops = 1;
        tweak(&mut config);
        let tls = !config.plain_http;
        let server = Server::start(config).await.expect("server starts");
        let expected = match backend {
            Backend::Sqlite => confgate::store::DbKind::Sqlite,
            Backend::MySql => confgate::store::DbKind::MySql,
        };
        assert_eq!(
            server.state().store.kind(),
            expected,
            "the test runs on the database it names"
        );
        let scheme = if tls { "https" } else { "http" };
        let base = format!("{scheme}://{}", server.local_addr());
        let client = client();
        TestServer {
            server: Some(server),
            base,
            client,
            dir,
            mysql,
        }
    }

    pub fn state(&self) -> &std::sync::Arc<confgate::AppState> {
        self.server.as_ref().expect("running").state()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Binds a conference to an MCU, as `confgate conference bind` does.
    pub async fn bind_mcu(&self, binding: &confgate::store::McuBindingRow) {
        self.state()
            .store
            .set_mcu_binding(binding)
            .await
            .expect("bind the conference to the MCU");
    }

    /// Creates a live conference with this password (or a random one) and
    /// returns it.
    pub async fn conference(
        &self,
        name: &str,
        password: Option<&str>,
    ) -> confgate::store::Conference {
        self.conference_at(name, password, None, None).await
    }

    pub async fn conference_at(
        &self,
        name: &str,
        password: Option<&str>,
        starts_at: Option<i64>,
        ends_at: Option<i64>,
    ) -> confgate::store::Conference {
        confgate::rpc::conferences::create_conference(
            self.state(),
            confgate::authority::NewConference {
                name: name.into(),
                password: password
                    .map(|p| confgate_signalling::join_link::Password::parse(p).expect("password")),
                starts_at,
                ends_at,
                chair_user_id: None,
            },
        )
        .await
        .expect("create conference")
    }

    /// A chair account and its access token.
    pub async fn chair(&self, name: &str) -> (String, String) {
        let created = self
            .state()
            .authority
            .create_account(
                confgate::authority::NewAccount {
                    name: name.into(),
                    user_id: None,
                    password: None,
                    mobile: None,
                    email: None,
                    role: confgate::store::Role::Chair,
                    conf_id: None,
                },
                confgate::store::now_ms(),
            )
            .await
            .expect("chair");
        let secret = created.client_secret.expect("secret");
        let login = self
            .rpc(
                None,
                "auth.http.login",
                json!({"clientId": created.user.user_id, "grantType": "client_credentials", "clientSecret": secret}),
            )
            .await;
        let token = login["result"]["accessToken"]
            .as_str()
            .expect("token")
            .to_string();
        (created.user.user_id, token)
    }

    /// Joins through the password address; returns the join answer.
    pub async fn join(&self, code: &str, name: &str) -> Value {
        let res = self
            .client
            .post(self.url(&format!("/gzbwclient/conference/{code}")))
            .json(&json!({ "name": name }))
            .send()
            .await
            .expect("join");
        assert_eq!(res.status(), 200, "join status");
        res.json().await.expect("join json")
    }

    /// One JSON-RPC request; returns the whole response envelope.
    pub async fn rpc(&self, token: Option<&str>, method: &str, params: Value) -> Value {
        let mut req = self
            .client
            .post(self.url("/gzbwclient/jsonrpc"))
            .json(&json!({"jsonrpc": "2.0", "id": "t1", "method": method, "params": params}));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.expect("rpc");
        assert_eq!(res.status(), 200, "rpc status for {method}");
        res.json().await.expect("rpc json")
    }

    /// Posts raw bytes to the JSON-RPC endpoint: (status, body text).
    pub async fn rpc_raw(&self, body: impl Into<reqwest::Body>) -> (u16, String) {
        let res = self
            .client
            .post(self.url("/gzbwclient/jsonrpc"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("rpc raw");
        let status = res.status().as_u16();
        (status, res.text().await.expect("body"))
    }

    pub async fn finish(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        drop(self.mysql.take());
    }
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        // The self-signed certificate of a test server.
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client")
}

/// A WebSocket client speaking the page's JSON-RPC.
pub struct WsClient {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
    /// Notifications received and not yet taken.
    pub notifications: std::collections::VecDeque<Value>,
    pub closed: bool,
}

/// How long a test waits for something the server should send at once.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl TestServer {
    pub fn ws_url(&self, query: &str) -> String {
        format!(
            "{}/gzbwclient/websck?{query}",
            self.base.replacen("http", "ws", 1)
        )
    }

    /// Connects with a token; panics when the upgrade is refused.
    pub async fn ws(&self, token: &str) -> WsClient {
        self.ws_query(&format!("token={token}"))
            .await
            .expect("websocket upgrade")
    }

    /// Connects with a raw query; Err(HTTP status) when refused.
    pub async fn ws_query(&self, query: &str) -> Result<WsClient, u16> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let request = self.ws_url(query).into_client_request().expect("request");
        WsClient::connect(request).await
    }
}

impl WsClient {
    pub async fn connect(
        request: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> Result<WsClient, u16> {
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(WsClient {
                socket,
                next_id: 1,
                notifications: Default::default(),
                closed: false,
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(e) => panic!("websocket connect: {e}"),
        }
    }

    pub async fn send_text(&mut self, text: String) {
        use futures_util::SinkExt;
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// Reads one JSON message, or None when closed or after `WAIT`.
    pub async fn read(&mut self) -> Option<Value> {
        self.read_within(WAIT).await
    }

    pub async fn read_within(&mut self, wait: std::time::Duration) -> Option<Value> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()?;
            match next {
                Some(Ok(Message::Text(t))) => {
                    return Some(serde_json::from_str(&t).expect("server sends JSON"));
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    self.closed = true;
                    return None;
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Sends a request and returns its response; notifications that arrive
    /// meanwhile are kept.
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send_text(
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        )
        .await;
        loop {
            let message = self
                .read()
                .await
                .unwrap_or_else(|| panic!("no reply to {method}"));
            if message.get("id") == Some(&json!(id)) {
                return message;
            }
            self.notifications.push_back(message);
        }
    }

    /// The next notification of `method` (skipping others, which are kept).
    pub async fn notification(&mut self, method: &str) -> Option<Value> {
        if let Some(i) = self
            .notifications
            .iter()
            .position(|n| n["method"] == method)
        {
            return self.notifications.remove(i);
        }
        loop {
            let message = self.read().await?;
            if message["method"] == method {
                return Some(message);
            }
            self.notifications.push_back(message);
        }
    }

    /// The next `conference.event` of this type (earlier ones of other types
    /// are dropped).
    pub async fn event(&mut self, kind: &str) -> Option<Value> {
        loop {
            let n = self.notification("conference.event").await?;
            if n["params"]["type"] == kind {
                return Some(n["params"].clone());
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// A binding of `conf_id` to the MCU at `uri` over UDP, no proxy, no credentials.
pub fn mcu_binding(conf_id: &str, uri: String, codecs: &str) -> confgate::store::McuBindingRow {
    confgate::store::McuBindingRow {
        conf_id: conf_id.to_owned(),
        uri,
        transport: "udp".into(),
        outbound_proxy: None,
        username: None,
        password: None,
        codecs: codecs.into(),
        created_at: confgate::store::now_ms(),
    }
}
