//! The service's error type: what went wrong, its stable code, and one hint.

use hostel_core::ErrorCode;
use hostel_core::placement::PlacementError;
use hostel_core::{KeyError, NameError, QuotaError, SizeError};
use hostel_runtime::RuntimeError;
use hostel_store::StoreError;

/// What a use case can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A bad tenant name.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// A bad key.
    #[error(transparent)]
    InvalidKey(#[from] KeyError),
    /// A bad size.
    #[error(transparent)]
    InvalidSize(#[from] SizeError),
    /// A quota that can never work.
    #[error(transparent)]
    InvalidQuota(#[from] QuotaError),
    /// Lifecycle settings that do not make a policy.
    #[error(transparent)]
    InvalidPolicy(#[from] hostel_core::policy::PolicyError),
    /// A quota this host cannot give.
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// A web password that breaks the rule.
    #[error("web password: {reason}")]
    WeakPassword {
        /// Which rule.
        reason: &'static str,
    },
    /// A caller whose role does not grant what the call does.
    #[error("{actor} is a {role}: a {role} may not {action} ({what})")]
    NotPermitted {
        /// Who called (`api:dash`).
        actor: String,
        /// The caller's role.
        role: hostel_core::Role,
        /// What the call does.
        action: hostel_core::Action,
        /// The call, e.g. `GET /api/tenants/{name}/exec/ws`.
        what: String,
    },
    /// A download larger than its reader takes whole.
    #[error("the file is larger than {limit} bytes")]
    FileTooLarge {
        /// The most the reader takes.
        limit: usize,
    },
    /// A web login with a wrong name or password (the same answer for both).
    #[error("wrong tenant name or password")]
    LoginFailed,
    /// No free subnet is left for a tenant network.
    #[error("no free subnet left in the tenant network pool {pool}")]
    NetworkPoolFull {
        /// The pool.
        pool: String,
    },
    /// An unknown egress word.
    #[error(transparent)]
    InvalidEgress(#[from] hostel_core::network::EgressError),
    /// An unknown token role.
    #[error(transparent)]
    InvalidRole(#[from] hostel_core::role::RoleError),
    /// A client address that is not one.
    #[error("address {address:?}: not an IPv4 or IPv6 address")]
    InvalidAddress {
        /// The rejected input.
        address: String,
    },
    /// A disk quota below what the home already holds.
    #[error("disk {asked}: tenant {tenant:?} already uses {used}")]
    DiskBelowUsage {
        /// The tenant.
        tenant: String,
        /// Requested.
        asked: String,
        /// In use.
        used: String,
    },
    /// A request that needs at least one key got none.
    #[error("tenant {tenant:?} needs at least one SSH public key")]
    NoKeys {
        /// The tenant.
        tenant: String,
    },
    /// `set` without anything to set.
    #[error("nothing to change for tenant {tenant:?}")]
    NothingToSet {
        /// The tenant.
        tenant: String,
    },
    /// The workspace image is not in the engine.
    #[error("workspace image {reference:?} is not in the engine")]
    ImageMissing {
        /// The reference.
        reference: String,
    },
    /// An image whose workspaces run containers of their own, on an engine that cannot
    /// confine them.
    #[error(
        "image {image:?} runs containers inside its workspaces, which this engine cannot \
         confine: a Docker workspace shares one id range with every other"
    )]
    NestingUnsupported {
        /// The image.
        image: String,
    },
    /// An image profile that does not exist.
    #[error(transparent)]
    InvalidProfile(#[from] hostel_core::profile::UnknownProfile),
    /// The tenant's image has no such web app.
    #[error("tenant {tenant:?}'s image {image:?} has no {app}")]
    AppMissing {
        /// The tenant.
        tenant: String,
        /// The app's name.
        app: String,
        /// The tenant's image.
        image: String,
    },
    /// A web app did not come up in the workspace.
    #[error("{app} did not start in {tenant:?}'s workspace: {reason}")]
    AppFailed {
        /// The tenant.
        tenant: String,
        /// The app's name.
        app: String,
        /// What the supervisor said.
        reason: String,
    },
    /// The tenant is half-made or being purged.
    #[error(transparent)]
    InvalidSnapshot(#[from] hostel_core::snapshot::SnapshotNameError),
    /// A bad share name or path.
    #[error(transparent)]
    InvalidShare(#[from] hostel_core::share::ShareError),
    /// No snapshot of that name.
    #[error("tenant {tenant:?} has no snapshot {snapshot:?}")]
    SnapshotMissing {
        /// The tenant.
        tenant: String,
        /// The snapshot asked for.
        snapshot: String,
    },
    /// The tenant has as many snapshots as `[storage] snapshots_max` allows.
    #[error("tenant {tenant:?} has {max} snapshots, the most [storage] snapshots_max allows")]
    TooManySnapshots {
        /// The tenant.
        tenant: String,
        /// The limit.
        max: u32,
    },
    /// A schedule hostel does not know.
    #[error("unknown snapshot schedule {every:?}")]
    UnknownSchedule {
        /// What was asked.
        every: String,
    },
    /// A schedule that keeps nothing, or more than the limit.
    #[error(
        "a schedule keeping {keep} snapshots: keep between 1 and {max} ([storage] snapshots_max)"
    )]
    InvalidSchedule {
        /// What was asked.
        keep: u32,
        /// The limit.
        max: u32,
    },
    #[error("tenant {tenant:?} is {status}: another command is working on it")]
    Busy {
        /// The tenant.
        tenant: String,
        /// Its status.
        status: String,
    },
    /// `purge` without confirmation.
    #[error("purge deletes tenant {tenant:?}'s home and everything in it; refusing without --yes")]
    PurgeUnconfirmed {
        /// The tenant.
        tenant: String,
    },
    /// The workspace did not come up.
    #[error("workspace of {tenant:?} stopped right after starting: {reason}")]
    WorkspaceDied {
        /// The tenant.
        tenant: String,
        /// What its init said, if anything.
        reason: String,
    },
    /// The workspace runs, but its init did not make the tenant's user in time.
    #[error(
        "workspace of {tenant:?} runs, but its init did not make the tenant's user within {secs}s"
    )]
    WorkspaceNotReady {
        /// The tenant.
        tenant: String,
        /// How long it was given.
        secs: u64,
    },
    /// A token name that breaks the rule.
    #[error("token name {name:?}: 1-64 chars of a-z, 0-9, '-' and '_'")]
    InvalidTokenName {
        /// The name.
        name: String,
    },
    /// A port published on a host without `[http] domain`, where it has no origin.
    #[error(
        "tenant {tenant}: ports are published at PORT--{tenant}.<domain>, and [http] domain is not set"
    )]
    NoDomain {
        /// Whose port.
        tenant: String,
    },
    /// A port the tenant does not publish.
    #[error("tenant {tenant} does not publish port {port}")]
    PortNotPublished {
        /// Whose.
        tenant: String,
        /// Which.
        port: u16,
    },
    /// A port outside 1 to 65535.
    #[error("port {port}: not between 1 and 65535")]
    InvalidPort {
        /// As given.
        port: String,
    },
    /// `ban remove` of an address that is not banned.
    #[error("address {address} is not banned")]
    NotBanned {
        /// The address.
        address: String,
    },
    /// Building the base image failed.
    #[error("building the base image failed: {message}")]
    BaseImage {
        /// What failed.
        message: String,
    },
    /// A path outside the home.
    #[error("path {path:?}: {reason}")]
    BadPath {
        /// The path.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Reading or writing a file in the home failed.
    #[error("{path:?}: {message}")]
    FileFailed {
        /// The path.
        path: String,
        /// What the workspace said.
        message: String,
        /// Whether nothing is there.
        missing: bool,
    },
    /// The metrics registry could not be built.
    #[error("metrics: {message}")]
    Metrics {
        /// What prometheus said.
        message: String,
    },
    /// An archive `import` cannot take.
    #[error("the archive is not one hostel can import: {reason}")]
    BadArchive {
        /// What is wrong with it.
        reason: String,
    },
    /// An archive whose home does not fit the quota it is imported with.
    #[error("the archive's home does not fit its quota (it was full at {at})")]
    ArchiveTooLarge {
        /// The file being written when the quota was reached.
        at: String,
    },
    /// An import into a name that has a home already.
    #[error("a home for {tenant} exists already; an import fills a new one")]
    HomeExists {
        /// The tenant.
        tenant: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine or storage failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A host file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was done.
        action: &'static str,
        /// Where.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl ServiceError {
    /// The stable error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            ServiceError::InvalidName(_)
            | ServiceError::InvalidKey(_)
            | ServiceError::InvalidSize(_)
            | ServiceError::InvalidQuota(_)
            | ServiceError::InvalidPolicy(_)
            | ServiceError::Placement(_)
            | ServiceError::InvalidRole(_)
            | ServiceError::InvalidProfile(_)
            | ServiceError::WeakPassword { .. }
            | ServiceError::InvalidEgress(_)
            | ServiceError::InvalidAddress { .. }
            | ServiceError::DiskBelowUsage { .. }
            | ServiceError::NoKeys { .. }
            | ServiceError::NothingToSet { .. }
            | ServiceError::InvalidTokenName { .. }
            | ServiceError::BadPath { .. }
            | ServiceError::FileTooLarge { .. }
            | ServiceError::PurgeUnconfirmed { .. }
            | ServiceError::NoDomain { .. }
            | ServiceError::InvalidPort { .. }
            | ServiceError::InvalidSnapshot(_)
            | ServiceError::InvalidShare(_)
            | ServiceError::InvalidSchedule { .. }
            | ServiceError::UnknownSchedule { .. }
            | ServiceError::BadArchive { .. }
            | ServiceError::ArchiveTooLarge { .. } => ErrorCode::InvalidInput,
            ServiceError::HomeExists { .. } => ErrorCode::Conflict,
            ServiceError::SnapshotMissing { .. } => ErrorCode::NotFound,
            ServiceError::TooManySnapshots { .. } => ErrorCode::Conflict,
            ServiceError::NetworkPoolFull { .. } => ErrorCode::Unavailable,
            ServiceError::LoginFailed => ErrorCode::Unauthenticated,
            ServiceError::NotPermitted { .. } => ErrorCode::PermissionDenied,
            ServiceError::NestingUnsupported { .. } => ErrorCode::InvalidInput,
            ServiceError::ImageMissing { .. }
            | ServiceError::NotBanned { .. }
            | ServiceError::PortNotPublished { .. }
            | ServiceError::AppMissing { .. } => ErrorCode::NotFound,
            ServiceError::AppFailed { .. } => ErrorCode::Unavailable,
            ServiceError::FileFailed { missing: true, .. } => ErrorCode::NotFound,
            ServiceError::FileFailed { .. } => ErrorCode::InvalidInput,
            ServiceError::Busy { .. } => ErrorCode::Conflict,
            ServiceError::WorkspaceNotReady { .. } => ErrorCode::Unavailable,
            ServiceError::WorkspaceDied { .. }
            | ServiceError::BaseImage { .. }
            | ServiceError::Metrics { .. } => ErrorCode::Internal,
            ServiceError::Io { source, .. } if source.raw_os_error() == Some(28) => {
                ErrorCode::Unavailable
            }
            ServiceError::Io { .. } => ErrorCode::Internal,
            ServiceError::Store(e) => e.code(),
            ServiceError::Runtime(e) => e.code(),
        }
    }

    /// One concrete action for a person.
    pub fn hint(&self) -> Option<String> {
        match self {
            ServiceError::InvalidName(_) => Some("pick a name such as alice or agent-7".into()),
            ServiceError::InvalidKey(_) => Some(
                "pass an OpenSSH public key file, e.g. ~/.ssh/id_ed25519.pub (make one with \
                 ssh-keygen -t ed25519)"
                    .into(),
            ),
            ServiceError::InvalidSize(_) | ServiceError::InvalidQuota(_) => {
                Some("see `hostel create --help` for the quota flags".into())
            }
            ServiceError::Placement(_) => Some("ask for less, within what the host has".into()),
            ServiceError::InvalidRole(_) => Some("use --role admin or --role viewer".into()),
            ServiceError::InvalidProfile(_) => Some("use --profile base, dev or desktop".into()),
            ServiceError::WeakPassword { .. } => {
                Some("use 12 to 1024 characters; a passphrase of a few words is good".into())
            }
            ServiceError::NotPermitted { .. } => Some(
                "use an admin token; viewers read tenants' metadata only (docs/api.md, Roles and actions)"
                    .into(),
            ),
            ServiceError::LoginFailed => {
                Some("check the name and password; an admin sets one with `hostel passwd NAME`".into())
            }
            ServiceError::InvalidEgress(_) => Some("use --egress all or --egress none".into()),
            ServiceError::NetworkPoolFull { .. } => Some(
                "purge unused tenants, or give [network] pool a larger range (or subnet_prefix a longer one)"
                    .into(),
            ),
            ServiceError::InvalidAddress { .. } => Some("e.g. 203.0.113.7 or 2001:db8::7".into()),
            ServiceError::InvalidPolicy(_) => {
                Some("durations are like 90s, 30m, 1h or 7d; ephemeral needs a ttl".into())
            }
            ServiceError::DiskBelowUsage { tenant, .. } => Some(format!(
                "free space in the home first (see usage with `hostel info {tenant}`), or ask for more"
            )),
            ServiceError::NoKeys { .. } => Some("add --key FILE".into()),
            ServiceError::NothingToSet { .. } => {
                Some("give at least one of --cpus, --memory, --disk, --pids, --image, --egress, --ttl, --ephemeral, --autostart, --idle-stop".into())
            }
            ServiceError::NestingUnsupported { .. } => Some(
                "Docker inside a workspace needs the Incus engine: set `kind = \"incus\"` in \
                 [engine] of hostel.toml (`scripts/up --engine incus` installs it); see \
                 docs/security.md on containers inside a workspace"
                    .into(),
            ),
            ServiceError::ImageMissing { reference } => Some(
                match ["dev", "desktop", "docker"]
                    .into_iter()
                    .find(|p| reference.ends_with(&format!(":{p}")))
                {
                    Some(p) => format!("build it with `hostel image build --profile {p}`"),
                    None => "build it with `hostel image build` (or `scripts/up`)".into(),
                },
            ),
            ServiceError::InvalidSnapshot(_) => Some("pick a name such as before-upgrade".into()),
            ServiceError::InvalidShare(hostel_core::share::ShareError::Name { .. }) => {
                Some("pick a name such as datasets or models".into())
            }
            ServiceError::InvalidShare(hostel_core::share::ShareError::Path { .. }) => Some(
                "share a folder of its own, e.g. /srv/datasets, outside hostel's root and the host's system folders"
                    .into(),
            ),
            ServiceError::SnapshotMissing { tenant, .. } => {
                Some(format!("list them with `hostel snapshot list {tenant}`"))
            }
            ServiceError::TooManySnapshots { tenant, .. } => Some(format!(
                "delete one with `hostel snapshot delete {tenant} SNAPSHOT`, or raise [storage] snapshots_max"
            )),
            ServiceError::InvalidSchedule { .. } | ServiceError::UnknownSchedule { .. } => {
                Some("use hourly, daily or weekly with a keep, e.g. --schedule daily --keep 7; off stops it".into())
            }
            ServiceError::Busy { tenant, .. } => Some(format!(
                "wait for the other command to finish; if none runs, `hostel doctor --fix` repairs {tenant}"
            )),
            ServiceError::PurgeUnconfirmed { tenant } => Some(format!(
                "run `hostel purge {tenant} --yes` if you mean it; `hostel delete {tenant}` keeps the home"
            )),
            ServiceError::WorkspaceDied { tenant, .. } => Some(format!(
                "see the workspace's log: `docker logs hostel-{tenant}` on Docker, `incus console \
                 --show-log hostel-{tenant}` on Incus"
            )),
            ServiceError::WorkspaceNotReady { tenant, .. } => Some(format!(
                "the host may be short of memory or CPU; try again, and see the workspace's log: \
                 `docker logs hostel-{tenant}` on Docker, `incus console --show-log \
                 hostel-{tenant}` on Incus"
            )),
            ServiceError::NotBanned { .. } => Some("list bans with `hostel ban list`".into()),
            ServiceError::NoDomain { .. } => Some(
                "set [http] domain in hostel.toml, with wildcard DNS and a certificate for it \
                 (see docs/web.md)"
                    .into(),
            ),
            ServiceError::PortNotPublished { tenant, .. } => {
                Some(format!("list its ports with `hostel port list {tenant}`"))
            }
            ServiceError::InvalidPort { .. } => Some("e.g. 8000".into()),
            ServiceError::AppMissing { tenant, .. } => Some(format!(
                "an admin gives {tenant} an image with apps: `hostel set {tenant} --image hostel-workspace:dev` (or :desktop)"
            )),
            ServiceError::AppFailed { tenant, app, .. } => Some(format!(
                "its log is ~/.local/state/hostel/apps/{app}.log in {tenant}'s home"
            )),
            ServiceError::Metrics { .. } => None,
            ServiceError::BadPath { .. } => {
                Some("give a path inside the home, e.g. work/data.csv".into())
            }
            ServiceError::FileFailed { .. } => None,
            ServiceError::FileTooLarge { .. } => {
                Some("download it with `hostel cp` or the file API, which stream".into())
            }
            ServiceError::InvalidTokenName { .. } => Some("e.g. ci-runner or dashboard".into()),
            ServiceError::BaseImage { .. } => Some(
                "check that deb.debian.org is reachable and debootstrap is installed (scripts/engine installs it)"
                    .into(),
            ),
            ServiceError::Io { source, .. } if source.raw_os_error() == Some(28) => {
                Some("free space on the filesystem holding the hostel root".into())
            }
            ServiceError::Io { path, .. } => Some(format!("check that {path} is writable by root")),
            ServiceError::BadArchive { .. } => Some(
                "pass a whole file that `hostel export` wrote; a cut or changed one fails its checksum"
                    .into(),
            ),
            ServiceError::ArchiveTooLarge { .. } => {
                Some("import it again with a larger --disk".into())
            }
            ServiceError::HomeExists { .. } => Some(
                "import under another name with --as NAME; `hostel doctor` lists homes without a tenant"
                    .into(),
            ),
            ServiceError::Store(e) => e.hint(),
            ServiceError::Runtime(e) => e.hint(),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.display().to_string();
        move |source| ServiceError::Io {
            action,
            path,
            source,
        }
    }
}
