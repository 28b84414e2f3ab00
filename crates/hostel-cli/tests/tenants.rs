//! The tenant lifecycle driven through the `hostel` binary against the real engine.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hostel_testkit::{TestRun, docker};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_hostel");

#[test]
fn create_exec_stop_start_delete_purge() {
    let t = TestRun::new(BIN);
    let name = t.tenant("life");
    let key = t.keypair("life");
    let created = t
        .hostel(&[
            "create",
            &name,
            "--key",
            key.to_str().unwrap(),
            "--cpus",
            "0.5",
            "--memory",
            "300M",
            "--disk",
            "200M",
            "--pids",
            "200",
        ])
        .ok();
    assert!(
        created
            .stdout
            .starts_with(&format!("creating tenant {name}\n")),
        "{}",
        created.stdout
    );
    assert!(
        created.stdout.contains(&format!("hostel exec {name} --")),
        "{}",
        created.stdout
    );
    for step in [
        "recording tenant",
        "making the home, quota 200MiB",
        "creating the workspace",
        "starting the workspace",
    ] {
        assert!(
            created.stderr.contains(step),
            "missing step {step:?} in {}",
            created.stderr
        );
    }

    let info = t.hostel(&["info", &name, "--json"]).ok().json();
    assert_eq!(info["state"], "running");
    assert_eq!(info["cpus"], "0.5");
    assert_eq!(info["memory"], "300MiB");
    assert_eq!(info["disk"], "200MiB");
    assert_eq!(info["pids"], 200);
    assert_eq!(info["keys"], 1);
    assert!(info["memory_used_bytes"].is_u64(), "{info}");

    let list = t.hostel(&["list", "--json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], name.as_str());

    // Inside: the tenant's user, uid 1000, in its home, hostname = tenant, tini as PID 1.
    let who = t
        .sh(
            &name,
            "id -un; id -u; pwd; hostname; cat /proc/1/comm; getent passwd $(id -un) | cut -d: -f7",
        )
        .ok();
    assert_eq!(
        who.stdout,
        format!("{name}\n1000\n/home/{name}\n{name}\ntini\n/bin/bash\n")
    );

    // Exit statuses, stdout and stderr apart, stdin.
    let r = t
        .sh(&name, "echo out; echo err >&2; exit 42")
        .expect_code(42);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("out\n", "err\n"));
    let r = t
        .hostel_with_stdin(
            &["exec", &name, "--", "sh", "-c", "tr a-z A-Z"],
            b"piped in\n",
        )
        .ok();
    assert_eq!(r.stdout, "PIPED IN\n");

    // Files persist on the host with the tenant's ownership.
    t.sh(&name, "echo keep me > notes.txt").ok();
    let notes = t.home(&name).join("notes.txt");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "keep me\n");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&notes).unwrap().uid(),
        hostel_testkit::tenant_host_uid()
    );

    assert_eq!(
        t.hostel(&["stop", &name]).ok().stdout,
        format!("{name} stopped\n")
    );
    assert_eq!(
        t.hostel(&["info", &name, "--json"]).ok().json()["state"],
        "stopped"
    );
    assert_eq!(
        t.hostel(&["stop", &name]).ok().stdout,
        format!("{name} is not running (stopped)\n")
    );
    assert_eq!(
        t.hostel(&["start", &name]).ok().stdout,
        format!("{name} started\n")
    );

    // delete removes the container and keeps the home; start re-creates it.
    t.hostel(&["delete", &name]).ok();
    let gone = docker(&["ps", "-aq", "--filter", &format!("name=^hostel-{name}$")]);
    assert_eq!(gone.stdout, "");
    assert_eq!(
        t.hostel(&["info", &name, "--json"]).ok().json()["state"],
        "deleted"
    );
    assert!(notes.exists());
    assert_eq!(
        t.hostel(&["start", &name]).ok().stdout,
        format!("{name} re-created and started (home kept)\n")
    );
    assert_eq!(t.sh(&name, "cat notes.txt").ok().stdout, "keep me\n");

    // exec wakes a stopped workspace.
    t.hostel(&["stop", &name]).ok();
    assert_eq!(t.sh(&name, "echo awake").ok().stdout, "awake\n");

    // purge needs --yes; then everything goes.
    let refused = t.hostel(&["purge", &name]).expect_code(2);
    assert!(
        refused.stderr.contains("refusing without --yes"),
        "{}",
        refused.stderr
    );
    assert!(notes.exists());
    t.hostel(&["purge", &name, "--yes"]).ok();
    assert!(!t.home(&name).exists());
    let r = t.hostel(&["info", &name]).expect_code(3);
    assert_eq!(
        r.stderr,
        format!("error: tenant \"{name}\" not found\nhint: list tenants with `hostel list`\n")
    );

    // Every action is in a verifying audit log.
    let kinds = t.audit_kinds(&["--tenant", &name]);
    for k in [
        "tenant.create.v1",
        "workspace.stop.v1",
        "workspace.delete.v1",
        "workspace.exec.v1",
        "tenant.purge.v1",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
    let failed = t.hostel(&["audit", "--json", "--failed"]).ok().json();
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    assert!(
        t.hostel(&["audit", "verify"])
            .ok()
            .stdout
            .contains("chain intact")
    );
}

