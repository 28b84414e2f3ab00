//! Lifecycle policies: when a workspace stops by itself (idle), when a tenant's time is up
//! (TTL, and with `ephemeral` its home goes too). Pure decisions; the daemon's reaper acts.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// A tenant's policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Policy {
    /// When the tenant's time is up, if it has a TTL.
    pub expires_at: Option<DateTime<Utc>>,
    /// At expiry, purge (home included) rather than only delete the workspace.
    pub ephemeral: bool,
    /// Start the workspace when the daemon starts.
    pub autostart: bool,
    /// Stop the workspace after this long without sessions or CPU use; `None`: the default;
    /// `Some(0)`: never.
    pub idle_stop_secs: Option<u64>,
}

/// What the tenant looks like to the reaper right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// The workspace runs.
    pub running: bool,
    /// The workspace container exists.
    pub exists: bool,
    /// Open SSH sessions and API calls.
    pub sessions: u32,
    /// Last session or command start or end.
    pub last_active: DateTime<Utc>,
    /// Whether it used CPU (beyond a trickle) since the reaper last looked.
    pub busy: bool,
}

/// What the reaper does to a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    Keep,
    /// Stop the workspace; data kept, next connection wakes it.
    Stop,
    /// Remove the workspace container; home and keys kept.
    Delete,
    /// Remove the tenant entirely.
    Purge,
}

/// Decides what to do with a tenant at `now`. `default_idle` is `[lifecycle] idle_stop_secs`
/// (0: never).
pub fn decide(policy: &Policy, seen: &Observed, now: DateTime<Utc>, default_idle: u64) -> Action {
    if policy.expires_at.is_some_and(|t| t <= now) {
        if policy.ephemeral {
            return Action::Purge;
        }
        return if seen.exists {
            Action::Delete
        } else {
            Action::Keep
        };
    }
    let idle = policy.idle_stop_secs.unwrap_or(default_idle);
    if idle == 0 || !seen.running || seen.sessions > 0 || seen.busy {
        return Action::Keep;
    }
    let quiet_for = now - seen.last_active;
    if quiet_for >= Duration::seconds(i64::try_from(idle).unwrap_or(i64::MAX)) {
        return Action::Stop;
    }
    Action::Keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn seen(running: bool, sessions: u32, last: i64, busy: bool) -> Observed {
        Observed {
            running,
            exists: true,
            sessions,
            last_active: t(last),
            busy,
        }
    }

    #[test]
    fn expiry_deletes_or_purges() {
        let p = Policy {
            expires_at: Some(t(100)),
            ..Policy::default()
        };
        assert_eq!(
            decide(&p, &seen(true, 3, 99, true), t(99), 60),
            Action::Keep
        );
        assert_eq!(
            decide(&p, &seen(true, 3, 99, true), t(100), 60),
            Action::Delete
        );
        let gone = Observed {
            exists: false,
            ..seen(false, 0, 0, false)
        };
        assert_eq!(decide(&p, &gone, t(200), 60), Action::Keep);
        let e = Policy {
            ephemeral: true,
            ..p
        };
        assert_eq!(decide(&e, &gone, t(200), 60), Action::Purge);
    }

    #[test]
    fn idle_stop_needs_quiet_time_no_sessions_and_no_cpu() {
        let p = Policy::default();
        assert_eq!(
            decide(&p, &seen(true, 0, 0, false), t(60), 60),
            Action::Stop
        );
        assert_eq!(
            decide(&p, &seen(true, 0, 0, false), t(59), 60),
            Action::Keep
        );
        assert_eq!(
            decide(&p, &seen(true, 1, 0, false), t(600), 60),
            Action::Keep
        );
        assert_eq!(
            decide(&p, &seen(true, 0, 0, true), t(600), 60),
            Action::Keep
        );
        assert_eq!(
            decide(&p, &seen(false, 0, 0, false), t(600), 60),
            Action::Keep
        );
        assert_eq!(
            decide(&p, &seen(true, 0, 0, false), t(600), 0),
            Action::Keep
        );
        let never = Policy {
            idle_stop_secs: Some(0),
            ..p
        };
        assert_eq!(
            decide(&never, &seen(true, 0, 0, false), t(600), 60),
            Action::Keep
        );
        let short = Policy {
            idle_stop_secs: Some(5),
            ..p
        };
        assert_eq!(
            decide(&short, &seen(true, 0, 0, false), t(5), 0),
            Action::Stop
        );
    }

    proptest! {
        #[test]
        fn a_live_session_or_busy_cpu_never_stops_it(sessions in 1u32..10, last in 0i64..10_000, now in 0i64..100_000) {
            let p = Policy::default();
            prop_assert_eq!(decide(&p, &seen(true, sessions, last, false), t(now), 1), Action::Keep);
            prop_assert_eq!(decide(&p, &seen(true, 0, last, true), t(now), 1), Action::Keep);
        }
    }
}

