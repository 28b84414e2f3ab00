//! The container a tenant's workspace is: built from the tenant's record, the same every time,
//! so a container made from older settings can be recognised (its `io.hostel.spec` label differs)
//! and replaced at its next start.

use hostel_core::network::Egress;
use hostel_core::{Quota, TenantName};
use hostel_runtime::{
    IdMapping, LABEL_INSTANCE, LABEL_MANAGED, LABEL_SPEC, LABEL_TENANT, Mount, Privileges,
    SyscallFilter, WorkspaceSpec,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The label that says which egress a workspace was made for.
pub const LABEL_EGRESS: &str = "io.hostel.egress";

/// The engine name of a tenant's workspace (and of its network).
pub fn container_name(tenant: &TenantName) -> String {
    format!("hostel-{tenant}")
}

/// What a spec takes from this hostel and its engine rather than from the tenant.
#[derive(Debug, Clone, Copy)]
pub struct Host<'a> {
    /// This instance's id (a label on everything it makes).
    pub instance: &'a str,
    /// `[engine] labels`.
    pub labels: &'a BTreeMap<String, String>,
    /// How the engine maps user ids: where root inside is not root on the host, the tenant
    /// gets sudo; where each workspace has ids of its own, it is a system with an init of its
    /// own, which mounts and makes namespaces.
    pub ids: IdMapping,
    /// Where the engine can limit a workspace's writable layer: what the limit counts besides
    /// the tenant's own writes. The image's size where it counts the whole root filesystem (a
    /// container's filesystem starts as a snapshot of its image); 0 where it counts only what
    /// the workspace writes.
    pub layer_base: Option<u64>,
    /// The shared datasets the tenant sees: each name's host folder, mounted read-only at
    /// `/shared/<name>`.
    pub shares: &'a [(hostel_core::share::ShareName, String)],
    /// Whether the tenant's image runs containers of its own (its
    /// [`NESTING_LABEL`](hostel_core::NESTING_LABEL)), on an engine that allows it: root inside
    /// gets [`Privileges::Nesting`].
    pub nesting: bool,
}

/// The most of a workspace's own output (its init's stdout and stderr) kept on the host: root
/// inside can write there (`/proc/1/fd/1`), outside the home and its quota.
pub const OUTPUT_LOG_MAX: u64 = 2 << 20;

/// Paths a workspace must not see: btrfs's sysfs shows every subvolume's quota group, so
/// every tenant's disk use.
pub const HIDDEN_PATHS: &[&str] = &["/sys/fs/btrfs"];

/// System calls no workspace may make, whatever its capabilities: those that reach the host's
/// kernel state (modules, clocks, swap, accounting, keyrings), mount and namespace changes,
/// handles to files by inode (`open_by_handle_at` once read the host's files), and the large
/// kernel surfaces a tenant does not need (`bpf`, `perf_event_open`, `userfaultfd`, io_uring).
pub const DENIED_SYSCALLS: &[&str] = &[
    "_sysctl",
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "syslog",
    "sysfs",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
];

/// The btrfs `ioctl` requests that make a subvolume or a snapshot (`SNAP_CREATE`,
/// `SUBVOL_CREATE` and their v2 forms). They need only write permission on a folder, and a new
/// subvolume counts against a quota group of its own, not the tenant's: a tenant escaped its
/// quota with one, in its home and in the writable layer.
pub const DENIED_IOCTLS: &[u32] = &[0x5000_9401, 0x5000_940e, 0x5000_9417, 0x5000_9418];

