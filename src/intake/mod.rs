//! Intake stage: raw EventBridge (or manual) JSON → a recognised `Trigger` with
//! the scope it gives, an `Ignored` verdict with its reason, or an `IntakeError`
//! naming the missing or malformed field. Pure and lenient: only the fields the
//! guard needs are read, and every other field may be absent or of any shape.

mod health;

pub use health::HealthEvent;

use crate::domain::{AsgName, InstanceId, Scope};
use crate::text::shown;
use aws_lambda_events::event::cloudwatch_events::ec2::InstanceStateChange;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Upper bound on ids one event may name (larger Health events are paged by AWS).
pub const MAX_TARGETS: usize = 1000;

/// The recognised event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    Health(HealthEvent),
    StateChange { instance: InstanceId, state: String },
    ProcessesChanged { api_call: String, group: AsgName },
    Scheduled,
    Manual { dry_run: bool },
}

/// A recognised event: the trigger, its scope and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Intake {
    pub trigger: Trigger,
    pub scope: Scope,
    pub account: Option<String>,
    pub region: Option<String>,
}

impl Intake {
    /// A manual event may ask for a dry run (it can never turn one off).
    pub fn dry_run_requested(&self) -> bool {
        matches!(self.trigger, Trigger::Manual { dry_run: true })
    }
}

/// The verdict on one raw event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Parsed {
    Handled(Box<Intake>),
    Ignored { reason: String },
}

/// A recognised event whose content is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    #[error("{event} event has no {field}")]
    Missing { event: &'static str, field: &'static str },
    #[error("{event} event has an invalid {field}: {value}")]
    Invalid { event: &'static str, field: String, value: String },
}

/// The EventBridge events the guard acts on, by `source` and `detail-type`.
#[derive(Clone, Copy)]
enum Kind {
    Health,
    StateChange,
    CloudTrail,
    Schedule,
}

impl Kind {
    fn of(source: &str, detail_type: &str) -> Option<Self> {
        Some(match (source, detail_type) {
            ("aws.health", "AWS Health Event") => Self::Health,
            ("aws.ec2", "EC2 Instance State-change Notification") => Self::StateChange,
            ("aws.autoscaling", "AWS API Call via CloudTrail") => Self::CloudTrail,
            ("aws.events", "Scheduled Event") => Self::Schedule,
            _ => return None,
        })
    }

    /// The event's name in errors.
    fn name(self) -> &'static str {
        match self {
            Self::Health => health::EVENT,
            Self::StateChange => "EC2 state-change",
            Self::CloudTrail => "CloudTrail Auto Scaling",
            Self::Schedule => "EventBridge schedule",
        }
    }
}

/// Fields the typed envelope and details require: a missing one is a `Missing` error.
const REQUIRED: [&str; 3] = ["detail", "detail.instance-id", "detail.state"];

