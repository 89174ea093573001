//! The raw host imports of ABI version 2 (see `interstice_abi::host`).
//!
//! On wasm32 these are imports from the `interstice` module. On every other target they are
//! stubs that panic: a module's crate must still build and run its native unit tests (the
//! workspace runs `cargo test` natively), but nothing can call into a node from there.
//!
//! Pointers and lengths are `i32` offsets into linear memory, exactly as the ABI states.

#[cfg(target_arch = "wasm32")]
mod imp {
    // The Rust names carry a prefix because some import names (`log`, `next`) are also symbols
    // of the C math library that compiler-builtins may provide; `link_name` sets the import.
    #[link(wasm_import_module = "interstice")]
    unsafe extern "C" {
        #[link_name = "log"]
        pub fn host_log(level: i32, ptr: i32, len: i32);
        #[link_name = "now"]
        pub fn host_now() -> i64;
        #[link_name = "random"]
        pub fn host_random() -> i64;
        #[link_name = "set_error"]
        pub fn host_set_error(ptr: i32, len: i32);
        #[link_name = "return_value"]
        pub fn host_return_value(ptr: i32, len: i32);
        #[link_name = "read_result"]
        pub fn host_read_result(ptr: i32);
        #[link_name = "table"]
        pub fn host_table(name: i32, len: i32) -> i32;
        #[link_name = "insert"]
        pub fn host_insert(table: i32, row: i32, len: i32) -> i64;
        #[link_name = "update"]
        pub fn host_update(table: i32, row: i32, len: i32) -> i64;
        #[link_name = "delete"]
        pub fn host_delete(table: i32, key: i32, len: i32) -> i64;
        #[link_name = "get"]
        pub fn host_get(table: i32, key: i32, len: i32) -> i64;
        #[link_name = "lookup"]
        pub fn host_lookup(table: i32, column: i32, key: i32, len: i32) -> i64;
        #[link_name = "range"]
        pub fn host_range(table: i32, column: i32, range: i32, len: i32) -> i64;
        #[link_name = "scan"]
        pub fn host_scan(table: i32) -> i32;
        #[link_name = "next"]
        pub fn host_next(cursor: i32, max_rows: i32) -> i64;
        #[link_name = "count"]
        pub fn host_count(table: i32) -> i64;
        #[link_name = "clear"]
        pub fn host_clear(table: i32) -> i64;
        #[link_name = "schedule"]
        pub fn host_schedule(name: i32, len: i32, delay_ms: i64, args: i32, args_len: i32) -> i64;
        #[link_name = "call_reducer"]
        pub fn host_call_reducer(name: i32, len: i32, args: i32, args_len: i32) -> i64;
        #[link_name = "call_query"]
        pub fn host_call_query(name: i32, len: i32, args: i32, args_len: i32) -> i64;
        #[link_name = "call_remote"]
        pub fn host_call_remote(name: i32, len: i32, args: i32, args_len: i32) -> i64;
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::missing_safety_doc)]
mod imp {
    const NATIVE: &str =
        "Interstice modules run inside a node; build with --target wasm32-unknown-unknown";

    macro_rules! stubs {
        ($($name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;)*) => {$(
            pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                $(let _ = $arg;)*
                panic!("{NATIVE}")
            }
        )*};
    }

    stubs! {
        host_log(level: i32, ptr: i32, len: i32);
        host_now() -> i64;
        host_random() -> i64;
        host_set_error(ptr: i32, len: i32);
        host_return_value(ptr: i32, len: i32);
        host_read_result(ptr: i32);
        host_table(name: i32, len: i32) -> i32;
        host_insert(table: i32, row: i32, len: i32) -> i64;
        host_update(table: i32, row: i32, len: i32) -> i64;
        host_delete(table: i32, key: i32, len: i32) -> i64;
        host_get(table: i32, key: i32, len: i32) -> i64;
        host_lookup(table: i32, column: i32, key: i32, len: i32) -> i64;
        host_range(table: i32, column: i32, range: i32, len: i32) -> i64;
        host_scan(table: i32) -> i32;
        host_next(cursor: i32, max_rows: i32) -> i64;
        host_count(table: i32) -> i64;
        host_clear(table: i32) -> i64;
        host_schedule(name: i32, len: i32, delay_ms: i64, args: i32, args_len: i32) -> i64;
        host_call_reducer(name: i32, len: i32, args: i32, args_len: i32) -> i64;
        host_call_query(name: i32, len: i32, args: i32, args_len: i32) -> i64;
        host_call_remote(name: i32, len: i32, args: i32, args_len: i32) -> i64;
    }
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
