//! Bans: addresses the SSH gateway refuses, set after repeated failed logins or by an admin.
//! Expired bans are lifted (and the unban audited) the next time the address is checked.

use crate::{Hostel, ServiceError};
use chrono::{DateTime, Duration, Utc};
use hostel_core::{Outcome, TenantName};
use hostel_store::Ban;
use std::net::IpAddr;

impl Hostel {
    /// Whether `ip` is banned now for everything. Lifts an expired ban.
    pub fn is_banned(&self, ip: IpAddr) -> Result<bool, ServiceError> {
        self.banned_as(ip, None)
    }

    /// Whether `ip` may not log in as `name` now: banned for everything, or for that tenant.
    /// Lifts expired bans.
    pub fn is_banned_as(&self, ip: IpAddr, name: &str) -> Result<bool, ServiceError> {
        let tenant = name.parse::<TenantName>().ok();
        self.banned_as(ip, tenant.as_ref().map(TenantName::as_str))
    }

    fn banned_as(&self, ip: IpAddr, tenant: Option<&str>) -> Result<bool, ServiceError> {
        let address = ip.to_string();
        let now = self.now();
        let mut banned = false;
        for ban in self.store.bans_of(&address, tenant)? {
            match ban.expires_at {
                Some(t) if t <= now => {
                    if self.store.remove_ban_of(&address, ban.tenant.as_deref())? {
                        let mut ev = self
                            .event("ssh.unban", Outcome::Ok)
                            .with("address", &address)
                            .with("reason", "expired");
                        if let Some(t) = &ban.tenant {
                            ev = ev.tenant(t);
                        }
                        self.record(ev)?;
                    }
                }
                _ => banned = true,
            }
        }
        Ok(banned)
    }

    /// Bans `ip` for everything, for `duration` (`None`: until removed), as `actor`.
    pub fn ban(
        &self,
        ip: IpAddr,
        reason: &str,
        duration: Option<Duration>,
        actor: Option<&str>,
    ) -> Result<Ban, ServiceError> {
        self.ban_as(ip, None, reason, duration, actor)
    }

    fn ban_as(
        &self,
        ip: IpAddr,
        tenant: Option<&TenantName>,
        reason: &str,
        duration: Option<Duration>,
        actor: Option<&str>,
    ) -> Result<Ban, ServiceError> {
        let now = self.now();
        let ban = Ban {
            address: ip.to_string(),
            tenant: tenant.map(ToString::to_string),
            reason: reason.to_owned(),
            created_at: now,
            expires_at: duration.map(|d| now + d),
        };
        self.store.add_ban(&ban)?;
        let mut ev = self
            .event("ssh.ban", Outcome::Ok)
            .with("address", &ban.address)
            .with("reason", reason);
        if let Some(t) = ban.expires_at {
            ev = ev.with("until", t.to_rfc3339());
        }
        if let Some(t) = tenant {
            ev = ev.tenant(t.as_str());
        }
        if let Some(a) = actor {
            ev.actor = a.to_owned();
        }
        self.record(ev)?;
        Ok(ban)
    }

    /// Lifts every ban of `ip` (for everything and for single tenants).
    pub fn unban(&self, ip: IpAddr) -> Result<(), ServiceError> {
        let address = ip.to_string();
        let removed = self.store.remove_ban(&address)?;
        let outcome = if removed {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        self.record(
            self.event("ssh.unban", outcome)
                .with("address", &address)
                .with("reason", "admin"),
        )?;
        if !removed {
            return Err(ServiceError::NotBanned { address });
        }
        Ok(())
    }

    /// Bans in force (expired ones are left out).
    pub fn bans(&self) -> Result<Vec<Ban>, ServiceError> {
        let now: DateTime<Utc> = self.now();
        Ok(self
            .store
            .bans()?
            .into_iter()
            .filter(|b| b.expires_at.is_none_or(|t| t > now))
            .collect())
    }
}

/// Failed logins per client address, and per address and tenant, in memory (a restart
/// forgets counts, never bans: those are in the store). Shared by the SSH gateway, the web
/// sign-in and the API, so all count against one limit.
#[derive(Debug, Default)]
pub struct FailureWindow {
    failures: std::sync::Mutex<std::collections::HashMap<FailureKey, FailureTimes>>,
}

/// Whose failures: an address, as one tenant or of any kind (`None`).
type FailureKey = (IpAddr, Option<TenantName>);
/// When, oldest first.
type FailureTimes = std::collections::VecDeque<std::time::Instant>;

impl FailureWindow {
    /// Records a failure of `ip` as `tenant` (`None`: of any kind); true when that has now
    /// happened `limit` times within `window` (and forgets those failures, so one ban follows
    /// one burst). A `limit` of 0 never bans.
    pub fn fail(
        &self,
        ip: IpAddr,
        tenant: Option<&TenantName>,
        limit: u32,
        window: std::time::Duration,
        now: std::time::Instant,
    ) -> bool {
        if limit == 0 {
            return false;
        }
        let key = (ip, tenant.cloned());
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let times = map.entry(key.clone()).or_default();
        times.push_back(now);
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            times.pop_front();
        }
        if times.len() >= limit as usize {
            map.remove(&key);
            return true;
        }
        false
    }
}

