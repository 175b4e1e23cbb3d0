//! Join links: lookup states, joins, throttling of guesses, and the sweeper
//! that removes temporary accounts after their conference.

mod common;

use common::{Backend, TestServer};
use confgate::store::now_ms;
use confgate_signalling::join_link::{self, Password};
use serde_json::{Value, json};

fn seed_code(password: &str) -> String {
    join_link::encode_seed(&Password::parse(password).expect("pw"), *b"Zq7r").expect("seed")
}

async fn lookup(t: &TestServer, code: &str) -> Value {
    let res = t
        .client
        .get(t.url(&format!("/gzbwclient/conference/{code}")))
        .header("accept", "application/json")
        .send()
        .await
        .expect("lookup");
    assert_eq!(res.status(), 200);
    res.json().await.expect("json")
}

async fn user_count(t: &TestServer) -> i64 {
    t.state().store.count_users().await.expect("count")
}

async fn lookup_states(backend: Backend) {
    let t = TestServer::start(backend).await;
    let now = now_ms();
    let live = t.conference("周会 weekly", Some("123456")).await;
    t.conference_at("later", Some("222222"), Some(now + 3_600_000), None)
        .await;
    t.conference_at(
        "over",
        Some("333333"),
        Some(now - 7_200_000),
        Some(now - 3_600_000),
    )
    .await;
    let ended = t.conference("ended by hand", Some("444444")).await;
    assert!(
        t.state()
            .authority
            .end_conference(ended.conf_id.clone(), now)
            .await
            .expect("end")
    );

    // The seed's format, standard and URL-safe, padded and not.
    let live_json = lookup(&t, &seed_code("123456")).await;
    assert_eq!(
        live_json,
        json!({"confId": live.conf_id, "confName": "周会 weekly", "state": 0, "code": 200})
    );
    assert_eq!(lookup(&t, "xxxxMTIzNDU2").await["state"], 0);
    assert_eq!(
        lookup(&t, "123456").await["state"],
        0,
        "the bare password is the real join address"
    );
    assert_eq!(lookup(&t, &seed_code("222222")).await["state"], 30);
    assert_eq!(lookup(&t, &seed_code("333333")).await["state"], 31);
    assert_eq!(lookup(&t, &seed_code("444444")).await["state"], 31);
    assert_eq!(
        lookup(&t, &seed_code("999999")).await,
        json!({"state": 32, "code": 200})
    );
    assert_eq!(lookup(&t, "not-a-code!").await["state"], 32);

    // ?format=json works without an Accept header; a browser gets the page.
    let res = t
        .client
        .get(t.url(&format!(
            "/gzbwclient/conference/{}?format=json",
            seed_code("123456")
        )))
        .send()
        .await
        .expect("get");
    assert_eq!(res.json::<Value>().await.expect("json")["state"], 0);
    let res = t
        .client
        .get(t.url(&format!("/gzbwclient/conference/{}", seed_code("123456"))))
        .header("accept", "text/html,application/xhtml+xml,*/*")
        .send()
        .await
        .expect("page");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    let page = res.text().await.expect("text");
    assert!(
        page.contains("加入会议") && page.contains("Join conference"),
        "bilingual page"
    );
    t.finish().await;
}

async fn opaque_links(backend: Backend) {
    let t = TestServer::start(backend).await;
    let conf = t.conference("opaque", Some("555555")).await;
    let links = t
        .state()
        .store
        .usable_join_links(&conf.conf_id, now_ms())
        .await
        .expect("links");
    assert_eq!(links.len(), 1, "a new conference has one opaque link");
    let code = links[0].code.clone();
    assert_eq!(code.len(), 27);
    assert!(
        !code.contains("555555") && !code.contains("NTU1NTU1"),
        "reveals nothing"
    );
    assert_eq!(lookup(&t, &code).await["confId"], conf.conf_id.as_str());
    let joined = t.join(&code, "Opaque user").await;
    assert_eq!(joined["state"], 0);
    assert!(joined["accessToken"].is_string());

    assert!(
        t.state()
            .store
            .revoke_join_link(&code, now_ms())
            .await
            .expect("revoke")
    );
    assert_eq!(
        lookup(&t, &code).await["state"],
        32,
        "a revoked link names nothing"
    );
    // The seed link still works after the opaque one is revoked.
    assert_eq!(lookup(&t, &seed_code("555555")).await["state"], 0);
    t.finish().await;
}

