//! Fault matrix at the mock level: the whole `Guard` over the real SDK adapters
//! (`AwsInventory`, `AwsActuator`, `SnsNotifier`, `DynamoStateStore`) whose HTTP
//! layer is `aws-smithy-mocks`. A small world (group `es-data` with a stopped
//! member A and a running member B, a standalone stopped instance C, one stale
//! state record) answers every operation; then each operation in turn is made to
//! fail with each fault, once (then success) and always, and the observed outcome
//! class of the invocation is checked against the table written below.
//!
//! Transport faults: the mock HTTP client cannot fail by itself, so the faulted
//! rule answers a marker response and a thin connector around the mock client
//! turns it into a stalled attempt (the SDK's attempt timeout fires:
//! `SdkError::TimeoutError`) or a connection reset (`ConnectorError::io`:
//! `SdkError::DispatchFailure`).
//!
//! `cargo test --test integration fault_matrix -- --nocapture` prints the matrix.

use aws_sdk_autoscaling::operation::create_or_update_tags::{
    CreateOrUpdateTagsError, CreateOrUpdateTagsInput, CreateOrUpdateTagsOutput,
};
use aws_sdk_autoscaling::operation::delete_tags::{DeleteTagsError, DeleteTagsInput, DeleteTagsOutput};
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::{
    DescribeAutoScalingGroupsError, DescribeAutoScalingGroupsInput, DescribeAutoScalingGroupsOutput,
};
use aws_sdk_autoscaling::operation::describe_auto_scaling_instances::{
    DescribeAutoScalingInstancesError, DescribeAutoScalingInstancesInput, DescribeAutoScalingInstancesOutput,
};
use aws_sdk_autoscaling::operation::resume_processes::{
    ResumeProcessesError, ResumeProcessesInput, ResumeProcessesOutput,
};
use aws_sdk_autoscaling::operation::set_instance_health::{
    SetInstanceHealthError, SetInstanceHealthInput, SetInstanceHealthOutput,
};
use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemError, BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::delete_item::{DeleteItemError, DeleteItemInput, DeleteItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::scan::{ScanError, ScanInput, ScanOutput};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ec2::operation::describe_instance_status::{
    DescribeInstanceStatusError, DescribeInstanceStatusInput, DescribeInstanceStatusOutput,
};
use aws_sdk_ec2::operation::describe_instances::{
    DescribeInstancesError, DescribeInstancesInput, DescribeInstancesOutput,
};
use aws_sdk_ec2::operation::start_instances::{StartInstancesError, StartInstancesInput, StartInstancesOutput};
use aws_sdk_sns::operation::publish::{PublishError, PublishInput, PublishOutput};
use aws_smithy_mocks::{Rule, RuleMode, create_mock_http_client, mock, mock_client};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use retirement_guard::actions::Status as StepStatus;
use retirement_guard::actions::aws::AwsActuator;
use retirement_guard::error::HandlerError;
use retirement_guard::handler::Guard;
use retirement_guard::inventory::aws::AwsInventory;
use retirement_guard::notify::sns::SnsNotifier;
use retirement_guard::policy::RECOVERING_TAG;
use retirement_guard::report::Report;
use retirement_guard::state::dynamo::DynamoStateStore;
use retirement_guard::testing::{TOPIC, config_with};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Ec2 = aws_sdk_ec2::Client;
type Asg = aws_sdk_autoscaling::Client;
type Sns = aws_sdk_sns::Client;
type Ddb = aws_sdk_dynamodb::Client;

/// Member of `es-data`, stopped by a retirement: the guard starts it.
const A: &str = "i-0a1a1a1a1a1a1a1a1";
/// Member of `es-data`, running with status checks OK.
const B: &str = "i-0b2b2b2b2b2b2b2b2";
/// Standalone, stopped by a retirement: a unit of work independent of the group.
const C: &str = "i-0c3c3c3c3c3c3c3c3";
const GROUP: &str = "es-data";
const TABLE: &str = "retirement-guard-state";
/// An attempt that stalls is cut after this long (real time; every other sleep is instant).
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Header of the marker response a faulted rule answers for a transport fault.
const FAULT_HEADER: &str = "x-fault-matrix";

// ---- SDK plumbing: retries, sleeps, transport faults ----

/// Backoff between retries resolves at once; the attempt timeout really waits.
#[derive(Debug)]
struct TestSleep;

impl aws_sdk_ec2::config::AsyncSleep for TestSleep {
    fn sleep(&self, d: Duration) -> aws_sdk_ec2::config::Sleep {
        if d == ATTEMPT_TIMEOUT {
            aws_sdk_ec2::config::Sleep::new(tokio::time::sleep(d))
        } else {
            aws_sdk_ec2::config::Sleep::new(std::future::ready(()))
        }
    }
}

/// Three attempts in standard mode (as `main` configures by default), set
/// explicitly so the matrix does not depend on the behaviour version.
fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder().operation_attempt_timeout(ATTEMPT_TIMEOUT).build()
}

/// Passes the mock client's answers through, except marker responses, which
/// become a stalled attempt or a connection reset.
#[derive(Debug)]
struct FaultConnector(SharedHttpConnector);

impl HttpConnector for FaultConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.0.call(request);
        HttpConnectorFuture::new(async move {
            let response = inner.await?;
            match response.headers().get(FAULT_HEADER) {
                Some("timeout") => std::future::pending().await,
                Some(_) => Err(ConnectorError::io("connection reset by peer".into())),
                None => Ok(response),
            }
        })
    }
}

fn fault_http_client() -> SharedHttpClient {
    let mock = create_mock_http_client();
    http_client_fn(move |settings, components| {
        SharedHttpConnector::new(FaultConnector(mock.http_connector(settings, components)))
    })
}

fn marker(kind: &'static str) -> HttpResponse {
    let mut response = HttpResponse::new(StatusCode::try_from(200).unwrap(), SdkBody::empty());
    response.headers_mut().insert(FAULT_HEADER, kind);
    response
}

// ---- The world ----

