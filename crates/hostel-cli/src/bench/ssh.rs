//! `hostel bench ssh`: the gateway against the ways people reach a container shell today, in
//! one run, as medians and ratios. Nothing here is a test; nothing asserts a time.
//!
//! Baselines, all on the same workspace image, engine and machine:
//! - `docker exec` (Docker) or `incus exec` (Incus): the engine's own way in (no network, no
//!   crypto);
//! - sshd in a container: on Docker the image plus openssh-server in a container of its own,
//!   port published on 127.0.0.1; on Incus openssh-server installed in the bench tenant's own
//!   system container, reached at its address;
//! - jump host: OpenSSH's sshd on the host (a throwaway one on 127.0.0.1, needs the
//!   openssh-server package), then the container's sshd (`ssh -J`), Containarium's path.
//!
//! The gateway runs in this process on 127.0.0.1 so its memory can be read. Every ssh run uses
//! a fresh connection (no multiplexing). Containers are labelled `io.hostel.bench=<run>` and
//! removed, with the bench tenants, at the end.

use super::{fail, median, ms};
use crate::error::CliError;
use crate::output::{line, table};
use hostel_core::{ByteSize, SshPublicKey, TenantName};
use hostel_service::{CreateRequest, Hostel, Quiet, ServiceError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// An SSH gateway run in this process (the benches' and the attacker suite's), stopped with
/// [`Gateway::stop`].
pub(crate) struct Gateway {
    /// The port it listens on.
    pub port: u16,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), hostel_ssh::GatewayError>>,
}

