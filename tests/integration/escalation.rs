//! End to end: escalation tiers, deduplication and resolution notices with the
//! state in DynamoDB (moto), the clock injected with GUARD_NOW (never slept on).

use crate::common::*;
use chrono::{Duration, SecondsFormat, Utc};
use serde_json::Value;

fn tier_env(w: &World) -> Vec<(String, String)> {
    let t = &w.seed["tier_topics"];
    let tiers = format!(
        "0={},30m={},2h={}",
        t["chat"].as_str().unwrap(),
        t["email"].as_str().unwrap(),
        t["pager"].as_str().unwrap()
    );
    vec![("ESCALATION_TIERS".into(), tiers), ("STATE_TABLE".into(), w.seed["state_table"].as_str().unwrap().into())]
}

fn run_at(w: &World, args: &[&str], env: &[(String, String)], at: chrono::DateTime<Utc>) -> Value {
    let now = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.push(("GUARD_NOW", &now));
    w.run(args, &all)
}

fn subjects(notices: &[Value]) -> Vec<String> {
    notices.iter().map(|n| n["subject"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn five_sweeps_at_simulated_times_give_one_notice_per_tier_and_one_resolution_each() {
    let w = World::new();
    let env = tier_env(&w);
    let base = Utc::now();
    let mut sent = vec![];
    for minutes in [0, 10, 31, 125] {
        let report = run_at(&w, &["sweep"], &env, base + Duration::minutes(minutes));
        sent.push((minutes, report["notifications"].as_array().unwrap().len()));
    }
    assert_eq!(sent, [(0, 1), (10, 0), (31, 1), (125, 1)], "one new tier at a time");
    w.moto.scenario(&["repair", "--group", "es-data"]);
    let last = run_at(&w, &["sweep"], &env, base + Duration::minutes(130));
    assert_eq!(last["resolved"], serde_json::json!(["stranded:es-data"]));

    let chat = subjects(&w.notices_in("chat"));
    let email = subjects(&w.notices_in("email"));
    let pager = subjects(&w.notices_in("pager"));
    eprintln!("notices sent:\n  chat: {chat:#?}\n  email: {email:#?}\n  pager: {pager:#?}");
    assert_eq!((chat.len(), email.len(), pager.len()), (2, 2, 2), "{chat:#?}\n{email:#?}\n{pager:#?}");
    assert!(chat[0].contains("CRITICAL: es-data: 2/6 stopped by retirement, not replaced"), "{}", chat[0]);
    assert!(email[0].contains("CRITICAL ESCALATED"), "{}", email[0]);
    assert!(pager[0].contains("CRITICAL ESCALATED"), "{}", pager[0]);
    for s in [&chat[1], &email[1], &pager[1]] {
        assert!(s.contains("RESOLVED: 2 stranded members in group es-data"), "{s}");
    }
    assert!(w.notices().is_empty(), "the default topic is not a tier here");
}

#[test]
fn the_same_health_event_delivered_ten_times_gives_one_notice() {
    let w = World::new();
    let env = vec![("STATE_TABLE".to_owned(), w.seed["state_table"].as_str().unwrap().to_owned())];
    let event = w.health_event();
    let path = event.path().to_str().unwrap();
    let now = Utc::now();
    for n in 0..10 {
        run_at(&w, &["invoke", path], &env, now + Duration::seconds(n));
    }
    let notices = w.notices();
    assert_eq!(notices.len(), 1, "{:#?}", subjects(&notices));
}

#[test]
fn four_concurrent_invocations_give_one_notice_per_tier() {
    let w = World::new();
    let env = tier_env(&w);
    let now = (Utc::now() + Duration::minutes(125)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vars.push(("GUARD_NOW", &now));
    let outputs: Vec<_> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..4).map(|_| s.spawn(|| w.moto.guard(w.topic(), &["sweep"], &vars, None))).collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert!(outputs.iter().all(|o| o.status.success()));
    let counts: Vec<usize> = ["chat", "email", "pager"].iter().map(|q| w.notices_in(q).len()).collect();
    assert_eq!(counts, [1, 1, 1], "a condition found 2 h late reaches every tier, once");
    let quiet = outputs
        .iter()
        .map(|o| serde_json::from_slice::<Value>(&o.stdout).unwrap())
        .filter(|r| r["conditions"][0]["quiet"].is_string())
        .count();
    assert_eq!(quiet, 3);
}

#[test]
fn a_stalled_recovery_escalates_through_the_tiers_and_resolves_only_once_the_group_is_healthy_and_resumed() {
    let w = World::new();
    let stuck = w.stopped()[0].clone();
    w.moto.realism(&[("impaired", &format!("[\"{stuck}\"]"))]);
    let mut env = tier_env(&w);
    env.push(("POLICY".into(), "recover".into()));
    let base = Utc::now();
    let mut sent = vec![];
    for minutes in [0, 10, 31, 125] {
        let report = run_at(&w, &["sweep"], &env, base + Duration::minutes(minutes));
        let kinds: Vec<&str> =
            report["remaining"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
        assert!(kinds.contains(&"RecoveryStalled"), "at +{minutes} min: {kinds:?}");
        assert!(report["resolved"].as_array().unwrap().is_empty(), "nothing resolves while stalled: {report:#}");
        assert_eq!(suspended(&w.state(), "es-data"), ["Launch", "Terminate"], "no resume while a member is stalled");
        sent.push((minutes, report["notifications"].as_array().unwrap().len()));
    }
    assert_eq!(sent, [(0, 1), (10, 0), (31, 1), (125, 1)], "the stalled repair escalates like any condition");

    // The member recovers (e.g. a person rebooted it): the next sweep finishes the repair.
    w.moto.realism(&[("impaired", "[]")]);
    let last = run_at(&w, &["sweep"], &env, base + Duration::minutes(130));
    let done: Vec<&str> = last["outcomes"].as_array().unwrap().iter().map(|o| o["action"].as_str().unwrap()).collect();
    assert_eq!(done, ["set_instance_healthy", "resume_processes", "clear_recovering"], "{last:#}");
    assert_eq!(last["resolved"], serde_json::json!(["stalled:es-data", "stranded:es-data"]));
    let after = w.state();
    assert!(suspended(&after, "es-data").is_empty());
    assert_eq!(w.moto.realism_stats()["terminated"], serde_json::json!([]));

    let chat = subjects(&w.notices_in("chat"));
    let email = subjects(&w.notices_in("email"));
    let pager = subjects(&w.notices_in("pager"));
    eprintln!("notices sent:\n  chat: {chat:#?}\n  email: {email:#?}\n  pager: {pager:#?}");
    assert_eq!((chat.len(), email.len(), pager.len()), (2, 2, 2), "{chat:#?}\n{email:#?}\n{pager:#?}");
    for s in [&chat[0], &email[0], &pager[0]] {
        assert!(s.contains("es-data: repair stalled (1 instance)"), "{s}");
    }
    for s in [&chat[1], &email[1], &pager[1]] {
        assert!(s.contains("RESOLVED: recovery of group es-data stalled (+1 more)"), "{s}");
    }
}
