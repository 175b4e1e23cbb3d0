//! confgate's media plane: an SFU that terminates each browser's WebRTC itself and forwards RTP
//! between the members of a conference.
//!
//! It knows nothing of HTTP, tokens or databases. The control plane drives it through
//! [`Media`] (plain-data requests, answered asynchronously) and hears back through
//! [`MediaEvent`]s.
//!
//! ```text
//!   control plane                      media loop (one tokio task, owns everything below)
//!  ───────────────                    ─────────────────────────────────────────────────────
//!   Media::publish ──┐                  ┌──────────────┐   UDP :udp_port (one socket)
//!   Media::subscribe ├─ Command ──────► │  Demux       │◄── STUN (by USERNAME ufrag)
//!   Media::…         ┘  (channel)       │  ufrag, addr │◄── DTLS / SRTP (by remote address)
//!                                       └──────┬───────┘
//!   Media::…mcu_leg  ┘                  │              │   UDP :any ×2 per MCU leg (plain RTP)
//!   MediaEvent ◄─── (channel) ───┐             ▼
//!                                │   RTCPeerConnection (rtc, sans-I/O), 2 per member:
//!                                │     publish leg   (browser offers, sends)
//!                                │     subscribe leg (server offers, sends to the browser)
//!                                │             │ RTP from a publish leg
//!                                │             ▼
//!                                └── Router::forward ─► each subscriber leg's DirectSender:
//!                                    │ (SSRC/seq/ts/PT/extension rewrite, keyframe gating)
//!                                    │  sealed into the send batch, one sendmmsg per packet
//!                                    └─ MCU leg (if any) ─► send_to the MCU (plain RTP)
//!                MCU's RTP on the leg's ports ─► that member's subscriber leg, stream "mcu"
//! ```
//!
//! # Design, and why
//!
//! - **rtc, not the async `webrtc` crate.** webrtc 0.21 binds one socket per connection and has
//!   no single-port mode; its `write_rtp` crosses a channel and an async mutex per packet. The
//!   sans-I/O core lets one loop own one socket and every connection on it.
//! - **One socket per loop, demultiplexed** (see `demux.rs`): STUN requests by the local ICE
//!   ufrag (the server picks every ufrag, unique per loop), everything else by the remote address
//!   learned from those requests. One port is what a firewall or a 1:1 NAT wants to see.
//! - **A conference lives on one loop**, so forwarding a packet to the other members is a plain
//!   function call on data the loop owns: no lock, no channel hop per packet. Several loops (one
//!   per core by default, each on `udp_port + n`) serve different conferences; [`Media`] keeps
//!   the room → loop directory (a mutex on the control path only).
//! - **Two connections per member**, as LiveKit does: the *publish* leg is offered by the
//!   browser (sendonly audio/video; the server answers recvonly), the *subscribe* leg is offered
//!   by the server (one sendonly audio and video transceiver per other member, plus a data
//!   channel so the transport exists before anyone publishes). Each leg has exactly one offerer,
//!   so there is no glare; when members come or go the server re-offers the subscribe leg and the
//!   browser answers.
//! - **ICE-lite** on the server: it has public (or announced) addresses and only answers checks;
//!   the browser is always the controlling agent. A trickled remote candidate is accepted but not
//!   needed: the browser's checks teach the server its address (peer-reflexive), mDNS `.local`
//!   candidates included. rtc's lite agent still sends one triggered check per nominated pair;
//!   its response carries no USERNAME and is routed by address like DTLS.
//! - **Host candidates** are `announced_ips`, else `bind_ip`, else the interface addresses. The
//!   socket cannot tell which of its addresses a datagram was sent to (no IP_PKTINFO in tokio),
//!   so rtc is told every datagram arrived on the first candidate: a multi-homed server should
//!   bind or announce one address.
//! - **Stable SSRCs**: each forwarded track gets an SSRC chosen by the server that never
//!   changes, whatever the publisher does (republishing, muting). Sequence numbers and
//!   timestamps are rewritten to stay continuous; payload types and header-extension ids are
//!   rewritten to what each subscriber negotiated (rtc and browsers drop what was not
//!   negotiated).
//! - **Keyframes**: a subscriber's video starts at a keyframe. The server asks the publisher
//!   (PLI) when a subscription's video starts, when video forwarding resumes, and when a
//!   subscriber sends PLI/FIR; requests per track are coalesced (see `keyframe.rs`).
//! - **Server-side mute**: [`Media::set_forwarding`] stops forwarding a member's audio or video
//!   at the server; video resumes at a requested keyframe.
//! - **The MCU leg** (`mcu.rs`, [`Media::open_mcu_leg`]): a member of a conference bridged to
//!   an MCU has a SIP call into it (made by the control plane) whose media is plain RTP/AVP.
//!   - *Sockets*: two UDP sockets per leg (audio, video; RTCP muxed on the same port), bound
//!     on the loop's address, owned by the loop that owns the member. The loop's `select!`
//!     polls them in place with `poll_recv_ready` (no task or channel per leg, no allocation):
//!     media from the MCU goes straight to the member's subscriber connection, and the
//!     member's media straight to the MCU, both on data the loop owns. Separate ports (not
//!     the loop's one socket) because an MCU speaks no ICE: there is no ufrag to demultiplex
//!     by, and its address is only known from SDP.
//!   - *Order*: the member must exist (publish or subscribe called) before `open_mcu_leg`;
//!     `connect_mcu_leg` takes the MCU's answer. Either leg of the browser may come later:
//!     a later subscribe connection is offered the MCU tracks, later published media goes out.
//!   - *Out*: every packet of the member's published audio / video is relabelled with the
//!     MCU's payload type (the control plane offers the MCU the browser's codec), gets the
//!     leg's fixed SSRC and continuous numbering (`SequenceRewriter`), and loses CSRCs and
//!     header extensions (per hop). Server-side mute holds it back too. No keyframe gating:
//!     a PLI to the browser is sent when the leg connects.
//!   - *In*: the MCU's RTP with its payload type, from the MCU's host, is rewritten (the
//!     subscriber's payload type, a server SSRC, continuous numbering) onto extra tracks of
//!     the member's subscriber connection whose stream id is `mcu`. They are added (and a
//!     [`MediaEvent::SubscriberOffer`] sent) when the leg connects, not at the first packet,
//!     so renegotiation never happens on the packet path. The codec offered is Opus for
//!     audio at 48 kHz (other audio is not brought back), and for video the member's
//!     published codec with the MCU's payload type, else the member's first, else VP8.
//!     Video starts at a keyframe.
//!   - *Symmetric RTP*: the first valid RTP from the MCU's host (any port) fixes where the MCU
//!     is sent to; after that only that address is heard. Anything else on the ports
//!     (garbage, strangers, wrong payload types) is counted as unrouted and dropped.
//!   - *Keyframes*: a PLI/FIR from the browser about the `mcu` video becomes an RTCP PLI to
//!     the MCU's video address and [`MediaEvent::McuKeyframeRequest`] (for SIP INFO: ffmpeg
//!     and many MCUs ignore RTCP), coalesced and retried like requests to browsers. A PLI/FIR
//!     from the MCU becomes a (coalesced) PLI to the member's browser.
//! - **SRTP**: AEAD-AES-GCM profiles are offered first (cheaper per packet than AES-CM/SHA1).
//! - **Forwarded copies bypass rtc's write path** (`direct.rs`, `srtp_out.rs`). Once a
//!   subscribe connection's DTLS is up, the loop writes each copy into a reused buffer of the
//!   send batch and seals it there with the connection's SRTP keys; rtc's write path (its
//!   interceptor chain, ICE, a fresh buffer per packet) cost more per copy than the encryption.
//!   rtc does not hand out the keys; it derives them through the crypto provider it is given,
//!   and a subscribe connection's provider (`srtp_out::KeyTap`) is rtc's default one that
//!   notes them. What rtc's interceptors did for those packets the loop does: NACKs answered
//!   from a 256-packet history per video stream, a sender report per stream every second
//!   (written through rtc, which sends all RTCP). Tests check the sealing byte for byte
//!   against rtc's own SRTP context.
//! - **Active speakers** (see `speaker.rs`): the RFC 6464 audio level browsers put in each
//!   audio packet, read by the id negotiated on that publish leg, feeds a per-room detector
//!   with hysteresis and debounce (louder than -50 dBov for 300 ms starts, quieter than -55 dBov
//!   or no audio for 800 ms stops, at most one new speaker per second per room). Changes are
//!   [`MediaEvent::Speaking`]; a member that leaves, loses its publish leg or whose audio is no
//!   longer forwarded stops speaking at once.
//!
//! # The per-packet path
//!
//! Datagram → demux (one hash lookup) → `handle_read` on that connection → `poll_read` →
//! for audio, the speaker detector (one hash lookup of the room, a few float operations) →
//! `Router::forward` (table lookups and integer arithmetic) → per subscriber, the copy written
//! into a reused buffer and sealed (`DirectSender::send`; the copy kept for NACKs if video) →
//! one `sendmmsg` for all copies. No lock, no log line, no channel. Allocations left are rtc's
//! on the receiving side (decrypted buffers, its interceptor queues) plus, per copy, the
//! header-extension vector when a forwarded extension is present. Toward an MCU: a
//! hash lookup of the member, the rewrite, one header written into a reused buffer, one
//! `send_to`. From an MCU: a header parse, the rewrite, the copy sealed as above (the payload
//! is a slice of the received block, not a copy).
//!
//! # Events and commands
//!
//! Commands travel on an unbounded channel: each is awaited by its caller, so the queue holds at
//! most one per concurrent control-plane call. Events travel on a bounded channel of 4096 that a
//! loop never blocks on: when it is full the loop keeps lifecycle events in its own queue and
//! retries every 50 ms, so none is ever dropped.
//!
//! # Not done here
//!
//! Simulcast/SVC layer selection, bandwidth estimation towards subscribers, RTX, main-video
//! choice (the control plane's, from [`MediaEvent::Speaking`]). On the MCU leg: RTCP on a
//! separate port (RTP+1, without `a=rtcp-mux`) is neither listened on nor sent to (the leg's
//! own reports, `mcu_rtcp.rs`, go on the RTP port); the browser's reports are not relayed to
//! the MCU; an MCU behind NAT (another source IP than its SDP's) is not heard; codecs are not
//! negotiated with the MCU here (payload types only).

