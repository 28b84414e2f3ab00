//! The russh side: authentication decisions and forwarding of channels to their tasks.

use crate::channel::{self, ChannelContext};
use crate::guard::{AddressGuard, Pending};
use chrono::Utc;
use hostel_core::config::SshConfig;
use hostel_core::{AuditEvent, Outcome, TenantName};
use hostel_runtime::Loopback;
use hostel_service::Hostel;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure, MethodKind, MethodSet};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Counts open sessions per tenant, for `max_sessions_per_tenant`.
#[derive(Debug, Default)]
pub struct SessionCounter(Mutex<HashMap<String, u32>>);

/// Holds one session slot; frees it on drop.
#[derive(Debug)]
pub struct SessionSlot {
    counter: Arc<SessionCounter>,
    tenant: String,
}

impl SessionCounter {
    fn acquire(self: &Arc<Self>, tenant: &str, max: u32) -> Option<SessionSlot> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(tenant.to_owned()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(SessionSlot {
            counter: self.clone(),
            tenant: tenant.to_owned(),
        })
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut map = self.counter.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
        }
    }
}

/// The gateway's shared state; makes one [`Connection`] per client.
#[derive(Debug, Clone)]
pub struct Gateway {
    hostel: Arc<Hostel>,
    config: Arc<SshConfig>,
    sessions: Arc<SessionCounter>,
    addresses: Arc<AddressGuard>,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Gateway {
    pub fn new(
        hostel: Arc<Hostel>,
        config: SshConfig,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Gateway {
            hostel,
            config: Arc::new(config),
            sessions: Arc::default(),
            addresses: Arc::default(),
            shutdown,
        }
    }

    /// The gateway's settings.
    pub fn config(&self) -> &SshConfig {
        &self.config
    }
}

impl Gateway {
    /// A place for a new unauthenticated connection from `ip`, if under the cap.
    pub fn admit(&self, ip: IpAddr, max: u32) -> Option<Pending> {
        self.addresses.admit(ip, max)
    }

    /// The handler of a new connection.
    pub fn connection(&self, peer: SocketAddr, pending: Pending) -> Connection {
        Connection {
            hostel: self.hostel.clone(),
            config: self.config.clone(),
            shutdown: self.shutdown.clone(),
            sessions: self.sessions.clone(),
            ip: peer.ip(),
            peer: peer.to_string(),
            pending,
            logged_in: Arc::default(),
            tenant: None,
            failures: Vec::new(),
        }
    }
}

/// One client connection.
#[derive(Debug)]
pub struct Connection {
    hostel: Arc<Hostel>,
    config: Arc<SshConfig>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    sessions: Arc<SessionCounter>,
    ip: IpAddr,
    peer: String,
    pending: Pending,
    logged_in: Arc<AtomicBool>,
    tenant: Option<TenantName>,
    /// Refused attempts so far (at most [`MAX_COUNTED`]), with the name each tried when it
    /// counts toward a ban of the address for that tenant; counted when the connection ends
    /// without a login, forgiven when it logs in (a client offers its keys in turn, the right
    /// one last).
    failures: Vec<Option<String>>,
}

impl Drop for Connection {
    /// A connection that ends without a login counts its refused attempts toward a ban of its
    /// address; one that logged in counts none, whatever it tried first.
    fn drop(&mut self) {
        if self.logged_in.load(Ordering::Relaxed) {
            return;
        }
        for name in &self.failures {
            match self
                .hostel
                .login_failed(self.ip, "ssh-gateway", name.as_deref())
            {
                Ok(false) => {}
                Ok(true) => {
                    tracing::warn!(ip = %self.ip, "address banned after repeated failed logins");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot record a ban");
                    return;
                }
            }
        }
    }
}

/// The most refused attempts one connection counts toward bans; more than any client makes
/// before the server's own limit on attempts ends the connection.
const MAX_COUNTED: usize = 64;

/// `ssh-rsa`: RSA with SHA-1 signatures, broken and off by default in OpenSSH since 8.8.
fn is_sha1_rsa(alg: &russh::keys::Algorithm) -> bool {
    matches!(alg, russh::keys::Algorithm::Rsa { hash: None })
}

fn publickey_only() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(MethodSet::from(&[MethodKind::PublicKey][..])),
        partial_success: false,
    }
}

impl Connection {
    /// Set once the client has logged in; read by the login grace timer.
    pub fn logged_in(&self) -> Arc<AtomicBool> {
        self.logged_in.clone()
    }

    fn audit_auth(
        &self,
        user: &str,
        method: &str,
        fingerprint: &str,
        outcome: Outcome,
        reason: &str,
    ) {
        // The user name is the client's to choose: keep the record small.
        let shown: String = user.chars().take(64).collect();
        let mut ev = AuditEvent::new(Utc::now(), "ssh.auth", &format!("ssh:{shown}"), outcome)
            .with("peer", &self.peer)
            .with("method", method);
        if !fingerprint.is_empty() {
            ev = ev.with("fingerprint", fingerprint);
        }
        if !reason.is_empty() {
            ev = ev.with("reason", reason);
        }
        // The user name is only a tenant when it names one; never trust it as such otherwise.
        if let Ok(t) = user.parse::<TenantName>() {
            ev = ev.tenant(t.as_str());
        }
        if let Err(e) = self.hostel.record(ev) {
            tracing::error!(error = %e, "cannot write the audit log");
        }
    }

    /// Audits a refused login and counts it against the address and the name.
    fn deny(&mut self, user: &str, method: &str, fingerprint: &str, reason: &str) {
        self.audit_auth(user, method, fingerprint, Outcome::Denied, reason);
        self.failed(Some(user));
    }

