//! `interstice example <name>`: the README's examples, on fixed ports.

use std::path::{Path, PathBuf};

use interstice_runtime::Published;
use interstice_runtime::build::{BuildOptions, build_module};

use super::node::{open_node, serve_until_stopped};
use crate::error::{CliError, Result, code};
use crate::home::{Home, NodeEntry};

/// The workspace this binary was built from, which holds `modules/`.
fn workspace() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root)
}

pub fn run(name: &str, port: Option<u16>) -> Result<()> {
    match name {
        "hello" => hello(port.unwrap_or(8080)),
        "caller" => Err(CliError::new(
            "the `caller` example needs node-to-node calls and remote subscriptions, which this build does not have yet",
        )
        .hint("run `interstice example hello` and call it with `interstice call_reducer example-hello hello hello Ada`")
        .code(code::UNAVAILABLE)),
        "graphics" => Err(CliError::new(
            "the `graphics` example needs the Gpu and Input authorities (wgpu + winit), which this build does not have yet",
        )
        .hint("`interstice example hello` runs today")
        .code(code::UNAVAILABLE)),
        "audio" => Err(CliError::new(
            "the `audio` example needs the Audio authority (cpal), which this build does not have yet",
        )
        .hint("`interstice example hello` runs today")
        .code(code::UNAVAILABLE)),
        other => Err(CliError::usage(format!("there is no example `{other}`"))
            .hint("examples: hello, caller, graphics, audio")),
    }
}

fn hello(port: u16) -> Result<()> {
    let source = workspace().join("modules").join("hello");
    if !source.join("Cargo.toml").is_file() {
        return Err(CliError::new(format!(
            "the hello module's source is not at {}",
            source.display()
        ))
        .hint("run the example from an Interstice checkout: `cargo run -p interstice-cli -- example hello`"));
    }
    let mut home = Home::open()?;
    let name = "example-hello";
    let address = format!("127.0.0.1:{port}");
    let entry = match home.nodes.iter_mut().find(|n| n.name == name) {
        Some(entry) => {
            entry.address = address;
            entry.clone()
        }
        None => {
            let entry = NodeEntry {
                name: name.to_owned(),
                id: uuid::Uuid::new_v4().to_string(),
                address,
                local: true,
                dir: Some(format!("nodes/{name}")),
            };
            home.nodes.push(entry.clone());
            entry
        }
    };
    home.save()?;

    eprintln!("building {} ...", source.display());
    let wasm = build_module(&source, &BuildOptions::default()).map_err(|e| {
        CliError::new(format!("cannot build the hello module: {e}"))
            .hint("`rustup target add wasm32-unknown-unknown` and a working cargo are needed")
    })?;
    let dir = home.node_dir(&entry);
    let node = open_node(&dir, None)?;
    match node.publish(&wasm) {
        Ok(Published::Installed(schema)) => println!("installed hello v{}", schema.version),
        Ok(Published::Upgraded { from, to }) => {
            println!("upgraded hello from v{from} to v{}", to.version)
        }
        Err(e) => {
            return Err(
                CliError::new(format!("cannot install hello: {e}")).hint(format!(
                    "remove {} to start the example afresh",
                    dir.display()
                )),
            );
        }
    }
    println!(
        "try, in another shell:\n  interstice call_reducer {name} hello hello Ada\n  interstice call_query {name} hello get_greetings"
    );
    serve_until_stopped(&entry, &dir, node, &entry.address, false)
}
