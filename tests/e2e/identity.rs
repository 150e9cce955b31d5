//! Process identity: umask, cwd, comm, rlimits, scheduling, credentials, prctl state, seccomp.

use crate::harness::scenario;

#[test]
fn identity_sched_batch() {
    scenario("identity", &["batch"]);
}

#[test]
fn identity_sched_idle() {
    scenario("identity", &["idle"]);
}
