//! What a reducer or query is handed: its view of the module's tables and the host calls it
//! may make.

use std::ops::Deref;

use interstice_abi::IntersticeType;
use interstice_abi::host::{ErrorCode, LogLevel};

use crate::file::Files;
use crate::host_calls::{self, result_bytes, status};
use crate::table::{AccessMode, ReadOnly, ReadWrite, Table, TableAccess, TableHandle, Tables};
use crate::{Error, Result, sys};

/// The current module, as an invocation sees it: `ctx.current.tables.<table>()`.
///
/// It derefs to its [`Tables`] and implements [`TableAccess`] itself, so the shorter
/// `ctx.current.<table>()` of the seed README works too.
#[derive(Debug)]
pub struct Current<M = ReadWrite> {
    pub tables: Tables<M>,
}

impl<M> Deref for Current<M> {
    type Target = Tables<M>;

    fn deref(&self) -> &Tables<M> {
        &self.tables
    }
}

impl<M: AccessMode> TableAccess for Current<M> {
    type Mode = M;

    fn table<T: Table>(&self) -> TableHandle<T, M> {
        self.tables.table()
    }
}

/// What a reducer receives first: read and write access to the module's tables, the
/// invocation's logical time and randomness, logging, scheduling and nested calls.
///
/// Everything here is deterministic: `now()` is the invocation's ingress timestamp and
/// `random_u64()` is seeded from the invocation, so a replay sees the same values.
#[derive(Debug)]
pub struct ReducerContext {
    pub current: Current<ReadWrite>,
}

/// What a query receives first: read-only access to the module's tables. Its table handles have
/// no `insert`, `update`, `delete` or `clear`, and there is no `schedule` or `call_reducer`.
#[derive(Debug)]
pub struct QueryContext {
    pub current: Current<ReadOnly>,
}

impl ReducerContext {
    /// A read-only handle on table `module.table` of another module on this node, whose rows
    /// have the same columns as `T`. Declare it: `#[reducer(reads(module.table))]`.
    pub fn foreign_table<T: Table>(&self, name: &str) -> TableHandle<T, ReadOnly> {
        TableHandle::foreign(name)
    }

    /// Made by the code `#[reducer]` generates; one per invocation.
    #[doc(hidden)]
    pub fn __new() -> Self {
        ReducerContext {
            current: Current {
                tables: Tables::new(),
            },
        }
    }

    /// The invocation's logical timestamp, in microseconds since the Unix epoch (never the wall
    /// clock at execution).
    pub fn now(&self) -> i64 {
        host_calls::now()
    }

    /// The module's folder on the node, for a module holding the `File` authority: read,
    /// write, list and watch files there ([`crate::file`]).
    pub fn files(&self) -> Files<ReadWrite> {
        Files::new()
    }

    /// Logs at info level.
    pub fn log(&self, message: &str) {
        host_calls::log_at(LogLevel::Info, message);
    }

    /// Logs at `level`.
    pub fn log_at(&self, level: LogLevel, message: &str) {
        host_calls::log_at(level, message);
    }

    pub fn log_error(&self, message: &str) {
        host_calls::log_at(LogLevel::Error, message);
    }

    pub fn log_warn(&self, message: &str) {
        host_calls::log_at(LogLevel::Warn, message);
    }

    pub fn log_debug(&self, message: &str) {
        host_calls::log_at(LogLevel::Debug, message);
    }

    pub fn log_trace(&self, message: &str) {
        host_calls::log_at(LogLevel::Trace, message);
    }

    /// The next value of the invocation's deterministic generator.
    pub fn random_u64(&self) -> u64 {
        host_calls::random()
    }

