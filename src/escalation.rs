//! Escalation (pure): findings → open `Condition`s (a stranded group, a stopped
//! standalone instance, an upcoming retirement, an unrecoverable instance, a group
//! with suspended processes), and for each the `Decision` of which tiers to notify
//! now, given its stored `Record` and the clock. Deduplication happens in the
//! state store (a conditional write per claim); this module only decides.

use crate::domain::AsgName;
use crate::domain::TopicArn;
use crate::findings::{Finding, Severity};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod plan;

/// One escalation tier: notify `topic` once a condition is `after` old.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tier {
    #[serde(serialize_with = "as_seconds")]
    pub after: Duration,
    pub topic: TopicArn,
}

fn as_seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(d.num_seconds())
}

/// Ordered tiers and the optional repeat interval at the last one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Escalation {
    pub tiers: Vec<Tier>,
    #[serde(serialize_with = "opt_seconds")]
    pub repeat: Option<Duration>,
}

fn opt_seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.num_seconds()),
        None => s.serialize_none(),
    }
}

/// Parses `0`, `90s`, `30m`, `2h`, `1d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::zero());
    }
    let (number, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: i64 = number.parse().ok().filter(|n| *n >= 0 && *n <= 100_000)?;
    match unit {
        "s" => Some(Duration::seconds(n)),
        "m" => Some(Duration::minutes(n)),
        "h" => Some(Duration::hours(n)),
        "d" => Some(Duration::days(n)),
        _ => None,
    }
}

impl Escalation {
    /// A single tier: every condition is notified once, at once, to `topic`.
    pub fn single(topic: TopicArn) -> Self {
        Self { tiers: vec![Tier { after: Duration::zero(), topic }], repeat: None }
    }

    /// Parses `0=ARN,30m=ARN,2h=ARN`: delays ascending, the first one 0 (nothing waits silently).
    pub fn parse(text: &str, repeat: Option<&str>) -> Result<Self, String> {
        let mut tiers = Vec::new();
        for (i, part) in text.split(',').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
            let (after, topic) =
                part.split_once('=').ok_or_else(|| format!("entry {part:?} is not AFTER=TOPIC_ARN"))?;
            let after =
                parse_duration(after).ok_or_else(|| format!("{after:?} is not a delay like 0, 90s, 30m, 2h or 1d"))?;
            let topic = TopicArn::parse(topic.trim()).ok_or_else(|| format!("{topic:?} is not an SNS topic ARN"))?;
            if i == 0 && after != Duration::zero() {
                return Err("the first tier must be 0 (notify at once)".into());
            }
            if tiers.last().is_some_and(|t: &Tier| t.after >= after) {
                return Err("delays must be strictly ascending".into());
            }
            tiers.push(Tier { after, topic });
        }
        if tiers.is_empty() {
            return Err("no tier given".into());
        }
        let repeat = match repeat.map(str::trim).filter(|r| !r.is_empty()) {
            None => None,
            Some(r) => match parse_duration(r) {
                Some(d) if d >= Duration::minutes(1) => Some(d),
                _ => return Err(format!("repeat {r:?} is not a delay of at least 1m")),
            },
        };
        Ok(Self { tiers, repeat })
    }
}

/// What kind of open problem a condition is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionKind {
    StrandedGroup,
    StoppedStandalone,
    Retirement,
    Unrecoverable,
    /// Suspended processes but nothing stranded: notified once, never escalated.
    SuspendedGroup,
    /// A member the guard started does not pass its checks: the group stays suspended.
    StalledRecovery,
    /// An announced retirement the guard cannot inspect: notified once, never
    /// escalated, and never "resolved" (nothing the guard sees can clear it).
    NotInspected,
    /// A sweep that could not read everything: open until a sweep reads everything again.
    ReadIncomplete,
}

impl ConditionKind {
    const ALL: [Self; 8] = [
        Self::StrandedGroup,
        Self::StoppedStandalone,
        Self::Retirement,
        Self::Unrecoverable,
        Self::SuspendedGroup,
        Self::StalledRecovery,
        Self::NotInspected,
        Self::ReadIncomplete,
    ];

    /// The kind and subject of a condition key (`key_of`'s inverse).
    pub fn of_key(key: &str) -> Option<(Self, &str)> {
        Self::ALL.iter().find_map(|k| key.strip_prefix(&key_of(*k, "")).map(|subject| (*k, subject)))
    }

    /// Kinds that are told once and then forgotten, never escalated or resolved.
    pub fn one_shot(self) -> bool {
        matches!(self, Self::SuspendedGroup | Self::NotInspected)
    }
}

