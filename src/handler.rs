//! Orchestration only: intake → (inventory → findings → policy → actions) in
//! bounded rounds → notify → report. Each round reads the current AWS state, so
//! a round after successful writes continues the repair (start, then mark healthy,
//! then resume) inside one invocation; what is left waits for the next event or sweep.

use crate::actions::{self, Actuator};
use crate::config::Config;
use crate::domain::AsgName;
use crate::error::HandlerError;
use crate::findings::{self, Finding, Retirement};
use crate::intake::{self, Parsed, Trigger};
use crate::inventory::{self, Inventory};
use crate::notify::{self, Notifier};
use crate::policy::{self, Action};
use crate::report::{PlanReport, Report, Status};
use crate::state::StateStore;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Hard bound on rounds in one invocation, whatever the wait budget.
const MAX_ROUNDS: usize = 20;

/// The guard with its adapters, built once per cold start.
pub struct Guard<I, A, N, S> {
    pub config: Config,
    pub inventory: I,
    pub actuator: A,
    pub notifier: N,
    pub state: S,
    /// The region the clients talk to.
    pub region: String,
}

impl<I: Inventory, A: Actuator, N: Notifier, S: StateStore> Guard<I, A, N, S> {
    /// Handles one raw event. `Err` only for failures worth a Lambda retry
    /// (reading AWS state, publishing the notice); everything else is in the report.
    pub async fn handle(&self, raw: &Value, now: DateTime<Utc>) -> Result<Report, HandlerError> {
        let config = &self.config;
        let parsed = intake::parse(raw, &config.health_event_codes);
        let intake = match parsed {
            Ok(Parsed::Handled(intake)) => *intake,
            Ok(Parsed::Ignored { reason }) => {
                tracing::info!(%reason, "event ignored");
                let mut report = Report::new(Status::Ignored, config.mode, config.dry_run);
                report.reason = Some(reason);
                report.log_summary();
                return Ok(report);
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::error!(error = %reason, "event rejected");
                let account = raw
                    .get("account")
                    .and_then(Value::as_str)
                    .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()));
                let notice = notify::render_rejected(
                    &reason,
                    &self.region,
                    account.or(Some(config.topic.account())),
                    &config.environment,
                );
                let mut report = Report::new(Status::Rejected, config.mode, config.dry_run);
                report.reason = Some(reason);
                report.notifications.push(self.publish(&config.topic, &notice, "rejected", 0).await?);
                report.log_summary();
                return Ok(report);
            }
        };

        let dry_run = config.dry_run || intake.dry_run_requested();
        let mut announced: Vec<Retirement> = match &intake.trigger {
            Trigger::Health(h) => h
                .instances
                .iter()
                .map(|i| Retirement {
                    instance: i.clone(),
                    code: h.type_code.clone(),
                    deadline: h.deadline,
                    source: "health",
                    announced_at: h.announced_at,
                })
                .collect(),
            _ => vec![],
        };
        let mut report = Report::new(Status::Handled, config.mode, dry_run);
        let started = Instant::now();
        let budget = Duration::from_secs(config.wait_seconds);
        let mut first: Option<(Vec<Finding>, policy::Plan)> = None;
        let mut made_progress = false;
        let (mut last_findings, mut last_plan, mut last_snapshot);
        loop {
            report.rounds += 1;
            let snapshot = inventory::collect(&self.inventory, &intake.scope).await.map_err(HandlerError::Inventory)?;
            last_findings = findings::assess(&snapshot, &announced);
            let started_here: BTreeSet<AsgName> = report
                .outcomes
                .iter()
                .filter(|o| o.is_done())
                .filter_map(|o| match &o.action {
                    Action::StartInstance { group: Some(g), .. } => Some(g.clone()),
                    _ => None,
                })
                .collect();
            last_plan = policy::plan(&last_findings, &snapshot, config, &started_here);
            last_snapshot = snapshot;
            skip_failed(&mut last_plan, &report.outcomes);
            if first.is_none() {
                report.gone_instances = last_snapshot.gone_instances.clone();
                report.gone_groups = last_snapshot.gone_groups.clone();
                first = Some((last_findings.clone(), last_plan.clone()));
            }
            let out_of_time = started.elapsed() >= budget || report.rounds >= MAX_ROUNDS;
            if last_plan.steps.is_empty() {
                // Nothing to do now: wait only if earlier writes are still settling.
                if !(made_progress && last_plan.is_waiting()) || out_of_time || dry_run {
                    break;
                }
                tokio::time::sleep(
                    Duration::from_secs(config.poll_seconds).min(budget.saturating_sub(started.elapsed())),
                )
                .await;
                continue;
            }
            let outcomes = actions::execute(&last_plan, &self.actuator, dry_run, now).await;
            // Progress is a change to an instance or group, not the bookkeeping tag: after
            // starts that all failed there is nothing to wait for.
            let progressed = outcomes.iter().any(|o| {
                o.is_done() && !matches!(o.action, Action::MarkRecovering { .. } | Action::ClearRecovering { .. })
            });
            made_progress |= progressed;
            // A stop and start moves an instance to new hardware: its announced retirement no longer applies.
            announced.retain(|r| {
                !outcomes.iter().any(|o| {
                    o.is_done()
                        && matches!(&o.action, Action::StartInstance { instance, .. } if *instance == r.instance)
                })
            });
            report.plan.steps.extend(last_plan.steps.iter().cloned());
            report.outcomes.extend(outcomes);
            // Re-reading at once after progress is cheap; only waiting is bounded by the budget.
            if dry_run || !progressed || report.rounds >= MAX_ROUNDS {
                break;
            }
        }
        let (first_findings, first_plan) = first.unwrap_or_default();
        let visible: Vec<&Finding> = first_plan.visible(&first_findings);
        let remaining: Vec<&Finding> = last_plan.visible(&last_findings);
        report.plan = PlanReport { steps: std::mem::take(&mut report.plan.steps), skipped: last_plan.skipped.clone() };
        report.ignored_targets = first_plan.ignored.clone();

        let account = match &intake.trigger {
            Trigger::Health(h) => h.affected_account.as_deref().or(intake.account.as_deref()),
            _ => intake.account.as_deref(),
        };
        let trigger = describe_trigger(&intake.trigger);
        let outcomes = std::mem::take(&mut report.outcomes);
        let seen = notices::Observed {
            visible: &visible,
            remaining: &remaining,
            outcomes: &outcomes,
            pending: &last_plan.skipped,
            snapshot: &last_snapshot,
            sweep: intake.scope == crate::intake::Scope::Sweep,
            dry_run,
            account: account.or(Some(config.topic.account())),
            trigger: &trigger,
            now,
        };
        self.send_notices(&seen, &mut report).await?;
        report.outcomes = outcomes;
        report.findings = visible.into_iter().cloned().collect();
        report.remaining = remaining.into_iter().cloned().collect();
        report.trigger = Some(intake.trigger);
        report.scope = Some(intake.scope);
        report.log_summary();
        Ok(report)
    }
}

