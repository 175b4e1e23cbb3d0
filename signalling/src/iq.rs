//! XMPP `<iq/>` stanzas (RFC 6120 §8.2.3), parsed and built for the
//! `org.user.processIQ` method.
//!
//! The browser client sends one IQ stanza at a time as a string inside a
//! JSON-RPC call, and expects one back. Only the envelope matters to the
//! server (type, id, addresses and which payload element it carries), so
//! parsing stops there; replies are built as text with every value escaped.
//!
//! The parser is deliberately strict because the text comes straight from the
//! network: document type declarations are refused outright (no entity
//! expansion, so no "billion laughs"), only the five predefined entities and
//! character references are accepted, and the input must be one well-formed
//! element with nothing but whitespace, comments and processing instructions
//! around it.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// The largest stanza accepted. IQs the client sends are a few hundred bytes;
/// the limit bounds the work one call can cause.
pub const MAX_IQ_BYTES: usize = 16 * 1024;

/// XEP-0199: XMPP Ping.
pub const NS_PING: &str = "urn:xmpp:ping";
/// XEP-0030: Service Discovery, the info half.
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// RFC 6120 §8.3: the namespace of stanza error conditions.
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// The condition used when a caller asks for one that is not a plain
/// lower-case XML name (RFC 6120 §8.3.3.21).
const UNDEFINED_CONDITION: &str = "undefined-condition";

/// The four IQ types of RFC 6120 §8.2.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqType {
    Get,
    Set,
    Result,
    Error,
}

impl IqType {
    /// The attribute value, as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            IqType::Get => "get",
            IqType::Set => "set",
            IqType::Result => "result",
            IqType::Error => "error",
        }
    }

    /// Case-sensitive, like XML itself.
    fn from_attribute(value: &str) -> Option<IqType> {
        match value {
            "get" => Some(IqType::Get),
            "set" => Some(IqType::Set),
            "result" => Some(IqType::Result),
            "error" => Some(IqType::Error),
            _ => None,
        }
    }
}

/// A parsed `<iq/>` stanza. `payload` is the first child element (name
/// without prefix, namespace from its xmlns attribute or None), `id` may be
/// absent.
///
/// Attribute values are unescaped: `from="a&amp;b"` reads as `a&b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Iq {
    pub id: Option<String>,
    pub iq_type: IqType,
    pub from: Option<String>,
    pub to: Option<String>,
    pub payload: Option<Payload>,
}

/// The element an IQ carries, which says what the IQ is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// The local name, prefix removed.
    pub name: String,
    /// Declared on the payload itself (`xmlns`, or `xmlns:p` for a prefixed
    /// name, which may also be declared on the `<iq>`). The namespace the
    /// payload would inherit from the stream (`jabber:client`) is not
    /// reported: it says nothing about the payload.
    pub namespace: Option<String>,
}

/// Why a stanza was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IqError {
    #[error("the IQ stanza is larger than {max} bytes")]
    TooLarge { max: usize },
    /// Not well-formed XML; the message says where and why.
    #[error("malformed XML: {0}")]
    Syntax(String),
    #[error("document type declarations are refused (they enable entity expansion attacks)")]
    Doctype,
    /// Well-formed, but the root element is not `iq`; carries the root's name.
    #[error("the root element is <{0}>, not <iq>")]
    NotAnIq(String),
    #[error("the <iq> has no type attribute")]
    MissingType,
    #[error("the <iq> type is {0:?}, not get, set, result or error")]
    BadType(String),
    /// Well-formed tokens in a place a single stanza does not allow them,
    /// such as text or a second element after the root.
    #[error("unexpected content: {0}")]
    Unexpected(String),
    #[error("no root element")]
    Empty,
}

/// What the root start tag said, kept until the whole document is known to
/// be well-formed.
struct Root {
    name: String,
    attributes: Vec<(String, String)>,
}

