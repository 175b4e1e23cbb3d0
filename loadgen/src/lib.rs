//! The load generator's parts, shared by its binary and by tests: synthetic members of confgate
//! ([`confgate`]), of a Janus VideoRoom ([`janus`]) and viewers of Janus Streaming mountpoints
//! ([`janus_streaming`]) on webrtc-rs connections ([`peer`]), received on rtc's sans-I/O core by default ([`rx`]), receiving and sending stamped
//! synthetic media ([`payload`]), a synthetic MCU that confgate calls over SIP and that sends
//! plain RTP ([`mcu`]), and what is counted ([`metrics`]).

pub mod confgate;
pub mod janus;
pub mod janus_streaming;
pub mod mcu;
pub mod metrics;
pub mod payload;
pub mod peer;
pub mod rx;
pub mod ws;
