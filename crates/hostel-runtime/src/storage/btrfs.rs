//! Homes as btrfs subvolumes with qgroup limits in one loop-backed pool (see `storage`).
//!
//! Uses util-linux (`mount`) and btrfs-progs (`mkfs.btrfs`, `btrfs`) from the host;
//! `hostel check` says when one is missing.

use super::pool::{self, LoopFile, PoolState};
use super::{DiskUsage, HomeSnapshot, HomeStorage, TENANT_UID};
use crate::RuntimeError;
use hostel_core::{ByteSize, SnapshotName, TenantName};
use nix::fcntl::{Flock, FlockArg};
use std::fs::OpenOptions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The pool: `image` mounted at `users`, each home a subvolume `users/<tenant>/home`.
#[derive(Debug, Clone)]
pub struct BtrfsPool {
    users: PathBuf,
    image: PathBuf,
    cap: ByteSize,
}

const ENOSPC: i32 = 28;

/// The pool is mounted without discard: discarding punches holes in the image, which would
/// make it sparse again (see `pool`).
const MOUNT_OPTIONS: &str = "loop,nosuid,nodev,noatime,nodiscard";

pub(super) fn run(action: &str, cmd: &mut Command) -> Result<String, RuntimeError> {
    let out = cmd.output().map_err(|e| {
        let prog = cmd.get_program().to_string_lossy().into_owned();
        RuntimeError::Host {
            action: action.to_owned(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                format!("{prog} is not installed (install btrfs-progs and mount)")
            } else {
                format!("cannot run {prog}: {e}")
            },
        }
    })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if message.contains("No space left on device") {
        return Err(RuntimeError::NoSpace {
            action: action.to_owned(),
        });
    }
    Err(RuntimeError::Host {
        action: action.to_owned(),
        message,
    })
}

pub(super) fn io_err(action: &str) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let action = action.to_owned();
    move |e| {
        if e.raw_os_error() == Some(ENOSPC) {
            RuntimeError::NoSpace { action }
        } else {
            RuntimeError::Host {
                action,
                message: e.to_string(),
            }
        }
    }
}

/// Whether `path` is a mount point, from /proc/self/mountinfo (field 5 is the mount point, with
/// spaces octal-escaped).
pub fn is_mount_point(path: &Path) -> bool {
    pool::mount_options(path).is_some()
}

/// Parses `btrfs qgroup show --raw -re -f PATH`: the referenced bytes and the limit of the
/// path's own qgroup (the last row).
fn parse_qgroup(text: &str) -> Option<(u64, Option<u64>)> {
    let row = text.lines().rfind(|l| l.starts_with("0/"))?;
    let cols: Vec<&str> = row.split_whitespace().collect();
    let used = cols.get(1)?.parse().ok()?;
    let limit = cols.get(3).and_then(|v| v.parse().ok());
    Some((used, limit))
}

impl BtrfsPool {
    /// A pool in `image` mounted at `users`, made on first use and grown up to `cap`.
    pub fn new(users: impl Into<PathBuf>, image: impl Into<PathBuf>, cap: ByteSize) -> Self {
        BtrfsPool {
            users: users.into(),
            image: image.into(),
            cap,
        }
    }

    /// Where the pool is mounted.
    pub fn mount_point(&self) -> &Path {
        &self.users
    }

    /// Whether the pool is mounted.
    pub fn is_mounted(&self) -> bool {
        is_mount_point(&self.users)
    }

