//! SDP (RFC 4566, offer/answer per RFC 3264) for the plain-RTP leg between
//! confgate and the MCU, as pure code.
//!
//! Each web member bound to a SIP conference gets one call into the MCU. The
//! media of that call is plain RTP (`RTP/AVP`: no SRTP, no ICE, no bundle):
//! one audio and one video stream, each to the address and port the MCU names.
//!
//! ```text
//!  OfferParams ──► offer() ──► INVITE body ──────────────► MCU
//!  200 OK body ──► answer(sdp, offered) ──► LegAnswer { audio, video }
//!  re-INVITE body ──► answer_to(sdp, &OfferParams) ──► (our answer body, LegAnswer)
//! ```
//!
//! Codecs are matched by `rtpmap` name and clock rate, never by payload type
//! number alone: an answer may renumber dynamic payload types. The static
//! types 0 (PCMU) and 8 (PCMA) are recognised without an `rtpmap`.
//!
//! What this module does not do: ICE, DTLS/SRTP, `bundle`, simulcast, more
//! than one stream per media kind (extra m-lines of a kind are ignored, and
//! rejected in [`answer_to`]), matching H.264 `fmtp` parameters
//! (packetization-mode, profile) between offer and answer, or bandwidth
//! (`b=`) lines.
//!
//! Every input is bounded ([`MAX_SDP_BYTES`], [`MAX_MEDIA`]) and every
//! malformed input is an [`SdpError`], never a panic.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// The largest SDP body [`answer`] and [`answer_to`] accept, in bytes.
pub const MAX_SDP_BYTES: usize = 16 * 1024;

/// The most m-lines [`answer`] and [`answer_to`] accept in one SDP.
pub const MAX_MEDIA: usize = 16;

/// The dynamic payload type confgate offers Opus on.
pub const OPUS_PT: u8 = 111;
/// The dynamic payload type confgate offers VP8 on.
pub const VP8_PT: u8 = 96;
/// The dynamic payload type confgate offers H.264 on.
pub const H264_PT: u8 = 97;

const OPUS_FMTP: &str = "useinbandfec=1";
const H264_FMTP: &str = "profile-level-id=42e01f;packetization-mode=1";

/// Codecs the bridge can carry without transcoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Opus, 48 kHz stereo framing (RFC 7587).
    Opus,
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// VP8 (RFC 7741).
    Vp8,
    /// H.264 (RFC 6184), offered as constrained baseline, packetization-mode 1.
    H264,
}

impl Codec {
    /// Every codec, audio first.
    pub const ALL: [Codec; 5] = [
        Codec::Opus,
        Codec::Pcmu,
        Codec::Pcma,
        Codec::Vp8,
        Codec::H264,
    ];

    /// Parses a configuration name: `opus`, `pcmu`, `pcma`, `vp8`, `h264`,
    /// in any case.
    pub fn parse(name: &str) -> Option<Codec> {
        Codec::ALL
            .into_iter()
            .find(|c| c.rtpmap_name().eq_ignore_ascii_case(name))
    }

    /// Whether the codec goes on the audio m-line (else on the video one).
    pub fn is_audio(self) -> bool {
        matches!(self, Codec::Opus | Codec::Pcmu | Codec::Pcma)
    }

    /// The RTP clock rate, in Hz.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            Codec::Pcmu | Codec::Pcma => 8_000,
            Codec::Vp8 | Codec::H264 => 90_000,
        }
    }

    /// The encoding name as written in `a=rtpmap`.
    pub fn rtpmap_name(self) -> &'static str {
        match self {
            Codec::Opus => "opus",
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Vp8 => "VP8",
            Codec::H264 => "H264",
        }
    }

    /// The static payload type (RFC 3551), if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            _ => None,
        }
    }

    /// The payload type confgate offers this codec on.
    pub fn offered_payload_type(self) -> u8 {
        match self {
            Codec::Opus => OPUS_PT,
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::Vp8 => VP8_PT,
            Codec::H264 => H264_PT,
        }
    }

    /// The `a=rtpmap` value after the payload type, e.g. `opus/48000/2`.
    fn rtpmap(self) -> String {
        match self {
            Codec::Opus => "opus/48000/2".to_owned(),
            c => format!("{}/{}", c.rtpmap_name(), c.clock_rate()),
        }
    }

    /// The `a=fmtp` parameters confgate offers, if any.
    fn offered_fmtp(self) -> Option<&'static str> {
        match self {
            Codec::Opus => Some(OPUS_FMTP),
            Codec::H264 => Some(H264_FMTP),
            _ => None,
        }
    }

    /// The codec's name in lower case, as configurations and the page spell it: `opus`, `vp8`.
    pub fn lower_name(self) -> String {
        self.rtpmap_name().to_ascii_lowercase()
    }
}

/// The direction attribute of one stream, as written by the peer (RFC 3264
/// §5.1): [`Direction::SendOnly`] means the peer sends and will not receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv`, the default.
    #[default]
    SendRecv,
    /// `a=sendonly`: the peer sends only (it holds us, or is a listen-only source).
    SendOnly,
    /// `a=recvonly`: the peer receives only.
    RecvOnly,
    /// `a=inactive`: no media either way.
    Inactive,
}

impl Direction {
    fn parse(attr: &str) -> Option<Direction> {
        match attr {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The attribute name, e.g. `sendrecv`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Whether the side that wrote this direction sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side that wrote this direction receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The direction the other side answers with (sendonly ↔ recvonly).
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    fn without_receive(self) -> Direction {
        match self {
            Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
            Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
        }
    }
}

/// One negotiated stream of the leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec both sides use.
    pub codec: Codec,
    /// The payload type the peer uses for it (the peer's number, which may
    /// differ from the one we offered).
    pub payload_type: u8,
    /// Where to send RTP.
    pub remote: SocketAddr,
    /// Where to send RTCP: `remote` when the peer muxes (`a=rtcp-mux`), the
    /// port of `a=rtcp` (RFC 3605) when it names one, else the next port up
    /// (RFC 3550 §11).
    pub rtcp: SocketAddr,
    /// The peer's `a=fmtp` parameters for that payload type.
    pub fmtp: Option<String>,
    /// The peer's direction. A connection address of `0.0.0.0` or `::`
    /// (RFC 2543 hold) clears its receive half.
    pub direction: Direction,
}

/// What an SDP from the MCU settles for the leg: `None` for a stream that is
/// absent, rejected (port 0) or has no codec in common.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegAnswer {
    /// The audio stream.
    pub audio: Option<Negotiated>,
    /// The video stream.
    pub video: Option<Negotiated>,
}

