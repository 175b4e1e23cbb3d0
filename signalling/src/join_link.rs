//! The join-link codec: the `{code}` at the end of
//! `https://HOST/gzbwclient/conference/{code}`.
//!
//! A code comes in one of three forms, told apart by their shape alone:
//!
//! - **Password**: the conference password itself, 4 to 16 ASCII digits. This
//!   is the "real join address" of the original design.
//! - **Seed**: 4 random ASCII alphanumeric characters followed by the base64
//!   of the password. This only *looks* random: anyone holding the link can
//!   strip the 4 characters and decode the password, so it hides nothing from
//!   a determined reader and is kept for compatibility with links already
//!   handed out.
//! - **Opaque**: 27 base64url characters carrying 160 random bits. It says
//!   nothing about the conference; the server maps it to one.
//!
//! The forms cannot be confused: a password is all digits and a seed code
//! never is (the base64 of a digit always starts with `M`, `N` or `O`), and an
//! opaque code is exactly 27 base64url characters, which no seed code is:
//! unpadded seed codes are at most 26 characters long, and padded ones
//! contain `=`, which base64url lacks.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD,
};

/// The fewest digits a conference password has.
pub const PASSWORD_MIN_DIGITS: usize = 4;
/// The most digits a conference password has.
pub const PASSWORD_MAX_DIGITS: usize = 16;
/// How many random bytes an opaque code carries (160 bits, beyond guessing).
pub const OPAQUE_RANDOM_BYTES: usize = 20;

/// The length of an opaque code: 20 bytes in unpadded base64.
const OPAQUE_CODE_CHARS: usize = 27;
/// The length of a seed code's random prefix.
const SEED_PREFIX_CHARS: usize = 4;
/// The longest path segment worth looking at. Every valid code is shorter
/// (the longest, a padded seed code, is 28 characters); the limit keeps a
/// hostile segment from costing more than a glance.
const MAX_CODE_BYTES: usize = 64;

/// The characters a seed prefix is drawn from.
const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Seed decoding is lenient about padding (links get their `=` trimmed by
/// mail clients and chat apps) but still strict about trailing bits, so that
/// a password has exactly one unpadded spelling per alphabet.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const SEED_STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const SEED_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Why a join code, password or seed prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Nothing to decode.
    #[error("the join code is empty")]
    Empty,
    /// Longer than any code this server issues.
    #[error("the join code is longer than {MAX_CODE_BYTES} bytes")]
    TooLong,
    /// The first 4 characters of a seed code must be ASCII letters or digits.
    #[error("the seed prefix must be 4 ASCII letters or digits")]
    BadPrefix,
    /// A character outside the alphabet of the form being decoded.
    #[error("the join code contains a character that no code form allows")]
    BadCharacter,
    /// The base64 part of a seed code, or an opaque code, does not decode.
    #[error("the join code's base64 part is not valid base64")]
    BadBase64,
    /// A seed code decoded to something other than 4 to 16 ASCII digits.
    #[error(
        "the seed code does not decode to a password of {PASSWORD_MIN_DIGITS} to {PASSWORD_MAX_DIGITS} digits"
    )]
    NotAPassword,
    /// A password with too few or too many digits, or an opaque code that is
    /// not 27 characters long.
    #[error(
        "wrong length: a password has {PASSWORD_MIN_DIGITS} to {PASSWORD_MAX_DIGITS} digits and an opaque code {OPAQUE_CODE_CHARS} characters"
    )]
    WrongLength,
}

/// A validated conference password (4..=16 ASCII digits).
///
/// Holding one proves the digits were checked, so code that builds links or
/// looks conferences up never re-validates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Password(String);

