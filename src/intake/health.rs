//! AWS Health events: a lenient reader of the `detail` of EC2 scheduled-change
//! events in both the older schema (bare ids, `resources`, `endTime`) and the
//! current one (instance ARNs, no `resources`, paging, backup copies).

use super::{IntakeError, MAX_TARGETS, account_id, brief, invalid, shown, text_at};
use crate::domain::InstanceId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;

const EVENT: &str = "AWS Health";

/// What the guard keeps of an AWS Health event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HealthEvent {
    pub event_arn: Option<String>,
    pub type_code: String,
    pub status_code: Option<String>,
    /// The deadline (`startTime`), when it could be read.
    pub deadline: Option<DateTime<Utc>>,
    pub instances: Vec<InstanceId>,
    /// `page/totalPages` of a paged event.
    pub page: Option<String>,
    pub affected_account: Option<String>,
    /// When AWS last updated the event (`lastUpdatedTime`, else the envelope's `time`).
    pub announced_at: Option<DateTime<Utc>>,
    pub description: Option<String>,
}

/// `Ok(Err(reason))` means the event is not one the guard acts on.
pub(super) fn parse(
    detail: &Value,
    resources: Option<&Value>,
    envelope_time: Option<DateTime<Utc>>,
    codes: &BTreeSet<String>,
) -> Result<Result<HealthEvent, String>, IntakeError> {
    if !detail.is_object() {
        return Err(IntakeError::Missing { event: EVENT, field: "detail" });
    }
    let service = text_at(detail, "service").unwrap_or("");
    if service != "EC2" {
        return Ok(Err(format!("AWS Health event for service \"{}\", not EC2", shown(service))));
    }
    let category = text_at(detail, "eventTypeCategory").unwrap_or("");
    if category != "scheduledChange" {
        return Ok(Err(format!("AWS Health EC2 event of category \"{}\", not scheduledChange", shown(category))));
    }
    let type_code =
        text_at(detail, "eventTypeCode").ok_or(IntakeError::Missing { event: EVENT, field: "detail.eventTypeCode" })?;
    // The code reaches notices and logs: only AWS's own shape (AWS_EC2_…) is accepted.
    if type_code.is_empty()
        || type_code.len() > 128
        || !type_code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(invalid(EVENT, "detail.eventTypeCode", type_code));
    }
    if !codes.is_empty() && !codes.contains(type_code) {
        return Ok(Err(format!("AWS Health event type {type_code} is not in HEALTH_EVENT_CODES")));
    }
    if text_at(detail, "backupEvent") == Some("true") {
        // AWS sends the copy to a second region; the stack in the instances' own
        // region handles the primary copy, and its sweep catches anything missed.
        let region = text_at(detail, "eventRegion").map(shown).unwrap_or_else(|| "another region".into());
        return Ok(Err(format!("backup copy (backupEvent=true) of an event for {region}")));
    }

    let entities = detail.get("affectedEntities").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let resources = resources.and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let values: Vec<&Value> = entities.iter().filter_map(|e| e.get("entityValue")).chain(resources).collect();
    if values.is_empty() {
        return Err(IntakeError::Missing {
            event: EVENT,
            field: "detail.affectedEntities[].entityValue (and no resources)",
        });
    }
    let mut instances = BTreeSet::new();
    for value in values {
        let text =
            value.as_str().ok_or_else(|| invalid(EVENT, "detail.affectedEntities[].entityValue", &brief(value)))?;
        // Dedicated-host variants name hosts (h-…), which are not instances.
        if let Some(id) = InstanceId::parse(text) {
            instances.insert(id);
        } else if !text.starts_with("h-") && !text.contains(":dedicated-host/") {
            return Err(invalid(EVENT, "detail.affectedEntities[].entityValue", text));
        }
    }
    if instances.is_empty() {
        return Ok(Err("AWS Health event names no EC2 instance (dedicated hosts only)".into()));
    }
    if instances.len() > MAX_TARGETS {
        return Err(invalid(
            EVENT,
            "detail.affectedEntities",
            &format!("{} instances (at most {MAX_TARGETS})", instances.len()),
        ));
    }
    let page = match (text_at(detail, "page"), text_at(detail, "totalPages")) {
        (Some(p), Some(t)) => Some(format!("{p}/{t}")),
        _ => None,
    };
    Ok(Ok(HealthEvent {
        event_arn: text_at(detail, "eventArn").map(str::to_owned),
        type_code: type_code.to_owned(),
        status_code: text_at(detail, "statusCode").map(str::to_owned),
        deadline: text_at(detail, "startTime").and_then(parse_time),
        instances: instances.into_iter().collect(),
        page,
        affected_account: account_id(text_at(detail, "affectedAccount")),
        announced_at: text_at(detail, "lastUpdatedTime").and_then(parse_time).or(envelope_time),
        description: detail
            .get("eventDescription")
            .and_then(|d| d.get(0))
            .and_then(|d| text_at(d, "latestDescription"))
            .map(|d| d.chars().take(2000).collect()),
    }))
}

/// Health times are RFC 1123 text ("Thu, 27 Aug 2026 13:19:03 GMT"); RFC 3339 is accepted too.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(text)
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
