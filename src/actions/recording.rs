//! `RecordingActuator`: applies writes to a `MemoryInventory`'s state and records
//! every call, with optional injected failures, for tests.

use super::Actuator;
use crate::domain::{AsgName, InstanceId, InstanceState, StatusChecks};
use crate::error::{AwsFailure, FailureKind};
use crate::inventory::memory::MemoryInventory;
use std::collections::BTreeMap;
use std::sync::Mutex;

pub struct RecordingActuator {
    pub world: MemoryInventory,
    pub calls: Mutex<Vec<String>>,
    /// Calls (e.g. `start i-…`) that fail with the given kind.
    pub failures: BTreeMap<String, FailureKind>,
    /// What the instance status check of a started instance reads at once (`ok`,
    /// `initializing`, `impaired`).
    pub checks: &'static str,
}

impl RecordingActuator {
    pub fn new(world: MemoryInventory) -> Self {
        Self { world, calls: Mutex::new(vec![]), failures: BTreeMap::new(), checks: "ok" }
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: String) -> Result<(), AwsFailure> {
        self.calls.lock().unwrap().push(call.clone());
        match self.failures.get(&call) {
            Some(kind) => Err(AwsFailure {
                operation: "test",
                kind: *kind,
                code: Some(format!("{kind:?}")),
                message: format!("injected failure of {call}"),
            }),
            None => Ok(()),
        }
    }
}

impl Actuator for RecordingActuator {
    /// Like AWS, a batch with one refused instance fails as a whole (and starts none).
    async fn start(&self, ids: &[InstanceId]) -> Result<Vec<(InstanceId, String)>, AwsFailure> {
        if ids.len() > 1 && ids.iter().any(|id| self.failures.contains_key(&format!("start {id}"))) {
            let list: Vec<&str> = ids.iter().map(InstanceId::as_str).collect();
            let kind = FailureKind::Other;
            self.calls.lock().unwrap().push(format!("start {}", list.join(",")));
            return Err(AwsFailure {
                operation: "test",
                kind,
                code: None,
                message: "a batch with a refused id".into(),
            });
        }
        for id in ids {
            self.record(format!("start {id}"))?;
        }
        let mut s = self.world.state.lock().unwrap();
        for id in ids {
            let inst = s.instances.get_mut(id).unwrap();
            inst.state = InstanceState::Running;
            inst.state_reason_code = None;
            inst.status = Some(StatusChecks { instance: self.checks.into(), system: "ok".into() });
        }
        Ok(ids.iter().map(|id| (id.clone(), "pending".to_owned())).collect())
    }

    async fn set_healthy(&self, id: &InstanceId) -> Result<(), AwsFailure> {
        self.record(format!("set-healthy {id}"))?;
        let mut s = self.world.state.lock().unwrap();
        for g in s.groups.values_mut() {
            for m in g.members.iter_mut().filter(|m| &m.id == id) {
                m.health_status = "Healthy".into();
            }
        }
        Ok(())
    }

    async fn resume(&self, group: &AsgName, processes: &[String]) -> Result<(), AwsFailure> {
        self.record(format!("resume {group} {}", processes.join(",")))?;
        let mut s = self.world.state.lock().unwrap();
        s.groups.get_mut(group).unwrap().suspended.retain(|p| !processes.contains(&p.name));
        Ok(())
    }

    async fn tag_groups(&self, key: &str, tags: &[(AsgName, String)]) -> Result<(), AwsFailure> {
        for (group, value) in tags {
            self.record(format!("tag {group} {key}"))?;
            self.world.state.lock().unwrap().groups.get_mut(group).unwrap().tags.insert(key.into(), value.clone());
        }
        Ok(())
    }

    async fn untag_groups(&self, key: &str, groups: &[AsgName]) -> Result<(), AwsFailure> {
        for group in groups {
            self.record(format!("untag {group} {key}"))?;
            self.world.state.lock().unwrap().groups.get_mut(group).unwrap().tags.remove(key);
        }
        Ok(())
    }
}