/// An open problem, identified across invocations by its `key`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Condition {
    pub key: String,
    pub kind: ConditionKind,
    /// The group or instance it is about.
    pub subject: String,
    /// When it started, if AWS says (e.g. the stop time).
    pub since: Option<DateTime<Utc>>,
    pub severity: Severity,
    /// An upcoming retirement's deadline: it escalates by how close that is.
    pub deadline: Option<DateTime<Utc>>,
    pub findings: Vec<Finding>,
}

impl Condition {
    /// Told once and never escalated: a one-shot kind, or a retirement its group will
    /// simply replace (nothing is lost at the deadline).
    pub fn one_shot(&self) -> bool {
        self.kind.one_shot() || (self.kind == ConditionKind::Retirement && self.severity == Severity::Info)
    }

    /// The time its escalation counts from: when it was first seen, except for an
    /// upcoming retirement with a deadline, which counts from a day before the deadline
    /// (announced two weeks out, it stays at the first tier until then).
    pub fn escalates_from(&self, first_seen: DateTime<Utc>) -> DateTime<Utc> {
        match (self.kind, self.deadline) {
            (ConditionKind::Retirement, Some(deadline)) => deadline - crate::findings::IMMINENT,
            _ => first_seen,
        }
    }

    /// Whether `name` (a group or an instance) is what this condition is about, or part of it.
    pub fn concerns(&self, name: &str) -> bool {
        self.subject == name
            || self.findings.iter().any(|f| {
                f.group().is_some_and(|g| g.as_str() == name) || f.instance().is_some_and(|i| i.as_str() == name)
            })
    }

    /// One line for notices and the state record.
    pub fn summary(&self) -> String {
        let what = match self.kind {
            ConditionKind::StrandedGroup => {
                let n = self.findings.iter().filter(|f| f.kind() == "StrandedInstance").count();
                let members = if n == 1 { "member" } else { "members" };
                if n == 0 {
                    format!("repair of group {}", self.subject)
                } else {
                    format!("{n} stranded {members} in group {}", self.subject)
                }
            }
            ConditionKind::StoppedStandalone => format!("{} stopped by AWS, in no group", self.subject),
            ConditionKind::Retirement => format!("retirement scheduled for {}", self.subject),
            ConditionKind::Unrecoverable => format!("{} cannot be recovered", self.subject),
            ConditionKind::SuspendedGroup => format!("processes suspended in group {}", self.subject),
            ConditionKind::StalledRecovery => format!("recovery of group {} stalled", self.subject),
            ConditionKind::NotInspected => format!("retirement announced for {}, not inspected", self.subject),
            ConditionKind::ReadIncomplete => "the sweep could not read every instance and group".to_owned(),
        };
        crate::text::shown(&what, 300)
    }
}

