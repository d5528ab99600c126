//! Golden files: the email text, SMS text, chat message and JSON document of the
//! notices an operator gets in the scenarios that matter (the story, a repair in
//! progress, a stalled repair, a person-stopped member, instance-store and EBS
//! retirements, an announced retirement the guard cannot inspect, a resolution),
//! rendered by the whole handler over the in-memory adapters at a fixed clock. Each
//! notice's document is validated against `docs/notice-schema.json`. `UPDATE_GOLDEN=1`
//! writes the files anew; a failing comparison prints the line diff.

use chrono::Duration;
use retirement_guard::domain::{InstanceState, RootDevice, ScheduledEvent, Snapshot, SuspendedProcess};
use retirement_guard::notify::Notice;
use retirement_guard::testing::{TestGuard, group, guard, id, instance, now, sent, story, sweep};
use serde_json::{Value, json};
use std::path::PathBuf;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The notice schema, compiled once per test.
fn schema() -> jsonschema::Validator {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/notice-schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("docs/notice-schema.json is a valid JSON Schema")
}

/// Fails with every schema error of `notice`'s document.
pub fn assert_valid(validator: &jsonschema::Validator, notice: &Notice) {
    let document: Value = serde_json::from_str(&notice.document).expect("the document is JSON");
    let errors: Vec<String> =
        validator.iter_errors(&document).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "{} does not match docs/notice-schema.json:\n{}\n{document:#}",
        notice.subject,
        errors.join("\n")
    );
}

/// Compares (or, with UPDATE_GOLDEN=1, writes) one golden file.
fn check(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e} (UPDATE_GOLDEN=1 cargo test --test integration golden:: writes it)", path.display())
    });
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, actual);
        let shown = diff.unified_diff().context_radius(3).header("golden", "rendered").to_string();
        panic!("{name} differs from the golden file (UPDATE_GOLDEN=1 regenerates it after you read it):\n{shown}");
    }
}

/// Checks the email, SMS, chat and document formats of `notice` under `scenario`.
fn golden(scenario: &str, notice: &Notice) {
    assert_valid(&schema(), notice);
    assert!(notice.sms.len() <= 140 && notice.sms.is_ascii(), "{:?}", notice.sms);
    let chat: Value = serde_json::from_str(&notice.chat).unwrap();
    assert_eq!((chat["version"].as_str(), chat["source"].as_str()), (Some("1.0"), Some("custom")));
    assert!(chat["content"]["description"].as_str().is_some_and(|d| !d.is_empty()));
    check(&format!("{scenario}.email.txt"), &format!("Subject: {}\n\n{}", notice.subject, notice.body));
    check(&format!("{scenario}.sms.txt"), &format!("{}\n", notice.sms));
    check(&format!("{scenario}.chat.json"), &format!("{}\n", serde_json::to_string_pretty(&chat).unwrap()));
    let document: Value = serde_json::from_str(&notice.document).unwrap();
    check(&format!("{scenario}.document.json"), &format!("{}\n", serde_json::to_string_pretty(&document).unwrap()));
}

async fn only_notice(g: &TestGuard) -> Notice {
    g.handle(&sweep(), now()).await.unwrap();
    let mut notices = sent(g);
    assert_eq!(notices.len(), 1, "{notices:#?}");
    notices.remove(0)
}

#[tokio::test]
async fn story_under_notify() {
    let g = guard(story(), &[]);
    golden("story-notify", &only_notice(&g).await);
}

#[tokio::test]
async fn story_repaired_in_one_invocation() {
    let g = guard(story(), &[("POLICY", "recover")]);
    golden("story-recovered", &only_notice(&g).await);
}

#[tokio::test]
async fn mid_repair_waiting_for_status_checks() {
    let mut g = guard(story(), &[("POLICY", "recover")]);
    g.actuator.checks = "initializing";
    golden("mid-repair", &only_notice(&g).await);
}

#[tokio::test]
async fn stalled_repair() {
    let mut g = guard(story(), &[("POLICY", "recover")]);
    g.actuator.checks = "impaired";
    golden("stalled", &only_notice(&g).await);
}

