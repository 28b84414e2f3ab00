//! `hostel bench restart`: hostel's engine restarted under open sessions.
//!
//! Makes tenants, writes a file in each home and in each writable layer, opens `--sessions` SSH
//! sessions (each running `sleep` in its workspace) through a daemon of its own, then stops the
//! engine (SIGTERM to the pid in `--engine-pid-file`, waiting until it is gone) and starts it
//! again with `--start` (a shell command, `scripts/engine` by default). It reports how long the
//! engine was away, how many sessions lived through it, how soon each tenant could log in again,
//! whether every workspace runs and every file is there. It restarts the engine every tenant on
//! this host uses: a drill for a quiet host, never part of the test suite.

use super::chaos::{lock, start_daemon};
use super::fail;
use super::soak::idle_session;
use super::ssh::ssh;
use crate::error::CliError;
use crate::output::{json, line};
use hostel_core::lifecycle::WorkspaceState;
use hostel_core::{ByteSize, TenantName};
use hostel_service::{CreateRequest, Hostel, Quiet, ServiceError};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the run asks for.
#[derive(Debug, Clone)]
pub struct RestartOptions {
    /// SSH sessions open when the engine stops.
    pub sessions: usize,
    /// The engine's pid file.
    pub engine_pid_file: PathBuf,
    /// The shell command that starts the engine again.
    pub start: String,
    /// Print the report as JSON.
    pub json: bool,
    /// `--config` to hand the daemon, when given.
    pub config: Option<PathBuf>,
}

/// Sessions per tenant.
const PER_TENANT: usize = 25;

#[derive(Debug, Default, Serialize)]
struct Report {
    sessions: usize,
    tenants: usize,
    sessions_open_before: usize,
    engine_stop_ms: u64,
    engine_back_ms: u64,
    sessions_lived: usize,
    reconnect_ms_max: u64,
    workspaces_running_after: usize,
    home_files_kept: usize,
    layer_files_kept: usize,
}

/// `hostel bench restart`.
pub async fn restart(h: Arc<Hostel>, opts: RestartOptions) -> Result<u8, CliError> {
    let root = h.paths().root().to_owned();
    let run = format!("rst{:x}", std::process::id() & 0xffff);
    let dir = root.join("state").join(&run);
    std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
    let mut made = Vec::new();
    let result = measure(&h, &opts, &run, &dir, &mut made).await;
    let purges = made.iter().map(|n| h.purge(n, true));
    futures_util::future::join_all(purges).await;
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    if opts.json {
        json(&report)?;
    } else {
        print(&report);
    }
    let whole = report.sessions_open_before == report.sessions
        && report.workspaces_running_after == report.tenants
        && report.home_files_kept == report.tenants
        && report.layer_files_kept == report.tenants;
    Ok(if whole { 0 } else { 1 })
}

/// The first line of what `script` prints in the tenant's workspace.
async fn sh(h: &Hostel, tenant: &TenantName, script: &str) -> Result<String, CliError> {
    let (_, out, _) = h.exec_capture(tenant, &["sh", "-c", script]).await?;
    Ok(String::from_utf8_lossy(&out).trim().to_owned())
}

