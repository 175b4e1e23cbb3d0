//! Micro-benchmarks of the media plane's per-packet path: what forwarding one published video
//! packet costs a media loop, piece by piece. Every piece runs production code: the loop's own
//! functions through `confgate_media::bench_support`, and rtc's RTP codec and SRTP contexts.
//!
//! - `route/demux/M`: which connection a datagram belongs to (`Demux::route`, one hash lookup
//!   by source address), on a loop serving a room of M members (2·M connections).
//! - `route/fanouts/M`: which subscriber connections get a copy, and with which numbering
//!   (`Router::forward`: the member's track, its sequence rewrite, keyframe check and fanout
//!   walk), in a room of M members where everyone receives everyone: M-1 copies.
//! - `rewrite/*`: one copy's RTP header rewrite (`SequenceRewriter`, `PayloadTypeMap`,
//!   `media_loop::copy_packet`) of a 1200-byte VP8 packet carrying the header extensions
//!   Chromium sends.
//! - `forward/fanout/N`: one packet to N subscribers, everything the loop does per packet
//!   outside syscalls and SRTP: demux, rtc's parse of the decrypted packet, routing and
//!   rewriting (`media_loop::forward_packet`), and rtc's serialization of each copy, which rtc
//!   does right before encrypting it.
//! - `srtp/*`: rtc's SRTP context, which the loop goes through once per packet received
//!   (`unprotect`), and `srtp/seal`, how a subscribe connection seals each copy it sends
//!   (serialized into a reused buffer and encrypted there), beside `srtp/protect`, rtc's
//!   context encrypting an already serialized copy into a new buffer, for the profiles the
//!   server offers.
//!
//! So one packet to N subscribers costs about `forward/fanout/N` + `srtp/unprotect` +
//! N × `srtp/seal` (which includes the serialization `forward/fanout` also counts), plus what
//! is not measured here: the recvfrom and `sendmmsg` syscalls, rtc's interceptors and handler
//! pipeline around each read, the copy's history slot and report counters, the loop's
//! bookkeeping (packet counters, the publish leg's SSRC -> kind table, a few entries scanned)
//! and, for audio only, the speaker detector.
//!
//! Run with `cargo bench -p confgate-media --bench forward` (add `-- --quick` for a short
//! run).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use confgate_media::bench_support::{
    CodecSpec, CopySealer, Demux, ExtensionSpec, HeaderRewrite, Kind, Outcome, Router,
};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rtc::rtp;
use rtc::shared::marshal::{Marshal, MarshalSize, Unmarshal};
use rtc::srtp::context::Context;
use rtc::srtp::option::srtp_replay_protection;
use rtc::srtp::protection_profile::ProtectionProfile;

const ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
const TRANSPORT_CC: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
const MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
const VIDEO_ORIENTATION: &str = "urn:3gpp:video-orientation";

