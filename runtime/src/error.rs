//! Errors of the runtime, written for the person who must act on them.

/// A module that cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("not a valid WebAssembly module: {0}")]
    Invalid(String),
    #[error(
        "the module cannot be instantiated: {0} (modules may only import `interstice` host calls)"
    )]
    Instantiate(String),
    #[error(
        "the module has no `{0}` export; is it built with interstice-sdk and `interstice_module!()`?"
    )]
    MissingExport(&'static str),
    #[error(
        "the module has no `{0}` export; is it built with interstice-sdk and `interstice_module!()`?"
    )]
    MissingExportNamed(String),
    #[error("the module's export {0} has the wrong signature")]
    BadExport(String),
    #[error(
        "the module was built for ABI version {found}, this node speaks version {expected}; rebuild it against a matching interstice-sdk"
    )]
    AbiVersion { found: u32, expected: u32 },
    #[error("the module trapped while describing itself in {0}")]
    Trapped(String),
    #[error("invalid module schema: {0}")]
    BadSchema(String),
    #[error("wasm engine: {0}")]
    Engine(String),
}

/// Why a reducer or query failed. Whatever the cause, nothing it wrote was committed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallFailure {
    /// The module returned an error (a reducer's `Err`, or a decode failure in the SDK).
    #[error("{0}")]
    Returned(String),
    #[error("trapped: {0}")]
    Trap(String),
    #[error(
        "ran out of fuel ({fuel} units); the reducer does too much work for one call, or loops forever"
    )]
    OutOfFuel { fuel: u64 },
    #[error("exceeded the memory limit of {limit} bytes per instance")]
    MemoryLimit { limit: usize },
    #[error("bad pointer from the module: {0}")]
    BadPointer(String),
    #[error("{size} bytes cross the boundary, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("{0}")]
    Denied(String),
    #[error("constraint violated: {0}")]
    Constraint(String),
    #[error("host error: {0}")]
    Host(String),
}
