//! Configuration: one typed `Config` read once at start-up from environment
//! variables (through a lookup function, so tests never touch the process env)
//! and validated with messages that name the variable and the accepted values.

use crate::domain::TopicArn;
use crate::escalation::Escalation;
use crate::window::Windows;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// What the guard may do. Ordered: a tag may only choose a mode at or below the stack's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Only for the override tag: leave this group or instance alone entirely.
    Ignore,
    /// Report and notify, never change anything.
    Notify,
    /// Also start instances that were stopped (by AWS, unless configured otherwise).
    Restart,
    /// Also mark restarted members healthy and resume the processes the guard owns.
    Recover,
}

impl FromStr for Mode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ignore" => Ok(Self::Ignore),
            "notify" => Ok(Self::Notify),
            "restart" => Ok(Self::Restart),
            "recover" => Ok(Self::Recover),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ignore => "ignore",
            Self::Notify => "notify",
            Self::Restart => "restart",
            Self::Recover => "recover",
        })
    }
}

/// The Auto Scaling processes AWS knows (the deprecated RemoveFromLoadBalancerLowPriority is ignored).
pub const PROCESSES: [&str; 9] = [
    "Launch",
    "Terminate",
    "AddToLoadBalancer",
    "AlarmNotification",
    "AZRebalance",
    "HealthCheck",
    "InstanceRefresh",
    "ReplaceUnhealthy",
    "ScheduledActions",
];

/// The per-group/instance override tag.
pub const POLICY_TAG: &str = "retirement-guard:policy";

/// The per-group/instance tag naming the topics (space-separated ARNs) of the team that owns it.
pub const NOTIFY_TOPIC_TAG: &str = "retirement-guard:notify-topic";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration: {var} {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

/// The guard's effective configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    pub topic: TopicArn,
    pub mode: Mode,
    pub dry_run: bool,
    pub restart_user_stopped: bool,
    pub resume_user_suspended: bool,
    pub max_starts: usize,
    pub max_starts_per_group: usize,
    pub opt_in_tag: Option<String>,
    pub never_resume: BTreeSet<String>,
    /// Health event type codes to act on; empty means every EC2 scheduledChange code.
    pub health_event_codes: BTreeSet<String>,
    /// Bounded wait inside one invocation for started instances to pass status checks.
    pub wait_seconds: u64,
    pub poll_seconds: u64,
    /// A started member that has not passed its status checks this long after its start has stalled.
    pub stall_minutes: u64,
    pub environment: String,
    /// Escalation tiers; by default one tier, NOTIFY_TOPIC_ARN at once.
    pub escalation: Escalation,
    /// DynamoDB table for deduplication and escalation state; unset: no memory.
    pub state_table: Option<String>,
    /// SDK calls: attempts per call (standard retry mode), timeout per attempt and per call.
    pub sdk: SdkSettings,
    /// How notices are published.
    pub delivery: Delivery,
    /// Where a group's or instance's notices go besides (or instead of) NOTIFY_TOPIC_ARN.
    pub routing: Routing,
    /// Moving retiring instances before their deadline, in a maintenance window.
    pub proactive: Proactive,
}

/// The per-group tag that opts a group out of proactive moves (`false`).
pub const PROACTIVE_TAG: &str = "retirement-guard:proactive";
/// The per-group tag naming the CloudWatch alarm that says the application is healthy.
pub const HEALTH_ALARM_TAG: &str = "retirement-guard:health-alarm";

/// Proactive moves: a member with a scheduled retirement is stopped and started (moved
/// to healthy hardware) before its deadline, inside a maintenance window, one member of
/// a group at a time, each step gated on the application's health alarm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Proactive {
    /// `PROACTIVE_MOVES=true` (needs `POLICY=recover` and `MAINTENANCE_WINDOW`).
    pub enabled: bool,
    /// `MAINTENANCE_WINDOW`: when moves may start.
    pub windows: Option<Windows>,
    /// `HEALTH_ALARM`: the alarm of a group without the health-alarm tag.
    pub health_alarm: Option<String>,
    /// `HEALTH_SETTLE_MINUTES` (10): how long the alarm must have been OK.
    pub settle_minutes: u64,
    /// `PROACTIVE_MARGIN_HOURS` (24): a move starts at least this long before the deadline.
    pub margin_hours: u64,
}

