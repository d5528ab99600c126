//! What a notice says, pure and in one place: the conditions it is about (each with
//! a headline, a short form and its details, as found or as they are now), what the
//! guard did and did not do, and the next steps as data (a title and exact `aws`
//! commands). Every format — email, SMS, chat, the JSON document — is written from
//! this one `View`, so they never disagree.

use super::{NoticeInput, ago, shell_quote, time};
use crate::actions::{Outcome, Status};
use crate::domain::{InstanceId, RootDevice, StopCause, Suspender};
use crate::escalation::{Condition, ConditionKind, conditions};
use crate::findings::{Finding, Outlook, Severity};
use crate::policy::{Action, Skip};
use crate::text::shown;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeSet;

/// Which notice this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// Something is wrong (or was, and the guard repaired it in this invocation).
    Problem,
    /// Conditions notified before are gone.
    Resolved,
    /// An event the guard is meant to handle could not be read.
    Rejected,
}

/// Where a condition stands when the notice is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartState {
    Open,
    /// Found and repaired by the guard in this invocation.
    Repaired,
    /// Notified earlier, no longer seen.
    Resolved,
}

/// One condition of a notice.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Part {
    pub key: String,
    pub kind: ConditionKind,
    /// The group or instance it is about.
    pub subject: String,
    pub severity: Severity,
    pub state: PartState,
    /// What is wrong, where, how bad: one line.
    pub headline: String,
    /// The same in a few words (SMS, subject), ASCII not guaranteed.
    pub short: String,
    /// One line per fact (an instance, the suspended processes, a link).
    pub details: Vec<String>,
    /// The findings behind it, as now (or as found, when repaired).
    pub findings: Vec<Finding>,
}

/// One thing for a person to do, with the commands that do it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NextStep {
    pub title: String,
    pub commands: Vec<String>,
}

/// Where and when, for every format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Context {
    pub region: String,
    pub account: Option<String>,
    pub environment: String,
    pub checked_at: DateTime<Utc>,
    pub trigger: Option<String>,
    pub dry_run: bool,
    /// The escalation tier this notice goes to (0: the first).
    pub tier: usize,
}

/// A notice's content.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct View {
    pub notice: NoticeKind,
    pub severity: Severity,
    pub context: Context,
    /// Said before anything else: dry run, stopped early.
    pub warnings: Vec<String>,
    /// The lead (most severe) first.
    pub parts: Vec<Part>,
    pub outcomes: Vec<Outcome>,
    pub not_done: Vec<Skip>,
    pub steps: Vec<NextStep>,
    /// One plain line per condition on where its escalation stands.
    pub escalation: Vec<String>,
    /// Rejected notices only: what was wrong with the event.
    pub error: Option<String>,
}

impl View {
    /// The first line of every format.
    pub fn headline(&self) -> String {
        match (&self.error, self.parts.as_slice()) {
            (Some(e), _) => format!("an event the guard handles could not be read: {}", shown(e, 300)),
            (None, []) => "the guard's actions need a look".to_owned(),
            (None, [one]) => one.headline.clone(),
            (None, [lead, rest @ ..]) => format!("{} (and {} more below)", lead.headline, rest.len()),
        }
    }

    /// The headline in a few words.
    pub fn short(&self) -> String {
        match (&self.error, self.parts.as_slice()) {
            (Some(e), _) => format!("event rejected: {}", shown(e, 200)),
            (None, []) => "action failed".to_owned(),
            (None, [one]) => one.short.clone(),
            (None, [lead, rest @ ..]) => format!("{} (+{} more)", lead.short, rest.len()),
        }
    }

    /// The chat thread: stable per account, region and the lead condition's group or
    /// instance, so that reminders and the resolution land in one thread.
    pub fn thread(&self) -> String {
        let subject = self.parts.first().map(|p| p.subject.as_str()).unwrap_or("events");
        format!(
            "retirement-guard/{}/{}/{}",
            self.context.account.as_deref().unwrap_or("unknown"),
            self.context.region,
            shown(subject, 255)
        )
    }

