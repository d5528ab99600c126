//! Actions stage: a `Plan` → `Outcome`s, through the `Actuator` port (StartInstances,
//! SetInstanceHealth, ResumeProcesses, group tags). Groups run concurrently and
//! independently; within a group the steps run in plan order and a failed step
//! stops the ones after it (no resume after a failed or partial start). In a dry
//! run nothing is called and every step is reported as `dry_run`.

pub mod aws;

use crate::domain::{AsgName, InstanceId, InstanceState, Recovery, Snapshot, StatusChecks};
use crate::error::{AwsFailure, FailureKind};
use crate::policy::{Action, Plan, RECOVERING_TAG, Step};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;

/// The write port.
pub trait Actuator: Sync {
    /// StartInstances for one instance; answers the state AWS reports afterwards.
    fn start(&self, id: &InstanceId) -> impl Future<Output = Result<String, AwsFailure>> + Send;
    /// SetInstanceHealth Healthy, without respecting the grace period.
    fn set_healthy(&self, id: &InstanceId) -> impl Future<Output = Result<(), AwsFailure>> + Send;
    fn resume(&self, group: &AsgName, processes: &[String]) -> impl Future<Output = Result<(), AwsFailure>> + Send;
    fn tag_group(&self, group: &AsgName, key: &str, value: &str)
    -> impl Future<Output = Result<(), AwsFailure>> + Send;
    fn untag_group(&self, group: &AsgName, key: &str) -> impl Future<Output = Result<(), AwsFailure>> + Send;
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

/// Carries out a plan.
pub async fn execute<A: Actuator>(plan: &Plan, actuator: &A, dry_run: bool, now: DateTime<Utc>) -> Vec<Outcome> {
    if dry_run {
        return plan.steps.iter().map(Outcome::dry_run).collect();
    }
    // Standalone instances are each their own unit; group steps stay together.
    let mut units: BTreeMap<(Option<&AsgName>, Option<&InstanceId>), Vec<&Step>> = BTreeMap::new();
    for step in &plan.steps {
        let key = match &step.action {
            Action::StartInstance { instance, group: None } => (None, Some(instance)),
            other => (other.group(), None),
        };
        units.entry(key).or_default().push(step);
    }
    let stamp = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let runs = units.into_values().map(|steps| run_unit(steps, actuator, &stamp));
    futures::future::join_all(runs).await.into_iter().flatten().collect()
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

async fn run_unit<A: Actuator>(steps: Vec<&Step>, actuator: &A, stamp: &str) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(steps.len());
    let mut i = 0;
    while i < steps.len() {
        // Consecutive starts in a group run concurrently.
        let batch: Vec<&Step> = if matches!(steps[i].action, Action::StartInstance { .. }) {
            steps[i..].iter().take_while(|s| matches!(s.action, Action::StartInstance { .. })).copied().collect()
        } else {
            vec![steps[i]]
        };
        i += batch.len();
        let results = futures::future::join_all(batch.iter().map(|s| run_step(&s.action, actuator, stamp))).await;
        let mut blocked = None;
        for (step, result) in batch.into_iter().zip(results) {
            if let Status::Failed { failure } = &result {
                // A failed recovery tag does not stop the starts: they matter more.
                if !matches!(step.action, Action::MarkRecovering { .. }) {
                    blocked = Some(format!(
                        "{} of {} failed ({})",
                        step.action.name(),
                        step.action.target(),
                        failure.code.as_deref().unwrap_or("error")
                    ));
                }
            }
            outcomes.push(Outcome { action: step.action.clone(), status: result });
        }
        if let Some(reason) = blocked {
            for rest in &steps[i..] {
                outcomes.push(Outcome {
                    action: rest.action.clone(),
                    status: Status::NotAttempted { reason: reason.clone() },
                });
            }
            break;
        }
    }
    outcomes
}

async fn run_step<A: Actuator>(action: &Action, actuator: &A, stamp: &str) -> Status {
    let result = match action {
        Action::MarkRecovering { group, started, since } => {
            let value = Recovery {
                since: since.clone().unwrap_or_else(|| stamp.to_owned()),
                started: started.iter().cloned().collect(),
            }
            .render();
            actuator.tag_group(group, RECOVERING_TAG, &value).await.map(|()| format!("tagged {RECOVERING_TAG}={value}"))
        }
        Action::StartInstance { instance, .. } => {
            actuator.start(instance).await.map(|state| format!("StartInstances accepted, now {state}"))
        }
        Action::SetInstanceHealthy { instance, .. } => {
            actuator.set_healthy(instance).await.map(|()| "marked Healthy".into())
        }
        Action::ResumeProcesses { group, processes } => {
            actuator.resume(group, processes).await.map(|()| format!("resumed {}", processes.join(", ")))
        }
        Action::ClearRecovering { group } => {
            actuator.untag_group(group, RECOVERING_TAG).await.map(|()| format!("removed {RECOVERING_TAG}"))
        }
    };
    match result {
        Ok(detail) => Status::Done { detail },
        Err(f) if f.kind == FailureKind::NotFound => Status::Gone { detail: f.message },
        Err(failure) => {
            tracing::warn!(action = action.name(), target = %action.target(), code = failure.code.as_deref().unwrap_or(""), kind = ?failure.kind, "action failed");
            Status::Failed { failure }
        }
    }
}

#[cfg(test)]
pub(crate) mod recording;
