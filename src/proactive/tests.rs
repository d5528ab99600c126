//! The proactive planner over hand-built snapshots: when a move starts, how the member
//! is held, and each next step as AWS state moves on.

use super::*;
use crate::domain::{ScheduledEvent, StatusChecks};
use crate::testing::{config_with, group, id, instance, now};

/// Sat 2026-11-28 12:00 UTC is inside this window.
const OPEN: &str = "Sat 10:00-14:00";

fn config(extra: &[(&str, &str)]) -> Config {
    let mut env = vec![
        ("POLICY", "recover"),
        ("PROACTIVE_MOVES", "true"),
        ("DRY_RUN", "true"),
        ("MAINTENANCE_WINDOW", OPEN),
        ("HEALTH_ALARM", "es-cluster-green"),
    ];
    env.extend_from_slice(extra);
    config_with(&env).unwrap()
}

/// A healthy group of six, every member running; members 1 and 2 have a retirement
/// `days` ahead (member 2 a day earlier).
fn retiring(days: i64) -> Snapshot {
    let mut s = Snapshot::default();
    let g = group("es-data", &[1, 2, 3, 4, 5, 6], &[]);
    for n in 1..=6 {
        let mut inst = instance(n, InstanceState::Running, None, Some("es-data"));
        inst.launched_at = Some(now() - Duration::days(30));
        if n <= 2 {
            inst.scheduled_events = vec![ScheduledEvent {
                code: "instance-retirement".into(),
                description: "The instance is running on degraded hardware".into(),
                not_before: Some(now() + Duration::days(days) - Duration::days(i64::from(n) - 1)),
            }];
        }
        s.instances.insert(inst.id.clone(), inst);
    }
    s.groups.insert(g.name.clone(), g);
    s.alarms.insert("es-cluster-green".into(), Some(alarm("OK", 60)));
    s
}

/// The health alarm in `state` since `minutes` ago.
fn alarm(state: &str, minutes: i64) -> crate::domain::Alarm {
    crate::domain::Alarm {
        name: "es-cluster-green".into(),
        state: state.into(),
        since: Some(now() - Duration::minutes(minutes)),
    }
}

fn plan_at(s: &Snapshot, config: &Config, at: DateTime<Utc>) -> Vec<GroupMoves> {
    let found = crate::findings::assess(s, &[], at, Duration::minutes(15));
    plan(s, &found, config, at)
}

/// The decision now, or the first member left to a person when nothing moves.
fn decision(s: &Snapshot, config: &Config) -> Decision {
    let plans = plan_at(s, config, now());
    assert_eq!(plans.len(), 1, "{plans:#?}");
    plans[0].decision.clone().unwrap_or_else(|| plans[0].manual[0].clone())
}

fn es(s: &mut Snapshot) -> &mut GroupSnapshot {
    s.groups.values_mut().next().unwrap()
}

#[test]
fn nothing_is_planned_unless_proactive_moves_are_on() {
    let off = config_with(&[("POLICY", "recover")]).unwrap();
    assert!(plan_at(&retiring(5), &off, now()).is_empty());
}

#[test]
fn in_an_open_window_the_earliest_deadline_moves_first_held_by_standby_when_desired_can_drop() {
    let s = retiring(5);
    let plans = plan_at(&s, &config(&[]), now());
    let p = &plans[0];
    assert_eq!(p.order.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>(), [id(2), id(1)]);
    assert_eq!(p.alarm.as_deref(), Some("es-cluster-green"));
    let Some(Decision::Step { instance, step: MoveStep::Begin { record } }) = &p.decision else { panic!("{p:#?}") };
    assert_eq!(instance, &id(2));
    let r = MoveRecord::parse(record).unwrap();
    assert_eq!((r.since, &r.instance, &r.hold), (now(), &id(2), &Hold::Standby));
    assert_eq!(r.render(), *record);
}

