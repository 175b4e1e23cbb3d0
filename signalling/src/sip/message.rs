//! SIP messages (RFC 3261 §7): parsing from datagram or stream bytes,
//! building, and typed access to the header fields.
//!
//! [`Message::parse`] reads one message from a buffer with datagram
//! semantics (RFC 3261 §18.3): Content-Length, when present, says where the
//! body ends and bytes after it are ignored; without it the body is the rest of
//! the buffer. On a stream, [`frame`] first finds where a message ends
//! (Content-Length is then mandatory) and the shell hands exactly those bytes
//! to [`Message::parse`].
//!
//! Parsing is deliberately lenient where real peers differ and strict where a
//! mistake would let garbage through: bare LF line ends, folded lines,
//! compact header names and header names in any case are accepted; bytes that
//! are not UTF-8 in the start line or headers, control characters, a start
//! line that is neither a request nor a status line, and a missing or
//! malformed Via, From, To, Call-ID or CSeq are errors. Comma-separated
//! values of the list headers (Via, Route, Record-Route, Contact, Supported,
//! Require, Allow, ...) are split into one entry each, so the typed accessors
//! never see a comma list. Content-Length is framing, not content: it is not
//! kept among the headers, and [`Message::to_bytes`] always writes the right
//! one.

use std::borrow::Cow;
use std::fmt;

use super::SipError;
use super::digest::{Challenge, ChallengeKind, Credentials};
use super::header::{
    BRANCH_MAGIC_COOKIE, CSeq, MAX_CSEQ, Method, NameAddr, SessionExpires, Transport, Via,
    parse_delta,
};
use super::syntax::{
    hex, is_lws, is_token, sanitize_line, sanitize_value, split_outside, trim_lws,
};
use super::uri::{Params, SipUri};

/// 64 KiB: the largest message RFC 3261 §18.1.1 lets a UDP datagram carry
/// (65,535 bytes), which also bounds what one TCP message may make us buffer.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// 128 header fields, counting each value of a comma list: an MCU's INVITE
/// answers carry about 15; the limit bounds the work per message.
pub const MAX_HEADERS: usize = 128;
/// 8 KiB for one line (a folded header counts as one): long Record-Route or
/// digest lines are a few hundred bytes.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// The SIP version this code speaks.
const SIP_VERSION: &str = "SIP/2.0";

