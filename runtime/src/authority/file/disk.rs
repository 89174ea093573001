//! The disk side of the File authority: a module's folder, opened once, and every path walked
//! from its descriptor one name at a time with `O_NOFOLLOW` (rustix's `openat`, `statat`,
//! `renameat`). No path string is ever handed to the kernel whole, so a symbolic link — there
//! from the start or swapped in between a check and a use — is refused where it is met, never
//! followed out of the folder. FIFOs, sockets and devices are refused by type, checked before a
//! file is opened and again on the descriptor that was opened.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::path::{FileError, Kind, RelPath};

/// Called with the module's folder and a path just before the descriptor of that path is
/// opened (or a new file renamed onto it): lets tests swap what is there between the check and
/// the use.
pub type Hook = Arc<dyn Fn(&Path, &str) + Send + Sync>;

/// What the disk says about a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    /// Bytes, for a regular file.
    pub size: u64,
    /// Last modification, in nanoseconds since the Unix epoch.
    pub modified_ns: i64,
    /// Hard links to it.
    pub links: u64,
    pub inode: u64,
}

pub use imp::Root;

#[cfg(unix)]
mod imp {
    use std::fs::File;
    use std::io::{Read, Write};
    use std::os::fd::{AsFd, OwnedFd};
    use std::sync::atomic::{AtomicU64, Ordering};

    use rustix::fs::{self as rfs, AtFlags, Dir, FileType, Mode, OFlags, RawMode, Stat};
    use rustix::io::Errno;

    use super::*;
    use crate::authority::file::path::{RESERVED, Special};

    /// A module's folder, by descriptor.
    pub struct Root {
        dir: OwnedFd,
        path: PathBuf,
        hook: Option<Hook>,
        /// Names the temporary files of atomic writes.
        temp: AtomicU64,
    }

    const FILE_MODE: u32 = 0o600;
    const DIR_MODE: u32 = 0o700;

