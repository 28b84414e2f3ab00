//! The SSH gateway with the real OpenSSH client (ssh, scp, sftp, rsync) against the real engine.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hostel_testkit::{TestRun, docker, ssh_options};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_hostel");

#[test]
fn exec_statuses_streams_stdin_and_env() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("exec", &[]);
    let d = t.serve();
    let key = "exec-key";
    for code in [0, 1, 42] {
        let r = t.ssh(&d, key, &a, &[&format!("exit {code}")]);
        assert_eq!(r.code, code, "{r:?}");
    }
    let r = t
        .ssh(&d, key, &a, &["echo out; echo err >&2; id -un; pwd"])
        .ok();
    assert_eq!(r.stdout, format!("out\n{a}\n/home/{a}\n"));
    assert_eq!(r.stderr, "err\n");
    let mut child = t
        .ssh_command(&d, key, &a, &["sha256sum"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let data: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let out = child.wait_with_output().unwrap();
    let local = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut local = local;
    local.stdin.take().unwrap().write_all(&data).unwrap();
    let local = local.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&local.stdout)
    );
    let r = t
        .ssh_command(
            &d,
            key,
            &a,
            &[
                "-o",
                "SetEnv=LC_TIME=C.UTF-8 LD_PRELOAD=/evil",
                "echo $LC_TIME:$LD_PRELOAD",
            ],
        )
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout), "C.UTF-8:\n");
}

#[test]
fn pty_shell_has_term_size_ctrl_c_and_exit_status() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("pty", &[]);
    let d = t.serve();
    let opts = ssh_options(&d, &t.private_key("pty-key")).join(" ");
    let script = format!("stty cols 100 rows 30; ssh -tt {opts} {a}@127.0.0.1");
    let mut child = Command::new("script")
        .args(["-qec", &script, "/dev/null"])
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // Ctrl-C reaches the foreground process through the terminal, not the session.
    stdin.write_all(b"sleep 60; echo slept\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    stdin.write_all(b"\x03").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    stdin
        .write_all(b"echo T=$TERM; tty; stty size; exit 3\n")
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("T=xterm-256color"), "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("30 100"), "{text}");
    assert!(
        !text.contains("\nslept"),
        "Ctrl-C must interrupt sleep: {text}"
    );
    assert!(text.contains("^C"), "{text}");
}

#[test]
fn scp_sftp_and_rsync_land_in_the_home() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("files", &[]);
    let d = t.serve();
    let opts = ssh_options(&d, &t.private_key("files-key"));
    let scp_opts: Vec<String> = opts
        .iter()
        .map(|o| {
            if o == "-p" {
                "-P".to_owned()
            } else {
                o.clone()
            }
        })
        .collect();
    let blob = t.file("blob", &"hostel ".repeat(100_000));
    let dest = format!("{a}@127.0.0.1:");
    for (mode, name) in [(None, "sftp-mode"), (Some("-O"), "legacy-mode")] {
        let mut c = Command::new("scp");
        c.args(&scp_opts);
        if let Some(m) = mode {
            c.arg(m);
        }
        let out = c.arg(&blob).arg(format!("{dest}{name}")).output().unwrap();
        assert!(out.status.success(), "scp {mode:?}: {out:?}");
        let landed = t.home(&a).join(name);
        assert_eq!(
            std::fs::read(&landed).unwrap(),
            std::fs::read(&blob).unwrap()
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&landed).unwrap().uid(),
            hostel_testkit::tenant_host_uid()
        );
    }
    let batch = t.file("batch", "mkdir made\nput blob made/put\nls made\n");
    let out = Command::new("sftp")
        .args(&scp_opts)
        .arg("-b")
        .arg(&batch)
        .arg(format!("{a}@127.0.0.1"))
        .current_dir(&t.root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(t.home(&a).join("made/put").is_file());

    let tree = t.root.join("tree");
    std::fs::create_dir_all(tree.join("x/y")).unwrap();
    std::fs::write(tree.join("x/y/z"), "deep").unwrap();
    std::fs::write(tree.join("top"), "top").unwrap();
    let rsync = |extra: &[&str]| {
        Command::new("rsync")
            .args(["-a", "--stats"])
            .args(extra)
            .arg("-e")
            .arg(format!("ssh {}", opts.join(" ")))
            .arg(format!("{}/", tree.display()))
            .arg(format!("{a}@127.0.0.1:tree/"))
            .output()
            .unwrap()
    };
    let first = rsync(&[]);
    assert!(first.status.success(), "{first:?}");
    assert_eq!(
        std::fs::read_to_string(t.home(&a).join("tree/x/y/z")).unwrap(),
        "deep"
    );
    let again = rsync(&[]);
    let stats = String::from_utf8_lossy(&again.stdout);
    assert!(
        stats.contains("Number of regular files transferred: 0"),
        "{stats}"
    );
}