    /// A deterministic float in `[0, 1)`.
    pub fn random_f64(&self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly.
        (self.random_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A deterministic integer in `0..bound`, without modulo bias. `bound` must not be 0.
    pub fn random_below(&self, bound: u64) -> u64 {
        assert!(bound > 0, "random_below(0): the range is empty");
        // Reject the top partial copy of 0..bound so every value is equally likely.
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let v = self.random_u64();
            if v < zone {
                return v % bound;
            }
        }
    }

    /// Runs reducer `reducer` of this module `delay_ms` milliseconds of logical time later,
    /// with no arguments.
    pub fn schedule(&self, reducer: &str, delay_ms: u64) -> Result<()> {
        self.schedule_with(reducer, delay_ms, ())
    }

    /// Like [`schedule`](Self::schedule), with arguments: a tuple of the reducer's arguments
    /// after its context, e.g. `(name, 3u32)`.
    pub fn schedule_with(&self, reducer: &str, delay_ms: u64, args: impl Args) -> Result<()> {
        let args = args.to_bytes();
        let delay = i64::try_from(delay_ms).unwrap_or(i64::MAX);
        // SAFETY: the pointers and lengths describe `reducer` and `args`, alive for the call.
        let ret = unsafe {
            sys::host_schedule(
                sys::ptr(reducer.as_ptr()),
                sys::len(reducer.len()),
                delay,
                sys::ptr(args.as_ptr()),
                sys::len(args.len()),
            )
        };
        status(ret).map(drop)
    }

    /// Calls reducer `name` (`module.reducer`) inside this transaction, with `args` (a tuple).
    /// The name must be declared in `#[reducer(calls(..))]`.
    pub fn call_reducer(&self, name: &str, args: impl Args) -> Result<()> {
        self.call_reducer_raw(name, &args.to_bytes())
    }

    /// Like [`call_reducer`](Self::call_reducer) with arguments already encoded.
    pub fn call_reducer_raw(&self, name: &str, args: &[u8]) -> Result<()> {
        // SAFETY: the pointers and lengths describe `name` and `args`, alive for the call.
        let ret = unsafe {
            sys::host_call_reducer(
                sys::ptr(name.as_ptr()),
                sys::len(name.len()),
                sys::ptr(args.as_ptr()),
                sys::len(args.len()),
            )
        };
        status(ret).map(drop)
    }

    /// Calls query `name` (`module.query`) and decodes its result as `R`.
    pub fn call_query<R: IntersticeType>(&self, name: &str, args: impl Args) -> Result<R> {
        call_query(name, &args.to_bytes())
    }

    /// Calls query `name` and returns its encoded result.
    pub fn call_query_raw(&self, name: &str, args: &[u8]) -> Result<Vec<u8>> {
        call_query_raw(name, args)
    }

    /// Calls reducer `name` (`node.module.reducer`) of another node, with `args` (a tuple).
    ///
    /// The call is not part of this transaction: the node sends it once this reducer commits,
    /// in commit order, and never if it fails. `Ok` means it is queued; its outcome is logged
    /// by this node, not returned. The node must have a binding (`src/bindings/node_*.toml`);
    /// the generated functions in `bindings::<node>::<module>` call this for you.
    pub fn call_remote(&self, name: &str, args: impl Args) -> Result<()> {
        self.call_remote_raw(name, &args.to_bytes())
    }

    /// Like [`call_remote`](Self::call_remote) with arguments already encoded.
    pub fn call_remote_raw(&self, name: &str, args: &[u8]) -> Result<()> {
        // SAFETY: the pointers and lengths describe `name` and `args`, alive for the call.
        let ret = unsafe {
            sys::host_call_remote(
                sys::ptr(name.as_ptr()),
                sys::len(name.len()),
                sys::ptr(args.as_ptr()),
                sys::len(args.len()),
            )
        };
        status(ret).map(drop)
    }
}

impl QueryContext {
    /// A read-only handle on table `module.table` of another module on this node, whose rows
    /// have the same columns as `T`. Declare it: `#[query(reads(module.table))]`.
    pub fn foreign_table<T: Table>(&self, name: &str) -> TableHandle<T, ReadOnly> {
        TableHandle::foreign(name)
    }

