//! The whole pipeline over in-memory adapters: what is read, planned, done and notified.

use super::*;
use crate::domain::{InstanceState, Snapshot};
use crate::error::{AwsFailure, FailureKind};
use crate::findings::tests::{id, story, three_groups};
use serde_json::json;
use std::time::Instant;

pub(crate) use crate::testing::{TestGuard, guard, now, sent, sweep};

#[tokio::test]
async fn notify_policy_changes_nothing_and_sends_one_notice_naming_group_and_instances() {
    let g = guard(story(), &[]);
    let report = g.handle(&sweep(), now()).await.unwrap();
    assert_eq!(report.status, Status::Handled);
    assert!(g.actuator.calls().is_empty());
    let notices = sent(&g);
    assert_eq!(notices.len(), 1);
    let n = &notices[0];
    assert!(n.subject.contains("es-data: 2/6 stopped by retirement, not replaced"), "{}", n.subject);
    assert!(n.body.contains(id(1).as_str()) && n.body.contains(id(2).as_str()));
    assert!(n.body.contains("aws ec2 start-instances --region us-east-1 --instance-ids"));
    assert_eq!(report.notifications[0].message_id, "msg-1");
}

#[tokio::test]
async fn recover_runs_the_safe_order_within_one_invocation() {
    let mut s = story();
    // Moto-like: the group marks nothing Unhealthy; make one member Unhealthy to see SetInstanceHealth.
    s.groups.values_mut().next().unwrap().members[0].health_status = "Unhealthy".into();
    let g = guard(s, &[("POLICY", "recover")]);
    let report = g.handle(&sweep(), now()).await.unwrap();
    let calls = g.actuator.calls();
    let (a, b) = (id(1), id(2));
    assert_eq!(
        calls,
        [
            "tag es-data retirement-guard:recovering".to_owned(),
            format!("start {a}"),
            format!("start {b}"),
            format!("set-healthy {a}"),
            "resume es-data Launch,Terminate".to_owned(),
            "untag es-data retirement-guard:recovering".to_owned(),
        ]
    );
    assert!(report.remaining.is_empty(), "{:?}", report.remaining);
    assert_eq!(report.rounds, 3);
    let n = &sent(&g)[0];
    assert!(n.subject.contains("INFO: es-data: 2/6 stopped by retirement; 2 started, resumed"), "{}", n.subject);
    assert!(n.body.contains("REPAIRED: the guard started 2, marked 1 Healthy, resumed its processes"), "{}", n.body);
}

#[tokio::test]
async fn dry_run_plans_and_notifies_but_writes_nothing() {
    let g = guard(story(), &[("POLICY", "recover"), ("DRY_RUN", "true")]);
    let report = g.handle(&sweep(), now()).await.unwrap();
    assert!(g.actuator.calls().is_empty());
    // Every step that would follow, the later ones marked as conditional on the earlier.
    let steps: Vec<(&str, bool)> = report.plan.steps.iter().map(|s| (s.action.name(), s.after.is_some())).collect();
    assert_eq!(
        steps,
        [
            ("mark_recovering", false),
            ("start_instance", false),
            ("start_instance", false),
            ("resume_processes", true),
            ("clear_recovering", true)
        ]
    );
    assert!(report.outcomes.iter().all(|o| matches!(o.status, crate::actions::Status::DryRun { .. })));
    let n = &sent(&g)[0];
    assert!(n.subject.starts_with("DRY RUN"), "{}", n.subject);
    assert!(n.body.contains("DRY RUN: nothing was changed"));
}

#[tokio::test]
async fn manual_dry_run_request_overrides_a_live_policy() {
    let g = guard(story(), &[("POLICY", "recover")]);
    g.handle(&json!({"sweep": true, "dry_run": true}), now()).await.unwrap();
    assert!(g.actuator.calls().is_empty());
}

#[tokio::test]
async fn failed_start_is_reported_and_notified_and_nothing_is_resumed() {
    let mut g = guard(story(), &[("POLICY", "recover")]);
    g.actuator.failures.insert(format!("start {}", id(1)), FailureKind::Capacity);
    let report = g.handle(&sweep(), now()).await.unwrap();
    assert!(!g.actuator.calls().iter().any(|c| c.starts_with("resume")), "{:?}", g.actuator.calls());
    assert!(report.outcomes.iter().any(|o| o.is_failed()));
    let n = &sent(&g)[0];
    assert!(n.subject.contains("1 FAILED"), "{}", n.subject);
    assert!(n.body.contains("FAILED (Capacity"), "{}", n.body);
}

