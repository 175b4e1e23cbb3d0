//! Typed values of the header fields a UAC needs: methods, Via, name-addr
//! (From, To, Contact, Route, Record-Route), CSeq and RFC 4028's
//! Session-Expires. Each parses from one header value (comma-separated lists
//! are already split by the message parser) and writes back with `Display`.

use std::fmt;

use super::SipError;
use super::syntax::{is_lws, is_token, quote, read_quoted, trim_lws};
use super::uri::{Params, SipUri, split_hostport};

/// A request method. Methods are case-sensitive (RFC 3261 §7.1): `invite` is
/// an unknown extension method, not INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Info,
    Update,
    Register,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    /// Any other token.
    Other(String),
}

impl Method {
    /// Parses a method token; anything that is not a token is an error.
    pub fn parse(s: &str) -> Result<Method, SipError> {
        Ok(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "REGISTER" => Method::Register,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            other if is_token(other) => Method::Other(other.to_owned()),
            other => {
                return Err(SipError::BadStartLine(format!(
                    "`{other}` is not a method name"
                )));
            }
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Register => "REGISTER",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport named in a Via (`SIP/2.0/UDP`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Sctp,
    Ws,
    Wss,
    Other(String),
}

impl Transport {
    /// Case-insensitive, as RFC 3261 §7.3.1 wants for this token.
    pub fn parse(s: &str) -> Result<Transport, SipError> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "UDP" => Transport::Udp,
            "TCP" => Transport::Tcp,
            "TLS" => Transport::Tls,
            "SCTP" => Transport::Sctp,
            "WS" => Transport::Ws,
            "WSS" => Transport::Wss,
            _ if is_token(s) => Transport::Other(s.to_ascii_uppercase()),
            _ => return Err(SipError::bad_value("Via", format!("bad transport `{s}`"))),
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(s) => s,
        }
    }

    /// Whether the transport delivers reliably, which turns off the
    /// retransmission timers (RFC 3261 §17.1.1.2). Only UDP is unreliable
    /// among the transports SIP names.
    pub fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The magic cookie that starts every RFC 3261 branch (§8.1.1.7).
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

/// One Via value: `SIP/2.0/UDP host:port;branch=z9hG4bK...;rport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: Transport,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub fn parse(value: &str) -> Result<Via, SipError> {
        let bad = |why: &str| SipError::bad_value("Via", format!("{why} in `{value}`"));
        // sent-protocol = name SLASH version SLASH transport, where SLASH may
        // carry white space around it.
        let mut rest = value;
        let mut parts = Vec::with_capacity(3);
        for i in 0..3 {
            rest = trim_lws_start(rest);
            let end = rest
                .find(|c: char| c == '/' || is_lws(c))
                .unwrap_or(rest.len());
            let (part, after) = rest.split_at(end);
            if !is_token(part) {
                return Err(bad("bad protocol"));
            }
            parts.push(part);
            rest = trim_lws_start(after);
            if i < 2 {
                rest = rest.strip_prefix('/').ok_or_else(|| bad("bad protocol"))?;
            }
        }
        if !parts[0].eq_ignore_ascii_case("SIP") || parts[1] != "2.0" {
            return Err(SipError::Unsupported(format!(
                "the Via protocol `{}/{}`",
                parts[0], parts[1]
            )));
        }
        let transport = Transport::parse(parts[2])?;
        let sent_by_end = rest
            .find(|c: char| c == ';' || is_lws(c))
            .unwrap_or(rest.len());
        let (sent_by, params) = rest.split_at(sent_by_end);
        if sent_by.is_empty() {
            return Err(bad("no sent-by"));
        }
        let (host, port) = split_hostport(sent_by).map_err(|_| bad("bad sent-by"))?;
        let params = Params::parse_header_params(params, "Via")?;
        Ok(Via {
            transport,
            host: host.to_owned(),
            port,
            params,
        })
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// The address the next hop saw the request come from (§18.2.1).
    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }

