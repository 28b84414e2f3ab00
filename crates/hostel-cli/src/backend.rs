//! Where a command runs: in this process against the store and the engine, or through a daemon's
//! API (a remote one with `--server`, or the local one when it runs, so the store has one
//! writer). Both answer with the API's bodies, so the CLI renders one set of types and prints
//! the same thing either way.

use crate::client::{Client, Credentials};
use crate::error::CliError;
use crate::output::Steps;
use futures_util::StreamExt;
use hostel_api::{
    AuditEntry, AuditQuery, AuditVerified, Ban, Built, Change, CheckItem, CreatedToken,
    DaemonStatus, Finding, Image, ImportQuery, Key, NewBan, NewKeys, NewPublishedPort, NewShare,
    NewSnapshot, NewTenant, NewToken, PublishedPort, ScheduleChange, Share, Snapshot, SnapshotList,
    Tenant, TenantChange, TenantDetail, Token, Transition,
};
use hostel_core::lifecycle::WorkspaceState;
use hostel_core::{SnapshotName, TenantName};
use hostel_runtime::ExecOutput;
use hostel_service::Progress;
use hostel_service::{DownloadKind, Hostel, ServiceError};
use reqwest::Method;
use std::io::{IsTerminal, Write};
use tokio::io::AsyncWriteExt;

/// The two ways to run a command.
#[derive(Debug)]
pub enum Backend {
    /// In this process.
    Local(std::sync::Arc<Hostel>),
    /// Through a daemon's API.
    Remote(Box<Client>),
}

fn transition(name: &TenantName, was: WorkspaceState, now: WorkspaceState) -> Transition {
    Transition {
        name: name.to_string(),
        previous_state: was.to_string(),
        state: now.to_string(),
    }
}

impl Backend {
    fn detail(h: &Hostel, info: &hostel_service::TenantInfo) -> TenantDetail {
        TenantDetail::new(info, h.config().lifecycle.idle_stop_secs)
    }

    /// Tenants.
    pub async fn list(&self) -> Result<Vec<Tenant>, CliError> {
        match self {
            Backend::Local(h) => Ok(h.list().await?.iter().map(Tenant::from).collect()),
            Backend::Remote(c) => c.get(&["api", "tenants"]).await,
        }
    }

    /// Creates a tenant; answers when its workspace runs.
    pub async fn create(
        &self,
        body: NewTenant,
        progress: &dyn Progress,
    ) -> Result<TenantDetail, CliError> {
        match self {
            Backend::Local(h) => {
                let req = body.into_request(chrono::Utc::now())?;
                let info = h.create(req, progress).await?;
                Ok(Self::detail(h, &info))
            }
            Backend::Remote(c) => {
                // Bad input is refused here with the daemon's own checks, before a progress
                // line says the daemon is at work.
                body.clone().into_request(chrono::Utc::now())?;
                progress.step("the daemon is creating it");
                c.call(Method::POST, &["api", "tenants"], &body).await
            }
        }
    }

    /// One tenant with live usage.
    pub async fn info(&self, name: &TenantName) -> Result<TenantDetail, CliError> {
        match self {
            Backend::Local(h) => Ok(Self::detail(h, &h.info(name).await?)),
            Backend::Remote(c) => c.get(&["api", "tenants", name.as_str()]).await,
        }
    }

    /// Starts the workspace.
    pub async fn start(
        &self,
        name: &TenantName,
        progress: &dyn Progress,
    ) -> Result<Transition, CliError> {
        match self {
            Backend::Local(h) => {
                let was = h.start(name, progress).await?;
                Ok(transition(name, was, WorkspaceState::Running))
            }
            Backend::Remote(c) => {
                progress.step("the daemon is starting it");
                c.call(
                    Method::POST,
                    &["api", "tenants", name.as_str(), "start"],
                    &(),
                )
                .await
            }
        }
    }

    /// Stops the workspace.
    pub async fn stop(&self, name: &TenantName) -> Result<Transition, CliError> {
        match self {
            Backend::Local(h) => {
                let was = h.stop(name).await?;
                let now = if was == WorkspaceState::Running {
                    WorkspaceState::Stopped
                } else {
                    was
                };
                Ok(transition(name, was, now))
            }
            Backend::Remote(c) => {
                c.call(
                    Method::POST,
                    &["api", "tenants", name.as_str(), "stop"],
                    &(),
                )
                .await
            }
        }
    }

