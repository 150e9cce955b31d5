//! one module per kernel object kind (placeholder)
