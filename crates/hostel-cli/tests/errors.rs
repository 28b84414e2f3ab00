//! Bad input and faults: each gets a message, a hint, a distinct exit code, and leaves store
//! and engine as they were.

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

fn tenants(t: &TestRun) -> String {
    t.hostel(&["list", "--json"]).ok().stdout
}

fn containers(t: &TestRun) -> String {
    docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=io.hostel.test-run={}", t.id),
    ])
    .stdout
}

#[test]
fn invalid_name_prints_the_rule() {
    let t = TestRun::new(BIN);
    let key = t.keypair("k");
    let r = t
        .hostel(&["create", "Bob_1", "--key", key.to_str().unwrap()])
        .expect_code(2);
    assert_eq!(
        r.stderr,
        "error: tenant \"Bob_1\": does not start with a lowercase letter; names are 1-32 chars of \
         a-z, 0-9 and '-', start with a letter, do not end with '-', and are not a system account \
         name\nhint: pick a name such as alice or agent-7\n"
    );
    assert_eq!(tenants(&t), "[]\n");
}

#[test]
fn malformed_key_names_file_and_line() {
    let t = TestRun::new(BIN);
    let good = std::fs::read_to_string(t.keypair("k")).unwrap();
    let bad = t.file(
        "bad.pub",
        &format!("# keys\n{good}ssh-ed25519 AAAAnotbase64!!\n"),
    );
    let name = t.tenant("badkey");
    let r = t
        .hostel(&["create", &name, "--key", bad.to_str().unwrap()])
        .expect_code(2);
    let first = r.stderr.lines().next().unwrap();
    assert!(
        first.starts_with(&format!(
            "error: key file \"{}\" line 3: not an OpenSSH public key",
            bad.display()
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("hint: pass an OpenSSH public key file"),
        "{}",
        r.stderr
    );
    let private = t.root.join("keys/k");
    let r = t
        .hostel(&["create", &name, "--key", private.to_str().unwrap()])
        .expect_code(2);
    assert!(r.stderr.contains("this is a private key"), "{}", r.stderr);
    let r = t
        .hostel(&["create", &name, "--key", "/nonexistent.pub"])
        .expect_code(2);
    assert!(
        r.stderr
            .starts_with("error: key file \"/nonexistent.pub\": cannot read it"),
        "{}",
        r.stderr
    );
    let r = t.hostel(&["create", &name]).expect_code(2);
    assert_eq!(
        r.stderr,
        format!(
            "error: tenant \"{name}\" needs at least one SSH public key\nhint: add --key FILE\n"
        )
    );
    assert_eq!(tenants(&t), "[]\n");
}

#[test]
fn impossible_quotas_are_refused_with_what_the_host_has() {
    let t = TestRun::new(BIN);
    let key = t.keypair("k");
    let key = key.to_str().unwrap();
    let name = t.tenant("quota");
    let r = t
        .hostel(&["create", &name, "--key", key, "--memory", "64T"])
        .expect_code(2);
    assert!(
        r.error_text()
            .starts_with("error: memory 64TiB: the host has only "),
        "{}",
        r.stderr
    );
    let r = t
        .hostel(&["create", &name, "--key", key, "--cpus", "999"])
        .expect_code(2);
    assert!(
        r.error_text()
            .starts_with("error: cpus 999: the host has only "),
        "{}",
        r.stderr
    );
    // Docker inside a workspace needs an engine that confines it; this one is Docker.
    let r = t
        .hostel(&["image", "build", "--profile", "docker"])
        .expect_code(2);
    assert!(
        r.error_text()
            .contains("runs containers inside its workspaces")
            && r.error_text().contains("kind = \"incus\""),
        "{}",
        r.stderr
    );
    // No GPU on these machines: the real engine says so.
    let r = t
        .hostel(&["create", &name, "--key", key, "--gpus", "1"])
        .expect_code(2);
    assert!(
        r.error_text()
            .starts_with("error: gpus 1: the host has 0 GPUs"),
        "{}",
        r.stderr
    );
    let r = t
        .hostel(&["create", &name, "--key", key, "--gpus", "lots"])
        .expect_code(2);
    assert!(
        r.error_text().contains("use all, none, or a number"),
        "{}",
        r.stderr
    );
    let r = t
        .hostel(&["create", &name, "--key", key, "--disk", "100T"])
        .expect_code(2);
    assert!(
        r.error_text()
            .starts_with("error: disk 100TiB: the filesystem holding the homes is only 8GiB"),
        "{}",
        r.stderr
    );
    let r = t
        .hostel(&["create", &name, "--key", key, "--memory", "lots"])
        .expect_code(2);
    assert!(
        r.error_text()
            .starts_with("error: size \"lots\": no number"),
        "{}",
        r.stderr
    );
    let r = t
        .hostel(&["create", &name, "--key", key, "--pids", "3"])
        .expect_code(2);
    assert_eq!(
        r.error_text().lines().next().unwrap(),
        "error: pids 3: below the minimum of 16"
    );
    assert_eq!(tenants(&t), "[]\n");
    assert_eq!(containers(&t), "");
}

#[test]
fn name_taken_is_a_conflict_and_changes_nothing() {
    let t = TestRun::new(BIN);
    let name = t.create_tenant("taken", &[]);
    let before = tenants(&t);
    let key = t.keypair("other");
    let r = t
        .hostel(&[
            "create",
            &name,
            "--key",
            key.to_str().unwrap(),
            "--memory",
            "512M",
        ])
        .expect_code(4);
    assert_eq!(
        r.error_text(),
        format!(
            "error: tenant \"{name}\" already exists\nhint: pick another name, or see it with `hostel info {name}`\n"
        )
    );
    assert_eq!(tenants(&t), before);
}

#[test]
fn missing_image_is_not_found_with_a_build_hint() {
    let t = TestRun::new(BIN);
    let key = t.keypair("k");
    let name = t.tenant("img");
    let r = t
        .hostel(&[
            "create",
            &name,
            "--key",
            key.to_str().unwrap(),
            "--image",
            "hostel-workspace:nope",
        ])
        .expect_code(3);
    assert_eq!(
        r.error_text(),
        "error: workspace image \"hostel-workspace:nope\" is not in the engine\nhint: build it with `hostel image build` (or `scripts/up`)\n"
    );
    assert_eq!(tenants(&t), "[]\n");
}

#[test]
fn dead_engine_says_how_to_start_it() {
    let t = TestRun::with_config(BIN, "");
    let cfg = t.root.join("etc/hostel.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(
            "[engine]\n",
            "[engine]\nsocket = \"/run/no-such-docker.sock\"\n",
        ),
    )
    .unwrap();
    let key = t.keypair("k");
    let name = t.tenant("dead");
    let r = t
        .hostel(&["create", &name, "--key", key.to_str().unwrap()])
        .expect_code(5);
    assert!(
        r.error_text()
            .starts_with("error: container engine at /run/no-such-docker.sock does not answer\n"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("hint: start the engine with `scripts/engine`"),
        "{}",
        r.stderr
    );
    let r = t.hostel(&["list"]).expect_code(5);
    assert!(r.stderr.contains("does not answer"), "{}", r.stderr);
}

#[test]
fn unknown_config_key_is_named() {
    let t = TestRun::with_config(BIN, "\n[defaults]\nmemroy = \"1G\"\n");
    let r = t.hostel(&["list"]).expect_code(2);
    assert!(r.stderr.contains("unknown field `memroy`"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("hint: fix the key named where it was set, or see `hostel config example`"),
        "{}",
        r.stderr
    );
}

/// #18: every key comes from a flag, a `HOSTEL_*` variable, the file or the default, in that
/// order, and `config show` and an error say which.
#[test]
fn issue_18_every_key_is_layered_and_its_source_shown() {
    let t = TestRun::with_config(BIN, "\n[ssh]\nkeepalive_secs = 7\nban_secs = 60\n");
    let file = t.root.join("etc/hostel.toml").display().to_string();
    let r = t
        .command(&[
            "--json",
            "--set",
            "ssh.ban_secs=90",
            "config",
            "show",
            "ssh",
        ])
        .env("HOSTEL_SSH_BAN_SECS", "80")
        .env("HOSTEL_SSH_LISTEN", "127.0.0.1:2299")
        .output()
        .unwrap();
    let r = hostel_testkit::Run::from(r).ok();
    let shown: std::collections::HashMap<String, (serde_json::Value, String)> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_owned(),
                (s["value"].clone(), s["source"].as_str().unwrap().to_owned()),
            )
        })
        .collect();
    assert_eq!(shown["ssh.ban_secs"], (90.into(), "--set".into()));
    assert_eq!(
        shown["ssh.listen"],
        ("127.0.0.1:2299".into(), "HOSTEL_SSH_LISTEN".into())
    );
    assert_eq!(shown["ssh.keepalive_secs"], (7.into(), file));
    assert_eq!(
        shown["ssh.idle_timeout_secs"],
        (3600.into(), "default".into())
    );
    assert!(shown.keys().all(|k| k.starts_with("ssh.")), "{shown:?}");
    // A bad value in the environment stops every command, naming the variable.
    let r = t
        .command(&["list"])
        .env("HOSTEL_DEFAULTS_PIDS", "2")
        .output()
        .unwrap();
    let r = hostel_testkit::Run::from(r).expect_code(2);
    assert!(
        r.stderr
            .contains("[defaults] pids 2: below the minimum of 16 (from HOSTEL_DEFAULTS_PIDS)"),
        "{}",
        r.stderr
    );
    t.hostel(&["config", "show", "ssh.nosuch"]).expect_code(3);
    t.hostel(&["--set", "nosuch", "list"]).expect_code(2);
    t.hostel(&["--set", "defaults.cpus=2", "list"]).ok();
    // With a daemon on the root, the daemon carries the command out with its own settings: a
    // --set would be lost, so it is refused.
    let _d = t.serve();
    let r = t
        .hostel(&["--set", "defaults.cpus=2", "list"])
        .expect_code(2);
    assert!(
        r.stderr.starts_with(
            "error: --set defaults.cpus=2: this command is carried out by the daemon running \
             on this root"
        ),
        "{}",
        r.stderr
    );
    t.hostel(&["list"]).ok();
}

