//! The command line, as clap parses it. Values stay strings here and become checked core types
//! in `commands`, so a bad value gets hostel's own error with its hint and exit code 2.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Isolated, persistent workspaces for many tenants on one Linux server.
///
/// Every tenant (a person, a client, an AI agent) gets a workspace of its own: a container
/// with CPU, memory, disk and process quotas and a home that outlives it, reached through one
/// SSH gateway and one web gateway. `hostel serve` runs them; the other commands manage
/// tenants, on this server as root or against a daemon elsewhere with --server.
///
/// First steps: `hostel check` (is the host ready?), `hostel create alice --key alice.pub`,
/// then `ssh -p 2222 alice@this-host`.
#[derive(Debug, Parser)]
#[command(
    name = "hostel",
    version,
    propagate_version = true,
    after_help = "`hostel COMMAND --help` explains a command; `man hostel` and \
                  /usr/share/doc/hostel (docs/ in the source) explain everything."
)]
pub struct Cli {
    /// Root of hostel's files.
    #[arg(
        long,
        global = true,
        env = "HOSTEL_ROOT",
        default_value = "/srv/hostel",
        value_name = "DIR"
    )]
    pub root: PathBuf,
    /// Configuration file [default: <root>/etc/hostel.toml].
    #[arg(long, global = true, env = "HOSTEL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Set a configuration key for this run, over HOSTEL_<SECTION>_<KEY> and the file
    /// (repeatable), e.g. --set ssh.keepalive_secs=10.
    #[arg(long = "set", global = true, value_name = "SECTION.KEY=VALUE")]
    pub set: Vec<String>,
    /// Print JSON instead of a table (reading commands).
    #[arg(long, global = true)]
    pub json: bool,
    /// Log format on stderr (warnings and errors unless HOSTEL_LOG sets a level).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Running the commands against a daemon elsewhere.
