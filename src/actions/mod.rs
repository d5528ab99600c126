//! Actions stage: a `Plan` → `Outcome`s, through the `Actuator` port (StartInstances,
//! SetInstanceHealth, ResumeProcesses, group tags). Starts and tag writes are batched
//! across groups; a batch refused as a whole is retried one resource at a time.
//! Within a group the steps run in plan order and a failed step stops the ones after
//! it (no resume after a failed or partial start: the planner never puts a resume in
//! the round of a start). In a dry run nothing is called and every step is reported
//! as `dry_run`.

pub mod aws;

use crate::domain::{AsgName, InstanceId, InstanceState, Recovery, Snapshot, StatusChecks};
use crate::error::{AwsFailure, FailureKind};
use crate::policy::{Action, Plan, RECOVERING_TAG, Step};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use serde::Serialize;
use std::future::Future;

/// The write port. The batch calls succeed or fail as a whole, as AWS's do.
pub trait Actuator: Sync {
    /// StartInstances for these instances in one call; answers the state AWS reports for each.
    fn start(&self, ids: &[InstanceId]) -> impl Future<Output = Result<Vec<(InstanceId, String)>, AwsFailure>> + Send;
    /// SetInstanceHealth Healthy, without respecting the grace period.
    fn set_healthy(&self, id: &InstanceId) -> impl Future<Output = Result<(), AwsFailure>> + Send;
    fn resume(&self, group: &AsgName, processes: &[String]) -> impl Future<Output = Result<(), AwsFailure>> + Send;
    /// One tag `key` on each group, with its value, in one call.
    fn tag_groups(&self, key: &str, tags: &[(AsgName, String)]) -> impl Future<Output = Result<(), AwsFailure>> + Send;
    /// The tag `key` removed from each group, in one call.
    fn untag_groups(&self, key: &str, groups: &[AsgName]) -> impl Future<Output = Result<(), AwsFailure>> + Send;
}

/// What became of a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Status {
    Done {
        detail: String,
    },
    /// Not called (dry run); `after`: the earlier steps it depends on, for those that
    /// would only follow once they succeeded.
    DryRun {
        #[serde(skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    /// The instance or group no longer exists: nothing left to do.
    Gone {
        detail: String,
    },
    Failed {
        failure: AwsFailure,
    },
    NotAttempted {
        reason: String,
    },
}

/// A step and its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub action: Action,
    #[serde(flatten)]
    pub status: Status,
}

impl Outcome {
    /// What a dry run reports for a step.
    pub fn dry_run(step: &Step) -> Self {
        Self { action: step.action.clone(), status: Status::DryRun { after: step.after.clone() } }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.status, Status::Done { .. })
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.status, Status::Failed { .. } | Status::NotAttempted { .. })
    }
}

/// The AWS state `steps` would leave if each succeeded and every started instance
/// booted and passed its checks: what a dry run plans its later rounds on.
pub fn assume_done(snapshot: &Snapshot, steps: &[Step], now: DateTime<Utc>) -> Snapshot {
    let mut s = snapshot.clone();
    let stamp = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    for step in steps {
        match &step.action {
            Action::MarkRecovering { group, started, since } => {
                let value = Recovery {
                    since: since.clone().unwrap_or_else(|| stamp.clone()),
                    started: started.iter().cloned().collect(),
                };
                if let Some(g) = s.groups.get_mut(group) {
                    g.tags.insert(RECOVERING_TAG.into(), value.render());
                }
            }
            Action::StartInstance { instance, .. } => {
                if let Some(i) = s.instances.get_mut(instance) {
                    i.state = InstanceState::Running;
                    i.state_reason_code = None;
                    i.status = Some(StatusChecks { instance: "ok".into(), system: "ok".into() });
                    i.launched_at = Some(now);
                }
            }
            Action::SetInstanceHealthy { instance, group } => {
                for m in
                    s.groups.get_mut(group).into_iter().flat_map(|g| g.members.iter_mut()).filter(|m| &m.id == instance)
                {
                    m.health_status = "Healthy".into();
                }
            }
            Action::ResumeProcesses { group, processes } => {
                if let Some(g) = s.groups.get_mut(group) {
                    g.suspended.retain(|p| !processes.contains(&p.name));
                }
            }
            Action::ClearRecovering { group } => {
                if let Some(g) = s.groups.get_mut(group) {
                    g.tags.remove(RECOVERING_TAG);
                }
            }
        }
    }
    s
}

