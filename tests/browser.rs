//! The join page in a real browser: the lobby, members in real time, media
//! through the server, and a browser whose candidates are mDNS names.
//!
//! Each test starts the whole server in-process over HTTPS (self-signed) on
//! `127.0.0.1:0`, makes its conferences, and runs one script of `tests/e2e/`
//! with Node: playwright-core driving Debian's headless Chromium with fake
//! camera and microphone. The script exits 0 or says what failed; its output
//! is printed with the failure.
//!
//! These tests never skip. They need Node.js 20+, `npm ci --prefix tests/e2e`
//! and `apt-get install chromium` (plus `fonts-noto-cjk` so that screenshots
//! show Chinese). Set `SCREENSHOT_DIR` to keep the scripts' screenshots.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Backend, TestServer};
use confgate_signalling::join_link::{self, Password};
use serde_json::json;

/// One script at a time: three Chromiums already fill two cores, and the
/// scripts' latency checks (1 s) would fail under a pile of them.
static BROWSERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A safety net above every script's own total timeout (90 s at most), after
/// which a script closes its browsers and fails by itself.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(150);

/// How often the test looks whether the script has finished.
const CHILD_POLL: Duration = Duration::from_millis(100);

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

fn chromium_path() -> String {
    std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// Fails with what to install when a tool is missing.
fn require_tools() {
    let node = Command::new("node").arg("--version").output();
    match node {
        Ok(out) if out.status.success() => {}
        _ => panic!(
            "Node.js is missing: install Node.js 20 or newer, then run `npm ci --prefix tests/e2e`"
        ),
    }
    assert!(
        e2e_dir()
            .join("node_modules/playwright-core/package.json")
            .is_file(),
        "playwright-core is not installed: run `npm ci --prefix tests/e2e`"
    );
    let chromium = chromium_path();
    assert!(
        Path::new(&chromium).is_file(),
        "Chromium is missing at {chromium}: run `apt-get install chromium` (or set CHROMIUM_PATH)"
    );
}

/// HTTPS, and a short grace period so that a closed tab's member goes soon.
async fn start() -> TestServer {
    TestServer::start_with(Backend::Sqlite, |c| {
        c.plain_http = false;
        c.websocket.grace_ms = 1500;
    })
    .await
}

/// The seed-format join link of a conference with this password, as the
/// server prints it.
fn link(t: &TestServer, password: &str) -> String {
    t.url(&format!("/gzbwclient/conference/{}", code(password)))
}

fn code(password: &str) -> String {
    join_link::encode_seed(&Password::parse(password).expect("password"), *b"Lk9q").expect("seed")
}

/// Runs `node tests/e2e/SCRIPT ARGS…` and fails the test with its output
/// unless it exits 0.
async fn run_script(t: &TestServer, script: &str, args: &[String]) {
    run_script_cutting(t, script, args, None).await
}

/// Runs a script; when it prints `CUT <userId>`, the server closes that
/// member's WebSocket from its side, then creates `cut_done` for the script.
async fn run_script_cutting(
    t: &TestServer,
    script: &str,
    args: &[String],
    cut_done: Option<&Path>,
) {
    require_tools();
    let _one_at_a_time = BROWSERS.lock().await;
    let log_path = t.dir.path().join(format!("{script}.log"));
    let log = std::fs::File::create(&log_path).expect("script log");
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(e2e_dir().join(script))
        .args(args)
        .current_dir(e2e_dir())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("node starts");
    // std's Child has no timed wait, and tokio's process feature is not in
    // the workspace: look every CHILD_POLL while the server keeps serving.
    let mut cut = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if let (Some(done), false) = (cut_done, cut) {
            let output = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(user_id) = output.lines().find_map(|l| l.split("CUT ").nth(1)) {
                let room = t
                    .state()
                    .rooms
                    .room_of(user_id.trim())
                    .expect("the member's room");
                let push = confgate::rooms::Push::Close("cut by the server");
                room.send(confgate::rooms::RoomCommand::PushTo {
                    user_id: user_id.trim().to_string(),
                    push,
                })
                .await
                .expect("room");
                std::fs::write(done, b"cut").expect("cut-done file");
                cut = true;
            }
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(CHILD_POLL).await;
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    let took = started.elapsed();
    match status {
        Some(s) if s.success() => println!("{script} passed in {took:.1?}:\n{output}"),
        Some(s) => panic!("{script} failed ({s}) after {took:.1?}:\n{output}"),
        None => panic!("{script} was killed after {took:.1?}:\n{output}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lobby_shows_the_conference_and_explains_every_state() {
    let t = start().await;
    let now = confgate::store::now_ms();
    t.conference("产品周会 Weekly sync", Some("314159")).await;
    t.conference_at("later", Some("271828"), Some(now + 3_600_000), None)
        .await;
    let ended = t.conference("over", Some("161803")).await;
    assert!(
        t.state()
            .authority
            .end_conference(ended.conf_id.clone(), now)
            .await
            .expect("end")
    );
    let args = [
        t.base.clone(),
        code("314159"),
        code("271828"),
        code("161803"),
    ];
    run_script(&t, "lobby.mjs", &args).await;
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_see_each_other_in_real_time() {
    let t = start().await;
    // A chaired conference, so that the script can end it at the close.
    let (_, chair_token) = t.chair("Chair").await;
    let created = t
        .rpc(
            Some(&chair_token),
            "conference.create",
            json!({"name": "members", "password": "577215"}),
        )
        .await;
    let conf_id = created["result"]["confId"]
        .as_str()
        .unwrap_or_else(|| panic!("conference.create: {created}"))
        .to_string();
    let args = [link(&t, "577215"), chair_token, conf_id];
    run_script(&t, "members.mjs", &args).await;
    t.finish().await;
}

/// Needs the server's media side (publish and subscribe legs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_and_follows_mute_and_camera() {
    let t = start().await;
    t.conference("media", Some("662607")).await;
    run_script(&t, "media.mjs", &[link(&t, "662607")]).await;
    t.finish().await;
}

/// Needs the server's media side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_with_mdns_candidates_connects() {
    let t = start().await;
    t.conference("mdns", Some("602214")).await;
    run_script(&t, "mdns.mjs", &[link(&t, "602214")]).await;
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chair_pins_and_a_cut_connection_comes_back() {
    let t = start().await;
    let (_, chair_token) = t.chair("Chair").await;
    let created = t
        .rpc(
            Some(&chair_token),
            "conference.create",
            json!({"name": "主持 chaired", "password": "141421"}),
        )
        .await;
    assert_eq!(created["result"]["state"], 0, "{created}");
    let cut_done = t.dir.path().join("cut-done");
    let args = [
        link(&t, "141421"),
        chair_token,
        cut_done.display().to_string(),
    ];
    run_script_cutting(&t, "chair.mjs", &args, Some(&cut_done)).await;
    t.finish().await;
}
