//! hostel's workspace and network specs in Incus's terms: an instance's `config` keys and
//! `devices`, a bridge network's `config`, and back. Pure: everything here is checked without
//! a daemon.
//!
//! Key spaces on Incus objects: a label `K` is `user.label.K`; what hostel records for itself
//! (the image reference, the network's hostel name) is `user.hostel.*`; the init's environment
//! is `environment.*`. Values that go into `raw.lxc` (the hostname, paths, addresses) are
//! checked first, so that no spec can add a line of its own to the container's configuration.

use super::build::{PROP_ENTRYPOINT, PROP_ENV};
use crate::RuntimeError;
use crate::types::{NetworkSpec, Privileges, SyscallFilter, WorkspaceSpec};
use hostel_core::{ByteSize, Cpus, Limits};
use ipnet::Ipv4Net;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Prefix of a label's key.
pub(super) const LABEL_PREFIX: &str = "user.label.";
/// The image reference an instance was made from.
pub(super) const KEY_IMAGE: &str = "user.hostel.image";
/// The hostel name of the network an instance is attached to, or of a network.
pub(super) const KEY_NETWORK: &str = "user.hostel.network";
/// An instance's hostname, for its `/etc/hosts`.
pub(super) const KEY_HOSTNAME: &str = "user.hostel.hostname";
/// Whether a network has no route out.
pub(super) const KEY_INTERNAL: &str = "user.hostel.internal";

/// The CFS period Incus's `limits.cpu.allowance` is given in.
const CPU_PERIOD_MS: u32 = 100;

/// "Operation not permitted".
const EPERM: u32 = 1;
/// "Not implemented": what a call gets that programs should fall back from.
const ENOSYS: u32 = 38;

/// The `clone` flags that make new namespaces, one by one.
const CLONE_NEW_NAMESPACES: [u64; 8] = [
    0x0000_0080, // CLONE_NEWTIME
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

/// The `personality` flag bits (above the persona's low byte) a filter can refuse.
const PERSONALITY_FLAGS: u32 = 0xffff_ff00;

fn invalid(what: &str, value: &str) -> RuntimeError {
    RuntimeError::Unsupported(format!(
        "{what} {value:?} cannot be given to Incus: only letters, digits and ./_- are allowed"
    ))
}

/// Checks a value that goes into `raw.lxc`: a path or a name, never a second line.
fn raw_safe<'a>(what: &str, value: &'a str) -> Result<&'a str, RuntimeError> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"./_-".contains(&b));
    if ok {
        Ok(value)
    } else {
        Err(invalid(what, value))
    }
}

/// Where a workspace's network puts it: its address on the subnet (the second host; the first
/// is the bridge's) and the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Address {
    pub(super) host: Ipv4Net,
    pub(super) gateway: std::net::Ipv4Addr,
}

impl Address {
    /// The addresses on a network whose bridge holds `gateway` (`10.0.0.1/28`).
    pub(super) fn on(gateway: &str) -> Option<Address> {
        let net: Ipv4Net = gateway.parse().ok()?;
        let host = net.trunc().hosts().nth(1)?;
        Some(Address {
            host: Ipv4Net::new(host, net.prefix_len()).ok()?,
            gateway: net.addr(),
        })
    }
}

