//! hostel's use cases: everything an admin can ask of hostel, carried out over the store (what
//! should be), the runtime (what the engine has) and the home storage.
//!
//! Each use case re-reads real state, records intent in the store, acts, then commits; a failure
//! part-way rolls back what the call made and never deletes a home it did not make. Races between
//! two commands on one tenant are settled by the store's status compare-and-set: one wins, the
//! other gets a `conflict`. Start reading at [`Hostel::create`].
//!
//! This crate never prints: progress goes to a [`Progress`] the caller gives.

mod apps;
mod ban;
mod charts;
mod check;
mod error;
mod exec;
mod export;
mod files;
mod image;
pub mod kernel;
mod lifecycle;
mod metrics;
pub mod net;
mod network;
mod offload;
mod oplock;
mod origins;
mod paths;
mod reconcile;
mod share;
mod snapshot;
mod spec;
mod tenant;
mod token;
mod web;

pub use check::{CheckItem, Finding};
pub use error::ServiceError;
pub use exec::{Exec, ExecHandle, ExecOptions};
pub use export::{Export, ExportedPort, FORMAT as EXPORT_FORMAT, ImportRequest, Manifest};
pub use files::{CAPTURE_LIMIT, Download, DownloadKind, home_path};
pub use image::{BuildOutcome, ImageView};
pub use paths::Paths;
pub use reconcile::{DaemonStart, POOL_CHECK, ReconcileReport, ReconcileState, StorageState};
pub use snapshot::SnapshotView;
pub use spec::{OUTPUT_LOG_MAX, syscall_filter as workspace_syscall_filter};
pub use tenant::{CreateRequest, SetOutcome, TenantInfo, TenantSummary, Usage};
pub use web::{ADMIN_SESSION_HOURS, SESSION_HOURS, check_password};

use chrono::{DateTime, Utc};
use hostel_core::AuditEvent;
use hostel_core::config::Config;
use hostel_runtime::Runtime;
use hostel_runtime::storage::HomeStorage;
use hostel_store::{AuditLog, Store};
use std::collections::HashMap;
use std::sync::Arc;

/// Receives the steps of a long operation as they happen.
pub trait Progress: Send + Sync {
    /// One step, in a few words.
    fn step(&self, message: &str);
    /// Output of the step under way (an image build's command output): a renderer may show
    /// it beside the step rather than as a step of its own.
    fn detail(&self, message: &str) {
        self.step(message);
    }
}

/// Discards progress.
#[derive(Debug, Clone, Copy)]
pub struct Quiet;

impl Progress for Quiet {
    fn step(&self, _message: &str) {}
}

/// The hostel instance: one root, one store, one engine.
#[derive(Debug)]
pub struct Hostel {
    paths: Paths,
    config: Config,
    runtime: Arc<dyn Runtime>,
    storage: Arc<dyn HomeStorage>,
    store: Store,
    audit: AuditLog,
    actor: String,
    instance: String,
    wake_locks: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    open_sessions: Arc<std::sync::Mutex<HashMap<String, u32>>>,
    metrics: metrics::Metrics,
    history: std::sync::Mutex<hostel_core::history::History>,
    filter: Arc<dyn hostel_runtime::netfilter::PacketFilter>,
    filter_applied: std::sync::atomic::AtomicBool,
    /// Where the kernel's settings are (`/proc/sys`); `None` leaves them alone.
    sysctl_dir: Option<std::path::PathBuf>,
    kernel_checked: std::sync::atomic::AtomicBool,
    engine_facts: tokio::sync::OnceCell<EngineFacts>,
    auth_failures: ban::FailureWindow,
    tickets: origins::Tickets,
    ops: oplock::OpLocks,
    #[cfg(test)]
    faults: std::sync::Mutex<std::collections::HashSet<&'static str>>,
}