mod batch;
mod demux;
mod direct;
mod keyframe;
mod mcu;
mod mcu_rtcp;
mod media_loop;
mod peer;

pub use peer::{DELIVER_SLOT, DeliverKeyframeRequests};
mod rewrite;
mod router;
mod sdp;
mod speaker;
mod srtp_out;

#[doc(hidden)]
pub mod bench_support {
    //! For `benches/` only: thin public wrappers around the crate-private pieces of the
    //! per-packet path, so that the benchmarks run the production code itself. Not part of the
    //! API; nothing else may use it.

    use std::net::SocketAddr;
    use std::time::Instant;

    use rtc::rtp;

    use crate::rewrite::{ExtensionMap, PayloadTypeMap, SequenceRewriter};
    use crate::router::{self, CodecInfo, TrackRef};

    /// A codec as one side negotiated it: `(payload type, MIME type, clock rate)`.
    pub type CodecSpec<'a> = (u8, &'a str, u32);
    /// A header extension as one side negotiated it: `(URI, id)`.
    pub type ExtensionSpec<'a> = (&'a str, u8);

    fn codecs(specs: &[CodecSpec<'_>]) -> Vec<CodecInfo> {
        specs
            .iter()
            .map(|&(payload_type, mime, clock_rate)| CodecInfo {
                payload_type,
                mime_type: mime.to_owned(),
                clock_rate,
                channels: 0,
                fmtp: String::new(),
            })
            .collect()
    }

    fn extensions(specs: &[ExtensionSpec<'_>]) -> Vec<(String, u8)> {
        specs
            .iter()
            .map(|&(uri, id)| (uri.to_owned(), id))
            .collect()
    }

    /// `router::Kind`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Kind {
        Audio,
        Video,
    }

    impl From<Kind> for router::Kind {
        fn from(kind: Kind) -> Self {
            match kind {
                Kind::Audio => router::Kind::Audio,
                Kind::Video => router::Kind::Video,
            }
        }
    }

    /// `router::ForwardOutcome`.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Outcome {
        pub forwarded: u32,
        pub withheld: u32,
        pub dropped: u32,
    }

    impl From<router::ForwardOutcome> for Outcome {
        fn from(o: router::ForwardOutcome) -> Self {
            Outcome {
                forwarded: o.forwarded,
                withheld: o.withheld,
                dropped: o.dropped,
            }
        }
    }

    /// `demux::Demux`, keyed by peer index.
    pub struct Demux(crate::demux::Demux<usize>);

    impl Default for Demux {
        fn default() -> Self {
            Demux(crate::demux::Demux::new())
        }
    }

    impl Demux {
        /// `Demux::add_ufrag`.
        pub fn add_ufrag(&mut self, ufrag: &str, peer: usize) {
            self.0.add_ufrag(ufrag.to_owned(), peer);
        }

        /// `Demux::route`.
        pub fn route(&mut self, datagram: &[u8], from: SocketAddr) -> Option<usize> {
            self.0.route(datagram, from).ok()
        }
    }

    /// A media loop's `router::Router`, set up through the calls the loop makes.
    #[derive(Default)]
    pub struct Router(router::Router);

    impl Router {
        /// `Router::join`, with the member's publish and subscribe connections.
        pub fn join(
            &mut self,
            room: &str,
            member: &str,
            publisher: usize,
            subscriber: usize,
        ) -> usize {
            let key = self.0.join(room, member).expect("a member of one room");
            let m = self.0.member_mut(key).expect("joined");
            m.publisher = Some(publisher);
            m.subscriber = Some(subscriber);
            key
        }

        /// `Router::publish`: `member` publishes `kind` from `source_ssrc`, forwarded as
        /// `out_ssrc`.
        pub fn publish(
            &mut self,
            member: usize,
            kind: Kind,
            codecs: &[CodecSpec<'_>],
            extensions: &[ExtensionSpec<'_>],
            source_ssrc: u32,
            out_ssrc: u32,
        ) {
            self.0.publish(
                member,
                kind.into(),
                self::codecs(codecs),
                self::extensions(extensions),
                Some(source_ssrc),
                || out_ssrc,
            );
        }

        /// What the loop does when `member`'s subscriber connection answered with `codecs` and
        /// `extensions` and its DTLS came up: `Router::set_fanout` for every track of
        /// `Router::wanted_tracks`, then `Router::activate_subscriber`.
        pub fn subscribe(
            &mut self,
            member: usize,
            codecs: &[CodecSpec<'_>],
            extensions: &[ExtensionSpec<'_>],
            now: Instant,
        ) {
            let subscriber = self
                .0
                .member(member)
                .and_then(|m| m.subscriber)
                .expect("joined with a subscriber connection");
            let wanted: Vec<TrackRef> = self.0.wanted_tracks(member);
            for track in wanted {
                self.0.set_fanout(
                    track,
                    subscriber,
                    self::codecs(codecs),
                    self::extensions(extensions),
                    false,
                );
            }
            self.0.activate_subscriber(subscriber, now);
        }

        /// `Router::forward`, handing each copy's subscriber connection to `sink`.
        #[allow(clippy::too_many_arguments)]
        pub fn forward(
            &mut self,
            member: usize,
            kind: Kind,
            ssrc: u32,
            sequence_number: u16,
            timestamp: u32,
            payload_type: u8,
            payload: &[u8],
            now: Instant,
            mut sink: impl FnMut(usize),
        ) -> Outcome {
            self.0
                .forward(
                    member,
                    kind.into(),
                    ssrc,
                    sequence_number,
                    timestamp,
                    payload_type,
                    payload,
                    now,
                    |copy| sink(copy.subscriber),
                )
                .into()
        }

        /// `media_loop::forward_packet`: the forwarding decision and every copy's packet.
        pub fn forward_packet(
            &mut self,
            member: usize,
            kind: Kind,
            packet: &rtp::Packet,
            now: Instant,
            mut write: impl FnMut(usize, rtp::Packet),
        ) -> Outcome {
            crate::media_loop::forward_packet(
                &mut self.0,
                member,
                kind.into(),
                packet,
                now,
                |to, copy, _| write(to, copy),
            )
            .into()
        }
    }

    /// The header rewrite of one forwarded track toward one subscriber connection: the
    /// track's `SequenceRewriter`, and the fanout's `PayloadTypeMap` and `ExtensionMap` built
    /// by `router::payload_type_map` and `router::extension_map` from what each side
    /// negotiated.
    pub struct HeaderRewrite {
        rewriter: SequenceRewriter,
        pt_map: PayloadTypeMap,
        ext_map: ExtensionMap,
        out_ssrc: u32,
    }

    impl HeaderRewrite {
        /// The rewrite of a track forwarded as `out_ssrc`, between a publisher and a
        /// subscriber that negotiated these codecs and header extensions.
        pub fn new(
            out_ssrc: u32,
            publisher: (&[CodecSpec<'_>], &[ExtensionSpec<'_>]),
            subscriber: (&[CodecSpec<'_>], &[ExtensionSpec<'_>]),
        ) -> Self {
            let (publisher_codecs, subscriber_codecs) = (codecs(publisher.0), codecs(subscriber.0));
            HeaderRewrite {
                rewriter: SequenceRewriter::new(
                    publisher_codecs.first().map_or(90_000, |c| c.clock_rate),
                ),
                pt_map: router::payload_type_map(&publisher_codecs, &subscriber_codecs),
                ext_map: router::extension_map(&extensions(publisher.1), &extensions(subscriber.1)),
                out_ssrc,
            }
        }

        /// `SequenceRewriter::rewrite` alone.
        pub fn sequence(
            &mut self,
            ssrc: u32,
            seq: u16,
            ts: u32,
            now: Instant,
        ) -> Option<(u16, u32)> {
            self.rewriter.rewrite(ssrc, seq, ts, now)
        }

        /// The three steps one copy of a packet goes through, in the order `Router::forward`
        /// and `media_loop::forward_packet` take them: `SequenceRewriter::rewrite`,
        /// `PayloadTypeMap::get`, then `media_loop::copy_packet` (SSRC, numbering, payload
        /// type, header extensions renumbered or left out).
        pub fn rewrite(&mut self, packet: &rtp::Packet, now: Instant) -> Option<rtp::Packet> {
            let h = &packet.header;
            let (sequence_number, timestamp) =
                self.rewriter
                    .rewrite(h.ssrc, h.sequence_number, h.timestamp, now)?;
            let payload_type = self.pt_map.get(h.payload_type)?;
            let copy = router::Copy {
                subscriber: 0,
                ssrc: self.out_ssrc,
                sequence_number,
                timestamp,
                payload_type,
                clock_rate: self.rewriter.clock_rate(),
                extensions: &self.ext_map,
            };
            Some(crate::media_loop::copy_packet(packet, &copy))
        }
    }

    /// How a subscribe connection seals a forwarded copy (`direct::seal_into`): the copy
    /// written into a reused buffer and encrypted there, the tag appended.
    pub struct CopySealer(crate::srtp_out::Sealer);

    impl CopySealer {
        /// `gcm`: AEAD-AES-128-GCM (12-byte salt), else AES-CM-128-HMAC-SHA1-80 (14-byte salt).
        pub fn new(gcm: bool, key: &[u8], salt: &[u8]) -> CopySealer {
            use crate::srtp_out::{MasterKeys, Profile};
            let provider = rtc::crypto::default_provider().expect("crypto provider");
            let keys = MasterKeys {
                profile: if gcm {
                    Profile::AeadAes128Gcm
                } else {
                    Profile::Aes128CmHmacSha1_80
                },
                key: key.to_vec(),
                salt: salt.to_vec(),
            };
            CopySealer(crate::srtp_out::Sealer::new(provider.crypto(), &keys).expect("sealer"))
        }

        /// Seals `packet` as packet `index` of its stream into `buf`.
        pub fn seal(&mut self, packet: &rtp::Packet, index: u64, buf: &mut bytes::BytesMut) {
            crate::direct::seal_into(&mut self.0, packet, index, buf).expect("sealed");
        }
    }
}

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use media_loop::{Command, LoopHandle};

pub use confgate_signalling::sdp::Codec;

/// The conference id.
pub type RoomId = String;
/// The user id. Unique across the conferences one [`Media`] serves.
pub type MemberId = String;

/// One of the two connections of a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The browser sends its camera and microphone (the browser offers).
    Publish,
    /// The browser receives the other members (the server offers).
    Subscribe,
}

/// What the media plane tells the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// A new subscriber offer for `member` (members came or went): send it to the browser and
    /// call [`Media::subscriber_answer`] with the reply.
    SubscriberOffer { member: MemberId, offer_sdp: String },
    /// A leg is connected (ICE and DTLS are up). May repeat after a `Disconnected`.
    Connected { member: MemberId, leg: Leg },
    /// A leg lost connectivity, failed, or was closed.
    Disconnected { member: MemberId, leg: Leg },
    /// `member` started or stopped speaking, judged from the RFC 6464 audio levels its browser
    /// sends: debounced (300 ms of voice to start, 800 ms of quiet to stop) and at most one new
    /// speaker per second per room, so a main video that follows the latest `speaking: true`
    /// does not flicker. `speaking: false` also comes when a speaking member is removed, its
    /// publish leg fails, or its audio forwarding is switched off. Members whose browser does
    /// not send the audio level never speak.
    Speaking {
        room: RoomId,
        member: MemberId,
        speaking: bool,
    },
    /// `member`'s browser asked for a keyframe of the MCU's picture. An RTCP PLI went to the
    /// MCU already; many MCUs (ffmpeg among them) ignore it, so the control plane should also
    /// send SIP INFO picture_fast_update on the member's MCU call. Coalesced: at most one per
    /// 500 ms while a keyframe is outstanding, repeated every 500 ms while the member's video
    /// from the MCU waits for one.
    McuKeyframeRequest { member: MemberId },
}

/// The local RTP ports of a member's MCU leg, for the SDP offer to the MCU (RTCP on the same
/// port, `a=rtcp-mux`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McuLegPorts {
    pub audio: SocketAddr,
    pub video: SocketAddr,
    /// The codec the member's browser sends its audio with, when it publishes audio: the one
    /// audio codec to offer the MCU (the bridge does not transcode).
    pub audio_codec: Option<Codec>,
    /// The same for video.
    pub video_codec: Option<Codec>,
}

