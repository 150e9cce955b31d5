//! Signal dispositions, masks, pending signals, sigaltstack.

use crate::harness::scenario;

#[test]
fn signals() {
    scenario("signals", &[]);
}
