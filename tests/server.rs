//! The server as a whole: TLS with the self-signed certificate, health and
//! metrics, the `confgate` command (serve, conference …, --help), graceful
//! shutdown and configuration errors.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, TestServer};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_confgate");

#[tokio::test]
async fn https_with_a_kept_self_signed_certificate() {
    let t = TestServer::start_with(Backend::Sqlite, |c| c.plain_http = false).await;
    assert!(t.base.starts_with("https://"));
    let res = t.client.get(t.url("/healthz")).send().await.expect("https");
    assert_eq!(res.status(), 200);
    let cert_path = t.dir.path().join("tls/self-signed.crt");
    let first = std::fs::read(&cert_path).expect("certificate kept in the data dir");
    let key_mode = std::fs::metadata(t.dir.path().join("tls/self-signed.key")).expect("key");
    #[cfg(unix)]
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key_mode.permissions()) & 0o777,
        0o600
    );
    // Plain HTTP to the TLS port is not served.
    let plain = t.url("/healthz").replacen("https://", "http://", 1);
    assert!(
        t.client
            .get(plain)
            .send()
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
    );

    // A restart on the same data dir serves the same certificate.
    let data_dir = t.dir.path().to_path_buf();
    let t2 = TestServer::start_with(Backend::Sqlite, |c| {
        c.plain_http = false;
        c.data_dir = data_dir.clone();
    })
    .await;
    assert_eq!(std::fs::read(&cert_path).expect("cert"), first);
    assert_eq!(
        t2.client
            .get(t2.url("/healthz"))
            .send()
            .await
            .expect("https")
            .status(),
        200
    );
    t2.finish().await;
    t.finish().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let t = TestServer::start(Backend::Sqlite).await;
    assert_eq!(
        t.client
            .get(t.url("/healthz"))
            .send()
            .await
            .expect("get")
            .status(),
        200
    );
    assert_eq!(
        t.client
            .get(t.url("/readyz"))
            .send()
            .await
            .expect("get")
            .status(),
        200
    );
    t.conference("m", Some("112358")).await;
    t.join("112358", "one").await;
    t.join("112358", "two").await;
    let text = t
        .client
        .get(t.url("/metrics"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(text.contains("confgate_joins_total 2"), "{text}");
    assert!(text.contains("confgate_live_accounts 2"), "{text}");
    assert!(
        text.contains("confgate_active_members 0"),
        "joined by link, not yet in the conference: {text}"
    );
    assert!(text.contains("# TYPE confgate_rpc_requests_total counter"));
    // With the database gone, readiness says so and liveness does not.
    t.state().store.close().await;
    assert_eq!(
        t.client
            .get(t.url("/readyz"))
            .send()
            .await
            .expect("get")
            .status(),
        503
    );
    assert_eq!(
        t.client
            .get(t.url("/healthz"))
            .send()
            .await
            .expect("get")
            .status(),
        200
    );
    let res = t
        .rpc(
            None,
            "auth.http.login",
            json!({"grantType": "refresh_token", "refreshToken": "x"}),
        )
        .await;
    assert_eq!(res["error"]["code"], 503, "{res}");
    assert_eq!(res["error"]["message"], "service unavailable, retry later");
    t.finish().await;
}

/// Runs the binary to completion; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run confgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct Serving {
    child: Child,
    lines: Vec<String>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `confgate serve` and reads its banner up to the last line.
fn serve(args: &[&str]) -> Serving {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        // Any free media port: a developer's own server may hold 40000.
        .env("CONFGATE_MEDIA__UDP_PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        let done = line.contains("create more:");
        lines.push(line);
        if done || Instant::now() > deadline {
            break;
        }
    }
    Serving { child, lines }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test]
async fn the_command_serves_and_manages_conferences_while_running() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().to_str().expect("utf8");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = serve(&["serve", "--data-dir", data, "--listen", &listen]);
    let banner = server.lines.join("\n");
    assert!(
        banner.contains(&format!("serving https://127.0.0.1:{port}")),
        "{banner}"
    );
    let demo = server
        .lines
        .iter()
        .find_map(|l| {
            l.trim()
                .strip_prefix("https://")
                .map(|rest| format!("https://{rest}"))
        })
        .unwrap_or_else(|| panic!("a demo link in {banner}"));
    let client = common::client();
    let lookup: Value = client
        .get(&demo)
        .header("accept", "application/json")
        .send()
        .await
        .expect("demo link")
        .json()
        .await
        .expect("json");
    assert_eq!(lookup["state"], 0, "the printed link works: {lookup}");

    // conference create/list/end against the same data dir, while serving.
    let (code, out, err) = run(&[
        "conference",
        "create",
        "--data-dir",
        data,
        "--listen",
        &listen,
        "--name",
        "命令行 CLI",
        "--password",
        "314159",
        "--chair",
        "Chair Person",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let created: Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(created["password"], "314159");
    assert_eq!(created["confName"], "命令行 CLI");
    assert!(created["chairClientSecret"].is_string());
    assert!(
        created["chairLink"]
            .as_str()
            .expect("chair link")
            .contains("#chair=")
    );
    let conf_id = created["confId"].as_str().expect("id").to_string();
    let link = created["links"][0].as_str().expect("link").to_string();
    assert!(
        link.starts_with(&format!("https://127.0.0.1:{port}/gzbwclient/conference/")),
        "{link}"
    );
    let joined: Value = client
        .post(&link)
        .json(&json!({"name": "via CLI link"}))
        .send()
        .await
        .expect("join")
        .json()
        .await
        .expect("json");
    assert_eq!(joined["confId"], conf_id.as_str(), "{joined}");

    // The chair's printed credentials log in and manage the conference.
    let login: Value = client
        .post(format!("https://127.0.0.1:{port}/gzbwclient/jsonrpc"))
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"auth.http.login","params":{
            "clientId": created["chairUserId"], "grantType":"client_credentials", "clientSecret": created["chairClientSecret"]}}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    assert!(login["result"]["accessToken"].is_string(), "{login}");

    let (code, out, _) = run(&["conference", "list", "--data-dir", data]);
    assert_eq!(code, 0);
    assert!(out.contains(&conf_id) && out.contains("live"), "{out}");
    let (code, out, _) = run(&["conference", "end", &conf_id, "--data-dir", data]);
    assert_eq!(code, 0);
    assert!(out.contains("1 temporary accounts removed"), "{out}");
    let after: Value = client
        .get(format!("{link}?format=json"))
        .send()
        .await
        .expect("lookup")
        .json()
        .await
        .expect("json");
    assert_eq!(after["state"], 31);
    let (code, _, err) = run(&["conference", "end", "99999999", "--data-dir", data]);
    assert_ne!(code, 0);
    assert!(err.contains("no conference 99999999"), "{err}");
    let (code, _, err) = run(&[
        "conference",
        "create",
        "--data-dir",
        data,
        "--name",
        "x",
        "--password",
        "12",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--password"), "{err}");
    let (code, _, err) = run(&[
        "conference",
        "create",
        "--data-dir",
        data,
        "--name",
        "x",
        "--starts-at",
        "someday",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--starts-at"), "{err}");

    // SIGTERM shuts down gracefully.
    let mut server = server;
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
}

#[test]
fn help_says_everything() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for word in [
        "serve",
        "conference",
        "--listen",
        "--data-dir",
        "--database-url",
        "--config",
        "--plain-http",
        "CONFGATE_",
    ] {
        assert!(out.contains(word), "--help lacks {word}:\n{out}");
    }
    let (code, out, _) = run(&["conference", "create", "--help"]);
    assert_eq!(code, 0);
    for word in [
        "--name",
        "--password",
        "--starts-at",
        "--ends-at",
        "--chair",
        "--json",
    ] {
        assert!(out.contains(word), "create --help lacks {word}:\n{out}");
    }
}

#[test]
fn configuration_errors_are_clear() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[links]\nformat = \"secret\"\n").expect("write");
    let (code, _, err) = run(&[
        "conference",
        "list",
        "--config",
        file.to_str().expect("utf8"),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("bad.toml") && err.contains("secret"), "{err}");
    let (code, _, err) = run(&["conference", "list", "--database-url", "postgres://x/y"]);
    assert_ne!(code, 0);
    assert!(err.contains("database.url"), "{err}");
    let (code, _, err) = run(&[
        "conference",
        "list",
        "--config",
        "/nonexistent/confgate.toml",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent/confgate.toml"), "{err}");
}

#[test]
fn the_example_configuration_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/confgate.example.toml");
    let config = confgate::config::Config::load(
        Some(std::path::Path::new(example)),
        Vec::new(),
        &Default::default(),
    )
    .expect("the documented example loads");
    assert_eq!(config.listen.port(), 8443);
}

#[tokio::test]
async fn mysql_by_url_from_the_command_line() {
    let db = common::MySqlDatabase::create().await;
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().to_str().expect("utf8");
    let (code, out, err) = run(&[
        "conference",
        "create",
        "--data-dir",
        data,
        "--database-url",
        &db.url,
        "--name",
        "on MariaDB",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let created: Value = serde_json::from_str(&out).expect("json");
    let (code, out, _) = run(&[
        "conference",
        "list",
        "--data-dir",
        data,
        "--database-url",
        &db.url,
        "--json",
    ]);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(list[0]["confId"], created["confId"]);
    assert!(
        !dir.path().join("confgate.db").exists(),
        "no SQLite file when MySQL is named"
    );
}
