//! `interstice node schema`: the schemas of a node's modules, summarised for people or as JSON.

use std::path::Path;

use interstice_abi::{ModuleSchema, Visibility};
use serde_json::json;

use super::connect;
use crate::error::{CliError, Result};
use crate::home::Home;
use crate::output::Output;
use crate::runtime;

pub fn schema(out: Output, name: &str, file: Option<&Path>) -> Result<()> {
    let home = Home::open()?;
    let entry = home.find(name)?.clone();
    let (schemas, admin, id) = runtime()?.block_on(async {
        let client = connect(&home, &entry).await?;
        let schemas = client
            .schema()
            .await
            .map_err(|e| CliError::net(&entry, e))?;
        Ok::<_, CliError>((schemas, client.is_admin(), client.node_id().to_owned()))
    })?;
    if let Some(file) = file {
        let text = serde_json::to_string_pretty(&schemas)
            .map_err(|e| CliError::new(format!("cannot write the schemas as JSON: {e}")))?;
        std::fs::write(file, text + "\n")
            .map_err(|e| CliError::io(format!("cannot write {}", file.display()), e))?;
        out.done(
            json!({"node": entry.name, "written": file.display().to_string(), "modules": schemas.len()}),
            || format!("wrote {} module schema(s) to {}", schemas.len(), file.display()),
        );
        return Ok(());
    }
    out.done(
        json!({"node": entry.name, "id": id, "admin": admin, "modules": schemas}),
        || {
            let mut text = String::new();
            if schemas.is_empty() {
                text.push_str(&format!("no modules on `{}`\n", entry.name));
            }
            for schema in &schemas {
                text.push_str(&summary(schema));
            }
            text.push_str(&held(&schemas));
            if !admin {
                text.push_str("(public view: private modules and tables are not shown)\n");
            }
            text.trim_end().to_owned()
        },
    );
    Ok(())
}

/// Which module holds each authority on the node.
fn held(schemas: &[ModuleSchema]) -> String {
    let held: Vec<String> = schemas
        .iter()
        .flat_map(|s| {
            s.authorities
                .iter()
                .map(move |a| format!("{a:?} ({})", s.name))
        })
        .collect();
    if held.is_empty() {
        "authorities held on this node: none\n".to_owned()
    } else {
        format!("authorities held on this node: {}\n", held.join(", "))
    }
}

fn vis(v: Visibility) -> &'static str {
    match v {
        Visibility::Public => "public",
        Visibility::Private => "private",
    }
}

/// A human-readable summary of one module.
pub fn summary(schema: &ModuleSchema) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} {} ({})",
        schema.name,
        schema.version,
        vis(schema.visibility)
    );
    let authorities: Vec<String> = schema
        .authorities
        .iter()
        .map(|a| format!("{a:?}"))
        .collect();
    let _ = writeln!(
        s,
        "  authorities: {}",
        if authorities.is_empty() {
            "none".to_owned()
        } else {
            authorities.join(", ")
        }
    );
    for t in &schema.tables {
        let columns: Vec<String> = t
            .columns
            .iter()
            .map(|c| {
                let mut col = format!("{}: {}", c.name, c.ty);
                if c.name == t.primary_key {
                    col.push_str(" [primary key]");
                }
                if c.auto_inc {
                    col.push_str(" [auto_inc]");
                }
                col
            })
            .collect();
        let _ = writeln!(
            s,
            "  table {} ({:?}, {}): {}",
            t.name,
            t.persistence,
            vis(t.visibility),
            columns.join(", ")
        );
    }
    for r in &schema.reducers {
        let mut line = format!("  reducer {}", crate::values::signature(&r.name, &r.args));
        if let Some(on) = &r.on {
            let _ = write!(line, "  on {on}");
        }
        if let Some(a) = &r.access {
            for (what, list) in [
                ("reads", &a.reads),
                ("writes", &a.writes),
                ("calls", &a.calls),
            ] {
                if !list.is_empty() {
                    let _ = write!(line, "  {what}({})", list.join(", "));
                }
            }
        }
        let _ = writeln!(s, "{line}");
    }
    for q in &schema.queries {
        let _ = writeln!(
            s,
            "  query {} -> {}",
            crate::values::signature(&q.name, &q.args),
            q.returns
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use interstice_abi::{ABI_VERSION, Authority};

    use super::*;

    fn module(name: &str, authorities: Vec<Authority>) -> ModuleSchema {
        ModuleSchema {
            abi_version: ABI_VERSION,
            name: name.into(),
            version: "0.1.0".into(),
            visibility: Visibility::Public,
            authorities,
            types: vec![],
            tables: vec![],
            reducers: vec![],
            queries: vec![],
            nodes: vec![],
        }
    }

    #[test]
    fn the_summary_shows_authorities_even_when_there_are_none() {
        let plain = module("plain", vec![]);
        assert!(summary(&plain).contains("  authorities: none"));
        let manager = module("manager", vec![Authority::Module, Authority::File]);
        assert!(summary(&manager).contains("  authorities: Module, File"));
        assert_eq!(
            held(&[plain, manager]),
            "authorities held on this node: Module (manager), File (manager)\n"
        );
    }
}
