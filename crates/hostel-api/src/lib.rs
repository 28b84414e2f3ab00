//! The HTTP API's wire model: every body the daemon answers with or takes, shared by the server
//! (`hostel-web`) and the client (the CLI, local or remote). The CLI's `--json` output is these
//! same bodies, so a command prints the same thing whether it ran here or through a daemon.
//!
//! Requests convert into the service's checked types here ([`NewTenant::into_request`],
//! [`TenantChange::into_parts`]), so the CLI and the API validate input in one place.

mod convert;

pub use convert::Parts;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code: invalid_input, not_found, conflict, engine_unreachable, unavailable,
    /// permission_denied, unauthenticated, internal.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// What to do about it, when there is something.
    pub hint: Option<String>,
    /// The underlying causes, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<String>,
    /// On a server-side failure (5xx): the request's id, which the daemon's log lines about it
    /// carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A tenant as lists show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    /// Name.
    pub name: String,
    /// `ready`, or `creating`/`purging` while a command works on it.
    pub status: String,
    /// `running`, `stopped` or `deleted` (no container; the home is kept).
    pub state: String,
    /// Image reference.
    pub image: String,
    /// CPUs, e.g. "1.5".
    pub cpus: String,
    /// Memory limit, e.g. "512MiB".
    pub memory: String,
    /// Home size, e.g. "5GiB".
    pub disk: String,
    /// Most processes.
    pub pids: u32,
    /// GPUs: "none", "all" or a count.
    #[serde(default = "none")]
    pub gpus: String,
    /// Disk reads and writes a second, each way: "none", e.g. "50MiB/s", or e.g. "500iops".
    #[serde(default = "none")]
    pub disk_io: String,
}

fn none() -> String {
    "none".into()
}

/// A tenant with its workspace, live usage and policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TenantDetail {
    /// Name, states, image and quotas.
    #[serde(flatten)]
    pub tenant: Tenant,
    /// The state the admin last asked for.
    pub desired: String,
    /// The workspace container's engine name.
    pub container: String,
    /// The home on the host.
    pub home: String,
    /// Whether the running workspace predates the tenant's current image or settings.
    pub stale: bool,
    /// Seconds since the workspace started, when running.
    pub uptime_secs: Option<i64>,
    /// CPU seconds used since start, when running.
    pub cpu_seconds: Option<f64>,
    /// Memory in use, in bytes, when running.
    pub memory_used_bytes: Option<u64>,
    /// Processes and threads, when running.
    pub pids_used: Option<u64>,
    /// Processes the OOM killer ended since start, when running.
    pub oom_kills: Option<u64>,
    /// Disk used in the home, in bytes.
    pub disk_used_bytes: Option<u64>,
    /// Number of SSH keys.
    pub keys: usize,
    /// When the tenant was created (RFC 3339).
    pub created_at: String,
    /// When the tenant's time is up, if it has a TTL.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether its home goes at expiry.
    pub ephemeral: bool,
    /// Whether the daemon starts its workspace when it starts.
    pub autostart: bool,
    /// Seconds idle before the workspace stops (0: never).
    pub idle_stop_secs: u64,
    /// Whether `idle_stop_secs` is hostel.toml's default rather than the tenant's own.
    pub idle_stop_default: bool,
    /// Where the workspace may connect: `all` (the internet, never the host) or `none`.
    pub egress: String,
}

/// What `POST /api/tenants` takes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Tenant name (1-32 of a-z, 0-9, '-').
    pub name: String,
    /// OpenSSH public keys, one per entry (at least one).
    pub keys: Vec<String>,
    /// CPUs, e.g. "0.5" (default from hostel.toml).
    pub cpus: Option<String>,
    /// Memory, e.g. "512M".
    pub memory: Option<String>,
    /// Home size, e.g. "1G".
    pub disk: Option<String>,
    /// Most processes.
    pub pids: Option<u32>,
    /// GPUs: "all", "none" (the default) or a count; the first N, shared, as `docker run --gpus`.
    #[serde(default)]
    pub gpus: Option<String>,
    /// Disk reads and writes a second, each way: "none", a size such as "50MiB", or
    /// operations such as "500iops" (default from hostel.toml).
    #[serde(default)]
    pub disk_io: Option<String>,
    /// Image reference (default: the newest build).
    pub image: Option<String>,
    /// Time to live, e.g. "1h": at expiry the workspace is removed (the home too if ephemeral).
    pub ttl: Option<String>,
    /// Purge the tenant, home included, when its TTL is up.
    #[serde(default)]
    pub ephemeral: bool,
    /// Start the workspace when the daemon starts.
    #[serde(default)]
    pub autostart: bool,
    /// Stop the workspace after this long idle, e.g. "10m" ("0": never; default from hostel.toml).
    pub idle_stop: Option<String>,
    /// Where the workspace may connect: "all" (the internet, never the host or other
    /// tenants) or "none" (default from hostel.toml).
    pub egress: Option<String>,
}

