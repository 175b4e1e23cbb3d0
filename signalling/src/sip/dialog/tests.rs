use std::time::{Duration, Instant};

use super::*;
use crate::sip::digest::Credentials;
use crate::sip::header::Transport;
use crate::sip::uri::Scheme;

pub(crate) fn config(transport: Transport) -> CallConfig {
    let t = transport.as_str().to_ascii_lowercase();
    CallConfig {
        from: NameAddr::new(SipUri::parse("sip:web-1@127.0.0.1:5070").expect("uri"))
            .with_display_name("Web Member"),
        to: NameAddr::new(SipUri::parse("sip:conf-1234@127.0.0.1:5060").expect("uri")),
        request_uri: SipUri::parse("sip:conf-1234@127.0.0.1:5060").expect("uri"),
        contact: SipUri::new(Scheme::Sip, Some("web-1"), "127.0.0.1", Some(5070))
            .expect("uri")
            .with_param("transport", Some(&t)),
        sent_by: SentBy {
            transport,
            host: "127.0.0.1".into(),
            port: Some(5070),
            rport: true,
        },
        route: Vec::new(),
        session_timer: Some(SessionTimerConfig::default()),
        user_agent: Some("confgate/0.1".into()),
    }
}

pub(crate) fn branch(n: u8) -> Branch {
    Branch::from_random([n; Branch::RANDOM_BYTES])
}

pub(crate) fn invitation(transport: Transport) -> Invitation {
    Invitation::new(
        config(transport),
        CallId::from_random([0x11; 16]),
        Tag::from_random([0x22; 8]),
        1,
    )
}

const OFFER: &[u8] = b"v=0\r\nm=audio 30000 RTP/AVP 111\r\n";

/// A response from the MCU to `request`, with its tag, Contact and extras.
fn mcu_response(request: &Message, status: u16, extra: &[(&str, &str)]) -> Message {
    let mut r = Message::response_to(request, status, "Whatever", Some(&Tag::from_peer("mcu1")))
        .expect("response");
    r.headers
        .push("Contact", "<sip:mcu@10.0.0.9:5060;transport=udp>")
        .expect("contact");
    for (name, value) in extra {
        r.headers.push(name, value).expect("header");
    }
    r
}

