//! `hostel bench io`: what one tenant's disk writes do to another's `fsync`, and what a disk
//! I/O limit changes. Two tenants on this host's engine: B syncs 4 KiB at a time (an editor, a
//! database commit) while A writes 1 MiB blocks, each synced, as fast as it can (`fio
//! --fsync=1`). B's `fsync` latency is measured quiet (the baseline, in the same run), beside A
//! with no limit, and beside A with `--disk-io`; the report gives each against quiet.

use super::{BENCH_KEY, fail};
use crate::error::CliError;
use crate::output::{json, line, table};
use hostel_core::{ByteSize, DiskIo, QuotaChange, SshPublicKey, TenantName};
use hostel_service::{CreateRequest, Hostel, Quiet, ServiceError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// B's probe: `fsync`s of a 4 KiB write, 20 ms apart; prints its latencies' median and 95th
/// percentile in ms as JSON.
const PROBE: &str = r#"
import json, os, sys, time
n = int(sys.argv[1])
fd = os.open(os.path.expanduser("~/.bench-io-probe"), os.O_WRONLY | os.O_CREAT, 0o600)
block = os.urandom(4096)
lat = []
for i in range(n):
    os.pwrite(fd, block, (i % 256) * 4096)
    t = time.perf_counter()
    os.fsync(fd)
    lat.append((time.perf_counter() - t) * 1000)
    time.sleep(0.02)
os.close(fd)
os.unlink(os.path.expanduser("~/.bench-io-probe"))
lat.sort()
print(json.dumps({"median_ms": lat[len(lat) // 2], "p95_ms": lat[int(len(lat) * 0.95)]}))
"#;

/// A's writer: 1 MiB blocks, each synced, over a 64 MiB file, until `~/.bench-io-stop` appears;
/// prints MiB/s.
const NOISY: &str = r#"
import os, time
stop = os.path.expanduser("~/.bench-io-stop")
path = os.path.expanduser("~/.bench-io-noise")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
block = os.urandom(1 << 20)
start, n = time.perf_counter(), 0
while not os.path.exists(stop):
    os.pwrite(fd, block, (n % 64) << 20)
    os.fsync(fd)
    n += 1
elapsed = time.perf_counter() - start
os.close(fd)
os.unlink(path)
os.unlink(stop)
print(n / max(elapsed, 1e-9))
"#;

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
struct Latency {
    median_ms: f64,
    p95_ms: f64,
}

#[derive(Debug, Serialize)]
struct Phase {
    phase: String,
    b_fsync_median_ms: f64,
    b_fsync_p95_ms: f64,
    median_vs_quiet: f64,
    p95_vs_quiet: f64,
    a_mib_per_s: Option<f64>,
}

async fn run(h: &Hostel, tenant: &TenantName, script: &str, arg: &str) -> Result<String, CliError> {
    let (code, out, err) = h
        .exec_capture(tenant, &["python3", "-c", script, arg])
        .await?;
    if code != 0 {
        return Err(fail(format!(
            "the bench's script failed in {tenant} ({code}): {}",
            String::from_utf8_lossy(&err).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out).trim().to_owned())
}

/// B's latencies over `samples` syncs, with A writing meanwhile when `noisy`; and A's rate.
async fn measure(
    h: &Hostel,
    a: &TenantName,
    b: &TenantName,
    samples: u32,
    noisy: bool,
) -> Result<(Latency, Option<f64>), CliError> {
    let probe = async {
        if noisy {
            // A is under way before B starts.
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
        let out = run(h, b, PROBE, &samples.to_string()).await;
        if noisy {
            h.exec_capture(a, &["sh", "-c", "touch ~/.bench-io-stop"])
                .await?;
        }
        let out = out?;
        serde_json::from_str::<Latency>(&out).map_err(|e| fail(format!("probe said {out:?}: {e}")))
    };
    if !noisy {
        return Ok((probe.await?, None));
    }
    let (latency, rate) = tokio::join!(probe, run(h, a, NOISY, ""));
    let rate = rate?;
    let rate: f64 = rate
        .parse()
        .map_err(|_| fail(format!("the writer said {rate:?}")))?;
    Ok((latency?, Some(rate)))
}

/// `hostel bench io`: `samples` syncs per phase; `limit` is A's limit in the last phase.
pub async fn io_bench(
    h: Arc<Hostel>,
    samples: u32,
    limit: DiskIo,
    json_out: bool,
) -> Result<(), CliError> {
    let key = BENCH_KEY
        .parse::<SshPublicKey>()
        .map_err(|e| CliError::from(ServiceError::from(e)))?;
    let run_id = format!("io{:x}", std::process::id() & 0xffff);
    let name = |s: &str| -> Result<TenantName, CliError> {
        format!("bench-{run_id}-{s}")
            .parse()
            .map_err(|e| CliError::from(ServiceError::from(e)))
    };
    let (a, b) = (name("a")?, name("b")?);
    let result = async {
        for t in [&a, &b] {
            h.create(
                CreateRequest {
                    memory: Some(ByteSize::mib(512)),
                    disk: Some(ByteSize::mib(512)),
                    disk_io: Some(DiskIo::Unlimited),
                    ..CreateRequest::new(t.clone(), vec![key.clone()])
                },
                &Quiet,
            )
            .await?;
        }
        let quiet = measure(&h, &a, &b, samples, false).await?.0;
        let open = measure(&h, &a, &b, samples, true).await?;
        let change = QuotaChange {
            disk_io: Some(limit),
            ..QuotaChange::default()
        };
        h.set(&a, change, None, None, Default::default()).await?;
        h.stop(&a).await?;
        h.start(&a, &Quiet).await?;
        let limited = measure(&h, &a, &b, samples, true).await?;
        Ok::<_, CliError>((quiet, open, limited))
    }
    .await;
    for t in [&a, &b] {
        let _ = h.purge(t, true).await;
    }
    let (quiet, open, limited) = result?;
    let phase = |name: String, (l, rate): (Latency, Option<f64>)| Phase {
        phase: name,
        b_fsync_median_ms: l.median_ms,
        b_fsync_p95_ms: l.p95_ms,
        median_vs_quiet: l.median_ms / quiet.median_ms.max(1e-9),
        p95_vs_quiet: l.p95_ms / quiet.p95_ms.max(1e-9),
        a_mib_per_s: rate,
    };
    let phases = [
        phase("quiet (baseline)".into(), (quiet, None)),
        phase("A writes, no limit".into(), open),
        phase(format!("A writes, --disk-io {limit}"), limited),
    ];
    if json_out {
        return json(&phases);
    }
    line(&format!(
        "B's fsync of 4 KiB, {samples} times per phase, while A writes 1 MiB blocks, each synced"
    ));
    let rows: Vec<Vec<String>> = phases
        .iter()
        .map(|p| {
            vec![
                p.phase.clone(),
                format!("{:.2}", p.b_fsync_median_ms),
                format!("{:.2}x", p.median_vs_quiet),
                format!("{:.2}", p.b_fsync_p95_ms),
                format!("{:.2}x", p.p95_vs_quiet),
                p.a_mib_per_s.map_or("-".into(), |r| format!("{r:.1}")),
            ]
        })
        .collect();
    table(
        &[
            "PHASE",
            "B MEDIAN ms",
            "VS QUIET",
            "B P95 ms",
            "VS QUIET",
            "A MiB/s",
        ],
        &rows,
    );
    Ok(())
}
