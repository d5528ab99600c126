//! Tier arithmetic and state transitions.

use super::*;
use crate::findings::tests::found;
use crate::findings::tests::story;

const CHAT: &str = "arn:aws:sns:us-east-1:123456789012:chat";
const EMAIL: &str = "arn:aws:sns:us-east-1:123456789012:email";
const PAGER: &str = "arn:aws:sns:us-east-1:123456789012:pager";

fn esc(repeat: Option<&str>) -> Escalation {
    Escalation::parse(&format!("0={CHAT}, 30m={EMAIL}, 2h={PAGER}"), repeat).unwrap()
}

fn t(hhmm: &str) -> DateTime<Utc> {
    format!("2026-11-28T{hhmm}:00Z").parse().unwrap()
}

fn stranded() -> Condition {
    let f = found(&story(), &[]);
    let refs: Vec<&Finding> = f.iter().collect();
    let mut c = conditions(&refs).remove(0);
    c.since = None;
    c
}

fn record(c: &Condition, first: &str, tier: usize, last: &str) -> Record {
    Record {
        key: c.key.clone(),
        first_seen: t(first),
        tier,
        last_notified: t(last),
        topics: vec![],
        summary: c.summary(),
        resolved_at: None,
    }
}

#[test]
fn durations_and_tiers_parse_and_bad_ones_are_named() {
    assert_eq!(parse_duration("90s"), Some(Duration::seconds(90)));
    assert_eq!(parse_duration("2h"), Some(Duration::hours(2)));
    assert_eq!(parse_duration("1d"), Some(Duration::days(1)));
    for bad in ["", "h", "-1m", "5x", "1.5h", "99999999d"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
    let e = esc(Some("4h"));
    assert_eq!(e.tiers.len(), 3);
    assert_eq!(e.repeat, Some(Duration::hours(4)));
    assert!(Escalation::parse(&format!("30m={CHAT}"), None).unwrap_err().contains("first tier must be 0"));
    assert!(Escalation::parse(&format!("0={CHAT},2h={EMAIL},30m={PAGER}"), None).unwrap_err().contains("ascending"));
    assert!(Escalation::parse("0=not-an-arn", None).unwrap_err().contains("not an SNS topic ARN"));
    assert!(Escalation::parse(&format!("0={CHAT}"), Some("10s")).is_err());
}

#[test]
fn the_story_is_one_stranded_group_condition_holding_its_suspended_processes() {
    let f = found(&story(), &[]);
    let refs: Vec<&Finding> = f.iter().collect();
    let c = conditions(&refs);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].key, "stranded:es-data");
    assert_eq!(c[0].findings.len(), 3);
    assert_eq!(c[0].severity, Severity::Critical);
    assert!(c[0].since.is_some(), "the earliest stop time");
}

#[test]
fn first_seen_notifies_tier_0_only() {
    let d = decide(&stranded(), None, &esc(None), t("10:00"));
    assert_eq!((d.tiers, d.repeat, d.first_seen), (vec![0], false, t("10:00")));
}

#[test]
fn each_tier_is_notified_once_when_its_delay_passes() {
    let c = stranded();
    let e = esc(None);
    let r0 = record(&c, "10:00", 0, "10:00");
    assert!(decide(&c, Some(&r0), &e, t("10:29")).tiers.is_empty());
    assert_eq!(decide(&c, Some(&r0), &e, t("10:30")).tiers, [1]);
    let r1 = record(&c, "10:00", 1, "10:30");
    assert!(decide(&c, Some(&r1), &e, t("11:59")).tiers.is_empty());
    assert_eq!(decide(&c, Some(&r1), &e, t("12:00")).tiers, [2]);
    let r2 = record(&c, "10:00", 2, "12:00");
    assert!(decide(&c, Some(&r2), &e, t("23:00")).tiers.is_empty(), "no repeat configured");
}

#[test]
fn a_condition_found_late_is_notified_at_every_tier_it_has_reached() {
    let mut c = stranded();
    c.since = Some(t("07:00"));
    let d = decide(&c, None, &esc(None), t("10:00"));
    assert_eq!(d.tiers, [0, 1, 2]);
    assert_eq!(d.age, Duration::hours(3));
}

#[test]
fn the_last_tier_repeats_after_the_interval() {
    let c = stranded();
    let e = esc(Some("4h"));
    let r2 = record(&c, "06:00", 2, "08:00");
    assert!(decide(&c, Some(&r2), &e, t("11:59")).tiers.is_empty());
    let d = decide(&c, Some(&r2), &e, t("12:00"));
    assert_eq!((d.tiers, d.repeat), (vec![2], true));
}

#[test]
fn suspended_processes_alone_are_notified_once_and_never_escalate() {
    let mut s = story();
    for i in s.instances.values_mut() {
        i.state = crate::domain::InstanceState::Running;
    }
    let f = found(&s, &[]);
    let refs: Vec<&Finding> = f.iter().collect();
    let c = conditions(&refs).remove(0);
    assert_eq!(c.kind, ConditionKind::SuspendedGroup);
    let e = esc(Some("1h"));
    assert_eq!(decide(&c, None, &e, t("10:00")).tiers, [0]);
    let r = record(&c, "00:00", 0, "00:00");
    assert!(decide(&c, Some(&r), &e, t("23:00")).tiers.is_empty());
}

