//! Binding a conference to a SIP/MCU conference, through JSON-RPC and the
//! command line, stored on both databases.

mod common;

use common::{Backend, TestServer};
use serde_json::json;

async fn bind_through_the_api(backend: Backend) {
    let t = TestServer::start_with(backend, |c| {
        c.sip.username = Some("gateway".into());
        c.sip.password = Some("global-secret".into());
    })
    .await;
    let (_, chair) = t.chair("Chair").await;
    let created = t
        .rpc(
            Some(&chair),
            "conference.create",
            json!({"name": "bridged"}),
        )
        .await;
    let conf_id = created["result"]["confId"]
        .as_str()
        .expect("id")
        .to_string();
    assert!(
        created["result"].get("mcu").is_none(),
        "not bound yet: {created}"
    );

    let bound = t
        .rpc(
            Some(&chair),
            "conference.bindMcu",
            json!({"confId": conf_id, "uri": "sip:8001@mcu.example.com", "transport": "tcp",
                   "outboundProxy": "sip:proxy.example.com:5060", "codecs": ["vp8", "opus"]}),
        )
        .await;
    let mcu = &bound["result"]["mcu"];
    assert_eq!(mcu["uri"], "sip:8001@mcu.example.com", "{bound}");
    assert_eq!(mcu["transport"], "tcp");
    assert_eq!(mcu["outboundProxy"], "sip:proxy.example.com:5060");
    assert_eq!(mcu["codecs"], json!(["vp8", "opus"]));
    assert_eq!(mcu["username"], "gateway", "global credentials apply");
    assert_eq!(mcu["hasPassword"], true);
    assert!(
        !bound.to_string().contains("global-secret"),
        "passwords never leave the server"
    );

    // Per-conference credentials replace the global ones; rebinding replaces.
    let rebound = t
        .rpc(
            Some(&chair),
            "conference.bindMcu",
            json!({"confId": conf_id, "uri": "sip:8002@mcu.example.com", "username": "room", "password": "pw"}),
        )
        .await;
    let mcu = &rebound["result"]["mcu"];
    assert_eq!(
        (mcu["uri"].as_str(), mcu["username"].as_str()),
        (Some("sip:8002@mcu.example.com"), Some("room"))
    );
    assert_eq!(mcu["transport"], "udp", "the [sip] default");
    assert_eq!(
        mcu["codecs"],
        json!(["opus", "pcmu", "pcma", "vp8", "h264"])
    );
    let got = t
        .rpc(Some(&chair), "conference.get", json!({"confId": conf_id}))
        .await;
    assert_eq!(got["result"]["mcu"]["uri"], "sip:8002@mcu.example.com");

    for (params, needle) in [
        (json!({"confId": conf_id, "uri": "http://mcu"}), "SIP URI"),
        (
            json!({"confId": conf_id, "uri": "sip:8001@mcu", "transport": "sctp"}),
            "udp or tcp",
        ),
        (
            json!({"confId": conf_id, "uri": "sip:8001@mcu", "codecs": ["g729"]}),
            "g729",
        ),
        (
            json!({"confId": conf_id, "uri": "sip:8001@mcu", "password": "x"}),
            "username",
        ),
        (
            json!({"confId": conf_id, "uri": "sip:8001@mcu\r\nVia: evil"}),
            "SIP URI",
        ),
    ] {
        let res = t
            .rpc(Some(&chair), "conference.bindMcu", params.clone())
            .await;
        assert_eq!(res["error"]["code"], -32602, "{params}: {res}");
        assert!(
            res["error"]["message"]
                .as_str()
                .expect("msg")
                .contains(needle),
            "{params}: {res}"
        );
    }
    let (_, other) = t.chair("Other").await;
    let res = t
        .rpc(
            Some(&other),
            "conference.bindMcu",
            json!({"confId": conf_id, "uri": "sip:x@y"}),
        )
        .await;
    assert_eq!(res["error"]["code"], 403);

    let unbound = t
        .rpc(
            Some(&chair),
            "conference.unbindMcu",
            json!({"confId": conf_id}),
        )
        .await;
    assert!(unbound["result"].get("mcu").is_none(), "{unbound}");
    let again = t
        .rpc(
            Some(&chair),
            "conference.unbindMcu",
            json!({"confId": conf_id}),
        )
        .await;
    assert_eq!(again["error"]["code"], 404);
    t.finish().await;
}

on_both_databases!(bind_through_the_api);

#[test]
fn bind_from_the_command_line() {
    let bin = env!("CARGO_BIN_EXE_confgate");
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().to_str().expect("utf8");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(args)
            .args(["--data-dir", data])
            .output()
            .expect("run");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&["conference", "create", "--name", "bridged", "--json"]);
    assert!(ok, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).expect("json");
    let id = created["confId"].as_str().expect("id");
    let (ok, out, err) = run(&[
        "conference",
        "bind",
        id,
        "--mcu",
        "sip:8001@127.0.0.1:5070",
        "--transport",
        "tcp",
        "--codecs",
        "h264,opus",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("bound to sip:8001@127.0.0.1:5070 over tcp (codecs h264,opus)"),
        "{out}"
    );
    let (ok, out, _) = run(&["conference", "list", "--json"]);
    assert!(ok);
    let list: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(list[0]["mcu"]["transport"], "tcp");
    let (ok, _, err) = run(&["conference", "bind", id, "--mcu", "mcu.example.com"]);
    assert!(!ok);
    assert!(err.contains("SIP URI"), "{err}");
    let (ok, _, _) = run(&["conference", "unbind", id]);
    assert!(ok);
    let (ok, _, err) = run(&["conference", "unbind", id]);
    assert!(!ok);
    assert!(err.contains("not bound"), "{err}");
}
