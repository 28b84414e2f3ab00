//! Home storage off the async executor: every call of the btrfs pool runs subprocesses (`btrfs`,
//! `mount`) or walks a tree, which a slow or full disk can make take seconds. [`OffExecutor`]
//! wraps the storage the service is given so that each call steps off the executor first (see
//! `hostel_store::blocking`), and SSH sessions sharing a worker thread never wait on it.

use hostel_core::{ByteSize, SnapshotName, TenantName};
use hostel_runtime::RuntimeError;
use hostel_runtime::storage::{DiskUsage, HomeSnapshot, HomeStorage, PoolState};
use hostel_store::blocking;
use std::path::PathBuf;
use std::sync::Arc;

/// A [`HomeStorage`] whose calls run off the async executor.
#[derive(Debug)]
pub(crate) struct OffExecutor(pub(crate) Arc<dyn HomeStorage>);

impl HomeStorage for OffExecutor {
    fn prepare(&self) -> Result<(), RuntimeError> {
        blocking(|| self.0.prepare())
    }

    fn capacity(&self) -> ByteSize {
        self.0.capacity()
    }

    fn pool(&self) -> Result<Option<PoolState>, RuntimeError> {
        blocking(|| self.0.pool())
    }

    fn maintain(&self) -> Result<Option<PoolState>, RuntimeError> {
        blocking(|| self.0.maintain())
    }

    fn home_path(&self, tenant: &TenantName) -> PathBuf {
        self.0.home_path(tenant)
    }

    fn exists(&self, tenant: &TenantName) -> bool {
        blocking(|| self.0.exists(tenant))
    }

    fn ensure(&self, tenant: &TenantName, size: ByteSize) -> Result<bool, RuntimeError> {
        blocking(|| self.0.ensure(tenant, size))
    }

    fn resize(&self, tenant: &TenantName, size: ByteSize) -> Result<(), RuntimeError> {
        blocking(|| self.0.resize(tenant, size))
    }

    fn usage(&self, tenant: &TenantName) -> Result<Option<DiskUsage>, RuntimeError> {
        blocking(|| self.0.usage(tenant))
    }

    fn limit(&self, tenant: &TenantName) -> Result<Option<ByteSize>, RuntimeError> {
        blocking(|| self.0.limit(tenant))
    }

    fn is_ready(&self, tenant: &TenantName) -> bool {
        blocking(|| self.0.is_ready(tenant))
    }

    fn destroy(&self, tenant: &TenantName) -> Result<(), RuntimeError> {
        blocking(|| self.0.destroy(tenant))
    }

    fn own(&self, tenant: &TenantName, uid: u32) -> Result<(), RuntimeError> {
        blocking(|| self.0.own(tenant, uid))
    }

    fn snapshots(&self, tenant: &TenantName) -> Result<Vec<HomeSnapshot>, RuntimeError> {
        blocking(|| self.0.snapshots(tenant))
    }

    fn snapshot_names(&self, tenant: &TenantName) -> Result<Vec<SnapshotName>, RuntimeError> {
        blocking(|| self.0.snapshot_names(tenant))
    }

    fn snapshot(&self, tenant: &TenantName, snapshot: &SnapshotName) -> Result<(), RuntimeError> {
        blocking(|| self.0.snapshot(tenant, snapshot))
    }

    fn delete_snapshot(
        &self,
        tenant: &TenantName,
        snapshot: &SnapshotName,
    ) -> Result<(), RuntimeError> {
        blocking(|| self.0.delete_snapshot(tenant, snapshot))
    }

    fn restore(&self, tenant: &TenantName, snapshot: &SnapshotName) -> Result<(), RuntimeError> {
        blocking(|| self.0.restore(tenant, snapshot))
    }

    fn freeze(&self, tenant: &TenantName) -> Result<PathBuf, RuntimeError> {
        blocking(|| self.0.freeze(tenant))
    }

    fn thaw(&self, tenant: &TenantName, frozen: &std::path::Path) -> Result<(), RuntimeError> {
        blocking(|| self.0.thaw(tenant, frozen))
    }
}