/// The ids Chromium offers on a video m-line (its default extension set).
const PUBLISHER_EXTENSIONS: &[ExtensionSpec<'static>] = &[
    ("urn:ietf:params:rtp-hdrext:toffset", 14),
    (ABS_SEND_TIME, 2),
    (VIDEO_ORIENTATION, 13),
    (TRANSPORT_CC, 3),
    (
        "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
        5,
    ),
    (
        "http://www.webrtc.org/experiments/rtp-hdrext/video-content-type",
        6,
    ),
    (
        "http://www.webrtc.org/experiments/rtp-hdrext/video-timing",
        7,
    ),
    (
        "http://www.webrtc.org/experiments/rtp-hdrext/color-space",
        8,
    ),
    (MID, 4),
    ("urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", 10),
    ("urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id", 11),
];
/// A subscriber connection's ids: other numbers than the publisher's, so the one forwarded
/// extension here (video orientation) is renumbered.
const SUBSCRIBER_EXTENSIONS: &[ExtensionSpec<'static>] =
    &[(MID, 1), (TRANSPORT_CC, 2), (VIDEO_ORIENTATION, 5)];
const PUBLISHER_VIDEO: &[CodecSpec<'static>] =
    &[(96, "video/VP8", 90_000), (102, "video/H264", 90_000)];
const SUBSCRIBER_VIDEO: &[CodecSpec<'static>] =
    &[(96, "video/VP8", 90_000), (102, "video/H264", 90_000)];
const VP8_PT: u8 = 96;

/// The size of the benchmarked packet on the wire before SRTP: a full video packet.
const PACKET_SIZE: usize = 1200;

/// Header extensions of a packet in the middle of a frame, as Chromium sends them:
/// abs-send-time (3 bytes), transport-wide sequence number (2 bytes) and the MID (sent until
/// the receiver has acknowledged it). None of them is forwarded.
fn mid_frame_extensions() -> Vec<rtp::header::Extension> {
    let ext = |id, payload: &'static [u8]| rtp::header::Extension {
        id,
        payload: Bytes::from_static(payload),
    };
    vec![
        ext(2, &[0x12, 0x34, 0x56]),
        ext(3, &[0x01, 0x02]),
        ext(4, b"1"),
    ]
}

/// The same plus video orientation (one byte), which Chromium adds to the last packet of key
/// frames (of every frame from a rotated camera): the one extension here that is forwarded,
/// so a copy allocates its extension list.
fn extensions_with_orientation() -> Vec<rtp::header::Extension> {
    let mut extensions = mid_frame_extensions();
    extensions.push(rtp::header::Extension {
        id: 13,
        payload: Bytes::from_static(&[0x01]),
    });
    extensions
}

/// A VP8 payload: the RFC 7741 descriptor with a 15-bit PictureID, then frame data.
/// `keyframe` makes it the first packet of a key frame, else it continues a frame.
fn vp8_payload(len: usize, keyframe: bool) -> Bytes {
    let mut payload = if keyframe {
        // X, S, partition 0; I; PictureID; frame tag with P = 0 (key frame).
        vec![0x90, 0x80, 0x80, 0x01, 0x10]
    } else {
        // X, not a partition start; I; PictureID.
        vec![0x80, 0x80, 0x80, 0x02]
    };
    payload.resize(len, 0xA5);
    Bytes::from(payload)
}

/// A `PACKET_SIZE`-byte VP8 packet with `extensions`.
fn vp8_packet(ssrc: u32, extensions: Vec<rtp::header::Extension>, keyframe: bool) -> rtp::Packet {
    let header = rtp::header::Header {
        version: 2,
        extension: true,
        payload_type: VP8_PT,
        ssrc,
        extension_profile: 0xBEDE,
        extensions,
        ..Default::default()
    };
    let payload = vp8_payload(PACKET_SIZE - header.marshal_size(), keyframe);
    let packet = rtp::Packet { header, payload };
    assert_eq!(packet.marshal_size(), PACKET_SIZE);
    packet
}

/// The numbering of one live video stream: one sequence number per packet, a new frame (3000
/// ticks of 90 kHz: 30 fps) every 4 packets, on one SSRC for as long as the benchmark runs
/// (through every wrap of the sequence numbers).
struct Stream {
    ssrc: u32,
    n: u64,
}

impl Stream {
    fn new(ssrc: u32) -> Self {
        Stream { ssrc, n: 0 }
    }

    /// `(ssrc, sequence number, timestamp)` of the next packet.
    fn next(&mut self) -> (u32, u16, u32) {
        self.n += 1;
        (self.ssrc, self.n as u16, (self.n / 4 * 3000) as u32)
    }
}

fn source_ssrc(member: usize) -> u32 {
    0x1000_0000 + member as u32
}

/// A room of `members` in which everyone publishes video and receives everyone else's.
/// Member `i`'s publish connection is peer `2i`, its subscribe connection peer `2i + 1`.
/// Member 0's stream has started with a key frame, so no subscriber waits for one.
fn room(members: usize, now: Instant) -> Router {
    let mut router = Router::default();
    let keys: Vec<usize> = (0..members)
        .map(|i| router.join("room", &format!("member-{i}"), 2 * i, 2 * i + 1))
        .collect();
    for (i, &key) in keys.iter().enumerate() {
        router.publish(
            key,
            Kind::Video,
            PUBLISHER_VIDEO,
            PUBLISHER_EXTENSIONS,
            source_ssrc(i),
            0x2000_0000 + i as u32,
        );
    }
    for &key in &keys {
        router.subscribe(key, SUBSCRIBER_VIDEO, SUBSCRIBER_EXTENSIONS, now);
    }
    let keyframe = vp8_payload(100, true);
    let outcome = router.forward(
        keys[0],
        Kind::Video,
        source_ssrc(0),
        0,
        0,
        VP8_PT,
        &keyframe,
        now,
        |_| {},
    );
    assert_eq!(outcome.forwarded as usize, members - 1, "{outcome:?}");
    router
}

fn peer_addr(peer: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, (peer / 256) as u8, (peer % 256) as u8], 50_000))
}

