//! Dynamically typed values with a total order.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

/// A value of some [`Type`](crate::Type).
///
/// Equality, order and hash are total and agree with each other: floats compare with
/// `total_cmp` and hash by their bits, so `NaN == NaN` (same bits) and `-0.0 != 0.0`. That is what
/// makes any column usable as an index key, and it keeps index order deterministic.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Value {
    Bool(bool),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    String(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Option(Option<Box<Value>>),
    /// A user struct: its fields in declaration order.
    Struct(Vec<Value>),
    /// A user enum: the variant's index in declaration order and its fields.
    Enum {
        variant: u32,
        fields: Vec<Value>,
    },
}

impl Value {
    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool",
            Value::U8(_) => "u8",
            Value::U16(_) => "u16",
            Value::U32(_) => "u32",
            Value::U64(_) => "u64",
            Value::I8(_) => "i8",
            Value::I16(_) => "i16",
            Value::I32(_) => "i32",
            Value::I64(_) => "i64",
            Value::F32(_) => "f32",
            Value::F64(_) => "f64",
            Value::String(_) => "String",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Option(_) => "option",
            Value::Struct(_) => "struct",
            Value::Enum { .. } => "enum",
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Bool(_) => 0,
            Value::U8(_) => 1,
            Value::U16(_) => 2,
            Value::U32(_) => 3,
            Value::U64(_) => 4,
            Value::I8(_) => 5,
            Value::I16(_) => 6,
            Value::I32(_) => 7,
            Value::I64(_) => 8,
            Value::F32(_) => 9,
            Value::F64(_) => 10,
            Value::String(_) => 11,
            Value::Bytes(_) => 12,
            Value::List(_) => 13,
            Value::Option(_) => 14,
            Value::Struct(_) => 15,
            Value::Enum { .. } => 16,
        }
    }

    /// The value of an integer, widened, for `auto_inc` arithmetic. `None` for other kinds.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::U64(v) => v.into(),
            Value::I8(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// An integer of the same kind as `self` holding `n`, or `None` when `n` does not fit.
    pub fn with_integer(&self, n: i128) -> Option<Value> {
        Some(match self {
            Value::U8(_) => Value::U8(n.try_into().ok()?),
            Value::U16(_) => Value::U16(n.try_into().ok()?),
            Value::U32(_) => Value::U32(n.try_into().ok()?),
            Value::U64(_) => Value::U64(n.try_into().ok()?),
            Value::I8(_) => Value::I8(n.try_into().ok()?),
            Value::I16(_) => Value::I16(n.try_into().ok()?),
            Value::I32(_) => Value::I32(n.try_into().ok()?),
            Value::I64(_) => Value::I64(n.try_into().ok()?),
            _ => return None,
        })
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        use Value::*;
        match (self, other) {
            (Bool(a), Bool(b)) => a.cmp(b),
            (U8(a), U8(b)) => a.cmp(b),
            (U16(a), U16(b)) => a.cmp(b),
            (U32(a), U32(b)) => a.cmp(b),
            (U64(a), U64(b)) => a.cmp(b),
            (I8(a), I8(b)) => a.cmp(b),
            (I16(a), I16(b)) => a.cmp(b),
            (I32(a), I32(b)) => a.cmp(b),
            (I64(a), I64(b)) => a.cmp(b),
            (F32(a), F32(b)) => a.total_cmp(b),
            (F64(a), F64(b)) => a.total_cmp(b),
            (String(a), String(b)) => a.cmp(b),
            (Bytes(a), Bytes(b)) => a.cmp(b),
            (List(a), List(b)) => a.cmp(b),
            (Option(a), Option(b)) => a.cmp(b),
            (Struct(a), Struct(b)) => a.cmp(b),
            (
                Enum {
                    variant: va,
                    fields: fa,
                },
                Enum {
                    variant: vb,
                    fields: fb,
                },
            ) => va.cmp(vb).then_with(|| fa.cmp(fb)),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u8(self.rank());
        match self {
            Value::Bool(v) => v.hash(state),
            Value::U8(v) => v.hash(state),
            Value::U16(v) => v.hash(state),
            Value::U32(v) => v.hash(state),
            Value::U64(v) => v.hash(state),
            Value::I8(v) => v.hash(state),
            Value::I16(v) => v.hash(state),
            Value::I32(v) => v.hash(state),
            Value::I64(v) => v.hash(state),
            Value::F32(v) => v.to_bits().hash(state),
            Value::F64(v) => v.to_bits().hash(state),
            Value::String(v) => v.hash(state),
            Value::Bytes(v) => v.hash(state),
            Value::List(v) | Value::Struct(v) => v.hash(state),
            Value::Option(v) => v.hash(state),
            Value::Enum { variant, fields } => {
                variant.hash(state);
                fields.hash(state);
            }
        }
    }
}

macro_rules! from_primitive {
    ($($t:ty => $variant:ident),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(v)
            }
        })*
    };
}

from_primitive!(
    bool => Bool, u8 => U8, u16 => U16, u32 => U32, u64 => U64,
    i8 => I8, i16 => I16, i32 => I32, i64 => I64, f32 => F32, f64 => F64,
    String => String, Vec<u8> => Bytes,
);

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash(v: &Value) -> u64 {
        let mut h = DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    }

    #[test]
    fn floats_are_totally_ordered_and_hash_consistently() {
        let nan = Value::F64(f64::NAN);
        assert_eq!(nan, nan.clone());
        assert_eq!(hash(&nan), hash(&nan.clone()));
        assert_ne!(Value::F64(0.0), Value::F64(-0.0));
        assert!(Value::F64(-1.0) < Value::F64(2.5));
    }

    #[test]
    fn values_of_different_kinds_never_compare_equal() {
        assert_ne!(Value::U32(1), Value::U64(1));
        assert_ne!(Value::I64(0), Value::Option(None));
    }

    #[test]
    fn integers_widen_and_narrow_with_range_checks() {
        assert_eq!(Value::U8(7).as_i128(), Some(7));
        assert_eq!(Value::U8(0).with_integer(256), None);
        assert_eq!(Value::I32(0).with_integer(-5), Some(Value::I32(-5)));
        assert_eq!(Value::String("x".into()).as_i128(), None);
    }
}
