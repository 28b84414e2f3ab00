//! SSH env and pty requests: what is accepted is one plain `NAME=value` and a plain terminal
//! type.
#![no_main]
use hostel_core::config::SshConfig;
use hostel_core::session::{env_entry, pty_term};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str, u8, bool)| {
    let (name, value, set, open) = input;
    let mut cfg = SshConfig::default();
    if open {
        cfg.accept_env = vec!["*".to_owned()];
    }
    if let Some(entry) = env_entry(&cfg, usize::from(set), name, value) {
        assert_eq!(entry.split_once('='), Some((name, value)));
        assert!(!entry.contains('\0'));
    }
    let term = pty_term(name);
    assert!(term.len() <= 64 && !term.contains(['\n', '\0', ' ', '/']));
});
