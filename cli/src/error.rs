//! The CLI's one error type: what went wrong, what to do, and the exit code.

use interstice_runtime::net::{ErrorKind, NetError};

pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// Exit codes, documented in `--help`.
pub mod code {
    /// Something failed (I/O, build, network...).
    pub const FAILURE: i32 = 1;
    /// The command line was wrong (clap uses 2 as well).
    pub const USAGE: i32 = 2;
    /// The node answered, but said no: a reducer failed, a publish was refused.
    pub const REFUSED: i32 = 3;
    /// The node could not be reached.
    pub const UNREACHABLE: i32 = 4;
    /// The feature is not available in this build.
    pub const UNAVAILABLE: i32 = 5;
}

#[derive(Debug)]
pub struct CliError {
    pub what: String,
    pub hint: Option<String>,
    pub code: i32,
}

impl CliError {
    pub fn new(what: impl Into<String>) -> CliError {
        CliError {
            what: what.into(),
            hint: None,
            code: code::FAILURE,
        }
    }

    pub fn usage(what: impl Into<String>) -> CliError {
        CliError::new(what).code(code::USAGE)
    }

    pub fn io(context: impl Into<String>, e: std::io::Error) -> CliError {
        CliError::new(format!("{}: {e}", context.into()))
    }

    pub fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }

    pub fn code(mut self, code: i32) -> CliError {
        self.code = code;
        self
    }

    /// A network error talking to `node`, with what to try next.
    pub fn net(node: &str, e: NetError) -> CliError {
        let what = format!("node `{node}`: {e}");
        match &e {
            NetError::Connect { .. } | NetError::Timeout { .. } | NetError::Closed => {
                CliError::new(what)
                    .hint(format!(
                        "is it running? start a local node with `interstice node start {node}`; `interstice node show {node}` prints its address"
                    ))
                    .code(code::UNREACHABLE)
            }
            NetError::Version { .. } => CliError::new(what)
                .hint("upgrade the older of this CLI and the node")
                .code(code::REFUSED),
            NetError::Refused(_) => CliError::new(what)
                .hint(format!("check the address and token of `{node}` (`interstice node show {node}`)"))
                .code(code::REFUSED),
            NetError::Remote(remote) => {
                let hint = match remote.kind {
                    ErrorKind::Unauthorized => Some(
                        "run the command where the node was created (its admin token is in its folder), or set INTERSTICE_ADMIN_TOKEN",
                    ),
                    ErrorKind::NotFound => Some("`interstice node schema <node>` lists the modules, reducers and queries"),
                    _ => None,
                };
                let err = CliError::new(what).code(code::REFUSED);
                match hint {
                    Some(h) => err.hint(h),
                    None => err,
                }
            }
            _ => CliError::new(what),
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error: {}", self.what)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}