#[test]
fn wrong_key_unknown_tenant_and_revoked_key_are_refused_and_audited() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("auth", &[]);
    let b = t.create_tenant("other", &[]);
    let d = t.serve();
    t.keypair("stranger");
    let denied = |key: &str, user: &str| {
        let r = t.ssh(&d, key, user, &["true"]);
        assert_eq!(r.code, 255, "{r:?}");
        assert!(
            r.stderr.contains("Permission denied (publickey)"),
            "{}",
            r.stderr
        );
    };
    denied("stranger", &a);
    denied("auth-key", "nosuchtenant");
    denied("auth-key", &b);
    // A password is never asked for.
    let r = t
        .ssh_command(&d, "stranger", &a, &["true"])
        .args(["-o", "PreferredAuthentications=password"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(255));
    // A key added works at the next connection; removed, it stops working.
    let second = t.keypair("second");
    t.hostel(&["key", "add", &a, "--key", second.to_str().unwrap()])
        .ok();
    t.ssh(&d, "second", &a, &["true"]).ok();
    let keys = t.hostel(&["key", "list", &a, "--json"]).ok().json();
    let fp = keys[1]["fingerprint"].as_str().unwrap().to_owned();
    t.hostel(&["key", "remove", &a, &fp]).ok();
    denied("second", &a);
    let audit = t.hostel(&["audit", "--json", "--failed"]).ok().json();
    let auth: Vec<&serde_json::Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "ssh.auth.v1" && r["detail"]["method"] == "publickey")
        .collect();
    assert!(auth.len() >= 4, "{audit}");
    assert!(auth.iter().all(|r| {
        r["outcome"] == "denied"
            && r["detail"]["peer"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:")
    }));
    let kinds = t.audit_kinds(&["--tenant", &a]);
    assert!(
        kinds.iter().any(|k| k == "ssh.auth.v1") && kinds.iter().any(|k| k == "ssh.session.v1"),
        "{kinds:?}"
    );
}

#[test]
fn ssh_wakes_stopped_and_deleted_workspaces() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("wake", &[]);
    let d = t.serve();
    t.ssh(&d, "wake-key", &a, &["echo kept > f"]).ok();
    t.hostel(&["stop", &a]).ok();
    assert_eq!(t.ssh(&d, "wake-key", &a, &["cat f"]).ok().stdout, "kept\n");
    t.hostel(&["delete", &a]).ok();
    assert_eq!(t.ssh(&d, "wake-key", &a, &["cat f"]).ok().stdout, "kept\n");
    // Two first connections at once: one workspace, both get in.
    t.hostel(&["delete", &a]).ok();
    let spawn = || {
        t.ssh_command(&d, "wake-key", &a, &["hostname"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (x, y) = (spawn(), spawn());
    for out in [x.wait_with_output().unwrap(), y.wait_with_output().unwrap()] {
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{a}\n"));
    }
    let n = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=io.hostel.test-run={}", t.id),
    ])
    .stdout;
    assert_eq!(n.lines().count(), 1);
}

