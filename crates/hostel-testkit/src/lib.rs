//! Test helpers for hostel's integration tests, a dev-dependency only.
//!
//! A [`TestRun`] owns one hostel root under `$HOSTEL_TEST_DIR` (default /var/tmp/hostel-test)
//! with a config that labels every container `io.hostel.test-run=<id>`. Dropping it (also when
//! the test panics) removes those containers, unmounts the homes pool and deletes the root;
//! `HOSTEL_TEST_KEEP=1` keeps everything for a post-mortem. `scripts/test` sweeps the same
//! label and folder before and after the suite for what a killed test left.
//!
//! This crate must never be a normal dependency of a hostel crate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The label on every engine object a test makes.
pub const LABEL_TEST_RUN: &str = "io.hostel.test-run";

/// Where test roots go.
pub fn test_dir() -> PathBuf {
    std::env::var_os("HOSTEL_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/hostel-test"))
}

/// One test's world: a hostel root, its binary, its keys, its label.
#[derive(Debug)]
pub struct TestRun {
    /// Unique id (8 hex chars), in names and labels.
    pub id: String,
    /// The hostel root.
    pub root: PathBuf,
    bin: PathBuf,
}

/// What a finished command gave.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// stdout as text.
    pub stdout: String,
    /// stderr as text.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Panics with both streams unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// stdout parsed as JSON (for `--json` commands); panics with the text when it is not.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    /// stderr without the progress lines (`  - ...`): the error, its causes and hint.
    pub fn error_text(&self) -> String {
        self.stderr
            .lines()
            .filter(|l| !l.starts_with("  - "))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// Panics unless it succeeded.
    #[track_caller]
    pub fn ok(self) -> Self {
        self.expect_code(0)
    }
}

impl TestRun {
    /// A fresh run for the `hostel` binary at `bin` (pass `env!("CARGO_BIN_EXE_hostel")`).
    pub fn new(bin: &str) -> Self {
        Self::with_config(bin, "")
    }

    /// A fresh run whose workspaces run on Incus (`scripts/incus` starts it), on its own
    /// `[network] pool` (the engines do not see each other's subnets).
    pub fn incus(bin: &str) -> Self {
        Self::with_engine(
            bin,
            "kind = \"incus\"\n",
            "[network]\npool = \"10.232.0.0/16\"\n",
        )
    }

    /// A fresh run whose hostel.toml also holds `extra` (TOML, appended).
    pub fn with_config(bin: &str, extra: &str) -> Self {
        Self::with_engine(bin, "", extra)
    }

