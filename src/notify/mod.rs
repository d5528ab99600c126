//! Notify stage: findings, outcomes and what is still pending → one `Notice`
//! (subject, plain-text body with the exact `aws` CLI commands an operator needs,
//! a machine-readable JSON part, and message attributes for subscription filters).
//! Rendering is pure; `sns.rs` publishes through the `Notifier` port.

pub mod sns;

use crate::actions::{Outcome, Status};
use crate::domain::TopicArn;
use crate::domain::{AsgName, InstanceId};
use crate::escalation::Record;
use crate::findings::{Finding, Severity};
use crate::policy::{Action, Skip};
use crate::text::shown;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::future::Future;

/// SNS allows subjects under 100 characters.
pub const SUBJECT_MAX: usize = 99;
/// SNS messages are limited to 256 KiB; stay well below.
const BODY_MAX: usize = 200_000;
/// Lines per section before the rest is summarised.
const SECTION_MAX: usize = 50;

/// A message attribute value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum AttributeValue {
    String(String),
    /// Sent as SNS `String.Array` (a JSON array) so filter policies can match any element.
    StringArray(Vec<String>),
}

/// One notice, ready to publish.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub subject: String,
    pub body: String,
    pub severity: Severity,
    pub attributes: BTreeMap<&'static str, AttributeValue>,
}

/// Everything a notice is made from.
pub struct NoticeInput<'a> {
    pub findings: &'a [&'a Finding],
    pub outcomes: &'a [Outcome],
    pub pending: &'a [Skip],
    /// Findings still present after the guard acted.
    pub remaining: &'a [&'a Finding],
    pub dry_run: bool,
    pub region: &'a str,
    pub account: Option<&'a str>,
    pub environment: &'a str,
    pub trigger: &'a str,
    pub now: DateTime<Utc>,
    /// The escalation tier this notice goes to (0: the first).
    pub tier: usize,
    /// One line per condition on how long it has been open and why this tier.
    pub escalation: &'a [String],
    /// Why the guard stopped before the repair could go on, when it did.
    pub cut_short: Option<&'a str>,
}

/// The publish port; answers the message id.
pub trait Notifier: Sync {
    fn publish(
        &self,
        topic: &TopicArn,
        notice: &Notice,
    ) -> impl Future<Output = Result<String, crate::error::AwsFailure>> + Send;
}

/// Renders the notice for an invocation that found something.
pub fn render(input: &NoticeInput<'_>) -> Notice {
    let severity = input
        .findings
        .iter()
        .map(|f| f.severity())
        .chain(input.outcomes.iter().filter(|o| o.is_failed()).map(|_| Severity::Critical))
        .max()
        .unwrap_or(Severity::Info);
    let groups: BTreeSet<String> = input.findings.iter().filter_map(|f| f.group()).map(|g| g.to_string()).collect();
    let kinds: BTreeSet<String> = input.findings.iter().map(|f| f.kind().to_owned()).collect();
    let subject = subject(input, severity, &groups);
    let body = body(input, severity);

    let mut attributes = base_attributes(severity, input.region, input.account, input.environment);
    attributes.insert("finding_kinds", AttributeValue::StringArray(kinds.into_iter().collect()));
    attributes.insert("groups", AttributeValue::StringArray(groups.into_iter().collect()));
    attributes.insert("dry_run", AttributeValue::String(input.dry_run.to_string()));
    attributes.insert("tier", AttributeValue::String(input.tier.to_string()));
    attributes.insert("notice", AttributeValue::String("problem".into()));
    Notice { subject, body, severity, attributes }
}

/// The notice that conditions notified before are gone, for one topic.
pub fn render_recovered(
    records: &[&Record],
    outcomes: &[Outcome],
    tier: usize,
    region: &str,
    account: Option<&str>,
    environment: &str,
    now: DateTime<Utc>,
) -> Notice {
    let lines: Vec<String> = records
        .iter()
        .map(|r| {
            let open = (now - r.first_seen).max(chrono::Duration::zero()).num_minutes();
            format!(
                "{}: first seen {}, open for {}h{:02}m, no longer seen",
                shown(&r.summary, 300),
                time(Some(r.first_seen)),
                open / 60,
                open % 60
            )
        })
        .collect();
    let mut body = format!(
        "retirement-guard: RESOLVED in {region} (account {}, environment {environment})\nChecked at {}.\n",
        account.unwrap_or("unknown"),
        time(Some(now))
    );
    section(&mut body, "RESOLVED", &lines);
    let done: Vec<String> = outcomes.iter().map(describe_outcome).collect();
    section(&mut body, "WHAT THE GUARD DID", &done);
    body.push_str("\nNothing more is needed from AWS; check that the application itself recovered.\n");
    let what = match records {
        [one] => shown(&one.summary, 200),
        many => format!("{} conditions resolved", many.len()),
    };
    let mut attributes = base_attributes(Severity::Info, region, account, environment);
    attributes.insert("notice", AttributeValue::String("recovered".into()));
    attributes.insert("tier", AttributeValue::String(tier.to_string()));
    let subject = fit_subject(&format!("[retirement-guard] RESOLVED: {what} ({region})"));
    Notice { subject, body, severity: Severity::Info, attributes }
}