/// A request from the MCU inside `dialog`.
fn mcu_request(
    dialog: &Dialog,
    method: &str,
    cseq: u32,
    branch: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Message {
    let mut text = format!(
        "{method} sip:web-1@127.0.0.1:5070 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.9:5060;branch={branch}\r\n\
         From: <sip:conf-1234@127.0.0.1:5060>;tag={}\r\n\
         To: \"Web Member\" <sip:web-1@127.0.0.1:5070>;tag={}\r\n\
         Call-ID: {}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:mcu@10.0.0.9:5061>\r\n",
        dialog.id().remote_tag,
        dialog.id().local_tag,
        dialog.id().call_id
    );
    for (name, value) in extra {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    Message::parse(&bytes).expect("mcu request")
}

fn confirmed(now: Instant, extra: &[(&str, &str)]) -> (Invitation, Dialog) {
    let mut inv = invitation(Transport::Udp);
    let invite = inv.invite(OFFER.to_vec(), &branch(1)).expect("invite");
    let ok = mcu_response(&invite, 200, extra);
    let dialog = inv.dialog(&ok, now).expect("dialog");
    (inv, dialog)
}

#[test]
fn the_invite_carries_what_the_mcu_needs() {
    let mut inv = invitation(Transport::Udp);
    let invite = inv.invite(OFFER.to_vec(), &branch(1)).expect("invite");
    let text = String::from_utf8(invite.to_bytes()).expect("utf-8");
    assert_eq!(
        text,
        "INVITE sip:conf-1234@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK010101010101010101010101;rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Web Member\" <sip:web-1@127.0.0.1:5070>;tag=2222222222222222\r\n\
         To: <sip:conf-1234@127.0.0.1:5060>\r\n\
         Call-ID: 11111111111111111111111111111111\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:web-1@127.0.0.1:5070;transport=udp>\r\n\
         Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE\r\n\
         Supported: timer\r\n\
         Session-Expires: 1800;refresher=uac\r\n\
         Min-SE: 90\r\n\
         User-Agent: confgate/0.1\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: 32\r\n\
         \r\n\
         v=0\r\nm=audio 30000 RTP/AVP 111\r\n"
    );
    assert_eq!(inv.current_invite(), Some(&invite));
    assert!(matches!(
        inv.invite(Vec::new(), &branch(2)),
        Err(SipError::Misuse(_))
    ));
}

#[test]
fn cancel_matches_the_pending_invite() {
    let mut inv = invitation(Transport::Udp);
    assert!(inv.cancel().is_err(), "nothing to cancel yet");
    let invite = inv.invite(OFFER.to_vec(), &branch(1)).expect("invite");
    let cancel = inv.cancel().expect("cancel");
    assert_eq!(cancel.method(), Some(&Method::Cancel));
    assert_eq!(cancel.request_uri(), invite.request_uri());
    assert_eq!(cancel.vias(), invite.vias(), "the same branch");
    assert_eq!(cancel.from(), invite.from());
    assert_eq!(cancel.to(), invite.to());
    assert_eq!(cancel.call_id(), invite.call_id());
    assert_eq!(
        cancel.cseq(),
        Ok(CSeq {
            seq: 1,
            method: Method::Cancel
        })
    );
    assert_eq!(cancel.max_forwards(), Ok(Some(70)));
    assert!(cancel.contact().expect("contact").is_none());
    assert!(cancel.body.is_empty());
    assert!(cancel_for(&cancel).is_err(), "only an INVITE is cancelled");
}

#[test]
fn a_2xx_makes_a_confirmed_dialog_with_reversed_routes() {
    let now = Instant::now();
    let (_, mut dialog) = confirmed(
        now,
        &[
            (
                "Record-Route",
                "<sip:p2.example.com;lr>, <sip:p1.example.com;lr>",
            ),
            ("Allow", "INVITE, ACK, BYE, UPDATE"),
        ],
    );
    assert_eq!(dialog.state(), DialogState::Confirmed);
    assert_eq!(dialog.id().remote_tag, "mcu1");
    assert_eq!(dialog.id().local_tag, "2222222222222222");
    assert_eq!(
        dialog.remote_target().to_string(),
        "sip:mcu@10.0.0.9:5060;transport=udp"
    );
    let hosts: Vec<&str> = dialog
        .route_set()
        .iter()
        .map(|r| r.uri.host.as_str())
        .collect();
    assert_eq!(hosts, ["p1.example.com", "p2.example.com"]);
    assert!(dialog.peer_allows(&Method::Update));
    assert!(!dialog.peer_allows(&Method::Info));
    assert_eq!(
        dialog.session_timer(),
        None,
        "no Session-Expires in the 2xx"
    );

    let bye = dialog.bye(&branch(3)).expect("bye");
    assert_eq!(bye.request_uri(), Some(dialog.remote_target()));
    let routes: Vec<String> = bye
        .route()
        .expect("route")
        .iter()
        .map(|r| r.uri.host.clone())
        .collect();
    assert_eq!(routes, ["p1.example.com", "p2.example.com"]);
    assert_eq!(
        bye.cseq(),
        Ok(CSeq {
            seq: 2,
            method: Method::Bye
        })
    );
    assert_eq!(bye.to().expect("to").tag(), Some("mcu1"));
    assert_eq!(bye.from().expect("from").tag(), Some("2222222222222222"));
    assert_eq!(
        bye.from().expect("from").display_name.as_deref(),
        Some("Web Member")
    );
    assert_eq!(
        bye.top_via().expect("via").branch(),
        Some(branch(3).as_str())
    );
    assert_eq!(bye.headers.get("User-Agent"), Some("confgate/0.1"));
    assert_eq!(
        dialog.state(),
        DialogState::Terminated,
        "over once BYE is sent"
    );
    assert!(dialog.options(&branch(4)).is_err());
}

#[test]
fn strict_routers_take_the_request_uri() {
    let now = Instant::now();
    let (_, mut dialog) = confirmed(now, &[("Record-Route", "<sip:strict.example.com>")]);
    let info = dialog.info_picture_fast_update(&branch(3)).expect("info");
    assert_eq!(
        info.request_uri().map(|u| u.host.as_str()),
        Some("strict.example.com")
    );
    let route = info.route().expect("route");
    assert_eq!(route.len(), 1);
    assert_eq!(
        route[0].uri.to_string(),
        "sip:mcu@10.0.0.9:5060;transport=udp"
    );
}

#[test]
fn the_ack_for_a_2xx_reuses_the_invite_cseq_and_credentials() {
    let now = Instant::now();
    let mut inv = invitation(Transport::Udp);
    let invite = inv.invite(OFFER.to_vec(), &branch(1)).expect("invite");
    let challenge = mcu_response(
        &invite,
        401,
        &[(
            "WWW-Authenticate",
            "Digest realm=\"mcu\", nonce=\"n1\", qop=\"auth\"",
        )],
    );
    let invite2 = inv
        .authenticate(&challenge, "alice", "secret", "c0ffee", &branch(2))
        .expect("auth");
    let ok = mcu_response(&invite2, 200, &[]);
    let mut dialog = inv.dialog(&ok, now).expect("dialog");
    assert_eq!(dialog.local_cseq(), 2);
    let ack = dialog.ack(&ok, &branch(3), None).expect("ack");
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(
        ack.cseq(),
        Ok(CSeq {
            seq: 2,
            method: Method::Ack
        })
    );
    assert_eq!(ack.request_uri(), Some(dialog.remote_target()));
    assert_eq!(
        ack.headers.get("Authorization"),
        invite2.headers.get("Authorization")
    );
    assert!(ack.contact().expect("contact").is_none());
    // A retransmitted 2xx gets the very same ACK.
    assert_eq!(dialog.ack(&ok, &branch(9), Some(b"x".to_vec())), Ok(ack));
    // The next request continues from the INVITE's CSeq.
    let options = dialog.options(&branch(4)).expect("options");
    assert_eq!(options.cseq().map(|c| c.seq), Ok(3));
    assert!(
        dialog
            .ack(&mcu_response(&invite2, 486, &[]), &branch(5), None)
            .is_err()
    );
}

#[test]
fn an_early_dialog_is_confirmed_by_the_2xx() {
    let now = Instant::now();
    let mut inv = invitation(Transport::Udp);
    let invite = inv.invite(OFFER.to_vec(), &branch(1)).expect("invite");
    let trying = Message::response_to(&invite, 100, "Trying", None).expect("100");
    assert!(inv.dialog(&trying, now).is_err(), "a 100 has no tag");
    let ringing = mcu_response(&invite, 180, &[]);
    let mut dialog = inv.dialog(&ringing, now).expect("early");
    assert_eq!(dialog.state(), DialogState::Early);
    assert!(
        dialog.bye(&branch(2)).is_err(),
        "no BYE in an early dialog: CANCEL it"
    );
    let ok = mcu_response(
        &invite,
        200,
        &[
            ("Record-Route", "<sip:p.example.com;lr>"),
            ("Session-Expires", "600;refresher=uac"),
        ],
    );
    dialog.on_invite_response(&ok, now).expect("confirm");
    assert_eq!(dialog.state(), DialogState::Confirmed);
    assert_eq!(dialog.route_set().len(), 1, "recomputed from the 2xx");
    assert!(dialog.session_timer().is_some());
    let mut other = ok.clone();
    other
        .headers
        .set("To", "<sip:conf-1234@127.0.0.1:5060>;tag=fork2")
        .expect("to");
    assert_eq!(
        dialog.on_invite_response(&other, now),
        Err(SipError::NotThisDialog)
    );
    assert!(matches!(
        inv.dialog(&mcu_response(&invite, 486, &[]), now),
        Err(SipError::Misuse(_))
    ));
    let mut stranger = ok;
    stranger
        .headers
        .set("Call-ID", "someone-else")
        .expect("call-id");
    assert!(inv.dialog(&stranger, now).is_err());
}

#[test]
fn in_dialog_requests_count_cseq_and_carry_what_they_need() {
    let now = Instant::now();
    let (_, mut dialog) = confirmed(
        now,
        &[
            ("Session-Expires", "1800;refresher=uac"),
            ("Require", "timer"),
        ],
    );
    let info = dialog.info_picture_fast_update(&branch(2)).expect("info");
    assert_eq!(
        info.cseq(),
        Ok(CSeq {
            seq: 2,
            method: Method::Info
        })
    );
    assert_eq!(
        info.content_type().as_deref(),
        Some("application/media_control+xml")
    );
    let xml = String::from_utf8(info.body.clone()).expect("utf-8");
    assert!(
        xml.contains("<media_control>")
            && xml.contains("<to_encoder>")
            && xml.contains("<picture_fast_update/>")
    );
    // RFC 5168's body is well-formed XML.
    let mut reader = quick_xml::Reader::from_str(&xml);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("bad XML: {e}"),
        }
    }
    let reinvite = dialog
        .reinvite(&branch(3), OFFER.to_vec())
        .expect("reinvite");
    assert_eq!(
        reinvite.cseq(),
        Ok(CSeq {
            seq: 3,
            method: Method::Invite
        })
    );
    assert_eq!(
        reinvite.contact().expect("contact").map(|c| c.uri),
        Some(config(Transport::Udp).contact)
    );
    assert_eq!(
        reinvite
            .session_expires()
            .expect("se")
            .map(|s| s.to_string())
            .as_deref(),
        Some("1800;refresher=uac")
    );
    assert!(reinvite.supports("timer"));
    assert_eq!(reinvite.body, OFFER);
    assert!(
        dialog.reinvite(&branch(4), OFFER.to_vec()).is_err(),
        "one offer at a time"
    );
    let ok = mcu_response(&reinvite, 200, &[("Session-Expires", "1800;refresher=uac")]);
    dialog.on_response(&ok, now).expect("2xx");
    let ack = dialog.ack(&ok, &branch(5), None).expect("ack");
    assert_eq!(
        ack.cseq(),
        Ok(CSeq {
            seq: 3,
            method: Method::Ack
        })
    );
    let update = dialog.update(&branch(6), None).expect("update");
    assert_eq!(update.cseq().map(|c| c.seq), Ok(4));
    assert!(update.body.is_empty());
    assert!(update.headers.get("Session-Expires").is_some());
    let options = dialog.options(&branch(7)).expect("options");
    assert_eq!(options.cseq().map(|c| c.seq), Ok(5));
    assert!(options.headers.get("Session-Expires").is_none());
    assert!(matches!(
        dialog.request(Method::Ack, &branch(8), None),
        Err(SipError::Misuse(_))
    ));
    // A 481 to anything ends the dialog.
    dialog
        .on_response(&mcu_response(&options, 481, &[]), now)
        .expect("481");
    assert_eq!(dialog.state(), DialogState::Terminated);
}

