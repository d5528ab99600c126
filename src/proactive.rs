//! Proactive moves, pure: from the snapshot, the findings and the clock, the next step
//! of moving each group's retiring members to healthy hardware before the deadline
//! (stop and start), one member of a group at a time, inside a maintenance window.
//!
//! Every step is derived from AWS state (level-triggered): the group's
//! `retirement-guard:moving` tag names the member being moved, since when and how it
//! is held out of service; its lifecycle state, EC2 state and launch time say how far
//! the move got. A member is held out of service by Standby when the group's desired
//! capacity can drop by one (desired − 1 ≥ MinSize); otherwise by suspending
//! `HealthCheck` and `ReplaceUnhealthy` (those the guard suspends are recorded and
//! resumed), so the group never launches a replacement either way.

use crate::config::{Config, HEALTH_ALARM_TAG, Mode, POLICY_TAG, PROACTIVE_TAG};
use crate::domain::{Alarm, AsgName, GroupSnapshot, InstanceId, InstanceState, RootDevice, Snapshot};
use crate::findings::Finding;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;

/// The tag the guard puts on a group while it moves one of its members.
pub const MOVING_TAG: &str = "retirement-guard:moving";

/// The tag the guard leaves on a group when a member's move is done: `<back-at> <instance>`.
pub const MOVED_TAG: &str = "retirement-guard:moved";

/// The processes the guard suspends to hold a member when Standby is not possible.
pub const HOLD_PROCESSES: [&str; 2] = ["HealthCheck", "ReplaceUnhealthy"];

/// Event codes a stop and start clears: the instance is moved to healthy hardware.
pub const MOVABLE: [&str; 6] = [
    "instance-retirement",
    "instance-stop",
    "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
    "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED",
    "AWS_EC2_INSTANCE_STOP_SCHEDULED",
    "AWS_EC2_INSTANCE_RETIREMENT_EXPEDITED",
];

/// How the member being moved is kept out of service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Hold {
    /// EnterStandby, decrementing desired capacity (ExitStandby adds it back).
    Standby,
    /// These processes, suspended by the guard for the move and resumed after it.
    Suspended { processes: Vec<String> },
}

/// The moving tag's value: `<since> <instance> standby` or `<since> <instance> suspended:HealthCheck,ReplaceUnhealthy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MoveRecord {
    pub since: DateTime<Utc>,
    pub instance: InstanceId,
    pub hold: Hold,
}

impl MoveRecord {
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split_whitespace();
        let since = parts.next()?.parse().ok()?;
        let instance = InstanceId::parse(parts.next()?)?;
        let hold = match parts.next()? {
            "standby" => Hold::Standby,
            other => {
                let list = other.strip_prefix("suspended:")?;
                Hold::Suspended { processes: list.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect() }
            }
        };
        Some(Self { since, instance, hold })
    }

    pub fn render(&self) -> String {
        let hold = match &self.hold {
            Hold::Standby => "standby".to_owned(),
            Hold::Suspended { processes } => format!("suspended:{}", processes.join(",")),
        };
        format!("{} {} {hold}", self.since.to_rfc3339_opts(SecondsFormat::Secs, true), self.instance)
    }
}

/// One step of a move, in the order a move takes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum MoveStep {
    /// Write the moving tag (before anything it records).
    Begin {
        record: String,
    },
    EnterStandby,
    Suspend {
        processes: Vec<String>,
    },
    Stop,
    Start,
    ExitStandby,
    MarkHealthy,
    Resume {
        processes: Vec<String>,
    },
    /// Remove the moving tag: the member is back in service on new hardware.
    Finish,
}

/// What happens to a group's retiring members now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// This step, now.
    Step { instance: InstanceId, step: MoveStep },
    /// Nothing now; the move (or its next step) waits, until `until` when that is known.
    Wait {
        instance: InstanceId,
        why: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<DateTime<Utc>>,
    },
    /// The guard will not move it: a person must (the notice gives the commands).
    Manual { instance: InstanceId, why: String },
}

