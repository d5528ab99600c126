//! Self-monitoring: one CloudWatch Embedded Metric Format line per invocation
//! (written to the log, so no extra API call). Namespace `RetirementGuard`,
//! dimension `Environment`; `Heartbeat` is 1 on every completed sweep, which the
//! template's heartbeat alarm watches (missing data = breaching).

use crate::actions::Status;
use crate::domain::Scope;
use crate::report::Report;
use chrono::{DateTime, Utc};
use serde_json::json;

pub const NAMESPACE: &str = "RetirementGuard";

/// The EMF line for a finished invocation (`report` is `None` when it failed).
pub fn emf_line(report: Option<&Report>, environment: &str, now: DateTime<Utc>) -> String {
    let count = |f: &dyn Fn(&Report) -> usize| report.map(f).unwrap_or(0);
    let values = [
        ("Heartbeat", count(&|r| usize::from(r.scope == Some(Scope::Sweep)))),
        ("Findings", count(&|r| r.findings.len())),
        ("ActionsDone", count(&|r| r.outcomes.iter().filter(|o| o.is_done()).count())),
        ("ActionsFailed", count(&|r| r.outcomes.iter().filter(|o| o.is_failed()).count())),
        ("ActionsDryRun", count(&|r| r.outcomes.iter().filter(|o| matches!(o.status, Status::DryRun { .. })).count())),
        ("ActionsGone", count(&|r| r.outcomes.iter().filter(|o| matches!(o.status, Status::Gone { .. })).count())),
        ("NoticesSent", count(&|r| r.notifications.len())),
        ("ReadsIncomplete", count(&|r| r.unread.len())),
        ("Errors", usize::from(report.is_none())),
    ];
    let mut doc = json!({
        "_aws": {
            "Timestamp": now.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Environment"]],
                "Metrics": values.iter().map(|(name, _)| json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        },
        "Environment": environment,
    });
    for (name, value) in values {
        doc[name] = json!(value);
    }
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use crate::report::Status;

    #[test]
    fn a_completed_sweep_beats_and_counts() {
        let mut r = Report::new(Status::Handled, Mode::Notify, false);
        r.scope = Some(Scope::Sweep);
        let v: serde_json::Value = serde_json::from_str(&emf_line(Some(&r), "prod", Utc::now())).unwrap();
        assert_eq!(v["Heartbeat"], 1);
        assert_eq!(v["Errors"], 0);
        assert_eq!(v["Environment"], "prod");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "RetirementGuard");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap().len(), 9);
    }

    #[test]
    fn a_failed_invocation_counts_an_error_and_no_heartbeat() {
        let v: serde_json::Value = serde_json::from_str(&emf_line(None, "prod", Utc::now())).unwrap();
        assert_eq!((v["Heartbeat"].as_u64(), v["Errors"].as_u64()), (Some(0), Some(1)));
    }

    #[test]
    fn a_targeted_invocation_does_not_beat() {
        let r = Report::new(Status::Ignored, Mode::Notify, false);
        let v: serde_json::Value = serde_json::from_str(&emf_line(Some(&r), "prod", Utc::now())).unwrap();
        assert_eq!(v["Heartbeat"], 0);
    }
}
