//! A member's plain-RTP leg toward an MCU: its media goes to the MCU with the MCU's payload
//! types, the MCU's comes back to its subscriber connection as stream "mcu", keyframe
//! requests cross the bridge both ways, and closing the leg stops everything. Two UDP sockets
//! play the MCU.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{
    KEYFRAME_EVERY, Publisher, Subscriber, audio_payload, eventually, next_offer, payload_counter,
    start_media, video_payload, wait_event,
};
use confgate_media::{Codec, McuStream, MediaEvent};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);
/// The MCU's payload types: not the browser's (111, 96), so the rewrite shows.
const MCU_AUDIO_PT: u8 = 109;
const MCU_VIDEO_PT: u8 = 100;
const MCU_SSRC_AUDIO: u32 = 0xA0D1_0000;
const MCU_SSRC_VIDEO: u32 = 0x0F1D_E000;

/// One socket of the test's MCU, with what it receives on a channel.
struct McuSocket {
    socket: Arc<UdpSocket>,
    received: mpsc::UnboundedReceiver<Vec<u8>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for McuSocket {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl McuSocket {
    async fn bind() -> McuSocket {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("mcu socket"));
        let (tx, received) = mpsc::unbounded_channel();
        let reading = Arc::clone(&socket);
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                // ICMP errors from closed ports surface here on some systems: keep reading.
                if let Ok((n, _)) = reading.recv_from(&mut buf).await {
                    let _ = tx.send(buf[..n].to_vec());
                }
            }
        });
        McuSocket {
            socket,
            received,
            reader,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("addr")
    }

    /// The next `n` RTP packets (RTCP skipped), within `within`.
    async fn rtp(&mut self, n: usize, within: Duration) -> Vec<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + within;
        let mut got = Vec::new();
        while got.len() < n {
            match tokio::time::timeout_at(deadline, self.received.recv()).await {
                Ok(Some(d)) if !is_rtcp(&d) => got.push(d),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        got
    }

    /// Waits for an RTCP PLI, skipping everything else.
    async fn pli(&mut self, within: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.received.recv()).await {
                Ok(Some(d)) if is_rtcp(&d) && d[1] == 206 && d[0] & 0x1F == 1 => return Some(d),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    }

    fn clear(&mut self) {
        while self.received.try_recv().is_ok() {}
    }
}

fn is_rtcp(d: &[u8]) -> bool {
    d.len() >= 2 && (192..=223).contains(&d[1])
}

fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, if marker { 0x80 } else { 0 } | pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn pt(d: &[u8]) -> u8 {
    d[1] & 0x7F
}
fn seq(d: &[u8]) -> u16 {
    u16::from_be_bytes([d[2], d[3]])
}
fn ssrc(d: &[u8]) -> u32 {
    u32::from_be_bytes([d[8], d[9], d[10], d[11]])
}

/// One stable SSRC and consecutive sequence numbers.
fn assert_continuous(packets: &[Vec<u8>], what: &str) {
    assert!(
        packets.iter().all(|p| ssrc(p) == ssrc(&packets[0])),
        "{what}: one SSRC"
    );
    for pair in packets.windows(2) {
        assert_eq!(
            seq(&pair[1]),
            seq(&pair[0]).wrapping_add(1),
            "{what}: continuous sequence numbers"
        );
    }
}

