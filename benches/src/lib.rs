//! Helpers shared by the end-to-end benchmarks in `benches/`.

#![forbid(unsafe_code)]

use interstice_abi::{Value, encode_into};
use interstice_build::BuildError;

/// Builds `modules/<name>` of this checkout in release mode (in `target/modules`, not the
/// target directory cargo is benchmarking from, whose lock it holds).
pub fn build(name: &str) -> Result<Vec<u8>, BuildError> {
    interstice_build::try_workspace_module(name)
}

/// Encodes a reducer's arguments.
pub fn args(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    values.iter().for_each(|v| encode_into(v, &mut out));
    out
}

/// The median of `samples` (sorted in place).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}
