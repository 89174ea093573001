//! `interstice update`: rebuild and reinstall this command from an Interstice source checkout.
//!
//! Interstice has no release server to download from, so an update is `cargo install` from
//! source: by default the checkout this binary was built from.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::error::{CliError, Result};
use crate::output::Output;

/// The checkout this binary was built from.
fn built_from() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root)
}

pub fn update(out: Output, source: Option<&Path>, dry_run: bool) -> Result<()> {
    let source = source.map_or_else(built_from, Path::to_path_buf);
    let cli = source.join("cli");
    if !cli.join("Cargo.toml").is_file() {
        return Err(CliError::usage(format!(
            "{} is not an Interstice checkout (no cli/Cargo.toml)",
            source.display()
        ))
        .hint("pass the checkout with --source, after `git pull` in it"));
    }
    out.say(format_args!(
        "interstice {} — installing from {}",
        env!("CARGO_PKG_VERSION"),
        source.display()
    ));
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .arg("install")
        .arg("--path")
        .arg(&cli)
        .arg("--locked")
        .arg("--force");
    let args: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let doc = |updated: bool| {
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "source": source.display().to_string(),
            "command": args,
            "dry_run": dry_run,
            "updated": updated,
        })
    };
    if dry_run {
        out.done(doc(false), || format!("would run: {command:?}"));
        return Ok(());
    }
    out.say(format_args!("running: {command:?}"));
    // Cargo shows its own progress on stderr; stdout stays ours (one JSON document).
    let status = command
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| CliError::io("cannot run cargo", e).hint("is cargo on the PATH?"))?;
    if !status.success() {
        return Err(CliError::new(format!("cargo install failed ({status})"))
            .hint("its output above says why; the installed interstice is unchanged"));
    }
    out.done(doc(true), || {
        "updated; `interstice --version` shows the new version".to_owned()
    });
    Ok(())
}