#[test]
fn keys_add_list_remove_and_last_key_guard() {
    let t = TestRun::new(BIN);
    let name = t.create_tenant("keys", &[]);
    let second = t.keypair("second");
    let added = t
        .hostel(&["key", "add", &name, "--key", second.to_str().unwrap()])
        .ok();
    assert!(
        added
            .stdout
            .starts_with(&format!("{name}: added ssh-ed25519 SHA256:"))
    );
    let again = t
        .hostel(&["key", "add", &name, "--key", second.to_str().unwrap()])
        .expect_code(4);
    assert!(
        again.stderr.contains("is already on tenant"),
        "{}",
        again.stderr
    );
    let keys = t.hostel(&["key", "list", &name, "--json"]).ok().json();
    assert_eq!(keys.as_array().unwrap().len(), 2);
    let fp0 = keys[0]["fingerprint"].as_str().unwrap().to_owned();
    let fp1 = keys[1]["fingerprint"].as_str().unwrap().to_owned();
    t.hostel(&["key", "remove", &name, &fp1]).ok();
    let last = t.hostel(&["key", "remove", &name, &fp0]).expect_code(4);
    assert!(last.stderr.contains("last key"), "{}", last.stderr);
    t.hostel(&["key", "remove", &name, "SHA256:nope"])
        .expect_code(3);
    assert_eq!(
        t.hostel(&["key", "list", &name, "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn image_build_is_cached_and_listed() {
    let t = TestRun::new(BIN);
    let build = t.hostel(&["image", "build", "--json"]).ok();
    let b = build.json();
    assert_eq!(
        b["cached"], true,
        "the test command builds the image first: {}",
        build.stdout
    );
    let list = t.hostel(&["image", "list", "--json"]).ok().json();
    let current: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["current"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["reference"], b["reference"]);

    // The profiles: built on the base by the test command, so cached, versioned and listed;
    // a tenant given a profile's name is pinned to its newest version.
    let dev = t
        .hostel(&["image", "build", "--profile", "dev", "--json"])
        .ok()
        .json();
    assert_eq!(dev["cached"], true, "{dev}");
    let dev_ref = dev["reference"].as_str().unwrap().to_owned();
    assert!(dev_ref.starts_with("hostel-workspace:dev-"), "{dev_ref}");
    let refs: Vec<String> = t
        .hostel(&["image", "list", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reference"].as_str().unwrap().to_owned())
        .collect();
    assert!(refs.contains(&dev_ref), "{refs:?}");
    assert!(
        refs.iter()
            .any(|r| r.starts_with("hostel-workspace:desktop-")),
        "{refs:?}"
    );
    let name = t.create_tenant("prof", &["--image", "dev"]);
    let info = t.hostel(&["info", &name, "--json"]).ok().json();
    assert_eq!(info["image"], dev_ref.as_str());
    let r = t
        .hostel(&[
            "exec",
            &name,
            "--",
            "sh",
            "-c",
            "for c in jupyter code-server node; do command -v $c; done",
        ])
        .ok();
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);
    let bad = t
        .hostel(&["image", "build", "--profile", "gpu"])
        .expect_code(2);
    assert!(
        bad.stderr.contains("not one of base, dev, desktop"),
        "{}",
        bad.stderr
    );
}

#[test]
fn check_passes_on_a_ready_host() {
    let t = TestRun::new(BIN);
    let items = t.hostel(&["check", "--json"]).ok().json();
    let names: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "engine",
            "layer",
            "engine-storage",
            "image",
            "network",
            "tools",
            "storage",
            "disk"
        ]
    );
    assert!(
        items.as_array().unwrap().iter().all(|i| i["ok"] == true),
        "{items}"
    );
    // A new root has no workspace yet, so its packet-filter rules are not in yet; check says
    // so without failing, and a workspace start puts them in.
    let network = &items[4]["message"];
    assert!(
        network.as_str().unwrap().contains("not installed yet"),
        "{network}"
    );
    t.create_tenant("chk", &[]);
    let items = t.hostel(&["check", "--json"]).ok().json();
    assert!(
        items[4]["message"].as_str().unwrap().contains("in force"),
        "{items}"
    );
}

#[test]
fn doctor_repairs_drift_and_never_deletes_homes() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("gone", &[]);
    t.sh(&a, "echo precious > data").ok();
    docker(&["rm", "-f", &format!("hostel-{a}")]);
    let found = t.hostel(&["doctor"]).expect_code(1);
    assert_eq!(
        found.stdout,
        format!(
            "found: {a}: workspace should run but does not (fix: start the workspace (re-create it if it is gone))\n"
        )
    );
    let fixed = t.hostel(&["doctor", "--fix"]).ok();
    assert!(
        fixed.stdout.starts_with(&format!("fixed: {a}:")),
        "{}",
        fixed.stdout
    );
    assert_eq!(t.sh(&a, "cat data").ok().stdout, "precious\n");
    assert_eq!(
        t.hostel(&["doctor"]).ok().stdout,
        "no drift: store, engine and homes agree\n"
    );

    // A container of this instance with no tenant behind it: removed by the fix.
    let instance = docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"io.hostel.instance\"}}",
        &format!("hostel-{a}"),
    ])
    .stdout
    .trim()
    .to_owned();
    let ghost = format!("hostel-{}", t.tenant("ghost"));
    docker(&[
        "create",
        "--name",
        &ghost,
        "--label",
        "io.hostel.managed=1",
        "--label",
        &format!("io.hostel.instance={instance}"),
        "--label",
        "io.hostel.tenant=ghost",
        "--label",
        &format!("io.hostel.test-run={}", t.id),
        "hostel-workspace:latest",
    ]);
    // A home deleted by hand gets a new empty one; a home with no tenant stays.
    let b = t.create_tenant("nohome", &[]);
    t.hostel(&["delete", &b]).ok();
    let sub = Command::new("btrfs")
        .args(["subvolume", "delete"])
        .arg(t.home(&b))
        .output()
        .unwrap();
    assert!(sub.status.success(), "{sub:?}");
    let stray = t.root.join("users/stray");
    std::fs::create_dir_all(&stray).unwrap();
    let made = Command::new("btrfs")
        .args(["subvolume", "create"])
        .arg(stray.join("home"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let found = t.hostel(&["doctor"]).expect_code(1).stdout;
    assert!(
        found.contains(&format!(
            "found: {ghost}: container has no tenant in the store"
        )),
        "{found}"
    );
    assert!(
        found.contains(&format!(
            "found: {b}: home {} is missing",
            t.home(&b).display()
        )),
        "{found}"
    );
    assert!(found.contains("found: stray: home"), "{found}");
    t.hostel(&["doctor", "--fix"]).ok();
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &format!("name=^{ghost}$")]).stdout,
        ""
    );
    assert!(t.home(&b).is_dir());
    assert!(stray.join("home").is_dir());
    assert_eq!(
        t.hostel(&["doctor"]).expect_code(1).stdout,
        format!(
            "found: stray: home {} has no tenant (fix: none (tenant data is never deleted by doctor); `hostel create stray` adopts it)\n",
            stray.join("home").display()
        )
    );
}