/// The attributes every notice carries, for subscription filter policies.
fn base_attributes(
    severity: Severity,
    region: &str,
    account: Option<&str>,
    environment: &str,
) -> BTreeMap<&'static str, AttributeValue> {
    let mut attributes = BTreeMap::from([
        ("severity", AttributeValue::String(severity.as_str().into())),
        ("region", AttributeValue::String(region.into())),
        ("environment", AttributeValue::String(environment.into())),
    ]);
    if let Some(account) = account {
        attributes.insert("account", AttributeValue::String(account.into()));
    }
    attributes
}

/// A notice for an event the guard recognised but could not read.
pub fn render_rejected(error: &str, region: &str, account: Option<&str>, environment: &str) -> Notice {
    let body = format!(
        "retirement-guard could not read an event it is meant to handle ({region}, environment {environment}).\n\n\
         Error: {}\n\n\
         Nothing was changed. The scheduled sweep still checks every group and stopped instance.\n\
         What to do: look up the event in the function's log (it is logged with this error) and check the\n\
         instances it names by hand:\n  aws ec2 describe-instance-status --region {region} --include-all-instances\n",
        shown(error, 2000)
    );
    let mut attributes = base_attributes(Severity::Warning, region, account, environment);
    attributes.insert("finding_kinds", AttributeValue::StringArray(vec!["RejectedEvent".into()]));
    let subject = fit_subject(&format!("[retirement-guard] WARNING: event rejected: {error}"));
    Notice { subject, body, severity: Severity::Warning, attributes }
}

fn subject(input: &NoticeInput<'_>, severity: Severity, groups: &BTreeSet<String>) -> String {
    let count = |kind: &str| input.findings.iter().filter(|f| f.kind() == kind).count();
    let plural = |n: usize, one: &str, many: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {many}") };
    let in_groups = if groups.is_empty() {
        String::new()
    } else {
        format!(" in {}", groups.iter().cloned().collect::<Vec<_>>().join(", "))
    };
    let what = match (
        count("StrandedInstance"),
        count("StoppedStandalone"),
        count("Unrecoverable"),
        count("RetirementScheduled"),
    ) {
        _ if count("RecoveryStalled") > 0 => {
            format!("recovery stalled{in_groups} ({})", plural(count("RecoveryStalled"), "instance", "instances"))
        }
        (n, _, _, _) if n > 0 => format!("{} stranded{in_groups}", plural(n, "instance", "instances")),
        (_, n, _, _) if n > 0 => format!("{} stopped by AWS", plural(n, "instance", "instances")),
        (_, _, n, _) if n > 0 => format!("{} unrecoverable", plural(n, "instance", "instances")),
        (_, _, _, n) if n > 0 => format!("{} scheduled{in_groups}", plural(n, "retirement", "retirements")),
        _ if count("ReadIncomplete") > 0 => "sweep could not read everything".to_owned(),
        _ if count("NotInspected") > 0 => {
            format!("{} announced, not inspected", plural(count("NotInspected"), "retirement", "retirements"))
        }
        _ if count("RecoveryInProgress") > 0 => format!("recovery in progress{in_groups}"),
        _ => format!("processes suspended{in_groups}"),
    };
    // A picture known to be partial says so even when something else leads the subject.
    let what = if count("ReadIncomplete") > 0 && !what.starts_with("sweep could not") {
        format!("{what} (sweep could not read everything)")
    } else {
        what
    };
    let done = |name: &str| input.outcomes.iter().filter(|o| o.is_done() && o.action.name() == name).count();
    let failed = input.outcomes.iter().filter(|o| o.is_failed()).count();
    let mut after: Vec<String> = Vec::new();
    if done("start_instance") > 0 {
        after.push(format!("{} started", done("start_instance")));
    }
    if done("resume_processes") > 0 {
        after.push("resumed".into());
    }

    let after = if after.is_empty() { String::new() } else { format!("; {}", after.join(", ")) };
    let dry = if input.dry_run { "DRY RUN " } else { "" };
    let region = format!(" ({})", input.region);
    let tier = if input.tier > 0 { format!(" tier {}", input.tier) } else { String::new() };
    // A failure goes first: a long subject is cut at its end.
    let failed = if failed > 0 { format!(", {failed} FAILED") } else { String::new() };
    let head = format!("{dry}[retirement-guard] {}{tier}{failed}: {what}{after}", severity.as_str().to_uppercase());
    // Keep the region visible: cut the middle rather than the end.
    let room = SUBJECT_MAX.saturating_sub(region.chars().count());
    let head = fit_subject(&head);
    if head.chars().count() <= room {
        format!("{head}{region}")
    } else {
        format!("{}…{region}", head.chars().take(room.saturating_sub(1)).collect::<String>())
    }
}

