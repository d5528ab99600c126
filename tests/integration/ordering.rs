//! End to end: duplicates, out-of-order events, races and concurrent invocations
//! end in the same AWS state, with the same notices, as one clean delivery.
//! Every scenario is followed by one final sweep, so that pending RESOLVED notices
//! are sent in both worlds before they are compared.

use crate::common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn recover_env(w: &World) -> Vec<(String, String)> {
    vec![("POLICY".into(), "recover".into()), ("STATE_TABLE".into(), w.seed["state_table"].as_str().unwrap().into())]
}

fn vars(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// AWS state without the random ids: per group its members' (state, health) and its
/// suspended processes; the states of instances outside groups.
fn shape(state: &Value) -> Value {
    let mut groups = BTreeMap::new();
    for (name, g) in state["groups"].as_object().unwrap() {
        let mut members: Vec<String> = g["members"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(id, m)| format!("{}/{}", instance_state(state, id), m["health"].as_str().unwrap()))
            .collect();
        members.sort();
        groups.insert(name.clone(), json!({"members": members, "suspended": g["suspended"]}));
    }
    let mut alone: Vec<&str> = state["instances"]
        .as_object()
        .unwrap()
        .values()
        .filter(|i| i["group"].is_null())
        .map(|i| i["state"].as_str().unwrap())
        .collect();
    alone.sort();
    json!({"groups": groups, "standalone": alone})
}

/// Subjects of every notice received, sorted, with instance ids masked (they differ
/// between worlds) and the "; 2 started, resumed" summary dropped (which of several
/// racing invocations reports a repair decides what it says it did itself).
fn notices(w: &World) -> Vec<String> {
    let mut subjects: Vec<String> = w.notices().iter().map(|n| normalise(n["subject"].as_str().unwrap())).collect();
    subjects.sort();
    subjects
}

fn normalise(subject: &str) -> String {
    let mut s = subject.to_owned();
    if let (Some(from), Some(to)) = (s.find("; "), s.rfind(" (")) {
        s.replace_range(from..to, "");
    }
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(at) = rest.find("i-") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        let hex = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
        out.push_str(if hex >= 8 { "i-*" } else { "i-" });
        rest = &tail[if hex >= 8 { hex } else { 0 }..];
    }
    out.push_str(rest);
    out
}

