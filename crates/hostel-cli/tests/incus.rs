//! Tenants on the second engine, Incus, end to end with the real daemon (`scripts/incus`) and
//! the workspace image `scripts/test` builds on it: each workspace is a system container
//! booted by systemd and has an id range of its own,
//! the tenant is uid 1000 with sudo, its files are uid 1000's on the host, the packet filter
//! keeps tenants apart and off the host on Incus's bridges too, the SSH gateway serves them,
//! and a home outlives its workspace.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hostel_testkit::TestRun;

const BIN: &str = env!("CARGO_BIN_EXE_hostel");

/// The first line of `/proc/self/uid_map` inside: (inside, host, count).
fn uid_map(t: &TestRun, tenant: &str) -> (u64, u64, u64) {
    let out = t.sh(tenant, "cat /proc/self/uid_map").ok().stdout;
    let n: Vec<u64> = out
        .split_whitespace()
        .take(3)
        .map(|w| w.parse().unwrap())
        .collect();
    (n[0], n[1], n[2])
}

#[test]
fn incus_tenants_get_workspaces_of_their_own() {
    let t = TestRun::incus(BIN);
    let a = t.create_tenant("a", &["--disk", "1G"]);
    let b = t.create_tenant("b", &["--disk", "1G"]);

    // The tenant is uid 1000 with sudo, root inside is nobody on the host, and each workspace
    // has ids of its own: root in one is not root in the other.
    let who = t
        .sh(&a, "id -un; id -u; sudo -n id -u; hostname")
        .ok()
        .stdout;
    assert_eq!(who, format!("{a}\n1000\n0\n{a}\n"));
    // A system container: systemd is its init, and it boots with nothing failed (its services
    // lock their personality, set up their own namespaces and mounts).
    let system = t
        .sh(
            &a,
            "cat /proc/1/comm; systemctl is-system-running --wait; systemctl --failed --plain --no-legend | wc -l",
        )
        .ok()
        .stdout;
    assert_eq!(system, "systemd\nrunning\n0\n");
    let (ma, mb) = (uid_map(&t, &a), uid_map(&t, &b));
    assert_eq!((ma.0, ma.2, mb.0, mb.2), (0, 65536, 0, 65536));
    assert!(ma.1 >= 65536 && mb.1 >= 65536, "{ma:?} {mb:?}");
    assert!(
        ma.1.abs_diff(mb.1) >= 65536,
        "ranges overlap: {ma:?} {mb:?}"
    );

    // The home is mounted id-shifted: the tenant's file is uid 1000's on the host.
    t.sh(&a, "echo kept > ~/note").ok();
    let note = t.home(&a).join("note");
    assert_eq!(std::fs::read_to_string(&note).unwrap(), "kept\n");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&note).unwrap().uid(), 1000);

    // The btrfs subvolume requests stay refused, for root inside too.
    let subvol = t
        .sh(
            &a,
            "sudo -n python3 -c 'import ctypes, os, struct\n\
             libc = ctypes.CDLL(None, use_errno=True)\n\
             args = ctypes.create_string_buffer(struct.pack(\"q4088s\", 0, b\"sv\"))\n\
             fd = os.open(\"/tmp\", os.O_RDONLY)\n\
             r = libc.syscall(16, fd, ctypes.c_ulong(0x5000940e), args)\n\
             print(r, ctypes.get_errno())'",
        )
        .ok()
        .stdout;
    assert_eq!(
        subvol.trim(),
        "-1 1",
        "SUBVOL_CREATE_V2 is refused with EPERM"
    );

    // The packet filter holds on Incus's bridges: b's server is out of a's reach, and the
    // host, which reaches it, is out of both's.
    t.sh(
        &b,
        "nohup python3 -m http.server 8000 --bind 0.0.0.0 >/dev/null 2>&1 & sleep 1",
    )
    .ok();
    let b_ip = t
        .sh(
            &b,
            "ip -4 -o addr show eth0 | awk '{ split($4, a, \"/\"); print a[1] }'",
        )
        .ok()
        .stdout
        .trim()
        .to_owned();
    assert!(b_ip.parse::<std::net::Ipv4Addr>().is_ok(), "{b_ip:?}");
    let probe = |tenant: &str, target: &str| {
        t.sh(
            tenant,
            &format!(
                "timeout 3 bash -c 'echo > /dev/tcp/{}/{}' 2>/dev/null && echo open || echo shut",
                target.split(':').next().unwrap(),
                target.split(':').nth(1).unwrap()
            ),
        )
        .ok()
        .stdout
        .trim()
        .to_owned()
    };
    assert!(
        std::net::TcpStream::connect((b_ip.as_str(), 8000)).is_ok(),
        "the host reaches {b_ip}:8000"
    );
    assert_eq!(probe(&b, "127.0.0.1:8000"), "open");
    assert_eq!(probe(&a, &format!("{b_ip}:8000")), "shut");

    // The SSH gateway serves Incus tenants as Docker ones.
    let d = t.serve();
    let ssh = t.ssh(&d, "a-key", &a, &["id", "-un"]).ok();
    assert_eq!(ssh.stdout, format!("{a}\n"));

    // A snapshot holds the whole system on Incus: the root disk and the home come back, with
    // systemd booted again.
    t.sh(&a, "sudo -n sh -c 'echo v1 > /etc/hostel-marker'")
        .ok();
    let snap = t
        .hostel(&["snapshot", "create", &a, "sys", "--json"])
        .ok()
        .json();
    assert_eq!(snap["system"], true, "{snap}");
    t.sh(&a, "sudo -n rm /etc/hostel-marker; echo changed > ~/note")
        .ok();
    t.hostel(&["snapshot", "restore", &a, "sys"]).ok();
    let back = t
        .sh(
            &a,
            // As root, systemctl asks systemd itself over its private socket, not D-Bus. A start
            // returns once the init runs, so that socket may not be there yet.
            "cat /etc/hostel-marker ~/note; \
             timeout 30 sh -c 'until [ -S /run/systemd/private ]; do sleep 0.1; done'; \
             sudo -n systemctl is-system-running --wait",
        )
        .ok()
        .stdout;
    assert_eq!(back, "v1\nkept\nrunning\n");
    assert_eq!(std::fs::metadata(&note).unwrap().uid(), 1000);

    // New settings on the same image keep the system: the workspace is changed in place, not
    // made again from the image.
    // A shared folder arrives the same way, read-only for root inside too.
    let data = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data.path().join("hello.txt"), "shared\n").unwrap();
    t.hostel(&[
        "share",
        "add",
        "data",
        data.path().to_str().unwrap(),
        "--tenants",
        &a,
    ])
    .ok();
    t.hostel(&["set", &a, "--egress", "none"]).ok();
    t.hostel(&["stop", &a]).ok();
    t.hostel(&["start", &a]).ok();
    assert_eq!(t.sh(&a, "cat /etc/hostel-marker").ok().stdout, "v1\n");
    let shared = t
        .sh(
            &a,
            "cat /shared/data/hello.txt; sudo -n touch /shared/data/x 2>&1; \
             sudo -n mount -o remount,rw /shared/data 2>&1; sudo -n touch /shared/data/y 2>&1; true",
        )
        .ok()
        .stdout;
    assert!(shared.starts_with("shared\n"), "{shared}");
    assert_eq!(
        std::fs::read_dir(data.path()).unwrap().count(),
        1,
        "{shared}"
    );
    let egress = t.hostel(&["info", &a, "--json"]).ok().json();
    assert_eq!(egress["egress"], "none", "{egress}");
    assert_eq!(
        t.sh(
            &a,
            "timeout 3 bash -c 'echo > /dev/tcp/1.1.1.1/80' 2>/dev/null && echo open || echo shut"
        )
        .ok()
        .stdout,
        "shut\n"
    );

    // Stopped and started again, the workspace keeps its home; deleted, the home stays.
    t.hostel(&["stop", &a]).ok();
    t.hostel(&["start", &a]).ok();
    assert_eq!(t.sh(&a, "cat ~/note").ok().stdout, "kept\n");
    t.hostel(&["delete", &a]).ok();
    assert!(note.exists(), "a delete keeps the home");
    // ... and its snapshot, whose system part went with the workspace.
    let listed = t.hostel(&["snapshot", "list", &a, "--json"]).ok().json();
    assert_eq!(listed["snapshots"][0]["name"], "sys", "{listed}");
    assert_eq!(listed["snapshots"][0]["system"], false, "{listed}");
    let gone = std::process::Command::new("incus")
        .args(["info", &format!("hostel-{a}")])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "the instance is gone");
}

