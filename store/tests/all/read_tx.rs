//! Read transactions: the state as of the commit at which they began, while commits go on.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::mpsc;
use std::thread;

use interstice_abi::{Persistence, Value};
use interstice_store::{ReadTransaction, Readable, Store, StoreError, TableId};
use proptest::prelude::*;

use crate::util::*;

/// One table's rows: id → (email, age).
type State = BTreeMap<u64, (u8, u32)>;

fn email(e: u8) -> String {
    format!("e{e}")
}

fn row(id: u64, (e, age): (u8, u32)) -> Vec<Value> {
    user(id, &email(e), age)
}

fn all(state: &State) -> Vec<Vec<Value>> {
    state.iter().map(|(&id, &r)| row(id, r)).collect()
}

#[derive(Clone, Debug)]
enum Op {
    Insert {
        table: usize,
        id: u64,
        e: u8,
        age: u32,
    },
    Update {
        table: usize,
        id: u64,
        e: u8,
        age: u32,
    },
    Delete {
        table: usize,
        id: u64,
    },
}

#[derive(Clone, Debug)]
enum Step {
    Commit(Vec<Op>),
    Begin,
    /// Compare the read transaction at this position (modulo the open ones) with its moment.
    Check(usize),
    /// Drop the read transaction at this position (modulo the open ones).
    End(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, 1..16u64, 0..6u8, 0..5u32)
            .prop_map(|(table, id, e, age)| Op::Insert { table, id, e, age }),
        2 => (0..2usize, 1..16u64, 0..6u8, 0..5u32)
            .prop_map(|(table, id, e, age)| Op::Update { table, id, e, age }),
        2 => (0..2usize, 1..16u64).prop_map(|(table, id)| Op::Delete { table, id }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => proptest::collection::vec(op(), 1..6).prop_map(Step::Commit),
        2 => Just(Step::Begin),
        2 => (0..8usize).prop_map(Step::Check),
        1 => (0..8usize).prop_map(Step::End),
    ]
}

/// Runs `op` in `tx`; on success, mirrors it in `states`. A failed operation has no effect.
fn run(tx: &mut interstice_store::Transaction, ids: &[TableId], states: &mut [State], op: &Op) {
    match *op {
        Op::Insert { table, id, e, age } => {
            if tx.insert(ids[table], row(id, (e, age))).is_ok() {
                states[table].insert(id, (e, age));
            }
        }
        Op::Update { table, id, e, age } => {
            if tx.update(ids[table], row(id, (e, age))).is_ok() {
                states[table].insert(id, (e, age));
            }
        }
        Op::Delete { table, id } => {
            if tx.delete(ids[table], &Value::U64(id)).is_ok() {
                states[table].remove(&id);
            }
        }
    }
}

/// Every read of `r` on every table agrees with `states`, the moment it should see.
fn check_reads(r: &impl Readable, ids: &[TableId], states: &[State]) -> Result<(), TestCaseError> {
    for (&t, state) in ids.iter().zip(states) {
        let rows = |got: Vec<interstice_store::Row>| to_vecs(&got);
        prop_assert_eq!(rows(r.scan(t).unwrap().collect()), all(state));
        prop_assert_eq!(r.len(t).unwrap(), state.len());
        for id in [0, 1, 5, 9, 15] {
            let want = state.get(&id).map(|&v| row(id, v));
            let got = r.get(t, &Value::U64(id)).unwrap().map(|r| r.to_vec());
            prop_assert_eq!(got, want, "get {}", id);
        }
        let (lo, hi) = (4u64, 11u64);
        let want: Vec<Vec<Value>> = state.range(lo..hi).map(|(&id, &v)| row(id, v)).collect();
        let got = r
            .range(t, Value::U64(lo)..Value::U64(hi))
            .unwrap()
            .collect();
        prop_assert_eq!(rows(got), want);
        for e in 0..6u8 {
            let want: Vec<Vec<Value>> = state
                .iter()
                .filter(|(_, v)| v.0 == e)
                .map(|(&id, &v)| row(id, v))
                .collect();
            let got = r.find(t, "email", &Value::from(email(e).as_str())).unwrap();
            prop_assert_eq!(rows(got), want, "email {}", e);
        }
        for age in 0..5u32 {
            let want: Vec<Vec<Value>> = state
                .iter()
                .filter(|(_, v)| v.1 == age)
                .map(|(&id, &v)| row(id, v))
                .collect();
            let got = r.find(t, "age", &Value::U32(age)).unwrap();
            prop_assert_eq!(rows(got), want, "age {}", age);
        }
        let mut want: Vec<(u32, u64)> = state
            .iter()
            .filter(|(_, v)| (1..=3).contains(&v.1))
            .map(|(&id, v)| (v.1, id))
            .collect();
        want.sort();
        let want: Vec<Vec<Value>> = want
            .into_iter()
            .map(|(_, id)| row(id, state[&id]))
            .collect();
        let got = r
            .index_range(t, "age", Value::U32(1)..=Value::U32(3))
            .unwrap();
        prop_assert_eq!(rows(got), want);
        let want: Vec<Vec<Value>> = state.range(3..).map(|(&id, &v)| row(id, v)).collect();
        let got = r
            .index_range(t, "id", (Bound::Excluded(Value::U64(2)), Bound::Unbounded))
            .unwrap();
        prop_assert_eq!(rows(got), want);
    }
    Ok(())
}

