use super::*;
use crate::sip::digest::ChallengeKind;
use crate::sip::header::Refresher;
use proptest::prelude::*;

/// Joins lines with CRLF, as every SIP peer sends them.
fn crlf(lines: &[&str]) -> Vec<u8> {
    let mut text = lines.join("\r\n");
    text.push_str("\r\n");
    text.into_bytes()
}

/// A 200 OK as sipp's uas_answer.xml sends it, filled in (pid 4242).
fn sipp_200() -> Vec<u8> {
    let body = "v=0\r\no=sipp-mcu 1 1 IN IP4 127.0.0.1\r\ns=sipp-mcu\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 111 0\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n\
m=video 40002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\na=sendrecv\r\n";
    let mut bytes = crlf(&[
        "SIP/2.0 200 OK",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK6f1c;rport",
        "From: \"Web Member\" <sip:web-1@127.0.0.1:5070>;tag=8f3a",
        "To: <sip:conf-1234@127.0.0.1:5060>;tag=4242SIPpTag011",
        "Call-ID: 0a1b2c3d",
        "CSeq: 1 INVITE",
        "Contact: <sip:mcu@127.0.0.1:5060;transport=UDP>",
        "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO",
        "Content-Type: application/sdp",
        &format!("Content-Length: {}", body.len()),
        "",
    ]);
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

fn invite_builder() -> RequestBuilder {
    let sent_by = SentBy {
        transport: Transport::Udp,
        host: "127.0.0.1".into(),
        port: Some(5070),
        rport: true,
    };
    RequestBuilder::new(
        Method::Invite,
        SipUri::parse("sip:conf-1234@127.0.0.1:5060").expect("uri"),
    )
    .via(sent_by.via(&Branch::from_random([0xab; 12])))
    .from(
        NameAddr::parse("<sip:web-1@127.0.0.1:5070>", "From")
            .expect("from")
            .with_display_name("Zoë \"the\" Member")
            .with_tag(Tag::from_random([1, 2, 3, 4, 5, 6, 7, 8]).as_str()),
    )
    .to(NameAddr::parse("<sip:conf-1234@127.0.0.1:5060>", "To").expect("to"))
    .call_id(CallId::from_random([0x5a; 16]).as_str())
    .cseq(1)
    .contact(NameAddr::parse("<sip:web-1@127.0.0.1:5070>", "Contact").expect("contact"))
}

#[test]
fn parses_sipps_200_ok_with_typed_access() {
    let bytes = sipp_200();
    let m = Message::parse(&bytes).expect("parse");
    assert!(m.is_response());
    assert_eq!(m.status(), Some(200));
    assert_eq!(m.reason(), Some("OK"));
    assert_eq!(m.method(), None);
    let via = m.top_via().expect("via");
    assert_eq!(via.transport, Transport::Udp);
    assert_eq!((via.host.as_str(), via.port), ("127.0.0.1", Some(5070)));
    assert_eq!(via.branch(), Some("z9hG4bK6f1c"));
    assert_eq!(via.rport(), Some(None));
    let from = m.from().expect("from");
    assert_eq!(from.display_name.as_deref(), Some("Web Member"));
    assert_eq!(from.tag(), Some("8f3a"));
    assert_eq!(m.to().expect("to").tag(), Some("4242SIPpTag011"));
    assert_eq!(m.call_id(), Ok("0a1b2c3d"));
    assert_eq!(
        m.cseq(),
        Ok(CSeq {
            seq: 1,
            method: Method::Invite
        })
    );
    let contact = m.contact().expect("contact").expect("present");
    assert_eq!(
        contact.uri.to_string(),
        "sip:mcu@127.0.0.1:5060;transport=UDP"
    );
    assert_eq!(contact.uri.transport().as_deref(), Some("udp"));
    assert_eq!(
        m.option_tags("Allow").collect::<Vec<_>>(),
        ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO"]
    );
    assert_eq!(m.content_type().as_deref(), Some("application/sdp"));
    assert!(m.body.starts_with(b"v=0\r\n"));
    assert!(m.body.ends_with(b"a=sendrecv\r\n"));
    assert_eq!(m.content_length(), m.body.len());
    assert_eq!(
        m.headers.get("Content-Length"),
        None,
        "framing is not content"
    );
    // Writing it back gives the same bytes (the header order is kept).
    assert_eq!(m.to_bytes(), bytes);
}

#[test]
fn compact_forms_case_and_folding() {
    let bytes = crlf(&[
        "INVITE sip:conf@mcu.example.com SIP/2.0",
        "v: SIP/2.0/TCP gw.example.com:5070;branch=z9hG4bKa",
        "VIA: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKb;received=192.0.2.1, SIP/2.0/UDP first.example.com:5062;branch=z9hG4bKc",
        "f: <sip:web@gw.example.com>;tag=1",
        "t: <sip:conf@mcu.example.com>",
        "i: abc@gw",
        "cseq: 7 INVITE",
        "MAX-FORWARDS: 69",
        "m: <sip:web@gw.example.com;transport=tcp>",
        "k: timer, 100rel",
        "x: 1800;refresher=uac",
        "Min-SE: 90",
        "Require: timer",
        "Expires: 120",
        "s: a subject",
        "Subject-Extra: folded",
        "  over two lines",
        "\tand three",
        "c: application/sdp; charset=utf-8",
        "l: 4",
        "",
        "v=0\n",
    ]);
    let m = Message::parse(&bytes).expect("parse");
    assert_eq!(m.method(), Some(&Method::Invite));
    assert_eq!(
        m.request_uri().map(ToString::to_string).as_deref(),
        Some("sip:conf@mcu.example.com")
    );
    let vias = m.vias().expect("vias");
    assert_eq!(vias.len(), 3, "one compact and two comma-separated values");
    assert_eq!(vias[0].transport, Transport::Tcp);
    assert_eq!(vias[1].received(), Some("192.0.2.1"));
    assert_eq!(vias[2].port, Some(5062));
    assert_eq!(m.call_id(), Ok("abc@gw"));
    assert_eq!(m.cseq().map(|c| c.seq), Ok(7));
    assert_eq!(m.max_forwards(), Ok(Some(69)));
    assert!(m.supports("TIMER"));
    assert!(m.supports("100rel"));
    assert!(m.requires("timer"));
    assert_eq!(
        m.session_expires(),
        Ok(Some(SessionExpires {
            delta: 1800,
            refresher: Some(Refresher::Uac)
        }))
    );
    assert_eq!(m.min_se(), Ok(Some(90)));
    assert_eq!(m.expires(), Ok(Some(120)));
    assert_eq!(m.headers.get("Subject"), Some("a subject"));
    assert_eq!(m.headers.get("s"), Some("a subject"));
    assert_eq!(
        m.headers.get("subject-extra"),
        Some("folded over two lines and three")
    );
    assert_eq!(m.content_type().as_deref(), Some("application/sdp"));
    assert_eq!(m.body, b"v=0\n");
    // The compact names are written back in full.
    let text = String::from_utf8(m.to_bytes()).expect("utf-8");
    assert!(text.contains("\r\nCall-ID: abc@gw\r\n"), "{text}");
    assert!(
        text.contains("\r\nSession-Expires: 1800;refresher=uac\r\n"),
        "{text}"
    );
    assert_eq!(Message::parse(text.as_bytes()), Ok(m));
}

#[test]
fn routes_contacts_and_auth_headers() {
    let bytes = crlf(&[
        "SIP/2.0 407 Proxy Authentication Required",
        "Via: SIP/2.0/UDP gw;branch=z9hG4bKa",
        "From: <sip:web@gw>;tag=1",
        "To: <sip:conf@mcu>;tag=2",
        "Call-ID: x",
        "CSeq: 1 INVITE",
        "Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
        "Record-Route: <sip:p3.example.com;lr>",
        "Contact: \"MCU, main\" <sip:mcu@10.0.0.5>;expires=60, <sip:backup@10.0.0.6>",
        "Proxy-Authenticate: Digest realm=\"proxy\", nonce=\"abc\", qop=\"auth\", opaque=\"o\"",
        "WWW-Authenticate: Basic realm=\"ignored\"",
        "WWW-Authenticate: Digest realm=\"mcu\", nonce=\"def\"",
        "Content-Length: 0",
        "",
    ]);
    let m = Message::parse(&bytes).expect("parse");
    let rr: Vec<String> = m
        .record_route()
        .expect("rr")
        .iter()
        .map(|r| r.uri.host.clone())
        .collect();
    assert_eq!(rr, ["p1.example.com", "p2.example.com", "p3.example.com"]);
    assert_eq!(m.route(), Ok(Vec::new()));
    let contact = m.contact().expect("contact").expect("present");
    assert_eq!(contact.display_name.as_deref(), Some("MCU, main"));
    assert_eq!(contact.params.value("expires"), Some("60"));
    assert_eq!(m.headers.get_all("m").count(), 2);
    let challenges = m.challenges().expect("challenges");
    assert_eq!(challenges.len(), 2, "Basic is skipped");
    assert_eq!(challenges[0].kind, ChallengeKind::Www);
    assert_eq!(challenges[0].realm, "mcu");
    assert_eq!(challenges[1].kind, ChallengeKind::Proxy);
    assert_eq!(challenges[1].qop, vec!["auth"]);
    assert_eq!(m.credentials(), Ok(Vec::new()));
}

#[test]
fn body_length_rules() {
    let head = |cl: Option<&str>| {
        let mut lines = vec![
            "OPTIONS sip:mcu SIP/2.0",
            "Via: SIP/2.0/UDP gw;branch=z9hG4bKa",
            "From: <sip:web@gw>;tag=1",
            "To: <sip:mcu@mcu>",
            "Call-ID: x",
            "CSeq: 1 OPTIONS",
        ];
        let line;
        if let Some(cl) = cl {
            line = format!("Content-Length: {cl}");
            lines.push(&line);
        }
        lines.push("");
        crlf(&lines)
    };
    let with = |cl: Option<&str>, body: &[u8]| {
        let mut bytes = head(cl);
        bytes.extend_from_slice(body);
        bytes
    };
    // UDP: no Content-Length means the rest of the datagram.
    assert_eq!(
        Message::parse(&with(None, b"hello")).map(|m| m.body),
        Ok(b"hello".to_vec())
    );
    // Bytes past Content-Length are ignored (RFC 3261 §18.3).
    assert_eq!(
        Message::parse(&with(Some("2"), b"hello")).map(|m| m.body),
        Ok(b"he".to_vec())
    );
    assert_eq!(
        Message::parse(&with(Some("9"), b"hello")),
        Err(SipError::Truncated {
            declared: 9,
            available: 5
        })
    );
    for bad in ["x", "-1", "", "1 2", "99999999999", "+5", "0x10"] {
        assert_eq!(
            Message::parse(&with(Some(bad), b"")),
            Err(SipError::BadContentLength),
            "{bad:?}"
        );
    }
    // Two Content-Length fields must agree.
    let mut twice = head(Some("5"));
    twice.truncate(twice.len() - 2);
    twice.extend_from_slice(b"l: 4\r\n\r\nhello");
    assert_eq!(Message::parse(&twice), Err(SipError::BadContentLength));
    let mut agree = head(Some("5"));
    agree.truncate(agree.len() - 2);
    agree.extend_from_slice(b"l: 5\r\n\r\nhello");
    assert_eq!(
        Message::parse(&agree).map(|m| m.body),
        Ok(b"hello".to_vec())
    );
}

#[test]
fn bare_lf_and_leading_crlf_are_accepted() {
    let text = "\r\n\r\nBYE sip:web@gw SIP/2.0\nVia: SIP/2.0/UDP mcu;branch=z9hG4bKz\nFrom: <sip:mcu@mcu>;tag=a\nTo: <sip:web@gw>;tag=b\nCall-ID: c\nCSeq: 2 BYE\nContent-Length: 0\n\n";
    let m = Message::parse(text.as_bytes()).expect("parse");
    assert_eq!(m.method(), Some(&Method::Bye));
    assert_eq!(keepalive_len(text.as_bytes()), 4);
}

#[test]
fn limits_are_errors() {
    let mut base = crlf(&[
        "OPTIONS sip:mcu SIP/2.0",
        "Via: SIP/2.0/UDP gw;branch=z9hG4bKa",
        "From: <sip:web@gw>;tag=1",
        "To: <sip:mcu@mcu>",
        "Call-ID: x",
        "CSeq: 1 OPTIONS",
    ]);
    // One header line over 8 KiB.
    let mut long = base.clone();
    long.extend_from_slice(format!("X-Long: {}\r\n\r\n", "a".repeat(MAX_LINE_BYTES)).as_bytes());
    assert_eq!(
        Message::parse(&long),
        Err(SipError::LineTooLong {
            max: MAX_LINE_BYTES
        })
    );
    assert_eq!(
        frame(&long),
        Err(SipError::LineTooLong {
            max: MAX_LINE_BYTES
        })
    );
    // A line that grows past the limit by folding.
    let mut folded = base.clone();
    folded.extend_from_slice(b"X-Folded: a\r\n");
    for _ in 0..(MAX_LINE_BYTES / 1000 + 1) {
        folded.extend_from_slice(format!(" {}\r\n", "b".repeat(1000)).as_bytes());
    }
    folded.extend_from_slice(b"\r\n");
    assert_eq!(
        Message::parse(&folded),
        Err(SipError::LineTooLong {
            max: MAX_LINE_BYTES
        })
    );
    // Too many header fields, as lines or as one comma list.
    let mut many = base.clone();
    for i in 0..MAX_HEADERS {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(
        Message::parse(&many),
        Err(SipError::TooManyHeaders { max: MAX_HEADERS })
    );
    let mut list = base.clone();
    list.extend_from_slice(
        format!("Supported: {}\r\n\r\n", vec!["t"; MAX_HEADERS].join(",")).as_bytes(),
    );
    assert_eq!(
        Message::parse(&list),
        Err(SipError::TooManyHeaders { max: MAX_HEADERS })
    );
    // The whole message over 64 KiB, on a datagram and on a stream.
    base.extend_from_slice(b"Content-Length: 70000\r\n\r\n");
    let mut huge = base.clone();
    huge.resize(base.len() + 70_000, b'x');
    assert_eq!(
        Message::parse(&huge),
        Err(SipError::TooLarge {
            max: MAX_MESSAGE_BYTES
        })
    );
    assert_eq!(
        frame(&base),
        Err(SipError::TooLarge {
            max: MAX_MESSAGE_BYTES
        }),
        "refused before the body arrives"
    );
    // Headers that never end.
    let endless: Vec<u8> = b"OPTIONS sip:mcu SIP/2.0\r\n"
        .iter()
        .copied()
        .chain(std::iter::repeat_n(b"X: y\r\n".iter().copied(), 20_000).flatten())
        .collect();
    assert!(matches!(
        frame(&endless),
        Err(SipError::TooManyHeaders { .. } | SipError::TooLarge { .. })
    ));
}

#[test]
fn garbage_is_refused() {
    let valid_tail = "\r\nVia: SIP/2.0/UDP gw;branch=z9hG4bKa\r\nFrom: <sip:a@gw>;tag=1\r\nTo: <sip:b@mcu>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
    type Check = fn(&SipError) -> bool;
    let cases: &[(&str, Check)] = &[
        ("", |e| *e == SipError::Incomplete),
        ("\r\n\r\n", |e| *e == SipError::Incomplete),
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", |e| {
            matches!(e, SipError::Unsupported(_))
        }),
        ("hello world\r\n\r\n", |e| {
            matches!(e, SipError::BadStartLine(_))
        }),
        ("OPTIONS sip:mcu SIP/2.0", |e| *e == SipError::Incomplete),
        ("SIP/2.0 99 Too Low\r\n\r\n", |e| {
            matches!(e, SipError::BadStartLine(_))
        }),
        ("SIP/2.0 700 Too High\r\n\r\n", |e| {
            matches!(e, SipError::BadStartLine(_))
        }),
        ("SIP/2.0 2000 OK\r\n\r\n", |e| {
            matches!(e, SipError::BadStartLine(_))
        }),
        ("SIP/3.0 200 OK\r\n\r\n", |e| {
            matches!(e, SipError::Unsupported(_))
        }),
        ("OPTIONS tel:+123 SIP/2.0\r\n\r\n", |e| {
            matches!(e, SipError::Unsupported(_))
        }),
        ("OPTIONS  sip:mcu SIP/2.0\r\n\r\n", |e| {
            matches!(e, SipError::BadStartLine(_))
        }),
        ("OPT IONS sip:mcu SIP/2.0\r\n\r\n", |e| {
            matches!(e, SipError::BadStartLine(_))
        }),
        ("OPTIONS sip:m<cu SIP/2.0\r\n\r\n", |e| {
            matches!(e, SipError::BadUri(_))
        }),
        ("OPTIONS sip:mcu SIP/2.0\r\n folded first\r\n\r\n", |e| {
            matches!(e, SipError::BadHeader(_))
        }),
        ("OPTIONS sip:mcu SIP/2.0\r\nno colon\r\n\r\n", |e| {
            matches!(e, SipError::BadHeader(_))
        }),
        ("OPTIONS sip:mcu SIP/2.0\r\nBad Name: x\r\n\r\n", |e| {
            matches!(e, SipError::BadHeader(_))
        }),
        ("OPTIONS sip:mcu SIP/2.0\r\nX: a\rb\r\n\r\n", |e| {
            matches!(e, SipError::BadHeader(_))
        }),
        ("OPTIONS sip:mcu SIP/2.0\r\nX: a\0b\r\n\r\n", |e| {
            matches!(e, SipError::BadHeader(_))
        }),
        ("OPTIONS sip:mcu SIP/2.0\r\n\r\n", |e| {
            *e == SipError::MissingHeader("Via")
        }),
    ];
    for (input, expected) in cases {
        let error = Message::parse(input.as_bytes()).expect_err(input);
        assert!(expected(&error), "{input:?} gave {error:?}");
    }
    // A valid head with one mandatory piece broken.
    for (from, to) in [
        ("Via: SIP/2.0/UDP gw;branch=z9hG4bKa", "Via: SIP/2.0/UDP"),
        ("From: <sip:a@gw>;tag=1", "From: <sip:a@gw"),
        ("To: <sip:b@mcu>", "To: nothing"),
        ("Call-ID: x", "Call-ID: x y"),
        ("CSeq: 1 OPTIONS", "CSeq: 1 INVITE"),
        ("CSeq: 1 OPTIONS", "CSeq: one OPTIONS"),
    ] {
        let text = format!("OPTIONS sip:mcu SIP/2.0{valid_tail}").replace(from, to);
        assert!(Message::parse(text.as_bytes()).is_err(), "{text:?}");
    }
    let text = format!("OPTIONS sip:mcu SIP/2.0{valid_tail}");
    assert!(Message::parse(text.as_bytes()).is_ok());
    // Not UTF-8 in a header.
    let mut latin1 = text.into_bytes();
    latin1.splice(30..30, [0xe9]);
    assert!(matches!(
        Message::parse(&latin1),
        Err(SipError::BadHeader(_))
    ));
}

