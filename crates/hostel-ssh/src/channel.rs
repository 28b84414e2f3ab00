//! One task per session channel. It receives the channel's requests and data in the order the
//! client sent them, starts one exec in the workspace on the first shell, exec or subsystem
//! request, and pumps bytes both ways until the command ends; then it sends the exit status,
//! EOF and close. A second start request on the same channel is ignored, as OpenSSH does.

use crate::handler::SessionSlot;
use chrono::Utc;
use futures_util::StreamExt;
use hostel_core::Signal;
use hostel_core::config::SshConfig;
use hostel_core::lifecycle::WorkspaceState;
use hostel_core::{AuditEvent, Outcome, TenantName};
use hostel_runtime::{ExecOutput, Loopback};
use hostel_service::{Exec, ExecHandle, ExecOptions, Hostel, Quiet};
use russh::Sig;
use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// What a channel task needs.
#[derive(Debug)]
pub struct ChannelContext {
    pub hostel: Arc<Hostel>,
    pub config: Arc<SshConfig>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    pub tenant: TenantName,
    pub peer: String,
    pub _slot: SessionSlot,
}

/// The terminal a client asked for.
#[derive(Debug, Clone)]
struct Pty {
    term: String,
    cols: u16,
    rows: u16,
}

/// The path of the SFTP server in the workspace image.
const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

fn clamp(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

/// Runs the channel to its end.
pub async fn run(ctx: ChannelContext, channel: Channel<Msg>) {
    let (mut rx, tx) = channel.split();
    let mut tx = Some(tx);
    let mut pty: Option<Pty> = None;
    let mut env: Vec<String> = Vec::new();
    let mut stdin: Option<Pin<Box<dyn AsyncWrite + Send>>> = None;
    let mut running: Option<ExecHandle> = None;
    let actor = format!("ssh:{}", ctx.tenant);
    while let Some(msg) = rx.wait().await {
        match msg {
            ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                ..
            } => {
                pty = Some(Pty {
                    term: hostel_core::session::pty_term(&term).to_owned(),
                    cols: clamp(col_width),
                    rows: clamp(row_height),
                });
            }
            ChannelMsg::SetEnv {
                variable_name,
                variable_value,
                ..
            } => {
                // Checked and bounded: a client sends as many as it likes.
                env.extend(hostel_core::session::env_entry(
                    &ctx.config,
                    env.len(),
                    &variable_name,
                    &variable_value,
                ));
            }
            // The handler refused other subsystems; their request still reaches this task.
            ChannelMsg::RequestSubsystem { ref name, .. } if name != "sftp" => {}
            ChannelMsg::RequestShell { .. }
            | ChannelMsg::Exec { .. }
            | ChannelMsg::RequestSubsystem { .. } => {
                let Some(tx) = tx.take() else { continue };
                let (cmd, what) = match &msg {
                    ChannelMsg::Exec { command, .. } => {
                        let c = String::from_utf8_lossy(command).into_owned();
                        let shown: String = c.chars().take(200).collect();
                        (vec!["/bin/bash".to_owned(), "-c".to_owned(), c], shown)
                    }
                    ChannelMsg::RequestSubsystem { name, .. } => {
                        (vec![SFTP_SERVER.to_owned()], format!("subsystem {name}"))
                    }
                    _ => (
                        vec!["/bin/bash".to_owned(), "-l".to_owned()],
                        "shell".to_owned(),
                    ),
                };
                let mut env = env.clone();
                if let Some(p) = &pty {
                    env.push(format!("TERM={}", p.term));
                }
                let opts = ExecOptions {
                    cmd,
                    stdin: true,
                    tty: pty.is_some(),
                    env,
                    cwd: None,
                    actor: Some(format!("{actor}@{}", ctx.peer)),
                };
                match ctx.hostel.exec(&ctx.tenant, opts, &Quiet).await {
                    Ok(Exec {
                        output,
                        input,
                        handle,
                    }) => {
                        if let Some(p) = &pty {
                            let _ = ctx.hostel.exec_resize(&handle, p.cols, p.rows).await;
                        }
                        running = Some(handle.clone());
                        stdin = Some(input);
                        let session = Session {
                            shutdown: ctx.shutdown.clone(),
                            hostel: ctx.hostel.clone(),
                            tenant: ctx.tenant.clone(),
                            actor: format!("{actor}@{}", ctx.peer),
                            what,
                            handle,
                        };
                        tokio::spawn(pump(session, output, tx));
                    }
                    Err(e) => {
                        let mut text = format!("hostel: error: {e}\r\n");
                        if let Some(h) = e.hint() {
                            text.push_str(&format!("hostel: hint: {h}\r\n"));
                        }
                        let _ = tx.extended_data_bytes(1, text.into_bytes()).await;
                        let _ = tx.exit_status(u32::from(e.code().exit_code())).await;
                        let _ = tx.eof().await;
                        let _ = tx.close().await;
                    }
                }
            }
            ChannelMsg::Data { data } => {
                if let Some(w) = stdin.as_mut()
                    && w.write_all(&data).await.is_err()
                {
                    stdin = None;
                }
            }
            ChannelMsg::Eof => {
                if let Some(mut w) = stdin.take() {
                    let _ = w.shutdown().await;
                }
            }
            ChannelMsg::WindowChange {
                col_width,
                row_height,
                ..
            } => {
                if let Some(h) = &running {
                    let _ = ctx
                        .hostel
                        .exec_resize(h, clamp(col_width), clamp(row_height))
                        .await;
                }
            }
            ChannelMsg::Signal { signal } => {
                if let (Some(h), Some(signal)) = (&running, signal_of(&signal)) {
                    let _ = ctx.hostel.exec_signal(h, signal).await;
                }
            }
            ChannelMsg::Close => break,
            _ => {}
        }
    }
}

