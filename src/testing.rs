//! Test support shared by the unit tests and the integration tests in `tests/`:
//! snapshot fixtures (the story's group and others), the in-memory adapters, and a
//! guard built from them. Compiled for `cargo test` only (the `testing` feature,
//! which the package's dev-dependency on itself turns on), never for a release.

pub use crate::actions::recording::RecordingActuator;
pub use crate::inventory::memory::MemoryInventory;
pub use crate::state::memory::MemoryStateStore;

use crate::config::{Config, ConfigError};
use crate::domain::{
    AsgName, GROUP_TAG, GroupSnapshot, InstanceId, InstanceSnapshot, InstanceState, Member, RootDevice, Snapshot,
    StatusChecks, SuspendedProcess, TopicArn,
};
use crate::error::{AwsFailure, FailureKind};
use crate::handler::Guard;
use crate::notify::{Notice, Notifier};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The topic of the tests' configuration.
pub const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:retirement-guard-notices";

/// The configuration from these variables (over `NOTIFY_TOPIC_ARN=TOPIC`), as from the environment.
pub fn config_with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let pairs: Vec<(String, String)> =
        [("NOTIFY_TOPIC_ARN", TOPIC)].iter().chain(pairs).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_lookup(|k| pairs.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.clone()))
}

// ---------------------------------------------------------------- snapshots

/// The clock of the pure tests.
pub fn now() -> DateTime<Utc> {
    "2026-11-28T12:00:00Z".parse().unwrap()
}

pub fn id(n: u32) -> InstanceId {
    InstanceId::parse(&format!("i-{n:017x}")).unwrap()
}

pub fn instance(n: u32, state: InstanceState, reason: Option<&str>, group: Option<&str>) -> InstanceSnapshot {
    let mut tags = BTreeMap::new();
    if let Some(g) = group {
        tags.insert(GROUP_TAG.to_owned(), g.to_owned());
    }
    InstanceSnapshot {
        id: id(n),
        state,
        state_reason_code: reason.map(str::to_owned),
        state_transition_reason: Some("User initiated (2026-11-20 10:00:00 GMT)".into()),
        root_device: RootDevice::Ebs,
        tags,
        status: (state == InstanceState::Running).then(|| StatusChecks { instance: "ok".into(), system: "ok".into() }),
        scheduled_events: vec![],
        launched_at: None,
    }
}

pub fn group(name: &str, members: &[u32], suspended: &[(&str, &str)]) -> GroupSnapshot {
    GroupSnapshot {
        name: AsgName::parse(name).unwrap(),
        desired: members.len() as i32,
        min_size: 0,
        suspended: suspended.iter().map(|(n, r)| SuspendedProcess { name: (*n).into(), reason: (*r).into() }).collect(),
        members: members
            .iter()
            .map(|n| Member { id: id(*n), lifecycle_state: "InService".into(), health_status: "Healthy".into() })
            .collect(),
        tags: BTreeMap::new(),
    }
}

/// The story: six data nodes, Launch/Terminate suspended, two stopped by retirement.
pub fn story() -> Snapshot {
    let mut s = Snapshot::default();
    let g = group("es-data", &[1, 2, 3, 4, 5, 6], &[("Launch", ""), ("Terminate", "")]);
    for n in 1..=6 {
        let inst = if n <= 2 {
            instance(n, InstanceState::Stopped, Some("Server.ScheduledStop"), Some("es-data"))
        } else {
            instance(n, InstanceState::Running, None, Some("es-data"))
        };
        s.instances.insert(inst.id.clone(), inst);
    }
    s.groups.insert(g.name.clone(), g);
    s
}

/// Three stranded groups (a, b, c) with four retired members, two of them in a.
pub fn three_groups() -> Snapshot {
    let mut s = Snapshot::default();
    for (name, members, stopped) in [("a", [11, 12, 13], 2), ("b", [21, 22, 23], 1), ("c", [31, 32, 33], 1)] {
        let g = group(name, &members, &[("Launch", ""), ("Terminate", "")]);
        for (k, n) in members.iter().enumerate() {
            let state = if k < stopped { InstanceState::Stopped } else { InstanceState::Running };
            let inst = instance(*n, state, (k < stopped).then_some("Server.ScheduledStop"), Some(name));
            s.instances.insert(inst.id.clone(), inst);
        }
        s.groups.insert(g.name.clone(), g);
    }
    s
}

// ---------------------------------------------------------------- a guard over memory

/// Keeps every notice published; `fail` makes every publish fail (throttled), and a
/// topic in `missing` refuses it for good (NotFound, as SNS answers for a topic that
/// does not exist).
#[derive(Default)]
pub struct RecordingNotifier {
    /// Every notice published, with its topic.
    pub sent: Mutex<Vec<(String, Notice)>>,
    pub fail: bool,
    pub missing: Vec<String>,
}

impl Notifier for RecordingNotifier {
    async fn publish(&self, topic: &TopicArn, notice: &Notice) -> Result<String, AwsFailure> {
        if self.fail {
            return Err(AwsFailure {
                operation: "Publish",
                kind: FailureKind::Transient,
                code: Some("Throttling".into()),
                message: "slow down".into(),
            });
        }
        if self.missing.iter().any(|t| t == topic.as_str()) {
            return Err(AwsFailure {
                operation: "Publish",
                kind: FailureKind::NotFound,
                code: Some("NotFound".into()),
                message: "Topic does not exist".into(),
            });
        }
        let mut sent = self.sent.lock().unwrap();
        sent.push((topic.as_str().to_owned(), notice.clone()));
        Ok(format!("msg-{}", sent.len()))
    }
}

/// A guard whose every port is in memory.
pub type TestGuard = Guard<MemoryInventory, RecordingActuator, RecordingNotifier, MemoryStateStore>;

/// A guard over `snapshot`, configured from `env`, that never waits for boots.
pub fn guard(snapshot: Snapshot, env: &[(&str, &str)]) -> TestGuard {
    let world = MemoryInventory::new(snapshot);
    let mut env = env.to_vec();
    env.push(("WAIT_SECONDS", "0"));
    Guard {
        config: config_with(&env).unwrap(),
        inventory: world.clone(),
        actuator: RecordingActuator::new(world),
        notifier: RecordingNotifier::default(),
        state: MemoryStateStore::default(),
        region: "us-east-1".into(),
    }
}

pub fn sweep() -> Value {
    json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
}

pub fn sent(g: &TestGuard) -> Vec<Notice> {
    g.notifier.sent.lock().unwrap().iter().map(|(_, n)| n.clone()).collect()
}