    /// What the guard did, one line per step (none: nothing was due).
    pub fn done_lines(&self) -> Vec<String> {
        self.outcomes.iter().map(outcome_line).collect()
    }

    /// What it did not do and why, one line per skip.
    pub fn not_done_lines(&self) -> Vec<String> {
        self.not_done.iter().map(skip_line).collect()
    }
}

/// The view of a problem notice.
pub fn problem(input: &NoticeInput<'_>) -> View {
    let parts = parts(input);
    let failed = input.outcomes.iter().any(Outcome::is_failed);
    let severity = parts
        .iter()
        .map(|p| if p.state == PartState::Open { p.severity } else { Severity::Info })
        .chain(failed.then_some(Severity::Critical))
        .max()
        .unwrap_or(Severity::Info);
    let mut warnings = Vec::new();
    if input.dry_run {
        warnings.push("DRY RUN: nothing was changed; what follows is what the guard would do.".to_owned());
    }
    if let Some(why) = input.cut_short {
        warnings.push(format!("STOPPED EARLY: {}", shown(why, 500)));
    }
    warnings.extend(input.warnings.iter().map(|w| shown(w, 500)));
    let open: Vec<&Finding> = parts.iter().filter(|p| p.state == PartState::Open).flat_map(|p| &p.findings).collect();
    View {
        notice: NoticeKind::Problem,
        severity,
        context: Context {
            region: input.region.to_owned(),
            account: input.account.map(str::to_owned),
            environment: input.environment.to_owned(),
            checked_at: input.now,
            trigger: Some(shown(input.trigger, 300)),
            dry_run: input.dry_run,
            tier: input.tier,
        },
        warnings,
        steps: next_steps(&open, input.region, input.now),
        parts,
        outcomes: input.outcomes.to_vec(),
        not_done: input.pending.to_vec(),
        escalation: input.escalation.to_vec(),
        error: None,
    }
}

/// The conditions the notice is about, as found, each with its state now; the lead first.
fn parts(input: &NoticeInput<'_>) -> Vec<Part> {
    let now = conditions(input.remaining);
    let mut parts: Vec<Part> = conditions(input.findings)
        .iter()
        .map(|found| match now.iter().find(|c| c.key == found.key) {
            Some(current) => part(current, PartState::Open, input),
            None => part(found, PartState::Repaired, input),
        })
        .collect();
    // Stable: most severe first, then key order (conditions() sorts by key).
    parts.sort_by_key(|p| std::cmp::Reverse((p.state == PartState::Open, p.severity)));
    parts
}

fn part(c: &Condition, state: PartState, input: &NoticeInput<'_>) -> Part {
    let (headline, short) = headline(c, input.now);
    let (headline, short) = match state {
        PartState::Repaired => {
            let done = repaired(c, input.outcomes, input.dry_run);
            // The subject adds what was done ("2 started, resumed").
            let short = short.strip_suffix(", not replaced").unwrap_or(&short);
            let short = if input.dry_run { format!("{short}, would be repaired") } else { short.to_owned() };
            (format!("{headline}; {done}"), short)
        }
        _ => (headline, short),
    };
    let mut details: Vec<String> = c.findings.iter().filter_map(|f| detail(f, input.now)).collect();
    details.push(format!("Console: {}", console(c, input.region)));
    Part {
        key: c.key.clone(),
        kind: c.kind,
        subject: c.subject.clone(),
        severity: c.severity,
        state,
        headline,
        short,
        details,
        findings: c.findings.clone(),
    }
}

