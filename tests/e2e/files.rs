//! Open files: numbers, offsets, flags, shared descriptions, devices.

use crate::harness::scenario;

#[test]
fn files() {
    scenario("files", &[]);
}
