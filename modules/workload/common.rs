// The body shared by the workload modules (`workload_a`, `workload_b`, `workload_c`): each
// includes this file after `interstice_module!()`, so they differ only in their name and in
// the one reducer that reads another module's table.
//
// Sixteen tables `t0`..`t15` let a benchmark choose how many invocations conflict: `spinN`
// writes only `tN`. The other reducers overlap on purpose, for the determinism tests.

/// A counter table; `spinN` writes `tN`.
macro_rules! workload_tables {
    ($($ty:ident $table:ident $spin:ident;)*) => {$(
        #[table]
        #[derive(Clone, Debug, PartialEq)]
        pub struct $ty {
            #[primary_key]
            pub id: u64,
            pub value: u64,
        }

        /// Burns about `iters` rounds of arithmetic (the cost knob), then adds the result to
        /// row `key` of its table.
        #[reducer(writes($table))]
        fn $spin(ctx: ReducerContext, key: u64, iters: u32) -> Result<(), String> {
            let mut x = key ^ 0x9e37_79b9_7f4a_7c15;
            for i in 0..iters {
                x = x.rotate_left(7).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ u64::from(i);
            }
            let table = ctx.current.tables.$table();
            let value = table.get(key)?.map_or(0, |r| r.value);
            upsert(&*table, $ty { id: key, value: value.wrapping_add(x % 1000) })?;
            Ok(())
        }
    )*};
}

workload_tables! {
    T0 t0 spin0; T1 t1 spin1; T2 t2 spin2; T3 t3 spin3;
    T4 t4 spin4; T5 t5 spin5; T6 t6 spin6; T7 t7 spin7;
    T8 t8 spin8; T9 t9 spin9; T10 t10 spin10; T11 t11 spin11;
    T12 t12 spin12; T13 t13 spin13; T14 t14 spin14; T15 t15 spin15;
}

/// Every insert into `log` is counted here by a subscription.
#[table]
#[derive(Clone, Debug, PartialEq)]
pub struct Log {
    #[primary_key(auto_inc)]
    pub id: u64,
    pub at: i64,
    pub note: u64,
}

/// Inserts or replaces a row by primary key.
fn upsert<T: Table>(table: &TableHandle<T, ReadWrite>, row: T) -> Result<(), Error> {
    if table.get(row.key())?.is_some() {
        table.update(row)?;
    } else {
        table.insert(row)?;
    }
    Ok(())
}

/// Sets `t11[key]` to `value` and records in `t12[key]` the value it replaced (`0` for a new
/// row): `replace` hands back the row it replaced, `update` does not.
#[reducer(writes(t11, t12))]
fn exchange(ctx: ReducerContext, key: u64, value: u64) -> Result<(), String> {
    let t11 = ctx.current.tables.t11();
    let row = T11 { id: key, value };
    let old = if t11.get(key)?.is_some() {
        t11.replace(row)?.value
    } else {
        t11.insert(row)?;
        0
    };
    upsert(&*ctx.current.tables.t12(), T12 { id: key, value: old })?;
    Ok(())
}

/// Moves `amount` from `t0[key]` to `t1[key]` (reads and writes both).
#[reducer(writes(t0, t1))]
fn transfer(ctx: ReducerContext, key: u64, amount: u64) -> Result<(), String> {
    let t0 = ctx.current.tables.t0();
    let t1 = ctx.current.tables.t1();
    let from = t0.get(key)?.map_or(0, |r| r.value);
    let moved = amount.min(from);
    upsert(&*t0, T0 { id: key, value: from - moved })?;
    let to = t1.get(key)?.map_or(0, |r| r.value);
    upsert(&*t1, T1 { id: key, value: to + moved })?;
    Ok(())
}

/// Reads `t1` and `t2`, writes a mix of them, the logical time and the random generator to
/// `t3`, and appends to `log` (which triggers `count_log`).
#[reducer(reads(t1, t2), writes(t3, log))]
fn mix(ctx: ReducerContext, key: u64) -> Result<(), String> {
    let a = ctx.current.tables.t1().get(key)?.map_or(0, |r| r.value);
    let b = ctx.current.tables.t2().get(key)?.map_or(0, |r| r.value);
    let value = a.wrapping_mul(31).wrapping_add(b) ^ ctx.random_u64() ^ ctx.now() as u64;
    upsert(&*ctx.current.tables.t3(), T3 { id: key, value })?;
    ctx.current.tables.log().insert(Log { id: 0, at: ctx.now(), note: value })?;
    Ok(())
}

