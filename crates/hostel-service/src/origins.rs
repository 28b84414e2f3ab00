//! Origins of their own for tenants' apps (`[http] domain`): the ports a tenant publishes at
//! `PORT--T.D`, and the one-time tickets that carry a browser's sign-in from hostel's own
//! origin `D` to an app's, where it becomes a session of that origin alone.

use crate::{Hostel, ServiceError};
use chrono::Duration;
use hostel_core::{Outcome, TenantName};
use hostel_store::PublishedPort;
use std::net::IpAddr;

/// How long a ticket works: it is used by the redirect right after it is made.
const TICKET_SECS: i64 = 60;
/// The most tickets kept unused at once; the oldest go first.
const MAX_TICKETS: usize = 10_000;

/// Tickets not yet used, by the digest of their token.
#[derive(Debug, Default)]
pub(crate) struct Tickets(std::sync::Mutex<std::collections::HashMap<String, Ticket>>);

#[derive(Debug, Clone)]
struct Ticket {
    tenant: TenantName,
    /// The app origin's host name it was made for.
    host: String,
    expires_at: chrono::DateTime<chrono::Utc>,
}

impl Hostel {
    /// Publishes `port` of `name` at `PORT--name.<domain>`: to the tenant's own browser
    /// session, or to anyone when `public`. Publishing again changes only `public`.
    pub fn port_publish(
        &self,
        name: &TenantName,
        port: u16,
        public: bool,
    ) -> Result<PublishedPort, ServiceError> {
        let result = (|| {
            if self.config.http.domain.is_none() {
                return Err(ServiceError::NoDomain {
                    tenant: name.to_string(),
                });
            }
            if port == 0 {
                return Err(ServiceError::InvalidPort {
                    port: port.to_string(),
                });
            }
            let p = PublishedPort {
                tenant: name.clone(),
                port,
                public,
                created_at: self.now(),
            };
            self.store.publish_port(&p)?;
            Ok(p)
        })();
        let ev = match &result {
            Ok(_) => self.event("port.publish", Outcome::Ok),
            Err(e) => self
                .event("port.publish", Outcome::Failed)
                .with("error", e.code()),
        };
        self.record(
            ev.tenant(name.as_str())
                .with("port", port.to_string())
                .with("public", public.to_string()),
        )?;
        result
    }

    /// Withdraws a published port.
    pub fn port_unpublish(&self, name: &TenantName, port: u16) -> Result<(), ServiceError> {
        let result = (|| {
            self.store.require(name)?;
            if !self.store.unpublish_port(name, port)? {
                return Err(ServiceError::PortNotPublished {
                    tenant: name.to_string(),
                    port,
                });
            }
            Ok(())
        })();
        let ev = match &result {
            Ok(()) => self.event("port.unpublish", Outcome::Ok),
            Err(e) => self
                .event("port.unpublish", Outcome::Failed)
                .with("error", e.code()),
        };
        self.record(ev.tenant(name.as_str()).with("port", port.to_string()))?;
        result
    }

    /// The ports a tenant publishes.
    pub fn ports(&self, name: &TenantName) -> Result<Vec<PublishedPort>, ServiceError> {
        self.store.require(name)?;
        Ok(self.store.published_ports(name)?)
    }

    /// The published port `port` of `name`, if it is one.
    pub fn published_port(
        &self,
        name: &TenantName,
        port: u16,
    ) -> Result<Option<PublishedPort>, ServiceError> {
        Ok(self
            .store
            .published_ports(name)?
            .into_iter()
            .find(|p| p.port == port))
    }

    /// Wakes the workspace of `name` for a request to its published `port`, which the caller
    /// then reaches through [`Hostel::workspace_connect`].
    pub async fn port_endpoint(&self, name: &TenantName, port: u16) -> Result<u16, ServiceError> {
        let t = self.store.require(name)?;
        if self.published_port(name, port)?.is_none() {
            return Err(ServiceError::PortNotPublished {
                tenant: name.to_string(),
                port,
            });
        }
        self.ensure_running(&t, &crate::Quiet).await?;
        Ok(port)
    }

    /// A one-time ticket, good for a minute, that signs a browser in as `tenant` on the app
    /// origin `host` (and nowhere else). The browser must be signed in as `tenant` on
    /// hostel's own origin to get one.
    pub fn app_ticket(&self, tenant: &TenantName, host: &str) -> hostel_core::Secret<String> {
        let token = crate::web::random_token();
        let now = self.now();
        let mut map = self.tickets.0.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, t| t.expires_at > now);
        if map.len() >= MAX_TICKETS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, t)| t.expires_at)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            crate::web::digest(&token),
            Ticket {
                tenant: tenant.clone(),
                host: host.to_ascii_lowercase(),
                expires_at: now + Duration::seconds(TICKET_SECS),
            },
        );
        hostel_core::Secret::new(token)
    }

    /// Uses a ticket on the app origin `host`: a session of that origin for its tenant, or
    /// [`ServiceError::LoginFailed`] for an unknown, used, expired or foreign one.
    pub fn redeem_app_ticket(
        &self,
        ticket: &str,
        host: &str,
        peer: Option<IpAddr>,
    ) -> Result<(TenantName, hostel_core::Secret<String>), ServiceError> {
        let found = self
            .tickets
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&crate::web::digest(ticket));
        let peer = peer
            .map(|i| i.to_string())
            .unwrap_or_else(|| "unknown".into());
        match found {
            Some(t) if t.expires_at > self.now() && t.host == host.to_ascii_lowercase() => {
                let session = self.new_session(&t.tenant, &peer, &format!("ticket:{}", t.host))?;
                Ok((t.tenant, session))
            }
            _ => {
                let mut ev = self
                    .event("web.auth", Outcome::Denied)
                    .with("peer", &peer)
                    .with("reason", "unknown, used, expired or foreign app ticket");
                ev.actor = "web:unknown".into();
                self.record(ev)?;
                Err(ServiceError::LoginFailed)
            }
        }
    }
}
