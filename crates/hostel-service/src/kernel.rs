//! The host's kernel counts that every workspace draws on together.
//!
//! The kernel keeps some counts per user of the host's first user namespace, and charges what a
//! process in a nested user namespace makes to that namespace's owner as well. A workspace's
//! user namespace is owned by root (its engine made it), so every tenant's inotify instances
//! and watches, and on Incus its own namespaces, count against root's one allowance, which the
//! host's own root processes share. With Debian's defaults one tenant took all 128 inotify
//! instances: no further Incus workspace could start (systemd needs them) and root on the host
//! could watch no file. Raised to the kernel's largest value, these counts stop being a limit;
//! each object is charged to the memory cgroup of whoever made it, so a tenant's memory limit
//! bounds them instead.

use crate::{Hostel, ServiceError};
use hostel_core::Outcome;
use hostel_runtime::sysctl::{NotRaised, raise_at_least};
use std::sync::atomic::Ordering;

/// The counts shared between every workspace and the host (paths under `/proc/sys`).
pub const SHARED_KERNEL_COUNTS: &[&str] = &[
    "fs/inotify/max_user_instances",
    "fs/inotify/max_user_watches",
    "user/max_user_namespaces",
    "user/max_cgroup_namespaces",
    "user/max_ipc_namespaces",
    "user/max_mnt_namespaces",
    "user/max_net_namespaces",
    "user/max_pid_namespaces",
    "user/max_time_namespaces",
    "user/max_uts_namespaces",
];

/// The largest value the kernel takes for them (`INT_MAX`).
pub const KERNEL_COUNT_LIMIT: u64 = i32::MAX as u64;

impl Hostel {
    /// Raises [`SHARED_KERNEL_COUNTS`] once per process, before workspaces start; each raise is
    /// audited (`host.kernel.raise`). Returns the counts it could not raise (the host may deny
    /// root the right, as a container host does): a tenant may then exhaust them for everyone,
    /// which the caller reports.
    pub async fn ensure_kernel_counts(&self) -> Result<Vec<NotRaised>, ServiceError> {
        let Some(dir) = self.sysctl_dir.clone() else {
            return Ok(Vec::new());
        };
        if self.kernel_checked.swap(true, Ordering::AcqRel) {
            return Ok(Vec::new());
        }
        let keys: Vec<(&'static str, u64)> = SHARED_KERNEL_COUNTS
            .iter()
            .map(|k| (*k, KERNEL_COUNT_LIMIT))
            .collect();
        let shown = dir.display().to_string();
        let out = tokio::task::spawn_blocking(move || raise_at_least(&dir, &keys))
            .await
            .map_err(|e| ServiceError::Io {
                action: "raise kernel counts in",
                path: shown,
                source: std::io::Error::other(e.to_string()),
            })?;
        for r in &out.raised {
            tracing::info!(key = %r.key, from = r.from, to = r.to, "raised a kernel count shared by every workspace");
            self.record(
                self.event("host.kernel.raise", Outcome::Ok)
                    .with("key", &r.key)
                    .with("from", r.from)
                    .with("to", r.to),
            )?;
        }
        for f in &out.failed {
            tracing::info!(key = %f.key, error = %f.source, "cannot raise a kernel count shared by every workspace");
        }
        Ok(out.failed)
    }
}
