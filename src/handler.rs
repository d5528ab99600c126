//! Orchestration only: the verdict on the event → repair rounds (inventory →
//! findings → policy → actions, each round reading the current AWS state, so a round
//! after successful writes continues the repair: start, mark healthy, resume) → the
//! finish (notices, report). Rounds end when nothing more can be done now, at the
//! wait budget, or at the invocation's deadline minus a reserve for the notices; a
//! read failure after writes ends them too, and the notice of what was done is sent
//! before the invocation fails for a retry. What is left waits for the next event or sweep.

use crate::actions::{self, Actuator, Outcome};
use crate::config::Config;
use crate::domain::{Scope, Snapshot};
use crate::error::{AwsFailure, HandlerError};
use crate::findings::{self, Finding, Retirement};
use crate::intake::{self, Intake, Parsed, Trigger};
use crate::inventory::{self, Inventory};
use crate::notify::{self, Notifier};
use crate::policy::{self, Action, Plan, Progress, Skip};
use crate::report::{PlanReport, Report, Status};
use crate::state::StateStore;
use chrono::{DateTime, Utc};
use serde_json::Value;
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

/// When the rounds of one invocation must stop.
struct Budget {
    started: Instant,
    /// Waiting for instances to settle ends here (WAIT_SECONDS).
    wait_until: Instant,
    /// No new round starts after this: the deadline minus the notices' reserve and one round.
    last_round: Option<Instant>,
}

impl Budget {
    fn new(config: &Config, deadline: Option<Instant>) -> Self {
        let started = Instant::now();
        let call = Duration::from_secs(config.sdk.operation_timeout_seconds);
        // Notices: a few publishes and state writes, each bounded by the call timeout;
        // a round: its reads and then its writes, each phase bounded the same way.
        let reserve = call * 2 + call * 2;
        let last_round = deadline.map(|d| d.checked_sub(reserve).unwrap_or(started));
        let wait_until = started + Duration::from_secs(config.wait_seconds);
        Self { started, wait_until: last_round.map_or(wait_until, |l| l.min(wait_until)), last_round }
    }

    fn may_start_round(&self) -> bool {
        self.last_round.is_none_or(|l| Instant::now() < l)
    }

    fn may_wait(&self) -> Option<Duration> {
        let left = self.wait_until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }
}

/// What the rounds saw and left.
#[derive(Default)]
struct Rounds {
    first_findings: Vec<Finding>,
    first_plan: Plan,
    findings: Vec<Finding>,
    plan: Plan,
    snapshot: Snapshot,
    /// Why the rounds ended before the repair could go on, when they did.
    cut_short: Option<String>,
    /// A read that failed after writes: the invocation fails once the notice is out.
    read_failure: Option<AwsFailure>,
}

impl<I: Inventory, A: Actuator, N: Notifier, S: StateStore> Guard<I, A, N, S> {
    /// Handles one raw event without a deadline of its own (tests, tools).
    pub async fn handle(&self, raw: &Value, now: DateTime<Utc>) -> Result<Report, HandlerError> {
        self.handle_until(raw, now, None).await
    }

    /// Handles one raw event; rounds stop in time for the notices before `deadline`.
    /// `Err` only for failures worth a Lambda retry (reading AWS state, publishing the
    /// notice); everything else is in the report.
    pub async fn handle_until(
        &self,
        raw: &Value,
        now: DateTime<Utc>,
        deadline: Option<Instant>,
    ) -> Result<Report, HandlerError> {
        let intake = match self.verdict(raw, now).await? {
            Ok(intake) => intake,
            Err(report) => return Ok(report),
        };
        let dry_run = self.config.dry_run || intake.dry_run_requested();
        let mut report = Report::new(Status::Handled, self.config.mode, dry_run);
        let budget = Budget::new(&self.config, deadline);
        let rounds = self.rounds(&intake, dry_run, now, &budget, &mut report).await.map_err(HandlerError::Inventory)?;
        let failure = rounds.read_failure.clone();
        self.finish(intake, rounds, dry_run, now, &mut report).await?;
        match failure {
            Some(e) => Err(HandlerError::Inventory(e)),
            None => Ok(report),
        }
    }

