//! Each quota enforced by the kernel, proven from inside a workspace.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hostel_testkit::TestRun;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_hostel");

/// The CFS quota as the workspace's own cgroup says it (v1 or v2), in microseconds per 100 ms.
fn cpu_quota(t: &TestRun, name: &str) -> String {
    t.sh(
        name,
        "if [ -f /sys/fs/cgroup/cpu.max ]; then cut -d' ' -f1 /sys/fs/cgroup/cpu.max; \
         else cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us; fi",
    )
    .ok()
    .stdout
}

#[test]
fn cpu_limit_is_set_in_the_kernel_and_changes_live() {
    let t = TestRun::new(BIN);
    let name = t.create_tenant("cpu", &["--cpus", "0.5"]);
    assert_eq!(cpu_quota(&t, &name), "50000\n");
    let out = t.hostel(&["set", &name, "--cpus", "1.5"]).ok();
    assert_eq!(
        out.stdout,
        format!("{name}: cpus 0.5 -> 1.5, applied live\n")
    );
    assert_eq!(cpu_quota(&t, &name), "150000\n");
}

#[test]
fn memory_hog_is_oom_killed_inside_and_others_keep_working() {
    let t = TestRun::new(BIN);
    let hog = t.create_tenant("hog", &[]);
    let other = t.create_tenant("calm", &[]);
    let r = t.hostel(&[
        "exec",
        &hog,
        "--",
        "python3",
        "-c",
        "b = bytearray(600 * 1024 * 1024)",
    ]);
    assert_eq!(
        r.code, 137,
        "the hog must be SIGKILLed by the OOM killer: {r:?}"
    );
    let info = t.hostel(&["info", &hog, "--json"]).ok().json();
    assert_eq!(info["state"], "running");
    assert!(info["oom_kills"].as_u64().unwrap() >= 1, "{info}");
    let text = t.hostel(&["info", &hog]).ok().stdout;
    assert!(
        text.contains("OOM-killed for going over the limit"),
        "{text}"
    );
    assert_eq!(t.sh(&hog, "echo still here").ok().stdout, "still here\n");
    assert_eq!(t.sh(&other, "echo fine").ok().stdout, "fine\n");
    assert_eq!(
        t.hostel(&["info", &other, "--json"]).ok().json()["oom_kills"],
        0
    );
}

#[test]
fn fork_bomb_stops_at_the_pids_limit() {
    let t = TestRun::new(BIN);
    let name = t.create_tenant("forks", &["--pids", "64"]);
    let r = t
        .hostel(&[
            "exec", &name, "--", "python3", "-c",
            "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(60)\n            os._exit(0)\n        n += 1\nexcept OSError as e:\n    print(n < 64, e.errno)\n",
        ])
        .ok();
    assert_eq!(
        r.stdout, "True 11\n",
        "fork must fail with EAGAIN below the limit"
    );
    t.sh(&name, "kill -9 -1; true");
    assert_eq!(t.sh(&name, "echo recovered").ok().stdout, "recovered\n");
}

/// A disk I/O limit is a block throttle on every device under the workspace's disks (its home's
/// pool and the engine's storage), kept by the kernel: 12 MiB written with `O_DSYNC` at 4 MiB/s
/// take about three seconds, in the home and in the root filesystem alike; lifted, it is gone
/// at the next start.
#[test]
fn disk_io_limit_throttles_synced_writes_in_home_and_root() {
    let t = TestRun::new(BIN);
    let name = t.create_tenant("io", &["--disk-io", "4M"]);
    let throttles = |t: &TestRun| {
        t.sh(
            &name,
            "cat /sys/fs/cgroup/blkio/blkio.throttle.write_bps_device \
             /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device",
        )
        .ok()
        .stdout
    };
    let set = throttles(&t);
    let rates: Vec<&str> = set.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert!(
        rates.len() >= 4,
        "home and engine storage, both ways: {set}"
    );
    assert!(rates.iter().all(|r| *r == "4194304"), "{set}");
    for dir in ["$HOME", "/var/tmp"] {
        let ms = t.synced_write_ms(&name, dir, 12);
        assert!(ms >= 2000, "{dir}: 12 MiB synced in {ms} ms at 4 MiB/s");
    }
    t.hostel(&["set", &name, "--disk-io", "none"]).ok();
    t.hostel(&["stop", &name]).ok();
    t.hostel(&["start", &name]).ok();
    assert_eq!(throttles(&t), "", "no throttle left");
}

