//! What an SSH client may ask of a session besides its command: environment variables, a
//! terminal and signals. Each comes from a client that may be hostile, so each is checked and
//! bounded before it reaches the workspace or the daemon's memory.

use crate::config::SshConfig;

/// The most environment variables one channel may set.
pub const MAX_ENV: usize = 64;
/// The longest variable name accepted.
pub const MAX_ENV_NAME: usize = 64;
/// The longest variable value accepted, in bytes.
pub const MAX_ENV_VALUE: usize = 4096;
/// The longest terminal type accepted; anything else becomes `xterm`.
pub const MAX_TERM: usize = 64;

/// The `NAME=value` entry for a client's env request, when it may be set: `set` entries are
/// already set on this channel (at most [`MAX_ENV`]), the name is a plain variable name
/// (`[A-Za-z_][A-Za-z0-9_]*`, at most [`MAX_ENV_NAME`]) that `[ssh] accept_env` allows, and the
/// value holds no NUL byte and at most [`MAX_ENV_VALUE`] bytes.
pub fn env_entry(cfg: &SshConfig, set: usize, name: &str, value: &str) -> Option<String> {
    let plain = name.len() <= MAX_ENV_NAME
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    (set < MAX_ENV
        && plain
        && cfg.accepts_env(name)
        && value.len() <= MAX_ENV_VALUE
        && !value.contains('\0'))
    .then(|| format!("{name}={value}"))
}

/// The `TERM` to give a session whose client asked for a terminal of type `term`: the type
/// when it is a plausible terminfo name (letters, digits, `.`, `_`, `+`, `-`, at most
/// [`MAX_TERM`]), else `xterm`.
pub fn pty_term(term: &str) -> &str {
    let plausible = !term.is_empty()
        && term.len() <= MAX_TERM
        && term
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'));
    if plausible { term } else { "xterm" }
}

/// A signal a session may send to its command. Only these: the ones RFC 4254 names, which
/// programs expect from a terminal or a supervisor; never a number a client picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Hang-up: the terminal went away.
    Hup,
    /// Interrupt (Ctrl-C).
    Int,
    /// Quit (Ctrl-\\).
    Quit,
    /// Kill: cannot be caught.
    Kill,
    /// Terminate: the polite end.
    Term,
    /// User-defined 1.
    Usr1,
    /// User-defined 2.
    Usr2,
    /// Alarm.
    Alrm,
    /// Broken pipe.
    Pipe,
}

impl Signal {
    /// Every signal a session may send.
    pub const ALL: [Signal; 9] = [
        Signal::Hup,
        Signal::Int,
        Signal::Quit,
        Signal::Kill,
        Signal::Term,
        Signal::Usr1,
        Signal::Usr2,
        Signal::Alrm,
        Signal::Pipe,
    ];

    /// The name SSH uses (RFC 4254 section 6.10: without `SIG`).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Hup => "HUP",
            Signal::Int => "INT",
            Signal::Quit => "QUIT",
            Signal::Kill => "KILL",
            Signal::Term => "TERM",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
            Signal::Alrm => "ALRM",
            Signal::Pipe => "PIPE",
        }
    }

    /// The signal SSH names `name` (`INT`; `SIGINT` too), if a session may send it.
    pub fn from_name(name: &str) -> Option<Signal> {
        let name = name.strip_prefix("SIG").unwrap_or(name);
        Signal::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Its number on Linux.
    pub fn number(self) -> i32 {
        match self {
            Signal::Hup => 1,
            Signal::Int => 2,
            Signal::Quit => 3,
            Signal::Kill => 9,
            Signal::Usr1 => 10,
            Signal::Usr2 => 12,
            Signal::Pipe => 13,
            Signal::Alrm => 14,
            Signal::Term => 15,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_plain_allowed_names_with_sane_values_pass() {
        let cfg = SshConfig::default();
        assert_eq!(
            env_entry(&cfg, 0, "LANG", "C.UTF-8").as_deref(),
            Some("LANG=C.UTF-8")
        );
        assert_eq!(
            env_entry(&cfg, 0, "LC_ALL", "x=y").as_deref(),
            Some("LC_ALL=x=y")
        );
        for (name, value) in [
            ("LD_PRELOAD", "/tmp/x.so"),
            ("LC_X=1", "v"),
            ("LC_\u{e9}", "v"),
            ("LANG", "a\0b"),
            ("", "v"),
            ("1LC", "v"),
        ] {
            assert_eq!(env_entry(&cfg, 0, name, value), None, "{name:?}={value:?}");
        }
        assert_eq!(
            env_entry(&cfg, 0, "LANG", &"x".repeat(MAX_ENV_VALUE + 1)),
            None
        );
        assert_eq!(
            env_entry(&cfg, MAX_ENV, "LANG", "C"),
            None,
            "the channel's share is used"
        );
    }

    #[test]
    fn odd_terminal_types_become_xterm() {
        for ok in [
            "xterm-256color",
            "screen.xterm-256color",
            "vt100",
            "rxvt-unicode+x",
        ] {
            assert_eq!(pty_term(ok), ok);
        }
        for bad in ["", "xterm\n", "../../etc/passwd", "x y", &"x".repeat(65)] {
            assert_eq!(pty_term(bad), "xterm", "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn an_accepted_entry_is_one_plain_name_and_its_value(name in ".{0,80}", value in ".{0,100}") {
            let cfg = SshConfig {
                accept_env: vec!["*".to_owned()],
                ..SshConfig::default()
            };
            if let Some(e) = env_entry(&cfg, 0, &name, &value) {
                prop_assert_eq!(e.split_once('='), Some((name.as_str(), value.as_str())));
                prop_assert!(!name.contains('='));
            }
        }
    }

    #[test]
    fn signals_go_by_their_ssh_names_and_linux_numbers() {
        for s in Signal::ALL {
            assert_eq!(Signal::from_name(s.name()), Some(s));
            assert_eq!(Signal::from_name(&s.to_string()), Some(s));
        }
        assert_eq!(Signal::Int.number(), 2);
        assert_eq!(Signal::Term.number(), 15);
        assert_eq!(Signal::Kill.to_string(), "SIGKILL");
        for refused in ["STOP", "SEGV", "9", "int", "", "SIGSIGINT"] {
            assert_eq!(Signal::from_name(refused), None, "{refused:?}");
        }
    }
}
