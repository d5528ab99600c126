//! Inventory stage: a `Scope` → a `Snapshot` of the current AWS state, read
//! through the `Inventory` port (DescribeInstances, DescribeInstanceStatus,
//! DescribeAutoScalingGroups, DescribeAutoScalingInstances), independent reads
//! run concurrently. A sweep reads only what the decision needs: every group,
//! the instances that are not running, those with a scheduled event, and the
//! running members (with their status checks) only of groups the guard may be
//! repairing. `aws.rs` is the SDK adapter; `memory.rs` a fake for tests.

pub mod aws;

use crate::domain::RECOVERING_TAG;
use crate::domain::{
    AsgName, GroupSnapshot, InstanceId, InstanceSnapshot, InstanceState, ScheduledEvent, Snapshot, StatusChecks,
};
use crate::error::AwsFailure;
use crate::intake::Scope;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

/// Status checks and scheduled events of running instances.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstanceStatus {
    pub checks: Option<StatusChecks>,
    pub events: Vec<ScheduledEvent>,
}

/// Instance states a sweep reads in full: every instance that is neither running nor pending.
pub const NOT_RUNNING: [&str; 4] = ["stopping", "stopped", "shutting-down", "terminated"];

/// Scheduled-event codes a sweep asks DescribeInstanceStatus for (its `event.code` filter).
pub const EVENT_CODES: [&str; 5] =
    ["instance-retirement", "instance-stop", "instance-reboot", "system-reboot", "system-maintenance"];

/// What the plan needs beyond the problems themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Need {
    /// The state and status checks of every member of a group the guard may repair
    /// (POLICY=recover): a resume is planned only from them.
    pub readiness: bool,
}

/// The read port. Unknown ids and names are left out of the answers, never errors.
pub trait Inventory: Sync {
    /// The instances with these ids that exist.
    fn instances(&self, ids: &[InstanceId]) -> impl Future<Output = Result<Vec<InstanceSnapshot>, AwsFailure>> + Send;
    /// Every instance in the region in one of the `NOT_RUNNING` states.
    fn not_running(&self) -> impl Future<Output = Result<Vec<InstanceSnapshot>, AwsFailure>> + Send;
    /// The named groups that exist, or every group when `names` is `None`.
    fn groups(&self, names: Option<&[AsgName]>) -> impl Future<Output = Result<Vec<GroupSnapshot>, AwsFailure>> + Send;
    /// Which of these instances belong to a group.
    fn memberships(
        &self,
        ids: &[InstanceId],
    ) -> impl Future<Output = Result<BTreeMap<InstanceId, AsgName>, AwsFailure>> + Send;
    /// Status of these instances (only running ones have checks).
    fn statuses(
        &self,
        ids: &[InstanceId],
    ) -> impl Future<Output = Result<BTreeMap<InstanceId, InstanceStatus>, AwsFailure>> + Send;
    /// Status of every running instance with a scheduled event of `EVENT_CODES`.
    fn scheduled(&self) -> impl Future<Output = Result<BTreeMap<InstanceId, InstanceStatus>, AwsFailure>> + Send;
}

/// Reads the state a scope needs. Groups are read in full. Members of groups with
/// suspended processes (others heal themselves) are described: for an event's
/// scope all of them; in a sweep, which already holds every member that is not
/// running, the running ones only where `need` asks for readiness.
pub async fn collect<I: Inventory>(inv: &I, scope: &Scope, need: &Need) -> Result<Snapshot, AwsFailure> {
    let mut snapshot = Snapshot::default();
    let (found, groups, asked_groups) = match scope {
        Scope::Sweep => {
            let (down, groups, statuses) = futures::try_join!(inv.not_running(), inv.groups(None), inv.scheduled())?;
            // Scheduled events on instances that are not stopped are retirements to announce.
            let mut found = down;
            let stopped_ids: BTreeSet<_> = found.iter().map(|i| i.id.clone()).collect();
            let with_events: Vec<_> = statuses
                .iter()
                .filter(|(id, s)| !s.events.is_empty() && !stopped_ids.contains(*id))
                .map(|(id, _)| id.clone())
                .collect();
            if !with_events.is_empty() {
                found.extend(inv.instances(&with_events).await?);
            }
            apply_statuses(&mut found, &statuses);
            (found, groups, vec![])
        }
        Scope::Targets { instances, groups: names } => {
            let (found, members) = futures::try_join!(inv.instances(instances), inv.memberships(instances))?;
            let known: BTreeSet<_> = found.iter().map(|i| &i.id).collect();
            snapshot.gone_instances = instances.iter().filter(|i| !known.contains(i)).cloned().collect();
            let mut wanted: BTreeSet<AsgName> = names.iter().cloned().collect();
            wanted.extend(members.into_values());
            wanted.extend(found.iter().filter_map(InstanceSnapshot::group_tag));
            let wanted: Vec<_> = wanted.into_iter().collect();
            let groups = if wanted.is_empty() { vec![] } else { inv.groups(Some(&wanted)).await? };
            (found, groups, names.clone())
        }
    };
    for inst in found {
        snapshot.instances.insert(inst.id.clone(), inst);
    }
    let present: BTreeSet<_> = groups.iter().map(|g| g.name.clone()).collect();
    snapshot.gone_groups = asked_groups.into_iter().filter(|n| !present.contains(n)).collect();

    // Members of groups that cannot heal themselves, not yet described.
    let detailed = |g: &GroupSnapshot| match scope {
        Scope::Targets { .. } => true,
        Scope::Sweep => need.readiness && may_be_repaired(g, &snapshot),
    };
    let missing: Vec<InstanceId> = groups
        .iter()
        .filter(|g| !g.suspended.is_empty() && detailed(g))
        .flat_map(|g| g.members.iter().map(|m| m.id.clone()))
        .filter(|id| !snapshot.instances.contains_key(id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !missing.is_empty() {
        for inst in inv.instances(&missing).await? {
            snapshot.instances.insert(inst.id.clone(), inst);
        }
    }
    for g in groups {
        snapshot.groups.insert(g.name.clone(), g);
    }

    // Status checks and scheduled events of the running instances in scope.
    let running: Vec<InstanceId> = snapshot
        .instances
        .values()
        .filter(|i| i.state == InstanceState::Running && i.status.is_none())
        .map(|i| i.id.clone())
        .collect();
    if !running.is_empty() {
        let statuses = inv.statuses(&running).await?;
        apply_statuses(snapshot.instances.values_mut(), &statuses);
    }
    Ok(snapshot)
}

/// A group the guard may be repairing: it has a member that is not running (among the
/// instances read so far) or carries the guard's recovering tag.
fn may_be_repaired(group: &GroupSnapshot, snapshot: &Snapshot) -> bool {
    group.tags.contains_key(RECOVERING_TAG) || group.members.iter().any(|m| snapshot.instances.contains_key(&m.id))
}

fn apply_statuses<'a>(
    instances: impl IntoIterator<Item = &'a mut InstanceSnapshot>,
    statuses: &BTreeMap<InstanceId, InstanceStatus>,
) {
    for inst in instances {
        if let Some(s) = statuses.get(&inst.id) {
            inst.status = s.checks.clone();
            inst.scheduled_events = s.events.clone();
        }
    }
}

#[cfg(test)]
pub(crate) mod memory;