#[tokio::test]
async fn resume_waits_while_status_checks_are_pending() {
    let mut g = guard(story(), &[("POLICY", "recover")]);
    g.actuator.checks = "initializing";
    let report = g.handle(&sweep(), now()).await.unwrap();
    assert!(!g.actuator.calls().iter().any(|c| c.starts_with("resume")));
    assert!(report.plan.skipped.iter().any(|s| s.waiting && s.action == "resume_processes"));
    // A later invocation, once the checks pass, finishes the job from AWS state alone.
    for inst in g.inventory.state.lock().unwrap().instances.values_mut() {
        inst.status = inst.status.take().map(|mut s| {
            s.instance = "ok".into();
            s
        });
    }
    g.handle(&sweep(), now()).await.unwrap();
    assert!(g.actuator.calls().contains(&"resume es-data Launch,Terminate".to_owned()), "{:?}", g.actuator.calls());
}

#[tokio::test]
async fn unrelated_event_is_ignored_silently() {
    let g = guard(story(), &[("POLICY", "recover")]);
    let report =
        g.handle(&json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}), now()).await.unwrap();
    assert_eq!(report.status, Status::Ignored);
    assert!(report.reason.unwrap().contains("aws.s3"));
    assert!(g.actuator.calls().is_empty() && sent(&g).is_empty());
}

#[tokio::test]
async fn broken_event_is_rejected_and_notified_without_retry() {
    let g = guard(story(), &[]);
    let raw = json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {"state": "stopped"}});
    let report = g.handle(&raw, now()).await.unwrap();
    assert_eq!(report.status, Status::Rejected);
    assert!(report.reason.as_deref().unwrap().contains("detail.instance-id"));
    assert!(sent(&g)[0].subject.contains("event rejected"));
}

#[tokio::test]
async fn failed_read_or_publish_fails_the_invocation_for_a_retry() {
    let mut g = guard(story(), &[]);
    g.inventory.fail = Some(AwsFailure {
        operation: "DescribeInstances",
        kind: FailureKind::Transient,
        code: Some("RequestLimitExceeded".into()),
        message: "x".into(),
    });
    assert_eq!(g.handle(&sweep(), now()).await.unwrap_err().error_type(), "InventoryFailed");
    let mut g = guard(story(), &[]);
    g.notifier.fail = true;
    assert_eq!(g.handle(&sweep(), now()).await.unwrap_err().error_type(), "NotifyFailed");
}

#[tokio::test]
async fn healthy_account_sends_nothing() {
    let mut s = story();
    for i in s.instances.values_mut() {
        i.state = InstanceState::Running;
    }
    s.groups.values_mut().next().unwrap().suspended.clear();
    let g = guard(s, &[("POLICY", "recover")]);
    let report = g.handle(&sweep(), now()).await.unwrap();
    assert!(report.findings.is_empty() && sent(&g).is_empty() && g.actuator.calls().is_empty());
}

#[tokio::test]
async fn health_event_for_a_running_member_announces_the_retirement() {
    let mut s = story();
    for i in s.instances.values_mut() {
        i.state = InstanceState::Running;
    }
    let g = guard(s, &[]);
    let event = json!({
        "source": "aws.health", "detail-type": "AWS Health Event", "account": "123456789012",
        "detail": {"service": "EC2", "eventTypeCategory": "scheduledChange",
                   "eventTypeCode": "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED",
                   "startTime": "Thu, 10 Dec 2026 13:19:03 GMT",
                   "affectedEntities": [{"entityValue": format!("arn:aws:ec2:us-east-1:123456789012:instance/{}", id(3))}]}
    });
    let report = g.handle(&event, now()).await.unwrap();
    assert!(report.findings.iter().any(|f| f.kind() == "RetirementScheduled"));
    let n = &sent(&g)[0];
    assert!(n.body.contains("2026-12-10 13:19 UTC") && n.body.contains("will NOT replace it"), "{}", n.body);
}

// ---- escalation, deduplication and resolution ----

const CHAT: &str = "arn:aws:sns:us-east-1:123456789012:chat";
const EMAIL: &str = "arn:aws:sns:us-east-1:123456789012:email";
const PAGER: &str = "arn:aws:sns:us-east-1:123456789012:pager";

fn tiered(snapshot: Snapshot) -> TestGuard {
    let tiers = format!("0={CHAT},30m={EMAIL},2h={PAGER}");
    let mut s = snapshot;
    // Stop times unknown, so the age runs from the first sweep that sees the group.
    for i in s.instances.values_mut() {
        i.state_transition_reason = None;
    }
    guard(s, &[("ESCALATION_TIERS", &tiers)])
}

