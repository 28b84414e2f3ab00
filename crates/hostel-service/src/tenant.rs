//! Tenant use cases: create, list, info, start, stop, exec, set, keys, delete, purge.

use crate::spec::{self, container_name};
use crate::{Hostel, Progress, ServiceError};
use futures_util::StreamExt;
use hostel_core::lifecycle::{StartPlan, TenantStatus, WorkspaceState};
use hostel_core::network::Egress;
use hostel_core::placement::{HostCapacity, check_fits};
use hostel_core::policy::{Policy, PolicyChange};
use hostel_core::{ByteSize, Cpus, Gpus, Outcome, Quota, QuotaChange, SshPublicKey, TenantName};
use hostel_runtime::storage::TENANT_UID;
use hostel_runtime::{
    ExecRequest, LABEL_INSTANCE, LABEL_SPEC, LABEL_TENANT, LayerQuota, RuntimeError, WorkspaceInfo,
};
use hostel_store::{KeyRecord, NewTenant, StoreError, TenantRecord};
use serde::Serialize;
use std::time::Duration;

/// How long a started workspace's init has to make the tenant's user. A system container's
/// boot on a busy host takes seconds; longer means it is stuck or the host is starved.
const READY_WAIT: Duration = Duration::from_secs(30);

/// What `create` is asked for; unset quotas come from `[defaults]`.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// The tenant's name.
    pub name: TenantName,
    /// Its keys (at least one).
    pub keys: Vec<SshPublicKey>,
    /// CPUs.
    pub cpus: Option<Cpus>,
    /// Memory.
    pub memory: Option<ByteSize>,
    /// Home size.
    pub disk: Option<ByteSize>,
    /// Processes.
    pub pids: Option<u32>,
    /// GPUs; unset: none.
    pub gpus: Option<Gpus>,
    /// Disk reads and writes a second; unset: `[defaults] disk_io`.
    pub disk_io: Option<hostel_core::DiskIo>,
    /// Image reference; unset: the newest built workspace image.
    pub image: Option<String>,
    /// Lifecycle policies (TTL as an expiry time, ephemeral, autostart, idle stop).
    pub policy: Policy,
    /// Where the workspace may connect; unset: `[defaults] egress`.
    pub egress: Option<Egress>,
}

impl CreateRequest {
    /// A request for `name` with `keys` and everything else from the defaults: set the fields
    /// that differ with struct update syntax.
    pub fn new(name: TenantName, keys: Vec<SshPublicKey>) -> Self {
        CreateRequest {
            name,
            keys,
            cpus: None,
            memory: None,
            disk: None,
            pids: None,
            gpus: None,
            disk_io: None,
            image: None,
            policy: Policy::default(),
            egress: None,
        }
    }
}

/// One row of `list`.
#[derive(Debug, Clone, Serialize)]
pub struct TenantSummary {
    /// Name.
    pub name: String,
    /// Tenant status (`ready` unless a command is working on it).
    pub status: TenantStatus,
    /// Workspace state as the engine says.
    pub state: WorkspaceState,
    /// Image.
    pub image: String,
    /// Limits.
    pub quota: Quota,
}

/// Live usage of a running workspace.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    /// CPU seconds used since the workspace started.
    pub cpu_seconds: f64,
    /// Memory in use.
    pub memory_used: ByteSize,
    /// Processes and threads.
    pub pids: u64,
    /// Processes the kernel OOM-killed since start.
    pub oom_kills: u64,
}

/// What `info` shows.
#[derive(Debug, Clone, Serialize)]
pub struct TenantInfo {
    /// Name, status, state, image, quota.
    #[serde(flatten)]
    pub summary: TenantSummary,
    /// What the admin last asked for.
    pub desired: WorkspaceState,
    /// The container's engine name.
    pub container: String,
    /// The home on the host.
    pub home: String,
    /// Whether the running container predates the tenant's current image or settings.
    pub stale: bool,
    /// Seconds since the workspace started, when running.
    pub uptime_secs: Option<i64>,
    /// Live usage, when running.
    pub usage: Option<Usage>,
    /// Disk used in the home.
    pub disk_used: Option<ByteSize>,
    /// Number of SSH keys.
    pub keys: usize,
    /// When the tenant was created.
    pub created_at: String,
    /// Lifecycle policies.
    pub policy: Policy,
    /// Where the workspace may connect.
    pub egress: Egress,
}

/// How one `set` change took effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetOutcome {
    /// `cpus`, `memory`, `disk`, `pids`, `image`.
    pub field: &'static str,
    /// Old value.
    pub from: String,
    /// New value.
    pub to: String,
    /// `live`, `next start`.
    pub applied: &'static str,
}

