//! The CLI's one error type: what went wrong, what to do, its kind and the exit code.

use interstice_runtime::net::{ErrorKind, NetError};
use serde_json::{Map, Value as Json, json};

use crate::home::NodeEntry;

pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// Exit codes, documented in `--help` and `docs/CLI-JSON.md`.
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

/// The `kind` of an error in `--json` output; `docs/CLI-JSON.md` lists them with their codes.
pub mod kind {
    pub const FAILURE: &str = "failure";
    pub const USAGE: &str = "usage";
    pub const IO: &str = "io";
    pub const NO_SUCH_NODE: &str = "no_such_node";
    pub const BUILD_FAILED: &str = "build_failed";
    pub const REFUSED: &str = "refused";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const NOT_FOUND: &str = "not_found";
    pub const REDUCER_FAILED: &str = "reducer_failed";
    pub const UNREACHABLE: &str = "unreachable";
    pub const UNAVAILABLE: &str = "unavailable";
}

#[derive(Debug)]
pub struct CliError {
    pub what: String,
    pub hint: Option<String>,
    pub code: i32,
    pub kind: &'static str,
    /// Members added beside `error` in the JSON document (partial results, e.g. the nodes a
    /// publish reached).
    pub details: Map<String, Json>,
}

impl CliError {
    pub fn new(what: impl Into<String>) -> CliError {
        CliError {
            what: what.into(),
            hint: None,
            code: code::FAILURE,
            kind: kind::FAILURE,
            details: Map::new(),
        }
    }

    pub fn usage(what: impl Into<String>) -> CliError {
        CliError::new(what).code(code::USAGE)
    }

    pub fn io(context: impl Into<String>, e: std::io::Error) -> CliError {
        CliError::new(format!("{}: {e}", context.into())).kind(kind::IO)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the exit code, and the kind that goes with it (`kind` refines it).
    pub fn code(mut self, code: i32) -> CliError {
        self.code = code;
        self.kind = match code {
            code::USAGE => kind::USAGE,
            code::REFUSED => kind::REFUSED,
            code::UNREACHABLE => kind::UNREACHABLE,
            code::UNAVAILABLE => kind::UNAVAILABLE,
            _ => kind::FAILURE,
        };
        self
    }

    pub fn kind(mut self, kind: &'static str) -> CliError {
        self.kind = kind;
        self
    }

    pub fn detail(mut self, key: &str, value: Json) -> CliError {
        self.details.insert(key.to_owned(), value);
        self
    }

    /// A network error talking to `node`, with what to try next.
    pub fn net(node: &NodeEntry, e: NetError) -> CliError {
        let name = &node.name;
        let what = format!("node `{name}`: {e}");
        match &e {
            NetError::Connect { .. } | NetError::Timeout { .. } | NetError::Closed => {
                let hint = if node.local {
                    format!(
                        "is it running? start it with `interstice node start {name}`; `interstice node show {name}` prints its address"
                    )
                } else {
                    format!(
                        "is it running, and is {} reachable from here? `interstice node add` registers a node under a new address",
                        node.address
                    )
                };
                CliError::new(what).hint(hint).code(code::UNREACHABLE)
            }
            NetError::Version { .. } => CliError::new(what)
                .hint("upgrade the older of this CLI and the node")
                .code(code::REFUSED),
            NetError::Refused(_) => CliError::new(what)
                .hint(format!(
                    "check the address and token of `{name}` (`interstice node show {name}`)"
                ))
                .code(code::REFUSED),
            NetError::Remote(remote) => {
                let err = CliError::new(what).code(code::REFUSED);
                match remote.kind {
                    ErrorKind::Unauthorized => err.kind(kind::UNAUTHORIZED).hint(
                        "run the command where the node was created (its admin token is in its folder), or set INTERSTICE_ADMIN_TOKEN",
                    ),
                    ErrorKind::NotFound => err.kind(kind::NOT_FOUND).hint(
                        "`interstice node schema <node>` lists the modules, reducers and queries",
                    ),
                    ErrorKind::BadRequest => err.kind(kind::USAGE),
                    _ => err,
                }
            }
            _ => CliError::new(what),
        }
    }

    /// The JSON document `--json` prints for this error: `{"error": {...}}` and the details.
    pub fn to_json(&self) -> Json {
        let mut doc = self.details.clone();
        doc.insert(
            "error".to_owned(),
            json!({
                "kind": self.kind,
                "message": self.what,
                "hint": self.hint,
                "code": self.code,
            }),
        );
        Json::Object(doc)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_document_carries_kind_message_hint_code_and_details() {
        let err = CliError::new("no")
            .hint("try again")
            .code(code::UNREACHABLE)
            .detail("nodes", json!([]));
        assert_eq!(
            err.to_json(),
            json!({
                "error": {"kind": "unreachable", "message": "no", "hint": "try again", "code": 4},
                "nodes": [],
            })
        );
        let err = CliError::new("x").code(code::REFUSED).kind(kind::NOT_FOUND);
        assert_eq!(err.to_json()["error"]["kind"], "not_found");
        assert_eq!(err.to_json()["error"]["hint"], Json::Null);
    }
}
