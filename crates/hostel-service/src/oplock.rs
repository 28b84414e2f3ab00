//! Which tenants an operation is working on right now, in any process on this root.
//!
//! An operation (create, start, stop, delete, purge, set, a wake) holds a shared `flock` on
//! `state/ops/<tenant>.lock` while it acts; a repair takes the same lock exclusively, without
//! waiting. So a repair runs only when no live operation works on the tenant: the reconciler and
//! `doctor --fix` never roll back a create still in progress, and an operation whose process
//! died (SIGKILL, a crash, a client's Ctrl-C on a local command) lets go of its lock with the
//! process, which is how its unfinished intent is told from a running one. Liveness by try-lock,
//! never by reading pids.
//!
//! Operations wait while a repair holds a tenant (repairs are short); repairs never wait.

use crate::ServiceError;
use hostel_core::TenantName;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::path::PathBuf;

/// The lock files of one root.
#[derive(Debug)]
pub(crate) struct OpLocks {
    dir: PathBuf,
}

/// A held lock; dropping it lets go.
#[derive(Debug)]
pub(crate) struct OpGuard {
    _lock: Flock<File>,
}

impl OpLocks {
    pub(crate) fn new(dir: PathBuf) -> Self {
        OpLocks { dir }
    }

    fn open(&self, name: &TenantName) -> Result<File, ServiceError> {
        std::fs::create_dir_all(&self.dir).map_err(ServiceError::io("create", &self.dir))?;
        let path = self.dir.join(format!("{name}.lock"));
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(ServiceError::io("open", &path))
    }

    /// Marks an operation on `name` as running until the guard drops; waits while a repair
    /// holds the tenant.
    pub(crate) async fn operation(&self, name: &TenantName) -> Result<OpGuard, ServiceError> {
        let file = self.open(name)?;
        let path = self.dir.join(format!("{name}.lock"));
        let locked = tokio::task::spawn_blocking(move || Flock::lock(file, FlockArg::LockShared))
            .await
            .map_err(|e| ServiceError::Io {
                action: "lock",
                path: path.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?;
        let lock = locked.map_err(|(_, errno)| ServiceError::Io {
            action: "lock",
            path: path.display().to_string(),
            source: errno.into(),
        })?;
        Ok(OpGuard { _lock: lock })
    }

    /// Takes `name` for a repair when no operation holds it; `None` when one does.
    pub(crate) fn repair(&self, name: &TenantName) -> Result<Option<OpGuard>, ServiceError> {
        let file = self.open(name)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(OpGuard { _lock: lock })),
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(ServiceError::Io {
                action: "lock",
                path: self.dir.join(format!("{name}.lock")).display().to_string(),
                source: errno.into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_repair_waits_for_no_operation_and_operations_share() {
        let dir = tempfile::tempdir().unwrap();
        let locks = OpLocks::new(dir.path().join("ops"));
        let alice: TenantName = "alice".parse().unwrap();
        let bob: TenantName = "bob".parse().unwrap();
        let one = locks.operation(&alice).await.unwrap();
        let two = locks.operation(&alice).await.unwrap();
        assert!(
            locks.repair(&alice).unwrap().is_none(),
            "two operations run"
        );
        assert!(locks.repair(&bob).unwrap().is_some(), "tenants are apart");
        drop(one);
        assert!(locks.repair(&alice).unwrap().is_none(), "one still runs");
        drop(two);
        let repair = locks.repair(&alice).unwrap();
        assert!(repair.is_some(), "none runs");
        let waiting = tokio::spawn(async move {
            let locks = OpLocks::new(dir.path().join("ops"));
            let alice: TenantName = "alice".parse().unwrap();
            locks.operation(&alice).await.map(|_| ())
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "an operation waits for the repair");
        drop(repair);
        waiting.await.unwrap().unwrap();
    }
}
