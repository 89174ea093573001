#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| interstice_store::fuzzing::recover_log(data));