/// Our side of the leg, for [`offer`] and [`answer_to`].
#[derive(Debug, Clone, Copy)]
pub struct OfferParams<'a> {
    /// The `o=` session id; keep it for the life of the dialog.
    pub session_id: u64,
    /// The `o=` version; increment it for each new SDP in the dialog.
    pub version: u64,
    /// The address the MCU sends RTP to (`c=` and `o=`).
    pub local_ip: IpAddr,
    /// Our audio RTP port; `None` leaves audio out.
    pub audio_port: Option<u16>,
    /// Our video RTP port; `None` leaves video out.
    pub video_port: Option<u16>,
    /// The codecs we carry, in order of preference.
    pub codecs: &'a [Codec],
}

/// Why an SDP was refused or could not be built.
///
/// [`SdpError::Malformed`], [`SdpError::TooLarge`] and
/// [`SdpError::MissingConnection`] mean the peer sent garbage;
/// [`SdpError::NoSharedCodec`] means it is well-formed but incompatible;
/// [`SdpError::NothingToOffer`] means the caller asked for an empty offer.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// A line (1-based) could not be parsed.
    #[error("malformed SDP at line {line}: {reason}")]
    Malformed {
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The SDP is longer than [`MAX_SDP_BYTES`] or has more than [`MAX_MEDIA`] m-lines.
    #[error("the SDP exceeds {MAX_SDP_BYTES} bytes or {MAX_MEDIA} m-lines")]
    TooLarge,
    /// An accepted stream has no `c=` line, neither its own nor the session's.
    #[error("an accepted media stream has no connection (c=) line")]
    MissingConnection,
    /// No live stream of the peer's SDP carries a codec we offered.
    #[error(
        "the MCU shares no codec with us: we offered {}; it answered {}",
        join_or_none(offered),
        join_or_none(answered)
    )]
    NoSharedCodec {
        /// Our codecs, e.g. `opus`, `vp8`.
        offered: Vec<String>,
        /// The peer's formats on its live m-lines, e.g. `G729/8000`.
        answered: Vec<String>,
    },
    /// No m-line would be offered: no port or no codec for either kind.
    #[error("nothing to offer: no media kind has both a port and a codec")]
    NothingToOffer,
}

fn join_or_none(list: &[String]) -> String {
    if list.is_empty() {
        "nothing".to_owned()
    } else {
        list.join(", ")
    }
}

/// The SDP offer confgate sends in the INVITE.
///
/// One audio m-line (the audio codecs of `codecs`, in order: PCMU 0, PCMA 8,
/// Opus 111 as `opus/48000/2` with `useinbandfec=1`) and one video m-line (VP8
/// 96, H.264 97 with `profile-level-id=42e01f;packetization-mode=1`, each with
/// `nack pli` and `ccm fir` feedback), both `sendrecv`, CRLF line
/// endings. An m-line is left out when its port is `None` or it has no codec.
pub fn offer(p: &OfferParams) -> Result<String, SdpError> {
    let audio = kind_codecs(p.codecs, true);
    let video = kind_codecs(p.codecs, false);
    let mut sdp = session_header(p);
    let mut any = false;
    for (port, codecs, kind) in [
        (p.audio_port, audio, "audio"),
        (p.video_port, video, "video"),
    ] {
        let Some(port) = port else { continue };
        if codecs.is_empty() {
            continue;
        }
        any = true;
        let streams: Vec<(Codec, u8, Option<&str>)> = codecs
            .iter()
            .map(|&c| (c, c.offered_payload_type(), c.offered_fmtp()))
            .collect();
        write_media(&mut sdp, kind, port, &streams, Direction::SendRecv);
        // RTCP on the RTP port: muxed (RFC 5761), or, for a peer that does
        // not mux, sent there anyway (RFC 3605). The leg has one socket per
        // kind.
        let _ = write!(sdp, "a=rtcp:{port}\r\na=rtcp-mux\r\n");
    }
    if any {
        Ok(sdp)
    } else {
        Err(SdpError::NothingToOffer)
    }
}

/// Reads the MCU's answer to our [`offer`] (or the offer of its re-INVITE,
/// for hold, unhold or a codec change).
///
/// For the first audio and the first video m-line: the first payload type
/// (in the peer's order) whose codec is in `offered`, matched by `rtpmap`
/// name and clock rate (or the static types 0 and 8 without `rtpmap`); the
/// remote address (media `c=` over session `c=`; port 0 means rejected); the
/// direction (media over session); and the `fmtp` for that payload type.
///
/// A live m-line with no codec in common yields `None` for that kind; when no
/// stream at all is negotiated although the peer kept one alive, the result is
/// [`SdpError::NoSharedCodec`]. An SDP whose m-lines are all rejected yields a
/// [`LegAnswer`] with both streams `None`.
pub fn answer(sdp: &str, offered: &[Codec]) -> Result<LegAnswer, SdpError> {
    let session = parse(sdp)?;
    let mut unmatched = Vec::new();
    let mut leg = LegAnswer {
        audio: None,
        video: None,
    };
    for (audio, slot) in [(true, &mut leg.audio), (false, &mut leg.video)] {
        let Some(media) = session.first_of(audio) else {
            continue;
        };
        *slot = negotiate(&session, media, offered, &mut unmatched)?.map(|(n, _)| n);
    }
    if leg.audio.is_none() && leg.video.is_none() && !unmatched.is_empty() {
        return Err(no_shared_codec(offered, unmatched));
    }
    Ok(leg)
}

