//! The reconciler's pure step: from what the store asks for (a tenant's status, its desired
//! workspace state, its quota) and what the engine and the kernel have, the repairs that bring
//! them together.
//!
//! Every multi-step operation records its intent in the store before it acts: `create` inserts
//! the tenant as `creating` (with whether its home was there before), `purge` moves it to
//! `purging`, `start`, `stop` and `delete` record the desired state, `set` records the new quota.
//! When the process doing the operation dies part-way, the record stays; [`plan`] turns it into
//! the repair that finishes the operation (purge, stop, start, limits) or rolls it back (an
//! unfinished create: the tenant never answered "made", so it is cleanly removed, never a home
//! that was there before it). The service runs the plan only for a tenant no live operation
//! holds, so a repair never races the operation it would repair.
//!
//! This module decides; it cannot see the engine. `hostel-service` observes and acts.

use crate::lifecycle::{TenantStatus, WorkspaceState};
use crate::policy::Action;

/// One tenant as the reconciler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Its status in the store.
    pub status: TenantStatus,
    /// The workspace state last asked for.
    pub desired: WorkspaceState,
    /// The workspace state the engine reports.
    pub workspace: WorkspaceState,
    /// Whether its home exists.
    pub home: bool,
    /// Whether the home was there before the tenant was created (then a rolled-back create
    /// keeps it).
    pub adopted_home: bool,
    /// Whether the container's CPU, memory and pids limits are the stored quota's (true when
    /// there is no container to compare).
    pub limits_match: bool,
    /// Whether the kernel's limit on the home is the stored disk quota (true when there is no
    /// home to compare).
    pub disk_limit_match: bool,
    /// What the lifecycle policies ask for now (idle stop, TTL); [`Action::Keep`] when the
    /// caller does not apply them (`doctor`).
    pub lifecycle: Action,
}

/// One repair, in the order [`plan`] lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// A create did not finish: remove what it made, and the tenant; the home only when the
    /// create made it.
    RollBackCreate {
        /// Whether the home goes too.
        remove_home: bool,
    },
    /// A purge did not finish: finish it.
    FinishPurge,
    /// A snapshot's restore did not finish: restore it again, whole.
    FinishRestore,
    /// A ready tenant has no home: make a new empty one with its quota.
    MakeHome,
    /// Give the home the stored disk quota (a `set` did not finish, or the limit was changed
    /// outside hostel).
    ApplyDiskLimit,
    /// Give the container the stored CPU, memory and pids limits.
    ApplyLimits,
    /// Bring the workspace to running (create it when it is gone).
    Start,
    /// Re-create the workspace that is gone, and leave it stopped.
    Recreate,
    /// Stop the workspace.
    Stop,
    /// Remove the workspace container (the home stays).
    Remove,
    /// Carry out what the lifecycle policies ask (idle stop, TTL delete or purge).
    Lifecycle(Action),
}

impl Repair {
    /// A short name for logs, audit records and `doctor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Repair::RollBackCreate { .. } => "roll_back_create",
            Repair::FinishPurge => "finish_purge",
            Repair::FinishRestore => "finish_restore",
            Repair::MakeHome => "make_home",
            Repair::ApplyDiskLimit => "apply_disk_limit",
            Repair::ApplyLimits => "apply_limits",
            Repair::Start => "start",
            Repair::Recreate => "recreate",
            Repair::Stop => "stop",
            Repair::Remove => "remove",
            Repair::Lifecycle(Action::Stop) => "idle_stop",
            Repair::Lifecycle(Action::Delete) => "ttl_delete",
            Repair::Lifecycle(Action::Purge) => "ttl_purge",
            Repair::Lifecycle(Action::Keep) => "keep",
        }
    }

    /// What is wrong, for `doctor`.
    pub fn problem(self) -> &'static str {
        match self {
            Repair::RollBackCreate { .. } => "tenant is half-made (a create was interrupted)",
            Repair::FinishPurge => "tenant is half-purged (a purge was interrupted)",
            Repair::FinishRestore => "a snapshot's restore was interrupted",
            Repair::MakeHome => "its home is missing",
            Repair::ApplyDiskLimit => "the home's size limit is not the tenant's disk quota",
            Repair::ApplyLimits => {
                "the workspace's CPU, memory or pids limits are not the tenant's quota"
            }
            Repair::Start => "workspace should run but does not",
            Repair::Recreate => "workspace container is gone (removed outside hostel?)",
            Repair::Stop => "workspace should be stopped but runs",
            Repair::Remove => "workspace should be deleted but its container exists",
            Repair::Lifecycle(Action::Stop) => "workspace is idle",
            Repair::Lifecycle(Action::Delete | Action::Purge) => "tenant's time is up",
            Repair::Lifecycle(Action::Keep) => "nothing",
        }
    }

    /// What the repair does, for `doctor`.
    pub fn fix(self) -> &'static str {
        match self {
            Repair::RollBackCreate { remove_home: true } => {
                "roll the create back (remove its workspace, network and the home it made)"
            }
            Repair::RollBackCreate { remove_home: false } => {
                "roll the create back (the home that was there before is kept)"
            }
            Repair::FinishPurge => "finish the purge that was asked for",
            Repair::FinishRestore => "restore the snapshot again, whole",
            Repair::MakeHome => "make a new empty home with the tenant's quota",
            Repair::ApplyDiskLimit => "set the home's limit to the disk quota",
            Repair::ApplyLimits => "apply the quota's limits to the workspace",
            Repair::Start => "start the workspace (re-create it if it is gone)",
            Repair::Recreate => "re-create the workspace, stopped",
            Repair::Stop => "stop the workspace",
            Repair::Remove => "remove the workspace container (the home is kept)",
            Repair::Lifecycle(Action::Stop) => "stop it",
            Repair::Lifecycle(Action::Delete) => "delete its workspace",
            Repair::Lifecycle(Action::Purge) => "purge it",
            Repair::Lifecycle(Action::Keep) => "nothing",
        }
    }
}