/// A disk I/O limit on Incus is `limits.read` and `limits.write` on every disk device: what
/// the tenant syncs, in its home and in its root filesystem, goes no faster.
#[test]
fn an_incus_disk_io_limit_throttles_synced_writes() {
    let t = TestRun::incus(BIN);
    let a = t.create_tenant("a", &["--disk", "1G", "--disk-io", "4M"]);
    for dir in ["$HOME", "/var/tmp"] {
        let ms = t.synced_write_ms(&a, dir, 12);
        assert!(ms >= 2000, "{dir}: 12 MiB synced in {ms} ms at 4 MiB/s");
    }
}

/// The attacker suite on Incus: every move that reaches beyond the workspace is blocked, and
/// what a system container's root may do is done to its own namespaces only.
#[test]
fn the_attacker_suite_holds_on_incus() {
    let t = TestRun::incus(BIN);
    let run = t.hostel(&["selftest", "security", "--json"]).ok();
    let report = run.json();
    let moves = report["moves"].as_array().unwrap();
    assert!(moves.len() >= 70, "{report}");
    let open: Vec<_> = moves
        .iter()
        .filter(|m| m["expected"] == "blocked" && m["result"] != "blocked")
        .collect();
    assert!(open.is_empty(), "not blocked: {open:?}");
    let own: Vec<&str> = moves
        .iter()
        .filter(|m| m["expected"] == "own namespace only")
        .map(|m| m["move"].as_str().unwrap())
        .collect();
    assert!(
        own.iter().all(|m| [
            "mount a filesystem",
            "change the hostname",
            "make a user namespace"
        ]
        .contains(m)),
        "{own:?}"
    );
    for needed in [
        "mount the host's disk",
        "change the host's hostname",
        "open a raw socket",
    ] {
        assert!(
            moves
                .iter()
                .any(|m| m["move"] == needed && m["result"] == "blocked"),
            "{needed}"
        );
    }
}

