//! The SIP/MCU bridge end to end without a browser: a member joins a bound
//! conference over its WebSocket and its call reaches a real sipp playing the
//! MCU; answers, refusals, hang-ups on either side, a reconnect within the
//! grace period, a re-INVITE, and broken answers, as the page sees them
//! (`mcu.state`) and as the MCU sees them (sipp's verdict and message log).
//!
//! A member that does not publish is called after `sip.publish_wait_ms`;
//! media through the bridge is covered by the browser test.

mod common;

use std::time::Duration;

use common::sipp::{Sipp, scenario};
use common::{Backend, TestServer, WsClient, mcu_binding};
use confgate::store::{McuBindingRow, now_ms};
use serde_json::{Value, json};

const PASSWORD: &str = "246810";

/// A server whose conference is bound to `sipp`, with short waits.
async fn bound_server(
    backend: Backend,
    sipp: &Sipp,
    tweak: impl FnOnce(&mut McuBindingRow),
) -> (TestServer, String) {
    let t = TestServer::start_with(backend, |c| {
        c.sip.listen = "127.0.0.1:0".parse().expect("addr");
        c.sip.publish_wait_ms = 50;
        c.sip.ring_timeout_secs = 10;
        c.websocket.grace_ms = 2000;
    })
    .await;
    let conf = t.conference("bridged", Some(PASSWORD)).await;
    let mut binding = mcu_binding(&conf.conf_id, sipp.target(), "opus,vp8,h264");
    tweak(&mut binding);
    t.bind_mcu(&binding).await;
    (t, conf.conf_id)
}

struct Member {
    sip_account: String,
    token: String,
    ws: WsClient,
}

async fn join(t: &TestServer, name: &str) -> Member {
    let j = t.join(PASSWORD, name).await;
    let text = |k: &str| {
        j[k].as_str()
            .unwrap_or_else(|| panic!("{k} in {j}"))
            .to_string()
    };
    let token = text("accessToken");
    let mut ws = t.ws(&token).await;
    let joined = ws.request("conference.join", json!({})).await;
    assert!(joined.get("result").is_some(), "{joined}");
    let user = t
        .state()
        .store
        .user(&text("userId"))
        .await
        .expect("store")
        .expect("the member's account");
    Member {
        sip_account: user.sip_account,
        token,
        ws,
    }
}

/// The next `mcu.state` notification's params.
async fn mcu_state(ws: &mut WsClient, sipp: &Sipp) -> Value {
    let wait = Duration::from_secs(15);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match ws.notification("mcu.state").await {
            Some(n) => return n["params"].clone(),
            None if tokio::time::Instant::now() < deadline => continue,
            None => panic!("no mcu.state; sipp says {}", sipp.errors()),
        }
    }
}

/// Reads `mcu.state` until `state`; every state before it must be `calling`.
async fn until_state(ws: &mut WsClient, sipp: &Sipp, state: &str) -> Value {
    loop {
        let params = mcu_state(ws, sipp).await;
        if params["state"] == state {
            return params;
        }
        assert_eq!(
            params["state"],
            "calling",
            "expected {state}, got {params}; sipp: {}",
            sipp.errors()
        );
    }
}

const TRACE: [&str; 3] = ["-trace_msg", "-message_file", "messages.log"];

async fn answered_then_left(backend: Backend) {
    let sipp = Sipp::start(&scenario("uas_answer.xml"), false, &TRACE);
    let (t, _) = bound_server(backend, &sipp, |_| {}).await;
    let mut m = join(&t, "Alice Zhang").await;
    let calling = mcu_state(&mut m.ws, &sipp).await;
    assert_eq!(calling["state"], "calling", "{calling}");
    let connected = until_state(&mut m.ws, &sipp, "connected").await;
    assert_eq!(
        (&connected["audio"], &connected["video"]),
        (&json!("opus"), &json!("vp8")),
        "{connected}"
    );
    let messages = sipp.read("messages.log");
    let from = messages
        .lines()
        .find(|l| l.starts_with("From:"))
        .unwrap_or_else(|| panic!("no From in {messages}"));
    assert!(
        from.contains("\"Alice Zhang\"") && from.contains(&format!("sip:{}@", m.sip_account)),
        "the member calls as its account, with its name: {from}"
    );
    assert!(
        messages.contains("a=rtcp-mux"),
        "the offer asks for RTCP on the RTP port"
    );
    let left = m.ws.request("conference.leave", json!({})).await;
    assert_eq!(left["result"], json!({}), "{left}");
    sipp.expect_success().await;
    t.finish().await;
}

