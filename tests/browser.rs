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
    run_script_cutting(t, script, args, None, &[]).await
}

/// Runs a script; when it prints `CUT <userId>`, the server closes that
/// member's WebSocket from its side, then creates `cut_done` for the script.
async fn run_script_cutting(
    t: &TestServer,
    script: &str,
    args: &[String],
    cut_done: Option<&Path>,
    envs: &[(&str, String)],
) {
    let _one_at_a_time = BROWSERS.lock().await;
    run_script_holding_the_lock(t, script, args, cut_done, envs).await
}

/// [`run_script_cutting`] for a caller that holds [`BROWSERS`] already (its
/// own helpers, such as ffmpeg, must not load the machine under another
/// test's browsers either).
async fn run_script_holding_the_lock(
    t: &TestServer,
    script: &str,
    args: &[String],
    cut_done: Option<&Path>,
    envs: &[(&str, String)],
) {
    require_tools();
    let log_path = t.dir.path().join(format!("{script}.log"));
    let log = std::fs::File::create(&log_path).expect("script log");
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(e2e_dir().join(script))
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
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
    run_script_cutting(&t, "chair.mjs", &args, Some(&cut_done), &[]).await;
    t.finish().await;
}

/// What the test's MCU saw on one RTP port.
#[derive(Default)]
struct PortCounts {
    /// RTP packets from the gateway (the browser's media).
    rtp: std::sync::atomic::AtomicU64,
    /// RTCP PLI or FIR from the gateway (the browser asked for a keyframe).
    keyframe_requests: std::sync::atomic::AtomicU64,
    /// RTCP sender reports from the gateway that carry a report block (it
    /// heard the MCU's stream) and an SDES CNAME.
    sender_reports: std::sync::atomic::AtomicU64,
}

/// One media port of the test's MCU: `answer` is the port of the SDP answer
/// (the browser's media arrives there, and the MCU's media leaves from it, as
/// a symmetric-RTP MCU does); what ffmpeg sends to `feed` goes out of
/// `answer` to the gateway's port once sipp has logged the offer.
async fn mcu_port(
    answer: tokio::net::UdpSocket,
    feed: tokio::net::UdpSocket,
    gateway: tokio::sync::watch::Receiver<Option<std::net::SocketAddr>>,
    counts: std::sync::Arc<PortCounts>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut from_gateway = [0u8; 2048];
    let mut from_ffmpeg = [0u8; 2048];
    loop {
        tokio::select! {
            got = answer.recv_from(&mut from_gateway) => {
                let Ok((n, _)) = got else { continue };
                let d = &from_gateway[..n];
                if n < 8 || d[0] >> 6 != 2 {
                    continue;
                }
                if (192..=223).contains(&d[1]) {
                    // A compound RTCP packet: look for PSFB PLI (fmt 1) or FIR (fmt 4).
                    let mut rest = d;
                    let (mut report, mut cname) = (false, false);
                    while rest.len() >= 4 {
                        if rest[1] == 206 && matches!(rest[0] & 0x1F, 1 | 4) {
                            counts.keyframe_requests.fetch_add(1, Relaxed);
                        }
                        report |= rest[1] == 200 && rest[0] & 0x1F == 1;
                        cname |= rest[1] == 202;
                        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
                        rest = rest.get(len..).unwrap_or(&[]);
                    }
                    if report && cname {
                        counts.sender_reports.fetch_add(1, Relaxed);
                    }
                } else {
                    counts.rtp.fetch_add(1, Relaxed);
                }
            }
            got = feed.recv_from(&mut from_ffmpeg) => {
                let Ok((n, _)) = got else { continue };
                let to = *gateway.borrow();
                if let Some(to) = to {
                    let _ = answer.send_to(&from_ffmpeg[..n], to).await;
                }
            }
        }
    }
}

/// The gateway's RTP ports, from the offer sipp logs:
/// `OFFER call=1 callid=… ip=127.0.0.1 aport=P vport=P …`.
fn offered_ports(log: &str) -> Option<(u16, u16)> {
    let line = log.lines().find(|l| l.starts_with("OFFER "))?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse().ok())
    };
    Some((field("aport=")?, field("vport=")?))
}

/// How the test's MCU speaks: its sipp scenario, the binding's codecs, and
/// ffmpeg's encoder arguments (each ending in `-payload_type N`) per kind.
struct McuPlay {
    scenario: &'static str,
    binding_codecs: &'static str,
    settled: &'static str,
    video: &'static [&'static str],
    audio: &'static [&'static str],
    screenshot: &'static str,
    /// The scenario sends SIP INFO picture_fast_update during the call.
    asks_keyframes: bool,
}

