//! SIP bytes from the network; the properties are
//! `confgate_signalling::fuzzing::sip_bytes`, which the signalling tests also
//! run on the seeds and on generated inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confgate_signalling::fuzzing::sip_bytes(data));