    /// Made by the code `#[query]` generates; one per invocation.
    #[doc(hidden)]
    pub fn __new() -> Self {
        QueryContext {
            current: Current {
                tables: Tables::new(),
            },
        }
    }

    /// The invocation's logical timestamp, in microseconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        host_calls::now()
    }

    /// The module's folder on the node, read-only, for a module holding the `File` authority
    /// ([`crate::file`]).
    pub fn files(&self) -> Files<ReadOnly> {
        Files::new()
    }

    /// Logs at info level.
    pub fn log(&self, message: &str) {
        host_calls::log_at(LogLevel::Info, message);
    }

    /// Logs at `level`.
    pub fn log_at(&self, level: LogLevel, message: &str) {
        host_calls::log_at(level, message);
    }

    /// Calls query `name` (`module.query`) and decodes its result as `R`.
    pub fn call_query<R: IntersticeType>(&self, name: &str, args: impl Args) -> Result<R> {
        call_query(name, &args.to_bytes())
    }

    /// Calls query `name` and returns its encoded result.
    pub fn call_query_raw(&self, name: &str, args: &[u8]) -> Result<Vec<u8>> {
        call_query_raw(name, args)
    }
}

/// What can run queries: [`ReducerContext`] and [`QueryContext`]. Generated bindings take
/// `&impl QueryCaller`, so the same function serves reducers and queries.
pub trait QueryCaller {
    /// Runs query `name` (`module.query`) with encoded arguments; returns its encoded result.
    fn call_query_bytes(&self, name: &str, args: &[u8]) -> Result<Vec<u8>>;

    /// Runs query `name` with encoded arguments and decodes its result as `R`.
    fn call_query_typed<R: IntersticeType>(&self, name: &str, args: &[u8]) -> Result<R> {
        let bytes = self.call_query_bytes(name, args)?;
        decode_result(name, &bytes)
    }
}

impl QueryCaller for ReducerContext {
    fn call_query_bytes(&self, name: &str, args: &[u8]) -> Result<Vec<u8>> {
        call_query_raw(name, args)
    }
}

impl QueryCaller for QueryContext {
    fn call_query_bytes(&self, name: &str, args: &[u8]) -> Result<Vec<u8>> {
        call_query_raw(name, args)
    }
}

fn call_query_raw(name: &str, args: &[u8]) -> Result<Vec<u8>> {
    // SAFETY: the pointers and lengths describe `name` and `args`, alive for the call.
    let ret = unsafe {
        sys::host_call_query(
            sys::ptr(name.as_ptr()),
            sys::len(name.len()),
            sys::ptr(args.as_ptr()),
            sys::len(args.len()),
        )
    };
    result_bytes(ret)
}

fn call_query<R: IntersticeType>(name: &str, args: &[u8]) -> Result<R> {
    decode_result(name, &call_query_raw(name, args)?)
}

fn decode_result<R: IntersticeType>(name: &str, bytes: &[u8]) -> Result<R> {
    interstice_abi::from_bytes(bytes).map_err(|e| {
        Error::new(
            ErrorCode::BadInput,
            format!("the result of query `{name}` does not decode as the expected type: {e}"),
        )
    })
}

/// The arguments of a reducer or query call: `()` or a tuple of [`IntersticeType`]s, encoded
/// one after another as the ABI expects.
pub trait Args {
    fn encode_args(&self, out: &mut Vec<u8>);

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_args(&mut out);
        out
    }
}

macro_rules! tuple_args {
    ($(($($t:ident $i:tt),*))*) => {$(
        impl<$($t: IntersticeType),*> Args for ($($t,)*) {
            fn encode_args(&self, out: &mut Vec<u8>) {
                let _ = out;
                $(self.$i.encode(out);)*
            }
        }
    )*};
}

tuple_args! {
    ()
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_the_concatenated_encodings() {
        assert_eq!(().to_bytes(), Vec::<u8>::new());
        assert_eq!(
            ("hi".to_owned(), 7u16).to_bytes(),
            [2, b'h', b'i', 7, 0].to_vec()
        );
    }
}
