//! `check` (is this host ready?) and `doctor` (do store and engine agree?).

use crate::spec::container_name;
use crate::{Hostel, Quiet, ServiceError};
use hostel_core::Outcome;
use hostel_core::lifecycle::{TenantStatus, WorkspaceState};
use hostel_runtime::{LABEL_INSTANCE, LABEL_TENANT};
use serde::Serialize;

/// One line of `check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckItem {
    /// What was checked: `engine`, `layer`, `image`, `network`, `tools`, `storage`, `disk`.
    pub name: &'static str,
    /// Whether it is fine.
    pub ok: bool,
    /// What was found.
    pub message: String,
    /// What to do, when not fine.
    pub hint: Option<String>,
}

/// One drift `doctor` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The tenant (or container) concerned.
    pub subject: String,
    /// What is wrong.
    pub problem: String,
    /// What `--fix` does about it.
    pub fix: String,
    /// Whether it was fixed in this run.
    pub fixed: bool,
}

/// Tools hostel runs on the host, with the package that has each.
const TOOLS: &[(&str, &str)] = &[
    ("mount", "mount"),
    ("btrfs", "btrfs-progs"),
    ("mkfs.btrfs", "btrfs-progs"),
    ("debootstrap", "debootstrap"),
    ("tar", "tar"),
];

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}

impl Hostel {
    /// Checks engine, image, storage, tools and free space; one item per subject.
    pub async fn check(&self) -> Vec<CheckItem> {
        let mut items = Vec::new();
        let item = |name, r: Result<String, ServiceError>| match r {
            Ok(message) => CheckItem {
                name,
                ok: true,
                message,
                hint: None,
            },
            Err(e) => CheckItem {
                name,
                ok: false,
                message: e.to_string(),
                hint: e.hint(),
            },
        };
        let engine = self.runtime.ping().await;
        let engine_ok = engine.is_ok();
        let layer = engine.as_ref().ok().map(|e| {
            if e.layer_limits {
                CheckItem {
                    name: "layer",
                    ok: true,
                    message: "each workspace's writable layer is limited to its disk quota \
                              (the engine's btrfs driver)"
                        .to_owned(),
                    hint: None,
                }
            } else {
                CheckItem {
                    name: "layer",
                    ok: false,
                    message: "the engine cannot limit a workspace's writable layer: what a tenant \
                              writes outside its home (/tmp, packages) can fill the host's disk"
                        .to_owned(),
                    hint: Some(
                        "run hostel's engine on the btrfs storage driver: `scripts/down`, then \
                         `scripts/up` (see docs/storage.md)"
                            .to_owned(),
                    ),
                }
            }
        });
        items.push(item(
            "engine",
            engine
                .map(|e| {
                    format!(
                        "docker {} (API {}), {} CPUs, {}, {}",
                        e.version,
                        e.api_version,
                        e.cpus,
                        hostel_core::ByteSize::bytes(e.memory).human(),
                        match e.userns_base {
                            Some(b) => format!("user namespaces (root inside is uid {b})"),
                            None => "no user namespaces (root inside is root)".to_owned(),
                        }
                    )
                })
                .map_err(ServiceError::from),
        ));
        items.extend(layer);
        if engine_ok {
            items.push(item("image", self.resolve_image(None).await));
        }
        let rules = self.filter_rules();
        items.push(match self.filter.check(&rules).await {
            Ok(true) => CheckItem {
                name: "network",
                ok: true,
                message: format!(
                    "packet filter {}: rules for {}+ in force; workspaces reach nothing on the host",
                    self.filter_kind(),
                    rules.prefix
                ),
                hint: None,
            },
            Ok(false) => CheckItem {
                name: "network",
                ok: true,
                message: format!(
                    "packet filter {}: rules for {}+ not installed yet; the first workspace start \
                     or `hostel serve` installs them",
                    self.filter_kind(),
                    rules.prefix
                ),
                hint: None,
            },
            Err(e) => CheckItem {
                name: "network",
                ok: false,
                message: e.to_string(),
                hint: Some("install iptables (scripts/engine does)".into()),
            },
        });
        let missing: Vec<String> = TOOLS
            .iter()
            .filter(|(t, _)| !on_path(t))
            .map(|(t, p)| format!("{t} (package {p})"))
            .collect();
        items.push(if missing.is_empty() {
            CheckItem {
                name: "tools",
                ok: true,
                message: "mount, btrfs, mkfs.btrfs, debootstrap, tar found".into(),
                hint: None,
            }
        } else {
            CheckItem {
                name: "tools",
                ok: false,
                message: format!("missing: {}", missing.join(", ")),
                hint: Some("run scripts/engine, or apt-get install the packages named".into()),
            }
        });
        let btrfs = std::fs::read_to_string("/proc/filesystems")
            .map(|f| f.contains("btrfs"))
            .unwrap_or(false);
        if !btrfs {
            items.push(CheckItem {
                name: "storage",
                ok: false,
                message: "the kernel has no btrfs".into(),
                hint: Some("load it with `modprobe btrfs`".into()),
            });
        } else {
            items.push(item(
                "storage",
                self.storage
                    .prepare()
                    .map(|()| {
                        format!(
                            "homes pool {} of {} at {}",
                            self.paths.pool_image().display(),
                            self.storage.capacity().human(),
                            self.paths.users().display()
                        )
                    })
                    .map_err(ServiceError::from),
            ));
        }
        items.push(match nix::sys::statvfs::statvfs(self.paths.root()) {
            Ok(s) => {
                let free = hostel_core::ByteSize::bytes(s.blocks_available() * s.fragment_size());
                let ok = free >= hostel_core::ByteSize::gib(2);
                CheckItem {
                    name: "disk",
                    ok,
                    message: format!(
                        "{} free under {}",
                        free.human(),
                        self.paths.root().display()
                    ),
                    hint: (!ok).then(|| {
                        "free space: homes, images and the database need room to grow".to_owned()
                    }),
                }
            }
            Err(e) => CheckItem {
                name: "disk",
                ok: false,
                message: format!("cannot read free space: {e}"),
                hint: None,
            },
        });
        items
    }

