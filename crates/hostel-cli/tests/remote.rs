//! The CLI against a daemon elsewhere (`--server`), over mutual TLS and with tokens, against the
//! real daemon and engine: the same output and exit codes as on the server itself, and the local
//! CLI going through the local daemon while one runs.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hostel_testkit::{Run, TestRun};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_hostel");

/// A client of `server` that has no hostel root of its own: anything it did locally would fail.
struct Remote {
    server: String,
    args: Vec<String>,
}

impl Remote {
    fn mtls(server: String, tls: &Path) -> Remote {
        let file = |n: &str| tls.join(n).display().to_string();
        Remote {
            server,
            args: vec![
                "--ca".into(),
                file("ca.pem"),
                "--cert".into(),
                file("client.pem"),
                "--cert-key".into(),
                file("client.key"),
            ],
        }
    }

    fn token(server: String, token: &str) -> Remote {
        Remote {
            server,
            args: vec!["--token".into(), token.into()],
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args([
            "--root",
            "/nonexistent/hostel-root",
            "--server",
            &self.server,
        ])
        .args(&self.args)
        .args(args)
        .env_remove("HOSTEL_ROOT")
        .env_remove("HOSTEL_SERVER")
        .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().unwrap().into()
    }

    fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        out
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_cli_runs_every_command_against_a_remote_daemon_over_mutual_tls() {
    let t = TestRun::with_config(BIN, "\n[http]\ntls = true\n");
    t.hostel(&["cert", "generate"]).ok();
    let tls = t.root.join("etc/tls");
    let mut d = t.serve();
    let remote = Remote::mtls(format!("https://127.0.0.1:{}", d.http_port), &tls);

    let name = t.tenant("remote");
    let key = t.keypair("remote");
    let made = remote
        .run(&[
            "create",
            &name,
            "--key",
            path(&key),
            "--memory",
            "256M",
            "--disk",
            "256M",
            "--pids",
            "128",
        ])
        .ok();
    assert!(
        made.stdout.contains(&format!("tenant {name} is ready")),
        "{}",
        made.stdout
    );
    // The same answer as the server's own CLI (which goes through the local daemon).
    assert_eq!(
        remote.run(&["list", "--json"]).ok().json(),
        t.hostel(&["list", "--json"]).ok().json()
    );

    // exec: stdin in, stdout and stderr apart and byte for byte, the exact exit code.
    let input: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let out = remote.run_with_stdin(
        &[
            "exec",
            &name,
            "--",
            "sh",
            "-c",
            "cat; echo oops >&2; exit 3",
        ],
        &input,
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == input, "stdout differs from stdin");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");

    // Policies change after create, and info shows them.
    let set = remote
        .run(&["set", &name, "--ttl", "2h", "--idle-stop", "10m"])
        .ok();
    assert!(set.stdout.contains("expires never -> "), "{}", set.stdout);
    assert!(
        set.stdout
            .contains("idle_stop default -> 600s, applied now"),
        "{}",
        set.stdout
    );
    let info = remote.run(&["info", &name]).ok().stdout;
    assert!(info.contains("deleted at "), "{info}");
    assert!(info.contains("stopped after 600s idle"), "{info}");

    // Files in and out, confined to the home.
    let file = t.file("hello.txt", "hello from afar\n");
    remote
        .run(&["cp", path(&file), &format!("{name}:docs/hello.txt")])
        .ok();
    let back = t.root.join("back.txt");
    remote
        .run(&["cp", &format!("{name}:docs/hello.txt"), path(&back)])
        .ok();
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "hello from afar\n");
    let escape = remote
        .run(&["cp", path(&file), &format!("{name}:../../etc/evil")])
        .expect_code(2);
    assert!(escape.stderr.contains("error:"), "{}", escape.stderr);

    // Keys, stop and start, tokens, bans, images, the check, the audit log, status.
    let other = t.keypair("remote-2");
    remote
        .run(&["key", "add", &name, "--key", path(&other)])
        .ok();
    let keys = remote.run(&["key", "list", &name, "--json"]).ok().json();
    assert_eq!(keys.as_array().unwrap().len(), 2);
    let fp = keys[1]["fingerprint"].as_str().unwrap().to_owned();
    remote.run(&["key", "remove", &name, &fp]).ok();
    // Ports have an origin only under [http] domain, which this daemon lacks: refused, with
    // the setting named.
    let port = remote
        .run(&["port", "publish", &name, "8000"])
        .expect_code(2);
    assert!(port.stderr.contains("[http] domain"), "{}", port.stderr);
    let ports = remote.run(&["port", "list", &name, "--json"]).ok().json();
    assert_eq!(ports, serde_json::json!([]));
    assert!(remote.run(&["stop", &name]).ok().stdout.contains("stopped"));
    assert_eq!(
        remote.run(&["start", &name]).ok().stdout.trim(),
        format!("{name} started")
    );
    let secret = remote.run(&["token", "create", "ci-remote"]).ok().stdout;
    assert!(secret.starts_with("hostel_"), "{secret}");
    remote.run(&["token", "revoke", "ci-remote"]).ok();
    remote
        .run(&["ban", "add", "203.0.113.9", "--for", "1h"])
        .ok();
    assert!(
        remote
            .run(&["ban", "list"])
            .ok()
            .stdout
            .contains("203.0.113.9")
    );
    remote.run(&["ban", "remove", "203.0.113.9"]).ok();
    assert!(
        remote
            .run(&["image", "list"])
            .ok()
            .stdout
            .contains("hostel-workspace")
    );
    remote.run(&["audit", "verify"]).ok();
    let status = remote.run(&["status"]).ok().stdout;
    assert!(status.contains("daemon running, pid"), "{status}");
    let config = remote.run(&["ssh-config", &name]).ok().stdout;
    assert!(
        config.contains("HostName 127.0.0.1") && config.contains(&format!("Port {}", d.ssh_port)),
        "{config}"
    );

    // Errors: the same text and exit code as on the server.
    let here = t.hostel(&["info", "nosuch"]).expect_code(3);
    let there = remote.run(&["info", "nosuch"]).expect_code(3);
    assert_eq!(there.stderr, here.stderr);
    let bad = remote.run(&["info", "Bad_Name"]).expect_code(2);
    assert_eq!(bad.stderr, t.hostel(&["info", "Bad_Name"]).stderr);
    remote.run(&["purge", &name]).expect_code(2);
    remote.run(&["serve"]).expect_code(2);

    // A client of another CA is refused at the handshake.
    let stranger = TestRun::new(BIN);
    stranger.hostel(&["cert", "generate"]).ok();
    let refused = Remote::mtls(remote.server.clone(), &stranger.root.join("etc/tls"))
        .run(&["list"])
        .expect_code(1);
    assert!(
        refused
            .stderr
            .contains("cannot reach the hostel daemon at https://127.0.0.1"),
        "{}",
        refused.stderr
    );

    // The server's own CLI went through the daemon: its changes are API calls by cli:<user>.
    t.hostel(&["stop", &name]).ok();
    let audit = t.hostel(&["audit", "--json"]).ok().json();
    let calls: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "api.call.v1")
        .map(|r| {
            (
                r["actor"].as_str().unwrap(),
                r["detail"]["path"].as_str().unwrap(),
            )
        })
        .collect();
    let stop_path = format!("/api/tenants/{name}/stop");
    assert!(
        calls
            .iter()
            .any(|(a, p)| a.starts_with("cli:") && *p == stop_path),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .filter(|(a, _)| !a.starts_with("cli:"))
            .all(|(a, _)| a.starts_with("api:cert-")),
        "{calls:?}"
    );

