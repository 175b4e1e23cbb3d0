//! What a subscribe connection sends besides the forwarded packets: a NACKed video packet is
//! sent again, and every forwarded stream gets sender reports that count it.

mod common;

use std::time::Duration;

use common::{Publisher, Subscriber, eventually, start_media};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nacked_packet_comes_again_and_sender_reports_count_the_stream() {
    let media = start_media().await;
    let mut a = Publisher::connect(&media, "room", "a").await;
    a.start_sending();
    let mut b = Subscriber::connect(&media, "room", "b").await;
    b.client.wait_connected(WAIT).await;
    let video = b.client.collect(RtpCodecKind::Video, 10, WAIT).await;
    assert_eq!(video.len(), 10, "B receives A's video");
    let lost = video[5].clone();
    let ssrc = lost.header.ssrc;

    // B reports packet 5 lost: it is sent again. (B's SRTP context drops it as a replay, as
    // it received it: the bytes sent again are checked in `direct`'s unit tests, which open
    // them with a fresh receiver's context.)
    // (B's own NACK generator asks for nothing on a loss-free loopback path.)
    let before = media.stats().packets_retransmitted;
    b.client.send_nack(ssrc, lost.header.sequence_number).await;
    assert!(
        eventually(Duration::from_secs(2), || media
            .stats()
            .packets_retransmitted
            > before)
        .await,
        "the NACKed packet was not sent again within 2 s"
    );
    let resent = media.stats().packets_retransmitted;
    assert_eq!(resent, before + 1, "one packet asked for, one sent again");

    // A NACK for a packet long gone, or for a stream B does not receive, sends nothing.
    b.client
        .send_nack(ssrc, lost.header.sequence_number.wrapping_sub(1000))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        media.stats().packets_retransmitted,
        resent,
        "nothing that old is kept"
    );

    // Sender reports arrive for the video stream (one a second), counting what was sent.
    assert!(
        eventually(Duration::from_secs(3), || {
            b.client
                .sender_reports
                .lock()
                .expect("reports")
                .iter()
                .any(|r| r.ssrc == ssrc)
        })
        .await,
        "no sender report for the video stream within 3 s"
    );
    let report = b
        .client
        .sender_reports
        .lock()
        .expect("reports")
        .iter()
        .rfind(|r| r.ssrc == ssrc)
        .cloned()
        .expect("a report");
    assert!(report.packet_count >= 10, "{report:?}");
    assert!(report.octet_count >= report.packet_count, "{report:?}");
    assert!(report.ntp_time > 0, "{report:?}");
}
