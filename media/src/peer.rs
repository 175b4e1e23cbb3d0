//! Building rtc peer connections the way every confgate connection needs them.
//!
//! - ICE-lite with credentials the server chose, so the demultiplexer knows each connection's
//!   ufrag before the first STUN request arrives.
//! - Host candidates only (the loop's one socket, on each announced address).
//! - mDNS off: rtc does no I/O, so mDNS queries would leave through the media socket itself.
//!   Browsers' `.local` candidates are not needed: their STUN checks teach us their address.
//! - SRTP: AEAD-AES-128-GCM offered first (measured 1.4 µs cheaper per forwarded packet than
//!   AES-CM/HMAC-SHA1, see WEBRTC-NOTES), AES-256-GCM, then AES-CM-SHA1-80 for old peers.
//! - Codecs: Opus; VP8 and H.264 (constrained baseline and baseline, packetization modes 1
//!   and 0). No RTX or FEC: losses are repaired by NACK on each leg.
//! - Interceptors: on a publish connection rtc's NACK generator, receiver reports and TWCC
//!   feedback; on both [`DeliverKeyframeRequests`], without which a subscriber's PLI/FIR never
//!   reaches us.
//! - A subscribe connection's crypto provider is a [`KeyTap`]: once DTLS is up, the loop seals
//!   forwarded copies itself ([`crate::direct`]), answers the NACKs delivered to it and writes
//!   the sender reports.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Attribute, Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::interceptor::{NackGeneratorBuilder, ReceiverReportBuilder};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_PCMA, MIME_TYPE_PCMU, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::error::Error as RtcError;

use crate::router::CodecInfo;
use crate::srtp_out::KeyTap;
use crate::{Leg, MediaError};

/// Marks inbound RTCP that carries a keyframe request (PLI or FIR), and optionally a NACK, for
/// delivery to the application; everything else stays with the interceptors that consume it.
/// Placed at the application end of the read walk (after the NACK and report interceptors), at
/// [`DELIVER_SLOT`]. rtc hands an application no RTCP without such an interceptor: a sender
/// that must answer keyframe requests (the load generator's members too) needs it.
#[derive(Default)]
pub struct DeliverKeyframeRequests {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
    nacks: bool,
}

impl DeliverKeyframeRequests {
    /// Delivers NACKs as well: for a connection whose RTP the application sends itself.
    pub fn and_nacks() -> Self {
        DeliverKeyframeRequests {
            nacks: true,
            ..Default::default()
        }
    }

    fn delivers(&self, packet: &dyn rtc::rtcp::Packet) -> bool {
        is_keyframe_request(packet) || (self.nacks && is_nack(packet))
    }
}

fn is_nack(packet: &dyn rtc::rtcp::Packet) -> bool {
    packet.as_any().is::<TransportLayerNack>()
}

/// Application-most: beyond every named slot (the jitter buffer is 13 000).
pub const DELIVER_SLOT: usize = 14_000;

pub(crate) fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for DeliverKeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = RtcError;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet
            && packets.iter().any(|p| self.delivers(p.as_ref()))
        {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }

    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Self::Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Self::Time> {
        None
    }
}

impl Interceptor for DeliverKeyframeRequests {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

fn video_feedback() -> Vec<RTCPFeedback> {
    [("ccm", "fir"), ("nack", ""), ("nack", "pli")]
        .into_iter()
        .map(|(typ, parameter)| RTCPFeedback {
            typ: typ.to_owned(),
            parameter: parameter.to_owned(),
        })
        .collect()
}

/// The codecs every connection negotiates, with the payload types the server offers.
pub(crate) fn supported_codecs() -> Vec<(RtpCodecKind, RTCRtpCodecParameters)> {
    let codec = |mime: &str, clock_rate, channels, fmtp: &str, feedback: Vec<RTCPFeedback>, pt| {
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: mime.to_owned(),
                clock_rate,
                channels,
                sdp_fmtp_line: fmtp.to_owned(),
                rtcp_feedback: feedback,
            },
            payload_type: pt,
        }
    };
    let h264 = |profile: &str, mode: u8, pt| {
        codec(
            MIME_TYPE_H264,
            90_000,
            0,
            &format!(
                "level-asymmetry-allowed=1;packetization-mode={mode};profile-level-id={profile}"
            ),
            video_feedback(),
            pt,
        )
    };
    vec![
        (
            RtpCodecKind::Audio,
            codec(
                MIME_TYPE_OPUS,
                48_000,
                2,
                "minptime=10;useinbandfec=1",
                vec![],
                111,
            ),
        ),
        // G.711, for members of conferences whose MCU speaks nothing else:
        // the page prefers it only then, so members elsewhere send Opus.
        (
            RtpCodecKind::Audio,
            codec(MIME_TYPE_PCMU, 8_000, 1, "", vec![], 0),
        ),
        (
            RtpCodecKind::Audio,
            codec(MIME_TYPE_PCMA, 8_000, 1, "", vec![], 8),
        ),
        (
            RtpCodecKind::Video,
            codec(MIME_TYPE_VP8, 90_000, 0, "", video_feedback(), 96),
        ),
        (RtpCodecKind::Video, h264("42e01f", 1, 102)),
        (RtpCodecKind::Video, h264("42001f", 1, 104)),
        (RtpCodecKind::Video, h264("42e01f", 0, 106)),
        (RtpCodecKind::Video, h264("42001f", 0, 108)),
    ]
}

