//! The whole pipeline over in-memory adapters: what is read, planned, done and notified.

use super::*;
use crate::actions::recording::RecordingActuator;
use crate::config::tests::config_with;
use crate::domain::{InstanceState, Snapshot};
use crate::error::{AwsFailure, FailureKind};
use crate::findings::tests::{id, story};
use crate::inventory::memory::MemoryInventory;
use crate::notify::Notice;
use serde_json::json;
use std::sync::Mutex;

#[derive(Default)]
struct RecordingNotifier {
    sent: Mutex<Vec<Notice>>,
    fail: bool,
}

impl Notifier for RecordingNotifier {
    async fn publish(&self, notice: &Notice) -> Result<String, AwsFailure> {
        if self.fail {
            return Err(AwsFailure {
                operation: "Publish",
                kind: FailureKind::Transient,
                code: Some("Throttling".into()),
                message: "slow down".into(),
            });
        }
        let mut sent = self.sent.lock().unwrap();
        sent.push(notice.clone());
        Ok(format!("msg-{}", sent.len()))
    }
}

type TestGuard = Guard<MemoryInventory, RecordingActuator, RecordingNotifier>;

fn guard(snapshot: Snapshot, env: &[(&str, &str)]) -> TestGuard {
    let world = MemoryInventory::new(snapshot);
    let mut env = env.to_vec();
    env.push(("WAIT_SECONDS", "0"));
    Guard {
        config: config_with(&env).unwrap(),
        inventory: world.clone(),
        actuator: RecordingActuator::new(world),
        notifier: RecordingNotifier::default(),
        region: "us-east-1".into(),
    }
}

fn now() -> DateTime<Utc> {
    "2026-11-28T12:00:00Z".parse().unwrap()
}

fn sweep() -> Value {
    json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
}

fn sent(g: &TestGuard) -> Vec<Notice> {
    g.notifier.sent.lock().unwrap().clone()
}

#[tokio::test]
async fn notify_policy_changes_nothing_and_sends_one_notice_naming_group_and_instances() {
    let g = guard(story(), &[]);
    let report = g.handle(&sweep(), now()).await.unwrap();
    assert_eq!(report.status, Status::Handled);
    assert!(g.actuator.calls().is_empty());
    let notices = sent(&g);
    assert_eq!(notices.len(), 1);
    let n = &notices[0];
    assert!(n.subject.contains("2 instances stranded in es-data"), "{}", n.subject);
    assert!(n.body.contains(id(1).as_str()) && n.body.contains(id(2).as_str()));
    assert!(n.body.contains("aws ec2 start-instances --region us-east-1 --instance-ids"));
    assert_eq!(report.notification.unwrap().message_id, "msg-1");
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
    assert!(n.subject.contains("2 instances stranded in es-data; 2 started, resumed"), "{}", n.subject);
    assert!(n.body.contains("all clear"));
}

#[tokio::test]
async fn dry_run_plans_and_notifies_but_writes_nothing() {
    let g = guard(story(), &[("POLICY", "recover"), ("DRY_RUN", "true")]);
    let report = g.handle(&sweep(), now()).await.unwrap();
    assert!(g.actuator.calls().is_empty());
    assert_eq!(report.plan.steps.len(), 3);
    assert!(report.outcomes.iter().all(|o| o.status == crate::actions::Status::DryRun));
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
    assert!(n.body.contains("FAILED: Capacity"), "{}", n.body);
}

#[tokio::test]
async fn resume_waits_while_status_checks_are_pending() {
    let mut g = guard(story(), &[("POLICY", "recover")]);
    g.actuator.checks_ok = false;
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
