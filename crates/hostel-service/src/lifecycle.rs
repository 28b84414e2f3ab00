//! Who is active: open sessions and commands per tenant, as this process counts them, which the
//! reconciler's idle check reads.

use crate::Hostel;
use hostel_core::TenantName;

impl Hostel {
    /// A session or command of the tenant began (this process counts it until it ends).
    pub fn activity_begin(&self, name: &TenantName) {
        let mut open = self.open_sessions.lock().unwrap_or_else(|p| p.into_inner());
        *open.entry(name.to_string()).or_insert(0) += 1;
        drop(open);
        let _ = self.store.touch(name, self.now());
    }

    /// Counts a session or command of the tenant as open until the guard is dropped, however
    /// it ends (a caller that never waits for it included).
    pub(crate) fn activity_guard(&self, name: &TenantName) -> Activity {
        self.activity_begin(name);
        Activity {
            open: self.open_sessions.clone(),
            tenant: name.to_string(),
        }
    }

    /// A session or command of the tenant ended.
    pub fn activity_end(&self, name: &TenantName) {
        let mut open = self.open_sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(name.as_str()) {
            *n = n.saturating_sub(1);
        }
        drop(open);
        let _ = self.store.touch(name, self.now());
    }

    /// Open sessions and commands of all tenants, as this process counts them.
    pub fn open_total(&self) -> u32 {
        let open = self.open_sessions.lock().unwrap_or_else(|p| p.into_inner());
        open.values().sum()
    }

    pub(crate) fn open_count(&self, name: &TenantName) -> u32 {
        let open = self.open_sessions.lock().unwrap_or_else(|p| p.into_inner());
        open.get(name.as_str()).copied().unwrap_or(0)
    }
}

/// One open session or command of a tenant, counted until dropped.
#[derive(Debug)]
pub(crate) struct Activity {
    open: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>,
    tenant: String,
}

impl Drop for Activity {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
        }
    }
}
