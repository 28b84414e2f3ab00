//! Typed queries over the tenants database.

use crate::{StoreError, blocking};
use chrono::{DateTime, Utc};
use hostel_core::lifecycle::{TenantStatus, WorkspaceState};
use hostel_core::network::Egress;
use hostel_core::policy::Policy;
use hostel_core::share::ShareName;
use hostel_core::snapshot::{Schedule, SnapshotName};
use hostel_core::{ByteSize, Cpus, Quota, Role, SshPublicKey, TenantName};
use nix::fcntl::{Flock, FlockArg};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde::Serialize;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The numbered migrations, applied in order; the database's `user_version` says how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_tenants.sql"),
    include_str!("migrations/002_bans.sql"),
    include_str!("migrations/003_tokens.sql"),
    include_str!("migrations/004_policies.sql"),
    include_str!("migrations/005_egress.sql"),
    include_str!("migrations/006_web.sql"),
    include_str!("migrations/007_login_links.sql"),
    include_str!("migrations/008_admin_sessions.sql"),
    include_str!("migrations/009_ban_scope.sql"),
    include_str!("migrations/010_published_ports.sql"),
    include_str!("migrations/011_adopted_home.sql"),
    include_str!("migrations/012_snapshots.sql"),
    include_str!("migrations/013_shares.sql"),
    include_str!("migrations/014_gpus.sql"),
    include_str!("migrations/015_disk_io.sql"),
];

/// The tenants database. Cheap to share behind an `Arc`; calls are short and serialized.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantRecord {
    /// Its name.
    pub name: TenantName,
    /// Where it is in its life.
    pub status: TenantStatus,
    /// The image its workspace is (or will be) made from.
    pub image: String,
    /// Its limits.
    pub quota: Quota,
    /// The workspace state the admin last asked for.
    pub desired: WorkspaceState,
    /// Its lifecycle policies.
    pub policy: Policy,
    /// Where its workspace may connect.
    pub egress: Egress,
    /// Last session or command start or end, if any.
    pub last_active_at: Option<DateTime<Utc>>,
    /// Whether its home was there before it was created.
    pub adopted_home: bool,
    /// The snapshot a restore is putting back (then `status` is `restoring`).
    pub restoring: Option<SnapshotName>,
    /// Its snapshot schedule, if it has one.
    pub snapshots: Option<Schedule>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What `create` records first.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// Its name.
    pub name: TenantName,
    /// Its image reference.
    pub image: String,
    /// Its limits.
    pub quota: Quota,
    /// Its keys (at least one).
    pub keys: Vec<SshPublicKey>,
    /// Its lifecycle policies.
    pub policy: Policy,
    /// Where its workspace may connect.
    pub egress: Egress,
    /// Whether its home was there before (a rolled-back create then keeps it).
    pub adopted_home: bool,
}

/// An address the SSH gateway refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ban {
    /// IP address, as text.
    pub address: String,
    /// The one tenant the address may not log in as; `None`: it may log in as none.
    pub tenant: Option<String>,
    /// Why.
    pub reason: String,
    /// Since when.
    pub created_at: DateTime<Utc>,
    /// Until when; `None`: until removed.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A port a tenant publishes on its own origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedPort {
    /// Whose.
    pub tenant: TenantName,
    /// The port inside the workspace.
    pub port: u16,
    /// Open to anyone; otherwise only to the tenant's own browser session.
    pub public: bool,
    /// Since when.
    pub created_at: DateTime<Utc>,
}

/// A shared dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShareRecord {
    /// Its name: it appears at `/shared/<name>`.
    pub name: ShareName,
    /// The host folder, resolved when it was added.
    pub path: String,
    /// The tenants that see it; `None`: every tenant.
    pub tenants: Option<Vec<TenantName>>,
    /// Since when.
    pub created_at: DateTime<Utc>,
}

/// An API token as stored (its hash, never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    /// Its name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRecord {
    /// The key.
    #[serde(flatten)]
    pub key: KeyView,
    /// When it was added.
    pub added_at: DateTime<Utc>,
}

/// The printable facts of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyView {
    /// `SHA256:...`
    pub fingerprint: String,
    /// `ssh-ed25519`...
    pub algorithm: String,
    /// The key's comment.
    pub comment: String,
    /// The whole key line.
    pub openssh: String,
}