#[test]
fn with_desired_at_min_size_the_member_is_held_by_suspending_health_checks_instead() {
    let mut s = retiring(5);
    es(&mut s).min_size = 6;
    es(&mut s).suspended.push(crate::domain::SuspendedProcess { name: "HealthCheck".into(), reason: String::new() });
    let Decision::Step { step: MoveStep::Begin { record }, .. } = decision(&s, &config(&[])) else { panic!() };
    let hold = MoveRecord::parse(&record).unwrap().hold;
    assert_eq!(
        hold,
        Hold::Suspended { processes: vec!["ReplaceUnhealthy".into()] },
        "only what the guard suspends itself"
    );
}

#[test]
fn a_closed_window_waits_for_the_next_opening_and_a_late_one_is_left_to_a_person() {
    let s = retiring(5);
    let closed = config(&[("MAINTENANCE_WINDOW", "Sun 02:00-05:00")]);
    let Decision::Wait { until, why, .. } = decision(&s, &closed) else { panic!() };
    assert_eq!(until, Some("2026-11-29T02:00:00Z".parse().unwrap()));
    assert!(why.contains("opens Sun 2026-11-29 02:00 UTC"), "{why}");

    // The deadline of member 2 is Wed 12:00; with a 24 h margin, a Thursday window is too late.
    let late = config(&[("MAINTENANCE_WINDOW", "Thu 02:00-05:00")]);
    let Decision::Manual { why, .. } = decision(&s, &late) else { panic!() };
    assert!(why.contains("no maintenance window (Thu 02:00-05:00 UTC) opens before Tue 2026-12-01 12:00 UTC"), "{why}");
}

#[test]
fn a_deadline_inside_the_margin_is_left_to_a_person() {
    let mut s = retiring(5);
    s.instances.get_mut(&id(2)).unwrap().scheduled_events[0].not_before = Some(now() + Duration::hours(20));
    let p = &plan_at(&s, &config(&[]), now())[0];
    let Decision::Manual { instance, why } = &p.manual[0] else { panic!() };
    assert_eq!(instance, &id(2));
    assert!(why.contains("less than PROACTIVE_MARGIN_HOURS=24 away"), "{why}");
    let Some(Decision::Step { instance, .. }) = &p.decision else { panic!("{p:#?}") };
    assert_eq!(instance, &id(1), "the member with time left still moves");
    let d = decision(&s, &config(&[("PROACTIVE_MARGIN_HOURS", "0")]));
    assert!(matches!(d, Decision::Step { .. }), "{d:#?}");
}

#[test]
fn opted_out_groups_and_groups_without_the_opt_in_tag_are_not_planned() {
    let mut s = retiring(5);
    es(&mut s).tags.insert(PROACTIVE_TAG.into(), "false".into());
    assert!(plan_at(&s, &config(&[]), now()).is_empty());
    let s = retiring(5);
    assert!(plan_at(&s, &config(&[("OPT_IN_TAG", "retirement-guard:opt-in")]), now()).is_empty());
    let mut s = retiring(5);
    es(&mut s).tags.insert(POLICY_TAG.into(), "notify".into());
    assert!(plan_at(&s, &config(&[]), now()).is_empty());
}

#[test]
fn no_alarm_an_instance_store_root_or_a_member_out_of_service_stops_a_new_move() {
    let s = retiring(5);
    let no_alarm = config_with(&[
        ("POLICY", "recover"),
        ("PROACTIVE_MOVES", "true"),
        ("DRY_RUN", "true"),
        ("MAINTENANCE_WINDOW", OPEN),
    ])
    .unwrap();
    let Decision::Manual { why, .. } = decision(&s, &no_alarm) else { panic!() };
    assert!(why.contains("no health alarm is named"), "{why}");
    let mut tagged = retiring(5);
    es(&mut tagged).tags.insert(HEALTH_ALARM_TAG.into(), "search-green".into());
    assert_eq!(plan_at(&tagged, &no_alarm, now())[0].alarm.as_deref(), Some("search-green"));

    let mut store = retiring(5);
    store.instances.get_mut(&id(2)).unwrap().root_device = RootDevice::InstanceStore;
    let p = &plan_at(&store, &config(&[]), now())[0];
    let Decision::Manual { instance, why } = &p.manual[0] else { panic!() };
    assert!(instance == &id(2) && why.contains("instance store"), "{why}");
    assert!(matches!(&p.decision, Some(Decision::Step { instance, .. }) if instance == &id(1)), "{p:#?}");

    let mut busy = retiring(5);
    es(&mut busy).members[4].lifecycle_state = "Standby".into();
    let Decision::Wait { why, .. } = decision(&busy, &config(&[])) else { panic!() };
    assert!(why.contains("is Standby: only one member of a group is out of service at a time"), "{why}");
}