/// Each policy that differs, as `set` reports it.
fn policy_changes(old: &Policy, new: &Policy) -> Vec<SetOutcome> {
    let expiry = |p: &Policy| {
        p.expires_at.map_or("never".to_owned(), |t| {
            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        })
    };
    let idle = |p: &Policy| {
        p.idle_stop_secs
            .map_or("default".to_owned(), |s| format!("{s}s"))
    };
    [
        ("expires", expiry(old), expiry(new)),
        (
            "ephemeral",
            old.ephemeral.to_string(),
            new.ephemeral.to_string(),
        ),
        (
            "autostart",
            old.autostart.to_string(),
            new.autostart.to_string(),
        ),
        ("idle_stop", idle(old), idle(new)),
    ]
    .into_iter()
    .filter(|(_, from, to)| from != to)
    .map(|(field, from, to)| SetOutcome {
        field,
        from,
        to,
        applied: "now",
    })
    .collect()
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", s.get(..end).unwrap_or_default())
}

impl Hostel {
    pub(crate) fn require_ready(&self, name: &TenantName) -> Result<TenantRecord, ServiceError> {
        let t = self.store.require(name)?;
        if !t.status.is_ready() {
            return Err(ServiceError::Busy {
                tenant: name.to_string(),
                status: t.status.to_string(),
            });
        }
        Ok(t)
    }

    /// Refuses to start work that needs room when the root's filesystem is nearly full.
    fn require_free_space(&self, what: &str) -> Result<(), ServiceError> {
        const MIN_FREE: ByteSize = ByteSize::mib(64);
        if let Ok(s) = nix::sys::statvfs::statvfs(self.paths.root()) {
            let free = ByteSize::bytes(s.blocks_available() * s.fragment_size());
            if free < MIN_FREE {
                return Err(RuntimeError::NoSpace {
                    action: format!(
                        "{what}: {} free under {}, {MIN_FREE} needed",
                        free.human(),
                        self.paths.root().display()
                    ),
                }
                .into());
            }
        }
        Ok(())
    }

    /// What the engine has for the tenant. A container of that name made by another hostel
    /// instance (another root on the same engine) is a conflict, never touched.
    pub(crate) async fn observe(
        &self,
        name: &TenantName,
    ) -> Result<(WorkspaceState, Option<WorkspaceInfo>), ServiceError> {
        let cname = container_name(name);
        match self.runtime.inspect(&cname).await? {
            None => Ok((WorkspaceState::Deleted, None)),
            Some(info) => {
                if info.labels.get(LABEL_INSTANCE).map(String::as_str)
                    != Some(self.instance.as_str())
                {
                    return Err(RuntimeError::Conflict {
                        name: cname,
                        message: "the container belongs to another hostel instance or to no \
                                  hostel at all; rename or remove it"
                            .into(),
                    }
                    .into());
                }
                Ok((info.state, Some(info)))
            }
        }
    }

    /// The workspace spec for `t`: with user namespaces on the engine, the tenant gets sudo.
    pub(crate) async fn spec_for(
        &self,
        t: &TenantRecord,
    ) -> Result<hostel_runtime::WorkspaceSpec, ServiceError> {
        let facts = self.engine_facts().await?;
        let image = self.runtime.image(&t.image).await?;
        let layer_base = match facts.layer_quota {
            Some(LayerQuota::WholeRoot) => image.as_ref().map(|i| i.size),
            Some(LayerQuota::OwnWrites) => Some(0),
            None => None,
        };
        let nesting = image
            .as_ref()
            .is_some_and(|i| i.labels.contains_key(hostel_core::NESTING_LABEL));
        if nesting && !facts.nesting {
            return Err(ServiceError::NestingUnsupported {
                image: t.image.clone(),
            });
        }
        let shares = self.shares_of(&t.name)?;
        Ok(spec::workspace_spec(
            &t.name,
            &t.image,
            &t.quota,
            &self.storage.home_path(&t.name),
            t.egress,
            spec::Host {
                instance: &self.instance,
                labels: &self.config.engine.labels,
                ids: facts.ids,
                layer_base,
                shares: &shares,
                nesting,
            },
        ))
    }

    /// Whether a tenant's workspace may run containers of its own: its image asks for it and
    /// the engine can confine them.
    pub async fn runs_containers(&self, name: &TenantName) -> Result<bool, ServiceError> {
        let t = self.require_ready(name)?;
        Ok(self.spec_for(&t).await?.privileges == hostel_runtime::Privileges::Nesting)
    }

    /// The host uid a tenant's files belong to: its uid inside as the engine maps ids
    /// (asked once).
    pub(crate) async fn tenant_uid(&self) -> Result<u32, ServiceError> {
        Ok(self.engine_facts().await?.ids.home_uid(TENANT_UID))
    }

    /// How the engine maps ids inside workspaces to the host's (asked once).
    pub async fn engine_ids(&self) -> Result<hostel_runtime::IdMapping, ServiceError> {
        Ok(self.engine_facts().await?.ids)
    }

