//! The notification phase of an invocation: open conditions → escalation
//! decisions → claims in the state store → one notice per tier topic with
//! something due (tier 0 also carries what the guard did) → resolution notices for
//! conditions that are gone. A claim is made before its notice is published and
//! released again if the publish fails, so a Lambda retry notifies it again.

use super::Guard;
use crate::actions::{Actuator, Outcome};
use crate::domain::Snapshot;
use crate::error::HandlerError;
use crate::escalation::{self, Condition, ConditionKind, Record, key_of};
use crate::findings::Finding;
use crate::inventory::Inventory;
use crate::notify::{self, Notice, NoticeInput, Notifier};
use crate::policy::Skip;
use crate::report::{ConditionReport, NotificationReport, Report};
use crate::state::{Loaded, StateStore};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// What the notification phase needs from the rest of the invocation.
pub(super) struct Observed<'a> {
    pub visible: &'a [&'a Finding],
    pub remaining: &'a [&'a Finding],
    pub outcomes: &'a [Outcome],
    pub pending: &'a [Skip],
    /// The last snapshot, to know which stored conditions this invocation could see.
    pub snapshot: &'a Snapshot,
    pub sweep: bool,
    pub dry_run: bool,
    pub account: Option<&'a str>,
    pub trigger: &'a str,
    /// Why the rounds ended early, when they did: said in the notice.
    pub cut_short: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// Keys of every condition this snapshot could show, and of the conditions seen (for a targeted invocation).
fn keys_in_view(snapshot: &Snapshot, seen: &[&Condition]) -> Vec<String> {
    let groups = snapshot.groups.keys().flat_map(|g| {
        [ConditionKind::StrandedGroup, ConditionKind::SuspendedGroup, ConditionKind::StalledRecovery]
            .map(|k| key_of(k, g.as_str()))
    });
    let instances = snapshot.instances.keys().chain(&snapshot.gone_instances).flat_map(|i| {
        [ConditionKind::StoppedStandalone, ConditionKind::Retirement, ConditionKind::Unrecoverable]
            .map(|k| key_of(k, i.as_str()))
    });
    groups.chain(instances).chain(seen.iter().map(|c| c.key.clone())).collect::<BTreeSet<_>>().into_iter().collect()
}

