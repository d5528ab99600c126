//! Findings stage (pure): a `Snapshot` of AWS state, plus the retirements an
//! AWS Health event announced, → the list of problems worth telling a human.

use crate::domain::{
    AsgName, GroupSnapshot, InstanceId, InstanceState, RootDevice, Snapshot, StatusChecks, StopCause, Suspender, Unread,
};
use crate::intake::HealthEvent;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// How loud a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Resolved, or nothing will be lost: e.g. a retirement its group will replace.
    Info,
    /// Needs a look, not now: processes suspended with nothing stranded, a retirement
    /// further out than a day, a repair in progress, an announcement not inspected.
    Warning,
    /// A retirement within a day with no safe automatic outcome.
    High,
    /// Down now and nothing brings it back: a stranded member, an instance stopped by
    /// AWS outside any group, a failed or stalled repair.
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// An announced retirement or maintenance event for one instance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Retirement {
    pub instance: InstanceId,
    pub code: String,
    pub deadline: Option<DateTime<Utc>>,
    /// `health` or `ec2-status` (DescribeInstanceStatus scheduled events).
    pub source: &'static str,
    /// When AWS announced it (a Health event's time), if known.
    pub announced_at: Option<DateTime<Utc>>,
}

/// How close a deadline must be for a retirement with no safe outcome to be `High`,
/// and from when such a retirement escalates through the tiers.
pub const IMMINENT: Duration = Duration::hours(24);

/// What AWS's retirement will do to an instance at the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outlook {
    /// Stopped or terminated, and its group replaces it (nothing it needs is suspended).
    Replaced,
    /// Stopped (EBS root) and left stopped: in no group, or its group cannot replace it.
    StaysStopped,
    /// Terminated (instance-store root, its local data is lost) and not replaced.
    Lost,
}

/// A suspended process and who suspended it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClassifiedProcess {
    pub name: String,
    pub reason: String,
    pub by: Suspender,
}

/// One problem found.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum Finding {
    /// An upcoming retirement, stop or maintenance event.
    RetirementScheduled {
        instance: InstanceId,
        group: Option<AsgName>,
        code: String,
        deadline: Option<DateTime<Utc>>,
        root_device: RootDevice,
        source: &'static str,
        /// What happens at the deadline, given the root device and the group's suspensions.
        outlook: Outlook,
        /// The group's suspended processes that keep it from replacing the instance.
        blocking: Vec<String>,
        /// The deadline is within `IMMINENT` of the assessment (or has passed).
        imminent: bool,
    },
    /// A group member that is not running while the processes that would replace it are suspended.
    StrandedInstance {
        instance: InstanceId,
        group: AsgName,
        state: InstanceState,
        cause: StopCause,
        since: Option<DateTime<Utc>>,
        blocking: Vec<String>,
        root_device: RootDevice,
    },
    /// A group with suspended processes.
    SuspendedProcesses { group: AsgName, processes: Vec<ClassifiedProcess>, stranded: usize, members: usize },
    /// An instance outside any group that AWS stopped.
    StoppedStandalone { instance: InstanceId, cause: StopCause, since: Option<DateTime<Utc>> },
    /// An instance that cannot be brought back by starting it.
    Unrecoverable { instance: InstanceId, group: Option<AsgName>, why: String },
    /// A group the guard is repairing (its recovering tag) whose repair is not finished.
    RecoveryInProgress { group: AsgName, since: Option<DateTime<Utc>>, waiting_for: Vec<String> },
    /// A member the guard started that does not pass its status checks: the group stays suspended.
    RecoveryStalled { group: AsgName, instance: InstanceId, why: String },
    /// An announced retirement the guard cannot look at (another account, not found,
    /// or an entity that is not an instance): told as it was announced.
    NotInspected {
        subject: String,
        account: Option<String>,
        code: String,
        deadline: Option<DateTime<Utc>>,
        why: String,
    },
    /// A sweep that could not read everything (after the SDK's retries): what it
    /// could not read, and the stopped group members whose group it could not read.
    ReadIncomplete { parts: Vec<Unread>, unchecked: Vec<InstanceId> },
}

