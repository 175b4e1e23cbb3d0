//! The SIP/MCU bridge: each web member of a conference bound to an MCU gets
//! one SIP call into the MCU, and its media is bridged as plain RTP.
//!
//! ```text
//!  room task ── spawn(member) ──► leg task ── SipAgent::call ──► MCU (SIP)
//!      ▲   (drop = hang up)          │  open/connect/close_mcu_leg
//!      └── RoomCommand::McuState ────┘        ▼
//!                                          Media ◄──── RTP ────► MCU (RTP)
//! ```
//!
//! The room owns one [`Leg`] per member; dropping it hangs the call up (BYE,
//! or CANCEL while it rings) and closes the media leg. The leg task reports
//! each state to the room, which passes it to the member's page as an
//! `mcu.state` notification and repeats the latest one after a reconnect.
//!
//! Codecs: the bridge does not transcode. The offer names, per kind, the
//! codec the member's browser sends (when the binding allows it), else every
//! allowed codec (browsers receive all of Opus, G.711, VP8 and H.264). The
//! page learns the binding's codecs when it joins and prefers them when it
//! publishes, so that its browser sends what the MCU takes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use confgate_media::{Codec, McuLegPorts, McuStream, Media};
use confgate_signalling::events::notify;
use confgate_signalling::sdp::{self, LegAnswer, Negotiated, OfferParams};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::config::SipConfig;
use crate::rooms::RoomCommand;
use crate::sip::{Call, CallError, CallEvent, CallRequest, SipAgent, Transport};
use crate::store::{McuBindingRow, Store};

/// SIP INFO picture_fast_update goes out at most this often per call.
const INFO_INTERVAL: Duration = Duration::from_secs(1);

/// What every leg needs: the SIP agent, the media plane, the bindings and
/// the configured defaults.
pub struct Bridge {
    pub agent: SipAgent,
    pub media: Media,
    pub store: Store,
    pub defaults: SipConfig,
}

/// Who the call is for.
#[derive(Debug, Clone)]
pub struct Caller {
    pub conf_id: String,
    pub user_id: String,
    pub name: String,
    pub sip_account: String,
}

/// A member's call, owned by its room. Dropping it hangs up.
#[derive(Debug)]
pub struct Leg {
    /// Tells this leg from a later one of the same member.
    pub id: u64,
    commands: mpsc::Sender<LegCommand>,
    /// The latest `mcu.state` notification, repeated to a reconnected page.
    pub last_state: Option<Value>,
}

#[derive(Debug)]
enum LegCommand {
    /// The member's browser wants a keyframe of the MCU's picture.
    Keyframe,
    /// The member's browser (re)published: offer its codecs anew if they
    /// changed.
    Published,
}

impl Leg {
    /// Passes a keyframe request on; dropped when the leg is busy.
    pub fn request_keyframe(&self) {
        let _ = self.commands.try_send(LegCommand::Keyframe);
    }

    /// The member's browser published anew.
    pub fn published(&self) {
        let _ = self.commands.try_send(LegCommand::Published);
    }
}

/// The `mcu.state` notification.
pub fn state_notice(state: &str, details: Value) -> Value {
    let mut params = json!({ "state": state });
    if let (Some(p), Value::Object(extra)) = (params.as_object_mut(), details) {
        p.extend(extra);
    }
    confgate_signalling::jsonrpc::notification(notify::MCU_STATE, params)
}

impl Bridge {
    /// Starts the call of `caller`; the task reports to `room`.
    pub fn spawn(
        self: &Arc<Self>,
        id: u64,
        caller: Caller,
        room: mpsc::Sender<RoomCommand>,
    ) -> Leg {
        let (commands, rx) = mpsc::channel(4);
        let task = LegTask {
            bridge: self.clone(),
            id,
            caller,
            room,
            commands: rx,
        };
        tokio::spawn(task.run());
        Leg {
            id,
            commands,
            last_state: None,
        }
    }
}

struct LegTask {
    bridge: Arc<Bridge>,
    id: u64,
    caller: Caller,
    room: mpsc::Sender<RoomCommand>,
    commands: mpsc::Receiver<LegCommand>,
}

