//! Adapter tests for `AwsInventory`: real EC2 and Auto Scaling SDK clients whose
//! HTTP layer is replaced by `aws-smithy-mocks` rules (pagination, batching,
//! conversion to domain values, NotFound recovery, error classification, SDK retries).

use super::AwsInventory;
use crate::domain::{
    AsgName, GroupSnapshot, InstanceId, InstanceSnapshot, InstanceState, Member, RootDevice, ScheduledEvent,
    StatusChecks, SuspendedProcess,
};
use crate::error::FailureKind;
use crate::inventory::{InstanceStatus, Inventory};
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::{
    DescribeAutoScalingGroupsError, DescribeAutoScalingGroupsOutput,
};
use aws_sdk_autoscaling::operation::describe_auto_scaling_instances::DescribeAutoScalingInstancesOutput;
use aws_sdk_ec2::operation::describe_instance_status::{DescribeInstanceStatusError, DescribeInstanceStatusOutput};
use aws_sdk_ec2::operation::describe_instances::{DescribeInstancesError, DescribeInstancesOutput};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Ec2 = aws_sdk_ec2::Client;
type Asg = aws_sdk_autoscaling::Client;

/// Backoff between SDK retries resolves at once, so retry tests take no wall time.
#[derive(Debug)]
struct NoWait;

impl aws_sdk_ec2::config::AsyncSleep for NoWait {
    fn sleep(&self, _: Duration) -> aws_sdk_ec2::config::Sleep {
        aws_sdk_ec2::config::Sleep::new(std::future::ready(()))
    }
}

/// Three attempts, as the SDK's standard mode; set explicitly so the tests do not
/// depend on which behaviour version turns retries on by default.
fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}

fn ec2_client(mode: RuleMode, rules: &[&Rule]) -> Ec2 {
    mock_client!(aws_sdk_ec2, mode, rules, |c| c.retry_config(retries()).sleep_impl(NoWait))
}

fn asg_client(mode: RuleMode, rules: &[&Rule]) -> Asg {
    mock_client!(aws_sdk_autoscaling, mode, rules, |c| c.retry_config(retries()).sleep_impl(NoWait))
}

fn cloudwatch_client(rules: &[&Rule]) -> aws_sdk_cloudwatch::Client {
    mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, rules, |c| c.retry_config(retries()).sleep_impl(NoWait))
}

/// An inventory whose clients answer only the given rules (any other call panics).
fn inventory(mode: RuleMode, ec2_rules: &[&Rule], asg_rules: &[&Rule]) -> AwsInventory {
    AwsInventory {
        ec2: ec2_client(mode, ec2_rules),
        autoscaling: asg_client(mode, asg_rules),
        cloudwatch: cloudwatch_client(&[]),
    }
}

#[tokio::test]
async fn alarms_of_both_kinds_are_read_with_their_state_and_its_time() {
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
    use aws_sdk_cloudwatch::types::{AlarmType, CompositeAlarm, MetricAlarm, StateValue};
    let at = aws_smithy_types::DateTime::from_secs(1_795_867_200);
    let rule = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .match_requests(|r| {
            r.alarm_types() == [AlarmType::MetricAlarm, AlarmType::CompositeAlarm] && r.alarm_names().len() == 3
        })
        .then_output(move || {
            DescribeAlarmsOutput::builder()
                .metric_alarms(
                    MetricAlarm::builder()
                        .alarm_name("disk")
                        .state_value(StateValue::Alarm)
                        .state_updated_timestamp(at)
                        .build(),
                )
                .composite_alarms(
                    CompositeAlarm::builder()
                        .alarm_name("es-green")
                        .state_value(StateValue::Ok)
                        .state_updated_timestamp(at)
                        .build(),
                )
                .build()
        });
    let inv = AwsInventory { cloudwatch: cloudwatch_client(&[&rule]), ..inventory(RuleMode::MatchAny, &[], &[]) };
    let names = ["disk".to_owned(), "es-green".to_owned(), "gone".to_owned()];
    let found = inv.alarms(&names).await.unwrap();
    let since = Some("2026-11-28T12:00:00Z".parse().unwrap());
    assert_eq!(
        found,
        [
            crate::domain::Alarm { name: "disk".into(), state: "ALARM".into(), since },
            crate::domain::Alarm { name: "es-green".into(), state: "OK".into(), since },
        ]
    );
}