/// A STUN binding request whose USERNAME names `local_ufrag`, as a browser's ICE check does.
fn binding_request(local_ufrag: &str) -> Vec<u8> {
    let username = format!("{local_ufrag}:browser");
    let mut attrs = Vec::new();
    attrs.extend_from_slice(&0x0006u16.to_be_bytes());
    attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attrs.extend_from_slice(username.as_bytes());
    while attrs.len() % 4 != 0 {
        attrs.push(0);
    }
    let mut msg = Vec::new();
    msg.extend_from_slice(&0x0001u16.to_be_bytes());
    msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    msg.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    msg.extend_from_slice(&[7; 12]);
    msg.extend_from_slice(&attrs);
    msg
}

/// The demultiplexer of a loop serving `peers` connections, each of whose addresses was
/// learned from an ICE check, as in production.
fn demux(peers: usize) -> Demux {
    let mut demux = Demux::default();
    for peer in 0..peers {
        let ufrag = format!("server-ufrag-{peer:012}");
        demux.add_ufrag(&ufrag, peer);
        assert_eq!(
            demux.route(&binding_request(&ufrag), peer_addr(peer)),
            Some(peer)
        );
    }
    demux
}

fn route(c: &mut Criterion) {
    let now = Instant::now();
    let packet = vp8_packet(source_ssrc(0), mid_frame_extensions(), false);
    let datagram = packet.marshal().expect("marshal");
    let mut group = c.benchmark_group("route");
    for members in [2usize, 8, 32] {
        // Datagrams from every member's publish connection in turn.
        let mut demux = demux(2 * members);
        let mut next = 0;
        group.bench_function(BenchmarkId::new("demux", members), |b| {
            b.iter(|| {
                next = (next + 1) % members;
                demux.route(black_box(&datagram), black_box(peer_addr(2 * next)))
            })
        });

        let mut router = room(members, now);
        let mut stream = Stream::new(source_ssrc(0));
        group.bench_function(BenchmarkId::new("fanouts", members), |b| {
            b.iter(|| {
                let (ssrc, seq, ts) = stream.next();
                let mut copies = 0u32;
                let outcome = router.forward(
                    0,
                    Kind::Video,
                    ssrc,
                    seq,
                    ts,
                    VP8_PT,
                    black_box(&packet.payload),
                    now,
                    |subscriber| {
                        black_box(subscriber);
                        copies += 1;
                    },
                );
                debug_assert_eq!(outcome.forwarded as usize, members - 1);
                copies
            })
        });
    }
    group.finish();
}

fn rewrite(c: &mut Criterion) {
    let now = Instant::now();
    let new_rewrite = || {
        HeaderRewrite::new(
            0x2000_0000,
            (PUBLISHER_VIDEO, PUBLISHER_EXTENSIONS),
            (SUBSCRIBER_VIDEO, SUBSCRIBER_EXTENSIONS),
        )
    };
    let mut group = c.benchmark_group("rewrite");

    let mut rewrite = new_rewrite();
    let mut stream = Stream::new(source_ssrc(0));
    group.bench_function("sequence", |b| {
        b.iter(|| {
            let (ssrc, seq, ts) = stream.next();
            rewrite.sequence(black_box(ssrc), black_box(seq), black_box(ts), now)
        })
    });

    for (name, extensions, kept) in [
        ("vp8_1200", mid_frame_extensions(), 0),
        ("vp8_1200_orientation", extensions_with_orientation(), 1),
    ] {
        let mut rewrite = new_rewrite();
        let mut stream = Stream::new(source_ssrc(0));
        let mut packet = vp8_packet(source_ssrc(0), extensions, false);
        let sample = rewrite.rewrite(&packet, now).expect("forwarded");
        assert_eq!(sample.header.extensions.len(), kept);
        group.bench_function(name, |b| {
            b.iter(|| {
                let (ssrc, seq, ts) = stream.next();
                packet.header.ssrc = ssrc;
                packet.header.sequence_number = seq;
                packet.header.timestamp = ts;
                rewrite.rewrite(black_box(&packet), now)
            })
        });
    }
    group.finish();
}