/// What the guard did for a condition it repaired, in a few words.
fn repaired(c: &Condition, outcomes: &[Outcome], dry_run: bool) -> String {
    let about = |o: &&Outcome| match &o.action {
        Action::StartInstance { group: Some(g), .. }
        | Action::SetInstanceHealthy { group: g, .. }
        | Action::ResumeProcesses { group: g, .. } => g.as_str() == c.subject,
        Action::StartInstance { instance, group: None } => instance.as_str() == c.subject,
        _ => false,
    };
    let mine: Vec<&Outcome> = outcomes.iter().filter(about).collect();
    let count = |name: &str| mine.iter().filter(|o| o.action.name() == name).count();
    let mut did = Vec::new();
    if count("start_instance") > 0 {
        did.push(format!("started {}", count("start_instance")));
    }
    if count("set_instance_healthy") > 0 {
        did.push(format!("marked {} Healthy", count("set_instance_healthy")));
    }
    if count("resume_processes") > 0 {
        did.push("resumed its processes".to_owned());
    }
    match (did.is_empty(), dry_run) {
        (true, _) => "no longer seen after the guard's steps".to_owned(),
        (false, true) => format!("the guard would have {} (DRY RUN)", did.join(", ")),
        (false, false) => format!("REPAIRED: the guard {}", did.join(", ")),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

fn is_are(list: &[String]) -> &'static str {
    if list.len() == 1 { "is" } else { "are" }
}

/// Who stopped a set of instances, in a few words.
fn stopped_by(causes: &[&StopCause]) -> String {
    let retired = causes.iter().filter(|c| ***c == StopCause::Retirement).count();
    let person = causes.iter().filter(|c| ***c == StopCause::User).count();
    match (retired, person, causes.len()) {
        (r, _, n) if r == n => "stopped by AWS retirement".to_owned(),
        (_, p, n) if p == n => "stopped by a person or tool (not by AWS)".to_owned(),
        (0, 0, _) => "stopped (not by AWS retirement)".to_owned(),
        (r, p, n) => format!("stopped ({r} by AWS retirement, {p} by a person or tool, {} otherwise)", n - r - p),
    }
}

/// A condition's headline and its short form.
fn headline(c: &Condition, now: DateTime<Utc>) -> (String, String) {
    let name = shown(&c.subject, 255);
    let mut stranded = Vec::new();
    let mut members = None;
    let mut progress = None;
    for f in &c.findings {
        match f {
            Finding::StrandedInstance { cause, blocking, .. } => stranded.push((cause, blocking)),
            Finding::SuspendedProcesses { members: m, .. } => members = Some(*m),
            Finding::RecoveryInProgress { waiting_for, .. } => progress = Some(waiting_for),
            _ => {}
        }
    }
    let first = c.findings.first();
    match (c.kind, first) {
        (ConditionKind::StrandedGroup, _) if !stranded.is_empty() => {
            let n = stranded.len();
            let of = members.map(|m| format!(" of {m}")).unwrap_or_default();
            let causes: Vec<&StopCause> = stranded.iter().map(|(c, _)| *c).collect();
            let blocking = stranded[0].1;
            let them = if n == 1 { "it" } else { "them" };
            let by = stopped_by(&causes);
            let short_by = if by.starts_with("stopped by AWS") { "stopped by retirement" } else { "stopped" };
            (
                format!(
                    "{name}: {n}{of} {} {by}; the group cannot replace {them} while {} {} suspended",
                    if n == 1 && members.is_none() { "member" } else { "members" },
                    blocking.join(", "),
                    is_are(blocking)
                ),
                format!("{name}: {n}{} {short_by}, not replaced", members.map(|m| format!("/{m}")).unwrap_or_default()),
            )
        }
        (ConditionKind::StrandedGroup, _) => {
            let waiting = match progress {
                Some(w) if !w.is_empty() => format!("waiting for the members it started: {}", w.join("; ")),
                _ => "its processes are still suspended".to_owned(),
            };
            (
                format!(
                    "{name}: repair in progress, {waiting}; the group stays suspended until every member runs and is healthy"
                ),
                format!("{name}: repair in progress"),
            )
        }
        (ConditionKind::StalledRecovery, Some(Finding::RecoveryStalled { why, .. })) => {
            let stalled: Vec<(&InstanceId, &str)> = c
                .findings
                .iter()
                .filter_map(|f| match f {
                    Finding::RecoveryStalled { instance, why, .. } => Some((instance, why.as_str())),
                    _ => None,
                })
                .collect();
            let list: Vec<&str> = stalled.iter().take(3).map(|(i, _)| i.as_str()).collect();
            let more = if stalled.len() > 3 { format!(" and {} more", stalled.len() - 3) } else { String::new() };
            let why = if stalled.iter().all(|(_, w)| w == why) {
                why.to_owned()
            } else {
                format!("{why}, and more (in DETAILS)")
            };
            (
                format!(
                    "{name}: REPAIR STALLED: {}{more}, started by the guard: {why}; the group stays suspended and needs a person",
                    list.join(", ")
                ),
                format!("{name}: repair stalled ({})", plural(c.findings.len(), "instance", "instances")),
            )
        }
        (ConditionKind::StoppedStandalone, Some(Finding::StoppedStandalone { since, .. })) => (
            format!(
                "{name}: stopped by AWS retirement{}; it is in no Auto Scaling group, so nothing will start it",
                ago(*since, now)
            ),
            format!("{name} stopped by retirement"),
        ),
        (
            ConditionKind::Retirement,
            Some(Finding::RetirementScheduled { group, code, deadline, root_device, outlook, blocking, .. }),
        ) => {
            let fate = fate(*outlook, *root_device, group.is_some(), blocking);
            let when = deadline.map(|d| format!(" on {}{}", time(Some(d)), until(d, now))).unwrap_or_default();
            let place = group.as_ref().map(|g| format!(" (group {})", shown(g.as_str(), 255))).unwrap_or_default();
            let short_fate = match outlook {
                Outlook::Replaced => "group replaces it",
                Outlook::StaysStopped => "will stay down",
                Outlook::Lost => "data lost",
            };
            let short_when = deadline.map(|d| d.format(" %m-%d %H:%MZ").to_string()).unwrap_or_default();
            (
                format!("{name}{place}: {} scheduled{when}; {fate}", retirement_word(code)),
                format!("{name} retires{short_when}, {short_fate}"),
            )
        }
        (ConditionKind::Unrecoverable, Some(Finding::Unrecoverable { group, why, .. })) => (
            format!(
                "{name}{}: cannot be recovered: {why}",
                group.as_ref().map(|g| format!(" (group {})", shown(g.as_str(), 255))).unwrap_or_default()
            ),
            format!("{name} cannot be recovered"),
        ),
        (ConditionKind::SuspendedGroup, Some(Finding::SuspendedProcesses { processes, .. })) => {
            let names: Vec<String> = processes.iter().map(|p| p.name.clone()).collect();
            (
                format!(
                    "{name}: {} {} suspended ({}); nothing is stranded now",
                    names.join(", "),
                    is_are(&names),
                    suspended_by(processes.iter().map(|p| &p.by))
                ),
                format!("{name}: processes suspended"),
            )
        }
        (ConditionKind::NotInspected, Some(Finding::NotInspected { account, code, deadline, why, .. })) => (
            format!(
                "{name}{}: {} announced for {}, NOT INSPECTED: {why}",
                account.as_ref().map(|a| format!(" in account {a}")).unwrap_or_default(),
                retirement_word(code),
                time(*deadline)
            ),
            format!("{} announced, not inspected: {}", retirement_word(code), shown(&name, 40)),
        ),
        (ConditionKind::ReadIncomplete, Some(Finding::ReadIncomplete { unchecked, .. })) => (
            format!(
                "the sweep COULD NOT READ everything{}; what this notice lists may not be all there is",
                if unchecked.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", and {} possibly stranded",
                        plural(unchecked.len(), "stopped group member is", "stopped group members are")
                    )
                }
            ),
            "sweep could not read everything".to_owned(),
        ),
        _ => (c.summary(), c.summary()),
    }
}