impl From<&SshPublicKey> for KeyView {
    fn from(k: &SshPublicKey) -> Self {
        KeyView {
            fingerprint: k.fingerprint().to_owned(),
            algorithm: k.algorithm().to_owned(),
            comment: k.comment().to_owned(),
            openssh: k.to_openssh().to_owned(),
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, in WAL mode, and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        blocking(|| {
            // Two commands opening a new database at once race on switching it to WAL, which
            // SQLite answers with "database is locked" rather than waiting; a lock file next to the
            // database makes them take turns for the opening only.
            let lock_path = path.with_extension("db.lock");
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|source| StoreError::Io {
                    action: "open",
                    path: lock_path.display().to_string(),
                    source,
                })?;
            let _turn = Flock::lock(lock, FlockArg::LockExclusive).map_err(|(_, errno)| {
                StoreError::Io {
                    action: "lock",
                    path: lock_path.display().to_string(),
                    source: errno.into(),
                }
            })?;
            // Only a missing file is a new instance. An empty one is a store whose contents were
            // lost (a full disk, a bad copy): taking it as new would orphan every running workspace.
            let existed = match std::fs::metadata(path) {
                Ok(m) if m.len() == 0 => {
                    return Err(StoreError::NotAStore {
                        path: path.display().to_string(),
                        reason: "the file is empty".into(),
                    });
                }
                Ok(_) => true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(source) => {
                    return Err(StoreError::Io {
                        action: "read",
                        path: path.display().to_string(),
                        source,
                    });
                }
            };
            let foreign = |reason: String| StoreError::NotAStore {
                path: path.display().to_string(),
                reason,
            };
            let conn = Connection::open(path)?;
            // Before anything that writes: two commands opening a new database at once must wait
            // for each other, not fail with "database is locked".
            conn.busy_timeout(Duration::from_secs(10))?;
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::NotADatabase) => {
                        foreign("it is not a SQLite database".into())
                    }
                    _ => StoreError::Sqlite(e),
                })?;
            if existed {
                let (version, tables): (i64, i64) = conn.query_row(
                    "SELECT (SELECT user_version FROM pragma_user_version),
                        (SELECT count(*) FROM sqlite_master WHERE type = 'table')",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let has_meta: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
                [],
                |r| r.get(0),
            )?;
                if (version == 0 && tables > 0) || (version > 0 && !has_meta) {
                    return Err(foreign(
                        "it is a SQLite database of something else (no hostel tables)".into(),
                    ));
                }
            }
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            Self::init(conn)
        })
    }

    /// A fresh in-memory database with the real migrations, for tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store, StoreError> {
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew {
                found: version,
                known,
            });
        }
        for sql in MIGRATIONS.iter().skip(version as usize) {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "user_version", known)?;
        tx.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('instance_id', ?1)",
            params![uuid::Uuid::new_v4().simple().to_string()],
        )?;
        tx.commit()?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// This hostel instance's id: labels its engine objects so two roots on one engine never
    /// mistake each other's containers for their own.
    pub fn instance_id(&self) -> Result<String, StoreError> {
        blocking(|| {
            Ok(self.conn().query_row(
                "SELECT value FROM meta WHERE key = 'instance_id'",
                [],
                |r| r.get(0),
            )?)
        })
    }

    /// A fact this instance keeps about itself (`meta` table), if set.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        blocking(|| {
            Ok(self
                .conn()
                .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                    r.get(0)
                })
                .optional()?)
        })
    }

    /// Sets a fact this instance keeps about itself.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        blocking(|| {
            self.conn().execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }

    /// Records a new tenant in status `creating`, with its keys, in one transaction. Fails with
    /// [`StoreError::TenantExists`] when the name is taken, whatever its status: this insert is
    /// the lock that makes one of two racing creates lose.
    pub fn insert_tenant(&self, t: &NewTenant, now: DateTime<Utc>) -> Result<(), StoreError> {
        blocking(|| {
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO tenants
                 (name, status, image, cpus_milli, memory_bytes, disk_bytes, pids, created_at,
                  updated_at, expires_at, ephemeral, autostart, idle_stop_secs, last_active_at,
                  egress, adopted_home, gpus, disk_io)
             VALUES (?1, 'creating', ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11, ?7, ?12, ?13, ?14,
                     ?15)",
                params![
                    t.name.as_str(),
                    t.image,
                    t.quota.cpus.as_millis(),
                    t.quota.memory.as_u64() as i64,
                    t.quota.disk.as_u64() as i64,
                    t.quota.pids,
                    now.to_rfc3339(),
                    t.policy.expires_at.map(|e| e.to_rfc3339()),
                    t.policy.ephemeral,
                    t.policy.autostart,
                    t.policy
                        .idle_stop_secs
                        .map(|v| i64::try_from(v).unwrap_or(i64::MAX)),
                    t.egress.as_str(),
                    t.adopted_home,
                    t.quota.gpus.to_string(),
                    t.quota.disk_io.to_string(),
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::TenantExists {
                    name: t.name.to_string(),
                });
            }
            for key in &t.keys {
                tx.execute(
                "INSERT OR IGNORE INTO keys (tenant, fingerprint, openssh, added_at) VALUES (?1, ?2, ?3, ?4)",
                params![t.name.as_str(), key.fingerprint(), key.to_openssh(), now.to_rfc3339()],
            )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// One tenant, if it exists.
    pub fn tenant(&self, name: &TenantName) -> Result<Option<TenantRecord>, StoreError> {
        blocking(|| {
            let conn = self.conn();
            let row = conn
                .query_row(
                    &format!("{SELECT_TENANT} WHERE name = ?1"),
                    params![name.as_str()],
                    raw_tenant,
                )
                .optional()?;
            row.map(RawTenant::into_record).transpose()
        })
    }

    /// One tenant, or [`StoreError::TenantNotFound`].
    pub fn require(&self, name: &TenantName) -> Result<TenantRecord, StoreError> {
        blocking(|| {
            self.tenant(name)?
                .ok_or_else(|| StoreError::TenantNotFound {
                    name: name.to_string(),
                })
        })
    }

    /// Every tenant, by name.
    pub fn tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        blocking(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(&format!("{SELECT_TENANT} ORDER BY name"))?;
            let rows = stmt.query_map([], raw_tenant)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row?.into_record()?);
            }
            Ok(out)
        })
    }

    /// Moves a tenant from status `from` to `to`, or fails with [`StoreError::StatusChanged`]
    /// when another command moved it first (compare-and-set).
    pub fn set_status(
        &self,
        name: &TenantName,
        from: TenantStatus,
        to: TenantStatus,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        blocking(|| {
            let conn = self.conn();
            let changed = conn.execute(
                "UPDATE tenants SET status = ?3, updated_at = ?4
                    WHERE name = ?1 AND status = ?2 AND restoring IS NULL",
                params![name.as_str(), from.as_str(), to.as_str(), now.to_rfc3339()],
            )?;
            if changed == 1 {
                return Ok(());
            }
            let actual = Self::status_of(&conn, name)?;
            match actual {
                None => Err(StoreError::TenantNotFound {
                    name: name.to_string(),
                }),
                Some(actual) => Err(StoreError::StatusChanged {
                    name: name.to_string(),
                    expected: from.to_string(),
                    actual,
                }),
            }
        })
    }

    /// The status a tenant reads as (`restoring` while a restore is under way).
    fn status_of(conn: &Connection, name: &TenantName) -> Result<Option<String>, StoreError> {
        Ok(conn
            .query_row(
                "SELECT CASE WHEN restoring IS NULL THEN status ELSE 'restoring' END
                    FROM tenants WHERE name = ?1",
                params![name.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Marks a ready tenant as restoring `snapshot`: from now until [`Store::end_restore`] no
    /// other operation may act on it, and a restore whose process died is finished by the
    /// reconciler. A tenant not ready is a [`StoreError::StatusChanged`].
    pub fn begin_restore(
        &self,
        name: &TenantName,
        snapshot: &SnapshotName,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        blocking(|| {
            let conn = self.conn();
            let changed = conn.execute(
                "UPDATE tenants SET restoring = ?2, updated_at = ?3
                    WHERE name = ?1 AND status = 'ready' AND restoring IS NULL",
                params![name.as_str(), snapshot.as_str(), now.to_rfc3339()],
            )?;
            if changed == 1 {
                return Ok(());
            }
            match Self::status_of(&conn, name)? {
                None => Err(StoreError::TenantNotFound {
                    name: name.to_string(),
                }),
                Some(actual) => Err(StoreError::StatusChanged {
                    name: name.to_string(),
                    expected: TenantStatus::Ready.to_string(),
                    actual,
                }),
            }
        })
    }

    /// Ends a restore: the tenant is ready again. Idempotent.
    pub fn end_restore(&self, name: &TenantName, now: DateTime<Utc>) -> Result<(), StoreError> {
        blocking(|| {
            let changed = self.conn().execute(
                "UPDATE tenants SET restoring = NULL, updated_at = ?2 WHERE name = ?1",
                params![name.as_str(), now.to_rfc3339()],
            )?;
            not_found_unless(changed, name)
        })
    }

    /// Sets (or, with `None`, removes) the tenant's snapshot schedule.
    pub fn set_snapshot_schedule(
        &self,
        name: &TenantName,
        schedule: Option<Schedule>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        blocking(|| {
            let changed = self.conn().execute(
                "UPDATE tenants SET snapshot_every = ?2, snapshot_keep = ?3, updated_at = ?4
                    WHERE name = ?1",
                params![
                    name.as_str(),
                    schedule.map(|s| s.every.as_str()),
                    schedule.map(|s| i64::from(s.keep)),
                    now.to_rfc3339()
                ],
            )?;
            not_found_unless(changed, name)
        })
    }

    /// Records a new quota for a ready tenant.
    pub fn set_quota(
        &self,
        name: &TenantName,
        quota: &Quota,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        blocking(|| {
            let changed = self.conn().execute(
                "UPDATE tenants SET cpus_milli = ?2, memory_bytes = ?3, disk_bytes = ?4, pids = ?5,
                 updated_at = ?6, gpus = ?7, disk_io = ?8 WHERE name = ?1",
                params![
                    name.as_str(),
                    quota.cpus.as_millis(),
                    quota.memory.as_u64() as i64,
                    quota.disk.as_u64() as i64,
                    quota.pids,
                    now.to_rfc3339(),
                    quota.gpus.to_string(),
                    quota.disk_io.to_string(),
                ],
            )?;
            not_found_unless(changed, name)
        })
    }

    /// Records a new image for a tenant; its workspace moves to it at the next start.
    pub fn set_image(
        &self,
        name: &TenantName,
        image: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        blocking(|| {
            let changed = self.conn().execute(
                "UPDATE tenants SET image = ?2, updated_at = ?3 WHERE name = ?1",
                params![name.as_str(), image, now.to_rfc3339()],
            )?;
            not_found_unless(changed, name)
        })
    }

    /// Replaces the tenant's lifecycle policies.
    pub fn set_policy(
        &self,
        name: &TenantName,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        blocking(|| {
            let changed = self.conn().execute(
                "UPDATE tenants SET expires_at = ?2, ephemeral = ?3, autostart = ?4,
                    idle_stop_secs = ?5, updated_at = ?6 WHERE name = ?1",
                params![
                    name.as_str(),
                    policy.expires_at.map(|e| e.to_rfc3339()),
                    policy.ephemeral,
                    policy.autostart,
                    policy
                        .idle_stop_secs
                        .map(|v| i64::try_from(v).unwrap_or(i64::MAX)),
                    now.to_rfc3339(),
                ],
            )?;
            not_found_unless(changed, name)
        })
    }

    /// Records where the tenant's workspace may connect (in force from its next start).
    pub fn set_egress(
        &self,
        name: &TenantName,
        egress: Egress,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        blocking(|| {
            let changed = self.conn().execute(
                "UPDATE tenants SET egress = ?2, updated_at = ?3 WHERE name = ?1",
                params![name.as_str(), egress.as_str(), now.to_rfc3339()],
            )?;
            not_found_unless(changed, name)
        })
    }

    /// Sets the tenant's web password hash and signs out all its browser sessions.
    pub fn set_web_password(
        &self,
        name: &TenantName,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        blocking(|| {
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let known: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM tenants WHERE name = ?1)",
                params![name.as_str()],
                |r| r.get(0),
            )?;
            if !known {
                return Err(StoreError::TenantNotFound {
                    name: name.to_string(),
                });
            }
            tx.execute(
                "INSERT INTO web_passwords (tenant, hash, set_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
                params![name.as_str(), hash, now.to_rfc3339()],
            )?;
            tx.execute(
                "DELETE FROM web_sessions WHERE tenant = ?1",
                params![name.as_str()],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// The tenant's web password hash, if it has one.
    pub fn web_password(&self, name: &TenantName) -> Result<Option<String>, StoreError> {
        blocking(|| {
            Ok(self
                .conn()
                .query_row(
                    "SELECT hash FROM web_passwords WHERE tenant = ?1",
                    params![name.as_str()],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    /// Records a signed-in browser session.
    pub fn add_web_session(
        &self,
        id_hash: &str,
        name: &TenantName,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        blocking(|| {
            self.add_credential(
                "INSERT INTO web_sessions (id_hash, tenant, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
                id_hash,
                name,
                now,
                expires_at,
            )
        })
    }

    /// The tenant and expiry of a session, if it exists.
    pub fn web_session(
        &self,
        id_hash: &str,
    ) -> Result<Option<(TenantName, DateTime<Utc>)>, StoreError> {
        blocking(|| {
            self.credential(
                "SELECT tenant, expires_at FROM web_sessions WHERE id_hash = ?1",
                id_hash,
            )
        })
    }

    /// Records a one-time sign-in link.
    pub fn add_login_link(
        &self,
        id_hash: &str,
        name: &TenantName,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        blocking(|| {
            self.add_credential(
                "INSERT INTO login_links (id_hash, tenant, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
                id_hash,
                name,
                now,
                expires_at,
            )
        })
    }

    /// Uses a sign-in link up: removes it and returns its tenant and expiry, if it existed. Of two
    /// callers racing for one link, one gets it.
    pub fn take_login_link(
        &self,
        id_hash: &str,
    ) -> Result<Option<(TenantName, DateTime<Utc>)>, StoreError> {
        blocking(|| {
            self.credential(
                "DELETE FROM login_links WHERE id_hash = ?1 RETURNING tenant, expires_at",
                id_hash,
            )
        })
    }

    /// Inserts a web credential row (session or link): `sql` takes hash, tenant, now, expiry.
    fn add_credential(
        &self,
        sql: &str,
        id_hash: &str,
        name: &TenantName,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            sql,
            params![
                id_hash,
                name.as_str(),
                now.to_rfc3339(),
                expires_at.to_rfc3339()
            ],
        )?;
        Ok(())
    }

    /// The tenant and expiry `sql` (taking the hash) answers with, if any.
    fn credential(
        &self,
        sql: &str,
        id_hash: &str,
    ) -> Result<Option<(TenantName, DateTime<Utc>)>, StoreError> {
        let row: Option<(String, String)> = self
            .conn()
            .query_row(sql, params![id_hash], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(t, e)| {
            let name = t.parse().map_err(|_| StoreError::Corrupt {
                what: "tenant name",
                value: t.clone(),
            })?;
            Ok((name, parse_time(&e)?))
        })
        .transpose()
    }

    /// Ends a session.
    pub fn remove_web_session(&self, id_hash: &str) -> Result<(), StoreError> {
        blocking(|| {
            self.conn().execute(
                "DELETE FROM web_sessions WHERE id_hash = ?1",
                params![id_hash],
            )?;
            Ok(())
        })
    }

    /// Records the workspace state the admin asked for.
    pub fn set_desired(
        &self,
        name: &TenantName,
        desired: WorkspaceState,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        blocking(|| {
            let changed = self.conn().execute(
                "UPDATE tenants SET desired = ?2, updated_at = ?3 WHERE name = ?1",
                params![name.as_str(), desired.as_str(), now.to_rfc3339()],
            )?;
            not_found_unless(changed, name)
        })
    }

    /// Records that the tenant was active (a session or command started or ended).
    pub fn touch(&self, name: &TenantName, now: DateTime<Utc>) -> Result<(), StoreError> {
        blocking(|| {
            self.conn().execute(
                "UPDATE tenants SET last_active_at = ?2 WHERE name = ?1",
                params![name.as_str(), now.to_rfc3339()],
            )?;
            Ok(())
        })
    }

    /// Removes a tenant and its keys.
    pub fn delete_tenant(&self, name: &TenantName) -> Result<(), StoreError> {
        blocking(|| {
            let changed = self.conn().execute(
                "DELETE FROM tenants WHERE name = ?1",
                params![name.as_str()],
            )?;
            not_found_unless(changed, name)
        })
    }

    /// Adds keys to a tenant. A key already there is a conflict and nothing is added.
    pub fn add_keys(
        &self,
        name: &TenantName,
        keys: &[SshPublicKey],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        blocking(|| {
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let exists: Option<String> = tx
                .query_row(
                    "SELECT name FROM tenants WHERE name = ?1",
                    params![name.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::TenantNotFound {
                    name: name.to_string(),
                });
            }
            for key in keys {
                let inserted = tx.execute(
                "INSERT OR IGNORE INTO keys (tenant, fingerprint, openssh, added_at) VALUES (?1, ?2, ?3, ?4)",
                params![name.as_str(), key.fingerprint(), key.to_openssh(), now.to_rfc3339()],
            )?;
                if inserted == 0 {
                    return Err(StoreError::KeyExists {
                        name: name.to_string(),
                        fingerprint: key.fingerprint().to_owned(),
                    });
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Removes the key with this fingerprint; refuses to remove a tenant's last key, which would
    /// lock the tenant out.
    pub fn remove_key(&self, name: &TenantName, fingerprint: &str) -> Result<(), StoreError> {
        blocking(|| {
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let count: i64 = tx.query_row(
                "SELECT COUNT(*) FROM keys WHERE tenant = ?1",
                params![name.as_str()],
                |r| r.get(0),
            )?;
            let removed = tx.execute(
                "DELETE FROM keys WHERE tenant = ?1 AND fingerprint = ?2",
                params![name.as_str(), fingerprint],
            )?;
            if removed == 0 {
                return Err(StoreError::KeyNotFound {
                    name: name.to_string(),
                    fingerprint: fingerprint.to_owned(),
                });
            }
            if count <= 1 {
                return Err(StoreError::LastKey {
                    name: name.to_string(),
                    fingerprint: fingerprint.to_owned(),
                });
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Bans an address, for every name or one tenant (replacing an earlier ban of the same).
    pub fn add_ban(&self, ban: &Ban) -> Result<(), StoreError> {
        blocking(|| {
            self.conn().execute(
                "INSERT OR REPLACE INTO bans (address, tenant, reason, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    ban.address,
                    ban.tenant.as_deref().unwrap_or_default(),
                    ban.reason,
                    ban.created_at.to_rfc3339(),
                    ban.expires_at.map(|t| t.to_rfc3339())
                ],
            )?;
            Ok(())
        })
    }

    /// Lifts every ban of an address (for every name and for single tenants); returns
    /// whether there was one.
    pub fn remove_ban(&self, address: &str) -> Result<bool, StoreError> {
        blocking(|| {
            Ok(self
                .conn()
                .execute("DELETE FROM bans WHERE address = ?1", params![address])?
                > 0)
        })
    }

    /// Lifts one ban: of `address` for `tenant`, or for every name; returns whether there
    /// was one.
    pub fn remove_ban_of(&self, address: &str, tenant: Option<&str>) -> Result<bool, StoreError> {
        blocking(|| {
            Ok(self.conn().execute(
                "DELETE FROM bans WHERE address = ?1 AND tenant = ?2",
                params![address, tenant.unwrap_or_default()],
            )? > 0)
        })
    }

    /// Every ban, expired ones included, by address (a ban for every name first).
    pub fn bans(&self) -> Result<Vec<Ban>, StoreError> {
        blocking(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT address, tenant, reason, created_at, expires_at FROM bans \
             ORDER BY address, tenant",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (address, tenant, reason, created, expires) = row?;
                out.push(Ban {
                    address,
                    tenant: Some(tenant).filter(|t| !t.is_empty()),
                    reason,
                    created_at: parse_time(&created)?,
                    expires_at: expires.as_deref().map(parse_time).transpose()?,
                });
            }
            Ok(out)
        })
    }

    /// The bans of `address` that hold for `tenant` (its own and the one for every name;
    /// `None`: only the one for every name), expired or not.
    pub fn bans_of(&self, address: &str, tenant: Option<&str>) -> Result<Vec<Ban>, StoreError> {
        blocking(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT reason, created_at, expires_at, tenant FROM bans \
             WHERE address = ?1 AND tenant IN ('', ?2) ORDER BY tenant",
            )?;
            let rows = stmt.query_map(params![address, tenant.unwrap_or_default()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (reason, created, expires, scope) = row?;
                out.push(Ban {
                    address: address.to_owned(),
                    tenant: Some(scope).filter(|t| !t.is_empty()),
                    reason,
                    created_at: parse_time(&created)?,
                    expires_at: expires.as_deref().map(parse_time).transpose()?,
                });
            }
            Ok(out)
        })
    }

    /// Publishes a port of a tenant (or changes whether it is public).
    pub fn publish_port(&self, p: &PublishedPort) -> Result<(), StoreError> {
        blocking(|| {
            let changed = self.conn().execute(
                "INSERT INTO published_ports (tenant, port, public, created_at) \
             SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM tenants WHERE name = ?1) \
             ON CONFLICT (tenant, port) DO UPDATE SET public = excluded.public",
                params![
                    p.tenant.as_str(),
                    p.port,
                    p.public,
                    p.created_at.to_rfc3339()
                ],
            )?;
            not_found_unless(changed, &p.tenant)
        })
    }

    /// Withdraws a published port; returns whether it was published.
    pub fn unpublish_port(&self, tenant: &TenantName, port: u16) -> Result<bool, StoreError> {
        blocking(|| {
            Ok(self.conn().execute(
                "DELETE FROM published_ports WHERE tenant = ?1 AND port = ?2",
                params![tenant.as_str(), port],
            )? > 0)
        })
    }

    /// Records a share for `tenants` (`None`: every tenant); a name taken is a conflict, a
    /// tenant that does not exist is not found, and then nothing is recorded.
    pub fn add_share(&self, share: &ShareRecord) -> Result<(), StoreError> {
        blocking(|| {
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let inserted = tx.execute(
                "INSERT INTO shares (name, path, all_tenants, created_at) VALUES (?1, ?2, ?3, ?4)
                    ON CONFLICT (name) DO NOTHING",
                params![
                    share.name.as_str(),
                    share.path,
                    share.tenants.is_none(),
                    share.created_at.to_rfc3339()
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::ShareExists {
                    name: share.name.to_string(),
                });
            }
            for t in share.tenants.iter().flatten() {
                let added = tx.execute(
                    "INSERT INTO share_tenants (share, tenant)
                        SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM tenants WHERE name = ?2)
                        ON CONFLICT DO NOTHING",
                    params![share.name.as_str(), t.as_str()],
                )?;
                let known: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM tenants WHERE name = ?1)",
                    params![t.as_str()],
                    |r| r.get(0),
                )?;
                if added == 0 && !known {
                    return Err(StoreError::TenantNotFound {
                        name: t.to_string(),
                    });
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Removes a share; one that does not exist is not found.
    pub fn remove_share(&self, name: &ShareName) -> Result<(), StoreError> {
        blocking(|| {
            let changed = self
                .conn()
                .execute("DELETE FROM shares WHERE name = ?1", params![name.as_str()])?;
            if changed == 0 {
                return Err(StoreError::ShareNotFound {
                    name: name.to_string(),
                });
            }
            Ok(())
        })
    }

    /// Every share, by name.
    pub fn shares(&self) -> Result<Vec<ShareRecord>, StoreError> {
        blocking(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT s.name, s.path, s.all_tenants, s.created_at,
                        (SELECT group_concat(tenant, ' ') FROM
                            (SELECT tenant FROM share_tenants WHERE share = s.name ORDER BY tenant))
                    FROM shares s ORDER BY s.name",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (name, path, all, created, tenants) = row?;
                let tenants = if all {
                    None
                } else {
                    Some(
                        tenants
                            .unwrap_or_default()
                            .split_whitespace()
                            .map(|t| {
                                t.parse().map_err(|_| StoreError::Corrupt {
                                    what: "share tenant",
                                    value: t.to_owned(),
                                })
                            })
                            .collect::<Result<Vec<TenantName>, StoreError>>()?,
                    )
                };
                out.push(ShareRecord {
                    name: name.parse().map_err(|_| StoreError::Corrupt {
                        what: "share name",
                        value: name.clone(),
                    })?,
                    path,
                    tenants,
                    created_at: parse_time(&created)?,
                });
            }
            Ok(out)
        })
    }

    /// The ports a tenant publishes, by port.
    pub fn published_ports(&self, tenant: &TenantName) -> Result<Vec<PublishedPort>, StoreError> {
        blocking(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
            "SELECT port, public, created_at FROM published_ports WHERE tenant = ?1 ORDER BY port",
        )?;
            let rows = stmt.query_map(params![tenant.as_str()], |r| {
                Ok((
                    r.get::<_, u16>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (port, public, created) = row?;
                out.push(PublishedPort {
                    tenant: tenant.clone(),
                    port,
                    public,
                    created_at: parse_time(&created)?,
                });
            }
            Ok(out)
        })
    }

    /// Records a new token by the hash of its secret; a name in use is a conflict.
    pub fn add_token(
        &self,
        name: &str,
        role: Role,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        blocking(|| {
            let inserted = self.conn().execute(
            "INSERT OR IGNORE INTO tokens (name, role, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name, role.as_str(), hash, now.to_rfc3339()],
        )?;
            if inserted == 0 {
                return Err(StoreError::TokenExists {
                    name: name.to_owned(),
                });
            }
            Ok(())
        })
    }

    /// The live (not revoked) token with this hash.
    pub fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        blocking(|| {
            Ok(self
                .query_tokens("WHERE hash = ?1 AND revoked_at IS NULL", &[&hash])?
                .into_iter()
                .next())
        })
    }

    /// Records an admin's dashboard session for the token `token` (by name).
    pub fn add_admin_session(
        &self,
        id_hash: &str,
        token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        blocking(|| {
            self.conn().execute(
                "INSERT INTO admin_sessions (id_hash, token, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
                params![id_hash, token, now.to_rfc3339(), expires_at.to_rfc3339()],
            )?;
            Ok(())
        })
    }

    /// The live token behind a dashboard session, and when the session ends; `None` when
    /// there is no such session or its token was revoked.
    pub fn admin_session(
        &self,
        id_hash: &str,
    ) -> Result<Option<(TokenRecord, DateTime<Utc>)>, StoreError> {
        blocking(|| {
            let row: Option<(String, String)> = self
                .conn()
                .query_row(
                    "SELECT token, expires_at FROM admin_sessions WHERE id_hash = ?1",
                    params![id_hash],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((token, expires)) = row else {
                return Ok(None);
            };
            let live = self
                .query_tokens("WHERE name = ?1 AND revoked_at IS NULL", &[&token])?
                .into_iter()
                .next();
            live.map(|t| Ok((t, parse_time(&expires)?))).transpose()
        })
    }

    /// Ends a dashboard session.
    pub fn remove_admin_session(&self, id_hash: &str) -> Result<(), StoreError> {
        blocking(|| {
            self.conn().execute(
                "DELETE FROM admin_sessions WHERE id_hash = ?1",
                params![id_hash],
            )?;
            Ok(())
        })
    }

    /// Every token, revoked ones included, by name.
    pub fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        blocking(|| self.query_tokens("", &[]))
    }

    fn query_tokens(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT name, role, created_at, revoked_at FROM tokens {filter} ORDER BY name"
        ))?;
        let rows = stmt.query_map(args, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, role, created, revoked) = row?;
            out.push(TokenRecord {
                role: role.parse().map_err(|_| StoreError::Corrupt {
                    what: "role",
                    value: role.clone(),
                })?,
                name,
                created_at: parse_time(&created)?,
                revoked_at: revoked.as_deref().map(parse_time).transpose()?,
            });
        }
        Ok(out)
    }

    /// Revokes a token; a revoked token never works again.
    pub fn revoke_token(&self, name: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        blocking(|| {
            let changed = self.conn().execute(
                "UPDATE tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
                params![name, now.to_rfc3339()],
            )?;
            if changed == 0 {
                return Err(StoreError::TokenNotFound {
                    name: name.to_owned(),
                });
            }
            Ok(())
        })
    }

    /// A tenant's keys, oldest first.
    pub fn keys(&self, name: &TenantName) -> Result<Vec<KeyRecord>, StoreError> {
        blocking(|| {
            let conn = self.conn();
            let mut stmt = conn.prepare(
            "SELECT openssh, added_at FROM keys WHERE tenant = ?1 ORDER BY added_at, fingerprint",
        )?;
            let rows = stmt.query_map(params![name.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (openssh, added_at) = row?;
                let key: SshPublicKey = openssh.parse().map_err(|_| StoreError::Corrupt {
                    what: "key",
                    value: openssh.clone(),
                })?;
                out.push(KeyRecord {
                    key: KeyView::from(&key),
                    added_at: parse_time(&added_at)?,
                });
            }
            Ok(out)
        })
    }
}

const SELECT_TENANT: &str = "SELECT name, status, image, cpus_milli, memory_bytes, disk_bytes, \
                             pids, created_at, updated_at, desired, expires_at, ephemeral, \
                             autostart, idle_stop_secs, last_active_at, egress, adopted_home, \
                             restoring, snapshot_every, snapshot_keep, gpus, disk_io \
                             FROM tenants";

struct RawTenant {
    name: String,
    status: String,
    image: String,
    cpus_milli: i64,
    memory: i64,
    disk: i64,
    pids: i64,
    created_at: String,
    updated_at: String,
    desired: String,
    expires_at: Option<String>,
    ephemeral: bool,
    autostart: bool,
    idle_stop_secs: Option<i64>,
    last_active_at: Option<String>,
    egress: String,
    adopted_home: bool,
    restoring: Option<String>,
    snapshot_every: Option<String>,
    snapshot_keep: Option<i64>,
    gpus: String,
    disk_io: String,
}

fn raw_tenant(r: &Row<'_>) -> rusqlite::Result<RawTenant> {
    Ok(RawTenant {
        name: r.get(0)?,
        status: r.get(1)?,
        image: r.get(2)?,
        cpus_milli: r.get(3)?,
        memory: r.get(4)?,
        disk: r.get(5)?,
        pids: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        desired: r.get(9)?,
        expires_at: r.get(10)?,
        ephemeral: r.get(11)?,
        autostart: r.get(12)?,
        idle_stop_secs: r.get(13)?,
        last_active_at: r.get(14)?,
        egress: r.get(15)?,
        adopted_home: r.get(16)?,
        restoring: r.get(17)?,
        snapshot_every: r.get(18)?,
        snapshot_keep: r.get(19)?,
        gpus: r.get(20)?,
        disk_io: r.get(21)?,
    })
}

impl RawTenant {
    fn into_record(self) -> Result<TenantRecord, StoreError> {
        let corrupt = |what: &'static str, value: String| StoreError::Corrupt { what, value };
        let restoring = self
            .restoring
            .map(|r| r.parse().map_err(|_| corrupt("restoring", r)))
            .transpose()?;
        let snapshots = match (self.snapshot_every, self.snapshot_keep) {
            (Some(every), Some(keep)) => Some(Schedule {
                every: every
                    .parse()
                    .map_err(|_| corrupt("snapshot_every", every.clone()))?,
                keep: u32::try_from(keep)
                    .map_err(|_| corrupt("snapshot_keep", keep.to_string()))?,
            }),
            _ => None,
        };
        let status = TenantStatus::from_db(&self.status)
            .ok_or_else(|| corrupt("status", self.status.clone()))?;
        Ok(TenantRecord {
            name: self
                .name
                .parse()
                .map_err(|_| corrupt("tenant name", self.name.clone()))?,
            status: if restoring.is_some() && status == TenantStatus::Ready {
                TenantStatus::Restoring
            } else {
                status
            },
            image: self.image,
            quota: Quota {
                cpus: Cpus::millis(
                    u32::try_from(self.cpus_milli)
                        .map_err(|_| corrupt("cpus", self.cpus_milli.to_string()))?,
                ),
                memory: ByteSize::bytes(
                    u64::try_from(self.memory)
                        .map_err(|_| corrupt("memory", self.memory.to_string()))?,
                ),
                disk: ByteSize::bytes(
                    u64::try_from(self.disk).map_err(|_| corrupt("disk", self.disk.to_string()))?,
                ),
                pids: u32::try_from(self.pids)
                    .map_err(|_| corrupt("pids", self.pids.to_string()))?,
                gpus: self
                    .gpus
                    .parse()
                    .map_err(|_| corrupt("gpus", self.gpus.clone()))?,
                disk_io: self
                    .disk_io
                    .parse()
                    .map_err(|_| corrupt("disk_io", self.disk_io.clone()))?,
            },
            desired: match self.desired.as_str() {
                "running" => WorkspaceState::Running,
                "stopped" => WorkspaceState::Stopped,
                "deleted" => WorkspaceState::Deleted,
                _ => return Err(corrupt("desired state", self.desired)),
            },
            policy: Policy {
                expires_at: self.expires_at.as_deref().map(parse_time).transpose()?,
                ephemeral: self.ephemeral,
                autostart: self.autostart,
                idle_stop_secs: self
                    .idle_stop_secs
                    .map(|v| u64::try_from(v).map_err(|_| corrupt("idle_stop_secs", v.to_string())))
                    .transpose()?,
            },
            egress: self
                .egress
                .parse()
                .map_err(|_| corrupt("egress", self.egress.clone()))?,
            last_active_at: self.last_active_at.as_deref().map(parse_time).transpose()?,
            adopted_home: self.adopted_home,
            restoring,
            snapshots,
            created_at: parse_time(&self.created_at)?,
            updated_at: parse_time(&self.updated_at)?,
        })
    }
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt {
            what: "time",
            value: s.to_owned(),
        })
}

fn not_found_unless(changed: usize, name: &TenantName) -> Result<(), StoreError> {
    if changed == 0 {
        return Err(StoreError::TenantNotFound {
            name: name.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHbY7kwAdHmtH85Bxt9xpZhqZDkUDHAlfX7EjiWRN0CI alice@laptop";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKMjsc9v9cDRDM2lR2bVD3MQMFFwtMiyR9xmO7mKrvB5 bob@desk";

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn new_tenant(name: &str) -> NewTenant {
        NewTenant {
            name: name.parse().unwrap(),
            image: "hostel-workspace:abc".into(),
            quota: Quota {
                cpus: Cpus::millis(1500),
                memory: ByteSize::gib(1),
                disk: ByteSize::gib(5),
                pids: 256,
                gpus: hostel_core::Gpus::None,
                disk_io: hostel_core::DiskIo::Unlimited,
            },
            keys: vec![KEY_A.parse().unwrap()],
            policy: Policy::default(),
            egress: Egress::All,
            adopted_home: false,
        }
    }

    #[test]
    fn insert_then_read_back() {
        let s = Store::open_in_memory().unwrap();
        s.insert_tenant(&new_tenant("alice"), now()).unwrap();
        let t = s.require(&"alice".parse().unwrap()).unwrap();
        assert_eq!(
            t,
            TenantRecord {
                name: "alice".parse().unwrap(),
                status: TenantStatus::Creating,
                image: "hostel-workspace:abc".into(),
                quota: new_tenant("alice").quota,
                desired: WorkspaceState::Running,
                policy: Policy::default(),
                egress: Egress::All,
                last_active_at: Some(now()),
                adopted_home: false,
                restoring: None,
                snapshots: None,
                created_at: now(),
                updated_at: now(),
            }
        );
        let keys = s.keys(&t.name).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].key.comment, "alice@laptop");
    }

    #[test]
    fn a_restore_holds_the_tenant_until_it_ends_and_schedules_round_trip() {
        let s = Store::open_in_memory().unwrap();
        let name: TenantName = "alice".parse().unwrap();
        let snap: SnapshotName = "before".parse().unwrap();
        s.insert_tenant(&new_tenant("alice"), now()).unwrap();
        assert!(matches!(
            s.begin_restore(&name, &snap, now()),
            Err(StoreError::StatusChanged { .. })
        ));
        s.set_status(&name, TenantStatus::Creating, TenantStatus::Ready, now())
            .unwrap();
        s.begin_restore(&name, &snap, now()).unwrap();
        let t = s.require(&name).unwrap();
        assert_eq!(
            (t.status, t.restoring),
            (TenantStatus::Restoring, Some(snap.clone()))
        );
        for second in [
            s.begin_restore(&name, &snap, now()),
            s.set_status(&name, TenantStatus::Ready, TenantStatus::Purging, now()),
        ] {
            match second {
                Err(StoreError::StatusChanged { actual, .. }) => assert_eq!(actual, "restoring"),
                other => panic!("{other:?}"),
            }
        }
        s.end_restore(&name, now()).unwrap();
        s.end_restore(&name, now()).unwrap();
        assert_eq!(s.require(&name).unwrap().status, TenantStatus::Ready);

        let daily = Schedule {
            every: hostel_core::snapshot::Every::Daily,
            keep: 7,
        };
        s.set_snapshot_schedule(&name, Some(daily), now()).unwrap();
        assert_eq!(s.require(&name).unwrap().snapshots, Some(daily));
        s.set_snapshot_schedule(&name, None, now()).unwrap();
        assert_eq!(s.require(&name).unwrap().snapshots, None);
    }

    #[test]
    fn shares_are_for_all_or_named_tenants_and_go_with_them() {
        let s = Store::open_in_memory().unwrap();
        s.insert_tenant(&new_tenant("alice"), now()).unwrap();
        s.insert_tenant(&new_tenant("bob"), now()).unwrap();
        let share = |name: &str, tenants: Option<&[&str]>| ShareRecord {
            name: name.parse().unwrap(),
            path: format!("/srv/{name}"),
            tenants: tenants.map(|t| t.iter().map(|n| n.parse().unwrap()).collect()),
            created_at: now(),
        };
        s.add_share(&share("all", None)).unwrap();
        s.add_share(&share("some", Some(&["bob", "alice"])))
            .unwrap();
        assert!(matches!(
            s.add_share(&share("all", None)),
            Err(StoreError::ShareExists { .. })
        ));
        assert!(matches!(
            s.add_share(&share("ghost", Some(&["carol"]))),
            Err(StoreError::TenantNotFound { .. })
        ));
        assert_eq!(
            s.shares().unwrap(),
            vec![share("all", None), share("some", Some(&["alice", "bob"]))]
        );
        s.delete_tenant(&"bob".parse().unwrap()).unwrap();
        assert_eq!(s.shares().unwrap()[1], share("some", Some(&["alice"])));
        s.remove_share(&"some".parse().unwrap()).unwrap();
        assert!(matches!(
            s.remove_share(&"some".parse().unwrap()),
            Err(StoreError::ShareNotFound { .. })
        ));
        assert_eq!(s.shares().unwrap().len(), 1);
    }

    #[test]
    fn second_insert_of_a_name_conflicts() {
        let s = Store::open_in_memory().unwrap();
        s.insert_tenant(&new_tenant("alice"), now()).unwrap();
        let err = s.insert_tenant(&new_tenant("alice"), now()).unwrap_err();
        assert!(matches!(err, StoreError::TenantExists { ref name } if name == "alice"));
        assert_eq!(err.code(), hostel_core::ErrorCode::Conflict);
    }

    #[test]
    fn status_is_compare_and_set() {
        let s = Store::open_in_memory().unwrap();
        let name: TenantName = "alice".parse().unwrap();
        s.insert_tenant(&new_tenant("alice"), now()).unwrap();
        s.set_status(&name, TenantStatus::Creating, TenantStatus::Ready, now())
            .unwrap();
        let err = s
            .set_status(&name, TenantStatus::Creating, TenantStatus::Purging, now())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "tenant \"alice\" is ready, not creating: another command is working on it"
        );
        let err = s
            .set_status(
                &"bob".parse().unwrap(),
                TenantStatus::Ready,
                TenantStatus::Purging,
                now(),
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::TenantNotFound { .. }));
    }

    #[test]
    fn keys_add_remove_and_last_key_guard() {
        let s = Store::open_in_memory().unwrap();
        let name: TenantName = "alice".parse().unwrap();
        s.insert_tenant(&new_tenant("alice"), now()).unwrap();
        let b: SshPublicKey = KEY_B.parse().unwrap();
        s.add_keys(&name, std::slice::from_ref(&b), now()).unwrap();
        assert!(matches!(
            s.add_keys(&name, std::slice::from_ref(&b), now()),
            Err(StoreError::KeyExists { .. })
        ));
        assert_eq!(s.keys(&name).unwrap().len(), 2);
        s.remove_key(&name, b.fingerprint()).unwrap();
        let a: SshPublicKey = KEY_A.parse().unwrap();
        assert!(matches!(
            s.remove_key(&name, a.fingerprint()),
            Err(StoreError::LastKey { .. })
        ));
        assert!(matches!(
            s.remove_key(&name, "SHA256:nope"),
            Err(StoreError::KeyNotFound { .. })
        ));
        assert_eq!(s.keys(&name).unwrap().len(), 1);
    }

    #[test]
    fn delete_cascades_keys_and_quota_updates() {
        let s = Store::open_in_memory().unwrap();
        let name: TenantName = "alice".parse().unwrap();
        s.insert_tenant(&new_tenant("alice"), now()).unwrap();
        let q = Quota {
            pids: 64,
            gpus: hostel_core::Gpus::Count(2),
            disk_io: hostel_core::DiskIo::Ops(500),
            ..new_tenant("alice").quota
        };
        s.set_quota(&name, &q, now()).unwrap();
        assert_eq!(
            s.require(&name).unwrap().quota.gpus,
            hostel_core::Gpus::Count(2)
        );
        assert_eq!(
            s.require(&name).unwrap().quota.disk_io,
            hostel_core::DiskIo::Ops(500)
        );
        s.set_image(&name, "hostel-workspace:def", now()).unwrap();
        s.set_desired(&name, WorkspaceState::Stopped, now())
            .unwrap();
        let t = s.require(&name).unwrap();
        assert_eq!(
            (t.quota.pids, t.image.as_str(), t.desired),
            (64, "hostel-workspace:def", WorkspaceState::Stopped)
        );
        s.delete_tenant(&name).unwrap();
        assert_eq!(s.tenant(&name).unwrap(), None);
        assert_eq!(s.keys(&name).unwrap(), vec![]);
    }

    #[test]
    fn reopening_a_file_keeps_data_and_instance_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hostel.db");
        let id = {
            let s = Store::open(&path).unwrap();
            s.insert_tenant(&new_tenant("alice"), now()).unwrap();
            s.instance_id().unwrap()
        };
        let s = Store::open(&path).unwrap();
        assert_eq!(s.instance_id().unwrap(), id);
        assert_eq!(s.tenants().unwrap().len(), 1);
        let mode: String = s
            .conn()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn bans_add_replace_list_remove() {
        let s = Store::open_in_memory().unwrap();
        let ban = Ban {
            address: "10.0.0.5".into(),
            tenant: None,
            reason: "manual".into(),
            created_at: now(),
            expires_at: None,
        };
        s.add_ban(&ban).unwrap();
        let later = Ban {
            reason: "10 failed logins".into(),
            expires_at: Some(now()),
            ..ban.clone()
        };
        s.add_ban(&later).unwrap();
        assert_eq!(s.bans().unwrap(), vec![later.clone()]);
        assert_eq!(s.bans_of("10.0.0.5", None).unwrap(), vec![later.clone()]);
        let alice = Ban {
            tenant: Some("alice".into()),
            ..later.clone()
        };
        s.add_ban(&alice).unwrap();
        assert_eq!(s.bans().unwrap(), vec![later.clone(), alice.clone()]);
        assert_eq!(s.bans_of("10.0.0.5", None).unwrap(), vec![later.clone()]);
        assert_eq!(
            s.bans_of("10.0.0.5", Some("alice")).unwrap(),
            vec![later.clone(), alice.clone()]
        );
        assert_eq!(s.bans_of("10.0.0.5", Some("bob")).unwrap(), vec![later]);
        assert!(s.remove_ban_of("10.0.0.5", None).unwrap());
        assert_eq!(s.bans().unwrap(), vec![alice]);
        assert!(s.remove_ban("10.0.0.5").unwrap());
        assert!(!s.remove_ban("10.0.0.5").unwrap());
        assert_eq!(s.bans().unwrap(), vec![]);
    }

    #[test]
    fn published_ports_change_and_go_with_their_tenant() {
        let s = Store::open_in_memory().unwrap();
        let alice = new_tenant("alice");
        s.insert_tenant(&alice, now()).unwrap();
        let p = PublishedPort {
            tenant: alice.name.clone(),
            port: 8000,
            public: false,
            created_at: now(),
        };
        s.publish_port(&p).unwrap();
        s.publish_port(&PublishedPort {
            public: true,
            ..p.clone()
        })
        .unwrap();
        let listed = s.published_ports(&alice.name).unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].public);
        let ghost: TenantName = "ghost".parse().unwrap();
        assert!(matches!(
            s.publish_port(&PublishedPort {
                tenant: ghost,
                ..p.clone()
            }),
            Err(StoreError::TenantNotFound { .. })
        ));
        assert!(s.unpublish_port(&alice.name, 8000).unwrap());
        assert!(!s.unpublish_port(&alice.name, 8000).unwrap());
        s.publish_port(&p).unwrap();
        s.delete_tenant(&alice.name).unwrap();
        assert!(s.published_ports(&alice.name).unwrap().is_empty());
    }

    #[test]
    fn tokens_are_found_by_hash_until_revoked() {
        let s = Store::open_in_memory().unwrap();
        s.add_token("ci", Role::Admin, "h1", now()).unwrap();
        s.add_token("dash", Role::Viewer, "h2", now()).unwrap();
        assert!(matches!(
            s.add_token("ci", Role::Viewer, "h3", now()),
            Err(StoreError::TokenExists { .. })
        ));
        assert_eq!(
            s.token_by_hash("h2").unwrap().map(|t| t.role),
            Some(Role::Viewer)
        );
        assert_eq!(s.token_by_hash("nope").unwrap(), None);
        s.revoke_token("ci", now()).unwrap();
        assert_eq!(s.token_by_hash("h1").unwrap(), None);
        assert!(matches!(
            s.revoke_token("ci", now()),
            Err(StoreError::TokenNotFound { .. })
        ));
        assert_eq!(s.tokens().unwrap().len(), 2);
    }

    #[test]
    fn policies_and_activity_round_trip() {
        let s = Store::open_in_memory().unwrap();
        let mut t = new_tenant("alice");
        t.policy = Policy {
            expires_at: Some(now()),
            ephemeral: true,
            autostart: true,
            idle_stop_secs: Some(0),
        };
        s.insert_tenant(&t, now()).unwrap();
        let later = now() + chrono::Duration::seconds(5);
        s.touch(&t.name, later).unwrap();
        let r = s.require(&t.name).unwrap();
        assert_eq!((r.policy, r.last_active_at), (t.policy, Some(later)));
        s.set_policy(&t.name, &Policy::default(), later).unwrap();
        assert_eq!(s.require(&t.name).unwrap().egress, Egress::All);
        s.set_egress(&t.name, Egress::None, later).unwrap();
        assert_eq!(s.require(&t.name).unwrap().egress, Egress::None);
        assert_eq!(s.require(&t.name).unwrap().policy, Policy::default());
        let ghost: TenantName = "ghost".parse().unwrap();
        assert!(matches!(
            s.set_policy(&ghost, &Policy::default(), later),
            Err(StoreError::TenantNotFound { .. })
        ));
    }

    #[test]
    fn web_passwords_and_sessions_go_with_the_tenant() {
        let s = Store::open_in_memory().unwrap();
        let t = new_tenant("alice");
        s.insert_tenant(&t, now()).unwrap();
        assert_eq!(s.web_password(&t.name).unwrap(), None);
        s.set_web_password(&t.name, "$argon2id$one", now()).unwrap();
        let later = now() + chrono::Duration::hours(1);
        s.add_web_session("h1", &t.name, now(), later).unwrap();
        assert_eq!(s.web_session("h1").unwrap(), Some((t.name.clone(), later)));
        // A new password signs every session out.
        s.set_web_password(&t.name, "$argon2id$two", now()).unwrap();
        assert_eq!(
            s.web_password(&t.name).unwrap().as_deref(),
            Some("$argon2id$two")
        );
        assert_eq!(s.web_session("h1").unwrap(), None);
        s.add_web_session("h2", &t.name, now(), later).unwrap();
        s.remove_web_session("h2").unwrap();
        assert_eq!(s.web_session("h2").unwrap(), None);
        s.add_web_session("h3", &t.name, now(), later).unwrap();
        s.add_login_link("l1", &t.name, now(), later).unwrap();
        assert_eq!(
            s.take_login_link("l1").unwrap(),
            Some((t.name.clone(), later))
        );
        assert_eq!(s.take_login_link("l1").unwrap(), None, "a link works once");
        s.add_login_link("l2", &t.name, now(), later).unwrap();
        s.delete_tenant(&t.name).unwrap();
        assert_eq!(s.take_login_link("l2").unwrap(), None);
        assert_eq!(s.web_session("h3").unwrap(), None);
        let ghost: TenantName = "ghost".parse().unwrap();
        assert!(matches!(
            s.set_web_password(&ghost, "x", now()),
            Err(StoreError::TenantNotFound { .. })
        ));
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hostel.db");
        drop(Store::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::TooNew {
                found: 99,
                known: 15
            })
        ));
    }

    /// Regression (#13): a zero-byte `hostel.db` was taken as a new instance, orphaning the
    /// running workspaces. Only a missing file makes a new store.
    #[test]
    fn issue_13_an_empty_or_foreign_file_is_not_a_new_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hostel.db");
        std::fs::write(&path, "").unwrap();
        let err = Store::open(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} is not a hostel store: the file is empty",
                path.display()
            )
        );
        assert!(err.hint().unwrap().contains("restore"));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left as it was");
        std::fs::write(
            &path,
            "not sqlite at all, just some text that is long enough",
        )
        .unwrap();
        assert_eq!(
            Store::open(&path).unwrap_err().to_string(),
            format!(
                "{} is not a hostel store: it is not a SQLite database",
                path.display()
            )
        );
        std::fs::remove_file(&path).unwrap();
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY);")
            .unwrap();
        drop(other);
        assert_eq!(
            Store::open(&path).unwrap_err().to_string(),
            format!(
                "{} is not a hostel store: it is a SQLite database of something else (no hostel \
                 tables)",
                path.display()
            )
        );
        std::fs::remove_file(&path).unwrap();
        let id = Store::open(&path).unwrap().instance_id().unwrap();
        let again = Store::open(&path).unwrap();
        assert_eq!(
            again.instance_id().unwrap(),
            id,
            "an existing store is kept"
        );
        again.set_meta("boot_id", "b1").unwrap();
        again.set_meta("boot_id", "b2").unwrap();
        assert_eq!(again.meta("boot_id").unwrap().as_deref(), Some("b2"));
        assert_eq!(again.meta("nothing").unwrap(), None);
    }
}
