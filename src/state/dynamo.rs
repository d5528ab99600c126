//! `DynamoStateStore`: the state port over a DynamoDB table (partition key
//! `condition`, string; TTL attribute `expires_at`), read with BatchGetItem (100
//! keys a request) or Scan, written with PutItem and DeleteItem, each write
//! conditional on the record last read.

use super::{Loaded, StateStore};
use crate::error::{AwsFailure, FailureKind};
use crate::escalation::Record;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;

/// A record is forgotten 30 days after its last notice, even if never resolved.
const RETENTION_DAYS: i64 = 30;
const CONCURRENCY: usize = 8;
/// BatchGetItem reads at most 100 keys a request.
const BATCH: usize = 100;
/// Requests for the keys DynamoDB leaves unprocessed (under throttling it returns
/// them instead of failing), with a doubling pause from 50 ms, before the read fails.
const UNPROCESSED_ROUNDS: u32 = 5;

type Item = HashMap<String, AttributeValue>;

/// Reads and writes condition records with the client built once per cold start.
#[derive(Clone, Debug)]
pub struct DynamoStateStore {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn to_item(r: &Record) -> Item {
    // A tombstone only needs to outlive the races it guards against.
    let expires = match r.resolved_at {
        Some(at) => at + Duration::days(1),
        None => r.last_notified + Duration::days(RETENTION_DAYS),
    }
    .timestamp();
    let mut item = HashMap::from([
        ("condition".to_owned(), s(&r.key)),
        ("first_seen".to_owned(), s(time(r.first_seen))),
        ("tier".to_owned(), AttributeValue::N(r.tier.to_string())),
        ("last_notified".to_owned(), s(time(r.last_notified))),
        ("topics".to_owned(), AttributeValue::L(r.topics.iter().map(s).collect())),
        ("summary".to_owned(), s(&r.summary)),
        ("expires_at".to_owned(), AttributeValue::N(expires.to_string())),
    ]);
    if let Some(at) = r.resolved_at {
        item.insert("resolved_at".to_owned(), s(time(at)));
    }
    item
}

/// `None` when the item is not a record this code wrote (missing or mistyped attributes).
pub fn from_item(item: &Item) -> Option<Record> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok());
    let when = |k: &str| text(k).and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc));
    Some(Record {
        key: text("condition")?.clone(),
        first_seen: when("first_seen")?,
        tier: item.get("tier")?.as_n().ok()?.parse().ok()?,
        last_notified: when("last_notified")?,
        topics: item.get("topics")?.as_l().ok()?.iter().map(|v| v.as_s().ok().cloned()).collect::<Option<Vec<_>>>()?,
        summary: text("summary").cloned().unwrap_or_default(),
        resolved_at: match item.get("resolved_at") {
            None => None,
            Some(_) => Some(when("resolved_at")?),
        },
    })
}

/// The condition "the stored item is still `previous`" (or absent): a live record
/// by its tier and last notice, a tombstone by its resolution time.
fn still(previous: Option<&Record>) -> (String, HashMap<String, String>, Item) {
    match previous {
        None => ("attribute_not_exists(#c)".into(), HashMap::from([("#c".into(), "condition".into())]), HashMap::new()),
        Some(Record { resolved_at: Some(at), .. }) => (
            "#r = :r".into(),
            HashMap::from([("#r".into(), "resolved_at".into())]),
            HashMap::from([(":r".into(), s(time(*at)))]),
        ),
        Some(p) => (
            "#t = :t AND #l = :l AND attribute_not_exists(#r)".into(),
            HashMap::from([
                ("#t".into(), "tier".into()),
                ("#l".into(), "last_notified".into()),
                ("#r".into(), "resolved_at".into()),
            ]),
            HashMap::from([
                (":t".into(), AttributeValue::N(p.tier.to_string())),
                (":l".into(), s(time(p.last_notified))),
            ]),
        ),
    }
}

/// Splits a conditional failure (someone else won) from a real one.
fn conditional<E>(operation: &'static str, r: Result<E, AwsFailure>) -> Result<bool, AwsFailure> {
    match r {
        Ok(_) => Ok(true),
        Err(e) if e.code.as_deref() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(AwsFailure { operation, ..e }),
    }
}

impl DynamoStateStore {
    fn key(&self, key: &str) -> Item {
        HashMap::from([("condition".to_owned(), s(key))])
    }

