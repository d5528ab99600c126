//! Inventory stage: a `Scope` → a `Snapshot` of the current AWS state, read
//! through the `Inventory` port (DescribeInstances, DescribeInstanceStatus,
//! DescribeAutoScalingGroups, DescribeAutoScalingInstances), independent reads
//! run concurrently. A sweep reads only what the decision needs: every group,
//! the instances that are not running, those with a scheduled event, and the
//! running members (with their status checks) only of groups the guard may be
//! repairing; what it cannot read it keeps out and names (`Snapshot::unread`). An
//! event's scope is read in three round trips under notify. With proactive moves, the
//! members of groups with a retiring member and those groups' health alarms
//! (DescribeAlarms) are read too. `aws.rs` is the SDK adapter; `memory.rs` a fake for
//! tests.

pub mod aws;

use crate::config::HEALTH_ALARM_TAG;
use crate::domain::Scope;
use crate::domain::{Alarm, RECOVERING_TAG};
use crate::domain::{
    AsgName, GroupSnapshot, InstanceId, InstanceSnapshot, InstanceState, ScheduledEvent, Snapshot, StatusChecks, Unread,
};
use crate::error::AwsFailure;
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

/// Groups named in the report of a read that failed; the rest are counted.
const NAMED: usize = 20;

/// What the plan needs beyond the problems themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Need {
    /// The state and status checks of every member of a group the guard may repair
    /// (POLICY=recover): a resume is planned only from them.
    pub readiness: bool,
    /// The same for every group with a retiring member or a move under way
    /// (PROACTIVE_MOVES): a move starts only when every member is in service and ready;
    /// and those groups' health alarms.
    pub proactive: bool,
    /// The health alarm of a group without the health-alarm tag (`HEALTH_ALARM`).
    pub health_alarm: Option<String>,
}

/// The read port. Unknown ids and names are left out of the answers, never errors.
pub trait Inventory: Sync {
    /// The instances with these ids that exist.
    fn instances(&self, ids: &[InstanceId]) -> impl Future<Output = Result<Vec<InstanceSnapshot>, AwsFailure>> + Send;
    /// Every instance in the region in one of the `NOT_RUNNING` states.
    fn not_running(&self) -> impl Future<Output = Listing<InstanceSnapshot>> + Send;
    /// Every group in the region.
    fn all_groups(&self) -> impl Future<Output = Listing<GroupSnapshot>> + Send;
    /// The named groups that exist.
    fn groups(&self, names: &[AsgName]) -> impl Future<Output = Result<Vec<GroupSnapshot>, AwsFailure>> + Send;
    /// The instances tagged as members of these groups (`aws:autoscaling:groupName`)
    /// in one of the `NOT_RUNNING` states.
    fn not_running_in(
        &self,
        groups: &[AsgName],
    ) -> impl Future<Output = Result<Vec<InstanceSnapshot>, AwsFailure>> + Send;
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
    fn scheduled(&self) -> impl Future<Output = Listing<(InstanceId, InstanceStatus)>> + Send;
    /// The metric and composite alarms of these names that exist.
    fn alarms(&self, names: &[String]) -> impl Future<Output = Result<Vec<Alarm>, AwsFailure>> + Send;
}

/// An account-wide listing: what every page read holds, and the failure that ended
/// it early, if one did (the pages before it are still true).
#[derive(Clone, Debug, PartialEq)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub failure: Option<AwsFailure>,
}

impl<T> Listing<T> {
    /// All of it, or the failure.
    pub fn into_result(self) -> Result<Vec<T>, AwsFailure> {
        match self.failure {
            Some(e) => Err(e),
            None => Ok(self.items),
        }
    }

    /// The items, noting in `unread` what could not be read (`part` names it).
    fn keep(self, part: &str, unread: &mut Vec<Unread>) -> Vec<T> {
        if let Some(e) = &self.failure {
            note(unread, part, self.items.len(), e);
        }
        self.items
    }
}

/// Reads the state a scope needs. Members of groups with suspended processes (others
/// heal themselves) are described: for an event's scope all of them; in a sweep, which
/// already holds every member that is not running, the running ones only where `need`
/// asks for readiness. An event's scope is read in full or not at all (`Err`); a sweep
/// keeps what it could read and names the rest in `Snapshot::unread` (`Err` only when
/// it could read nothing), leaving out any group whose members it could not read.
pub async fn collect<I: Inventory>(inv: &I, scope: &Scope, need: &Need) -> Result<Snapshot, AwsFailure> {
    let mut snapshot = match scope {
        Scope::Sweep => sweep(inv, need).await,
        Scope::Targets { instances, groups } => targets(inv, instances, groups, need).await,
    }?;
    if need.proactive || need.readiness {
        health_alarms(inv, &mut snapshot, need).await;
    }
    Ok(snapshot)
}

