//! Snapshots of a tenant: of its home on every engine, and of its whole system (the root disk,
//! with the packages and services installed there) where the engine takes them (Incus). A
//! snapshot is taken while the workspace runs; a restore stops it, puts both parts back and
//! starts it again when it should run.
//!
//! A restore is recorded before it acts (the tenant reads `restoring`, and nothing else may act
//! on it), and each of its steps can be carried out again: a restore whose process died is
//! finished by the reconciler. The home is swapped in one rename, so it is never half old and
//! half restored.
//!
//! Bounds: a tenant keeps at most `[storage] snapshots_max` snapshots, scheduled ones included;
//! each holds what the home held when it was taken, so a tenant holds at most that many times
//! its disk quota beside its home.

use crate::spec::container_name;
use crate::{Hostel, Progress, ServiceError};
use chrono::{DateTime, Utc};
use hostel_core::snapshot::{self, Schedule, SnapshotName};
use hostel_core::{ByteSize, Outcome, TenantName, WorkspaceState};
use hostel_store::{StoreError, TenantRecord};
use serde::Serialize;

/// A snapshot as `hostel snapshot list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotView {
    /// Its name.
    pub name: SnapshotName,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// Bytes of the home only it holds (what deleting it frees), where the storage says.
    pub exclusive: Option<ByteSize>,
    /// Whether it holds the workspace's system too, not only the home.
    pub system: bool,
    /// Whether the schedule took it (and may remove it).
    pub scheduled: bool,
}

impl Hostel {
    /// The tenant's snapshots, oldest first, and its schedule.
    pub async fn snapshots(
        &self,
        name: &TenantName,
    ) -> Result<(Vec<SnapshotView>, Option<Schedule>), ServiceError> {
        let t = self.store.require(name)?;
        Ok((self.snapshot_views(name).await?, t.snapshots))
    }

    async fn snapshot_views(&self, name: &TenantName) -> Result<Vec<SnapshotView>, ServiceError> {
        let home = self.storage.snapshots(name)?;
        let system = if self.engine_facts().await?.system_snapshots {
            self.runtime.system_snapshots(&container_name(name)).await?
        } else {
            Vec::new()
        };
        Ok(home
            .into_iter()
            .map(|s| SnapshotView {
                system: system.iter().any(|n| n == s.name.as_str()),
                scheduled: s.name.is_auto(),
                name: s.name,
                taken_at: s.taken_at,
                exclusive: s.exclusive,
            })
            .collect())
    }

    async fn find_snapshot(
        &self,
        name: &TenantName,
        snap: &SnapshotName,
    ) -> Result<SnapshotView, ServiceError> {
        self.snapshot_views(name)
            .await?
            .into_iter()
            .find(|s| &s.name == snap)
            .ok_or_else(|| ServiceError::SnapshotMissing {
                tenant: name.to_string(),
                snapshot: snap.to_string(),
            })
    }

    /// `snapshot create`: snapshots the home (and the system, where the engine can) as
    /// `snapshot`, or as the time now when unnamed.
    pub async fn snapshot_create(
        &self,
        name: &TenantName,
        snapshot: Option<SnapshotName>,
    ) -> Result<SnapshotView, ServiceError> {
        let snap = snapshot.unwrap_or_else(|| SnapshotName::at(self.now()));
        let result = async {
            let _op = self.ops.operation(name).await?;
            self.require_ready(name)?;
            self.take_snapshot(name, &snap).await
        }
        .await;
        self.audit_snapshot("snapshot.create", name, &snap, &result)?;
        result
    }

    /// Takes a snapshot of a tenant the caller holds; the home's part goes again when the
    /// system's fails.
    async fn take_snapshot(
        &self,
        name: &TenantName,
        snap: &SnapshotName,
    ) -> Result<SnapshotView, ServiceError> {
        let max = self.config.storage.snapshots_max;
        if self.storage.snapshots(name)?.len() >= usize::try_from(max).unwrap_or(usize::MAX) {
            return Err(ServiceError::TooManySnapshots {
                tenant: name.to_string(),
                max,
            });
        }
        self.storage.snapshot(name, snap)?;
        if self.engine_facts().await?.system_snapshots
            && self.observe(name).await?.0 != WorkspaceState::Deleted
            && let Err(e) = self
                .runtime
                .snapshot_system(&container_name(name), snap.as_str())
                .await
        {
            if let Err(undo) = self.storage.delete_snapshot(name, snap) {
                tracing::warn!(tenant = %name, error = %undo, "cannot remove a half-taken snapshot");
            }
            return Err(e.into());
        }
        self.find_snapshot(name, snap).await
    }

