//! The domain types that cross the [`Runtime`](crate::Runtime) trait.

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use hostel_core::{Limits, Signal, WorkspaceState};
use serde::Serialize;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// Label on everything hostel makes.
pub const LABEL_MANAGED: &str = "io.hostel.managed";
/// Label naming the tenant a container belongs to.
pub const LABEL_TENANT: &str = "io.hostel.tenant";
/// Label naming the hostel instance (one per root) that made a container.
pub const LABEL_INSTANCE: &str = "io.hostel.instance";
/// Label with the hash of the settings a container was made with, to spot stale ones.
pub const LABEL_SPEC: &str = "io.hostel.spec";
/// Label marking resources made by a test run, so a sweep can remove them.
pub const LABEL_TEST_RUN: &str = "io.hostel.test-run";
/// Label with a workspace image's version.
pub const LABEL_IMAGE_VERSION: &str = "io.hostel.image.version";

/// What the engine says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineInfo {
    /// Engine version.
    pub version: String,
    /// API version in use.
    pub api_version: String,
    /// CPUs the engine sees.
    pub cpus: u32,
    /// Memory the engine sees, in bytes.
    pub memory: u64,
    /// GPUs the engine can give a workspace.
    pub gpus: u32,
    /// How ids inside a workspace relate to the host's.
    pub ids: IdMapping,
    /// Whether and how a workspace's writable layer (its files outside the home) can be given
    /// a size limit: the engine's storage keeps a quota per container (Docker's btrfs driver).
    /// `None`: no limit can be set.
    pub layer_quota: Option<LayerQuota>,
    /// Whether image builds need a network of hostel's (with egress) to download through
    /// ([`BuildRequest::network`]); Docker builds on a bridge of its own.
    pub build_network: bool,
    /// Whether a workspace boots an init of its own, as a machine does (Incus's system
    /// containers: systemd), rather than hostel's init as its only process.
    pub system_init: bool,
    /// Whether the engine snapshots a workspace's system (its root disk, packages and services
    /// included) besides the home ([`Runtime::snapshot_system`](crate::Runtime)).
    pub system_snapshots: bool,
    /// Whether a workspace may run containers of its own ([`Privileges::Nesting`]).
    pub nesting: bool,
}

/// How many ids a user-namespaced workspace maps (the engines' default range): ids inside
/// are below it.
pub const MAPPED_IDS: u32 = 65536;

/// The id the kernel shows inside a user namespace for an owner it does not map.
pub const OVERFLOW_ID: u32 = 65534;

/// How user and group ids inside a workspace relate to the host's, and so who owns a home's
/// files on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum IdMapping {
    /// No user namespace: ids inside are the host's, and root inside is root on the host.
    Host,
    /// One range for every workspace (Docker's `userns-remap`): id N inside is `base + N` on
    /// the host, and root inside is an unprivileged host user.
    Shared {
        /// The host id of root inside.
        base: u32,
    },
    /// A range of its own for each workspace (Incus's `security.idmap.isolated`), and homes
    /// mounted id-shifted: files in a home carry on the host the ids they have inside.
    Isolated,
}

impl IdMapping {
    /// The host uid that owns files a workspace's uid `inside` makes in its home.
    pub fn home_uid(self, inside: u32) -> u32 {
        match self {
            IdMapping::Host | IdMapping::Isolated => inside,
            IdMapping::Shared { base } => base.saturating_add(inside),
        }
    }

    /// The id inside a workspace of the owner of a home's file, host id `host` (the inverse
    /// of [`IdMapping::home_uid`]); an id outside the workspace's range is the overflow id
    /// (`nobody`, 65534), as the kernel shows it inside.
    pub fn inside_id(self, host: u32) -> u32 {
        let inside = match self {
            IdMapping::Host | IdMapping::Isolated => Some(host),
            IdMapping::Shared { base } => host.checked_sub(base),
        };
        inside.filter(|id| *id < MAPPED_IDS).unwrap_or(OVERFLOW_ID)
    }

    /// Whether root inside a workspace is an unprivileged user on the host.
    pub fn confines_root(self) -> bool {
        self != IdMapping::Host
    }
}

impl std::fmt::Display for IdMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdMapping::Host => f.write_str("no user namespaces (root inside is root)"),
            IdMapping::Shared { base } => {
                write!(f, "user namespaces (root inside is uid {base})")
            }
            IdMapping::Isolated => f.write_str("user namespaces, a range of ids per workspace"),
        }
    }
}