#[test]
fn config_example_is_a_working_config() {
    let t = TestRun::new(BIN);
    let example = t.hostel(&["config", "example"]).ok().stdout;
    assert!(example.contains("[defaults]\n"), "{example}");
    let path = t.file("example.toml", &example);
    let list = t
        .hostel(&["--config", path.to_str().unwrap(), "list", "--json"])
        .ok();
    assert_eq!(list.stdout, "[]\n");
}

#[test]
fn cp_moves_files_in_and_out_of_the_home_as_the_tenant() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("cp", &[]);
    let local = t.file("in.txt", "from the host\n");
    let put = t
        .hostel(&["cp", local.to_str().unwrap(), &format!("{a}:docs/in.txt")])
        .ok();
    assert!(
        put.stdout
            .starts_with(&format!("{} -> {a}:docs/in.txt", local.display())),
        "{}",
        put.stdout
    );
    use std::os::unix::fs::MetadataExt;
    let landed = t.home(&a).join("docs/in.txt");
    assert_eq!(
        std::fs::metadata(&landed).unwrap().uid(),
        hostel_testkit::tenant_host_uid()
    );
    let out = t.root.join("out.txt");
    t.hostel(&["cp", &format!("{a}:docs/in.txt"), out.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "from the host\n");
    let r = t
        .hostel(&[
            "cp",
            &format!("{a}:../../etc/shadow"),
            out.to_str().unwrap(),
        ])
        .expect_code(2);
    assert!(
        r.stderr.contains("'..' would leave the home"),
        "{}",
        r.stderr
    );
    let r = t
        .hostel(&["cp", &format!("{a}:nope"), out.to_str().unwrap()])
        .expect_code(3);
    assert!(r.stderr.contains("no such file or folder"), "{}", r.stderr);
    t.hostel(&["cp", "a", "b"]).expect_code(2);
}

