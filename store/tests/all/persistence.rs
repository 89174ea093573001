//! Snapshots, persistence modes, durability policies.

use std::fs;
use std::path::Path;
use std::time::Duration;

use interstice_abi::{Persistence, Value};
use interstice_store::{Durability, Lsn, Store, StoreConfig, StoreError};

use crate::util::*;

fn files(dir: &Path, ext: &str) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(ext))
        .collect();
    out.sort();
    out
}

fn insert_many(store: &Store, t: interstice_store::TableId, from: u64, n: u64) {
    let mut tx = store.begin();
    for i in from..from + n {
        tx.insert(t, user(i, &format!("u{i}"), (i % 7) as u32))
            .unwrap();
    }
    let _ = tx.commit(meta(from)).unwrap();
}

#[test]
fn snapshot_plus_log_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let expected;
    {
        let (store, _) = open(dir.path());
        let t = create_users(&store, Persistence::Logged);
        insert_many(&store, t, 1, 50);
        assert_eq!(store.snapshot().unwrap(), Some(Lsn(2)));
        insert_many(&store, t, 100, 10);
        let mut tx = store.begin();
        tx.delete(t, &Value::U64(3)).unwrap();
        tx.update(t, user(4, "four", 4)).unwrap();
        let _ = tx.commit(meta(9)).unwrap();
        expected = rows(&store, t);
    }
    let (store, report) = open(dir.path());
    assert_eq!(report.snapshot_lsn, Some(Lsn(2)));
    assert_eq!(report.records_replayed, 2);
    assert_eq!(report.mutations_replayed, 12);
    let t = create_users(&store, Persistence::Logged);
    assert_eq!(rows(&store, t), expected);
    // Counters survive: the next generated id follows the highest ever stored.
    let mut tx = store.begin();
    assert_eq!(tx.insert(t, user(0, "new", 1)).unwrap()[0], Value::U64(110));
}

#[test]
fn a_corrupt_newest_snapshot_falls_back_to_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let expected;
    {
        let (store, _) = open(dir.path());
        let t = create_users(&store, Persistence::Logged);
        insert_many(&store, t, 1, 20);
        store.snapshot().unwrap();
        insert_many(&store, t, 100, 20);
        store.snapshot().unwrap();
        insert_many(&store, t, 200, 5);
        expected = rows(&store, t);
    }
    let snaps = files(dir.path(), ".snap");
    assert_eq!(snaps.len(), 2);
    let newest = dir.path().join(&snaps[1]);
    let mut bytes = fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    fs::write(&newest, bytes).unwrap();
    let (store, report) = open(dir.path());
    assert_eq!(report.snapshot_lsn, Some(Lsn(2)));
    assert_eq!(report.snapshots_rejected.len(), 1);
    assert_eq!(report.records_replayed, 2);
    let t = create_users(&store, Persistence::Logged);
    assert_eq!(rows(&store, t), expected);
}

#[test]
fn stateful_history_is_dropped_after_snapshots_while_logged_history_stays() {
    let dir = tempfile::tempdir().unwrap();
    let (expected_logged, expected_stateful);
    {
        let (store, _) = open(dir.path());
        let logged = create_users(&store, Persistence::Logged);
        let stateful = store
            .create_table("state", users(Persistence::Stateful), registry())
            .unwrap();
        for round in 0..3u64 {
            insert_many(&store, logged, round * 100 + 1, 5);
            insert_many(&store, stateful, round * 100 + 51, 5);
            store.snapshot().unwrap();
        }
        insert_many(&store, stateful, 1000, 2);
        expected_logged = rows(&store, logged);
        expected_stateful = rows(&store, stateful);
    }
    // Two snapshots kept; segments covered by the older one became history files.
    assert_eq!(files(dir.path(), ".snap").len(), 2);
    let hist = files(dir.path(), ".hist");
    assert!(!hist.is_empty());
    let history: Vec<u8> = hist
        .iter()
        .flat_map(|h| fs::read(dir.path().join(h)).unwrap())
        .collect();
    let contains = |email: &str| {
        let mut needle = vec![email.len() as u8];
        needle.extend_from_slice(email.as_bytes());
        history.windows(needle.len()).any(|w| w == needle)
    };
    // Logged rows of the two oldest rounds are history; stateful rows never are.
    for email in ["u1", "u5", "u101", "u105"] {
        assert!(contains(email), "logged row {email} kept in the history");
    }
    for email in ["u51", "u55", "u151"] {
        assert!(
            !contains(email),
            "stateful row {email} dropped from the history"
        );
    }
    let (store, _) = open(dir.path());
    let logged = create_users(&store, Persistence::Logged);
    let stateful = store
        .create_table("state", users(Persistence::Stateful), registry())
        .unwrap();
    assert_eq!(rows(&store, logged), expected_logged);
    assert_eq!(rows(&store, stateful), expected_stateful);
}

