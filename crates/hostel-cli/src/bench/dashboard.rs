//! `hostel bench dashboard`: the admin dashboard and its charts with many tenants, against the
//! bare engine call every page view makes (the list of containers). Nothing here is a test.
//!
//! It creates `--tenants` real tenants (their workspaces stopped after each start), serves the web gateway in this
//! process on 127.0.0.1, and fetches the pages with the charts empty, then again after filling
//! the usage history with 7 days of looks (made-up figures, one look every `[lifecycle]
//! check_secs`, as the daemon's reconciler records them). It reports each page's size and
//! server time beside the engine's list, the history's memory (counted, and the process's
//! resident memory before and after), and, where `node` and Chromium are there (a checkout's
//! `web/tests/browser.mjs`), the time a real browser takes to draw the page. Every tenant it
//! made is purged at the end.

use super::{BENCH_KEY, fail, median, ms};
use crate::error::CliError;
use crate::output::{line, table};
use hostel_core::history::Reading;
use hostel_core::{ByteSize, Role, SshPublicKey, TenantName};
use hostel_runtime::Runtime;
use hostel_runtime::docker::DockerRuntime;
use hostel_service::{CreateRequest, Hostel, Quiet, ServiceError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `hostel bench dashboard` is asked.
#[derive(Debug, Clone)]
pub struct DashboardOptions {
    /// Tenants to make.
    pub tenants: usize,
    /// Fetches of each page.
    pub rounds: usize,
    /// Run the browser scenario with this script (`web/tests/browser.mjs`), when found.
    pub browser: Option<std::path::PathBuf>,
}

/// `web/tests/browser.mjs` in the working folder, when it can run here: `node` on the `PATH`,
/// playwright-core installed beside it and Chromium where the script looks (`$CHROMIUM`, else
/// `/usr/bin/chromium`).
pub fn browser_script() -> Option<std::path::PathBuf> {
    let script = std::path::PathBuf::from("web/tests/browser.mjs");
    let chromium = std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into());
    let node = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("node").is_file()));
    (node
        && script.is_file()
        && std::path::Path::new("web/node_modules/playwright-core").is_dir()
        && std::path::Path::new(&chromium).is_file())
    .then_some(script)
}

/// The process's resident memory, from `/proc/self/status`.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// One page fetched `rounds` times with the dashboard's cookie: its size and median time.
async fn page(
    client: &reqwest::Client,
    url: &str,
    cookie: &str,
    rounds: usize,
) -> Result<(usize, Duration), CliError> {
    let mut times = Vec::with_capacity(rounds);
    let mut size = 0;
    for _ in 0..rounds {
        let started = Instant::now();
        let resp = client
            .get(url)
            .header("cookie", format!("hostel_admin={cookie}"))
            .send()
            .await
            .map_err(|e| fail(format!("GET {url}: {e}")))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| fail(format!("GET {url}: {e}")))?;
        times.push(started.elapsed());
        if !status.is_success() {
            return Err(fail(format!("GET {url}: {status}")));
        }
        size = body.len();
    }
    Ok((size, median(times)))
}

/// A made-up look at tenant `i` at `at`: a daily wave of CPU, memory and traffic, offset per
/// tenant, with counters that only grow.
fn reading(i: usize, at: i64, step: i64, total: &mut (u64, u64, u64)) -> Reading {
    let phase = (at as f64 / 86_400.0 + i as f64 / 17.0) * std::f64::consts::TAU;
    let load = 0.5 + 0.5 * phase.sin();
    total.0 += (load * 0.4 * step as f64 * 1e9) as u64;
    total.1 += (load * 20_000.0 * step as f64) as u64;
    total.2 += (load * 5_000.0 * step as f64) as u64;
    Reading {
        at,
        running: true,
        cpu_ns: Some(total.0),
        memory: Some(((40.0 + 160.0 * load) * 1048576.0) as u64),
        disk: Some((20 + i as u64 % 180) << 20),
        rx_bytes: Some(total.1),
        tx_bytes: Some(total.2),
        sessions: u32::from(load > 0.7) + u32::from(load > 0.9),
    }
}

