//! Transactions, constraints, indexes, auto_inc, catalog.

use std::sync::Arc;

use interstice_abi::{
    Field, IndexKind, Persistence, TableSchema, Type, TypeDef, TypeRegistry, Value, Variant,
};
use interstice_store::{ChangeKind, Readable, Row, Store, StoreError, decode_row};

use crate::util::*;

#[test]
fn reads_see_own_writes_and_abort_leaves_no_trace() {
    let store = Store::in_memory();
    let t = create_users(&store, Persistence::Logged);
    let mut tx = store.begin();
    let a = tx.insert(t, user(0, "a@x", 30)).unwrap();
    assert_eq!(a[0], Value::U64(1));
    assert_eq!(tx.get(t, &Value::U64(1)).unwrap().unwrap(), a);
    assert_eq!(store.read().get(t, &Value::U64(1)).unwrap(), None);
    drop(tx);
    assert!(rows(&store, t).is_empty());
    // The aborted transaction did not consume counter values.
    let mut tx = store.begin();
    assert_eq!(tx.insert(t, user(0, "b@x", 1)).unwrap()[0], Value::U64(1));
    let _ = tx.commit(meta(1)).unwrap();
}

#[test]
fn change_set_is_in_operation_order() {
    let store = Store::in_memory();
    let t = create_users(&store, Persistence::Logged);
    let mut tx = store.begin();
    tx.insert(t, user(0, "a", 1)).unwrap();
    tx.insert(t, user(0, "b", 2)).unwrap();
    let _ = tx.commit(meta(1)).unwrap();
    let mut tx = store.begin();
    tx.update(t, user(2, "b2", 3)).unwrap();
    tx.delete(t, &Value::U64(1)).unwrap();
    tx.insert(t, user(0, "c", 4)).unwrap();
    let commit = tx.commit(meta(2)).unwrap();
    let kinds: Vec<_> = commit.changes.iter().map(|c| &c.kind).collect();
    assert!(
        matches!(kinds[0], ChangeKind::Update { old, new } if old[1] == Value::from("b") && new[1] == Value::from("b2"))
    );
    assert!(matches!(kinds[1], ChangeKind::Delete(r) if r[0] == Value::U64(1)));
    assert!(matches!(kinds[2], ChangeKind::Insert(r) if r[0] == Value::U64(3)));
    assert_eq!(rows(&store, t), vec![user(2, "b2", 3), user(3, "c", 4)]);
}

#[test]
fn each_constraint_violation_is_typed_and_leaves_no_trace() {
    let store = Store::in_memory();
    let t = create_users(&store, Persistence::Logged);
    let mut tx = store.begin();
    tx.insert(t, user(5, "a", 1)).unwrap();
    let _ = tx.commit(meta(1)).unwrap();

    let mut tx = store.begin();
    tx.insert(t, user(6, "ok", 2)).unwrap();
    let err = tx.insert(t, user(5, "z", 1)).unwrap_err();
    assert!(matches!(err, StoreError::DuplicateKey { ref table, .. } if table == "app.users"));
    assert!(err.to_string().contains("U64(5)"), "{err}");
    let err = tx.insert(t, user(7, "a", 1)).unwrap_err();
    assert!(matches!(err, StoreError::UniqueViolation { ref column, .. } if column == "email"));
    let err = tx.insert(t, vec![Value::U64(8)]).unwrap_err();
    assert!(matches!(
        err,
        StoreError::WrongColumnCount {
            expected: 3,
            found: 1,
            ..
        }
    ));
    let err = tx
        .insert(t, vec![Value::U64(8), Value::U32(1), Value::U32(1)])
        .unwrap_err();
    assert!(matches!(err, StoreError::TypeMismatch { ref column, .. } if column == "email"));
    let err = tx.update(t, user(99, "q", 1)).unwrap_err();
    assert!(matches!(err, StoreError::NoSuchRow { .. }));
    let err = tx.delete(t, &Value::U64(99)).unwrap_err();
    assert!(matches!(err, StoreError::NoSuchRow { .. }));
    let err = tx.update(t, user(6, "a", 1)).unwrap_err();
    assert!(matches!(err, StoreError::UniqueViolation { .. }));
    let err = tx.find(t, "nope", &Value::U32(1)).unwrap_err();
    assert!(matches!(err, StoreError::UnknownColumn { .. }));
    let err = tx.index_range(t, "email", ..).unwrap_err();
    assert!(matches!(err, StoreError::NotOrdered { .. }));
    // The failed operations had no effect; the good one is still there.
    assert_eq!(tx.len(t).unwrap(), 2);
    let _ = tx.commit(meta(2)).unwrap();
    assert_eq!(rows(&store, t), vec![user(5, "a", 1), user(6, "ok", 2)]);
}

