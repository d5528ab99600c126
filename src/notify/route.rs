//! Routing by ownership, pure: the topics a condition's first notice goes to, from
//! the tags of the resource it is about (an instance's own tags, then its group's):
//! `retirement-guard:notify-topic` names topic ARNs, the team tag names a team of
//! `TEAM_TOPICS`. A topic that is malformed, in another region or not allowed by the
//! stack's IAM policy (`ROUTED_TOPIC_ARNS`) is not used: the default topic gets the
//! notice, with a warning saying why.

use crate::config::{NOTIFY_TOPIC_TAG, Routing};
use crate::domain::{InstanceId, Snapshot, TopicArn};
use crate::escalation::{Condition, ConditionKind};
use crate::text::shown;
use std::collections::BTreeMap;

/// Topics one resource may name: a tag value holds at most a few ARNs.
const TOPICS_MAX: usize = 5;

/// Where a condition's first notice goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Route {
    /// The topics, the default first when it is one of them.
    pub topics: Vec<TopicArn>,
    /// Why a topic the tags named is not used.
    pub warnings: Vec<String>,
}

/// The tags a condition is routed by: the instance's own, then its group's.
fn tags_of<'s>(c: &Condition, snapshot: &'s Snapshot) -> Vec<&'s BTreeMap<String, String>> {
    let group_conditions =
        [ConditionKind::StrandedGroup, ConditionKind::SuspendedGroup, ConditionKind::StalledRecovery];
    if group_conditions.contains(&c.kind) {
        return snapshot.groups.iter().filter(|(name, _)| name.as_str() == c.subject).map(|(_, g)| &g.tags).collect();
    }
    let Some(id) = InstanceId::parse(&c.subject) else { return vec![] };
    let own = snapshot.instances.get(&id).map(|i| &i.tags);
    let group = snapshot.group_of(&id).map(|g| &g.tags);
    own.into_iter().chain(group).collect()
}

/// The topics the tags name, with the tag each came from: the routing tag's ARNs,
/// then the team's topics; the first resource that names any wins.
fn named(routing: &Routing, tags: &[&BTreeMap<String, String>], warnings: &mut Vec<String>) -> Vec<(String, String)> {
    for tags in tags {
        let mut out: Vec<(String, String)> = Vec::new();
        if let Some(value) = tags.get(NOTIFY_TOPIC_TAG) {
            out.extend(value.split_whitespace().map(|arn| (arn.to_owned(), format!("tag {NOTIFY_TOPIC_TAG}"))));
        }
        if let Some(team) = tags.get(&routing.team_tag).map(|t| t.trim()).filter(|t| !t.is_empty()) {
            match routing.teams.get(team) {
                Some(topics) => out.extend(
                    topics
                        .iter()
                        .map(|t| (t.as_str().to_owned(), format!("team {:?} (tag {})", team, routing.team_tag))),
                ),
                // A team tag is often there for other reasons: only a mapped team routes.
                None if routing.teams.is_empty() => {}
                None => warnings.push(format!(
                    "tag {}={} names a team TEAM_TOPICS does not map: its notices go to the default topic",
                    routing.team_tag,
                    shown(team, 100)
                )),
            }
        }
        if !out.is_empty() {
            return out;
        }
    }
    vec![]
}

