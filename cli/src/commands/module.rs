//! `publish`, `remove`, `call_reducer` and `call_query`.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use interstice_abi::{Field, ModuleSchema, Type, encode_into};
use interstice_runtime::build::{BuildOptions, build_module};
use interstice_runtime::net::{PublishReport, ReducerOutcome};
use serde_json::json;

use super::connect;
use crate::error::{CliError, Result, code};
use crate::home::{Home, NodeEntry};
use crate::runtime;
use crate::values::{parse_arg, signature, to_json};

pub struct PublishOptions {
    pub nodes: String,
    pub module: PathBuf,
    pub target_dir: Option<PathBuf>,
    pub release: bool,
}

/// The spinner `build_module`'s progress callback (a plain `fn`) writes to.
static BUILD_PROGRESS: OnceLock<ProgressBar> = OnceLock::new();

fn report_progress(line: &str) {
    if let Some(bar) = BUILD_PROGRESS.get() {
        bar.set_message(line.trim().to_owned());
    }
}

/// Builds the module (or reads the .wasm file).
fn module_bytes(options: &PublishOptions) -> Result<Vec<u8>> {
    let path = &options.module;
    if path.extension().is_some_and(|e| e == "wasm") {
        return std::fs::read(path)
            .map_err(|e| CliError::io(format!("cannot read {}", path.display()), e));
    }
    let bar = BUILD_PROGRESS.get_or_init(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} building {prefix}: {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar
    });
    bar.set_prefix(path.display().to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    let build = BuildOptions {
        release: options.release,
        target_dir: options.target_dir.clone(),
        progress: Some(report_progress),
    };
    let result = build_module(path, &build);
    bar.finish_and_clear();
    let wasm = result.map_err(|e| {
        CliError::new(format!("cannot build {}: {e}", path.display()))
            .hint("fix the build, or pass a built .wasm file instead of the crate folder")
    })?;
    eprintln!("built {} ({} KiB)", path.display(), wasm.len() / 1024);
    Ok(wasm)
}

pub fn publish(options: PublishOptions) -> Result<()> {
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
    let wasm = module_bytes(&options)?;
    let results = runtime()?.block_on(async {
        let uploads = targets.iter().map(|entry| {
            let (home, wasm) = (&home, wasm.clone());
            async move {
                let client = connect(home, entry).await?;
                client
                    .publish(wasm)
                    .await
                    .map_err(|e| CliError::net(&entry.name, e))
            }
        });
        futures_util::future::join_all(uploads).await
    });
    let mut failed = 0;
    for (entry, result) in targets.iter().zip(results) {
        match result {
            Ok(PublishReport::Installed { module, version }) => {
                println!("{}: installed {module} v{version}", entry.name)
            }
            Ok(PublishReport::Upgraded { module, from, to }) => {
                println!("{}: upgraded {module} from v{from} to v{to}", entry.name)
            }
            Err(e) => {
                failed += 1;
                let what = e
                    .what
                    .strip_prefix(&format!("node `{}`: ", entry.name))
                    .unwrap_or(&e.what);
                println!("{}: refused: {what}", entry.name);
                if let Some(hint) = &e.hint {
                    println!("  hint: {hint}");
                }
            }
        }
    }
    if failed > 0 {
        return Err(CliError::new(format!(
            "publishing failed on {failed} of {} node(s)",
            targets.len()
        ))
        .code(code::REFUSED));
    }
    Ok(())
}

pub fn remove(node: &str, module: &str) -> Result<()> {
    let home = Home::open()?;
    let entry = home.find(node)?.clone();
    runtime()?.block_on(async {
        let client = connect(&home, &entry).await?;
        client
            .remove(module)
            .await
            .map_err(|e| CliError::net(&entry.name, e))
    })?;
    println!("removed `{module}` from `{}`", entry.name);
    Ok(())
}

