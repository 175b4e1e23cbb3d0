//! The SIP user agent shell against real sipp processes playing the MCU
//! (scenarios in tests/data/sip), and
//! against a tiny UDP peer that sends malformed SIP.
//!
//! Needs sipp (`apt-get install sip-tester`); the tests fail without it.
#![allow(clippy::unwrap_used)]

#[path = "common/sipp.rs"]
mod sipp;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use confgate::sip::{AgentConfig, CallError, CallEvent, CallRequest, SipAgent, Transport};
use confgate_signalling::sip::TimerConfig;
use sipp::{Sipp, scenario};

const OFFER: &str = "v=0\r\no=confgate 1 1 IN IP4 127.0.0.1\r\ns=confgate\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 111 0\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n\
m=video 30002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\na=sendrecv\r\n";

fn request(target: String, transport: Transport) -> CallRequest {
    CallRequest {
        target,
        transport,
        outbound_proxy: None,
        from_user: "web-1".into(),
        display_name: "Web Member".into(),
        credentials: None,
        sdp_offer: OFFER.into(),
        ring_timeout: Duration::from_secs(10),
        keepalive: None,
    }
}

async fn agent() -> SipAgent {
    SipAgent::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn answered_then_hangup(transport: Transport) {
    let sipp = Sipp::start(
        &scenario("uas_answer.xml"),
        transport == Transport::Tcp,
        &[],
    );
    let agent = agent().await;
    let call = agent
        .call(request(sipp.target(), transport))
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", sipp.errors()));
    assert!(
        call.answer_sdp.contains("m=audio 40000 RTP/AVP 111 0"),
        "{}",
        call.answer_sdp
    );
    assert!(call.answer_sdp.contains("a=rtpmap:96 VP8/90000"));
    call.hangup().await.unwrap();
    sipp.expect_success().await;
}

#[tokio::test]
async fn plain_answer_udp() {
    answered_then_hangup(Transport::Udp).await;
}

#[tokio::test]
async fn plain_answer_tcp() {
    answered_then_hangup(Transport::Tcp).await;
}

#[tokio::test]
async fn auth_challenge_then_answer() {
    let sipp = Sipp::start(
        &scenario("uas_auth.xml"),
        false,
        &["-key", "auth_user", "alice", "-key", "auth_pass", "secret"],
    );
    let agent = agent().await;
    let mut req = request(sipp.target(), Transport::Udp);
    req.credentials = Some(("alice".into(), "secret".into()));
    let call = agent
        .call(req)
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", sipp.errors()));
    assert!(call.answer_sdp.contains("m=audio 40000"));
    call.hangup().await.unwrap();
    sipp.expect_success().await;
}

#[tokio::test]
async fn auth_wrong_password_fails() {
    let sipp = Sipp::start(
        &scenario("uas_auth.xml"),
        false,
        &["-key", "auth_user", "alice", "-key", "auth_pass", "secret"],
    );
    let agent = agent().await;
    let mut req = request(sipp.target(), Transport::Udp);
    req.credentials = Some(("alice".into(), "not-the-password".into()));
    let err = agent.call(req).await.unwrap_err();
    assert_eq!(err, CallError::AuthFailed, "{}", sipp.errors());
    // The wrong-password branch is a failed call in sipp's eyes; only wait for it to end.
    drop(sipp);
}

#[tokio::test]
async fn busy() {
    let sipp = Sipp::start(&scenario("uas_busy.xml"), false, &[]);
    let agent = agent().await;
    let err = agent
        .call(request(sipp.target(), Transport::Udp))
        .await
        .unwrap_err();
    assert_eq!(err, CallError::Busy, "{}", sipp.errors());
    sipp.expect_success().await;
}

#[tokio::test]
async fn bye_from_the_mcu() {
    let sipp = Sipp::start(&scenario("uas_bye.xml"), false, &["-d", "500"]);
    let agent = agent().await;
    let mut call = agent
        .call(request(sipp.target(), Transport::Udp))
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", sipp.errors()));
    let event = tokio::time::timeout(Duration::from_secs(10), call.next_event())
        .await
        .expect("an event in time");
    assert!(matches!(event, Some(CallEvent::Bye)), "{event:?}");
    assert!(call.next_event().await.is_none(), "the call task has ended");
    sipp.expect_success().await;
}

#[tokio::test]
async fn reinvite_from_the_mcu() {
    let sipp = Sipp::start(&scenario("uas_reinvite.xml"), false, &[]);
    let agent = agent().await;
    let mut call = agent
        .call(request(sipp.target(), Transport::Udp))
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", sipp.errors()));
    let event = tokio::time::timeout(Duration::from_secs(10), call.next_event())
        .await
        .expect("an event in time");
    let Some(CallEvent::ReInvite { sdp, reply }) = event else {
        panic!("expected a re-INVITE, got {event:?}: {}", sipp.errors());
    };
    assert!(sdp.contains("a=sendonly"), "{sdp}");
    let held = OFFER.replace("a=sendrecv", "a=recvonly");
    reply.send(Ok(held)).unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), call.next_event())
        .await
        .expect("an event in time");
    assert!(
        matches!(event, Some(CallEvent::Bye)),
        "{event:?}: {}",
        sipp.errors()
    );
    sipp.expect_success().await;
}

