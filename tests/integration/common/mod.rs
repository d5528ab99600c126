//! Shared harness of the end-to-end tests: a local AWS on 127.0.0.1 with a free port
//! (moto from the project's virtualenv, started through tests/moto/realaws.py so that
//! it behaves like AWS where the guard's safety lives; one per test, killed when the
//! test ends, also when it fails), the scenario helper tests/moto/scenario.py (boto3)
//! to seed, change and read AWS state, and the built binary run against it.
#![allow(dead_code)]

use serde_json::Value;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_retirement-guard");
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub fn venv() -> PathBuf {
    let dir = std::env::var_os("MOTO_VENV").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(ROOT).join(".venv"));
    assert!(
        dir.join("bin/moto_server").exists(),
        "no moto server in {}: run `make test` (it creates the virtualenv) or set MOTO_VENV",
        dir.display()
    );
    dir
}

/// A moto server for one test; dropped (killed) when the test ends or panics.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(venv().join("bin/python"))
            .arg(format!("{ROOT}/tests/moto/realaws.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .env("MOTO_RECORDER_FILEPATH", dir.path().join("recording"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Self { child, endpoint: format!("http://127.0.0.1:{port}"), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Switches behaviours of the local AWS (tests/moto/realaws.py), e.g. `("pending_seconds", "6")`.
    pub fn realism(&self, settings: &[(&str, &str)]) -> Value {
        let pairs: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec!["realism"];
        for p in &pairs {
            args.extend(["--set", p.as_str()]);
        }
        self.scenario(&args)
    }

    /// What the local AWS did by itself: members marked Unhealthy, terminated, launched.
    pub fn realism_stats(&self) -> Value {
        self.scenario(&["realism-stats"])
    }

    pub fn scenario(&self, args: &[&str]) -> Value {
        let out = Command::new(venv().join("bin/python"))
            .arg(format!("{ROOT}/tests/moto/scenario.py"))
            .args(["--endpoint", &self.endpoint])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "scenario {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs the guard binary with the standard AWS environment pointing at moto.
    pub fn guard(&self, topic: &str, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NOTIFY_TOPIC_ARN", topic)
            .env("POLL_SECONDS", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A seeded world as AWS's retirement leaves it: es-data (6 members, Launch+Terminate
/// suspended by AWS, 2 stopped by a scheduled retirement and marked Unhealthy), web
/// (healthy), a standalone instance a person stopped, the notice topic and its queue.
pub struct World {
    pub moto: Moto,
    pub seed: Value,
}

impl World {
    pub fn new() -> Self {
        Self::seeded(&[])
    }

    /// A world seeded with extra `scenario.py seed` options (e.g. `--stopped-by user`).
    pub fn seeded(options: &[&str]) -> Self {
        let moto = Moto::start();
        let mut args = vec!["seed"];
        args.extend(options);
        let seed = moto.scenario(&args);
        Self { moto, seed }
    }

    pub fn topic(&self) -> &str {
        self.seed["topic_arn"].as_str().unwrap()
    }

    pub fn stopped(&self) -> Vec<String> {
        strings(&self.seed["stopped"])
    }

    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let out = self.moto.guard(self.topic(), args, env, None);
        assert!(out.status.success(), "guard {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("the report is JSON")
    }

    pub fn state(&self) -> Value {
        self.moto.scenario(&["state"])
    }

    pub fn notices(&self) -> Vec<Value> {
        self.notices_in("notices")
    }

    /// Drains one queue: `notices` or a tier queue (`chat`, `email`, `pager`).
    pub fn notices_in(&self, queue: &str) -> Vec<Value> {
        self.moto.scenario(&["messages", "--queue", queue]).as_array().unwrap().clone()
    }

    /// A Health retirement event (current schema) for the stopped instances, in a file.
    pub fn health_event(&self) -> tempfile::NamedTempFile {
        let event = self.moto.scenario(&["health-event", "--instances", &self.stopped().join(",")]);
        write_temp(&event)
    }
}

impl World {
    /// Drains the `notices` queue without long polling: moto delivers SNS to SQS
    /// within the Publish call, so what a finished run sent is already there.
    pub fn notices_now(&self) -> Vec<Value> {
        self.moto.scenario(&["messages", "--queue", "notices", "--wait-seconds", "0"]).as_array().unwrap().clone()
    }
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

pub fn write_temp(v: &Value) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), v.to_string()).unwrap();
    file
}

pub fn instance_state(state: &Value, id: &str) -> String {
    state["instances"][id]["state"].as_str().unwrap().to_owned()
}

pub fn suspended(state: &Value, group: &str) -> Vec<String> {
    strings(&state["groups"][group]["suspended"])
}