/// Snapshots on the real btrfs pool: taken while the workspace runs, restored atomically with
/// the home's quota kept, bounded in number, scheduled, and gone with a purge.
#[test]
fn snapshots_restore_the_home_and_go_with_a_purge() {
    // The run's hostel.toml ends in its [storage] table.
    let t = TestRun::with_config(BIN, "snapshots_max = 3\n");
    let a = t.create_tenant("snap", &["--disk", "1G"]);
    t.sh(
        &a,
        "echo chapter-1 > thesis.txt; mkdir -p notes; echo n > notes/a",
    )
    .ok();
    let made = t
        .hostel(&["snapshot", "create", &a, "before", "--json"])
        .ok()
        .json();
    assert_eq!(
        (made["name"].as_str(), made["system"].as_bool()),
        (Some("before"), Some(false)),
        "{made}"
    );
    let snap_dir = t.root.join("users").join(&a).join("snapshots/before");
    assert_eq!(
        std::fs::read_to_string(snap_dir.join("thesis.txt")).unwrap(),
        "chapter-1\n"
    );
    // Read-only, even for the host's root.
    assert!(std::fs::write(snap_dir.join("x"), "x").is_err());
    t.sh(
        &a,
        "echo overwritten > thesis.txt; rm -r notes; head -c 1048576 /dev/zero > big",
    )
    .ok();

    let restored = t.hostel(&["snapshot", "restore", &a, "before"]).ok();
    assert!(
        restored
            .stdout
            .contains(&format!("{a}: snapshot before restored")),
        "{}",
        restored.stdout
    );
    let back = t
        .sh(&a, "cat thesis.txt notes/a; ls big 2>&1 || true")
        .ok()
        .stdout;
    assert!(back.starts_with("chapter-1\nn\n"), "{back}");
    assert!(back.contains("No such file"), "{back}");
    let info = t.hostel(&["info", &a, "--json"]).ok().json();
    assert_eq!(info["state"], "running", "{info}");
    // The restored home keeps the quota: the kernel's limit is the tenant's (doctor reads it
    // back), and a write past it fails.
    let drift = t.hostel(&["doctor", "--json"]).ok().json();
    assert_eq!(drift, serde_json::json!([]), "{drift}");
    let over = t
        .sh(&a, "head -c 1200M /dev/zero 2>&1 > fill; echo rc=$?")
        .ok();
    assert!(over.stdout.contains("rc=1"), "{}", over.stdout);
    t.sh(&a, "rm -f fill").ok();

    // Bounded: snapshots_max = 3.
    t.hostel(&["snapshot", "create", &a, "two"]).ok();
    t.hostel(&["snapshot", "create", &a]).ok();
    let full = t.hostel(&["snapshot", "create", &a, "four"]).expect_code(4);
    assert!(full.stderr.contains("snapshots_max"), "{}", full.stderr);
    let bad = t
        .hostel(&["snapshot", "create", &a, "auto-x"])
        .expect_code(2);
    assert!(bad.stderr.contains("scheduled"), "{}", bad.stderr);
    let missing = t
        .hostel(&["snapshot", "restore", &a, "nope"])
        .expect_code(3);
    assert!(
        missing.stderr.contains("snapshot list"),
        "{}",
        missing.stderr
    );
    t.hostel(&["snapshot", "delete", &a, "two"]).ok();
    t.hostel(&[
        "snapshot",
        "create",
        &a,
        "--schedule",
        "daily",
        "--keep",
        "2",
    ])
    .ok();
    let listed = t.hostel(&["snapshot", "list", &a, "--json"]).ok().json();
    let names: Vec<&str> = listed["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{listed}");
    assert_eq!(names[0], "before");
    assert_eq!(listed["schedule"]["every"], "daily");
    assert_eq!(listed["schedule"]["keep"], 2);
    let kinds = t.hostel(&["audit", "--tenant", &a, "--json"]).ok().json();
    for kind in [
        "snapshot.create.v1",
        "snapshot.restore.v1",
        "snapshot.delete.v1",
    ] {
        assert!(
            kinds.as_array().unwrap().iter().any(|e| e["kind"] == kind),
            "{kind}"
        );
    }

    t.hostel(&["purge", &a, "--yes"]).ok();
    assert!(!t.root.join("users").join(&a).exists());
}