/// Builds our answer to an offer from the MCU (a re-INVITE or an UPDATE),
/// and says what it settles.
///
/// Every m-line of the offer is answered, in order (RFC 3264 §6): the first
/// audio and first video m-line with the offer's first payload type that is
/// in `local.codecs` (keeping the offer's number and, for H.264, its `fmtp`),
/// our port and the reversed direction; every other m-line, and a kind we
/// have no port for, with port 0. The offer's `o=` line is not echoed: pass
/// the session id of the dialog and the next version in `local`.
///
/// Fails with [`SdpError::NoSharedCodec`] when nothing can be accepted (the
/// shell answers 488 Not Acceptable Here).
pub fn answer_to(offer_sdp: &str, local: &OfferParams) -> Result<(String, LegAnswer), SdpError> {
    let session = parse(offer_sdp)?;
    let first_audio = session.media.iter().position(|m| m.kind == "audio");
    let first_video = session.media.iter().position(|m| m.kind == "video");
    let mut unmatched = Vec::new();
    let mut leg = LegAnswer {
        audio: None,
        video: None,
    };
    let mut sdp = session_header(local);
    for (i, media) in session.media.iter().enumerate() {
        let (port, slot) = if Some(i) == first_audio {
            (local.audio_port, &mut leg.audio)
        } else if Some(i) == first_video {
            (local.video_port, &mut leg.video)
        } else {
            write_rejected(&mut sdp, media);
            continue;
        };
        let Some(port) = port else {
            write_rejected(&mut sdp, media);
            continue;
        };
        match negotiate(&session, media, local.codecs, &mut unmatched)? {
            Some((n, offered_direction)) => {
                let fmtp = match n.codec {
                    Codec::H264 => n.fmtp.as_deref().or(Some(H264_FMTP)),
                    c => c.offered_fmtp(),
                };
                write_media(
                    &mut sdp,
                    &media.kind,
                    port,
                    &[(n.codec, n.payload_type, fmtp)],
                    offered_direction.reversed(),
                );
                // Our RTCP is on our RTP port; mux only when offered (RFC 5761 §5.1.1).
                let _ = write!(sdp, "a=rtcp:{port}\r\n");
                if media.rtcp_mux {
                    sdp.push_str("a=rtcp-mux\r\n");
                }
                *slot = Some(n);
            }
            None => write_rejected(&mut sdp, media),
        }
    }
    if leg.audio.is_none() && leg.video.is_none() {
        return Err(no_shared_codec(local.codecs, unmatched));
    }
    Ok((sdp, leg))
}

fn no_shared_codec(offered: &[Codec], answered: Vec<String>) -> SdpError {
    SdpError::NoSharedCodec {
        offered: offered.iter().map(|c| c.lower_name()).collect(),
        answered,
    }
}