#[test]
fn a_clock_behind_the_record_never_escalates_or_goes_negative() {
    let c = stranded();
    let r0 = record(&c, "10:00", 0, "10:00");
    let d = decide(&c, Some(&r0), &esc(Some("1h")), t("09:00"));
    assert!(d.tiers.is_empty());
    assert_eq!(d.age, Duration::zero());
}

#[test]
fn lost_state_is_safe_a_new_first_notice_rather_than_silence() {
    // The record is gone (table emptied, item unreadable): the condition is new again.
    let d = decide(&stranded(), None, &esc(None), t("15:00"));
    assert_eq!(d.tiers, [0]);
}

#[test]
fn a_record_from_a_longer_tier_list_is_clamped() {
    let c = stranded();
    let e = Escalation::single(TopicArn::parse(CHAT).unwrap());
    let r = record(&c, "10:00", 5, "10:00");
    assert!(decide(&c, Some(&r), &e, t("12:00")).tiers.is_empty());
}

mod notice_plan {
    use super::*;
    use crate::escalation::plan::{self, Inputs, Settle};

    fn inputs<'a>(
        open: &'a [Condition],
        initial: &'a [Condition],
        records: &'a BTreeMap<String, Record>,
        e: &'a Escalation,
        now: &str,
    ) -> Inputs<'a> {
        const NONE: &BTreeMap<String, Vec<TopicArn>> = &BTreeMap::new();
        Inputs { open, initial, records, escalation: e, deduplicated: true, routes: NONE, now: t(now) }
    }

    #[test]
    fn an_open_condition_is_claimed_at_every_tier_due_with_one_line_each() {
        let (e, c) = (esc(None), stranded());
        let records = BTreeMap::from([(c.key.clone(), record(&c, "00:00", 0, "00:00"))]);
        let open = [c.clone()];
        let entries = plan::entries(&inputs(&open, &open, &records, &e, "02:30"));
        let claim = entries[0].claim().unwrap();
        assert_eq!(claim.sends.iter().map(|s| s.tier).collect::<Vec<_>>(), vec![1, 2]);
        assert!(claim.sends[0].line.ends_with("escalated to step 2 of 3 (topic email) after open 2h30m; if still open, topic pager at 2026-11-28 02:30 UTC"), "{}", claim.sends[0].line);
        assert!(
            claim.sends[1].line.ends_with("escalated to step 3 of 3 (topic pager) after open 2h30m; the last step"),
            "{}",
            claim.sends[1].line
        );
        assert_eq!((claim.record.tier, claim.open, claim.previous.is_some()), (2, true, true));
        assert_eq!(claim.record.topics, vec![EMAIL, PAGER]);
        let won = [(entries[0].condition, claim)];
        let at: Vec<(usize, String)> =
            plan::by_destination(&won).into_keys().map(|d| (d.tier, d.topic.name().to_owned())).collect();
        assert_eq!(at, vec![(1, "email".to_owned()), (2, "pager".to_owned())]);
    }

    #[test]
    fn a_routed_condition_sends_its_first_tier_to_its_route_and_later_tiers_as_configured() {
        let (e, c) = (esc(None), stranded());
        let team = TopicArn::parse("arn:aws:sns:us-east-1:123456789012:team-search").unwrap();
        let routes = BTreeMap::from([(c.key.clone(), vec![TopicArn::parse(CHAT).unwrap(), team.clone()])]);
        let open = [c.clone()];
        let records = BTreeMap::new();
        let entries = plan::entries(&Inputs { routes: &routes, ..inputs(&open, &open, &records, &e, "00:00") });
        let claim = entries[0].claim().unwrap();
        assert!(
            claim.sends[0].line.contains("first notice, on topics chat and team-search"),
            "{}",
            claim.sends[0].line
        );
        assert_eq!(claim.record.topics, vec![CHAT, team.as_str()]);
        let won = [(entries[0].condition, claim)];
        let at: Vec<String> = plan::by_destination(&won).into_keys().map(|d| d.topic.name().to_owned()).collect();
        assert_eq!(at, ["chat", "team-search"]);

        let records = BTreeMap::from([(
            c.key.clone(),
            Record { topics: vec![CHAT.into(), team.as_str().into()], ..record(&c, "00:00", 0, "00:00") },
        )]);
        let later = plan::entries(&Inputs { routes: &routes, ..inputs(&open, &open, &records, &e, "02:30") });
        let claim = later[0].claim().unwrap();
        assert_eq!(
            claim.sends.iter().map(|s| s.topics.clone()).collect::<Vec<_>>(),
            [vec![TopicArn::parse(EMAIL).unwrap()], vec![TopicArn::parse(PAGER).unwrap()]]
        );
        assert_eq!(claim.record.topics, vec![CHAT, team.as_str(), EMAIL, PAGER]);
    }

    #[test]
    fn without_the_state_store_only_tier_0_and_nothing_resolves() {
        let (e, c) = (esc(None), stranded());
        let gone = record(&c, "00:00", 0, "00:00");
        let records = BTreeMap::from([("stranded:other".to_owned(), Record { key: "stranded:other".into(), ..gone })]);
        let open = [c.clone()];
        let mut i = inputs(&open, &open, &records, &e, "05:00");
        i.deduplicated = false;
        let entries = plan::entries(&i);
        assert_eq!(entries[0].claim().unwrap().sends.len(), 1);
        assert!(entries[0].claim().unwrap().sends[0].line.contains("the state store is unavailable"));
        assert!(plan::settle(&i, true).is_empty());
    }

    #[test]
    fn a_repair_another_invocation_just_reported_is_left_out_and_an_old_tombstone_starts_a_new_episode() {
        let (e, c) = (esc(None), stranded());
        let initial = [c.clone()];
        let tomb = record(&c, "00:00", 0, "00:00").resolved(t("01:00"));
        let records = BTreeMap::from([(c.key.clone(), tomb)]);
        assert!(plan::entries(&inputs(&[], &initial, &records, &e, "01:10")).is_empty());
        let later = plan::entries(&inputs(&[], &initial, &records, &e, "01:20"));
        let claim = later[0].claim().unwrap();
        assert!(!claim.open && claim.previous.is_some_and(|p| p.resolved_at.is_some()));
        assert!(claim.sends[0].line.contains("repaired in this invocation, told once"), "{}", claim.sends[0].line);
    }

    #[test]
    fn an_incomplete_read_resolves_nothing_but_old_announcements_are_still_forgotten() {
        let (e, c) = (esc(None), stranded());
        let mut records = BTreeMap::from([(c.key.clone(), record(&c, "00:00", 0, "00:00"))]);
        let announced = key_of(ConditionKind::NotInspected, "i-0123456789abcdef0");
        records.insert(announced.clone(), Record { key: announced.clone(), ..record(&c, "00:00", 0, "00:00") });
        let i = Inputs {
            now: t("00:00") + forget_after() + Duration::minutes(1),
            ..inputs(&[], &[], &records, &e, "00:00")
        };
        assert_eq!(plan::settle(&i, false), vec![Settle::Forget(&announced)]);
        let all = plan::settle(&i, true);
        assert_eq!(all.len(), 2);
        assert!(all.contains(&Settle::Resolve(&records[&c.key])));
    }

    #[test]
    fn resolutions_go_to_every_topic_a_condition_reached() {
        let c = stranded();
        let r = Record { topics: vec![CHAT.into(), PAGER.into()], ..record(&c, "00:00", 2, "02:00") };
        let topics = plan::by_topic(&[&r]);
        assert_eq!(topics.keys().copied().collect::<Vec<_>>(), vec![CHAT, PAGER]);
    }
}

