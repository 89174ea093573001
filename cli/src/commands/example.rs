//! `interstice example <name>`: the README's examples, on fixed ports.
//!
//! `caller` reaches the hello node at the address its binding names (127.0.0.1:8080), so
//! `example hello` and `example caller` work together as they are.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use interstice_runtime::Published;
use interstice_runtime::build::{BuildOptions, build_module};

use super::node::{Serve, open_node, serve_until_stopped};
use crate::error::{CliError, Result, code};
use crate::home::{Home, NodeEntry};

/// The workspace this binary was built from, which holds `modules/`.
fn workspace() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root)
}

pub fn run(name: &str, port: Option<u16>, peers: HashMap<String, String>) -> Result<()> {
    match name {
        "hello" => example("hello", port.unwrap_or(8080), peers),
        "caller" => example("caller", port.unwrap_or(8081), peers),
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

/// Builds `modules/<module>`, installs (or upgrades) it on node `example-<module>` and serves
/// it on `port`.
fn example(module: &str, port: u16, peers: HashMap<String, String>) -> Result<()> {
    let source = workspace().join("modules").join(module);
    if !source.join("Cargo.toml").is_file() {
        return Err(CliError::new(format!(
            "the {module} module's source is not at {}",
            source.display()
        ))
        .hint(format!("run the example from an Interstice checkout: `cargo run -p interstice-cli -- example {module}`")));
    }
    let mut home = Home::open()?;
    let name = format!("example-{module}");
    let name = name.as_str();
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
        CliError::new(format!("cannot build the {module} module: {e}"))
            .hint("`rustup target add wasm32-unknown-unknown` and a working cargo are needed")
    })?;
    let dir = home.node_dir(&entry);
    let node = open_node(&dir, None, false)?;
    match node.publish(&wasm) {
        Ok(Published::Installed(schema)) => println!("installed {module} v{}", schema.version),
        Ok(Published::Upgraded { from, to }) => {
            println!("upgraded {module} from v{from} to v{}", to.version)
        }
        Err(e) => {
            return Err(
                CliError::new(format!("cannot install {module}: {e}")).hint(format!(
                    "remove {} to start the example afresh",
                    dir.display()
                )),
            );
        }
    }
    match module {
        "caller" => println!(
            "caller greets the hello node when it connects and records the greetings hello commits;\nstart `interstice example hello` too, then try, in another shell:\n  interstice call_reducer {name} caller greet Ada\n  interstice call_query {name} caller received"
        ),
        _ => println!(
            "try, in another shell:\n  interstice call_reducer {name} hello hello Ada\n  interstice call_query {name} hello get_greetings"
        ),
    }
    serve_until_stopped(
        &entry,
        &dir,
        node,
        Serve {
            listen: &entry.address,
            peers,
            busy_poll: interstice_runtime::net::ServerConfig::default().busy_poll,
        },
    )
}