/// Where the MCU wants one stream, from its SDP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McuStream {
    /// The MCU's RTP address; replaced by the source of the MCU's RTP once it sends
    /// (symmetric RTP, same host only).
    pub remote: SocketAddr,
    /// Where the MCU takes RTCP (the server's reports, PLI). When it equals `remote` (the MCU
    /// muxes), it follows `remote` as symmetric RTP moves it.
    pub rtcp: SocketAddr,
    /// The payload type the MCU's answer chose; the member's media goes out with it, and only
    /// the MCU's packets with it are taken.
    pub payload_type: u8,
    /// The RTP clock rate of that payload type.
    pub clock_rate: u32,
    /// The codec of that payload type. The member's media goes to the MCU only when it is
    /// sent with this codec; the MCU's comes to the member's subscriber connection as it is
    /// (Opus, G.711, VP8 or H.264).
    pub codec: Codec,
    /// Whether this is the video stream (it must agree with the argument it is passed as).
    pub video: bool,
}

/// Why a request failed, and whose fault it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The peer's SDP is not usable (peer's fault).
    #[error("bad SDP: {0}")]
    BadSdp(String),
    /// The peer's ICE candidate is not a candidate (peer's fault).
    #[error("bad ICE candidate: {0}")]
    BadCandidate(String),
    /// The peer offered nothing the server can receive (peer incompatible).
    #[error("incompatible peer: {0}")]
    Incompatible(String),
    /// No member by that id on this server (caller's mistake, or the member was removed).
    #[error("no such member: {0}")]
    NoSuchMember(MemberId),
    /// The member is already in another conference (caller's mistake).
    #[error("member {member} is in room {room}")]
    OtherRoom { member: MemberId, room: RoomId },
    /// There is no subscriber offer waiting for this answer (caller's mistake).
    #[error("no subscriber offer is waiting for an answer from {0}")]
    NoOfferPending(MemberId),
    /// Binding or using the UDP socket failed (infrastructure).
    #[error("media socket: {0}")]
    Io(#[from] std::io::Error),
    /// `connect_mcu_leg` before `open_mcu_leg` (caller's mistake).
    #[error("no MCU leg is open for {0}")]
    NoMcuLeg(MemberId),
    /// The media loop has stopped (shut down, or its runtime is gone).
    #[error("the media loop has stopped")]
    Closed,
    /// rtc failed where it should not have (a bug here or in rtc).
    #[error("internal WebRTC failure: {0}")]
    Internal(String),
}

