//! `hostel selftest security`: the attacker suite. It makes two throwaway tenants, A and B, on
//! this host with its real engine, packet filter and an SSH gateway of its own (in this process,
//! on every address, as the daemon's would be), and tries known moves: from inside A against B,
//! the host, the engine and the gateways, and from outside against the gateway. Each move is
//! expected to be blocked; the table says what happened. Then it times B's `ssh true` while A
//! misbehaves. Everything it made is purged at the end, whatever happens.
//!
//! A move's script exits 0 when the attack worked. Nothing here is a fake: the moves are the
//! shell commands an attacker would type.

use crate::bench::ssh::{Gateway, run_ok, ssh, ssh_to, wait_ssh};
use crate::error::CliError;
use crate::output::{json, line, table};
use hostel_core::{ByteSize, ErrorCode, SshPublicKey, TenantName};
use hostel_service::{CreateRequest, Hostel, Quiet, ServiceError};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::Command;

mod web;

/// One move and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct MoveResult {
    /// What was tried.
    pub r#move: String,
    /// From where: `inside A` or `outside`.
    pub from: &'static str,
    /// What should happen: `blocked`, or, for what a system container's root may do to its
    /// own namespaces (Incus), `own namespace only`.
    pub expected: &'static str,
    /// `blocked`, `NOT BLOCKED`, or `allowed` (where it acts on its own namespace only).
    pub result: &'static str,
    /// What was seen.
    pub detail: String,
}

/// B's `ssh true` while A misbehaves.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// What A was doing.
    pub noise: &'static str,
    /// Median of B's `ssh true`, in milliseconds.
    pub b_ssh_true_ms: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    moves: Vec<MoveResult>,
    latency: Vec<Latency>,
}

/// The file in the folder the suite shares with A.
const SHARED_FILE: &str = "dataset.txt";

fn fail(message: impl Into<String>) -> CliError {
    CliError::new(ErrorCode::Internal, message, None)
}

/// What the suite made, for the cleanup.
struct Run<'a> {
    h: &'a Arc<Hostel>,
    id: String,
    dir: PathBuf,
    tenants: Vec<TenantName>,
    metadata: std::net::SocketAddrV4,
    /// The folder shared with A, and its share.
    share: Option<(hostel_core::share::ShareName, PathBuf)>,
    /// The image the tenants get (`None`: the newest base build).
    image: Option<String>,
    /// The host link forged packets are sent towards and the address behind it, once made.
    forge: Option<(String, std::net::Ipv4Addr)>,
}

impl Run<'_> {
    async fn cleanup(&mut self) {
        if let Some((link, _)) = self.forge.take() {
            let _ = Command::new("ip")
                .args(["link", "del", &link])
                .output()
                .await;
        }
        if let Some((name, dir)) = self.share.take() {
            let _ = self.h.share_remove(&name).await;
            let _ = std::fs::remove_dir_all(dir);
        }
        for t in &self.tenants {
            let _ = self.h.purge(t, true).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Shares a folder outside hostel's root with `tenant` only (one file in it), and restarts
    /// its workspace so that it is mounted.
    async fn share_with(&mut self, tenant: &TenantName) -> Result<(), CliError> {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("hostel-selftest-{}", self.id));
        let made = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)))
            .and_then(|()| std::fs::write(dir.join(SHARED_FILE), "dataset\n"));
        made.map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        let name: hostel_core::share::ShareName = format!("selftest-{}", self.id)
            .parse()
            .map_err(|e| CliError::from(ServiceError::from(e)))?;
        self.share = Some((name.clone(), dir.clone()));
        self.h
            .share_add(
                &name,
                &dir.display().to_string(),
                Some(vec![tenant.clone()]),
            )
            .await?;
        self.h.stop(tenant).await?;
        self.h.start(tenant, &Quiet).await?;
        // The moves on it mean something only where the tenant sees it.
        let read = format!("cat {}/{SHARED_FILE}", name.target());
        match inside(self.h, tenant, &read).await? {
            (true, seen) if seen == "dataset" => Ok(()),
            (_, seen) => Err(fail(format!(
                "the folder shared with {tenant} is not readable at {}: {seen}",
                name.target()
            ))),
        }
    }

    /// A destination a workspace with egress reaches that stays on this host: a veth pair
    /// (`hsf<id>`, its peer down the line) with a /32 route to an address of the benchmark
    /// range (198.18.0.0/15) behind it and one on the host's end for the NAT. A packet sent
    /// there is forwarded, counted by the kernel's connection tracking, and goes nowhere.
    async fn forge_target(&mut self) -> Result<(), CliError> {
        let n = u32::from_str_radix(&self.id, 16).unwrap_or(0) & 0xffff;
        let base = u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0)) + (n << 1);
        let (host, target) = (
            std::net::Ipv4Addr::from(base),
            std::net::Ipv4Addr::from(base + 1),
        );
        let link = format!("hsf{}", self.id);
        let peer = format!("hsg{}", self.id);
        self.forge = Some((link.clone(), target));
        let steps: [Vec<String>; 5] = [
            vec![
                "link".into(),
                "add".into(),
                link.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                peer.clone(),
            ],
            vec![
                "addr".into(),
                "add".into(),
                format!("{host}/32"),
                "dev".into(),
                link.clone(),
            ],
            vec!["link".into(), "set".into(), link.clone(), "up".into()],
            vec!["link".into(), "set".into(), peer, "up".into()],
            vec![
                "route".into(),
                "add".into(),
                format!("{target}/32"),
                "dev".into(),
                link,
            ],
        ];
        for args in steps {
            run_ok(
                Command::new("ip").args(&args),
                &format!("ip {}", args.join(" ")),
            )
            .await?;
        }
        Ok(())
    }

    /// Whether the shared folder still holds only its file, as it was.
    fn share_untouched(&self) -> (bool, String) {
        let Some((_, dir)) = &self.share else {
            return (false, "no share".into());
        };
        let names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let content = std::fs::read_to_string(dir.join(SHARED_FILE)).unwrap_or_default();
        let untouched = names == [SHARED_FILE] && content == "dataset\n";
        (
            untouched,
            format!("the host's folder holds {}", names.join(", ")),
        )
    }

    async fn tenant(&mut self, suffix: &str, key: &SshPublicKey) -> Result<TenantName, CliError> {
        let name: TenantName = format!("selftest-{}-{suffix}", self.id)
            .parse()
            .map_err(|e| CliError::from(ServiceError::from(e)))?;
        self.tenants.push(name.clone());
        self.h
            .create(
                CreateRequest {
                    cpus: Some(
                        "0.5"
                            .parse()
                            .map_err(|e| CliError::from(ServiceError::from(e)))?,
                    ),
                    memory: Some(ByteSize::mib(256)),
                    disk: Some(ByteSize::mib(256)),
                    pids: Some(128),
                    image: self.image.clone(),
                    ..CreateRequest::new(name.clone(), vec![key.clone()])
                },
                &Quiet,
            )
            .await?;
        Ok(name)
    }
}

