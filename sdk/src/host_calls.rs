//! Safe wrappers over the host calls. Most code uses [`ReducerContext`](crate::ReducerContext)
//! and table handles instead; these are for helpers that have no context at hand.

use std::cell::Cell;
use std::thread::LocalKey;

use interstice_abi::IntersticeType;
use interstice_abi::host::{ErrorCode, LogLevel};

use crate::sys;
use crate::{Error, Result};

/// The capacity the SDK reserves for the message of a failed host call: the host never writes a
/// longer one (the SDK reads up to here and drops trailing NUL padding).
pub use interstice_abi::host::MAX_ERROR_MESSAGE;

/// Logs `message` at [`LogLevel::Info`].
pub fn log(message: &str) {
    log_at(LogLevel::Info, message);
}

/// Logs `message` at `level`.
pub fn log_at(level: LogLevel, message: &str) {
    // SAFETY: the pointer and length describe `message`, alive for the call.
    unsafe {
        sys::host_log(
            level as i32,
            sys::ptr(message.as_ptr()),
            sys::len(message.len()),
        )
    }
}

/// The invocation's logical timestamp in microseconds since the Unix epoch.
pub fn now() -> i64 {
    // SAFETY: no arguments.
    unsafe { sys::host_now() }
}

/// The next value of the invocation's deterministic generator.
pub fn random() -> u64 {
    // SAFETY: no arguments.
    unsafe { sys::host_random() as u64 }
}

/// Records why the current reducer is about to fail.
pub fn set_error(message: &str) {
    // SAFETY: the pointer and length describe `message`, alive for the call.
    unsafe { sys::host_set_error(sys::ptr(message.as_ptr()), sys::len(message.len())) }
}

/// Hands a query's encoded result to the host, which copies it.
pub(crate) fn return_value(bytes: &[u8]) {
    // SAFETY: the pointer and length describe `bytes`, alive for the call.
    unsafe { sys::host_return_value(sys::ptr(bytes.as_ptr()), sys::len(bytes.len())) }
}

/// Turns a host call's return into the result buffer's bytes (non-negative: their length) or
/// the error it reports (negative: an [`ErrorCode`] and a message in the result buffer).
pub(crate) fn result_bytes(ret: i64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    read_result(ret, &mut buf)?;
    Ok(buf)
}

/// Like [`result_bytes`], but hands the bytes to `f` from a buffer the SDK keeps between
/// calls instead of a new vector: table reads decode their rows straight out of it.
pub(crate) fn with_result<R>(ret: i64, f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R> {
    with_scratch(&RESULT, |buf| {
        read_result(ret, buf)?;
        f(buf)
    })
}

/// Fills `buf` (empty) with the bytes a host call's non-negative `ret` announced.
fn read_result(ret: i64, buf: &mut Vec<u8>) -> Result<()> {
    let len = status(ret)?;
    let len = usize::try_from(len).map_err(|_| {
        Error::new(
            ErrorCode::BadInput,
            format!("the host reported a result of {len} bytes, more than this module can address"),
        )
    })?;
    buf.resize(len, 0);
    if len > 0 {
        // SAFETY: `buf` has exactly the `len` bytes the host said it will copy.
        unsafe { sys::host_read_result(sys::ptr(buf.as_mut_ptr())) }
    }
    Ok(())
}

/// Encodes `value` into a buffer the SDK keeps between calls and hands the bytes to `f`: a
/// row written or a key looked up costs no allocation once the buffer has grown to fit.
pub(crate) fn with_encoded<V: IntersticeType, R>(value: &V, f: impl FnOnce(&[u8]) -> R) -> R {
    with_scratch(&ENCODED, |buf| {
        value.encode(buf);
        f(buf)
    })
}

// The buffers behind `with_encoded` and `with_result`. A module runs on one thread at a time
// (wasm32 without threads makes these plain statics). Each is taken out while in use, so a
// use inside another (none today) would get a fresh vector rather than share one.
thread_local! {
    static ENCODED: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    static RESULT: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// The largest buffer kept for the next call: a one-off large result (a long scan batch, a
/// big row) is freed rather than held for the module's lifetime.
const SCRATCH_KEPT: usize = 1 << 20;

fn with_scratch<R>(slot: &'static LocalKey<Cell<Vec<u8>>>, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut buf = slot.take();
    buf.clear();
    let out = f(&mut buf);
    if buf.capacity() <= SCRATCH_KEPT {
        slot.set(buf);
    }
    out
}

/// A host call's non-negative return, or the error a negative one stands for.
pub(crate) fn status(ret: i64) -> Result<u64> {
    if ret >= 0 {
        return Ok(ret as u64);
    }
    let code = ErrorCode::from_return(ret).unwrap_or(ErrorCode::Other);
    let mut buf = vec![0u8; MAX_ERROR_MESSAGE];
    // SAFETY: `buf` holds MAX_ERROR_MESSAGE bytes, the most the host writes for a message.
    unsafe { sys::host_read_result(sys::ptr(buf.as_mut_ptr())) }
    let end = buf.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    buf.truncate(end);
    let message = match String::from_utf8(buf) {
        Ok(message) if !message.is_empty() => message,
        Ok(_) => format!("host call failed with {code:?}"),
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Err(Error::new(code, message))
}
