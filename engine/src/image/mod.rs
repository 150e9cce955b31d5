//! image layer (placeholder)
