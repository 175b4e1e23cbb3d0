//! The audio level a publisher's packets carry (RFC 6464) makes it speak; quiet, server-side
//! mute and removal stop it.

mod common;

use std::time::{Duration, Instant};

use common::{AUDIO_LEVEL_URI, Publisher, Subscriber, extmap_id, start_media, wait_event};
use confgate_media::MediaEvent;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);
/// -20 dBov with voice: someone talking into the microphone.
const LOUD: (u8, bool) = (20, true);
/// -127 dBov without voice: what a browser sends for a muted microphone.
const QUIET: (u8, bool) = (127, false);

fn speaking(member: &str, speaking: bool) -> MediaEvent {
    MediaEvent::Speaking {
        room: "room".to_owned(),
        member: member.to_owned(),
        speaking,
    }
}

async fn next_speaking(events: &mut mpsc::Receiver<MediaEvent>, within: Duration) -> MediaEvent {
    wait_event(events, within, |e| matches!(e, MediaEvent::Speaking { .. })).await
}

/// The audio-level byte (V flag and level) of each packet, under extension `id`.
fn level_bytes(packets: &[rtc::rtp::Packet], id: u8) -> Vec<Option<u8>> {
    packets
        .iter()
        .map(|p| p.header.get_extension(id).and_then(|e| e.first().copied()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loud_audio_makes_a_member_speak_and_quiet_stops_it() {
    let media = start_media().await;
    let mut events = media.take_events().expect("events");
    let mut a = Publisher::connect(&media, "room", "a").await;
    assert!(
        a.audio_level_id.is_some(),
        "the server's answer agrees to the audio-level extension"
    );
    a.set_audio_level(Some(QUIET));
    a.start_sending();
    a.client.wait_connected(WAIT).await;

    // B listens, to see what A really sends: the server forwards the audio level, mapped to
    // the id B negotiated.
    let mut b = Subscriber::connect(&media, "room", "b").await;
    let b_id = extmap_id(&b.client.local_sdp().await, AUDIO_LEVEL_URI)
        .expect("B's answer has the audio-level extension");
    let audio = b.client.collect(RtpCodecKind::Audio, 10, WAIT).await;
    assert_eq!(audio.len(), 10, "B receives A's audio");
    assert!(audio.iter().all(|p| p.payload.len() >= 80), "Opus-sized");
    assert_eq!(level_bytes(&audio, b_id), vec![Some(127); 10]);

    // A talks: it becomes a speaker, not before 300 ms of loud audio.
    a.set_audio_level(Some(LOUD));
    let loud_at = Instant::now();
    assert_eq!(next_speaking(&mut events, WAIT).await, speaking("a", true));
    let onset = loud_at.elapsed();
    assert!(onset >= Duration::from_millis(280), "onset after {onset:?}");
    // A second of talking, every packet carrying the loud level: no further change.
    b.client.clear();
    let audio = b.client.collect(RtpCodecKind::Audio, 50, WAIT).await;
    assert_eq!(audio.len(), 50);
    let loud = level_bytes(&audio, b_id);
    assert!(
        loud.iter().rev().take(40).all(|l| *l == Some(0x80 | 20)),
        "{loud:?}"
    );

    // A goes quiet: it stops speaking, once 800 ms of quiet have passed.
    a.set_audio_level(Some(QUIET));
    let quiet_at = Instant::now();
    assert_eq!(next_speaking(&mut events, WAIT).await, speaking("a", false));
    let release = quiet_at.elapsed();
    assert!(
        release >= Duration::from_millis(700),
        "release after {release:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muting_or_removing_a_speaker_stops_it_at_once() {
    let media = start_media().await;
    let mut events = media.take_events().expect("events");
    let mut a = Publisher::connect(&media, "room", "a").await;
    a.set_audio_level(Some(LOUD));
    a.start_sending();
    assert_eq!(next_speaking(&mut events, WAIT).await, speaking("a", true));

    // The server stops forwarding A's audio: A stops speaking with the command, and stays
    // silent while muted however loud it is.
    media
        .set_forwarding("a".to_owned(), false, true)
        .await
        .expect("forwarding set");
    assert_eq!(
        next_speaking(&mut events, Duration::from_millis(200)).await,
        speaking("a", false)
    );
    let during_mute =
        tokio::time::timeout(Duration::from_millis(1500), next_speaking_any(&mut events)).await;
    assert!(
        during_mute.is_err(),
        "a muted member spoke: {during_mute:?}"
    );

    // Forwarding resumes: A speaks again; A is removed: it stops with the removal.
    media
        .set_forwarding("a".to_owned(), true, true)
        .await
        .expect("forwarding set");
    assert_eq!(next_speaking(&mut events, WAIT).await, speaking("a", true));
    media.remove_member("a".to_owned()).await;
    assert_eq!(
        next_speaking(&mut events, Duration::from_millis(200)).await,
        speaking("a", false)
    );
}

/// The next `Speaking` event, however long it takes.
async fn next_speaking_any(events: &mut mpsc::Receiver<MediaEvent>) -> Option<MediaEvent> {
    loop {
        match events.recv().await {
            Some(e @ MediaEvent::Speaking { .. }) => return Some(e),
            Some(_) => {}
            None => return None,
        }
    }
}
