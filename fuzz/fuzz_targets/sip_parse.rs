//! SIP bytes from the network: `Message::parse` (datagrams), `frame` (TCP
//! streams) and the typed accessors must never panic, and whatever parses
//! must write back to bytes that parse to the same message.
#![no_main]

use confgate_signalling::sip::{Message, SipError, frame, keepalive_len};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
        Err(SipError::TooLarge { .. } | SipError::LineTooLong { .. } | SipError::TooManyHeaders { .. }) => {}
        Err(e) => panic!("our own output does not parse: {e}"),
    }
});
