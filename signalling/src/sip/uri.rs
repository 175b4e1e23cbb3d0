//! SIP and SIPS URIs (RFC 3261 §19.1) and the `;name=value` parameter lists
//! that URIs and header fields carry.

use std::fmt;
use std::str::FromStr;

use super::SipError;
use super::syntax::{is_token_byte, read_quoted, trim_lws};

/// `sip:` or `sips:` (TLS all the way, RFC 3261 §19.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
        }
    }
}

/// An ordered list of `;name[=value]` parameters. Names compare without
/// regard to case; values are kept exactly as they appeared (a quoted header
/// parameter keeps its quotes), so a list writes back as it was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, Option<String>)>);

impl Params {
    pub fn new() -> Params {
        Params(Vec::new())
    }

    /// Whether the parameter is present, with or without a value (`;lr`).
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The value of the first parameter with this name; `None` when it is
    /// absent or has no value.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_deref())
    }

    /// Replaces every parameter with this name by one, or appends it.
    ///
    /// The caller vouches for the syntax: use token characters (tags, branches
    /// and the like are built from hexadecimal).
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let entry = (name.to_owned(), value.map(str::to_owned));
        match self
            .0
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(i) => {
                self.0[i] = entry;
                let mut seen = 0usize;
                self.0.retain(|(n, _)| {
                    if n.eq_ignore_ascii_case(name) {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.0.push(entry),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// URI parameters: `s` is what follows the first `;` of the URI's
    /// host part, split on `;`, each `name[=value]` of RFC 3261 `paramchar`s.
    fn parse_uri_params(s: &str) -> Result<Params, SipError> {
        let mut params = Params::new();
        for piece in s.split(';') {
            let (name, value) = match piece.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (piece, None),
            };
            if name.is_empty() || !name.bytes().all(is_param_byte) {
                return Err(SipError::BadUri(format!("bad URI parameter `{piece}`")));
            }
            if let Some(v) = value
                && (v.is_empty() || !v.bytes().all(is_param_byte) || !escapes_ok(v))
            {
                return Err(SipError::BadUri(format!("bad URI parameter `{piece}`")));
            }
            params.0.push((name.to_owned(), value.map(str::to_owned)));
        }
        Ok(params)
    }

    /// Header parameters (`generic-param`): `s` is everything after the URI or
    /// sent-by, which must be empty or `;`-separated `name[=value]` with
    /// optional white space, each value a token, a host or a quoted string.
    pub(crate) fn parse_header_params(s: &str, header: &str) -> Result<Params, SipError> {
        let mut params = Params::new();
        let s = trim_lws(s);
        if s.is_empty() {
            return Ok(params);
        }
        let Some(s) = s.strip_prefix(';') else {
            return Err(SipError::bad_value(
                header,
                format!("unexpected `{s}` where parameters belong"),
            ));
        };
        for piece in super::syntax::split_outside(s, b';') {
            let piece = trim_lws(piece);
            let (name, value) = match piece.split_once('=') {
                Some((n, v)) => (trim_lws(n), Some(trim_lws(v))),
                None => (piece, None),
            };
            if !super::syntax::is_token(name) {
                return Err(SipError::bad_value(
                    header,
                    format!("bad parameter `{piece}`"),
                ));
            }
            if let Some(v) = value {
                let valid = if v.starts_with('"') {
                    matches!(read_quoted(v), Ok((_, rest)) if rest.is_empty())
                } else {
                    !v.is_empty()
                        && v.bytes()
                            .all(|b| is_token_byte(b) || matches!(b, b'[' | b']' | b':'))
                };
                if !valid {
                    return Err(SipError::bad_value(
                        header,
                        format!("bad value in parameter `{piece}`"),
                    ));
                }
            }
            params.0.push((name.to_owned(), value.map(str::to_owned)));
        }
        Ok(params)
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.0 {
            match value {
                Some(v) => write!(f, ";{name}={v}")?,
                None => write!(f, ";{name}")?,
            }
        }
        Ok(())
    }
}

/// A `sip:` or `sips:` URI.
///
/// The user part is kept in its escaped wire form, so a URI writes back
/// exactly as it was read; [`SipUri::new`] escapes a plain user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub scheme: Scheme,
    /// Escaped, as on the wire; `None` for `sip:host`.
    pub user: Option<String>,
    /// RFC 3261 deprecates passwords in URIs; parsed so that such a URI is
    /// not refused, never produced by this code.
    pub password: Option<String>,
    /// A host name, an IPv4 address, or an IPv6 reference in brackets.
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
    /// The `?h=v&h=v` part without its `?`, unparsed.
    pub headers: Option<String>,
}

impl SipUri {
    /// A URI from plain parts: `user` is escaped as needed (RFC 3261 §19.1.2),
    /// `host` must be a host name, an IPv4 address or a bracketed IPv6 one.
    pub fn new(
        scheme: Scheme,
        user: Option<&str>,
        host: &str,
        port: Option<u16>,
    ) -> Result<SipUri, SipError> {
        check_host(host)?;
        if user == Some("") {
            return Err(SipError::BadUri("the user part is empty".into()));
        }
        Ok(SipUri {
            scheme,
            user: user.map(escape_user),
            password: None,
            host: host.to_owned(),
            port,
            params: Params::new(),
            headers: None,
        })
    }

    /// Parses `sip:user:password@host:port;params?headers` (or `sips:`). The
    /// scheme is case-insensitive; anything other than `sip` or `sips` is
    /// [`SipError::Unsupported`].
    pub fn parse(s: &str) -> Result<SipUri, SipError> {
        let Some((scheme, rest)) = s.split_once(':') else {
            return Err(SipError::BadUri(format!("`{s}` has no scheme")));
        };
        let scheme = if scheme.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err(SipError::Unsupported(format!("the URI scheme `{scheme}`")));
        } else {
            return Err(SipError::BadUri(format!("`{s}` has no valid scheme")));
        };

        let (user, password, hostpart) = match rest.split_once('@') {
            Some((userinfo, hostpart)) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (userinfo, None),
                };
                if user.is_empty() || !user.bytes().all(is_user_byte) || !escapes_ok(user) {
                    return Err(SipError::BadUri(format!("bad user part in `{s}`")));
                }
                if let Some(p) = password
                    && (!p.bytes().all(is_password_byte) || !escapes_ok(p))
                {
                    return Err(SipError::BadUri(format!("bad password part in `{s}`")));
                }
                (Some(user), password, hostpart)
            }
            None => (None, None, rest),
        };

        let (before_headers, headers) = match hostpart.split_once('?') {
            Some((b, h)) => (b, Some(h)),
            None => (hostpart, None),
        };
        if let Some(h) = headers
            && (h.is_empty() || !h.bytes().all(is_uri_header_byte) || !escapes_ok(h))
        {
            return Err(SipError::BadUri(format!("bad headers part in `{s}`")));
        }
        let (hostport, params) = match before_headers.split_once(';') {
            Some((hp, p)) => (hp, Params::parse_uri_params(p)?),
            None => (before_headers, Params::new()),
        };
        let (host, port) = split_hostport(hostport)?;
        Ok(SipUri {
            scheme,
            user: user.map(str::to_owned),
            password: password.map(str::to_owned),
            host: host.to_owned(),
            port,
            params,
            headers: headers.map(str::to_owned),
        })
    }

    /// The `transport` parameter, lower-cased (`udp`, `tcp`, `tls`, ...).
    pub fn transport(&self) -> Option<String> {
        self.params
            .value("transport")
            .map(|t| t.to_ascii_lowercase())
    }

    /// Whether the URI names a loose router (`;lr`, RFC 3261 §16.12).
    pub fn is_loose_router(&self) -> bool {
        self.params.contains("lr")
    }

    /// This URI with a parameter set (replacing one of the same name).
    pub fn with_param(mut self, name: &str, value: Option<&str>) -> SipUri {
        self.params.set(name, value);
        self
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme.as_str())?;
        f.write_str(":")?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(password) = &self.password {
                write!(f, ":{password}")?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(headers) = &self.headers {
            write!(f, "?{headers}")?;
        }
        Ok(())
    }
}