/// Compact forms (RFC 3261 §7.3.3, RFC 4028 and the event and REFER RFCs)
/// and the canonical spelling of the header names this code writes or reads.
/// Lookups are case-insensitive; unknown names are kept as received.
const HEADER_NAMES: &[(&str, &str)] = &[
    ("i", "Call-ID"),
    ("f", "From"),
    ("t", "To"),
    ("v", "Via"),
    ("m", "Contact"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("k", "Supported"),
    ("s", "Subject"),
    ("e", "Content-Encoding"),
    ("x", "Session-Expires"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("b", "Referred-By"),
    ("u", "Allow-Events"),
    ("call-id", "Call-ID"),
    ("from", "From"),
    ("to", "To"),
    ("via", "Via"),
    ("contact", "Contact"),
    ("content-length", "Content-Length"),
    ("content-type", "Content-Type"),
    ("supported", "Supported"),
    ("subject", "Subject"),
    ("content-encoding", "Content-Encoding"),
    ("session-expires", "Session-Expires"),
    ("event", "Event"),
    ("refer-to", "Refer-To"),
    ("referred-by", "Referred-By"),
    ("allow-events", "Allow-Events"),
    ("cseq", "CSeq"),
    ("max-forwards", "Max-Forwards"),
    ("expires", "Expires"),
    ("min-se", "Min-SE"),
    ("require", "Require"),
    ("proxy-require", "Proxy-Require"),
    ("unsupported", "Unsupported"),
    ("allow", "Allow"),
    ("accept", "Accept"),
    ("accept-encoding", "Accept-Encoding"),
    ("accept-language", "Accept-Language"),
    ("www-authenticate", "WWW-Authenticate"),
    ("proxy-authenticate", "Proxy-Authenticate"),
    ("authorization", "Authorization"),
    ("proxy-authorization", "Proxy-Authorization"),
    ("authentication-info", "Authentication-Info"),
    ("record-route", "Record-Route"),
    ("route", "Route"),
    ("user-agent", "User-Agent"),
    ("server", "Server"),
    ("retry-after", "Retry-After"),
    ("warning", "Warning"),
    ("reason", "Reason"),
    ("date", "Date"),
    ("timestamp", "Timestamp"),
    ("content-disposition", "Content-Disposition"),
    ("mime-version", "MIME-Version"),
];

/// Headers whose value is a comma-separated list (RFC 3261 §7.3.1), split
/// into one entry per element. Authentication headers are not among them:
/// their parameters are comma-separated inside one value.
const LIST_HEADERS: &[&str] = &[
    "Via",
    "Route",
    "Record-Route",
    "Contact",
    "Supported",
    "Require",
    "Proxy-Require",
    "Unsupported",
    "Allow",
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Content-Encoding",
    "Allow-Events",
];

fn canonical_name(name: &str) -> Cow<'_, str> {
    HEADER_NAMES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
        .map_or(Cow::Borrowed(name), |(_, canonical)| {
            Cow::Borrowed(*canonical)
        })
}

/// List headers written back on one line when their entries are adjacent
/// (`Allow: INVITE, ACK`); Via, Route, Record-Route and Contact keep one
/// line per entry, as peers conventionally write them.
fn is_joined_list(canonical: &str) -> bool {
    is_list_header(canonical)
        && !["Via", "Route", "Record-Route", "Contact"]
            .iter()
            .any(|h| h.eq_ignore_ascii_case(canonical))
}

/// A list entry that can share a line with its neighbours.
fn is_plain(value: &str) -> bool {
    !value.is_empty() && !value.contains(['"', '<', '>'])
}

fn is_list_header(canonical: &str) -> bool {
    LIST_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(canonical))
}

/// The header fields of a message, in order, one entry per value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    /// The first value of the field; `name` may be any case or a compact form.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).next()
    }

    /// Every value of the field, in order.
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let canonical = canonical_name(name).into_owned();
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&canonical))
            .map(|(_, v)| v.as_str())
    }

    /// Appends a field. The name must be a token (its compact form is
    /// expanded); a list header's comma-separated value becomes one entry
    /// per element, as when parsed; the value has line breaks and control
    /// characters replaced
    /// by spaces, so it cannot end the header early. Content-Length is
    /// refused: [`Message::to_bytes`] writes it from the body.
    pub fn push(&mut self, name: &str, value: &str) -> Result<(), SipError> {
        if !is_token(name) {
            return Err(SipError::Misuse(format!(
                "`{name}` is not a valid header name"
            )));
        }
        let canonical = canonical_name(name);
        if canonical == "Content-Length" {
            return Err(SipError::Misuse(
                "Content-Length is written from the body".into(),
            ));
        }
        self.push_entries(canonical.into_owned(), &sanitize_value(value));
        Ok(())
    }

    /// One entry per element of a list header's value, as the parser does.
    fn push_entries(&mut self, name: String, value: &str) {
        if is_list_header(&name) {
            let items: Vec<&str> = split_outside(value, b',')
                .into_iter()
                .map(trim_lws)
                .filter(|v| !v.is_empty())
                .collect();
            if !items.is_empty() {
                for item in items {
                    self.0.push((name.clone(), item.to_owned()));
                }
                return;
            }
        }
        self.0.push((name, value.to_owned()));
    }

    /// Replaces every field of this name by one.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), SipError> {
        self.remove(name);
        self.push(name, value)
    }

    pub fn remove(&mut self, name: &str) {
        let canonical = canonical_name(name).into_owned();
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(&canonical));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// For names this module spells itself and values it built.
    pub(crate) fn push_known(&mut self, name: &'static str, value: impl fmt::Display) {
        self.push_entries(name.to_owned(), &sanitize_value(&value.to_string()));
    }
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: Method, uri: SipUri },
    Response { status: u16, reason: String },
}

