//! Notify stage: findings, outcomes and what is still pending → one `Notice` in
//! every format SNS can deliver from one publish (`MessageStructure=json`): the email
//! text with the exact `aws` commands an operator needs, a pager-sized SMS, an AWS
//! Chatbot custom notification for chat, and the versioned JSON document for
//! machines. All four are written from one `view::View`; rendering is pure, and
//! `sns.rs` publishes through the `Notifier` port.

pub mod chat;
pub mod document;
pub mod email;
pub mod route;
pub mod sms;
pub mod sns;
pub mod view;

use crate::actions::Outcome;
use crate::domain::TopicArn;
use crate::escalation::{ConditionKind, Record};
use crate::findings::{Finding, Severity};
use crate::policy::Skip;
use crate::text::shown;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use view::{Context, NextStep, NoticeKind, Part, PartState, View};

/// SNS allows subjects under 100 characters.
pub const SUBJECT_MAX: usize = 99;
/// Lines per section before the rest is summarised.
const SECTION_MAX: usize = 50;

/// A message attribute value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum AttributeValue {
    String(String),
    /// Sent as SNS `String.Array` (a JSON array) so filter policies can match any element.
    StringArray(Vec<String>),
}

/// One notice, ready to publish, in every format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub subject: String,
    /// The email text.
    pub body: String,
    /// At most 140 bytes of ASCII, for SMS.
    pub sms: String,
    /// The AWS Chatbot custom notification (JSON).
    pub chat: String,
    /// The versioned machine-readable document (JSON, `docs/notice-schema.json`).
    pub document: String,
    pub severity: Severity,
    /// For subscription filter policies; SNS delivers them only with a plain publish.
    pub attributes: BTreeMap<&'static str, AttributeValue>,
}

impl Notice {
    /// The `MessageStructure=json` message: the document by default (SQS, Lambda, HTTP,
    /// Firehose, email-json), the text for email, the SMS text, and for `https` (AWS
    /// Chatbot) the chat message — or the document, when chat has a topic of its own.
    pub fn structured(&self, chat_on_https: bool) -> String {
        let mut parts = serde_json::Map::new();
        parts.insert("default".into(), self.document.clone().into());
        parts.insert("email".into(), self.body.clone().into());
        parts.insert("sms".into(), self.sms.clone().into());
        if chat_on_https {
            parts.insert("https".into(), self.chat.clone().into());
        }
        serde_json::Value::Object(parts).to_string()
    }

    /// The plain message (`NOTICE_FORMAT=plain`): the text, then the document.
    pub fn plain(&self) -> String {
        format!("{}\n--- machine-readable ---\n{}\n", self.body, self.document)
    }
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
    /// One plain line per condition on where its escalation stands.
    pub escalation: &'a [String],
    /// Why the guard stopped before the repair could go on, when it did.
    pub cut_short: Option<&'a str>,
    /// Where this notice could not go as the tags asked (routing), said at its top.
    pub warnings: &'a [String],
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
    let view = view::problem(input);
    let groups: BTreeSet<String> = input.findings.iter().filter_map(|f| f.group()).map(|g| g.to_string()).collect();
    let kinds: BTreeSet<String> = input.findings.iter().map(|f| f.kind().to_owned()).collect();
    let mut attributes = base_attributes(&view);
    attributes.insert("finding_kinds", AttributeValue::StringArray(kinds.into_iter().collect()));
    attributes.insert("groups", AttributeValue::StringArray(groups.into_iter().collect()));
    attributes.insert("dry_run", AttributeValue::String(input.dry_run.to_string()));
    attributes.insert("tier", AttributeValue::String(input.tier.to_string()));
    attributes.insert("notice", AttributeValue::String("problem".into()));
    finish(&view, attributes)
}

/// The notice that conditions notified before are gone, for one topic.
#[allow(clippy::too_many_arguments)]
pub fn render_recovered(
    records: &[&Record],
    outcomes: &[Outcome],
    warnings: &[String],
    tier: usize,
    region: &str,
    account: Option<&str>,
    environment: &str,
    now: DateTime<Utc>,
) -> Notice {
    let parts = records.iter().map(|r| resolved_part(r, now)).collect();
    let view = View {
        notice: NoticeKind::Resolved,
        severity: Severity::Info,
        context: context(region, account, environment, now, tier),
        warnings: warnings.iter().map(|w| shown(w, 500)).collect(),
        parts,
        outcomes: outcomes.to_vec(),
        not_done: vec![],
        steps: vec![NextStep {
            title: "Nothing more is needed from AWS; check that the application itself recovered (e.g. the cluster's health)"
                .into(),
            commands: vec![],
        }],
        escalation: vec![],
        error: None,
    };
    let mut attributes = base_attributes(&view);
    attributes.insert("notice", AttributeValue::String("recovered".into()));
    attributes.insert("tier", AttributeValue::String(tier.to_string()));
    finish(&view, attributes)
}

