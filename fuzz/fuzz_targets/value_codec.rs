#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| interstice_abi::fuzzing::value_codec(data));
