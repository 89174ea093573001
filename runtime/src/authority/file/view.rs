//! What a File module sees: the disk, then the changes of invocations that committed but are
//! not on disk yet (staged, in sequence order), then the running invocation's own. Changes are
//! recorded here, checked against that view (kinds, folders, quotas), and applied to the disk
//! only once their invocation has committed.

use super::disk::{Meta, Root};
use super::path::{FileError, Kind, RelPath};

/// The most changes one invocation may make.
pub const MAX_CHANGES: usize = 4096;

/// One change to a module's folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Write(Vec<u8>),
    Append(Vec<u8>),
    Remove,
    /// One folder, in a folder that exists.
    CreateDir,
    Watch,
    Unwatch,
}

/// A change, with what it adds to the folder's usage as the view saw it when it was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub path: RelPath,
    pub change: Change,
    pub usage: Usage,
}

/// Bytes of regular files and entries (files, folders, anything) in a folder, or a change of
/// them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: i64,
    pub entries: i64,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.entries = self.entries.saturating_add(other.entries);
    }

    /// What one path counts for, as the disk has it.
    pub fn of(meta: Option<&Meta>) -> Usage {
        match meta {
            None => Usage::default(),
            Some(meta) => Usage {
                bytes: if meta.kind == Kind::File {
                    i64::try_from(meta.size).unwrap_or(i64::MAX)
                } else {
                    0
                },
                entries: 1,
            },
        }
    }

    pub fn minus(self, other: Usage) -> Usage {
        Usage {
            bytes: self.bytes.saturating_sub(other.bytes),
            entries: self.entries.saturating_sub(other.entries),
        }
    }
}

/// The file changes of one invocation, in the order it made them; nested calls add to their
/// caller's.
#[derive(Debug, Default)]
pub struct Pending {
    pub ops: Vec<Op>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// What a path is in the view.
#[derive(Debug)]
pub enum Entry<'a> {
    Missing,
    /// `None`: created by a change not applied yet.
    Dir(Option<Meta>),
    File(FileState<'a>),
    /// A link, FIFO, socket or device on disk.
    Other(Meta),
}

#[derive(Debug)]
pub struct FileState<'a> {
    /// What the disk has, when the content starts with it (it was not replaced).
    pub disk: Option<Meta>,
    /// What follows the disk's content (appends), or all of it (a write, then appends).
    pub parts: Vec<&'a [u8]>,
    pub size: u64,
    /// Whether a change not applied yet touched it.
    pub pending: bool,
}

impl Entry<'_> {
    fn usage(&self) -> Usage {
        match self {
            Entry::Missing => Usage::default(),
            Entry::File(f) => Usage {
                bytes: i64::try_from(f.size).unwrap_or(i64::MAX),
                entries: 1,
            },
            Entry::Dir(_) | Entry::Other(_) => Usage {
                bytes: 0,
                entries: 1,
            },
        }
    }
}

/// What a module's folder looks like to one invocation.
pub struct View<'a> {
    pub root: &'a Root,
    /// Committed changes not applied yet, in sequence order.
    pub staged: Vec<&'a [Op]>,
    pub own: &'a [Op],
}

/// The limits a change is checked against.
#[derive(Clone, Copy, Debug)]
pub struct Quota {
    pub max_bytes: u64,
    pub max_entries: u64,
    /// The usage of what is on disk.
    pub applied: Usage,
}

impl<'a> View<'a> {
    fn ops(&self) -> impl Iterator<Item = &'a Op> + '_ {
        self.staged
            .iter()
            .flat_map(|ops| ops.iter())
            .chain(self.own.iter())
    }