    pub(crate) async fn engine_facts(&self) -> Result<crate::EngineFacts, ServiceError> {
        let facts = self
            .engine_facts
            .get_or_try_init(|| async {
                let engine = self.runtime.ping().await?;
                Ok::<_, ServiceError>(crate::EngineFacts {
                    ids: engine.ids,
                    layer_quota: engine.layer_quota,
                    system_snapshots: engine.system_snapshots,
                    nesting: engine.nesting,
                })
            })
            .await?;
        Ok(*facts)
    }

    async fn capacity(&self) -> Result<HostCapacity, ServiceError> {
        let engine = self.runtime.ping().await?;
        Ok(HostCapacity {
            cpus: Cpus::millis(engine.cpus.saturating_mul(1000)),
            memory: ByteSize::bytes(engine.memory),
            disk_total: self.storage.capacity(),
            gpus: engine.gpus,
        })
    }

    /// Creates a tenant: records it, makes its home, creates and starts its workspace. Rolls
    /// back everything it made when a step fails; a home that existed before is kept.
    pub async fn create(
        &self,
        req: CreateRequest,
        progress: &dyn Progress,
    ) -> Result<TenantInfo, ServiceError> {
        let started = std::time::Instant::now();
        let result = self.create_inner(&req, progress, None).await;
        if result.is_ok() {
            self.metrics
                .observe("create", started.elapsed().as_secs_f64());
        }
        let mut ev = self
            .event(
                "tenant.create",
                if result.is_ok() {
                    Outcome::Ok
                } else {
                    Outcome::Failed
                },
            )
            .tenant(req.name.as_str());
        if let Err(e) = &result {
            ev = ev.with("error", e.code());
        }
        self.record(ev)?;
        // What was made, without asking the engine again: the workspace was running a moment
        // ago (another command may stop or purge it at any time), and a sandbox harness waits
        // for this answer before its first command.
        let made = result?;
        let keys = req.keys.len();
        let mut info = self.static_info(made, WorkspaceState::Running);
        info.keys = keys;
        Ok(info)
    }

    /// Creates a tenant whose new home `fill` fills before its workspace starts (an import,
    /// which audits it).
    pub(crate) async fn create_filled(
        &self,
        req: CreateRequest,
        progress: &dyn Progress,
        fill: &crate::export::Filler,
    ) -> Result<TenantInfo, ServiceError> {
        let made = self.create_inner(&req, progress, Some(fill)).await?;
        let mut info = self.static_info(made, WorkspaceState::Running);
        info.keys = req.keys.len();
        Ok(info)
    }

    /// What `info` says without asking the engine or the storage.
    fn static_info(&self, t: TenantRecord, state: WorkspaceState) -> TenantInfo {
        TenantInfo {
            desired: t.desired,
            container: container_name(&t.name),
            home: self.storage.home_path(&t.name).display().to_string(),
            stale: false,
            uptime_secs: None,
            usage: None,
            disk_used: None,
            keys: 0,
            created_at: t.created_at.to_rfc3339(),
            policy: t.policy,
            egress: t.egress,
            summary: summary(t, state),
        }
    }

    async fn create_inner(
        &self,
        req: &CreateRequest,
        progress: &dyn Progress,
        fill: Option<&crate::export::Filler>,
    ) -> Result<TenantRecord, ServiceError> {
        let name = &req.name;
        if req.keys.is_empty() {
            return Err(ServiceError::NoKeys {
                tenant: name.to_string(),
            });
        }
        let d = self.config.defaults;
        let quota = Quota {
            cpus: req.cpus.unwrap_or(d.cpus),
            memory: req.memory.unwrap_or(d.memory),
            disk: req.disk.unwrap_or(d.disk),
            pids: req.pids.unwrap_or(d.pids),
            gpus: req.gpus.unwrap_or_default(),
            disk_io: req.disk_io.unwrap_or(d.disk_io),
        };
        quota.validate()?;
        progress.step("checking the engine, the image and the quota");
        self.storage.prepare()?;
        self.require_free_space("a new tenant")?;
        check_fits(&quota, &self.capacity().await?)?;
        // After capacity, which asks the engine first: a dead engine is that error, said once.
        self.require_engine_room("a new tenant").await?;
        let image = self.resolve_image(req.image.as_deref()).await?;
        // From here on this create is an operation on the name: a repair waits for it to end,
        // or, if this process dies, rolls back what it recorded.
        let _op = self.ops.operation(name).await?;
        if self.store.tenant(name)?.is_some() {
            return Err(StoreError::TenantExists {
                name: name.to_string(),
            }
            .into());
        }
        // A leftover container under this name would make the create fail half-way; refuse now.
        self.observe(name).await?;
        let adopted_home = self.storage.exists(name);
        if adopted_home && fill.is_some() {
            return Err(ServiceError::HomeExists {
                tenant: name.to_string(),
            });
        }
        progress.step(&format!("recording tenant {name}"));
        self.store.insert_tenant(
            &NewTenant {
                name: name.clone(),
                image: image.clone(),
                quota,
                keys: req.keys.clone(),
                policy: req.policy,
                egress: req.egress.unwrap_or(self.config.defaults.egress),
                adopted_home,
            },
            self.now(),
        )?;
        self.fault("create.recorded");
        let steps = self.create_steps(name, &quota, progress, fill).await;
        let done = steps.and_then(|()| {
            let mut t = self.store.require(name)?;
            self.store.set_status(
                name,
                TenantStatus::Creating,
                TenantStatus::Ready,
                self.now(),
            )?;
            t.status = TenantStatus::Ready;
            Ok(t)
        });
        if done.is_err() {
            progress.step("failed; rolling back");
            if let Err(e) = self.roll_back_create(name, !adopted_home).await {
                // The tenant stays `creating`: the reconciler finishes the roll-back.
                tracing::warn!(tenant = %name, error = %e, "rolling back a failed create failed");
            }
        }
        done
    }

