//! Files, for a module holding the `File` authority
//! (`interstice_module!(authorities: [File])`): `ctx.files()` reads, writes, lists and watches
//! paths in the module's own folder on the node (`<data dir>/files/<module>/`).
//!
//! - Paths are relative to that folder, `/`-separated: `"assets/level1.json"`. `""` is the
//!   folder itself. `..`, absolute paths, symbolic links (which are never followed), FIFOs,
//!   sockets, devices, NUL bytes and over-long names are refused with an [`Error`] saying why.
//! - Changes are part of the reducer's transaction: they are written to disk after it commits,
//!   in commit order, and not at all if it fails. The reducer reads its own changes at once.
//! - Reads are inputs: a reducer sees the changes of every invocation before it, whatever the
//!   number of workers. The node orders the module's reducers among themselves for that, so
//!   they do not run in parallel with each other.
//! - The folder has quotas (bytes and entries); a change that would exceed one fails.
//! - [`Files::watch`] reports changes made from outside (an editor, a build tool) to the
//!   module's `#[reducer(on = "file_changed")]` hooks, with a
//!   [`FileChange`](crate::platform::FileChange).
//!
//! A module that does not claim the authority cannot import these calls: the node refuses it
//! when it is published, saying to add `File` to `interstice_module!(authorities: [..])`.

use std::marker::PhantomData;

use interstice_sdk_macros::interstice_type;

use crate::host_calls::{result_bytes, status};
#[cfg(doc)]
use crate::table::ReadOnly;
use crate::table::{AccessMode, ReadWrite};
use crate::{Error, ErrorCode, Result};

/// What a path is.
#[interstice_type(builtin)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    File,
    Dir,
    /// A symbolic link: listed, never followed.
    Symlink,
    /// A FIFO, socket or device: listed, never opened.
    Other,
}

/// A name in a folder, from [`Files::list`].
#[interstice_type(builtin)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub kind: FileKind,
}

/// What [`Files::metadata`] says about a path.
#[interstice_type(builtin)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileMetadata {
    pub kind: FileKind,
    /// Bytes, for a file; 0 otherwise.
    pub size: u64,
    /// Last change, in microseconds since the Unix epoch; for a change this invocation has not
    /// committed yet, its logical time ([`ReducerContext::now`](crate::ReducerContext::now)).
    pub modified: i64,
}

/// The module's folder: `ctx.files()`. [`ReadWrite`] in reducers; [`ReadOnly`] (no writing
/// methods) in queries.
#[derive(Debug)]
pub struct Files<M = ReadWrite> {
    mode: PhantomData<M>,
}

impl<M: AccessMode> Files<M> {
    pub(crate) fn new() -> Self {
        Files { mode: PhantomData }
    }

    /// The whole content of file `path` (with this reducer's own changes).
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        // SAFETY: the pointer and length describe `path`, alive for the call.
        result_bytes(unsafe { sys::read(ptr(path.as_bytes()), len(path.as_bytes())) })
    }

    /// [`read`](Self::read), as UTF-8 text.
    pub fn read_to_string(&self, path: &str) -> Result<String> {
        String::from_utf8(self.read(path)?).map_err(|_| {
            Error::new(
                ErrorCode::BadInput,
                format!("`{path}` is not UTF-8 text; read it with `read`"),
            )
        })
    }

    /// The names in folder `path` (`""`: the module's folder), in name order.
    pub fn list(&self, path: &str) -> Result<Vec<DirEntry>> {
        // SAFETY: the pointer and length describe `path`, alive for the call.
        let bytes = result_bytes(unsafe { sys::list(ptr(path.as_bytes()), len(path.as_bytes())) })?;
        decode(&bytes, "list")
    }

    /// What `path` is, or `None` when nothing is there.
    pub fn metadata(&self, path: &str) -> Result<Option<FileMetadata>> {
        // SAFETY: the pointer and length describe `path`, alive for the call.
        let bytes =
            result_bytes(unsafe { sys::metadata(ptr(path.as_bytes()), len(path.as_bytes())) })?;
        decode(&bytes, "metadata")
    }

    /// Whether anything is at `path`.
    pub fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.metadata(path)?.is_some())
    }
}

impl Files<ReadWrite> {
    /// Replaces (or creates) file `path` with `bytes` once this reducer commits. Its folder
    /// must exist ([`create_dir`](Self::create_dir)).
    pub fn write(&self, path: &str, bytes: impl AsRef<[u8]>) -> Result<()> {
        let bytes = bytes.as_ref();
        // SAFETY: the pointers and lengths describe `path` and `bytes`, alive for the call.
        status(unsafe {
            sys::write(
                ptr(path.as_bytes()),
                len(path.as_bytes()),
                ptr(bytes),
                len(bytes),
            )
        })
        .map(drop)
    }

