//! Running cargo and rustup, and reading cargo's JSON messages.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{BuildError, BuildOptions, WASM_TARGET};

/// What one cargo build produced.
pub struct Built {
    pub wasm: PathBuf,
    /// Cargo found it up to date and did not compile it again.
    pub fresh: bool,
}

/// Environment variables a build script inherits that are meant for the outer build's host
/// code: its rustflags (e.g. `--cfg loom`, `-C target-cpu=native`) and clippy's wrapper.
const OUTER_BUILD_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
];

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

pub fn build(
    manifest: &Path,
    options: &BuildOptions,
    target_dir: Option<&Path>,
    progress: &mut dyn FnMut(&str),
) -> Result<Built, BuildError> {
    let mut cmd = Command::new(cargo());
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(manifest)
        .args([
            "--target",
            WASM_TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Fixed-width SIMD is part of wasm 2.0 and every engine the runtime uses enables it; Rust
    // does not emit it unless asked. Its integer operations are deterministic and the runtime
    // canonicalises NaNs, so modules may use it; loops over bytes (the simulation's rule) run
    // several times faster. Cargo appends this to any wasm rustflags of the user's own config.
    cmd.arg("--config").arg(format!(
        "target.{WASM_TARGET}.rustflags=[\"-C\", \"target-feature=+simd128\"]"
    ));
    if options.release {
        // One codegen unit, optimised across crates: the SDK's and the ABI's small functions
        // (reading a byte, a count, a fixed-width number) inline into the module's own code
        // instead of each being a wasm call with its fuel and its trip through the stack.
        cmd.arg("--release")
            .arg("--config")
            .arg("profile.release.lto=true")
            .arg("--config")
            .arg("profile.release.codegen-units=1");
    }
    if !options.features.is_empty() {
        cmd.arg("--features").arg(options.features.join(","));
    }
    if let Some(dir) = target_dir {
        cmd.arg("--target-dir").arg(dir);
    }
    if options.isolate {
        for var in OUTER_BUILD_ENV {
            cmd.env_remove(var);
        }
    }
    let mut child = cmd.spawn().map_err(|source| BuildError::Spawn {
        program: "cargo".into(),
        source,
    })?;

    // Cargo reports progress on stderr and artifacts as JSON on stdout; read stdout on a thread
    // so neither pipe fills up and blocks the build, and stderr here, for `progress`.
    let stdout = child.stdout.take();
    let artifacts = std::thread::spawn(move || {
        let mut wasm = None;
        if let Some(stdout) = stdout {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(found) = wasm_artifact(&line) {
                    wasm = Some(found);
                }
            }
        }
        wasm
    });
    let mut stderr = Vec::new();
    if let Some(pipe) = child.stderr.take() {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            progress(&line);
            stderr.push(line);
        }
    }
    let status = child.wait().map_err(|source| BuildError::Spawn {
        program: "cargo".into(),
        source,
    })?;
    let wasm = artifacts.join().unwrap_or_default();
    if !status.success() {
        return Err(BuildError::Cargo(tail(&stderr, 40)));
    }
    let (wasm, fresh) = wasm.ok_or(BuildError::NoArtifact)?;
    Ok(Built { wasm, fresh })
}

/// The `.wasm` file named by one line of cargo's JSON messages, and whether cargo found it up
/// to date.
pub fn wasm_artifact(line: &str) -> Option<(PathBuf, bool)> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let fresh = message
        .get("fresh")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    message
        .get("filenames")?
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))
        .map(|f| (PathBuf::from(f), fresh))
}

/// Makes sure the toolchain that builds `manifest` has the wasm target.
pub fn ensure_target(manifest: &Path, options: &BuildOptions) -> Result<(), BuildError> {
    let dir = manifest.parent().unwrap_or(Path::new("."));
    // The sysroot of the compiler cargo will use there (a rust-toolchain file may pick it).
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let sysroot = match Command::new(&rustc)
        .args(["--print", "sysroot"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
        // Cargo will say what is wrong with the toolchain.
        _ => return Ok(()),
    };
    if sysroot.join("lib/rustlib").join(WASM_TARGET).is_dir() {
        return Ok(());
    }
    if !options.install_target {
        return Err(BuildError::TargetMissing);
    }
    let out = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| match source.kind() {
            // A toolchain without rustup: nothing to install the target with.
            std::io::ErrorKind::NotFound => BuildError::TargetMissing,
            _ => BuildError::Spawn {
                program: "rustup".into(),
                source,
            },
        })?;
    if !out.status.success() {
        return Err(BuildError::TargetInstall(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    Ok(())
}

fn tail(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_wasm_among_cargo_messages() {
        let line = r#"{"reason":"compiler-artifact","fresh":true,"filenames":["/t/libhello.rlib","/t/hello.wasm"]}"#;
        assert_eq!(
            wasm_artifact(line),
            Some((PathBuf::from("/t/hello.wasm"), true))
        );
        let line = r#"{"reason":"compiler-artifact","fresh":false,"filenames":["/t/hello.wasm"]}"#;
        assert_eq!(
            wasm_artifact(line),
            Some((PathBuf::from("/t/hello.wasm"), false))
        );
        assert_eq!(wasm_artifact(r#"{"reason":"build-finished"}"#), None);
        assert_eq!(wasm_artifact("Compiling hello"), None);
    }
}
