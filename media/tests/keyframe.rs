//! A new subscription asks the publisher for a keyframe, and a subscriber's PLI reaches the
//! publisher.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Publisher, Subscriber, eventually, start_media, wait_event};
use confgate_media::{Leg, MediaEvent};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_start_and_subscriber_pli_reach_the_publisher() {
    let media = start_media().await;
    let mut events = media.take_events().expect("events");
    let mut a = Publisher::connect(&media, "room", "a").await;
    a.start_sending();
    a.client.wait_connected(WAIT).await;
    wait_event(&mut events, WAIT, |e| {
        *e == MediaEvent::Connected {
            member: "a".to_owned(),
            leg: Leg::Publish,
        }
    })
    .await;

    // B subscribes: A's browser is asked for a keyframe within 1 s of the subscription
    // starting (the subscribe leg connecting).
    let before = a.plis.load(Ordering::SeqCst);
    let mut b = Subscriber::connect(&media, "room", "b").await;
    b.client.wait_connected(WAIT).await;
    assert!(
        eventually(Duration::from_secs(1), || a.plis.load(Ordering::SeqCst)
            > before)
        .await,
        "A got no PLI within 1 s of B's subscription"
    );

    // Wait until B's video runs (a keyframe answered the request), then B asks for a keyframe:
    // A receives a PLI.
    let video = b.client.collect(RtpCodecKind::Video, 5, WAIT).await;
    assert_eq!(video.len(), 5, "B receives A's video");
    let before = a.plis.load(Ordering::SeqCst);
    b.client.send_pli().await;
    assert!(
        eventually(Duration::from_secs(1), || a.plis.load(Ordering::SeqCst)
            > before)
        .await,
        "B's PLI did not reach A within 1 s"
    );

    // The control plane heard about B's subscribe leg coming and going.
    let b_sub = |e: &MediaEvent| match e {
        MediaEvent::Connected { member, leg } | MediaEvent::Disconnected { member, leg } => {
            member == "b" && *leg == Leg::Subscribe
        }
        _ => false,
    };
    let connected = wait_event(&mut events, WAIT, b_sub).await;
    assert!(matches!(connected, MediaEvent::Connected { .. }));
    media.remove_member("b".to_owned()).await;
    let disconnected = wait_event(&mut events, WAIT, b_sub).await;
    assert!(matches!(disconnected, MediaEvent::Disconnected { .. }));
}