    /// What `path` is, the changes included.
    pub fn state(&self, path: &RelPath) -> Result<Entry<'a>, FileError> {
        let disk = self.root.stat(path)?;
        let mut state = match disk {
            None => Entry::Missing,
            Some(meta) => match meta.kind {
                Kind::File => Entry::File(FileState {
                    disk: Some(meta),
                    parts: Vec::new(),
                    size: meta.size,
                    pending: false,
                }),
                Kind::Dir => Entry::Dir(Some(meta)),
                _ => Entry::Other(meta),
            },
        };
        for op in self.ops().filter(|op| op.path == *path) {
            state = match (&op.change, state) {
                (Change::Write(bytes), _) => Entry::File(FileState {
                    disk: None,
                    parts: vec![bytes],
                    size: bytes.len() as u64,
                    pending: true,
                }),
                (Change::Append(bytes), Entry::File(mut file)) => {
                    file.parts.push(bytes);
                    file.size += bytes.len() as u64;
                    file.pending = true;
                    Entry::File(file)
                }
                (Change::Append(bytes), _) => Entry::File(FileState {
                    disk: None,
                    parts: vec![bytes],
                    size: bytes.len() as u64,
                    pending: true,
                }),
                (Change::Remove, _) => Entry::Missing,
                (Change::CreateDir, Entry::Dir(meta)) => Entry::Dir(meta),
                (Change::CreateDir, _) => Entry::Dir(None),
                (Change::Watch | Change::Unwatch, state) => state,
            };
        }
        Ok(state)
    }

    /// The whole content of file `path`, if it is at most `limit` bytes.
    pub fn read(&self, path: &RelPath, limit: usize) -> Result<Vec<u8>, FileError> {
        let file = self.file(path)?;
        if file.size > limit as u64 {
            return Err(FileError::TooLarge {
                path: path.clone(),
                size: file.size,
                limit,
            });
        }
        let mut out = match file.disk {
            Some(_) => self.root.read(path, limit)?,
            None => Vec::new(),
        };
        for part in file.parts {
            out.extend_from_slice(part);
        }
        if out.len() > limit {
            return Err(FileError::TooLarge {
                path: path.clone(),
                size: out.len() as u64,
                limit,
            });
        }
        Ok(out)
    }

    fn file(&self, path: &RelPath) -> Result<FileState<'a>, FileError> {
        match self.state(path)? {
            Entry::File(file) => Ok(file),
            Entry::Missing => Err(FileError::NotFound { path: path.clone() }),
            Entry::Dir(_) => Err(FileError::IsDir { path: path.clone() }),
            Entry::Other(meta) => Err(refusal(path, meta.kind)),
        }
    }

    /// The names in folder `dir` and what each is, in name order.
    pub fn list(&self, dir: &RelPath) -> Result<Vec<(String, Entry<'a>)>, FileError> {
        self.folder(dir)?;
        let mut names: std::collections::BTreeSet<String> = match self.root.list(dir) {
            Ok(entries) => entries.into_iter().map(|(name, _)| name).collect(),
            // Created by a change not applied yet, or replaced by one.
            Err(FileError::NotFound { .. } | FileError::NotDir { .. }) => Default::default(),
            Err(e) => return Err(e),
        };
        for op in self.ops() {
            if op.path.parent().as_ref() == Some(dir)
                && let Some(name) = op.path.name()
            {
                names.insert(name.to_owned());
            }
        }
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match self.state(&dir.join(&name))? {
                Entry::Missing => {}
                state => out.push((name, state)),
            }
        }
        Ok(out)
    }

    /// Fails unless `dir` is a folder.
    fn folder(&self, dir: &RelPath) -> Result<(), FileError> {
        match self.state(dir)? {
            Entry::Dir(_) => Ok(()),
            Entry::Missing => Err(FileError::NotFound { path: dir.clone() }),
            Entry::File(_) => Err(FileError::NotDir { path: dir.clone() }),
            Entry::Other(meta) => Err(refusal(dir, meta.kind)),
        }
    }

    fn usage(&self, quota: &Quota) -> Usage {
        let mut usage = quota.applied;
        self.ops().for_each(|op| usage.add(op.usage));
        usage
    }

    /// Checks `change` of `path` and returns the ops that make it (`create_dir` makes one per
    /// missing folder), with their usage; nothing is recorded.
    pub fn plan(
        &self,
        path: &RelPath,
        change: Change,
        quota: &Quota,
    ) -> Result<Vec<Op>, FileError> {
        let mut ops = Vec::new();
        match &change {
            Change::Write(bytes) | Change::Append(bytes) => {
                if let Some(parent) = path.parent() {
                    self.folder(&parent)?;
                }
                let before = match self.state(path)? {
                    Entry::Dir(_) => return Err(FileError::IsDir { path: path.clone() }),
                    Entry::Other(meta) => return Err(refusal(path, meta.kind)),
                    Entry::File(FileState {
                        disk: Some(meta), ..
                    }) if matches!(change, Change::Append(_)) && meta.links > 1 => {
                        return Err(FileError::HardLinked { path: path.clone() });
                    }
                    state => state,
                };
                let old = before.usage();
                let size = match (&change, &before) {
                    (Change::Append(_), Entry::File(file)) => file.size,
                    _ => 0,
                } + bytes.len() as u64;
                let new = Usage {
                    bytes: i64::try_from(size).unwrap_or(i64::MAX),
                    entries: 1,
                };
                ops.push(Op {
                    path: path.clone(),
                    change,
                    usage: new.minus(old),
                });
            }
            Change::Remove => {
                if path.is_root() {
                    return Err(FileError::RemoveRoot);
                }
                let state = self.state(path)?;
                match &state {
                    Entry::Missing => return Err(FileError::NotFound { path: path.clone() }),
                    Entry::Dir(_) if !self.list(path)?.is_empty() => {
                        return Err(FileError::NotEmpty { path: path.clone() });
                    }
                    _ => {}
                }
                ops.push(Op {
                    path: path.clone(),
                    change,
                    usage: Usage::default().minus(state.usage()),
                });
            }
            Change::CreateDir => {
                for dir in path.ancestry().into_iter().skip(1) {
                    match self.state(&dir)? {
                        Entry::Dir(_) => {}
                        Entry::Missing => ops.push(Op {
                            path: dir,
                            change: Change::CreateDir,
                            usage: Usage {
                                bytes: 0,
                                entries: 1,
                            },
                        }),
                        Entry::File(_) => return Err(FileError::NotDir { path: dir }),
                        Entry::Other(meta) => return Err(refusal(&dir, meta.kind)),
                    }
                }
            }
            Change::Watch | Change::Unwatch => ops.push(Op {
                path: path.clone(),
                change,
                usage: Usage::default(),
            }),
        }
        let mut added = Usage::default();
        ops.iter().for_each(|op| added.add(op.usage));
        let usage = self.usage(quota);
        let after = {
            let mut after = usage;
            after.add(added);
            after
        };
        if added.bytes > 0 && after.bytes > clamp(quota.max_bytes) {
            return Err(FileError::Quota {
                what: "bytes",
                setting: "max_bytes",
                wanted: after.bytes.max(0) as u64,
                limit: quota.max_bytes,
            });
        }
        if added.entries > 0 && after.entries > clamp(quota.max_entries) {
            return Err(FileError::Quota {
                what: "files and folders",
                setting: "max_entries",
                wanted: after.entries.max(0) as u64,
                limit: quota.max_entries,
            });
        }
        Ok(ops)
    }
}