    /// Reads up to `BATCH` keys (strongly consistent), asking again for the keys
    /// DynamoDB leaves unprocessed, a bounded number of times.
    async fn batch_get(&self, keys: Vec<String>) -> Result<Vec<Item>, AwsFailure> {
        let failure =
            |message: String| AwsFailure { operation: "BatchGetItem", kind: FailureKind::Other, code: None, message };
        let mut pending: Vec<Item> = keys.iter().map(|k| self.key(k)).collect();
        let mut items = Vec::new();
        for round in 0..UNPROCESSED_ROUNDS {
            if round > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << (round - 1))).await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| failure(e.to_string()))?;
            let out = self
                .dynamodb
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| AwsFailure::from_sdk("BatchGetItem", &e))?;
            items.extend(out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default());
            pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
            if pending.is_empty() {
                return Ok(items);
            }
        }
        Err(AwsFailure {
            kind: FailureKind::Transient,
            ..failure(format!("{} key(s) still unprocessed after {UNPROCESSED_ROUNDS} requests", pending.len()))
        })
    }

    async fn put_if(&self, record: &Record, previous: Option<&Record>) -> Result<bool, AwsFailure> {
        let (expr, names, values) = still(previous);
        let r = self
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .condition_expression(expr)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("PutItem", &e));
        conditional("PutItem", r)
    }

    async fn delete_if(&self, record: &Record) -> Result<bool, AwsFailure> {
        let (expr, names, values) = still(Some(record));
        let r = self
            .dynamodb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.key(&record.key)))
            .condition_expression(expr)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("DeleteItem", &e));
        conditional("DeleteItem", r)
    }
}

impl StateStore for DynamoStateStore {
    async fn load(&self, keys: Option<&[String]>) -> Result<Loaded, AwsFailure> {
        let items: Vec<Item> = match keys {
            None => {
                let pages: Vec<_> = self
                    .dynamodb
                    .scan()
                    .table_name(&self.table)
                    .consistent_read(true)
                    .into_paginator()
                    .send()
                    .try_collect()
                    .await
                    .map_err(|e| AwsFailure::from_sdk("Scan", &e))?;
                pages.into_iter().flat_map(|p| p.items.unwrap_or_default()).collect()
            }
            Some(keys) => {
                // A key twice in one request is a ValidationException.
                let keys: Vec<String> =
                    keys.iter().collect::<std::collections::BTreeSet<_>>().into_iter().cloned().collect();
                let chunks: Vec<Vec<String>> = keys.chunks(BATCH).map(<[String]>::to_vec).collect();
                let found: Vec<Vec<Item>> =
                    futures::stream::iter(chunks.into_iter().map(|chunk| self.batch_get(chunk)))
                        .buffer_unordered(CONCURRENCY)
                        .try_collect()
                        .await?;
                found.into_iter().flatten().collect()
            }
        };
        let mut loaded = Loaded::default();
        for item in items {
            match from_item(&item) {
                Some(r) => {
                    loaded.records.insert(r.key.clone(), r);
                }
                None => {
                    let key = item.get("condition").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                    tracing::warn!(key = %key, "unreadable state record: treated as a new condition");
                    loaded.corrupt.push(key);
                }
            }
        }
        Ok(loaded)
    }

    async fn claim(&self, record: &Record, previous: Option<&Record>) -> Result<bool, AwsFailure> {
        self.put_if(record, previous).await
    }

    async fn release(&self, claimed: &Record, previous: Option<&Record>) -> Result<(), AwsFailure> {
        let undone = match previous {
            Some(p) => self.put_if(p, Some(claimed)).await?,
            None => self.delete_if(claimed).await?,
        };
        if !undone {
            tracing::warn!(key = %claimed.key, "claim changed by another invocation; not released");
        }
        Ok(())
    }

    async fn resolve(&self, record: &Record, tombstone: &Record) -> Result<bool, AwsFailure> {
        self.put_if(tombstone, Some(record)).await
    }

