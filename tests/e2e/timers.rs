//! Interval timers, POSIX timers, CLOCK_MONOTONIC across restore.

use crate::harness::scenario;

#[test]
fn itimers() {
    scenario("timers", &[]);
}

#[test]
fn posix_timer() {
    scenario("timers", &["posix"]);
}
