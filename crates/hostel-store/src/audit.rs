//! The audit log: `logs/audit.jsonl`, one JSON record per line, appended and synced before the
//! action it records is acknowledged.
//!
//! Each record carries the hash of the one before it (`prev`) and its own (`hash`, SHA-256 over
//! `prev` and the record's canonical JSON), so an edited, removed or reordered line breaks the
//! chain and [`AuditLog::verify`] names it. Writers from several processes take an exclusive
//! `flock` around read-last-hash-and-append, so the chain stays linear.

use crate::StoreError;
use chrono::{DateTime, Utc};
use hostel_core::{AuditEvent, Outcome};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The `prev` of the first record.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// Hash of the previous record.
    pub prev: String,
    /// Hash of this record.
    pub hash: String,
}

/// Which records a query wants.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this tenant's.
    pub tenant: Option<String>,
    /// Only at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only failed or denied ones.
    pub failed: bool,
}

/// The append-only audit log file.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.display().to_string();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

fn hash_of(prev: &str, event: &AuditEvent) -> Result<String, StoreError> {
    let body = serde_json::to_string(event).map_err(|e| StoreError::AuditBroken {
        line: 0,
        reason: e.to_string(),
    })?;
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    Ok(hex::encode(h.finalize()))
}

impl AuditLog {
    /// The log at `path` (created on first append).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AuditLog { path: path.into() }
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event, synced to disk before returning.
    pub fn append(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(io("open audit log", &self.path))?;
        let mut file = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| io("lock audit log", &self.path)(errno.into()))?;
        let prev = last_hash(&mut file).map_err(io("read audit log", &self.path))?;
        let record = AuditRecord {
            event: event.clone(),
            hash: hash_of(&prev, event)?,
            prev,
        };
        let mut line = serde_json::to_string(&record).map_err(|e| StoreError::AuditBroken {
            line: 0,
            reason: e.to_string(),
        })?;
        line.push('\n');
        file.write_all(line.as_bytes())
            .map_err(io("append to audit log", &self.path))?;
        file.sync_data().map_err(io("sync audit log", &self.path))?;
        Ok(())
    }

    /// The records matching `filter`, oldest first. A missing log is empty.
    pub fn query(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let mut out = Vec::new();
        for (i, record) in self.records()?.into_iter().enumerate() {
            let record = record.map_err(|reason| StoreError::AuditBroken {
                line: i + 1,
                reason,
            })?;
            let e = &record.event;
            if filter
                .tenant
                .as_ref()
                .is_some_and(|t| e.tenant.as_ref() != Some(t))
                || filter.since.is_some_and(|s| e.time < s)
                || (filter.failed && e.outcome == Outcome::Ok)
            {
                continue;
            }
            out.push(record);
        }
        Ok(out)
    }

    /// Checks the whole chain; returns how many records it holds.
    pub fn verify(&self) -> Result<usize, StoreError> {
        let mut prev = GENESIS.to_owned();
        let records = self.records()?;
        let n = records.len();
        for (i, record) in records.into_iter().enumerate() {
            let line = i + 1;
            let record = record.map_err(|reason| StoreError::AuditBroken { line, reason })?;
            if record.prev != prev {
                return Err(StoreError::AuditBroken {
                    line,
                    reason: "does not follow the line before it (removed or reordered lines)"
                        .into(),
                });
            }
            if hash_of(&prev, &record.event)? != record.hash {
                return Err(StoreError::AuditBroken {
                    line,
                    reason: "content does not match its hash (edited)".into(),
                });
            }
            prev = record.hash;
        }
        Ok(n)
    }

    fn records(&self) -> Result<Vec<Result<AuditRecord, String>>, StoreError> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("open audit log", &self.path)(e)),
        };
        let mut out = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(io("read audit log", &self.path))?;
            out.push(serde_json::from_str(&line).map_err(|e| format!("not a record ({e})")));
        }
        Ok(out)
    }
}

/// The hash of the file's last record, or [`GENESIS`] for an empty file. Reads only the tail.
fn last_hash(file: &mut File) -> std::io::Result<String> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(GENESIS.to_owned());
    }
    let start = len.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = String::new();
    file.read_to_string(&mut tail)?;
    let last = tail
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let record: AuditRecord = serde_json::from_str(last).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("last audit record does not parse ({e}); run `hostel audit verify`"),
        )
    })?;
    Ok(record.hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: i64, tenant: &str, outcome: Outcome) -> AuditEvent {
        AuditEvent::new(
            DateTime::from_timestamp(1_700_000_000 + n, 0).unwrap(),
            "tenant.create",
            "cli:root",
            outcome,
        )
        .tenant(tenant)
    }

    #[test]
    fn appends_chain_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("audit.jsonl"));
        assert_eq!(log.verify().unwrap(), 0);
        log.append(&event(0, "alice", Outcome::Ok)).unwrap();
        log.append(&event(1, "bob", Outcome::Failed)).unwrap();
        log.append(&event(2, "alice", Outcome::Denied)).unwrap();
        assert_eq!(log.verify().unwrap(), 3);
        let all = log.query(&AuditFilter::default()).unwrap();
        assert_eq!(all[0].prev, GENESIS);
        assert_eq!(all[1].prev, all[0].hash);
        let alice = log
            .query(&AuditFilter {
                tenant: Some("alice".into()),
                ..AuditFilter::default()
            })
            .unwrap();
        assert_eq!(alice.len(), 2);
        let failed = log
            .query(&AuditFilter {
                failed: true,
                since: Some(DateTime::from_timestamp(1_700_000_002, 0).unwrap()),
                ..AuditFilter::default()
            })
            .unwrap();
        assert_eq!(
            failed
                .iter()
                .map(|r| r.event.tenant.clone())
                .collect::<Vec<_>>(),
            [Some("alice".into())]
        );
    }

    #[test]
    fn an_edited_or_removed_line_breaks_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::new(&path);
        for i in 0..3 {
            log.append(&event(i, "alice", Outcome::Ok)).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("alice", "mallory", 1)).unwrap();
        assert_eq!(
            log.verify().unwrap_err().to_string(),
            "audit log line 1: content does not match its hash (edited)"
        );
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&path, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        assert_eq!(
            log.verify().unwrap_err().to_string(),
            "audit log line 2: does not follow the line before it (removed or reordered lines)"
        );
    }
}
