//! An in-memory engine for tests of the layers above. It keeps containers and images in maps,
//! enforces the same state rules as Docker (start needs a container, exec needs it running,
//! names are unique), records every call, and can be told to fail any call.
//!
//! Commands "run" through a handler the test sets ([`FakeRuntime::on_exec`]); by default a
//! command prints its argv joined by spaces and exits 0. It runs nothing on the host.

use crate::types::*;
use crate::{Runtime, RuntimeError};
use async_trait::async_trait;
use futures_util::StreamExt;
use hostel_core::Limits;
use hostel_core::{Signal, WorkspaceState};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

type ExecHandler = dyn Fn(&str, &ExecRequest) -> (i64, Vec<u8>, Vec<u8>) + Send + Sync;

#[derive(Default)]
struct State {
    containers: BTreeMap<String, WorkspaceInfo>,
    networks: BTreeMap<String, NetworkInfo>,
    /// Container -> the network it is created on.
    attached: HashMap<String, String>,
    images: BTreeMap<String, ImageInfo>,
    exits: HashMap<String, i64>,
    calls: Vec<String>,
    failures: HashMap<String, String>,
    next_id: u64,
    reachable: bool,
    layer_quota: Option<LayerQuota>,
    /// GPUs it says it can give.
    gpus: u32,
    /// Container -> the spec it was created from.
    specs: HashMap<String, WorkspaceSpec>,
}

/// The in-memory engine.
#[derive(Clone)]
pub struct FakeRuntime {
    state: Arc<Mutex<State>>,
    handler: Arc<Mutex<Arc<ExecHandler>>>,
}

impl std::fmt::Debug for FakeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRuntime").finish_non_exhaustive()
    }
}

impl Default for FakeRuntime {
    fn default() -> Self {
        let echo: Arc<ExecHandler> = Arc::new(|_, req| {
            let mut out = req.cmd.join(" ").into_bytes();
            out.push(b'\n');
            (0, out, Vec::new())
        });
        FakeRuntime {
            state: Arc::new(Mutex::new(State {
                reachable: true,
                ..State::default()
            })),
            handler: Arc::new(Mutex::new(echo)),
        }
    }
}

impl FakeRuntime {
    /// An empty engine that answers.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every call so far, as `method name`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Makes every later call of `method` fail with an engine error carrying `message`.
    pub fn fail(&self, method: &str, message: &str) {
        self.lock()
            .failures
            .insert(method.to_owned(), message.to_owned());
    }

    /// Makes every call succeed again.
    pub fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// Makes the engine (un)reachable, as a stopped dockerd would be.
    pub fn set_reachable(&self, up: bool) {
        self.lock().reachable = up;
    }

    /// Says whether and how the engine limits writable layers (see
    /// [`EngineInfo::layer_quota`]).
    pub fn set_layer_quota(&self, quota: Option<LayerQuota>) {
        self.lock().layer_quota = quota;
    }

    /// Says how many GPUs the engine can give (none at first).
    pub fn set_gpus(&self, gpus: u32) {
        self.lock().gpus = gpus;
    }

    /// Sets what commands do: `(container, request) -> (exit code, stdout, stderr)`.
    pub fn on_exec(
        &self,
        f: impl Fn(&str, &ExecRequest) -> (i64, Vec<u8>, Vec<u8>) + Send + Sync + 'static,
    ) {
        *self.handler.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(f);
    }

    /// Adds an image as if built or pulled.
    pub fn add_image(&self, reference: &str, labels: BTreeMap<String, String>) {
        let mut s = self.lock();
        s.next_id += 1;
        let id = format!("sha256:{:064x}", s.next_id);
        s.images.insert(
            reference.to_owned(),
            ImageInfo {
                id,
                tags: vec![reference.to_owned()],
                size: 1 << 20,
                created: "0".into(),
                labels,
            },
        );
    }

    /// The spec the container `name` was last created from.
    pub fn spec(&self, name: &str) -> Option<WorkspaceSpec> {
        self.lock().specs.get(name).cloned()
    }

    /// Removes a container behind hostel's back, as `docker rm -f` by hand would.
    pub fn remove_by_hand(&self, name: &str) {
        let mut s = self.lock();
        s.containers.remove(name);
        s.attached.remove(name);
    }

