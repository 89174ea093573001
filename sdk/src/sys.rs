//! The raw host imports of ABI version 2 (see `interstice_abi::host`).
//!
//! On wasm32 these are imports from the `interstice` module. On every other target they are
//! stubs that panic: a module's crate must still build and run its native unit tests (the
//! workspace runs `cargo test` natively), but nothing can call into a node from there.
//!
//! Pointers and lengths are `i32` offsets into linear memory, exactly as the ABI states.

// The Rust names carry a prefix because some import names (`log`, `next`) are also symbols of
// the C math library that compiler-builtins may provide; the macro sets the import's name.
mod imp {
    use crate::imports::host_imports;

    host_imports!("interstice" {
        fn host_log = "log"(level: i32, ptr: i32, len: i32);
        fn host_now = "now"() -> i64;
        fn host_random = "random"() -> i64;
        fn host_set_error = "set_error"(ptr: i32, len: i32);
        fn host_return_value = "return_value"(ptr: i32, len: i32);
        fn host_read_result = "read_result"(ptr: i32);
        fn host_table = "table"(name: i32, len: i32) -> i32;
        fn host_insert = "insert"(table: i32, row: i32, len: i32) -> i64;
        fn host_update = "update"(table: i32, row: i32, len: i32) -> i64;
        fn host_delete = "delete"(table: i32, key: i32, len: i32) -> i64;
        fn host_get = "get"(table: i32, key: i32, len: i32) -> i64;
        fn host_lookup = "lookup"(table: i32, column: i32, key: i32, len: i32) -> i64;
        fn host_range = "range"(table: i32, column: i32, range: i32, len: i32) -> i64;
        fn host_scan = "scan"(table: i32) -> i32;
        fn host_next = "next"(cursor: i32, max_rows: i32) -> i64;
        fn host_count = "count"(table: i32) -> i64;
        fn host_clear = "clear"(table: i32) -> i64;
        fn host_schedule = "schedule"(name: i32, len: i32, delay_ms: i64, args: i32, args_len: i32) -> i64;
        fn host_call_reducer = "call_reducer"(name: i32, len: i32, args: i32, args_len: i32) -> i64;
        fn host_call_query = "call_query"(name: i32, len: i32, args: i32, args_len: i32) -> i64;
        fn host_call_remote = "call_remote"(name: i32, len: i32, args: i32, args_len: i32) -> i64;
    });
}

pub(crate) use imp::*;

/// A pointer as the ABI passes it. Linear memory is 32-bit, so on wasm32 this is lossless; on
/// native targets the value is never used (the stubs panic first).
pub(crate) fn ptr(p: *const u8) -> i32 {
    p as usize as i32
}

/// A length as the ABI passes it; wasm32 slices never exceed `i32::MAX` bytes.
pub(crate) fn len(n: usize) -> i32 {
    n as i32
}
