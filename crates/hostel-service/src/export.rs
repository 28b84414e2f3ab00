//! Export and import of a tenant, to back it up or move it to another host or engine kind: one
//! zstd-compressed tar that holds `hostel-export.json` (the tenant's record: quota, policies,
//! keys, web password hash, snapshot schedule, published ports) and `home/` (its files, each
//! owned by the id it has inside the workspace).
//!
//! An export reads a frozen copy of the home ([`HomeStorage::freeze`]): read-only and out of
//! the workspace's reach, so the tenant cannot change the tree while the host walks it, and no
//! symlink is ever followed. An import fills a home made for it before its workspace exists,
//! so only the archive shapes that tree: every path must stay in the home, no entry is written
//! through a symlink or over another, devices are refused, owners are mapped into the
//! workspace's range, and the home's quota bounds what an archive can write. zstd's checksum
//! makes a cut or changed archive fail the import, which then removes what it made.
//!
//! [`HomeStorage::freeze`]: hostel_runtime::storage::HomeStorage::freeze

use crate::tenant::CreateRequest;
use crate::{Hostel, Progress, ServiceError, TenantInfo};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use hostel_core::network::Egress;
use hostel_core::policy::Policy;
use hostel_core::snapshot::Schedule;
use hostel_core::{ByteSize, Outcome, Quota, SshPublicKey, TenantName};
use hostel_runtime::storage::HomeStorage;
use hostel_runtime::{IdMapping, MAPPED_IDS, OVERFLOW_ID};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The archive format this hostel writes and reads.
pub const FORMAT: u32 = 1;

/// The record's name in the archive; it comes first.
const MANIFEST: &str = "hostel-export.json";

/// The folder in the archive that holds the home.
const HOME: &str = "home";

/// The most a record may take (it is read whole).
const MANIFEST_LIMIT: u64 = 1024 * 1024;

/// How many files with several hard links an export remembers to write their other names as
/// links; past it they are written as copies, so the daemon's memory stays bounded whatever
/// the home holds.
const LINKS_MAX: usize = 100_000;

/// How many compressed chunks may wait for a slow reader (or for the unpacker).
const CHUNKS: usize = 8;

/// The size of a chunk an export hands out.
const CHUNK: usize = 256 * 1024;

/// How often an import asks the homes pool to keep room ahead of what it writes, as the
/// daemon does every few seconds (a CLI without a daemon has no one else to ask).
const ROOM_EVERY: u64 = 128 * 1024 * 1024;

/// The free room in the pool below which an import writes back what it has written before
/// asking the pool for room: the pool grows once less than half its headroom (at least 1 GiB)
/// is free.
const ROOM_MARGIN: u64 = 512 * 1024 * 1024;

/// zstd's level: fast enough to keep up with a disk on one core, about gzip's ratio.
const LEVEL: i32 = 3;

/// The tenant an archive holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`] when written.
    pub format: u32,
    /// The hostel version that wrote it.
    pub hostel: String,
    /// When.
    pub exported_at: DateTime<Utc>,
    /// The engine kind the tenant ran on (`docker`, `incus`).
    pub engine: String,
    /// Its name there.
    pub name: TenantName,
    /// Its image there (an import takes this host's newest, or `--image`).
    pub image: String,
    /// Its limits.
    pub quota: Quota,
    /// Its lifecycle policies.
    pub policy: Policy,
    /// Where its workspace may connect.
    pub egress: Egress,
    /// Its SSH keys, as OpenSSH lines.
    pub keys: Vec<String>,
    /// The hash of its web password (PHC string), if it has one.
    pub web_password: Option<String>,
    /// Its snapshot schedule (the snapshots themselves stay behind).
    pub snapshot_schedule: Option<Schedule>,
    /// Its published ports.
    pub ports: Vec<ExportedPort>,
}

/// A published port in an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedPort {
    /// The port inside the workspace.
    pub port: u16,
    /// Open to anyone.
    pub public: bool,
}

/// What `import` is asked for besides the archive.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// The name the tenant gets here; unset: the archive's.
    pub name: Option<TenantName>,
    /// A home quota other than the archive's.
    pub disk: Option<ByteSize>,
    /// An image other than this host's newest (a profile or a reference).
    pub image: Option<String>,
}

