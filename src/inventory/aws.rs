//! `AwsInventory`: the inventory port over the AWS SDK. DescribeInstances
//! (instance-id filter, 200 values per call, so unknown ids are simply absent; or
//! an instance-state-name filter), DescribeInstanceStatus (≤100 ids per call, or
//! filtered by scheduled-event code), DescribeAutoScalingGroups
//! (≤100 names per page), DescribeAutoScalingInstances (≤50 ids per call),
//! DescribeAlarms (metric and composite, ≤100 names per call), all through the SDK
//! paginators, chunks run concurrently (at most 4 at once).

use super::{EVENT_CODES, InstanceStatus, Inventory, Listing, NOT_RUNNING};
use crate::domain::{
    Alarm, AsgName, GROUP_TAG, GroupSnapshot, InstanceId, InstanceSnapshot, InstanceState, Member, RootDevice,
    ScheduledEvent, StatusChecks, SuspendedProcess,
};
use crate::error::{AwsFailure, FailureKind};
use aws_sdk_autoscaling::types::AutoScalingGroup;
use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use aws_sdk_ec2::types::{Filter, Instance};
use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

const INSTANCE_FILTER_VALUES: usize = 200;
/// Items per page of a filtered DescribeInstances or DescribeInstanceStatus (the APIs' maximum):
/// a sweep's filters keep these pages to the few instances that matter (bench/results.md).
const PAGE: i32 = 1000;
const STATUS_IDS: usize = 100;
const GROUP_NAMES: usize = 100;
const MEMBERSHIP_IDS: usize = 50;
/// Alarm names per DescribeAlarms call (the API's maximum).
const ALARM_NAMES: usize = 100;
const CONCURRENCY: usize = 4;
/// Retries of DescribeInstanceStatus after ids vanished between two reads.
const NOT_FOUND_RETRIES: usize = 3;

/// Reads EC2 and Auto Scaling state with the SDK clients built once per cold start.
#[derive(Clone, Debug)]
pub struct AwsInventory {
    pub ec2: aws_sdk_ec2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

/// Runs `call` over chunks of `items`, at most `CONCURRENCY` at once, and concatenates the answers.
async fn chunked<T, R, F, Fut>(items: &[T], size: usize, call: F) -> Result<Vec<R>, AwsFailure>
where
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = Result<Vec<R>, AwsFailure>>,
    T: Clone,
{
    let chunks: Vec<Vec<T>> = items.chunks(size).map(<[T]>::to_vec).collect();
    let results: Vec<Vec<R>> =
        futures::stream::iter(chunks.into_iter().map(call)).buffer_unordered(CONCURRENCY).try_collect().await?;
    Ok(results.into_iter().flatten().collect())
}

/// Reads the pages of a paginator in turn, keeping what `take` makes of each, until
/// the last page or the first page that fails (after the SDK's retries).
async fn drain<P, E, T>(
    operation: &'static str,
    mut pages: PaginationStream<Result<P, SdkError<E, HttpResponse>>>,
    take: impl Fn(&P) -> Vec<T>,
) -> Listing<T>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut listing = Listing { items: vec![], failure: None };
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => listing.items.extend(take(&p)),
            Err(e) => {
                listing.failure = Some(AwsFailure::from_sdk(operation, &e));
                break;
            }
        }
    }
    listing
}

impl AwsInventory {
    async fn describe(&self, filter: Filter) -> Result<Vec<InstanceSnapshot>, AwsFailure> {
        self.describe_listing(vec![filter]).await.into_result()
    }

    /// Every page of a filtered DescribeInstances, up to the first failure.
    async fn describe_listing(&self, filters: Vec<Filter>) -> Listing<InstanceSnapshot> {
        let pages = self.ec2.describe_instances().set_filters(Some(filters)).max_results(PAGE).into_paginator().send();
        drain("DescribeInstances", pages, |p| {
            p.reservations().iter().flat_map(|r| r.instances()).filter_map(instance_snapshot).collect()
        })
        .await
    }

    async fn status_page(&self, ids: Option<Vec<String>>) -> Listing<(InstanceId, InstanceStatus)> {
        let mut request = self.ec2.describe_instance_status();
        request = match ids {
            Some(ids) => request.set_instance_ids(Some(ids)),
            None => {
                let codes = EVENT_CODES.iter().map(|c| (*c).to_owned()).collect();
                request.filters(Filter::builder().name("event.code").set_values(Some(codes)).build()).max_results(PAGE)
            }
        };
        drain("DescribeInstanceStatus", request.into_paginator().send(), |p| {
            p.instance_statuses().iter().filter_map(status_of).collect()
        })
        .await
    }