async fn busy_is_reported(backend: Backend) {
    let sipp = Sipp::start(&scenario("uas_busy.xml"), false, &[]);
    let (t, _) = bound_server(backend, &sipp, |_| {}).await;
    let mut m = join(&t, "Bob").await;
    let failed = until_state(&mut m.ws, &sipp, "failed").await;
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("busy")),
        "{failed}"
    );
    // The member stays in the conference with the web members.
    let res =
        m.ws.request("conference.setAudio", json!({"muted": true}))
            .await;
    assert_eq!(res["result"], json!({}), "{res}");
    sipp.expect_success().await;
    t.finish().await;
}

on_both_databases!(answered_then_left, busy_is_reported);

#[tokio::test]
async fn the_mcu_hanging_up_is_reported() {
    let sipp = Sipp::start(&scenario("uas_bye.xml"), false, &["-d", "500"]);
    let (t, _) = bound_server(Backend::Sqlite, &sipp, |_| {}).await;
    let mut m = join(&t, "Carol").await;
    until_state(&mut m.ws, &sipp, "connected").await;
    let ended = mcu_state(&mut m.ws, &sipp).await;
    assert_eq!(ended["state"], "ended", "{ended}");
    assert!(
        ended["reason"]
            .as_str()
            .is_some_and(|r| r.contains("hung up")),
        "{ended}"
    );
    // A reconnecting page learns it too, and no new call goes out.
    m.ws.close().await;
    let mut again = t.ws(&m.token).await;
    again.request("conference.join", json!({})).await;
    let repeated = mcu_state(&mut again, &sipp).await;
    assert_eq!(repeated["state"], "ended", "{repeated}");
    sipp.expect_success().await;
    t.finish().await;
}

#[tokio::test]
async fn digest_challenge_then_answer() {
    let sipp = Sipp::start(
        &scenario("uas_auth.xml"),
        false,
        &["-key", "auth_user", "room7", "-key", "auth_pass", "s3cret"],
    );
    let (t, _) = bound_server(Backend::Sqlite, &sipp, |b| {
        b.username = Some("room7".into());
        b.password = Some("s3cret".into());
    })
    .await;
    let mut m = join(&t, "Dan").await;
    until_state(&mut m.ws, &sipp, "connected").await;
    m.ws.request("conference.leave", json!({})).await;
    sipp.expect_success().await;
    t.finish().await;
}

#[tokio::test]
async fn the_conference_ending_hangs_up() {
    let sipp = Sipp::start(&scenario("uas_answer.xml"), false, &[]);
    let (t, conf_id) = bound_server(Backend::Sqlite, &sipp, |_| {}).await;
    let mut m = join(&t, "Eve").await;
    until_state(&mut m.ws, &sipp, "connected").await;
    // Ended elsewhere (the command line, another node): the room notices.
    t.state()
        .store
        .end_conference(&conf_id, now_ms())
        .await
        .expect("end");
    let closed = m.ws.notification("session.closed").await;
    assert!(closed.is_some(), "the page is told the conference ended");
    sipp.expect_success().await;
    t.finish().await;
}

#[tokio::test]
async fn a_reconnect_within_the_grace_period_keeps_the_call() {
    let mut sipp = Sipp::start(&scenario("uas_answer.xml"), false, &[]);
    let (t, _) = bound_server(Backend::Sqlite, &sipp, |_| {}).await;
    let m = join(&t, "Fay").await;
    let mut ws = m.ws;
    until_state(&mut ws, &sipp, "connected").await;
    ws.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = t.ws(&m.token).await;
    again.request("conference.join", json!({})).await;
    let repeated = mcu_state(&mut again, &sipp).await;
    assert_eq!(
        repeated["state"], "connected",
        "the same call, told again: {repeated}"
    );
    // Past the grace period the call is still up: sipp has had no BYE.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        sipp.running(),
        "the call ended while the member reconnected: {}",
        sipp.errors()
    );
    again.request("conference.leave", json!({})).await;
    // One INVITE and one BYE: sipp (-m 1) counts exactly one good call.
    sipp.expect_success().await;
    t.finish().await;
}

