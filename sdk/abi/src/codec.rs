//! The positional, schema-driven binary encoding of values.
//!
//! Layout, byte by byte (all fixed-width numbers little-endian):
//!
//! | type | bytes |
//! |---|---|
//! | `bool` | one byte, `0` or `1` |
//! | `u8`/`i8`, `u16`/`i16`, `u32`/`i32`/`f32`, `u64`/`i64`/`f64` | 1, 2, 4, 8 bytes |
//! | `String`, bytes | length as LEB128 varint, then the bytes (UTF-8 for strings) |
//! | `Vec<T>` | element count as varint, then each element |
//! | `Option<T>` | `0`, or `1` then the value |
//! | struct | each field in declaration order, nothing else |
//! | enum | variant index as varint, then the variant's fields |
//!
//! A row is encoded as the struct of its columns. Encoding is canonical: one value has exactly
//! one encoding (varints must be minimal), so encoded rows can be compared byte for byte.
//!
//! Decoding trusts nothing: lengths are checked against the input before allocating, nesting is
//! bounded, and every tag must be valid.

use crate::{Reader, Type, TypeDef, TypeRegistry, Value};

/// How deep values may nest (lists in options in structs…).
pub(crate) const MAX_DEPTH: u32 = 64;

/// Appends the encoding of `value` to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Bool(v) => out.push(u8::from(*v)),
        Value::U8(v) => out.push(*v),
        Value::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::String(s) => {
            write_varint(s.len() as u64, out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            write_varint(b.len() as u64, out);
            out.extend_from_slice(b);
        }
        Value::List(items) => {
            write_varint(items.len() as u64, out);
            items.iter().for_each(|v| encode_into(v, out));
        }
        Value::Option(None) => out.push(0),
        Value::Option(Some(v)) => {
            out.push(1);
            encode_into(v, out);
        }
        Value::Struct(fields) => fields.iter().for_each(|v| encode_into(v, out)),
        Value::Enum { variant, fields } => {
            write_varint(u64::from(*variant), out);
            fields.iter().for_each(|v| encode_into(v, out));
        }
    }
}

/// The encoding of `value`.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(value));
    encode_into(value, &mut out);
    out
}

/// How many bytes [`encode_into`] appends for `value`, without encoding it: callers reserve
/// that much first, so that encoding a row copies its bytes once instead of growing the
/// buffer as it goes (rows the host hands to modules, log records).
#[inline]
pub fn encoded_len(value: &Value) -> usize {
    // Inline for the scalars and byte strings that make up most rows; the nested values,
    // which recurse, out of line.
    match value {
        Value::Bool(_) | Value::U8(_) | Value::I8(_) | Value::Option(None) => 1,
        Value::U16(_) | Value::I16(_) => 2,
        Value::U32(_) | Value::I32(_) | Value::F32(_) => 4,
        Value::U64(_) | Value::I64(_) | Value::F64(_) => 8,
        Value::String(s) => varint_len(s.len() as u64) + s.len(),
        Value::Bytes(b) => varint_len(b.len() as u64) + b.len(),
        _ => nested_encoded_len(value),
    }
}

#[inline(never)]
fn nested_encoded_len(value: &Value) -> usize {
    match value {
        Value::List(items) => {
            varint_len(items.len() as u64) + items.iter().map(encoded_len).sum::<usize>()
        }
        Value::Option(Some(v)) => 1 + encoded_len(v),
        Value::Struct(fields) => fields.iter().map(encoded_len).sum(),
        Value::Enum { variant, fields } => {
            varint_len(u64::from(*variant)) + fields.iter().map(encoded_len).sum::<usize>()
        }
        scalar => encoded_len(scalar),
    }
}

