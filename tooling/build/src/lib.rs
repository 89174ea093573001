//! Builds an Interstice module crate into WebAssembly by running cargo.
//!
//! ```no_run
//! use interstice_build::{BuildOptions, TargetDir, build_module};
//!
//! let options = BuildOptions {
//!     target_dir: TargetDir::Shared("/tmp/interstice-build-cache".into()),
//!     ..BuildOptions::default()
//! };
//! let wasm = build_module("modules/hello".as_ref(), &options)?;
//! # Ok::<(), interstice_build::BuildError>(())
//! ```
//!
//! Used by the `interstice` command (`publish`), by its build script (the examples it carries),
//! and by the tests and benchmarks of the workspace. It knows cargo and rustup, nothing about
//! nodes.
//!
//! # Core concepts
//!
//! - [`TargetDir`] says where cargo builds. [`TargetDir::Shared`] is one cache for many module
//!   crates: their common dependencies (the SDK, syn, serde...) are built once. Builds into it
//!   take turns (a lock file), and a crate whose output file another build (a crate of the
//!   same name, other features) overwrote meanwhile is rebuilt, so the bytes returned are
//!   always this build's.
//! - A build that runs inside another cargo build (a build script, or a test run by
//!   `cargo test`) must not use that build's target directory: the outer cargo holds its lock.
//!   [`BuildOptions::isolate`] also drops what the outer build passes down through the
//!   environment (its rustflags, its clippy wrapper), which is meant for host code.

#![forbid(unsafe_code)]

mod cargo;
mod shared;

use std::path::{Path, PathBuf};

/// The target every module is built for.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Where cargo puts what it builds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TargetDir {
    /// The crate's own (`target/` beside its workspace's Cargo.toml). The default.
    #[default]
    Crate,
    /// This directory, used as is.
    Dir(PathBuf),
    /// A cache shared by many module crates; see the crate docs.
    Shared(PathBuf),
}

/// How to build a module.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// By default, `true`: optimised builds are several times faster to run.
    pub release: bool,
    /// By default, [`TargetDir::Crate`].
    pub target_dir: TargetDir,
    /// Cargo features of the module crate to enable. By default, none.
    pub features: Vec<String>,
    /// Runs `rustup target add wasm32-unknown-unknown` when the target is missing. By default,
    /// `true`; a build script sets it to `false` and tells the user instead.
    pub install_target: bool,
    /// Ignores the rustflags and compiler wrappers of the cargo build this process runs in
    /// (a build script's environment). By default, `false`.
    pub isolate: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            release: true,
            target_dir: TargetDir::Crate,
            features: Vec::new(),
            install_target: true,
            isolate: false,
        }
    }
}

