//! Durations (`--ttl`, `--idle-stop`, ban lengths, `audit --since`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(d) = hostel_core::policy::parse_duration(input) {
        assert!(d >= chrono::Duration::zero());
    }
});
