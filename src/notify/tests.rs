//! Rendering tests: subject bounds, body content, hostile names, attributes.

use super::*;
use crate::actions::{Outcome, Status};
use crate::error::{AwsFailure, FailureKind};
use crate::findings::tests::found;
use crate::findings::tests::{id, now, story};
use crate::policy::Action;

fn input<'a>(findings: &'a [&'a Finding], outcomes: &'a [Outcome], remaining: &'a [&'a Finding]) -> NoticeInput<'a> {
    NoticeInput {
        findings,
        outcomes,
        pending: &[],
        remaining,
        dry_run: false,
        region: "eu-west-1",
        account: Some("123456789012"),
        environment: "production",
        trigger: "scheduled sweep",
        now: "2026-11-28T12:00:00Z".parse().unwrap(),
        tier: 0,
        escalation: &[],
        cut_short: None,
        warnings: &[],
    }
}

#[test]
fn subject_is_at_most_99_characters_without_line_breaks_and_keeps_the_region() {
    let long = format!("{}\nSubject: injected", "g".repeat(300));
    let s = fit_subject(&long);
    assert!(s.chars().count() <= SUBJECT_MAX && !s.contains('\n'));
    let mut snap = story();
    let mut g = snap.groups.pop_first().unwrap().1;
    g.name = crate::domain::AsgName::parse(&"very-long-group-name-".repeat(10)).unwrap();
    for m in &g.members {
        snap.instances.get_mut(&m.id).unwrap().tags.insert(crate::domain::GROUP_TAG.into(), g.name.to_string());
    }
    snap.groups.insert(g.name.clone(), g);
    let f = found(&snap, &[]);
    let refs: Vec<&Finding> = f.iter().collect();
    let n = render(&input(&refs, &[], &refs));
    assert!(n.subject.chars().count() <= SUBJECT_MAX, "{}", n.subject);
    assert!(n.subject.ends_with("… (eu-west-1)"), "{}", n.subject);
}

#[test]
fn body_says_what_happened_what_was_done_and_what_to_do_next() {
    let f = found(&story(), &[]);
    let refs: Vec<&Finding> = f.iter().collect();
    let outcomes = vec![
        Outcome {
            action: Action::StartInstance { instance: id(1), group: refs[0].group().cloned() },
            status: Status::Done { detail: "StartInstances accepted, now pending".into() },
        },
        Outcome {
            action: Action::StartInstance { instance: id(2), group: refs[0].group().cloned() },
            status: Status::Failed {
                failure: AwsFailure {
                    operation: "StartInstances",
                    kind: FailureKind::Capacity,
                    code: Some("InsufficientInstanceCapacity".into()),
                    message: "no capacity".into(),
                },
            },
        },
    ];
    let n = render(&input(&refs, &outcomes, &refs));
    assert_eq!(n.severity, Severity::Critical);
    for needle in [
        "es-data: 2 of 6 members stopped by AWS retirement; the group cannot replace them while Launch, Terminate are suspended\n",
        "stopped since 2026-11-20 10:00 UTC (8d02h00m ago); stopped by AWS (scheduled retirement)",
        "WHAT THE GUARD DID",
        "start i-00000000000000001: done",
        "FAILED (InsufficientInstanceCapacity no capacity)",
        "NEXT STEPS\n  1. Start the instances AWS stopped",
        "aws ec2 start-instances --region eu-west-1 --instance-ids i-00000000000000001 i-00000000000000002",
        "for id in i-00000000000000001 i-00000000000000002; do aws autoscaling set-instance-health --region eu-west-1 --instance-id \"$id\" --health-status Healthy",
        "aws autoscaling resume-processes --region eu-west-1 --auto-scaling-group-name 'es-data' --scaling-processes Launch Terminate",
    ] {
        assert!(n.body.contains(needle), "missing {needle:?} in\n{}", n.body);
    }
    // Nothing is said twice.
    let lines: Vec<&str> = n.body.lines().filter(|l| !l.trim().is_empty()).collect();
    let unique: std::collections::BTreeSet<&str> = lines.iter().copied().collect();
    assert_eq!(lines.len(), unique.len(), "{}", n.body);
    let v: serde_json::Value = serde_json::from_str(&n.document).unwrap();
    assert_eq!((v["schema"].as_str(), v["version"].as_u64()), (Some("retirement-guard/notice"), Some(1)));
    assert_eq!(v["severity"], "critical");
    assert!(n.plain().contains("--- machine-readable ---"));
}

#[test]
fn attributes_carry_severity_kinds_groups_account_region_and_environment() {
    let f = found(&story(), &[]);
    let refs: Vec<&Finding> = f.iter().collect();
    let n = render(&input(&refs, &[], &refs));
    assert_eq!(n.attributes["severity"], AttributeValue::String("critical".into()));
    assert_eq!(
        n.attributes["finding_kinds"],
        AttributeValue::StringArray(vec!["StrandedInstance".into(), "SuspendedProcesses".into()])
    );
    assert_eq!(n.attributes["groups"], AttributeValue::StringArray(vec!["es-data".into()]));
    assert_eq!(n.attributes["account"], AttributeValue::String("123456789012".into()));
    assert_eq!(n.attributes["environment"], AttributeValue::String("production".into()));
}

#[test]
fn group_names_are_quoted_for_the_shell_in_commands() {
    assert_eq!(shell_quote("es-data"), "'es-data'");
    assert_eq!(shell_quote("a'; rm -rf / #"), r"'a'\''; rm -rf / #'");
    assert_eq!(shell_quote("a\nb"), "'a b'");
}

#[test]
fn huge_notices_stay_under_the_sns_limit() {
    let mut snap = story();
    let g = snap.groups.values_mut().next().unwrap();
    for n in 100..5100 {
        g.members.push(crate::domain::Member {
            id: id(n),
            lifecycle_state: "InService".into(),
            health_status: "Healthy".into(),
        });
        let inst = crate::findings::tests::instance(
            n,
            crate::domain::InstanceState::Stopped,
            Some("Server.ScheduledStop"),
            Some("es-data"),
        );
        snap.instances.insert(inst.id.clone(), inst);
    }
    let f = found(&snap, &[]);
    let refs: Vec<&Finding> = f.iter().collect();
    let n = render(&input(&refs, &[], &refs));
    // The whole structured message (text, document, chat, SMS) fits in one SNS message.
    let sizes = (n.body.len(), n.document.len(), n.chat.len());
    assert!(n.structured(true).len() < 256 * 1024, "{} {sizes:?}", n.structured(true).len());
    assert!(n.plain().len() < 256 * 1024, "{}", n.plain().len());
    assert!(n.body.contains("more (see the JSON document"), "{}", n.body);
}

#[test]
fn rejected_event_notice_names_the_error() {
    let n = render_rejected("AWS Health event has no detail.affectedEntities", "us-east-1", None, "staging", now());
    assert!(n.subject.contains("event rejected") && n.subject.chars().count() <= SUBJECT_MAX);
    assert!(n.body.contains("detail.affectedEntities"));
}
