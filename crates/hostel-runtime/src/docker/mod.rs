//! The Docker backend: the Docker Engine API over its Unix socket, through bollard.
//!
//! The API version is negotiated on first use, so one build talks to Debian's engine 20.10 (API
//! 1.41) and to current ones alike; connecting does no I/O, so a dead engine shows up as
//! [`RuntimeError::EngineUnreachable`] on the first call, with a hint, not as a panic at startup.

use crate::types::*;
use crate::{Runtime, RuntimeError};
use async_trait::async_trait;
use bollard::Docker;
use bollard::body_full;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerUpdateBody, HostConfig, Ipam, IpamConfig, Mount as DockerMount,
    MountType, NetworkCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    InspectContainerOptions, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
    ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder, StatsOptionsBuilder,
    StopContainerOptionsBuilder, TagImageOptionsBuilder,
};
use futures_util::{StreamExt, TryStreamExt};
use hostel_core::{ByteSize, Cpus, Limits};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::OnceCell;

pub(crate) mod btrfs;
mod exec;
mod seccomp;

use exec::DockerExec;

/// A Docker engine reached through its Unix socket.
#[derive(Debug)]
pub struct DockerRuntime {
    socket: String,
    client: OnceCell<Docker>,
    /// The engine's storage as hostel can keep it, found once.
    storage: OnceCell<Option<crate::storage::pool::LoopFile>>,
}

impl DockerRuntime {
    /// A runtime for the engine at `socket`; nothing is contacted until the first call.
    pub fn new(socket: impl Into<String>) -> Self {
        DockerRuntime {
            socket: socket.into(),
            client: OnceCell::new(),
            storage: OnceCell::new(),
        }
    }

    async fn docker(&self) -> Result<&Docker, RuntimeError> {
        self.client
            .get_or_try_init(|| async {
                let unreachable = |e: bollard::errors::Error| RuntimeError::EngineUnreachable {
                    endpoint: self.socket.clone(),
                    source: Box::new(e),
                };
                let d = Docker::connect_with_unix(&self.socket, 600, bollard::API_DEFAULT_VERSION)
                    .map_err(unreachable)?;
                d.negotiate_version().await.map_err(unreachable)
            })
            .await
    }

    fn map_err(
        &self,
        action: &str,
        what: &'static str,
        name: &str,
    ) -> impl FnOnce(bollard::errors::Error) -> RuntimeError {
        map_err(&self.socket, action, what, name)
    }
}

/// An engine error as hostel's, for `action` on the object `what` named `name`, at `endpoint`.
fn map_err(
    endpoint: &str,
    action: &str,
    what: &'static str,
    name: &str,
) -> impl FnOnce(bollard::errors::Error) -> RuntimeError {
    let endpoint = endpoint.to_owned();
    let action = action.to_owned();
    let name = name.to_owned();
    move |e| match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => match status_code {
            404 => RuntimeError::NotFound { what, name },
            409 => RuntimeError::Conflict { name, message },
            _ if message.contains("overlaps") || message.contains("active endpoints") => {
                RuntimeError::Conflict { name, message }
            }
            _ if message.contains("no space left on device") => RuntimeError::NoSpace { action },
            _ => RuntimeError::Engine { action, message },
        },
        bollard::errors::Error::DockerStreamError { error } => RuntimeError::Engine {
            action,
            message: error,
        },
        e @ (bollard::errors::Error::IOError { .. }
        | bollard::errors::Error::HyperLegacyError { .. }
        | bollard::errors::Error::SocketNotFoundError(_)
        | bollard::errors::Error::RequestTimeoutError) => RuntimeError::EngineUnreachable {
            endpoint,
            source: Box::new(e),
        },
        e => RuntimeError::Engine {
            action,
            message: e.to_string(),
        },
    }
}

/// The first host uid of the engine's remapped range (`dockremap` in `/etc/subuid`, the user
/// `--userns-remap=default` makes).
fn remap_base() -> Result<Option<u32>, RuntimeError> {
    let text = std::fs::read_to_string("/etc/subuid").map_err(|e| RuntimeError::Host {
        action: "read /etc/subuid".into(),
        message: e.to_string(),
    })?;
    Ok(text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next() == Some("dockremap"))
            .then(|| f.next().and_then(|b| b.parse().ok()))
            .flatten()
    }))
}

/// The engine's option that names a bridge network's host interface.
const BRIDGE_NAME: &str = "com.docker.network.bridge.name";

