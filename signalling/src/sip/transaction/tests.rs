use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::sip::header::{NameAddr, Transport};
use crate::sip::message::{Branch, RequestBuilder, SentBy, Tag};
use crate::sip::uri::SipUri;
use TransactionAction as A;

fn request(method: Method, transport: Transport) -> Message {
    let uri = SipUri::parse("sip:conf-1234@127.0.0.1:5060").expect("uri");
    RequestBuilder::new(method, uri.clone())
        .via(
            SentBy {
                transport,
                host: "127.0.0.1".into(),
                port: Some(5070),
                rport: false,
            }
            .via(&Branch::from_random([7; 12])),
        )
        .route(NameAddr::parse("<sip:proxy.example.com;lr>", "Route").expect("route"))
        .from(
            NameAddr::parse("<sip:web@127.0.0.1:5070>", "From")
                .expect("from")
                .with_tag("ft"),
        )
        .to(NameAddr::new(uri))
        .call_id("call-1")
        .cseq(5)
        .build()
        .expect("request")
}

/// A response to `request` as the MCU would send it.
fn response(request: &Message, status: u16) -> Message {
    let mut r = Message::response_to(request, status, "Reason", Some(&Tag::from_peer("mcu-tag")))
        .expect("response");
    if status == 487 || status == 486 {
        r.headers
            .push("Contact", "<sip:mcu@127.0.0.1:5060>")
            .expect("contact");
    }
    r
}

/// Virtual time: milliseconds after a fixed base.
struct Clock(Instant);

impl Clock {
    fn new() -> Clock {
        Clock(Instant::now())
    }
    fn at(&self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms)
    }
    fn ms(&self, t: Instant) -> u64 {
        u64::try_from((t - self.0).as_millis()).expect("small")
    }
}

/// Runs every timer until the transaction ends, returning (ms, action) pairs.
fn run_timers(tx: &mut ClientTransaction, clock: &Clock) -> Vec<(u64, TransactionAction)> {
    let mut out = Vec::new();
    while let Some(deadline) = tx.next_deadline() {
        for action in tx.on_timer(deadline) {
            out.push((clock.ms(deadline), action));
        }
        assert!(out.len() < 100, "runaway timers");
    }
    out
}

