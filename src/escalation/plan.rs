//! The notice plan, pure: given the conditions an invocation sees and the records
//! the state store holds, which conditions are claimed at which tiers (with the
//! record each claim writes), which stay quiet and why, which stored conditions are
//! resolved or forgotten, and which notices go to which topic. `handler/notices.rs`
//! carries it out against the state store and SNS.

use super::{Condition, Decision, Escalation, Record, decide, forget_after, never_resolves, tombstone_grace};
use crate::domain::TopicArn;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// What the plan is made from.
pub struct Inputs<'a> {
    /// Conditions still open after the repair rounds.
    pub open: &'a [Condition],
    /// Conditions as first seen, before any repair of this invocation.
    pub initial: &'a [Condition],
    /// The state store's records (live ones and tombstones), by key.
    pub records: &'a BTreeMap<String, Record>,
    pub escalation: &'a Escalation,
    /// The state store was readable: claims deduplicate, resolutions are possible.
    pub deduplicated: bool,
    /// The topics of a condition's first tier, by key, when routing sends it elsewhere
    /// than the first tier's topic (the team that owns it).
    pub routes: &'a BTreeMap<String, Vec<TopicArn>>,
    pub now: DateTime<Utc>,
}

/// One condition's part in the plan.
pub struct Entry<'a> {
    pub condition: &'a Condition,
    pub decision: Decision,
    pub due: Due<'a>,
}

/// What is due for one condition.
pub enum Due<'a> {
    /// A notice, once this claim is won.
    Claim(Claim<'a>),
    /// Nothing new: why.
    Quiet(String),
}

impl Entry<'_> {
    pub fn claim(&self) -> Option<&Claim<'_>> {
        match &self.due {
            Due::Claim(claim) => Some(claim),
            Due::Quiet(_) => None,
        }
    }
}

/// A claim to make before notifying: `record` replaces `previous` in the store.
pub struct Claim<'a> {
    pub record: Record,
    pub previous: Option<&'a Record>,
    /// Still open; false when found and repaired in this invocation (its claim is
    /// kept when a publish fails, so that the retry resolves it aloud).
    pub open: bool,
    /// What each tier notified gets, in tier order.
    pub sends: Vec<Send>,
}

/// One tier of a claim: its topics and the line on where the escalation stands.
pub struct Send {
    pub tier: usize,
    pub topics: Vec<TopicArn>,
    pub line: String,
}

/// What happens to a stored condition that is no longer open.
#[derive(Debug, PartialEq)]
pub enum Settle<'a> {
    /// Cleared: becomes a tombstone, and a RESOLVED notice goes to every topic it reached.
    Resolve(&'a Record),
    /// Never clears by itself and is old: forgotten quietly.
    Forget(&'a str),
}

impl<'a> Inputs<'a> {
    fn live(&self, key: &str) -> Option<&'a Record> {
        self.records.get(key).filter(|r| r.resolved_at.is_none())
    }

    fn tombstone(&self, key: &str) -> Option<&'a Record> {
        self.records.get(key).filter(|r| r.resolved_at.is_some())
    }

    fn open_keys(&self) -> BTreeSet<&'a str> {
        self.open.iter().map(|c| c.key.as_str()).collect()
    }

    /// The topics tier `tier` of `c` goes to: its route at the first tier, else the tier's topic.
    fn topics(&self, c: &Condition, tier: usize) -> Vec<TopicArn> {
        match self.routes.get(&c.key) {
            Some(route) if tier == 0 && !route.is_empty() => route.clone(),
            _ => vec![self.escalation.tiers[tier].topic.clone()],
        }
    }
}

/// The open conditions, then those found and repaired within this invocation and never
/// notified (claimed at tier 0 like new ones, so that concurrent invocations report the
/// repair once), each with what is due. A repair another invocation reported moments ago
/// (its tombstone is fresh) is left out.
pub fn entries<'a>(inputs: &Inputs<'a>) -> Vec<Entry<'a>> {
    let open_keys = inputs.open_keys();
    let fixed = inputs.initial.iter().filter(|c| !open_keys.contains(c.key.as_str()) && inputs.live(&c.key).is_none());
    let mut out = Vec::new();
    for c in inputs.open.iter().chain(fixed) {
        let repaired = !open_keys.contains(c.key.as_str());
        let fresh_tombstone =
            inputs.tombstone(&c.key).and_then(|t| t.resolved_at).is_some_and(|at| inputs.now - at < tombstone_grace());
        if repaired && fresh_tombstone {
            continue;
        }
        out.push(entry(inputs, c, repaired));
    }
    out
}

