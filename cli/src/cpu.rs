//! CPU time of this process, for the simulation's progress and `interstice bench`.

use std::time::Duration;

/// CPU time used so far by every thread of this process, from `/proc/self/task/*/schedstat`
/// (Linux, nanoseconds); `None` elsewhere. Beside wall time it tells whether a speedup is lost
/// to idle cores (CPU time flat) or to extra work (CPU time up).
pub fn process_cpu() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(task) = task else { continue };
        // A thread that ended between the listing and the read is simply not counted.
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_spent_cpu_time_and_it_grows() {
        let before = process_cpu().expect("Linux tells");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let after = process_cpu().expect("Linux tells");
        assert!(after > before, "{x}");
    }
}