/// The `[media]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// The UDP port of the first media loop; loop `n` uses `udp_port + n`. 0 means any free
    /// port for each loop (tests). Default 40000.
    pub udp_port: u16,
    /// Addresses announced as host candidates, for a server behind 1:1 NAT.
    /// Default: `bind_ip` if it is a specific address, else the addresses of the interfaces.
    pub announced_ips: Vec<IpAddr>,
    /// Number of media loops; 0 means one per core. Default 0.
    pub loops: usize,
    /// The address the media sockets bind to. Default: none, meaning 0.0.0.0 (every IPv4
    /// interface). A server with several addresses should bind one, or announce one: inbound
    /// packets are attributed to the first candidate address.
    pub bind_ip: Option<IpAddr>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            udp_port: 40000,
            announced_ips: Vec::new(),
            loops: 0,
            bind_ip: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaConfigError {
    #[error("udp_port {port} + {loops} loops runs past port 65535")]
    PortRange { port: u16, loops: usize },
    #[error("announced_ips must not contain unspecified addresses like {0}")]
    Unspecified(IpAddr),
}

impl MediaConfig {
    pub fn validate(&self) -> Result<(), MediaConfigError> {
        if self.udp_port != 0
            && usize::from(self.udp_port) + self.loops.max(1) - 1 > usize::from(u16::MAX)
        {
            return Err(MediaConfigError::PortRange {
                port: self.udp_port,
                loops: self.loops,
            });
        }
        if let Some(ip) = self.announced_ips.iter().find(|ip| ip.is_unspecified()) {
            return Err(MediaConfigError::Unspecified(*ip));
        }
        Ok(())
    }

