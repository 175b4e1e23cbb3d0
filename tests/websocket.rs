//! The member's WebSocket: admission, the subscription flow with snapshots and
//! resumption, member events, chair controls, the grace period and bad input.

mod common;

use std::time::Duration;

use common::{Backend, TestServer, WAIT};
use serde_json::{Value, json};

async fn member(t: &TestServer, code: &str, name: &str) -> (String, String) {
    let j = t.join(code, name).await;
    (
        j["userId"].as_str().expect("id").to_string(),
        j["accessToken"].as_str().expect("token").to_string(),
    )
}

#[tokio::test]
async fn admission_needs_a_valid_token_and_origin() {
    let t = TestServer::start(Backend::Sqlite).await;
    t.conference("adm", Some("101010")).await;
    let (_, token) = member(&t, "101010", "A").await;
    assert_eq!(t.ws_query("").await.err(), Some(401), "no token");
    assert_eq!(t.ws_query("token=garbage").await.err(), Some(401));
    let state = t.state();
    let mut claims = state
        .keys
        .verify(&token, confgate::store::now_ms())
        .expect("valid");
    claims.deadline = confgate::store::now_ms() - 1;
    let expired = state.keys.sign(&claims);
    assert_eq!(
        t.ws_query(&format!("token={expired}")).await.err(),
        Some(401),
        "expired"
    );

    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = t
        .ws_url(&format!("token={token}"))
        .into_client_request()
        .expect("req");
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().expect("hv"));
    assert_eq!(
        common::WsClient::connect(request).await.err(),
        Some(403),
        "foreign origin"
    );
    let mut request = t
        .ws_url(&format!("token={token}"))
        .into_client_request()
        .expect("req");
    let own = t.base.clone();
    request
        .headers_mut()
        .insert("origin", own.parse().expect("hv"));
    let mut ws = common::WsClient::connect(request)
        .await
        .expect("own origin is allowed");
    let snapshot = ws
        .notification("conference.snapshot")
        .await
        .expect("snapshot on connect");
    assert_eq!(snapshot["params"]["confName"], "adm");
    assert_eq!(snapshot["params"]["members"], json!([]));
    ws.close().await;
    t.finish().await;
}

#[tokio::test]
async fn members_see_each_other_join_update_and_leave() {
    let t = TestServer::start(Backend::Sqlite).await;
    t.conference("events", Some("202020")).await;
    let (a_id, a_token) = member(&t, "202020", "Alice").await;
    let (b_id, b_token) = member(&t, "202020", "Bob").await;
    let mut a = t.ws(&a_token).await;
    a.notification("conference.snapshot")
        .await
        .expect("snapshot");
    let joined = a.request("conference.join", json!({})).await;
    assert_eq!(
        joined["result"]["member"]["userId"],
        a_id.as_str(),
        "{joined}"
    );
    assert_eq!(
        a.event("memberJoined").await.expect("own join")["member"]["name"],
        "Alice"
    );

    let mut b = t.ws(&b_token).await;
    let snap = b
        .notification("conference.snapshot")
        .await
        .expect("snapshot");
    assert_eq!(
        snap["params"]["members"][0]["userId"],
        a_id.as_str(),
        "B's snapshot shows A"
    );
    assert_eq!(snap["params"]["mainVideo"], a_id.as_str());
    b.request("conference.join", json!({"audioMuted": true}))
        .await;
    let seen = a.event("memberJoined").await.expect("A sees B join");
    assert_eq!(seen["member"]["userId"], b_id.as_str());
    assert_eq!(seen["member"]["audioMuted"], true);

    let res = a
        .request("conference.setAudio", json!({"muted": true}))
        .await;
    assert_eq!(res["result"], json!({}), "{res}");
    let update = b.event("memberUpdated").await.expect("B sees A muted");
    assert_eq!(
        (update["userId"].as_str(), update["audioMuted"].as_bool()),
        (Some(a_id.as_str()), Some(true))
    );
    a.request("conference.setVideo", json!({"enabled": false}))
        .await;
    let update = b
        .event("memberUpdated")
        .await
        .expect("B sees A's camera off");
    assert_eq!(update["videoEnabled"], false);

    let res = a.request("conference.leave", json!({})).await;
    assert_eq!(res["result"], json!({}));
    let left = b.event("memberLeft").await.expect("B sees A leave");
    assert_eq!(
        (left["userId"].as_str(), left["reason"].as_str()),
        (Some(a_id.as_str()), Some("left"))
    );
    // Every event has an id and the next sequence number.
    b.close().await;
    t.finish().await;
}