    remote.run(&["purge", &name, "--yes"]).ok();
    assert!(!t.home(&name).exists());

    // With the daemon gone the server's CLI works directly, and says the same.
    d.terminate();
    d.wait();
    let direct = t.hostel(&["info", "nosuch"]).expect_code(3);
    assert_eq!(direct.stderr, there.stderr);
    let gone = remote.run(&["list"]).expect_code(1);
    assert!(
        gone.stderr.contains("cannot reach the hostel daemon"),
        "{}",
        gone.stderr
    );
}

#[test]
fn tokens_decide_what_a_remote_cli_may_do() {
    let t = TestRun::new(BIN);
    let admin = t.hostel(&["token", "create", "ops"]).ok().stdout;
    let viewer = t
        .hostel(&["token", "create", "watch", "--role", "viewer"])
        .ok()
        .stdout;
    let d = t.serve();
    let server = format!("http://127.0.0.1:{}", d.http_port);
    let ops = Remote::token(server.clone(), admin.trim());
    let watch = Remote::token(server.clone(), viewer.trim());
    let nobody = Remote::token(server.clone(), "hostel_not-a-token");

    assert_eq!(
        ops.run(&["list", "--json"]).ok().json(),
        serde_json::json!([])
    );
    watch.run(&["list"]).ok();
    let denied = watch.run(&["ban", "add", "198.51.100.1"]).expect_code(1);
    assert!(denied.stderr.contains("viewer"), "{}", denied.stderr);
    let unknown = nobody.run(&["list"]).expect_code(1);
    assert!(
        unknown.stderr.contains("unknown or revoked API token"),
        "{}",
        unknown.stderr
    );
    // HOSTEL_SERVER and HOSTEL_TOKEN work like the flags.
    let by_env: Run = Command::new(BIN)
        .args([
            "--root",
            "/nonexistent/hostel-root",
            "token",
            "list",
            "--json",
        ])
        .env("HOSTEL_SERVER", &server)
        .env("HOSTEL_TOKEN", admin.trim())
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .into();
    let names: Vec<String> = by_env
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["ops", "watch"]);
    let bad = Remote::token("ftp://127.0.0.1".into(), "x")
        .run(&["list"])
        .expect_code(2);
    assert!(bad.stderr.contains("not an http"), "{}", bad.stderr);
}
