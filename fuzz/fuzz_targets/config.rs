//! hostel.toml: any text loads or is refused with a message, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Err(e) = hostel_core::config::Config::from_toml(input) {
        assert!(!e.message.is_empty());
    }
});
