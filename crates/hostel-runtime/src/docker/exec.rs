//! One command started in a container, as an [`ExecControl`]: waited for, signalled and
//! resized through its engine id, which never leaves this module.

use super::{in_container, map_err};
use crate::{ExecControl, RuntimeError};
use async_trait::async_trait;
use bollard::Docker;
use bollard::models::ExecInspectResponse;
use hostel_core::Signal;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// A started exec.
#[derive(Debug)]
pub struct DockerExec {
    pub docker: Docker,
    pub endpoint: String,
    pub id: String,
}

impl DockerExec {
    async fn inspect(&self) -> Result<ExecInspectResponse, RuntimeError> {
        self.docker.inspect_exec(&self.id).await.map_err(map_err(
            &self.endpoint,
            "inspect exec",
            "exec",
            &self.id,
        ))
    }
}

#[async_trait]
impl ExecControl for DockerExec {
    async fn wait(&self) -> Result<i64, RuntimeError> {
        // The output stream ends as the process closes it; the engine records the exit a moment
        // later, so poll briefly.
        let mut delay = Duration::from_millis(2);
        loop {
            let r = self.inspect().await?;
            if r.running != Some(true) {
                return Ok(r.exit_code.unwrap_or(-1));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }

    async fn signal(&self, signal: Signal) -> Result<(), RuntimeError> {
        // The engine answers a start before the process runs: until then it reports it running
        // with pid 0, and no exit code. A signal in that moment waits for the pid, or it would
        // be lost and the command run on (a client that hangs up at once).
        let mut delay = Duration::from_millis(2);
        let started = Instant::now();
        let r = loop {
            let r = self.inspect().await?;
            let pending = r.exit_code.is_none() && r.pid.unwrap_or(0) <= 1;
            if !pending || started.elapsed() > Duration::from_secs(10) {
                break r;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        };
        let (Some(true), Some(pid), Some(container)) = (r.running, r.pid, r.container_id) else {
            return Ok(());
        };
        let action = format!("send {signal} to exec {}", self.id);
        tokio::task::spawn_blocking(move || signal_in(&container, pid, signal))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(|message| RuntimeError::Host { action, message })
    }

    async fn resize(&self, cols: u16, rows: u16) -> Result<(), RuntimeError> {
        let opts = bollard::exec::ResizeExecOptions {
            height: rows,
            width: cols,
        };
        self.docker
            .resize_exec(&self.id, opts)
            .await
            .map_err(map_err(&self.endpoint, "resize exec", "exec", &self.id))
    }
}

/// Sends `signal` to the host process `pid` if it is in the container `container`'s control
/// group. The engine has no API to signal an exec, and reports its process by host pid; a pid
/// is reused once its process ends, so the process is pinned by a pidfd first and only then
/// checked to be the workspace's: a signal never reaches a process outside it.
fn signal_in(container: &str, pid: i64, signal: Signal) -> Result<(), String> {
    use rustix::process::{Pid, PidfdFlags, pidfd_open, pidfd_send_signal};
    let gone = |e: rustix::io::Errno| e == rustix::io::Errno::SRCH;
    let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return Err(format!("the engine reported pid {pid}"));
    };
    let fd = match pidfd_open(raw, PidfdFlags::empty()) {
        Err(e) if gone(e) => return Ok(()),
        r => r.map_err(|e| format!("pidfd_open({pid}): {e}"))?,
    };
    let groups = match std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        r => r.map_err(|e| format!("read /proc/{pid}/cgroup: {e}"))?,
    };
    if !in_container(&groups, container) {
        // Either the command ended and its pid went to another process before the pidfd was
        // opened, or the engine is wrong: nothing of the workspace's to signal, either way.
        return Err(format!("process {pid} is not in the workspace's container"));
    }
    let sig = rustix::process::Signal::from_named_raw(signal.number())
        .ok_or_else(|| format!("{signal} has no number here"))?;
    match pidfd_send_signal(fd.as_fd(), sig) {
        Err(e) if gone(e) => Ok(()),
        r => r.map_err(|e| format!("pidfd_send_signal: {e}")),
    }
}
