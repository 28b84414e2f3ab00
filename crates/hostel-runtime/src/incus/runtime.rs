//! [`IncusRuntime`]: the [`Runtime`] trait on an Incus daemon. Workspaces are system
//! containers, each with an id range of its own (`security.idmap.isolated`) and its home mounted
//! id-shifted; networks are Incus bridges that carry nothing of Incus's own (no NAT, firewall
//! rules, DHCP or DNS), so that the host's packet filter is hostel's alone, as on Docker.

use super::build;
use super::client::{Answer, Client};
use super::exec::{ExecArgs, exec};
use super::spec::{self, Address, KEY_IMAGE, KEY_INTERNAL, KEY_NETWORK};
use crate::types::*;
use crate::{Runtime, RuntimeError};
use async_trait::async_trait;
use hostel_core::{Limits, WorkspaceState};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;

/// The storage pool `scripts/incus` makes.
pub const DEFAULT_POOL: &str = "hostel";

/// How long a stop that is not a kill is waited for at least, in seconds: a system container's
/// init shuts its services down.
const MIN_GRACE_SECS: u32 = 1;

/// What Incus 6.0 says when a bridge's setup or removal lists the host's links and one of them
/// (another engine's veth, say) goes away before it is read. Nothing was changed; the same
/// request is safe to send again (fixed upstream after 6.0.4 by skipping such links).
const VANISHED_LINK: &str = "Failed to delete bridge children interfaces";

/// How often a bridge request that met a vanished link is sent in all: a busy host fails
/// about one try in two, so twenty fail together about once in a million.
const BRIDGE_TRIES: u32 = 20;

/// An Incus daemon reached through its Unix socket; workspaces' root disks on `pool`.
#[derive(Debug, Clone)]
pub struct IncusRuntime {
    client: Client,
    pool: String,
    /// The pool as hostel can keep it (a btrfs image file on a loop device), found once.
    storage: Arc<OnceCell<Option<crate::storage::pool::LoopFile>>>,
}

impl IncusRuntime {
    /// A runtime for the daemon at `socket`; nothing is contacted until the first call.
    pub fn new(socket: impl Into<std::path::PathBuf>, pool: impl Into<String>) -> Self {
        IncusRuntime {
            client: Client::new(socket),
            pool: pool.into(),
            storage: Arc::new(OnceCell::new()),
        }
    }

    /// The pool as a loop-backed btrfs image: kept (allocated, grown, mounted without
    /// discard) or only looked at. Incus makes its loop pools sparse and mounts them with
    /// discard, which a full host disk would turn read-only under every workspace.
    async fn pool_storage(
        &self,
        keep: bool,
    ) -> Result<Option<crate::storage::PoolState>, RuntimeError> {
        let file = self
            .storage
            .get_or_try_init(|| async {
                let pool = self.pool_info().await?;
                if str_of(&pool, "driver") != "btrfs" {
                    return Ok::<_, RuntimeError>(None);
                }
                let mount = self.pool_mount();
                Ok(
                    tokio::task::spawn_blocking(move || crate::docker::btrfs::engine_file(&mount))
                        .await
                        .ok()
                        .flatten(),
                )
            })
            .await?
            .clone();
        if keep && file.is_some() {
            // Where the pool kept full quota groups (no simple quotas here), a deleted
            // workspace can leave them inconsistent, and the root disks' limits with them.
            let mount = self.pool_mount();
            let _ = tokio::task::spawn_blocking(move || {
                crate::docker::btrfs::rescan_if_inconsistent(&mount)
            })
            .await;
        }
        crate::storage::pool::keep_or_look(file, keep, "Incus's storage pool").await
    }

