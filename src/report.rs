//! Report stage: everything one invocation saw and did, as the JSON the handler
//! returns (and the CLI prints), plus the one-line summary that is logged.

use crate::actions::Outcome;
use crate::config::Mode;
use crate::domain::Scope;
use crate::domain::{AsgName, InstanceId, Unread};
use crate::findings::{Finding, Severity};
use crate::intake::Trigger;
use crate::policy::{Skip, Step};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A recognised event (or manual request) was handled.
    Handled,
    /// Not an event the guard handles; acknowledged, not retried.
    Ignored,
    /// A recognised event with broken content; notified, not retried.
    Rejected,
}

/// The notice sent, if any.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NotificationReport {
    pub topic: String,
    /// `problem` (new, escalated or repeated conditions, and what the guard did) or `recovered`.
    pub notice: &'static str,
    pub tier: usize,
    pub subject: String,
    pub severity: Severity,
    pub message_id: String,
}

/// One open condition and its escalation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConditionReport {
    pub key: String,
    pub summary: String,
    pub first_seen: chrono::DateTime<chrono::Utc>,
    pub age_seconds: i64,
    /// Tiers notified by this invocation.
    pub notified_tiers: Vec<usize>,
    /// Why nothing was sent, when nothing was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet: Option<String>,
}

/// The handler's response.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub trigger: Option<Trigger>,
    pub scope: Option<Scope>,
    pub policy: Mode,
    pub dry_run: bool,
    /// What was wrong when the invocation started (minus ignored targets).
    pub findings: Vec<Finding>,
    pub plan: PlanReport,
    pub outcomes: Vec<Outcome>,
    /// What is still wrong after the guard acted.
    pub remaining: Vec<Finding>,
    /// Groups and instances whose override tag says `ignore`.
    pub ignored_targets: Vec<String>,
    pub gone_instances: Vec<InstanceId>,
    pub gone_groups: Vec<AsgName>,
    /// What a sweep could not read (the rest of the report holds what it could).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unread: Vec<Unread>,
    /// Read-plan-act rounds run (a round follows only after successful writes).
    pub rounds: usize,
    /// Why the rounds ended before the repair could go on (deadline near, a read
    /// failed after writes), when they did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_short: Option<String>,
    /// Notices sent (one per tier topic with something due, plus resolution notices).
    pub notifications: Vec<NotificationReport>,
    /// Open conditions and what escalation decided for each.
    pub conditions: Vec<ConditionReport>,
    /// Conditions seen before that are gone now.
    pub resolved: Vec<String>,
    /// False when the state store could not be read: notices were sent without deduplication.
    pub deduplicated: bool,
    /// Proactive moves (`PROACTIVE_MOVES`): each group's retiring members and the next step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proactive: Vec<crate::proactive::GroupMoves>,
}

/// Steps planned over all rounds, and what the last round left undone.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PlanReport {
    pub steps: Vec<Step>,
    pub skipped: Vec<Skip>,
}

impl Report {
    /// A report with nothing seen yet.
    pub fn new(status: Status, policy: Mode, dry_run: bool) -> Self {
        Self {
            status,
            reason: None,
            trigger: None,
            scope: None,
            policy,
            dry_run,
            findings: vec![],
            plan: PlanReport::default(),
            outcomes: vec![],
            remaining: vec![],
            ignored_targets: vec![],
            gone_instances: vec![],
            gone_groups: vec![],
            unread: vec![],
            rounds: 0,
            cut_short: None,
            notifications: vec![],
            conditions: vec![],
            resolved: vec![],
            deduplicated: true,
            proactive: vec![],
        }
    }

    /// Logs the one summary line of the invocation.
    pub fn log_summary(&self) {
        let failed = self.outcomes.iter().filter(|o| o.is_failed()).count();
        let done = self.outcomes.iter().filter(|o| o.is_done()).count();
        tracing::info!(
            status = ?self.status,
            reason = self.reason.as_deref().unwrap_or(""),
            trigger = self.trigger.as_ref().map(trigger_name).unwrap_or("none"),
            findings = self.findings.len(),
            remaining = self.remaining.len(),
            steps = self.plan.steps.len(),
            done,
            failed,
            dry_run = self.dry_run,
            notices = self.notifications.len(),
            rounds = self.rounds,
            unread = self.unread.len(),
            "invocation summary"
        );
    }
}

pub fn trigger_name(t: &Trigger) -> &'static str {
    match t {
        Trigger::Health(_) => "health",
        Trigger::StateChange { .. } => "state_change",
        Trigger::ProcessesChanged { .. } => "processes_changed",
        Trigger::Scheduled => "scheduled",
        Trigger::Manual { .. } => "manual",
    }
}
