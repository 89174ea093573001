//! The caller example of the README: it talks to the `hello` module on another node through
//! bindings generated from `src/bindings/node_hello_node.toml` (written by
//! `interstice bindings add node example-hello modules/caller --name hello_node`).
//!
//! Build: `cargo build -p caller --target wasm32-unknown-unknown --release`; run it with
//! `interstice example caller` beside `interstice example hello`.
//!
//! What a host test can observe:
//! - When a peer node connects (`connect`), a `connections` row records it and caller calls
//!   `hello("caller")` on the hello node; `disconnect` records that too.
//! - `greet(name)` calls `hello(name)` on the hello node once `greet` commits.
//! - Every greeting the hello node commits arrives through the subscription to
//!   `hello_node.hello.greetings.insert` and becomes a `received` row, in hello's commit order.
//! - `received()` and `connections()` return those rows in id order.

use interstice_sdk::*;

interstice_module!(visibility: Public);

use bindings::hello_node::hello;

/// A greeting the hello node committed, as the subscription delivered it.
#[table(public)]
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    #[primary_key(auto_inc)]
    pub id: u64,
    /// The greeting's id on the hello node.
    pub greeting_id: u64,
    pub name: String,
    /// When the hello node created it (its logical time).
    pub created_at: i64,
}

/// Peer nodes connecting and disconnecting, in the order this node saw it.
#[table(public)]
#[derive(Clone, Debug, PartialEq)]
pub struct Connections {
    #[primary_key(auto_inc)]
    pub id: u64,
    pub node_id: String,
    pub connected: bool,
    pub at: i64,
}

/// A peer connected: record it and greet the hello node. Undeclared, so it may write this
/// module's tables; remote calls only need the node binding.
#[reducer(on = "connect")]
fn on_connect(ctx: ReducerContext, node_id: String) -> Result<(), String> {
    ctx.log(&format!("peer connected: {node_id}; greeting hello"));
    record(&ctx, node_id, true)?;
    hello::hello(&ctx, "caller".to_owned())?;
    Ok(())
}

/// A peer disconnected.
#[reducer(on = "disconnect")]
fn on_disconnect(ctx: ReducerContext, node_id: String) -> Result<(), String> {
    ctx.log(&format!("peer disconnected: {node_id}"));
    record(&ctx, node_id, false)
}

fn record(ctx: &ReducerContext, node_id: String, connected: bool) -> Result<(), String> {
    ctx.current.tables.connections().insert(Connections {
        id: 0,
        node_id,
        connected,
        at: ctx.now(),
    })?;
    Ok(())
}

/// Asks the hello node to greet `name`; the call leaves when this reducer commits.
#[reducer(calls(hello_node.hello.hello))]
fn greet(ctx: ReducerContext, name: String) -> Result<(), String> {
    if name.is_empty() {
        return Err("name must not be empty".to_owned());
    }
    hello::hello(&ctx, name)?;
    Ok(())
}

/// Every greeting the hello node commits, in its commit order.
#[reducer(on = "hello_node.hello.greetings.insert", writes(received))]
fn on_greeting(ctx: ReducerContext, row: hello::Greetings) -> Result<(), String> {
    ctx.log(&format!(
        "caller received greeting {} for {}",
        row.id, row.name
    ));
    ctx.current.tables.received().insert(Received {
        id: 0,
        greeting_id: row.id,
        name: row.name,
        created_at: row.created_at,
    })?;
    Ok(())
}

/// Every greeting received, in arrival order.
#[query(reads(received))]
fn received(ctx: QueryContext) -> Vec<Received> {
    ctx.current.tables.received().scan().collect()
}

/// Every connect and disconnect seen, in order.
#[query(reads(connections))]
fn connections(ctx: QueryContext) -> Vec<Connections> {
    ctx.current.tables.connections().scan().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &[extern "C" fn()] = &[
        __interstice_register_table_received,
        __interstice_register_table_connections,
        __interstice_register_reducer_on_connect,
        __interstice_register_reducer_on_disconnect,
        __interstice_register_reducer_greet,
        __interstice_register_reducer_on_greeting,
        __interstice_register_query_received,
        __interstice_register_query_connections,
    ];

    #[test]
    fn the_schema_binds_the_hello_node_and_validates() {
        REGISTER.iter().for_each(|register| register());
        let schema = __private::schema(&__INTERSTICE_MODULE);
        schema.validate(__private::abi::ABI_VERSION).unwrap();
        assert_eq!(schema.name, "caller");
        let node = schema.node("hello_node").expect("the node binding");
        assert_eq!(node.address, "127.0.0.1:8080");
        let on_greeting = schema
            .reducers
            .iter()
            .find(|r| r.name == "on_greeting")
            .unwrap();
        assert_eq!(
            on_greeting.on.as_ref().map(ToString::to_string).as_deref(),
            Some("hello_node.hello.greetings.insert")
        );
        let greet = schema.reducers.iter().find(|r| r.name == "greet").unwrap();
        assert_eq!(
            greet.access.as_ref().unwrap().calls,
            ["hello_node.hello.hello"]
        );
    }

    #[test]
    fn generated_types_encode_like_the_hello_rows() {
        let row = hello::Greetings {
            id: 7,
            created_at: -1,
            name: "Ada".into(),
        };
        let bytes = interstice_sdk::__private::abi::to_bytes(&row);
        let back: hello::Greetings = interstice_sdk::__private::abi::from_bytes(&bytes).unwrap();
        assert_eq!(back, row);
        assert_eq!(hello::MODULE, "hello");
        assert_eq!(bindings::hello_node::ADDRESS, "127.0.0.1:8080");
    }
}
