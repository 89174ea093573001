//! Partitioned access on the host: what an invocation's partition declarations
//! (`writes(cells[region])`) come to once its arguments are known, for the planner (which
//! partitions it conflicts on) and for the checks of every row it touches.
//!
//! The rules (ARCHITECTURE.md, rule C5): with partition access to a table, an invocation may
//! read (`get`, lookups and ranges on the partition column) and update or delete rows of its
//! partitions. Whatever could reach another partition needs the whole table: inserts (a key
//! is unique across partitions, and so are `auto_inc` counters), `clear`, scans, counts, and
//! lookups or ranges on other columns. A row it touches outside its partitions fails it, with
//! a message naming the partition and the attribute to declare.

use std::ops::RangeInclusive;
use std::sync::Arc;

use interstice_abi::partition::{MAX_PARTS, PartExpr};
use interstice_abi::{Type, TypeRegistry, Value};
use smallvec::SmallVec;

/// A declared partition access of a table: the expression and whether it writes.
#[derive(Clone, Debug)]
pub(crate) struct PartGrant {
    /// `module.table`. Shared: every call's [`Parts`] holds it, and evaluating them happens
    /// on the driving thread, before a window is planned.
    pub table: Arc<str>,
    pub parts: PartExpr,
    pub write: bool,
    /// The declaration as written, for messages.
    pub declared: String,
}

/// Sets of partition values, as inclusive ranges. Most declarations name one range, held
/// inline: evaluating them allocates nothing for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ranges(SmallVec<[RangeInclusive<i128>; 1]>);

impl Ranges {
    fn add(&mut self, range: RangeInclusive<i128>) {
        if range.start() > range.end() {
            return;
        }
        // The usual case, one range per declaration: nothing to merge.
        if self.0.is_empty() {
            self.0.push(range);
            return;
        }
        self.0.push(range);
        self.0.sort_by_key(|r| *r.start());
        let mut merged: SmallVec<[RangeInclusive<i128>; 1]> = SmallVec::with_capacity(self.0.len());
        for r in self.0.drain(..) {
            match merged.last_mut() {
                Some(last) if *r.start() <= last.end().saturating_add(1) => {
                    *last = *last.start()..=(*last.end()).max(*r.end());
                }
                _ => merged.push(r),
            }
        }
        self.0 = merged;
    }

    /// Adds every range of `other`.
    pub fn extend(&mut self, other: &Ranges) {
        for r in &other.0 {
            self.add(r.clone());
        }
    }

    pub fn contains(&self, value: i128) -> bool {
        self.0.iter().any(|r| r.contains(&value))
    }

    /// Whether every value of `lo..=hi` is in the set.
    pub fn covers(&self, lo: i128, hi: i128) -> bool {
        lo > hi || self.0.iter().any(|r| *r.start() <= lo && hi <= *r.end())
    }

    pub fn values(&self) -> impl Iterator<Item = i128> + '_ {
        self.0.iter().flat_map(|r| r.clone())
    }
}

impl std::fmt::Display for Ranges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|r| {
                if r.start() == r.end() {
                    r.start().to_string()
                } else {
                    format!("{}..={}", r.start(), r.end())
                }
            })
            .collect();
        write!(f, "{}", parts.join(", "))
    }
}

/// One table's partitions an invocation may read, and may write (writing implies reading).
/// (Messages name the declarations from the reducer's grants: a call does not copy them.)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TableParts {
    pub reads: Ranges,
    pub writes: Ranges,
}

impl TableParts {
    pub fn may_read(&self, value: i128) -> bool {
        self.reads.contains(value) || self.writes.contains(value)
    }
}

/// What an invocation's partition declarations come to, by table (`module.table`): a short
/// list, inline, since a reducer declares partitions of a table or two.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Parts(SmallVec<[(Arc<str>, TableParts); 2]>);

impl Parts {
    pub fn get(&self, table: &str) -> Option<&TableParts> {
        self.0.iter().find(|(t, _)| **t == *table).map(|(_, p)| p)
    }

