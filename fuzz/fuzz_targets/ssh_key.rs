//! SSH public keys (`--key`, API bodies): a key that parses has a fingerprint and prints as a
//! line that parses to the same key.
#![no_main]
use hostel_core::SshPublicKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(key) = input.parse::<SshPublicKey>() {
        assert!(key.fingerprint().starts_with("SHA256:"));
        let again: SshPublicKey = key.to_openssh().parse().expect("a printed key parses");
        assert_eq!(again.fingerprint(), key.fingerprint());
    }
});
