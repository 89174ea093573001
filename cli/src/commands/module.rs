//! `remove`, `call_reducer` and `call_query`.

use interstice_abi::{Field, ModuleSchema, Type, encode_into};
use interstice_runtime::net::ReducerOutcome;
use serde_json::json;

use super::connect;
use crate::error::{CliError, Result, code, kind};
use crate::home::Home;
use crate::output::Output;
use crate::runtime;
use crate::values::{parse_arg, signature, to_json};

pub fn remove(out: Output, node: &str, module: &str) -> Result<()> {
    let home = Home::open()?;
    let entry = home.find(node)?.clone();
    runtime()?.block_on(async {
        let client = connect(&home, &entry).await?;
        client
            .remove(module)
            .await
            .map_err(|e| CliError::net(&entry, e))
    })?;
    out.done(json!({"node": entry.name, "removed": module}), || {
        format!("removed `{module}` from `{}`", entry.name)
    });
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
    out: Output,
    node: &str,
    module: &str,
    function: &str,
    args: &[String],
    query: bool,
) -> Result<()> {
    let home = Home::open()?;
    let entry = home.find(node)?.clone();
    runtime()?.block_on(async {
        let net = |e| CliError::net(&entry, e);
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
                    .code(code::REFUSED)
                    .kind(kind::NOT_FOUND),
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
            out.done(json.clone(), || {
                serde_json::to_string_pretty(&json).unwrap_or_else(|_| json.to_string())
            });
            return Ok(());
        }
        match client
            .call_reducer(module, function, encoded)
            .await
            .map_err(net)?
        {
            ReducerOutcome::Committed { seq, lsn } => {
                out.done(
                    json!({"outcome": "committed", "seq": seq, "lsn": lsn}),
                    || format!("committed (seq {seq})"),
                );
                Ok(())
            }
            ReducerOutcome::Failed { seq, reason } => Err(CliError::new(format!(
                "`{module}.{function}` failed: {reason}"
            ))
            .hint("nothing it wrote was committed")
            .code(code::REFUSED)
            .kind(kind::REDUCER_FAILED)
            .detail("outcome", json!("failed"))
            .detail("seq", json!(seq))
            .detail("reason", json!(reason))),
        }
    })
}