/// An export as it is written: compressed chunks, the last an error when it failed part-way
/// (the bytes before it are no archive). Dropping it stops the export.
pub struct Export {
    /// The archive's bytes.
    pub body: BoxStream<'static, Result<Vec<u8>, ServiceError>>,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export").finish_non_exhaustive()
    }
}

/// What an archive writer or reader counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counted {
    /// Files, folders, links and pipes.
    pub entries: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Devices and sockets an export left out.
    pub skipped: u64,
}

impl Hostel {
    /// Writes `name` as an archive, streamed: the record, then the home from a frozen copy.
    /// The workspace may run meanwhile; the copy is removed when the archive ends, fails or
    /// its reader goes away. Audited as `tenant.export` when it ends, with its size.
    pub async fn export(self: &Arc<Self>, name: &TenantName) -> Result<Export, ServiceError> {
        let actor = self.actor_now();
        let prepared = async {
            let ids = self.engine_ids().await?;
            let _op = self.ops.operation(name).await?;
            let manifest = self.manifest(name)?;
            let frozen = self.storage.freeze(name)?;
            Ok::<_, ServiceError>((manifest, frozen, ids))
        }
        .await;
        let (manifest, frozen, ids) = match prepared {
            Ok(p) => p,
            Err(e) => {
                self.record(
                    self.event_by(&actor, "tenant.export", Outcome::Failed)
                        .with("error", e.code())
                        .tenant(name.as_str()),
                )?;
                return Err(e);
            }
        };
        let (tx, rx) = mpsc::channel(CHUNKS);
        let (h, name) = (self.clone(), name.clone());
        tokio::task::spawn_blocking(move || {
            let mut out = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
                sent: 0,
            };
            let written = write_archive(&manifest, &frozen, ids, &mut out)
                .and_then(|counted| out.flush().map(|()| counted))
                .map_err(ServiceError::io("export the home at", &frozen));
            if let Err(e) = h.storage.thaw(&name, &frozen) {
                tracing::warn!(tenant = %name, error = %e, "cannot remove the export's frozen copy");
            }
            let ev = match &written {
                Ok(c) => h
                    .event_by(&actor, "tenant.export", Outcome::Ok)
                    .with("entries", c.entries)
                    .with("bytes", c.bytes)
                    .with("skipped", c.skipped)
                    .with("archive_bytes", out.sent),
                Err(e) => h
                    .event_by(&actor, "tenant.export", Outcome::Failed)
                    .with("error", e.code()),
            };
            if let Err(e) = h.record(ev.tenant(name.as_str())) {
                tracing::warn!(tenant = %name, error = %e, "cannot audit an export");
            }
            if let Err(e) = written {
                let _ = tx.blocking_send(Err(e));
            }
        });
        let body = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed();
        Ok(Export { body })
    }

    /// The record of `name` as an archive holds it.
    fn manifest(&self, name: &TenantName) -> Result<Manifest, ServiceError> {
        let t = self.require_ready(name)?;
        let keys = self
            .store
            .keys(name)?
            .into_iter()
            .map(|k| k.key.openssh)
            .collect();
        let ports = self
            .store
            .published_ports(name)?
            .into_iter()
            .map(|p| ExportedPort {
                port: p.port,
                public: p.public,
            })
            .collect();
        Ok(Manifest {
            format: FORMAT,
            hostel: env!("CARGO_PKG_VERSION").into(),
            exported_at: self.now(),
            engine: self.config.engine.kind.to_string(),
            name: t.name,
            image: t.image,
            quota: t.quota,
            policy: t.policy,
            egress: t.egress,
            keys,
            web_password: self.store.web_password(name)?,
            snapshot_schedule: t.snapshots,
            ports,
        })
    }

    /// Makes a tenant from an archive: reads its record, creates the tenant as `create` does
    /// with the home filled from the archive before the workspace starts, then gives it its
    /// password, schedule and ports. A failure at any step (a cut or changed archive, a home
    /// too small) removes what the import made, as a failed create does; the reconciler
    /// finishes that after a crash. Audited as `tenant.import`.
    pub async fn import(
        self: &Arc<Self>,
        archive: BoxStream<'static, io::Result<Vec<u8>>>,
        req: ImportRequest,
        progress: &dyn Progress,
    ) -> Result<TenantInfo, ServiceError> {
        let actor = self.actor_now();
        let mut from = None;
        let result = self.import_inner(archive, req, progress, &mut from).await;
        let ev = match &result {
            Ok(info) => self
                .event_by(&actor, "tenant.import", Outcome::Ok)
                .tenant(&info.summary.name),
            Err(e) => self
                .event_by(&actor, "tenant.import", Outcome::Failed)
                .with("error", e.code()),
        };
        let ev = match from {
            Some(m) => ev.with("from", m),
            None => ev,
        };
        self.record(ev)?;
        result
    }

    async fn import_inner(
        self: &Arc<Self>,
        mut archive: BoxStream<'static, io::Result<Vec<u8>>>,
        req: ImportRequest,
        progress: &dyn Progress,
        from: &mut Option<String>,
    ) -> Result<TenantInfo, ServiceError> {
        let (chunks_tx, chunks_rx) = mpsc::channel(CHUNKS);
        let feeder = tokio::spawn(async move {
            while let Some(chunk) = archive.next().await {
                let failed = chunk.is_err();
                if chunks_tx.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        });
        let (manifest_tx, manifest_rx) = oneshot::channel();
        let (go_tx, go_rx) = oneshot::channel::<Target>();
        let worker = tokio::task::spawn_blocking(move || {
            read_archive(
                ChannelReader {
                    rx: chunks_rx,
                    chunk: Vec::new(),
                    at: 0,
                },
                manifest_tx,
                go_rx,
            )
        });
        let filler = Filler {
            go: std::sync::Mutex::new(Some(go_tx)),
            worker: tokio::sync::Mutex::new(Some(worker)),
        };
        let result = async {
            progress.step("reading the archive's record");
            let manifest = match manifest_rx.await {
                Ok(m) => m?,
                // The reader ended before it had a record: its error says why.
                Err(_) => return Err(filler.result().await.err().unwrap_or_else(|| bad("empty"))),
            };
            *from = Some(manifest.name.to_string());
            let (create, extras) = manifest_to_request(manifest, req)?;
            let create = self.fit_policy(create, progress);
            let name = create.name.clone();
            let extras = self.fit_extras(extras, progress);
            let info = self.create_filled(create, progress, &filler).await?;
            progress.step("giving it its password, schedule and ports");
            self.apply_extras(&name, extras)?;
            Ok(info)
        }
        .await;
        feeder.abort();
        result
    }

    /// An archive's TTL that ran out before the import is dropped, and with it `ephemeral`
    /// (which needs one): otherwise the daemon would delete, or purge, the tenant the import
    /// just made at its next check.
    fn fit_policy(&self, mut create: CreateRequest, progress: &dyn Progress) -> CreateRequest {
        if let Some(at) = create.policy.expires_at.filter(|at| *at <= self.now()) {
            progress.step(&format!(
                "its TTL ran out at {at}; it comes back without one{}",
                if create.policy.ephemeral {
                    ", and not ephemeral"
                } else {
                    ""
                }
            ));
            create.policy.expires_at = None;
            create.policy.ephemeral = false;
        }
        create
    }

    /// What of an archive's schedule and ports this host takes: a schedule keeps at most
    /// `[storage] snapshots_max`, and ports are published only where `[http] domain` gives
    /// them origins.
    fn fit_extras(&self, mut extras: Extras, progress: &dyn Progress) -> Extras {
        let max = self.config.storage.snapshots_max;
        if let Some(s) = extras.schedule.as_mut().filter(|s| s.keep > max) {
            progress.step(&format!(
                "its schedule kept {}; this host keeps at most {max} ([storage] snapshots_max)",
                s.keep
            ));
            s.keep = max;
        }
        if extras.schedule.is_some_and(|s| s.keep == 0) {
            extras.schedule = None;
        }
        if self.config.http.domain.is_none() && !extras.ports.is_empty() {
            progress.step(&format!(
                "leaving out its {} published ports: this host has no [http] domain to give them origins",
                extras.ports.len()
            ));
            extras.ports.clear();
        }
        extras
    }

    /// The web password, schedule and ports an import gives the tenant it made.
    fn apply_extras(&self, name: &TenantName, extras: Extras) -> Result<(), ServiceError> {
        let now = self.now();
        if let Some(hash) = extras.web_password {
            self.store.set_web_password(name, &hash, now)?;
        }
        if extras.schedule.is_some() {
            self.store
                .set_snapshot_schedule(name, extras.schedule, now)?;
        }
        for p in extras.ports {
            self.store.publish_port(&hostel_store::PublishedPort {
                tenant: name.clone(),
                port: p.port,
                public: p.public,
                created_at: now,
            })?;
        }
        Ok(())
    }
}

