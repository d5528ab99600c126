//! Errors: how a failed AWS call is classified (from its error code, never its
//! message), and the handler's top-level error that the Lambda runtime reports.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;

/// What kind of failure an AWS error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Throttling, 5xx, timeouts, connection failures: worth retrying later.
    Transient,
    /// AccessDenied / UnauthorizedOperation: the role lacks a permission.
    Denied,
    /// The instance or group no longer exists.
    NotFound,
    /// The resource is not in a state that allows the call (e.g. already running).
    WrongState,
    /// InsufficientInstanceCapacity.
    Capacity,
    /// UnsupportedOperation (e.g. starting an instance-store instance).
    Unsupported,
    Other,
}

/// A classified AWS failure, safe to report and notify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{operation}: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct AwsFailure {
    pub operation: &'static str,
    pub kind: FailureKind,
    pub code: Option<String>,
    pub message: String,
}

/// Codes of AWS's server-side faults (sent with a 5xx status, which `from_sdk` also
/// checks): transient like the SDK's throttling and transient codes.
const SERVER_FAULTS: [&str; 5] =
    ["ServiceUnavailable", "Unavailable", "InternalError", "InternalFailure", "ResourceContentionFault"];

/// Is `code` one the SDK's own retry classifier retries (throttling or transient), or a server fault?
fn transient(code: &str) -> bool {
    use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
    THROTTLING_ERRORS.contains(&code) || TRANSIENT_ERRORS.contains(&code) || SERVER_FAULTS.contains(&code)
}

/// Classifies an error code.
pub fn classify_code(code: Option<&str>) -> FailureKind {
    match code {
        Some(c) if transient(c) => FailureKind::Transient,
        Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "AuthorizationError") => {
            FailureKind::Denied
        }
        Some("InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed" | "NotFound") => FailureKind::NotFound,
        Some("IncorrectInstanceState" | "IncorrectState") => FailureKind::WrongState,
        Some("InsufficientInstanceCapacity") => FailureKind::Capacity,
        Some("UnsupportedOperation") => FailureKind::Unsupported,
        _ => FailureKind::Other,
    }
}

impl AwsFailure {
    /// Classifies an SDK error (after the SDK's own retries).
    pub fn from_sdk<E>(operation: &'static str, err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = err.code().map(str::to_owned);
        let status = err.raw_response().map(|r| r.status().as_u16());
        let kind = match err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
                FailureKind::Transient
            }
            _ if status.is_some_and(|s| s >= 500) => FailureKind::Transient,
            _ => classify_code(code.as_deref()),
        };
        let message = match err {
            SdkError::TimeoutError(_) => "timed out (SDK operation or attempt timeout)".to_owned(),
            _ => err.message().map(str::to_owned).unwrap_or_else(|| DisplayErrorContext(err).to_string()),
        };
        Self { operation, kind, code, message }
    }
}

/// Why an invocation failed as a whole (Lambda retries it).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("reading AWS state failed, the invocation will be retried: {0}")]
    Inventory(#[source] AwsFailure),
    #[error("publishing the notice failed, the invocation will be retried: {0}")]
    Notify(#[source] AwsFailure),
}

impl HandlerError {
    /// A stable name for the runtime's `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Inventory(_) => "InventoryFailed",
            Self::Notify(_) => "NotifyFailed",
        }
    }
}

/// What the Lambda runtime reports of a failed invocation: `errorType` the stable
/// name, `errorMessage` the whole message with its cause.
impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(err: HandlerError) -> Self {
        Self { error_type: err.error_type().into(), error_message: err.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(classify_code(Some("RequestLimitExceeded")), FailureKind::Transient);
        // From the SDK's retry classifiers, not a list kept here.
        for code in ["ProvisionedThroughputExceededException", "EC2ThrottledException", "RequestTimeout"] {
            assert_eq!(classify_code(Some(code)), FailureKind::Transient, "{code}");
        }
        assert_eq!(classify_code(Some("InternalError")), FailureKind::Transient);
        assert_eq!(classify_code(Some("UnauthorizedOperation")), FailureKind::Denied);
        assert_eq!(classify_code(Some("InvalidInstanceID.NotFound")), FailureKind::NotFound);
        assert_eq!(classify_code(Some("IncorrectInstanceState")), FailureKind::WrongState);
        assert_eq!(classify_code(Some("InsufficientInstanceCapacity")), FailureKind::Capacity);
        assert_eq!(classify_code(None), FailureKind::Other);
    }

    #[test]
    fn a_handler_error_becomes_the_runtime_diagnostic_with_its_cause_kept() {
        let failure = AwsFailure {
            operation: "Publish",
            kind: FailureKind::Denied,
            code: Some("AuthorizationError".into()),
            message: "not allowed".into(),
        };
        let err = HandlerError::Notify(failure.clone());
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source, Some(failure.to_string()));
        let d = lambda_runtime::Diagnostic::from(err);
        assert_eq!(d.error_type, "NotifyFailed");
        assert_eq!(
            d.error_message,
            "publishing the notice failed, the invocation will be retried: Publish: AuthorizationError: not allowed"
        );
    }
}
