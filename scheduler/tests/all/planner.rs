//! The planner's exact edges, and its ordering closure against pairwise conflicts.

use interstice_scheduler::{AccessSet, Part, Planner, ResourceId};
use proptest::prelude::*;

use crate::access::access;

fn r(tables: &[u32]) -> AccessSet {
    AccessSet::from_tables(tables.iter().map(|&t| ResourceId(t)), [])
}

fn w(tables: &[u32]) -> AccessSet {
    AccessSet::from_tables([], tables.iter().map(|&t| ResourceId(t)))
}

fn rw(reads: &[u32], writes: &[u32]) -> AccessSet {
    AccessSet::from_tables(
        reads.iter().map(|&t| ResourceId(t)),
        writes.iter().map(|&t| ResourceId(t)),
    )
}

/// Plans `window`, checks its exact edges and that it orders exactly the conflicting pairs.
fn check(window: &[AccessSet], expected: &[(usize, usize)]) {
    let plan = Planner::new().plan(window);
    let edges: Vec<_> = plan.edges().collect();
    assert_eq!(edges, expected, "edges of {window:?}");
    assert_closure_matches_conflicts(window);
}

fn closure(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<bool>> {
    let mut reach = vec![vec![false; n]; n];
    // Edges go forward, so one backward pass over sources gives the closure.
    for i in (0..n).rev() {
        for &(from, to) in edges {
            if from == i {
                let below = reach[to].clone();
                reach[i][to] = true;
                for (r, b) in reach[i].iter_mut().zip(below) {
                    *r |= b;
                }
            }
        }
    }
    reach
}

/// Every conflicting pair is ordered, and nothing is ordered that conflicts don't force.
fn assert_closure_matches_conflicts(window: &[AccessSet]) {
    let n = window.len();
    let plan = Planner::new().plan(window);
    assert_eq!(plan.len(), n);
    for (i, j) in plan.edges() {
        assert!(i < j, "backward edge {i} -> {j}");
    }
    let got = closure(n, &plan.edges().collect::<Vec<_>>());
    let mut pairwise = Vec::new();
    for j in 0..n {
        for i in 0..j {
            if window[i].conflicts_with(&window[j]) {
                pairwise.push((i, j));
            }
        }
    }
    let want = closure(n, &pairwise);
    assert_eq!(got, want, "closure of {window:?}");
    for i in 0..n {
        let preds = plan.edges().filter(|&(_, to)| to == i).count();
        assert_eq!(plan.in_degree(i) as usize, preds);
    }
}

#[test]
fn chain_of_writers() {
    check(&[w(&[0]), w(&[0]), w(&[0])], &[(0, 1), (1, 2)]);
}

#[test]
fn fork_of_readers() {
    check(&[w(&[0]), r(&[0]), r(&[0])], &[(0, 1), (0, 2)]);
}

#[test]
fn diamond() {
    check(
        &[w(&[0, 1]), rw(&[0], &[2]), rw(&[1], &[3]), r(&[2, 3])],
        &[(0, 1), (0, 2), (1, 3), (2, 3)],
    );
}

#[test]
fn readers_around_a_writer() {
    check(
        &[r(&[0]), r(&[0]), w(&[0]), r(&[0]), r(&[0])],
        &[(0, 2), (1, 2), (2, 3), (2, 4)],
    );
}

#[test]
fn write_after_readers_skips_the_implied_writer_edge() {
    check(&[w(&[0]), r(&[0]), w(&[0])], &[(0, 1), (1, 2)]);
}

#[test]
fn shared_predecessor_through_two_tables_is_one_edge() {
    check(&[w(&[0, 1]), r(&[0, 1]), w(&[0, 1])], &[(0, 1), (1, 2)]);
}

#[test]
fn disjoint_and_read_only_tasks_run_free() {
    check(&[w(&[0]), w(&[1]), r(&[2]), r(&[2]), AccessSet::new()], &[]);
}

#[test]
fn exclusive_waits_for_the_frontier_and_gates_what_follows() {
    check(
        &[
            w(&[0]),
            w(&[1]),
            r(&[0]),
            AccessSet::exclusive(),
            r(&[0]),
            AccessSet::new(),
            w(&[0]),
        ],
        &[(0, 2), (1, 3), (2, 3), (3, 4), (3, 5), (4, 6)],
    );
}

#[test]
fn exclusive_after_exclusive_and_at_the_start() {
    check(
        &[AccessSet::exclusive(), AccessSet::exclusive(), w(&[0])],
        &[(0, 1), (1, 2)],
    );
}

#[test]
fn planner_reuse_forgets_the_previous_window() {
    let mut planner = Planner::new();
    let _ = planner.plan(&[w(&[0]), w(&[5]), AccessSet::exclusive()]);
    let plan = planner.plan(&[r(&[0]), r(&[5])]);
    assert_eq!(plan.edge_count(), 0);
}

#[test]
fn graph_and_dot_dump() {
    let plan = Planner::new().plan(&[w(&[0]), r(&[0]), r(&[0])]);
    let graph = plan.to_graph();
    assert_eq!(graph.node_count(), 3);
    assert_eq!(graph.edge_count(), 2);
    let dot = plan.to_dot();
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.contains("0 -> 1") && dot.contains("0 -> 2"), "{dot}");
}

