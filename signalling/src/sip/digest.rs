//! HTTP digest authentication as SIP uses it (RFC 2617, RFC 3261 §22).
//!
//! The MCU answers an INVITE with 401 (`WWW-Authenticate`) or 407
//! (`Proxy-Authenticate`); the UAC parses the [`Challenge`], computes
//! [`Credentials`] for the retried request with [`Challenge::respond`], and
//! sends them in `Authorization` or `Proxy-Authorization`
//! ([`ChallengeKind::credentials_header`]).
//!
//! Algorithms: MD5 and MD5-sess; quality of protection: none (RFC 2069
//! compatibility), `auth`, or `auth-int` when `auth` is not offered. Other
//! schemes and algorithms (Basic, SHA-256 of RFC 8760) are
//! [`SipError::Unsupported`], which [`super::Message::challenges`] skips so an
//! MD5 challenge offered beside them is still found.

use std::fmt;

use super::SipError;
use super::md5::md5_hex;
use super::syntax::{is_lws, is_token, quote, read_quoted, split_outside, trim_lws};

/// Which header carried the challenge, which decides the credentials' header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// `WWW-Authenticate` in a 401, from the UAS (or a registrar).
    Www,
    /// `Proxy-Authenticate` in a 407, from a proxy.
    Proxy,
}

impl ChallengeKind {
    /// Where the answer goes: `Authorization` or `Proxy-Authorization`.
    pub fn credentials_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "Authorization",
            ChallengeKind::Proxy => "Proxy-Authorization",
        }
    }
}

/// The digest algorithms RFC 2617 defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
        }
    }

    fn parse(s: &str) -> Result<Algorithm, SipError> {
        if s.eq_ignore_ascii_case("MD5") {
            Ok(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("MD5-sess") {
            Ok(Algorithm::Md5Sess)
        } else {
            Err(SipError::Unsupported(format!("the digest algorithm `{s}`")))
        }
    }
}

/// A digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub kind: ChallengeKind,
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// MD5 when the challenge names none.
    pub algorithm: Algorithm,
    /// The qop values offered, lower-cased; empty for an RFC 2069 challenge.
    pub qop: Vec<String>,
    /// The previous credentials were right but their nonce had expired: retry
    /// without asking anyone for a password again.
    pub stale: bool,
}

/// What a response to a challenge is computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestRequest<'a> {
    /// The method of the request being authorized (`INVITE`). For ACK and
    /// CANCEL, RFC 3261 §22.1 reuses the INVITE's credentials instead.
    pub method: &'a str,
    /// The Request-URI exactly as written in the request line.
    pub uri: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    /// Client nonce: random, from the caller. Required when qop or MD5-sess
    /// is used; ignored otherwise.
    pub cnonce: &'a str,
    /// How many requests this nonce has authorized, this one included (≥ 1).
    pub nc: u32,
    /// The request body, hashed only for qop `auth-int`.
    pub body: &'a [u8],
}

/// `name=value` pairs of an authentication header, values unquoted; names
/// lower-cased. Duplicates are an error: they make the value ambiguous.
fn auth_params(rest: &str, header: &str) -> Result<Vec<(String, String)>, SipError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for piece in split_outside(rest, b',') {
        let piece = trim_lws(piece);
        if piece.is_empty() {
            continue;
        }
        let Some((name, value)) = piece.split_once('=') else {
            return Err(SipError::bad_value(
                header,
                format!("`{piece}` is not name=value"),
            ));
        };
        let name = trim_lws(name);
        let value = trim_lws(value);
        if !is_token(name) {
            return Err(SipError::bad_value(
                header,
                format!("bad parameter name `{name}`"),
            ));
        }
        let value = if value.starts_with('"') {
            match read_quoted(value) {
                Ok((v, rest)) if trim_lws(rest).is_empty() => v,
                _ => {
                    return Err(SipError::bad_value(
                        header,
                        format!("bad quoted value in `{piece}`"),
                    ));
                }
            }
        } else if is_token(value) {
            value.to_owned()
        } else {
            return Err(SipError::bad_value(
                header,
                format!("bad value in `{piece}`"),
            ));
        };
        let name = name.to_ascii_lowercase();
        if out.iter().any(|(n, _)| *n == name) {
            return Err(SipError::bad_value(
                header,
                format!("`{name}` appears twice"),
            ));
        }
        out.push((name, value));
    }
    Ok(out)
}