/// How a leg ended.
enum End {
    /// The room dropped the leg (the member left, the conference ended):
    /// nobody is told.
    Dropped,
    /// The conference is not bound to an MCU: nothing happened.
    Unbound,
    /// Tell the member.
    Notice(&'static str, String),
}

impl LegTask {
    async fn run(mut self) {
        let user_id = self.caller.user_id.clone();
        let end = self.call().await;
        self.bridge.media.close_mcu_leg(user_id.clone()).await;
        let notice = match end {
            End::Dropped => return,
            End::Unbound => None,
            End::Notice(state, reason) => {
                tracing::info!(%user_id, conf_id = %self.caller.conf_id, state, %reason, "MCU call over");
                Some(state_notice(state, json!({ "reason": reason })))
            }
        };
        let _ = self
            .room
            .send(RoomCommand::McuLegEnded {
                user_id,
                leg: self.id,
                notice,
            })
            .await;
    }

    async fn report(&self, notice: Value) {
        let _ = self
            .room
            .send(RoomCommand::McuState {
                user_id: self.caller.user_id.clone(),
                leg: self.id,
                notice,
            })
            .await;
    }

    async fn call(&mut self) -> End {
        let failed = |reason: String| End::Notice("failed", reason);
        let binding = match self.bridge.store.mcu_binding(&self.caller.conf_id).await {
            Ok(Some(b)) => b,
            Ok(None) => return End::Unbound,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the MCU binding");
                return failed("the conference's MCU binding could not be read".into());
            }
        };
        let media = self.bridge.media.clone();
        let ports = match media.open_mcu_leg(self.caller.user_id.clone()).await {
            Ok(p) => p,
            Err(e) => return failed(format!("no media leg toward the MCU: {e}")),
        };
        let mut codecs = offer_codecs(&binding, &ports);
        let session_id = u64::from(rand::random::<u32>());
        let mut version = 1;
        let offer = match sdp::offer(&offer_params(&ports, session_id, version, &codecs)) {
            Ok(o) => o,
            Err(e) => return failed(e.to_string()),
        };
        let request = self.request(&binding, offer);
        self.report(state_notice("calling", json!({}))).await;

        let placing = self.bridge.agent.call(request);
        tokio::pin!(placing);
        let mut call: Call = loop {
            tokio::select! {
                placed = &mut placing => match placed {
                    Ok(call) => break call,
                    Err(e) => return failed(call_error(&e)),
                },
                // Dropping `placing` cancels the call.
                command = self.commands.recv() => if command.is_none() { return End::Dropped },
            }
        };
        let answer = match sdp::answer(&call.answer_sdp, &codecs) {
            Ok(a) => a,
            Err(e) => {
                let reason = format!("the MCU's answer is unusable: {e}");
                let _ = call.hangup().await;
                return failed(reason);
            }
        };
        if let Err(e) = self.connect(&answer).await {
            let _ = call.hangup().await;
            return failed(e);
        }
        self.report(connected_notice(&answer)).await;