/// An event code in words.
fn retirement_word(code: &str) -> String {
    match code {
        "instance-retirement" | "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED" => "instance retirement".to_owned(),
        "instance-stop" | "AWS_EC2_INSTANCE_STOP_SCHEDULED" => "instance stop".to_owned(),
        other => shown(other, 80),
    }
}

/// What the deadline does to an instance.
fn fate(outlook: Outlook, root: RootDevice, in_group: bool, blocking: &[String]) -> String {
    let act = if root == RootDevice::InstanceStore {
        "AWS will terminate it (instance-store root: its local data is lost)"
    } else {
        "AWS will stop it"
    };
    match outlook {
        Outlook::Replaced => format!("{act} and its group will replace it"),
        Outlook::StaysStopped | Outlook::Lost if in_group => format!(
            "{act}, and the group will NOT replace it while {} {} suspended",
            blocking.join(", "),
            is_are(blocking)
        ),
        Outlook::StaysStopped => format!("{act}; it is in no Auto Scaling group, so nothing will start it again"),
        Outlook::Lost => format!("{act}; it is in no Auto Scaling group, so nothing replaces it"),
    }
}

/// " (in 3d04h)" or " (passed)".
fn until(deadline: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let m = (deadline - now).num_minutes();
    if m < 0 { " (passed)".to_owned() } else { format!(" (in {}d{:02}h{:02}m)", m / 1440, (m % 1440) / 60, m % 60) }
}

