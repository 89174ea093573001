//! Safe wrappers over the host calls. Most code uses [`ReducerContext`](crate::ReducerContext)
//! and table handles instead; these are for helpers that have no context at hand.

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
    let len = status(ret)?;
    let len = usize::try_from(len).map_err(|_| {
        Error::new(
            ErrorCode::BadInput,
            format!("the host reported a result of {len} bytes, more than this module can address"),
        )
    })?;
    let mut buf = vec![0u8; len];
    if len > 0 {
        // SAFETY: `buf` has exactly the `len` bytes the host said it will copy.
        unsafe { sys::host_read_result(sys::ptr(buf.as_mut_ptr())) }
    }
    Ok(buf)
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
