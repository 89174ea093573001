//! The error every fallible host call returns.

use std::fmt;

pub use interstice_abi::host::ErrorCode;

/// A host call that failed: a negative return mapped to its [`ErrorCode`], with the message the
/// host left in the result buffer. `Display` prints the message.
///
/// A reducer that returns `Result<(), String>` can use `?` on these: `Error` converts into
/// `String`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for String {
    fn from(error: Error) -> String {
        error.message
    }
}

/// `Result<T, interstice_sdk::Error>`; the error type can be replaced, so `Result<(), String>`
/// still means what it always does after `use interstice_sdk::*`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
