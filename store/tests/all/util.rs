//! Shared helpers.

use std::path::Path;
use std::sync::Arc;

use interstice_abi::{IndexKind, Persistence, TableSchema, Type, TypeRegistry, Value};
use interstice_store::{
    CommitMeta, Durability, Readable, RecoveryReport, Row, Store, StoreConfig, TableId,
};

/// `users(id u64 auto_inc pk, email String unique hash, age u32 btree)`.
pub fn users(persistence: Persistence) -> TableSchema {
    TableSchema::builder("users")
        .auto_inc_column("id", Type::U64)
        .column("email", Type::String)
        .column("age", Type::U32)
        .primary_key("id")
        .index("email", IndexKind::Hash, true)
        .index("age", IndexKind::BTree, false)
        .persistence(persistence)
        .build()
        .unwrap()
}

pub fn user(id: u64, email: &str, age: u32) -> Vec<Value> {
    vec![Value::U64(id), Value::from(email), Value::U32(age)]
}

pub fn registry() -> Arc<TypeRegistry> {
    Arc::new(TypeRegistry::default())
}

/// Durability off and no automatic snapshots: tests decide when things happen.
pub fn config() -> StoreConfig {
    StoreConfig::default()
        .durability(Durability::Off)
        .snapshot_every_bytes(None)
}

pub fn open(dir: &Path) -> (Store, RecoveryReport) {
    Store::open(dir, config()).unwrap()
}

pub fn create_users(store: &Store, persistence: Persistence) -> TableId {
    store
        .create_table("app", users(persistence), registry())
        .unwrap()
}

pub fn meta(seq: u64) -> CommitMeta {
    CommitMeta {
        seq,
        timestamp: seq * 10,
        meta: format!("call {seq}").into_bytes(),
    }
}

/// Every row of a table, in scan order.
pub fn rows(store: &Store, table: TableId) -> Vec<Vec<Value>> {
    let view = store.read();
    view.scan(table).unwrap().map(|r| r.to_vec()).collect()
}

pub fn to_vecs(rows: &[Row]) -> Vec<Vec<Value>> {
    rows.iter().map(|r| r.to_vec()).collect()
}