fn kind_codecs(codecs: &[Codec], audio: bool) -> Vec<Codec> {
    let mut out: Vec<Codec> = Vec::new();
    for &c in codecs {
        if c.is_audio() == audio && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

fn addr_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

fn session_header(p: &OfferParams) -> String {
    let at = addr_type(p.local_ip);
    let ip = p.local_ip;
    format!(
        "v=0\r\no=confgate {} {} IN {at} {ip}\r\ns=confgate\r\nc=IN {at} {ip}\r\nt=0 0\r\n",
        p.session_id, p.version
    )
}

// `write!` to a String cannot fail; the results are ignored on purpose.
fn write_media(
    sdp: &mut String,
    kind: &str,
    port: u16,
    streams: &[(Codec, u8, Option<&str>)],
    direction: Direction,
) {
    let _ = write!(sdp, "m={kind} {port} RTP/AVP");
    for (_, pt, _) in streams {
        let _ = write!(sdp, " {pt}");
    }
    sdp.push_str("\r\n");
    for &(codec, pt, fmtp) in streams {
        let _ = write!(sdp, "a=rtpmap:{pt} {}\r\n", codec.rtpmap());
        if let Some(fmtp) = fmtp {
            let _ = write!(sdp, "a=fmtp:{pt} {fmtp}\r\n");
        }
        if !codec.is_audio() {
            let _ = write!(sdp, "a=rtcp-fb:{pt} nack pli\r\n");
            let _ = write!(sdp, "a=rtcp-fb:{pt} ccm fir\r\n");
        }
    }
    let _ = write!(sdp, "a={}\r\n", direction.as_str());
}

fn write_rejected(sdp: &mut String, media: &Media) {
    let fmt = media.fmts.first().map_or("0", String::as_str);
    let _ = write!(sdp, "m={} 0 {} {fmt}\r\n", media.kind, media.proto);
}

/// One `a=rtpmap` entry.
#[derive(Debug)]
struct RtpMap {
    pt: u8,
    name: String,
    clock: u32,
}

/// One parsed m-section.
#[derive(Debug)]
struct Media {
    kind: String,
    port: u16,
    proto: String,
    /// The formats as written; RTP payload types when `proto` is RTP.
    fmts: Vec<String>,
    conn: Option<IpAddr>,
    rtpmaps: Vec<RtpMap>,
    fmtps: Vec<(u8, String)>,
    direction: Option<Direction>,
    rtcp_mux: bool,
    rtcp_port: Option<u16>,
}

/// A parsed SDP, reduced to what the leg needs.
#[derive(Debug, Default)]
struct Session {
    conn: Option<IpAddr>,
    direction: Option<Direction>,
    media: Vec<Media>,
}

impl Session {
    fn first_of(&self, audio: bool) -> Option<&Media> {
        let kind = if audio { "audio" } else { "video" };
        self.media.iter().find(|m| m.kind == kind)
    }
}

/// Negotiates one m-line against `ours`: `Ok(None)` when rejected or
/// nothing is shared (the peer's formats then go to `unmatched` if the line
/// was live). Also returns the peer's direction.
fn negotiate(
    session: &Session,
    media: &Media,
    ours: &[Codec],
    unmatched: &mut Vec<String>,
) -> Result<Option<(Negotiated, Direction)>, SdpError> {
    if media.port == 0 {
        return Ok(None);
    }
    let audio = media.kind == "audio";
    let rtp = matches!(media.proto.as_str(), "RTP/AVP" | "RTP/AVPF");
    let mut chosen = None;
    for fmt in &media.fmts {
        let pt = if rtp { fmt.parse::<u8>().ok() } else { None };
        let codec = pt.and_then(|pt| {
            codec_of(media, pt).filter(|c| c.is_audio() == audio && ours.contains(c))
        });
        match (pt, codec) {
            (Some(pt), Some(codec)) => {
                chosen = Some((pt, codec));
                break;
            }
            (Some(pt), None) => unmatched.push(format_name(media, pt)),
            (None, _) => unmatched.push(format!("{} {fmt}", media.proto)),
        }
    }
    let Some((payload_type, codec)) = chosen else {
        return Ok(None);
    };
    let ip = media
        .conn
        .or(session.conn)
        .ok_or(SdpError::MissingConnection)?;
    let direction = media.direction.or(session.direction).unwrap_or_default();
    let fmtp = media
        .fmtps
        .iter()
        .find(|(p, _)| *p == payload_type)
        .map(|(_, f)| f.clone());
    let rtcp_port = if media.rtcp_mux {
        media.port
    } else {
        media
            .rtcp_port
            .unwrap_or_else(|| media.port.checked_add(1).unwrap_or(media.port))
    };
    let negotiated = Negotiated {
        codec,
        payload_type,
        remote: SocketAddr::new(ip, media.port),
        rtcp: SocketAddr::new(ip, rtcp_port),
        fmtp,
        direction: if ip.is_unspecified() {
            direction.without_receive()
        } else {
            direction
        },
    };
    Ok(Some((negotiated, direction)))
}

/// The codec a payload type stands for: by `rtpmap` when present, else by
/// the static table.
fn codec_of(media: &Media, pt: u8) -> Option<Codec> {
    match media.rtpmaps.iter().find(|r| r.pt == pt) {
        Some(map) => Codec::ALL.into_iter().find(|c| {
            c.rtpmap_name().eq_ignore_ascii_case(&map.name) && c.clock_rate() == map.clock
        }),
        None => Codec::ALL
            .into_iter()
            .find(|c| c.static_payload_type() == Some(pt)),
    }
}

/// A payload type as a name for error messages, e.g. `G729/8000`.
fn format_name(media: &Media, pt: u8) -> String {
    if let Some(map) = media.rtpmaps.iter().find(|r| r.pt == pt) {
        return format!("{}/{}", map.name, map.clock);
    }
    match pt {
        0 => "PCMU/8000".to_owned(),
        3 => "GSM/8000".to_owned(),
        4 => "G723/8000".to_owned(),
        8 => "PCMA/8000".to_owned(),
        9 => "G722/8000".to_owned(),
        18 => "G729/8000".to_owned(),
        34 => "H263/90000".to_owned(),
        _ => format!("payload type {pt}"),
    }
}

fn malformed(line: usize, reason: impl Into<String>) -> SdpError {
    SdpError::Malformed {
        line,
        reason: reason.into(),
    }
}

fn parse(sdp: &str) -> Result<Session, SdpError> {
    if sdp.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge);
    }
    let mut session = Session::default();
    let mut seen_version = false;
    for (index, raw) in sdp.split('\n').enumerate() {
        let n = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        let (kind, value) = line
            .split_once('=')
            .filter(|(k, _)| k.len() == 1 && k.as_bytes().iter().all(u8::is_ascii_lowercase))
            .ok_or_else(|| malformed(n, "expected <type>=<value>"))?;
        if !seen_version {
            if kind != "v" || value != "0" {
                return Err(malformed(n, "an SDP must start with v=0"));
            }
            seen_version = true;
            continue;
        }
        match kind {
            "v" => return Err(malformed(n, "a second v= line")),
            "m" => {
                if session.media.len() == MAX_MEDIA {
                    return Err(SdpError::TooLarge);
                }
                session.media.push(parse_media(n, value)?);
            }
            "c" => {
                let ip = parse_connection(n, value)?;
                match session.media.last_mut() {
                    Some(m) => m.conn = Some(ip),
                    None => session.conn = Some(ip),
                }
            }
            "a" => parse_attribute(n, value, &mut session)?,
            _ => {}
        }
    }
    if !seen_version {
        return Err(malformed(1, "empty SDP"));
    }
    Ok(session)
}

fn parse_media(n: usize, value: &str) -> Result<Media, SdpError> {
    let mut words = value.split(' ');
    let (Some(kind), Some(port), Some(proto)) = (words.next(), words.next(), words.next()) else {
        return Err(malformed(n, "m= needs <media> <port> <proto> <fmt>..."));
    };
    let port = port.split_once('/').map_or(port, |(p, _)| p);
    let port = port
        .parse::<u16>()
        .map_err(|_| malformed(n, format!("bad m= port {port:?}")))?;
    let fmts: Vec<String> = words.filter(|w| !w.is_empty()).map(str::to_owned).collect();
    if kind.is_empty() || proto.is_empty() || fmts.is_empty() {
        return Err(malformed(n, "m= needs <media> <port> <proto> <fmt>..."));
    }
    Ok(Media {
        kind: kind.to_owned(),
        port,
        proto: proto.to_owned(),
        fmts,
        conn: None,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        direction: None,
        rtcp_mux: false,
        rtcp_port: None,
    })
}

fn parse_connection(n: usize, value: &str) -> Result<IpAddr, SdpError> {
    let mut words = value.split(' ');
    let (Some("IN"), Some(at @ ("IP4" | "IP6")), Some(addr), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(malformed(n, "c= must be IN IP4|IP6 <address>"));
    };
    // Multicast addresses carry /ttl[/count]; the address is before the slash.
    let addr = addr.split_once('/').map_or(addr, |(a, _)| a);
    let ip = addr
        .parse::<IpAddr>()
        .map_err(|_| malformed(n, format!("bad c= address {addr:?}")))?;
    if addr_type(ip) != at {
        return Err(malformed(n, format!("{addr} is not an {at} address")));
    }
    Ok(ip)
}

