//! Domain values shared by every stage: validated ids, instance and group
//! snapshots as the inventory reads them from AWS. No AWS SDK types here.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// An EC2 instance id (`i-` followed by 8 or 17 lowercase hex digits).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct InstanceId(String);

impl InstanceId {
    /// Accepts a bare id or an instance ARN (`arn:aws:ec2:REGION:ACCOUNT:instance/i-…`).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let id = match text.strip_prefix("arn:") {
            Some(_) => {
                let (head, id) = text.rsplit_once(":instance/")?;
                if head.split(':').nth(2) != Some("ec2") {
                    return None;
                }
                id
            }
            None => text,
        };
        let hex = id.strip_prefix("i-")?;
        let well_formed =
            matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Auto Scaling group name: 1–255 characters without control characters
/// (AWS allows almost any printable text, so rendering code must still quote it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct AsgName(String);

impl AsgName {
    pub fn parse(text: &str) -> Option<Self> {
        let ok = !text.is_empty() && text.chars().count() <= 255 && !text.chars().any(char::is_control);
        ok.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AsgName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated SNS topic ARN.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TopicArn(String);

impl TopicArn {
    pub fn parse(text: &str) -> Option<Self> {
        let parts: Vec<&str> = text.split(':').collect();
        let ok = parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == "sns"
            && !parts[3].is_empty()
            && parts[4].len() == 12
            && parts[4].bytes().all(|b| b.is_ascii_digit())
            && !parts[5].is_empty();
        ok.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The topic's name (the ARN's last field), for people.
    pub fn name(&self) -> &str {
        self.0.rsplit(':').next().unwrap_or_default()
    }

    /// The region the topic is in (field 4 of the ARN).
    pub fn region(&self) -> &str {
        self.0.split(':').nth(3).unwrap_or_default()
    }

    /// The account that owns the topic (field 5 of the ARN).
    pub fn account(&self) -> &str {
        self.0.split(':').nth(4).unwrap_or_default()
    }
}

/// What an invocation must look at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every group in the region and every stopped instance.
    Sweep,
    Targets {
        instances: Vec<InstanceId>,
        groups: Vec<AsgName>,
    },
}

/// EC2 instance state names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
    Unknown,
}

impl InstanceState {
    pub fn parse(text: &str) -> Self {
        match text {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            "shutting-down" => Self::ShuttingDown,
            "terminated" => Self::Terminated,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::ShuttingDown => "shutting-down",
            Self::Terminated => "terminated",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Root device type: only EBS-backed instances can be started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootDevice {
    Ebs,
    InstanceStore,
    Unknown,
}

/// Who stopped an instance, from its `StateReason` code (never from the message).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "by", content = "code", rename_all = "snake_case")]
pub enum StopCause {
    /// `Server.ScheduledStop`: AWS retired the hardware.
    Retirement,
    /// `Client.UserInitiatedShutdown`: a person or a tool called StopInstances.
    User,
    /// `Client.InstanceInitiatedShutdown`: shut down from inside the OS.
    InsideOs,
    /// Any other or missing code.
    Other(String),
}

impl StopCause {
    pub fn from_code(code: Option<&str>) -> Self {
        match code {
            Some("Server.ScheduledStop") => Self::Retirement,
            Some("Client.UserInitiatedShutdown") => Self::User,
            Some("Client.InstanceInitiatedShutdown") => Self::InsideOs,
            other => Self::Other(other.unwrap_or("").to_owned()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Retirement => "stopped by AWS (scheduled retirement)".into(),
            Self::User => "stopped by a user or tool (StopInstances)".into(),
            Self::InsideOs => "shut down from inside the OS".into(),
            Self::Other(code) if code.is_empty() => "stopped, reason unknown".into(),
            Self::Other(code) => format!("stopped ({code})"),
        }
    }
}

/// EC2 status checks of a running instance (DescribeInstanceStatus).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusChecks {
    pub instance: String,
    pub system: String,
}

impl StatusChecks {
    pub fn ok(&self) -> bool {
        self.instance == "ok" && self.system == "ok"
    }

    /// A check that failed (`impaired`): it will not pass by waiting.
    pub fn impaired(&self) -> bool {
        self.instance == "impaired" || self.system == "impaired"
    }

    /// For messages: `instance check initializing, system check ok`.
    pub fn shown(&self) -> String {
        format!("instance check {}, system check {}", self.instance, self.system)
    }
}

/// A scheduled event on an instance (DescribeInstanceStatus `Events`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScheduledEvent {
    pub code: String,
    pub description: String,
    pub not_before: Option<DateTime<Utc>>,
}

/// One instance as DescribeInstances (and DescribeInstanceStatus) show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceSnapshot {
    pub id: InstanceId,
    pub state: InstanceState,
    pub state_reason_code: Option<String>,
    pub state_transition_reason: Option<String>,
    pub root_device: RootDevice,
    pub tags: BTreeMap<String, String>,
    /// Status checks, present only for running instances.
    pub status: Option<StatusChecks>,
    pub scheduled_events: Vec<ScheduledEvent>,
    /// When the instance was last started (EC2's LaunchTime moves on every start).
    pub launched_at: Option<DateTime<Utc>>,
}

/// Tag that AWS puts on every instance launched by or attached to a group.
pub const GROUP_TAG: &str = "aws:autoscaling:groupName";

impl InstanceSnapshot {
    pub fn group_tag(&self) -> Option<AsgName> {
        self.tags.get(GROUP_TAG).and_then(|n| AsgName::parse(n))
    }