/// Opens `ssh -L port:target -N` at the default log level (so the client says why a channel
/// failed); returns the child and the local port.
fn forward(
    t: &TestRun,
    d: &hostel_testkit::Daemon,
    key: &str,
    user: &str,
    target: &str,
) -> (std::process::Child, u16) {
    let port = hostel_testkit::free_port();
    let opts: Vec<String> = ssh_options(d, &t.private_key(key))
        .into_iter()
        .filter(|o| o != "LogLevel=ERROR")
        .collect();
    let opts = &opts[..opts.len() - 1];
    let child = Command::new("ssh")
        .args(opts)
        .args([
            "-L",
            &format!("{port}:{target}"),
            "-N",
            &format!("{user}@127.0.0.1"),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (child, port)
}

/// Sends `request` through a forwarded port and returns all it reads back.
fn through(port: u16, request: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf
}

#[test]
fn tenants_cannot_see_each_others_files_or_processes() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("iso-a", &[]);
    let b = t.create_tenant("iso-b", &[]);
    let d = t.serve();
    t.ssh(
        &d,
        "iso-b-key",
        &b,
        &["echo secret > mine; nohup sleep 300 >/dev/null 2>&1 &"],
    )
    .ok();
    let r = t.ssh(
        &d,
        "iso-a-key",
        &a,
        &[&format!(
            "ls /home; cat /home/{b}/mine; ps -eo user= | sort -u"
        )],
    );
    assert_eq!(r.stdout, format!("{a}\nroot\n{a}\n"), "{r:?}");
    assert!(
        r.stderr.contains("No such file or directory"),
        "{}",
        r.stderr
    );
}

#[test]
fn local_forwarding_reaches_only_the_tenants_own_ports() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("fwd-a", &[]);
    let b = t.create_tenant("fwd-b", &[]);
    let d = t.serve();
    t.ssh(&d, "fwd-a-key", &a, &["mkdir -p www && echo hello-from-a > www/index.html && cd www && (nohup python3 -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1 &) && sleep 1"]).ok();
    let (mut ok, port) = forward(&t, &d, "fwd-a-key", &a, "localhost:8000");
    let request = b"GET /index.html HTTP/1.0\r\n\r\n";
    let reply = String::from_utf8_lossy(&through(port, request)).into_owned();
    assert!(reply.starts_with("HTTP/1.0 200"), "{reply}");
    assert!(reply.ends_with("hello-from-a\n"), "{reply}");
    let _ = ok.kill();
    let _ = ok.wait();
    // The host as the default bridge sees it (docker0's address).
    let ip = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "docker0"])
        .output()
        .unwrap();
    let gateway = String::from_utf8_lossy(&ip.stdout)
        .split_whitespace()
        .nth(3)
        .and_then(|a| a.split('/').next())
        .unwrap()
        .to_owned();
    for target in [
        format!("{gateway}:{}", d.ssh_port),
        format!("{b}:8000"),
        "10.255.255.1:80".to_owned(),
    ] {
        let (mut child, port) = forward(&t, &d, "fwd-a-key", &a, &target);
        assert_eq!(
            through(port, b"x"),
            Vec::<u8>::new(),
            "{target} must be refused"
        );
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("administratively prohibited"),
            "{target}: {out:?}"
        );
    }
    let audit = t.hostel(&["audit", "--json", "--tenant", &a]).ok().json();
    // Each connection through a forward is one channel, one record (the helper's readiness
    // probe makes one too).
    let fwd: std::collections::BTreeSet<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "ssh.forward.v1")
        .map(|r| {
            (
                r["detail"]["target"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: std::collections::BTreeSet<(String, String)> = [
        ("localhost:8000".to_owned(), "ok".to_owned()),
        (format!("{gateway}:{}", d.ssh_port), "denied".to_owned()),
        (format!("{b}:8000"), "denied".to_owned()),
        ("10.255.255.1:80".to_owned(), "denied".to_owned()),
    ]
    .into();
    assert_eq!(fwd, want);
    // The allowed one ended with the bytes it moved: the request up, the page down.
    let ends: Vec<(u64, u64)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "ssh.forward_end.v1" && r["outcome"] == "ok")
        .map(|r| {
            (
                r["detail"]["bytes_up"].as_str().unwrap().parse().unwrap(),
                r["detail"]["bytes_down"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert!(
        ends.iter()
            .any(|&(up, down)| up == request.len() as u64 && down == reply.len() as u64),
        "{ends:?}"
    );
}

/// Regression (#12): one address's failures banned everyone behind it (a proxy, a NAT).
/// Failures as one tenant ban the address for that tenant; many failures in all ban it for
/// everything; both end when the ban does.
#[test]
fn issue_12_failures_ban_the_address_for_the_tenant_then_for_everything() {
    let t = TestRun::with_config(
        BIN,
        "\n[ssh]\nban_after_failures = 3\nban_address_after_failures = 6\nban_secs = 4\n",
    );
    let a = t.create_tenant("ban", &[]);
    let b = t.create_tenant("other", &[]);
    let d = t.serve();
    t.keypair("stranger");
    for _ in 0..3 {
        assert_eq!(t.ssh(&d, "stranger", &a, &["true"]).code, 255);
    }
    // The right key as A from the banned address is refused at login...
    let r = t.ssh(&d, "ban-key", &a, &["true"]);
    assert_eq!(r.code, 255, "{r:?}");
    assert!(r.stderr.contains("Permission denied"), "{}", r.stderr);
    // ...while B behind the same address, and A from another, get in.
    assert_eq!(t.ssh(&d, "other-key", &b, &["echo in"]).ok().stdout, "in\n");
    let other = t
        .ssh_command(&d, "ban-key", &a, &["-b", "127.0.0.2", "echo in"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&other.stdout), "in\n", "{other:?}");
    let bans = t.hostel(&["ban", "list", "--json"]).ok().json();
    assert_eq!(bans.as_array().unwrap().len(), 1, "{bans}");
    assert_eq!(bans[0]["address"], "127.0.0.1");
    assert_eq!(bans[0]["tenant"], a.as_str());
    assert_eq!(
        bans[0]["reason"],
        format!("3 failed logins as {a} within 600s")
    );
    // Three more failures, as names of no tenant, make six from the address: banned for
    // everything, refused before any SSH exchange.
    for n in 0..3 {
        assert_eq!(
            t.ssh(&d, "stranger", &format!("nobody{n}"), &["true"]).code,
            255
        );
    }
    let r = t.ssh(&d, "other-key", &b, &["true"]);
    assert_eq!(r.code, 255, "{r:?}");
    assert!(
        !r.stderr.contains("Permission denied"),
        "refused before auth: {}",
        r.stderr
    );
    let listed = t.hostel(&["ban", "list"]).ok().stdout;
    assert!(listed.contains("anyone") && listed.contains(&a), "{listed}");
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert_eq!(
        t.ssh(&d, "ban-key", &a, &["echo back"]).ok().stdout,
        "back\n"
    );
    let kinds = t.audit_kinds(&[]);
    assert!(
        kinds.iter().any(|k| k == "ssh.ban.v1") && kinds.iter().any(|k| k == "ssh.unban.v1"),
        "{kinds:?}"
    );

    // By hand: add with a duration, list, remove.
    let added = t.hostel(&["ban", "add", "127.0.0.2", "--for", "1h"]).ok();
    assert!(
        added.stdout.starts_with("127.0.0.2 banned until "),
        "{}",
        added.stdout
    );
    let refused = t
        .ssh_command(&d, "ban-key", &a, &["-b", "127.0.0.2", "true"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(255));
    t.hostel(&["ban", "remove", "127.0.0.2"]).ok();
    let r = t.hostel(&["ban", "remove", "127.0.0.2"]).expect_code(3);
    assert_eq!(
        r.error_text(),
        "error: address 127.0.0.2 is not banned\nhint: list bans with `hostel ban list`\n"
    );
    let r = t.hostel(&["ban", "add", "not-an-ip"]).expect_code(2);
    assert!(
        r.stderr
            .starts_with("error: address \"not-an-ip\": not an IPv4 or IPv6 address"),
        "{}",
        r.stderr
    );
}

#[test]
fn stopping_the_workspace_ends_sessions_with_a_message() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("cut", &[]);
    let d = t.serve();
    let child = t
        .ssh_command(&d, "cut-key", &a, &["echo started; sleep 60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    t.hostel(&["stop", &a]).ok();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("hostel: the workspace was stopped; this session ended with it"),
        "{out:?}"
    );
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn rsa_keys_work_only_with_sha2_signatures_and_only_publickey_is_offered() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("rsa", &[]);
    let rsa = t.root.join("keys/rsa");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "3072", "-N", "", "-f"])
        .arg(&rsa)
        .output()
        .unwrap();
    assert!(made.status.success());
    t.hostel(&[
        "key",
        "add",
        &a,
        "--key",
        rsa.with_extension("pub").to_str().unwrap(),
    ])
    .ok();
    let d = t.serve();
    assert_eq!(t.ssh(&d, "rsa", &a, &["echo sha2"]).ok().stdout, "sha2\n");
    let sha1 = t
        .ssh_command(
            &d,
            "rsa",
            &a,
            &["-o", "PubkeyAcceptedAlgorithms=ssh-rsa", "true"],
        )
        .output()
        .unwrap();
    assert_eq!(sha1.status.code(), Some(255), "{sha1:?}");
    let ki = t
        .ssh_command(
            &d,
            "rsa",
            &a,
            &[
                "-o",
                "PreferredAuthentications=keyboard-interactive",
                "true",
            ],
        )
        .output()
        .unwrap();
    assert_eq!(ki.status.code(), Some(255), "{ki:?}");
    // Neither is offered (server-sig-algs has no ssh-rsa, the only method is publickey), so
    // OpenSSH does not even try them.
    for out in [&sha1, &ki] {
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied (publickey)"),
            "{out:?}"
        );
    }
}

/// Drives `ssh -tt` on a pseudo-terminal it owns, so the terminal can be resized mid-session
/// (the kernel then sends SIGWINCH to ssh, which sends a window-change). Standard library only.
const RESIZE: &str = r#"import fcntl, os, pty, select, struct, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
def size(rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
out = b""
def read(secs):
    global out
    end = time.time() + secs
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                return
size(24, 80)
read(1.5)
os.write(fd, b"stty size\n")
read(0.7)
size(40, 132)
read(0.7)
os.write(fd, b"stty size; exit 5\n")
read(1.5)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;

#[test]
fn window_change_reaches_the_terminal_mid_session() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("winch", &[]);
    let d = t.serve();
    let mut args = vec![
        "-c".to_owned(),
        RESIZE.to_owned(),
        "ssh".to_owned(),
        "-tt".to_owned(),
    ];
    args.extend(ssh_options(&d, &t.private_key("winch-key")));
    args.push(format!("{a}@127.0.0.1"));
    let out = Command::new("python3").args(&args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{text}");
    let first = text
        .find("24 80")
        .unwrap_or_else(|| panic!("no 24 80 in {text}"));
    let second = text
        .find("40 132")
        .unwrap_or_else(|| panic!("no 40 132 in {text}"));
    assert!(first < second, "{text}");
}

#[test]
fn several_channels_share_one_connection() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("mux", &[]);
    let d = t.serve();
    let sock = t.root.join("mux.sock");
    let sock_opt = format!("ControlPath={}", sock.display());
    let master = t
        .ssh_command(
            &d,
            "mux-key",
            &a,
            &["-o", "ControlMaster=yes", "-o", &sock_opt, "-N"],
        )
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let run = |cmd: &str| {
        t.ssh_command(
            &d,
            "mux-key",
            &a,
            &["-o", "ControlMaster=no", "-o", &sock_opt, cmd],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let (x, y) = (run("sleep 1; echo one"), run("echo two"));
    assert_eq!(
        String::from_utf8_lossy(&y.wait_with_output().unwrap().stdout),
        "two\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&x.wait_with_output().unwrap().stdout),
        "one\n"
    );
    let mut master = master;
    let _ = master.kill();
    let _ = master.wait();
    // One login for the three channels.
    let audit = t.hostel(&["audit", "--json", "--tenant", &a]).ok().json();
    let logins = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "ssh.auth.v1")
        .count();
    assert_eq!(logins, 1, "{audit}");
}

#[test]
fn sshfs_mounts_the_home() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("fuse", &[]);
    let d = t.serve();
    let mnt = t.root.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let opts = format!(
        "port={},IdentityFile={},IdentitiesOnly=yes,BatchMode=yes,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null",
        d.ssh_port,
        t.private_key("fuse-key").display()
    );
    let out = Command::new("sshfs")
        .args(["-o", &opts])
        .arg(format!("{a}@127.0.0.1:"))
        .arg(&mnt)
        .output()
        .expect("sshfs is needed (scripts/engine installs it)");
    assert!(out.status.success(), "{out:?}");
    let written = std::fs::write(mnt.join("via-sshfs"), "mounted\n");
    let listed = std::fs::read_dir(&mnt).map(|d| d.count());
    let _ = Command::new("umount").arg(&mnt).status();
    written.unwrap();
    assert!(listed.unwrap() >= 3);
    assert_eq!(
        std::fs::read_to_string(t.home(&a).join("via-sshfs")).unwrap(),
        "mounted\n"
    );
}

#[test]
fn sigterm_drains_open_sessions_and_keeps_workspaces() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("drain", &[]);
    let mut d = t.serve();
    let child = t
        .ssh_command(
            &d,
            "drain-key",
            &a,
            &["echo started; sleep 2; echo finished"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    d.terminate();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // No new connections once it drains.
    let refused = t.ssh(&d, "drain-key", &a, &["true"]);
    assert_eq!(refused.code, 255, "{refused:?}");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "started\nfinished\n",
        "{out:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the gateway is shutting down"),
        "{out:?}"
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(d.wait(), Some(0));
    let info = t.hostel(&["info", &a, "--json"]).ok().json();
    assert_eq!(info["state"], "running", "workspaces outlive the daemon");
}

/// Regression (#12): a client offering its keys in turn, the right one last, was banned by
/// its own good login: each refused key counted. A connection that logs in counts nothing.
#[test]
fn issue_12_keys_offered_before_the_right_one_do_not_ban_a_good_login() {
    let t = TestRun::with_config(BIN, "\n[ssh]\nban_after_failures = 3\n");
    let a = t.create_tenant("offers", &[]);
    let d = t.serve();
    let mut keys: Vec<_> = (0..4)
        .map(|i| t.keypair(&format!("other-{i}")).with_extension(""))
        .collect();
    keys.push(t.private_key("offers-key"));
    let keys: Vec<&std::path::Path> = keys.iter().map(|k| k.as_path()).collect();
    for round in 0..3 {
        let out = std::process::Command::new("ssh")
            .args(hostel_testkit::ssh_options_keys(&d, &keys))
            .arg(format!("{a}@127.0.0.1"))
            .arg("echo in")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "in\n",
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        t.hostel(&["ban", "list", "--json"]).ok().json(),
        serde_json::json!([])
    );
}

/// A client that trusts the daemon's key (the test just started the daemon).
struct Trusting;

impl russh::client::Handler for Trusting {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// An SSH `signal` request (which OpenSSH's client cannot send, so russh's client here)
/// reaches the command as that signal; one hostel does not pass on (SEGV) is dropped.
#[tokio::test]
async fn an_ssh_signal_request_reaches_the_command() {
    use russh::ChannelMsg;
    let t = TestRun::new(BIN);
    let a = t.create_tenant("ssig", &[]);
    let d = t.serve();
    let key = russh::keys::load_secret_key(t.keypair("ssig-key").with_extension(""), None).unwrap();
    let config = std::sync::Arc::new(russh::client::Config::default());
    let mut session = russh::client::connect(config, ("127.0.0.1", d.ssh_port), Trusting)
        .await
        .unwrap();
    let auth = session
        .authenticate_publickey(
            a.as_str(),
            russh::keys::PrivateKeyWithHashAlg::new(std::sync::Arc::new(key), None),
        )
        .await
        .unwrap();
    assert!(auth.success());
    let mut channel = session.channel_open_session().await.unwrap();
    channel
        .exec(
            true,
            "trap 'echo caught-term; exit 9' TERM; echo ready; while :; do sleep 0.1; done",
        )
        .await
        .unwrap();
    let (mut out, mut status, mut signalled) = (String::new(), None, false);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, channel.wait()).await {
        match msg {
            ChannelMsg::Data { data } => out.push_str(&String::from_utf8_lossy(&data)),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::Close => break,
            _ => {}
        }
        if !signalled && out.contains("ready") {
            signalled = true;
            channel.signal(russh::Sig::SEGV).await.unwrap();
            channel.signal(russh::Sig::TERM).await.unwrap();
        }
    }
    assert_eq!(out, "ready\ncaught-term\n");
    assert_eq!(status, Some(9));
}