    /// `snapshot delete`.
    pub async fn snapshot_delete(
        &self,
        name: &TenantName,
        snap: &SnapshotName,
    ) -> Result<(), ServiceError> {
        let result = async {
            let _op = self.ops.operation(name).await?;
            self.require_ready(name)?;
            let found = self.find_snapshot(name, snap).await?;
            self.remove_snapshot(name, &found).await
        }
        .await;
        self.audit_snapshot("snapshot.delete", name, snap, &result)?;
        result
    }

    async fn remove_snapshot(
        &self,
        name: &TenantName,
        snap: &SnapshotView,
    ) -> Result<(), ServiceError> {
        if snap.system {
            self.runtime
                .delete_system_snapshot(&container_name(name), snap.name.as_str())
                .await?;
        }
        Ok(self.storage.delete_snapshot(name, &snap.name)?)
    }

    /// `snapshot restore`: puts the snapshot back over the home (and the system, where the
    /// snapshot has it). The workspace stops for it and starts again when it should run.
    pub async fn snapshot_restore(
        &self,
        name: &TenantName,
        snap: &SnapshotName,
        progress: &dyn Progress,
    ) -> Result<(), ServiceError> {
        let result = async {
            let _op = self.ops.operation(name).await?;
            self.require_ready(name)?;
            let found = self.find_snapshot(name, snap).await?;
            match self.store.begin_restore(name, snap, self.now()) {
                Err(StoreError::StatusChanged { actual, .. }) => {
                    return Err(ServiceError::Busy {
                        tenant: name.to_string(),
                        status: actual,
                    });
                }
                r => r?,
            }
            self.fault("restore.recorded");
            if let Err(e) = self.stop_for_restore(name, progress).await {
                // Nothing was put back yet: the tenant is as it was.
                self.store.end_restore(name, self.now())?;
                return Err(e);
            }
            self.put_back(name, &found, progress).await?;
            self.store.end_restore(name, self.now())?;
            let t = self.store.require(name)?;
            if t.desired == WorkspaceState::Running {
                self.ensure_running_inner(&t, progress).await?;
            }
            Ok(())
        }
        .await;
        self.audit_snapshot("snapshot.restore", name, snap, &result)?;
        result
    }

    /// Stops the workspace when it runs (a deleted one has nothing to stop), so that no
    /// process holds the home being swapped.
    async fn stop_for_restore(
        &self,
        name: &TenantName,
        progress: &dyn Progress,
    ) -> Result<(), ServiceError> {
        if self.observe(name).await?.0.can_stop() {
            progress.step("stopping the workspace");
            self.runtime.stop(&container_name(name), 10).await?;
        }
        Ok(())
    }

    /// Puts a snapshot back: the system first (Incus puts its disk back whole), then the home
    /// in one swap. Both steps may run again.
    async fn put_back(
        &self,
        name: &TenantName,
        snap: &SnapshotView,
        progress: &dyn Progress,
    ) -> Result<(), ServiceError> {
        if snap.system {
            progress.step("restoring the system");
            self.runtime
                .restore_system(&container_name(name), snap.name.as_str())
                .await?;
            self.fault("restore.system");
        }
        progress.step("restoring the home");
        self.storage.restore(name, &snap.name)?;
        Ok(())
    }

