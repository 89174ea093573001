//! `interstice bindings add module|node`: a running node's public schema, written as TOML into a
//! module crate's `src/bindings/`, from which `interstice_module!` generates typed calls.

use std::path::{Path, PathBuf};

use interstice_abi::{ModuleSchema, NodeBinding, Visibility};

use serde_json::json;

use super::connect;
use crate::error::{CliError, Result, code, kind};
use crate::home::Home;
use crate::output::Output;
use crate::runtime;

/// The `src/bindings` folder of the crate at `project` (default: the current folder).
fn bindings_dir(project: Option<&Path>) -> Result<PathBuf> {
    let project = project.unwrap_or_else(|| Path::new("."));
    if !project.join("Cargo.toml").is_file() {
        return Err(CliError::usage(format!(
            "{} is not a module crate (no Cargo.toml)",
            project.display()
        ))
        .hint("run it in the module's folder, or pass the folder as the last argument"));
    }
    let dir = project.join("src").join("bindings");
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::io(format!("cannot create {}", dir.display()), e))?;
    Ok(dir)
}

/// The public schemas of a node's modules.
fn fetch(node: &str) -> Result<(String, String, Vec<ModuleSchema>)> {
    let home = Home::open()?;
    let entry = home.find(node)?.clone();
    runtime()?.block_on(async {
        let client = connect(&home, &entry).await?;
        let schemas = client
            .schema()
            .await
            .map_err(|e| CliError::net(&entry, e))?;
        Ok((
            entry.address.clone(),
            client.node_id().to_owned(),
            schemas
                .iter()
                .filter(|s| s.visibility == Visibility::Public)
                .map(ModuleSchema::to_public)
                .collect(),
        ))
    })
}

fn write(path: &Path, header: &str, body: &str) -> Result<()> {
    let text = format!("{header}{body}");
    std::fs::write(path, text)
        .map_err(|e| CliError::io(format!("cannot write {}", path.display()), e))
}

fn to_toml<T: serde::Serialize>(value: &T) -> Result<String> {
    toml::to_string(value)
        .map_err(|e| CliError::new(format!("cannot write the schema as TOML: {e}")))
}

/// `bindings add module <node> <module> [project]`: a module of the same node, called inside
/// the caller's transaction.
pub fn add_module(out: Output, node: &str, module: &str, project: Option<&Path>) -> Result<()> {
    // The name becomes a file name: check it before asking the node anything.
    interstice_abi::check_module_name(module).map_err(|e| {
        CliError::usage(e).hint("`interstice node schema <node>` lists the modules to bind")
    })?;
    let dir = bindings_dir(project)?;
    let (_, _, schemas) = fetch(node)?;
    let Some(schema) = schemas.into_iter().find(|s| s.name == module) else {
        return Err(CliError::new(format!(
            "node `{node}` has no public module `{module}`"
        ))
        .hint(format!(
            "`interstice node schema {node}` lists its modules; only `visibility: Public` modules can be bound"
        ))
        .code(code::REFUSED)
        .kind(kind::NOT_FOUND));
    };
    let path = dir.join(format!("{module}.toml"));
    let header = format!(
        "# The public schema of module `{module}`, from node `{node}`.\n# Written by `interstice bindings add module {node} {module}`; run it again rather than editing.\n\n"
    );
    write(&path, &header, &to_toml(&schema)?)?;
    let usage = usage(&schema, None);
    out.done(
        json!({
            "written": path.display().to_string(),
            "binding": "module",
            "name": module,
            "modules": [module],
            "usage": usage,
        }),
        || format!("wrote {}\n{}", path.display(), usage.join("\n")),
    );
    Ok(())
}

/// `bindings add node <node> [project]`: every public module of a node, called remotely.
pub fn add_node(out: Output, node: &str, project: Option<&Path>, name: Option<&str>) -> Result<()> {
    let name = name.unwrap_or(node);
    if interstice_abi::check_module_name(name).is_err() {
        return Err(
            CliError::usage(format!("`{name}` cannot name a node binding"))
                .hint("use letters, digits, `_` and `-`, at most 64, e.g. --name hello_node"),
        );
    }
    let dir = bindings_dir(project)?;
    let (address, node_id, modules) = fetch(node)?;
    let binding = NodeBinding {
        name: name.to_owned(),
        address,
        node_id: Some(node_id),
        modules,
    };
    let path = dir.join(format!("node_{name}.toml"));
    let header = format!(
        "# Node `{name}`: its address and the public schemas of its modules, from node `{node}`.\n# Written by `interstice bindings add node {node}`; run it again rather than editing.\n# A node that starts this module may point `{name}` elsewhere: `interstice node start <n> --peer {name}=host:port`.\n\n"
    );
    write(&path, &header, &to_toml(&binding)?)?;
    let usage: Vec<String> = binding
        .modules
        .iter()
        .flat_map(|schema| usage(schema, Some(name)))
        .collect();
    let modules: Vec<&str> = binding.modules.iter().map(|m| m.name.as_str()).collect();
    out.done(
        json!({
            "written": path.display().to_string(),
            "binding": "node",
            "name": name,
            "modules": modules,
            "usage": usage,
        }),
        || {
            let mut text = format!("wrote {}", path.display());
            if binding.modules.is_empty() {
                text.push_str(&format!(
                    "\nnode `{node}` has no public modules yet; publish some and run this again"
                ));
            }
            for line in &usage {
                text.push('\n');
                text.push_str(line);
            }
            text
        },
    );
    Ok(())
}

/// What the generated bindings offer, one line each.
fn usage(schema: &ModuleSchema, node: Option<&str>) -> Vec<String> {
    let mut lines = Vec::new();
    let rust = |s: &str| s.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_");
    let path = match node {
        Some(node) => format!("bindings::{}::{}", rust(node), rust(&schema.name)),
        None => format!("bindings::{}", rust(&schema.name)),
    };
    let prefix = match node {
        Some(node) => format!("{node}.{}", schema.name),
        None => schema.name.clone(),
    };
    for reducer in &schema.reducers {
        let args: Vec<String> = reducer
            .args
            .iter()
            .map(|a| format!("{}: {}", a.name, a.ty))
            .collect();
        let args = if args.is_empty() {
            String::new()
        } else {
            format!(", {}", args.join(", "))
        };
        lines.push(format!(
            "  {path}::{}(&ctx{args})   declare: calls({prefix}.{})",
            reducer.name, reducer.name
        ));
    }
    if node.is_none() {
        for query in &schema.queries {
            lines.push(format!(
                "  {path}::{}(&ctx, ..) -> {}",
                query.name, query.returns
            ));
        }
    }
    for table in &schema.tables {
        lines.push(format!(
            "  #[reducer(on = \"{prefix}.{}.insert\")]   (also update, delete)",
            table.name
        ));
    }
    lines
}
