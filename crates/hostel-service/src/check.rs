//! `check` (is this host ready?) and `doctor` (do store and engine agree?).

use crate::{Hostel, ServiceError};
use hostel_core::reconcile::{Repair, plan};
use hostel_core::{Outcome, TenantName};
use hostel_runtime::storage::PoolState;
use hostel_runtime::{LABEL_INSTANCE, LABEL_TENANT, LayerQuota};
use serde::Serialize;

/// One line of `check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckItem {
    /// What was checked: `engine`, `layer`, `engine-storage`, `image`, `network`, `tools`,
    /// `storage`, `disk`.
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
    /// Whether the reconciler repairs it by itself (a tenant's drift); the others (what no
    /// tenant owns, the packet filter) are the admin's call or `hostel serve`'s own.
    #[serde(skip)]
    pub reconciled: bool,
}

/// What is wrong with the homes pool, and what to do about it; `None` when it can take writes.
fn pool_problem(s: &PoolState) -> Option<(String, String)> {
    store_problem(s, "or delete files in the homes")
}

/// The same for any store hostel grows (the homes pool, the engine's storage); `free_more`
/// names what else frees space in it.
fn store_problem(s: &PoolState, free_more: &str) -> Option<(String, String)> {
    if s.read_only {
        return Some((
            "it is mounted read-only (btrfs does so after a write it could not make)".into(),
            "stop every workspace (`hostel stop`), unmount it, free space on the host, and \
             mount it again (`hostel check` does for the homes pool, `scripts/engine` for the \
             engine's)"
                .into(),
        ));
    }
    if s.is_full() {
        return Some((
            format!(
                "it is full: {} free, and the host's filesystem has {} free, of which {} stays \
                 free",
                s.free().human(),
                s.host_free.human(),
                s.host_reserve.human()
            ),
            format!(
                "free space on the host's filesystem (the daemon grows it within seconds), \
                 {free_more}"
            ),
        ));
    }
    if !s.allocated {
        return Some((
            "its image is sparse: a full host disk would turn it read-only".into(),
            "allocate it (`hostel doctor --fix`, or the daemon within seconds)".into(),
        ));
    }
    None
}