#[tokio::test]
async fn member_stopped_by_a_person() {
    let mut s = story();
    let inst = s.instances.get_mut(&id(2)).unwrap();
    inst.state_reason_code = Some("Client.UserInitiatedShutdown".into());
    s.instances.get_mut(&id(1)).unwrap().state = InstanceState::Running;
    s.instances.get_mut(&id(1)).unwrap().state_reason_code = None;
    let g = guard(s, &[("POLICY", "recover")]);
    golden("person-stopped", &only_notice(&g).await);
}

/// Three web servers, one on instance store with a retirement in `hours`, the group
/// with `suspended` processes.
fn retiring(root: RootDevice, suspended: &[(&str, &str)], hours: i64) -> Snapshot {
    let mut s = Snapshot::default();
    let mut g = group("web", &[21, 22, 23], &[]);
    g.suspended = suspended.iter().map(|(n, r)| SuspendedProcess { name: (*n).into(), reason: (*r).into() }).collect();
    for n in [21, 22, 23] {
        let mut inst = instance(n, InstanceState::Running, None, Some("web"));
        if n == 22 {
            inst.root_device = root;
            inst.scheduled_events = vec![ScheduledEvent {
                code: "instance-retirement".into(),
                description: "The instance is running on degraded hardware".into(),
                not_before: Some(now() + Duration::hours(hours)),
            }];
        }
        s.instances.insert(inst.id.clone(), inst);
    }
    s.groups.insert(g.name.clone(), g);
    s
}

#[tokio::test]
async fn instance_store_retirement_its_group_replaces() {
    let g = guard(retiring(RootDevice::InstanceStore, &[], 72), &[]);
    golden("instance-store-replaced", &only_notice(&g).await);
}

#[tokio::test]
async fn instance_store_retirement_within_a_day_in_a_suspended_group() {
    let g =
        guard(retiring(RootDevice::InstanceStore, &[("Launch", "User suspended at 2026-11-27T09:00:00Z")], 20), &[]);
    golden("instance-store-stranded", &only_notice(&g).await);
}

#[tokio::test]
async fn ebs_retirement_five_days_out_in_a_suspended_group() {
    let g = guard(retiring(RootDevice::Ebs, &[("Launch", ""), ("Terminate", "")], 5 * 24), &[]);
    golden("retirement-upcoming", &only_notice(&g).await);
}

#[tokio::test]
async fn announced_retirement_in_another_account_is_not_inspected() {
    let g = guard(story(), &[]);
    let raw: Value =
        serde_json::from_str(include_str!("../fixtures/events/aws.health-scheduled-change-org.json")).unwrap();
    g.handle(&raw, now()).await.unwrap();
    let notices = sent(&g);
    assert_eq!(notices.len(), 1);
    golden("not-inspected", &notices[0]);
}

#[tokio::test]
async fn resolved_once_a_person_repaired_the_group() {
    let g = guard(story(), &[]);
    g.handle(&sweep(), now()).await.unwrap();
    {
        let mut world = g.inventory.state.lock().unwrap();
        for inst in world.instances.values_mut() {
            inst.state = InstanceState::Running;
            inst.state_reason_code = None;
            inst.status = Some(retirement_guard::domain::StatusChecks { instance: "ok".into(), system: "ok".into() });
        }
        for g in world.groups.values_mut() {
            g.suspended.clear();
        }
    }
    g.handle(&sweep(), now() + Duration::minutes(80)).await.unwrap();
    let notices = sent(&g);
    assert_eq!(notices.len(), 2, "{notices:#?}");
    golden("resolved", &notices[1]);
}

#[tokio::test]
async fn a_rejected_event_matches_the_schema_too() {
    let g = guard(story(), &[]);
    let bad = json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}});
    g.handle(&bad, now()).await.unwrap();
    let notices = sent(&g);
    assert_eq!(notices.len(), 1);
    assert_valid(&schema(), &notices[0]);
}