impl Root {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Parses one `<iq/>` stanza.
///
/// Well-formedness is checked over the whole input before the IQ rules are
/// applied, so a truncated or broken document is always [`IqError::Syntax`]
/// (or [`IqError::Doctype`]) whatever its root.
pub fn parse_iq(xml: &str) -> Result<Iq, IqError> {
    if xml.len() > MAX_IQ_BYTES {
        return Err(IqError::TooLarge { max: MAX_IQ_BYTES });
    }
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    if let Some(c) = xml.chars().find(|&c| !is_xml_char(c)) {
        return Err(syntax(format!(
            "character U+{:04X} is not allowed in XML",
            u32::from(c)
        )));
    }

    let mut reader = Reader::from_str(xml);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.allow_unmatched_ends = false;
    config.allow_dangling_amp = false;
    config.expand_empty_elements = false;

    let mut root: Option<Root> = None;
    let mut payload: Option<(String, Vec<(String, String)>)> = None;
    let mut depth = 0usize;
    let mut root_closed = false;
    let mut seen_markup = false;

    loop {
        let event = reader.read_event().map_err(|e| syntax(e.to_string()))?;
        match event {
            Event::Eof => break,
            Event::Decl(decl) => {
                if seen_markup {
                    return Err(syntax("the XML declaration must come first"));
                }
                decl.version().map_err(|e| syntax(e.to_string()))?;
            }
            Event::DocType(_) => return Err(IqError::Doctype),
            Event::Start(start) | Event::Empty(start) if root_closed => {
                let name = element_name(&start)?;
                return Err(IqError::Unexpected(format!(
                    "element <{name}> after the root element"
                )));
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                let is_start = matches!(event, Event::Start(_));
                let name = element_name(start)?;
                let attributes = attributes(start)?;
                match depth {
                    0 => root = Some(Root { name, attributes }),
                    1 if payload.is_none() => payload = Some((name, attributes)),
                    _ => {}
                }
                if is_start {
                    depth += 1;
                } else if depth == 0 {
                    root_closed = true;
                }
            }
            Event::End(_) => {
                // quick-xml has already matched the name against the open tag.
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| syntax("end tag without a start tag"))?;
                if depth == 0 {
                    root_closed = true;
                }
            }
            Event::Text(text) => {
                let text = std::str::from_utf8(&text).map_err(|e| syntax(e.to_string()))?;
                if depth == 0 {
                    if !text.chars().all(is_xml_space) {
                        return Err(IqError::Unexpected("text outside the root element".into()));
                    }
                    continue;
                }
                if text.contains("]]>") {
                    return Err(syntax("`]]>` is not allowed in text"));
                }
            }
            Event::CData(_) if depth == 0 => {
                return Err(IqError::Unexpected("CDATA outside the root element".into()));
            }
            Event::GeneralRef(reference) => {
                if depth == 0 {
                    return Err(IqError::Unexpected(
                        "a reference outside the root element".into(),
                    ));
                }
                let name = std::str::from_utf8(&reference).map_err(|e| syntax(e.to_string()))?;
                resolve_reference(name)?;
            }
            Event::CData(_) | Event::Comment(_) | Event::PI(_) => {}
        }
        // Whitespace before the declaration is tolerated; anything else is not.
        seen_markup = true;
    }
    if depth > 0 {
        return Err(syntax(format!(
            "the input ends with {depth} element(s) still open"
        )));
    }
    let root = root.ok_or(IqError::Empty)?;

    if local_name(&root.name) != "iq" {
        return Err(IqError::NotAnIq(root.name));
    }
    let iq_type = match root.attribute("type") {
        None => return Err(IqError::MissingType),
        Some(value) => {
            IqType::from_attribute(value).ok_or_else(|| IqError::BadType(value.to_owned()))?
        }
    };
    let payload = match payload {
        None => None,
        Some((name, attributes)) => Some(payload_of(&name, &attributes, &root)?),
    };
    Ok(Iq {
        id: root.attribute("id").map(str::to_owned),
        iq_type,
        from: root.attribute("from").map(str::to_owned),
        to: root.attribute("to").map(str::to_owned),
        payload,
    })
}

fn syntax(message: impl Into<String>) -> IqError {
    IqError::Syntax(message.into())
}