    /// Makes (first time) and mounts the pool. Serialized across processes by a lock file next
    /// to the image, so two commands never format or mount it twice.
    pub fn ensure_pool(&self) -> Result<(), RuntimeError> {
        if self.is_mounted() {
            return Ok(());
        }
        let lock_path = self.image.with_extension("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("open storage lock"))?;
        let _lock = Flock::lock(lock, FlockArg::LockExclusive)
            .map_err(|(_, e)| io_err("lock storage")(std::io::Error::from(e)))?;
        if self.is_mounted() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.users).map_err(io_err("create users folder"))?;
        if !self.image.exists() {
            let not_empty = std::fs::read_dir(&self.users)
                .map_err(io_err("read users folder"))?
                .next()
                .is_some();
            if not_empty {
                return Err(RuntimeError::Host {
                    action: "make the homes pool".into(),
                    message: format!(
                        "{} holds files but there is no pool image {}; mounting the pool would \
                         hide them",
                        self.users.display(),
                        self.image.display()
                    ),
                });
            }
            let dir = self.image.parent().unwrap_or(Path::new("/"));
            let (free, total) = pool::host_space(dir)?;
            let reserve = pool::host_reserve(total);
            let Some(size) = pool::initial_size(free, reserve, self.cap) else {
                return Err(RuntimeError::NoSpace {
                    action: format!(
                        "the homes pool: {} free in {}, of which {} stays free",
                        ByteSize::bytes(free).human(),
                        dir.display(),
                        reserve.human()
                    ),
                });
            };
            let made = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&self.image)
                .map_err(io_err("create the homes pool image"))
                .and_then(|_| pool::allocate(&self.image, size))
                .and_then(|()| {
                    run(
                        "format the homes pool",
                        Command::new("mkfs.btrfs")
                            .args(["-q", "-f", "-L", "hostel-homes"])
                            .arg(&self.image),
                    )
                });
            if let Err(e) = made {
                let _ = std::fs::remove_file(&self.image);
                return Err(e);
            }
        }
        run(
            "mount the homes pool",
            Command::new("mount")
                .args(["-t", "btrfs", "-o", MOUNT_OPTIONS])
                .arg(&self.image)
                .arg(&self.users),
        )?;
        std::fs::set_permissions(&self.users, std::fs::Permissions::from_mode(0o711))
            .map_err(io_err("set the mode of the users folder"))?;
        run(
            "enable quotas on the homes pool",
            Command::new("btrfs")
                .args(["quota", "enable"])
                .arg(&self.users),
        )?;
        Ok(())
    }

    /// Unmounts the pool (all homes). Used by tests and uninstall; data stays in the image.
    pub fn unmount(&self) -> Result<(), RuntimeError> {
        if self.is_mounted() {
            run(
                "unmount the homes pool",
                Command::new("umount").arg(&self.users),
            )?;
        }
        Ok(())
    }

    /// Space in the pool as a whole.
    pub fn pool_usage(&self) -> Result<Option<DiskUsage>, RuntimeError> {
        if !self.is_mounted() {
            return Ok(None);
        }
        let s = nix::sys::statvfs::statvfs(&self.users).map_err(|e| RuntimeError::Host {
            action: "read pool usage".into(),
            message: e.to_string(),
        })?;
        let frag = s.fragment_size();
        Ok(Some(DiskUsage {
            used: ByteSize::bytes(s.blocks().saturating_sub(s.blocks_available()) * frag),
            size: ByteSize::bytes(s.blocks() * frag),
        }))
    }

    /// The pool's image on its loop device.
    fn file(&self) -> LoopFile {
        LoopFile {
            what: "the homes pool",
            image: self.image.clone(),
            mount: self.users.clone(),
            cap: self.cap,
            headroom: pool::HEADROOM_MIN,
        }
    }

    /// The pool's size, use and room on the host; `None` when it is not mounted.
    pub fn state(&self) -> Result<Option<PoolState>, RuntimeError> {
        self.file().state()
    }

    /// Keeps the pool able to take every write it accepts (see [`LoopFile::keep_up`]).
    fn keep_up(&self) -> Result<Option<PoolState>, RuntimeError> {
        self.ensure_pool()?;
        // Deleting a large home or snapshot can leave the quota groups inconsistent, and the
        // homes' limits with them: they are recounted at once.
        crate::docker::btrfs::rescan_if_inconsistent(&self.users);
        self.file().keep_up()
    }

    /// The home's qgroup: bytes referenced and the limit, if any; `None` without a home.
    fn qgroup(&self, tenant: &TenantName) -> Result<Option<(u64, Option<u64>)>, RuntimeError> {
        if !self.exists(tenant) {
            return Ok(None);
        }
        let out = run(
            "read the home's usage",
            Command::new("btrfs")
                .args(["qgroup", "show", "--raw", "-re", "-f"])
                .arg(self.home_path(tenant)),
        )?;
        parse_qgroup(&out)
            .map(Some)
            .ok_or_else(|| RuntimeError::Host {
                action: "read the home's usage".into(),
                message: format!("unexpected `btrfs qgroup show` output: {out:?}"),
            })
    }

    fn set_limit(&self, tenant: &TenantName, size: ByteSize) -> Result<(), RuntimeError> {
        run(
            "set the home's quota",
            Command::new("btrfs")
                .args(["qgroup", "limit", &size.as_u64().to_string()])
                .arg(self.home_path(tenant)),
        )?;
        Ok(())
    }
}

