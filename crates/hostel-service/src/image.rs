//! The workspace image: built locally, versioned by content, cached.
//!
//! `image build` first finds a base: the configured one if the engine has it or can pull it,
//! else `hostel-base:<suite>`, imported from `images/<suite>-rootfs.tar` (kept as a cache) which
//! is made by debootstrap when missing. On the base it builds `image/Dockerfile` with the
//! workspace init. The version is a hash of the Dockerfile, the init and the base image id, so
//! a rerun with nothing changed finds `<repository>:<version>` and returns in well under a second.

use crate::{Hostel, Progress, ServiceError};
use hostel_core::{ImageProfile, Outcome};
use hostel_runtime::{BuildRequest, LABEL_IMAGE_VERSION, LABEL_MANAGED, RuntimeError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// A file of a profile's build context: name, text, mode.
type ContextFile = (&'static str, &'static str, u32);

/// The build context of each profile (the base also carries the init and the app supervisor).
fn context_files(profile: ImageProfile) -> &'static [ContextFile] {
    match profile {
        ImageProfile::Base => &[
            (
                "Dockerfile",
                include_str!("../../../image/Dockerfile"),
                0o644,
            ),
            (
                "hostel-init",
                include_str!("../../../image/hostel-init"),
                0o755,
            ),
            (
                "hostel-app",
                include_str!("../../../image/hostel-app"),
                0o755,
            ),
        ],
        ImageProfile::Dev => &[(
            "Dockerfile",
            include_str!("../../../image/profiles/dev/Dockerfile"),
            0o644,
        )],
        ImageProfile::Desktop => &[
            (
                "Dockerfile",
                include_str!("../../../image/profiles/desktop/Dockerfile"),
                0o644,
            ),
            (
                "hostel-desktop",
                include_str!("../../../image/profiles/desktop/hostel-desktop"),
                0o755,
            ),
        ],
        ImageProfile::Docker => &[(
            "Dockerfile",
            include_str!("../../../image/profiles/docker/Dockerfile"),
            0o644,
        )],
    }
}

/// The system layer appended to the base Dockerfile where workspaces boot an init of their own
/// ([`hostel_runtime::EngineInfo::system_init`]), and its unit for hostel-init.
const SYSTEM_LAYER: &str = include_str!("../../../image/system/Dockerfile.system");
const SYSTEM_UNIT: &str = include_str!("../../../image/system/hostel-init.service");

/// A profile's build context for an engine: its files, and for the base on a system-init
/// engine the system layer after its Dockerfile and the unit it enables.
fn files(profile: ImageProfile, system: bool) -> Vec<(&'static str, String, u32)> {
    let mut out: Vec<(&'static str, String, u32)> = context_files(profile)
        .iter()
        .map(|(n, b, m)| (*n, (*b).to_owned(), *m))
        .collect();
    if system && profile == ImageProfile::Base {
        for (name, body, _) in &mut out {
            if *name == "Dockerfile" {
                body.push('\n');
                body.push_str(SYSTEM_LAYER);
            }
        }
        out.push(("hostel-init.service", SYSTEM_UNIT.to_owned(), 0o644));
    }
    out
}

/// What a build needs to know of its engine.
#[derive(Debug, Clone, Copy)]
struct BuildEnv<'a> {
    /// The network its downloads go through, where the engine builds on one of hostel's:
    /// made when a build first needs it (a cached build makes none).
    network: Option<&'a tokio::sync::OnceCell<String>>,
    /// Whether workspaces boot a system init (the base gets the system layer).
    system: bool,
}

/// An image as `image list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ImageView {
    /// `repository:version`
    pub reference: String,
    /// Version label.
    pub version: String,
    /// Engine id.
    pub id: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether new tenants get it.
    pub current: bool,
    /// Tenants whose workspace uses it.
    pub tenants: Vec<String>,
}

