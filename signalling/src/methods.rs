//! The typed parameters and results of the JSON-RPC methods and the join
//! address, with the original design's field names (camelCase, epoch-ms times).

use serde::{Deserialize, Serialize};

/// The `state` of a join address answer, with the original design's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinState {
    Ok = 0,
    NotStarted = 30,
    Ended = 31,
    NotFound = 32,
}

impl JoinState {
    pub fn code(self) -> u16 {
        self as u16
    }
}

impl Serialize for JoinState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.code())
    }
}

impl<'de> Deserialize<'de> for JoinState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u16::deserialize(d)? {
            0 => Ok(JoinState::Ok),
            30 => Ok(JoinState::NotStarted),
            31 => Ok(JoinState::Ended),
            32 => Ok(JoinState::NotFound),
            other => Err(serde::de::Error::custom(format!(
                "unknown join state {other}"
            ))),
        }
    }
}

/// `GET /gzbwclient/conference/{code}`, and the first fields of a join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConferenceLookup {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf_name: Option<String>,
    pub state: JoinState,
    /// Always 200 when the lookup itself worked, as in the original design.
    pub code: u16,
}

/// The body of `POST /gzbwclient/conference/{code}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub name: String,
}

/// The answer to a successful join: the lookup, the temporary account and
/// its tokens, and the gateway pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinAnswer {
    #[serde(flatten)]
    pub conference: ConferenceLookup,
    pub user_id: String,
    pub name: String,
    pub access_token: String,
    /// Access token expiry, epoch milliseconds.
    pub deadline: i64,
    pub refresh_token: String,
    /// The secret for `auth.http.login` with the `client_credentials` grant.
    pub client_secret: String,
    /// Comma-separated WebRTC gateway pool: the node that serves the
    /// conference.
    pub webrtc_address: String,
    /// Set when another node than the one answering serves the conference:
    /// its gateway, where the page opens its WebSocket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The pool's live gateways. A page whose own node goes away asks these
    /// where its conference is now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pool: Vec<String>,
}

/// `auth.http.login` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginParams {
    #[serde(default)]
    pub client_id: Option<String>,
    /// `client_credentials` or `refresh_token`.
    pub grant_type: String,
    /// The secret issued at join.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// The password given at `org.user.createUser`.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// `auth.http.login` result, with the original design's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginResult {
    pub client_type: String,
    pub corp_id: Option<String>,
    pub name: String,
    pub access_token: String,
    pub deadline: i64,
    pub user_id: String,
    pub refresh_token: String,
}

/// `org.user.createUser` parameters: only `name` is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUserParams {
    pub name: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// A user as the original design shows it, every field with its name and
/// type (times in epoch milliseconds, `gender` a string).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    pub user_id: String,
    pub name: String,
    pub sip_account: String,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub gender: String,
    pub birthday: Option<i64>,
    pub english_name: Option<String>,
    pub signature: Option<String>,
    pub avatar: Option<String>,
    pub avatar_bin_val: Option<String>,
    pub custom_id: String,
    pub creation_date: i64,
    pub modification_date: i64,
    pub active_date: i64,
    pub is_logged_in: bool,
    pub logged_in: bool,
    pub client_enabled: bool,
    pub ip_white_enabled: bool,
    pub ip_block_enabled: bool,
    pub tenements: Vec<String>,
    pub properties: std::collections::BTreeMap<String, String>,
    pub delete_date: Option<i64>,
    pub status: String,
}

/// `org.user.getUsers` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetUsersParams {
    pub user_ids: Vec<String>,
}

/// One entry of `org.user.getUsers`: what the page shows of a member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserCard {
    pub user_id: String,
    pub name: String,
    /// An image URL: the user's avatar, or a generated one with initials.
    pub avatar_url: String,
}

/// `config.getProperties` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetPropertiesParams {
    pub keys: Vec<String>,
}

/// `org.user.processIQ` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessIqParams {
    pub req_xml: String,
}

/// `org.user.processIQ` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessIqResult {
    pub xml: String,
}

/// `conference.create` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateConferenceParams {
    pub name: String,
    #[serde(default)]
    pub password: Option<String>,
    /// Epoch milliseconds.
    #[serde(default)]
    pub starts_at: Option<i64>,
    /// Epoch milliseconds.
    #[serde(default)]
    pub ends_at: Option<i64>,
}

/// `conference.get` and `conference.end` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConferenceIdParams {
    pub conf_id: String,
}

/// `conference.list` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListConferencesParams {
    /// At most this many, newest first. Default 100, at most 1000.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A conference as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConferenceInfo {
    pub conf_id: String,
    pub conf_name: String,
    pub password: String,
    /// 0 live, 30 not started, 31 ended.
    pub state: JoinState,
    pub chair_user_id: Option<String>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub created_at: i64,
    /// Join links, the configured format first.
    pub links: Vec<String>,
    /// The SIP/MCU conference it is bound to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcu: Option<McuView>,
}

/// `conference.bindMcu` parameters. Absent fields take the `[sip]` defaults
/// of the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BindMcuParams {
    pub conf_id: String,
    /// `sip:ROOM@mcu.example.com[:port]`.
    pub uri: String,
    /// `udp` or `tcp`.
    #[serde(default)]
    pub transport: Option<String>,
    #[serde(default)]
    pub outbound_proxy: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// In order of preference, from `opus`, `pcmu`, `pcma`, `vp8`, `h264`.
    #[serde(default)]
    pub codecs: Option<Vec<String>>,
}

/// A conference's MCU binding as the API shows it (never the password).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct McuView {
    pub uri: String,
    pub transport: String,
    pub outbound_proxy: Option<String>,
    pub username: Option<String>,
    pub has_password: bool,
    pub codecs: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_has_the_original_shape() {
        let lookup = ConferenceLookup {
            conf_id: Some("11234".into()),
            conf_name: Some("会议名称".into()),
            state: JoinState::Ok,
            code: 200,
        };
        assert_eq!(
            serde_json::to_value(&lookup).expect("json"),
            serde_json::json!({"confId":"11234","confName":"会议名称","state":0,"code":200})
        );
        let missing = ConferenceLookup {
            conf_id: None,
            conf_name: None,
            state: JoinState::NotFound,
            code: 200,
        };
        assert_eq!(
            serde_json::to_value(&missing).expect("json"),
            serde_json::json!({"state":32,"code":200})
        );
    }

    #[test]
    fn login_params_take_the_original_request() {
        let p: LoginParams = serde_json::from_value(
            serde_json::json!({"clientId":"u1074304","grantType":"client_credentials"}),
        )
        .expect("params");
        assert_eq!(p.client_id.as_deref(), Some("u1074304"));
        assert!(p.client_secret.is_none());
    }
}