/// The repairs that bring one tenant to what the store asks for, in order. Empty: nothing to
/// do.
pub fn plan(seen: &Seen) -> Vec<Repair> {
    match seen.status {
        TenantStatus::Creating => {
            return vec![Repair::RollBackCreate {
                remove_home: !seen.adopted_home,
            }];
        }
        TenantStatus::Purging => return vec![Repair::FinishPurge],
        TenantStatus::Restoring => return vec![Repair::FinishRestore],
        TenantStatus::Ready => {}
    }
    // The policies win over convergence: a tenant whose time is up is not started first.
    if matches!(seen.lifecycle, Action::Delete | Action::Purge) {
        return vec![Repair::Lifecycle(seen.lifecycle)];
    }
    let mut out = Vec::new();
    if !seen.home {
        out.push(Repair::MakeHome);
    } else if !seen.disk_limit_match {
        out.push(Repair::ApplyDiskLimit);
    }
    if seen.workspace != WorkspaceState::Deleted && !seen.limits_match {
        out.push(Repair::ApplyLimits);
    }
    let converge = match (seen.desired, seen.workspace) {
        (WorkspaceState::Running, WorkspaceState::Running) => None,
        (WorkspaceState::Running, _) => Some(Repair::Start),
        (WorkspaceState::Stopped, WorkspaceState::Running) => Some(Repair::Stop),
        (WorkspaceState::Stopped, WorkspaceState::Deleted) => Some(Repair::Recreate),
        (WorkspaceState::Stopped, WorkspaceState::Stopped) => None,
        (WorkspaceState::Deleted, WorkspaceState::Deleted) => None,
        (WorkspaceState::Deleted, _) => Some(Repair::Remove),
    };
    out.extend(converge);
    if seen.lifecycle == Action::Stop && converge.is_none() {
        out.push(Repair::Lifecycle(Action::Stop));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use WorkspaceState::{Deleted, Running, Stopped};
    use proptest::prelude::*;

    fn ready(desired: WorkspaceState, workspace: WorkspaceState) -> Seen {
        Seen {
            status: TenantStatus::Ready,
            desired,
            workspace,
            home: true,
            adopted_home: false,
            limits_match: true,
            disk_limit_match: true,
            lifecycle: Action::Keep,
        }
    }

    #[test]
    fn interrupted_creates_roll_back_and_keep_an_adopted_home() {
        let mut s = ready(Running, Stopped);
        s.status = TenantStatus::Creating;
        assert_eq!(plan(&s), [Repair::RollBackCreate { remove_home: true }]);
        s.adopted_home = true;
        assert_eq!(plan(&s), [Repair::RollBackCreate { remove_home: false }]);
        s.lifecycle = Action::Purge;
        assert_eq!(
            plan(&s),
            [Repair::RollBackCreate { remove_home: false }],
            "a half-made tenant is rolled back, whatever its policies"
        );
    }

    #[test]
    fn interrupted_purges_finish() {
        let mut s = ready(Running, Running);
        s.status = TenantStatus::Purging;
        s.home = false;
        assert_eq!(plan(&s), [Repair::FinishPurge]);
    }

    #[test]
    fn interrupted_restores_finish_before_anything_else() {
        let mut s = ready(Running, Stopped);
        s.status = TenantStatus::Restoring;
        s.lifecycle = Action::Delete;
        s.disk_limit_match = false;
        assert_eq!(plan(&s), [Repair::FinishRestore]);
    }

    #[test]
    fn the_workspace_converges_to_the_desired_state() {
        let table = [
            (Running, Running, vec![]),
            (Running, Stopped, vec![Repair::Start]),
            (Running, Deleted, vec![Repair::Start]),
            (Stopped, Running, vec![Repair::Stop]),
            (Stopped, Stopped, vec![]),
            (Stopped, Deleted, vec![Repair::Recreate]),
            (Deleted, Running, vec![Repair::Remove]),
            (Deleted, Stopped, vec![Repair::Remove]),
            (Deleted, Deleted, vec![]),
        ];
        for (desired, workspace, want) in table {
            assert_eq!(
                plan(&ready(desired, workspace)),
                want,
                "desired {desired}, engine {workspace}"
            );
        }
    }

    #[test]
    fn drifted_limits_are_put_back_before_the_workspace_moves() {
        let mut s = ready(Running, Stopped);
        s.limits_match = false;
        s.disk_limit_match = false;
        assert_eq!(
            plan(&s),
            [Repair::ApplyDiskLimit, Repair::ApplyLimits, Repair::Start]
        );
        s.workspace = Deleted;
        assert_eq!(
            plan(&s),
            [Repair::ApplyDiskLimit, Repair::Start],
            "no container, no limits to apply: the new one gets the quota's"
        );
        s.home = false;
        assert_eq!(plan(&s), [Repair::MakeHome, Repair::Start]);
    }

    #[test]
    fn expiry_wins_and_idle_stops_only_what_should_run() {
        let mut s = ready(Running, Stopped);
        s.limits_match = false;
        s.lifecycle = Action::Delete;
        assert_eq!(plan(&s), [Repair::Lifecycle(Action::Delete)]);
        s.lifecycle = Action::Purge;
        assert_eq!(plan(&s), [Repair::Lifecycle(Action::Purge)]);
        let mut idle = ready(Running, Running);
        idle.lifecycle = Action::Stop;
        assert_eq!(plan(&idle), [Repair::Lifecycle(Action::Stop)]);
        idle.desired = Stopped;
        assert_eq!(plan(&idle), [Repair::Stop], "one stop, not two");
    }

    #[test]
    fn every_repair_has_words() {
        let all = [
            Repair::RollBackCreate { remove_home: true },
            Repair::RollBackCreate { remove_home: false },
            Repair::FinishPurge,
            Repair::MakeHome,
            Repair::ApplyDiskLimit,
            Repair::ApplyLimits,
            Repair::Start,
            Repair::Recreate,
            Repair::Stop,
            Repair::Remove,
            Repair::Lifecycle(Action::Stop),
            Repair::Lifecycle(Action::Delete),
            Repair::Lifecycle(Action::Purge),
        ];
        let names: std::collections::BTreeSet<&str> = all.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names.len(),
            all.len() - 1,
            "the two roll-backs share a name"
        );
        for r in all {
            assert!(!r.problem().is_empty() && !r.fix().is_empty(), "{r:?}");
        }
    }

    fn state() -> impl Strategy<Value = WorkspaceState> {
        prop_oneof![Just(Running), Just(Stopped), Just(Deleted)]
    }

    /// The state the workspace is in after the plan's own moves.
    fn after(seen: &Seen, repairs: &[Repair]) -> WorkspaceState {
        repairs.iter().fold(seen.workspace, |ws, r| match r {
            Repair::Start => Running,
            Repair::Recreate | Repair::Stop | Repair::Lifecycle(Action::Stop) => Stopped,
            Repair::Remove | Repair::Lifecycle(Action::Delete) => Deleted,
            _ => ws,
        })
    }

    proptest! {
        /// Carrying out the plan reaches the desired state (or the one the policies ask for),
        /// and a second look then finds nothing left to do.
        #[test]
        fn a_plan_converges_in_one_pass(
            desired in state(),
            workspace in state(),
            home: bool,
            limits_match: bool,
            disk_limit_match: bool,
            idle: bool,
        ) {
            let mut s = Seen {
                status: TenantStatus::Ready,
                desired,
                workspace,
                home,
                adopted_home: false,
                limits_match,
                disk_limit_match,
                lifecycle: if idle && workspace == Running { Action::Stop } else { Action::Keep },
            };
            let repairs = plan(&s);
            let reached = after(&s, &repairs);
            let stopped_idle = repairs.contains(&Repair::Lifecycle(Action::Stop));
            prop_assert_eq!(reached, if stopped_idle { Stopped } else { desired });
            s.workspace = reached;
            s.desired = reached;
            s.home = true;
            s.limits_match = true;
            s.disk_limit_match = true;
            s.lifecycle = Action::Keep;
            prop_assert_eq!(plan(&s), vec![]);
        }
    }
}
