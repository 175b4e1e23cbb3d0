//! Which peer connection a datagram on the shared UDP port belongs to.
//!
//! A media loop serves every peer connection of its conferences on one socket, so each datagram
//! has to be handed to the right `RTCPeerConnection` before rtc sees it:
//!
//! 1. STUN binding requests carry `USERNAME = <our ufrag>:<their ufrag>` (RFC 8445 §7.2.2). The
//!    server chose every local ufrag itself and keeps them unique per loop, so the part before
//!    `:` names the connection. Such a request also teaches us the sender's address.
//! 2. Everything else (DTLS, SRTP, SRTCP, and the STUN *responses* to rtc's own triggered checks,
//!    which carry no USERNAME) is routed by the remote address learned in step 1.
//!
//! The address is learned from the request before rtc has checked its MESSAGE-INTEGRITY: a
//! forged request could at worst point one address at another connection of the same loop,
//! whose rtc then fails the integrity check and drops whatever arrives. A browser only ever
//! talks to us from addresses it proved in an integrity-checked request, so this costs nothing
//! in the common case and keeps the decision here pure.

use std::collections::HashMap;
use std::net::SocketAddr;

/// What the first byte of a datagram says it is (RFC 7983 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PacketClass {
    Stun,
    Dtls,
    /// RTP or RTCP (SRTP/SRTCP on the wire).
    Media,
    Unknown,
}

pub(crate) fn classify(datagram: &[u8]) -> PacketClass {
    match datagram.first() {
        Some(0..=3) => PacketClass::Stun,
        Some(20..=63) => PacketClass::Dtls,
        Some(128..=191) => PacketClass::Media,
        _ => PacketClass::Unknown,
    }
}

const STUN_HEADER_LEN: usize = 20;
const STUN_MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const STUN_ATTR_USERNAME: u16 = 0x0006;
/// STUN binding request: method 0x001, class request.
const STUN_BINDING_REQUEST: u16 = 0x0001;

/// The local ufrag named by a STUN binding request, without allocating.
///
/// Returns `None` for anything that is not a well-formed binding request with a USERNAME: the
/// caller then falls back to the sender's address.
pub(crate) fn stun_local_ufrag(datagram: &[u8]) -> Option<&str> {
    if datagram.len() < STUN_HEADER_LEN || datagram[4..8] != STUN_MAGIC_COOKIE {
        return None;
    }
    let message_type = u16::from_be_bytes([datagram[0], datagram[1]]);
    if message_type != STUN_BINDING_REQUEST {
        return None;
    }
    let body_len = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let body = datagram.get(STUN_HEADER_LEN..STUN_HEADER_LEN + body_len)?;
    let mut rest = body;
    while rest.len() >= 4 {
        let attr_type = u16::from_be_bytes([rest[0], rest[1]]);
        let attr_len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let value = rest.get(4..4 + attr_len)?;
        if attr_type == STUN_ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            let local = username.split(':').next()?;
            return (!local.is_empty()).then_some(local);
        }
        let padded = (attr_len + 3) & !3;
        rest = rest.get(4 + padded..)?;
    }
    None
}

/// Why a datagram reached no peer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unrouted {
    /// Not STUN, DTLS or RTP/RTCP.
    NotWebRtc,
    /// A STUN request naming a ufrag this loop never issued.
    UnknownUfrag,
    /// From an address no STUN request has come from.
    UnknownAddress,
}

/// The demultiplexing table of one media loop. `K` is the loop's peer key.
#[derive(Debug)]
pub(crate) struct Demux<K> {
    by_ufrag: HashMap<String, K>,
    by_addr: HashMap<SocketAddr, K>,
}

impl<K: Copy + PartialEq> Demux<K> {
    pub(crate) fn new() -> Self {
        Demux {
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
        }
    }

    /// Whether `ufrag` is free to be issued to a new connection.
    pub(crate) fn ufrag_free(&self, ufrag: &str) -> bool {
        !self.by_ufrag.contains_key(ufrag)
    }

    pub(crate) fn add_ufrag(&mut self, ufrag: String, key: K) {
        self.by_ufrag.insert(ufrag, key);
    }

    /// Forgets a connection: its ufrag and every address learned for it.
    pub(crate) fn remove(&mut self, ufrag: &str, key: K) {
        if self.by_ufrag.get(ufrag) == Some(&key) {
            self.by_ufrag.remove(ufrag);
        }
        self.by_addr.retain(|_, k| *k != key);
    }

    /// The connection `datagram` from `from` belongs to. A STUN request naming a known ufrag
    /// also (re)binds `from` to that connection, which follows a NAT rebinding or a browser
    /// that re-subscribed from a new port.
    pub(crate) fn route(&mut self, datagram: &[u8], from: SocketAddr) -> Result<K, Unrouted> {
        match classify(datagram) {
            PacketClass::Unknown => Err(Unrouted::NotWebRtc),
            PacketClass::Stun => match stun_local_ufrag(datagram) {
                Some(ufrag) => {
                    let key = *self.by_ufrag.get(ufrag).ok_or(Unrouted::UnknownUfrag)?;
                    if self.by_addr.get(&from) != Some(&key) {
                        self.by_addr.insert(from, key);
                    }
                    Ok(key)
                }
                None => self.by_address(from),
            },
            PacketClass::Dtls | PacketClass::Media => self.by_address(from),
        }
    }