/// The plan for one group: its retiring members in the order they would move, and the decision now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupMoves {
    pub group: AsgName,
    /// Members to move, earliest deadline first, with their deadlines.
    pub order: Vec<(InstanceId, DateTime<Utc>)>,
    /// The alarm that gates each step (the group's tag, else HEALTH_ALARM).
    pub alarm: Option<String>,
    /// What happens now; none when every retiring member is left to a person.
    pub decision: Option<Decision>,
    /// Retiring members the guard will not move, and why (a person must).
    pub manual: Vec<Decision>,
}

/// A retiring member a move can help: EBS root, a movable event, its deadline ahead.
struct Candidate<'a> {
    instance: &'a InstanceId,
    deadline: DateTime<Utc>,
    root: RootDevice,
}

/// The next step of every group with a move under way or a member to move.
pub fn plan(snapshot: &Snapshot, findings: &[Finding], config: &Config, now: DateTime<Utc>) -> Vec<GroupMoves> {
    if !config.proactive.enabled {
        return vec![];
    }
    snapshot.groups.values().filter_map(|g| group_plan(snapshot, g, findings, config, now)).collect()
}

fn group_plan(
    snapshot: &Snapshot,
    g: &GroupSnapshot,
    findings: &[Finding],
    config: &Config,
    now: DateTime<Utc>,
) -> Option<GroupMoves> {
    let mut candidates = candidates(g, findings, now);
    candidates.sort_by_key(|c| (c.deadline, c.instance.clone()));
    let record = g.tags.get(MOVING_TAG).and_then(|v| MoveRecord::parse(v));
    if record.is_none() && (candidates.is_empty() || !takes_part(g, config)) {
        return None;
    }
    let alarm = g.tags.get(HEALTH_ALARM_TAG).cloned().or_else(|| config.proactive.health_alarm.clone());
    let (manual, movable): (Vec<_>, Vec<_>) =
        candidates.iter().map(|c| (c, unmovable(c, config, now))).partition(|(_, why)| why.is_some());
    let manual = manual
        .into_iter()
        .filter_map(|(c, why)| Some(Decision::Manual { instance: c.instance.clone(), why: why? }))
        .collect();
    let decision = match &record {
        Some(r) => Some(continue_move(snapshot, g, r)),
        None => movable.first().map(|(c, _)| first_step(snapshot, g, c, alarm.as_deref(), config, now)),
    };
    let order = movable.iter().map(|(c, _)| (c.instance.clone(), c.deadline)).collect();
    Some(GroupMoves { group: g.name.clone(), order, alarm, decision, manual })
}

/// Why the guard will not move this member at all: its root device, or no window
/// before its deadline less the margin.
fn unmovable(c: &Candidate<'_>, config: &Config, now: DateTime<Utc>) -> Option<String> {
    if c.root != RootDevice::Ebs {
        return Some("its root device is instance store: a stop would lose its data, so it is never moved".into());
    }
    let p = &config.proactive;
    let latest = c.deadline - Duration::hours(p.margin_hours as i64);
    if now > latest {
        return Some(format!(
            "its deadline {} is less than PROACTIVE_MARGIN_HOURS={} away",
            when(c.deadline),
            p.margin_hours
        ));
    }
    let Some(windows) = &p.windows else { return Some("no MAINTENANCE_WINDOW is set".into()) };
    (windows.next(now).opens > latest).then(|| {
        format!(
            "no maintenance window ({windows}) opens before {}, {}h before its deadline",
            when(latest),
            p.margin_hours
        )
    })
}

/// Whether the group's tags let the guard move its members: not opted out, opted in
/// when `OPT_IN_TAG` is set, and no policy tag below recover.
fn takes_part(g: &GroupSnapshot, config: &Config) -> bool {
    let tag = |k: &str| g.tags.get(k).map(String::as_str);
    tag(PROACTIVE_TAG) != Some("false")
        && config.opt_in_tag.as_deref().is_none_or(|k| tag(k) == Some("true"))
        && tag(POLICY_TAG).is_none_or(|v| v.parse::<Mode>().is_ok_and(|m| m == Mode::Recover))
}

