//! Tenants' web logins: a password per tenant (argon2id, only its PHC string is stored) and
//! browser sessions (a random token in a cookie; the store keeps its SHA-256). Failed logins count
//! with the SSH gateway's and the API's, so guessing bans the address. Every attempt is audited
//! as `web.auth`.

use crate::{Hostel, ServiceError};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::Duration;
use hostel_core::{Outcome, Secret, TenantName};
use hostel_store::TokenRecord;
use rand::RngExt;
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// How long a browser session lasts.
pub const SESSION_HOURS: i64 = 12;

/// A hash to verify against when the tenant has no password, so a missing tenant costs the
/// same time as a wrong password: made once, with the same parameters as real ones.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash(&rand::rng().random::<[u8; 16]>()).unwrap_or_default())
}

/// The PHC string of `password` with a fresh random salt.
fn hash(password: &[u8]) -> Result<String, ServiceError> {
    let fail = |e: argon2::password_hash::Error| ServiceError::Io {
        action: "hash the password",
        path: String::new(),
        source: std::io::Error::other(e.to_string()),
    };
    let salt_bytes: [u8; 16] = rand::rng().random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(fail)?;
    // Tens of milliseconds of CPU by design: off the async executor.
    hostel_store::blocking(|| {
        Ok(Argon2::default()
            .hash_password(password, &salt)
            .map_err(fail)?
            .to_string())
    })
}

/// 43 random letters and digits (about 256 bits): session cookies and one-time links.
pub(crate) fn random_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..43)
        .map(|_| {
            let i = rng.random_range(0..ALPHABET.len());
            char::from(ALPHABET.get(i).copied().unwrap_or(b'x'))
        })
        .collect()
}

pub(crate) fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks a new web password's length (in characters).
pub fn check_password(password: &str) -> Result<(), ServiceError> {
    let n = password.chars().count();
    if n < 12 {
        return Err(ServiceError::WeakPassword {
            reason: "shorter than 12 characters",
        });
    }
    if n > 1024 {
        return Err(ServiceError::WeakPassword {
            reason: "longer than 1024 characters",
        });
    }
    Ok(())
}

impl Hostel {
    /// Sets the tenant's web password (signing out its browser sessions).
    pub fn set_password(&self, name: &TenantName, password: &str) -> Result<(), ServiceError> {
        let result = (|| -> Result<(), ServiceError> {
            check_password(password)?;
            self.store.require(name)?;
            self.store
                .set_web_password(name, &hash(password.as_bytes())?, self.now())?;
            Ok(())
        })();
        let ev = match &result {
            Ok(()) => self.event("web.passwd", Outcome::Ok),
            Err(e) => self
                .event("web.passwd", Outcome::Failed)
                .with("error", e.code()),
        };
        self.record(ev.tenant(name.as_str()))?;
        result
    }