/// Needs the server's media side, sipp and ffmpeg: the conference is bound to
/// an MCU played by sipp (SIP) and ffmpeg (its picture and sound over RTP).
/// The page must show the MCU's picture as its main video and settle on the
/// expected codecs; the MCU must receive the browser's media and its keyframe
/// requests (RTCP and SIP INFO); the browser leaving must hang the call up.
async fn mcu_in_a_browser(play: McuPlay) {
    use common::sipp::{Sipp, scenario};
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;

    // sipp and ffmpeg (encoding in real time) count as this test's browser
    // load: nobody else's browsers run meanwhile.
    let _one_at_a_time = BROWSERS.lock().await;
    let bind = || async {
        tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("udp")
    };
    let (audio_answer, video_answer, audio_feed, video_feed) =
        (bind().await, bind().await, bind().await, bind().await);
    let port = |s: &tokio::net::UdpSocket| s.local_addr().expect("addr").port().to_string();
    let (aport, vport) = (port(&audio_answer), port(&video_answer));
    let (afeed, vfeed) = (port(&audio_feed), port(&video_feed));
    let sipp = Sipp::start(
        &scenario(play.scenario),
        false,
        &[
            "-aa",
            "-timeout",
            "150s",
            "-trace_msg",
            "-message_file",
            "messages.log",
            "-key",
            "mcu_aport",
            &aport,
            "-key",
            "mcu_vport",
            &vport,
        ],
    );

    let t = TestServer::start_with(Backend::Sqlite, |c| {
        c.plain_http = false;
        c.websocket.grace_ms = 1500;
        c.sip.listen = "127.0.0.1:0".parse().expect("addr");
    })
    .await;
    let conf = t.conference("MCU 会议", Some("299792")).await;
    t.bind_mcu(&common::mcu_binding(
        &conf.conf_id,
        sipp.target(),
        play.binding_codecs,
    ))
    .await;

    let (gateway_audio, audio_rx) = tokio::sync::watch::channel(None);
    let (gateway_video, video_rx) = tokio::sync::watch::channel(None);
    let audio_counts = Arc::new(PortCounts::default());
    let video_counts = Arc::new(PortCounts::default());
    let relays = [
        tokio::spawn(mcu_port(
            audio_answer,
            audio_feed,
            audio_rx,
            audio_counts.clone(),
        )),
        tokio::spawn(mcu_port(
            video_answer,
            video_feed,
            video_rx,
            video_counts.clone(),
        )),
    ];
    let sipp_log = sipp.read_path("uas.log");
    let watcher = tokio::spawn(async move {
        loop {
            let log = std::fs::read_to_string(&sipp_log).unwrap_or_default();
            if let Some((a, v)) = offered_ports(&log) {
                let _ = gateway_audio.send(Some(([127, 0, 0, 1], a).into()));
                let _ = gateway_video.send(Some(([127, 0, 0, 1], v).into()));
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
        .args([
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=15:duration=120",
        ])
        .args([
            "-re",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=120",
        ])
        .args(["-map", "0:v"])
        .args(play.video)
        .args(["-f", "rtp"])
        .arg(format!(
            "rtp://127.0.0.1:{vfeed}?pkt_size=1200&localaddr=127.0.0.1"
        ))
        .args(["-map", "1:a"])
        .args(play.audio)
        .args(["-f", "rtp"])
        .arg(format!("rtp://127.0.0.1:{afeed}?localaddr=127.0.0.1"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ffmpeg is missing: apt-get install ffmpeg");

    let link = link(&t, "299792");
    let mut envs = vec![
        ("JOIN_URL", link.clone()),
        ("MCU_CODECS", play.settled.to_string()),
    ];
    if play.asks_keyframes {
        envs.push(("MCU_ASKS_KEYFRAMES", "1".into()));
    }
    if let Ok(dir) = std::env::var("SCREENSHOT_DIR") {
        envs.push(("SCREENSHOT", format!("{dir}/{}", play.screenshot)));
    }
    run_script_holding_the_lock(&t, "mcu_page.mjs", &[link], None, &envs).await;
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();

    let (audio_rtp, video_rtp) = (
        audio_counts.rtp.load(Relaxed),
        video_counts.rtp.load(Relaxed),
    );
    assert!(
        audio_rtp > 50 && video_rtp > 20,
        "the MCU receives the browser's media: {audio_rtp} audio and {video_rtp} video packets"
    );
    assert!(
        video_counts.keyframe_requests.load(Relaxed) > 0,
        "the browser's keyframe requests reach the MCU as RTCP"
    );
    let reports = (
        audio_counts.sender_reports.load(Relaxed),
        video_counts.sender_reports.load(Relaxed),
    );
    assert!(
        reports.0 > 0 && reports.1 > 0,
        "the MCU gets RTCP sender reports on both streams: {reports:?}"
    );
    let messages = sipp.read("messages.log");
    assert!(
        messages.contains("INFO sip:") && messages.contains("picture_fast_update"),
        "and as SIP INFO picture_fast_update"
    );
    // The page closed: after the grace period the call hangs up.
    sipp.expect_success().await;
    watcher.abort();
    for relay in relays {
        relay.abort();
    }
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcu_picture_is_the_main_video() {
    mcu_in_a_browser(McuPlay {
        scenario: "uas_answer_info.xml",
        binding_codecs: "opus,vp8,h264",
        settled: "opus,vp8",
        video: &[
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "400k",
            "-g",
            "30",
            "-payload_type",
            "96",
        ],
        audio: &["-c:a", "libopus", "-b:a", "32k", "-payload_type", "111"],
        screenshot: "mcu-main-video.png",
        asks_keyframes: true,
    })
    .await;
}

/// An MCU that speaks only G.711 and H.264: the page publishes in them (it
/// prefers the binding's codecs), so nothing needs transcoding either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcu_of_g711_and_h264_is_bridged_without_transcoding() {
    mcu_in_a_browser(McuPlay {
        scenario: "uas_answer_g711_h264.xml",
        binding_codecs: "pcmu,h264",
        settled: "pcmu,h264",
        video: &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-profile:v",
            "baseline",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "30",
            "-payload_type",
            "97",
        ],
        audio: &[
            "-af",
            "aresample=8000,asetnsamples=n=160",
            "-c:a",
            "pcm_mulaw",
            "-ac",
            "1",
            "-payload_type",
            "0",
        ],
        screenshot: "mcu-g711-h264.png",
        asks_keyframes: false,
    })
    .await;
}

/// Two nodes sharing one MariaDB: a browser joins through each. The node that
/// does not serve the conference sends its page to the one that does; the two
/// pages see each other's mute within 1 s and decode each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_one_conference_a_browser_on_each() {
    let db = common::MySqlDatabase::create().await;
    let node = |id: &'static str| {
        let url = db.url.clone();
        TestServer::start_with(Backend::MySql, move |c| {
            c.plain_http = false;
            c.websocket.grace_ms = 1500;
            c.database.url = Some(url);
            c.node.id = Some(id.into());
            c.node.heartbeat_secs = 1;
            c.node.dead_after_secs = 3;
        })
    };
    let one = node("node-1").await;
    let two = node("node-2").await;
    // Until each knows the other.
    let deadline = Instant::now() + Duration::from_secs(10);
    while one.state().pool.live().len() < 2 || two.state().pool.live().len() < 2 {
        assert!(Instant::now() < deadline, "the nodes never saw each other");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    one.conference("两个节点 two nodes", Some("838383")).await;
    run_script(
        &one,
        "two_nodes.mjs",
        &[link(&one, "838383"), link(&two, "838383")],
    )
    .await;
    two.finish().await;
    one.finish().await;
    drop(db);
}

/// The node serving a conference stops under live pages: one loaded from
/// it, one loaded from another node. Both find the new serving node (through
/// their own node, or through the pool when their own is gone), are back in,
/// and media flows again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_follows_its_conference_when_the_serving_node_stops() {
    let db = common::MySqlDatabase::create().await;
    let node = |id: &'static str| {
        let url = db.url.clone();
        TestServer::start_with(Backend::MySql, move |c| {
            c.plain_http = false;
            c.websocket.grace_ms = 1500;
            c.database.url = Some(url);
            c.node.id = Some(id.into());
            c.node.heartbeat_secs = 1;
            c.node.dead_after_secs = 3;
        })
    };
    let mut one = node("node-1").await;
    let two = node("node-2").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while one.state().pool.live().len() < 2 || two.state().pool.live().len() < 2 {
        assert!(Instant::now() < deadline, "the nodes never saw each other");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    one.conference("换节点 failover", Some("848484")).await;
    let links = [link(&one, "848484"), link(&two, "848484")];
    let stopped = two.dir.path().join("stopped");
    // When the script says so, node 1 stops (cleanly: it leaves the pool).
    let log = two.dir.path().join("node_failover.mjs.log");
    let server_one = one.server.take().expect("node 1 runs");
    let stopper = tokio::spawn({
        let stopped = stopped.clone();
        async move {
            loop {
                let output = std::fs::read_to_string(&log).unwrap_or_default();
                if output.contains("STOP-NODE") {
                    server_one.shutdown().await;
                    std::fs::write(&stopped, b"stopped").expect("stopped file");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let args = [
        links[0].clone(),
        links[1].clone(),
        stopped.display().to_string(),
    ];
    run_script(&two, "node_failover.mjs", &args).await;
    stopper.await.expect("node 1 stopped");
    two.finish().await;
    one.finish().await;
    drop(db);
}