    /// A fresh run with `engine` (keys) in `[engine]` and `extra` appended.
    pub fn with_engine(bin: &str, engine: &str, extra: &str) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let root = test_dir().join(&id);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        // The run's own bridge prefix, in the [network] table `extra` may bring.
        let prefix = format!("[network]\ninterface_prefix = \"t{}\"\n", &id[..5]);
        let extra = if extra.contains("[network]\n") {
            extra.replacen("[network]\n", &prefix, 1)
        } else {
            format!("{extra}\n{prefix}")
        };
        let config = format!(
            "[engine]\n{engine}labels = {{ \"{LABEL_TEST_RUN}\" = \"{id}\" }}\n\n[storage]\npool_size = \"8GiB\"\n{extra}"
        );
        std::fs::write(root.join("etc/hostel.toml"), config).unwrap();
        TestRun {
            id,
            root,
            bin: PathBuf::from(bin),
        }
    }

    /// The run's tenant-bridge prefix, `t` and 5 characters of its id: its packet-filter
    /// chains are its own.
    pub fn prefix(&self) -> String {
        format!("t{}", &self.id[..5])
    }

    /// A tenant name unique to this run: `t<id>-<suffix>` (suffix up to 22 chars).
    pub fn tenant(&self, suffix: &str) -> String {
        format!("t{}-{suffix}", self.id)
    }

    /// A `hostel` command with `--root` set, ready to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root).args(args);
        c.env_remove("HOSTEL_ROOT").env_remove("HOSTEL_CONFIG");
        // Configuration keys from the caller's environment would change what the test runs.
        for (name, _) in std::env::vars() {
            let key = name
                .strip_prefix("HOSTEL_")
                .unwrap_or_default()
                .to_ascii_lowercase();
            if hostel_core::config::SECTIONS
                .iter()
                .any(|s| key.starts_with(&format!("{s}_")))
            {
                c.env_remove(name);
            }
        }
        c.stdin(Stdio::null());
        c
    }

    /// Runs `hostel <args>` and returns what it gave.
    pub fn hostel(&self, args: &[&str]) -> Run {
        self.command(args).output().unwrap().into()
    }

    /// The state `hostel list` gives tenant `name`, or `None` when it is not listed.
    pub fn state(&self, name: &str) -> Option<String> {
        let list = self.hostel(&["list", "--json"]).ok().json();
        list.as_array()
            .into_iter()
            .flatten()
            .find(|x| x["name"] == name)
            .and_then(|x| x["state"].as_str().map(str::to_owned))
    }

    /// The kinds of the audit records `hostel audit --json <filter>` lists, oldest first.
    pub fn audit_kinds(&self, filter: &[&str]) -> Vec<String> {
        let mut args = vec!["audit", "--json"];
        args.extend_from_slice(filter);
        let listed = self.hostel(&args).ok().json();
        listed
            .as_array()
            .map(|records| {
                records
                    .iter()
                    .filter_map(|r| r["kind"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Runs `hostel <args>` with `input` on stdin.
    pub fn hostel_with_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap().into()
    }

    /// Makes an Ed25519 key pair named `name` in the run's folder; returns the .pub path.
    pub fn keypair(&self, name: &str) -> PathBuf {
        let dir = self.root.join("keys");
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join(name);
        if !key.exists() {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(&key)
                .output()
                .expect("ssh-keygen is needed (package openssh-client)");
            assert!(out.status.success(), "ssh-keygen: {:?}", out);
        }
        dir.join(format!("{name}.pub"))
    }

    /// Writes a file in the run's folder; returns its path.
    pub fn file(&self, name: &str, body: &str) -> PathBuf {
        let p = self.root.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    /// Creates a tenant with a fresh key and small quotas plus `extra` flags; returns its name.
    pub fn create_tenant(&self, suffix: &str, extra: &[&str]) -> String {
        let name = self.tenant(suffix);
        let key = self.keypair(&format!("{suffix}-key"));
        let mut args = vec!["create", name.as_str(), "--key", key.to_str().unwrap()];
        for (flag, value) in [("--memory", "256M"), ("--disk", "256M"), ("--pids", "128")] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend(extra);
        self.hostel(&args).ok();
        name
    }

    /// How long, in ms, `tenant` takes to write `mib` MiB with `O_DSYNC` into `dir` (a shell
    /// word, `$HOME` or a path): what a disk I/O limit holds.
    pub fn synced_write_ms(&self, tenant: &str, dir: &str, mib: u32) -> u64 {
        let script = format!(
            "s=$(date +%s%N); dd if=/dev/zero of={dir}/io bs=1M count={mib} oflag=dsync \
             2>/dev/null; e=$(date +%s%N); rm -f {dir}/io; echo $(( (e - s) / 1000000 ))"
        );
        let out = self.sh(tenant, &script).ok().stdout;
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("not a time: {out:?}"))
    }

    /// `hostel exec <tenant> -- sh -c <script>`.
    pub fn sh(&self, tenant: &str, script: &str) -> Run {
        self.hostel(&["exec", tenant, "--", "sh", "-c", script])
    }

    /// The home of a tenant on the host.
    pub fn home(&self, tenant: &str) -> PathBuf {
        self.root.join("users").join(tenant).join("home")
    }
}

/// A running `hostel serve`, killed on drop.
#[derive(Debug)]
pub struct Daemon {
    child: std::process::Child,
    /// The SSH gateway's port on 127.0.0.1.
    pub ssh_port: u16,
    /// The HTTP API's port on 127.0.0.1.
    pub http_port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it at once). It is drawn
/// below the kernel's ephemeral range: a port from there (what `bind(0)` gives) can be taken by
/// any outgoing connection of a test running beside this one before the caller binds it.
pub fn free_port() -> u16 {
    use rand::RngExt;
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (from, to) = if low > 12_000 {
        (10_000, low)
    } else {
        (low, u16::MAX)
    };
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let port = rng.random_range(from..to);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {from} and {to}");
}

impl TestRun {
    /// Starts `hostel serve` on free 127.0.0.1 ports and waits until it accepts connections.
    /// A port found free can be taken by another test before the daemon binds it: a daemon
    /// that exits at once is started again on other ports, up to three times.
    pub fn serve(&self) -> Daemon {
        let mut last = None;
        for _ in 0..3 {
            match self.try_serve() {
                Ok(d) => return d,
                Err(status) => last = Some(status),
            }
        }
        panic!("hostel serve exited three times, last with {last:?}");
    }

    /// One start of [`TestRun::serve`]: the daemon, or how it exited before listening.
    fn try_serve(&self) -> Result<Daemon, std::process::ExitStatus> {
        let port = free_port();
        let http_port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let http = format!("127.0.0.1:{http_port}");
        let child = self
            .command(&["serve", "--ssh-listen", &listen, "--http-listen", &http])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut daemon = Daemon {
            child,
            ssh_port: port,
            http_port,
        };
        // Listening, and it is this daemon listening: it writes its state file (its pid) once
        // both listeners are bound, so another process on a port is never taken for it.
        let state = self.root.join("state").join("hostel.serve");
        let pid = format!("\"pid\":{}", daemon.child.id());
        for _ in 0..200 {
            if std::net::TcpStream::connect(&listen).is_ok()
                && std::net::TcpStream::connect(&http).is_ok()
                && std::fs::read_to_string(&state).is_ok_and(|s| s.contains(&pid))
            {
                return Ok(daemon);
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                return Err(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("hostel serve did not listen on {listen} within 5s");
    }

    /// The private key made by [`TestRun::keypair`] for `name`.
    pub fn private_key(&self, name: &str) -> PathBuf {
        self.root.join("keys").join(name)
    }

    /// An OpenSSH `ssh` command to `user@127.0.0.1` on the daemon's port with the key `key`
    /// (a name given to [`TestRun::keypair`]), batch mode, no known_hosts; `args` follow.
    pub fn ssh_command(&self, d: &Daemon, key: &str, user: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ssh");
        c.args(ssh_options(d, &self.private_key(key)))
            .arg(format!("{user}@127.0.0.1"))
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Runs `ssh user@gateway args...`.
    pub fn ssh(&self, d: &Daemon, key: &str, user: &str, args: &[&str]) -> Run {
        self.ssh_command(d, key, user, args)
            .output()
            .unwrap()
            .into()
    }
}

impl Daemon {
    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of the daemon's `/proc/PID/status` in bytes (`VmRSS`, `VmHWM`: the peak).
    pub fn memory(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid()))
    }

    /// Sends SIGTERM, as a service manager would.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits for the daemon to exit; returns its exit code.
    pub fn wait(&mut self) -> Option<i32> {
        self.child.wait().ok().and_then(|s| s.code())
    }

    /// `curl` against the daemon's HTTP API: `method path`, with `token` as a bearer and `body`
    /// as JSON; returns the HTTP status and the body.
    pub fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String) {
        let mut c = Command::new("curl");
        c.args([
            "-s",
            "-m",
            "60",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
        ]);
        if let Some(t) = token {
            c.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        if let Some(b) = body {
            c.args(["-H", "content-type: application/json", "--data-binary", b]);
        }
        c.arg(format!("http://127.0.0.1:{}{path}", self.http_port));
        let out = c.output().expect("curl is needed");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }
}

/// Client options for the test gateway: its port, one identity, no host key prompts.
pub fn ssh_options(d: &Daemon, key: &Path) -> Vec<String> {
    ssh_options_keys(d, &[key])
}

/// [`ssh_options`] offering `keys` in turn.
pub fn ssh_options_keys(d: &Daemon, keys: &[&Path]) -> Vec<String> {
    let mut o = vec!["-p".to_owned(), d.ssh_port.to_string()];
    for k in keys {
        o.extend(["-i".to_owned(), k.display().to_string()]);
    }
    o.extend(
        [
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
        ]
        .map(String::from),
    );
    o
}

/// Runs `docker <args>` against hostel's own engine; returns stdout.
pub fn docker(args: &[&str]) -> Run {
    Command::new("docker")
        .env(
            "DOCKER_HOST",
            format!("unix://{}", hostel_core::config::DEFAULT_ENGINE_SOCKET),
        )
        .args(args)
        .output()
        .expect("the docker client is needed (scripts/engine installs it)")
        .into()
}

/// The host uid a tenant's files belong to: 1000, shifted by the engine's user-namespace range
/// (`dockremap` in `/etc/subuid`) when it has one.
pub fn tenant_host_uid() -> u32 {
    let base = std::fs::read_to_string("/etc/subuid")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some("dockremap"))
                .then(|| f.next().and_then(|b| b.parse::<u32>().ok()))
                .flatten()
        });
    base.unwrap_or(0) + 1000
}

/// Unmounts everything mounted under `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| mp.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").arg("-l").arg(p).status();
    }
}