    /// Appends `bytes` to file `path` (created if missing) once this reducer commits.
    pub fn append(&self, path: &str, bytes: impl AsRef<[u8]>) -> Result<()> {
        let bytes = bytes.as_ref();
        // SAFETY: the pointers and lengths describe `path` and `bytes`, alive for the call.
        status(unsafe {
            sys::append(
                ptr(path.as_bytes()),
                len(path.as_bytes()),
                ptr(bytes),
                len(bytes),
            )
        })
        .map(drop)
    }

    /// Removes file `path`, or folder `path` if it is empty, once this reducer commits.
    pub fn remove(&self, path: &str) -> Result<()> {
        // SAFETY: the pointer and length describe `path`, alive for the call.
        status(unsafe { sys::remove(ptr(path.as_bytes()), len(path.as_bytes())) }).map(drop)
    }

    /// Creates folder `path` and any missing folder above it, once this reducer commits.
    pub fn create_dir(&self, path: &str) -> Result<()> {
        // SAFETY: the pointer and length describe `path`, alive for the call.
        status(unsafe { sys::create_dir(ptr(path.as_bytes()), len(path.as_bytes())) }).map(drop)
    }

    /// Reports changes made from outside the module at `path` (a file, or a folder and
    /// everything in it; it need not exist yet) to the module's
    /// `#[reducer(on = "file_changed")]` hooks, from the time this reducer commits. Watches
    /// last until the module is removed, upgraded or the node stops: set them in an
    /// `on = "load"` hook. The module's own changes are not reported.
    pub fn watch(&self, path: &str) -> Result<()> {
        // SAFETY: the pointer and length describe `path`, alive for the call.
        status(unsafe { sys::watch(ptr(path.as_bytes()), len(path.as_bytes())) }).map(drop)
    }

    /// Stops watching `path`, once this reducer commits.
    pub fn unwatch(&self, path: &str) -> Result<()> {
        // SAFETY: the pointer and length describe `path`, alive for the call.
        status(unsafe { sys::unwatch(ptr(path.as_bytes()), len(path.as_bytes())) }).map(drop)
    }
}

fn decode<T: interstice_abi::IntersticeType>(bytes: &[u8], call: &str) -> Result<T> {
    interstice_abi::from_bytes(bytes).map_err(|e| {
        Error::new(
            ErrorCode::BadInput,
            format!("the host's answer to `{call}` does not decode: {e}"),
        )
    })
}

fn ptr(bytes: &[u8]) -> i32 {
    crate::sys::ptr(bytes.as_ptr())
}

fn len(bytes: &[u8]) -> i32 {
    crate::sys::len(bytes.len())
}

/// The raw imports of the `interstice_file` namespace (see `interstice_abi::host`). Only the
/// ones a module calls end up in its wasm, so modules that never touch files do not import
/// them (and need not claim the authority).
mod sys {
    crate::imports::host_imports!("interstice_file" {
        fn read = "read"(path: i32, len: i32) -> i64;
        fn list = "list"(path: i32, len: i32) -> i64;
        fn metadata = "metadata"(path: i32, len: i32) -> i64;
        fn write = "write"(path: i32, len: i32, data: i32, data_len: i32) -> i64;
        fn append = "append"(path: i32, len: i32, data: i32, data_len: i32) -> i64;
        fn remove = "remove"(path: i32, len: i32) -> i64;
        fn create_dir = "create_dir"(path: i32, len: i32) -> i64;
        fn watch = "watch"(path: i32, len: i32) -> i64;
        fn unwatch = "unwatch"(path: i32, len: i32) -> i64;
    });
}

#[cfg(test)]
mod tests {
    use interstice_abi::{IntersticeType, Value, encode, from_bytes};

    use super::*;

    /// The host encodes its answers with the dynamic codec; these types must decode them.
    #[test]
    fn answers_decode_as_the_host_encodes_them() {
        let entry = |name: &str, kind: u32| {
            Value::Struct(vec![
                Value::String(name.into()),
                Value::Enum {
                    variant: kind,
                    fields: vec![],
                },
            ])
        };
        let list = encode(&Value::List(vec![
            entry("a", 0),
            entry("d", 1),
            entry("l", 2),
        ]));
        let decoded: Vec<DirEntry> = from_bytes(&list).unwrap();
        assert_eq!(
            decoded,
            [
                DirEntry {
                    name: "a".into(),
                    kind: FileKind::File
                },
                DirEntry {
                    name: "d".into(),
                    kind: FileKind::Dir
                },
                DirEntry {
                    name: "l".into(),
                    kind: FileKind::Symlink
                },
            ]
        );
        let meta = encode(&Value::Option(Some(Box::new(Value::Struct(vec![
            Value::Enum {
                variant: 3,
                fields: vec![],
            },
            Value::U64(5),
            Value::I64(-2),
        ])))));
        let decoded: Option<FileMetadata> = from_bytes(&meta).unwrap();
        assert_eq!(
            decoded,
            Some(FileMetadata {
                kind: FileKind::Other,
                size: 5,
                modified: -2
            })
        );
        assert_eq!(
            from_bytes::<Option<FileMetadata>>(&encode(&Value::Option(None))).unwrap(),
            None
        );
        assert_eq!(FileKind::ty().to_string(), "FileKind");
    }
}