/// Fills the history with 7 days of looks at `names`, one every `check_secs`, ending now.
fn fill(h: &Hostel, names: &[TenantName], check_secs: i64) {
    let now = chrono::Utc::now().timestamp();
    let step = check_secs.max(1);
    let mut totals = vec![(0, 0, 0); names.len()];
    let mut at = now - 7 * 86_400;
    let mut round = Vec::with_capacity(names.len());
    while at <= now {
        round.clear();
        for (i, (n, total)) in names.iter().zip(totals.iter_mut()).enumerate() {
            round.push((n.clone(), reading(i, at, step, total)));
        }
        h.record_usage_round(at, &round);
        at += step;
    }
}

struct Made {
    h: Arc<Hostel>,
    tenants: Vec<TenantName>,
    token: String,
}

impl Made {
    async fn cleanup(&self) {
        for t in &self.tenants {
            let _ = self.h.purge(t, true).await;
        }
        let _ = self.h.token_revoke(&self.token);
    }
}

/// `hostel bench dashboard`.
pub async fn dashboard(h: Arc<Hostel>, opts: DashboardOptions) -> Result<(), CliError> {
    let id = format!("{:x}", std::process::id());
    let mut made = Made {
        h: h.clone(),
        tenants: Vec::new(),
        token: format!("bench-{id}"),
    };
    let result = measure(&mut made, &id, &opts).await;
    made.cleanup().await;
    let report = result?;
    line(&format!(
        "hostel bench dashboard: {} tenants, {} fetches of each page",
        opts.tenants, opts.rounds
    ));
    table(
        &[
            "PAGE",
            "HISTORY",
            "BYTES",
            "SERVER ms",
            "ENGINE LIST ms",
            "RATIO",
        ],
        &report.pages,
    );
    for l in &report.notes {
        line(l);
    }
    Ok(())
}

struct Report {
    pages: Vec<Vec<String>>,
    notes: Vec<String>,
}