/// The route of `c`: its team's topics (and the default, unless `ROUTING_MODE=replace`),
/// or the default alone when nothing usable is named.
pub fn route(routing: &Routing, default: &TopicArn, region: &str, c: &Condition, snapshot: &Snapshot) -> Route {
    let mut warnings = Vec::new();
    let mut team: Vec<TopicArn> = Vec::new();
    for (arn, from) in named(routing, &tags_of(c, snapshot), &mut warnings) {
        let why = match TopicArn::parse(&arn) {
            None => Some("is not an SNS topic ARN".to_owned()),
            Some(t) if t.region() != region => Some(format!("is in region {}, not {region}", t.region())),
            Some(t) if !routing.allows(&t) && &t != default => {
                Some("is not allowed by the stack's IAM policy (ROUTED_TOPIC_ARNS)".to_owned())
            }
            Some(_) if team.len() >= TOPICS_MAX => Some(format!("is beyond the first {TOPICS_MAX} topics")),
            Some(t) => {
                if !team.contains(&t) {
                    team.push(t);
                }
                None
            }
        };
        if let Some(why) = why {
            warnings.push(format!(
                "{}: topic {} ({from}) {why}: this notice went to the default topic instead",
                c.subject,
                shown(&arn, 256)
            ));
        }
    }
    let mut topics = Vec::new();
    if team.is_empty() || !routing.replace {
        topics.push(default.clone());
    }
    topics.extend(team.into_iter().filter(|t| t != default));
    Route { topics, warnings }
}

/// The routes of an invocation's conditions, and the default topic for what none names.
pub struct Routes<'a> {
    pub default: &'a TopicArn,
    by_key: BTreeMap<String, Route>,
}