fn id(text: &str) -> InstanceId {
    InstanceId::parse(text).unwrap()
}

fn name(text: &str) -> AsgName {
    AsgName::parse(text).unwrap()
}

/// `n`-th synthetic instance id, 17 hex digits.
fn nth_id(n: usize) -> String {
    format!("i-{n:017x}")
}

fn sorted_ids(found: &[InstanceSnapshot]) -> Vec<&str> {
    let mut ids: Vec<&str> = found.iter().map(|i| i.id.as_str()).collect();
    ids.sort_unstable();
    ids
}

fn not_found(message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code("InvalidInstanceID.NotFound").message(message).build()
}

// ---- EC2 model builders ----

/// An EBS-backed instance in `state`, still open for more fields.
fn ec2_instance_with(
    id: &str,
    state: aws_sdk_ec2::types::InstanceStateName,
) -> aws_sdk_ec2::types::builders::InstanceBuilder {
    aws_sdk_ec2::types::Instance::builder()
        .instance_id(id)
        .state(aws_sdk_ec2::types::InstanceState::builder().name(state).build())
        .root_device_type(aws_sdk_ec2::types::DeviceType::Ebs)
}

fn ec2_instance(id: &str, state: aws_sdk_ec2::types::InstanceStateName) -> aws_sdk_ec2::types::Instance {
    ec2_instance_with(id, state).build()
}

fn reservation(instances: Vec<aws_sdk_ec2::types::Instance>) -> aws_sdk_ec2::types::Reservation {
    aws_sdk_ec2::types::Reservation::builder().set_instances(Some(instances)).build()
}

fn ec2_tag(key: &str, value: &str) -> aws_sdk_ec2::types::Tag {
    aws_sdk_ec2::types::Tag::builder().key(key).value(value).build()
}

fn summary(status: aws_sdk_ec2::types::SummaryStatus) -> aws_sdk_ec2::types::InstanceStatusSummary {
    aws_sdk_ec2::types::InstanceStatusSummary::builder().status(status).build()
}

fn running_ok(id: &str) -> aws_sdk_ec2::types::InstanceStatus {
    use aws_sdk_ec2::types::{InstanceState, InstanceStateName, InstanceStatus, SummaryStatus};
    InstanceStatus::builder()
        .instance_id(id)
        .instance_state(InstanceState::builder().name(InstanceStateName::Running).build())
        .instance_status(summary(SummaryStatus::Ok))
        .system_status(summary(SummaryStatus::Ok))
        .build()
}

fn ok_checks() -> Option<StatusChecks> {
    Some(StatusChecks { instance: "ok".into(), system: "ok".into() })
}

// ---- Auto Scaling model builders ----

fn group_with(name: &str) -> aws_sdk_autoscaling::types::builders::AutoScalingGroupBuilder {
    aws_sdk_autoscaling::types::AutoScalingGroup::builder().auto_scaling_group_name(name).desired_capacity(2)
}

fn group(name: &str) -> aws_sdk_autoscaling::types::AutoScalingGroup {
    group_with(name).build()
}

fn groups_page(names: &[&str], next: Option<&str>) -> DescribeAutoScalingGroupsOutput {
    DescribeAutoScalingGroupsOutput::builder()
        .set_auto_scaling_groups(Some(names.iter().map(|n| group(n)).collect()))
        .set_next_token(next.map(str::to_owned))
        .build()
}

fn group_names(groups: &[GroupSnapshot]) -> Vec<&str> {
    let mut names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    names.sort_unstable();
    names
}

// ---- Pagination ----

