//! `hostel bench chaos`: API clients create, run, stop, start and purge tenants while the daemon
//! is killed with SIGKILL at random moments and started again; then the daemon's reconciler gets
//! one look, and the root is checked: no tenant left half-made or half-purged, nothing in the
//! engine or the homes pool without a tenant (`doctor` finds nothing), no acknowledged tenant
//! or file lost, no acknowledged purge undone, the audit chain intact. Prints what it found and
//! exits 1 when any of it fails; the figures go to docs/benchmarks.md.
//!
//! The daemons are children of this process (`hostel serve` on ephemeral loopback ports, their
//! output in `<root>/logs/chaos-daemon.log`); the clients speak the HTTP API with a token made
//! for the run and revoked at the end. Every tenant it made is purged at the end.

use super::{BENCH_KEY, fail};
use crate::error::CliError;
use crate::output::{json, line};
use hostel_core::{ErrorCode, Role, TenantName};
use hostel_service::Hostel;
use rand::RngExt;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the run asks for.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    /// SIGKILLs of the daemon.
    pub kills: u32,
    /// Concurrent API clients.
    pub clients: usize,
    /// Print the report as JSON.
    pub json: bool,
    /// `--config` to hand the daemons, when given.
    pub config: Option<PathBuf>,
}

/// Operations by kind: answered with success, answered with an error, or cut off (the daemon
/// died under them, or was down).
#[derive(Debug, Default, Clone, Serialize)]
struct Tally {
    ok: u64,
    failed: u64,
    cut: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
struct Operations {
    create: Tally,
    exec: Tally,
    stop: Tally,
    start: Tally,
    purge: Tally,
}

/// What one client knows of a tenant it asked for.
#[derive(Debug, Clone)]
struct Known {
    name: String,
    created: bool,
    marker: bool,
    purge_tried: bool,
    purged: bool,
}

/// The report.
#[derive(Debug, Serialize)]
struct Report {
    kills: u32,
    clients: usize,
    seconds: f64,
    operations: Operations,
    /// From the last start of the daemon until no tenant was `creating` or `purging` and
    /// `doctor` found nothing (0: not within 3 minutes).
    converge_ms: u128,
    stuck: Vec<String>,
    doctor: Vec<String>,
    lost_tenants: Vec<String>,
    lost_files: Vec<String>,
    purges_undone: Vec<String>,
    audit_records: usize,
    audit_error: Option<String>,
    tenants_made: usize,
    rss_kib_first: u64,
    rss_kib_last: u64,
    fds_first: u64,
    fds_last: u64,
}

impl Report {
    fn is_clean(&self) -> bool {
        self.stuck.is_empty()
            && self.doctor.is_empty()
            && self.lost_tenants.is_empty()
            && self.lost_files.is_empty()
            && self.purges_undone.is_empty()
            && self.audit_error.is_none()
    }
}

/// A daemon child (killed when dropped).
pub(crate) struct Daemon {
    pub(crate) child: tokio::process::Child,
    pub(crate) pid: u32,
    pub(crate) http: u16,
    pub(crate) ssh: u16,
}

/// Starts `hostel serve` on ephemeral ports and waits until it has written its state file.
pub(crate) async fn start_daemon(root: &Path, config: Option<&Path>) -> Result<Daemon, CliError> {
    let exe = std::env::current_exe().map_err(|e| fail(format!("own binary: {e}")))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("logs/chaos-daemon.log"))
        .map_err(|e| fail(format!("daemon log: {e}")))?;
    let err = log
        .try_clone()
        .map_err(|e| fail(format!("daemon log: {e}")))?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("--root").arg(root);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let child = cmd
        .args([
            "serve",
            "--ssh-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("start hostel serve: {e}")))?;
    let pid = child.id().unwrap_or_default();
    let state = root.join("state/hostel.serve");
    for _ in 0..600 {
        if let Ok(text) = std::fs::read_to_string(&state)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            && v.get("pid").and_then(serde_json::Value::as_u64) == Some(u64::from(pid))
            && let Some(http) = port_of(&v, "http_listen")
            && let Some(ssh) = port_of(&v, "ssh_listen")
        {
            return Ok(Daemon {
                child,
                pid,
                http,
                ssh,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(fail(format!(
        "hostel serve did not start within 30s; see {}",
        root.join("logs/chaos-daemon.log").display()
    )))
}

/// The port of the address under `key` in the daemon's state file.
fn port_of(state: &serde_json::Value, key: &str) -> Option<u16> {
    state
        .get(key)
        .and_then(serde_json::Value::as_str)
        .and_then(|a| a.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
}

/// Resident memory (KiB) and open descriptors of a process.
pub(crate) fn rss_and_fds(pid: u32) -> (u64, u64) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    (rss, fds)
}

/// What a client's call came to.
enum Answer {
    Ok(serde_json::Value),
    Failed,
    Cut,
}

async fn call(
    http: &reqwest::Client,
    port: u16,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Answer {
    let mut req = http
        .request(method, format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    match req.send().await {
        Err(e) => {
            tracing::debug!(path, error = %e, "cut off");
            Answer::Cut
        }
        Ok(resp) if resp.status().is_success() => {
            Answer::Ok(resp.json().await.unwrap_or(serde_json::Value::Null))
        }
        Ok(resp) => {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            tracing::debug!(path, %status, body, "refused");
            if status.is_server_error() {
                Answer::Cut
            } else {
                Answer::Failed
            }
        }
    }
}

fn count(t: &mut Tally, a: &Answer) {
    match a {
        Answer::Ok(_) => t.ok += 1,
        Answer::Failed => t.failed += 1,
        Answer::Cut => t.cut += 1,
    }
}

/// One API client: until `stop`, creates tenants of its own and runs, stops, starts and purges
/// them at random.
async fn client(
    id: usize,
    run: String,
    port: Arc<AtomicU16>,
    token: String,
    stop: Arc<AtomicBool>,
    ops: Arc<Mutex<Operations>>,
    answered: Arc<AtomicU64>,
) -> Vec<Known> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap_or_default();
    let mut known: Vec<Known> = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let port = port.load(Ordering::SeqCst);
        let live: Vec<usize> = (0..known.len())
            .filter(|i| known.get(*i).is_some_and(|k| !k.purge_tried))
            .collect();
        let roll: u32 = rand::rng().random_range(0..100);
        // Each client keeps two tenants: a purge is followed by a create, so the engine's
        // churn (each container made and removed costs its storage driver) stays small.
        let answer = if live.len() < 2 {
            n += 1;
            let name = format!("{run}-{id}-{n}");
            let a = call(
                &http,
                port,
                &token,
                reqwest::Method::POST,
                "/api/tenants",
                Some(serde_json::json!({
                    "name": name, "keys": [BENCH_KEY], "cpus": "0.5",
                    "memory": "256MiB", "disk": "256MiB", "pids": 128,
                })),
            )
            .await;
            known.push(Known {
                name,
                created: matches!(a, Answer::Ok(_)),
                marker: false,
                purge_tried: false,
                purged: false,
            });
            count(&mut lock(&ops).create, &a);
            a
        } else {
            let pick = live
                .get(rand::rng().random_range(0..live.len()))
                .copied()
                .unwrap_or_default();
            let Some(k) = known.get_mut(pick) else {
                continue;
            };
            let base = format!("/api/tenants/{}", k.name);
            let (kind, a) = match roll {
                0..=49 => {
                    let a = call(
                        &http,
                        port,
                        &token,
                        reqwest::Method::POST,
                        &format!("{base}/exec"),
                        Some(serde_json::json!({
                            "command": ["sh", "-c", "echo chaos > chaos-marker"]
                        })),
                    )
                    .await;
                    if let Answer::Ok(v) = &a
                        && v.get("exit_code").and_then(serde_json::Value::as_i64) == Some(0)
                    {
                        k.marker = true;
                    }
                    ("exec", a)
                }
                50..=69 => (
                    "stop",
                    call(
                        &http,
                        port,
                        &token,
                        reqwest::Method::POST,
                        &format!("{base}/stop"),
                        None,
                    )
                    .await,
                ),
                70..=84 => (
                    "start",
                    call(
                        &http,
                        port,
                        &token,
                        reqwest::Method::POST,
                        &format!("{base}/start"),
                        None,
                    )
                    .await,
                ),
                _ => {
                    k.purge_tried = true;
                    let a = call(
                        &http,
                        port,
                        &token,
                        reqwest::Method::DELETE,
                        &format!("{base}?purge=true"),
                        None,
                    )
                    .await;
                    k.purged = matches!(a, Answer::Ok(_));
                    ("purge", a)
                }
            };
            let mut o = lock(&ops);
            let t = match kind {
                "exec" => &mut o.exec,
                "stop" => &mut o.stop,
                "start" => &mut o.start,
                _ => &mut o.purge,
            };
            count(t, &a);
            a
        };
        match answer {
            Answer::Cut => {
                // The daemon is down or restarting: do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Answer::Ok(_) => {
                answered.fetch_add(1, Ordering::SeqCst);
            }
            Answer::Failed => {}
        }
    }
    known
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `hostel bench chaos`.
pub async fn chaos(h: Arc<Hostel>, opts: ChaosOptions) -> Result<u8, CliError> {
    let root = h.paths().root().to_owned();
    let run = format!("chaos{:x}", std::process::id() & 0xffff);
    let token_name = format!("bench-{run}");
    let token = h.token_create(&token_name, Role::Admin)?.into_inner();
    let started = Instant::now();
    let mut daemon = start_daemon(&root, opts.config.as_deref()).await?;
    // Let it settle (first look, filter rules) before the first figure.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_kib_first, fds_first) = rss_and_fds(daemon.pid);
    let port = Arc::new(AtomicU16::new(daemon.http));
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(Mutex::new(Operations::default()));
    let answered = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..opts.clients)
        .map(|i| {
            tokio::spawn(client(
                i,
                run.clone(),
                port.clone(),
                token.clone(),
                stop.clone(),
                ops.clone(),
                answered.clone(),
            ))
        })
        .collect();
    if !opts.json {
        line(&format!(
            "chaos: {} clients, {} kills of the daemon (log: {})",
            opts.clients,
            opts.kills,
            root.join("logs/chaos-daemon.log").display()
        ));
    }
    let mut last_start = Instant::now();
    for _ in 0..opts.kills {
        // Each daemon serves at least one call before it dies (or 10 s pass), so that work gets
        // done between the kills however slow the host is; then it dies at a random moment
        // while the clients keep it busy.
        let before = answered.load(Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while answered.load(Ordering::SeqCst) == before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pause = rand::rng().random_range(0..2500);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let _ = daemon.child.start_kill();
        let _ = daemon.child.wait().await;
        daemon = start_daemon(&root, opts.config.as_deref()).await?;
        last_start = Instant::now();
        port.store(daemon.http, Ordering::SeqCst);
    }
    stop.store(true, Ordering::SeqCst);
    let mut known = Vec::new();
    for c in clients {
        known.extend(c.await.unwrap_or_default());
    }
    // The daemon's looks (at its start, then every check_secs) finish or roll back what the
    // kills left: wait until no tenant is half-done and doctor finds nothing, at most 3 min.
    let mut converge_ms = 0;
    for _ in 0..360 {
        let transitional = h.store().tenants()?.iter().any(|t| !t.status.is_ready());
        if !transitional && h.doctor(false).await?.is_empty() {
            converge_ms = last_start.elapsed().as_millis();
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (rss_kib_last, fds_last) = rss_and_fds(daemon.pid);
    let report = check(&h, &opts, &known, started, converge_ms, ops).await?;
    let report = Report {
        rss_kib_first,
        rss_kib_last,
        fds_first,
        fds_last,
        ..report
    };
    // The daemon stops (drains) before this process cleans up.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(daemon.pid).unwrap_or_default()),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = tokio::time::timeout(Duration::from_secs(60), daemon.child.wait()).await;
    let mine: Vec<TenantName> = h
        .store()
        .tenants()?
        .into_iter()
        .map(|t| t.name)
        .filter(|n| n.as_str().starts_with(&run))
        .collect();
    let purges = mine.iter().map(|n| h.purge(n, true));
    futures_util::future::join_all(purges).await;
    let _ = h.token_revoke(&token_name);
    print(&report, opts.json)?;
    Ok(if report.is_clean() { 0 } else { 1 })
}

/// Checks the root after the run.
async fn check(
    h: &Hostel,
    opts: &ChaosOptions,
    known: &[Known],
    started: Instant,
    converge_ms: u128,
    ops: Arc<Mutex<Operations>>,
) -> Result<Report, CliError> {
    let tenants = h.store().tenants()?;
    let stuck = tenants
        .iter()
        .filter(|t| !t.status.is_ready())
        .map(|t| format!("{} ({})", t.name, t.status))
        .collect();
    let doctor = h
        .doctor(false)
        .await?
        .into_iter()
        .map(|f| format!("{}: {}", f.subject, f.problem))
        .collect();
    let exists = |name: &str| tenants.iter().any(|t| t.name.as_str() == name);
    let mut lost_tenants = Vec::new();
    let mut lost_files = Vec::new();
    let mut purges_undone = Vec::new();
    for k in known {
        if k.purged && exists(&k.name) {
            purges_undone.push(k.name.clone());
        }
        if k.created && !k.purge_tried {
            if !exists(&k.name) {
                lost_tenants.push(k.name.clone());
            } else if k.marker {
                let name: TenantName = k
                    .name
                    .parse()
                    .map_err(|_| CliError::new(ErrorCode::Internal, "bad name", None))?;
                let home = PathBuf::from(h.info(&name).await?.home);
                if std::fs::read_to_string(home.join("chaos-marker"))
                    .ok()
                    .as_deref()
                    != Some("chaos\n")
                {
                    lost_files.push(k.name.clone());
                }
            }
        }
    }
    let (audit_records, audit_error) = match h.audit_log().verify() {
        Ok(n) => (n, None),
        Err(e) => (0, Some(e.to_string())),
    };
    Ok(Report {
        kills: opts.kills,
        clients: opts.clients,
        seconds: started.elapsed().as_secs_f64(),
        operations: lock(&ops).clone(),
        converge_ms,
        stuck,
        doctor,
        lost_tenants,
        lost_files,
        purges_undone,
        audit_records,
        audit_error,
        tenants_made: known.iter().filter(|k| k.created).count(),
        rss_kib_first: 0,
        rss_kib_last: 0,
        fds_first: 0,
        fds_last: 0,
    })
}

fn print(r: &Report, as_json: bool) -> Result<(), CliError> {
    if as_json {
        return json(r);
    }
    let o = &r.operations;
    line(&format!(
        "{} kills in {:.0}s; operations (ok / refused / cut off by a kill):",
        r.kills, r.seconds
    ));
    for (kind, t) in [
        ("create", &o.create),
        ("exec", &o.exec),
        ("stop", &o.stop),
        ("start", &o.start),
        ("purge", &o.purge),
    ] {
        line(&format!(
            "  {kind:<7} {:>5} / {:>4} / {:>4}",
            t.ok, t.failed, t.cut
        ));
    }
    line(&format!(
        "converged {} ms after the last start; tenants made {}",
        r.converge_ms, r.tenants_made
    ));
    line(&format!(
        "daemon RSS {} -> {} KiB, open fds {} -> {}",
        r.rss_kib_first, r.rss_kib_last, r.fds_first, r.fds_last
    ));
    let list = |what: &str, v: &[String]| {
        line(&format!(
            "{what}: {}",
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        ));
    };
    list("half-made or half-purged", &r.stuck);
    list("doctor finds", &r.doctor);
    list("acknowledged tenants lost", &r.lost_tenants);
    list("acknowledged files lost", &r.lost_files);
    list("acknowledged purges undone", &r.purges_undone);
    match &r.audit_error {
        None => line(&format!(
            "audit chain verifies: {} records",
            r.audit_records
        )),
        Some(e) => line(&format!("audit chain broken: {e}")),
    }
    line(if r.is_clean() {
        "chaos: clean"
    } else {
        "chaos: NOT clean"
    });
    Ok(())
}