    /// Removes what a create made, then the tenant: its workspace, its network, its home when
    /// `remove_home` (the create made it), last the record, so that a roll-back cut short is
    /// found again and finished. Every step is idempotent.
    pub(crate) async fn roll_back_create(
        &self,
        name: &TenantName,
        remove_home: bool,
    ) -> Result<(), ServiceError> {
        self.runtime.remove(&container_name(name)).await?;
        self.remove_network(name).await?;
        if remove_home {
            self.storage.prepare()?;
            self.storage.destroy(name)?;
        }
        self.store.delete_tenant(name)?;
        Ok(())
    }

    async fn create_steps(
        &self,
        name: &TenantName,
        quota: &Quota,
        progress: &dyn Progress,
        fill: Option<&crate::export::Filler>,
    ) -> Result<(), ServiceError> {
        if self.storage.exists(name) {
            let used = self.storage.usage(name)?.map(|u| u.used);
            if let Some(used) = used.filter(|u| *u > quota.disk) {
                return Err(ServiceError::DiskBelowUsage {
                    tenant: name.to_string(),
                    asked: quota.disk.to_string(),
                    used: used.human(),
                });
            }
            progress.step(&format!(
                "keeping the existing home of {name}, quota {}",
                quota.disk
            ));
            self.storage.resize(name, quota.disk)?;
        } else {
            progress.step(&format!("making the home, quota {}", quota.disk));
            self.storage.ensure(name, quota.disk)?;
        }
        self.fault("create.home");
        self.storage.own(name, self.tenant_uid().await?)?;
        if let Some(fill) = fill {
            progress.step("filling the home from the archive");
            let ids = self.engine_ids().await?;
            fill.fill(&self.storage.home_path(name), ids, self.storage.clone())
                .await?;
            self.fault("create.filled");
        }
        let t = self.store.require(name)?;
        progress.step(&format!("making its network (egress {})", t.egress));
        self.ensure_network(&t).await?;
        self.fault("create.network");
        progress.step(&format!("creating the workspace from {}", t.image));
        self.runtime.create(&self.spec_for(&t).await?).await?;
        self.fault("create.container");
        progress.step("starting the workspace");
        self.runtime.start(&container_name(name)).await?;
        self.fault("create.started");
        self.wait_ready(name).await
    }

