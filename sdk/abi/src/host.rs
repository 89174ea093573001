//! The host ↔ module calling convention, version [`ABI_VERSION`](crate::ABI_VERSION).
//!
//! All integers are wasm32 `i32`/`i64`; pointers and lengths are offsets into the module's
//! exported `memory`. Bytes that carry values use the positional encoding of [`crate::encode`].
//!
//! # What the module exports
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `memory` | memory | the module's linear memory |
//! | [`EXPORT_ABI_VERSION`] | `() -> i32` | the ABI version the module was built for |
//! | `__interstice_register_*` | `()` | one per table, type, reducer and query; see below |
//! | [`EXPORT_SCHEMA`] | `() -> i64` | `ptr << 32 \| len` of the postcard-encoded [`ModuleSchema`](crate::ModuleSchema) |
//! | [`EXPORT_ALLOC`] | `(len: i32) -> i32` | memory for the host to write arguments into; `0` on failure |
//! | [`EXPORT_REDUCER`] | `(index: i32, args: i32, len: i32) -> i32` | runs reducer number `index` of the schema; `0` ok, else failed (see `set_error`) |
//! | [`EXPORT_QUERY`] | `(index: i32, args: i32, len: i32) -> i32` | runs query number `index`; its result is handed over with `return_value` |
//!
//! Arguments are the encoding of the struct of the function's arguments (after the context).
//! A function without arguments encodes to no bytes: the host then calls it with `args = 0,
//! len = 0` and no `interstice_alloc` before, so a module must not read `args` when `len` is 0.
//!
//! Items are declared all over a crate, and wasm has no link-time registry, so each `#[table]`,
//! `#[interstice_type]`, `#[reducer]` and `#[query]` exports a function whose name starts with
//! [`EXPORT_REGISTER_PREFIX`]. After instantiating, the host calls every such export, in
//! byte order of their names, then [`EXPORT_SCHEMA`]. Reducers and queries are numbered by their
//! position in the schema, which lists them sorted by name.
//!
//! # What the host provides (import module [`IMPORT_MODULE`])
//!
//! Host calls that produce bytes (a row, a list of rows, an error message) leave them in a
//! per-invocation *result buffer* and return its length; the module then allocates that many
//! bytes and calls `read_result(ptr)`. A negative return is an [`ErrorCode`]; the result buffer
//! then holds a UTF-8 message.
//!
//! | import | signature | meaning |
//! |---|---|---|
//! | `log` | `(level: i32, ptr: i32, len: i32)` | a log line; level 0 error … 4 trace |
//! | `now` | `() -> i64` | the invocation's logical timestamp (µs since the Unix epoch) |
//! | `random` | `() -> i64` | the next value of the invocation's deterministic generator |
//! | `set_error` | `(ptr: i32, len: i32)` | the reason a reducer is about to return non-zero |
//! | `return_value` | `(ptr: i32, len: i32)` | a query's encoded result |
//! | `read_result` | `(ptr: i32)` | copies the result buffer into the module's memory |
//! | `table` | `(name: i32, len: i32) -> i32` | a handle for `table` (own module) or `module.table` |
//! | `insert` | `(table: i32, row: i32, len: i32) -> i64` | inserts; result: the row with generated values |
//! | `update` | `(table: i32, row: i32, len: i32) -> i64` | replaces the row with the same primary key; result: the old row |
//! | `delete` | `(table: i32, key: i32, len: i32) -> i64` | deletes by primary key; result: the deleted row |
//! | `get` | `(table: i32, key: i32, len: i32) -> i64` | result: `Option<row>` by primary key |
//! | `lookup` | `(table: i32, column: i32, key: i32, len: i32) -> i64` | result: `Vec<row>` whose indexed column equals the key |
//! | `range` | `(table: i32, column: i32, range: i32, len: i32) -> i64` | result: `Vec<row>` in a [`KeyRange`] of a btree index (`column = -1`: the primary key) |
//! | `scan` | `(table: i32) -> i32` | opens a cursor over the table in primary-key order |
//! | `next` | `(cursor: i32, max_rows: i32) -> i64` | result: the next `Vec<row>` batch; empty when done |
//! | `count` | `(table: i32) -> i64` | number of rows |
//! | `clear` | `(table: i32) -> i64` | deletes every row |
//! | `schedule` | `(name: i32, len: i32, delay_ms: i64, args: i32, args_len: i32) -> i64` | runs reducer `name` of this module `delay_ms` of logical time later |
//! | `call_reducer` | `(name: i32, len: i32, args: i32, args_len: i32) -> i64` | calls `module.reducer` inside the caller's transaction |
//! | `call_query` | `(name: i32, len: i32, args: i32, args_len: i32) -> i64` | calls `module.query`; result: its value |
//! | `call_remote` | `(name: i32, len: i32, args: i32, args_len: i32) -> i64` | sends a call to `node.module.reducer` once this transaction commits; `0` when queued |
//!
//! # Rules the host enforces
//!
//! - Every pointer and length is checked against the memory before use; a bad one fails the
//!   invocation (it does not trap the host).
//! - Touching a table outside the reducer's declared access fails the invocation with a message
//!   naming the table and the attribute to add. So does a constraint violation: the module sees
//!   the error code (so it can stop early), but nothing it wrote commits.
//! - Queries may not write, schedule or call reducers.
//! - A remote call (`call_remote`) names a node of the module's [`nodes`](crate::ModuleSchema::nodes).
//!   It is not run in the caller's transaction: it is sent after the caller commits, in commit
//!   order, and never if the caller fails. Its outcome does not reach the caller.