#[test]
fn the_first_move_waits_for_the_health_alarm_to_be_ok_and_settled() {
    let why_of = |s: &Snapshot| match decision(s, &config(&[])) {
        Decision::Wait { why, until, .. } => (why, until),
        other => panic!("{other:#?}"),
    };
    let mut s = retiring(5);
    for (state, says) in [("ALARM", "is ALARM since"), ("INSUFFICIENT_DATA", "is INSUFFICIENT_DATA since")] {
        s.alarms.insert("es-cluster-green".into(), Some(alarm(state, 60)));
        let (why, until) = why_of(&s);
        assert!(why.contains(says) && until.is_none(), "{why}");
    }
    s.alarms.insert("es-cluster-green".into(), None);
    assert!(why_of(&s).0.contains("does not exist"));
    s.alarms.clear();
    assert!(why_of(&s).0.contains("could not be read"));

    s.alarms.insert("es-cluster-green".into(), Some(alarm("OK", 4)));
    let (why, until) = why_of(&s);
    assert!(why.contains("HEALTH_SETTLE_MINUTES=10"), "{why}");
    assert_eq!(until, Some(now() + Duration::minutes(6)));

    // OK for an hour, but the previous member came back 3 minutes ago.
    s.alarms.insert("es-cluster-green".into(), Some(alarm("OK", 60)));
    let back = (now() - Duration::minutes(3)).to_rfc3339_opts(SecondsFormat::Secs, true);
    es(&mut s).tags.insert(MOVED_TAG.into(), format!("{back} {}", id(9)));
    assert_eq!(why_of(&s).1, Some(now() + Duration::minutes(7)));
    // A return time to come (anyone can write a tag) is no return: no overflow, no wait.
    es(&mut s).tags.insert(MOVED_TAG.into(), format!("+262142-12-31T23:59:59Z {}", id(9)));
    assert!(matches!(decision(&s, &config(&[])), Decision::Step { .. }));
    es(&mut s).tags.remove(MOVED_TAG);
    assert!(matches!(decision(&s, &config(&[])), Decision::Step { .. }));
}

/// The snapshot with a move of member 2 under way, begun an hour ago.
fn moving(hold: Hold) -> Snapshot {
    let mut s = retiring(5);
    let record = MoveRecord { since: now() - Duration::hours(1), instance: id(2), hold };
    es(&mut s).tags.insert(MOVING_TAG.into(), record.render());
    s
}

fn set(s: &mut Snapshot, lifecycle: &str, state: InstanceState, restarted: bool) {
    es(s).members[1].lifecycle_state = lifecycle.into();
    let i = s.instances.get_mut(&id(2)).unwrap();
    i.state = state;
    i.status = (state == InstanceState::Running).then(|| StatusChecks { instance: "ok".into(), system: "ok".into() });
    if restarted {
        i.launched_at = Some(now() - Duration::minutes(5));
        i.scheduled_events.clear();
    }
}

fn step_of(s: &Snapshot) -> Option<MoveStep> {
    match decision(s, &config(&[])) {
        Decision::Step { instance, step } => {
            assert_eq!(instance, id(2));
            Some(step)
        }
        _ => None,
    }
}

