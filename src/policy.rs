//! Policy stage (pure): findings + snapshot + `Config` + tags + what earlier rounds
//! of the invocation did (`Progress`) → a `Plan` of steps in the safe remediation
//! order, each with its reason, and every step not taken with the reason why. Tags
//! may only narrow what the stack's POLICY allows; start bounds hold for the whole
//! invocation and are shared fairly between groups.

use crate::config::{Config, HEALTH_ALARM_TAG, Mode, POLICY_TAG};
pub use crate::domain::RECOVERING_TAG;
use crate::domain::{
    AsgName, GroupSnapshot, InstanceId, InstanceSnapshot, InstanceState, Recovery, RootDevice, Snapshot, StopCause,
    Suspender,
};
use crate::findings::Finding;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A write the guard may make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Record on the group that the guard is repairing it and which members it
    /// started (written before the starts it records).
    MarkRecovering {
        group: AsgName,
        started: Vec<InstanceId>,
        /// When the repair began, kept from an existing tag; `None`: now.
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<String>,
    },
    StartInstance {
        instance: InstanceId,
        group: Option<AsgName>,
    },
    /// SetInstanceHealth Healthy, while Terminate/ReplaceUnhealthy are still suspended.
    SetInstanceHealthy {
        instance: InstanceId,
        group: AsgName,
    },
    ResumeProcesses {
        group: AsgName,
        processes: Vec<String>,
    },
    /// Remove the recovering tag once there is nothing left for the guard to do.
    ClearRecovering {
        group: AsgName,
    },
}

impl Action {
    pub fn group(&self) -> Option<&AsgName> {
        match self {
            Self::StartInstance { group, .. } => group.as_ref(),
            Self::MarkRecovering { group, .. }
            | Self::SetInstanceHealthy { group, .. }
            | Self::ResumeProcesses { group, .. }
            | Self::ClearRecovering { group } => Some(group),
        }
    }

    /// The resource the action changes, for messages.
    pub fn target(&self) -> String {
        match self {
            Self::StartInstance { instance, .. } | Self::SetInstanceHealthy { instance, .. } => instance.to_string(),
            Self::MarkRecovering { group, .. }
            | Self::ResumeProcesses { group, .. }
            | Self::ClearRecovering { group } => group.to_string(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::MarkRecovering { .. } => "mark_recovering",
            Self::StartInstance { .. } => "start_instance",
            Self::SetInstanceHealthy { .. } => "set_instance_healthy",
            Self::ResumeProcesses { .. } => "resume_processes",
            Self::ClearRecovering { .. } => "clear_recovering",
        }
    }
}

/// A planned write and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    #[serde(flatten)]
    pub action: Action,
    pub reason: String,
    /// In a dry run, the earlier steps this one depends on (it follows only if they
    /// succeed and AWS state moves on as expected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// Something the guard did not do, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skip {
    /// `start_instance`, `set_instance_healthy`, `resume_processes` or `any`.
    pub action: &'static str,
    pub target: String,
    pub reason: String,
    /// True when AWS state is still settling (an instance stopping or booting), so a
    /// later round of this invocation may do it; bounds and refusals are not waiting.
    pub waiting: bool,
}

/// The plan for one round.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub skipped: Vec<Skip>,
    /// Groups and instances whose override tag says `ignore`.
    pub ignored: Vec<String>,
}

impl Plan {
    pub fn is_waiting(&self) -> bool {
        self.skipped.iter().any(|s| s.waiting)
    }

    /// Findings minus those about ignored groups and instances.
    pub fn visible<'a>(&self, findings: &'a [Finding]) -> Vec<&'a Finding> {
        findings
            .iter()
            .filter(|f| {
                !f.group().is_some_and(|g| self.ignored.contains(&g.to_string()))
                    && !f.instance().is_some_and(|i| self.ignored.contains(&i.to_string()))
            })
            .collect()
    }
}

/// What earlier rounds of this invocation did: an input to the plan, so that the
/// start bounds hold for the whole invocation and a failed step is not tried again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Instances whose start AWS accepted, with their group.
    pub started: Vec<(InstanceId, Option<AsgName>)>,
    /// Actions that failed, or whose target was gone.
    pub failed: Vec<Action>,
}

impl Progress {
    fn started_in<'a>(&'a self, group: &'a AsgName) -> impl Iterator<Item = &'a InstanceId> + 'a {
        self.started.iter().filter(move |(_, g)| g.as_ref() == Some(group)).map(|(i, _)| i)
    }
}

/// A group (or a standalone instance) with the starts it could make.
struct Unit<'a> {
    group: Option<&'a GroupSnapshot>,
    mode: Mode,
    /// Members the guard started and has not yet seen ready: the tag's record and this invocation's starts.
    started: BTreeSet<InstanceId>,
    /// Members started and not yet passing status checks (whoever started them).
    in_flight: usize,
    /// Instances that may be started, in order; the first `allocated` get a start.
    candidates: Vec<&'a InstanceSnapshot>,
    allocated: usize,
}

