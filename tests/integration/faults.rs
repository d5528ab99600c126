//! End to end under faults: the built binary talks to moto through a
//! fault-injecting proxy (tests/moto/faultproxy.py) that throttles, answers 5xx,
//! stalls, resets or denies chosen AWS operations. The read path (Describe*), the
//! write path (StartInstances) and the publish path (sns:Publish) each meet
//! throttling, 5xx and timeouts, once (the SDK retries, the invocation succeeds)
//! and for good (the right failure, visible, and nothing unsafe done).
//!
//! The SDK runs with 3 attempts, 2 s per attempt and 6 s per call here, so that
//! every timeout case ends within seconds. State is read and the recorder driven
//! through moto directly, never through the proxy.

use crate::common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ATTEMPTS: u64 = 3;
const ATTEMPT_TIMEOUT: u64 = 2;
const OPERATION_TIMEOUT: u64 = 6;
/// How long the proxy stalls a "timeout" request: longer than one attempt.
const STALL: u64 = 4;
const RECOVER: [(&str, &str); 1] = [("POLICY", "recover")];

/// The fault proxy between the binary and one moto server; killed when dropped.
struct Proxy {
    child: Child,
    endpoint: String,
    port: u16,
    dir: tempfile::TempDir,
}

impl Proxy {
    fn start(moto: &Moto, rules: Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let proxy_rules = dir.path().join("rules.json");
        std::fs::write(&proxy_rules, rules.to_string()).unwrap();
        let mut child = Command::new(venv().join("bin/python"))
            .arg(format!("{ROOT}/tests/moto/faultproxy.py"))
            .args(["--upstream", &moto.endpoint, "--rules", proxy_rules.to_str().unwrap()])
            .args(["--timeout-sleep", &STALL.to_string(), "--max-lifetime", "300"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start faultproxy.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let port = serde_json::from_str::<Value>(&line).ok().and_then(|v| v["port"].as_u64());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("faultproxy.py printed no port within 20 s: {line:?}");
        };
        let port = u16::try_from(port).unwrap();
        Self { child, endpoint: format!("http://127.0.0.1:{port}"), port, dir }
    }

    /// Replaces the rules; the proxy reads them on its next request and starts the
    /// `times` counters again.
    fn set_rules(&self, rules: Value) {
        let tmp = self.dir.path().join("rules.json.new");
        std::fs::write(&tmp, rules.to_string()).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("rules.json")).unwrap();
    }

