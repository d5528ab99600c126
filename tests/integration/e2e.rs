//! End to end: the built binary against a moto server, under each policy.

use crate::common::*;
use serde_json::{Value, json};
use std::process::{Command, Stdio};

#[test]
fn notify_policy_changes_nothing_and_one_notice_names_the_group_and_both_instances() {
    let w = World::new();
    let before = w.state();
    let event = w.health_event();
    let report = w.run(&["invoke", event.path().to_str().unwrap()], &[]);
    assert_eq!(report["status"], "handled");
    assert_eq!(report["policy"], "notify");
    assert!(report["outcomes"].as_array().unwrap().is_empty());
    assert_eq!(w.state(), before, "nothing changes under notify");

    let notices = w.notices();
    assert_eq!(notices.len(), 1, "{notices:#?}");
    let n = &notices[0];
    let subject = n["subject"].as_str().unwrap();
    assert!(
        subject.contains("CRITICAL: es-data: 2/6 stopped by retirement, not replaced") && subject.len() <= 99,
        "{subject}"
    );
    let body = n["message"].as_str().unwrap();
    for id in w.stopped() {
        assert!(body.contains(&id), "{id} missing from {body}");
    }
    assert!(body.contains("aws ec2 start-instances --region us-east-1 --instance-ids"));
    assert!(body.contains("aws autoscaling resume-processes --region us-east-1 --auto-scaling-group-name 'es-data'"));
    // SQS gets the structured publish's default part: the notice document, no attributes.
    let doc = &n["document"];
    assert_eq!((doc["schema"].as_str(), doc["version"].as_u64()), (Some("retirement-guard/notice"), Some(1)), "{n:#}");
    assert_eq!(doc["severity"], "critical");
    assert_eq!(doc["region"], "us-east-1");
    assert_eq!(doc["account"], "123456789012");
    assert_eq!(doc["conditions"][0]["kind"], "stranded_group");
    assert_eq!(doc["conditions"][0]["subject"], "es-data");
    assert_eq!(n["attributes"], json!({}), "SNS delivers no attributes with MessageStructure=json");
}

#[test]
fn with_notice_format_plain_the_text_and_the_attributes_reach_subscribers() {
    let w = World::new();
    w.run(&["sweep"], &[("NOTICE_FORMAT", "plain")]);
    let notices = w.notices();
    assert_eq!(notices.len(), 1, "{notices:#?}");
    let n = &notices[0];
    let body = n["message"].as_str().unwrap();
    assert!(body.starts_with("es-data: 2 of 6 members stopped by AWS retirement"), "{body}");
    assert!(body.contains("--- machine-readable ---"), "{body}");
    assert_eq!(n["attributes"]["severity"], "critical");
    assert_eq!(n["attributes"]["region"], "us-east-1");
    assert_eq!(n["attributes"]["account"], "123456789012");
    let kinds: Vec<String> = serde_json::from_str(n["attributes"]["finding_kinds"].as_str().unwrap()).unwrap();
    assert!(kinds.contains(&"StrandedInstance".to_owned()));
    let groups: Vec<String> = serde_json::from_str(n["attributes"]["groups"].as_str().unwrap()).unwrap();
    assert_eq!(groups, ["es-data"]);
}

/// Members of a group as `scenario.py state` shows them: id → (EC2 state, health).
fn members(state: &Value, group: &str) -> Vec<(String, String, String)> {
    state["groups"][group]["members"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, m)| (id.clone(), instance_state(state, id), m["health"].as_str().unwrap().to_owned()))
        .collect()
}

fn actions(report: &Value) -> Vec<&str> {
    report["outcomes"].as_array().unwrap().iter().map(|o| o["action"].as_str().unwrap()).collect()
}

/// Nothing the local AWS's health checks did cost an instance.
fn assert_nothing_replaced(w: &World) {
    let stats = w.moto.realism_stats();
    assert_eq!(stats["terminated"], json!([]), "instances terminated by the group: {stats:#}");
    assert_eq!(stats["launched"], json!([]), "replacements launched: {stats:#}");
}

