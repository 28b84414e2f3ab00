//! Reaching into a tenant's workspace: commands started as the tenant, then waited for,
//! signalled and resized through the [`ExecHandle`] the start returned (a handle names its
//! tenant and reaches only its own command: the service's API has no exec ids for a caller to
//! guess or reuse), and connections to ports on its loopback.

use crate::spec::container_name;
use crate::{Hostel, Progress, ServiceError};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use hostel_core::{Outcome, Signal, TenantName};
use hostel_runtime::{Connection, ExecControl, ExecOutput, ExecRequest, Loopback, RuntimeError};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::AsyncWrite;

/// How to run a command in a workspace.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// argv.
    pub cmd: Vec<String>,
    /// Attach stdin.
    pub stdin: bool,
    /// Give it a terminal.
    pub tty: bool,
    /// Extra environment (`KEY=value`), already filtered by the caller's policy.
    pub env: Vec<String>,
    /// Working directory; unset: the home.
    pub cwd: Option<String>,
    /// Who to name in the audit record (`ssh:alice`); unset: the instance's actor.
    pub actor: Option<String>,
}

/// A command started in a tenant's workspace: its streams and its handle.
pub struct Exec {
    /// Output as it comes; ends when the command closes its output.
    pub output: BoxStream<'static, Result<ExecOutput, RuntimeError>>,
    /// The command's stdin; drop or shut down for EOF.
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
    /// The command itself, for [`Hostel::exec_finish`], [`Hostel::exec_signal`] and
    /// [`Hostel::exec_resize`].
    pub handle: ExecHandle,
}

impl std::fmt::Debug for Exec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exec")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

/// One started command, as the gateway that started it holds it. Clones are the same command.
#[derive(Debug, Clone)]
pub struct ExecHandle {
    tenant: TenantName,
    actor: Option<String>,
    control: Arc<dyn ExecControl>,
    /// Whether its end was recorded (once, however many clones ask).
    finished: Arc<AtomicBool>,
    /// Records its end as abandoned when the last clone goes unfinished.
    _abandoned: Arc<Abandoned>,
    /// The tenant's activity while it runs: ended by [`Hostel::exec_finish`], or when the
    /// last clone is dropped unfinished (a gateway that lost its client), so that an
    /// abandoned command never keeps the workspace from its idle stop.
    activity: Arc<std::sync::Mutex<Option<crate::lifecycle::Activity>>>,
}

/// The audit record of a command whose caller never asked how it ended (a gateway that lost
/// its client): written when the last handle goes, so that every command has an end in the log.
struct Abandoned {
    audit: hostel_store::AuditLog,
    tenant: TenantName,
    actor: String,
    finished: Arc<AtomicBool>,
}

impl std::fmt::Debug for Abandoned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Abandoned").finish_non_exhaustive()
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if self.finished.load(Ordering::SeqCst) {
            return;
        }
        let ev = hostel_core::AuditEvent::new(
            chrono::Utc::now(),
            "workspace.exec_end",
            &self.actor,
            Outcome::Failed,
        )
        .tenant(self.tenant.as_str())
        .with("ended", "abandoned");
        if let Err(e) = self.audit.append(&ev) {
            tracing::warn!(tenant = %self.tenant, error = %e, "cannot audit an abandoned command");
        }
    }
}

impl ExecHandle {
    /// The tenant whose workspace runs the command.
    pub fn tenant(&self) -> &TenantName {
        &self.tenant
    }
}