fn at(minutes: i64) -> DateTime<Utc> {
    now() + chrono::Duration::minutes(minutes)
}

fn topics_sent(g: &TestGuard) -> Vec<(String, String)> {
    let sent = g.notifier.sent.lock().unwrap();
    sent.iter().map(|(t, n)| (t.rsplit(':').next().unwrap().to_owned(), n.subject.clone())).collect()
}

fn repair(g: &TestGuard) {
    let mut s = g.inventory.state.lock().unwrap();
    for i in s.instances.values_mut() {
        i.state = InstanceState::Running;
        i.status = Some(crate::domain::StatusChecks { instance: "ok".into(), system: "ok".into() });
    }
    s.groups.values_mut().next().unwrap().suspended.clear();
}

#[tokio::test]
async fn five_sweeps_give_one_notice_per_tier_and_one_resolution_per_tier() {
    let g = tiered(story());
    for minutes in [0, 10, 31, 125] {
        g.handle(&sweep(), at(minutes)).await.unwrap();
    }
    repair(&g);
    let last = g.handle(&sweep(), at(130)).await.unwrap();
    assert_eq!(last.resolved, ["stranded:es-data"]);
    let sent = topics_sent(&g);
    let names: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(names, ["chat", "email", "pager", "chat", "email", "pager"], "{sent:#?}");
    assert!(sent[1].1.contains("CRITICAL ESCALATED"), "{}", sent[1].1);
    assert!(sent[2].1.contains("CRITICAL ESCALATED"), "{}", sent[2].1);
    assert!(sent[3..].iter().all(|(_, s)| s.contains("RESOLVED")), "{sent:#?}");
    assert!(g.state.records.lock().unwrap().values().all(|r| r.resolved_at.is_some()), "only tombstones left");
}

#[tokio::test]
async fn the_same_event_delivered_ten_times_is_notified_once() {
    let g = tiered(story());
    let event = json!({
        "source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification",
        "detail": {"instance-id": id(1).as_str(), "state": "stopped"}
    });
    for _ in 0..10 {
        let report = g.handle(&event, now()).await.unwrap();
        assert_eq!(report.status, Status::Handled);
    }
    assert_eq!(topics_sent(&g).len(), 1);
}

#[tokio::test]
async fn concurrent_invocations_notify_each_tier_once() {
    let g = tiered(story());
    let event = sweep();
    let runs = (0..4).map(|_| g.handle(&event, now()));
    let reports = futures::future::join_all(runs).await;
    assert!(reports.iter().all(Result::is_ok));
    assert_eq!(topics_sent(&g).len(), 1);
    let quiet = reports.iter().flat_map(|r| &r.as_ref().unwrap().conditions).filter(|c| c.quiet.is_some()).count();
    assert_eq!(quiet, 3, "three invocations left it to the winner");
    let runs = (0..4).map(|_| g.handle(&event, at(31)));
    futures::future::join_all(runs).await;
    assert_eq!(topics_sent(&g).len(), 2);
}

#[tokio::test]
async fn lost_state_means_a_new_first_notice_never_silence() {
    let g = tiered(story());
    g.handle(&sweep(), at(0)).await.unwrap();
    g.state.records.lock().unwrap().clear();
    g.handle(&sweep(), at(40)).await.unwrap();
    let names: Vec<String> = topics_sent(&g).into_iter().map(|(t, _)| t).collect();
    assert_eq!(names, ["chat", "chat"]);
}

#[tokio::test]
async fn an_unreadable_record_is_discarded_and_the_condition_notified_afresh() {
    let g = tiered(story());
    g.state.corrupt.lock().unwrap().push("stranded:es-data".into());
    g.handle(&sweep(), at(0)).await.unwrap();
    assert_eq!(topics_sent(&g).len(), 1);
    assert!(g.state.corrupt.lock().unwrap().is_empty());
    assert_eq!(g.state.records.lock().unwrap()["stranded:es-data"].tier, 0);
}

#[tokio::test]
async fn a_failed_publish_releases_the_claim_so_the_retry_notifies() {
    let mut g = tiered(story());
    g.notifier.fail = true;
    assert!(g.handle(&sweep(), at(0)).await.is_err());
    assert!(g.state.records.lock().unwrap().is_empty(), "claim released");
    g.notifier.fail = false;
    g.handle(&sweep(), at(1)).await.unwrap();
    assert_eq!(topics_sent(&g).len(), 1);
}

