//! Tenant names: the one identifier a tenant has everywhere (Linux user, hostname, SSH user,
//! container name suffix, folder under `users/`), so the rule is the intersection of all of them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The naming rule, printed with every rejected name.
pub const NAME_RULE: &str = "names are 1-32 chars of a-z, 0-9 and '-', start with a letter, \
                             do not end with '-', and are not a system account name";

/// Names taken by system accounts in the workspace image or by hostel itself.
const RESERVED: &[&str] = &[
    "root",
    "daemon",
    "bin",
    "sys",
    "sync",
    "games",
    "man",
    "lp",
    "mail",
    "news",
    "uucp",
    "proxy",
    "www-data",
    "backup",
    "list",
    "irc",
    "gnats",
    "nobody",
    "systemd-network",
    "systemd-resolve",
    "messagebus",
    "sshd",
    "admin",
    "hostel",
    "sudo",
    "staff",
    "users",
];

/// A validated tenant name; build it with [`str::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantName(String);

/// Why a tenant name was refused; keeps the input that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tenant {name:?}: {reason}; {NAME_RULE}")]
pub struct NameError {
    /// The rejected input.
    pub name: String,
    /// What in particular was wrong.
    pub reason: &'static str,
}

impl TenantName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TenantName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| {
            Err(NameError {
                name: s.to_owned(),
                reason,
            })
        };
        if s.is_empty() {
            return fail("empty name");
        }
        if s.len() > 32 {
            return fail("longer than 32 chars");
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            return fail("does not start with a lowercase letter");
        }
        if s.ends_with('-') {
            return fail("ends with '-'");
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return fail("has a char other than a-z, 0-9, '-'");
        }
        if RESERVED.contains(&s) {
            return fail("is a reserved system name");
        }
        Ok(TenantName(s.to_owned()))
    }
}

impl TryFrom<String> for TenantName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TenantName> for String {
    fn from(n: TenantName) -> String {
        n.0
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_typical_names() {
        for ok in [
            "a",
            "alice",
            "client-01",
            "agent77",
            "a".repeat(32).as_str(),
        ] {
            assert_eq!(ok.parse::<TenantName>().map(|n| n.0), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn refuses_with_the_reason() {
        let cases = [
            ("", "empty name"),
            ("Bob_1", "does not start with a lowercase letter"),
            ("bob_1", "has a char other than a-z, 0-9, '-'"),
            ("1bob", "does not start with a lowercase letter"),
            ("bob-", "ends with '-'"),
            ("root", "is a reserved system name"),
            ("../etc", "does not start with a lowercase letter"),
        ];
        for (input, reason) in cases {
            assert_eq!(
                input.parse::<TenantName>(),
                Err(NameError {
                    name: input.to_owned(),
                    reason
                })
            );
        }
        let long = "a".repeat(33);
        assert_eq!(
            long.parse::<TenantName>().map_err(|e| e.reason),
            Err("longer than 32 chars")
        );
    }

    #[test]
    fn message_prints_the_rule() {
        let err = "Bob_1".parse::<TenantName>().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("tenant \"Bob_1\": does not start with a lowercase letter; {NAME_RULE}")
        );
    }

    proptest! {
        #[test]
        fn valid_names_round_trip(s in "[a-z][a-z0-9-]{0,30}[a-z0-9]") {
            prop_assume!(!RESERVED.contains(&s.as_str()));
            let n: TenantName = s.parse().unwrap();
            prop_assert_eq!(n.as_str(), s.as_str());
        }

        #[test]
        fn accepted_names_are_safe_everywhere(s in "\\PC{0,40}") {
            if let Ok(n) = s.parse::<TenantName>() {
                let n = n.as_str();
                prop_assert!(n.len() <= 32);
                prop_assert!(!n.contains('/') && !n.contains('.') && !n.contains(' '));
                prop_assert!(n.is_ascii());
            }
        }
    }
}