impl Hostel {
    /// Starts a command as the tenant in its workspace (waking it), in the home. The caller
    /// streams the session and then calls [`Hostel::exec_finish`]. Audited as `opts.actor`, or
    /// as this instance's actor.
    pub async fn exec(
        &self,
        name: &TenantName,
        opts: ExecOptions,
        progress: &dyn Progress,
    ) -> Result<Exec, ServiceError> {
        let started = std::time::Instant::now();
        let t = self.require_ready(name)?;
        self.ensure_running(&t, progress).await?;
        let mut env = vec![
            format!("HOME=/home/{name}"),
            format!("USER={name}"),
            format!("LOGNAME={name}"),
            "SHELL=/bin/bash".into(),
            "LANG=C.UTF-8".into(),
        ];
        env.extend(opts.env.iter().cloned());
        let req = ExecRequest {
            cmd: opts.cmd.clone(),
            user: name.to_string(),
            env,
            working_dir: Some(opts.cwd.clone().unwrap_or_else(|| format!("/home/{name}"))),
            stdin: opts.stdin,
            tty: opts.tty,
        };
        let result = self.runtime.exec(&container_name(name), &req).await;
        let activity = match &result {
            Ok(_) => {
                self.metrics
                    .observe("exec", started.elapsed().as_secs_f64());
                Some(self.activity_guard(name))
            }
            Err(_) => None,
        };
        let mut ev = self
            .event(
                "workspace.exec",
                if result.is_ok() {
                    Outcome::Ok
                } else {
                    Outcome::Failed
                },
            )
            .tenant(name.as_str())
            .with("command", crate::tenant::truncate(&opts.cmd.join(" "), 200));
        if let Some(actor) = &opts.actor {
            ev.actor.clone_from(actor);
        }
        self.record(ev)?;
        let session = result?;
        let finished = Arc::new(AtomicBool::new(false));
        let abandoned = Abandoned {
            audit: self.audit.clone(),
            tenant: name.clone(),
            actor: opts.actor.clone().unwrap_or_else(|| self.actor_now()),
            finished: finished.clone(),
        };
        Ok(Exec {
            output: session.output,
            input: session.input,
            handle: ExecHandle {
                tenant: name.clone(),
                actor: opts.actor,
                control: session.control,
                finished,
                _abandoned: Arc::new(abandoned),
                activity: Arc::new(std::sync::Mutex::new(activity)),
            },
        })
    }

    /// Waits for a command to end and returns its exit status; the first call for a command
    /// records its end (audit and activity), later ones only read it.
    pub async fn exec_finish(&self, exec: &ExecHandle) -> Result<i64, ServiceError> {
        let code = exec.control.wait().await;
        if exec.finished.swap(true, Ordering::SeqCst) {
            return Ok(code?);
        }
        drop(
            exec.activity
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        let _ = self.store.touch(&exec.tenant, self.now());
        let code = code?;
        let mut ev = self
            .event("workspace.exec_end", Outcome::Ok)
            .tenant(exec.tenant.as_str())
            .with("exit_code", code);
        if let Some(actor) = &exec.actor {
            ev.actor.clone_from(actor);
        }
        self.record(ev)?;
        Ok(code)
    }

    /// Sends a command's process a signal, inside its workspace (what it started may linger
    /// until it notices). A command already ended is not an error.
    pub async fn exec_signal(&self, exec: &ExecHandle, signal: Signal) -> Result<(), ServiceError> {
        tracing::debug!(tenant = %exec.tenant, %signal, "signal to exec");
        Ok(exec.control.signal(signal).await?)
    }

    /// Resizes the terminal of a running command.
    pub async fn exec_resize(
        &self,
        exec: &ExecHandle,
        cols: u16,
        rows: u16,
    ) -> Result<(), ServiceError> {
        Ok(exec.control.resize(cols, rows).await?)
    }

    /// Opens a TCP connection to `port` on the loopback of the tenant's workspace (waking
    /// it), as the tenant's own processes would connect: for port forwards. It counts as the
    /// tenant's activity until the caller calls [`Hostel::activity_end`].
    pub async fn forward_open(
        &self,
        name: &TenantName,
        port: u16,
        loopback: Loopback,
    ) -> Result<Connection, ServiceError> {
        let t = self.require_ready(name)?;
        self.ensure_running(&t, &crate::Quiet).await?;
        let conn = self
            .runtime
            .connect(&container_name(name), port, loopback)
            .await?;
        self.activity_begin(name);
        Ok(conn)
    }

    /// Runs a command as the tenant and collects its output (for tests and small jobs): at
    /// most [`crate::CAPTURE_LIMIT`] bytes of each stream, the rest read and dropped.
    pub async fn exec_capture(
        &self,
        name: &TenantName,
        cmd: &[&str],
    ) -> Result<(i64, Vec<u8>, Vec<u8>), ServiceError> {
        let opts = ExecOptions {
            cmd: cmd.iter().map(|c| (*c).to_owned()).collect(),
            ..ExecOptions::default()
        };
        let mut s = self.exec(name, opts, &crate::Quiet).await?;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut failed = None;
        while let Some(chunk) = s.output.next().await {
            match chunk {
                Ok(ExecOutput::Stdout(b)) => crate::files::keep(&mut out, &b, crate::CAPTURE_LIMIT),
                Ok(ExecOutput::Stderr(b)) => crate::files::keep(&mut err, &b, crate::CAPTURE_LIMIT),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if failed.is_some() {
            // The end is recorded either way; the command may run on unread.
            let _ = self.exec_signal(&s.handle, Signal::Kill).await;
        }
        let code = self.exec_finish(&s.handle).await?;
        match failed {
            Some(e) => Err(e.into()),
            None => Ok((code, out, err)),
        }
    }
}