fn tables(store: &Store) -> Vec<TableId> {
    ["a", "b"]
        .iter()
        .map(|owner| {
            store
                .create_table(owner, users(Persistence::Logged), registry())
                .unwrap()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_read_transaction_sees_exactly_its_moment(steps in proptest::collection::vec(step(), 1..40)) {
        let store = Store::in_memory();
        let ids = tables(&store);
        let mut states = vec![State::new(), State::new()];
        let mut open: Vec<(ReadTransaction, Vec<State>)> = Vec::new();
        let mut seq = 0;
        for step in &steps {
            match step {
                Step::Commit(ops) => {
                    let mut tx = store.begin();
                    let mut staged = states.clone();
                    for op in ops {
                        run(&mut tx, &ids, &mut staged, op);
                    }
                    seq += 1;
                    let _ = tx.commit(meta(seq)).unwrap();
                    states = staged;
                }
                Step::Begin => open.push((store.begin_read(), states.clone())),
                Step::Check(i) if !open.is_empty() => {
                    let (r, then) = &open[i % open.len()];
                    check_reads(r, &ids, then)?;
                    prop_assert!(r.check().is_ok());
                }
                Step::End(i) if !open.is_empty() => {
                    let n = open.len();
                    open.remove(i % n);
                }
                Step::Check(_) | Step::End(_) => {}
            }
            // The present is what transactions and views read.
            check_reads(&store.read(), &ids, &states)?;
        }
        for (r, then) in &open {
            check_reads(r, &ids, then)?;
        }
        drop(open);
        // Every image is freed with the last read transaction that needed it.
        prop_assert_eq!(store.stats().before_images, 0);
    }
}

#[test]
fn an_open_read_transaction_never_holds_up_an_apply() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let t = create_users(&store, Persistence::Logged);
    let mut tx = store.begin();
    for i in 1..=100 {
        tx.insert(t, user(i, &format!("u{i}"), (i % 5) as u32))
            .unwrap();
    }
    let _ = tx.commit(meta(1)).unwrap();
    let before = rows(&store, t);

    let read = store.begin_read();
    // A scan half consumed, holding its place between batches.
    let mut scan = read.scan(t).unwrap();
    let first: Vec<_> = scan.by_ref().take(40).collect();
    let (done_tx, done_rx) = mpsc::channel();
    thread::scope(|s| {
        s.spawn(|| {
            // Deletes rows ahead of the scan, rewrites others, adds new ones.
            let mut tx = store.begin();
            for i in (30..=100).step_by(3) {
                tx.delete(t, &Value::U64(i)).unwrap();
            }
            for i in (31..=100).step_by(3) {
                tx.update(t, user(i, &format!("v{i}"), 9)).unwrap();
            }
            tx.insert(t, user(500, "new", 1)).unwrap();
            let _ = tx.commit(meta(2)).unwrap();
            done_tx.send(()).unwrap();
        });
        // The apply finishes while the read transaction and its scan are still open.
        done_rx.recv().unwrap();
    });
    assert_ne!(rows(&store, t), before);
    let rest: Vec<_> = scan.collect();
    let seen: Vec<_> = first.into_iter().chain(rest).map(|r| r.to_vec()).collect();
    assert_eq!(seen, before);
    assert_eq!(read.len(t).unwrap(), 100);
    assert_eq!(
        to_vecs(&read.find(t, "email", &Value::from("u31")).unwrap()),
        vec![user(31, "u31", 1)]
    );
    assert!(
        read.find(t, "email", &Value::from("new"))
            .unwrap()
            .is_empty()
    );
    assert!(read.check().is_ok());
    assert!(store.stats().before_images > 0);
    drop(read);
    assert_eq!(store.stats().before_images, 0);
}

#[test]
fn read_transactions_at_one_commit_share_images_and_free_them_together() {
    let store = Store::in_memory();
    let t = create_users(&store, Persistence::Logged);
    let mut tx = store.begin();
    tx.insert(t, user(1, "a", 1)).unwrap();
    let _ = tx.commit(meta(1)).unwrap();
    let (r1, r2) = (store.begin_read(), store.begin_read());
    // Two writes of one row: one image, for both.
    for age in [2, 3] {
        let mut tx = store.begin();
        tx.update(t, user(1, "a", age)).unwrap();
        let _ = tx.commit(meta(u64::from(age))).unwrap();
    }
    assert_eq!(store.stats().before_images, 1);
    let r3 = store.begin_read();
    let mut tx = store.begin();
    tx.delete(t, &Value::U64(1)).unwrap();
    let _ = tx.commit(meta(9)).unwrap();
    assert_eq!(store.stats().before_images, 2);
    drop(r1);
    assert_eq!(store.stats().before_images, 2);
    assert_eq!(
        r2.get(t, &Value::U64(1)).unwrap().unwrap().to_vec(),
        user(1, "a", 1)
    );
    // The older epoch goes: the newer one's image stays, for r3.
    drop(r2);
    assert_eq!(store.stats().before_images, 1);
    assert_eq!(
        r3.get(t, &Value::U64(1)).unwrap().unwrap().to_vec(),
        user(1, "a", 3)
    );
    assert_eq!(store.read().get(t, &Value::U64(1)).unwrap(), None);
    drop(r3);
    assert_eq!(store.stats().before_images, 0);
}

#[test]
fn past_the_image_cap_open_read_transactions_fail_instead_of_growing() {
    let dir = tempfile::tempdir().unwrap();
    let config = config().max_before_images(50);
    let (store, _) = interstice_store::Store::open(dir.path(), config).unwrap();
    let t = create_users(&store, Persistence::Logged);
    let mut tx = store.begin();
    for i in 1..=200 {
        tx.insert(t, user(i, &format!("u{i}"), 1)).unwrap();
    }
    let _ = tx.commit(meta(1)).unwrap();
    let read = store.begin_read();
    let mut scan = read.scan(t).unwrap();
    let first: Vec<_> = scan.by_ref().take(40).collect();
    // 60 changed rows need 60 images: past the cap.
    let mut tx = store.begin();
    for i in 1..=60 {
        tx.delete(t, &Value::U64(i)).unwrap();
    }
    let _ = tx.commit(meta(2)).unwrap();
    let err = read.get(t, &Value::U64(1)).unwrap_err();
    assert!(
        matches!(err, StoreError::SnapshotTooOld { limit: 50 }),
        "{err}"
    );
    assert!(err.to_string().contains("max_before_images"), "{err}");
    assert!(read.len(t).is_err());
    // The scan ends early, and says so.
    let rest = scan.by_ref().count();
    assert!(first.len() + rest < 200);
    assert!(scan.check().is_err());
    assert!(matches!(
        read.check(),
        Err(StoreError::SnapshotTooOld { .. })
    ));
    // The images were freed at once; a new read transaction works.
    assert_eq!(store.stats().before_images, 0);
    let fresh = store.begin_read();
    assert_eq!(fresh.len(t).unwrap(), 140);
    let mut tx = store.begin();
    tx.delete(t, &Value::U64(100)).unwrap();
    let _ = tx.commit(meta(3)).unwrap();
    assert_eq!(fresh.len(t).unwrap(), 140);
    assert!(fresh.check().is_ok());
    drop(read);
    drop(fresh);
    assert_eq!(store.stats().before_images, 0);
}

#[test]
fn tables_created_or_dropped_after_the_moment() {
    let store = Store::in_memory();
    let a = create_users(&store, Persistence::Logged);
    let read = store.begin_read();
    let b = store
        .create_table("later", users(Persistence::Logged), registry())
        .unwrap();
    let mut tx = store.begin();
    tx.insert(b, user(1, "x", 1)).unwrap();
    let _ = tx.commit(meta(1)).unwrap();
    // Created since: empty as of the moment.
    assert_eq!(read.len(b).unwrap(), 0);
    assert!(read.scan(b).unwrap().next().is_none());
    store.drop_table(a).unwrap();
    assert!(matches!(
        read.get(a, &Value::U64(1)),
        Err(StoreError::TableDropped { .. })
    ));
    drop(read);
    assert_eq!(store.stats().before_images, 0);
}
