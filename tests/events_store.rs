//! Stored conference events: a page that was away for longer than the room's
//! in-memory log still gets exactly the events it missed, from the store; a
//! conference's numbering goes on across a restart of the server; old events
//! are pruned. On SQLite and on MariaDB.

mod common;

use std::time::Duration;

use common::{Backend, TestServer};
use confgate::room::LOG_CAPACITY;
use serde_json::{Value, json};

async fn member(t: &TestServer, code: &str, name: &str) -> (String, String) {
    let j = t.join(code, name).await;
    (
        j["userId"].as_str().expect("id").to_string(),
        j["accessToken"].as_str().expect("token").to_string(),
    )
}

/// Waits until the store holds the conference's events up to `seq`.
async fn stored_up_to(t: &TestServer, conf_id: &str, seq: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let last = t
            .state()
            .store
            .last_event_seq(conf_id)
            .await
            .expect("store");
        if last >= seq {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store has events up to {last}, not {seq}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_page_away_longer_than_the_log_catches_up_from_the_store(backend: Backend) {
    let t = TestServer::start_with(backend, |c| c.websocket.requests_per_second = 100_000).await;
    let conf = t.conference("catch up", Some("404040")).await;
    let (a_id, a_token) = member(&t, "404040", "A").await;
    let (_, b_token) = member(&t, "404040", "B").await;
    let mut a = t.ws(&a_token).await;
    a.request("conference.join", json!({})).await;
    let mut b = t.ws(&b_token).await;
    b.request("conference.join", json!({})).await;
    let mut last_seq = 0;
    while let Some(n) = b.read_within(Duration::from_millis(300)).await {
        if let Some(seq) = n["params"]["seq"].as_u64() {
            last_seq = last_seq.max(seq);
        }
    }
    assert!(last_seq > 0, "B saw its own join");
    b.close().await;

    // More events than the room keeps in memory.
    let toggles = LOG_CAPACITY + 100;
    for i in 0..toggles {
        let res = a
            .request("conference.setAudio", json!({"muted": i % 2 == 0}))
            .await;
        assert_eq!(res["result"], json!({}), "{res}");
    }
    // B's own disconnection is among the missed events too.
    stored_up_to(&t, &conf.conf_id, last_seq + toggles as u64).await;
    let newest = t
        .state()
        .store
        .last_event_seq(&conf.conf_id)
        .await
        .expect("store");

    let mut b = t
        .ws_query(&format!("token={b_token}&lastSeq={last_seq}"))
        .await
        .expect("reconnect");
    let mut seqs = Vec::new();
    let mut from_a = 0;
    while let Some(n) = b.read_within(Duration::from_millis(800)).await {
        assert_ne!(
            n["method"], "conference.snapshot",
            "the missed events, not a snapshot"
        );
        if n["method"] == "conference.event" {
            let p: &Value = &n["params"];
            from_a += usize::from(p["userId"] == a_id.as_str());
            seqs.push(p["seq"].as_u64().expect("seq"));
        }
    }
    assert!(from_a >= toggles, "all of A's {toggles} changes: {from_a}");
    let newest = newest.max(seqs.last().copied().unwrap_or(0));
    let expected: Vec<u64> = (last_seq + 1..=newest).collect();
    assert_eq!(seqs.len(), expected.len(), "every missed event once");
    assert_eq!(seqs, expected, "in order, without gaps or doubles");
    t.finish().await;
}

async fn numbering_goes_on_across_a_restart(backend: Backend) {
    // The second server uses the first one's database, after the first one
    // stopped (keeping its data).
    let mut first = TestServer::start(backend).await;
    let url = first.state().config.database_url();
    let conf = first.conference("restart", Some("505050")).await;
    let (_, token) = member(&first, "505050", "A").await;
    let mut ws = first.ws(&token).await;
    ws.request("conference.join", json!({})).await;
    for muted in [true, false, true] {
        ws.request("conference.setAudio", json!({"muted": muted}))
            .await;
    }
    stored_up_to(&first, &conf.conf_id, 4).await;
    ws.close().await;
    first.server.take().expect("running").shutdown().await;
    let second = TestServer::start_with(backend, |c| c.database.url = Some(url)).await;
    let before = second
        .state()
        .store
        .last_event_seq(&conf.conf_id)
        .await
        .expect("store");
    assert!(before >= 4, "{before}");

    let (_, token) = member(&second, "505050", "B").await;
    let mut ws = second.ws(&token).await;
    let snapshot = ws
        .notification("conference.snapshot")
        .await
        .expect("snapshot");
    // The new room rebuilt the old one from the store and shows the member
    // whose page was on the old one as left.
    let resumed = snapshot["params"]["seq"].as_u64().expect("seq");
    // A's leave, and the main video that was A's camera.
    assert_eq!(
        resumed,
        before + 2,
        "a new room goes on from the stored events: {snapshot}"
    );
    assert_eq!(snapshot["params"]["members"], json!([]), "{snapshot}");
    stored_up_to(&second, &conf.conf_id, resumed).await;
    let left = second
        .state()
        .store
        .events_between(&conf.conf_id, before + 1, before + 1)
        .await
        .expect("store");
    assert!(
        matches!(
            &left[..],
            [e] if matches!(&e.kind, confgate_signalling::events::EventKind::MemberLeft { reason: confgate_signalling::events::LeaveReason::ConnectionLost, .. })
        ),
        "{left:?}"
    );
    ws.request("conference.join", json!({})).await;
    let joined = ws.event("memberJoined").await.expect("own join");
    assert_eq!(joined["seq"].as_u64(), Some(resumed + 1));
    stored_up_to(&second, &conf.conf_id, resumed + 1).await;
    ws.close().await;
    second.finish().await;
    first.finish().await;
}

async fn old_events_are_pruned(backend: Backend) {
    use confgate_signalling::events::{ConferenceEvent, EventKind};
    let t = TestServer::start(backend).await;
    let store = &t.state().store;
    let event = |seq: u64, at: i64| ConferenceEvent {
        event_id: format!("p:{seq}"),
        seq,
        conf_id: "p".into(),
        at,
        kind: EventKind::ConferenceStateChanged { state: 0 },
    };
    // Recent enough that the server's own sweeper (24 hours) leaves them.
    let now = confgate::store::now_ms();
    store
        .insert_events(&[event(1, now - 3_000), event(2, now - 2_000), event(3, now)])
        .await
        .expect("insert");
    assert!(
        matches!(
            store.insert_events(&[event(3, now)]).await,
            Err(confgate::store::StoreError::Conflict)
        ),
        "a number is stored once"
    );
    assert_eq!(store.prune_events(now - 1_000).await.expect("prune"), 2);
    let left = store.events_between("p", 1, 10).await.expect("read");
    assert_eq!(left, vec![event(3, now)]);
    t.finish().await;
}

on_both_databases!(
    a_page_away_longer_than_the_log_catches_up_from_the_store,
    numbering_goes_on_across_a_restart,
    old_events_are_pruned,
);
