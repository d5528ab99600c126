//! Bad input: property-based tests over the intake and, for a
//! bounded share of the inputs, over the whole in-memory pipeline.
//!
//! Inputs are arbitrary JSON (keys biased toward the fields the guard reads),
//! event-shaped JSON with arbitrary content, and mutated copies of every fixture in
//! tests/fixtures/events (fields removed, types swapped, empty strings, unicode and
//! control characters, almost-ids, 200-deep nesting, 5,000-element arrays, 1 MB
//! strings). Every input must be classified as handled (with a scope), ignored (with
//! a reason) or an `IntakeError` that names a field, without panicking.
//!
//! Case counts come from the environment: `PROPTEST_CASES` (default 500) for the
//! intake properties, `FUZZ_HANDLER_CASES` (default 64) for the handler property.
//! Failures are never persisted into the source tree.

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use retirement_guard::domain::Scope;
use retirement_guard::intake::{IntakeError, MAX_TARGETS, Parsed, Trigger, parse};
use retirement_guard::report::Status;
use retirement_guard::testing::{guard as handler_guard, sent, story};
use serde_json::json;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// Default cases per intake property (what `make test` runs).
const INTAKE_CASES: u32 = 500;
/// Default cases for the handler property: each case runs a whole invocation.
const HANDLER_CASES: u32 = 64;

/// Cases from `var` (else `default`). Proptest's own `with_cases` would override
/// `PROPTEST_CASES`, so the variable is read here.
fn config(var: &str, default: u32) -> ProptestConfig {
    let cases = std::env::var(var).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        // Inputs can be megabytes: keep shrinking a failure bounded.
        max_shrink_iters: 2048,
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------- generators

/// Field names the intake (or AWS) uses, so generated objects reach deep branches.
const FIELDS: &[&str] = &[
    "source",
    "detail-type",
    "detail",
    "resources",
    "account",
    "region",
    "service",
    "eventTypeCategory",
    "eventTypeCode",
    "affectedEntities",
    "entityValue",
    "instance-id",
    "state",
    "eventName",
    "requestParameters",
    "autoScalingGroupName",
    "sweep",
    "instance_ids",
    "asg_names",
    "dry_run",
    "page",
    "totalPages",
    "backupEvent",
    "startTime",
    "eventRegion",
    "statusCode",
    "eventArn",
    "affectedAccount",
    "eventDescription",
    "latestDescription",
    "version",
    "id",
    "time",
];

/// Values that select real branches.
const VALUES: &[&str] = &[
    "aws.health",
    "AWS Health Event",
    "aws.ec2",
    "EC2 Instance State-change Notification",
    "aws.autoscaling",
    "AWS API Call via CloudTrail",
    "aws.events",
    "Scheduled Event",
    "EC2",
    "RDS",
    "scheduledChange",
    "issue",
    "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
    "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED",
    "SuspendProcesses",
    "ResumeProcesses",
    "stopped",
    "running",
    "true",
    "false",
    "es-data",
    "123456789012",
    "us-east-1",
    "Thu, 27 Aug 2026 13:19:03 GMT",
    "2026-08-27T13:19:03Z",
    "i-0abc12345def67890",
    "i-00000000000000001",
    "i-00000000000000002",
    "i-0123abcd",
    "h-0abc12345def67890",
    "arn:aws:ec2:us-east-1:123456789012:instance/i-00000000000000001",
    "arn:aws:ec2:us-east-1:123456789012:dedicated-host/h-0abc12345def67890",
    "",
];

/// The (source, detail-type) pairs the guard handles, plus a near miss.
const EVENTS: &[(&str, &str)] = &[
    ("aws.health", "AWS Health Event"),
    ("aws.ec2", "EC2 Instance State-change Notification"),
    ("aws.autoscaling", "AWS API Call via CloudTrail"),
    ("aws.events", "Scheduled Event"),
    ("aws.health", "AWS Health Event "),
];

/// A string strategy compiled once (a bare `&str` strategy recompiles its regex per case).
fn re(pattern: &str) -> BoxedStrategy<String> {
    proptest::string::string_regex(pattern).unwrap().boxed()
}

/// Text with control, format, bidi, combining and astral characters and shell metacharacters.
fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        re("[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}]{1,8}"),
        re(
            "[a-z\\u{200b}-\\u{200f}\\u{2028}\\u{2029}\\u{202a}-\\u{202e}\\u{feff}\\u{0301}\\u{1f600}-\\u{1f64f}]{0,16}"
        ),
        re("[a-z0-9;|&$`'\"\\\\(){}<> \\n\\r\\t-]{0,24}"),
        any::<String>(),
    ]
}