/// One SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start_line: StartLine,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// Where the headers of a buffered message end, and the raw lines before
/// that; shared by [`frame`] and [`Message::parse`] so they agree.
struct Head<'a> {
    start_line: &'a str,
    /// Logical lines (folding undone), not yet split into name and value.
    lines: Vec<String>,
    body_start: usize,
}

/// The number of CR and LF bytes at the start of `buf`.
///
/// On a stream, RFC 5626 §3.5.1 keep-alives are a double CRLF (answered with
/// one CRLF) and RFC 3261 §7.5 lets CRLFs precede a message; the shell drops
/// these bytes before calling [`frame`] (which would also skip them, but cannot
/// tell the shell that a keep-alive arrived).
pub fn keepalive_len(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// Finds the end of the first message in a stream buffer.
///
/// `Ok(None)` means the buffer holds only part of a message: read more and
/// call again. `Ok(Some(n))` means `buf[..n]` is one message (leading CRLFs
/// included) to give to [`Message::parse`]. A message that cannot be framed
/// (no Content-Length, an oversized message or line, a start line that is not
/// SIP) is an error; the shell should then close the connection, since the
/// stream can no longer be trusted to be in step.
///
/// Each call rescans the headers, which is bounded by [`MAX_MESSAGE_BYTES`].
pub fn frame(buf: &[u8]) -> Result<Option<usize>, SipError> {
    let Some(head) = read_head(buf)? else {
        return Ok(None);
    };
    parse_start_line(head.start_line)?;
    let content_length = content_length(&head.lines)?.ok_or(SipError::MissingContentLength)?;
    let total = head
        .body_start
        .checked_add(content_length)
        .ok_or(SipError::TooLarge {
            max: MAX_MESSAGE_BYTES,
        })?;
    if total - keepalive_len(buf) > MAX_MESSAGE_BYTES {
        return Err(SipError::TooLarge {
            max: MAX_MESSAGE_BYTES,
        });
    }
    Ok((buf.len() >= total).then_some(total))
}

/// Splits off the start line and header lines, or says more bytes are needed.
fn read_head(buf: &[u8]) -> Result<Option<Head<'_>>, SipError> {
    let skip = keepalive_len(buf);
    let too_large = SipError::TooLarge {
        max: MAX_MESSAGE_BYTES,
    };
    let line_too_long = SipError::LineTooLong {
        max: MAX_LINE_BYTES,
    };
    let mut pos = skip;
    let mut start_line: Option<&str> = None;
    let mut lines: Vec<String> = Vec::new();
    loop {
        let rest = buf.get(pos..).unwrap_or_default();
        let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() > MAX_LINE_BYTES {
                return Err(line_too_long);
            }
            if buf.len() - skip > MAX_MESSAGE_BYTES {
                return Err(too_large);
            }
            return Ok(None);
        };
        let raw = &rest[..lf];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > MAX_LINE_BYTES {
            return Err(line_too_long);
        }
        pos += lf + 1;
        if pos - skip > MAX_MESSAGE_BYTES {
            return Err(too_large);
        }
        let line = std::str::from_utf8(raw)
            .map_err(|_| SipError::BadHeader("the start line or headers are not UTF-8".into()))?;
        if start_line.is_none() {
            start_line = Some(line);
            continue;
        }
        if line.is_empty() {
            return Ok(Some(Head {
                start_line: start_line.unwrap_or_default(),
                lines,
                body_start: pos,
            }));
        }
        if line.starts_with(is_lws) {
            // RFC 3261 §7.3.1: a continuation line; the fold is one space.
            let Some(last) = lines.last_mut() else {
                return Err(SipError::BadHeader(
                    "a continuation line right after the start line".into(),
                ));
            };
            last.push(' ');
            last.push_str(trim_lws(line));
            if last.len() > MAX_LINE_BYTES {
                return Err(line_too_long);
            }
        } else {
            if lines.len() >= MAX_HEADERS {
                return Err(SipError::TooManyHeaders { max: MAX_HEADERS });
            }
            lines.push(line.to_owned());
        }
    }
}

