//! Access tokens (HS256 JWTs, algorithm pinned), refresh tokens and secret
//! hashing.
//!
//! The signing secret is generated on first start and kept in the database,
//! so every node sharing the database accepts every node's tokens. Refresh
//! tokens and client secrets are random and stored only as SHA-256 hashes;
//! passwords given at `org.user.createUser` are stored as PBKDF2-SHA256.

use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::store::Role;

/// The name of the signing secret in the settings table.
pub const SECRET_SETTING: &str = "jwt_hs256_secret";

/// PBKDF2 rounds for stored passwords: about 30 ms on one core, enough to make
/// offline guessing of a leaked table slow while a login stays quick.
const PBKDF2_ROUNDS: u32 = 100_000;

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    pub user_id: String,
    pub user_name: String,
    pub role: String,
    /// The conference of a temporary account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conf_id: Option<String>,
    #[serde(rename = "grant_type")]
    pub grant_type: String,
    #[serde(rename = "creation_date")]
    pub creation_date: i64,
    /// Expiry, epoch milliseconds.
    pub deadline: i64,
    /// Expiry, epoch seconds (the JWT standard claim).
    pub exp: i64,
    pub nonce: String,
}

impl Claims {
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Member)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("access token missing")]
    Missing,
    #[error("access token expired")]
    Expired,
    #[error("access token invalid")]
    Invalid,
}

/// Signs and checks access tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> TokenKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against `deadline` with the caller's clock, so
        // that it is testable and exact to the millisecond.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// A fresh random secret, base64, for the settings table.
    pub fn generate_secret() -> String {
        STANDARD.encode(random_bytes::<32>())
    }

    pub fn from_stored(secret: &str) -> TokenKeys {
        match STANDARD.decode(secret) {
            Ok(bytes) if bytes.len() >= 32 => TokenKeys::new(&bytes),
            _ => TokenKeys::new(secret.as_bytes()),
        }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        // The header is the fixed HS256 one; encoding a struct of strings and
        // integers cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .unwrap_or_default()
    }

    pub fn verify(&self, token: &str, now_ms: i64) -> Result<Claims, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        if data.claims.deadline <= now_ms {
            return Err(TokenError::Expired);
        }
        Ok(data.claims)
    }
}

/// `n` bytes from the system's secure generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The system generator fails only when the OS has no entropy source at
    // all; a server cannot run safely then.
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random generator failed");
    bytes
}

/// A new refresh token, in the original design's shape: base64 of 40 hex
/// digits (160 random bits).
pub fn new_refresh_token() -> String {
    let hex: String = random_bytes::<20>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    STANDARD.encode(hex)
}

/// A new client secret: 192 random bits, URL-safe base64.
pub fn new_client_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<24>())
}

/// A random nonce for a token.
pub fn new_nonce() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<12>())
}

/// SHA-256 of a high-entropy secret (refresh token, client secret), hex.
pub fn hash_token(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Stored form of a client secret.
pub fn hash_client_secret(secret: &str) -> String {
    format!("sha256${}", hash_token(secret))
}

/// Stored form of a password: PBKDF2-SHA256 with a random salt.
pub fn hash_password(password: &str) -> String {
    let salt = random_bytes::<16>();
    let mut out = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds(PBKDF2_ROUNDS),
        &salt,
        password.as_bytes(),
        &mut out,
    );
    format!(
        "pbkdf2-sha256${PBKDF2_ROUNDS}${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(out)
    )
}

fn rounds(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// Checks a presented secret or password against its stored form, in
/// constant time.
pub fn verify_secret(stored: &str, presented: &str) -> bool {
    let mut parts = stored.split('$');
    match parts.next() {
        Some("sha256") => {
            let Some(expected) = parts.next() else {
                return false;
            };
            let actual = hash_token(presented);
            expected.len() == actual.len()
                && expected
                    .bytes()
                    .zip(actual.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        }
        Some("pbkdf2-sha256") => {
            let (Some(n), Some(salt), Some(hash)) = (parts.next(), parts.next(), parts.next())
            else {
                return false;
            };
            let (Ok(n), Ok(salt), Ok(hash)) = (
                n.parse::<u32>(),
                STANDARD.decode(salt),
                STANDARD.decode(hash),
            ) else {
                return false;
            };
            ring::pbkdf2::verify(
                ring::pbkdf2::PBKDF2_HMAC_SHA256,
                rounds(n),
                &salt,
                presented.as_bytes(),
                &hash,
            )
            .is_ok()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(deadline: i64) -> Claims {
        Claims {
            user_id: "u1".into(),
            user_name: "张三".into(),
            role: "member".into(),
            conf_id: Some("11234".into()),
            grant_type: "client_credentials".into(),
            creation_date: 0,
            deadline,
            exp: deadline / 1000,
            nonce: new_nonce(),
        }
    }

    #[test]
    fn tokens_round_trip_and_expire() {
        let keys = TokenKeys::new(&random_bytes::<32>());
        let token = keys.sign(&claims(10_000));
        assert_eq!(keys.verify(&token, 9_999).expect("valid").user_id, "u1");
        assert_eq!(keys.verify(&token, 10_000), Err(TokenError::Expired));
        assert_eq!(keys.verify("", 0), Err(TokenError::Missing));
        assert_eq!(keys.verify("a.b.c", 0), Err(TokenError::Invalid));
        let other = TokenKeys::new(&random_bytes::<32>());
        assert_eq!(
            other.verify(&token, 0),
            Err(TokenError::Invalid),
            "other secret"
        );
    }

    #[test]
    fn algorithm_is_pinned() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef");
        // An unsigned token ("alg":"none") with valid claims is refused.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(i64::MAX)).expect("json"));
        assert_eq!(
            keys.verify(&format!("{header}.{body}."), 0),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn secrets_verify() {
        let secret = new_client_secret();
        let stored = hash_client_secret(&secret);
        assert!(verify_secret(&stored, &secret));
        assert!(!verify_secret(&stored, "nope"));
        let stored = hash_password("123456");
        assert!(verify_secret(&stored, "123456"));
        assert!(!verify_secret(&stored, "1234567"));
        assert!(!verify_secret("garbage", "123456"));
        assert!(!verify_secret("pbkdf2-sha256$x$y$z", "123456"));
    }

    #[test]
    fn refresh_token_has_the_original_shape() {
        let token = new_refresh_token();
        let hex = STANDARD.decode(&token).expect("base64");
        assert_eq!(hex.len(), 40);
        assert!(hex.iter().all(u8::is_ascii_hexdigit));
    }
}