    /// Finishes a restore whose process died (the reconciler's and `doctor --fix`'s repair):
    /// stops the workspace and puts the snapshot back again, whole. A snapshot removed since
    /// by hand cannot be: the restore is given up, and the tenant is ready with its data as
    /// the interrupted restore left it (the home swaps in one step, so it is whole).
    pub(crate) async fn finish_restore(&self, t: &TenantRecord) -> Result<(), ServiceError> {
        let Some(snap) = &t.restoring else {
            return Ok(());
        };
        match self.find_snapshot(&t.name, snap).await {
            Ok(found) => {
                self.stop_for_restore(&t.name, &crate::Quiet).await?;
                self.put_back(&t.name, &found, &crate::Quiet).await?;
                self.store.end_restore(&t.name, self.now())?;
                Ok(())
            }
            Err(e @ ServiceError::SnapshotMissing { .. }) => {
                self.store.end_restore(&t.name, self.now())?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// `snapshot schedule`: one snapshot every period, the newest `keep` kept; `None` stops
    /// the schedule (the snapshots it took stay).
    pub async fn snapshot_schedule(
        &self,
        name: &TenantName,
        schedule: Option<Schedule>,
    ) -> Result<(), ServiceError> {
        let result = async {
            let max = self.config.storage.snapshots_max;
            if let Some(s) = schedule
                && (s.keep == 0 || s.keep > max)
            {
                return Err(ServiceError::InvalidSchedule { keep: s.keep, max });
            }
            let _op = self.ops.operation(name).await?;
            self.require_ready(name)?;
            Ok(self
                .store
                .set_snapshot_schedule(name, schedule, self.now())?)
        }
        .await;
        let ev = match &result {
            Ok(()) => self.event("snapshot.schedule", Outcome::Ok),
            Err(e) => self
                .event("snapshot.schedule", Outcome::Failed)
                .with("error", e.code()),
        };
        let ev = match schedule {
            Some(s) => ev.with("every", s.every).with("keep", s.keep),
            None => ev.with("every", "off"),
        };
        self.record(ev.tenant(name.as_str()))?;
        result
    }

    /// Takes the scheduled snapshots that are due, and removes the scheduled ones past each
    /// schedule's `keep` (first, to make room). Run by the daemon with its other lifecycle
    /// work; a tenant another operation holds waits for the next look. Returns the snapshots
    /// taken.
    pub async fn take_due_snapshots(&self) -> Result<Vec<(String, SnapshotName)>, ServiceError> {
        let now = self.now();
        let mut taken = Vec::new();
        for t in self.store.tenants()? {
            let Some(schedule) = t.snapshots.filter(|_| t.status.is_ready()) else {
                continue;
            };
            // Each look reads one folder per scheduled tenant: a scheduled snapshot's name says
            // when it was taken.
            let names = match self.storage.snapshot_names(&t.name) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(tenant = %t.name, error = %e, "cannot list snapshots");
                    continue;
                }
            };
            let newest = names.iter().filter_map(SnapshotName::auto_taken_at).max();
            if !snapshot::due(&schedule, newest, now) {
                continue;
            }
            let snap = SnapshotName::auto(now);
            let result = self.take_scheduled(&t.name, &schedule, &snap).await;
            let ev = match &result {
                Ok(()) => self.event("snapshot.create", Outcome::Ok),
                Err(e) => {
                    tracing::warn!(tenant = %t.name, error = %e, "scheduled snapshot failed");
                    self.event("snapshot.create", Outcome::Failed)
                        .with("error", e.code())
                }
            };
            self.record(
                ev.tenant(t.name.as_str())
                    .with("snapshot", &snap)
                    .with("by", "schedule"),
            )?;
            if result.is_ok() {
                taken.push((t.name.to_string(), snap));
            }
        }
        Ok(taken)
    }

    async fn take_scheduled(
        &self,
        name: &TenantName,
        schedule: &Schedule,
        snap: &SnapshotName,
    ) -> Result<(), ServiceError> {
        let _op = self.ops.operation(name).await?;
        self.require_ready(name)?;
        let views = self.snapshot_views(name).await?;
        let listed: Vec<(SnapshotName, DateTime<Utc>)> =
            views.iter().map(|s| (s.name.clone(), s.taken_at)).collect();
        for old in snapshot::to_prune(&listed, schedule.keep.saturating_sub(1)) {
            if let Some(view) = views.iter().find(|v| v.name == old) {
                self.remove_snapshot(name, view).await?;
                self.record(
                    self.event("snapshot.delete", Outcome::Ok)
                        .tenant(name.as_str())
                        .with("snapshot", &old)
                        .with("by", "schedule"),
                )?;
            }
        }
        self.take_snapshot(name, snap).await.map(|_| ())
    }

    fn audit_snapshot<T>(
        &self,
        action: &str,
        name: &TenantName,
        snap: &SnapshotName,
        result: &Result<T, ServiceError>,
    ) -> Result<(), ServiceError> {
        let ev = match result {
            Ok(_) => self.event(action, Outcome::Ok),
            Err(e) => self.event(action, Outcome::Failed).with("error", e.code()),
        };
        self.record(ev.tenant(name.as_str()).with("snapshot", snap))
    }
}
