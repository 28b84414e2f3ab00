//! One thin function per command: flags into checked values, one call to the backend (this
//! process or a daemon), rendering.

use crate::backend::{self, Backend};
use crate::cli::{
    AuditCommand, BanCommand, BenchCommand, CertCommand, Cli, Command, ConfigCommand,
    FirewallCommand, ImageCommand, KeyCommand, PortCommand, SelftestCommand, ShareCommand,
    SnapshotCommand, TokenCommand,
};
use crate::error::CliError;
use crate::output::{self, json, line};
use crate::wiring;
use hostel_api::{AuditQuery, ImportQuery, NewBan, NewTenant, NewToken, TenantChange};
use hostel_core::{ByteSize, ErrorCode, SshPublicKey, TenantName};
use hostel_service::ServiceError;
use std::path::PathBuf;

/// A command that works on this host's files and so cannot go to `--server`.
fn here_only(cli: &Cli, what: &str) -> Result<(), CliError> {
    if cli.remote.server.is_none() {
        return Ok(());
    }
    Err(CliError::new(
        ErrorCode::InvalidInput,
        format!("`hostel {what}` runs only on the server itself, not with --server"),
        Some(format!(
            "run it on the server (or unset HOSTEL_SERVER): sudo hostel {what}"
        )),
    ))
}