/// AWS as the mocks answer it; writes change it.
#[derive(Default)]
struct World {
    started: Mutex<BTreeSet<String>>,
    a_marked_healthy: AtomicBool,
    resumed: AtomicBool,
    tagged: AtomicBool,
    /// ResumeProcesses arrived while a member was not running.
    resumed_too_early: AtomicBool,
    /// (subject, message) of every notice accepted.
    published: Mutex<Vec<(String, String)>>,
}

impl World {
    fn running(&self, id: &str) -> bool {
        id == B || self.started.lock().unwrap().contains(id)
    }

    fn known(id: &str) -> bool {
        [A, B, C].contains(&id)
    }
}

fn ec2_instance(w: &World, id: &str) -> aws_sdk_ec2::types::Instance {
    use aws_sdk_ec2::types::{DeviceType, Instance, InstanceState, InstanceStateName, StateReason, Tag};
    let running = w.running(id);
    let mut b = Instance::builder()
        .instance_id(id)
        .state(
            InstanceState::builder()
                .name(if running { InstanceStateName::Running } else { InstanceStateName::Stopped })
                .build(),
        )
        .root_device_type(DeviceType::Ebs);
    if !running {
        b = b
            .state_reason(
                StateReason::builder()
                    .code("Server.ScheduledStop")
                    .message("Server.ScheduledStop: Stopped due to scheduled retirement")
                    .build(),
            )
            .state_transition_reason("Service initiated (2026-11-28 10:00:00 GMT)");
    }
    if id != C {
        b = b.tags(Tag::builder().key("aws:autoscaling:groupName").value(GROUP).build());
    }
    b.build()
}

fn describe_instances(w: &World, i: &DescribeInstancesInput) -> DescribeInstancesOutput {
    let mut ids: Vec<&str> = vec![];
    for f in i.filters() {
        match f.name() {
            Some("instance-id") => ids.extend(f.values().iter().map(String::as_str).filter(|id| World::known(id))),
            Some("instance-state-name") if f.values().iter().any(|v| v == "stopped") => {
                ids.extend([A, B, C].into_iter().filter(|id| !w.running(id)));
            }
            _ => {}
        }
    }
    let instances = ids.into_iter().map(|id| ec2_instance(w, id)).collect();
    DescribeInstancesOutput::builder()
        .reservations(aws_sdk_ec2::types::Reservation::builder().set_instances(Some(instances)).build())
        .build()
}

fn describe_instance_status(w: &World, i: &DescribeInstanceStatusInput) -> DescribeInstanceStatusOutput {
    use aws_sdk_ec2::types::{InstanceState, InstanceStateName, InstanceStatus, InstanceStatusSummary, SummaryStatus};
    let asked: Vec<&str> =
        if i.instance_ids().is_empty() { vec![A, B, C] } else { i.instance_ids().iter().map(String::as_str).collect() };
    let ok = || InstanceStatusSummary::builder().status(SummaryStatus::Ok).build();
    let statuses = asked
        .into_iter()
        .filter(|id| World::known(id) && w.running(id))
        .map(|id| {
            InstanceStatus::builder()
                .instance_id(id)
                .instance_state(InstanceState::builder().name(InstanceStateName::Running).build())
                .instance_status(ok())
                .system_status(ok())
                .build()
        })
        .collect();
    DescribeInstanceStatusOutput::builder().set_instance_statuses(Some(statuses)).build()
}

fn start_instances(w: &World, i: &StartInstancesInput) -> StartInstancesOutput {
    use aws_sdk_ec2::types::{InstanceState, InstanceStateChange, InstanceStateName};
    let mut out = StartInstancesOutput::builder();
    for id in i.instance_ids() {
        w.started.lock().unwrap().insert(id.clone());
        out = out.starting_instances(
            InstanceStateChange::builder()
                .instance_id(id)
                .previous_state(InstanceState::builder().name(InstanceStateName::Stopped).build())
                .current_state(InstanceState::builder().name(InstanceStateName::Pending).build())
                .build(),
        );
    }
    out.build()
}

fn es_data(w: &World) -> aws_sdk_autoscaling::types::AutoScalingGroup {
    use aws_sdk_autoscaling::types::{AutoScalingGroup, Instance, LifecycleState, SuspendedProcess, TagDescription};
    let member = |id: &str, healthy: bool| {
        Instance::builder()
            .instance_id(id)
            .availability_zone("us-east-1a")
            .lifecycle_state(LifecycleState::InService)
            .health_status(if healthy { "Healthy" } else { "Unhealthy" })
            .protected_from_scale_in(false)
            .build()
    };
    let mut g = AutoScalingGroup::builder()
        .auto_scaling_group_name(GROUP)
        .desired_capacity(2)
        .min_size(2)
        .max_size(2)
        .instances(member(A, w.a_marked_healthy.load(SeqCst)))
        .instances(member(B, true));
    if !w.resumed.load(SeqCst) {
        for p in ["Launch", "Terminate"] {
            g = g.suspended_processes(SuspendedProcess::builder().process_name(p).suspension_reason("").build());
        }
    }
    if w.tagged.load(SeqCst) {
        g = g.tags(
            TagDescription::builder()
                .resource_id(GROUP)
                .resource_type("auto-scaling-group")
                .key(RECOVERING_TAG)
                .value("2026-11-28T12:00:00Z")
                .propagate_at_launch(false)
                .build(),
        );
    }
    g.build()
}

fn describe_groups(w: &World, i: &DescribeAutoScalingGroupsInput) -> DescribeAutoScalingGroupsOutput {
    let names = i.auto_scaling_group_names();
    let groups = (names.is_empty() || names.iter().any(|n| n == GROUP)).then(|| es_data(w));
    DescribeAutoScalingGroupsOutput::builder().set_auto_scaling_groups(Some(groups.into_iter().collect())).build()
}