#[test]
fn a_standby_move_goes_standby_stop_start_exit_and_finish_by_what_aws_shows() {
    let mut s = moving(Hold::Standby);
    assert_eq!(step_of(&s), Some(MoveStep::EnterStandby));
    set(&mut s, "EnteringStandby", InstanceState::Running, false);
    assert_eq!(step_of(&s), None, "waits while entering Standby");
    set(&mut s, "Standby", InstanceState::Running, false);
    assert_eq!(step_of(&s), Some(MoveStep::Stop));
    set(&mut s, "Standby", InstanceState::Stopping, false);
    assert_eq!(step_of(&s), None);
    set(&mut s, "Standby", InstanceState::Stopped, false);
    assert_eq!(step_of(&s), Some(MoveStep::Start));
    set(&mut s, "Standby", InstanceState::Pending, true);
    assert_eq!(step_of(&s), None);
    set(&mut s, "Standby", InstanceState::Running, true);
    s.instances.get_mut(&id(2)).unwrap().status =
        Some(StatusChecks { instance: "initializing".into(), system: "ok".into() });
    assert_eq!(step_of(&s), None, "waits for the checks");
    set(&mut s, "Standby", InstanceState::Running, true);
    assert_eq!(step_of(&s), Some(MoveStep::ExitStandby));
    set(&mut s, "InService", InstanceState::Running, true);
    assert_eq!(step_of(&s), Some(MoveStep::Finish));
}

#[test]
fn a_held_move_suspends_stops_starts_marks_healthy_resumes_and_finishes() {
    let processes = vec!["HealthCheck".to_owned(), "ReplaceUnhealthy".to_owned()];
    let mut s = moving(Hold::Suspended { processes: processes.clone() });
    assert_eq!(step_of(&s), Some(MoveStep::Suspend { processes: processes.clone() }));
    for p in &processes {
        es(&mut s)
            .suspended
            .push(crate::domain::SuspendedProcess { name: p.clone(), reason: "User suspended at x".into() });
    }
    assert_eq!(step_of(&s), Some(MoveStep::Stop));
    set(&mut s, "InService", InstanceState::Stopped, false);
    assert_eq!(step_of(&s), Some(MoveStep::Start));
    set(&mut s, "InService", InstanceState::Running, true);
    es(&mut s).members[1].health_status = "Unhealthy".into();
    assert_eq!(step_of(&s), Some(MoveStep::MarkHealthy));
    es(&mut s).members[1].health_status = "Healthy".into();
    assert_eq!(step_of(&s), Some(MoveStep::Resume { processes }));
    es(&mut s).suspended.clear();
    assert_eq!(step_of(&s), Some(MoveStep::Finish));
}

#[test]
fn a_member_gone_mid_move_ends_the_move_and_an_unexpected_state_goes_to_a_person() {
    let mut s = moving(Hold::Standby);
    es(&mut s).members.remove(1);
    assert_eq!(step_of(&s), Some(MoveStep::Finish));
    let mut s = moving(Hold::Standby);
    set(&mut s, "Terminating", InstanceState::ShuttingDown, false);
    let Decision::Manual { why, .. } = decision(&s, &config(&[])) else { panic!() };
    assert!(why.contains("is Terminating and shutting-down"), "{why}");
}

#[test]
fn the_moving_tag_reads_back_what_it_wrote_and_nothing_else() {
    let r = MoveRecord {
        since: now(),
        instance: id(2),
        hold: Hold::Suspended { processes: vec!["HealthCheck".into(), "ReplaceUnhealthy".into()] },
    };
    assert_eq!(r.render(), "2026-11-28T12:00:00Z i-00000000000000002 suspended:HealthCheck,ReplaceUnhealthy");
    assert_eq!(MoveRecord::parse(&r.render()), Some(r));
    for bad in ["", "2026-11-28T12:00:00Z", "yesterday i-00000000000000002 standby", "2026-11-28T12:00:00Z i-2 standby"]
    {
        assert_eq!(MoveRecord::parse(bad), None, "{bad:?}");
    }
}