/// Runs the parsed command; returns the exit code.
pub async fn run(cli: Cli) -> Result<u8, CliError> {
    match &cli.command {
        Command::Config(ConfigCommand::Example) => {
            print!("{}", hostel_core::config::EXAMPLE);
            return Ok(0);
        }
        Command::Setup => {
            here_only(&cli, "setup")?;
            wiring::require_root()?;
            return setup(&cli).await;
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "hostel", &mut script);
            print_bytes(&script);
            return Ok(0);
        }
        Command::Man { dir } => return man_pages(dir.as_deref()),
        Command::Config(ConfigCommand::Show { key }) => {
            let loaded = crate::settings::load(&wiring::layers(&cli)?)?;
            let settings = loaded.settings(key.as_deref())?;
            if cli.json {
                json(&settings)?;
            } else {
                output::settings(&settings);
            }
            return Ok(0);
        }
        Command::Bench(b) => {
            here_only(&cli, "bench")?;
            let h = std::sync::Arc::new(wiring::open(&cli)?);
            return match *b {
                BenchCommand::Lifecycle {
                    rounds,
                    idle,
                    cold,
                    move_mib,
                } => {
                    crate::bench::lifecycle::lifecycle(&h, rounds as usize, idle, cold, move_mib)
                        .await
                }
                BenchCommand::Api { rounds, parallel } => {
                    crate::bench::api::api_bench(h, rounds as usize, parallel).await
                }
                BenchCommand::Ssh { rounds } => {
                    crate::bench::ssh::ssh_bench(h, rounds as usize).await
                }
                BenchCommand::Io {
                    samples,
                    ref disk_io,
                } => {
                    let limit = disk_io
                        .parse::<hostel_core::DiskIo>()
                        .map_err(|e| CliError::from(ServiceError::from(e)))?;
                    crate::bench::io::io_bench(h, samples, limit, cli.json).await
                }
                BenchCommand::Chaos { kills, clients } => {
                    let opts = crate::bench::chaos::ChaosOptions {
                        kills,
                        clients: usize::try_from(clients).unwrap_or(1),
                        json: cli.json,
                        config: cli.config.clone(),
                    };
                    return crate::bench::chaos::chaos(h, opts).await;
                }
                BenchCommand::Soak {
                    sessions,
                    minutes,
                    idle,
                } => {
                    let opts = crate::bench::soak::SoakOptions {
                        sessions: usize::try_from(sessions).unwrap_or(4),
                        minutes,
                        idle: usize::try_from(idle).unwrap_or(0),
                        json: cli.json,
                        config: cli.config.clone(),
                    };
                    return crate::bench::soak::soak(h, opts).await;
                }
                BenchCommand::Restart {
                    sessions,
                    ref engine_pid_file,
                    ref start,
                } => {
                    let opts = crate::bench::restart::RestartOptions {
                        sessions: usize::try_from(sessions).unwrap_or(1),
                        engine_pid_file: engine_pid_file.clone(),
                        start: start.clone(),
                        json: cli.json,
                        config: cli.config.clone(),
                    };
                    return crate::bench::restart::restart(h, opts).await;
                }
                BenchCommand::Dashboard { tenants, rounds } => {
                    let opts = crate::bench::dashboard::DashboardOptions {
                        tenants: usize::try_from(tenants).unwrap_or(200),
                        rounds: rounds as usize,
                        browser: crate::bench::dashboard::browser_script(),
                    };
                    crate::bench::dashboard::dashboard(h, opts).await
                }
            }
            .map(|()| 0);
        }
        Command::Serve { .. } => {
            here_only(&cli, "serve")?;
            let h = wiring::open(&cli)?;
            return crate::serve::serve(h).await;
        }
        Command::Cert(CertCommand::Generate { hosts }) => {
            here_only(&cli, "cert generate")?;
            wiring::require_root()?;
            return cert_generate(&cli, hosts.clone());
        }
        Command::Selftest(SelftestCommand::Security { metadata, image }) => {
            here_only(&cli, "selftest security")?;
            let metadata: std::net::SocketAddrV4 = metadata.parse().map_err(|_| {
                invalid(
                    format!("metadata {metadata:?}: not an IPv4 address and port"),
                    "e.g. --metadata 169.254.169.254:80",
                )
            })?;
            let h = std::sync::Arc::new(wiring::open(&cli)?);
            return crate::selftest::security(h, metadata, image.clone(), cli.json).await;
        }
        Command::Firewall(f) => {
            here_only(&cli, "firewall")?;
            let h = wiring::open(&cli)?;
            return firewall(&h, f).await;
        }
        Command::Status => {
            if cli.remote.server.is_some() {
                let b = backend::connect(&cli)?;
                return crate::serve::status(&cli.root, Some(&b), cli.json).await;
            }
            return crate::serve::status(&cli.root, None, cli.json).await;
        }
        _ => {}
    }
    let b = backend::connect(&cli)?;
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
            egress,
        } => {
            let name = tenant(&name)?;
            if keys.is_empty() {
                return Err(ServiceError::NoKeys {
                    tenant: name.to_string(),
                }
                .into());
            }
            let keys = read_keys(&keys)?;
            let body = NewTenant {
                name: name.to_string(),
                keys: keys.iter().map(|k| k.to_openssh().to_owned()).collect(),
                cpus: quota.cpus,
                memory: quota.memory,
                disk: quota.disk,
                pids: parse_pids(quota.pids)?,
                gpus: quota.gpus,
                disk_io: quota.disk_io,
                image: quota.image,
                ttl,
                ephemeral,
                autostart,
                idle_stop,
                egress,
            };
            line(&format!("creating tenant {name}"));
            let d = {
                let steps = output::Steps::new(json_out);
                b.create(body, &steps).await?
            };
            line(&format!(
                "tenant {name} is ready: workspace {} running {}, {} CPUs, {} memory, {} disk, {} pids",
                d.container,
                d.tenant.image,
                d.tenant.cpus,
                d.tenant.memory,
                d.tenant.disk,
                d.tenant.pids
            ));
            line(&format!(
                "run a command:  hostel exec {name} -- bash -lc 'echo hello from $(hostname)'"
            ));
            line(&format!("see it:         hostel info {name}"));
            Ok(0)
        }
        Command::List => list(&b, json_out).await,
        Command::Info { name } => info(&b, &tenant(&name)?, json_out).await,
        Command::Start { name } => {
            let n = tenant(&name)?;
            let t = b.start(&n, &output::Steps::new(json_out)).await?;
            line(&match t.previous_state.as_str() {
                "running" => format!("{n} is already running"),
                "stopped" => format!("{n} started"),
                _ => format!("{n} re-created and started (home kept)"),
            });
            Ok(0)
        }
        Command::Stop { name } => {
            let n = tenant(&name)?;
            let t = b.stop(&n).await?;
            line(&if t.previous_state == "running" {
                format!("{n} stopped")
            } else {
                format!("{n} is not running ({})", t.previous_state)
            });
            Ok(0)
        }
        Command::Exec { name, command } => {
            let code = b.exec(&tenant(&name)?, command).await?;
            Ok(u8::try_from(code.clamp(0, 255)).unwrap_or(1))
        }
        Command::Set {
            name,
            quota,
            ttl,
            ephemeral,
            no_ephemeral,
            autostart,
            no_autostart,
            idle_stop,
            egress,
        } => {
            let flag = |on: bool, off: bool| (on || off).then_some(on);
            let change = TenantChange {
                cpus: quota.cpus,
                memory: quota.memory,
                disk: quota.disk,
                pids: parse_pids(quota.pids)?,
                gpus: quota.gpus,
                disk_io: quota.disk_io,
                image: quota.image,
                ttl,
                ephemeral: flag(ephemeral, no_ephemeral),
                autostart: flag(autostart, no_autostart),
                idle_stop,
                egress,
            };
            set(&b, &tenant(&name)?, change, json_out).await
        }
        Command::Cp { from, to } => cp(&b, &from, &to, json_out).await,
        Command::Export { name, file } => export(&b, &tenant(&name)?, &file, json_out).await,
        Command::Import {
            file,
            name,
            disk,
            image,
        } => import(&b, &file, ImportQuery { name, disk, image }, json_out).await,
        Command::LoginLink { name, ttl } => {
            let n = tenant(&name)?;
            let link = b
                .login_link(&n, hostel_api::NewLoginLink { ttl: Some(ttl) })
                .await?;
            if json_out {
                json(&link)?;
            } else {
                line(&format!("{}{}", b.web_base(), link.path));
                eprintln!(
                    "  - signs {n} in once, until {}; shown once",
                    link.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
                );
            }
            Ok(0)
        }
        Command::Passwd { name } => {
            let n = tenant(&name)?;
            let password = read_password(&n)?;
            hostel_service::check_password(&password)?;
            b.set_password(&n, password).await?;
            line(&format!(
                "{n}: web password set; its browser sessions are signed out"
            ));
            Ok(0)
        }
        Command::Key(k) => key(&b, k, json_out).await,
        Command::Port(p) => port(&b, p, json_out).await,
        Command::Snapshot(c) => snapshot(&b, c, json_out).await,
        Command::Share(c) => share(&b, c, json_out).await,
        Command::Delete { name } => {
            let n = tenant(&name)?;
            let t = b.delete(&n).await?;
            line(&if t.previous_state == "deleted" {
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
            b.purge(&n, yes).await?;
            line(&format!("{n} is purged: workspace, keys and home are gone"));
            Ok(0)
        }
        Command::Image(ImageCommand::Build { force, profile }) => {
            let started = std::time::Instant::now();
            let out = {
                let steps = output::Steps::new(json_out);
                b.image_build(profile, force, &steps).await?
            };
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
            let images = b.images().await?;
            output::list(
                json_out,
                &images,
                &["IMAGE", "CURRENT", "SIZE", "TENANTS"],
                |i| {
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
                },
            )?;
            Ok(0)
        }
        Command::Check => {
            let items = b.check().await?;
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
            let findings = b.doctor(fix).await?;
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
            let v = b.audit_verify().await?;
            line(&format!(
                "audit log {} verifies: {} records, chain intact",
                v.path, v.records
            ));
            Ok(0)
        }
        Command::Audit {
            verify: None,
            tenant: t,
            since,
            failed,
        } => {
            let query = AuditQuery {
                tenant: t.map(|t| tenant(&t).map(|n| n.to_string())).transpose()?,
                since: since.map(|s| parse_since(&s)).transpose()?,
                failed,
            };
            let records = b.audit(query).await?;
            output::list(
                json_out,
                &records,
                &["TIME", "ACTOR", "KIND", "TENANT", "OUTCOME", "DETAIL"],
                |e| {
                    vec![
                        e.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                        e.actor.clone(),
                        e.kind.clone(),
                        e.tenant.clone().unwrap_or_default(),
                        e.outcome.clone(),
                        e.detail
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(" "),
                    ]
                },
            )?;
            Ok(0)
        }
        Command::Token(t) => token(&b, t, json_out).await,
        Command::SshConfig { name, host, port } => {
            let n = tenant(&name)?;
            b.info(&n).await?;
            let daemon = b.daemon().await?;
            let server_host = match &b {
                Backend::Remote(c) if cli.remote.server.is_some() => {
                    c.base().host_str().map(str::to_owned)
                }
                _ => None,
            };
            let configured = match &b {
                Backend::Local(h) => h.config().ssh.listen.clone(),
                Backend::Remote(_) => hostel_core::config::Config::default().ssh.listen,
            };
            crate::serve::ssh_config(&n, host, port, daemon.as_ref(), server_host, &configured);
            Ok(0)
        }
        Command::Ban(ban_cmd) => ban(&b, ban_cmd, json_out).await,
        Command::Config(_)
        | Command::Completions { .. }
        | Command::Setup
        | Command::Man { .. }
        | Command::Bench(_)
        | Command::Serve { .. }
        | Command::Cert(_)
        | Command::Firewall(_)
        | Command::Selftest(_)
        | Command::Status => Ok(0),
    }
}