/// A shared dataset: a host folder read-only at /shared/NAME in the workspaces of the tenants
/// named, for root inside too, and in no other.
#[test]
fn a_shared_folder_is_read_only_and_only_for_the_tenants_named() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("sha", &[]);
    let b = t.create_tenant("shb", &[]);
    let data = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data.path().join("hello.txt"), "from the host\n").unwrap();
    let share = format!("d{}", &t.tenant("x")[1..9]);
    let added = t
        .hostel(&[
            "share",
            "add",
            &share,
            data.path().to_str().unwrap(),
            "--tenants",
            &a,
        ])
        .ok();
    assert!(
        added.stdout.contains(&format!("/shared/{share} with {a}")),
        "{}",
        added.stdout
    );
    let refused = t
        .hostel(&["share", "add", "whole", t.root.to_str().unwrap()])
        .expect_code(2);
    assert!(
        refused.stderr.contains("hostel's root"),
        "{}",
        refused.stderr
    );

    // It reaches a workspace at its next start.
    t.hostel(&["stop", &a]).ok();
    t.hostel(&["start", &a]).ok();
    let seen = t
        .sh(
            &a,
            &format!(
                "cat /shared/{share}/hello.txt; touch /shared/{share}/x 2>&1; \
                 sudo -n mount -o remount,rw /shared/{share} 2>&1; \
                 sudo -n touch /shared/{share}/y 2>&1; true"
            ),
        )
        .ok()
        .stdout;
    assert!(seen.starts_with("from the host\n"), "{seen}");
    assert!(seen.contains("Read-only file system"), "{seen}");
    assert_eq!(
        std::fs::read_dir(data.path()).unwrap().count(),
        1,
        "nothing was written: {seen}"
    );
    t.hostel(&["stop", &b]).ok();
    t.hostel(&["start", &b]).ok();
    assert_eq!(
        t.sh(&b, &format!("ls /shared/{share} 2>&1 || echo absent"))
            .ok()
            .stdout
            .lines()
            .last(),
        Some("absent")
    );
    let listed = t.hostel(&["share", "list", "--json"]).ok().json();
    assert_eq!(listed[0]["name"], share.as_str(), "{listed}");
    assert_eq!(listed[0]["tenants"][0], a.as_str(), "{listed}");
    t.hostel(&["share", "remove", &share]).ok();
    t.hostel(&["stop", &a]).ok();
    t.hostel(&["start", &a]).ok();
    assert_eq!(
        t.sh(&a, &format!("ls /shared/{share} 2>&1 || echo absent"))
            .ok()
            .stdout
            .lines()
            .last(),
        Some("absent")
    );
}