pub(crate) fn codec_info(c: &RTCRtpCodecParameters) -> CodecInfo {
    CodecInfo {
        payload_type: c.payload_type,
        mime_type: c.rtp_codec.mime_type.clone(),
        clock_rate: c.rtp_codec.clock_rate,
        channels: c.rtp_codec.channels,
        fmtp: c.rtp_codec.sdp_fmtp_line.clone(),
    }
}

/// The codecs and header-extension ids negotiated on a sender or receiver.
pub(crate) fn negotiated(
    p: &rtc::rtp_transceiver::rtp_sender::RTCRtpParameters,
) -> (Vec<CodecInfo>, Vec<(String, u8)>) {
    let codecs = p.codecs.iter().map(codec_info).collect();
    let extensions = p
        .header_extensions
        .iter()
        .filter_map(|e| u8::try_from(e.id).ok().map(|id| (e.uri.clone(), id)))
        .collect();
    (codecs, extensions)
}

fn internal(context: &str) -> impl FnOnce(RtcError) -> MediaError + '_ {
    move |e| MediaError::Internal(format!("{context}: {e}"))
}

/// How often the ICE agent acts while connecting. A lite agent only answers checks, but it
/// moves to connected (and DTLS starts) on its next tick after the browser nominates a pair:
/// rtc's default of 200 ms would add up to that much to every join. Browsers check every 50 ms.
const ICE_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

/// A new peer connection with ICE credentials `ufrag`/`pwd`; a subscribe connection comes
/// with the [`KeyTap`] that will hold its SRTP keys.
pub(crate) fn build(
    ufrag: &str,
    pwd: &str,
    leg: Leg,
    now: Instant,
) -> Result<(RTCPeerConnection, Option<Arc<KeyTap>>), MediaError> {
    let mut media_engine = MediaEngine::default();
    for (kind, codec) in supported_codecs() {
        media_engine
            .register_codec(codec, kind)
            .map_err(internal("registering a codec"))?;
    }
    for (uri, kind) in [
        (crate::router::FORWARDED_EXTENSIONS[0], RtpCodecKind::Audio),
        (crate::router::FORWARDED_EXTENSIONS[1], RtpCodecKind::Video),
    ] {
        media_engine
            .register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: uri.to_owned(),
                },
                kind,
                None,
            )
            .map_err(internal("registering a header extension"))?;
    }
    let deliver = match leg {
        Leg::Publish => DeliverKeyframeRequests::default(),
        Leg::Subscribe => DeliverKeyframeRequests::and_nacks(),
    };
    let registry = Registry::new().with(Slot::from(DELIVER_SLOT), deliver);
    let registry = interceptors(registry, &mut media_engine, leg)
        .map_err(internal("registering interceptors"))?;
    let tap = match leg {
        Leg::Publish => None,
        Leg::Subscribe => Some(
            KeyTap::new()
                .map_err(|e| MediaError::Internal(format!("making the crypto provider: {e}")))?,
        ),
    };
    let mut setting_engine = SettingEngineBuilder::new()
        .with_lite(true)
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), None)
        .with_ice_credentials(ufrag.to_owned(), pwd.to_owned())
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_srtp_protection_profiles(vec![
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
            SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
        ]);
    if let Some(tap) = &tap {
        setting_engine = setting_engine.with_crypto_provider(tap.clone());
    }
    let pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(setting_engine.build())
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .build(now)
        .map_err(internal("building a peer connection"))?;
    Ok((pc, tap))
}