/// The bytes of `n` as a LEB128 varint: one per started group of seven bits.
#[inline]
pub fn varint_len(n: u64) -> usize {
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

/// Decodes exactly one value of type `ty` from `bytes`, with [`DecodeLimits::default`].
pub fn decode(bytes: &[u8], ty: &Type, registry: &TypeRegistry) -> Result<Value, DecodeError> {
    decode_with_limits(bytes, ty, registry, DecodeLimits::default())
}

/// Decodes exactly one value of type `ty` from `bytes`; trailing bytes are an error.
pub fn decode_with_limits(
    bytes: &[u8],
    ty: &Type,
    registry: &TypeRegistry,
    limits: DecodeLimits,
) -> Result<Value, DecodeError> {
    let mut decoder = Decoder::new(bytes, registry, limits);
    let value = decoder.value(ty, 0)?;
    decoder.finish()?;
    Ok(value)
}

/// Decodes the concatenated encodings of values of `types`, e.g. a function's arguments.
pub fn decode_fields<'t>(
    bytes: &[u8],
    types: impl IntoIterator<Item = &'t Type>,
    registry: &TypeRegistry,
) -> Result<Vec<Value>, DecodeError> {
    let types = types.into_iter();
    let mut values = Vec::with_capacity(types.size_hint().0);
    decode_fields_into(bytes, types, registry, &mut values)?;
    Ok(values)
}

/// [`decode_fields`], appending the values to `out`: a caller that decodes many rows can reuse
/// one buffer. On error, `out` may hold the fields decoded before it.
pub fn decode_fields_into<'t>(
    bytes: &[u8],
    types: impl IntoIterator<Item = &'t Type>,
    registry: &TypeRegistry,
    out: &mut Vec<Value>,
) -> Result<(), DecodeError> {
    let mut decoder = Decoder::new(bytes, registry, DecodeLimits::default());
    for ty in types {
        out.push(decoder.value(ty, 0)?);
    }
    decoder.finish()
}

/// Bounds on what one decode may build, so hostile input cannot exhaust memory.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// The most list elements, strings and byte strings one decode may produce.
    /// By default, 1 M (2^20).
    pub max_elements: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_elements: 1 << 20,
        }
    }
}

/// Bytes that are not a valid encoding of the expected type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("input ends early: needed {needed} more bytes at offset {offset}")]
    UnexpectedEnd { offset: usize, needed: usize },
    #[error("{count} unexpected bytes after the value")]
    TrailingBytes { count: usize },
    #[error("invalid {what} tag {tag} at offset {offset}")]
    InvalidTag {
        what: &'static str,
        tag: u64,
        offset: usize,
    },
    #[error("malformed varint at offset {offset}")]
    BadVarint { offset: usize },
    #[error("string at offset {offset} is not valid UTF-8")]
    BadUtf8 { offset: usize },
    #[error("value nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("value has more elements than the limit of {limit}")]
    TooManyElements { limit: u64 },
    #[error("type `{0}` is not defined")]
    UnknownType(String),
}

