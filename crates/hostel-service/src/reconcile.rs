//! The reconciler: observe every tenant, decide with [`hostel_core::reconcile::plan`], act.
//!
//! The daemon runs [`Hostel::reconcile`] once at start and then every `[lifecycle] check_secs`;
//! `doctor` runs the same observation and plan, and `doctor --fix` the same repairs. A tenant
//! is repaired only while no live operation holds it (see `oplock`), so a repair never undoes
//! work in progress, and each tenant's failure stays its own: it is logged, audited and retried
//! with a growing pause, never `?` out of the loop over tenants.

use crate::spec::container_name;
use crate::{Hostel, Quiet, ServiceError};
use hostel_core::lifecycle::{TenantStatus, WorkspaceState};
use hostel_core::policy::{Action, Observed, decide};
use hostel_core::reconcile::{Repair, Seen, plan};
use hostel_core::{Outcome, TenantName};
use hostel_runtime::storage::PoolState;
use hostel_runtime::{LABEL_INSTANCE, LABEL_TENANT, RuntimeError};
use hostel_store::TenantRecord;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// CPU use below this share of one CPU between two looks counts as idle (shells, tini, sleep).
const BUSY_SHARE: f64 = 0.02;

/// The longest pause before a failing tenant is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What the reconciler remembers between looks.
#[derive(Debug, Default)]
pub struct ReconcileState {
    /// Each running workspace's CPU counter at the last look.
    cpu_ns: HashMap<String, u64>,
    /// Tenants whose last repair failed: how often in a row, and when to try again.
    backoff: HashMap<String, (u32, Instant)>,
}

/// What one look did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Repairs carried out, by tenant.
    pub repaired: Vec<(String, Repair)>,
    /// Repairs that failed: tenant, repair, error.
    pub failed: Vec<(String, Repair, String)>,
    /// Tenants that could not be looked at: tenant, error (an engine that does not answer, a
    /// container hostel does not own under the tenant's name).
    pub unobserved: Vec<(String, String)>,
    /// Tenants left alone because an operation was working on them.
    pub busy: Vec<String>,
    /// Tenants left alone because they failed lately and wait for their next try.
    pub waiting: Vec<String>,
    /// Containers and networks of this instance without a tenant, removed.
    pub orphans_removed: Vec<String>,
}

/// One tenant as observed, with what the plan needs.
pub(crate) struct Observation {
    pub(crate) seen: Seen,
}

/// How often the daemon looks at the homes pool and the engine's storage: a tenant writing
/// fast fills a gigabyte in seconds, and they grow only ahead of what is used.
pub const POOL_CHECK: Duration = Duration::from_secs(2);

/// How the homes pool and the engine's storage stand (`None`: nothing for hostel to keep).
#[derive(Debug)]
pub struct StorageState {
    /// The homes pool.
    pub homes: Result<Option<PoolState>, ServiceError>,
    /// The engine's storage.
    pub engine: Result<Option<PoolState>, ServiceError>,
}

impl Hostel {
    /// Keeps the homes pool and the engine's storage able to take what they accept:
    /// allocated, grown while the host has room (see `hostel_runtime::storage::pool`).
    /// Returns how each stands.
    pub async fn keep_storage(&self) -> StorageState {
        StorageState {
            homes: self.storage.maintain().map_err(ServiceError::from),
            engine: self
                .runtime
                .keep_storage()
                .await
                .map_err(ServiceError::from),
        }
    }