#[tokio::test]
async fn reconnecting_with_last_seq_gets_exactly_the_missed_events() {
    let t = TestServer::start(Backend::Sqlite).await;
    t.conference("resume", Some("303030")).await;
    let (_, a_token) = member(&t, "303030", "A").await;
    let (b_id, b_token) = member(&t, "303030", "B").await;
    let mut a = t.ws(&a_token).await;
    a.request("conference.join", json!({})).await;
    let mut b = t.ws(&b_token).await;
    b.request("conference.join", json!({})).await;
    // B records the last sequence number it saw, then drops.
    let mut last_seq = b.notification("conference.snapshot").await.expect("snap")["params"]["seq"]
        .as_u64()
        .expect("seq");
    while let Some(n) = b.read_within(Duration::from_millis(300)).await {
        if let Some(seq) = n["params"]["seq"].as_u64() {
            last_seq = last_seq.max(seq);
        }
    }
    b.close().await;
    for muted in [true, false, true] {
        a.request("conference.setAudio", json!({"muted": muted}))
            .await;
    }
    let mut b = t
        .ws_query(&format!("token={b_token}&lastSeq={last_seq}"))
        .await
        .expect("reconnect");
    let mut seqs = Vec::new();
    while let Some(n) = b.read_within(Duration::from_millis(500)).await {
        assert_eq!(
            n["method"], "conference.event",
            "missed events instead of a snapshot: {n}"
        );
        seqs.push(n["params"]["seq"].as_u64().expect("seq"));
    }
    assert!(!seqs.is_empty());
    assert_eq!(seqs[0], last_seq + 1, "nothing lost");
    assert_eq!(
        seqs,
        (seqs[0]..seqs[0] + seqs.len() as u64).collect::<Vec<_>>(),
        "nothing doubled or skipped"
    );
    // B is still a member (within the grace period) and marked connected again on join.
    let res = b.request("conference.join", json!({})).await;
    assert_eq!(res["result"]["member"]["userId"], b_id.as_str());
    // A sequence number from the future gets a snapshot.
    let mut c = t
        .ws_query(&format!("token={b_token}&lastSeq=999999"))
        .await
        .expect("connect");
    assert!(c.notification("conference.snapshot").await.is_some());
    t.finish().await;
}

#[tokio::test]
async fn a_dropped_connection_leaves_after_the_grace_period() {
    let t = TestServer::start_with(Backend::Sqlite, |c| c.websocket.grace_ms = 300).await;
    t.conference("grace", Some("404040")).await;
    let (a_id, a_token) = member(&t, "404040", "A").await;
    let (_, b_token) = member(&t, "404040", "B").await;
    let mut b = t.ws(&b_token).await;
    b.request("conference.join", json!({})).await;
    let a = {
        let mut a = t.ws(&a_token).await;
        a.request("conference.join", json!({})).await;
        a
    };
    b.event("memberJoined").await.expect("A joined");
    drop(a); // the tab is closed: no leave request
    let update = b
        .event("memberUpdated")
        .await
        .expect("A shown disconnected");
    assert_eq!(
        (update["userId"].as_str(), update["connected"].as_bool()),
        (Some(a_id.as_str()), Some(false))
    );
    let left = b
        .event("memberLeft")
        .await
        .expect("A leaves after the grace period");
    assert_eq!(left["reason"], "connectionLost");

    // Reconnecting within the grace period is not a leave.
    let mut a = t.ws(&a_token).await;
    a.request("conference.join", json!({})).await;
    b.event("memberJoined").await.expect("A back");
    drop(a);
    b.event("memberUpdated").await.expect("disconnected");
    let mut a = t.ws(&a_token).await;
    a.request("conference.join", json!({})).await;
    let back = b.event("memberUpdated").await.expect("reconnected");
    assert_eq!(back["connected"], true);
    let quiet = b.read_within(Duration::from_millis(600)).await;
    assert!(
        quiet.is_none(),
        "no leave after a reconnect within the grace period: {quiet:?}"
    );
    t.finish().await;
}

