//! `AwsActuator`: the write port over the AWS SDK (ec2:StartInstances,
//! autoscaling:SetInstanceHealth, ResumeProcesses, CreateOrUpdateTags, DeleteTags).

use super::Actuator;
use crate::domain::{AsgName, InstanceId};
use crate::error::AwsFailure;
use aws_sdk_autoscaling::types::Tag;

/// Makes the guard's changes with the SDK clients built once per cold start.
#[derive(Clone, Debug)]
pub struct AwsActuator {
    pub ec2: aws_sdk_ec2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
}

impl Actuator for AwsActuator {
    async fn start(&self, id: &InstanceId) -> Result<String, AwsFailure> {
        let out = self
            .ec2
            .start_instances()
            .instance_ids(id.as_str())
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("StartInstances", &e))?;
        Ok(out
            .starting_instances()
            .iter()
            .find(|c| c.instance_id() == Some(id.as_str()))
            .and_then(|c| c.current_state())
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_owned())
            .unwrap_or_else(|| "unknown".into()))
    }

    async fn set_healthy(&self, id: &InstanceId) -> Result<(), AwsFailure> {
        self.autoscaling
            .set_instance_health()
            .instance_id(id.as_str())
            .health_status("Healthy")
            .should_respect_grace_period(false)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsFailure::from_sdk("SetInstanceHealth", &e))
    }

    async fn resume(&self, group: &AsgName, processes: &[String]) -> Result<(), AwsFailure> {
        self.autoscaling
            .resume_processes()
            .auto_scaling_group_name(group.as_str())
            .set_scaling_processes(Some(processes.to_vec()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsFailure::from_sdk("ResumeProcesses", &e))
    }

    async fn tag_group(&self, group: &AsgName, key: &str, value: &str) -> Result<(), AwsFailure> {
        self.autoscaling
            .create_or_update_tags()
            .tags(group_tag(group, key).value(value).propagate_at_launch(false).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsFailure::from_sdk("CreateOrUpdateTags", &e))
    }

    async fn untag_group(&self, group: &AsgName, key: &str) -> Result<(), AwsFailure> {
        self.autoscaling
            .delete_tags()
            .tags(group_tag(group, key).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsFailure::from_sdk("DeleteTags", &e))
    }
}

fn group_tag(group: &AsgName, key: &str) -> aws_sdk_autoscaling::types::builders::TagBuilder {
    Tag::builder().resource_id(group.as_str()).resource_type("auto-scaling-group").key(key)
}

#[cfg(test)]
mod tests;
