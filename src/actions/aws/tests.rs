//! Adapter tests for `AwsActuator`: real EC2 and Auto Scaling SDK clients whose
//! HTTP layer is replaced by `aws-smithy-mocks` rules (request shapes, the state
//! StartInstances reports, error classification, SDK retries of transient failures).

use super::AwsActuator;
use crate::actions::Actuator;
use crate::domain::{AsgName, InstanceId};
use crate::error::{AwsFailure, FailureKind};
use aws_sdk_autoscaling::operation::resume_processes::ResumeProcessesError;
use aws_sdk_autoscaling::types::error::ResourceContentionFault;
use aws_sdk_ec2::operation::start_instances::{StartInstancesError, StartInstancesOutput};
use aws_sdk_ec2::types::{InstanceState, InstanceStateChange, InstanceStateName};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use std::time::Duration;

type Ec2 = aws_sdk_ec2::Client;
type Asg = aws_sdk_autoscaling::Client;

const ID: &str = "i-0abc12345def67890";
const GROUP: &str = "es-data";

/// Backoff between SDK retries resolves at once, so retry tests take no wall time.
#[derive(Debug)]
struct NoWait;

impl aws_sdk_ec2::config::AsyncSleep for NoWait {
    fn sleep(&self, _: Duration) -> aws_sdk_ec2::config::Sleep {
        aws_sdk_ec2::config::Sleep::new(std::future::ready(()))
    }
}

/// An actuator whose clients answer only the given rules (any other call panics).
/// Retries are set explicitly (standard, 3 attempts) rather than left to the
/// behaviour version's default.
fn actuator(ec2_rules: &[&Rule], asg_rules: &[&Rule]) -> AwsActuator {
    let retries = || RetryConfig::standard().with_max_attempts(3);
    AwsActuator {
        ec2: mock_client!(aws_sdk_ec2, RuleMode::MatchAny, ec2_rules, |c| c.retry_config(retries()).sleep_impl(NoWait)),
        autoscaling: mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, asg_rules, |c| c
            .retry_config(retries())
            .sleep_impl(NoWait)),
    }
}

fn id() -> InstanceId {
    InstanceId::parse(ID).unwrap()
}

fn group() -> AsgName {
    AsgName::parse(GROUP).unwrap()
}

fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn state_change(id: &str, now: InstanceStateName) -> InstanceStateChange {
    InstanceStateChange::builder()
        .instance_id(id)
        .previous_state(InstanceState::builder().name(InstanceStateName::Stopped).build())
        .current_state(InstanceState::builder().name(now).build())
        .build()
}

/// StartInstances failing with `code`, as the adapter reports it.
async fn start_failure(code: &'static str) -> (AwsFailure, usize) {
    let rule = mock!(Ec2::start_instances).then_error(move || StartInstancesError::generic(meta(code, "refused")));
    let failure = actuator(&[&rule], &[]).start(&[id()]).await.unwrap_err();
    (failure, rule.num_calls())
}

// ---- StartInstances ----

