//! One thin function per command: flags into core types, one service call, rendering.

use crate::cli::{
    AuditCommand, BanCommand, BenchCommand, CertCommand, Cli, Command, ConfigCommand, ImageCommand,
    KeyCommand, QuotaArgs, TokenCommand,
};
use crate::error::CliError;
use crate::output::{self, Steps, json, line, table};
use crate::wiring;
use futures_util::StreamExt;
use hostel_core::lifecycle::WorkspaceState;
use hostel_core::{ByteSize, Cpus, ErrorCode, QuotaChange, SshPublicKey, TenantName};
use hostel_runtime::ExecOutput;
use hostel_service::{CreateRequest, Hostel, ServiceError};
use hostel_store::AuditFilter;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// Runs the parsed command; returns the exit code.
pub async fn run(cli: Cli) -> Result<u8, CliError> {
    match &cli.command {
        Command::Config(ConfigCommand::Example) => {
            print!("{}", hostel_core::config::EXAMPLE);
            return Ok(0);
        }
        Command::Bench(BenchCommand::Lifecycle { rounds, idle, cold }) => {
            let h = wiring::open(&cli)?;
            return crate::bench::lifecycle::lifecycle(&h, *rounds as usize, *idle, *cold)
                .await
                .map(|()| 0);
        }
        Command::Bench(BenchCommand::Api { rounds, parallel }) => {
            let h = std::sync::Arc::new(wiring::open(&cli)?);
            return crate::bench::api::api_bench(h, *rounds as usize, *parallel)
                .await
                .map(|()| 0);
        }
        Command::Bench(BenchCommand::Ssh { rounds }) => {
            let h = std::sync::Arc::new(wiring::open(&cli)?);
            return crate::bench::ssh::ssh_bench(h, *rounds as usize)
                .await
                .map(|()| 0);
        }
        _ => {}
    }
    let h = wiring::open(&cli)?;
    let json_out = cli.json;
    match cli.command {
        Command::Create {
            name,
            keys,
            quota,
            ttl,
            ephemeral,
            autostart,
            idle_stop,
        } => {
            let policy = hostel_core::policy::Policy::from_settings(
                ttl.as_deref(),
                ephemeral,
                autostart,
                idle_stop.as_deref(),
                chrono::Utc::now(),
            )
            .map_err(|e| CliError::from(ServiceError::from(e)))?;
            create(&h, &name, &keys, quota, policy).await
        }
        Command::List => list(&h, json_out).await,
        Command::Info { name } => info(&h, &name, json_out).await,
        Command::Start { name } => {
            let n = tenant(&name)?;
            let was = h.start(&n, &Steps).await?;
            line(&match was {
                WorkspaceState::Running => format!("{n} is already running"),
                WorkspaceState::Stopped => format!("{n} started"),
                WorkspaceState::Deleted => format!("{n} re-created and started (home kept)"),
            });
            Ok(0)
        }
        Command::Stop { name } => {
            let n = tenant(&name)?;
            let was = h.stop(&n).await?;
            line(&match was {
                WorkspaceState::Running => format!("{n} stopped"),
                _ => format!("{n} is not running ({was})"),
            });
            Ok(0)
        }
        Command::Exec { name, command } => exec(&h, &name, command).await,
        Command::Set { name, quota } => set(&h, &name, quota, json_out).await,
        Command::Cp { from, to } => cp(&h, &from, &to).await,
        Command::Key(k) => key(&h, k, json_out),
        Command::Delete { name } => {
            let n = tenant(&name)?;
            let was = h.delete(&n).await?;
            line(&if was == WorkspaceState::Deleted {
                format!("{n} has no workspace container; nothing to delete")
            } else {
                format!(
                    "{n}'s workspace is deleted; its home and keys stay (`hostel start {n}` \
                     re-creates it, `hostel purge {n} --yes` removes everything)"
                )
            });
            Ok(0)
        }
        Command::Purge { name, yes } => {
            let n = tenant(&name)?;
            h.purge(&n, yes).await?;
            line(&format!("{n} is purged: workspace, keys and home are gone"));
            Ok(0)
        }
        Command::Image(ImageCommand::Build { force }) => {
            let started = std::time::Instant::now();
            let out = h.image_build(force, &Steps).await?;
            if json_out {
                json(&out)?;
            } else {
                let how = if out.cached { "up to date" } else { "built" };
                line(&format!(
                    "{} {how} in {:.1}s",
                    out.reference,
                    started.elapsed().as_secs_f64()
                ));
            }
            Ok(0)
        }
        Command::Image(ImageCommand::List) => {
            let images = h.image_list().await?;
            if json_out {
                json(&images)?;
            } else {
                let rows = images
                    .iter()
                    .map(|i| {
                        vec![
                            i.reference.clone(),
                            if i.current {
                                "yes".into()
                            } else {
                                String::new()
                            },
                            ByteSize::bytes(i.size).human(),
                            i.tenants.join(","),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(&["IMAGE", "CURRENT", "SIZE", "TENANTS"], &rows);
            }
            Ok(0)
        }
        Command::Check => {
            let items = h.check().await;
            let ok = items.iter().all(|i| i.ok);
            if json_out {
                json(&items)?;
            } else {
                for i in &items {
                    line(&format!(
                        "{} {:<8} {}",
                        if i.ok { "ok  " } else { "FAIL" },
                        i.name,
                        i.message
                    ));
                    if let Some(hint) = &i.hint {
                        line(&format!("     {:<8} hint: {hint}", ""));
                    }
                }
            }
            Ok(if ok { 0 } else { 1 })
        }
        Command::Doctor { fix } => {
            let findings = h.doctor(fix).await?;
            if json_out {
                json(&findings)?;
            } else if findings.is_empty() {
                line("no drift: store, engine and homes agree");
            } else {
                for f in &findings {
                    let state = if f.fixed {
                        "fixed"
                    } else if fix {
                        "left"
                    } else {
                        "found"
                    };
                    line(&format!(
                        "{state}: {}: {} (fix: {})",
                        f.subject, f.problem, f.fix
                    ));
                }
            }
            let unfixed = findings.iter().any(|f| !f.fixed);
            Ok(if unfixed && !fix { 1 } else { 0 })
        }
        Command::Audit {
            verify: Some(AuditCommand::Verify),
            ..
        } => {
            let n = h.audit_log().verify()?;
            line(&format!(
                "audit log {} verifies: {n} records, chain intact",
                h.audit_log().path().display()
            ));
            Ok(0)
        }
        Command::Audit {
            verify: None,
            tenant: t,
            since,
            failed,
        } => {
            let filter = AuditFilter {
                tenant: t.map(|t| tenant(&t).map(|n| n.to_string())).transpose()?,
                since: since.map(|s| parse_since(&s)).transpose()?,
                failed,
            };
            let records = h.audit_log().query(&filter)?;
            if json_out {
                json(&records)?;
            } else {
                let rows = records
                    .iter()
                    .map(|r| {
                        let e = &r.event;
                        vec![
                            e.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                            e.actor.clone(),
                            e.kind.clone(),
                            e.tenant.clone().unwrap_or_default(),
                            format!("{:?}", e.outcome).to_lowercase(),
                            e.detail
                                .iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(" "),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(
                    &["TIME", "ACTOR", "KIND", "TENANT", "OUTCOME", "DETAIL"],
                    &rows,
                );
            }
            Ok(0)
        }
        Command::Serve {
            ssh_listen,
            http_listen,
        } => crate::serve::serve(h, ssh_listen, http_listen).await,
        Command::Token(t) => token(&h, t, json_out),
        Command::Cert(CertCommand::Generate { hosts }) => {
            let mut hosts = hosts;
            if hosts.is_empty() {
                hosts = vec!["localhost".into(), "127.0.0.1".into()];
                if let Ok(n) = nix::unistd::gethostname()
                    && let Ok(n) = n.into_string()
                {
                    hosts.push(n);
                }
            }
            let dir = h.paths().etc().join("tls");
            let f = hostel_web::tls::generate(&dir, &hosts)
                .map_err(|e| CliError::new(ErrorCode::Internal, e.to_string(), None))?;
            line(&format!(
                "wrote {} (CA), {} and {} (server, for {})",
                f.ca.display(),
                f.server_cert.display(),
                f.server_key.display(),
                hosts.join(", ")
            ));
            line(&format!(
                "admin client: {} and {}",
                f.client_cert.display(),
                f.client_key.display()
            ));
            line("set [http] tls = true in hostel.toml and restart `hostel serve`; then call with");
            line(&format!(
                "  curl --cacert {} --cert {} --key {} https://HOST:PORT/api/tenants",
                f.ca.display(),
                f.client_cert.display(),
                f.client_key.display()
            ));
            Ok(0)
        }
        Command::Status => crate::serve::status(&h, json_out),
        Command::SshConfig { name, host, port } => {
            let n = tenant(&name)?;
            h.store().require(&n)?;
            crate::serve::ssh_config(&h, &n, host, port);
            Ok(0)
        }
        Command::Ban(b) => ban(&h, b, json_out),
        Command::Config(_) | Command::Bench(_) => Ok(0),
    }
}

fn invalid(e: impl std::fmt::Display, hint: &str) -> CliError {
    CliError::new(
        ErrorCode::InvalidInput,
        e.to_string(),
        Some(hint.to_owned()),
    )
}

fn tenant(s: &str) -> Result<TenantName, CliError> {
    s.parse::<TenantName>()
        .map_err(|e| CliError::from(ServiceError::from(e)))
}

fn read_keys(files: &[PathBuf]) -> Result<Vec<SshPublicKey>, CliError> {
    let mut keys = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| {
            invalid(
                format!(
                    "key file {:?}: cannot read it ({e})",
                    f.display().to_string()
                ),
                "pass the path of an OpenSSH public key file, e.g. ~/.ssh/id_ed25519.pub",
            )
        })?;
        keys.extend(
            SshPublicKey::parse_file(&f.display().to_string(), &text)
                .map_err(|e| CliError::from(ServiceError::from(e)))?,
        );
    }
    Ok(keys)
}

struct Parsed {
    change: QuotaChange,
    image: Option<String>,
}

fn parse_quota(q: QuotaArgs) -> Result<Parsed, CliError> {
    let size = |s: Option<String>| {
        s.map(|s| s.parse::<ByteSize>())
            .transpose()
            .map_err(|e| CliError::from(ServiceError::from(e)))
    };
    let cpus = q
        .cpus
        .map(|c| c.parse::<Cpus>())
        .transpose()
        .map_err(|e| CliError::from(ServiceError::from(e)))?;
    let pids = q
        .pids
        .map(|p| {
            p.parse::<u32>()
                .map_err(|_| invalid(format!("pids {p:?}: not a whole number"), "e.g. --pids 512"))
        })
        .transpose()?;
    Ok(Parsed {
        change: QuotaChange {
            cpus,
            memory: size(q.memory)?,
            disk: size(q.disk)?,
            pids,
        },
        image: q.image,
    })
}

async fn create(
    h: &Hostel,
    name: &str,
    keys: &[PathBuf],
    q: QuotaArgs,
    policy: hostel_core::policy::Policy,
) -> Result<u8, CliError> {
    let name = tenant(name)?;
    if keys.is_empty() {
        return Err(ServiceError::NoKeys {
            tenant: name.to_string(),
        }
        .into());
    }
    let keys = read_keys(keys)?;
    let p = parse_quota(q)?;
    line(&format!("creating tenant {name}"));
    let info = h
        .create(
            CreateRequest {
                name: name.clone(),
                keys,
                cpus: p.change.cpus,
                memory: p.change.memory,
                disk: p.change.disk,
                pids: p.change.pids,
                image: p.image,
                policy,
            },
            &Steps,
        )
        .await?;
    let q = info.summary.quota;
    line(&format!(
        "tenant {name} is ready: workspace {} running {}, {} CPUs, {} memory, {} disk, {} pids",
        info.container, info.summary.image, q.cpus, q.memory, q.disk, q.pids
    ));
    line(&format!(
        "run a command:  hostel exec {name} -- bash -lc 'echo hello from $(hostname)'"
    ));
    line(&format!("see it:         hostel info {name}"));
    Ok(0)
}

async fn list(h: &Hostel, json_out: bool) -> Result<u8, CliError> {
    let tenants = h.list().await?;
    if json_out {
        json(&tenants)?;
        return Ok(0);
    }
    let rows = tenants
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                if t.status.is_ready() {
                    t.state.to_string()
                } else {
                    t.status.to_string()
                },
                t.quota.cpus.to_string(),
                t.quota.memory.to_string(),
                t.quota.disk.to_string(),
                t.quota.pids.to_string(),
                t.image.clone(),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &["NAME", "STATE", "CPUS", "MEMORY", "DISK", "PIDS", "IMAGE"],
        &rows,
    );
    Ok(0)
}

fn duration(secs: i64) -> String {
    let (d, h, m, s) = (
        secs / 86400,
        secs % 86400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

async fn info(h: &Hostel, name: &str, json_out: bool) -> Result<u8, CliError> {
    let i = h.info(&tenant(name)?).await?;
    if json_out {
        json(&i)?;
        return Ok(0);
    }
    let q = i.summary.quota;
    let mut state = i.summary.state.to_string();
    if let Some(up) = i.uptime_secs {
        state.push_str(&format!(", up {}", duration(up)));
    }
    if i.stale {
        state.push_str(", older image or settings: stop and start to move to the new ones");
    }
    let rows: Vec<(&str, String)> = vec![
        ("name", i.summary.name.clone()),
        ("status", i.summary.status.to_string()),
        ("state", state),
        ("image", i.summary.image.clone()),
        ("container", i.container.clone()),
        ("home", i.home.clone()),
        (
            "cpu",
            match &i.usage {
                Some(u) => format!("{:.1}s used, limit {} CPUs", u.cpu_seconds, q.cpus),
                None => format!("limit {} CPUs", q.cpus),
            },
        ),
        (
            "memory",
            match &i.usage {
                Some(u) if u.oom_kills > 0 => format!(
                    "{} of {}; {} process(es) OOM-killed for going over the limit",
                    u.memory_used.human(),
                    q.memory,
                    u.oom_kills
                ),
                Some(u) => format!("{} of {}", u.memory_used.human(), q.memory),
                None => format!("limit {}", q.memory),
            },
        ),
        (
            "disk",
            match i.disk_used {
                Some(d) => format!("{} of {}", d.human(), q.disk),
                None => format!("limit {}", q.disk),
            },
        ),
        (
            "pids",
            match &i.usage {
                Some(u) => format!("{} of {}", u.pids, q.pids),
                None => format!("limit {}", q.pids),
            },
        ),
        ("keys", i.keys.to_string()),
        ("lifecycle", {
            let p = &i.policy;
            let mut parts = Vec::new();
            if let Some(t) = p.expires_at {
                let what = if p.ephemeral { "purged" } else { "deleted" };
                parts.push(format!("{what} at {}", t.format("%Y-%m-%d %H:%M:%S UTC")));
            }
            parts.push(match p.idle_stop_secs {
                Some(0) => "never stopped when idle".to_owned(),
                Some(s) => format!("stopped after {s}s idle"),
                None => format!(
                    "stopped after {}s idle (default)",
                    h.config().lifecycle.idle_stop_secs
                ),
            });
            if p.autostart {
                parts.push("autostart".to_owned());
            }
            parts.join(", ")
        }),
        ("created", i.created_at.clone()),
    ];
    for (k, v) in rows {
        line(&format!("{k:<10} {v}"));
    }
    Ok(0)
}

async fn exec(h: &Hostel, name: &str, command: Vec<String>) -> Result<u8, CliError> {
    let n = tenant(name)?;
    let attach_stdin = !std::io::stdin().is_terminal();
    let opts = hostel_service::ExecOptions {
        cmd: command,
        stdin: attach_stdin,
        ..hostel_service::ExecOptions::default()
    };
    let mut session = h.exec(&n, opts, &Steps).await?;
    let mut input = session.input;
    let feeder = attach_stdin.then(|| {
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let _ = tokio::io::copy(&mut stdin, &mut input).await;
            let _ = input.shutdown().await;
        })
    });
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    while let Some(chunk) = session.output.next().await {
        match chunk.map_err(|e| CliError::from(ServiceError::from(e)))? {
            ExecOutput::Stdout(b) => {
                if stdout.write_all(&b).and_then(|()| stdout.flush()).is_err() {
                    return Ok(0);
                }
            }
            ExecOutput::Stderr(b) => {
                let _ = stderr.write_all(&b);
                let _ = stderr.flush();
            }
        }
    }
    if let Some(f) = feeder {
        f.abort();
    }
    let code = h.exec_finish(&n, &session.id, None).await?;
    Ok(u8::try_from(code.clamp(0, 255)).unwrap_or(1))
}

/// `NAME:PATH` as a tenant and a home path; anything else is a local path.
fn remote(spec: &str) -> Option<(&str, &str)> {
    let (name, path) = spec.split_once(':')?;
    (!name.is_empty() && !name.contains('/')).then_some((name, path))
}

async fn cp(h: &Hostel, from: &str, to: &str) -> Result<u8, CliError> {
    let usage = "copy with `hostel cp FILE NAME:PATH` or `hostel cp NAME:PATH FILE`";
    match (remote(from), remote(to)) {
        (None, Some((name, path))) => {
            let bytes = std::fs::read(from).map_err(|e| invalid(format!("{from}: {e}"), usage))?;
            let n = bytes.len();
            h.file_put(&tenant(name)?, path, bytes).await?;
            line(&format!(
                "{from} -> {name}:{path} ({})",
                ByteSize::bytes(n as u64).human()
            ));
        }
        (Some((name, path)), None) => {
            let (bytes, folder) = match h.file_get(&tenant(name)?, path).await? {
                hostel_service::Download::File(b) => (b, false),
                hostel_service::Download::Folder(b) => (b, true),
            };
            std::fs::write(to, &bytes).map_err(|e| invalid(format!("{to}: {e}"), usage))?;
            let what = if folder { "folder, as a tar" } else { "file" };
            line(&format!(
                "{name}:{path} -> {to} ({what}, {})",
                ByteSize::bytes(bytes.len() as u64).human()
            ));
        }
        _ => {
            return Err(invalid(
                "one side must be NAME:PATH and the other a local file",
                usage,
            ));
        }
    }
    Ok(0)
}

async fn set(h: &Hostel, name: &str, q: QuotaArgs, json_out: bool) -> Result<u8, CliError> {
    let n = tenant(name)?;
    let p = parse_quota(q)?;
    let out = h.set(&n, p.change, p.image.as_deref()).await?;
    if json_out {
        json(&out)?;
        return Ok(0);
    }
    if out.is_empty() {
        line(&format!("{n}: nothing changed (values already in force)"));
    }
    for o in out {
        line(&format!(
            "{n}: {} {} -> {}, applied {}",
            o.field, o.from, o.to, o.applied
        ));
    }
    Ok(0)
}

fn key(h: &Hostel, k: KeyCommand, json_out: bool) -> Result<u8, CliError> {
    match k {
        KeyCommand::Add { name, keys } => {
            let n = tenant(&name)?;
            let keys = read_keys(&keys)?;
            h.key_add(&n, &keys)?;
            for k in &keys {
                line(&format!("{n}: added {} {}", k.algorithm(), k.fingerprint()));
            }
        }
        KeyCommand::Remove { name, fingerprint } => {
            let n = tenant(&name)?;
            h.key_remove(&n, &fingerprint)?;
            line(&format!("{n}: removed {fingerprint}"));
        }
        KeyCommand::List { name } => {
            let keys = h.key_list(&tenant(&name)?)?;
            if json_out {
                json(&keys)?;
            } else {
                let rows = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.key.fingerprint.clone(),
                            k.key.algorithm.clone(),
                            k.key.comment.clone(),
                            k.added_at.format("%Y-%m-%d %H:%M").to_string(),
                        ]
                    })
                    .collect::<Vec<_>>();
                output::table(&["FINGERPRINT", "TYPE", "COMMENT", "ADDED"], &rows);
            }
        }
    }
    Ok(0)
}