#[test]
fn the_peers_requests_are_answered() {
    let now = Instant::now();
    let (_, mut dialog) = confirmed(now, &[]);
    // INFO asking us for a key frame.
    let fir = mcu_request(
        &dialog,
        "INFO",
        10,
        "z9hG4bKa",
        &[("Content-Type", "application/media_control+xml")],
        PICTURE_FAST_UPDATE_XML.as_bytes(),
    );
    let PeerRequest::PictureFastUpdate { response } = dialog.on_request(&fir, now).expect("info")
    else {
        panic!("not a fast update");
    };
    assert_eq!(response.status(), Some(200));
    assert_eq!(response.cseq(), fir.cseq());
    // Its retransmission gets the same response.
    assert_eq!(
        dialog.on_request(&fir, now),
        Ok(PeerRequest::Retransmission {
            response: Some(response)
        })
    );
    // Other INFO.
    let dtmf = mcu_request(
        &dialog,
        "INFO",
        11,
        "z9hG4bKb",
        &[("Content-Type", "application/dtmf-relay")],
        b"Signal=5\r\n",
    );
    assert!(
        matches!(dialog.on_request(&dtmf, now), Ok(PeerRequest::Info { content_type: Some(ct), .. }) if ct == "application/dtmf-relay")
    );
    // OPTIONS.
    let options = mcu_request(&dialog, "OPTIONS", 12, "z9hG4bKc", &[], b"");
    let Ok(PeerRequest::Options { response }) = dialog.on_request(&options, now) else {
        panic!("options");
    };
    assert_eq!(
        response.option_tags("Allow").collect::<Vec<_>>().join(", "),
        ALLOW
    );
    // Out of order.
    let old = mcu_request(&dialog, "OPTIONS", 5, "z9hG4bKd", &[], b"");
    assert!(
        matches!(dialog.on_request(&old, now), Ok(PeerRequest::Rejected { response }) if response.status() == Some(500))
    );
    // Not implemented.
    let refer = mcu_request(&dialog, "REFER", 13, "z9hG4bKe", &[], b"");
    let Ok(PeerRequest::Rejected { response }) = dialog.on_request(&refer, now) else {
        panic!("refer");
    };
    assert_eq!(response.status(), Some(501));
    assert_eq!(
        response.option_tags("Allow").collect::<Vec<_>>().join(", "),
        ALLOW
    );
    // Another dialog.
    let mut stranger = mcu_request(&dialog, "BYE", 14, "z9hG4bKf", &[], b"");
    stranger.headers.set("Call-ID", "other").expect("call-id");
    assert_eq!(
        dialog.on_request(&stranger, now),
        Err(SipError::NotThisDialog)
    );
    // BYE.
    let bye = mcu_request(&dialog, "BYE", 14, "z9hG4bKg", &[], b"");
    let Ok(PeerRequest::Bye { response }) = dialog.on_request(&bye, now) else {
        panic!("bye");
    };
    assert_eq!(response.status(), Some(200));
    assert_eq!(dialog.state(), DialogState::Terminated);
    assert_eq!(
        dialog.on_request(&bye, now),
        Ok(PeerRequest::Retransmission {
            response: Some(response)
        })
    );
    let late = mcu_request(&dialog, "INFO", 15, "z9hG4bKh", &[], b"");
    assert!(
        matches!(dialog.on_request(&late, now), Ok(PeerRequest::Rejected { response }) if response.status() == Some(481))
    );
}

