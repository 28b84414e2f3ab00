//! The workspace lifecycle: what state a workspace is in, which operations are legal in it, and
//! what to do to reach the state an operation asks for.
//!
//! Two things are tracked. The *tenant status* ([`TenantStatus`]) lives in the store and marks a
//! tenant that is half-made or being purged, so two commands racing on one tenant cannot both
//! act. The *workspace state* ([`WorkspaceState`]) is read from the engine each time, because the
//! engine is where a container really is; the store never caches it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a tenant is in its own life, as recorded in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    /// `create` has recorded the tenant and is making its home and workspace.
    Creating,
    /// Fully made; every operation may act on it.
    Ready,
    /// `purge` is removing it.
    Purging,
    /// A snapshot is being restored over its data; nothing else may act until it is back.
    Restoring,
}

impl TenantStatus {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Creating => "creating",
            TenantStatus::Ready => "ready",
            TenantStatus::Purging => "purging",
            TenantStatus::Restoring => "restoring",
        }
    }

    /// Parses a stored name.
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "creating" => Some(TenantStatus::Creating),
            "ready" => Some(TenantStatus::Ready),
            "purging" => Some(TenantStatus::Purging),
            "restoring" => Some(TenantStatus::Restoring),
            _ => None,
        }
    }

    /// Whether ordinary operations (start, stop, exec, set, keys, delete, purge) may act.
    pub fn is_ready(self) -> bool {
        self == TenantStatus::Ready
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the engine says about a tenant's workspace container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceState {
    /// The container runs.
    Running,
    /// The container exists and does not run.
    Stopped,
    /// There is no container (never made, deleted, or removed by hand); the home stays.
    Deleted,
}

impl WorkspaceState {
    /// The name shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceState::Running => "running",
            WorkspaceState::Stopped => "stopped",
            WorkspaceState::Deleted => "deleted",
        }
    }

    /// What `start` (or a connection that wakes the workspace) must do from this state.
    /// `current` says whether an existing container was made from the tenant's current image and
    /// settings; a stale one is replaced, which loses nothing because the home lives outside it.
    pub fn plan_start(self, current: bool) -> StartPlan {
        match (self, current) {
            (WorkspaceState::Running, true) => StartPlan::AlreadyRunning,
            (WorkspaceState::Running, false) => StartPlan::RunningStale,
            (WorkspaceState::Stopped, true) => StartPlan::Start,
            (WorkspaceState::Stopped, false) => StartPlan::Recreate,
            (WorkspaceState::Deleted, _) => StartPlan::Create,
        }
    }

    /// Whether `stop` has anything to do.
    pub fn can_stop(self) -> bool {
        self == WorkspaceState::Running
    }

    /// Whether `delete` has a container to remove.
    pub fn can_delete(self) -> bool {
        self != WorkspaceState::Deleted
    }

    /// Whether commands can run in the workspace right now.
    pub fn can_exec(self) -> bool {
        self == WorkspaceState::Running
    }
}

impl fmt::Display for WorkspaceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The steps that bring a workspace to running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPlan {
    /// Nothing to do.
    AlreadyRunning,
    /// It runs, but from an older image or settings; it keeps running until stopped.
    RunningStale,
    /// Start the stopped container.
    Start,
    /// Remove the stale stopped container, create a new one, start it.
    Recreate,
    /// Create a container and start it.
    Create,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_plans_cover_every_state() {
        use StartPlan::*;
        use WorkspaceState::*;
        let table = [
            (Running, true, AlreadyRunning),
            (Running, false, RunningStale),
            (Stopped, true, Start),
            (Stopped, false, Recreate),
            (Deleted, true, Create),
            (Deleted, false, Create),
        ];
        for (state, current, plan) in table {
            assert_eq!(state.plan_start(current), plan, "{state} current={current}");
        }
    }

    #[test]
    fn legality_of_operations() {
        use WorkspaceState::*;
        assert_eq!(
            [Running, Stopped, Deleted].map(|s| (s.can_stop(), s.can_delete(), s.can_exec())),
            [
                (true, true, true),
                (false, true, false),
                (false, false, false)
            ]
        );
    }

    #[test]
    fn tenant_status_round_trips() {
        for s in [
            TenantStatus::Creating,
            TenantStatus::Ready,
            TenantStatus::Purging,
        ] {
            assert_eq!(TenantStatus::from_db(s.as_str()), Some(s));
        }
        assert_eq!(TenantStatus::from_db("gone"), None);
        assert!(TenantStatus::Ready.is_ready() && !TenantStatus::Creating.is_ready());
    }
}