fn network_info(
    name: Option<String>,
    id: Option<String>,
    ipam: Option<Ipam>,
    internal: Option<bool>,
    options: Option<HashMap<String, String>>,
    labels: Option<HashMap<String, String>>,
) -> NetworkInfo {
    NetworkInfo {
        name: name.unwrap_or_default(),
        id: id.unwrap_or_default(),
        bridge: options.and_then(|mut o| o.remove(BRIDGE_NAME)),
        subnets: ipam
            .and_then(|i| i.config)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| c.subnet)
            .collect(),
        internal: internal.unwrap_or(false),
        labels: to_btree(labels),
    }
}

/// Docker's container status word (`running`, `exited`, `created`...) in hostel's words: a
/// container restarting or paused still holds its processes, so it runs.
fn workspace_state(status: Option<&str>) -> hostel_core::WorkspaceState {
    match status {
        Some("running" | "restarting" | "paused") => hostel_core::WorkspaceState::Running,
        _ => hostel_core::WorkspaceState::Stopped,
    }
}

/// Capabilities every workspace keeps; all others are dropped. Enough for the init to add the
/// tenant's user and seed the home.
const CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "SETUID",
    "SETGID",
    "KILL",
];

/// What a workspace whose tenant has sudo keeps besides [`CAPS`], so that it can install
/// packages (dpkg keeps setgid bits) and serve on low ports. Root inside is an unprivileged
/// host uid then, and these hold only over the workspace's own namespace.
const SUDO_CAPS: &[&str] = &["FSETID", "NET_BIND_SERVICE", "AUDIT_WRITE"];

/// The capabilities a workspace with these privileges keeps.
fn capabilities(p: Privileges) -> Vec<String> {
    let extra = match p {
        Privileges::InitOnly => &[][..],
        Privileges::Sudo | Privileges::Nesting => SUDO_CAPS,
    };
    CAPS.iter().chain(extra).map(|c| (*c).to_owned()).collect()
}

/// The engine's security options for these privileges: without sudo, nothing may raise its
/// privileges (setuid binaries included), so the tenant's processes never hold a capability.
fn security_options(p: Privileges) -> impl Iterator<Item = String> {
    (p == Privileges::InitOnly)
        .then(|| "no-new-privileges".to_owned())
        .into_iter()
}

/// Whether a `/proc/PID/cgroup` text puts the process in the container with this id (cgroup
/// v1 or v2; the engine's cgroupfs layout `/docker/ID` or systemd's `docker-ID.scope`).
pub(crate) fn in_container(groups: &str, container: &str) -> bool {
    !container.is_empty()
        && container.bytes().all(|b| b.is_ascii_hexdigit())
        && groups.lines().any(|l| {
            l.rsplit_once(':').is_some_and(|(_, path)| {
                path.split('/')
                    .any(|part| part == container || part == format!("docker-{container}.scope"))
            })
        })
}

/// A memory limit as the engine takes it: bytes, as a signed number.
fn memory_bytes(size: ByteSize) -> i64 {
    i64::try_from(size.as_u64()).unwrap_or(i64::MAX)
}

fn to_btree(labels: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    labels.unwrap_or_default().into_iter().collect()
}

fn label_filter(labels: &[(String, String)]) -> HashMap<String, Vec<String>> {
    let values = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    HashMap::from([("label".to_owned(), values)])
}

/// What the engine masks in every container unless told otherwise (Docker's defaults): a
/// container given its own list would lose these.
const ENGINE_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The container's OOM-kill counter file as the host has it, for the engine's cgroupfs layout
/// (v1 `memory/docker/ID/memory.oom_control`, v2 `docker/ID/memory.events`) or systemd's
/// (`system.slice/docker-ID.scope`); empty when none is there.
async fn host_oom_text(id: &str) -> String {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return String::new();
    }
    for path in [
        format!("/sys/fs/cgroup/memory/docker/{id}/memory.oom_control"),
        format!("/sys/fs/cgroup/docker/{id}/memory.events"),
        format!("/sys/fs/cgroup/system.slice/docker-{id}.scope/memory.events"),
        format!("/sys/fs/cgroup/memory/system.slice/docker-{id}.scope/memory.oom_control"),
    ] {
        if let Ok(text) = tokio::fs::read_to_string(&path).await {
            return text;
        }
    }
    String::new()
}