    fn entry(&mut self, table: &Arc<str>) -> &mut TableParts {
        let at = match self.0.iter().position(|(t, _)| t == table) {
            Some(at) => at,
            None => {
                self.0.push((table.clone(), TableParts::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[at].1
    }
}

#[cfg(test)]
impl std::ops::Index<&str> for Parts {
    type Output = TableParts;

    fn index(&self, table: &str) -> &TableParts {
        self.get(table)
            .unwrap_or_else(|| panic!("no partitions of {table}"))
    }
}

/// Evaluates `grants` for a call with encoded `args`, of the function whose parameters are
/// `params`. `None` when the arguments do not decode (the call fails when it runs) or a range
/// is wider than [`MAX_PARTS`]: the declarations are then planned and checked as the whole
/// tables, which is always safe.
pub(crate) fn evaluate(
    grants: &[PartGrant],
    params: &[(String, Type)],
    args: &[u8],
    registry: &TypeRegistry,
) -> Option<Parts> {
    let values =
        interstice_abi::decode_fields(args, params.iter().map(|(_, t)| t), registry).ok()?;
    evaluate_with(grants, |name: &str| {
        let at = params.iter().position(|(n, _)| n == name)?;
        key(values.get(at)?)
    })
}

/// [`evaluate`] with the arguments' integer values given by `arg`, by parameter name.
pub(crate) fn evaluate_with(
    grants: &[PartGrant],
    arg: impl Fn(&str) -> Option<i128>,
) -> Option<Parts> {
    let mut parts = Parts::default();
    for grant in grants {
        let range = grant.parts.eval(&arg)?;
        let width = (range.end() - range.start()).saturating_add(1);
        if width > i128::from(MAX_PARTS) {
            return None;
        }
        let table = parts.entry(&grant.table);
        if grant.write {
            table.writes.add(range);
        } else {
            table.reads.add(range);
        }
    }
    Some(parts)
}

/// Where the parameters that partition declarations name lie in a call's encoded arguments,
/// when they are integers and every parameter before them has a fixed width (integers, floats,
/// `bool`): their values are then read straight from the bytes, and planning the call decodes
/// nothing. The same values as decoding gives, for arguments that decode; bytes that do not
/// decode fail the call when it runs, whatever partitions it was planned with.
#[derive(Clone, Debug)]
pub(crate) struct FixedArgs(Vec<(String, usize, Type)>);

impl FixedArgs {
    /// `None` when a named parameter is not an integer or comes after a variable-width one.
    pub fn new(params: &[(String, Type)], grants: &[PartGrant]) -> Option<FixedArgs> {
        let named = |name: &str| grants.iter().any(|g| g.parts.args().any(|a| a == name));
        let wanted = params.iter().filter(|(n, _)| named(n)).count();
        let mut found = Vec::new();
        let mut offset = 0;
        for (name, ty) in params {
            if found.len() == wanted {
                break;
            }
            if named(name) {
                key_width(ty)?;
                found.push((name.clone(), offset, ty.clone()));
            }
            offset += fixed_width(ty)?;
        }
        Some(FixedArgs(found))
    }

    /// The values of the named parameters in `args`, in order; `None` when they are too short.
    pub fn values(&self, args: &[u8]) -> Option<smallvec::SmallVec<[i128; 2]>> {
        self.0
            .iter()
            .map(|(_, at, ty)| read_int(args, *at, ty))
            .collect()
    }

    /// The value of integer parameter `name` in `args`; `None` when they are too short.
    pub fn get(&self, args: &[u8], name: &str) -> Option<i128> {
        let (_, at, ty) = self.0.iter().find(|(n, _, _)| n == name)?;
        read_int(args, *at, ty)
    }
}

/// The integer of type `ty` encoded at `at` in `args`; `None` when they are too short.
fn read_int(args: &[u8], at: usize, ty: &Type) -> Option<i128> {
    let bytes = args.get(at..at + key_width(ty)?)?;
    let mut le = [0u8; 8];
    le[..bytes.len()].copy_from_slice(bytes);
    let raw = u64::from_le_bytes(le);
    Some(match ty {
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => i128::from(raw),
        Type::I8 => i128::from(raw as u8 as i8),
        Type::I16 => i128::from(raw as u16 as i16),
        Type::I32 => i128::from(raw as u32 as i32),
        Type::I64 => i128::from(raw as i64),
        _ => return None,
    })
}

/// The encoded width of a value of `ty`, when every value of it has the same.
fn fixed_width(ty: &Type) -> Option<usize> {
    match ty {
        Type::Bool => Some(1),
        Type::F32 => Some(4),
        Type::F64 => Some(8),
        other => key_width(other),
    }
}

/// The width of an integer type, the types a partition can be named by.
fn key_width(ty: &Type) -> Option<usize> {
    Some(match ty {
        Type::U8 | Type::I8 => 1,
        Type::U16 | Type::I16 => 2,
        Type::U32 | Type::I32 => 4,
        Type::U64 | Type::I64 => 8,
        _ => return None,
    })
}

/// The partition key of an integer value.
pub(crate) fn key(value: &Value) -> Option<i128> {
    Some(match value {
        Value::U8(v) => i128::from(*v),
        Value::U16(v) => i128::from(*v),
        Value::U32(v) => i128::from(*v),
        Value::U64(v) => i128::from(*v),
        Value::I8(v) => i128::from(*v),
        Value::I16(v) => i128::from(*v),
        Value::I32(v) => i128::from(*v),
        Value::I64(v) => i128::from(*v),
        _ => return None,
    })
}

/// The scheduler's key of a partition value. A table's partition column has one integer
/// type, within which this is one-to-one.
pub(crate) fn sched_part(value: i128) -> interstice_scheduler::Part {
    interstice_scheduler::Part(value as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use interstice_abi::encode;
    use smallvec::smallvec;

    fn grant(text: &str, write: bool) -> PartGrant {
        let r: interstice_abi::partition::TableRef = text.parse().unwrap();
        PartGrant {
            table: format!("sim.{}", r.table).into(),
            parts: r.parts.unwrap(),
            write,
            declared: text.to_owned(),
        }
    }

    #[test]
    fn declarations_evaluate_against_the_arguments() {
        let grants = [
            grant("cells[region - 1 ..= region + 1]", false),
            grant("cells[region]", true),
        ];
        let params = [("region".to_owned(), Type::U32)];
        let parts = evaluate(
            &grants,
            &params,
            &encode(&Value::U32(5)),
            &TypeRegistry::default(),
        )
        .unwrap();
        let cells = &parts["sim.cells"];
        assert_eq!(cells.reads, Ranges(smallvec![4..=6]));
        assert_eq!(cells.writes, Ranges(smallvec![5..=5]));
        assert!(cells.may_read(4) && cells.may_read(6) && !cells.may_read(7));
        assert!(cells.reads.covers(4, 6) && !cells.reads.covers(4, 7));
        assert_eq!(cells.reads.to_string(), "4..=6");
    }

    /// Read in place or decoded, the arguments name the same partitions, for every integer
    /// type and sign, behind fixed-width parameters of every kind.
    #[test]
    fn arguments_read_in_place_name_what_decoding_names() {
        let registry = TypeRegistry::default();
        let grants = [
            grant("cells[at - 1 ..= at + 1]", false),
            grant("cells[at]", true),
        ];
        let before = [
            ("flag".to_owned(), Type::Bool),
            ("x".to_owned(), Type::F64),
            ("n".to_owned(), Type::I16),
        ];
        let values = [
            (Value::U8(200), Type::U8),
            (Value::I8(-100), Type::I8),
            (Value::U16(60_000), Type::U16),
            (Value::I16(-30_000), Type::I16),
            (Value::U32(4_000_000_000), Type::U32),
            (Value::I32(-2_000_000_000), Type::I32),
            (Value::U64(u64::MAX - 3), Type::U64),
            (Value::I64(i64::MIN + 3), Type::I64),
        ];
        for (value, ty) in values {
            let mut params = before.to_vec();
            params.push(("at".to_owned(), ty.clone()));
            params.push(("tail".to_owned(), Type::String));
            let mut args = Vec::new();
            for v in [
                Value::Bool(true),
                Value::F64(1.5),
                Value::I16(-2),
                value.clone(),
            ] {
                args.extend(encode(&v));
            }
            args.extend(encode(&Value::String("after".into())));
            let fixed = FixedArgs::new(&params, &grants).expect("fixed widths before `at`");
            let fast = evaluate_with(&grants, |n| fixed.get(&args, n));
            let slow = evaluate(&grants, &params, &args, &registry);
            assert_eq!(fast, slow, "{value:?}");
            assert_eq!(fixed.get(&args, "at"), key(&value), "{value:?}");
            // Too short: nothing read, so the caller falls back to decoding.
            assert_eq!(fixed.get(&args[..args.len() - 8], "at"), None);
        }
        // After a variable-width parameter, or not an integer: no fixed place.
        let late = [("s".to_owned(), Type::String), ("at".to_owned(), Type::U32)];
        assert!(FixedArgs::new(&late, &grants).is_none());
        let float = [("at".to_owned(), Type::F32)];
        assert!(FixedArgs::new(&float, &grants).is_none());
    }

    #[test]
    fn a_range_too_wide_or_bytes_that_do_not_decode_mean_the_whole_table() {
        let grants = [grant("cells[0 .. region]", true)];
        let params = [("region".to_owned(), Type::U32)];
        let registry = TypeRegistry::default();
        assert!(evaluate(&grants, &params, &encode(&Value::U32(1000)), &registry).is_none());
        assert!(evaluate(&grants, &params, &[0xff], &registry).is_none());
        let few = evaluate(&grants, &params, &encode(&Value::U32(3)), &registry).unwrap();
        assert_eq!(
            few["sim.cells"].writes.values().collect::<Vec<_>>(),
            [0, 1, 2]
        );
    }

    #[test]
    fn ranges_merge() {
        let mut r = Ranges::default();
        r.add(5..=6);
        r.add(1..=2);
        r.add(3..=4);
        // An empty range (a declaration like `cells[region ..= region - 1]`) adds nothing.
        let (nine, eight) = (9, 8);
        r.add(nine..=eight);
        assert_eq!(r, Ranges(smallvec![1..=6]));
    }
}