/// Where a connection's media goes: the remote side of its selected candidate pair.
pub(crate) fn destination(pc: &mut RTCPeerConnection) -> Option<SocketAddr> {
    // Every sender shares the one (bundled) transport; any negotiated one leads to it.
    let senders: Vec<_> = pc.get_senders().collect();
    let pair = senders.into_iter().find_map(|id| {
        pc.rtp_sender(id)?
            .transport()?
            .ice_transport()
            .get_selected_candidate_pair()
    })?;
    let remote = pair.remote();
    Some(SocketAddr::new(remote.address.parse().ok()?, remote.port))
}

/// Adds one host candidate per address, all on `port`, then the end-of-candidates marker.
pub(crate) fn add_host_candidates(
    pc: &mut RTCPeerConnection,
    ips: &[IpAddr],
    port: u16,
) -> Result<(), MediaError> {
    for ip in ips {
        let candidate = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: ip.to_string(),
                port,
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()
        .map_err(internal("making a host candidate"))?;
        let init = RTCIceCandidate::from(&candidate)
            .to_json()
            .map_err(internal("encoding a host candidate"))?;
        pc.add_local_candidate(init)
            .map_err(internal("adding a host candidate"))?;
    }
    pc.add_local_candidate(RTCIceCandidateInit::default())
        .map_err(internal("ending candidates"))
}

/// A random string of `len` characters from the ICE alphabet (RFC 8445 §5.3: ice-char).
pub(crate) fn ice_string(len: usize) -> String {
    rtc::shared::util::math_rand_alpha_number(len)
}

/// A random SSRC from the system's CSPRNG; 0 if that fails (the router refuses 0 and asks
/// again).
pub(crate) fn random_ssrc() -> u32 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 4];
    match ring::rand::SystemRandom::new().fill(&mut bytes) {
        Ok(()) => u32::from_be_bytes(bytes),
        Err(_) => 0,
    }
}

/// rtc's default interceptors (`register_default_interceptors`: NACK both ways, simulcast
/// header extensions, transport-wide congestion control feedback, RTCP reports), each only on
/// the leg it works on.
///
/// A publish leg, which only receives media, keeps the NACK generator, TWCC feedback and
/// receiver reports. A subscribe leg keeps none: the loop sends its RTP itself
/// ([`crate::direct`]), answers its NACKs and writes its sender reports, and rtc's NACK
/// responder would hold an empty 256-packet buffer per stream. Both negotiate the same
/// feedback.
fn interceptors(
    registry: Registry,
    media_engine: &mut MediaEngine,
    leg: Leg,
) -> Result<Registry, RtcError> {
    for parameter in ["", "pli"] {
        media_engine.register_feedback(
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: parameter.to_owned(),
            },
            RtpCodecKind::Video,
        );
    }
    configure_simulcast_extension_headers(media_engine)?;
    Ok(match leg {
        Leg::Publish => {
            let registry = configure_twcc_receiver_only(registry, media_engine)?;
            registry
                .with(Slot::NackGenerator, NackGeneratorBuilder::new().build())
                .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build())
        }
        Leg::Subscribe => {
            // The same SDP as a publish leg: the feedback is negotiated, its interceptor unused.
            configure_twcc_receiver_only(Registry::new(), media_engine)?;
            registry
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_connection_and_offers_gcm_first() {
        let (mut pc, tap) = build(
            "abcdefgh",
            "0123456789012345678901234",
            Leg::Subscribe,
            Instant::now(),
        )
        .expect("pc");
        assert!(
            tap.expect("a subscribe connection has a tap")
                .local_keys()
                .is_none()
        );
        add_host_candidates(&mut pc, &["127.0.0.1".parse().expect("ip")], 4000).expect("cand");
        assert!(pc.local_description().is_none());
    }

    #[test]
    fn ice_strings_use_the_ice_alphabet() {
        let s = ice_string(24);
        assert_eq!(s.len(), 24);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(s, ice_string(24));
    }

    #[test]
    fn only_pli_and_fir_are_keyframe_requests() {
        let pli = PictureLossIndication {
            sender_ssrc: 1,
            media_ssrc: 2,
        };
        assert!(is_keyframe_request(&pli));
        let fir = FullIntraRequest::default();
        assert!(is_keyframe_request(&fir));
        let rr = rtc::rtcp::receiver_report::ReceiverReport::default();
        assert!(!is_keyframe_request(&rr));
        let nack = TransportLayerNack::default();
        assert!(!DeliverKeyframeRequests::default().delivers(&nack));
        assert!(DeliverKeyframeRequests::and_nacks().delivers(&nack));
        assert!(!DeliverKeyframeRequests::and_nacks().delivers(&rr));
    }
}