    /// Waits until the workspace's init has made the tenant's user, so the first exec works
    /// (at most [`READY_WAIT`]).
    async fn wait_ready(&self, name: &TenantName) -> Result<(), ServiceError> {
        let cname = container_name(name);
        let probe = ExecRequest {
            cmd: vec!["id".into(), "-u".into(), name.to_string()],
            user: "root".into(),
            ..ExecRequest::default()
        };
        let mut delay = Duration::from_millis(5);
        let deadline = tokio::time::Instant::now() + READY_WAIT;
        while tokio::time::Instant::now() < deadline {
            match self.runtime.exec(&cname, &probe).await {
                Ok(mut s) => {
                    while s.output.next().await.is_some() {}
                    if s.control.wait().await? == 0 {
                        return Ok(());
                    }
                }
                Err(RuntimeError::Conflict { .. }) => {
                    let state = self.runtime.inspect(&cname).await?.map(|i| i.state);
                    if state != Some(WorkspaceState::Running) {
                        return Err(ServiceError::WorkspaceDied {
                            tenant: name.to_string(),
                            reason: format!(
                                "container is {}",
                                state.map_or("gone", WorkspaceState::as_str)
                            ),
                        });
                    }
                }
                Err(e) => return Err(e.into()),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
        Err(ServiceError::WorkspaceNotReady {
            tenant: name.to_string(),
            secs: READY_WAIT.as_secs(),
        })
    }

    /// Brings the workspace to running: starts it, re-creates it when deleted or stale.
    /// Returns the state it was in. An operation on the tenant (a connection waking it).
    pub async fn ensure_running(
        &self,
        t: &TenantRecord,
        progress: &dyn Progress,
    ) -> Result<WorkspaceState, ServiceError> {
        let _op = self.ops.operation(&t.name).await?;
        self.ensure_running_inner(t, progress).await
    }

    /// [`Hostel::ensure_running`] for a caller that holds the tenant already. Records that the
    /// workspace should run before acting, so a start cut short is finished by the reconciler.
    pub(crate) async fn ensure_running_inner(
        &self,
        t: &TenantRecord,
        progress: &dyn Progress,
    ) -> Result<WorkspaceState, ServiceError> {
        if t.desired != WorkspaceState::Running {
            self.store
                .set_desired(&t.name, WorkspaceState::Running, self.now())?;
        }
        // Connections that wake one tenant at once start it once: the first does the work, the
        // others wait here and then find it running.
        let lock = self
            .wake_locks
            .lock()
            .await
            .entry(t.name.to_string())
            .or_default()
            .clone();
        let _guard = lock.lock().await;
        let (state, info) = self.observe(&t.name).await?;
        let spec = self.spec_for(t).await?;
        let current = info
            .as_ref()
            .is_some_and(|i| i.labels.get(LABEL_SPEC) == spec.labels.get(LABEL_SPEC));
        let cname = container_name(&t.name);
        match state.plan_start(current) {
            StartPlan::AlreadyRunning | StartPlan::RunningStale => return Ok(state),
            StartPlan::Start => {
                self.storage.prepare()?;
                self.storage.own(&t.name, self.tenant_uid().await?)?;
                self.ensure_network(t).await?;
                progress.step("starting the workspace");
                self.runtime.start(&cname).await?;
            }
            StartPlan::Recreate | StartPlan::Create => {
                self.storage.prepare()?;
                if !self.storage.exists(&t.name) {
                    return Err(RuntimeError::Host {
                        action: format!("start the workspace of {}", t.name),
                        message: "its home is missing".into(),
                    }
                    .into());
                }
                self.storage.own(&t.name, self.tenant_uid().await?)?;
                self.ensure_network(t).await?;
                // A system container keeps its root disk through new settings on its image;
                // elsewhere the workspace made from older settings is replaced.
                let in_place =
                    state == WorkspaceState::Stopped && self.runtime.reconfigure(&spec).await?;
                if in_place {
                    progress.step("new settings applied to the workspace; its system is kept");
                } else {
                    if state == WorkspaceState::Stopped {
                        progress.step("replacing the workspace made from older settings");
                        self.runtime.remove(&cname).await?;
                    }
                    progress.step(&format!("creating the workspace from {}", t.image));
                    match self.runtime.create(&spec).await {
                        // Another command created it first: fine, start that one.
                        Err(RuntimeError::Conflict { .. }) => {}
                        r => {
                            r?;
                        }
                    }
                }
                progress.step("starting the workspace");
                self.runtime.start(&cname).await?;
            }
        }
        self.wait_ready(&t.name).await?;
        // Waking is activity: the idle check must not stop what a connection just woke before
        // the connection gets to use it.
        self.store.touch(&t.name, self.now())?;
        Ok(state)
    }

    /// `start`: returns the state the workspace was in.
    pub async fn start(
        &self,
        name: &TenantName,
        progress: &dyn Progress,
    ) -> Result<WorkspaceState, ServiceError> {
        let started = std::time::Instant::now();
        let result = async {
            let _op = self.ops.operation(name).await?;
            let t = self.require_ready(name)?;
            let was = self.ensure_running_inner(&t, progress).await?;
            self.metrics
                .observe("start", started.elapsed().as_secs_f64());
            Ok(was)
        }
        .await;
        self.audit_result("workspace.start", name, &result)?;
        result
    }

    /// `stop`: returns the state the workspace was in.
    pub async fn stop(&self, name: &TenantName) -> Result<WorkspaceState, ServiceError> {
        let result = async {
            let _op = self.ops.operation(name).await?;
            self.require_ready(name)?;
            self.stop_inner(name).await
        }
        .await;
        self.audit_result("workspace.stop", name, &result)?;
        result
    }

    /// `delete`: removes the workspace container; tenant, keys and home stay.
    pub async fn delete(&self, name: &TenantName) -> Result<WorkspaceState, ServiceError> {
        let result = async {
            let _op = self.ops.operation(name).await?;
            self.require_ready(name)?;
            self.delete_inner(name).await
        }
        .await;
        self.audit_result("workspace.delete", name, &result)?;
        result
    }

    /// Stops the workspace of a tenant the caller holds; records the wish first.
    pub(crate) async fn stop_inner(
        &self,
        name: &TenantName,
    ) -> Result<WorkspaceState, ServiceError> {
        let (state, _) = self.observe(name).await?;
        let desired = if state == WorkspaceState::Deleted {
            WorkspaceState::Deleted
        } else {
            WorkspaceState::Stopped
        };
        self.store.set_desired(name, desired, self.now())?;
        self.fault("stop.recorded");
        if state.can_stop() {
            self.runtime.stop(&container_name(name), 10).await?;
        }
        Ok(state)
    }

    /// Removes the workspace of a tenant the caller holds; records the wish first.
    pub(crate) async fn delete_inner(
        &self,
        name: &TenantName,
    ) -> Result<WorkspaceState, ServiceError> {
        let (state, _) = self.observe(name).await?;
        self.store
            .set_desired(name, WorkspaceState::Deleted, self.now())?;
        self.fault("delete.recorded");
        if state.can_delete() {
            self.runtime.remove(&container_name(name)).await?;
        }
        Ok(state)
    }

    /// `purge`: removes the tenant entirely: workspace, keys, home. Needs `confirmed`.
    pub async fn purge(&self, name: &TenantName, confirmed: bool) -> Result<(), ServiceError> {
        let result = async {
            if !confirmed {
                return Err(ServiceError::PurgeUnconfirmed {
                    tenant: name.to_string(),
                });
            }
            let _op = self.ops.operation(name).await?;
            match self.store.set_status(
                name,
                TenantStatus::Ready,
                TenantStatus::Purging,
                self.now(),
            ) {
                Err(StoreError::StatusChanged { actual, .. }) => {
                    return Err(ServiceError::Busy {
                        tenant: name.to_string(),
                        status: actual,
                    });
                }
                r => r?,
            }
            self.fault("purge.recorded");
            self.finish_purge(name).await
        }
        .await;
        self.audit_result("tenant.purge", name, &result)?;
        result
    }

    /// Removes a `purging` tenant's workspace, network, home and record, each step idempotent.
    pub(crate) async fn finish_purge(&self, name: &TenantName) -> Result<(), ServiceError> {
        self.observe(name).await?;
        self.runtime.remove(&container_name(name)).await?;
        self.fault("purge.container");
        self.remove_network(name).await?;
        self.storage.prepare()?;
        self.storage.destroy(name)?;
        self.store.delete_tenant(name)?;
        Ok(())
    }

    pub(crate) fn audit_result<T>(
        &self,
        action: &str,
        name: &TenantName,
        result: &Result<T, ServiceError>,
    ) -> Result<(), ServiceError> {
        let ev = match result {
            Ok(_) => self.event(action, Outcome::Ok),
            Err(e) => self.event(action, Outcome::Failed).with("error", e.code()),
        };
        self.record(ev.tenant(name.as_str()))
    }

    /// Every tenant with its workspace state.
    pub async fn list(&self) -> Result<Vec<TenantSummary>, ServiceError> {
        let tenants = self.store.tenants()?;
        let containers = self
            .runtime
            .list(&[(LABEL_INSTANCE.to_owned(), self.instance.clone())])
            .await?;
        Ok(tenants
            .into_iter()
            .map(|t| {
                let state = containers
                    .iter()
                    .find(|c| {
                        c.labels.get(LABEL_TENANT).map(String::as_str) == Some(t.name.as_str())
                    })
                    .map(|c| c.state)
                    .unwrap_or(WorkspaceState::Deleted);
                summary(t, state)
            })
            .collect())
    }

    /// One tenant in detail, with live usage when it runs.
    pub async fn info(&self, name: &TenantName) -> Result<TenantInfo, ServiceError> {
        let t = self.store.require(name)?;
        let (state, container) = self.observe(name).await?;
        let spec = self.spec_for(&t).await?;
        let stale = container
            .as_ref()
            .is_some_and(|c| c.labels.get(LABEL_SPEC) != spec.labels.get(LABEL_SPEC));
        // The workspace may stop between the two questions; then there is no usage to show.
        let usage = if state == WorkspaceState::Running {
            match self.runtime.stats(&spec.name).await {
                Ok(s) => Some(Usage {
                    cpu_seconds: s.cpu_total_ns as f64 / 1e9,
                    memory_used: ByteSize::bytes(s.memory_used),
                    pids: s.pids,
                    oom_kills: s.oom_kills,
                }),
                Err(e @ RuntimeError::EngineUnreachable { .. }) => return Err(e.into()),
                Err(e) => {
                    tracing::debug!(error = %e, "no live usage");
                    None
                }
            }
        } else {
            None
        };
        let uptime_secs = container
            .as_ref()
            .filter(|_| state == WorkspaceState::Running)
            .and_then(|c| c.started_at.as_deref())
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|s| (self.now() - s.with_timezone(&chrono::Utc)).num_seconds());
        let disk_used = self.storage.usage(name)?.map(|u| u.used);
        let keys = self.store.keys(name)?.len();
        Ok(TenantInfo {
            desired: t.desired,
            container: spec.name.clone(),
            home: self.storage.home_path(name).display().to_string(),
            stale,
            uptime_secs,
            usage,
            disk_used,
            keys,
            created_at: t.created_at.to_rfc3339(),
            policy: t.policy,
            egress: t.egress,
            summary: summary(t, state),
        })
    }

    /// Whether the daemon can serve: the engine answers and the store reads.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        self.runtime.ping().await?;
        self.store.instance_id()?;
        Ok(())
    }