#[derive(Debug, Args, Default)]
pub struct RemoteArgs {
    /// A daemon's API to run the command against, e.g. https://hostel.example.com:8443
    /// [default: this host: through the local daemon when it runs, else directly].
    #[arg(long, global = true, env = "HOSTEL_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// API token for --server (`hostel token create`).
    #[arg(long, global = true, env = "HOSTEL_TOKEN", hide_env_values = true)]
    pub token: Option<hostel_core::Secret<String>>,
    /// Client certificate for --server over mutual TLS (`hostel cert generate`'s client.pem).
    #[arg(long, global = true, env = "HOSTEL_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The client certificate's key (client.key). Not `--key`: that names SSH keys.
    #[arg(long, global = true, env = "HOSTEL_CERT_KEY", value_name = "FILE")]
    pub cert_key: Option<PathBuf>,
    /// The CA the server's certificate is checked against (ca.pem) [default: the system's].
    #[arg(long, global = true, env = "HOSTEL_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Quota flags shared by `create` and `set`.
#[derive(Debug, Args, Default)]
pub struct QuotaArgs {
    /// CPUs (e.g. 0.5, 2).
    #[arg(long)]
    pub cpus: Option<String>,
    /// Memory limit (e.g. 512M, 2G); no swap beyond it.
    #[arg(long)]
    pub memory: Option<String>,
    /// Home size (e.g. 5G).
    #[arg(long)]
    pub disk: Option<String>,
    /// Most processes and threads.
    #[arg(long)]
    pub pids: Option<String>,
    /// GPUs: all, none, or a count (the first N, shared, as `docker run --gpus N`); given at
    /// the workspace's next start.
    #[arg(long, value_name = "all|none|N")]
    pub gpus: Option<String>,
    /// Disk reads and writes a second, each way: none, a size (e.g. 50M) or operations (e.g.
    /// 500iops); given at the workspace's next start.
    #[arg(long, value_name = "none|SIZE|Niops")]
    pub disk_io: Option<String>,
    /// Workspace image (default: the newest `hostel image build`).
    #[arg(long)]
    pub image: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a tenant: its home and a running workspace.
    Create {
        /// Tenant name: also its user, hostname and SSH login.
        name: String,
        /// SSH public key file (repeatable; at least one).
        #[arg(long = "key", value_name = "FILE")]
        keys: Vec<PathBuf>,
        #[command(flatten)]
        quota: QuotaArgs,
        /// Time to live (90s, 30m, 1h, 7d): at expiry `hostel serve` removes the workspace.
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        /// With --ttl: at expiry purge the tenant, home included.
        #[arg(long, requires = "ttl")]
        ephemeral: bool,
        /// Start the workspace whenever `hostel serve` starts.
        #[arg(long)]
        autostart: bool,
        /// Stop the workspace after this long idle (0: never) [default: [lifecycle] idle_stop_secs].
        #[arg(long, value_name = "DURATION")]
        idle_stop: Option<String>,
        /// Where the workspace may connect: all (the internet; never the host or other
        /// tenants) or none [default: [defaults] egress].
        #[arg(long, value_name = "all|none")]
        egress: Option<String>,
    },
    /// List tenants and their workspaces.
    List,
    /// Show a tenant: state, image, quotas, live usage.
    Info {
        /// Tenant name.
        name: String,
    },
    /// Start a tenant's workspace (re-creating it if deleted).
    Start {
        /// Tenant name.
        name: String,
    },
    /// Stop a tenant's workspace; its processes end, its files stay.
    Stop {
        /// Tenant name.
        name: String,
    },
    /// Run a command as the tenant in its workspace (waking it).
    Exec {
        /// Tenant name.
        name: String,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Copy a file into or out of a tenant's home.
    ///
    /// `cp FILE NAME:PATH` or `cp NAME:PATH FILE` (a folder comes out as a tar). Runs as the
    /// tenant, inside its workspace.
    Cp {
        /// Source: a local file, or NAME:PATH.
        from: String,
        /// Destination: NAME:PATH, or a local file.
        to: String,
    },
    /// Write a tenant to one archive: its record, keys and policies, and its home.
    ///
    /// The home is read from a frozen copy, so the workspace may run meanwhile. The archive is
    /// zstd-compressed and checksummed, written to FILE.partial and renamed when whole; it
    /// holds the tenant's keys and web password hash, so it is made readable by root only.
    Export {
        /// Tenant name.
        name: String,
        /// Where to write it (never over an existing file); `-` for standard output.
        file: String,
    },
    /// Make a tenant from an archive `hostel export` wrote, on this host's engine.
    ///
    /// The home comes back byte for byte, whatever engine wrote the archive. A cut or changed
    /// archive, or a home that does not fit, leaves nothing behind.
    Import {
        /// The archive; `-` for standard input.
        file: String,
        /// The name the tenant gets here; default: the name in the archive.
        #[arg(long = "as", value_name = "NAME")]
        name: Option<String>,
        /// A home quota other than the archive's, e.g. 20GiB.
        #[arg(long, value_name = "SIZE")]
        disk: Option<String>,
        /// An image other than this host's newest: a profile (dev, desktop) or a reference.
        #[arg(long)]
        image: Option<String>,
    },
    /// Change a tenant's quotas, image or lifecycle policies.
    ///
    /// Quotas apply live where the engine allows, the image at the next start, policies at
    /// once.
    Set {
        /// Tenant name.
        name: String,
        #[command(flatten)]
        quota: QuotaArgs,
        /// A new time to live, counted from now (90s, 30m, 1h, 7d), or `none` to remove it.
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        /// At expiry purge the tenant, home included (needs a TTL).
        #[arg(long, conflicts_with = "no_ephemeral")]
        ephemeral: bool,
        /// At expiry only delete the workspace; the home stays.
        #[arg(long)]
        no_ephemeral: bool,
        /// Start the workspace whenever `hostel serve` starts.
        #[arg(long, conflicts_with = "no_autostart")]
        autostart: bool,
        /// Do not start it with the daemon.
        #[arg(long)]
        no_autostart: bool,
        /// Stop the workspace after this long idle (0: never; `default`: hostel.toml's).
        #[arg(long, value_name = "DURATION")]
        idle_stop: Option<String>,
        /// Where the workspace may connect, from its next start: all or none.
        #[arg(long, value_name = "all|none")]
        egress: Option<String>,
    },
    /// Set a tenant's web password, for the portal.
    ///
    /// Read from stdin when it is not a terminal, else asked for twice. Signs out the
    /// tenant's browser sessions.
    Passwd {
        /// Tenant name.
        name: String,
    },
    /// Make a one-time link that signs a tenant in to the web portal.
    ///
    /// For agents and first sign-ins; printed once.
    LoginLink {
        /// Tenant name.
        name: String,
        /// How long it works (90s, 15m, 1h; at most 7d).
        #[arg(long, default_value = "15m", value_name = "DURATION")]
        ttl: String,
    },
    /// Manage a tenant's SSH keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Publish a port of a tenant's workspace on an origin of its own.
    ///
    /// The port answers at PORT--TENANT.<[http] domain>.
    #[command(subcommand)]
    Port(PortCommand),
    /// Share a host folder, read-only, at /shared/NAME in tenants' workspaces.
    #[command(subcommand)]
    Share(ShareCommand),
    /// Snapshot a tenant's home (and, on Incus, its whole system); restore, list, schedule.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Remove a tenant's workspace container; the tenant, its keys and home stay.
    Delete {
        /// Tenant name.
        name: String,
    },
    /// Remove a tenant entirely: workspace, keys and home (needs --yes).
    Purge {
        /// Tenant name.
        name: String,
        /// Confirm that the home and everything in it goes.
        #[arg(long)]
        yes: bool,
    },
    /// Build or list workspace images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Make this host ready and start the daemon (after installing the Debian package).
    ///
    /// Runs /usr/lib/hostel/setup: installs the engine and host tools that are missing, starts
    /// hostel's engine, builds the workspace image, checks the host and (re)starts
    /// hostel.service. Idempotent. From a checkout, scripts/up does the same after building.
    Setup,
    /// Check that this host is ready: engine, image, storage, tools, disk.
    Check,
    /// Find drift between the store, the engine and the homes.
    ///
    /// --fix repairs it, never deleting a tenant's data.
    Doctor {
        /// Repair what was found.
        #[arg(long)]
        fix: bool,
    },
    /// Query or verify the audit log.
    Audit {
        #[command(subcommand)]
        verify: Option<AuditCommand>,
        /// Only this tenant's records.
        #[arg(long)]
        tenant: Option<String>,
        /// Only records at or after this time (RFC 3339, or a duration like 1h, 30m, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Only failed or denied actions.
        #[arg(long)]
        failed: bool,
    },
    /// Run the daemon: the SSH gateway, the HTTP API and the web gateway.
    ///
    /// Runs until SIGTERM or Ctrl-C, then drains open sessions for [lifecycle] drain_secs.
    /// Under systemd it is hostel.service.
    Serve {
        /// Address of the SSH gateway: sets [ssh] listen (HOSTEL_SSH_LISTEN) [default:
        /// 0.0.0.0:2222].
        #[arg(long, value_name = "ADDR")]
        ssh_listen: Option<String>,
        /// Address of the HTTP API: sets [http] listen (HOSTEL_HTTP_LISTEN) [default:
        /// 127.0.0.1:8080]; loopback only without TLS.
        #[arg(long, value_name = "ADDR")]
        http_listen: Option<String>,
        /// Address of the tenants' web gateway, apart from the API and /admin: sets [http]
        /// web_listen (HOSTEL_HTTP_WEB_LISTEN) [default: none, on the API's address]; loopback
        /// only without TLS.
        #[arg(long, value_name = "ADDR")]
        web_listen: Option<String>,
    },
    /// Make the certificates for the HTTP API's mutual TLS.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Make, list or revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Show whether the daemon runs, and where.
    Status,
    /// Print an OpenSSH `Host` block for a tenant, so `ssh NAME` works.
    SshConfig {
        /// Tenant name.
        name: String,
        /// Host name or address of this server [default: this machine's host name].
        #[arg(long)]
        host: Option<String>,
        /// Port of the SSH gateway [default: the port of [ssh] listen].
        #[arg(long)]
        port: Option<u16>,
    },
    /// List, add or lift bans of client addresses at the SSH gateway.
    #[command(subcommand)]
    Ban(BanCommand),
    /// Prove the isolation on this host with the attacker suite.
    #[command(subcommand)]
    Selftest(SelftestCommand),
    /// Show, apply or remove the packet-filter rules that keep workspaces off the host.
    #[command(subcommand)]
    Firewall(FirewallCommand),
    /// Print the example configuration, or the effective one and where each value came from.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the completion script of a shell (bash, zsh, fish, elvish, powershell).
    ///
    /// bash: `hostel completions bash > /etc/bash_completion.d/hostel`; zsh: save it as
    /// `_hostel` in a folder of $fpath; fish: `~/.config/fish/completions/hostel.fish`. The
    /// Debian package installs all three.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print hostel's man page, or write one page per command into a folder.
    Man {
        /// Write hostel.1 and hostel-COMMAND.1 for every command here.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Measure hostel against the plain engine, sshd and the bare engine API.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum PortCommand {
    /// Publish a port: only the tenant's own browser session reaches it, or anyone with
    /// --public. Publishing again changes only who may.
    Publish {
        /// Tenant name.
        name: String,
        /// The port inside the workspace (1 to 65535).
        port: String,
        /// Anyone may open it, signed in or not.
        #[arg(long)]
        public: bool,
    },
    /// Withdraw a published port.
    Unpublish {
        /// Tenant name.
        name: String,
        /// The published port.
        port: String,
    },
    /// List a tenant's published ports.
    List {
        /// Tenant name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ShareCommand {
    /// Share a host folder, read-only, with every tenant or those named; it reaches each
    /// workspace at its next start and never counts against a tenant's disk quota.
    Add {
        /// The share's name: it appears at /shared/NAME.
        name: String,
        /// The host folder (absolute; outside hostel's root and the host's system folders).
        path: String,
        /// Only these tenants (comma-separated) [default: every tenant].
        #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
        tenants: Option<Vec<String>>,
    },
    /// List the shares.
    List,
    /// Stop sharing a folder (it leaves each workspace at its next start; the folder stays).
    Remove {
        /// The share's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Take a snapshot now, while the workspace runs; or, with --schedule, take one every
    /// hour, day or week from the daemon's next look, keeping the newest --keep.
    Create {
        /// Tenant name.
        name: String,
        /// The snapshot's name (1 to 40 of a-z, 0-9, '-') [default: the time now].
        #[arg(conflicts_with = "schedule")]
        snapshot: Option<String>,
        /// hourly, daily, weekly, or off to stop the schedule (its snapshots stay).
        #[arg(long, value_name = "EVERY")]
        schedule: Option<String>,
        /// How many scheduled snapshots stay; older ones go.
        #[arg(long, default_value_t = 7, requires = "schedule")]
        keep: u32,
    },
    /// List a tenant's snapshots, oldest first, and its schedule.
    List {
        /// Tenant name.
        name: String,
    },
    /// Put a snapshot back over the home (and system): what changed since is lost. The
    /// workspace stops for it and starts again when it should run.
    Restore {
        /// Tenant name.
        name: String,
        /// The snapshot.
        snapshot: String,
    },
    /// Delete a snapshot.
    Delete {
        /// Tenant name.
        name: String,
        /// The snapshot.
        snapshot: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add keys from files.
    Add {
        /// Tenant name.
        name: String,
        /// SSH public key file (repeatable).
        #[arg(long = "key", value_name = "FILE", required = true)]
        keys: Vec<PathBuf>,
    },
    /// Remove a key by its SHA256 fingerprint (see `key list`).
    Remove {
        /// Tenant name.
        name: String,
        /// `SHA256:...`
        fingerprint: String,
    },
    /// List a tenant's keys.
    List {
        /// Tenant name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Make a CA, a server and an admin client certificate in <root>/etc/tls (replacing them).
    Generate {
        /// Names and addresses the server is reached at (repeatable) [default: localhost,
        /// 127.0.0.1, this host's name].
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token; it is printed once and stored only as a hash.
    Create {
        /// A name for the token (1-64 of a-z, 0-9, '-', '_').
        name: String,
        /// What it may do.
        #[arg(long, default_value = "admin")]
        role: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token; it stops working at once.
    Revoke {
        /// The token's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BanCommand {
    /// Bans in force.
    List,
    /// Ban an address.
    Add {
        /// IPv4 or IPv6 address.
        address: String,
        /// How long (90s, 30m, 1h, 7d) [default: until removed].
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
        /// Why, for the record.
        #[arg(long, default_value = "banned by an admin")]
        reason: String,
    },
    /// Lift a ban.
    Remove {
        /// IPv4 or IPv6 address.
        address: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the workspace image (cached: a rerun with nothing changed takes seconds).
    Build {
        /// Rebuild without the engine's cache.
        #[arg(long)]
        force: bool,
        /// The profile: base; dev (+ JupyterLab, Node.js, VS Code); desktop (dev + an XFCE
        /// desktop in the browser). Tenants get one with `create --image dev`.
        #[arg(long, default_value = "base")]
        profile: hostel_core::ImageProfile,
    },
    /// List workspace images and the tenants using each.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of the whole log.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum SelftestCommand {
    /// Make two throwaway tenants and try, from one, every known move against the other, the
    /// host, the engine and the gateways; and from outside against the gateway. Exit 0 when
    /// every move is blocked, 1 when any is not. Also times one tenant's `ssh true` while the
    /// other runs a fork bomb, a memory hog and a disk filler.
    Security {
        /// The cloud-metadata address the metadata move tries to reach.
        #[arg(long, value_name = "IP:PORT", default_value = "169.254.169.254:80")]
        metadata: String,
        /// The image the suite's tenants get (a profile's name, e.g. `docker`, or a
        /// reference); default: the newest base build.
        #[arg(long, value_name = "IMAGE")]
        image: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum FirewallCommand {
    /// Whether hostel's rules are in force (exit 0) or not (exit 1).
    Status,
    /// Install the rules now (the daemon and the first workspace start do it anyway).
    Apply,
    /// Remove the rules, e.g. before uninstalling hostel. Workspaces then reach the host until
    /// the rules are back.
    Remove,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a commented hostel.toml with every key and its default.
    Example,
    /// Print every key's effective value and where it came from: a flag, a HOSTEL_* variable,
    /// the file or the default.
    Show {
        /// Only this key (ssh.listen) or section (ssh).
        key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Create, stop, start, delete: hostel against plain `docker` API calls, plus memory per idle
    /// workspace.
    Lifecycle {
        /// Rounds of each operation.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
        rounds: u32,
        /// Idle workspaces for the memory measurement (0 skips it).
        #[arg(long, default_value_t = 50)]
        idle: usize,
        /// Also time a cold image build (the workspace layer rebuilt without cache; a minute or
        /// more).
        #[arg(long)]
        cold: bool,
        /// Also time a tenant's export and import with a home of this many MiB, against tar
        /// and zstd (0 skips it).
        #[arg(long, default_value_t = 0, value_name = "MIB")]
        move_mib: u64,
    },
    /// The SSH gateway against docker exec, sshd in a container and a jump host: time to
    /// `ssh true`, waking, throughput, concurrent sessions.
    Ssh {
        /// Rounds of each timing.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
        rounds: u32,
    },
    /// The HTTP API's sandbox path against the Docker Engine API: create to first exec result,
    /// exec round trip, and sandboxes created in parallel.
    Api {
        /// Rounds of each timing.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
        rounds: u32,
        /// Sandboxes created at once.
        #[arg(long, default_value_t = 100)]
        parallel: usize,
    },
    /// One tenant's fsync latency, quiet and while another writes with fsync, without and
    /// with a disk I/O limit on the writer.
    Io {
        /// fsyncs timed in each phase.
        #[arg(long, default_value_t = 150, value_parser = clap::value_parser!(u32).range(10..))]
        samples: u32,
        /// The writer's limit in the last phase: a size a second or Niops.
        #[arg(long, default_value = "20MiB", value_name = "SIZE|Niops")]
        disk_io: String,
    },
    /// API clients create, run, stop, start and purge tenants while the daemon is killed with
    /// SIGKILL at random moments; then checks that nothing is left half-done, orphaned or lost.
    /// Exits 1 when something is.
    Chaos {
        /// Times the daemon is killed.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
        kills: u32,
        /// API clients at once.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        clients: u64,
    },
    /// SSH and web-terminal sessions doing work, plus API calls, for a while: the daemon's
    /// memory and open files over time, `ssh true` before and after; then idle SSH sessions
    /// from 40 loopback addresses and the memory each takes.
    Soak {
        /// Working sessions at once (a quarter of them web terminals).
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(4..))]
        sessions: u64,
        /// How long they work.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        minutes: u64,
        /// Idle SSH sessions held at the end (0: none).
        #[arg(long, default_value_t = 2000)]
        idle: u64,
    },
    /// Restarts hostel's engine under open SSH sessions: how long it was away, which sessions
    /// lived, how soon tenants log in again, and whether workspaces and files came through.
    /// Disturbs every tenant on the host: a drill for a quiet host.
    Restart {
        /// SSH sessions open when the engine stops.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
        sessions: u64,
        /// The engine's pid file (SIGTERM goes to that pid).
        #[arg(long, default_value = "/run/hostel/docker.pid")]
        engine_pid_file: PathBuf,
        /// The shell command that starts the engine again.
        #[arg(long, default_value = "scripts/engine")]
        start: String,
    },
    /// The admin dashboard with many tenants and 7 days of usage history: each page's size and
    /// time against the engine's list of containers, the history's memory, and the time a
    /// browser takes to draw it. Creates the tenants (real workspaces) and purges them.
    Dashboard {
        /// Tenants to create.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
        tenants: u64,
        /// Fetches of each page.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        rounds: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// Every command with its path (`key add`), leaves only.
    fn leaves(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        let subs: Vec<_> = cmd
            .get_subcommands()
            .filter(|c| c.get_name() != "help")
            .collect();
        if !path.is_empty() && (subs.is_empty() || !cmd.is_subcommand_required_set()) {
            out.push((path.to_owned(), cmd.clone()));
        }
        for c in subs {
            let p = format!("{path} {}", c.get_name()).trim().to_owned();
            leaves(c, &p, out);
        }
    }

    fn long_flags(cmd: &clap::Command) -> Vec<String> {
        cmd.get_arguments()
            .filter(|a| !a.is_global_set() && !a.is_hide_set())
            .filter_map(|a| a.get_long())
            .filter(|l| *l != "help" && *l != "version")
            .map(|l| format!("--{l}"))
            .collect()
    }

    /// The text of the `###` section of docs/cli.md that shows `    hostel <path>` in its
    /// synopsis, up to the next heading.
    fn section<'a>(doc: &'a str, path: &str) -> Option<&'a str> {
        let synopsis = format!("\n    hostel {path}");
        let at = doc.match_indices(&synopsis).map(|(i, _)| i).find(|&i| {
            let rest = &doc[i + synopsis.len()..];
            rest.starts_with(' ') || rest.starts_with('\n')
        })?;
        let start = doc[..at].rfind("\n### ")?;
        let end = doc[at..].find("\n## ").map_or(doc.len(), |e| at + e);
        let end = doc[at..].find("\n### ").map_or(end, |e| end.min(at + e));
        doc.get(start..end)
    }

    /// #18: the reference in docs/cli.md and the command line cannot drift apart: every
    /// command has a synopsis there, every flag is explained in its section, every flag a
    /// synopsis shows exists, and every global flag is in the global table.
    #[test]
    fn issue_18_docs_cli_md_matches_the_command_line() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md"))
                .unwrap();
        let cmd = Cli::command();
        let globals: Vec<String> = cmd
            .get_arguments()
            .filter(|a| a.is_global_set())
            .filter_map(|a| a.get_long())
            .map(|l| format!("--{l}"))
            .collect();
        let global_table = &doc
            [doc.find("## Global flags").unwrap()..doc.find("## Where a command runs").unwrap()];
        let mut missing = Vec::new();
        for g in &globals {
            if !global_table.contains(&format!("`{g}")) {
                missing.push(format!("global flag {g} is not in the global flags table"));
            }
        }
        let table = &doc[doc.find("## Commands").unwrap()..];
        let mut all = Vec::new();
        leaves(&cmd, "", &mut all);
        for (path, c) in &all {
            let top = path.split(' ').next().unwrap();
            if !table.contains(&format!("[`{top}")) {
                missing.push(format!("`{top}` is not in the commands table"));
            }
            let Some(text) = section(&doc, path) else {
                missing.push(format!(
                    "no synopsis `    hostel {path}` under a ### heading"
                ));
                continue;
            };
            let own = long_flags(c);
            for f in &own {
                if !text.contains(&format!("`{f}")) && !text.contains(&format!("[{f}")) {
                    missing.push(format!("`hostel {path}`: {f} is not explained"));
                }
            }
            let synopsis_prefix = format!("    hostel {path}");
            for line in text.lines().filter(|l| l.starts_with(&synopsis_prefix)) {
                for word in line.split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '-')) {
                    if word.starts_with("--")
                        && word != "--"
                        && !own.iter().any(|f| f == word)
                        && !globals.iter().any(|g| g == word)
                    {
                        missing.push(format!(
                            "`hostel {path}`: the synopsis shows {word}, which it does not take"
                        ));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "docs/cli.md drifted:\n{}",
            missing.join("\n")
        );
    }
}
