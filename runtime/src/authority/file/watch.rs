//! Watching paths by polling: a thread looks at the watched paths every
//! `FileConfig::poll_interval` (walking them like every other access, without following
//! links), compares with the last look and submits a `file_changed` invocation per change.
//!
//! Polling rather than inotify/FSEvents (the `notify` crate): it needs no dependency and no
//! per-platform code, works on every file system (network and container mounts included), is
//! not capped by `max_user_watches`, and cannot be led out of the folder, since it walks with
//! the same confined descriptors as reads. Its costs are a latency of up to one interval and
//! a walk of the watched paths per interval, which the entry quota bounds.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use interstice_abi::{Event, Value};

use super::Shared;
use super::disk::{Meta, Root};
use super::path::{Kind, RelPath};

/// `FileChangeKind`'s variants, as the ABI numbers them.
const CREATED: u32 = 0;
const MODIFIED: u32 = 1;
const REMOVED: u32 = 2;

/// What is at and under `from`, at most `limit` entries; nothing when it cannot be looked at.
pub(super) fn scan(root: &Root, from: &RelPath, limit: u64) -> BTreeMap<RelPath, Meta> {
    let mut seen = BTreeMap::new();
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let walked = root.walk(from, limit, false, &mut |path, meta| {
        seen.insert(path.clone(), *meta);
    });
    if let Err(e) = walked {
        tracing::debug!(path = %from, error = %e, "a watched path cannot be looked at");
    }
    seen
}

/// The changes from `old` to `new`, in path order: a path that changed kind was removed, then
/// created again. A folder is modified only by what it holds, which is reported for itself.
pub(super) fn diff(
    old: &BTreeMap<RelPath, Meta>,
    new: &BTreeMap<RelPath, Meta>,
) -> Vec<(RelPath, u32)> {
    let mut changes = Vec::new();
    let mut paths: Vec<&RelPath> = old.keys().chain(new.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        match (old.get(path), new.get(path)) {
            (None, Some(_)) => changes.push((path.clone(), CREATED)),
            (Some(_), None) => changes.push((path.clone(), REMOVED)),
            (Some(a), Some(b))
                if a.kind != b.kind || (a.kind == Kind::Dir && a.inode != b.inode) =>
            {
                changes.push((path.clone(), REMOVED));
                changes.push((path.clone(), CREATED));
            }
            (Some(a), Some(b))
                if a.kind != Kind::Dir
                    && (a.size, a.modified_ns, a.inode) != (b.size, b.modified_ns, b.inode) =>
            {
                changes.push((path.clone(), MODIFIED));
            }
            _ => {}
        }
    }
    changes
}

/// A `FileChange`, encoded as the `file_changed` hook's arguments.
pub(super) fn encode(path: &RelPath, kind: u32) -> Vec<u8> {
    interstice_abi::encode(&Value::Struct(vec![
        Value::String(path.as_str().to_owned()),
        Value::Enum {
            variant: kind,
            fields: Vec::new(),
        },
    ]))
}

/// The watcher thread: looks every interval until told to stop.
pub(super) fn run(shared: &Shared) {
    loop {
        {
            let mut stop = shared.stop.lock();
            if !*stop {
                shared.wake.wait_for(&mut stop, shared.config.poll_interval);
            }
            if *stop {
                return;
            }
        }
        let (changes, sink) = {
            let mut guard = shared.state.lock();
            let state = &mut *guard;
            let Some(Ok(folder)) = &state.folder else {
                continue;
            };
            if state.watches.is_empty() {
                continue;
            }
            let mut seen = BTreeMap::new();
            for watched in &state.watches {
                seen.extend(scan(&folder.root, watched, shared.config.max_entries));
            }
            let changes = diff(&state.snapshot, &seen);
            state.snapshot = seen;
            (changes, state.sink.clone())
        };
        let Some(sink) = sink else {
            continue;
        };
        for (path, kind) in changes {
            match sink.submit(&Event::FileChanged, encode(&path, kind)) {
                Ok(_) => {
                    shared.events.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(module = %sink.module(), error = %e, "a file change was not delivered");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(kind: Kind, size: u64, modified_ns: i64, inode: u64) -> Meta {
        Meta {
            kind,
            size,
            modified_ns,
            links: 1,
            inode,
        }
    }

    fn path(p: &str) -> RelPath {
        RelPath::parse(p).unwrap()
    }

    #[test]
    fn changes_come_in_path_order_with_kind_changes_as_removal_then_creation() {
        let old = BTreeMap::from([
            (path("a"), meta(Kind::File, 1, 10, 1)),
            (path("b"), meta(Kind::File, 1, 10, 2)),
            (path("c"), meta(Kind::Dir, 0, 10, 3)),
            (path("d"), meta(Kind::File, 1, 10, 4)),
            (path("e"), meta(Kind::Dir, 0, 10, 5)),
        ]);
        let new = BTreeMap::from([
            (path("a"), meta(Kind::File, 1, 10, 1)),
            (path("b"), meta(Kind::File, 2, 11, 2)),
            // A folder whose content changed is not itself modified.
            (path("c"), meta(Kind::Dir, 0, 99, 3)),
            (path("d"), meta(Kind::Dir, 0, 10, 4)),
            (path("f"), meta(Kind::File, 0, 10, 6)),
        ]);
        let changes = diff(&old, &new);
        let changes: Vec<(&str, u32)> = changes.iter().map(|(p, k)| (p.as_str(), *k)).collect();
        assert_eq!(
            changes,
            [
                ("b", MODIFIED),
                ("d", REMOVED),
                ("d", CREATED),
                ("e", REMOVED),
                ("f", CREATED)
            ]
        );
    }
}