/// Strings that look like instance ids but are not, and ids wrapped in other things.
fn almost_id() -> impl Strategy<Value = String> {
    prop_oneof![
        re("i-[0-9a-f]{16}"),
        re("i-[0-9a-f]{18,20}"),
        re("i-[0-9a-f]{7}"),
        re("i-[0-9A-F]{17}"),
        re("i-[0-9a-f]{16}[g-z]"),
        re("[Ii]_?-?[0-9a-f]{17}"),
        re("i-[0-9a-f]{17}[;|&`$ \\n]{1,3}(rm -rf /|reboot|\\$\\(id\\))"),
        re("(arn:aws:(rds|s3|iam|lambda|autoscaling):us-east-1:123456789012:)(db|instance/|function:)i-[0-9a-f]{17}"),
        re("arn:aws:ec2:us-east-1:123456789012:(volume/vol|instance/i)-[0-9a-f]{17}(/x|:1|\\.)"),
        re("arn:aws:ec2:us-east-1:123456789012:instance/i-[0-9a-f]{16}"),
        Just("i-\u{ff10}\u{ff11}\u{ff12}\u{ff13}\u{ff14}\u{ff15}\u{ff16}\u{ff17}".to_owned()),
        Just("i-0abc12345def67890\u{0}".to_owned()),
        Just("i-0abc12345def6789\u{0660}".to_owned()),
    ]
}

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(VALUES).prop_map(str::to_owned),
        2 => almost_id(),
        2 => nasty_text(),
        1 => select(FIELDS).prop_map(str::to_owned),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        6 => any_string().prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => select(FIELDS).prop_map(str::to_owned), 1 => nasty_text()]
}

/// Arbitrary JSON up to about 8 levels deep.
fn arb_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(8, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Arbitrary JSON, most often an object at the top as real events are.
fn arb_event() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => arb_json(),
        2 => prop::collection::vec((key(), arb_json()), 0..10).prop_map(|kv| Value::Object(kv.into_iter().collect())),
    ]
}

/// An EventBridge envelope of a handled kind, or a manual request, with arbitrary content.
fn event_shaped() -> impl Strategy<Value = Value> {
    let envelope = (select(EVENTS), arb_json(), arb_json(), prop::collection::vec((key(), arb_json()), 0..4)).prop_map(
        |((source, detail_type), detail, resources, extra)| {
            let mut obj: Map<String, Value> = extra.into_iter().collect();
            obj.insert("source".into(), json!(source));
            obj.insert("detail-type".into(), json!(detail_type));
            obj.insert("detail".into(), detail);
            obj.insert("resources".into(), resources);
            Value::Object(obj)
        },
    );
    let id_list = prop_oneof![
        prop::collection::vec(any_string().prop_map(Value::String), 0..6).prop_map(Value::Array),
        arb_json(),
    ];
    let manual = (
        prop::option::of(arb_json()),
        prop::option::of(id_list.clone()),
        prop::option::of(id_list),
        prop::option::of(prop_oneof![any::<bool>().prop_map(Value::Bool), arb_json()]),
    )
        .prop_map(|(sweep, ids, names, dry_run)| {
            let mut obj = Map::new();
            for (k, v) in [("sweep", sweep), ("instance_ids", ids), ("asg_names", names), ("dry_run", dry_run)] {
                if let Some(v) = v {
                    obj.insert(k.into(), v);
                }
            }
            Value::Object(obj)
        });
    prop_oneof![envelope, manual]
}

// ---------------------------------------------------------------- fixture mutations

fn fixtures() -> &'static [(String, Value)] {
    static FIXTURES: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = format!("{}/tests/fixtures/events", env!("CARGO_MANIFEST_DIR"));
        let mut all: Vec<(String, Value)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                (path.file_name().unwrap().to_string_lossy().into_owned(), serde_json::from_str(&text).unwrap())
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(all.len() >= 17, "fixtures missing: {}", all.len());
        all
    })
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Key(String),
    At(usize),
}