    /// The `rport` parameter (RFC 3581): `None` when absent, `Some(None)`
    /// when present without a value (as a client sends it), `Some(Some(p))`
    /// when filled in by the server. A malformed port reads as absent.
    pub fn rport(&self) -> Option<Option<u16>> {
        if !self.params.contains("rport") {
            return None;
        }
        match self.params.value("rport") {
            None => Some(None),
            Some(p) => p.parse().ok().map(Some),
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)
    }
}

fn trim_lws_start(s: &str) -> &str {
    s.trim_start_matches(is_lws)
}

/// A `name-addr` or `addr-spec` with header parameters: the value of From,
/// To, Contact, Route and Record-Route. The three spellings
/// `"Name" <sip:a@b>;tag=x`, `<sip:a@b>` and `sip:a@b;tag=x` are all read;
/// writing always uses angle brackets, and a display name is always quoted
/// with `"` and `\` escaped, so any UTF-8 name is safe to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Unescaped; `None` when absent. An empty name is treated as absent.
    pub display_name: Option<String>,
    pub uri: SipUri,
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: SipUri) -> NameAddr {
        NameAddr {
            display_name: None,
            uri,
            params: Params::new(),
        }
    }

    /// Sets the display name; control characters will be written as spaces.
    pub fn with_display_name(mut self, name: &str) -> NameAddr {
        self.display_name = Some(name.to_owned()).filter(|n| !n.is_empty());
        self
    }

    /// `header` names the field in errors.
    pub fn parse(value: &str, header: &str) -> Result<NameAddr, SipError> {
        let bad = |why: String| SipError::bad_value(header, why);
        let value = trim_lws(value);
        let (display_name, after_name) = if value.starts_with('"') {
            let (name, rest) = read_quoted(value).map_err(|e| bad(e.to_owned()))?;
            let rest = trim_lws_start(rest);
            if !rest.starts_with('<') {
                return Err(bad("a quoted display name must be followed by <URI>".into()));
            }
            (Some(name), rest)
        } else if let Some(lt) = value.find('<') {
            // Unquoted display name: a sequence of tokens.
            let name = trim_lws(&value[..lt]);
            if !name.split(is_lws).filter(|t| !t.is_empty()).all(is_token) {
                return Err(bad(format!("bad display name `{name}`")));
            }
            let name = name
                .split(is_lws)
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            (Some(name), &value[lt..])
        } else {
            (None, value)
        };
        let display_name = display_name.filter(|n| !n.is_empty());

        let (uri, params) = if let Some(inner) = after_name.strip_prefix('<') {
            let Some(gt) = inner.find('>') else {
                return Err(bad("an unclosed <".into()));
            };
            (&inner[..gt], &inner[gt + 1..])
        } else {
            // addr-spec: parameters after the URI belong to the header (§20.10).
            let end = after_name
                .find([';', ' ', '\t'])
                .unwrap_or(after_name.len());
            after_name.split_at(end)
        };
        let uri = SipUri::parse(trim_lws(uri))?;
        let params = Params::parse_header_params(params, header)?;
        Ok(NameAddr {
            display_name,
            uri,
            params,
        })
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }

    /// This value with its `tag` parameter set.
    pub fn with_tag(mut self, tag: &str) -> NameAddr {
        self.params.set("tag", Some(tag));
        self
    }

    /// This value without a `tag`.
    pub fn without_tag(mut self) -> NameAddr {
        self.params.remove("tag");
        self
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            write!(f, "{} ", quote(name))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// The CSeq value: sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

/// RFC 3261 §8.1.1.5: a CSeq number is below 2^31.
pub const MAX_CSEQ: u32 = (1 << 31) - 1;

impl CSeq {
    pub fn parse(value: &str) -> Result<CSeq, SipError> {
        let bad = || SipError::bad_value("CSeq", format!("`{value}` is not `number METHOD`"));
        let value = trim_lws(value);
        let split = value.find(is_lws).ok_or_else(bad)?;
        let (number, method) = value.split_at(split);
        if number.is_empty() || number.len() > 10 || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let seq: u32 = number.parse().map_err(|_| bad())?;
        if seq > MAX_CSEQ {
            return Err(SipError::bad_value("CSeq", "the number is not below 2^31"));
        }
        let method = Method::parse(trim_lws(method)).map_err(|_| bad())?;
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Who refreshes the session (RFC 4028 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

impl Refresher {
    pub fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// `Session-Expires: 1800;refresher=uac` (RFC 4028 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionExpires {
    /// The session interval in seconds.
    pub delta: u32,
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    pub fn parse(value: &str) -> Result<SessionExpires, SipError> {
        let value = trim_lws(value);
        let end = value.find([';', ' ', '\t']).unwrap_or(value.len());
        let (delta, params) = value.split_at(end);
        let delta = parse_delta(delta, "Session-Expires")?;
        let params = Params::parse_header_params(params, "Session-Expires")?;
        let refresher = match params.value("refresher") {
            None => None,
            Some(r) if r.eq_ignore_ascii_case("uac") => Some(Refresher::Uac),
            Some(r) if r.eq_ignore_ascii_case("uas") => Some(Refresher::Uas),
            Some(r) => {
                return Err(SipError::bad_value(
                    "Session-Expires",
                    format!("refresher `{r}` is neither uac nor uas"),
                ));
            }
        };
        Ok(SessionExpires { delta, refresher })
    }
}

impl fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.delta)?;
        if let Some(r) = self.refresher {
            write!(f, ";refresher={}", r.as_str())?;
        }
        Ok(())
    }
}

/// `delta-seconds` (RFC 3261 §25.1): digits; values past `u32::MAX` saturate,
/// as §20.19 allows for Expires.
pub(crate) fn parse_delta(s: &str, header: &str) -> Result<u32, SipError> {
    let s = trim_lws(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SipError::bad_value(
            header,
            format!("`{s}` is not a number"),
        ));
    }
    Ok(s.parse().unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_case_sensitive_tokens() {
        assert_eq!(Method::parse("INVITE"), Ok(Method::Invite));
        assert_eq!(Method::parse("invite"), Ok(Method::Other("invite".into())));
        assert_eq!(
            Method::parse("NEWMETHOD").map(|m| m.to_string()),
            Ok("NEWMETHOD".into())
        );
        assert!(Method::parse("IN VITE").is_err());
        assert!(Method::parse("").is_err());
    }

    #[test]
    fn via_values() {
        let via = Via::parse("SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-0;rport").expect("valid");
        assert_eq!(via.transport, Transport::Udp);
        assert!(!via.transport.is_reliable());
        assert_eq!(via.host, "127.0.0.1");
        assert_eq!(via.port, Some(5061));
        assert_eq!(via.branch(), Some("z9hG4bK-1-0"));
        assert_eq!(via.rport(), Some(None));
        assert_eq!(via.received(), None);
        assert_eq!(
            via.to_string(),
            "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-0;rport"
        );

        let via = Via::parse(
            "SIP / 2.0 / tcp gw.example.com ; branch=z9hG4bKx ;received=10.0.0.1;rport=5070",
        )
        .expect("white space around slashes and semicolons");
        assert_eq!(via.transport, Transport::Tcp);
        assert!(via.transport.is_reliable());
        assert_eq!(via.port, None);
        assert_eq!(via.received(), Some("10.0.0.1"));
        assert_eq!(via.rport(), Some(Some(5070)));

        let via = Via::parse("SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bKy").expect("v6");
        assert_eq!(via.host, "[2001:db8::9]");

        for bad in [
            "",
            "SIP/2.0",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP ;branch=x",
            "SIP/2.0 UDP host",
            "SIP/2.0/UDP host:port",
            "SIP/2.0/UDP host junk",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            Via::parse("SIP/3.0/UDP host"),
            Err(SipError::Unsupported(_))
        ));
    }

    #[test]
    fn name_addr_forms() {
        let a = NameAddr::parse(
            r#""Alice \"Al\" Smith" <sip:alice@example.com>;tag=1928"#,
            "From",
        )
        .expect("quoted");
        assert_eq!(a.display_name.as_deref(), Some(r#"Alice "Al" Smith"#));
        assert_eq!(a.uri.to_string(), "sip:alice@example.com");
        assert_eq!(a.tag(), Some("1928"));
        assert_eq!(
            a.to_string(),
            r#""Alice \"Al\" Smith" <sip:alice@example.com>;tag=1928"#
        );

        let b =
            NameAddr::parse("<sip:mcu@127.0.0.1:5060;transport=udp>", "Contact").expect("angle");
        assert_eq!(b.display_name, None);
        assert_eq!(b.uri.transport().as_deref(), Some("udp"));
        assert!(b.params.is_empty());

        // Bare URI: parameters after it are header parameters.
        let c = NameAddr::parse("sip:bob@biloxi.com;tag=a6c85cf", "To").expect("bare");
        assert_eq!(c.tag(), Some("a6c85cf"));
        assert!(c.uri.params.is_empty());

        let d = NameAddr::parse("Bob   Smith <sip:bob@biloxi.com>", "To").expect("tokens");
        assert_eq!(d.display_name.as_deref(), Some("Bob Smith"));
        let e = NameAddr::parse(r#""" <sip:x@y>"#, "To").expect("empty name");
        assert_eq!(e.display_name, None);

        let f = NameAddr::new(SipUri::parse("sip:web@gw").expect("uri"))
            .with_display_name("Zoë \\ \"Z\"\r\n")
            .with_tag("abc");
        let text = f.to_string();
        assert_eq!(text, r#""Zoë \\ \"Z\"  " <sip:web@gw>;tag=abc"#);
        let back = NameAddr::parse(&text, "From").expect("round trip");
        assert_eq!(back.display_name.as_deref(), Some("Zoë \\ \"Z\"  "));
        assert_eq!(back.tag(), Some("abc"));
        assert_eq!(back.clone().without_tag().tag(), None);

        for bad in [
            "",
            "<sip:a@b",
            r#""open <sip:a@b>"#,
            r#""name" sip:a@b"#,
            "Bad;Name <sip:a@b>",
            "<sip:a@b> junk",
            "<tel:123>",
        ] {
            assert!(NameAddr::parse(bad, "To").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cseq_and_session_expires() {
        assert_eq!(
            CSeq::parse("314159 INVITE"),
            Ok(CSeq {
                seq: 314159,
                method: Method::Invite
            })
        );
        assert_eq!(
            CSeq::parse(" 1\t BYE ").map(|c| c.to_string()),
            Ok("1 BYE".into())
        );
        for bad in [
            "",
            "1",
            "INVITE",
            "x INVITE",
            "2147483648 INVITE",
            "99999999999 ACK",
            "1 IN VITE",
        ] {
            assert!(CSeq::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            SessionExpires::parse("1800;refresher=uac"),
            Ok(SessionExpires {
                delta: 1800,
                refresher: Some(Refresher::Uac)
            })
        );
        assert_eq!(
            SessionExpires::parse("90").map(|s| s.to_string()),
            Ok("90".into())
        );
        assert_eq!(
            SessionExpires::parse("4000 ;refresher=UAS").map(|s| s.refresher),
            Ok(Some(Refresher::Uas))
        );
        assert!(SessionExpires::parse("abc").is_err());
        assert!(SessionExpires::parse("90;refresher=me").is_err());
        assert_eq!(parse_delta("99999999999", "Expires"), Ok(u32::MAX));
    }
}