/// `hostel selftest security`: exit 0 when every move was blocked, 1 when not.
pub async fn security(
    h: Arc<Hostel>,
    metadata: std::net::SocketAddrV4,
    image: Option<String>,
    json_out: bool,
) -> Result<u8, CliError> {
    let id = format!("{:04x}", std::process::id() & 0xffff);
    let dir = h.paths().images().join(format!("selftest-{id}"));
    std::fs::create_dir_all(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let mut run = Run {
        h: &h,
        id,
        dir,
        tenants: Vec::new(),
        metadata,
        share: None,
        image,
        forge: None,
    };
    let result = suite(&mut run).await;
    run.cleanup().await;
    let report = result?;
    let must_block = || report.moves.iter().filter(|m| m.expected == "blocked");
    let all_blocked = must_block().all(|m| m.result == "blocked");
    if json_out {
        json(&report)?;
    } else {
        let rows: Vec<Vec<String>> = report
            .moves
            .iter()
            .map(|m| {
                vec![
                    m.r#move.clone(),
                    m.from.to_owned(),
                    m.expected.to_owned(),
                    m.result.to_owned(),
                    m.detail.clone(),
                ]
            })
            .collect();
        table(&["MOVE", "FROM", "EXPECTED", "RESULT", "SEEN"], &rows);
        line("");
        let rows: Vec<Vec<String>> = report
            .latency
            .iter()
            .map(|l| vec![l.noise.to_owned(), format!("{:.1}", l.b_ssh_true_ms)])
            .collect();
        table(&["WHILE A RUNS", "B's `ssh true` ms (median)"], &rows);
        let blocked = must_block().filter(|m| m.result == "blocked").count();
        line("");
        line(&format!(
            "{blocked} of {} moves blocked",
            must_block().count()
        ));
        let own = report.moves.len() - must_block().count();
        if own > 0 {
            line(&format!(
                "{own} moves act on the workspace's own namespaces only (a system container's \
                 root may mount, name its host and make namespaces there)"
            ));
        }
    }
    Ok(if all_blocked { 0 } else { 1 })
}

/// The host uid of the process whose command line is `cmdline` (arguments NUL-separated).
fn root_process_uid(cmdline: &str) -> Option<u32> {
    let wanted = format!("{cmdline}\0");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let dir = e.path();
        let line = std::fs::read(dir.join("cmdline")).ok()?;
        if line != wanted.as_bytes() {
            return None;
        }
        let status = std::fs::read_to_string(dir.join("status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    })
}

/// This process's `VmRSS` or `VmHWM` (peak) in bytes; 0 when unreadable.
fn rss_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(&format!("{field}:")))
                .and_then(|v| v.trim().strip_suffix("kB"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// What the engine keeps on the host of `tenant`'s init output (its log files).
/// A move that makes a btrfs subvolume under the first folder matching `dir` with the ioctl
/// `request` (as the kernel reads it, only the low 32 bits count); it worked if the call did.
fn subvolume_move(dir: &str, request: u64) -> String {
    format!(
        "d=$(ls -d {dir} | head -1); python3 - \"$d\" <<'PY' 2>&1\n\
         import ctypes, os, struct, sys\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         libc.syscall.restype = ctypes.c_long\n\
         name = b'selftest-subvol-%d' % os.getpid()\n\
         args = ctypes.create_string_buffer(struct.pack('q4088s', 0, name))\n\
         fd = os.open(sys.argv[1], os.O_RDONLY)\n\
         r = libc.syscall(ctypes.c_long(16), ctypes.c_long(fd), ctypes.c_ulong({request:#x}), args)\n\
         print('made %s/%s' % (sys.argv[1], name.decode()) if r == 0 else 'errno %d' % ctypes.get_errno())\n\
         sys.exit(r != 0)\n\
         PY"
    )
}

/// Root inside A takes B's address as a second one of its own and sends from it to `target`
/// (off A's network, on this host): the move worked when the host's connection tracking took
/// the forged packet in. A packet from A's own address is sent beside it, to show that the
/// way is open and what blocks the forged one is the forgery.
async fn forge_move(
    h: &Hostel,
    a: &TenantName,
    b_ip: &str,
    target: std::net::Ipv4Addr,
) -> Result<MoveResult, CliError> {
    let send = |from: &str, port: u16| {
        format!(
            "python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
             s.bind((\"{from}\", 0)); s.sendto(b\"forged\", (\"{target}\", {port}))' 2>&1"
        )
    };
    let script = format!(
        "cat > /tmp/forge.sh <<'HOSTEL_MOVE'\n\
         ip addr add {b_ip}/32 dev eth0 2>&1 || exit 1\n\
         {forged}\n\
         ip addr del {b_ip}/32 dev eth0\n\
         HOSTEL_MOVE\n\
         {honest}; sudo -n bash /tmp/forge.sh",
        forged = send(b_ip, 9),
        honest = send("0.0.0.0", 10),
    );
    let (ran, said) = inside(h, a, &script).await?;
    let table = std::fs::read_to_string("/proc/net/nf_conntrack").unwrap_or_default();
    let seen = |src: &str, port: u16| {
        table.lines().any(|l| {
            l.contains(&format!("dst={target} "))
                && l.contains(&format!("dport={port} "))
                && (src.is_empty() || l.contains(&format!("src={src} ")))
        })
    };
    let (forged, honest) = (seen(b_ip, 9), seen("", 10));
    Ok(outcome(
        "send packets from B's address (forged source)",
        "inside A, as root",
        forged,
        format!(
            "forged packet {}, A's own {}{}",
            if forged { "let through" } else { "dropped" },
            if honest { "let through" } else { "not seen" },
            if ran {
                String::new()
            } else {
                format!("; {said}")
            },
        ),
    ))
}

/// Takes inotify instances until refused or 50000, writes how many and why it stopped to
/// `/tmp/.hostel-inotify` (opened first: at the open-file limit no file opens), and holds them
/// for 30 s.
const INOTIFY_HOLDER: &str = r#"import ctypes, os, resource, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
libc = ctypes.CDLL(None, use_errno=True)
out = open("/tmp/.hostel-inotify.tmp", "w")
n = 0
while n < 50000 and libc.inotify_init1(0) >= 0:
    n += 1
out.write("%d %s" % (n, os.strerror(ctypes.get_errno()) if n < 50000 else "cap"))
out.close()
os.rename("/tmp/.hostel-inotify.tmp", "/tmp/.hostel-inotify")
time.sleep(30)
"#;

/// A takes as many inotify instances as it may (up to 50000) and holds them while this process,
/// root on the host, asks for one. The kernel counts them against root, the owner of every
/// workspace's user namespace: at Debian's default of 128 one tenant takes them all, and the
/// host and every workspace that starts next (systemd needs them) are refused.
async fn inotify_move(h: &Hostel, a: &TenantName) -> Result<MoveResult, CliError> {
    let script = format!(
        "rm -f /tmp/.hostel-inotify; cat > /tmp/.hostel-inotify.py <<'PY'\n{INOTIFY_HOLDER}PY\n\
         (nohup python3 /tmp/.hostel-inotify.py >/dev/null 2>&1 &)\n\
         for i in $(seq 200); do [ -f /tmp/.hostel-inotify ] && break; sleep 0.1; done\n\
         cat /tmp/.hostel-inotify"
    );
    let (_, held) = inside(h, a, &script).await?;
    let host = nix::sys::inotify::Inotify::init(nix::sys::inotify::InitFlags::IN_CLOEXEC);
    inside(
        h,
        a,
        "pkill -f hostel-inotify.py; rm -f /tmp/.hostel-inotify*; true",
    )
    .await?;
    let (n, why) = held.split_once(' ').unwrap_or((&held, ""));
    let took = match why {
        "cap" => format!("A held {n} (the suite's cap)"),
        _ => format!("A held {n}, then: {why}"),
    };
    Ok(outcome(
        "use up the host's inotify instances",
        "inside A",
        host.is_err(),
        match host {
            Ok(_) => format!("{took}; the host still made one"),
            Err(e) => format!("{took}; the host was refused: {e}"),
        },
    ))
}

/// A sends one UDP packet to each of `max + 1000` ports of `target` (off its network, on this
/// host), each a flow of its own: the move worked when the host's connection tracking, one
/// table for every workspace and the host (full, it drops every new connection, the gateways'
/// too), holds more than `max` flows from A.
async fn conntrack_move(
    h: &Hostel,
    a: &TenantName,
    a_ip: &str,
    target: std::net::Ipv4Addr,
    max: u32,
) -> Result<MoveResult, CliError> {
    let sent = max + 1000;
    let (_, said) = inside(
        h,
        a,
        &format!(
            "python3 -c 'import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             for p in range({sent}):\n    s.sendto(b\"flow\", (\"{target}\", 1024 + p))\n\
             print(\"sent\")' 2>&1"
        ),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let table = std::fs::read_to_string("/proc/net/nf_conntrack").unwrap_or_default();
    let held = table
        .lines()
        .filter(|l| l.contains(" udp ") && l.contains(&format!("src={a_ip} dst={target} ")))
        .count();
    Ok(outcome(
        "fill the host's connection tracking with flows",
        "inside A",
        held > max as usize,
        format!("{said}: {sent} flows sent, {held} tracked (at most {max} allowed)"),
    ))
}

/// Keeps the first line of what a move printed, short.
fn seen(out: &[u8], err: &[u8]) -> String {
    let text = String::from_utf8_lossy(if out.iter().any(|b| !b.is_ascii_whitespace()) {
        out
    } else {
        err
    })
    .into_owned();
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut s: String = first.trim().chars().take(70).collect();
    if s.is_empty() {
        s = "(nothing)".into();
    }
    s
}

/// What a system container's root may do, to its own namespaces only (`mount`, `hostname`,
/// `unshare`): its init and a container engine inside need them.
const OWN_NAMESPACE: &[&str] = &[
    "mount a filesystem",
    "change the hostname",
    "make a user namespace",
];

/// What root may also do where the workspace runs containers of its own: raw and packet
/// sockets on its own network namespace, as that engine's containers expect (forging an
/// address past the bridge has a move of its own).
const OWN_NETWORK: &[&str] = &["open a raw socket", "send ARP frames (packet socket)"];

/// A move's result where each workspace is a system container with ids of its own: what it
/// may do to its own namespaces (`own`) is expected, not a hole (what it must not reach
/// beyond them has moves of its own).
fn outcome_in(
    own: &[&str],
    name: &str,
    from: &'static str,
    worked: bool,
    detail: String,
) -> MoveResult {
    let plain = outcome(name, from, worked, detail);
    if own.contains(&name) {
        MoveResult {
            expected: "own namespace only",
            result: if worked { "allowed" } else { "blocked" },
            ..plain
        }
    } else {
        plain
    }
}

fn outcome(name: &str, from: &'static str, worked: bool, detail: String) -> MoveResult {
    MoveResult {
        r#move: name.to_owned(),
        from,
        expected: "blocked",
        result: if worked { "NOT BLOCKED" } else { "blocked" },
        detail,
    }
}

/// Runs `script` in `tenant`'s workspace as the tenant; `Ok(true)` when it exits 0.
async fn inside(h: &Hostel, tenant: &TenantName, script: &str) -> Result<(bool, String), CliError> {
    let script = format!("set -o pipefail; {script}");
    let (code, out, err) = h.exec_capture(tenant, &["bash", "-c", &script]).await?;
    Ok((code == 0, seen(&out, &err)))
}

async fn keypair(dir: &Path, name: &str) -> Result<(PathBuf, SshPublicKey), CliError> {
    let key = dir.join(name);
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&key),
        "ssh-keygen",
    )
    .await?;
    let text =
        std::fs::read_to_string(key.with_extension("pub")).map_err(|e| fail(e.to_string()))?;
    let public = text
        .trim()
        .parse()
        .map_err(|e| CliError::from(ServiceError::from(e)))?;
    Ok((key, public))
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|n| n.into_string().ok())
        .unwrap_or_default()
}

/// The host's first non-loopback IPv4 address.
async fn host_address() -> Result<String, CliError> {
    let out = run_ok(Command::new("hostname").arg("-I"), "hostname -I").await?;
    out.split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(str::to_owned)
        .ok_or_else(|| fail("the host has no IPv4 address"))
}

/// The workspace's address and its network's gateway, as the engine says.
async fn addresses(h: &Hostel, tenant: &TenantName) -> Result<(String, String), CliError> {
    match h.workspace_addresses(tenant).await? {
        Some((ip, gw)) => Ok((ip.to_string(), gw.to_string())),
        None => Err(fail(format!("no address for hostel-{tenant}"))),
    }
}

/// A listener on every host address standing for any host service (the API beyond loopback,
/// an engine TCP port, a database): accepts and answers "host".
async fn host_service() -> Result<(u16, tokio::task::JoinHandle<()>), CliError> {
    let l = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .map_err(|e| fail(e.to_string()))?;
    let port = l.local_addr().map_err(|e| fail(e.to_string()))?.port();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = s.write_all(b"host\n").await;
        }
    });
    Ok((port, task))
}

/// Median of `n` timed `ssh true` runs as `user`, from `127.0.0.2`.
async fn ssh_true_ms(key: &Path, port: u16, user: &str, n: usize) -> f64 {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let ok = ssh(
            key,
            port,
            user,
            &["-b", "127.0.0.2", "-o", "ConnectTimeout=20"],
            "true",
        )
        .output()
        .await
        .is_ok_and(|o| o.status.success());
        times.push(if ok {
            t.elapsed().as_secs_f64() * 1000.0
        } else {
            f64::INFINITY
        });
    }
    times.sort_by(f64::total_cmp);
    times.get(n / 2).copied().unwrap_or(f64::INFINITY)
}