/// Every path in `v`, the root first.
fn paths(v: &Value) -> Vec<Vec<Step>> {
    fn walk(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        out.push(here.clone());
        match v {
            Value::Object(m) => m.iter().for_each(|(k, c)| {
                here.push(Step::Key(k.clone()));
                walk(c, here, out);
                here.pop();
            }),
            // Past 64 elements, the others look the same to the intake.
            Value::Array(a) => a.iter().take(64).enumerate().for_each(|(i, c)| {
                here.push(Step::At(i));
                walk(c, here, out);
                here.pop();
            }),
            _ => {}
        }
    }
    let mut out = vec![];
    walk(v, &mut vec![], &mut out);
    out
}

fn at<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, s| match s {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::At(i) => v.get_mut(*i),
    })
}

/// What a huge array is made of.
#[derive(Clone, Copy, Debug)]
enum Fill {
    /// Distinct valid instance ids.
    Ids,
    /// Health `affectedEntities` objects with distinct ids.
    Entities,
    /// Copies of the value that was there.
    Copies,
}

#[derive(Clone, Debug)]
enum Mutation {
    Remove,
    Replace(Value),
    EmptyString,
    Text(String),
    Append(String),
    NotAnId(String),
    Huge(usize, Fill),
    Nest(usize),
    Megabyte(char),
    Insert(String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => Just(Mutation::Remove),
        4 => arb_json().prop_map(Mutation::Replace),
        2 => Just(Mutation::EmptyString),
        2 => nasty_text().prop_map(Mutation::Text),
        2 => nasty_text().prop_map(Mutation::Append),
        3 => almost_id().prop_map(Mutation::NotAnId),
        1 => (
            prop_oneof![Just(1000usize), Just(1001), Just(5000), 0..64usize],
            prop_oneof![Just(Fill::Ids), Just(Fill::Entities), Just(Fill::Copies)]
        )
            .prop_map(|(n, f)| Mutation::Huge(n, f)),
        1 => prop_oneof![Just(200usize), 1..16usize].prop_map(Mutation::Nest),
        1 => select(&['x', 'é', '\u{0}', '\n', '\u{202e}', '😀'][..]).prop_map(Mutation::Megabyte),
        3 => (key(), arb_json()).prop_map(|(k, v)| Mutation::Insert(k, v)),
    ]
}

/// About 1 MB of `c`, with an instance id at the front so id readers go past the prefix.
fn megabyte(c: char) -> String {
    let n = (1 << 20) / c.len_utf8();
    format!("i-0abc12345def67890{}", c.to_string().repeat(n))
}

fn valid_id(n: usize) -> String {
    format!("i-{n:017x}")
}

/// Applies `m` at `path` (paths that no longer exist after an earlier mutation are skipped).
fn apply(root: &mut Value, path: &[Step], m: &Mutation) {
    if let (Mutation::Remove, Some((last, parent))) = (m, path.split_last()) {
        match (at(root, parent), last) {
            (Some(Value::Object(o)), Step::Key(k)) => {
                o.remove(k);
            }
            (Some(Value::Array(a)), Step::At(i)) if *i < a.len() => {
                a.remove(*i);
            }
            _ => {}
        }
        return;
    }
    let Some(v) = at(root, path) else { return };
    *v = match m {
        Mutation::Remove => Value::Null,
        Mutation::Replace(new) => new.clone(),
        Mutation::EmptyString => json!(""),
        Mutation::Text(t) => json!(t),
        Mutation::Append(t) => json!(format!("{}{t}", v.as_str().unwrap_or_default())),
        Mutation::NotAnId(t) => json!(t),
        Mutation::Huge(n, fill) => Value::Array(
            (0..*n)
                .map(|i| match fill {
                    Fill::Ids => json!(valid_id(i + 1)),
                    Fill::Entities => json!({"entityValue": valid_id(i + 1)}),
                    Fill::Copies => v.clone(),
                })
                .collect(),
        ),
        Mutation::Nest(depth) => (0..*depth).fold(v.take(), |inner, _| Value::Array(vec![inner])),
        Mutation::Megabyte(c) => json!(megabyte(*c)),
        Mutation::Insert(k, new) => {
            if let Some(o) = v.as_object_mut() {
                o.insert(k.clone(), new.clone());
            }
            return;
        }
    };
}

