//! End to end: proactive moves on the local AWS (realism layer: scheduled events),
//! planned in a dry run and gated on a CloudWatch alarm read with DescribeAlarms.

use crate::common::*;
use serde_json::Value;

/// Every minute of the week is inside it.
const ALWAYS: &str = "Mon 00:00-Sun 24:00";

fn env(settle: &str) -> Vec<(&'static str, String)> {
    vec![
        ("POLICY", "recover".into()),
        ("DRY_RUN", "true".into()),
        ("PROACTIVE_MOVES", "true".into()),
        ("MAINTENANCE_WINDOW", ALWAYS.into()),
        ("HEALTH_ALARM", "web-healthy".into()),
        ("HEALTH_SETTLE_MINUTES", settle.into()),
    ]
}

fn sweep(w: &World, settle: &str) -> Value {
    let env = env(settle);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    w.run(&["sweep"], &pairs)
}

#[test]
fn a_dry_run_plans_the_move_of_an_announced_member_only_once_the_health_alarm_is_ok_and_settled() {
    let w = World::new();
    let web = strings(&w.seed["groups"]["web"]);
    w.moto.scenario(&["retire", "--instances", &web[0], "--announce-only"]);
    w.moto.scenario(&["record-start"]);

    let before = sweep(&w, "10");
    let moves = &before["proactive"];
    assert_eq!(moves.as_array().map(Vec::len), Some(1), "{before:#}");
    assert_eq!(moves[0]["group"], "web");
    assert_eq!(moves[0]["decision"]["decision"], "wait", "no alarm yet: {moves:#}");
    assert!(
        moves[0]["decision"]["why"].as_str().unwrap().contains("health alarm web-healthy does not exist"),
        "{moves:#}"
    );

    w.moto.scenario(&["alarm", "--name", "web-healthy", "--state", "ALARM"]);
    let alarm = sweep(&w, "10");
    assert!(alarm["proactive"][0]["decision"]["why"].as_str().unwrap().contains("is ALARM since"), "{alarm:#}");

    w.moto.scenario(&["alarm", "--name", "web-healthy", "--state", "OK"]);
    let settling = sweep(&w, "10");
    let why = settling["proactive"][0]["decision"]["why"].as_str().unwrap();
    assert!(why.contains("is OK, but only since") && why.contains("HEALTH_SETTLE_MINUTES=10"), "{settling:#}");

    let open = sweep(&w, "0");
    let d = &open["proactive"][0]["decision"];
    assert_eq!((d["decision"].as_str(), d["instance"].as_str()), (Some("step"), Some(web[0].as_str())), "{open:#}");
    assert_eq!(d["step"]["action"], "begin");
    // The web group's MinSize equals its desired capacity: held by suspending health checks.
    assert!(d["step"]["record"].as_str().unwrap().ends_with("suspended:HealthCheck,ReplaceUnhealthy"), "{d:#}");
    let writes = w.moto.scenario(&["record-writes"]);
    let changes: Vec<String> = strings(&writes["writes"]).into_iter().filter(|a| a != "Publish").collect();
    assert!(changes.is_empty(), "a dry run changes nothing but notifies: {writes:#}");
}

#[test]
fn a_repair_resumes_the_story_group_only_once_its_health_alarm_is_ok() {
    let w = World::new();
    w.moto.scenario(&["alarm", "--name", "es-green", "--state", "ALARM"]);
    let env = [("POLICY", "recover"), ("HEALTH_ALARM", "es-green"), ("HEALTH_SETTLE_MINUTES", "0")];
    let held = w.run(&["sweep"], &env);
    let done: Vec<&str> = held["outcomes"].as_array().unwrap().iter().map(|o| o["action"].as_str().unwrap()).collect();
    assert!(!done.contains(&"resume_processes") && done.contains(&"start_instance"), "{held:#}");
    assert_eq!(suspended(&w.state(), "es-data"), ["Launch", "Terminate"], "held while the cluster is not healthy");
    let why = held["plan"]["skipped"].to_string();
    assert!(why.contains("health alarm es-green is ALARM since"), "{why}");
    for id in w.stopped() {
        assert_eq!(instance_state(&w.state(), &id), "running", "the members are started all the same");
    }

    w.moto.scenario(&["alarm", "--name", "es-green", "--state", "OK"]);
    let resumed = w.run(&["sweep"], &env);
    let done: Vec<&str> =
        resumed["outcomes"].as_array().unwrap().iter().map(|o| o["action"].as_str().unwrap()).collect();
    assert!(done.contains(&"resume_processes") && done.contains(&"clear_recovering"), "{resumed:#}");
    assert!(suspended(&w.state(), "es-data").is_empty());
    assert_eq!(w.moto.realism_stats()["terminated"], serde_json::json!([]), "no member lost on the way");
}
