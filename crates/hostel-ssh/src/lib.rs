//! hostel's SSH gateway: one listening port for every tenant.
//!
//! A client logs in as its tenant (`ssh alice@host`) with one of the tenant's public keys, read
//! from the store at each attempt, so keys added or removed take effect on the next connection.
//! Each session channel becomes one exec in the tenant's workspace, through the engine's exec
//! API: no sshd runs in a workspace and there is no second handshake. Connecting wakes the
//! workspace (start, or re-create from the kept home). Every auth attempt and session is audited.
//!
//! russh calls [`handler::Connection`]'s methods on its event loop; they only decide (auth) or
//! forward (channels). Each session channel is owned by a task in [`channel`] that receives the
//! channel's requests and data in order and bridges them to the exec. This crate must never let
//! a client reach anything but its own tenant's workspace. Start reading at [`serve`].

mod channel;
mod guard;
mod handler;
mod host_key;

pub use host_key::load_or_create_host_key;

use hostel_core::config::SshConfig;
use hostel_service::Hostel;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The host key could not be read or made.
    #[error("host key {path}: {message}")]
    HostKey {
        /// Where.
        path: String,
        /// What failed.
        message: String,
    },
    /// The listener failed.
    #[error("ssh gateway on {addr}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl GatewayError {
    /// One concrete action for a person.
    pub fn hint(&self) -> Option<String> {
        match self {
            GatewayError::HostKey { .. } => Some(
                "check the mode and content of the key file, or move it away to make a new one"
                    .into(),
            ),
            GatewayError::Listen { .. } => {
                Some("pick a free address with --ssh-listen or [ssh] listen in hostel.toml".into())
            }
        }
    }
}

/// The SHA-256 fingerprint of a host key, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &russh::keys::PrivateKey) -> String {
    key.public_key()
        .fingerprint(russh::keys::HashAlg::Sha256)
        .to_string()
}

/// The russh server configuration: public keys only, modern algorithms only.
pub fn russh_config(host_key: russh::keys::PrivateKey, cfg: &SshConfig) -> russh::server::Config {
    use russh::keys::{Algorithm, HashAlg};
    let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
    let preferred = russh::Preferred {
        // No ssh-rsa with SHA-1 signatures; RSA keys sign with SHA-2.
        key: std::borrow::Cow::Owned(vec![
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: russh::keys::EcdsaCurve::NistP256,
            },
            Algorithm::Ecdsa {
                curve: russh::keys::EcdsaCurve::NistP384,
            },
            Algorithm::Ecdsa {
                curve: russh::keys::EcdsaCurve::NistP521,
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ]),
        ..russh::Preferred::default()
    };
    russh::server::Config {
        server_id: russh::SshId::Standard(
            format!("SSH-2.0-hostel_{}", env!("CARGO_PKG_VERSION")).into(),
        ),
        methods: russh::MethodSet::from(&[russh::MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_secs(1),
        // OpenSSH opens with a `none` attempt to learn the methods; answering it at once saves
        // every login a second (russh otherwise delays it like a failed attempt).
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        preferred,
        max_auth_attempts: 6,
        inactivity_timeout: secs(cfg.idle_timeout_secs),
        keepalive_interval: secs(cfg.keepalive_secs),
        keepalive_max: 3,
        nodelay: true,
        ..russh::server::Config::default()
    }
}

/// How long a new connection has to say hello before it is dropped (slowloris).
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection has to log in (OpenSSH's LoginGraceTime); keepalive answers do not
/// extend it.
const LOGIN_GRACE: Duration = Duration::from_secs(30);

/// Serves SSH on `listener` with the settings `ssh` until `shutdown` turns true. Each accepted connection is first
/// checked against the bans and the per-address cap on unauthenticated connections; a refused
/// one is closed before any SSH byte, so a flood costs the gateway one accept.
pub async fn serve(
    hostel: Arc<Hostel>,
    listener: TcpListener,
    config: Arc<russh::server::Config>,
    ssh: SshConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), GatewayError> {
    let gateway = handler::Gateway::new(hostel.clone(), ssh, shutdown.clone());
    loop {
        // On shutdown, stop accepting; open sessions are told and run on until they end or the
        // daemon's drain deadline passes.
        let accepted = tokio::select! {
            a = listener.accept() => a,
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return Ok(());
                }
                continue;
            }
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tokio::time::sleep(hostel_service::net::accept_pause(&e)).await;
                continue;
            }
        };
        match hostel.is_banned(peer.ip()) {
            Ok(false) => {}
            Ok(true) => {
                tracing::debug!(%peer, "refused: banned");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read bans; refusing the connection");
                continue;
            }
        }
        let max = gateway.config().max_unauthenticated_per_ip;
        let Some(pending) = gateway.admit(peer.ip(), max) else {
            tracing::warn!(%peer, max, "refused: too many unauthenticated connections");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = gateway.connection(peer, pending);
        let logged_in = handler.logged_in();
        let config = config.clone();
        // One span per connection: every callback of the session runs in it.
        let span = tracing::info_span!("ssh_connection", %peer, tenant = tracing::field::Empty);
        let connection = async move {
            match tokio::time::timeout(
                HELLO_TIMEOUT,
                russh::server::run_stream(config, stream, handler),
            )
            .await
            {
                Ok(Ok(session)) => {
                    let handle = session.handle();
                    let grace = tokio::spawn(async move {
                        tokio::time::sleep(LOGIN_GRACE).await;
                        if !logged_in.load(std::sync::atomic::Ordering::Relaxed) {
                            tracing::debug!(%peer, "no login within the grace time; dropped");
                            let _ = handle
                                .disconnect(
                                    russh::Disconnect::ByApplication,
                                    "login grace time over".into(),
                                    String::new(),
                                )
                                .await;
                        }
                    });
                    let ended = session.await;
                    grace.abort();
                    if let Err(e) = ended {
                        tracing::debug!(%peer, error = %e, "ssh connection ended with an error");
                    }
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "ssh handshake failed"),
                Err(_) => tracing::debug!(%peer, "ssh client said nothing; dropped"),
            }
        };
        tokio::spawn(tracing::Instrument::instrument(connection, span));
    }
}
