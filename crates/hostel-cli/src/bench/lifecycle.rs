//! `hostel bench`: hostel against the plain engine doing the same, in one run, as medians and
//! ratios. Benchmarks are never tests: nothing here asserts a time.
//!
//! `lifecycle` times, round by round, hostel's create (until the tenant's user can run a
//! command), stop, start (same) and delete against the root's engine's API doing the bare
//! equivalent on the same image, through the same socket: on Docker `docker run -d`, `docker
//! stop`, `docker start`, `docker rm`; on Incus an instance made, started, stopped and deleted. It then measures host memory per idle workspace, and the cached
//! image build, and with `--move-mib` a tenant's export and import (see `transfer`). Everything it makes is labelled `io.hostel.bench=<run>` and removed at the end.

use super::{BENCH_KEY, median, ms, plain_spec};
use crate::error::CliError;
use crate::output::{line, table};
use hostel_core::{ByteSize, SshPublicKey, TenantName};
use hostel_runtime::{IdMapping, Runtime};
use hostel_service::{CreateRequest, Hostel, Quiet, ServiceError};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

async fn timed<T, E>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<(Duration, T), E> {
    let t = Instant::now();
    let r = f.await?;
    Ok((t.elapsed(), r))
}

fn mem_used() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    field("MemTotal:").saturating_sub(field("MemAvailable:"))
}

struct Run<'a> {
    h: &'a Hostel,
    docker: std::sync::Arc<dyn Runtime>,
    ids: IdMapping,
    id: String,
    tenants: Vec<TenantName>,
    containers: Vec<String>,
}

impl Run<'_> {
    fn tenant(&mut self, i: usize) -> Result<TenantName, CliError> {
        let n: TenantName = format!("bench-{}-{i}", self.id)
            .parse()
            .map_err(|e| CliError::from(ServiceError::from(e)))?;
        self.tenants.push(n.clone());
        Ok(n)
    }

    fn request(&self, name: &TenantName) -> Result<CreateRequest, CliError> {
        let key = BENCH_KEY
            .parse::<SshPublicKey>()
            .map_err(|e| CliError::from(ServiceError::from(e)))?;
        Ok(CreateRequest {
            memory: Some(ByteSize::mib(256)),
            disk: Some(ByteSize::mib(256)),
            pids: Some(256),
            ..CreateRequest::new(name.clone(), vec![key])
        })
    }

    async fn cleanup(&self) {
        for t in &self.tenants {
            let _ = self.h.purge(t, true).await;
        }
        for c in &self.containers {
            let _ = self.docker.remove(c).await;
        }
    }
}

/// `hostel bench lifecycle`.
pub async fn lifecycle(
    h: &std::sync::Arc<Hostel>,
    rounds: usize,
    idle: usize,
    cold: bool,
    move_mib: u64,
) -> Result<(), CliError> {
    let cold_build = if cold {
        let started = Instant::now();
        h.image_build(true, &Quiet).await?;
        Some(started.elapsed())
    } else {
        None
    };
    let started = Instant::now();
    let image = h.image_build(false, &Quiet).await?;
    let cached_build = started.elapsed();
    let mut run = Run {
        h,
        docker: crate::wiring::engine_runtime(&h.config().engine),
        ids: h.engine_ids().await?,
        id: format!("{:x}", std::process::id()),
        tenants: Vec::new(),
        containers: Vec::new(),
    };
    let result = measure(&mut run, &image.reference, rounds, idle).await;
    run.cleanup().await;
    let (rows, idle_row) = result?;
    line(&format!(
        "hostel bench lifecycle: {rounds} rounds, image {}",
        image.reference
    ));
    let engine = format!(
        "{} ms",
        h.config().engine.kind.as_str().to_ascii_uppercase()
    );
    table(&["OPERATION", "HOSTEL ms", &engine, "RATIO"], &rows);
    if let Some(r) = idle_row {
        line(&r);
    }
    line(&format!("image build, cached: {} ms", ms(cached_build)));
    match cold_build {
        Some(d) => line(&format!(
            "image build, cold (layer without cache, base kept): {:.1} s",
            d.as_secs_f64()
        )),
        None => line("image build, cold: add --cold to time it"),
    }
    if move_mib > 0 {
        super::transfer::transfer(h, &run.id, move_mib).await?;
    }
    Ok(())
}

