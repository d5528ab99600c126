//! `MemoryInventory`: the inventory port over an in-memory `Snapshot`, for tests.

use super::{InstanceStatus, Inventory, Listing};
use crate::domain::{Alarm, AsgName, GroupSnapshot, InstanceId, InstanceSnapshot, InstanceState, Snapshot};
use crate::error::AwsFailure;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Clones share the same state, so a `RecordingActuator` can change what this reads.
#[derive(Clone, Default)]
pub struct MemoryInventory {
    pub state: Arc<Mutex<Snapshot>>,
    /// When set, every read fails with this failure.
    pub fail: Option<AwsFailure>,
    /// When set, reads fail (transiently) from the read with this index on.
    pub fail_from: Option<usize>,
    /// When set, every call of the port method of this name (`all_groups`, …) fails transiently.
    pub fail_method: Option<&'static str>,
    /// Reads made so far, shared by clones.
    pub reads: Arc<AtomicUsize>,
    /// The group names each `groups` read asked for (`*` for all), shared by clones.
    pub group_reads: Arc<Mutex<Vec<String>>>,
}

impl MemoryInventory {
    pub fn new(snapshot: Snapshot) -> Self {
        Self { state: Arc::new(Mutex::new(snapshot)), ..Self::default() }
    }

    /// Status of the running instances that `pick` chooses, as DescribeInstanceStatus gives it.
    fn running_status(
        &self,
        method: &'static str,
        pick: impl Fn(&InstanceSnapshot) -> bool,
    ) -> Result<BTreeMap<InstanceId, InstanceStatus>, AwsFailure> {
        self.read(method, |s| {
            s.instances
                .values()
                .filter(|i| i.state == InstanceState::Running && pick(i))
                .map(|i| {
                    (i.id.clone(), InstanceStatus { checks: i.status.clone(), events: i.scheduled_events.clone() })
                })
                .collect()
        })
    }

    fn read<T>(&self, method: &'static str, f: impl FnOnce(&Snapshot) -> T) -> Result<T, AwsFailure> {
        let n = self.reads.fetch_add(1, Ordering::SeqCst);
        if self.fail_from.is_some_and(|from| n >= from) || self.fail_method == Some(method) {
            return Err(AwsFailure {
                operation: "DescribeInstances",
                kind: crate::error::FailureKind::Transient,
                code: Some("RequestLimitExceeded".into()),
                message: "injected after earlier reads".into(),
            });
        }
        match &self.fail {
            Some(e) => Err(e.clone()),
            None => Ok(f(&self.state.lock().unwrap())),
        }
    }
}

impl Inventory for MemoryInventory {
    async fn instances(&self, ids: &[InstanceId]) -> Result<Vec<InstanceSnapshot>, AwsFailure> {
        self.read("instances", |s| ids.iter().filter_map(|i| s.instances.get(i)).map(strip).collect())
    }

    async fn not_running(&self) -> Listing<InstanceSnapshot> {
        Listing::from(self.read("not_running", |s| {
            s.instances.values().filter(|i| super::NOT_RUNNING.contains(&i.state.as_str())).map(strip).collect()
        }))
    }

    async fn all_groups(&self) -> Listing<GroupSnapshot> {
        self.group_reads.lock().unwrap().push("*".to_owned());
        Listing::from(self.read("all_groups", |s| s.groups.values().cloned().collect()))
    }

    async fn groups(&self, names: &[AsgName]) -> Result<Vec<GroupSnapshot>, AwsFailure> {
        self.group_reads.lock().unwrap().push(names.iter().map(AsgName::as_str).collect::<Vec<_>>().join(","));
        self.read("groups", |s| s.groups.values().filter(|g| names.contains(&g.name)).cloned().collect())
    }

    async fn not_running_in(&self, groups: &[AsgName]) -> Result<Vec<InstanceSnapshot>, AwsFailure> {
        self.read("not_running_in", |s| {
            s.instances
                .values()
                .filter(|i| super::NOT_RUNNING.contains(&i.state.as_str()))
                .filter(|i| i.group_tag().is_some_and(|g| groups.contains(&g)))
                .map(strip)
                .collect()
        })
    }

    async fn memberships(&self, ids: &[InstanceId]) -> Result<BTreeMap<InstanceId, AsgName>, AwsFailure> {
        self.read("memberships", |s| {
            s.groups
                .values()
                .flat_map(|g| g.members.iter().map(move |m| (m.id.clone(), g.name.clone())))
                .filter(|(id, _)| ids.contains(id))
                .collect()
        })
    }

    async fn statuses(&self, ids: &[InstanceId]) -> Result<BTreeMap<InstanceId, InstanceStatus>, AwsFailure> {
        self.running_status("statuses", |i| ids.contains(&i.id))
    }

    async fn scheduled(&self) -> Listing<(InstanceId, InstanceStatus)> {
        Listing::from(
            self.running_status("scheduled", |i| !i.scheduled_events.is_empty()).map(|m| m.into_iter().collect()),
        )
    }

    async fn alarms(&self, names: &[String]) -> Result<Vec<Alarm>, AwsFailure> {
        self.read("alarms", |s| s.alarms.values().flatten().filter(|a| names.contains(&a.name)).cloned().collect())
    }
}

/// DescribeInstances does not return status checks.
fn strip(i: &InstanceSnapshot) -> InstanceSnapshot {
    InstanceSnapshot { status: None, scheduled_events: vec![], ..i.clone() }
}