fn retransmit_times(events: &[(u64, TransactionAction)]) -> Vec<u64> {
    events
        .iter()
        .filter(|(_, a)| matches!(a, A::Retransmit(_)))
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn invite_over_udp_doubles_timer_a_until_timer_b() {
    let clock = Clock::new();
    let invite = request(Method::Invite, Transport::Udp);
    let (mut tx, actions) =
        ClientTransaction::new(invite.clone(), clock.at(0), TimerConfig::default()).expect("new");
    assert_eq!(actions, vec![A::Transmit(invite.to_bytes())]);
    assert_eq!(tx.state(), TransactionState::Calling);
    assert_eq!(tx.next_deadline(), Some(clock.at(500)));
    let events = run_timers(&mut tx, &clock);
    // A: 0.5, 1, 2, 4, 8, 16 s apart; B at 64·T1 = 32 s.
    assert_eq!(
        retransmit_times(&events),
        [500, 1500, 3500, 7500, 15500, 31500]
    );
    assert_eq!(
        events[events.len() - 2..],
        [(32_000, A::TimedOut), (32_000, A::Terminated)]
    );
    assert!(events.iter().all(|(_, a)| match a {
        A::Retransmit(bytes) => *bytes == invite.to_bytes(),
        _ => true,
    }));
    assert_eq!(tx.state(), TransactionState::Terminated);
    assert_eq!(tx.on_timer(clock.at(100_000)), []);
}

#[test]
fn non_invite_over_udp_caps_timer_e_at_t2() {
    let clock = Clock::new();
    let (mut tx, _) = ClientTransaction::new(
        request(Method::Bye, Transport::Udp),
        clock.at(0),
        TimerConfig::default(),
    )
    .expect("new");
    assert_eq!(tx.state(), TransactionState::Trying);
    let events = run_timers(&mut tx, &clock);
    assert_eq!(
        retransmit_times(&events),
        [
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert_eq!(events.last(), Some(&(32_000, A::Terminated)));
    assert!(events.contains(&(32_000, A::TimedOut)));
}

#[test]
fn non_invite_proceeding_retransmits_every_t2() {
    let clock = Clock::new();
    let bye = request(Method::Bye, Transport::Udp);
    let (mut tx, _) =
        ClientTransaction::new(bye.clone(), clock.at(0), TimerConfig::default()).expect("new");
    assert!(matches!(
        tx.on_timer(clock.at(500)).as_slice(),
        [A::Retransmit(_)]
    ));
    assert_eq!(
        tx.on_response(&response(&bye, 100), clock.at(600)),
        [A::Deliver(response(&bye, 100))]
    );
    assert_eq!(tx.state(), TransactionState::Proceeding);
    let mut times = Vec::new();
    while let Some(deadline) = tx.next_deadline() {
        if clock.ms(deadline) > 10_000 {
            break;
        }
        if matches!(tx.on_timer(deadline).first(), Some(A::Retransmit(_))) {
            times.push(clock.ms(deadline));
        }
    }
    assert_eq!(times, [1500, 5500, 9500]);
    // The final response stops everything; K lasts T4 on UDP.
    let ok = response(&bye, 200);
    assert_eq!(
        tx.on_response(&ok, clock.at(10_000)),
        [A::Deliver(ok.clone())]
    );
    assert_eq!(tx.state(), TransactionState::Completed);
    assert_eq!(
        tx.on_response(&ok, clock.at(10_100)),
        [],
        "duplicates are absorbed"
    );
    assert_eq!(tx.next_deadline(), Some(clock.at(15_000)));
    assert_eq!(tx.on_timer(clock.at(15_000)), [A::Terminated]);
}

#[test]
fn a_provisional_response_stops_invite_retransmissions() {
    let clock = Clock::new();
    let invite = request(Method::Invite, Transport::Udp);
    let (mut tx, _) =
        ClientTransaction::new(invite.clone(), clock.at(0), TimerConfig::default()).expect("new");
    assert!(matches!(
        tx.on_timer(clock.at(500)).as_slice(),
        [A::Retransmit(_)]
    ));
    let trying = response(&invite, 100);
    assert_eq!(
        tx.on_response(&trying, clock.at(700)),
        [A::Deliver(trying.clone())]
    );
    assert_eq!(tx.state(), TransactionState::Proceeding);
    assert!(tx.can_cancel());
    // Neither A nor B runs in Proceeding: the call may ring for minutes.
    assert_eq!(tx.next_deadline(), None);
    assert_eq!(tx.on_timer(clock.at(120_000)), []);
    let ringing = response(&invite, 180);
    assert_eq!(
        tx.on_response(&ringing, clock.at(800)),
        [A::Deliver(ringing)]
    );
    assert_eq!(
        tx.on_response(&trying, clock.at(900)),
        [A::Deliver(trying)],
        "1xx are all delivered"
    );
}

#[test]
fn a_non_2xx_final_is_acked_once_and_absorbed() {
    let clock = Clock::new();
    let invite = request(Method::Invite, Transport::Udp);
    let (mut tx, _) =
        ClientTransaction::new(invite.clone(), clock.at(0), TimerConfig::default()).expect("new");
    let busy = response(&invite, 486);
    let actions = tx.on_response(&busy, clock.at(300));
    let [A::Deliver(delivered), A::SendAck(ack)] = actions.as_slice() else {
        panic!("unexpected {actions:?}");
    };
    assert_eq!(*delivered, busy);
    let ack = Message::parse(ack).expect("the ACK parses");
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(ack.request_uri(), invite.request_uri());
    assert_eq!(
        ack.top_via().expect("via"),
        invite.top_via().expect("via"),
        "same branch"
    );
    assert_eq!(ack.vias().expect("vias").len(), 1);
    assert_eq!(ack.route(), invite.route(), "the INVITE's Route");
    assert_eq!(ack.from(), invite.from());
    assert_eq!(
        ack.to().expect("to").tag(),
        Some("mcu-tag"),
        "the response's To"
    );
    assert_eq!(ack.call_id(), invite.call_id());
    assert_eq!(
        ack.cseq(),
        Ok(CSeq {
            seq: 5,
            method: Method::Ack
        })
    );
    assert_eq!(ack.max_forwards(), Ok(Some(70)));
    assert!(ack.body.is_empty());
    assert_eq!(tx.state(), TransactionState::Completed);
    // Retransmissions of the 486 get the same ACK, and are not delivered.
    let again = tx.on_response(&busy, clock.at(800));
    assert_eq!(again, [A::SendAck(ack.to_bytes())]);
    assert_eq!(tx.on_response(&response(&invite, 200), clock.at(900)), []);
    assert_eq!(
        tx.on_timer(clock.at(30_000)),
        [],
        "no retransmission in Completed"
    );
    assert_eq!(tx.next_deadline(), Some(clock.at(300 + 32_000)), "Timer D");
    assert_eq!(tx.on_timer(clock.at(32_300)), [A::Terminated]);
}

#[test]
fn a_2xx_is_delivered_every_time_until_timer_m() {
    let clock = Clock::new();
    let invite = request(Method::Invite, Transport::Udp);
    let (mut tx, _) =
        ClientTransaction::new(invite.clone(), clock.at(0), TimerConfig::default()).expect("new");
    let ok = response(&invite, 200);
    assert_eq!(
        tx.on_response(&ok, clock.at(1000)),
        [A::Deliver(ok.clone())]
    );
    assert_eq!(tx.state(), TransactionState::Accepted);
    assert_eq!(
        tx.on_response(&ok, clock.at(1500)),
        [A::Deliver(ok.clone())]
    );
    assert_eq!(tx.on_response(&response(&invite, 486), clock.at(1600)), []);
    assert_eq!(tx.on_response(&response(&invite, 180), clock.at(1700)), []);
    assert_eq!(tx.next_deadline(), Some(clock.at(33_000)));
    assert_eq!(tx.on_timer(clock.at(33_000)), [A::Terminated]);
}

#[test]
fn reliable_transports_never_retransmit() {
    let clock = Clock::new();
    for transport in [Transport::Tcp, Transport::Tls] {
        let invite = request(Method::Invite, transport.clone());
        let (mut tx, _) =
            ClientTransaction::new(invite.clone(), clock.at(0), TimerConfig::default())
                .expect("new");
        assert_eq!(tx.next_deadline(), Some(clock.at(32_000)), "only Timer B");
        let events = run_timers(&mut tx, &clock);
        assert_eq!(events, [(32_000, A::TimedOut), (32_000, A::Terminated)]);

        // A non-2xx final ends at once (Timer D is zero).
        let (mut tx, _) =
            ClientTransaction::new(invite.clone(), clock.at(0), TimerConfig::default())
                .expect("new");
        let actions = tx.on_response(&response(&invite, 486), clock.at(10));
        assert!(matches!(
            actions.as_slice(),
            [A::Deliver(_), A::SendAck(_), A::Terminated]
        ));

        let bye = request(Method::Bye, transport.clone());
        let (mut tx, _) =
            ClientTransaction::new(bye.clone(), clock.at(0), TimerConfig::default()).expect("new");
        assert_eq!(tx.next_deadline(), Some(clock.at(32_000)), "only Timer F");
        let ok = response(&bye, 200);
        assert_eq!(
            tx.on_response(&ok, clock.at(10)),
            [A::Deliver(ok), A::Terminated],
            "Timer K is zero"
        );
    }
}

#[test]
fn responses_of_other_transactions_are_ignored() {
    let clock = Clock::new();
    let invite = request(Method::Invite, Transport::Udp);
    let (mut tx, _) =
        ClientTransaction::new(invite.clone(), clock.at(0), TimerConfig::default()).expect("new");
    let mut other_branch = response(&invite, 200);
    other_branch
        .headers
        .set("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKother")
        .expect("via");
    assert!(!tx.matches(&other_branch));
    assert_eq!(tx.on_response(&other_branch, clock.at(10)), []);
    // The CANCEL's 200 shares the branch but not the CSeq method.
    let cancel = crate::sip::dialog::cancel_for(&invite).expect("cancel");
    let cancel_ok = response(&cancel, 200);
    assert_eq!(
        TransactionKey::of_response(&cancel_ok).map(|k| k.branch),
        Ok(tx.key().branch.clone())
    );
    assert_eq!(tx.on_response(&cancel_ok, clock.at(10)), []);
    assert_eq!(
        tx.on_response(&invite, clock.at(10)),
        [],
        "a request is not a response"
    );
    assert_eq!(tx.state(), TransactionState::Calling);
}

#[test]
fn a_cancelled_invite_gives_up_after_64_t1() {
    let clock = Clock::new();
    let invite = request(Method::Invite, Transport::Udp);
    let (mut tx, _) =
        ClientTransaction::new(invite.clone(), clock.at(0), TimerConfig::default()).expect("new");
    tx.on_response(&response(&invite, 180), clock.at(200));
    tx.cancel_sent(clock.at(10_000));
    assert_eq!(tx.next_deadline(), Some(clock.at(42_000)));
    assert_eq!(tx.on_timer(clock.at(42_000)), [A::TimedOut, A::Terminated]);

    // With the 487 in time, the INVITE ends normally (ACK, Timer D).
    let (mut tx, _) =
        ClientTransaction::new(invite.clone(), clock.at(0), TimerConfig::default()).expect("new");
    tx.on_response(&response(&invite, 180), clock.at(200));
    tx.cancel_sent(clock.at(10_000));
    let actions = tx.on_response(&response(&invite, 487), clock.at(10_050));
    assert!(matches!(actions.as_slice(), [A::Deliver(_), A::SendAck(_)]));
    assert_eq!(tx.next_deadline(), Some(clock.at(42_050)));
}

#[test]
fn transport_errors_end_the_transaction() {
    let clock = Clock::new();
    let (mut tx, _) = ClientTransaction::new(
        request(Method::Options, Transport::Tcp),
        clock.at(0),
        TimerConfig::default(),
    )
    .expect("new");
    assert_eq!(tx.on_transport_error(), [A::TransportFailed, A::Terminated]);
    assert_eq!(tx.on_transport_error(), []);
    assert_eq!(tx.next_deadline(), None);
}

#[test]
fn refuses_what_has_no_client_transaction() {
    let now = Instant::now();
    let config = TimerConfig::default();
    let ack = request(Method::Ack, Transport::Udp);
    assert!(matches!(
        ClientTransaction::new(ack, now, config),
        Err(SipError::Misuse(_))
    ));
    let invite = request(Method::Invite, Transport::Udp);
    let resp = response(&invite, 200);
    assert!(matches!(
        ClientTransaction::new(resp, now, config),
        Err(SipError::Misuse(_))
    ));
    let mut old_style = invite;
    old_style
        .headers
        .set("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=1234")
        .expect("via");
    assert!(matches!(
        ClientTransaction::new(old_style, now, config),
        Err(SipError::Misuse(_))
    ));
}

#[test]
fn a_late_timer_call_does_one_step_at_a_time() {
    let clock = Clock::new();
    let (mut tx, _) = ClientTransaction::new(
        request(Method::Invite, Transport::Udp),
        clock.at(0),
        TimerConfig::default(),
    )
    .expect("new");
    // The shell woke up late: B is due, and wins over A.
    assert_eq!(tx.on_timer(clock.at(40_000)), [A::TimedOut, A::Terminated]);
    let (mut tx, _) = ClientTransaction::new(
        request(Method::Invite, Transport::Udp),
        clock.at(0),
        TimerConfig::default(),
    )
    .expect("new");
    assert!(matches!(
        tx.on_timer(clock.at(5_000)).as_slice(),
        [A::Retransmit(_)]
    ));
    assert_eq!(
        tx.next_deadline(),
        Some(clock.at(6_000)),
        "rescheduled from now"
    );
}

#[derive(Debug, Clone)]
enum Event {
    Timer(u64),
    Response(u16),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (0u64..40_000).prop_map(Event::Timer),
        prop::sample::select(vec![100u16, 180, 183, 200, 202, 401, 486, 487, 503, 603])
            .prop_map(Event::Response),
    ]
}

proptest! {
    /// Whatever arrives in whatever order: no panic, at most one delivered
    /// non-2xx final, no request retransmission after a response for an
    /// INVITE, and nothing at all after Terminated.
    #[test]
    fn invariants_under_any_event_order(
        invite in any::<bool>(),
        udp in any::<bool>(),
        mut events in prop::collection::vec(event(), 0..40),
    ) {
        let clock = Clock::new();
        let method = if invite { Method::Invite } else { Method::Info };
        let transport = if udp { Transport::Udp } else { Transport::Tcp };
        let req = request(method, transport);
        let (mut tx, _) = ClientTransaction::new(req.clone(), clock.at(0), TimerConfig::default()).expect("new");
        // Time only moves forward.
        let mut now = 0u64;
        for e in &mut events {
            if let Event::Timer(t) = e {
                now += *t / 10;
                *t = now;
            }
        }
        let mut finals = 0;
        let mut answered = false;
        let mut terminated = false;
        for e in events {
            let actions = match e {
                Event::Timer(t) => tx.on_timer(clock.at(t)),
                Event::Response(status) => tx.on_response(&response(&req, status), clock.at(now)),
            };
            if terminated {
                prop_assert!(actions.is_empty());
            }
            for a in &actions {
                match a {
                    A::Deliver(r) => {
                        answered = true;
                        if r.status().is_some_and(|s| s >= 300) {
                            finals += 1;
                        }
                    }
                    A::Retransmit(_) => prop_assert!(!(invite && answered)),
                    A::Terminated => terminated = true,
                    _ => {}
                }
            }
            if let Some(d) = tx.next_deadline() {
                prop_assert!(!terminated, "a terminated transaction has no deadline: {:?}", d);
            }
        }
        prop_assert!(finals <= 1);
    }
}
