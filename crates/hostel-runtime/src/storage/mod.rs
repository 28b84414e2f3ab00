//! Tenants' homes: persistent, size-limited filesystems that outlive their workspaces.
//!
//! [`BtrfsPool`] keeps every home as a btrfs subvolume (`users/<tenant>/home`) in one pool: an
//! image file (`state/homes.btrfs`) on a loop device, mounted at `users/`. Each subvolume has a
//! qgroup limit, so a write past the quota fails with EDQUOT, enforced by the kernel.
//!
//! Why this mechanism: on this kind of host the kernel lacks XFS and ext4 project quotas, and
//! Docker's `--storage-opt size=` does not work on overlay2 over ext4. One ext4 image per tenant
//! also enforces a limit, but growing it while mounted needs CAP_SYS_RESOURCE, which root does
//! not have in every sandbox (it does not here); a qgroup limit changes live with CAP_SYS_ADMIN
//! alone, both ways. Subvolumes also give cheap snapshots later. The cost: one loop device and
//! one mount for all tenants; qgroup accounting adds a little CPU on writes and deletes. The
//! image is allocated, not sparse, and grows ahead of what the homes use (see [`pool`]), so a
//! full host disk never turns the pool read-only. Homes may be overcommitted (the sum of quotas
//! above the pool size), like thin provisioning: a full pool answers ENOSPC to the write.
//!
//! [`DirStorage`] is a plain directory per tenant with no limit, for tests of the layers above.

mod btrfs;
mod dir;
pub mod pool;

pub use btrfs::BtrfsPool;
pub use dir::DirStorage;
pub use pool::PoolState;

use crate::RuntimeError;
use chrono::{DateTime, Utc};
use hostel_core::{ByteSize, SnapshotName, TenantName};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The uid (and gid) that owns a home; the tenant's user in the workspace has it.
pub const TENANT_UID: u32 = 1000;

/// Where a home's frozen copies are, beside the home (`<tenant>/exports/<pid>-<n>`).
const FROZEN: &str = "exports";

/// The frozen copies this process has handed out and not removed yet.
static FROZEN_LIVE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// A name for a new frozen copy, unique among this process's, and the copies in `dir` a crash
/// left behind: those of processes no longer running, and this process's own that it did not
/// hand out (from an earlier life under the same pid, after a reboot).
fn frozen_name(dir: &Path) -> (String, Vec<PathBuf>) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let me = std::process::id();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{me}-{n}");
    let mut live = FROZEN_LIVE.lock().unwrap_or_else(|p| p.into_inner());
    live.push(name.clone());
    let stale = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| {
            let file = e.file_name();
            let Some(file) = file.to_str() else {
                return true;
            };
            match file.split_once('-').map(|(pid, _)| pid.parse::<u32>()) {
                Some(Ok(pid)) if pid == me => !live.iter().any(|l| l == file),
                Some(Ok(pid)) => !Path::new("/proc").join(pid.to_string()).exists(),
                _ => true,
            }
        })
        .map(|e| e.path())
        .collect();
    (name, stale)
}

/// Forgets a frozen copy [`frozen_name`] handed out.
fn frozen_gone(frozen: &Path) {
    let name = frozen
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    FROZEN_LIVE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|l| l != name);
}

/// Space used in a home.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DiskUsage {
    /// Bytes in use.
    pub used: ByteSize,
    /// Usable size of the filesystem.
    pub size: ByteSize,
}

/// A snapshot of a home: read-only, kept beside the home until deleted or purged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HomeSnapshot {
    /// Its name.
    pub name: SnapshotName,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// Bytes only it holds (what deleting it frees); `None` where the storage cannot say.
    pub exclusive: Option<ByteSize>,
}