    /// Signs a tenant in; returns the session token for the cookie. A wrong name, a wrong
    /// password and a tenant without one get the same answer after the same work.
    pub fn web_login(
        &self,
        name: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<(TenantName, Secret<String>), ServiceError> {
        let tenant = name.parse::<TenantName>().ok();
        let stored = match &tenant {
            Some(t) => self.store.web_password(t)?,
            None => None,
        };
        let against = stored.as_deref().unwrap_or_else(|| dummy_hash());
        let ok = PasswordHash::new(against).is_ok_and(|h| {
            hostel_store::blocking(|| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
        }) && stored.is_some();
        let peer = ip
            .map(|i| i.to_string())
            .unwrap_or_else(|| "unknown".into());
        // An address banned for this tenant gets the same answer after the same work; its tries
        // count toward the address only.
        let banned = match ip {
            Some(ip) => self.is_banned_as(ip, name)?,
            None => false,
        };
        let Some(tenant) = tenant.filter(|_| ok && !banned) else {
            let reason = if banned {
                "address banned for this tenant"
            } else {
                "wrong name or password"
            };
            let mut ev = self
                .event("web.auth", Outcome::Denied)
                .with("peer", &peer)
                .with("reason", reason);
            ev.actor = "web:unknown".into();
            if let Ok(t) = name.parse::<TenantName>() {
                ev = ev.tenant(t.as_str());
            }
            self.record(ev)?;
            if let Some(ip) = ip {
                self.login_failed(ip, "web", Some(name).filter(|_| !banned))?;
            }
            return Err(ServiceError::LoginFailed);
        };
        let token = self.new_session(&tenant, &peer, "password")?;
        Ok((tenant, token))
    }

    /// Starts a session for `tenant` and records the sign-in.
    pub(crate) fn new_session(
        &self,
        tenant: &TenantName,
        peer: &str,
        how: &str,
    ) -> Result<Secret<String>, ServiceError> {
        let token = random_token();
        let now = self.now();
        self.store.add_web_session(
            &digest(&token),
            tenant,
            now,
            now + Duration::hours(SESSION_HOURS),
        )?;
        let mut ev = self
            .event("web.auth", Outcome::Ok)
            .with("peer", peer)
            .with("with", how)
            .tenant(tenant.as_str());
        ev.actor = format!("web:{tenant}");
        self.record(ev)?;
        Ok(Secret::new(token))
    }

    /// Makes a one-time sign-in link token for `tenant`, good for `ttl` (for agents and first
    /// sign-ins). Audited as `web.link`, never with the token.
    pub fn login_link(
        &self,
        name: &TenantName,
        ttl: Duration,
    ) -> Result<Secret<String>, ServiceError> {
        let result = (|| -> Result<Secret<String>, ServiceError> {
            self.store.require(name)?;
            let token = random_token();
            let now = self.now();
            self.store
                .add_login_link(&digest(&token), name, now, now + ttl)?;
            Ok(Secret::new(token))
        })();
        let ev = match &result {
            Ok(_) => self
                .event("web.link", Outcome::Ok)
                .with("ttl_secs", ttl.num_seconds()),
            Err(e) => self
                .event("web.link", Outcome::Failed)
                .with("error", e.code()),
        };
        self.record(ev.tenant(name.as_str()))?;
        result
    }

    /// Signs in with a one-time link: it works once, until it expires. A used, expired or made-up
    /// token gets [`ServiceError::LoginFailed`] and counts toward a ban like a wrong password.
    pub fn login_with_link(
        &self,
        token: &str,
        ip: Option<IpAddr>,
    ) -> Result<(TenantName, Secret<String>), ServiceError> {
        let peer = ip
            .map(|i| i.to_string())
            .unwrap_or_else(|| "unknown".into());
        match self.store.take_login_link(&digest(token))? {
            Some((tenant, expires)) if expires > self.now() => {
                let session = self.new_session(&tenant, &peer, "link")?;
                Ok((tenant, session))
            }
            _ => {
                let mut ev = self
                    .event("web.auth", Outcome::Denied)
                    .with("peer", &peer)
                    .with("reason", "unknown, used or expired link");
                ev.actor = "web:unknown".into();
                self.record(ev)?;
                if let Some(ip) = ip {
                    self.login_failed(ip, "web", None)?;
                }
                Err(ServiceError::LoginFailed)
            }
        }
    }

    /// The tenant a session token belongs to, while it lasts.
    pub fn web_session(&self, token: &str) -> Result<Option<TenantName>, ServiceError> {
        let hash = digest(token);
        match self.store.web_session(&hash)? {
            Some((tenant, expires)) if expires > self.now() => Ok(Some(tenant)),
            Some(_) => {
                self.store.remove_web_session(&hash)?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Ends a session.
    pub fn web_logout(&self, token: &str) -> Result<(), ServiceError> {
        let hash = digest(token);
        if let Some((tenant, _)) = self.store.web_session(&hash)? {
            self.store.remove_web_session(&hash)?;
            let mut ev = self
                .event("web.logout", Outcome::Ok)
                .tenant(tenant.as_str());
            ev.actor = format!("web:{tenant}");
            self.record(ev)?;
        }
        Ok(())
    }
}

impl Hostel {
    /// Records that a tenant's browser session was refused another tenant's page, socket or
    /// app (`web.denied`).
    pub fn web_denied(
        &self,
        tenant: &TenantName,
        target: &str,
        what: &str,
    ) -> Result<(), ServiceError> {
        let mut ev = self
            .event("web.denied", Outcome::Denied)
            .with("target", target)
            .with("what", what)
            .tenant(tenant.as_str());
        ev.actor = format!("web:{tenant}");
        self.record(ev)
    }
}

/// How long an admin's dashboard session lasts.
pub const ADMIN_SESSION_HOURS: i64 = 8;

impl Hostel {
    /// Signs an admin in to the dashboard with an API token: returns the token's record and a
    /// new session secret for the cookie. A wrong token counts toward a ban, like a failed
    /// login. Audited as `web.admin.auth`.
    pub fn admin_login(
        &self,
        token: &str,
        ip: Option<IpAddr>,
    ) -> Result<(TokenRecord, String), ServiceError> {
        let peer = ip
            .map(|i| i.to_string())
            .unwrap_or_else(|| "unknown".into());
        let Some(record) = self.token_verify(token)? else {
            let mut ev = self
                .event("web.admin.auth", Outcome::Denied)
                .with("peer", &peer)
                .with("reason", "unknown or revoked token");
            ev.actor = "web:unknown".into();
            self.record(ev)?;
            if let Some(ip) = ip {
                self.login_failed(ip, "web", None)?;
            }
            return Err(ServiceError::LoginFailed);
        };
        let session = random_token();
        let now = self.now();
        self.store.add_admin_session(
            &digest(&session),
            &record.name,
            now,
            now + Duration::hours(ADMIN_SESSION_HOURS),
        )?;
        let mut ev = self
            .event("web.admin.auth", Outcome::Ok)
            .with("peer", &peer);
        ev.actor = format!("api:{}", record.name);
        self.record(ev)?;
        Ok((record, session))
    }

    /// The token behind a dashboard session, while both hold.
    pub fn admin_session(&self, session: &str) -> Result<Option<TokenRecord>, ServiceError> {
        Ok(self
            .store
            .admin_session(&digest(session))?
            .filter(|(_, until)| *until > self.now())
            .map(|(t, _)| t))
    }

    /// Ends a dashboard session.
    pub fn admin_logout(&self, session: &str) -> Result<(), ServiceError> {
        Ok(self.store.remove_admin_session(&digest(session))?)
    }
}