fn parse_attribute(n: usize, value: &str, session: &mut Session) -> Result<(), SdpError> {
    if let Some(direction) = Direction::parse(value) {
        match session.media.last_mut() {
            Some(m) => m.direction = Some(direction),
            None => session.direction = Some(direction),
        }
        return Ok(());
    }
    // rtpmap, fmtp and the RTCP attributes only mean something inside an
    // m-section.
    let Some(media) = session.media.last_mut() else {
        return Ok(());
    };
    if value == "rtcp-mux" {
        media.rtcp_mux = true;
        return Ok(());
    }
    let Some((name, rest)) = value.split_once(':') else {
        return Ok(());
    };
    match name {
        "rtcp" => {
            // RFC 3605: a=rtcp:<port> [IN IP4 <address>]; the address is
            // ignored (it is the connection address in practice).
            let port = rest.split(' ').next().unwrap_or("");
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| malformed(n, format!("bad a=rtcp port {port:?}")))?;
            media.rtcp_port = Some(port);
        }
        "rtpmap" => {
            let (pt, encoding) = pt_and_rest(n, rest)?;
            let mut parts = encoding.split('/');
            let (Some(name), Some(clock)) = (parts.next(), parts.next()) else {
                return Err(malformed(n, "rtpmap needs <name>/<clock rate>"));
            };
            let clock = clock
                .parse::<u32>()
                .map_err(|_| malformed(n, format!("bad rtpmap clock rate {clock:?}")))?;
            if name.is_empty() {
                return Err(malformed(n, "rtpmap has an empty encoding name"));
            }
            media.rtpmaps.push(RtpMap {
                pt,
                name: name.to_owned(),
                clock,
            });
        }
        "fmtp" => {
            let (pt, params) = pt_and_rest(n, rest)?;
            media.fmtps.push((pt, params.trim().to_owned()));
        }
        _ => {}
    }
    Ok(())
}

fn pt_and_rest(n: usize, rest: &str) -> Result<(u8, &str), SdpError> {
    let (pt, tail) = rest
        .split_once(' ')
        .ok_or_else(|| malformed(n, "expected <payload type> <value>"))?;
    let pt = pt
        .parse::<u8>()
        .ok()
        .filter(|pt| *pt < 128)
        .ok_or_else(|| malformed(n, format!("bad payload type {pt:?}")))?;
    Ok((pt, tail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5));
    const MCU: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    const ALL: &[Codec] = &[Codec::Opus, Codec::Pcmu, Codec::Vp8, Codec::H264];

    fn params(codecs: &[Codec]) -> OfferParams<'_> {
        OfferParams {
            session_id: 4242,
            version: 1,
            local_ip: LOCAL,
            audio_port: Some(30000),
            video_port: Some(30002),
            codecs,
        }
    }

    /// The SDP body of the 200 OK in `shared/sip-scenarios/uas_answer.xml`
    /// (VP8) and `uas_answer_h264.xml`, copied verbatim with its `[fields]`.
    const SIPP_VP8: &str = "v=0
o=sipp-mcu 1 1 IN IP4 [mcu_ip]
s=sipp-mcu
c=IN IP4 [mcu_ip]
t=0 0
m=audio [mcu_aport] RTP/AVP [$opus_pt] 0
a=rtpmap:[$opus_pt] opus/48000/2
a=rtpmap:0 PCMU/8000
a=sendrecv
m=video [mcu_vport] RTP/AVP [$vp8_pt]
a=rtpmap:[$vp8_pt] VP8/90000
a=rtcp-fb:[$vp8_pt] nack pli
a=rtcp-fb:[$vp8_pt] ccm fir
a=sendrecv
";
    const SIPP_H264: &str = "v=0
