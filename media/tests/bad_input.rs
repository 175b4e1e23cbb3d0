//! Malformed input gets a clear error and harms nobody else.

mod common;

use std::time::Duration;

use common::{Client, Publisher, Subscriber, start_media};
use confgate_media::{Leg, MediaError};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

const WAIT: Duration = Duration::from_secs(10);

/// A real client offer, to be mangled.
async fn client_offer() -> String {
    let client = Client::new().await;
    let publisher = Publisher::connect_offer_only(&client).await;
    drop(client);
    publisher
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_offers_and_garbage_datagrams_harm_nobody() {
    let media = start_media().await;
    let mut a = Publisher::connect(&media, "room", "a").await;
    a.start_sending();
    let mut b = Subscriber::connect(&media, "room", "b").await;
    assert_eq!(
        b.client.collect(RtpCodecKind::Audio, 10, WAIT).await.len(),
        10
    );

    let offer = client_offer().await;
    let publish = |sdp: String| media.publish("room".to_owned(), "x".to_owned(), sdp);

    let garbage = publish("hello, I am not SDP".to_owned()).await;
    assert!(matches!(garbage, Err(MediaError::BadSdp(_))), "{garbage:?}");

    let cut = offer.find("a=ice-ufrag").expect("offer has a ufrag");
    let truncated = publish(offer[..cut].to_owned()).await;
    assert!(
        matches!(truncated, Err(MediaError::BadSdp(_))),
        "{truncated:?}"
    );

    let no_media = publish("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n".to_owned()).await;
    match no_media {
        Err(MediaError::BadSdp(message)) => assert!(message.contains("no audio or video")),
        other => panic!("{other:?}"),
    }

    let no_shared_codec = offer
        .replace("opus/48000/2", "G729/8000")
        .replace("VP8/90000", "AV1/90000");
    let incompatible = publish(no_shared_codec).await;
    assert!(
        matches!(incompatible, Err(MediaError::Incompatible(_))),
        "{incompatible:?}"
    );
    let message = incompatible
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("opus"),
        "the error names what the server takes: {message}"
    );

    // Misuse is refused too.
    assert!(matches!(
        media
            .subscriber_answer("nobody".to_owned(), offer.clone())
            .await,
        Err(MediaError::NoSuchMember(_))
    ));
    assert!(matches!(
        media.subscriber_answer("a".to_owned(), offer.clone()).await,
        Err(MediaError::NoOfferPending(_))
    ));
    assert!(matches!(
        media
            .subscriber_answer("b".to_owned(), "garbage".to_owned())
            .await,
        Err(MediaError::NoOfferPending(_))
    ));
    assert!(matches!(
        media
            .remote_candidate("a".to_owned(), Leg::Publish, "garbage".to_owned())
            .await,
        Err(MediaError::BadCandidate(_))
    ));
    for candidate in [
        "candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host generation 0",
        "candidate:2 1 UDP 2122262783 4bd4f6c2-1e1c-4bd4-9c7e-3b7e2c0a8f11.local 54321 typ host",
        "",
    ] {
        media
            .remote_candidate("a".to_owned(), Leg::Publish, candidate.to_owned())
            .await
            .expect("a valid candidate is accepted");
    }
    assert!(matches!(
        media.set_forwarding("nobody".to_owned(), true, true).await,
        Err(MediaError::NoSuchMember(_))
    ));
    assert!(matches!(
        media
            .publish("other-room".to_owned(), "a".to_owned(), offer.clone())
            .await,
        Err(MediaError::OtherRoom { .. })
    ));

    // Garbage datagrams of every first-byte class.
    let before = media.stats().datagrams_unrouted;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("socket");
    let mut seed = 0x2545_f491_u32;
    for i in 0..1000u32 {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let len = 1 + (seed % 300) as usize;
        let mut datagram: Vec<u8> = (0..len)
            .map(|j| (seed.wrapping_mul(j as u32 + 1) >> 8) as u8)
            .collect();
        datagram[0] = [0x00, 0x01, 0x16, 0x80, 0x90, 0xff][(i % 6) as usize];
        if i % 6 == 1 && datagram.len() >= 20 {
            // A STUN binding request naming an unknown ufrag.
            datagram[..8].copy_from_slice(&[0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42]);
        }
        socket
            .send_to(&datagram, media.local_addr())
            .await
            .expect("sent");
        if i % 100 == 99 {
            // Let the loop catch up, so the kernel's buffer never overflows and every datagram
            // is counted.
            let sent = u64::from(i + 1);
            assert!(
                common::eventually(WAIT, || media.stats().datagrams_unrouted >= before + sent)
                    .await,
                "{:?}",
                media.stats()
            );
        }
    }

    // B still receives A's media.
    b.client.clear();
    assert_eq!(
        b.client.collect(RtpCodecKind::Audio, 25, WAIT).await.len(),
        25
    );
    assert_eq!(
        b.client.collect(RtpCodecKind::Video, 5, WAIT).await.len(),
        5
    );
}