impl Unit<'_> {
    fn starts(&self) -> &[&InstanceSnapshot] {
        &self.candidates[..self.allocated]
    }

    /// Members the tag must record if this unit starts more: started ones not yet ready, plus the new starts.
    fn recorded(&self, snapshot: &Snapshot) -> BTreeSet<InstanceId> {
        let mut ids: BTreeSet<InstanceId> =
            self.started.iter().filter(|id| !snapshot.ready(self.group, id)).cloned().collect();
        ids.extend(self.starts().iter().map(|i| i.id.clone()));
        ids
    }
}

struct Planner<'a> {
    config: &'a Config,
    snapshot: &'a Snapshot,
    progress: &'a Progress,
    now: DateTime<Utc>,
    plan: Plan,
}

/// Computes the plan for the current state, given what earlier rounds of this invocation did.
pub fn plan(
    findings: &[Finding],
    snapshot: &Snapshot,
    config: &Config,
    progress: &Progress,
    now: DateTime<Utc>,
) -> Plan {
    let mut p = Planner { config, snapshot, progress, now, plan: Plan::default() };
    let mut units = p.units(findings);
    p.allocate(&mut units);
    for unit in &units {
        match unit.group {
            Some(group) => p.repair_group(group, unit),
            None => p.start_steps(unit),
        }
    }
    p.skip_failed();
    p.plan
}