#[tokio::test]
async fn no_answer_is_cancelled() {
    let sipp = Sipp::start(&scenario("uas_noanswer.xml"), false, &[]);
    let agent = agent().await;
    let mut req = request(sipp.target(), Transport::Udp);
    req.ring_timeout = Duration::from_millis(800);
    let started = Instant::now();
    let err = agent.call(req).await.unwrap_err();
    assert_eq!(err, CallError::NoAnswer, "{}", sipp.errors());
    assert!(started.elapsed() < Duration::from_secs(5));
    sipp.expect_success().await;
}

/// A peer that answers every INVITE with `reply(invite)`, over UDP.
async fn malformed_peer(reply: fn(&str) -> Vec<u8>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let _ = socket.send_to(&reply(&text), from).await;
        }
    });
    (addr, task)
}

/// The header lines of `request` a response copies.
fn copied(request: &str) -> String {
    request
        .split("\r\n")
        .filter(|l| {
            let name = l
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            ["via", "from", "to", "call-id", "cseq"].contains(&name.as_str())
        })
        .map(|l| format!("{l}\r\n"))
        .collect()
}

async fn expect_clean_failure(reply: fn(&str) -> Vec<u8>) {
    let (addr, peer) = malformed_peer(reply).await;
    let config = AgentConfig {
        timers: TimerConfig {
            t1: Duration::from_millis(40),
            ..TimerConfig::default()
        },
    };
    let agent = SipAgent::start_with("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        agent.call(request(format!("sip:room@{addr}"), Transport::Udp)),
    )
    .await
    .expect("the call fails within a bounded time");
    let err = result.unwrap_err();
    assert!(
        matches!(err, CallError::Timeout | CallError::BadResponse(_)),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    peer.abort();
}

#[tokio::test]
async fn garbage_from_the_peer() {
    expect_clean_failure(|_| b"\x00\xffgarbage\r\n\r\n not SIP at all".to_vec()).await;
}

#[tokio::test]
async fn truncated_response_from_the_peer() {
    expect_clean_failure(|invite| {
        let full = format!("SIP/2.0 200 OK\r\n{}", copied(invite));
        full.as_bytes()[..full.len() / 2].to_vec()
    })
    .await;
}

#[tokio::test]
async fn huge_headers_from_the_peer() {
    expect_clean_failure(|invite| {
        let head: String = copied(invite)
            .lines()
            .map(|l| {
                if l.starts_with("To:") {
                    format!("{l};tag=peer1\r\n")
                } else {
                    format!("{l}\r\n")
                }
            })
            .collect();
        // One header line of 20 KB, then 2000 headers.
        let long = format!("X-Long: {}\r\n", "a".repeat(20_000));
        let many = "X-Many: b\r\n".repeat(2000);
        format!("SIP/2.0 200 OK\r\n{head}{long}{many}Content-Length: 0\r\n\r\n").into_bytes()
    })
    .await;
}

#[tokio::test]
async fn wrong_content_length_from_the_peer() {
    expect_clean_failure(|invite| {
        let to = copied(invite);
        format!(
            "SIP/2.0 200 OK\r\n{to}Contact: <sip:mcu@127.0.0.1>\r\nContent-Type: application/sdp\r\nContent-Length: 500\r\n\r\nv=0\r\n"
        )
        .into_bytes()
    })
    .await;
}

#[tokio::test]
async fn sdp_less_2xx_is_a_bad_response() {
    let (addr, peer) = malformed_peer(|invite| {
        if invite.starts_with("INVITE") {
            let head = copied(invite)
                .lines()
                .map(|l| {
                    if l.starts_with("To:") {
                        format!("{l};tag=peer1\r\n")
                    } else {
                        format!("{l}\r\n")
                    }
                })
                .collect::<String>();
            format!(
                "SIP/2.0 200 OK\r\n{head}Contact: <sip:mcu@127.0.0.1>\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes()
        } else {
            Vec::new()
        }
    })
    .await;
    let agent = agent().await;
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        agent.call(request(format!("sip:room@{addr}"), Transport::Udp)),
    )
    .await
    .expect("bounded")
    .unwrap_err();
    assert!(matches!(err, CallError::BadResponse(_)), "{err:?}");
    peer.abort();
}

const H264_OFFER: &str = "v=0\r\no=confgate 1 2 IN IP4 127.0.0.1\r\ns=confgate\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n\
m=video 30002 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\na=fmtp:97 packetization-mode=1\r\na=sendrecv\r\n";

#[tokio::test]
async fn reinvite_to_the_mcu_changes_the_codec() {
    let sipp = Sipp::start(
        &scenario("uas_reinvite_in.xml"),
        false,
        &["-trace_msg", "-message_file", "messages.log"],
    );
    let agent = agent().await;
    let call = agent
        .call(request(sipp.target(), Transport::Udp))
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", sipp.errors()));
    assert!(call.answer_sdp.contains("VP8/90000"));
    let answer = call
        .reinvite(H264_OFFER.into())
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", sipp.errors()));
    assert!(
        answer.contains("a=rtpmap:97 H264/90000"),
        "the MCU's answer to the new offer: {answer}"
    );
    let messages = sipp.read("messages.log");
    call.hangup().await.unwrap();
    sipp.expect_success().await;
    let invites = messages.matches("INVITE sip:").count();
    assert_eq!(invites, 2, "the INVITE and our re-INVITE: {messages}");
    assert!(messages.contains("CSeq: 2 INVITE"), "{messages}");
}

#[tokio::test]
async fn keepalive_options_flow_while_the_call_is_up() {
    let sipp = Sipp::start(
        &scenario("uas_answer.xml"),
        false,
        &["-aa", "-trace_msg", "-message_file", "messages.log"],
    );
    let agent = agent().await;
    let mut req = request(sipp.target(), Transport::Udp);
    req.keepalive = Some(Duration::from_millis(300));
    let call = agent
        .call(req)
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", sipp.errors()));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let messages = sipp.read("messages.log");
    call.hangup().await.unwrap();
    sipp.expect_success().await;
    let options = messages.matches("OPTIONS sip:").count();
    assert!(options >= 2, "{options} keep-alives in 1.2 s: {messages}");
}

#[tokio::test]
async fn a_keepalive_answered_481_ends_the_call() {
    // A peer that answers the INVITE, then 481 to anything in the dialog.
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let reply = if text.starts_with("INVITE ") {
                let head: String = copied(&text)
                    .lines()
                    .map(|l| {
                        if l.starts_with("To:") {
                            format!("{l};tag=peer1\r\n")
                        } else {
                            format!("{l}\r\n")
                        }
                    })
                    .collect();
                format!(
                    "SIP/2.0 200 OK\r\n{head}Contact: <sip:mcu@{addr}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{OFFER}",
                    OFFER.len()
                )
            } else if text.starts_with("OPTIONS ") {
                format!(
                    "SIP/2.0 481 Call/Transaction Does Not Exist\r\n{}Content-Length: 0\r\n\r\n",
                    copied(&text)
                )
            } else {
                continue;
            };
            let reply = reply.into_bytes();
            let _ = socket.send_to(&reply, from).await;
        }
    });
    let agent = agent().await;
    let mut req = request(format!("sip:room@{addr}"), Transport::Udp);
    req.keepalive = Some(Duration::from_millis(200));
    let mut call = agent.call(req).await.expect("answered");
    let event = tokio::time::timeout(Duration::from_secs(5), call.next_event())
        .await
        .expect("an event in time");
    match event {
        Some(CallEvent::Failed(why)) => assert!(why.contains("481"), "{why}"),
        other => panic!("expected the call to fail, got {other:?}"),
    }
    peer.abort();
}