#[tokio::test]
async fn what_the_guard_repairs_in_one_invocation_is_notified_once_at_tier_0() {
    let mut s = story();
    s.groups.values_mut().next().unwrap().members[0].health_status = "Unhealthy".into();
    let tiers = format!("0={CHAT},30m={EMAIL}");
    let g = guard(s, &[("POLICY", "recover"), ("ESCALATION_TIERS", &tiers)]);
    let report = g.handle(&sweep(), now()).await.unwrap();
    assert!(report.remaining.is_empty());
    let sent = topics_sent(&g);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].1.contains("2 started, resumed"), "{}", sent[0].1);
    let next = g.handle(&sweep(), at(60)).await.unwrap();
    assert_eq!(next.resolved, ["stranded:es-data"]);
    let sent = topics_sent(&g);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert!(sent[1].1.contains("RESOLVED"), "{}", sent[1].1);
    g.handle(&sweep(), at(70)).await.unwrap();
    assert_eq!(topics_sent(&g).len(), 2, "nothing open, nothing more to say");
}

#[tokio::test]
async fn concurrent_repairs_are_reported_once() {
    let tiers = format!("0={CHAT},30m={EMAIL}");
    let g = guard(story(), &[("POLICY", "recover"), ("ESCALATION_TIERS", &tiers)]);
    let event = sweep();
    let reports = futures::future::join_all((0..4).map(|_| g.handle(&event, now()))).await;
    assert!(reports.iter().all(Result::is_ok));
    // However the four interleave: the repair is reported once, and recovered at most once.
    let sent = topics_sent(&g);
    let problems = sent.iter().filter(|(_, s)| !s.contains("RESOLVED")).count();
    let recovered = sent.iter().filter(|(_, s)| s.contains("RESOLVED")).count();
    assert_eq!(problems, 1, "{sent:#?}");
    assert!(recovered <= 1, "{sent:#?}");
}

#[tokio::test]
async fn sweep_announces_retirements_from_instance_status_events_without_a_health_event() {
    let mut s = story();
    for i in s.instances.values_mut() {
        i.state = InstanceState::Running;
    }
    s.groups.values_mut().next().unwrap().suspended.clear();
    let inst = s.instances.get_mut(&id(4)).unwrap();
    inst.root_device = crate::domain::RootDevice::InstanceStore;
    inst.scheduled_events = vec![
        crate::domain::ScheduledEvent {
            code: "instance-retirement".into(),
            description: "The instance is running on degraded hardware".into(),
            not_before: Some("2026-12-05T09:00:00Z".parse().unwrap()),
        },
        crate::domain::ScheduledEvent {
            code: "system-reboot".into(),
            description: "[Completed] Scheduled reboot".into(),
            not_before: None,
        },
    ];
    let g = guard(s, &[]);
    let report = g.handle(&sweep(), now()).await.unwrap();
    let kinds: Vec<&str> = report.findings.iter().map(|f| f.kind()).collect();
    assert_eq!(kinds, ["RetirementScheduled"]);
    let n = &sent(&g)[0];
    // Its group is not suspended, so it replaces the instance: told, at info.
    assert!(n.subject.contains("INFO: i-00000000000000004 retires 12-05 09:00Z, group replaces it"), "{}", n.subject);
    for needle in [
        "instance retirement scheduled on 2026-12-05 09:00 UTC (in 6d21h00m)",
        "root device instance store",
        "AWS will terminate it (instance-store root: its local data is lost) and its group will replace it",
        "seen in DescribeInstanceStatus (scheduled events)",
    ] {
        assert!(n.body.contains(needle), "{needle} missing from {}", n.body);
    }
}

#[tokio::test]
async fn an_unreadable_state_store_still_notifies_but_only_at_tier_0() {
    let mut g = guard(story(), &[("ESCALATION_TIERS", &format!("0={CHAT},30m={EMAIL},2h={PAGER}"))]);
    g.state.unreadable = true;
    // The story's instances stopped days before `now`: every tier is due by age.
    let report = g.handle(&sweep(), now()).await.unwrap();
    assert!(!report.deduplicated);
    let sent = topics_sent(&g);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "chat");
    assert!(g.notifier.sent.lock().unwrap()[0].1.body.contains("the state store is unavailable"));
}

fn start_calls(g: &TestGuard) -> Vec<String> {
    g.actuator.calls().into_iter().filter(|c| c.starts_with("start ")).collect()
}

