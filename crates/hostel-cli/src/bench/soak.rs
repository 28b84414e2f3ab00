//! `hostel bench soak`: the daemon under a long, steady load, watched over time.
//!
//! The daemon is a child of this process (`hostel serve` on ephemeral loopback ports, as
//! `bench chaos` runs it), so that its memory and descriptors are its own. For `--minutes`:
//! three quarters of `--sessions` are OpenSSH sessions and a quarter exec WebSockets (the web
//! terminal's path), each doing a little work every second; one client calls the API twice a
//! second. Every 10 s the daemon's RSS and open descriptors are sampled. `ssh true` is timed
//! (p50, p99) before and after. Then `--idle` SSH sessions are opened from 40 loopback
//! addresses and held, each running `sleep` in its workspace, and the daemon's memory per
//! session is read. Nothing here asserts a time; the figures go to docs/benchmarks.md.

use super::chaos::{Daemon, lock, rss_and_fds, start_daemon};
use super::fail;
use super::ssh::{run_ok, ssh};
use crate::error::CliError;
use crate::output::{json, line};
use futures_util::{SinkExt, StreamExt};
use hostel_core::{ByteSize, Role, TenantName};
use hostel_service::{CreateRequest, Hostel, Quiet, ServiceError};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the run asks for.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Working sessions at once.
    pub sessions: usize,
    /// How long they work.
    pub minutes: u64,
    /// Idle SSH sessions held at the end (0: none).
    pub idle: usize,
    /// Print the report as JSON.
    pub json: bool,
    /// `--config` to hand the daemon, when given.
    pub config: Option<PathBuf>,
}

/// Sessions per tenant: under `[ssh] max_sessions_per_tenant` (64 by default).
const PER_TENANT: usize = 50;

/// Loopback addresses the idle sessions come from.
const ADDRESSES: u8 = 40;

#[derive(Debug, Default, Serialize)]
struct Sample {
    second: u64,
    rss_kib: u64,
    fds: u64,
}

#[derive(Debug, Default, Serialize)]
struct Report {
    sessions: usize,
    minutes: u64,
    ssh_sessions_ok: u64,
    ssh_sessions_failed: u64,
    web_sessions_ok: u64,
    web_sessions_failed: u64,
    api_calls_ok: u64,
    api_calls_failed: u64,
    ssh_true_ms_start: (f64, f64),
    ssh_true_ms_end: (f64, f64),
    samples: Vec<Sample>,
    idle_asked: usize,
    idle_open: usize,
    idle_rss_kib_before: u64,
    idle_rss_kib_after: u64,
    idle_fds_after: u64,
}

/// p50 and p99 of `n` timed `ssh true`, in ms.
async fn ssh_true(key: &Path, port: u16, tenant: &str, n: usize) -> Result<(f64, f64), CliError> {
    let mut times = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        run_ok(&mut ssh(key, port, tenant, &[], "true"), "ssh true").await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((times.len() as f64 - 1.0) * q).round() as usize;
        times.get(i).copied().unwrap_or_default()
    };
    Ok((at(0.5), at(0.99)))
}

/// An SSH client that trusts the daemon's key (this process just started the daemon).
pub(crate) struct Trusting;

