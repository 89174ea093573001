//! `interstice init`: a module crate with a hello example, set up to build for WebAssembly.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::{CliError, Result};
use crate::output::Output;

/// The SDK of the checkout this binary was built from (not on crates.io yet).
fn sdk_path() -> PathBuf {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("sdk");
    sdk.canonicalize().unwrap_or(sdk)
}

/// A package name from a folder name: lowercase ASCII letters, digits and `_`.
fn package_name(dir: &Path) -> Result<String> {
    let raw = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if interstice_abi::check_module_name(&name).is_err() || name.starts_with("__") {
        return Err(
            CliError::usage(format!("cannot name a module after the folder `{raw}`")).hint(
                "pass a folder whose name starts with a letter, e.g. `interstice init my_module`",
            ),
        );
    }
    Ok(name)
}

pub fn init(out: Output, path: Option<&Path>) -> Result<()> {
    let dir = path.unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::io(format!("cannot create {}", dir.display()), e))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| CliError::io(format!("cannot open {}", dir.display()), e))?;
    for existing in ["Cargo.toml", "src/lib.rs"] {
        if dir.join(existing).exists() {
            return Err(
                CliError::usage(format!("{} already has a {existing}", dir.display()))
                    .hint("run `interstice init <new-folder>` to create a module elsewhere"),
            );
        }
    }
    let name = package_name(&dir)?;
    let sdk = sdk_path();
    if !sdk.join("Cargo.toml").is_file() {
        eprintln!(
            "warning: the Interstice SDK is not at {} any more; fix the path in Cargo.toml",
            sdk.display()
        );
    }
    let sdk_toml = toml::Value::String(sdk.to_string_lossy().into_owned()).to_string();
    let files = [
        ("Cargo.toml", cargo_toml(&name, &sdk_toml)),
        (".cargo/config.toml", CARGO_CONFIG.to_owned()),
        ("src/lib.rs", LIB_RS.to_owned()),
        (".gitignore", "/target\n".to_owned()),
    ];
    let mut written = Vec::new();
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| CliError::io(format!("cannot create {}", parent.display()), e))?;
        }
        if file == ".gitignore" && path.exists() {
            continue;
        }
        std::fs::write(&path, text)
            .map_err(|e| CliError::io(format!("cannot write {}", path.display()), e))?;
        written.push(file);
    }
    out.done(
        json!({
            "module": name,
            "path": dir.display().to_string(),
            "files": written,
            "sdk": sdk.display().to_string(),
        }),
        || {
            format!(
                "created module `{name}` in {}\n  build:   cargo build --release   (targets wasm32-unknown-unknown)\n  publish: interstice publish <node> {}",
                dir.display(),
                dir.display()
            )
        },
    );
    Ok(())
}

fn cargo_toml(name: &str, sdk: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
# A module is a WebAssembly library the node loads.
crate-type = ["cdylib"]

[dependencies]
# interstice-sdk is not on crates.io yet: this is the SDK of the Interstice checkout that built
# the `interstice` command. Change the path if that checkout moves.
interstice-sdk = {{ path = {sdk} }}

[profile.release]
opt-level = "s"

# A module is its own workspace, even inside another project's folder.
[workspace]
"#
    )
}

const CARGO_CONFIG: &str = r#"# Modules run as WebAssembly: `cargo build` targets it by default here.
[build]
target = "wasm32-unknown-unknown"
"#;

const LIB_RS: &str = r#"//! An Interstice module: a greetings table, a reducer that fills it and a query that reads it.
//!
//! Build: `cargo build --release`. Publish: `interstice publish <node> .`.
//! Try it: `interstice call_reducer <node> <this module> hello Ada`, then
//! `interstice call_query <node> <this module> get_greetings`.

use interstice_sdk::*;

interstice_module!(visibility: Public);

/// One row per greeting.
#[table(public)]
pub struct Greetings {
    #[primary_key(auto_inc)]
    pub id: u64,
    pub name: String,
}

/// Inserts a greeting; an empty name fails and commits nothing.
#[reducer(writes(greetings))]
fn hello(ctx: ReducerContext, name: String) -> Result<(), String> {
    if name.is_empty() {
        return Err("name must not be empty".to_owned());
    }
    let row = ctx.current.tables.greetings().insert(Greetings { id: 0, name })?;
    ctx.log(&format!("hello, {}! (greeting {})", row.name, row.id));
    Ok(())
}

/// Runs once, when the module is first installed on a node.
#[reducer(on = "init")]
fn init(ctx: ReducerContext) {
    ctx.log("module installed");
}

/// Every greeting, in id order.
#[query(reads(greetings))]
fn get_greetings(ctx: QueryContext) -> Vec<Greetings> {
    ctx.current.tables.greetings().scan().collect()
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_become_package_names() {
        assert_eq!(
            package_name(Path::new("/x/My-Module")).unwrap(),
            "my_module"
        );
        assert!(package_name(Path::new("/x/1st")).is_err());
        assert!(package_name(Path::new("/x/__node")).is_err());
    }

    #[test]
    fn the_manifest_is_valid_toml_with_a_cdylib() {
        let text = cargo_toml(
            "demo",
            &toml::Value::String("C:\\sdk \"x\"".into()).to_string(),
        );
        let doc: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(doc["lib"]["crate-type"][0].as_str(), Some("cdylib"));
        assert_eq!(
            doc["dependencies"]["interstice-sdk"]["path"].as_str(),
            Some("C:\\sdk \"x\"")
        );
    }
}
