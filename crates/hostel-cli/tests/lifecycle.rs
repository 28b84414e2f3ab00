//! Lifecycle policies applied by the daemon against the real engine: idle stop, TTL (delete or,
//! ephemeral, purge) and autostart, with short durations.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hostel_testkit::TestRun;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hostel");

/// Polls until `check` holds, for at most `secs`.
fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("not within {secs}s: {what}");
}

#[test]
fn idle_stop_ttl_ephemeral_and_autostart() {
    let t = TestRun::with_config(BIN, "\n[lifecycle]\nidle_stop_secs = 2\ncheck_secs = 1\n");
    let idle = t.create_tenant("idle", &[]);
    let keep = t.create_tenant("keep", &["--idle-stop", "0"]);
    let ttl = t.create_tenant("ttl", &["--ttl", "4s", "--idle-stop", "0"]);
    let eph = t.create_tenant("eph", &["--ttl", "4s", "--ephemeral"]);
    let auto = t.create_tenant("auto", &["--autostart", "--idle-stop", "0"]);
    t.sh(&ttl, "echo kept > f").ok();
    t.hostel(&["stop", &auto]).ok();
    let info = t.hostel(&["info", &eph]).ok().stdout;
    assert!(info.contains("lifecycle  purged at "), "{info}");

    let _d = t.serve();
    // One reap looks at the tenants in turn and acts on each before the next, and each act
    // is an engine call (a purge, a delete, a stop) that takes seconds on a loaded host: the
    // windows allow for all of them in one pass.
    eventually(30, "autostart starts its workspace", || {
        t.state(&auto).as_deref() == Some("running")
    });
    eventually(60, "idle workspace stops", || {
        t.state(&idle).as_deref() == Some("stopped")
    });
    eventually(60, "ttl deletes the workspace", || {
        t.state(&ttl).as_deref() == Some("deleted")
    });
    eventually(60, "ephemeral tenant is purged", || t.state(&eph).is_none());
    assert_eq!(
        t.state(&keep).as_deref(),
        Some("running"),
        "idle-stop 0 never stops"
    );
    assert_eq!(
        std::fs::read_to_string(t.home(&ttl).join("f")).unwrap(),
        "kept\n"
    );
    assert!(!t.home(&eph).exists());
    // A busy workspace is not idle: a command that runs keeps it up.
    assert_eq!(t.sh(&idle, "echo woke").ok().stdout, "woke\n");
    let audit = t.hostel(&["audit", "--json"]).ok().json();
    let reaps: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "lifecycle.reap.v1")
        .map(|r| {
            (
                r["tenant"].as_str().unwrap().to_owned(),
                r["detail"]["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(reaps.contains(&(idle.clone(), "stop".into())), "{reaps:?}");
    assert!(reaps.contains(&(ttl.clone(), "delete".into())), "{reaps:?}");
    assert!(reaps.contains(&(eph.clone(), "purge".into())), "{reaps:?}");
    let bad = t
        .hostel(&[
            "create",
            &t.tenant("x"),
            "--key",
            t.keypair("k").to_str().unwrap(),
            "--ttl",
            "soon",
        ])
        .expect_code(2);
    assert!(
        bad.stderr.starts_with("error: duration \"soon\""),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_starting_daemon_repairs_drift_and_applies_policies_set_later() {
    use std::io::BufRead;
    let t = TestRun::with_config(BIN, "\n[lifecycle]\ncheck_secs = 1\n");
    let name = t.create_tenant("drift", &[]);
    // The workspace container goes behind hostel's back.
    hostel_testkit::docker(&["rm", "-f", &format!("hostel-{name}")]).ok();
    let port = hostel_testkit::free_port();
    let http = hostel_testkit::free_port();
    /// Kills the daemon however the test ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = t
        .command(&[
            "serve",
            "--ssh-listen",
            &format!("127.0.0.1:{port}"),
            "--http-listen",
            &format!("127.0.0.1:{http}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _daemon = Killed(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(l);
        }
    });
    // The workspace should run: the daemon's first look re-creates it, and says so.
    let want = format!(
        "hostel serve: repaired {name}: start the workspace (re-create it if it is gone) \
         (workspace should run but does not)"
    );
    let found = (0..600).find_map(|_| {
        rx.recv_timeout(Duration::from_millis(100))
            .ok()
            .filter(|l| *l == want)
    });
    assert!(found.is_some(), "no repair line for {name}");
    assert_eq!(t.state(&name).as_deref(), Some("running"));
    let repairs = t.audit_kinds(&["--tenant", &name]);
    assert!(
        repairs.contains(&"reconcile.repair.v1".to_owned()),
        "{repairs:?}"
    );
    // Policies set after create apply: a TTL of 1s deletes the workspace the reaper finds.
    t.hostel(&["set", &name, "--ttl", "1s"]).ok();
    eventually(60, "the TTL set later deletes the workspace", || {
        t.state(&name).as_deref() == Some("deleted")
    });
    assert!(t.home(&name).exists(), "not ephemeral: the home stays");
}