/// What a writable-layer limit counts, which decides the limit to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerQuota {
    /// Everything the workspace's root filesystem refers to, the image included (btrfs full
    /// quota groups).
    WholeRoot,
    /// Only what the workspace writes itself (btrfs simple quotas).
    OwnWrites,
}

/// A bind mount of a host path into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// Path on the host.
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// Read-only inside, for root inside too (a shared dataset); otherwise writable and, where
    /// ids map per workspace, id-shifted (a home).
    pub read_only: bool,
}

/// Everything needed to create a workspace container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkspaceSpec {
    /// Container name, `hostel-<tenant>`.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Hostname inside.
    pub hostname: String,
    /// Environment (`KEY=value`) for the init.
    pub env: Vec<String>,
    /// Labels on the container.
    pub labels: BTreeMap<String, String>,
    /// Limits.
    pub limits: Limits,
    /// Bind mounts (the home, nothing else).
    pub mounts: Vec<Mount>,
    /// What root inside may do.
    pub privileges: Privileges,
    /// The network to attach to (the tenant's own); `None`: the engine's default.
    pub network: Option<String>,
    /// The most of the workspace's own output (its init's stdout and stderr, which root
    /// inside can write to) the engine keeps on the host, in bytes; older output is dropped.
    pub output_log_max: u64,
    /// Paths that show nothing inside, on top of what the engine hides by default (host
    /// details such as `/proc/kcore`).
    pub hidden_paths: Vec<String>,
    /// The most the writable layer (files outside the home: `/tmp`, what `apt` installs) may
    /// hold, in bytes, as the engine's [`EngineInfo::layer_quota`] counts it. `None`: no
    /// limit.
    pub layer_max: Option<u64>,
    /// The system calls the workspace may make.
    pub syscalls: SyscallFilter,
    /// The GPUs it gets.
    pub gpus: hostel_core::Gpus,
    /// How fast it may read and write, each way, on every device under its disks (the home,
    /// its root filesystem, shared folders).
    pub disk_io: hostel_core::DiskIo,
}

/// What root inside a workspace may do; each engine maps it to its own knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Privileges {
    /// Only what the init needs to add the tenant's user and seed the home (own and change
    /// files, switch users, signal); nothing gains privileges after it, so the tenant never
    /// becomes root. For engines where root inside is root on the host ([`IdMapping::Host`]).
    InitOnly,
    /// The tenant may become root inside (sudo), and root may also keep setgid bits (dpkg),
    /// serve on low ports and write audit records: all over its own namespaces only. For
    /// engines where root inside is an unprivileged host user.
    Sudo,
    /// [`Privileges::Sudo`], and root may also run containers of its own (a container engine
    /// inside): it keeps raw sockets over its own network namespace, as the containers such an
    /// engine makes expect, and may mount what they need. For engines where each workspace has
    /// an id range of its own ([`EngineInfo::nesting`]).
    Nesting,
}

impl Privileges {
    /// Its name, for hashes and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Privileges::InitOnly => "init_only",
            Privileges::Sudo => "sudo",
            Privileges::Nesting => "nesting",
        }
    }
}

/// Which system calls a workspace may make, on top of what its capabilities allow: every call
/// hostel knows except these. A call newer than hostel is refused; engines that can say so
/// answer it "not implemented", so that programs fall back as on an older kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyscallFilter {
    /// Calls refused by name ("operation not permitted").
    pub denied: Vec<String>,
    /// `ioctl` requests refused, compared on the 32 bits the kernel reads.
    pub denied_ioctls: Vec<u32>,
    /// Whether `clone` may make new namespaces (`unshare` and `setns` are in `denied` when
    /// not). `clone3` passes its flags in memory a filter cannot read, so without this it is
    /// answered "not implemented" and the C library falls back to `clone`.
    pub new_namespaces: bool,
    /// The only `personality` values allowed; empty: any.
    pub personalities: Vec<u32>,
    /// Calls answered "not implemented", as on a kernel built without them: programs that
    /// can do without them (a container runtime without kernel keyrings) carry on.
    pub unimplemented: Vec<String>,
}

/// A network to make: one per tenant, a bridge of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Engine name, `hostel-<tenant>`.
    pub name: String,
    /// The host's bridge interface name (at most 15 characters).
    pub bridge: String,
    /// IPv4 subnet in CIDR form.
    pub subnet: String,
    /// No route out: only the network itself (and nothing on it but the workspace).
    pub internal: bool,
    /// Labels on the network.
    pub labels: BTreeMap<String, String>,
}