fn entry<'a>(inputs: &Inputs<'a>, c: &'a Condition, repaired: bool) -> Entry<'a> {
    let esc = inputs.escalation;
    let previous = inputs.live(&c.key);
    let mut d = decide(c, previous, esc, inputs.now);
    if !inputs.deduplicated || repaired {
        // Without state every sweep would look like a first sight: stay at tier 0
        // (visible, not paging every few minutes) until the store is back.
        d.tiers.truncate(1);
    }
    if d.tiers.is_empty() {
        let last = previous.map(|p| format!(" (tier {} at {})", p.tier, p.last_notified)).unwrap_or_default();
        return Entry {
            condition: c,
            decision: d,
            due: Due::Quiet(format!("already notified{last}; nothing new is due")),
        };
    }
    let sends: Vec<Send> = d
        .tiers
        .iter()
        .map(|t| Send { tier: *t, topics: inputs.topics(c, *t), line: line(inputs, c, &d, *t, repaired) })
        .collect();
    let mut topics: Vec<String> = previous.map(|p| p.topics.clone()).unwrap_or_default();
    for topic in sends.iter().flat_map(|s| &s.topics) {
        if !topics.iter().any(|t| t == topic.as_str()) {
            topics.push(topic.as_str().to_owned());
        }
    }
    let record = Record {
        key: c.key.clone(),
        first_seen: d.first_seen,
        tier: d.tiers.iter().copied().max().unwrap_or(0),
        last_notified: inputs.now,
        topics,
        summary: c.summary(),
        resolved_at: None,
    };
    // A new episode replaces the tombstone of an earlier one.
    let previous = previous.or(inputs.tombstone(&c.key));
    let claim = Claim { record, previous, open: !repaired, sends };
    Entry { condition: c, decision: d, due: Due::Claim(claim) }
}

/// Where a condition's escalation stands, in words: which step this notice is, on
/// which topic, and what follows if it stays open.
fn line(inputs: &Inputs<'_>, c: &Condition, d: &Decision, tier: usize, repaired: bool) -> String {
    let esc = inputs.escalation;
    let name = |t: usize| {
        let topics = inputs.topics(c, t);
        let names: Vec<&str> = topics.iter().map(TopicArn::name).collect();
        format!("topic{} {}", if names.len() > 1 { "s" } else { "" }, names.join(" and "))
    };
    let age = d.age.num_minutes();
    let open = format!("open {}h{:02}m", age / 60, age % 60);
    let next = if c.one_shot() {
        "; told once, not escalated".to_owned()
    } else if let Some(following) = esc.tiers.get(tier + 1) {
        let at = (c.escalates_from(d.first_seen) + following.after).max(inputs.now);
        format!("; if still open, {} at {}", name(tier + 1), at.format("%Y-%m-%d %H:%M UTC"))
    } else if let Some(every) = esc.repeat {
        format!("; repeated every {}h{:02}m while open", every.num_hours(), every.num_minutes() % 60)
    } else {
        "; the last step".to_owned()
    };
    let summary = c.summary();
    match (repaired, inputs.deduplicated, d.repeat) {
        (true, _, _) => format!("{summary}: repaired in this invocation, told once ({})", name(tier)),
        (_, false, _) => format!(
            "{summary}: told on {} only, and again each run: the state store is unavailable, so there is no deduplication or escalation",
            name(tier)
        ),
        (_, _, true) => format!("{summary}: reminder on {}, {open}{next}", name(tier)),
        _ if tier == 0 => format!("{summary}: first notice, on {}, {open}{next}", name(tier)),
        _ => format!(
            "{summary}: escalated to step {} of {} ({}) after {open}{next}",
            tier + 1,
            esc.tiers.len(),
            name(tier)
        ),
    }
}

/// The stored conditions that are gone, with what becomes of each. Nothing is resolved
/// without the state store or after a sweep that could not read everything (it cannot
/// tell a cleared problem from an unread one); conditions that never clear are forgotten
/// once old.
pub fn settle<'a>(inputs: &Inputs<'a>, read_everything: bool) -> Vec<Settle<'a>> {
    let open_keys = inputs.open_keys();
    let mut out = Vec::new();
    for (key, record) in inputs.records {
        if open_keys.contains(key.as_str()) || !inputs.deduplicated || record.resolved_at.is_some() {
            continue;
        }
        if never_resolves(key) {
            if inputs.now - record.last_notified > forget_after() {
                out.push(Settle::Forget(key.as_str()));
            }
        } else if read_everything {
            out.push(Settle::Resolve(record));
        }
    }
    out
}

/// A notice to send: the tier it is for and the topic it goes to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Destination {
    pub tier: usize,
    pub topic: TopicArn,
}

/// The conditions due at each destination with their escalation lines, from the claims won.
pub fn by_destination<'a>(
    won: &[(&'a Condition, &'a Claim<'a>)],
) -> BTreeMap<Destination, Vec<(&'a Condition, &'a str)>> {
    let mut due: BTreeMap<Destination, Vec<(&Condition, &str)>> = BTreeMap::new();
    for (c, claim) in won {
        for send in &claim.sends {
            for topic in &send.topics {
                let at = Destination { tier: send.tier, topic: topic.clone() };
                due.entry(at).or_default().push((*c, send.line.as_str()));
            }
        }
    }
    due
}

/// The resolved records by topic: one RESOLVED notice per topic they reached.
pub fn by_topic<'a>(resolved: &[&'a Record]) -> BTreeMap<&'a str, Vec<&'a Record>> {
    let mut out: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in resolved {
        for topic in &r.topics {
            out.entry(topic.as_str()).or_default().push(*r);
        }
    }
    out
}