    /// The workspace's state as the engine says now.
    pub async fn workspace_state(&self, name: &TenantName) -> Result<WorkspaceState, ServiceError> {
        Ok(self.observe(name).await?.0)
    }

    /// The tenant whose stored keys include `key` (an OpenSSH public key line), if `user` names
    /// one. Unknown users and unknown keys look the same to the caller: `None`.
    pub fn login_key(&self, user: &str, key: &str) -> Result<Option<TenantName>, ServiceError> {
        let Ok(name) = user.parse::<TenantName>() else {
            return Ok(None);
        };
        let Some(t) = self.store.tenant(&name)? else {
            return Ok(None);
        };
        if !t.status.is_ready() {
            return Ok(None);
        }
        let want = key.split_whitespace().nth(1).unwrap_or_default();
        let known = !want.is_empty()
            && self
                .store
                .keys(&name)?
                .iter()
                .any(|k| k.key.openssh.split_whitespace().nth(1) == Some(want));
        Ok(known.then_some(name))
    }

    /// Changes quotas (live where the engine allows), the image (at next start) and the
    /// lifecycle policies (at once; a new TTL counts from now).
    pub async fn set(
        &self,
        name: &TenantName,
        change: QuotaChange,
        image: Option<&str>,
        egress: Option<Egress>,
        policy: PolicyChange,
    ) -> Result<Vec<SetOutcome>, ServiceError> {
        let result = async {
            let _op = self.ops.operation(name).await?;
            self.set_inner(name, change, image, egress, policy).await
        }
        .await;
        let mut ev = match &result {
            Ok(_) => self.event("tenant.set", Outcome::Ok),
            Err(e) => self
                .event("tenant.set", Outcome::Failed)
                .with("error", e.code()),
        };
        for (k, v) in [
            ("cpus", change.cpus.map(|v| v.to_string())),
            ("memory", change.memory.map(|v| v.to_string())),
            ("disk", change.disk.map(|v| v.to_string())),
            ("pids", change.pids.map(|v| v.to_string())),
            ("gpus", change.gpus.map(|v| v.to_string())),
            ("disk_io", change.disk_io.map(|v| v.to_string())),
            ("image", image.map(str::to_owned)),
            ("egress", egress.map(|e| e.to_string())),
            (
                "ttl",
                policy
                    .ttl
                    .map(|t| t.map_or("none".into(), |d| format!("{}s", d.num_seconds()))),
            ),
            ("ephemeral", policy.ephemeral.map(|v| v.to_string())),
            ("autostart", policy.autostart.map(|v| v.to_string())),
            (
                "idle_stop",
                policy
                    .idle_stop_secs
                    .map(|t| t.map_or("default".into(), |s| format!("{s}s"))),
            ),
        ] {
            if let Some(v) = v {
                ev = ev.with(k, v);
            }
        }
        self.record(ev.tenant(name.as_str()))?;
        result
    }