impl HomeStorage for BtrfsPool {
    fn prepare(&self) -> Result<(), RuntimeError> {
        self.ensure_pool()
    }

    fn capacity(&self) -> ByteSize {
        self.cap
    }

    fn pool(&self) -> Result<Option<PoolState>, RuntimeError> {
        self.state()
    }

    fn maintain(&self) -> Result<Option<PoolState>, RuntimeError> {
        self.keep_up()
    }

    fn home_path(&self, tenant: &TenantName) -> PathBuf {
        self.users.join(tenant.as_str()).join("home")
    }

    fn exists(&self, tenant: &TenantName) -> bool {
        self.is_mounted() && self.home_path(tenant).is_dir()
    }

    fn ensure(&self, tenant: &TenantName, size: ByteSize) -> Result<bool, RuntimeError> {
        self.ensure_pool()?;
        let home = self.home_path(tenant);
        if home.is_dir() {
            return Ok(false);
        }
        // A home made in a full pool would take its first write and fail it.
        if let Some(state) = self.keep_up()?.filter(|s| s.is_full() || s.read_only) {
            return Err(RuntimeError::NoSpace {
                action: state.full_message("a new home", "the homes pool"),
            });
        }
        let dir = self.users.join(tenant.as_str());
        std::fs::create_dir_all(&dir).map_err(io_err("create tenant folder"))?;
        // The home belongs to uid 1000 on the host too; only root may walk to it.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err("make the tenant folder private"))?;
        run(
            "create the home subvolume",
            Command::new("btrfs")
                .args(["subvolume", "create"])
                .arg(&home),
        )?;
        let set_up = self.set_limit(tenant, size).and_then(|()| {
            nix::unistd::chown(
                &home,
                Some(nix::unistd::Uid::from_raw(TENANT_UID)),
                Some(nix::unistd::Gid::from_raw(TENANT_UID)),
            )
            .map_err(|e| io_err("give the home to the tenant")(e.into()))
        });
        if let Err(e) = set_up {
            // Only the empty subvolume this call created goes.
            let _ = run(
                "remove the half-made home",
                Command::new("btrfs")
                    .args(["subvolume", "delete"])
                    .arg(&home),
            );
            return Err(e);
        }
        Ok(true)
    }

    fn resize(&self, tenant: &TenantName, size: ByteSize) -> Result<(), RuntimeError> {
        self.ensure_pool()?;
        self.set_limit(tenant, size)
    }

    fn usage(&self, tenant: &TenantName) -> Result<Option<DiskUsage>, RuntimeError> {
        Ok(self.qgroup(tenant)?.map(|(used, limit)| DiskUsage {
            used: ByteSize::bytes(used),
            size: ByteSize::bytes(limit.unwrap_or(self.cap.as_u64())),
        }))
    }

    fn limit(&self, tenant: &TenantName) -> Result<Option<ByteSize>, RuntimeError> {
        Ok(self
            .qgroup(tenant)?
            .and_then(|(_, limit)| limit)
            .map(ByteSize::bytes))
    }

    fn is_ready(&self, tenant: &TenantName) -> bool {
        self.exists(tenant)
    }

