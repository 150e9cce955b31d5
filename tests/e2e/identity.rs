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

/// A process (and a forked child) that switched to unprivileged ids with supplementary groups and lost
/// its capabilities, as nginx's workers and most daemons do.
#[test]
fn creds_unprivileged_user() {
    scenario("creds", &["user"]);
}

/// uid 0 with reduced bounding, permitted, effective, inheritable and ambient sets and securebits.
#[test]
fn creds_reduced_capabilities() {
    scenario("creds", &["caps"]);
}

/// Threads of one process with different uids and gids.
#[test]
fn creds_threads_of_different_uids() {
    scenario("creds", &["threads"]);
}
