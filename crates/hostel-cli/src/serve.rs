//! `hostel serve` (the daemon), `hostel status` and `hostel ssh-config`.
//!
//! The daemon writes `state/hostel.serve` (its pid and addresses) when it listens and removes it
//! when it stops; `status` reads it and checks the process still lives.

use crate::backend::Backend;
use crate::client::{Client, Credentials};
use crate::error::CliError;
use crate::output::{json, line};
use hostel_core::{ErrorCode, TenantName};
use hostel_runtime::storage::PoolState;
use hostel_service::{Hostel, Paths, ServiceError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// What a running daemon leaves in `state/hostel.serve`.
#[derive(Debug, Serialize, Deserialize)]
struct ServeState {
    pid: u32,
    ssh_listen: String,
    #[serde(default)]
    http_listen: String,
    host_key: String,
    #[serde(default)]
    tls: bool,
}

fn state_file(h: &Hostel) -> PathBuf {
    state_file_path(h.paths())
}

/// The local CLI's secret for this daemon's API (root-only).
fn token_file(paths: &Paths) -> PathBuf {
    paths.state().join("cli.token")
}

/// Writes `text` to `path` with `mode`, replacing it at once (readers never see half).
fn write_private(path: &std::path::Path, text: &str, mode: u32) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let fail = |e: std::io::Error| {
        CliError::new(
            ErrorCode::Internal,
            format!("cannot write {}: {e}", path.display()),
            Some("check that the hostel root is writable by root".into()),
        )
    };
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

fn host_key_file(h: &Hostel) -> PathBuf {
    h.paths().etc().join("ssh_host_ed25519_key")
}

fn gateway_err(e: hostel_ssh::GatewayError) -> CliError {
    let mut err = CliError::new(ErrorCode::Unavailable, e.to_string(), e.hint());
    if let Some(s) = std::error::Error::source(&e) {
        err.causes.push(s.to_string());
    }
    err
}

/// Parses a listen address; plain HTTP may only listen on loopback.
fn listen_addr(
    what: &str,
    flag: &str,
    addr: &str,
    tls: bool,
) -> Result<std::net::SocketAddr, CliError> {
    let parsed: std::net::SocketAddr = addr.parse().map_err(|_| {
        CliError::new(
            ErrorCode::InvalidInput,
            format!("{what} listen address {addr:?}: not an IP address and port"),
            Some(format!("e.g. {flag} 127.0.0.1:8080")),
        )
    })?;
    if !tls && !parsed.ip().is_loopback() {
        return Err(CliError::new(
            ErrorCode::InvalidInput,
            format!("{what} listen address {addr}: plain HTTP listens on loopback only"),
            Some(
                "use 127.0.0.1:PORT, or set [http] tls = true after `hostel cert generate`".into(),
            ),
        ));
    }
    Ok(parsed)
}

async fn bind(
    what: &str,
    flag: &str,
    addr: std::net::SocketAddr,
) -> Result<tokio::net::TcpListener, CliError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        CliError::new(
            ErrorCode::Unavailable,
            format!("{what} on {addr}: {e}"),
            Some(format!(
                "pick a free address with {flag} or [http] in hostel.toml"
            )),
        )
    })
}

/// Holds `state/hostel.serve.lock` for the daemon's life: one daemon per root. A second finds
/// it taken and stops before it touches anything of the first's.
fn lock_root(paths: &Paths) -> Result<nix::fcntl::Flock<std::fs::File>, CliError> {
    use nix::fcntl::{Flock, FlockArg};
    let path = paths.state().join("hostel.serve.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| {
            CliError::new(
                ErrorCode::Internal,
                format!("cannot open {}: {e}", path.display()),
                Some("check that the hostel root is writable by root".into()),
            )
        })?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| {
        let pid = read_state(paths).map_or_else(|| "unknown".to_owned(), |s| s.pid.to_string());
        CliError::new(
            ErrorCode::Conflict,
            format!(
                "another `hostel serve` runs on {} (pid {pid})",
                paths.root().display()
            ),
            Some(
                "one daemon serves a root: stop that one first (scripts/down), or give this one \
                 another --root"
                    .into(),
            ),
        )
    })
}

/// Raises the soft limit on open files to the hard one: every session holds a few, and
/// running out makes accepts fail (the listeners pause rather than stop, but serve no one).
fn raise_open_files() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::info!(from = soft, to = hard, "raised the open-file limit"),
            Err(e) => tracing::warn!(error = %e, soft, "cannot raise the open-file limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }
}

