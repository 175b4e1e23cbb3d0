//! The JSON-RPC API at /gzbwclient/jsonrpc: the seed's four examples, the
//! spec's envelope rules, tokens and grants, users, IQs and conferences.

mod common;

use common::{Backend, TestServer};
use confgate::store::now_ms;
use serde_json::{Value, json};

async fn seed_examples(backend: Backend) {
    let t = TestServer::start(backend).await;
    t.conference("seed", Some("123456")).await;
    let joined = t.join("123456", "张三").await;
    let token = joined["accessToken"].as_str().expect("token");
    let user_id = joined["userId"].as_str().expect("user id");

    // auth.http.login, as the seed sends it plus the credential issued at join.
    let login = t
        .rpc(
            None,
            "auth.http.login",
            json!({"clientId": user_id, "grantType": "client_credentials", "clientSecret": joined["clientSecret"]}),
        )
        .await;
    assert_eq!(login["jsonrpc"], "2.0");
    assert_eq!(login["id"], "t1");
    let r = &login["result"];
    assert_eq!(r["clientType"], "client_credentials");
    assert!(r["corpId"].is_null() && r.get("corpId").is_some());
    assert_eq!(r["name"], "张三");
    assert_eq!(r["userId"], user_id);
    assert!(r["deadline"].as_i64().expect("deadline") > now_ms());
    assert_eq!(
        r["accessToken"].as_str().expect("jwt").split('.').count(),
        3
    );
    assert!(r["refreshToken"].is_string());
    let header = r["accessToken"]
        .as_str()
        .expect("jwt")
        .split('.')
        .next()
        .expect("header")
        .to_string();
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
            .expect("b64"),
    )
    .expect("header json");
    assert_eq!(header["alg"], "HS256");

    // config.getProperties.
    let props = t
        .rpc(
            None,
            "config.getProperties",
            json!({"keys": ["serverName", "webrtcAddress", "bogus"]}),
        )
        .await;
    let r = props["result"].as_object().expect("object");
    assert_eq!(r["serverName"], "ips3000");
    assert!(r["webrtcAddress"].as_str().expect("pool").starts_with("ws"));
    assert!(!r.contains_key("bogus"), "unknown keys are left out");
    assert_eq!(r.len(), 2);

    // org.user.createUser, the seed's request.
    let created = t
        .rpc(
            Some(token),
            "org.user.createUser",
            json!({"name": "张三", "userId": "u110001", "password": "123456", "mobile": "13422821882", "email": "dyqx@126.com"}),
        )
        .await;
    let u = &created["result"];
    assert_eq!(u["userId"], "u110001");
    assert_eq!(u["name"], "张三");
    assert_eq!(u["mobile"], "13422821882");
    assert_eq!(u["email"], "dyqx@126.com");
    assert!(u["sipAccount"].as_str().expect("sip").starts_with('u'));
    assert_eq!(u["gender"], "0");
    assert_eq!(u["status"], "normal");
    assert_eq!(u["tenements"], json!([]));
    assert_eq!(
        u["properties"],
        json!({"custom.isClientLoginEnable": "true"})
    );
    assert!(u["deleteDate"].is_null() && u["avatar"].is_null());
    for key in ["creationDate", "modificationDate", "activeDate"] {
        assert!(
            u[key].as_i64().expect(key) > 1_500_000_000_000,
            "{key} in epoch ms"
        );
    }
    for key in [
        "isLoggedIn",
        "clientEnabled",
        "ipWhiteEnabled",
        "ipBlockEnabled",
        "loggedIn",
    ] {
        assert!(u[key].is_boolean(), "{key}");
    }
    assert!(
        u.get("clientSecret").is_none(),
        "a password was given: no secret issued"
    );
    // Only name is required.
    let minimal = t
        .rpc(Some(token), "org.user.createUser", json!({"name": "王五"}))
        .await;
    assert!(
        minimal["result"]["userId"]
            .as_str()
            .expect("generated")
            .starts_with('u')
    );
    assert!(minimal["result"]["clientSecret"].is_string());
    // The password given at createUser logs in.
    let with_password = t
        .rpc(
            None,
            "auth.http.login",
            json!({"clientId": "u110001", "grantType": "client_credentials", "password": "123456"}),
        )
        .await;
    assert_eq!(
        with_password["result"]["userId"], "u110001",
        "{with_password}"
    );
    let taken = t
        .rpc(
            Some(token),
            "org.user.createUser",
            json!({"name": "again", "userId": "u110001"}),
        )
        .await;
    assert_eq!(taken["error"]["code"], 409, "{taken}");

    // org.user.processIQ, the seed's request: not something the built-in
    // authority serves, so a proper IQ error inside {"xml": …}.
    let iq = t
        .rpc(
            Some(token),
            "org.user.processIQ",
            json!({"reqXml": "<iq from=\"u1074808@ips3000/uc\" to=\"jeprivacy.ips3000\" type=\"get\" id=\"01\"><jeExtension xmlns=\"je:x:client:config\"> <getMainTabs/></jeExtension></iq>"}),
        )
        .await;
    let xml = iq["result"]["xml"].as_str().expect("xml");
    let reply = confgate_signalling::iq::parse_iq(xml).expect("reply parses");
    assert_eq!(reply.iq_type, confgate_signalling::iq::IqType::Error);
    assert_eq!(reply.id.as_deref(), Some("01"));
    assert_eq!(reply.from.as_deref(), Some("jeprivacy.ips3000"));
    assert_eq!(reply.to.as_deref(), Some("u1074808@ips3000/uc"));
    assert!(xml.contains("service-unavailable"), "{xml}");
    t.finish().await;
}