        let mut info_allowed = true;
        let mut last_info: Option<Instant> = None;
        loop {
            tokio::select! {
                event = call.next_event() => match event {
                    Some(CallEvent::Bye) | None => {
                        return End::Notice("ended", "the conference system hung up".into());
                    }
                    Some(CallEvent::Failed(reason)) => {
                        return End::Notice("ended", format!("the call to the conference system failed: {reason}"));
                    }
                    Some(CallEvent::PictureFastUpdate) => {
                        media.request_keyframe(self.caller.user_id.clone()).await;
                    }
                    Some(CallEvent::ReInvite { sdp: offer, reply }) => {
                        version += 1;
                        if offer.is_empty() {
                            // An offerless re-INVITE: our offer goes in the 200.
                            let _ = reply.send(sdp::offer(&offer_params(&ports, session_id, version, &codecs)).map_err(|e| e.to_string()));
                            continue;
                        }
                        match sdp::answer_to(&offer, &offer_params(&ports, session_id, version, &codecs)) {
                            Ok((ours, leg)) => match self.connect(&leg).await {
                                Ok(()) => {
                                    let _ = reply.send(Ok(ours));
                                    self.report(connected_notice(&leg)).await;
                                }
                                Err(e) => { let _ = reply.send(Err(e)); }
                            },
                            Err(e) => {
                                tracing::info!(user_id = %self.caller.user_id, error = %e, "re-INVITE refused");
                                let _ = reply.send(Err(e.to_string()));
                            }
                        }
                    }
                },
                command = self.commands.recv() => match command {
                    Some(LegCommand::Published) => {
                        // The browser's codecs may have changed (a new
                        // publish connection, a camera turned on later).
                        let Ok(now) = media.open_mcu_leg(self.caller.user_id.clone()).await else { continue };
                        let wanted = offer_codecs(&binding, &now);
                        if wanted == codecs {
                            continue;
                        }
                        version += 1;
                        let Ok(offer) = sdp::offer(&offer_params(&ports, session_id, version, &wanted)) else { continue };
                        match call.reinvite(offer).await {
                            Ok(answer_sdp) => match sdp::answer(&answer_sdp, &wanted) {
                                Ok(answer) => {
                                    codecs = wanted;
                                    if let Err(e) = self.connect(&answer).await {
                                        let _ = call.hangup().await;
                                        return failed(e);
                                    }
                                    self.report(connected_notice(&answer)).await;
                                }
                                Err(e) => {
                                    let _ = call.hangup().await;
                                    return failed(format!("the MCU's answer to our re-INVITE is unusable: {e}"));
                                }
                            },
                            // Refused (491 glare, 488): the session stays as it was.
                            Err(CallError::Rejected { status, reason }) => {
                                tracing::info!(user_id = %self.caller.user_id, status, %reason, "the MCU refused our re-INVITE");
                            }
                            Err(e) => {
                                return End::Notice("ended", format!("the call to the conference system failed: {e}"));
                            }
                        }
                    }
                    Some(LegCommand::Keyframe) => {
                        if !info_allowed || last_info.is_some_and(|t| t.elapsed() < INFO_INTERVAL) {
                            continue;
                        }
                        last_info = Some(Instant::now());
                        match call.picture_fast_update().await {
                            Ok(()) => {}
                            Err(CallError::Rejected { status, .. }) => {
                                // 405, 415, 501…: this MCU takes RTCP only.
                                tracing::debug!(status, "the MCU refuses INFO picture_fast_update; RTCP only");
                                info_allowed = false;
                            }
                            Err(e) => tracing::debug!(error = %e, "INFO picture_fast_update failed"),
                        }
                    }
                    None => {
                        if let Err(e) = call.hangup().await {
                            tracing::debug!(error = %e, "BYE to the MCU not confirmed");
                        }
                        return End::Dropped;
                    }
                },
            }
        }
    }

    fn request(&self, b: &McuBindingRow, sdp_offer: String) -> CallRequest {
        let defaults = &self.bridge.defaults;
        let credentials = match (&b.username, &b.password) {
            (Some(u), p) => Some((u.clone(), p.clone().unwrap_or_default())),
            (None, _) => defaults
                .username
                .clone()
                .map(|u| (u, defaults.password.clone().unwrap_or_default())),
        };
        CallRequest {
            target: b.uri.clone(),
            transport: if b.transport.eq_ignore_ascii_case("tcp") {
                Transport::Tcp
            } else {
                Transport::Udp
            },
            outbound_proxy: b.outbound_proxy.clone(),
            from_user: self.caller.sip_account.clone(),
            display_name: self.caller.name.clone(),
            credentials,
            sdp_offer,
            ring_timeout: Duration::from_secs(defaults.ring_timeout_secs),
            keepalive: (defaults.keepalive_secs > 0)
                .then(|| Duration::from_secs(defaults.keepalive_secs)),
        }
    }

    /// Points the media leg at what the MCU settled.
    async fn connect(&self, leg: &LegAnswer) -> Result<(), String> {
        if leg.audio.is_none() && leg.video.is_none() {
            return Err("the MCU accepted neither audio nor video".into());
        }
        self.bridge
            .media
            .connect_mcu_leg(
                self.caller.user_id.clone(),
                leg.audio.as_ref().and_then(|n| stream(n, false)),
                leg.video.as_ref().and_then(|n| stream(n, true)),
            )
            .await
            .map_err(|e| format!("the media leg toward the MCU failed: {e}"))
    }
}