#[test]
fn a_peer_reinvite_is_an_offer_for_the_caller_to_answer() {
    let now = Instant::now();
    let (_, mut dialog) = confirmed(now, &[]);
    let sdp = b"v=0\r\nm=video 40002 RTP/AVP 96\r\n";
    let reinvite = mcu_request(
        &dialog,
        "INVITE",
        20,
        "z9hG4bKr",
        &[
            ("Content-Type", "application/sdp"),
            ("Supported", "timer"),
            ("Session-Expires", "600;refresher=uac"),
        ],
        sdp,
    );
    assert_eq!(
        dialog.on_request(&reinvite, now),
        Ok(PeerRequest::Offer {
            method: Method::Invite,
            offer: Some(sdp.to_vec())
        })
    );
    // A second one meanwhile is refused with Retry-After.
    let second = mcu_request(&dialog, "INVITE", 21, "z9hG4bKs", &[], b"");
    assert!(
        matches!(dialog.on_request(&second, now), Ok(PeerRequest::Rejected { response }) if response.status() == Some(500) && response.headers.get("Retry-After").is_some())
    );
    assert!(
        dialog.answer(&second, b"v=0\r\n".to_vec(), now).is_err(),
        "not the pending offer"
    );
    let answer = dialog
        .answer(&reinvite, b"v=0\r\nanswer\r\n".to_vec(), now)
        .expect("answer");
    assert_eq!(answer.status(), Some(200));
    assert_eq!(answer.body, b"v=0\r\nanswer\r\n");
    assert_eq!(answer.content_type().as_deref(), Some("application/sdp"));
    assert!(answer.contact().expect("contact").is_some());
    assert_eq!(
        answer.headers.get("Session-Expires"),
        Some("600;refresher=uac")
    );
    assert!(answer.requires("timer"));
    assert_eq!(
        dialog.remote_target().to_string(),
        "sip:mcu@10.0.0.9:5061",
        "target refresh"
    );
    let timer = dialog.session_timer().expect("timer");
    assert!(
        !timer.we_refresh(),
        "refresher=uac in the peer's request is the peer"
    );
    assert_eq!(timer.refresh_at(), None);
    // The ACK for our 2xx.
    let ack = mcu_request(&dialog, "ACK", 20, "z9hG4bKt", &[], b"");
    assert_eq!(
        dialog.on_request(&ack, now),
        Ok(PeerRequest::Ack { body: None })
    );
    // Glare: our re-INVITE is pending when theirs arrives.
    dialog
        .reinvite(&branch(9), b"v=0\r\n".to_vec())
        .expect("ours");
    let theirs = mcu_request(&dialog, "INVITE", 22, "z9hG4bKu", &[], b"v=0\r\n");
    assert!(
        matches!(dialog.on_request(&theirs, now), Ok(PeerRequest::Rejected { response }) if response.status() == Some(491))
    );
    // Too short an interval.
    let (_, mut fresh) = confirmed(now, &[]);
    let short = mcu_request(
        &fresh,
        "UPDATE",
        3,
        "z9hG4bKv",
        &[("Session-Expires", "30")],
        b"",
    );
    let Ok(PeerRequest::Rejected { response }) = fresh.on_request(&short, now) else {
        panic!("422");
    };
    assert_eq!(
        (response.status(), response.min_se()),
        (Some(422), Ok(Some(90)))
    );
    // A refresh by UPDATE without a body is answered at once.
    let refresh = mcu_request(
        &fresh,
        "UPDATE",
        4,
        "z9hG4bKw",
        &[("Session-Expires", "900")],
        b"",
    );
    let Ok(PeerRequest::Refreshed { response }) = fresh.on_request(&refresh, now) else {
        panic!("refresh");
    };
    assert_eq!(
        response.headers.get("Session-Expires"),
        Some("900;refresher=uac")
    );
    // Rejecting an offer.
    let offer = mcu_request(&fresh, "INVITE", 5, "z9hG4bKx", &[], b"v=0\r\n");
    fresh.on_request(&offer, now).expect("offer");
    let refused = fresh
        .reject(&offer, 488, "Not Acceptable Here")
        .expect("reject");
    assert_eq!(refused.status(), Some(488));
    assert!(fresh.reject(&offer, 488, "again").is_err());
}