    pub fn stop_cause(&self) -> StopCause {
        StopCause::from_code(self.state_reason_code.as_deref())
    }

    /// Time of the last transition, parsed from text such as
    /// `User initiated (2026-11-20 10:00:00 GMT)`; absent when AWS gave none.
    pub fn since(&self) -> Option<DateTime<Utc>> {
        parse_transition_time(self.state_transition_reason.as_deref()?)
    }

    pub fn name(&self) -> Option<&str> {
        self.tags.get("Name").map(String::as_str)
    }
}

/// Finds `YYYY-MM-DD HH:MM:SS` (followed by GMT, UTC or nothing) in free text.
pub fn parse_transition_time(text: &str) -> Option<DateTime<Utc>> {
    let open = text.find('(')?;
    let inner = &text[open + 1..];
    let inner = &inner[..inner.find(')')?];
    let stamp = inner.trim().trim_end_matches("GMT").trim_end_matches("UTC").trim();
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S").ok().map(|t| t.and_utc())
}

/// A suspended Auto Scaling process and who suspended it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SuspendedProcess {
    pub name: String,
    pub reason: String,
}

/// Who suspended a process, from its SuspensionReason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Suspender {
    /// `User suspended at <time>`: a person (or their automation).
    Person,
    /// Anything else, including an empty reason: AWS (administrative, CodeDeploy) or unknown.
    AwsOrUnknown,
}

impl SuspendedProcess {
    pub fn suspender(&self) -> Suspender {
        if self.reason.trim_start().starts_with("User suspended at") {
            Suspender::Person
        } else {
            Suspender::AwsOrUnknown
        }
    }
}

/// Processes whose suspension stops a group from replacing a stopped member.
pub const REPLACEMENT_PROCESSES: [&str; 4] = ["Launch", "Terminate", "HealthCheck", "ReplaceUnhealthy"];

/// A member of a group as DescribeAutoScalingGroups lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Member {
    pub id: InstanceId,
    pub lifecycle_state: String,
    pub health_status: String,
}

/// Tag the guard puts on a group while it is repairing it: since when, and which
/// members it started and has not yet seen running, checked and healthy. Only those
/// members are ever marked Healthy; a later invocation finishes the repair from it.
pub const RECOVERING_TAG: &str = "retirement-guard:recovering";

/// The value of the recovering tag: `2026-12-02T03:00:00Z i-0abc…,i-0def…`. A bare
/// time (written by earlier versions) records no member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Recovery {
    pub since: String,
    pub started: BTreeSet<InstanceId>,
}

impl Recovery {
    /// Members one tag value can record: AWS tag values hold 256 characters, a time
    /// takes 20 and each 19-character id one more for its separator.
    pub const CAPACITY: usize = 11;