#[test]
fn recover_with_the_defaults_restarts_retired_members_marks_them_healthy_and_resumes_losing_none() {
    let w = World::new();
    // As AWS leaves it: stopped by a retirement (Server.ScheduledStop), suspended by AWS,
    // and already marked Unhealthy by the group's health check (the replacement race).
    assert_eq!(w.seed["stopped_by"], "retirement");
    assert_eq!(w.seed["suspended_by"], "aws");
    for id in w.stopped() {
        assert_eq!(w.seed["stopped_health"][&id], "Unhealthy", "{:#}", w.seed);
    }
    let before = w.state();
    w.moto.scenario(&["record-start"]);
    let report = w.run(&["sweep"], &[("POLICY", "recover")]);
    assert_eq!(report["status"], "handled");
    assert_eq!(report["remaining"], json!([]), "{report:#}");
    // One call per kind of write, but for the health marking (one instance per call in the API).
    let mut writes = strings(&w.moto.scenario(&["record-writes"])["writes"]);
    writes.sort();
    assert_eq!(
        writes,
        [
            "CreateOrUpdateTags",
            "DeleteTags",
            "Publish",
            "ResumeProcesses",
            "SetInstanceHealth",
            "SetInstanceHealth",
            "StartInstances"
        ]
    );

    let after = w.state();
    for (id, state, health) in members(&after, "es-data") {
        assert_eq!((state.as_str(), health.as_str()), ("running", "Healthy"), "{id}");
    }
    assert_eq!(members(&after, "es-data").len(), 6, "the same six members");
    assert!(suspended(&after, "es-data").is_empty(), "processes resumed");
    assert_nothing_replaced(&w);
    assert_eq!(after["groups"]["web"], before["groups"]["web"], "the healthy group is untouched");
    let standalone = w.seed["standalone"].as_str().unwrap();
    assert_eq!(instance_state(&after, standalone), "stopped", "a standalone instance a person stopped is left alone");

    assert_eq!(
        actions(&report),
        [
            "mark_recovering",
            "start_instance",
            "start_instance",
            "set_instance_healthy",
            "set_instance_healthy",
            "resume_processes",
            "clear_recovering"
        ]
    );
    assert!(report["outcomes"].as_array().unwrap().iter().all(|o| o["result"] == "done"), "{report:#}");
    let notices = w.notices();
    assert_eq!(notices.len(), 1);
    assert!(
        notices[0]["subject"]
            .as_str()
            .unwrap()
            .contains("INFO: es-data: 2/6 stopped by retirement; 2 started, resumed")
    );
}

#[test]
fn resuming_before_marking_restarted_members_healthy_loses_them_here_as_in_aws() {
    // The race the guard's order avoids (Cloud Custodian's bug #8660): the local AWS
    // replaces members marked Unhealthy once Terminate resumes, so a test of the guard
    // against it would catch a wrong order.
    let w = World::new();
    w.moto.scenario(&["repair", "--group", "es-data", "--naive"]);
    let mut terminated = strings(&w.moto.realism_stats()["terminated"]);
    terminated.sort();
    let mut stopped = w.stopped();
    stopped.sort();
    assert_eq!(terminated, stopped, "both restarted members were replaced");
}

#[test]
fn recover_from_a_health_event_repairs_the_group() {
    let w = World::new();
    let event = w.health_event();
    let report = w.run(&["invoke", event.path().to_str().unwrap()], &[("POLICY", "recover")]);
    assert_eq!(report["trigger"]["kind"], "health");
    assert_eq!(report["remaining"], json!([]), "a restarted instance has left the retiring hardware: {report:#}");
    let after = w.state();
    assert!(w.stopped().iter().all(|id| instance_state(&after, id) == "running"));
    assert!(suspended(&after, "es-data").is_empty());
    assert_nothing_replaced(&w);
}

#[test]
fn a_person_stopped_member_and_a_person_suspended_group_are_never_touched_and_the_notice_says_why() {
    let w = World::seeded(&["--stopped-by", "user", "--suspended-by", "user"]);
    let before = w.state();
    let report = w.run(&["sweep"], &[("POLICY", "recover")]);
    assert!(actions(&report).is_empty(), "{report:#}");
    assert_eq!(w.state(), before, "nothing changed");
    let skipped = report["plan"]["skipped"].to_string();
    assert!(skipped.contains("RESTART_USER_STOPPED=false"), "{skipped}");
    let notices = w.notices();
    assert_eq!(notices.len(), 1);
    let body = notices[0]["message"].as_str().unwrap();
    assert!(body.contains("stopped by a user or tool (StopInstances)"), "{body}");
    assert!(body.contains("by a person: User suspended at"), "{body}");
    assert!(body.contains("only instances AWS stopped (Server.ScheduledStop) are started"), "{body}");
}