/// What `PATCH /api/tenants/{name}` takes: each field given is changed, the others kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantChange {
    /// CPUs, e.g. "2" (live).
    pub cpus: Option<String>,
    /// Memory, e.g. "1G" (live).
    pub memory: Option<String>,
    /// Home size, e.g. "10G" (live; never below what is used).
    pub disk: Option<String>,
    /// Most processes (live).
    pub pids: Option<u32>,
    /// GPUs: "all", "none" or a count (at the next start).
    #[serde(default)]
    pub gpus: Option<String>,
    /// Disk reads and writes a second: "none", e.g. "50MiB" or "500iops" (at the next start).
    #[serde(default)]
    pub disk_io: Option<String>,
    /// Image reference (at the next start).
    pub image: Option<String>,
    /// "all" or "none" (at the next start).
    pub egress: Option<String>,
    /// A new time to live counted from now, e.g. "2h", or "none" to remove it.
    pub ttl: Option<String>,
    /// Purge at expiry (needs a TTL).
    pub ephemeral: Option<bool>,
    /// Start with the daemon.
    pub autostart: Option<bool>,
    /// Idle stop, e.g. "10m", "0" (never) or "default".
    pub idle_stop: Option<String>,
}

/// How one change took effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Change {
    /// `cpus`, `memory`, `disk`, `pids`, `gpus`, `disk_io`, `image`, `expires`, `ephemeral`,
    /// `autostart`, `idle_stop`.
    pub field: String,
    /// Old value.
    pub from: String,
    /// New value.
    pub to: String,
    /// When it applies: `live`, `now`, `next start`...
    pub applied: String,
}

/// A workspace's state before and after `start`, `stop` or `delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Transition {
    /// Tenant name.
    pub name: String,
    /// `running`, `stopped` or `deleted`, before.
    pub previous_state: String,
    /// `running`, `stopped` or `deleted`, after.
    pub state: String,
}

/// A command to run as the tenant.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecBody {
    /// argv, e.g. ["sh", "-c", "ls"].
    pub command: Vec<String>,
    /// Text for the command's stdin (closed after it).
    pub stdin: Option<String>,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory (default: the home).
    pub cwd: Option<String>,
    /// Kill the command after this many seconds (default 60, at most 3600).
    pub timeout_secs: Option<u64>,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExecResult {
    /// Exit code (137 when killed, e.g. on timeout).
    pub exit_code: i64,
    /// stdout, as UTF-8 (invalid bytes replaced).
    pub stdout: String,
    /// stderr, as UTF-8 (invalid bytes replaced).
    pub stderr: String,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// Whether output beyond 16 MiB per stream was dropped.
    pub truncated: bool,
}

/// What `PUT /api/tenants/{name}/password` takes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// The tenant's web password (12 to 1024 characters); stored only as an argon2id hash.
    #[schema(value_type = String)]
    pub password: hostel_core::Secret<String>,
}

/// What `POST /api/tenants/{name}/login-links` takes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLoginLink {
    /// How long the link works, e.g. "15m" (default 15m, at most 7d).
    pub ttl: Option<String>,
}

/// A one-time sign-in link: shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LoginLink {
    /// The path to open on the daemon's HTTP address: `/login/link/<token>`.
    pub path: String,
    /// Until when it works.
    pub expires_at: DateTime<Utc>,
}

/// An SSH key of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Key {
    /// `SHA256:...`
    pub fingerprint: String,
    /// e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// The key's comment.
    pub comment: String,
    /// When it was added.
    pub added_at: DateTime<Utc>,
}

