//! The type model shared by tables, reducer arguments and query results.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Value;

/// The type of a column, argument or field.
///
/// User structs and enums are referred to by name ([`Type::Named`]) and defined once in a
/// [`TypeRegistry`]; recursion through `Vec` and `Option` is allowed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Type {
    Bool,
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F32,
    F64,
    String,
    Bytes,
    List(Box<Type>),
    Option(Box<Type>),
    Named(String),
}

impl Type {
    /// Whether `auto_inc` may be used on a column of this type.
    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            Type::U8
                | Type::U16
                | Type::U32
                | Type::U64
                | Type::I8
                | Type::I16
                | Type::I32
                | Type::I64
        )
    }

    /// Checks that `value` has this type. Named types are looked up in `registry`.
    pub fn check(&self, value: &Value, registry: &TypeRegistry) -> Result<(), TypeError> {
        self.check_at(value, registry, 0)
    }

    fn check_at(
        &self,
        value: &Value,
        registry: &TypeRegistry,
        depth: u32,
    ) -> Result<(), TypeError> {
        if depth > crate::codec::MAX_DEPTH {
            return Err(TypeError::TooDeep);
        }
        let mismatch = || TypeError::Mismatch {
            expected: self.to_string(),
            found: value.kind().to_string(),
        };
        match (self, value) {
            (Type::Bool, Value::Bool(_))
            | (Type::U8, Value::U8(_))
            | (Type::U16, Value::U16(_))
            | (Type::U32, Value::U32(_))
            | (Type::U64, Value::U64(_))
            | (Type::I8, Value::I8(_))
            | (Type::I16, Value::I16(_))
            | (Type::I32, Value::I32(_))
            | (Type::I64, Value::I64(_))
            | (Type::F32, Value::F32(_))
            | (Type::F64, Value::F64(_))
            | (Type::String, Value::String(_))
            | (Type::Bytes, Value::Bytes(_)) => Ok(()),
            (Type::List(inner), Value::List(items)) => items
                .iter()
                .try_for_each(|item| inner.check_at(item, registry, depth + 1)),
            (Type::Option(_), Value::Option(None)) => Ok(()),
            (Type::Option(inner), Value::Option(Some(v))) => inner.check_at(v, registry, depth + 1),
            (Type::Named(name), _) => match registry.get(name)? {
                TypeDef::Struct { fields, .. } => match value {
                    Value::Struct(values) => check_fields(fields, values, registry, depth),
                    _ => Err(mismatch()),
                },
                TypeDef::Enum { variants, .. } => match value {
                    Value::Enum { variant, fields } => {
                        let def = variants.get(*variant as usize).ok_or_else(|| {
                            TypeError::UnknownVariant {
                                ty: name.clone(),
                                index: *variant,
                            }
                        })?;
                        check_fields(&def.fields, fields, registry, depth)
                    }
                    _ => Err(mismatch()),
                },
            },
            _ => Err(mismatch()),
        }
    }
}

fn check_fields(
    fields: &[Field],
    values: &[Value],
    registry: &TypeRegistry,
    depth: u32,
) -> Result<(), TypeError> {
    if fields.len() != values.len() {
        return Err(TypeError::FieldCount {
            expected: fields.len(),
            found: values.len(),
        });
    }
    fields
        .iter()
        .zip(values)
        .try_for_each(|(f, v)| f.ty.check_at(v, registry, depth + 1))
}

impl fmt::Display for Type {
    /// Prints the type as a Rust user would write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::U8 => f.write_str("u8"),
            Type::U16 => f.write_str("u16"),
            Type::U32 => f.write_str("u32"),
            Type::U64 => f.write_str("u64"),
            Type::I8 => f.write_str("i8"),
            Type::I16 => f.write_str("i16"),
            Type::I32 => f.write_str("i32"),
            Type::I64 => f.write_str("i64"),
            Type::F32 => f.write_str("f32"),
            Type::F64 => f.write_str("f64"),
            Type::String => f.write_str("String"),
            Type::Bytes => f.write_str("Vec<u8>"),
            Type::List(inner) => write!(f, "Vec<{inner}>"),
            Type::Option(inner) => write!(f, "Option<{inner}>"),
            Type::Named(name) => f.write_str(name),
        }
    }
}

/// A named field of a struct, of an enum variant, or a column.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    pub ty: Type,
}

impl Field {
    pub fn new(name: impl Into<String>, ty: Type) -> Self {
        Field {
            name: name.into(),
            ty,
        }
    }
}

/// One variant of a user enum. Tuple variants name their fields `0`, `1`, …; unit variants have
/// none.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Variant {
    pub name: String,
    pub fields: Vec<Field>,
}

/// A user-defined type, declared with `#[interstice_type]` (or implicitly by `#[table]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TypeDef {
    Struct {
        name: String,
        fields: Vec<Field>,
    },
    Enum {
        name: String,
        variants: Vec<Variant>,
    },
}

impl TypeDef {
    pub fn name(&self) -> &str {
        match self {
            TypeDef::Struct { name, .. } | TypeDef::Enum { name, .. } => name,
        }
    }
}

/// The user types of one module, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeRegistry {
    defs: HashMap<String, TypeDef>,
}

impl TypeRegistry {
    /// Builds a registry and checks that every name it refers to is defined exactly once.
    pub fn new(defs: impl IntoIterator<Item = TypeDef>) -> Result<Self, TypeError> {
        let mut registry = TypeRegistry::default();
        for def in defs {
            let name = def.name().to_owned();
            if registry.defs.insert(name.clone(), def).is_some() {
                return Err(TypeError::Duplicate(name));
            }
        }
        for def in registry.defs.values() {
            let fields: Vec<&Field> = match def {
                TypeDef::Struct { fields, .. } => fields.iter().collect(),
                TypeDef::Enum { variants, .. } => {
                    variants.iter().flat_map(|v| v.fields.iter()).collect()
                }
            };
            for field in fields {
                registry.check_defined(&field.ty)?;
            }
        }
        Ok(registry)
    }

    pub fn get(&self, name: &str) -> Result<&TypeDef, TypeError> {
        self.defs
            .get(name)
            .ok_or_else(|| TypeError::Unknown(name.to_owned()))
    }

    pub fn iter(&self) -> impl Iterator<Item = &TypeDef> {
        self.defs.values()
    }

    /// Fails when `ty` refers to a name this registry does not define.
    pub fn check_defined(&self, ty: &Type) -> Result<(), TypeError> {
        match ty {
            Type::List(inner) | Type::Option(inner) => self.check_defined(inner),
            Type::Named(name) => self.get(name).map(|_| ()),
            _ => Ok(()),
        }
    }
}

/// A value does not fit a type, or a type refers to something undefined.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TypeError {
    #[error("expected a value of type {expected}, found {found}")]
    Mismatch { expected: String, found: String },
    #[error("expected {expected} fields, found {found}")]
    FieldCount { expected: usize, found: usize },
    #[error("type `{0}` is not defined; mark it with #[interstice_type]")]
    Unknown(String),
    #[error("type `{0}` is defined twice")]
    Duplicate(String),
    #[error("enum `{ty}` has no variant number {index}")]
    UnknownVariant { ty: String, index: u32 },
    #[error("value nests deeper than {} levels", crate::codec::MAX_DEPTH)]
    TooDeep,
}
