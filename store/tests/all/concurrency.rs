//! Parallel, non-conflicting transactions: apply out of order, log in sequence order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use interstice_abi::{Persistence, Value};
use interstice_store::{Readable, Store, TableId};
use parking_lot::{Condvar, Mutex};

use crate::util::*;

const THREADS: u64 = 4;
const ROUNDS: u64 = 40;

/// The work of transaction (thread, round): touches only that thread's two tables, and keeps
/// their row counts equal.
fn work(tx: &mut interstice_store::Transaction, a: TableId, b: TableId, round: u64) {
    tx.insert(a, user(0, &format!("a{round}"), round as u32))
        .unwrap();
    tx.insert(b, user(0, &format!("b{round}"), round as u32))
        .unwrap();
    if round % 5 == 4 {
        let victim = Value::U64(round);
        tx.delete(a, &victim).unwrap();
        tx.delete(b, &victim).unwrap();
    } else if round > 0 {
        tx.update(a, user(round, &format!("a{round}x"), 7)).unwrap();
    }
}

fn tables(store: &Store) -> Vec<(TableId, TableId)> {
    (0..THREADS)
        .map(|i| {
            let a = store
                .create_table(&format!("a{i}"), users(Persistence::Logged), registry())
                .unwrap();
            let b = store
                .create_table(&format!("b{i}"), users(Persistence::Stateful), registry())
                .unwrap();
            (a, b)
        })
        .collect()
}

fn snapshot_of(store: &Store, tables: &[(TableId, TableId)]) -> Vec<Vec<Vec<Value>>> {
    tables
        .iter()
        .flat_map(|&(a, b)| [rows(store, a), rows(store, b)])
        .collect()
}

#[test]
fn parallel_transactions_equal_the_serial_result() {
    let serial = Store::in_memory();
    let serial_tables = tables(&serial);
    for round in 0..ROUNDS {
        for (i, &(a, b)) in serial_tables.iter().enumerate() {
            let mut tx = serial.begin();
            work(&mut tx, a, b, round);
            let _ = tx.commit(meta(round * THREADS + i as u64)).unwrap();
        }
    }
    let expected = snapshot_of(&serial, &serial_tables);

    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let tabs = tables(&store);
    let next_seq = Mutex::new(0u64);
    let turn = Condvar::new();
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        let mut writers = Vec::new();
        for (i, &(a, b)) in tabs.iter().enumerate() {
            let (store, next_seq, turn) = (&store, &next_seq, &turn);
            writers.push(s.spawn(move || {
                for round in 0..ROUNDS {
                    let seq = round * THREADS + i as u64;
                    let mut tx = store.begin();
                    work(&mut tx, a, b, round);
                    let applied = tx.apply().unwrap();
                    let mut next = next_seq.lock();
                    while *next != seq {
                        turn.wait(&mut next);
                    }
                    store.log(applied, meta(seq)).unwrap();
                    *next += 1;
                    turn.notify_all();
                }
            }));
        }
        let reader = s.spawn(|| {
            let mut views = 0u64;
            while !done.load(Ordering::Acquire) || views == 0 {
                let view = store.read();
                for &(a, b) in &tabs {
                    assert_eq!(view.len(a).unwrap(), view.len(b).unwrap(), "half-applied");
                    let in_a: Vec<Value> = view.scan(a).unwrap().map(|r| r[0].clone()).collect();
                    let in_b: Vec<Value> = view.scan(b).unwrap().map(|r| r[0].clone()).collect();
                    assert_eq!(in_a, in_b, "half-applied");
                }
                views += 1;
            }
        });
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Release);
        reader.join().unwrap();
    });
    assert_eq!(snapshot_of(&store, &tabs), expected);
    drop(store);
    let (store, report) = open(dir.path());
    assert_eq!(report.records_replayed, 2 * THREADS + ROUNDS * THREADS);
    let tabs = tables(&store);
    assert_eq!(snapshot_of(&store, &tabs), expected);
}

#[test]
fn a_conflicting_concurrent_writer_is_refused_not_merged() {
    let store = Store::in_memory();
    let t = create_users(&store, Persistence::Logged);
    let mut first = store.begin();
    let mut second = store.begin();
    first.insert(t, user(1, "a", 1)).unwrap();
    second.insert(t, user(2, "b", 1)).unwrap();
    let _ = first.commit(meta(1)).unwrap();
    let err = second.apply().unwrap_err();
    assert!(
        matches!(err, interstice_store::StoreError::Conflict { .. }),
        "{err}"
    );
    assert_eq!(rows(&store, t), vec![user(1, "a", 1)]);
}
