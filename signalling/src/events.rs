//! Conference events: one type set used in the room, on the bus, in the store
//! and on the wire (the `conference.event` notification). Each event carries
//! an id and a per-conference sequence number, so that a client that
//! reconnects can ask for what it missed and never sees an event twice.

use serde::{Deserialize, Serialize};

/// A member's role in a conference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MemberRole {
    Chair,
    Member,
}

/// A member as every page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    pub user_id: String,
    pub name: String,
    pub role: MemberRole,
    pub audio_muted: bool,
    pub video_enabled: bool,
    pub speaking: bool,
    /// Whether the member's page is connected now; false during the grace
    /// period after its connection dropped.
    pub connected: bool,
    /// Epoch milliseconds.
    pub joined_at: i64,
}

/// Why a member left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LeaveReason {
    /// The member left (button, or `conference.leave`).
    Left,
    /// The connection stayed lost past the grace period.
    ConnectionLost,
    /// A chair removed the member.
    Removed,
    /// The conference ended.
    ConferenceEnded,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum EventKind {
    MemberJoined {
        member: MemberView,
    },
    MemberLeft {
        user_id: String,
        reason: LeaveReason,
    },
    MemberUpdated {
        user_id: String,
        audio_muted: bool,
        video_enabled: bool,
        speaking: bool,
        role: MemberRole,
        connected: bool,
    },
    MainVideoChanged {
        user_id: Option<String>,
        /// Why this member: `pinned`, `chair`, `speaker` or `none`.
        cause: MainVideoCause,
    },
    ConferenceStateChanged {
        /// 0 live, 30 not started, 31 ended.
        state: u16,
    },
}

impl EventKind {
    /// The `type` tag, as on the wire: `memberJoined`, `memberLeft`,
    /// `memberUpdated`, `mainVideoChanged`, `conferenceStateChanged`.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::MemberJoined { .. } => "memberJoined",
            EventKind::MemberLeft { .. } => "memberLeft",
            EventKind::MemberUpdated { .. } => "memberUpdated",
            EventKind::MainVideoChanged { .. } => "mainVideoChanged",
            EventKind::ConferenceStateChanged { .. } => "conferenceStateChanged",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MainVideoCause {
    Pinned,
    Chair,
    Speaker,
    None,
}

/// One event of a conference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConferenceEvent {
    /// Unique: `<confId>:<seq>`.
    pub event_id: String,
    /// Per-conference sequence number, from 1, without gaps.
    pub seq: u64,
    pub conf_id: String,
    /// Epoch milliseconds.
    pub at: i64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The whole state of a conference at `seq`: what a client gets on connect or
/// reconnect, before the events newer than `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub conf_id: String,
    pub conf_name: String,
    pub seq: u64,
    /// 0 live, 30 not started, 31 ended.
    pub state: u16,
    pub members: Vec<MemberView>,
    pub main_video: Option<String>,
    pub main_video_cause: MainVideoCause,
}

/// The notification method names, server to client.
pub mod notify {
    /// `conference.event`: one [`super::ConferenceEvent`].
    pub const EVENT: &str = "conference.event";
    /// `conference.snapshot`: one [`super::Snapshot`].
    pub const SNAPSHOT: &str = "conference.snapshot";
    /// `media.offer`: a server offer for the subscriber connection.
    pub const MEDIA_OFFER: &str = "media.offer";
    /// `media.candidate`: a server ICE candidate.
    pub const MEDIA_CANDIDATE: &str = "media.candidate";
    /// `session.closed`: why the server is closing this connection.
    pub const SESSION_CLOSED: &str = "session.closed";
    /// `mcu.state`: the member's call into the MCU of a bound conference:
    /// `calling`, `connected` (with the bridged `audio` and `video` codecs),
    /// `failed` or `ended` (with a `reason`).
    pub const MCU_STATE: &str = "mcu.state";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_a_flat_wire_shape() {
        let event = ConferenceEvent {
            event_id: "42:7".into(),
            seq: 7,
            conf_id: "42".into(),
            at: 1,
            kind: EventKind::MemberUpdated {
                user_id: "u1".into(),
                audio_muted: true,
                video_enabled: false,
                speaking: false,
                role: MemberRole::Chair,
                connected: true,
            },
        };
        let json = serde_json::to_value(&event).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"eventId":"42:7","seq":7,"confId":"42","at":1,"type":"memberUpdated",
                "userId":"u1","audioMuted":true,"videoEnabled":false,"speaking":false,"role":"chair","connected":true})
        );
        assert_eq!(json["type"], event.kind.name(), "name() is the wire tag");
        let back: ConferenceEvent = serde_json::from_value(json).expect("parse");
        assert_eq!(back, event);
        let main = EventKind::MainVideoChanged {
            user_id: None,
            cause: MainVideoCause::None,
        };
        assert_eq!(
            serde_json::to_value(&main).expect("json"),
            serde_json::json!({"type":"mainVideoChanged","userId":null,"cause":"none"})
        );
        for kind in [
            main,
            EventKind::ConferenceStateChanged { state: 31 },
            EventKind::MemberLeft {
                user_id: "u".into(),
                reason: LeaveReason::Left,
            },
        ] {
            assert_eq!(
                serde_json::to_value(&kind).expect("json")["type"],
                kind.name()
            );
        }
    }
}
