//! The tenant's web sign-in against the real daemon: `hostel passwd` from stdin, sign in with
//! curl and a cookie jar, the portal page, a wrong password refused and audited, sign out.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hostel_testkit::TestRun;

const BIN: &str = env!("CARGO_BIN_EXE_hostel");

/// `curl` with the cookie jar `jar`: returns (HTTP status, body).
fn curl(jar: &std::path::Path, args: &[&str], url: &str) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-m", "20", "-b"])
        .arg(jar)
        .arg("-c")
        .arg(jar)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_owned())
}

#[test]
fn a_tenant_signs_in_with_its_web_password_and_out_again() {
    let t = TestRun::new(BIN);
    let name = t.create_tenant("web", &[]);
    let short = t.hostel_with_stdin(&["passwd", &name], b"short\n");
    assert_eq!(short.code, 2, "{}", short.stderr);
    assert!(short.stderr.contains("shorter than 12"), "{}", short.stderr);
    t.hostel_with_stdin(&["passwd", &name], b"a long and secret phrase\n")
        .ok();
    let d = t.serve();
    let base = format!("http://127.0.0.1:{}", d.http_port);
    let jar = t.root.join("cookies.txt");

    let (code, page) = curl(&jar, &[], &format!("{base}/login"));
    assert_eq!(code, 200);
    assert!(page.contains("Sign in"), "{page}");
    let (code, page) = curl(
        &jar,
        &[
            "--data-urlencode",
            &format!("name={name}"),
            "--data-urlencode",
            "password=not it at all",
        ],
        &format!("{base}/login"),
    );
    assert_eq!(code, 401);
    assert!(page.contains("Wrong tenant name or password."), "{page}");
    let (code, _) = curl(
        &jar,
        &[
            "--data-urlencode",
            &format!("name={name}"),
            "--data-urlencode",
            "password=a long and secret phrase",
        ],
        &format!("{base}/login"),
    );
    assert_eq!(code, 303);
    let jar_text = std::fs::read_to_string(&jar).unwrap();
    assert!(jar_text.contains("#HttpOnly_127.0.0.1"), "{jar_text}");
    let (code, page) = curl(&jar, &[], &format!("{base}/portal"));
    assert_eq!(code, 200);
    assert!(page.contains(&format!("<h1>{name}</h1>")), "{page}");
    assert!(page.contains("running"), "{page}");
    let (code, _) = curl(&jar, &["-X", "POST"], &format!("{base}/logout"));
    assert_eq!(code, 303);
    let (code, _) = curl(&jar, &[], &format!("{base}/portal"));
    assert_eq!(code, 303, "signed out: back to the sign-in page");

    // A one-time link signs in once (through the running daemon, so the URL is its address).
    let link = t.hostel(&["login-link", &name, "--ttl", "5m"]).ok().stdout;
    let link = link.trim();
    assert!(link.starts_with(&format!("{base}/login/link/")), "{link}");
    let jar2 = t.root.join("cookies2.txt");
    // Opening it signs nobody in: it asks to confirm, with a form of hostel's own.
    let (code, page) = curl(&jar2, &[], link);
    assert_eq!(code, 200);
    assert!(page.contains("method=\"post\""), "{page}");
    let (code, _) = curl(&jar2, &[], &format!("{base}/portal"));
    assert_eq!(code, 303, "not signed in by a GET");
    // Regression (#12): a page of another site POSTing the link is refused.
    let (code, _) = curl(
        &jar2,
        &["-X", "POST", "-H", "Origin: http://evil.example"],
        link,
    );
    assert_eq!(code, 403);
    let (code, _) = curl(
        &jar2,
        &["-X", "POST", "-H", &format!("Origin: {base}")],
        link,
    );
    assert_eq!(code, 303);
    let (code, page) = curl(&jar2, &[], &format!("{base}/portal"));
    assert_eq!(
        (code, page.contains(&format!("<h1>{name}</h1>"))),
        (200, true)
    );
    let (code, page) = curl(&t.root.join("cookies3.txt"), &["-X", "POST"], link);
    assert_eq!(code, 401, "a link works once");
    assert!(page.contains("does not work"), "{page}");

    let audit = t
        .hostel(&["audit", "--tenant", &name, "--json"])
        .ok()
        .json();
    let web: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"].as_str().unwrap().starts_with("web."))
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let pairs: Vec<(&str, &str)> = web.iter().map(|(k, o)| (k.as_str(), o.as_str())).collect();
    assert_eq!(
        pairs,
        // The short password was refused by the CLI before anything was asked of hostel.
        [
            ("web.passwd.v1", "ok"),
            ("web.auth.v1", "denied"),
            ("web.auth.v1", "ok"),
            ("web.logout.v1", "ok"),
            ("web.link.v1", "ok"),
            ("web.auth.v1", "ok"),
        ]
    );
}