    fn loop_count(&self) -> usize {
        match self.loops {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

/// The media streams a node carries now: its load, next to its members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaLoad {
    /// Streams received: tracks browsers publish, and streams from MCUs.
    pub incoming: u64,
    /// Streams sent: copies of tracks to subscriber connections, and streams to MCUs.
    pub outgoing: u64,
}

impl MediaLoad {
    pub fn total(&self) -> u64 {
        self.incoming + self.outgoing
    }
}

/// Packet counters, summed over every loop since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// RTP packets received from publishers.
    pub packets_received: u64,
    /// RTP packets written to subscribers (one per copy).
    pub packets_forwarded: u64,
    /// Packets or copies that could not be forwarded: no such track, a payload type the
    /// subscriber did not negotiate, a straggler across an SSRC switch, rtc or the socket
    /// refused it.
    pub packets_dropped: u64,
    /// Copies withheld on purpose: forwarding switched off, or video waiting for a keyframe.
    pub packets_withheld: u64,
    /// Datagrams that matched no connection (garbage, unknown ufrag, unknown address).
    pub datagrams_unrouted: u64,
    /// Connectivity checks that reached a subscribe connection before its first answer,
    /// kept and answered once the answer was applied.
    pub early_checks: u64,
    /// Packets sent again on a subscriber's NACK.
    pub packets_retransmitted: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) forwarded: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) withheld: AtomicU64,
    pub(crate) unrouted: AtomicU64,
    pub(crate) early_checks: AtomicU64,
    pub(crate) retransmitted: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// 4096 events: lifecycle events come a few per member per minute, so this absorbs a control
