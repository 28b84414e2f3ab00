//! Shared datasets: host folders an admin names, mounted read-only at `/shared/<name>` in the
//! workspaces of the tenants it names (or of all). Pure rules: names, and which host paths may
//! be shared at all.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Component, Path};
use std::str::FromStr;

/// Where shares appear in a workspace.
pub const SHARE_DIR: &str = "/shared";

/// A share's name, by a tenant name's rules (1 to 32 of `a-z`, `0-9`, `-`, starting with a
/// letter, not ending with `-`, not a reserved system name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ShareName(String);

/// What is wrong with a share.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    /// A bad name.
    #[error("invalid share name {name:?}: {reason}")]
    Name {
        /// The refused name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A path hostel will not share.
    #[error("cannot share {path}: {reason}")]
    Path {
        /// The refused path.
        path: String,
        /// Why.
        reason: String,
    },
}

impl ShareName {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where the share appears in a workspace.
    pub fn target(&self) -> String {
        format!("{SHARE_DIR}/{}", self.0)
    }
}

impl FromStr for ShareName {
    type Err = ShareError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<crate::TenantName>()
            .map(|n| ShareName(n.as_str().to_owned()))
            .map_err(|e| ShareError::Name {
                name: e.name,
                reason: e.reason,
            })
    }
}

impl TryFrom<String> for ShareName {
    type Error = ShareError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ShareName> for String {
    fn from(n: ShareName) -> String {
        n.0
    }
}

impl fmt::Display for ShareName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Host trees no workspace may see, whatever an admin asks: the kernel's and devices' views,
/// the host's configuration and secrets, and boot.
const NEVER: &[&str] = &[
    "/proc", "/sys", "/dev", "/run", "/etc", "/boot", "/root", "/var/lib",
];

/// Whether `path` (absolute, with symlinks resolved) may be shared on a host whose hostel root
/// is `root` (resolved too): not the host's `/`, nothing in [`NEVER`], and neither hostel's
/// root (tenants' homes, the store, its secrets) nor anything inside it or holding it.
pub fn check_path(path: &Path, root: &Path) -> Result<(), ShareError> {
    let fail = |reason: String| {
        Err(ShareError::Path {
            path: path.display().to_string(),
            reason,
        })
    };
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return fail("give an absolute path without '..'".into());
    }
    if path.parent().is_none() {
        return fail("the host's whole filesystem".into());
    }
    if let Some(never) = NEVER.iter().find(|n| path.starts_with(n)) {
        return fail(format!("{never} is the host's own"));
    }
    if path.starts_with(root) || root.starts_with(path) {
        return fail(format!(
            "it is or holds hostel's root {} (tenants' homes, the store, secrets)",
            root.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_tenant_rules() {
        for ok in ["data", "imagenet-2024", "a"] {
            assert_eq!(
                ok.parse::<ShareName>().unwrap().target(),
                format!("/shared/{ok}")
            );
        }
        for bad in ["", "Data", "-a", "a-", "a/b", "..", "a.b", &"x".repeat(33)] {
            assert!(bad.parse::<ShareName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_folders_outside_the_host_and_hostel_are_shared() {
        let root = Path::new("/var/hostel");
        for ok in ["/srv/datasets", "/data/imagenet", "/var/cache/models"] {
            assert_eq!(check_path(Path::new(ok), root), Ok(()), "{ok}");
        }
        for bad in [
            "/",
            "relative",
            "/srv/../etc",
            "/proc/1",
            "/etc",
            "/etc/ssh",
            "/dev",
            "/run/docker.sock",
            "/var/lib/docker",
            "/var/hostel",
            "/var/hostel/users/alice/home",
            "/var",
        ] {
            assert!(check_path(Path::new(bad), root).is_err(), "{bad}");
        }
    }
}