/// A subject from any text: one line of at most `SUBJECT_MAX` characters.
pub fn fit_subject(text: &str) -> String {
    shown(text, SUBJECT_MAX)
}

/// Quotes a value for a POSIX shell: group names may contain almost any character.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", shown(text, 255).replace('\'', r"'\''"))
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_else(|| "an unknown time".into())
}

fn age(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match since {
        Some(t) if t <= now => {
            let m = (now - t).num_minutes();
            format!(" since {} ({}h{:02}m ago)", time(Some(t)), m / 60, m % 60)
        }
        Some(t) => format!(" since {}", time(Some(t))),
        None => String::new(),
    }
}

fn section(out: &mut String, title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}");
    for line in lines.iter().take(SECTION_MAX) {
        let _ = writeln!(out, "  - {line}");
    }
    if lines.len() > SECTION_MAX {
        let _ = writeln!(out, "  … and {} more (see the JSON part and the function's log)", lines.len() - SECTION_MAX);
    }
}

fn describe(f: &Finding, now: DateTime<Utc>) -> String {
    match f {
        Finding::StrandedInstance { instance, group, state, cause, since, blocking, .. } => format!(
            "{instance} in group {} is {state}{}: {}; the group will not replace it while {} suspended",
            shown(group.as_str(), 255),
            age(*since, now),
            cause.describe(),
            blocking.join(", ")
        ),
        Finding::SuspendedProcesses { group, processes, stranded } => {
            let list: Vec<String> = processes
                .iter()
                .map(|p| match p.by {
                    crate::domain::Suspender::Person => format!("{} (by a person: {})", p.name, shown(&p.reason, 80)),
                    crate::domain::Suspender::AwsOrUnknown if p.reason.is_empty() => {
                        format!("{} (by AWS or unknown, no reason given)", p.name)
                    }
                    crate::domain::Suspender::AwsOrUnknown => {
                        format!("{} (by AWS or unknown: {})", p.name, shown(&p.reason, 80))
                    }
                })
                .collect();
            format!(
                "group {} has suspended processes: {}; {stranded} stranded",
                shown(group.as_str(), 255),
                list.join(", ")
            )
        }
        Finding::RetirementScheduled { instance, group, code, deadline, root_device, outlook, source } => format!(
            "{instance}{} has {code} scheduled for {} (root device {root_device:?}, from {source}): {outlook}",
            group.as_ref().map(|g| format!(" (group {})", shown(g.as_str(), 255))).unwrap_or_default(),
            time(*deadline)
        ),
        Finding::StoppedStandalone { instance, cause, since } => {
            format!("{instance} (no Auto Scaling group) is stopped{}: {}", age(*since, now), cause.describe())
        }
        Finding::Unrecoverable { instance, group, why } => format!(
            "{instance}{} cannot be recovered by the guard: {why}",
            group.as_ref().map(|g| format!(" (group {})", shown(g.as_str(), 255))).unwrap_or_default()
        ),
        Finding::RecoveryInProgress { group, since, waiting_for } => {
            let waiting = if waiting_for.is_empty() {
                "its processes are still suspended".to_owned()
            } else {
                format!("waiting for {}", waiting_for.join("; "))
            };
            format!(
                "the guard is repairing group {}{}: {waiting}; its processes stay suspended until every member runs and is healthy",
                shown(group.as_str(), 255),
                age(*since, now)
            )
        }
        Finding::RecoveryStalled { group, instance, why } => format!(
            "RECOVERY STALLED: {instance}, started by the guard in group {}, {why}; the group stays suspended and needs a person",
            shown(group.as_str(), 255)
        ),
        Finding::NotInspected { subject, account, code, deadline, why } => format!(
            "{code} announced for {}{} (deadline {}): NOT INSPECTED, {why}; check it where it lives",
            shown(subject, 120),
            account.as_ref().map(|a| format!(" in account {a}")).unwrap_or_default(),
            time(*deadline)
        ),
        Finding::ReadIncomplete { parts, unchecked } => {
            let parts: Vec<String> = parts
                .iter()
                .map(|p| format!("{} ({} read before: {})", shown(&p.part, 600), p.read, shown(&p.error, 300)))
                .collect();
            let unchecked = if unchecked.is_empty() {
                String::new()
            } else {
                let ids: Vec<&str> = unchecked.iter().map(InstanceId::as_str).collect();
                format!(
                    "; UNCHECKED: stopped members of groups it could not read, possibly stranded: {}",
                    ids.join(" ")
                )
            };
            format!(
                "the sweep COULD NOT READ everything, so what is listed here may not be all there is: {}{unchecked}; nothing was planned for what it could not read, and no earlier problem is called resolved until a sweep reads everything",
                parts.join("; ")
            )
        }
    }
}

