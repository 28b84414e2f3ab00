//! hostel's store: the source of truth for tenants and their keys, and the audit log.
//!
//! Tenants live in an embedded SQLite database in WAL mode (`state/hostel.db`), migrated on open
//! with the numbered scripts in `migrations/`. This is the only crate with SQL. The audit log
//! ([`audit::AuditLog`]) is an append-only JSON-lines file whose records chain hashes.
//!
//! The store never talks to the engine: what a workspace *is* comes from the runtime; the store
//! says what it *should be*. Every call blocks (a mutex, a disk); each steps off the async
//! executor by itself (see `blocking`). Start reading at [`Store::open`].

pub mod audit;
mod store;

pub use audit::{AuditFilter, AuditLog, AuditRecord};
pub use store::{
    Ban, KeyRecord, NewTenant, PublishedPort, ShareRecord, Store, TenantRecord, TokenRecord,
};

use hostel_core::ErrorCode;

/// Runs `work`, which blocks (SQLite behind a mutex, an fsynced append), without stalling the
/// async executor: on tokio's multi-threaded runtime the worker first hands its other tasks to
/// the rest (`block_in_place`), so a slow disk delays this call, not the SSH sessions sharing
/// the worker; elsewhere (a current-thread runtime in tests, no runtime) it runs in place.
pub fn blocking<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A tenant of that name exists (or is being made or purged).
    #[error("tenant {name:?} already exists")]
    TenantExists {
        /// The name.
        name: String,
    },
    /// No such tenant.
    #[error("tenant {name:?} not found")]
    TenantNotFound {
        /// The name.
        name: String,
    },
    /// Another command changed the tenant's status first.
    #[error("tenant {name:?} is {actual}, not {expected}: another command is working on it")]
    StatusChanged {
        /// The tenant.
        name: String,
        /// The status the caller expected.
        expected: String,
        /// The status found.
        actual: String,
    },
    /// The key is already on the tenant.
    #[error("key {fingerprint} is already on tenant {name:?}")]
    KeyExists {
        /// The tenant.
        name: String,
        /// The key's fingerprint.
        fingerprint: String,
    },
    /// The key is not on the tenant.
    #[error("key {fingerprint} is not on tenant {name:?}")]
    KeyNotFound {
        /// The tenant.
        name: String,
        /// The fingerprint asked for.
        fingerprint: String,
    },
    /// Removing the key would leave the tenant with none.
    #[error("key {fingerprint} is tenant {name:?}'s last key")]
    LastKey {
        /// The tenant.
        name: String,
        /// The key's fingerprint.
        fingerprint: String,
    },
    /// An API token of that name exists.
    #[error("token {name:?} already exists")]
    TokenExists {
        /// The name.
        name: String,
    },
    /// A share of that name exists.
    #[error("share {name:?} already exists")]
    ShareExists {
        /// The name.
        name: String,
    },
    /// No share of that name.
    #[error("share {name:?} not found")]
    ShareNotFound {
        /// The name.
        name: String,
    },
    /// No live API token of that name.
    #[error("token {name:?} not found (or already revoked)")]
    TokenNotFound {
        /// The name.
        name: String,
    },
    /// A stored row no longer parses (edited by hand, or a newer hostel wrote it).
    #[error("stored {what} {value:?} does not parse")]
    Corrupt {
        /// Which field.
        what: &'static str,
        /// The value found.
        value: String,
    },
    /// The database was written by a newer hostel.
    #[error("database schema version {found} is newer than this hostel knows ({known})")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// The store file exists but holds no hostel store (empty, or another program's file).
    #[error("{path} is not a hostel store: {reason}")]
    NotAStore {
        /// The file.
        path: String,
        /// What was found.
        reason: String,
    },
    /// SQLite failed.
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    /// A file operation failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The audit log does not verify.
    #[error("audit log line {line}: {reason}")]
    AuditBroken {
        /// 1-based line number.
        line: usize,
        /// What does not match.
        reason: String,
    },
}

impl StoreError {
    /// The stable error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::TenantExists { .. }
            | StoreError::StatusChanged { .. }
            | StoreError::KeyExists { .. }
            | StoreError::LastKey { .. }
            | StoreError::TokenExists { .. }
            | StoreError::ShareExists { .. } => ErrorCode::Conflict,
            StoreError::TenantNotFound { .. }
            | StoreError::ShareNotFound { .. }
            | StoreError::KeyNotFound { .. }
            | StoreError::TokenNotFound { .. } => ErrorCode::NotFound,
            StoreError::Sqlite(e) if is_full(e) => ErrorCode::Unavailable,
            StoreError::Io { source, .. } if source.raw_os_error() == Some(28) => {
                ErrorCode::Unavailable
            }
            _ => ErrorCode::Internal,
        }
    }

    /// One concrete action for a person.
    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::TenantExists { name } => Some(format!(
                "pick another name, or see it with `hostel info {name}`"
            )),
            StoreError::TenantNotFound { .. } => Some("list tenants with `hostel list`".into()),
            StoreError::ShareExists { name } => Some(format!(
                "pick another name, or remove it first with `hostel share remove {name}`"
            )),
            StoreError::ShareNotFound { .. } => Some("list shares with `hostel share list`".into()),
            StoreError::StatusChanged { .. } => {
                Some("wait for the other command to finish, then retry".into())
            }
            StoreError::KeyExists { .. } => None,
            StoreError::TokenExists { .. } => {
                Some("pick another name: a token's name stays taken after it is revoked".into())
            }
            StoreError::TokenNotFound { .. } => Some("list tokens with `hostel token list`".into()),
            StoreError::KeyNotFound { name, .. } => {
                Some(format!("list its keys with `hostel key list {name}`"))
            }
            StoreError::LastKey { name, .. } => Some(format!(
                "add the new key first with `hostel key add {name} --key FILE`"
            )),
            StoreError::Corrupt { .. } => Some("run `hostel doctor`".into()),
            StoreError::TooNew { .. } => Some("upgrade hostel".into()),
            StoreError::NotAStore { path, .. } => Some(format!(
                "restore {path} from a backup; to start a new instance instead, move it away (the \
                 running workspaces then have no tenants, and `hostel doctor` lists them)"
            )),
            StoreError::Sqlite(e) if is_full(e) => {
                Some("free space on the filesystem holding the hostel root".into())
            }
            StoreError::Io { source, .. } if source.raw_os_error() == Some(28) => {
                Some("free space on the filesystem holding the hostel root".into())
            }
            StoreError::Io { path, .. } => Some(format!("check that {path} is writable by root")),
            _ => None,
        }
    }
}

fn is_full(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DiskFull))
}