fn candidates<'f>(g: &GroupSnapshot, findings: &'f [Finding], now: DateTime<Utc>) -> Vec<Candidate<'f>> {
    findings
        .iter()
        .filter_map(|f| match f {
            Finding::RetirementScheduled { instance, code, deadline: Some(d), root_device, .. }
                if MOVABLE.contains(&code.as_str()) && *d > now && g.members.iter().any(|m| &m.id == instance) =>
            {
                Some(Candidate { instance, deadline: *d, root: *root_device })
            }
            _ => None,
        })
        .collect()
}

/// The first step of a new move of a movable member, or why it waits or is left to a person.
fn first_step(
    snapshot: &Snapshot,
    g: &GroupSnapshot,
    c: &Candidate<'_>,
    alarm: Option<&str>,
    config: &Config,
    now: DateTime<Utc>,
) -> Decision {
    let instance = c.instance.clone();
    let manual = |why: String| Decision::Manual { instance: c.instance.clone(), why };
    let Some(windows) = &config.proactive.windows else { return manual("no MAINTENANCE_WINDOW is set".into()) };
    let opening = windows.next(now);
    if opening.opens > now {
        let why = format!("the maintenance window ({windows}) is closed; it opens {}", when(opening.opens));
        return Decision::Wait { instance, why, until: Some(opening.opens) };
    }
    let Some(alarm) = alarm else {
        let why = format!(
            "no health alarm is named (tag {HEALTH_ALARM_TAG} or HEALTH_ALARM): the guard moves no member of a group whose health it cannot see"
        );
        return manual(why);
    };
    if let Some(why) = not_at_full_strength(snapshot, g) {
        return Decision::Wait { instance, why, until: None };
    }
    let settle = Duration::minutes(config.proactive.settle_minutes as i64);
    if let Err((why, until)) = gate(snapshot.alarms.get(alarm), alarm, settle, moved_back(g, now), now) {
        return Decision::Wait { instance, why, until };
    }
    // desired − 1 ≥ MinSize: EnterStandby may decrement desired capacity.
    let hold = if g.desired > g.min_size {
        Hold::Standby
    } else {
        let processes = HOLD_PROCESSES.iter().filter(|p| !g.is_suspended(p)).map(|p| (*p).to_owned()).collect();
        Hold::Suspended { processes }
    };
    let record = MoveRecord { since: now, instance: instance.clone(), hold };
    Decision::Step { instance, step: MoveStep::Begin { record: record.render() } }
}

/// When the group's last moved member came back (its `MOVED_TAG`); a time to come
/// is not one (a tag anyone can write is not trusted further than that).
fn moved_back(g: &GroupSnapshot, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    g.tags.get(MOVED_TAG)?.split_whitespace().next()?.parse().ok().filter(|t| *t <= now)
}

/// The health gate: open when the alarm exists, is `OK`, and has stayed OK for
/// `settle`, counted from the later of its last state change and `back` (when the
/// previous member came back). Closed: why, and when it opens if nothing changes.
/// `read` is the snapshot's entry for the alarm: absent when it could not be read,
/// `None` when it does not exist.
pub fn gate(
    read: Option<&Option<Alarm>>,
    name: &str,
    settle: Duration,
    back: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), (String, Option<DateTime<Utc>>)> {
    let alarm = match read {
        None => return Err((format!("health alarm {name} could not be read (DescribeAlarms)"), None)),
        Some(None) => {
            return Err((
                format!("health alarm {name} does not exist (no metric or composite alarm of that name)"),
                None,
            ));
        }
        Some(Some(a)) => a,
    };
    let Some(since) = alarm.since else {
        return Err((format!("health alarm {name} is {} with no time of its last change", alarm.state), None));
    };
    if alarm.state != "OK" {
        return Err((format!("health alarm {name} is {} since {}", alarm.state, when(since)), None));
    }
    let from = back.map_or(since, |b| b.max(since)).min(now);
    if now - from < settle {
        let why = format!(
            "health alarm {name} is OK, but only since {}: HEALTH_SETTLE_MINUTES={} are counted from the later of its last change and the previous member's return",
            when(from),
            settle.num_minutes()
        );
        return Err((why, Some(from + settle)));
    }
    Ok(())
}

