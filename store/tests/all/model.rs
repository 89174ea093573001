//! Random operation sequences against a `BTreeMap` model, with reopen and snapshots at random
//! points, for every persistence mode.

use std::collections::BTreeMap;

use interstice_abi::{Persistence, Value};
use interstice_store::{Readable, Store, StoreError, TableId, Transaction};
use proptest::prelude::*;

use crate::util::*;

const MODES: [Persistence; 3] = [
    Persistence::Logged,
    Persistence::Stateful,
    Persistence::Ephemeral,
];

#[derive(Clone, Debug)]
enum TxOp {
    Insert {
        table: usize,
        id: u64,
        email: u8,
        age: u32,
    },
    Update {
        table: usize,
        id: u64,
        email: u8,
        age: u32,
    },
    Delete {
        table: usize,
        id: u64,
    },
    Find {
        table: usize,
        email: u8,
    },
    Range {
        table: usize,
        lo: u32,
        hi: u32,
    },
    Scan {
        table: usize,
    },
}

#[derive(Clone, Debug)]
enum Step {
    Tx { ops: Vec<TxOp>, commit: bool },
    Reopen,
    Snapshot,
}

fn tx_op() -> impl Strategy<Value = TxOp> {
    let t = 0..MODES.len();
    prop_oneof![
        4 => (t.clone(), prop_oneof![Just(0u64), 1..12u64], 0..8u8, 0..5u32)
            .prop_map(|(table, id, email, age)| TxOp::Insert { table, id, email, age }),
        2 => (t.clone(), 1..12u64, 0..8u8, 0..5u32)
            .prop_map(|(table, id, email, age)| TxOp::Update { table, id, email, age }),
        2 => (t.clone(), 1..12u64).prop_map(|(table, id)| TxOp::Delete { table, id }),
        1 => (t.clone(), 0..8u8).prop_map(|(table, email)| TxOp::Find { table, email }),
        1 => (t.clone(), 0..5u32, 0..5u32).prop_map(|(table, lo, hi)| TxOp::Range { table, lo, hi }),
        1 => t.prop_map(|table| TxOp::Scan { table }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (proptest::collection::vec(tx_op(), 1..8), proptest::bool::weighted(0.8))
            .prop_map(|(ops, commit)| Step::Tx { ops, commit }),
        1 => Just(Step::Reopen),
        1 => Just(Step::Snapshot),
    ]
}

#[derive(Clone, Debug, Default)]
struct Model {
    rows: BTreeMap<u64, (String, u32)>,
    counter: u64,
}

impl Model {
    fn row(id: u64, (email, age): &(String, u32)) -> Vec<Value> {
        user(id, email, *age)
    }

    fn all(&self) -> Vec<Vec<Value>> {
        self.rows.iter().map(|(id, r)| Self::row(*id, r)).collect()
    }

    fn email_holder(&self, email: &str) -> Option<u64> {
        self.rows
            .iter()
            .find(|(_, r)| r.0 == email)
            .map(|(id, _)| *id)
    }
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Ok(Vec<Vec<Value>>),
    Duplicate,
    Unique,
    Missing,
}

fn outcome(r: Result<Vec<Vec<Value>>, StoreError>) -> Outcome {
    match r {
        Ok(rows) => Outcome::Ok(rows),
        Err(StoreError::DuplicateKey { .. }) => Outcome::Duplicate,
        Err(StoreError::UniqueViolation { .. }) => Outcome::Unique,
        Err(StoreError::NoSuchRow { .. }) => Outcome::Missing,
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn run_op(tx: &mut Transaction, ids: &[TableId], op: &TxOp) -> Outcome {
    let one = |r: Result<interstice_store::Row, StoreError>| outcome(r.map(|r| vec![r.to_vec()]));
    match *op {
        TxOp::Insert {
            table,
            id,
            email,
            age,
        } => one(tx.insert(ids[table], user(id, &format!("e{email}"), age))),
        TxOp::Update {
            table,
            id,
            email,
            age,
        } => one(tx.update(ids[table], user(id, &format!("e{email}"), age))),
        TxOp::Delete { table, id } => one(tx.delete(ids[table], &Value::U64(id))),
        TxOp::Find { table, email } => outcome(
            tx.find(
                ids[table],
                "email",
                &Value::from(format!("e{email}").as_str()),
            )
            .map(|v| to_vecs(&v)),
        ),
        TxOp::Range { table, lo, hi } => outcome(
            tx.index_range(ids[table], "age", Value::U32(lo)..=Value::U32(hi))
                .map(|v| to_vecs(&v)),
        ),
        TxOp::Scan { table } => {
            Outcome::Ok(tx.scan(ids[table]).unwrap().map(|r| r.to_vec()).collect())
        }
    }
}

fn model_op(models: &mut [Model], op: &TxOp) -> Outcome {
    match *op {
        TxOp::Insert {
            table,
            id,
            email,
            age,
        } => {
            let m = &mut models[table];
            let id = if id == 0 { m.counter + 1 } else { id };
            let email = format!("e{email}");
            if m.rows.contains_key(&id) {
                return Outcome::Duplicate;
            }
            if m.email_holder(&email).is_some() {
                return Outcome::Unique;
            }
            m.counter = m.counter.max(id);
            m.rows.insert(id, (email.clone(), age));
            Outcome::Ok(vec![user(id, &email, age)])
        }
        TxOp::Update {
            table,
            id,
            email,
            age,
        } => {
            let m = &mut models[table];
            let email = format!("e{email}");
            let Some(old) = m.rows.get(&id).cloned() else {
                return Outcome::Missing;
            };
            if m.email_holder(&email).is_some_and(|h| h != id) {
                return Outcome::Unique;
            }
            m.rows.insert(id, (email, age));
            Outcome::Ok(vec![Model::row(id, &old)])
        }
        TxOp::Delete { table, id } => match models[table].rows.remove(&id) {
            Some(old) => Outcome::Ok(vec![Model::row(id, &old)]),
            None => Outcome::Missing,
        },
        TxOp::Find { table, email } => {
            let m = &models[table];
            let email = format!("e{email}");
            Outcome::Ok(
                m.email_holder(&email)
                    .map(|id| Model::row(id, &m.rows[&id]))
                    .into_iter()
                    .collect(),
            )
        }
        TxOp::Range { table, lo, hi } => {
            let mut rows: Vec<(u32, u64)> = models[table]
                .rows
                .iter()
                .filter(|(_, r)| (lo..=hi).contains(&r.1))
                .map(|(id, r)| (r.1, *id))
                .collect();
            rows.sort();
            let m = &models[table];
            Outcome::Ok(
                rows.into_iter()
                    .map(|(_, id)| Model::row(id, &m.rows[&id]))
                    .collect(),
            )
        }
        TxOp::Scan { table } => Outcome::Ok(models[table].all()),
    }
}

fn create_all(store: &Store) -> Vec<TableId> {
    MODES
        .iter()
        .map(|&p| {
            store
                .create_table(&format!("{p:?}").to_lowercase(), users(p), registry())
                .unwrap()
        })
        .collect()
}

fn check(store: &Store, ids: &[TableId], models: &[Model]) -> Result<(), TestCaseError> {
    for (t, m) in ids.iter().zip(models) {
        prop_assert_eq!(rows(store, *t), m.all());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_the_model(steps in proptest::collection::vec(step(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let config = config().snapshot_every_commits(Some(6)).segment_max_bytes(512);
        let (mut store, _) = Store::open(dir.path(), config.clone()).unwrap();
        let mut ids = create_all(&store);
        let mut models = vec![Model::default(); MODES.len()];
        let mut seq = 0;
        for step in &steps {
            match step {
                Step::Tx { ops, commit } => {
                    let mut tx = store.begin();
                    let mut staged = models.clone();
                    for op in ops {
                        let got = run_op(&mut tx, &ids, op);
                        let want = model_op(&mut staged, op);
                        prop_assert_eq!(got, want, "{:?}", op);
                    }
                    if *commit {
                        seq += 1;
                        let _ = tx.commit(meta(seq)).unwrap();
                        models = staged;
                    }
                }
                Step::Reopen => {
                    drop(store);
                    let (reopened, report) = Store::open(dir.path(), config.clone()).unwrap();
                    prop_assert!(report.corruption.is_none());
                    store = reopened;
                    let new_ids = create_all(&store);
                    prop_assert_eq!(&new_ids[..2], &ids[..2]);
                    ids = new_ids;
                    models[2] = Model::default();
                }
                Step::Snapshot => {
                    store.snapshot().unwrap();
                }
            }
            check(&store, &ids, &models)?;
        }
        drop(store);
        let (store, _) = Store::open(dir.path(), config).unwrap();
        let ids = create_all(&store);
        models[2] = Model::default();
        check(&store, &ids, &models)?;
        // Counters survived too: the next generated id is the model's.
        for (t, m) in ids.iter().zip(&models) {
            let mut tx = store.begin();
            let row = tx.insert(*t, user(0, "fresh", 0)).unwrap();
            prop_assert_eq!(&row[0], &Value::U64(m.counter + 1));
        }
    }
}