#[tokio::test]
async fn the_start_bounds_hold_for_the_whole_invocation_not_per_round() {
    // Regression: each round's planner began counting at 0, so one sweep started all four.
    let env = [("POLICY", "recover"), ("MAX_STARTS_PER_INVOCATION", "1"), ("MAX_STARTS_PER_GROUP", "1")];
    let g = guard(three_groups(), &env);
    let report = g.handle(&sweep(), now()).await.unwrap();
    assert_eq!(start_calls(&g).len(), 1, "{:?}", g.actuator.calls());
    assert!(report.rounds > 1, "the first group went on to be resumed in later rounds");
    assert!(report.plan.skipped.iter().any(|s| s.reason.contains("MAX_STARTS_PER_INVOCATION=1")));
    // Later invocations serve the other groups, one each, before the second member of a.
    g.handle(&sweep(), now()).await.unwrap();
    g.handle(&sweep(), now()).await.unwrap();
    let started: Vec<String> = start_calls(&g);
    assert_eq!(started, [format!("start {}", id(11)), format!("start {}", id(21)), format!("start {}", id(31))]);
}

#[tokio::test]
async fn after_the_first_round_a_sweep_reads_only_the_groups_under_repair() {
    let g = guard(three_groups(), &[("POLICY", "recover"), ("MAX_STARTS_PER_INVOCATION", "1")]);
    let report = g.handle(&sweep(), now()).await.unwrap();
    assert_eq!(report.rounds, 2, "the start, then a look at what it changed");
    let reads = g.inventory.group_reads.lock().unwrap().clone();
    assert_eq!(reads[0], "*", "the first round reads every group: {reads:?}");
    assert!(reads[1..].iter().all(|r| r == "a"), "later rounds only a, the group repaired: {reads:?}");
    // The other groups are still reported from the first round's reading.
    let stranded = report.remaining.iter().filter(|f| f.kind() == "StrandedInstance").count();
    assert_eq!(stranded, 3, "b, c and a's second member: {:?}", report.remaining);
}

#[tokio::test]
async fn near_the_deadline_no_round_starts_and_the_notice_says_so() {
    let g = guard(story(), &[("POLICY", "recover")]);
    let report = g.handle_until(&sweep(), now(), Some(Instant::now())).await.unwrap();
    assert!(g.actuator.calls().is_empty(), "{:?}", g.actuator.calls());
    assert!(report.cut_short.as_deref().unwrap().contains("deadline is near"), "{:?}", report.cut_short);
    assert!(report.plan.skipped.iter().any(|s| s.action == "start_instance" && s.reason.contains("deadline")));
    let n = &sent(&g)[0];
    assert!(n.body.contains("STOPPED EARLY: the invocation's deadline is near"), "{}", n.body);
}

#[tokio::test]
async fn a_read_failure_after_writes_still_sends_the_notice_of_what_was_done_then_fails_for_a_retry() {
    // How many reads the first round makes, from a dry run (it writes nothing).
    let probe = guard(story(), &[("POLICY", "recover"), ("DRY_RUN", "true")]);
    probe.handle(&sweep(), now()).await.unwrap();
    let first_round = probe.inventory.reads.load(std::sync::atomic::Ordering::SeqCst);

    let mut g = guard(story(), &[("POLICY", "recover")]);
    g.inventory.fail_from = Some(first_round);
    let err = g.handle(&sweep(), now()).await.unwrap_err();
    assert_eq!(err.error_type(), "InventoryFailed");
    assert_eq!(start_calls(&g).len(), 2, "the starts were made: {:?}", g.actuator.calls());
    let notices = sent(&g);
    assert_eq!(notices.len(), 1, "what was done is told before the retry");
    let n = &notices[0];
    assert!(n.body.contains("STOPPED EARLY: reading AWS state failed after the writes above"), "{}", n.body);
    assert!(n.body.contains(&format!("start {}: done", id(1))), "{}", n.body);
}

#[tokio::test]
async fn a_member_that_never_passes_its_checks_is_a_stalled_recovery_and_nothing_is_resumed() {
    let mut g = guard(story(), &[("POLICY", "recover")]);
    g.actuator.checks = "impaired";
    let report = g.handle(&sweep(), now()).await.unwrap();
    assert!(!g.actuator.calls().iter().any(|c| c.starts_with("resume")), "{:?}", g.actuator.calls());
    let kinds: Vec<&str> = report.remaining.iter().map(|f| f.kind()).collect();
    assert!(kinds.contains(&"RecoveryStalled") && kinds.contains(&"RecoveryInProgress"), "{kinds:?}");
    let n = &sent(&g)[0];
    assert!(n.subject.contains("es-data: repair stalled (2 instances)"), "{}", n.subject);
    assert!(n.body.contains("REPAIR STALLED"), "{}", n.body);
    // The next sweep sends nothing new (already notified) and above all no RESOLVED.
    g.handle(&sweep(), now() + chrono::Duration::minutes(10)).await.unwrap();
    assert!(sent(&g).iter().all(|n| !n.subject.contains("RESOLVED")), "{:?}", sent(&g));
}

