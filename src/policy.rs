//! Policy stage (pure): findings + snapshot + `Config` + tags → a `Plan` of
//! steps in the safe remediation order, each with its reason, and every step not
//! taken with the reason why. Tags may only narrow what the stack's POLICY allows.

use crate::config::{Config, Mode, POLICY_TAG};
use crate::domain::{
    AsgName, GroupSnapshot, InstanceId, InstanceSnapshot, InstanceState, RootDevice, Snapshot, StopCause, Suspender,
};
use crate::findings::Finding;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Tag the guard puts on a group while it is repairing it, so that a later
/// invocation knows the suspended processes may be resumed once all is healthy.
pub const RECOVERING_TAG: &str = "retirement-guard:recovering";

/// A write the guard may make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Tag the group as being repaired by the guard (before its instances are started).
    MarkRecovering {
        group: AsgName,
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
            Self::MarkRecovering { group }
            | Self::SetInstanceHealthy { group, .. }
            | Self::ResumeProcesses { group, .. }
            | Self::ClearRecovering { group } => Some(group),
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
}

/// Something the guard did not do, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skip {
    /// `start_instance`, `set_instance_healthy`, `resume_processes` or `any`.
    pub action: &'static str,
    pub target: String,
    pub reason: String,
    /// True when a later invocation (or round) may do it once AWS state moves on.
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

struct Planner<'a> {
    config: &'a Config,
    snapshot: &'a Snapshot,
    /// Groups whose instances this invocation already started (even if tagging them failed).
    started_here: &'a BTreeSet<AsgName>,
    plan: Plan,
    started: usize,
}

/// Computes the plan for the current state. `started_here`: groups whose instances an
/// earlier round of this invocation started.
pub fn plan(findings: &[Finding], snapshot: &Snapshot, config: &Config, started_here: &BTreeSet<AsgName>) -> Plan {
    let mut p = Planner { config, snapshot, started_here, plan: Plan::default(), started: 0 };

    // Groups with anything to do, in name order so bounds apply deterministically.
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
    for name in groups {
        if let Some(group) = snapshot.groups.get(name) {
            p.group(group, stranded.get(name).map(Vec::as_slice).unwrap_or_default());
        }
    }
    for f in findings {
        if let Finding::StoppedStandalone { instance, .. } = f
            && let Some(inst) = snapshot.instances.get(instance)
        {
            let mode = p.mode_for(&inst.id.to_string(), &inst.tags, config.mode, false);
            if mode >= Mode::Restart {
                p.start(inst, None, &mut 0);
            } else if mode == Mode::Notify {
                p.skip(
                    "start_instance",
                    inst.id.to_string(),
                    format!("policy is notify (POLICY={})", config.mode),
                    false,
                );
            }
        }
    }
    p.plan
}

