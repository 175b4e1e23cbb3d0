//! The plain-RTP leg toward an MCU: RTP/RTCP bytes in and out, and what one bridged stream
//! remembers. Pure: no sockets, no rtc, no clock (time is an argument), no randomness.
//!
//! The MCU leg is RTP/AVP without SRTP or ICE, so the loop reads and writes the packets itself
//! instead of going through rtc: [`parse_rtp`] and [`write_rtp`] look at and build the 12-byte
//! fixed header only (no CSRC, no header extension goes out: every extension a browser sends is
//! per hop or meaningless to a mixer), [`keyframe_requested`] walks a compound RTCP packet for
//! PLI/FIR, [`write_pli`] builds the one RTCP packet the loop sends.

use std::net::SocketAddr;
use std::ops::Range;

use std::time::Instant;

use crate::Codec;
use crate::keyframe::{KeyframeRequests, VideoCodec};
use crate::mcu_rtcp::{Received, Sent};
use crate::rewrite::SequenceRewriter;
use crate::router::{CodecInfo, PeerKey};

/// The fixed RTP header: V/P/X/CC, M/PT, sequence number, timestamp, SSRC.
const RTP_HEADER: usize = 12;
/// RTCP payload-specific feedback (RFC 4585) and its PLI / FIR (RFC 5104) formats.
const RTCP_PSFB: u8 = 206;
const FMT_PLI: u8 = 1;
const FMT_FIR: u8 = 4;
/// The pre-RFC 4585 FIR (RFC 2032), still sent by some H.261/H.263-era MCUs.
const RTCP_LEGACY_FIR: u8 = 192;

/// The fields of an RTP packet the bridge needs; the payload is a range of the datagram, so
/// the caller can slice its `Bytes` without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RtpView {
    pub(crate) marker: bool,
    pub(crate) payload_type: u8,
    pub(crate) sequence_number: u16,
    pub(crate) timestamp: u32,
    pub(crate) ssrc: u32,
    pub(crate) payload: Range<usize>,
}

/// RTCP, told apart from RTP on a shared port as RFC 5761 does: packet types 192..=223 fall
/// where RTP payload types 64..=95 (with the marker bit) would, which no dynamic mapping uses.
pub(crate) fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 8 && datagram[0] >> 6 == 2 && (192..=223).contains(&datagram[1])
}

/// An RTP packet, or `None` for anything that is not one (wrong version, truncated, RTCP, a
/// payload that the padding count eats).
pub(crate) fn parse_rtp(d: &[u8]) -> Option<RtpView> {
    if d.len() < RTP_HEADER || d[0] >> 6 != 2 || is_rtcp(d) {
        return None;
    }
    let csrc = usize::from(d[0] & 0x0F) * 4;
    let mut start = RTP_HEADER + csrc;
    if d[0] & 0x10 != 0 {
        let words = d.get(start + 2..start + 4)?;
        start += 4 + usize::from(u16::from_be_bytes([words[0], words[1]])) * 4;
    }
    let mut end = d.len();
    if d[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*d.last()?))?;
    }
    if start > end {
        return None;
    }
    Some(RtpView {
        marker: d[1] & 0x80 != 0,
        payload_type: d[1] & 0x7F,
        sequence_number: u16::from_be_bytes([d[2], d[3]]),
        timestamp: u32::from_be_bytes([d[4], d[5], d[6], d[7]]),
        ssrc: u32::from_be_bytes([d[8], d[9], d[10], d[11]]),
        payload: start..end,
    })
}

/// Whether a (compound) RTCP packet asks for a keyframe: a PLI or FIR anywhere in it.
pub(crate) fn keyframe_requested(mut d: &[u8]) -> bool {
    while d.len() >= 4 && d[0] >> 6 == 2 {
        let fmt = d[0] & 0x1F;
        let pt = d[1];
        let len = (usize::from(u16::from_be_bytes([d[2], d[3]])) + 1) * 4;
        // A packet must fit in the datagram, and feedback must carry its two SSRCs.
        let Some(rest) = d.get(len..) else {
            return false;
        };
        if len >= 12
            && ((pt == RTCP_PSFB && (fmt == FMT_PLI || fmt == FMT_FIR)) || pt == RTCP_LEGACY_FIR)
        {
            return true;
        }
        d = rest;
    }
    false
}