/// What the output pump of one session knows.
struct Session {
    shutdown: tokio::sync::watch::Receiver<bool>,
    hostel: Arc<Hostel>,
    tenant: TenantName,
    actor: String,
    what: String,
    handle: ExecHandle,
}

/// Copies the command's output to the channel, then reports its end.
async fn pump(
    session: Session,
    mut output: futures_util::stream::BoxStream<
        'static,
        Result<ExecOutput, hostel_runtime::RuntimeError>,
    >,
    tx: russh::ChannelWriteHalf<Msg>,
) {
    let Session {
        mut shutdown,
        hostel,
        tenant,
        actor,
        what,
        handle,
    } = session;
    // The session counts as active until its end has gone to the client, not only until the
    // command ended: a draining daemon waits for this.
    hostel.activity_begin(&tenant);
    let (mut out_bytes, mut err_bytes) = (0usize, 0usize);
    let mut told = false;
    loop {
        let chunk = tokio::select! {
            c = output.next() => c,
            changed = shutdown.changed(), if !told => {
                let stopping = changed.is_ok() && *shutdown.borrow();
                // A dropped sender (the daemon is gone) or a shutdown: say it once.
                told = stopping || changed.is_err();
                if stopping {
                    let note = "\r\nhostel: the gateway is shutting down; this session ends soon \
                                (your workspace keeps running; reconnect in a moment)\r\n";
                    let _ = tx.extended_data_bytes(1, note.as_bytes().to_vec()).await;
                }
                continue;
            }
        };
        let Some(chunk) = chunk else { break };
        let sent = match chunk {
            Ok(ExecOutput::Stdout(b)) => {
                out_bytes += b.len();
                tx.data_bytes(b).await
            }
            Ok(ExecOutput::Stderr(b)) => {
                err_bytes += b.len();
                tx.extended_data_bytes(1, b).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "exec output failed");
                break;
            }
        };
        if sent.is_err() {
            break;
        }
    }
    let code = match hostel.exec_finish(&handle).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the exit status");
            255
        }
    };
    // A session cut by `hostel stop` or `delete` says so, rather than just ending. Its command
    // dies by a signal as the workspace's PID namespace goes, a moment before the engine reports
    // the workspace stopped, so a killed command waits up to half a second for the verdict.
    if code > 128 && workspace_went_away(&hostel, &tenant).await {
        let note = "\r\nhostel: the workspace was stopped; this session ended with it\r\n";
        let _ = tx.extended_data_bytes(1, note.as_bytes().to_vec()).await;
    }
    // On the record before the client learns the session ended.
    let ev = AuditEvent::new(Utc::now(), "ssh.session", &actor, Outcome::Ok)
        .tenant(tenant.as_str())
        .with("what", &what)
        .with("exit_code", code)
        .with("bytes_out", out_bytes)
        .with("bytes_err", err_bytes);
    if let Err(e) = hostel.record(ev) {
        tracing::error!(error = %e, "cannot write the audit log");
    }
    let _ = tx.exit_status(u32::try_from(code).unwrap_or(255)).await;
    let _ = tx.eof().await;
    let _ = tx.close().await;
    hostel.activity_end(&tenant);
}

