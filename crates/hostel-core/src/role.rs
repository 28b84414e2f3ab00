//! Roles of API callers and the actions they may perform.

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

    /// Whether this role may perform `action`: an admin may do everything; a viewer may read
    /// what hostel knows about tenants (metadata), never what is in a workspace, nor run or
    /// change anything there.
    pub fn may(self, action: Action) -> bool {
        match self {
            Role::Admin => true,
            Role::Viewer => action == Action::ReadMetadata,
        }
    }
}

/// What a call does, as the route that serves it declares. Roles are granted actions, never
/// HTTP methods: a WebSocket upgrade is a GET and runs commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Reads what hostel records about tenants and itself: lists, states, quotas, usage
    /// figures, public keys, images, the audit log, bans, token names.
    ReadMetadata,
    /// Reads what a tenant keeps in its workspace: files of the home.
    ReadTenantData,
    /// Runs a command in a workspace (as the tenant, who may have sudo).
    Exec,
    /// Changes anything: tenants, workspaces, keys, passwords, files, images, tokens, bans.
    Change,
}

impl Action {
    /// Every action, for tables and tests.
    pub const ALL: [Action; 4] = [
        Action::ReadMetadata,
        Action::ReadTenantData,
        Action::Exec,
        Action::Change,
    ];

    /// The name in the OpenAPI document (`x-hostel-action`) and in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ReadMetadata => "read_metadata",
            Action::ReadTenantData => "read_tenant_data",
            Action::Exec => "exec",
            Action::Change => "change",
        }
    }

    /// Whether calls doing this are audited one by one (all but metadata reads, which only
    /// their denials are).
    pub fn is_audited(self) -> bool {
        self != Action::ReadMetadata
    }
}

/// An unknown action name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("action {0:?}: actions are read_metadata, read_tenant_data, exec and change")]
pub struct ActionError(pub String);

impl FromStr for Action {
    type Err = ActionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| ActionError(s.to_owned()))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    fn roles_parse_and_viewers_only_read_metadata() {
        let grants = |role: Role| -> Vec<&str> {
            Action::ALL
                .into_iter()
                .filter(|a| role.may(*a))
                .map(Action::as_str)
                .collect()
        };
        assert_eq!(
            grants(Role::Admin),
            ["read_metadata", "read_tenant_data", "exec", "change"]
        );
        assert_eq!(grants(Role::Viewer), ["read_metadata"]);
        assert_eq!("viewer".parse::<Role>(), Ok(Role::Viewer));
        assert_eq!(
            "root".parse::<Role>().map_err(|e| e.to_string()),
            Err("role \"root\": roles are admin and viewer".to_owned())
        );
    }

    #[test]
    fn actions_round_trip_their_names() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
        }
        assert_eq!(
            "write".parse::<Action>(),
            Err(ActionError("write".to_owned()))
        );
    }
}