/// Reads values of a dynamic [`Type`] one after another from untrusted bytes. The byte-level
/// checks (lengths, minimal varints, flags) are [`Reader`]'s, shared with the typed decoder.
pub(crate) struct Decoder<'a> {
    bytes: Reader<'a>,
    registry: &'a TypeRegistry,
    elements_left: u64,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(input: &'a [u8], registry: &'a TypeRegistry, limits: DecodeLimits) -> Self {
        Decoder {
            bytes: Reader::new(input),
            registry,
            elements_left: limits.max_elements,
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.bytes.pos()
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        self.bytes.finish()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.bytes.take(n)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.bytes.array()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        self.bytes.varint()
    }

    fn flag(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        self.bytes.flag(what)
    }

    fn count(&mut self, min_element_size: usize) -> Result<usize, DecodeError> {
        let offset = self.pos();
        let n = self.varint()?;
        if n > self.elements_left {
            return Err(DecodeError::TooManyElements {
                limit: self.elements_left,
            });
        }
        self.elements_left -= n;
        // Refuse counts the input cannot possibly hold before allocating for them.
        let remaining = self.bytes.remaining() as u64;
        if n.saturating_mul(min_element_size as u64) > remaining {
            return Err(DecodeError::UnexpectedEnd {
                offset,
                needed: usize::try_from(n.saturating_mul(min_element_size as u64) - remaining)
                    .unwrap_or(usize::MAX),
            });
        }
        usize::try_from(n).map_err(|_| DecodeError::TooManyElements {
            limit: self.elements_left,
        })
    }

    pub(crate) fn value(&mut self, ty: &Type, depth: u32) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        Ok(match ty {
            Type::Bool => Value::Bool(self.flag("bool")?),
            Type::U8 => Value::U8(self.array::<1>()?[0]),
            Type::I8 => Value::I8(i8::from_le_bytes(self.array()?)),
            Type::U16 => Value::U16(u16::from_le_bytes(self.array()?)),
            Type::I16 => Value::I16(i16::from_le_bytes(self.array()?)),
            Type::U32 => Value::U32(u32::from_le_bytes(self.array()?)),
            Type::I32 => Value::I32(i32::from_le_bytes(self.array()?)),
            Type::F32 => Value::F32(f32::from_le_bytes(self.array()?)),
            Type::U64 => Value::U64(u64::from_le_bytes(self.array()?)),
            Type::I64 => Value::I64(i64::from_le_bytes(self.array()?)),
            Type::F64 => Value::F64(f64::from_le_bytes(self.array()?)),
            Type::String => {
                let len = self.count(1)?;
                let offset = self.pos();
                let bytes = self.take(len)?;
                let s = std::str::from_utf8(bytes).map_err(|_| DecodeError::BadUtf8 { offset })?;
                Value::String(s.to_owned())
            }
            Type::Bytes => {
                let len = self.count(1)?;
                Value::Bytes(self.take(len)?.to_vec())
            }
            Type::List(inner) => {
                let n = self.count(self.min_size(inner, depth))?;
                // `count` bounded n by the input for sized elements; zero-sized ones are
                // bounded only by the element budget, so don't reserve for them up front.
                let mut items = Vec::with_capacity(n.min(4096));
                for _ in 0..n {
                    items.push(self.value(inner, depth + 1)?);
                }
                Value::List(items)
            }
            Type::Option(inner) => {
                if self.flag("option")? {
                    Value::Option(Some(Box::new(self.value(inner, depth + 1)?)))
                } else {
                    Value::Option(None)
                }
            }
            Type::Named(name) => match self.def(name)? {
                TypeDef::Struct { fields, .. } => {
                    let mut values = Vec::with_capacity(fields.len());
                    for field in fields {
                        values.push(self.value(&field.ty, depth + 1)?);
                    }
                    Value::Struct(values)
                }
                TypeDef::Enum { variants, .. } => {
                    let offset = self.pos();
                    let tag = self.varint()?;
                    let variant = usize::try_from(tag)
                        .ok()
                        .and_then(|i| variants.get(i))
                        .ok_or(DecodeError::InvalidTag {
                            what: "enum variant",
                            tag,
                            offset,
                        })?;
                    let mut values = Vec::with_capacity(variant.fields.len());
                    for field in &variant.fields {
                        values.push(self.value(&field.ty, depth + 1)?);
                    }
                    Value::Enum {
                        // `tag` indexes `variants`, whose length fits in memory; u32 is ample
                        // for any enum a compiler accepts.
                        variant: u32::try_from(tag).map_err(|_| DecodeError::InvalidTag {
                            what: "enum variant",
                            tag,
                            offset,
                        })?,
                        fields: values,
                    }
                }
            },
        })
    }

    fn def(&self, name: &str) -> Result<&'a TypeDef, DecodeError> {
        self.registry
            .get(name)
            .map_err(|_| DecodeError::UnknownType(name.to_owned()))
    }

    /// The fewest bytes any value of `ty` encodes to; used to refuse impossible counts early.
    fn min_size(&self, ty: &Type, depth: u32) -> usize {
        if depth > MAX_DEPTH {
            return 0;
        }
        match ty {
            Type::Bool | Type::U8 | Type::I8 => 1,
            Type::U16 | Type::I16 => 2,
            Type::U32 | Type::I32 | Type::F32 => 4,
            Type::U64 | Type::I64 | Type::F64 => 8,
            Type::String | Type::Bytes | Type::List(_) | Type::Option(_) => 1,
            Type::Named(name) => match self.registry.get(name) {
                Ok(TypeDef::Struct { fields, .. }) => {
                    fields.iter().map(|f| self.min_size(&f.ty, depth + 1)).sum()
                }
                Ok(TypeDef::Enum { .. }) => 1,
                Err(_) => 0,
            },
        }
    }
}