#[test]
fn session_timer_when_we_refresh() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let (_, mut dialog) = confirmed(
        t0,
        &[
            ("Session-Expires", "1800;refresher=uac"),
            ("Require", "timer"),
        ],
    );
    let timer = *dialog.session_timer().expect("timer");
    assert!(timer.we_refresh());
    assert_eq!(timer.interval(), s(1800));
    assert_eq!(timer.refresh_at(), Some(t0 + s(900)));
    assert_eq!(timer.expires_at(), t0 + s(1800 - 32));
    assert_eq!(dialog.next_deadline(), Some(t0 + s(900)));
    assert_eq!(dialog.on_timer(t0 + s(899)), []);
    assert_eq!(dialog.on_timer(t0 + s(900)), [DialogTimerEvent::RefreshDue]);
    assert_eq!(dialog.on_timer(t0 + s(901)), [], "reported once");
    assert_eq!(dialog.next_deadline(), Some(t0 + s(1768)));
    // The refresh succeeds at 905 s: both deadlines move.
    let refresh = dialog
        .reinvite(&branch(5), OFFER.to_vec())
        .expect("refresh");
    let ok = mcu_response(&refresh, 200, &[("Session-Expires", "1800;refresher=uac")]);
    dialog.on_response(&ok, t0 + s(905)).expect("2xx");
    assert_eq!(dialog.next_deadline(), Some(t0 + s(905 + 900)));
    // Nothing refreshes after that: the session expires.
    assert_eq!(
        dialog.on_timer(t0 + s(1805)),
        [DialogTimerEvent::RefreshDue]
    );
    assert_eq!(
        dialog.on_timer(t0 + s(905 + 1768)),
        [DialogTimerEvent::SessionExpired]
    );
    assert_eq!(dialog.next_deadline(), None);
}

