//! Shared datasets: host folders an admin names, mounted read-only at `/shared/<name>` in the
//! workspaces of the tenants it names, or of all. Never writable from inside (root inside
//! included: the mount is read-only where the tenant cannot remount it), and never counted
//! against a tenant's disk quota (it is not in the home). A share reaches a workspace when it
//! is next made or reconfigured: at its next start, as a new image does.

use crate::{Hostel, ServiceError};
use hostel_core::share::{self, ShareName};
use hostel_core::{Outcome, TenantName};
use hostel_store::ShareRecord;

impl Hostel {
    /// `share add`: shares the host folder `path` as `name` with `tenants` (`None`: every
    /// tenant, those made later too).
    pub async fn share_add(
        &self,
        name: &ShareName,
        path: &str,
        tenants: Option<Vec<TenantName>>,
    ) -> Result<ShareRecord, ServiceError> {
        let result: Result<ShareRecord, ServiceError> = async {
            let bad = |reason: String| {
                ServiceError::from(share::ShareError::Path {
                    path: path.to_owned(),
                    reason,
                })
            };
            let resolved = hostel_store::blocking(|| std::fs::canonicalize(path))
                .map_err(|e| bad(format!("cannot resolve it ({e})")))?;
            if !resolved.is_dir() {
                return Err(bad("not a folder".into()));
            }
            let root = std::fs::canonicalize(self.paths.root())
                .map_err(ServiceError::io("resolve", self.paths.root()))?;
            share::check_path(&resolved, &root)?;
            let record = ShareRecord {
                name: name.clone(),
                path: resolved.display().to_string(),
                tenants,
                created_at: self.now(),
            };
            self.store.add_share(&record)?;
            Ok(record)
        }
        .await;
        let ev = match &result {
            Ok(r) => self
                .event("share.add", Outcome::Ok)
                .with("path", &r.path)
                .with(
                    "tenants",
                    r.tenants.as_ref().map_or("all".to_owned(), |t| {
                        t.iter()
                            .map(TenantName::as_str)
                            .collect::<Vec<_>>()
                            .join(" ")
                    }),
                ),
            Err(e) => self
                .event("share.add", Outcome::Failed)
                .with("path", path)
                .with("error", e.code()),
        };
        self.record(ev.with("share", name))?;
        result
    }

    /// `share remove`: the share leaves each workspace at its next start; the host folder is
    /// not touched.
    pub async fn share_remove(&self, name: &ShareName) -> Result<(), ServiceError> {
        let result = self.store.remove_share(name).map_err(ServiceError::from);
        let ev = match &result {
            Ok(()) => self.event("share.remove", Outcome::Ok),
            Err(e) => self
                .event("share.remove", Outcome::Failed)
                .with("error", e.code()),
        };
        self.record(ev.with("share", name))?;
        result
    }

    /// Every share, by name.
    pub fn shares(&self) -> Result<Vec<ShareRecord>, ServiceError> {
        Ok(self.store.shares()?)
    }

    /// The shares `tenant` sees, by name: (name, host folder).
    pub(crate) fn shares_of(
        &self,
        tenant: &TenantName,
    ) -> Result<Vec<(ShareName, String)>, ServiceError> {
        Ok(self
            .store
            .shares()?
            .into_iter()
            .filter(|s| s.tenants.as_ref().is_none_or(|t| t.contains(tenant)))
            .map(|s| (s.name, s.path))
            .collect())
    }
}