    fn by_address(&self, from: SocketAddr) -> Result<K, Unrouted> {
        self.by_addr
            .get(&from)
            .copied()
            .ok_or(Unrouted::UnknownAddress)
    }

    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.by_addr.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &str) -> Vec<u8> {
        let mut attrs = Vec::new();
        // A PRIORITY attribute first, so the walk has to skip one.
        attrs.extend_from_slice(&0x0024u16.to_be_bytes());
        attrs.extend_from_slice(&4u16.to_be_bytes());
        attrs.extend_from_slice(&[1, 2, 3, 4]);
        attrs.extend_from_slice(&STUN_ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username.as_bytes());
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut msg = Vec::new();
        msg.extend_from_slice(&STUN_BINDING_REQUEST.to_be_bytes());
        msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        msg.extend_from_slice(&STUN_MAGIC_COOKIE);
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&attrs);
        msg
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn classifies_by_first_byte() {
        assert_eq!(classify(&[0, 1]), PacketClass::Stun);
        assert_eq!(classify(&[22, 254, 253]), PacketClass::Dtls);
        assert_eq!(classify(&[0x80, 96]), PacketClass::Media);
        assert_eq!(classify(&[0x90, 200]), PacketClass::Media);
        assert_eq!(classify(&[]), PacketClass::Unknown);
        assert_eq!(classify(&[255]), PacketClass::Unknown);
        assert_eq!(classify(&[64]), PacketClass::Unknown);
    }

    #[test]
    fn reads_the_local_part_of_username() {
        let msg = binding_request("srvufrag:browser");
        assert_eq!(stun_local_ufrag(&msg), Some("srvufrag"));
    }

    #[test]
    fn rejects_truncated_or_foreign_stun() {
        let msg = binding_request("srvufrag:browser");
        for cut in 0..msg.len() {
            // Every prefix is either rejected or still names the same ufrag; none panics.
            let got = stun_local_ufrag(&msg[..cut]);
            assert!(got.is_none() || got == Some("srvufrag"));
        }
        let mut response = msg.clone();
        response[0..2].copy_from_slice(&0x0101u16.to_be_bytes());
        assert_eq!(stun_local_ufrag(&response), None);
        let mut no_cookie = msg.clone();
        no_cookie[4] = 0;
        assert_eq!(stun_local_ufrag(&no_cookie), None);
        assert_eq!(stun_local_ufrag(&binding_request(":x")), None);
    }

    #[test]
    fn learns_addresses_from_requests_and_routes_the_rest_by_them() {
        let mut demux = Demux::new();
        demux.add_ufrag("aaaa".to_owned(), 1u32);
        demux.add_ufrag("bbbb".to_owned(), 2u32);
        let dtls = [22u8, 254, 253, 0];
        assert_eq!(
            demux.route(&dtls, addr(5000)),
            Err(Unrouted::UnknownAddress)
        );
        assert_eq!(demux.route(&binding_request("aaaa:x"), addr(5000)), Ok(1));
        assert_eq!(demux.route(&binding_request("bbbb:y"), addr(6000)), Ok(2));
        assert_eq!(demux.route(&dtls, addr(5000)), Ok(1));
        assert_eq!(demux.route(&[0x80, 96, 0, 1], addr(6000)), Ok(2));
        // A STUN response (no USERNAME) goes by address.
        let mut response = binding_request("aaaa:x");
        response[0..2].copy_from_slice(&0x0101u16.to_be_bytes());
        assert_eq!(demux.route(&response, addr(5000)), Ok(1));
        assert_eq!(
            demux.route(&binding_request("zzzz:x"), addr(7000)),
            Err(Unrouted::UnknownUfrag)
        );
        assert_eq!(demux.route(&[255, 0], addr(5000)), Err(Unrouted::NotWebRtc));
    }

    #[test]
    fn rebinds_an_address_and_forgets_removed_connections() {
        let mut demux = Demux::new();
        demux.add_ufrag("aaaa".to_owned(), 1u32);
        demux.add_ufrag("bbbb".to_owned(), 2u32);
        assert_eq!(demux.route(&binding_request("aaaa:x"), addr(5000)), Ok(1));
        assert_eq!(demux.route(&binding_request("aaaa:x"), addr(5001)), Ok(1));
        // The same address now proves another connection: it moves.
        assert_eq!(demux.route(&binding_request("bbbb:x"), addr(5000)), Ok(2));
        assert_eq!(demux.route(&[22], addr(5000)), Ok(2));
        demux.remove("aaaa", 1);
        assert!(demux.ufrag_free("aaaa"));
        assert!(!demux.ufrag_free("bbbb"));
        assert_eq!(demux.addresses(), 1);
        assert_eq!(
            demux.route(&[22], addr(5001)),
            Err(Unrouted::UnknownAddress)
        );
    }
}
