//! The daemon itself: one per root, and connections that cannot take it down.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hostel_testkit::TestRun;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hostel");

/// Regression (#13): two `hostel serve` on one root both ran and both reaped, and the second,
/// stopping, removed the first one's state file (so `status` said "not running").
#[test]
fn issue_13_a_second_daemon_on_a_root_is_refused_and_harms_nothing() {
    let t = TestRun::new(BIN);
    let first = t.serve();
    let status = t.hostel(&["status", "--json"]).ok().json();
    let pid = status["daemon"]["pid"].as_u64().unwrap();
    let second = t
        .hostel(&[
            "serve",
            "--ssh-listen",
            &format!("127.0.0.1:{}", hostel_testkit::free_port()),
            "--http-listen",
            &format!("127.0.0.1:{}", hostel_testkit::free_port()),
        ])
        .expect_code(4);
    assert!(
        second.stderr.starts_with(&format!(
            "error: another `hostel serve` runs on {}",
            t.root.display()
        )),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&format!("(pid {pid})")),
        "{}",
        second.stderr
    );
    let after = t.hostel(&["status", "--json"]).ok().json();
    assert_eq!(
        after["daemon"]["pid"].as_u64(),
        Some(pid),
        "the first one's files stay"
    );
    drop(first);
}

/// Reads from `s` until the server closes it or `limit` passes; returns what came and whether
/// it closed.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let end = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into_owned(), true);
            }
            Err(_) => {}
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

/// Regression (#13): idle or half-sent HTTP connections never timed out and one address could
/// open any number of them.
#[test]
fn issue_13_slow_idle_and_too_many_http_connections_are_closed() {
    let t = TestRun::with_config(
        BIN,
        "\n[http]\nheader_timeout_secs = 2\nidle_timeout_secs = 3\nmax_connections_per_ip = 3\n",
    );
    let d = t.serve();
    let addr = format!("127.0.0.1:{}", d.http_port);
    // Half-sent headers: closed after the header timeout, with no answer to a request never
    // finished.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (got, closed) = read_until_closed(&mut slow, Duration::from_secs(10));
    assert!(closed, "a half-sent request holds its connection");
    assert!(!got.contains("200 OK"), "{got}");
    // A kept-alive connection with nothing more to ask: answered, then closed when idle.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (got, closed) = read_until_closed(&mut idle, Duration::from_secs(12));
    assert!(got.starts_with("HTTP/1.1 200 OK"), "{got}");
    assert!(got.contains("x-request-id: "), "{got}");
    assert!(closed, "an idle connection stays open");
    // Three connections from one address are its share; a fourth is closed unanswered.
    let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = TcpStream::connect(&addr).unwrap();
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let (got, closed) = read_until_closed(&mut extra, Duration::from_secs(1));
    assert!(closed && got.is_empty(), "{closed} {got:?}");
    drop(held);
    // Their places free again once the daemon has seen them close.
    let answered = (0..50).any(|_| {
        let mut later = TcpStream::connect(&addr).unwrap();
        let _ = later.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (got, _) = read_until_closed(&mut later, Duration::from_secs(5));
        got.starts_with("HTTP/1.1 200 OK") || {
            std::thread::sleep(Duration::from_millis(100));
            false
        }
    });
    assert!(answered, "the address's places did not free");
}

/// The daemon's pid as `hostel status --json` says, if it runs.
fn daemon_pid(t: &TestRun) -> Option<u64> {
    let out = t.command(&["status", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["daemon"]["pid"].as_u64()
}

fn wait_for(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("not within {secs}s: {what}");
}

/// Without systemd, `scripts/up` runs the daemon under `scripts/supervise`: a daemon killed
/// with SIGKILL comes back, and SIGTERM to the supervisor stops both for good.
#[test]
fn issue_13_the_supervisor_restarts_a_killed_daemon() {
    let t = TestRun::new(BIN);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/supervise");
    /// Stops the supervisor however the test ends.
    struct Supervisor(std::process::Child);
    impl Drop for Supervisor {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = self.0.wait();
        }
    }
    let mut sup = Supervisor(
        std::process::Command::new(&script)
            .arg(BIN)
            .args([
                "--ssh-listen",
                &format!("127.0.0.1:{}", hostel_testkit::free_port()),
                "--http-listen",
                &format!("127.0.0.1:{}", hostel_testkit::free_port()),
            ])
            .env("HOSTEL_ROOT", &t.root)
            .env_remove("HOSTEL_CONFIG")
            .spawn()
            .unwrap(),
    );
    wait_for(30, "the supervised daemon serves", || {
        daemon_pid(&t).is_some()
    });
    let first = daemon_pid(&t).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for(30, "a new daemon after the kill", || {
        daemon_pid(&t).is_some_and(|p| p != first)
    });
    let log = std::fs::read_to_string(t.root.join("logs/hostel.log")).unwrap();
    assert!(
        log.contains("supervise: hostel serve exited with status 137"),
        "{log}"
    );
    let second = daemon_pid(&t).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = sup.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        !std::path::Path::new(&format!("/proc/{second}")).exists(),
        "the daemon stopped with its supervisor"
    );
    assert_eq!(daemon_pid(&t), None);
    assert!(!t.root.join("state/supervise.pid").exists());
}

/// Regression (#13): after 30 kills under load, 200 tenants were stuck `creating` or `purging`
/// and every call on them got 409. `hostel bench chaos` kills the daemon under three API
/// clients and checks what it converges to.
#[test]
fn issue_13_the_daemon_converges_after_being_killed_under_load() {
    // Repairs that fail (the engine still busy with what a killed daemon asked) come back soon.
    let t = TestRun::with_config(BIN, "\n[lifecycle]\ncheck_secs = 2\n");
    let out = t.hostel(&[
        "bench",
        "chaos",
        "--kills",
        "20",
        "--clients",
        "3",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let r = out.json();
    assert_eq!(r["kills"], 20);
    for clean in [
        "stuck",
        "doctor",
        "lost_tenants",
        "lost_files",
        "purges_undone",
    ] {
        assert_eq!(r[clean], serde_json::json!([]), "{clean}: {r}");
    }
    assert_eq!(r["audit_error"], serde_json::Value::Null, "{r}");
    // How many calls finish between kills depends on how fast the engine is; that the kills
    // caught calls in flight does not.
    let ops = &r["operations"];
    let cut: u64 = ["create", "exec", "stop", "start", "purge"]
        .iter()
        .map(|k| ops[*k]["cut"].as_u64().unwrap())
        .sum();
    assert!(cut > 0, "no kill caught an operation: {r}");
    // Everything the run made is gone again.
    assert_eq!(
        t.hostel(&["list", "--json"]).ok().json(),
        serde_json::json!([])
    );
}
