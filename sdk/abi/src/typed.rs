//! Statically typed encoding: Rust types that know their ABI [`Type`] and write and read the
//! layout of [`crate::encode`] directly, without going through [`Value`](crate::Value).
//!
//! This is what the guest SDK uses: a `#[interstice_type]` struct implements
//! [`IntersticeType`], and its bytes are exactly those [`crate::encode`] produces for the
//! equivalent `Value` (the tests below and in `interstice-sdk` check that byte for byte).
//! Decoding trusts nothing, like [`crate::decode`]: lengths are checked before allocating,
//! nesting is bounded, tags and varints are validated.

use crate::codec::{MAX_DEPTH, write_varint};
use crate::{DecodeError, Type, TypeDef};

/// A Rust type that can cross the host ↔ module boundary.
///
/// Implemented for `bool`, `u8`…`u64`, `i8`…`i64`, `f32`, `f64`, `String`, `Vec<T>`,
/// `Option<T>`, `Box<T>`, and by `#[interstice_type]` / `#[table]` for user types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross the Interstice boundary",
    label = "not an Interstice type",
    note = "mark the type with `#[interstice_type]`, or use bool, u8..u64, i8..i64, f32, f64, String, Vec<T>, Option<T>"
)]
pub trait IntersticeType: Sized {
    /// The ABI type of values of this type; user types are [`Type::Named`].
    fn ty() -> Type;

    /// Adds the definitions of the user types this type refers to (itself included) to `defs`.
    fn collect_defs(defs: &mut TypeDefs) {
        let _ = defs;
    }

    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// Reads one value.
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// The type of `Vec<Self>`. `Vec<u8>` is [`Type::Bytes`]; the bytes are the same either way.
    #[doc(hidden)]
    fn list_ty() -> Type {
        Type::List(Box::new(Self::ty()))
    }

    #[doc(hidden)]
    fn encode_list(items: &[Self], out: &mut Vec<u8>) {
        write_varint(items.len() as u64, out);
        items.iter().for_each(|item| item.encode(out));
    }

    #[doc(hidden)]
    fn decode_list(reader: &mut Reader<'_>) -> Result<Vec<Self>, DecodeError> {
        let n = reader.count()?;
        // `count` bounded `n` by the input (or by the element budget for zero-sized
        // elements), so this reservation cannot be made huge by a hostile length.
        let mut items = Vec::with_capacity(n.min(reader.remaining()));
        for _ in 0..n {
            items.push(reader.nested(Self::decode)?);
        }
        Ok(items)
    }
}

/// The user type definitions a module refers to, deduplicated by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeDefs {
    defs: Vec<TypeDef>,
    conflicts: Vec<String>,
}

impl TypeDefs {
    pub const fn new() -> Self {
        TypeDefs {
            defs: Vec::new(),
            conflicts: Vec::new(),
        }
    }

    /// Adds `def` and returns `true` when its name was new; the caller then adds the types its
    /// fields refer to. Adding before recursing is what makes recursive types terminate.
    /// A different definition under a name already present is recorded as a conflict.
    pub fn add(&mut self, def: TypeDef) -> bool {
        match self.defs.iter().find(|d| d.name() == def.name()) {
            Some(existing) => {
                if *existing != def && !self.conflicts.iter().any(|c| c == def.name()) {
                    self.conflicts.push(def.name().to_owned());
                }
                false
            }
            None => {
                self.defs.push(def);
                true
            }
        }
    }

    /// Adds the definitions `T` refers to.
    pub fn collect<T: IntersticeType>(&mut self) {
        T::collect_defs(self);
    }

    /// Names defined twice with different shapes (two Rust types with the same name).
    pub fn conflicts(&self) -> &[String] {
        &self.conflicts
    }

    pub fn iter(&self) -> impl Iterator<Item = &TypeDef> {
        self.defs.iter()
    }

    /// The definitions, sorted by name so the schema does not depend on registration order.
    pub fn into_sorted(mut self) -> Vec<TypeDef> {
        self.defs.sort_by(|a, b| a.name().cmp(b.name()));
        self.defs
    }
}

/// The encoding of `value`.
pub fn to_bytes<T: IntersticeType>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode(&mut out);
    out
}

/// Decodes exactly one `T` from `bytes`; trailing bytes are an error.
pub fn from_bytes<T: IntersticeType>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut reader = Reader::new(bytes);
    let value = T::decode(&mut reader)?;
    reader.finish()?;
    Ok(value)
}

/// Appends a LEB128 varint, as the codec writes lengths and enum tags.
pub fn encode_varint(n: u64, out: &mut Vec<u8>) {
    write_varint(n, out);
}