#[test]
fn not_root_says_what_it_needs_and_why() {
    let t = TestRun::new(BIN);
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "--root",
        ])
        .arg(&t.root)
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: hostel needs root: it talks to the container engine's socket, mounts the \
         tenants' homes pool and keeps its store under a root-only folder\nhint: run it with sudo (or as root)\n"
    );
}

#[test]
fn full_disk_on_the_root_fails_cleanly() {
    let t = TestRun::new(BIN);
    // A root on a tiny tmpfs: the pool image is sparse, so formatting it runs out of room.
    let small = t.root.join("small");
    std::fs::create_dir_all(&small).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2M", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::create_dir_all(small.join("etc")).unwrap();
    std::fs::copy(
        t.root.join("etc/hostel.toml"),
        small.join("etc/hostel.toml"),
    )
    .unwrap();
    let key = t.keypair("k");
    let name = t.tenant("full");
    let r = Command::new(BIN)
        .arg("--root")
        .arg(&small)
        .args(["create", &name, "--key", key.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: no space left for"), "{stderr}");
    assert!(
        stderr.contains("hint: free space on the filesystem holding the hostel root"),
        "{stderr}"
    );
    assert_eq!(containers(&t), "");
    let list = Command::new(BIN)
        .arg("--root")
        .arg(&small)
        .args(["list", "--json"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout), "[]\n");
}

#[test]
fn racing_creates_have_one_winner() {
    let t = TestRun::new(BIN);
    let name = t.tenant("race");
    let key = t.keypair("k");
    let key = key.to_str().unwrap().to_owned();
    let spawn = || {
        t.command(&[
            "create", &name, "--key", &key, "--memory", "256M", "--disk", "256M",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let mut codes = outs.clone().map(|o| o.status.code().unwrap());
    codes.sort();
    assert_eq!(codes, [0, 4], "{outs:?}");
    let list: serde_json::Value = serde_json::from_str(&tenants(&t)).unwrap();
    assert_eq!(list[0]["state"], "running");
    assert_eq!(containers(&t).lines().count(), 1);
}

#[test]
fn create_racing_purge_ends_whole() {
    let t = TestRun::new(BIN);
    let name = t.tenant("cp");
    let key = t.keypair("k");
    let create = t
        .command(&[
            "create",
            &name,
            "--key",
            key.to_str().unwrap(),
            "--memory",
            "256M",
            "--disk",
            "256M",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut purge_codes = Vec::new();
    for _ in 0..20 {
        let r = t.hostel(&["purge", &name, "--yes"]);
        purge_codes.push((r.code, r.error_text()));
        if purge_codes.last().is_some_and(|(c, _)| *c == 0) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let created = create.wait_with_output().unwrap();
    assert_eq!(created.status.code(), Some(0), "{created:?}");
    assert!(
        purge_codes.iter().all(|(c, _)| [0, 3, 4].contains(c)),
        "{purge_codes:?}"
    );
    // Whatever the interleaving, the tenant is either whole or entirely gone.
    let list: serde_json::Value = serde_json::from_str(&tenants(&t)).unwrap();
    let whole = list.as_array().unwrap().len() == 1
        && t.home(&name).is_dir()
        && containers(&t).lines().count() == 1;
    let gone =
        list.as_array().unwrap().is_empty() && !t.home(&name).exists() && containers(&t).is_empty();
    assert!(
        whole || gone,
        "half state: {list} home={} containers={:?}",
        t.home(&name).exists(),
        containers(&t)
    );
}