fn suspended_by<'a>(by: impl Iterator<Item = &'a Suspender>) -> String {
    let by: BTreeSet<&str> = by
        .map(|b| match b {
            Suspender::Person => "by a person",
            Suspender::AwsOrUnknown => "no person's reason recorded: AWS or a tool",
        })
        .collect();
    by.into_iter().collect::<Vec<_>>().join("; ")
}

/// One line of detail for a finding (none when the headline already says it all).
fn detail(f: &Finding, now: DateTime<Utc>) -> Option<String> {
    Some(match f {
        Finding::StrandedInstance { instance, state, cause, since, root_device, .. } => format!(
            "{instance}: {state}{}; {}; root device {}",
            ago(*since, now),
            cause.describe(),
            root_word(*root_device)
        ),
        Finding::SuspendedProcesses { processes, .. } => {
            let list: Vec<String> = processes
                .iter()
                .map(|p| match p.by {
                    Suspender::Person => format!("{} (by a person: {})", p.name, shown(&p.reason, 80)),
                    Suspender::AwsOrUnknown if p.reason.is_empty() => {
                        format!("{} (no reason recorded: AWS or a tool, not a person)", p.name)
                    }
                    Suspender::AwsOrUnknown => format!("{} ({}: AWS or a tool)", p.name, shown(&p.reason, 80)),
                })
                .collect();
            format!("suspended: {}", list.join(", "))
        }
        Finding::RetirementScheduled { instance, code, deadline, root_device, source, .. } => format!(
            "{instance}: {} not before {}; root device {}; seen in {}",
            shown(code, 80),
            time(*deadline),
            root_word(*root_device),
            if *source == "health" { "an AWS Health event" } else { "DescribeInstanceStatus (scheduled events)" }
        ),
        Finding::RecoveryInProgress { since, .. } => format!("the guard has been repairing it{}", ago(*since, now)),
        Finding::RecoveryStalled { instance, why, .. } => format!("{instance}: {why}"),
        Finding::StoppedStandalone { .. } => return None,
        Finding::Unrecoverable { .. } | Finding::NotInspected { .. } => return None,
        Finding::ReadIncomplete { parts, unchecked } => {
            let parts: Vec<String> = parts
                .iter()
                .map(|p| format!("{} ({} read before: {})", shown(&p.part, 600), p.read, shown(&p.error, 300)))
                .collect();
            let ids: Vec<&str> = unchecked.iter().map(InstanceId::as_str).collect();
            let unchecked = if ids.is_empty() { String::new() } else { format!("; unchecked: {}", ids.join(" ")) };
            format!(
                "not read: {}{unchecked}; nothing was planned for it, and no earlier problem is called resolved until a sweep reads everything",
                parts.join("; ")
            )
        }
    })
}

fn root_word(root: RootDevice) -> &'static str {
    match root {
        RootDevice::Ebs => "EBS",
        RootDevice::InstanceStore => "instance store",
        RootDevice::Unknown => "unknown",
    }
}