fn describe_outcome(o: &Outcome) -> String {
    let what = match &o.action {
        Action::ResumeProcesses { group, processes } => {
            format!("resume {} in {}", processes.join(", "), shown(group.as_str(), 255))
        }
        other => format!("{} {}", other.name().replace('_', " "), shown(&other.target(), 255)),
    };
    let how = match &o.status {
        Status::Done { detail } => format!("done ({detail})"),
        Status::DryRun { after: None } => "would be done (DRY RUN)".into(),
        Status::DryRun { after: Some(_) } => {
            "would follow (DRY RUN) once the steps above succeed and the started instances pass their status checks"
                .into()
        }
        Status::Gone { detail } => format!("nothing to do, it no longer exists ({})", shown(detail, 200)),
        Status::Failed { failure } => format!(
            "FAILED: {} {} ({:?})",
            failure.code.as_deref().unwrap_or("error"),
            shown(&failure.message, 300),
            failure.kind
        ),
        Status::NotAttempted { reason } => format!("not attempted: {reason}"),
    };
    format!("{what}: {how}")
}

/// The commands that would finish the job by hand, from what is still wrong.
fn next_steps(input: &NoticeInput<'_>) -> Vec<String> {
    let r = input.region;
    let mut lines = Vec::new();
    let mut stopped: Vec<&InstanceId> = Vec::new();
    let mut groups: BTreeMap<&AsgName, Vec<String>> = BTreeMap::new();
    for f in input.remaining {
        match f {
            Finding::StrandedInstance { instance, .. } | Finding::StoppedStandalone { instance, .. } => {
                stopped.push(instance)
            }
            Finding::SuspendedProcesses { group, processes, .. } => {
                groups.insert(group, processes.iter().map(|p| p.name.clone()).collect());
            }
            _ => {}
        }
    }
    if !stopped.is_empty() {
        let ids = stopped.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(" ");
        lines.push(format!("Start the stopped instances (moves them to healthy hardware):\n      aws ec2 start-instances --region {r} --instance-ids {ids}"));
        lines.push(format!("Wait until they run with status checks OK:\n      aws ec2 wait instance-status-ok --region {r} --instance-ids {ids}"));
    }
    for (group, processes) in &groups {
        let q = shell_quote(group.as_str());
        let members: Vec<&InstanceId> = input
            .remaining
            .iter()
            .filter_map(|f| match f {
                Finding::StrandedInstance { instance, group: g, .. } if g == *group => Some(instance),
                _ => None,
            })
            .collect();
        for id in members {
            lines.push(format!(
                "Before resuming, mark restarted members Healthy (or the group replaces them at once):\n      aws autoscaling set-instance-health --region {r} --instance-id {id} --health-status Healthy --no-should-respect-grace-period"
            ));
        }
        lines.push(format!(
            "When every member of {} runs and is healthy, resume its processes (if nobody suspended them on purpose):\n      aws autoscaling describe-auto-scaling-groups --region {r} --auto-scaling-group-names {q}\n      aws autoscaling resume-processes --region {r} --auto-scaling-group-name {q} --scaling-processes {}",
            shown(group.as_str(), 255),
            processes.join(" ")
        ));
    }
    for f in input.remaining {
        match f {
            Finding::RecoveryStalled { instance, .. } => lines.push(format!(
                "Look at why {instance} fails its status checks (system log, screenshot); stop and start it again, or replace it:\n      aws ec2 describe-instance-status --region {r} --instance-ids {instance}\n      aws ec2 get-console-output --region {r} --instance-id {instance} --latest"
            )),
            Finding::ReadIncomplete { unchecked, .. } => {
                let ids: Vec<&str> = unchecked.iter().map(InstanceId::as_str).collect();
                lines.push(format!(
                    "Read what the sweep could not (the error says why: throttling, a slow page, a missing permission); then run the sweep again:\n      aws ec2 describe-instances --region {r} --filters Name=instance-state-name,Values=stopping,stopped --query 'Reservations[].Instances[].[InstanceId,StateReason.Code,Tags[?Key==`aws:autoscaling:groupName`]|[0].Value]' --output text\n      aws autoscaling describe-auto-scaling-groups --region {r} --query 'AutoScalingGroups[?SuspendedProcesses]'"
                ));
                if !ids.is_empty() {
                    lines.push(format!(
                        "Check the groups of the unchecked stopped instances:\n      aws autoscaling describe-auto-scaling-instances --region {r} --instance-ids {}",
                        ids.join(" ")
                    ));
                }
            }
            Finding::NotInspected { subject, account, .. } => lines.push(format!(
                "Check {} in {} yourself (or deploy the guard there):\n      aws ec2 describe-instance-status --region {r} --include-all-instances --instance-ids {}",
                shown(subject, 120),
                account.as_ref().map(|a| format!("account {a}")).unwrap_or_else(|| "its account".into()),
                shell_quote(subject)
            )),
            _ => {}
        }
    }
    if lines.is_empty() {
        lines.push(
            "Nothing is left for AWS to fix: check that the application itself recovered (e.g. cluster health).".into(),
        );
    }
    lines.push(format!("Console: https://{r}.console.aws.amazon.com/ec2/home?region={r}#AutoScalingGroups:"));
    lines
}