impl Finding {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RetirementScheduled { .. } => "RetirementScheduled",
            Self::StrandedInstance { .. } => "StrandedInstance",
            Self::SuspendedProcesses { .. } => "SuspendedProcesses",
            Self::StoppedStandalone { .. } => "StoppedStandalone",
            Self::Unrecoverable { .. } => "Unrecoverable",
            Self::RecoveryInProgress { .. } => "RecoveryInProgress",
            Self::RecoveryStalled { .. } => "RecoveryStalled",
            Self::NotInspected { .. } => "NotInspected",
            Self::ReadIncomplete { .. } => "ReadIncomplete",
        }
    }

    pub fn severity(&self) -> Severity {
        match self {
            Self::StrandedInstance { .. }
            | Self::StoppedStandalone { .. }
            | Self::Unrecoverable { .. }
            | Self::RecoveryStalled { .. } => Severity::Critical,
            Self::RetirementScheduled { outlook: Outlook::Replaced, .. } => Severity::Info,
            Self::RetirementScheduled { imminent: true, .. } => Severity::High,
            Self::RetirementScheduled { .. }
            | Self::RecoveryInProgress { .. }
            | Self::NotInspected { .. }
            | Self::SuspendedProcesses { .. } => Severity::Warning,
            Self::ReadIncomplete { unchecked, .. } if !unchecked.is_empty() => Severity::Critical,
            Self::ReadIncomplete { .. } => Severity::Warning,
        }
    }

    pub fn group(&self) -> Option<&AsgName> {
        match self {
            Self::RetirementScheduled { group, .. } | Self::Unrecoverable { group, .. } => group.as_ref(),
            Self::StrandedInstance { group, .. }
            | Self::SuspendedProcesses { group, .. }
            | Self::RecoveryInProgress { group, .. }
            | Self::RecoveryStalled { group, .. } => Some(group),
            Self::StoppedStandalone { .. } | Self::NotInspected { .. } | Self::ReadIncomplete { .. } => None,
        }
    }

    pub fn instance(&self) -> Option<&InstanceId> {
        match self {
            Self::RetirementScheduled { instance, .. }
            | Self::StrandedInstance { instance, .. }
            | Self::StoppedStandalone { instance, .. }
            | Self::Unrecoverable { instance, .. }
            | Self::RecoveryStalled { instance, .. } => Some(instance),
            Self::SuspendedProcesses { .. }
            | Self::RecoveryInProgress { .. }
            | Self::NotInspected { .. }
            | Self::ReadIncomplete { .. } => None,
        }
    }
}