pub(crate) fn write_varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_len_is_what_write_varint_writes() {
        for n in [
            0,
            1,
            0x7f,
            0x80,
            0x3fff,
            0x4000,
            u64::from(u32::MAX),
            u64::MAX >> 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            write_varint(n, &mut out);
            assert_eq!(varint_len(n), out.len(), "{n:#x}");
        }
    }
    use crate::{Field, Variant};
    use proptest::prelude::*;

    fn registry() -> TypeRegistry {
        TypeRegistry::new([
            TypeDef::Struct {
                name: "Point".into(),
                fields: vec![Field::new("x", Type::I64), Field::new("y", Type::F32)],
            },
            TypeDef::Enum {
                name: "Shape".into(),
                variants: vec![
                    Variant {
                        name: "Empty".into(),
                        fields: vec![],
                    },
                    Variant {
                        name: "Label".into(),
                        fields: vec![Field::new("0", Type::String)],
                    },
                    Variant {
                        name: "Path".into(),
                        fields: vec![Field::new(
                            "0",
                            Type::List(Box::new(Type::Named("Point".into()))),
                        )],
                    },
                ],
            },
        ])
        .unwrap()
    }

    fn arb_type() -> impl Strategy<Value = Type> {
        let leaf = prop_oneof![
            Just(Type::Bool),
            Just(Type::U8),
            Just(Type::U16),
            Just(Type::U32),
            Just(Type::U64),
            Just(Type::I8),
            Just(Type::I16),
            Just(Type::I32),
            Just(Type::I64),
            Just(Type::F32),
            Just(Type::F64),
            Just(Type::String),
            Just(Type::Bytes),
            Just(Type::Named("Point".into())),
            Just(Type::Named("Shape".into())),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(|t| Type::List(Box::new(t))),
                inner.prop_map(|t| Type::Option(Box::new(t))),
            ]
        })
    }

    fn arb_value(ty: Type) -> BoxedStrategy<Value> {
        match ty {
            Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
            Type::U8 => any::<u8>().prop_map(Value::U8).boxed(),
            Type::U16 => any::<u16>().prop_map(Value::U16).boxed(),
            Type::U32 => any::<u32>().prop_map(Value::U32).boxed(),
            Type::U64 => any::<u64>().prop_map(Value::U64).boxed(),
            Type::I8 => any::<i8>().prop_map(Value::I8).boxed(),
            Type::I16 => any::<i16>().prop_map(Value::I16).boxed(),
            Type::I32 => any::<i32>().prop_map(Value::I32).boxed(),
            Type::I64 => any::<i64>().prop_map(Value::I64).boxed(),
            Type::F32 => any::<u32>()
                .prop_map(|b| Value::F32(f32::from_bits(b)))
                .boxed(),
            Type::F64 => any::<u64>()
                .prop_map(|b| Value::F64(f64::from_bits(b)))
                .boxed(),
            Type::String => ".{0,12}".prop_map(Value::String).boxed(),
            Type::Bytes => proptest::collection::vec(any::<u8>(), 0..12)
                .prop_map(Value::Bytes)
                .boxed(),
            Type::List(inner) => proptest::collection::vec(arb_value(*inner), 0..4)
                .prop_map(Value::List)
                .boxed(),
            Type::Option(inner) => proptest::option::of(arb_value(*inner))
                .prop_map(|v| Value::Option(v.map(Box::new)))
                .boxed(),
            Type::Named(name) if name == "Point" => (any::<i64>(), any::<u32>())
                .prop_map(|(x, y)| {
                    Value::Struct(vec![Value::I64(x), Value::F32(f32::from_bits(y))])
                })
                .boxed(),
            Type::Named(_) => prop_oneof![
                Just(Value::Enum {
                    variant: 0,
                    fields: vec![]
                }),
                ".{0,8}".prop_map(|s| Value::Enum {
                    variant: 1,
                    fields: vec![Value::String(s)]
                }),
                proptest::collection::vec((any::<i64>(), any::<u32>()), 0..3).prop_map(|pts| {
                    Value::Enum {
                        variant: 2,
                        fields: vec![Value::List(
                            pts.into_iter()
                                .map(|(x, y)| {
                                    Value::Struct(vec![
                                        Value::I64(x),
                                        Value::F32(f32::from_bits(y)),
                                    ])
                                })
                                .collect(),
                        )],
                    }
                }),
            ]
            .boxed(),
        }
    }

    fn typed_value() -> impl Strategy<Value = (Type, Value)> {
        arb_type().prop_flat_map(|ty| arb_value(ty.clone()).prop_map(move |v| (ty.clone(), v)))
    }

    proptest! {
        #[test]
        fn round_trips_and_is_canonical((ty, value) in typed_value()) {
            let reg = registry();
            ty.check(&value, &reg).unwrap();
            let bytes = encode(&value);
            prop_assert_eq!(encoded_len(&value), bytes.len());
            let back = decode(&bytes, &ty, &reg).unwrap();
            prop_assert_eq!(&back, &value);
            prop_assert_eq!(encode(&back), bytes);
        }

        #[test]
        fn never_panics_on_garbage(ty in arb_type(), bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Either a value that re-encodes to the same bytes, or an error: never a panic.
            if let Ok(v) = decode(&bytes, &ty, &registry()) {
                prop_assert_eq!(encode(&v), bytes);
            }
        }

        #[test]
        fn every_truncation_is_detected((ty, value) in typed_value()) {
            let bytes = encode(&value);
            for cut in 0..bytes.len() {
                prop_assert!(decode(&bytes[..cut], &ty, &registry()).is_err());
            }
        }
    }

    #[test]
    fn known_layout() {
        let v = Value::Struct(vec![Value::I64(-2), Value::F32(1.5)]);
        assert_eq!(
            encode(&v),
            [
                0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0xc0, 0x3f
            ]
        );
        assert_eq!(encode(&Value::from("hé")), [3, b'h', 0xc3, 0xa9]);
        assert_eq!(
            encode(&Value::List(vec![Value::U8(1); 300]))[..2],
            [0xac, 0x02]
        );
    }

    #[test]
    fn rejects_hostile_input() {
        let reg = registry();
        let list = Type::List(Box::new(Type::U64));
        // A count of 2^62 elements with nothing behind it: refused before allocating.
        let huge = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40];
        assert!(matches!(
            decode(&huge, &list, &reg),
            Err(DecodeError::TooManyElements { .. } | DecodeError::UnexpectedEnd { .. })
        ));
        assert!(matches!(
            decode(&[2], &Type::Bool, &reg),
            Err(DecodeError::InvalidTag { what: "bool", .. })
        ));
        assert!(matches!(
            decode(&[1, 0xff], &Type::String, &reg),
            Err(DecodeError::BadUtf8 { offset: 1 })
        ));
        assert!(matches!(
            decode(&[0x80, 0x00], &Type::String, &reg),
            Err(DecodeError::BadVarint { offset: 0 })
        ));
        assert!(matches!(
            decode(&[7], &Type::Named("Shape".into()), &reg),
            Err(DecodeError::InvalidTag {
                what: "enum variant",
                ..
            })
        ));
        assert!(matches!(
            decode(&[0, 0], &Type::Option(Box::new(Type::U8)), &reg),
            Err(DecodeError::TrailingBytes { count: 1 })
        ));
        assert!(matches!(
            decode(&[0], &Type::Named("Nope".into()), &reg),
            Err(DecodeError::UnknownType(_))
        ));
    }

    #[test]
    fn nesting_is_bounded() {
        let mut ty = Type::U8;
        for _ in 0..100 {
            ty = Type::Option(Box::new(ty));
        }
        let bytes = vec![1u8; 101];
        assert_eq!(
            decode(&bytes, &ty, &TypeRegistry::default()),
            Err(DecodeError::TooDeep)
        );
    }

    #[test]
    fn element_budget_is_enforced() {
        let ty = Type::List(Box::new(Type::U8));
        let value = Value::List(vec![Value::U8(0); 10]);
        let limits = DecodeLimits { max_elements: 5 };
        assert!(matches!(
            decode_with_limits(&encode(&value), &ty, &TypeRegistry::default(), limits),
            Err(DecodeError::TooManyElements { .. })
        ));
    }
}