#[tokio::test]
async fn describe_instances_pages_are_all_read() {
    use aws_sdk_ec2::types::InstanceStateName::{Stopped, Stopping};
    let first = mock!(Ec2::describe_instances)
        .match_requests(|r| {
            let filter = &r.filters()[0];
            r.next_token().is_none()
                && r.max_results() == Some(1000)
                && filter.name() == Some("instance-state-name")
                && filter.values() == ["stopping", "stopped", "shutting-down", "terminated"]
        })
        .then_output(|| {
            DescribeInstancesOutput::builder()
                .reservations(reservation(vec![
                    ec2_instance("i-00000000000000001", Stopped),
                    ec2_instance("i-00000000000000002", Stopping),
                ]))
                .reservations(reservation(vec![ec2_instance("i-00000000000000003", Stopped)]))
                .next_token("page-2")
                .build()
        });
    let second =
        mock!(Ec2::describe_instances).match_requests(|r| r.next_token() == Some("page-2")).then_output(|| {
            DescribeInstancesOutput::builder()
                .reservations(reservation(vec![ec2_instance("i-00000000000000004", Stopped)]))
                .build()
        });
    let inv = inventory(RuleMode::Sequential, &[&first, &second], &[]);

    let found = inv.not_running().await.into_result().unwrap();

    assert_eq!(
        sorted_ids(&found),
        ["i-00000000000000001", "i-00000000000000002", "i-00000000000000003", "i-00000000000000004"]
    );
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    let stopping = found.iter().find(|i| i.id.as_str() == "i-00000000000000002").unwrap();
    assert_eq!(stopping.state, InstanceState::Stopping);
}

