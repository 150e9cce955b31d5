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

/// FIFOs opened by path (data in flight, both ends, buffer size), memfd fds (name, seals, offsets, holes,
/// shared with a mapping) and a /dev/shm file.
#[test]
fn fifos_memfd_shm() {
    scenario("fifo_memfd", &[]);
}