use crate::codec::{Decoder, write_varint};
use crate::{DecodeError, Type, TypeRegistry, Value, encode_into};

/// The longest error message a host call leaves in the result buffer, in bytes. The host cuts
/// longer messages (on a character boundary), so a module may read errors into a buffer of this
/// size without asking for the length.
pub const MAX_ERROR_MESSAGE: usize = 4096;

/// The wasm import module name of every core host call.
pub const IMPORT_MODULE: &str = "interstice";

/// The import module of each authority's host calls. A module importing from one must claim
/// the authority; a node that does not provide it refuses the module with that reason.
pub const AUTHORITY_IMPORTS: [(&str, crate::Authority); 4] = [
    ("interstice_gpu", crate::Authority::Gpu),
    ("interstice_input", crate::Authority::Input),
    ("interstice_audio", crate::Authority::Audio),
    ("interstice_file", crate::Authority::File),
];

/// The authority whose host calls live in import module `module`.
pub fn authority_of_import(module: &str) -> Option<crate::Authority> {
    AUTHORITY_IMPORTS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, authority)| *authority)
}

pub const EXPORT_ABI_VERSION: &str = "interstice_abi_version";
pub const EXPORT_REGISTER_PREFIX: &str = "__interstice_register_";
pub const EXPORT_SCHEMA: &str = "interstice_schema";
pub const EXPORT_ALLOC: &str = "interstice_alloc";
pub const EXPORT_REDUCER: &str = "interstice_reducer";
pub const EXPORT_QUERY: &str = "interstice_query";

/// Why a host call failed; returned negated (`-(code as i64)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Bytes that do not decode, or a bad pointer or length.
    BadInput = 1,
    /// The table, reducer or query does not exist.
    NotFound = 2,
    /// A declared-access or authority rule forbids this call.
    Denied = 3,
    /// A primary-key or unique-index constraint.
    Constraint = 4,
    /// No row with that key.
    NoSuchRow = 5,
    /// Anything else; the message says what.
    Other = 6,
}

impl ErrorCode {
    /// The code for a negative host-call return value.
    pub fn from_return(ret: i64) -> Option<ErrorCode> {
        Some(match ret {
            -1 => ErrorCode::BadInput,
            -2 => ErrorCode::NotFound,
            -3 => ErrorCode::Denied,
            -4 => ErrorCode::Constraint,
            -5 => ErrorCode::NoSuchRow,
            -6 => ErrorCode::Other,
            _ => return None,
        })
    }

