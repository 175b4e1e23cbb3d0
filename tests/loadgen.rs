//! The load generator measures what it claims. Against a real confgate:
//! - one synthetic member publishes and two watch. Each viewer receives the publisher's audio
//!   and video at the rate sent, nothing is lost end to end (by the stamps' counters) nor by
//!   the forwarded sequence numbers, every packet's added latency is measured, and the join
//!   time is counted. Both SRTP profiles it pins are accepted, on the lean receive path (rtc's
//!   sans-I/O connection, kernel arrival times) and on webrtc-rs's async one;
//! - S3, the MCU direction: a conference bound to the generator's own MCU (its SIP UAS), two
//!   members who do not publish; confgate calls the MCU once per member, and each member
//!   receives its call's plain RTP over WebRTC (the lean receive path), nothing lost end to end
//!   once it started.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::{Backend, TestServer, mcu_binding};
use confgate_loadgen::confgate::{JoinOptions, Member, join};
use confgate_loadgen::mcu::Mcu;
use confgate_loadgen::metrics::{Metrics, Snapshot};
use confgate_loadgen::payload;
use confgate_loadgen::peer::{MediaShape, Sink, Srtp};
use confgate_loadgen::rx::RxPath;
use confgate_signalling::join_link::{self, Password};

const SHAPE: MediaShape = MediaShape {
    fps: 30,
    video_kbps: 600,
    packet_bytes: 1200,
    keyframe_secs: 1,
    audio_bytes: 80,
    pace: 2.5,
};

fn link(t: &TestServer, password: &str) -> String {
    let code = join_link::encode_seed(&Password::parse(password).expect("password"), *b"Lg7x")
        .expect("seed");
    t.url(&format!("/gzbwclient/conference/{code}"))
}

/// Joins `n` members through `link`, one after another; the first publishes if `publisher`.
async fn join_members(
    link: &str,
    n: usize,
    publisher: bool,
    options: &JoinOptions,
    metrics: &Arc<Metrics>,
    what: &str,
) -> Vec<Member> {
    let http = reqwest::Client::new();
    let mut members = Vec::new();
    for i in 0..n {
        let sink = Sink {
            metrics: Arc::clone(metrics),
            member: i,
            join_started_us: payload::now_us(),
        };
        let publishes = publisher && i == 0;
        let member = join(&http, link, &format!("m{i}"), publishes, options, sink)
            .await
            .unwrap_or_else(|e| panic!("{what}: member {i} joins: {e:#}"));
        members.push(member);
    }
    members
}

