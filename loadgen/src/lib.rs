//! The load generator's parts, shared by its binary and by tests: synthetic members of confgate
//! ([`confgate`]) and of a Janus VideoRoom ([`janus`]) on webrtc-rs connections ([`peer`])
//! sending stamped synthetic media ([`payload`]), and what is counted ([`metrics`]).

pub mod confgate;
pub mod janus;
pub mod metrics;
pub mod payload;
pub mod peer;
pub mod ws;