impl<'a> Planner<'a> {
    /// Groups with anything to do, in name order, then the standalone instances AWS stopped.
    fn units(&mut self, findings: &[Finding]) -> Vec<Unit<'a>> {
        let snapshot = self.snapshot;
        let mut stranded: BTreeMap<&AsgName, Vec<&InstanceId>> = BTreeMap::new();
        let mut groups: BTreeSet<&AsgName> = BTreeSet::new();
        for f in findings {
            match f {
                Finding::StrandedInstance { instance, group, .. } => {
                    stranded.entry(group).or_default().push(instance);
                    groups.insert(group);
                }
                Finding::SuspendedProcesses { group, .. } => {
                    groups.insert(group);
                }
                _ => {}
            }
        }
        // A recovering tag left behind (its removal failed) is cleaned up once all is well.
        groups.extend(snapshot.groups.values().filter(|g| g.tags.contains_key(RECOVERING_TAG)).map(|g| &g.name));
        let mut units = Vec::new();
        for group in groups.into_iter().filter_map(|name| snapshot.groups.get(name)) {
            if let Some(unit) = self.group_unit(group, stranded.get(&group.name).map(Vec::as_slice).unwrap_or_default())
            {
                units.push(unit);
            }
        }
        for f in findings {
            if let Finding::StoppedStandalone { instance, .. } = f
                && let Some(inst) = snapshot.instances.get(instance)
            {
                let mode = self.mode_for(&inst.id.to_string(), &inst.tags, self.config.mode, None);
                if mode == Mode::Notify {
                    let reason = format!("policy is notify (POLICY={})", self.config.mode);
                    self.skip("start_instance", inst.id.to_string(), reason, false);
                }
                let candidates = if mode >= Mode::Restart && self.startable(inst, None) { vec![inst] } else { vec![] };
                units.push(Unit {
                    group: None,
                    mode,
                    started: BTreeSet::new(),
                    in_flight: 0,
                    candidates,
                    allocated: 0,
                });
            }
        }
        units
    }

    /// A group's mode, the members it started, those booting, and the stranded members it may start.
    fn group_unit(&mut self, group: &'a GroupSnapshot, stranded: &[&InstanceId]) -> Option<Unit<'a>> {
        let snapshot = self.snapshot;
        let gname = group.name.to_string();
        let mode = self.mode_for(&gname, &group.tags, self.config.mode, None);
        if mode == Mode::Ignore {
            return None;
        }
        if mode == Mode::Notify && !stranded.is_empty() {
            let reason = format!("policy is notify for this group (POLICY={})", self.config.mode);
            self.skip("start_instance", gname, reason, false);
        }
        let is_member = |id: &InstanceId| group.members.iter().any(|m| &m.id == id);
        let mut started: BTreeSet<InstanceId> =
            group.recovery().map(|r| r.started).unwrap_or_default().into_iter().filter(|id| is_member(id)).collect();
        started.extend(self.progress.started_in(&group.name).cloned());
        let in_flight = group
            .members
            .iter()
            .filter(|m| {
                snapshot.booting(&m.id)
                    || (self.progress.started_in(&group.name).any(|s| s == &m.id) && !snapshot.ready(None, &m.id))
            })
            .count();
        let mut candidates = Vec::new();
        if mode >= Mode::Restart {
            for inst in stranded.iter().filter_map(|id| snapshot.instances.get(*id)) {
                let imode = self.mode_for(&inst.id.to_string(), &inst.tags, mode, Some(&group.name));
                if imode >= Mode::Restart && self.startable(inst, Some(group)) {
                    candidates.push(inst);
                }
            }
        }
        Some(Unit { group: Some(group), mode, started, in_flight, candidates, allocated: 0 })
    }

    /// Shares the starts this invocation may still make between the units, one per unit
    /// in turn; units with members in flight, then units already under repair, come
    /// after the others: a large group cannot starve the others across invocations.
    /// What is left is skipped with its bound.
    fn allocate(&mut self, units: &mut [Unit]) {
        let config = self.config;
        let mut budget = config.max_starts.saturating_sub(self.progress.started.len());
        let mut order: Vec<usize> = (0..units.len()).collect();
        order.sort_by_key(|&i| (units[i].in_flight, !units[i].started.is_empty()));
        let room = |u: &Unit, snapshot: &Snapshot| {
            u.allocated < u.candidates.len()
                && (u.group.is_none()
                    || (u.in_flight + u.allocated < config.max_starts_per_group
                        && (u.mode < Mode::Recover || u.recorded(snapshot).len() < Recovery::CAPACITY)))
        };
        while budget > 0 {
            let mut given = false;
            for &i in &order {
                if budget > 0 && room(&units[i], self.snapshot) {
                    units[i].allocated += 1;
                    budget -= 1;
                    given = true;
                }
            }
            if !given {
                break;
            }
        }
        for u in units.iter() {
            for inst in &u.candidates[u.allocated..] {
                let reason = if budget == 0 {
                    format!(
                        "MAX_STARTS_PER_INVOCATION={} reached (every round of this invocation counts); the next invocation continues",
                        config.max_starts
                    )
                } else if u.in_flight + u.allocated >= config.max_starts_per_group {
                    format!(
                        "MAX_STARTS_PER_GROUP={}: {} member(s) of this group started and not yet passing status checks; the next invocation continues",
                        config.max_starts_per_group,
                        u.in_flight + u.allocated
                    )
                } else {
                    format!(
                        "the recovering tag records at most {} started members at once; the next invocation continues",
                        Recovery::CAPACITY
                    )
                };
                self.skip("start_instance", inst.id.to_string(), reason, false);
            }
        }
    }

    /// The effective mode: the stack's POLICY, narrowed by the override tag and the opt-in tag.
    /// The opt-in tag is checked on the resource that is changed, as the template's IAM
    /// conditions do: a member needs it itself (propagated at launch), not only its group.
    fn mode_for(
        &mut self,
        target: &str,
        tags: &BTreeMap<String, String>,
        ceiling: Mode,
        group: Option<&AsgName>,
    ) -> Mode {
        let mut mode = ceiling;
        if let Some(value) = tags.get(POLICY_TAG) {
            match value.parse::<Mode>() {
                Ok(tagged) => mode = mode.min(tagged),
                Err(()) => {
                    mode = mode.min(Mode::Notify);
                    self.skip(
                        "any",
                        target.into(),
                        format!("tag {POLICY_TAG}={value:?} is not ignore|notify|restart|recover: treated as notify"),
                        false,
                    );
                }
            }
        }
        if mode == Mode::Ignore {
            self.plan.ignored.push(target.into());
        }
        if let Some(opt_in) = &self.config.opt_in_tag
            && mode > Mode::Notify
            && tags.get(opt_in).map(String::as_str) != Some("true")
        {
            let reason = match group {
                Some(g) => format!(
                    "opt-in tag {opt_in}=true is on group {g} but not on this instance: IAM allows StartInstances only on instances that carry it (tag the group with PropagateAtLaunch, and the instance)"
                ),
                None => format!("opt-in tag {opt_in}=true is missing: notify only"),
            };
            self.skip("any", target.into(), reason, false);
            mode = Mode::Notify;
        }
        mode
    }

    fn skip(&mut self, action: &'static str, target: String, reason: String, waiting: bool) {
        self.plan.skipped.push(Skip { action, target, reason, waiting });
    }

    fn step(&mut self, action: Action, reason: String) {
        self.plan.steps.push(Step { action, reason, after: None });
    }

    /// Whether a stopped instance may be started (bounds aside); says why not when not.
    fn startable(&mut self, inst: &InstanceSnapshot, group: Option<&GroupSnapshot>) -> bool {
        let cause = inst.stop_cause();
        let member = group.and_then(|g| g.members.iter().find(|m| m.id == inst.id));
        let failed = self
            .progress
            .failed
            .iter()
            .any(|a| matches!(a, Action::StartInstance { instance, .. } if *instance == inst.id));
        let refusal = if inst.state == InstanceState::Stopping {
            Some(("still stopping; it can be started once stopped".to_owned(), true))
        } else if inst.state != InstanceState::Stopped {
            Some((format!("is {}, not stopped", inst.state), false))
        } else if inst.root_device == RootDevice::InstanceStore {
            Some(("instance-store root device: it cannot be started".into(), false))
        } else if inst.root_device != RootDevice::Ebs {
            Some(("root device type unknown: only EBS-backed instances are started".into(), false))
        } else if cause != StopCause::Retirement && !self.config.restart_user_stopped {
            Some((
                format!(
                    "{}; only instances AWS stopped (Server.ScheduledStop) are started while RESTART_USER_STOPPED=false",
                    cause.describe()
                ),
                false,
            ))
        } else if member.is_some_and(|m| m.lifecycle_state.starts_with("Standby")) {
            Some(("in Standby: taken out of service on purpose".into(), false))
        } else if failed {
            Some(("its start failed earlier in this invocation; the next invocation retries it".into(), false))
        } else {
            None
        };
        match refusal {
            Some((reason, waiting)) => {
                self.skip("start_instance", inst.id.to_string(), reason, waiting);
                false
            }
            None => true,
        }
    }

    /// The start steps of a unit, each with its reason.
    fn start_steps(&mut self, unit: &Unit) {
        for inst in unit.starts() {
            let why = match unit.group {
                Some(g) => format!(
                    "{} while {} suspended in {}",
                    inst.stop_cause().describe(),
                    g.blocking_replacement().join(", "),
                    g.name
                ),
                None => format!("{} and in no Auto Scaling group", inst.stop_cause().describe()),
            };
            let action = Action::StartInstance { instance: inst.id.clone(), group: unit.group.map(|g| g.name.clone()) };
            self.step(action, why);
        }
    }

    /// One group in the safe order: record and start, mark restarted members healthy, resume.
    fn repair_group(&mut self, group: &GroupSnapshot, unit: &Unit) {
        let gname = group.name.to_string();
        let starting = unit.allocated > 0;
        if starting && unit.mode == Mode::Recover {
            let mark = Action::MarkRecovering {
                group: group.name.clone(),
                started: unit.recorded(self.snapshot).into_iter().collect(),
                since: group.recovery().map(|r| r.since).filter(|s| !s.is_empty()),
            };
            self.step(
                mark,
                format!(
                    "record on the group ({RECOVERING_TAG}) which members the guard starts, so that only those are marked Healthy and a later invocation may finish the recovery"
                ),
            );
        }
        self.start_steps(unit);
        if unit.mode < Mode::Recover {
            if unit.mode == Mode::Restart && !group.suspended.is_empty() {
                self.skip("resume_processes", gname, "policy is restart: processes stay suspended".into(), false);
            }
            return;
        }
        let recovering = starting || group.tags.contains_key(RECOVERING_TAG) || !unit.started.is_empty();
        if !recovering {
            if !group.suspended.is_empty() {
                self.skip(
                    "resume_processes",
                    gname,
                    "no instance of this group was stopped by a retirement the guard is repairing: suspended processes are left as they are".into(),
                    false,
                );
            }
            return;
        }
        let readiness = self.mark_healthy(group, &unit.started);
        self.resume(group, starting, readiness);
    }

    /// Plans SetInstanceHealthy for the members the guard started that run with checks OK
    /// but are marked Unhealthy, while Terminate/ReplaceUnhealthy still hold replacement.
    /// Returns what keeps the group from being resumed, and whether it may settle by waiting.
    fn mark_healthy(&mut self, group: &GroupSnapshot, started: &BTreeSet<InstanceId>) -> Readiness {
        let replacement_held = group.is_suspended("Terminate") || group.is_suspended("ReplaceUnhealthy");
        let mut r = Readiness::default();
        for m in &group.members {
            let inst = self.snapshot.instances.get(&m.id);
            let state = inst.map(|i| i.state).unwrap_or(InstanceState::Unknown);
            let checks = inst.and_then(|i| i.status.as_ref());
            if state != InstanceState::Running || !checks.is_some_and(|s| s.ok()) {
                let shown = checks.map(|s| format!(", {}", s.shown())).unwrap_or_default();
                r.not_ready.push(format!("{} ({state}{shown})", m.id));
                r.settling |= (self.snapshot.booting(&m.id) && !checks.is_some_and(|s| s.impaired()))
                    || state == InstanceState::Stopping;
                continue;
            }
            if m.health_status != "Healthy" {
                if !started.contains(&m.id) {
                    r.not_ready.push(format!(
                        "{} is {} and the guard did not start it: another health check marked it, and the guard does not override that",
                        m.id, m.health_status
                    ));
                } else if replacement_held {
                    r.healthy_soon = true;
                    self.step(
                        Action::SetInstanceHealthy { instance: m.id.clone(), group: group.name.clone() },
                        "started by the guard, running with status checks OK but marked Unhealthy: set Healthy while Terminate/ReplaceUnhealthy are suspended, or resuming would replace it".into(),
                    );
                } else {
                    r.not_ready.push(format!("{} is {} (the group will replace it)", m.id, m.health_status));
                }
            }
            if m.lifecycle_state != "InService" && m.lifecycle_state != "Standby" {
                r.not_ready.push(format!("{} is {}", m.id, m.lifecycle_state));
                r.settling = true;
            }
        }
        r
    }

    /// Plans ResumeProcesses for the processes the guard owns, only once every member
    /// is running and healthy, then the removal of the recovering tag.
    fn resume(&mut self, group: &GroupSnapshot, starting: bool, readiness: Readiness) {
        let gname = group.name.to_string();
        let mut owned = Vec::new();
        for p in &group.suspended {
            if self.config.never_resume.contains(&p.name) {
                let target = format!("{gname}/{}", p.name);
                self.skip("resume_processes", target, "listed in NEVER_RESUME_PROCESSES".into(), false);
            } else if p.suspender() == Suspender::Person && !self.config.resume_user_suspended {
                self.skip(
                    "resume_processes",
                    format!("{gname}/{}", p.name),
                    format!("suspended by a person ({}); RESUME_USER_SUSPENDED=false", p.reason.trim()),
                    false,
                );
            } else {
                owned.push(p.name.clone());
            }
        }
        let tagged = group.tags.contains_key(RECOVERING_TAG);
        if starting {
            let reason = "waiting for the started instances to run and pass status checks".into();
            self.skip("resume_processes", gname, reason, true);
        } else if !readiness.not_ready.is_empty() {
            let reason = format!("waiting: {}", readiness.not_ready.join("; "));
            self.skip("resume_processes", gname, reason, readiness.settling);
        } else if !owned.is_empty()
            && let Some(why) = self.health_gate(group)
        {
            self.skip("resume_processes", gname, format!("{why}; the processes are resumed once it is open"), false);
        } else if !owned.is_empty() {
            let healthy = if readiness.healthy_soon { " (after marking restarted members Healthy)" } else { "" };
            self.step(
                Action::ResumeProcesses { group: group.name.clone(), processes: owned },
                format!("every member is running and healthy{healthy}; these processes were not suspended by a person"),
            );
            if tagged {
                self.step(Action::ClearRecovering { group: group.name.clone() }, "recovery complete".into());
            }
        } else if tagged {
            self.step(
                Action::ClearRecovering { group: group.name.clone() },
                "every member is running and healthy; nothing left to resume".into(),
            );
        }
    }

    /// Why the group's health alarm (tag `retirement-guard:health-alarm`, else
    /// `HEALTH_ALARM`) keeps its processes suspended, when one is named and not open.
    /// The settle time counts from the later of the alarm's change and the last start
    /// of a member (the members came back then).
    fn health_gate(&self, group: &GroupSnapshot) -> Option<String> {
        let name = group.tags.get(HEALTH_ALARM_TAG).or(self.config.proactive.health_alarm.as_ref())?;
        let settle = chrono::Duration::minutes(self.config.proactive.settle_minutes as i64);
        let back = group.members.iter().filter_map(|m| self.snapshot.instances.get(&m.id)?.launched_at).max();
        crate::proactive::gate(self.snapshot.alarms.get(name), name, settle, back, self.now).err().map(|(why, _)| why)
    }

    /// A step that failed (or found its target gone) earlier in this invocation is not
    /// tried again: the next invocation (event or sweep) retries it from fresh state.
    fn skip_failed(&mut self) {
        let failed = &self.progress.failed;
        let (retry, keep): (Vec<Step>, Vec<Step>) =
            std::mem::take(&mut self.plan.steps).into_iter().partition(|s| failed.contains(&s.action));
        self.plan.steps = keep;
        for step in retry {
            self.skip(
                step.action.name(),
                step.action.target(),
                "failed (or found gone) earlier in this invocation; the next invocation retries it".into(),
                false,
            );
        }
    }
}

