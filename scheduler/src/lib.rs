//! Deterministic parallel scheduling (placeholder until the scheduler lands).