    /// Where Incus mounts the storage pool.
    fn pool_mount(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("/var/lib/incus/storage-pools/{}", self.pool))
    }

    /// The storage pool as Incus describes it.
    async fn pool_info(&self) -> Result<Value, RuntimeError> {
        self.client
            .get(
                &format!("/1.0/storage-pools/{}", self.pool),
                "storage pool",
                &self.pool,
            )
            .await
    }

    /// A request that makes or removes a bridge, sent again while Incus fails it because a
    /// link of the host vanished under it (see [`VANISHED_LINK`]): on a host where Docker
    /// makes and removes veths all the time, that happens to one create in two.
    async fn bridge_request(
        &self,
        method: &str,
        path: &str,
        body: &Value,
        name: &str,
    ) -> Result<Value, RuntimeError> {
        let mut tries = 1;
        loop {
            match self.client.run(method, path, body, "network", name).await {
                Err(RuntimeError::Engine { message, .. })
                    if message.contains(VANISHED_LINK) && tries < BRIDGE_TRIES =>
                {
                    tracing::debug!(network = name, tries, %message, "a host link vanished; again");
                    let pause = (20 * u64::from(tries)).min(200);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    /// Removes the NICs on `bridge` from the stopped instances that have one; the running
    /// ones keep theirs, and Incus then refuses to remove the network.
    async fn detach_stopped(&self, bridge: &str) -> Result<(), RuntimeError> {
        let list = self
            .client
            .get("/1.0/instances?recursion=1", "instance", "")
            .await?;
        for inst in list.as_array().into_iter().flatten() {
            let on_bridge = |d: &Value| {
                str_of(d, "type") == "nic"
                    && (str_of(d, "network") == bridge || str_of(d, "parent") == bridge)
            };
            let Some(devices) = inst.get("devices").and_then(Value::as_object) else {
                continue;
            };
            if str_of(inst, "status") != "Stopped" || !devices.values().any(on_bridge) {
                continue;
            }
            let name = str_of(inst, "name");
            let kept: Map<String, Value> = devices
                .iter()
                .filter(|(_, d)| !on_bridge(d))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let put = json!({
                "config": inst.get("config").cloned().unwrap_or_else(|| json!({})),
                "devices": kept,
                "profiles": inst.get("profiles").cloned().unwrap_or_else(|| json!([])),
                "ephemeral": inst.get("ephemeral").cloned().unwrap_or(Value::Bool(false)),
                "description": inst.get("description").cloned().unwrap_or_default(),
            });
            self.client
                .run("PUT", &Self::instance_path(name)?, &put, "instance", name)
                .await?;
        }
        Ok(())
    }

    /// The image a spec names and the body of `POST /1.0/instances` for it, without the root
    /// disk's size (see [`IncusRuntime::sized_root`]).
    async fn body_for(&self, spec: &WorkspaceSpec) -> Result<(ImageInfo, Value), RuntimeError> {
        let Some(image) = self.image(&spec.image).await? else {
            return Err(RuntimeError::NotFound {
                what: "image",
                name: spec.image.clone(),
            });
        };
        let network = match &spec.network {
            Some(net) => Some(self.attachment(&spec.name, net).await?),
            None => None,
        };
        let mut first = spec.clone();
        first.layer_max = None;
        let body = spec::instance_body(
            &first,
            &self.pool,
            network.as_ref().map(|(b, a)| (b.as_str(), *a)),
            &image.labels,
            |p| std::path::Path::new(p).is_dir(),
        )?;
        Ok((image, body))
    }

    /// The root disk device with its size, when the spec limits what the workspace writes.
    /// On a pool with simple quotas (`scripts/incus` moves it to them) the size counts what
    /// the workspace writes itself: it is the spec's limit. With full quota groups it counts
    /// everything the root refers to, its snapshot of the image included, and the image's
    /// volume is made with the first instance from it: the size is then the image's plus the
    /// spec's limit, set once an instance is there.
    async fn sized_root(
        &self,
        spec: &WorkspaceSpec,
        image: &ImageInfo,
        body: &Value,
    ) -> Result<Option<Value>, RuntimeError> {
        let Some(max) = spec.layer_max else {
            return Ok(None);
        };
        let mount = self.pool_mount();
        let own_writes = tokio::task::spawn_blocking(move || {
            crate::docker::btrfs::layer_quota(&mount) == LayerQuota::OwnWrites
        })
        .await
        .unwrap_or(false);
        let size = if own_writes {
            max
        } else {
            max.saturating_add(self.image_volume_bytes(&image.id).await?)
        };
        let mut root = body.pointer("/devices/root").cloned().unwrap_or_default();
        if let Some(map) = root.as_object_mut() {
            map.insert("size".into(), size.to_string().into());
        }
        Ok(Some(root))
    }

    fn instance_path(name: &str) -> Result<String, RuntimeError> {
        Ok(format!("/1.0/instances/{}", checked_name(name)?))
    }

    /// Every managed network, as Incus answers (name, config).
    async fn managed_networks(&self) -> Result<Vec<(String, Map<String, Value>)>, RuntimeError> {
        let list = self
            .client
            .get("/1.0/networks?recursion=1", "network", "")
            .await?;
        Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n.get("managed").and_then(Value::as_bool) == Some(true))
            .filter_map(|n| {
                Some((
                    n.get("name")?.as_str()?.to_owned(),
                    n.get("config")?.as_object()?.clone(),
                ))
            })
            .collect())
    }

    /// The Incus network hostel made under this name, and its config.
    async fn find_network(
        &self,
        name: &str,
    ) -> Result<Option<(String, Map<String, Value>)>, RuntimeError> {
        Ok(self
            .managed_networks()
            .await?
            .into_iter()
            .find(|(_, c)| c.get(KEY_NETWORK).and_then(Value::as_str) == Some(name)))
    }

    /// The instance with its state (`?recursion=1`), or `None`.
    async fn instance(&self, name: &str) -> Result<Option<Value>, RuntimeError> {
        let path = format!("{}?recursion=1", Self::instance_path(name)?);
        match self.client.get(&path, "instance", name).await {
            Ok(v) => Ok(Some(v)),
            Err(RuntimeError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn state_action(&self, name: &str, body: Value) -> Result<(), RuntimeError> {
        let path = format!("{}/state", Self::instance_path(name)?);
        self.client
            .run("PUT", &path, &body, "instance", name)
            .await
            .map(|_| ())
    }

    /// The user and group ids and home of `user` inside a running instance (`root`, a name in
    /// its `/etc/passwd`, or `UID[:GID]`).
    async fn resolve_user(
        &self,
        name: &str,
        user: &str,
    ) -> Result<(u32, u32, String), RuntimeError> {
        if user.is_empty() || user == "root" {
            return Ok((0, 0, "/root".into()));
        }
        if let Some((uid, gid)) = numeric_user(user) {
            return Ok((uid, gid, "/".into()));
        }
        let passwd = self
            .client
            .file(checked_name(name)?, "/etc/passwd")
            .await?
            .unwrap_or_default();
        passwd_entry(&String::from_utf8_lossy(&passwd), user).ok_or_else(|| {
            RuntimeError::NotFound {
                what: "user",
                name: format!("{user} in {name}"),
            }
        })
    }
}

/// An instance name as Incus takes it: letters, digits and dashes.
fn checked_name(name: &str) -> Result<&str, RuntimeError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(name)
    } else {
        Err(RuntimeError::NotFound {
            what: "instance",
            name: name.to_owned(),
        })
    }
}

/// An image reference as an alias in a URL path: no `/`, `?`, `#`, `%` or spaces.
fn checked_alias(reference: &str) -> Option<&str> {
    let ok = !reference.is_empty()
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-+@".contains(&b));
    ok.then_some(reference)
}

/// `UID` or `UID:GID`.
fn numeric_user(user: &str) -> Option<(u32, u32)> {
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    Some((uid.parse().ok()?, gid.parse().ok()?))
}

/// A user's uid, gid and home from a `/etc/passwd` text.
fn passwd_entry(passwd: &str, user: &str) -> Option<(u32, u32, String)> {
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        match f.as_slice() {
            [n, _, uid, gid, _, home, ..] if *n == user => {
                Some((uid.parse().ok()?, gid.parse().ok()?, (*home).to_owned()))
            }
            _ => None,
        }
    })
}

