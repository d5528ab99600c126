//! `SnsNotifier`: publishes a `Notice` with sns:Publish — by default one
//! `MessageStructure=json` message with a part per protocol (SNS delivers no message
//! attributes then, so none are sent); with `NOTICE_FORMAT=plain` the text and the
//! document as one message, with attributes for subscription filter policies.

use super::{AttributeValue, Notice, Notifier};
use crate::config::Delivery;
use crate::domain::TopicArn;
use crate::error::AwsFailure;
use aws_sdk_sns::types::MessageAttributeValue;

/// Publishes with the client built once per cold start.
#[derive(Clone, Debug)]
pub struct SnsNotifier {
    pub sns: aws_sdk_sns::Client,
    pub delivery: Delivery,
}

impl Notifier for SnsNotifier {
    async fn publish(&self, topic: &TopicArn, notice: &Notice) -> Result<String, AwsFailure> {
        let request = self.sns.publish().topic_arn(topic.as_str()).subject(&notice.subject);
        if self.delivery.structured {
            let message = notice.structured(self.delivery.chat_on(topic));
            let out = request.message_structure("json").message(message).send().await;
            let out = out.map_err(|e| AwsFailure::from_sdk("Publish", &e))?;
            return Ok(out.message_id().unwrap_or_default().to_owned());
        }
        let mut request = request.message(notice.plain());
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