async fn expiring_opaque_links(backend: Backend) {
    let t = TestServer::start_with(backend, |c| c.links.opaque_ttl_secs = 60).await;
    let conf = t.conference("expiring", None).await;
    let link = &t
        .state()
        .store
        .usable_join_links(&conf.conf_id, now_ms())
        .await
        .expect("links")[0];
    let expires = link.expires_at.expect("expiry set");
    assert!(
        (expires - link.created_at - 60_000).abs() < 5,
        "expires after the configured ttl"
    );
    assert!(link.usable(expires - 1));
    assert!(!link.usable(expires));
    assert!(
        t.state()
            .store
            .usable_join_links(&conf.conf_id, expires)
            .await
            .expect("links")
            .is_empty()
    );
    t.finish().await;
}

async fn join_creates_an_account_only_when_live(backend: Backend) {
    let t = TestServer::start(backend).await;
    let now = now_ms();
    let conf = t.conference("live", Some("246810")).await;
    t.conference_at("later", Some("135791"), Some(now + 3_600_000), None)
        .await;
    let before = user_count(&t).await;

    let answer = t.join(&seed_code("246810"), "  李四  ").await;
    for key in [
        "confId",
        "confName",
        "state",
        "code",
        "userId",
        "name",
        "accessToken",
        "deadline",
        "refreshToken",
        "webrtcAddress",
    ] {
        assert!(
            answer.get(key).is_some(),
            "join answer lacks {key}: {answer}"
        );
    }
    assert_eq!(answer["confId"], conf.conf_id.as_str());
    assert_eq!(answer["name"], "李四", "the name is trimmed");
    assert!(answer["deadline"].as_i64().expect("deadline") > now);
    assert!(
        answer["webrtcAddress"]
            .as_str()
            .expect("addr")
            .starts_with("ws")
    );
    assert_eq!(user_count(&t).await, before + 1);
    // The seed's real join address: the bare password.
    let again = t.join("246810", "Wang").await;
    assert_ne!(again["userId"], answer["userId"]);

    // Not started, ended, unknown: only the state, and no account.
    let count = user_count(&t).await;
    let later = t.join(&seed_code("135791"), "x").await;
    assert_eq!(later["state"], 30);
    assert!(
        later.get("accessToken").is_none() && later.get("userId").is_none(),
        "{later}"
    );
    assert!(
        t.state()
            .authority
            .end_conference(conf.conf_id.clone(), now_ms())
            .await
            .expect("end")
    );
    let ended = t.join(&seed_code("246810"), "x").await;
    assert_eq!(ended["state"], 31);
    assert!(ended.get("accessToken").is_none());
    assert_eq!(
        t.join(&seed_code("975310"), "x").await,
        json!({"state": 32, "code": 200})
    );
    assert_eq!(
        user_count(&t).await,
        count,
        "no account for a join that is not live"
    );
    t.finish().await;
}

