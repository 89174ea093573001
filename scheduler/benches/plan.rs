//! Planning cost per invocation: windows of 256 and 1024 invocations declaring four tables
//! each, at several conflict rates.
//!
//! Run with `cargo bench -p interstice-scheduler --bench plan`; criterion reports time per
//! window, and the throughput line (elements/s) gives invocations per second.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use interstice_scheduler::{Access, Plan, Planner, TableId};
use std::hint::black_box;
use std::time::Duration;

/// A window of `n` invocations declaring four tables each (two reads, two writes). With
/// probability `conflict` a table comes from a small hot set, otherwise from a large space,
/// so the rate sets how dense the DAG gets.
fn window(n: usize, conflict: f64) -> Vec<Access> {
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let threshold = (conflict * f64::from(u32::MAX)) as u64;
    (0..n)
        .map(|_| {
            let mut table = || {
                let r = next();
                if (r & 0xFFFF_FFFF) < threshold {
                    TableId((r >> 32) as u32 % 4)
                } else {
                    TableId(4 + (r >> 32) as u32 % 4096)
                }
            };
            let (r1, r2, w1, w2) = (table(), table(), table(), table());
            Access::from_tables([r1, r2], [w1, w2])
        })
        .collect()
}

fn plan(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for n in [256usize, 1024] {
        for conflict in [0.0, 0.1, 0.5, 1.0] {
            let accesses = window(n, conflict);
            let mut planner = Planner::new();
            let mut out = Plan::default();
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(
                BenchmarkId::new(
                    format!("window{n}"),
                    format!("conflict{}", (conflict * 100.0) as u32),
                ),
                &accesses,
                |b, accesses| {
                    b.iter(|| {
                        planner.plan_into(black_box(accesses), &mut out);
                        black_box(out.edge_count())
                    });
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, plan);
criterion_main!(benches);
