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

/// Failed logins per client address, in memory (a restart forgets counts, never bans: those
/// are in the store). Shared by the SSH gateway and the API, so both count against one limit.
#[derive(Debug, Default)]
pub struct FailureWindow {
    failures: std::sync::Mutex<
        std::collections::HashMap<IpAddr, std::collections::VecDeque<std::time::Instant>>,
    >,
}

impl FailureWindow {
    /// Records a failure; true when `ip` has now failed `limit` times within `window` (and
    /// forgets those failures, so one ban follows one burst). A `limit` of 0 never bans.
    pub fn fail(
        &self,
        ip: IpAddr,
        limit: u32,
        window: std::time::Duration,
        now: std::time::Instant,
    ) -> bool {
        if limit == 0 {
            return false;
        }
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let times = map.entry(ip).or_default();
        times.push_back(now);
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            times.pop_front();
        }
        if times.len() >= limit as usize {
            map.remove(&ip);
            return true;
        }
        false
    }
}

impl Hostel {
    /// Counts a failed login from `ip` at `via` (`ssh-gateway`, `api`); bans the address for
    /// `[ssh] ban_secs` when it failed `ban_after_failures` times within `ban_window_secs`.
    /// Returns whether it was banned now.
    pub fn login_failed(&self, ip: IpAddr, via: &str) -> Result<bool, ServiceError> {
        let cfg = &self.config.ssh;
        let window = std::time::Duration::from_secs(cfg.ban_window_secs);
        if !self.auth_failures.fail(
            ip,
            cfg.ban_after_failures,
            window,
            std::time::Instant::now(),
        ) {
            return Ok(false);
        }
        let reason = format!(
            "{} failed logins within {}s",
            cfg.ban_after_failures, cfg.ban_window_secs
        );
        let duration = Duration::seconds(i64::try_from(cfg.ban_secs).unwrap_or(i64::MAX));
        self.ban(ip, &reason, Some(duration), Some(via))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn failures_ban_at_the_limit_within_the_window() {
        let g = FailureWindow::default();
        let w = Duration::from_secs(60);
        let t = Instant::now();
        assert_eq!(
            [g.fail(A, 3, w, t), g.fail(A, 3, w, t), g.fail(B, 3, w, t)],
            [false, false, false]
        );
        assert!(g.fail(A, 3, w, t));
        assert!(!g.fail(A, 3, w, t), "counting starts over after a ban");
        assert!(!g.fail(A, 0, w, t), "0 never bans");
    }

    #[test]
    fn old_failures_fall_out_of_the_window() {
        let g = FailureWindow::default();
        let w = Duration::from_secs(10);
        let t = Instant::now();
        assert!(!g.fail(A, 2, w, t));
        assert!(!g.fail(A, 2, w, t + Duration::from_secs(11)));
        assert!(g.fail(A, 2, w, t + Duration::from_secs(12)));
    }
}