/// Incus's status word in hostel's words: an instance starting, stopping or frozen still holds
/// its processes, so it runs.
fn workspace_state(status: &str) -> WorkspaceState {
    match status {
        "Running" | "Starting" | "Stopping" | "Frozen" | "Freezing" | "Thawed" => {
            WorkspaceState::Running
        }
        _ => WorkspaceState::Stopped,
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// An instance as Incus answers it (with its state, when asked with `recursion=1`).
fn workspace_info(v: &Value, with_state: bool) -> WorkspaceInfo {
    let empty = Map::new();
    let config = v.get("config").and_then(Value::as_object).unwrap_or(&empty);
    let state = v.get("state").filter(|_| with_state);
    let network = config.get(KEY_NETWORK).and_then(Value::as_str);
    let addresses = match (state, network) {
        (Some(s), Some(net)) => s
            .pointer("/network/eth0/addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|a| str_of(a, "family") == "inet")
            .map(|a| BTreeMap::from([(net.to_owned(), str_of(a, "address").to_owned())]))
            .unwrap_or_default(),
        _ => BTreeMap::new(),
    };
    let status = str_of(v, "status");
    WorkspaceInfo {
        id: config
            .get("volatile.uuid")
            .and_then(Value::as_str)
            .unwrap_or_else(|| str_of(v, "name"))
            .to_owned(),
        name: str_of(v, "name").to_owned(),
        image: config
            .get(KEY_IMAGE)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        state: workspace_state(status),
        labels: spec::labels_of(config),
        started_at: state
            .and_then(|s| s.get("started_at"))
            .and_then(Value::as_str)
            .filter(|t| !t.starts_with("0001-"))
            .map(str::to_owned),
        oom_killed: false,
        limits: with_state.then(|| spec::limits_of(config)).flatten(),
        addresses,
    }
}

/// A network hostel made, as Incus answers it.
fn network_info(name: &str, config: &Map<String, Value>) -> NetworkInfo {
    let get = |k: &str| config.get(k).and_then(Value::as_str).unwrap_or_default();
    NetworkInfo {
        name: get(KEY_NETWORK).to_owned(),
        id: name.to_owned(),
        bridge: Some(name.to_owned()),
        subnets: spec::subnet_of(get("ipv4.address"))
            .map(|s| vec![s.to_string()])
            .unwrap_or_default(),
        internal: get(KEY_INTERNAL) == "true",
        labels: spec::labels_of(config),
    }
}

/// An image as Incus answers it.
fn image_info(v: &Value) -> ImageInfo {
    let labels = v
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    ImageInfo {
        id: str_of(v, "fingerprint").to_owned(),
        tags: v
            .get("aliases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|a| str_of(a, "name").to_owned())
            .collect(),
        size: v.get("size").and_then(Value::as_u64).unwrap_or(0),
        created: str_of(v, "uploaded_at").to_owned(),
        labels,
    }
}

/// Whether a `/proc/PID/cgroup` text puts the process in the instance `name` (LXC's
/// `lxc.payload.NAME` group, cgroup v1 or v2).
fn in_instance(groups: &str, name: &str) -> bool {
    let group = format!("lxc.payload.{name}");
    !name.is_empty()
        && groups.lines().any(|l| {
            l.rsplit_once(':')
                .is_some_and(|(_, path)| path.split('/').any(|part| part == group))
        })
}

/// The kernel's OOM-kill count for an instance's cgroup as the host has it (v1 or v2).
async fn oom_kills(name: &str) -> u64 {
    for path in [
        format!("/sys/fs/cgroup/memory/lxc.payload.{name}/memory.oom_control"),
        format!("/sys/fs/cgroup/lxc.payload.{name}/memory.events"),
    ] {
        if let Ok(text) = tokio::fs::read_to_string(&path).await {
            return text
                .lines()
                .find_map(|l| l.strip_prefix("oom_kill "))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
        }
    }
    0
}

/// The `referenced` bytes of the one quota group `btrfs qgroup show -rf --raw` lists.
fn referenced_of(text: &str) -> Option<u64> {
    text.lines()
        .filter(|l| l.starts_with("0/"))
        .find_map(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// The first line of a command, for a step's title.
fn first_line(cmd: &str) -> &str {
    cmd.lines().next().unwrap_or_default()
}

/// A split image's metadata tarball (`metadata.yaml`).
fn metadata_tar(reference: &str) -> Result<Vec<u8>, RuntimeError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let yaml = format!(
        "architecture: {}\ncreation_date: {now}\nproperties:\n  description: {reference}\n",
        std::env::consts::ARCH
    );
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_size(yaml.len() as u64);
    h.set_mtime(now);
    h.set_cksum();
    let host = |e: std::io::Error| RuntimeError::Host {
        action: "pack an image's metadata".into(),
        message: e.to_string(),
    };
    tar.append_data(&mut h, "metadata.yaml", yaml.as_bytes())
        .map_err(host)?;
    tar.into_inner().map_err(host)
}

/// A `multipart/form-data` body of named parts, and its boundary.
fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("hostel-{:016x}", rand_u64());
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (boundary, body)
}

/// A boundary that no tarball is likely to hold by chance.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

#[async_trait]
impl Runtime for IncusRuntime {
    async fn ping(&self) -> Result<EngineInfo, RuntimeError> {
        let server = self.client.get("/1.0", "engine", "").await?;
        let resources = self.client.get("/1.0/resources", "engine", "").await?;
        let pool = self.pool_info().await?;
        Ok(EngineInfo {
            version: server
                .pointer("/environment/server_version")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            api_version: str_of(&server, "api_version").to_owned(),
            cpus: resources
                .pointer("/cpu/total")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(1),
            memory: resources
                .pointer("/memory/total")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            gpus: resources
                .pointer("/gpu/total")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            ids: IdMapping::Isolated,
            // On btrfs the root disk's size holds (`create` adds the image's own size, so the
            // limit is on what the workspace writes); a `dir` pool ignores it.
            layer_quota: (str_of(&pool, "driver") == "btrfs").then_some(LayerQuota::OwnWrites),
            build_network: true,
            system_init: true,
            system_snapshots: true,
            nesting: true,
        })
    }

    async fn keep_storage(&self) -> Result<Option<crate::storage::PoolState>, RuntimeError> {
        self.pool_storage(true).await
    }

    async fn storage_state(&self) -> Result<Option<crate::storage::PoolState>, RuntimeError> {
        self.pool_storage(false).await
    }

    async fn create(&self, spec: &WorkspaceSpec) -> Result<WorkspaceInfo, RuntimeError> {
        checked_name(&spec.name)?;
        let (image, body) = self.body_for(spec).await?;
        self.client
            .run("POST", "/1.0/instances", &body, "instance", &spec.name)
            .await?;
        if let Some(root) = self.sized_root(spec, &image, &body).await.transpose() {
            let sized = async {
                self.client
                    .run(
                        "PATCH",
                        &Self::instance_path(&spec.name)?,
                        &json!({"devices": {"root": root?}}),
                        "instance",
                        &spec.name,
                    )
                    .await
            };
            if let Err(e) = sized.await {
                // No workspace without its limit.
                let _ = self.remove(&spec.name).await;
                return Err(e);
            }
        }
        self.inspect(&spec.name)
            .await?
            .ok_or_else(|| RuntimeError::NotFound {
                what: "instance",
                name: spec.name.clone(),
            })
    }

    /// A system container's root disk is the tenant's (packages, services, `/etc`): a new
    /// spec on the same image is applied to the stopped instance in place, and only a new
    /// image makes a new one.
    async fn reconfigure(&self, spec: &WorkspaceSpec) -> Result<bool, RuntimeError> {
        let Some(now) = self.instance(&spec.name).await? else {
            return Ok(false);
        };
        let same_image = now
            .get("config")
            .and_then(|c| c.get(KEY_IMAGE))
            .and_then(Value::as_str)
            == Some(spec.image.as_str());
        if !same_image || str_of(&now, "status") == "Running" {
            return Ok(false);
        }
        let (image, body) = self.body_for(spec).await?;
        let mut devices = body.get("devices").cloned().unwrap_or_else(|| json!({}));
        if let (Some(root), Some(map)) = (
            self.sized_root(spec, &image, &body).await?,
            devices.as_object_mut(),
        ) {
            map.insert("root".into(), root);
        }
        // The spec's keys replace hostel's; Incus's own (`volatile.*`, `image.*`) stay as they
        // are, as `incus config edit` sends them back.
        let mut config = body
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in now
            .get("config")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if k.starts_with("volatile.") || k.starts_with("image.") {
                config.insert(k.clone(), v.clone());
            }
        }
        let put = json!({
            "config": config,
            "devices": devices,
            "profiles": [],
            "ephemeral": false,
            "description": now.get("description").cloned().unwrap_or_default(),
        });
        self.client
            .run(
                "PUT",
                &Self::instance_path(&spec.name)?,
                &put,
                "instance",
                &spec.name,
            )
            .await?;
        Ok(true)
    }

    async fn start(&self, name: &str) -> Result<(), RuntimeError> {
        match self.state_action(name, json!({"action": "start"})).await {
            Err(RuntimeError::Conflict { message, .. } | RuntimeError::Engine { message, .. })
                if message.contains("already running") =>
            {
                return Ok(());
            }
            r => r?,
        }
        // Its hostname resolves, as the engine's `/etc/hosts` says on Docker (sudo looks it up).
        let hostname = self
            .instance(name)
            .await?
            .and_then(|v| {
                v.pointer(&format!("/config/{}", spec::KEY_HOSTNAME))
                    .cloned()
            })
            .and_then(|h| h.as_str().map(str::to_owned));
        if let Some(h) = hostname {
            let hosts = format!(
                "127.0.0.1\tlocalhost\n127.0.1.1\t{h}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            );
            self.push(name, "/etc/hosts", 0o644, hosts.into_bytes())
                .await?;
        }
        Ok(())
    }

    async fn stop(&self, name: &str, grace_secs: u32) -> Result<(), RuntimeError> {
        let Some(v) = self.instance(name).await? else {
            return Err(RuntimeError::NotFound {
                what: "instance",
                name: name.to_owned(),
            });
        };
        if workspace_state(str_of(&v, "status")) == WorkspaceState::Stopped {
            return Ok(());
        }
        let grace = grace_secs.max(MIN_GRACE_SECS);
        let clean = self
            .state_action(name, json!({"action": "stop", "timeout": grace}))
            .await;
        if clean.is_ok() {
            return Ok(());
        }
        // The init did not end in time (or the stop raced with its own end): kill it.
        match self
            .state_action(name, json!({"action": "stop", "force": true}))
            .await
        {
            Err(RuntimeError::Conflict { message, .. } | RuntimeError::Engine { message, .. })
                if message.contains("already stopped") || message.contains("not running") =>
            {
                Ok(())
            }
            r => r,
        }
    }

    async fn remove(&self, name: &str) -> Result<(), RuntimeError> {
        let Some(v) = self.instance(name).await? else {
            return Ok(());
        };
        if workspace_state(str_of(&v, "status")) == WorkspaceState::Running {
            match self
                .state_action(name, json!({"action": "stop", "force": true}))
                .await
            {
                Ok(()) => {}
                Err(
                    RuntimeError::Conflict { message, .. } | RuntimeError::Engine { message, .. },
                ) if message.contains("already stopped") || message.contains("not running") => {}
                Err(e) => return Err(e),
            }
        }
        match self
            .client
            .run(
                "DELETE",
                &Self::instance_path(name)?,
                &Value::Null,
                "instance",
                name,
            )
            .await
        {
            Ok(_) | Err(RuntimeError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn inspect(&self, name: &str) -> Result<Option<WorkspaceInfo>, RuntimeError> {
        if checked_name(name).is_err() {
            return Ok(None);
        }
        Ok(self.instance(name).await?.map(|v| workspace_info(&v, true)))
    }

    async fn list(&self, labels: &[(String, String)]) -> Result<Vec<WorkspaceInfo>, RuntimeError> {
        let list = self
            .client
            .get("/1.0/instances?recursion=1", "instance", "")
            .await?;
        Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| {
                v.get("config")
                    .and_then(Value::as_object)
                    .is_some_and(|c| spec::has_labels(c, labels))
            })
            .map(|v| workspace_info(v, false))
            .collect())
    }

    async fn update_limits(&self, name: &str, limits: &Limits) -> Result<(), RuntimeError> {
        let body = json!({"config": spec::limits_config(limits)});
        self.client
            .run(
                "PATCH",
                &Self::instance_path(name)?,
                &body,
                "instance",
                name,
            )
            .await
            .map(|_| ())
    }

    async fn stats(&self, name: &str) -> Result<WorkspaceStats, RuntimeError> {
        let path = format!("{}/state", Self::instance_path(name)?);
        let s = self.client.get(&path, "instance", name).await?;
        let n = |p: &str| s.pointer(p).and_then(Value::as_u64).unwrap_or(0);
        let (net_rx_bytes, net_tx_bytes) = s
            .get("network")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(iface, _)| iface.as_str() != "lo")
            .fold((0, 0), |(rx, tx), (_, v)| {
                let c = |k: &str| {
                    v.pointer(&format!("/counters/{k}"))
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                };
                (rx + c("bytes_received"), tx + c("bytes_sent"))
            });
        Ok(WorkspaceStats {
            cpu_total_ns: n("/cpu/usage"),
            memory_used: n("/memory/usage"),
            pids: n("/processes"),
            oom_kills: oom_kills(name).await,
            net_rx_bytes,
            net_tx_bytes,
        })
    }

    async fn exec(&self, name: &str, req: &ExecRequest) -> Result<ExecSession, RuntimeError> {
        checked_name(name)?;
        let (uid, gid, home) = self.resolve_user(name, &req.user).await?;
        let mut env = BTreeMap::from([("HOME".to_owned(), home)]);
        if !req.user.is_empty() && numeric_user(&req.user).is_none() {
            env.insert("USER".into(), req.user.clone());
            env.insert("LOGNAME".into(), req.user.clone());
        }
        for entry in &req.env {
            let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
            env.insert(k.to_owned(), v.to_owned());
        }
        let args = ExecArgs {
            cmd: req.cmd.clone(),
            env,
            cwd: req.working_dir.clone(),
            uid,
            gid,
            tty: req.tty.then_some((80, 24)),
        };
        let mut session = exec(&self.client, name, &args).await?;
        if !req.stdin {
            // No input: the command reads EOF, as with an engine that attaches none.
            let _ = session.input.shutdown().await;
        }
        Ok(session)
    }

    async fn output_log_bytes(&self, name: &str) -> Result<u64, RuntimeError> {
        if self.instance(name).await?.is_none() {
            return Err(RuntimeError::NotFound {
                what: "instance",
                name: name.to_owned(),
            });
        }
        // LXC keeps the console (the init's output) in `console.log`, bounded by
        // `lxc.console.size`.
        let path = std::path::PathBuf::from(format!("/var/log/incus/{name}/console.log"));
        Ok(tokio::task::spawn_blocking(move || crate::log_bytes(&path))
            .await
            .unwrap_or(0))
    }

    async fn connect(
        &self,
        name: &str,
        port: u16,
        loopback: Loopback,
    ) -> Result<Connection, RuntimeError> {
        let Some(v) = self.instance(name).await? else {
            return Err(RuntimeError::NotFound {
                what: "instance",
                name: name.to_owned(),
            });
        };
        let pid = v
            .pointer("/state/pid")
            .and_then(Value::as_i64)
            .filter(|_| workspace_state(str_of(&v, "status")) == WorkspaceState::Running)
            .and_then(|p| i32::try_from(p).ok())
            .unwrap_or(0);
        let instance = name.to_owned();
        crate::netns::open(
            name,
            pid,
            move |groups| in_instance(groups, &instance),
            port,
            loopback,
        )
        .await
    }

    async fn network_create(&self, spec: &NetworkSpec) -> Result<NetworkInfo, RuntimeError> {
        let body = spec::network_body(spec)?;
        let subnet = spec::subnet_of(&spec.subnet).ok_or_else(|| {
            RuntimeError::Unsupported(format!("{:?} is not an IPv4 subnet", spec.subnet))
        })?;
        // Incus takes overlapping subnets; hostel's networks must not overlap.
        for (bridge, config) in self.managed_networks().await? {
            let taken = config.get(KEY_NETWORK).and_then(Value::as_str) == Some(&spec.name)
                || bridge == spec.bridge;
            let overlaps = config
                .get("ipv4.address")
                .and_then(Value::as_str)
                .and_then(spec::subnet_of)
                .is_some_and(|s| s.contains(&subnet) || subnet.contains(&s));
            if taken || overlaps {
                return Err(RuntimeError::Conflict {
                    name: spec.name.clone(),
                    message: format!(
                        "{} (network {bridge})",
                        if taken {
                            "the name is taken"
                        } else {
                            "the subnet overlaps"
                        }
                    ),
                });
            }
        }
        self.bridge_request("POST", "/1.0/networks", &body, &spec.name)
            .await?;
        self.network_inspect(&spec.name)
            .await?
            .ok_or_else(|| RuntimeError::NotFound {
                what: "network",
                name: spec.name.clone(),
            })
    }

    async fn network_inspect(&self, name: &str) -> Result<Option<NetworkInfo>, RuntimeError> {
        Ok(self
            .find_network(name)
            .await?
            .map(|(bridge, config)| network_info(&bridge, &config)))
    }

    /// As on Docker, only a running workspace keeps its network: a stopped one is detached
    /// first (its next start, or its in-place reconfiguration, attaches it again).
    async fn network_remove(&self, name: &str) -> Result<(), RuntimeError> {
        let Some((bridge, _)) = self.find_network(name).await? else {
            return Ok(());
        };
        self.detach_stopped(&bridge).await?;
        match self
            .bridge_request(
                "DELETE",
                &format!("/1.0/networks/{bridge}"),
                &Value::Null,
                name,
            )
            .await
        {
            Ok(_) | Err(RuntimeError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn networks(
        &self,
        labels: &[(String, String)],
    ) -> Result<Vec<NetworkInfo>, RuntimeError> {
        Ok(self
            .managed_networks()
            .await?
            .into_iter()
            .filter(|(_, c)| spec::has_labels(c, labels))
            .map(|(bridge, c)| network_info(&bridge, &c))
            .collect())
    }

    async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        let Some(alias) = checked_alias(reference) else {
            return Ok(None);
        };
        let target = match self
            .client
            .get(&format!("/1.0/images/aliases/{alias}"), "image", reference)
            .await
        {
            Ok(v) => str_of(&v, "target").to_owned(),
            Err(RuntimeError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match self
            .client
            .get(&format!("/1.0/images/{target}"), "image", reference)
            .await
        {
            Ok(v) => Ok(Some(image_info(&v))),
            Err(RuntimeError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn images(&self, label: &str) -> Result<Vec<ImageInfo>, RuntimeError> {
        let list = self
            .client
            .get("/1.0/images?recursion=1", "image", label)
            .await?;
        Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .map(image_info)
            .filter(|i| i.labels.contains_key(label))
            .collect())
    }

    async fn pull(&self, reference: &str) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unsupported(format!(
            "Incus takes no image from a registry here ({reference}): hostel builds its images \
             from a debootstrapped root filesystem"
        )))
    }

    async fn import(&self, rootfs_tar: Vec<u8>, reference: &str) -> Result<(), RuntimeError> {
        let alias = checked_alias(reference).ok_or_else(|| {
            RuntimeError::Unsupported(format!("{reference:?} cannot name an Incus image"))
        })?;
        let metadata = metadata_tar(reference)?;
        let (boundary, body) = multipart(&[("metadata", &metadata), ("rootfs", &rootfs_tar)]);
        drop(rootfs_tar);
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let answer = self
            .client
            .upload_as("/1.0/images", body, &content_type, "image", reference)
            .await?;
        let done = match answer {
            Answer::Async(op) => self.client.wait(&op.id, "image", reference).await?,
            Answer::Sync(_) => {
                return Err(RuntimeError::Engine {
                    action: "import image".into(),
                    message: "the upload started no operation".into(),
                });
            }
        };
        let fingerprint = done
            .metadata
            .as_ref()
            .and_then(|m| m.get("fingerprint"))
            .and_then(Value::as_str)
            .ok_or_else(|| RuntimeError::Engine {
                action: "import image".into(),
                message: "the upload named no fingerprint".into(),
            })?
            .to_owned();
        self.set_alias(alias, &fingerprint).await
    }

    async fn build(
        &self,
        req: &BuildRequest,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), RuntimeError> {
        self.remove_orphan_builds().await;
        let Some((first, rest)) = req.tags.split_first() else {
            return Err(RuntimeError::Unsupported(
                "an image build needs a tag".into(),
            ));
        };
        // The first tag names the build (hostel's is its content's version): built before and
        // no rebuild asked, the other tags are only pointed at it, as a cached build does.
        if !req.no_cache
            && let Some(built) = self.image(first).await?
        {
            for tag in rest {
                let alias = checked_alias(tag).ok_or_else(|| {
                    RuntimeError::Unsupported(format!("{tag:?} cannot name an Incus image"))
                })?;
                self.set_alias(alias, &built.id).await?;
            }
            return Ok(());
        }
        let files = build::context_files(&req.context_tar)?;
        let dockerfile = files
            .get("Dockerfile")
            .map(|(_, body)| String::from_utf8_lossy(body).into_owned())
            .ok_or_else(|| {
                RuntimeError::Unsupported("the build context has no Dockerfile".into())
            })?;
        let plan = build::plan(&dockerfile, &req.build_args)?;
        let parent = self
            .image(&plan.from)
            .await?
            .ok_or_else(|| RuntimeError::NotFound {
                what: "image",
                name: plan.from.clone(),
            })?;
        let name = format!("{BUILD_PREFIX}{:012x}", rand_u64() & 0xffff_ffff_ffff);
        let network = match &req.network {
            Some(net) => Some(self.attachment(&name, net).await?),
            None => None,
        };
        let mut lines = vec![format!("lxc.init.cmd = {BUILD_INIT}")];
        if let Some((_, a)) = &network {
            lines.push(format!("lxc.net.0.ipv4.address = {}", a.host));
            lines.push(format!("lxc.net.0.ipv4.gateway = {}", a.gateway));
        }
        let mut devices = Map::new();
        devices.insert(
            "root".into(),
            json!({"type": "disk", "path": "/", "pool": self.pool}),
        );
        if let Some((bridge, _)) = &network {
            devices.insert(
                "eth0".into(),
                json!({"type": "nic", "network": bridge, "name": "eth0"}),
            );
        }
        let body = json!({
            "name": name,
            "type": "container",
            "profiles": [],
            "source": {"type": "image", "alias": plan.from},
            "config": {
                "security.idmap.isolated": "true",
                "raw.lxc": lines.join("\n") + "\n",
                "user.hostel.build": first,
                KEY_BUILDER: builder_id(std::process::id()).unwrap_or_default(),
            },
            "devices": devices,
        });
        self.client
            .run("POST", "/1.0/instances", &body, "instance", &name)
            .await?;
        let built = self
            .build_in(
                &name,
                &plan,
                &files,
                &parent,
                req,
                network.is_some(),
                progress,
            )
            .await;
        if let Err(e) = self.remove(&name).await {
            tracing::warn!(instance = %name, error = %e, "cannot remove a build instance");
        }
        let fingerprint = built?;
        for tag in std::iter::once(first).chain(rest) {
            let alias = checked_alias(tag).ok_or_else(|| {
                RuntimeError::Unsupported(format!("{tag:?} cannot name an Incus image"))
            })?;
            self.set_alias(alias, &fingerprint).await?;
        }
        Ok(())
    }

    async fn snapshot_system(&self, name: &str, snapshot: &str) -> Result<(), RuntimeError> {
        let path = format!("{}/snapshots", Self::instance_path(name)?);
        let body = json!({"name": checked_snapshot(snapshot)?, "stateful": false});
        self.client
            .run("POST", &path, &body, "instance", name)
            .await
            .map(|_| ())
    }

    async fn system_snapshots(&self, name: &str) -> Result<Vec<String>, RuntimeError> {
        let path = format!("{}/snapshots", Self::instance_path(name)?);
        match self.client.get(&path, "instance", name).await {
            Ok(list) => Ok(list
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter_map(|url| url.rsplit('/').next())
                .map(str::to_owned)
                .collect()),
            Err(RuntimeError::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Incus puts the snapshot's configuration back with its disk; the configuration and
    /// devices of now (limits, hostel's keys, the home, the root disk's size) are put back
    /// over it, so that a restore changes the system's files and nothing hostel decides.
    async fn restore_system(&self, name: &str, snapshot: &str) -> Result<(), RuntimeError> {
        let path = Self::instance_path(name)?;
        let now = self
            .instance(name)
            .await?
            .ok_or_else(|| RuntimeError::NotFound {
                what: "instance",
                name: name.to_owned(),
            })?;
        let body = json!({"restore": checked_snapshot(snapshot)?});
        self.client
            .run("PUT", &path, &body, "instance", name)
            .await?;
        // Incus's own `volatile.*` keys describe the disk restored (its id map); they stay.
        let config: Map<String, Value> = now
            .get("config")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(k, _)| !k.starts_with("volatile."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let back = json!({
            "config": config,
            "devices": now.get("devices").cloned().unwrap_or_else(|| json!({})),
        });
        self.client
            .run("PATCH", &path, &back, "instance", name)
            .await
            .map(|_| ())
    }

    async fn delete_system_snapshot(&self, name: &str, snapshot: &str) -> Result<(), RuntimeError> {
        let path = format!(
            "{}/snapshots/{}",
            Self::instance_path(name)?,
            checked_snapshot(snapshot)?
        );
        match self
            .client
            .run("DELETE", &path, &Value::Null, "snapshot", snapshot)
            .await
        {
            Ok(_) | Err(RuntimeError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Build instances are `hostel-build-<random>`.
const BUILD_PREFIX: &str = "hostel-build-";

/// The process building in a build instance (`PID:START`, its start time in clock ticks
/// since boot), so that one whose builder died can be told from one still in use.
const KEY_BUILDER: &str = "user.hostel.builder";

/// `PID:START` of a process, from `/proc/PID/stat`; `None` when it is gone.
fn builder_id(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields after its last `)`.
    let after = stat.get(stat.rfind(')')? + 1..)?;
    let start = after.split_whitespace().nth(19)?;
    Some(format!("{pid}:{start}"))
}

/// A snapshot name as hostel makes them (see `hostel_core::snapshot`), safe in a URL path.
fn checked_snapshot(snapshot: &str) -> Result<&str, RuntimeError> {
    snapshot
        .parse::<hostel_core::SnapshotName>()
        .map(|_| snapshot)
        .map_err(|e| RuntimeError::Unsupported(e.to_string()))
}

/// Whether the builder a build instance names is gone (a killed `image build`).
fn builder_gone(recorded: &str) -> bool {
    let Some(pid) = recorded.split(':').next().and_then(|p| p.parse().ok()) else {
        return true;
    };
    builder_id(pid).as_deref() != Some(recorded)
}

/// The init of a build instance: nothing but a process to keep it running.
const BUILD_INIT: &str = "/bin/sleep infinity";

/// The most of a failed step's output an error quotes, in lines.
const FAILED_TAIL: usize = 12;

impl IncusRuntime {
    /// The Incus bridge of hostel's network `net` and the address an instance gets on it.
    async fn attachment(
        &self,
        instance: &str,
        net: &str,
    ) -> Result<(String, Address), RuntimeError> {
        let (bridge, config) =
            self.find_network(net)
                .await?
                .ok_or_else(|| RuntimeError::NotFound {
                    what: "network",
                    name: net.to_owned(),
                })?;
        let address = config
            .get("ipv4.address")
            .and_then(Value::as_str)
            .and_then(Address::on)
            .ok_or_else(|| RuntimeError::Engine {
                action: format!("attach {instance} to {net}"),
                message: "the network has no IPv4 subnet with room for a host".into(),
            })?;
        Ok((bridge, address))
    }

    /// Runs a plan's steps in the build instance `name`, stops it and publishes it; returns
    /// the new image's fingerprint.
    #[allow(clippy::too_many_arguments)]
    async fn build_in(
        &self,
        name: &str,
        plan: &build::Plan,
        files: &BTreeMap<String, (u32, Vec<u8>)>,
        parent: &ImageInfo,
        req: &BuildRequest,
        online: bool,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<String, RuntimeError> {
        self.start(name).await?;
        if online {
            // The build's downloads resolve names as the host does (no DNS on hostel's
            // bridges); a loopback resolver of the host is out of reach from inside.
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            let servers: String = host
                .lines()
                .filter(|l| {
                    l.starts_with("nameserver") && !l.contains(" 127.") && !l.contains(" ::1")
                })
                .map(|l| format!("{l}\n"))
                .collect();
            self.push(name, "/etc/resolv.conf", 0o644, servers.into_bytes())
                .await?;
        }
        let mut env: BTreeMap<String, String> = parent
            .labels
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(build::PROP_ENV)?.to_owned(), v.clone())))
            .collect();
        env.extend(plan.args.clone());
        env.extend(plan.env.clone());
        env.entry("PATH".into()).or_insert_with(|| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        });
        let total = plan.steps.len();
        for (i, step) in plan.steps.iter().enumerate() {
            match step {
                build::Step::Run(cmd) => {
                    progress(format!("Step {}/{total} : RUN {}", i + 1, first_line(cmd)));
                    self.run_step(name, cmd, &env, i + 1, progress).await?;
                }
                build::Step::Copy { source, target } => {
                    progress(format!("Step {}/{total} : COPY {source} {target}", i + 1));
                    let (mode, body) = files.get(source.as_str()).ok_or_else(|| {
                        RuntimeError::Unsupported(format!(
                            "COPY {source}: not in the build context"
                        ))
                    })?;
                    let target = if target.ends_with('/') {
                        format!("{target}{}", source.rsplit('/').next().unwrap_or(source))
                    } else {
                        target.clone()
                    };
                    if let Some((dir, _)) = target.rsplit_once('/').filter(|(d, _)| !d.is_empty()) {
                        let mkdir = format!("mkdir -p '{}'", dir.replace('\'', ""));
                        self.run_step(name, &mkdir, &env, i + 1, progress).await?;
                    }
                    self.push(name, &target, *mode, body.clone()).await?;
                }
            }
        }
        self.stop(name, 0).await?;
        let tag = req.tags.first().map(String::as_str).unwrap_or_default();
        let props = build::properties(&parent.labels, plan, &req.labels, tag);
        let done = self
            .client
            .run(
                "POST",
                "/1.0/images",
                &json!({"source": {"type": "instance", "name": name}, "properties": props}),
                "image",
                tag,
            )
            .await?;
        done.get("fingerprint")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| RuntimeError::Engine {
                action: "publish image".into(),
                message: "the publish named no fingerprint".into(),
            })
    }

    /// Runs one shell command as root in a build instance; its output goes to `progress`.
    async fn run_step(
        &self,
        name: &str,
        cmd: &str,
        env: &BTreeMap<String, String>,
        step: usize,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), RuntimeError> {
        use futures_util::StreamExt;
        let args = ExecArgs {
            cmd: vec!["/bin/sh".into(), "-c".into(), cmd.to_owned()],
            env: env.clone(),
            cwd: Some("/".into()),
            uid: 0,
            gid: 0,
            tty: None,
        };
        let mut session = exec(&self.client, name, &args).await?;
        let _ = session.input.shutdown().await;
        let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let mut partial = Vec::new();
        while let Some(chunk) = session.output.next().await {
            let bytes = match chunk? {
                ExecOutput::Stdout(b) | ExecOutput::Stderr(b) => b,
            };
            partial.extend_from_slice(&bytes);
            while let Some(nl) = partial.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = partial.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line).trim_end().to_owned();
                if tail.len() == FAILED_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line.clone());
                progress(line);
            }
        }
        if !partial.is_empty() {
            let line = String::from_utf8_lossy(&partial).trim_end().to_owned();
            tail.push_back(line.clone());
            progress(line);
        }
        match session.control.wait().await? {
            0 => Ok(()),
            code => Err(RuntimeError::Engine {
                action: "build image".into(),
                message: format!(
                    "step {step} exited with {code}: {}",
                    tail.into_iter().collect::<Vec<_>>().join(" / ")
                ),
            }),
        }
    }

    /// Writes a file into an instance, root's, with this mode.
    async fn push(
        &self,
        name: &str,
        path: &str,
        mode: u32,
        body: Vec<u8>,
    ) -> Result<(), RuntimeError> {
        let mode = format!("{mode:04o}");
        self.client
            .upload(
                &format!("/1.0/instances/{name}/files?path={path}"),
                body,
                &[
                    ("x-incus-uid", "0"),
                    ("x-incus-gid", "0"),
                    ("x-incus-mode", &mode),
                    ("x-incus-type", "file"),
                    ("x-incus-write", "overwrite"),
                ],
                "instance",
                name,
            )
            .await
            .map(|_| ())
    }

    /// What an image's volume on the pool refers to, in bytes (its unpacked size): its btrfs
    /// quota group's `referenced`, which is what an instance made from it starts with.
    async fn image_volume_bytes(&self, fingerprint: &str) -> Result<u64, RuntimeError> {
        let path = format!(
            "/var/lib/incus/storage-pools/{}/images/{fingerprint}",
            self.pool
        );
        let host = |message: String| RuntimeError::Host {
            action: format!("read the size of image {fingerprint}"),
            message,
        };
        let out = tokio::process::Command::new("btrfs")
            .args(["qgroup", "show", "-rf", "--raw", &path])
            .output()
            .await
            .map_err(|e| host(format!("cannot run btrfs: {e}")))?;
        if !out.status.success() {
            return Err(host(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
        }
        referenced_of(&String::from_utf8_lossy(&out.stdout))
            .ok_or_else(|| host("btrfs named no quota group for it".into()))
    }

    /// Removes the build instances whose builder died (an `image build` killed mid-way
    /// leaves its instance running); those of builds under way stay.
    async fn remove_orphan_builds(&self) {
        let Ok(list) = self
            .client
            .get("/1.0/instances?recursion=1", "instance", "")
            .await
        else {
            return;
        };
        for v in list.as_array().into_iter().flatten() {
            let name = str_of(v, "name");
            let builder = v
                .get("config")
                .and_then(|c| c.get(KEY_BUILDER))
                .and_then(Value::as_str);
            if let (true, Some(builder)) = (name.starts_with(BUILD_PREFIX), builder)
                && builder_gone(builder)
            {
                tracing::info!(instance = %name, "removing the build instance of a dead build");
                if let Err(e) = self.remove(name).await {
                    tracing::warn!(instance = %name, error = %e, "cannot remove a build instance");
                }
            }
        }
    }

    /// Points `alias` at an image, making the alias or moving it.
    async fn set_alias(&self, alias: &str, fingerprint: &str) -> Result<(), RuntimeError> {
        let made = self
            .client
            .run(
                "POST",
                "/1.0/images/aliases",
                &json!({"name": alias, "target": fingerprint}),
                "image",
                alias,
            )
            .await;
        match made {
            Ok(_) => Ok(()),
            Err(RuntimeError::Conflict { .. }) => self
                .client
                .run(
                    "PATCH",
                    &format!("/1.0/images/aliases/{alias}"),
                    &json!({"target": fingerprint}),
                    "image",
                    alias,
                )
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        }
    }

    /// Removes an image and its aliases; a missing one is not an error.
    pub async fn image_remove(&self, reference: &str) -> Result<(), RuntimeError> {
        let Some(info) = self.image(reference).await? else {
            return Ok(());
        };
        match self
            .client
            .run(
                "DELETE",
                &format!("/1.0/images/{}", info.id),
                &Value::Null,
                "image",
                reference,
            )
            .await
        {
            Ok(_) | Err(RuntimeError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The client, for what the trait does not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_in_an_instance_by_its_cgroup_path() {
        assert!(in_instance("0::/lxc.payload.hostel-a\n", "hostel-a"));
        assert!(in_instance(
            "4:memory:/lxc.payload.hostel-a/init.scope\n",
            "hostel-a"
        ));
        for groups in [
            "0::/\n",
            "0::/lxc.payload.hostel-ab\n",
            "0::/lxc.monitor.hostel-a\n",
            "",
        ] {
            assert!(!in_instance(groups, "hostel-a"), "{groups:?}");
        }
        assert!(!in_instance("0::/lxc.payload.\n", ""));
    }

    #[test]
    fn an_image_volume_size_is_its_referenced_bytes() {
        let text = "Qgroupid    Referenced    Exclusive  Max referenced   Path \n\
                    --------    ----------    ---------  --------------   ---- \n\
                    0/317        649502720        16384            none   images/3529\n";
        assert_eq!(referenced_of(text), Some(649_502_720));
        assert_eq!(referenced_of("Qgroupid Referenced\n"), None);
    }

    #[test]
    fn a_build_instance_names_its_builder() {
        let me = builder_id(std::process::id()).unwrap();
        assert!(me.starts_with(&format!("{}:", std::process::id())), "{me}");
        assert!(!builder_gone(&me));
        let (pid, start) = me.split_once(':').unwrap();
        assert!(
            builder_gone(&format!("{pid}:{start}0")),
            "a pid reused since"
        );
        assert!(builder_gone("4194304000:1"), "no such process");
        assert!(builder_gone("garbage"));
    }

    #[test]
    fn users_resolve_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:hostel tenant:/home/alice:/bin/bash\n";
        assert_eq!(
            passwd_entry(passwd, "alice"),
            Some((1000, 1000, "/home/alice".into()))
        );
        assert_eq!(passwd_entry(passwd, "bob"), None);
        assert_eq!(passwd_entry(passwd, "ali"), None);
        assert_eq!(numeric_user("1000"), Some((1000, 1000)));
        assert_eq!(numeric_user("1000:50"), Some((1000, 50)));
        assert_eq!(numeric_user("alice"), None);
    }

    #[test]
    fn names_and_aliases_are_checked_before_a_url() {
        assert!(checked_name("hostel-alice").is_ok());
        for bad in ["", "a/b", "a?b", "-a", "a b", "../x"] {
            assert!(checked_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            checked_alias("hostel-workspace:latest"),
            Some("hostel-workspace:latest")
        );
        for bad in ["", "a/b", "a?b", "a%2f", "a b", "a#b"] {
            assert_eq!(checked_alias(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn incus_words_map_to_states() {
        use WorkspaceState::{Running, Stopped};
        for (word, state) in [
            ("Running", Running),
            ("Frozen", Running),
            ("Stopping", Running),
            ("Stopped", Stopped),
            ("Error", Stopped),
            ("", Stopped),
        ] {
            assert_eq!(workspace_state(word), state, "{word}");
        }
    }

    #[test]
    fn multipart_parts_are_framed() {
        let (b, body) = multipart(&[("metadata", b"M"), ("rootfs", b"R")]);
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(&format!("--{b}\r\n")));
        assert!(text.contains("name=\"metadata\""));
        assert!(text.contains("\r\n\r\nR\r\n"));
        assert!(text.ends_with(&format!("--{b}--\r\n")));
    }
}