/// What an import sets after the create.
struct Extras {
    web_password: Option<String>,
    schedule: Option<Schedule>,
    ports: Vec<ExportedPort>,
}

fn bad(reason: impl Into<String>) -> ServiceError {
    ServiceError::BadArchive {
        reason: reason.into(),
    }
}

/// The create an archive's record asks for, checked whole before anything is made.
fn manifest_to_request(
    m: Manifest,
    req: ImportRequest,
) -> Result<(CreateRequest, Extras), ServiceError> {
    if m.format != FORMAT {
        return Err(bad(format!(
            "it is format {}, written by hostel {}; this hostel reads format {FORMAT}",
            m.format, m.hostel
        )));
    }
    let keys = m
        .keys
        .iter()
        .map(|k| k.parse::<SshPublicKey>())
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(hash) = &m.web_password {
        argon2::PasswordHash::new(hash).map_err(|e| bad(format!("its password hash: {e}")))?;
    }
    if let Some(p) = m.ports.iter().find(|p| p.port == 0) {
        return Err(bad(format!("it publishes port {}", p.port)));
    }
    let name = req.name.unwrap_or(m.name);
    let create = CreateRequest {
        cpus: Some(m.quota.cpus),
        memory: Some(m.quota.memory),
        disk: Some(req.disk.unwrap_or(m.quota.disk)),
        pids: Some(m.quota.pids),
        gpus: Some(m.quota.gpus),
        disk_io: Some(m.quota.disk_io),
        image: req.image,
        policy: m.policy,
        egress: Some(m.egress),
        ..CreateRequest::new(name, keys)
    };
    Ok((
        create,
        Extras {
            web_password: m.web_password,
            schedule: m.snapshot_schedule,
            ports: m.ports,
        },
    ))
}