#[test]
fn session_timer_when_the_peer_refreshes_or_declines() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let (_, mut dialog) = confirmed(t0, &[("Session-Expires", "90;refresher=uas")]);
    let timer = *dialog.session_timer().expect("timer");
    assert!(!timer.we_refresh());
    assert_eq!(timer.refresh_at(), None);
    assert_eq!(timer.expires_at(), t0 + s(60), "90 - min(32, 90/3)");
    assert_eq!(dialog.next_deadline(), Some(t0 + s(60)));
    // The peer refreshes at 50 s with an UPDATE.
    let update = mcu_request(
        &dialog,
        "UPDATE",
        2,
        "z9hG4bKu",
        &[("Session-Expires", "90;refresher=uac")],
        b"",
    );
    assert!(matches!(
        dialog.on_request(&update, t0 + s(50)),
        Ok(PeerRequest::Refreshed { .. })
    ));
    assert_eq!(dialog.next_deadline(), Some(t0 + s(110)));
    assert_eq!(
        dialog.on_timer(t0 + s(110)),
        [DialogTimerEvent::SessionExpired]
    );

    // A 2xx with Session-Expires but no refresher: we refresh.
    let (_, dialog) = confirmed(t0, &[("Session-Expires", "1800")]);
    assert!(dialog.session_timer().expect("timer").we_refresh());
}

