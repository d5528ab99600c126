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