/// The health alarms of the groups a move or a repair may concern (none named: no
/// read). A failed read leaves them out (the gate then stays closed, saying so) and
/// fails nothing else.
async fn health_alarms<I: Inventory>(inv: &I, snapshot: &mut Snapshot, need: &Need) {
    let names: BTreeSet<String> = snapshot
        .groups
        .values()
        .filter(|g| (need.proactive && may_be_moved(g, snapshot)) || (need.readiness && may_be_repaired(g, snapshot)))
        .filter_map(|g| g.tags.get(HEALTH_ALARM_TAG).or(need.health_alarm.as_ref()).cloned())
        // Not an alarm name (a tag can hold anything): left unread, that group's gate stays closed.
        .filter(|n| crate::domain::is_alarm_name(n))
        .collect();
    if names.is_empty() {
        return;
    }
    let names: Vec<String> = names.into_iter().collect();
    match inv.alarms(&names).await {
        Ok(found) => {
            for name in names {
                let alarm = found.iter().find(|a| a.name == name).cloned();
                snapshot.alarms.insert(name, alarm);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "health alarms unreadable: no member moves until they are read");
            snapshot.alarms_unread = names;
        }
    }
}

/// An event's scope in three round trips where it can: the named instances (and
/// their memberships); then at once their groups, those groups' members that are not
/// running (unless readiness is needed), and the named instances' status; then, only
/// where readiness is needed (`recover`, or a group under repair), the members not yet
/// read and their status checks.
async fn targets<I: Inventory>(
    inv: &I,
    instances: &[InstanceId],
    names: &[AsgName],
    need: &Need,
) -> Result<Snapshot, AwsFailure> {
    let mut snapshot = Snapshot::default();
    let (found, members) = futures::try_join!(inv.instances(instances), inv.memberships(instances))?;
    let known: BTreeSet<_> = found.iter().map(|i| &i.id).collect();
    snapshot.gone_instances = instances.iter().filter(|i| !known.contains(i)).cloned().collect();
    let mut wanted: BTreeSet<AsgName> = names.iter().cloned().collect();
    wanted.extend(members.into_values());
    wanted.extend(found.iter().filter_map(InstanceSnapshot::group_tag));
    let wanted: Vec<_> = wanted.into_iter().collect();
    insert_instances(&mut snapshot, found);
    let named_running = unchecked(&snapshot);
    let (groups, down, statuses) = futures::try_join!(
        async { if wanted.is_empty() { Ok(vec![]) } else { inv.groups(&wanted).await } },
        // Under recover every member of a suspended group is read by id below anyway.
        async { if wanted.is_empty() || need.readiness { Ok(vec![]) } else { inv.not_running_in(&wanted).await } },
        async { if named_running.is_empty() { Ok(BTreeMap::new()) } else { inv.statuses(&named_running).await } },
    )?;
    apply_statuses(snapshot.instances.values_mut(), &statuses);
    let present: BTreeSet<_> = groups.iter().map(|g| g.name.clone()).collect();
    snapshot.gone_groups = names.iter().filter(|n| !present.contains(*n)).cloned().collect();
    // An instance that carries a group's tag but left the group is not its member.
    let member_ids: BTreeSet<&InstanceId> = groups.iter().flat_map(|g| g.members.iter().map(|m| &m.id)).collect();
    let down: Vec<_> =
        down.into_iter().filter(|i| member_ids.contains(&i.id) && !snapshot.instances.contains_key(&i.id)).collect();
    insert_instances(&mut snapshot, down);
    let detailed = |g: &GroupSnapshot| need.readiness || g.tags.contains_key(RECOVERING_TAG);
    let missing = undescribed(&groups, &snapshot, need, detailed);
    snapshot.groups.extend(groups.into_iter().map(|g| (g.name.clone(), g)));
    if !missing.is_empty() {
        insert_instances(&mut snapshot, inv.instances(&missing).await?);
        let running = unchecked(&snapshot);
        if !running.is_empty() {
            apply_statuses(snapshot.instances.values_mut(), &inv.statuses(&running).await?);
        }
    }
    Ok(snapshot)
}