/// The console page of a condition's group or instance.
fn console(c: &Condition, r: &str) -> String {
    let base = format!("https://{r}.console.aws.amazon.com/ec2/home?region={r}");
    let id = percent_encoding::utf8_percent_encode(&c.subject, percent_encoding::NON_ALPHANUMERIC);
    match c.kind {
        ConditionKind::StrandedGroup | ConditionKind::SuspendedGroup | ConditionKind::StalledRecovery => {
            format!("{base}#AutoScalingGroupDetails:id={id};view=details")
        }
        ConditionKind::ReadIncomplete => format!("{base}#AutoScalingGroups:"),
        _ => format!("{base}#InstanceDetails:instanceId={id}"),
    }
}

fn action_words(o: &Action) -> String {
    match o {
        Action::MarkRecovering { group, .. } => {
            format!("record on {} that the guard is repairing it", shown(group.as_str(), 255))
        }
        Action::StartInstance { instance, .. } => format!("start {instance}"),
        Action::SetInstanceHealthy { instance, group } => {
            format!("mark {instance} Healthy in {}", shown(group.as_str(), 255))
        }
        Action::ResumeProcesses { group, processes } => {
            format!("resume {} in {}", processes.join(", "), shown(group.as_str(), 255))
        }
        Action::ClearRecovering { group } => {
            format!("remove the guard's repair record from {}", shown(group.as_str(), 255))
        }
    }
}

fn outcome_line(o: &Outcome) -> String {
    let what = action_words(&o.action);
    match &o.status {
        Status::Done { detail } => format!("{what}: done ({})", shown(detail, 200)),
        Status::DryRun { after: None } => format!("{what}: would be done (DRY RUN)"),
        Status::DryRun { after: Some(_) } => {
            format!(
                "{what}: would follow (DRY RUN) once the steps above succeed and the started instances pass their status checks"
            )
        }
        Status::Gone { detail } => format!("{what}: nothing to do, it no longer exists ({})", shown(detail, 200)),
        Status::Failed { failure } => {
            format!("{what}: FAILED ({} {})", failure.code.as_deref().unwrap_or("error"), shown(&failure.message, 300))
        }
        Status::NotAttempted { reason } => format!("{what}: not attempted ({})", shown(reason, 300)),
    }
}

fn skip_line(s: &Skip) -> String {
    let target = shown(&s.target, 255);
    // A group-wide skip names the group: say what in it was left alone.
    let what = match s.action {
        "start_instance" if !s.target.starts_with("i-") => format!("start the stopped members of {target}"),
        "start_instance" => format!("start {target}"),
        "set_instance_healthy" => format!("mark {target} Healthy"),
        "resume_processes" => format!("resume the processes of {target}"),
        _ => format!("change anything for {target}"),
    };
    format!("did not {what}: {}", shown(&s.reason, 400))
}

/// Instances named in one command.
const IDS_MAX: usize = 100;