/// Writes `(ssrc, sequence number, timestamp)` into a serialized RTP header.
fn renumber(datagram: &mut [u8], (ssrc, seq, ts): (u32, u16, u32)) {
    datagram[2..4].copy_from_slice(&seq.to_be_bytes());
    datagram[4..8].copy_from_slice(&ts.to_be_bytes());
    datagram[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

fn forward(c: &mut Criterion) {
    let now = Instant::now();
    let template = vp8_packet(source_ssrc(0), mid_frame_extensions(), false)
        .marshal()
        .expect("marshal");
    let mut group = c.benchmark_group("forward");
    for subscribers in [1usize, 4, 16] {
        let members = subscribers + 1;
        let mut router = room(members, now);
        let mut demux = demux(2 * members);
        // Peer -> member, as the loop's peer table says (`Peer::member`).
        let member_of: Vec<usize> = (0..2 * members).map(|peer| peer / 2).collect();
        let from = peer_addr(0);
        let mut stream = Stream::new(source_ssrc(0));
        // The decrypted packets are written into one reused block, as the loop receives
        // datagrams (SRTP decryption allocates a buffer of its own: see `srtp/unprotect`).
        let mut block = BytesMut::with_capacity(4 * PACKET_SIZE);
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_function(BenchmarkId::new("fanout", subscribers), |b| {
            b.iter(|| {
                block.reserve(PACKET_SIZE);
                block.extend_from_slice(&template);
                renumber(&mut block, stream.next());
                let mut datagram = block.split();
                let peer = demux.route(&datagram, from).expect("known address");
                let member = member_of[peer];
                let packet = rtp::Packet::unmarshal(&mut datagram).expect("RTP");
                let outcome: Outcome =
                    router.forward_packet(member, Kind::Video, &packet, now, |to, copy| {
                        black_box((to, copy.marshal().expect("marshal")));
                    });
                debug_assert_eq!(outcome.forwarded as usize, subscribers);
                outcome
            })
        });
    }
    group.finish();
}

fn srtp(c: &mut Criterion) {
    let provider = rtc::crypto::default_provider().expect("crypto provider");
    let crypto = provider.crypto();
    // What a subscriber connection encrypts: a forwarded copy, serialized.
    let copy = vp8_packet(0x2000_0000, extensions_with_orientation(), false);
    let plain = copy.marshal().expect("marshal").to_vec();
    let mut group = c.benchmark_group("srtp");
    group.throughput(Throughput::Bytes(plain.len() as u64));
    for (name, profile, gcm) in [
        ("aead_aes128_gcm", ProtectionProfile::AeadAes128Gcm, true),
        (
            "aes128_cm_sha1_80",
            ProtectionProfile::Aes128CmHmacSha1_80,
            false,
        ),
    ] {
        let key = vec![0x4B; profile.key_len()];
        let salt = vec![0x53; profile.salt_len()];
        let context = |replay: bool| {
            Context::new(
                &key,
                &salt,
                profile,
                replay.then(|| srtp_replay_protection(64)),
                None,
                crypto,
            )
            .expect("SRTP context")
        };

        // Sending, as a subscribe connection does: into a buffer the send batch reuses.
        let mut sealer = CopySealer::new(gcm, &key, &salt);
        let mut buf = BytesMut::with_capacity(1500);
        let mut index = 0u64;
        group.bench_function(BenchmarkId::new("seal", name), |b| {
            b.iter(|| {
                index += 1;
                buf.clear();
                sealer.seal(black_box(&copy), index, &mut buf);
                buf.len()
            })
        });

        // Sending through rtc's local context (no replay protection).
        let mut local = context(false);
        let mut packet = plain.clone();
        let mut stream = Stream::new(0x2000_0000);
        group.bench_function(BenchmarkId::new("protect", name), |b| {
            b.iter(|| {
                renumber(&mut packet, stream.next());
                local.encrypt_rtp(black_box(&packet)).expect("encrypt")
            })
        });

        // Receiving: the remote context checks replay over a 64-packet window, as rtc sets it.
        // Each packet is encrypted beforehand (not timed), in batches of 64 so that they are
        // still in cache when decrypted, as a datagram just received is.
        let mut sender = context(false);
        let mut remote = context(true);
        let mut packet = plain.clone();
        let mut stream = Stream::new(0x2000_0000);
        group.bench_function(BenchmarkId::new("unprotect", name), |b| {
            b.iter_batched(
                || {
                    renumber(&mut packet, stream.next());
                    sender.encrypt_rtp(&packet).expect("encrypt")
                },
                |encrypted| remote.decrypt_rtp(&encrypted).expect("decrypt"),
                BatchSize::NumIterations(64),
            )
        });
    }
    group.finish();
}

criterion_group!(benches, route, rewrite, forward, srtp);
criterion_main!(benches);