impl Password {
    /// Accepts exactly 4 to 16 ASCII digits; nothing is trimmed or normalised,
    /// so a password has one spelling.
    pub fn parse(s: &str) -> Result<Password, LinkError> {
        if s.is_empty() {
            return Err(LinkError::Empty);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(LinkError::BadCharacter);
        }
        if !(PASSWORD_MIN_DIGITS..=PASSWORD_MAX_DIGITS).contains(&s.len()) {
            return Err(LinkError::WrongLength);
        }
        Ok(Password(s.to_owned()))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An opaque join token: 27 base64url chars.
///
/// It encodes 160 random bits and nothing else, so a link that uses one
/// reveals neither the conference nor its password.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OpaqueCode(String);

impl OpaqueCode {
    /// Encodes caller-supplied randomness; the caller owns the random number
    /// generator so this stays pure and testable.
    pub fn from_random(bytes: [u8; OPAQUE_RANDOM_BYTES]) -> OpaqueCode {
        OpaqueCode(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts exactly the strings [`OpaqueCode::from_random`] produces: 27
    /// base64url characters, unpadded, whose last character carries no stray
    /// bits. One token therefore has exactly one spelling, which matters when
    /// it is a database key.
    pub fn parse(s: &str) -> Result<OpaqueCode, LinkError> {
        if s.is_empty() {
            return Err(LinkError::Empty);
        }
        if s.len() > MAX_CODE_BYTES {
            return Err(LinkError::TooLong);
        }
        if !s.bytes().all(is_base64url) {
            return Err(LinkError::BadCharacter);
        }
        if s.len() != OPAQUE_CODE_CHARS {
            return Err(LinkError::WrongLength);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| LinkError::BadBase64)?;
        if bytes.len() != OPAQUE_RANDOM_BYTES {
            return Err(LinkError::WrongLength);
        }
        Ok(OpaqueCode(s.to_owned()))
    }

    /// The 27 characters, ready for a URL path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OpaqueCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Encode in the seed format. `prefix` are the 4 random characters; each must
/// be ASCII alphanumeric else `Err(LinkError::BadPrefix)`.
///
/// The base64 is the standard alphabet with padding, as the original design
/// writes it. The result is obfuscation, not secrecy: [`decode_seed`] (or any
/// base64 tool) recovers the password.
pub fn encode_seed(password: &Password, prefix: [u8; 4]) -> Result<String, LinkError> {
    if !prefix.iter().all(u8::is_ascii_alphanumeric) {
        return Err(LinkError::BadPrefix);
    }
    let mut code = String::with_capacity(SEED_PREFIX_CHARS + 4 * PASSWORD_MAX_DIGITS.div_ceil(3));
    code.extend(prefix.iter().map(|&b| char::from(b)));
    STANDARD.encode_string(password.as_str(), &mut code);
    Ok(code)
}

/// Map 4 arbitrary random bytes to 4 alphanumeric prefix characters (helper
/// for callers holding raw randomness).
///
/// Each byte is reduced modulo 62, which favours the first 8 characters very
/// slightly; that bias is harmless because the prefix protects nothing (the
/// password follows it in plain base64).
pub fn seed_prefix_from_random(random: [u8; 4]) -> [u8; 4] {
    random.map(|b| ALPHANUMERIC[usize::from(b) % ALPHANUMERIC.len()])
}

/// Decodes a seed code back to its password.
///
/// Accepts the standard or the URL-safe base64 alphabet (never both in one
/// code), with, without, or with partial padding, because links pass through
/// tools that rewrite or trim them. The decoded bytes must form a valid
/// [`Password`].
pub fn decode_seed(code: &str) -> Result<Password, LinkError> {
    if code.is_empty() {
        return Err(LinkError::Empty);
    }
    if code.len() > MAX_CODE_BYTES {
        return Err(LinkError::TooLong);
    }
    let bytes = code.as_bytes();
    let Some(prefix) = bytes.get(..SEED_PREFIX_CHARS) else {
        return Err(LinkError::BadPrefix);
    };
    if !prefix.iter().all(u8::is_ascii_alphanumeric) {
        return Err(LinkError::BadPrefix);
    }
    // The prefix is 4 ASCII bytes, so byte 4 is a character boundary.
    let encoded = &bytes[SEED_PREFIX_CHARS..];
    if encoded.is_empty() {
        return Err(LinkError::NotAPassword);
    }
    let mut standard_only = false;
    let mut url_safe_only = false;
    for &b in encoded {
        match b {
            b'+' | b'/' => standard_only = true,
            b'-' | b'_' => url_safe_only = true,
            b'=' => {}
            _ if b.is_ascii_alphanumeric() => {}
            _ => return Err(LinkError::BadCharacter),
        }
    }
    let engine = match (standard_only, url_safe_only) {
        (true, true) => return Err(LinkError::BadBase64),
        (_, true) => &SEED_URL_SAFE,
        _ => &SEED_STANDARD,
    };
    let decoded = engine.decode(encoded).map_err(|_| LinkError::BadBase64)?;
    let digits = std::str::from_utf8(&decoded).map_err(|_| LinkError::NotAPassword)?;
    Password::parse(digits).map_err(|_| LinkError::NotAPassword)
}

/// What a path segment names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinCode {
    /// The bare password.
    Password(Password),
    /// A seed code, already decoded to the password it carries.
    Seed(Password),
    /// An opaque code, to be looked up.
    Opaque(OpaqueCode),
}

impl JoinCode {
    /// Classifies and decodes a path segment (already percent-decoded).
    ///
    /// All digits means a password, 27 base64url characters an opaque code,
    /// anything else must be a seed code; the shapes do not overlap, so the
    /// order only decides which error a malformed code gets.
    pub fn parse(segment: &str) -> Result<JoinCode, LinkError> {
        if segment.is_empty() {
            return Err(LinkError::Empty);
        }
        if segment.len() > MAX_CODE_BYTES {
            return Err(LinkError::TooLong);
        }
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            return Password::parse(segment).map(JoinCode::Password);
        }
        if segment.len() == OPAQUE_CODE_CHARS && segment.bytes().all(is_base64url) {
            return OpaqueCode::parse(segment).map(JoinCode::Opaque);
        }
        decode_seed(segment).map(JoinCode::Seed)
    }

    /// The password when the code carries one.
    pub fn password(&self) -> Option<&Password> {
        match self {
            JoinCode::Password(password) | JoinCode::Seed(password) => Some(password),
            JoinCode::Opaque(_) => None,
        }
    }
}

/// Whether `b` belongs to the base64url alphabet (RFC 4648 §5), padding excluded.
fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn password(s: &str) -> Password {
        Password::parse(s).expect("valid password")
    }

    #[test]
    fn password_bounds() {
        assert_eq!(password("1234").as_str(), "1234");
        assert_eq!(password("1234567890123456").as_str(), "1234567890123456");
        assert_eq!(Password::parse(""), Err(LinkError::Empty));
        assert_eq!(Password::parse("123"), Err(LinkError::WrongLength));
        assert_eq!(
            Password::parse("12345678901234567"),
            Err(LinkError::WrongLength)
        );
        assert_eq!(Password::parse("12a4"), Err(LinkError::BadCharacter));
        assert_eq!(Password::parse(" 1234"), Err(LinkError::BadCharacter));
        assert_eq!(
            Password::parse("١٢٣٤"),
            Err(LinkError::BadCharacter),
            "non-ASCII digits"
        );
        assert_eq!(password("0042").to_string(), "0042");
    }

    #[test]
    fn seed_example_from_the_original_design() {
        let code = encode_seed(&password("123456"), *b"aB3x").expect("encode");
        assert_eq!(code, "aB3xMTIzNDU2");
        assert!(code.ends_with("MTIzNDU2"));
        assert_eq!(decode_seed(&code), Ok(password("123456")));
        assert_eq!(
            JoinCode::parse(&code),
            Ok(JoinCode::Seed(password("123456")))
        );
    }

    #[test]
    fn seed_encoder_pads_and_decoder_accepts_all_spellings() {
        // 5 digits -> 8 base64 characters with one `=`.
        let code = encode_seed(&password("12345"), *b"ZZZZ").expect("encode");
        assert_eq!(code, "ZZZZMTIzNDU=");
        assert_eq!(
            decode_seed("ZZZZMTIzNDU"),
            Ok(password("12345")),
            "unpadded"
        );
        assert_eq!(decode_seed(&code), Ok(password("12345")), "padded");
        // 4 digits -> two `=`; partial padding is accepted too.
        let code = encode_seed(&password("1234"), *b"0000").expect("encode");
        assert_eq!(code, "0000MTIzNA==");
        assert_eq!(decode_seed("0000MTIzNA="), Ok(password("1234")));
        assert_eq!(decode_seed("0000MTIzNA"), Ok(password("1234")));
        assert_eq!(decode_seed("0000MTIzNA==="), Err(LinkError::BadBase64));
        // 16 digits with partial padding is 27 characters, yet never opaque.
        let sixteen = password("1234567890123456");
        let code = encode_seed(&sixteen, *b"abcd").expect("encode");
        assert_eq!(code.len(), 28);
        let partial = &code[..27];
        assert!(partial.ends_with('='));
        assert_eq!(JoinCode::parse(partial), Ok(JoinCode::Seed(sixteen)));
    }

    #[test]
    fn seed_decoder_accepts_url_safe_alphabet() {
        // Digits alone never produce `+`, `/`, `-` or `_`, so build codes by hand
        // from a byte string whose base64 does: the decoder must read them and
        // then refuse them as not-a-password, not as bad base64.
        let standard = format!("abcd{}", STANDARD.encode([0xfb, 0xff, 0xbf]));
        assert_eq!(standard, "abcd+/+/");
        assert_eq!(decode_seed(&standard), Err(LinkError::NotAPassword));
        assert_eq!(decode_seed("abcd-_-_"), Err(LinkError::NotAPassword));
        assert_eq!(
            decode_seed("abcd+_-/"),
            Err(LinkError::BadBase64),
            "mixed alphabets"
        );
    }

    #[test]
    fn seed_decoder_errors() {
        assert_eq!(decode_seed(""), Err(LinkError::Empty));
        assert_eq!(decode_seed("abc"), Err(LinkError::BadPrefix));
        assert_eq!(decode_seed("ab!cMTIzNDU2"), Err(LinkError::BadPrefix));
        assert_eq!(decode_seed("éabcMTIzNDU2"), Err(LinkError::BadPrefix));
        assert_eq!(decode_seed("abcd"), Err(LinkError::NotAPassword));
        assert_eq!(decode_seed("abcdMTIz!DU2"), Err(LinkError::BadCharacter));
        assert_eq!(decode_seed("abcdMTIzNDUé"), Err(LinkError::BadCharacter));
        assert_eq!(decode_seed("abcdM"), Err(LinkError::BadBase64));
        assert_eq!(decode_seed("abcdMTIzNDU3"), Ok(password("123457")));
        assert_eq!(
            decode_seed("abcdMTIzNDV="),
            Err(LinkError::BadBase64),
            "trailing bits"
        );
        assert_eq!(
            decode_seed("abcdMTIzNDV"),
            Err(LinkError::BadBase64),
            "trailing bits, unpadded"
        );
        assert_eq!(
            decode_seed("abcdaGVsbG8="),
            Err(LinkError::NotAPassword),
            "hello"
        );
        assert_eq!(
            decode_seed("abcdMTIz"),
            Err(LinkError::NotAPassword),
            "123 is too short"
        );
        assert_eq!(decode_seed(&"a".repeat(65)), Err(LinkError::TooLong));
    }

    #[test]
    fn encode_seed_refuses_bad_prefix() {
        let p = password("1234");
        assert_eq!(encode_seed(&p, *b"ab-d"), Err(LinkError::BadPrefix));
        assert_eq!(
            encode_seed(&p, [b'a', b'b', b'c', 0xff]),
            Err(LinkError::BadPrefix)
        );
        assert_eq!(encode_seed(&p, *b"ab d"), Err(LinkError::BadPrefix));
    }

    #[test]
    fn seed_prefix_helper_covers_the_alphabet() {
        assert_eq!(seed_prefix_from_random([0, 25, 26, 51]), *b"AZaz");
        assert_eq!(seed_prefix_from_random([0, 25, 26, 61]), *b"AZa9");
        assert_eq!(seed_prefix_from_random([52, 61, 62, 255]), *b"09AH");
    }

    #[test]
    fn opaque_codes() {
        let code = OpaqueCode::from_random([0; OPAQUE_RANDOM_BYTES]);
        assert_eq!(code.as_str(), "AAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(code.as_str().len(), 27);
        let code = OpaqueCode::from_random([0xff; OPAQUE_RANDOM_BYTES]);
        assert_eq!(code.as_str(), "__________________________8");
        assert_eq!(OpaqueCode::parse(code.as_str()), Ok(code.clone()));
        assert_eq!(
            JoinCode::parse(code.as_str()),
            Ok(JoinCode::Opaque(code.clone()))
        );
        assert_eq!(
            JoinCode::parse(code.as_str()).expect("opaque").password(),
            None
        );
        assert_eq!(code.to_string(), code.as_str());
        // The last character may only carry 4 bits of data.
        assert_eq!(
            OpaqueCode::parse("__________________________x"),
            Err(LinkError::BadBase64)
        );
        assert_eq!(
            JoinCode::parse("__________________________x"),
            Err(LinkError::BadBase64)
        );
        assert_eq!(OpaqueCode::parse("AAAA"), Err(LinkError::WrongLength));
        assert_eq!(
            OpaqueCode::parse("AAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(LinkError::BadCharacter)
        );
        assert_eq!(OpaqueCode::parse(""), Err(LinkError::Empty));
    }

    #[test]
    fn join_code_classification() {
        assert_eq!(
            JoinCode::parse("123456"),
            Ok(JoinCode::Password(password("123456")))
        );
        assert_eq!(
            JoinCode::parse("123456").expect("password").password(),
            Some(&password("123456"))
        );
        assert_eq!(JoinCode::parse("123"), Err(LinkError::WrongLength));
        assert_eq!(
            JoinCode::parse("12345678901234567"),
            Err(LinkError::WrongLength)
        );
        assert_eq!(JoinCode::parse(""), Err(LinkError::Empty));
        assert_eq!(JoinCode::parse(&"1".repeat(65)), Err(LinkError::TooLong));
        assert_eq!(
            JoinCode::parse(&"1".repeat(64)),
            Err(LinkError::WrongLength)
        );
        assert!(JoinCode::parse("conference").is_err());
        assert_eq!(JoinCode::parse("../etc/passwd"), Err(LinkError::BadPrefix));
    }

    proptest! {
        #[test]
        fn seed_round_trip(digits in "[0-9]{4,16}", prefix in prop::array::uniform4(prop::sample::select(ALPHANUMERIC.to_vec()))) {
            let p = password(&digits);
            let code = encode_seed(&p, prefix).expect("encode");
            prop_assert_ne!(code.len(), OPAQUE_CODE_CHARS);
            prop_assert_eq!(decode_seed(&code), Ok(p.clone()));
            prop_assert_eq!(decode_seed(code.trim_end_matches('=')), Ok(p.clone()));
            prop_assert_eq!(JoinCode::parse(&code), Ok(JoinCode::Seed(p.clone())));
            prop_assert_eq!(JoinCode::parse(code.trim_end_matches('=')), Ok(JoinCode::Seed(p)));
        }

        #[test]
        fn seed_prefix_is_always_valid(random in any::<[u8; 4]>(), digits in "[0-9]{4,16}") {
            let prefix = seed_prefix_from_random(random);
            prop_assert!(prefix.iter().all(u8::is_ascii_alphanumeric));
            prop_assert!(encode_seed(&password(&digits), prefix).is_ok());
        }

        #[test]
        fn password_round_trip(digits in "[0-9]{4,16}") {
            prop_assert_eq!(JoinCode::parse(&digits), Ok(JoinCode::Password(password(&digits))));
        }

        #[test]
        fn opaque_round_trip(bytes in any::<[u8; OPAQUE_RANDOM_BYTES]>()) {
            let code = OpaqueCode::from_random(bytes);
            prop_assert_eq!(code.as_str().len(), OPAQUE_CODE_CHARS);
            prop_assert_eq!(OpaqueCode::parse(code.as_str()), Ok(code.clone()));
            prop_assert_eq!(JoinCode::parse(code.as_str()), Ok(JoinCode::Opaque(code)));
        }

        #[test]
        fn arbitrary_unicode_never_panics(s in any::<String>()) {
            let _ = JoinCode::parse(&s);
            let _ = decode_seed(&s);
            let _ = OpaqueCode::parse(&s);
            let _ = Password::parse(&s);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            let s = String::from_utf8_lossy(&bytes);
            let _ = JoinCode::parse(&s);
            let _ = decode_seed(&s);
        }

        #[test]
        fn code_shaped_strings_never_panic(s in "[A-Za-z0-9+/=_-]{0,40}") {
            if let Ok(code) = JoinCode::parse(&s) {
                // Whatever parses names a password or a valid opaque code.
                match &code {
                    JoinCode::Password(p) | JoinCode::Seed(p) => prop_assert!(Password::parse(p.as_str()).is_ok()),
                    JoinCode::Opaque(o) => prop_assert_eq!(o.as_str(), s.as_str()),
                }
            }
        }
    }
}