async fn iq_ping_and_disco(backend: Backend) {
    let t = TestServer::start(backend).await;
    t.conference("iq", Some("765432")).await;
    let joined = t.join("765432", "iq").await;
    let token = joined["accessToken"].as_str();
    let ping = t
        .rpc(token, "org.user.processIQ", json!({"reqXml": "<iq type='get' id='p1' to='ips3000'><ping xmlns='urn:xmpp:ping'/></iq>"}))
        .await;
    let xml = ping["result"]["xml"].as_str().expect("xml");
    let reply = confgate_signalling::iq::parse_iq(xml).expect("parses");
    assert_eq!(reply.iq_type, confgate_signalling::iq::IqType::Result);
    assert_eq!(reply.id.as_deref(), Some("p1"));
    assert!(
        reply
            .to
            .as_deref()
            .is_some_and(|to| to.starts_with(joined["userId"].as_str().expect("id"))),
        "{xml}"
    );
    let disco = t
        .rpc(
            token,
            "org.user.processIQ",
            json!({"reqXml": "<iq type='get' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"}),
        )
        .await;
    let xml = disco["result"]["xml"].as_str().expect("xml");
    assert!(
        xml.contains("urn:xmpp:ping") && xml.contains("disco#info") && xml.contains("<identity"),
        "{xml}"
    );
    for bad in [
        "<iq type='get'><unclosed></iq>",
        "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>]><iq type='get'>&lol;</iq>",
        "<message/>",
        "",
        "<iq type='get' id='x'>&undefined;</iq>",
    ] {
        let res = t
            .rpc(token, "org.user.processIQ", json!({"reqXml": bad}))
            .await;
        assert_eq!(res["error"]["code"], -32602, "{bad}: {res}");
        assert!(
            res["error"]["message"]
                .as_str()
                .expect("message")
                .contains("reqXml"),
            "{res}"
        );
    }
    let huge = format!("<iq type='get' id='h'><x>{}</x></iq>", "a".repeat(20_000));
    let res = t
        .rpc(token, "org.user.processIQ", json!({"reqXml": huge}))
        .await;
    assert_eq!(res["error"]["code"], -32602);
    let anonymous = t
        .rpc(
            None,
            "org.user.processIQ",
            json!({"reqXml": "<iq type='get'/>"}),
        )
        .await;
    assert_eq!(anonymous["error"]["code"], 401);
    t.finish().await;
}

