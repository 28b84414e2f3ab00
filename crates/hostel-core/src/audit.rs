//! Audit events: the record of who did what to which tenant, with what outcome.
//!
//! Audit is data, not a log line: the store appends every event durably before the action it
//! records is acknowledged. Kind names carry a version (`tenant.create.v1`) so readers can evolve.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most characters an actor or a detail value keeps: much of what is audited comes from
/// whoever connects (a path, a user name, a command line), and one record must stay small
/// whatever they send. Longer values keep their start and say how long they were.
pub const MAX_VALUE_CHARS: usize = 256;

/// `value`, cut to [`MAX_VALUE_CHARS`] with a note of its full length.
fn bounded(value: String) -> String {
    match value.char_indices().nth(MAX_VALUE_CHARS) {
        None => value,
        Some((end, _)) => format!(
            "{}… ({} bytes in all)",
            value.get(..end).unwrap_or_default(),
            value.len()
        ),
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It happened.
    Ok,
    /// It was tried and failed.
    Failed,
    /// It was refused (authentication, authorization, ban).
    Denied,
}

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When it happened.
    pub time: DateTime<Utc>,
    /// Versioned kind, e.g. `tenant.create.v1`.
    pub kind: String,
    /// Who acted: `cli:root`, `ssh:alice`, `api:token-name`.
    pub actor: String,
    /// The tenant acted on, if any.
    pub tenant: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Extra facts (quota values, fingerprints, error codes); never secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub detail: BTreeMap<String, String>,
}

impl AuditEvent {
    /// An event of `action` (without version) by `actor` at `time`; the kind gets `.v1`.
    pub fn new(time: DateTime<Utc>, action: &str, actor: &str, outcome: Outcome) -> Self {
        AuditEvent {
            time,
            kind: format!("{action}.v1"),
            actor: bounded(actor.to_owned()),
            tenant: None,
            outcome,
            detail: BTreeMap::new(),
        }
    }

    /// Sets the tenant.
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.tenant = Some(tenant.to_owned());
        self
    }

    /// Adds one detail, bounded (see [`MAX_VALUE_CHARS`]).
    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.detail
            .insert(key.to_owned(), bounded(value.to_string()));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (#12): unauthenticated requests with 60 KB paths wrote 60 KB audit records,
    /// 130 a second.
    #[test]
    fn issue_12_values_from_outside_are_bounded() {
        let path = format!("/api/{}", "é".repeat(30_000));
        let ev = AuditEvent::new(Utc::now(), "api.auth", &"x".repeat(1000), Outcome::Denied)
            .with("path", &path)
            .with("short", "ok");
        assert_eq!(ev.detail["short"], "ok");
        let kept = &ev.detail["path"];
        assert!(kept.starts_with("/api/éé"), "{kept}");
        assert!(kept.ends_with("… (60005 bytes in all)"), "{kept}");
        assert_eq!(
            kept.chars().count(),
            MAX_VALUE_CHARS + "… (60005 bytes in all)".len() - 2
        );
        assert!(ev.actor.len() < 300, "{}", ev.actor.len());
    }

    #[test]
    fn builder_sets_versioned_kind_and_details() {
        let t = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
        let e = AuditEvent::new(t, "tenant.create", "cli:root", Outcome::Ok)
            .tenant("alice")
            .with("memory", "1GiB");
        assert_eq!(e.kind, "tenant.create.v1");
        assert_eq!(e.tenant.as_deref(), Some("alice"));
        assert_eq!(e.detail.get("memory").map(String::as_str), Some("1GiB"));
    }
}
