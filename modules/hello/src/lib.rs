//! The example module of the README: a greetings table, a reducer that inserts into it,
//! lifecycle hooks, a subscription that counts inserts, a query and a timer.
//!
//! Build: `cargo build -p hello --target wasm32-unknown-unknown --release`.
//!
//! What a host test can observe:
//! - `hello(name)` inserts one `greetings` row (generated `id`, `created_at = ctx.now()`) and
//!   logs `hello, <name>! (greeting <id>)`; an empty name fails with `name must not be empty`.
//! - `on_greeting` runs once per inserted greeting and increments `stats` row `0`'s
//!   `greetings`, so after N successful `hello` calls that counter is N.
//! - `start_timer` schedules `tick` 1000 ms later; each `tick` increments `stats.ticks`.
//! - `get_greetings()` returns every greeting in id order; `greetings_since(t)` those with
//!   `created_at >= t`.
//! - `connect`/`disconnect` hooks record peer nodes in `peers`.

use interstice_sdk::*;

interstice_module!(visibility: Public);

/// One greeting per `hello` call.
#[table(public)]
#[derive(Clone, Debug, PartialEq)]
pub struct Greetings {
    #[primary_key(auto_inc)]
    pub id: u64,
    #[index(btree)]
    pub created_at: i64,
    pub name: String,
}

/// Counters that the subscription and the timer bump; one row, id `0`.
#[table(stateful)]
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    #[primary_key]
    pub id: u32,
    pub greetings: u64,
    pub ticks: u64,
}

const STATS_ROW: u32 = 0;

/// Inserts a greeting for `name` and logs its id.
#[reducer(writes(greetings))]
fn hello(ctx: ReducerContext, name: String) -> Result<(), String> {
    if name.is_empty() {
        return Err("name must not be empty".to_owned());
    }
    let row = ctx.current.tables.greetings().insert(Greetings {
        id: 0,
        created_at: ctx.now(),
        name,
    })?;
    ctx.log(&format!("hello, {}! (greeting {})", row.name, row.id));
    Ok(())
}

/// First installation: create the counters row.
#[reducer(on = "init", writes(stats))]
fn init(ctx: ReducerContext) -> Result<(), String> {
    ctx.current.tables.stats().insert(Stats {
        id: STATS_ROW,
        greetings: 0,
        ticks: 0,
    })?;
    ctx.log("hello installed");
    Ok(())
}

/// Every load (node start, and after `init`).
#[reducer(on = "load", reads(stats))]
fn load(ctx: ReducerContext) -> Result<(), String> {
    let greetings = ctx
        .current
        .tables
        .stats()
        .get(STATS_ROW)?
        .map_or(0, |s| s.greetings);
    ctx.log(&format!("hello loaded; {greetings} greetings so far"));
    Ok(())
}

/// Counts inserted greetings: fires once per row `hello` inserts.
#[reducer(on = "hello.greetings.insert", writes(stats))]
fn on_greeting(ctx: ReducerContext, row: Greetings) -> Result<(), String> {
    bump(&ctx, |s| s.greetings += 1)?;
    ctx.log_debug(&format!("counted greeting {}", row.id));
    Ok(())
}

/// Schedules `tick` one second of logical time from now.
// Scheduling a reducer is calling it later: declare it. It touches no table, so it conflicts
// only with other invocations that set or fire this module's timers.
#[reducer(calls(tick))]
fn start_timer(ctx: ReducerContext) -> Result<(), String> {
    ctx.schedule("tick", 1000)?;
    Ok(())
}

/// Runs when the timer fires; counts ticks.
#[reducer(writes(stats))]
fn tick(ctx: ReducerContext) -> Result<(), String> {
    bump(&ctx, |s| s.ticks += 1)?;
    Ok(())
}

/// Applies `change` to the counters row, creating it if `init` has not run.
fn bump(ctx: &ReducerContext, change: impl FnOnce(&mut Stats)) -> Result<(), Error> {
    let stats = ctx.current.tables.stats();
    match stats.get(STATS_ROW)? {
        Some(mut row) => {
            change(&mut row);
            stats.update(row)?;
        }
        None => {
            let mut row = Stats {
                id: STATS_ROW,
                greetings: 0,
                ticks: 0,
            };
            change(&mut row);
            stats.insert(row)?;
        }
    }
    Ok(())
}

/// Peer nodes seen by the `connect` and `disconnect` hooks.
#[table]
#[derive(Clone, Debug, PartialEq)]
pub struct Peers {
    #[primary_key]
    pub node_id: String,
    pub connected: bool,
}

/// A peer node connected.
#[reducer(on = "connect", writes(peers))]
fn on_node_connected(ctx: ReducerContext, node_id: String) -> Result<(), String> {
    ctx.log(&format!("peer connected: {node_id}"));
    set_peer(&ctx, node_id, true)
}

/// A peer node disconnected.
#[reducer(on = "disconnect", writes(peers))]
fn on_node_disconnected(ctx: ReducerContext, node_id: String) -> Result<(), String> {
    ctx.log(&format!("peer disconnected: {node_id}"));
    set_peer(&ctx, node_id, false)
}

fn set_peer(ctx: &ReducerContext, node_id: String, connected: bool) -> Result<(), String> {
    let peers = ctx.current.tables.peers();
    let row = Peers { node_id, connected };
    if peers.get(&row.node_id)?.is_some() {
        peers.update(row)?;
    } else {
        peers.insert(row)?;
    }
    Ok(())
}

/// Every greeting, in id order.
#[query(reads(greetings))]
fn get_greetings(ctx: QueryContext) -> Vec<Greetings> {
    ctx.current.tables.greetings().scan().collect()
}

/// Greetings created at or after `since` (µs), through the btree index.
#[query(reads(greetings))]
fn greetings_since(ctx: QueryContext, since: i64) -> Result<Vec<Greetings>, Error> {
    ctx.current.greetings().range_by_created_at(since..)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &[extern "C" fn()] = &[
        __interstice_register_table_greetings,
        __interstice_register_table_peers,
        __interstice_register_table_stats,
        __interstice_register_reducer_hello,
        __interstice_register_reducer_init,
        __interstice_register_reducer_load,
        __interstice_register_reducer_on_greeting,
        __interstice_register_reducer_on_node_connected,
        __interstice_register_reducer_on_node_disconnected,
        __interstice_register_reducer_start_timer,
        __interstice_register_reducer_tick,
        __interstice_register_query_get_greetings,
        __interstice_register_query_greetings_since,
    ];

    #[test]
    fn the_schema_validates_and_declares_what_the_readme_says() {
        REGISTER.iter().for_each(|register| register());
        let schema = __private::schema(&__INTERSTICE_MODULE);
        schema.validate(__private::abi::ABI_VERSION).unwrap();
        assert_eq!(schema.name, "hello");
        let reducers: Vec<&str> = schema.reducers.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            reducers,
            [
                "hello",
                "init",
                "load",
                "on_greeting",
                "on_node_connected",
                "on_node_disconnected",
                "start_timer",
                "tick"
            ]
        );
        let on_greeting = &schema.reducers[3];
        assert_eq!(
            on_greeting.on.as_ref().map(ToString::to_string).as_deref(),
            Some("hello.greetings.insert")
        );
        let greetings = schema.table("greetings").unwrap();
        assert!(greetings.columns[0].auto_inc);
        assert_eq!(
            schema.table("stats").unwrap().persistence,
            __private::abi::Persistence::Stateful
        );
    }
}