/// Assesses a snapshot at `now`. `announced` are retirements named by the triggering
/// event; scheduled events found on the instances themselves are added. A member the
/// guard started that has not passed its checks `stall_after` its start has stalled.
pub fn assess(
    snapshot: &Snapshot,
    announced: &[Retirement],
    now: DateTime<Utc>,
    stall_after: Duration,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    if !snapshot.unread.is_empty() {
        findings.push(read_incomplete(snapshot));
    }

    for group in snapshot.groups.values() {
        findings.extend(recovery(snapshot, group, now, stall_after));
        let blocking = group.blocking_replacement();
        let mut stranded = 0;
        if !blocking.is_empty() {
            for member in &group.members {
                let Some(inst) = snapshot.instances.get(&member.id) else { continue };
                match inst.state {
                    InstanceState::Stopped | InstanceState::Stopping => {
                        stranded += 1;
                        findings.push(Finding::StrandedInstance {
                            instance: inst.id.clone(),
                            group: group.name.clone(),
                            state: inst.state,
                            cause: inst.stop_cause(),
                            since: inst.since(),
                            blocking: blocking.clone(),
                            root_device: inst.root_device,
                        });
                    }
                    InstanceState::ShuttingDown | InstanceState::Terminated => findings.push(Finding::Unrecoverable {
                        instance: inst.id.clone(),
                        group: Some(group.name.clone()),
                        why: format!(
                            "{}: the group cannot replace it while {} suspended",
                            inst.state,
                            blocking.join(", ")
                        ),
                    }),
                    _ => {}
                }
            }
        }
        if !group.suspended.is_empty() {
            let processes = group
                .suspended
                .iter()
                .map(|p| ClassifiedProcess { name: p.name.clone(), reason: p.reason.clone(), by: p.suspender() })
                .collect();
            let members = group.members.len();
            findings.push(Finding::SuspendedProcesses { group: group.name.clone(), processes, stranded, members });
        }
    }

    for inst in snapshot.instances.values() {
        if snapshot.group_of(&inst.id).is_some() || inst.group_tag().is_some() {
            continue;
        }
        if inst.state == InstanceState::Stopped && inst.stop_cause() == StopCause::Retirement {
            findings.push(Finding::StoppedStandalone {
                instance: inst.id.clone(),
                cause: inst.stop_cause(),
                since: inst.since(),
            });
        }
    }

    let scheduled = snapshot.instances.values().flat_map(|inst| {
        inst.scheduled_events
            .iter()
            .filter(|e| !e.description.starts_with("[Completed]") && !e.description.starts_with("[Canceled]"))
            .map(|e| Retirement {
                instance: inst.id.clone(),
                code: e.code.clone(),
                deadline: e.not_before,
                source: "ec2-status",
                announced_at: None,
            })
    });
    let mut seen = std::collections::BTreeSet::new();
    for r in announced.iter().cloned().chain(scheduled) {
        if !seen.insert(r.instance.clone()) {
            continue;
        }
        let Some(inst) = snapshot.instances.get(&r.instance) else { continue };
        // Started again since AWS announced it: the instance is on new hardware, and a
        // late or repeated delivery of the announcement no longer applies.
        if r.announced_at.zip(inst.launched_at).is_some_and(|(announced, started)| started > announced) {
            continue;
        }
        let group = snapshot.group_of(&inst.id).map(|g| g.name.clone()).or_else(|| inst.group_tag());
        match inst.state {
            InstanceState::Running | InstanceState::Pending => {
                let blocking = snapshot.group_of(&inst.id).map(|g| g.blocking_replacement()).unwrap_or_default();
                findings.push(Finding::RetirementScheduled {
                    outlook: outlook(inst.root_device, group.is_some(), &blocking),
                    imminent: r.deadline.is_some_and(|d| d - now <= IMMINENT),
                    blocking,
                    instance: inst.id.clone(),
                    group,
                    code: r.code,
                    deadline: r.deadline,
                    root_device: inst.root_device,
                    source: r.source,
                });
            }
            InstanceState::Terminated | InstanceState::ShuttingDown if group.is_none() => {
                findings.push(Finding::Unrecoverable {
                    instance: inst.id.clone(),
                    group: None,
                    why: format!("{} before its {} event", inst.state, r.code),
                });
            }
            // Stopped instances are covered by the stranded/standalone findings above.
            _ => {}
        }
    }
    findings
}

/// What a sweep could not read, with the stopped instances that name a group (their
/// `aws:autoscaling:groupName` tag) the snapshot does not hold: possibly stranded, unchecked.
fn read_incomplete(snapshot: &Snapshot) -> Finding {
    let unchecked = snapshot
        .instances
        .values()
        .filter(|i| matches!(i.state, InstanceState::Stopped | InstanceState::Stopping))
        .filter(|i| i.group_tag().is_some_and(|g| !snapshot.groups.contains_key(&g)))
        .map(|i| i.id.clone())
        .collect();
    Finding::ReadIncomplete { parts: snapshot.unread.clone(), unchecked }
}

