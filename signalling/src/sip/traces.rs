//! The UAC against the MCU's scripts: the `<send>` blocks of the sipp UAS
//! scenarios in /work/shared/sip-scenarios/ (uas_answer, uas_auth, uas_busy,
//! uas_bye, uas_noanswer), copied verbatim below and filled in the way sipp
//! 3.6 fills them: `[last_X:]` copies the X header lines of the last message
//! received, `[len]` is the body length, lines lose their indentation and end
//! in CRLF, and a line left empty by a missing `[last_X:]` is dropped. Every
//! call runs over UDP and over TCP (framed with [`frame`]), on virtual time.

use std::time::{Duration, Instant};

use super::dialog::tests::{branch, invitation};
use super::*;

const TRYING: &str = r#"
      SIP/2.0 100 Trying
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Content-Length: 0
"#;

const RINGING: &str = r#"
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:mcu@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
"#;

const OK_WITH_SDP: &str = r#"
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:mcu@[local_ip]:[local_port];transport=[transport]>
      Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
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
"#;

/// The 200 to our BYE (uas_answer.xml) and to nothing else.
const OK_PLAIN: &str = r#"
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Content-Length: 0
"#;

const UNAUTHORIZED: &str = r#"
      SIP/2.0 401 Unauthorized
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:mcu@[local_ip]:[local_port];transport=[transport]>
      WWW-Authenticate: Digest realm="sipp-mcu", nonce="[pid]n[call_number]x[clock_tick]", algorithm=MD5
      Content-Length: 0
"#;

const FORBIDDEN: &str = r#"
      SIP/2.0 403 Forbidden
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:mcu@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
"#;

const BUSY: &str = r#"
      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:mcu@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
"#;

const BYE_FROM_UAS: &str = r#"
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From:[$inv_to];tag=[pid]SIPpTag01[call_number]
      To:[$inv_from]
      Call-ID: [call_id]
      CSeq: [cseq] BYE
      Contact: <sip:mcu@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0
"#;

/// uas_noanswer.xml's 200 to the CANCEL.
const OK_CANCEL: &str = r#"
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:mcu@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
"#;

/// Note `CSeq: [cseq] INVITE`: sipp's own counter (1), not the INVITE's.
const TERMINATED_487: &str = r#"
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [cseq] INVITE
      [last_Record-Route:]
      Contact: <sip:mcu@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
"#;

/// A WebRTC gateway's offer, reduced to what the scenarios' regexps read.
const OFFER: &str = "v=0\r\no=confgate 1 1 IN IP4 127.0.0.1\r\ns=confgate\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 111 0\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n\
m=video 30002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\na=sendrecv\r\n";

/// sipp as the MCU: the last message it received and its variables.
struct Sipp {
    transport: Transport,
    last: String,
    /// `-key` values and what the scenario's `<ereg>`s captured.
    vars: Vec<(&'static str, String)>,
}

impl Sipp {
    fn new(transport: Transport) -> Sipp {
        let name = transport.as_str().to_owned();
        Sipp {
            transport,
            last: String::new(),
            vars: vec![
                ("[pid]", "4242".into()),
                ("[call_number]", "1".into()),
                ("[clock_tick]", "1500".into()),
                ("[local_ip]", "127.0.0.1".into()),
                ("[local_port]", "5060".into()),
                ("[transport]", name),
                ("[mcu_ip]", "127.0.0.1".into()),
                ("[mcu_aport]", "40000".into()),
                ("[mcu_vport]", "40002".into()),
                ("[cseq]", "1".into()),
                ("[branch]", "z9hG4bK-4242-1-7".into()),
                ("[routes]", String::new()),
            ],
        }
    }

    /// sipp receives what the UAC sent, over the scenario's transport.
    fn receive(&mut self, bytes: &[u8]) -> Message {
        let m = wire(&self.transport, bytes);
        self.last = String::from_utf8(bytes.to_vec()).expect("the UAC sends UTF-8");
        m
    }