/// What `image build` did.
#[derive(Debug, Clone, Serialize)]
pub struct BuildOutcome {
    /// The versioned reference.
    pub reference: String,
    /// Whether it was already built (nothing done).
    pub cached: bool,
}

impl Hostel {
    fn latest_ref(&self) -> String {
        format!("{}:latest", self.config.image.repository)
    }

    /// The moving tag of a profile's newest build.
    fn profile_ref(&self, profile: ImageProfile) -> String {
        format!("{}:{}", self.config.image.repository, profile.tag())
    }

    /// The image a tenant gets: `wanted` if given (a profile's name, `dev`, or a reference; it
    /// must exist), else the newest base build, as its versioned reference.
    pub(crate) async fn resolve_image(&self, wanted: Option<&str>) -> Result<String, ServiceError> {
        let reference = match wanted {
            Some(w) => match w.parse::<ImageProfile>() {
                Ok(profile) => self.profile_ref(profile),
                Err(_) => w.to_owned(),
            },
            None => self.latest_ref(),
        };
        let Some(info) = self.runtime.image(&reference).await? else {
            return Err(ServiceError::ImageMissing { reference });
        };
        if info.labels.contains_key(hostel_core::NESTING_LABEL)
            && !self.engine_facts().await?.nesting
        {
            return Err(ServiceError::NestingUnsupported { image: reference });
        }
        // A tag of our repository (`:latest` included) is pinned to the version it points at,
        // so a later build does not move the tenant behind the admin's back.
        let repo = &self.config.image.repository;
        let ours = reference.rsplit_once(':').is_some_and(|(r, _)| r == repo);
        Ok(match info.labels.get(LABEL_IMAGE_VERSION) {
            Some(v) if ours => format!("{repo}:{v}"),
            _ => reference,
        })
    }

    async fn base_image(&self, progress: &dyn Progress) -> Result<String, ServiceError> {
        let cfg = &self.config.image;
        if self.runtime.image(&cfg.base).await?.is_some() {
            return Ok(cfg.base.clone());
        }
        let local = format!("hostel-base:{}", cfg.suite);
        if self.runtime.image(&local).await?.is_some() {
            return Ok(local);
        }
        progress.step(&format!("pulling {}", cfg.base));
        match self.runtime.pull(&cfg.base).await {
            Ok(()) => return Ok(cfg.base.clone()),
            Err(e @ RuntimeError::EngineUnreachable { .. }) => return Err(e.into()),
            Err(e) => progress.step(&format!("pull failed ({e}); building the base locally")),
        }
        let tar = self
            .paths
            .images()
            .join(format!("{}-rootfs.tar", cfg.suite));
        if !tar.exists() {
            // Minutes of subprocesses and disk: off the async executor.
            hostel_store::blocking(|| self.debootstrap(&tar, progress))?;
        }
        progress.step(&format!("importing {} as {local}", tar.display()));
        let bytes = hostel_store::blocking(|| std::fs::read(&tar))
            .map_err(ServiceError::io("read", &tar))?;
        self.runtime.import(bytes, &local).await?;
        Ok(local)
    }

    fn build_lock_path(&self) -> std::path::PathBuf {
        self.paths.images().join("build.lock")
    }

