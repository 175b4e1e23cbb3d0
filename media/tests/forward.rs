//! Members of a conference receive each other's audio and video; other conferences do not.

mod common;

use std::time::Duration;

use common::{
    KEYFRAME_EVERY, Publisher, Subscriber, audio_payload, next_offer, payload_counter, start_media,
    video_payload,
};
use confgate_media::MediaLoad;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

const WAIT: Duration = Duration::from_secs(10);

/// Every packet is one `member` sent, byte for byte.
fn assert_sent_by(packets: &[rtc::rtp::Packet], kind: RtpCodecKind, member: &str) {
    for p in packets {
        let (prefix, expected) = match kind {
            RtpCodecKind::Audio => {
                let n = payload_counter(&p.payload, "AUDIO", member).expect("A's audio payload");
                ("AUDIO", audio_payload(member, n))
            }
            _ => {
                let n = payload_counter(&p.payload, "VIDEO", member).expect("A's video payload");
                (
                    "VIDEO",
                    video_payload(member, n, n.is_multiple_of(KEYFRAME_EVERY)),
                )
            }
        };
        assert_eq!(p.payload, expected, "{prefix} payload forwarded unchanged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_receive_each_other_and_other_rooms_receive_nothing() {
    let media = start_media().await;
    let mut events = media.take_events().expect("events receiver");
    assert!(media.take_events().is_none(), "events can be taken once");

    // A publishes and sends; A also subscribes while alone (an offer with no tracks yet).
    let mut a_pub = Publisher::connect(&media, "room-1", "a").await;
    a_pub.start_sending();
    let a_sub = Subscriber::connect(&media, "room-1", "a").await;
    // C, in another room, subscribes too.
    let mut c_sub = Subscriber::connect(&media, "room-2", "c").await;

    // B joins room-1 and subscribes: it must receive A's audio and video.
    let mut b_sub = Subscriber::connect(&media, "room-1", "b").await;
    b_sub.client.wait_connected(WAIT).await;
    let audio = b_sub.client.collect(RtpCodecKind::Audio, 50, WAIT).await;
    assert_eq!(audio.len(), 50, "B receives A's audio");
    assert_sent_by(&audio, RtpCodecKind::Audio, "a");
    let video = b_sub.client.collect(RtpCodecKind::Video, 20, WAIT).await;
    assert_eq!(video.len(), 20, "B receives A's video");
    assert_sent_by(&video, RtpCodecKind::Video, "a");
    let first = payload_counter(&video[0].payload, "VIDEO", "a").expect("counter");
    assert_eq!(first % KEYFRAME_EVERY, 0, "B's video starts at a keyframe");
    // One stable SSRC per forwarded track, consecutive sequence numbers.
    assert!(audio.iter().all(|p| p.header.ssrc == audio[0].header.ssrc));
    assert!(video.iter().all(|p| p.header.ssrc == video[0].header.ssrc));
    for pair in audio.windows(2) {
        assert_eq!(
            pair[1].header.sequence_number,
            pair[0].header.sequence_number.wrapping_add(1)
        );
    }

    // B publishes too: A is re-offered and then receives B's media.
    let mut b_pub = Publisher::connect(&media, "room-1", "b").await;
    b_pub.start_sending();
    let offer = next_offer(&mut events, "a", WAIT).await;
    a_sub.renegotiate(&media, offer).await;
    let mut a_sub = a_sub;
    let audio = a_sub.client.collect(RtpCodecKind::Audio, 25, WAIT).await;
    assert_eq!(audio.len(), 25, "A receives B's audio");
    assert_sent_by(&audio, RtpCodecKind::Audio, "b");
    let video = a_sub.client.collect(RtpCodecKind::Video, 10, WAIT).await;
    assert_eq!(video.len(), 10, "A receives B's video");
    assert_sent_by(&video, RtpCodecKind::Video, "b");

    // C, connected all along in another room, got nothing.
    c_sub.client.wait_connected(WAIT).await;
    assert!(
        c_sub.client.drain().is_empty(),
        "another room receives nothing"
    );

    let stats = media.stats();
    assert!(stats.packets_received > 100, "{stats:?}");
    assert!(stats.packets_forwarded > 100, "{stats:?}");
    // The load: A's and B's two tracks each come in, and go out once each (to the other).
    assert_eq!(
        media.load().await,
        MediaLoad {
            incoming: 4,
            outgoing: 4
        }
    );

    // B leaves: A is re-offered without B's tracks, and stops receiving them.
    media.remove_member("b".to_owned()).await;
    let offer = next_offer(&mut events, "a", WAIT).await;
    assert!(
        !offer.contains("msid:b "),
        "B's tracks are gone from the offer"
    );
    a_sub.renegotiate(&media, offer).await;
    // A packet of B's that left just before B was removed may still be on its way through
    // A's client (the renegotiation can take only a few milliseconds): let it land first.
    tokio::time::sleep(Duration::from_millis(100)).await;
    a_sub.client.clear();
    let after = a_sub
        .client
        .collect(RtpCodecKind::Audio, 1, Duration::from_millis(500))
        .await;
    assert!(
        after.is_empty(),
        "nothing is forwarded from a removed member"
    );
    assert_eq!(
        media.load().await,
        MediaLoad {
            incoming: 2,
            outgoing: 0
        },
        "A's tracks still come in; nobody receives them"
    );
}