    fn destroy(&self, tenant: &TenantName) -> Result<(), RuntimeError> {
        self.ensure_pool()?;
        for snap in self.snapshot_paths(tenant)? {
            self.delete_subvolume(&snap, "delete a snapshot")?;
        }
        self.delete_subvolume(&self.staging_path(tenant), "delete a half-made restore")?;
        let frozen = self.users.join(tenant.as_str()).join(super::FROZEN);
        for copy in std::fs::read_dir(&frozen).into_iter().flatten().flatten() {
            self.delete_subvolume(&copy.path(), "delete a frozen copy")?;
        }
        self.delete_subvolume(&self.home_path(tenant), "delete the home subvolume")?;
        match std::fs::remove_dir_all(self.users.join(tenant.as_str())) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("remove home")(e)),
            _ => Ok(()),
        }
    }

    fn snapshots(&self, tenant: &TenantName) -> Result<Vec<HomeSnapshot>, RuntimeError> {
        if !self.is_mounted() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for path in self.snapshot_paths(tenant)? {
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<SnapshotName>().ok())
            else {
                continue;
            };
            // A snapshot's inodes (its top's birth time too) are the home's: the time it was
            // taken is the subvolume's own.
            let shown = run(
                "read a snapshot",
                Command::new("btrfs").args(["subvolume", "show"]).arg(&path),
            )?;
            let taken = parse_creation(&shown).ok_or_else(|| RuntimeError::Host {
                action: "read a snapshot".into(),
                message: format!("no creation time in `btrfs subvolume show`: {shown:?}"),
            })?;
            let exclusive = run(
                "read a snapshot's size",
                Command::new("btrfs")
                    .args(["qgroup", "show", "--raw", "-re", "-f"])
                    .arg(&path),
            )
            .ok()
            .and_then(|out| parse_exclusive(&out))
            .map(ByteSize::bytes);
            out.push(HomeSnapshot {
                name,
                taken_at: taken,
                exclusive,
            });
        }
        out.sort_by(|a, b| (a.taken_at, &a.name).cmp(&(b.taken_at, &b.name)));
        Ok(out)
    }

    fn snapshot_names(&self, tenant: &TenantName) -> Result<Vec<SnapshotName>, RuntimeError> {
        Ok(self
            .snapshot_paths(tenant)?
            .iter()
            .filter_map(|p| p.file_name()?.to_str()?.parse().ok())
            .collect())
    }

    fn snapshot(&self, tenant: &TenantName, snapshot: &SnapshotName) -> Result<(), RuntimeError> {
        self.ensure_pool()?;
        if !self.exists(tenant) {
            return Err(RuntimeError::NotFound {
                what: "home",
                name: tenant.to_string(),
            });
        }
        let path = self.snapshot_path(tenant, snapshot);
        if path.exists() {
            return Err(RuntimeError::Conflict {
                name: snapshot.to_string(),
                message: "a snapshot of that name exists".into(),
            });
        }
        if let Some(state) = self.keep_up()?.filter(|s| s.is_full() || s.read_only) {
            return Err(RuntimeError::NoSpace {
                action: state.full_message("a snapshot", "the homes pool"),
            });
        }
        let dir = self.users.join(tenant.as_str()).join(SNAPSHOTS);
        std::fs::create_dir_all(&dir).map_err(io_err("create the snapshots folder"))?;
        run(
            "snapshot the home",
            Command::new("btrfs")
                .args(["subvolume", "snapshot", "-r"])
                .arg(self.home_path(tenant))
                .arg(&path),
        )?;
        Ok(())
    }

    fn delete_snapshot(
        &self,
        tenant: &TenantName,
        snapshot: &SnapshotName,
    ) -> Result<(), RuntimeError> {
        self.ensure_pool()?;
        self.delete_subvolume(&self.snapshot_path(tenant, snapshot), "delete a snapshot")
    }

    fn restore(&self, tenant: &TenantName, snapshot: &SnapshotName) -> Result<(), RuntimeError> {
        self.ensure_pool()?;
        let source = self.snapshot_path(tenant, snapshot);
        if !source.is_dir() {
            return Err(RuntimeError::NotFound {
                what: "snapshot",
                name: snapshot.to_string(),
            });
        }
        let home = self.home_path(tenant);
        let staging = self.staging_path(tenant);
        // What an earlier restore left (a copy not swapped in, or the home it swapped out).
        self.delete_subvolume(&staging, "delete a half-made restore")?;
        let limit = self.limit(tenant)?;
        run(
            "copy the snapshot",
            Command::new("btrfs")
                .args(["subvolume", "snapshot"])
                .arg(&source)
                .arg(&staging),
        )?;
        if let Some(size) = limit {
            run(
                "set the restored home's quota",
                Command::new("btrfs")
                    .args(["qgroup", "limit", &size.as_u64().to_string()])
                    .arg(&staging),
            )?;
        }
        if home.is_dir() {
            nix::fcntl::renameat2(
                nix::fcntl::AT_FDCWD,
                &staging,
                nix::fcntl::AT_FDCWD,
                &home,
                nix::fcntl::RenameFlags::RENAME_EXCHANGE,
            )
            .map_err(|e| io_err("swap the restored home in")(e.into()))?;
        } else {
            std::fs::rename(&staging, &home).map_err(io_err("put the restored home in place"))?;
        }
        self.delete_subvolume(&staging, "delete the home restored over")
    }

    fn freeze(&self, tenant: &TenantName) -> Result<PathBuf, RuntimeError> {
        self.ensure_pool()?;
        if !self.exists(tenant) {
            return Err(RuntimeError::NotFound {
                what: "home",
                name: tenant.to_string(),
            });
        }
        let dir = self.users.join(tenant.as_str()).join(super::FROZEN);
        let (name, stale) = super::frozen_name(&dir);
        for old in stale {
            self.delete_subvolume(&old, "delete a frozen copy a crash left")?;
        }
        std::fs::create_dir_all(&dir).map_err(io_err("create the exports folder"))?;
        let path = dir.join(name);
        let made = run(
            "freeze the home",
            Command::new("btrfs")
                .args(["subvolume", "snapshot", "-r"])
                .arg(self.home_path(tenant))
                .arg(&path),
        );
        if made.is_err() {
            super::frozen_gone(&path);
        }
        made.map(|_| path)
    }

    fn thaw(&self, tenant: &TenantName, frozen: &Path) -> Result<(), RuntimeError> {
        let dir = self.users.join(tenant.as_str()).join(super::FROZEN);
        if frozen.parent() != Some(dir.as_path()) {
            return Err(RuntimeError::Host {
                action: "remove a frozen copy".into(),
                message: format!("{} is not one", frozen.display()),
            });
        }
        self.delete_subvolume(frozen, "remove a frozen copy")?;
        super::frozen_gone(frozen);
        Ok(())
    }
}