impl russh::client::Handler for Trusting {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// One idle session from `from`: logged in as `tenant`, running `sleep` in its workspace.
pub(crate) async fn idle_session(
    from: std::net::Ipv4Addr,
    port: u16,
    tenant: String,
    key: Arc<russh::keys::PrivateKey>,
) -> Result<
    (
        russh::client::Handle<Trusting>,
        russh::Channel<russh::client::Msg>,
    ),
    CliError,
> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| fail(e.to_string()))?;
    socket
        .bind(std::net::SocketAddr::from((from, 0)))
        .map_err(|e| fail(format!("bind {from}: {e}")))?;
    let stream = socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| fail(format!("connect: {e}")))?;
    let config = Arc::new(russh::client::Config::default());
    let mut handle = russh::client::connect_stream(config, stream, Trusting)
        .await
        .map_err(|e| fail(format!("ssh: {e}")))?;
    let auth = handle
        .authenticate_publickey(tenant, russh::keys::PrivateKeyWithHashAlg::new(key, None))
        .await
        .map_err(|e| fail(format!("ssh auth: {e}")))?;
    if !auth.success() {
        return Err(fail("ssh auth refused"));
    }
    let channel = handle
        .channel_open_session()
        .await
        .map_err(|e| fail(format!("ssh channel: {e}")))?;
    channel
        .exec(true, "sleep 100000")
        .await
        .map_err(|e| fail(format!("ssh exec: {e}")))?;
    Ok((handle, channel))
}

/// `hostel bench soak`.
pub async fn soak(h: Arc<Hostel>, opts: SoakOptions) -> Result<u8, CliError> {
    let root = h.paths().root().to_owned();
    let run = format!("soak{:x}", std::process::id() & 0xffff);
    let dir = root.join("state").join(&run);
    std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
    let token_name = format!("bench-{run}");
    let token = h.token_create(&token_name, Role::Admin)?.into_inner();
    let mut made = Vec::new();
    let result = measure(&h, &opts, &run, &dir, &token, &mut made).await;
    let purges = made.iter().map(|n| h.purge(n, true));
    futures_util::future::join_all(purges).await;
    let _ = h.token_revoke(&token_name);
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    if opts.json {
        json(&report)?;
    } else {
        print(&report);
    }
    Ok(0)
}

async fn measure(
    h: &Arc<Hostel>,
    opts: &SoakOptions,
    run: &str,
    dir: &Path,
    token: &str,
    made: &mut Vec<TenantName>,
) -> Result<Report, CliError> {
    let (key, pubkey) = super::ssh::keypair(dir, "soak").await?;
    let working = opts.sessions.div_ceil(PER_TENANT).max(1);
    let idle = opts.idle.div_ceil(PER_TENANT);
    if !opts.json {
        line(&format!(
            "soak: making {} tenants ({working} working, {idle} idle)",
            working + idle
        ));
    }
    let mut tenants = Vec::new();
    for i in 0..working + idle {
        let name: TenantName = format!("{run}-{i}")
            .parse()
            .map_err(|e| CliError::from(ServiceError::from(e)))?;
        let req = CreateRequest {
            cpus: Some(hostel_core::Cpus::millis(500)),
            memory: Some(ByteSize::mib(512)),
            disk: Some(ByteSize::mib(256)),
            pids: Some(1024),
            ..CreateRequest::new(name.clone(), vec![pubkey.clone()])
        };
        h.create(req, &Quiet).await?;
        made.push(name.clone());
        tenants.push(name.to_string());
    }
    let (work_tenants, idle_tenants) = tenants.split_at(working);
    let daemon = start_daemon(h.paths().root(), opts.config.as_deref()).await?;
    let mut report = Report {
        sessions: opts.sessions,
        minutes: opts.minutes,
        idle_asked: opts.idle,
        ..Report::default()
    };
    let first = work_tenants.first().cloned().unwrap_or_default();
    report.ssh_true_ms_start = ssh_true(&key, daemon.ssh, &first, 20).await?;
    if !opts.json {
        line(&format!(
            "soak: {} sessions for {} min (daemon pid {})",
            opts.sessions, opts.minutes, daemon.pid
        ));
    }
    work(&daemon, opts, &key, work_tenants, token, &mut report).await;
    report.ssh_true_ms_end = ssh_true(&key, daemon.ssh, &first, 20).await?;
    if opts.idle > 0 {
        hold_idle(&daemon, opts.idle, &key, idle_tenants, &mut report).await?;
    }
    Ok(report)
}