impl Hostel {
    /// Wires an instance. `actor` names who acts in audit records (`cli:root`).
    pub fn new(
        paths: Paths,
        config: Config,
        runtime: Arc<dyn Runtime>,
        storage: Arc<dyn HomeStorage>,
        store: Store,
        actor: impl Into<String>,
    ) -> Result<Self, ServiceError> {
        let instance = store.instance_id()?;
        let audit = AuditLog::new(paths.audit_log());
        let ops = oplock::OpLocks::new(paths.state().join("ops"));
        let check_secs = config.lifecycle.check_secs;
        Ok(Hostel {
            paths,
            config,
            runtime,
            storage: Arc::new(offload::OffExecutor(storage)),
            store,
            audit,
            actor: actor.into(),
            instance,
            wake_locks: tokio::sync::Mutex::new(HashMap::new()),
            open_sessions: Arc::new(std::sync::Mutex::new(HashMap::new())),
            metrics: metrics::Metrics::new().map_err(|e| ServiceError::Metrics {
                message: e.to_string(),
            })?,
            history: std::sync::Mutex::new(hostel_core::history::History::new(check_secs)),
            filter: Arc::new(hostel_runtime::netfilter::RecordingFilter::default()),
            filter_applied: std::sync::atomic::AtomicBool::new(false),
            sysctl_dir: None,
            kernel_checked: std::sync::atomic::AtomicBool::new(false),
            engine_facts: tokio::sync::OnceCell::new(),
            auth_failures: ban::FailureWindow::default(),
            tickets: origins::Tickets::default(),
            ops,
            #[cfg(test)]
            faults: std::sync::Mutex::default(),
        })
    }

    /// Uses `filter` for the host's packet-filter rules (the default only records them).
    pub fn with_packet_filter(
        mut self,
        filter: Arc<dyn hostel_runtime::netfilter::PacketFilter>,
    ) -> Self {
        self.filter = filter;
        self
    }

    /// Raises the host's shared kernel counts under `dir` (`/proc/sys`) before workspaces
    /// start (see [`kernel`]); by default they are left alone.
    pub fn with_kernel_settings(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.sysctl_dir = Some(dir.into());
        self
    }

    /// The store, for readers such as `audit`.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The audit log.
    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    /// The root's paths.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This instance's id (labels its containers).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    /// Appends an audit event, durably, before the caller acknowledges what it records.
    pub fn record(&self, event: AuditEvent) -> Result<(), ServiceError> {
        tracing::info!(target: "audit", kind = %event.kind, tenant = ?event.tenant, outcome = ?event.outcome);
        self.audit.append(&event)?;
        let outcome = match event.outcome {
            hostel_core::Outcome::Ok => "ok",
            hostel_core::Outcome::Failed => "failed",
            hostel_core::Outcome::Denied => "denied",
        };
        self.metrics.event(&event.kind, outcome);
        Ok(())
    }

    /// A named point in a multi-step operation where a test can make it die as a killed
    /// process would: no roll-back runs, the operation's lock goes with it, its intent stays.
    #[cfg(test)]
    fn fault(&self, point: &'static str) {
        let armed = self
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(point);
        if armed {
            panic!("fault injected at {point}");
        }
    }

    #[cfg(not(test))]
    fn fault(&self, _point: &'static str) {}

    /// Arms a fault point (see [`Hostel::fault`]).
    #[cfg(test)]
    fn arm(&self, point: &'static str) {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(point);
    }

    /// Disarms every fault point.
    #[cfg(test)]
    fn disarm(&self) {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    fn event(&self, action: &str, outcome: hostel_core::Outcome) -> AuditEvent {
        self.event_by(&self.actor_now(), action, outcome)
    }

    /// Who acts now: the caller the request named, or this process's actor. Work that goes on
    /// off the request's task (a streamed export) takes it along.
    fn actor_now(&self) -> String {
        ACTOR
            .try_with(Clone::clone)
            .unwrap_or_else(|_| self.actor.clone())
    }

    fn event_by(&self, actor: &str, action: &str, outcome: hostel_core::Outcome) -> AuditEvent {
        AuditEvent::new(self.now(), action, actor, outcome)
    }
}

/// What the engine says of itself that does not change while it runs, asked once.
#[derive(Debug, Clone, Copy)]
struct EngineFacts {
    /// How ids inside workspaces map to the host's.
    ids: hostel_runtime::IdMapping,
    /// Whether and how writable layers can be limited.
    layer_quota: Option<hostel_runtime::LayerQuota>,
    /// Whether the engine snapshots a workspace's system besides its home.
    system_snapshots: bool,
    /// Whether workspaces may run containers of their own.
    nesting: bool,
}

tokio::task_local! {
    /// Who the current request acts for, when a gateway said so.
    static ACTOR: String;
}

/// Runs `work` with the audit records it makes naming `actor` (`api:ci`, `web:alice`) instead
/// of the instance's own actor: gateways wrap each request in it.
pub async fn acting_as<F: std::future::Future>(actor: String, work: F) -> F::Output {
    ACTOR.scope(actor, work).await
}

#[cfg(test)]
mod tests;