fn resolved_part(r: &Record, now: DateTime<Utc>) -> Part {
    let (kind, subject) = ConditionKind::of_key(&r.key).unwrap_or((ConditionKind::ReadIncomplete, r.key.as_str()));
    let open = (now - r.first_seen).max(chrono::Duration::zero()).num_minutes();
    let summary = shown(&r.summary, 300);
    Part {
        key: r.key.clone(),
        kind,
        subject: subject.to_owned(),
        severity: Severity::Info,
        state: PartState::Resolved,
        headline: format!(
            "RESOLVED: {summary}: no longer seen, after {}h{:02}m open (first seen {})",
            open / 60,
            open % 60,
            time(Some(r.first_seen))
        ),
        short: format!("RESOLVED {summary}"),
        details: vec![],
        findings: vec![],
    }
}

/// A notice for an event the guard recognised but could not read.
pub fn render_rejected(
    error: &str,
    region: &str,
    account: Option<&str>,
    environment: &str,
    now: DateTime<Utc>,
) -> Notice {
    let view = View {
        notice: NoticeKind::Rejected,
        severity: Severity::Warning,
        context: context(region, account, environment, now, 0),
        warnings: vec![],
        parts: vec![],
        outcomes: vec![],
        not_done: vec![],
        steps: vec![NextStep {
            title: "Look up the event in the function's log (it is logged with this error) and check the instances it names by hand".into(),
            commands: vec![format!("aws ec2 describe-instance-status --region {region} --include-all-instances")],
        }],
        escalation: vec![],
        error: Some(shown(error, 2000)),
    };
    let mut attributes = base_attributes(&view);
    attributes.insert("finding_kinds", AttributeValue::StringArray(vec!["RejectedEvent".into()]));
    finish(&view, attributes)
}

fn context(region: &str, account: Option<&str>, environment: &str, now: DateTime<Utc>, tier: usize) -> Context {
    Context {
        region: region.to_owned(),
        account: account.map(str::to_owned),
        environment: environment.to_owned(),
        checked_at: now,
        trigger: None,
        dry_run: false,
        tier,
    }
}

/// Every format of `view`.
fn finish(view: &View, attributes: BTreeMap<&'static str, AttributeValue>) -> Notice {
    let subject = subject(view);
    let document = serde_json::to_string(&document::of(view, &subject)).unwrap_or_default();
    let chat = serde_json::to_string(&chat::message(view)).unwrap_or_default();
    Notice {
        body: email::text(view),
        sms: sms::text(view),
        chat,
        document,
        severity: view.severity,
        attributes,
        subject,
    }
}

/// The attributes every notice carries, for subscription filter policies.
fn base_attributes(view: &View) -> BTreeMap<&'static str, AttributeValue> {
    let c = &view.context;
    let mut attributes = BTreeMap::from([
        ("severity", AttributeValue::String(view.severity.as_str().into())),
        ("region", AttributeValue::String(c.region.clone())),
        ("environment", AttributeValue::String(c.environment.clone())),
    ]);
    if let Some(account) = &c.account {
        attributes.insert("account", AttributeValue::String(account.clone()));
    }
    attributes
}

/// `[retirement-guard] CRITICAL: es-data: 2/6 stopped by retirement, not replaced (us-east-1)`.
fn subject(view: &View) -> String {
    let done = |name: &str| view.outcomes.iter().filter(|o| o.is_done() && o.action.name() == name).count();
    let failed = view.outcomes.iter().filter(|o| o.is_failed()).count();
    let mut after: Vec<String> = Vec::new();
    if view.notice == NoticeKind::Problem && done("start_instance") > 0 {
        after.push(format!("{} started", done("start_instance")));
    }
    if view.notice == NoticeKind::Problem && done("resume_processes") > 0 {
        after.push("resumed".into());
    }
    let after = if after.is_empty() { String::new() } else { format!("; {}", after.join(", ")) };
    let dry = if view.context.dry_run { "DRY RUN " } else { "" };
    let level = match view.notice {
        NoticeKind::Resolved => "RESOLVED".to_owned(),
        _ if view.context.tier > 0 => format!("{} ESCALATED", view.severity.as_str().to_uppercase()),
        _ => view.severity.as_str().to_uppercase(),
    };
    let short = view.short();
    let short = short.strip_prefix("RESOLVED ").unwrap_or(&short);
    // A failure goes first: a long subject is cut at its end.
    let failed = if failed > 0 { format!(", {failed} FAILED") } else { String::new() };
    let head = fit_subject(&format!("{dry}[retirement-guard] {level}{failed}: {short}{after}"));
    // Keep the region visible: cut the middle rather than the end.
    let region = format!(" ({})", view.context.region);
    let room = SUBJECT_MAX.saturating_sub(region.chars().count());
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

/// " since 2026-11-20 10:00 UTC (2d02h ago)".
fn ago(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match since {
        Some(t) if t <= now => {
            let m = (now - t).num_minutes();
            let days = if m >= 1440 { format!("{}d", m / 1440) } else { String::new() };
            format!(" since {} ({days}{:02}h{:02}m ago)", time(Some(t)), (m % 1440) / 60, m % 60)
        }
        Some(t) => format!(" since {}", time(Some(t))),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
