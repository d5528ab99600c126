//! The machine-readable notice: a versioned JSON document (schema
//! `docs/notice-schema.json`, described in `docs/notice-schema.md`) with the
//! conditions and their findings, what the guard did and did not do, and the next
//! steps as data. SQS, Lambda, HTTP (when chat has a topic of its own), Firehose and
//! `email-json` subscribers receive it; a change that breaks readers bumps `version`.

use super::view::{Context, NextStep, NoticeKind, Part, View};
use crate::actions::Outcome;
use crate::findings::Severity;
use crate::policy::Skip;
use serde::Serialize;

/// The schema's name and version; readers check both.
pub const SCHEMA: &str = "retirement-guard/notice";
pub const VERSION: u32 = 1;
/// Bytes of conditions listed in full; the rest are counted in `omitted`, so that the
/// whole structured message (text, document, chat, SMS) stays under SNS's 256 KiB.
const CONDITIONS_BUDGET: usize = 100_000;

#[derive(Serialize)]
pub struct Document<'a> {
    pub schema: &'static str,
    pub version: u32,
    pub notice: NoticeKind,
    pub severity: Severity,
    pub headline: String,
    pub subject: &'a str,
    pub thread: String,
    #[serde(flatten)]
    pub context: &'a Context,
    pub warnings: &'a [String],
    pub conditions: &'a [Part],
    /// Conditions left out of `conditions` to keep the message within SNS's limit.
    pub omitted: usize,
    pub outcomes: &'a [Outcome],
    pub not_done: &'a [Skip],
    pub next_steps: &'a [NextStep],
    pub escalation: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

/// The document for `view`, published with `subject`.
pub fn of<'a>(view: &'a View, subject: &'a str) -> Document<'a> {
    let mut used = 0;
    let shown = view
        .parts
        .iter()
        .take_while(|p| {
            used += serde_json::to_string(p).map(|s| s.len()).unwrap_or(0);
            used <= CONDITIONS_BUDGET
        })
        .count();
    Document {
        schema: SCHEMA,
        version: VERSION,
        notice: view.notice,
        severity: view.severity,
        headline: view.headline(),
        subject,
        thread: view.thread(),
        context: &view.context,
        warnings: &view.warnings,
        conditions: &view.parts[..shown],
        omitted: view.parts.len() - shown,
        outcomes: &view.outcomes,
        not_done: &view.not_done,
        next_steps: &view.steps,
        escalation: &view.escalation,
        error: view.error.as_deref(),
    }
}