    /// The intake's verdict: a recognised event, or the report of an ignored or
    /// rejected one (a rejected one is notified).
    async fn verdict(&self, raw: &Value, now: DateTime<Utc>) -> Result<Result<Intake, Report>, HandlerError> {
        let config = &self.config;
        match intake::parse(raw, &config.health_event_codes) {
            Ok(Parsed::Handled(intake)) => Ok(Ok(*intake)),
            Ok(Parsed::Ignored { reason }) => {
                tracing::info!(%reason, "event ignored");
                let mut report = Report::new(Status::Ignored, config.mode, config.dry_run);
                report.reason = Some(reason);
                report.log_summary();
                Ok(Err(report))
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::error!(error = %reason, "event rejected");
                let account = intake::account_id(raw.get("account").and_then(Value::as_str));
                let account = account.as_deref().or(Some(config.topic.account()));
                let notice = notify::render_rejected(&reason, &self.region, account, &config.environment, now);
                let mut report = Report::new(Status::Rejected, config.mode, config.dry_run);
                report.reason = Some(reason);
                self.publish(&config.topic, &notice, "rejected", 0, &mut report).await?;
                report.log_summary();
                Ok(Err(report))
            }
        }
    }

    /// The account the guard acts in: the event's receiving account, else the topic's.
    fn own_account<'a>(&'a self, intake: &'a Intake) -> &'a str {
        intake.account.as_deref().unwrap_or(self.config.topic.account())
    }

    /// Findings of one snapshot, with the announcements the guard could not inspect.
    fn assess(
        &self,
        intake: &Intake,
        snapshot: &Snapshot,
        announced: &[Retirement],
        now: DateTime<Utc>,
    ) -> Vec<Finding> {
        let stall_after = chrono::Duration::minutes(self.config.stall_minutes as i64);
        let mut found = findings::assess(snapshot, announced, now, stall_after);
        if let Trigger::Health(h) = &intake.trigger {
            found.extend(findings::not_inspected(h, &snapshot.gone_instances, self.own_account(intake)));
        }
        found
    }

