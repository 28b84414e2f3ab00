//! Usage history for charts: what the reconciler recorded at each look (see
//! [`hostel_core::history`]). Reading it never calls the engine, so a dashboard with hundreds of
//! tenants costs the engine nothing per page view.

use crate::{Hostel, ServiceError};
use hostel_core::TenantName;
use hostel_core::history::{Point, Range, Reading};
use std::collections::HashMap;

impl Hostel {
    fn with_history<T>(&self, f: impl FnOnce(&hostel_core::history::History) -> T) -> T {
        f(&self.history.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A tenant's usage over `range`, at most `points` points (neighbours averaged). Empty
    /// until the daemon's first looks; `not_found` for no such tenant.
    pub fn usage_history(
        &self,
        name: &TenantName,
        range: Range,
        points: usize,
    ) -> Result<Vec<Point>, ServiceError> {
        self.store.require(name)?;
        let now = self.now().timestamp();
        Ok(self.with_history(|h| h.tenant(name.as_str(), range, now, points)))
    }

    /// The host's usage (the sum of its tenants') over `range`.
    pub fn host_history(&self, range: Range, points: usize) -> Vec<Point> {
        let now = self.now().timestamp();
        self.with_history(|h| h.host(range, now, points))
    }

    /// Each tenant's latest point, by name: the figures of the last look.
    pub fn latest_usage(&self) -> HashMap<String, Point> {
        self.with_history(|h| {
            h.tenant_names()
                .filter_map(|n| h.latest(n).map(|p| (n.to_owned(), p)))
                .collect()
        })
    }

    /// Every tenant's usage over `range`, by name, taking the history's lock once (a page with
    /// a chart per tenant).
    pub fn usage_histories(&self, range: Range, points: usize) -> HashMap<String, Vec<Point>> {
        let now = self.now().timestamp();
        self.with_history(|h| {
            h.tenant_names()
                .map(|n| (n.to_owned(), h.tenant(n, range, now, points)))
                .collect()
        })
    }

    /// Adds readings taken elsewhere (a benchmark, an import) as one look over the tenants at
    /// `at`, seconds since the epoch. A name without a tenant is forgotten at the next look.
    pub fn record_usage_round(&self, at: i64, readings: &[(TenantName, Reading)]) {
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        for (name, reading) in readings {
            h.record(name.as_str(), *reading);
        }
        h.close_round(at);
    }

    /// Bytes the history takes in memory.
    pub fn history_bytes(&self) -> usize {
        self.with_history(|h| h.memory_bytes())
    }
}