/// The steps that would finish the job by hand, from the open findings.
pub fn next_steps(open: &[&Finding], r: &str, now: DateTime<Utc>) -> Vec<NextStep> {
    let mut steps = Vec::new();
    // Commands name at most IDS_MAX instances, so a notice stays within SNS's limit.
    let ids = |list: &[&InstanceId]| list.iter().take(IDS_MAX).map(|i| i.as_str()).collect::<Vec<_>>().join(" ");
    let first = |list: &[&InstanceId]| {
        if list.len() > IDS_MAX {
            format!(" (the first {IDS_MAX} of {}; run it again for the rest)", list.len())
        } else {
            String::new()
        }
    };
    let mut by_aws: Vec<&InstanceId> = Vec::new();
    let mut by_person: Vec<&InstanceId> = Vec::new();
    let mut members: Vec<&InstanceId> = Vec::new();
    for f in open {
        match f {
            Finding::StrandedInstance { instance, cause, .. } => {
                members.push(instance);
                if *cause == StopCause::Retirement { by_aws.push(instance) } else { by_person.push(instance) }
            }
            Finding::StoppedStandalone { instance, .. } => by_aws.push(instance),
            _ => {}
        }
    }
    if !by_aws.is_empty() {
        let list = ids(&by_aws);
        steps.push(NextStep {
            title: if by_aws.len() == 1 {
                "Start the instance AWS stopped (a start moves it to healthy hardware), and wait until it runs with status checks OK".to_owned()
            } else {
                format!("Start the instances AWS stopped (a start moves them to healthy hardware), and wait until they run with status checks OK{}", first(&by_aws))
            },
            commands: vec![
                format!("aws ec2 start-instances --region {r} --instance-ids {list}"),
                format!("aws ec2 wait instance-status-ok --region {r} --instance-ids {list}"),
            ],
        });
    }
    if !by_person.is_empty() {
        let list = ids(&by_person);
        steps.push(NextStep {
            title: format!("Find out who stopped {list}{} and why (a person or tool called StopInstances; the guard never starts those); if it was not on purpose, start {}", first(&by_person), if by_person.len() == 1 { "it" } else { "them" }),
            commands: vec![
                format!("aws ec2 describe-instances --region {r} --instance-ids {list} --query 'Reservations[].Instances[].[InstanceId,StateTransitionReason]' --output text"),
                format!("aws ec2 start-instances --region {r} --instance-ids {list}"),
            ],
        });
    }
    if !members.is_empty() {
        // set-instance-health takes one instance: a loop for several.
        let (title, command) = match members.as_slice() {
            [one] => (
                "Once it runs, mark it Healthy before resuming, or the group replaces it at once".to_owned(),
                format!(
                    "aws autoscaling set-instance-health --region {r} --instance-id {one} --health-status Healthy --no-should-respect-grace-period"
                ),
            ),
            _ => (
                format!(
                    "Once they run, mark them Healthy before resuming, or the group replaces them at once{}",
                    first(&members)
                ),
                format!(
                    "for id in {}; do aws autoscaling set-instance-health --region {r} --instance-id \"$id\" --health-status Healthy --no-should-respect-grace-period; done",
                    ids(&members)
                ),
            ),
        };
        steps.push(NextStep { title, commands: vec![command] });
    }
    for f in open {
        if let Some(step) = group_step(f, r, now) {
            steps.push(step);
        }
    }
    if open.iter().any(|f| matches!(f, Finding::StrandedInstance { .. } | Finding::StoppedStandalone { .. })) {
        steps.push(NextStep {
            title: "When AWS state is right, check the application itself (e.g. the cluster's health)".into(),
            commands: vec![],
        });
    }
    steps
}