/// Where an import unpacks its home.
pub(crate) struct Target {
    /// The new home.
    home: PathBuf,
    /// How owners map.
    ids: IdMapping,
    /// The storage that holds it, to keep room in its pool.
    storage: Arc<dyn HomeStorage>,
}

/// The step of a create that fills the new home from the archive being read.
pub(crate) struct Filler {
    go: std::sync::Mutex<Option<oneshot::Sender<Target>>>,
    worker: tokio::sync::Mutex<Option<tokio::task::JoinHandle<Result<Counted, ServiceError>>>>,
}

impl std::fmt::Debug for Filler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filler").finish_non_exhaustive()
    }
}

impl Filler {
    /// Unpacks the archive's home into `home` (new and empty), owners mapped by `ids`, with
    /// `storage` asked to keep room in its pool as it goes.
    pub(crate) async fn fill(
        &self,
        home: &Path,
        ids: IdMapping,
        storage: Arc<dyn HomeStorage>,
    ) -> Result<(), ServiceError> {
        let go = self.go.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(go) = go {
            let _ = go.send(Target {
                home: home.to_path_buf(),
                ids,
                storage,
            });
        }
        self.result().await.map(|_| ())
    }

    /// How the reader ended (once).
    async fn result(&self) -> Result<Counted, ServiceError> {
        let Some(worker) = self.worker.lock().await.take() else {
            return Err(bad("read twice"));
        };
        worker.await.map_err(|e| ServiceError::Io {
            action: "read",
            path: "the archive".into(),
            source: io::Error::other(e.to_string()),
        })?
    }
}