#[tokio::test]
async fn start_asks_for_every_instance_in_one_call_and_returns_the_state_of_each() {
    const OTHER: &str = "i-0000000000000ffff";
    let rule = mock!(Ec2::start_instances).match_requests(|r| r.instance_ids() == [ID, OTHER]).then_output(|| {
        StartInstancesOutput::builder()
            .starting_instances(state_change(OTHER, InstanceStateName::Running))
            .starting_instances(state_change(ID, InstanceStateName::Pending))
            .build()
    });

    let states = actuator(&[&rule], &[]).start(&[id(), InstanceId::parse(OTHER).unwrap()]).await.unwrap();

    let find = |i: &str| states.iter().find(|(id, _)| id.as_str() == i).map(|(_, s)| s.as_str());
    assert_eq!((find(ID), find(OTHER)), (Some("pending"), Some("running")));
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn start_leaves_out_an_instance_the_answer_omits() {
    let rule = mock!(Ec2::start_instances).then_output(|| StartInstancesOutput::builder().build());

    let states = actuator(&[&rule], &[]).start(&[id()]).await.unwrap();

    assert!(states.is_empty());
}

#[tokio::test]
async fn start_errors_are_classified_by_their_code() {
    let cases = [
        ("IncorrectInstanceState", FailureKind::WrongState),
        ("InvalidInstanceID.NotFound", FailureKind::NotFound),
        ("InsufficientInstanceCapacity", FailureKind::Capacity),
        ("UnauthorizedOperation", FailureKind::Denied),
        ("UnsupportedOperation", FailureKind::Unsupported),
    ];
    for (code, kind) in cases {
        let (failure, calls) = start_failure(code).await;
        assert_eq!(
            failure,
            AwsFailure { operation: "StartInstances", kind, code: Some(code.into()), message: "refused".into() },
            "{code}"
        );
        // None of these is worth an SDK retry.
        assert_eq!(calls, 1, "{code}");
    }
}

#[tokio::test]
async fn start_error_body_from_the_wire_is_parsed_and_classified() {
    // EC2 query protocol error document, through the SDK's real deserializer.
    let body = format!(
        "<Response><Errors><Error><Code>IncorrectInstanceState</Code>\
         <Message>The instance '{ID}' is not in a state from which it can be started.</Message>\
         </Error></Errors><RequestID>5c6a3b4e-0000-4000-8000-000000000000</RequestID></Response>"
    );
    let rule = mock!(Ec2::start_instances)
        .then_http_response(move || HttpResponse::new(StatusCode::try_from(400).unwrap(), SdkBody::from(body.clone())));

    let failure = actuator(&[&rule], &[]).start(&[id()]).await.unwrap_err();

    assert_eq!(failure.kind, FailureKind::WrongState);
    assert_eq!(failure.code.as_deref(), Some("IncorrectInstanceState"));
    assert_eq!(failure.message, format!("The instance '{ID}' is not in a state from which it can be started."));
}

#[tokio::test]
async fn start_answering_500_is_transient_after_the_sdk_retries() {
    let rule = mock!(Ec2::start_instances)
        .then_http_response(|| HttpResponse::new(StatusCode::try_from(500).unwrap(), SdkBody::empty()));

    let failure = actuator(&[&rule], &[]).start(&[id()]).await.unwrap_err();

    assert_eq!(failure.operation, "StartInstances");
    assert_eq!(failure.kind, FailureKind::Transient);
    assert_eq!(rule.num_calls(), 3, "one call and two SDK retries");
}

#[tokio::test]
async fn start_succeeds_when_a_500_is_followed_by_an_answer() {
    let rule = mock!(Ec2::start_instances)
        .sequence()
        .http_status(503, None)
        .output(|| {
            StartInstancesOutput::builder().starting_instances(state_change(ID, InstanceStateName::Pending)).build()
        })
        .build();

    let states = actuator(&[&rule], &[]).start(&[id()]).await.unwrap();

    assert_eq!(states, [(id(), "pending".to_owned())]);
    assert_eq!(rule.num_calls(), 2);
}

// ---- Auto Scaling writes ----

#[tokio::test]
async fn set_healthy_marks_healthy_without_the_grace_period() {
    let rule = mock!(Asg::set_instance_health)
        .match_requests(|r| {
            r.instance_id() == Some(ID)
                && r.health_status() == Some("Healthy")
                && r.should_respect_grace_period() == Some(false)
        })
        .then_output(|| {
            aws_sdk_autoscaling::operation::set_instance_health::SetInstanceHealthOutput::builder().build()
        });

    actuator(&[], &[&rule]).set_healthy(&id()).await.unwrap();

    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn resume_sends_exactly_the_processes_given() {
    let rule = mock!(Asg::resume_processes)
        .match_requests(|r| {
            r.auto_scaling_group_name() == Some(GROUP) && r.scaling_processes() == ["HealthCheck", "ReplaceUnhealthy"]
        })
        .then_output(|| aws_sdk_autoscaling::operation::resume_processes::ResumeProcessesOutput::builder().build());
    let processes = ["HealthCheck".to_owned(), "ReplaceUnhealthy".to_owned()];

    actuator(&[], &[&rule]).resume(&group(), &processes).await.unwrap();

    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn resume_contention_is_transient() {
    let rule = mock!(Asg::resume_processes).then_error(|| {
        ResumeProcessesError::ResourceContentionFault(
            ResourceContentionFault::builder()
                .message("You already have a pending update to an Auto Scaling resource.")
                .meta(meta("ResourceContentionFault", "You already have a pending update to an Auto Scaling resource."))
                .build(),
        )
    });

    let failure = actuator(&[], &[&rule]).resume(&group(), &["Launch".into()]).await.unwrap_err();

    assert_eq!(failure.operation, "ResumeProcesses");
    assert_eq!(failure.kind, FailureKind::Transient);
    assert_eq!(failure.code.as_deref(), Some("ResourceContentionFault"));
    // Transient for the guard (Lambda may retry later), but the SDK does not retry it itself.
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn resume_validation_error_is_not_treated_as_gone() {
    // Auto Scaling reports a missing group as ValidationError; classification goes by
    // code only, so this is `Other`, not `NotFound`.
    let rule = mock!(Asg::resume_processes).then_error(|| {
        ResumeProcessesError::generic(meta("ValidationError", "AutoScalingGroup name not found - es-data"))
    });

    let failure = actuator(&[], &[&rule]).resume(&group(), &["Launch".into()]).await.unwrap_err();

    assert_eq!(
        failure,
        AwsFailure {
            operation: "ResumeProcesses",
            kind: FailureKind::Other,
            code: Some("ValidationError".into()),
            message: "AutoScalingGroup name not found - es-data".into(),
        }
    );
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn tag_groups_writes_one_tag_per_group_in_one_call_never_propagated() {
    let rule = mock!(Asg::create_or_update_tags)
        .match_requests(|r| {
            let [tag, other] = r.tags() else { return false };
            tag.resource_id() == Some(GROUP)
                && tag.resource_type() == Some("auto-scaling-group")
                && tag.key() == Some("retirement-guard:recovering")
                && tag.value() == Some("2026-11-20T10:00:00Z")
                && tag.propagate_at_launch() == Some(false)
                && other.resource_id() == Some("web")
                && other.value() == Some("v2")
        })
        .then_output(|| {
            aws_sdk_autoscaling::operation::create_or_update_tags::CreateOrUpdateTagsOutput::builder().build()
        });

    let tags = [(group(), "2026-11-20T10:00:00Z".to_owned()), (AsgName::parse("web").unwrap(), "v2".to_owned())];
    actuator(&[], &[&rule]).tag_groups("retirement-guard:recovering", &tags).await.unwrap();

    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn untag_groups_deletes_only_that_key_on_those_groups() {
    let rule = mock!(Asg::delete_tags)
        .match_requests(|r| {
            let [tag] = r.tags() else { return false };
            tag.resource_id() == Some(GROUP)
                && tag.resource_type() == Some("auto-scaling-group")
                && tag.key() == Some("retirement-guard:recovering")
                && tag.value().is_none()
        })
        .then_output(|| aws_sdk_autoscaling::operation::delete_tags::DeleteTagsOutput::builder().build());

    actuator(&[], &[&rule]).untag_groups("retirement-guard:recovering", &[group()]).await.unwrap();

    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn tag_group_denied_is_classified_as_denied() {
    let rule = mock!(Asg::create_or_update_tags).then_error(|| {
        aws_sdk_autoscaling::operation::create_or_update_tags::CreateOrUpdateTagsError::generic(meta(
            "AccessDenied",
            "User is not authorized to perform: autoscaling:CreateOrUpdateTags",
        ))
    });

    let failure = actuator(&[], &[&rule]).tag_groups("k", &[(group(), "v".to_owned())]).await.unwrap_err();

    assert_eq!(failure.operation, "CreateOrUpdateTags");
    assert_eq!(failure.kind, FailureKind::Denied);
}
