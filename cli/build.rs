//! Compiles the example modules (`src/examples.rs` names them) to wasm so that the binary
//! carries them: `interstice example` then needs no source checkout.
//!
//! The modules are built by a nested cargo, into a target directory of their own (`modules`
//! beside the profile folders): the cargo running this script holds the lock on its own.

#[allow(dead_code)]
#[path = "src/examples.rs"]
mod examples;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use interstice_build::{BuildError, BuildOptions, TargetDir, build_module, strip_debug_info};

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let checkout = manifest_dir.join("..");
    println!("cargo::rerun-if-changed=src/examples.rs");
    for path in [
        "Cargo.toml",
        "Cargo.lock",
        "sdk/Cargo.toml",
        "sdk/src",
        "sdk/macros/Cargo.toml",
        "sdk/macros/src",
        "sdk/abi/Cargo.toml",
        "sdk/abi/src",
    ] {
        rerun_if_changed(&checkout.join(path));
    }

    let options = BuildOptions {
        target_dir: TargetDir::Shared(modules_target_dir(&out_dir)),
        install_target: false,
        isolate: true,
        ..BuildOptions::default()
    };
    let mut embedded = String::from(
        "/// The wasm of an example module, compiled by `build.rs`.\npub fn wasm(module: &str) -> Option<&'static [u8]> {\n    match module {\n",
    );
    let modules = examples::EXAMPLES.iter().filter_map(|e| e.module);
    for module in modules.chain([examples::BENCH_MODULE]) {
        let source = checkout.join("modules").join(module);
        rerun_if_changed(&source.join("Cargo.toml"));
        rerun_if_changed(&source.join("src"));
        // The workspace's release profile keeps line tables, which the binary need not carry.
        let wasm = match build_module(&source, &options) {
            Ok(wasm) => strip_debug_info(&wasm),
            Err(e) => fail(module, &e),
        };
        let path = out_dir.join(format!("{module}.wasm"));
        if let Err(e) = std::fs::write(&path, wasm) {
            fail_with(&format!("cannot write {}: {e}", path.display()));
        }
        let _ = writeln!(
            embedded,
            "        {module:?} => Some(include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    embedded.push_str("        _ => None,\n    }\n}\n");
    let path = out_dir.join("embedded.rs");
    if let Err(e) = std::fs::write(&path, embedded) {
        fail_with(&format!("cannot write {}: {e}", path.display()));
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| fail_with(&format!("cargo did not set {name}")))
}

fn rerun_if_changed(path: &Path) {
    println!("cargo::rerun-if-changed={}", path.display());
}

/// `<target>/modules`, where `<target>` holds the profile folder this script's OUT_DIR is in
/// (`<target>/<profile>/build/<pkg>-<hash>/out`), so every profile of the CLI shares one build
/// of the modules, and so do the workspace's tests. OUT_DIR itself when the layout is another.
fn modules_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|n| n == "build"))
        .and_then(|build| build.parent()?.parent())
        .map_or_else(|| out_dir.join("modules"), |target| target.join("modules"))
}

fn fail(module: &str, e: &BuildError) -> ! {
    match e {
        BuildError::TargetMissing => fail_with(
            "the `interstice` command carries its example modules compiled to WebAssembly, and the wasm32-unknown-unknown target is missing; run `rustup target add wasm32-unknown-unknown` and build again",
        ),
        other => fail_with(&format!(
            "cannot build the example module modules/{module}: {other}"
        )),
    }
}

fn fail_with(message: &str) -> ! {
    // One `cargo::error` per line: cargo shows each and fails the build ("build script logged
    // errors"). Exiting with success spares the user a dump of this script's whole output.
    for line in message.lines() {
        println!("cargo::error={line}");
    }
    std::process::exit(0)
}