#[tokio::test]
async fn the_chair_pins_mutes_and_removes() {
    let t = TestServer::start(Backend::Sqlite).await;
    let (chair_id, chair_token) = t.chair("Chair").await;
    let created = t
        .rpc(
            Some(&chair_token),
            "conference.create",
            json!({"name": "chaired", "password": "505050"}),
        )
        .await;
    let conf_id = created["result"]["confId"]
        .as_str()
        .expect("id")
        .to_string();
    let (a_id, a_token) = member(&t, "505050", "A").await;
    let (b_id, b_token) = member(&t, "505050", "B").await;
    let mut chair = t
        .ws_query(&format!("token={chair_token}&confId={conf_id}"))
        .await
        .expect("chair connects");
    chair.request("conference.join", json!({})).await;
    let mut a = t.ws(&a_token).await;
    a.request("conference.join", json!({})).await;
    let mut b = t.ws(&b_token).await;
    b.request("conference.join", json!({})).await;
    let snap = b.notification("conference.snapshot").await.expect("snap");
    assert_eq!(
        snap["params"]["mainVideo"],
        chair_id.as_str(),
        "the chair's camera is the main video"
    );
    let roles: Vec<Value> = snap["params"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["role"].clone())
        .collect();
    assert!(roles.contains(&json!("chair")));

    let denied = a
        .request("conference.setMainVideo", json!({"userId": a_id}))
        .await;
    assert_eq!(denied["error"]["code"], 403);
    chair
        .request("conference.setMainVideo", json!({"userId": b_id}))
        .await;
    let main = a.event("mainVideoChanged").await.expect("pin reaches A");
    assert_eq!(
        (main["userId"].as_str(), main["cause"].as_str()),
        (Some(b_id.as_str()), Some("pinned"))
    );

    let res = chair
        .request(
            "conference.muteMember",
            json!({"userId": a_id, "muted": true}),
        )
        .await;
    assert_eq!(res["result"], json!({}), "{res}");
    let update = a.event("memberUpdated").await.expect("A sees itself muted");
    assert_eq!(update["audioMuted"], true);
    let denied = b
        .request(
            "conference.muteMember",
            json!({"userId": a_id, "muted": false}),
        )
        .await;
    assert_eq!(denied["error"]["code"], 403);

    let res = chair
        .request("conference.removeMember", json!({"userId": b_id}))
        .await;
    assert_eq!(res["result"], json!({}));
    let closed = b.notification("session.closed").await.expect("B told");
    assert!(
        closed["params"]["reason"]
            .as_str()
            .expect("reason")
            .contains("removed")
    );
    let left = a.event("memberLeft").await.expect("A sees B removed");
    assert_eq!(left["reason"], "removed");
    let main = a
        .event("mainVideoChanged")
        .await
        .expect("unpinned when B goes");
    assert_eq!(main["userId"], chair_id.as_str());

    // Ending the conference closes every connection.
    let ended = t
        .rpc(
            Some(&chair_token),
            "conference.end",
            json!({"confId": conf_id}),
        )
        .await;
    assert_eq!(ended["result"]["state"], 31, "{ended}");
    let state = a
        .event("conferenceStateChanged")
        .await
        .unwrap_or_else(|| panic!("A sees the end; left: {:?}", a.notifications));
    assert_eq!(state["state"], 31);
    assert!(a.notification("session.closed").await.is_some());
    t.finish().await;
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_harms_nothing() {
    let t = TestServer::start_with(Backend::Sqlite, |c| c.websocket.requests_per_second = 5).await;
    t.conference("bad", Some("606060")).await;
    let (_, a_token) = member(&t, "606060", "A").await;
    let (_, b_token) = member(&t, "606060", "B").await;
    let mut b = t.ws(&b_token).await;
    b.request("conference.join", json!({})).await;
    let mut a = t.ws(&a_token).await;
    let before = a
        .request("conference.setAudio", json!({"muted": true}))
        .await;
    assert_eq!(before["error"]["code"], 403, "join first: {before}");
    a.request("conference.join", json!({})).await;
    let again = a.request("conference.join", json!({})).await;
    assert_eq!(
        again["error"]["code"], 409,
        "a second join on one connection: {again}"
    );
    a.send_text("{not json".into()).await;
    let reply = a.read().await.expect("reply");
    assert_eq!(reply["error"]["code"], -32700);
    let reply = a
        .request("conference.setAudio", json!({"muted": "yes"}))
        .await;
    assert_eq!(reply["error"]["code"], -32602);
    let reply = a.request("no.such", json!({})).await;
    assert_eq!(reply["error"]["code"], -32601);

    // A flood: 429s, then the connection is closed; B is unaffected.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut throttled = 0;
    for i in 0..200 {
        a.send_text(json!({"jsonrpc":"2.0","id": 1000 + i,"method":"conference.setVideo","params":{"enabled": true}}).to_string()).await;
    }
    while let Some(m) = a.read_within(Duration::from_secs(2)).await {
        if m["error"]["code"] == 429 {
            throttled += 1;
        }
    }
    assert!(throttled > 100, "throttled {throttled}");
    let res = b
        .request("conference.setAudio", json!({"muted": true}))
        .await;
    assert_eq!(res["result"], json!({}), "the conference goes on: {res}");

    // A message over 64 KiB closes the connection.
    let mut c = t.ws(&a_token).await;
    c.send_text(format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":["{}"]}}"#,
        "a".repeat(70_000)
    ))
    .await;
    let mut closed = false;
    while let Some(_m) = c.read_within(WAIT).await {}
    closed |= c.closed;
    assert!(closed, "oversized message closes the connection");
    let res = b
        .request("conference.setAudio", json!({"muted": false}))
        .await;
    assert_eq!(res["result"], json!({}));
    t.finish().await;
}