/// Reads an archive: hands its record over, waits to be told where the home goes (or that the
/// import stopped), unpacks the home there, then checks the archive ends as written.
fn read_archive(
    reader: ChannelReader,
    manifest_tx: oneshot::Sender<Result<Manifest, ServiceError>>,
    go: oneshot::Receiver<Target>,
) -> Result<Counted, ServiceError> {
    let corrupt = |e: io::Error| bad(format!("it cannot be read: {e}"));
    let decoder = zstd::stream::read::Decoder::new(reader)
        .map_err(corrupt)?
        .single_frame();
    let mut archive = tar::Archive::new(decoder);
    let mut entries = archive.entries().map_err(corrupt)?;
    let manifest = (|| {
        let mut first = entries
            .next()
            .ok_or_else(|| bad("it is empty"))?
            .map_err(corrupt)?;
        if first.path().map_err(corrupt)?.as_ref() != Path::new(MANIFEST) {
            return Err(bad(format!("it does not start with {MANIFEST}")));
        }
        let mut json = Vec::new();
        (&mut first)
            .take(MANIFEST_LIMIT + 1)
            .read_to_end(&mut json)
            .map_err(corrupt)?;
        if json.len() as u64 > MANIFEST_LIMIT {
            return Err(bad(format!(
                "{MANIFEST} is larger than {MANIFEST_LIMIT} bytes"
            )));
        }
        serde_json::from_slice::<Manifest>(&json).map_err(|e| bad(format!("{MANIFEST}: {e}")))
    })();
    let read = manifest.is_ok();
    let _ = manifest_tx.send(manifest);
    if !read {
        return Ok(Counted::default());
    }
    let Ok(target) = go.blocking_recv() else {
        return Ok(Counted::default());
    };
    let counted = unpack_home(&mut entries, &target)?;
    // Past the tar's end only its padding and the frame's checksum may come.
    let mut rest = archive.into_inner();
    let trailing =
        io::copy(&mut (&mut rest).take(MANIFEST_LIMIT), &mut io::sink()).map_err(corrupt)?;
    if trailing >= MANIFEST_LIMIT {
        return Err(bad("it goes on past its end"));
    }
    Ok(counted)
}

/// Writes the archive: the record, then the tree at `root` as `home/`, owners as the
/// workspace sees them. Never follows a symlink.
pub(crate) fn write_archive(
    manifest: &Manifest,
    root: &Path,
    ids: IdMapping,
    out: impl Write,
) -> io::Result<Counted> {
    let mut encoder = zstd::stream::write::Encoder::new(out, LEVEL)?;
    encoder.include_checksum(true)?;
    let mut tar = tar::Builder::new(encoder);
    let json = serde_json::to_vec_pretty(manifest).map_err(io::Error::other)?;
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(json.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(u64::try_from(manifest.exported_at.timestamp()).unwrap_or(0));
    tar.append_data(&mut header, MANIFEST, json.as_slice())?;
    let mut counted = Counted::default();
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry = entry.map_err(io::Error::from)?;
        let rel = entry.path().strip_prefix(root).map_err(io::Error::other)?;
        let name = Path::new(HOME).join(rel);
        let meta = entry.path().symlink_metadata()?;
        let mut header = tar::Header::new_gnu();
        header.set_uid(u64::from(ids.inside_id(meta.uid())));
        header.set_gid(u64::from(ids.inside_id(meta.gid())));
        header.set_mode(meta.mode() & 0o7777);
        header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        header.set_size(0);
        let kind = meta.file_type();
        use std::os::unix::fs::FileTypeExt;
        if kind.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            tar.append_data(&mut header, &name, io::empty())?;
        } else if kind.is_symlink() {
            header.set_entry_type(tar::EntryType::Symlink);
            tar.append_link(&mut header, &name, std::fs::read_link(entry.path())?)?;
        } else if kind.is_file() {
            let id = (meta.dev(), meta.ino());
            if meta.nlink() > 1 {
                if let Some(first) = links.get(&id) {
                    header.set_entry_type(tar::EntryType::Link);
                    tar.append_link(&mut header, &name, first)?;
                    counted.entries += 1;
                    continue;
                }
                if links.len() < LINKS_MAX {
                    links.insert(id, name.clone());
                }
            }
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
                .open(entry.path())?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            tar.append_data(&mut header, &name, Exact::new(file, meta.len()))?;
            counted.bytes += meta.len();
        } else if kind.is_fifo() {
            header.set_entry_type(tar::EntryType::Fifo);
            tar.append_data(&mut header, &name, io::empty())?;
        } else {
            counted.skipped += 1;
            continue;
        }
        counted.entries += 1;
    }
    tar.into_inner()?.finish()?.flush()?;
    Ok(counted)
}