    /// Every page of DescribeAutoScalingGroups (100 groups a page, the API's maximum), up to the first failure.
    async fn group_pages(&self, names: Option<Vec<String>>) -> Listing<GroupSnapshot> {
        let pages = self
            .autoscaling
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(names)
            .max_records(100)
            .into_paginator()
            .send();
        drain("DescribeAutoScalingGroups", pages, |p| {
            p.auto_scaling_groups().iter().filter_map(group_snapshot).collect()
        })
        .await
    }

    /// DescribeInstanceStatus fails as a whole when an id no longer exists: drop
    /// the ids its message names (compared as whole ids) and ask again (bounded).
    /// If that does not converge, the statuses stay unknown and the plan waits.
    async fn statuses_of(&self, mut ids: Vec<String>) -> Result<Vec<(InstanceId, InstanceStatus)>, AwsFailure> {
        for _ in 0..NOT_FOUND_RETRIES {
            match self.status_page(Some(ids.clone())).await.into_result() {
                Err(e) if e.kind == FailureKind::NotFound => {
                    let named: BTreeSet<InstanceId> = e
                        .message
                        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                        .filter_map(InstanceId::parse)
                        .collect();
                    let before = ids.len();
                    ids.retain(|id| InstanceId::parse(id).is_none_or(|id| !named.contains(&id)));
                    if ids.len() == before {
                        tracing::warn!(error = %e, "instance status unavailable: the error names none of the ids");
                        return Ok(vec![]);
                    }
                    if ids.is_empty() {
                        return Ok(vec![]);
                    }
                }
                other => return other,
            }
        }
        tracing::warn!(remaining = ids.len(), "instance status unavailable: ids kept vanishing");
        Ok(vec![])
    }
}

impl Inventory for AwsInventory {
    async fn instances(&self, ids: &[InstanceId]) -> Result<Vec<InstanceSnapshot>, AwsFailure> {
        chunked(ids, INSTANCE_FILTER_VALUES, |chunk| {
            let values = chunk.iter().map(|i| i.as_str().to_owned()).collect();
            self.describe(Filter::builder().name("instance-id").set_values(Some(values)).build())
        })
        .await
    }

    async fn not_running(&self) -> Listing<InstanceSnapshot> {
        self.describe_listing(vec![not_running_filter()]).await
    }

    async fn not_running_in(&self, groups: &[AsgName]) -> Result<Vec<InstanceSnapshot>, AwsFailure> {
        chunked(groups, INSTANCE_FILTER_VALUES, |chunk| async move {
            let names = chunk.iter().map(|g| g.as_str().to_owned()).collect();
            let tag = Filter::builder().name(format!("tag:{GROUP_TAG}")).set_values(Some(names)).build();
            // The state filter first: a server that applies filters in turn (moto does)
            // then looks up tags only of the few instances that are not running.
            self.describe_listing(vec![not_running_filter(), tag]).await.into_result()
        })
        .await
    }

    async fn all_groups(&self) -> Listing<GroupSnapshot> {
        self.group_pages(None).await
    }

    async fn groups(&self, names: &[AsgName]) -> Result<Vec<GroupSnapshot>, AwsFailure> {
        let names: Vec<String> = names.iter().map(|n| n.as_str().to_owned()).collect();
        chunked(&names, GROUP_NAMES, |chunk| async move { self.group_pages(Some(chunk)).await.into_result() }).await
    }

    async fn memberships(&self, ids: &[InstanceId]) -> Result<BTreeMap<InstanceId, AsgName>, AwsFailure> {
        let pairs = chunked(ids, MEMBERSHIP_IDS, |chunk| async move {
            let pages: Vec<_> = self
                .autoscaling
                .describe_auto_scaling_instances()
                .set_instance_ids(Some(chunk.iter().map(|i| i.as_str().to_owned()).collect()))
                .max_records(50)
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| AwsFailure::from_sdk("DescribeAutoScalingInstances", &e))?;
            Ok(pages
                .iter()
                .flat_map(|p| p.auto_scaling_instances())
                .filter_map(|d| {
                    Some((InstanceId::parse(d.instance_id()?)?, AsgName::parse(d.auto_scaling_group_name()?)?))
                })
                .collect())
        })
        .await?;
        Ok(pairs.into_iter().collect())
    }

    async fn statuses(&self, ids: &[InstanceId]) -> Result<BTreeMap<InstanceId, InstanceStatus>, AwsFailure> {
        let pairs =
            chunked(ids, STATUS_IDS, |chunk| self.statuses_of(chunk.iter().map(|i| i.as_str().to_owned()).collect()))
                .await?;
        Ok(pairs.into_iter().collect())
    }

    async fn scheduled(&self) -> Listing<(InstanceId, InstanceStatus)> {
        self.status_page(None).await
    }

    async fn alarms(&self, names: &[String]) -> Result<Vec<Alarm>, AwsFailure> {
        chunked(names, ALARM_NAMES, |chunk| async move {
            // Without AlarmTypes only metric alarms come back.
            let pages: Vec<_> = self
                .cloudwatch
                .describe_alarms()
                .set_alarm_names(Some(chunk))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| AwsFailure::from_sdk("DescribeAlarms", &e))?;
            Ok(pages.iter().flat_map(alarms_of).collect())
        })
        .await
    }
}