/// What a function takes and, for queries, returns.
fn find_function<'s>(
    schema: &'s ModuleSchema,
    function: &str,
    query: bool,
) -> Result<(&'s [Field], Option<&'s Type>)> {
    let list = |names: Vec<String>| {
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    if query {
        match schema.queries.iter().find(|q| q.name == function) {
            Some(q) => Ok((&q.args, Some(&q.returns))),
            None => Err(CliError::usage(format!(
                "module `{}` has no query `{function}`",
                schema.name
            ))
            .hint(format!(
                "queries: {}",
                list(
                    schema
                        .queries
                        .iter()
                        .map(|q| signature(&q.name, &q.args))
                        .collect()
                )
            ))),
        }
    } else {
        let callable = || {
            list(
                schema
                    .reducers
                    .iter()
                    .filter(|r| r.on.is_none())
                    .map(|r| signature(&r.name, &r.args))
                    .collect(),
            )
        };
        match schema.reducers.iter().find(|r| r.name == function) {
            Some(r) if r.on.is_some() => Err(CliError::usage(format!(
                "`{}.{function}` runs on `{}` events and cannot be called directly",
                schema.name,
                r.on.as_ref().map(ToString::to_string).unwrap_or_default()
            ))
            .hint(format!("callable reducers: {}", callable()))),
            Some(r) => Ok((&r.args, None)),
            None => Err(CliError::usage(format!(
                "module `{}` has no reducer `{function}`",
                schema.name
            ))
            .hint(format!("reducers: {}", callable()))),
        }
    }
}

pub fn call(
    node: &str,
    module: &str,
    function: &str,
    args: &[String],
    json_output: bool,
    query: bool,
) -> Result<()> {
    let home = Home::open()?;
    let entry = home.find(node)?.clone();
    runtime()?.block_on(async {
        let net = |e| CliError::net(&entry.name, e);
        let client = connect(&home, &entry).await?;
        let schemas = client.schema().await.map_err(net)?;
        let Some(schema) = schemas.iter().find(|s| s.name == module) else {
            let installed: Vec<&str> = schemas.iter().map(|s| s.name.as_str()).collect();
            let mut hint = format!(
                "modules on `{}`: {}",
                entry.name,
                if installed.is_empty() {
                    "none".to_owned()
                } else {
                    installed.join(", ")
                }
            );
            if !client.is_admin() {
                hint.push_str(" (private modules are listed only with the node's admin token)");
            }
            return Err(
                CliError::new(format!("no module `{module}` on `{}`", entry.name))
                    .hint(hint)
                    .code(code::REFUSED),
            );
        };
        let registry = schema.registry().map_err(|e| {
            CliError::new(format!(
                "the node sent an unusable schema for `{module}`: {e}"
            ))
        })?;
        let (fields, returns) = find_function(schema, function, query)?;
        let expected = || format!("expected {}", signature(function, fields));
        if args.len() != fields.len() {
            return Err(CliError::usage(format!(
                "`{module}.{function}` takes {} argument(s), {} given",
                fields.len(),
                args.len()
            ))
            .hint(expected()));
        }
        let mut encoded = Vec::new();
        for (i, (arg, field)) in args.iter().zip(fields).enumerate() {
            let value = parse_arg(arg, &field.ty, &registry).map_err(|e| {
                CliError::usage(format!(
                    "argument {} (`{}: {}`): {e}",
                    i + 1,
                    field.name,
                    field.ty
                ))
                .hint(expected())
            })?;
            encode_into(&value, &mut encoded);
        }
        if let Some(returns) = returns {
            let (bytes, ty) = client
                .call_query(module, function, encoded)
                .await
                .map_err(net)?;
            let ty = if &ty == returns { ty } else { returns.clone() };
            let value = interstice_abi::decode(&bytes, &ty, &registry)
                .map_err(|e| CliError::new(format!("the node's answer is not a {ty}: {e}")))?;
            let json = to_json(&value, &ty, &registry);
            let text = if json_output {
                json.to_string()
            } else {
                serde_json::to_string_pretty(&json).unwrap_or_else(|_| json.to_string())
            };
            println!("{text}");
            return Ok(());
        }
        match client
            .call_reducer(module, function, encoded)
            .await
            .map_err(net)?
        {
            ReducerOutcome::Committed { seq, lsn } => {
                if json_output {
                    println!(
                        "{}",
                        json!({"outcome": "committed", "seq": seq, "lsn": lsn})
                    );
                } else {
                    println!("committed (seq {seq})");
                }
                Ok(())
            }
            ReducerOutcome::Failed { seq, reason } => {
                if json_output {
                    println!(
                        "{}",
                        json!({"outcome": "failed", "seq": seq, "reason": reason})
                    );
                    Err(
                        CliError::new(format!("`{module}.{function}` failed: {reason}"))
                            .code(code::REFUSED),
                    )
                } else {
                    Err(
                        CliError::new(format!("`{module}.{function}` failed: {reason}"))
                            .hint("nothing it wrote was committed")
                            .code(code::REFUSED),
                    )
                }
            }
        }
    })
}