#[test]
fn stateful_round_trip_without_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let expected;
    {
        let (store, _) = open(dir.path());
        let t = store
            .create_table("s", users(Persistence::Stateful), registry())
            .unwrap();
        insert_many(&store, t, 1, 10);
        expected = rows(&store, t);
    }
    let (store, _) = open(dir.path());
    let t = store
        .create_table("s", users(Persistence::Stateful), registry())
        .unwrap();
    assert_eq!(rows(&store, t), expected);
}

#[test]
fn ephemeral_tables_leave_no_files() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path());
        let t = create_users(&store, Persistence::Ephemeral);
        insert_many(&store, t, 1, 10);
        assert_eq!(rows(&store, t).len(), 10);
        assert_eq!(store.snapshot().unwrap(), None);
        store.close().unwrap();
    }
    assert_eq!(files(dir.path(), ""), vec!["LOCK".to_owned()]);
    let (store, report) = open(dir.path());
    assert_eq!(report.records_replayed, 0);
    let t = create_users(&store, Persistence::Ephemeral);
    assert!(rows(&store, t).is_empty());
}

#[test]
fn in_memory_store_touches_no_disk() {
    let store = Store::in_memory();
    let t = create_users(&store, Persistence::Logged);
    insert_many(&store, t, 1, 3);
    assert_eq!(store.snapshot().unwrap(), None);
    assert_eq!(store.sync().unwrap(), Lsn(1));
}

#[test]
fn every_durability_policy_makes_commits_durable() {
    for durability in [
        Durability::EveryCommit,
        Durability::Batched {
            max_delay: Duration::from_millis(1),
            max_bytes: 1 << 16,
        },
        Durability::Off,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig::default().durability(durability);
        let (store, _) = Store::open(dir.path(), config.clone()).unwrap();
        let t = create_users(&store, Persistence::Logged);
        let mut last = Lsn(0);
        for i in 1..=20 {
            let mut tx = store.begin();
            tx.insert(t, user(i, &format!("u{i}"), 1)).unwrap();
            last = tx.commit(meta(i)).unwrap().lsn;
        }
        store.wait_durable(last).unwrap();
        assert!(store.durable_lsn() >= last, "{durability:?}");
        drop(store);
        let (store, report) = Store::open(dir.path(), config).unwrap();
        assert_eq!(report.last_lsn, last);
        let t = create_users(&store, Persistence::Logged);
        assert_eq!(rows(&store, t).len(), 20);
    }
}

#[test]
fn automatic_snapshots_follow_the_configured_interval() {
    let dir = tempfile::tempdir().unwrap();
    let config = config().snapshot_every_commits(Some(5));
    let expected;
    {
        let (store, _) = Store::open(dir.path(), config.clone()).unwrap();
        let t = create_users(&store, Persistence::Stateful);
        for i in 1..=23 {
            insert_many(&store, t, i * 10, 2);
        }
        expected = rows(&store, t);
        store.close().unwrap();
    }
    assert!(!files(dir.path(), ".snap").is_empty());
    let (store, report) = Store::open(dir.path(), config).unwrap();
    assert!(report.snapshot_lsn.is_some());
    assert!(report.records_replayed < 23);
    let t = create_users(&store, Persistence::Stateful);
    assert_eq!(rows(&store, t), expected);
}

#[test]
fn last_seq_survives_reopening_with_and_without_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, report) = open(dir.path());
        assert_eq!(report.last_seq, None);
        assert_eq!(store.last_seq(), None);
        // Catalog records (seq 0) don't count.
        let t = create_users(&store, Persistence::Logged);
        assert_eq!(store.last_seq(), None);
        insert_many(&store, t, 1, 3); // seq 1
        insert_many(&store, t, 7, 2); // seq 7
        assert_eq!(store.last_seq(), Some(7));
        // A transaction that writes only an ephemeral table logs nothing.
        let e = store
            .create_table(
                "app",
                users_named("scratch", Persistence::Ephemeral),
                registry(),
            )
            .unwrap();
        let mut tx = store.begin();
        tx.insert(e, user(1, "x", 1)).unwrap();
        let _ = tx.commit(meta(99)).unwrap();
        assert_eq!(store.last_seq(), Some(7));
    }
    // Log only.
    {
        let (store, report) = open(dir.path());
        assert_eq!(report.snapshot_lsn, None);
        assert_eq!(report.last_seq, Some(7));
        assert_eq!(store.last_seq(), Some(7));
        let t = create_users(&store, Persistence::Logged);
        insert_many(&store, t, 20, 1); // seq 20
        assert_eq!(store.last_seq(), Some(20));
        // A snapshot covering everything, then a catalog record after it: the log suffix holds
        // no transaction, so only the snapshot knows the seq.
        assert!(store.snapshot().unwrap().is_some());
        store
            .create_table("app", users_named("other", Persistence::Logged), registry())
            .unwrap();
    }
    {
        let (store, report) = open(dir.path());
        assert!(report.snapshot_lsn.is_some());
        assert_eq!(report.records_replayed, 1); // the catalog record
        assert_eq!(report.last_seq, Some(20));
        assert_eq!(store.last_seq(), Some(20));
        let t = create_users(&store, Persistence::Logged);
        insert_many(&store, t, 30, 1); // seq 30, after the snapshot
    }
    // Snapshot plus a log suffix.
    let (store, report) = open(dir.path());
    assert_eq!(report.records_replayed, 2);
    assert_eq!(report.last_seq, Some(30));
    assert_eq!(store.last_seq(), Some(30));
}

