//! Errors of the runtime, written for the person who must act on them.

use interstice_abi::Authority;
use interstice_store::StoreError;

use crate::system::SystemTableError;

/// What went wrong, for the person running the node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error("the node was halted for a test (NodeConfig::halt_after_windows)")]
    Halted,
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    SystemTable(#[from] SystemTableError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("no module `{0}` on this node; `interstice node schema` lists what is installed")]
    NoSuchModule(String),
    #[error("module `{module}` has no {kind} `{name}`")]
    NoSuchFunction {
        module: String,
        kind: &'static str,
        name: String,
    },
    #[error(
        "module `{module}` has no public table `{table}`; only `#[table(public)]` tables can be subscribed to from other nodes"
    )]
    NotSubscribable { module: String, table: String },
    #[error("`{module}.{reducer}` runs on `{event}` events and cannot be called directly")]
    NotCallable {
        module: String,
        reducer: String,
        event: String,
    },
    #[error("{0}")]
    BadArguments(#[from] BadArguments),
    #[error("module `{0}` is already installed; remove it first")]
    AlreadyInstalled(String),
    #[error(
        "authority {authority:?} is already held by module `{holder}`; a node grants each authority to one module"
    )]
    AuthorityTaken {
        authority: Authority,
        holder: String,
    },
    #[error(
        "module `{module}` claims the {authority:?} authority, which this node does not provide{hint}"
    )]
    AuthorityMissing {
        module: String,
        authority: Authority,
        /// What to do about it, with its leading separator.
        hint: String,
    },
    #[error("the {authority:?} authority refuses module `{module}`: {reason}")]
    AuthorityRefused {
        module: String,
        authority: Authority,
        reason: String,
    },
    #[error("module name `{0}` is reserved for the node")]
    Reserved(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("query `{module}.{query}` failed: {reason}")]
    QueryFailed {
        module: String,
        query: String,
        reason: CallFailure,
    },
    #[error("the scheduler failed: {0}")]
    Scheduler(#[from] interstice_scheduler::Error),
    #[error("cannot upgrade module `{module}`: {reason}")]
    Incompatible { module: String, reason: String },
    #[error("{0}")]
    Unauthorized(String),
}

/// Arguments that do not match a reducer's or query's signature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad arguments for `{module}.{function}`: {reason}; expected ({signature})")]
pub struct BadArguments {
    pub module: String,
    pub function: String,
    pub reason: String,
    /// The parameter types, comma-separated.
    pub signature: String,
}

impl BadArguments {
    /// `args` as a call of `module.function(types)` does not take them.
    pub fn new(
        module: &str,
        function: &str,
        types: &[interstice_abi::Type],
        reason: impl std::fmt::Display,
    ) -> Self {
        BadArguments {
            module: module.to_owned(),
            function: function.to_owned(),
            reason: reason.to_string(),
            signature: types
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// A module that cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("not a valid WebAssembly module: {0}")]
    Invalid(String),
    #[error(
        "the module cannot be instantiated: {0} (modules may import the `interstice` host calls, and those of the authorities this node provides)"
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
    #[error("the module failed while describing itself (in `{export}`): {message}")]
    Trapped { export: String, message: String },
    #[error(
        "the module uses the host calls of the {authority:?} authority, which this node does not provide{hint}"
    )]
    AuthorityMissing {
        authority: Authority,
        /// What to do about it, with its leading separator.
        hint: String,
    },
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
        "ran out of fuel ({fuel} units); the call does too much work at once (split it into smaller calls), or loops forever"
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

/// A host call that did not succeed. A `fatal` error fails the whole invocation even if the
/// module ignores the error code (undeclared access, constraint violations: a reducer commits
/// all of its writes or none); any other error is returned to the module as a negative code with
/// the message in the result buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostCallError {
    pub code: interstice_abi::host::ErrorCode,
    pub message: String,
    pub fatal: bool,
}

impl HostCallError {
    /// An error the module sees and may handle.
    pub fn new(code: interstice_abi::host::ErrorCode, message: impl Into<String>) -> Self {
        HostCallError {
            code,
            message: message.into(),
            fatal: false,
        }
    }

    /// An error that fails the invocation.
    pub fn fatal(code: interstice_abi::host::ErrorCode, message: impl Into<String>) -> Self {
        HostCallError {
            code,
            message: message.into(),
            fatal: true,
        }
    }
}

impl From<crate::system::SystemError> for NodeError {
    fn from(e: crate::system::SystemError) -> Self {
        match e {
            crate::system::SystemError::Store(e) => NodeError::Store(e),
            crate::system::SystemError::Row(e) => NodeError::SystemTable(e),
        }
    }
}
