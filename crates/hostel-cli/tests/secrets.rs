//! Secrets at rest and in logs, against the real daemon: private keys and the local CLI's secret
//! are 0600, API tokens are stored only as hashes, and no token reaches the store, the audit
//! log or the daemon's own log, even at debug level.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hostel_testkit::{TestRun, free_port};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hostel");

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn contains(p: &Path, needle: &str) -> bool {
    let bytes = std::fs::read(p).unwrap_or_default();
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn secrets_are_private_hashed_and_never_logged() {
    let t = TestRun::new(BIN);
    let token = t
        .hostel(&["token", "create", "secret-check"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    t.hostel(&["cert", "generate"]).ok();
    let (ssh_port, http_port) = (free_port(), free_port());
    let log = t.root.join("daemon-debug.log");
    let mut daemon = t
        .command(&[
            "serve",
            "--ssh-listen",
            &format!("127.0.0.1:{ssh_port}"),
            "--http-listen",
            &format!("127.0.0.1:{http_port}"),
        ])
        .env("HOSTEL_LOG", "debug")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(t.root.join("daemon-debug.err")).unwrap())
        .spawn()
        .unwrap();
    // Ready once it wrote its state file (after the local secret), not when the port answers:
    // the listener is bound before the secret is written.
    let state = t.root.join("state/hostel.serve");
    let pid = format!("\"pid\":{}", daemon.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", http_port)).is_err()
        || !std::fs::read_to_string(&state).is_ok_and(|s| s.contains(&pid))
    {
        assert!(Instant::now() < deadline, "the daemon did not listen");
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "the daemon exited: {}",
            std::fs::read_to_string(t.root.join("daemon-debug.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let local = std::fs::read_to_string(t.root.join("state/cli.token")).unwrap();
    assert_eq!(mode(&t.root.join("state/cli.token")), 0o600);
    // The token used, right and wrong; the local secret used by the CLI.
    for bearer in [
        token.as_str(),
        "hostel_wrong0000000000000000000000000000000",
    ] {
        std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-H"])
            .arg(format!("Authorization: Bearer {bearer}"))
            .arg(format!("http://127.0.0.1:{http_port}/api/tenants"))
            .status()
            .unwrap();
    }
    t.hostel(&["token", "list"]).ok();
    let _ = daemon.kill();
    let _ = daemon.wait();

    for key in [
        "etc/ssh_host_ed25519_key",
        "etc/tls/server.key",
        "etc/tls/client.key",
    ] {
        assert_eq!(mode(&t.root.join(key)), 0o600, "{key}");
    }
    for entry in std::fs::read_dir(t.root.join("etc/tls")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "key") {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
    let places = [
        t.root.join("state/hostel.db"),
        t.root.join("state/hostel.db-wal"),
        t.root.join("logs/audit.jsonl"),
        log.clone(),
        t.root.join("daemon-debug.err"),
    ];
    assert!(
        std::fs::metadata(t.root.join("daemon-debug.err"))
            .unwrap()
            .len()
            > 0,
        "the debug log has content"
    );
    for p in &places {
        assert!(!contains(p, &token), "the token is in {}", p.display());
        assert!(
            !contains(p, local.trim()),
            "the local secret is in {}",
            p.display()
        );
    }
    // Only its hash is stored, and the token still works: it is the store's, not a copy's.
    let hash = sha256_hex(token.as_bytes());
    assert!(
        contains(&t.root.join("state/hostel.db"), &hash)
            || contains(&t.root.join("state/hostel.db-wal"), &hash),
        "the token's SHA-256 is what the store keeps"
    );
}

/// SHA-256 in hex by the system's `sha256sum`, so the test does not reuse the code it checks.
fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}
