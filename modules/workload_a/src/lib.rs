//! Workload module `workload_a`: the shared body of `modules/workload/common.rs`, plus a
//! reducer that reads a table of `workload_b` and a subscription to its own `log`.

use interstice_sdk::*;

interstice_module!();

include!("../../workload/common.rs");

/// Copies `workload_b.t5[key]` into this module's `t5[key]`: a cross-module read.
#[reducer(reads(workload_b.t5), writes(t5))]
fn pull(ctx: ReducerContext, key: u64) -> Result<(), String> {
    let other = ctx.current.tables.t5();
    let value = ctx
        .foreign_table::<T5>("workload_b.t5")
        .get(key)?
        .map_or(0, |r| r.value);
    upsert(
        &*other,
        T5 {
            id: key,
            value: value + 1,
        },
    )?;
    Ok(())
}

#[reducer(on = "workload_a.log.insert", writes(t4))]
fn count_log(ctx: ReducerContext, _row: Log) -> Result<(), String> {
    count(&ctx)
}
