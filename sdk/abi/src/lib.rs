//! The contract between the Interstice host and its modules.
//!
//! ```
//! use interstice_abi::{decode, encode, Type, TypeRegistry, Value};
//!
//! let ty = Type::List(Box::new(Type::String));
//! let value = Value::List(vec![Value::from("hello"), Value::from("world")]);
//! let bytes = encode(&value);
//! let back = decode(&bytes, &ty, &TypeRegistry::default()).unwrap();
//! assert_eq!(back, value);
//! ```
//!
//! # Core concepts
//!
//! - [`Type`] describes a value: primitives, `String`, bytes, `Vec`, `Option`, and user
//!   structs and enums, referred to by name and defined in a [`TypeRegistry`].
//! - [`Value`] is a dynamically typed value. It has a *total* order and hash (floats compare with
//!   `total_cmp`), so any value can be a key of a hash or btree index.
//! - The wire format ([`encode`], [`decode`]) is positional and schema-driven: no field names,
//!   no type tags. Whoever decodes needs the [`Type`], never the code that wrote the bytes.
//! - [`TableSchema`] describes a table: typed columns, primary key, indexes, `auto_inc`,
//!   persistence.
//! - [`ModuleSchema`] is a module's self-description: types, tables, reducers with their
//!   declared [`Access`] and subscribed [`Event`], queries, [`Authority`]s.
//!
//! Architecture Invariant: this crate knows nothing about wasmtime, tokio or the store. It is the
//! only place that knows the byte layout of values.

#![forbid(unsafe_code)]

mod codec;
mod event;
#[doc(hidden)]
pub mod fuzzing;
pub mod host;
mod module;
pub mod partition;
pub mod platform;
mod schema;
mod typed;
mod types;
mod value;

pub use codec::{
    DecodeError, DecodeLimits, decode, decode_fields, decode_fields_into, decode_with_limits,
    encode, encode_into, encoded_len, varint_len,
};
pub use event::{Authority, Event, ParseError, TableEvent};
pub use module::{
    Access, MANAGER_QUERY, ModuleError, ModuleSchema, NodeBinding, NodeDependency, QuerySchema,
    ReducerSchema, check_module_name, remote_target,
};
pub use schema::{
    Column, IndexKind, IndexSchema, Persistence, SchemaError, TableSchema, TableSchemaBuilder,
    Visibility,
};
pub use typed::{IntersticeType, Reader, TypeDefs, encode_varint, from_bytes, to_bytes};
pub use types::{Field, Type, TypeDef, TypeError, TypeRegistry, Variant};
pub use value::Value;

/// The version of the host ↔ module ABI. A module built for another version is refused at load.
pub const ABI_VERSION: u32 = 2;
