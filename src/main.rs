//! The one binary: in Lambda (AWS_LAMBDA_RUNTIME_API set) it runs the runtime
//! loop; locally `retirement-guard invoke FILE|-` and `retirement-guard sweep
//! [--dry-run]` run one invocation and print the JSON report. Only wiring here.

use chrono::Utc;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use retirement_guard::actions::aws::AwsActuator;
use retirement_guard::config::Config;
use retirement_guard::handler::Guard;
use retirement_guard::inventory::aws::AwsInventory;
use retirement_guard::notify::sns::SnsNotifier;
use retirement_guard::report::Status;
use retirement_guard::state::dynamo::DynamoStateStore;
use retirement_guard::state::{AnyStore, NoStore};
use retirement_guard::{logging, metrics};
use serde_json::Value;
use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: retirement-guard invoke FILE|-   (one event from a file or stdin)\n       retirement-guard sweep [--dry-run]\n       (in AWS Lambda it runs the runtime loop)";

/// A local run has the deadline the template gives the function (`Timeout: 300`).
const CLI_TIMEOUT: Duration = Duration::from_secs(300);

type AwsGuard = Guard<AwsInventory, AwsActuator, SnsNotifier, AnyStore<DynamoStateStore>>;

#[tokio::main]
async fn main() -> ExitCode {
    logging::init();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let event = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["invoke", path] => match read_event(path) {
            Ok(v) => Some(v),
            Err(e) => return fail(&e, 1),
        },
        ["sweep"] => Some(serde_json::json!({"sweep": true})),
        ["sweep", "--dry-run"] => Some(serde_json::json!({"sweep": true, "dry_run": true})),
        [] if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => None,
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => return fail(USAGE, 2),
    };

    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string(), 2),
    };
    tracing::info!(config = %serde_json::to_string(&config).unwrap_or_default(), "effective configuration");
    let guard = build(config).await;

    match event {
        Some(event) => run_once(&guard, &event).await,
        None => {
            let guard = &guard;
            let result = lambda_runtime::run(service_fn(move |e: LambdaEvent<Value>| async move {
                let result = guard.handle_until(&e.payload, Utc::now(), Some(deadline_of(&e.context))).await;
                // The metrics line goes to stdout, which Lambda sends to CloudWatch Logs.
                println!("{}", metrics::emf_line(result.as_ref().ok(), &guard.config.environment, Utc::now()));
                let report = result?;
                Ok::<Value, Diagnostic>(serde_json::to_value(report).unwrap_or(Value::Null))
            }))
            .await;
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("lambda runtime: {e}"), 1),
            }
        }
    }
}

/// Reads one event; every failure is one line naming the file and the problem.
fn read_event(path: &str) -> Result<Value, String> {
    let text = if path == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| format!("cannot read stdin: {e}"))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?
    };
    if text.trim().is_empty() {
        return Err(format!("{}: empty input, expected one JSON event", if path == "-" { "stdin" } else { path }));
    }
    serde_json::from_str(&text)
        .map_err(|e| format!("{}: not valid JSON: {e}", if path == "-" { "stdin" } else { path }))
}

async fn run_once(guard: &AwsGuard, event: &Value) -> ExitCode {
    // Test hook for local runs only: GUARD_NOW (RFC 3339) stands in for the clock.
    let now = match std::env::var("GUARD_NOW") {
        Ok(text) => match chrono::DateTime::parse_from_rfc3339(&text) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => return fail(&format!("GUARD_NOW is not an RFC 3339 time: {e}"), 2),
        },
        Err(_) => Utc::now(),
    };
    match guard.handle_until(event, now, Some(Instant::now() + CLI_TIMEOUT)).await {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            match (report.status, report.reason) {
                (Status::Rejected, reason) => fail(&format!("event rejected: {}", reason.unwrap_or_default()), 1),
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => fail(&e.to_string(), 1),
    }
}

/// The invocation's deadline as the runtime gives it (milliseconds since the epoch).
fn deadline_of(context: &lambda_runtime::Context) -> Instant {
    let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or_default();
    Instant::now() + Duration::from_millis(context.deadline.saturating_sub(now_ms))
}

/// One line on stderr: a JSON log object when the log format is JSON, else plain.
fn fail(message: &str, code: u8) -> ExitCode {
    let message = format!("retirement-guard: {}", message.replace('\n', " "));
    if logging::json(std::env::var("AWS_LAMBDA_LOG_FORMAT").ok().as_deref()) {
        tracing::error!("{message}");
    } else {
        eprintln!("{message}");
    }
    ExitCode::from(code)
}

/// SDK clients, built once per cold start from the standard chain (region,
/// credentials, AWS_ENDPOINT_URL*), with the retries and timeouts of `config.sdk`
/// that keep a stuck call well inside the Lambda timeout.
async fn build(config: Config) -> AwsGuard {
    let s = config.sdk;
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(s.attempt_timeout_seconds))
        .operation_timeout(Duration::from_secs(s.operation_timeout_seconds))
        .build();
    // Standard mode: exponential backoff with jitter, throttling and 5xx and timeouts
    // retried, a client-side token bucket against retry storms.
    let retries = aws_config::retry::RetryConfig::standard().with_max_attempts(s.max_attempts);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(retries)
        .load()
        .await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let autoscaling = aws_sdk_autoscaling::Client::new(&sdk);
    Guard {
        region: sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "unknown-region".into()),
        inventory: AwsInventory {
            ec2: ec2.clone(),
            autoscaling: autoscaling.clone(),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
        },
        actuator: AwsActuator { ec2, autoscaling },
        notifier: SnsNotifier { sns: aws_sdk_sns::Client::new(&sdk), delivery: config.delivery.clone() },
        state: match &config.state_table {
            Some(table) => {
                AnyStore::Some(DynamoStateStore { dynamodb: aws_sdk_dynamodb::Client::new(&sdk), table: table.clone() })
            }
            None => {
                tracing::warn!("STATE_TABLE is not set: notices are not deduplicated and do not escalate over time");
                AnyStore::None(NoStore)
            }
        },
        config,
    }
}
