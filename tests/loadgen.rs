//! The load generator measures what it claims. Against a real confgate, one synthetic member
//! publishes and two watch. Each viewer receives the publisher's audio and video at the rate
//! sent, nothing is lost, every packet's added latency is measured, and the join time is
//! counted. Both SRTP profiles it pins are accepted.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Backend, TestServer};
use confgate_loadgen::confgate::{JoinOptions, join};
use confgate_loadgen::metrics::{Metrics, Snapshot};
use confgate_loadgen::payload;
use confgate_loadgen::peer::{MediaShape, Sink, Srtp};
use confgate_signalling::join_link::{self, Password};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_members_publish_and_watch_through_confgate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let t = TestServer::start(Backend::Sqlite).await;
    let http = reqwest::Client::new();
    for (srtp, password) in [(Srtp::AesCm, "515151"), (Srtp::AesGcm, "525252")] {
        t.conference("load", Some(password)).await;
        let code = join_link::encode_seed(&Password::parse(password).expect("password"), *b"Lg7x")
            .expect("seed");
        let link = t.url(&format!("/gzbwclient/conference/{code}"));
        let metrics = Arc::new(Metrics::new(3));
        let options = JoinOptions {
            bind_ip: std::net::Ipv4Addr::LOCALHOST.into(),
            srtp,
            shape: MediaShape {
                fps: 30,
                video_kbps: 600,
                packet_bytes: 1200,
                keyframe_secs: 1,
                audio_bytes: 80,
            },
        };
        let mut members = Vec::new();
        for i in 0..3 {
            let sink = Sink {
                metrics: Arc::clone(&metrics),
                member: i,
                join_started_us: payload::now_us(),
            };
            let member = join(&http, &link, &format!("m{i}"), i == 0, &options, sink)
                .await
                .unwrap_or_else(|e| panic!("member {i} joins with {srtp:?}: {e:#}"));
            members.push(member);
        }
        // Until both viewers receive, then two seconds counted.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while metrics.join_times().len() < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{srtp:?}: the viewers received nothing"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = metrics.snapshot();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let d: Snapshot = metrics.snapshot().since(&before);
        // The publisher sends 50 audio packets and 30 frames (about 2.1 packets each at
        // 600 kbit/s, three times that for a keyframe each second) a second.
        assert!(d.sent_packets > 200, "{srtp:?}: sent {}", d.sent_packets);
        for viewer in 1..3 {
            let got = d.member_packets[viewer];
            assert!(
                got * 10 >= d.sent_packets * 9,
                "{srtp:?}: viewer {viewer} got {got} of {} packets",
                d.sent_packets
            );
        }
        assert_eq!(d.member_packets[0], 0, "the publisher watches nobody");
        assert!(d.loss() < 0.005, "{srtp:?}: loss {}", d.loss());
        let p99 = d.latency_quantile(0.99).expect("latencies measured");
        assert!(p99 < 1_000_000, "{srtp:?}: p99 {p99} µs");
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