fn health(entities: &[&str], affected: &str) -> Value {
    json!({
        "source": "aws.health", "detail-type": "AWS Health Event", "account": "123456789012",
        "time": "2026-11-28T11:00:00Z", "region": "us-east-1",
        "detail": {
            "service": "EC2", "eventTypeCategory": "scheduledChange",
            "eventTypeCode": "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED",
            "startTime": "Thu, 10 Dec 2026 13:00:00 GMT", "affectedAccount": affected,
            "affectedEntities": entities.iter().map(|e| json!({"entityValue": e})).collect::<Vec<_>>()
        }
    })
}

#[tokio::test]
async fn one_unreadable_entity_is_named_and_the_readable_ones_are_handled() {
    let g = guard(story(), &[]);
    let arn = format!("arn:aws:ec2:us-east-1:123456789012:instance/{}", id(3));
    let report = g.handle(&health(&[&arn, "not-an-instance"], "123456789012"), now()).await.unwrap();
    assert_eq!(report.status, Status::Handled);
    let kinds: Vec<&str> = report.findings.iter().map(|f| f.kind()).collect();
    assert!(kinds.contains(&"RetirementScheduled") && kinds.contains(&"NotInspected"), "{kinds:?}");
    let n = &sent(&g)[0];
    assert!(n.body.contains(id(3).as_str()) && n.body.contains("not-an-instance"), "{}", n.body);
}

#[tokio::test]
async fn an_org_view_retirement_for_another_account_is_notified_as_not_inspected() {
    let g = guard(story(), &[]);
    let raw: Value =
        serde_json::from_str(include_str!("../../tests/fixtures/events/aws.health-scheduled-change-org.json")).unwrap();
    let report = g.handle(&raw, now()).await.unwrap();
    assert_eq!(report.status, Status::Handled);
    assert!(
        g.inventory.reads.load(std::sync::atomic::Ordering::SeqCst) <= 6,
        "nothing of another account is looked up here"
    );
    assert!(
        matches!(report.findings.as_slice(), [Finding::NotInspected { account: Some(a), .. }] if a == "210987654321"),
        "{:?}",
        report.findings
    );
    let notices = sent(&g);
    assert_eq!(notices.len(), 1);
    assert!(notices[0].body.contains("NOT INSPECTED: in account 210987654321"), "{}", notices[0].body);
    // A second delivery of the same announcement stays quiet.
    g.handle(&raw, now()).await.unwrap();
    assert_eq!(sent(&g).len(), 1);
}

#[tokio::test]
async fn an_announced_instance_that_is_not_found_is_notified_not_dropped() {
    let g = guard(story(), &[]);
    let report = g.handle(&health(&["i-0123456789abcdef0"], "123456789012"), now()).await.unwrap();
    assert!(
        matches!(report.findings.as_slice(), [Finding::NotInspected { why, .. }] if why.contains("not found")),
        "{:?}",
        report.findings
    );
    assert_eq!(sent(&g).len(), 1);
}

// ---- A sweep that cannot read everything ----

#[tokio::test]
async fn a_sweep_that_cannot_read_the_groups_notifies_what_it_read_and_touches_no_group() {
    let mut g = guard(story(), &[("POLICY", "recover")]);
    g.inventory.fail_method = Some("all_groups");
    let report = g.handle(&sweep(), now()).await.unwrap();
    assert_eq!(report.unread.len(), 1, "{:?}", report.unread);
    assert!(report.unread[0].part.contains("Auto Scaling groups"), "{:?}", report.unread);
    assert!(report.unread[0].error.contains("RequestLimitExceeded"));
    assert!(g.actuator.calls().is_empty(), "nothing planned for what was not read: {:?}", g.actuator.calls());
    let notices = sent(&g);
    assert_eq!(notices.len(), 1);
    let n = &notices[0];
    assert!(n.subject.contains("CRITICAL") && n.subject.contains("sweep could not read everything"), "{}", n.subject);
    // The stopped members it saw are named as unchecked: their group could not be read.
    assert!(n.body.contains("COULD NOT READ") && n.body.contains("unchecked: "), "{}", n.body);
    assert!(n.body.contains(id(1).as_str()) && n.body.contains(id(2).as_str()), "{}", n.body);
    assert!(n.body.contains("aws autoscaling describe-auto-scaling-instances --region us-east-1 --instance-ids"));
}