/// The repair the guard recorded on a group, while it is not finished: a
/// `RecoveryInProgress`, plus a `RecoveryStalled` per started member that fails its
/// checks or has not passed them `stall_after` its start.
fn recovery(snapshot: &Snapshot, group: &GroupSnapshot, now: DateTime<Utc>, stall_after: Duration) -> Vec<Finding> {
    let Some(record) = group.recovery() else { return vec![] };
    let mut out = Vec::new();
    let mut waiting_for = Vec::new();
    for id in record.started.iter().filter(|id| group.members.iter().any(|m| &m.id == *id)) {
        let Some(inst) = snapshot.instances.get(id) else { continue };
        if snapshot.ready(Some(group), id) {
            continue;
        }
        let checks = inst.status.as_ref().map(|s| format!(", {}", s.shown()));
        waiting_for.push(format!("{id} ({}{})", inst.state, checks.unwrap_or_default()));
        let started = inst.launched_at.map(|t| format!(" (started {})", t.format("%Y-%m-%d %H:%M UTC")));
        let why = if inst.status.as_ref().is_some_and(StatusChecks::impaired) {
            Some("its status checks failed (impaired)".to_owned())
        } else if snapshot.booting(id) && inst.launched_at.is_some_and(|t| now - t >= stall_after) {
            Some(format!("not passing its status checks {} min after its start", stall_after.num_minutes()))
        } else {
            None
        };
        if let Some(why) = why {
            let why = format!("{why}{}", started.unwrap_or_default());
            out.push(Finding::RecoveryStalled { group: group.name.clone(), instance: id.clone(), why });
        }
    }
    if !waiting_for.is_empty() || !group.suspended.is_empty() {
        let since = DateTime::parse_from_rfc3339(&record.since).ok().map(|t| t.with_timezone(&Utc));
        out.insert(0, Finding::RecoveryInProgress { group: group.name.clone(), since, waiting_for });
    }
    out
}

/// Announced retirements the guard cannot inspect, told as announced: entities that
/// are no instance, instances in another account, instances not found here.
pub fn not_inspected(health: &HealthEvent, gone: &[InstanceId], own_account: &str) -> Vec<Finding> {
    let announced = |subject: String, account: Option<String>, why: String| Finding::NotInspected {
        subject,
        account,
        code: health.type_code.clone(),
        deadline: health.deadline,
        why,
    };
    let mut out: Vec<Finding> = health
        .unreadable
        .iter()
        .map(|e| announced(e.clone(), None, "the entity is not an EC2 instance id or instance ARN".into()))
        .collect();
    for (id, account) in &health.elsewhere {
        let why = format!("in account {account}; this guard reads and repairs account {own_account} only");
        out.push(announced(id.to_string(), Some(account.clone()), why));
    }
    for id in gone.iter().filter(|id| health.instances.contains(id)) {
        let why = format!("not found in account {own_account} (terminated, or in another account or region)");
        out.push(announced(id.to_string(), Some(own_account.to_owned()), why));
    }
    out
}

