//! Random workloads give the same commit log, outcomes and final state for every worker
//! count, and the same as a plain serial loop.

use proptest::prelude::*;

use crate::executors::EXECUTORS;
use crate::model::{
    Behaviour, LaneKind, PARTS, Spec, TABLES, run_scheduler, run_scheduler_on, run_scheduler_with,
    run_serial_loop,
};

fn spec_strategy() -> impl Strategy<Value = Spec> {
    let table = 0..TABLES as u32;
    let part = (table.clone(), 0..PARTS as u64);
    // Whole-table access is rarer than part access, so that windows keep partitioned
    // parallelism for the parts to show.
    (
        (
            proptest::collection::vec(table.clone(), 0..2),
            proptest::collection::vec(table, 0..2),
            proptest::collection::vec(part.clone(), 0..3),
            proptest::collection::vec(part, 0..3),
        ),
        prop::bool::weighted(0.04),
        prop_oneof![
            8 => Just(Behaviour::Ok),
            1 => Just(Behaviour::Fail),
            1 => Just(Behaviour::Panic),
        ],
        0u8..3,
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |((reads, writes, part_reads, part_writes), exclusive, behaviour, emit, pinned)| Spec {
                reads,
                writes,
                part_reads,
                part_writes,
                exclusive,
                behaviour,
                emit,
                depth: 0,
                pinned,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_worker_count_matches_the_serial_loop(
        workload in proptest::collection::vec(spec_strategy(), 0..48),
        max_window in 1usize..40,
    ) {
        let oracle = run_serial_loop(&workload);
        for workers in EXECUTORS {
            let run = run_scheduler(&workload, workers, max_window);
            prop_assert_eq!(&run, &oracle, "workers = {}, max_window = {}", workers, max_window);
            // The pool's path for windows that are one chain, which inline runs skip.
            let run = run_scheduler_with(&workload, workers, max_window, false);
            prop_assert_eq!(&run, &oracle, "workers = {}, max_window = {}, not inline", workers, max_window);
            // The lane driven by this thread while the windows run on another.
            let run = run_scheduler_on(&workload, workers, max_window, true, LaneKind::Driven);
            prop_assert_eq!(&run, &oracle, "workers = {}, max_window = {}, driven lane", workers, max_window);
        }
    }
}
