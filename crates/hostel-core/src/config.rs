//! hostel.toml: one file, every key optional, defaults in [`Config::default`].
//!
//! Loading yields validated core types, so a bad value fails at startup naming the key, the value
//! and the fix. Precedence (flag > `HOSTEL_*` env > file > default) is applied by the CLI, which
//! reads the layers and hands the merged result to [`Config::validate`].

use crate::quota::{Cpus, Quota};
use crate::size::ByteSize;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// hostel's own engine (user namespaces on), as `scripts/engine` starts it.
pub const DEFAULT_ENGINE_SOCKET: &str = "/run/hostel/docker.sock";

/// Incus's socket, as Debian's package and `scripts/incus` make it.
pub const DEFAULT_INCUS_SOCKET: &str = "/var/lib/incus/unix.socket";

/// The commented example with every key and its default, printed by `hostel config example`.
pub const EXAMPLE: &str = include_str!("hostel.example.toml");

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The container engine.
    pub engine: EngineConfig,
    /// The workspace image.
    pub image: ImageConfig,
    /// Quotas for tenants created without flags.
    pub defaults: DefaultsConfig,
    /// Where homes live.
    pub storage: StorageConfig,
    /// The SSH gateway.
    pub ssh: SshConfig,
    /// The HTTP API.
    pub http: HttpConfig,
    /// Lifecycle policies applied by the daemon.
    pub lifecycle: LifecycleConfig,
    /// Tenant networks and the host's packet filter.
    pub network: NetworkConfig,
}

/// `[network]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Addresses tenant networks take their subnets from.
    pub pool: ipnet::Ipv4Net,
    /// Prefix length of each tenant's subnet (28: 14 addresses).
    pub subnet_prefix: u8,
    /// Start of every tenant bridge's interface name (1-7 of a-z, 0-9); the packet filter
    /// matches `<prefix>+`.
    pub interface_prefix: String,
    /// Destinations no workspace may reach even with egress (cloud metadata by default).
    pub deny: Vec<ipnet::Ipv4Net>,
    /// Install and keep hostel's packet-filter rules (workspaces reach nothing on the host).
    pub packet_filter: bool,
    /// Most connections one workspace may have tracked through the host at once: the host's
    /// connection-tracking table is one for everyone, and full, it drops every new connection.
    pub connections_max: u32,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            pool: "10.213.0.0/16".parse().unwrap_or_default(),
            subnet_prefix: 28,
            interface_prefix: "hsl".into(),
            deny: ["169.254.0.0/16", "100.100.100.200/32"]
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect(),
            packet_filter: true,
            connections_max: 4096,
        }
    }
}

/// `[lifecycle]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    /// Stop a workspace after this many seconds without sessions or CPU use (0: never).
    pub idle_stop_secs: u64,
    /// How often the daemon looks for idle and expired tenants.
    pub check_secs: u64,
    /// On SIGTERM, how long the daemon waits for open sessions and API calls to end.
    pub drain_secs: u64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            idle_stop_secs: 1800,
            check_secs: 30,
            drain_secs: 30,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address the HTTP API listens on; without `tls`, loopback only.
    pub listen: String,
    /// Serve HTTPS with mutual TLS from `etc/tls/` (`hostel cert generate`); needed for any
    /// address other than loopback.
    pub tls: bool,
    /// Address of the tenants' web gateway (sign-in, portal, terminal, apps) when it should
    /// have a listener, and so a browser origin, of its own: `/admin` and the API then stay on
    /// `listen`, out of reach of pages the tenants' apps serve. Unset: all on `listen`. Without
    /// `tls`, loopback only; with it, HTTPS with the server certificate and no client one.
    pub web_listen: Option<String>,
    /// Names (`host` or `host:port`) under which browsers reach hostel's pages, besides the
    /// addresses it listens on: a form or WebSocket whose `Host` is none of them is refused,
    /// so a page of another site whose name resolves here (DNS rebinding) drives nothing.
    pub hosts: Vec<String>,
    /// The name under which each tenant app gets an origin of its own (wildcard DNS and
    /// certificate for `*.D`): app `A` of tenant `T` at `A--T.D`, a port `T` publishes at
    /// `PORT--T.D`, hostel's own pages at `D`. Unset: apps share hostel's origin under
    /// `/u/T/A/` (only for hosts whose tenants trust one another).
    pub domain: Option<String>,
    /// Seconds a client has to send a request's headers (a TLS handshake included).
    pub header_timeout_secs: u64,
    /// Seconds a connection may sit with no request before it is closed (WebSockets, once
    /// open, are sessions and not bound by it).
    pub idle_timeout_secs: u64,
    /// Seconds a request body may pause between two pieces before the request fails.
    pub body_timeout_secs: u64,
    /// Open connections one client address may hold on each listener; one more is closed at
    /// once (0: no cap).
    pub max_connections_per_ip: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".to_owned(),
            tls: false,
            web_listen: None,
            hosts: Vec::new(),
            domain: None,
            header_timeout_secs: 10,
            idle_timeout_secs: 60,
            body_timeout_secs: 30,
            max_connections_per_ip: 128,
        }
    }
}