#[test]
fn disk_quota_refuses_writes_past_it_and_grows_live() {
    let t = TestRun::new(BIN);
    let name = t.create_tenant("disk", &["--disk", "64M"]);
    let r = t.sh(
        &name,
        "dd if=/dev/zero of=fill bs=1M count=100 2>&1; echo rc=$?",
    );
    assert!(
        r.stdout.contains("Disk quota exceeded") || r.stdout.contains("No space left"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.ends_with("rc=1\n"), "{}", r.stdout);
    let grown = t.hostel(&["set", &name, "--disk", "256M"]).ok();
    assert_eq!(
        grown.stdout,
        format!("{name}: disk 64MiB -> 256MiB, applied live\n")
    );
    t.sh(
        &name,
        "rm -f fill; dd if=/dev/zero of=fill bs=1M count=100 status=none && sync && echo wrote",
    )
    .ok();
    let info = t.hostel(&["info", &name, "--json"]).ok().json();
    assert_eq!(info["state"], "running");
    assert_eq!(info["disk"], "256MiB");
    let shrink = t.hostel(&["set", &name, "--disk", "64M"]).expect_code(2);
    assert!(
        shrink.stderr.contains(&format!(
            "error: disk 64MiB: tenant \"{name}\" already uses"
        )),
        "{}",
        shrink.stderr
    );
    assert_eq!(
        t.hostel(&["info", &name, "--json"]).ok().json()["disk"],
        "256MiB"
    );
}

/// Regression (#12): a subvolume the tenant made in its home (the ioctl needed only write
/// permission) made `purge` fail with "internal error" and left the tenant `purging`. A tenant
/// can no longer make one; a host upgraded from before may still hold some, made here from the
/// host and handed to the tenant.
#[test]
fn issue_12_purge_succeeds_with_subvolumes_in_the_home() {
    let t = TestRun::new(BIN);
    let name = t.create_tenant("nested", &[]);
    let home = t.home(&name);
    for sub in [home.join("sub"), home.join("sub/deeper")] {
        let made = Command::new("btrfs")
            .args(["subvolume", "create"])
            .arg(&sub)
            .output()
            .unwrap();
        assert!(made.status.success(), "{made:?}");
        let uid = hostel_testkit::tenant_host_uid();
        std::os::unix::fs::chown(&sub, Some(uid), Some(uid)).unwrap();
    }
    let wrote = t.sh(
        &name,
        "echo data > ~/sub/deeper/file && cat ~/sub/deeper/file",
    );
    assert_eq!(wrote.stdout.trim(), "data", "{}", wrote.stderr);
    t.hostel(&["purge", &name, "--yes"]).ok();
    assert!(!home.exists());
    t.hostel(&["info", &name]).expect_code(3);
}

/// Regression (#12): `BTRFS_IOC_SUBVOL_CREATE` on the home, as the tenant, made a subvolume
/// that counted against a quota group of its own: 300 MiB written past a 100 MiB quota. And
/// io_uring was open. Both are refused, as the tenant and as root inside, whatever the
/// request's upper bits say.
#[test]
fn issue_12_a_tenant_makes_no_subvolume_and_no_io_uring() {
    let t = TestRun::new(BIN);
    let name = t.create_tenant("subvol", &[]);
    let probe = r#"cat > /tmp/probe.py <<'PY'
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(*args):
    ctypes.set_errno(0)
    r = libc.syscall(*[ctypes.c_ulong(a) for a in args])
    return 0 if r >= 0 else ctypes.get_errno()
def subvol(d, request):
    args = ctypes.create_string_buffer(struct.pack("q4088s", 0, b"sub%d" % request))
    fd = os.open(d, os.O_RDONLY)
    return call(16, fd, request, ctypes.addressof(args))
home = "/home/" + os.environ["T"]
ring = ctypes.create_string_buffer(120)
print("home", subvol(home, 0x5000940e), subvol(home, 0xffffffff5000940e), subvol(home, 0x50009418))
print("layer", subvol("/var/tmp", 0x50009401), subvol("/var/tmp", 0x50009417))
print("io_uring", call(425, 4, ctypes.addressof(ring)))
print("tcgets", call(16, 0, 0x5401, ctypes.addressof(ring)))
PY
"#;
    let run = format!(
        "{probe}T={name} python3 /tmp/probe.py < /dev/null;          echo root; sudo -n env T={name} python3 /tmp/probe.py < /dev/null"
    );
    let r = t.sh(&name, &run);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // EPERM from the filter for each; a plain ioctl (not a terminal: ENOTTY) still reaches
    // the kernel.
    let want = "home 1 1 1
layer 1 1
io_uring 1
tcgets 25
";
    assert_eq!(
        r.stdout,
        format!(
            "{want}root
{want}"
        )
    );
    assert_eq!(
        std::fs::read_dir(t.home(&name))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("sub"))
            .count(),
        0
    );
}

