//! The daemon's side of lifecycle policies: who is active, and the periodic reap that stops idle
//! workspaces and removes tenants whose time is up; autostart when the daemon starts.

use crate::spec::container_name;
use crate::{Hostel, Quiet, ServiceError};
use hostel_core::lifecycle::WorkspaceState;
use hostel_core::policy::{Action, Observed, decide};
use hostel_core::{Outcome, TenantName};
use std::collections::HashMap;

/// CPU use below this share of one CPU between two looks counts as idle (shells, tini, sleep).
const BUSY_SHARE: f64 = 0.02;

/// What the reaper remembers between looks: each running workspace's CPU counter.
#[derive(Debug, Default)]
pub struct ReapState {
    cpu_ns: HashMap<String, u64>,
}

impl Hostel {
    /// A session or command of the tenant began (this process counts it until it ends).
    pub fn activity_begin(&self, name: &TenantName) {
        let mut open = self.open_sessions.lock().unwrap_or_else(|p| p.into_inner());
        *open.entry(name.to_string()).or_insert(0) += 1;
        drop(open);
        let _ = self.store.touch(name, self.now());
    }

    /// A session or command of the tenant ended.
    pub fn activity_end(&self, name: &TenantName) {
        let mut open = self.open_sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(name.as_str()) {
            *n = n.saturating_sub(1);
        }
        drop(open);
        let _ = self.store.touch(name, self.now());
    }

    /// Open sessions and commands of all tenants, as this process counts them.
    pub fn open_total(&self) -> u32 {
        let open = self.open_sessions.lock().unwrap_or_else(|p| p.into_inner());
        open.values().sum()
    }

    fn open_count(&self, name: &TenantName) -> u32 {
        let open = self.open_sessions.lock().unwrap_or_else(|p| p.into_inner());
        open.get(name.as_str()).copied().unwrap_or(0)
    }

    /// Looks at every tenant once and applies its policies; `every_secs` is the time since the
    /// last look. Returns what it did, by tenant.
    pub async fn reap(
        &self,
        state: &mut ReapState,
        every_secs: u64,
    ) -> Result<Vec<(String, Action)>, ServiceError> {
        let now = self.now();
        let mut done = Vec::new();
        for t in self.store.tenants()? {
            if !t.status.is_ready() {
                continue;
            }
            let (ws, _) = self.observe(&t.name).await?;
            let running = ws == WorkspaceState::Running;
            let disk = self
                .storage
                .usage(&t.name)
                .ok()
                .flatten()
                .map(|u| u.used.as_u64());
            let busy = if running {
                let stats = self.runtime.stats(&container_name(&t.name)).await.ok();
                let cpu = stats.map(|s| s.cpu_total_ns).unwrap_or(0);
                self.metrics.usage(
                    t.name.as_str(),
                    stats.map(|s| s.cpu_total_ns as f64 / 1e9),
                    stats.map(|s| s.memory_used),
                    disk,
                );
                let before = state.cpu_ns.insert(t.name.to_string(), cpu);
                // Unknown before, or a counter that went back (the workspace was started
                // again since): count as busy, so a first look never stops anything.
                before.is_none_or(|b| {
                    cpu < b || (cpu - b) as f64 > BUSY_SHARE * every_secs as f64 * 1e9
                })
            } else {
                state.cpu_ns.remove(t.name.as_str());
                self.metrics.usage(t.name.as_str(), None, None, disk);
                false
            };
            let seen = Observed {
                running,
                exists: ws != WorkspaceState::Deleted,
                sessions: self.open_count(&t.name),
                last_active: t.last_active_at.unwrap_or(t.created_at),
                busy,
            };
            let action = decide(&t.policy, &seen, now, self.config.lifecycle.idle_stop_secs);
            let result = match action {
                Action::Keep => continue,
                Action::Stop => self.stop(&t.name).await.map(|_| ()),
                Action::Delete => self.delete(&t.name).await.map(|_| ()),
                Action::Purge => self.purge(&t.name, true).await,
            };
            let why = match action {
                Action::Stop => "idle",
                _ => "ttl expired",
            };
            let ev = match &result {
                Ok(()) => self.event("lifecycle.reap", Outcome::Ok),
                Err(e) => self
                    .event("lifecycle.reap", Outcome::Failed)
                    .with("error", e.code()),
            };
            self.record(
                ev.tenant(t.name.as_str())
                    .with("action", format!("{action:?}").to_lowercase())
                    .with("reason", why),
            )?;
            if let Err(e) = result {
                tracing::warn!(tenant = %t.name, error = %e, "lifecycle action failed");
                continue;
            }
            tracing::info!(tenant = %t.name, ?action, reason = why, "lifecycle");
            done.push((t.name.to_string(), action));
        }
        Ok(done)
    }

    /// Starts the workspaces of tenants marked autostart; returns their names.
    pub async fn autostart(&self) -> Result<Vec<String>, ServiceError> {
        let mut started = Vec::new();
        for t in self.store.tenants()? {
            if t.status.is_ready() && t.policy.autostart {
                match self.start(&t.name, &Quiet).await {
                    Ok(_) => started.push(t.name.to_string()),
                    Err(e) => tracing::warn!(tenant = %t.name, error = %e, "autostart failed"),
                }
            }
        }
        Ok(started)
    }
}