fn describe_memberships(w: &World, i: &DescribeAutoScalingInstancesInput) -> DescribeAutoScalingInstancesOutput {
    use aws_sdk_autoscaling::types::AutoScalingInstanceDetails;
    let details = i
        .instance_ids()
        .iter()
        .filter(|id| *id == A || *id == B)
        .map(|id| {
            let healthy = *id == B || w.a_marked_healthy.load(SeqCst);
            AutoScalingInstanceDetails::builder()
                .instance_id(id)
                .auto_scaling_group_name(GROUP)
                .availability_zone("us-east-1a")
                .lifecycle_state("InService")
                .health_status(if healthy { "HEALTHY" } else { "UNHEALTHY" })
                .protected_from_scale_in(false)
                .build()
        })
        .collect();
    DescribeAutoScalingInstancesOutput::builder().set_auto_scaling_instances(Some(details)).build()
}

fn set_instance_health(w: &World, i: &SetInstanceHealthInput) -> SetInstanceHealthOutput {
    if i.instance_id() == Some(A) && i.health_status() == Some("Healthy") {
        w.a_marked_healthy.store(true, SeqCst);
    }
    SetInstanceHealthOutput::builder().build()
}

fn resume_processes(w: &World, _: &ResumeProcessesInput) -> ResumeProcessesOutput {
    if !(w.running(A) && w.running(B)) {
        w.resumed_too_early.store(true, SeqCst);
    }
    w.resumed.store(true, SeqCst);
    ResumeProcessesOutput::builder().build()
}

fn create_or_update_tags(w: &World, i: &CreateOrUpdateTagsInput) -> CreateOrUpdateTagsOutput {
    if i.tags().iter().any(|t| t.key() == Some(RECOVERING_TAG)) {
        w.tagged.store(true, SeqCst);
    }
    CreateOrUpdateTagsOutput::builder().build()
}

fn delete_tags(w: &World, i: &DeleteTagsInput) -> DeleteTagsOutput {
    if i.tags().iter().any(|t| t.key() == Some(RECOVERING_TAG)) {
        w.tagged.store(false, SeqCst);
    }
    DeleteTagsOutput::builder().build()
}

fn publish(w: &World, i: &PublishInput) -> PublishOutput {
    let mut published = w.published.lock().unwrap();
    published.push((i.subject().unwrap_or_default().to_owned(), i.message().unwrap_or_default().to_owned()));
    PublishOutput::builder().message_id(format!("msg-{}", published.len())).build()
}

fn stale_key() -> String {
    format!("retirement:{A}")
}

/// A condition notified by an earlier invocation that is gone now (A's retirement,
/// repaired by the start): the guard resolves it (PutItem of a tombstone) and says RESOLVED.
fn stale_item() -> HashMap<String, AttributeValue> {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    HashMap::from([
        ("condition".to_owned(), s(&stale_key())),
        ("first_seen".to_owned(), s("2026-11-28T08:00:00Z")),
        ("tier".to_owned(), AttributeValue::N("0".into())),
        ("last_notified".to_owned(), s("2026-11-28T08:00:00Z")),
        ("topics".to_owned(), AttributeValue::L(vec![s(TOPIC)])),
        ("summary".to_owned(), s(&format!("retirement scheduled for {A}"))),
        ("expires_at".to_owned(), AttributeValue::N("1798000000".into())),
    ])
}

fn corrupt_key() -> String {
    format!("unrecoverable:{A}")
}

/// An item this code did not write (tier is not a number): discarded with DeleteItem.
fn corrupt_item() -> HashMap<String, AttributeValue> {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    HashMap::from([("condition".to_owned(), s(&corrupt_key())), ("tier".to_owned(), s("one"))])
}

fn batch_get_item(_: &World, i: &BatchGetItemInput) -> BatchGetItemOutput {
    let keys = i.request_items().and_then(|r| r.get(TABLE)).map(|k| k.keys()).unwrap_or_default();
    let items: Vec<_> = keys
        .iter()
        .filter_map(|k| k.get("condition")?.as_s().ok())
        .filter_map(|k| match k {
            k if *k == stale_key() => Some(stale_item()),
            k if *k == corrupt_key() => Some(corrupt_item()),
            _ => None,
        })
        .collect();
    BatchGetItemOutput::builder().responses(TABLE, items).build()
}

fn scan(_: &World, _: &ScanInput) -> ScanOutput {
    ScanOutput::builder().items(stale_item()).items(corrupt_item()).count(2).scanned_count(2).build()
}

fn put_item(_: &World, _: &PutItemInput) -> PutItemOutput {
    PutItemOutput::builder().build()
}

fn delete_item(_: &World, _: &DeleteItemInput) -> DeleteItemOutput {
    DeleteItemOutput::builder().build()
}

// ---- The matrix's axes ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    DescribeInstances,
    DescribeInstanceStatus,
    StartInstances,
    DescribeAutoScalingGroups,
    DescribeAutoScalingInstances,
    SetInstanceHealth,
    ResumeProcesses,
    CreateOrUpdateTags,
    DeleteTags,
    Publish,
    BatchGetItem,
    Scan,
    PutItem,
    DeleteItem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    Ec2,
    AutoScaling,
    Sns,
    DynamoDb,
}

const OPS: [Op; 14] = [
    Op::DescribeInstances,
    Op::DescribeInstanceStatus,
    Op::StartInstances,
    Op::DescribeAutoScalingGroups,
    Op::DescribeAutoScalingInstances,
    Op::SetInstanceHealth,
    Op::ResumeProcesses,
    Op::CreateOrUpdateTags,
    Op::DeleteTags,
    Op::Publish,
    Op::BatchGetItem,
    Op::Scan,
    Op::PutItem,
    Op::DeleteItem,
];

impl Op {
    fn service(self) -> Service {
        match self {
            Op::DescribeInstances | Op::DescribeInstanceStatus | Op::StartInstances => Service::Ec2,
            Op::Publish => Service::Sns,
            Op::BatchGetItem | Op::Scan | Op::PutItem | Op::DeleteItem => Service::DynamoDb,
            _ => Service::AutoScaling,
        }
    }

