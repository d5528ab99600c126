//! `DynamoStateStore`: the state port over a DynamoDB table (partition key
//! `condition`, string; TTL attribute `expires_at`), with GetItem, Scan, PutItem
//! and DeleteItem, each write conditional on the record last read.

use super::{Loaded, StateStore};
use crate::error::AwsFailure;
use crate::escalation::Record;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;

/// A record is forgotten 30 days after its last notice, even if never resolved.
const RETENTION_DAYS: i64 = 30;
const CONCURRENCY: usize = 8;

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

    async fn get(&self, key: String) -> Result<Option<Item>, AwsFailure> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key(&key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("GetItem", &e))?;
        Ok(out.item)
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
                let found: Vec<Option<Item>> = futures::stream::iter(keys.iter().cloned().map(|k| self.get(k)))
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
    use crate::error::FailureKind;

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