/// A duration as people write it: `90s`, `30m`, `1h`, `7d`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError {
        input: s.to_owned(),
    };
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.checked_mul(60).ok_or_else(bad)?,
        "h" => n.checked_mul(3600).ok_or_else(bad)?,
        "d" => n.checked_mul(86400).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    Duration::try_seconds(secs).ok_or_else(bad)
}

/// Lifecycle settings as `create` takes them that do not make a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A duration that does not parse.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// `ephemeral` without a TTL.
    #[error("ephemeral needs a ttl: the home goes when the time is up")]
    EphemeralWithoutTtl,
}

impl Policy {
    /// The policy from `create`'s settings: `ttl` and `idle_stop` as durations (`90s`, `30m`,
    /// `1h`, `7d`; idle stop `0`: never), the expiry counted from `now`.
    pub fn from_settings(
        ttl: Option<&str>,
        ephemeral: bool,
        autostart: bool,
        idle_stop: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Policy, PolicyError> {
        if ephemeral && ttl.is_none() {
            return Err(PolicyError::EphemeralWithoutTtl);
        }
        Ok(Policy {
            expires_at: ttl.map(parse_duration).transpose()?.map(|d| now + d),
            ephemeral,
            autostart,
            idle_stop_secs: idle_stop
                .map(parse_duration)
                .transpose()?
                .map(|d| u64::try_from(d.num_seconds()).unwrap_or(0)),
        })
    }
}

/// A change to a tenant's policies, as `set` takes it: each `None` keeps what is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PolicyChange {
    /// A new time to live counted from now; `Some(None)` removes the TTL.
    pub ttl: Option<Option<Duration>>,
    /// Purge at expiry, or only delete the workspace.
    pub ephemeral: Option<bool>,
    /// Start with the daemon.
    pub autostart: Option<bool>,
    /// Idle stop; `Some(None)` goes back to the configured default.
    pub idle_stop_secs: Option<Option<u64>>,
}

impl PolicyChange {
    /// Reads `set`'s settings: `ttl` a duration or `none`, `idle_stop` a duration, `0` (never)
    /// or `default`.
    pub fn from_settings(
        ttl: Option<&str>,
        ephemeral: Option<bool>,
        autostart: Option<bool>,
        idle_stop: Option<&str>,
    ) -> Result<PolicyChange, PolicyError> {
        Ok(PolicyChange {
            ttl: ttl
                .map(|t| match t {
                    "none" => Ok(None),
                    t => parse_duration(t).map(Some),
                })
                .transpose()?,
            ephemeral,
            autostart,
            idle_stop_secs: idle_stop
                .map(|t| match t {
                    "default" => Ok(None),
                    t => {
                        parse_duration(t).map(|d| Some(u64::try_from(d.num_seconds()).unwrap_or(0)))
                    }
                })
                .transpose()?,
        })
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == PolicyChange::default()
    }

