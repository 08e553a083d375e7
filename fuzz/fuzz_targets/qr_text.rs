#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyri::fuzzing::qr_text(data));