/// Starts, and tags written or removed, per AWS call.
const BATCH: usize = 50;
/// Groups whose per-group writes (SetInstanceHealth, ResumeProcesses) run at once.
const GROUPS_AT_ONCE: usize = 8;

/// Carries out a plan in four phases, each as few calls as AWS allows: the recovering
/// tags of every group (CreateOrUpdateTags), every start (StartInstances, across
/// groups), then each group's health marking and resume in plan order (a failed step
/// stops the rest of its group; groups a bounded number at once), then the removal
/// of the tags of the groups that finished (DeleteTags). A batch AWS refuses as a
/// whole is retried one resource at a time, so one refused instance or group never
/// fails the others.
pub async fn execute<A: Actuator>(plan: &Plan, actuator: &A, dry_run: bool, now: DateTime<Utc>) -> Vec<Outcome> {
    if dry_run {
        return plan.steps.iter().map(Outcome::dry_run).collect();
    }
    let stamp = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let of = |pick: fn(&Action) -> bool| plan.steps.iter().filter(move |s| pick(&s.action)).collect::<Vec<_>>();
    let mut outcomes = mark(&of(|a| matches!(a, Action::MarkRecovering { .. })), actuator, &stamp).await;
    outcomes.extend(start(&of(|a| matches!(a, Action::StartInstance { .. })), actuator).await);
    let per_group = of(|a| matches!(a, Action::SetInstanceHealthy { .. } | Action::ResumeProcesses { .. }));
    let mut groups: Vec<&AsgName> = per_group.iter().filter_map(|s| s.action.group()).collect();
    groups.dedup();
    let runs = groups.into_iter().map(|g| {
        let steps: Vec<&Step> = per_group.iter().filter(|s| s.action.group() == Some(g)).copied().collect();
        run_group(steps, actuator)
    });
    let repaired: Vec<Outcome> = futures::stream::iter(runs).buffered(GROUPS_AT_ONCE).concat().await;
    let failed: Vec<&AsgName> = repaired.iter().filter(|o| !o.is_done()).filter_map(|o| o.action.group()).collect();
    outcomes.extend(repaired.iter().cloned());
    let clears = of(|a| matches!(a, Action::ClearRecovering { .. }));
    let (blocked, clears): (Vec<&Step>, Vec<&Step>) =
        clears.into_iter().partition(|s| s.action.group().is_some_and(|g| failed.contains(&g)));
    outcomes.extend(blocked.iter().map(|s| not_attempted(s, "an earlier step of this group failed")));
    outcomes.extend(clear(&clears, actuator).await);
    outcomes
}

/// The recovering tags of every group being marked, one call per batch.
async fn mark<A: Actuator>(steps: &[&Step], actuator: &A, stamp: &str) -> Vec<Outcome> {
    let value = |s: &Step| match &s.action {
        Action::MarkRecovering { started, since, .. } => Recovery {
            since: since.clone().unwrap_or_else(|| stamp.to_owned()),
            started: started.iter().cloned().collect(),
        }
        .render(),
        _ => String::new(),
    };
    batched(steps, |batch: Vec<&Step>| async move {
        let tags: Vec<(AsgName, String)> =
            batch.iter().filter_map(|s| Some((s.action.group()?.clone(), value(s)))).collect();
        actuator
            .tag_groups(RECOVERING_TAG, &tags)
            .await
            .map(|()| tags.iter().map(|(_, v)| format!("tagged {RECOVERING_TAG}={v}")).collect())
    })
    .await
}

