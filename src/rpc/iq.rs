//! `org.user.processIQ {reqXml}`: an XMPP IQ to the conference authority,
//! answered as `{"xml": …}`. Malformed XML gets -32602 with the parser's
//! message.

use confgate_signalling::iq::parse_iq;
use confgate_signalling::methods::{ProcessIqParams, ProcessIqResult};
use serde_json::Value;

use super::{Context, json};
use crate::AppState;
use crate::error::{AppError, AppResult};

pub async fn process(state: &AppState, p: ProcessIqParams, ctx: &Context) -> AppResult<Value> {
    let caller = ctx.caller(state).await?;
    let mut iq =
        parse_iq(&p.req_xml).map_err(|e| AppError::InvalidParams(format!("reqXml: {e}")))?;
    if iq.from.is_none() {
        iq.from = Some(format!(
            "{}@{}/web",
            caller.user.user_id, state.config.authority.server_name
        ));
    }
    let xml = state.authority.process_iq(iq).await?;
    json(&ProcessIqResult { xml })
}
