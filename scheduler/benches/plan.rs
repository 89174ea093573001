//! Planning cost per invocation: windows of 256 and 1024 invocations declaring four tables
//! each, at several conflict rates; and a partitioned window: 1024 invocations each writing
//! one of 64 parts of one table and reading both neighbouring parts.
//!
//! Run with `cargo bench -p interstice-scheduler --bench plan`; criterion reports time per
//! window, and the throughput line (elements/s) gives invocations per second.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use interstice_scheduler::{AccessSet, Part, Plan, Planner, ResourceId};
use std::hint::black_box;
use std::time::Duration;

/// A window of `n` invocations declaring four tables each (two reads, two writes). With
/// probability `conflict` a table comes from a small hot set, otherwise from a large space,
/// so the rate sets how dense the DAG gets.
fn window(n: usize, conflict: f64) -> Vec<AccessSet> {
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
                    ResourceId((r >> 32) as u32 % 4)
                } else {
                    ResourceId(4 + (r >> 32) as u32 % 4096)
                }
            };
            let (r1, r2, w1, w2) = (table(), table(), table(), table());
            AccessSet::from_tables([r1, r2], [w1, w2])
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

/// A simulation step over a ring of 64 regions of one table, 16 steps of each region.
fn regions(n: usize) -> Vec<AccessSet> {
    const REGIONS: u64 = 64;
    let cells = ResourceId(0);
    (0..n as u64)
        .map(|i| {
            let r = i % REGIONS;
            AccessSet::new()
                .write_part(cells, Part(r))
                .read_part(cells, Part((r + REGIONS - 1) % REGIONS))
                .read_part(cells, Part((r + 1) % REGIONS))
        })
        .collect()
}

fn plan_parts(c: &mut Criterion) {
    const N: usize = 1024;
    let mut group = c.benchmark_group("plan");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(N as u64));
    let accesses = regions(N);
    let mut planner = Planner::new();
    let mut out = Plan::default();
    group.bench_with_input(
        BenchmarkId::new(format!("window{N}"), "parts64"),
        &accesses,
        |b, accesses| {
            b.iter(|| {
                planner.plan_into(black_box(accesses), &mut out);
                black_box(out.edge_count())
            });
        },
    );
    group.finish();
}

criterion_group!(benches, plan, plan_parts);
criterion_main!(benches);