async fn measure(
    h: &Arc<Hostel>,
    opts: &RestartOptions,
    run: &str,
    dir: &Path,
    made: &mut Vec<TenantName>,
) -> Result<Report, CliError> {
    let (key, pubkey) = super::ssh::keypair(dir, "restart").await?;
    let private =
        Arc::new(russh::keys::load_secret_key(&key, None).map_err(|e| fail(format!("key: {e}")))?);
    let count = opts.sessions.div_ceil(PER_TENANT).max(1);
    let mut report = Report {
        sessions: opts.sessions,
        tenants: count,
        ..Report::default()
    };
    let mut tenants = Vec::new();
    let mut marks = Vec::new();
    for i in 0..count {
        let name: TenantName = format!("{run}-{i}")
            .parse()
            .map_err(|e| CliError::from(ServiceError::from(e)))?;
        let req = CreateRequest {
            memory: Some(ByteSize::mib(512)),
            disk: Some(ByteSize::mib(256)),
            pids: Some(1024),
            ..CreateRequest::new(name.clone(), vec![pubkey.clone()])
        };
        h.create(req, &Quiet).await?;
        made.push(name.clone());
        let mark = sh(
            h,
            &name,
            "head -c 4096 /dev/urandom > ~/before && cp ~/before /tmp/before && sync && \
             sha256sum < ~/before",
        )
        .await?;
        marks.push(mark);
        tenants.push(name);
    }
    let daemon = start_daemon(h.paths().root(), opts.config.as_deref()).await?;
    let ended: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(Vec::new()));
    let mut held = Vec::new();
    for i in 0..opts.sessions {
        let tenant = tenants
            .get(i % tenants.len())
            .map(ToString::to_string)
            .unwrap_or_default();
        let from = std::net::Ipv4Addr::new(127, 0, 0, 1);
        let Ok((handle, mut channel)) =
            idle_session(from, daemon.ssh, tenant, private.clone()).await
        else {
            continue;
        };
        let slot = {
            let mut e = lock(&ended);
            e.push(None);
            e.len() - 1
        };
        let ended = ended.clone();
        held.push(tokio::spawn(async move {
            // Until the session ends: its channel closes or its command exits.
            while let Some(msg) = channel.wait().await {
                if matches!(
                    msg,
                    russh::ChannelMsg::Close
                        | russh::ChannelMsg::Eof
                        | russh::ChannelMsg::ExitStatus { .. }
                ) {
                    break;
                }
            }
            if let Some(e) = lock(&ended).get_mut(slot) {
                *e = Some(Instant::now());
            }
            drop(handle);
        }));
    }
    report.sessions_open_before = held.len();
    if !opts.json {
        line(&format!(
            "restart: {} sessions open on {count} tenants; stopping the engine",
            held.len()
        ));
    }
    let pid: i32 = std::fs::read_to_string(&opts.engine_pid_file)
        .map_err(|e| fail(format!("{}: {e}", opts.engine_pid_file.display())))?
        .trim()
        .parse()
        .map_err(|e| fail(format!("{}: {e}", opts.engine_pid_file.display())))?;
    let stopped = Instant::now();
    let engine = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(engine, nix::sys::signal::Signal::SIGTERM)
        .map_err(|e| fail(format!("stop the engine (pid {pid}): {e}")))?;
    while nix::sys::signal::kill(engine, None).is_ok() {
        if stopped.elapsed() > Duration::from_secs(120) {
            return Err(fail(format!(
                "the engine (pid {pid}) did not stop in 120 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    report.engine_stop_ms = ms(stopped.elapsed());
    let started = tokio::process::Command::new("sh")
        .args(["-c", &opts.start])
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .map_err(|e| fail(format!("{}: {e}", opts.start)))?;
    if !started.success() {
        return Err(fail(format!("`{}` failed: {started}", opts.start)));
    }
    let first = tenants.first().cloned().ok_or_else(|| fail("no tenant"))?;
    while h.info(&first).await.is_err() {
        if stopped.elapsed() > Duration::from_secs(300) {
            return Err(fail("the engine did not answer within 300 s of its stop"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let back = Instant::now();
    report.engine_back_ms = ms(stopped.elapsed());
    // Each tenant, as soon as it lets a new login in.
    let mut slowest = Duration::ZERO;
    for t in &tenants {
        let waited = Instant::now();
        loop {
            let mut c = ssh(&key, daemon.ssh, t.as_str(), &[], "true");
            c.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            if c.status().await.is_ok_and(|s| s.success()) {
                break;
            }
            if waited.elapsed() > Duration::from_secs(120) {
                return Err(fail(format!(
                    "{t}: no login within 120 s of the engine's return"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slowest = slowest.max(back.elapsed());
    }
    report.reconnect_ms_max = ms(slowest);
    // A session lived if it had not ended a second after the engine was back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.sessions_lived = lock(&ended).iter().filter(|e| e.is_none()).count();
    for task in held {
        task.abort();
    }
    for (t, mark) in tenants.iter().zip(&marks) {
        if h.info(t)
            .await
            .is_ok_and(|i| i.summary.state == WorkspaceState::Running)
        {
            report.workspaces_running_after += 1;
        }
        if sh(h, t, "sha256sum < ~/before").await.ok().as_ref() == Some(mark) {
            report.home_files_kept += 1;
        }
        if sh(h, t, "sha256sum < /tmp/before").await.ok().as_ref() == Some(mark) {
            report.layer_files_kept += 1;
        }
    }
    Ok(report)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn print(r: &Report) {
    line(&format!(
        "engine restart under {} SSH sessions on {} tenants",
        r.sessions_open_before, r.tenants
    ));
    line(&format!(
        "  engine stopped in {} ms, answering again {} ms after the stop",
        r.engine_stop_ms, r.engine_back_ms
    ));
    line(&format!(
        "  sessions that lived through it: {} of {}",
        r.sessions_lived, r.sessions_open_before
    ));
    line(&format!(
        "  every tenant could log in again within {} ms of the engine's return",
        r.reconnect_ms_max
    ));
    line(&format!(
        "  workspaces running after: {} of {}; files kept: homes {} of {}, writable layers {} of {}",
        r.workspaces_running_after,
        r.tenants,
        r.home_files_kept,
        r.tenants,
        r.layer_files_kept,
        r.tenants
    ));
}
