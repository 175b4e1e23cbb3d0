//! Outgoing SRTP for forwarded media, sealed straight into the datagram that leaves.
//!
//! rtc encrypts each RTP packet written to a connection after it has crossed the connection's
//! interceptor chain, ICE and a fresh buffer; for a forwarded copy that walk costs more than
//! the encryption itself. A subscribe connection therefore seals its copies here, into the
//! send batch's buffer, with the same keys rtc derived from the DTLS handshake.
//!
//! rtc keeps those keys to itself, but it derives them through the crypto provider it is
//! given. [`KeyTap`] is that provider: it passes every operation to rtc's default one and
//! notes the first SRTP key derivation, which is the local context's (rtc builds the local
//! context before the remote one, and nothing else in rtc uses a raw block cipher). The keys
//! it reads are checked against rtc's own SRTP context in this module's tests.
//!
//! Profiles: AEAD-AES-128-GCM, AEAD-AES-256-GCM (RFC 7714) and AES-CM-128 with an 80-bit
//! HMAC-SHA1 tag (RFC 3711), the three a connection offers.

use std::sync::{Arc, Mutex};

use rtc::crypto::{ActiveKeyExchange, default_provider};
use rtc::crypto::{
    AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, CbcAlgorithm, CbcCipher, CryptoAlgorithm,
    CryptoError, HashAlgorithm, HmacAlgorithm, KeyExchangeAlgorithm, Mac, PublicKey, RTCCrypto,
    RTCCryptoProvider, RTCRandom, SignatureScheme, SigningKey, StreamCipher, StreamCipherAlgorithm,
};

/// The SRTP master key and salt of one direction, and the profile they are for.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct MasterKeys {
    pub(crate) profile: Profile,
    pub(crate) key: Vec<u8>,
    pub(crate) salt: Vec<u8>,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key material.
        f.debug_struct("MasterKeys")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    AeadAes128Gcm,
    AeadAes256Gcm,
    Aes128CmHmacSha1_80,
}

impl Profile {
    fn salt_len(self) -> usize {
        match self {
            Profile::AeadAes128Gcm | Profile::AeadAes256Gcm => 12,
            Profile::Aes128CmHmacSha1_80 => 14,
        }
    }

    /// The bytes a sealed packet grows by.
    #[cfg(test)]
    fn tag_len(self) -> usize {
        match self {
            Profile::AeadAes128Gcm | Profile::AeadAes256Gcm => 16,
            Profile::Aes128CmHmacSha1_80 => 10,
        }
    }
}

/// What [`KeyTap`] saw of the first SRTP key derivation.
#[derive(Default)]
struct Tapped {
    /// The master key and the first key-derivation input (the master salt, zero-padded).
    first: Option<(Vec<u8>, [u8; 16])>,
    /// The cipher the context built right after it: tells the profile.
    profile: Option<Profile>,
}

/// A crypto provider that is rtc's default one, and notes the local SRTP master keys of the
/// connection it is given to. One per connection.
pub(crate) struct KeyTap {
    inner: Arc<dyn RTCCryptoProvider>,
    tapped: Mutex<Tapped>,
}

impl KeyTap {
    pub(crate) fn new() -> Result<Arc<KeyTap>, CryptoError> {
        Ok(Arc::new(KeyTap {
            inner: default_provider()?,
            tapped: Mutex::new(Tapped::default()),
        }))
    }

    /// The local master keys, once the DTLS handshake has made the SRTP contexts.
    pub(crate) fn local_keys(&self) -> Option<MasterKeys> {
        let tapped = self.tapped.lock().ok()?;
        let (key, block) = tapped.first.as_ref()?;
        let profile = tapped.profile?;
        Some(MasterKeys {
            profile,
            key: key.clone(),
            salt: block[..profile.salt_len()].to_vec(),
        })
    }

    fn note_cipher(&self, profile: Profile) {
        if let Ok(mut tapped) = self.tapped.lock()
            && tapped.first.is_some()
            && tapped.profile.is_none()
        {
            tapped.profile = Some(profile);
        }
    }
}