/// Where tenants' homes live and how their size is limited.
pub trait HomeStorage: Send + Sync + std::fmt::Debug {
    /// Makes the storage ready (mounts the pool after a reboot). Idempotent.
    fn prepare(&self) -> Result<(), RuntimeError>;
    /// The most a single home can hold (the most the pool may grow to).
    fn capacity(&self) -> ByteSize;
    /// The shared pool the homes live in, as it stands; `None` where there is none or it is not
    /// mounted.
    fn pool(&self) -> Result<Option<PoolState>, RuntimeError> {
        Ok(None)
    }
    /// Keeps the shared pool able to take what it accepts (see [`pool`]): grows it while the
    /// host has room. Called often by the daemon; cheap when there is nothing to do.
    fn maintain(&self) -> Result<Option<PoolState>, RuntimeError> {
        self.prepare()?;
        Ok(None)
    }
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
    /// The size limit the kernel enforces on the home now, read back (not remembered): `None`
    /// when the home has none, or there is no home.
    fn limit(&self, tenant: &TenantName) -> Result<Option<ByteSize>, RuntimeError>;
    /// Whether the home is ready to use (its filesystem mounted).
    fn is_ready(&self, tenant: &TenantName) -> bool;
    /// Deletes the home and its data, snapshots included. Only `purge` calls this.
    fn destroy(&self, tenant: &TenantName) -> Result<(), RuntimeError>;

    /// The home's snapshots, oldest first.
    fn snapshots(&self, tenant: &TenantName) -> Result<Vec<HomeSnapshot>, RuntimeError>;
    /// The names of the home's snapshots only, in no order: one folder read, where
    /// [`HomeStorage::snapshots`] asks btrfs about each.
    fn snapshot_names(&self, tenant: &TenantName) -> Result<Vec<SnapshotName>, RuntimeError>;
    /// Takes a read-only snapshot of the home; a name taken is a conflict.
    fn snapshot(&self, tenant: &TenantName, snapshot: &SnapshotName) -> Result<(), RuntimeError>;
    /// Deletes a snapshot; one that is not there is not an error.
    fn delete_snapshot(
        &self,
        tenant: &TenantName,
        snapshot: &SnapshotName,
    ) -> Result<(), RuntimeError>;
    /// Puts a snapshot back as the home, in one step: a writable copy of it is made with the
    /// home's limit, swapped with the home, and the old home removed. Wherever a crash stops
    /// it, the home is the old one or the snapshot, never a mix, and calling it again finishes
    /// it. The home must not be mounted in a running workspace.
    fn restore(&self, tenant: &TenantName, snapshot: &SnapshotName) -> Result<(), RuntimeError>;

    /// A read-only copy of the home as it is now, apart from the tenant's snapshots and out of
    /// the workspace's reach, to read whole (an export) while the tenant goes on writing.
    /// [`HomeStorage::thaw`] removes it. Each call makes its own; copies a crash left behind
    /// go at the next freeze of the same home, and with the home at a purge.
    fn freeze(&self, tenant: &TenantName) -> Result<PathBuf, RuntimeError>;
    /// Removes a copy [`HomeStorage::freeze`] made; one already gone is not an error.
    fn thaw(&self, tenant: &TenantName, frozen: &Path) -> Result<(), RuntimeError>;

    /// Gives the home to host uid and gid `uid`, when it is not theirs yet: the tenant's uid
    /// as the engine maps it (1000, or 1000 above the remapped range's start with user
    /// namespaces). A home made for another mapping moves over once, everything in it; a home
    /// whose top the tenant gave to another uid of its own range (root inside can) gets its
    /// top back only: the host never walks a tree because a tenant asked it to.
    fn own(&self, tenant: &TenantName, uid: u32) -> Result<(), RuntimeError> {
        use std::os::unix::fs::MetadataExt;
        let home = self.home_path(tenant);
        let fail = |e: std::io::Error| RuntimeError::Host {
            action: format!("give {} to uid {uid}", home.display()),
            message: e.to_string(),
        };
        let meta = std::fs::symlink_metadata(&home).map_err(fail)?;
        if meta.uid() == uid && meta.gid() == uid {
            return Ok(());
        }
        std::os::unix::fs::lchown(&home, Some(uid), Some(uid)).map_err(fail)?;
        let base = uid.saturating_sub(TENANT_UID);
        let tenants_own = (base..base.saturating_add(crate::MAPPED_IDS)).contains(&meta.uid());
        if tenants_own && base > 0 {
            return Ok(());
        }
        reown_tree(&home, uid).map_err(|e| fail(std::io::Error::from(e)))
    }
}