#[tokio::test]
async fn a_sweep_that_cannot_read_the_members_of_groups_plans_nothing_for_those_groups() {
    // Running members are read only for readiness (recover): that read fails.
    let mut g = guard(three_groups(), &[("POLICY", "recover")]);
    g.inventory.fail_method = Some("instances");
    let report = g.handle(&sweep(), now()).await.unwrap();
    assert!(report.unread.iter().any(|u| u.part.starts_with("running members of the groups")), "{:?}", report.unread);
    assert!(g.actuator.calls().is_empty(), "{:?}", g.actuator.calls());
    assert!(sent(&g)[0].body.contains("COULD NOT READ"));
}

#[tokio::test]
async fn a_sweep_that_cannot_read_everything_resolves_nothing_until_a_complete_sweep() {
    let g = guard(story(), &[]);
    g.handle(&sweep(), now()).await.unwrap();
    // The group heals (a person fixed it) while the instance reads fail.
    {
        let mut world = g.inventory.state.lock().unwrap();
        for inst in world.instances.values_mut() {
            inst.state = InstanceState::Running;
        }
        world.groups.values_mut().for_each(|grp| grp.suspended.clear());
    }
    let mut blind = guard(Snapshot::default(), &[]);
    blind.inventory = g.inventory.clone();
    blind.inventory.fail_method = Some("not_running");
    blind.state = g.state.clone();
    let report = blind.handle(&sweep(), now() + chrono::Duration::minutes(10)).await.unwrap();
    assert!(report.resolved.is_empty(), "an incomplete sweep resolved {:?}", report.resolved);
    assert!(g.state.records.lock().unwrap()["stranded:es-data"].resolved_at.is_none());
    assert!(g.state.records.lock().unwrap().contains_key("unread:sweep"), "the incomplete read is a condition");
    // The next complete sweep resolves both, aloud.
    let report = g.handle(&sweep(), now() + chrono::Duration::minutes(20)).await.unwrap();
    assert_eq!(report.resolved, ["stranded:es-data", "unread:sweep"]);
    assert!(sent(&g).iter().any(|n| n.subject.contains("RESOLVED")));
}

#[tokio::test]
async fn a_notify_only_event_reads_in_two_round_trips_and_recover_adds_the_running_members() {
    use std::sync::atomic::Ordering::SeqCst;
    let event = health(&[id(1).as_str(), id(2).as_str()], "123456789012");
    let g = guard(story(), &[]);
    let report = g.handle(&event, now()).await.unwrap();
    // instances ‖ memberships, then groups ‖ their stopped members: no running member is read.
    assert_eq!(g.inventory.reads.load(SeqCst), 4);
    let stranded = report.findings.iter().filter(|f| f.kind() == "StrandedInstance").count();
    assert_eq!(stranded, 2, "{:?}", report.findings);
    // Under recover a resume is planned only from every member's state and checks.
    let g = guard(story(), &[("POLICY", "recover"), ("DRY_RUN", "true")]);
    g.handle(&event, now()).await.unwrap();
    assert_eq!(g.inventory.reads.load(SeqCst), 5, "every member by id (no tag read), then their status checks");
}

#[tokio::test]
async fn an_event_for_one_member_still_counts_every_stopped_member_of_its_group() {
    let g = guard(story(), &[]);
    let report = g.handle(&health(&[id(1).as_str()], "123456789012"), now()).await.unwrap();
    let stranded: Vec<_> =
        report.findings.iter().filter_map(|f| f.instance().filter(|_| f.kind() == "StrandedInstance")).collect();
    assert_eq!(stranded, [&id(1), &id(2)], "the other stopped member is read by its group tag");
}

const TEAM: &str = "arn:aws:sns:us-east-1:123456789012:team-search";

/// The story with its group routed to TEAM by tag.
fn routed_story() -> Snapshot {
    let mut s = story();
    let g = s.groups.values_mut().next().unwrap();
    g.tags.insert(crate::config::NOTIFY_TOPIC_TAG.into(), TEAM.into());
    s
}

#[tokio::test]
async fn a_routed_group_is_notified_and_resolved_on_its_teams_topic_and_escalates_as_configured() {
    let mut s = routed_story();
    for i in s.instances.values_mut() {
        i.state_transition_reason = None;
    }
    let tiers = format!("0={CHAT},30m={EMAIL},2h={PAGER}");
    let env = [("ESCALATION_TIERS", tiers.as_str()), ("ROUTED_TOPIC_ARNS", TEAM), ("ROUTING_MODE", "replace")];
    let g = guard(s, &env);
    g.handle(&sweep(), at(0)).await.unwrap();
    g.handle(&sweep(), at(31)).await.unwrap();
    repair(&g);
    let last = g.handle(&sweep(), at(40)).await.unwrap();
    assert_eq!(last.resolved, ["stranded:es-data"]);
    let sent = topics_sent(&g);
    let names: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(names, ["team-search", "email", "email", "team-search"], "{sent:#?}");
    assert!(sent[2].1.contains("RESOLVED") && sent[3].1.contains("RESOLVED"), "{sent:#?}");
    let first = &sent_on(&g, TEAM)[0];
    assert!(first.body.contains("first notice, on topic team-search"), "{}", first.body);
}