    /// Read → assess → plan → act, while writes make progress or started instances
    /// settle, within the budget. `Err` only when the first read fails (nothing done).
    async fn rounds(
        &self,
        intake: &Intake,
        dry_run: bool,
        now: DateTime<Utc>,
        budget: &Budget,
        report: &mut Report,
    ) -> Result<Rounds, AwsFailure> {
        let config = &self.config;
        let mut announced = announced(&intake.trigger);
        let mut progress = Progress::default();
        let mut made_progress = false;
        let mut r = Rounds::default();
        // After the first round of a sweep, only what is under repair is read again (in
        // full: an event's scope describes every member of its suspended groups).
        let (mut scope, mut base): (Scope, Option<Snapshot>) = (intake.scope.clone(), None);
        let need = inventory::Need {
            readiness: config.mode == crate::config::Mode::Recover,
            proactive: config.proactive.enabled,
            health_alarm: config.proactive.health_alarm.clone(),
        };
        loop {
            let snapshot = match inventory::collect(&self.inventory, &scope, &need).await {
                Ok(fresh) => match &base {
                    Some(b) => b.overlay(fresh),
                    None => fresh,
                },
                // A later round follows only writes: say what was done before failing for the retry.
                Err(e) if report.rounds > 0 => {
                    r.cut_short = Some(format!(
                        "reading AWS state failed after the writes above ({e}); the invocation fails so that Lambda retries it"
                    ));
                    r.read_failure = Some(e);
                    return Ok(r);
                }
                Err(e) => return Err(e),
            };
            report.rounds += 1;
            let found = self.assess(intake, &snapshot, &announced, now);
            let mut plan = policy::plan(&found, &snapshot, config, &progress, now);
            if report.rounds == 1 {
                report.gone_instances = snapshot.gone_instances.clone();
                report.gone_groups = snapshot.gone_groups.clone();
                report.unread = snapshot.unread.clone();
                (r.first_findings, r.first_plan) = (found.clone(), plan.clone());
            }
            if plan.steps.is_empty() {
                let wait = budget.may_wait().filter(|_| made_progress && plan.is_waiting() && !dry_run);
                (r.findings, r.plan, r.snapshot) = (found, plan, snapshot);
                match wait {
                    Some(left) if report.rounds < MAX_ROUNDS && budget.may_start_round() => {
                        tokio::time::sleep(Duration::from_secs(config.poll_seconds).min(left)).await;
                        continue;
                    }
                    _ => break,
                }
            }
            if !budget.may_start_round() {
                r.cut_short = Some(format!(
                    "the invocation's deadline is near ({} s in; time is kept for the notices): the steps below were not started, the next invocation continues",
                    budget.started.elapsed().as_secs()
                ));
                postpone(&mut plan);
                (r.findings, r.plan, r.snapshot) = (found, plan, snapshot);
                break;
            }
            if dry_run {
                let steps = self.project(intake, &snapshot, &announced, &plan, &mut progress, now);
                report.outcomes.extend(steps.iter().map(Outcome::dry_run));
                report.plan.steps.extend(steps);
                (r.findings, r.plan, r.snapshot) = (found, plan, snapshot);
                break;
            }
            let progressed = self.act(&plan, now, &mut progress, report).await;
            made_progress |= progressed;
            if intake.scope == Scope::Sweep {
                scope = under_repair(&scope, &plan);
                base = Some(snapshot.clone());
            }
            // A stop and start moves an instance to new hardware: its announced retirement no longer applies.
            announced.retain(|a| !progress.started.iter().any(|(id, _)| *id == a.instance));
            (r.findings, r.plan, r.snapshot) = (found, plan, snapshot);
            // Re-reading at once after progress is cheap; only waiting is bounded by the budget.
            if !progressed || report.rounds >= MAX_ROUNDS {
                break;
            }
        }
        Ok(r)
    }

    /// Carries out one round's plan, learns from its outcomes and reports them; true when
    /// an instance or group changed (the bookkeeping tag is no progress: after starts
    /// that all failed there is nothing to wait for).
    async fn act(&self, plan: &Plan, now: DateTime<Utc>, progress: &mut Progress, report: &mut Report) -> bool {
        let outcomes = actions::execute(plan, &self.actuator, false, now).await;
        let progressed = outcomes.iter().any(|o| {
            o.is_done() && !matches!(o.action, Action::MarkRecovering { .. } | Action::ClearRecovering { .. })
        });
        learn(progress, &outcomes);
        report.plan.steps.extend(plan.steps.iter().cloned());
        report.outcomes.extend(outcomes);
        progressed
    }

    /// A dry run's whole plan: this round's steps, then those that would follow if they
    /// succeeded and AWS state moved on as expected, each marked with the steps it
    /// waits for. Nothing is written; the bounds hold over the projected rounds too.
    fn project(
        &self,
        intake: &Intake,
        snapshot: &Snapshot,
        announced: &[Retirement],
        plan: &Plan,
        progress: &mut Progress,
        now: DateTime<Utc>,
    ) -> Vec<policy::Step> {
        let mut steps = plan.steps.clone();
        let mut view = snapshot.clone();
        let mut last = plan.steps.clone();
        for _ in 1..MAX_ROUNDS {
            learn(progress, &last.iter().map(Outcome::dry_run).collect::<Vec<_>>());
            view = actions::assume_done(&view, &last, now);
            let found = self.assess(intake, &view, announced, now);
            let mut next = policy::plan(&found, &view, &self.config, progress, now).steps;
            if next.is_empty() {
                break;
            }
            let names: Vec<String> =
                last.iter().map(|s| format!("{} {}", s.action.name(), s.action.target())).collect();
            let after = format!(
                "only if the steps before succeed ({}) and the started instances run with status checks OK",
                names.join(", ")
            );
            for s in &mut next {
                s.after = Some(after.clone());
            }
            steps.extend(next.iter().cloned());
            last = next;
        }
        steps
    }