/// The qualified name of an element, checked to be a valid XML name with at
/// most one colon (XML Namespaces §3).
fn element_name(start: &BytesStart<'_>) -> Result<String, IqError> {
    let name = std::str::from_utf8(start.name().into_inner()).map_err(|e| syntax(e.to_string()))?;
    check_qname(name)?;
    Ok(name.to_owned())
}

/// All attributes of a start tag, unescaped and normalised, in order.
/// Duplicates, unquoted values, missing separators and bad references are
/// errors.
fn attributes(start: &BytesStart<'_>) -> Result<Vec<(String, String)>, IqError> {
    check_attribute_separation(start.attributes_raw())?;
    let mut out = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| syntax(e.to_string()))?;
        let key =
            std::str::from_utf8(attribute.key.into_inner()).map_err(|e| syntax(e.to_string()))?;
        check_qname(key)?;
        let raw = std::str::from_utf8(&attribute.value).map_err(|e| syntax(e.to_string()))?;
        out.push((key.to_owned(), unescape_attribute(raw)?));
    }
    Ok(out)
}

/// quick-xml reads `a="1"b="2"` as two attributes; XML requires whitespace
/// between them.
fn check_attribute_separation(raw: &[u8]) -> Result<(), IqError> {
    let mut quote: Option<u8> = None;
    let mut just_closed = false;
    for &b in raw {
        if just_closed && !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            return Err(syntax("attributes must be separated by whitespace"));
        }
        just_closed = false;
        match quote {
            Some(q) if b == q => {
                quote = None;
                just_closed = true;
            }
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None => {}
        }
    }
    Ok(())
}

fn payload_of(
    name: &str,
    attributes: &[(String, String)],
    root: &Root,
) -> Result<Payload, IqError> {
    let lookup = |key: &str| {
        attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .or_else(|| root.attribute(key))
    };
    let namespace = match name.split_once(':') {
        Some((prefix, _)) => {
            let declaration = format!("xmlns:{prefix}");
            match lookup(&declaration) {
                Some(uri) if !uri.is_empty() => Some(uri.to_owned()),
                _ => {
                    return Err(IqError::Unexpected(format!(
                        "undeclared namespace prefix `{prefix}`"
                    )));
                }
            }
        }
        None => attributes
            .iter()
            .find(|(k, _)| k == "xmlns")
            .map(|(_, v)| v.clone())
            .filter(|uri| !uri.is_empty()),
    };
    Ok(Payload {
        name: local_name(name).to_owned(),
        namespace,
    })
}

/// The part of a qualified name after its prefix.
fn local_name(qname: &str) -> &str {
    qname.split_once(':').map_or(qname, |(_, local)| local)
}

fn check_qname(name: &str) -> Result<(), IqError> {
    let valid_ncname = |part: &str| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c != ':' && is_name_start_char(c))
            && chars.all(|c| c != ':' && is_name_char(c))
    };
    let valid = match name.split_once(':') {
        Some((prefix, local)) => valid_ncname(prefix) && valid_ncname(local),
        None => valid_ncname(name),
    };
    if valid {
        Ok(())
    } else {
        Err(syntax(format!("`{name}` is not a valid XML name")))
    }
}

/// XML 1.0 (fifth edition) §2.3 NameStartChar.
fn is_name_start_char(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0 (fifth edition) §2.3 NameChar.
fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// XML 1.0 §2.2 Char: what may appear in a document at all.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// XML 1.0 §2.3 S.
fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// The character a reference (the text between `&` and `;`) stands for.
/// Only the five predefined entities and character references of legal
/// characters exist here: with DTDs refused there is nothing else to refer to.
fn resolve_reference(name: &str) -> Result<char, IqError> {
    let c = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x") {
                hex_or_decimal(hex, 16)
            } else if let Some(decimal) = name.strip_prefix('#') {
                hex_or_decimal(decimal, 10)
            } else {
                return Err(syntax(format!("undefined entity `&{name};`")));
            };
            code.and_then(char::from_u32)
                .filter(|&c| is_xml_char(c))
                .ok_or_else(|| {
                    syntax(format!(
                        "`&{name};` is not a reference to a legal character"
                    ))
                })?
        }
    };
    Ok(c)
}