/// Every start of the plan, across groups, one call per batch.
async fn start<A: Actuator>(steps: &[&Step], actuator: &A) -> Vec<Outcome> {
    batched(steps, |batch: Vec<&Step>| async move {
        let ids: Vec<InstanceId> = batch
            .iter()
            .filter_map(|s| match &s.action {
                Action::StartInstance { instance, .. } => Some(instance.clone()),
                _ => None,
            })
            .collect();
        let states = actuator.start(&ids).await?;
        Ok(ids
            .iter()
            .map(|id| {
                let state = states.iter().find(|(i, _)| i == id).map_or("unknown", |(_, s)| s.as_str());
                format!("StartInstances accepted, now {state}")
            })
            .collect())
    })
    .await
}

/// The removal of the recovering tags of the groups that finished, one call per batch.
async fn clear<A: Actuator>(steps: &[&Step], actuator: &A) -> Vec<Outcome> {
    batched(steps, |batch: Vec<&Step>| async move {
        let groups: Vec<AsgName> = batch.iter().filter_map(|s| s.action.group().cloned()).collect();
        actuator
            .untag_groups(RECOVERING_TAG, &groups)
            .await
            .map(|()| groups.iter().map(|_| format!("removed {RECOVERING_TAG}")).collect())
    })
    .await
}

/// Runs `call` on batches of `BATCH` steps; `call` answers one detail per step. A batch
/// that fails is tried again one step at a time, so each step gets its own result.
async fn batched<'s, F, Fut>(steps: &[&'s Step], call: F) -> Vec<Outcome>
where
    F: Fn(Vec<&'s Step>) -> Fut,
    Fut: Future<Output = Result<Vec<String>, AwsFailure>>,
{
    let mut outcomes = Vec::with_capacity(steps.len());
    for batch in steps.chunks(BATCH) {
        match call(batch.to_vec()).await {
            Ok(details) => outcomes.extend(batch.iter().zip(details).map(|(s, d)| done(s, Ok(d)))),
            Err(_) if batch.len() > 1 => {
                let singles = batch.iter().map(|s| call(vec![*s]));
                for (s, result) in batch.iter().zip(futures::future::join_all(singles).await) {
                    outcomes.push(done(s, result.map(|mut d| d.pop().unwrap_or_default())));
                }
            }
            Err(e) => outcomes.extend(batch.iter().map(|s| done(s, Err(e.clone())))),
        }
    }
    outcomes
}

/// One group's health marking and resume, in plan order; a failed step stops the rest.
async fn run_group<A: Actuator>(steps: Vec<&Step>, actuator: &A) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(steps.len());
    for step in steps {
        if let Some(failed) = outcomes.iter().find(|o| !o.is_done()) {
            let reason = format!("{} of {} failed", failed.action.name(), failed.action.target());
            outcomes.push(not_attempted(step, &reason));
            continue;
        }
        let result = match &step.action {
            Action::SetInstanceHealthy { instance, .. } => {
                actuator.set_healthy(instance).await.map(|()| "marked Healthy".to_owned())
            }
            Action::ResumeProcesses { group, processes } => {
                actuator.resume(group, processes).await.map(|()| format!("resumed {}", processes.join(", ")))
            }
            _ => Ok(String::new()),
        };
        outcomes.push(done(step, result));
    }
    outcomes
}

/// The outcome of a step from its call's result.
fn done(step: &Step, result: Result<String, AwsFailure>) -> Outcome {
    let status = match result {
        Ok(detail) => Status::Done { detail },
        Err(f) if f.kind == FailureKind::NotFound => Status::Gone { detail: f.message },
        Err(failure) => {
            tracing::warn!(action = step.action.name(), target = %step.action.target(), code = failure.code.as_deref().unwrap_or(""), kind = ?failure.kind, "action failed");
            Status::Failed { failure }
        }
    };
    Outcome { action: step.action.clone(), status }
}

