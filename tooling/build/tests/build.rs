//! Real cargo builds of tiny crates (no dependencies, so they take a second each).

// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use interstice_build::{BuildError, BuildOptions, TargetDir, build_module};

/// A cdylib crate named `name` in `parent/<folder>` exporting one function, `export`.
fn tiny_crate(parent: &Path, folder: &str, name: &str, export: &str) -> PathBuf {
    let dir = parent.join(folder);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        format!("#[unsafe(no_mangle)]\npub extern \"C\" fn {export}() -> i32 {{ 7 }}\n"),
    )
    .unwrap();
    dir
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn crates_with_the_same_name_in_a_shared_cache_get_their_own_bytes() {
    let root = tempfile::tempdir().unwrap();
    let a = tiny_crate(root.path(), "a", "same", "only_in_a");
    let b = tiny_crate(root.path(), "b", "same", "only_in_b");
    let options = BuildOptions {
        release: false,
        target_dir: TargetDir::Shared(root.path().join("cache")),
        ..BuildOptions::default()
    };
    let first = build_module(&a, &options).unwrap();
    assert!(contains(&first, "only_in_a"));
    let second = build_module(&b, &options).unwrap();
    assert!(contains(&second, "only_in_b"));
    // Cargo calls `a` up to date here, yet `same.wasm` is b's.
    let again = build_module(&a, &options).unwrap();
    assert!(contains(&again, "only_in_a"), "got b's module back");
    assert!(!contains(&again, "only_in_b"));
}

#[test]
fn concurrent_builds_into_one_shared_cache_take_turns() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");
    let crates: Vec<(PathBuf, String)> = (0..3)
        .map(|i| {
            let export = format!("export_{i}");
            (
                tiny_crate(root.path(), &format!("c{i}"), "twin", &export),
                export,
            )
        })
        .collect();
    std::thread::scope(|s| {
        for (dir, export) in &crates {
            let cache = cache.clone();
            s.spawn(move || {
                let options = BuildOptions {
                    release: false,
                    target_dir: TargetDir::Shared(cache),
                    ..BuildOptions::default()
                };
                let wasm = build_module(dir, &options).unwrap();
                assert!(
                    contains(&wasm, export),
                    "{} got another crate's bytes",
                    dir.display()
                );
            });
        }
    });
}

#[test]
fn a_folder_without_a_manifest_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = build_module(dir.path(), &BuildOptions::default()).unwrap_err();
    assert!(matches!(err, BuildError::NotACrate(_)), "{err}");
    assert!(
        err.to_string()
            .contains("pass the folder of a module crate")
    );
}

#[test]
fn a_crate_that_does_not_compile_reports_cargo_s_error() {
    let root = tempfile::tempdir().unwrap();
    let dir = tiny_crate(root.path(), "broken", "broken", "f");
    std::fs::write(dir.join("src/lib.rs"), "pub fn f() -> i32 { \"no\" }\n").unwrap();
    let options = BuildOptions {
        release: false,
        target_dir: TargetDir::Dir(root.path().join("target")),
        ..BuildOptions::default()
    };
    let mut lines = Vec::new();
    let err =
        interstice_build::build_module_with(&dir, &options, &mut |l| lines.push(l.to_owned()))
            .unwrap_err();
    assert!(matches!(err, BuildError::Cargo(_)), "{err}");
    assert!(err.to_string().contains("mismatched types"), "{err}");
    // Progress saw cargo's lines as they came.
    assert!(
        lines.iter().any(|l| l.contains("Compiling broken")),
        "{lines:?}"
    );
}

#[test]
fn one_crate_built_with_other_features_in_a_shared_cache_gets_its_own_bytes() {
    let root = tempfile::tempdir().unwrap();
    let dir = tiny_crate(root.path(), "f", "featured", "always");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        manifest.replace("[workspace]", "[features]\nextra = []\n\n[workspace]"),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        "#[unsafe(no_mangle)]\npub extern \"C\" fn always() -> i32 { 1 }\n#[cfg(feature = \"extra\")]\n#[unsafe(no_mangle)]\npub extern \"C\" fn only_with_extra() -> i32 { 2 }\n",
    )
    .unwrap();
    let plain = BuildOptions {
        release: false,
        target_dir: TargetDir::Shared(root.path().join("cache")),
        ..BuildOptions::default()
    };
    let extra = BuildOptions {
        features: vec!["extra".into()],
        ..plain.clone()
    };
    assert!(!contains(
        &build_module(&dir, &plain).unwrap(),
        "only_with_extra"
    ));
    assert!(contains(
        &build_module(&dir, &extra).unwrap(),
        "only_with_extra"
    ));
    assert!(!contains(
        &build_module(&dir, &plain).unwrap(),
        "only_with_extra"
    ));
}
