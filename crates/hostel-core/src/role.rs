//! Roles of API callers.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Read only.
    Viewer,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    /// Whether this role may change things.
    pub fn can_write(self) -> bool {
        self == Role::Admin
    }
}

/// An unknown role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role {0:?}: roles are admin and viewer")]
pub struct RoleError(pub String);

impl FromStr for Role {
    type Err = RoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            _ => Err(RoleError(s.to_owned())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_only_admin_writes() {
        assert_eq!("admin".parse::<Role>().map(Role::can_write), Ok(true));
        assert_eq!("viewer".parse::<Role>().map(Role::can_write), Ok(false));
        assert_eq!(
            "root".parse::<Role>().map_err(|e| e.to_string()),
            Err("role \"root\": roles are admin and viewer".to_owned())
        );
    }
}