/// Docker inside an Incus workspace (the `docker` profile, which `scripts/test` builds): the
/// tenant builds and runs containers of an image it imported (no registry here), without
/// sudo; a privileged container inside gets no device of the host's; and the attacker suite,
/// its tenants on that image, blocks every move beyond the workspace: raw sockets are the
/// workspace's own, forged addresses do not leave its bridge.
#[test]
fn an_incus_workspace_runs_docker_of_its_own() {
    let t = TestRun::incus(BIN);
    let a = t.create_tenant(
        "a",
        &["--image", "docker", "--memory", "1G", "--disk", "2G"],
    );
    let busybox = t.home(&a).join("busybox");
    std::fs::copy("/bin/busybox", &busybox).unwrap();
    std::os::unix::fs::chown(&busybox, Some(1000), Some(1000)).unwrap();
    let built = t
        .sh(
            &a,
            "set -e; for i in $(seq 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done; \
             docker info --format '{{.Driver}}'; \
             mkdir -p /tmp/bb/bin; cp ~/busybox /tmp/bb/bin/; \
             tar -C /tmp/bb -c . | docker import - bb:1 >/dev/null; \
             printf 'FROM bb:1\\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo built > /built\"]\\n' \
               > /tmp/Dockerfile; \
             docker build -q -t bb:2 -f /tmp/Dockerfile /tmp/bb >/dev/null; \
             docker run --rm bb:2 /bin/busybox cat /built",
        )
        .ok()
        .stdout;
    assert_eq!(built, "overlay2\nbuilt\n");
    // The host's first loop device (hostel's engine storage) and disks, from a privileged
    // container: no node can be made, nor read.
    let devices = t
        .sh(
            &a,
            "docker run --rm --privileged bb:1 /bin/busybox sh -c \
             'for d in 7:0 8:0 252:0 259:0; do /bin/busybox mknod /d b ${d%:*} ${d#*:} 2>/dev/null && \
              /bin/busybox head -c 1 /d >/dev/null 2>&1 && echo read $d; /bin/busybox rm -f /d; done; echo done'",
        )
        .ok()
        .stdout;
    assert_eq!(devices, "done\n");

    let report = t
        .hostel(&["selftest", "security", "--image", "docker", "--json"])
        .ok()
        .json();
    let moves = report["moves"].as_array().unwrap();
    let open: Vec<_> = moves
        .iter()
        .filter(|m| m["expected"] == "blocked" && m["result"] != "blocked")
        .collect();
    assert!(open.is_empty(), "not blocked: {open:?}");
    let result = |name: &str, from: &str| {
        moves
            .iter()
            .find(|m| m["move"] == name && m["from"] == from)
            .map(|m| {
                (
                    m["expected"].as_str().unwrap(),
                    m["result"].as_str().unwrap(),
                )
            })
    };
    assert_eq!(
        result("open a raw socket", "inside A, as root"),
        Some(("own namespace only", "allowed"))
    );
    assert_eq!(
        result(
            "send packets from B's address (forged source)",
            "inside A, as root"
        ),
        Some(("blocked", "blocked"))
    );
}

