//! confgate's media plane.
//!
//! This crate will hold the WebRTC peers (webrtc-rs's sans-I/O core `rtc`),
//! the RTP router, main-video and active-speaker choice, and the plain-RTP
//! bridge to an MCU. It knows nothing of HTTP, tokens or databases: the
//! control plane talks to it through plain-data commands and events.
//!
//! Today it owns the media section of the configuration, so that the address
//! plan (one UDP port per media loop, announced addresses for 1:1 NAT) is
//! fixed and validated from the first release.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The `[media]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// The UDP port of the first media loop; loop `n` uses `udp_port + n`.
    /// Default 40000.
    pub udp_port: u16,
    /// Addresses announced as host candidates, for a server behind 1:1 NAT.
    /// Default: the addresses of the interfaces.
    pub announced_ips: Vec<IpAddr>,
    /// Number of media loops; 0 means one per core. Default 0.
    pub loops: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            udp_port: 40000,
            announced_ips: Vec::new(),
            loops: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaConfigError {
    #[error("udp_port must be above 0")]
    ZeroPort,
    #[error("udp_port {port} + {loops} loops runs past port 65535")]
    PortRange { port: u16, loops: usize },
    #[error("announced_ips must not contain unspecified addresses like {0}")]
    Unspecified(IpAddr),
}

impl MediaConfig {
    pub fn validate(&self) -> Result<(), MediaConfigError> {
        if self.udp_port == 0 {
            return Err(MediaConfigError::ZeroPort);
        }
        if usize::from(self.udp_port) + self.loops.max(1) - 1 > usize::from(u16::MAX) {
            return Err(MediaConfigError::PortRange {
                port: self.udp_port,
                loops: self.loops,
            });
        }
        if let Some(ip) = self.announced_ips.iter().find(|ip| ip.is_unspecified()) {
            return Err(MediaConfigError::Unspecified(*ip));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(MediaConfig::default().validate(), Ok(()));
    }

    #[test]
    fn rejects_bad_plans() {
        let zero = MediaConfig {
            udp_port: 0,
            ..MediaConfig::default()
        };
        assert_eq!(zero.validate(), Err(MediaConfigError::ZeroPort));
        let past = MediaConfig {
            udp_port: 65535,
            loops: 2,
            ..MediaConfig::default()
        };
        assert!(matches!(
            past.validate(),
            Err(MediaConfigError::PortRange { .. })
        ));
        let any = MediaConfig {
            announced_ips: vec!["0.0.0.0".parse().expect("ip")],
            ..MediaConfig::default()
        };
        assert!(matches!(
            any.validate(),
            Err(MediaConfigError::Unspecified(_))
        ));
    }
}
