//! Table schemas.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::{Type, TypeError, TypeRegistry};

/// How a table survives a restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Persistence {
    /// Every committed mutation is in the commit log; the full history can be replayed.
    #[default]
    Logged,
    /// Only the latest state is kept: the log holds mutations until a snapshot covers them,
    /// then they are dropped.
    Stateful,
    /// Memory only: never written to disk, empty after a restart.
    Ephemeral,
}

/// Whether other nodes may see a table, reducer or module.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Visibility {
    #[default]
    Private,
    Public,
}

/// The data structure behind a secondary index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IndexKind {
    /// Point lookups.
    Hash,
    /// Point lookups and ordered range scans.
    BTree,
}

/// One column of a table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub ty: Type,
    /// Inserting `0` in this column stores the next value of the table's counter instead.
    pub auto_inc: bool,
}

/// A secondary index over one column.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IndexSchema {
    pub column: String,
    pub kind: IndexKind,
    pub unique: bool,
}

/// The schema of one table: what `#[table]` describes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableSchema {
    /// The table's name: the struct name in lowercase unless overridden.
    pub name: String,
    pub columns: Vec<Column>,
    /// The name of the primary-key column.
    pub primary_key: String,
    pub indexes: Vec<IndexSchema>,
    pub persistence: Persistence,
    pub visibility: Visibility,
}

impl TableSchema {
    /// Starts a schema for a table named `name`.
    pub fn builder(name: impl Into<String>) -> TableSchemaBuilder {
        TableSchemaBuilder {
            schema: TableSchema {
                name: name.into(),
                columns: Vec::new(),
                primary_key: String::new(),
                indexes: Vec::new(),
                persistence: Persistence::default(),
                visibility: Visibility::default(),
            },
        }
    }

    /// The position of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The position of the primary-key column. Only valid on a validated schema.
    pub fn primary_key_index(&self) -> Option<usize> {
        self.column_index(&self.primary_key)
    }

    /// The row type as a struct type, for encoding and decoding whole rows.
    pub fn row_fields(&self) -> impl Iterator<Item = &Type> {
        self.columns.iter().map(|c| &c.ty)
    }

