//! Log set-up that follows Lambda's advanced logging controls, in Lambda and in
//! the CLI alike: `AWS_LAMBDA_LOG_FORMAT=JSON` makes every line one JSON object,
//! `AWS_LAMBDA_LOG_LEVEL` sets the level (else `RUST_LOG`'s directives), and the
//! runtime's invoke span puts the request id on every line of an invocation.
//! Logs go to stderr: the CLI's stdout carries the report, Lambda's the metrics.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// The runtime's span that carries `requestId`; enabled at every level so that no
/// line of an invocation lacks the id (the module logs nothing itself).
const REQUEST_SPAN: &str = "lambda_runtime::layers::trace=info";

/// Our own lines at info; the SDK and the runtime only when something is wrong.
const DEFAULT: &str = "warn,retirement_guard=info,lambda_runtime=info";

/// The filter directives: Lambda's level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL) for
/// this crate and the runtime, with the SDK's chatter no lower than WARN; else
/// `RUST_LOG` as written; else the default. An unknown level gives the default.
pub fn directives(lambda_level: Option<&str>, rust_log: Option<&str>) -> String {
    let level = lambda_level.map(str::trim).filter(|l| !l.is_empty()).and_then(|l| {
        Some(match l.to_ascii_uppercase().as_str() {
            "TRACE" => "trace",
            "DEBUG" => "debug",
            "INFO" => "info",
            "WARN" => "warn",
            "ERROR" | "FATAL" => "error",
            _ => return None,
        })
    });
    match (level, rust_log.map(str::trim).filter(|r| !r.is_empty())) {
        (Some(l), _) => {
            let others = if l == "error" { "error" } else { "warn" };
            format!("{others},retirement_guard={l},lambda_runtime={l},{REQUEST_SPAN}")
        }
        (None, Some(r)) => format!("{r},{REQUEST_SPAN}"),
        (None, None) => format!("{DEFAULT},{REQUEST_SPAN}"),
    }
}

/// Is the function's log format JSON (`AWS_LAMBDA_LOG_FORMAT`, any case)?
pub fn json(format: Option<&str>) -> bool {
    format.is_some_and(|f| f.trim().eq_ignore_ascii_case("json"))
}

/// Installs the global subscriber from the process environment.
pub fn init() {
    let var = |k: &str| std::env::var(k).ok();
    let wanted = directives(var("AWS_LAMBDA_LOG_LEVEL").as_deref(), var("RUST_LOG").as_deref());
    subscriber(&wanted, json(var("AWS_LAMBDA_LOG_FORMAT").as_deref()), std::io::stderr).init();
}

/// The subscriber for these directives (the default when they do not parse), in JSON or text.
fn subscriber<W>(wanted: &str, json: bool, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(wanted).unwrap_or_else(|_| EnvFilter::new(directives(None, None)));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(false);
    if json {
        // CloudWatch stamps every event itself; the message and fields sit at the top level.
        Box::new(fmt.json().flatten_event(true).without_time().finish())
    } else {
        Box::new(fmt.without_time().finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_level_sets_our_level_and_keeps_the_sdk_quiet() {
        assert_eq!(
            directives(Some("DEBUG"), Some("trace")),
            "warn,retirement_guard=debug,lambda_runtime=debug,lambda_runtime::layers::trace=info"
        );
        assert!(directives(Some("fatal"), None).starts_with("error,retirement_guard=error,"));
        assert!(directives(Some("WARN"), None).ends_with(REQUEST_SPAN), "the request id stays on every line");
    }

    #[test]
    fn rust_log_then_the_default() {
        assert_eq!(
            directives(None, Some("aws_smithy_runtime=debug")),
            format!("aws_smithy_runtime=debug,{REQUEST_SPAN}")
        );
        assert_eq!(directives(Some("LOUD"), None), format!("{DEFAULT},{REQUEST_SPAN}"));
        assert_eq!(directives(Some(" "), Some("")), format!("{DEFAULT},{REQUEST_SPAN}"));
        for d in [directives(None, None), directives(Some("trace"), None)] {
            assert!(EnvFilter::try_new(&d).is_ok(), "{d}");
        }
    }

    /// What a subscriber writes, line by line.
    fn written(directives: &str, json: bool, log: impl FnOnce()) -> Vec<String> {
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let writer = move || Sink(sink.clone());
        tracing::subscriber::with_default(subscriber(directives, json, writer), log);
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// As lambda_runtime 1.5 runs each invocation: inside its span carrying the request id.
    fn an_invocation() {
        let span = tracing::info_span!(target: "lambda_runtime::layers::trace", "Lambda runtime invoke", requestId = "8f5e-42");
        let _in = span.enter();
        tracing::info!(target: "retirement_guard::handler", groups = 2, "sweep read");
        tracing::warn!(target: "retirement_guard::handler", "a start failed");
        tracing::warn!(target: "aws_smithy_runtime", "retrying");
        tracing::debug!(target: "aws_smithy_runtime", "request sent");
    }

    #[test]
    fn in_json_every_line_is_an_object_with_the_request_id_whatever_the_level() {
        for (level, want) in [("INFO", 3), ("WARN", 2), ("ERROR", 0)] {
            let lines = written(&directives(Some(level), None), true, an_invocation);
            assert_eq!(lines.len(), want, "{level}: {lines:?}");
            for line in &lines {
                let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                assert_eq!(v["span"]["requestId"], "8f5e-42", "{line}");
                assert!(v["level"].is_string() && v["message"].is_string() && v["target"].is_string(), "{line}");
            }
        }
        let info = written(&directives(Some("INFO"), None), true, an_invocation);
        assert!(info[0].contains(r#""message":"sweep read""#) && info[0].contains(r#""groups":2"#), "{}", info[0]);
    }

    #[test]
    fn in_text_the_request_id_leads_every_line() {
        let lines = written(&directives(None, None), false, an_invocation);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines.iter().all(|l| l.contains(r#"requestId="8f5e-42""#) && !l.starts_with('{')), "{lines:?}");
    }

    #[test]
    fn the_json_format_is_recognised_in_any_case() {
        assert!(json(Some("JSON")) && json(Some("json")) && json(Some(" Json ")));
        assert!(!json(Some("Text")) && !json(None));
    }
}