    /// The negative value a host call returns for this code.
    pub fn to_return(self) -> i64 {
        -(self as i64)
    }
}

/// One end of a [`KeyRange`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bound {
    Unbounded,
    Included(Value),
    Excluded(Value),
}

/// A range of keys for `range`. Encoded as two bounds, each a varint tag (`0` unbounded,
/// `1` included, `2` excluded) followed by the key for tags `1` and `2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    pub start: Bound,
    pub end: Bound,
}

impl KeyRange {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for bound in [&self.start, &self.end] {
            match bound {
                Bound::Unbounded => write_varint(0, &mut out),
                Bound::Included(v) => {
                    write_varint(1, &mut out);
                    encode_into(v, &mut out);
                }
                Bound::Excluded(v) => {
                    write_varint(2, &mut out);
                    encode_into(v, &mut out);
                }
            }
        }
        out
    }

    /// Decodes a range over keys of type `key`.
    pub fn decode(bytes: &[u8], key: &Type, registry: &TypeRegistry) -> Result<Self, DecodeError> {
        let mut decoder = Decoder::new(bytes, registry, Default::default());
        let bound = |decoder: &mut Decoder<'_>| -> Result<Bound, DecodeError> {
            let offset = decoder.pos();
            Ok(match decoder.varint()? {
                0 => Bound::Unbounded,
                1 => Bound::Included(decoder.value(key, 0)?),
                2 => Bound::Excluded(decoder.value(key, 0)?),
                tag => {
                    return Err(DecodeError::InvalidTag {
                        what: "range bound",
                        tag,
                        offset,
                    });
                }
            })
        };
        let start = bound(&mut decoder)?;
        let end = bound(&mut decoder)?;
        decoder.finish()?;
        Ok(KeyRange { start, end })
    }
}

/// Log levels of the `log` host call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum LogLevel {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
    Trace = 4,
}

impl LogLevel {
    pub fn from_i32(level: i32) -> LogLevel {
        match level {
            i32::MIN..=0 => LogLevel::Error,
            1 => LogLevel::Warn,
            2 => LogLevel::Info,
            3 => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }
}

/// Packs a pointer and a length into the `i64` that [`EXPORT_SCHEMA`] returns.
pub fn pack_ptr_len(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}

/// The inverse of [`pack_ptr_len`].
pub fn unpack_ptr_len(packed: i64) -> (u32, u32) {
    let packed = packed as u64;
    ((packed >> 32) as u32, packed as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip() {
        for code in [
            ErrorCode::BadInput,
            ErrorCode::NotFound,
            ErrorCode::Denied,
            ErrorCode::Constraint,
            ErrorCode::NoSuchRow,
            ErrorCode::Other,
        ] {
            assert_eq!(ErrorCode::from_return(code.to_return()), Some(code));
        }
        assert_eq!(ErrorCode::from_return(0), None);
        assert_eq!(ErrorCode::from_return(-99), None);
    }

    #[test]
    fn ranges_round_trip_and_reject_bad_tags() {
        let range = KeyRange {
            start: Bound::Included(Value::I64(-3)),
            end: Bound::Unbounded,
        };
        let reg = TypeRegistry::default();
        assert_eq!(
            KeyRange::decode(&range.encode(), &Type::I64, &reg),
            Ok(range)
        );
        assert!(KeyRange::decode(&[3, 0], &Type::I64, &reg).is_err());
        assert!(KeyRange::decode(&[0, 0, 0], &Type::I64, &reg).is_err());
    }

    #[test]
    fn pointers_pack_into_one_i64() {
        assert_eq!(
            unpack_ptr_len(pack_ptr_len(0xdead_beef, 12)),
            (0xdead_beef, 12)
        );
        assert_eq!(
            unpack_ptr_len(pack_ptr_len(u32::MAX, u32::MAX)),
            (u32::MAX, u32::MAX)
        );
    }
}