impl Drop for TestRun {
    fn drop(&mut self) {
        if std::env::var_os("HOSTEL_TEST_KEEP").is_some() {
            eprintln!(
                "HOSTEL_TEST_KEEP: kept test run {} at {}",
                self.id,
                self.root.display()
            );
            return;
        }
        let ids = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label={LABEL_TEST_RUN}={}", self.id),
        ]);
        let ids: Vec<&str> = ids.stdout.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            docker(&args);
        }
        let nets = docker(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("label={LABEL_TEST_RUN}={}", self.id),
        ]);
        for id in nets.stdout.split_whitespace() {
            docker(&["network", "rm", id]);
        }
        incus_sweep(&self.id);
        remove_filter_rules(&self.prefix());
        unmount_under(&self.root);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Removes the Incus instances and networks labelled with test run `run`, when Incus answers.
pub fn incus_sweep(run: &str) {
    let incus = |args: &[&str]| {
        Command::new("incus")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let key = format!("user.label.{LABEL_TEST_RUN}");
    for (kind, delete) in [
        ("instances", ["delete", "--force"]),
        ("networks", ["network", "delete"]),
    ] {
        let list: serde_json::Value =
            serde_json::from_str(&incus(&["query", &format!("/1.0/{kind}?recursion=1")]))
                .unwrap_or_default();
        for item in list.as_array().into_iter().flatten() {
            let config = item.get("config").and_then(|c| c.get(&key));
            if config.and_then(serde_json::Value::as_str) == Some(run) {
                let name = item
                    .get("name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default();
                let args: Vec<&str> = delete.iter().copied().chain([name]).collect();
                incus(&args);
            }
        }
    }
}

/// Removes the packet-filter rules of `prefix` (both families, filter and nat tables), as
/// `hostel firewall remove` would, without needing the run's configuration.
pub fn remove_filter_rules(prefix: &str) {
    let ipt = |bin: &str, args: &[&str]| {
        Command::new(bin)
            .arg("-w")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let targets = [
        format!("-j HOSTEL-IN-{prefix}"),
        format!("-j HOSTEL-FWD-{prefix}"),
        format!("-j HOSTEL-OK-{prefix}"),
        format!("-j HOSTEL-NAT-{prefix}"),
        format!("-j HOSTEL-RPF-{prefix}"),
    ];
    for bin in ["iptables", "ip6tables"] {
        for table in ["filter", "nat", "raw"] {
            let listed = ipt(bin, &["-t", table, "-S"]).unwrap_or_default();
            for rule in listed.lines() {
                if let Some(spec) = rule
                    .strip_prefix("-A ")
                    .filter(|_| targets.iter().any(|t| rule.ends_with(t.as_str())))
                {
                    let mut args = vec!["-t", table, "-D"];
                    args.extend(spec.split(' '));
                    ipt(bin, &args);
                }
            }
            for chain in [
                format!("HOSTEL-IN-{prefix}"),
                format!("HOSTEL-FWD-{prefix}"),
                format!("HOSTEL-OK-{prefix}"),
                format!("HOSTEL-NAT-{prefix}"),
                format!("HOSTEL-RPF-{prefix}"),
            ] {
                if ipt(bin, &["-t", table, "-F", &chain]).is_some() {
                    ipt(bin, &["-t", table, "-X", &chain]);
                }
            }
        }
    }
}

/// The smallest system to run commands in, as a tarball: busybox (static, the host's
/// busybox-static) with a few applets, `/etc/passwd` with root and `contract` (1000), and an
/// init that brings its loopback up (systemd does) and ends on SIGPWR (how Incus stops a system
/// container) or SIGTERM. Every path starts with `prefix` (`""`: a root filesystem tarball;
/// `"rootfs/"`: an Incus unified image, with `extra` files such as `metadata.yaml` at the top).
pub fn busybox_tar(prefix: &str, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox")
        .expect("the tests need busybox-static on the host (scripts/test installs it)");
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, mode: u32, body: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(match (link, path.ends_with('/')) {
            (Some(_), _) => tar::EntryType::Symlink,
            (None, true) => tar::EntryType::Directory,
            (None, false) => tar::EntryType::Regular,
        });
        h.set_mode(mode);
        h.set_size(body.len() as u64);
        h.set_mtime(1_700_000_000);
        if let Some(target) = link {
            h.set_link_name(target).unwrap();
        }
        h.set_cksum();
        tar.append_data(&mut h, path, body).unwrap();
    };
    for (path, body) in extra {
        add(path, 0o644, body, None);
    }
    for dir in [
        "", "bin/", "sbin/", "dev/", "proc/", "sys/", "tmp/", "etc/", "root/", "home/",
    ] {
        if !(dir.is_empty() && prefix.is_empty()) {
            add(&format!("{prefix}{dir}"), 0o755, &[], None);
        }
    }
    add(&format!("{prefix}bin/busybox"), 0o755, &busybox, None);
    for applet in [
        "sh", "sleep", "cat", "echo", "id", "ip", "ls", "stty", "tty",
    ] {
        add(
            &format!("{prefix}bin/{applet}"),
            0o777,
            &[],
            Some("busybox"),
        );
    }
    let init = b"#!/bin/sh\n/bin/ip link set lo up\ntrap 'exit 0' PWR TERM\nwhile :; do /bin/sleep 1; done\n";
    add(&format!("{prefix}sbin/init"), 0o755, init, None);
    add(
        &format!("{prefix}etc/passwd"),
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\ncontract:x:1000:1000::/home/contract:/bin/sh\n",
        None,
    );
    tar.into_inner().unwrap()
}

/// What `~/data` holds, entry by entry (kind, mode, owner inside, size, time, link target),
/// and each file's sha256: the same text for the same tree.
pub const DATA_LISTING: &str = "cd ~/data && find . -printf '%p %y %m %U:%G %s %Ts %l\\n' | sort && \
                       find . -type f -exec sha256sum {} + | sort";

/// Fills `~/data` with what an export must carry: nested folders, a file of random bytes, 40
/// MiB of zeros (more than the smallest quota), a set time, a symlink, a private folder, a file
/// root owns inside.
pub const DATA_FILL: &str = "mkdir -p ~/data/p/q && head -c 3000000 /dev/urandom > ~/data/p/q/big && \
                    head -c 40M /dev/zero > ~/data/zeros && \
                    printf x > ~/data/small && touch -d '2020-01-02 03:04:05' ~/data/small && \
                    ln -s p/q/big ~/data/link && chmod 700 ~/data/p && \
                    sudo -n sh -c \"echo root-owned > $HOME/data/rootfile; chmod 640 $HOME/data/rootfile\" && \
                    touch -d '2021-05-06 07:08:09' ~/data";
