//! Parse tests: one per fixture in tests/fixtures/events, plus the edge cases.

use super::*;
use serde_json::json;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn handled(name: &str) -> Intake {
    handled_value(&fixture(name))
}

fn ignored_reason(v: &Value) -> String {
    match parse(v, &BTreeSet::new()) {
        Ok(Parsed::Ignored { reason }) => reason,
        other => panic!("{other:?}"),
    }
}

fn ids(scope: &Scope) -> Vec<&str> {
    match scope {
        Scope::Targets { instances, .. } => instances.iter().map(InstanceId::as_str).collect(),
        Scope::Sweep => vec![],
    }
}

fn health(i: &Intake) -> &HealthEvent {
    match &i.trigger {
        Trigger::Health(h) => h,
        other => panic!("{other:?}"),
    }
}

#[test]
fn current_health_schema_with_arns_and_no_resources_or_end_time() {
    let i = handled("aws.health-scheduled-change-current");
    let h = health(&i);
    assert_eq!(h.type_code, "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED");
    assert_eq!(h.instances.len(), 2);
    assert!(h.deadline.is_some(), "startTime in RFC 1123 form is read");
    assert_eq!(h.page.as_deref(), Some("1/1"));
    assert_eq!(h.status_code.as_deref(), Some("upcoming"));
    assert!(ids(&i.scope).iter().all(|id| id.starts_with("i-")));
    assert_eq!(i.account.as_deref(), Some("123456789012"));
}

#[test]
fn legacy_health_schema_with_bare_ids_resources_and_empty_tags() {
    let i = handled("aws.health-scheduled-change-legacy");
    assert_eq!(health(&i).type_code, "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED");
    assert!(!ids(&i.scope).is_empty());
    assert_eq!(health(&i).deadline.unwrap().to_rfc3339(), "2026-07-16T09:00:00+00:00");
}

#[test]
fn paged_health_event_gives_the_entities_of_its_page() {
    let i = handled("aws.health-scheduled-change-paged");
    assert_eq!(health(&i).page.as_deref(), Some("2/3"));
    assert_eq!(ids(&i.scope).len(), 1);
}

#[test]
fn organizational_health_event_keeps_the_affected_account() {
    let i = handled("aws.health-scheduled-change-org");
    assert_eq!(health(&i).affected_account.as_deref(), Some("210987654321"));
}

#[test]
fn backup_copy_of_a_health_event_is_ignored_with_its_reason() {
    let reason = ignored_reason(&fixture("aws.health-scheduled-change-backup"));
    assert!(reason.contains("backupEvent=true") && reason.contains("us-east-1"), "{reason}");
}

#[test]
fn health_event_for_another_service_is_ignored() {
    assert!(ignored_reason(&fixture("aws.health-issue-rds")).contains("RDS"));
}

#[test]
fn broken_health_event_names_the_missing_field() {
    let e = parse(&fixture("aws.health-scheduled-change-broken"), &BTreeSet::new()).unwrap_err();
    assert!(e.to_string().contains("detail.affectedEntities"), "{e}");
}

#[test]
fn health_codes_can_be_limited() {
    let codes: BTreeSet<String> = ["AWS_EC2_INSTANCE_STOP_SCHEDULED".to_owned()].into();
    let v = parse(&fixture("aws.health-scheduled-change-current"), &codes).unwrap();
    assert!(matches!(v, Parsed::Ignored { reason } if reason.contains("HEALTH_EVENT_CODES")));
}

#[test]
fn ec2_state_changes_without_version_field() {
    for (name, state) in [("aws.ec2-state-change-stopped", "stopped"), ("aws.ec2-state-change-running", "running")] {
        let i = handled(name);
        assert!(matches!(&i.trigger, Trigger::StateChange { state: s, .. } if s == state));
        assert_eq!(ids(&i.scope), ["i-0abc12345def67890"]);
    }
}

#[test]
fn broken_state_change_names_the_missing_instance_id() {
    let e = parse(&fixture("aws.ec2-state-change-broken"), &BTreeSet::new()).unwrap_err();
    assert_eq!(e, IntakeError::Missing { event: "EC2 state-change", field: "detail.instance-id" });
}

#[test]
fn cloudtrail_suspend_and_resume_give_the_group() {
    for (name, call) in [
        ("aws.autoscaling-cloudtrail-suspend-processes", "SuspendProcesses"),
        ("aws.autoscaling-cloudtrail-resume-processes", "ResumeProcesses"),
    ] {
        let i = handled(name);
        assert!(
            matches!(&i.trigger, Trigger::ProcessesChanged { api_call, group } if api_call == call && group.as_str() == "es-data")
        );
    }
}

#[test]
fn other_cloudtrail_calls_are_ignored() {
    let mut v = fixture("aws.autoscaling-cloudtrail-suspend-processes");
    v["detail"]["eventName"] = json!("UpdateAutoScalingGroup");
    assert!(ignored_reason(&v).contains("UpdateAutoScalingGroup"));
}

#[test]
fn scheduled_event_is_a_sweep() {
    let i = handled("aws.events-scheduled-event");
    assert_eq!((i.trigger, i.scope), (Trigger::Scheduled, Scope::Sweep));
}

