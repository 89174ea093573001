#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| interstice_runtime::net::fuzzing::frames(data));
