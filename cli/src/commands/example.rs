//! `interstice example <name>`: the README's examples, from the modules this binary carries
//! (`crate::examples` lists them; `build.rs` compiles them).
//!
//! `caller` reaches the hello node at the address its binding names (127.0.0.1:8080), so
//! `example hello` and `example caller` work together as they are.

use std::collections::HashMap;
use std::path::PathBuf;

use interstice_runtime::Published;
use serde_json::json;

use super::node::{Serve, open_node, serve_until_stopped};
use super::simulation;
use crate::error::{CliError, Result, code};
use crate::examples::{EXAMPLES, Example};
use crate::home::{Home, NodeEntry};
use crate::output::Output;
use crate::platforms::Platforms;

/// `--headless`, `--frames N`, `--screenshot PATH`: how `example graphics` renders.
#[derive(Clone, Debug, Default)]
pub struct GraphicsOptions {
    /// Off-screen even when there is a display.
    pub headless: bool,
    /// Render this many frames off-screen, then exit instead of serving.
    pub frames: Option<u64>,
    /// Write the last of those frames here as PNG.
    pub screenshot: Option<PathBuf>,
}

pub(crate) mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// What `interstice example NAME` was asked besides the name.
pub struct Options {
    /// `--port`: instead of the example's own.
    pub port: Option<u16>,
    /// `--peer NAME=ADDR`.
    pub peers: HashMap<String, String>,
    /// `--workers`.
    pub workers: Option<usize>,
    pub graphics: GraphicsOptions,
    /// `--ticks`, `--size`, `--regions`, `--seed`, when any was given.
    pub simulation: Option<simulation::Options>,
}

pub fn run(out: Output, name: &str, options: Options) -> Result<()> {
    let Some(example) = EXAMPLES.iter().find(|e| e.name == name) else {
        let names: Vec<&str> = EXAMPLES.iter().map(|e| e.name).collect();
        return Err(CliError::usage(format!("there is no example `{name}`"))
            .hint(format!("examples: {}", names.join(", "))));
    };
    let wasm = match (example.module.and_then(embedded::wasm), example.unavailable) {
        (Some(wasm), None) => wasm,
        (_, why) => {
            let runnable: Vec<&str> = EXAMPLES
                .iter()
                .filter(|e| e.unavailable.is_none())
                .map(|e| e.name)
                .collect();
            return Err(
                CliError::new(why.unwrap_or("this build carries no module for it"))
                    .hint(format!("runnable here: {}", runnable.join(", ")))
                    .code(code::UNAVAILABLE),
            );
        }
    };
    let graphics = &options.graphics;
    let asked = graphics.headless || graphics.frames.is_some() || graphics.screenshot.is_some();
    if asked && example.name != "graphics" {
        return Err(CliError::usage(
            "--headless, --frames and --screenshot are options of the graphics example",
        ));
    }
    if options.simulation.is_some() && example.name != "simulation" {
        return Err(CliError::usage(
            "--ticks, --size, --regions and --seed are options of the simulation example",
        ));
    }
    serve(out, example, wasm, options)
}

/// Installs (or upgrades) the example's module on node `example-<name>` and serves it on its
/// port.
fn serve(out: Output, example: &Example, wasm: &[u8], options: Options) -> Result<()> {
    let Options {
        port,
        peers,
        workers,
        graphics,
        simulation,
    } = options;
    let port = port.unwrap_or(example.port);
    let graphics = &graphics;
    let mut home = Home::open()?;
    let name = format!("example-{}", example.name);
    let address = format!("127.0.0.1:{port}");
    let entry = match home.nodes.iter_mut().find(|n| n.name == name) {
        Some(entry) => {
            entry.address = address;
            entry.clone()
        }
        None => {
            let entry = NodeEntry {
                name: name.clone(),
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

    let dir = home.node_dir(&entry);
    #[cfg(feature = "window")]
    let (platforms, window) = match example.name {
        "graphics" => super::graphics::open(out, graphics)?,
        _ => (Platforms::default(), None),
    };
    #[cfg(not(feature = "window"))]
    let (platforms, _) = (Platforms::default(), graphics);
    let node = open_node(&dir, workers, false, &platforms)?;
    let (doc, line) = match node.publish(wasm) {
        Ok(Published::Installed(schema)) => (
            json!({"event": "installed", "node": name, "module": schema.name, "version": schema.version}),
            format!("installed {} v{}", schema.name, schema.version),
        ),
        Ok(Published::Upgraded { from, to }) if from == to.version => (
            json!({"event": "replaced", "node": name, "module": to.name, "version": to.version}),
            format!("replaced {} v{}", to.name, to.version),
        ),
        Ok(Published::Upgraded { from, to }) => (
            json!({"event": "upgraded", "node": name, "module": to.name, "from": from, "version": to.version}),
            format!("upgraded {} from v{from} to v{}", to.name, to.version),
        ),
        Err(e) => {
            return Err(
                CliError::new(format!("cannot install the {} example: {e}", example.name)).hint(
                    format!("remove {} to start the example afresh", dir.display()),
                ),
            );
        }
    };
    out.event(doc, line);
    let serve = || {
        out.say(example.try_it.replace("{node}", &name));
        serve_until_stopped(
            out,
            &entry,
            &dir,
            node.clone(),
            Serve {
                listen: &entry.address,
                allow_anonymous_publish: false,
                peers,
                busy_poll: interstice_runtime::net::ServerConfig::default().busy_poll,
            },
        )
    };
    #[cfg(feature = "window")]
    if example.name == "graphics" {
        return super::graphics::run(out, &platforms, window, graphics, serve);
    }
    if example.name == "simulation" {
        return simulation::run(out, &node, &simulation.unwrap_or_default(), serve);
    }
    serve()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_runnable_example_is_carried_by_the_binary() {
        for example in EXAMPLES {
            match (example.module, example.unavailable) {
                (Some(module), _) => {
                    let wasm = embedded::wasm(module)
                        .unwrap_or_else(|| panic!("{} is not embedded", example.name));
                    assert!(wasm.starts_with(b"\0asm"), "{} is not wasm", example.name);
                }
                (None, Some(_)) => {}
                (None, None) => panic!("{}: a module, or a reason why not", example.name),
            }
        }
        let names: std::collections::HashSet<&str> = EXAMPLES.iter().map(|e| e.name).collect();
        assert_eq!(names.len(), EXAMPLES.len(), "names are unique");
        let ports: std::collections::HashSet<u16> = EXAMPLES.iter().map(|e| e.port).collect();
        assert_eq!(ports.len(), EXAMPLES.len(), "ports are unique");
    }

    #[test]
    fn the_audio_example_runs_exactly_when_the_build_has_audio() {
        let audio = EXAMPLES.iter().find(|e| e.name == "audio");
        let audio = audio.expect("an audio example");
        assert_eq!(audio.port, 8083);
        assert_eq!(audio.unavailable.is_none(), cfg!(feature = "audio"));
        if let Some(why) = audio.unavailable {
            assert!(why.contains("built without audio"), "{why}");
            assert!(why.contains("--features audio"), "{why}");
        }
    }
}