fn body(input: &NoticeInput<'_>, severity: Severity) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "retirement-guard: {} in {} (account {}, environment {})",
        severity.as_str().to_uppercase(),
        input.region,
        input.account.unwrap_or("unknown"),
        input.environment
    );
    let _ = writeln!(out, "Trigger: {}. Checked at {}.", shown(input.trigger, 300), time(Some(input.now)));
    if input.dry_run {
        let _ = writeln!(out, "DRY RUN: nothing was changed; the steps below are what the guard would do.");
    }
    if let Some(why) = input.cut_short {
        let _ = writeln!(out, "STOPPED EARLY: {}", shown(why, 500));
    }
    section(&mut out, "ESCALATION", input.escalation);
    let found: Vec<String> = input.findings.iter().map(|f| describe(f, input.now)).collect();
    section(&mut out, "WHAT HAPPENED", &found);
    let done: Vec<String> = input.outcomes.iter().map(describe_outcome).collect();
    section(&mut out, if input.dry_run { "WHAT THE GUARD WOULD DO (DRY RUN)" } else { "WHAT THE GUARD DID" }, &done);
    let pending: Vec<String> = input
        .pending
        .iter()
        .map(|s| format!("{} {}: {}", s.action.replace('_', " "), shown(&s.target, 300), s.reason))
        .collect();
    section(&mut out, "NOT DONE, AND WHY", &pending);
    let now: Vec<String> = input.remaining.iter().map(|f| describe(f, input.now)).collect();
    if now.is_empty() {
        let _ = writeln!(out, "\nSTATE NOW\n  - all clear: nothing is stranded any more");
    } else {
        section(&mut out, "STILL WRONG NOW", &now);
    }
    section(&mut out, "WHAT TO DO NEXT", &next_steps(input));

    #[derive(Serialize)]
    struct Machine<'a> {
        severity: Severity,
        dry_run: bool,
        findings: &'a [&'a Finding],
        outcomes: &'a [Outcome],
        remaining: &'a [&'a Finding],
    }
    let machine = Machine {
        severity,
        dry_run: input.dry_run,
        findings: input.findings,
        outcomes: input.outcomes,
        remaining: input.remaining,
    };
    let json = serde_json::to_string(&machine).unwrap_or_default();
    if out.len() + json.len() < BODY_MAX {
        let _ = write!(out, "\n--- machine-readable ---\n{json}\n");
    } else if out.len() > BODY_MAX {
        let mut cut = BODY_MAX;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("\n… (truncated; the full report is in the function's log)\n");
    }
    out
}

#[cfg(test)]
mod tests;