    /// Finds drift between store, engine and storage; with `fix`, repairs it. Never deletes
    /// tenant data: a home without a tenant is reported, not removed.
    pub async fn doctor(&self, fix: bool) -> Result<Vec<Finding>, ServiceError> {
        self.storage.prepare()?;
        let mut findings = Vec::new();
        let containers = self
            .runtime
            .list(&[(LABEL_INSTANCE.to_owned(), self.instance.clone())])
            .await?;
        let tenants = self.store.tenants()?;
        if !self.filter.check(&self.filter_rules()).await? {
            let rules = self.filter_rules();
            let mut f = Finding {
                subject: format!("packet filter ({}+)", rules.prefix),
                problem: "hostel's rules are not in force".into(),
                fix: "install them".into(),
                fixed: false,
            };
            if fix {
                self.filter.apply(&rules).await?;
                f.fixed = true;
            }
            findings.push(f);
        }
        for c in &containers {
            let owner = c.labels.get(LABEL_TENANT);
            if !tenants.iter().any(|t| Some(&t.name.to_string()) == owner) {
                let mut f = Finding {
                    subject: c.name.clone(),
                    problem: "container has no tenant in the store".into(),
                    fix: "remove the container (it holds no home)".into(),
                    fixed: false,
                };
                if fix {
                    self.runtime.remove(&c.name).await?;
                    f.fixed = true;
                }
                findings.push(f);
            }
        }
        let networks = self
            .runtime
            .networks(&[(LABEL_INSTANCE.to_owned(), self.instance.clone())])
            .await?;
        for n in &networks {
            let owner = n.labels.get(LABEL_TENANT);
            if !tenants.iter().any(|t| Some(&t.name.to_string()) == owner) {
                let mut f = Finding {
                    subject: n.name.clone(),
                    problem: "network has no tenant in the store".into(),
                    fix: "remove the network".into(),
                    fixed: false,
                };
                if fix {
                    f.fixed = self.runtime.network_remove(&n.name).await.is_ok();
                }
                findings.push(f);
            }
        }
        for t in &tenants {
            let name = t.name.to_string();
            match t.status {
                TenantStatus::Creating => {
                    let mut f = Finding {
                        subject: name.clone(),
                        problem: "tenant is half-made (a create was interrupted)".into(),
                        fix: "roll the create back (the home is kept)".into(),
                        fixed: false,
                    };
                    if fix {
                        self.runtime.remove(&container_name(&t.name)).await?;
                        self.store.delete_tenant(&t.name)?;
                        f.fixed = true;
                    }
                    findings.push(f);
                    continue;
                }
                TenantStatus::Purging => {
                    let mut f = Finding {
                        subject: name.clone(),
                        problem: "tenant is half-purged (a purge was interrupted)".into(),
                        fix: "finish the purge that was asked for".into(),
                        fixed: false,
                    };
                    if fix {
                        self.finish_purge(&t.name).await?;
                        f.fixed = true;
                    }
                    findings.push(f);
                    continue;
                }
                TenantStatus::Ready => {}
            }
            if !self.storage.exists(&t.name) {
                let mut f = Finding {
                    subject: name.clone(),
                    problem: format!(
                        "home {} is missing",
                        self.storage.home_path(&t.name).display()
                    ),
                    fix: "make a new empty home with the tenant's quota".into(),
                    fixed: false,
                };
                if fix {
                    self.storage.ensure(&t.name, t.quota.disk)?;
                    f.fixed = true;
                }
                findings.push(f);
            }
            let observed = containers
                .iter()
                .find(|c| c.labels.get(LABEL_TENANT) == Some(&name))
                .map(|c| WorkspaceState::from_engine_status(&c.status))
                .unwrap_or(WorkspaceState::Deleted);
            let problem = match (t.desired, observed) {
                (WorkspaceState::Running, WorkspaceState::Deleted)
                | (WorkspaceState::Stopped, WorkspaceState::Deleted) => {
                    Some("workspace container is gone (removed outside hostel?)")
                }
                (WorkspaceState::Running, WorkspaceState::Stopped) => {
                    Some("workspace should run but is stopped")
                }
                _ => None,
            };
            if let Some(problem) = problem {
                let mut f = Finding {
                    subject: name.clone(),
                    problem: problem.into(),
                    fix: if t.desired == WorkspaceState::Running {
                        "re-create and start the workspace".into()
                    } else {
                        "re-create the workspace, stopped".into()
                    },
                    fixed: false,
                };
                if fix {
                    self.ensure_running(t, &Quiet).await?;
                    if t.desired == WorkspaceState::Stopped {
                        self.runtime.stop(&container_name(&t.name), 10).await?;
                    }
                    f.fixed = true;
                }
                findings.push(f);
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.paths.users()) {
            for e in entries.flatten() {
                let dir = e.file_name().to_string_lossy().into_owned();
                let known = tenants.iter().any(|t| t.name.as_str() == dir);
                if !known && e.path().join("home").is_dir() {
                    findings.push(Finding {
                        subject: dir.clone(),
                        problem: format!("home {} has no tenant", e.path().join("home").display()),
                        fix: format!(
                            "none (tenant data is never deleted by doctor); `hostel create {dir}` \
                             adopts it"
                        ),
                        fixed: false,
                    });
                }
            }
        }
        if fix {
            let fixed = findings.iter().filter(|f| f.fixed).count();
            self.record(self.event("doctor.fix", Outcome::Ok).with("fixed", fixed))?;
        }
        Ok(findings)
    }
}