    async fn set_inner(
        &self,
        name: &TenantName,
        change: QuotaChange,
        image: Option<&str>,
        egress: Option<Egress>,
        policy: PolicyChange,
    ) -> Result<Vec<SetOutcome>, ServiceError> {
        let t = self.require_ready(name)?;
        if change.is_empty() && image.is_none() && egress.is_none() && policy.is_empty() {
            return Err(ServiceError::NothingToSet {
                tenant: name.to_string(),
            });
        }
        let new_policy = policy.apply(&t.policy, self.now())?;
        let new = change.apply_to(t.quota);
        new.validate()?;
        check_fits(&new, &self.capacity().await?)?;
        let new_image = match image {
            Some(i) => Some(self.resolve_image(Some(i)).await?),
            None => None,
        };
        if new.disk != t.quota.disk {
            self.storage.prepare()?;
            if let Some(used) = self.storage.usage(name)?.map(|u| u.used)
                && used > new.disk
            {
                return Err(ServiceError::DiskBelowUsage {
                    tenant: name.to_string(),
                    asked: new.disk.to_string(),
                    used: used.human(),
                });
            }
        }
        let (state, _) = self.observe(name).await?;
        let mut out = Vec::new();
        let limits_changed =
            new.cpus != t.quota.cpus || new.memory != t.quota.memory || new.pids != t.quota.pids;
        // The wish goes into the store before anything changes, so that a set cut short is
        // finished by the reconciler, which reads the limits in force back and applies these.
        if new != t.quota {
            self.store.set_quota(name, &new, self.now())?;
        }
        self.fault("set.recorded");
        let applied = self
            .apply_quota(name, &new, &t.quota, state, limits_changed)
            .await;
        let limits_applied = match applied {
            Ok(how) => how,
            Err(e) => {
                // Back to the old wish; limits already changed go back with the next look.
                if let Err(undo) = self.store.set_quota(name, &t.quota, self.now()) {
                    tracing::warn!(tenant = %name, error = %undo, "cannot put the old quota back");
                }
                return Err(e);
            }
        };
        for (field, from, to) in [
            ("cpus", t.quota.cpus.to_string(), new.cpus.to_string()),
            ("memory", t.quota.memory.to_string(), new.memory.to_string()),
            ("pids", t.quota.pids.to_string(), new.pids.to_string()),
        ] {
            if from != to {
                out.push(SetOutcome {
                    field,
                    from,
                    to,
                    applied: limits_applied,
                });
            }
        }
        if new.disk != t.quota.disk {
            out.push(SetOutcome {
                field: "disk",
                from: t.quota.disk.to_string(),
                to: new.disk.to_string(),
                applied: "live",
            });
        }
        let next_start = if state == WorkspaceState::Running {
            "next start (stop and start the workspace; the home is kept)"
        } else {
            "next start"
        };
        if new.gpus != t.quota.gpus {
            out.push(SetOutcome {
                field: "gpus",
                from: t.quota.gpus.to_string(),
                to: new.gpus.to_string(),
                applied: next_start,
            });
        }
        if new.disk_io != t.quota.disk_io {
            out.push(SetOutcome {
                field: "disk_io",
                from: t.quota.disk_io.to_string(),
                to: new.disk_io.to_string(),
                applied: next_start,
            });
        }
        if let Some(img) = new_image.filter(|i| *i != t.image) {
            self.store.set_image(name, &img, self.now())?;
            out.push(SetOutcome {
                field: "image",
                from: t.image.clone(),
                to: img,
                applied: if state == WorkspaceState::Running {
                    "next start (stop and start the workspace; the home is kept)"
                } else {
                    "next start"
                },
            });
        }
        if let Some(e) = egress.filter(|e| *e != t.egress) {
            self.store.set_egress(name, e, self.now())?;
            out.push(SetOutcome {
                field: "egress",
                from: t.egress.to_string(),
                to: e.to_string(),
                applied: if state == WorkspaceState::Running {
                    "next start (stop and start the workspace; the home is kept)"
                } else {
                    "next start"
                },
            });
        }
        if new_policy != t.policy {
            self.store.set_policy(name, &new_policy, self.now())?;
            out.extend(policy_changes(&t.policy, &new_policy));
        }
        Ok(out)
    }