async fn grants_and_tokens(backend: Backend) {
    let t = TestServer::start(backend).await;
    t.conference("tokens", Some("808080")).await;
    let joined = t.join("808080", "Tok").await;
    let user_id = joined["userId"].as_str().expect("id");

    // A bare clientId is not a credential.
    let bare = t
        .rpc(
            None,
            "auth.http.login",
            json!({"clientId": user_id, "grantType": "client_credentials"}),
        )
        .await;
    assert_eq!(bare["error"]["code"], -32602, "{bare}");
    let wrong = t
        .rpc(
            None,
            "auth.http.login",
            json!({"clientId": user_id, "grantType": "client_credentials", "clientSecret": "nope"}),
        )
        .await;
    assert_eq!(wrong["error"]["code"], 401);
    let unknown = t
        .rpc(None, "auth.http.login", json!({"grantType": "password"}))
        .await;
    assert_eq!(unknown["error"]["code"], -32602);

    // refresh_token rotates: the new one works once, the old one never again.
    let first = joined["refreshToken"].clone();
    let rotated = t
        .rpc(
            None,
            "auth.http.login",
            json!({"grantType": "refresh_token", "refreshToken": first}),
        )
        .await;
    assert_eq!(
        rotated["result"]["clientType"], "refresh_token",
        "{rotated}"
    );
    assert_eq!(rotated["result"]["userId"], user_id);
    let second = rotated["result"]["refreshToken"].clone();
    assert_ne!(first, second);
    let replay = t
        .rpc(
            None,
            "auth.http.login",
            json!({"grantType": "refresh_token", "refreshToken": first}),
        )
        .await;
    assert_eq!(
        replay["error"]["code"], 401,
        "the old refresh token stops working"
    );
    let next = t
        .rpc(
            None,
            "auth.http.login",
            json!({"grantType": "refresh_token", "refreshToken": second}),
        )
        .await;
    assert!(next["result"]["accessToken"].is_string());

    // Tokens: missing, malformed, expired, from another secret.
    let missing = t
        .rpc(None, "org.user.getUsers", json!({"userIds": [user_id]}))
        .await;
    assert_eq!(missing["error"]["code"], 401);
    assert!(
        missing["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("missing")
    );
    let garbage = t
        .rpc(
            Some("not.a.jwt"),
            "org.user.getUsers",
            json!({"userIds": [user_id]}),
        )
        .await;
    assert_eq!(garbage["error"]["code"], 401);
    let state = t.state();
    let mut claims = state
        .keys
        .verify(joined["accessToken"].as_str().expect("jwt"), now_ms())
        .expect("valid");
    claims.deadline = now_ms() - 1;
    let expired = state.keys.sign(&claims);
    let res = t
        .rpc(
            Some(&expired),
            "org.user.getUsers",
            json!({"userIds": [user_id]}),
        )
        .await;
    assert_eq!(res["error"]["code"], 401);
    assert!(
        res["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("expired"),
        "{res}"
    );
    let forged =
        confgate::tokens::TokenKeys::new(b"another secret, 32 bytes long!!!").sign(&claims);
    let res = t
        .rpc(
            Some(&forged),
            "org.user.getUsers",
            json!({"userIds": [user_id]}),
        )
        .await;
    assert_eq!(res["error"]["code"], 401);

    // The token in the query string works too.
    let res = t
        .client
        .post(t.url(&format!("/gzbwclient/jsonrpc?accessToken={}", joined["accessToken"].as_str().expect("jwt"))))
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "org.user.getUsers", "params": {"userIds": [user_id, "nobody"]}}))
        .send()
        .await
        .expect("post");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["id"], 7);
    let cards = body["result"].as_array().expect("cards");
    assert_eq!(cards.len(), 1, "unknown ids are left out");
    assert_eq!(cards[0]["name"], "Tok");
    let avatar_url = cards[0]["avatarUrl"].as_str().expect("avatar");
    let svg = t
        .client
        .get(t.url(avatar_url))
        .send()
        .await
        .expect("avatar");
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.expect("svg").contains(">TO</text>"));
    t.finish().await;
}

async fn login_guessing_is_throttled(backend: Backend) {
    let t = TestServer::start_with(backend, |c| c.throttle.max_failures = 3).await;
    t.conference("tokens", Some("909090")).await;
    let joined = t.join("909090", "Tok").await;
    let user_id = joined["userId"].as_str().expect("id");
    for _ in 0..3 {
        let res = t
            .rpc(None, "auth.http.login", json!({"clientId": user_id, "grantType": "client_credentials", "clientSecret": "guess"}))
            .await;
        assert_eq!(res["error"]["code"], 401);
    }
    let res = t
        .rpc(None, "auth.http.login", json!({"clientId": user_id, "grantType": "client_credentials", "clientSecret": joined["clientSecret"]}))
        .await;
    assert_eq!(res["error"]["code"], 429, "{res}");
    assert!(res["error"]["data"]["retryAfter"].as_u64().expect("retry") > 0);
    t.finish().await;
}

