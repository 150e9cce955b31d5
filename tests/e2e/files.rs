//! Open files: numbers, offsets, flags, shared descriptions, devices.

use crate::harness::scenario;

#[test]
fn files() {
    scenario("files", &[]);
}

/// Pipes: bytes in flight, buffer size, O_NONBLOCK, a pipe shared by parent and child.
#[test]
fn pipes() {
    crate::harness::scenario("pipe", &[]);
}