/// Splits `Scheme params`; the scheme must be Digest.
fn digest_params<'a>(value: &'a str, header: &str) -> Result<&'a str, SipError> {
    let value = trim_lws(value);
    let end = value.find(is_lws).unwrap_or(value.len());
    let (scheme, rest) = value.split_at(end);
    if !is_token(scheme) {
        return Err(SipError::bad_value(header, "no authentication scheme"));
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(SipError::Unsupported(format!(
            "the authentication scheme `{scheme}`"
        )));
    }
    Ok(rest)
}

fn take(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

impl Challenge {
    /// Parses one WWW-Authenticate or Proxy-Authenticate value.
    pub fn parse(value: &str, kind: ChallengeKind) -> Result<Challenge, SipError> {
        let header = match kind {
            ChallengeKind::Www => "WWW-Authenticate",
            ChallengeKind::Proxy => "Proxy-Authenticate",
        };
        let params = auth_params(digest_params(value, header)?, header)?;
        let realm =
            take(&params, "realm").ok_or_else(|| SipError::bad_value(header, "no realm"))?;
        let nonce =
            take(&params, "nonce").ok_or_else(|| SipError::bad_value(header, "no nonce"))?;
        let algorithm = match take(&params, "algorithm") {
            Some(a) => Algorithm::parse(&a)?,
            None => Algorithm::Md5,
        };
        let qop = take(&params, "qop")
            .map(|q| {
                q.split(',')
                    .map(|v| trim_lws(v).to_ascii_lowercase())
                    .filter(|v| !v.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let stale = take(&params, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true"));
        Ok(Challenge {
            kind,
            realm,
            nonce,
            opaque: take(&params, "opaque"),
            algorithm,
            qop,
            stale,
        })
    }

    /// Computes the credentials answering this challenge.
    pub fn respond(&self, request: &DigestRequest<'_>) -> Result<Credentials, SipError> {
        let qop = if self.qop.is_empty() {
            None
        } else if self.qop.iter().any(|q| q == "auth") {
            Some("auth")
        } else if self.qop.iter().any(|q| q == "auth-int") {
            Some("auth-int")
        } else {
            return Err(SipError::Unsupported(format!(
                "the qop values {:?}",
                self.qop
            )));
        };
        let needs_cnonce = qop.is_some() || self.algorithm == Algorithm::Md5Sess;
        if needs_cnonce && request.cnonce.is_empty() {
            return Err(SipError::Misuse("qop and MD5-sess need a cnonce".into()));
        }
        if qop.is_some() && request.nc == 0 {
            return Err(SipError::Misuse("the nonce count starts at 1".into()));
        }
        let nc = format!("{:08x}", request.nc);
        let response = compute_response(
            self.algorithm,
            qop,
            &Inputs {
                username: request.username,
                realm: &self.realm,
                password: request.password,
                nonce: &self.nonce,
                cnonce: request.cnonce,
                nc: &nc,
                method: request.method,
                uri: request.uri,
                body: request.body,
            },
        );
        Ok(Credentials {
            kind: self.kind,
            username: request.username.to_owned(),
            realm: self.realm.clone(),
            nonce: self.nonce.clone(),
            uri: request.uri.to_owned(),
            response,
            algorithm: Some(self.algorithm),
            cnonce: needs_cnonce.then(|| request.cnonce.to_owned()),
            opaque: self.opaque.clone(),
            qop: qop.map(str::to_owned),
            nc: qop.map(|_| nc),
        })
    }
}

/// Everything the response hash is computed over.
struct Inputs<'a> {
    username: &'a str,
    realm: &'a str,
    password: &'a str,
    nonce: &'a str,
    cnonce: &'a str,
    nc: &'a str,
    method: &'a str,
    uri: &'a str,
    body: &'a [u8],
}

/// RFC 2617 §3.2.2.1 to §3.2.2.3.
fn compute_response(algorithm: Algorithm, qop: Option<&str>, i: &Inputs<'_>) -> String {
    let mut ha1 = md5_hex(format!("{}:{}:{}", i.username, i.realm, i.password).as_bytes());
    if algorithm == Algorithm::Md5Sess {
        ha1 = md5_hex(format!("{ha1}:{}:{}", i.nonce, i.cnonce).as_bytes());
    }
    let ha2 = if qop == Some("auth-int") {
        md5_hex(format!("{}:{}:{}", i.method, i.uri, md5_hex(i.body)).as_bytes())
    } else {
        md5_hex(format!("{}:{}", i.method, i.uri).as_bytes())
    };
    match qop {
        Some(qop) => {
            md5_hex(format!("{ha1}:{}:{}:{}:{qop}:{ha2}", i.nonce, i.nc, i.cnonce).as_bytes())
        }
        None => md5_hex(format!("{ha1}:{}:{ha2}", i.nonce).as_bytes()),
    }
}

/// Digest credentials, as sent in Authorization or Proxy-Authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub kind: ChallengeKind,
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    /// 32 lower-case hexadecimal digits.
    pub response: String,
    pub algorithm: Option<Algorithm>,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
    pub qop: Option<String>,
    /// 8 hexadecimal digits.
    pub nc: Option<String>,
}

impl Credentials {
    /// `Authorization` or `Proxy-Authorization`.
    pub fn header_name(&self) -> &'static str {
        self.kind.credentials_header()
    }

    /// The header value: `Digest username="…", realm="…", …`.
    pub fn to_header_value(&self) -> String {
        self.to_string()
    }

    /// Parses one Authorization or Proxy-Authorization value.
    pub fn parse(value: &str, kind: ChallengeKind) -> Result<Credentials, SipError> {
        let header = kind.credentials_header();
        let params = auth_params(digest_params(value, header)?, header)?;
        let need = |name: &'static str| {
            take(&params, name).ok_or_else(|| SipError::bad_value(header, format!("no {name}")))
        };
        Ok(Credentials {
            kind,
            username: need("username")?,
            realm: need("realm")?,
            nonce: need("nonce")?,
            uri: need("uri")?,
            response: need("response")?,
            algorithm: take(&params, "algorithm")
                .map(|a| Algorithm::parse(&a))
                .transpose()?,
            cnonce: take(&params, "cnonce"),
            opaque: take(&params, "opaque"),
            qop: take(&params, "qop").map(|q| q.to_ascii_lowercase()),
            nc: take(&params, "nc"),
        })
    }

    /// Whether these credentials were computed with `password` for a request
    /// with this method and body: what a UAS (or sipp's `verifyauth`) checks.
    pub fn verify(&self, password: &str, method: &str, body: &[u8]) -> bool {
        let qop = self.qop.as_deref();
        if !matches!(qop, None | Some("auth") | Some("auth-int")) {
            return false;
        }
        let expected = compute_response(
            self.algorithm.unwrap_or(Algorithm::Md5),
            qop,
            &Inputs {
                username: &self.username,
                realm: &self.realm,
                password,
                nonce: &self.nonce,
                cnonce: self.cnonce.as_deref().unwrap_or_default(),
                nc: self.nc.as_deref().unwrap_or_default(),
                method,
                uri: &self.uri,
                body,
            },
        );
        expected.eq_ignore_ascii_case(&self.response)
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest username={}, realm={}, nonce={}, uri={}, response={}",
            quote(&self.username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(&self.uri),
            quote(&self.response)
        )?;
        if let Some(algorithm) = self.algorithm {
            write!(f, ", algorithm={}", algorithm.as_str())?;
        }
        if let Some(cnonce) = &self.cnonce {
            write!(f, ", cnonce={}", quote(cnonce))?;
        }
        if let Some(opaque) = &self.opaque {
            write!(f, ", opaque={}", quote(opaque))?;
        }
        // RFC 2617 §3.2.2: qop and nc are written unquoted.
        if let Some(qop) = &self.qop {
            write!(f, ", qop={qop}")?;
        }
        if let Some(nc) = &self.nc {
            write!(f, ", nc={nc}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(value: &str) -> Challenge {
        Challenge::parse(value, ChallengeKind::Www).expect(value)
    }

    #[test]
    fn rfc_2617_mufasa_example() {
        // RFC 2617 §3.5.
        let c = challenge(
            r#"Digest
                 realm="testrealm@host.com",
                 qop="auth,auth-int",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#
                .replace('\n', " ")
                .as_str(),
        );
        assert_eq!(c.realm, "testrealm@host.com");
        assert_eq!(c.qop, vec!["auth", "auth-int"]);
        assert_eq!(c.algorithm, Algorithm::Md5);
        let creds = c
            .respond(&DigestRequest {
                method: "GET",
                uri: "/dir/index.html",
                username: "Mufasa",
                password: "Circle Of Life",
                cnonce: "0a4f113b",
                nc: 1,
                body: b"",
            })
            .expect("respond");
        assert_eq!(creds.response, "6629fae49393a05397450978507c4ef1");
        assert_eq!(creds.qop.as_deref(), Some("auth"));
        assert_eq!(creds.nc.as_deref(), Some("00000001"));
        assert_eq!(
            creds.to_header_value(),
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, \
             cnonce=\"0a4f113b\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", \
             qop=auth, nc=00000001"
        );
        assert_eq!(creds.header_name(), "Authorization");
        let back = Credentials::parse(&creds.to_header_value(), ChallengeKind::Www).expect("parse");
        assert_eq!(back, creds);
        assert!(back.verify("Circle Of Life", "GET", b""));
        assert!(!back.verify("circle of life", "GET", b""));
        assert!(!back.verify("Circle Of Life", "POST", b""));
    }

    #[test]
    fn sipp_challenge_without_qop() {
        // The 401 of /work/shared/sip-scenarios/uas_auth.xml, as sipp fills it
        // in (pid 4242, call 1, clock tick 1500), answered for the INVITE to
        // sip:mcu@127.0.0.1:5060 as alice/secret. Computed by hand with
        // coreutils md5sum:
        //   HA1 = md5("alice:sipp-mcu:secret")         = cb5bcc8eed751e12789ef403a0d1b2fe
        //   HA2 = md5("INVITE:sip:mcu@127.0.0.1:5060") = 097605730e73bdb045913679fbed3032
        //   response = md5(HA1 ":4242n1x1500:" HA2)     = 494b4d03c39afa561fad7d1ff80d056a
        let c = challenge(r#"Digest realm="sipp-mcu", nonce="4242n1x1500", algorithm=MD5"#);
        assert!(c.qop.is_empty());
        assert_eq!(c.opaque, None);
        assert!(!c.stale);
        let creds = c
            .respond(&DigestRequest {
                method: "INVITE",
                uri: "sip:mcu@127.0.0.1:5060",
                username: "alice",
                password: "secret",
                cnonce: "",
                nc: 1,
                body: b"",
            })
            .expect("respond");
        assert_eq!(creds.response, SIPP_EXPECTED_RESPONSE);
        assert_eq!(creds.qop, None);
        assert_eq!(creds.nc, None);
        assert_eq!(creds.cnonce, None);
        assert_eq!(
            creds.to_header_value(),
            format!(
                "Digest username=\"alice\", realm=\"sipp-mcu\", nonce=\"4242n1x1500\", \
                 uri=\"sip:mcu@127.0.0.1:5060\", response=\"{SIPP_EXPECTED_RESPONSE}\", algorithm=MD5"
            )
        );
        assert!(creds.verify("secret", "INVITE", b""));
    }

    /// `md5("<HA1>:4242n1x1500:<HA2>")`, computed with md5sum; see above.
    const SIPP_EXPECTED_RESPONSE: &str = "494b4d03c39afa561fad7d1ff80d056a";

    #[test]
    fn proxy_challenge_md5_sess_and_auth_int() {
        let c = Challenge::parse(
            r#"digest realm="proxy", nonce="n", algorithm=md5-sess, qop="auth-int", stale=TRUE, opaque="o""#,
            ChallengeKind::Proxy,
        )
        .expect("valid");
        assert_eq!(c.algorithm, Algorithm::Md5Sess);
        assert!(c.stale);
        let request = DigestRequest {
            method: "INVITE",
            uri: "sip:conf@mcu",
            username: "u",
            password: "p",
            cnonce: "c",
            nc: 2,
            body: b"v=0\r\n",
        };
        let creds = c.respond(&request).expect("respond");
        assert_eq!(creds.header_name(), "Proxy-Authorization");
        assert_eq!(creds.qop.as_deref(), Some("auth-int"));
        assert_eq!(creds.nc.as_deref(), Some("00000002"));
        assert_eq!(creds.algorithm, Some(Algorithm::Md5Sess));
        // The same formulas written out by hand.
        let ha1 = md5_hex(format!("{}:n:c", md5_hex(b"u:proxy:p")).as_bytes());
        let ha2 = md5_hex(format!("INVITE:sip:conf@mcu:{}", md5_hex(b"v=0\r\n")).as_bytes());
        let expected = md5_hex(format!("{ha1}:n:00000002:c:auth-int:{ha2}").as_bytes());
        assert_eq!(creds.response, expected);
        assert!(creds.verify("p", "INVITE", b"v=0\r\n"));
        assert!(
            !creds.verify("p", "INVITE", b"v=1\r\n"),
            "auth-int covers the body"
        );
        assert!(matches!(
            c.respond(&DigestRequest {
                cnonce: "",
                ..request
            }),
            Err(SipError::Misuse(_))
        ));
    }

    #[test]
    fn refuses_what_it_cannot_answer() {
        let www = ChallengeKind::Www;
        assert!(matches!(
            Challenge::parse(r#"Basic realm="x""#, www),
            Err(SipError::Unsupported(_))
        ));
        assert!(matches!(
            Challenge::parse(r#"Digest realm="x", nonce="y", algorithm=SHA-256"#, www),
            Err(SipError::Unsupported(_))
        ));
        let c = challenge(r#"Digest realm="x", nonce="y", qop="auth-conf""#);
        assert!(matches!(
            c.respond(&DigestRequest {
                method: "INVITE",
                uri: "sip:a@b",
                username: "u",
                password: "p",
                cnonce: "c",
                nc: 1,
                body: b""
            }),
            Err(SipError::Unsupported(_))
        ));
        for bad in [
            "",
            "Digest",
            r#"Digest realm="x""#,
            r#"Digest nonce="y""#,
            r#"Digest realm="x", nonce="y", realm="z""#,
            r#"Digest realm="x, nonce="y""#,
            r#"Digest realm=x y, nonce=z"#,
            r#"Digest realm"#,
            r#"Digest realm="x" junk, nonce="y""#,
        ] {
            assert!(Challenge::parse(bad, www).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn escapes_quotes_in_user_names() {
        let c = challenge(r#"Digest realm="a\"b", nonce="n""#);
        assert_eq!(c.realm, "a\"b");
        let creds = c
            .respond(&DigestRequest {
                method: "BYE",
                uri: "sip:x@y",
                username: "we\"ird\\",
                password: "p",
                cnonce: "",
                nc: 1,
                body: b"",
            })
            .expect("respond");
        let text = creds.to_header_value();
        assert!(
            text.starts_with(r#"Digest username="we\"ird\\", realm="a\"b""#),
            "{text}"
        );
        let back = Credentials::parse(&text, ChallengeKind::Www).expect("parse");
        assert_eq!(back.username, "we\"ird\\");
        assert!(back.verify("p", "BYE", b""));
    }
}
