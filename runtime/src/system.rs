//! Every table the host owns, defined once: its schema and a typed row with its conversions.
//!
//! The node keeps its own state in tables so that it is logged, recovered and atomic with the
//! reducers that change it: `__node.*` for the node, and three per module (`<module>.__timers`,
//! `__outbox`, `__delivered`), plus `__files` for the module holding the File authority. Modules never see them: names starting with `__` are refused to
//! modules.
//!
//! Architecture Invariant: host tables are read and written only through the typed rows of
//! this file. A row whose arity or column types do not match its schema is an error
//! ([`SystemTableError`]), never a default value, so a reordered or retyped column cannot
//! corrupt reads silently.

use interstice_abi::{IndexKind, Persistence, SchemaError, TableSchema, Type, TypeRegistry, Value};
use interstice_store::{ReadView, Readable, Store, StoreError, TableId, Transaction};
use std::sync::Arc;

/// The namespace of the node's own tables, which no module can name.
pub(crate) const NODE: &str = "__node";

/// A row of a host table that does not match the table's schema: the data directory was
/// written by an incompatible version, or is corrupt.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the node's table `{table}` holds a row that does not match its schema ({problem}); the data directory was written by an incompatible version of interstice, or is corrupt"
)]
pub struct SystemTableError {
    pub table: &'static str,
    pub problem: String,
}

/// A Rust type that a host-table column holds.
pub(crate) trait Column: Sized {
    const TYPE: Type;
    fn into_value(self) -> Value;
    fn from_value(value: &Value) -> Option<Self>;
}

macro_rules! column {
    ($rust:ty, $ty:expr, $variant:ident, |$v:ident| $from:expr) => {
        impl Column for $rust {
            const TYPE: Type = $ty;
            fn into_value(self) -> Value {
                Value::$variant(self)
            }
            fn from_value(value: &Value) -> Option<Self> {
                match value {
                    Value::$variant($v) => Some($from),
                    _ => None,
                }
            }
        }
    };
}

column!(u64, Type::U64, U64, |v| *v);
column!(i64, Type::I64, I64, |v| *v);
column!(bool, Type::Bool, Bool, |v| *v);
column!(String, Type::String, String, |v| v.clone());
column!(Vec<u8>, Type::Bytes, Bytes, |v| v.clone());

/// A typed row of a host table.
pub(crate) trait HostRow: Sized {
    /// The table's name within its namespace (`__node`, or the module's).
    const TABLE: &'static str;
    fn schema() -> Result<TableSchema, SchemaError>;
    fn into_values(self) -> Vec<Value>;
    fn from_values(row: &[Value]) -> Result<Self, SystemTableError>;
}