/// A step that failed earlier in this invocation is not tried again in a later
/// round: the next invocation (event or sweep) retries it from fresh state.
fn skip_failed(plan: &mut policy::Plan, earlier: &[actions::Outcome]) {
    let (retry, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut plan.steps).into_iter().partition(|s| {
        earlier
            .iter()
            .any(|o| (o.is_failed() || matches!(o.status, actions::Status::Gone { .. })) && o.action == s.action)
    });
    plan.steps = keep;
    for step in retry {
        plan.skipped.push(policy::Skip {
            action: step.action.name(),
            target: actions::target(&step.action),
            reason: "failed (or found gone) earlier in this invocation; the next invocation retries it".into(),
            waiting: false,
        });
    }
}

fn describe_trigger(t: &Trigger) -> String {
    match t {
        Trigger::Health(h) => format!(
            "AWS Health {} ({}){}",
            h.type_code,
            h.status_code.as_deref().unwrap_or("no status"),
            h.page.as_ref().map(|p| format!(", page {p}")).unwrap_or_default()
        ),
        Trigger::StateChange { instance, state } => format!("EC2 state change: {instance} is {state}"),
        Trigger::ProcessesChanged { api_call, group } => format!("CloudTrail {api_call} on {group}"),
        Trigger::Scheduled => "scheduled sweep".into(),
        Trigger::Manual { .. } => "manual request".into(),
    }
}

#[cfg(test)]
mod fault_matrix;
mod notices;
#[cfg(test)]
pub(crate) mod tests;
