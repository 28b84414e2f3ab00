//! `hostel bench`: hostel against the plain engine (and OpenSSH) doing the same, in one run, as
//! medians and ratios. Benchmarks are never tests: nothing here asserts a time.
//!
//! [`lifecycle`]: create, stop, start, delete; [`ssh`]: the gateway; [`api`]: the sandbox path;
//! [`chaos`]: the daemon killed under load, and what it converges to; [`soak`]: the daemon
//! under a long load, watched over time; [`dashboard`]: the admin dashboard's charts with many
//! tenants; [`transfer`]: export and import against tar and zstd; [`io`]: a tenant's `fsync`
//! beside another's writes, with and without a disk I/O limit.

pub mod api;
pub mod chaos;
pub mod dashboard;
pub mod io;
pub mod lifecycle;
pub mod restart;
pub mod soak;
pub mod ssh;
pub mod transfer;

use crate::error::CliError;
use hostel_core::ErrorCode;
use hostel_core::Limits;
use hostel_runtime::{LABEL_MANAGED, Mount, WorkspaceSpec};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// A public key for bench tenants; nobody holds its private half.
const BENCH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHbY7kwAdHmtH85Bxt9xpZhqZDkUDHAlfX7EjiWRN0CI bench";

fn fail(message: impl Into<String>) -> CliError {
    CliError::new(ErrorCode::Internal, message, None)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// The baseline container: the workspace image with hostel's hardening and limits for an engine
/// that maps ids as `ids`, made by the engine alone (no home volume unless `home`, no store, no readiness wait), labelled
/// `io.hostel.bench=<run>` for the cleanup.
fn plain_spec(
    name: &str,
    image: &str,
    run: &str,
    home: Option<&Path>,
    ids: hostel_runtime::IdMapping,
) -> WorkspaceSpec {
    WorkspaceSpec {
        name: name.to_owned(),
        image: image.to_owned(),
        hostname: "plain".into(),
        env: vec!["HOSTEL_TENANT=plain".into()],
        labels: BTreeMap::from([
            (LABEL_MANAGED.to_owned(), "1".to_owned()),
            ("io.hostel.bench".to_owned(), run.to_owned()),
        ]),
        limits: Limits {
            cpus: hostel_core::Cpus::millis(1000),
            memory: hostel_core::ByteSize::mib(256),
            pids: 256,
        },
        mounts: home
            .map(|h| Mount {
                source: h.display().to_string(),
                target: "/home/plain".into(),
                read_only: false,
            })
            .into_iter()
            .collect(),
        privileges: if ids == hostel_runtime::IdMapping::Isolated {
            hostel_runtime::Privileges::Sudo
        } else {
            hostel_runtime::Privileges::InitOnly
        },
        network: None,
        output_log_max: hostel_service::OUTPUT_LOG_MAX,
        hidden_paths: vec![],
        layer_max: None,
        syscalls: hostel_service::workspace_syscall_filter(ids, false),
        gpus: hostel_core::Gpus::None,
        disk_io: hostel_core::DiskIo::Unlimited,
    }
}
