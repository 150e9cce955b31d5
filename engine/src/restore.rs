//! restore (placeholder)