/// The `personality` values a workspace may set: Linux (0), 32-bit Linux (8), both with
/// `UNAME26`, and the query (all ones). The others turn off address randomisation and the like.
pub const PERSONALITIES: &[u32] = &[0, 8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// What a system container's init (systemd) and the container engines a tenant runs inside
/// need of [`DENIED_SYSCALLS`]: mounts and namespaces. Allowed only where each workspace has
/// an id range of its own ([`IdMapping::Isolated`]): the kernel then lets them act on the
/// workspace's own mounts and namespaces only, and never on a filesystem of the host's.
pub const SYSTEM_CONTAINER_CALLS: &[&str] = &[
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "mount",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "pivot_root",
    "setns",
    "umount2",
    "unshare",
];

/// The kernel keyring calls of [`DENIED_SYSCALLS`]. A container runtime (runc) gives each
/// container a session keyring of its own unless the kernel has none: where a workspace runs
/// containers, these are answered "not implemented" instead of "not permitted".
pub const KEYRING_CALLS: &[&str] = &["add_key", "keyctl", "request_key"];

/// The system calls a workspace may make on an engine that maps ids this way, and whether it
/// runs containers of its own.
pub fn syscall_filter(ids: IdMapping, nesting: bool) -> SyscallFilter {
    let system = ids == IdMapping::Isolated;
    let absent = |s: &str| nesting && KEYRING_CALLS.contains(&s);
    SyscallFilter {
        denied: DENIED_SYSCALLS
            .iter()
            .filter(|s| !(absent(s) || system && SYSTEM_CONTAINER_CALLS.contains(s)))
            .map(|s| (*s).to_owned())
            .collect(),
        unimplemented: DENIED_SYSCALLS
            .iter()
            .filter(|s| absent(s))
            .map(|s| (*s).to_owned())
            .collect(),
        denied_ioctls: DENIED_IOCTLS.to_vec(),
        new_namespaces: system,
        // A system container's services lock their personality (systemd's LockPersonality=
        // asks for the current one, the query), and Incus's deny list cannot let the query
        // through while it refuses flags: there the persona is free. It changes the calling
        // process only, whose root inside is the tenant already.
        personalities: if system {
            Vec::new()
        } else {
            PERSONALITIES.to_vec()
        },
    }
}

/// The full container spec for a tenant.
pub fn workspace_spec(
    tenant: &TenantName,
    image: &str,
    quota: &Quota,
    home: &Path,
    egress: Egress,
    host: Host<'_>,
) -> WorkspaceSpec {
    let (instance, extra_labels) = (host.instance, host.labels);
    let userns = host.ids.confines_root();
    let mut spec = WorkspaceSpec {
        name: container_name(tenant),
        image: image.to_owned(),
        hostname: tenant.to_string(),
        env: vec![
            format!("HOSTEL_TENANT={tenant}"),
            "HOSTEL_UID=1000".to_owned(),
            format!("HOSTEL_SUDO={}", u8::from(userns)),
        ],
        labels: BTreeMap::new(),
        limits: quota.limits(),
        mounts: std::iter::once(Mount {
            source: home.display().to_string(),
            target: format!("/home/{tenant}"),
            read_only: false,
        })
        .chain(host.shares.iter().map(|(name, path)| Mount {
            source: path.clone(),
            target: name.target(),
            read_only: true,
        }))
        .collect(),
        // Without user namespaces, the tenant never becomes root: root inside would be root on
        // the host. With them, sudo makes the tenant root inside only.
        privileges: match (userns, host.nesting) {
            (true, true) => Privileges::Nesting,
            (true, false) => Privileges::Sudo,
            (false, _) => Privileges::InitOnly,
        },
        network: Some(container_name(tenant)),
        output_log_max: OUTPUT_LOG_MAX,
        hidden_paths: HIDDEN_PATHS.iter().map(|p| (*p).to_owned()).collect(),
        // The writable layer gets the tenant's disk quota too: what it writes outside the home
        // is bounded like what it writes inside.
        layer_max: host
            .layer_base
            .map(|base| base.saturating_add(quota.disk.as_u64())),
        syscalls: syscall_filter(host.ids, host.nesting && userns),
        gpus: quota.gpus,
        disk_io: quota.disk_io,
    };
    let mut labels = extra_labels.clone();
    labels.insert(LABEL_MANAGED.into(), "1".into());
    labels.insert(LABEL_TENANT.into(), tenant.to_string());
    labels.insert(LABEL_INSTANCE.into(), instance.to_owned());
    labels.insert(LABEL_EGRESS.into(), egress.to_string());
    labels.insert(LABEL_SPEC.into(), spec_hash(&spec, egress));
    spec.labels = labels;
    spec
}

/// A short hash of what cannot change on a live container (image, env, mounts, privileges);
/// limits are left out because they change live.
pub fn spec_hash(spec: &WorkspaceSpec, egress: Egress) -> String {
    let mut h = Sha256::new();
    for part in [
        &spec.image,
        &spec.hostname,
        spec.network.as_deref().unwrap_or_default(),
        egress.as_str(),
    ] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    h.update(spec.output_log_max.to_le_bytes());
    h.update(spec.layer_max.unwrap_or(0).to_le_bytes());
    let f = &spec.syscalls;
    h.update([u8::from(f.new_namespaces)]);
    for numbers in [&f.denied_ioctls, &f.personalities] {
        h.update(numbers.len().to_le_bytes());
        for n in numbers {
            h.update(n.to_le_bytes());
        }
    }
    h.update(spec.privileges.as_str().as_bytes());
    // Only GPUs add bytes: workspaces made before them stay current.
    if !spec.gpus.is_none() {
        h.update(format!("gpus={}\0", spec.gpus).as_bytes());
    }
    // Only a disk I/O limit adds bytes, for the same reason.
    if !spec.disk_io.is_unlimited() {
        h.update(format!("disk_io={}\0", spec.disk_io).as_bytes());
    }
    // Only calls answered "not implemented" add bytes: no workspace had them before nesting.
    for part in &f.unimplemented {
        h.update(format!("enosys={part}\0").as_bytes());
    }
    for part in spec.env.iter().chain(&spec.hidden_paths).chain(&f.denied) {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    for m in &spec.mounts {
        h.update(m.source.as_bytes());
        h.update(b"\0");
        h.update(m.target.as_bytes());
        h.update(b"\0");
        // Only read-only mounts add a byte: workspaces made before the flag stay current.
        if m.read_only {
            h.update(b"ro\0");
        }
    }
    let digest = hex::encode(h.finalize());
    digest.get(..16).unwrap_or(&digest).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostel_core::{ByteSize, Cpus};

    fn quota() -> Quota {
        Quota {
            cpus: Cpus::millis(1500),
            memory: ByteSize::mib(512),
            disk: ByteSize::gib(1),
            pids: 128,
            gpus: hostel_core::Gpus::None,
            disk_io: hostel_core::DiskIo::Unlimited,
        }
    }

    #[test]
    fn spec_is_hardened_labelled_and_mounts_only_the_home() {
        let t: TenantName = "alice".parse().unwrap();
        let s = workspace_spec(
            &t,
            "img:1",
            &quota(),
            Path::new("/srv/hostel/users/alice/home"),
            Egress::All,
            Host {
                instance: "inst",
                labels: &BTreeMap::new(),
                ids: IdMapping::Host,
                layer_base: None,
                shares: &[],
                nesting: false,
            },
        );
        assert_eq!(s.name, "hostel-alice");
        assert_eq!(s.hostname, "alice");
        assert_eq!(
            s.mounts,
            vec![Mount {
                source: "/srv/hostel/users/alice/home".into(),
                target: "/home/alice".into(),
                read_only: false,
            }]
        );
        assert_eq!(
            s.limits,
            hostel_core::Limits {
                cpus: Cpus::millis(1500),
                memory: ByteSize::mib(512),
                pids: 128
            }
        );
        assert_eq!(s.labels.get(LABEL_MANAGED).map(String::as_str), Some("1"));
        assert_eq!(
            s.labels.get(LABEL_TENANT).map(String::as_str),
            Some("alice")
        );
        assert_eq!(
            s.labels.get(LABEL_INSTANCE).map(String::as_str),
            Some("inst")
        );
        assert_eq!(s.privileges, Privileges::InitOnly);
        assert_eq!(s.network.as_deref(), Some("hostel-alice"));
        assert_eq!(s.labels.get(LABEL_EGRESS).map(String::as_str), Some("all"));
    }

    fn host(userns: bool, labels: &BTreeMap<String, String>) -> Host<'_> {
        Host {
            instance: "i",
            labels,
            ids: if userns {
                IdMapping::Shared { base: 100_000 }
            } else {
                IdMapping::Host
            },
            layer_base: None,
            shares: &[],
            nesting: false,
        }
    }

    #[test]
    fn a_system_container_may_mount_and_make_namespaces_and_nothing_more() {
        let app = syscall_filter(IdMapping::Shared { base: 100_000 }, false);
        assert_eq!(app, syscall_filter(IdMapping::Host, false));
        assert!(!app.new_namespaces);
        assert_eq!(app.denied.len(), DENIED_SYSCALLS.len());
        let system = syscall_filter(IdMapping::Isolated, false);
        assert!(system.new_namespaces);
        for call in SYSTEM_CONTAINER_CALLS {
            assert!(
                app.denied.iter().any(|d| d == call),
                "{call} is one of the denied"
            );
            assert!(!system.denied.iter().any(|d| d == call), "{call}");
        }
        for call in [
            "bpf",
            "keyctl",
            "kexec_load",
            "open_by_handle_at",
            "init_module",
        ] {
            assert!(system.denied.iter().any(|d| d == call), "{call}");
        }
        assert_eq!(system.denied_ioctls, app.denied_ioctls);
        assert!(system.personalities.is_empty() && !app.personalities.is_empty());
        assert!(system.unimplemented.is_empty() && app.unimplemented.is_empty());
    }

    #[test]
    fn a_workspace_that_runs_containers_has_no_keyrings_and_nothing_else_more() {
        let plain = syscall_filter(IdMapping::Isolated, false);
        let nesting = syscall_filter(IdMapping::Isolated, true);
        assert_eq!(nesting.unimplemented, KEYRING_CALLS);
        for call in KEYRING_CALLS {
            assert!(plain.denied.iter().any(|d| d == call), "{call}");
            assert!(!nesting.denied.iter().any(|d| d == call), "{call}");
        }
        assert_eq!(
            nesting.denied.len() + KEYRING_CALLS.len(),
            plain.denied.len(),
            "only the keyring calls move"
        );
        assert_eq!(
            (&nesting.denied_ioctls, nesting.new_namespaces),
            (&plain.denied_ioctls, plain.new_namespaces)
        );

        let t: TenantName = "alice".parse().unwrap();
        let none = BTreeMap::new();
        let isolated = Host {
            ids: IdMapping::Isolated,
            ..host(true, &none)
        };
        let nested = Host {
            nesting: true,
            ..isolated
        };
        let home = Path::new("/h");
        let a = workspace_spec(&t, "img:1", &quota(), home, Egress::All, isolated);
        let b = workspace_spec(&t, "img:1", &quota(), home, Egress::All, nested);
        assert_eq!(
            (a.privileges, b.privileges),
            (Privileges::Sudo, Privileges::Nesting)
        );
        assert_eq!(b.syscalls, nesting);
        assert_ne!(a.labels.get(LABEL_SPEC), b.labels.get(LABEL_SPEC));
        // Without user namespaces nothing nests: root inside would be the host's.
        let host_ids = Host {
            nesting: true,
            ..host(false, &none)
        };
        let c = workspace_spec(&t, "img:1", &quota(), home, Egress::All, host_ids);
        assert_eq!(c.privileges, Privileges::InitOnly);
        assert!(c.syscalls.unimplemented.is_empty());
    }

    /// Regression (#12): `dd` to `/tmp` grew the host's disk past the tenant's quota: the
    /// writable layer had no limit. Where the engine can limit it, it gets the disk quota.
    #[test]
    fn issue_12_the_writable_layer_gets_the_disk_quota_where_the_engine_can() {
        let t: TenantName = "alice".parse().unwrap();
        let none = BTreeMap::new();
        let limited = Host {
            layer_base: Some(600 << 20),
            shares: &[],
            ..host(true, &none)
        };
        let q = quota();
        let s = workspace_spec(&t, "img:1", &q, Path::new("/h"), Egress::All, limited);
        assert_eq!(s.layer_max, Some((600 << 20) + q.disk.as_u64()));
        let s2 = workspace_spec(
            &t,
            "img:1",
            &q,
            Path::new("/h"),
            Egress::All,
            host(true, &none),
        );
        assert_eq!(s2.layer_max, None);
        assert_ne!(
            spec_hash(&s, Egress::All),
            spec_hash(&s2, Egress::All),
            "a limit set later re-creates the workspace"
        );
        assert_eq!(s.output_log_max, OUTPUT_LOG_MAX);
        assert_eq!(s.hidden_paths, ["/sys/fs/btrfs"]);
        assert!(s.syscalls.denied.iter().any(|c| c == "io_uring_setup"));
        assert!(s.syscalls.denied_ioctls.contains(&0x5000_940e));
        assert!(!s.syscalls.new_namespaces);
    }

    #[test]
    fn spec_hash_ignores_limits_but_not_image_or_egress() {
        let t: TenantName = "alice".parse().unwrap();
        let home = Path::new("/h");
        let none = BTreeMap::new();
        let a = workspace_spec(&t, "img:1", &quota(), home, Egress::All, host(false, &none));
        let b = workspace_spec(
            &t,
            "img:1",
            &Quota {
                pids: 999,
                ..quota()
            },
            home,
            Egress::All,
            host(false, &none),
        );
        let c = workspace_spec(&t, "img:2", &quota(), home, Egress::All, host(false, &none));
        let d = workspace_spec(
            &t,
            "img:1",
            &quota(),
            home,
            Egress::None,
            host(false, &none),
        );
        assert_eq!(a.labels.get(LABEL_SPEC), b.labels.get(LABEL_SPEC));
        assert_ne!(a.labels.get(LABEL_SPEC), c.labels.get(LABEL_SPEC));
        assert_ne!(a.labels.get(LABEL_SPEC), d.labels.get(LABEL_SPEC));
        let e = workspace_spec(&t, "img:1", &quota(), home, Egress::All, host(true, &none));
        assert_ne!(a.labels.get(LABEL_SPEC), e.labels.get(LABEL_SPEC));
        assert_eq!(
            (a.privileges, e.privileges),
            (Privileges::InitOnly, Privileges::Sudo),
            "sudo only with user namespaces"
        );
        assert!(e.env.contains(&"HOSTEL_SUDO=1".to_owned()));
    }
}