/// Whether `name` is a DNS name hostel can put app origins under: dot-separated labels of
/// a-z, 0-9 and `-`, none empty or longer than 63, none starting or ending with `-`, at most
/// 200 characters (room for `jupyter--<tenant>.` in front).
pub fn valid_domain(name: &str) -> bool {
    name.len() <= 200
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// Whether a request's `Host` header names one of `allowed` (`host` matches any port,
/// `host:port` that port only), ignoring case. An empty list allows every host.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let host = host.to_ascii_lowercase();
    let name = match host.rsplit_once(':') {
        // `[::1]:8080`, `example.com:8080`; a bare IPv6 address has more than one colon.
        Some((n, port)) if port.chars().all(|c| c.is_ascii_digit()) && !n.ends_with(':') => n,
        _ => host.as_str(),
    };
    allowed.iter().any(|a| {
        let a = a.to_ascii_lowercase();
        a == host || a == name
    })
}

/// `[ssh]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshConfig {
    /// Address the gateway listens on.
    pub listen: String,
    /// Seconds of client silence before a keepalive probe (0: never).
    pub keepalive_secs: u64,
    /// Seconds without any traffic before a connection is closed (0: never).
    pub idle_timeout_secs: u64,
    /// Most open sessions (channels) of one tenant across its connections.
    pub max_sessions_per_tenant: u32,
    /// Most connections from one address that have not authenticated yet.
    pub max_unauthenticated_per_ip: u32,
    /// Environment variables a client may pass (`*` ends a prefix), besides TERM.
    pub accept_env: Vec<String>,
    /// Failed logins as one tenant from one address within `ban_window_secs` that ban the
    /// address for that tenant (0: never ban).
    pub ban_after_failures: u32,
    /// Failed logins of any kind from one address within `ban_window_secs` that ban it for
    /// everything (0: never). Higher than `ban_after_failures`, so that one client's failures
    /// do not lock out everyone behind the same address.
    pub ban_address_after_failures: u32,
    /// The window failed logins are counted in.
    pub ban_window_secs: u64,
    /// How long an automatic ban lasts.
    pub ban_secs: u64,
}

impl Default for SshConfig {
    fn default() -> Self {
        SshConfig {
            listen: "0.0.0.0:2222".to_owned(),
            keepalive_secs: 30,
            idle_timeout_secs: 3600,
            max_sessions_per_tenant: 64,
            max_unauthenticated_per_ip: 16,
            accept_env: vec!["LANG".to_owned(), "LC_*".to_owned()],
            ban_after_failures: 10,
            ban_address_after_failures: 50,
            ban_window_secs: 600,
            ban_secs: 3600,
        }
    }
}

impl SshConfig {
    /// Whether a client may set `name` (TERM is set from the pty request).
    pub fn accepts_env(&self, name: &str) -> bool {
        self.accept_env
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == pattern,
            })
    }
}