fn state_change(id: &str, state: &str) -> tempfile::NamedTempFile {
    let path = format!("{ROOT}/events/aws.ec2-state-change-stopped.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["detail"]["instance-id"] = json!(id);
    event["detail"]["state"] = json!(state);
    write_temp(&event)
}

/// Runs `deliver` in a fresh world, then a final sweep; answers (AWS shape, notices).
fn outcome(
    env_of: fn(&World) -> Vec<(String, String)>,
    deliver: impl Fn(&World, &[(&str, &str)]),
) -> (Value, Vec<String>) {
    let w = World::new();
    let env = env_of(&w);
    deliver(&w, &vars(&env));
    w.run(&["sweep"], &vars(&env));
    (shape(&w.state()), notices(&w))
}

fn invoke(w: &World, file: &tempfile::NamedTempFile, env: &[(&str, &str)]) -> Value {
    w.run(&["invoke", file.path().to_str().unwrap()], env)
}

fn notify_env(w: &World) -> Vec<(String, String)> {
    vec![("STATE_TABLE".to_owned(), w.seed["state_table"].as_str().unwrap().to_owned())]
}

#[test]
fn the_same_health_event_ten_times_ends_like_one_clean_delivery() {
    let clean = outcome(notify_env, |w, env| {
        invoke(w, &w.health_event(), env);
    });
    let repeated = outcome(notify_env, |w, env| {
        let event = w.health_event();
        for _ in 0..10 {
            invoke(w, &event, env);
        }
    });
    assert_eq!(clean, repeated);
    assert_eq!(clean.1, ["[retirement-guard] CRITICAL: es-data: 2/6 stopped by retirement, not replaced (us-east-1)"]);
}

#[test]
fn the_same_stopped_event_ten_times_under_recover_ends_like_one_clean_delivery() {
    let deliver = |times: usize| {
        move |w: &World, env: &[(&str, &str)]| {
            let event = state_change(&w.stopped()[0], "stopped");
            for _ in 0..times {
                invoke(w, &event, env);
            }
        }
    };
    let clean = outcome(recover_env, deliver(1));
    let repeated = outcome(recover_env, deliver(10));
    assert_eq!(clean, repeated);
    assert_eq!(clean.1.len(), 2, "the repair, then its RESOLVED notice: {:#?}", clean.1);
}

#[test]
fn a_running_event_arriving_before_the_stopped_one_changes_nothing() {
    let clean = outcome(recover_env, |w, env| {
        for id in w.stopped() {
            invoke(w, &state_change(&id, "stopped"), env);
        }
    });
    let reordered = outcome(recover_env, |w, env| {
        for id in w.stopped() {
            invoke(w, &state_change(&id, "running"), env);
            invoke(w, &state_change(&id, "stopped"), env);
        }
    });
    assert_eq!(clean, reordered);
    let running = clean.0["groups"]["es-data"]["members"].as_array().unwrap();
    assert!(running.iter().all(|m| m.as_str().unwrap().starts_with("running/")), "{clean:#?}");
}

#[test]
fn a_health_event_for_an_instance_already_terminated_is_reported_once() {
    let terminated = |w: &World| {
        let id = w.seed["standalone"].as_str().unwrap().to_owned();
        w.moto.scenario(&["terminate", "--instance", &id]);
        let event = w.moto.scenario(&["health-event", "--instances", &id]);
        write_temp(&event)
    };
    let clean = outcome(notify_env, |w, env| {
        let report = invoke(w, &terminated(w), env);
        assert_eq!(report["findings"][0]["kind"], "Unrecoverable", "{report:#}");
    });
    let repeated = outcome(notify_env, |w, env| {
        let event = terminated(w);
        for _ in 0..3 {
            invoke(w, &event, env);
        }
    });
    assert_eq!(clean, repeated);
    assert_eq!(clean.1.iter().filter(|s| s.contains("CRITICAL: i-* cannot be recovered")).count(), 1, "{:#?}", clean.1);
}

#[test]
fn a_sweep_racing_an_event_ends_like_one_clean_delivery() {
    let clean = outcome(recover_env, |w, env| {
        invoke(w, &w.health_event(), env);
    });
    let raced = outcome(recover_env, |w, env| {
        let event = w.health_event();
        std::thread::scope(|s| {
            let sweep = s.spawn(|| w.run(&["sweep"], env));
            let health = s.spawn(|| invoke(w, &event, env));
            sweep.join().unwrap();
            health.join().unwrap();
        });
    });
    assert_eq!(clean.0, raced.0);
    assert_eq!(clean.1, raced.1);
}

#[test]
fn four_concurrent_recoveries_start_each_instance_once_per_invocation_and_notify_once() {
    let w = World::new();
    let env = recover_env(&w);
    let env = vars(&env);
    w.moto.scenario(&["record-start"]);
    let reports: Vec<Value> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..4).map(|_| s.spawn(|| w.run(&["sweep"], &env))).collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let after = w.state();
    for id in w.stopped() {
        assert_eq!(instance_state(&after, &id), "running");
    }
    assert!(suspended(&after, "es-data").is_empty());
    for r in &reports {
        let seen_stopped: Vec<&str> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "StrandedInstance")
            .map(|f| f["instance"].as_str().unwrap())
            .collect();
        let outcomes = r["outcomes"].as_array().unwrap();
        let starts: Vec<&str> = outcomes
            .iter()
            .filter(|o| o["action"] == "start_instance")
            .map(|o| o["instance"].as_str().unwrap())
            .collect();
        for id in &starts {
            assert_eq!(starts.iter().filter(|s| s == &id).count(), 1, "started twice in one invocation: {r:#}");
            assert!(seen_stopped.contains(id), "started without having seen it stopped: {r:#}");
        }
        // Within an invocation, a resume only ever follows successful starts.
        if let Some(resume) = outcomes.iter().position(|o| o["action"] == "resume_processes") {
            assert!(outcomes[..resume].iter().all(|o| o["result"] == "done"), "{r:#}");
        }
    }
    let writes = strings(&w.moto.scenario(&["record-writes"])["writes"]);
    let first_resume = writes.iter().position(|a| a == "ResumeProcesses").expect("resumed");
    assert!(
        writes[..first_resume].iter().any(|a| a == "StartInstances"),
        "started before the first resume: {writes:?}"
    );
    // Both were started (one batched StartInstances may start both) and marked Healthy before
    // any resume: had a resume come with a member still stopped and Unhealthy, the local AWS
    // would have replaced it, as AWS does.
    let stats = w.moto.realism_stats();
    assert_eq!(stats["terminated"], json!([]), "instances terminated by the group: {stats:#}");
    assert_eq!(stats["launched"], json!([]), "replacements launched: {stats:#}");
    // One problem notice for the group, whichever invocation wins its claim: one that saw the
    // members stopped (CRITICAL), or one that had started them already and tells of the
    // recovery in progress (WARNING), or one that saw it repaired (INFO); then at most one RESOLVED.
    let all = notices(&w);
    let problems: Vec<&String> = all.iter().filter(|s| !s.contains("RESOLVED")).collect();
    let told: Vec<String> = reports.iter().map(|r| format!("{} {}", r["notifications"], r["conditions"])).collect();
    assert_eq!(problems.len(), 1, "{all:#?} {told:#?}");
    assert!(
        problems[0].contains("CRITICAL: es-data: 2/6 stopped by retirement, not replaced")
            || problems[0].contains("WARNING: es-data: repair in progress")
            || problems[0].contains("INFO: es-data: 2/6 stopped by retirement"),
        "{all:#?}"
    );
    assert!(all.iter().filter(|s| s.contains("RESOLVED")).count() <= 1, "{all:#?}");
}