    /// Checks the schema is well formed: names, primary key, indexes, `auto_inc` types, and that
    /// every named type is defined in `registry`.
    pub fn validate(&self, registry: &TypeRegistry) -> Result<(), SchemaError> {
        let table = || self.name.clone();
        check_identifier(&self.name).map_err(|reason| SchemaError::BadName {
            name: self.name.clone(),
            reason,
        })?;
        if self.columns.is_empty() {
            return Err(SchemaError::NoColumns { table: table() });
        }
        let mut seen = HashSet::new();
        for column in &self.columns {
            check_identifier(&column.name).map_err(|reason| SchemaError::BadName {
                name: format!("{}.{}", self.name, column.name),
                reason,
            })?;
            if !seen.insert(column.name.as_str()) {
                return Err(SchemaError::DuplicateColumn {
                    table: table(),
                    column: column.name.clone(),
                });
            }
            registry
                .check_defined(&column.ty)
                .map_err(|source| SchemaError::Type {
                    table: table(),
                    column: column.name.clone(),
                    source,
                })?;
            if column.auto_inc && !column.ty.is_integer() {
                return Err(SchemaError::AutoIncNotInteger {
                    table: table(),
                    column: column.name.clone(),
                    ty: column.ty.to_string(),
                });
            }
        }
        if self.primary_key.is_empty() {
            return Err(SchemaError::NoPrimaryKey { table: table() });
        }
        if self.primary_key_index().is_none() {
            return Err(SchemaError::UnknownColumn {
                table: table(),
                column: self.primary_key.clone(),
            });
        }
        let mut indexed = HashSet::new();
        for index in &self.indexes {
            if self.column_index(&index.column).is_none() {
                return Err(SchemaError::UnknownColumn {
                    table: table(),
                    column: index.column.clone(),
                });
            }
            if index.column == self.primary_key || !indexed.insert(index.column.as_str()) {
                return Err(SchemaError::DuplicateIndex {
                    table: table(),
                    column: index.column.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Checks a table, column, reducer or query name: an ASCII identifier of at most 64 characters.
pub(crate) fn check_identifier(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => Err("it is empty"),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
            Err("it must start with a letter or `_`")
        }
        _ if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            Err("it may only contain ASCII letters, digits and `_`")
        }
        _ if name.len() > 64 => Err("it is longer than 64 characters"),
        _ => Ok(()),
    }
}

/// Builds a [`TableSchema`]; mostly for tests and hosts that define tables without the SDK.
#[derive(Clone, Debug)]
pub struct TableSchemaBuilder {
    schema: TableSchema,
}

impl TableSchemaBuilder {
    /// Adds a column.
    pub fn column(mut self, name: impl Into<String>, ty: Type) -> Self {
        self.schema.columns.push(Column {
            name: name.into(),
            ty,
            auto_inc: false,
        });
        self
    }

    /// Adds a column whose value is generated when `0` is inserted.
    pub fn auto_inc_column(mut self, name: impl Into<String>, ty: Type) -> Self {
        self.schema.columns.push(Column {
            name: name.into(),
            ty,
            auto_inc: true,
        });
        self
    }

    /// Names the primary-key column. Required.
    pub fn primary_key(mut self, column: impl Into<String>) -> Self {
        self.schema.primary_key = column.into();
        self
    }

    /// Adds a secondary index.
    pub fn index(mut self, column: impl Into<String>, kind: IndexKind, unique: bool) -> Self {
        self.schema.indexes.push(IndexSchema {
            column: column.into(),
            kind,
            unique,
        });
        self
    }

    /// By default, [`Persistence::Logged`].
    pub fn persistence(mut self, persistence: Persistence) -> Self {
        self.schema.persistence = persistence;
        self
    }

    /// By default, [`Visibility::Private`].
    pub fn visibility(mut self, visibility: Visibility) -> Self {
        self.schema.visibility = visibility;
        self
    }

    /// Validates against `registry` and returns the schema.
    pub fn build_with(self, registry: &TypeRegistry) -> Result<TableSchema, SchemaError> {
        self.schema.validate(registry)?;
        Ok(self.schema)
    }

    /// Validates (for tables whose columns use no user types) and returns the schema.
    pub fn build(self) -> Result<TableSchema, SchemaError> {
        self.build_with(&TypeRegistry::default())
    }
}

/// A schema that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    #[error("`{name}` is not a valid name: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("table `{table}` has no columns")]
    NoColumns { table: String },
    #[error("table `{table}` has two columns named `{column}`")]
    DuplicateColumn { table: String, column: String },
    #[error("table `{table}` has no primary key; mark one column with #[primary_key]")]
    NoPrimaryKey { table: String },
    #[error("table `{table}` has no column `{column}`")]
    UnknownColumn { table: String, column: String },
    #[error(
        "table `{table}` indexes column `{column}` twice (the primary key is already a unique index)"
    )]
    DuplicateIndex { table: String, column: String },
    #[error(
        "`auto_inc` on `{table}.{column}` needs an integer column (u8, u16, u32, u64, i8, i16, i32, i64), not {ty}"
    )]
    AutoIncNotInteger {
        table: String,
        column: String,
        ty: String,
    },
    #[error("column `{table}.{column}`: {source}")]
    Type {
        table: String,
        column: String,
        source: TypeError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> TableSchemaBuilder {
        TableSchema::builder("users")
            .auto_inc_column("id", Type::U64)
            .column("email", Type::String)
            .column("created_at", Type::I64)
            .primary_key("id")
            .index("email", IndexKind::Hash, true)
            .index("created_at", IndexKind::BTree, false)
    }

    #[test]
    fn a_well_formed_schema_builds() {
        let schema = users().build().unwrap();
        assert_eq!(schema.primary_key_index(), Some(0));
        assert_eq!(schema.column_index("created_at"), Some(2));
        assert_eq!(schema.persistence, Persistence::Logged);
    }

    #[test]
    fn each_mistake_is_named() {
        let err = |b: TableSchemaBuilder| b.build().unwrap_err();
        assert!(matches!(
            err(TableSchema::builder("t").column("a", Type::U8)),
            SchemaError::NoPrimaryKey { .. }
        ));
        assert!(matches!(
            err(users().primary_key("nope")),
            SchemaError::UnknownColumn { .. }
        ));
        assert!(matches!(
            err(users().column("email", Type::U8)),
            SchemaError::DuplicateColumn { .. }
        ));
        assert!(matches!(
            err(users().index("id", IndexKind::Hash, false)),
            SchemaError::DuplicateIndex { .. }
        ));
        assert!(matches!(
            err(users().auto_inc_column("name", Type::String)),
            SchemaError::AutoIncNotInteger { .. }
        ));
        assert!(matches!(
            err(users().column("pos", Type::Named("Point".into()))),
            SchemaError::Type { .. }
        ));
        assert!(matches!(
            err(TableSchema::builder("bad name")
                .column("a", Type::U8)
                .primary_key("a")),
            SchemaError::BadName { .. }
        ));
        let message = err(users().auto_inc_column("name", Type::String)).to_string();
        assert!(message.contains("users.name"), "{message}");
    }
}