    /// Refuses `what` when the engine's storage is full and cannot grow, so that a workspace is
    /// never made to fail at its first write. A storage hostel cannot read is not a refusal.
    pub(crate) async fn require_engine_room(&self, what: &str) -> Result<(), ServiceError> {
        match self.runtime.keep_storage().await {
            Ok(Some(s)) if s.is_full() || s.read_only => Err(RuntimeError::NoSpace {
                action: s.full_message(what, "the engine's storage"),
            }
            .into()),
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot keep the engine's storage");
                Ok(())
            }
        }
    }

    /// Looks at every tenant once and repairs what differs from what the store asks for, and
    /// applies the lifecycle policies; `every_secs` is the time since the last look. Fails only
    /// when the store cannot list the tenants.
    pub async fn reconcile(
        &self,
        state: &mut ReconcileState,
        every_secs: u64,
    ) -> Result<ReconcileReport, ServiceError> {
        let mut report = ReconcileReport::default();
        let now = Instant::now();
        for t in self.store.tenants()? {
            let key = t.name.to_string();
            if state.backoff.get(&key).is_some_and(|(_, at)| *at > now) {
                report.waiting.push(key);
                continue;
            }
            match self.reconcile_one(&t.name, state, every_secs).await {
                Err(e) => {
                    tracing::warn!(tenant = %t.name, error = %e, "cannot look at the tenant");
                    report.unobserved.push((key.clone(), e.to_string()));
                    back_off(state, &key, every_secs);
                }
                Ok(None) => report.busy.push(key),
                Ok(Some(done)) => {
                    let failed = done.iter().any(|(_, r)| r.is_err());
                    for (repair, result) in done {
                        match result {
                            Ok(()) => report.repaired.push((key.clone(), repair)),
                            Err(e) => report.failed.push((key.clone(), repair, e)),
                        }
                    }
                    if failed {
                        back_off(state, &key, every_secs);
                    } else {
                        state.backoff.remove(&key);
                    }
                }
            }
        }
        self.sweep_orphans(&mut report).await;
        let known: Vec<String> = self
            .store
            .tenants()?
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        state.cpu_ns.retain(|k, _| known.contains(k));
        state.backoff.retain(|k, _| known.contains(k));
        {
            let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
            // A purged tenant's charts and metric series go with it.
            history.retain(|k| {
                let keep = known.iter().any(|n| n == k);
                if !keep {
                    self.metrics.usage(k, None, None, None);
                    self.metrics.network(k, None);
                }
                keep
            });
            history.close_round(self.now().timestamp());
        }
        Ok(report)
    }

    /// Removes this instance's containers and networks whose tenant has no record. They hold
    /// no tenant data (a home is never inside a container) and no create can be making them:
    /// a create records its tenant first. They come from an engine call a killed daemon had
    /// sent, which the engine finished after the roll-back. Homes without a tenant are only
    /// reported (by `doctor`), never removed.
    async fn sweep_orphans(&self, report: &mut ReconcileReport) {
        let mine = [(LABEL_INSTANCE.to_owned(), self.instance.clone())];
        let containers = match self.runtime.list(&mine).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the containers");
                return;
            }
        };
        let networks = match self.runtime.networks(&mine).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the networks");
                return;
            }
        };
        let objects = containers
            .into_iter()
            .map(|c| (c.name, c.labels, true))
            .chain(networks.into_iter().map(|n| (n.name, n.labels, false)));
        for (name, labels, container) in objects {
            let owner = labels
                .get(LABEL_TENANT)
                .and_then(|t| t.parse::<TenantName>().ok());
            let Some(owner) = owner else { continue };
            let Ok(Some(_held)) = self.ops.repair(&owner) else {
                continue;
            };
            if !matches!(self.store.tenant(&owner), Ok(None)) {
                continue;
            }
            let removed = if container {
                self.runtime.remove(&name).await
            } else {
                self.runtime.network_remove(&name).await
            }
            .map_err(ServiceError::from);
            let ev = match &removed {
                Ok(()) => self.event("reconcile.repair", Outcome::Ok),
                Err(e) => self
                    .event("reconcile.repair", Outcome::Failed)
                    .with("error", e.code()),
            };
            let ev = ev
                .tenant(owner.as_str())
                .with("repair", "remove_orphan")
                .with("object", &name)
                .with("by", "reconciler");
            if let Err(e) = self.record(ev) {
                tracing::error!(error = %e, "cannot write the audit log");
            }
            match removed {
                Ok(()) => {
                    tracing::info!(object = %name, "removed an engine object without a tenant");
                    report.orphans_removed.push(name);
                }
                Err(e) => tracing::warn!(object = %name, error = %e, "cannot remove an orphan"),
            }
        }
    }

    /// One tenant: `None` when an operation holds it; else each repair with its outcome.
    async fn reconcile_one(
        &self,
        name: &TenantName,
        state: &mut ReconcileState,
        every_secs: u64,
    ) -> Result<Option<Vec<(Repair, Result<(), String>)>>, ServiceError> {
        let Some(_held) = self.ops.repair(name)? else {
            return Ok(None);
        };
        // Read again under the lock: an operation may have changed or removed it since.
        let Some(t) = self.store.tenant(name)? else {
            return Ok(Some(Vec::new()));
        };
        let obs = self
            .observe_for_repair(&t, Some((state, every_secs)))
            .await?;
        let mut done = Vec::new();
        for repair in plan(&obs.seen) {
            let result = self.carry_out(&t, repair).await;
            self.audit_repair(&t.name, repair, &result, "reconciler")?;
            match result {
                Ok(()) => {
                    tracing::info!(tenant = %t.name, repair = repair.as_str(), "repaired");
                    done.push((repair, Ok(())));
                }
                Err(e) => {
                    tracing::warn!(tenant = %t.name, repair = repair.as_str(), error = %e, "repair failed");
                    done.push((repair, Err(e.to_string())));
                    break;
                }
            }
        }
        Ok(Some(done))
    }

    /// Observes one tenant for [`plan`]; with `lifecycle` (the reconciler's memory and the time
    /// since its last look) also asks the policies, which `doctor` does not.
    pub(crate) async fn observe_for_repair(
        &self,
        t: &TenantRecord,
        lifecycle: Option<(&mut ReconcileState, u64)>,
    ) -> Result<Observation, ServiceError> {
        let (workspace, info) = match t.status {
            // A half-made or half-purged tenant's container may be anything; the plan does not
            // look at it, and the repair removes it. A half-restored one is restored again
            // before anything else.
            TenantStatus::Creating | TenantStatus::Purging | TenantStatus::Restoring => {
                (WorkspaceState::Deleted, None)
            }
            TenantStatus::Ready => self.observe(&t.name).await?,
        };
        let home = self.storage.exists(&t.name);
        let disk_limit_match = if home && t.status.is_ready() {
            self.storage.prepare()?;
            self.storage.limit(&t.name)? == Some(t.quota.disk)
        } else {
            true
        };
        let limits_match = info
            .as_ref()
            .and_then(|i| i.limits)
            .is_none_or(|l| l == t.quota.limits());
        let action = match lifecycle {
            Some((state, every_secs)) if t.status.is_ready() => {
                self.lifecycle_action(t, workspace, state, every_secs).await
            }
            _ => Action::Keep,
        };
        Ok(Observation {
            seen: Seen {
                status: t.status,
                desired: t.desired,
                workspace,
                home,
                adopted_home: t.adopted_home,
                limits_match,
                disk_limit_match,
                lifecycle: action,
            },
        })
    }

    /// What the tenant's policies ask for now. A workspace whose usage cannot be read counts
    /// as busy: an unknown is never a reason to stop someone's work.
    async fn lifecycle_action(
        &self,
        t: &TenantRecord,
        workspace: WorkspaceState,
        state: &mut ReconcileState,
        every_secs: u64,
    ) -> Action {
        let running = workspace == WorkspaceState::Running;
        let disk = self
            .storage
            .usage(&t.name)
            .ok()
            .flatten()
            .map(|u| u.used.as_u64());
        let sessions = self.open_count(&t.name);
        let mut reading = hostel_core::history::Reading {
            at: self.now().timestamp(),
            running,
            disk,
            sessions,
            ..Default::default()
        };
        let busy = if running {
            match self.runtime.stats(&container_name(&t.name)).await {
                Ok(stats) => {
                    let cpu = stats.cpu_total_ns;
                    self.metrics.usage(
                        t.name.as_str(),
                        Some(cpu as f64 / 1e9),
                        Some(stats.memory_used),
                        disk,
                    );
                    self.metrics.network(
                        t.name.as_str(),
                        Some((stats.net_rx_bytes, stats.net_tx_bytes)),
                    );
                    // Rates are over the time between two answers, not two questions.
                    reading.at = self.now().timestamp();
                    reading.cpu_ns = Some(cpu);
                    reading.memory = Some(stats.memory_used);
                    reading.rx_bytes = Some(stats.net_rx_bytes);
                    reading.tx_bytes = Some(stats.net_tx_bytes);
                    let before = state.cpu_ns.insert(t.name.to_string(), cpu);
                    // Unknown before, or a counter that went back (the workspace was started
                    // again since): busy, so a first look never stops anything.
                    before.is_none_or(|b| {
                        cpu < b || (cpu - b) as f64 > BUSY_SHARE * every_secs as f64 * 1e9
                    })
                }
                Err(e) => {
                    tracing::debug!(tenant = %t.name, error = %e, "no usage; counted as busy");
                    state.cpu_ns.remove(t.name.as_str());
                    self.metrics.usage(t.name.as_str(), None, None, disk);
                    self.metrics.network(t.name.as_str(), None);
                    true
                }
            }
        } else {
            state.cpu_ns.remove(t.name.as_str());
            self.metrics.usage(t.name.as_str(), None, None, disk);
            self.metrics.network(t.name.as_str(), None);
            false
        };
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(t.name.as_str(), reading);
        let seen = Observed {
            running,
            exists: workspace != WorkspaceState::Deleted,
            sessions,
            last_active: t.last_active_at.unwrap_or(t.created_at),
            busy,
        };
        decide(
            &t.policy,
            &seen,
            self.now(),
            self.config.lifecycle.idle_stop_secs,
        )
    }

    /// Carries out one repair on a tenant the caller holds.
    pub(crate) async fn carry_out(
        &self,
        t: &TenantRecord,
        repair: Repair,
    ) -> Result<(), ServiceError> {
        let name = &t.name;
        match repair {
            Repair::RollBackCreate { remove_home } => {
                self.roll_back_create(name, remove_home).await
            }
            Repair::FinishPurge => self.finish_purge(name).await,
            Repair::FinishRestore => self.finish_restore(t).await,
            Repair::MakeHome => {
                self.storage.prepare()?;
                self.storage.ensure(name, t.quota.disk)?;
                Ok(())
            }
            Repair::ApplyDiskLimit => {
                self.storage.prepare()?;
                Ok(self.storage.resize(name, t.quota.disk)?)
            }
            Repair::ApplyLimits => Ok(self
                .runtime
                .update_limits(&container_name(name), &t.quota.limits())
                .await?),
            Repair::Start => self.ensure_running_inner(t, &Quiet).await.map(|_| ()),
            Repair::Recreate => {
                self.ensure_running_inner(t, &Quiet).await?;
                self.stop_inner(name).await.map(|_| ())
            }
            Repair::Stop | Repair::Lifecycle(Action::Stop) => {
                self.stop_inner(name).await.map(|_| ())
            }
            Repair::Remove | Repair::Lifecycle(Action::Delete) => {
                self.delete_inner(name).await.map(|_| ())
            }
            Repair::Lifecycle(Action::Purge) => {
                match self.store.set_status(
                    name,
                    TenantStatus::Ready,
                    TenantStatus::Purging,
                    self.now(),
                ) {
                    Ok(()) => {}
                    Err(hostel_store::StoreError::StatusChanged { actual, .. }) => {
                        return Err(ServiceError::Busy {
                            tenant: name.to_string(),
                            status: actual,
                        });
                    }
                    Err(e) => return Err(e.into()),
                }
                self.finish_purge(name).await
            }
            Repair::Lifecycle(Action::Keep) => Ok(()),
        }
    }

    /// Records a repair: lifecycle actions as `lifecycle.reap` (with the action and why), the
    /// others as `reconcile.repair`; `by` is `reconciler` or `doctor`.
    pub(crate) fn audit_repair(
        &self,
        name: &TenantName,
        repair: Repair,
        result: &Result<(), ServiceError>,
        by: &str,
    ) -> Result<(), ServiceError> {
        let outcome = if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        let ev = match repair {
            Repair::Lifecycle(action) => self
                .event("lifecycle.reap", outcome)
                .with("action", format!("{action:?}").to_lowercase())
                .with(
                    "reason",
                    if action == Action::Stop {
                        "idle"
                    } else {
                        "ttl expired"
                    },
                ),
            _ => self
                .event("reconcile.repair", outcome)
                .with("repair", repair.as_str())
                .with("by", by),
        };
        let ev = match result {
            Err(e) => ev.with("error", e.code()),
            Ok(()) => ev,
        };
        self.record(ev.tenant(name.as_str()))
    }

    /// What the daemon does once when it starts, before its first look: tenants marked
    /// autostart are to run (the look starts them); after a host reboot, which stopped every
    /// workspace, the others stay stopped until their next connection wakes them; what an image
    /// build cut short left is removed.
    pub fn daemon_started(&self) -> Result<DaemonStart, ServiceError> {
        let mut out = DaemonStart::default();
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|b| b.trim().to_owned())
            .ok();
        let last = self.store.meta("boot_id")?;
        let rebooted = matches!((&last, &boot), (Some(l), Some(b)) if l != b);
        for t in self.store.tenants()? {
            if !t.status.is_ready() {
                continue;
            }
            if t.policy.autostart {
                if t.desired != WorkspaceState::Running {
                    self.store
                        .set_desired(&t.name, WorkspaceState::Running, self.now())?;
                }
                out.autostart.push(t.name.to_string());
            } else if rebooted && t.desired == WorkspaceState::Running {
                self.store
                    .set_desired(&t.name, WorkspaceState::Stopped, self.now())?;
                out.left_stopped.push(t.name.to_string());
            }
        }
        if rebooted {
            self.record(
                self.event("host.rebooted", Outcome::Ok)
                    .with("left_stopped", out.left_stopped.len()),
            )?;
        }
        if let Some(b) = boot.filter(|b| last.as_deref() != Some(b.as_str())) {
            self.store.set_meta("boot_id", &b)?;
        }
        out.build_leftovers = hostel_store::blocking(|| self.clean_build_leftovers())?;
        if !out.build_leftovers.is_empty() {
            self.record(
                self.event("reconcile.repair", Outcome::Ok)
                    .with("repair", "clean_build_leftovers")
                    .with("removed", out.build_leftovers.join(" ")),
            )?;
        }
        Ok(out)
    }
}

/// What [`Hostel::daemon_started`] marked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DaemonStart {
    /// Tenants whose workspaces are to run because they autostart.
    pub autostart: Vec<String>,
    /// Tenants left stopped after a reboot.
    pub left_stopped: Vec<String>,
    /// What an image build cut short had left in `images/`, removed.
    pub build_leftovers: Vec<String>,
}

fn back_off(state: &mut ReconcileState, key: &str, every_secs: u64) {
    let entry = state
        .backoff
        .entry(key.to_owned())
        .or_insert((0, Instant::now()));
    entry.0 = entry.0.saturating_add(1);
    let pause = Duration::from_secs(every_secs.max(1))
        .saturating_mul(1u32 << entry.0.min(10).saturating_sub(1))
        .min(MAX_BACKOFF);
    entry.1 = Instant::now() + pause;
}
