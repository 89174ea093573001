#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| interstice_abi::fuzzing::module_schema(data));
