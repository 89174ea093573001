//! Partitioned access: a reducer may declare the partitions of a table it reads or writes as a
//! function of its arguments, e.g. `writes(cells[region])` or
//! `reads(cells[region - 1 ..= region + 1])`. In the schema a declaration is the string
//! `table[expression]`; the SDK writes it, and the host parses and checks it again (it never
//! trusts the SDK).
//!
//! ```
//! use interstice_abi::partition::TableRef;
//!
//! let r: TableRef = "cells[region - 1 ..= region + 1]".parse()?;
//! assert_eq!(r.table, "cells");
//! let parts = r.parts.unwrap();
//! assert_eq!(parts.eval(|arg| (arg == "region").then_some(7)), Some(6..=8));
//! assert_eq!(parts.to_string(), "region - 1 ..= region + 1");
//! # Ok::<(), interstice_abi::ParseError>(())
//! ```

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::ParseError;

/// The most partitions one declaration may name; a range that covers more (at run time, from
/// the arguments) is planned as the whole table.
pub const MAX_PARTS: u64 = 64;

/// A declared table, whole or some of its partitions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableRef {
    /// `table` or `module.table`, as declared.
    pub table: String,
    /// `None`: the whole table.
    pub parts: Option<PartExpr>,
}

/// One bound of a partition expression: an argument plus an offset, or a constant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Term {
    Arg { name: String, offset: i64 },
    Const(i64),
}

/// `start`, `start .. end` or `start ..= end`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartExpr {
    pub start: Term,
    /// The end bound and whether it is inclusive; `None` for a single partition.
    pub end: Option<(Term, bool)>,
}

impl Term {
    fn eval(&self, arg: &impl Fn(&str) -> Option<i128>) -> Option<i128> {
        match self {
            Term::Arg { name, offset } => Some(arg(name)? + i128::from(*offset)),
            Term::Const(c) => Some(i128::from(*c)),
        }
    }
}

impl PartExpr {
    /// The arguments it refers to.
    pub fn args(&self) -> impl Iterator<Item = &str> {
        [Some(&self.start), self.end.as_ref().map(|(t, _)| t)]
            .into_iter()
            .flatten()
            .filter_map(|t| match t {
                Term::Arg { name, .. } => Some(name.as_str()),
                Term::Const(_) => None,
            })
    }

    /// The partition values it names, given the values of the call's integer arguments;
    /// `None` if an argument is missing. An empty range is `lo > hi`.
    pub fn eval(&self, arg: impl Fn(&str) -> Option<i128>) -> Option<RangeInclusive<i128>> {
        let start = self.start.eval(&arg)?;
        let end = match &self.end {
            None => start,
            Some((end, true)) => end.eval(&arg)?,
            Some((end, false)) => end.eval(&arg)? - 1,
        };
        Some(start..=end)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Arg { name, offset: 0 } => f.write_str(name),
            Term::Arg { name, offset } if *offset < 0 => {
                write!(f, "{name} - {}", offset.unsigned_abs())
            }
            Term::Arg { name, offset } => write!(f, "{name} + {offset}"),
            Term::Const(c) => write!(f, "{c}"),
        }
    }
}

impl fmt::Display for PartExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.start)?;
        match &self.end {
            None => Ok(()),
            Some((end, true)) => write!(f, " ..= {end}"),
            Some((end, false)) => write!(f, " .. {end}"),
        }
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.parts {
            None => f.write_str(&self.table),
            Some(parts) => write!(f, "{}[{parts}]", self.table),
        }
    }
}

impl FromStr for TableRef {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let bad = |why: &str| {
            ParseError(format!(
                "`{s}` is not a table or a partition of one ({why}); write `table`, \
                 `table[arg]`, `table[arg - 1 ..= arg + 1]` or `table[0 .. 4]`"
            ))
        };
        let Some(open) = s.find('[') else {
            return Ok(TableRef {
                table: s.to_owned(),
                parts: None,
            });
        };
        let inner = s[open + 1..]
            .strip_suffix(']')
            .ok_or_else(|| bad("no closing `]`"))?;
        let table = s[..open].trim();
        if table.is_empty() {
            return Err(bad("no table name"));
        }
        let (start, end) = match inner.split_once("..") {
            None => (inner, None),
            Some((start, rest)) => match rest.strip_prefix('=') {
                Some(end) => (start, Some((end, true))),
                None => (start, Some((rest, false))),
            },
        };
        let start = parse_term(start).map_err(&bad)?;
        let end = match end {
            None => None,
            Some((end, inclusive)) => Some((parse_term(end).map_err(&bad)?, inclusive)),
        };
        Ok(TableRef {
            table: table.to_owned(),
            parts: Some(PartExpr { start, end }),
        })
    }
}

fn parse_term(text: &str) -> Result<Term, &'static str> {
    let text = text.trim();
    if text.is_empty() {
        return Err("an empty bound");
    }
    if let Ok(c) = text.replace(' ', "").parse::<i64>() {
        return Ok(Term::Const(c));
    }
    let (name, offset) = match text.find(['+', '-']) {
        None => (text, 0),
        Some(at) => {
            let (name, rest) = text.split_at(at);
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let amount: i64 = rest[1..]
                .trim()
                .parse()
                .map_err(|_| "an offset that is not an integer")?;
            (name.trim(), sign * amount)
        }
    };
    let mut chars = name.chars();
    let identifier = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !identifier {
        return Err("a bound that is neither an argument nor an integer");
    }
    Ok(Term::Arg {
        name: name.to_owned(),
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, canonical: &str, region: i128, parts: Option<RangeInclusive<i128>>) {
        let r: TableRef = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(r.to_string(), canonical, "{text}");
        assert_eq!(r.to_string().parse::<TableRef>().unwrap(), r, "{text}");
        let eval = r
            .parts
            .as_ref()
            .and_then(|p| p.eval(|a| (a == "region").then_some(region)));
        assert_eq!(eval, parts, "{text}");
    }

    #[test]
    fn declarations_parse_print_and_evaluate() {
        check("cells", "cells", 5, None);
        check("other.cells", "other.cells", 5, None);
        check("cells[region]", "cells[region]", 5, Some(5..=5));
        check(
            "cells[region-1..=region+1]",
            "cells[region - 1 ..= region + 1]",
            5,
            Some(4..=6),
        );
        check(
            "cells[ region - 1 .. region + 2 ]",
            "cells[region - 1 .. region + 2]",
            0,
            Some(-1..=1),
        );
        check("cells[0..4]", "cells[0 .. 4]", 9, Some(0..=3));
        check("cells[-3]", "cells[-3]", 9, Some(-3..=-3));
    }

    #[test]
    fn mistakes_are_refused_with_what_to_write() {
        for bad in [
            "cells[",
            "cells[]",
            "[region]",
            "cells[region * 2]",
            "cells[2region]",
            "cells[region + x]",
            "cells[..4]",
        ] {
            let e = bad.parse::<TableRef>().unwrap_err();
            assert!(e.0.contains("write `table`"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_missing_argument_evaluates_to_none() {
        let r: TableRef = "cells[zone]".parse().unwrap();
        assert_eq!(r.parts.unwrap().eval(|_| None), None);
    }
}