#[test]
fn a_422_raises_the_interval() {
    let mut inv = invitation(Transport::Udp);
    let invite = inv.invite(OFFER.to_vec(), &branch(1)).expect("invite");
    let too_small = mcu_response(&invite, 422, &[("Min-SE", "3600")]);
    let retry = inv
        .retry_with_min_se(&too_small, &branch(2))
        .expect("retry");
    assert_eq!(retry.cseq().map(|c| c.seq), Ok(2));
    assert_eq!(
        retry.session_expires().expect("se").map(|s| s.delta),
        Some(3600)
    );
    assert_eq!(retry.min_se(), Ok(Some(3600)));
    assert_eq!(retry.call_id(), invite.call_id());
    assert_eq!(retry.from(), invite.from());
    assert_ne!(
        retry.top_via().expect("via").branch(),
        invite.top_via().expect("via").branch()
    );
    let again = mcu_response(&retry, 422, &[("Min-SE", "3600")]);
    assert!(
        inv.retry_with_min_se(&again, &branch(3)).is_err(),
        "no progress possible"
    );
    assert!(
        inv.retry_with_min_se(&mcu_response(&retry, 486, &[]), &branch(3))
            .is_err()
    );
}

#[test]
fn authentication_retries_once_per_realm() {
    let mut inv = invitation(Transport::Udp);
    let invite = inv.invite(OFFER.to_vec(), &branch(1)).expect("invite");
    let challenge = mcu_response(
        &invite,
        407,
        &[(
            "Proxy-Authenticate",
            "Digest realm=\"proxy\", nonce=\"n1\", qop=\"auth\", opaque=\"op\"",
        )],
    );
    let second = inv
        .authenticate(&challenge, "alice", "secret", "cn1", &branch(2))
        .expect("auth");
    assert_eq!(second.cseq().map(|c| c.seq), Ok(2));
    assert_eq!(second.call_id(), invite.call_id());
    assert_eq!(second.from(), invite.from());
    assert_eq!(second.body, invite.body);
    let creds = second.credentials().expect("creds");
    assert_eq!(creds.len(), 1);
    let c: &Credentials = &creds[0];
    assert_eq!(c.header_name(), "Proxy-Authorization");
    assert_eq!(
        (c.username.as_str(), c.uri.as_str()),
        ("alice", "sip:conf-1234@127.0.0.1:5060")
    );
    assert_eq!(
        (c.nc.as_deref(), c.opaque.as_deref()),
        (Some("00000001"), Some("op"))
    );
    assert!(c.verify("secret", "INVITE", &second.body));
    // The nonce went stale: retry with the count going on for a same nonce.
    let stale = mcu_response(
        &second,
        407,
        &[(
            "Proxy-Authenticate",
            "Digest realm=\"proxy\", nonce=\"n1\", qop=\"auth\", stale=true",
        )],
    );
    let third = inv
        .authenticate(&stale, "alice", "secret", "cn2", &branch(3))
        .expect("stale");
    assert_eq!(
        third.credentials().expect("creds")[0].nc.as_deref(),
        Some("00000002")
    );
    // Refused again without stale: the password is wrong.
    let refused = mcu_response(
        &third,
        407,
        &[("Proxy-Authenticate", "Digest realm=\"proxy\", nonce=\"n2\"")],
    );
    assert_eq!(
        inv.authenticate(&refused, "alice", "secret", "cn3", &branch(4)),
        Err(SipError::AuthenticationRejected {
            realm: "proxy".into()
        })
    );
    // Responses that are not challenges to the current INVITE.
    assert!(
        inv.authenticate(&challenge, "alice", "secret", "x", &branch(5))
            .is_err(),
        "an old CSeq"
    );
    let no_challenge = mcu_response(&third, 401, &[]);
    assert!(matches!(
        inv.authenticate(&no_challenge, "alice", "secret", "x", &branch(5)),
        Err(SipError::Unsupported(_))
    ));
}
