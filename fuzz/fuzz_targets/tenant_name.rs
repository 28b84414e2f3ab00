//! Tenant names (every gateway and the CLI parse them): a name that parses prints as given.
#![no_main]
use hostel_core::TenantName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(name) = input.parse::<TenantName>() {
        assert_eq!(name.as_str(), input);
        assert!(name.as_str().len() <= 32);
    }
});
