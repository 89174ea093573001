//! Paths as a File module names them: relative to its folder, checked before anything touches
//! the disk, and the errors every File call may return.

use interstice_abi::host::ErrorCode;

use crate::error::HostCallError;

/// The longest path, in bytes.
pub const MAX_PATH: usize = 1024;
/// The longest component (a file or folder name), in bytes: what most file systems allow.
pub const MAX_NAME: usize = 255;
/// The most components of one path.
pub const MAX_DEPTH: usize = 32;
/// Names the authority keeps for itself (its temporary files); refused to modules and hidden
/// from them.
pub const RESERVED: &str = ".interstice-";

/// A checked path inside a module's folder: `/`-separated UTF-8 names, none empty, `.` or
/// `..`, no NUL byte, within [`MAX_NAME`], [`MAX_PATH`] and [`MAX_DEPTH`]. The empty path is
/// the folder itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(String);

impl RelPath {
    /// The module's folder itself.
    pub fn root() -> RelPath {
        RelPath(String::new())
    }

    /// Checks `path` as a module wrote it. `""` and `"."` name the folder itself.
    pub fn parse(path: &str) -> Result<RelPath, FileError> {
        let refuse = |reason: Refusal| FileError::Refused {
            path: shorten(path),
            reason,
        };
        if path.len() > MAX_PATH {
            return Err(refuse(Refusal::TooLong(path.len())));
        }
        if path.contains('\0') {
            return Err(refuse(Refusal::Nul));
        }
        if path.is_empty() || path == "." {
            return Ok(RelPath::root());
        }
        if path.starts_with('/') {
            return Err(refuse(Refusal::Absolute));
        }
        let mut depth = 0;
        for name in path.split('/') {
            depth += 1;
            match name {
                "" => return Err(refuse(Refusal::Empty)),
                "." => return Err(refuse(Refusal::Dot)),
                ".." => return Err(refuse(Refusal::DotDot)),
                _ if name.len() > MAX_NAME => {
                    return Err(refuse(Refusal::NameTooLong(name.len())));
                }
                _ if name.starts_with(RESERVED) => return Err(refuse(Refusal::Reserved)),
                _ => {}
            }
        }
        if depth > MAX_DEPTH {
            return Err(refuse(Refusal::TooDeep(depth)));
        }
        Ok(RelPath(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Its names, outermost first; none for the folder itself.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|n| !n.is_empty())
    }

    /// Its last name; `None` for the folder itself.
    pub fn name(&self) -> Option<&str> {
        self.0.rsplit('/').next().filter(|n| !n.is_empty())
    }

    /// The folder it is in; `None` for the folder itself.
    pub fn parent(&self) -> Option<RelPath> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rsplit_once('/') {
            Some((parent, _)) => RelPath(parent.to_owned()),
            None => RelPath::root(),
        })
    }

    /// `self/name`, for a name read from a directory (a valid component).
    pub fn join(&self, name: &str) -> RelPath {
        if self.is_root() {
            RelPath(name.to_owned())
        } else {
            RelPath(format!("{}/{name}", self.0))
        }
    }

    /// Whether `self` is `ancestor` or inside it.
    pub fn is_within(&self, ancestor: &RelPath) -> bool {
        ancestor.is_root()
            || self.0 == ancestor.0
            || (self.0.starts_with(&ancestor.0)
                && self.0.as_bytes().get(ancestor.0.len()) == Some(&b'/'))
    }

    /// The folder itself, then each enclosing folder down to `self`, outermost first.
    pub fn ancestry(&self) -> Vec<RelPath> {
        let mut out = vec![RelPath::root()];
        let mut at = RelPath::root();
        for name in self.names() {
            at = at.join(name);
            out.push(at.clone());
        }
        out
    }
}

impl std::fmt::Display for RelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_root() {
            f.write_str("the module's folder")
        } else {
            write!(f, "`{}`", self.0)
        }
    }
}

/// A path for a message: long ones are cut, so an error never carries a megabyte of path.
fn shorten(path: &str) -> String {
    let mut s = path.replace('\0', "\\0");
    crate::wasm::truncate_at_char(&mut s, 80);
    s
}

/// Why a path is refused before the disk is touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Absolute,
    DotDot,
    Dot,
    Empty,
    Nul,
    TooLong(usize),
    NameTooLong(usize),
    TooDeep(usize),
    Reserved,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Absolute => f.write_str(
                "an absolute path; paths are relative to the module's folder (write `data/x`, not `/data/x`)",
            ),
            Refusal::DotDot => f.write_str("`..` would leave the module's folder"),
            Refusal::Dot => f.write_str("a `.` component; write the path without it"),
            Refusal::Empty => f.write_str("an empty component (`//`, or a `/` at either end)"),
            Refusal::Nul => f.write_str("a NUL byte"),
            Refusal::TooLong(n) => write!(f, "{n} bytes long, more than {MAX_PATH}"),
            Refusal::NameTooLong(n) => {
                write!(f, "a name of {n} bytes, more than {MAX_NAME}")
            }
            Refusal::TooDeep(n) => write!(f, "{n} components deep, more than {MAX_DEPTH}"),
            Refusal::Reserved => write!(f, "names starting with `{RESERVED}` are the node's"),
        }
    }
}

/// What a file is, as the module sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// A FIFO, socket or device.
    Special(Special),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl std::fmt::Display for Special {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Special::Fifo => "a FIFO",
            Special::Socket => "a socket",
            Special::CharDevice => "a character device",
            Special::BlockDevice => "a block device",
            Special::Unknown => "not a regular file or folder",
        })
    }
}