    /// The tenant a key may log in as, with the key's fingerprint; a refusal (SHA-1 RSA
    /// signature, unknown tenant or key) is audited and counted here.
    fn check_key(
        &mut self,
        user: &str,
        key: &russh::keys::PublicKey,
        algorithm: &russh::keys::Algorithm,
    ) -> Option<(TenantName, String)> {
        let fingerprint = key.fingerprint(russh::keys::HashAlg::Sha256).to_string();
        if is_sha1_rsa(algorithm) {
            self.deny(
                user,
                "publickey",
                &fingerprint,
                "ssh-rsa (SHA-1) signatures are refused",
            );
            return None;
        }
        let banned = self.hostel.is_banned_as(self.ip, user).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read bans; refusing the login");
            true
        });
        if banned {
            // Counted toward the address only: its ban for this tenant is set, and enough
            // refusals ban it for everything, which bounds what it writes to the audit log.
            let reason = "address banned for this tenant";
            self.audit_auth(user, "publickey", &fingerprint, Outcome::Denied, reason);
            self.failed(None);
            return None;
        }
        match self.lookup(user, key) {
            Some(tenant) => Some((tenant, fingerprint)),
            None => {
                self.deny(user, "publickey", &fingerprint, "unknown tenant or key");
                None
            }
        }
    }

    /// What a new channel of `tenant` needs, with one of its session slots; `None` when the
    /// tenant has `max_sessions_per_tenant` open already.
    fn channel_context(&self, tenant: TenantName) -> Option<ChannelContext> {
        let max = self.config.max_sessions_per_tenant;
        let Some(slot) = self.sessions.acquire(tenant.as_str(), max) else {
            tracing::warn!(%tenant, max, "session cap reached");
            return None;
        };
        Some(ChannelContext {
            hostel: self.hostel.clone(),
            config: self.config.clone(),
            shutdown: self.shutdown.clone(),
            tenant,
            peer: self.peer.clone(),
            _slot: slot,
        })
    }

    /// Notes a refused attempt, as `user` or toward the address only, counted when the
    /// connection ends (see [`Drop`]).
    fn failed(&mut self, user: Option<&str>) {
        if self.failures.len() < MAX_COUNTED {
            self.failures
                .push(user.map(|u| u.chars().take(64).collect()));
        }
    }

    fn lookup(&self, user: &str, key: &russh::keys::PublicKey) -> Option<TenantName> {
        let line = key.to_openssh().ok()?;
        match self.hostel.login_key(user, &line) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot read keys from the store");
                None
            }
        }
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(publickey_only())
    }

    async fn auth_password(&mut self, user: &str, _password: &str) -> Result<Auth, Self::Error> {
        self.deny(user, "password", "", "password logins are refused");
        Ok(publickey_only())
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        _response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        self.deny(
            user,
            "keyboard-interactive",
            "",
            "keyboard-interactive logins are refused",
        );
        Ok(publickey_only())
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Spare the client a signature for a key that cannot log in; the same answer, after the
        // same delay, whether the tenant exists or not.
        Ok(
            match self.check_key(user, offer.public_key, offer.algorithm) {
                Some(_) => Auth::Accept,
                None => publickey_only(),
            },
        )
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        match self.check_key(user, key.public_key, key.algorithm) {
            Some((tenant, fingerprint)) => {
                self.audit_auth(user, "publickey", &fingerprint, Outcome::Ok, "");
                self.pending.authenticated();
                self.logged_in.store(true, Ordering::Relaxed);
                tracing::Span::current().record("tenant", tracing::field::display(&tenant));
                self.tenant = Some(tenant);
                Ok(Auth::Accept)
            }
            None => Ok(publickey_only()),
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(tenant) = self.tenant.clone() else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let Some(ctx) = self.channel_context(tenant) else {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        };
        reply.accept().await;
        let span = tracing::info_span!("ssh_channel", id = %channel.id(), kind = "session");
        tokio::spawn(tracing::Instrument::instrument(
            channel::run(ctx, channel),
            span,
        ));
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(tenant) = self.tenant.clone() else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        // Only the workspace's own loopback: its name, localhost, 127.0.0.1 or ::1.
        let own = matches!(host_to_connect, "localhost" | "127.0.0.1" | "::1")
            || host_to_connect == tenant.as_str();
        let port = u16::try_from(port_to_connect).ok().filter(|p| *p > 0);
        let target = format!("{host_to_connect}:{port_to_connect}");
        let ev = |outcome| {
            AuditEvent::new(
                Utc::now(),
                "ssh.forward",
                &format!("ssh:{tenant}@{}", self.peer),
                outcome,
            )
            .tenant(tenant.as_str())
            .with("target", &target)
        };
        let (Some(port), true) = (port, own) else {
            let e = ev(Outcome::Denied).with("reason", "only the workspace's own ports");
            if let Err(e) = self.hostel.record(e) {
                tracing::error!(error = %e, "cannot write the audit log");
            }
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let Some(ctx) = self.channel_context(tenant.clone()) else {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        };
        if let Err(e) = self.hostel.record(ev(Outcome::Ok)) {
            tracing::error!(error = %e, "cannot write the audit log");
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return Ok(());
        }
        reply.accept().await;
        let span =
            tracing::info_span!("ssh_channel", id = %channel.id(), kind = "direct-tcpip", port);
        tokio::spawn(tracing::Instrument::instrument(
            channel::forward(
                ctx,
                channel,
                port,
                if host_to_connect == "::1" {
                    Loopback::V6
                } else {
                    Loopback::V4
                },
            ),
            span,
        ));
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // The channel's task applies the same check and counts what it keeps.
        if hostel_core::session::env_entry(&self.config, 0, name, value).is_some() {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name == "sftp" {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }
}
