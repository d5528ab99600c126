//! End to end: routing by ownership. A group's tags send its notices to its team's
//! topic, besides the default topic or instead of it; a topic the stack may not use,
//! or one that does not exist, falls back to the default topic with a warning in the
//! notice, so nothing is lost.

use crate::common::*;
use serde_json::Value;

const TEAM_TAG: &str = "retirement-guard:notify-topic";
const ALLOWED: &str = "arn:aws:sns:us-east-1:123456789012:team-*";

/// The world with a team topic (`team-search`, queue `team`) and es-data tagged `key=value`.
fn tagged(key: &str, value: &str) -> (World, String) {
    let w = World::new();
    let team = w.moto.scenario(&["topic", "--name", "team-search", "--queue", "team"]);
    let team = team["topic_arn"].as_str().unwrap().to_owned();
    let value = value.replace("{team}", &team);
    w.moto.scenario(&["tag-group", "--group", "es-data", "--key", key, "--value", &value]);
    (w, team)
}

/// The subjects of the conditions a notice is about.
fn about(n: &Value) -> Vec<String> {
    n["document"]["conditions"].as_array().unwrap().iter().map(|c| c["subject"].as_str().unwrap().to_owned()).collect()
}

fn warnings(n: &Value) -> String {
    strings(&n["document"]["warnings"]).join("\n")
}

/// The default topic's notices split into the one about es-data and the rest.
fn split(notices: Vec<Value>) -> (Vec<Value>, Vec<Value>) {
    notices.into_iter().partition(|n| about(n).contains(&"es-data".to_owned()))
}

#[test]
fn a_tagged_group_reaches_its_teams_topic_with_what_the_guard_did_and_the_default_keeps_its_copy() {
    let (w, team) = tagged(TEAM_TAG, "{team}");
    let report = w.run(&["sweep"], &[("ROUTED_TOPIC_ARNS", ALLOWED), ("POLICY", "recover")]);
    let started: Vec<&Value> =
        report["outcomes"].as_array().unwrap().iter().filter(|o| o["action"] == "start_instance").collect();
    assert_eq!(started.len(), 2, "{report:#}");
    let topics: Vec<&str> =
        report["notifications"].as_array().unwrap().iter().map(|n| n["topic"].as_str().unwrap()).collect();
    assert!(topics.contains(&team.as_str()) && topics.contains(&w.topic()), "{topics:?}");

    let at_team = w.notices_in("team");
    assert_eq!(at_team.len(), 1, "{at_team:#?}");
    let n = &at_team[0];
    assert_eq!(about(n), ["es-data"], "the team hears of its group only: {n:#}");
    let outcomes = n["document"]["outcomes"].as_array().unwrap();
    assert!(outcomes.iter().filter(|o| o["action"] == "start_instance").count() == 2, "{n:#}");
    assert!(warnings(n).is_empty(), "{}", warnings(n));
    let escalation = strings(&n["document"]["escalation"]).join("\n");
    assert!(escalation.contains("team-search"), "the escalation line names where it went: {escalation}");

    let (es, rest) = split(w.notices());
    assert_eq!(es.len(), 1, "add mode keeps the default's copy: {es:#?}");
    assert!(rest.iter().all(|n| !about(n).contains(&"es-data".to_owned())));
}

#[test]
fn replace_mode_sends_a_mapped_teams_group_to_its_team_alone() {
    let (w, team) = tagged("owner", "search");
    let teams = format!("search={team}");
    let env =
        [("ROUTED_TOPIC_ARNS", ALLOWED), ("TEAM_TAG", "owner"), ("TEAM_TOPICS", &teams), ("ROUTING_MODE", "replace")];
    let report = w.run(&["sweep"], &env);
    let topics: Vec<&str> =
        report["notifications"].as_array().unwrap().iter().map(|n| n["topic"].as_str().unwrap()).collect();
    assert_eq!(topics, [team.as_str()], "{report:#}");
    let at_team = w.notices_in("team");
    assert_eq!(at_team.iter().map(about).collect::<Vec<_>>(), [["es-data"]], "{at_team:#?}");
    let default = w.notices();
    assert!(default.is_empty(), "replace mode keeps es-data off the default topic: {default:#?}");
}

#[test]
fn a_topic_the_stack_may_not_use_falls_back_to_the_default_with_a_warning() {
    let (w, _) = tagged(TEAM_TAG, "arn:aws:sns:us-east-1:123456789012:payments");
    w.run(&["sweep"], &[("ROUTED_TOPIC_ARNS", ALLOWED), ("ROUTING_MODE", "replace")]);
    assert!(w.notices_in("team").is_empty());
    let (es, _) = split(w.notices());
    assert_eq!(es.len(), 1, "{es:#?}");
    let said = warnings(&es[0]);
    assert!(
        said.contains(":payments (tag retirement-guard:notify-topic) is not allowed by the stack's IAM policy"),
        "{said}"
    );
}

#[test]
fn an_allowed_topic_that_does_not_exist_falls_back_to_the_default_at_publish_with_a_warning() {
    let (w, _) = tagged(TEAM_TAG, "arn:aws:sns:us-east-1:123456789012:team-gone");
    let report = w.run(&["sweep"], &[("ROUTED_TOPIC_ARNS", ALLOWED), ("ROUTING_MODE", "replace")]);
    assert_eq!(report["status"], "handled", "{report:#}");
    let (es, _) = split(w.notices());
    assert_eq!(es.len(), 1, "{es:#?}");
    let said = warnings(&es[0]);
    assert!(
        said.contains(
            "This notice was for topic arn:aws:sns:us-east-1:123456789012:team-gone, which could not take it"
        ),
        "{said}"
    );
}