/// A `hostel serve` child, killed on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn with_a_web_listener_of_its_own_the_tenants_pages_and_the_admin_api_are_apart() {
    let t = TestRun::new(BIN);
    let name = t.create_tenant("apart", &[]);
    t.hostel_with_stdin(&["passwd", &name], b"a long and secret phrase\n")
        .ok();
    let (ssh, http, web) = (
        hostel_testkit::free_port(),
        hostel_testkit::free_port(),
        hostel_testkit::free_port(),
    );
    let addr = |p: u16| format!("127.0.0.1:{p}");
    let _daemon = Child(
        t.command(&[
            "serve",
            "--ssh-listen",
            &addr(ssh),
            "--http-listen",
            &addr(http),
            "--web-listen",
            &addr(web),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap(),
    );
    for _ in 0..200 {
        if [http, web]
            .iter()
            .all(|p| std::net::TcpStream::connect(addr(*p)).is_ok())
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let jar = t.root.join("cookies.txt");
    let api = format!("http://{}", addr(http));
    let site = format!("http://{}", addr(web));

    // The tenant signs in on the web listener; its pages are there.
    let (code, _) = curl(
        &jar,
        &[
            "--data-urlencode",
            &format!("name={name}"),
            "--data-urlencode",
            "password=a long and secret phrase",
        ],
        &format!("{site}/login"),
    );
    assert_eq!(code, 303);
    let (code, page) = curl(&jar, &[], &format!("{site}/portal"));
    assert_eq!(code, 200, "{page}");
    let (code, _) = curl(&jar, &[], &format!("{site}/u/{name}/terminal/"));
    assert_eq!(code, 200);

    // Neither /admin nor the API is on the web listener; no tenant page is on the API's.
    for path in ["/admin", "/api/tenants", "/api/openapi.json"] {
        let (code, _) = curl(&jar, &[], &format!("{site}{path}"));
        assert_eq!(code, 404, "{path} on the web listener");
    }
    for path in ["/login", "/portal", &format!("/u/{name}/terminal/")] {
        let (code, _) = curl(&jar, &[], &format!("{api}{path}"));
        assert_eq!(code, 404, "{path} on the API listener");
    }
    let (code, page) = curl(&jar, &[], &format!("{api}/admin"));
    assert_eq!(code, 200);
    assert!(page.contains("API token"), "{page}");

    // Plain HTTP elsewhere than loopback is refused with the fix.
    let r = t.hostel(&["serve", "--web-listen", "0.0.0.0:1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("web listen address 0.0.0.0:1: plain HTTP listens on loopback only"),
        "{}",
        r.stderr
    );
}

/// `hostel port publish`: a port the workspace serves, reached at `PORT--TENANT.<domain>` on
/// the daemon's listener, for the tenant's own session (others go to sign in) or anyone.
#[test]
fn published_ports_are_reached_on_an_origin_of_their_own() {
    let t = TestRun::with_config(BIN, "\n[http]\ndomain = \"hostel.test\"\n");
    let name = t.create_tenant("ports", &[]);
    let served = t.sh(
        &name,
        "mkdir -p ~/site && echo hello-from-port > ~/site/index.html && \
         (cd ~/site && nohup python3 -m http.server 8000 >/dev/null 2>&1 &); \
         for i in $(seq 50); do grep -q ':1F40 ' /proc/net/tcp && exit 0; sleep 0.1; done; exit 1",
    );
    assert_eq!(served.code, 0, "{}", served.stderr);
    let d = t.serve();
    let jar = t.root.join("cookies.txt");
    let host = format!("Host: 8000--{name}.hostel.test:{}", d.http_port);
    let url = format!("http://127.0.0.1:{}/", d.http_port);
    let get = || curl(&jar, &["-H", &host], &url);

    assert_eq!(get().0, 404, "not published yet");
    let out = t.hostel(&["port", "publish", &name, "8000"]).ok().stdout;
    assert_eq!(
        out.trim(),
        format!("{name}: port 8000 published, for its own browser session only")
    );
    let (code, _) = get();
    assert_eq!(code, 303, "owner-only: a stranger goes to sign in");
    t.hostel(&["port", "publish", &name, "8000", "--public"])
        .ok();
    let (code, body) = get();
    assert_eq!((code, body.trim()), (200, "hello-from-port"));
    let listed = t.hostel(&["port", "list", &name, "--json"]).ok().json();
    assert_eq!(listed[0]["port"], 8000);
    assert_eq!(listed[0]["public"], true);
    t.hostel(&["port", "unpublish", &name, "8000"]).ok();
    assert_eq!(get().0, 404);
    let again = t
        .hostel(&["port", "unpublish", &name, "8000"])
        .expect_code(3);
    assert!(
        again.stderr.contains("does not publish port 8000"),
        "{}",
        again.stderr
    );
    let zero = t.hostel(&["port", "publish", &name, "0"]).expect_code(2);
    assert!(zero.stderr.contains("port 0"), "{}", zero.stderr);
    let kinds = t.audit_kinds(&[]);
    assert!(
        kinds.iter().any(|k| k == "port.publish.v1")
            && kinds.iter().any(|k| k == "port.unpublish.v1"),
        "{kinds:?}"
    );
}
