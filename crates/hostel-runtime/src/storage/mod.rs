//! Tenants' homes: persistent, size-limited filesystems that outlive their workspaces.
//!
//! [`BtrfsPool`] keeps every home as a btrfs subvolume (`users/<tenant>/home`) in one pool: a
//! sparse image file (`state/homes.btrfs`) on a loop device, mounted at `users/`. Each subvolume
//! has a qgroup limit, so a write past the quota fails with EDQUOT, enforced by the kernel.
//!
//! Why this mechanism: on this kind of host the kernel lacks XFS and ext4 project quotas, and
//! Docker's `--storage-opt size=` does not work on overlay2 over ext4. One ext4 image per tenant
//! also enforces a limit, but growing it while mounted needs CAP_SYS_RESOURCE, which root does
//! not have in every sandbox (it does not here); a qgroup limit changes live with CAP_SYS_ADMIN
//! alone, both ways. Subvolumes also give cheap snapshots later. The cost: one loop device and
//! one mount for all tenants; qgroup accounting adds a little CPU on writes and deletes; the pool
//! is sparse and mounted with `discard=async`, so it takes host disk only for what is written.
//! Homes may be overcommitted (the sum of quotas above the pool size), like thin provisioning.
//!
//! [`DirStorage`] is a plain directory per tenant with no limit, for tests of the layers above.

mod btrfs;
mod dir;

pub use btrfs::BtrfsPool;
pub use dir::DirStorage;

use crate::RuntimeError;
use hostel_core::{ByteSize, TenantName};
use serde::Serialize;
use std::path::PathBuf;

/// The uid (and gid) that owns a home; the tenant's user in the workspace has it.
pub const TENANT_UID: u32 = 1000;

/// Space used in a home.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DiskUsage {
    /// Bytes in use.
    pub used: ByteSize,
    /// Usable size of the filesystem.
    pub size: ByteSize,
}

/// Where tenants' homes live and how their size is limited.
pub trait HomeStorage: Send + Sync + std::fmt::Debug {
    /// Makes the storage ready (mounts the pool after a reboot). Idempotent.
    fn prepare(&self) -> Result<(), RuntimeError>;
    /// The most a single home can hold (the pool's size).
    fn capacity(&self) -> ByteSize;
    /// The path to bind-mount into the workspace.
    fn home_path(&self, tenant: &TenantName) -> PathBuf;
    /// Whether the tenant has a home (mounted or not).
    fn exists(&self, tenant: &TenantName) -> bool;
    /// Makes the home if missing (returns true when it made one), and makes it ready to mount
    /// into a workspace. Never touches the data of a home that exists.
    fn ensure(&self, tenant: &TenantName, size: ByteSize) -> Result<bool, RuntimeError>;
    /// Changes the home's size limit, live. The caller checks the new size is above usage.
    fn resize(&self, tenant: &TenantName, size: ByteSize) -> Result<(), RuntimeError>;
    /// Space used and available; `None` when the home is not ready (not mounted).
    fn usage(&self, tenant: &TenantName) -> Result<Option<DiskUsage>, RuntimeError>;
    /// Whether the home is ready to use (its filesystem mounted).
    fn is_ready(&self, tenant: &TenantName) -> bool;
    /// Deletes the home and its data. Only `purge` calls this.
    fn destroy(&self, tenant: &TenantName) -> Result<(), RuntimeError>;

    /// Gives the home, and everything in it, to host uid and gid `uid`, when it is not theirs
    /// yet: the tenant's uid as the engine maps it (1000, or 1000 above the remapped range's
    /// start with user namespaces). A home made for another mapping moves over once.
    fn own(&self, tenant: &TenantName, uid: u32) -> Result<(), RuntimeError> {
        use std::os::unix::fs::MetadataExt;
        let home = self.home_path(tenant);
        let meta = std::fs::metadata(&home).map_err(|e| RuntimeError::Host {
            action: format!("read the owner of {}", home.display()),
            message: e.to_string(),
        })?;
        if meta.uid() == uid && meta.gid() == uid {
            return Ok(());
        }
        reown(&home, uid)
    }
}

/// `chown -hR uid:uid path`, without following symlinks out of it.
fn reown(path: &std::path::Path, uid: u32) -> Result<(), RuntimeError> {
    let fail = |e: std::io::Error| RuntimeError::Host {
        action: format!("give {} to uid {uid}", path.display()),
        message: e.to_string(),
    };
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).map_err(fail)?;
    let meta = std::fs::symlink_metadata(path).map_err(fail)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(fail)? {
            reown(&entry.map_err(fail)?.path(), uid)?;
        }
    }
    Ok(())
}