/// plane that stalls for a long while. When it is full a loop keeps further events in its own
/// queue and retries (never drops them); a loop never blocks on it.
const EVENT_CAPACITY: usize = 4096;

/// Which loop serves which room and member. Touched by control-plane calls only.
#[derive(Debug, Default)]
struct Directory {
    /// Room -> (loop, members).
    rooms: HashMap<RoomId, (usize, usize)>,
    /// Member -> (room, loop).
    members: HashMap<MemberId, (RoomId, usize)>,
    /// Rooms per loop, for choosing the least loaded.
    load: Vec<usize>,
}

impl Directory {
    fn assign(&mut self, room: &str, member: &str) -> Result<usize, MediaError> {
        if let Some((r, index)) = self.members.get(member) {
            if r != room {
                return Err(MediaError::OtherRoom {
                    member: member.to_owned(),
                    room: r.clone(),
                });
            }
            return Ok(*index);
        }
        let index = match self.rooms.get_mut(room) {
            Some((index, count)) => {
                *count += 1;
                *index
            }
            None => {
                let index = (0..self.load.len())
                    .min_by_key(|i| self.load[*i])
                    .unwrap_or(0);
                if let Some(load) = self.load.get_mut(index) {
                    *load += 1;
                }
                self.rooms.insert(room.to_owned(), (index, 1));
                index
            }
        };
        self.members
            .insert(member.to_owned(), (room.to_owned(), index));
        Ok(index)
    }

    fn find(&self, member: &str) -> Option<usize> {
        self.members.get(member).map(|(_, index)| *index)
    }

    fn release(&mut self, member: &str) -> Option<usize> {
        let (room, index) = self.members.remove(member)?;
        if let Some((_, count)) = self.rooms.get_mut(&room) {
            *count -= 1;
            if *count == 0 {
                self.rooms.remove(&room);
                if let Some(load) = self.load.get_mut(index) {
                    *load = load.saturating_sub(1);
                }
            }
        }
        Some(index)
    }
}

struct Inner {
    loops: Vec<LoopHandle>,
    /// A std mutex, never held across an await: directory updates are short and happen only on
    /// control-plane calls.
    directory: Mutex<Directory>,
    events: Mutex<Option<mpsc::Receiver<MediaEvent>>>,
    counters: Arc<Counters>,
}

/// The handle to the media plane. Cheap to clone; every clone talks to the same loops.
#[derive(Clone)]
pub struct Media {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media")
            .field("loops", &self.inner.loops.len())
            .field("local_addr", &self.local_addr())
            .finish()
    }
}

