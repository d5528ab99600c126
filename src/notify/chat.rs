//! The chat message of a notice: an AWS Chatbot (Amazon Q Developer in chat
//! applications) custom notification, which Slack and Microsoft Teams render. The
//! `threadId` is stable per account, region and group (or instance), so reminders and
//! the resolution land in one thread. Chatbot drops a message of another shape without
//! error: `version`, `source` and `content.description` are always set.

use super::view::View;
use crate::text::shown;
use serde::Serialize;

/// Chat text stays short: a thread is read on a phone.
const DESCRIPTION_MAX: usize = 3_000;
const STEPS_MAX: usize = 8;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub version: &'static str,
    pub source: &'static str,
    pub id: String,
    pub content: Content,
    pub metadata: Metadata,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    pub text_type: &'static str,
    pub title: String,
    pub description: String,
    pub next_steps: Vec<String>,
    pub keywords: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub thread_id: String,
    pub summary: String,
    pub event_type: String,
    pub related_resources: Vec<String>,
    pub additional_context: AdditionalContext,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdditionalContext {
    pub severity: &'static str,
    pub account: String,
    pub region: String,
    pub environment: String,
    pub checked_at: String,
}

/// The custom notification for `view`.
pub fn message(view: &View) -> ChatMessage {
    let c = &view.context;
    let icon = match view.severity {
        crate::findings::Severity::Critical => ":rotating_light:",
        crate::findings::Severity::High => ":warning:",
        crate::findings::Severity::Warning => ":large_yellow_circle:",
        crate::findings::Severity::Info => ":white_check_mark:",
    };
    let dry = if c.dry_run { " DRY RUN" } else { "" };
    let title = shown(&format!("{icon}{dry} {}: {}", view.severity.as_str().to_uppercase(), view.short()), 250);
    let mut description = String::new();
    for w in &view.warnings {
        description.push_str(&format!("*{w}*\n"));
    }
    description.push_str(&view.headline());
    description.push('\n');
    for p in view.parts.iter().skip(1).take(5) {
        description.push_str(&format!("• {}\n", p.headline));
    }
    let did = view.done_lines();
    if !did.is_empty() {
        description.push_str(&format!("*The guard{}:* {}\n", if c.dry_run { " would" } else { "" }, did.join("; ")));
    }
    description.push_str(&format!(
        "_{} · account {} · {} · {}_",
        c.region,
        c.account.as_deref().unwrap_or("unknown"),
        c.environment,
        c.checked_at.format("%Y-%m-%d %H:%M UTC")
    ));
    let next_steps = view
        .steps
        .iter()
        .take(STEPS_MAX)
        .map(|s| match s.commands.first() {
            Some(cmd) => shown(&format!("{} `{cmd}`", s.title), 600),
            None => shown(&s.title, 600),
        })
        .collect();
    let mut related: Vec<String> = view.parts.iter().map(|p| p.subject.clone()).collect();
    related.truncate(20);
    let mut keywords = vec![view.severity.as_str().to_owned(), c.region.clone(), c.environment.clone()];
    keywords.extend(c.account.clone());
    keywords.extend(view.parts.first().map(|p| shown(&p.subject, 60)));
    ChatMessage {
        version: "1.0",
        source: "custom",
        id: format!("{}/{:?}/{}", view.thread(), view.notice, c.checked_at.timestamp()),
        content: Content {
            text_type: "client-markdown",
            title,
            description: cut(&description, DESCRIPTION_MAX),
            next_steps,
            keywords,
        },
        metadata: Metadata {
            thread_id: view.thread(),
            summary: shown(&view.headline(), 300),
            event_type: event_type(view),
            related_resources: related,
            additional_context: AdditionalContext {
                severity: view.severity.as_str(),
                account: c.account.clone().unwrap_or_default(),
                region: c.region.clone(),
                environment: c.environment.clone(),
                checked_at: c.checked_at.to_rfc3339(),
            },
        },
    }
}

/// The lead condition's kind (`stranded_group`, …), else the notice's (`rejected`).
fn event_type(view: &View) -> String {
    let name = match view.parts.first() {
        Some(p) => serde_json::to_value(p.kind),
        None => serde_json::to_value(view.notice),
    };
    name.ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// At most `max` characters, line breaks kept (every line was made safe already).
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}
