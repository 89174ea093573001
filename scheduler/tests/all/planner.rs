//! The planner's exact edges, and its ordering closure against pairwise conflicts.

use interstice_scheduler::{Access, Planner, TableId};
use proptest::prelude::*;

fn r(tables: &[u32]) -> Access {
    Access::from_tables(tables.iter().map(|&t| TableId(t)), [])
}

fn w(tables: &[u32]) -> Access {
    Access::from_tables([], tables.iter().map(|&t| TableId(t)))
}

fn rw(reads: &[u32], writes: &[u32]) -> Access {
    Access::from_tables(
        reads.iter().map(|&t| TableId(t)),
        writes.iter().map(|&t| TableId(t)),
    )
}

/// Plans `window`, checks its exact edges and that it orders exactly the conflicting pairs.
fn check(window: &[Access], expected: &[(usize, usize)]) {
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
fn assert_closure_matches_conflicts(window: &[Access]) {
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
    check(&[w(&[0]), w(&[1]), r(&[2]), r(&[2]), Access::new()], &[]);
}

#[test]
fn exclusive_waits_for_the_frontier_and_gates_what_follows() {
    check(
        &[
            w(&[0]),
            w(&[1]),
            r(&[0]),
            Access::exclusive(),
            r(&[0]),
            Access::new(),
            w(&[0]),
        ],
        &[(0, 2), (1, 3), (2, 3), (3, 4), (3, 5), (4, 6)],
    );
}

#[test]
fn exclusive_after_exclusive_and_at_the_start() {
    check(
        &[Access::exclusive(), Access::exclusive(), w(&[0])],
        &[(0, 1), (1, 2)],
    );
}

#[test]
fn planner_reuse_forgets_the_previous_window() {
    let mut planner = Planner::new();
    let _ = planner.plan(&[w(&[0]), w(&[5]), Access::exclusive()]);
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

fn access_strategy() -> impl Strategy<Value = Access> {
    (
        proptest::collection::vec(0u32..5, 0..3),
        proptest::collection::vec(0u32..5, 0..3),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(reads, writes, exclusive)| {
            if exclusive {
                Access::exclusive()
            } else {
                rw(&reads, &writes)
            }
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