impl Media {
    /// Binds the socket(s) and starts the loop(s), each on a thread of its own.
    pub async fn start(config: &MediaConfig) -> Result<Media, MediaError> {
        let (events_tx, events_rx) = mpsc::channel(EVENT_CAPACITY);
        let counters = Arc::new(Counters::default());
        let count = config.loop_count();
        let mut loops = Vec::with_capacity(count);
        for n in 0..count {
            let port = match config.udp_port {
                0 => 0,
                p => p.saturating_add(u16::try_from(n).unwrap_or(u16::MAX)),
            };
            loops.push(
                media_loop::spawn(config, port, events_tx.clone(), Arc::clone(&counters)).await?,
            );
        }
        let directory = Directory {
            load: vec![0; loops.len()],
            ..Directory::default()
        };
        Ok(Media {
            inner: Arc::new(Inner {
                loops,
                directory: Mutex::new(directory),
                events: Mutex::new(Some(events_rx)),
                counters,
            }),
        })
    }

    /// The UDP address the first loop is bound to (for tests with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner
            .loops
            .first()
            .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |l| l.local_addr)
    }

    /// The UDP addresses of every loop.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner.loops.iter().map(|l| l.local_addr).collect()
    }

    fn directory(&self) -> std::sync::MutexGuard<'_, Directory> {
        // A panic while holding the lock leaves a consistent map (every update is one insert or
        // remove), so a poisoned lock is still usable.
        self.inner
            .directory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn loop_for(&self, member: &str) -> Result<&LoopHandle, MediaError> {
        let index = self
            .directory()
            .find(member)
            .ok_or_else(|| MediaError::NoSuchMember(member.to_owned()))?;
        self.inner.loops.get(index).ok_or(MediaError::Closed)
    }

    fn assign(&self, room: &str, member: &str) -> Result<&LoopHandle, MediaError> {
        let index = self.directory().assign(room, member)?;
        self.inner.loops.get(index).ok_or(MediaError::Closed)
    }

    async fn call<T>(
        handle: &LoopHandle,
        command: impl FnOnce(oneshot::Sender<Result<T, MediaError>>) -> Command,
    ) -> Result<T, MediaError> {
        let (reply, answer) = oneshot::channel();
        handle
            .commands
            .send(command(reply))
            .map_err(|_| MediaError::Closed)?;
        answer.await.map_err(|_| MediaError::Closed)?
    }

    /// The browser's publish offer -> the server's answer SDP. A new offer from the same
    /// browser connection (same ICE ufrag) renegotiates it; an offer from a new connection
    /// replaces the old one.
    pub async fn publish(
        &self,
        room: RoomId,
        member: MemberId,
        offer_sdp: String,
    ) -> Result<String, MediaError> {
        let handle = self.assign(&room, &member)?;
        Self::call(handle, |reply| Command::Publish {
            room,
            member,
            offer_sdp,
            reply,
        })
        .await
    }

    /// Opens (or reopens) the subscriber connection and returns the server's offer SDP (it
    /// includes every other member's tracks present now).
    pub async fn subscribe(&self, room: RoomId, member: MemberId) -> Result<String, MediaError> {
        let handle = self.assign(&room, &member)?;
        Self::call(handle, |reply| Command::Subscribe {
            room,
            member,
            reply,
        })
        .await
    }

    /// The browser's answer to the last subscriber offer.
    pub async fn subscriber_answer(
        &self,
        member: MemberId,
        answer_sdp: String,
    ) -> Result<(), MediaError> {
        let handle = self.loop_for(&member)?;
        Self::call(handle, |reply| Command::SubscriberAnswer {
            member,
            answer_sdp,
            reply,
        })
        .await
    }

    /// A trickled remote ICE candidate (the `a=candidate` value, as the browser sends it).
    /// Under ICE-lite the server does not need it; a valid candidate is accepted, an empty one
    /// (end of candidates) too, garbage is [`MediaError::BadCandidate`].
    pub async fn remote_candidate(
        &self,
        member: MemberId,
        leg: Leg,
        candidate: String,
    ) -> Result<(), MediaError> {
        let handle = self.loop_for(&member)?;
        Self::call(handle, |reply| Command::RemoteCandidate {
            member,
            leg,
            candidate,
            reply,
        })
        .await
    }

    /// Stops or resumes forwarding of a member's audio / video at the server. Video resumes at
    /// a keyframe, which is requested from the member's browser.
    pub async fn set_forwarding(
        &self,
        member: MemberId,
        audio: bool,
        video: bool,
    ) -> Result<(), MediaError> {
        let handle = self.loop_for(&member)?;
        Self::call(handle, |reply| Command::SetForwarding {
            member,
            audio,
            video,
            reply,
        })
        .await
    }

    /// Closes both connections of a member; the others get a renegotiation offer without its
    /// tracks. Unknown members are ignored.
    pub async fn remove_member(&self, member: MemberId) {
        let index = self.directory().release(&member);
        let Some(handle) = index.and_then(|i| self.inner.loops.get(i)) else {
            return;
        };
        // Ignore the result: a stopped loop has no member left to remove.
        let _ = Self::call(handle, |reply| Command::RemoveMember { member, reply }).await;
    }

    /// Opens `member`'s plain-RTP leg toward the MCU: binds one UDP socket for audio and one
    /// for video (the loop's bind address, any free ports) and returns them for the SDP offer
    /// to the MCU. The member must exist (`publish` or `subscribe` called first), else
    /// [`MediaError::NoSuchMember`]. Opening an open leg returns its ports again.
    pub async fn open_mcu_leg(&self, member: MemberId) -> Result<McuLegPorts, MediaError> {
        let handle = self.loop_for(&member)?;
        Self::call(handle, |reply| Command::OpenMcuLeg { member, reply }).await
    }

    /// Starts the MCU leg with where the MCU wants each stream (from its SDP answer); `None`
    /// means that kind is not bridged. The member's published media goes to the MCU; the
    /// MCU's comes to the member's subscriber connection as tracks of stream "mcu" (a
    /// [`MediaEvent::SubscriberOffer`] follows when they are new). Calling it again (a
    /// re-INVITE) updates the addresses and keeps the tracks whose codec is unchanged.
    pub async fn connect_mcu_leg(
        &self,
        member: MemberId,
        audio: Option<McuStream>,
        video: Option<McuStream>,
    ) -> Result<(), MediaError> {
        let handle = self.loop_for(&member)?;
        Self::call(handle, |reply| Command::ConnectMcuLeg {
            member,
            audio,
            video,
            reply,
        })
        .await
    }

    /// Asks `member`'s browser for a keyframe of its published video (the MCU asked, by SIP
    /// INFO picture_fast_update). Rate-limited like every keyframe request; unknown members and
    /// members without video are ignored.
    pub async fn request_keyframe(&self, member: MemberId) {
        let Ok(handle) = self.loop_for(&member) else {
            return;
        };
        let _ = Self::call(handle, |reply| Command::RequestKeyframe { member, reply }).await;
    }

    /// Closes `member`'s MCU leg: its sockets, and the "mcu" tracks of its subscriber
    /// connection (which gets a renegotiation offer). Unknown members and legs are ignored;
    /// `remove_member` closes the leg too.
    pub async fn close_mcu_leg(&self, member: MemberId) {
        let Ok(handle) = self.loop_for(&member) else {
            return;
        };
        let _ = Self::call(handle, |reply| Command::CloseMcuLeg { member, reply }).await;
    }

    /// Events for the control plane; the receiver can be taken once.
    pub fn take_events(&self) -> Option<mpsc::Receiver<MediaEvent>> {
        self.inner
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// The streams every loop carries now. A loop that has stopped counts for nothing.
    pub async fn load(&self) -> MediaLoad {
        let mut load = MediaLoad::default();
        for handle in &self.inner.loops {
            if let Ok(l) = Self::call(handle, |reply| Command::Load { reply }).await {
                load.incoming += l.incoming;
                load.outgoing += l.outgoing;
            }
        }
        load
    }

    /// Counters for tests and metrics.
    pub fn stats(&self) -> MediaStats {
        let c = &self.inner.counters;
        MediaStats {
            packets_received: c.received.load(Ordering::Relaxed),
            packets_forwarded: c.forwarded.load(Ordering::Relaxed),
            packets_dropped: c.dropped.load(Ordering::Relaxed),
            packets_withheld: c.withheld.load(Ordering::Relaxed),
            datagrams_unrouted: c.unrouted.load(Ordering::Relaxed),
            early_checks: c.early_checks.load(Ordering::Relaxed),
            packets_retransmitted: c.retransmitted.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(MediaConfig::default().validate(), Ok(()));
    }

    #[test]
    fn port_zero_means_any_port() {
        let zero = MediaConfig {
            udp_port: 0,
            loops: 4,
            ..MediaConfig::default()
        };
        assert_eq!(zero.validate(), Ok(()));
    }

    #[test]
    fn rejects_bad_plans() {
        let past = MediaConfig {
            udp_port: 65535,
            loops: 2,
            ..MediaConfig::default()
        };
        assert!(matches!(
            past.validate(),
            Err(MediaConfigError::PortRange { .. })
        ));
        let any = MediaConfig {
            announced_ips: vec!["0.0.0.0".parse().expect("ip")],
            ..MediaConfig::default()
        };
        assert!(matches!(
            any.validate(),
            Err(MediaConfigError::Unspecified(_))
        ));
    }

    #[test]
    fn old_configs_still_parse() {
        let config: MediaConfig =
            toml_like("udp_port = 41000\nannounced_ips = [\"192.0.2.1\"]\nloops = 2\n");
        assert_eq!(config.bind_ip, None);
        assert_eq!(config.udp_port, 41000);
    }

    fn toml_like(json: &str) -> MediaConfig {
        toml::from_str(json).expect("config")
    }

    #[test]
    fn directory_keeps_a_room_on_one_loop_and_balances_rooms() {
        let mut d = Directory {
            load: vec![0, 0],
            ..Directory::default()
        };
        let a = d.assign("r1", "a").expect("a");
        let b = d.assign("r1", "b").expect("b");
        assert_eq!(a, b);
        let c = d.assign("r2", "c").expect("c");
        assert_ne!(a, c);
        assert!(matches!(
            d.assign("r2", "a"),
            Err(MediaError::OtherRoom { .. })
        ));
        assert_eq!(d.find("b"), Some(a));
        assert_eq!(d.release("a"), Some(a));
        assert_eq!(d.release("a"), None);
        assert_eq!(d.release("b"), Some(a));
        // r1 is gone: its loop is the least loaded again.
        assert_eq!(d.assign("r3", "d").expect("d"), a);
    }
}