/// The open conditions in a list of findings, in key order. A group the guard is
/// repairing stays one stranded-group condition until its repair is finished.
pub fn conditions(findings: &[&Finding]) -> Vec<Condition> {
    let mut open: BTreeMap<String, Condition> = BTreeMap::new();
    let repairing: Vec<&AsgName> = findings
        .iter()
        .filter_map(|f| match f {
            Finding::RecoveryInProgress { group, .. } => Some(group),
            _ => None,
        })
        .collect();
    for f in findings {
        let (kind, subject, since) = match f {
            Finding::StrandedInstance { group, since, .. } => (ConditionKind::StrandedGroup, group.to_string(), *since),
            Finding::RecoveryInProgress { group, since, .. } => {
                (ConditionKind::StrandedGroup, group.to_string(), *since)
            }
            Finding::RecoveryStalled { group, .. } => (ConditionKind::StalledRecovery, group.to_string(), None),
            Finding::NotInspected { subject, .. } => (ConditionKind::NotInspected, subject.clone(), None),
            Finding::ReadIncomplete { .. } => (ConditionKind::ReadIncomplete, "sweep".to_owned(), None),
            Finding::StoppedStandalone { instance, since, .. } => {
                (ConditionKind::StoppedStandalone, instance.to_string(), *since)
            }
            Finding::RetirementScheduled { instance, .. } => (ConditionKind::Retirement, instance.to_string(), None),
            Finding::Unrecoverable { instance, .. } => (ConditionKind::Unrecoverable, instance.to_string(), None),
            Finding::SuspendedProcesses { group, stranded: 0, .. } if !repairing.contains(&group) => {
                (ConditionKind::SuspendedGroup, group.to_string(), None)
            }
            // Suspended processes of a group with stranded instances belong to the stranded condition.
            Finding::SuspendedProcesses { group, .. } => {
                let key = key_of(ConditionKind::StrandedGroup, &group.to_string());
                if let Some(c) = open.get_mut(&key) {
                    c.findings.push((*f).clone());
                    continue;
                }
                (ConditionKind::StrandedGroup, group.to_string(), None)
            }
        };
        let key = key_of(kind, &subject);
        let c = open.entry(key.clone()).or_insert_with(|| Condition {
            key,
            kind,
            subject,
            since: None,
            severity: f.severity(),
            deadline: None,
            findings: vec![],
        });
        if let Finding::RetirementScheduled { deadline, .. } = f {
            c.deadline = *deadline;
        }
        c.since = match (c.since, since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        c.severity = c.severity.max(f.severity());
        c.findings.push((*f).clone());
    }
    open.into_values().collect()
}

pub fn key_of(kind: ConditionKind, subject: &str) -> String {
    let kind = match kind {
        ConditionKind::StrandedGroup => "stranded",
        ConditionKind::StoppedStandalone => "standalone",
        ConditionKind::Retirement => "retirement",
        ConditionKind::Unrecoverable => "unrecoverable",
        ConditionKind::SuspendedGroup => "suspended",
        ConditionKind::StalledRecovery => "stalled",
        ConditionKind::NotInspected => "not_inspected",
        ConditionKind::ReadIncomplete => "unread",
    };
    format!("{kind}:{subject}")
}

/// What the store remembers of a condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub first_seen: DateTime<Utc>,
    /// Highest tier notified (index into the tiers).
    pub tier: usize,
    pub last_notified: DateTime<Utc>,
    /// Every topic notified, for the resolution notice.
    pub topics: Vec<String>,
    pub summary: String,
    /// Set when the condition cleared: the record is then a tombstone that keeps a
    /// racing invocation from reporting the same repair again, until a new episode.
    #[serde(default)]
    pub resolved_at: Option<DateTime<Utc>>,
}

impl Record {
    /// The tombstone this record becomes when its condition clears.
    pub fn resolved(&self, now: DateTime<Utc>) -> Self {
        Self { resolved_at: Some(now), ..self.clone() }
    }
}

/// Conditions that no later state clears (announcements the guard cannot inspect).
pub fn never_resolves(key: &str) -> bool {
    key.starts_with(&key_of(ConditionKind::NotInspected, ""))
}

/// How long such a condition is remembered, so that repeated deliveries stay quiet.
pub fn forget_after() -> Duration {
    Duration::days(30)
}

/// How long a tombstone keeps other invocations from re-reporting a repair.
pub fn tombstone_grace() -> Duration {
    Duration::minutes(15)
}

/// What to do for one condition now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Tier indexes to notify now (ascending); empty: nothing due.
    pub tiers: Vec<usize>,
    /// True when the last tier is notified again because the repeat interval passed.
    pub repeat: bool,
    pub first_seen: DateTime<Utc>,
    /// How long the condition has been open (never negative).
    pub age: Duration,
}

/// Which tiers are due for `condition`, given what was already notified.
/// A missing record means first seen now (or at `since`, if AWS says so earlier);
/// a clock behind the record never makes the age negative. The tier due is chosen by
/// the time since `Condition::escalates_from` (an upcoming retirement: its deadline).
pub fn decide(condition: &Condition, record: Option<&Record>, esc: &Escalation, now: DateTime<Utc>) -> Decision {
    let mut first_seen = record.map(|r| r.first_seen).unwrap_or(now);
    if let Some(since) = condition.since {
        first_seen = first_seen.min(since);
    }
    let age = (now - first_seen).max(Duration::zero());
    let clock = (now - condition.escalates_from(first_seen)).max(Duration::zero());
    let due = if condition.one_shot() { 0 } else { esc.tiers.iter().rposition(|t| clock >= t.after).unwrap_or(0) };
    let done = record.map(|r| r.tier.min(esc.tiers.len() - 1));
    let tiers: Vec<usize> = match done {
        None => (0..=due).collect(),
        Some(done) => (done + 1..=due).collect(),
    };
    let last = esc.tiers.len() - 1;
    let repeat = tiers.is_empty()
        && !condition.one_shot()
        && done == Some(last)
        && due == last
        && esc.repeat.zip(record).is_some_and(|(every, r)| now - r.last_notified >= every);
    let tiers = if repeat { vec![last] } else { tiers };
    Decision { tiers, repeat, first_seen, age }
}

#[cfg(test)]
mod tests;
