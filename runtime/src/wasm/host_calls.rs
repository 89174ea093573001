//! The host calls every module gets, under the `interstice` import module. Each checks the
//! bytes it is handed (`guest.rs`) before the running invocation (`exec/`) acts on them.

use interstice_abi::host::{self, LogLevel};
use wasmtime::{Caller, Linker};

use super::guest::{
    HostState, deny_in_query, finish_bytes, finish_error, finish_i32, finish_u64, read_guest,
    read_name, read_result, read_text, with_guest_bytes, with_running,
};

/// The longest `ctx.log` line kept, in bytes; longer ones are cut and say so.
const MAX_LOG_LINE: usize = 4096;
use crate::error::{HostCallError, LoadError};
use crate::exec::{Answer, Exec};

/// Links the core host calls into `linker`.
pub(crate) fn link(linker: &mut Linker<HostState>) -> Result<(), LoadError> {
    let m = host::IMPORT_MODULE;
    let wrap = |e: wasmtime::Error| LoadError::Engine(e.to_string());

    linker
        .func_wrap(
            m,
            "log",
            |mut caller: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| {
                let message = read_text(&mut caller, ptr, len, MAX_LOG_LINE)?;
                with_running(&mut caller, |r| {
                    r.exec.log(LogLevel::from_i32(level), &message);
                    Ok(())
                })
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(m, "now", |mut caller: Caller<'_, HostState>| {
            with_running(&mut caller, |r| Ok(r.exec.now()))
        })
        .map_err(wrap)?;
    linker
        .func_wrap(m, "random", |mut caller: Caller<'_, HostState>| {
            with_running(&mut caller, |r| Ok(r.exec.random() as i64))
        })
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "set_error",
            |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
                let message = read_text(&mut caller, ptr, len, host::MAX_ERROR_MESSAGE)?;
                caller.data_mut().error = Some(message);
                Ok(())
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "return_value",
            |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
                let bytes = read_guest(&mut caller, ptr, len)?;
                caller.data_mut().returned = Some(bytes);
                Ok(())
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "read_result",
            |mut caller: Caller<'_, HostState>, ptr: i32| read_result(&mut caller, ptr),
        )
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "table",
            |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
                let name = read_name(&mut caller, ptr, len)?;
                let ret = with_running(&mut caller, |r| Ok(r.exec.table(&name)))?;
                finish_i32(&mut caller, ret)
            },
        )
        .map_err(wrap)?;

    macro_rules! bytes_op {
        ($name:literal, $writes:expr, |$inv:ident, $table:ident, $bytes:ident| $body:expr) => {
            linker
                .func_wrap(
                    m,
                    $name,
                    |mut caller: Caller<'_, HostState>,
                     $table: i32,
                     ptr: i32,
                     len: i32|
                     -> wasmtime::Result<i64> {
                        if $writes {
                            deny_in_query(&mut caller, $name)?;
                        }
                        let ret = with_guest_bytes(&mut caller, ptr, len, |r, $bytes| {
                            let $inv = &mut r.exec;
                            $body
                        })?;
                        finish_bytes(&mut caller, ret)
                    },
                )
                .map_err(wrap)?;
        };
    }
    bytes_op!("insert", true, |inv, table, bytes| inv.insert(table, bytes));
    bytes_op!("update", true, |inv, table, bytes| inv.update(table, bytes));
    bytes_op!("delete", true, |inv, table, bytes| inv.delete(table, bytes));
    bytes_op!("get", false, |inv, table, bytes| inv.get(table, bytes));

    type ColumnOp = fn(&mut Exec, i32, i32, &[u8]) -> Result<Answer, HostCallError>;
    let column_ops: [(&str, ColumnOp); 2] = [
        ("lookup", |inv, table, column, key| {
            inv.lookup(table, column, key)
        }),
        ("range", |inv, table, column, range| {
            inv.range(table, column, range)
        }),
    ];
    for (import, op) in column_ops {
        linker
            .func_wrap(
                m,
                import,
                move |mut caller: Caller<'_, HostState>,
                      table: i32,
                      column: i32,
                      ptr: i32,
                      len: i32|
                      -> wasmtime::Result<i64> {
                    let ret = with_guest_bytes(&mut caller, ptr, len, |r, bytes| {
                        op(&mut r.exec, table, column, bytes)
                    })?;
                    finish_bytes(&mut caller, ret)
                },
            )
            .map_err(wrap)?;
    }
    linker
        .func_wrap(
            m,
            "scan",
            |mut caller: Caller<'_, HostState>, table: i32| -> wasmtime::Result<i32> {
                let ret = with_running(&mut caller, |r| Ok(r.exec.scan(table)))?;
                finish_i32(&mut caller, ret)
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "next",
            |mut caller: Caller<'_, HostState>,
             cursor: i32,
             max_rows: i32|
             -> wasmtime::Result<i64> {
                let ret = with_running(&mut caller, |r| Ok(r.exec.next(cursor, max_rows)))?;
                finish_bytes(&mut caller, ret)
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "count",
            |mut caller: Caller<'_, HostState>, table: i32| -> wasmtime::Result<i64> {
                let ret = with_running(&mut caller, |r| Ok(r.exec.count(table)))?;
                finish_u64(&mut caller, ret)
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "clear",
            |mut caller: Caller<'_, HostState>, table: i32| -> wasmtime::Result<i64> {
                deny_in_query(&mut caller, "clear")?;
                let ret = with_running(&mut caller, |r| Ok(r.exec.clear(table)))?;
                finish_u64(&mut caller, ret)
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "schedule",
            |mut caller: Caller<'_, HostState>,
             name: i32,
             name_len: i32,
             delay_ms: i64,
             args: i32,
             args_len: i32|
             -> wasmtime::Result<i64> {
                deny_in_query(&mut caller, "schedule")?;
                let name = read_name(&mut caller, name, name_len)?;
                let args = read_guest(&mut caller, args, args_len)?;
                let ret = with_running(&mut caller, |r| {
                    Ok(r.exec.schedule(&name, delay_ms, &args).map(|()| Vec::new()))
                })?;
                finish_bytes(&mut caller, ret)
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "call_remote",
            |mut caller: Caller<'_, HostState>,
             name: i32,
             name_len: i32,
             args: i32,
             args_len: i32|
             -> wasmtime::Result<i64> {
                deny_in_query(&mut caller, "call another node")?;
                let name = read_name(&mut caller, name, name_len)?;
                let args = read_guest(&mut caller, args, args_len)?;
                let ret = with_running(&mut caller, |r| {
                    Ok(r.exec.call_remote(&name, &args).map(|()| Vec::new()))
                })?;
                finish_bytes(&mut caller, ret)
            },
        )
        .map_err(wrap)?;
    for (import, query) in [("call_reducer", false), ("call_query", true)] {
        linker
            .func_wrap(
                m,
                import,
                move |mut caller: Caller<'_, HostState>,
                      name: i32,
                      name_len: i32,
                      args: i32,
                      args_len: i32|
                      -> wasmtime::Result<i64> {
                    if !query {
                        deny_in_query(&mut caller, "call a reducer")?;
                    }
                    let name = read_name(&mut caller, name, name_len)?;
                    let args = read_guest(&mut caller, args, args_len)?;
                    let fuel = caller.get_fuel().unwrap_or(0);
                    let ret = with_running(&mut caller, |r| {
                        let core = r.core.clone();
                        Ok(core.call_nested(&mut r.exec, query, &name, &args, fuel))
                    })?;
                    match ret {
                        Ok((bytes, used)) => {
                            // The callee's work is charged to the caller: nesting cannot
                            // multiply the fuel bound.
                            let _ = caller.set_fuel(fuel.saturating_sub(used));
                            finish_bytes(&mut caller, Ok(bytes))
                        }
                        Err(e) => finish_error(&mut caller, e),
                    }
                },
            )
            .map_err(wrap)?;
    }
    Ok(())
}