    /// Holds the root's image-build lock until the returned guard drops; waits for a build
    /// that holds it.
    pub(crate) async fn lock_builds(
        &self,
    ) -> Result<nix::fcntl::Flock<std::fs::File>, ServiceError> {
        use nix::fcntl::{Flock, FlockArg};
        let path = self.build_lock_path();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(ServiceError::io("open", &path))?;
        let shown = path.display().to_string();
        tokio::task::spawn_blocking(move || Flock::lock(file, FlockArg::LockExclusive))
            .await
            .map_err(|e| ServiceError::Io {
                action: "lock",
                path: shown.clone(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map_err(|(_, errno)| ServiceError::Io {
                action: "lock",
                path: shown,
                source: errno.into(),
            })
    }

    /// Removes what a build cut short left (a debootstrap folder, a half-written tarball),
    /// unless a build runs now; returns what it removed.
    pub(crate) fn clean_build_leftovers(&self) -> Result<Vec<String>, ServiceError> {
        use nix::fcntl::{Flock, FlockArg};
        let dir = self.paths.images();
        let path = self.build_lock_path();
        let Ok(file) = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
        else {
            return Ok(Vec::new());
        };
        let Ok(_held) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            return Ok(Vec::new());
        };
        let mut removed = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
            Err(e) => return Err(ServiceError::io("read", &dir)(e)),
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let p = e.path();
            let gone = if name.ends_with("-rootfs.tmp") && p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else if name.ends_with(".tar.partial") {
                std::fs::remove_file(&p)
            } else {
                continue;
            };
            gone.map_err(ServiceError::io("remove", &p))?;
            removed.push(name);
        }
        Ok(removed)
    }

    /// Makes a minimal Debian root filesystem tarball at `tar` with debootstrap.
    fn debootstrap(&self, tar: &Path, progress: &dyn Progress) -> Result<(), ServiceError> {
        let cfg = &self.config.image;
        let dir = self
            .paths
            .images()
            .join(format!("{}-rootfs.tmp", cfg.suite));
        let _ = std::fs::remove_dir_all(&dir);
        progress.step(&format!(
            "debootstrapping Debian {} from {} (a minute or two)",
            cfg.suite, cfg.mirror
        ));
        let fail = |message: String| ServiceError::BaseImage { message };
        let run = |cmd: &mut Command| -> Result<(), ServiceError> {
            let out = cmd
                .output()
                .map_err(|e| fail(format!("cannot run {:?}: {e}", cmd.get_program())))?;
            if out.status.success() {
                return Ok(());
            }
            let err = String::from_utf8_lossy(&out.stderr);
            let out_text = String::from_utf8_lossy(&out.stdout);
            let tail: Vec<&str> = err.lines().chain(out_text.lines()).rev().take(5).collect();
            Err(fail(format!(
                "{:?} failed: {}",
                cmd.get_program(),
                tail.join(" / ")
            )))
        };
        run(Command::new("debootstrap")
            .args(["--variant=minbase", &cfg.suite])
            .arg(&dir)
            .arg(&cfg.mirror))?;
        // Downloaded packages, apt lists and the build host's identity do not belong in an image.
        for sub in ["var/cache/apt/archives", "var/lib/apt/lists"] {
            let p = dir.join(sub);
            if let Ok(entries) = std::fs::read_dir(&p) {
                for e in entries.flatten() {
                    if e.path().is_file() {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
        for f in ["etc/hostname", "etc/resolv.conf"] {
            let _ = std::fs::write(dir.join(f), "");
        }
        let sources = format!(
            "deb {m} {s} main\ndeb {m} {s}-updates main\ndeb http://deb.debian.org/debian-security {s}-security main\n",
            m = cfg.mirror,
            s = cfg.suite
        );
        std::fs::write(dir.join("etc/apt/sources.list"), sources)
            .map_err(ServiceError::io("write", &dir))?;
        let partial = tar.with_extension("tar.partial");
        run(Command::new("tar")
            .args(["--numeric-owner", "--xattrs", "-C"])
            .arg(&dir)
            .arg("-cf")
            .arg(&partial)
            .arg("."))?;
        std::fs::rename(&partial, tar).map_err(ServiceError::io("rename", tar))?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    /// Builds the base workspace image unless this version exists (`force` rebuilds without
    /// cache).
    pub async fn image_build(
        &self,
        force: bool,
        progress: &dyn Progress,
    ) -> Result<BuildOutcome, ServiceError> {
        self.image_build_profile(ImageProfile::Base, force, progress)
            .await
    }

    /// Builds a profile's image and those it builds on, each unless its version exists
    /// (`force` rebuilds the asked one without cache).
    pub async fn image_build_profile(
        &self,
        profile: ImageProfile,
        force: bool,
        progress: &dyn Progress,
    ) -> Result<BuildOutcome, ServiceError> {
        let result = self.image_build_inner(profile, force, progress).await;
        let ev = match &result {
            Ok(o) => self
                .event("image.build", Outcome::Ok)
                .with("profile", profile)
                .with("image", &o.reference)
                .with("cached", o.cached),
            Err(e) => self
                .event("image.build", Outcome::Failed)
                .with("profile", profile)
                .with("error", e.code()),
        };
        self.record(ev)?;
        result
    }

    async fn image_build_inner(
        &self,
        profile: ImageProfile,
        force: bool,
        progress: &dyn Progress,
    ) -> Result<BuildOutcome, ServiceError> {
        let engine = self.runtime.ping().await?;
        if profile.chain().iter().any(|p| p.nests()) && !engine.nesting {
            return Err(ServiceError::NestingUnsupported {
                image: self.profile_ref(profile),
            });
        }
        // One build at a time on a root: they share the debootstrap folder and tarball.
        let _building = self.lock_builds().await?;
        let network = tokio::sync::OnceCell::new();
        let env = BuildEnv {
            network: engine.build_network.then_some(&network),
            system: engine.system_init,
        };
        let built = self.image_build_chain(profile, force, env, progress).await;
        if network.initialized() {
            self.remove_build_network().await;
        }
        built
    }

    /// The network a build runs on, made the first time one needs it.
    async fn build_network(&self, env: BuildEnv<'_>) -> Result<Option<String>, ServiceError> {
        match env.network {
            Some(cell) => Ok(Some(
                cell.get_or_try_init(|| self.ensure_build_network())
                    .await?
                    .clone(),
            )),
            None => Ok(None),
        }
    }

    /// Builds a profile and those it builds on (the build lock held), for the engine `env`
    /// describes.
    async fn image_build_chain(
        &self,
        profile: ImageProfile,
        force: bool,
        env: BuildEnv<'_>,
        progress: &dyn Progress,
    ) -> Result<BuildOutcome, ServiceError> {
        // A build writes gigabytes: the engine's storage grows along, daemon or not.
        self.require_engine_room("an image build").await?;
        let _growing = KeepGrowing(tokio::spawn({
            let runtime = self.runtime.clone();
            async move {
                loop {
                    tokio::time::sleep(crate::POOL_CHECK).await;
                    if let Err(e) = runtime.keep_storage().await {
                        tracing::warn!(error = %e, "cannot keep the engine's storage");
                    }
                }
            }
        }));
        let mut parent = self.base_image(progress).await?;
        let mut outcome = BuildOutcome {
            reference: parent.clone(),
            cached: true,
        };
        for p in profile.chain() {
            outcome = self
                .build_one(p, &parent, force && p == profile, env, progress)
                .await?;
            parent.clone_from(&outcome.reference);
        }
        Ok(outcome)
    }

    /// Builds one profile on `parent` unless this version exists.
    async fn build_one(
        &self,
        profile: ImageProfile,
        parent: &str,
        force: bool,
        env: BuildEnv<'_>,
        progress: &dyn Progress,
    ) -> Result<BuildOutcome, ServiceError> {
        let parent_id = self
            .runtime
            .image(parent)
            .await?
            .map(|i| i.id)
            .ok_or_else(|| ServiceError::ImageMissing {
                reference: parent.to_owned(),
            })?;
        let version = image_version(profile, &parent_id, env.system);
        let repo = &self.config.image.repository;
        let reference = format!("{repo}:{version}");
        if !force && self.runtime.image(&reference).await?.is_some() {
            if self
                .runtime
                .image(&self.profile_ref(profile))
                .await?
                .is_none()
            {
                let network = self.build_network(env).await?;
                self.runtime
                    .build(
                        &self.build_request(profile, parent, &version, false, network, env)?,
                        &|_| {},
                    )
                    .await?;
            }
            return Ok(BuildOutcome {
                reference,
                cached: true,
            });
        }
        progress.step(&format!("building {reference} ({profile}) on {parent}"));
        let network = self.build_network(env).await?;
        self.runtime
            .build(
                &self.build_request(profile, parent, &version, force, network, env)?,
                // The engine's `Step N/M : ...` lines are steps; what the commands print is
                // their detail.
                &|line| {
                    if line.starts_with("Step ") {
                        progress.step(&line);
                    } else {
                        progress.detail(&line);
                    }
                },
            )
            .await?;
        Ok(BuildOutcome {
            reference,
            cached: false,
        })
    }

    fn build_request(
        &self,
        profile: ImageProfile,
        parent: &str,
        version: &str,
        no_cache: bool,
        network: Option<String>,
        env: BuildEnv<'_>,
    ) -> Result<BuildRequest, ServiceError> {
        let repo = &self.config.image.repository;
        Ok(BuildRequest {
            context_tar: build_context(profile, env.system)
                .map_err(ServiceError::io("pack", Path::new("image/")))?,
            tags: vec![format!("{repo}:{version}"), self.profile_ref(profile)],
            build_args: BTreeMap::from([("BASE".to_owned(), parent.to_owned())]),
            labels: BTreeMap::from([
                (LABEL_MANAGED.to_owned(), "1".to_owned()),
                (LABEL_IMAGE_VERSION.to_owned(), version.to_owned()),
            ]),
            no_cache,
            network,
        })
    }

    /// The workspace images the engine has, newest first, with the tenants using each.
    pub async fn image_list(&self) -> Result<Vec<ImageView>, ServiceError> {
        let current = self.runtime.image(&self.latest_ref()).await?.map(|i| i.id);
        let tenants = self.store.tenants()?;
        let repo = &self.config.image.repository;
        let mut out: Vec<ImageView> = self
            .runtime
            .images(LABEL_IMAGE_VERSION)
            .await?
            .into_iter()
            .filter_map(|i| {
                let version = i.labels.get(LABEL_IMAGE_VERSION)?.clone();
                let reference = format!("{repo}:{version}");
                if !i.tags.contains(&reference) {
                    return None;
                }
                Some(ImageView {
                    tenants: tenants
                        .iter()
                        .filter(|t| t.image == reference)
                        .map(|t| t.name.to_string())
                        .collect(),
                    current: current.as_deref() == Some(i.id.as_str()),
                    reference,
                    version,
                    id: i.id,
                    size: i.size,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            b.current
                .cmp(&a.current)
                .then(a.reference.cmp(&b.reference))
        });
        Ok(out)
    }
}

/// The version of a profile's image built from these files on this parent: a hash, after the
/// profile's name but for the base (`3f2a...`, `dev-91c0...`).
fn image_version(profile: ImageProfile, parent_id: &str, system: bool) -> String {
    let mut h = Sha256::new();
    for (name, body, mode) in files(profile, system) {
        for part in [name.as_bytes(), body.as_bytes(), &mode.to_le_bytes()] {
            h.update(part);
            h.update(b"\0");
        }
    }
    h.update(host_ca(profile).as_bytes());
    h.update(parent_id.as_bytes());
    let digest = hex::encode(h.finalize());
    let short = digest.get(..12).unwrap_or(&digest);
    match profile {
        ImageProfile::Base => short.to_owned(),
        other => format!("{other}-{short}"),
    }
}

/// Where Debian keeps the host's trusted CAs.
const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The host's CA bundle for a profile build's HTTPS downloads (empty for the base, which
/// downloads over Debian's mirror only, or when the host has none): a host behind a
/// TLS-inspecting proxy trusts its CA, and the build must too.
fn host_ca(profile: ImageProfile) -> String {
    match profile {
        ImageProfile::Base => String::new(),
        _ => std::fs::read_to_string(HOST_CA_BUNDLE).unwrap_or_default(),
    }
}

/// A profile's build context as an uncompressed tar: its files, and for the profiles the
/// host's CA bundle as `host-ca.crt`.
fn build_context(profile: ImageProfile, system: bool) -> std::io::Result<Vec<u8>> {
    let mut all = files(profile, system);
    if profile != ImageProfile::Base {
        all.push(("host-ca.crt", host_ca(profile), 0o644));
    }
    let mut b = tar::Builder::new(Vec::new());
    for (name, body, mode) in &all {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(0);
        header.set_cksum();
        b.append_data(&mut header, name, body.as_bytes())?;
    }
    b.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_depends_on_parent_and_profile() {
        let base = ImageProfile::Base;
        assert_eq!(
            image_version(base, "sha256:a", false),
            image_version(base, "sha256:a", false)
        );
        assert_ne!(
            image_version(base, "sha256:a", false),
            image_version(base, "sha256:b", false)
        );
        assert_ne!(
            image_version(base, "sha256:a", false),
            image_version(base, "sha256:a", true),
            "the system layer is part of the version"
        );
        assert_eq!(
            image_version(ImageProfile::Dev, "sha256:a", false),
            image_version(ImageProfile::Dev, "sha256:a", true),
            "a profile above the base has no system layer of its own"
        );
        assert_eq!(image_version(base, "x", false).len(), 12);
        let dev = image_version(ImageProfile::Dev, "x", false);
        assert!(dev.starts_with("dev-") && dev.len() == 16, "{dev}");
    }

    fn entries(profile: ImageProfile, system: bool) -> Vec<(String, u32)> {
        let bytes = build_context(profile, system).unwrap();
        let mut a = tar::Archive::new(bytes.as_slice());
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn contexts_hold_each_profiles_files_with_their_modes() {
        assert_eq!(
            entries(ImageProfile::Base, false),
            vec![
                ("Dockerfile".into(), 0o644),
                ("hostel-init".into(), 0o755),
                ("hostel-app".into(), 0o755)
            ]
        );
        assert_eq!(
            entries(ImageProfile::Base, true),
            vec![
                ("Dockerfile".into(), 0o644),
                ("hostel-init".into(), 0o755),
                ("hostel-app".into(), 0o755),
                ("hostel-init.service".into(), 0o644)
            ]
        );
        let system = files(ImageProfile::Base, true);
        let dockerfile = &system[0].1;
        assert!(
            dockerfile.starts_with(context_files(ImageProfile::Base)[0].1),
            "the base Dockerfile first"
        );
        assert!(
            dockerfile
                .trim_end()
                .ends_with(r#"ENTRYPOINT ["/sbin/init"]"#),
            "systemd is the init"
        );
        assert_eq!(
            entries(ImageProfile::Desktop, true),
            vec![
                ("Dockerfile".into(), 0o644),
                ("hostel-desktop".into(), 0o755),
                ("host-ca.crt".into(), 0o644)
            ]
        );
    }

    #[test]
    fn profile_dockerfiles_build_on_their_parent_and_name_their_apps() {
        for p in [ImageProfile::Dev, ImageProfile::Desktop] {
            let dockerfile = context_files(p)[0].1;
            assert!(dockerfile.contains("FROM ${BASE}"), "{p}");
            assert!(dockerfile.contains("io.hostel.apps="), "{p}");
        }
        let docker = context_files(ImageProfile::Docker)[0].1;
        assert!(docker.contains("FROM ${BASE}"));
        assert!(docker.contains(&format!("{}=\"docker\"", hostel_core::NESTING_LABEL)));
        assert!(ImageProfile::Docker.nests() && !ImageProfile::Dev.nests());
    }
}

/// Grows the engine's storage while an image builds; stops when dropped.
#[derive(Debug)]
struct KeepGrowing(tokio::task::JoinHandle<()>);

impl Drop for KeepGrowing {
    fn drop(&mut self) {
        self.0.abort();
    }
}