/// What frees space in the engine's storage besides the host.
const ENGINE_FREE_MORE: &str = "or remove unused images (`hostel image list` shows them)";

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
        let engine_storage = if engine.is_ok() {
            self.runtime.keep_storage().await.ok().flatten()
        } else {
            None
        };
        let layer = engine.as_ref().ok().map(|e| match e.layer_quota {
            Some(LayerQuota::OwnWrites) => CheckItem {
                name: "layer",
                ok: true,
                message: "each workspace's writable layer is limited to its disk quota \
                          (the engine's btrfs driver, simple quotas)"
                    .to_owned(),
                hint: None,
            },
            Some(LayerQuota::WholeRoot) => CheckItem {
                name: "layer",
                ok: true,
                message: "each workspace's writable layer is limited to its disk quota \
                          (the engine's btrfs driver, full quota groups: each deleted \
                          workspace costs the kernel minutes of a CPU; simple quotas, Linux \
                          6.7 and later, do not)"
                    .to_owned(),
                hint: None,
            },
            None => CheckItem {
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
            },
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
                        e.ids
                    )
                })
                .map_err(ServiceError::from),
        ));
        items.extend(layer);
        items.extend(engine_storage.map(|s| {
            let (ok, problem, hint) = store_problem(&s, ENGINE_FREE_MORE)
                .map_or((true, String::new(), None), |(p, h)| {
                    (false, format!(": {p}"), Some(h))
                });
            CheckItem {
                name: "engine-storage",
                ok,
                message: format!(
                    "the engine's storage: {} used of {}, grows up to {} ({} free on the \
                     host){problem}",
                    s.used.human(),
                    s.size.human(),
                    s.cap.human(),
                    s.host_free.human()
                ),
                hint,
            }
        }));
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
            items.push(match self.storage.maintain() {
                Ok(state) => self.pool_item(state),
                Err(e) => item("storage", Err(e.into())),
            });
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

    /// The `storage` line: where the homes pool is, how full, and whether it can take writes.
    fn pool_item(&self, state: Option<PoolState>) -> CheckItem {
        let at = format!(
            "homes pool {} at {}",
            self.paths.pool_image().display(),
            self.paths.users().display()
        );
        let Some(s) = state else {
            return CheckItem {
                name: "storage",
                ok: true,
                message: format!("{at}, up to {}", self.storage.capacity().human()),
                hint: None,
            };
        };
        let (ok, problem, hint) = pool_problem(&s).map_or((true, String::new(), None), |(p, h)| {
            (false, format!(": {p}"), Some(h))
        });
        CheckItem {
            name: "storage",
            ok,
            message: format!(
                "{at}: {} used of {}, grows up to {} ({} free on the host){problem}",
                s.used.human(),
                s.size.human(),
                s.cap.human(),
                s.host_free.human()
            ),
            hint,
        }
    }

    /// Finds drift between store, engine and storage; with `fix`, repairs it, in one pass. Uses
    /// the reconciler's plan and repairs, and like it leaves alone a tenant an operation is
    /// working on, so it is safe while traffic runs. Never deletes tenant data: a home without
    /// a tenant is reported, not removed.
    pub async fn doctor(&self, fix: bool) -> Result<Vec<Finding>, ServiceError> {
        self.storage.prepare()?;
        let mut findings = Vec::new();
        // Engine objects first, tenants after: a create records its tenant before it makes
        // anything, so whatever is listed here without a tenant below has none.
        let containers = self
            .runtime
            .list(&[(LABEL_INSTANCE.to_owned(), self.instance.clone())])
            .await?;
        let networks = self
            .runtime
            .networks(&[(LABEL_INSTANCE.to_owned(), self.instance.clone())])
            .await?;
        let tenants = self.store.tenants()?;
        if !self.filter.check(&self.filter_rules()).await? {
            let rules = self.filter_rules();
            let mut f = Finding {
                subject: format!("packet filter ({}+)", rules.prefix),
                problem: "hostel's rules are not in force".into(),
                fix: "install them".into(),
                fixed: false,
                reconciled: false,
            };
            if fix {
                self.filter.apply(&rules).await?;
                f.fixed = true;
            }
            findings.push(f);
        }
        let pool = self.storage.pool()?;
        if let Some((state, (problem, hint))) =
            pool.and_then(|s| pool_problem(&s).map(|found| (s, found)))
        {
            let mut f = Finding {
                subject: "homes pool".into(),
                problem,
                fix: hint,
                fixed: false,
                reconciled: false,
            };
            if fix && !state.read_only {
                f.fixed = self
                    .storage
                    .maintain()?
                    .is_some_and(|s| pool_problem(&s).is_none());
            }
            findings.push(f);
        }
        let engine_storage = self.runtime.storage_state().await;
        if let Ok(Some((state, (problem, hint)))) = engine_storage
            .map(|s| s.and_then(|s| store_problem(&s, ENGINE_FREE_MORE).map(|found| (s, found))))
        {
            let mut f = Finding {
                subject: "engine storage".into(),
                problem,
                fix: hint,
                fixed: false,
                reconciled: false,
            };
            if fix && !state.read_only {
                f.fixed = self
                    .runtime
                    .keep_storage()
                    .await?
                    .is_some_and(|s| store_problem(&s, ENGINE_FREE_MORE).is_none());
            }
            findings.push(f);
        }
        let owned = |owner: Option<&String>| {
            tenants
                .iter()
                .any(|t| Some(t.name.as_str()) == owner.map(String::as_str))
        };
        for c in containers
            .iter()
            .filter(|c| !owned(c.labels.get(LABEL_TENANT)))
        {
            let mut f = Finding {
                subject: c.name.clone(),
                problem: "container has no tenant in the store".into(),
                fix: "remove the container (it holds no home)".into(),
                fixed: false,
                reconciled: false,
            };
            if fix && self.orphan_still(c.labels.get(LABEL_TENANT))? {
                self.runtime.remove(&c.name).await?;
                f.fixed = true;
            }
            findings.push(f);
        }
        for n in networks
            .iter()
            .filter(|n| !owned(n.labels.get(LABEL_TENANT)))
        {
            let mut f = Finding {
                subject: n.name.clone(),
                problem: "network has no tenant in the store".into(),
                fix: "remove the network".into(),
                fixed: false,
                reconciled: false,
            };
            if fix && self.orphan_still(n.labels.get(LABEL_TENANT))? {
                f.fixed = self.runtime.network_remove(&n.name).await.is_ok();
            }
            findings.push(f);
        }
        for t in &tenants {
            let Some(_held) = self.ops.repair(&t.name)? else {
                // An operation is working on it; what it does is its own to finish.
                continue;
            };
            let Some(t) = self.store.tenant(&t.name)? else {
                continue;
            };
            let obs = match self.observe_for_repair(&t, None).await {
                Ok(o) => o,
                Err(e) => {
                    findings.push(Finding {
                        subject: t.name.to_string(),
                        problem: e.to_string(),
                        fix: e.hint().unwrap_or_else(|| "none".into()),
                        fixed: false,
                        reconciled: true,
                    });
                    continue;
                }
            };
            for repair in plan(&obs.seen) {
                let problem = match repair {
                    Repair::MakeHome => format!(
                        "home {} is missing",
                        self.storage.home_path(&t.name).display()
                    ),
                    _ => repair.problem().to_owned(),
                };
                let mut f = Finding {
                    subject: t.name.to_string(),
                    problem,
                    fix: repair.fix().into(),
                    fixed: false,
                    reconciled: true,
                };
                if fix {
                    let result = self.carry_out(&t, repair).await;
                    self.audit_repair(&t.name, repair, &result, "doctor")?;
                    if let Err(e) = result {
                        // The next repairs of this tenant build on this one; other tenants
                        // are still looked at.
                        f.problem = format!("{} (the repair failed: {e})", f.problem);
                        findings.push(f);
                        break;
                    }
                    f.fixed = true;
                }
                findings.push(f);
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.paths.users()) {
            for e in entries.flatten() {
                let dir = e.file_name().to_string_lossy().into_owned();
                if !e.path().join("home").is_dir() {
                    continue;
                }
                // Read again: a create may have recorded it since the list above.
                let known = match dir.parse::<TenantName>() {
                    Ok(n) => self.store.tenant(&n)?.is_some(),
                    Err(_) => false,
                };
                if !known {
                    findings.push(Finding {
                        subject: dir.clone(),
                        problem: format!("home {} has no tenant", e.path().join("home").display()),
                        fix: format!(
                            "none (tenant data is never deleted by doctor); `hostel create {dir}` \
                             adopts it"
                        ),
                        fixed: false,
                        reconciled: false,
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

    /// Whether the tenant an engine object is labelled with still has no record, checked with
    /// the tenant held so that a create starting now cannot be caught half-way.
    fn orphan_still(&self, owner: Option<&String>) -> Result<bool, ServiceError> {
        let Some(name) = owner.and_then(|o| o.parse::<TenantName>().ok()) else {
            return Ok(true);
        };
        let Some(_held) = self.ops.repair(&name)? else {
            return Ok(false);
        };
        Ok(self.store.tenant(&name)?.is_none())
    }
}