#[test]
fn manual_requests() {
    assert_eq!(handled("manual-sweep").scope, Scope::Sweep);
    let i = handled("manual-instances");
    assert!(i.dry_run_requested());
    assert_eq!(ids(&i.scope), ["i-0abc12345def67890"]);
    match handled("manual-asg-names").scope {
        Scope::Targets { groups, .. } => assert_eq!(groups[0].as_str(), "es-data"),
        Scope::Sweep => panic!("targets expected"),
    }
}

#[test]
fn manual_request_with_bad_content_names_the_field() {
    let cases = [
        (json!({"instance_ids": ["i-0abc12345def67890", "not-an-id"]}), "instance_ids[1]"),
        (json!({"instance_ids": "i-0abc12345def67890"}), "instance_ids"),
        (json!({"sweep": "yes"}), "sweep"),
        (json!({"sweep": true, "dry_run": 1}), "dry_run"),
        (json!({"asg_names": [""]}), "asg_names[0]"),
        (json!({"instance_ids": []}), "target"),
    ];
    for (v, field) in cases {
        let e = parse(&v, &BTreeSet::new()).unwrap_err();
        assert!(e.to_string().contains(field), "{v}: {e}");
    }
}

#[test]
fn unrelated_and_non_object_events_are_ignored_with_a_reason() {
    let reason = ignored_reason(&fixture("aws.s3-object-created"));
    assert!(reason.contains("aws.s3") && reason.contains("Object Created"), "{reason}");
    assert!(ignored_reason(&json!([1, 2])).contains("an array"));
    assert!(ignored_reason(&json!("x")).contains("a string"));
    assert!(ignored_reason(&json!({})).contains("not an EventBridge event"));
    assert!(ignored_reason(&json!({"source": 5, "detail-type": "x"})).contains("not an EventBridge event"));
}

#[test]
fn hostile_values_are_shortened_and_stripped_in_errors() {
    let v = json!({"instance_ids": [format!("i-\n{}", "x".repeat(500))]});
    let e = parse(&v, &BTreeSet::new()).unwrap_err().to_string();
    assert!(!e.contains('\n') && e.chars().count() < 200, "{e}");
}

#[test]
fn every_fixture_is_classified_without_panicking() {
    let dir = format!("{}/tests/fixtures/events", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let _ = parse(&serde_json::from_str(&text).unwrap(), &BTreeSet::new());
        n += 1;
    }
    assert!(n >= 17);
}

#[test]
fn event_text_that_reaches_notices_and_logs_is_validated_or_bounded() {
    let mut v = fixture("aws.health-scheduled-change-current");
    v["detail"]["eventTypeCode"] = json!("AWS_EC2_X\nSubject: forged");
    let e = parse(&v, &BTreeSet::new()).unwrap_err().to_string();
    assert!(e.contains("detail.eventTypeCode") && !e.contains('\n'), "{e}");

    let mut v = fixture("aws.health-scheduled-change-org");
    v["detail"]["affectedAccount"] = json!("2109876543210; rm -rf /");
    v["account"] = json!("not-an-account");
    let i = handled_value(&v);
    assert_eq!((health(&i).affected_account.clone(), i.account), (None, None));

    let reason = ignored_reason(&json!({"source": "x".repeat(10_000), "detail-type": "a\u{7}b"}));
    assert!(reason.chars().count() < 250 && !reason.chars().any(char::is_control), "{reason}");
}

fn handled_value(v: &Value) -> Intake {
    match parse(v, &BTreeSet::new()) {
        Ok(Parsed::Handled(i)) => *i,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_broken_envelope_of_a_handled_event_is_rejected_naming_the_field() {
    let rejected = |v: &Value| parse(v, &BTreeSet::new()).unwrap_err();
    let mut v = fixture("aws.ec2-state-change-stopped");
    v["time"] = json!(1_790_000_000);
    let e = rejected(&v);
    assert!(matches!(&e, IntakeError::Invalid { event: "EC2 state-change", field, .. } if field == "time"), "{e:?}");
    assert!(e.to_string().contains("invalid time: invalid type: integer"), "{e}");

    let mut v = fixture("aws.health-scheduled-change-legacy");
    v["resources"] = json!(["i-0abc12345def67890", 7]);
    let e = rejected(&v);
    assert!(matches!(&e, IntakeError::Invalid { event: "AWS Health", field, .. } if field == "resources[1]"), "{e:?}");

    let mut v = fixture("aws.ec2-state-change-stopped");
    v.as_object_mut().unwrap().remove("detail");
    assert_eq!(rejected(&v), IntakeError::Missing { event: "EC2 state-change", field: "detail" });
    let mut v = fixture("aws.ec2-state-change-stopped");
    v["detail"]["state"] = json!(["stopped"]);
    assert!(matches!(rejected(&v), IntakeError::Invalid { field, .. } if field == "detail.state"));
    v["detail"].as_object_mut().unwrap().remove("state");
    assert_eq!(rejected(&v), IntakeError::Missing { event: "EC2 state-change", field: "detail.state" });

    // An event the guard does not act on is ignored whatever its envelope holds.
    let mut v = fixture("aws.s3-object-created");
    v["time"] = json!(false);
    assert!(ignored_reason(&v).contains("aws.s3"));
}
