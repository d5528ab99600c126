//! The notification phase of an invocation: open conditions → routes (the team that
//! owns each) → escalation decisions → claims in the state store → one notice per
//! tier and topic with something due (a first-tier notice also carries what the guard
//! did to what it is about) → resolution notices for conditions that are gone. A claim
//! is made before its notice is published and released again if the publish fails,
//! so a Lambda retry notifies it again.

use super::Guard;
use crate::actions::{Actuator, Outcome};
use crate::domain::{Snapshot, TopicArn};
use crate::error::{FailureKind, HandlerError};
use crate::escalation::{self, Condition, ConditionKind, Record, key_of, plan};
use crate::findings::Finding;
use crate::inventory::Inventory;
use crate::notify::route::Routes;
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

/// Where this invocation's notices go: the route of every condition in view, and the
/// first-tier topics of each of the guard's outcomes (those of what it changed).
struct Routed<'a> {
    routes: Routes<'a>,
    conditions: Vec<&'a Condition>,
    outcome_topics: Vec<Vec<TopicArn>>,
}

impl<'a> Routed<'a> {
    /// The conditions in view that any of these outcomes changed something of, each
    /// once (as it is now, when it is still open).
    fn concerned(&self, outcomes: &[usize], all: &[Outcome]) -> Vec<&'a Condition> {
        let names: Vec<String> = outcomes.iter().flat_map(|i| names_of(&all[*i])).collect();
        let mut keys = BTreeSet::new();
        self.conditions
            .iter()
            .copied()
            .filter(|c| names.iter().any(|n| c.concerns(n)) && keys.insert(c.key.as_str()))
            .collect()
    }

    /// The outcomes whose first-tier topics include `topic` and are not in `except`.
    fn outcomes_for(&self, topic: &TopicArn, except: &BTreeSet<usize>) -> Vec<usize> {
        let mine = |(i, t): (usize, &Vec<TopicArn>)| (t.contains(topic) && !except.contains(&i)).then_some(i);
        self.outcome_topics.iter().enumerate().filter_map(mine).collect()
    }
}

/// The group and the resource an outcome changed.
fn names_of(o: &Outcome) -> Vec<String> {
    std::iter::once(o.action.target()).chain(o.action.group().map(|g| g.to_string())).collect()
}

/// One problem notice to send: where, about which conditions, with which outcomes (by index).
struct Outgoing<'a> {
    at: plan::Destination,
    conditions: Vec<&'a Condition>,
    lines: Vec<String>,
    outcomes: Vec<usize>,
}