impl Planner<'_> {
    /// The effective mode: the stack's POLICY, narrowed by the override tag and the opt-in tag.
    /// Members of a group inherit the group's opt-in (`opt_in_checked`).
    fn mode_for(&mut self, target: &str, tags: &BTreeMap<String, String>, ceiling: Mode, opt_in_checked: bool) -> Mode {
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
            && !opt_in_checked
            && mode > Mode::Notify
            && tags.get(opt_in).map(String::as_str) != Some("true")
        {
            self.skip("any", target.into(), format!("opt-in tag {opt_in}=true is missing: notify only"), false);
            mode = Mode::Notify;
        }
        mode
    }

    fn skip(&mut self, action: &'static str, target: String, reason: String, waiting: bool) {
        self.plan.skipped.push(Skip { action, target, reason, waiting });
    }

    fn step(&mut self, action: Action, reason: String) {
        self.plan.steps.push(Step { action, reason });
    }

    fn group(&mut self, group: &GroupSnapshot, stranded: &[&InstanceId]) {
        let gname = group.name.to_string();
        let mode = self.mode_for(&gname, &group.tags, self.config.mode, false);
        if mode == Mode::Ignore {
            return;
        }
        if mode == Mode::Notify && !stranded.is_empty() {
            self.skip(
                "start_instance",
                gname.clone(),
                format!("policy is notify for this group (POLICY={})", self.config.mode),
                false,
            );
        }

        // 1. Start the stranded instances.
        let starts_before = self.plan.steps.len();
        let mut in_group = 0;
        if mode >= Mode::Restart {
            for id in stranded {
                let Some(inst) = self.snapshot.instances.get(*id) else { continue };
                let imode = self.mode_for(&inst.id.to_string(), &inst.tags, mode, true);
                if imode >= Mode::Restart {
                    self.start(inst, Some(group), &mut in_group);
                }
            }
        }
        let starting = self.plan.steps.len() > starts_before;
        let recovering = starting || group.tags.contains_key(RECOVERING_TAG) || self.started_here.contains(&group.name);
        if starting && mode == Mode::Recover && !group.tags.contains_key(RECOVERING_TAG) {
            let mark = Step {
                action: Action::MarkRecovering { group: group.name.clone() },
                reason: format!(
                    "record on the group ({RECOVERING_TAG}) that the guard is restarting its instances, so a later invocation may finish the recovery"
                ),
            };
            self.plan.steps.insert(starts_before, mark);
        }
        if mode < Mode::Recover {
            if mode == Mode::Restart && !group.suspended.is_empty() {
                self.skip("resume_processes", gname, "policy is restart: processes stay suspended".into(), false);
            }
            return;
        }
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

        // 2. Mark restarted members healthy while Terminate/ReplaceUnhealthy are still suspended.
        let replacement_held = group.is_suspended("Terminate") || group.is_suspended("ReplaceUnhealthy");
        let mut not_ready = Vec::new();
        let mut healthy_soon = BTreeSet::new();
        for m in &group.members {
            let inst = self.snapshot.instances.get(&m.id);
            let state = inst.map(|i| i.state).unwrap_or(InstanceState::Unknown);
            let checks_ok = inst.and_then(|i| i.status.as_ref()).is_some_and(|s| s.ok());
            if state != InstanceState::Running || !checks_ok {
                let checks = inst
                    .and_then(|i| i.status.as_ref())
                    .map(|s| format!(", status checks {}/{}", s.instance, s.system));
                not_ready.push(format!("{} is {state}{}", m.id, checks.unwrap_or_default()));
                continue;
            }
            if m.health_status != "Healthy" {
                if replacement_held {
                    healthy_soon.insert(&m.id);
                    self.step(
                        Action::SetInstanceHealthy { instance: m.id.clone(), group: group.name.clone() },
                        "running with status checks OK but marked Unhealthy: set Healthy while Terminate/ReplaceUnhealthy are suspended, or resuming would replace it".into(),
                    );
                } else {
                    not_ready.push(format!("{} is {} (the group will replace it)", m.id, m.health_status));
                }
            }
            if m.lifecycle_state != "InService" && m.lifecycle_state != "Standby" {
                not_ready.push(format!("{} is {}", m.id, m.lifecycle_state));
            }
        }

        // 3. Resume the processes the guard owns, only when every member is running and healthy.
        let mut owned = Vec::new();
        for p in &group.suspended {
            if self.config.never_resume.contains(&p.name) {
                self.skip(
                    "resume_processes",
                    format!("{gname}/{}", p.name),
                    "listed in NEVER_RESUME_PROCESSES".into(),
                    false,
                );
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
        if starting {
            self.skip(
                "resume_processes",
                gname,
                "waiting for the started instances to run and pass status checks".into(),
                true,
            );
        } else if !not_ready.is_empty() {
            self.skip("resume_processes", gname, format!("waiting: {}", not_ready.join("; ")), true);
        } else if !owned.is_empty() {
            let healthy = if healthy_soon.is_empty() { "" } else { " (after marking restarted members Healthy)" };
            self.step(
                Action::ResumeProcesses { group: group.name.clone(), processes: owned },
                format!("every member is running and healthy{healthy}; these processes were not suspended by a person"),
            );
            if group.tags.contains_key(RECOVERING_TAG) {
                self.step(Action::ClearRecovering { group: group.name.clone() }, "recovery complete".into());
            }
        } else if group.tags.contains_key(RECOVERING_TAG) {
            self.step(
                Action::ClearRecovering { group: group.name.clone() },
                "every member is running and healthy; nothing left to resume".into(),
            );
        }
    }

    /// Plans a start for a stopped instance, or says why not.
    fn start(&mut self, inst: &InstanceSnapshot, group: Option<&GroupSnapshot>, in_group: &mut usize) {
        let target = inst.id.to_string();
        let cause = inst.stop_cause();
        let member = group.and_then(|g| g.members.iter().find(|m| m.id == inst.id));
        let refusal = if inst.state == InstanceState::Stopping {
            Some(("still stopping; it can be started once stopped".to_owned(), true))
        } else if inst.state != InstanceState::Stopped {
            Some((format!("is {}, not stopped", inst.state), false))
        } else if inst.root_device == RootDevice::InstanceStore {
            Some(("instance-store root device: it cannot be started".into(), false))
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
        } else if self.started >= self.config.max_starts {
            Some((
                format!("MAX_STARTS_PER_INVOCATION={} reached; the next invocation continues", self.config.max_starts),
                true,
            ))
        } else if group.is_some() && *in_group >= self.config.max_starts_per_group {
            Some((
                format!(
                    "MAX_STARTS_PER_GROUP={} reached; the next invocation continues",
                    self.config.max_starts_per_group
                ),
                true,
            ))
        } else {
            None
        };
        match refusal {
            Some((reason, waiting)) => self.skip("start_instance", target, reason, waiting),
            None => {
                self.started += 1;
                *in_group += 1;
                let why = match group {
                    Some(g) => format!(
                        "{} while {} suspended in {}",
                        cause.describe(),
                        g.blocking_replacement().join(", "),
                        g.name
                    ),
                    None => format!("{} and in no Auto Scaling group", cause.describe()),
                };
                self.step(
                    Action::StartInstance { instance: inst.id.clone(), group: group.map(|g| g.name.clone()) },
                    why,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::config_with;
    use crate::domain::{StatusChecks, SuspendedProcess};
    use crate::findings::assess;
    use crate::findings::tests::{id, instance, story};

    fn plan_for(s: &Snapshot, env: &[(&str, &str)]) -> Plan {
        plan(&assess(s, &[]), s, &config_with(env).unwrap(), &BTreeSet::new())
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

    #[test]
    fn after_restart_unhealthy_members_are_marked_healthy_then_processes_resumed() {
        let mut s = story();
        for i in s.instances.values_mut() {
            i.state = InstanceState::Running;
            i.status = Some(StatusChecks { instance: "ok".into(), system: "ok".into() });
        }
        let g = es(&mut s);
        g.tags.insert(RECOVERING_TAG.into(), "2026-11-28T00:00:00Z".into());
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
            wait.waiting && wait.reason.contains("status checks initializing/ok") && wait.reason.contains("is pending"),
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
        assert!(p.skipped.iter().any(|x| x.reason.contains("MAX_STARTS_PER_INVOCATION=1") && x.waiting));
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
        assert!(p.visible(&assess(&s, &[])).is_empty());
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
        assert_eq!(plan_for(&s, &env).steps.len(), 3);
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
}