/// The metric and composite alarms of one DescribeAlarms page.
fn alarms_of(page: &aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput) -> Vec<Alarm> {
    let alarm = |name: Option<&str>, state: Option<&StateValue>, since: Option<&aws_smithy_types::DateTime>| {
        Some(Alarm {
            name: name?.to_owned(),
            state: state.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            since: since.and_then(to_chrono),
        })
    };
    let metric =
        page.metric_alarms().iter().map(|a| alarm(a.alarm_name(), a.state_value(), a.state_updated_timestamp()));
    let composite =
        page.composite_alarms().iter().map(|a| alarm(a.alarm_name(), a.state_value(), a.state_updated_timestamp()));
    metric.chain(composite).flatten().collect()
}

fn not_running_filter() -> Filter {
    let states = NOT_RUNNING.iter().map(|s| (*s).to_owned()).collect();
    Filter::builder().name("instance-state-name").set_values(Some(states)).build()
}

fn instance_snapshot(i: &Instance) -> Option<InstanceSnapshot> {
    let id = InstanceId::parse(i.instance_id()?)?;
    let root_device = match i.root_device_type().map(|d| d.as_str()) {
        Some("ebs") => RootDevice::Ebs,
        Some("instance-store") => RootDevice::InstanceStore,
        _ => RootDevice::Unknown,
    };
    Some(InstanceSnapshot {
        id,
        state: InstanceState::parse(i.state().and_then(|s| s.name()).map(|n| n.as_str()).unwrap_or("")),
        state_reason_code: i.state_reason().and_then(|r| r.code()).map(str::to_owned),
        state_transition_reason: i.state_transition_reason().map(str::to_owned),
        root_device,
        tags: i.tags().iter().filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or("").to_owned()))).collect(),
        status: None,
        scheduled_events: vec![],
        launched_at: i.launch_time().and_then(to_chrono),
    })
}

fn status_of(s: &aws_sdk_ec2::types::InstanceStatus) -> Option<(InstanceId, InstanceStatus)> {
    let id = InstanceId::parse(s.instance_id()?)?;
    let summary = |v: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
        v.and_then(|v| v.status()).map(|s| s.as_str().to_owned()).unwrap_or_else(|| "unknown".into())
    };
    let running = s.instance_state().and_then(|st| st.name()).map(|n| n.as_str()) == Some("running");
    let checks =
        running.then(|| StatusChecks { instance: summary(s.instance_status()), system: summary(s.system_status()) });
    let events = s
        .events()
        .iter()
        .map(|e| ScheduledEvent {
            code: e.code().map(|c| c.as_str().to_owned()).unwrap_or_default(),
            description: e.description().unwrap_or_default().to_owned(),
            not_before: e.not_before().and_then(to_chrono),
        })
        .collect();
    Some((id, InstanceStatus { checks, events }))
}

fn group_snapshot(g: &AutoScalingGroup) -> Option<GroupSnapshot> {
    Some(GroupSnapshot {
        name: AsgName::parse(g.auto_scaling_group_name()?)?,
        desired: g.desired_capacity().unwrap_or_default(),
        min_size: g.min_size().unwrap_or_default(),
        suspended: g
            .suspended_processes()
            .iter()
            .filter_map(|p| {
                let name = p.process_name()?;
                // Deprecated process AWS may still list; it blocks nothing.
                (name != "RemoveFromLoadBalancerLowPriority").then(|| SuspendedProcess {
                    name: name.to_owned(),
                    reason: p.suspension_reason().unwrap_or_default().to_owned(),
                })
            })
            .collect(),
        members: g
            .instances()
            .iter()
            .filter_map(|m| {
                Some(Member {
                    id: InstanceId::parse(m.instance_id()?)?,
                    lifecycle_state: m.lifecycle_state().map(|l| l.as_str().to_owned()).unwrap_or_default(),
                    health_status: m.health_status().unwrap_or_default().to_owned(),
                })
            })
            .collect(),
        tags: g.tags().iter().filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or("").to_owned()))).collect(),
    })
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

#[cfg(test)]
mod tests;
