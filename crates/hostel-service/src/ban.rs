//! Bans: addresses the SSH gateway refuses, set after repeated failed logins or by an admin.
//! Expired bans are lifted (and the unban audited) the next time the address is checked.

use crate::{Hostel, ServiceError};
use chrono::{DateTime, Duration, Utc};
use hostel_core::Outcome;
use hostel_store::Ban;
use std::net::IpAddr;

impl Hostel {
    /// Whether `ip` is banned now. Lifts an expired ban.
    pub fn is_banned(&self, ip: IpAddr) -> Result<bool, ServiceError> {
        let address = ip.to_string();
        let Some(ban) = self.store.ban(&address)? else {
            return Ok(false);
        };
        match ban.expires_at {
            Some(t) if t <= self.now() => {
                if self.store.remove_ban(&address)? {
                    self.record(
                        self.event("ssh.unban", Outcome::Ok)
                            .with("address", &address)
                            .with("reason", "expired"),
                    )?;
                }
                Ok(false)
            }
            _ => Ok(true),
        }
    }

    /// Bans `ip` for `duration` (`None`: until removed), as `actor`.
    pub fn ban(
        &self,
        ip: IpAddr,
        reason: &str,
        duration: Option<Duration>,
        actor: Option<&str>,
    ) -> Result<Ban, ServiceError> {
        let now = self.now();
        let ban = Ban {
            address: ip.to_string(),
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
        if let Some(a) = actor {
            ev.actor = a.to_owned();
        }
        self.record(ev)?;
        Ok(ban)
    }

    /// Lifts the ban on `ip`.
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