impl FromStr for SipUri {
    type Err = SipError;

    fn from_str(s: &str) -> Result<SipUri, SipError> {
        SipUri::parse(s)
    }
}

/// Splits `host[:port]` and checks both, for URIs and Via sent-by alike.
pub(crate) fn split_hostport(s: &str) -> Result<(&str, Option<u16>), SipError> {
    let (host, port) = if s.starts_with('[') {
        match s.find(']') {
            Some(end) => {
                let (host, after) = s.split_at(end + 1);
                match after {
                    "" => (host, None),
                    _ => match after.strip_prefix(':') {
                        Some(port) => (host, Some(port)),
                        None => return Err(SipError::BadUri(format!("bad host and port `{s}`"))),
                    },
                }
            }
            None => return Err(SipError::BadUri(format!("unclosed IPv6 reference `{s}`"))),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    check_host(host)?;
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p).ok_or_else(|| SipError::BadUri(format!("bad port `{p}`")))?),
    };
    Ok((host, port))
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

fn check_host(host: &str) -> Result<(), SipError> {
    let valid = if let Some(inner) = host.strip_prefix('[') {
        inner.strip_suffix(']').is_some_and(|v6| {
            v6.contains(':')
                && v6
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        })
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !host.starts_with(['-', '.'])
    };
    if valid {
        Ok(())
    } else {
        Err(SipError::BadUri(format!("bad host `{host}`")))
    }
}

/// RFC 3261 `unreserved`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

fn is_user_byte(b: u8) -> bool {
    is_unreserved(b) || b == b'%' || b"&=+$,;?/".contains(&b)
}

fn is_password_byte(b: u8) -> bool {
    is_unreserved(b) || b == b'%' || b"&=+$,".contains(&b)
}