/// Parses the OOM-kill counter from cgroup v2 `memory.events` or v1 `memory.oom_control`.
fn parse_oom_kills(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

impl DockerRuntime {
    /// The engine's storage as a loop-backed btrfs image: kept (grown, allocated) or only
    /// looked at.
    async fn engine_storage(
        &self,
        keep: bool,
    ) -> Result<Option<crate::storage::PoolState>, RuntimeError> {
        let file = self
            .storage
            .get_or_try_init(|| async {
                let d = self.docker().await?;
                let info = d
                    .info()
                    .await
                    .map_err(self.map_err("info", "engine", &self.socket))?;
                let (Some("btrfs"), Some(root)) = (info.driver.as_deref(), info.docker_root_dir)
                else {
                    return Ok::<_, RuntimeError>(None);
                };
                Ok(
                    tokio::task::spawn_blocking(move || btrfs::engine_file(Path::new(&root)))
                        .await
                        .ok()
                        .flatten(),
                )
            })
            .await?
            .clone();
        crate::storage::pool::keep_or_look(file, keep, "the engine's storage").await
    }
}

#[async_trait]
impl Runtime for DockerRuntime {
    async fn ping(&self) -> Result<EngineInfo, RuntimeError> {
        let d = self.docker().await?;
        let err = || self.map_err("info", "engine", &self.socket);
        let version = d.version().await.map_err(err())?;
        let info = d.info().await.map_err(err())?;
        // Of Docker's drivers, btrfs keeps a quota per container on any host; overlay2 needs
        // XFS with project quotas under it, which hostel does not set up.
        let layer_quota = match (info.driver.as_deref(), info.docker_root_dir.clone()) {
            (Some("btrfs"), Some(root)) => Some(
                tokio::task::spawn_blocking(move || btrfs::layer_quota(Path::new(&root)))
                    .await
                    .unwrap_or(LayerQuota::WholeRoot),
            ),
            (Some("btrfs"), None) => Some(LayerQuota::WholeRoot),
            _ => None,
        };
        let userns = info
            .security_options
            .unwrap_or_default()
            .iter()
            .any(|o| o.split(',').any(|p| p == "name=userns"));
        Ok(EngineInfo {
            version: version.version.unwrap_or_default(),
            api_version: d.client_version().to_string(),
            cpus: info.ncpu.unwrap_or(1).try_into().unwrap_or(1),
            memory: info.mem_total.unwrap_or(0).try_into().unwrap_or(0),
            gpus: host_gpus(Path::new("/dev")),
            ids: match userns.then(remap_base).transpose()?.flatten() {
                Some(base) => IdMapping::Shared { base },
                None => IdMapping::Host,
            },
            layer_quota,
            build_network: false,
            system_init: false,
            system_snapshots: false,
            nesting: false,
        })
    }

    async fn keep_storage(&self) -> Result<Option<crate::storage::PoolState>, RuntimeError> {
        self.engine_storage(true).await
    }

    async fn storage_state(&self) -> Result<Option<crate::storage::PoolState>, RuntimeError> {
        self.engine_storage(false).await
    }

    async fn create(&self, spec: &WorkspaceSpec) -> Result<WorkspaceInfo, RuntimeError> {
        if spec.privileges == Privileges::Nesting {
            return Err(RuntimeError::Unsupported(
                "a Docker workspace cannot run containers of its own: that needs new \
                 namespaces and mounts, which the shared id range of Docker's workspaces \
                 does not confine"
                    .into(),
            ));
        }
        let d = self.docker().await?;
        let throttle = if spec.disk_io.is_unlimited() {
            Throttle::default()
        } else {
            let info = d
                .info()
                .await
                .map_err(self.map_err("info", "engine", &self.socket))?;
            let paths: Vec<String> = spec
                .mounts
                .iter()
                .map(|m| m.source.clone())
                .chain(info.docker_root_dir)
                .collect();
            let devices = tokio::task::spawn_blocking(move || {
                let paths: Vec<&Path> = paths.iter().map(Path::new).collect();
                crate::blockdev::backing_devices(&paths)
            })
            .await
            .unwrap_or_default();
            if devices.is_empty() {
                tracing::warn!(
                    workspace = %spec.name,
                    "no block device found under the workspace's disks: its disk I/O limit \
                     cannot be applied"
                );
            }
            throttle(spec.disk_io, &devices)
        };
        let mounts = spec
            .mounts
            .iter()
            .map(|m| DockerMount {
                typ: Some(MountType::BIND),
                source: Some(m.source.clone()),
                target: Some(m.target.clone()),
                read_only: Some(m.read_only),
                ..DockerMount::default()
            })
            .collect();
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            hostname: Some(spec.hostname.clone()),
            env: Some(spec.env.clone()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            host_config: Some(HostConfig {
                nano_cpus: Some(spec.limits.cpus.as_nanos()),
                memory: Some(memory_bytes(spec.limits.memory)),
                memory_swap: Some(memory_bytes(spec.limits.memory)),
                pids_limit: Some(i64::from(spec.limits.pids)),
                device_requests: device_requests(spec.gpus),
                blkio_device_read_bps: throttle.read_bps,
                blkio_device_write_bps: throttle.write_bps,
                blkio_device_read_iops: throttle.read_iops,
                blkio_device_write_iops: throttle.write_iops,
                mounts: Some(mounts),
                cap_drop: Some(vec!["ALL".to_owned()]),
                cap_add: Some(capabilities(spec.privileges)),
                security_opt: Some(
                    security_options(spec.privileges)
                        .chain([format!("seccomp={}", seccomp::profile(&spec.syscalls))])
                        .collect(),
                ),
                network_mode: spec.network.clone(),
                storage_opt: spec
                    .layer_max
                    .map(|b| [("size".to_owned(), b.to_string())].into_iter().collect()),
                // Given, the list replaces the engine's own: keep those and add ours.
                masked_paths: Some(
                    ENGINE_MASKED_PATHS
                        .iter()
                        .map(|p| (*p).to_owned())
                        .chain(spec.hidden_paths.iter().cloned())
                        .collect(),
                ),
                // Two files of half the bound each: the engine rotates, so at most the bound
                // stays on the host whatever the workspace writes to its init's output.
                log_config: Some(bollard::models::HostConfigLogConfig {
                    typ: Some("json-file".to_owned()),
                    config: Some(
                        [
                            (
                                "max-size".to_owned(),
                                (spec.output_log_max / 2).max(1024).to_string(),
                            ),
                            ("max-file".to_owned(), "2".to_owned()),
                        ]
                        .into_iter()
                        .collect(),
                    ),
                }),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let opts = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        d.create_container(Some(opts), body)
            .await
            .map_err(self.map_err("create container", "image", &spec.image))?;
        self.inspect(&spec.name)
            .await?
            .ok_or_else(|| RuntimeError::NotFound {
                what: "container",
                name: spec.name.clone(),
            })
    }

    async fn network_create(&self, spec: &NetworkSpec) -> Result<NetworkInfo, RuntimeError> {
        let d = self.docker().await?;
        let body = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some("bridge".to_owned()),
            internal: Some(spec.internal),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(spec.subnet.clone()),
                    ..IpamConfig::default()
                }]),
                ..Ipam::default()
            }),
            options: Some(HashMap::from([
                (BRIDGE_NAME.to_owned(), spec.bridge.clone()),
                (
                    "com.docker.network.bridge.enable_icc".to_owned(),
                    "false".to_owned(),
                ),
            ])),
            labels: Some(spec.labels.clone().into_iter().collect()),
            ..NetworkCreateRequest::default()
        };
        d.create_network(body).await.map_err(self.map_err(
            "create network",
            "network",
            &spec.name,
        ))?;
        self.network_inspect(&spec.name)
            .await?
            .ok_or_else(|| RuntimeError::NotFound {
                what: "network",
                name: spec.name.clone(),
            })
    }

    async fn network_inspect(&self, name: &str) -> Result<Option<NetworkInfo>, RuntimeError> {
        let d = self.docker().await?;
        match d.inspect_network(name, None).await {
            Ok(n) => Ok(Some(network_info(
                n.name, n.id, n.ipam, n.internal, n.options, n.labels,
            ))),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.map_err("inspect network", "network", name)(e)),
        }
    }

    async fn network_remove(&self, name: &str) -> Result<(), RuntimeError> {
        let d = self.docker().await?;
        match d.remove_network(name).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.map_err("remove network", "network", name)(e)),
        }
    }

    async fn networks(
        &self,
        labels: &[(String, String)],
    ) -> Result<Vec<NetworkInfo>, RuntimeError> {
        let d = self.docker().await?;
        let opts = ListNetworksOptionsBuilder::default()
            .filters(&label_filter(labels))
            .build();
        let list = d.list_networks(Some(opts)).await.map_err(self.map_err(
            "list networks",
            "network",
            "",
        ))?;
        Ok(list
            .into_iter()
            .map(|n| network_info(n.name, n.id, n.ipam, n.internal, n.options, n.labels))
            .collect())
    }

    async fn start(&self, name: &str) -> Result<(), RuntimeError> {
        let d = self.docker().await?;
        match d.start_container(name, None).await {
            // 304: already running, which is what the caller wants.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            r => r.map_err(self.map_err("start container", "container", name)),
        }
    }

    async fn stop(&self, name: &str, grace_secs: u32) -> Result<(), RuntimeError> {
        let d = self.docker().await?;
        let opts = StopContainerOptionsBuilder::default()
            .t(i32::try_from(grace_secs).unwrap_or(i32::MAX))
            .build();
        match d.stop_container(name, Some(opts)).await {
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            r => r.map_err(self.map_err("stop container", "container", name)),
        }
    }

    async fn remove(&self, name: &str) -> Result<(), RuntimeError> {
        let d = self.docker().await?;
        let opts = RemoveContainerOptionsBuilder::default().force(true).build();
        match d.remove_container(name, Some(opts)).await {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            // A removal asked by a process that died since goes on in the engine: wait for it
            // (removing is idempotent; the caller wants the container gone).
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => {
                for _ in 0..600 {
                    if self.inspect(name).await?.is_none() {
                        return Ok(());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(RuntimeError::Conflict {
                    name: name.to_owned(),
                    message,
                })
            }
            r => r.map_err(self.map_err("remove container", "container", name)),
        }
    }

    async fn inspect(&self, name: &str) -> Result<Option<WorkspaceInfo>, RuntimeError> {
        let d = self.docker().await?;
        let c = match d
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            r => r.map_err(self.map_err("inspect container", "container", name))?,
        };
        let state = c.state.unwrap_or_default();
        let config = c.config.unwrap_or_default();
        let hc = c.host_config.unwrap_or_default();
        let addresses = c
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(net, ep)| Some((net, ep.ip_address.filter(|ip| !ip.is_empty())?)))
            .collect();
        Ok(Some(WorkspaceInfo {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            image: config.image.unwrap_or_default(),
            state: workspace_state(state.status.map(|s| s.to_string()).as_deref()),
            labels: to_btree(config.labels),
            started_at: state.started_at.filter(|s| !s.starts_with("0001-")),
            oom_killed: state.oom_killed.unwrap_or(false),
            limits: Some(Limits {
                cpus: Cpus::millis(
                    u32::try_from(hc.nano_cpus.unwrap_or(0) / 1_000_000).unwrap_or(0),
                ),
                memory: ByteSize::bytes(u64::try_from(hc.memory.unwrap_or(0)).unwrap_or(0)),
                pids: u32::try_from(hc.pids_limit.unwrap_or(0)).unwrap_or(0),
            }),
            addresses,
        }))
    }

    async fn list(&self, labels: &[(String, String)]) -> Result<Vec<WorkspaceInfo>, RuntimeError> {
        let d = self.docker().await?;
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&label_filter(labels))
            .build();
        let list = d.list_containers(Some(opts)).await.map_err(self.map_err(
            "list containers",
            "container",
            "",
        ))?;
        Ok(list
            .into_iter()
            .map(|c| WorkspaceInfo {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_owned(),
                image: c.image.unwrap_or_default(),
                state: workspace_state(c.state.map(|s| s.to_string()).as_deref()),
                labels: to_btree(c.labels),
                started_at: None,
                oom_killed: false,
                limits: None,
                addresses: BTreeMap::new(),
            })
            .collect())
    }

    async fn update_limits(&self, name: &str, limits: &Limits) -> Result<(), RuntimeError> {
        let d = self.docker().await?;
        let body = ContainerUpdateBody {
            nano_cpus: Some(limits.cpus.as_nanos()),
            memory: Some(memory_bytes(limits.memory)),
            memory_swap: Some(memory_bytes(limits.memory)),
            pids_limit: Some(i64::from(limits.pids)),
            ..ContainerUpdateBody::default()
        };
        d.update_container(name, body).await.map_err(self.map_err(
            "update limits",
            "container",
            name,
        ))
    }

    async fn stats(&self, name: &str) -> Result<WorkspaceStats, RuntimeError> {
        let d = self.docker().await?;
        let opts = StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(true)
            .build();
        let s = d
            .stats(name, Some(opts))
            .next()
            .await
            .ok_or_else(|| RuntimeError::Engine {
                action: "stats".into(),
                message: "no sample".into(),
            })?
            .map_err(self.map_err("stats", "container", name))?;
        let mem = s.memory_stats.unwrap_or_default();
        // The engine counts page cache in `usage`; `docker stats` subtracts it too.
        let cache = mem
            .stats
            .as_ref()
            .and_then(|m| {
                m.get("total_inactive_file")
                    .or(m.get("inactive_file"))
                    .copied()
            })
            .unwrap_or(0);
        // The engine has no OOM-kill counter for a container whose PID 1 survives, so read the
        // kernel's, from the container's cgroup as the host sees it. Not from inside: an exec
        // there is CPU charged to the workspace, and the idle check would see every look as
        // work (it did, on a loaded host).
        let oom_text = match s.id.as_deref() {
            Some(id) => host_oom_text(id).await,
            None => String::new(),
        };
        let (net_rx_bytes, net_tx_bytes) = s
            .networks
            .iter()
            .flat_map(|n| n.values())
            .fold((0, 0), |(rx, tx), n| {
                (rx + n.rx_bytes.unwrap_or(0), tx + n.tx_bytes.unwrap_or(0))
            });
        Ok(WorkspaceStats {
            net_rx_bytes,
            net_tx_bytes,
            cpu_total_ns: s
                .cpu_stats
                .and_then(|c| c.cpu_usage)
                .and_then(|u| u.total_usage)
                .unwrap_or(0),
            memory_used: mem.usage.unwrap_or(0).saturating_sub(cache),
            pids: s.pids_stats.and_then(|p| p.current).unwrap_or(0),
            oom_kills: parse_oom_kills(&oom_text),
        })
    }

    async fn exec(&self, name: &str, req: &ExecRequest) -> Result<ExecSession, RuntimeError> {
        let d = self.docker().await?;
        let opts = CreateExecOptions {
            attach_stdin: Some(req.stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(req.tty),
            env: Some(req.env.clone()),
            cmd: Some(req.cmd.clone()),
            user: Some(req.user.clone()),
            working_dir: req.working_dir.clone(),
            ..CreateExecOptions::default()
        };
        let created = d.create_exec(name, opts).await.map_err(self.map_err(
            "create exec",
            "container",
            name,
        ))?;
        let start = StartExecOptions {
            detach: false,
            tty: req.tty,
            output_capacity: Some(64 * 1024),
        };
        match d
            .start_exec(&created.id, Some(start))
            .await
            .map_err(self.map_err("start exec", "exec", &created.id))?
        {
            StartExecResults::Attached { output, input } => {
                let output = output
                    .map_err(map_stream_err)
                    .try_filter_map(|chunk| async move {
                        Ok(match chunk {
                            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                                Some(ExecOutput::Stdout(message.to_vec()))
                            }
                            LogOutput::StdErr { message } => {
                                Some(ExecOutput::Stderr(message.to_vec()))
                            }
                            LogOutput::StdIn { .. } => None,
                        })
                    })
                    .boxed();
                Ok(ExecSession {
                    output,
                    input,
                    control: Arc::new(DockerExec {
                        docker: d.clone(),
                        endpoint: self.socket.clone(),
                        id: created.id,
                    }),
                })
            }
            StartExecResults::Detached => Err(RuntimeError::Engine {
                action: "start exec".into(),
                message: "engine detached an attached exec".into(),
            }),
        }
    }

    async fn output_log_bytes(&self, name: &str) -> Result<u64, RuntimeError> {
        let d = self.docker().await?;
        let c = d
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
            .map_err(self.map_err("inspect container", "container", name))?;
        let Some(path) = c.log_path.filter(|p| !p.is_empty()) else {
            return Ok(0);
        };
        Ok(
            tokio::task::spawn_blocking(move || crate::log_bytes(Path::new(&path)))
                .await
                .unwrap_or(0),
        )
    }

    async fn connect(
        &self,
        name: &str,
        port: u16,
        loopback: Loopback,
    ) -> Result<Connection, RuntimeError> {
        let d = self.docker().await?;
        let c = d
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
            .map_err(self.map_err("inspect container", "container", name))?;
        let (id, state) = (c.id.unwrap_or_default(), c.state.unwrap_or_default());
        let pid = match (state.running, state.pid) {
            (Some(true), Some(pid)) => i32::try_from(pid).unwrap_or(0),
            _ => 0,
        };
        crate::netns::open(
            name,
            pid,
            move |groups| in_container(groups, &id),
            port,
            loopback,
        )
        .await
    }

    async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        let d = self.docker().await?;
        let i = match d.inspect_image(reference).await {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            r => r.map_err(self.map_err("inspect image", "image", reference))?,
        };
        Ok(Some(ImageInfo {
            id: i.id.unwrap_or_default(),
            tags: i.repo_tags.unwrap_or_default(),
            size: i.size.unwrap_or(0).try_into().unwrap_or(0),
            created: i.created.map(|c| c.to_string()).unwrap_or_default(),
            labels: to_btree(i.config.and_then(|c| c.labels)),
        }))
    }

    async fn images(&self, label: &str) -> Result<Vec<ImageInfo>, RuntimeError> {
        let d = self.docker().await?;
        let filters = HashMap::from([("label".to_owned(), vec![label.to_owned()])]);
        let opts = ListImagesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let list =
            d.list_images(Some(opts))
                .await
                .map_err(self.map_err("list images", "image", label))?;
        Ok(list
            .into_iter()
            .map(|i| ImageInfo {
                id: i.id,
                tags: i.repo_tags,
                size: i.size.try_into().unwrap_or(0),
                created: i.created.to_string(),
                labels: i.labels.into_iter().collect(),
            })
            .collect())
    }

    async fn pull(&self, reference: &str) -> Result<(), RuntimeError> {
        let d = self.docker().await?;
        let opts = CreateImageOptionsBuilder::default()
            .from_image(reference)
            .build();
        let mut s = d.create_image(Some(opts), None, None);
        while let Some(r) = s.next().await {
            r.map_err(self.map_err("pull image", "image", reference))?;
        }
        Ok(())
    }

    async fn import(&self, rootfs_tar: Vec<u8>, reference: &str) -> Result<(), RuntimeError> {
        let d = self.docker().await?;
        let (repo, tag) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
        let opts = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .build();
        let mut s = d.create_image(Some(opts), Some(body_full(rootfs_tar.into())), None);
        while let Some(r) = s.next().await {
            let info = r.map_err(self.map_err("import image", "image", reference))?;
            if let Some(e) = info.error_detail.and_then(|e| e.message) {
                return Err(RuntimeError::Engine {
                    action: "import image".into(),
                    message: e,
                });
            }
        }
        Ok(())
    }

    async fn build(
        &self,
        req: &BuildRequest,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), RuntimeError> {
        let d = self.docker().await?;
        let Some((first, rest)) = req.tags.split_first() else {
            return Err(RuntimeError::Unsupported(
                "an image build needs a tag".into(),
            ));
        };
        let args: HashMap<String, String> = req.build_args.clone().into_iter().collect();
        let labels: HashMap<String, String> = req.labels.clone().into_iter().collect();
        let opts = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(first)
            .rm(true)
            .forcerm(true)
            .nocache(req.no_cache)
            .buildargs(&args)
            .labels(&labels)
            .build();
        let mut s = d.build_image(opts, None, Some(body_full(req.context_tar.clone().into())));
        while let Some(r) = s.next().await {
            let info = r.map_err(self.map_err("build image", "image", first))?;
            if let Some(e) = info.error_detail.and_then(|e| e.message) {
                return Err(RuntimeError::Engine {
                    action: "build image".into(),
                    message: e,
                });
            }
            if let Some(line) = info.stream.as_deref().map(str::trim_end)
                && !line.is_empty()
            {
                progress(line.to_owned());
            }
        }
        for tag in rest {
            let (repo, t) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
            let opts = TagImageOptionsBuilder::default().repo(repo).tag(t).build();
            d.tag_image(first, Some(opts)).await.map_err(self.map_err(
                "tag image",
                "image",
                first,
            ))?;
        }
        Ok(())
    }
}

