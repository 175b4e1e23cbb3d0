//! Binding a conference to a SIP/MCU conference: the address each web
//! member's call goes to, the transport, an optional outbound proxy, digest
//! credentials and codec preferences. Values the binding leaves out come from
//! the `[sip]` section of the configuration.

use confgate_signalling::methods::{BindMcuParams, McuView};

use crate::config::SipConfig;
use crate::error::{AppError, AppResult};
use crate::store::McuBindingRow;

/// The codecs a binding may prefer.
pub const CODECS: &[&str] = &["opus", "pcmu", "pcma", "vp8", "h264"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("{what} must be a SIP URI like sip:room@mcu.example.com[:port], got {value:?}")]
    BadUri { what: &'static str, value: String },
    #[error("transport must be udp or tcp, got {0:?}")]
    BadTransport(String),
    #[error("unknown codec {0:?}; use opus, pcmu, pcma, vp8 or h264")]
    BadCodec(String),
    #[error("codecs must name at least one codec")]
    NoCodecs,
    #[error("a password needs a username")]
    PasswordWithoutUser,
}

/// Checks a `sip:` or `sips:` URI: a host, an optional user and port, and no
/// characters that would break a SIP header.
pub fn check_uri(what: &'static str, value: &str) -> Result<(), BindingError> {
    let bad = || BindingError::BadUri {
        what,
        value: value.to_string(),
    };
    let rest = value
        .strip_prefix("sip:")
        .or_else(|| value.strip_prefix("sips:"))
        .ok_or_else(bad)?;
    if rest.is_empty()
        || rest.len() > 256
        || rest
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ','))
    {
        return Err(bad());
    }
    let host_port = rest
        .rsplit_once('@')
        .map_or(rest, |(user, host)| if user.is_empty() { "" } else { host });
    let host_port = host_port.split(';').next().unwrap_or("");
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => (h, Some(p)),
        _ => (host_port, None),
    };
    if host.is_empty() || port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
        return Err(bad());
    }
    Ok(())
}

fn check_transport(t: &str) -> Result<String, BindingError> {
    match t.to_ascii_lowercase().as_str() {
        t @ ("udp" | "tcp") => Ok(t.to_string()),
        _ => Err(BindingError::BadTransport(t.to_string())),
    }
}

fn check_codecs(codecs: &[String]) -> Result<Vec<String>, BindingError> {
    let mut out: Vec<String> = Vec::new();
    for c in codecs {
        let c = c.trim().to_ascii_lowercase();
        if !CODECS.contains(&c.as_str()) {
            return Err(BindingError::BadCodec(c));
        }
        if !out.contains(&c) {
            out.push(c);
        }
    }
    if out.is_empty() {
        return Err(BindingError::NoCodecs);
    }
    Ok(out)
}

/// Checks the configuration's `[sip]` defaults.
pub fn validate_defaults(sip: &SipConfig) -> Result<(), BindingError> {
    check_transport(&sip.transport)?;
    if let Some(proxy) = &sip.outbound_proxy {
        check_uri("outbound_proxy", proxy)?;
    }
    if sip.password.is_some() && sip.username.is_none() {
        return Err(BindingError::PasswordWithoutUser);
    }
    check_codecs(&sip.codecs)?;
    Ok(())
}

/// A binding to store, from the request and the defaults.
pub fn binding(p: BindMcuParams, defaults: &SipConfig, now_ms: i64) -> AppResult<McuBindingRow> {
    let invalid = |e: BindingError| AppError::InvalidParams(e.to_string());
    check_uri("uri", &p.uri).map_err(invalid)?;
    let transport =
        check_transport(p.transport.as_deref().unwrap_or(&defaults.transport)).map_err(invalid)?;
    let outbound_proxy = p.outbound_proxy.or_else(|| defaults.outbound_proxy.clone());
    if let Some(proxy) = &outbound_proxy {
        check_uri("outboundProxy", proxy).map_err(invalid)?;
    }
    if p.password.is_some() && p.username.is_none() {
        return Err(invalid(BindingError::PasswordWithoutUser));
    }
    for (what, value) in [("username", &p.username), ("password", &p.password)] {
        if value
            .as_deref()
            .is_some_and(|v| v.is_empty() || v.len() > 128 || v.chars().any(char::is_control))
        {
            return Err(AppError::InvalidParams(format!(
                "{what} must be 1 to 128 characters without control characters"
            )));
        }
    }
    let codecs = check_codecs(p.codecs.as_deref().unwrap_or(&defaults.codecs)).map_err(invalid)?;
    Ok(McuBindingRow {
        conf_id: p.conf_id,
        uri: p.uri,
        transport,
        outbound_proxy,
        username: p.username,
        password: p.password,
        codecs: codecs.join(","),
        created_at: now_ms,
    })
}