fn is_param_byte(b: u8) -> bool {
    is_unreserved(b) || b == b'%' || b"[]/:&+$".contains(&b)
}

fn is_uri_header_byte(b: u8) -> bool {
    is_unreserved(b) || b == b'%' || b"[]/?:+$&=".contains(&b)
}

/// Every `%` is followed by two hexadecimal digits.
fn escapes_ok(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
            if !ok {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// Percent-escapes a plain user name for the user part of a SIP URI.
pub fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for &b in user.as_bytes() {
        if is_unreserved(b) || b"&=+$,;?/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> SipUri {
        SipUri::parse(s).expect(s)
    }

    #[test]
    fn parses_the_common_forms() {
        let u = uri("sip:mcu@127.0.0.1:5060;transport=tcp");
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user.as_deref(), Some("mcu"));
        assert_eq!(u.host, "127.0.0.1");
        assert_eq!(u.port, Some(5060));
        assert_eq!(u.transport().as_deref(), Some("tcp"));
        assert_eq!(u.to_string(), "sip:mcu@127.0.0.1:5060;transport=tcp");

        let u = uri("SIPS:conference.example.com");
        assert_eq!(u.scheme, Scheme::Sips);
        assert_eq!(u.user, None);
        assert_eq!(u.port, None);
        assert_eq!(u.to_string(), "sips:conference.example.com");

        let u = uri("sip:[2001:db8::1]:5070;lr");
        assert_eq!(u.host, "[2001:db8::1]");
        assert_eq!(u.port, Some(5070));
        assert!(u.is_loose_router());

        // RFC 4475 style: user-unreserved characters and escapes in the user.
        let u = uri("sip:alice;day=tuesday@atlanta.com");
        assert_eq!(u.user.as_deref(), Some("alice;day=tuesday"));
        assert!(u.params.is_empty());
        let u = uri("sip:%61lice:secret@atlanta.com?subject=project%20x&priority=urgent");
        assert_eq!(u.user.as_deref(), Some("%61lice"));
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert_eq!(
            u.headers.as_deref(),
            Some("subject=project%20x&priority=urgent")
        );
        assert_eq!(
            u.to_string(),
            "sip:%61lice:secret@atlanta.com?subject=project%20x&priority=urgent"
        );
        let u = uri("sip:+1-212-555-1212:1234@gateway.com;user=phone");
        assert_eq!(u.params.value("user"), Some("phone"));
    }

    #[test]
    fn refuses_malformed_uris() {
        for bad in [
            "",
            "sip:",
            "sip:@host",
            "sip:user@",
            "sip:host:",
            "sip:host:99999",
            "sip:host:12a",
            "sip:ho st",
            "sip:[::1",
            "sip:[::1]x",
            "sip:[zz]",
            "sip:user@host;",
            "sip:user@host;a=",
            "sip:user@host?",
            "sip:us%zzer@host",
            "sip:us<er@host",
            "sip:-host",
            "nocolon",
            "s i p:host",
        ] {
            assert!(SipUri::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(matches!(
            SipUri::parse("tel:+12125551212"),
            Err(SipError::Unsupported(_))
        ));
        assert!(matches!(
            SipUri::parse("mailto:a@b"),
            Err(SipError::Unsupported(_))
        ));
    }

    #[test]
    fn builds_and_escapes() {
        let u = SipUri::new(Scheme::Sip, Some("conf 42/é"), "mcu.example", Some(5060))
            .expect("valid")
            .with_param("transport", Some("tcp"));
        assert_eq!(
            u.to_string(),
            "sip:conf%2042/%C3%A9@mcu.example:5060;transport=tcp"
        );
        assert_eq!(SipUri::parse(&u.to_string()), Ok(u));
        assert!(SipUri::new(Scheme::Sip, None, "bad host", None).is_err());
        assert!(SipUri::new(Scheme::Sip, Some(""), "host", None).is_err());
    }

    #[test]
    fn params_replace_and_compare_without_case() {
        let mut p = Params::new();
        p.set("tag", Some("a"));
        p.set("lr", None);
        p.set("TAG", Some("b"));
        assert_eq!(p.value("tag"), Some("b"));
        assert!(p.contains("LR"));
        assert_eq!(p.value("lr"), None);
        assert_eq!(p.to_string(), ";TAG=b;lr");
        p.remove("tag");
        assert_eq!(p.to_string(), ";lr");
        let h = Params::parse_header_params(r#" ; tag = x ;q="a;b" ;received=[::1]"#, "To")
            .expect("valid");
        assert_eq!(h.value("tag"), Some("x"));
        assert_eq!(h.value("q"), Some(r#""a;b""#));
        assert_eq!(h.value("received"), Some("[::1]"));
        assert!(Params::parse_header_params("x", "To").is_err());
        assert!(Params::parse_header_params(";", "To").is_err());
        assert!(Params::parse_header_params(";a=\"open", "To").is_err());
        assert!(Params::parse_header_params(";a=b c", "To").is_err());
    }
}