/// Gives everything below the directory `top` to `uid`, never following a symlink: each step
/// is taken relative to an open directory, and a directory is entered with `O_NOFOLLOW`, so a
/// tenant that swaps a directory for a symlink to the host's files mid-walk gets nothing
/// changed outside its home.
fn reown_tree(top: &std::path::Path, uid: u32) -> Result<(), nix::errno::Errno> {
    use nix::fcntl::open;
    use nix::sys::stat::Mode;
    let dir = open(top, dir_flags(), Mode::empty())?;
    reown_below(dir, uid, 0)
}

fn dir_flags() -> nix::fcntl::OFlag {
    use nix::fcntl::OFlag;
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

fn reown_below(dir: std::os::fd::OwnedFd, uid: u32, depth: usize) -> Result<(), nix::errno::Errno> {
    use nix::dir::{Dir, Type};
    use nix::errno::Errno;
    use nix::fcntl::{AtFlags, openat};
    use nix::sys::stat::Mode;
    use nix::unistd::{Gid, Uid, fchownat};
    // Each level holds a descriptor: a tree deeper than this is refused, not followed.
    if depth > 256 {
        return Err(Errno::ELOOP);
    }
    let mut d = Dir::from_fd(dir)?;
    let mut entries = Vec::new();
    for e in d.iter() {
        let e = e?;
        let name = e.file_name().to_owned();
        if name.as_bytes() != b"." && name.as_bytes() != b".." {
            entries.push((name, e.file_type()));
        }
    }
    for (name, kind) in entries {
        match fchownat(
            &d,
            name.as_c_str(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(uid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            // Gone since it was listed: nothing to give.
            Err(Errno::ENOENT) => continue,
            r => r?,
        }
        if !matches!(kind, Some(Type::Directory) | None) {
            continue;
        }
        match openat(&d, name.as_c_str(), dir_flags(), Mode::empty()) {
            Ok(child) => reown_below(child, uid, depth + 1)?,
            // Not a directory (any more), or a symlink now: it was given as it is.
            Err(Errno::ENOTDIR | Errno::ELOOP | Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn owner(p: &std::path::Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().uid()
    }

    /// Regression (#12): the host walked a tenant's whole tree on every start, following
    /// whatever the tenant left in it. It now walks only a home made for another mapping,
    /// never through a symlink, and only gives a tenant-chowned top back.
    #[test]
    fn issue_12_homes_are_reowned_without_following_symlinks() {
        let root = tempfile::tempdir().unwrap();
        let outside = root.path().join("host-file");
        std::fs::write(&outside, "host").unwrap();
        let storage = DirStorage::new(root.path().join("users"));
        let t: TenantName = "alice".parse().unwrap();
        storage.ensure(&t, ByteSize::gib(1)).unwrap();
        let home = storage.home_path(&t);
        std::fs::create_dir_all(home.join("a/b")).unwrap();
        std::fs::write(home.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, home.join("a/escape")).unwrap();
        std::os::unix::fs::symlink(root.path(), home.join("dir-escape")).unwrap();
        // Made for another mapping (uid 1000 without user namespaces): all of it moves.
        let chown =
            |p: &std::path::Path, u: u32| std::os::unix::fs::lchown(p, Some(u), Some(u)).unwrap();
        for p in [
            &home,
            &home.join("a"),
            &home.join("a/b"),
            &home.join("a/b/f"),
        ] {
            chown(p, 1000);
        }
        storage.own(&t, 101_000).unwrap();
        for p in ["", "a", "a/b", "a/b/f", "a/escape", "dir-escape"] {
            assert_eq!(owner(&home.join(p)), 101_000, "{p}");
        }
        assert_eq!(owner(&outside), 0, "the symlink's target is the host's");
        assert_eq!(owner(root.path()), 0);
        // The tenant gave its top to another uid of its own range: only the top comes back.
        chown(&home, 100_000);
        chown(&home.join("a/b/f"), 100_005);
        storage.own(&t, 101_000).unwrap();
        assert_eq!(owner(&home), 101_000);
        assert_eq!(
            owner(&home.join("a/b/f")),
            100_005,
            "no walk on the tenant's say"
        );
    }
}