#[test]
fn retired_members_of_a_group_a_person_suspended_are_started_and_marked_but_its_processes_stay() {
    let w = World::seeded(&["--suspended-by", "user"]);
    let report = w.run(&["sweep"], &[("POLICY", "recover")]);
    let after = w.state();
    assert!(w.stopped().iter().all(|id| instance_state(&after, id) == "running"), "{report:#}");
    assert_eq!(suspended(&after, "es-data"), ["Launch", "Terminate"], "a person's suspension stays");
    assert!(report["plan"]["skipped"].to_string().contains("RESUME_USER_SUSPENDED=false"));
    assert_nothing_replaced(&w);
}

#[test]
fn the_start_bounds_hold_for_the_whole_sweep_and_the_groups_take_turns() {
    // Regression: with both bounds at 1, one sweep over 3 stranded groups started all 4
    // retired members, 2 of them in one group.
    let w = World::new();
    let b = w.moto.scenario(&["stranded-group", "--name", "b"]);
    let c = w.moto.scenario(&["stranded-group", "--name", "c"]);
    let env = [("POLICY", "recover"), ("MAX_STARTS_PER_INVOCATION", "1"), ("MAX_STARTS_PER_GROUP", "1")];
    let started = |report: &Value| -> Vec<String> {
        report["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["action"] == "start_instance")
            .map(|o| o["instance"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut order = vec![];
    for _ in 0..3 {
        let report = w.run(&["sweep"], &env);
        let one = started(&report);
        assert_eq!(one.len(), 1, "one start per sweep: {report:#}");
        order.extend(one);
    }
    let group_of = |id: &str| w.state()["instances"][id]["group"].as_str().unwrap().to_owned();
    let groups: Vec<String> = order.iter().map(|id| group_of(id)).collect();
    assert_eq!(groups, ["b", "c", "es-data"].map(String::from), "each group served once before any twice: {order:?}");
    assert_eq!(strings(&b["retired"]).len() + strings(&c["retired"]).len(), 2);
    // Every started member ran, was marked Healthy, and b and c (fully repaired) were resumed.
    let after = w.state();
    assert!(suspended(&after, "b").is_empty() && suspended(&after, "c").is_empty());
    assert_eq!(suspended(&after, "es-data"), ["Launch", "Terminate"], "es-data has a member still stopped");
    assert_nothing_replaced(&w);
}

#[test]
fn booting_slower_than_the_wait_ends_the_invocation_without_resuming_and_a_running_event_finishes() {
    let w = World::new();
    w.moto.realism(&[("pending_seconds", "6")]);
    let env = [("POLICY", "recover"), ("WAIT_SECONDS", "2")];
    let report = w.run(&["sweep"], &env);
    assert_eq!(actions(&report), ["mark_recovering", "start_instance", "start_instance"], "{report:#}");
    let after = w.state();
    assert_eq!(suspended(&after, "es-data"), ["Launch", "Terminate"], "no resume while members boot");
    assert!(w.stopped().iter().all(|id| instance_state(&after, id) == "pending"));
    let waiting = report["plan"]["skipped"].to_string();
    assert!(waiting.contains("(pending"), "{waiting}");
    assert!(report["remaining"].to_string().contains("RecoveryInProgress"), "{report:#}");

    // The instances come up; their `running` event (or the next sweep) finishes the repair.
    std::thread::sleep(std::time::Duration::from_secs(6));
    let id = &w.stopped()[0];
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/events/aws.ec2-state-change-running.json")).unwrap(),
    )
    .unwrap();
    event["detail"]["instance-id"] = json!(id);
    let file = write_temp(&event);
    let report = w.run(&["invoke", file.path().to_str().unwrap()], &env);
    assert_eq!(
        actions(&report),
        ["set_instance_healthy", "set_instance_healthy", "resume_processes", "clear_recovering"],
        "{report:#}"
    );
    let after = w.state();
    assert!(suspended(&after, "es-data").is_empty());
    for (id, state, health) in members(&after, "es-data") {
        assert_eq!((state.as_str(), health.as_str()), ("running", "Healthy"), "{id}");
    }
    assert_nothing_replaced(&w);
}

#[test]
fn dry_run_sends_no_write_call_to_aws_but_still_notifies_every_step_that_would_follow() {
    let w = World::new();
    let before = w.state();
    w.moto.scenario(&["record-start"]);
    let report = w.run(&["sweep"], &[("POLICY", "recover"), ("DRY_RUN", "true")]);
    let recorded = w.moto.scenario(&["record-writes"]);
    let writes = strings(&recorded["writes"]);
    assert_eq!(writes, ["Publish"], "only the notice is sent in a dry run: {recorded:#}");
    assert!(
        strings(&recorded["actions"]).iter().any(|a| a == "DescribeAutoScalingGroups"),
        "the recorder saw the reads"
    );
    assert_eq!(report["dry_run"], true);
    let steps: Vec<(&str, bool)> = report["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["action"].as_str().unwrap(), s.get("after").is_some()))
        .collect();
    assert_eq!(
        steps,
        [
            ("mark_recovering", false),
            ("start_instance", false),
            ("start_instance", false),
            ("set_instance_healthy", true),
            ("set_instance_healthy", true),
            ("resume_processes", true),
            ("clear_recovering", true)
        ]
    );
    assert_eq!(w.state(), before);
    let notices = w.notices();
    assert_eq!(notices.len(), 1);
    assert!(notices[0]["subject"].as_str().unwrap().starts_with("DRY RUN"));
    let body = notices[0]["message"].as_str().unwrap();
    assert!(
        body.contains("\"action\":\"set_instance_healthy\"")
            && body.contains("\"result\":\"dry_run\"")
            && body.contains("DRY RUN: nothing was changed"),
        "{body}"
    );
}

#[test]
fn an_org_view_retirement_for_another_account_is_notified_as_announced_not_inspected() {
    let w = World::new();
    w.moto.scenario(&["record-start"]);
    let path = format!("{ROOT}/tests/fixtures/events/aws.health-scheduled-change-org.json");
    let report = w.run(&["invoke", &path], &[("POLICY", "recover")]);
    assert_eq!(report["findings"][0]["kind"], "NotInspected", "{report:#}");
    assert_eq!(strings(&w.moto.scenario(&["record-writes"])["writes"]), ["Publish"]);
    let notices = w.notices();
    assert_eq!(notices.len(), 1);
    let body = notices[0]["message"].as_str().unwrap();
    assert!(body.contains("i-0abc12345def67890 in account 210987654321"), "{body}");
    assert!(
        body.contains("NOT INSPECTED: in account 210987654321; this guard reads and repairs account 123456789012 only"),
        "{body}"
    );
}

#[test]
fn a_notify_sweep_reads_only_what_the_decision_needs() {
    // Every group, the instances not running, the instances with a scheduled event:
    // no DescribeInstances of the running members, no status checks of every instance.
    let w = World::new();
    w.moto.scenario(&["record-start"]);
    let report = w.run(&["sweep"], &[]);
    assert_eq!(report["findings"].as_array().unwrap().len(), 3, "{report:#}");
    let mut actions = strings(&w.moto.scenario(&["record-writes"])["actions"]);
    actions.sort();
    assert_eq!(actions, ["DescribeAutoScalingGroups", "DescribeInstanceStatus", "DescribeInstances", "Publish"]);
}

#[test]
fn unrelated_event_changes_nothing_and_sends_nothing() {
    let w = World::new();
    w.moto.scenario(&["record-start"]);
    let path = format!("{ROOT}/tests/fixtures/events/aws.s3-object-created.json");
    let report = w.run(&["invoke", &path], &[("POLICY", "recover")]);
    assert_eq!(report["status"], "ignored");
    assert!(report["reason"].as_str().unwrap().contains("aws.s3"));
    assert!(strings(&w.moto.scenario(&["record-writes"])["actions"]).is_empty(), "no AWS call at all");
    assert!(w.notices().is_empty());
}

#[test]
fn state_change_event_read_from_stdin_is_handled() {
    let w = World::new();
    let id = &w.stopped()[0];
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/events/aws.ec2-state-change-stopped.json")).unwrap(),
    )
    .unwrap();
    event["detail"]["instance-id"] = json!(id);
    let out = w.moto.guard(w.topic(), &["invoke", "-"], &[], Some(&event.to_string()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["trigger"]["kind"], "state_change");
    let kinds: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"StrandedInstance"), "{kinds:?}");
}

#[test]
fn broken_event_is_rejected_with_the_missing_field_and_notified() {
    let w = World::new();
    let out =
        w.moto.guard(w.topic(), &["invoke", &format!("{ROOT}/events/aws.ec2-state-change-broken.json")], &[], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap();
    assert!(last.contains("event rejected") && last.contains("detail.instance-id"), "{stderr}");
    let notices = w.notices();
    assert_eq!(notices.len(), 1);
    assert!(notices[0]["subject"].as_str().unwrap().contains("event rejected"));
}

#[test]
fn with_lambdas_json_log_format_every_log_line_is_a_json_object() {
    let w = World::new();
    let env = [("AWS_LAMBDA_LOG_FORMAT", "JSON"), ("AWS_LAMBDA_LOG_LEVEL", "INFO")];
    let out =
        w.moto.guard(w.topic(), &["invoke", &format!("{ROOT}/events/aws.ec2-state-change-broken.json")], &env, None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 3, "configuration, the notice, the failure: {stderr}");
    assert!(lines.iter().all(|l| l["level"].is_string() && l["message"].is_string()), "{stderr}");
    assert!(lines.iter().any(|l| l["message"] == "notice published"), "{stderr}");
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "ERROR");
    assert!(
        last["message"].as_str().unwrap().contains("event rejected: EC2 state-change event has no detail.instance-id"),
        "{last}"
    );
    // The bare CLI's own errors follow the format too.
    let (ok, stderr) = bare(&["frobnicate"], "", &[("AWS_LAMBDA_LOG_FORMAT", "json")]);
    let line: Value = serde_json::from_str(&stderr).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert!(!ok && line["message"].as_str().unwrap().contains("usage: retirement-guard"), "{line}");
}

#[test]
fn missing_group_or_instance_is_gone_not_an_error() {
    let w = World::new();
    let event = write_temp(&json!({"instance_ids": ["i-0123456789abcdef0"], "asg_names": ["no-such-group"]}));
    let report = w.run(&["invoke", event.path().to_str().unwrap()], &[]);
    assert_eq!(report["gone_instances"], json!(["i-0123456789abcdef0"]));
    assert_eq!(report["gone_groups"], json!(["no-such-group"]));
    assert!(w.notices().is_empty());
}

/// Runs the binary without any AWS behind it: these must fail before any call.
fn bare(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).trim().to_owned())
}

