//! Workload module `workload_b`: the shared body of `modules/workload/common.rs`, plus a
//! reducer that reads a table of `workload_c` and a subscription to its own `log`.

use interstice_sdk::*;

interstice_module!();

include!("../../workload/common.rs");

/// Copies `workload_c.t5[key]` into this module's `t5[key]`: a cross-module read.
#[reducer(reads(workload_c.t5), writes(t5))]
fn pull(ctx: ReducerContext, key: u64) -> Result<(), String> {
    let other = ctx.current.tables.t5();
    let value = ctx
        .foreign_table::<T5>("workload_c.t5")
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

#[reducer(on = "workload_b.log.insert", writes(t4))]
fn count_log(ctx: ReducerContext, _row: Log) -> Result<(), String> {
    count(&ctx)
}

/// Writes `t8[key]` and calls `workload_c.spin9` inside the same transaction.
#[reducer(writes(t8), calls(workload_c.spin9))]
fn relay(ctx: ReducerContext, key: u64, iters: u32) -> Result<(), String> {
    upsert(
        &*ctx.current.tables.t8(),
        T8 {
            id: key,
            value: u64::from(iters),
        },
    )?;
    ctx.call_reducer("workload_c.spin9", (key, iters))?;
    Ok(())
}

/// Writes `t8[key]`, then calls a reducer that fails: nothing of either commits.
#[reducer(writes(t8), calls(workload_c.fail_after_write))]
fn relay_fail(ctx: ReducerContext, key: u64) -> Result<(), String> {
    upsert(&*ctx.current.tables.t8(), T8 { id: key, value: 1 })?;
    ctx.call_reducer("workload_c.fail_after_write", (key,))?;
    Ok(())
}

/// Copies the value of `workload_c.value0(key)` into `t10[key]`, through a query call.
#[reducer(writes(t10), calls(workload_c.value0))]
fn copy_value(ctx: ReducerContext, key: u64) -> Result<(), String> {
    let value: u64 = ctx.call_query("workload_c.value0", (key,))?;
    upsert(&*ctx.current.tables.t10(), T10 { id: key, value })?;
    Ok(())
}
