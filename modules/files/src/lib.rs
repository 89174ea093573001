//! A test module holding the `File` authority, for the runtime's tests of it.
//!
//! What a host test can observe:
//! - `write`, `append`, `remove`, `mkdir`, `watch` and `unwatch` make one change each and fail
//!   with the host's message when it is refused.
//! - `read(path)` records `path=<content>` in `results`; `list(dir)` records
//!   `dir: name/kind, ..`; `stat(path)` records `path: kind size` or `path: none`. Each fails
//!   with the host's message when the call is refused.
//! - `copy(from, to)` writes what it reads; `write_then_fail` writes, then fails;
//!   `write_and_read` writes, then records what it reads back, the metadata and the listing of
//!   the folder, all before it commits.
//! - The `file_changed` hook records each change in `changes` as `path kind`.
//! - Query `peek(path)` returns the file's text, or `None`.
//!
//! The reducers that only touch files declare no table at all (`reads()`), so nothing but the
//! File authority's own ordering keeps them from running beside those that write `results`.

use interstice_sdk::platform::{FileChange, FileChangeKind};
use interstice_sdk::*;

interstice_module!(authorities: [File]);

/// What reads found, in call order.
#[table]
#[derive(Clone, Debug, PartialEq)]
pub struct Results {
    #[primary_key(auto_inc)]
    pub id: u64,
    pub text: String,
}

/// What the `file_changed` hook was told, in order.
#[table]
#[derive(Clone, Debug, PartialEq)]
pub struct Changes {
    #[primary_key(auto_inc)]
    pub id: u64,
    pub path: String,
    pub kind: String,
}

fn record(ctx: &ReducerContext, text: String) -> Result<(), String> {
    ctx.current
        .tables
        .results()
        .insert(Results { id: 0, text })?;
    Ok(())
}

fn describe(kind: FileKind) -> &'static str {
    match kind {
        FileKind::File => "file",
        FileKind::Dir => "dir",
        FileKind::Symlink => "symlink",
        FileKind::Other => "other",
    }
}

fn listing(ctx: &ReducerContext, dir: &str) -> Result<String, String> {
    let entries = ctx.files().list(dir)?;
    let names: Vec<String> = entries
        .iter()
        .map(|e| format!("{}/{}", e.name, describe(e.kind)))
        .collect();
    Ok(format!("{dir}: {}", names.join(", ")))
}

fn metadata(ctx: &ReducerContext, path: &str) -> Result<String, String> {
    Ok(match ctx.files().metadata(path)? {
        Some(m) => format!("{path}: {} {}", describe(m.kind), m.size),
        None => format!("{path}: none"),
    })
}

#[reducer(reads())]
fn write(ctx: ReducerContext, path: String, text: String) -> Result<(), String> {
    ctx.files().write(&path, text)?;
    Ok(())
}

#[reducer(reads())]
fn append(ctx: ReducerContext, path: String, text: String) -> Result<(), String> {
    ctx.files().append(&path, text)?;
    Ok(())
}

#[reducer(reads())]
fn remove(ctx: ReducerContext, path: String) -> Result<(), String> {
    ctx.files().remove(&path)?;
    Ok(())
}

/// Declares nothing, so it may touch every table of the module.
#[reducer]
fn mkdir(ctx: ReducerContext, path: String) -> Result<(), String> {
    ctx.files().create_dir(&path)?;
    Ok(())
}

#[reducer(reads())]
fn watch(ctx: ReducerContext, path: String) -> Result<(), String> {
    ctx.files().watch(&path)?;
    Ok(())
}

#[reducer(reads())]
fn unwatch(ctx: ReducerContext, path: String) -> Result<(), String> {
    ctx.files().unwatch(&path)?;
    Ok(())
}

/// Declares its table access: the host still orders it with the module's other reducers.
#[reducer(writes(results))]
fn read(ctx: ReducerContext, path: String) -> Result<(), String> {
    let text = ctx.files().read_to_string(&path)?;
    record(&ctx, format!("{path}={text}"))
}

#[reducer(writes(results))]
fn list(ctx: ReducerContext, dir: String) -> Result<(), String> {
    let text = listing(&ctx, &dir)?;
    record(&ctx, text)
}

#[reducer(writes(results))]
fn stat(ctx: ReducerContext, path: String) -> Result<(), String> {
    let text = metadata(&ctx, &path)?;
    record(&ctx, text)
}

#[reducer(reads())]
fn copy(ctx: ReducerContext, from: String, to: String) -> Result<(), String> {
    let bytes = ctx.files().read(&from)?;
    ctx.files().write(&to, bytes)?;
    Ok(())
}

#[reducer(reads())]
fn write_then_fail(ctx: ReducerContext, path: String, text: String) -> Result<(), String> {
    ctx.files().write(&path, text)?;
    Err("changed my mind".into())
}

#[reducer(writes(results))]
fn write_and_read(ctx: ReducerContext, path: String, text: String) -> Result<(), String> {
    ctx.files().write(&path, text)?;
    let read = ctx.files().read_to_string(&path)?;
    let stat = metadata(&ctx, &path)?;
    let parent = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let list = listing(&ctx, parent)?;
    record(&ctx, format!("{path}={read} | {stat} | {list}"))
}

#[reducer(on = "file_changed", writes(changes))]
fn changed(ctx: ReducerContext, change: FileChange) -> Result<(), String> {
    let kind = match change.kind {
        FileChangeKind::Created => "created",
        FileChangeKind::Modified => "modified",
        FileChangeKind::Removed => "removed",
    };
    ctx.current.tables.changes().insert(Changes {
        id: 0,
        path: change.path,
        kind: kind.into(),
    })?;
    Ok(())
}

#[query]
fn peek(ctx: QueryContext, path: String) -> Option<String> {
    ctx.files().read_to_string(&path).ok()
}