    /// The event that reaches the operation: a sweep, except where only a targeted
    /// invocation calls it (memberships and BatchGetItem are not read by a sweep).
    fn event(self) -> Event {
        match self {
            Op::DescribeAutoScalingInstances | Op::BatchGetItem => Event::StateChange,
            _ => Event::Sweep,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Throttling,
    Http5xx,
    Timeout,
    Reset,
    Denied,
    NotFound,
    Capacity,
}

const FAULTS: [Fault; 7] =
    [Fault::Throttling, Fault::Http5xx, Fault::Timeout, Fault::Reset, Fault::Denied, Fault::NotFound, Fault::Capacity];

impl Fault {
    fn title(self) -> &'static str {
        match self {
            Fault::Throttling => "throttling",
            Fault::Http5xx => "HTTP 500",
            Fault::Timeout => "timeout",
            Fault::Reset => "conn. reset",
            Fault::Denied => "access denied",
            Fault::NotFound => "not found",
            Fault::Capacity => "capacity",
        }
    }

    fn applies_to(self, op: Op) -> bool {
        self != Fault::Capacity || op == Op::StartInstances
    }

    /// The modeled error: each service's own code and message.
    fn error(self, op: Op) -> (&'static str, String) {
        use Service::*;
        match (self, op.service()) {
            (Fault::Throttling, Ec2) => ("RequestLimitExceeded", "Request limit exceeded.".into()),
            (Fault::Throttling, AutoScaling | Sns) => ("Throttling", "Rate exceeded".into()),
            (Fault::Throttling, DynamoDb) => {
                ("ThrottlingException", "Rate of requests exceeds the allowed throughput.".into())
            }
            (Fault::Denied, Ec2) => {
                ("UnauthorizedOperation", "You are not authorized to perform this operation.".into())
            }
            (Fault::Denied, AutoScaling) => ("AccessDenied", "User is not authorized to perform this action".into()),
            (Fault::Denied, Sns) => ("AuthorizationError", "User is not authorized to perform: SNS:Publish".into()),
            (Fault::Denied, DynamoDb) => {
                ("AccessDeniedException", "User is not authorized to perform this action".into())
            }
            (Fault::NotFound, Ec2) => ("InvalidInstanceID.NotFound", format!("The instance ID '{A}' does not exist")),
            (Fault::NotFound, AutoScaling) => ("ValidationError", format!("AutoScalingGroup name not found - {GROUP}")),
            (Fault::NotFound, Sns) => ("NotFound", "Topic does not exist".into()),
            (Fault::NotFound, DynamoDb) => ("ResourceNotFoundException", "Requested resource not found".into()),
            (Fault::Capacity, _) => (
                "InsufficientInstanceCapacity",
                "We currently do not have sufficient capacity in the Availability Zone you requested.".into(),
            ),
            (Fault::Http5xx | Fault::Timeout | Fault::Reset, _) => unreachable!("not a modeled error"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Times {
    /// The first call fails; its retries and every later call succeed.
    Once,
    /// Every call fails.
    Always,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Sweep,
    StateChange,
}

impl Event {
    fn json(self) -> Value {
        match self {
            Event::Sweep => json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
            Event::StateChange => json!({
                "id": "7bf73129-1428-4cd3-a780-95db273d1602",
                "source": "aws.ec2",
                "detail-type": "EC2 Instance State-change Notification",
                "account": "123456789012",
                "time": "2026-11-28T10:00:00Z",
                "region": "us-east-1",
                "resources": [format!("arn:aws:ec2:us-east-1:123456789012:instance/{A}")],
                "detail": {"instance-id": A, "state": "stopped"}
            }),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Cell {
    op: Op,
    fault: Fault,
    times: Times,
}

// ---- Rules ----

/// The faulted rule of a cell and how often it was matched by a first attempt
/// (its other responses went to SDK retries).
struct Probe {
    rule: Rule,
    matched: Arc<AtomicUsize>,
}

impl Probe {
    fn retries(&self) -> usize {
        self.rule.num_calls().saturating_sub(self.matched.load(SeqCst))
    }
}

/// The rules of one operation: the cell's faulted rule first (if the cell is
/// about this operation), then the world's answer.
///
/// A computed rule cannot serve an SDK retry (the mock passes no input to it), so
/// the faulted rule records the input its matcher sees and serves the retry's
/// success from that; for `Once` it matches the first call only, so concurrent
/// calls of the same operation go to the world's rule.
macro_rules! op_rules {
    ($cell:expr, $world:expr, $rules:expr, $probe:expr, $op:expr, $operation:expr, $input:ty, $error:ty, $answer:path, $targets:expr) => {{
        let cell: Option<Cell> = $cell;
        if let Some(cell) = cell.filter(|c| c.op == $op) {
            let slot: Arc<Mutex<Option<$input>>> = Default::default();
            let matched = Arc::new(AtomicUsize::new(0));
            let (recorded, count) = (slot.clone(), matched.clone());
            let targets = $targets;
            let once = cell.times == Times::Once;
            let seq = mock!($operation)
                .match_requests(move |i: &$input| {
                    if !targets(i) || (once && count.load(SeqCst) > 0) {
                        return false;
                    }
                    *recorded.lock().unwrap() = Some(i.clone());
                    count.fetch_add(1, SeqCst);
                    true
                })
                .sequence();
            let seq = match cell.fault {
                Fault::Http5xx => seq.http_status(500, None),
                Fault::Timeout => seq.http_response(|| marker("timeout")),
                Fault::Reset => seq.http_response(|| marker("reset")),
                modeled => {
                    let (code, message) = modeled.error($op);
                    seq.error(move || {
                        <$error>::generic(ErrorMetadata::builder().code(code).message(message.clone()).build())
                    })
                }
            };
            let rule = match cell.times {
                Times::Once => {
                    let w = $world.clone();
                    seq.output(move || $answer(&w, slot.lock().unwrap().as_ref().expect("input recorded"))).build()
                }
                Times::Always => seq.repeatedly().build(),
            };
            $probe = Some(Probe { rule: rule.clone(), matched });
            $rules.entry($op).or_default().push(rule);
        }
        let w = $world.clone();
        $rules.entry($op).or_default().push(mock!($operation).then_compute_output(move |i: &$input| $answer(&w, i)));
    }};
}

/// Every request of an operation.
fn any<T>(_: &T) -> bool {
    true
}

/// Every rule of a run, by operation.
struct Rules {
    by_op: BTreeMap<Op, Vec<Rule>>,
    probe: Option<Probe>,
}

impl Rules {
    #[rustfmt::skip]
    fn new(world: &Arc<World>, cell: Option<Cell>) -> Self {
        let mut by_op: BTreeMap<Op, Vec<Rule>> = BTreeMap::new();
        let mut probe = None;
        {
            op_rules!(cell, world, by_op, probe, Op::DescribeInstances, Ec2::describe_instances, DescribeInstancesInput, DescribeInstancesError, describe_instances, any);
            op_rules!(cell, world, by_op, probe, Op::DescribeInstanceStatus, Ec2::describe_instance_status, DescribeInstanceStatusInput, DescribeInstanceStatusError, describe_instance_status, any);
            // Only A's start fails, so that C (another unit of work) shows that the rest goes on.
            op_rules!(cell, world, by_op, probe, Op::StartInstances, Ec2::start_instances, StartInstancesInput, StartInstancesError, start_instances,
                |i: &StartInstancesInput| i.instance_ids().iter().any(|id| id == A));
            op_rules!(cell, world, by_op, probe, Op::DescribeAutoScalingGroups, Asg::describe_auto_scaling_groups, DescribeAutoScalingGroupsInput, DescribeAutoScalingGroupsError, describe_groups, any);
            op_rules!(cell, world, by_op, probe, Op::DescribeAutoScalingInstances, Asg::describe_auto_scaling_instances, DescribeAutoScalingInstancesInput, DescribeAutoScalingInstancesError, describe_memberships, any);
            op_rules!(cell, world, by_op, probe, Op::SetInstanceHealth, Asg::set_instance_health, SetInstanceHealthInput, SetInstanceHealthError, set_instance_health, any);
            op_rules!(cell, world, by_op, probe, Op::ResumeProcesses, Asg::resume_processes, ResumeProcessesInput, ResumeProcessesError, resume_processes, any);
            op_rules!(cell, world, by_op, probe, Op::CreateOrUpdateTags, Asg::create_or_update_tags, CreateOrUpdateTagsInput, CreateOrUpdateTagsError, create_or_update_tags, any);
            op_rules!(cell, world, by_op, probe, Op::DeleteTags, Asg::delete_tags, DeleteTagsInput, DeleteTagsError, delete_tags, any);
            op_rules!(cell, world, by_op, probe, Op::Publish, Sns::publish, PublishInput, PublishError, publish, any);
            op_rules!(cell, world, by_op, probe, Op::BatchGetItem, Ddb::batch_get_item, BatchGetItemInput, BatchGetItemError, batch_get_item, any);
            op_rules!(cell, world, by_op, probe, Op::Scan, Ddb::scan, ScanInput, ScanError, scan, any);
            op_rules!(cell, world, by_op, probe, Op::PutItem, Ddb::put_item, PutItemInput, PutItemError, put_item, any);
            op_rules!(cell, world, by_op, probe, Op::DeleteItem, Ddb::delete_item, DeleteItemInput, DeleteItemError, delete_item, any);
        }
        Rules { by_op, probe }
    }

    fn of(&self, service: Service) -> Vec<Rule> {
        self.by_op.iter().filter(|(op, _)| op.service() == service).flat_map(|(_, r)| r.iter().cloned()).collect()
    }

    /// Responses served for an operation (first attempts and retries, all rules).
    fn calls(&self, op: Op) -> usize {
        self.by_op.get(&op).map(|rules| rules.iter().map(Rule::num_calls).sum()).unwrap_or(0)
    }
}

type MockGuard = Guard<AwsInventory, AwsActuator, SnsNotifier, DynamoStateStore>;

fn guard(rules: &Rules) -> MockGuard {
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, &rules.of(Service::Ec2), |c| c
        .retry_config(retries())
        .timeout_config(timeouts())
        .sleep_impl(TestSleep)
        .http_client(fault_http_client()));
    let autoscaling = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, &rules.of(Service::AutoScaling), |c| c
        .retry_config(retries())
        .timeout_config(timeouts())
        .sleep_impl(TestSleep)
        .http_client(fault_http_client()));
    let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, &rules.of(Service::Sns), |c| c
        .retry_config(retries())
        .timeout_config(timeouts())
        .sleep_impl(TestSleep)
        .http_client(fault_http_client()));
    let dynamodb = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &rules.of(Service::DynamoDb), |c| c
        .retry_config(retries())
        .timeout_config(timeouts())
        .sleep_impl(TestSleep)
        .http_client(fault_http_client()));
    let config = config_with(&[("POLICY", "recover"), ("WAIT_SECONDS", "0"), ("STATE_TABLE", TABLE)]).unwrap();
    Guard {
        notifier: SnsNotifier { sns, delivery: config.delivery.clone() },
        config,
        // No proactive moves here: the alarms client is never called.
        inventory: AwsInventory {
            ec2: ec2.clone(),
            autoscaling: autoscaling.clone(),
            cloudwatch: mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, &[]),
        },
        actuator: AwsActuator { ec2, autoscaling },
        state: DynamoStateStore { dynamodb, table: TABLE.into() },
        region: "us-east-1".into(),
    }
}

fn now() -> DateTime<Utc> {
    "2026-11-28T12:00:00Z".parse().unwrap()
}

// ---- Running a cell and classifying what happened ----

/// What AWS looks like after an invocation, and what the invocation said.
#[derive(Clone, Debug, PartialEq)]
struct Observed {
    started: BTreeSet<String>,
    a_marked_healthy: bool,
    resumed: bool,
    tagged: bool,
    /// (action, target, result) of every step.
    outcomes: Vec<(String, String, &'static str)>,
    subjects: Vec<String>,
    deduplicated: bool,
    resolved: Vec<String>,
}

struct Run {
    result: Result<Result<Report, HandlerError>, String>,
    world: Arc<World>,
    rules: Rules,
}

fn step_result(s: &StepStatus) -> &'static str {
    match s {
        StepStatus::Done { .. } => "done",
        StepStatus::DryRun { .. } => "dry_run",
        StepStatus::Gone { .. } => "gone",
        StepStatus::Failed { .. } => "failed",
        StepStatus::NotAttempted { .. } => "not_attempted",
    }
}

impl Run {
    async fn go(event: Event, cell: Option<Cell>) -> Run {
        let world = Arc::new(World::default());
        let rules = Rules::new(&world, cell);
        let g = guard(&rules);
        let raw = event.json();
        let result = AssertUnwindSafe(g.handle(&raw, now())).catch_unwind().await.map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        });
        Run { result, world, rules }
    }

    fn observed(&self) -> Option<Observed> {
        let Ok(Ok(report)) = &self.result else { return None };
        Some(Observed {
            started: self.world.started.lock().unwrap().clone(),
            a_marked_healthy: self.world.a_marked_healthy.load(SeqCst),
            resumed: self.world.resumed.load(SeqCst),
            tagged: self.world.tagged.load(SeqCst),
            outcomes: report
                .outcomes
                .iter()
                .map(|o| (o.action.name().to_owned(), o.action.target(), step_result(&o.status)))
                .collect(),
            subjects: self.world.published.lock().unwrap().iter().map(|(s, _)| s.clone()).collect(),
            deduplicated: report.deduplicated,
            resolved: report.resolved.clone(),
        })
    }

    /// The outcome class of this run, compared with the clean run of the same event.
    fn class(&self, cell: Cell, baseline: &Observed) -> String {
        let report = match &self.result {
            Err(panic) => return format!("PANIC: {panic}"),
            Ok(Err(e)) => return format!("fails: {}", e.error_type()),
            Ok(Ok(report)) => report,
        };
        let Some(probe) = &self.rules.probe else { return "no fault".into() };
        if probe.matched.load(SeqCst) == 0 {
            return "not exercised".into();
        }
        let seen = self.observed().expect("an Ok run is observed");
        if !report.unread.is_empty() {
            let told = self.world.published.lock().unwrap().iter().any(|(_, m)| m.contains("COULD NOT READ"));
            return if told { "read incomplete, notified".into() } else { "read incomplete, NOT notified".into() };
        }
        if report.outcomes.iter().any(|o| o.is_failed()) {
            return "per-resource failure".into();
        }
        let repaired_as_baseline = seen.started == baseline.started
            && seen.a_marked_healthy == baseline.a_marked_healthy
            && seen.resumed == baseline.resumed
            && seen.tagged == baseline.tagged;
        if report.outcomes.iter().any(|o| matches!(o.status, StepStatus::Gone { .. })) {
            return if repaired_as_baseline { "gone, then done".into() } else { "gone, skipped".into() };
        }
        if seen == *baseline {
            return if cell.times == Times::Once && probe.retries() > 0 {
                "retried → ok".into()
            } else {
                "absorbed".into()
            };
        }
        if repaired_as_baseline && !seen.subjects.is_empty() {
            return if seen.deduplicated { "notified, state degraded".into() } else { "notified, no dedup".into() };
        }
        format!("other: {seen:?}")
    }
}

/// Checks that hold in every cell, whatever its class; returns what broke.
fn invariants(cell: Cell, run: &Run, class: &str) -> Vec<String> {
    let mut broken = vec![];
    if let Err(panic) = &run.result {
        broken.push(format!("panicked: {panic}"));
        return broken;
    }
    if run.world.resumed_too_early.load(SeqCst) {
        broken.push("ResumeProcesses while a member was not running".into());
    }
    if let Ok(Ok(report)) = &run.result {
        let start_incomplete = report.outcomes.iter().any(|o| {
            matches!(&o.action, retirement_guard::policy::Action::StartInstance { instance, .. } if instance.as_str() == A)
                && !o.is_done()
        });
        if start_incomplete
            && run.rules.calls(Op::ResumeProcesses) > 0
            && !run.world.started.lock().unwrap().contains(A)
        {
            broken.push(format!(
                "ResumeProcesses called {} time(s) after a failed start of A",
                run.rules.calls(Op::ResumeProcesses)
            ));
        }
        if class == "per-resource failure" {
            let published = run.world.published.lock().unwrap();
            // The body, always, and the subject (see the regression test below).
            if !published.iter().any(|(subject, m)| m.contains("FAILED") && subject.contains("FAILED")) {
                broken.push("per-resource failure not notified with FAILED".into());
            }
            // The rest went on: C is a unit of its own in the sweep.
            if cell.op.event() == Event::Sweep && !run.world.started.lock().unwrap().contains(C) {
                broken.push("C was not started: the rest of the work did not go on".into());
            }
        }
        // What a sweep could not read is left alone: a group it could not read is not written.
        if report.unread.iter().any(|u| u.part.starts_with("Auto Scaling groups")) {
            let writes_to_group =
                report.outcomes.iter().any(|o| o.action.group().is_some_and(|g| g.as_str() == "es-data"));
            if writes_to_group || run.world.started.lock().unwrap().contains(A) {
                broken.push("a group the sweep could not read was written to".into());
            }
        }
        if !report.unread.is_empty() && !report.resolved.is_empty() {
            broken.push(format!("an incomplete sweep resolved {:?}", report.resolved));
        }
        if cell.op.service() == Service::DynamoDb && report.notifications.is_empty() {
            broken.push("a state store fault silenced the notice".into());
        }
        if cell.op == Op::Scan && cell.times == Times::Always && report.deduplicated {
            broken.push("Scan failed but the report claims deduplication".into());
        }
    }
    if let Ok(Err(e)) = &run.result
        && (e.error_type().is_empty() || !e.to_string().contains(&format!("{:?}", cell.op)))
    {
        broken.push(format!("error not visible enough: {} / {e}", e.error_type()));
    }
    broken
}

// ---- The expected table ----

/// Short names for the classes, to keep the table readable.
const RETRIED: &str = "retried → ok";
const INV: &str = "fails: InventoryFailed";
const NOTIFY: &str = "fails: NotifyFailed";
const PER: &str = "per-resource failure";
const GONE: &str = "gone, skipped";
const ABSORBED: &str = "absorbed";
const NO_DEDUP: &str = "notified, no dedup";
const DEGRADED: &str = "notified, state degraded";
const PARTIAL: &str = "read incomplete, notified";
const NA: &str = "";

/// Expected class per operation and mode, in the order of `FAULTS`:
/// throttling, 5xx, timeout, reset, denied, not found, capacity.
#[rustfmt::skip]
const EXPECTED: [(Op, Times, [&str; 7]); 28] = [
    (Op::DescribeInstances,            Times::Once,   [RETRIED, RETRIED, RETRIED, RETRIED, PARTIAL,  PARTIAL,   NA]),
    (Op::DescribeInstances,            Times::Always, [PARTIAL, PARTIAL, PARTIAL, PARTIAL, PARTIAL,  PARTIAL,   NA]),
    (Op::DescribeInstanceStatus,       Times::Once,   [RETRIED, RETRIED, RETRIED, RETRIED, PARTIAL,  PARTIAL,   NA]),
    (Op::DescribeInstanceStatus,       Times::Always, [INV,     INV,     INV,     INV,     INV,      PARTIAL,   NA]),
    // A batch AWS refuses once is retried one instance at a time: the same end result.
    (Op::StartInstances,               Times::Once,   [RETRIED, RETRIED, RETRIED, RETRIED, ABSORBED, ABSORBED,  ABSORBED]),
    (Op::StartInstances,               Times::Always, [PER,     PER,     PER,     PER,     PER,      GONE,      PER]),
    (Op::DescribeAutoScalingGroups,    Times::Once,   [RETRIED, RETRIED, RETRIED, RETRIED, PARTIAL,  PARTIAL,   NA]),
    (Op::DescribeAutoScalingGroups,    Times::Always, [PARTIAL, PARTIAL, PARTIAL, PARTIAL, PARTIAL,  PARTIAL,   NA]),
    (Op::DescribeAutoScalingInstances, Times::Once,   [RETRIED, RETRIED, RETRIED, RETRIED, INV,      INV,       NA]),
    (Op::DescribeAutoScalingInstances, Times::Always, [INV,     INV,     INV,     INV,     INV,      INV,       NA]),
    (Op::SetInstanceHealth,            Times::Once,   [RETRIED, RETRIED, RETRIED, RETRIED, PER,      PER,       NA]),
    (Op::SetInstanceHealth,            Times::Always, [PER,     PER,     PER,     PER,     PER,      PER,       NA]),
    (Op::ResumeProcesses,              Times::Once,   [RETRIED, RETRIED, RETRIED, RETRIED, PER,      PER,       NA]),
    (Op::ResumeProcesses,              Times::Always, [PER,     PER,     PER,     PER,     PER,      PER,       NA]),
    (Op::CreateOrUpdateTags,           Times::Once,   [RETRIED, RETRIED, RETRIED, RETRIED, PER,      PER,       NA]),
    (Op::CreateOrUpdateTags,           Times::Always, [PER,     PER,     PER,     PER,     PER,      PER,       NA]),
    (Op::DeleteTags,                   Times::Once,   [RETRIED, RETRIED, RETRIED, RETRIED, PER,      PER,       NA]),
    (Op::DeleteTags,                   Times::Always, [PER,     PER,     PER,     PER,     PER,      PER,       NA]),
    (Op::Publish,                      Times::Once,   [RETRIED, RETRIED, RETRIED, RETRIED, NOTIFY,   NOTIFY,    NA]),
    (Op::Publish,                      Times::Always, [NOTIFY,  NOTIFY,  NOTIFY,  NOTIFY,  NOTIFY,   NOTIFY,    NA]),
    (Op::BatchGetItem,                 Times::Once,   [RETRIED, RETRIED, RETRIED, RETRIED, NO_DEDUP, NO_DEDUP,  NA]),
    (Op::BatchGetItem,                 Times::Always, [NO_DEDUP, NO_DEDUP, NO_DEDUP, NO_DEDUP, NO_DEDUP, NO_DEDUP, NA]),
    (Op::Scan,                         Times::Once,   [RETRIED, RETRIED, RETRIED, RETRIED, NO_DEDUP, NO_DEDUP,  NA]),
    (Op::Scan,                         Times::Always, [NO_DEDUP, NO_DEDUP, NO_DEDUP, NO_DEDUP, NO_DEDUP, NO_DEDUP, NA]),
    (Op::PutItem,                      Times::Once,   [RETRIED, RETRIED, RETRIED, RETRIED, ABSORBED, ABSORBED,  NA]),
    (Op::PutItem,                      Times::Always, [DEGRADED, DEGRADED, DEGRADED, DEGRADED, DEGRADED, DEGRADED, NA]),
    (Op::DeleteItem,                   Times::Once,   [RETRIED, RETRIED, RETRIED, RETRIED, ABSORBED, ABSORBED,  NA]),
    (Op::DeleteItem,                   Times::Always, [ABSORBED, ABSORBED, ABSORBED, ABSORBED, ABSORBED, ABSORBED, NA]),
];

fn expected(cell: Cell) -> &'static str {
    let (_, _, row) =
        EXPECTED.iter().find(|(op, times, _)| *op == cell.op && *times == cell.times).expect("a row per op and mode");
    row[FAULTS.iter().position(|f| *f == cell.fault).expect("a column per fault")]
}