/// Splits `name: value`, checking the name is a token and the line has no
/// control characters.
fn split_field(line: &str) -> Result<(&str, &str), SipError> {
    if line.chars().any(|c| c.is_ascii_control() && c != '\t') {
        return Err(SipError::BadHeader(format!(
            "control character in `{}`",
            line.escape_debug()
        )));
    }
    let Some((name, value)) = line.split_once(':') else {
        return Err(SipError::BadHeader(format!("no colon in `{line}`")));
    };
    let name = name.trim_end_matches(is_lws);
    if !is_token(name) {
        return Err(SipError::BadHeader(format!("bad header name `{name}`")));
    }
    Ok((name, trim_lws(value)))
}

/// The Content-Length the header lines declare; several that disagree are an
/// error (a classic request-smuggling vector).
fn content_length(lines: &[String]) -> Result<Option<usize>, SipError> {
    let mut found: Option<usize> = None;
    for line in lines {
        let (name, value) = split_field(line)?;
        if canonical_name(name) != "Content-Length" {
            continue;
        }
        if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SipError::BadContentLength);
        }
        let length: usize = value.parse().map_err(|_| SipError::BadContentLength)?;
        if found.is_some_and(|f| f != length) {
            return Err(SipError::BadContentLength);
        }
        found = Some(length);
    }
    Ok(found)
}

fn parse_start_line(line: &str) -> Result<StartLine, SipError> {
    let bad = |why: &str| SipError::BadStartLine(format!("{why}: `{}`", line.escape_debug()));
    if line.chars().any(|c| c.is_control()) {
        return Err(bad("control character"));
    }
    let is_response = line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"));
    if is_response {
        let (version, rest) = line.split_once(' ').ok_or_else(|| bad("no status code"))?;
        if !version.eq_ignore_ascii_case(SIP_VERSION) {
            return Err(SipError::Unsupported(format!(
                "the SIP version `{version}`"
            )));
        }
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the status code is not three digits"));
        }
        let status: u16 = code.parse().map_err(|_| bad("bad status code"))?;
        if !(100..=699).contains(&status) {
            return Err(bad("the status code is outside 100-699"));
        }
        return Ok(StartLine::Response {
            status,
            reason: reason.to_owned(),
        });
    }
    let mut parts = line.splitn(3, ' ');
    let (Some(method), Some(uri), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("neither a request line nor a status line"));
    };
    if !version.eq_ignore_ascii_case(SIP_VERSION) {
        if version.contains(' ') || !version.contains('/') {
            return Err(bad("neither a request line nor a status line"));
        }
        return Err(SipError::Unsupported(format!(
            "the SIP version `{version}`"
        )));
    }
    let method = Method::parse(method)?;
    let uri = SipUri::parse(uri)?;
    Ok(StartLine::Request { method, uri })
}

impl Message {
    /// Parses one message with datagram semantics; see the module doc.
    pub fn parse(bytes: &[u8]) -> Result<Message, SipError> {
        if bytes.len() - keepalive_len(bytes) > MAX_MESSAGE_BYTES {
            return Err(SipError::TooLarge {
                max: MAX_MESSAGE_BYTES,
            });
        }
        let head = read_head(bytes)?.ok_or(SipError::Incomplete)?;
        let start_line = parse_start_line(head.start_line)?;
        let declared = content_length(&head.lines)?;

        let mut headers = Headers::new();
        for line in &head.lines {
            let (name, value) = split_field(line)?;
            let name = canonical_name(name);
            if name == "Content-Length" {
                continue;
            }
            let values = if is_list_header(&name) {
                let items: Vec<&str> = split_outside(value, b',')
                    .into_iter()
                    .map(trim_lws)
                    .filter(|v| !v.is_empty())
                    .collect();
                if items.is_empty() { vec![""] } else { items }
            } else {
                vec![value]
            };
            for value in values {
                if headers.len() >= MAX_HEADERS {
                    return Err(SipError::TooManyHeaders { max: MAX_HEADERS });
                }
                headers
                    .0
                    .push((name.clone().into_owned(), value.to_owned()));
            }
        }

        let available = bytes.len() - head.body_start;
        let body = match declared {
            Some(declared) if declared > available => {
                return Err(SipError::Truncated {
                    declared,
                    available,
                });
            }
            // RFC 3261 §18.3: bytes past Content-Length in a datagram are ignored.
            Some(declared) => bytes[head.body_start..head.body_start + declared].to_vec(),
            None => bytes[head.body_start..].to_vec(),
        };

        let message = Message {
            start_line,
            headers,
            body,
        };
        message.check_mandatory()?;
        Ok(message)
    }