    /// Requests seen and faults injected so far, per action.
    fn stats(&self) -> Value {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /__faults/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("stats: {e}: {text}"))
    }

    fn requests(&self, action: &str) -> u64 {
        self.stats()["requests"][action].as_u64().unwrap_or(0)
    }

    fn faults(&self, action: &str, fault: &str) -> u64 {
        self.stats()["faults"][action][fault].as_u64().unwrap_or(0)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rule(action: &str, fault: &str, times: i64) -> Value {
    json!({"action": action, "fault": fault, "times": times})
}

/// A seeded world with the proxy in front of its moto server. Started instances boot
/// within a second here: these tests are about faults, not boot times.
fn world(rules: Value) -> (World, Proxy) {
    let w = World::new();
    w.moto.realism(&[("pending_seconds", "0.2"), ("initializing_seconds", "0.3")]);
    let p = Proxy::start(&w.moto, rules);
    (w, p)
}

struct Run {
    out: Output,
    elapsed: Duration,
}

impl Run {
    fn ok(&self) -> bool {
        self.out.status.success()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    /// The one `retirement-guard: …` line of a failed invocation.
    fn reason(&self) -> String {
        let stderr = self.stderr();
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("retirement-guard:")).collect();
        assert_eq!(lines.len(), 1, "one reason line expected: {stderr}");
        lines[0].to_owned()
    }

    fn report(&self) -> Value {
        assert!(self.ok(), "the invocation failed: {}", self.stderr());
        serde_json::from_slice(&self.out.stdout).unwrap_or_else(|e| panic!("report: {e}: {}", self.stderr()))
    }
}

/// Runs the binary through the proxy with short SDK timeouts.
fn run(w: &World, p: &Proxy, args: &[&str], env: &[(&str, &str)]) -> Run {
    let (attempts, attempt, operation) =
        (ATTEMPTS.to_string(), ATTEMPT_TIMEOUT.to_string(), OPERATION_TIMEOUT.to_string());
    let mut all: Vec<(&str, &str)> = vec![
        ("AWS_ENDPOINT_URL", &p.endpoint),
        ("AWS_MAX_ATTEMPTS", &attempts),
        ("SDK_ATTEMPT_TIMEOUT_SECONDS", &attempt),
        ("SDK_OPERATION_TIMEOUT_SECONDS", &operation),
        // Waiting follows only successful writes: the failure cases never wait.
        ("WAIT_SECONDS", "10"),
    ];
    all.extend_from_slice(env);
    let started = Instant::now();
    let out = w.moto.guard(w.topic(), args, &all, None);
    Run { out, elapsed: started.elapsed() }
}

fn writes(w: &World) -> Vec<String> {
    strings(&w.moto.scenario(&["record-writes"])["writes"])
}

/// The writes that change EC2 or Auto Scaling (not the notices).
fn changes(w: &World) -> Vec<String> {
    writes(w).into_iter().filter(|a| a != "Publish").collect()
}

/// The report without what differs from run to run.
fn findings(report: &Value) -> Value {
    let mut f = report["findings"].clone();
    for item in f.as_array_mut().unwrap() {
        if let Some(o) = item.as_object_mut() {
            o.retain(|k, _| !k.contains("time") && !k.contains("_at") && k != "age_seconds");
        }
    }
    f
}

fn actions(report: &Value) -> Vec<(String, String)> {
    report["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["action"].as_str().unwrap().to_owned(), o["result"].as_str().unwrap().to_owned()))
        .collect()
}

// ---------------------------------------------------------------- read path

#[test]
fn a_read_throttled_answered_5xx_or_reset_once_is_retried_and_the_report_is_the_same_as_without_the_fault() {
    let (w, p) = world(json!([]));
    let clean = run(&w, &p, &["sweep"], &[]).report();
    assert_eq!(w.notices_now().len(), 1);
    // What one clean sweep asks for, per action (the first run through this proxy).
    let clean_counts = p.stats()["requests"].clone();
    let cases = [
        ("DescribeAutoScalingGroups", "throttle"),
        ("DescribeInstances", "5xx"),
        ("DescribeAutoScalingGroups", "reset"),
    ];
    for (action, fault) in cases {
        p.set_rules(json!([rule(action, fault, 1)]));
        let before = p.requests(action);
        let r = run(&w, &p, &["sweep"], &[]);
        let report = r.report();
        assert_eq!(report["status"], "handled", "{action} {fault}");
        assert_eq!(findings(&report), findings(&clean), "{action} {fault}: the same findings as without the fault");
        assert_eq!(p.faults(action, fault), 1, "{action} {fault}");
        let extra = p.requests(action) - before;
        let per_sweep = clean_counts[action].as_u64().unwrap();
        assert_eq!(extra, per_sweep + 1, "{action} {fault}: one extra attempt after the fault");
        assert_eq!(w.notices_now().len(), 1, "{action} {fault}: the usual notice");
    }
}

#[test]
fn an_event_whose_read_keeps_failing_fails_the_invocation_naming_the_operation_and_changes_and_sends_nothing() {
    let (w, p) = world(json!([]));
    let before = w.state();
    let event = w.health_event();
    w.moto.scenario(&["record-start"]);
    // (action, fault, requests the SDK makes before giving up)
    let cases = [
        ("DescribeAutoScalingGroups", "throttle", ATTEMPTS),
        ("DescribeInstances", "5xx", ATTEMPTS),
        ("DescribeAutoScalingGroups", "denied", 1),
        ("DescribeInstances", "throttle", ATTEMPTS),
    ];
    for (action, fault, attempts) in cases {
        p.set_rules(json!([rule(action, fault, -1)]));
        let r = run(&w, &p, &["invoke", event.path().to_str().unwrap()], &RECOVER);
        assert!(!r.ok(), "{action} {fault}: the invocation must fail so that Lambda retries it");
        let reason = r.reason();
        assert!(reason.contains("reading AWS state failed") && reason.contains(action), "{action} {fault}: {reason}");
        assert_eq!(p.faults(action, fault), attempts, "{action} {fault}: attempts made");
        eprintln!("{action} × {fault} always: {reason} ({:.1} s)", r.elapsed.as_secs_f64());
    }
    assert_eq!(writes(&w), Vec::<String>::new(), "no write call after a failed read");
    assert!(w.notices_now().is_empty(), "no notice from a failed invocation");
    assert_eq!(w.state(), before);
}

/// The parts a sweep's report says it could not read.
fn unread(report: &Value) -> Vec<String> {
    report["unread"]
        .as_array()
        .map(|a| a.iter().map(|u| u["part"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn a_sweep_whose_group_read_keeps_failing_notifies_what_it_could_not_read_and_writes_nothing() {
    let (w, p) = world(json!([]));
    let before = w.state();
    w.moto.scenario(&["record-start"]);
    for fault in ["throttle", "denied"] {
        p.set_rules(json!([rule("DescribeAutoScalingGroups", fault, -1)]));
        let r = run(&w, &p, &["sweep"], &RECOVER);
        let report = r.report();
        assert_eq!(unread(&report).len(), 1, "{fault}: {report:#}");
        assert!(unread(&report)[0].starts_with("Auto Scaling groups"), "{fault}: {report:#}");
        assert!(report["unread"][0]["error"].as_str().unwrap().contains("DescribeAutoScalingGroups"));
        let notices = w.notices_now();
        assert_eq!(notices.len(), 1, "{fault}: the first sweep tells, the second is deduplicated");
        let body = notices[0]["message"].as_str().unwrap();
        assert!(body.contains("COULD NOT READ") && body.contains("unchecked: "), "{body}");
        for id in w.stopped() {
            assert!(body.contains(&id), "{fault}: the stopped member {id} is named as unchecked: {body}");
        }
        eprintln!(
            "DescribeAutoScalingGroups × {fault} always: exit 0, reported unread ({:.1} s)",
            r.elapsed.as_secs_f64()
        );
    }
    assert_eq!(changes(&w), Vec::<String>::new(), "nothing is written for a group the sweep could not read");
    assert_eq!(w.state(), before);
}

#[test]
fn a_read_that_hangs_ends_within_the_operation_timeout_and_one_hang_is_retried() {
    let (w, p) = world(json!([rule("DescribeAutoScalingGroups", "timeout", -1)]));
    w.moto.scenario(&["record-start"]);
    let r = run(&w, &p, &["sweep"], &RECOVER);
    let limit = Duration::from_secs(OPERATION_TIMEOUT + 3);
    assert!(r.elapsed < limit, "ended after {:?}, limit {limit:?}", r.elapsed);
    let report = r.report();
    assert!(unread(&report)[0].starts_with("Auto Scaling groups"), "{report:#}");
    assert!(report["unread"][0]["error"].as_str().unwrap().contains("timed out"), "{report:#}");
    assert!(p.faults("DescribeAutoScalingGroups", "timeout") >= 2, "timed-out attempts are retried: {}", p.stats());
    assert_eq!(changes(&w), Vec::<String>::new());
    eprintln!("DescribeAutoScalingGroups × timeout always: exit 0, reported unread ({:.1} s)", r.elapsed.as_secs_f64());

    p.set_rules(json!([rule("DescribeInstances", "timeout", 1)]));
    let r = run(&w, &p, &["sweep"], &[]);
    let report = r.report();
    assert_eq!(report["status"], "handled");
    assert!(unread(&report).is_empty(), "{report:#}");
    assert_eq!(p.faults("DescribeInstances", "timeout"), 1);
    assert!(r.elapsed >= Duration::from_secs(ATTEMPT_TIMEOUT), "the attempt timed out first: {:?}", r.elapsed);
}

/// Pages slower than one attempt timeout: the SDK gives each attempt `ATTEMPT_TIMEOUT`,
/// so a page that always takes longer is reported unread, with what the other reads
/// found; a page slow only once is retried and the sweep is complete.
#[test]
fn a_sweep_whose_instance_pages_are_slower_than_the_attempt_timeout_reports_them_and_still_notifies() {
    let (w, p) = world(json!([]));
    let clean = run(&w, &p, &["sweep"], &[]).report();
    w.notices_now();
    let slow = |times: i64| json!([{"action": "DescribeInstances", "fault": "delay", "seconds": ATTEMPT_TIMEOUT + 1, "times": times}]);

    p.set_rules(slow(-1));
    let r = run(&w, &p, &["sweep"], &[]);
    let report = r.report();
    assert_eq!(unread(&report).len(), 1, "{report:#}");
    assert!(unread(&report)[0].starts_with("instances that are not running"), "{report:#}");
    assert!(report["unread"][0]["error"].as_str().unwrap().contains("DescribeInstances: timed out"), "{report:#}");
    assert!(p.faults("DescribeInstances", "delay") >= 2, "the slow attempts were retried: {}", p.stats());
    // What it could read is there: the group and its suspended processes.
    let kinds: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"ReadIncomplete") && kinds.contains(&"SuspendedProcesses"), "{kinds:?}");
    let notices = w.notices_now();
    assert_eq!(notices.len(), 1, "{notices:#?}");
    assert!(notices[0]["message"].as_str().unwrap().contains("COULD NOT READ"));
    assert!(r.elapsed < Duration::from_secs(OPERATION_TIMEOUT + 3), "{:?}", r.elapsed);
    eprintln!(
        "DescribeInstances pages slower than the attempt timeout: exit 0, reported unread ({:.1} s)",
        r.elapsed.as_secs_f64()
    );

    p.set_rules(slow(1));
    let slowed = p.faults("DescribeInstances", "delay");
    let r = run(&w, &p, &["sweep"], &[]);
    let report = r.report();
    assert!(unread(&report).is_empty(), "one slow page is retried: {report:#}");
    assert_eq!(findings(&report), findings(&clean));
    assert_eq!(p.faults("DescribeInstances", "delay") - slowed, 1);
}

// ---------------------------------------------------------------- write path

#[test]
fn a_start_throttled_then_answered_5xx_is_retried_and_the_group_is_recovered() {
    let (w, p) = world(json!([rule("StartInstances", "throttle", 1), rule("StartInstances", "5xx", 1)]));
    let report = run(&w, &p, &["sweep"], &RECOVER).report();
    assert_eq!(report["remaining"], json!([]), "{report:#}");
    assert!(actions(&report).iter().all(|(_, result)| result == "done"), "{report:#}");
    assert_eq!((p.faults("StartInstances", "throttle"), p.faults("StartInstances", "5xx")), (1, 1));
    let after = w.state();
    for id in w.stopped() {
        assert_eq!(instance_state(&after, &id), "running", "{id}");
    }
    assert!(suspended(&after, "es-data").is_empty());
    let notices = w.notices_now();
    assert_eq!(notices.len(), 1);
    assert!(!notices[0]["message"].as_str().unwrap().contains("FAILED"), "{notices:#?}");
}

#[test]
fn a_start_that_times_out_once_is_retried_and_the_group_is_recovered() {
    let (w, p) = world(json!([rule("StartInstances", "timeout", 1)]));
    let report = run(&w, &p, &["sweep"], &RECOVER).report();
    assert_eq!(report["remaining"], json!([]), "{report:#}");
    assert_eq!(p.faults("StartInstances", "timeout"), 1);
    let after = w.state();
    assert!(w.stopped().iter().all(|id| instance_state(&after, id) == "running"));
    assert!(suspended(&after, "es-data").is_empty());
    assert_eq!(w.notices_now().len(), 1);
}

/// Runs the sweep under `recover` once per persistent StartInstances fault and checks
/// each time: exit 0, every start a failed outcome with the code, nothing resumed or
/// marked healthy, the group still suspended, the instances still stopped, and one
/// notice naming the failure.
fn starts_keep_failing(w: &World, p: &Proxy, cases: &[(Value, Option<&str>)]) {
    let suspended_before = suspended(&w.state(), "es-data");
    assert!(!suspended_before.is_empty());
    for (fault, code) in cases {
        let name = fault["fault"].as_str().unwrap().to_owned();
        p.set_rules(json!([fault]));
        w.moto.scenario(&["record-start"]);
        let attempts_before = p.requests("StartInstances");
        let r = run(w, p, &["sweep"], &RECOVER);
        let report = r.report();
        let starts: Vec<&Value> =
            report["outcomes"].as_array().unwrap().iter().filter(|o| o["action"] == "start_instance").collect();
        assert_eq!(starts.len(), w.stopped().len(), "{name}: {report:#}");
        for o in &starts {
            assert_eq!(o["result"], "failed", "{name}: {o:#}");
            assert_eq!(o["failure"]["operation"], "StartInstances", "{name}: {o:#}");
            match code {
                Some(c) => assert_eq!(o["failure"]["code"], *c, "{name}: {o:#}"),
                None => assert_eq!(o["failure"]["kind"], "transient", "{name}: {o:#}"),
            }
        }
        let recorded = writes(w);
        for never in ["ResumeProcesses", "SetInstanceHealth", "StartInstances"] {
            assert!(!recorded.iter().any(|a| a == never), "{name}: {never} reached AWS: {recorded:?}");
        }
        let after = w.state();
        assert_eq!(suspended(&after, "es-data"), suspended_before, "{name}: the group stays suspended");
        assert!(w.stopped().iter().all(|id| instance_state(&after, id) == "stopped"), "{name}");
        let notices = w.notices_now();
        assert_eq!(notices.len(), 1, "{name}");
        let text = format!("{} {}", notices[0]["subject"], notices[0]["message"]);
        assert!(text.contains("FAILED"), "{name}: the notice names the failure: {text}");
        if let Some(c) = code {
            assert!(text.contains(c), "{name}: the notice names {c}: {text}");
        }
        eprintln!(
            "StartInstances × {name} always: exit 0, {} failed start(s), {} attempt(s), {} round(s), {:.1} s",
            starts.len(),
            p.requests("StartInstances") - attempts_before,
            report["rounds"],
            r.elapsed.as_secs_f64(),
        );
    }
}

#[test]
fn a_start_that_keeps_being_throttled_or_hangs_is_a_notified_per_instance_failure_and_nothing_is_resumed() {
    let (w, p) = world(json!([]));
    starts_keep_failing(
        &w,
        &p,
        &[
            (rule("StartInstances", "throttle", -1), Some("RequestLimitExceeded")),
            (rule("StartInstances", "timeout", -1), None),
        ],
    );
}

#[test]
fn a_start_that_keeps_failing_with_5xx_or_no_capacity_is_notified_and_the_next_clean_invocation_recovers_the_group() {
    let (w, p) = world(json!([]));
    let capacity =
        json!({"action": "StartInstances", "fault": "error", "code": "InsufficientInstanceCapacity", "times": -1});
    starts_keep_failing(
        &w,
        &p,
        &[(rule("StartInstances", "5xx", -1), Some("InternalError")), (capacity, Some("InsufficientInstanceCapacity"))],
    );
    p.set_rules(json!([]));
    let report = run(&w, &p, &["sweep"], &RECOVER).report();
    assert_eq!(report["remaining"], json!([]), "the next invocation finishes the job: {report:#}");
    let after = w.state();
    assert!(w.stopped().iter().all(|id| instance_state(&after, id) == "running"));
    assert!(suspended(&after, "es-data").is_empty());
}

// ---------------------------------------------------------------- publish path

#[test]
fn a_publish_throttled_answered_5xx_or_timed_out_once_is_retried_and_exactly_one_notice_arrives() {
    let (w, p) = world(json!([]));
    for fault in ["throttle", "5xx", "timeout"] {
        p.set_rules(json!([rule("Publish", fault, 1)]));
        let report = run(&w, &p, &["sweep"], &[]).report();
        assert_eq!(report["notifications"].as_array().unwrap().len(), 1, "{fault}: {report:#}");
        assert_eq!(p.faults("Publish", fault), 1, "{fault}");
        assert_eq!(w.notices_now().len(), 1, "{fault}: exactly one notice");
    }
}

#[test]
fn a_publish_that_keeps_failing_fails_the_invocation_and_releases_the_claim_so_the_retry_notifies() {
    let (w, p) = world(json!([]));
    let table = [("STATE_TABLE", "retirement-guard-state")];
    for fault in ["throttle", "5xx", "timeout", "denied"] {
        p.set_rules(json!([rule("Publish", fault, -1)]));
        let r = run(&w, &p, &["sweep"], &table);
        assert!(!r.ok(), "{fault}: the invocation fails so that Lambda retries it");
        let reason = r.reason();
        assert!(reason.contains("publishing the notice failed") && reason.contains("Publish"), "{fault}: {reason}");
        assert!(r.elapsed < Duration::from_secs(OPERATION_TIMEOUT + 4), "{fault}: ended after {:?}", r.elapsed);
        assert!(w.notices_now().is_empty(), "{fault}");
        eprintln!("Publish × {fault} always: {reason} ({:.1} s)", r.elapsed.as_secs_f64());
    }
    assert!(p.requests("PutItem") + p.requests("UpdateItem") > 0, "claims went to DynamoDB: {}", p.stats());

    p.set_rules(json!([]));
    let report = run(&w, &p, &["sweep"], &table).report();
    assert_eq!(report["notifications"].as_array().unwrap().len(), 1, "the claim was released: {report:#}");
    assert_eq!(w.notices_now().len(), 1, "the retry notifies");
    let again = run(&w, &p, &["sweep"], &table).report();
    assert!(again["notifications"].as_array().unwrap().is_empty(), "then it is deduplicated: {again:#}");
    assert!(w.notices_now().is_empty());
}