    async fn discard(&self, key: &str) -> Result<(), AwsFailure> {
        self.dynamodb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.key(key)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsFailure::from_sdk("DeleteItem", &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    fn record() -> Record {
        Record {
            key: "stranded:es-data".into(),
            first_seen: "2026-11-28T10:00:00Z".parse().unwrap(),
            tier: 1,
            last_notified: "2026-11-28T10:30:00Z".parse().unwrap(),
            topics: vec!["arn:aws:sns:us-east-1:123456789012:chat".into()],
            summary: "2 stranded".into(),
            resolved_at: None,
        }
    }

    #[test]
    fn records_round_trip_through_items() {
        assert_eq!(from_item(&to_item(&record())), Some(record()));
        let tombstone = record().resolved("2026-11-28T11:00:00Z".parse().unwrap());
        assert_eq!(from_item(&to_item(&tombstone)), Some(tombstone));
        assert!(to_item(&record()).contains_key("expires_at"));
    }

    #[test]
    fn unreadable_items_are_not_records() {
        let mut item = to_item(&record());
        item.insert("tier".into(), s("one"));
        assert_eq!(from_item(&item), None);
        let mut item = to_item(&record());
        item.remove("first_seen");
        assert_eq!(from_item(&item), None);
    }

    const TABLE: &str = "state";

    fn store(rule: &aws_smithy_mocks::Rule) -> DynamoStateStore {
        DynamoStateStore { dynamodb: mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [rule]), table: TABLE.into() }
    }

    fn requested(i: &BatchGetItemInput) -> Vec<String> {
        let keys = i.request_items().and_then(|r| r.get(TABLE)).map(|k| k.keys()).unwrap_or_default();
        keys.iter().filter_map(|k| k.get("condition")?.as_s().ok().cloned()).collect()
    }

    /// The stored items: a record for every even-numbered key.
    fn answer(keys: &[String], unprocessed: &[String]) -> BatchGetItemOutput {
        let found = keys
            .iter()
            .filter(|k| !unprocessed.contains(k) && k.trim_start_matches("k").parse::<u32>().unwrap() % 2 == 0);
        let items: Vec<Item> = found.map(|k| to_item(&Record { key: k.clone(), ..record() })).collect();
        let mut out = BatchGetItemOutput::builder().responses(TABLE, items);
        if !unprocessed.is_empty() {
            let left = KeysAndAttributes::builder()
                .set_keys(Some(unprocessed.iter().map(|k| HashMap::from([("condition".to_owned(), s(k))])).collect()));
            out = out.unprocessed_keys(TABLE, left.build().unwrap());
        }
        out.build()
    }

    #[tokio::test]
    async fn state_reads_are_batched_100_keys_a_request_and_unprocessed_keys_asked_again() {
        let calls = AtomicUsize::new(0);
        let rule = mock!(aws_sdk_dynamodb::Client::batch_get_item).then_compute_output(move |i| {
            let keys = requested(i);
            let unprocessed = if calls.fetch_add(1, SeqCst) == 0 { keys[keys.len() - 10..].to_vec() } else { vec![] };
            assert!(keys.len() <= BATCH && i.request_items().unwrap()[TABLE].consistent_read() == Some(true));
            answer(&keys, &unprocessed)
        });
        let mut keys: Vec<String> = (0..250).map(|n| format!("k{n}")).collect();
        keys.push("k0".into());
        let loaded = store(&rule).load(Some(&keys)).await.unwrap();
        assert_eq!(loaded.records.len(), 125, "every even key, the unprocessed ones included");
        assert!(loaded.records.contains_key("k248") && loaded.records.contains_key("k98"));
        assert_eq!(rule.num_calls(), 4, "250 distinct keys: 3 requests and one for the 10 left unprocessed");
    }

    #[tokio::test]
    async fn keys_left_unprocessed_on_every_request_fail_the_read_as_transient() {
        let rule = mock!(aws_sdk_dynamodb::Client::batch_get_item).then_compute_output(|i| {
            let keys = requested(i);
            answer(&keys, &keys)
        });
        let err = store(&rule).load(Some(&["k1".into(), "k2".into()])).await.unwrap_err();
        assert_eq!((err.operation, err.kind), ("BatchGetItem", FailureKind::Transient));
        assert!(err.message.contains("2 key(s) still unprocessed after 5 requests"), "{}", err.message);
        assert_eq!(rule.num_calls(), 5);
    }

    #[tokio::test]
    async fn no_keys_no_request() {
        let rule = mock!(aws_sdk_dynamodb::Client::batch_get_item).then_compute_output(|_| answer(&[], &[]));
        assert_eq!(store(&rule).load(Some(&[])).await.unwrap(), Loaded::default());
        assert_eq!(rule.num_calls(), 0);
    }

    #[test]
    fn a_conditional_check_failure_means_someone_else_won() {
        let lost = AwsFailure {
            operation: "x",
            kind: FailureKind::Other,
            code: Some("ConditionalCheckFailedException".into()),
            message: String::new(),
        };
        assert_eq!(conditional::<()>("PutItem", Err(lost)), Ok(false));
        assert_eq!(conditional("PutItem", Ok(())), Ok(true));
    }
}
