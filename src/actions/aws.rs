//! `AwsActuator`: the write port over the AWS SDK (ec2:StartInstances and
//! autoscaling:CreateOrUpdateTags, DeleteTags for many resources per call;
//! SetInstanceHealth, ResumeProcesses for one).

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
    async fn start(&self, ids: &[InstanceId]) -> Result<Vec<(InstanceId, String)>, AwsFailure> {
        let out = self
            .ec2
            .start_instances()
            .set_instance_ids(Some(ids.iter().map(|i| i.as_str().to_owned()).collect()))
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("StartInstances", &e))?;
        Ok(out
            .starting_instances()
            .iter()
            .filter_map(|c| {
                let id = InstanceId::parse(c.instance_id()?)?;
                Some((id, c.current_state()?.name()?.as_str().to_owned()))
            })
            .collect())
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

    async fn tag_groups(&self, key: &str, tags: &[(AsgName, String)]) -> Result<(), AwsFailure> {
        let tags = tags.iter().map(|(g, v)| group_tag(g, key).value(v).propagate_at_launch(false).build()).collect();
        self.autoscaling
            .create_or_update_tags()
            .set_tags(Some(tags))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsFailure::from_sdk("CreateOrUpdateTags", &e))
    }

    async fn untag_groups(&self, key: &str, groups: &[AsgName]) -> Result<(), AwsFailure> {
        self.autoscaling
            .delete_tags()
            .set_tags(Some(groups.iter().map(|g| group_tag(g, key).build()).collect()))
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