/// Digits only: `u32::from_str_radix` would also take a leading `+`.
fn hex_or_decimal(digits: &str, radix: u32) -> Option<u32> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

/// Unescapes an attribute value and applies XML 1.0 §3.3.3 normalisation:
/// literal line breaks and tabs become spaces, while the same characters
/// written as references are kept.
fn unescape_attribute(raw: &str) -> Result<String, IqError> {
    if raw.contains('<') {
        return Err(syntax("`<` is not allowed in an attribute value"));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        push_normalised(&mut out, &rest[..amp]);
        let after = &rest[amp + 1..];
        let semicolon = after
            .find(';')
            .ok_or_else(|| syntax("`&` without a closing `;` in an attribute value"))?;
        out.push(resolve_reference(&after[..semicolon])?);
        rest = &after[semicolon + 1..];
    }
    push_normalised(&mut out, rest);
    Ok(out)
}

fn push_normalised(out: &mut String, literal: &str) {
    let mut chars = literal.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                // `\r\n` is one line break.
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push(' ');
            }
            '\n' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
}

/// Escapes an attribute value so that it reads back unchanged: markup
/// characters and both quotes as entities, tab and line breaks as character
/// references (literal ones would be normalised to spaces). Characters XML
/// cannot carry at all become U+FFFD.
fn push_attribute_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// Escapes character data; `\r` as a reference because a literal one would be
/// turned into `\n` by the reader. Characters XML cannot carry become U+FFFD.
fn push_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

fn push_attribute(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    push_attribute_value(out, value);
    out.push('"');
}

/// `<iq type=".." id=".." from="{req.to}" to="{req.from}"`, unterminated.
fn open_reply(req: &Iq, iq_type: IqType) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("<iq");
    push_attribute(&mut out, "type", iq_type.as_str());
    if let Some(id) = &req.id {
        push_attribute(&mut out, "id", id);
    }
    if let Some(to) = &req.to {
        push_attribute(&mut out, "from", to);
    }
    if let Some(from) = &req.from {
        push_attribute(&mut out, "to", from);
    }
    out
}

/// Reply builders: the reply goes from the request's `to` to its `from`
/// (swap), keeps the id. All attribute values and text are XML-escaped.
///
/// An empty result: `<iq type="result" id=".." from=".." to=".."/>`, absent
/// attributes omitted. This is the whole answer to a ping (XEP-0199 §4.2)
/// and to any `set` that needs no data back.
pub fn result(req: &Iq) -> String {
    let mut out = open_reply(req, IqType::Result);
    out.push_str("/>");
    out
}

/// One `<identity/>` of a disco#info answer (XEP-0030 §3.1).
pub struct DiscoIdentity<'a> {
    pub category: &'a str,
    /// The `type` attribute (`type` is a Rust keyword).
    pub kind: &'a str,
    /// Human-readable; left out of the reply when empty, as XEP-0030 allows.
    pub name: &'a str,
}

/// Answers a disco#info query:
/// `<iq type="result" ...><query xmlns="http://jabber.org/protocol/disco#info"><identity category=".." type=".." name=".."/><feature var=".."/>...</query></iq>`.
///
/// The `node` of the query, if any, is not echoed: this server has no nodes.
pub fn disco_info_result(req: &Iq, identity: &DiscoIdentity, features: &[&str]) -> String {
    let mut out = open_reply(req, IqType::Result);
    out.push('>');
    out.push_str("<query");
    push_attribute(&mut out, "xmlns", NS_DISCO_INFO);
    out.push_str("><identity");
    push_attribute(&mut out, "category", identity.category);
    push_attribute(&mut out, "type", identity.kind);
    if !identity.name.is_empty() {
        push_attribute(&mut out, "name", identity.name);
    }
    out.push_str("/>");
    for feature in features {
        out.push_str("<feature");
        push_attribute(&mut out, "var", feature);
        out.push_str("/>");
    }
    out.push_str("</query></iq>");
    out
}

