//! sys (placeholder)
