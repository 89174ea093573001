//! `interstice publish`: build a module crate (or take a .wasm file) and install or upgrade it on
//! one or several nodes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use interstice_build::{BuildOptions, TargetDir, build_module_with};
use interstice_runtime::net::PublishReport;
use serde_json::{Value as Json, json};

use super::connect;
use crate::error::{CliError, Result, code, kind};
use crate::home::{Home, NodeEntry};
use crate::output::Output;
use crate::runtime;

pub struct PublishOptions {
    pub nodes: String,
    pub module: PathBuf,
    pub target_dir: Option<PathBuf>,
    pub release: bool,
}

/// What was built, for the report.
struct Built {
    wasm: Vec<u8>,
    seconds: Option<f64>,
    target_dir: Option<PathBuf>,
}

/// Builds the module (or reads the .wasm file).
fn module_bytes(home: &Home, options: &PublishOptions) -> Result<Built> {
    let path = &options.module;
    if path.extension().is_some_and(|e| e == "wasm") {
        let wasm = std::fs::read(path)
            .map_err(|e| CliError::io(format!("cannot read {}", path.display()), e))?;
        return Ok(Built {
            wasm,
            seconds: None,
            target_dir: None,
        });
    }
    let (target_dir, dir) = match &options.target_dir {
        Some(dir) => (TargetDir::Dir(dir.clone()), dir.clone()),
        None => (TargetDir::Shared(home.build_cache()), home.build_cache()),
    };
    let build = BuildOptions {
        release: options.release,
        target_dir,
        ..BuildOptions::default()
    };
    let started = Instant::now();
    let result = with_progress(path, |progress| build_module_with(path, &build, progress));
    let seconds = started.elapsed().as_secs_f64();
    let wasm = result.map_err(|e| {
        CliError::new(format!("cannot build {}: {e}", path.display()))
            .kind(kind::BUILD_FAILED)
            .hint("fix the build, or pass a built .wasm file instead of the crate folder")
    })?;
    eprintln!(
        "built {} ({} KiB) in {seconds:.1} s",
        path.display(),
        wasm.len() / 1024
    );
    Ok(Built {
        wasm,
        seconds: Some(seconds),
        target_dir: Some(dir),
    })
}

/// Runs `build`, showing its progress on stderr: a spinner with cargo's latest step on a
/// terminal; otherwise cargo's lines as they come, and a line every 10 s while it is quiet, so
/// that a log or a CI job shows the build is alive.
fn with_progress<T>(path: &Path, build: impl FnOnce(&mut dyn FnMut(&str)) -> T) -> T {
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} building {prefix} ({elapsed}): {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(path.display().to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        let result = build(&mut |line: &str| {
            let line = line.trim();
            if !line.is_empty() {
                bar.set_message(line.to_owned());
            }
        });
        bar.finish_and_clear();
        return result;
    }
    eprintln!(
        "building {} (the first module build compiles the SDK and its dependencies; later ones reuse them)",
        path.display()
    );
    let started = Instant::now();
    let last = Arc::new(Mutex::new(Instant::now()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let heartbeat = {
        let (last, done) = (last.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= Duration::from_secs(10) {
                    eprintln!("  still building ({} s)", started.elapsed().as_secs());
                    *last = Instant::now();
                }
            }
        })
    };
    let result = build(&mut |line: &str| {
        eprintln!("  {}", line.trim_start());
        *last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    });
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = heartbeat.join();
    result
}

pub fn publish(out: Output, options: PublishOptions) -> Result<()> {
    let home = Home::open()?;
    let mut targets: Vec<NodeEntry> = Vec::new();
    for name in options
        .nodes
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let entry = home.find(name)?.clone();
        if !targets.contains(&entry) {
            targets.push(entry);
        }
    }
    if targets.is_empty() {
        return Err(
            CliError::usage("no node given").hint("e.g. `interstice publish a,b ./my-module`")
        );
    }
    let built = module_bytes(&home, &options)?;
    let results = runtime()?.block_on(async {
        let uploads = targets.iter().map(|entry| {
            let (home, wasm) = (&home, built.wasm.clone());
            async move {
                let client = connect(home, entry).await?;
                client
                    .publish(wasm)
                    .await
                    .map_err(|e| CliError::net(entry, e))
            }
        });
        futures_util::future::join_all(uploads).await
    });

    let mut reports = Vec::new();
    let (mut refused, mut unreachable) = (0, 0);
    for (entry, result) in targets.iter().zip(results) {
        let (doc, line) = match result {
            Ok(PublishReport::Installed { module, version }) => (
                json!({"node": entry.name, "outcome": "installed", "module": module, "version": version}),
                format!("{}: installed {module} v{version}", entry.name),
            ),
            Ok(PublishReport::Upgraded { module, from, to }) if from == to => (
                json!({"node": entry.name, "outcome": "replaced", "module": module, "version": to}),
                format!("{}: replaced {module} v{to}", entry.name),
            ),
            Ok(PublishReport::Upgraded { module, from, to }) => (
                json!({"node": entry.name, "outcome": "upgraded", "module": module, "from": from, "version": to}),
                format!("{}: upgraded {module} from v{from} to v{to}", entry.name),
            ),
            Err(e) => {
                let outcome = if e.code == code::UNREACHABLE {
                    unreachable += 1;
                    "unreachable"
                } else {
                    refused += 1;
                    "refused"
                };
                let what = e
                    .what
                    .strip_prefix(&format!("node `{}`: ", entry.name))
                    .unwrap_or(&e.what);
                let mut line = format!("{}: {outcome}: {what}", entry.name);
                if let Some(hint) = &e.hint {
                    line.push_str(&format!("\n  hint: {hint}"));
                }
                let error = e.to_json()["error"].clone();
                (
                    json!({"node": entry.name, "outcome": outcome, "error": error}),
                    line,
                )
            }
        };
        out.say(line);
        reports.push(doc);
    }
    let build = json!({
        "source": options.module.display().to_string(),
        "bytes": built.wasm.len(),
        "seconds": built.seconds,
        "target_dir": built.target_dir.map(|d| d.display().to_string()),
    });
    let failed = refused + unreachable;
    if failed > 0 {
        // Any refusal is the node's answer (3); only unreachable nodes is 4.
        let exit = if refused > 0 {
            code::REFUSED
        } else {
            code::UNREACHABLE
        };
        return Err(CliError::new(format!(
            "publishing failed on {failed} of {} node(s)",
            targets.len()
        ))
        .code(exit)
        .detail("build", build)
        .detail("nodes", Json::Array(reports)));
    }
    if out.json {
        println!("{}", json!({"build": build, "nodes": reports}));
    }
    Ok(())
}