/// A fixture with one to four mutations, each at a path of the value as it is then.
fn mutated_fixture() -> impl Strategy<Value = (String, Value)> {
    (any::<Index>(), prop::collection::vec((any::<Index>(), mutation()), 1..=4)).prop_map(|(which, muts)| {
        let (name, original) = &fixtures()[which.index(fixtures().len())];
        let mut v = original.clone();
        for (where_, m) in &muts {
            let all = paths(&v);
            apply(&mut v, &all[where_.index(all.len())], m);
        }
        (name.clone(), v)
    })
}

// ---------------------------------------------------------------- the property

/// Every field an `IntakeError` may name (indexed list fields end in `[n]`).
const ERROR_FIELDS: &[&str] = &[
    "version",
    "id",
    "account",
    "time",
    "region",
    "resources",
    "detail",
    "detail.state",
    "detail.instance-id",
    "detail.requestParameters.autoScalingGroupName",
    "detail.eventTypeCode",
    "detail.affectedEntities",
    "detail.affectedEntities[].entityValue",
    "detail.affectedEntities[].entityValue (and no resources)",
    "target (sweep: true, instance_ids or asg_names)",
    "sweep",
    "dry_run",
    "instance_ids",
    "asg_names",
];

fn names_a_known_field(field: &str) -> bool {
    let indexed = ["instance_ids[", "asg_names[", "resources["]
        .iter()
        .any(|p| field.strip_prefix(p).and_then(|r| r.strip_suffix(']')).is_some_and(|n| n.parse::<usize>().is_ok()));
    indexed || ERROR_FIELDS.contains(&field)
}

