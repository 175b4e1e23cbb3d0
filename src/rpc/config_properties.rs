//! `config.getProperties {keys}`: system properties. Unknown keys are left
//! out of the answer.
//!
//! | key | value |
//! |-----|-------|
//! | `serverName` | the conference authority's XMPP domain |
//! | `webrtcAddress` | the WebRTC gateway pool, comma-separated |
//! | `version` | confgate's version |
//! | `linkFormat` | `seed` or `opaque`: the join link printed first |

use confgate_signalling::methods::GetPropertiesParams;
use serde_json::{Map, Value};

use crate::AppState;
use crate::config::LinkFormat;
use crate::error::AppResult;

pub fn get(state: &AppState, p: GetPropertiesParams) -> AppResult<Value> {
    let mut out = Map::new();
    for key in p.keys {
        let value = match key.as_str() {
            "serverName" => state.config.authority.server_name.clone(),
            "webrtcAddress" => crate::nodes::gateways(state).join(","),
            "version" => env!("CARGO_PKG_VERSION").to_string(),
            "linkFormat" => match state.config.links.format {
                LinkFormat::Seed => "seed".into(),
                LinkFormat::Opaque => "opaque".into(),
            },
            _ => continue,
        };
        out.insert(key, Value::String(value));
    }
    Ok(Value::Object(out))
}