#[tokio::test]
async fn members_not_running_are_read_by_their_group_tag_and_state_in_one_call() {
    use aws_sdk_ec2::types::InstanceStateName::Stopped;
    let rule = mock!(Ec2::describe_instances)
        .match_requests(|r| {
            let f = r.filters();
            f.len() == 2
                && f[0].name() == Some("instance-state-name")
                && f[0].values() == ["stopping", "stopped", "shutting-down", "terminated"]
                && f[1].name() == Some("tag:aws:autoscaling:groupName")
                && f[1].values() == ["es-data", "web"]
        })
        .then_output(|| {
            DescribeInstancesOutput::builder()
                .reservations(reservation(vec![ec2_instance("i-00000000000000001", Stopped)]))
                .build()
        });
    let inv = inventory(RuleMode::MatchAny, &[&rule], &[]);

    let found = inv.not_running_in(&[name("es-data"), name("web")]).await.unwrap();

    assert_eq!(sorted_ids(&found), ["i-00000000000000001"]);
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn describe_auto_scaling_groups_pages_are_all_read() {
    let first = mock!(Asg::describe_auto_scaling_groups)
        .match_requests(|r| r.next_token().is_none() && r.auto_scaling_group_names().is_empty())
        .then_output(|| groups_page(&["api", "web"], Some("more")));
    let second = mock!(Asg::describe_auto_scaling_groups)
        .match_requests(|r| r.next_token() == Some("more") && r.max_records() == Some(100))
        .then_output(|| groups_page(&["batch"], None));
    let inv = inventory(RuleMode::Sequential, &[], &[&first, &second]);

    let groups = inv.all_groups().await.into_result().unwrap();

    assert_eq!(group_names(&groups), ["api", "batch", "web"]);
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_group_page_that_keeps_failing_ends_the_listing_with_the_pages_before_it() {
    let first = mock!(Asg::describe_auto_scaling_groups)
        .match_requests(|r| r.next_token().is_none())
        .then_output(|| groups_page(&["api", "web"], Some("more")));
    let second =
        mock!(Asg::describe_auto_scaling_groups).match_requests(|r| r.next_token() == Some("more")).then_error(|| {
            DescribeAutoScalingGroupsError::generic(
                ErrorMetadata::builder().code("Throttling").message("Rate exceeded").build(),
            )
        });
    let inv = inventory(RuleMode::MatchAny, &[], &[&first, &second]);

    let listing = inv.all_groups().await;

    assert_eq!(group_names(&listing.items), ["api", "web"], "the first page is kept");
    let failure = listing.failure.expect("the failed page is reported");
    assert_eq!((failure.operation, failure.kind), ("DescribeAutoScalingGroups", FailureKind::Transient));
    assert_eq!((first.num_calls(), second.num_calls()), (1, 3), "the SDK retried the failed page, not the first");
}

#[tokio::test]
async fn describe_instance_status_pages_are_all_read_with_their_scheduled_events() {
    use aws_sdk_ec2::types::{
        EventCode, InstanceState, InstanceStateName, InstanceStatus as Ec2Status, InstanceStatusEvent,
    };
    let deadline = aws_smithy_types::DateTime::from_secs(1_796_083_200); // 2026-12-01T00:00:00Z
    let first = mock!(Ec2::describe_instance_status)
        .match_requests(|r| {
            // Only instances with a scheduled event, not the status of every running instance.
            let by_event = r.filters().first().is_some_and(|f| {
                f.name() == Some("event.code") && f.values().iter().any(|v| v == "instance-retirement")
            });
            r.instance_ids().is_empty() && by_event && r.max_results() == Some(1000) && r.next_token().is_none()
        })
        .then_output(move || {
            let retiring = Ec2Status::builder()
                .instance_id("i-0000000000000000a")
                .instance_state(InstanceState::builder().name(InstanceStateName::Running).build())
                .instance_status(summary(aws_sdk_ec2::types::SummaryStatus::Ok))
                .system_status(summary(aws_sdk_ec2::types::SummaryStatus::Ok))
                .events(
                    InstanceStatusEvent::builder()
                        .code(EventCode::InstanceRetirement)
                        .description("The instance is running on degraded hardware")
                        .not_before(deadline)
                        .build(),
                )
                .build();
            DescribeInstanceStatusOutput::builder().instance_statuses(retiring).next_token("next").build()
        });
    let second =
        mock!(Ec2::describe_instance_status).match_requests(|r| r.next_token() == Some("next")).then_output(|| {
            let impaired = Ec2Status::builder()
                .instance_id("i-0000000000000000b")
                .instance_state(InstanceState::builder().name(InstanceStateName::Running).build())
                .instance_status(summary(aws_sdk_ec2::types::SummaryStatus::Impaired))
                .system_status(summary(aws_sdk_ec2::types::SummaryStatus::Ok))
                .build();
            let stopping = Ec2Status::builder()
                .instance_id("i-0000000000000000c")
                .instance_state(InstanceState::builder().name(InstanceStateName::Stopping).build())
                .build();
            DescribeInstanceStatusOutput::builder().instance_statuses(impaired).instance_statuses(stopping).build()
        });
    let inv = inventory(RuleMode::Sequential, &[&first, &second], &[]);

    let statuses = inv.scheduled().await.into_result().unwrap().into_iter().collect::<BTreeMap<_, _>>();

    let expected = BTreeMap::from([
        (
            id("i-0000000000000000a"),
            InstanceStatus {
                checks: ok_checks(),
                events: vec![ScheduledEvent {
                    code: "instance-retirement".into(),
                    description: "The instance is running on degraded hardware".into(),
                    not_before: Some("2026-12-01T00:00:00Z".parse().unwrap()),
                }],
            },
        ),
        (
            id("i-0000000000000000b"),
            InstanceStatus {
                checks: Some(StatusChecks { instance: "impaired".into(), system: "ok".into() }),
                events: vec![],
            },
        ),
        // Not running: no checks at all, rather than "unknown" ones.
        (id("i-0000000000000000c"), InstanceStatus { checks: None, events: vec![] }),
    ]);
    assert_eq!(statuses, expected);
    assert!(statuses[&id("i-0000000000000000a")].checks.as_ref().unwrap().ok());
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

// ---- Batching ----

#[tokio::test]
async fn instances_are_described_with_at_most_200_filter_values_per_call() {
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let seen = sizes.clone();
    let rule = mock!(Ec2::describe_instances)
        .match_requests(|r| {
            r.filters().len() == 1
                && r.filters()[0].name() == Some("instance-id")
                && r.filters()[0].values().len() <= 200
        })
        .then_compute_output(move |r| {
            let values = r.filters()[0].values();
            seen.lock().unwrap().push(values.len());
            let instances =
                values.iter().map(|v| ec2_instance(v, aws_sdk_ec2::types::InstanceStateName::Running)).collect();
            DescribeInstancesOutput::builder().reservations(reservation(instances)).build()
        });
    let inv = inventory(RuleMode::MatchAny, &[&rule], &[]);
    let ids: Vec<InstanceId> = (0..450).map(|n| id(&nth_id(n))).collect();

    let found = inv.instances(&ids).await.unwrap();

    assert_eq!(rule.num_calls(), 3);
    let mut sizes = sizes.lock().unwrap().clone();
    sizes.sort_unstable();
    assert_eq!(sizes, [50, 200, 200]);
    let found: BTreeSet<InstanceId> = found.into_iter().map(|i| i.id).collect();
    assert_eq!(found, ids.into_iter().collect::<BTreeSet<_>>());
}

#[tokio::test]
async fn memberships_are_asked_50_ids_at_a_time() {
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let seen = sizes.clone();
    let rule = mock!(Asg::describe_auto_scaling_instances)
        .match_requests(|r| r.instance_ids().len() <= 50 && r.max_records() == Some(50))
        .then_compute_output(move |r| {
            seen.lock().unwrap().push(r.instance_ids().len());
            // Every third instance belongs to no group, so AWS leaves it out.
            let members = r
                .instance_ids()
                .iter()
                .filter(|i| u64::from_str_radix(&i[2..], 16).unwrap() % 3 != 0)
                .map(|i| {
                    aws_sdk_autoscaling::types::AutoScalingInstanceDetails::builder()
                        .instance_id(i)
                        .auto_scaling_group_name("web")
                        .build()
                })
                .collect();
            DescribeAutoScalingInstancesOutput::builder().set_auto_scaling_instances(Some(members)).build()
        });
    let inv = inventory(RuleMode::MatchAny, &[], &[&rule]);
    let ids: Vec<InstanceId> = (0..120).map(|n| id(&nth_id(n))).collect();

    let members = inv.memberships(&ids).await.unwrap();

    assert_eq!(rule.num_calls(), 3);
    let mut sizes = sizes.lock().unwrap().clone();
    sizes.sort_unstable();
    assert_eq!(sizes, [20, 50, 50]);
    assert_eq!(members.len(), 80);
    assert_eq!(members.get(&id(&nth_id(1))), Some(&name("web")));
    assert_eq!(members.get(&id(&nth_id(3))), None);
}

#[tokio::test]
async fn named_groups_are_asked_100_names_at_a_time() {
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let seen = sizes.clone();
    let rule = mock!(Asg::describe_auto_scaling_groups)
        .match_requests(|r| (1..=100).contains(&r.auto_scaling_group_names().len()))
        .then_compute_output(move |r| {
            seen.lock().unwrap().push(r.auto_scaling_group_names().len());
            // "g-7" was deleted: AWS simply leaves it out.
            let groups = r.auto_scaling_group_names().iter().filter(|n| *n != "g-7").map(|n| group(n)).collect();
            DescribeAutoScalingGroupsOutput::builder().set_auto_scaling_groups(Some(groups)).build()
        });
    let inv = inventory(RuleMode::MatchAny, &[], &[&rule]);
    let names: Vec<AsgName> = (0..250).map(|n| name(&format!("g-{n}"))).collect();

    let groups = inv.groups(&names).await.unwrap();

    assert_eq!(rule.num_calls(), 3);
    let mut sizes = sizes.lock().unwrap().clone();
    sizes.sort_unstable();
    assert_eq!(sizes, [50, 100, 100]);
    assert_eq!(groups.len(), 249);
    assert!(!groups.iter().any(|g| g.name.as_str() == "g-7"));
}

#[tokio::test]
async fn statuses_of_named_instances_are_asked_100_ids_at_a_time() {
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let seen = sizes.clone();
    let rule = mock!(Ec2::describe_instance_status)
        .match_requests(|r| (1..=100).contains(&r.instance_ids().len()) && r.max_results().is_none())
        .then_compute_output(move |r| {
            seen.lock().unwrap().push(r.instance_ids().len());
            let statuses = r.instance_ids().iter().map(|i| running_ok(i)).collect();
            DescribeInstanceStatusOutput::builder().set_instance_statuses(Some(statuses)).build()
        });
    let inv = inventory(RuleMode::MatchAny, &[&rule], &[]);
    let ids: Vec<InstanceId> = (0..250).map(|n| id(&nth_id(n))).collect();

    let statuses = inv.statuses(&ids).await.unwrap();

    assert_eq!(rule.num_calls(), 3);
    let mut sizes = sizes.lock().unwrap().clone();
    sizes.sort_unstable();
    assert_eq!(sizes, [50, 100, 100]);
    assert_eq!(statuses.len(), 250);
    assert!(statuses.values().all(|s| s.checks == ok_checks()));
}

// ---- Conversion ----

#[tokio::test]
async fn instances_convert_root_device_reasons_and_tags() {
    use aws_sdk_ec2::types::{DeviceType, InstanceStateName, StateReason};
    let rule = mock!(Ec2::describe_instances)
        .match_requests(|r| r.filters()[0].values() == ["i-0000000000000aaaa", "i-0000000000000bbbb"])
        .then_output(|| {
            let retired = ec2_instance_with("i-0000000000000aaaa", InstanceStateName::Stopped)
                .state_reason(
                    StateReason::builder()
                        .code("Server.ScheduledStop")
                        .message("Server.ScheduledStop: Stopped due to scheduled retirement")
                        .build(),
                )
                .state_transition_reason("User initiated (2026-11-20 10:00:00 GMT)")
                .tags(ec2_tag("Name", "search-1"))
                .tags(ec2_tag("aws:autoscaling:groupName", "es-data"))
                .tags(aws_sdk_ec2::types::Tag::builder().key("empty").build())
                .build();
            let ephemeral = ec2_instance_with("i-0000000000000bbbb", InstanceStateName::Running)
                .root_device_type(DeviceType::InstanceStore)
                .build();
            DescribeInstancesOutput::builder().reservations(reservation(vec![retired, ephemeral])).build()
        });
    let inv = inventory(RuleMode::Sequential, &[&rule], &[]);

    let mut found = inv.instances(&[id("i-0000000000000aaaa"), id("i-0000000000000bbbb")]).await.unwrap();
    found.sort_by(|a, b| a.id.cmp(&b.id));

    let retired = InstanceSnapshot {
        id: id("i-0000000000000aaaa"),
        state: InstanceState::Stopped,
        state_reason_code: Some("Server.ScheduledStop".into()),
        state_transition_reason: Some("User initiated (2026-11-20 10:00:00 GMT)".into()),
        root_device: RootDevice::Ebs,
        tags: BTreeMap::from([
            ("Name".into(), "search-1".into()),
            ("aws:autoscaling:groupName".into(), "es-data".into()),
            ("empty".into(), String::new()),
        ]),
        status: None,
        scheduled_events: vec![],
        launched_at: None,
    };
    let ephemeral = InstanceSnapshot {
        id: id("i-0000000000000bbbb"),
        state: InstanceState::Running,
        state_reason_code: None,
        state_transition_reason: None,
        root_device: RootDevice::InstanceStore,
        tags: BTreeMap::new(),
        status: None,
        scheduled_events: vec![],
        launched_at: None,
    };
    assert_eq!(found, [retired, ephemeral]);
    assert_eq!(found[0].group_tag(), Some(name("es-data")));
}

#[tokio::test]
async fn groups_convert_suspensions_members_and_tags() {
    use aws_sdk_autoscaling::types::{Instance, LifecycleState, SuspendedProcess as Suspended, TagDescription};
    let rule = mock!(Asg::describe_auto_scaling_groups).then_output(|| {
        let es = group_with("es-data")
            .desired_capacity(3)
            .min_size(1)
            .suspended_processes(
                Suspended::builder()
                    .process_name("Launch")
                    .suspension_reason("User suspended at 2017-12-09T19:00:23Z")
                    .build(),
            )
            .suspended_processes(Suspended::builder().process_name("RemoveFromLoadBalancerLowPriority").build())
            .suspended_processes(Suspended::builder().process_name("HealthCheck").build())
            .instances(
                Instance::builder()
                    .instance_id("i-0000000000000aaaa")
                    .lifecycle_state(LifecycleState::InService)
                    .health_status("Healthy")
                    .build(),
            )
            .instances(
                Instance::builder()
                    .instance_id("i-0000000000000bbbb")
                    .lifecycle_state(LifecycleState::Pending)
                    .health_status("Unhealthy")
                    .build(),
            )
            .instances(Instance::builder().instance_id("not-an-instance").build())
            .tags(TagDescription::builder().key("team").value("search").build())
            .tags(TagDescription::builder().key("retirement-guard:recovering").value("2026-11-20T10:00:00Z").build())
            .build();
        DescribeAutoScalingGroupsOutput::builder().auto_scaling_groups(es).build()
    });
    let inv = inventory(RuleMode::Sequential, &[], &[&rule]);

    let groups = inv.groups(&[name("es-data")]).await.unwrap();

    let expected = GroupSnapshot {
        name: name("es-data"),
        desired: 3,
        min_size: 1,
        suspended: vec![
            SuspendedProcess { name: "Launch".into(), reason: "User suspended at 2017-12-09T19:00:23Z".into() },
            SuspendedProcess { name: "HealthCheck".into(), reason: String::new() },
        ],
        members: vec![
            Member {
                id: id("i-0000000000000aaaa"),
                lifecycle_state: "InService".into(),
                health_status: "Healthy".into(),
            },
            Member {
                id: id("i-0000000000000bbbb"),
                lifecycle_state: "Pending".into(),
                health_status: "Unhealthy".into(),
            },
        ],
        tags: BTreeMap::from([
            ("retirement-guard:recovering".into(), "2026-11-20T10:00:00Z".into()),
            ("team".into(), "search".into()),
        ]),
    };
    assert_eq!(groups, [expected]);
    assert_eq!(groups[0].blocking_replacement(), ["Launch", "HealthCheck"]);
}

#[tokio::test]
async fn memberships_map_each_instance_to_its_group() {
    use aws_sdk_autoscaling::types::AutoScalingInstanceDetails as Details;
    let rule =
        mock!(Asg::describe_auto_scaling_instances).match_requests(|r| r.instance_ids().len() == 3).then_output(|| {
            DescribeAutoScalingInstancesOutput::builder()
                .auto_scaling_instances(
                    Details::builder().instance_id("i-0000000000000aaaa").auto_scaling_group_name("es-data").build(),
                )
                .auto_scaling_instances(
                    Details::builder().instance_id("i-0000000000000bbbb").auto_scaling_group_name("web").build(),
                )
                .build()
        });
    let inv = inventory(RuleMode::Sequential, &[], &[&rule]);
    let ids = [id("i-0000000000000aaaa"), id("i-0000000000000bbbb"), id("i-0000000000000cccc")];

    let members = inv.memberships(&ids).await.unwrap();

    assert_eq!(
        members,
        BTreeMap::from([(id("i-0000000000000aaaa"), name("es-data")), (id("i-0000000000000bbbb"), name("web"))])
    );
}

// ---- DescribeInstanceStatus and vanished ids ----

#[tokio::test]
async fn status_call_is_repeated_without_the_id_aws_says_does_not_exist() {
    let (a, b, c) = ("i-0000000000000aaaa", "i-0000000000000bbbb", "i-0000000000000cccc");
    let failing =
        mock!(Ec2::describe_instance_status).match_requests(move |r| r.instance_ids() == [a, b, c]).then_error(
            move || DescribeInstanceStatusError::generic(not_found(&format!("The instance ID '{b}' does not exist"))),
        );
    let retry = mock!(Ec2::describe_instance_status).match_requests(move |r| r.instance_ids() == [a, c]).then_output(
        move || {
            DescribeInstanceStatusOutput::builder()
                .instance_statuses(running_ok(a))
                .instance_statuses(running_ok(c))
                .build()
        },
    );
    let inv = inventory(RuleMode::Sequential, &[&failing, &retry], &[]);

    let statuses = inv.statuses(&[id(a), id(b), id(c)]).await.unwrap();

    assert_eq!(statuses.keys().map(InstanceId::as_str).collect::<Vec<_>>(), [a, c]);
    assert!(statuses.values().all(|s| s.checks == ok_checks()));
    // NotFound is not retried by the SDK itself: one attempt each.
    assert_eq!((failing.num_calls(), retry.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_short_id_is_kept_when_a_longer_id_starting_with_it_vanished() {
    let (short, long) = ("i-1234abcd", "i-1234abcd00000000f");
    let failing = mock!(Ec2::describe_instance_status)
        .match_requests(move |r| r.instance_ids() == [short, long])
        .then_error(move || {
            DescribeInstanceStatusError::generic(not_found(&format!("The instance ID '{long}' does not exist")))
        });
    let retry = mock!(Ec2::describe_instance_status)
        .match_requests(move |r| r.instance_ids() == [short])
        .then_output(move || DescribeInstanceStatusOutput::builder().instance_statuses(running_ok(short)).build());
    let inv = inventory(RuleMode::Sequential, &[&failing, &retry], &[]);

    let statuses = inv.statuses(&[id(short), id(long)]).await.unwrap();

    assert_eq!(statuses.keys().map(InstanceId::as_str).collect::<Vec<_>>(), [short]);
}

#[tokio::test]
async fn status_is_left_unknown_when_the_not_found_message_names_no_asked_id() {
    let failing = mock!(Ec2::describe_instance_status).then_error(|| {
        DescribeInstanceStatusError::generic(not_found("The instance ID 'i-0000000000000ffff' does not exist"))
    });
    let inv = inventory(RuleMode::MatchAny, &[&failing], &[]);

    let statuses = inv.statuses(&[id("i-0000000000000aaaa")]).await.unwrap();

    assert!(statuses.is_empty());
    assert_eq!(failing.num_calls(), 1);
}

// ---- Errors and SDK retries ----

#[tokio::test]
async fn describe_instances_denied_is_classified_and_keeps_the_code() {
    let rule = mock!(Ec2::describe_instances).then_error(|| {
        DescribeInstancesError::generic(
            ErrorMetadata::builder()
                .code("UnauthorizedOperation")
                .message("You are not authorized to perform this operation.")
                .build(),
        )
    });
    let inv = inventory(RuleMode::MatchAny, &[&rule], &[]);

    let err = inv.not_running().await.into_result().unwrap_err();

    assert_eq!(err.operation, "DescribeInstances");
    assert_eq!(err.kind, FailureKind::Denied);
    assert_eq!(err.code.as_deref(), Some("UnauthorizedOperation"));
    assert_eq!(err.message, "You are not authorized to perform this operation.");
    assert_eq!(rule.num_calls(), 1);
}

/// What Auto Scaling (awsQuery protocol) sends back when it throttles.
fn throttled_response() -> HttpResponse {
    let body = r#"<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>
  <RequestId>8f3c1a52-0000-4000-8000-000000000000</RequestId>
</ErrorResponse>"#;
    HttpResponse::new(StatusCode::try_from(400).unwrap(), SdkBody::from(body))
}

#[tokio::test]
async fn throttled_group_read_is_retried_by_the_sdk_and_then_succeeds() {
    // One rule, two answers: the SDK's retry of the same operation takes the next one.
    let rule = mock!(Asg::describe_auto_scaling_groups)
        .sequence()
        .http_response(throttled_response)
        .output(|| groups_page(&["es-data"], None))
        .build();
    let inv = inventory(RuleMode::Sequential, &[], &[&rule]);

    let groups = inv.all_groups().await.into_result().unwrap();

    assert_eq!(group_names(&groups), ["es-data"]);
    assert_eq!(rule.num_calls(), 2);
}

#[tokio::test]
async fn group_read_throttled_on_every_attempt_is_transient() {
    let rule = mock!(Asg::describe_auto_scaling_groups).then_error(|| {
        DescribeAutoScalingGroupsError::generic(
            ErrorMetadata::builder().code("Throttling").message("Rate exceeded").build(),
        )
    });
    let inv = inventory(RuleMode::MatchAny, &[], &[&rule]);

    let err = inv.all_groups().await.into_result().unwrap_err();

    assert_eq!(err.operation, "DescribeAutoScalingGroups");
    assert_eq!(err.kind, FailureKind::Transient);
    assert_eq!(err.code.as_deref(), Some("Throttling"));
    assert_eq!(rule.num_calls(), 3, "one call and two SDK retries");
}

#[tokio::test]
async fn status_read_answering_500_is_transient() {
    let rule = mock!(Ec2::describe_instance_status)
        .then_http_response(|| HttpResponse::new(StatusCode::try_from(500).unwrap(), SdkBody::empty()));
    let inv = inventory(RuleMode::MatchAny, &[&rule], &[]);

    let err = inv.scheduled().await.into_result().unwrap_err();

    assert_eq!(err.operation, "DescribeInstanceStatus");
    assert_eq!(err.kind, FailureKind::Transient);
    assert_eq!(rule.num_calls(), 3);
}