impl<'a> Routes<'a> {
    /// The route of every condition in `conditions`.
    pub fn new<'c>(
        routing: &Routing,
        default: &'a TopicArn,
        region: &str,
        conditions: impl IntoIterator<Item = &'c Condition>,
        snapshot: &Snapshot,
    ) -> Self {
        let by_key =
            conditions.into_iter().map(|c| (c.key.clone(), route(routing, default, region, c, snapshot))).collect();
        Self { default, by_key }
    }

    /// The first-tier topics of each condition, by key (what the escalation plan needs).
    pub fn first_topics(&self) -> BTreeMap<String, Vec<TopicArn>> {
        self.by_key.iter().map(|(k, r)| (k.clone(), r.topics.clone())).collect()
    }

    /// The first-tier topics of `c` (the default when it has no route).
    pub fn of(&self, c: &Condition) -> Vec<TopicArn> {
        match self.by_key.get(&c.key) {
            Some(r) if !r.topics.is_empty() => r.topics.clone(),
            _ => vec![self.default.clone()],
        }
    }

    /// The first-tier topics of what concerns any of `names` (groups or instances):
    /// those of every condition about them, or the default when none is.
    pub fn of_names(&self, conditions: &[&Condition], names: &[&str]) -> Vec<TopicArn> {
        let mut out: Vec<TopicArn> = Vec::new();
        for c in conditions.iter().filter(|c| names.iter().any(|n| c.concerns(n))) {
            for t in self.of(c) {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        if out.is_empty() {
            out.push(self.default.clone());
        }
        out
    }

    /// The routing warnings of `conditions`, each once.
    pub fn warnings(&self, conditions: &[&Condition]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for w in conditions.iter().filter_map(|c| self.by_key.get(&c.key)).flat_map(|r| &r.warnings) {
            if !out.contains(w) {
                out.push(w.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escalation::conditions;
    use crate::findings::Finding;
    use crate::testing::{config_with, now};

    const TEAM: &str = "arn:aws:sns:us-east-1:123456789012:team-search";

    fn routing(pairs: &[(&str, &str)]) -> Routing {
        let mut env = vec![("ROUTED_TOPIC_ARNS", "arn:aws:sns:us-east-1:123456789012:team-*")];
        env.extend_from_slice(pairs);
        config_with(&env).unwrap().routing
    }

    fn default() -> TopicArn {
        config_with(&[]).unwrap().topic
    }

    /// The story's world, its group tagged with `tags`, and its stranded condition.
    fn story(tags: &[(&str, &str)]) -> (Snapshot, Condition) {
        let mut s = crate::testing::story();
        let g = s.groups.values_mut().next().unwrap();
        g.tags.extend(tags.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let found = crate::findings::assess(&s, &[], now(), chrono::Duration::minutes(15));
        let refs: Vec<&Finding> = found.iter().collect();
        let c = conditions(&refs).into_iter().find(|c| c.kind == ConditionKind::StrandedGroup).unwrap();
        (s, c)
    }

    fn names(r: &Route) -> Vec<&str> {
        r.topics.iter().map(TopicArn::name).collect()
    }

    #[test]
    fn an_untagged_group_goes_to_the_default_topic_alone() {
        let (s, c) = story(&[]);
        let r = route(&routing(&[]), &default(), "us-east-1", &c, &s);
        assert_eq!(r, Route { topics: vec![default()], warnings: vec![] });
    }

    #[test]
    fn the_topic_tag_adds_the_teams_topic_or_replaces_the_default() {
        let (s, c) = story(&[(NOTIFY_TOPIC_TAG, TEAM)]);
        let added = route(&routing(&[]), &default(), "us-east-1", &c, &s);
        assert_eq!(names(&added), [default().name(), "team-search"]);
        let replaced = route(&routing(&[("ROUTING_MODE", "replace")]), &default(), "us-east-1", &c, &s);
        assert_eq!(names(&replaced), ["team-search"]);
        assert!(replaced.warnings.is_empty());
    }

    #[test]
    fn a_team_tag_is_mapped_through_team_topics() {
        let (s, c) = story(&[("owner", "search")]);
        let teams = format!("search={TEAM}");
        let r = route(
            &routing(&[("TEAM_TAG", "owner"), ("TEAM_TOPICS", &teams), ("ROUTING_MODE", "replace")]),
            &default(),
            "us-east-1",
            &c,
            &s,
        );
        assert_eq!(names(&r), ["team-search"]);
        let (s, c) = story(&[("owner", "payments")]);
        let r = route(&routing(&[("TEAM_TAG", "owner"), ("TEAM_TOPICS", &teams)]), &default(), "us-east-1", &c, &s);
        assert_eq!(names(&r), [default().name()]);
        assert!(r.warnings[0].contains("owner=payments names a team TEAM_TOPICS does not map"), "{:?}", r.warnings);
    }

    #[test]
    fn unusable_topics_fall_back_to_the_default_with_a_warning_each() {
        let tag = "not-an-arn arn:aws:sns:eu-west-1:123456789012:team-search arn:aws:sns:us-east-1:123456789012:other";
        let (s, c) = story(&[(NOTIFY_TOPIC_TAG, tag)]);
        let r = route(&routing(&[("ROUTING_MODE", "replace")]), &default(), "us-east-1", &c, &s);
        assert_eq!(r.topics, vec![default()]);
        let w = r.warnings.join("\n");
        assert_eq!(r.warnings.len(), 3, "{w}");
        assert!(w.contains("topic not-an-arn (tag retirement-guard:notify-topic) is not an SNS topic ARN"), "{w}");
        assert!(w.contains("is in region eu-west-1, not us-east-1"), "{w}");
        assert!(
            w.contains(":other (tag retirement-guard:notify-topic) is not allowed by the stack's IAM policy"),
            "{w}"
        );
        assert!(w.contains("went to the default topic instead"), "{w}");
    }

    #[test]
    fn an_instance_is_routed_by_its_own_tags_before_its_groups() {
        let (mut s, _) = story(&[(NOTIFY_TOPIC_TAG, TEAM)]);
        let id = s.instances.keys().next().unwrap().clone();
        let retirement = Condition {
            key: crate::escalation::key_of(ConditionKind::Retirement, id.as_str()),
            kind: ConditionKind::Retirement,
            subject: id.to_string(),
            since: None,
            severity: crate::findings::Severity::High,
            deadline: None,
            findings: vec![],
        };
        let r = routing(&[("ROUTING_MODE", "replace")]);
        assert_eq!(names(&route(&r, &default(), "us-east-1", &retirement, &s)), ["team-search"]);
        let own = format!("{TEAM}-pager");
        s.instances.get_mut(&id).unwrap().tags.insert(NOTIFY_TOPIC_TAG.into(), own);
        assert_eq!(names(&route(&r, &default(), "us-east-1", &retirement, &s)), ["team-search-pager"]);
    }
}