/// Declares a host table: the struct of its row, and its schema built from the same field
/// list, so the two cannot drift apart. `auto_inc` and `index` name columns of the list.
macro_rules! host_table {
    (
        $(#[$meta:meta])*
        $row:ident in $table:literal {
            $( $(#[$fmeta:meta])* $field:ident: $ty:ty ),+ $(,)?
        }
        key: $pk:ident
        $(, auto_inc: $auto:ident)?
        $(, index: $index:ident)?
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub(crate) struct $row {
            $( $(#[$fmeta])* pub $field: $ty, )+
        }

        impl HostRow for $row {
            const TABLE: &'static str = $table;

            fn schema() -> Result<TableSchema, SchemaError> {
                let auto: Option<&str> = None $( .or(Some(stringify!($auto))) )?;
                let mut builder = TableSchema::builder($table);
                $(
                    builder = if auto == Some(stringify!($field)) {
                        builder.auto_inc_column(stringify!($field), <$ty as Column>::TYPE)
                    } else {
                        builder.column(stringify!($field), <$ty as Column>::TYPE)
                    };
                )+
                builder = builder.primary_key(stringify!($pk));
                $( builder = builder.index(stringify!($index), IndexKind::BTree, false); )?
                builder.persistence(Persistence::Logged).build()
            }

            fn into_values(self) -> Vec<Value> {
                vec![ $( Column::into_value(self.$field) ),+ ]
            }

            fn from_values(row: &[Value]) -> Result<Self, SystemTableError> {
                let names = [ $( stringify!($field) ),+ ];
                // Checked first so the message gives the whole shape, not the first gap.
                if row.len() != names.len() {
                    return Err(SystemTableError {
                        table: $table,
                        problem: format!("{} columns, expected {}", row.len(), names.len()),
                    });
                }
                let mut columns = row.iter();
                Ok($row {
                    $( $field: {
                        let value = columns.next().ok_or_else(|| SystemTableError {
                            table: $table,
                            problem: format!("no column `{}`", stringify!($field)),
                        })?;
                        <$ty as Column>::from_value(value).ok_or_else(|| SystemTableError {
                            table: $table,
                            problem: format!(
                                "column `{}` holds {value:?}, expected {}",
                                stringify!($field),
                                <$ty as Column>::TYPE
                            ),
                        })?
                    }, )+
                })
            }
        }
    };
}

host_table! {
    /// `__node.modules`: the installed modules, in install order. Their wasm is in
    /// `<data dir>/modules/<name>.wasm`.
    InstalledModule in "modules" {
        name: String,
        installed_at: u64,
    }
    key: name
}

host_table! {
    /// `__node.triggers`: subscription triggers of durable commits that have not run yet,
    /// written in the record of the commit that emitted them and deleted in the record of
    /// their own outcome, so a crash between the two loses none.
    KeptTrigger in "triggers" {
        id: u64,
        module: String,
        reducer: String,
        args: Vec<u8>,
        /// The logical time of the commit that emitted it.
        time: i64,
    }
    key: id, auto_inc: id
}

host_table! {
    /// `__node.feeds`: the tables whose changes are kept for remote subscribers across a
    /// restart.
    FedTable in "feeds" {
        /// `module.table`.
        table: String,
        /// The sequence number from which its changes are kept.
        since: u64,
        /// Whether older changes were dropped to stay within the history.
        trimmed: bool,
    }
    key: table
}

host_table! {
    /// `__node.feed`: the kept changes of the tables in `__node.feeds`.
    FedChange in "feed" {
        id: u64,
        table: String,
        seq: u64,
        part: u64,
        /// `feed::kind_code` of the change.
        kind: u64,
        /// The change, encoded as its subscribers get it.
        rows: Vec<u8>,
    }
    key: id, auto_inc: id
}

host_table! {
    /// `<module>.__timers`: the module's pending `ctx.schedule` calls, written in the
    /// transaction of the reducer that set them and deleted in the one they fire.
    Timer in "__timers" {
        id: u64,
        /// Logical time, microseconds.
        due: i64,
        reducer: String,
        args: Vec<u8>,
    }
    key: id, auto_inc: id, index: due
}

host_table! {
    /// `<module>.__outbox`: remote calls the module committed that their node has not
    /// acknowledged yet; the id is what the receiving node deduplicates on.
    OutboxCall in "__outbox" {
        id: u64,
        /// The node's name in the module's bindings.
        node: String,
        module: String,
        reducer: String,
        args: Vec<u8>,
    }
    key: id, auto_inc: id
}

host_table! {
    /// `<module>.__delivered`: per origin (another node's module, or a remote subscription),
    /// the position of the last input the module committed from it.
    Delivered in "__delivered" {
        origin: String,
        last: u64,
        part: u64,
    }
    key: origin
}

host_table! {
    /// `<module>.__files`, for the module holding the File authority: it never holds a row.
    /// Every reducer of the module writes it in the scheduler's eyes and every query reads it
    /// (`core/index.rs`), so invocations that may touch files are ordered like those that
    /// touch one table, and each sees the file changes of those before it.
    FileAccess in "__files" {
        path: String,
    }
    key: path
}

impl Delivered {
    /// The position this row records.
    pub fn position(&self) -> (u64, u64) {
        (self.last, self.part)
    }
}

/// The ids of the `__node` tables.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NodeTables {
    pub modules: TableId,
    pub triggers: TableId,
    pub feeds: TableId,
    pub feed: TableId,
}

impl NodeTables {
    /// Creates the node's tables (or finds them, when the store recovered them).
    pub fn create(store: &Store) -> Result<NodeTables, StoreError> {
        Ok(NodeTables {
            modules: create::<InstalledModule>(store, NODE)?,
            triggers: create::<KeptTrigger>(store, NODE)?,
            feeds: create::<FedTable>(store, NODE)?,
            feed: create::<FedChange>(store, NODE)?,
        })
    }
}

/// Creates the host tables every module has.
pub(crate) fn create_module_tables(store: &Store, module: &str) -> Result<(), StoreError> {
    create::<Timer>(store, module)?;
    create::<OutboxCall>(store, module)?;
    create::<Delivered>(store, module)?;
    Ok(())
}

/// Creates `<module>.__files`, for a module holding the File authority.
pub(crate) fn create_file_table(store: &Store, module: &str) -> Result<TableId, StoreError> {
    create::<FileAccess>(store, module)
}

/// The names of the host tables a module may have.
pub(crate) const MODULE_TABLES: [&str; 4] = [
    Timer::TABLE,
    OutboxCall::TABLE,
    Delivered::TABLE,
    FileAccess::TABLE,
];

fn create<R: HostRow>(store: &Store, owner: &str) -> Result<TableId, StoreError> {
    let schema = R::schema().map_err(StoreError::from)?;
    store.create_table(owner, schema, Arc::new(TypeRegistry::default()))
}

/// Every row of host table `table`, in primary-key order.
pub(crate) fn scan<R: HostRow>(view: &ReadView<'_>, table: TableId) -> Result<Vec<R>, SystemError> {
    view.scan(table)?
        .map(|row| R::from_values(&row).map_err(SystemError::from))
        .collect()
}

/// The row with primary key `key`, as `reader` sees it: a view of the committed state, or a
/// transaction (which sees its own writes).
pub(crate) fn get<R: HostRow>(
    reader: &impl Readable,
    table: TableId,
    key: Value,
) -> Result<Option<R>, SystemError> {
    reader
        .get(table, &key)?
        .map(|row| R::from_values(&row).map_err(SystemError::from))
        .transpose()
}

/// Inserts `row` in `tx`; returns it as stored (with its generated id).
pub(crate) fn insert<R: HostRow>(
    tx: &mut Transaction,
    table: TableId,
    row: R,
) -> Result<R, SystemError> {
    let stored = tx.insert(table, row.into_values())?;
    Ok(R::from_values(&stored)?)
}

/// Replaces the row with `row`'s key in `tx`.
pub(crate) fn update<R: HostRow>(
    tx: &mut Transaction,
    table: TableId,
    row: R,
) -> Result<(), SystemError> {
    tx.update(table, row.into_values())?;
    Ok(())
}

/// Why reading or writing a host table failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SystemError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Row(#[from] SystemTableError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_values() {
        let timer = Timer {
            id: 3,
            due: -5,
            reducer: "tick".into(),
            args: vec![1, 2],
        };
        assert_eq!(Timer::from_values(&timer.clone().into_values()), Ok(timer));
    }

    #[test]
    fn schemas_follow_the_field_list() {
        let schema = Timer::schema().unwrap();
        let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "due", "reducer", "args"]);
        assert_eq!(schema.primary_key, "id");
        assert!(schema.columns[0].auto_inc);
        assert!(!schema.columns[1].auto_inc);
        assert_eq!(schema.indexes.len(), 1);
        assert_eq!(schema.indexes[0].column, "due");
        assert_eq!(Delivered::schema().unwrap().primary_key, "origin");
    }

    #[test]
    fn a_mismatched_row_is_an_error_not_a_default() {
        let swapped = vec![
            Value::U64(1),
            Value::String("tick".into()),
            Value::I64(5),
            Value::Bytes(vec![]),
        ];
        let err = Timer::from_values(&swapped).unwrap_err();
        assert_eq!(err.table, "__timers");
        assert!(err.problem.contains("`due`"), "{}", err.problem);
        let short = vec![Value::U64(1)];
        let err = Timer::from_values(&short).unwrap_err();
        assert!(
            err.problem.contains("1 columns, expected 4"),
            "{}",
            err.problem
        );
    }
}
