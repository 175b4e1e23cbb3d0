//! Properties the parsers of untrusted bytes must keep for any input: the
//! bodies of the cargo-fuzz targets in `fuzz/` (which call these), and of the
//! tests that replay the fuzz seeds and generated inputs on every test run.
//! Each function panics when a property is broken.

use crate::sdp::{Codec, OfferParams, answer, answer_to};
use crate::sip::{Message, SipError, frame, keepalive_len};

const CODECS: [Codec; 5] = [
    Codec::Opus,
    Codec::Pcmu,
    Codec::Pcma,
    Codec::Vp8,
    Codec::H264,
];

/// SIP bytes from the network: `Message::parse` (datagrams), `frame` (TCP
/// streams) and the typed accessors never panic, and whatever parses writes
/// back to bytes that parse to the same message.
pub fn sip_bytes(data: &[u8]) {
    let skip = keepalive_len(data);
    assert!(skip <= data.len());
    if let Ok(Some(n)) = frame(data) {
        assert!(n <= data.len());
        let _ = Message::parse(&data[..n]);
    }
    let Ok(message) = Message::parse(data) else {
        return;
    };
    let _ = (
        message.vias(),
        message.from(),
        message.to(),
        message.contact(),
        message.record_route(),
        message.route(),
        message.session_expires(),
        message.min_se(),
        message.expires(),
        message.max_forwards(),
        message.challenges(),
        message.credentials(),
        message.content_type(),
    );
    let bytes = message.to_bytes();
    match Message::parse(&bytes) {
        Ok(again) => {
            assert_eq!(again, message, "write-back changed the message");
            assert_eq!(frame(&bytes), Ok(Some(bytes.len())), "our output frames");
        }
        // Expanded compact names and joined lists may cross a limit.
        Err(
            SipError::TooLarge { .. }
            | SipError::LineTooLong { .. }
            | SipError::TooManyHeaders { .. },
        ) => {}
        Err(e) => panic!("our own output does not parse: {e}"),
    }
}

/// SDP bodies from the MCU: `answer` (its 2xx) and `answer_to` (its
/// re-INVITE) never panic; what `answer_to` builds reads back as an answer
/// with the same streams.
pub fn sdp_body(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = answer(text, &CODECS);
    let local = OfferParams {
        session_id: 1,
        version: 2,
        local_ip: [127, 0, 0, 1].into(),
        audio_port: Some(40_000),
        video_port: Some(40_002),
        codecs: &CODECS,
    };
    if let Ok((ours, settled)) = answer_to(text, &local) {
        let read = answer(&ours, &CODECS).expect("our own answer reads back");
        assert_eq!(
            (read.audio.map(|n| n.codec), read.video.map(|n| n.codec)),
            (
                settled.audio.map(|n| n.codec),
                settled.video.map(|n| n.codec)
            ),
        );
    }
}