/// `i-` and 8 or 17 lowercase hex digits, nothing else.
fn strict_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|h| {
        matches!(h.len(), 8 | 17) && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn health_codes(limited: bool) -> BTreeSet<String> {
    if limited { ["AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED".to_owned()].into() } else { BTreeSet::new() }
}

/// The classification property: no panic, and exactly one of handled (with a scope),
/// ignored (with a reason) or an error naming a field; reasons and error texts are
/// bounded and printable.
fn classify(raw: &Value, codes: &BTreeSet<String>) -> Result<Result<Parsed, IntakeError>, TestCaseError> {
    let verdict = parse(raw, codes);
    prop_assert_eq!(&verdict, &parse(raw, codes), "parse is not deterministic");
    match &verdict {
        Ok(Parsed::Handled(intake)) => {
            match &intake.scope {
                Scope::Sweep => prop_assert!(
                    matches!(intake.trigger, Trigger::Scheduled | Trigger::Manual { .. }),
                    "sweep from {:?}",
                    intake.trigger
                ),
                Scope::Targets { instances, groups } => {
                    // An org-view event for another account is handled (and notified) without a scope here.
                    let elsewhere = matches!(&intake.trigger, Trigger::Health(h) if !h.elsewhere.is_empty());
                    prop_assert!(
                        !(instances.is_empty() && groups.is_empty()) || elsewhere,
                        "handled with an empty scope"
                    );
                    prop_assert!(instances.len() <= MAX_TARGETS && groups.len() <= MAX_TARGETS);
                    for id in instances {
                        prop_assert!(strict_instance_id(id.as_str()), "accepted instance id {:?}", id.as_str());
                    }
                    for g in groups {
                        let name = g.as_str();
                        prop_assert!(
                            !name.is_empty() && name.chars().count() <= 255 && !name.chars().any(char::is_control),
                            "accepted group name {:?}",
                            name
                        );
                    }
                }
            }
            match &intake.trigger {
                Trigger::Health(h) => {
                    prop_assert_eq!(&intake.scope, &Scope::Targets { instances: h.instances.clone(), groups: vec![] })
                }
                Trigger::StateChange { instance, .. } => {
                    prop_assert_eq!(
                        &intake.scope,
                        &Scope::Targets { instances: vec![instance.clone()], groups: vec![] }
                    )
                }
                Trigger::ProcessesChanged { group, .. } => {
                    prop_assert_eq!(&intake.scope, &Scope::Targets { instances: vec![], groups: vec![group.clone()] })
                }
                Trigger::Scheduled | Trigger::Manual { .. } => {}
            }
            let manual = matches!(intake.trigger, Trigger::Manual { .. });
            prop_assert!(!intake.dry_run_requested() || manual, "dry run asked by a non-manual event");
        }
        Ok(Parsed::Ignored { reason }) => {
            // Logged at info level and returned in the report: bounded and printable. Quoted
            // event text is cut to 80 characters, but `{:?}` escapes each one in up to 10
            // (`\u{202e}`), so two quoted fields may take some 1,700.
            prop_assert!(!reason.trim().is_empty(), "ignored without a reason");
            prop_assert!(!reason.chars().any(char::is_control), "control characters in {:?}", reason);
            prop_assert!(reason.chars().count() < 2000, "reason of {} characters", reason.chars().count());
        }
        Err(e) => {
            let field = match e {
                IntakeError::Missing { field, .. } => *field,
                IntakeError::Invalid { field, .. } => field.as_str(),
            };
            prop_assert!(names_a_known_field(field), "error names no known field: {:?}", e);
            let text = e.to_string();
            prop_assert!(text.contains(field), "{:?} does not name {:?}", text, field);
            prop_assert!(!text.chars().any(char::is_control), "control characters in {:?}", text);
            prop_assert!(text.chars().count() < 400, "error of {} characters", text.chars().count());
        }
    }
    Ok(verdict)
}

proptest! {
    #![proptest_config(config("PROPTEST_CASES", INTAKE_CASES))]

    #[test]
    fn arbitrary_json_is_handled_ignored_or_a_named_error(raw in arb_event(), limited in any::<bool>()) {
        let _verdict = classify(&raw, &health_codes(limited))?;
    }

    #[test]
    fn event_shaped_json_is_handled_ignored_or_a_named_error(raw in event_shaped(), limited in any::<bool>()) {
        let _verdict = classify(&raw, &health_codes(limited))?;
    }

    #[test]
    fn mutated_fixtures_are_handled_ignored_or_a_named_error(
        (_name, raw) in mutated_fixture(),
        limited in any::<bool>(),
    ) {
        let _verdict = classify(&raw, &health_codes(limited))?;
    }
}

/// Every fixture, every path, each kind of mutation once: the cases random picks may miss.
#[test]
fn every_path_of_every_fixture_survives_each_kind_of_mutation() {
    let kinds = [
        Mutation::Remove,
        Mutation::Replace(Value::Null),
        Mutation::Replace(json!(true)),
        Mutation::Replace(json!(-1.5)),
        Mutation::Replace(json!([])),
        Mutation::Replace(json!({})),
        Mutation::Replace(json!(["i-0abc12345def67890"])),
        Mutation::EmptyString,
        Mutation::Text("\u{0}\n\r\u{1b}[31m\u{202e}😀".into()),
        Mutation::NotAnId("i-0abc12345def6789".into()),
        Mutation::NotAnId("i-0abc12345def67890; rm -rf /".into()),
        Mutation::NotAnId("arn:aws:rds:us-east-1:123456789012:db:i-0abc12345def67890".into()),
        Mutation::Nest(200),
        Mutation::Huge(5000, Fill::Entities),
        Mutation::Huge(5000, Fill::Ids),
        Mutation::Megabyte('x'),
    ];
    let mut cases = 0;
    for (name, original) in fixtures() {
        for path in paths(original) {
            // The costly kinds only where they mean something: nesting where the intake
            // reads, huge arrays in place of arrays, a megabyte in place of text.
            let read = path.iter().all(|s| match s {
                Step::At(_) => true,
                Step::Key(k) => FIELDS.contains(&k.as_str()),
            });
            let here = path.iter().try_fold(original, |v, s| match s {
                Step::Key(k) => v.get(k.as_str()),
                Step::At(i) => v.get(*i),
            });
            let (array, text) = (here.is_some_and(Value::is_array), here.is_some_and(Value::is_string));
            for m in &kinds {
                let wanted = match m {
                    Mutation::Nest(_) => read,
                    Mutation::Huge(..) => read && array,
                    Mutation::Megabyte(_) => read && text,
                    _ => true,
                };
                if !wanted {
                    continue;
                }
                let mut v = original.clone();
                apply(&mut v, &path, m);
                for limited in [false, true] {
                    if let Err(e) = classify(&v, &health_codes(limited)) {
                        panic!("{name} with {m:?} at {path:?}: {e}");
                    }
                    cases += 1;
                }
            }
        }
    }
    assert!(cases > 1000, "{cases}");
}

/// Exactly `MAX_TARGETS` ids are read; one more is a named error, never a truncated scope.
#[test]
fn id_lists_at_and_past_the_limit() {
    for (n, ok) in [(MAX_TARGETS, true), (MAX_TARGETS + 1, false), (5000, false)] {
        let ids: Vec<String> = (1..=n).map(valid_id).collect();
        let manual = json!({ "instance_ids": ids });
        let mut health = fixtures().iter().find(|(f, _)| f.contains("scheduled-change-current")).unwrap().1.clone();
        health["detail"]["affectedEntities"] = ids.iter().map(|i| json!({ "entityValue": i })).collect();
        for raw in [manual, health] {
            let verdict = classify(&raw, &BTreeSet::new()).unwrap();
            assert_eq!(verdict.is_ok(), ok, "{n} ids: {verdict:?}");
        }
    }
}

// ---------------------------------------------------------------- through the handler

const ENVS: &[&[(&str, &str)]] = &[
    &[],
    &[("POLICY", "recover")],
    &[("POLICY", "restart"), ("DRY_RUN", "true")],
    &[("POLICY", "recover"), ("HEALTH_EVENT_CODES", "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED")],
];

/// SNS rejects messages over 256 KiB.
const SNS_MESSAGE_MAX: usize = 256 * 1024;

#[test]
fn any_input_through_the_in_memory_handler_is_reported_and_notified_safely() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let input = prop_oneof![
        2 => mutated_fixture().prop_map(|(_, v)| v),
        1 => event_shaped(),
        1 => arb_event(),
    ];
    let mut runner = TestRunner::new(config("FUZZ_HANDLER_CASES", HANDLER_CASES));
    let result = runner.run(&(input, select(ENVS)), |(raw, env)| {
        let guard = handler_guard(story(), env);
        let expected = parse(&raw, &guard.config.health_event_codes);
        let report = rt.block_on(guard.handle(&raw, now()));
        let report = match report {
            Ok(r) => r,
            Err(e) => return Err(TestCaseError::fail(format!("handler failed over memory adapters: {e}"))),
        };
        let status = match expected {
            Ok(Parsed::Handled(_)) => Status::Handled,
            Ok(Parsed::Ignored { .. }) => Status::Ignored,
            Err(_) => Status::Rejected,
        };
        prop_assert_eq!(report.status, status);
        let sent = sent(&guard);
        match status {
            Status::Ignored => prop_assert!(sent.is_empty() && guard.actuator.calls().is_empty()),
            Status::Rejected => prop_assert!(sent.len() == 1 && guard.actuator.calls().is_empty()),
            Status::Handled => {}
        }
        for n in &sent {
            let chars = n.subject.chars().count();
            prop_assert!(
                chars <= retirement_guard::notify::SUBJECT_MAX,
                "subject of {} characters: {:?}",
                chars,
                n.subject
            );
            prop_assert!(!n.subject.chars().any(char::is_control), "control characters in {:?}", n.subject);
            prop_assert!(!n.body.chars().any(|c| c.is_control() && c != '\n'), "control characters in the body");
            prop_assert!(n.body.len() <= SNS_MESSAGE_MAX, "body of {} bytes", n.body.len());
        }
        for r in &report.notifications {
            prop_assert!(r.subject.chars().count() <= retirement_guard::notify::SUBJECT_MAX);
        }
        Ok(())
    });
    if let Err(e) = result {
        // The input can be a megabyte: show its start only.
        let text = e.to_string();
        panic!("{}", text.chars().take(4000).collect::<String>());
    }
}

fn now() -> chrono::DateTime<chrono::Utc> {
    "2026-11-28T12:00:00Z".parse().unwrap()
}