// ---- The tests ----

#[tokio::test]
async fn clean_runs_repair_everything_and_notify() {
    for event in [Event::Sweep, Event::StateChange] {
        let run = Run::go(event, None).await;
        let seen =
            run.observed().unwrap_or_else(|| panic!("{event:?}: {:?}", run.result.as_ref().map(|r| r.as_ref().err())));
        let mut want_started = BTreeSet::from([A.to_owned()]);
        if event == Event::Sweep {
            want_started.insert(C.to_owned());
        }
        assert_eq!(seen.started, want_started, "{event:?}");
        assert!(seen.a_marked_healthy && seen.resumed && !seen.tagged, "{event:?}: {seen:?}");
        assert!(seen.outcomes.iter().all(|(_, _, r)| *r == "done"), "{event:?}: {seen:?}");
        assert_eq!(seen.resolved, [stale_key()], "{event:?}");
        assert!(seen.deduplicated);
        assert_eq!(seen.subjects.len(), 2, "a problem notice and a RECOVERED notice: {seen:?}");
        assert!(!run.world.resumed_too_early.load(SeqCst));
        // Every write went through once; the state store was read the way the scope reads it.
        assert_eq!(run.rules.calls(Op::StartInstances), 1, "one call starts them all");
        for op in [Op::CreateOrUpdateTags, Op::SetInstanceHealth, Op::ResumeProcesses, Op::DeleteTags, Op::DeleteItem] {
            assert_eq!(run.rules.calls(op), 1, "{event:?} {op:?}");
        }
        // A sweep's later rounds read only what is under repair: es-data and C, by name and id.
        let (read, unread) = match event {
            Event::Sweep => (Op::Scan, [Op::BatchGetItem, Op::BatchGetItem]),
            Event::StateChange => (Op::BatchGetItem, [Op::Scan, Op::Scan]),
        };
        assert!(run.rules.calls(read) > 0);
        assert!(unread.iter().all(|op| run.rules.calls(*op) == 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_under_every_fault_ends_in_the_expected_class() {
    let baselines: BTreeMap<&str, Observed> = futures::future::join_all(
        [Event::Sweep, Event::StateChange].map(|e| async move { (format!("{e:?}"), Run::go(e, None).await) }),
    )
    .await
    .into_iter()
    .map(|(e, run)| (if e == "Sweep" { "sweep" } else { "event" }, run.observed().expect("clean run is Ok")))
    .collect();

    let cells: Vec<Cell> = OPS
        .iter()
        .flat_map(|&op| {
            FAULTS
                .iter()
                .filter(move |f| f.applies_to(op))
                .flat_map(move |&fault| [Times::Once, Times::Always].map(|times| Cell { op, fault, times }))
        })
        .collect();
    // Transport timeouts really wait for the attempt timeout: run the cells side by side.
    let runs: Vec<(Cell, Run)> = futures::stream::iter(cells.iter().copied())
        .map(|cell| async move { (cell, Run::go(cell.op.event(), Some(cell)).await) })
        .buffer_unordered(64)
        .collect()
        .await;

    let mut observed: BTreeMap<(Op, &str), Vec<String>> = BTreeMap::new();
    let mut failures = vec![];
    for (cell, run) in &runs {
        let baseline = &baselines[if cell.op.event() == Event::Sweep { "sweep" } else { "event" }];
        let class = run.class(*cell, baseline);
        for broken in invariants(*cell, run, &class) {
            failures.push(format!("{:?} {} {:?}: {broken}", cell.op, cell.fault.title(), cell.times));
        }
        if class != expected(*cell) {
            failures.push(format!(
                "{:?} {} {:?}: expected {:?}, observed {:?}",
                cell.op,
                cell.fault.title(),
                cell.times,
                expected(*cell),
                class
            ));
        }
        let mode = if cell.times == Times::Once { "once" } else { "always" };
        let row = observed.entry((cell.op, mode)).or_insert_with(|| vec![String::new(); FAULTS.len()]);
        row[FAULTS.iter().position(|f| *f == cell.fault).unwrap()] = class;
    }

    let mut table = String::from("| operation | event | fault occurs |");
    for f in FAULTS {
        table.push_str(&format!(" {} |", f.title()));
    }
    table.push_str(&format!("\n|---|---|---|{}\n", "---|".repeat(FAULTS.len())));
    for op in OPS {
        for mode in ["once", "always"] {
            let event = if op.event() == Event::Sweep { "sweep" } else { "state change" };
            let row = &observed[&(op, mode)];
            let cells: Vec<&str> = row.iter().map(|c| if c.is_empty() { "n/a" } else { c.as_str() }).collect();
            table.push_str(&format!("| {op:?} | {event} | {mode} | {} |\n", cells.join(" | ")));
        }
    }
    println!("{table}\n{} cells", runs.len());
    assert_eq!(runs.len(), 14 * 6 * 2 + 2);
    assert!(failures.is_empty(), "{} of {} cells wrong:\n{}", failures.len(), runs.len(), failures.join("\n"));
}

// ---- Defects the matrix found, fixed; kept as regression tests ----

/// The subject used to append "N FAILED" last and cut at its end, so FAILED was cut off.
#[tokio::test]
async fn a_failure_is_named_in_the_subject_even_when_the_subject_is_cut() {
    let cell = Cell { op: Op::DeleteTags, fault: Fault::Denied, times: Times::Always };
    let run = Run::go(Event::Sweep, Some(cell)).await;
    let published = run.world.published.lock().unwrap();
    assert!(published[0].1.contains("FAILED"));
    assert!(published[0].0.contains("FAILED"), "{}", published[0].0);
}

/// Publish fails after the guard repaired everything: the claims used to be released
/// and the retry saw nothing open, so nobody was told what the guard did.
#[tokio::test]
async fn a_failed_publish_after_a_repair_is_notified_by_the_retry() {
    use retirement_guard::testing::{guard as memory_guard, sent, sweep};
    let mut g = memory_guard(retirement_guard::testing::story(), &[("POLICY", "recover")]);
    g.notifier.fail = true;
    assert_eq!(g.handle(&sweep(), now()).await.unwrap_err().error_type(), "NotifyFailed");
    assert!(g.actuator.calls().iter().any(|c| c.starts_with("resume")), "the repair happened");
    g.notifier.fail = false;
    g.handle(&sweep(), now() + chrono::Duration::minutes(1)).await.unwrap();
    assert!(!sent(&g).is_empty(), "the Lambda retry must report the starts and the resume");
}