    /// The policy after the change, with a new TTL counted from `now`. An ephemeral tenant
    /// needs a TTL, so removing the TTL of one also makes it not ephemeral only when asked.
    pub fn apply(&self, current: &Policy, now: DateTime<Utc>) -> Result<Policy, PolicyError> {
        let next = Policy {
            expires_at: match self.ttl {
                Some(ttl) => ttl.map(|d| now + d),
                None => current.expires_at,
            },
            ephemeral: self.ephemeral.unwrap_or(current.ephemeral),
            autostart: self.autostart.unwrap_or(current.autostart),
            idle_stop_secs: self.idle_stop_secs.unwrap_or(current.idle_stop_secs),
        };
        if next.ephemeral && next.expires_at.is_none() {
            return Err(PolicyError::EphemeralWithoutTtl);
        }
        Ok(next)
    }
}

/// A duration that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("duration {input:?}: a number with s, m, h or d (e.g. 90s, 30m, 1h, 7d)")]
pub struct DurationError {
    /// The rejected input.
    pub input: String,
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn settings_make_a_policy() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let p = Policy::from_settings(Some("1h"), true, true, Some("0"), now).unwrap();
        assert_eq!(
            p,
            Policy {
                expires_at: Some(now + Duration::hours(1)),
                ephemeral: true,
                autostart: true,
                idle_stop_secs: Some(0),
            }
        );
        assert_eq!(
            Policy::from_settings(None, true, false, None, now),
            Err(PolicyError::EphemeralWithoutTtl)
        );
        assert!(matches!(
            Policy::from_settings(Some("soon"), false, false, None, now),
            Err(PolicyError::Duration(_))
        ));
    }

    #[test]
    fn durations_parse() {
        let table = [
            ("90s", 90),
            ("30m", 1800),
            ("1h", 3600),
            ("7d", 604_800),
            ("45", 45),
        ];
        for (input, secs) in table {
            assert_eq!(
                parse_duration(input).map(|d| d.num_seconds()),
                Ok(secs),
                "{input}"
            );
        }
        for bad in ["", "h", "1w", "-1h", "1.5h", "99999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod change_tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    #[test]
    fn an_empty_change_keeps_everything() {
        let p = Policy {
            expires_at: Some(at(500)),
            ephemeral: true,
            autostart: true,
            idle_stop_secs: Some(60),
        };
        let c = PolicyChange::from_settings(None, None, None, None).unwrap();
        assert!(c.is_empty());
        assert_eq!(c.apply(&p, at(100)).unwrap(), p);
    }

    #[test]
    fn a_ttl_counts_from_now_and_none_removes_it() {
        let c = PolicyChange::from_settings(Some("1h"), None, None, None).unwrap();
        let p = c.apply(&Policy::default(), at(100)).unwrap();
        assert_eq!(p.expires_at, Some(at(3700)));
        let clear = PolicyChange::from_settings(Some("none"), None, None, None).unwrap();
        assert_eq!(clear.apply(&p, at(200)).unwrap().expires_at, None);
    }

    #[test]
    fn ephemeral_without_a_ttl_is_refused() {
        let p = Policy {
            expires_at: Some(at(500)),
            ephemeral: true,
            ..Policy::default()
        };
        let clear = PolicyChange::from_settings(Some("none"), None, None, None).unwrap();
        assert_eq!(
            clear.apply(&p, at(1)),
            Err(PolicyError::EphemeralWithoutTtl)
        );
        let both = PolicyChange::from_settings(Some("none"), Some(false), None, None).unwrap();
        assert_eq!(both.apply(&p, at(1)).unwrap(), Policy::default());
        let eph = PolicyChange::from_settings(None, Some(true), None, None).unwrap();
        assert!(eph.apply(&Policy::default(), at(1)).is_err());
    }

    #[test]
    fn idle_stop_takes_a_duration_zero_or_default() {
        let set = |s| PolicyChange::from_settings(None, None, None, Some(s));
        assert_eq!(set("10m").unwrap().idle_stop_secs, Some(Some(600)));
        assert_eq!(set("0").unwrap().idle_stop_secs, Some(Some(0)));
        assert_eq!(set("default").unwrap().idle_stop_secs, Some(None));
        assert!(set("soon").is_err());
        assert!(PolicyChange::from_settings(Some("later"), None, None, None).is_err());
    }
}