/// Where a home's snapshots are, beside the home (`users/<tenant>/snapshots/<name>`).
const SNAPSHOTS: &str = "snapshots";

/// The `Creation time:` of `btrfs subvolume show PATH` (`2026-12-07 17:24:06 +0000`).
fn parse_creation(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let value = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Creation time:"))?
        .trim();
    chrono::DateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S %z")
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Parses `btrfs qgroup show --raw -re -f PATH`: the exclusive bytes of the path's own qgroup.
fn parse_exclusive(text: &str) -> Option<u64> {
    let row = text.lines().rfind(|l| l.starts_with("0/"))?;
    row.split_whitespace().nth(2)?.parse().ok()
}

impl BtrfsPool {
    fn snapshot_path(&self, tenant: &TenantName, snapshot: &SnapshotName) -> PathBuf {
        self.users
            .join(tenant.as_str())
            .join(SNAPSHOTS)
            .join(snapshot.as_str())
    }

    /// Where a restore makes its copy of the snapshot before swapping it with the home.
    fn staging_path(&self, tenant: &TenantName) -> PathBuf {
        self.users.join(tenant.as_str()).join("restoring")
    }

    /// The folders in the tenant's snapshots folder.
    fn snapshot_paths(&self, tenant: &TenantName) -> Result<Vec<PathBuf>, RuntimeError> {
        let dir = self.users.join(tenant.as_str()).join(SNAPSHOTS);
        match std::fs::read_dir(&dir) {
            Ok(entries) => Ok(entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_err("list the snapshots")(e)),
        }
    }

    /// Deletes the subvolume at `path` and every subvolume made inside it, deepest first
    /// (they would make its deletion fail); nothing there is not an error.
    fn delete_subvolume(&self, path: &Path, action: &str) -> Result<(), RuntimeError> {
        if !path.is_dir() {
            return Ok(());
        }
        for nested in self.subvolumes_below(path)? {
            run(
                "delete a subvolume made in the home",
                Command::new("btrfs")
                    .args(["subvolume", "delete"])
                    .arg(self.users.join(nested)),
            )?;
        }
        run(
            action,
            Command::new("btrfs")
                .args(["subvolume", "delete", "--commit-after"])
                .arg(path),
        )?;
        Ok(())
    }

    /// Every subvolume below `top`, however deep, as paths relative to the pool's top,
    /// deepest first. `btrfs subvolume list -o` names only the direct children.
    fn subvolumes_below(&self, top: &Path) -> Result<Vec<String>, RuntimeError> {
        let mut found = Vec::new();
        let mut todo = vec![top.to_path_buf()];
        while let Some(dir) = todo.pop() {
            let listed = run(
                "list the subvolumes in the home",
                Command::new("btrfs")
                    .args(["subvolume", "list", "-o"])
                    .arg(&dir),
            )?;
            for child in nested_subvolumes(&listed) {
                if found.contains(&child) {
                    continue;
                }
                todo.push(self.users.join(&child));
                found.push(child);
            }
        }
        found.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
        Ok(found)
    }
}

/// The paths (relative to the pool's top) in `btrfs subvolume list -o` output, deepest first.
fn nested_subvolumes(listed: &str) -> Vec<String> {
    let mut paths: Vec<String> = listed
        .lines()
        .filter_map(|l| l.split_once(" path ").map(|(_, p)| p.trim().to_owned()))
        .filter(|p| !p.is_empty() && !p.split('/').any(|c| c == ".."))
        .collect();
    paths.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_subvolumes_go_deepest_first() {
        let listed = "ID 258 gen 12 top level 257 path alice/home/a\n\
                      ID 259 gen 13 top level 258 path alice/home/a/b c\n\
                      ID 260 gen 14 top level 257 path alice/home/z\n";
        assert_eq!(
            nested_subvolumes(listed),
            ["alice/home/a/b c", "alice/home/a", "alice/home/z"]
        );
        assert!(nested_subvolumes("").is_empty());
    }

    #[test]
    fn parses_qgroup_rows() {
        let out = "Qgroupid    Referenced    Exclusive  Max referenced  Max exclusive   Path \n\
                   --------    ----------    ---------  --------------  -------------   ---- \n\
                   0/256        262127616    262127616       314572800           none   alice\n";
        assert_eq!(parse_qgroup(out), Some((262_127_616, Some(314_572_800))));
        let none = "0/257 16384 16384 none none bob\n";
        assert_eq!(parse_qgroup(none), Some((16384, None)));
        assert_eq!(parse_qgroup("garbage"), None);
        assert_eq!(parse_exclusive(out), Some(262_127_616));
        assert_eq!(parse_exclusive(none), Some(16384));
        assert_eq!(parse_exclusive("garbage"), None);
    }

    #[test]
    fn parses_the_creation_time() {
        let shown = "s\n\tName: \t\t\ts\n\tCreation time: \t\t2026-12-07 17:24:06 +0100\n\tSubvolume ID: \t\t257\n";
        assert_eq!(
            parse_creation(shown).map(|t| t.to_rfc3339()),
            Some("2026-12-07T16:24:06+00:00".to_owned())
        );
        assert_eq!(parse_creation("Name: s\n"), None);
    }
}