#[test]
fn in_memory_store_tracks_last_seq() {
    let store = Store::in_memory();
    let t = create_users(&store, Persistence::Logged);
    assert_eq!(store.last_seq(), None);
    insert_many(&store, t, 5, 1);
    assert_eq!(store.last_seq(), Some(5));
}

fn users_named(name: &str, persistence: Persistence) -> interstice_abi::TableSchema {
    let mut schema = users(persistence);
    schema.name = name.to_owned();
    schema
}

#[test]
fn an_absorbed_transaction_is_logged_in_the_same_record() {
    let dir = tempfile::tempdir().unwrap();
    let expected;
    {
        let (store, _) = open(dir.path());
        let logged = create_users(&store, Persistence::Logged);
        let ephemeral = store
            .create_table("scratch", users(Persistence::Ephemeral), registry())
            .unwrap();
        // Ephemeral writes alone need no record; absorbing a logged one makes one.
        let mut first = store.begin();
        first.insert(ephemeral, user(1, "e", 1)).unwrap();
        let mut first = first.apply().unwrap();
        assert!(!first.needs_log());
        let mut second = store.begin();
        second.insert(logged, user(1, "one", 1)).unwrap();
        first.absorb(second.apply().unwrap());
        assert!(first.needs_log());
        assert_eq!(first.changes().len(), 2);
        let Lsn(one) = store.log(first, meta(1)).unwrap();
        // Two logged transactions, one record: the next lsn.
        let mut a = store.begin();
        a.insert(logged, user(2, "two", 2)).unwrap();
        let mut a = a.apply().unwrap();
        let mut b = store.begin();
        b.delete(logged, &Value::U64(1)).unwrap();
        a.absorb(b.apply().unwrap());
        assert_eq!(store.log(a, meta(2)).unwrap(), Lsn(one + 1));
        expected = rows(&store, logged);
    }
    let (store, _) = open(dir.path());
    let logged = create_users(&store, Persistence::Logged);
    assert_eq!(rows(&store, logged), expected);
    assert_eq!(expected, vec![user(2, "two", 2)]);
    // Nothing was left outstanding: a snapshot can be taken.
    assert!(store.snapshot().unwrap().is_some());
}

#[test]
fn a_transaction_too_large_to_log_fails_at_apply_and_the_store_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = config().max_record_bytes(2000);
    let expected;
    {
        let (store, _) = Store::open(dir.path(), config.clone()).unwrap();
        let t = create_users(&store, Persistence::Logged);
        insert_many(&store, t, 1, 10);
        let mut big = store.begin();
        for i in 100..200 {
            big.insert(t, user(i, &format!("big{i}"), 1)).unwrap();
        }
        let err = big.apply().unwrap_err();
        let StoreError::TransactionTooLarge { bytes, limit } = err else {
            panic!("{err}");
        };
        assert!(bytes > 2000, "{bytes}");
        assert_eq!(limit, 2000);
        let message = err.to_string();
        assert!(
            message.contains(&bytes.to_string()) && message.contains("2000"),
            "{message}"
        );
        // Nothing of it was applied, and the store still commits.
        assert_eq!(rows(&store, t).len(), 10);
        insert_many(&store, t, 20, 5);
        expected = rows(&store, t);
        assert_eq!(expected.len(), 15);
    }
    let (store, report) = Store::open(dir.path(), config).unwrap();
    assert!(report.corruption.is_none());
    let t = create_users(&store, Persistence::Logged);
    assert_eq!(rows(&store, t), expected);
}

#[cfg(unix)]
#[test]
fn the_directory_and_every_file_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("node").join("store");
    {
        let (store, _) = open(&dir);
        let t = create_users(&store, Persistence::Logged);
        // Three snapshots: segments, snapshots (written as .tmp) and history (via .tmp).
        for round in 0..3 {
            insert_many(&store, t, round * 10 + 1, 3);
            store.snapshot().unwrap();
        }
        insert_many(&store, t, 100, 1);
        store.close().unwrap();
    }
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&parent.path().join("node")), 0o700);
    let names = files(&dir, "");
    for ext in ["LOCK", ".seg", ".snap", ".hist"] {
        assert!(names.iter().any(|n| n.ends_with(ext)), "{ext} in {names:?}");
    }
    for name in &names {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
}