/// What keeps a group from being resumed.
#[derive(Default)]
struct Readiness {
    not_ready: Vec<String>,
    /// Some of it may clear by waiting (booting, stopping, lifecycle moving on).
    settling: bool,
    /// SetInstanceHealthy steps were planned before the resume.
    healthy_soon: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::config_with;
    use crate::domain::{StatusChecks, SuspendedProcess};
    use crate::findings::tests::{found, id, instance, now, story, three_groups};

    fn plan_for(s: &Snapshot, env: &[(&str, &str)]) -> Plan {
        plan(&found(s, &[]), s, &config_with(env).unwrap(), &Progress::default(), now())
    }

    fn actions(p: &Plan) -> Vec<&'static str> {
        p.steps.iter().map(|s| s.action.name()).collect()
    }

    fn es(s: &mut Snapshot) -> &mut GroupSnapshot {
        s.groups.values_mut().next().unwrap()
    }

    #[test]
    fn notify_policy_plans_no_writes_and_says_why() {
        let p = plan_for(&story(), &[]);
        assert!(p.steps.is_empty());
        assert!(p.skipped.iter().any(|s| s.reason.contains("policy is notify")));
    }

    #[test]
    fn recover_starts_retired_instances_first_and_waits_before_resuming() {
        let p = plan_for(&story(), &[("POLICY", "recover")]);
        assert_eq!(actions(&p), ["mark_recovering", "start_instance", "start_instance"]);
        assert!(p.steps[1].reason.contains("stopped by AWS"), "{}", p.steps[1].reason);
        assert!(p.skipped.iter().any(|s| s.action == "resume_processes" && s.waiting));
    }

    #[test]
    fn restart_policy_never_resumes() {
        let p = plan_for(&story(), &[("POLICY", "restart")]);
        assert_eq!(actions(&p), ["start_instance", "start_instance"]);
        assert!(p.skipped.iter().any(|s| s.reason.contains("policy is restart")));
    }

    #[test]
    fn user_stopped_instances_are_left_unless_configured() {
        let mut s = story();
        for i in s.instances.values_mut() {
            if i.state == InstanceState::Stopped {
                i.state_reason_code = Some("Client.UserInitiatedShutdown".into());
            }
        }
        let p = plan_for(&s, &[("POLICY", "recover")]);
        assert!(p.steps.is_empty());
        assert!(p.skipped.iter().any(|x| x.reason.contains("RESTART_USER_STOPPED=false")));
        let p = plan_for(&s, &[("POLICY", "recover"), ("RESTART_USER_STOPPED", "true")]);
        assert_eq!(actions(&p), ["mark_recovering", "start_instance", "start_instance"]);
    }

    /// The story after the guard restarted member 1: every member running with checks OK.
    fn restarted() -> Snapshot {
        let mut s = story();
        for i in s.instances.values_mut() {
            i.state = InstanceState::Running;
            i.status = Some(StatusChecks { instance: "ok".into(), system: "ok".into() });
        }
        es(&mut s).tags.insert(RECOVERING_TAG.into(), format!("2026-11-28T00:00:00Z {}", id(1)));
        s
    }

    #[test]
    fn after_restart_unhealthy_members_are_marked_healthy_then_processes_resumed() {
        let mut s = restarted();
        let g = es(&mut s);
        g.members[0].health_status = "Unhealthy".into();
        let p = plan_for(&s, &[("POLICY", "recover")]);
        assert_eq!(actions(&p), ["set_instance_healthy", "resume_processes", "clear_recovering"]);
        assert_eq!(
            p.steps[1].action,
            Action::ResumeProcesses { group: g_name(), processes: vec!["Launch".into(), "Terminate".into()] }
        );
    }

    fn g_name() -> AsgName {
        AsgName::parse("es-data").unwrap()
    }

    #[test]
    fn a_named_health_alarm_holds_the_resume_until_it_is_ok_and_settled_and_the_tag_with_it() {
        let env = [("POLICY", "recover"), ("HEALTH_ALARM", "es-green")];
        let alarm = |state: &str, minutes: i64| crate::domain::Alarm {
            name: "es-green".into(),
            state: state.into(),
            since: Some(now() - chrono::Duration::minutes(minutes)),
        };
        let mut s = restarted();
        s.alarms.insert("es-green".into(), Some(alarm("ALARM", 60)));
        let p = plan_for(&s, &env);
        assert!(actions(&p).is_empty(), "no resume and the recovering tag stays: {:?}", p.steps);
        let why = &p.skipped.iter().find(|x| x.action == "resume_processes").unwrap().reason;
        assert!(
            why.contains("health alarm es-green is ALARM since") && why.contains("resumed once it is open"),
            "{why}"
        );
        s.alarms.insert("es-green".into(), Some(alarm("OK", 3)));
        assert!(actions(&plan_for(&s, &env)).is_empty(), "OK for 3 of the 10 settle minutes");
        s.alarms.insert("es-green".into(), Some(alarm("OK", 30)));
        assert_eq!(actions(&plan_for(&s, &env)), ["resume_processes", "clear_recovering"]);
        s.instances.get_mut(&id(1)).unwrap().launched_at = Some(now() - chrono::Duration::minutes(2));
        assert!(actions(&plan_for(&s, &env)).is_empty(), "settled from the member's return, 2 of 10 minutes ago");
        s.instances.get_mut(&id(1)).unwrap().launched_at = Some(now() - chrono::Duration::minutes(20));
        s.alarms.clear();
        assert!(actions(&plan_for(&s, &env)).is_empty(), "an alarm that could not be read holds it too");
        assert_eq!(
            actions(&plan_for(&s, &[("POLICY", "recover")])),
            ["resume_processes", "clear_recovering"],
            "no alarm named: no gate"
        );
    }

    #[test]
    fn no_resume_while_any_member_is_not_running_or_checks_pending() {
        let mut s = story();
        es(&mut s).tags.insert(RECOVERING_TAG.into(), "x".into());
        s.instances.get_mut(&id(1)).unwrap().state = InstanceState::Running;
        s.instances.get_mut(&id(1)).unwrap().status =
            Some(StatusChecks { instance: "initializing".into(), system: "ok".into() });
        s.instances.get_mut(&id(2)).unwrap().state = InstanceState::Pending;
        let p = plan_for(&s, &[("POLICY", "recover")]);
        assert!(actions(&p).is_empty(), "{:?}", p.steps);
        let wait = p.skipped.iter().find(|x| x.action == "resume_processes").unwrap();
        assert!(
            wait.waiting
                && wait.reason.contains("instance check initializing, system check ok")
                && wait.reason.contains("(pending"),
            "{}",
            wait.reason
        );
    }

    #[test]
    fn processes_a_person_suspended_or_never_resume_stay_suspended() {
        let mut s = story();
        for i in s.instances.values_mut() {
            i.state = InstanceState::Running;
        }
        for i in s.instances.values_mut() {
            i.status = Some(StatusChecks { instance: "ok".into(), system: "ok".into() });
        }
        let g = es(&mut s);
        g.tags.insert(RECOVERING_TAG.into(), "x".into());
        g.suspended = vec![
            SuspendedProcess { name: "Launch".into(), reason: "User suspended at 2026-11-01T00:00:00Z".into() },
            SuspendedProcess { name: "Terminate".into(), reason: "".into() },
            SuspendedProcess { name: "AZRebalance".into(), reason: "".into() },
        ];
        let p = plan_for(&s, &[("POLICY", "recover"), ("NEVER_RESUME_PROCESSES", "AZRebalance")]);
        assert_eq!(p.steps[0].action, Action::ResumeProcesses { group: g_name(), processes: vec!["Terminate".into()] });
        assert!(p.skipped.iter().any(|x| x.target == "es-data/Launch" && x.reason.contains("suspended by a person")));
        assert!(p.skipped.iter().any(|x| x.target == "es-data/AZRebalance"));
    }

    #[test]
    fn healthy_group_without_recovery_marker_is_not_resumed() {
        let mut s = story();
        for i in s.instances.values_mut() {
            i.state = InstanceState::Running;
        }
        let p = plan_for(&s, &[("POLICY", "recover")]);
        assert!(p.steps.is_empty());
        assert!(p.skipped.iter().any(|x| x.reason.contains("left as they are")));
    }

    #[test]
    fn bounds_limit_starts_per_invocation_and_per_group() {
        let p = plan_for(&story(), &[("POLICY", "restart"), ("MAX_STARTS_PER_INVOCATION", "1")]);
        assert_eq!(actions(&p), ["start_instance"]);
        let bound = p.skipped.iter().find(|x| x.reason.contains("MAX_STARTS_PER_INVOCATION=1")).unwrap();
        assert!(!bound.waiting, "a reached bound does not keep the invocation waiting");
        let p = plan_for(&story(), &[("POLICY", "restart"), ("MAX_STARTS_PER_GROUP", "1")]);
        assert_eq!(actions(&p), ["start_instance"]);
    }

    #[test]
    fn tags_narrow_but_never_widen_the_stack_policy() {
        let mut s = story();
        es(&mut s).tags.insert(POLICY_TAG.into(), "recover".into());
        assert!(plan_for(&s, &[("POLICY", "notify")]).steps.is_empty());
        es(&mut s).tags.insert(POLICY_TAG.into(), "notify".into());
        assert!(plan_for(&s, &[("POLICY", "recover")]).steps.is_empty());
        es(&mut s).tags.insert(POLICY_TAG.into(), "ignore".into());
        let p = plan_for(&s, &[("POLICY", "recover")]);
        assert!(p.steps.is_empty());
        assert!(p.visible(&found(&s, &[])).is_empty());
        es(&mut s).tags.insert(POLICY_TAG.into(), "bogus".into());
        assert!(plan_for(&s, &[("POLICY", "recover")]).steps.is_empty());
    }

    #[test]
    fn instance_tag_can_exclude_one_member() {
        let mut s = story();
        s.instances.get_mut(&id(1)).unwrap().tags.insert(POLICY_TAG.into(), "notify".into());
        let p = plan_for(&s, &[("POLICY", "restart")]);
        assert_eq!(p.steps.len(), 1);
        assert_eq!(p.steps[0].action, Action::StartInstance { instance: id(2), group: Some(g_name()) });
    }

    #[test]
    fn opt_in_tag_is_required_before_any_change() {
        let mut s = story();
        let env = [("POLICY", "recover"), ("OPT_IN_TAG", "retirement-guard:enabled")];
        let p = plan_for(&s, &env);
        assert!(p.steps.is_empty());
        assert!(p.skipped.iter().any(|x| x.reason.contains("opt-in tag")));
        es(&mut s).tags.insert("retirement-guard:enabled".into(), "true".into());
        let p = plan_for(&s, &env);
        assert!(p.steps.is_empty(), "the group's tag alone does not let IAM start its members: {:?}", p.steps);
        assert!(p.skipped.iter().any(|x| x.reason.contains("IAM allows StartInstances only")), "{:?}", p.skipped);
        for n in [1, 2] {
            s.instances.get_mut(&id(n)).unwrap().tags.insert("retirement-guard:enabled".into(), "true".into());
        }
        assert_eq!(actions(&plan_for(&s, &env)), ["mark_recovering", "start_instance", "start_instance"]);
    }

    /// The statement of the template that allows StartInstances, as text.
    fn start_statement() -> String {
        let template = include_str!("../infra/template.yaml");
        let from = template.find("Sid: StartStoppedInstances").expect("the template allows StartInstances");
        template[from..].lines().take(9).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn the_opt_in_rule_of_the_planner_is_the_one_iam_enforces_on_starts() {
        let statement = start_statement();
        // IAM checks the tag on the instance resource itself (aws:ResourceTag on instance/*).
        assert!(statement.contains(":instance/*"), "{statement}");
        let key = statement
            .lines()
            .find_map(|l| l.trim().strip_prefix("\"aws:ResourceTag/"))
            .and_then(|rest| rest.split('"').next())
            .expect("StartInstances is conditioned on a resource tag when OptInTag is set");
        assert!(statement.contains("\"true\""), "{statement}");
        // The planner asks the same of the instance: the group's tag alone is not enough.
        let env = [("POLICY", "restart"), ("OPT_IN_TAG", key)];
        let mut s = story();
        es(&mut s).tags.insert(key.into(), "true".into());
        assert!(plan_for(&s, &env).steps.is_empty());
        s.instances.get_mut(&id(1)).unwrap().tags.insert(key.into(), "true".into());
        assert_eq!(
            plan_for(&s, &env).steps[0].action,
            Action::StartInstance { instance: id(1), group: Some(g_name()) }
        );
    }

    #[test]
    fn instance_store_and_standby_members_are_not_started() {
        let mut s = story();
        s.instances.get_mut(&id(1)).unwrap().root_device = RootDevice::InstanceStore;
        es(&mut s).members[1].lifecycle_state = "Standby".into();
        let p = plan_for(&s, &[("POLICY", "restart")]);
        assert!(p.steps.is_empty());
        assert!(p.skipped.iter().any(|x| x.reason.contains("instance-store")));
        assert!(p.skipped.iter().any(|x| x.reason.contains("Standby")));
    }

    #[test]
    fn standalone_retired_instance_is_started_under_restart() {
        let mut s = Snapshot::default();
        let inst = instance(7, InstanceState::Stopped, Some("Server.ScheduledStop"), None);
        s.instances.insert(inst.id.clone(), inst);
        assert_eq!(actions(&plan_for(&s, &[("POLICY", "restart")])), ["start_instance"]);
        assert!(plan_for(&s, &[]).steps.is_empty());
    }

    fn starts(p: &Plan) -> Vec<InstanceId> {
        p.steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::StartInstance { instance, .. } => Some(instance.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn starts_made_in_earlier_rounds_count_against_the_invocation_bound() {
        let s = three_groups();
        let config = config_with(&[("POLICY", "recover"), ("MAX_STARTS_PER_INVOCATION", "2")]).unwrap();
        let progress = Progress { started: vec![(id(11), Some(AsgName::parse("a").unwrap()))], failed: vec![] };
        let p = plan(&found(&s, &[]), &s, &config, &progress, now());
        assert_eq!(starts(&p).len(), 1, "one start left of two: {:?}", p.steps);
        let full = Progress { started: vec![(id(11), None), (id(21), None)], failed: vec![] };
        assert!(starts(&plan(&found(&s, &[]), &s, &config, &full, now())).is_empty());
    }

    #[test]
    fn starts_are_shared_between_groups_one_each_in_turn() {
        let p = plan_for(&three_groups(), &[("POLICY", "restart"), ("MAX_STARTS_PER_INVOCATION", "3")]);
        assert_eq!(starts(&p), [id(11), id(21), id(31)], "one per group before a second in any");
    }

    #[test]
    fn a_group_with_members_still_booting_waits_behind_the_others_and_within_its_own_bound() {
        let mut s = three_groups();
        // a's first retired member is booting (started by an earlier invocation).
        let booting = s.instances.get_mut(&id(11)).unwrap();
        booting.state = InstanceState::Running;
        booting.status = Some(StatusChecks { instance: "initializing".into(), system: "ok".into() });
        let p = plan_for(&s, &[("POLICY", "restart"), ("MAX_STARTS_PER_INVOCATION", "1")]);
        assert_eq!(starts(&p), [id(21)], "b is served before a, which already has one in flight");
        let p = plan_for(&s, &[("POLICY", "restart"), ("MAX_STARTS_PER_GROUP", "1")]);
        assert!(!starts(&p).contains(&id(12)), "a already has one member booting: {:?}", starts(&p));
        let skip = p.skipped.iter().find(|x| x.target == id(12).to_string()).unwrap();
        assert!(skip.reason.contains("MAX_STARTS_PER_GROUP=1") && !skip.waiting, "{skip:?}");
    }

    #[test]
    fn only_members_the_guard_started_are_marked_healthy() {
        let mut s = restarted();
        let g = es(&mut s);
        // 1 was started by the guard; 4 was marked Unhealthy by someone else (a load balancer).
        g.members[0].health_status = "Unhealthy".into();
        g.members[3].health_status = "Unhealthy".into();
        let p = plan_for(&s, &[("POLICY", "recover")]);
        assert_eq!(
            p.steps.iter().map(|s| s.action.clone()).collect::<Vec<_>>(),
            [Action::SetInstanceHealthy { instance: id(1), group: g_name() }]
        );
        let wait = p.skipped.iter().find(|x| x.action == "resume_processes").unwrap();
        assert!(
            wait.reason.contains(&format!("{} is Unhealthy and the guard did not start it", id(4))),
            "{}",
            wait.reason
        );
        assert!(!wait.waiting);
    }

    #[test]
    fn the_recovering_tag_records_the_members_being_started() {
        let p = plan_for(&story(), &[("POLICY", "recover")]);
        assert_eq!(
            p.steps[0].action,
            Action::MarkRecovering { group: g_name(), started: vec![id(1), id(2)], since: None }
        );
    }

    #[test]
    fn an_instance_whose_root_device_type_is_unknown_is_not_started() {
        let mut s = story();
        s.instances.get_mut(&id(1)).unwrap().root_device = RootDevice::Unknown;
        let p = plan_for(&s, &[("POLICY", "restart")]);
        assert_eq!(starts(&p), [id(2)]);
        assert!(
            p.skipped.iter().any(|x| x.target == id(1).to_string() && x.reason.contains("root device type unknown"))
        );
    }

    #[test]
    fn a_step_that_failed_earlier_in_the_invocation_is_not_tried_again() {
        let s = story();
        let config = config_with(&[("POLICY", "restart")]).unwrap();
        let failed = vec![Action::StartInstance { instance: id(1), group: Some(g_name()) }];
        let p = plan(&found(&s, &[]), &s, &config, &Progress { started: vec![], failed }, now());
        assert_eq!(starts(&p), [id(2)]);
        assert!(p.skipped.iter().any(|x| x.target == id(1).to_string() && x.reason.contains("failed earlier")));
    }
}