/// Reads typed values one after another from untrusted bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    depth: u32,
    elements_left: u64,
}

impl<'a> Reader<'a> {
    /// The most elements all zero-sized lists of one decode may claim: such lists take no input
    /// bytes, so only this budget stops a hostile count from looping for ever.
    pub const ZERO_SIZED_BUDGET: u64 = 1 << 20;

    pub fn new(input: &'a [u8]) -> Self {
        Reader {
            input,
            pos: 0,
            depth: 0,
            elements_left: Self::ZERO_SIZED_BUDGET,
        }
    }

    /// The offset of the next byte.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let remaining = self.remaining();
        if n > remaining {
            return Err(DecodeError::UnexpectedEnd {
                offset: self.pos,
                needed: n - remaining,
            });
        }
        let slice = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    /// The next `N` bytes as an array, for fixed-width numbers.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A minimal LEB128 varint of at most ten bytes.
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut result = 0u64;
        for i in 0..10 {
            let [byte] = self.array::<1>()?;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte may only carry the top bit of a u64.
            if i == 9 && bits > 1 {
                return Err(DecodeError::BadVarint { offset: start });
            }
            result |= bits << (7 * i);
            if byte & 0x80 == 0 {
                // Canonical: no trailing zero groups (except the single byte `0`).
                if i > 0 && byte == 0 {
                    return Err(DecodeError::BadVarint { offset: start });
                }
                return Ok(result);
            }
        }
        Err(DecodeError::BadVarint { offset: start })
    }

    /// A byte that must be `0` or `1` (`bool`, the `Option` flag).
    pub fn flag(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        let offset = self.pos;
        match self.array::<1>()? {
            [0] => Ok(false),
            [1] => Ok(true),
            [tag] => Err(DecodeError::InvalidTag {
                what,
                tag: tag.into(),
                offset,
            }),
        }
    }

    /// An element count. A count larger than the remaining input can only be honest for
    /// zero-sized elements, which draw on [`Self::ZERO_SIZED_BUDGET`].
    pub fn count(&mut self) -> Result<usize, DecodeError> {
        let offset = self.pos;
        let n = self.varint()?;
        if n > self.remaining() as u64 {
            if n > self.elements_left {
                return Err(DecodeError::TooManyElements {
                    limit: self.elements_left,
                });
            }
            self.elements_left -= n;
        }
        usize::try_from(n).map_err(|_| DecodeError::UnexpectedEnd { offset, needed: 0 })
    }

    /// Runs `f` one nesting level deeper; fails past the codec's depth limit.
    pub fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        if self.depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }

    /// The error for an enum tag that names no variant, read at `offset`.
    pub fn bad_variant(&self, tag: u64, offset: usize) -> DecodeError {
        DecodeError::InvalidTag {
            what: "enum variant",
            tag,
            offset,
        }
    }
}

macro_rules! fixed_width {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl IntersticeType for $t {
            fn ty() -> Type {
                Type::$variant
            }
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(<$t>::from_le_bytes(reader.array()?))
            }
        }
    )*};
}

fixed_width! {
    u16 => U16, u32 => U32, u64 => U64,
    i8 => I8, i16 => I16, i32 => I32, i64 => I64,
    f32 => F32, f64 => F64,
}

impl IntersticeType for u8 {
    fn ty() -> Type {
        Type::U8
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let [b] = reader.array()?;
        Ok(b)
    }
    fn list_ty() -> Type {
        Type::Bytes
    }
    fn encode_list(items: &[Self], out: &mut Vec<u8>) {
        write_varint(items.len() as u64, out);
        out.extend_from_slice(items);
    }
    fn decode_list(reader: &mut Reader<'_>) -> Result<Vec<Self>, DecodeError> {
        let n = reader.count()?;
        Ok(reader.take(n)?.to_vec())
    }
}

impl IntersticeType for bool {
    fn ty() -> Type {
        Type::Bool
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.flag("bool")
    }
}

impl IntersticeType for String {
    fn ty() -> Type {
        Type::String
    }
    fn encode(&self, out: &mut Vec<u8>) {
        write_varint(self.len() as u64, out);
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = reader.count()?;
        let offset = reader.pos();
        let bytes = reader.take(n)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::BadUtf8 { offset })
    }
}

impl<T: IntersticeType> IntersticeType for Vec<T> {
    fn ty() -> Type {
        T::list_ty()
    }
    fn collect_defs(defs: &mut TypeDefs) {
        T::collect_defs(defs);
    }
    fn encode(&self, out: &mut Vec<u8>) {
        T::encode_list(self, out);
    }
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        T::decode_list(reader)
    }
}

