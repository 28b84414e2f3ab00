//! Stable error codes shared by the CLI, the HTTP API and the SSH gateway.

use serde::Serialize;

/// A stable, machine-readable error class. Docs and tests key on these, never on prose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The input broke a rule (name, key, size, quota, flag).
    InvalidInput,
    /// The tenant, key or image does not exist.
    NotFound,
    /// The object exists already, is in use, or is in the wrong state.
    Conflict,
    /// The container engine (or daemon) does not answer.
    EngineUnreachable,
    /// The operation needs something the host lacks: a tool, space.
    Unavailable,
    /// The caller lacks the rights (not root, a viewer token writing).
    PermissionDenied,
    /// The caller did not prove who it is (no, wrong or revoked token).
    Unauthenticated,
    /// Anything else; the detail is logged.
    Internal,
}

impl ErrorCode {
    /// The snake_case name used on the wire and in docs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::EngineUnreachable => "engine_unreachable",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Internal => "internal",
        }
    }

    /// The code named `name` on the wire, if it is one.
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        [
            ErrorCode::InvalidInput,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::EngineUnreachable,
            ErrorCode::Unavailable,
            ErrorCode::PermissionDenied,
            ErrorCode::Unauthenticated,
            ErrorCode::Internal,
        ]
        .into_iter()
        .find(|c| c.as_str() == name)
    }

    /// The process exit status the CLI uses for this code (documented in docs/cli.md).
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorCode::InvalidInput => 2,
            ErrorCode::NotFound => 3,
            ErrorCode::Conflict => 4,
            ErrorCode::EngineUnreachable => 5,
            ErrorCode::Unavailable
            | ErrorCode::PermissionDenied
            | ErrorCode::Unauthenticated
            | ErrorCode::Internal => 1,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_documented_table() {
        let table = [
            (ErrorCode::InvalidInput, "invalid_input", 2),
            (ErrorCode::NotFound, "not_found", 3),
            (ErrorCode::Conflict, "conflict", 4),
            (ErrorCode::EngineUnreachable, "engine_unreachable", 5),
            (ErrorCode::Unavailable, "unavailable", 1),
            (ErrorCode::PermissionDenied, "permission_denied", 1),
            (ErrorCode::Unauthenticated, "unauthenticated", 1),
            (ErrorCode::Internal, "internal", 1),
        ];
        for (code, name, exit) in table {
            assert_eq!((code.as_str(), code.exit_code()), (name, exit));
            assert_eq!(ErrorCode::from_name(name), Some(code));
        }
        assert_eq!(ErrorCode::from_name("teapot"), None);
    }
}