/// The MCU sends 50 audio packets and 30 video frames (a keyframe every 15) per second, from
/// the sockets it receives on (symmetric RTP), to the leg's ports.
fn mcu_sends(
    audio: Arc<UdpSocket>,
    video: Arc<UdpSocket>,
    to_audio: SocketAddr,
    to_video: SocketAddr,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let started = tokio::time::Instant::now();
        let (mut a, mut v) = (0u32, 0u32);
        loop {
            tick.tick().await;
            let packet = rtp(
                MCU_AUDIO_PT,
                true,
                a as u16,
                a * 960,
                MCU_SSRC_AUDIO,
                &audio_payload("mcu", a),
            );
            let _ = audio.send_to(&packet, to_audio).await;
            a += 1;
            let due = (started.elapsed().as_millis() * 30 / 1000) as u32;
            while v <= due {
                let packet = rtp(
                    MCU_VIDEO_PT,
                    true,
                    v as u16,
                    v * 3000,
                    MCU_SSRC_VIDEO,
                    &video_payload("mcu", v, v % KEYFRAME_EVERY == 0),
                );
                let _ = video.send_to(&packet, to_video).await;
                v += 1;
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcu_leg_bridges_media_and_keyframe_requests_until_closed() {
    let media = start_media().await;
    let mut events = media.take_events().expect("events");
    let mut a_pub = Publisher::connect(&media, "room", "a").await;
    a_pub.start_sending();
    let mut a_sub = Subscriber::connect(&media, "room", "a").await;
    a_sub.client.wait_connected(WAIT).await;
    a_pub.client.wait_connected(WAIT).await;

    // Opening needs the member; opening twice gives the same ports.
    assert!(media.open_mcu_leg("nobody".to_owned()).await.is_err());
    let ports = media.open_mcu_leg("a".to_owned()).await.expect("leg opens");
    assert_eq!(
        media.open_mcu_leg("a".to_owned()).await.expect("again"),
        ports
    );
    assert_ne!(ports.audio.port(), ports.video.port());
    assert_ne!(ports.audio.port(), media.local_addr().port());

    let mut mcu_audio = McuSocket::bind().await;
    let mut mcu_video = McuSocket::bind().await;
    media
        .connect_mcu_leg(
            "a".to_owned(),
            Some(McuStream {
                remote: mcu_audio.addr(),
                rtcp: mcu_audio.addr(),
                payload_type: MCU_AUDIO_PT,
                clock_rate: 48_000,
                codec: Codec::Opus,
                video: false,
            }),
            Some(McuStream {
                remote: mcu_video.addr(),
                rtcp: mcu_video.addr(),
                payload_type: MCU_VIDEO_PT,
                clock_rate: 90_000,
                codec: Codec::Vp8,
                video: true,
            }),
        )
        .await
        .expect("leg connects");

    // (1) The MCU receives A's media: its payload types, one SSRC, continuous numbering, A's
    // payloads unchanged and no header extension.
    let audio = mcu_audio.rtp(50, WAIT).await;
    assert_eq!(audio.len(), 50, "the MCU receives A's audio");
    assert!(audio.iter().all(|p| pt(p) == MCU_AUDIO_PT));
    assert!(
        audio.iter().all(|p| p[0] == 0x80),
        "plain header, no extension"
    );
    assert_continuous(&audio, "audio to the MCU");
    let n = payload_counter(&audio[0][12..], "AUDIO", "a").expect("A's audio");
    assert_eq!(&audio[0][12..], &audio_payload("a", n)[..]);
    let video = mcu_video.rtp(20, WAIT).await;
    assert_eq!(video.len(), 20, "the MCU receives A's video");
    assert!(video.iter().all(|p| pt(p) == MCU_VIDEO_PT));
    assert_continuous(&video, "video to the MCU");
    assert_ne!(ssrc(&audio[0]), ssrc(&video[0]));

    // (2) A's subscriber is re-offered the MCU's tracks (stream "mcu"), then receives what the
    // MCU sends, starting at a keyframe.
    let offer = next_offer(&mut events, "a", WAIT).await;
    assert!(offer.contains("msid:mcu "), "the offer carries stream mcu");
    a_sub.renegotiate(&media, offer).await;
    let sender = mcu_sends(
        Arc::clone(&mcu_audio.socket),
        Arc::clone(&mcu_video.socket),
        ports.audio,
        ports.video,
    );
    let from_mcu = a_sub.client.collect(RtpCodecKind::Audio, 25, WAIT).await;
    assert_eq!(from_mcu.len(), 25, "A receives the MCU's audio");
    for p in &from_mcu {
        let n = payload_counter(&p.payload, "AUDIO", "mcu").expect("the MCU's audio");
        assert_eq!(p.payload, audio_payload("mcu", n));
        assert_ne!(p.header.payload_type, MCU_AUDIO_PT, "A's payload type");
        assert_ne!(p.header.ssrc, MCU_SSRC_AUDIO, "the server's SSRC");
    }
    let video = a_sub.client.collect(RtpCodecKind::Video, 10, WAIT).await;
    assert_eq!(video.len(), 10, "A receives the MCU's video");
    let first = payload_counter(&video[0].payload, "VIDEO", "mcu").expect("the MCU's video");
    assert_eq!(
        first % KEYFRAME_EVERY,
        0,
        "the MCU's video starts at a keyframe"
    );
    let mut streams = Vec::new();
    for track in a_sub.client.remote_tracks.lock().await.iter() {
        streams.push(track.stream_id().await);
    }
    assert!(!streams.is_empty());
    assert!(
        streams.iter().all(|s| s == "mcu"),
        "the MCU's tracks are stream mcu: {streams:?}"
    );

    // (3) A's browser asks for a keyframe of the MCU's video: a PLI reaches the MCU and the
    // control plane hears of it (for SIP INFO). Requests are coalesced, so ask until it comes.
    while events.try_recv().is_ok() {}
    mcu_video.clear();
    let mut pli = None;
    for _ in 0..20 {
        a_sub.client.send_pli().await;
        pli = mcu_video.pli(Duration::from_millis(300)).await;
        if pli.is_some() {
            break;
        }
    }
    let pli = pli.expect("the subscriber's PLI reaches the MCU");
    assert_eq!(
        u32::from_be_bytes([pli[8], pli[9], pli[10], pli[11]]),
        MCU_SSRC_VIDEO,
        "the PLI names the MCU's video"
    );
    let event = wait_event(&mut events, WAIT, |e| {
        matches!(e, MediaEvent::McuKeyframeRequest { .. })
    })
    .await;
    assert_eq!(
        event,
        MediaEvent::McuKeyframeRequest {
            member: "a".to_owned()
        }
    );

    // The MCU asks for a keyframe: A's browser gets a PLI.
    let before = a_pub.plis.load(Ordering::SeqCst);
    let mut mcu_pli = vec![0x81, 206, 0, 2];
    mcu_pli.extend_from_slice(&MCU_SSRC_VIDEO.to_be_bytes());
    mcu_pli.extend_from_slice(&video[0].header.ssrc.to_be_bytes());
    let mut got = false;
    for _ in 0..10 {
        mcu_video
            .socket
            .send_to(&mcu_pli, ports.video)
            .await
            .expect("send");
        if eventually(Duration::from_millis(600), || {
            a_pub.plis.load(Ordering::SeqCst) > before
        })
        .await
        {
            got = true;
            break;
        }
    }
    assert!(got, "the MCU's PLI reaches A's browser");

    // (4a) Garbage to the leg's ports, from the MCU's host and from elsewhere, harms nothing.
    let stranger = UdpSocket::bind("127.0.0.1:0").await.expect("stranger");
    let unrouted = media.stats().datagrams_unrouted;
    let garbage: [&[u8]; 6] = [
        &[],
        &[0xFF; 3],
        &[0x80; 11],
        &[
            0x90,
            MCU_VIDEO_PT,
            0,
            1,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            1,
            0xBE,
            0xDE,
            0xFF,
            0xFF,
        ],
        &[0x81, 206, 0xFF, 0xFF, 1, 2],
        &[0x80, 77, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3],
    ];
    for g in garbage {
        for to in [ports.audio, ports.video] {
            let _ = mcu_audio.socket.send_to(g, to).await;
            let _ = stranger.send_to(g, to).await;
        }
    }
    let bogus = rtp(MCU_AUDIO_PT, false, 9, 9, 9, &audio_payload("stranger", 0));
    let _ = stranger.send_to(&bogus, ports.audio).await;
    assert!(
        eventually(WAIT, || media.stats().datagrams_unrouted > unrouted).await,
        "garbage is counted as unrouted"
    );
    a_sub.client.clear();
    let still = a_sub.client.collect(RtpCodecKind::Audio, 10, WAIT).await;
    assert_eq!(still.len(), 10, "the bridge still works after garbage");
    assert!(
        still
            .iter()
            .all(|p| payload_counter(&p.payload, "AUDIO", "mcu").is_some()),
        "nothing from a stranger reaches A"
    );

    // (4b) Closing the leg: A is re-offered without the MCU's tracks, and neither direction
    // carries anything more.
    media.close_mcu_leg("a".to_owned()).await;
    let offer = next_offer(&mut events, "a", WAIT).await;
    assert!(!offer.contains("msid:mcu "), "the MCU's tracks are gone");
    a_sub.renegotiate(&media, offer).await;
    mcu_audio.clear();
    mcu_video.clear();
    a_sub.client.clear();
    let after = mcu_audio.rtp(1, Duration::from_millis(500)).await;
    assert!(after.is_empty(), "nothing goes to the MCU after close");
    assert!(
        mcu_video
            .rtp(1, Duration::from_millis(100))
            .await
            .is_empty()
    );
    let after = a_sub
        .client
        .collect(RtpCodecKind::Audio, 1, Duration::from_millis(500))
        .await;
    assert!(after.is_empty(), "nothing comes from the MCU after close");
    sender.abort();
    // Closing again, or for an unknown member, is harmless; the member still publishes.
    media.close_mcu_leg("a".to_owned()).await;
    media.close_mcu_leg("nobody".to_owned()).await;
    let received = media.stats().packets_received;
    assert!(eventually(WAIT, || media.stats().packets_received > received).await);
}
