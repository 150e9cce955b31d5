//! The stable ABI that rcr plugins compile against.
//!
//! Filled by the plugin issue: hooks, host services, a C header. The crate
//! exists now so that the workspace layout is final.