/// Routing by ownership: a resource's `retirement-guard:notify-topic` tag, or its team
/// tag mapped through `TEAM_TOPICS`, names the topics its notices go to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Routing {
    /// `TEAM_TAG` (default `team`): the tag whose value names a team of `TEAM_TOPICS`.
    pub team_tag: String,
    /// `TEAM_TOPICS`: `team=topic-arn`, comma-separated; a team may be named more than once.
    pub teams: BTreeMap<String, Vec<TopicArn>>,
    /// `ROUTED_TOPIC_ARNS`: the topics beyond the stack's own that its IAM policy lets
    /// the guard publish to (ARNs, `*` and `?` as in IAM); a tag naming another falls back.
    pub allowed: Vec<String>,
    /// `ROUTING_MODE=replace`: a routed resource's notices go to its team's topics only;
    /// `add` (default): to the default topic as well.
    pub replace: bool,
}

impl Routing {
    /// Whether the stack's IAM policy lets the guard publish to `topic`, by `ROUTED_TOPIC_ARNS`.
    pub fn allows(&self, topic: &TopicArn) -> bool {
        self.allowed.iter().any(|pattern| wildmatch::WildMatch::new(pattern).matches(topic.as_str()))
    }

    fn parse(
        team_tag: Option<String>,
        teams: Option<String>,
        allowed: Option<String>,
        mode: Option<String>,
    ) -> Result<Self, ConfigError> {
        let err = |var: &'static str, problem: String| ConfigError { var, problem };
        let replace = match mode.as_deref() {
            None | Some("add") => false,
            Some("replace") => true,
            Some(other) => return Err(err("ROUTING_MODE", format!("is {other:?}; expected add or replace"))),
        };
        let allowed: Vec<String> = allowed
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = allowed.iter().find(|p| !p.starts_with("arn:aws") || p.split(':').count() != 6) {
            return Err(err("ROUTED_TOPIC_ARNS", format!("{bad:?} is not an SNS topic ARN or ARN pattern")));
        }
        let mut routing =
            Self { team_tag: team_tag.unwrap_or_else(|| "team".into()), teams: BTreeMap::new(), allowed, replace };
        for pair in teams.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
            let (team, arn) = pair
                .split_once('=')
                .map(|(t, a)| (t.trim(), a.trim()))
                .filter(|(t, _)| !t.is_empty())
                .ok_or_else(|| err("TEAM_TOPICS", format!("{pair:?} is not team=topic-arn")))?;
            let topic = TopicArn::parse(arn)
                .ok_or_else(|| err("TEAM_TOPICS", format!("team {team:?}: {arn:?} is not an SNS topic ARN")))?;
            if !routing.allows(&topic) {
                return Err(err(
                    "TEAM_TOPICS",
                    format!(
                        "team {team:?}: {arn} is not in ROUTED_TOPIC_ARNS, so the stack's IAM policy does not allow publishing to it"
                    ),
                ));
            }
            routing.teams.entry(team.to_owned()).or_default().push(topic);
        }
        Ok(routing)
    }
}

/// How notices reach SNS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// `NOTICE_FORMAT=structured` (default): one `MessageStructure=json` publish with a
    /// part per protocol; SNS then delivers no message attributes. `plain`: the text and
    /// the document as one message, with attributes for subscription filter policies.
    pub structured: bool,
    /// `CHAT_TOPIC_ARN`: chat (AWS Chatbot) has a topic of its own; every notice goes there
    /// too, and the other topics' `https` part carries the document instead of the chat message.
    pub chat_topic: Option<TopicArn>,
}

impl Delivery {
    /// Whether `topic`'s `https` subscribers get the chat message (else the document).
    pub fn chat_on(&self, topic: &TopicArn) -> bool {
        self.chat_topic.as_ref().is_none_or(|chat| chat == topic)
    }
}

