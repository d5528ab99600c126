//! The notification phase of an invocation: open conditions → escalation
//! decisions → claims in the state store → one notice per tier topic with
//! something due (tier 0 also carries what the guard did) → resolution notices for
//! conditions that are gone. A claim is made before its notice is published and
//! released again if the publish fails, so a Lambda retry notifies it again.

use super::Guard;
use crate::actions::{Actuator, Outcome};
use crate::domain::Snapshot;
use crate::error::HandlerError;
use crate::escalation::{self, Condition, ConditionKind, Record, key_of, plan};
use crate::findings::Finding;
use crate::inventory::Inventory;
use crate::notify::{self, Notice, NoticeInput, Notifier};
use crate::policy::Skip;
use crate::report::{ConditionReport, NotificationReport, Report};
use crate::state::{Loaded, StateStore};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

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
    /// The plan made from the conditions seen and the state store, carried out: claims,
    /// resolutions, the problem notices, then the RESOLVED notices.
    pub(super) async fn send_notices(&self, seen: &Observed<'_>, report: &mut Report) -> Result<(), HandlerError> {
        let open: Vec<Condition> = escalation::conditions(seen.remaining);
        let initial = escalation::conditions(seen.visible);
        let loaded = self.load_state(seen, &open.iter().chain(&initial).collect::<Vec<_>>(), report).await;
        let inputs = plan::Inputs {
            open: &open,
            initial: &initial,
            records: &loaded.records,
            escalation: &self.config.escalation,
            deduplicated: report.deduplicated,
            now: seen.now,
        };
        let entries = plan::entries(&inputs);
        let won = self.claim(&entries, report).await;
        let resolved = self.settle(&plan::settle(&inputs, seen.snapshot.unread.is_empty()), seen.now, report).await;
        let outcomes_told = self.publish_problems(seen, &won, &resolved, report).await?;
        self.publish_resolutions(seen, &resolved, outcomes_told, report).await
    }

    /// The stored records of the conditions in view (all of them for a sweep); unreadable
    /// items are discarded. An unreadable store is never silent: without it, what is due is
    /// notified as if first seen (`report.deduplicated` false).
    async fn load_state(&self, seen: &Observed<'_>, conditions: &[&Condition], report: &mut Report) -> Loaded {
        let view = (!seen.sweep).then(|| keys_in_view(seen.snapshot, conditions));
        let loaded = match self.state.load(view.as_deref()).await {
            Ok(l) => l,
            Err(e) => {
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
        loaded
    }

    /// One notice per tier with a claim won; tier 0 also carries what the guard did, and
    /// goes out for a failed action or a cut-short invocation even with nothing claimed.
    /// On a failed publish the open claims are released and the resolutions put back, so
    /// that Lambda's retry notifies again. Returns whether the guard's outcomes were told.
    async fn publish_problems(
        &self,
        seen: &Observed<'_>,
        won: &[(&Condition, &plan::Claim<'_>)],
        resolved: &[&Record],
        report: &mut Report,
    ) -> Result<bool, HandlerError> {
        let mut due = plan::by_tier(won);
        if seen.outcomes.iter().any(Outcome::is_failed) || seen.cut_short.is_some() {
            due.entry(0).or_default();
        }
        let mut outcomes_told = false;
        for (tier, items) in &due {
            let mut findings: Vec<&Finding> = items.iter().flat_map(|(c, _)| &c.findings).collect();
            if findings.is_empty() {
                // Only a failure to report: say what it was about.
                findings = seen.visible.to_vec();
            }
            let lines: Vec<String> = items.iter().map(|(_, l)| (*l).to_owned()).collect();
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
            let topic = &self.config.escalation.tiers[*tier].topic;
            match self.publish(topic, &notice, "problem", *tier, report).await {
                Ok(()) => {}
                Err(e) => {
                    // A repaired condition's claim is kept, so that the retry, seeing it
                    // repaired, resolves it aloud.
                    for (_, claim) in won.iter().filter(|(_, c)| c.open) {
                        if let Err(err) = self.state.release(&claim.record, claim.previous).await {
                            tracing::error!(key = %claim.record.key, error = %err, "could not release a claim");
                        }
                    }
                    self.restore(resolved, seen.now).await;
                    return Err(e);
                }
            }
        }
        Ok(outcomes_told)
    }

    /// One RESOLVED notice per topic the resolved conditions reached; the tier-0 one
    /// carries what the guard did when no problem notice did. A failed publish puts that
    /// topic's records back, so that the retry announces the recovery again.
    async fn publish_resolutions(
        &self,
        seen: &Observed<'_>,
        resolved: &[&Record],
        outcomes_told: bool,
        report: &mut Report,
    ) -> Result<(), HandlerError> {
        let tiers = &self.config.escalation.tiers;
        for (topic, records) in plan::by_topic(resolved) {
            let Some(arn) = crate::domain::TopicArn::parse(topic) else { continue };
            let tier = tiers.iter().position(|t| t.topic.as_str() == topic).unwrap_or(0);
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
            match self.publish(&arn, &notice, "recovered", tier, report).await {
                Ok(()) => {}
                Err(e) => {
                    self.restore(&records, seen.now).await;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Brings resolved records back to life (best effort), so that a retry resolves them again.
    async fn restore(&self, records: &[&Record], now: DateTime<Utc>) {
        for r in records {
            let _ = self.state.claim(r, Some(&r.resolved(now))).await;
        }
    }

    /// Makes the plan's claims (each before its notice), reports every condition, and
    /// returns the claims won. Without the state store every claim counts as won.
    async fn claim<'e>(
        &self,
        entries: &'e [plan::Entry<'e>],
        report: &mut Report,
    ) -> Vec<(&'e Condition, &'e plan::Claim<'e>)> {
        let mut won = Vec::new();
        for e in entries {
            let mut entry = ConditionReport {
                key: e.condition.key.clone(),
                summary: e.condition.summary(),
                first_seen: e.decision.first_seen,
                age_seconds: e.decision.age.num_seconds(),
                notified_tiers: vec![],
                quiet: None,
            };
            match &e.due {
                plan::Due::Quiet(why) => entry.quiet = Some(why.clone()),
                plan::Due::Claim(claim) => {
                    let ours = !report.deduplicated
                        || self.state.claim(&claim.record, claim.previous).await.unwrap_or_else(|err| {
                            tracing::error!(key = %claim.record.key, error = %err, "state claim failed: notifying anyway");
                            true
                        });
                    if ours {
                        entry.notified_tiers = e.decision.tiers.clone();
                        won.push((e.condition, claim));
                    } else {
                        entry.quiet = Some("another invocation notified it first".into());
                    }
                }
            }
            report.conditions.push(entry);
        }
        won
    }

    /// Carries out what the plan says of conditions that are gone; returns the records resolved.
    async fn settle<'r>(
        &self,
        settle: &[plan::Settle<'r>],
        now: DateTime<Utc>,
        report: &mut Report,
    ) -> Vec<&'r Record> {
        let mut resolved = Vec::new();
        for s in settle {
            match s {
                plan::Settle::Forget(key) => {
                    if let Err(e) = self.state.discard(key).await {
                        tracing::warn!(key = %key, error = %e, "could not forget an old announcement");
                    }
                }
                plan::Settle::Resolve(record) => match self.state.resolve(record, &record.resolved(now)).await {
                    Ok(true) => {
                        report.resolved.push(record.key.clone());
                        resolved.push(*record);
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(key = %record.key, error = %e, "could not clear a resolved condition"),
                },
            }
        }
        resolved
    }

    /// Publishes `notice` to `topic` and, when chat has a topic of its own, to that one
    /// too (every problem notice, so reminders reach the thread; a resolution once).
    pub(super) async fn publish(
        &self,
        topic: &crate::domain::TopicArn,
        notice: &Notice,
        kind: &'static str,
        tier: usize,
        report: &mut Report,
    ) -> Result<(), HandlerError> {
        report.notifications.push(self.publish_one(topic, notice, kind, tier).await?);
        if let Some(chat) = &self.config.delivery.chat_topic
            && chat != topic
            && (kind != "recovered" || tier == 0)
        {
            report.notifications.push(self.publish_one(chat, notice, kind, tier).await?);
        }
        Ok(())
    }

    async fn publish_one(
        &self,
        topic: &crate::domain::TopicArn,
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