/// A port a tenant publishes at `PORT--TENANT.<[http] domain>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublishedPort {
    /// The port inside the workspace.
    pub port: u16,
    /// Open to anyone; otherwise only to the tenant's own browser session.
    pub public: bool,
    /// Since when.
    pub created_at: DateTime<Utc>,
}

/// What `POST /api/tenants/{name}/ports` takes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPublishedPort {
    /// The port inside the workspace, 1 to 65535.
    pub port: u16,
    /// Open to anyone (default: only to the tenant's own browser session).
    #[serde(default)]
    pub public: bool,
}

/// A shared dataset: a host folder mounted read-only at `/shared/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Share {
    /// Its name.
    pub name: String,
    /// The host folder, as resolved when it was added.
    pub path: String,
    /// The tenants that see it; `null`: every tenant.
    pub tenants: Option<Vec<String>>,
    /// Since when.
    pub created_at: DateTime<Utc>,
}

/// What `POST /api/shares` takes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShare {
    /// Its name (1 to 32 of a-z, 0-9, '-'): it appears at `/shared/<name>`.
    pub name: String,
    /// An absolute path to a folder on the host.
    pub path: String,
    /// The tenants that see it; absent: every tenant.
    #[serde(default)]
    pub tenants: Option<Vec<String>>,
}

/// A snapshot of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Snapshot {
    /// Its name.
    pub name: String,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// Bytes of the home only it holds (what deleting it frees), where the storage says.
    pub exclusive_bytes: Option<u64>,
    /// Whether it holds the workspace's system (root disk) too, not only the home.
    pub system: bool,
    /// Whether the schedule took it (and removes it past the schedule's `keep`).
    pub scheduled: bool,
}

/// A tenant's snapshot schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SnapshotSchedule {
    /// `hourly`, `daily` or `weekly`.
    pub every: String,
    /// How many scheduled snapshots stay.
    pub keep: u32,
}

/// A tenant's snapshots, oldest first, and its schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SnapshotList {
    /// The schedule, if any.
    pub schedule: Option<SnapshotSchedule>,
    /// The snapshots.
    pub snapshots: Vec<Snapshot>,
}

/// What `POST /api/tenants/{name}/snapshots` takes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSnapshot {
    /// Its name (1 to 40 of a-z, 0-9, '-'; not starting with `auto-`); default: the time now.
    #[serde(default)]
    pub name: Option<String>,
}

/// What `PUT /api/tenants/{name}/snapshot-schedule` takes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleChange {
    /// `hourly`, `daily`, `weekly`, or `off` to stop the schedule.
    pub every: String,
    /// How many scheduled snapshots stay (1 to `[storage] snapshots_max`; default 7).
    #[serde(default)]
    pub keep: Option<u32>,
}

/// Keys to add.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeys {
    /// OpenSSH public keys, one per entry.
    pub keys: Vec<String>,
}

/// A workspace image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Image {
    /// `repository:version`
    pub reference: String,
    /// Version label.
    pub version: String,
    /// Engine id.
    pub id: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether new tenants get it.
    pub current: bool,
    /// Tenants whose workspace uses it.
    pub tenants: Vec<String>,
}

/// What `POST /api/images/build` takes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageBuild {
    /// Rebuild without the engine's cache.
    #[serde(default)]
    pub force: bool,
    /// The image profile: `base` (the default), `dev` or `desktop`; the profiles it builds on
    /// are built first when missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// What a build did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Built {
    /// The versioned reference.
    pub reference: String,
    /// Whether it was already built (nothing done).
    pub cached: bool,
}

/// One line of the host check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckItem {
    /// What was checked: `engine`, `image`, `storage`, `tools`, `disk`.
    pub name: String,
    /// Whether it is fine.
    pub ok: bool,
    /// What was found.
    pub message: String,
    /// What to do, when not fine.
    pub hint: Option<String>,
}

/// What `POST /api/doctor` takes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoctorRun {
    /// Repair what is found (never deleting data).
    #[serde(default)]
    pub fix: bool,
}

/// One drift between the store, the engine and the homes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    /// The tenant (or container) concerned.
    pub subject: String,
    /// What is wrong.
    pub problem: String,
    /// What the fix does about it.
    pub fix: String,
    /// Whether it was fixed in this run.
    pub fixed: bool,
}