/// Waits until `members` members received something (at most 15 s), then half a second.
async fn until_receiving(metrics: &Metrics, members: usize, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while metrics.join_times().len() < members {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {} of {members} members received something",
            metrics.join_times().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_members_publish_and_watch_through_confgate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let t = TestServer::start(Backend::Sqlite).await;
    for (srtp, rx, password) in [
        (Srtp::AesCm, RxPath::Lean, "515151"),
        (Srtp::AesGcm, RxPath::Lean, "525252"),
        (Srtp::AesGcm, RxPath::Webrtc, "545454"),
    ] {
        t.conference("load", Some(password)).await;
        let link = link(&t, password);
        let metrics = Arc::new(Metrics::new(3));
        let options = JoinOptions {
            bind_ip: std::net::Ipv4Addr::LOCALHOST.into(),
            srtp,
            shape: SHAPE,
            rx,
            tx: rx,
        };
        let what = format!("{srtp:?}/{rx:?}");
        let members = join_members(&link, 3, true, &options, &metrics, &what).await;
        // Until both viewers receive, then two seconds counted.
        until_receiving(&metrics, 2, &what).await;
        let before = metrics.snapshot();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let d: Snapshot = metrics.snapshot().since(&before);
        // The publisher sends 50 audio packets and 30 frames (about 2.1 packets each at
        // 600 kbit/s, three times that for a keyframe each second) a second.
        assert!(
            d.sent_packets > 200,
            "{srtp:?}/{rx:?}: sent {}",
            d.sent_packets
        );
        for viewer in 1..3 {
            let got = d.member_packets[viewer];
            assert!(
                got * 10 >= d.sent_packets * 9,
                "{srtp:?}/{rx:?}: viewer {viewer} got {got} of {} packets",
                d.sent_packets
            );
            // End to end, each viewer expected what was sent in the window (give or take
            // the packets in flight at its edges).
            let expected = d.member_expected[viewer];
            assert!(
                expected.abs_diff(d.sent_packets) * 20 <= d.sent_packets,
                "{srtp:?}/{rx:?}: viewer {viewer} expected {expected} of {} packets sent",
                d.sent_packets
            );
        }
        assert_eq!(d.member_packets[0], 0, "the publisher watches nobody");
        assert!(d.loss() < 0.005, "{srtp:?}/{rx:?}: loss {}", d.loss());
        assert!(
            d.worst_member_loss() < 0.01,
            "{srtp:?}/{rx:?}: worst member's loss {}",
            d.worst_member_loss()
        );
        assert!(
            d.seq_loss() < 0.005,
            "{srtp:?}/{rx:?}: seq loss {}",
            d.seq_loss()
        );
        let p99 = d.latency_quantile(0.99).expect("latencies measured");
        assert!(p99 < 1_000_000, "{srtp:?}/{rx:?}: p99 {p99} µs");
        assert!(
            metrics
                .join_times()
                .iter()
                .all(|us| *us > 0 && *us < 15_000_000)
        );
        drop(members);
    }
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_members_receive_the_mcus_plain_rtp_through_confgate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let t = TestServer::start_with(Backend::Sqlite, |c| {
        c.sip.listen = "127.0.0.1:0".parse().expect("addr");
        c.sip.publish_wait_ms = 0;
        // Members that go away without a word leave soon (their calls then hang up).
        c.websocket.grace_ms = 500;
    })
    .await;
    let password = "535353";
    let conf = t.conference("mcu load", Some(password)).await;
    let metrics = Arc::new(Metrics::new(2));
    let mcu = Mcu::start(
        "127.0.0.1:0".parse().expect("addr"),
        SHAPE,
        Arc::clone(&metrics),
        0,
    )
    .await
    .expect("the MCU listens");
    t.bind_mcu(&mcu_binding(
        &conf.conf_id,
        format!("sip:room@{}", mcu.local_addr()),
        "opus,vp8",
    ))
    .await;
    let options = JoinOptions {
        bind_ip: std::net::Ipv4Addr::LOCALHOST.into(),
        srtp: Srtp::AesGcm,
        shape: SHAPE,
        rx: RxPath::Lean,
        tx: RxPath::Lean,
    };
    let link = link(&t, password);
    let members = join_members(&link, 2, false, &options, &metrics, "S3").await;
    until_receiving(&metrics, 2, "S3").await;
    assert_eq!(
        mcu.counters.answered.load(Relaxed),
        2,
        "one call per member"
    );
    assert_eq!(mcu.counters.acked.load(Relaxed), 2);
    let before = metrics.snapshot();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let d: Snapshot = metrics.snapshot().since(&before);
    // Two calls, each 50 audio packets and about 30 × 2.3 video packets a second.
    assert!(d.sent_packets > 400, "the MCU sent {}", d.sent_packets);
    for member in 0..2 {
        let got = d.member_packets[member];
        assert!(
            got * 20 >= d.sent_packets * 9,
            "member {member} got {got} of the {} packets of two calls",
            d.sent_packets
        );
    }
    // End to end, the members expected (by the MCU's counters) about what they received.
    assert!(
        d.expected * 10 >= d.received * 9,
        "expected {} for {} received",
        d.expected,
        d.received
    );
    assert!(d.loss() < 0.005, "loss {}", d.loss());
    assert!(d.seq_loss() < 0.005, "seq loss {}", d.seq_loss());
    assert!(d.latency_quantile(0.99).expect("latencies") < 1_000_000);
    drop(members);
    // Leaving (once the grace period is over) hangs the calls up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while mcu.counters.ended.load(Relaxed) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of 2 calls hung up",
            mcu.counters.ended.load(Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t.finish().await;
}
