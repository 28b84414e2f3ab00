//! The web gateway in real headless Chromium (Debian's, driven by playwright-core from npm:
//! `web/tests/browser.mjs`) against the real daemon and engine: sign in and out, the terminal,
//! JupyterLab, VS Code and the desktop in one workspace sharing its home with SSH, another
//! tenant's pages refused, and the admin dashboard. Screenshots land in
//! `target/screenshots/` (docs/screenshots/ holds copies for the README).
//!
//! Needs the desktop image profile (`hostel image build --profile desktop`, which the test
//! command runs), `chromium` and `web/node_modules` (the test command installs both).

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hostel_testkit::{Daemon, TestRun};
use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_hostel");
const PASSWORD: &str = "correct horse battery staple";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs one browser scenario; returns its findings, or panics with what the browser said.
fn browser(d: &Daemon, scenario: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let shots = repo().join("target/screenshots");
    let out = Command::new("node")
        .arg(repo().join("web/tests/browser.mjs"))
        .arg(scenario)
        .env("HOSTEL_URL", format!("http://127.0.0.1:{}", d.http_port))
        .env("HOSTEL_SHOTS", &shots)
        .envs(env.iter().copied())
        .output()
        .expect("node is needed (scripts/test installs what the browser tests use)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser scenario {scenario} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    eprintln!("{found}");
    found
}

fn with_password(t: &TestRun, name: &str) {
    t.hostel_with_stdin(&["passwd", name], format!("{PASSWORD}\n").as_bytes())
        .ok();
}

#[test]
fn a_tenant_with_only_a_browser_works_in_terminal_notebook_editor_and_desktop() {
    let t = TestRun::new(BIN);
    let big = [
        "--image", "desktop", "--memory", "3G", "--disk", "2G", "--pids", "2048",
    ];
    let a = t.create_tenant("web", &big);
    let b = t.create_tenant("other", &[]);
    with_password(&t, &a);
    with_password(&t, &b);
    let d = t.serve();
    let me = [("HOSTEL_TENANT", a.as_str()), ("HOSTEL_PASSWORD", PASSWORD)];

    // Sign in and out; the wrong password is audited like a failed SSH login.
    browser(&d, "login", &me);
    let audit = t.hostel(&["--json", "audit"]).ok().json();
    let auth: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "web.auth.v1")
        .collect();
    assert!(
        auth.iter()
            .any(|e| e["outcome"] == "denied" && e["tenant"] == a.as_str()),
        "{auth:?}"
    );
    assert!(
        auth.iter()
            .any(|e| e["outcome"] == "ok" && e["actor"] == format!("web:{a}")),
        "{auth:?}"
    );

    // The terminal wakes a stopped workspace; then again with it running.
    t.hostel(&["stop", &a]).ok();
    let stopped = browser(&d, "terminal", &me);
    let running = browser(&d, "terminal", &me);
    eprintln!(
        "login -> prompt: stopped {} ms, running {} ms; echo median {:.1} ms",
        stopped["login_to_prompt_ms"], running["login_to_prompt_ms"], running["echo_median_ms"]
    );

    // Another tenant's pages and socket are refused, and audited.
    let mut other = me.to_vec();
    other.push(("HOSTEL_OTHER", b.as_str()));
    browser(&d, "isolation", &other);
    let audit = t.hostel(&["--json", "audit"]).ok().json();
    let denied = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "web.denied.v1" && e["actor"] == format!("web:{a}"))
        .count();
    assert!(denied >= 5, "{denied} web.denied records");

    // JupyterLab writes a file that SSH sees (from a stopped workspace, then a running one).
    t.hostel(&["stop", &a]).ok();
    let cold = browser(&d, "jupyter", &me);
    let warm = browser(&d, "jupyter", &me);
    eprintln!(
        "JupyterLab first paint: stopped {} ms, running {} ms",
        cold["first_paint_ms"], warm["first_paint_ms"]
    );
    let key = "web-key";
    let r = t.ssh(&d, key, &a, &["cat from-jupyter.txt"]).ok();
    assert_eq!(r.stdout, "written in JupyterLab");

    // VS Code shows the home, with a file SSH put there.
    t.ssh(&d, key, &a, &["echo hi > hello-from-ssh.txt"]).ok();
    let mut file = me.to_vec();
    file.push(("HOSTEL_FILE", "hello-from-ssh.txt"));
    browser(&d, "code", &file);

    // The desktop paints (from a stopped workspace, then a running one).
    t.hostel(&["stop", &a]).ok();
    let cold = browser(&d, "desktop", &me);
    let warm = browser(&d, "desktop", &me);
    eprintln!(
        "desktop first paint: stopped {} ms, running {} ms",
        cold["first_paint_ms"], warm["first_paint_ms"]
    );

    // The apps listen on the workspace's own address, never on a host port.
    let ports = hostel_testkit::docker(&["port", &format!("hostel-{a}")]);
    assert_eq!(ports.stdout.trim(), "", "{ports:?}");
}

#[test]
fn the_admin_dashboard_creates_and_purges_a_tenant() {
    let t = TestRun::new(BIN);
    let d = t.serve();
    let token = t.hostel(&["--json", "token", "create", "dash"]).ok().json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let name = t.tenant("dash");
    let key = t.keypair("dash-key");
    let public = std::fs::read_to_string(key).unwrap();
    let found = browser(
        &d,
        "admin",
        &[
            ("HOSTEL_ADMIN_TOKEN", token.as_str()),
            ("HOSTEL_NEW", name.as_str()),
            ("HOSTEL_KEY", public.trim()),
        ],
    );
    // The changes were the token's, and the tenant is gone for good.
    assert!(
        found["actors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a == "api:dash"),
        "{found}"
    );
    let r = t.hostel(&["info", &name]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(!t.home(&name).exists());
}