/// What the API shows of a binding: never the password.
pub fn view(b: &McuBindingRow, defaults: &SipConfig) -> McuView {
    let username = b.username.clone().or_else(|| defaults.username.clone());
    McuView {
        uri: b.uri.clone(),
        transport: b.transport.clone(),
        outbound_proxy: b.outbound_proxy.clone(),
        has_password: b.password.is_some() || (b.username.is_none() && defaults.password.is_some()),
        username,
        codecs: b.codecs.split(',').map(str::to_string).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(uri: &str) -> BindMcuParams {
        BindMcuParams {
            conf_id: "1".into(),
            uri: uri.into(),
            transport: None,
            outbound_proxy: None,
            username: None,
            password: None,
            codecs: None,
        }
    }

    #[test]
    fn uris() {
        for ok in [
            "sip:room@mcu.example.com",
            "sips:room@10.0.0.1:5061",
            "sip:mcu.example.com",
            "sip:8001@[::1]:5060",
            "sip:r@h;transport=tcp",
        ] {
            assert_eq!(check_uri("uri", ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "http://x",
            "sip:",
            "sip:room@",
            "sip:a b@c",
            "sip:r@h:0",
            "sip:r@h:99999",
            "sip:<x>",
            "sip:r@h\r\nVia: x",
        ] {
            assert!(check_uri("uri", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_fill_the_gaps_and_the_binding_wins() {
        let defaults = SipConfig {
            username: Some("gw".into()),
            password: Some("pw".into()),
            ..SipConfig::default()
        };
        let b = binding(params("sip:room@mcu"), &defaults, 5).expect("binding");
        assert_eq!(
            (b.transport.as_str(), b.codecs.as_str()),
            ("udp", "opus,pcmu,pcma,vp8,h264")
        );
        assert_eq!(b.username, None, "credentials stay global unless given");
        let v = view(&b, &defaults);
        assert_eq!(v.username.as_deref(), Some("gw"));
        assert!(v.has_password);
        let mut p = params("sip:room@mcu");
        p.transport = Some("TCP".into());
        p.codecs = Some(vec!["VP8".into(), "opus".into(), "vp8".into()]);
        let b = binding(p, &defaults, 5).expect("binding");
        assert_eq!(
            (b.transport.as_str(), b.codecs.as_str()),
            ("tcp", "vp8,opus")
        );
    }

    #[test]
    fn bad_bindings_say_why() {
        let d = SipConfig::default();
        let mut p = params("sip:room@mcu");
        p.transport = Some("sctp".into());
        assert!(
            binding(p, &d, 0)
                .expect_err("invalid")
                .to_string()
                .contains("udp or tcp")
        );
        let mut p = params("sip:room@mcu");
        p.codecs = Some(vec!["g729".into()]);
        assert!(
            binding(p, &d, 0)
                .expect_err("invalid")
                .to_string()
                .contains("g729")
        );
        let mut p = params("sip:room@mcu");
        p.password = Some("x".into());
        assert!(
            binding(p, &d, 0)
                .expect_err("invalid")
                .to_string()
                .contains("username")
        );
        assert!(
            binding(params("tel:+123"), &d, 0)
                .expect_err("invalid")
                .to_string()
                .contains("SIP URI")
        );
        let bad = SipConfig {
            codecs: vec![],
            ..SipConfig::default()
        };
        assert_eq!(validate_defaults(&bad), Err(BindingError::NoCodecs));
    }
}
