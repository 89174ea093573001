//! Building a module crate into WebAssembly, for tests and for `interstice publish`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target every module is built for.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// How to build a module.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// By default, `true`: optimised builds are several times faster to run.
    pub release: bool,
    /// Cargo's target directory. By default, the crate's own. Tests that run inside `cargo test`
    /// should pass a separate one: the outer cargo holds the lock on the default one.
    pub target_dir: Option<PathBuf>,
    /// Called with each line cargo prints (progress), if set.
    pub progress: Option<fn(&str)>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            release: true,
            target_dir: None,
            progress: None,
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
}

/// Builds the module crate at `crate_dir` for [`WASM_TARGET`] and returns the `.wasm` bytes.
/// Installs the target with rustup first when it is missing.
pub fn build_module(crate_dir: &Path, options: &BuildOptions) -> Result<Vec<u8>, BuildError> {
    let manifest = crate_dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(BuildError::NotACrate(crate_dir.to_owned()));
    }
    // Cargo resolves `..` lexically; the file system follows symlinks. Agree with the latter.
    let manifest = manifest.canonicalize().map_err(|source| BuildError::Read {
        path: manifest.clone(),
        source,
    })?;
    ensure_target()?;

    let mut cmd = Command::new(cargo());
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .args([
            "--target",
            WASM_TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if options.release {
        cmd.arg("--release");
    }
    if let Some(dir) = &options.target_dir {
        cmd.arg("--target-dir").arg(dir);
    }
    let mut child = cmd.spawn().map_err(|source| BuildError::Spawn {
        program: "cargo".into(),
        source,
    })?;

    // Cargo reports progress on stderr and artifacts as JSON on stdout; read stderr on a
    // thread so neither pipe fills up and blocks the build.
    let stderr = child.stderr.take();
    let progress = options.progress;
    let log = std::thread::spawn(move || {
        let mut lines = Vec::new();
        if let Some(stderr) = stderr {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(report) = progress {
                    report(&line);
                }
                lines.push(line);
            }
        }
        lines
    });
    let mut wasm = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(path) = wasm_artifact(&line) {
                wasm = Some(path);
            }
        }
    }
    let status = child.wait().map_err(|source| BuildError::Spawn {
        program: "cargo".into(),
        source,
    })?;
    let stderr = log.join().unwrap_or_default();
    if !status.success() {
        return Err(BuildError::Cargo(tail(&stderr, 40)));
    }
    let path = wasm.ok_or(BuildError::NoArtifact)?;
    std::fs::read(&path).map_err(|source| BuildError::Read { path, source })
}

/// The `.wasm` file named by one line of cargo's JSON messages, if it names one.
fn wasm_artifact(line: &str) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    message
        .get("filenames")?
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))
        .map(PathBuf::from)
}

fn ensure_target() -> Result<(), BuildError> {
    let installed = match Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == WASM_TARGET),
        // Without rustup (a distro toolchain) we cannot check; let cargo say what is missing.
        Err(_) => return Ok(()),
    };
    if installed {
        return Ok(());
    }
    let out = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .output()
        .map_err(|source| BuildError::Spawn {
            program: "rustup".into(),
            source,
        })?;
    if !out.status.success() {
        return Err(BuildError::TargetInstall(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    Ok(())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn tail(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_wasm_among_cargo_messages() {
        let line =
            r#"{"reason":"compiler-artifact","filenames":["/t/libhello.rlib","/t/hello.wasm"]}"#;
        assert_eq!(wasm_artifact(line), Some(PathBuf::from("/t/hello.wasm")));
        assert_eq!(wasm_artifact(r#"{"reason":"build-finished"}"#), None);
        assert_eq!(wasm_artifact("Compiling hello"), None);
    }

    #[test]
    fn a_folder_without_a_manifest_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = build_module(dir.path(), &BuildOptions::default()).unwrap_err();
        assert!(matches!(err, BuildError::NotACrate(_)), "{err}");
    }
}