/// A network as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkInfo {
    /// Engine name.
    pub name: String,
    /// Engine id.
    pub id: String,
    /// The bridge interface, when the engine names it.
    pub bridge: Option<String>,
    /// IPv4 subnets.
    pub subnets: Vec<String>,
    /// Whether it has no route out.
    pub internal: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// A container as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkspaceInfo {
    /// Engine id.
    pub id: String,
    /// Name without a leading slash.
    pub name: String,
    /// Image reference it was created from.
    pub image: String,
    /// Whether it runs, in hostel's words (never `Deleted`: a container that is not there is
    /// not reported at all).
    pub state: WorkspaceState,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// When it last started (RFC 3339), if ever.
    pub started_at: Option<String>,
    /// Whether the engine saw the kernel OOM-kill in it.
    pub oom_killed: bool,
    /// Limits it has now.
    pub limits: Option<Limits>,
    /// Its IPv4 address on each network it is attached to (network name -> address), while it
    /// runs; empty in lists.
    pub addresses: BTreeMap<String, String>,
}

/// Live usage of a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct WorkspaceStats {
    /// CPU time used since start, in nanoseconds.
    pub cpu_total_ns: u64,
    /// Memory in use, in bytes.
    pub memory_used: u64,
    /// Processes and threads.
    pub pids: u64,
    /// Times the kernel's OOM killer killed a process in the workspace.
    pub oom_kills: u64,
    /// Network bytes received since start, over all its interfaces.
    pub net_rx_bytes: u64,
    /// Network bytes sent since start.
    pub net_tx_bytes: u64,
}

/// A command to run in a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ExecRequest {
    /// argv.
    pub cmd: Vec<String>,
    /// User (`alice`, `root`).
    pub user: String,
    /// Environment additions.
    pub env: Vec<String>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// Whether to attach stdin.
    pub stdin: bool,
    /// Whether to give it a pseudo-terminal.
    pub tty: bool,
}

/// A chunk of a command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutput {
    /// Bytes on stdout (or the terminal, with a tty).
    Stdout(Vec<u8>),
    /// Bytes on stderr.
    Stderr(Vec<u8>),
}

/// A started command: its streams, and the handle to the command itself.
pub struct ExecSession {
    /// Output as it comes; ends when the command closes its output.
    pub output: BoxStream<'static, Result<ExecOutput, crate::RuntimeError>>,
    /// The command's stdin; drop or shut down for EOF.
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
    /// Waits for, signals and resizes this command, and nothing else; share it as it is.
    pub control: Arc<dyn ExecControl>,
}

impl std::fmt::Debug for ExecSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecSession")
            .field("control", &self.control)
            .finish_non_exhaustive()
    }
}

/// The one command an [`ExecSession`] started, as its engine lets hostel reach it. A handle
/// reaches only its own command, inside its own workspace: there is no id to guess or reuse.
#[async_trait]
pub trait ExecControl: Send + Sync + std::fmt::Debug {
    /// Waits for the command to end; returns its exit code (128 + the signal's number for a
    /// command a signal ended).
    async fn wait(&self) -> Result<i64, crate::RuntimeError>;
    /// Sends the command's process a signal, inside its workspace. A command already ended is
    /// not an error.
    async fn signal(&self, signal: Signal) -> Result<(), crate::RuntimeError>;
    /// Resizes the command's terminal (commands started with `tty`).
    async fn resize(&self, cols: u16, rows: u16) -> Result<(), crate::RuntimeError>;
}

/// Which loopback address of a workspace a connection goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loopback {
    /// 127.0.0.1.
    V4,
    /// ::1.
    V6,
}

/// A byte stream both ways; shutting down its write side sends EOF (a half-close).
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin + std::fmt::Debug {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + std::fmt::Debug> Duplex for T {}

/// A TCP connection to a port inside a workspace.
pub type Connection = Box<dyn Duplex>;

/// An image as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    /// Engine id (`sha256:...`).
    pub id: String,
    /// Tags (`repo:tag`).
    pub tags: Vec<String>,
    /// Size in bytes.
    pub size: u64,
    /// When it was made (RFC 3339 or engine seconds).
    pub created: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// An image build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRequest {
    /// Build context as an uncompressed tar.
    pub context_tar: Vec<u8>,
    /// Tags to give the result.
    pub tags: Vec<String>,
    /// `ARG` values.
    pub build_args: BTreeMap<String, String>,
    /// Labels on the result.
    pub labels: BTreeMap<String, String>,
    /// Ignore the engine's layer cache.
    pub no_cache: bool,
    /// The network (hostel's, with egress) the build's commands reach the internet through;
    /// `None`: the engine's own (Docker builds on its default bridge).
    pub network: Option<String>,
}
