//! Write Interstice modules: typed tables, deterministic reducers, read-only queries and
//! subscriptions, compiled to WebAssembly and run by a node.
//!
//! ```
//! use interstice_sdk::*;
//!
//! interstice_module!();
//!
//! #[table(public)]
//! pub struct Greetings {
//!     #[primary_key(auto_inc)]
//!     id: u64,
//!     #[index(btree)]
//!     created_at: i64,
//!     name: String,
//! }
//!
//! #[reducer(writes(greetings))]
//! fn hello(ctx: ReducerContext, name: String) -> Result<(), String> {
//!     let row = ctx.current.tables.greetings().insert(Greetings {
//!         id: 0,
//!         created_at: ctx.now(),
//!         name,
//!     })?;
//!     ctx.log(&format!("inserted greeting {}", row.id));
//!     Ok(())
//! }
//!
//! #[reducer(on = "init")]
//! fn init(ctx: ReducerContext) {
//!     ctx.log("hello is installed");
//! }
//!
//! #[query]
//! fn get_greetings(ctx: QueryContext) -> Vec<Greetings> {
//!     ctx.current.tables.greetings().scan().collect()
//! }
//! ```
//!
//! Build it with `cargo build --target wasm32-unknown-unknown --release`. The crate also
//! builds natively (so `cargo test` works), but calling into the node from there panics.
//!
//! # Core concepts
//!
//! - [`interstice_module!`] goes once at the crate root: it exports the glue the node calls.
//!   `interstice_module!(visibility: Public, authorities: [Gpu, Input])` sets the module's
//!   visibility (default `Private`) and claims authorities. The module's name and version are
//!   the Cargo package's.
//! - [`#[table]`](table) makes a struct a table. Options: `public`, `stateful` or `ephemeral`
//!   (default: logged), `name = "..."` (default: the struct name in lowercase). Fields take
//!   `#[primary_key]` (required, once), `#[primary_key(auto_inc)]`, and
//!   `#[index(hash|btree[, unique][, auto_inc])]`.
//!   It generates a trait named like the table, e.g. `greetings`, giving both
//!   `ctx.current.tables.greetings()` and `ctx.current.greetings()`; it must be in scope where
//!   you use it (it is, in the module that defines the table; elsewhere `use path::greetings`).
//!   The handle, `GreetingsHandle`, has `find_by_<column>` for each indexed column and
//!   `range_by_<column>` for each btree index, and derefs to [`TableHandle`]: `insert`,
//!   `update`, `replace` (an update that returns the old row), `delete`, `get`, `range`, `scan`,
//!   `count`, `clear`.
//! - [`#[reducer]`](reducer) marks a transaction: `fn(ctx: ReducerContext, args..)` returning
//!   `()` or `Result<(), E: Display>`. Declare what it touches with
//!   `reads(t, ..)`, `writes(t, ..)` and `calls(module.reducer, ..)`; without a declaration it
//!   may read and write every table of its module and runs serially with them. `on = "event"`
//!   subscribes it to `init`, `load`, `connect`, `disconnect`,
//!   `[node.]module.table.insert|update|delete` (`table.insert` for a table of this module),
//!   or, for a module holding the authority, the platform events `render`, `input`,
//!   `audio_output`, `audio_input` and `file_changed` (their arguments are in [`platform`]).
//! - [`#[query]`](query) marks a read-only function `fn(ctx: QueryContext, args..) -> T`
//!   (or `-> Result<T, E>`); its table handles have no write methods at all.
//! - [`#[interstice_type]`](interstice_type) makes a struct or enum usable in columns,
//!   arguments and results. Built in: `bool`, `u8`..`u64`, `i8`..`i64`, `f32`, `f64`,
//!   `String`, `Vec<T>`, `Option<T>`, `Box<T>`.
//! - Bindings: TOML files in `src/bindings/` (written by `interstice bindings add module|node`)
//!   make `interstice_module!` generate `crate::bindings`: `bindings::<module>::<reducer>(&ctx,
//!   ..)` for a module of the same node (a nested call in this transaction, declared with
//!   `calls(<module>.<reducer>)`), `bindings::<module>::<query>(&ctx, ..)`, and
//!   `bindings::<node>::<module>::<reducer>(&ctx, ..)` for another node: queued with
//!   [`ReducerContext::call_remote`] and sent when this reducer commits. Their row types come
//!   along, so `#[reducer(on = "<node>.<module>.<table>.insert")]` can take
//!   `row: bindings::<node>::<module>::<Row>`.
//! - `ctx.files()`, for a module claiming `authorities: [File]`: read, write, append, list,
//!   remove and watch files in the module's folder on the node ([`file`]); changes are part of
//!   the reducer's transaction.
//! - Platform hooks take the [`platform`] types: `on = "audio_output"` gets an `AudioBlock`
//!   and writes its samples with `ctx.audio().write(..)` ([`audio`]), `on = "audio_input"` an
//!   `AudioCapture`; the module must claim the authority (`authorities: [Audio]`).
//! - Platform authorities: the module holding `Gpu` draws with [`ctx.gpu()`](gpu) (resources
//!   anywhere, passes and draws in its `render` hook); the module holding `Input` gets every
//!   event in its `input` hook and may read the live state in its `render` hook with
//!   [`ctx.input().state()`](input). Hook arguments are in [`platform`].
//! - Host calls that fail return [`Error`] (an [`ErrorCode`] and the host's message); it
//!   converts into `String`, so `?` works in reducers returning `Result<(), String>`.
//!
//! Everything a reducer sees is deterministic: [`ReducerContext::now`] is the invocation's
//! logical time and [`ReducerContext::random_u64`] is seeded from the invocation. Guest memory
//! is scratch: the node may run a module in several instances at once, so state that must
//! survive a call lives in tables, never in `static`s.

extern crate self as interstice_sdk;

pub mod audio;
mod context;
mod error;
mod export;
pub mod file;
pub mod gpu;
pub mod host_calls;
mod imports;
pub mod input;
pub mod platform;
mod sys;
mod table;

pub use context::{Args, Current, QueryCaller, QueryContext, ReducerContext};
pub use error::{Error, ErrorCode, Result};
pub use file::{DirEntry, FileKind, FileMetadata, Files};
pub use interstice_abi::IntersticeType;
pub use interstice_abi::host::LogLevel;
pub use interstice_sdk_macros::{interstice_module, interstice_type, query, reducer, table};
pub use table::{
    AccessMode, ReadOnly, ReadWrite, Scan, Table, TableAccess, TableHandle, Tables, TryScan,
};

/// Used by the code the macros generate; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::*;
}