/// Plans a window written in the notation of `access.rs`, one access set per invocation.
fn check_parts(window: &[&str], expected: &[(usize, usize)]) {
    let window: Vec<AccessSet> = window.iter().map(|a| access(a)).collect();
    check(&window, expected);
}

#[test]
fn different_parts_of_one_table_run_free() {
    check_parts(&["w0.1", "w0.2", "r0.3", "w0.4 r0.3 r0.5"], &[]);
}

#[test]
fn same_part_chains_like_a_table() {
    check_parts(
        &["w0.1", "r0.1", "r0.1", "w0.1", "w0.1"],
        &[(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)],
    );
}

#[test]
fn neighbouring_regions() {
    // Regions 1..=4, each writing its part and reading both neighbours, twice over.
    let step = [
        "w0.1 r0.0 r0.2",
        "w0.2 r0.1 r0.3",
        "w0.3 r0.2 r0.4",
        "w0.4 r0.3 r0.5",
    ];
    let window: Vec<&str> = step.iter().chain(&step).copied().collect();
    check_parts(
        &window,
        &[
            (0, 1),
            (1, 2),
            (1, 4),
            (2, 3),
            (2, 5),
            (3, 6),
            (4, 5),
            (5, 6),
            (6, 7),
        ],
    );
}

#[test]
fn whole_write_waits_for_every_part_and_parts_wait_for_it() {
    check_parts(
        &["w0.1", "r0.1", "w0.2", "r0.3", "w0", "r0.1", "w0.2"],
        &[(0, 1), (1, 4), (2, 4), (3, 4), (4, 5), (4, 6)],
    );
}

#[test]
fn whole_read_waits_for_part_writers_not_part_readers() {
    check_parts(
        &["w0.1", "r0.2", "w0.3", "r0", "w0.1", "r0.2"],
        &[(0, 3), (2, 3), (3, 4)],
    );
}

#[test]
fn whole_read_and_part_write_in_one_invocation() {
    check_parts(
        &["w0.1", "r0 w0.1", "r0 w0.2", "r0.1", "w0"],
        // (1, 4) is implied, but a whole write waits for every whole reader since the last
        // one, partitioned or not.
        &[(0, 1), (1, 2), (1, 3), (1, 4), (2, 4), (3, 4)],
    );
}

#[test]
fn exclusive_forgets_the_parts() {
    check_parts(&["w0.1", "x", "w0.1", "r0.1"], &[(0, 1), (1, 2), (2, 3)]);
}

fn access_strategy() -> impl Strategy<Value = AccessSet> {
    let part = (0u32..3, 0u64..3);
    (
        proptest::collection::vec(0u32..5, 0..3),
        proptest::collection::vec(0u32..5, 0..3),
        proptest::collection::vec(part.clone(), 0..3),
        proptest::collection::vec(part, 0..3),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(reads, writes, part_reads, part_writes, exclusive)| {
            if exclusive {
                return AccessSet::exclusive();
            }
            let mut access = rw(&reads, &writes);
            for (t, p) in part_reads {
                access = access.read_part(ResourceId(t), Part(p));
            }
            for (t, p) in part_writes {
                access = access.write_part(ResourceId(t), Part(p));
            }
            access
        })
}

proptest! {
    #[test]
    fn sweep_orders_exactly_the_conflicting_pairs(
        window in proptest::collection::vec(access_strategy(), 0..40)
    ) {
        assert_closure_matches_conflicts(&window);
    }
}