fn not_attempted(step: &Step, reason: &str) -> Outcome {
    Outcome { action: step.action.clone(), status: Status::NotAttempted { reason: reason.to_owned() } }
}

#[cfg(any(test, feature = "testing"))]
pub mod recording;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::recording::RecordingActuator;
    use crate::findings::tests::{id, three_groups};
    use crate::inventory::memory::MemoryInventory;

    fn step(action: Action) -> Step {
        Step { action, reason: String::new(), after: None }
    }

    fn starts(ids: &[u32]) -> Plan {
        let group = |n: u32| AsgName::parse(["a", "b", "c"][(n / 10 - 1) as usize]).unwrap();
        let steps = ids.iter().map(|n| step(Action::StartInstance { instance: id(*n), group: Some(group(*n)) }));
        Plan { steps: steps.collect(), ..Plan::default() }
    }

    fn now() -> DateTime<Utc> {
        crate::findings::tests::now()
    }

    #[tokio::test]
    async fn starts_across_groups_go_in_one_call() {
        let actuator = RecordingActuator::new(MemoryInventory::new(three_groups()));
        let outcomes = execute(&starts(&[11, 21, 31]), &actuator, false, now()).await;
        assert!(outcomes.iter().all(Outcome::is_done), "{outcomes:?}");
        let calls = actuator.calls();
        assert_eq!(calls.len(), 3, "the recording actuator records each id of the one call: {calls:?}");
    }

    #[tokio::test]
    async fn one_refused_instance_does_not_fail_the_others_of_its_batch() {
        let mut actuator = RecordingActuator::new(MemoryInventory::new(three_groups()));
        actuator.failures.insert(format!("start {}", id(21)), FailureKind::Capacity);
        let outcomes = execute(&starts(&[11, 21, 31]), &actuator, false, now()).await;
        let done: Vec<bool> = outcomes.iter().map(Outcome::is_done).collect();
        assert_eq!(done, [true, false, true], "{outcomes:?}");
        assert!(matches!(&outcomes[1].status, Status::Failed { failure } if failure.kind == FailureKind::Capacity));
        let calls = actuator.calls();
        assert_eq!(calls[0], format!("start {},{},{}", id(11), id(21), id(31)), "the batch first: {calls:?}");
        assert_eq!(calls.len(), 4, "then each alone: {calls:?}");
    }

    #[tokio::test]
    async fn a_failed_health_marking_stops_the_resume_and_the_tag_removal_of_its_group_only() {
        let mut actuator = RecordingActuator::new(MemoryInventory::new(three_groups()));
        actuator.failures.insert(format!("set-healthy {}", id(11)), FailureKind::Denied);
        let (a, b) = (AsgName::parse("a").unwrap(), AsgName::parse("b").unwrap());
        let mut steps = vec![];
        for (g, n) in [(&a, 11), (&b, 21)] {
            steps.push(step(Action::SetInstanceHealthy { instance: id(n), group: g.clone() }));
            steps.push(step(Action::ResumeProcesses { group: g.clone(), processes: vec!["Launch".into()] }));
            steps.push(step(Action::ClearRecovering { group: g.clone() }));
        }
        let outcomes = execute(&Plan { steps, ..Plan::default() }, &actuator, false, now()).await;
        let of = |g: &AsgName| {
            outcomes.iter().filter(|o| o.action.group() == Some(g)).map(Outcome::is_done).collect::<Vec<_>>()
        };
        assert_eq!(of(&a), [false, false, false], "{outcomes:?}");
        assert_eq!(of(&b), [true, true, true], "{outcomes:?}");
        assert!(!actuator.calls().iter().any(|c| c.starts_with("resume a")));
    }
}
