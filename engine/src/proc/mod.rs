//! /proc parsing (placeholder)
