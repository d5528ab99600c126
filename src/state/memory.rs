//! `MemoryStateStore`: the state port over a map, with the same conditional
//! semantics as the DynamoDB adapter, for tests.

use super::{Loaded, StateStore};
use crate::error::AwsFailure;
use crate::escalation::Record;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct MemoryStateStore {
    pub records: Arc<Mutex<BTreeMap<String, Record>>>,
    pub corrupt: Arc<Mutex<Vec<String>>>,
    /// When set, every load fails (the table is unreadable).
    pub unreadable: bool,
}

impl StateStore for MemoryStateStore {
    async fn load(&self, keys: Option<&[String]>) -> Result<Loaded, AwsFailure> {
        if self.unreadable {
            return Err(AwsFailure {
                operation: "Scan",
                kind: crate::error::FailureKind::Denied,
                code: Some("AccessDeniedException".into()),
                message: "not allowed".into(),
            });
        }
        let records = self.records.lock().unwrap();
        let corrupt = self.corrupt.lock().unwrap();
        let wanted = |k: &String| keys.is_none_or(|keys| keys.contains(k));
        Ok(Loaded {
            records: records.iter().filter(|(k, _)| wanted(k)).map(|(k, r)| (k.clone(), r.clone())).collect(),
            corrupt: corrupt.iter().filter(|k| wanted(k)).cloned().collect(),
        })
    }

    async fn claim(&self, record: &Record, previous: Option<&Record>) -> Result<bool, AwsFailure> {
        let mut records = self.records.lock().unwrap();
        if records.get(&record.key) != previous || self.corrupt.lock().unwrap().contains(&record.key) {
            return Ok(false);
        }
        records.insert(record.key.clone(), record.clone());
        Ok(true)
    }

    async fn release(&self, claimed: &Record, previous: Option<&Record>) -> Result<(), AwsFailure> {
        let mut records = self.records.lock().unwrap();
        if records.get(&claimed.key) == Some(claimed) {
            match previous {
                Some(p) => records.insert(p.key.clone(), p.clone()),
                None => records.remove(&claimed.key),
            };
        }
        Ok(())
    }

    async fn resolve(&self, record: &Record, tombstone: &Record) -> Result<bool, AwsFailure> {
        let mut records = self.records.lock().unwrap();
        if records.get(&record.key) == Some(record) {
            records.insert(record.key.clone(), tombstone.clone());
            return Ok(true);
        }
        Ok(false)
    }

    async fn discard(&self, key: &str) -> Result<(), AwsFailure> {
        self.corrupt.lock().unwrap().retain(|k| k != key);
        self.records.lock().unwrap().remove(key);
        Ok(())
    }
}