/// A tenant moves between engine kinds with an archive: exported on Docker (one shared id
/// range), imported on Incus (a range per workspace), its home the same byte for byte, owners
/// included, and its keys with it.
#[test]
fn a_docker_tenant_moves_to_incus_byte_for_byte() {
    let docker = TestRun::new(BIN);
    let a = docker.create_tenant("mover", &["--disk", "1G"]);
    docker.sh(&a, hostel_testkit::DATA_FILL).ok();
    let before = docker.sh(&a, hostel_testkit::DATA_LISTING).ok().stdout;
    let file = docker.root.join("mover.tar.zst");
    let file = file.to_str().unwrap();
    docker.hostel(&["export", &a, file]).ok();
    docker.hostel(&["purge", &a, "--yes"]).ok();

    let incus = TestRun::incus(BIN);
    let b = incus.tenant("moved");
    incus.hostel(&["import", file, "--as", &b]).ok();
    assert_eq!(
        incus.sh(&b, hostel_testkit::DATA_LISTING).ok().stdout,
        before
    );
    let keys = incus.hostel(&["key", "list", &b, "--json"]).ok().json();
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "{keys}");
    // The home is the workspace's own there: the tenant writes it, root inside owns its file.
    assert_eq!(
        incus
            .sh(
                &b,
                "echo more >> ~/data/small && stat -c %U ~/data/rootfile"
            )
            .ok()
            .stdout,
        "root\n"
    );
    incus.hostel(&["purge", &b, "--yes"]).ok();
}

/// The daemon's lifecycle policies act on Incus tenants as on Docker ones: an idle system
/// container (systemd's own timers stay under the busy share) is stopped, and one whose TTL ran
/// out is deleted with its home kept.
#[test]
fn idle_stop_and_ttl_act_on_incus_workspaces() {
    let t = TestRun::with_engine(
        BIN,
        "kind = \"incus\"\n",
        "[network]\npool = \"10.232.0.0/16\"\n\n[lifecycle]\nidle_stop_secs = 2\ncheck_secs = 1\n",
    );
    let idle = t.create_tenant("idle", &[]);
    let ttl = t.create_tenant("ttl", &["--ttl", "20s", "--idle-stop", "0"]);
    t.sh(&ttl, "echo kept > f").ok();
    let _d = t.serve();
    let eventually = |what: &str, name: &str, want: &str| {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(90);
        while std::time::Instant::now() < end {
            if t.state(name).as_deref() == Some(want) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        panic!("{what}: {name} is {:?}, not {want}", t.state(name));
    };
    eventually("idle stop", &idle, "stopped");
    eventually("ttl", &ttl, "deleted");
    assert_eq!(
        std::fs::read_to_string(t.home(&ttl).join("f")).unwrap(),
        "kept\n"
    );
    // A connection wakes the stopped one.
    assert_eq!(t.sh(&idle, "echo woke").ok().stdout, "woke\n");
}