/// Where the Debian package puts hostel's scripts (setup, engine, supervise, down).
const LIBEXEC: &str = "/usr/lib/hostel";

/// `hostel setup`: the package's setup script, with this root and this binary.
async fn setup(cli: &Cli) -> Result<u8, CliError> {
    let script = std::path::Path::new(LIBEXEC).join("setup");
    if !script.exists() {
        return Err(CliError::new(
            ErrorCode::NotFound,
            format!(
                "{} is missing: `hostel setup` comes with the Debian package",
                script.display()
            ),
            Some(
                "install the package (apt install ./hostel_*.deb), or from a checkout run \
                 scripts/up, which builds hostel and sets the host up"
                    .into(),
            ),
        ));
    }
    let bin = std::env::current_exe().map_err(|e| {
        CliError::new(
            ErrorCode::Internal,
            format!("cannot find this binary: {e}"),
            None,
        )
    })?;
    let mut cmd = tokio::process::Command::new(&script);
    cmd.env("HOSTEL_ROOT", &cli.root).env("HOSTEL_BIN", bin);
    if let Some(config) = &cli.config {
        cmd.env("HOSTEL_CONFIG", config);
    }
    let status = cmd.status().await.map_err(|e| {
        CliError::new(
            ErrorCode::Internal,
            format!("cannot run {}: {e}", script.display()),
            Some("reinstall the package: apt install --reinstall ./hostel_*.deb".into()),
        )
    })?;
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(1))
}

