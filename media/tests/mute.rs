//! Forwarding switched off at the server stops a member's audio or video at the others, and
//! switching it on restores it (video with a keyframe request).

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{KEYFRAME_EVERY, Publisher, Subscriber, eventually, payload_counter, start_media};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

const WAIT: Duration = Duration::from_secs(10);
/// Packets already on their way when forwarding changes: loopback delivers in well under the
/// 20 ms between two audio packets, so a couple of packets of slack is plenty.
const IN_FLIGHT: u32 = 3;

fn counter(p: &rtc::rtp::Packet) -> u32 {
    payload_counter(&p.payload, "AUDIO", "a")
        .or_else(|| payload_counter(&p.payload, "VIDEO", "a"))
        .expect("one of A's payloads")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muting_stops_one_kind_and_resuming_restores_it() {
    let media = start_media().await;
    let mut a = Publisher::connect(&media, "room", "a").await;
    a.start_sending();
    a.client.wait_connected(WAIT).await;
    let mut b = Subscriber::connect(&media, "room", "b").await;
    let audio = b.client.collect(RtpCodecKind::Audio, 10, WAIT).await;
    assert_eq!(audio.len(), 10, "B receives A's audio");
    assert_eq!(
        b.client.collect(RtpCodecKind::Video, 5, WAIT).await.len(),
        5
    );

    // Audio off, video on.
    media
        .set_forwarding("a".to_owned(), false, true)
        .await
        .expect("forwarding set");
    let muted_at = a.sent_audio.load(Ordering::SeqCst) as u32;
    let withheld_before = media.stats().packets_withheld;
    // Video keeps flowing for a second; meanwhile no audio sent after the mute arrives.
    let video = b.client.collect(RtpCodecKind::Video, 30, WAIT).await;
    assert_eq!(video.len(), 30, "video continues while audio is off");
    let late_audio: Vec<u32> = b
        .client
        .drain()
        .iter()
        .filter(|r| r.kind == RtpCodecKind::Audio)
        .map(|r| counter(&r.packet))
        .filter(|n| *n > muted_at + IN_FLIGHT)
        .collect();
    assert!(
        late_audio.is_empty(),
        "audio sent after the mute arrived: {late_audio:?}"
    );
    assert!(media.stats().packets_withheld > withheld_before + 30);

    // Audio back on: it arrives again, numbered on from where it stopped.
    media
        .set_forwarding("a".to_owned(), true, true)
        .await
        .expect("forwarding set");
    let resumed_at = a.sent_audio.load(Ordering::SeqCst) as u32;
    let audio = b.client.collect(RtpCodecKind::Audio, 10, WAIT).await;
    assert_eq!(audio.len(), 10, "audio resumes");
    assert!(
        counter(&audio[9]) >= resumed_at,
        "fresh audio after resuming"
    );
    for pair in audio.windows(2) {
        assert_eq!(
            pair[1].header.sequence_number,
            pair[0].header.sequence_number.wrapping_add(1),
            "no gap in sequence numbers"
        );
    }

    // Video off: it stops; audio continues.
    media
        .set_forwarding("a".to_owned(), true, false)
        .await
        .expect("forwarding set");
    let video_off_at = a.sent_video.load(Ordering::SeqCst) as u32;
    let audio = b.client.collect(RtpCodecKind::Audio, 25, WAIT).await;
    assert_eq!(audio.len(), 25, "audio continues while video is off");
    let late_video: Vec<u32> = b
        .client
        .drain()
        .iter()
        .filter(|r| r.kind == RtpCodecKind::Video)
        .map(|r| counter(&r.packet))
        .filter(|n| *n > video_off_at + IN_FLIGHT)
        .collect();
    assert!(
        late_video.is_empty(),
        "video sent after camera-off arrived: {late_video:?}"
    );

    // Video on: A is asked for a keyframe, and B's video restarts at one.
    let plis = a.plis.load(Ordering::SeqCst);
    media
        .set_forwarding("a".to_owned(), true, true)
        .await
        .expect("forwarding set");
    assert!(
        eventually(Duration::from_secs(1), || a.plis.load(Ordering::SeqCst)
            > plis)
        .await,
        "no PLI for the video resume"
    );
    let video = b.client.collect(RtpCodecKind::Video, 5, WAIT).await;
    assert_eq!(video.len(), 5, "video resumes");
    assert_eq!(
        counter(&video[0]) % KEYFRAME_EVERY,
        0,
        "video resumes at a keyframe"
    );
}