type Rows = (Vec<Vec<String>>, Option<String>);

async fn measure(
    run: &mut Run<'_>,
    image: &str,
    rounds: usize,
    idle: usize,
) -> Result<Rows, CliError> {
    let mut hostel: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut docker: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let base = run.h.paths().images().join(format!("bench-{}", run.id));
    for i in 0..rounds {
        let n = run.tenant(i)?;
        let req = run.request(&n)?;
        let (d, _) = timed(run.h.create(req, &Quiet)).await?;
        hostel.entry("create -> running").or_default().push(d);
        let (d, _) = timed(run.h.stop(&n)).await?;
        hostel.entry("stop").or_default().push(d);
        let (d, _) = timed(run.h.start(&n, &Quiet)).await?;
        hostel.entry("start").or_default().push(d);
        let (d, _) = timed(run.h.delete(&n)).await?;
        hostel.entry("delete").or_default().push(d);

        let cname = format!("hostel-bench-plain-{}-{i}", run.id);
        run.containers.push(cname.clone());
        let home = base.join(i.to_string());
        std::fs::create_dir_all(&home).map_err(|e| ServiceError::Io {
            action: "create",
            path: home.display().to_string(),
            source: e,
        })?;
        nix::unistd::chown(
            &home,
            Some(nix::unistd::Uid::from_raw(1000)),
            Some(nix::unistd::Gid::from_raw(1000)),
        )
        .map_err(|e| ServiceError::Io {
            action: "chown",
            path: home.display().to_string(),
            source: e.into(),
        })?;
        let spec = plain_spec(&cname, image, &run.id, Some(&home), run.ids);
        let d = &run.docker;
        let (t, _) = timed(async {
            d.create(&spec).await?;
            d.start(&cname).await
        })
        .await
        .map_err(ServiceError::from)?;
        docker.entry("create -> running").or_default().push(t);
        let (t, _) = timed(d.stop(&cname, 10))
            .await
            .map_err(ServiceError::from)?;
        docker.entry("stop").or_default().push(t);
        let (t, _) = timed(d.start(&cname)).await.map_err(ServiceError::from)?;
        docker.entry("start").or_default().push(t);
        let (t, _) = timed(d.remove(&cname)).await.map_err(ServiceError::from)?;
        docker.entry("delete").or_default().push(t);
    }
    let _ = std::fs::remove_dir_all(&base);
    let mut rows = Vec::new();
    for op in ["create -> running", "stop", "start", "delete"] {
        let hm = median(hostel.remove(op).unwrap_or_default());
        let dm = median(docker.remove(op).unwrap_or_default());
        let ratio = hm.as_secs_f64() / dm.as_secs_f64().max(1e-9);
        rows.push(vec![op.to_owned(), ms(hm), ms(dm), format!("{ratio:.2}x")]);
    }
    let idle_row = if idle > 0 {
        let before = mem_used();
        for i in 0..idle {
            let n = run.tenant(rounds + i)?;
            let req = run.request(&n)?;
            run.h.create(req, &Quiet).await?;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = mem_used();
        let per = after.saturating_sub(before) / idle as u64;
        Some(format!(
            "host memory per idle workspace over {idle}: {} (MemTotal - MemAvailable, before {} after {})",
            ByteSize::bytes(per).human(),
            ByteSize::bytes(before).human(),
            ByteSize::bytes(after).human()
        ))
    } else {
        None
    };
    Ok((rows, idle_row))
}