impl<T: IntersticeType> IntersticeType for Option<T> {
    fn ty() -> Type {
        Type::Option(Box::new(T::ty()))
    }
    fn collect_defs(defs: &mut TypeDefs) {
        T::collect_defs(defs);
    }
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode(out);
            }
        }
    }
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if reader.flag("option")? {
            reader.nested(T::decode).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// `Box<T>` is `T` on the wire; it exists so user types can be recursive.
impl<T: IntersticeType> IntersticeType for Box<T> {
    fn ty() -> Type {
        T::ty()
    }
    fn collect_defs(defs: &mut TypeDefs) {
        T::collect_defs(defs);
    }
    fn encode(&self, out: &mut Vec<u8>) {
        (**self).encode(out);
    }
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        T::decode(reader).map(Box::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TypeRegistry, Value, decode, encode};
    use proptest::prelude::*;

    fn same_as_codec<T: IntersticeType + PartialEq + std::fmt::Debug>(value: T, expected: Value) {
        let bytes = to_bytes(&value);
        assert_eq!(bytes, encode(&expected), "{value:?}");
        let mut defs = TypeDefs::new();
        defs.collect::<T>();
        let registry = TypeRegistry::new(defs.into_sorted()).unwrap();
        assert_eq!(decode(&bytes, &T::ty(), &registry).unwrap(), expected);
        assert_eq!(from_bytes::<T>(&bytes).unwrap(), value);
    }

    #[test]
    fn primitives_match_the_dynamic_codec() {
        same_as_codec(true, Value::Bool(true));
        same_as_codec(200u8, Value::U8(200));
        same_as_codec(-5i8, Value::I8(-5));
        same_as_codec(u64::MAX, Value::U64(u64::MAX));
        same_as_codec(-1.5f32, Value::F32(-1.5));
        same_as_codec("hé".to_owned(), Value::from("hé"));
        same_as_codec(
            vec![Some(1u32), None],
            Value::List(vec![
                Value::Option(Some(Box::new(Value::U32(1)))),
                Value::Option(None),
            ]),
        );
        same_as_codec(vec![1u8, 2, 3], Value::Bytes(vec![1, 2, 3]));
        assert_eq!(<Vec<u8>>::ty(), Type::Bytes);
        assert_eq!(
            <Vec<Vec<u8>>>::ty(),
            Type::List(Box::new(Type::Bytes)),
            "only the innermost Vec<u8> is bytes"
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(matches!(
            from_bytes::<bool>(&[2]),
            Err(DecodeError::InvalidTag { what: "bool", .. })
        ));
        assert!(matches!(
            from_bytes::<String>(&[1, 0xff]),
            Err(DecodeError::BadUtf8 { offset: 1 })
        ));
        assert!(matches!(
            from_bytes::<String>(&[0x80, 0x00]),
            Err(DecodeError::BadVarint { offset: 0 })
        ));
        assert!(matches!(
            from_bytes::<Option<u8>>(&[0, 0]),
            Err(DecodeError::TrailingBytes { count: 1 })
        ));
        let huge = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40];
        assert!(from_bytes::<Vec<u64>>(&huge).is_err());
        let mut deep = vec![1u8; 100];
        deep.push(0);
        type Deep = Option<Option<Option<Option<Option<Option<Option<Option<u8>>>>>>>>;
        assert!(from_bytes::<Deep>(&deep).is_err());
    }

    proptest! {
        #[test]
        fn agrees_with_the_dynamic_codec_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
            let registry = TypeRegistry::default();
            type T = Vec<Option<String>>;
            let typed = from_bytes::<T>(&bytes);
            let dynamic = decode(&bytes, &T::ty(), &registry);
            prop_assert_eq!(typed.is_ok(), dynamic.is_ok());
            if let Ok(v) = typed {
                prop_assert_eq!(to_bytes(&v), bytes);
            }
        }

        #[test]
        fn round_trips(v in proptest::collection::vec((any::<i64>(), ".{0,8}", proptest::option::of(any::<u16>())), 0..6)) {
            for (a, b, c) in v {
                let mut out = Vec::new();
                a.encode(&mut out);
                b.encode(&mut out);
                c.encode(&mut out);
                let expected = Value::Struct(vec![
                    Value::I64(a),
                    Value::String(b.clone()),
                    Value::Option(c.map(|c| Box::new(Value::U16(c)))),
                ]);
                prop_assert_eq!(&out, &encode(&expected));
                let mut r = Reader::new(&out);
                prop_assert_eq!(i64::decode(&mut r).unwrap(), a);
                prop_assert_eq!(String::decode(&mut r).unwrap(), b);
                prop_assert_eq!(Option::<u16>::decode(&mut r).unwrap(), c);
                prop_assert!(r.finish().is_ok());
            }
        }
    }
}