impl Gateway {
    /// Listens on `bind` (port 0: any free one) with the instance's host key and `ssh_cfg`.
    pub(crate) async fn start(
        h: &Arc<Hostel>,
        ssh_cfg: hostel_core::config::SshConfig,
        bind: &str,
    ) -> Result<Gateway, CliError> {
        let host_key =
            hostel_ssh::load_or_create_host_key(&h.paths().etc().join("ssh_host_ed25519_key"))
                .map_err(|e| fail(e.to_string()))?;
        let config = Arc::new(hostel_ssh::russh_config(host_key, &ssh_cfg));
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| fail(format!("{bind}: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| fail(e.to_string()))?
            .port();
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(hostel_ssh::serve(
            h.clone(),
            listener,
            config,
            ssh_cfg,
            stop_rx,
        ));
        Ok(Gateway { port, stop, task })
    }

    /// Stops accepting and ends the gateway's task.
    pub(crate) fn stop(self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

/// The `docker` client, aimed at the engine hostel uses.
pub(crate) fn docker_cli(socket: &str) -> Command {
    let mut c = Command::new("docker");
    c.env("DOCKER_HOST", format!("unix://{socket}"));
    c
}

pub(crate) async fn run_ok(cmd: &mut Command, what: &str) -> Result<String, CliError> {
    let out = cmd
        .output()
        .await
        .map_err(|e| fail(format!("{what}: cannot run: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Times `n` runs of a command, each to success.
async fn time_n(
    n: usize,
    what: &str,
    mut make: impl FnMut() -> Command,
) -> Result<Duration, CliError> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = make();
        let t = Instant::now();
        run_ok(&mut c, what).await?;
        times.push(t.elapsed());
    }
    Ok(median(times))
}

/// A new ed25519 key pair in `dir` (`id_ed25519`), for bench clients: its private file and
/// its public key.
pub(crate) async fn keypair(
    dir: &Path,
    comment: &str,
) -> Result<(PathBuf, SshPublicKey), CliError> {
    let key = dir.join("id_ed25519");
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(&key),
        "ssh-keygen",
    )
    .await?;
    let pub_text =
        std::fs::read_to_string(key.with_extension("pub")).map_err(|e| fail(e.to_string()))?;
    let pubkey: SshPublicKey = pub_text
        .trim()
        .parse()
        .map_err(|e| CliError::from(ServiceError::from(e)))?;
    Ok((key, pubkey))
}

/// An OpenSSH client to `user@127.0.0.1:port` with the bench key; `extra` options first.
pub(crate) fn ssh(key: &Path, port: u16, user: &str, extra: &[&str], remote: &str) -> Command {
    let mut c = ssh_to(key, port, user, extra);
    c.arg(remote);
    c
}

/// The same client as [`ssh`] without a remote command (for `-W`, `-N`).
pub(crate) fn ssh_to(key: &Path, port: u16, user: &str, extra: &[&str]) -> Command {
    client(key, "127.0.0.1", port, user, extra)
}

/// An OpenSSH client to `user@host:port` with the bench key, without a remote command.
fn client(key: &Path, host: &str, port: u16, user: &str, extra: &[&str]) -> Command {
    let mut c = Command::new("ssh");
    c.args(extra)
        .args(["-p", &port.to_string(), "-i"])
        .arg(key)
        .args([
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
            "-o",
            "ControlMaster=no",
        ])
        .arg(format!("{user}@{host}"))
        .stdin(std::process::Stdio::null());
    c
}

/// Where the sshd baseline listens and whom it lets in.
struct Sshd {
    host: String,
    port: u16,
    user: String,
}

impl Sshd {
    fn ssh(&self, key: &Path, extra: &[&str], remote: &str) -> Command {
        let mut c = client(key, &self.host, self.port, &self.user, extra);
        c.arg(remote);
        c
    }
}

/// On Incus: openssh-server installed in the bench tenant's own system container (from
/// Debian's archive, through its egress), a daemon of its own on port 2222 for a user `bench`
/// with the bench key, reached at the workspace's address.
async fn incus_sshd(
    h: &Hostel,
    tenant: &TenantName,
    pubkey: &SshPublicKey,
) -> Result<Sshd, CliError> {
    let script = format!(
        "sudo -n sh -ec 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; \
         apt-get install -y -qq --no-install-recommends openssh-server >/dev/null; \
         mkdir -p /run/sshd; id bench >/dev/null 2>&1 || useradd -m -s /bin/bash -p \"*\" bench; \
         echo \"{key}\" > /etc/ssh/bench_keys; ssh-keygen -A >/dev/null; \
         /usr/sbin/sshd -p 2222 -o AuthorizedKeysFile=/etc/ssh/bench_keys \
         -o PasswordAuthentication=no -o StrictModes=no'",
        key = pubkey.to_openssh()
    );
    let (code, _, err) = h.exec_capture(tenant, &["sh", "-c", &script]).await?;
    if code != 0 {
        return Err(fail(format!(
            "installing sshd in {tenant} failed ({code}): {}",
            String::from_utf8_lossy(&err).trim()
        )));
    }
    let Some((ip, _)) = h.workspace_addresses(tenant).await? else {
        return Err(fail(format!("no address for {tenant}'s workspace")));
    };
    Ok(Sshd {
        host: ip.to_string(),
        port: 2222,
        user: "bench".into(),
    })
}

/// The engine's own way into a workspace, as its command-line client runs it.
fn engine_exec(h: &Hostel, tenant: &TenantName) -> (Command, &'static str) {
    let container = format!("hostel-{tenant}");
    if h.config().engine.kind == hostel_core::config::EngineKind::Incus {
        let mut c = Command::new("incus");
        c.env("INCUS_SOCKET", h.config().engine.socket())
            .args(["exec", &container, "--user", "1000", "--group", "1000"])
            .args(["--cwd", "/tmp", "--", "true"])
            .stdin(std::process::Stdio::null());
        (c, "incus exec true")
    } else {
        let mut c = docker_cli(h.config().engine.socket());
        c.args(["exec", "-u", tenant.as_str(), &container, "true"]);
        (c, "docker exec true")
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| {
            v.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

struct Bench<'a> {
    h: &'a Arc<Hostel>,
    id: String,
    dir: PathBuf,
    tenants: Vec<TenantName>,
    host_sshd: Option<tokio::process::Child>,
}

impl Bench<'_> {
    async fn cleanup(&mut self) {
        for t in &self.tenants {
            let _ = self.h.purge(t, true).await;
        }
        if let Ok(out) = docker_cli(self.h.config().engine.socket())
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=io.hostel.bench={}", self.id),
            ])
            .output()
            .await
        {
            let ids = String::from_utf8_lossy(&out.stdout).into_owned();
            for id in ids.split_whitespace() {
                let _ = docker_cli(self.h.config().engine.socket())
                    .args(["rm", "-f", id])
                    .output()
                    .await;
            }
        }
        if let Some(mut c) = self.host_sshd.take() {
            let _ = c.kill().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    async fn tenant(&mut self, suffix: &str, key: &SshPublicKey) -> Result<TenantName, CliError> {
        let name: TenantName = format!("bench-{}-{suffix}", self.id)
            .parse()
            .map_err(|e| CliError::from(ServiceError::from(e)))?;
        self.tenants.push(name.clone());
        self.h
            .create(
                CreateRequest {
                    memory: Some(ByteSize::mib(512)),
                    disk: Some(ByteSize::gib(1)),
                    pids: Some(512),
                    ..CreateRequest::new(name.clone(), vec![key.clone()])
                },
                &Quiet,
            )
            .await?;
        Ok(name)
    }
}

/// `hostel bench ssh`.
pub async fn ssh_bench(h: Arc<Hostel>, rounds: usize) -> Result<(), CliError> {
    let id = format!("{:x}", std::process::id());
    let dir = h.paths().images().join(format!("bench-ssh-{id}"));
    std::fs::create_dir_all(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let mut b = Bench {
        h: &h,
        id,
        dir,
        tenants: Vec::new(),
        host_sshd: None,
    };
    let result = measure(&mut b, rounds).await;
    b.cleanup().await;
    result
}

async fn free_port() -> Result<u16, CliError> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| fail(format!("no free port: {e}")))?;
    Ok(l.local_addr().map_err(|e| fail(e.to_string()))?.port())
}

pub(crate) async fn wait_ssh(
    key: &Path,
    port: u16,
    user: &str,
    extra: &[&str],
) -> Result<(), CliError> {
    for _ in 0..100 {
        if ssh(key, port, user, extra, "true")
            .output()
            .await
            .is_ok_and(|o| o.status.success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(fail(format!(
        "ssh to 127.0.0.1:{port} as {user} never worked"
    )))
}

/// On Docker: sshd in a container of its own from the workspace image plus openssh-server,
/// its port published on 127.0.0.1, for a user `bench` with the bench key.
async fn docker_sshd(b: &Bench<'_>, image: &str, auth: &Path) -> Result<Sshd, CliError> {
    let h = b.h;
    let sshd_image = format!(
        "hostel-bench-sshd:{}",
        image.rsplit(':').next().unwrap_or("x")
    );
    let dockerfile = format!(
        "FROM {image}\nRUN apt-get update && apt-get install -y --no-install-recommends openssh-server \
         && rm -rf /var/lib/apt/lists/* && mkdir -p /run/sshd && useradd -m -s /bin/bash bench\n"
    );
    let mut build = docker_cli(h.config().engine.socket());
    build
        .args([
            "build",
            "-q",
            "--label",
            "io.hostel.managed=1",
            "-t",
            &sshd_image,
            "-",
        ])
        .stdin(std::process::Stdio::piped());
    let mut child = build
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        stdin
            .write_all(dockerfile.as_bytes())
            .await
            .map_err(|e| fail(e.to_string()))?;
    }
    let status = child.wait().await.map_err(|e| fail(e.to_string()))?;
    if !status.success() {
        return Err(fail(format!("building {sshd_image} failed")));
    }
    let cname = format!("hostel-bench-sshd-{}", b.id);
    run_ok(
        docker_cli(h.config().engine.socket()).args([
            "run",
            "-d",
            "--name",
            &cname,
            "--label",
            &format!("io.hostel.bench={}", b.id),
            "-p",
            "127.0.0.1::22",
            "-v",
            &format!("{}:/etc/ssh/bench_keys:ro", auth.display()),
            "--memory",
            "512m",
            "--entrypoint",
            "/usr/sbin/sshd",
            &sshd_image,
            "-D",
            "-e",
            "-o",
            "AuthorizedKeysFile=/etc/ssh/bench_keys",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "StrictModes=no",
        ]),
        "docker run sshd",
    )
    .await?;
    let port_text = run_ok(
        docker_cli(h.config().engine.socket()).args(["port", &cname, "22"]),
        "docker port",
    )
    .await?;
    let sshd_port: u16 = port_text
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| fail(format!("cannot read the sshd port from {port_text:?}")))?;
    Ok(Sshd {
        host: "127.0.0.1".into(),
        port: sshd_port,
        user: "bench".into(),
    })
}

async fn measure(b: &mut Bench<'_>, rounds: usize) -> Result<(), CliError> {
    let h = b.h;
    let image = h.image_build(false, &Quiet).await?.reference;
    let (key, pubkey) = keypair(&b.dir, "bench").await?;
    let tenant = b.tenant("a", &pubkey).await?;

    // The gateway, in this process, with caps raised so the concurrency runs are not refused.
    let mut ssh_cfg = h.config().ssh.clone();
    ssh_cfg.max_sessions_per_tenant = 1024;
    ssh_cfg.max_unauthenticated_per_ip = 1024;
    ssh_cfg.ban_after_failures = 0;
    ssh_cfg.ban_address_after_failures = 0;
    let gateway = Gateway::start(h, ssh_cfg, "127.0.0.1:0").await?;
    let gw = gateway.port;
    wait_ssh(&key, gw, tenant.as_str(), &[]).await?;

    let auth = b.dir.join("authorized_keys");
    std::fs::write(&auth, format!("{}\n", pubkey.to_openssh())).map_err(|e| fail(e.to_string()))?;
    // sshd in a container of the same image, on the same engine.
    let sshd = if h.config().engine.kind == hostel_core::config::EngineKind::Incus {
        incus_sshd(h, &tenant, &pubkey).await?
    } else {
        docker_sshd(b, &image, &auth).await?
    };
    let mut tries = 0;
    while !sshd
        .ssh(&key, &["-o", "ConnectTimeout=5"], "true")
        .output()
        .await
        .is_ok_and(|o| o.status.success())
    {
        tries += 1;
        if tries > 50 {
            return Err(fail(format!(
                "sshd at {}:{} never let the bench in",
                sshd.host, sshd.port
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A throwaway OpenSSH jump host on the host, if sshd is installed.
    let jump = if Path::new("/usr/sbin/sshd").exists() {
        let jport = free_port().await?;
        let hk = b.dir.join("host_key");
        run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&hk),
            "ssh-keygen",
        )
        .await?;
        let conf = b.dir.join("sshd_config");
        std::fs::write(
            &conf,
            format!(
                "Port {jport}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\nStrictModes no\n",
                hk.display(),
                auth.display(),
                b.dir.join("sshd.pid").display()
            ),
        )
        .map_err(|e| fail(e.to_string()))?;
        std::fs::create_dir_all("/run/sshd").map_err(|e| fail(e.to_string()))?;
        b.host_sshd = Some(
            Command::new("/usr/sbin/sshd")
                .arg("-D")
                .arg("-f")
                .arg(&conf)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| fail(e.to_string()))?,
        );
        wait_ssh(&key, jport, "root", &[]).await?;
        Some(format!(
            "ProxyCommand=ssh -p {jport} -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -W %h:%p root@127.0.0.1",
            key.display()
        ))
    } else {
        None
    };

    let mut rows = Vec::new();
    let exec_label = engine_exec(h, &tenant).1;
    let engine_exec_time = time_n(rounds, exec_label, || engine_exec(h, &tenant).0).await?;
    for (label, kex) in [
        ("default kex", None),
        ("curve25519-sha256", Some("KexAlgorithms=curve25519-sha256")),
    ] {
        let extra: Vec<&str> = kex.map(|k| vec!["-o", k]).unwrap_or_default();
        let g = time_n(rounds, "ssh gateway", || {
            ssh(&key, gw, tenant.as_str(), &extra, "true")
        })
        .await?;
        let s = time_n(rounds, "ssh sshd", || sshd.ssh(&key, &extra, "true")).await?;
        rows.push(vec![
            format!("ssh true, {label}: hostel gateway"),
            ms(g),
            "1.00x".into(),
        ]);
        rows.push(vec![
            format!("  {exec_label}"),
            ms(engine_exec_time),
            format!("{:.2}x", engine_exec_time.as_secs_f64() / g.as_secs_f64()),
        ]);
        rows.push(vec![
            format!("  sshd in a container"),
            ms(s),
            format!("{:.2}x", s.as_secs_f64() / g.as_secs_f64()),
        ]);
        if let Some(j) = &jump {
            let mut jextra = extra.clone();
            jextra.extend(["-o", j.as_str()]);
            let jt = time_n(rounds, "ssh jump", || sshd.ssh(&key, &jextra, "true")).await?;
            rows.push(vec![
                format!("  jump host + sshd in a container"),
                ms(jt),
                format!("{:.2}x", jt.as_secs_f64() / g.as_secs_f64()),
            ]);
        }
    }
    if jump.is_none() {
        rows.push(vec![
            "  jump host: skipped (install openssh-server for /usr/sbin/sshd)".into(),
            String::new(),
            String::new(),
        ]);
    }

    // Throughput: 512 MiB from the workspace to the client (before waking, which makes the
    // workspace again: on Incus the sshd baseline lives in it).
    let mib = 512u64;
    let remote = format!("head -c {} /dev/zero", mib << 20);
    let quiet = |mut c: Command| {
        c.stdout(std::process::Stdio::null());
        c
    };
    let tg = time_n(3, "ssh cat gateway", || {
        quiet(ssh(&key, gw, tenant.as_str(), &[], &remote))
    })
    .await?;
    let ts = time_n(3, "ssh cat sshd", || quiet(sshd.ssh(&key, &[], &remote))).await?;
    let rate = |d: Duration| format!("{:.0} MiB/s", mib as f64 / d.as_secs_f64());
    rows.push(vec![
        format!("{mib} MiB over ssh: hostel gateway"),
        rate(tg),
        "1.00x".into(),
    ]);
    rows.push(vec![
        "  sshd in a container".into(),
        rate(ts),
        format!(
            "{:.2}x",
            tg.as_secs_f64().recip() / ts.as_secs_f64().recip()
        ),
    ]);

    // Waking: stopped -> shell, deleted -> shell.
    let mut stopped = Vec::new();
    let mut deleted = Vec::new();
    for _ in 0..rounds.min(5) {
        h.stop(&tenant).await?;
        let t = Instant::now();
        run_ok(
            &mut ssh(&key, gw, tenant.as_str(), &[], "true"),
            "ssh stopped",
        )
        .await?;
        stopped.push(t.elapsed());
        h.delete(&tenant).await?;
        let t = Instant::now();
        run_ok(
            &mut ssh(&key, gw, tenant.as_str(), &[], "true"),
            "ssh deleted",
        )
        .await?;
        deleted.push(t.elapsed());
    }
    rows.push(vec![
        "stopped -> ssh true (wakes it)".into(),
        ms(median(stopped)),
        String::new(),
    ]);
    rows.push(vec![
        "deleted -> ssh true (re-creates it)".into(),
        ms(median(deleted)),
        String::new(),
    ]);

    // Concurrency: N sessions at once spread over tenants of at most 50 sessions each.
    let second = b.tenant("b", &pubkey).await?;
    let third = b.tenant("c", &pubkey).await?;
    let fourth = b.tenant("d", &pubkey).await?;
    let tenants = [tenant.clone(), second, third, fourth];
    for n in [50usize, 200] {
        let before = rss_bytes();
        let started = Instant::now();
        let mut children = Vec::new();
        for t in tenants.iter().cycle().take(n) {
            let mut c = ssh(&key, gw, t.as_str(), &[], "sleep 3; echo ok");
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null());
            children.push(c.spawn().map_err(|e| fail(e.to_string()))?);
        }
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let during = rss_bytes();
        let mut ok = 0;
        for c in children {
            if let Ok(out) = c.wait_with_output().await
                && out.status.success()
                && out.stdout == b"ok\n"
            {
                ok += 1;
            }
        }
        let per = during.saturating_sub(before) / n as u64;
        rows.push(vec![
            format!("{n} concurrent sessions (sleep 3): {ok}/{n} ok"),
            format!("{:.1} s", started.elapsed().as_secs_f64()),
            format!("{} gateway RSS/session", ByteSize::bytes(per).human()),
        ]);
    }
    gateway.stop();

    line(&format!(
        "hostel bench ssh: {rounds} rounds, image {image}, OpenSSH client {}",
        client_version().await
    ));
    table(&["MEASURE", "MEDIAN ms / RATE", "VS GATEWAY"], &rows);
    line("ratios above 1.00x mean the baseline is slower (or, for throughput, the gateway faster)");
    Ok(())
}

async fn client_version() -> String {
    Command::new("ssh")
        .arg("-V")
        .output()
        .await
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .unwrap_or_default()
}