/// Regression (#12): `dd` to `/tmp`, outside the home, grew the host's disk by 1 GiB past a
/// 512 MiB quota, no sudo needed. The writable layer now has the disk quota too.
#[test]
fn issue_12_writes_outside_the_home_stop_at_the_quota() {
    let t = TestRun::new(BIN);
    let name = t.create_tenant("layer", &["--disk", "64M"]);
    let r = t.sh(
        &name,
        "dd if=/dev/zero of=/tmp/fill bs=1M count=200 2>&1; echo rc=$?; \
         du -sm /tmp/fill | cut -f1",
    );
    assert!(
        r.stdout.contains("Disk quota exceeded") || r.stdout.contains("No space left"),
        "{}",
        r.stdout
    );
    let kept: u64 = r.stdout.lines().last().unwrap().trim().parse().unwrap();
    assert!(kept <= 64, "{kept} MiB written to /tmp past a 64 MiB quota");
}

/// A `df` column (`avail`, `size`) in bytes, for the filesystem holding `path`.
fn df(path: &std::path::Path, column: &str) -> u64 {
    let out = Command::new("df")
        .arg(format!("--output={column}"))
        .arg("-B1")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Whether the mount at `path` is read-only.
fn read_only(path: &std::path::Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = path.to_string_lossy().into_owned();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(want.as_str()))
        .unwrap_or_else(|| panic!("{want} is not mounted"));
    line.split(' ')
        .nth(5)
        .unwrap()
        .split(',')
        .any(|o| o == "ro")
}

/// Fills the filesystem holding `dir` until `leave` bytes are free, with a file named `name`.
fn fill(dir: &std::path::Path, name: &str, leave: u64) {
    let n = df(dir, "avail").saturating_sub(leave) >> 20;
    let out = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "status=none"])
        .arg(format!("of={}", dir.join(name).display()))
        .arg(format!("count={n}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Regression (#13): a full host disk turned the sparse homes pool read-only for every tenant,
/// and a write already reported as done was lost; `check` and `doctor` saw nothing. The pool's
/// image is allocated now and grows ahead of its homes: with the host full, a write that does
/// not fit fails when it is made, the pool stays writable, earlier data stays, `create` is
/// refused with the numbers, and once there is room the daemon grows the pool.
#[test]
fn issue_13_a_full_disk_loses_no_write_and_leaves_the_pool_writable() {
    let t = TestRun::new(BIN);
    // The run's state (store, audit log, pool image) on a small filesystem of its own: the
    // host's disk, as far as this hostel can tell.
    let state = t.root.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1600m", "tmpfs"])
        .arg(&state)
        .status()
        .unwrap();
    assert!(mounted.success());
    let a = t.create_tenant("fulla", &["--disk", "4G"]);
    let b = t.create_tenant("fullb", &["--disk", "4G"]);
    let users = t.root.join("users");
    let pool_size = df(&users, "size");
    assert!(pool_size <= 1 << 30, "a new pool is small: {pool_size}");
    let image = std::fs::metadata(state.join("homes.btrfs")).unwrap();
    assert!(
        std::os::unix::fs::MetadataExt::blocks(&image) * 512 >= image.len(),
        "the pool's image is allocated, not sparse"
    );
    let kept = t
        .sh(
            &a,
            "head -c 20M /dev/urandom > ~/keep && sync && sha256sum < ~/keep",
        )
        .ok()
        .stdout;

    // The host nearly full: the pool cannot grow, and b writes past what it holds.
    fill(&state, "filler", 100 << 20);
    let r = t.sh(
        &b,
        "dd if=/dev/zero of=$HOME/big bs=1M count=1500 conv=fsync 2>&1; echo rc=$?",
    );
    assert!(r.stdout.contains("No space left"), "{}", r.stdout);
    assert!(!r.stdout.contains("rc=0"), "{}", r.stdout);
    assert!(!read_only(&users), "the pool turned read-only");
    assert_eq!(
        t.sh(&a, "sha256sum < ~/keep").ok().stdout,
        kept,
        "a's file changed"
    );
    t.hostel(&["exec", &a, "--", "true"]).ok();

    // check and doctor say what is full and what to free; create is refused and leaves nothing.
    let check = t.hostel(&["check"]);
    assert_ne!(check.code, 0, "{}", check.stdout);
    assert!(
        check.stdout.contains("storage") && check.stdout.contains("full"),
        "{}",
        check.stdout
    );
    assert!(check.stdout.contains("free space"), "{}", check.stdout);
    let doctor = t.hostel(&["doctor"]);
    assert_ne!(doctor.code, 0);
    assert!(doctor.stdout.contains("homes pool"), "{}", doctor.stdout);
    let c = t.tenant("fullc");
    let key = t.keypair("fullc-key");
    let refused = t.hostel(&["create", &c, "--key", key.to_str().unwrap(), "--disk", "1G"]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    let said = refused.error_text();
    assert!(
        said.contains("homes pool") && said.contains("hint:"),
        "{said}"
    );
    let listed = t.hostel(&["list"]).ok().stdout;
    assert!(!listed.contains(&c), "{listed}");

    // Room again: the daemon grows the pool within seconds, and b's writes fit.
    std::fs::remove_file(state.join("filler")).unwrap();
    let _d = t.serve();
    let grown = (0..60).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(500));
        df(&users, "size") > pool_size
    });
    assert!(grown, "the pool did not grow within 30 s");
    t.sh(&b, "head -c 300M /dev/zero > ~/more && sync").ok();
    let check = t.hostel(&["check"]).stdout;
    assert!(
        check
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("storage")),
        "{check}"
    );
    t.hostel(&["audit", "verify"]).ok();
}