#[test]
fn export_and_import_move_a_tenant_and_refuse_a_broken_archive() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestRun::new(BIN);
    let a = t.create_tenant("exp", &["--disk", "1G"]);
    t.sh(&a, hostel_testkit::DATA_FILL).ok();
    let before = t.sh(&a, hostel_testkit::DATA_LISTING).ok().stdout;
    assert!(before.contains("./rootfile f 640 0:0 11"), "{before}");
    // Through the daemon: the archive streams over the API both ways.
    let _d = t.serve();
    let file = t.root.join("exp.tar.zst");
    let file = file.to_str().unwrap();
    let out = t.hostel(&["export", &a, file]).ok();
    assert!(
        out.stdout.contains(&format!("{a} -> {file}")),
        "{}",
        out.stdout
    );
    let meta = std::fs::metadata(file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "it holds keys");
    // Never over a file.
    let again = t.hostel(&["export", &a, file]).expect_code(2);
    assert!(
        again.error_text().contains("exists"),
        "{}",
        again.error_text()
    );

    // A cut archive, or a home that does not fit, leaves nothing behind.
    let b = t.tenant("imp");
    let whole = std::fs::read(file).unwrap();
    let cut = t.root.join("cut.tar.zst");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    let broken = t
        .hostel(&["import", cut.to_str().unwrap(), "--as", &b])
        .expect_code(2);
    assert!(
        broken.error_text().contains("not one hostel can import"),
        "{}",
        broken.error_text()
    );
    let small = t
        .hostel(&["import", file, "--as", &b, "--disk", "32M"])
        .expect_code(2);
    assert!(
        small.error_text().contains("does not fit its quota"),
        "{}",
        small.error_text()
    );
    assert!(!t.root.join("users").join(&b).exists(), "no half-made home");
    t.hostel(&["info", &b]).expect_code(3);

    let made = t.hostel(&["import", file, "--as", &b]).ok();
    assert!(
        made.stdout.contains(&format!("tenant {b} is imported")),
        "{}",
        made.stdout
    );
    assert_eq!(t.sh(&b, hostel_testkit::DATA_LISTING).ok().stdout, before);
    let info = t.hostel(&["info", &b, "--json"]).ok().json();
    assert_eq!(info["disk"], "1GiB", "{info}");
    let kinds = t.audit_kinds(&["--tenant", &a]);
    assert!(kinds.iter().any(|k| k == "tenant.export.v1"), "{kinds:?}");
    t.hostel(&["purge", &a, "--yes"]).ok();
    t.hostel(&["purge", &b, "--yes"]).ok();
}
