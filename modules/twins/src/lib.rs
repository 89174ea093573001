//! A test module for bindings whose types share a name.
//!
//! `src/bindings/node_left.toml` binds `modules/hello` (its `Greetings` has `id`, `created_at`
//! and `name`), `src/bindings/node_right.toml` another `hello` whose `Greetings` has `id` and
//! `name`, and this module has a `Greetings` table of its own. The schema names them
//! `left.hello.Greetings`, `right.hello.Greetings` and `Greetings`.
//!
//! - `greet_both(name)` calls `hello(name)` on both nodes once it commits.
//! - Every greeting either node commits arrives through a subscription and becomes a row here,
//!   with the node it came from; `received()` returns them in id order.
//! - `note(name: Option<String>)` records a greeting from here (`(nobody)` for `None`).
//!
//! With the `conflict` feature it also defines a second local `Greetings` type, and panics
//! while describing itself: two types of one name that the schema cannot tell apart.

use interstice_sdk::*;

interstice_module!(visibility: Public);

use bindings::{left, right};

/// A greeting one of the bound nodes committed.
#[table(public)]
#[derive(Clone, Debug, PartialEq)]
pub struct Greetings {
    #[primary_key(auto_inc)]
    pub id: u64,
    /// `left` or `right`.
    pub origin: String,
    pub name: String,
}

/// Greets `name` on both nodes once this reducer commits.
#[reducer(calls(left.hello.hello, right.hello.hello))]
fn greet_both(ctx: ReducerContext, name: String) -> Result<(), String> {
    left::hello::hello(&ctx, name.clone())?;
    right::hello::hello(&ctx, name)?;
    Ok(())
}

#[reducer(on = "left.hello.greetings.insert", writes(greetings))]
fn from_left(ctx: ReducerContext, row: left::hello::Greetings) -> Result<(), String> {
    record(&ctx, "left", row.name)
}

#[reducer(on = "right.hello.greetings.insert", writes(greetings))]
fn from_right(ctx: ReducerContext, row: right::hello::Greetings) -> Result<(), String> {
    record(&ctx, "right", row.name)
}

/// Records a greeting from this node; the name may be missing.
#[reducer(writes(greetings))]
fn note(ctx: ReducerContext, name: Option<String>) -> Result<(), String> {
    record(&ctx, "here", name.unwrap_or_else(|| "(nobody)".to_owned()))
}

fn record(ctx: &ReducerContext, origin: &str, name: String) -> Result<(), String> {
    ctx.current.tables.greetings().insert(Greetings {
        id: 0,
        origin: origin.to_owned(),
        name,
    })?;
    Ok(())
}

/// Every greeting received, in id order.
#[query(reads(greetings))]
fn received(ctx: QueryContext) -> Vec<Greetings> {
    ctx.current.tables.greetings().scan().collect()
}

#[cfg(feature = "conflict")]
mod conflict {
    /// Not the table's `Greetings`, yet named the same in the schema.
    #[interstice_sdk::interstice_type]
    pub struct Greetings {
        pub text: String,
    }
}
