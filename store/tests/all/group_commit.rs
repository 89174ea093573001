//! Group commit under `Durability::EveryCommit`: logging never fsyncs, waiting does, once for
//! everyone waiting.

use std::sync::Barrier;
use std::thread;

use interstice_abi::Persistence;
use interstice_store::{Durability, FailWrites, Lsn, Store, StoreError, WriteFailure};
use parking_lot::{Condvar, Mutex};

use crate::util::*;

fn every_commit() -> interstice_store::StoreConfig {
    config().durability(Durability::EveryCommit)
}

#[test]
fn one_wait_makes_many_logged_commits_durable_with_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), every_commit()).unwrap();
    let t = create_users(&store, Persistence::Logged);
    let start = store.stats();
    let mut last = Lsn(0);
    for i in 1..=20 {
        let mut tx = store.begin();
        tx.insert(t, user(0, &format!("u{i}"), 1)).unwrap();
        last = store.log(tx.apply().unwrap(), meta(i)).unwrap();
        // Logged, not durable: nothing reports it durable before an fsync covers it.
        assert!(store.durable_lsn() < last);
    }
    assert_eq!(
        store.stats().log_fsyncs,
        start.log_fsyncs,
        "log never fsyncs"
    );
    store.wait_durable(last).unwrap();
    assert_eq!(store.durable_lsn(), last);
    let stats = store.stats();
    assert_eq!(stats.log_fsyncs, start.log_fsyncs + 1);
    assert_eq!(stats.records_durable, start.records_durable + 20);
    // Already covered: no more fsyncs.
    store.wait_durable(Lsn(last.0 - 5)).unwrap();
    assert_eq!(store.stats().log_fsyncs, start.log_fsyncs + 1);
    // The convenience commit keeps EveryCommit's promise: durable when it returns.
    let mut tx = store.begin();
    tx.insert(t, user(0, "single", 1)).unwrap();
    let commit = tx.commit(meta(21)).unwrap();
    assert_eq!(store.durable_lsn(), commit.lsn);
    drop(store);
    let (store, report) = open(dir.path());
    assert_eq!(report.last_lsn, commit.lsn);
    let t = create_users(&store, Persistence::Logged);
    assert_eq!(rows(&store, t).len(), 21);
}

#[test]
fn threads_that_log_then_wait_share_one_fsync() {
    const THREADS: u64 = 8;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), every_commit()).unwrap();
    let tables: Vec<_> = (0..THREADS)
        .map(|i| {
            store
                .create_table(&format!("t{i}"), users(Persistence::Logged), registry())
                .unwrap()
        })
        .collect();
    let start = store.stats();
    let turn = (Mutex::new(0u64), Condvar::new());
    let logged = Barrier::new(THREADS as usize);
    thread::scope(|s| {
        for (i, &t) in tables.iter().enumerate() {
            let (store, turn, logged) = (&store, &turn, &logged);
            s.spawn(move || {
                let seq = i as u64;
                let mut tx = store.begin();
                tx.insert(t, user(0, "x", 1)).unwrap();
                let applied = tx.apply().unwrap();
                // Log in sequence order, as the runtime does.
                let mut next = turn.0.lock();
                while *next != seq {
                    turn.1.wait(&mut next);
                }
                let lsn = store.log(applied, meta(seq + 1)).unwrap();
                *next += 1;
                turn.1.notify_all();
                drop(next);
                logged.wait();
                store.wait_durable(lsn).unwrap();
                assert!(store.durable_lsn() >= lsn);
            });
        }
    });
    let stats = store.stats();
    assert_eq!(stats.log_fsyncs - start.log_fsyncs, 1);
    assert_eq!(stats.records_durable - start.records_durable, THREADS);
}

#[test]
fn a_failed_group_fsync_fails_every_waiter_and_poisons() {
    const EROFS: i32 = 30;
    let dir = tempfile::tempdir().unwrap();
    let config = every_commit().fail_writes(Some(FailWrites {
        after_bytes: 600,
        os_error: EROFS,
    }));
    let (store, _) = Store::open(dir.path(), config).unwrap();
    let t = create_users(&store, Persistence::Logged);
    let mut lsns = Vec::new();
    for i in 1..=10 {
        let mut tx = store.begin();
        tx.insert(t, user(0, &format!("u{i}"), 1)).unwrap();
        lsns.push(store.log(tx.apply().unwrap(), meta(i)).unwrap());
    }
    let err = store.wait_durable(*lsns.last().unwrap()).unwrap_err();
    assert_eq!(err.write_failure(), Some(WriteFailure::ReadOnly), "{err}");
    assert!(store.durable_lsn() < lsns[0], "nothing was made durable");
    // Every waiter hears of it, even for an earlier record.
    let err = store.wait_durable(lsns[0]).unwrap_err();
    assert!(matches!(err, StoreError::Poisoned { .. }), "{err}");
}