/// Runs the SSH gateway, the HTTP API and the web gateway until SIGTERM or SIGINT.
/// The addresses come from the configuration, where `serve`'s flags are its top layer.
pub async fn serve(h: Hostel) -> Result<u8, CliError> {
    let web = h.config().http.web_listen.clone();
    let http = h.config().http.listen.clone();
    let h_tls = h.config().http.tls;
    let http_addr = listen_addr("http", "--http-listen", &http, h_tls)?;
    let web_addr = web
        .as_deref()
        .map(|w| listen_addr("web", "--web-listen", w, h_tls))
        .transpose()?;
    let tls_err = |e: hostel_web::tls::TlsError| {
        CliError::new(
            ErrorCode::Unavailable,
            e.to_string(),
            Some("make the certificates with `hostel cert generate`".into()),
        )
    };
    let dir = h.paths().etc().join("tls");
    let (tls, web_tls) = if h_tls {
        (
            Some(hostel_web::tls::server_config(&dir).map_err(tls_err)?),
            Some(hostel_web::tls::web_server_config(&dir).map_err(tls_err)?),
        )
    } else {
        (None, None)
    };
    // Bad flags and files are reported first; then this daemon takes the root, before it
    // changes anything.
    let root_lock = lock_root(h.paths())?;
    raise_open_files();
    // Counts every workspace shares with the host, before any workspace starts.
    for f in h.ensure_kernel_counts().await? {
        tracing::warn!(
            key = %f.key,
            path = %f.path.display(),
            error = %f.source,
            "cannot raise a kernel count that every workspace shares with the host: one tenant \
             may use it up (see docs/security.md, kernel counts)"
        );
    }
    // Workspaces must not reach the listeners about to open: the rules go in first.
    h.ensure_filter().await.map_err(|e| {
        let mut err = CliError::from(e);
        err.hint = Some(
            "install iptables (scripts/engine does); to run without hostel's packet filter, set \
             [network] packet_filter = false (workspaces then reach the host)"
                .into(),
        );
        err
    })?;
    let http_listener = bind("http api", "--http-listen", http_addr).await?;
    let web_listener = match web_addr {
        Some(addr) => Some(bind("web gateway", "--web-listen", addr).await?),
        None => None,
    };
    let listen = h.config().ssh.listen.clone();
    let key = hostel_ssh::load_or_create_host_key(&host_key_file(&h)).map_err(gateway_err)?;
    let fingerprint = hostel_ssh::fingerprint(&key);
    let config = Arc::new(hostel_ssh::russh_config(key, &h.config().ssh));
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|source| {
            gateway_err(hostel_ssh::GatewayError::Listen {
                addr: listen.clone(),
                source,
            })
        })?;
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or(listen);
    let http_bound = http_listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or(http);
    let state = ServeState {
        pid: std::process::id(),
        ssh_listen: bound.clone(),
        http_listen: http_bound.clone(),
        host_key: fingerprint.clone(),
        tls: h_tls,
    };
    // The local CLI's secret first: the state file tells it a daemon serves.
    let secret: String = {
        use rand::RngExt;
        let bytes: [u8; 32] = rand::rng().random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    write_private(&token_file(h.paths()), &secret, 0o600)?;
    let path = state_file(&h);
    write_private(
        &path,
        &serde_json::to_string(&state).unwrap_or_default(),
        0o644,
    )?;
    let daemon = hostel_api::DaemonStatus {
        pid: state.pid,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ssh_listen: bound.clone(),
        http_listen: http_bound.clone(),
        host_key: fingerprint.clone(),
        open_sessions: 0,
    };
    let hostel = Arc::new(h);
    let reaper = tokio::spawn(hostel_service::acting_as(
        "reconciler".into(),
        reconciler(hostel.clone()),
    ));
    let pool_keeper = tokio::spawn(keep_storage(hostel.clone()));
    line(&format!(
        "hostel serve: SSH gateway on {bound}, host key {fingerprint}"
    ));
    let scheme = if h_tls { "https" } else { "http" };
    line(&format!(
        "hostel serve: HTTP API on {scheme}://{http_bound}"
    ));
    if let Some(w) = web_listener.as_ref().and_then(|l| l.local_addr().ok()) {
        line(&format!(
            "hostel serve: web gateway on {scheme}://{w} (the API and /admin stay on {http_bound})"
        ));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| {
            CliError::new(
                ErrorCode::Internal,
                format!("cannot catch SIGTERM: {e}"),
                None,
            )
        })?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut ssh_task = tokio::spawn(hostel_ssh::serve(
        hostel.clone(),
        listener,
        config,
        hostel.config().ssh.clone(),
        stop_rx.clone(),
    ));
    let mut http_stop = stop_rx.clone();
    let bound: Vec<std::net::SocketAddr> = [Some(&http_listener), web_listener.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    if hostel.config().http.hosts.is_empty() && bound.iter().any(|a| a.ip().is_unspecified()) {
        tracing::warn!(
            "listening on every address with [http] hosts empty: browsers reach hostel by a name \
             or address it does not know, so their forms are refused; list them in [http] hosts"
        );
    }
    let state = hostel_web::AppState::for_daemon(hostel.clone(), daemon, secret).serving(&bound);
    let state = if h_tls { state.over_tls() } else { state };
    let stopped = async move {
        let _ = http_stop.wait_for(|stop| *stop).await;
    };
    let (http_app, web_app) = match web_listener {
        Some(_) => (
            hostel_web::api_router(state.clone()),
            Some(hostel_web::web_router(state)),
        ),
        None => (hostel_web::router(state), None),
    };
    let limits = hostel_web::ConnLimits::from_config(&hostel.config().http);
    let mut http_task = tokio::spawn(hostel_web::serve_with(
        http_listener,
        http_app,
        tls,
        limits,
        stopped,
    ));
    let mut web_stop = stop_rx.clone();
    let web_stopped = async move {
        let _ = web_stop.wait_for(|stop| *stop).await;
    };
    let mut web_task = tokio::spawn(async move {
        match (web_listener, web_app) {
            (Some(l), Some(app)) => {
                hostel_web::serve_with(l, app, web_tls, limits, web_stopped).await
            }
            // No listener of its own: nothing to serve, until the daemon stops.
            _ => {
                web_stopped.await;
                Ok(())
            }
        }
    });
    let result: Result<(), CliError> = tokio::select! {
        r = &mut ssh_task => match r {
            Ok(r) => r.map_err(gateway_err),
            Err(e) => Err(CliError::new(ErrorCode::Internal, format!("ssh gateway task: {e}"), None)),
        },
        r = &mut http_task => match r {
            Ok(r) => r.map_err(|e| CliError::new(ErrorCode::Unavailable, format!("http api stopped: {e}"), None)),
            Err(e) => Err(CliError::new(ErrorCode::Internal, format!("http api task: {e}"), None)),
        },
        r = &mut web_task => match r {
            Ok(r) => r.map_err(|e| CliError::new(ErrorCode::Unavailable, format!("web gateway stopped: {e}"), None)),
            Err(e) => Err(CliError::new(ErrorCode::Internal, format!("web gateway task: {e}"), None)),
        },
        _ = term.recv() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    // Stop accepting, tell open sessions, and wait for them (and API calls in flight) to end,
    // at most drain_secs; workspaces keep running.
    let _ = stop_tx.send(true);
    let drain = std::time::Duration::from_secs(hostel.config().lifecycle.drain_secs);
    let open = hostel.open_total();
    if open > 0 {
        line(&format!(
            "hostel serve: draining {open} open session(s), at most {}s",
            drain.as_secs()
        ));
    }
    let deadline = tokio::time::Instant::now() + drain;
    while hostel.open_total() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = tokio::time::timeout_at(deadline, &mut http_task).await;
    let _ = tokio::time::timeout_at(deadline, &mut web_task).await;
    // The last sessions' exit statuses are queued; give the connections a moment to send them.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    ssh_task.abort();
    http_task.abort();
    web_task.abort();
    reaper.abort();
    pool_keeper.abort();
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(token_file(hostel.paths()));
    // Only now may another daemon start: its files are its own from here.
    drop(root_lock);
    line("hostel serve: stopped");
    result.map(|()| 0)
}

/// The daemon's reconciler: notes a host reboot, then looks at every tenant at once and every
/// `[lifecycle] check_secs` after, finishing or rolling back what a crash or a hung-up client
/// left, bringing workspaces to their desired state, applying the lifecycle policies; and
/// keeps the packet filter's rules in force. One tenant's failure never stops the loop.
async fn reconciler(hostel: Arc<Hostel>) {
    match hostel.daemon_started() {
        Ok(start) => {
            if !start.left_stopped.is_empty() {
                line(&format!(
                    "hostel serve: the host rebooted; left stopped until their next connection: {}",
                    start.left_stopped.join(", ")
                ));
            }
            if !start.autostart.is_empty() {
                line(&format!(
                    "hostel serve: autostart: {}",
                    start.autostart.join(", ")
                ));
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot prepare the autostart tenants"),
    }
    // What no tenant owns is reported once; removing it is the admin's call.
    match hostel.doctor(false).await {
        Ok(found) => {
            for f in found.iter().filter(|f| !f.reconciled) {
                line(&format!(
                    "hostel serve: drift: {}: {} (`hostel doctor --fix` would {})",
                    f.subject, f.problem, f.fix
                ));
            }
        }
        Err(e) => tracing::warn!(error = %e, "the start-up drift check failed"),
    }
    let every = hostel.config().lifecycle.check_secs.max(1);
    let mut state = hostel_service::ReconcileState::default();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(every));
    // A look that took longer than check_secs is followed by a pause, not by a burst of looks.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match hostel.reconcile(&mut state, every).await {
            Ok(report) => {
                for (tenant, repair) in &report.repaired {
                    line(&format!(
                        "hostel serve: repaired {tenant}: {} ({})",
                        repair.fix(),
                        repair.problem()
                    ));
                }
            }
            Err(e) => tracing::warn!(error = %e, "the reconciler cannot list the tenants"),
        }
        match hostel.take_due_snapshots().await {
            Ok(taken) => {
                for (tenant, snap) in &taken {
                    line(&format!(
                        "hostel serve: took scheduled snapshot {snap} of {tenant}"
                    ));
                }
            }
            Err(e) => tracing::warn!(error = %e, "scheduled snapshots cannot list the tenants"),
        }
        match hostel.repair_filter().await {
            Ok(true) => {}
            Ok(false) => line("hostel serve: the packet-filter rules were gone; put back"),
            Err(e) => tracing::warn!(error = %e, "packet-filter check failed"),
        }
    }
}

/// Keeps the homes pool and the engine's storage ahead of their use, every
/// [`hostel_service::POOL_CHECK`]; says when one grows, fills up and has room again.
async fn keep_storage(hostel: Arc<Hostel>) {
    let mut tick = tokio::time::interval(hostel_service::POOL_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut homes = Watch::new("the homes pool", "writes in homes");
    let mut engine = Watch::new(
        "the engine's storage",
        "writes outside homes and image builds",
    );
    loop {
        tick.tick().await;
        let now = hostel.keep_storage().await;
        homes.see(now.homes);
        engine.see(now.engine);
    }
}

/// What the daemon last saw of one store, to say only what changed.
struct Watch {
    what: &'static str,
    fails: &'static str,
    last: Option<PoolState>,
    failing: bool,
}

impl Watch {
    fn new(what: &'static str, fails: &'static str) -> Self {
        Watch {
            what,
            fails,
            last: None,
            failing: false,
        }
    }

    fn see(&mut self, now: Result<Option<PoolState>, ServiceError>) {
        let now = match now {
            Ok(Some(now)) => now,
            Ok(None) => return,
            Err(e) => {
                if !self.failing {
                    tracing::warn!(error = %e, store = self.what, "cannot keep the storage");
                    line(&format!("hostel serve: cannot keep {}: {e}", self.what));
                }
                self.failing = true;
                return;
            }
        };
        self.failing = false;
        let blocked = |s: &PoolState| s.is_full() || s.read_only;
        let was_blocked = self.last.as_ref().is_some_and(blocked);
        if let Some(l) = self.last.filter(|l| now.size > l.size) {
            line(&format!(
                "hostel serve: {} grew from {} to {}",
                self.what,
                l.size.human(),
                now.size.human()
            ));
        }
        if blocked(&now) && !was_blocked {
            line(&format!(
                "hostel serve: {} is {}: {} free, {} free on the host ({} fail with \"no \
                 space\" until there is room)",
                self.what,
                if now.read_only { "read-only" } else { "full" },
                now.free().human(),
                now.host_free.human(),
                self.fails
            ));
        } else if was_blocked && !blocked(&now) {
            line(&format!(
                "hostel serve: {} has room again ({} free)",
                self.what,
                now.free().human()
            ));
        }
        self.last = Some(now);
    }
}

/// The daemon's state file, if one was left.
fn read_state(paths: &Paths) -> Option<ServeState> {
    std::fs::read_to_string(paths.state().join("hostel.serve"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
}

/// Whether `pid` is a `hostel serve` (not another process that got a dead daemon's pid).
fn is_daemon(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
        args.first().is_some_and(|a| a.ends_with(b"hostel")) && args.contains(&b"serve".as_slice())
    })
}

/// A client of the daemon running on this host under `root`, if one runs: over loopback, with
/// the secret it left for the local CLI (and hostel's CA and client certificate when it serves
/// TLS).
pub fn local_daemon(root: &std::path::Path) -> Result<Option<Client>, CliError> {
    let paths = Paths::new(root);
    let Some(state) = read_state(&paths).filter(|s| is_daemon(s.pid)) else {
        return Ok(None);
    };
    let Ok(secret) = std::fs::read_to_string(token_file(&paths)) else {
        return Ok(None);
    };
    let addr: std::net::SocketAddr = state.http_listen.parse().map_err(|_| {
        CliError::new(
            ErrorCode::Internal,
            format!(
                "{}: http_listen {:?} is not an address",
                state_file_path(&paths).display(),
                state.http_listen
            ),
            Some("restart the daemon (scripts/up does)".into()),
        )
    })?;
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    let target = std::net::SocketAddr::new(ip, addr.port());
    let tls = hostel_web::tls::Files::in_dir(&paths.etc().join("tls"));
    let creds = Credentials {
        token: Some(secret.trim().to_owned().into()),
        actor: Some(crate::wiring::actor()),
        identity: state
            .tls
            .then(|| (tls.client_cert.clone(), tls.client_key.clone())),
        ca: state.tls.then(|| tls.ca.clone()),
    };
    let scheme = if state.tls { "https" } else { "http" };
    Client::new(&format!("{scheme}://{target}"), creds).map(Some)
}

fn state_file_path(paths: &Paths) -> PathBuf {
    paths.state().join("hostel.serve")
}

/// Whether the daemon runs: exit 0 when it does, 1 when not. Through `backend` when it is a
/// daemon's API (`--server`); else from the state file the local daemon leaves.
pub async fn status(
    root: &std::path::Path,
    backend: Option<&Backend>,
    json_out: bool,
) -> Result<u8, CliError> {
    let (daemon, gone) = match backend {
        Some(b) => (b.daemon().await?, None),
        None => {
            let paths = Paths::new(root);
            let state = read_state(&paths);
            match state {
                Some(s) if is_daemon(s.pid) => (
                    Some(hostel_api::DaemonStatus {
                        pid: s.pid,
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ssh_listen: s.ssh_listen,
                        http_listen: if s.tls {
                            format!("https://{}", s.http_listen)
                        } else {
                            format!("http://{}", s.http_listen)
                        },
                        host_key: s.host_key,
                        open_sessions: 0,
                    }),
                    None,
                ),
                Some(s) => (None, Some((s.pid, state_file_path(&paths)))),
                None => (None, None),
            }
        }
    };
    if json_out {
        json(&serde_json::json!({ "running": daemon.is_some(), "daemon": daemon }))?;
    } else {
        match (&daemon, gone) {
            (Some(d), _) => {
                line(&format!("daemon running, pid {}", d.pid));
                line(&format!(
                    "ssh gateway on {} (host key {})",
                    d.ssh_listen, d.host_key
                ));
                line(&format!("http api on {}", d.http_listen));
            }
            (None, Some((pid, path))) => line(&format!(
                "daemon not running (pid {pid} in {} is gone); start it with `hostel serve`",
                path.display()
            )),
            (None, None) => {
                line("daemon not running; start it with `hostel serve` (scripts/up does)")
            }
        }
    }
    Ok(if daemon.is_some() { 0 } else { 1 })
}

/// Prints a `Host` block for `ssh NAME`. The port is the running daemon's (it may run with
/// --ssh-listen), else the configured one; the host is the server's, else this machine's name.
pub fn ssh_config(
    name: &TenantName,
    host: Option<String>,
    port: Option<u16>,
    daemon: Option<&hostel_api::DaemonStatus>,
    server_host: Option<String>,
    configured_listen: &str,
) {
    let host = host.or(server_host).unwrap_or_else(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|n| n.into_string().ok())
            .unwrap_or_else(|| "localhost".into())
    });
    let listen = daemon.map_or(configured_listen, |d| d.ssh_listen.as_str());
    let port = port.unwrap_or_else(|| {
        listen
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(2222)
    });
    line(&format!("Host {name}"));
    line(&format!("    HostName {host}"));
    line(&format!("    Port {port}"));
    line(&format!("    User {name}"));
}
