//! dump (placeholder)