    /// What `<ereg>` would capture from the INVITE.
    fn capture_invite(&mut self, invite: &Message) {
        let body = String::from_utf8_lossy(&invite.body).into_owned();
        assert!(body.contains("c=IN IP4 127.0.0.1"));
        assert!(body.contains("m=audio 30000 "));
        assert!(body.contains("m=video 30002 "));
        assert!(body.contains("a=rtpmap:111 opus/48000"));
        assert!(body.contains("a=rtpmap:96 VP8/90000"));
        self.vars.push(("[$opus_pt]", "111".into()));
        self.vars.push(("[$vp8_pt]", "96".into()));
        self.vars
            .push(("[call_id]", invite.call_id().expect("call-id").to_owned()));
        let contact = invite
            .contact()
            .expect("contact")
            .expect("the INVITE has one");
        self.vars.push(("[next_url]", contact.uri.to_string()));
        // `<ereg regexp=".*" search_in="hdr" header="To:">`: the value.
        self.vars.push((
            "[$inv_to]",
            invite.headers.get("To").expect("to").to_owned(),
        ));
        self.vars.push((
            "[$inv_from]",
            invite.headers.get("From").expect("from").to_owned(),
        ));
    }

    /// Fills in a `<send>` block and puts it on the wire.
    fn send(&self, template: &str) -> Vec<u8> {
        let mut lines: Vec<String> = Vec::new();
        for raw in template.lines().map(str::trim) {
            let mut line = raw.to_owned();
            while let Some(start) = line.find("[last_") {
                let Some(end) = line[start..].find(":]").map(|e| start + e) else {
                    break;
                };
                let name = &line[start + 6..end];
                let copied: Vec<&str> = self
                    .last
                    .split("\r\n")
                    .skip(1)
                    .take_while(|l| !l.is_empty())
                    .filter(|l| {
                        l.split_once(':')
                            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                    })
                    .collect();
                line.replace_range(start..end + 2, &copied.join("\r\n"));
            }
            for (key, value) in &self.vars {
                line = line.replace(key, value);
            }
            // sipp drops a line that a keyword left empty.
            if !raw.is_empty() && line.trim().is_empty() {
                continue;
            }
            lines.push(line);
        }
        // Drop the blank lines around the block; the first blank line inside
        // ends the headers.
        while lines.first().is_some_and(String::is_empty) {
            lines.remove(0);
        }
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        let split = lines
            .iter()
            .position(String::is_empty)
            .unwrap_or(lines.len());
        let body: String = lines[split..]
            .iter()
            .skip(1)
            .map(|l| format!("{l}\r\n"))
            .collect();
        let head: String = lines[..split].iter().map(|l| format!("{l}\r\n")).collect();
        let head = head.replace("[len]", &body.len().to_string());
        format!("{head}\r\n{body}").into_bytes()
    }
}

/// Carries bytes over the transport: a datagram as is, a stream through the
/// framer (each message arrives in two TCP segments, to exercise it).
fn wire(transport: &Transport, bytes: &[u8]) -> Message {
    if transport.is_reliable() {
        let half = bytes.len() / 2;
        assert_eq!(frame(&bytes[..half]), Ok(None));
        assert_eq!(
            frame(bytes),
            Ok(Some(bytes.len())),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    Message::parse(bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

fn transmitted(actions: &[TransactionAction]) -> Vec<u8> {
    match actions {
        [TransactionAction::Transmit(bytes)] => bytes.clone(),
        other => panic!("expected one Transmit, got {other:?}"),
    }
}

fn delivered(actions: &[TransactionAction]) -> Message {
    match actions.first() {
        Some(TransactionAction::Deliver(m)) => m.clone(),
        other => panic!("expected a delivery, got {other:?}"),
    }
}

fn ack_sent(actions: &[TransactionAction]) -> Vec<u8> {
    actions
        .iter()
        .find_map(|a| match a {
            TransactionAction::SendAck(bytes) => Some(bytes.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no ACK in {actions:?}"))
}

const TRANSPORTS: [Transport; 2] = [Transport::Udp, Transport::Tcp];

/// INVITE until the dialog exists and is ACKed; returns what the next steps need.
fn answered_call(sipp: &mut Sipp, t0: Instant) -> (Invitation, ClientTransaction, Dialog, Message) {
    let transport = sipp.transport.clone();
    let mut inv = invitation(transport.clone());
    let invite = inv
        .invite(OFFER.as_bytes().to_vec(), &branch(1))
        .expect("invite");
    let (mut tx, actions) =
        ClientTransaction::new(invite, at(t0, 0), TimerConfig::default()).expect("tx");
    let got = sipp.receive(&transmitted(&actions));
    sipp.capture_invite(&got);

    let trying = wire(&transport, &sipp.send(TRYING));
    assert_eq!(trying.to().expect("to").tag(), None);
    assert_eq!(
        delivered(&tx.on_response(&trying, at(t0, 5))).status(),
        Some(100)
    );
    let ringing = wire(&transport, &sipp.send(RINGING));
    let early = inv
        .dialog(&delivered(&tx.on_response(&ringing, at(t0, 6))), at(t0, 6))
        .expect("early");
    assert_eq!(early.state(), DialogState::Early);
    assert_eq!(early.id().remote_tag, "4242SIPpTag011");

    let ok = wire(&transport, &sipp.send(OK_WITH_SDP));
    let ok = delivered(&tx.on_response(&ok, at(t0, 110)));
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio 40000 RTP/AVP 111 0\r\n"));
    assert_eq!(ok.content_type().as_deref(), Some("application/sdp"));
    let mut dialog = early;
    dialog
        .on_invite_response(&ok, at(t0, 110))
        .expect("confirmed");
    assert_eq!(dialog.state(), DialogState::Confirmed);
    let fresh = inv
        .dialog(&ok, at(t0, 110))
        .expect("a dialog straight from the 2xx");
    assert_eq!(fresh.id(), dialog.id());
    assert_eq!(
        dialog.remote_target().to_string(),
        format!("sip:mcu@127.0.0.1:5060;transport={}", transport.as_str())
    );
    assert!(dialog.peer_allows(&Method::Info));
    assert!(!dialog.peer_allows(&Method::Update));
    assert_eq!(
        dialog.session_timer(),
        None,
        "sipp does not answer Session-Expires"
    );

    // <recv request="ACK">, and the same ACK again for sipp's retransmission.
    let ack = dialog.ack(&ok, &branch(2), None).expect("ack");
    let got = sipp.receive(&ack.to_bytes());
    assert_eq!(got.method(), Some(&Method::Ack));
    assert_eq!(got.request_uri(), Some(dialog.remote_target()));
    assert_eq!(
        got.cseq().map(|c| c.to_string()),
        Ok(format!(
            "{} ACK",
            inv.current_invite()
                .and_then(|i| i.cseq().ok())
                .map_or(0, |c| c.seq)
        ))
    );
    assert_eq!(got.to().expect("to").tag(), Some("4242SIPpTag011"));
    if !transport.is_reliable() {
        let again = tx.on_response(&ok, at(t0, 610));
        assert_eq!(dialog.ack(&delivered(&again), &branch(3), None), Ok(ack));
    }
    (inv, tx, dialog, ok)
}

#[test]
fn uas_answer_then_we_hang_up() {
    for transport in TRANSPORTS {
        let t0 = Instant::now();
        let mut sipp = Sipp::new(transport.clone());
        let (_, mut invite_tx, mut dialog, _) = answered_call(&mut sipp, t0);
        // Media flows; the caller hangs up.
        let bye = dialog.bye(&branch(4)).expect("bye");
        let (mut bye_tx, actions) =
            ClientTransaction::new(bye, at(t0, 5000), TimerConfig::default()).expect("tx");
        let got = sipp.receive(&transmitted(&actions));
        assert_eq!(got.method(), Some(&Method::Bye));
        assert_eq!(got.cseq().map(|c| c.seq), Ok(2));
        let ok = wire(&transport, &sipp.send(OK_PLAIN));
        let actions = bye_tx.on_response(&ok, at(t0, 5010));
        assert_eq!(delivered(&actions).status(), Some(200));
        assert_eq!(dialog.state(), DialogState::Terminated);
        // Both transactions wind down on their own timers.
        for tx in [&mut invite_tx, &mut bye_tx] {
            while let Some(deadline) = tx.next_deadline() {
                tx.on_timer(deadline);
            }
            assert_eq!(tx.state(), TransactionState::Terminated);
        }
    }
}

#[test]
fn uas_auth_challenge_then_answer() {
    for transport in TRANSPORTS {
        let t0 = Instant::now();
        let mut sipp = Sipp::new(transport.clone());
        let mut inv = invitation(transport.clone());
        let invite = inv
            .invite(OFFER.as_bytes().to_vec(), &branch(1))
            .expect("invite");
        let (mut tx, actions) =
            ClientTransaction::new(invite, t0, TimerConfig::default()).expect("tx");
        sipp.receive(&transmitted(&actions));
        let challenge = wire(&transport, &sipp.send(UNAUTHORIZED));
        let actions = tx.on_response(&challenge, at(t0, 5));
        let challenge = delivered(&actions);
        // <recv request="ACK"/>: the transaction ACKs the 401 by itself.
        let ack = sipp.receive(&ack_sent(&actions));
        assert_eq!(ack.cseq().map(|c| c.to_string()), Ok("1 ACK".into()));
        assert_eq!(ack.to().expect("to").tag(), Some("4242SIPpTag011"));

        let retry = inv
            .authenticate(&challenge, "alice", "secret", "0a4f113b", &branch(5))
            .expect("auth");
        let (mut tx, actions) =
            ClientTransaction::new(retry, at(t0, 10), TimerConfig::default()).expect("tx");
        let got = sipp.receive(&transmitted(&actions));
        sipp.capture_invite(&got);
        // <verifyauth username="[auth_user]" password="[auth_pass]"/>
        let creds = got.credentials().expect("credentials");
        assert_eq!(creds.len(), 1);
        assert_eq!(creds[0].username, "alice");
        assert_eq!(creds[0].nonce, "4242n1x1500");
        assert_eq!(
            creds[0].uri,
            got.request_uri()
                .map(ToString::to_string)
                .unwrap_or_default()
        );
        assert!(creds[0].verify("secret", "INVITE", &got.body));
        assert!(!creds[0].verify("wrong", "INVITE", &got.body));
        assert_eq!(got.cseq().map(|c| c.seq), Ok(2));

        wire(&transport, &sipp.send(TRYING));
        let ok = wire(&transport, &sipp.send(OK_WITH_SDP));
        let ok = delivered(&tx.on_response(&ok, at(t0, 120)));
        let mut dialog = inv.dialog(&ok, at(t0, 120)).expect("dialog");
        let ack = sipp.receive(&dialog.ack(&ok, &branch(6), None).expect("ack").to_bytes());
        assert_eq!(ack.cseq().map(|c| c.to_string()), Ok("2 ACK".into()));
        assert_eq!(
            ack.headers.get("Authorization"),
            got.headers.get("Authorization")
        );
        let bye = dialog.bye(&branch(7)).expect("bye");
        assert_eq!(bye.cseq().map(|c| c.seq), Ok(3));
    }
}

#[test]
fn uas_auth_wrong_password_is_forbidden() {
    for transport in TRANSPORTS {
        let t0 = Instant::now();
        let mut sipp = Sipp::new(transport.clone());
        let mut inv = invitation(transport.clone());
        let invite = inv
            .invite(OFFER.as_bytes().to_vec(), &branch(1))
            .expect("invite");
        let (mut tx, actions) =
            ClientTransaction::new(invite, t0, TimerConfig::default()).expect("tx");
        sipp.receive(&transmitted(&actions));
        let challenge = delivered(&tx.on_response(&wire(&transport, &sipp.send(UNAUTHORIZED)), t0));
        let retry = inv
            .authenticate(&challenge, "alice", "not-the-password", "c", &branch(5))
            .expect("auth");
        let (mut tx, actions) =
            ClientTransaction::new(retry, t0, TimerConfig::default()).expect("tx");
        let got = sipp.receive(&transmitted(&actions));
        assert!(!got.credentials().expect("creds")[0].verify("secret", "INVITE", &got.body));
        let forbidden = wire(&transport, &sipp.send(FORBIDDEN));
        let actions = tx.on_response(&forbidden, at(t0, 20));
        assert_eq!(delivered(&actions).status(), Some(403));
        let ack = sipp.receive(&ack_sent(&actions));
        assert_eq!(ack.cseq().map(|c| c.to_string()), Ok("2 ACK".into()));
        assert!(inv.dialog(&delivered(&actions), t0).is_err());
    }
}

#[test]
fn uas_busy() {
    for transport in TRANSPORTS {
        let t0 = Instant::now();
        let mut sipp = Sipp::new(transport.clone());
        let mut inv = invitation(transport.clone());
        let invite = inv
            .invite(OFFER.as_bytes().to_vec(), &branch(1))
            .expect("invite");
        let (mut tx, actions) =
            ClientTransaction::new(invite.clone(), t0, TimerConfig::default()).expect("tx");
        sipp.receive(&transmitted(&actions));
        tx.on_response(&wire(&transport, &sipp.send(TRYING)), at(t0, 1));
        let busy_bytes = sipp.send(BUSY);
        let actions = tx.on_response(&wire(&transport, &busy_bytes), at(t0, 2));
        let busy = delivered(&actions);
        assert_eq!(
            (busy.status(), busy.reason()),
            (Some(486), Some("Busy Here"))
        );
        let ack = sipp.receive(&ack_sent(&actions));
        assert_eq!(ack.request_uri(), invite.request_uri());
        assert_eq!(ack.to().expect("to").tag(), Some("4242SIPpTag011"));
        assert_eq!(
            ack.top_via().expect("via").branch(),
            invite.top_via().expect("via").branch()
        );
        if transport.is_reliable() {
            assert_eq!(tx.state(), TransactionState::Terminated);
        } else {
            // A retransmitted 486 is ACKed again and not delivered twice.
            let again = tx.on_response(&wire(&transport, &busy_bytes), at(t0, 500));
            assert_eq!(again, [TransactionAction::SendAck(ack.to_bytes())]);
        }
    }
}

#[test]
fn uas_bye_the_mcu_hangs_up() {
    for transport in TRANSPORTS {
        let t0 = Instant::now();
        let mut sipp = Sipp::new(transport.clone());
        let (_, _, mut dialog, _) = answered_call(&mut sipp, t0);
        let bye_bytes = sipp.send(BYE_FROM_UAS);
        let bye = wire(&transport, &bye_bytes);
        assert_eq!(
            bye.request_uri().map(ToString::to_string),
            Some(format!(
                "sip:web-1@127.0.0.1:5070;transport={}",
                transport.as_str().to_ascii_lowercase()
            ))
        );
        let PeerRequest::Bye { response } = dialog.on_request(&bye, at(t0, 3000)).expect("bye")
        else {
            panic!("not a BYE");
        };
        assert_eq!(dialog.state(), DialogState::Terminated);
        // <recv response="200">: the response matches sipp's BYE.
        let got = sipp.receive(&response.to_bytes());
        assert_eq!(got.status(), Some(200));
        assert_eq!(got.vias(), bye.vias());
        assert_eq!(got.call_id(), bye.call_id());
        assert_eq!(got.cseq(), bye.cseq());
        assert_eq!(got.from().expect("from").tag(), Some("4242SIPpTag011"));
        assert_eq!(
            got.to().expect("to").tag(),
            Some(dialog.id().local_tag.as_str())
        );
        // sipp retransmits the BYE (retrans="500") on UDP: same 200.
        assert_eq!(
            dialog.on_request(&wire(&transport, &bye_bytes), at(t0, 3500)),
            Ok(PeerRequest::Retransmission {
                response: Some(response)
            })
        );
    }
}

#[test]
fn uas_noanswer_we_cancel() {
    for transport in TRANSPORTS {
        let t0 = Instant::now();
        let mut sipp = Sipp::new(transport.clone());
        let mut inv = invitation(transport.clone());
        let invite = inv
            .invite(OFFER.as_bytes().to_vec(), &branch(1))
            .expect("invite");
        let (mut tx, actions) =
            ClientTransaction::new(invite, t0, TimerConfig::default()).expect("tx");
        sipp.receive(&transmitted(&actions));
        assert!(!tx.can_cancel(), "not before a provisional response");
        tx.on_response(&wire(&transport, &sipp.send(TRYING)), at(t0, 1));
        tx.on_response(&wire(&transport, &sipp.send(RINGING)), at(t0, 2));
        assert!(tx.can_cancel());
        // Ringing too long: CANCEL.
        let cancel = inv.cancel().expect("cancel");
        let (mut cancel_tx, actions) =
            ClientTransaction::new(cancel, at(t0, 20_000), TimerConfig::default()).expect("tx");
        tx.cancel_sent(at(t0, 20_000));
        let got = sipp.receive(&transmitted(&actions));
        assert_eq!(got.method(), Some(&Method::Cancel));
        let ok = wire(&transport, &sipp.send(OK_CANCEL));
        assert_eq!(
            tx.on_response(&ok, at(t0, 20_010)),
            [],
            "the CANCEL's 200 is not the INVITE's"
        );
        assert_eq!(
            delivered(&cancel_tx.on_response(&ok, at(t0, 20_010))).status(),
            Some(200)
        );
        // 487 for the INVITE, ACKed by the transaction.
        let terminated = wire(&transport, &sipp.send(TERMINATED_487));
        let actions = tx.on_response(&terminated, at(t0, 20_020));
        assert_eq!(delivered(&actions).status(), Some(487));
        let ack = sipp.receive(&ack_sent(&actions));
        assert_eq!(ack.cseq().map(|c| c.to_string()), Ok("1 ACK".into()));
        assert_eq!(ack.method(), Some(&Method::Ack));
    }
}
