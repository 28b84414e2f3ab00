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

    /// Appends one event, synced to disk before returning. A write that fails is taken back
    /// (the file is cut to where it was), so a failed append leaves no half line behind; a half
    /// line left by a process that died mid-write is moved to `<log>.torn` and noted in an
    /// `audit.repaired` record before the event.
    pub fn append(&self, event: &AuditEvent) -> Result<(), StoreError> {
        crate::blocking(|| self.append_now(event))
    }

    fn append_now(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(io("open audit log", &self.path))?;
        let mut file = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| io("lock audit log", &self.path)(errno.into()))?;
        let (mut prev, torn) = self.tail(&mut file)?;
        let mut events = Vec::new();
        if torn > 0 {
            events.push(
                AuditEvent::new(event.time, "audit.repaired", "hostel", Outcome::Ok)
                    .with("torn_bytes", torn)
                    .with("moved_to", self.torn_path().display().to_string()),
            );
        }
        events.push(event.clone());
        let mut text = String::new();
        for e in events {
            let record = AuditRecord {
                hash: hash_of(&prev, &e)?,
                prev,
                event: e,
            };
            text.push_str(&serde_json::to_string(&record).map_err(|e| {
                StoreError::AuditBroken {
                    line: 0,
                    reason: e.to_string(),
                }
            })?);
            text.push('\n');
            prev = record.hash;
        }
        let len = file
            .seek(SeekFrom::End(0))
            .map_err(io("read audit log", &self.path))?;
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_data());
        if let Err(e) = written {
            // Best effort: with the disk full the cut itself frees the space it needs.
            let _ = file.set_len(len).and_then(|()| file.sync_data());
            return Err(io("append to audit log", &self.path)(e));
        }
        Ok(())
    }

    fn torn_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(".torn");
        self.path.with_file_name(name)
    }

    /// The hash of the last whole record (or [`GENESIS`]), after moving a half-written last
    /// line, if any, to the `.torn` file; returns the hash and how many bytes were moved.
    fn tail(&self, file: &mut File) -> Result<(String, u64), StoreError> {
        let read = io("read audit log", &self.path);
        let len = file.seek(SeekFrom::End(0)).map_err(read)?;
        if len == 0 {
            return Ok((GENESIS.to_owned(), 0));
        }
        let start = len.saturating_sub(64 * 1024);
        file.seek(SeekFrom::Start(start))
            .map_err(io("read audit log", &self.path))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail)
            .map_err(io("read audit log", &self.path))?;
        let mut torn = 0;
        if tail.last() != Some(&b'\n') {
            let keep = tail.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let half = tail.split_off(keep);
            let mut side = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.torn_path())
                .map_err(io("open audit log's torn file", &self.path))?;
            side.write_all(&half)
                .and_then(|()| side.write_all(b"\n"))
                .and_then(|()| side.sync_data())
                .map_err(io("write audit log's torn file", &self.path))?;
            torn = half.len() as u64;
            file.set_len(start + keep as u64)
                .and_then(|()| file.sync_data())
                .map_err(io("repair audit log", &self.path))?;
        }
        let text = String::from_utf8_lossy(&tail);
        let Some(last) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
            return Ok((GENESIS.to_owned(), torn));
        };
        let record: AuditRecord =
            serde_json::from_str(last).map_err(|e| StoreError::AuditBroken {
                line: 0,
                reason: format!("the last record does not parse ({e}); run `hostel audit verify`"),
            })?;
        Ok((record.hash, torn))
    }

    /// The records matching `filter`, oldest first. A missing log is empty.
    pub fn query(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        crate::blocking(|| self.query_now(filter))
    }

    fn query_now(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
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
        crate::blocking(|| self.verify_now())
    }

    fn verify_now(&self) -> Result<usize, StoreError> {
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

    /// Regression (#13): a full disk left a half-written last line, after which every audited
    /// command failed, even once space was freed. The half line now moves aside, noted in the
    /// chain, and the chain goes on verifying.
    #[test]
    fn issue_13_a_half_written_last_line_is_moved_aside_and_noted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::new(&path);
        log.append(&event(0, "alice", Outcome::Ok)).unwrap();
        let whole = std::fs::read(&path).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"time\":\"2023-11-14T22:13:21Z\",\"kind\":\"workspace.st")
            .unwrap();
        drop(f);
        log.append(&event(2, "bob", Outcome::Ok)).unwrap();
        assert_eq!(log.verify().unwrap(), 3);
        let all = log.query(&AuditFilter::default()).unwrap();
        let kinds: Vec<&str> = all.iter().map(|r| r.event.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["tenant.create.v1", "audit.repaired.v1", "tenant.create.v1"]
        );
        assert_eq!(
            all[1].event.detail.get("torn_bytes").map(String::as_str),
            Some("51")
        );
        let text = std::fs::read(&path).unwrap();
        assert_eq!(
            &text[..whole.len()],
            &whole[..],
            "whole records stay as they were"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("audit.jsonl.torn")).unwrap(),
            "{\"time\":\"2023-11-14T22:13:21Z\",\"kind\":\"workspace.st\n"
        );
    }
}