#[tokio::test]
async fn bad_media_input_gets_clear_errors() {
    let t = TestServer::start(Backend::Sqlite).await;
    t.conference("media-bad", Some("707070")).await;
    let (_, a_token) = member(&t, "707070", "A").await;
    let (_, b_token) = member(&t, "707070", "B").await;
    let mut a = t.ws(&a_token).await;
    let mut b = t.ws(&b_token).await;
    b.request("conference.join", json!({})).await;
    let offer = b
        .notification("media.offer")
        .await
        .expect("a subscriber offer at join");
    assert!(
        offer["params"]["sdp"]
            .as_str()
            .expect("sdp")
            .starts_with("v=0"),
        "{offer}"
    );

    let before_join = a.request("media.offer", json!({"sdp": "v=0"})).await;
    assert_eq!(before_join["error"]["code"], 403);
    a.request("conference.join", json!({})).await;
    for (sdp, why) in [
        ("garbage", "garbage"),
        (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
            "no media sections",
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
            "truncated",
        ),
    ] {
        let res = a.request("media.offer", json!({"sdp": sdp})).await;
        assert_eq!(res["error"]["code"], -32602, "{why}: {res}");
        assert!(
            res["error"]["message"]
                .as_str()
                .expect("msg")
                .contains("SDP"),
            "{why}: {res}"
        );
    }
    // An offer whose only codec the server does not forward.
    let no_common = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
        a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
        a=setup:actpass\r\na=rtcp-mux\r\na=rtpmap:0 PCMU/8000\r\n";
    let res = a.request("media.offer", json!({"sdp": no_common})).await;
    assert_eq!(res["error"]["code"], -32602, "{res}");
    let res = a.request("media.answer", json!({"sdp": "garbage"})).await;
    assert!(res["error"]["code"].as_i64().is_some(), "{res}");
    let res = a
        .request(
            "media.candidate",
            json!({"leg": "sideways", "candidate": null}),
        )
        .await;
    assert_eq!(res["error"]["code"], -32602, "{res}");
    let res = a
        .request("media.candidate", json!({"leg": "publish", "candidate": {"candidate": "candidate:garbage", "sdpMid": "0"}}))
        .await;
    assert!(
        res["error"]["code"].as_i64().is_some(),
        "candidates for a session that does not exist: {res}"
    );

    // The conference goes on: B still gets events, and A's connection works.
    a.request("conference.setAudio", json!({"muted": true}))
        .await;
    let update = b.event("memberUpdated").await.expect("B still gets events");
    assert_eq!(update["audioMuted"], true);
    t.finish().await;
}