/// An EBS member of the story's group with a retirement `in_hours` after `now`.
fn retirement(in_hours: i64) -> Condition {
    let mut s = story();
    let now = crate::testing::now();
    s.instances.get_mut(&crate::testing::id(4)).unwrap().scheduled_events = vec![crate::domain::ScheduledEvent {
        code: "instance-retirement".into(),
        description: "The instance is running on degraded hardware".into(),
        not_before: Some(now + Duration::hours(in_hours)),
    }];
    let f = found(&s, &[]);
    let refs: Vec<&Finding> = f.iter().filter(|f| f.kind() == "RetirementScheduled").collect();
    conditions(&refs).remove(0)
}

#[test]
fn an_upcoming_retirement_escalates_by_how_close_its_deadline_is_not_by_how_long_it_is_known() {
    let now = crate::testing::now();
    let two_weeks = retirement(14 * 24);
    // Known for three hours, two weeks out: still the first tier only.
    let known = Record { first_seen: now - Duration::hours(3), ..record(&two_weeks, "09:00", 0, "09:00") };
    assert!(decide(&two_weeks, Some(&known), &esc(None), now).tiers.is_empty());
    // 23 hours before the deadline: an hour into the last day, so the email tier (30m) is due.
    let close = retirement(23);
    assert_eq!(decide(&close, Some(&record(&close, "11:00", 0, "11:00")), &esc(None), now).tiers, [1]);
    // 21 hours before: three hours into the last day, the pager tier too.
    let closer = retirement(21);
    assert_eq!(decide(&closer, None, &esc(None), now).tiers, [0, 1, 2]);
}

#[test]
fn a_retirement_its_group_will_replace_is_told_once_and_never_escalated() {
    let now = crate::testing::now();
    let mut c = retirement(2);
    c.severity = crate::findings::Severity::Info;
    assert!(c.one_shot());
    assert_eq!(decide(&c, None, &esc(None), now).tiers, [0]);
    assert!(decide(&c, Some(&record(&c, "08:00", 0, "08:00")), &esc(Some("1h")), now).tiers.is_empty());
}