/// Writes generated text to stdout; a closed pipe (`| head`) is not an error.
fn print_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ =
        std::io::Write::write_all(&mut out, bytes).and_then(|()| std::io::Write::flush(&mut out));
}

/// `hostel man`: the main page on stdout, or every command's page into `dir`.
fn man_pages(dir: Option<&std::path::Path>) -> Result<u8, CliError> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let io = |what: String, e: std::io::Error| {
        CliError::new(
            ErrorCode::InvalidInput,
            format!("cannot write {what}: {e}"),
            Some("name a folder you can write to with --dir".into()),
        )
    };
    match dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .map_err(|e| io("the man page".into(), e))?;
            print_bytes(&page);
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| io(dir.display().to_string(), e))?;
            clap_mangen::generate_to(cmd, dir).map_err(|e| io(dir.display().to_string(), e))?;
        }
    }
    Ok(0)
}

async fn firewall(h: &hostel_service::Hostel, f: &FirewallCommand) -> Result<u8, CliError> {
    let rules = h.filter_rules();
    let what = format!(
        "{} rules for tenant bridges {}+",
        h.filter_kind(),
        rules.prefix
    );
    match f {
        FirewallCommand::Status => {
            let ok = h.check_filter().await?;
            line(&if ok {
                format!("{what}: in force")
            } else {
                format!("{what}: not in force; `hostel firewall apply` installs them")
            });
            Ok(if ok { 0 } else { 1 })
        }
        FirewallCommand::Apply => {
            h.ensure_filter().await?;
            line(&format!("{what}: in force"));
            Ok(0)
        }
        FirewallCommand::Remove => {
            h.remove_filter().await?;
            line(&format!(
                "{what}: removed; workspaces reach the host until `hostel firewall apply` or \
                 `hostel serve` puts them back"
            ));
            Ok(0)
        }
    }
}

fn cert_generate(cli: &Cli, hosts: Vec<String>) -> Result<u8, CliError> {
    let mut hosts = hosts;
    if hosts.is_empty() {
        hosts = vec!["localhost".into(), "127.0.0.1".into()];
        if let Ok(n) = nix::unistd::gethostname()
            && let Ok(n) = n.into_string()
        {
            hosts.push(n);
        }
    }
    // Apps' own origins under `[http] domain` need the domain and its wildcard.
    if let Some(d) = crate::wiring::load_config(cli)?.http.domain {
        for name in [d.clone(), format!("*.{d}")] {
            if !hosts.contains(&name) {
                hosts.push(name);
            }
        }
    }
    let dir = hostel_service::Paths::new(&cli.root).etc().join("tls");
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
    line("set [http] tls = true in hostel.toml and restart `hostel serve`; then, from anywhere:");
    line(&format!(
        "  hostel --server https://HOST:PORT --ca {} --cert {} --cert-key {} list",
        f.ca.display(),
        f.client_cert.display(),
        f.client_key.display()
    ));
    Ok(0)
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

/// The new password: the first line of stdin when it is not a terminal, else typed twice.
fn read_password(n: &TenantName) -> Result<String, CliError> {
    use std::io::{BufRead, IsTerminal};
    let unreadable = |e: std::io::Error| {
        invalid(
            format!("cannot read the password: {e}"),
            "pipe it in: echo ... | hostel passwd NAME",
        )
    };
    if !std::io::stdin().is_terminal() {
        let mut first = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut first)
            .map_err(unreadable)?;
        return Ok(first.trim_end_matches(['\r', '\n']).to_owned());
    }
    let a = rpassword::prompt_password(format!("web password for {n}: ")).map_err(unreadable)?;
    let b = rpassword::prompt_password("again: ").map_err(unreadable)?;
    if a != b {
        return Err(invalid(
            "the two passwords differ",
            "type the same password twice",
        ));
    }
    Ok(a)
}

