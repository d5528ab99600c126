//! retirement-guard: keeps EC2 instance retirement from silently breaking Auto
//! Scaling groups. The pipeline, in the order data flows:
//! `intake` → `inventory` → `findings` → `policy` → `actions` → `notify` → `report`,
//! orchestrated by `handler`.

pub mod actions;
pub mod config;
pub mod domain;
pub mod error;
pub mod escalation;
pub mod findings;
pub mod handler;
pub mod intake;
pub mod inventory;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod proactive;
pub mod report;
pub mod state;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;
pub mod window;