#[test]
fn cli_bad_input_gets_a_one_line_error_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let not_json = dir.path().join("x.json");
    std::fs::write(&not_json, "{not json").unwrap();
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (vec!["invoke".into(), "/no/such/file.json".into()], "", "cannot read /no/such/file.json"),
        (vec!["invoke".into(), not_json.display().to_string()], "", "not valid JSON"),
        (vec!["invoke".into(), "-".into()], "", "stdin: empty input"),
        (vec!["invoke".into(), "-".into()], "[1,", "stdin: not valid JSON"),
        (vec!["frobnicate".into()], "", "usage: retirement-guard"),
    ];
    for (args, stdin, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, stderr) = bare(&args, stdin, &[]);
        assert!(!ok, "{args:?} must fail");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().filter(|l| l.starts_with("retirement-guard:")).count(), 1, "{stderr}");
    }
}

#[test]
fn missing_topic_is_a_clear_start_up_error() {
    let (ok, stderr) = bare(&["sweep"], "", &[("NOTIFY_TOPIC_ARN", "")]);
    assert!(!ok);
    assert!(stderr.contains("NOTIFY_TOPIC_ARN is required"), "{stderr}");
    let (ok, stderr) = bare(&["sweep"], "", &[("POLICY", "yolo")]);
    assert!(!ok && stderr.contains("POLICY must be notify, restart or recover"), "{stderr}");
}