/// The `security.syscalls.deny` lines for a filter: each refused call, the refused `ioctl`
/// requests (on the 32 bits the kernel reads), and, without new namespaces, `clone` with any
/// namespace flag and `clone3` as "not implemented" (its flags are in memory no filter reads).
/// `personality` is refused for every flag bit no allowed value has; the filter cannot also
/// exempt the query (all ones), so on Incus that is refused too.
pub(super) fn syscall_deny(filter: &SyscallFilter) -> String {
    let mut lines: Vec<String> = filter
        .denied
        .iter()
        .filter(|name| name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .map(|name| format!("{name} errno {EPERM}"))
        .collect();
    lines.extend(
        filter
            .unimplemented
            .iter()
            .filter(|name| name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .map(|name| format!("{name} errno {ENOSYS}")),
    );
    lines.extend(filter.denied_ioctls.iter().map(|request| {
        format!("ioctl errno {EPERM} [1,{request:#x},SCMP_CMP_MASKED_EQ,0xffffffff]")
    }));
    if !filter.new_namespaces {
        lines.extend(
            CLONE_NEW_NAMESPACES.iter().map(|flag| {
                format!("clone errno {EPERM} [0,{flag:#x},SCMP_CMP_MASKED_EQ,{flag:#x}]")
            }),
        );
        lines.push(format!("clone3 errno {ENOSYS}"));
    }
    if !filter.personalities.is_empty() {
        let allowed = filter
            .personalities
            .iter()
            .filter(|p| **p != u32::MAX)
            .fold(0, |acc, p| acc | p);
        let refused = PERSONALITY_FLAGS & !allowed;
        lines.extend(
            (8..32)
                .map(|bit| 1u32 << bit)
                .filter(|b| refused & b != 0)
                .map(|b| format!("personality errno {EPERM} [0,{b:#x},SCMP_CMP_MASKED_EQ,{b:#x}]")),
        );
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// A disk I/O limit as a disk device's `limits.read` and `limits.write`: bytes a second, or
/// operations with `iops`.
pub(super) fn disk_limit(io: hostel_core::DiskIo) -> Option<String> {
    match io {
        hostel_core::DiskIo::Unlimited => None,
        hostel_core::DiskIo::Bytes(b) => Some(b.as_u64().to_string()),
        hostel_core::DiskIo::Ops(n) => Some(format!("{n}iops")),
    }
}

/// A CPU limit as Incus's allowance (`50ms/100ms`: half a CPU).
pub(super) fn cpu_allowance(cpus: Cpus) -> String {
    let ms = (u64::from(cpus.as_millis()) * u64::from(CPU_PERIOD_MS) / 1000).max(1);
    format!("{ms}ms/{CPU_PERIOD_MS}ms")
}

/// The limits an instance's config holds, if it holds them all.
pub(super) fn limits_of(config: &Map<String, Value>) -> Option<Limits> {
    let get = |k: &str| config.get(k).and_then(Value::as_str);
    let (quota, period) = get("limits.cpu.allowance")?.split_once('/')?;
    let quota: u64 = quota.strip_suffix("ms")?.parse().ok()?;
    let period: u64 = period.strip_suffix("ms")?.parse().ok()?;
    let millis = u32::try_from(quota * 1000 / period.max(1)).ok()?;
    Some(Limits {
        cpus: Cpus::millis(millis),
        memory: ByteSize::bytes(get("limits.memory")?.parse().ok()?),
        pids: get("limits.processes")?.parse().ok()?,
    })
}

/// The config keys of these limits (memory without swap, as on Docker).
pub(super) fn limits_config(limits: &Limits) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "limits.cpu.allowance".into(),
        cpu_allowance(limits.cpus).into(),
    );
    m.insert(
        "limits.memory".into(),
        limits.memory.as_u64().to_string().into(),
    );
    m.insert("limits.memory.swap".into(), "false".into());
    m.insert("limits.processes".into(), limits.pids.to_string().into());
    m
}

/// The labels among an object's config keys.
pub(super) fn labels_of(config: &Map<String, Value>) -> BTreeMap<String, String> {
    config
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix(LABEL_PREFIX)?.to_owned(),
                v.as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Whether an object's config carries all these labels.
pub(super) fn has_labels(config: &Map<String, Value>, labels: &[(String, String)]) -> bool {
    labels.iter().all(|(k, v)| {
        config
            .get(&format!("{LABEL_PREFIX}{k}"))
            .and_then(Value::as_str)
            == Some(v.as_str())
    })
}

/// An instance's `raw.lxc`: its hostname, its output log bound, paths hidden (a read-only
/// empty tmpfs over a folder, `/dev/null` over a file), the address on its network, and, for
/// [`Privileges::InitOnly`], no process gaining privileges (setuid binaries included).
pub(super) fn raw_lxc(
    spec: &WorkspaceSpec,
    address: Option<Address>,
    entrypoint: Option<&[String]>,
    is_dir: impl Fn(&str) -> bool,
) -> Result<String, RuntimeError> {
    let mut lines = vec![
        format!(
            "lxc.uts.name = {}",
            raw_safe("the hostname", &spec.hostname)?
        ),
        format!("lxc.console.size = {}", spec.output_log_max.max(4096)),
    ];
    // Raw and packet sockets let root inside forge frames on its bridge; Docker drops the
    // capability too. The containers of a workspace that runs its own engine get it by
    // default, so there it stays (the host's filter drops forged source addresses).
    if spec.privileges != Privileges::Nesting {
        lines.push("lxc.cap.drop = net_raw".to_owned());
    }
    if let Some(argv) = entrypoint.filter(|a| !a.is_empty()) {
        let words = argv
            .iter()
            .map(|a| raw_safe("the image's entrypoint", a))
            .collect::<Result<Vec<_>, _>>()?;
        lines.push(format!("lxc.init.cmd = {}", words.join(" ")));
    }
    for path in &spec.hidden_paths {
        let inside = raw_safe("the hidden path", path)?
            .strip_prefix('/')
            .filter(|p| !p.is_empty() && !p.split('/').any(|part| part == ".."))
            .ok_or_else(|| invalid("the hidden path", path))?;
        lines.push(if is_dir(path) {
            format!(
                "lxc.mount.entry = tmpfs {inside} tmpfs ro,nosuid,nodev,noexec,size=4k,optional 0 0"
            )
        } else {
            format!("lxc.mount.entry = /dev/null {inside} none bind,ro,optional 0 0")
        });
    }
    if let Some(a) = address {
        lines.push(format!("lxc.net.0.ipv4.address = {}", a.host));
        lines.push(format!("lxc.net.0.ipv4.gateway = {}", a.gateway));
    }
    if spec.privileges == Privileges::InitOnly {
        lines.push("lxc.no_new_privs = 1".into());
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Ok(text)
}

/// The body of `POST /1.0/instances` for a spec, on storage pool `pool`, attached to the
/// Incus network `bridge` (with the hostel name of `spec.network`) at `address`, from an
/// image with these properties (its `ENV` and `ENTRYPOINT`, see [`super::build`]).
pub(super) fn instance_body(
    spec: &WorkspaceSpec,
    pool: &str,
    network: Option<(&str, Address)>,
    image: &BTreeMap<String, String>,
    is_dir: impl Fn(&str) -> bool,
) -> Result<Value, RuntimeError> {
    let entrypoint: Option<Vec<String>> = image
        .get(PROP_ENTRYPOINT)
        .map(|e| serde_json::from_str(e))
        .transpose()
        .map_err(|_| {
            RuntimeError::Unsupported(format!("the image {} has a bad entrypoint", spec.image))
        })?;
    let mut config = limits_config(&spec.limits);
    config.insert("security.idmap.isolated".into(), "true".into());
    if spec.privileges == Privileges::Nesting {
        config.insert("security.nesting".into(), "true".into());
    }
    config.insert(
        "security.syscalls.deny".into(),
        syscall_deny(&spec.syscalls).into(),
    );
    config.insert(
        "raw.lxc".into(),
        raw_lxc(spec, network.map(|(_, a)| a), entrypoint.as_deref(), is_dir)?.into(),
    );
    config.insert(KEY_IMAGE.into(), spec.image.clone().into());
    config.insert(KEY_HOSTNAME.into(), spec.hostname.clone().into());
    if let Some(name) = &spec.network {
        config.insert(KEY_NETWORK.into(), name.clone().into());
    }
    for (k, v) in image {
        if let Some(name) = k.strip_prefix(PROP_ENV) {
            config.insert(format!("environment.{name}"), v.clone().into());
        }
    }
    for entry in &spec.env {
        let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
        config.insert(format!("environment.{k}"), v.into());
    }
    for (k, v) in &spec.labels {
        config.insert(format!("{LABEL_PREFIX}{k}"), v.clone().into());
    }
    let mut root = json!({"type": "disk", "path": "/", "pool": pool});
    if let (Some(max), Some(map)) = (spec.layer_max, root.as_object_mut()) {
        map.insert("size".into(), max.to_string().into());
    }
    let limited = |mut device: Value| {
        if let (Some(rate), Some(map)) = (disk_limit(spec.disk_io), device.as_object_mut()) {
            map.insert("limits.read".into(), rate.clone().into());
            map.insert("limits.write".into(), rate.into());
        }
        device
    };
    let mut devices = Map::new();
    devices.insert("root".into(), limited(root));
    for (i, m) in spec.mounts.iter().enumerate() {
        // A home is id-shifted: a file the tenant's uid 1000 makes is uid 1000's on the host
        // too, and the per-workspace id range stays out of it. A read-only mount is not: its
        // files keep the host's owners (seen as nobody inside) and are read by their mode.
        let device = if m.read_only {
            json!({"type": "disk", "source": m.source, "path": m.target, "readonly": "true"})
        } else {
            json!({"type": "disk", "source": m.source, "path": m.target, "shift": "true"})
        };
        devices.insert(format!("mount{i}"), limited(device));
    }
    // Every GPU as one device, or the first N by their card ids.
    match spec.gpus {
        hostel_core::Gpus::None => {}
        hostel_core::Gpus::All => {
            devices.insert("gpu".into(), json!({"type": "gpu", "gputype": "physical"}));
        }
        hostel_core::Gpus::Count(n) => {
            for i in 0..n {
                devices.insert(
                    format!("gpu{i}"),
                    json!({"type": "gpu", "gputype": "physical", "id": i.to_string()}),
                );
            }
        }
    }
    if let Some((bridge, _)) = network {
        devices.insert(
            "eth0".into(),
            json!({"type": "nic", "network": bridge, "name": "eth0"}),
        );
    }
    Ok(json!({
        "name": spec.name,
        "type": "container",
        "profiles": [],
        "source": {"type": "image", "alias": spec.image},
        "config": config,
        "devices": devices,
    }))
}

/// The body of `POST /1.0/networks` for a spec: a bridge named as the spec's host interface,
/// its gateway the subnet's first host, and nothing of Incus's own on it (no NAT, firewall
/// rules, DHCP, DNS or IPv6: the host's packet filter is hostel's, and each workspace's address
/// is set when it starts).
pub(super) fn network_body(spec: &NetworkSpec) -> Result<Value, RuntimeError> {
    let subnet: Ipv4Net = spec.subnet.parse().map_err(|_| {
        RuntimeError::Unsupported(format!("{:?} is not an IPv4 subnet", spec.subnet))
    })?;
    let gateway = subnet
        .hosts()
        .next()
        .ok_or_else(|| RuntimeError::Unsupported(format!("{subnet} has no room for a host")))?;
    let mut config = Map::new();
    for (k, v) in [
        ("ipv4.address", format!("{gateway}/{}", subnet.prefix_len())),
        ("ipv4.nat", "false".into()),
        ("ipv4.firewall", "false".into()),
        ("ipv4.dhcp", "false".into()),
        ("ipv6.address", "none".into()),
        ("dns.mode", "none".into()),
        (KEY_NETWORK, spec.name.clone()),
        (KEY_INTERNAL, spec.internal.to_string()),
    ] {
        config.insert(k.into(), v.into());
    }
    for (k, v) in &spec.labels {
        config.insert(format!("{LABEL_PREFIX}{k}"), v.clone().into());
    }
    Ok(json!({
        "name": raw_safe("the bridge name", &spec.bridge)?,
        "type": "bridge",
        "description": spec.name,
        "config": config,
    }))
}

/// The subnet of a network's `ipv4.address` (`10.0.0.1/28` is `10.0.0.0/28`).
pub(super) fn subnet_of(address: &str) -> Option<Ipv4Net> {
    address.parse::<Ipv4Net>().ok().map(|n| n.trunc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Mount;

    fn spec() -> WorkspaceSpec {
        WorkspaceSpec {
            name: "hostel-alice".into(),
            image: "hostel-workspace:abc".into(),
            hostname: "alice".into(),
            env: vec!["HOSTEL_TENANT=alice".into(), "EMPTY".into()],
            labels: BTreeMap::from([("io.hostel.tenant".into(), "alice".into())]),
            limits: Limits {
                cpus: Cpus::millis(1500),
                memory: ByteSize::mib(512),
                pids: 128,
            },
            mounts: vec![Mount {
                source: "/srv/homes/alice".into(),
                target: "/home/alice".into(),
                read_only: false,
            }],
            privileges: Privileges::Sudo,
            network: Some("hostel-alice".into()),
            output_log_max: 2 << 20,
            hidden_paths: vec!["/sys/fs/btrfs".into(), "/proc/kcore".into()],
            layer_max: Some(1 << 30),
            syscalls: SyscallFilter {
                denied: vec!["keyctl".into(), "bad name\nx".into()],
                denied_ioctls: vec![0x5000_940e],
                new_namespaces: false,
                personalities: vec![0, 8, 0x2_0000, 0xffff_ffff],
                unimplemented: vec!["add_key".into()],
            },
            gpus: hostel_core::Gpus::None,
            disk_io: hostel_core::DiskIo::Unlimited,
        }
    }

    #[test]
    fn limits_round_trip_through_the_config() {
        let limits = spec().limits;
        let config = limits_config(&limits);
        assert_eq!(config["limits.cpu.allowance"], "150ms/100ms");
        assert_eq!(config["limits.memory"], "536870912");
        assert_eq!(config["limits.memory.swap"], "false");
        assert_eq!(limits_of(&config), Some(limits));
        assert_eq!(cpu_allowance(Cpus::millis(1)), "1ms/100ms");
        assert_eq!(limits_of(&Map::new()), None);
    }

    #[test]
    fn a_spec_becomes_an_instance() {
        let addr = Address::on("10.214.0.17/28").unwrap();
        assert_eq!(addr.host.to_string(), "10.214.0.18/28");
        assert_eq!(addr.gateway.to_string(), "10.214.0.17");
        let image = BTreeMap::from([
            ("hostel.env.LANG".to_owned(), "C.UTF-8".to_owned()),
            (
                "hostel.entrypoint".to_owned(),
                r#"["/usr/bin/tini","--","/usr/local/sbin/hostel-init"]"#.to_owned(),
            ),
        ]);
        let body = instance_body(&spec(), "hostel", Some(("hbr0", addr)), &image, |p| {
            p.starts_with("/sys")
        })
        .unwrap();
        let config = body["config"].as_object().unwrap();
        assert_eq!(body["source"]["alias"], "hostel-workspace:abc");
        assert_eq!(body["profiles"], json!([]));
        assert_eq!(config["environment.HOSTEL_TENANT"], "alice");
        assert_eq!(config["environment.EMPTY"], "");
        assert_eq!(config["environment.LANG"], "C.UTF-8");
        assert_eq!(config["user.label.io.hostel.tenant"], "alice");
        assert_eq!(config[KEY_IMAGE], "hostel-workspace:abc");
        assert_eq!(config[KEY_NETWORK], "hostel-alice");
        assert_eq!(config["security.idmap.isolated"], "true");
        assert_eq!(
            labels_of(config),
            BTreeMap::from([("io.hostel.tenant".into(), "alice".into())])
        );
        let raw = config["raw.lxc"].as_str().unwrap();
        assert!(raw.contains("lxc.uts.name = alice\n"), "{raw}");
        assert!(
            raw.contains("lxc.init.cmd = /usr/bin/tini -- /usr/local/sbin/hostel-init\n"),
            "{raw}"
        );
        assert!(
            raw.contains("lxc.net.0.ipv4.address = 10.214.0.18/28\n"),
            "{raw}"
        );
        assert!(raw.contains("tmpfs sys/fs/btrfs tmpfs ro,"), "{raw}");
        assert!(raw.contains("/dev/null proc/kcore none bind,ro"), "{raw}");
        assert!(!raw.contains("no_new_privs"), "{raw}");
        let devices = &body["devices"];
        assert_eq!(devices["root"]["size"], "1073741824");
        assert_eq!(devices["mount0"]["shift"], "true");
        assert_eq!(devices["mount0"]["path"], "/home/alice");
        assert_eq!(devices["eth0"]["network"], "hbr0");
        assert!(devices.get("gpu").is_none(), "no GPU unless asked");

        // GPUs: every one as one device, or the first N by card id.
        for (gpus, want) in [
            (hostel_core::Gpus::All, vec![("gpu", None)]),
            (
                hostel_core::Gpus::Count(2),
                vec![("gpu0", Some("0")), ("gpu1", Some("1"))],
            ),
        ] {
            let body = instance_body(
                &WorkspaceSpec { gpus, ..spec() },
                "hostel",
                None,
                &BTreeMap::new(),
                |_| false,
            )
            .unwrap();
            for (name, id) in want {
                let d = &body["devices"][name];
                assert_eq!(
                    (d["type"].as_str(), d["gputype"].as_str()),
                    (Some("gpu"), Some("physical")),
                    "{gpus}"
                );
                assert_eq!(d["id"].as_str(), id, "{gpus}");
            }
        }

        let mut init_only = spec();
        init_only.privileges = Privileges::InitOnly;
        let body = instance_body(&init_only, "hostel", None, &BTreeMap::new(), |_| false).unwrap();
        assert!(
            body["config"]["raw.lxc"]
                .as_str()
                .unwrap()
                .contains("lxc.no_new_privs = 1")
        );
        assert!(body["devices"].get("eth0").is_none());
    }

    #[test]
    fn a_disk_io_limit_is_on_every_disk_both_ways() {
        let body = |disk_io| {
            let s = WorkspaceSpec { disk_io, ..spec() };
            instance_body(&s, "hostel", None, &BTreeMap::new(), |_| false).unwrap()["devices"]
                .clone()
        };
        let none = body(hostel_core::DiskIo::Unlimited);
        assert!(none["root"].get("limits.read").is_none());
        assert!(none["mount0"].get("limits.write").is_none());
        let ops = body(hostel_core::DiskIo::Ops(500));
        for device in ["root", "mount0"] {
            assert_eq!(ops[device]["limits.read"], "500iops", "{device}");
            assert_eq!(ops[device]["limits.write"], "500iops", "{device}");
        }
        let bytes = body(hostel_core::DiskIo::Bytes(ByteSize::mib(50)));
        assert_eq!(bytes["root"]["limits.write"], (50u64 << 20).to_string());
    }

    #[test]
    fn only_a_workspace_that_runs_containers_nests_and_keeps_raw_sockets() {
        let config = |privileges| {
            let s = WorkspaceSpec {
                privileges,
                ..spec()
            };
            instance_body(&s, "hostel", None, &BTreeMap::new(), |_| false).unwrap()["config"]
                .clone()
        };
        let sudo = config(Privileges::Sudo);
        assert!(sudo.get("security.nesting").is_none());
        assert!(
            sudo["raw.lxc"]
                .as_str()
                .unwrap()
                .contains("lxc.cap.drop = net_raw")
        );
        let nesting = config(Privileges::Nesting);
        assert_eq!(nesting["security.nesting"], "true");
        assert!(!nesting["raw.lxc"].as_str().unwrap().contains("net_raw"));
        assert_eq!(nesting["security.idmap.isolated"], "true");
    }

    #[test]
    fn nothing_in_a_spec_adds_a_line_to_raw_lxc() {
        for hostname in ["a\nlxc.apparmor.profile = unconfined", "", "a b"] {
            let mut s = spec();
            s.hostname = hostname.into();
            assert!(
                instance_body(&s, "p", None, &BTreeMap::new(), |_| false).is_err(),
                "{hostname:?}"
            );
        }
        for path in ["/x\nlxc.cap.keep=", "relative", "/", "/a/../../etc"] {
            let mut s = spec();
            s.hidden_paths = vec![path.into()];
            assert!(
                instance_body(&s, "p", None, &BTreeMap::new(), |_| false).is_err(),
                "{path:?}"
            );
        }
        for entry in [
            r#"["/bin/sh", "-c", "x\nlxc.cap.keep="]"#,
            r#"["a b"]"#,
            "not json",
        ] {
            let image = BTreeMap::from([(PROP_ENTRYPOINT.to_owned(), entry.to_owned())]);
            assert!(
                instance_body(&spec(), "p", None, &image, |_| false).is_err(),
                "{entry}"
            );
        }
    }

    #[test]
    fn the_filter_becomes_deny_lines() {
        let text = syscall_deny(&spec().syscalls);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.contains(&"keyctl errno 1"));
        assert!(lines.contains(&"add_key errno 38"));
        assert!(
            !text.contains("bad name"),
            "a name that is not one is left out"
        );
        assert!(lines.contains(&"ioctl errno 1 [1,0x5000940e,SCMP_CMP_MASKED_EQ,0xffffffff]"));
        assert!(lines.contains(&"clone errno 1 [0,0x10000000,SCMP_CMP_MASKED_EQ,0x10000000]"));
        assert!(lines.contains(&"clone3 errno 38"));
        // ADDR_NO_RANDOMIZE is refused; UNAME26, which an allowed value has, is not.
        assert!(lines.contains(&"personality errno 1 [0,0x40000,SCMP_CMP_MASKED_EQ,0x40000]"));
        assert!(!text.contains("[0,0x20000,SCMP_CMP_MASKED_EQ,0x20000]\npersonality"));
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("personality") && l.contains("0x20000,"))
        );

        let open = SyscallFilter {
            new_namespaces: true,
            ..SyscallFilter::default()
        };
        assert_eq!(syscall_deny(&open), "\n");
    }

    #[test]
    fn a_network_spec_becomes_a_bridge_of_hostels() {
        let spec = NetworkSpec {
            name: "hostel-alice".into(),
            bridge: "hba1c2".into(),
            subnet: "10.214.0.16/28".into(),
            internal: true,
            labels: BTreeMap::from([("io.hostel.managed".into(), "1".into())]),
        };
        let body = network_body(&spec).unwrap();
        assert_eq!(body["name"], "hba1c2");
        let c = &body["config"];
        assert_eq!(c["ipv4.address"], "10.214.0.17/28");
        for (k, v) in [
            ("ipv4.nat", "false"),
            ("ipv4.firewall", "false"),
            ("ipv4.dhcp", "false"),
            ("ipv6.address", "none"),
            ("dns.mode", "none"),
            (KEY_INTERNAL, "true"),
            (KEY_NETWORK, "hostel-alice"),
            ("user.label.io.hostel.managed", "1"),
        ] {
            assert_eq!(c[k], v, "{k}");
        }
        assert_eq!(
            subnet_of("10.214.0.17/28").unwrap().to_string(),
            "10.214.0.16/28"
        );
        let mut bad = spec.clone();
        bad.subnet = "nope".into();
        assert!(network_body(&bad).is_err());
    }
}
