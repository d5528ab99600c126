//! AWS Health events: a lenient reader of the `detail` of EC2 scheduled-change
//! events in both the older schema (bare ids, `resources`, `endTime`) and the
//! current one (instance ARNs, no `resources`, paging, backup copies).

use super::{IntakeError, MAX_TARGETS, SHOWN, account_id, brief, invalid, text_at};
use crate::domain::InstanceId;
use crate::text::shown;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub(super) const EVENT: &str = "AWS Health";

/// What the guard keeps of an AWS Health event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HealthEvent {
    pub event_arn: Option<String>,
    pub type_code: String,
    pub status_code: Option<String>,
    /// The deadline (`startTime`), when it could be read.
    pub deadline: Option<DateTime<Utc>>,
    /// Instances in the account that received the event: the scope the guard inspects.
    pub instances: Vec<InstanceId>,
    /// Instances of another account (org view: `affectedAccount`, or the ARN's account).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub elsewhere: Vec<(InstanceId, String)>,
    /// Entities that are no instance id or ARN (shown safely), named in the notice.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
    /// `page/totalPages` of a paged event.
    pub page: Option<String>,
    pub affected_account: Option<String>,
    /// When AWS last updated the event (`lastUpdatedTime`, else the envelope's `time`).
    pub announced_at: Option<DateTime<Utc>>,
    pub description: Option<String>,
}

/// `Ok(Err(reason))` means the event is not one the guard acts on. `receiver` is the
/// envelope's account: the one the guard acts in.
pub(super) fn parse(
    detail: &Value,
    resources: &[String],
    envelope_time: Option<DateTime<Utc>>,
    receiver: Option<&str>,
    codes: &BTreeSet<String>,
) -> Result<Result<HealthEvent, String>, IntakeError> {
    if !detail.is_object() {
        return Err(IntakeError::Missing { event: EVENT, field: "detail" });
    }
    let service = text_at(detail, "service").unwrap_or("");
    if service != "EC2" {
        return Ok(Err(format!("AWS Health event for service \"{}\", not EC2", shown(service, SHOWN))));
    }
    let category = text_at(detail, "eventTypeCategory").unwrap_or("");
    if category != "scheduledChange" {
        return Ok(Err(format!(
            "AWS Health EC2 event of category \"{}\", not scheduledChange",
            shown(category, SHOWN)
        )));
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
        let region = text_at(detail, "eventRegion").map(|r| shown(r, SHOWN)).unwrap_or_else(|| "another region".into());
        return Ok(Err(format!("backup copy (backupEvent=true) of an event for {region}")));
    }

    let entities = detail.get("affectedEntities").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let resources: Vec<Value> = resources.iter().cloned().map(Value::String).collect();
    let values: Vec<&Value> = entities.iter().filter_map(|e| e.get("entityValue")).chain(&resources).collect();
    if values.is_empty() {
        return Err(IntakeError::Missing {
            event: EVENT,
            field: "detail.affectedEntities[].entityValue (and no resources)",
        });
    }
    let affected = account_id(text_at(detail, "affectedAccount"));
    let entities = read_entities(&values, affected.as_deref(), receiver);
    let Entities { instances, elsewhere, unreadable } = entities;
    if instances.is_empty() && elsewhere.is_empty() {
        if let Some(first) = unreadable.first() {
            // Nothing readable at all: the event is broken, not partly unreadable.
            return Err(invalid(EVENT, "detail.affectedEntities[].entityValue", first));
        }
        return Ok(Err("AWS Health event names no EC2 instance (dedicated hosts only)".into()));
    }
    if instances.len() + elsewhere.len() > MAX_TARGETS {
        return Err(invalid(
            EVENT,
            "detail.affectedEntities",
            &format!("{} instances (at most {MAX_TARGETS})", instances.len() + elsewhere.len()),
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
        instances,
        elsewhere,
        unreadable,
        page,
        affected_account: affected,
        announced_at: text_at(detail, "lastUpdatedTime").and_then(parse_time).or(envelope_time),
        description: detail
            .get("eventDescription")
            .and_then(|d| d.get(0))
            .and_then(|d| text_at(d, "latestDescription"))
            .map(|d| d.chars().take(2000).collect()),
    }))
}

/// The entities of one event, each read on its own.
struct Entities {
    instances: Vec<InstanceId>,
    elsewhere: Vec<(InstanceId, String)>,
    unreadable: Vec<String>,
}

/// Sorts each entity: an instance of the receiving account, an instance of another
/// account (named by `affectedAccount` or by the ARN), a dedicated host (not an
/// instance, left out), or unreadable (kept, shown safely, to be named in the notice).
fn read_entities(values: &[&Value], affected: Option<&str>, receiver: Option<&str>) -> Entities {
    let mut here = BTreeSet::new();
    let mut elsewhere = BTreeMap::new();
    let mut unreadable = Vec::new();
    for value in values {
        let Some(text) = value.as_str() else {
            unreadable.push(brief(value));
            continue;
        };
        let Some(id) = InstanceId::parse(text) else {
            if !text.starts_with("h-") && !text.contains(":dedicated-host/") {
                unreadable.push(shown(text, SHOWN));
            }
            continue;
        };
        let arn_account = text.starts_with("arn:").then(|| text.split(':').nth(4)).flatten();
        let account = account_id(arn_account).or(affected.map(str::to_owned));
        match (account, receiver) {
            (Some(a), Some(r)) if a != r => {
                elsewhere.insert(id, a);
            }
            _ => {
                here.insert(id);
            }
        }
    }
    unreadable.dedup();
    Entities { instances: here.into_iter().collect(), elsewhere: elsewhere.into_iter().collect(), unreadable }
}

/// Health times are RFC 1123 text ("Thu, 27 Aug 2026 13:19:03 GMT"); RFC 3339 is accepted too.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(text)
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
