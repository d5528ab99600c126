//! The integration tests, in one binary (each test binary links the whole SDK):
//! end to end against the local AWS (`e2e`, `escalation`, `faults`, `ordering`, the
//! harness in `common`), the whole handler under every fault over `aws-smithy-mocks`
//! (`fault_matrix`), and bad input through the intake and the in-memory handler
//! (`fuzz`). Run one part with `cargo test --test integration faults::`.

mod common;
mod e2e;
mod escalation;
mod fault_matrix;
mod faults;
mod fuzz;
mod golden;
mod ordering;
mod proactive;
mod routing;