fn parse_pids(p: Option<String>) -> Result<Option<u32>, CliError> {
    p.map(|p| {
        p.parse::<u32>()
            .map_err(|_| invalid(format!("pids {p:?}: not a whole number"), "e.g. --pids 512"))
    })
    .transpose()
}

async fn list(b: &Backend, json_out: bool) -> Result<u8, CliError> {
    let tenants = b.list().await?;
    output::list(
        json_out,
        &tenants,
        &["NAME", "STATE", "CPUS", "MEMORY", "DISK", "PIDS", "IMAGE"],
        |t| {
            vec![
                t.name.clone(),
                if t.status == "ready" {
                    t.state.clone()
                } else {
                    t.status.clone()
                },
                t.cpus.clone(),
                t.memory.clone(),
                t.disk.clone(),
                t.pids.to_string(),
                t.image.clone(),
            ]
        },
    )?;
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

async fn info(b: &Backend, name: &TenantName, json_out: bool) -> Result<u8, CliError> {
    let i = b.info(name).await?;
    if json_out {
        json(&i)?;
        return Ok(0);
    }
    let t = &i.tenant;
    let mut state = t.state.clone();
    if let Some(up) = i.uptime_secs {
        state.push_str(&format!(", up {}", duration(up)));
    }
    if i.stale {
        state.push_str(", older image or settings: stop and start to move to the new ones");
    }
    let human = |b: u64| ByteSize::bytes(b).human();
    let rows: Vec<(&str, String)> = vec![
        ("name", t.name.clone()),
        ("status", t.status.clone()),
        ("state", state),
        ("image", t.image.clone()),
        ("container", i.container.clone()),
        ("home", i.home.clone()),
        (
            "cpu",
            match i.cpu_seconds {
                Some(s) => format!("{s:.1}s used, limit {} CPUs", t.cpus),
                None => format!("limit {} CPUs", t.cpus),
            },
        ),
        (
            "memory",
            match (i.memory_used_bytes, i.oom_kills) {
                (Some(m), Some(k)) if k > 0 => format!(
                    "{} of {}; {k} process(es) OOM-killed for going over the limit",
                    human(m),
                    t.memory
                ),
                (Some(m), _) => format!("{} of {}", human(m), t.memory),
                (None, _) => format!("limit {}", t.memory),
            },
        ),
        (
            "disk",
            match i.disk_used_bytes {
                Some(d) => format!("{} of {}", human(d), t.disk),
                None => format!("limit {}", t.disk),
            },
        ),
        (
            "pids",
            match i.pids_used {
                Some(p) => format!("{p} of {}", t.pids),
                None => format!("limit {}", t.pids),
            },
        ),
        ("gpus", t.gpus.clone()),
        ("disk io", t.disk_io.clone()),
        ("keys", i.keys.to_string()),
        (
            "network",
            match i.egress.as_str() {
                "none" => "its own; egress none (nothing beyond its own network)".to_owned(),
                _ => {
                    "its own; egress all (the internet, never the host or other tenants)".to_owned()
                }
            },
        ),
        ("lifecycle", {
            let mut parts = Vec::new();
            if let Some(at) = i.expires_at {
                let what = if i.ephemeral { "purged" } else { "deleted" };
                parts.push(format!("{what} at {}", at.format("%Y-%m-%d %H:%M:%S UTC")));
            }
            let default = if i.idle_stop_default {
                " (default)"
            } else {
                ""
            };
            parts.push(match i.idle_stop_secs {
                0 => format!("never stopped when idle{default}"),
                s => format!("stopped after {s}s idle{default}"),
            });
            if i.autostart {
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

/// `NAME:PATH` as a tenant and a home path; anything else is a local path.
fn remote(spec: &str) -> Option<(&str, &str)> {
    let (name, path) = spec.split_once(':')?;
    (!name.is_empty() && !name.contains('/')).then_some((name, path))
}

async fn cp(b: &Backend, from: &str, to: &str, json_out: bool) -> Result<u8, CliError> {
    let usage = "copy with `hostel cp FILE NAME:PATH` or `hostel cp NAME:PATH FILE`";
    match (remote(from), remote(to)) {
        (None, Some((name, path))) => {
            let name = tenant(name)?;
            let bytes = tokio::fs::read(from)
                .await
                .map_err(|e| invalid(format!("{from}: {e}"), usage))?;
            let n = bytes.len();
            // The upload goes in one request: a spinner with the time it takes, not a bar.
            let moving = output::Transfer::new(json_out, &format!("{from} -> {name}:{path}"));
            b.file_put(&name, path, bytes).await?;
            moving.add(n as u64);
            drop(moving);
            line(&format!(
                "{from} -> {name}:{path} ({})",
                ByteSize::bytes(n as u64).human()
            ));
        }
        (Some((name, path)), None) => {
            let name = tenant(name)?;
            let (kind, mut body) = b.file_get(&name, path).await?;
            let mut file =
                std::fs::File::create(to).map_err(|e| invalid(format!("{to}: {e}"), usage))?;
            let mut n = 0;
            let moving = output::Transfer::new(json_out, &format!("{name}:{path} -> {to}"));
            while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
                let chunk = chunk?;
                std::io::Write::write_all(&mut file, &chunk)
                    .map_err(|e| invalid(format!("{to}: {e}"), usage))?;
                n += chunk.len();
                moving.add(chunk.len() as u64);
            }
            drop(moving);
            let what = match kind {
                hostel_service::DownloadKind::Folder => "folder, as a tar",
                hostel_service::DownloadKind::File => "file",
            };
            line(&format!(
                "{name}:{path} -> {to} ({what}, {})",
                ByteSize::bytes(n as u64).human()
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

async fn export(b: &Backend, n: &TenantName, file: &str, json_out: bool) -> Result<u8, CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let usage = "write it with `hostel export NAME FILE`; FILE `-` writes to standard output";
    let to_stdout = file == "-";
    if !to_stdout && std::path::Path::new(file).exists() {
        return Err(invalid(
            format!("{file} exists; hostel export never writes over a file"),
            "remove it or pick another name",
        ));
    }
    let partial = PathBuf::from(format!("{file}.partial"));
    let mut body = b.export(n).await?;
    let mut out: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&partial)
                .map_err(|e| invalid(format!("{}: {e}", partial.display()), usage))?,
        )
    };
    let moving = output::Transfer::new(json_out, &format!("{n} -> {file}"));
    let mut written = 0u64;
    let result = async {
        while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
            let chunk = chunk?;
            out.write_all(&chunk)
                .map_err(|e| invalid(format!("{file}: {e}"), usage))?;
            written += chunk.len() as u64;
            moving.add(chunk.len() as u64);
        }
        out.flush()
            .map_err(|e| invalid(format!("{file}: {e}"), usage))
    }
    .await;
    drop(moving);
    drop(out);
    if let Err(e) = result {
        if !to_stdout {
            let _ = std::fs::remove_file(&partial);
        }
        return Err(e);
    }
    if !to_stdout {
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::rename(&partial, file))
            .map_err(|e| invalid(format!("{file}: {e}"), usage))?;
    }
    let size = ByteSize::bytes(written).human();
    if json_out && !to_stdout {
        json(&serde_json::json!({"tenant": n.as_str(), "file": file, "bytes": written}))?;
    } else if to_stdout {
        eprintln!("{n} exported to standard output ({size})");
    } else {
        line(&format!(
            "{n} -> {file} ({size}); bring it back with `hostel import {file}`"
        ));
    }
    Ok(0)
}

async fn import(
    b: &Backend,
    file: &str,
    query: ImportQuery,
    json_out: bool,
) -> Result<u8, CliError> {
    use futures_util::StreamExt;
    use tokio::io::AsyncReadExt;
    let usage = "import with `hostel import FILE [--as NAME]`; FILE `-` reads standard input";
    let reader: Box<dyn tokio::io::AsyncRead + Send + Unpin> = if file == "-" {
        Box::new(tokio::io::stdin())
    } else {
        Box::new(
            tokio::fs::File::open(file)
                .await
                .map_err(|e| invalid(format!("{file}: {e}"), usage))?,
        )
    };
    let archive = futures_util::stream::unfold(Some(reader), |reader| async move {
        let mut r = reader?;
        let mut buf = vec![0u8; 256 * 1024];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), Some(r)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
    .boxed();
    if !json_out {
        line(&format!("importing {file}"));
    }
    let d = {
        let steps = output::Steps::new(json_out);
        b.import(archive, query, &steps).await?
    };
    if json_out {
        json(&d)?;
        return Ok(0);
    }
    let name = &d.tenant.name;
    line(&format!(
        "tenant {name} is imported: workspace {} running {}, {} CPUs, {} memory, {} disk, {} pids",
        d.container, d.tenant.image, d.tenant.cpus, d.tenant.memory, d.tenant.disk, d.tenant.pids
    ));
    line(&format!("see it:  hostel info {name}"));
    Ok(0)
}

async fn set(
    b: &Backend,
    n: &TenantName,
    change: TenantChange,
    json_out: bool,
) -> Result<u8, CliError> {
    let out = b.set(n, change).await?;
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

async fn key(b: &Backend, k: KeyCommand, json_out: bool) -> Result<u8, CliError> {
    match k {
        KeyCommand::Add { name, keys } => {
            let n = tenant(&name)?;
            let keys = read_keys(&keys)?;
            b.key_add(&n, keys.iter().map(|k| k.to_openssh().to_owned()).collect())
                .await?;
            for k in &keys {
                line(&format!("{n}: added {} {}", k.algorithm(), k.fingerprint()));
            }
        }
        KeyCommand::Remove { name, fingerprint } => {
            let n = tenant(&name)?;
            b.key_remove(&n, &fingerprint).await?;
            line(&format!("{n}: removed {fingerprint}"));
        }
        KeyCommand::List { name } => {
            let keys = b.keys(&tenant(&name)?).await?;
            output::list(
                json_out,
                &keys,
                &["FINGERPRINT", "TYPE", "COMMENT", "ADDED"],
                |k| {
                    vec![
                        k.fingerprint.clone(),
                        k.algorithm.clone(),
                        k.comment.clone(),
                        k.added_at.format("%Y-%m-%d %H:%M").to_string(),
                    ]
                },
            )?;
        }
    }
    Ok(0)
}

/// A port as given on the command line.
fn port_number(text: &str) -> Result<u16, CliError> {
    text.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
        CliError::from(ServiceError::InvalidPort {
            port: text.to_owned(),
        })
    })
}

async fn port(b: &Backend, p: PortCommand, json_out: bool) -> Result<u8, CliError> {
    match p {
        PortCommand::Publish { name, port, public } => {
            let n = tenant(&name)?;
            let p = b.port_publish(&n, port_number(&port)?, public).await?;
            let who = if p.public {
                "anyone"
            } else {
                "its own browser session only"
            };
            line(&format!("{n}: port {} published, for {who}", p.port));
        }
        PortCommand::Unpublish { name, port } => {
            let n = tenant(&name)?;
            let port = port_number(&port)?;
            b.port_unpublish(&n, port).await?;
            line(&format!("{n}: port {port} withdrawn"));
        }
        PortCommand::List { name } => {
            let ports = b.ports(&tenant(&name)?).await?;
            output::list(json_out, &ports, &["PORT", "FOR", "SINCE"], |p| {
                vec![
                    p.port.to_string(),
                    if p.public { "anyone" } else { "owner" }.to_owned(),
                    p.created_at.format("%Y-%m-%d %H:%M").to_string(),
                ]
            })?;
        }
    }
    Ok(0)
}

async fn share(b: &Backend, c: ShareCommand, json_out: bool) -> Result<u8, CliError> {
    let who = |t: &Option<Vec<String>>| match t {
        None => "every tenant".to_owned(),
        Some(t) => t.join(", "),
    };
    match c {
        ShareCommand::Add {
            name,
            path,
            tenants,
        } => {
            let s = b
                .share_add(hostel_api::NewShare {
                    name,
                    path,
                    tenants,
                })
                .await?;
            if json_out {
                json(&s)?;
            } else {
                line(&format!(
                    "{} shared read-only at /shared/{} with {}; it reaches each workspace at its \
                     next start",
                    s.path,
                    s.name,
                    who(&s.tenants)
                ));
            }
        }
        ShareCommand::List => {
            let shares = b.shares().await?;
            output::list(json_out, &shares, &["SHARE", "PATH", "TENANTS"], |s| {
                vec![s.name.clone(), s.path.clone(), who(&s.tenants)]
            })?;
        }
        ShareCommand::Remove { name } => {
            b.share_remove(&name).await?;
            line(&format!(
                "share {name} removed; it leaves each workspace at its next start (the folder stays)"
            ));
        }
    }
    Ok(0)
}

fn snapshot_name(s: &str) -> Result<hostel_core::SnapshotName, CliError> {
    Ok(s.parse::<hostel_core::SnapshotName>()
        .map_err(ServiceError::from)?)
}

async fn snapshot(b: &Backend, c: SnapshotCommand, json_out: bool) -> Result<u8, CliError> {
    match c {
        SnapshotCommand::Create {
            name,
            schedule: Some(every),
            keep,
            ..
        } => {
            let n = tenant(&name)?;
            let off = every == "off";
            b.snapshot_schedule(
                &n,
                hostel_api::ScheduleChange {
                    every,
                    keep: Some(keep),
                },
            )
            .await?;
            line(&if off {
                format!("{n}: snapshot schedule stopped; the snapshots it took stay")
            } else {
                format!(
                    "{n}: snapshot schedule set, keeping the newest {keep}; the daemon takes \
                     the first at its next look"
                )
            });
        }
        SnapshotCommand::Create {
            name,
            snapshot,
            schedule: None,
            ..
        } => {
            let n = tenant(&name)?;
            let chosen = snapshot
                .as_deref()
                .map(hostel_core::SnapshotName::chosen)
                .transpose()
                .map_err(ServiceError::from)?;
            let s = b.snapshot_create(&n, chosen).await?;
            if json_out {
                json(&s)?;
            } else {
                line(&format!(
                    "{n}: snapshot {} taken ({})",
                    s.name,
                    if s.system { "home and system" } else { "home" }
                ));
            }
        }
        SnapshotCommand::List { name } => {
            let listed = b.snapshots(&tenant(&name)?).await?;
            if json_out {
                json(&listed)?;
            } else {
                output::list(
                    false,
                    &listed.snapshots,
                    &["SNAPSHOT", "TAKEN", "HOLDS", "ONLY IN IT", "BY"],
                    |s| {
                        vec![
                            s.name.clone(),
                            s.taken_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            if s.system { "home+system" } else { "home" }.to_owned(),
                            s.exclusive_bytes
                                .map(|b| ByteSize::bytes(b).human())
                                .unwrap_or_else(|| "-".into()),
                            if s.scheduled { "schedule" } else { "admin" }.to_owned(),
                        ]
                    },
                )?;
                line(&match &listed.schedule {
                    Some(s) => format!("schedule: {}, keeping the newest {}", s.every, s.keep),
                    None => "schedule: none".to_owned(),
                });
            }
        }
        SnapshotCommand::Restore { name, snapshot } => {
            let n = tenant(&name)?;
            let snap = snapshot_name(&snapshot)?;
            b.snapshot_restore(&n, &snap, &output::Steps::new(json_out))
                .await?;
            line(&format!("{n}: snapshot {snap} restored"));
        }
        SnapshotCommand::Delete { name, snapshot } => {
            let n = tenant(&name)?;
            let snap = snapshot_name(&snapshot)?;
            b.snapshot_delete(&n, &snap).await?;
            line(&format!("{n}: snapshot {snap} deleted"));
        }
    }
    Ok(0)
}

async fn token(b: &Backend, t: TokenCommand, json_out: bool) -> Result<u8, CliError> {
    match t {
        TokenCommand::Create { name, role } => {
            let made = b
                .token_create(NewToken {
                    name,
                    role: Some(role),
                })
                .await?;
            if json_out {
                json(&made)?;
            } else {
                line(made.token.expose());
                eprintln!(
                    "  - token {:?} ({}); shown once: store it now",
                    made.name, made.role
                );
            }
        }
        TokenCommand::List => {
            let tokens = b.tokens().await?;
            output::list(
                json_out,
                &tokens,
                &["NAME", "ROLE", "CREATED", "STATE"],
                |t| {
                    vec![
                        t.name.clone(),
                        t.role.clone(),
                        t.created_at.format("%Y-%m-%d %H:%M").to_string(),
                        t.revoked_at
                            .map(|r| format!("revoked {}", r.format("%Y-%m-%d %H:%M")))
                            .unwrap_or_else(|| "live".into()),
                    ]
                },
            )?;
        }
        TokenCommand::Revoke { name } => {
            b.token_revoke(&name).await?;
            line(&format!("token {name:?} revoked"));
        }
    }
    Ok(0)
}

async fn ban(b: &Backend, cmd: BanCommand, json_out: bool) -> Result<u8, CliError> {
    let ip = |a: &str| {
        a.parse::<std::net::IpAddr>().map_err(|_| {
            CliError::from(ServiceError::InvalidAddress {
                address: a.to_owned(),
            })
        })
    };
    match cmd {
        BanCommand::List => {
            let bans = b.bans().await?;
            output::list(
                json_out,
                &bans,
                &["ADDRESS", "AS", "UNTIL", "REASON"],
                |b| {
                    vec![
                        b.address.clone(),
                        b.tenant.clone().unwrap_or_else(|| "anyone".into()),
                        b.expires_at
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_else(|| "until removed".into()),
                        b.reason.clone(),
                    ]
                },
            )?;
        }
        BanCommand::Add {
            address,
            duration,
            reason,
        } => {
            let addr = ip(&address)?;
            if let Some(d) = &duration {
                parse_duration(d)?;
            }
            let ban = b
                .ban(NewBan {
                    address: addr.to_string(),
                    duration,
                    reason: Some(reason),
                })
                .await?;
            line(&match ban.expires_at {
                Some(t) => format!("{addr} banned until {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
                None => format!("{addr} banned until removed"),
            });
        }
        BanCommand::Remove { address } => {
            let addr = ip(&address)?;
            b.unban(addr).await?;
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