/// An error reply (RFC 6120 §8.3):
/// `<iq type="error" ...><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">..</text></error></iq>`.
///
/// `condition` becomes an element name, so it must look like one of RFC 6120's
/// defined conditions (lower-case ASCII letters and hyphens); anything else
/// is replaced by `undefined-condition` rather than producing broken XML.
pub fn error(req: &Iq, error_type: &str, condition: &str, text: Option<&str>) -> String {
    let condition = if !condition.is_empty()
        && condition
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-')
        && !condition.starts_with('-')
    {
        condition
    } else {
        UNDEFINED_CONDITION
    };
    let mut out = open_reply(req, IqType::Error);
    out.push_str("><error");
    push_attribute(&mut out, "type", error_type);
    out.push_str("><");
    out.push_str(condition);
    push_attribute(&mut out, "xmlns", NS_STANZAS);
    out.push_str("/>");
    if let Some(text) = text {
        out.push_str("<text");
        push_attribute(&mut out, "xmlns", NS_STANZAS);
        out.push('>');
        push_text(&mut out, text);
        out.push_str("</text>");
    }
    out.push_str("</error></iq>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(xml: &str) -> Iq {
        parse_iq(xml).unwrap_or_else(|e| panic!("{xml}: {e}"))
    }

    fn is_syntax(result: Result<Iq, IqError>) -> bool {
        matches!(result, Err(IqError::Syntax(_)))
    }

    const SEED_EXAMPLE: &str = r#"<iq from="u1074808@ips3000/uc" to="jeprivacy.ips3000" type="get" id="01"><jeExtension xmlns="je:x:client:config"> <getMainTabs/></jeExtension></iq>"#;

    #[test]
    fn seed_example() {
        let iq = parse(SEED_EXAMPLE);
        assert_eq!(
            iq,
            Iq {
                id: Some("01".into()),
                iq_type: IqType::Get,
                from: Some("u1074808@ips3000/uc".into()),
                to: Some("jeprivacy.ips3000".into()),
                payload: Some(Payload {
                    name: "jeExtension".into(),
                    namespace: Some("je:x:client:config".into())
                }),
            }
        );
        let reply = result(&iq);
        assert_eq!(
            reply,
            r#"<iq type="result" id="01" from="jeprivacy.ips3000" to="u1074808@ips3000/uc"/>"#
        );
        let back = parse(&reply);
        assert_eq!(
            (back.iq_type, back.id, back.from, back.to),
            (IqType::Result, iq.id, iq.to, iq.from)
        );
    }

    #[test]
    fn xep_0199_ping() {
        let iq = parse(
            "<iq from='juliet@capulet.lit/balcony' to='capulet.lit' id='c2s1' type='get'>\n  <ping xmlns='urn:xmpp:ping'/>\n</iq>",
        );
        assert_eq!(iq.iq_type, IqType::Get);
        assert_eq!(
            iq.payload,
            Some(Payload {
                name: "ping".into(),
                namespace: Some(NS_PING.into())
            })
        );
        assert_eq!(
            result(&iq),
            r#"<iq type="result" id="c2s1" from="capulet.lit" to="juliet@capulet.lit/balcony"/>"#
        );
    }

    #[test]
    fn disco_info_query_and_answer() {
        let iq = parse(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<iq type="get" from="romeo@montague.net/orchard" to="plays.shakespeare.lit" id="info1" xmlns="jabber:client">
  <query xmlns="http://jabber.org/protocol/disco#info"/>
</iq>
"#,
        );
        assert_eq!(
            iq.payload,
            Some(Payload {
                name: "query".into(),
                namespace: Some(NS_DISCO_INFO.into())
            })
        );
        let identity = DiscoIdentity {
            category: "conference",
            kind: "text",
            name: "Play-Specific Chatrooms",
        };
        let reply = disco_info_result(&iq, &identity, &[NS_DISCO_INFO, NS_PING]);
        assert_eq!(
            reply,
            concat!(
                r#"<iq type="result" id="info1" from="plays.shakespeare.lit" to="romeo@montague.net/orchard">"#,
                r#"<query xmlns="http://jabber.org/protocol/disco#info">"#,
                r#"<identity category="conference" type="text" name="Play-Specific Chatrooms"/>"#,
                r#"<feature var="http://jabber.org/protocol/disco#info"/><feature var="urn:xmpp:ping"/>"#,
                r#"</query></iq>"#
            )
        );
        let back = parse(&reply);
        assert_eq!(back.iq_type, IqType::Result);
        assert_eq!(back.payload, iq.payload);
        let unnamed = disco_info_result(
            &iq,
            &DiscoIdentity {
                category: "server",
                kind: "im",
                name: "",
            },
            &[],
        );
        assert!(
            unnamed.contains(r#"<identity category="server" type="im"/>"#),
            "{unnamed}"
        );
        parse(&unnamed);
    }

    #[test]
    fn error_replies() {
        let iq = parse(SEED_EXAMPLE);
        let reply = error(
            &iq,
            "cancel",
            "service-unavailable",
            Some("no <such> thing & more"),
        );
        assert_eq!(
            reply,
            concat!(
                r#"<iq type="error" id="01" from="jeprivacy.ips3000" to="u1074808@ips3000/uc">"#,
                r#"<error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>"#,
                r#"<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">no &lt;such&gt; thing &amp; more</text>"#,
                r#"</error></iq>"#
            )
        );
        let back = parse(&reply);
        assert_eq!(back.iq_type, IqType::Error);
        assert_eq!(
            back.payload,
            Some(Payload {
                name: "error".into(),
                namespace: None
            })
        );

        let bare = error(&iq, "modify", "bad-request", None);
        assert!(bare.ends_with(r#"<error type="modify"><bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>"#));
        parse(&bare);

        let hostile = error(&iq, "cancel\"", "x/><evil", Some("\u{0}\r"));
        assert!(hostile.contains("<undefined-condition "), "{hostile}");
        assert!(
            hostile.contains(r#"<error type="cancel&quot;">"#),
            "{hostile}"
        );
        assert!(hostile.contains(">\u{FFFD}&#xD;</text>"), "{hostile}");
        parse(&hostile);
    }

    #[test]
    fn replies_escape_attributes() {
        let iq = Iq {
            id: Some(r#"a"b<c&d>e'f"#.into()),
            iq_type: IqType::Set,
            from: Some("x\ty\nz\r".into()),
            to: None,
            payload: None,
        };
        let reply = result(&iq);
        assert_eq!(
            reply,
            r#"<iq type="result" id="a&quot;b&lt;c&amp;d&gt;e&apos;f" to="x&#x9;y&#xA;z&#xD;"/>"#
        );
        let back = parse(&reply);
        assert_eq!(back.id, iq.id);
        assert_eq!(back.to, iq.from);
        assert_eq!(back.from, None);

        let identity = DiscoIdentity {
            category: "<&>",
            kind: "\"",
            name: "'",
        };
        let reply = disco_info_result(&iq, &identity, &["a\"><evil/>"]);
        assert!(!reply.contains("<evil"), "{reply}");
        assert_eq!(parse(&reply).payload.map(|p| p.name), Some("query".into()));
    }

    #[test]
    fn attribute_values_are_unescaped_and_normalised() {
        let iq = parse(
            "<iq type='set' id='&lt;&#65;&#x42;&quot;&apos;&gt;&amp;' from='a\nb\r\nc\td&#xA;'/>",
        );
        assert_eq!(iq.id.as_deref(), Some("<AB\"'>&"));
        assert_eq!(iq.from.as_deref(), Some("a b c d\n"));
        assert_eq!(iq.payload, None);
    }

    #[test]
    fn billion_laughs_is_refused() {
        let xml = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<iq type="get" id="&lol9;"><lolz>&lol9;</lolz></iq>"#;
        assert_eq!(parse_iq(xml), Err(IqError::Doctype));
        assert_eq!(
            parse_iq("<!DOCTYPE iq><iq type='get'/>"),
            Err(IqError::Doctype)
        );
        assert_eq!(
            parse_iq("<iq type='get'/><!DOCTYPE iq>"),
            Err(IqError::Doctype)
        );
    }

    #[test]
    fn undefined_entities_are_errors() {
        assert!(is_syntax(parse_iq("<iq type='get'><q>&lol9;</q></iq>")));
        assert!(is_syntax(parse_iq("<iq type='get' id='&lol9;'/>")));
        assert!(
            is_syntax(parse_iq("<iq type='get' id='&nbsp;'/>")),
            "no HTML entities"
        );
        assert!(is_syntax(parse_iq("<iq type='get'><q>&#0;</q></iq>")));
        assert!(is_syntax(parse_iq("<iq type='get'><q>&#1;</q></iq>")));
        assert!(is_syntax(parse_iq("<iq type='get' id='&#xD800;'/>")));
        assert!(is_syntax(parse_iq("<iq type='get' id='&#x110000;'/>")));
        assert!(is_syntax(parse_iq("<iq type='get' id='&#x+41;'/>")));
        assert!(is_syntax(parse_iq("<iq type='get' id='&#;'/>")));
        assert!(is_syntax(parse_iq("<iq type='get' id='&amp'/>")));
        assert!(is_syntax(parse_iq("<iq type='get'><q>a & b</q></iq>")));
        assert!(is_syntax(parse_iq("<iq type='get'><q>&;</q></iq>")));
        let iq = parse("<iq type='get'><q>&lt;&#x1F600;&#128512;</q></iq>");
        assert_eq!(iq.payload.map(|p| p.name), Some("q".into()));
    }

    #[test]
    fn truncated_and_mismatched_xml() {
        let full = SEED_EXAMPLE;
        for end in 1..full.len() {
            if !full.is_char_boundary(end) {
                continue;
            }
            let result = parse_iq(&full[..end]);
            assert!(result.is_err(), "{:?} parsed", &full[..end]);
            assert!(is_syntax(result.clone()), "{:?}: {result:?}", &full[..end]);
        }
        assert!(is_syntax(parse_iq("<iq type='get'><a></b></iq>")));
        assert!(is_syntax(parse_iq("<iq type='get'></iq></iq>")));
        assert!(is_syntax(parse_iq("</iq>")));
        assert!(is_syntax(parse_iq("<iq type='get'>")));
        assert!(is_syntax(parse_iq("<iq type='get' id=01/>")));
        assert!(is_syntax(parse_iq("<iq type='get' type='set'/>")));
        assert!(is_syntax(parse_iq("<iq type='get'id='1'/>")));
        assert!(is_syntax(parse_iq("<iq type='get' id='<'/>")));
        assert!(is_syntax(parse_iq("<iq type='get'><!-- a -- b --></iq>")));
        assert!(is_syntax(parse_iq("<1iq type='get'/>")));
        assert!(is_syntax(parse_iq("<iq type='get'><a:b:c/></iq>")));
        assert!(is_syntax(parse_iq("<iq type='get'>\u{1}</iq>")));
        assert!(is_syntax(parse_iq("<iq type='get'>]]></iq>")));
        assert!(is_syntax(parse_iq("<iq type='get'/><?xml version='1.0'?>")));
        assert!(is_syntax(parse_iq(
            "<?xml encoding='UTF-8'?><iq type='get'/>"
        )));
    }

    #[test]
    fn one_root_and_nothing_else() {
        assert!(matches!(
            parse_iq("<iq type='get'/><iq type='get'/>"),
            Err(IqError::Unexpected(_))
        ));
        assert!(matches!(
            parse_iq("<iq type='get'/>trailing"),
            Err(IqError::Unexpected(_))
        ));
        assert!(matches!(
            parse_iq("junk<iq type='get'/>"),
            Err(IqError::Unexpected(_))
        ));
        assert!(matches!(
            parse_iq("<iq type='get'/>&amp;"),
            Err(IqError::Unexpected(_))
        ));
        assert!(matches!(
            parse_iq("<iq type='get'/><![CDATA[x]]>"),
            Err(IqError::Unexpected(_))
        ));
        // Whitespace, comments and processing instructions around the root are fine.
        let iq =
            parse("\u{feff}<?xml version='1.0'?>\n<!-- hi --><iq type='result'/>\n<?pi data?>\n");
        assert_eq!(iq.iq_type, IqType::Result);
        assert_eq!(parse("  \n<iq type='set'/>  ").iq_type, IqType::Set);
    }

    #[test]
    fn envelope_rules() {
        assert_eq!(parse_iq(""), Err(IqError::Empty));
        assert_eq!(parse_iq("  \n "), Err(IqError::Empty));
        assert_eq!(parse_iq("<!-- only a comment -->"), Err(IqError::Empty));
        assert_eq!(
            parse_iq("<message type='chat'/>"),
            Err(IqError::NotAnIq("message".into()))
        );
        assert_eq!(
            parse_iq("<presence/>"),
            Err(IqError::NotAnIq("presence".into()))
        );
        assert_eq!(parse_iq("<iq id='1'/>"), Err(IqError::MissingType));
        assert_eq!(
            parse_iq("<iq type='GET'/>"),
            Err(IqError::BadType("GET".into()))
        );
        assert_eq!(
            parse_iq("<iq type=''/>"),
            Err(IqError::BadType(String::new()))
        );
        assert_eq!(parse("<iq type='error'/>").iq_type, IqType::Error);
        let iq = parse(
            "<client:iq xmlns:client='jabber:client' type='set'><p:query xmlns:p='urn:x'/><second/></client:iq>",
        );
        assert_eq!(iq.iq_type, IqType::Set);
        assert_eq!(
            iq.payload,
            Some(Payload {
                name: "query".into(),
                namespace: Some("urn:x".into())
            })
        );
        let iq = parse("<iq xmlns:p='urn:y' type='set'><p:query/></iq>");
        assert_eq!(
            iq.payload,
            Some(Payload {
                name: "query".into(),
                namespace: Some("urn:y".into())
            })
        );
        assert!(matches!(
            parse_iq("<iq type='set'><p:query/></iq>"),
            Err(IqError::Unexpected(_))
        ));
        let iq = parse("<iq type='get'>text<![CDATA[<x>]]><nons/><other xmlns='urn:z'/></iq>");
        assert_eq!(
            iq.payload,
            Some(Payload {
                name: "nons".into(),
                namespace: None
            })
        );
        assert_eq!(iq.id, None);
        assert_eq!(
            parse_iq(&format!(
                "<iq type='get' id='{}'/>",
                "x".repeat(MAX_IQ_BYTES)
            )),
            Err(IqError::TooLarge { max: MAX_IQ_BYTES })
        );
        let exactly = format!("<iq type='get' id='{}'/>", "x".repeat(MAX_IQ_BYTES - 22));
        assert_eq!(exactly.len(), MAX_IQ_BYTES);
        assert!(parse_iq(&exactly).is_ok());
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in any::<String>()) {
            let _ = parse_iq(&s);
        }

        #[test]
        fn xml_shaped_strings_never_panic(s in r#"[<>/?!\[\]&;#='" a-z:x0-9\-]{0,80}"#) {
            let _ = parse_iq(&s);
        }

        #[test]
        fn mutated_seed_example_never_panics(at in 0usize..300, insert in r#"[<>/&;'" a-z]{0,4}"#) {
            let mut xml = SEED_EXAMPLE.to_owned();
            let at = at.min(xml.len());
            xml.insert_str(at, &insert);
            let _ = parse_iq(&xml);
        }

        #[test]
        fn replies_round_trip(id in any::<Option<String>>(), from in any::<Option<String>>(), to in any::<Option<String>>(), text in any::<String>()) {
            let clean = |s: Option<String>| s.map(|s| s.chars().map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' }).collect::<String>());
            let req = Iq { id: clean(id), iq_type: IqType::Get, from: clean(from), to: clean(to), payload: None };
            let reply = parse_iq(&result(&req)).expect("result re-parses");
            prop_assert_eq!(&reply.id, &req.id);
            prop_assert_eq!(&reply.from, &req.to);
            prop_assert_eq!(&reply.to, &req.from);
            let reply = parse_iq(&error(&req, "cancel", "item-not-found", Some(&text))).expect("error re-parses");
            prop_assert_eq!(reply.iq_type, IqType::Error);
            prop_assert_eq!(reply.id, req.id);
        }
    }
}
