//! Tables, transactions and persistence (placeholder until the store lands).
