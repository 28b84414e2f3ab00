//! Builds a [`Hostel`] for a root: config, store, Docker runtime, btrfs homes.

use crate::cli::Cli;
use crate::error::CliError;
use hostel_core::config::Config;
use hostel_core::config::EngineKind;
use hostel_core::{ByteSize, ErrorCode};
use hostel_runtime::Runtime;
use hostel_runtime::docker::DockerRuntime;
use hostel_runtime::incus::IncusRuntime;
use hostel_runtime::storage::BtrfsPool;
use hostel_service::{Hostel, Paths, ServiceError};
use hostel_store::Store;
use std::sync::Arc;

/// Refuses to go on without root, saying why.
pub fn require_root() -> Result<(), CliError> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    Err(CliError::new(
        ErrorCode::PermissionDenied,
        "hostel needs root: it talks to the container engine's socket, mounts the tenants' \
         homes pool and keeps its store under a root-only folder",
        Some("run it with sudo (or as root)".into()),
    ))
}

/// The configuration's layers this command line gives: `--set`, `serve`'s address flags, the
/// file `--config` names or the root's.
pub fn layers(cli: &Cli) -> Result<crate::settings::Layers, CliError> {
    use crate::settings::Flag;
    let (file, file_given) = crate::settings::file_for(&cli.root, cli.config.as_deref());
    let mut flags = cli
        .set
        .iter()
        .map(|s| Flag::parse_set(s))
        .collect::<Result<Vec<_>, _>>()?;
    if let crate::cli::Command::Serve {
        ssh_listen,
        http_listen,
        web_listen,
    } = &cli.command
    {
        for (flag, key, value) in [
            ("--ssh-listen", "ssh.listen", ssh_listen),
            ("--http-listen", "http.listen", http_listen),
            ("--web-listen", "http.web_listen", web_listen),
        ] {
            if let Some(v) = value {
                // An address is text, whatever it looks like.
                flags.push(Flag {
                    flag: flag.into(),
                    key: key.into(),
                    value: format!("{v:?}"),
                });
            }
        }
    }
    Ok(crate::settings::Layers {
        file,
        file_given,
        flags,
    })
}

/// Reads the configuration: flags over `HOSTEL_*` variables over the file over the defaults.
pub fn load_config(cli: &Cli) -> Result<Config, CliError> {
    Ok(crate::settings::load(&layers(cli)?)?.config)
}

/// The actor named in audit records.
pub fn actor() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "root".into());
    format!("cli:{user}")
}

/// Opens the hostel instance under `cli.root`.
pub fn open(cli: &Cli) -> Result<Hostel, CliError> {
    require_root()?;
    let config = load_config(cli)?;
    let paths = Paths::new(&cli.root);
    paths.create_dirs().map_err(|e| ServiceError::Io {
        action: "create the hostel root",
        path: cli.root.display().to_string(),
        source: e,
    })?;
    let pool_size = match config.storage.pool_size {
        Some(s) => s,
        None => nix::sys::statvfs::statvfs(paths.root())
            .map(|s| ByteSize::bytes(s.blocks() * s.fragment_size()))
            .map_err(|e| ServiceError::Io {
                action: "read the size of",
                path: cli.root.display().to_string(),
                source: e.into(),
            })?,
    };
    let storage = BtrfsPool::new(paths.users(), paths.pool_image(), pool_size);
    let runtime = engine_runtime(&config.engine);
    let store = Store::open(&paths.database())?;
    let filter: Arc<dyn hostel_runtime::netfilter::PacketFilter> = if config.network.packet_filter {
        Arc::new(hostel_runtime::netfilter::Iptables)
    } else {
        Arc::new(hostel_runtime::netfilter::NoFilter)
    };
    Ok(
        Hostel::new(paths, config, runtime, Arc::new(storage), store, actor())?
            .with_packet_filter(filter)
            .with_kernel_settings("/proc/sys"),
    )
}

/// The runtime of the engine `[engine]` names.
pub fn engine_runtime(engine: &hostel_core::config::EngineConfig) -> Arc<dyn Runtime> {
    match engine.kind {
        EngineKind::Docker => Arc::new(DockerRuntime::new(engine.socket())),
        EngineKind::Incus => Arc::new(IncusRuntime::new(engine.socket(), engine.pool.clone())),
    }
}