    /// Notices and the report, from what the rounds saw and did.
    async fn finish(
        &self,
        intake: Intake,
        rounds: Rounds,
        dry_run: bool,
        now: DateTime<Utc>,
        report: &mut Report,
    ) -> Result<(), HandlerError> {
        let visible: Vec<&Finding> = rounds.first_plan.visible(&rounds.first_findings);
        let remaining: Vec<&Finding> = rounds.plan.visible(&rounds.findings);
        report.plan =
            PlanReport { steps: std::mem::take(&mut report.plan.steps), skipped: rounds.plan.skipped.clone() };
        report.ignored_targets = rounds.first_plan.ignored.clone();
        report.cut_short = rounds.cut_short.clone();
        report.proactive = crate::proactive::plan(&rounds.snapshot, &rounds.findings, &self.config, now);

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
            pending: &rounds.plan.skipped,
            snapshot: &rounds.snapshot,
            sweep: intake.scope == Scope::Sweep,
            dry_run,
            account: account.or(Some(self.config.topic.account())),
            trigger: &trigger,
            cut_short: rounds.cut_short.as_deref(),
            now,
        };
        self.send_notices(&seen, report).await?;
        report.outcomes = outcomes;
        report.findings = visible.into_iter().cloned().collect();
        report.remaining = remaining.into_iter().cloned().collect();
        report.trigger = Some(intake.trigger);
        report.scope = Some(intake.scope);
        report.log_summary();
        Ok(())
    }
}

/// The retirements a Health event announced, for the instances it names here.
fn announced(trigger: &Trigger) -> Vec<Retirement> {
    match trigger {
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
    }
}

/// The groups and standalone instances a round's plan changed, added to `scope` (a
/// sweep's scope becomes just them): what the next round of a sweep reads again.
fn under_repair(scope: &Scope, plan: &Plan) -> Scope {
    let (mut instances, mut groups) = match scope {
        Scope::Targets { instances, groups } => (instances.clone(), groups.clone()),
        Scope::Sweep => (vec![], vec![]),
    };
    for step in &plan.steps {
        match &step.action {
            Action::StartInstance { instance, group: None } => instances.push(instance.clone()),
            other => groups.extend(other.group().cloned()),
        }
    }
    instances.sort();
    instances.dedup();
    groups.sort();
    groups.dedup();
    Scope::Targets { instances, groups }
}

/// What a round's outcomes teach the plans of the rounds after it.
fn learn(progress: &mut Progress, outcomes: &[Outcome]) {
    use actions::Status as S;
    for o in outcomes {
        match (&o.action, &o.status) {
            (Action::StartInstance { instance, group }, S::Done { .. } | S::DryRun { .. }) => {
                progress.started.push((instance.clone(), group.clone()));
            }
            (action, S::Failed { .. } | S::NotAttempted { .. } | S::Gone { .. }) => {
                progress.failed.push(action.clone())
            }
            _ => {}
        }
    }
}

/// Steps not started because the deadline is near: reported as left for the next invocation.
fn postpone(plan: &mut Plan) {
    for step in std::mem::take(&mut plan.steps) {
        plan.skipped.push(Skip {
            action: step.action.name(),
            target: step.action.target(),
            reason: "not started: the invocation's deadline is near; the next invocation continues".into(),
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

mod notices;
#[cfg(test)]
pub(crate) mod tests;