    /// Applies a recorded quota: the workspace's limits when they changed (live, or to the
    /// stopped container), then the home's size limit. Says how the limits took effect.
    async fn apply_quota(
        &self,
        name: &TenantName,
        new: &Quota,
        old: &Quota,
        state: WorkspaceState,
        limits_changed: bool,
    ) -> Result<&'static str, ServiceError> {
        let how = match state {
            WorkspaceState::Deleted => "next start",
            _ if !limits_changed => "live",
            WorkspaceState::Running => {
                self.runtime
                    .update_limits(&container_name(name), &new.limits())
                    .await?;
                "live"
            }
            WorkspaceState::Stopped => {
                self.runtime
                    .update_limits(&container_name(name), &new.limits())
                    .await?;
                "to the stopped workspace (in force when it starts)"
            }
        };
        if new.disk != old.disk {
            self.storage.resize(name, new.disk)?;
        }
        Ok(how)
    }

    /// Adds keys to a tenant.
    pub fn key_add(&self, name: &TenantName, keys: &[SshPublicKey]) -> Result<(), ServiceError> {
        let result = self
            .store
            .add_keys(name, keys, self.now())
            .map_err(ServiceError::from);
        let mut ev = match &result {
            Ok(()) => self.event("key.add", Outcome::Ok),
            Err(e) => self
                .event("key.add", Outcome::Failed)
                .with("error", e.code()),
        };
        for k in keys {
            ev = ev.with(&format!("fingerprint.{}", k.fingerprint()), k.algorithm());
        }
        self.record(ev.tenant(name.as_str()))?;
        result
    }

    /// Removes a key by fingerprint.
    pub fn key_remove(&self, name: &TenantName, fingerprint: &str) -> Result<(), ServiceError> {
        let result = self
            .store
            .remove_key(name, fingerprint)
            .map_err(ServiceError::from);
        let ev = match &result {
            Ok(()) => self.event("key.remove", Outcome::Ok),
            Err(e) => self
                .event("key.remove", Outcome::Failed)
                .with("error", e.code()),
        };
        self.record(ev.tenant(name.as_str()).with("fingerprint", fingerprint))?;
        result
    }

    /// A tenant's keys.
    pub fn key_list(&self, name: &TenantName) -> Result<Vec<KeyRecord>, ServiceError> {
        self.store.require(name)?;
        Ok(self.store.keys(name)?)
    }
}

fn summary(t: TenantRecord, state: WorkspaceState) -> TenantSummary {
    TenantSummary {
        name: t.name.to_string(),
        status: t.status,
        state,
        image: t.image,
        quota: t.quota,
    }
}