impl<I: Inventory, A: Actuator, N: Notifier, S: StateStore> Guard<I, A, N, S> {
    pub(super) async fn send_notices(&self, seen: &Observed<'_>, report: &mut Report) -> Result<(), HandlerError> {
        let esc = &self.config.escalation;
        let open: Vec<Condition> = escalation::conditions(seen.remaining);
        let initial = escalation::conditions(seen.visible);
        let view = (!seen.sweep).then(|| keys_in_view(seen.snapshot, &open.iter().chain(&initial).collect::<Vec<_>>()));
        let loaded = match self.state.load(view.as_deref()).await {
            Ok(l) => l,
            Err(e) => {
                // Never silent: without state, notify what is due as if first seen.
                tracing::error!(error = %e, "state store unreadable: notices are not deduplicated");
                report.deduplicated = false;
                Loaded::default()
            }
        };
        for key in &loaded.corrupt {
            if let Err(e) = self.state.discard(key).await {
                tracing::warn!(key = %key, error = %e, "could not discard an unreadable state record");
            }
        }

        // Claim what is due, condition by condition.
        // Conditions found and repaired within this invocation and never notified are
        // claimed at tier 0 like new ones, so that concurrent invocations report the repair
        // once; their record stays until a later invocation sends the RESOLVED notice.
        let open_keys: BTreeSet<&str> = open.iter().map(|c| c.key.as_str()).collect();
        let live = |key: &str| loaded.records.get(key).filter(|r| r.resolved_at.is_none());
        let tombstone = |key: &str| loaded.records.get(key).filter(|r| r.resolved_at.is_some());
        let fixed: Vec<&Condition> =
            initial.iter().filter(|c| !open_keys.contains(c.key.as_str()) && live(&c.key).is_none()).collect();
        let mut due: BTreeMap<usize, Vec<(&Condition, String)>> = BTreeMap::new();
        // (claimed, what it replaced, still open): a repaired condition's claim is kept
        // when a publish fails, so that the retry, seeing it repaired, resolves it aloud.
        let mut claims: Vec<(Record, Option<Record>, bool)> = Vec::new();
        for c in open.iter().chain(fixed.iter().copied()) {
            let repaired = !open_keys.contains(c.key.as_str());
            let previous = live(&c.key);
            // A repair another invocation reported moments ago (its tombstone is fresh).
            if repaired
                && tombstone(&c.key)
                    .and_then(|t| t.resolved_at)
                    .is_some_and(|at| seen.now - at < escalation::tombstone_grace())
            {
                continue;
            }
            let mut d = escalation::decide(c, previous, esc, seen.now);
            if !report.deduplicated || repaired {
                // Without state every sweep would look like a first sight: stay at tier 0
                // (visible, not paging every few minutes) until the store is back.
                d.tiers.truncate(1);
            }
            let mut entry = ConditionReport {
                key: c.key.clone(),
                summary: c.summary(),
                first_seen: d.first_seen,
                age_seconds: d.age.num_seconds(),
                notified_tiers: vec![],
                quiet: None,
            };
            if d.tiers.is_empty() {
                let last = previous.map(|p| format!(" (tier {} at {})", p.tier, p.last_notified)).unwrap_or_default();
                entry.quiet = Some(format!("already notified{last}; nothing new is due"));
                report.conditions.push(entry);
                continue;
            }
            let mut topics: Vec<String> = previous.map(|p| p.topics.clone()).unwrap_or_default();
            for t in &d.tiers {
                let topic = esc.tiers[*t].topic.as_str().to_owned();
                if !topics.contains(&topic) {
                    topics.push(topic);
                }
            }
            let record = Record {
                key: c.key.clone(),
                first_seen: d.first_seen,
                tier: d.tiers.iter().copied().max().unwrap_or(0),
                last_notified: seen.now,
                topics,
                summary: c.summary(),
                resolved_at: None,
            };
            // A new episode replaces the tombstone of an earlier one.
            let previous = previous.or(tombstone(&c.key));
            let won = if report.deduplicated {
                self.state.claim(&record, previous).await.unwrap_or_else(|e| {
                    tracing::error!(key = %c.key, error = %e, "state claim failed: notifying anyway");
                    true
                })
            } else {
                true
            };
            if !won {
                entry.quiet = Some("another invocation notified it first".into());
                report.conditions.push(entry);
                continue;
            }
            claims.push((record, previous.cloned(), !repaired));
            let age = d.age.num_minutes();
            for t in &d.tiers {
                let why = match (repaired, d.repeat, report.deduplicated) {
                    (true, _, _) => "repaired by the guard in this invocation",
                    (_, _, false) => "state store unavailable: tier 0 only, without deduplication",
                    (_, true, _) => "repeated at the last tier",
                    _ => "due",
                };
                let line = format!(
                    "{}: open {}h{:02}m since {} -> tier {} of {} ({why})",
                    c.summary(),
                    age / 60,
                    age % 60,
                    d.first_seen.format("%Y-%m-%d %H:%M UTC"),
                    t,
                    esc.tiers.len() - 1,
                );
                due.entry(*t).or_default().push((c, line));
            }
            entry.notified_tiers = d.tiers.clone();
            report.conditions.push(entry);
        }

        // Conditions seen before that are gone: one resolution notice per topic notified.
        let mut recovered: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
        for (key, record) in &loaded.records {
            if open_keys.contains(key.as_str()) || !report.deduplicated || record.resolved_at.is_some() {
                continue;
            }
            if escalation::never_resolves(key) {
                // Nothing the guard sees clears it: forget it quietly once it is old.
                if seen.now - record.last_notified > escalation::forget_after()
                    && let Err(e) = self.state.discard(key).await
                {
                    tracing::warn!(key = %key, error = %e, "could not forget an old announcement");
                }
                continue;
            }
            // A sweep that could not read everything cannot tell a cleared problem from an unread one.
            if !seen.snapshot.unread.is_empty() {
                continue;
            }
            match self.state.resolve(record, &record.resolved(seen.now)).await {
                Ok(true) => {
                    report.resolved.push(key.clone());
                    for topic in &record.topics {
                        recovered.entry(topic.as_str()).or_default().push(record);
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(key = %key, error = %e, "could not clear a resolved condition"),
            }
        }
        // What the guard did goes with the tier-0 notice of a claim it won, or with the
        // RESOLVED notice of a condition it cleared; a failed action is always reported.
        let failed = seen.outcomes.iter().any(|o| o.is_failed());
        if failed || seen.cut_short.is_some() {
            due.entry(0).or_default();
        }
        // After a failed RESOLVED publish the records come back to life, so a retry resolves again.
        let restore = |records: Vec<Record>| async move {
            for r in &records {
                let _ = self.state.claim(r, Some(&r.resolved(seen.now))).await;
            }
        };
        let resolved_records: Vec<Record> = recovered.values().flatten().map(|r| (*r).clone()).collect();

        let mut outcomes_told = false;
        for (tier, items) in &due {
            let mut findings: Vec<&Finding> = items.iter().flat_map(|(c, _)| &c.findings).collect();
            if findings.is_empty() {
                // Only a failure to report: say what it was about.
                findings = seen.visible.to_vec();
            }
            let lines: Vec<String> = items.iter().map(|(_, l)| l.clone()).collect();
            let outcomes: &[Outcome] = if *tier == 0 { seen.outcomes } else { &[] };
            outcomes_told |= !outcomes.is_empty();
            let notice = notify::render(&NoticeInput {
                findings: &findings,
                outcomes,
                pending: seen.pending,
                remaining: seen.remaining,
                dry_run: seen.dry_run,
                region: &self.region,
                account: seen.account,
                environment: &self.config.environment,
                trigger: seen.trigger,
                cut_short: seen.cut_short,
                now: seen.now,
                tier: *tier,
                escalation: &lines,
            });
            let topic = &esc.tiers[*tier].topic;
            match self.publish(topic, &notice, "problem", *tier).await {
                Ok(sent) => report.notifications.push(sent),
                Err(e) => {
                    for (claimed, previous, _) in claims.iter().filter(|(_, _, open)| *open) {
                        if let Err(err) = self.state.release(claimed, previous.as_ref()).await {
                            tracing::error!(key = %claimed.key, error = %err, "could not release a claim");
                        }
                    }
                    restore(resolved_records).await;
                    return Err(e);
                }
            }
        }

        for (topic, records) in recovered {
            let Some(arn) = crate::config::TopicArn::parse(topic) else { continue };
            let tier = esc.tiers.iter().position(|t| t.topic.as_str() == topic).unwrap_or(0);
            let done: &[Outcome] = if tier == 0 && !outcomes_told { seen.outcomes } else { &[] };
            let notice = notify::render_recovered(
                &records,
                done,
                tier,
                &self.region,
                seen.account,
                &self.config.environment,
                seen.now,
            );
            match self.publish(&arn, &notice, "recovered", tier).await {
                Ok(sent) => report.notifications.push(sent),
                Err(e) => {
                    // Put the records back so that the retry announces the recovery again.
                    restore(records.iter().map(|r| (*r).clone()).collect()).await;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    pub(super) async fn publish(
        &self,
        topic: &crate::config::TopicArn,
        notice: &Notice,
        kind: &'static str,
        tier: usize,
    ) -> Result<NotificationReport, HandlerError> {
        let message_id = self.notifier.publish(topic, notice).await.map_err(HandlerError::Notify)?;
        tracing::info!(%message_id, topic = %topic.as_str(), tier, subject = %notice.subject, "notice published");
        Ok(NotificationReport {
            topic: topic.as_str().to_owned(),
            notice: kind,
            tier,
            subject: notice.subject.clone(),
            severity: notice.severity,
            message_id,
        })
    }
}
