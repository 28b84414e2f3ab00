//! Paths of the file API: one that is accepted stays inside the home.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(p) = hostel_service::home_path(input) {
        assert!(!p.starts_with('/'), "{p:?}");
        assert!(!p.split('/').any(|part| part == ".."), "{p:?}");
        assert!(!p.contains('\0'));
    }
});