fn map_stream_err(e: bollard::errors::Error) -> RuntimeError {
    RuntimeError::Engine {
        action: "exec output".into(),
        message: e.to_string(),
    }
}

/// GPUs a workspace can be given: NVIDIA's device nodes (`/dev/nvidia0`, ...) on the host, which
/// the engine's GPU support (the NVIDIA container toolkit) hands to containers.
fn host_gpus(dev: &Path) -> u32 {
    let count = std::fs::read_dir(dev)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("nvidia"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// The engine's block throttles for a disk I/O limit on these devices.
#[derive(Debug, Default, PartialEq)]
struct Throttle {
    read_bps: Option<Vec<bollard::models::ThrottleDevice>>,
    write_bps: Option<Vec<bollard::models::ThrottleDevice>>,
    read_iops: Option<Vec<bollard::models::ThrottleDevice>>,
    write_iops: Option<Vec<bollard::models::ThrottleDevice>>,
}

/// A disk I/O limit as the engine's throttles, the same each way on every device.
fn throttle(io: hostel_core::DiskIo, devices: &[String]) -> Throttle {
    let each = |rate: u64| {
        Some(
            devices
                .iter()
                .map(|d| bollard::models::ThrottleDevice {
                    path: Some(d.clone()),
                    rate: Some(i64::try_from(rate).unwrap_or(i64::MAX)),
                })
                .collect::<Vec<_>>(),
        )
    };
    match io {
        hostel_core::DiskIo::Unlimited => Throttle::default(),
        hostel_core::DiskIo::Bytes(b) => Throttle {
            read_bps: each(b.as_u64()),
            write_bps: each(b.as_u64()),
            ..Throttle::default()
        },
        hostel_core::DiskIo::Ops(n) => Throttle {
            read_iops: each(u64::from(n)),
            write_iops: each(u64::from(n)),
            ..Throttle::default()
        },
    }
}

/// What `docker run --gpus` asks the engine for: every GPU (count -1) or the first N, by the
/// `gpu` capability.
fn device_requests(gpus: hostel_core::Gpus) -> Option<Vec<bollard::models::DeviceRequest>> {
    let count = match gpus {
        hostel_core::Gpus::None => return None,
        hostel_core::Gpus::All => -1,
        hostel_core::Gpus::Count(n) => i64::from(n),
    };
    Some(vec![bollard::models::DeviceRequest {
        count: Some(count),
        capabilities: Some(vec![vec!["gpu".to_owned()]]),
        ..bollard::models::DeviceRequest::default()
    }])
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_disk_io_limit_throttles_each_device_both_ways() {
        let devices = ["/dev/loop0".to_owned(), "/dev/loop1".to_owned()];
        assert_eq!(
            throttle(hostel_core::DiskIo::Unlimited, &devices),
            Throttle::default()
        );
        let bytes = throttle(
            hostel_core::DiskIo::Bytes(hostel_core::ByteSize::mib(50)),
            &devices,
        );
        let write = bytes.write_bps.unwrap();
        assert_eq!(write, bytes.read_bps.unwrap());
        assert_eq!(write.len(), 2);
        assert_eq!(
            (write[1].path.as_deref(), write[1].rate),
            (Some("/dev/loop1"), Some(50 << 20))
        );
        assert!(bytes.read_iops.is_none() && bytes.write_iops.is_none());
        let ops = throttle(hostel_core::DiskIo::Ops(500), &devices);
        assert_eq!(ops.write_iops.unwrap()[0].rate, Some(500));
        assert!(ops.read_bps.is_none() && ops.write_bps.is_none());
    }

    #[test]
    fn gpus_are_device_requests_as_docker_run_makes_them() {
        use hostel_core::Gpus;
        assert_eq!(device_requests(Gpus::None), None);
        let all = device_requests(Gpus::All).unwrap();
        assert_eq!((all[0].count, all[0].driver.as_deref()), (Some(-1), None));
        assert_eq!(all[0].capabilities, Some(vec![vec!["gpu".to_owned()]]));
        assert_eq!(device_requests(Gpus::Count(2)).unwrap()[0].count, Some(2));
        let dev = tempfile::tempdir().unwrap();
        for n in ["nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "null"] {
            std::fs::write(dev.path().join(n), "").unwrap();
        }
        assert_eq!(host_gpus(dev.path()), 2);
        assert_eq!(host_gpus(Path::new("/nonexistent")), 0);
    }

    use super::*;

    const ID: &str = "4f1c0d9e8b7a";

    #[test]
    fn a_process_is_in_a_container_by_its_cgroup_path() {
        assert!(in_container(&format!("0::/docker/{ID}\n"), ID));
        assert!(in_container(
            &format!("0::/system.slice/docker-{ID}.scope\n"),
            ID
        ));
        assert!(in_container(
            &format!("12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n"),
            ID
        ));
        assert!(in_container(&format!("0::/docker/{ID}/init\n"), ID));
        for (groups, why) in [
            ("0::/\n", "the host's root group"),
            ("0::/docker/4f1c0d9e8b7a0\n", "another id that starts alike"),
            ("0::/user.slice/4f1c0d9e8b7a-x\n", "a name that holds it"),
            ("", "nothing read"),
        ] {
            assert!(!in_container(groups, ID), "{why}");
        }
        assert!(!in_container("0::/docker/\n", ""), "no id");
        assert!(!in_container("0::/docker/..\n", ".."), "not an id");
    }

    #[test]
    fn privileges_map_to_capabilities_and_options() {
        let init = capabilities(Privileges::InitOnly);
        let sudo = capabilities(Privileges::Sudo);
        assert_eq!(init, CAPS);
        assert!(sudo.starts_with(&init) && sudo.len() == CAPS.len() + SUDO_CAPS.len());
        for never in ["SYS_ADMIN", "NET_RAW", "SYS_PTRACE", "NET_ADMIN"] {
            assert!(!sudo.iter().any(|c| c == never), "{never}");
        }
        assert_eq!(
            security_options(Privileges::InitOnly).collect::<Vec<_>>(),
            ["no-new-privileges"]
        );
        assert_eq!(security_options(Privileges::Sudo).count(), 0);
    }

    #[test]
    fn docker_words_map_to_states() {
        use hostel_core::WorkspaceState::{Running, Stopped};
        let table = [
            (Some("running"), Running),
            (Some("restarting"), Running),
            (Some("paused"), Running),
            (Some("exited"), Stopped),
            (Some("created"), Stopped),
            (Some("dead"), Stopped),
            (None, Stopped),
        ];
        for (word, state) in table {
            assert_eq!(workspace_state(word), state, "{word:?}");
        }
    }

    #[test]
    fn oom_counter_parses_both_cgroup_versions() {
        assert_eq!(
            parse_oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
            3
        );
        assert_eq!(
            parse_oom_kills("low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n"),
            2
        );
        assert_eq!(parse_oom_kills(""), 0);
    }
}