async fn conferences_for_chairs(backend: Backend) {
    let t = TestServer::start(backend).await;
    let (chair_id, chair) = t.chair("Chair").await;
    let created = t
        .rpc(
            Some(&chair),
            "conference.create",
            json!({"name": "董事会 board", "password": "271828"}),
        )
        .await;
    let c = &created["result"];
    assert_eq!(c["confName"], "董事会 board", "{created}");
    assert_eq!(c["password"], "271828");
    assert_eq!(c["state"], 0);
    assert_eq!(c["chairUserId"], chair_id.as_str());
    let links = c["links"].as_array().expect("links");
    assert_eq!(links.len(), 2, "seed and opaque: {links:?}");
    assert!(
        links[0].as_str().expect("url").ends_with("MjcxODI4"),
        "seed format first by default"
    );
    let conf_id = c["confId"].as_str().expect("id").to_string();

    let clash = t
        .rpc(
            Some(&chair),
            "conference.create",
            json!({"name": "clash", "password": "271828"}),
        )
        .await;
    assert_eq!(
        clash["error"]["code"], 409,
        "a live conference's password is not reused"
    );
    let bad = t
        .rpc(
            Some(&chair),
            "conference.create",
            json!({"name": "bad", "password": "12ab"}),
        )
        .await;
    assert_eq!(bad["error"]["code"], -32602);
    let backwards = t
        .rpc(
            Some(&chair),
            "conference.create",
            json!({"name": "b", "startsAt": now_ms() + 10, "endsAt": now_ms()}),
        )
        .await;
    assert_eq!(backwards["error"]["code"], -32602);
    let later = t
        .rpc(
            Some(&chair),
            "conference.create",
            json!({"name": "later", "startsAt": now_ms() + 3_600_000}),
        )
        .await;
    assert_eq!(later["result"]["state"], 30);

    let got = t
        .rpc(Some(&chair), "conference.get", json!({"confId": conf_id}))
        .await;
    assert_eq!(got["result"]["confId"], conf_id.as_str());
    let list = t.rpc(Some(&chair), "conference.list", json!({})).await;
    assert_eq!(list["result"].as_array().expect("list").len(), 2);

    // Members may not manage conferences; other chairs may not touch this one.
    let member = t.join("271828", "member").await;
    let res = t
        .rpc(
            member["accessToken"].as_str(),
            "conference.create",
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(res["error"]["code"], 403);
    let (_, other) = t.chair("Other").await;
    let res = t
        .rpc(Some(&other), "conference.end", json!({"confId": conf_id}))
        .await;
    assert_eq!(res["error"]["code"], 403);
    let res = t
        .rpc(
            Some(&other),
            "conference.get",
            json!({"confId": "00000000"}),
        )
        .await;
    assert_eq!(res["error"]["code"], 404);

    let ended = t
        .rpc(Some(&chair), "conference.end", json!({"confId": conf_id}))
        .await;
    assert_eq!(ended["result"]["state"], 31);
    let res = t
        .client
        .get(t.url("/gzbwclient/conference/271828?format=json"))
        .send()
        .await
        .expect("get")
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(res["state"], 31);
    // Its password is free again.
    let reuse = t
        .rpc(
            Some(&chair),
            "conference.create",
            json!({"name": "reuse", "password": "271828"}),
        )
        .await;
    assert_eq!(reuse["result"]["state"], 0, "{reuse}");
    t.finish().await;
}

on_both_databases!(
    seed_examples,
    iq_ping_and_disco,
    grants_and_tokens,
    login_guessing_is_throttled,
    conferences_for_chairs
);

/// Envelope rules need no database variety: SQLite only.
#[tokio::test]
async fn malformed_requests_get_the_spec_errors() {
    let t = TestServer::start(Backend::Sqlite).await;
    // An invalid request echoes its id when the id itself is valid.
    let cases: &[(&str, Value)] = &[
        (
            r#"{"jsonrpc":"2.0","method":"config.getProperties","params":{"keys":[]"#,
            json!({"code": -32700, "id": null}),
        ),
        (
            r#"{"jsonrpc":"1.0","method":"config.getProperties","id":1}"#,
            json!({"code": -32600, "id": 1}),
        ),
        (
            r#"{"method":"config.getProperties","id":1}"#,
            json!({"code": -32600, "id": 1}),
        ),
        (
            r#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#,
            json!({"code": -32600, "id": null}),
        ),
        (r#"[]"#, json!({"code": -32600, "id": null})),
        (
            r#"{"jsonrpc":"2.0","method":"no.such","id":"abc"}"#,
            json!({"code": -32601, "id": "abc"}),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"config.getProperties","params":{"keys":5},"id":2.5}"#,
            json!({"code": -32602, "id": 2.5}),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"config.getProperties","params":[1],"id":null}"#,
            json!({"code": -32602, "id": null}),
        ),
        ("\u{0}\u{1}garbage", json!({"code": -32700, "id": null})),
    ];
    for (body, expected) in cases {
        let (status, text) = t.rpc_raw(body.to_string()).await;
        assert_eq!(status, 200, "{body}");
        let reply: Value = serde_json::from_str(&text).expect("json reply");
        assert_eq!(reply["jsonrpc"], "2.0");
        assert_eq!(reply["error"]["code"], expected["code"], "{body}: {reply}");
        assert_eq!(reply["id"], expected["id"], "{body}: {reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }

    // A batch of garbage: one error per element.
    let (status, text) = t.rpc_raw("[1,2,3]").await;
    assert_eq!(status, 200);
    let reply: Vec<Value> = serde_json::from_str(&text).expect("array");
    assert_eq!(reply.len(), 3);
    assert!(
        reply
            .iter()
            .all(|r| r["error"]["code"] == -32600 && r["id"].is_null())
    );

    // A mixed batch: answers for requests only, ids echoed as sent.
    let (status, text) = t
        .rpc_raw(
            r#"[{"jsonrpc":"2.0","method":"config.getProperties","params":{"keys":["serverName"]},"id":"1"},
                {"jsonrpc":"2.0","method":"config.getProperties","params":{"keys":["serverName"]}},
                {"foo":"boo"},
                {"jsonrpc":"2.0","method":"no.such","id":9},
                {"jsonrpc":"2.0","method":"config.getProperties","params":{"keys":["serverName"]},"id":-3}]"#,
        )
        .await;
    assert_eq!(status, 200);
    let reply: Vec<Value> = serde_json::from_str(&text).expect("array");
    assert_eq!(reply.len(), 4, "{reply:?}");
    assert_eq!(reply[0]["id"], "1");
    assert_eq!(reply[0]["result"]["serverName"], "ips3000");
    assert_eq!(reply[1]["error"]["code"], -32600);
    assert_eq!(reply[2]["id"], 9);
    assert_eq!(reply[3]["id"], -3);

    // Notifications get no reply, alone or in a batch.
    let (status, text) = t
        .rpc_raw(r#"{"jsonrpc":"2.0","method":"config.getProperties","params":{"keys":[]}}"#)
        .await;
    assert_eq!((status, text.as_str()), (204, ""));
    let (status, text) = t
        .rpc_raw(r#"[{"jsonrpc":"2.0","method":"no.such"},{"jsonrpc":"2.0","method":"x"}]"#)
        .await;
    assert_eq!((status, text.as_str()), (204, ""));

    // A 1 MB body is refused with a JSON-RPC error, not a 500.
    let (status, text) = t
        .rpc_raw(format!(
            r#"{{"jsonrpc":"2.0","method":"x","id":1,"params":["{}"]}}"#,
            "a".repeat(1 << 20)
        ))
        .await;
    assert_eq!(status, 413);
    let reply: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(reply["error"]["code"], -32600);

    // Deep nesting is a parse error, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, text) = t.rpc_raw(deep).await;
    assert_eq!(status, 200);
    let reply: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(reply["error"]["code"], -32700);

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
        metrics.contains("confgate_rpc_requests_total{method=\"config.getProperties\"} 6"),
        "{metrics}"
    );
    assert!(
        metrics.contains("confgate_rpc_errors_total{method=\"other\"} 4"),
        "{metrics}"
    );
    t.finish().await;
}