/// `[storage]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Size of the homes pool, made sparse on first use; unset: the size of the filesystem
    /// holding the root.
    pub pool_size: Option<ByteSize>,
    /// The most snapshots a tenant may have, scheduled ones included. A snapshot holds what
    /// the home held when it was taken, so a tenant holds at most this many times its disk
    /// quota more.
    pub snapshots_max: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            pool_size: None,
            snapshots_max: 10,
        }
    }
}

/// Which container engine runs the workspaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The Docker Engine: application containers, the workspace init as PID 1.
    #[default]
    Docker,
    /// Incus: system containers, each with an id range of its own.
    Incus,
}

impl EngineKind {
    /// Its name in hostel.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Docker => "docker",
            EngineKind::Incus => "incus",
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[engine]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Which engine: `docker` or `incus`.
    pub kind: EngineKind,
    /// Path of the engine's socket; unset: the kind's own ([`DEFAULT_ENGINE_SOCKET`] for
    /// Docker, [`DEFAULT_INCUS_SOCKET`] for Incus).
    pub socket: Option<String>,
    /// Incus's storage pool for workspaces' root disks.
    pub pool: String,
    /// Extra labels on every container hostel makes (cost centres, test runs).
    pub labels: BTreeMap<String, String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            kind: EngineKind::Docker,
            socket: None,
            pool: "hostel".to_owned(),
            labels: BTreeMap::new(),
        }
    }
}

impl EngineConfig {
    /// The engine's socket: the one set, or the kind's own.
    pub fn socket(&self) -> &str {
        match (&self.socket, self.kind) {
            (Some(s), _) => s,
            (None, EngineKind::Docker) => DEFAULT_ENGINE_SOCKET,
            (None, EngineKind::Incus) => DEFAULT_INCUS_SOCKET,
        }
    }
}

/// `[image]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageConfig {
    /// Repository the workspace image is tagged in; each build is `<repository>:<version>`.
    pub repository: String,
    /// Base image tried with a pull first.
    pub base: String,
    /// Debian suite debootstrapped when the pull fails.
    pub suite: String,
    /// Debian mirror for debootstrap and for the image's apt.
    pub mirror: String,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            repository: "hostel-workspace".to_owned(),
            base: "debian:bookworm-slim".to_owned(),
            suite: "bookworm".to_owned(),
            mirror: "http://deb.debian.org/debian".to_owned(),
        }
    }
}

/// `[defaults]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DefaultsConfig {
    /// CPUs.
    pub cpus: Cpus,
    /// Memory.
    pub memory: ByteSize,
    /// Home size.
    pub disk: ByteSize,
    /// Processes.
    pub pids: u32,
    /// Egress of new workspaces: `all` (the internet, never the host) or `none`.
    pub egress: crate::network::Egress,
    /// Disk reads and writes a second, each way: `none`, a size (`50MiB`) or operations
    /// (`500iops`).
    pub disk_io: crate::quota::DiskIo,
}

impl Default for DefaultsConfig {
    fn default() -> Self {
        DefaultsConfig {
            cpus: Cpus::millis(1000),
            memory: ByteSize::gib(1),
            disk: ByteSize::gib(5),
            pids: 512,
            egress: crate::network::Egress::All,
            disk_io: crate::quota::DiskIo::Unlimited,
        }
    }
}

impl DefaultsConfig {
    /// The default quota.
    pub fn quota(&self) -> Quota {
        Quota {
            cpus: self.cpus,
            memory: self.memory,
            disk: self.disk,
            pids: self.pids,
            gpus: crate::quota::Gpus::None,
            disk_io: self.disk_io,
        }
    }
}

/// The sections of hostel.toml, in the file's order; `HOSTEL_<SECTION>_<KEY>` names a key.
pub const SECTIONS: [&str; 8] = [
    "engine",
    "image",
    "defaults",
    "storage",
    "ssh",
    "http",
    "lifecycle",
    "network",
];