    /// RFC 3261 §8.1.1: every message carries these; a request's CSeq names
    /// its own method.
    fn check_mandatory(&self) -> Result<(), SipError> {
        if self.vias()?.is_empty() {
            return Err(SipError::MissingHeader("Via"));
        }
        self.from()?;
        self.to()?;
        self.call_id()?;
        let cseq = self.cseq()?;
        if let Some(method) = self.method()
            && *method != cseq.method
        {
            return Err(SipError::bad_value(
                "CSeq",
                format!("method {} in a {method} request", cseq.method),
            ));
        }
        Ok(())
    }

    /// The wire form; Content-Length is always written, from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(512);
        match &self.start_line {
            StartLine::Request { method, uri } => {
                out.push_str(&format!(
                    "{method} {} {SIP_VERSION}\r\n",
                    sanitize_line(&uri.to_string())
                ));
            }
            StartLine::Response { status, reason } => {
                out.push_str(&format!(
                    "{SIP_VERSION} {status} {}\r\n",
                    sanitize_line(reason)
                ));
            }
        }
        // The previous entry's name, if it may be continued: only plain
        // values (no quotes or brackets, which could hide the comma) are
        // joined, so the line splits back into the same entries.
        let mut previous: Option<&str> = None;
        for (name, value) in &self.headers.0 {
            let value = sanitize_value(value);
            if previous.is_some_and(|p| p == name) && is_joined_list(name) && is_plain(&value) {
                // Continue the line just written: remove its CRLF first.
                out.truncate(out.len() - 2);
                out.push_str(", ");
            } else {
                out.push_str(name);
                out.push_str(": ");
            }
            out.push_str(&value);
            out.push_str("\r\n");
            previous = is_plain(&value).then_some(name.as_str());
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start_line, StartLine::Request { .. })
    }

    pub fn is_response(&self) -> bool {
        !self.is_request()
    }

    /// The request method; `None` for a response.
    pub fn method(&self) -> Option<&Method> {
        match &self.start_line {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn request_uri(&self) -> Option<&SipUri> {
        match &self.start_line {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code; `None` for a request.
    pub fn status(&self) -> Option<u16> {
        match &self.start_line {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match &self.start_line {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }

    /// Every Via, top (most recent hop) first.
    pub fn vias(&self) -> Result<Vec<Via>, SipError> {
        self.headers.get_all("Via").map(Via::parse).collect()
    }

    pub fn top_via(&self) -> Result<Via, SipError> {
        Via::parse(
            self.headers
                .get("Via")
                .ok_or(SipError::MissingHeader("Via"))?,
        )
    }

    pub fn from(&self) -> Result<NameAddr, SipError> {
        NameAddr::parse(
            self.headers
                .get("From")
                .ok_or(SipError::MissingHeader("From"))?,
            "From",
        )
    }

    pub fn to(&self) -> Result<NameAddr, SipError> {
        NameAddr::parse(
            self.headers
                .get("To")
                .ok_or(SipError::MissingHeader("To"))?,
            "To",
        )
    }

    /// `word[@word]` with no white space (RFC 3261 §25.1).
    pub fn call_id(&self) -> Result<&str, SipError> {
        let id = self
            .headers
            .get("Call-ID")
            .ok_or(SipError::MissingHeader("Call-ID"))?;
        if id.is_empty() || id.contains(is_lws) {
            return Err(SipError::bad_value(
                "Call-ID",
                format!("`{id}` is not a Call-ID"),
            ));
        }
        Ok(id)
    }

    pub fn cseq(&self) -> Result<CSeq, SipError> {
        CSeq::parse(
            self.headers
                .get("CSeq")
                .ok_or(SipError::MissingHeader("CSeq"))?,
        )
    }

    /// The first Contact, if any.
    pub fn contact(&self) -> Result<Option<NameAddr>, SipError> {
        self.headers
            .get("Contact")
            .map(|c| NameAddr::parse(c, "Contact"))
            .transpose()
    }

    pub fn max_forwards(&self) -> Result<Option<u32>, SipError> {
        self.headers
            .get("Max-Forwards")
            .map(|v| parse_delta(v, "Max-Forwards"))
            .transpose()
    }

    /// The media type without parameters, lower-cased (`application/sdp`).
    pub fn content_type(&self) -> Option<String> {
        self.headers
            .get("Content-Type")
            .map(|v| trim_lws(v.split(';').next().unwrap_or_default()).to_ascii_lowercase())
    }

    pub fn expires(&self) -> Result<Option<u32>, SipError> {
        self.headers
            .get("Expires")
            .map(|v| parse_delta(v, "Expires"))
            .transpose()
    }

    pub fn session_expires(&self) -> Result<Option<SessionExpires>, SipError> {
        self.headers
            .get("Session-Expires")
            .map(SessionExpires::parse)
            .transpose()
    }

    /// RFC 4028's Min-SE in seconds (parameters ignored).
    pub fn min_se(&self) -> Result<Option<u32>, SipError> {
        self.headers
            .get("Min-SE")
            .map(|v| parse_delta(v.split(';').next().unwrap_or_default(), "Min-SE"))
            .transpose()
    }

    /// The option tags of a Supported, Require, Proxy-Require or Unsupported
    /// field (empty entries dropped).
    pub fn option_tags<'a>(&'a self, header: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .get_all(header)
            .map(trim_lws)
            .filter(|t| !t.is_empty())
    }

    /// Whether `Supported` lists the option tag (case-insensitive).
    pub fn supports(&self, option: &str) -> bool {
        self.option_tags("Supported")
            .any(|t| t.eq_ignore_ascii_case(option))
    }

    /// Whether `Require` lists the option tag (case-insensitive).
    pub fn requires(&self, option: &str) -> bool {
        self.option_tags("Require")
            .any(|t| t.eq_ignore_ascii_case(option))
    }

    /// The Record-Route entries, in the order of the message.
    pub fn record_route(&self) -> Result<Vec<NameAddr>, SipError> {
        self.headers
            .get_all("Record-Route")
            .map(|v| NameAddr::parse(v, "Record-Route"))
            .collect()
    }

    pub fn route(&self) -> Result<Vec<NameAddr>, SipError> {
        self.headers
            .get_all("Route")
            .map(|v| NameAddr::parse(v, "Route"))
            .collect()
    }

    /// The digest challenges of WWW-Authenticate and Proxy-Authenticate,
    /// in that order. Challenges in other schemes are skipped.
    pub fn challenges(&self) -> Result<Vec<Challenge>, SipError> {
        let mut out = Vec::new();
        for (header, kind) in [
            ("WWW-Authenticate", ChallengeKind::Www),
            ("Proxy-Authenticate", ChallengeKind::Proxy),
        ] {
            for value in self.headers.get_all(header) {
                match Challenge::parse(value, kind) {
                    Ok(challenge) => out.push(challenge),
                    Err(SipError::Unsupported(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    /// The digest credentials of Authorization and Proxy-Authorization.
    pub fn credentials(&self) -> Result<Vec<Credentials>, SipError> {
        let mut out = Vec::new();
        for (header, kind) in [
            ("Authorization", ChallengeKind::Www),
            ("Proxy-Authorization", ChallengeKind::Proxy),
        ] {
            for value in self.headers.get_all(header) {
                out.push(Credentials::parse(value, kind)?);
            }
        }
        Ok(out)
    }

    /// The body's length (Content-Length on the wire).
    pub fn content_length(&self) -> usize {
        self.body.len()
    }

    /// Sets the body and its Content-Type (`None` for an empty body).
    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        self.headers.remove("Content-Type");
        if !body.is_empty() {
            self.headers.push_known("Content-Type", content_type);
        }
        self.body = body;
    }

    /// A response to `request` (RFC 3261 §8.2.6): Via (all of them, in
    /// order), From, To, Call-ID and CSeq copied; `to_tag` is added to To
    /// when it has none (a UAS must tag every response but 100).
    pub fn response_to(
        request: &Message,
        status: u16,
        reason: &str,
        to_tag: Option<&Tag>,
    ) -> Result<Message, SipError> {
        if !request.is_request() {
            return Err(SipError::Misuse("a response answers a request".into()));
        }
        if !(100..=699).contains(&status) {
            return Err(SipError::Misuse(format!(
                "status {status} is outside 100-699"
            )));
        }
        let mut headers = Headers::new();
        for via in request.headers.get_all("Via") {
            headers.push_known("Via", via);
        }
        headers.push_known("From", request.from()?);
        let mut to = request.to()?;
        if let Some(tag) = to_tag
            && to.tag().is_none()
            && status > 100
        {
            to = to.with_tag(tag.as_str());
        }
        headers.push_known("To", to);
        headers.push_known("Call-ID", request.call_id()?);
        headers.push_known("CSeq", request.cseq()?);
        Ok(Message {
            start_line: StartLine::Response {
                status,
                reason: reason.to_owned(),
            },
            headers,
            body: Vec::new(),
        })
    }
}

impl fmt::Display for Message {
    /// The wire form, lossily decoded; for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// A Via branch: the magic cookie and 96 random bits (RFC 3261 §8.1.1.7 asks
/// for a branch unique across space and time).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Branch(String);

impl Branch {
    /// How many random bytes a branch takes.
    pub const RANDOM_BYTES: usize = 12;

    pub fn from_random(random: [u8; Branch::RANDOM_BYTES]) -> Branch {
        Branch(format!("{BRANCH_MAGIC_COOKIE}{}", hex(&random)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A From or To tag: 64 random bits (RFC 3261 §19.3 asks for at least 32).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(String);

impl Tag {
    pub const RANDOM_BYTES: usize = 8;

    pub fn from_random(random: [u8; Tag::RANDOM_BYTES]) -> Tag {
        Tag(hex(&random))
    }

    /// A tag received from the peer, kept as it is.
    pub fn from_peer(tag: &str) -> Tag {
        Tag(tag.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Call-ID: 128 random bits in hexadecimal, without a host part (which
/// would only leak an address).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallId(String);

impl CallId {
    pub const RANDOM_BYTES: usize = 16;

    pub fn from_random(random: [u8; CallId::RANDOM_BYTES]) -> CallId {
        CallId(hex(&random))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where this UA sends from, as its Via says it: transport, host, port, and
/// whether to ask for `rport` (RFC 3581, for NAT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentBy {
    pub transport: Transport,
    pub host: String,
    pub port: Option<u16>,
    pub rport: bool,
}

impl SentBy {
    /// The Via for a new request from here.
    pub fn via(&self, branch: &Branch) -> Via {
        let mut params = Params::new();
        params.set("branch", Some(branch.as_str()));
        if self.rport {
            params.set("rport", None);
        }
        Via {
            transport: self.transport.clone(),
            host: self.host.clone(),
            port: self.port,
            params,
        }
    }
}

/// Builds a request with the mandatory fields of RFC 3261 §8.1.1 in the
/// conventional order; [`RequestBuilder::build`] refuses one that lacks any.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    method: Method,
    uri: SipUri,
    via: Option<Via>,
    max_forwards: u32,
    routes: Vec<NameAddr>,
    from: Option<NameAddr>,
    to: Option<NameAddr>,
    call_id: Option<String>,
    cseq: Option<u32>,
    contact: Option<NameAddr>,
    headers: Headers,
    body: Option<(String, Vec<u8>)>,
    error: Option<SipError>,
}

/// RFC 3261 §8.1.1.6: a UAC sets Max-Forwards to 70.
pub const DEFAULT_MAX_FORWARDS: u32 = 70;

impl RequestBuilder {
    pub fn new(method: Method, uri: SipUri) -> RequestBuilder {
        RequestBuilder {
            method,
            uri,
            via: None,
            max_forwards: DEFAULT_MAX_FORWARDS,
            routes: Vec::new(),
            from: None,
            to: None,
            call_id: None,
            cseq: None,
            contact: None,
            headers: Headers::new(),
            body: None,
            error: None,
        }
    }

    /// The Via; its branch must start with `z9hG4bK` ([`SentBy::via`] makes one).
    pub fn via(mut self, via: Via) -> RequestBuilder {
        self.via = Some(via);
        self
    }

    pub fn max_forwards(mut self, hops: u32) -> RequestBuilder {
        self.max_forwards = hops;
        self
    }

    pub fn route(mut self, route: NameAddr) -> RequestBuilder {
        self.routes.push(route);
        self
    }

    /// From, which must carry a tag.
    pub fn from(mut self, from: NameAddr) -> RequestBuilder {
        self.from = Some(from);
        self
    }

    pub fn to(mut self, to: NameAddr) -> RequestBuilder {
        self.to = Some(to);
        self
    }

    pub fn call_id(mut self, call_id: &str) -> RequestBuilder {
        self.call_id = Some(call_id.to_owned());
        self
    }

    pub fn cseq(mut self, seq: u32) -> RequestBuilder {
        self.cseq = Some(seq);
        self
    }

    pub fn contact(mut self, contact: NameAddr) -> RequestBuilder {
        self.contact = Some(contact);
        self
    }

    /// Any other field; a bad name is reported by [`RequestBuilder::build`].
    pub fn header(mut self, name: &str, value: &str) -> RequestBuilder {
        if let Err(e) = self.headers.push(name, value)
            && self.error.is_none()
        {
            self.error = Some(e);
        }
        self
    }

    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> RequestBuilder {
        self.body = Some((content_type.to_owned(), body));
        self
    }

    pub fn build(self) -> Result<Message, SipError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let misuse = |what: &str| SipError::Misuse(format!("a request needs {what}"));
        let via = self.via.ok_or_else(|| misuse("a Via"))?;
        if !via
            .branch()
            .is_some_and(|b| b.starts_with(BRANCH_MAGIC_COOKIE))
        {
            return Err(misuse("a Via branch starting with z9hG4bK"));
        }
        let from = self.from.ok_or_else(|| misuse("a From"))?;
        if from.tag().is_none() {
            return Err(misuse("a From tag"));
        }
        let to = self.to.ok_or_else(|| misuse("a To"))?;
        let call_id = self.call_id.ok_or_else(|| misuse("a Call-ID"))?;
        if call_id.is_empty() || !call_id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(misuse("a Call-ID without white space"));
        }
        let seq = self.cseq.ok_or_else(|| misuse("a CSeq number"))?;
        if seq > MAX_CSEQ {
            return Err(misuse("a CSeq number below 2^31"));
        }
        let mut headers = Headers::new();
        headers.push_known("Via", via);
        headers.push_known("Max-Forwards", self.max_forwards);
        for route in self.routes {
            headers.push_known("Route", route);
        }
        headers.push_known("From", from);
        headers.push_known("To", to);
        headers.push_known("Call-ID", call_id);
        headers.push_known(
            "CSeq",
            CSeq {
                seq,
                method: self.method.clone(),
            },
        );
        if let Some(contact) = self.contact {
            headers.push_known("Contact", contact);
        }
        headers.0.extend(self.headers.0);
        let mut message = Message {
            start_line: StartLine::Request {
                method: self.method,
                uri: self.uri,
            },
            headers,
            body: Vec::new(),
        };
        if let Some((content_type, body)) = self.body {
            message.set_body(&content_type, body);
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests;