/// Classifies one raw event. `health_codes` limits the Health event type codes
/// acted on (empty: every EC2 scheduledChange code). The envelope of an event the
/// guard acts on is read with `aws_lambda_events`' `EventBridgeEvent`, an EC2
/// state change's detail with its `InstanceStateChange`; a Health detail with the
/// lenient reader of `health.rs` (the crate's type rejects AWS's current sample).
pub fn parse(raw: &Value, health_codes: &BTreeSet<String>) -> Result<Parsed, IntakeError> {
    let Some(obj) = raw.as_object() else {
        return Ok(ignored(format!("not a JSON object but {}", kind_of(raw))));
    };
    if !obj.contains_key("source") && ["sweep", "instance_ids", "asg_names"].iter().any(|k| obj.contains_key(*k)) {
        return manual(obj).map(|i| Parsed::Handled(Box::new(i)));
    }
    let (Some(source), Some(detail_type)) = (text(obj, "source"), text(obj, "detail-type")) else {
        return Ok(ignored("not an EventBridge event (no source and detail-type) nor a manual request".into()));
    };
    let Some(kind) = Kind::of(source, detail_type) else {
        let (source, detail_type) = (shown(source, SHOWN), shown(detail_type, SHOWN));
        return Ok(ignored(format!("no handler for source \"{source}\" with detail-type \"{detail_type}\"")));
    };
    let envelope: EventBridgeEvent<Value> = typed(raw, kind, "")?;
    let account = account_id(envelope.account.as_deref());
    let (trigger, scope) = match kind {
        Kind::Health => {
            let resources = envelope.resources.as_deref().unwrap_or_default();
            match health::parse(&envelope.detail, resources, envelope.time, account.as_deref(), health_codes)? {
                Ok(event) => {
                    let scope = Scope::Targets { instances: event.instances.clone(), groups: vec![] };
                    (Trigger::Health(event), scope)
                }
                Err(reason) => return Ok(ignored(reason)),
            }
        }
        Kind::StateChange => {
            if !envelope.detail.is_object() {
                let got = format!("expected an object, got {}", kind_of(&envelope.detail));
                return Err(invalid(kind.name(), "detail", &got));
            }
            let detail: InstanceStateChange = typed(&envelope.detail, kind, "detail")?;
            let instance = InstanceId::parse(&detail.instance_id)
                .ok_or_else(|| invalid(kind.name(), "detail.instance-id", &detail.instance_id))?;
            let state = Some(detail.state)
                .filter(|s| s.len() <= 20 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
                .unwrap_or_else(|| "unknown".into());
            let scope = Scope::Targets { instances: vec![instance.clone()], groups: vec![] };
            (Trigger::StateChange { instance, state }, scope)
        }
        Kind::CloudTrail => {
            let detail = &envelope.detail;
            let api_call = text_at(detail, "eventName").unwrap_or_default();
            if !matches!(api_call, "SuspendProcesses" | "ResumeProcesses") {
                return Ok(ignored(format!(
                    "CloudTrail call {:?} does not change suspended processes",
                    shown(api_call, SHOWN)
                )));
            }
            const FIELD: &str = "detail.requestParameters.autoScalingGroupName";
            let name = detail
                .get("requestParameters")
                .and_then(|p| text_at(p, "autoScalingGroupName"))
                .ok_or(IntakeError::Missing { event: kind.name(), field: FIELD })?;
            let group = AsgName::parse(name).ok_or_else(|| invalid(kind.name(), FIELD, name))?;
            let scope = Scope::Targets { instances: vec![], groups: vec![group.clone()] };
            (Trigger::ProcessesChanged { api_call: api_call.to_owned(), group }, scope)
        }
        Kind::Schedule => (Trigger::Scheduled, Scope::Sweep),
    };
    let region = envelope
        .region
        .filter(|r| r.len() <= 32 && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    Ok(Parsed::Handled(Box::new(Intake { trigger, scope, account, region })))
}

/// `value` read as `T` (a type of `aws_lambda_events`); an error names the field at
/// fault, under `under` (`detail` for a detail, empty for the envelope).
fn typed<T: DeserializeOwned>(value: &Value, kind: Kind, under: &str) -> Result<T, IntakeError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let join = |field: &mut String, part: &str| {
            if !field.is_empty() && !part.starts_with('[') {
                field.push('.');
            }
            field.push_str(part);
        };
        let mut field = under.to_owned();
        let at = e.path().to_string();
        if at != "." {
            join(&mut field, &at);
        }
        let message = e.inner().to_string();
        match message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
            Some(missing) => {
                join(&mut field, missing);
                match REQUIRED.iter().find(|r| **r == field) {
                    Some(known) => IntakeError::Missing { event: kind.name(), field: known },
                    None => invalid(kind.name(), &shown(&field, SHOWN), "missing"),
                }
            }
            None => invalid(kind.name(), &shown(&field, SHOWN), &message),
        }
    })
}

fn manual(obj: &Map<String, Value>) -> Result<Intake, IntakeError> {
    const EVENT: &str = "manual";
    let dry_run = match obj.get("dry_run") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(invalid(EVENT, "dry_run", &brief(other))),
    };
    let sweep = match obj.get("sweep") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(invalid(EVENT, "sweep", &brief(other))),
    };
    let instances = id_list(obj, "instance_ids", InstanceId::parse)?;
    let groups = id_list(obj, "asg_names", AsgName::parse)?;
    let scope = if sweep {
        Scope::Sweep
    } else if instances.is_empty() && groups.is_empty() {
        return Err(IntakeError::Missing { event: EVENT, field: "target (sweep: true, instance_ids or asg_names)" });
    } else {
        Scope::Targets { instances, groups }
    };
    Ok(Intake { trigger: Trigger::Manual { dry_run }, scope, account: None, region: None })
}

/// Reads an optional array of ids, validating each; duplicates are dropped.
fn id_list<T: Ord>(
    obj: &Map<String, Value>,
    key: &'static str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, IntakeError> {
    let items = match obj.get(key) {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(invalid("manual", key, &format!("expected a list, got {}", kind_of(other)))),
    };
    if items.len() > MAX_TARGETS {
        return Err(invalid("manual", key, &format!("{} entries (at most {MAX_TARGETS})", items.len())));
    }
    let mut out = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let parsed = item.as_str().and_then(&parse);
        out.insert(parsed.ok_or_else(|| invalid("manual", &format!("{key}[{i}]"), &brief(item)))?);
    }
    Ok(out.into_iter().collect())
}

fn ignored(reason: String) -> Parsed {
    Parsed::Ignored { reason }
}

/// An `Invalid` error whose value is shortened and cleared of control characters,
/// so that hostile input cannot flood or forge log lines.
pub(crate) fn invalid(event: &'static str, field: &str, value: &str) -> IntakeError {
    IntakeError::Invalid { event, field: field.to_owned(), value: shown(value, SHOWN) }
}

/// Event text in reasons, errors and logs: at most this many characters.
pub(crate) const SHOWN: usize = 80;

/// A 12-digit AWS account id, or nothing.
pub(crate) fn account_id(text: Option<&str>) -> Option<String> {
    text.filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())).map(str::to_owned)
}

pub(crate) fn text<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

pub(crate) fn text_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// A value as an error may show it: text as it is (cut later), anything else by its
/// kind, so a huge array is never serialised just to show its start.
pub(crate) fn brief(v: &Value) -> String {
    match v {
        Value::String(s) => s.chars().take(100).collect(),
        Value::Bool(_) | Value::Number(_) | Value::Null => v.to_string(),
        other => kind_of(other).to_owned(),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
