//! The conflict rules of `AccessSet`, table-driven: each case is two access sets in a small
//! notation and whether they conflict; the helper checks the definition both ways, and that
//! the planner orders exactly the conflicting pairs.

use interstice_scheduler::{AccessSet, Part, Planner, ResourceId};

/// Parses a space-separated access set: `r3` reads table 3, `w3` writes it, `r3.7` reads part
/// 7 of table 3, `w3.7` writes it, `x` is exclusive, `-` is nothing.
pub fn access(spec: &str) -> AccessSet {
    let mut access = AccessSet::new();
    for item in spec.split_whitespace() {
        if item == "x" {
            return AccessSet::exclusive();
        }
        if item == "-" {
            continue;
        }
        let (kind, rest) = item.split_at(1);
        let (table, part) = match rest.split_once('.') {
            Some((t, p)) => (t, Some(Part(p.parse().expect("part number")))),
            None => (rest, None),
        };
        let table = ResourceId(table.parse().expect("table number"));
        access = match (kind, part) {
            ("r", None) => access.read(table),
            ("w", None) => access.write(table),
            ("r", Some(p)) => access.read_part(table, p),
            ("w", Some(p)) => access.write_part(table, p),
            _ => panic!("bad access item `{item}`"),
        };
    }
    access
}

/// `a` and `b` conflict exactly when `expected` says, in either order, and a planned window
/// of the two has an edge exactly then.
fn check(a: &str, b: &str, expected: bool) {
    let (a_set, b_set) = (access(a), access(b));
    assert_eq!(a_set.conflicts_with(&b_set), expected, "`{a}` vs `{b}`");
    assert_eq!(b_set.conflicts_with(&a_set), expected, "`{b}` vs `{a}`");
    for window in [[&a_set, &b_set], [&b_set, &a_set]] {
        let plan = Planner::new().plan(window);
        assert_eq!(plan.edge_count() == 1, expected, "plan of `{a}`, `{b}`");
    }
}

#[test]
fn conflict_rules() {
    let cases = [
        // Whole tables, as before partitions.
        ("r0", "r0", false),
        ("r0", "w0", true),
        ("w0", "w0", true),
        ("w0", "w1", false),
        ("r0 w1", "r1", true),
        // A whole write covers every part.
        ("w0", "r0.1", true),
        ("w0", "w0.1", true),
        ("w0", "r1.1", false),
        // A whole read conflicts with any write of the table, whole or part.
        ("r0", "w0.1", true),
        ("r0", "r0.1", false),
        ("r0", "w1.1", false),
        // Part against part: only the same part of the same table, one writing.
        ("w0.1", "w0.1", true),
        ("w0.1", "r0.1", true),
        ("r0.1", "r0.1", false),
        ("w0.1", "w0.2", false),
        ("w0.1", "r0.2", false),
        ("w0.1", "w1.1", false),
        // Neighbouring regions: write one part, read both neighbours.
        ("w0.2 r0.1 r0.3", "w0.5 r0.4 r0.6", false),
        ("w0.2 r0.1 r0.3", "w0.3 r0.2 r0.4", true),
        ("w0.2 r0.1 r0.3", "w0.4 r0.3 r0.5", false),
        // Mixed sets: any overlapping pair decides.
        ("r0 w1.1", "w0.9", true),
        ("r0 w1.1", "r1.2 r0.9", false),
        ("r0 w1.1", "r1", true),
        // Exclusive conflicts with everything, even with nothing.
        ("x", "-", true),
        ("x", "r0.1", true),
        ("-", "w0", false),
    ];
    for (a, b, expected) in cases {
        check(a, b, expected);
    }
}

#[test]
fn covered_items_are_dropped_whatever_the_order() {
    let cases = [
        // (built one way, built the other way, what remains)
        ("r0.1 w0", "w0 r0.1", "w0"),
        ("w0.1 w0", "w0 w0.1", "w0"),
        ("r0.1 r0", "r0 r0.1", "r0"),
        ("r0.1 w0.1", "w0.1 r0.1", "w0.1"),
        ("r0 w0.1", "w0.1 r0", "r0 w0.1"),
        ("r0.2 w0.1 r0.1", "w0.1 r0.2", "r0.2 w0.1"),
    ];
    for (one, other, remains) in cases {
        assert_eq!(access(one), access(other), "`{one}` vs `{other}`");
        assert_eq!(
            access(one),
            access(remains),
            "`{one}` normalises to `{remains}`"
        );
    }
    let a = access("r0 w0.1 r1.4 w2");
    assert_eq!(a.reads(), &[ResourceId(0)]);
    assert_eq!(a.writes(), &[ResourceId(2)]);
    assert_eq!(a.part_reads(), &[(ResourceId(1), Part(4))]);
    assert_eq!(a.part_writes(), &[(ResourceId(0), Part(1))]);
}