async fn suite(run: &mut Run<'_>) -> Result<Report, CliError> {
    let h = run.h;
    h.image_build(false, &Quiet).await?;
    let (key_a, pub_a) = keypair(&run.dir, "a").await?;
    let (key_b, pub_b) = keypair(&run.dir, "b").await?;
    let (key_x, _) = keypair(&run.dir, "stranger").await?;
    let (key_r, pub_r) = keypair(&run.dir, "revoked").await?;
    let a = run.tenant("a", &pub_a).await?;
    let b = run.tenant("b", &pub_b).await?;
    run.share_with(&a).await?;
    run.forge_target().await?;

    // The SSH gateway, in this process, on every address like the daemon's default.
    let gateway = Gateway::start(h, h.config().ssh.clone(), "0.0.0.0:0").await?;
    let gw_port = gateway.port;
    let (svc_port, svc) = host_service().await?;
    let result = moves(
        run,
        &a,
        &b,
        gw_port,
        svc_port,
        [&key_a, &key_b, &key_x, &key_r],
        &pub_r,
    )
    .await;
    gateway.stop();
    svc.abort();
    result
}

async fn moves(
    run: &Run<'_>,
    a: &TenantName,
    b: &TenantName,
    gw_port: u16,
    svc_port: u16,
    [key_a, key_b, key_x, key_r]: [&PathBuf; 4],
    pub_r: &SshPublicKey,
) -> Result<Report, CliError> {
    let h = run.h;
    wait_ssh(key_b, gw_port, b.as_str(), &[]).await?;
    let marker = format!("selftest-marker-{}", run.id);
    // B: a secret in its home, a process with a secret in its environment, a server.
    inside(
        h,
        b,
        &format!(
            "echo topsecret-{id} > ~/secret-{id}.txt && chmod 600 ~/secret-{id}.txt && \
             (SELFTEST_SECRET={id} nohup bash -c 'exec -a {marker} sleep 600' >/dev/null 2>&1 &) && \
             (nohup python3 -m http.server 8000 >/dev/null 2>&1 &) && sleep 1",
            id = run.id
        ),
    )
    .await?;
    let (b_ip, _) = addresses(h, b).await?;
    let (a_ip, a_gw) = addresses(h, a).await?;
    let host_ip = host_address().await?;
    let root = h.paths().root().display().to_string();
    let host = host_name();
    let probe = |ip: &str, port: u16| {
        format!("timeout 3 bash -c 'echo > /dev/tcp/{ip}/{port}' 2>&1 && echo connected")
    };
    let b_name = b.as_str();
    let id = &run.id;
    let scripts: Vec<(String, String)> = vec![
        ("read B's home".into(), format!("cat /home/{b_name}/secret-{id}.txt")),
        ("write into B's home".into(), format!("echo x > /home/{b_name}/pwned")),
        (
            "find B's files anywhere in its filesystem".into(),
            format!("f=$(find / -xdev -name 'secret-{id}.txt' 2>/dev/null | head -1); [ -n \"$f\" ] && echo \"$f\""),
        ),
        (
            "reach hostel's root, store or audit log".into(),
            format!("ls -d {root} {root}/state/hostel.db {root}/logs 2>&1"),
        ),
        // The marker is put together at run time, so the script's own command line never
        // matches it.
        (
            "see B's processes".into(),
            format!("m={}; pgrep -fa \"$m{}\"", &marker[..8], &marker[8..]),
        ),
        (
            "signal B's processes".into(),
            format!("m={}; pkill -f \"$m{}\"", &marker[..8], &marker[8..]),
        ),
        (
            "read B's environment through /proc".into(),
            format!("grep -l SELFTEST_SECRET={id} /proc/*/environ 2>/dev/null"),
        ),
        ("reach B's address and port".into(), probe(&b_ip, 8000)),
        (
            "reach a host service on the network's gateway".into(),
            probe(&a_gw, svc_port),
        ),
        (
            "reach a host service on the default bridge (172.17.0.1)".into(),
            probe("172.17.0.1", svc_port),
        ),
        (
            "reach a host service on the host's own address".into(),
            probe(&host_ip, svc_port),
        ),
        ("reach the SSH gateway from inside".into(), probe(&a_gw, gw_port)),
        (
            format!("reach cloud metadata ({})", run.metadata),
            probe(&run.metadata.ip().to_string(), run.metadata.port()),
        ),
        (
            "find the engine's socket".into(),
            "ls -l /var/run/docker.sock /run/docker.sock /run/hostel/docker.sock /run/containerd/containerd.sock 2>&1 | grep -v 'No such'".into(),
        ),
        ("mount a filesystem".into(), "mkdir -p /tmp/m && mount -t tmpfs x /tmp/m 2>&1".into()),
        (
            "mount the host's disk".into(),
            "mkdir -p /tmp/d; for d in /dev/[sv]d? /dev/nvme?n? /dev/loop? /dev/dm-?; do \
             [ -e \"$d\" ] && mount -o ro \"$d\" /tmp/d 2>/dev/null && echo \"mounted $d\" && exit 0; \
             done; echo 'no disk of the host mounted'; exit 1"
                .into(),
        ),
        (
            "load a kernel module".into(),
            "modprobe dummy 2>&1 || insmod /lib/modules/$(uname -r)/kernel/drivers/net/dummy.ko 2>&1".into(),
        ),
        (
            "open a raw socket".into(),
            "python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print(\"raw socket open\")' 2>&1 | tail -1".into(),
        ),
        (
            "send ARP frames (packet socket)".into(),
            "python3 -c 'import socket; s=socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((\"eth0\", 0)); print(\"packet socket open\")' 2>&1 | tail -1".into(),
        ),
        ("change the hostname".into(), "hostname evil 2>&1".into()),
        ("change the clock".into(), "date -s '2001-01-01' 2>&1".into()),
        (
            "write /proc/sys".into(),
            "echo 0 > /proc/sys/kernel/randomize_va_space 2>&1".into(),
        ),
        (
            "read the host's files through /proc/1/root".into(),
            format!("h=$(cat /proc/1/root/etc/hostname 2>&1); echo \"$h\"; [ \"$h\" = \"{host}\" ]"),
        ),
        (
            "become root with setuid(0)".into(),
            "python3 -c 'import os; os.setuid(0); print(\"uid 0\")' 2>&1 | tail -1".into(),
        ),
        (
            "ptrace a process it does not own".into(),
            "python3 -c 'import ctypes,sys; r=ctypes.CDLL(None, use_errno=True).ptrace(16, 1, 0, 0); print(\"ptrace\", r); sys.exit(0 if r == 0 else 1)' 2>&1".into(),
        ),
        ("make a device node".into(), "mknod /tmp/sda b 8 0 2>&1".into()),
        ("make a user namespace".into(), "unshare -Ur true 2>&1".into()),
        (
            "read the kernel log".into(),
            "dmesg > /tmp/dmesg 2>&1; s=$?; head -1 /tmp/dmesg; exit $s".into(),
        ),
        (
            "write past its disk quota outside the home (/tmp, 400 MB)".into(),
            "dd if=/dev/zero of=/tmp/fill bs=1M count=400 2>/dev/null; s=$(du -sm /tmp/fill | cut -f1); \
             rm -f /tmp/fill; echo \"$s MiB written to /tmp past a 256 MiB quota\"; [ \"$s\" -gt 300 ]"
                .into(),
        ),
        (
            "make a btrfs subvolume in its home (a quota of its own)".into(),
            subvolume_move("/home/*", 0x5000_940e),
        ),
        (
            "make a btrfs subvolume, request with its upper bits set".into(),
            subvolume_move("/home/*", 0xffff_ffff_5000_940e),
        ),
        (
            "make a btrfs subvolume in the writable layer (/var/tmp)".into(),
            subvolume_move("/var/tmp", 0x5000_9418),
        ),
        (
            "open io_uring".into(),
            "python3 -c 'import ctypes,sys; l=ctypes.CDLL(None, use_errno=True); b=ctypes.create_string_buffer(120); \
             r=l.syscall(425, 4, b); print(\"io_uring fd\" if r >= 0 else \"errno %d\" % ctypes.get_errno()); sys.exit(r < 0)' 2>&1"
                .into(),
        ),
        (
            "read every tenant's disk use (/sys/fs/btrfs qgroups)".into(),
            "ls -d /sys/fs/btrfs/*/qgroups/* 2>&1 | head -3 | grep qgroups".into(),
        ),
        (
            "raise its own limits (cgroup files)".into(),
            // The pids controller's own file (cgroup v1 or v2); it worked only if the limit moved.
            "f=/sys/fs/cgroup/pids.max; [ -d /sys/fs/cgroup/pids ] && f=/sys/fs/cgroup/pids/pids.max; \
             before=$(cat $f 2>&1); echo max > $f 2>&1; after=$(cat $f 2>&1); \
             echo \"$f: $before -> $after\"; [ \"$before\" != max ] && [ \"$after\" = max ]"
                .into(),
        ),
    ];
    let system = h.engine_ids().await? == hostel_runtime::IdMapping::Isolated;
    let nests = h.runs_containers(a).await?;
    let own: Vec<&str> = OWN_NAMESPACE
        .iter()
        .filter(|_| system)
        .chain(OWN_NETWORK.iter().filter(|_| nests))
        .copied()
        .collect();
    let mut results = web::moves(h, id, a, b, &format!("secret-{id}.txt")).await?;
    for (name, script) in &scripts {
        let (worked, detail) = inside(h, a, script).await?;
        results.push(outcome_in(&own, name, "inside A", worked, detail));
    }

    // With user namespaces the tenant has sudo: root inside. The moves that need privilege are
    // tried again as that root, and root inside must not be root on the host.
    let (sudo, sudo_seen) = inside(h, a, "sudo -n id -u 2>&1").await?;
    if sudo {
        const PRIVILEGED: &[&str] = &[
            "mount a filesystem",
            "mount the host's disk",
            "load a kernel module",
            "open a raw socket",
            "send ARP frames (packet socket)",
            "change the hostname",
            "change the clock",
            "write /proc/sys",
            "read the host's files through /proc/1/root",
            "make a device node",
            "make a user namespace",
            "read the kernel log",
            "read every tenant's disk use (/sys/fs/btrfs qgroups)",
            "raise its own limits (cgroup files)",
            "make a btrfs subvolume in its home (a quota of its own)",
            "make a btrfs subvolume, request with its upper bits set",
            "make a btrfs subvolume in the writable layer (/var/tmp)",
            "open io_uring",
        ];
        for (name, script) in scripts
            .iter()
            .filter(|(n, _)| PRIVILEGED.contains(&n.as_str()))
        {
            let as_root = format!(
                "cat > /tmp/move.sh <<'HOSTEL_MOVE'\nset -o pipefail\n{script}\nHOSTEL_MOVE\nsudo -n bash /tmp/move.sh"
            );
            let (worked, detail) = inside(h, a, &as_root).await?;
            results.push(outcome_in(&own, name, "inside A, as root", worked, detail));
        }
        if let Some((_, target)) = run.forge {
            results.push(forge_move(h, a, &b_ip, target).await?);
        }
        // Whatever root inside names its own host, the host keeps its name.
        let now = host_name();
        results.push(outcome(
            "change the host's hostname",
            "inside A, as root",
            now != host,
            format!("the host is {now:?}"),
        ));
    }
    if sudo {
        // Root inside writes its init's output, which the engine keeps on the host, outside
        // the home and its quota.
        inside(
            h,
            a,
            "sudo -n sh -c 'head -c 20000000 /dev/zero | tr \"\\0\" x > /proc/1/fd/1'",
        )
        .await?;
        let kept = h.workspace_output_bytes(a).await?;
        results.push(outcome(
            "fill the host's disk through its init's output (20 MB)",
            "inside A, as root",
            kept > 8 << 20,
            format!(
                "{} kept on the host",
                hostel_core::ByteSize::bytes(kept).human()
            ),
        ));
    }
    // The folder shared with A stays as the host has it: a tenant cannot write it, nor root
    // inside after remounting or unmounting it.
    let shared = run
        .share
        .as_ref()
        .map(|(n, _)| n.target())
        .unwrap_or_default();
    inside(
        h,
        a,
        &format!("touch {shared}/x 2>&1; echo changed > {shared}/{SHARED_FILE} 2>&1; true"),
    )
    .await?;
    let (untouched, detail) = run.share_untouched();
    results.push(outcome(
        "write to a folder the host shares (read-only)",
        "inside A",
        !untouched,
        detail,
    ));
    if sudo {
        inside(
            h,
            a,
            &format!(
                "sudo -n sh -c 'mount -o remount,rw {shared} 2>&1; touch {shared}/x 2>&1; \
                 mount -o remount,bind,rw {shared} 2>&1; touch {shared}/y 2>&1; \
                 umount {shared} 2>&1; touch {shared}/z 2>&1'; true"
            ),
        )
        .await?;
        let (untouched, detail) = run.share_untouched();
        results.push(outcome(
            "remount a shared folder writable and write it",
            "inside A, as root",
            !untouched,
            detail,
        ));
    }
    // A large download through hostel's file transfer grows nothing but a few chunks.
    inside(h, a, "truncate -s 1G ~/sparse").await?;
    let before = rss_bytes("VmRSS");
    let mut moved = 0u64;
    if let Ok(mut d) = h.file_get(a, "sparse").await {
        use futures_util::StreamExt;
        while let Some(Ok(chunk)) = d.body.next().await {
            moved += chunk.len() as u64;
        }
    }
    let grew = rss_bytes("VmHWM").saturating_sub(before);
    inside(h, a, "rm -f ~/sparse").await?;
    results.push(outcome(
        "grow hostel's memory with a 1 GiB download",
        "inside A",
        grew > 256 << 20,
        format!(
            "{} sent, peak memory {} above the start",
            hostel_core::ByteSize::bytes(moved).human(),
            hostel_core::ByteSize::bytes(grew).human()
        ),
    ));
    results.push(inotify_move(h, a).await?);
    if let Some((_, target)) = run.forge {
        let max = h.config().network.connections_max;
        results.push(conntrack_move(h, a, &a_ip, target, max).await?);
    }
    let marker_sleep = 31_000 + (std::process::id() % 1000);
    inside(
        h,
        a,
        &format!("(sudo -n sleep {marker_sleep} >/dev/null 2>&1 &); sleep 0.5; true"),
    )
    .await?;
    let host_uid = root_process_uid(&format!("sleep\0{marker_sleep}"));
    results.push(outcome(
        "become root on the host (sudo)",
        "inside A",
        host_uid == Some(0),
        match (sudo, host_uid) {
            (false, _) => format!("sudo refused: {sudo_seen}"),
            (true, Some(uid)) => format!("root inside runs as host uid {uid}"),
            (true, None) => "root's process not found on the host".into(),
        },
    ));

    // A symlink in the home to a host file, read back through hostel's own file transfer.
    inside(h, a, "ln -sf /etc/shadow ~/escape").await?;
    let shadow = std::fs::read("/etc/shadow").unwrap_or_default();
    let got = match h.file_get(a, "escape").await {
        Ok(d) if d.kind == hostel_service::DownloadKind::Folder => Ok(None),
        Ok(d) => d.into_bytes(1 << 20).await.map(Some),
        Err(e) => Err(e),
    };
    let (worked, detail) = match got {
        Ok(Some(bytes)) => (
            !shadow.is_empty() && bytes == shadow,
            format!("{} bytes, not the host's file", bytes.len()),
        ),
        Ok(None) => (false, "a folder".into()),
        Err(e) => (false, e.to_string().chars().take(70).collect()),
    };
    results.push(outcome(
        "escape through a symlink in the home (hostel cp)",
        "inside A",
        worked,
        detail,
    ));

    // Resource exhaustion: B keeps working, timed below.
    let mut latency = vec![Latency {
        noise: "nothing (baseline)",
        b_ssh_true_ms: ssh_true_ms(key_b, gw_port, b_name, 5).await,
    }];
    for (noise, script) in [
        (
            "fork bomb",
            "timeout 20 bash -c 'f(){ f | f & }; f' >/dev/null 2>&1",
        ),
        (
            "memory hog",
            "timeout 20 python3 -c 'a=[]\nwhile True: a.append(bytearray(16 << 20))' >/dev/null 2>&1",
        ),
        (
            "disk filler",
            "timeout 20 dd if=/dev/zero of=$HOME/fill bs=1M >/dev/null 2>&1; true",
        ),
    ] {
        let hostel = h.clone();
        let a2 = a.clone();
        let bg =
            tokio::spawn(async move { hostel.exec_capture(&a2, &["bash", "-c", script]).await });
        tokio::time::sleep(Duration::from_secs(3)).await;
        let ms = ssh_true_ms(key_b, gw_port, b_name, 5).await;
        let (b_ok, b_seen) = inside(h, b, "echo ok > ~/still-writes && cat ~/still-writes").await?;
        results.push(outcome(
            &format!("{noise} in A stops B"),
            "inside A",
            !b_ok || !ms.is_finite() || ms > 5000.0,
            format!("B answered in {ms:.0} ms, wrote a file: {b_seen}"),
        ));
        latency.push(Latency {
            noise,
            b_ssh_true_ms: ms,
        });
        let _ = bg.await;
        // Stopping A ends whatever it left behind; the next command wakes it.
        h.stop(a).await?;
    }
    inside(h, a, "rm -f ~/fill").await?;

    // From outside, at the gateway.
    let refused =
        |out: &std::process::Output| (out.status.success(), seen(&out.stdout, &out.stderr));
    let out = ssh(key_x, gw_port, a.as_str(), &[], "true")
        .output()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let (w, d) = refused(&out);
    results.push(outcome(
        "log in with a key it does not hold",
        "outside",
        w,
        d,
    ));
    h.key_add(a, std::slice::from_ref(pub_r))?;
    h.key_remove(a, pub_r.fingerprint())?;
    let out = ssh(key_r, gw_port, a.as_str(), &[], "true")
        .output()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let (w, d) = refused(&out);
    results.push(outcome("log in with a revoked key", "outside", w, d));
    let out = ssh(key_a, gw_port, b_name, &[], "true")
        .output()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let (w, d) = refused(&out);
    results.push(outcome("log in as B with A's key", "outside", w, d));
    // 200 environment variables on one channel: a channel keeps at most 64 (#13).
    let many: Vec<String> = (0..200).map(|i| format!("LC_SELFTEST{i}=x")).collect();
    let set_env = format!("SetEnv={}", many.join(" "));
    let out = ssh(
        key_a,
        gw_port,
        a.as_str(),
        &["-o", &set_env],
        "env | grep -c ^LC_SELFTEST",
    )
    .output()
    .await
    .map_err(|e| fail(e.to_string()))?;
    let kept: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    results.push(outcome(
        "set 200 environment variables on one SSH channel",
        "outside",
        kept > hostel_core::session::MAX_ENV,
        format!("{kept} kept"),
    ));
    let out = ssh(key_a, gw_port, a.as_str(), &[], "cat /etc/hostname")
        .output()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    results.push(outcome(
        "read the host's files over the gateway (sftp, cat)",
        "outside",
        text == host,
        format!("/etc/hostname is {text:?}"),
    ));
    let mut sftp = Command::new("sftp");
    sftp.args(["-P", &gw_port.to_string(), "-i"])
        .arg(key_a)
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-b",
            "-",
        ])
        .arg(format!("{a}@127.0.0.1"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let leaked = run.dir.join("leaked");
    let mut child = sftp.spawn().map_err(|e| fail(format!("sftp: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        let _ = stdin
            .write_all(
                format!(
                    "get ../../../../{root}/state/hostel.db {}\n",
                    leaked.display()
                )
                .as_bytes(),
            )
            .await;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| fail(e.to_string()))?;
    results.push(outcome(
        "sftp path traversal to hostel's store",
        "outside",
        leaked.exists(),
        seen(&out.stdout, &out.stderr),
    ));
    // `-W` takes no remote command.
    let mut forward = ssh_to(
        key_a,
        gw_port,
        a.as_str(),
        &["-W", &format!("172.17.0.1:{svc_port}")],
    );
    let out = tokio::time::timeout(Duration::from_secs(20), forward.output())
        .await
        .map_err(|_| fail("ssh -W did not end"))?
        .map_err(|e| fail(e.to_string()))?;
    results.push(outcome(
        "forward to a host service (ssh -W / -L)",
        "outside",
        String::from_utf8_lossy(&out.stdout).contains("host"),
        seen(&out.stdout, &out.stderr),
    ));
    // Filling the audit log from outside: failed logins are recorded until the address is
    // banned for everything, then refused unrecorded. Failures as one tenant ban the address
    // for that tenant first; the refusals that follow still count toward the address. From an
    // address of its own, lifted again at the end; eight at a time, as a flood would.
    let spammer = "127.0.0.3";
    let before = h.audit_log().query(&Default::default())?.len();
    let limit = h.config().ssh.ban_address_after_failures as usize;
    let attempts = (3 * limit).max(100);
    {
        use futures_util::StreamExt;
        futures_util::stream::iter(0..attempts)
            .for_each_concurrent(8, |_| async {
                let _ = ssh(
                    key_x,
                    gw_port,
                    a.as_str(),
                    &["-b", spammer, "-o", "ConnectTimeout=5"],
                    "true",
                )
                .output()
                .await;
            })
            .await;
    }
    let added = h.audit_log().query(&Default::default())?.len() - before;
    let bound = 2 * limit + 8;
    let _ = h.unban(spammer.parse().map_err(|e| fail(format!("{e}")))?);
    results.push(outcome(
        "fill the audit log with failed logins",
        "outside",
        added > bound,
        format!("{attempts} attempts added {added} records (bound {bound}: then banned)"),
    ));
    // Garbage, an oversized packet and half-open connections: the gateway keeps serving others.
    let mut junk = Vec::new();
    for garbage in [
        b"SSH-2.0-x\r\n\xff\xff\xff\xff\x00\x00\x00\x00garbage".to_vec(),
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        [
            b"SSH-2.0-x\r\n".to_vec(),
            vec![0x7f, 0xff, 0xff, 0xff],
            vec![0u8; 65536],
        ]
        .concat(),
    ] {
        if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", gw_port)).await {
            use tokio::io::AsyncWriteExt;
            let _ = s.write_all(&garbage).await;
            junk.push(s);
        }
    }
    let ms = ssh_true_ms(key_b, gw_port, b_name, 1).await;
    results.push(outcome(
        "malformed and oversized packets stop the gateway",
        "outside",
        !ms.is_finite(),
        format!("B logged in after them in {ms:.0} ms"),
    ));
    let mut half_open = Vec::new();
    for _ in 0..200 {
        if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", gw_port)).await {
            half_open.push(s);
        }
    }
    let ms = ssh_true_ms(key_b, gw_port, b_name, 1).await;
    results.push(outcome(
        "200 half-open connections (slowloris) lock others out",
        "outside",
        !ms.is_finite() || ms > 5000.0,
        format!(
            "{} connections held; B logged in from another address in {ms:.0} ms",
            half_open.len()
        ),
    ));
    drop(half_open);
    drop(junk);
    Ok(Report {
        moves: results,
        latency,
    })
}