/// Fails after writing, so nothing it wrote may commit.
#[reducer(writes(t2))]
fn fail_after_write(ctx: ReducerContext, key: u64) -> Result<(), String> {
    upsert(&*ctx.current.tables.t2(), T2 { id: key, value: 999_999 })?;
    Err(format!("refused key {key}"))
}

/// Panics after writing: the node fails it, saying which reducer panicked, and nothing it
/// wrote commits.
#[reducer(writes(t2))]
fn panic_after_write(ctx: ReducerContext, key: u64) -> Result<(), String> {
    upsert(&*ctx.current.tables.t2(), T2 { id: key, value: 1 })?;
    panic!("no key {key} here");
}

/// No declaration: may touch every table of the module, so it conflicts with everything here.
#[reducer]
fn sweep(ctx: ReducerContext, key: u64) -> Result<(), String> {
    let sum: u64 = ctx.current.tables.t0().scan().map(|r| r.value).sum::<u64>()
        + ctx.current.tables.t3().scan().map(|r| r.value % 7).sum::<u64>();
    upsert(&*ctx.current.tables.t2(), T2 { id: key, value: sum })?;
    Ok(())
}

/// Counts `log` inserts in `t4[0]`; each crate subscribes it to its own `log` table.
fn count(ctx: &ReducerContext) -> Result<(), String> {
    let t4 = ctx.current.tables.t4();
    let n = t4.get(0)?.map_or(0, |r| r.value);
    upsert(&*t4, T4 { id: 0, value: n + 1 })?;
    Ok(())
}

/// The value of `t0[key]`, or 0.
#[query(reads(t0))]
fn value0(ctx: QueryContext, key: u64) -> Result<u64, Error> {
    Ok(ctx.current.tables.t0().get(key)?.map_or(0, |r| r.value))
}

/// The part that links a workload module to the next one (a → b → c → a): a cross-module
/// read, nested calls of a reducer and a query, and a subscription to its own `log`.
macro_rules! links_to {
    ($next:ident) => {
        /// Copies `<next>.t5[key]` into this module's `t5[key]`: a cross-module read.
        #[reducer(reads($next.t5), writes(t5))]
        fn pull(ctx: ReducerContext, key: u64) -> Result<(), String> {
            let other = ctx.current.tables.t5();
            let value = ctx
                .foreign_table::<T5>(concat!(stringify!($next), ".t5"))
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

        #[reducer(on = "log.insert", writes(t4))]
        fn count_log(ctx: ReducerContext, _row: Log) -> Result<(), String> {
            count(&ctx)
        }

        /// Writes `t8[key]` and calls `<next>.spin9` inside the same transaction.
        #[reducer(writes(t8), calls($next.spin9))]
        fn relay(ctx: ReducerContext, key: u64, iters: u32) -> Result<(), String> {
            upsert(
                &*ctx.current.tables.t8(),
                T8 {
                    id: key,
                    value: u64::from(iters),
                },
            )?;
            ctx.call_reducer(concat!(stringify!($next), ".spin9"), (key, iters))?;
            Ok(())
        }

        /// Writes `t8[key]`, then calls a reducer that fails: nothing of either commits.
        #[reducer(writes(t8), calls($next.fail_after_write))]
        fn relay_fail(ctx: ReducerContext, key: u64) -> Result<(), String> {
            upsert(&*ctx.current.tables.t8(), T8 { id: key, value: 1 })?;
            ctx.call_reducer(concat!(stringify!($next), ".fail_after_write"), (key,))?;
            Ok(())
        }

        /// Copies the value of `<next>.value0(key)` into `t10[key]`, through a query call.
        #[reducer(writes(t10), calls($next.value0))]
        fn copy_value(ctx: ReducerContext, key: u64) -> Result<(), String> {
            let value: u64 = ctx.call_query(concat!(stringify!($next), ".value0"), (key,))?;
            upsert(&*ctx.current.tables.t10(), T10 { id: key, value })?;
            Ok(())
        }
    };
}
