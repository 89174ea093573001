//! Loom models of the scheduler (placeholder until they land).