/// Why a File call failed. Each is returned to the module, which may handle it; none fails the
/// invocation by itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    #[error("path `{path}` is refused: {reason}")]
    Refused { path: String, reason: Refusal },
    #[error(
        "{path} is a symbolic link (or passes through one); links are never followed, since one could lead out of the module's folder"
    )]
    Symlink { path: RelPath },
    #[error("{path} is {kind}; only regular files and folders can be used")]
    Special { path: RelPath, kind: Special },
    #[error(
        "{path} has other hard links, which may be outside the module's folder; it can be replaced with `write`, not read or appended to"
    )]
    HardLinked { path: RelPath },
    #[error("{path} does not exist")]
    NotFound { path: RelPath },
    #[error("{path} is a folder")]
    IsDir { path: RelPath },
    #[error("{path} is not a folder")]
    NotDir { path: RelPath },
    #[error("{path} is not empty; remove what is in it first")]
    NotEmpty { path: RelPath },
    #[error("the module's folder itself cannot be removed")]
    RemoveRoot,
    #[error(
        "{path} is {size} bytes, more than the {limit} one call may return (Limits::max_message_bytes)"
    )]
    TooLarge {
        path: RelPath,
        size: u64,
        limit: usize,
    },
    #[error(
        "this would bring the module's folder to {wanted} {what}, over its quota of {limit} (FileConfig::{setting}); remove files first"
    )]
    Quota {
        what: &'static str,
        setting: &'static str,
        wanted: u64,
        limit: u64,
    },
    #[error(
        "the file changes waiting to be written would hold more than {limit} bytes (FileConfig::max_bytes)"
    )]
    PendingTooLarge { limit: u64 },
    #[error("one invocation may make at most {0} file changes")]
    TooManyChanges(usize),
    #[error("a module may watch at most {0} paths")]
    TooManyWatches(usize),
    #[error("{path}: {source}")]
    Io {
        path: RelPath,
        source: std::io::Error,
    },
    #[error("the File authority has no folder for this module: {0}")]
    Unavailable(String),
}

impl FileError {
    pub fn code(&self) -> ErrorCode {
        match self {
            FileError::Refused {
                reason: Refusal::DotDot | Refusal::Absolute | Refusal::Reserved,
                ..
            }
            | FileError::Symlink { .. }
            | FileError::Special { .. }
            | FileError::HardLinked { .. }
            | FileError::RemoveRoot => ErrorCode::Denied,
            FileError::Refused { .. } => ErrorCode::BadInput,
            FileError::NotFound { .. } => ErrorCode::NotFound,
            _ => ErrorCode::Other,
        }
    }
}

impl From<FileError> for HostCallError {
    fn from(e: FileError) -> Self {
        HostCallError::new(e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(path: &str) -> Refusal {
        match RelPath::parse(path) {
            Err(FileError::Refused { reason, .. }) => reason,
            other => panic!("{path:?}: {other:?}"),
        }
    }

    #[test]
    fn good_paths_parse_and_name_their_parts() {
        let p = RelPath::parse("assets/shaders/a.wgsl").unwrap();
        assert_eq!(
            p.names().collect::<Vec<_>>(),
            ["assets", "shaders", "a.wgsl"]
        );
        assert_eq!(p.name(), Some("a.wgsl"));
        assert_eq!(p.parent().unwrap().as_str(), "assets/shaders");
        assert_eq!(RelPath::parse("a").unwrap().parent(), Some(RelPath::root()));
        assert!(RelPath::parse("").unwrap().is_root());
        assert!(RelPath::parse(".").unwrap().is_root());
        assert_eq!(RelPath::root().parent(), None);
        assert!(p.is_within(&RelPath::parse("assets").unwrap()));
        assert!(p.is_within(&RelPath::root()));
        assert!(
            !RelPath::parse("assets2/x")
                .unwrap()
                .is_within(&RelPath::parse("assets").unwrap())
        );
        let ancestry: Vec<String> = p.ancestry().iter().map(|p| p.as_str().to_owned()).collect();
        assert_eq!(
            ancestry,
            ["", "assets", "assets/shaders", "assets/shaders/a.wgsl"]
        );
    }

    #[test]
    fn every_escape_and_malformed_path_is_refused() {
        assert_eq!(refusal("../x"), Refusal::DotDot);
        assert_eq!(refusal("a/../../x"), Refusal::DotDot);
        assert_eq!(refusal(".."), Refusal::DotDot);
        assert_eq!(refusal("/etc/passwd"), Refusal::Absolute);
        assert_eq!(refusal("a//b"), Refusal::Empty);
        assert_eq!(refusal("a/"), Refusal::Empty);
        assert_eq!(refusal("./a"), Refusal::Dot);
        assert_eq!(refusal("a\0b"), Refusal::Nul);
        assert_eq!(
            refusal(&"n".repeat(MAX_NAME + 1)),
            Refusal::NameTooLong(MAX_NAME + 1)
        );
        assert_eq!(refusal(&"a/".repeat(600)), Refusal::TooLong(1200));
        assert_eq!(
            refusal(&["d"; MAX_DEPTH + 1].join("/")),
            Refusal::TooDeep(MAX_DEPTH + 1)
        );
        assert_eq!(refusal(".interstice-tmp-1"), Refusal::Reserved);
        assert!(RelPath::parse(&"n".repeat(MAX_NAME)).is_ok());
    }

    #[test]
    fn escapes_are_denied_and_malformed_paths_are_bad_input() {
        let code = |p: &str| RelPath::parse(p).unwrap_err().code();
        assert_eq!(code("../x"), ErrorCode::Denied);
        assert_eq!(code("/x"), ErrorCode::Denied);
        assert_eq!(code("a\0"), ErrorCode::BadInput);
        let message = RelPath::parse("a\0b").unwrap_err().to_string();
        assert!(
            message.contains("a\\0b") && message.contains("NUL"),
            "{message}"
        );
    }
}