    /// Removes the workspace; the home stays.
    pub async fn delete(&self, name: &TenantName) -> Result<Transition, CliError> {
        match self {
            Backend::Local(h) => {
                let was = h.delete(name).await?;
                Ok(transition(name, was, WorkspaceState::Deleted))
            }
            Backend::Remote(c) => {
                c.call(Method::DELETE, &["api", "tenants", name.as_str()], &())
                    .await
            }
        }
    }

    /// Removes the tenant and its home; refused unless `confirmed`.
    pub async fn purge(&self, name: &TenantName, confirmed: bool) -> Result<(), CliError> {
        match self {
            Backend::Local(h) => Ok(h.purge(name, confirmed).await?),
            Backend::Remote(_) if !confirmed => Err(ServiceError::PurgeUnconfirmed {
                tenant: name.to_string(),
            }
            .into()),
            Backend::Remote(c) => {
                c.call_empty(
                    Method::DELETE,
                    &["api", "tenants", name.as_str()],
                    Some(("purge", "true")),
                )
                .await
            }
        }
    }

    /// Runs `argv` as the tenant with this process's stdin (when it is not a terminal),
    /// stdout and stderr; answers with the exit code.
    pub async fn exec(&self, name: &TenantName, argv: Vec<String>) -> Result<i64, CliError> {
        let attach_stdin = !std::io::stdin().is_terminal();
        match self {
            Backend::Remote(c) => c.exec(name.as_str(), &argv, attach_stdin).await,
            Backend::Local(h) => {
                let opts = hostel_service::ExecOptions {
                    cmd: argv,
                    stdin: attach_stdin,
                    ..hostel_service::ExecOptions::default()
                };
                // The command's own output shares the terminal: plain lines for waking it.
                let session = h.exec(name, opts, &Steps::lines()).await?;
                let mut input = session.input;
                let feeder = attach_stdin.then(|| {
                    tokio::spawn(async move {
                        let mut stdin = tokio::io::stdin();
                        let _ = tokio::io::copy(&mut stdin, &mut input).await;
                        let _ = input.shutdown().await;
                    })
                });
                let mut output = session.output;
                let mut stdout = std::io::stdout();
                let mut stderr = std::io::stderr();
                while let Some(chunk) = output.next().await {
                    match chunk.map_err(ServiceError::from)? {
                        ExecOutput::Stdout(b) => {
                            if stdout.write_all(&b).and_then(|()| stdout.flush()).is_err() {
                                // Our reader is gone (`| head`): the command learns it as a
                                // local one would.
                                let _ = h
                                    .exec_signal(&session.handle, hostel_core::Signal::Pipe)
                                    .await;
                                break;
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
                Ok(h.exec_finish(&session.handle).await?)
            }
        }
    }

    /// Writes a file in the home.
    pub async fn file_put(
        &self,
        name: &TenantName,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), CliError> {
        match self {
            Backend::Local(h) => Ok(h.file_put(name, path, bytes).await?),
            Backend::Remote(c) => {
                // Checked here too: a URL would drop `..` segments, not refuse them.
                let mut segments = vec!["api", "tenants", name.as_str(), "files"];
                segments.extend(hostel_service::home_path(path)?.split('/'));
                c.put_bytes(&segments, bytes).await
            }
        }
    }

    /// Reads a file from the home, or a folder as a tar, as a stream of chunks.
    pub async fn file_get(
        &self,
        name: &TenantName,
        path: &str,
    ) -> Result<
        (
            DownloadKind,
            futures_util::stream::BoxStream<'static, Result<Vec<u8>, CliError>>,
        ),
        CliError,
    > {
        match self {
            Backend::Local(h) => {
                let d = h.file_get(name, path).await?;
                Ok((d.kind, d.body.map(|c| c.map_err(CliError::from)).boxed()))
            }
            Backend::Remote(c) => {
                let mut segments = vec!["api", "tenants", name.as_str(), "files"];
                segments.extend(hostel_service::home_path(path)?.split('/'));
                let (body, kind) = c.get_stream(&segments).await?;
                let kind = if kind == "application/x-tar" {
                    DownloadKind::Folder
                } else {
                    DownloadKind::File
                };
                Ok((kind, body))
            }
        }
    }

    /// The tenant as an archive, as a stream of chunks.
    pub async fn export(
        &self,
        name: &TenantName,
    ) -> Result<futures_util::stream::BoxStream<'static, Result<Vec<u8>, CliError>>, CliError> {
        match self {
            Backend::Local(h) => Ok(h
                .export(name)
                .await?
                .body
                .map(|c| c.map_err(CliError::from))
                .boxed()),
            Backend::Remote(c) => Ok(c
                .get_stream(&["api", "tenants", name.as_str(), "export"])
                .await?
                .0),
        }
    }

    /// Makes a tenant from an archive; answers when its workspace runs.
    pub async fn import(
        &self,
        archive: futures_util::stream::BoxStream<'static, std::io::Result<Vec<u8>>>,
        query: ImportQuery,
        progress: &dyn Progress,
    ) -> Result<TenantDetail, CliError> {
        match self {
            Backend::Local(h) => {
                let info = h.import(archive, query.into_request()?, progress).await?;
                Ok(Self::detail(h, &info))
            }
            Backend::Remote(c) => {
                query.clone().into_request()?;
                progress.step("the daemon is importing it");
                c.post_stream(&["api", "import"], &query, "application/zstd", archive)
                    .await
            }
        }
    }

    /// Changes quotas, image and policies.
    pub async fn set(
        &self,
        name: &TenantName,
        change: TenantChange,
    ) -> Result<Vec<Change>, CliError> {
        match self {
            Backend::Local(h) => {
                let p = change.into_parts()?;
                let out = h
                    .set(name, p.quota, p.image.as_deref(), p.egress, p.policy)
                    .await?;
                Ok(out.into_iter().map(Change::from).collect())
            }
            Backend::Remote(c) => {
                c.call(Method::PATCH, &["api", "tenants", name.as_str()], &change)
                    .await
            }
        }
    }

    /// Sets the tenant's web password.
    pub async fn set_password(&self, name: &TenantName, password: String) -> Result<(), CliError> {
        match self {
            Backend::Local(h) => Ok(h.set_password(name, &password)?),
            Backend::Remote(c) => {
                c.call_empty_json(
                    Method::PUT,
                    &["api", "tenants", name.as_str(), "password"],
                    &hostel_api::NewPassword {
                        password: password.into(),
                    },
                )
                .await
            }
        }
    }

    /// Makes a one-time sign-in link; answers with its path and expiry.
    pub async fn login_link(
        &self,
        name: &TenantName,
        body: hostel_api::NewLoginLink,
    ) -> Result<hostel_api::LoginLink, CliError> {
        match self {
            Backend::Local(h) => {
                let ttl = body.ttl()?;
                let token = h.login_link(name, ttl)?;
                Ok(hostel_api::LoginLink {
                    path: format!("/login/link/{}", token.expose()),
                    expires_at: chrono::Utc::now() + ttl,
                })
            }
            Backend::Remote(c) => {
                c.call(
                    Method::POST,
                    &["api", "tenants", name.as_str(), "login-links"],
                    &body,
                )
                .await
            }
        }
    }

    /// Where the daemon's web pages are: the server's address, or this host's configured one.
    pub fn web_base(&self) -> String {
        match self {
            Backend::Remote(c) => c.base().as_str().trim_end_matches('/').to_owned(),
            Backend::Local(h) => {
                let scheme = if h.config().http.tls { "https" } else { "http" };
                format!("{scheme}://{}", h.config().http.listen)
            }
        }
    }

    /// The tenant's keys.
    pub async fn keys(&self, name: &TenantName) -> Result<Vec<Key>, CliError> {
        match self {
            Backend::Local(h) => Ok(h.key_list(name)?.into_iter().map(Key::from).collect()),
            Backend::Remote(c) => c.get(&["api", "tenants", name.as_str(), "keys"]).await,
        }
    }

    /// Adds keys (OpenSSH lines, already checked).
    pub async fn key_add(&self, name: &TenantName, keys: Vec<String>) -> Result<(), CliError> {
        match self {
            Backend::Local(h) => {
                let parsed = keys
                    .iter()
                    .map(|k| k.parse())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(ServiceError::from)?;
                Ok(h.key_add(name, &parsed)?)
            }
            Backend::Remote(c) => c
                .call::<_, Vec<Key>>(
                    Method::POST,
                    &["api", "tenants", name.as_str(), "keys"],
                    &NewKeys { keys },
                )
                .await
                .map(|_| ()),
        }
    }

    /// The ports a tenant publishes.
    pub async fn ports(&self, name: &TenantName) -> Result<Vec<PublishedPort>, CliError> {
        match self {
            Backend::Local(h) => Ok(h.ports(name)?.into_iter().map(Into::into).collect()),
            Backend::Remote(c) => c.get(&["api", "tenants", name.as_str(), "ports"]).await,
        }
    }

    /// Publishes a port (or changes whether it is public).
    pub async fn port_publish(
        &self,
        name: &TenantName,
        port: u16,
        public: bool,
    ) -> Result<PublishedPort, CliError> {
        match self {
            Backend::Local(h) => Ok(h.port_publish(name, port, public)?.into()),
            Backend::Remote(c) => {
                c.call(
                    Method::POST,
                    &["api", "tenants", name.as_str(), "ports"],
                    &NewPublishedPort { port, public },
                )
                .await
            }
        }
    }

    /// Withdraws a published port.
    pub async fn port_unpublish(&self, name: &TenantName, port: u16) -> Result<(), CliError> {
        match self {
            Backend::Local(h) => Ok(h.port_unpublish(name, port)?),
            Backend::Remote(c) => {
                c.call_empty(
                    Method::DELETE,
                    &["api", "tenants", name.as_str(), "ports", &port.to_string()],
                    None,
                )
                .await
            }
        }
    }

    /// Every shared dataset.
    pub async fn shares(&self) -> Result<Vec<Share>, CliError> {
        match self {
            Backend::Local(h) => Ok(h.shares()?.into_iter().map(Share::from).collect()),
            Backend::Remote(c) => c.get(&["api", "shares"]).await,
        }
    }

    /// Shares a host folder.
    pub async fn share_add(&self, share: NewShare) -> Result<Share, CliError> {
        match self {
            Backend::Local(h) => {
                let (name, tenants) = share.parts()?;
                Ok(h.share_add(&name, &share.path, tenants).await?.into())
            }
            Backend::Remote(c) => c.call(Method::POST, &["api", "shares"], &share).await,
        }
    }

    /// Stops sharing a folder.
    pub async fn share_remove(&self, name: &str) -> Result<(), CliError> {
        match self {
            Backend::Local(h) => {
                let name = name
                    .parse::<hostel_core::share::ShareName>()
                    .map_err(ServiceError::from)?;
                Ok(h.share_remove(&name).await?)
            }
            Backend::Remote(c) => {
                c.call_empty(Method::DELETE, &["api", "shares", name], None)
                    .await
            }
        }
    }

    /// The tenant's snapshots and schedule.
    pub async fn snapshots(&self, name: &TenantName) -> Result<SnapshotList, CliError> {
        match self {
            Backend::Local(h) => Ok(SnapshotList::new(h.snapshots(name).await?)),
            Backend::Remote(c) => c.get(&["api", "tenants", name.as_str(), "snapshots"]).await,
        }
    }

    /// Takes a snapshot.
    pub async fn snapshot_create(
        &self,
        name: &TenantName,
        snapshot: Option<SnapshotName>,
    ) -> Result<Snapshot, CliError> {
        match self {
            Backend::Local(h) => Ok(h.snapshot_create(name, snapshot).await?.into()),
            Backend::Remote(c) => {
                c.call(
                    Method::POST,
                    &["api", "tenants", name.as_str(), "snapshots"],
                    &NewSnapshot {
                        name: snapshot.map(String::from),
                    },
                )
                .await
            }
        }
    }

    /// Puts a snapshot back.
    pub async fn snapshot_restore(
        &self,
        name: &TenantName,
        snapshot: &SnapshotName,
        progress: &dyn Progress,
    ) -> Result<(), CliError> {
        match self {
            Backend::Local(h) => Ok(h.snapshot_restore(name, snapshot, progress).await?),
            Backend::Remote(c) => {
                progress.step("the daemon is restoring it");
                c.call_empty(
                    Method::POST,
                    &[
                        "api",
                        "tenants",
                        name.as_str(),
                        "snapshots",
                        snapshot.as_str(),
                        "restore",
                    ],
                    None,
                )
                .await
            }
        }
    }

    /// Deletes a snapshot.
    pub async fn snapshot_delete(
        &self,
        name: &TenantName,
        snapshot: &SnapshotName,
    ) -> Result<(), CliError> {
        match self {
            Backend::Local(h) => Ok(h.snapshot_delete(name, snapshot).await?),
            Backend::Remote(c) => {
                c.call_empty(
                    Method::DELETE,
                    &[
                        "api",
                        "tenants",
                        name.as_str(),
                        "snapshots",
                        snapshot.as_str(),
                    ],
                    None,
                )
                .await
            }
        }
    }

    /// Sets or stops the snapshot schedule.
    pub async fn snapshot_schedule(
        &self,
        name: &TenantName,
        change: ScheduleChange,
    ) -> Result<(), CliError> {
        match self {
            Backend::Local(h) => Ok(h.snapshot_schedule(name, change.schedule()?).await?),
            Backend::Remote(c) => {
                c.call_empty_json(
                    Method::PUT,
                    &["api", "tenants", name.as_str(), "snapshot-schedule"],
                    &change,
                )
                .await
            }
        }
    }

    /// Removes a key by fingerprint.
    pub async fn key_remove(&self, name: &TenantName, fingerprint: &str) -> Result<(), CliError> {
        match self {
            Backend::Local(h) => Ok(h.key_remove(name, fingerprint)?),
            Backend::Remote(c) => {
                c.call_empty(
                    Method::DELETE,
                    &["api", "tenants", name.as_str(), "keys", fingerprint],
                    None,
                )
                .await
            }
        }
    }

    /// Workspace images.
    pub async fn images(&self) -> Result<Vec<Image>, CliError> {
        match self {
            Backend::Local(h) => Ok(h.image_list().await?.into_iter().map(Image::from).collect()),
            Backend::Remote(c) => c.get(&["api", "images"]).await,
        }
    }

    /// Builds the workspace image.
    pub async fn image_build(
        &self,
        profile: hostel_core::ImageProfile,
        force: bool,
        progress: &dyn Progress,
    ) -> Result<Built, CliError> {
        match self {
            Backend::Local(h) => Ok(h
                .image_build_profile(profile, force, progress)
                .await?
                .into()),
            Backend::Remote(c) => {
                progress.step("the daemon is building it");
                c.call(
                    Method::POST,
                    &["api", "images", "build"],
                    &hostel_api::ImageBuild {
                        force,
                        profile: Some(profile.to_string()),
                    },
                )
                .await
            }
        }
    }

    /// The host check.
    pub async fn check(&self) -> Result<Vec<CheckItem>, CliError> {
        match self {
            Backend::Local(h) => Ok(h.check().await.into_iter().map(CheckItem::from).collect()),
            Backend::Remote(c) => c.get(&["api", "check"]).await,
        }
    }

    /// Drift between store, engine and homes; fixed when `fix`.
    pub async fn doctor(&self, fix: bool) -> Result<Vec<Finding>, CliError> {
        match self {
            Backend::Local(h) => Ok(h
                .doctor(fix)
                .await?
                .into_iter()
                .map(Finding::from)
                .collect()),
            Backend::Remote(c) if fix => {
                c.call(
                    Method::POST,
                    &["api", "doctor"],
                    &hostel_api::DoctorRun { fix },
                )
                .await
            }
            Backend::Remote(c) => c.get(&["api", "doctor"]).await,
        }
    }

    /// Audit records.
    pub async fn audit(&self, query: AuditQuery) -> Result<Vec<AuditEntry>, CliError> {
        match self {
            Backend::Local(h) => {
                let filter = hostel_store::AuditFilter {
                    tenant: query.tenant,
                    since: query.since,
                    failed: query.failed,
                };
                let records = h.audit_log().query(&filter)?;
                Ok(records.into_iter().map(AuditEntry::from).collect())
            }
            Backend::Remote(c) => c.get_query(&["api", "audit"], &query).await,
        }
    }

    /// Checks the audit log's chain.
    pub async fn audit_verify(&self) -> Result<AuditVerified, CliError> {
        match self {
            Backend::Local(h) => Ok(AuditVerified {
                records: h.audit_log().verify()?,
                path: h.audit_log().path().display().to_string(),
            }),
            Backend::Remote(c) => c.get(&["api", "audit", "verify"]).await,
        }
    }

    /// Bans in force.
    pub async fn bans(&self) -> Result<Vec<Ban>, CliError> {
        match self {
            Backend::Local(h) => Ok(h.bans()?.into_iter().map(Ban::from).collect()),
            Backend::Remote(c) => c.get(&["api", "bans"]).await,
        }
    }

    /// Bans an address.
    pub async fn ban(&self, ban: NewBan) -> Result<Ban, CliError> {
        match self {
            Backend::Local(h) => {
                let (ip, duration, reason) = ban.into_parts()?;
                Ok(h.ban(ip, &reason, duration, None)?.into())
            }
            Backend::Remote(c) => c.call(Method::POST, &["api", "bans"], &ban).await,
        }
    }

    /// Lifts a ban.
    pub async fn unban(&self, address: std::net::IpAddr) -> Result<(), CliError> {
        match self {
            Backend::Local(h) => Ok(h.unban(address)?),
            Backend::Remote(c) => {
                c.call_empty(Method::DELETE, &["api", "bans", &address.to_string()], None)
                    .await
            }
        }
    }

    /// API tokens.
    pub async fn tokens(&self) -> Result<Vec<Token>, CliError> {
        match self {
            Backend::Local(h) => Ok(h.token_list()?.into_iter().map(Token::from).collect()),
            Backend::Remote(c) => c.get(&["api", "tokens"]).await,
        }
    }

    /// Makes a token.
    pub async fn token_create(&self, token: NewToken) -> Result<CreatedToken, CliError> {
        match self {
            Backend::Local(h) => {
                let role = token.role()?;
                let secret = h.token_create(&token.name, role)?;
                Ok(CreatedToken {
                    name: token.name,
                    role: role.to_string(),
                    token: secret,
                })
            }
            Backend::Remote(c) => c.call(Method::POST, &["api", "tokens"], &token).await,
        }
    }

    /// Revokes a token.
    pub async fn token_revoke(&self, name: &str) -> Result<(), CliError> {
        match self {
            Backend::Local(h) => Ok(h.token_revoke(name)?),
            Backend::Remote(c) => {
                c.call_empty(Method::DELETE, &["api", "tokens", name], None)
                    .await
            }
        }
    }

    /// The daemon this backend talks to, if it is one.
    pub async fn daemon(&self) -> Result<Option<DaemonStatus>, CliError> {
        match self {
            Backend::Local(_) => Ok(None),
            Backend::Remote(c) => c.get(&["api", "status"]).await.map(Some),
        }
    }
}

/// `--set` changes what this process does; a command a daemon carries out runs with the
/// daemon's settings, so a `--set` there would be silently ignored: refused instead.
fn refuse_settings(cli: &crate::cli::Cli, daemon: &str) -> Result<(), CliError> {
    match cli.set.first() {
        None => Ok(()),
        Some(set) => Err(CliError::new(
            hostel_core::ErrorCode::InvalidInput,
            format!("--set {set}: this command is carried out by {daemon}, with its settings"),
            Some(
                "give the setting to the daemon (hostel.toml, /etc/default/hostel or \
                 `hostel --set ... serve`) and restart it"
                    .into(),
            ),
        )),
    }
}

/// Connects the way the flags and the host say: `--server` → that daemon; else, as root, the
/// local daemon when one runs, else this process.
pub fn connect(cli: &crate::cli::Cli) -> Result<Backend, CliError> {
    if let Some(server) = &cli.remote.server {
        refuse_settings(cli, &format!("the daemon at {server}"))?;
        let creds = Credentials {
            token: cli.remote.token.clone(),
            actor: None,
            identity: match (&cli.remote.cert, &cli.remote.cert_key) {
                (Some(c), Some(k)) => Some((c.clone(), k.clone())),
                (None, None) => None,
                _ => {
                    return Err(CliError::new(
                        hostel_core::ErrorCode::InvalidInput,
                        "--cert and --cert-key go together",
                        Some("pass both, as `hostel cert generate` wrote them".into()),
                    ));
                }
            },
            ca: cli.remote.ca.clone(),
        };
        return Ok(Backend::Remote(Box::new(Client::new(server, creds)?)));
    }
    crate::wiring::require_root()?;
    if let Some(client) = crate::serve::local_daemon(&cli.root)? {
        refuse_settings(cli, "the daemon running on this root")?;
        return Ok(Backend::Remote(Box::new(client)));
    }
    Ok(Backend::Local(std::sync::Arc::new(crate::wiring::open(
        cli,
    )?)))
}
