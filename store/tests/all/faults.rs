//! A log that cannot be written: the store stops committing and says why and what to do.

use std::path::Path;

use interstice_abi::Persistence;
use interstice_store::{FailWrites, Store, StoreError, WriteFailure};

use crate::util::*;

/// Commits one-row transactions until one fails; returns its error and the rows before it.
fn commit_until_failure(store: &Store) -> (StoreError, Vec<Vec<interstice_abi::Value>>) {
    let t = store.table_id("app.users").unwrap();
    for i in 1..1000 {
        let before = rows(store, t);
        let mut tx = store.begin();
        tx.insert(t, user(0, &format!("u{i}"), 1)).unwrap();
        if let Err(e) = tx.commit(meta(i)) {
            return (e, before);
        }
    }
    panic!("no commit failed");
}

fn check_refuses_commits(store: &Store, kind: WriteFailure, remedy: &str) {
    let poisoned = store.poisoned().expect("poisoned");
    assert_eq!(poisoned.write_failure(), Some(kind));
    assert!(poisoned.to_string().contains(remedy), "{poisoned}");
    assert!(poisoned.to_string().contains("restart"), "{poisoned}");
    let t = store.table_id("app.users").unwrap();
    let mut tx = store.begin();
    tx.insert(t, user(0, "later", 1)).unwrap();
    let err = tx.apply().unwrap_err();
    assert!(matches!(err, StoreError::Poisoned { .. }), "{err}");
    assert_eq!(err.write_failure(), Some(kind));
}

fn reopen_rows(dir: &Path) -> Vec<Vec<interstice_abi::Value>> {
    let (store, report) = open(dir);
    assert!(report.corruption.is_none(), "{report:?}");
    let t = create_users(&store, Persistence::Logged);
    rows(&store, t)
}

#[cfg(unix)]
#[test]
fn a_read_only_file_system_poisons_with_a_typed_actionable_error() {
    const EROFS: i32 = 30;
    let dir = tempfile::tempdir().unwrap();
    let config = config().fail_writes(Some(FailWrites {
        after_bytes: 1000,
        os_error: EROFS,
    }));
    let before = {
        let (store, _) = Store::open(dir.path(), config).unwrap();
        create_users(&store, Persistence::Logged);
        let (err, before) = commit_until_failure(&store);
        assert!(
            matches!(
                err,
                StoreError::LogWrite {
                    kind: WriteFailure::ReadOnly,
                    ..
                }
            ),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains("read-only"), "{message}");
        assert!(message.contains("remount"), "{message}");
        check_refuses_commits(&store, WriteFailure::ReadOnly, "remount");
        before
    };
    // The failed commit was never acknowledged and never reached the disk.
    assert_eq!(reopen_rows(dir.path()), before);
}

/// A real "no space left on device": the next segment is a link to `/dev/full`.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_poisons_with_a_typed_actionable_error() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), config()).unwrap();
    create_users(&store, Persistence::Logged);
    // The catalog record (lsn 1) closed its segment; lsn 2 starts the next one.
    let next = dir.path().join(format!("log-{:020}.seg", 2));
    std::os::unix::fs::symlink("/dev/full", &next).unwrap();
    let (err, before) = commit_until_failure(&store);
    assert_eq!(err.write_failure(), Some(WriteFailure::NoSpace), "{err}");
    assert!(err.to_string().contains("free space"), "{err}");
    check_refuses_commits(&store, WriteFailure::NoSpace, "free space");
    drop(store);
    std::fs::remove_file(&next).unwrap();
    assert_eq!(reopen_rows(dir.path()), before);
}