fn clamp(limit: u64) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Why a path that is neither a regular file nor a folder cannot be used.
pub fn refusal(path: &RelPath, kind: Kind) -> FileError {
    match kind {
        Kind::Special(kind) => FileError::Special {
            path: path.clone(),
            kind,
        },
        Kind::Symlink => FileError::Symlink { path: path.clone() },
        Kind::Dir => FileError::IsDir { path: path.clone() },
        Kind::File => FileError::NotDir { path: path.clone() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> RelPath {
        RelPath::parse(p).unwrap()
    }

    fn quota(max_bytes: u64, max_entries: u64) -> Quota {
        Quota {
            max_bytes,
            max_entries,
            applied: Usage::default(),
        }
    }

    fn plan(view: &View<'_>, p: &str, change: Change) -> Result<Vec<Op>, FileError> {
        view.plan(&path(p), change, &quota(1000, 100))
    }

    #[test]
    fn a_read_sees_the_disk_then_staged_changes_then_its_own() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "disk").unwrap();
        let root = Root::open(dir.path(), None).unwrap();
        let empty = View {
            root: &root,
            staged: vec![],
            own: &[],
        };
        let staged = plan(&empty, "a", Change::Append(b"+staged".to_vec())).unwrap();
        let view = View {
            root: &root,
            staged: vec![&staged],
            own: &[],
        };
        let mut own = plan(&view, "d/x", Change::CreateDir).unwrap();
        let dirs: Vec<&str> = own.iter().map(|op| op.path.as_str()).collect();
        assert_eq!(dirs, ["d", "d/x"]);
        let view = View {
            root: &root,
            staged: vec![&staged],
            own: &own,
        };
        own.extend(plan(&view, "a", Change::Append(b"+own".to_vec())).unwrap());
        own.extend({
            let view = View {
                root: &root,
                staged: vec![&staged],
                own: &own,
            };
            plan(&view, "d/x/f", Change::Write(b"new".to_vec())).unwrap()
        });
        let view = View {
            root: &root,
            staged: vec![&staged],
            own: &own,
        };
        assert_eq!(view.read(&path("a"), 100).unwrap(), b"disk+staged+own");
        assert_eq!(view.read(&path("d/x/f"), 100).unwrap(), b"new");
        let names: Vec<String> = view
            .list(&RelPath::root())
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, ["a", "d"]);
        assert!(matches!(
            plan(&view, "d", Change::Remove),
            Err(FileError::NotEmpty { .. })
        ));
        assert!(matches!(
            view.read(&path("a"), 5),
            Err(FileError::TooLarge { size: 15, .. })
        ));
        // Nothing reached the disk.
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"disk");
        assert!(!dir.path().join("d").exists());
        // What the changes add: 11 bytes to `a`, two folders and a 3-byte file.
        let mut added = Usage::default();
        staged.iter().chain(&own).for_each(|op| added.add(op.usage));
        assert_eq!(
            added,
            Usage {
                bytes: 14,
                entries: 3
            }
        );
    }

    #[test]
    fn a_change_over_a_quota_is_refused_and_a_shrinking_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big"), "twelve bytes").unwrap();
        let root = Root::open(dir.path(), None).unwrap();
        let view = View {
            root: &root,
            staged: vec![],
            own: &[],
        };
        let full = Quota {
            max_bytes: 10,
            max_entries: 1,
            applied: Usage {
                bytes: 12,
                entries: 1,
            },
        };
        assert!(matches!(
            view.plan(&path("b"), Change::Write(b"x".to_vec()), &full),
            Err(FileError::Quota { what: "bytes", .. })
        ));
        assert!(matches!(
            view.plan(&path("c"), Change::CreateDir, &full),
            Err(FileError::Quota {
                what: "files and folders",
                ..
            })
        ));
        // Shrinking a file while over the quota is fine.
        let shrink = view
            .plan(&path("big"), Change::Write(b"xy".to_vec()), &full)
            .unwrap();
        assert_eq!(
            shrink[0].usage,
            Usage {
                bytes: -10,
                entries: 0
            }
        );
        // Watching adds nothing, so it is never over a quota.
        assert!(view.plan(&path("c"), Change::Watch, &full).is_ok());
    }
}