impl RTCCryptoProvider for KeyTap {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn crypto(&self) -> &dyn RTCCrypto {
        self
    }

    fn random(&self) -> &dyn RTCRandom {
        self.inner.random()
    }
}

impl RTCCrypto for KeyTap {
    fn supports(&self, algorithm: CryptoAlgorithm) -> bool {
        self.inner.crypto().supports(algorithm)
    }

    fn hash(&self, algorithm: HashAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.crypto().hash(algorithm, data)
    }

    fn block_encrypt(
        &self,
        algorithm: BlockCipherAlgorithm,
        key: &[u8],
        block: &mut [u8],
    ) -> Result<(), CryptoError> {
        if let Ok(mut tapped) = self.tapped.lock()
            && tapped.first.is_none()
            && let Ok(input) = <[u8; 16]>::try_from(&*block)
        {
            tapped.first = Some((key.to_vec(), input));
        }
        self.inner.crypto().block_encrypt(algorithm, key, block)
    }

    fn new_hmac(&self, algorithm: HmacAlgorithm, key: &[u8]) -> Result<Box<dyn Mac>, CryptoError> {
        self.inner.crypto().new_hmac(algorithm, key)
    }

    fn new_stream_cipher(
        &self,
        algorithm: StreamCipherAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn StreamCipher>, CryptoError> {
        if algorithm == StreamCipherAlgorithm::Aes128Ctr {
            self.note_cipher(Profile::Aes128CmHmacSha1_80);
        }
        self.inner.crypto().new_stream_cipher(algorithm, key)
    }

    fn new_aead(
        &self,
        algorithm: AeadAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn AeadCipher>, CryptoError> {
        match algorithm {
            AeadAlgorithm::Aes128Gcm => self.note_cipher(Profile::AeadAes128Gcm),
            AeadAlgorithm::Aes256Gcm => self.note_cipher(Profile::AeadAes256Gcm),
            _ => {}
        }
        self.inner.crypto().new_aead(algorithm, key)
    }

    fn new_cbc(
        &self,
        algorithm: CbcAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn CbcCipher>, CryptoError> {
        self.inner.crypto().new_cbc(algorithm, key)
    }

    fn start_key_exchange(
        &self,
        algorithm: KeyExchangeAlgorithm,
    ) -> Result<Box<dyn ActiveKeyExchange>, CryptoError> {
        self.inner.crypto().start_key_exchange(algorithm)
    }

    fn generate_signing_key(
        &self,
        scheme: SignatureScheme,
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().generate_signing_key(scheme)
    }

    fn import_signing_key(
        &self,
        scheme: SignatureScheme,
        pkcs8_der: &[u8],
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().import_signing_key(scheme, pkcs8_der)
    }

    fn verify_signature(
        &self,
        scheme: SignatureScheme,
        public_key: PublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.inner
            .crypto()
            .verify_signature(scheme, public_key, message, signature)
    }
}

/// RFC 3711 key-derivation labels.
const LABEL_ENCRYPTION: u8 = 0x00;
const LABEL_AUTHENTICATION: u8 = 0x01;
const LABEL_SALT: u8 = 0x02;

/// The AES-CM PRF of RFC 3711 §4.3.3 (key derivation rate 0), as RFC 5764 and RFC 7714 use it.
fn derive(
    crypto: &dyn RTCCrypto,
    keys: &MasterKeys,
    label: u8,
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let algorithm = if keys.key.len() == 32 {
        BlockCipherAlgorithm::Aes256
    } else {
        BlockCipherAlgorithm::Aes128
    };
    let mut input = [0u8; 16];
    input[..keys.salt.len()].copy_from_slice(&keys.salt);
    input[7] ^= label;
    for (i, chunk) in out.chunks_mut(16).enumerate() {
        let mut block = input;
        block[14..].copy_from_slice(&(i as u16).to_be_bytes());
        crypto.block_encrypt(algorithm, &keys.key, &mut block)?;
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    Ok(())
}

enum Cipher {
    Gcm(Box<dyn AeadCipher>),
    Cm {
        ctr: Box<dyn StreamCipher>,
        mac: Box<dyn Mac>,
    },
}

/// Seals RTP packets of one connection's outgoing direction in place.
pub(crate) struct Sealer {
    profile: Profile,
    cipher: Cipher,
    /// The session salt (12 or 14 bytes).
    salt: [u8; 14],
}

impl Sealer {
    pub(crate) fn new(crypto: &dyn RTCCrypto, keys: &MasterKeys) -> Result<Sealer, CryptoError> {
        let mut session_key = vec![0u8; keys.key.len()];
        derive(crypto, keys, LABEL_ENCRYPTION, &mut session_key)?;
        let mut salt = [0u8; 14];
        derive(
            crypto,
            keys,
            LABEL_SALT,
            &mut salt[..keys.profile.salt_len()],
        )?;
        let cipher = match keys.profile {
            Profile::AeadAes128Gcm => {
                Cipher::Gcm(crypto.new_aead(AeadAlgorithm::Aes128Gcm, &session_key)?)
            }
            Profile::AeadAes256Gcm => {
                Cipher::Gcm(crypto.new_aead(AeadAlgorithm::Aes256Gcm, &session_key)?)
            }
            Profile::Aes128CmHmacSha1_80 => {
                let mut auth_key = [0u8; 20];
                derive(crypto, keys, LABEL_AUTHENTICATION, &mut auth_key)?;
                Cipher::Cm {
                    ctr: crypto
                        .new_stream_cipher(StreamCipherAlgorithm::Aes128Ctr, &session_key)?,
                    mac: crypto.new_hmac(HmacAlgorithm::Sha1, &auth_key)?,
                }
            }
        };
        Ok(Sealer {
            profile: keys.profile,
            cipher,
            salt,
        })
    }

    pub(crate) fn profile(&self) -> Profile {
        self.profile
    }

    /// Encrypts the RTP packet in `packet` (its header is the first `header_len` bytes) as
    /// packet `index` (ROC × 2^16 + sequence number) of its SSRC, and appends the tag.
    pub(crate) fn seal(
        &mut self,
        packet: &mut bytes::BytesMut,
        header_len: usize,
        index: u64,
    ) -> Result<(), CryptoError> {
        if packet.len() < 12 || header_len > packet.len() {
            return Err(CryptoError::Provider("not an RTP packet".into()));
        }
        let ssrc = [packet[8], packet[9], packet[10], packet[11]];
        let roc = ((index >> 16) as u32).to_be_bytes();
        let seq = (index as u16).to_be_bytes();
        match &mut self.cipher {
            Cipher::Gcm(aead) => {
                // RFC 7714 §8.1: 00 00 || SSRC || ROC || SEQ, XOR the salt.
                let mut nonce = [0u8; 12];
                nonce[2..6].copy_from_slice(&ssrc);
                nonce[6..10].copy_from_slice(&roc);
                nonce[10..12].copy_from_slice(&seq);
                for (n, s) in nonce.iter_mut().zip(&self.salt) {
                    *n ^= s;
                }
                let mut tag = [0u8; 16];
                let (aad, payload) = packet.split_at_mut(header_len);
                aead.seal_in_place(&nonce, aad, payload, &mut tag)?;
                packet.extend_from_slice(&tag);
            }
            Cipher::Cm { ctr, mac } => {
                // RFC 3711 §4.1.1: salt × 2^16 XOR SSRC × 2^64 XOR index × 2^16.
                let mut iv = [0u8; 16];
                iv[4..8].copy_from_slice(&ssrc);
                iv[8..12].copy_from_slice(&roc);
                iv[12..14].copy_from_slice(&seq);
                for (v, s) in iv.iter_mut().zip(&self.salt) {
                    *v ^= s;
                }
                ctr.apply_keystream(&iv, &mut packet[header_len..])?;
                let mut tag = [0u8; 20];
                mac.sign(&[&packet[..], &roc], &mut tag)?;
                packet.extend_from_slice(&tag[..10]);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use rtc::shared::marshal::{Marshal, MarshalSize};
    use rtc::srtp::context::Context;
    use rtc::srtp::protection_profile::ProtectionProfile;

    fn rtc_profile(profile: Profile) -> ProtectionProfile {
        match profile {
            Profile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
            Profile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
            Profile::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        }
    }

    fn keys(profile: Profile, key_len: usize) -> MasterKeys {
        MasterKeys {
            profile,
            key: (0..key_len as u8)
                .map(|b| b.wrapping_mul(7) ^ 0x5a)
                .collect(),
            salt: (0..profile.salt_len() as u8).map(|b| b ^ 0xc3).collect(),
        }
    }

    const PROFILES: [(Profile, usize); 3] = [
        (Profile::AeadAes128Gcm, 16),
        (Profile::AeadAes256Gcm, 32),
        (Profile::Aes128CmHmacSha1_80, 16),
    ];

    fn packet(seq: u16, with_extension: bool) -> rtc::rtp::Packet {
        let extensions = if with_extension {
            vec![rtc::rtp::header::Extension {
                id: 3,
                payload: bytes::Bytes::from_static(&[0x12, 0x34, 0x56]),
            }]
        } else {
            Vec::new()
        };
        rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker: seq.is_multiple_of(3),
                payload_type: 96,
                sequence_number: seq,
                timestamp: 90_000 + u32::from(seq),
                ssrc: 0x1234_5678,
                extension: with_extension,
                extension_profile: if with_extension { 0xBEDE } else { 0 },
                extensions,
                ..Default::default()
            },
            payload: (0..200u16).map(|b| (b as u8) ^ (seq as u8)).collect(),
        }
    }

    /// The same bytes as rtc's own SRTP context, across a sequence-number wrap, for every
    /// profile a connection offers.
    #[test]
    fn seals_exactly_as_rtc_does() {
        let provider = default_provider().expect("provider");
        for (profile, key_len) in PROFILES {
            let keys = keys(profile, key_len);
            let mut sealer = Sealer::new(provider.crypto(), &keys).expect("sealer");
            let mut reference = Context::new(
                &keys.key,
                &keys.salt,
                rtc_profile(profile),
                None,
                None,
                provider.crypto(),
            )
            .expect("context");
            // Across the wrap: ROC 0 then 1.
            for index in 65_530u64..65_542 {
                let seq = index as u16;
                let p = packet(seq, index.is_multiple_of(2));
                let plain = p.marshal().expect("marshal");
                let want = reference.encrypt_rtp(&plain).expect("rtc encrypts");
                let mut got = BytesMut::from(&plain[..]);
                sealer
                    .seal(&mut got, p.header.marshal_size(), index)
                    .expect("sealed");
                assert_eq!(got.len(), plain.len() + profile.tag_len(), "{profile:?}");
                assert_eq!(&got[..], &want[..], "{profile:?}, packet {index}");
            }
        }
    }

    /// The tap reads the master keys an SRTP context was built with: the first derivation
    /// and the cipher it then keys.
    #[test]
    fn the_tap_reads_the_keys_of_the_first_context() {
        for (profile, key_len) in PROFILES {
            let tap = KeyTap::new().expect("tap");
            assert!(tap.local_keys().is_none(), "nothing before a context");
            let local = keys(profile, key_len);
            let mut remote = keys(profile, key_len);
            remote.key.reverse();
            for k in [&local, &remote] {
                Context::new(
                    &k.key,
                    &k.salt,
                    rtc_profile(profile),
                    None,
                    None,
                    tap.crypto(),
                )
                .expect("context");
            }
            assert_eq!(tap.local_keys(), Some(local), "{profile:?}");
        }
    }

    #[test]
    fn a_short_buffer_is_refused() {
        let provider = default_provider().expect("provider");
        let keys = keys(Profile::AeadAes128Gcm, 16);
        let mut sealer = Sealer::new(provider.crypto(), &keys).expect("sealer");
        let mut short = BytesMut::from(&[0x80u8, 96, 0, 1][..]);
        assert!(sealer.seal(&mut short, 12, 1).is_err());
        assert_eq!(&short[..], &[0x80u8, 96, 0, 1][..], "left as it was");
    }
}