/// Why a module could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error("{0} has no Cargo.toml; pass the folder of a module crate")]
    NotACrate(PathBuf),
    #[error("cannot run `{program}` ({source}); is the Rust toolchain installed and on PATH?")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error(
        "the {WASM_TARGET} target is not installed, and modules are built for it; run `rustup target add {WASM_TARGET}`"
    )]
    TargetMissing,
    #[error("`rustup target add {WASM_TARGET}` failed:\n{0}")]
    TargetInstall(String),
    #[error("cargo could not build the module:\n{0}")]
    Cargo(String),
    #[error(
        "cargo built no .wasm file; the module's Cargo.toml needs `[lib] crate-type = [\"cdylib\"]`"
    )]
    NoArtifact,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot use the build cache {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Builds the module crate at `crate_dir` for [`WASM_TARGET`] and returns the `.wasm` bytes.
pub fn build_module(crate_dir: &Path, options: &BuildOptions) -> Result<Vec<u8>, BuildError> {
    build_module_with(crate_dir, options, &mut |_| {})
}

/// [`build_module`], calling `progress` with each line cargo prints on stderr (`Compiling
/// serde v1.0.228`, warnings, errors) and with a line of its own while it waits for the shared
/// cache.
pub fn build_module_with(
    crate_dir: &Path,
    options: &BuildOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<u8>, BuildError> {
    let manifest = crate_dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(BuildError::NotACrate(crate_dir.to_owned()));
    }
    // Cargo resolves `..` lexically; the file system follows symlinks. Agree with the latter.
    let manifest = manifest.canonicalize().map_err(|source| BuildError::Read {
        path: manifest.clone(),
        source,
    })?;
    cargo::ensure_target(&manifest, options)?;
    match &options.target_dir {
        TargetDir::Crate => read(cargo::build(&manifest, options, None, progress)?.wasm),
        TargetDir::Dir(dir) => read(cargo::build(&manifest, options, Some(dir), progress)?.wasm),
        TargetDir::Shared(dir) => shared::build(&manifest, options, dir, progress),
    }
}

fn read(path: PathBuf) -> Result<Vec<u8>, BuildError> {
    std::fs::read(&path).map_err(|source| BuildError::Read { path, source })
}

/// The checkout this crate belongs to.
fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// Builds `modules/<name>` of this checkout (release) into its `target/modules`, apart from the
/// target directory of the cargo command running the caller. For the workspace's own tests,
/// benchmarks and examples.
pub fn try_workspace_module(name: &str) -> Result<Vec<u8>, BuildError> {
    let root = checkout();
    let options = BuildOptions {
        target_dir: TargetDir::Shared(root.join("target").join("modules")),
        ..BuildOptions::default()
    };
    build_module(&root.join("modules").join(name), &options)
}

/// [`try_workspace_module`], panicking with the builder's message when it fails.
pub fn workspace_module(name: &str) -> Vec<u8> {
    try_workspace_module(name).unwrap_or_else(|e| panic!("building modules/{name}: {e}"))
}

/// `wasm` without its DWARF sections (custom sections named `.debug_*`), which only debuggers
/// read: a release build with `debug = 1` is mostly those. The `name` section stays, so traps
/// still name functions. Bytes that do not parse as a module are returned unchanged.
pub fn strip_debug_info(wasm: &[u8]) -> Vec<u8> {
    const HEADER: usize = 8;
    if wasm.len() < HEADER || &wasm[..4] != b"\0asm" {
        return wasm.to_vec();
    }
    let mut out = wasm[..HEADER].to_vec();
    let mut at = HEADER;
    while at < wasm.len() {
        let id = wasm[at];
        let Some((size, len_bytes)) = leb128(&wasm[at + 1..]) else {
            return wasm.to_vec();
        };
        let start = at + 1 + len_bytes;
        let Some(end) = start.checked_add(size).filter(|&end| end <= wasm.len()) else {
            return wasm.to_vec();
        };
        let is_debug = id == 0
            && leb128(&wasm[start..end]).is_some_and(|(name_len, n)| {
                wasm[start + n..end]
                    .get(..name_len)
                    .is_some_and(|name| name.starts_with(b".debug_"))
            });
        if !is_debug {
            out.extend_from_slice(&wasm[at..end]);
        }
        at = end;
    }
    out
}

/// An unsigned LEB128 number at the start of `bytes`, and how many bytes it took.
fn leb128(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((usize::try_from(value).ok()?, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(id: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 128);
        let mut s = vec![id, payload.len() as u8];
        s.extend_from_slice(payload);
        s
    }

    fn custom(name: &str, data: &[u8]) -> Vec<u8> {
        let mut payload = vec![name.len() as u8];
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(data);
        section(0, &payload)
    }

    #[test]
    fn debug_sections_go_and_everything_else_stays() {
        let header = b"\0asm\x01\0\0\0".to_vec();
        let types = section(1, &[1, 0x60, 0, 0]);
        let name = custom("name", b"xyz");
        let module = [
            header.clone(),
            types.clone(),
            custom(".debug_info", b"dwarf"),
            name.clone(),
            custom(".debug_line", b"lines"),
        ]
        .concat();
        assert_eq!(strip_debug_info(&module), [header, types, name].concat());
    }

    #[test]
    fn what_does_not_parse_is_left_alone() {
        assert_eq!(strip_debug_info(b"not wasm"), b"not wasm");
        let truncated = b"\0asm\x01\0\0\0\x01\x7f\x00".to_vec();
        assert_eq!(strip_debug_info(&truncated), truncated);
    }
}