    pub fn parse(value: &str) -> Self {
        let mut parts = value.split_whitespace();
        let since = parts.next().unwrap_or_default().to_owned();
        let started = parts.flat_map(|p| p.split(',')).filter_map(InstanceId::parse).collect();
        Self { since, started }
    }

    pub fn render(&self) -> String {
        let ids: Vec<&str> = self.started.iter().map(InstanceId::as_str).collect();
        format!("{} {}", self.since, ids.join(",")).trim_end().to_owned()
    }
}

/// One Auto Scaling group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupSnapshot {
    pub name: AsgName,
    pub desired: i32,
    /// MinSize: desired capacity cannot go below it (EnterStandby decrementing it included).
    pub min_size: i32,
    pub suspended: Vec<SuspendedProcess>,
    pub members: Vec<Member>,
    pub tags: BTreeMap<String, String>,
}

impl GroupSnapshot {
    pub fn is_suspended(&self, process: &str) -> bool {
        self.suspended.iter().any(|p| p.name == process)
    }

    /// The guard's record of its repair, when the group carries the recovering tag.
    pub fn recovery(&self) -> Option<Recovery> {
        self.tags.get(RECOVERING_TAG).map(|v| Recovery::parse(v))
    }

    /// Suspended processes that keep a stopped member from being replaced.
    pub fn blocking_replacement(&self) -> Vec<String> {
        REPLACEMENT_PROCESSES.iter().filter(|p| self.is_suspended(p)).map(|p| (*p).to_owned()).collect()
    }
}

/// What the inventory saw for one invocation's scope.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Snapshot {
    pub instances: BTreeMap<InstanceId, InstanceSnapshot>,
    pub groups: BTreeMap<AsgName, GroupSnapshot>,
    /// Ids asked for that AWS no longer knows.
    pub gone_instances: Vec<InstanceId>,
    /// Group names asked for that do not exist.
    pub gone_groups: Vec<AsgName>,
    /// Parts of a sweep's reads that failed: what is in the snapshot is true, but not all there is.
    pub unread: Vec<Unread>,
    /// The health alarms asked for (PROACTIVE_MOVES), by name: `None` when it does not
    /// exist; a name that is not here was not read.
    pub alarms: BTreeMap<String, Option<Alarm>>,
    /// Health alarms this read asked for and could not read (an older reading of them is stale).
    pub alarms_unread: Vec<String>,
}

/// Whether `name` can be a CloudWatch alarm name: 1–255 characters, none a control character.
pub fn is_alarm_name(name: &str) -> bool {
    (1..=255).contains(&name.chars().count()) && !name.chars().any(char::is_control)
}

/// A CloudWatch alarm (metric or composite) as DescribeAlarms shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Alarm {
    pub name: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// When it entered that state (`StateUpdatedTimestamp`).
    pub since: Option<DateTime<Utc>>,
}

/// A part of the account a sweep could not read (after the SDK's retries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unread {
    /// What was being read, e.g. "Auto Scaling groups".
    pub part: String,
    /// Items of it read before the failure (whole pages).
    pub read: usize,
    /// The failure, operation first.
    pub error: String,
}

impl Snapshot {
    /// Running with status checks OK, and Healthy in `group` when given: nothing left to do for it.
    pub fn ready(&self, group: Option<&GroupSnapshot>, id: &InstanceId) -> bool {
        let running = self
            .instances
            .get(id)
            .is_some_and(|i| i.state == InstanceState::Running && i.status.as_ref().is_some_and(StatusChecks::ok));
        running && group.is_none_or(|g| g.members.iter().any(|m| &m.id == id && m.health_status == "Healthy"))
    }

    /// Booting: pending, or running without having passed its status checks.
    pub fn booting(&self, id: &InstanceId) -> bool {
        self.instances.get(id).is_some_and(|i| {
            i.state == InstanceState::Pending
                || (i.state == InstanceState::Running && !i.status.as_ref().is_some_and(StatusChecks::ok))
        })
    }