/// Why the group cannot spare a member now: one is not in service, not healthy, not
/// running with its checks passed, or the group is below its desired capacity.
fn not_at_full_strength(snapshot: &Snapshot, g: &GroupSnapshot) -> Option<String> {
    for m in &g.members {
        if m.lifecycle_state != "InService" {
            return Some(format!(
                "{} is {}: only one member of a group is out of service at a time",
                m.id, m.lifecycle_state
            ));
        }
        if !snapshot.ready(Some(g), &m.id) {
            return Some(format!("{} is not running, healthy and passing its status checks", m.id));
        }
    }
    let in_service = g.members.len() as i32;
    (in_service < g.desired).then(|| format!("the group has {in_service} members in service of {} desired", g.desired))
}

/// The next step of the move the tag records.
fn continue_move(snapshot: &Snapshot, g: &GroupSnapshot, r: &MoveRecord) -> Decision {
    let instance = r.instance.clone();
    let wait = |why: String| Decision::Wait { instance: r.instance.clone(), why, until: None };
    let step = |step: MoveStep| Decision::Step { instance: r.instance.clone(), step };
    let member = g.members.iter().find(|m| m.id == r.instance);
    let inst = snapshot.instances.get(&r.instance);
    let (Some(member), Some(inst)) = (member, inst) else {
        // Gone from the group (terminated, detached): nothing left to move.
        return match held_by_guard(g, r) {
            Some(processes) => step(MoveStep::Resume { processes }),
            None => step(MoveStep::Finish),
        };
    };
    let restarted = inst.launched_at.is_some_and(|t| t > r.since);
    let booted = snapshot.ready(None, &instance);
    match (&r.hold, member.lifecycle_state.as_str(), inst.state) {
        (Hold::Standby, "InService", _) if restarted => step(MoveStep::Finish),
        (Hold::Standby, "InService", _) => step(MoveStep::EnterStandby),
        (Hold::Standby, "Standby", InstanceState::Running) if restarted && booted => step(MoveStep::ExitStandby),
        (Hold::Suspended { processes }, _, _) if !restarted && processes.iter().any(|p| !g.is_suspended(p)) => {
            step(MoveStep::Suspend { processes: processes.iter().filter(|p| !g.is_suspended(p)).cloned().collect() })
        }
        (Hold::Suspended { .. }, "InService", InstanceState::Running) if restarted && booted => {
            if member.health_status != "Healthy" {
                step(MoveStep::MarkHealthy)
            } else {
                held_by_guard(g, r).map_or(step(MoveStep::Finish), |processes| step(MoveStep::Resume { processes }))
            }
        }
        (_, "Standby" | "InService", InstanceState::Running) if !restarted => step(MoveStep::Stop),
        (_, "Standby" | "InService", InstanceState::Stopped) => step(MoveStep::Start),
        (_, "Standby" | "InService", InstanceState::Running | InstanceState::Pending | InstanceState::Stopping) => {
            wait(format!("{instance} is {}{}", inst.state, if restarted { ", booting on new hardware" } else { "" }))
        }
        (_, lifecycle @ ("EnteringStandby" | "ExitingStandby" | "Pending" | "Pending:Wait" | "Pending:Proceed"), _) => {
            wait(format!("{instance} is {lifecycle}"))
        }
        (_, lifecycle, state) => Decision::Manual {
            instance: instance.clone(),
            why: format!("{instance} is {lifecycle} and {state}, which no step of a move leads to: a person must look"),
        },
    }
}

/// The processes the guard suspended for this move that are still suspended.
fn held_by_guard(g: &GroupSnapshot, r: &MoveRecord) -> Option<Vec<String>> {
    let Hold::Suspended { processes } = &r.hold else { return None };
    let still: Vec<String> = processes.iter().filter(|p| g.is_suspended(p)).cloned().collect();
    (!still.is_empty()).then_some(still)
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%a %Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests;
