//! SDP bodies from the MCU; the properties are
//! `confgate_signalling::fuzzing::sdp_body`, which the signalling tests also
//! run on the seeds and on generated inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confgate_signalling::fuzzing::sdp_body(data));
