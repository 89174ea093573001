//! Helpers shared by the end-to-end benchmarks in `benches/`.

use std::path::{Path, PathBuf};

use interstice_abi::{Value, encode_into};
use interstice_build::{BuildError, BuildOptions, TargetDir, build_module};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds `modules/<name>` in release mode into `target/modules` (not the target directory
/// cargo is benchmarking from, whose lock it holds).
pub fn build(name: &str) -> Result<Vec<u8>, BuildError> {
    let options = BuildOptions {
        target_dir: TargetDir::Dir(workspace().join("target").join("modules")),
        ..BuildOptions::default()
    };
    build_module(&workspace().join("modules").join(name), &options)
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