fn outlook(root: RootDevice, in_group: bool, blocking: &[String]) -> Outlook {
    match (in_group && blocking.is_empty(), root) {
        (true, _) => Outlook::Replaced,
        (false, RootDevice::InstanceStore) => Outlook::Lost,
        (false, _) => Outlook::StaysStopped,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::*;
    pub use crate::testing::{id, instance, now, story, three_groups};

    /// Findings at `now()`, with the default stall limit (15 minutes).
    pub fn found(s: &Snapshot, announced: &[Retirement]) -> Vec<Finding> {
        assess(s, announced, now(), Duration::minutes(15))
    }

    #[test]
    fn stopped_instance_in_suspended_group_is_stranded() {
        let f = found(&story(), &[]);
        let stranded: Vec<_> = f.iter().filter(|f| f.kind() == "StrandedInstance").collect();
        assert_eq!(stranded.len(), 2);
        match stranded[0] {
            Finding::StrandedInstance { cause, blocking, since, .. } => {
                assert_eq!(*cause, StopCause::Retirement);
                assert_eq!(blocking, &["Launch", "Terminate"]);
                assert!(since.is_some());
            }
            _ => unreachable!(),
        }
        assert!(f.iter().any(|f| matches!(f, Finding::SuspendedProcesses { stranded: 2, .. })));
        assert_eq!(f.iter().map(Finding::severity).max(), Some(Severity::Critical));
    }

    #[test]
    fn stopped_member_of_a_group_that_can_heal_is_not_stranded() {
        let mut s = story();
        s.groups.values_mut().next().unwrap().suspended =
            vec![SuspendedProcess { name: "AZRebalance".into(), reason: "".into() }];
        let f = found(&s, &[]);
        assert!(!f.iter().any(|f| f.kind() == "StrandedInstance"));
        assert!(matches!(f.as_slice(), [Finding::SuspendedProcesses { stranded: 0, .. }]));
        assert_eq!(f[0].severity(), Severity::Warning);
    }

    #[test]
    fn group_with_suspended_processes_and_no_stranded_instance_is_a_lower_finding() {
        let mut s = story();
        for inst in s.instances.values_mut() {
            inst.state = InstanceState::Running;
        }
        let f = found(&s, &[]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity(), Severity::Warning);
    }

    #[test]
    fn standalone_instance_stopped_by_aws_is_found_but_one_stopped_by_a_person_is_not() {
        let mut s = Snapshot::default();
        for inst in [
            instance(7, InstanceState::Stopped, Some("Server.ScheduledStop"), None),
            instance(8, InstanceState::Stopped, Some("Client.UserInitiatedShutdown"), None),
        ] {
            s.instances.insert(inst.id.clone(), inst);
        }
        let f = found(&s, &[]);
        assert_eq!(f.len(), 1);
        assert!(matches!(&f[0], Finding::StoppedStandalone { instance, .. } if *instance == id(7)));
    }

    #[test]
    fn announced_retirement_says_what_happens_at_the_deadline() {
        let mut s = story();
        s.instances.get_mut(&id(3)).unwrap().root_device = RootDevice::InstanceStore;
        let ann = [id(3), id(1)].map(|i| Retirement {
            instance: i,
            code: "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED".into(),
            deadline: None,
            source: "health",
            announced_at: None,
        });
        let f = found(&s, &ann);
        let r: Vec<_> = f.iter().filter(|f| f.kind() == "RetirementScheduled").collect();
        // id(1) is already stopped: the stranded finding covers it.
        assert_eq!(r.len(), 1);
        assert!(!f.iter().any(|f| f.kind() == "Unrecoverable"), "nothing is lost yet: {f:?}");
        match r[0] {
            Finding::RetirementScheduled { outlook, blocking, imminent, .. } => {
                assert_eq!(*outlook, Outlook::Lost);
                assert_eq!(blocking, &["Launch", "Terminate"]);
                assert!(!imminent, "no deadline given");
            }
            _ => unreachable!(),
        }
        assert_eq!(r[0].severity(), Severity::Warning);
    }

    #[test]
    fn a_retirement_is_rated_by_what_happens_at_its_deadline_and_how_close_it_is() {
        let rated = |root: RootDevice, suspended: &[(&str, &str)], in_hours: i64| {
            let mut s = story();
            s.groups.values_mut().next().unwrap().suspended =
                suspended.iter().map(|(n, r)| SuspendedProcess { name: (*n).into(), reason: (*r).into() }).collect();
            s.instances.get_mut(&id(3)).unwrap().root_device = root;
            let ann = Retirement {
                instance: id(3),
                code: "instance-retirement".into(),
                deadline: Some(now() + Duration::hours(in_hours)),
                source: "ec2-status",
                announced_at: None,
            };
            let f = found(&s, &[ann]);
            f.iter().find(|f| f.kind() == "RetirementScheduled").map(Finding::severity)
        };
        let blocked = [("Launch", ""), ("Terminate", "")];
        assert_eq!(rated(RootDevice::InstanceStore, &[], 3), Some(Severity::Info), "its group replaces it");
        assert_eq!(rated(RootDevice::Ebs, &[("AZRebalance", "")], 3), Some(Severity::Info));
        assert_eq!(rated(RootDevice::Ebs, &blocked, 14 * 24), Some(Severity::Warning), "two weeks out");
        assert_eq!(rated(RootDevice::Ebs, &blocked, 23), Some(Severity::High), "within a day, will stay down");
        assert_eq!(rated(RootDevice::InstanceStore, &blocked, 2), Some(Severity::High));
    }

    #[test]
    fn an_announcement_older_than_the_last_start_no_longer_applies() {
        let mut s = story();
        let t = |x: &str| Some(x.parse::<DateTime<Utc>>().unwrap());
        s.instances.get_mut(&id(3)).unwrap().launched_at = t("2026-11-28T12:00:00Z");
        let announced = |at: &str| Retirement {
            instance: id(3),
            code: "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED".into(),
            deadline: None,
            source: "health",
            announced_at: t(at),
        };
        let count = |a: Retirement| found(&s, &[a]).iter().filter(|f| f.kind() == "RetirementScheduled").count();
        assert_eq!(count(announced("2026-11-28T11:00:00Z")), 0, "restarted since: new hardware");
        assert_eq!(count(announced("2026-11-28T13:00:00Z")), 1, "announced after the last start");
    }

    #[test]
    fn completed_scheduled_events_are_ignored() {
        let mut s = story();
        s.instances.get_mut(&id(4)).unwrap().scheduled_events = vec![
            ScheduledEvent { code: "system-reboot".into(), description: "[Completed] done".into(), not_before: None },
            ScheduledEvent { code: "instance-retirement".into(), description: "retiring".into(), not_before: None },
        ];
        let f = found(&s, &[]);
        let r: Vec<_> = f
            .iter()
            .filter_map(|f| match f {
                Finding::RetirementScheduled { code, source, .. } => Some((code.as_str(), *source)),
                _ => None,
            })
            .collect();
        assert_eq!(r, [("instance-retirement", "ec2-status")]);
    }

    #[test]
    fn terminated_standalone_instance_with_a_retirement_is_unrecoverable() {
        let mut s = Snapshot::default();
        let inst = instance(9, InstanceState::Terminated, None, None);
        s.instances.insert(inst.id.clone(), inst);
        let ann =
            [Retirement { instance: id(9), code: "X".into(), deadline: None, source: "health", announced_at: None }];
        assert!(matches!(found(&s, &ann).as_slice(), [Finding::Unrecoverable { .. }]));
    }

    fn recovering(started: &[u32]) -> Snapshot {
        let mut s = story();
        let ids: Vec<String> = started.iter().map(|n| id(*n).to_string()).collect();
        let g = s.groups.values_mut().next().unwrap();
        g.tags.insert(RECOVERING_TAG.into(), format!("2026-11-28T11:00:00Z {}", ids.join(",")));
        for n in started {
            let i = s.instances.get_mut(&id(*n)).unwrap();
            i.state = InstanceState::Running;
            i.status = Some(StatusChecks { instance: "initializing".into(), system: "ok".into() });
            i.launched_at = Some(now() - Duration::minutes(5));
        }
        s
    }

    #[test]
    fn a_repair_under_way_is_in_progress_and_a_member_failing_its_checks_stalls_it() {
        let s = recovering(&[1, 2]);
        let f = found(&s, &[]);
        assert!(matches!(&f[0], Finding::RecoveryInProgress { waiting_for, .. } if waiting_for.len() == 2), "{f:?}");
        assert!(!f.iter().any(|f| f.kind() == "RecoveryStalled"), "5 minutes of initializing is normal");

        let mut s = recovering(&[1, 2]);
        s.instances.get_mut(&id(1)).unwrap().status.as_mut().unwrap().instance = "impaired".into();
        s.instances.get_mut(&id(2)).unwrap().launched_at = Some(now() - Duration::minutes(20));
        let stalled: Vec<String> = found(&s, &[])
            .into_iter()
            .filter_map(|f| match f {
                Finding::RecoveryStalled { instance, why, .. } => Some(format!("{instance}: {why}")),
                _ => None,
            })
            .collect();
        assert_eq!(stalled.len(), 2, "impaired, and still initializing 20 minutes after the start: {stalled:?}");
        assert!(stalled[0].contains("impaired") && stalled[1].contains("15 min after its start"), "{stalled:?}");
    }

    #[test]
    fn a_finished_repair_is_no_longer_in_progress() {
        let mut s = recovering(&[1, 2]);
        for n in [1, 2] {
            s.instances.get_mut(&id(n)).unwrap().status =
                Some(StatusChecks { instance: "ok".into(), system: "ok".into() });
        }
        s.groups.values_mut().next().unwrap().suspended.clear();
        assert!(found(&s, &[]).is_empty());
    }
}