#[test]
fn unique_values_can_move_between_rows_in_one_transaction() {
    let store = Store::in_memory();
    let t = create_users(&store, Persistence::Logged);
    let mut tx = store.begin();
    tx.insert(t, user(1, "a", 1)).unwrap();
    let _ = tx.commit(meta(1)).unwrap();
    let mut tx = store.begin();
    tx.update(t, user(1, "b", 1)).unwrap();
    tx.insert(t, user(2, "a", 1)).unwrap();
    assert_eq!(
        to_vecs(&tx.find(t, "email", &Value::from("a")).unwrap()),
        vec![user(2, "a", 1)]
    );
    let _ = tx.commit(meta(2)).unwrap();
    let view = store.read();
    assert_eq!(
        to_vecs(&view.find(t, "email", &Value::from("a")).unwrap()),
        vec![user(2, "a", 1)]
    );
    assert_eq!(
        to_vecs(&view.find(t, "email", &Value::from("b")).unwrap()),
        vec![user(1, "b", 1)]
    );
}

#[test]
fn index_lookups_and_ranges_merge_the_overlay() {
    let store = Store::in_memory();
    let t = create_users(&store, Persistence::Logged);
    let mut tx = store.begin();
    for (i, age) in [30, 20, 30, 40, 10].iter().enumerate() {
        tx.insert(t, user(i as u64 + 1, &format!("u{i}"), *age))
            .unwrap();
    }
    let _ = tx.commit(meta(1)).unwrap();
    let mut tx = store.begin();
    tx.delete(t, &Value::U64(1)).unwrap();
    tx.insert(t, user(9, "n", 30)).unwrap();
    tx.update(t, user(4, "u3", 25)).unwrap();
    let thirty = tx.find(t, "age", &Value::U32(30)).unwrap();
    assert_eq!(to_vecs(&thirty), vec![user(3, "u2", 30), user(9, "n", 30)]);
    let range = tx
        .index_range(t, "age", Value::U32(20)..=Value::U32(30))
        .unwrap();
    let ids: Vec<_> = range.iter().map(|r| r[0].clone()).collect();
    assert_eq!(ids, [2u64, 4, 3, 9].map(Value::U64));
    let pk_range: Vec<_> = tx
        .range(t, Value::U64(2)..Value::U64(9))
        .unwrap()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(pk_range, [2u64, 3, 4, 5].map(Value::U64));
    let all: Vec<_> = tx.scan(t).unwrap().map(|r| r[0].clone()).collect();
    assert_eq!(all, [2u64, 3, 4, 5, 9].map(Value::U64));
    assert_eq!(tx.find(t, "id", &Value::U64(9)).unwrap().len(), 1);
    assert_eq!(tx.clear(t).unwrap(), 5);
    assert_eq!(tx.scan(t).unwrap().count(), 0);
    let commit = tx.commit(meta(2)).unwrap();
    assert_eq!(commit.changes.len(), 3 + 5);
    assert!(rows(&store, t).is_empty());
    assert!(
        store
            .read()
            .find(t, "age", &Value::U32(30))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn auto_inc_is_deterministic_and_never_reuses() {
    let run = || {
        let store = Store::in_memory();
        let t = create_users(&store, Persistence::Logged);
        let mut out = Vec::new();
        let mut tx = store.begin();
        out.push(tx.insert(t, user(0, "a", 1)).unwrap()[0].clone());
        out.push(tx.insert(t, user(10, "b", 1)).unwrap()[0].clone());
        out.push(tx.insert(t, user(0, "c", 1)).unwrap()[0].clone());
        tx.delete(t, &Value::U64(11)).unwrap();
        let _ = tx.commit(meta(1)).unwrap();
        let mut tx = store.begin();
        out.push(tx.insert(t, user(0, "d", 1)).unwrap()[0].clone());
        out
    };
    let a = run();
    assert_eq!(a, [1u64, 10, 11, 12].map(Value::U64));
    assert_eq!(a, run());
}

#[test]
fn auto_inc_overflow_is_an_error() {
    let store = Store::in_memory();
    let schema = TableSchema::builder("small")
        .auto_inc_column("id", Type::U8)
        .primary_key("id")
        .build()
        .unwrap();
    let t = store.create_table("app", schema, registry()).unwrap();
    let mut tx = store.begin();
    tx.insert(t, vec![Value::U8(255)]).unwrap();
    let err = tx.insert(t, vec![Value::U8(0)]).unwrap_err();
    assert!(matches!(err, StoreError::AutoIncOverflow { ref column, .. } if column == "id"));
    assert!(err.to_string().contains("small.id"), "{err}");
}

/// An `auto_inc` column is filled in whether the row handed over is the caller's only copy
/// (changed in place) or shared (copied): the caller's copy never changes.
#[test]
fn auto_inc_fills_a_shared_row_without_changing_the_callers_copy() {
    let store = Store::in_memory();
    let schema = TableSchema::builder("ids")
        .auto_inc_column("id", Type::U64)
        .column("name", Type::String)
        .primary_key("id")
        .build()
        .unwrap();
    let t = store.create_table("app", schema, registry()).unwrap();
    let mut tx = store.begin();
    let mine: Row = Arc::from(vec![Value::U64(0), Value::String("shared".into())]);
    let stored = tx.insert(t, mine.clone()).unwrap();
    assert_eq!(
        &stored[..],
        &[Value::U64(1), Value::String("shared".into())]
    );
    assert_eq!(mine[0], Value::U64(0), "the caller's row is not changed");
    let stored = tx
        .insert(t, vec![Value::U64(0), Value::String("own".into())])
        .unwrap();
    assert_eq!(&stored[..], &[Value::U64(2), Value::String("own".into())]);
}

/// `decode_row` gives what `decode_fields` gives, and a failed decode leaves nothing behind
/// for the next one on the same thread.
#[test]
fn decode_row_matches_decode_fields_after_a_failure() {
    let types = [Type::U64, Type::String];
    let reg = registry();
    let good = interstice_abi::encode(&Value::U64(7));
    let mut bytes = good.clone();
    bytes.extend(interstice_abi::encode(&Value::String("seven".into())));
    // The first field decodes, the second is cut short.
    let err = decode_row(&bytes[..bytes.len() - 2], &types, &reg);
    assert!(err.is_err());
    let row = decode_row(&bytes, &types, &reg).unwrap();
    assert_eq!(
        &row[..],
        &interstice_abi::decode_fields(&bytes, &types, &reg).unwrap()[..]
    );
    assert_eq!(row.len(), 2);
}

#[test]
fn user_types_round_trip_through_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Arc::new(
        TypeRegistry::new([
            TypeDef::Struct {
                name: "Point".into(),
                fields: vec![Field::new("x", Type::I32), Field::new("y", Type::I32)],
            },
            TypeDef::Enum {
                name: "Kind".into(),
                variants: vec![
                    Variant {
                        name: "A".into(),
                        fields: vec![],
                    },
                    Variant {
                        name: "B".into(),
                        fields: vec![Field::new("0", Type::String)],
                    },
                ],
            },
        ])
        .unwrap(),
    );
    let schema = TableSchema::builder("shapes")
        .column("id", Type::I64)
        .column("at", Type::Named("Point".into()))
        .column("kind", Type::Option(Box::new(Type::Named("Kind".into()))))
        .primary_key("id")
        .index("at", IndexKind::BTree, true)
        .build_with(&reg)
        .unwrap();
    let row = vec![
        Value::I64(-3),
        Value::Struct(vec![Value::I32(1), Value::I32(2)]),
        Value::Option(Some(Box::new(Value::Enum {
            variant: 1,
            fields: vec![Value::from("hi")],
        }))),
    ];
    {
        let (store, _) = open(dir.path());
        let t = store
            .create_table("geo", schema.clone(), reg.clone())
            .unwrap();
        let mut tx = store.begin();
        tx.insert(t, row.clone()).unwrap();
        let _ = tx.commit(meta(1)).unwrap();
    }
    let (store, report) = open(dir.path());
    assert_eq!(report.records_replayed, 2);
    // Recreating with the same schema returns the recovered table.
    let t = store.create_table("geo", schema, reg).unwrap();
    assert_eq!(rows(&store, t), vec![row]);
}

#[test]
fn schema_changes_are_refused_and_ids_are_stable() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b);
    {
        let (store, _) = open(dir.path());
        a = create_users(&store, Persistence::Logged);
        let eph = store
            .create_table("tmp", users(Persistence::Ephemeral), registry())
            .unwrap();
        b = store
            .create_table("other", users(Persistence::Stateful), registry())
            .unwrap();
        assert!(eph != a && eph != b);
        store.drop_table(b).unwrap();
        assert!(matches!(
            store.begin().get(b, &Value::U64(1)),
            Err(StoreError::NoSuchTable(_))
        ));
    }
    let (store, _) = open(dir.path());
    assert_eq!(create_users(&store, Persistence::Logged), a);
    let err = store
        .create_table("app", users(Persistence::Stateful), registry())
        .unwrap_err();
    assert!(matches!(err, StoreError::SchemaMismatch { ref table, .. } if table == "app.users"));
    assert_eq!(store.table_id("other.users"), None);
    let again = store
        .create_table("other", users(Persistence::Stateful), registry())
        .unwrap();
    assert!(again.0 > b.0, "ids are never reused");
}

#[test]
fn a_second_open_of_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, _) = open(dir.path());
    let err = Store::open(dir.path(), config()).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("in use"), "{err}");
}

#[test]
fn dropping_an_applied_transaction_poisons_the_store() {
    let store = Store::in_memory();
    let t = create_users(&store, Persistence::Logged);
    let mut tx = store.begin();
    tx.insert(t, user(0, "a", 1)).unwrap();
    drop(tx.apply().unwrap());
    let mut tx = store.begin();
    tx.insert(t, user(0, "b", 1)).unwrap();
    assert!(matches!(tx.apply(), Err(StoreError::Poisoned { .. })));
}