    fn enter(&self, method: &str, arg: &str) -> Result<MutexGuard<'_, State>, RuntimeError> {
        let mut s = self.lock();
        s.calls
            .push(format!("{method} {arg}").trim_end().to_owned());
        if !s.reachable {
            return Err(RuntimeError::EngineUnreachable {
                endpoint: "fake".into(),
                source: "engine stopped".into(),
            });
        }
        if let Some(message) = s.failures.get(method) {
            return Err(RuntimeError::Engine {
                action: method.to_owned(),
                message: message.clone(),
            });
        }
        Ok(s)
    }
}

/// A fake command: it ends when waited for, with its handler's code; a signal before that
/// changes the code as the signal's death would.
#[derive(Debug)]
struct FakeExec {
    engine: FakeRuntime,
    id: String,
    ended: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl ExecControl for FakeExec {
    async fn wait(&self) -> Result<i64, RuntimeError> {
        let s = self.engine.enter("exec_wait", &self.id)?;
        self.ended.store(true, std::sync::atomic::Ordering::SeqCst);
        s.exits
            .get(&self.id)
            .copied()
            .ok_or_else(|| not_found("exec", &self.id))
    }

    async fn signal(&self, signal: Signal) -> Result<(), RuntimeError> {
        let mut s = self
            .engine
            .enter("exec_signal", &format!("{} {signal}", self.id))?;
        match s.exits.get_mut(&self.id) {
            Some(_) if self.ended.load(std::sync::atomic::Ordering::SeqCst) => Ok(()),
            Some(code) => {
                *code = 128 + i64::from(signal.number());
                Ok(())
            }
            None => Err(not_found("exec", &self.id)),
        }
    }

    async fn resize(&self, cols: u16, rows: u16) -> Result<(), RuntimeError> {
        let s = self
            .engine
            .enter("exec_resize", &format!("{} {cols}x{rows}", self.id))?;
        if !s.exits.contains_key(&self.id) {
            return Err(not_found("exec", &self.id));
        }
        Ok(())
    }
}

fn not_found(what: &'static str, name: &str) -> RuntimeError {
    RuntimeError::NotFound {
        what,
        name: name.to_owned(),
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    async fn ping(&self) -> Result<EngineInfo, RuntimeError> {
        drop(self.enter("ping", "")?);
        let (gpus, layer_quota) = {
            let s = self.lock();
            (s.gpus, s.layer_quota)
        };
        Ok(EngineInfo {
            version: "fake".into(),
            api_version: "fake".into(),
            cpus: 2,
            memory: 8 << 30,
            gpus,
            ids: IdMapping::Host,
            layer_quota,
            build_network: false,
            system_init: false,
            system_snapshots: false,
            nesting: false,
        })
    }

    async fn create(&self, spec: &WorkspaceSpec) -> Result<WorkspaceInfo, RuntimeError> {
        let mut s = self.enter("create", &spec.name)?;
        if !s.images.contains_key(&spec.image) {
            return Err(not_found("image", &spec.image));
        }
        if s.containers.contains_key(&spec.name) {
            return Err(RuntimeError::Conflict {
                name: spec.name.clone(),
                message: "name in use".into(),
            });
        }
        if let Some(net) = &spec.network {
            if !s.networks.contains_key(net) {
                return Err(not_found("network", net));
            }
            s.attached.insert(spec.name.clone(), net.clone());
        }
        s.specs.insert(spec.name.clone(), spec.clone());
        s.next_id += 1;
        let info = WorkspaceInfo {
            id: format!("{:064x}", s.next_id),
            name: spec.name.clone(),
            image: spec.image.clone(),
            state: WorkspaceState::Stopped,
            labels: spec.labels.clone(),
            started_at: None,
            oom_killed: false,
            limits: Some(spec.limits),
            // Loopback addresses: whatever a test sends there stays on its machine.
            addresses: spec
                .network
                .iter()
                .map(|n| (n.clone(), format!("127.213.0.{}", 2 + s.next_id % 250)))
                .collect(),
        };
        s.containers.insert(spec.name.clone(), info.clone());
        Ok(info)
    }

    async fn start(&self, name: &str) -> Result<(), RuntimeError> {
        let mut s = self.enter("start", name)?;
        let c = s
            .containers
            .get_mut(name)
            .ok_or_else(|| not_found("container", name))?;
        c.state = WorkspaceState::Running;
        c.started_at = Some("2026-01-01T00:00:00Z".into());
        Ok(())
    }

    async fn stop(&self, name: &str, _grace_secs: u32) -> Result<(), RuntimeError> {
        let mut s = self.enter("stop", name)?;
        let c = s
            .containers
            .get_mut(name)
            .ok_or_else(|| not_found("container", name))?;
        c.state = WorkspaceState::Stopped;
        Ok(())
    }

    async fn remove(&self, name: &str) -> Result<(), RuntimeError> {
        let mut s = self.enter("remove", name)?;
        s.containers.remove(name);
        s.attached.remove(name);
        Ok(())
    }

    async fn network_create(&self, spec: &NetworkSpec) -> Result<NetworkInfo, RuntimeError> {
        let mut s = self.enter("network_create", &spec.name)?;
        let subnet: ipnet::Ipv4Net = spec.subnet.parse().map_err(|_| RuntimeError::Engine {
            action: "create network".into(),
            message: format!("invalid subnet {}", spec.subnet),
        })?;
        let overlap = s.networks.values().flat_map(|n| n.subnets.iter()).any(|u| {
            u.parse::<ipnet::Ipv4Net>()
                .is_ok_and(|u| u.contains(&subnet.network()) || subnet.contains(&u.network()))
        });
        if s.networks.contains_key(&spec.name) || overlap {
            return Err(RuntimeError::Conflict {
                name: spec.name.clone(),
                message: if overlap {
                    "Pool overlaps with other one on this address space".into()
                } else {
                    "network with name already exists".into()
                },
            });
        }
        s.next_id += 1;
        let info = NetworkInfo {
            name: spec.name.clone(),
            id: format!("{:064x}", s.next_id),
            bridge: Some(spec.bridge.clone()),
            subnets: vec![spec.subnet.clone()],
            internal: spec.internal,
            labels: spec.labels.clone(),
        };
        s.networks.insert(spec.name.clone(), info.clone());
        Ok(info)
    }

    async fn network_inspect(&self, name: &str) -> Result<Option<NetworkInfo>, RuntimeError> {
        Ok(self
            .enter("network_inspect", name)?
            .networks
            .get(name)
            .cloned())
    }

    async fn network_remove(&self, name: &str) -> Result<(), RuntimeError> {
        let mut s = self.enter("network_remove", name)?;
        // As in Docker, a container holds its network while it runs.
        let busy = s.attached.iter().any(|(c, n)| {
            n == name
                && s.containers
                    .get(c)
                    .is_some_and(|x| x.state == WorkspaceState::Running)
        });
        if busy {
            return Err(RuntimeError::Conflict {
                name: name.to_owned(),
                message: "network has active endpoints".into(),
            });
        }
        s.networks.remove(name);
        Ok(())
    }

    async fn networks(
        &self,
        labels: &[(String, String)],
    ) -> Result<Vec<NetworkInfo>, RuntimeError> {
        let s = self.enter("networks", "")?;
        Ok(s.networks
            .values()
            .filter(|n| labels.iter().all(|(k, v)| n.labels.get(k) == Some(v)))
            .cloned()
            .collect())
    }

    async fn inspect(&self, name: &str) -> Result<Option<WorkspaceInfo>, RuntimeError> {
        Ok(self.enter("inspect", name)?.containers.get(name).cloned())
    }

    async fn list(&self, labels: &[(String, String)]) -> Result<Vec<WorkspaceInfo>, RuntimeError> {
        let s = self.enter("list", "")?;
        Ok(s.containers
            .values()
            .filter(|c| labels.iter().all(|(k, v)| c.labels.get(k) == Some(v)))
            .cloned()
            .collect())
    }

    async fn update_limits(&self, name: &str, limits: &Limits) -> Result<(), RuntimeError> {
        let mut s = self.enter("update_limits", name)?;
        let c = s
            .containers
            .get_mut(name)
            .ok_or_else(|| not_found("container", name))?;
        c.limits = Some(*limits);
        Ok(())
    }

    async fn stats(&self, name: &str) -> Result<WorkspaceStats, RuntimeError> {
        let s = self.enter("stats", name)?;
        let c = s
            .containers
            .get(name)
            .ok_or_else(|| not_found("container", name))?;
        if c.state != WorkspaceState::Running {
            return Err(RuntimeError::Conflict {
                name: name.to_owned(),
                message: "container is not running".into(),
            });
        }
        Ok(WorkspaceStats {
            cpu_total_ns: 1_000_000,
            memory_used: 16 << 20,
            pids: 2,
            oom_kills: 0,
            net_rx_bytes: 4096,
            net_tx_bytes: 1024,
        })
    }

    async fn exec(&self, name: &str, req: &ExecRequest) -> Result<ExecSession, RuntimeError> {
        let mut s = self.enter("exec", name)?;
        match s.containers.get(name) {
            None => return Err(not_found("container", name)),
            Some(c) if c.state != WorkspaceState::Running => {
                return Err(RuntimeError::Conflict {
                    name: name.to_owned(),
                    message: "container is not running".into(),
                });
            }
            Some(_) => {}
        }
        let handler = self
            .handler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (code, out, err) = handler(name, req);
        s.next_id += 1;
        let id = format!("exec-{}", s.next_id);
        s.exits.insert(id.clone(), code);
        let mut chunks = Vec::new();
        if !out.is_empty() {
            chunks.push(Ok(ExecOutput::Stdout(out)));
        }
        if !err.is_empty() {
            chunks.push(Ok(ExecOutput::Stderr(err)));
        }
        Ok(ExecSession {
            output: futures_util::stream::iter(chunks).boxed(),
            input: Box::pin(tokio::io::sink()),
            control: Arc::new(FakeExec {
                engine: self.clone(),
                id,
                ended: false.into(),
            }),
        })
    }

    /// A fake workspace's output goes nowhere.
    async fn output_log_bytes(&self, name: &str) -> Result<u64, RuntimeError> {
        match self.inspect(name).await? {
            Some(_) => Ok(0),
            None => Err(RuntimeError::NotFound {
                what: "container",
                name: name.to_owned(),
            }),
        }
    }

    /// Nothing listens in a fake workspace: a running one refuses every port.
    async fn connect(
        &self,
        name: &str,
        port: u16,
        _loopback: Loopback,
    ) -> Result<Connection, RuntimeError> {
        let s = self.enter("connect", &format!("{name} {port}"))?;
        match s.containers.get(name) {
            None => Err(not_found("container", name)),
            Some(c) if c.state != WorkspaceState::Running => Err(RuntimeError::Conflict {
                name: name.to_owned(),
                message: "container is not running".into(),
            }),
            Some(_) => Err(RuntimeError::Refused {
                workspace: name.to_owned(),
                port,
            }),
        }
    }

    async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        Ok(self
            .enter("image", reference)?
            .images
            .get(reference)
            .cloned())
    }

    async fn images(&self, label: &str) -> Result<Vec<ImageInfo>, RuntimeError> {
        let s = self.enter("images", label)?;
        let (k, v) = label.split_once('=').unwrap_or((label, ""));
        Ok(s.images
            .values()
            .filter(|i| i.labels.get(k).is_some_and(|x| v.is_empty() || x == v))
            .cloned()
            .collect())
    }

    async fn pull(&self, reference: &str) -> Result<(), RuntimeError> {
        drop(self.enter("pull", reference)?);
        Err(RuntimeError::Engine {
            action: "pull image".into(),
            message: "no registry in the fake".into(),
        })
    }

    async fn import(&self, _rootfs_tar: Vec<u8>, reference: &str) -> Result<(), RuntimeError> {
        drop(self.enter("import", reference)?);
        self.add_image(reference, BTreeMap::new());
        Ok(())
    }

    async fn build(
        &self,
        req: &BuildRequest,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), RuntimeError> {
        let tag = req.tags.first().cloned().unwrap_or_default();
        {
            let s = self.enter("build", &tag)?;
            for base in req.build_args.values() {
                if base.contains(':') && !s.images.contains_key(base) {
                    return Err(not_found("image", base));
                }
            }
        }
        progress("Step 1/1 : fake build".to_owned());
        for t in &req.tags {
            self.add_image(t, req.labels.clone());
        }
        Ok(())
    }
}