async fn sweep<I: Inventory>(inv: &I, need: &Need) -> Result<Snapshot, AwsFailure> {
    let mut snapshot = Snapshot::default();
    let (down, groups, scheduled) = futures::join!(inv.not_running(), inv.all_groups(), inv.scheduled());
    if let (Some(e), Some(_), Some(_)) = (&down.failure, &groups.failure, &scheduled.failure)
        && down.items.is_empty()
        && groups.items.is_empty()
    {
        return Err(e.clone());
    }
    let unread = &mut snapshot.unread;
    let down = down.keep("instances that are not running (DescribeInstances, state filter)", unread);
    let groups = groups.keep("Auto Scaling groups (DescribeAutoScalingGroups)", unread);
    let statuses: BTreeMap<_, _> =
        scheduled.keep("scheduled events (DescribeInstanceStatus, event-code filter)", unread).into_iter().collect();
    insert_instances(&mut snapshot, down);
    // Scheduled events on instances that are not stopped are retirements to announce.
    let with_events: Vec<_> = statuses
        .iter()
        .filter(|(id, s)| !s.events.is_empty() && !snapshot.instances.contains_key(*id))
        .map(|(id, _)| id.clone())
        .collect();
    if !with_events.is_empty() {
        let found = Listing::from(inv.instances(&with_events).await);
        let found = found.keep("instances with a scheduled event (DescribeInstances)", &mut snapshot.unread);
        insert_instances(&mut snapshot, found);
    }
    apply_statuses(snapshot.instances.values_mut(), &statuses);

    // The running members of groups the guard may repair: a resume is planned only from them.
    let missing = undescribed(&groups, &snapshot, need, |g| need.readiness && may_be_repaired(g, &snapshot));
    let mut groups = groups;
    if !missing.is_empty() {
        match inv.instances(&missing).await {
            Ok(found) => insert_instances(&mut snapshot, found),
            Err(e) => {
                // A group known only in part is left out: nothing is planned for it.
                let unread: BTreeSet<&InstanceId> = missing.iter().collect();
                let (partial, whole): (Vec<_>, Vec<_>) =
                    groups.into_iter().partition(|g| g.members.iter().any(|m| unread.contains(&m.id)));
                groups = whole;
                let left_out: Vec<String> = partial.iter().map(|g| g.name.to_string()).collect();
                let more = left_out.len().saturating_sub(NAMED);
                let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                let named = left_out[..left_out.len().min(NAMED)].join(", ");
                let part = format!("running members of the groups {named}{more} (DescribeInstances)");
                note(&mut snapshot.unread, &part, 0, &e);
            }
        }
    }
    snapshot.groups.extend(groups.into_iter().map(|g| (g.name.clone(), g)));

    let running = unchecked(&snapshot);
    if !running.is_empty() {
        let part = "status checks of running group members (DescribeInstanceStatus)";
        let read = inv.statuses(&running).await.map(|m| m.into_iter().collect::<Vec<_>>());
        let statuses: BTreeMap<_, _> = Listing::from(read).keep(part, &mut snapshot.unread).into_iter().collect();
        apply_statuses(snapshot.instances.values_mut(), &statuses);
    }
    Ok(snapshot)
}

impl<T> From<Result<Vec<T>, AwsFailure>> for Listing<T> {
    fn from(r: Result<Vec<T>, AwsFailure>) -> Self {
        match r {
            Ok(items) => Self { items, failure: None },
            Err(e) => Self { items: vec![], failure: Some(e) },
        }
    }
}

/// Notes in `unread` a part of a sweep's reads that failed after `read` items.
fn note(unread: &mut Vec<Unread>, part: &str, read: usize, e: &AwsFailure) {
    tracing::error!(part, read, error = %e, "sweep read incomplete");
    unread.push(Unread { part: part.to_owned(), read, error: e.to_string() });
}

fn insert_instances(snapshot: &mut Snapshot, found: Vec<InstanceSnapshot>) {
    for inst in found {
        snapshot.instances.insert(inst.id.clone(), inst);
    }
}

/// Members of the suspended groups `detailed` picks that the snapshot does not hold yet.
fn undescribed(
    groups: &[GroupSnapshot],
    snapshot: &Snapshot,
    need: &Need,
    detailed: impl Fn(&GroupSnapshot) -> bool,
) -> Vec<InstanceId> {
    groups
        .iter()
        .filter(|g| (!g.suspended.is_empty() && detailed(g)) || (need.proactive && may_be_moved(g, snapshot)))
        .flat_map(|g| g.members.iter().map(|m| m.id.clone()))
        .filter(|id| !snapshot.instances.contains_key(id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Running instances in the snapshot without status checks yet.
fn unchecked(snapshot: &Snapshot) -> Vec<InstanceId> {
    snapshot
        .instances
        .values()
        .filter(|i| i.state == InstanceState::Running && i.status.is_none())
        .map(|i| i.id.clone())
        .collect()
}

/// A group the guard may be repairing: it has a member that is not running (among the
/// instances read so far) or carries the guard's recovering tag.
/// A group with a move under way, or a member with an event a move clears.
fn may_be_moved(group: &GroupSnapshot, snapshot: &Snapshot) -> bool {
    let movable =
        |i: &InstanceSnapshot| i.scheduled_events.iter().any(|e| crate::proactive::MOVABLE.contains(&e.code.as_str()));
    group.tags.contains_key(crate::proactive::MOVING_TAG)
        || group.members.iter().any(|m| snapshot.instances.get(&m.id).is_some_and(movable))
}

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

#[cfg(any(test, feature = "testing"))]
pub mod memory;