    // Field types of `stat` differ between platforms and architectures.
    #[allow(
        clippy::unnecessary_cast,
        clippy::useless_conversion,
        clippy::cast_lossless
    )]
    fn meta(stat: &Stat) -> Meta {
        let kind = match FileType::from_raw_mode(stat.st_mode as RawMode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Special(Special::Fifo),
            FileType::Socket => Kind::Special(Special::Socket),
            FileType::CharacterDevice => Kind::Special(Special::CharDevice),
            FileType::BlockDevice => Kind::Special(Special::BlockDevice),
            _ => Kind::Special(Special::Unknown),
        };
        Meta {
            kind,
            size: stat.st_size.max(0) as u64,
            modified_ns: (stat.st_mtime as i64)
                .saturating_mul(1_000_000_000)
                .saturating_add(stat.st_mtime_nsec as i64),
            links: stat.st_nlink as u64,
            inode: stat.st_ino as u64,
        }
    }

    fn io(path: &RelPath, e: Errno) -> FileError {
        FileError::Io {
            path: path.clone(),
            source: e.into(),
        }
    }

    /// A regular file that may be read or appended to, or the refusal.
    fn usable(path: &RelPath, meta: &Meta, appending_or_reading: bool) -> Result<(), FileError> {
        match meta.kind {
            Kind::File if appending_or_reading && meta.links > 1 => {
                Err(FileError::HardLinked { path: path.clone() })
            }
            Kind::File => Ok(()),
            Kind::Dir => Err(FileError::IsDir { path: path.clone() }),
            Kind::Symlink => Err(FileError::Symlink { path: path.clone() }),
            Kind::Special(kind) => Err(FileError::Special {
                path: path.clone(),
                kind,
            }),
        }
    }

    impl Root {
        /// Creates `folder` (owner-only) if needed and opens it. The folder is the node's; only
        /// what is inside it is the module's.
        pub fn open(folder: &Path, hook: Option<Hook>) -> std::io::Result<Root> {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(folder)?;
            let dir = rfs::open(
                folder,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            Ok(Root {
                dir,
                path: folder.to_owned(),
                hook,
                temp: AtomicU64::new(0),
            })
        }

        pub fn path(&self) -> &Path {
            &self.path
        }

        fn hook(&self, path: &RelPath) {
            if let Some(hook) = &self.hook {
                hook(&self.path, path.as_str());
            }
        }

        /// Opens folder `dir`, walking each name from the root without following links.
        fn open_dir(&self, dir: &RelPath) -> Result<OwnedFd, FileError> {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let mut fd = rfs::openat(&self.dir, ".", flags, Mode::empty())
                .map_err(|e| io(&RelPath::root(), e))?;
            let mut at = RelPath::root();
            for name in dir.names() {
                let next = at.join(name);
                fd = match rfs::openat(&fd, name, flags, Mode::empty()) {
                    Ok(next) => next,
                    Err(Errno::NOENT) => return Err(FileError::NotFound { path: next }),
                    Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
                        // Which of the two it is decides the message.
                        return Err(match rfs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                            Ok(stat) => match meta(&stat).kind {
                                Kind::Symlink => FileError::Symlink { path: next },
                                _ => FileError::NotDir { path: next },
                            },
                            Err(_) => io(&next, e),
                        });
                    }
                    Err(e) => return Err(io(&next, e)),
                };
                at = next;
            }
            Ok(fd)
        }

        /// The folder `path` is in, opened, and its last name.
        fn parent<'p>(&self, path: &'p RelPath) -> Result<(OwnedFd, &'p str), FileError> {
            match (path.parent(), path.name()) {
                (Some(parent), Some(name)) => Ok((self.open_dir(&parent)?, name)),
                _ => Err(FileError::IsDir { path: path.clone() }),
            }
        }

        /// What is at `path`, without following a link there; `None` when nothing is (or its
        /// folder does not exist, or is a file).
        pub fn stat(&self, path: &RelPath) -> Result<Option<Meta>, FileError> {
            if path.is_root() {
                return rfs::fstat(&self.dir)
                    .map(|s| Some(meta(&s)))
                    .map_err(|e| io(path, e));
            }
            let (dir, name) = match self.parent(path) {
                Ok(found) => found,
                Err(FileError::NotFound { .. } | FileError::NotDir { .. }) => return Ok(None),
                Err(e) => return Err(e),
            };
            match rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => Ok(Some(meta(&stat))),
                Err(Errno::NOENT) => Ok(None),
                Err(e) => Err(io(path, e)),
            }
        }

        /// The whole of regular file `path`, if it is at most `limit` bytes.
        pub fn read(&self, path: &RelPath, limit: usize) -> Result<Vec<u8>, FileError> {
            let (dir, name) = self.parent(path)?;
            let before = match rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => meta(&stat),
                Err(Errno::NOENT) => return Err(FileError::NotFound { path: path.clone() }),
                Err(e) => return Err(io(path, e)),
            };
            // Checked before opening, so a FIFO or a device is never opened at all.
            usable(path, &before, true)?;
            self.hook(path);
            let flags = OFlags::RDONLY
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::NOCTTY
                | OFlags::CLOEXEC;
            let fd = self.open_final(&dir, name, path, flags)?;
            let opened = rfs::fstat(&fd).map_err(|e| io(path, e))?;
            // And again on what was opened: it may have been swapped since.
            usable(path, &meta(&opened), true)?;
            let size = meta(&opened).size;
            if size > limit as u64 {
                return Err(FileError::TooLarge {
                    path: path.clone(),
                    size,
                    limit,
                });
            }
            let mut bytes = Vec::with_capacity(size as usize);
            File::from(fd)
                .take(limit as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|source| FileError::Io {
                    path: path.clone(),
                    source,
                })?;
            if bytes.len() > limit {
                return Err(FileError::TooLarge {
                    path: path.clone(),
                    size: bytes.len() as u64,
                    limit,
                });
            }
            Ok(bytes)
        }

        fn open_final(
            &self,
            dir: &OwnedFd,
            name: &str,
            path: &RelPath,
            flags: OFlags,
        ) -> Result<OwnedFd, FileError> {
            match rfs::openat(dir, name, flags, Mode::from_raw_mode(FILE_MODE as RawMode)) {
                Ok(fd) => Ok(fd),
                Err(Errno::LOOP) => Err(FileError::Symlink { path: path.clone() }),
                Err(Errno::NOENT) => Err(FileError::NotFound { path: path.clone() }),
                Err(Errno::ISDIR) => Err(FileError::IsDir { path: path.clone() }),
                // A FIFO without a reader, opened for writing without blocking.
                Err(Errno::NXIO) => Err(FileError::Special {
                    path: path.clone(),
                    kind: Special::Fifo,
                }),
                Err(e) => Err(io(path, e)),
            }
        }

        /// The names in folder `dir` with what each is, sorted by name; the node's own files
        /// and names that are not UTF-8 are left out.
        pub fn list(&self, dir: &RelPath) -> Result<Vec<(String, Meta)>, FileError> {
            let fd = self.open_dir(dir)?;
            let mut out = Vec::new();
            self.each_entry(&fd, dir, |name, meta| out.push((name.to_owned(), meta)))?;
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(out)
        }

        fn each_entry(
            &self,
            fd: &OwnedFd,
            dir: &RelPath,
            mut visit: impl FnMut(&str, Meta),
        ) -> Result<(), FileError> {
            let mut entries = Dir::read_from(fd).map_err(|e| io(dir, e))?;
            while let Some(entry) = entries.read() {
                let entry = entry.map_err(|e| io(dir, e))?;
                let Ok(name) = entry.file_name().to_str() else {
                    tracing::debug!(folder = %dir, "a name that is not UTF-8 is left out");
                    continue;
                };
                if name == "." || name == ".." || name.starts_with(RESERVED) {
                    continue;
                }
                match rfs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) => visit(name, meta(&stat)),
                    // Removed since it was listed.
                    Err(Errno::NOENT) => {}
                    Err(e) => return Err(io(&dir.join(name), e)),
                }
            }
            Ok(())
        }

        /// Replaces (or creates) regular file `path` with `bytes`: written to a temporary file
        /// beside it, flushed, then renamed over it, so a reader sees the old or the new
        /// content, never half. A rename replaces a link rather than following it.
        pub fn write(&self, path: &RelPath, bytes: &[u8]) -> Result<(), FileError> {
            let (dir, name) = self.parent(path)?;
            match rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                // Replaced, not written through: other hard links keep their content.
                Ok(stat) => usable(path, &meta(&stat), false)?,
                Err(Errno::NOENT) => {}
                Err(e) => return Err(io(path, e)),
            }
            let temp = format!(
                "{RESERVED}tmp-{}",
                self.temp.fetch_add(1, Ordering::Relaxed)
            );
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let mode = Mode::from_raw_mode(FILE_MODE as RawMode);
            let fd = match rfs::openat(&dir, temp.as_str(), flags, mode) {
                // Left by a crash: it is the node's, so it goes.
                Err(Errno::EXIST) => {
                    let _ = rfs::unlinkat(&dir, temp.as_str(), AtFlags::empty());
                    rfs::openat(&dir, temp.as_str(), flags, mode)
                }
                other => other,
            }
            .map_err(|e| io(path, e))?;
            let mut file = File::from(fd);
            let written = file.write_all(bytes).and_then(|()| file.sync_data());
            drop(file);
            let renamed = written.map_err(|source| FileError::Io {
                path: path.clone(),
                source,
            });
            let renamed = renamed.and_then(|()| {
                self.hook(path);
                rfs::renameat(&dir, temp.as_str(), &dir, name).map_err(|e| match e {
                    Errno::ISDIR | Errno::NOTEMPTY | Errno::EXIST => {
                        FileError::IsDir { path: path.clone() }
                    }
                    e => io(path, e),
                })
            });
            if renamed.is_err() {
                let _ = rfs::unlinkat(&dir, temp.as_str(), AtFlags::empty());
            }
            renamed
        }

        /// Appends `bytes` to regular file `path`, creating it if needed.
        pub fn append(&self, path: &RelPath, bytes: &[u8]) -> Result<(), FileError> {
            let (dir, name) = self.parent(path)?;
            match rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => usable(path, &meta(&stat), true)?,
                Err(Errno::NOENT) => {}
                Err(e) => return Err(io(path, e)),
            }
            self.hook(path);
            let flags = OFlags::WRONLY
                | OFlags::APPEND
                | OFlags::CREATE
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::NOCTTY
                | OFlags::CLOEXEC;
            let fd = self.open_final(&dir, name, path, flags)?;
            let opened = rfs::fstat(&fd).map_err(|e| io(path, e))?;
            usable(path, &meta(&opened), true)?;
            File::from(fd)
                .write_all(bytes)
                .map_err(|source| FileError::Io {
                    path: path.clone(),
                    source,
                })
        }

        /// Removes file `path`, or folder `path` if it is empty. A link is removed itself.
        pub fn remove(&self, path: &RelPath) -> Result<(), FileError> {
            if path.is_root() {
                return Err(FileError::RemoveRoot);
            }
            let (dir, name) = self.parent(path)?;
            let flags = match rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) if meta(&stat).kind == Kind::Dir => AtFlags::REMOVEDIR,
                Ok(_) => AtFlags::empty(),
                Err(Errno::NOENT) => return Err(FileError::NotFound { path: path.clone() }),
                Err(e) => return Err(io(path, e)),
            };
            rfs::unlinkat(&dir, name, flags).map_err(|e| match e {
                Errno::NOTEMPTY | Errno::EXIST => FileError::NotEmpty { path: path.clone() },
                Errno::NOENT => FileError::NotFound { path: path.clone() },
                e => io(path, e),
            })
        }

        /// Creates folder `path` (owner-only) in an existing folder; one that is there is fine.
        pub fn create_dir(&self, path: &RelPath) -> Result<(), FileError> {
            if path.is_root() {
                return Ok(());
            }
            let (dir, name) = self.parent(path)?;
            match rfs::mkdirat(&dir, name, Mode::from_raw_mode(DIR_MODE as RawMode)) {
                Ok(()) => Ok(()),
                Err(Errno::EXIST) => match rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) if meta(&stat).kind == Kind::Dir => Ok(()),
                    Ok(stat) if meta(&stat).kind == Kind::Symlink => {
                        Err(FileError::Symlink { path: path.clone() })
                    }
                    _ => Err(FileError::NotDir { path: path.clone() }),
                },
                Err(e) => Err(io(path, e)),
            }
        }

        /// Visits `from` (unless it is the folder itself) and, if it is a folder, everything
        /// under it (a folder before what it holds), without following links; stops after
        /// `limit` entries and returns `false`. With `clean`, the node's leftover temporary
        /// files go.
        pub fn walk(
            &self,
            from: &RelPath,
            limit: usize,
            clean: bool,
            visit: &mut dyn FnMut(&RelPath, &Meta),
        ) -> Result<bool, FileError> {
            let Some(top) = self.stat(from)? else {
                return Ok(true);
            };
            let mut seen = 0usize;
            if !from.is_root() {
                visit(from, &top);
                seen += 1;
            }
            if top.kind != Kind::Dir {
                return Ok(true);
            }
            let mut stack = vec![from.clone()];
            while let Some(dir) = stack.pop() {
                let fd = match self.open_dir(&dir) {
                    Ok(fd) => fd,
                    // Changed under the walk: the next one sees what it became.
                    Err(FileError::NotFound { .. } | FileError::NotDir { .. }) => continue,
                    Err(e) => return Err(e),
                };
                if clean {
                    self.clean(&fd);
                }
                let mut children = Vec::new();
                self.each_entry(&fd, &dir, |name, meta| {
                    children.push((name.to_owned(), meta))
                })?;
                children.sort_by(|a, b| a.0.cmp(&b.0));
                for (name, meta) in &children {
                    if seen >= limit {
                        return Ok(false);
                    }
                    let path = dir.join(name);
                    visit(&path, meta);
                    seen += 1;
                    if meta.kind == Kind::Dir {
                        stack.push(path);
                    }
                }
            }
            Ok(true)
        }

        /// Removes the node's temporary files from folder `fd` (left by a crash mid-write).
        fn clean(&self, fd: &OwnedFd) {
            let Ok(mut entries) = Dir::read_from(fd.as_fd()) else {
                return;
            };
            while let Some(Ok(entry)) = entries.read() {
                if let Ok(name) = entry.file_name().to_str()
                    && name.starts_with(RESERVED)
                {
                    let _ = rfs::unlinkat(fd, name, AtFlags::empty());
                }
            }
        }
    }
}