/// A file's bytes, exactly `size` of them: zeros past an early end, so a tar entry's length
/// always matches its header.
struct Exact<R> {
    inner: io::Take<R>,
    left: u64,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, size: u64) -> Self {
        Exact {
            inner: inner.take(size),
            left: size,
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let mut n = self.inner.read(buf)?;
        if n == 0 {
            n = buf
                .len()
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            if let Some(zeros) = buf.get_mut(..n) {
                zeros.fill(0);
            }
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Unpacks the archive's `home/` entries into `home`, a new folder nothing else writes to.
fn unpack_home<R: Read>(
    entries: &mut tar::Entries<'_, R>,
    into: &Target,
) -> Result<Counted, ServiceError> {
    let (home, ids) = (into.home.as_path(), into.ids);
    let mut counted = Counted::default();
    let (mut room_asked_at, mut synced_at) = (0, 0);
    // Folders whose times are set once their content is in, innermost last.
    let mut open: Vec<(PathBuf, u64)> = Vec::new();
    let mut root_time = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("it cannot be read: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| bad(format!("an entry's name: {e}")))?
            .into_owned();
        let rel = home_relative(&path)?;
        let header = entry.header();
        let owner = |id: io::Result<u64>| {
            let inside = id
                .ok()
                .and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v < MAPPED_IDS)
                .unwrap_or(OVERFLOW_ID);
            ids.home_uid(inside)
        };
        let (uid, gid) = (owner(header.uid()), owner(header.gid()));
        let mode = header.mode().map_err(|e| bad(e.to_string()))? & 0o7777;
        let mtime = header.mtime().unwrap_or(0);
        let kind = header.entry_type();
        let Some(rel) = rel else {
            if !kind.is_dir() {
                return Err(bad("its home is not a folder"));
            }
            set_owner(home, uid, gid)?;
            set_mode(home, mode)?;
            root_time = Some(mtime);
            continue;
        };
        while let Some((dir, time)) = open.pop() {
            if rel.starts_with(&dir) {
                open.push((dir, time));
                break;
            }
            set_mtime(&home.join(&dir), time)?;
        }
        check_parents(home, &rel)?;
        let target = home.join(&rel);
        if target.symlink_metadata().is_ok() {
            return Err(bad(format!("it holds home/{} twice", rel.display())));
        }
        let fail = |e: io::Error| unpack_error(&rel, e);
        match kind {
            tar::EntryType::Directory => {
                std::fs::create_dir(&target).map_err(fail)?;
                set_owner(&target, uid, gid)?;
                set_mode(&target, mode)?;
                open.push((rel.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
                    .open(&target)
                    .map_err(fail)?;
                counted.bytes += copy_entry(&mut entry, &mut file, &rel)?;
                if counted.bytes - room_asked_at >= ROOM_EVERY {
                    keep_room(&file, into, counted.bytes, &mut synced_at);
                    room_asked_at = counted.bytes;
                }
                nix::unistd::fchown(
                    &file,
                    Some(nix::unistd::Uid::from_raw(uid)),
                    Some(nix::unistd::Gid::from_raw(gid)),
                )
                .map_err(|e| fail(e.into()))?;
                // After the owner: a change of owner clears set-id bits.
                file.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(fail)?;
                file.set_modified(time_of(mtime)).map_err(fail)?;
            }
            tar::EntryType::Symlink => {
                let to = entry
                    .link_name()
                    .map_err(|e| bad(e.to_string()))?
                    .ok_or_else(|| bad(format!("home/{} links nowhere", rel.display())))?;
                std::os::unix::fs::symlink(&to, &target).map_err(fail)?;
                set_owner(&target, uid, gid)?;
                set_mtime(&target, mtime)?;
            }
            tar::EntryType::Link => {
                let to = entry
                    .link_name()
                    .map_err(|e| bad(e.to_string()))?
                    .ok_or_else(|| bad(format!("home/{} links nowhere", rel.display())))?;
                let Some(to) = home_relative(&to)? else {
                    return Err(bad(format!("home/{} links to the home", rel.display())));
                };
                check_parents(home, &to)?;
                let source = home.join(&to);
                if !source
                    .symlink_metadata()
                    .is_ok_and(|m| m.file_type().is_file())
                {
                    return Err(bad(format!(
                        "home/{} links to home/{}, which is no file before it",
                        rel.display(),
                        to.display()
                    )));
                }
                std::fs::hard_link(&source, &target).map_err(fail)?;
            }
            tar::EntryType::Fifo => {
                nix::unistd::mkfifo(&target, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|e| fail(e.into()))?;
                set_owner(&target, uid, gid)?;
                set_mode(&target, mode)?;
                set_mtime(&target, mtime)?;
            }
            other => {
                return Err(bad(format!(
                    "home/{} is a {other:?}: an archive holds files, folders, links and pipes only",
                    rel.display()
                )));
            }
        }
        counted.entries += 1;
    }
    while let Some((dir, time)) = open.pop() {
        set_mtime(&home.join(&dir), time)?;
    }
    if let Some(time) = root_time {
        set_mtime(home, time)?;
    }
    Ok(counted)
}

/// Asks the homes pool to keep room ahead of an import that has written `written` bytes, of
/// which those since `synced_at` were not written back yet. The pool counts what it has allocated, not what waits in the page
/// cache, so where those bytes could be more than it has free the import is written back
/// first (`syncfs`); with room to spare it is not, which would cost the import half its speed.
fn keep_room(file: &std::fs::File, into: &Target, written: u64, synced_at: &mut u64) {
    let unsynced = written.saturating_sub(*synced_at);
    let free = nix::sys::statvfs::fstatvfs(file)
        .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
        .unwrap_or(0);
    if free < unsynced.saturating_add(ROOM_MARGIN) {
        if let Err(e) = nix::unistd::syncfs(file) {
            tracing::warn!(error = %e, "cannot write the import back");
        }
        *synced_at = written;
    }
    if let Err(e) = into.storage.maintain() {
        tracing::warn!(error = %e, "cannot grow the homes pool during an import");
    }
}

/// Copies an entry's content to its file: a read that fails is the archive's fault, a write
/// that fails the home's.
fn copy_entry(
    entry: &mut impl Read,
    file: &mut std::fs::File,
    rel: &Path,
) -> Result<u64, ServiceError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(bad(format!("it cannot be read: {e}"))),
        };
        file.write_all(buf.get(..n).unwrap_or_default())
            .map_err(|e| unpack_error(rel, e))?;
        total += n as u64;
    }
}

/// The path below `home/` of an archive's entry (`None` for `home/` itself); anything else,
/// or a path that could leave the home, is refused.
fn home_relative(path: &Path) -> Result<Option<PathBuf>, ServiceError> {
    let mut parts = path.components();
    if !matches!(parts.next(), Some(Component::Normal(top)) if top == HOME) {
        return Err(bad(format!("{} is not in {HOME}/", path.display())));
    }
    let mut rel = PathBuf::new();
    for part in parts {
        match part {
            Component::Normal(p) => rel.push(p),
            Component::CurDir => {}
            _ => return Err(bad(format!("{} would leave the home", path.display()))),
        }
    }
    Ok((!rel.as_os_str().is_empty()).then_some(rel))
}

/// Refuses an entry whose parent folders are not folders the import made (a symlink among
/// them could lead out of the home).
fn check_parents(home: &Path, rel: &Path) -> Result<(), ServiceError> {
    let mut at = home.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for part in parent.components() {
        at.push(part);
        if !at.symlink_metadata().is_ok_and(|m| m.file_type().is_dir()) {
            return Err(bad(format!(
                "home/{} comes before its folder home/{}",
                rel.display(),
                at.strip_prefix(home).unwrap_or(&at).display()
            )));
        }
    }
    Ok(())
}

/// An unpacking error: the quota or the pool's room, said as such; anything else as it is.
fn unpack_error(rel: &Path, e: io::Error) -> ServiceError {
    const EDQUOT: i32 = 122;
    if e.raw_os_error() == Some(EDQUOT) {
        return ServiceError::ArchiveTooLarge {
            at: rel.display().to_string(),
        };
    }
    ServiceError::Io {
        action: "unpack",
        path: format!("home/{}", rel.display()),
        source: e,
    }
}

fn set_owner(path: &Path, uid: u32, gid: u32) -> Result<(), ServiceError> {
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| ServiceError::io("give", path)(e.into()))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), ServiceError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(ServiceError::io("set the mode of", path))
}