/// A configuration that does not parse or breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config: {message}")]
pub struct ConfigError {
    /// What toml or the validation said, with the key.
    pub message: String,
    /// The key that broke a rule (`defaults.pids`), so a loader can say where its value came
    /// from; `None` when the text did not parse.
    pub key: Option<String>,
}

impl ConfigError {
    fn rule(key: &str, message: String) -> ConfigError {
        ConfigError {
            message,
            key: Some(key.to_owned()),
        }
    }
}

impl Config {
    /// Parses and validates a hostel.toml text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError {
            message: e.to_string().trim().replace('\n', " "),
            key: None,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules a key's type cannot carry (minimums, names, ranges), naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.defaults.quota().validate().map_err(|e| {
            let field = match &e {
                crate::quota::QuotaError::BadCpus { .. } => "cpus",
                crate::quota::QuotaError::BadGpus { .. } => "gpus",
                crate::quota::QuotaError::BadDiskIo { .. } => "disk_io",
                crate::quota::QuotaError::BelowMinimum { field, .. } => field,
            };
            ConfigError::rule(&format!("defaults.{field}"), format!("[defaults] {e}"))
        })?;
        let n = &self.network;
        if !crate::network::valid_prefix(&n.interface_prefix) {
            return Err(ConfigError::rule(
                "network.interface_prefix",
                format!(
                    "[network] interface_prefix {:?}: 1 to 7 of a-z and 0-9, starting with a letter",
                    n.interface_prefix
                ),
            ));
        }
        if let Some(d) = &self.http.domain
            && !valid_domain(d)
        {
            return Err(ConfigError::rule(
                "http.domain",
                format!(
                    "[http] domain {d:?}: a DNS name in lowercase (e.g. \"hostel.example.com\"), \
                     without a port or a scheme"
                ),
            ));
        }
        let h = &self.http;
        for (key, v) in [
            ("header_timeout_secs", h.header_timeout_secs),
            ("idle_timeout_secs", h.idle_timeout_secs),
            ("body_timeout_secs", h.body_timeout_secs),
        ] {
            if v == 0 {
                return Err(ConfigError::rule(
                    &format!("http.{key}"),
                    format!("[http] {key} 0: a connection must time out; give a number of seconds"),
                ));
            }
        }
        if n.connections_max < 64 {
            return Err(ConfigError::rule(
                "network.connections_max",
                format!(
                    "[network] connections_max {}: at least 64 (a browser alone opens dozens)",
                    n.connections_max
                ),
            ));
        }
        if n.subnet_prefix < n.pool.prefix_len() || n.subnet_prefix > 29 {
            return Err(ConfigError::rule(
                "network.subnet_prefix",
                format!(
                    "[network] subnet_prefix {}: between the pool's /{} and /29",
                    n.subnet_prefix,
                    n.pool.prefix_len()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_must_be_a_plain_dns_name() {
        for ok in ["hostel.test", "apps.example.com", "x"] {
            let c = Config::from_toml(&format!("[http]\ndomain = \"{ok}\"\n")).unwrap();
            assert_eq!(c.http.domain.as_deref(), Some(ok));
        }
        for bad in [
            "Hostel.Test",
            "hostel.test:8080",
            "https://hostel.test",
            "-x.test",
            "a..b",
            "",
            "*.hostel.test",
        ] {
            let e = Config::from_toml(&format!("[http]\ndomain = \"{bad}\"\n")).unwrap_err();
            assert!(e.message.contains("[http] domain"), "{bad}: {e}");
        }
    }

    /// Regression (#12): the Origin check compared the Origin with the Host header, which a
    /// page of another site controls when its name resolves to this host.
    #[test]
    fn issue_12_hosts_are_checked_against_the_allow_list() {
        let allowed = vec!["127.0.0.1:8080".to_owned(), "Hostel.Example.com".to_owned()];
        for ok in [
            "127.0.0.1:8080",
            "hostel.example.com",
            "hostel.example.com:8443",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for bad in ["127.0.0.1:8081", "evil.example", "evil.example:8080", ""] {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
        assert!(host_allowed("[::1]:8080", &["[::1]".to_owned()]));
        assert!(host_allowed("anything", &[]), "no list: no check");
    }

    #[test]
    fn example_parses_to_the_defaults() {
        assert_eq!(Config::from_toml(EXAMPLE), Ok(Config::default()));
    }

    #[test]
    fn the_engine_socket_follows_the_kind_unless_set() {
        let docker = Config::default();
        assert_eq!(docker.engine.socket(), DEFAULT_ENGINE_SOCKET);
        let incus = Config::from_toml("[engine]\nkind = \"incus\"\n").unwrap();
        assert_eq!(incus.engine.kind, EngineKind::Incus);
        assert_eq!(incus.engine.socket(), DEFAULT_INCUS_SOCKET);
        let set = Config::from_toml("[engine]\nkind = \"incus\"\nsocket = \"/x.sock\"\n").unwrap();
        assert_eq!(set.engine.socket(), "/x.sock");
        let err = Config::from_toml("[engine]\nkind = \"lxd\"\n").unwrap_err();
        assert!(err.to_string().contains("kind"), "{err}");
    }

    #[test]
    fn network_settings_are_checked() {
        let bad = |t: &str| Config::from_toml(t).unwrap_err().message;
        assert!(bad("[network]\ninterface_prefix = \"TooLongX\"").contains("interface_prefix"));
        assert!(bad("[network]\nsubnet_prefix = 30").contains("/29"));
        assert!(bad("[network]\nconnections_max = 10").contains("at least 64"));
        assert!(bad("[network]\nsubnet_prefix = 8").contains("subnet_prefix"));
        assert!(bad("[network]\npool = \"10.0.0.0/33\"").contains("pool"));
        assert!(bad("[defaults]\negress = \"some\"").contains("egress"));
        let ok =
            Config::from_toml("[network]\npool = \"10.50.0.0/20\"\nsubnet_prefix = 29").unwrap();
        assert_eq!(ok.network.pool.to_string(), "10.50.0.0/20");
    }

    #[test]
    fn accept_env_matches_names_and_prefixes() {
        let ssh = SshConfig::default();
        let table = [
            ("LANG", true),
            ("LC_ALL", true),
            ("LC_", true),
            ("LD_PRELOAD", false),
            ("PATH", false),
            ("LANGUAGE", false),
        ];
        for (name, ok) in table {
            assert_eq!(ssh.accepts_env(name), ok, "{name}");
        }
    }

    #[test]
    fn sizes_and_cpus_may_be_numbers() {
        let c = Config::from_toml("[defaults]\ncpus = 1.5\nmemory = 1073741824\ndisk = \"2G\"\n")
            .unwrap();
        assert_eq!(c.defaults.cpus, Cpus::millis(1500));
        assert_eq!(c.defaults.memory, ByteSize::gib(1));
        assert_eq!(c.defaults.disk, ByteSize::gib(2));
        let e = Config::from_toml("[defaults]\ncpus = -1\n").unwrap_err();
        assert!(e.message.contains("cpus"), "{}", e.message);
    }

    #[test]
    fn the_sections_are_the_files() {
        let t = toml::Table::try_from(Config::default()).unwrap();
        let keys: Vec<&str> = t.keys().map(String::as_str).collect();
        let mut sections = SECTIONS.to_vec();
        sections.sort_unstable();
        assert_eq!(keys, sections);
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(Config::from_toml(""), Ok(Config::default()));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = Config::from_toml("[engine]\nsockt = \"x\"\n").unwrap_err();
        assert!(
            err.message.contains("unknown field `sockt`"),
            "{}",
            err.message
        );
        let err = Config::from_toml("[defaults]\nmemory = \"lots\"\n").unwrap_err();
        assert!(err.message.contains("memory"), "{}", err.message);
        let err = Config::from_toml("[defaults]\npids = 2\n").unwrap_err();
        assert_eq!(err.message, "[defaults] pids 2: below the minimum of 16");
    }
}
