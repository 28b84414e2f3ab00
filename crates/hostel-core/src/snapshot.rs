//! Snapshots of a tenant's data: their names, the schedule that takes them by itself, and which
//! scheduled snapshots a schedule keeps. Pure decisions; the service takes and removes them.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Names of the snapshots a schedule takes start with this; no other name may.
pub const AUTO_PREFIX: &str = "auto-";

/// A snapshot's name: 1 to 40 of `a-z`, `0-9` and `-`, starting with a letter or digit. Names
/// starting with `auto-` are the schedule's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SnapshotName(String);

/// A string that is not a snapshot name, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid snapshot name {name:?}: {reason} (use 1 to 40 of a-z, 0-9 and '-', starting with \
     a letter or digit)"
)]
pub struct SnapshotNameError {
    /// The refused name.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl SnapshotName {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a schedule took it.
    pub fn is_auto(&self) -> bool {
        self.0.starts_with(AUTO_PREFIX)
    }

    /// The name a schedule gives the snapshot it takes at `at`.
    pub fn auto(at: DateTime<Utc>) -> SnapshotName {
        SnapshotName(format!("{AUTO_PREFIX}{}", at.format("%Y%m%d-%H%M%S")))
    }

    /// When a schedule took it, read from its name; `None` for a name a person gave.
    pub fn auto_taken_at(&self) -> Option<DateTime<Utc>> {
        let stamp = self.0.strip_prefix(AUTO_PREFIX)?;
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%d-%H%M%S")
            .ok()
            .map(|t| t.and_utc())
    }

    /// The name an unnamed snapshot taken at `at` gets.
    pub fn at(at: DateTime<Utc>) -> SnapshotName {
        SnapshotName(at.format("%Y%m%d-%H%M%S").to_string())
    }

    /// Parses a name a person gave: the schedule's prefix is refused.
    pub fn chosen(s: &str) -> Result<SnapshotName, SnapshotNameError> {
        let name: SnapshotName = s.parse()?;
        if name.is_auto() {
            return Err(SnapshotNameError {
                name: s.to_owned(),
                reason: "names starting with \"auto-\" are kept for scheduled snapshots",
            });
        }
        Ok(name)
    }
}

impl FromStr for SnapshotName {
    type Err = SnapshotNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| {
            Err(SnapshotNameError {
                name: s.to_owned(),
                reason,
            })
        };
        if s.is_empty() {
            return fail("empty name");
        }
        if s.len() > 40 {
            return fail("longer than 40 chars");
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return fail("does not start with a lowercase letter or a digit");
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return fail("has a char other than a-z, 0-9, '-'");
        }
        Ok(SnapshotName(s.to_owned()))
    }
}

impl TryFrom<String> for SnapshotName {
    type Error = SnapshotNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<SnapshotName> for String {
    fn from(n: SnapshotName) -> String {
        n.0
    }
}

impl fmt::Display for SnapshotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How often a schedule takes a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Every {
    /// Once an hour.
    Hourly,
    /// Once a day.
    Daily,
    /// Once a week.
    Weekly,
}

impl Every {
    /// The name used in the store, the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Every::Hourly => "hourly",
            Every::Daily => "daily",
            Every::Weekly => "weekly",
        }
    }

    /// The time between two snapshots.
    pub fn period(self) -> Duration {
        match self {
            Every::Hourly => Duration::hours(1),
            Every::Daily => Duration::days(1),
            Every::Weekly => Duration::weeks(1),
        }
    }
}

impl FromStr for Every {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hourly" => Ok(Every::Hourly),
            "daily" => Ok(Every::Daily),
            "weekly" => Ok(Every::Weekly),
            other => Err(format!(
                "unknown schedule {other:?} (use hourly, daily, weekly or off)"
            )),
        }
    }
}

impl fmt::Display for Every {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tenant's snapshot schedule: one snapshot every period, the newest `keep` kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// How often.
    pub every: Every,
    /// How many scheduled snapshots stay; older ones go.
    pub keep: u32,
}

/// Whether a schedule takes a snapshot at `now`, given when its newest one was taken.
pub fn due(schedule: &Schedule, newest_auto: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    newest_auto.is_none_or(|t| now - t >= schedule.every.period())
}

/// The scheduled snapshots (name, taken at) a schedule keeping `keep` removes: all but the
/// newest `keep`, oldest first. Snapshots a person named are never among them.
pub fn to_prune(snapshots: &[(SnapshotName, DateTime<Utc>)], keep: u32) -> Vec<SnapshotName> {
    let mut autos: Vec<&(SnapshotName, DateTime<Utc>)> =
        snapshots.iter().filter(|(n, _)| n.is_auto()).collect();
    autos.sort_by_key(|(n, t)| (*t, n.clone()));
    let keep = usize::try_from(keep).unwrap_or(usize::MAX);
    let excess = autos.len().saturating_sub(keep);
    autos
        .into_iter()
        .take(excess)
        .map(|(n, _)| n.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn names_follow_the_rule_and_auto_is_kept_for_the_schedule() {
        for ok in ["a", "before-upgrade", "20261207-1200", &"x".repeat(40)] {
            assert_eq!(ok.parse::<SnapshotName>().unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "-a",
            "A",
            "a b",
            "a/b",
            "..",
            "a.b",
            "a_b",
            &"x".repeat(41),
        ] {
            assert!(bad.parse::<SnapshotName>().is_err(), "{bad:?}");
        }
        let e = SnapshotName::chosen("auto-x").unwrap_err();
        assert!(e.to_string().contains("scheduled"), "{e}");
        assert!(SnapshotName::auto(t(0)).is_auto());
        assert!(!SnapshotName::at(t(0)).is_auto());
        assert_eq!(SnapshotName::auto(t(0)).as_str(), "auto-20270115-080000");
        assert_eq!(SnapshotName::auto(t(0)).auto_taken_at(), Some(t(0)));
        assert_eq!(SnapshotName::at(t(0)).auto_taken_at(), None);
    }

    #[test]
    fn a_schedule_is_due_once_a_period() {
        let daily = Schedule {
            every: Every::Daily,
            keep: 7,
        };
        assert!(due(&daily, None, t(0)));
        assert!(!due(&daily, Some(t(0)), t(86_399)));
        assert!(due(&daily, Some(t(0)), t(86_400)));
        let hourly = Schedule {
            every: Every::Hourly,
            keep: 1,
        };
        assert!(due(&hourly, Some(t(0)), t(3600)));
        assert_eq!("weekly".parse::<Every>(), Ok(Every::Weekly));
        assert!("monthly".parse::<Every>().unwrap_err().contains("daily"));
    }

    #[test]
    fn pruning_keeps_the_newest_scheduled_and_every_named_snapshot() {
        let n = |s: &str| s.parse::<SnapshotName>().unwrap();
        let snaps = vec![
            (n("auto-3"), t(30)),
            (n("mine"), t(0)),
            (n("auto-1"), t(10)),
            (n("auto-2"), t(20)),
        ];
        assert_eq!(to_prune(&snaps, 2), vec![n("auto-1")]);
        assert_eq!(
            to_prune(&snaps, 0),
            vec![n("auto-1"), n("auto-2"), n("auto-3")]
        );
        assert!(to_prune(&snaps, 3).is_empty());
        assert!(to_prune(&[(n("mine"), t(0))], 0).is_empty());
    }
}