/// Writes an RTP packet with the fixed header only into `buf` (cleared first).
pub(crate) fn write_rtp(
    buf: &mut Vec<u8>,
    marker: bool,
    payload_type: u8,
    sequence_number: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &[u8],
) {
    buf.clear();
    buf.push(0x80);
    buf.push(if marker { 0x80 } else { 0 } | (payload_type & 0x7F));
    buf.extend_from_slice(&sequence_number.to_be_bytes());
    buf.extend_from_slice(&timestamp.to_be_bytes());
    buf.extend_from_slice(&ssrc.to_be_bytes());
    buf.extend_from_slice(payload);
}

/// Writes an RTCP PLI (RFC 4585 6.3.1) into `buf` (cleared first).
pub(crate) fn write_pli(buf: &mut Vec<u8>, sender_ssrc: u32, media_ssrc: u32) {
    buf.clear();
    buf.extend_from_slice(&[0x80 | FMT_PLI, RTCP_PSFB, 0, 2]);
    buf.extend_from_slice(&sender_ssrc.to_be_bytes());
    buf.extend_from_slice(&media_ssrc.to_be_bytes());
}

/// The MCU's stream of one kind toward the member's subscriber connection.
#[derive(Debug)]
pub(crate) struct McuInbound {
    /// What the subscriber is offered: Opus, or the member's own video codec.
    pub(crate) codec: CodecInfo,
    pub(crate) video_codec: VideoCodec,
    pub(crate) video: bool,
    /// The SSRC the subscriber sees, chosen by the server, stable for the life of the leg.
    pub(crate) out_ssrc: u32,
    pub(crate) rewriter: SequenceRewriter,
    /// The subscriber connection and its payload type, once it answered.
    pub(crate) subscriber: Option<(PeerKey, u8)>,
    /// The subscriber connection is up.
    pub(crate) active: bool,
    pub(crate) waiting_keyframe: bool,
    pub(crate) keyframes: KeyframeRequests,
    /// The MCU's SSRC, from its latest packet: the media SSRC of the PLIs sent to it.
    pub(crate) source_ssrc: u32,
}

/// One bridged kind of one MCU leg.
#[derive(Debug)]
pub(crate) struct McuStreamState {
    /// Where the MCU receives: from its SDP answer, then the source of its first RTP packet
    /// (symmetric RTP).
    pub(crate) remote: SocketAddr,
    /// Where RTCP goes; `None` while it is `remote` (muxed).
    pub(crate) rtcp: Option<SocketAddr>,
    /// `remote` was learned from the MCU's RTP: other sources are ignored.
    pub(crate) latched: bool,
    /// The MCU's payload type for this kind, and its codec.
    pub(crate) payload_type: u8,
    pub(crate) codec: Codec,
    /// The browser's last payload type seen on this kind, and whether it is `codec`.
    pub(crate) source_checked: Option<(u8, bool)>,
    /// The SSRC of what the server sends to the MCU, fixed for the leg.
    pub(crate) out_ssrc: u32,
    pub(crate) out: SequenceRewriter,
    /// `None` when the subscriber cannot be given the MCU's stream.
    pub(crate) inbound: Option<McuInbound>,
    /// RTCP: what went each way, and when the next report is due.
    pub(crate) sent: Sent,
    pub(crate) received: Received,
    pub(crate) next_report: Instant,
}

/// The bridge's name for a negotiated codec of a browser connection.
pub(crate) fn codec_of(c: &CodecInfo) -> Option<Codec> {
    let name = c
        .mime_type
        .split_once('/')
        .map_or(c.mime_type.as_str(), |(_, n)| n);
    Codec::parse(name)
}