fn offer_params<'a>(
    ports: &McuLegPorts,
    session_id: u64,
    version: u64,
    codecs: &'a [Codec],
) -> OfferParams<'a> {
    OfferParams {
        session_id,
        version,
        local_ip: ports.audio.ip(),
        audio_port: Some(ports.audio.port()),
        video_port: Some(ports.video.port()),
        codecs,
    }
}

fn stream(n: &Negotiated, video: bool) -> Option<McuStream> {
    // A stream the MCU neither sends nor receives (held both ways) is idle.
    if !n.direction.sends() && !n.direction.receives() {
        return None;
    }
    Some(McuStream {
        remote: n.remote,
        rtcp: n.rtcp,
        payload_type: n.payload_type,
        clock_rate: n.codec.clock_rate(),
        codec: n.codec,
        video,
    })
}

fn connected_notice(leg: &LegAnswer) -> Value {
    let name = |n: &Option<Negotiated>| n.as_ref().map(|n| n.codec.lower_name());
    state_notice(
        "connected",
        json!({ "audio": name(&leg.audio), "video": name(&leg.video) }),
    )
}

fn call_error(e: &CallError) -> String {
    e.to_string()
}

/// The codecs to offer the MCU: per kind, the one the browser sends when the
/// binding allows it, else every allowed codec the browser can receive.
fn offer_codecs(b: &McuBindingRow, ports: &McuLegPorts) -> Vec<Codec> {
    let allowed: Vec<Codec> = b.codecs.split(',').filter_map(Codec::parse).collect();
    let mut out = Vec::new();
    for (audio, sending) in [(true, ports.audio_codec), (false, ports.video_codec)] {
        let kind: Vec<Codec> = allowed
            .iter()
            .copied()
            .filter(|c| c.is_audio() == audio)
            .collect();
        match sending {
            Some(c) if kind.contains(&c) => out.push(c),
            _ => out.extend(kind),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn binding(codecs: &str) -> McuBindingRow {
        McuBindingRow {
            conf_id: "1".into(),
            uri: "sip:room@mcu".into(),
            transport: "udp".into(),
            outbound_proxy: None,
            username: None,
            password: None,
            codecs: codecs.into(),
            created_at: 0,
        }
    }

    fn ports(audio: Option<Codec>, video: Option<Codec>) -> McuLegPorts {
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        McuLegPorts {
            audio: addr,
            video: addr,
            audio_codec: audio,
            video_codec: video,
        }
    }

    #[test]
    fn offers_what_the_browser_sends_else_what_it_can_receive() {
        let b = binding("opus,pcmu,vp8,h264");
        assert_eq!(
            offer_codecs(&b, &ports(Some(Codec::Opus), Some(Codec::H264))),
            vec![Codec::Opus, Codec::H264]
        );
        assert_eq!(
            offer_codecs(&b, &ports(None, None)),
            vec![Codec::Opus, Codec::Pcmu, Codec::Vp8, Codec::H264],
            "a member who does not publish receives whatever the MCU picks"
        );
        assert_eq!(
            offer_codecs(
                &binding("h264,opus"),
                &ports(Some(Codec::Opus), Some(Codec::Vp8))
            ),
            vec![Codec::Opus, Codec::H264],
            "the binding wins over the browser's codec"
        );
        assert_eq!(
            offer_codecs(&binding("pcmu,pcma,vp8"), &ports(Some(Codec::Pcmu), None)),
            vec![Codec::Pcmu, Codec::Vp8],
            "G.711 as the browser sends it"
        );
    }

    #[test]
    fn notices_carry_state_and_details() {
        let n = state_notice("failed", json!({ "reason": "the MCU is busy" }));
        assert_eq!(n["method"], "mcu.state");
        assert_eq!(
            n["params"],
            json!({ "state": "failed", "reason": "the MCU is busy" })
        );
    }
}