o=sipp-mcu 1 1 IN IP4 [mcu_ip]
s=sipp-mcu
c=IN IP4 [mcu_ip]
t=0 0
m=audio [mcu_aport] RTP/AVP [$opus_pt] 0
a=rtpmap:[$opus_pt] opus/48000/2
a=rtpmap:0 PCMU/8000
a=sendrecv
m=video [mcu_vport] RTP/AVP [$h264_pt]
a=rtpmap:[$h264_pt] H264/90000
a=fmtp:[$h264_pt] profile-level-id=42e01f;packetization-mode=1
a=rtcp-fb:[$h264_pt] nack pli
a=rtcp-fb:[$h264_pt] ccm fir
a=sendrecv
";

    /// A sipp answer with the `[fields]` filled in as sipp does (the offer's
    /// payload types, `-key mcu_ip 127.0.0.1 -key mcu_aport 40000 -key
    /// mcu_vport 40002`), with sipp's CRLF line endings.
    fn sipp_answer(h264: bool, opus_pt: u8, video_pt: u8) -> String {
        let (template, key) = if h264 {
            (SIPP_H264, "[$h264_pt]")
        } else {
            (SIPP_VP8, "[$vp8_pt]")
        };
        template
            .replace("[mcu_ip]", "127.0.0.1")
            .replace("[mcu_aport]", "40000")
            .replace("[mcu_vport]", "40002")
            .replace("[$opus_pt]", &opus_pt.to_string())
            .replace(key, &video_pt.to_string())
            .replace('\n', "\r\n")
    }

    #[test]
    fn offer_has_every_line_in_order() {
        let sdp = offer(&params(&[
            Codec::Opus,
            Codec::Pcmu,
            Codec::Pcma,
            Codec::Vp8,
            Codec::H264,
        ]))
        .expect("offer");
        let expected = "v=0\r\n\
            o=confgate 4242 1 IN IP4 10.0.0.5\r\n\
            s=confgate\r\n\
            c=IN IP4 10.0.0.5\r\n\
            t=0 0\r\n\
            m=audio 30000 RTP/AVP 111 0 8\r\n\
            a=rtpmap:111 opus/48000/2\r\n\
            a=fmtp:111 useinbandfec=1\r\n\
            a=rtpmap:0 PCMU/8000\r\n\
            a=rtpmap:8 PCMA/8000\r\n\
            a=sendrecv\r\n\
            a=rtcp:30000\r\n\
            a=rtcp-mux\r\n\
            m=video 30002 RTP/AVP 96 97\r\n\
            a=rtpmap:96 VP8/90000\r\n\
            a=rtcp-fb:96 nack pli\r\n\
            a=rtcp-fb:96 ccm fir\r\n\
            a=rtpmap:97 H264/90000\r\n\
            a=fmtp:97 profile-level-id=42e01f;packetization-mode=1\r\n\
            a=rtcp-fb:97 nack pli\r\n\
            a=rtcp-fb:97 ccm fir\r\n\
            a=sendrecv\r\n\
            a=rtcp:30002\r\n\
            a=rtcp-mux\r\n";
        assert_eq!(sdp, expected);
        assert!(!sdp.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn offer_keeps_preference_order_and_leaves_out_empty_kinds() {
        let mut p = params(&[Codec::Pcma, Codec::Opus, Codec::Pcma]);
        let sdp = offer(&p).expect("audio only");
        assert!(sdp.contains("m=audio 30000 RTP/AVP 8 111\r\n"));
        assert!(!sdp.contains("m=video"));
        p.codecs = &[Codec::H264, Codec::Vp8, Codec::Opus];
        p.audio_port = None;
        let sdp = offer(&p).expect("video only");
        assert!(!sdp.contains("m=audio"));
        assert!(sdp.contains("m=video 30002 RTP/AVP 97 96\r\n"));
        p.video_port = None;
        assert_eq!(offer(&p), Err(SdpError::NothingToOffer));
        assert_eq!(offer(&params(&[])), Err(SdpError::NothingToOffer));
    }

    #[test]
    fn offer_over_ipv6() {
        let mut p = params(ALL);
        p.local_ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let sdp = offer(&p).expect("offer");
        assert!(sdp.contains("o=confgate 4242 1 IN IP6 ::1\r\n"));
        assert!(sdp.contains("c=IN IP6 ::1\r\n"));
    }

    #[test]
    fn our_offer_parses_as_an_answer() {
        let sdp = offer(&params(ALL)).expect("offer");
        let leg = answer(&sdp, ALL).expect("parse");
        let audio = leg.audio.expect("audio");
        assert_eq!((audio.codec, audio.payload_type), (Codec::Opus, 111));
        assert_eq!(audio.remote, SocketAddr::new(LOCAL, 30000));
        assert_eq!(audio.fmtp.as_deref(), Some("useinbandfec=1"));
        let video = leg.video.expect("video");
        assert_eq!((video.codec, video.payload_type), (Codec::Vp8, 96));
    }

    #[test]
    fn sipp_vp8_answer() {
        let sdp = sipp_answer(false, 111, 96);
        let leg = answer(&sdp, ALL).expect("sipp answer");
        assert_eq!(
            leg.audio,
            Some(Negotiated {
                codec: Codec::Opus,
                payload_type: 111,
                remote: SocketAddr::new(MCU, 40000),
                rtcp: SocketAddr::new(MCU, 40001),
                fmtp: None,
                direction: Direction::SendRecv,
            })
        );
        assert_eq!(
            leg.video,
            Some(Negotiated {
                codec: Codec::Vp8,
                payload_type: 96,
                remote: SocketAddr::new(MCU, 40002),
                rtcp: SocketAddr::new(MCU, 40003),
                fmtp: None,
                direction: Direction::SendRecv,
            })
        );
    }

    #[test]
    fn rtcp_goes_where_the_peer_says() {
        let base = "v=0\r\no=m 1 1 IN IP4 10.0.0.9\r\ns=m\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n\
m=audio 5000 RTP/AVP 0\r\n";
        let rtcp = |extra: &str| {
            answer(&format!("{base}{extra}"), ALL)
                .expect("answer")
                .audio
                .expect("audio")
                .rtcp
                .port()
        };
        assert_eq!(rtcp(""), 5001, "the next port up");
        assert_eq!(rtcp("a=rtcp-mux\r\n"), 5000, "muxed");
        assert_eq!(rtcp("a=rtcp:6000 IN IP4 10.0.0.9\r\n"), 6000, "RFC 3605");
        assert!(answer(&format!("{base}a=rtcp:x\r\n"), ALL).is_err());
        let params = OfferParams {
            session_id: 1,
            version: 2,
            local_ip: "10.0.0.5".parse().expect("ip"),
            audio_port: Some(30000),
            video_port: None,
            codecs: ALL,
        };
        let (ours, _) = answer_to(base, &params).expect("answer");
        assert!(
            ours.contains("a=rtcp:30000\r\n") && !ours.contains("rtcp-mux"),
            "{ours}"
        );
        let (ours, _) = answer_to(&format!("{base}a=rtcp-mux\r\n"), &params).expect("answer");
        assert!(ours.contains("a=rtcp-mux\r\n"), "{ours}");
    }

    #[test]
    fn sipp_h264_answer() {
        let sdp = sipp_answer(true, 111, 97);
        let leg = answer(&sdp, ALL).expect("sipp answer");
        let video = leg.video.expect("video");
        assert_eq!((video.codec, video.payload_type), (Codec::H264, 97));
        assert_eq!(video.remote, SocketAddr::new(MCU, 40002));
        assert_eq!(video.fmtp.as_deref(), Some(H264_FMTP));
        assert_eq!(leg.audio.expect("audio").codec, Codec::Opus);
    }

    #[test]
    fn renumbered_dynamic_payload_types_match_by_name() {
        let sdp = sipp_answer(false, 109, 100);
        let leg = answer(&sdp, ALL).expect("answer");
        let audio = leg.audio.expect("audio");
        assert_eq!((audio.codec, audio.payload_type), (Codec::Opus, 109));
        let video = leg.video.expect("video");
        assert_eq!((video.codec, video.payload_type), (Codec::Vp8, 100));
        // PT 96 named H264 by the peer is H.264, whatever we offered on 96.
        let sdp = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=video 5 RTP/AVP 96\r\na=rtpmap:96 h264/90000\r\n";
        let video = answer(sdp, ALL).expect("answer").video.expect("video");
        assert_eq!((video.codec, video.payload_type), (Codec::H264, 96));
    }

    #[test]
    fn static_payload_types_without_rtpmap() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18 8 0\r\n";
        let leg = answer(sdp, &[Codec::Pcmu, Codec::Pcma]).expect("answer");
        let audio = leg.audio.expect("audio");
        assert_eq!((audio.codec, audio.payload_type), (Codec::Pcma, 8));
        assert_eq!(leg.video, None);
        let leg = answer(sdp, &[Codec::Pcmu]).expect("answer");
        assert_eq!(leg.audio.expect("audio").codec, Codec::Pcmu);
    }

    #[test]
    fn codec_must_match_clock_rate_and_media_kind() {
        // opus at 8000 is not our Opus; PCMU on a video line is not video.
        let sdp = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 101 0\r\na=rtpmap:101 opus/8000\r\nm=video 0 RTP/AVP 0\r\n";
        let leg = answer(sdp, &[Codec::Opus, Codec::Pcmu]).expect("answer");
        assert_eq!(leg.audio.expect("audio").codec, Codec::Pcmu);
        assert_eq!(leg.video, None);
    }

    #[test]
    fn port_zero_rejects_a_stream() {
        let sdp = sipp_answer(false, 111, 96).replace("m=video 40002", "m=video 0");
        let leg = answer(&sdp, ALL).expect("answer");
        assert!(leg.audio.is_some());
        assert_eq!(leg.video, None);
        let all_rejected = "v=0\r\nm=audio 0 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\n";
        assert_eq!(
            answer(all_rejected, ALL),
            Ok(LegAnswer {
                audio: None,
                video: None
            })
        );
    }

    #[test]
    fn media_connection_overrides_session_connection() {
        let sdp = "v=0\r\nc=IN IP4 10.1.1.1\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.2.2.2\r\nm=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";
        let leg = answer(sdp, ALL).expect("answer");
        assert_eq!(
            leg.audio.expect("audio").remote,
            "10.2.2.2:4000".parse().expect("addr")
        );
        assert_eq!(
            leg.video.expect("video").remote,
            "10.1.1.1:4002".parse().expect("addr")
        );
        let v6 = "v=0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP6 ::1\r\n";
        assert_eq!(
            answer(v6, ALL).expect("v6").audio.expect("audio").remote,
            "[::1]:4000".parse().expect("addr")
        );
        let none = "v=0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(answer(none, ALL), Err(SdpError::MissingConnection));
        // A rejected stream needs no address.
        assert!(answer("v=0\r\nm=audio 0 RTP/AVP 0\r\n", ALL).is_ok());
    }

    #[test]
    fn directions_and_hold() {
        let sdp = sipp_answer(false, 111, 96);
        let held = sdp.replacen("a=sendrecv", "a=sendonly", 1);
        let leg = answer(&held, ALL).expect("hold");
        assert_eq!(leg.audio.expect("audio").direction, Direction::SendOnly);
        assert_eq!(leg.video.expect("video").direction, Direction::SendRecv);
        // Session-level direction applies where the media has none.
        let sdp = "v=0\r\nc=IN IP4 1.2.3.4\r\na=inactive\r\nm=audio 4000 RTP/AVP 0\r\nm=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=recvonly\r\n";
        let leg = answer(sdp, ALL).expect("answer");
        assert_eq!(leg.audio.expect("audio").direction, Direction::Inactive);
        assert_eq!(leg.video.expect("video").direction, Direction::RecvOnly);
        // RFC 2543 hold: c=0.0.0.0 means "do not send to me".
        let sdp = "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\n";
        let audio = answer(sdp, ALL).expect("old hold").audio.expect("audio");
        assert_eq!(audio.direction, Direction::SendOnly);
        assert!(!audio.direction.receives());
    }

    #[test]
    fn no_shared_codec_names_both_lists() {
        let sdp = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
        let err = answer(sdp, &[Codec::Opus, Codec::Vp8]).expect_err("nothing shared");
        assert_eq!(
            err,
            SdpError::NoSharedCodec {
                offered: vec!["opus".into(), "vp8".into()],
                answered: vec!["G729/8000".into()],
            }
        );
        assert_eq!(
            err.to_string(),
            "the MCU shares no codec with us: we offered opus, vp8; it answered G729/8000"
        );
        // Static type without rtpmap, and a non-RTP line.
        let sdp =
            "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 9\r\nm=video 4002 RTP/SAVP 96\r\n";
        let err = answer(sdp, ALL).expect_err("nothing shared");
        assert_eq!(
            err.to_string(),
            "the MCU shares no codec with us: we offered opus, pcmu, vp8, h264; it answered G722/8000, RTP/SAVP 96"
        );
        // One stream shared, the other not: not an error.
        let sdp = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 18\r\nm=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";
        let leg = answer(sdp, ALL).expect("video only");
        assert_eq!(leg.audio, None);
        assert!(leg.video.is_some());
    }

    #[test]
    fn garbage_and_truncated_sdp_are_errors() {
        let malformed_at = |sdp: &str| match answer(sdp, ALL) {
            Err(SdpError::Malformed { line, .. }) => line,
            other => panic!("{sdp:?} gave {other:?}"),
        };
        assert_eq!(malformed_at(""), 1);
        assert_eq!(malformed_at("hello"), 1);
        assert_eq!(malformed_at("v=1\r\n"), 1);
        assert_eq!(malformed_at("o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n"), 1);
        assert_eq!(malformed_at("v=0\r\nv=0\r\n"), 2);
        assert_eq!(malformed_at("v=0\r\nm=audio\r\n"), 2);
        assert_eq!(malformed_at("v=0\r\nm=audio 4000 RTP/AVP\r\n"), 2);
        assert_eq!(malformed_at("v=0\r\nm=audio 70000 RTP/AVP 0\r\n"), 2);
        assert_eq!(malformed_at("v=0\r\nc=IN IP4\r\n"), 2);
        assert_eq!(malformed_at("v=0\r\nc=IN IP4 999.1.1.1\r\n"), 2);
        assert_eq!(malformed_at("v=0\r\nc=IN IP6 1.2.3.4\r\n"), 2);
        assert_eq!(
            malformed_at("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0\r\n"),
            4
        );
        assert_eq!(
            malformed_at("v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:200 PCMU/8000\r\n"),
            3
        );
        assert_eq!(
            malformed_at("v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n"),
            3
        );
        assert_eq!(
            malformed_at("v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU/x\r\n"),
            3
        );
        assert_eq!(
            malformed_at("v=0\r\nm=audio 1 RTP/AVP 0\r\na=fmtp:x y\r\n"),
            3
        );
        assert_eq!(malformed_at("v=0\nX=1\n"), 2);
        // Truncated in the middle of a line.
        let full = sipp_answer(false, 111, 96);
        let cut = &full[..full.find("a=rtpmap:111").expect("rtpmap") + 10];
        assert!(matches!(answer(cut, ALL), Err(SdpError::Malformed { .. })));
        // Oversized.
        let big = format!("v=0\r\n{}", "a=x\r\n".repeat(MAX_SDP_BYTES));
        assert_eq!(answer(&big, ALL), Err(SdpError::TooLarge));
        let many = format!("v=0\r\n{}", "m=audio 0 RTP/AVP 0\r\n".repeat(MAX_MEDIA + 1));
        assert_eq!(answer(&many, ALL), Err(SdpError::TooLarge));
    }

    #[test]
    fn codec_names() {
        assert_eq!(Codec::parse("OPUS"), Some(Codec::Opus));
        assert_eq!(Codec::parse("pcmu"), Some(Codec::Pcmu));
        assert_eq!(Codec::parse("Pcma"), Some(Codec::Pcma));
        assert_eq!(Codec::parse("vp8"), Some(Codec::Vp8));
        assert_eq!(Codec::parse("h264"), Some(Codec::H264));
        assert_eq!(Codec::parse("g729"), None);
        assert_eq!(Codec::parse(""), None);
        for c in Codec::ALL {
            assert_eq!(Codec::parse(c.rtpmap_name()), Some(c));
        }
    }

    #[test]
    fn answer_to_a_hold_reinvite() {
        let mcu_offer = sipp_answer(false, 109, 100).replace("a=sendrecv", "a=sendonly");
        let mut local = params(ALL);
        local.version = 2;
        let (sdp, leg) = answer_to(&mcu_offer, &local).expect("answer");
        assert_eq!(
            sdp,
            "v=0\r\n\
             o=confgate 4242 2 IN IP4 10.0.0.5\r\n\
             s=confgate\r\n\
             c=IN IP4 10.0.0.5\r\n\
             t=0 0\r\n\
             m=audio 30000 RTP/AVP 109\r\n\
             a=rtpmap:109 opus/48000/2\r\n\
             a=fmtp:109 useinbandfec=1\r\n\
             a=recvonly\r\n\
             a=rtcp:30000\r\n\
             m=video 30002 RTP/AVP 100\r\n\
             a=rtpmap:100 VP8/90000\r\n\
              a=rtcp-fb:100 nack pli\r\n\
             a=rtcp-fb:100 ccm fir\r\n\
             a=recvonly\r\n\
             a=rtcp:30002\r\n"
        );
        assert_eq!(leg.audio.expect("audio").direction, Direction::SendOnly);
        assert_eq!(leg.video.expect("video").payload_type, 100);
        // Our own answer reads back as the same streams.
        let back = answer(&sdp, ALL).expect("round trip");
        assert_eq!(back.audio.expect("audio").payload_type, 109);
    }

    #[test]
    fn answer_to_rejects_what_it_cannot_take() {
        let mcu_offer = "v=0\r\nc=IN IP4 1.2.3.4\r\n\
            m=audio 4000 RTP/AVP 18 0\r\n\
            m=video 4002 RTP/AVP 126\r\na=rtpmap:126 H264/90000\r\na=fmtp:126 packetization-mode=0\r\n\
            m=application 5000 UDP/BFCP *\r\n\
            m=audio 4004 RTP/AVP 0\r\n";
        let mut local = params(ALL);
        local.audio_port = None;
        let (sdp, leg) = answer_to(mcu_offer, &local).expect("answer");
        assert!(sdp.contains("m=audio 0 RTP/AVP 18\r\nm=video 30002 RTP/AVP 126\r\n"));
        assert!(sdp.contains("a=fmtp:126 packetization-mode=0\r\n"));
        assert!(sdp.ends_with("m=application 0 UDP/BFCP *\r\nm=audio 0 RTP/AVP 0\r\n"));
        assert_eq!(sdp.matches("m=").count(), 4);
        assert_eq!(leg.audio, None);
        assert_eq!(leg.video.expect("video").codec, Codec::H264);

        let g729 = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 18\r\n";
        assert!(matches!(
            answer_to(g729, &params(ALL)),
            Err(SdpError::NoSharedCodec { .. })
        ));
    }

    proptest! {
        #[test]
        fn answer_never_panics(s in "\\PC*") {
            let _ = answer(&s, ALL);
            let _ = answer_to(&s, &params(ALL));
        }

        #[test]
        fn answer_never_panics_on_sdp_like_lines(
            lines in prop::collection::vec(
                "(v=0|c=IN IP[46] [0-9a-f.:]{0,12}|m=(audio|video) [0-9]{1,6} RTP/AVP( [0-9]{1,3}){0,3}|a=(rtpmap|fmtp):[0-9]{1,3} [A-Za-z0-9/=;]{0,12}|a=(sendonly|inactive)|[a-z]=.{0,8})",
                0..12,
            )
        ) {
            let sdp = lines.join("\r\n");
            let _ = answer(&sdp, ALL);
            let _ = answer_to(&sdp, &params(ALL));
        }
    }
}
