//! `interstice update`: rebuild and reinstall this command from an Interstice source checkout.
//!
//! Interstice has no release server to download from, so an update is `cargo install` from
//! source: by default the checkout this binary was built from.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{CliError, Result};

/// The checkout this binary was built from.
fn built_from() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root)
}

pub fn update(source: Option<&Path>, dry_run: bool) -> Result<()> {
    let source = source.map_or_else(built_from, Path::to_path_buf);
    let cli = source.join("cli");
    if !cli.join("Cargo.toml").is_file() {
        return Err(CliError::usage(format!(
            "{} is not an Interstice checkout (no cli/Cargo.toml)",
            source.display()
        ))
        .hint("pass the checkout with --source, after `git pull` in it"));
    }
    println!(
        "interstice {} — installing from {}",
        env!("CARGO_PKG_VERSION"),
        source.display()
    );
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .arg("install")
        .arg("--path")
        .arg(&cli)
        .arg("--locked")
        .arg("--force");
    println!("running: {command:?}");
    if dry_run {
        return Ok(());
    }
    // Cargo shows its own progress on the terminal.
    let status = command
        .status()
        .map_err(|e| CliError::io("cannot run cargo", e).hint("is cargo on the PATH?"))?;
    if !status.success() {
        return Err(CliError::new(format!("cargo install failed ({status})"))
            .hint("its output above says why; the installed interstice is unchanged"));
    }
    println!("updated; `interstice --version` shows the new version");
    Ok(())
}
