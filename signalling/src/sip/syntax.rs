//! The lexical pieces of RFC 3261 §25.1 shared by the header, URI and digest
//! parsers: tokens, quoted strings, linear white space, and splitting a value
//! on a separator that is not inside quotes or angle brackets.

/// RFC 3261 `token`: alphanumerics and `-.!%*_+`'~`.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Linear white space within a line (folding has already been undone).
pub(crate) fn is_lws(c: char) -> bool {
    c == ' ' || c == '\t'
}

pub(crate) fn trim_lws(s: &str) -> &str {
    s.trim_matches(is_lws)
}

/// Splits `s` on the ASCII byte `sep` wherever it is outside a quoted string
/// and outside `<...>`. Unterminated quotes or brackets are left for the
/// caller's grammar to reject; this never fails.
pub(crate) fn split_outside(s: &str, sep: u8) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    let mut in_angle = false;
    for (i, b) in s.bytes().enumerate() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quotes = false;
            }
            continue;
        }
        match b {
            b'"' => in_quotes = true,
            b'<' => in_angle = true,
            b'>' => in_angle = false,
            _ if b == sep && !in_angle => {
                // `sep` is ASCII, so `i` and `i + 1` are character boundaries.
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Reads a quoted string at the start of `s` (which must begin with `"`),
/// undoing backslash escapes. Returns the content and what follows the
/// closing quote.
pub(crate) fn read_quoted(s: &str) -> Result<(String, &str), &'static str> {
    let Some(body) = s.strip_prefix('"') else {
        return Err("a quoted string must start with a double quote");
    };
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, escaped)) if escaped != '\r' && escaped != '\n' => out.push(escaped),
                _ => return Err("a backslash at the end of a quoted string"),
            },
            '\r' | '\n' => return Err("a line break inside a quoted string"),
            c => out.push(c),
        }
    }
    Err("an unterminated quoted string")
}

/// Writes `s` as a quoted string: `"` and `\` are escaped, and control
/// characters (which no quoted string may carry, and which could otherwise end
/// the header line) become spaces.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Replaces ASCII control characters (CR and LF among them) with spaces,
/// keeping everything else, white space at the ends included: for the start
/// line, whose reason phrase is kept as received.
pub(crate) fn sanitize_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_control() { ' ' } else { c })
        .collect()
}

/// Replaces the characters that would break a header line (CR, LF and the
/// other ASCII controls except tab) with spaces, and trims the ends.
pub(crate) fn sanitize_value(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_control() && c != '\t' {
                ' '
            } else {
                c
            }
        })
        .collect();
    trim_lws(&cleaned).to_owned()
}

/// Lower-case hexadecimal, for branches, tags, Call-IDs and digests.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes_and_brackets() {
        assert_eq!(split_outside("a, b ,c", b','), vec!["a", " b ", "c"]);
        assert_eq!(
            split_outside(r#""Doe, John" <sip:a@b>, <sip:c,d@e>"#, b','),
            vec![r#""Doe, John" <sip:a@b>"#, " <sip:c,d@e>"]
        );
        assert_eq!(
            split_outside(r#""a\", b", c"#, b','),
            vec![r#""a\", b""#, " c"]
        );
        assert_eq!(split_outside("", b','), vec![""]);
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(
            read_quoted(r#""a\"b\\c" rest"#),
            Ok(("a\"b\\c".into(), " rest"))
        );
        assert_eq!(read_quoted(r#""Zoë""#), Ok(("Zoë".into(), "")));
        assert!(read_quoted(r#""open"#).is_err());
        assert!(read_quoted(r#""ends\"#).is_err());
        assert!(read_quoted("none").is_err());
        assert_eq!(quote("a\"b\\c\r\nd"), r#""a\"b\\c  d""#);
        let quoted = quote("x\"y\\z");
        let (back, rest) = read_quoted(&quoted).expect("round trip");
        assert_eq!((back.as_str(), rest), ("x\"y\\z", ""));
    }

    #[test]
    fn sanitizing_and_hex() {
        assert_eq!(sanitize_value(" a\r\nb\0c\t"), "a  b c");
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert!(is_token("z9hG4bK-1.2"));
        assert!(!is_token("a b"));
        assert!(!is_token(""));
    }
}
