#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| protofuse_legacy::fuzzing::decode(data));