fn token(h: &Hostel, t: TokenCommand, json_out: bool) -> Result<u8, CliError> {
    match t {
        TokenCommand::Create { name, role } => {
            let role: hostel_core::Role = role
                .parse()
                .map_err(|e| invalid(e, "use --role admin or --role viewer"))?;
            let secret = h.token_create(&name, role)?;
            if json_out {
                json(&serde_json::json!({ "name": name, "role": role, "token": secret }))?;
            } else {
                line(&secret);
                eprintln!("  - token {name:?} ({role}); shown once: store it now");
            }
        }
        TokenCommand::List => {
            let tokens = h.token_list()?;
            if json_out {
                json(&tokens)?;
            } else {
                let rows = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.role.to_string(),
                            t.created_at.format("%Y-%m-%d %H:%M").to_string(),
                            t.revoked_at
                                .map(|r| format!("revoked {}", r.format("%Y-%m-%d %H:%M")))
                                .unwrap_or_else(|| "live".into()),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(&["NAME", "ROLE", "CREATED", "STATE"], &rows);
            }
        }
        TokenCommand::Revoke { name } => {
            h.token_revoke(&name)?;
            line(&format!("token {name:?} revoked"));
        }
    }
    Ok(0)
}

fn ban(h: &Hostel, b: BanCommand, json_out: bool) -> Result<u8, CliError> {
    let ip = |a: &str| {
        a.parse::<std::net::IpAddr>().map_err(|_| {
            invalid(
                format!("address {a:?}: not an IPv4 or IPv6 address"),
                "e.g. 203.0.113.7 or 2001:db8::7",
            )
        })
    };
    match b {
        BanCommand::List => {
            let bans = h.bans()?;
            if json_out {
                json(&bans)?;
            } else {
                let rows = bans
                    .iter()
                    .map(|b| {
                        vec![
                            b.address.clone(),
                            b.expires_at
                                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                                .unwrap_or_else(|| "until removed".into()),
                            b.reason.clone(),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(&["ADDRESS", "UNTIL", "REASON"], &rows);
            }
        }
        BanCommand::Add {
            address,
            duration,
            reason,
        } => {
            let addr = ip(&address)?;
            let d = duration.as_deref().map(parse_duration).transpose()?;
            let ban = h.ban(addr, &reason, d, None)?;
            line(&match ban.expires_at {
                Some(t) => format!("{addr} banned until {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
                None => format!("{addr} banned until removed"),
            });
        }
        BanCommand::Remove { address } => {
            let addr = ip(&address)?;
            h.unban(addr)?;
            line(&format!("{addr} is no longer banned"));
        }
    }
    Ok(0)
}

/// A duration: `90s`, `30m`, `1h`, `7d`.
fn parse_duration(s: &str) -> Result<chrono::Duration, CliError> {
    hostel_core::policy::parse_duration(s).map_err(|e| invalid(e, "e.g. 90s, 30m, 1h or 7d"))
}

/// `--since`: an RFC 3339 time, or a duration back from now (`90s`, `30m`, `1h`, `7d`).
fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>, CliError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    parse_duration(s)
        .map(|d| chrono::Utc::now() - d)
        .map_err(|_| {
            invalid(
                format!("since {s:?}: not a time or duration"),
                "e.g. --since 1h or --since 2026-11-23T10:00:00Z",
            )
        })
}