#[test]
fn stream_framing() {
    let one = sipp_200();
    let body_len = one.len()
        - one
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head end")
        - 4;
    assert!(body_len > 0);
    // Every strict prefix needs more bytes; the whole message is framed.
    for cut in 0..one.len() {
        assert_eq!(frame(&one[..cut]), Ok(None), "prefix of {cut} bytes");
    }
    assert_eq!(frame(&one), Ok(Some(one.len())));
    // Two messages and a keep-alive back to back.
    let mut stream = b"\r\n\r\n".to_vec();
    stream.extend_from_slice(&one);
    stream.extend_from_slice(&one);
    stream.extend_from_slice(b"SIP/2.0 100 Tr");
    assert_eq!(keepalive_len(&stream), 4);
    let first = frame(&stream).expect("frame").expect("complete");
    assert_eq!(first, 4 + one.len());
    assert_eq!(Message::parse(&stream[..first]), Message::parse(&one));
    let rest = &stream[first..];
    let second = frame(rest).expect("frame").expect("complete");
    assert_eq!(second, one.len());
    assert_eq!(frame(&rest[second..]), Ok(None));
    // Only keep-alives: nothing to frame yet.
    assert_eq!(frame(b"\r\n\r\n"), Ok(None));
    assert_eq!(keepalive_len(b"\r\n\r\n"), 4);
    // No Content-Length on a stream cannot be framed.
    let text = String::from_utf8(one.clone()).expect("utf-8");
    let start = text.find("Content-Length").expect("has it");
    let end = start + text[start..].find("\r\n").expect("line end") + 2;
    let without = format!("{}{}", &text[..start], &text[end..]);
    assert_eq!(
        frame(without.as_bytes()),
        Err(SipError::MissingContentLength)
    );
    // A non-SIP peer is refused as soon as its first line is complete.
    assert!(matches!(
        frame(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        Err(SipError::Unsupported(_))
    ));
    assert!(frame(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n").is_err());
}

#[test]
fn builds_a_correct_invite() {
    let m = invite_builder()
        .header("User-Agent", "confgate/0.1")
        .body("application/sdp", b"v=0\r\n".to_vec())
        .build()
        .expect("build");
    let text = String::from_utf8(m.to_bytes()).expect("utf-8");
    assert_eq!(
        text,
        "INVITE sip:conf-1234@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabababababababababababab;rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Zoë \\\"the\\\" Member\" <sip:web-1@127.0.0.1:5070>;tag=0102030405060708\r\n\
         To: <sip:conf-1234@127.0.0.1:5060>\r\n\
         Call-ID: 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:web-1@127.0.0.1:5070>\r\n\
         User-Agent: confgate/0.1\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: 5\r\n\
         \r\n\
         v=0\r\n"
    );
    let back = Message::parse(text.as_bytes()).expect("parse");
    assert_eq!(back, m);
    assert_eq!(
        back.from().expect("from").display_name.as_deref(),
        Some("Zoë \"the\" Member")
    );
    assert_eq!(frame(text.as_bytes()), Ok(Some(text.len())));
}

#[test]
fn builder_refuses_incomplete_requests() {
    let uri = SipUri::parse("sip:a@b").expect("uri");
    assert!(matches!(
        RequestBuilder::new(Method::Options, uri).build(),
        Err(SipError::Misuse(_))
    ));
    let no_tag = invite_builder().from(NameAddr::parse("<sip:web@gw>", "From").expect("from"));
    assert!(matches!(no_tag.build(), Err(SipError::Misuse(_))));
    let mut via = Via::parse("SIP/2.0/UDP gw;branch=1234").expect("via");
    assert!(matches!(
        invite_builder().via(via.clone()).build(),
        Err(SipError::Misuse(_))
    ));
    via.params.remove("branch");
    assert!(matches!(
        invite_builder().via(via).build(),
        Err(SipError::Misuse(_))
    ));
    assert!(matches!(
        invite_builder().call_id("a b").build(),
        Err(SipError::Misuse(_))
    ));
    assert!(matches!(
        invite_builder().cseq(1 << 31).build(),
        Err(SipError::Misuse(_))
    ));
    assert!(matches!(
        invite_builder().header("Bad Name", "x").build(),
        Err(SipError::Misuse(_))
    ));
    assert!(matches!(
        invite_builder().header("Content-Length", "3").build(),
        Err(SipError::Misuse(_))
    ));
}

#[test]
fn header_values_cannot_inject_lines() {
    let m = invite_builder()
        .header("Subject", "hi\r\nBYE sip:x SIP/2.0\r\nX: y")
        .build()
        .expect("build");
    let bytes = m.to_bytes();
    let back = Message::parse(&bytes).expect("parse");
    assert_eq!(
        back.headers.get("Subject"),
        Some("hi  BYE sip:x SIP/2.0  X: y")
    );
    assert_eq!(back.headers.get("X"), None);
    let mut h = Headers::new();
    assert!(h.push("X-Ok", "v").is_ok());
    assert!(h.push("", "v").is_err());
    assert!(h.push("X:Bad", "v").is_err());
    h.set("x-ok", "w").expect("set");
    assert_eq!(h.get_all("X-OK").collect::<Vec<_>>(), ["w"]);
    h.remove("X-Ok");
    assert!(h.is_empty());
}

#[test]
fn responses_copy_the_request() {
    let bye = crlf(&[
        "BYE sip:web-1@127.0.0.1:5070;transport=UDP SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-4242-1-4",
        "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKprev",
        "From:<sip:conf-1234@127.0.0.1:5060>;tag=4242SIPpTag011",
        "To:\"Web Member\" <sip:web-1@127.0.0.1:5070>;tag=8f3a",
        "Call-ID: 0a1b2c3d",
        "CSeq: 1 BYE",
        "Contact: <sip:mcu@127.0.0.1:5060;transport=UDP>",
        "Max-Forwards: 70",
        "Content-Length: 0",
        "",
    ]);
    let request = Message::parse(&bye).expect("parse");
    let ok = Message::response_to(&request, 200, "OK", Some(&Tag::from_peer("unused")))
        .expect("respond");
    let text = String::from_utf8(ok.to_bytes()).expect("utf-8");
    assert_eq!(
        text,
        "SIP/2.0 200 OK\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-4242-1-4\r\n\
         Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKprev\r\n\
         From: <sip:conf-1234@127.0.0.1:5060>;tag=4242SIPpTag011\r\n\
         To: \"Web Member\" <sip:web-1@127.0.0.1:5070>;tag=8f3a\r\n\
         Call-ID: 0a1b2c3d\r\n\
         CSeq: 1 BYE\r\n\
         Content-Length: 0\r\n\r\n"
    );
    // A To without a tag gets ours, except on 100.
    let options = Message::parse(&crlf(&[
        "OPTIONS sip:web@gw SIP/2.0",
        "Via: SIP/2.0/UDP mcu;branch=z9hG4bKo",
        "From: <sip:mcu@mcu>;tag=m",
        "To: <sip:web@gw>",
        "Call-ID: q",
        "CSeq: 5 OPTIONS",
        "",
    ]))
    .expect("parse");
    let tag = Tag::from_random([9; 8]);
    let r = Message::response_to(&options, 200, "OK", Some(&tag)).expect("respond");
    assert_eq!(r.to().expect("to").tag(), Some(tag.as_str()));
    let r = Message::response_to(&options, 100, "Trying", Some(&tag)).expect("respond");
    assert_eq!(r.to().expect("to").tag(), None);
    assert!(
        Message::response_to(&r, 200, "OK", None).is_err(),
        "responses are not answered"
    );
    assert!(Message::response_to(&options, 99, "x", None).is_err());
}

#[test]
fn ids_from_randomness() {
    assert_eq!(
        Branch::from_random([0; 12]).as_str(),
        "z9hG4bK000000000000000000000000"
    );
    assert_eq!(Tag::from_random([0xff; 8]).as_str(), "ffffffffffffffff");
    assert_eq!(CallId::from_random([0x01; 16]).as_str().len(), 32);
}

/// Found by `scripts/fuzz.sh sip_parse` (crash-a5298761...): two list
/// entries, the first with an unbalanced quote, were joined on one line on
/// write-back and the quote swallowed the comma.
#[test]
fn regression_unbalanced_quote_in_a_joined_list() {
    let bytes = crlf(&[
        "SIP/2.0 401 Unauthorized",
        "Via: SIP/2.0/UDP gw;branch=z9hG4bKa",
        "From: <sip:a@gw>;tag=1",
        "To: <sip:b@mcu>;tag=2",
        "Call-ID: x",
        "CSeq: 1 INVITE",
        "e: x\", y",
        "e: z",
        "Supported: timer, 100rel",
        "Supported: path",
        "",
    ]);
    let m = Message::parse(&bytes).expect("parse");
    assert_eq!(
        m.headers.get_all("Content-Encoding").collect::<Vec<_>>(),
        ["x\", y", "z"]
    );
    let written = m.to_bytes();
    let text = String::from_utf8(written.clone()).expect("utf-8");
    assert!(
        text.contains("Supported: timer, 100rel, path\r\n"),
        "{text}"
    );
    assert_eq!(Message::parse(&written), Ok(m));
}

/// A SIP-looking message from parts proptest varies, built with the builder.
fn arbitrary_request() -> impl Strategy<Value = Message> {
    (
        prop::sample::select(vec![
            Method::Invite,
            Method::Bye,
            Method::Options,
            Method::Info,
            Method::Update,
            Method::Other("PUBLISH".into()),
        ]),
        "[a-z0-9][a-z0-9.-]{0,20}",
        prop::option::of(any::<u16>()),
        any::<[u8; 12]>(),
        any::<[u8; 8]>(),
        any::<[u8; 16]>(),
        0u32..(1 << 31),
        "\\PC{0,30}",
        prop::collection::vec(any::<u8>(), 0..200),
        prop::sample::select(vec![Transport::Udp, Transport::Tcp, Transport::Tls]),
    )
        .prop_map(
            |(method, host, port, branch, tag, call_id, seq, display, body, transport)| {
                let uri = SipUri::new(crate::sip::uri::Scheme::Sip, Some("conf"), &host, port)
                    .expect("valid host");
                let sent_by = SentBy {
                    transport,
                    host: host.clone(),
                    port,
                    rport: seq % 2 == 0,
                };
                let mut b = RequestBuilder::new(method, uri.clone())
                    .via(sent_by.via(&Branch::from_random(branch)))
                    .from(
                        NameAddr::new(uri.clone())
                            .with_display_name(&display)
                            .with_tag(Tag::from_random(tag).as_str()),
                    )
                    .to(NameAddr::new(uri))
                    .call_id(CallId::from_random(call_id).as_str())
                    .cseq(seq);
                if !body.is_empty() {
                    b = b.body("application/octet-stream", body);
                }
                b.build().expect("valid parts")
            },
        )
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = Message::parse(&bytes);
        let _ = frame(&bytes);
        let _ = keepalive_len(&bytes);
    }

    #[test]
    fn sip_shaped_text_never_panics(lines in prop::collection::vec("[ -~]{0,60}", 0..12), header in "(Via|v|From|f|To|t|Call-ID|i|CSeq|Contact|m|Content-Length|l|Session-Expires|WWW-Authenticate|Record-Route): ", value in "\\PC{0,80}") {
        let mut text = String::from("INVITE sip:a@b SIP/2.0\r\n");
        for line in &lines {
            text.push_str(line);
            text.push_str("\r\n");
        }
        text.push_str(&header);
        text.push_str(&value);
        text.push_str("\r\n\r\n");
        if let Ok(m) = Message::parse(text.as_bytes()) {
            let _ = (m.vias(), m.contact(), m.record_route(), m.session_expires(), m.challenges(), m.credentials(), m.min_se(), m.expires(), m.max_forwards());
        }
        let _ = frame(text.as_bytes());
    }

    #[test]
    fn mutated_valid_messages_never_panic(index in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut bytes = sipp_200();
        let i = index.index(bytes.len());
        bytes[i] = byte;
        let c = cut.index(bytes.len());
        let _ = Message::parse(&bytes);
        let _ = Message::parse(&bytes[..c]);
        let _ = frame(&bytes[..c]);
    }

    #[test]
    fn build_parse_round_trip(m in arbitrary_request()) {
        let bytes = m.to_bytes();
        let back = Message::parse(&bytes).expect("what we build parses");
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_bytes(), bytes.clone());
        prop_assert_eq!(frame(&bytes), Ok(Some(bytes.len())));
    }

    #[test]
    fn stream_framing_finds_every_boundary(messages in prop::collection::vec(arbitrary_request(), 1..4), chunk in 1usize..300) {
        let mut wire = Vec::new();
        for m in &messages {
            wire.extend_from_slice(&m.to_bytes());
        }
        // Feed the stream in chunks, as a socket would.
        let mut buffer: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        for piece in wire.chunks(chunk) {
            buffer.extend_from_slice(piece);
            while let Some(n) = frame(&buffer).expect("frames") {
                out.push(Message::parse(&buffer[..n]).expect("parses"));
                buffer.drain(..n);
            }
        }
        prop_assert!(buffer.is_empty());
        prop_assert_eq!(out, messages);
    }

    #[test]
    fn display_names_round_trip(name in "\\PC{1,40}") {
        let uri = SipUri::parse("sip:a@b").expect("uri");
        let addr = NameAddr::new(uri).with_display_name(&name).with_tag("t");
        let back = NameAddr::parse(&addr.to_string(), "From").expect("parses");
        prop_assert_eq!(back, addr);
    }
}