/// The working phase.
async fn work(
    daemon: &Daemon,
    opts: &SoakOptions,
    key: &Path,
    tenants: &[String],
    token: &str,
    report: &mut Report,
) {
    let seconds = opts.minutes * 60;
    let web = opts.sessions / 4;
    let mut ssh_tasks = Vec::new();
    // Each second: 64 KiB of random bytes hashed, then a pause.
    let script = format!(
        "for i in $(seq {seconds}); do head -c 65536 /dev/urandom | sha256sum >/dev/null; \
         sleep 1; done; echo done"
    );
    for (i, t) in tenants.iter().cycle().take(opts.sessions - web).enumerate() {
        let mut c = ssh(key, daemon.ssh, t, &[], &script);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        ssh_tasks.push(tokio::spawn(async move {
            // Spread the logins over a few seconds, as people arrive.
            tokio::time::sleep(Duration::from_millis(20 * i as u64)).await;
            c.output()
                .await
                .is_ok_and(|o| o.status.success() && o.stdout == b"done\n")
        }));
    }
    let mut web_tasks = Vec::new();
    for (i, t) in tenants.iter().cycle().take(web).enumerate() {
        let url = format!(
            "ws://127.0.0.1:{}/api/tenants/{t}/exec/ws?tty=false&command={}",
            daemon.http,
            urlencode(&format!(
                "for i in $(seq {seconds}); do echo tick $i; sleep 1; done"
            ))
        );
        let token = token.to_owned();
        web_tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20 * i as u64)).await;
            web_session(&url, &token, seconds).await
        }));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let api_ok = Arc::new(AtomicU64::new(0));
    let api_failed = Arc::new(AtomicU64::new(0));
    let api = {
        let (stop, ok, failed) = (stop.clone(), api_ok.clone(), api_failed.clone());
        let base = format!("http://127.0.0.1:{}", daemon.http);
        let token = token.to_owned();
        let tenant = tenants.first().cloned().unwrap_or_default();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            while !stop.load(Ordering::SeqCst) {
                let list = http
                    .get(format!("{base}/api/tenants"))
                    .bearer_auth(&token)
                    .send()
                    .await;
                let exec = http
                    .post(format!("{base}/api/tenants/{tenant}/exec"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({ "command": ["true"] }))
                    .send()
                    .await;
                for r in [list, exec] {
                    let counter = if r.is_ok_and(|r| r.status().is_success()) {
                        &ok
                    } else {
                        &failed
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (stop, samples, pid) = (stop.clone(), samples.clone(), daemon.pid);
        tokio::spawn(async move {
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                let (rss_kib, fds) = rss_and_fds(pid);
                lock(&samples).push(Sample {
                    second: started.elapsed().as_secs(),
                    rss_kib,
                    fds,
                });
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        })
    };
    for t in ssh_tasks {
        match t.await {
            Ok(true) => report.ssh_sessions_ok += 1,
            _ => report.ssh_sessions_failed += 1,
        }
    }
    for t in web_tasks {
        match t.await {
            Ok(true) => report.web_sessions_ok += 1,
            _ => report.web_sessions_failed += 1,
        }
    }
    stop.store(true, Ordering::SeqCst);
    let _ = api.await;
    sampler.abort();
    let (rss_kib, fds) = rss_and_fds(daemon.pid);
    let mut samples = std::mem::take(&mut *lock(&samples));
    samples.push(Sample {
        second: samples.last().map_or(0, |s| s.second + 1),
        rss_kib,
        fds,
    });
    report.samples = samples;
    report.api_calls_ok = api_ok.load(Ordering::SeqCst);
    report.api_calls_failed = api_failed.load(Ordering::SeqCst);
}

/// One exec WebSocket: true when it ticked `seconds` times and ended with exit code 0.
async fn web_session(url: &str, token: &str, seconds: u64) -> bool {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let Ok(mut req) = url.into_client_request() else {
        return false;
    };
    let Ok(auth) = format!("Bearer {token}").parse() else {
        return false;
    };
    req.headers_mut().insert("authorization", auth);
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(req).await else {
        return false;
    };
    let mut ticks = 0;
    while let Some(Ok(msg)) = ws.next().await {
        match msg {
            Message::Binary(b) => {
                ticks += b.windows(4).filter(|w| *w == b"tick").count() as u64;
            }
            Message::Text(t) => {
                let _ = ws.close(None).await;
                return ticks == seconds && t.contains("\"exit_code\":0");
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    let _ = ws.send(Message::Close(None)).await;
    false
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Opens and holds `n` idle sessions from 40 loopback addresses.
async fn hold_idle(
    daemon: &Daemon,
    n: usize,
    key: &Path,
    tenants: &[String],
    report: &mut Report,
) -> Result<(), CliError> {
    let private =
        Arc::new(russh::keys::load_secret_key(key, None).map_err(|e| fail(format!("key: {e}")))?);
    report.idle_rss_kib_before = rss_and_fds(daemon.pid).0;
    let mut tasks = Vec::new();
    for (i, t) in tenants.iter().cycle().take(n).enumerate() {
        let from = std::net::Ipv4Addr::new(127, 0, 1, 1 + (i % usize::from(ADDRESSES)) as u8);
        let (port, tenant, key) = (daemon.ssh, t.clone(), private.clone());
        tasks.push(tokio::spawn(async move {
            // A few at a time: logins are CPU work for both ends.
            tokio::time::sleep(Duration::from_millis(10 * i as u64)).await;
            idle_session(from, port, tenant, key).await
        }));
    }
    let mut open = Vec::new();
    for t in tasks {
        if let Ok(Ok(s)) = t.await {
            open.push(s);
        }
    }
    // Let the execs settle before reading the memory.
    tokio::time::sleep(Duration::from_secs(5)).await;
    report.idle_open = open.len();
    let (rss, fds) = rss_and_fds(daemon.pid);
    report.idle_rss_kib_after = rss;
    report.idle_fds_after = fds;
    for (handle, channel) in open {
        let _ = channel.close().await;
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, "", "")
            .await;
    }
    Ok(())
}

fn print(r: &Report) {
    line(&format!(
        "soak: {} sessions for {} min: ssh {} ok / {} failed, web {} ok / {} failed, API calls {} ok / {} failed",
        r.sessions,
        r.minutes,
        r.ssh_sessions_ok,
        r.ssh_sessions_failed,
        r.web_sessions_ok,
        r.web_sessions_failed,
        r.api_calls_ok,
        r.api_calls_failed
    ));
    line(&format!(
        "ssh true p50/p99: {:.0}/{:.0} ms at the start, {:.0}/{:.0} ms at the end",
        r.ssh_true_ms_start.0, r.ssh_true_ms_start.1, r.ssh_true_ms_end.0, r.ssh_true_ms_end.1
    ));
    line("SECOND  DAEMON RSS  OPEN FDS");
    for s in &r.samples {
        line(&format!(
            "{:>6}  {:>10}  {:>8}",
            s.second,
            ByteSize::bytes(s.rss_kib * 1024).human(),
            s.fds
        ));
    }
    if r.idle_asked > 0 {
        let per = (r.idle_rss_kib_after.saturating_sub(r.idle_rss_kib_before) * 1024)
            / r.idle_open.max(1) as u64;
        line(&format!(
            "idle: {}/{} sessions open from {ADDRESSES} addresses; daemon RSS {} -> {} ({} per session), {} open fds",
            r.idle_open,
            r.idle_asked,
            ByteSize::bytes(r.idle_rss_kib_before * 1024).human(),
            ByteSize::bytes(r.idle_rss_kib_after * 1024).human(),
            ByteSize::bytes(per).human(),
            r.idle_fds_after
        ));
    }
}
