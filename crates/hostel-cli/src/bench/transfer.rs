//! `hostel bench lifecycle --move-mib N`: a tenant's export and import against `tar` piped to
//! `zstd` (and back) on the same home, in one run. The home holds N MiB of random bytes, the
//! worst case for compression; an import also makes the tenant (its create time is in the
//! lifecycle table above it). Both exports end with their archive on disk (fsync); neither
//! import syncs what it wrote.

use super::{BENCH_KEY, ms};
use crate::error::CliError;
use crate::output::{line, table};
use futures_util::StreamExt;
use hostel_core::{ByteSize, SshPublicKey, TenantName};
use hostel_service::{CreateRequest, Hostel, ImportRequest, Quiet, ServiceError};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CliError {
    let path = path.display().to_string();
    move |source| {
        ServiceError::Io {
            action,
            path,
            source,
        }
        .into()
    }
}

/// Runs `script` with `sh -c`, off the executor; fails on a non-zero exit.
async fn shell(script: String) -> Result<Duration, CliError> {
    let started = Instant::now();
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .await
        .map_err(io_error("run", Path::new("sh")))?;
    if !out.status.success() {
        return Err(super::fail(format!(
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(started.elapsed())
}

/// Times export and import of a home of `mib` MiB; prints a table and the rates.
pub async fn transfer(h: &Arc<Hostel>, run: &str, mib: u64) -> Result<(), CliError> {
    let key = BENCH_KEY
        .parse::<SshPublicKey>()
        .map_err(|e| CliError::from(ServiceError::from(e)))?;
    let name = |s: &str| -> Result<TenantName, CliError> {
        format!("bench-{run}-{s}")
            .parse()
            .map_err(|e| CliError::from(ServiceError::from(e)))
    };
    let (from, to) = (name("from")?, name("to")?);
    let dir = h.paths().images().join(format!("bench-{run}-move"));
    let result = async {
        std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
        let disk = ByteSize::mib(mib * 2 + 256);
        h.create(
            CreateRequest {
                memory: Some(ByteSize::mib(256)),
                disk: Some(disk),
                ..CreateRequest::new(from.clone(), vec![key])
            },
            &Quiet,
        )
        .await?;
        let home = std::path::PathBuf::from(h.info(&from).await?.home);
        // A file at a time, the pool kept ahead of them as the daemon would.
        for i in 0..16 {
            shell(format!(
                "head -c {} /dev/urandom > {}/data-{i} && sync",
                mib * 1024 * 1024 / 16,
                home.display()
            ))
            .await?;
            h.keep_storage().await.homes?;
        }

        let archive = dir.join("hostel.tar.zst");
        let started = Instant::now();
        let mut body = h.export(&from).await?.body;
        let mut file = std::fs::File::create(&archive).map_err(io_error("create", &archive))?;
        while let Some(chunk) = body.next().await {
            file.write_all(&chunk?)
                .map_err(io_error("write", &archive))?;
        }
        file.sync_all().map_err(io_error("sync", &archive))?;
        let export = started.elapsed();
        let size = std::fs::metadata(&archive)
            .map_err(io_error("read", &archive))?
            .len();

        let bytes = tokio::fs::read(&archive)
            .await
            .map_err(io_error("read", &archive))?;
        let chunks: Vec<_> = bytes.chunks(256 * 1024).map(|c| Ok(c.to_vec())).collect();
        let started = Instant::now();
        h.import(
            futures_util::stream::iter(chunks).boxed(),
            ImportRequest {
                name: Some(to.clone()),
                ..ImportRequest::default()
            },
            &Quiet,
        )
        .await?;
        let import = started.elapsed();

        let plain = dir.join("plain.tar.zst");
        let unpacked = dir.join("plain");
        std::fs::create_dir_all(&unpacked).map_err(io_error("create", &unpacked))?;
        let tar_out = shell(format!(
            "tar -C {} -cf - . | zstd -q -3 -o {p} && sync {p}",
            home.display(),
            p = plain.display()
        ))
        .await?;
        let tar_in = shell(format!(
            "zstd -q -dc {} | tar -C {} --numeric-owner -xpf -",
            plain.display(),
            unpacked.display()
        ))
        .await?;
        Ok::<_, CliError>((export, import, tar_out, tar_in, size))
    }
    .await;
    for t in [&from, &to] {
        let _ = h.purge(t, true).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (export, import, tar_out, tar_in, size) = result?;
    let rate = |d: Duration| format!("{:.0}", mib as f64 / d.as_secs_f64().max(1e-9));
    let ratio =
        |a: Duration, b: Duration| format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64().max(1e-9));
    line(&format!(
        "a home of {mib} MiB of random bytes; archive {}",
        ByteSize::bytes(size).human()
    ));
    table(
        &[
            "OPERATION",
            "HOSTEL ms",
            "MiB/s",
            "TAR+ZSTD ms",
            "MiB/s",
            "RATIO",
        ],
        &[
            vec![
                "export".into(),
                ms(export),
                rate(export),
                ms(tar_out),
                rate(tar_out),
                ratio(export, tar_out),
            ],
            vec![
                "import (and create)".into(),
                ms(import),
                rate(import),
                ms(tar_in),
                rate(tar_in),
                ratio(import, tar_in),
            ],
        ],
    );
    Ok(())
}
