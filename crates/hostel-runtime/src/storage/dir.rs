//! Plain directories, no size limit: for tests of the layers above, never for tenants.
//! Snapshots are full copies.

use super::{DiskUsage, HomeSnapshot, HomeStorage};
use crate::RuntimeError;
use hostel_core::{ByteSize, SnapshotName, TenantName};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One directory per tenant under `base`; sizes are only recorded.
#[derive(Debug)]
pub struct DirStorage {
    base: PathBuf,
    sizes: Mutex<HashMap<String, ByteSize>>,
}

impl DirStorage {
    /// Homes under `base/<tenant>/home`.
    pub fn new(base: impl Into<PathBuf>) -> Self {
        DirStorage {
            base: base.into(),
            sizes: Mutex::new(HashMap::new()),
        }
    }

    fn host(action: &str) -> impl FnOnce(std::io::Error) -> RuntimeError {
        let action = action.to_owned();
        move |e| RuntimeError::Host {
            action,
            message: e.to_string(),
        }
    }

    fn snapshots_dir(&self, tenant: &TenantName) -> PathBuf {
        self.base.join(tenant.as_str()).join("snapshots")
    }

    fn set_size(&self, tenant: &TenantName, size: ByteSize) {
        self.sizes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.to_string(), size);
    }
}

impl HomeStorage for DirStorage {
    fn prepare(&self) -> Result<(), RuntimeError> {
        std::fs::create_dir_all(&self.base).map_err(Self::host("create homes folder"))
    }

    fn capacity(&self) -> ByteSize {
        ByteSize::gib(1024)
    }

    fn home_path(&self, tenant: &TenantName) -> PathBuf {
        self.base.join(tenant.as_str()).join("home")
    }

    fn exists(&self, tenant: &TenantName) -> bool {
        self.home_path(tenant).is_dir()
    }

    fn ensure(&self, tenant: &TenantName, size: ByteSize) -> Result<bool, RuntimeError> {
        let existed = self.exists(tenant);
        std::fs::create_dir_all(self.home_path(tenant)).map_err(Self::host("create home"))?;
        if !existed {
            self.set_size(tenant, size);
        }
        Ok(!existed)
    }

    fn resize(&self, tenant: &TenantName, size: ByteSize) -> Result<(), RuntimeError> {
        self.set_size(tenant, size);
        Ok(())
    }

    fn usage(&self, tenant: &TenantName) -> Result<Option<DiskUsage>, RuntimeError> {
        let sizes = self.sizes.lock().unwrap_or_else(|p| p.into_inner());
        Ok(sizes.get(tenant.as_str()).map(|&size| DiskUsage {
            used: ByteSize::bytes(0),
            size,
        }))
    }

    fn limit(&self, tenant: &TenantName) -> Result<Option<ByteSize>, RuntimeError> {
        let sizes = self.sizes.lock().unwrap_or_else(|p| p.into_inner());
        Ok(sizes.get(tenant.as_str()).copied())
    }

    fn is_ready(&self, tenant: &TenantName) -> bool {
        self.exists(tenant)
    }