#[tokio::test]
async fn the_active_members_gauge_follows_joins_and_leaves() {
    let t = TestServer::start(Backend::Sqlite).await;
    t.conference("gauge", Some("808181")).await;
    let (_, a_token) = member(&t, "808181", "A").await;
    let (_, b_token) = member(&t, "808181", "B").await;
    let gauge = |t: &TestServer| t.state().rooms.active_members();
    assert_eq!(gauge(&t), 0);
    let mut a = t.ws(&a_token).await;
    a.request("conference.join", json!({})).await;
    let mut b = t.ws(&b_token).await;
    b.request("conference.join", json!({})).await;
    assert_eq!(gauge(&t), 2);
    b.request("conference.leave", json!({})).await;
    a.request("conference.setAudio", json!({"muted": true}))
        .await;
    assert_eq!(gauge(&t), 1);
    let text = t
        .client
        .get(t.url("/metrics"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(text.contains("confgate_active_members 1"), "{text}");
    t.finish().await;
}

#[tokio::test]
async fn a_conference_ended_elsewhere_or_by_its_clock_closes_its_room() {
    let t = TestServer::start(Backend::Sqlite).await;
    let now = confgate::store::now_ms();
    let timed = t
        .conference_at("timed", Some("919191"), None, Some(now + 1500))
        .await;
    let by_hand = t.conference("by hand", Some("929292")).await;
    let (_, a_token) = member(&t, "919191", "A").await;
    let (_, b_token) = member(&t, "929292", "B").await;
    let mut a = t.ws(&a_token).await;
    a.request("conference.join", json!({})).await;
    let mut b = t.ws(&b_token).await;
    b.request("conference.join", json!({})).await;

    // Ended in the database only, as the CLI or another process does.
    assert!(
        t.state()
            .store
            .end_conference(&by_hand.conf_id, now)
            .await
            .expect("end")
    );
    let ended = b
        .event("conferenceStateChanged")
        .await
        .expect("B learns the end");
    assert_eq!(ended["state"], 31);
    assert!(b.notification("session.closed").await.is_some());

    // The timed one reaches its ends_at.
    let ended = a
        .event("conferenceStateChanged")
        .await
        .expect("A learns the end");
    assert_eq!(ended["state"], 31);
    assert!(
        confgate::store::now_ms() >= now + 1500,
        "not before ends_at"
    );
    let _ = timed;
    t.finish().await;
}