    /// This snapshot with what `fresh` re-read put in its place: newer groups and
    /// instances replace older ones, and what `fresh` asked for and did not find is gone.
    pub fn overlay(&self, fresh: Snapshot) -> Snapshot {
        let mut s = self.clone();
        for name in &fresh.gone_groups {
            s.groups.remove(name);
        }
        for id in &fresh.gone_instances {
            s.instances.remove(id);
        }
        s.groups.extend(fresh.groups);
        s.instances.extend(fresh.instances);
        for name in &fresh.alarms_unread {
            s.alarms.remove(name);
        }
        s.alarms.extend(fresh.alarms);
        s
    }

    /// The group an instance belongs to, from group membership first, then its tag.
    pub fn group_of(&self, id: &InstanceId) -> Option<&GroupSnapshot> {
        self.groups
            .values()
            .find(|g| g.members.iter().any(|m| &m.id == id))
            .or_else(|| self.groups.get(&self.instances.get(id)?.group_tag()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_id_accepts_bare_ids_and_instance_arns() {
        assert_eq!(InstanceId::parse("i-0abc12345def67890").unwrap().as_str(), "i-0abc12345def67890");
        assert_eq!(InstanceId::parse("i-1234abcd").unwrap().as_str(), "i-1234abcd");
        let arn = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc12345def67890";
        assert_eq!(InstanceId::parse(arn).unwrap().as_str(), "i-0abc12345def67890");
    }

    #[test]
    fn instance_id_rejects_what_is_not_an_id() {
        for bad in [
            "",
            "i-",
            "i-XYZ",
            "i-0abc 123",
            "vol-0abc12345def67890",
            "i-0abc12345def6789$",
            "arn:aws:s3:::bucket/i-0abc12345def67890",
            "i-0abc12345def67890; rm -rf /",
        ] {
            assert!(InstanceId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn group_names_with_control_characters_are_rejected() {
        assert!(AsgName::parse("es-data").is_some());
        assert!(AsgName::parse("a\nb").is_none());
        assert!(AsgName::parse("").is_none());
        assert!(AsgName::parse(&"x".repeat(256)).is_none());
    }

    #[test]
    fn transition_time_is_parsed_when_present_and_optional_otherwise() {
        let t = parse_transition_time("User initiated (2026-11-20 10:00:00 GMT)").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-20T10:00:00+00:00");
        assert!(parse_transition_time("User initiated (2026-11-20 10:00:00 UTC)").is_some());
        assert!(parse_transition_time("User initiated").is_none());
        assert!(parse_transition_time("").is_none());
        assert!(parse_transition_time("(garbage)").is_none());
    }

    #[test]
    fn suspension_reason_tells_a_person_from_aws() {
        let p = |r: &str| SuspendedProcess { name: "Launch".into(), reason: r.into() }.suspender();
        assert_eq!(p("User suspended at 2017-12-09T19:00:23Z"), Suspender::Person);
        assert_eq!(p(""), Suspender::AwsOrUnknown);
        assert_eq!(p("Administratively suspended"), Suspender::AwsOrUnknown);
    }

    #[test]
    fn the_recovering_tag_records_the_started_members_and_fits_a_tag_value() {
        let ids: BTreeSet<InstanceId> =
            (0..Recovery::CAPACITY).map(|n| InstanceId::parse(&format!("i-{n:017x}")).unwrap()).collect();
        let r = Recovery { since: "2026-12-02T03:00:00Z".into(), started: ids };
        let text = r.render();
        assert!(text.len() <= 256, "{} characters", text.len());
        assert_eq!(Recovery::parse(&text), r);
        let legacy = Recovery::parse("2026-11-28T00:00:00Z");
        assert!(legacy.started.is_empty() && legacy.since == "2026-11-28T00:00:00Z");
        assert_eq!(Recovery::parse("").render(), "");
    }

    #[test]
    fn stop_cause_comes_from_the_code() {
        assert_eq!(StopCause::from_code(Some("Server.ScheduledStop")), StopCause::Retirement);
        assert_eq!(StopCause::from_code(Some("Client.UserInitiatedShutdown")), StopCause::User);
        assert_eq!(StopCause::from_code(None), StopCause::Other(String::new()));
    }
}