async fn join_rejects_bad_bodies(backend: Backend) {
    let t = TestServer::start(backend).await;
    t.conference("bodies", Some("864200")).await;
    let before = user_count(&t).await;
    let long = "名".repeat(65);
    for body in [
        "".to_string(),
        "{".to_string(),
        "[]".to_string(),
        r#"{"nom":"x"}"#.to_string(),
        r#"{"name":"   "}"#.to_string(),
        r#"{"name":"a\u0000b"}"#.to_string(),
        format!(r#"{{"name":"{long}"}}"#),
    ] {
        let res = t
            .client
            .post(t.url("/gzbwclient/conference/864200"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("post");
        assert_eq!(res.status(), 400, "body {body:?}");
        let answer: Value = res.json().await.expect("json error");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
    }
    // The server answers 413 after the first 64 KiB and closes the connection; the client may
    // still be writing the rest and see a broken pipe instead of the answer. Such a try says
    // nothing either way: try again until the answer is read (it must then be 413).
    let huge = format!(r#"{{"name":"{}"}}"#, "x".repeat(1 << 20));
    let mut status = None;
    for _ in 0..10 {
        match t
            .client
            .post(t.url("/gzbwclient/conference/864200"))
            .body(huge.clone())
            .send()
            .await
        {
            Ok(res) => {
                status = Some(res.status());
                break;
            }
            Err(e) => assert!(e.is_request(), "only the upload may fail: {e}"),
        }
    }
    assert_eq!(status.map(|s| s.as_u16()), Some(413));
    assert_eq!(user_count(&t).await, before);
    t.finish().await;
}

async fn guessing_is_throttled(backend: Backend) {
    let t = TestServer::start(backend).await;
    t.conference("target", Some("424242")).await;
    // A brute force over 6-digit passwords, through the real join address.
    let mut refused = 0;
    let mut wrong = 0;
    for guess in 0..30u32 {
        let res = t
            .client
            .post(t.url(&format!("/gzbwclient/conference/{guess:06}")))
            .json(&json!({"name": "guesser"}))
            .send()
            .await
            .expect("post");
        match res.status().as_u16() {
            200 => {
                assert_eq!(res.json::<Value>().await.expect("json")["state"], 32);
                wrong += 1;
            }
            429 => {
                let retry: u64 = res.headers()["retry-after"]
                    .to_str()
                    .expect("ascii")
                    .parse()
                    .expect("secs");
                assert!((3000..=3600).contains(&retry), "Retry-After {retry}");
                refused += 1;
            }
            other => panic!("status {other}"),
        }
    }
    assert_eq!(
        (wrong, refused),
        (10, 20),
        "the eleventh wrong password gets 429"
    );
    // Even the right password is refused now, through every form of code.
    let res = t
        .client
        .post(t.url("/gzbwclient/conference/424242"))
        .json(&json!({"name": "g"}))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 429);
    let res = t
        .client
        .get(t.url(&format!("/gzbwclient/conference/{}", seed_code("424242"))))
        .header("accept", "application/json")
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 429);
    let metrics = t
        .client
        .get(t.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("confgate_link_failures_total 10"),
        "{metrics}"
    );
    assert!(metrics.contains("confgate_throttled_total 22"), "{metrics}");
    t.finish().await;
}

async fn sweeper_removes_temporary_accounts(backend: Backend) {
    let t = TestServer::start(backend).await;
    let a = t.conference("a", Some("111222")).await;
    let b = t.conference("b", Some("333444")).await;
    let joined_a = t.join("111222", "in a").await;
    let joined_b = t.join("333444", "in b").await;
    let (_chair, chair_token) = t.chair("chair").await;
    let now = now_ms();
    assert_eq!(
        t.state().authority.sweep(now).await.expect("sweep"),
        0,
        "nothing ended yet"
    );

    assert!(
        t.state()
            .authority
            .end_conference(a.conf_id.clone(), now)
            .await
            .expect("end")
    );
    assert_eq!(t.state().authority.sweep(now_ms()).await.expect("sweep"), 1);
    let store = &t.state().store;
    assert!(
        store
            .user(joined_a["userId"].as_str().expect("id"))
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .user(joined_b["userId"].as_str().expect("id"))
            .await
            .expect("get")
            .is_some()
    );
    // The removed account's tokens stop working; the others' keep working.
    let gone = t
        .rpc(
            joined_a["accessToken"].as_str(),
            "org.user.getUsers",
            json!({"userIds": []}),
        )
        .await;
    assert_eq!(gone["error"]["code"], 401, "{gone}");
    let refresh = t
        .rpc(
            None,
            "auth.http.login",
            json!({"grantType": "refresh_token", "refreshToken": joined_a["refreshToken"]}),
        )
        .await;
    assert_eq!(refresh["error"]["code"], 401, "{refresh}");
    let alive = t
        .rpc(
            joined_b["accessToken"].as_str(),
            "org.user.getUsers",
            json!({"userIds": []}),
        )
        .await;
    assert!(alive["result"].is_array(), "{alive}");
    let chair_ok = t
        .rpc(Some(&chair_token), "conference.list", json!({}))
        .await;
    assert!(
        chair_ok["result"].is_array(),
        "permanent accounts stay: {chair_ok}"
    );
    let _ = b;
    t.finish().await;
}

on_both_databases!(
    lookup_states,
    opaque_links,
    expiring_opaque_links,
    join_creates_an_account_only_when_live,
    join_rejects_bad_bodies,
    guessing_is_throttled,
    sweeper_removes_temporary_accounts,
);