/// Sets the modification time of `path` itself, a symlink's too (its access time with it).
fn set_mtime(path: &Path, secs: u64) -> Result<(), ServiceError> {
    let t = nix::sys::time::TimeSpec::new(i64::try_from(secs).unwrap_or(0), 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| ServiceError::io("set the time of", path)(e.into()))
}

fn time_of(secs: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

/// A blocking reader over the chunks a task forwards from an async stream.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at >= self.chunk.len() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let rest = self.chunk.get(self.at..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), rest.get(..n)) {
            to.copy_from_slice(from);
        }
        self.at += n;
        Ok(n)
    }
}

/// A blocking writer that hands chunks to an async reader; fails once the reader is gone.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Vec<u8>, ServiceError>>,
    buf: Vec<u8>,
    sent: u64,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.sent += chunk.len() as u64;
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT,
            hostel: "test".into(),
            exported_at: Utc::now(),
            engine: "docker".into(),
            name: "alice".parse().unwrap(),
            image: "x".into(),
            quota: Quota {
                cpus: "1".parse().unwrap(),
                memory: ByteSize::mib(256),
                disk: ByteSize::gib(1),
                pids: 100,
                gpus: hostel_core::Gpus::None,
                disk_io: hostel_core::DiskIo::Unlimited,
            },
            policy: Policy::default(),
            egress: Egress::default(),
            keys: Vec::new(),
            web_password: None,
            snapshot_schedule: None,
            ports: Vec::new(),
        }
    }

    /// Unpacks `archive` into the new folder `into` as an import does.
    fn unpack(archive: &[u8], into: &Path, ids: IdMapping) -> Result<Counted, ServiceError> {
        let (tx, rx) = mpsc::channel(CHUNKS);
        tx.try_send(Ok(archive.to_vec())).unwrap();
        drop(tx);
        let (manifest_tx, manifest_rx) = oneshot::channel();
        let (go_tx, go_rx) = oneshot::channel();
        let storage = Arc::new(hostel_runtime::storage::DirStorage::new(into));
        let _ = go_tx.send(Target {
            home: into.to_path_buf(),
            ids,
            storage,
        });
        let reader = ChannelReader {
            rx,
            chunk: Vec::new(),
            at: 0,
        };
        let counted = read_archive(reader, manifest_tx, go_rx);
        assert_eq!(
            manifest_rx.blocking_recv().unwrap().unwrap().name.as_str(),
            "alice"
        );
        counted
    }

    #[test]
    fn hard_links_stay_links_and_owners_map_between_id_ranges() {
        let from = tempfile::tempdir().unwrap();
        let base = 100_000;
        std::fs::write(from.path().join("a"), "one file, two names").unwrap();
        std::fs::hard_link(from.path().join("a"), from.path().join("b")).unwrap();
        std::os::unix::fs::lchown(from.path().join("a"), Some(base + 1000), Some(base + 1000))
            .unwrap();
        // Owned by nobody the workspace knows: the overflow id inside.
        std::fs::write(from.path().join("c"), "").unwrap();
        std::os::unix::fs::lchown(from.path().join("c"), Some(7), Some(7)).unwrap();
        let mut archive = Vec::new();
        let counted = write_archive(
            &manifest(),
            from.path(),
            IdMapping::Shared { base },
            &mut archive,
        )
        .unwrap();
        assert_eq!((counted.entries, counted.bytes), (4, 19));

        let to = tempfile::tempdir().unwrap();
        let home = to.path().join("home");
        std::fs::create_dir(&home).unwrap();
        unpack(&archive, &home, IdMapping::Isolated).unwrap();
        let meta = |n: &str| home.join(n).symlink_metadata().unwrap();
        assert_eq!((meta("a").ino(), meta("a").nlink()), (meta("b").ino(), 2));
        assert_eq!((meta("a").uid(), meta("a").gid()), (1000, 1000));
        assert_eq!(meta("c").uid(), OVERFLOW_ID);
        assert_eq!(
            std::fs::read_to_string(home.join("b")).unwrap(),
            "one file, two names"
        );
    }

    #[test]
    fn ids_map_inside_and_out() {
        let shared = IdMapping::Shared { base: 100_000 };
        assert_eq!(shared.inside_id(101_000), 1000);
        assert_eq!(shared.inside_id(99_999), OVERFLOW_ID);
        assert_eq!(shared.inside_id(100_000 + MAPPED_IDS), OVERFLOW_ID);
        assert_eq!(shared.home_uid(shared.inside_id(100_123)), 100_123);
        assert_eq!(IdMapping::Isolated.inside_id(1000), 1000);
        assert_eq!(IdMapping::Host.inside_id(1 << 20), OVERFLOW_ID);
    }
}