    fn destroy(&self, tenant: &TenantName) -> Result<(), RuntimeError> {
        let dir = self.base.join(tenant.as_str());
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Self::host("remove home")(e)),
            _ => {
                self.sizes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(tenant.as_str());
                Ok(())
            }
        }
    }

    fn snapshots(&self, tenant: &TenantName) -> Result<Vec<HomeSnapshot>, RuntimeError> {
        let dir = self.snapshots_dir(tenant);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::host("list snapshots")(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Self::host("list snapshots"))?;
            let Some(name) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let meta = entry.metadata().map_err(Self::host("read a snapshot"))?;
            let taken = meta
                .created()
                .or_else(|_| meta.modified())
                .map_err(Self::host("read a snapshot"))?;
            out.push(HomeSnapshot {
                name,
                taken_at: taken.into(),
                exclusive: None,
            });
        }
        out.sort_by(|a, b| (a.taken_at, &a.name).cmp(&(b.taken_at, &b.name)));
        Ok(out)
    }

    fn snapshot_names(&self, tenant: &TenantName) -> Result<Vec<SnapshotName>, RuntimeError> {
        Ok(self
            .snapshots(tenant)?
            .into_iter()
            .map(|s| s.name)
            .collect())
    }

    fn snapshot(&self, tenant: &TenantName, snapshot: &SnapshotName) -> Result<(), RuntimeError> {
        let path = self.snapshots_dir(tenant).join(snapshot.as_str());
        if path.exists() {
            return Err(RuntimeError::Conflict {
                name: snapshot.to_string(),
                message: "a snapshot of that name exists".into(),
            });
        }
        std::fs::create_dir_all(self.snapshots_dir(tenant)).map_err(Self::host("snapshot"))?;
        copy_tree(&self.home_path(tenant), &path).map_err(Self::host("snapshot"))
    }

    fn delete_snapshot(
        &self,
        tenant: &TenantName,
        snapshot: &SnapshotName,
    ) -> Result<(), RuntimeError> {
        match std::fs::remove_dir_all(self.snapshots_dir(tenant).join(snapshot.as_str())) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Self::host("delete a snapshot")(e))
            }
            _ => Ok(()),
        }
    }

    fn restore(&self, tenant: &TenantName, snapshot: &SnapshotName) -> Result<(), RuntimeError> {
        let source = self.snapshots_dir(tenant).join(snapshot.as_str());
        if !source.is_dir() {
            return Err(RuntimeError::NotFound {
                what: "snapshot",
                name: snapshot.to_string(),
            });
        }
        let staging = self.base.join(tenant.as_str()).join("restoring");
        let fail = Self::host;
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(fail("restore"))?;
        }
        copy_tree(&source, &staging).map_err(fail("restore"))?;
        nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            &staging,
            nix::fcntl::AT_FDCWD,
            &self.home_path(tenant),
            nix::fcntl::RenameFlags::RENAME_EXCHANGE,
        )
        .map_err(|e| fail("restore")(e.into()))?;
        std::fs::remove_dir_all(&staging).map_err(fail("restore"))
    }

    fn freeze(&self, tenant: &TenantName) -> Result<PathBuf, RuntimeError> {
        let home = self.home_path(tenant);
        if !home.is_dir() {
            return Err(RuntimeError::NotFound {
                what: "home",
                name: tenant.to_string(),
            });
        }
        let dir = self.base.join(tenant.as_str()).join(super::FROZEN);
        let (name, stale) = super::frozen_name(&dir);
        for old in stale {
            std::fs::remove_dir_all(old).map_err(Self::host("remove a frozen copy"))?;
        }
        std::fs::create_dir_all(&dir).map_err(Self::host("freeze the home"))?;
        let path = dir.join(name);
        match copy_tree(&home, &path) {
            Ok(()) => Ok(path),
            Err(e) => {
                super::frozen_gone(&path);
                let _ = std::fs::remove_dir_all(&path);
                Err(Self::host("freeze the home")(e))
            }
        }
    }

    fn thaw(&self, _tenant: &TenantName, frozen: &Path) -> Result<(), RuntimeError> {
        super::frozen_gone(frozen);
        match std::fs::remove_dir_all(frozen) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Self::host("remove a frozen copy")(e))
            }
            _ => Ok(()),
        }
    }
}

/// Copies the tree at `from` to the new path `to`: folders, files, symlinks and pipes with
/// their owners and modes (not their times; hard links become copies); devices and sockets
/// stay behind.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    std::fs::create_dir(to)?;
    let top = std::fs::metadata(from)?;
    std::os::unix::fs::lchown(to, Some(top.uid()), Some(top.gid()))?;
    std::fs::set_permissions(to, top.permissions())?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst)?;
            let meta = std::fs::symlink_metadata(&src)?;
            std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
            std::fs::set_permissions(&dst, meta.permissions())?;
        } else if kind.is_fifo() {
            // Read, a pipe would wait for a writer forever.
            nix::unistd::mkfifo(&dst, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(std::io::Error::from)?;
            let meta = std::fs::symlink_metadata(&src)?;
            std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
            std::fs::set_permissions(&dst, meta.permissions())?;
        }
    }
    Ok(())
}