async fn measure(made: &mut Made, id: &str, opts: &DashboardOptions) -> Result<Report, CliError> {
    let h = made.h.clone();
    let key = BENCH_KEY
        .parse::<SshPublicKey>()
        .map_err(|e| CliError::from(ServiceError::from(e)))?;
    let started = Instant::now();
    for i in 0..opts.tenants {
        let name: TenantName = format!("bench-{id}-{i}")
            .parse()
            .map_err(|e| CliError::from(ServiceError::from(e)))?;
        made.tenants.push(name.clone());
        let stop = name.clone();
        let req = CreateRequest {
            memory: Some(ByteSize::mib(256)),
            disk: Some(ByteSize::mib(256)),
            pids: Some(256),
            ..CreateRequest::new(name, vec![key.clone()])
        };
        h.create(req, &Quiet).await?;
        // Stopped, they weigh nothing on the host while the next ones start; a page costs the
        // same either way (the engine's list, no call per workspace).
        h.stop(&stop).await?;
    }
    let mut notes = vec![format!(
        "{} tenants created in {:.1} s",
        opts.tenants,
        started.elapsed().as_secs_f64()
    )];
    let token = h.token_create(&made.token, Role::Viewer)?.into_inner();
    let (_, cookie) = h.admin_login(&token, None)?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| fail(e.to_string()))?;
    let addr = listener.local_addr().map_err(|e| fail(e.to_string()))?;
    let state = hostel_web::AppState::new(h.clone()).serving(&[addr]);
    let server = tokio::spawn(hostel_web::serve(
        listener,
        hostel_web::router(state),
        std::future::pending(),
    ));
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();

    // The baseline: the one engine call a page view makes, straight to the engine.
    let docker = DockerRuntime::new(h.config().engine.socket().to_owned());
    let labels = [(hostel_runtime::LABEL_MANAGED.to_owned(), "1".to_owned())];
    let mut lists = Vec::with_capacity(opts.rounds);
    for _ in 0..opts.rounds {
        let t = Instant::now();
        docker.list(&labels).await.map_err(ServiceError::from)?;
        lists.push(t.elapsed());
    }
    let list = median(lists);
    let mut pages = Vec::new();
    let mut row = |path: &str, history: &str, (size, time): (usize, Duration)| {
        pages.push(vec![
            path.to_owned(),
            history.to_owned(),
            ByteSize::bytes(size as u64).human(),
            ms(time),
            ms(list),
            format!("{:.2}x", time.as_secs_f64() / list.as_secs_f64().max(1e-9)),
        ]);
    };
    for path in ["/admin", "/admin/usage"] {
        row(
            path,
            "none",
            page(&client, &format!("{base}{path}"), &cookie, opts.rounds).await?,
        );
    }

    let rss_before = rss();
    let check_secs = i64::try_from(h.config().lifecycle.check_secs).unwrap_or(30);
    let started = Instant::now();
    let names = made.tenants.clone();
    let filler = h.clone();
    tokio::task::spawn_blocking(move || fill(&filler, &names, check_secs))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let filled = started.elapsed();
    let rss_after = rss();
    let history = h.history_bytes();
    notes.push(format!(
        "history: 7 days of looks every {check_secs} s for {} tenants filled in {:.1} s; \
         {} counted, process resident memory {} -> {} (+{})",
        opts.tenants,
        filled.as_secs_f64(),
        ByteSize::bytes(history as u64).human(),
        ByteSize::bytes(rss_before).human(),
        ByteSize::bytes(rss_after).human(),
        ByteSize::bytes(rss_after.saturating_sub(rss_before)).human(),
    ));
    for (path, history) in [
        ("/admin", "7 days, showing 1h"),
        ("/admin?range=24h", "7 days, showing 24h"),
        ("/admin?range=7d", "7 days, showing 7d"),
        ("/admin/usage", "7 days"),
    ] {
        row(
            path,
            history,
            page(&client, &format!("{base}{path}"), &cookie, opts.rounds).await?,
        );
    }

    match &opts.browser {
        Some(script) => notes.extend(browser(script, &base, &token).await?),
        None => notes.push(
            "browser: not timed (needs node, Chromium and web/tests/browser.mjs of a checkout \
             in the working folder)"
                .into(),
        ),
    }
    server.abort();
    Ok(Report { pages, notes })
}

/// Draws `/admin` and `/admin?range=7d` in headless Chromium and reports its timings.
async fn browser(
    script: &std::path::Path,
    base: &str,
    token: &str,
) -> Result<Vec<String>, CliError> {
    let shots = std::env::temp_dir().join(format!("hostel-bench-{}", std::process::id()));
    let out = tokio::process::Command::new("node")
        .arg(script)
        .arg("dashboard")
        .env("HOSTEL_URL", base)
        .env("HOSTEL_ADMIN_TOKEN", token)
        .env("HOSTEL_SHOTS", &shots)
        .output()
        .await
        .map_err(|e| fail(format!("node {}: {e}", script.display())))?;
    let _ = std::fs::remove_dir_all(&shots);
    if !out.status.success() {
        return Err(fail(format!(
            "the browser scenario failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let found: serde_json::Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| fail("the browser scenario printed no findings"))?;
    let f = |v: &serde_json::Value| v.as_f64().map_or("-".into(), |x| format!("{x:.0}"));
    Ok(["hour", "week"]
        .iter()
        .map(|k| {
            let p = found.get(k).unwrap_or(&serde_json::Value::Null);
            format!(
                "browser, /admin ({k}): {} bytes, {} tenant rows and {} charts; response {} ms, \
                 first paint {} ms, DOM ready {} ms, load {} ms",
                p["bytes"],
                p["rows"],
                p["lines"],
                f(&p["response_ms"]),
                f(&p["first_paint_ms"]),
                f(&p["dom_ready_ms"]),
                f(&p["load_ms"]),
            )
        })
        .collect())
}