impl Proactive {
    fn parse(
        get: &dyn Fn(&str) -> Option<String>,
        mode: Mode,
        enabled: bool,
        dry_run: bool,
        number: &dyn Fn(&'static str, u64, u64) -> Result<u64, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let err = |var: &'static str, problem: String| ConfigError { var, problem };
        let windows = get("MAINTENANCE_WINDOW")
            .map(|w| Windows::parse(&w))
            .transpose()
            .map_err(|e| err("MAINTENANCE_WINDOW", e))?;
        let health_alarm = get("HEALTH_ALARM");
        if let Some(bad) = health_alarm.as_ref().filter(|a| !crate::domain::is_alarm_name(a)) {
            let shown = crate::text::shown(bad, 300);
            return Err(err(
                "HEALTH_ALARM",
                format!("is not a CloudWatch alarm name (1-255 printable characters): {shown:?}"),
            ));
        }
        let proactive = Self {
            enabled,
            windows,
            health_alarm,
            settle_minutes: number("HEALTH_SETTLE_MINUTES", 10, 1440)?,
            margin_hours: number("PROACTIVE_MARGIN_HOURS", 24, 720)?,
        };
        if enabled && mode != Mode::Recover {
            return Err(err("PROACTIVE_MOVES", format!("needs POLICY=recover (it is {mode})")));
        }
        // The moves themselves come with the health gate: until then the plan is shown, never carried out.
        if enabled && !dry_run {
            return Err(err(
                "PROACTIVE_MOVES",
                "is planned and reported only in this version (the report's proactive section): set DRY_RUN=true with it".into(),
            ));
        }
        if enabled && proactive.windows.is_none() {
            return Err(err("PROACTIVE_MOVES", "needs MAINTENANCE_WINDOW (e.g. \"Sun 02:00-05:00\")".into()));
        }
        Ok(proactive)
    }
}

/// How hard the SDK tries before a call counts as failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SdkSettings {
    pub max_attempts: u32,
    pub attempt_timeout_seconds: u64,
    pub operation_timeout_seconds: u64,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| lookup(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let err = |var: &'static str, problem: String| ConfigError { var, problem };

        let topic_text = get("NOTIFY_TOPIC_ARN")
            .ok_or_else(|| err("NOTIFY_TOPIC_ARN", "is required (the SNS topic ARN for notices)".into()))?;
        let topic = TopicArn::parse(&topic_text).ok_or_else(|| {
            err(
                "NOTIFY_TOPIC_ARN",
                format!("is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME): {topic_text:?}"),
            )
        })?;
        let mode = match get("POLICY") {
            None => Mode::Notify,
            Some(v) => match v.parse() {
                Ok(m) if m != Mode::Ignore => m,
                _ => return Err(err("POLICY", format!("must be notify, restart or recover, not {v:?}"))),
            },
        };
        let flag = |var: &'static str| -> Result<bool, ConfigError> {
            match get(var).map(|v| v.to_ascii_lowercase()) {
                None => Ok(false),
                Some(v) if v == "true" => Ok(true),
                Some(v) if v == "false" => Ok(false),
                Some(v) => Err(err(var, format!("must be true or false, not {v:?}"))),
            }
        };
        let number = |var: &'static str, default: u64, max: u64| -> Result<u64, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| err(var, format!("must be a whole number from 0 to {max}, not {v:?}"))),
            }
        };
        let list = |var: &'static str| -> BTreeSet<String> {
            get(var)
                .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let never_resume = list("NEVER_RESUME_PROCESSES");
        if let Some(bad) = never_resume.iter().find(|p| !PROCESSES.contains(&p.as_str())) {
            return Err(err(
                "NEVER_RESUME_PROCESSES",
                format!("names an unknown process {bad:?} (known: {})", PROCESSES.join(", ")),
            ));
        }
        let poll_seconds = number("POLL_SECONDS", 10, 60)?.max(1);
        let sdk = SdkSettings {
            max_attempts: number("AWS_MAX_ATTEMPTS", 3, 10)?.max(1) as u32,
            attempt_timeout_seconds: number("SDK_ATTEMPT_TIMEOUT_SECONDS", 10, 60)?.max(1),
            operation_timeout_seconds: number("SDK_OPERATION_TIMEOUT_SECONDS", 30, 120)?.max(1),
        };
        if sdk.operation_timeout_seconds < sdk.attempt_timeout_seconds {
            return Err(err(
                "SDK_OPERATION_TIMEOUT_SECONDS",
                "must not be shorter than SDK_ATTEMPT_TIMEOUT_SECONDS".into(),
            ));
        }
        let escalation = match get("ESCALATION_TIERS") {
            None if get("ESCALATION_REPEAT").is_some() => {
                return Err(err("ESCALATION_REPEAT", "needs ESCALATION_TIERS".into()));
            }
            None => Escalation::single(topic.clone()),
            Some(tiers) => Escalation::parse(&tiers, get("ESCALATION_REPEAT").as_deref())
                .map_err(|p| err("ESCALATION_TIERS", format!("(or ESCALATION_REPEAT): {p}")))?,
        };
        let structured = match get("NOTICE_FORMAT").as_deref() {
            None | Some("structured") => true,
            Some("plain") => false,
            Some(other) => return Err(err("NOTICE_FORMAT", format!("is {other:?}; expected structured or plain"))),
        };
        let chat_topic = match get("CHAT_TOPIC_ARN") {
            None => None,
            Some(text) => Some(
                TopicArn::parse(&text)
                    .ok_or_else(|| err("CHAT_TOPIC_ARN", format!("{text:?} is not an SNS topic ARN")))?,
            ),
        };
        if chat_topic.is_some() && !structured {
            return Err(err("CHAT_TOPIC_ARN", "needs NOTICE_FORMAT=structured (chat reads the https part)".into()));
        }
        let routing =
            Routing::parse(get("TEAM_TAG"), get("TEAM_TOPICS"), get("ROUTED_TOPIC_ARNS"), get("ROUTING_MODE"))?;
        let proactive = Proactive::parse(&get, mode, flag("PROACTIVE_MOVES")?, flag("DRY_RUN")?, &number)?;
        Ok(Self {
            delivery: Delivery { structured, chat_topic },
            routing,
            proactive,
            topic,
            mode,
            dry_run: flag("DRY_RUN")?,
            restart_user_stopped: flag("RESTART_USER_STOPPED")?,
            resume_user_suspended: flag("RESUME_USER_SUSPENDED")?,
            max_starts: number("MAX_STARTS_PER_INVOCATION", 10, 100)? as usize,
            max_starts_per_group: number("MAX_STARTS_PER_GROUP", 5, 100)? as usize,
            opt_in_tag: get("OPT_IN_TAG"),
            never_resume,
            health_event_codes: list("HEALTH_EVENT_CODES"),
            wait_seconds: number("WAIT_SECONDS", 60, 600)?,
            poll_seconds,
            stall_minutes: number("STALL_MINUTES", 15, 240)?.max(1),
            environment: get("ENVIRONMENT").unwrap_or_else(|| "default".into()),
            escalation,
            state_table: get("STATE_TABLE"),
            sdk,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub use crate::testing::config_with;

    #[test]
    fn defaults_are_safe() {
        let c = config_with(&[]).unwrap();
        assert_eq!(c.mode, Mode::Notify);
        assert!(!c.dry_run && !c.restart_user_stopped && !c.resume_user_suspended);
        assert_eq!(c.max_starts, 10);
        assert_eq!(c.topic.account(), "123456789012");
    }

    #[test]
    fn missing_or_malformed_topic_is_named() {
        let e = Config::from_lookup(|_| None).unwrap_err();
        assert_eq!(e.var, "NOTIFY_TOPIC_ARN");
        let e = config_with(&[("NOTIFY_TOPIC_ARN", "arn:aws:sqs:us-east-1:123456789012:q")]).unwrap_err();
        assert!(e.to_string().contains("NOTIFY_TOPIC_ARN is not an SNS topic ARN"), "{e}");
    }

    #[test]
    fn bad_values_name_the_variable_and_accepted_values() {
        let e = config_with(&[("POLICY", "fix-everything")]).unwrap_err();
        assert_eq!(e.to_string(), "configuration: POLICY must be notify, restart or recover, not \"fix-everything\"");
        assert_eq!(config_with(&[("POLICY", "ignore")]).unwrap_err().var, "POLICY");
        assert_eq!(config_with(&[("DRY_RUN", "yes")]).unwrap_err().var, "DRY_RUN");
        assert_eq!(config_with(&[("MAX_STARTS_PER_INVOCATION", "-1")]).unwrap_err().var, "MAX_STARTS_PER_INVOCATION");
        assert_eq!(
            config_with(&[("NEVER_RESUME_PROCESSES", "Launch,Lunch")]).unwrap_err().var,
            "NEVER_RESUME_PROCESSES"
        );
    }

    #[test]
    fn values_are_read() {
        let c = config_with(&[
            ("POLICY", "Recover"),
            ("DRY_RUN", "TRUE"),
            ("NEVER_RESUME_PROCESSES", "AZRebalance, ScheduledActions"),
            ("OPT_IN_TAG", "retirement-guard:enabled"),
        ])
        .unwrap();
        assert_eq!(c.mode, Mode::Recover);
        assert!(c.dry_run);
        assert_eq!(c.never_resume.len(), 2);
        assert_eq!(c.opt_in_tag.as_deref(), Some("retirement-guard:enabled"));
    }

    #[test]
    fn routing_is_read_and_checked_against_the_allowed_topics() {
        let search = "arn:aws:sns:us-east-1:123456789012:team-search";
        let c = config_with(&[
            ("ROUTED_TOPIC_ARNS", "arn:aws:sns:us-east-1:123456789012:team-*"),
            ("TEAM_TOPICS", &format!("search={search}, search = {search}-pager")),
            ("ROUTING_MODE", "replace"),
        ])
        .unwrap();
        assert!(c.routing.replace);
        assert_eq!(c.routing.team_tag, "team");
        assert_eq!(c.routing.teams["search"].len(), 2);
        assert!(c.routing.allows(&TopicArn::parse(search).unwrap()));
        assert!(!c.routing.allows(&TopicArn::parse("arn:aws:sns:us-east-1:123456789012:ops").unwrap()));
        assert!(!config_with(&[]).unwrap().routing.allows(&TopicArn::parse(search).unwrap()));

        let e = config_with(&[("TEAM_TOPICS", &format!("search={search}"))]).unwrap_err();
        assert!(e.var == "TEAM_TOPICS" && e.problem.contains("not in ROUTED_TOPIC_ARNS"), "{e}");
        assert_eq!(config_with(&[("TEAM_TOPICS", "search")]).unwrap_err().var, "TEAM_TOPICS");
        assert_eq!(config_with(&[("ROUTING_MODE", "instead")]).unwrap_err().var, "ROUTING_MODE");
        assert_eq!(config_with(&[("ROUTED_TOPIC_ARNS", "team-*")]).unwrap_err().var, "ROUTED_TOPIC_ARNS");
    }

    #[test]
    fn proactive_moves_are_off_by_default_and_need_recover_and_a_window() {
        let p = config_with(&[]).unwrap().proactive;
        assert!(!p.enabled && p.windows.is_none() && p.health_alarm.is_none());
        assert_eq!((p.settle_minutes, p.margin_hours), (10, 24));
        let on = [
            ("PROACTIVE_MOVES", "true"),
            ("POLICY", "recover"),
            ("MAINTENANCE_WINDOW", "Sat 22:00-Sun 04:00"),
            ("DRY_RUN", "true"),
        ];
        let mut env = on.to_vec();
        env.extend([
            ("HEALTH_ALARM", "es-cluster-green"),
            ("HEALTH_SETTLE_MINUTES", "5"),
            ("PROACTIVE_MARGIN_HOURS", "48"),
        ]);
        let p = config_with(&env).unwrap().proactive;
        assert!(p.enabled);
        assert_eq!(p.windows.unwrap().to_string(), "Sat 22:00-Sun 04:00 UTC");
        assert_eq!((p.health_alarm.as_deref(), p.settle_minutes, p.margin_hours), (Some("es-cluster-green"), 5, 48));

        let e = config_with(&[on[0], on[2], on[3]]).unwrap_err();
        assert!(e.var == "PROACTIVE_MOVES" && e.problem.contains("needs POLICY=recover"), "{e}");
        let e = config_with(&on[..3]).unwrap_err();
        assert!(e.var == "PROACTIVE_MOVES" && e.problem.contains("set DRY_RUN=true"), "{e}");
        let e = config_with(&[on[0], on[1], on[3]]).unwrap_err();
        assert!(e.var == "PROACTIVE_MOVES" && e.problem.contains("needs MAINTENANCE_WINDOW"), "{e}");
        let e = config_with(&[on[0], on[2]]).unwrap_err();
        assert!(e.var == "PROACTIVE_MOVES" && e.problem.contains("needs POLICY=recover"), "{e}");
        let e = config_with(&[("MAINTENANCE_WINDOW", "Sunday night")]).unwrap_err();
        assert!(e.var == "MAINTENANCE_WINDOW" && e.problem.contains("\"Sunday night\""), "{e}");
        assert_eq!(config_with(&[("PROACTIVE_MOVES", "yes")]).unwrap_err().var, "PROACTIVE_MOVES");
        assert_eq!(config_with(&[("HEALTH_ALARM", "a\nb")]).unwrap_err().var, "HEALTH_ALARM");
        assert_eq!(config_with(&[("PROACTIVE_MARGIN_HOURS", "721")]).unwrap_err().var, "PROACTIVE_MARGIN_HOURS");
    }

    #[test]
    fn modes_are_ordered_so_tags_can_only_narrow() {
        assert!(Mode::Ignore < Mode::Notify && Mode::Notify < Mode::Restart && Mode::Restart < Mode::Recover);
    }
}