/// The signal a client's `signal` request names, if a session may send it.
fn signal_of(sig: &Sig) -> Option<Signal> {
    match sig {
        Sig::ALRM => Some(Signal::Alrm),
        Sig::HUP => Some(Signal::Hup),
        Sig::INT => Some(Signal::Int),
        Sig::KILL => Some(Signal::Kill),
        Sig::PIPE => Some(Signal::Pipe),
        Sig::QUIT => Some(Signal::Quit),
        Sig::TERM => Some(Signal::Term),
        Sig::USR1 => Some(Signal::Usr1),
        Sig::Custom(name) => Signal::from_name(name),
        Sig::ABRT | Sig::FPE | Sig::ILL | Sig::SEGV => None,
    }
}

/// Whether the workspace stopped (or is stopping), polled briefly.
async fn workspace_went_away(hostel: &Hostel, tenant: &TenantName) -> bool {
    for _ in 0..10 {
        match hostel.workspace_state(tenant).await {
            Ok(WorkspaceState::Running) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
    false
}

/// Runs a direct-tcpip channel to `port` on the workspace's loopback: the connection is made
/// in the tenant's own network namespace, so `-L` reaches exactly what the tenant's own
/// processes reach there, and nothing on the host or in another workspace. A client's EOF is a
/// half-close towards the server. The end is audited with the bytes moved each way.
pub async fn forward(ctx: ChannelContext, channel: Channel<Msg>, port: u16, loopback: Loopback) {
    let actor = format!("ssh:{}@{}", ctx.tenant, ctx.peer);
    let mut conn = match ctx.hostel.forward_open(&ctx.tenant, port, loopback).await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(error = %e, "cannot open a port forward");
            let ev = AuditEvent::new(Utc::now(), "ssh.forward_end", &actor, Outcome::Failed)
                .tenant(ctx.tenant.as_str())
                .with("port", port)
                .with("reason", e.to_string());
            if let Err(e) = ctx.hostel.record(ev) {
                tracing::error!(error = %e, "cannot write the audit log");
            }
            let _ = channel.close().await;
            return;
        }
    };
    let mut stream = channel.into_stream();
    let moved = tokio::io::copy_bidirectional(&mut stream, &mut conn).await;
    ctx.hostel.activity_end(&ctx.tenant);
    let (up, down) = moved.as_ref().map_or((0, 0), |m| *m);
    let ev = AuditEvent::new(Utc::now(), "ssh.forward_end", &actor, Outcome::Ok)
        .tenant(ctx.tenant.as_str())
        .with("port", port)
        .with("bytes_up", up)
        .with("bytes_down", down);
    if let Err(e) = ctx.hostel.record(ev) {
        tracing::error!(error = %e, "cannot write the audit log");
    }
    if let Err(e) = moved {
        tracing::debug!(error = %e, "port forward ended");
    }
}