#[cfg(not(unix))]
mod imp {
    use super::*;

    /// The File authority confines paths with `openat` and `O_NOFOLLOW`, which this platform
    /// lacks: it has no folder to give, and says so.
    pub enum Root {}

    impl Root {
        pub fn open(_folder: &Path, _hook: Option<Hook>) -> std::io::Result<Root> {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "the File authority needs a Unix system (it confines paths with openat and O_NOFOLLOW)",
            ))
        }

        pub fn path(&self) -> &Path {
            match *self {}
        }

        pub fn stat(&self, _path: &RelPath) -> Result<Option<Meta>, FileError> {
            match *self {}
        }

        pub fn read(&self, _path: &RelPath, _limit: usize) -> Result<Vec<u8>, FileError> {
            match *self {}
        }

        pub fn list(&self, _dir: &RelPath) -> Result<Vec<(String, Meta)>, FileError> {
            match *self {}
        }

        pub fn write(&self, _path: &RelPath, _bytes: &[u8]) -> Result<(), FileError> {
            match *self {}
        }

        pub fn append(&self, _path: &RelPath, _bytes: &[u8]) -> Result<(), FileError> {
            match *self {}
        }

        pub fn remove(&self, _path: &RelPath) -> Result<(), FileError> {
            match *self {}
        }

        pub fn create_dir(&self, _path: &RelPath) -> Result<(), FileError> {
            match *self {}
        }

        pub fn walk(
            &self,
            _from: &RelPath,
            _limit: usize,
            _clean: bool,
            _visit: &mut dyn FnMut(&RelPath, &Meta),
        ) -> Result<bool, FileError> {
            match *self {}
        }
    }
}