/// The codec the subscriber is offered for the MCU's stream: Opus as browsers take it, or the
/// member's own negotiated VP8 or H.264 (for its `fmtp`), else that codec with the usual
/// parameters; G.711 as it is (browsers take PCMU and PCMA).
pub(crate) fn inbound_codec(
    codec: Codec,
    payload_type: u8,
    published: &[CodecInfo],
) -> Option<CodecInfo> {
    let info = |mime: &str, clock_rate, channels, fmtp: &str| CodecInfo {
        payload_type,
        mime_type: mime.to_owned(),
        clock_rate,
        channels,
        fmtp: fmtp.to_owned(),
    };
    let own = || {
        published
            .iter()
            .find(|c| codec_of(c) == Some(codec))
            .map(|c| CodecInfo {
                payload_type,
                ..c.clone()
            })
    };
    match codec {
        Codec::Opus => Some(info("audio/opus", 48_000, 2, "minptime=10;useinbandfec=1")),
        Codec::Pcmu => Some(info("audio/PCMU", 8_000, 1, "")),
        Codec::Pcma => Some(info("audio/PCMA", 8_000, 1, "")),
        Codec::Vp8 => Some(own().unwrap_or_else(|| info("video/VP8", 90_000, 0, ""))),
        Codec::H264 => Some(own().unwrap_or_else(|| {
            info(
                "video/H264",
                90_000,
                0,
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            )
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_parses_rtp() {
        let mut buf = Vec::new();
        write_rtp(&mut buf, true, 96, 65535, 0xDEAD_BEEF, 42, b"abc");
        let view = parse_rtp(&buf).expect("rtp");
        assert_eq!(
            view,
            RtpView {
                marker: true,
                payload_type: 96,
                sequence_number: 65535,
                timestamp: 0xDEAD_BEEF,
                ssrc: 42,
                payload: 12..15,
            }
        );
        assert!(!is_rtcp(&buf));
    }

    #[test]
    fn skips_csrcs_extensions_and_padding() {
        // CC=1, X=1, P=1: one CSRC, a one-word extension, two bytes of padding.
        let mut d = vec![0xB1, 111, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        d.extend_from_slice(&[0, 0, 0, 9]); // CSRC
        d.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // extension
        d.extend_from_slice(b"xy"); // payload
        d.extend_from_slice(&[0, 2]); // padding
        let view = parse_rtp(&d).expect("rtp");
        assert_eq!(&d[view.payload], b"xy");
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(parse_rtp(&[]), None);
        assert_eq!(parse_rtp(&[0x80; 11]), None);
        assert_eq!(parse_rtp(&[0x40; 40]), None);
        // An extension running past the end, padding larger than the packet.
        assert_eq!(
            parse_rtp(&[0x90, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE]),
            None
        );
        let mut d = vec![
            0x90, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE, 0xFF, 0xFF,
        ];
        assert_eq!(parse_rtp(&d), None);
        d = vec![0xA0, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200];
        assert_eq!(parse_rtp(&d), None);
        assert!(!keyframe_requested(&[0x81, 206, 0xFF, 0xFF]));
        assert!(!keyframe_requested(&[]));
    }

    #[test]
    fn finds_pli_and_fir_in_compound_rtcp() {
        let mut pli = Vec::new();
        write_pli(&mut pli, 1, 2);
        assert!(is_rtcp(&pli));
        assert!(parse_rtp(&pli).is_none());
        assert!(keyframe_requested(&pli));
        // An empty receiver report, then a FIR.
        let mut compound = vec![0x80, 201, 0, 1, 0, 0, 0, 7];
        compound.extend_from_slice(&[
            0x84, 206, 0, 4, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 9, 1, 0, 0, 0,
        ]);
        assert!(keyframe_requested(&compound));
        assert!(!keyframe_requested(&compound[..8]));
    }

    #[test]
    fn inbound_codec_follows_the_members_codec() {
        let vp8 = CodecInfo {
            payload_type: 96,
            mime_type: "video/VP8".to_owned(),
            clock_rate: 90_000,
            channels: 0,
            fmtp: String::new(),
        };
        let h264 = CodecInfo {
            payload_type: 102,
            mime_type: "video/H264".to_owned(),
            fmtp: "packetization-mode=1;profile-level-id=42001f".to_owned(),
            ..vp8.clone()
        };
        let published = [vp8, h264];
        let chosen = inbound_codec(Codec::H264, 97, &published).expect("video");
        assert_eq!(
            (chosen.mime_type.as_str(), chosen.payload_type),
            ("video/H264", 97)
        );
        assert!(chosen.fmtp.contains("42001f"), "the member's own fmtp");
        let chosen = inbound_codec(Codec::H264, 97, &[]).expect("video");
        assert!(chosen.fmtp.contains("packetization-mode=1"));
        let chosen = inbound_codec(Codec::Vp8, 96, &[]).expect("video");
        assert_eq!(chosen.mime_type, "video/VP8");
        let pcmu = inbound_codec(Codec::Pcmu, 0, &[]).expect("audio");
        assert_eq!(
            (pcmu.mime_type.as_str(), pcmu.clock_rate),
            ("audio/PCMU", 8_000)
        );
        let opus = inbound_codec(Codec::Opus, 111, &[]).expect("audio");
        assert_eq!(opus.mime_type, "audio/opus");
        assert_eq!(codec_of(&published[1]), Some(Codec::H264));
    }
}