impl Hostel {
    /// Counts a failed login from `ip` at `via` (`ssh-gateway`, `web`, `api`), as `name` when
    /// the client named whom it logs in as. `ban_after_failures` failures as one tenant within
    /// `ban_window_secs` ban the address for that tenant; `ban_address_after_failures` of any
    /// kind ban it for everything; each for `[ssh] ban_secs`. A name that is no tenant name
    /// counts only toward the address. Returns whether a ban was set now.
    pub fn login_failed(
        &self,
        ip: IpAddr,
        via: &str,
        name: Option<&str>,
    ) -> Result<bool, ServiceError> {
        let cfg = &self.config.ssh;
        let window = std::time::Duration::from_secs(cfg.ban_window_secs);
        let now = std::time::Instant::now();
        let duration = Duration::seconds(i64::try_from(cfg.ban_secs).unwrap_or(i64::MAX));
        let tenant = name.and_then(|n| n.parse::<TenantName>().ok());
        if self
            .auth_failures
            .fail(ip, None, cfg.ban_address_after_failures, window, now)
        {
            let reason = format!(
                "{} failed logins within {}s",
                cfg.ban_address_after_failures, cfg.ban_window_secs
            );
            self.ban(ip, &reason, Some(duration), Some(via))?;
            return Ok(true);
        }
        let Some(tenant) = tenant else {
            return Ok(false);
        };
        if !self
            .auth_failures
            .fail(ip, Some(&tenant), cfg.ban_after_failures, window, now)
        {
            return Ok(false);
        }
        let reason = format!(
            "{} failed logins as {tenant} within {}s",
            cfg.ban_after_failures, cfg.ban_window_secs
        );
        self.ban_as(ip, Some(&tenant), &reason, Some(duration), Some(via))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn alice() -> TenantName {
        "alice".parse().unwrap()
    }

    #[test]
    fn failures_ban_at_the_limit_within_the_window() {
        let g = FailureWindow::default();
        let w = Duration::from_secs(60);
        let t = Instant::now();
        let al = alice();
        assert_eq!(
            [
                g.fail(A, None, 3, w, t),
                g.fail(A, None, 3, w, t),
                g.fail(B, None, 3, w, t),
                g.fail(A, Some(&al), 3, w, t),
            ],
            [false, false, false, false]
        );
        assert!(g.fail(A, None, 3, w, t));
        assert!(
            !g.fail(A, None, 3, w, t),
            "counting starts over after a ban"
        );
        assert!(!g.fail(A, None, 0, w, t), "0 never bans");
        assert!(
            !g.fail(A, Some(&al), 3, w, t),
            "a tenant's count is its own"
        );
        assert!(g.fail(A, Some(&al), 3, w, t));
    }

    #[test]
    fn old_failures_fall_out_of_the_window() {
        let g = FailureWindow::default();
        let w = Duration::from_secs(10);
        let t = Instant::now();
        assert!(!g.fail(A, None, 2, w, t));
        assert!(!g.fail(A, None, 2, w, t + Duration::from_secs(11)));
        assert!(g.fail(A, None, 2, w, t + Duration::from_secs(12)));
    }
}