/// The step one finding asks for, beyond starting instances.
fn group_step(f: &Finding, r: &str, now: DateTime<Utc>) -> Option<NextStep> {
    Some(match f {
        Finding::SuspendedProcesses { group, processes, .. } => {
            let q = shell_quote(group.as_str());
            let (person, other): (Vec<_>, Vec<_>) = processes.iter().partition(|p| p.by == Suspender::Person);
            let names = |list: &[&crate::findings::ClassifiedProcess]| {
                list.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(" ")
            };
            let mut commands = vec![format!(
                "aws autoscaling describe-auto-scaling-groups --region {r} --auto-scaling-group-names {q} --query 'AutoScalingGroups[].Instances[].[InstanceId,LifecycleState,HealthStatus]' --output text"
            )];
            if !other.is_empty() {
                commands.push(format!(
                    "aws autoscaling resume-processes --region {r} --auto-scaling-group-name {q} --scaling-processes {}",
                    names(&other)
                ));
            }
            let title = if person.is_empty() {
                format!("When every member of {} runs and is Healthy, resume its processes", shown(group.as_str(), 255))
            } else {
                format!(
                    "When every member of {} runs and is Healthy, resume its processes; {} {} suspended by a person: ask them before resuming",
                    shown(group.as_str(), 255),
                    names(&person),
                    if person.len() == 1 { "was" } else { "were" }
                )
            };
            NextStep { title, commands }
        }
        Finding::RecoveryInProgress { group, .. } => NextStep {
            title: format!(
                "Nothing to do yet: the guard resumes {} once every member runs and is healthy; if that does not happen, a REPAIR STALLED notice follows",
                shown(group.as_str(), 255)
            ),
            commands: vec![],
        },
        Finding::RecoveryStalled { instance, .. } => NextStep {
            title: format!(
                "Look at why {instance} fails its status checks (system log, screenshot); stop and start it again, or replace it"
            ),
            commands: vec![
                format!("aws ec2 describe-instance-status --region {r} --instance-ids {instance}"),
                format!("aws ec2 get-console-output --region {r} --instance-id {instance} --latest"),
            ],
        },
        Finding::RetirementScheduled { instance, deadline, outlook, group, .. } => {
            retirement_step(instance, *deadline, *outlook, group.is_some(), r, now)
        }
        Finding::Unrecoverable { instance, .. } => NextStep {
            title: format!(
                "Replace {instance}: resume the group's Launch process (below) or launch a replacement yourself"
            ),
            commands: vec![format!("aws ec2 describe-instances --region {r} --instance-ids {instance}")],
        },
        Finding::NotInspected { subject, account, .. } => NextStep {
            title: format!(
                "Check {} in {} yourself (or deploy the guard there)",
                shown(subject, 120),
                account.as_ref().map(|a| format!("account {a}")).unwrap_or_else(|| "its account".into())
            ),
            commands: vec![format!(
                "aws ec2 describe-instance-status --region {r} --include-all-instances --instance-ids {}",
                shell_quote(subject)
            )],
        },
        Finding::ReadIncomplete { unchecked, .. } => {
            let mut commands = vec![
                format!(
                    "aws ec2 describe-instances --region {r} --filters Name=instance-state-name,Values=stopping,stopped --query 'Reservations[].Instances[].[InstanceId,StateReason.Code,Tags[?Key==`aws:autoscaling:groupName`]|[0].Value]' --output text"
                ),
                format!(
                    "aws autoscaling describe-auto-scaling-groups --region {r} --query 'AutoScalingGroups[?SuspendedProcesses]'"
                ),
            ];
            if !unchecked.is_empty() {
                let ids: Vec<&str> = unchecked.iter().map(InstanceId::as_str).collect();
                commands.push(format!(
                    "aws autoscaling describe-auto-scaling-instances --region {r} --instance-ids {}",
                    ids.join(" ")
                ));
            }
            NextStep {
                title: "Read what the sweep could not (the error says why: throttling, a slow page, a missing permission), then run the sweep again".into(),
                commands,
            }
        }
        Finding::StrandedInstance { .. } | Finding::StoppedStandalone { .. } => return None,
    })
}

fn retirement_step(
    instance: &InstanceId,
    deadline: Option<DateTime<Utc>>,
    outlook: Outlook,
    in_group: bool,
    r: &str,
    now: DateTime<Utc>,
) -> NextStep {
    let by = deadline
        .map(|d| format!("before {}{}", time(Some(d)), until(d, now)))
        .unwrap_or_else(|| "before the deadline".into());
    match outlook {
        Outlook::Replaced => NextStep {
            title: format!(
                "Nothing is needed: its group replaces it. To choose the moment yourself, {by}, have the group replace it now"
            ),
            commands: vec![format!(
                "aws autoscaling terminate-instance-in-auto-scaling-group --region {r} --instance-id {instance} --no-should-decrement-desired-capacity"
            )],
        },
        Outlook::StaysStopped => NextStep {
            title: format!(
                "{by}, at a time you choose, stop and start {instance} yourself: the start moves it to healthy hardware and clears the event{}",
                if in_group { " (the group's suspended processes keep it from being replaced meanwhile)" } else { "" }
            ),
            commands: vec![
                format!("aws ec2 stop-instances --region {r} --instance-ids {instance}"),
                format!("aws ec2 wait instance-stopped --region {r} --instance-ids {instance}"),
                format!("aws ec2 start-instances --region {r} --instance-ids {instance}"),
                format!("aws ec2 wait instance-status-ok --region {r} --instance-ids {instance}"),
            ],
        },
        Outlook::Lost => NextStep {
            title: format!(
                "{by}, copy what {instance} keeps on its instance store elsewhere and replace it: it cannot be stopped and started, and nothing replaces it"
            ),
            commands: vec![format!(
                "aws ec2 describe-instances --region {r} --instance-ids {instance} --query 'Reservations[].Instances[].[InstanceId,InstanceType,Placement.AvailabilityZone]' --output text"
            )],
        },
    }
}
