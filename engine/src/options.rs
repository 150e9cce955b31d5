//! options (placeholder)