#[tokio::test]
async fn leaving_while_it_rings_cancels() {
    let sipp = Sipp::start(&scenario("uas_noanswer.xml"), false, &[]);
    let (t, _) = bound_server(Backend::Sqlite, &sipp, |_| {}).await;
    let mut m = join(&t, "Gus").await;
    let calling = mcu_state(&mut m.ws, &sipp).await;
    assert_eq!(calling["state"], "calling");
    tokio::time::sleep(Duration::from_millis(500)).await;
    m.ws.request("conference.leave", json!({})).await;
    sipp.expect_success().await;
    t.finish().await;
}

#[tokio::test]
async fn a_reinvite_from_the_mcu_is_answered() {
    let sipp = Sipp::start(&scenario("uas_reinvite.xml"), false, &TRACE);
    let (t, _) = bound_server(Backend::Sqlite, &sipp, |_| {}).await;
    let mut m = join(&t, "Hal").await;
    until_state(&mut m.ws, &sipp, "connected").await;
    let again = mcu_state(&mut m.ws, &sipp).await;
    assert_eq!(again["state"], "connected", "after the re-INVITE: {again}");
    let ended = mcu_state(&mut m.ws, &sipp).await;
    assert_eq!(ended["state"], "ended", "{ended}");
    let messages = sipp.read("messages.log");
    sipp.expect_success().await;
    assert!(
        messages.contains("a=recvonly"),
        "the MCU's sendonly offer is answered recvonly: {messages}"
    );
    t.finish().await;
}

async fn broken_answer(scenario_name: &str, expected: &str) {
    let sipp = Sipp::start(&scenario(scenario_name), false, &[]);
    let (t, _) = bound_server(Backend::Sqlite, &sipp, |_| {}).await;
    let mut m = join(&t, "Ivy").await;
    let failed = until_state(&mut m.ws, &sipp, "failed").await;
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains(expected)),
        "{failed}"
    );
    // ACK, then BYE: the MCU sees a clean end.
    sipp.expect_success().await;
    t.finish().await;
}

#[tokio::test]
async fn a_malformed_sdp_answer_fails_the_call_cleanly() {
    broken_answer("uas_bad_sdp.xml", "malformed SDP").await;
}

#[tokio::test]
async fn no_shared_codec_is_explained() {
    broken_answer("uas_no_codec.xml", "shares no codec").await;
}

#[tokio::test]
async fn no_answer_within_the_ring_timeout() {
    let sipp = Sipp::start(&scenario("uas_noanswer.xml"), false, &[]);
    let t = TestServer::start_with(Backend::Sqlite, |c| {
        c.sip.listen = "127.0.0.1:0".parse().expect("addr");
        c.sip.publish_wait_ms = 0;
        c.sip.ring_timeout_secs = 1;
    })
    .await;
    let conf = t.conference("bridged", Some(PASSWORD)).await;
    t.bind_mcu(&mcu_binding(&conf.conf_id, sipp.target(), "opus,vp8"))
        .await;
    let mut m = join(&t, "Jo").await;
    let failed = until_state(&mut m.ws, &sipp, "failed").await;
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no answer")),
        "{failed}"
    );
    sipp.expect_success().await;
    t.finish().await;
}

#[tokio::test]
async fn an_unbound_conference_places_no_call() {
    let t = TestServer::start_with(Backend::Sqlite, |c| {
        c.sip.listen = "127.0.0.1:0".parse().expect("addr");
        c.sip.publish_wait_ms = 0;
    })
    .await;
    t.conference("plain", Some(PASSWORD)).await;
    let mut m = join(&t, "Kim").await;
    // Everything the page hears for a while: no word of an MCU.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(800);
    while let Some(n) =
        m.ws.read_within(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
    {
        assert_ne!(n["method"], "mcu.state", "no call, no state: {n}");
    }
    assert!(m.ws.notification("conference.snapshot").await.is_some());

    t.finish().await;
}