/// The sysfs folder of the btrfs filesystem mounted at `mount`.
fn btrfs_sysfs(mount: &std::path::Path) -> std::path::PathBuf {
    let out = std::process::Command::new("findmnt")
        .args(["-no", "SOURCE"])
        .arg(mount)
        .output()
        .unwrap();
    let source = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let device = std::path::Path::new(&source)
        .file_name()
        .unwrap()
        .to_owned();
    std::fs::read_dir("/sys/fs/btrfs")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("devices").join(&device).exists())
        .unwrap_or_else(|| panic!("no btrfs in sysfs for {source}"))
}

/// Deleting a large subvolume (a purged home, the home a restore replaced, a snapshot) makes
/// the kernel mark full quota groups inconsistent rather than count it: every home's numbers,
/// and so its limit, are then wrong. hostel recounts them at its next look at the pool.
#[test]
fn inconsistent_quota_groups_of_the_homes_are_recounted() {
    let t = TestRun::new(BIN);
    let name = t.create_tenant("recount", &["--disk", "256M"]);
    // Enough files for a tree of more than one level.
    t.sh(
        &name,
        "head -c 50M /dev/urandom > data; mkdir f; for i in $(seq 3000); do echo $i > f/$i; done; sync",
    )
    .ok();
    t.hostel(&["snapshot", "create", &name, "s1"]).ok();
    let sysfs = btrfs_sysfs(&t.root.join("users"));
    // Any subtree dropped now marks the groups inconsistent, as a large one always does.
    std::fs::write(sysfs.join("qgroups/drop_subtree_threshold"), "0").unwrap();
    t.sh(&name, "rm -r data f/1* && sync").ok();
    t.hostel(&["snapshot", "delete", &name, "s1"]).ok();
    // The kernel's cleaner drops the deleted snapshot in the background.
    let synced = std::process::Command::new("btrfs")
        .args(["subvolume", "sync"])
        .arg(t.root.join("users"))
        .status()
        .unwrap();
    assert!(synced.success());
    let inconsistent = || {
        std::fs::read_to_string(sysfs.join("qgroups/inconsistent"))
            .unwrap()
            .trim()
            == "1"
    };
    assert!(
        inconsistent(),
        "the drop marked them inconsistent: {} {:?}",
        sysfs.display(),
        std::fs::read_to_string(sysfs.join("qgroups/drop_subtree_threshold"))
    );
    // The next look at the pool (any command that uses it; the daemon every 2 s) recounts.
    t.hostel(&["snapshot", "create", &name, "s2"]).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while inconsistent() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(!inconsistent(), "recounted");
    // The limit holds again: 300 MB do not fit in 256 MiB.
    let r = t
        .sh(&name, "head -c 300M /dev/zero 2>&1 > fill; echo rc=$?")
        .ok();
    assert!(r.stdout.contains("rc=1"), "{}", r.stdout);
}
