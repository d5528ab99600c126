//! `SnsNotifier`: publishes a `Notice` with sns:Publish (plain message, so that
//! message attributes reach subscribers and their filter policies).

use super::{AttributeValue, Notice, Notifier};
use crate::domain::TopicArn;
use crate::error::AwsFailure;
use aws_sdk_sns::types::MessageAttributeValue;

/// Publishes with the client built once per cold start.
#[derive(Clone, Debug)]
pub struct SnsNotifier {
    pub sns: aws_sdk_sns::Client,
}

impl Notifier for SnsNotifier {
    async fn publish(&self, topic: &TopicArn, notice: &Notice) -> Result<String, AwsFailure> {
        let mut request = self.sns.publish().topic_arn(topic.as_str()).subject(&notice.subject).message(&notice.body);
        for (name, value) in &notice.attributes {
            let (data_type, text) = match value {
                AttributeValue::String(s) => ("String", s.clone()),
                AttributeValue::StringArray(items) => {
                    ("String.Array", serde_json::to_string(items).unwrap_or_else(|_| "[]".into()))
                }
            };
            if text.is_empty() {
                continue; // SNS rejects empty attribute values.
            }
            let attr =
                MessageAttributeValue::builder().data_type(data_type).string_value(text).build().map_err(|e| {
                    AwsFailure {
                        operation: "Publish",
                        kind: crate::error::FailureKind::Other,
                        code: None,
                        message: e.to_string(),
                    }
                })?;
            request = request.message_attributes(*name, attr);
        }
        let out = request.send().await.map_err(|e| AwsFailure::from_sdk("Publish", &e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}