/// The notices published to `topic`.
fn sent_on(g: &TestGuard, topic: &str) -> Vec<crate::notify::Notice> {
    g.notifier.sent.lock().unwrap().iter().filter(|(t, _)| t == topic).map(|(_, n)| n.clone()).collect()
}

#[tokio::test]
async fn a_team_topic_that_does_not_exist_sends_the_notice_and_its_failure_to_the_default_topic() {
    let env = [("POLICY", "recover"), ("ROUTED_TOPIC_ARNS", TEAM), ("ROUTING_MODE", "replace")];
    let mut g = guard(routed_story(), &env);
    g.actuator.failures.insert(format!("start {}", id(1)), FailureKind::Capacity);
    g.notifier.missing = vec![TEAM.into()];
    let report = g.handle(&sweep(), now()).await.unwrap();
    let topics: Vec<&str> = report.notifications.iter().map(|n| n.topic.as_str()).collect();
    assert_eq!(topics, [crate::testing::TOPIC], "{:?}", report.notifications);
    let n = &sent(&g)[0];
    assert!(n.body.contains(&format!("This notice was for topic {TEAM}, which could not take it")), "{}", n.body);
    assert!(n.body.contains("FAILED (Capacity"), "the failed start goes with it: {}", n.body);
}

#[tokio::test]
async fn in_add_mode_a_failed_step_reaches_the_team_and_the_default_topic() {
    let mut g = guard(routed_story(), &[("POLICY", "recover"), ("ROUTED_TOPIC_ARNS", TEAM)]);
    g.actuator.failures.insert(format!("start {}", id(1)), FailureKind::Capacity);
    g.handle(&sweep(), now()).await.unwrap();
    for topic in [crate::testing::TOPIC, TEAM] {
        let notices = sent_on(&g, topic);
        assert_eq!(notices.len(), 1, "{topic}");
        assert!(notices[0].body.contains("FAILED (Capacity"), "{topic}: {}", notices[0].body);
    }
}

#[tokio::test]
async fn a_dry_run_with_proactive_moves_reports_the_next_move_and_writes_nothing() {
    let mut s = story();
    for i in s.instances.values_mut() {
        i.state = InstanceState::Running;
        i.state_reason_code = None;
        i.status = Some(crate::domain::StatusChecks { instance: "ok".into(), system: "ok".into() });
    }
    s.groups.values_mut().next().unwrap().suspended.clear();
    s.instances.get_mut(&id(3)).unwrap().scheduled_events = vec![crate::domain::ScheduledEvent {
        code: "instance-retirement".into(),
        description: "The instance is running on degraded hardware".into(),
        not_before: Some(now() + chrono::Duration::days(5)),
    }];
    let ok_since = Some(now() - chrono::Duration::hours(1));
    let alarm = crate::domain::Alarm { name: "es-cluster-green".into(), state: "OK".into(), since: ok_since };
    s.alarms.insert(alarm.name.clone(), Some(alarm));
    let env = [
        ("POLICY", "recover"),
        ("DRY_RUN", "true"),
        ("PROACTIVE_MOVES", "true"),
        ("MAINTENANCE_WINDOW", "Sat 10:00-14:00"),
        ("HEALTH_ALARM", "es-cluster-green"),
    ];
    let g = guard(s, &env);
    let report = g.handle(&sweep(), now()).await.unwrap();
    assert!(g.actuator.calls().is_empty());
    let moves = serde_json::to_value(&report.proactive).unwrap();
    assert_eq!(moves[0]["group"], "es-data", "{moves:#}");
    assert_eq!(moves[0]["decision"]["decision"], "step", "{moves:#}");
    assert_eq!(moves[0]["decision"]["instance"], id(3).as_str());
    assert_eq!(moves[0]["decision"]["step"]["action"], "begin");
    // MinSize 0: desired can drop by one, so the member would be held by Standby.
    assert!(moves[0]["decision"]["step"]["record"].as_str().unwrap().ends_with(" standby"), "{moves:#}");
}
