//! One target directory for many module crates.
//!
//! Cargo shares dependencies between crates in one target directory safely (it locks it), but
//! a module's `.wasm` is named after its crate alone: two crates called `hello` write the same
//! file. Cargo then calls the second one's build up to date when the first one's file is newer,
//! and hands back the wrong bytes; so does one crate built with other features or another
//! profile. So builds here take turns (`.interstice-build.lock`, held until the bytes are
//! read), a record (`.interstice-builds`) says which build (manifest, profile, features) each
//! `.wasm` last came from, and a crate cargo calls up to date whose file came from another
//! build is rebuilt after its outputs are removed.

use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use crate::cargo;
use crate::{BuildError, BuildOptions};

const LOCK: &str = ".interstice-build.lock";
const RECORD: &str = ".interstice-builds";

pub fn build(
    manifest: &Path,
    options: &BuildOptions,
    dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<u8>, BuildError> {
    let cache = |source| BuildError::Cache {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(cache)?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK))
        .map_err(cache)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            progress(&format!(
                "waiting for another module build to finish with the build cache {}",
                dir.display()
            ));
            lock.lock().map_err(cache)?;
        }
        Err(TryLockError::Error(e)) => return Err(cache(e)),
    }

    let mut record = Record::read(dir);
    let key = build_key(manifest, options);
    let mut built = cargo::build(manifest, options, Some(dir), progress)?;
    if built.fresh && record.get(&built.wasm) != Some(key.as_str()) {
        // Possibly another crate's bytes: remove what cargo checks and build this one again.
        for output in outputs(&built.wasm) {
            match std::fs::remove_file(&output) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(BuildError::Cache {
                        path: output,
                        source,
                    });
                }
            }
        }
        built = cargo::build(manifest, options, Some(dir), progress)?;
    }
    let wasm = std::fs::read(&built.wasm).map_err(|source| BuildError::Read {
        path: built.wasm.clone(),
        source,
    })?;
    record.set(built.wasm, key);
    record.write(dir).map_err(cache)?;
    // Dropping `lock` releases it.
    Ok(wasm)
}

/// What tells two builds of one `.wasm` apart.
fn build_key(manifest: &Path, options: &BuildOptions) -> String {
    let mut features = options.features.clone();
    features.sort();
    format!(
        "{} {} [{}]",
        manifest.display(),
        if options.release { "release" } else { "debug" },
        features.join(",")
    )
}

/// The `.wasm` cargo hands out and the one in `deps/` that its freshness check looks at.
fn outputs(wasm: &Path) -> Vec<PathBuf> {
    let mut paths = vec![wasm.to_owned()];
    if let (Some(parent), Some(name)) = (wasm.parent(), wasm.file_name()) {
        paths.push(parent.join("deps").join(name));
    }
    paths
}

/// Which build each `.wasm` of the cache last came from: `wasm\tkey` lines.
#[derive(Debug, Default, PartialEq, Eq)]
struct Record(BTreeMap<PathBuf, String>);

impl Record {
    /// The record, or an empty one when it is missing or unreadable (every crate is then
    /// rebuilt once, which is safe).
    fn read(dir: &Path) -> Record {
        let text = std::fs::read_to_string(dir.join(RECORD)).unwrap_or_default();
        Record(
            text.lines()
                .filter_map(|line| line.split_once('\t'))
                .map(|(wasm, key)| (PathBuf::from(wasm), key.to_owned()))
                .collect(),
        )
    }

    fn get(&self, wasm: &Path) -> Option<&str> {
        self.0.get(wasm).map(String::as_str)
    }

    fn set(&mut self, wasm: PathBuf, key: String) {
        self.0.insert(wasm, key);
    }

    fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text: String = self
            .0
            .iter()
            .filter(|(wasm, key)| {
                // Paths with tabs or newlines cannot be written in this format; forgetting them
                // only costs a rebuild.
                let fits = |s: &str| !s.contains(['\t', '\n']);
                fits(&wasm.to_string_lossy()) && fits(key)
            })
            .map(|(wasm, key)| format!("{}\t{key}\n", wasm.display()))
            .collect();
        let tmp = dir.join(format!("{RECORD}.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, dir.join(RECORD))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_survives_a_round_trip_and_skips_what_it_cannot_hold() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Record::read(dir.path()), Record::default());
        let mut record = Record::default();
        record.set("/c/hello.wasm".into(), "/a/hello/Cargo.toml".into());
        record.set("/c/odd.wasm".into(), "/a/tab\there/Cargo.toml".into());
        record.set(
            "/c/hello.wasm".into(),
            "/b/hello/Cargo.toml release []".into(),
        );
        record.write(dir.path()).unwrap();
        let back = Record::read(dir.path());
        assert_eq!(
            back.get(Path::new("/c/hello.wasm")),
            Some("/b/hello/Cargo.toml release []")
        );
        assert_eq!(back.get(Path::new("/c/odd.wasm")), None);
    }

    #[test]
    fn builds_with_other_features_or_profiles_have_other_keys() {
        let manifest = Path::new("/m/Cargo.toml");
        let plain = BuildOptions::default();
        let featured = BuildOptions {
            features: vec!["b".into(), "a".into()],
            ..BuildOptions::default()
        };
        let debug = BuildOptions {
            release: false,
            ..BuildOptions::default()
        };
        assert_eq!(build_key(manifest, &plain), "/m/Cargo.toml release []");
        assert_eq!(
            build_key(manifest, &featured),
            "/m/Cargo.toml release [a,b]"
        );
        assert_eq!(build_key(manifest, &debug), "/m/Cargo.toml debug []");
    }

    #[test]
    fn the_outputs_include_the_file_cargo_checks() {
        assert_eq!(
            outputs(Path::new("/t/wasm32-unknown-unknown/release/hello.wasm")),
            [
                PathBuf::from("/t/wasm32-unknown-unknown/release/hello.wasm"),
                PathBuf::from("/t/wasm32-unknown-unknown/release/deps/hello.wasm"),
            ]
        );
    }
}
