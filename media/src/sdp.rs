//! A first look at SDP from a browser, before rtc parses it: enough to reject garbage with a
//! message that says what is wrong, and to tell a renegotiation from a new connection.

/// One `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MediaLine {
    pub(crate) kind: String,
    /// Port 0 means the section is rejected (or, in an offer, bundled-only).
    pub(crate) port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SdpSummary {
    pub(crate) media: Vec<MediaLine>,
    pub(crate) ice_ufrag: Option<String>,
}

impl SdpSummary {
    /// Audio and video sections, whatever their port.
    pub(crate) fn av_sections(&self) -> usize {
        self.media
            .iter()
            .filter(|m| m.kind == "audio" || m.kind == "video")
            .count()
    }
}

/// Reads the outline of an SDP, or says why it is not one.
pub(crate) fn inspect(sdp: &str) -> Result<SdpSummary, String> {
    let mut lines = sdp.lines().map(str::trim_end).filter(|l| !l.is_empty());
    match lines.next() {
        Some("v=0") => {}
        Some(_) => return Err("does not start with v=0".to_owned()),
        None => return Err("empty".to_owned()),
    }
    let mut summary = SdpSummary {
        media: Vec::new(),
        ice_ufrag: None,
    };
    let mut fingerprint = false;
    for line in lines {
        let Some((kind, value)) = line.split_once('=') else {
            return Err(format!("line {line:?} is not <type>=<value>"));
        };
        if kind.len() != 1 {
            return Err(format!("line {line:?} is not <type>=<value>"));
        }
        match kind {
            "m" => {
                let mut parts = value.split_whitespace();
                let media = parts.next().unwrap_or_default();
                let port = parts
                    .next()
                    .and_then(|p| p.split('/').next())
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or_else(|| format!("m-line {line:?} has no valid port"))?;
                if parts.next().is_none() {
                    return Err(format!("m-line {line:?} has no protocol"));
                }
                summary.media.push(MediaLine {
                    kind: media.to_owned(),
                    port,
                });
            }
            "a" => {
                if let Some(ufrag) = value.strip_prefix("ice-ufrag:") {
                    summary.ice_ufrag.get_or_insert_with(|| ufrag.to_owned());
                } else if value.starts_with("fingerprint:") {
                    fingerprint = true;
                }
            }
            _ => {}
        }
    }
    if summary.av_sections() == 0 {
        return Err("no audio or video section".to_owned());
    }
    if summary.ice_ufrag.is_none() {
        return Err("no a=ice-ufrag".to_owned());
    }
    if !fingerprint {
        return Err("no a=fingerprint (DTLS-SRTP is required)".to_owned());
    }
    Ok(summary)
}

/// Checks a trickled candidate as a browser sends it (`candidate:...`, possibly with an `a=`
/// prefix). `Ok(None)` is the end-of-candidates marker (an empty string).
pub(crate) fn candidate(value: &str) -> Result<Option<&str>, String> {
    let value = value.trim();
    let value = value.strip_prefix("a=").unwrap_or(value);
    if value.is_empty() {
        return Ok(None);
    }
    let Some(rest) = value.strip_prefix("candidate:") else {
        return Err("does not start with candidate:".to_owned());
    };
    // foundation component transport priority address port "typ" type [extensions]
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.len() < 8 {
        return Err(format!(
            "{} fields, a candidate has at least 8",
            fields.len()
        ));
    }
    if fields[1].parse::<u8>().is_err() {
        return Err(format!("component {:?} is not a number", fields[1]));
    }
    if fields[3].parse::<u32>().is_err() {
        return Err(format!("priority {:?} is not a number", fields[3]));
    }
    if fields[5].parse::<u16>().is_err() {
        return Err(format!("port {:?} is not a number", fields[5]));
    }
    if fields[6] != "typ" {
        return Err(format!("expected typ, found {:?}", fields[6]));
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=fingerprint:sha-256 AA:BB\r\na=group:BUNDLE 0 1\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:abcd\r\na=mid:0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:abcd\r\na=mid:1\r\n";

    #[test]
    fn reads_a_browser_offer() {
        let s = inspect(OFFER).expect("valid");
        assert_eq!(s.av_sections(), 2);
        assert_eq!(s.ice_ufrag.as_deref(), Some("abcd"));
        assert_eq!(
            s.media[1],
            MediaLine {
                kind: "video".to_owned(),
                port: 9
            }
        );
    }

    #[test]
    fn says_what_is_wrong() {
        assert_eq!(inspect(""), Err("empty".to_owned()));
        assert_eq!(inspect("hello"), Err("does not start with v=0".to_owned()));
        assert!(
            inspect("v=0\r\ngarbage\r\n")
                .expect_err("bad")
                .contains("<type>=<value>")
        );
        assert_eq!(
            inspect("v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"),
            Err("no audio or video section".to_owned())
        );
        let truncated = &OFFER[..OFFER.find("m=audio").expect("m") + 9];
        assert!(inspect(truncated).expect_err("bad").contains("no protocol"));
        let no_ufrag = OFFER.replace("a=ice-ufrag:abcd\r\n", "");
        assert_eq!(inspect(&no_ufrag), Err("no a=ice-ufrag".to_owned()));
        let no_fingerprint = OFFER.replace("a=fingerprint:sha-256 AA:BB\r\n", "");
        assert!(
            inspect(&no_fingerprint)
                .expect_err("bad")
                .contains("fingerprint")
        );
    }

    #[test]
    fn candidates() {
        let host = "candidate:842163049 1 udp 1677729535 192.0.2.7 50000 typ host generation 0";
        assert_eq!(candidate(host), Ok(Some(host)));
        assert_eq!(candidate(&format!("a={host}")), Ok(Some(host)));
        let mdns = "candidate:1 1 UDP 2122262783 1f4712db-ea17-4bcf-a596-105139dfd8bf.local 54400 typ host";
        assert_eq!(candidate(mdns), Ok(Some(mdns)));
        assert_eq!(candidate(""), Ok(None));
        assert!(candidate("garbage").is_err());
        assert!(candidate("candidate:1 1 udp").is_err());
        assert!(candidate("candidate:1 x udp 1 192.0.2.7 5 typ host").is_err());
        assert!(candidate("candidate:1 1 udp 1 192.0.2.7 port typ host").is_err());
        assert!(candidate("candidate:1 1 udp 1 192.0.2.7 5 type host").is_err());
    }
}