/// The problem notices due (pure): the claims won by destination, and at each first-tier
/// destination the outcomes routed to it. A failed step reaches its topics, and a
/// cut-short invocation the default topic, even with nothing claimed.
fn outgoing<'a>(
    won: &[(&'a Condition, &'a plan::Claim<'a>)],
    routed: &Routed<'_>,
    outcomes: &[Outcome],
    cut_short: bool,
) -> Vec<Outgoing<'a>> {
    let mut due = plan::by_destination(won);
    for (o, topics) in outcomes.iter().zip(&routed.outcome_topics) {
        if o.is_failed() {
            for topic in topics {
                due.entry(plan::Destination { tier: 0, topic: topic.clone() }).or_default();
            }
        }
    }
    if cut_short && !due.keys().any(|d| d.tier == 0) {
        due.entry(plan::Destination { tier: 0, topic: routed.routes.default.clone() }).or_default();
    }
    let none = BTreeSet::new();
    due.into_iter()
        .map(|(at, items)| Outgoing {
            outcomes: if at.tier == 0 { routed.outcomes_for(&at.topic, &none) } else { vec![] },
            conditions: items.iter().map(|(c, _)| *c).collect(),
            lines: items.iter().map(|(_, l)| (*l).to_owned()).collect(),
            at,
        })
        .collect()
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
        let all: Vec<&Condition> = open.iter().chain(&initial).collect();
        let loaded = self.load_state(seen, &all, report).await;
        let default = &self.config.escalation.tiers[0].topic;
        let routes = Routes::new(&self.config.routing, default, &self.region, all.iter().copied(), seen.snapshot);
        let outcome_topics = seen
            .outcomes
            .iter()
            .map(|o| routes.of_names(&all, &names_of(o).iter().map(String::as_str).collect::<Vec<_>>()))
            .collect();
        let first_topics = routes.first_topics();
        let routed = Routed { routes, conditions: all, outcome_topics };
        let inputs = plan::Inputs {
            open: &open,
            initial: &initial,
            records: &loaded.records,
            escalation: &self.config.escalation,
            deduplicated: report.deduplicated,
            routes: &first_topics,
            now: seen.now,
        };
        let entries = plan::entries(&inputs);
        let won = self.claim(&entries, report).await;
        let resolved = self.settle(&plan::settle(&inputs, seen.snapshot.unread.is_empty()), seen.now, report).await;
        let told = self.publish_problems(seen, &routed, &won, &resolved, report).await?;
        self.publish_resolutions(seen, &routed, &resolved, &told, report).await
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

    /// One notice per tier and topic with a claim won; a first-tier one also carries what
    /// the guard did to what it is about. On a failed publish the open claims are released
    /// and the resolutions put back, so that Lambda's retry notifies again. Returns the
    /// indexes of the outcomes told.
    async fn publish_problems(
        &self,
        seen: &Observed<'_>,
        routed: &Routed<'_>,
        won: &[(&Condition, &plan::Claim<'_>)],
        resolved: &[&Record],
        report: &mut Report,
    ) -> Result<BTreeSet<usize>, HandlerError> {
        let mut told = BTreeSet::new();
        for out in outgoing(won, routed, seen.outcomes, seen.cut_short.is_some()) {
            let conditions =
                if out.conditions.is_empty() { routed.concerned(&out.outcomes, seen.outcomes) } else { out.conditions };
            let mut findings: Vec<&Finding> = conditions.iter().flat_map(|c| &c.findings).collect();
            if findings.is_empty() {
                // Only a failure to report: say what it was about.
                findings = seen.visible.to_vec();
            }
            let outcomes: Vec<Outcome> = out.outcomes.iter().map(|i| seen.outcomes[*i].clone()).collect();
            told.extend(&out.outcomes);
            let first = out.at.tier == 0;
            // A first-tier notice lists the steps not taken on what is routed to its topic.
            let pending: Vec<Skip> = seen
                .pending
                .iter()
                .filter(|s| !first || routed.routes.of_names(&routed.conditions, &[&s.target]).contains(&out.at.topic))
                .cloned()
                .collect();
            let warnings = if first { routed.routes.warnings(&conditions) } else { vec![] };
            let render = |extra: &[String]| {
                let warnings: Vec<String> = warnings.iter().chain(extra).cloned().collect();
                notify::render(&NoticeInput {
                    findings: &findings,
                    outcomes: &outcomes,
                    pending: &pending,
                    remaining: seen.remaining,
                    dry_run: seen.dry_run,
                    region: &self.region,
                    account: seen.account,
                    environment: &self.config.environment,
                    trigger: seen.trigger,
                    cut_short: seen.cut_short,
                    now: seen.now,
                    tier: out.at.tier,
                    escalation: &out.lines,
                    warnings: &warnings,
                })
            };
            if let Err(e) = self.publish_routed(&out.at.topic, render, "problem", out.at.tier, report).await {
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
        Ok(told)
    }

    /// One RESOLVED notice per topic the resolved conditions reached; a first-tier one
    /// carries what the guard did there that no problem notice told. A failed publish
    /// puts that topic's records back, so that the retry announces the recovery again.
    async fn publish_resolutions(
        &self,
        seen: &Observed<'_>,
        routed: &Routed<'_>,
        resolved: &[&Record],
        told: &BTreeSet<usize>,
        report: &mut Report,
    ) -> Result<(), HandlerError> {
        let tiers = &self.config.escalation.tiers;
        for (topic, records) in plan::by_topic(resolved) {
            let Some(arn) = TopicArn::parse(topic) else { continue };
            // A routed topic is a first-tier one.
            let tier = tiers.iter().position(|t| t.topic.as_str() == topic).unwrap_or(0);
            let done: Vec<Outcome> = if tier == 0 {
                routed.outcomes_for(&arn, told).into_iter().map(|i| seen.outcomes[i].clone()).collect()
            } else {
                vec![]
            };
            let render = |extra: &[String]| {
                notify::render_recovered(
                    &records,
                    &done,
                    extra,
                    tier,
                    &self.region,
                    seen.account,
                    &self.config.environment,
                    seen.now,
                )
            };
            if let Err(e) = self.publish_routed(&arn, render, "recovered", tier, report).await {
                self.restore(&records, seen.now).await;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Publishes the notice `render` makes to `topic`. When `topic` is a routed one (not
    /// an escalation tier's) that cannot take it for good (it does not exist, or the
    /// stack may not publish to it), the notice goes to the default topic instead, saying
    /// so: it still reaches a human. A transient failure is returned, for Lambda's retry.
    async fn publish_routed(
        &self,
        topic: &TopicArn,
        render: impl Fn(&[String]) -> Notice,
        kind: &'static str,
        tier: usize,
        report: &mut Report,
    ) -> Result<(), HandlerError> {
        let routed = !self.is_own_topic(topic);
        match self.publish(topic, &render(&[]), kind, tier, report).await {
            Err(HandlerError::Notify(e)) if routed && e.kind != FailureKind::Transient => {
                tracing::warn!(topic = %topic.as_str(), error = %e, "routed topic refused the notice: sent to the default topic");
                let warning = format!(
                    "This notice was for topic {}, which could not take it ({e}); it went to the default topic instead. Check the tag or TEAM_TOPICS entry that names it.",
                    topic.as_str()
                );
                let default = &self.config.escalation.tiers[0].topic;
                self.publish(default, &render(&[warning]), kind, tier, report).await
            }
            other => other,
        }
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

    /// Publishes `notice` to `topic` and, when chat has a topic of its own and `topic` is
    /// an escalation tier's, to that one too (every problem notice, so reminders reach the
    /// thread; a resolution once). A routed topic's notice is not copied: with
    /// `ROUTING_MODE=add` the default topic's copy says the same, and with `replace` the
    /// team's own topic is where its chat subscribes.
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
            && self.is_own_topic(topic)
            && (kind != "recovered" || tier == 0)
        {
            report.notifications.push(self.publish_one(chat, notice, kind, tier).await?);
        }
        Ok(())
    }

    /// Whether `topic` is one the stack was configured with (NOTIFY_TOPIC_ARN or a tier's),
    /// not one a tag routed to.
    fn is_own_topic(&self, topic: &TopicArn) -> bool {
        &self.config.topic == topic || self.config.escalation.tiers.iter().any(|t| &t.topic == topic)
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