/// What `POST /api/import` takes besides the archive (its body).
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// The tenant's name here; default: the name in the archive.
    #[serde(default, rename = "as")]
    pub name: Option<String>,
    /// A home quota other than the archive's, e.g. `20GiB`.
    #[serde(default)]
    pub disk: Option<String>,
    /// An image other than this host's newest: a profile (`dev`) or a reference.
    #[serde(default)]
    pub image: Option<String>,
}

/// Which audit records to answer with.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Only this tenant's records.
    pub tenant: Option<String>,
    /// Only records at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only failed or denied actions.
    #[serde(default)]
    pub failed: bool,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// When it happened.
    pub time: DateTime<Utc>,
    /// Versioned kind, e.g. `tenant.create.v1`.
    pub kind: String,
    /// Who acted: `cli:root`, `ssh:alice`, `api:token-name`.
    pub actor: String,
    /// The tenant acted on, if any.
    pub tenant: Option<String>,
    /// `ok`, `failed` or `denied`.
    pub outcome: String,
    /// Extra facts; never secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub detail: BTreeMap<String, String>,
    /// Hash of the previous record.
    pub prev: String,
    /// Hash of this record.
    pub hash: String,
}

/// The audit log's hash chain, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditVerified {
    /// The log file on the server.
    pub path: String,
    /// Records checked.
    pub records: usize,
}

/// A banned client address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Ban {
    /// IP address.
    pub address: String,
    /// The one tenant the address may not log in as (set after failed logins as it); none:
    /// banned for everything.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Why.
    pub reason: String,
    /// Since when.
    pub created_at: DateTime<Utc>,
    /// Until when; none: until removed.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What `POST /api/bans` takes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBan {
    /// IPv4 or IPv6 address.
    pub address: String,
    /// How long, e.g. "1h" (default: until removed).
    pub duration: Option<String>,
    /// Why, for the record.
    pub reason: Option<String>,
}

/// An API token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Token {
    /// Its name.
    pub name: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What `POST /api/tokens` takes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A name (1-64 of a-z, 0-9, '-', '_').
    pub name: String,
    /// `admin` (default) or `viewer`.
    pub role: Option<String>,
}

/// A token just made: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// Its name.
    pub name: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// The secret, for `Authorization: Bearer ...`.
    #[schema(value_type = String)]
    pub token: hostel_core::Secret<String>,
}

/// The running daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DaemonStatus {
    /// Its process id.
    pub pid: u32,
    /// hostel's version.
    pub version: String,
    /// Where the SSH gateway listens.
    pub ssh_listen: String,
    /// Where the HTTP API listens.
    pub http_listen: String,
    /// The SSH host key's fingerprint.
    pub host_key: String,
    /// Open SSH sessions and API commands.
    pub open_sessions: u32,
}

#[cfg(test)]
mod tests;

/// One point of a usage chart: rates and levels over the interval that ends at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsagePoint {
    /// The end of the interval, in seconds since the Unix epoch.
    pub at: u32,
    /// CPUs in use (1.0: one whole CPU).
    pub cpu: f32,
    /// Memory in use, in bytes.
    pub memory_bytes: f32,
    /// Bytes used in the home (for the host: in every home).
    pub disk_bytes: f32,
    /// Network bytes received a second.
    pub rx_bytes_per_sec: f32,
    /// Network bytes sent a second.
    pub tx_bytes_per_sec: f32,
    /// Open sessions.
    pub sessions: f32,
    /// Running workspaces (a tenant: 0 or 1; averaged, the share of the time it ran).
    pub running: f32,
}

impl From<hostel_core::history::Point> for UsagePoint {
    fn from(p: hostel_core::history::Point) -> Self {
        UsagePoint {
            at: p.at,
            cpu: p.cpu,
            memory_bytes: p.memory,
            disk_bytes: p.disk,
            rx_bytes_per_sec: p.rx,
            tx_bytes_per_sec: p.tx,
            sessions: p.sessions,
            running: p.running,
        }
    }
}

/// A tenant's or the host's usage over a range, oldest point first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageHistory {
    /// `1h` (a point per lifecycle check), `24h` or `7d` (15-minute averages).
    pub range: String,
    /// The points; empty until the daemon's first checks.
    pub points: Vec<UsagePoint>,
}
