//! A synthetic member of a Janus VideoRoom, for the side-by-side benchmark.

use std::net::IpAddr;

use anyhow::{Result, bail};

use crate::confgate::JoinOptions;
use crate::peer::Sink;

/// A member in a VideoRoom. Dropping it leaves.
pub struct Member {}

impl Member {
    /// Its connections are up (ICE and DTLS).
    pub async fn connected(&self) -> bool {
        false
    }
}

/// Joins VideoRoom `room` of the Janus at `url` (made when missing) as `name`.
pub async fn join(
    url: &str,
    room: u64,
    name: &str,
    publish: bool,
    options: &JoinOptions,
    sink: Sink,
) -> Result<Member> {
    let _: (IpAddr, Sink) = (options.bind_ip, sink);
    bail!("Janus members are not implemented yet ({url}, room {room}, {name}, publish {publish})")
}
