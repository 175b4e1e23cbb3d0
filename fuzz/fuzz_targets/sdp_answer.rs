//! SDP bodies from the MCU: `answer` (its 2xx) and `answer_to` (its
//! re-INVITE) must never panic; what `answer_to` builds must read back as an
//! answer with the same streams.
#![no_main]

use confgate_signalling::sdp::{Codec, OfferParams, answer, answer_to};
use libfuzzer_sys::fuzz_target;

const CODECS: [Codec; 5] = [Codec::Opus, Codec::Pcmu, Codec::Pcma, Codec::Vp8, Codec::H264];

fuzz_target!(|data: &[u8]| {
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
            (settled.audio.map(|n| n.codec), settled.video.map(|n| n.codec)),
        );
    }
});
