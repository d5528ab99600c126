//! State for deduplication and escalation: one `Record` per open condition, kept
//! in a store the template creates (DynamoDB), never in Lambda memory. Every
//! change is a conditional write on what was read (optimistic concurrency), so of
//! several invocations racing on one condition exactly one wins each claim.

pub mod dynamo;
#[cfg(any(test, feature = "testing"))]
pub mod memory;

use crate::error::AwsFailure;
use crate::escalation::Record;
use std::collections::BTreeMap;
use std::future::Future;

/// What a load found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loaded {
    pub records: BTreeMap<String, Record>,
    /// Keys whose item could not be read: dropped and treated as new (never silence).
    pub corrupt: Vec<String>,
}

/// The state port.
pub trait StateStore: Sync {
    /// Records with these keys, or every record when `keys` is `None` (a sweep).
    fn load(&self, keys: Option<&[String]>) -> impl Future<Output = Result<Loaded, AwsFailure>> + Send;
    /// Writes `record` if the stored record is still `previous` (absent when `None`).
    /// `Ok(false)`: another invocation changed it first, so it is that one's to notify.
    fn claim(
        &self,
        record: &Record,
        previous: Option<&Record>,
    ) -> impl Future<Output = Result<bool, AwsFailure>> + Send;
    /// Puts `previous` back (or removes the record) if `claimed` is still what is stored.
    fn release(
        &self,
        claimed: &Record,
        previous: Option<&Record>,
    ) -> impl Future<Output = Result<(), AwsFailure>> + Send;
    /// Turns `record` into `tombstone` if it is still `record`; `Ok(true)` when this call did.
    fn resolve(&self, record: &Record, tombstone: &Record) -> impl Future<Output = Result<bool, AwsFailure>> + Send;
    /// Removes an unreadable item whatever it holds.
    fn discard(&self, key: &str) -> impl Future<Output = Result<(), AwsFailure>> + Send;
}

/// No store configured (local use without STATE_TABLE): nothing is remembered,
/// every claim succeeds, so every invocation notifies what it finds.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoStore;

impl StateStore for NoStore {
    async fn load(&self, _: Option<&[String]>) -> Result<Loaded, AwsFailure> {
        Ok(Loaded::default())
    }
    async fn claim(&self, _: &Record, _: Option<&Record>) -> Result<bool, AwsFailure> {
        Ok(true)
    }
    async fn release(&self, _: &Record, _: Option<&Record>) -> Result<(), AwsFailure> {
        Ok(())
    }
    async fn resolve(&self, _: &Record, _: &Record) -> Result<bool, AwsFailure> {
        Ok(false)
    }
    async fn discard(&self, _: &str) -> Result<(), AwsFailure> {
        Ok(())
    }
}

/// Either store, chosen at start-up.
pub enum AnyStore<S> {
    None(NoStore),
    Some(S),
}

impl<S: StateStore> StateStore for AnyStore<S> {
    async fn load(&self, keys: Option<&[String]>) -> Result<Loaded, AwsFailure> {
        match self {
            Self::None(s) => s.load(keys).await,
            Self::Some(s) => s.load(keys).await,
        }
    }
    async fn claim(&self, record: &Record, previous: Option<&Record>) -> Result<bool, AwsFailure> {
        match self {
            Self::None(s) => s.claim(record, previous).await,
            Self::Some(s) => s.claim(record, previous).await,
        }
    }
    async fn release(&self, claimed: &Record, previous: Option<&Record>) -> Result<(), AwsFailure> {
        match self {
            Self::None(s) => s.release(claimed, previous).await,
            Self::Some(s) => s.release(claimed, previous).await,
        }
    }
    async fn resolve(&self, record: &Record, tombstone: &Record) -> Result<bool, AwsFailure> {
        match self {
            Self::None(s) => s.resolve(record, tombstone).await,
            Self::Some(s) => s.resolve(record, tombstone).await,
        }
    }
    async fn discard(&self, key: &str) -> Result<(), AwsFailure> {
        match self {
            Self::None(s) => s.discard(key).await,
            Self::Some(s) => s.discard(key).await,
        }
    }
}
