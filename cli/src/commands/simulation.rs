//! `interstice example simulation`: seeds `modules/simulation` on a node with `--workers`
//! workers and drives its ticks (one step per region, several ticks submitted together so the
//! scheduler runs the steps in parallel and overlaps consecutive ticks), with live progress on stderr: ticks/s, cells updated/s, how busy
//! the workers are. With `--ticks N` it stops after N ticks and prints a summary (and the
//! world's digest, the same at any worker count); without, the node also serves on its port
//! until Ctrl-C, so the world can be queried while it runs, and the summary comes after it
//! stops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use interstice_abi::Value;
use interstice_runtime::{Node, Outcome, PendingCalls};
use serde_json::json;

use crate::cpu::process_cpu;
use crate::error::{CliError, Result};
use crate::output::{Output, si};

/// `--ticks`, `--size`, `--regions`, `--seed`.
#[derive(Clone, Debug)]
pub struct Options {
    pub ticks: Option<u64>,
    pub width: u32,
    pub height: u32,
    pub regions: u32,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ticks: None,
            width: 512,
            height: 256,
            regions: 32,
            seed: 42,
        }
    }
}

/// Parses `--size WIDTHxHEIGHT`.
pub fn parse_size(text: &str) -> std::result::Result<(u32, u32), String> {
    let (w, h) = text
        .split_once(['x', 'X', '×'])
        .ok_or_else(|| format!("`{text}` is not WIDTHxHEIGHT, e.g. 512x256"))?;
    let side = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("`{s}` in `{text}` is not a number of cells"))
    };
    Ok((side(w)?, side(h)?))
}

/// Ticks submitted in one batch for a world of `cells` cells: up to 16, fewer for big worlds so
/// that a batch stays around 4 M cell updates (tens of milliseconds) and progress keeps moving.
/// A tick's steps never conflict, and a step of the next tick waits only for the three steps
/// it reads, so within a batch the workers move on to the next tick without waiting for the
/// slowest step of this one; between batches they do wait. The outcome is the same as one
/// tick at a time (the order is the submission order).
pub fn ticks_per_batch(cells: u64) -> u64 {
    (4_000_000 / cells.max(1)).clamp(1, 16)
}

/// The calls of `ticks` ticks from tick `first` on (even ticks step `even` into `odd`, odd
/// ticks the other way round): one step per region, in region order, tick after tick.
pub fn tick_calls(
    first: u64,
    ticks: u64,
    regions: u32,
) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    (first..first + ticks)
        .flat_map(|tick| {
            let step = if tick.is_multiple_of(2) {
                "step_even"
            } else {
                "step_odd"
            };
            (0..regions).map(move |r| ("simulation", step, interstice_abi::encode(&Value::U32(r))))
        })
        .collect()
}

/// What a run of ticks measured.
struct Summary {
    ticks: u64,
    elapsed: Duration,
    cpu: Option<Duration>,
}

pub fn run(
    out: Output,
    node: &Arc<Node>,
    options: &Options,
    serve: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let o = options;
    let seeded = node
        .call_reducer_values(
            "simulation",
            "seed",
            &[
                Value::U32(o.width),
                Value::U32(o.height),
                Value::U32(o.regions),
                Value::U64(o.seed),
            ],
        )
        .map_err(|e| CliError::new(format!("cannot seed the simulation: {e}")))?;
    if let Outcome::Failed { reason, .. } = seeded {
        return Err(
            CliError::usage(format!("cannot seed the simulation: {reason}"))
                .hint("--size takes 3x3 to 4096x4096 cells, --regions 1 to the height"),
        );
    }
    let cells = u64::from(o.width) * u64::from(o.height);
    out.event(
        json!({"event": "seeded", "width": o.width, "height": o.height, "cells": cells,
               "regions": o.regions, "seed": o.seed, "workers": node.workers()}),
        format!(
            "a {}×{} world ({cells} cells) in {} regions, on {} worker{}; each tick is one step per region",
            o.width,
            o.height,
            o.regions,
            node.workers(),
            if node.workers() == 1 { "" } else { "s" }
        ),
    );
    match o.ticks {
        Some(ticks) => {
            let summary = drive(out, node, o, Some(ticks), &AtomicBool::new(false))?;
            report(out, node, o, &summary)
        }
        None => {
            let driver = node.clone();
            let options = o.clone();
            let stop = Arc::new(AtomicBool::new(false));
            let stop_driver = stop.clone();
            let ticking = std::thread::Builder::new()
                .name("simulation".into())
                .spawn(move || {
                    // Said at once: the node goes on serving until Ctrl-C.
                    drive(out, &driver, &options, None, &stop_driver)
                        .inspect_err(|e| eprintln!("{e}"))
                        .ok()
                })
                .map_err(|e| CliError::new(format!("cannot start the simulation: {e}")))?;
            let served = serve();
            // The ticks made durable so far are the run's result: stop after the batch in
            // hand, then say what the run came to, as `--ticks` does.
            stop.store(true, Ordering::Relaxed);
            let summary = ticking
                .join()
                .map_err(|_| CliError::new("the simulation's thread panicked"))?;
            served?;
            match summary {
                Some(summary) => report(out, node, o, &summary),
                None => Ok(()),
            }
        }
    }
}

/// Runs ticks (all of them, or until `stop`, which a failed batch sets too) with a progress
/// line on stderr: redrawn in place on a terminal, a plain line every few seconds otherwise
/// (a log file, `nohup`).
fn drive(
    out: Output,
    node: &Node,
    o: &Options,
    ticks: Option<u64>,
    stop: &AtomicBool,
) -> Result<Summary> {
    let bar = match ticks {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    if out.json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let template = match ticks {
        Some(_) => "{bar:30} tick {pos}/{len} · {msg}",
        None => "{spinner} tick {pos} · {msg}",
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let cells = u64::from(o.width) * u64::from(o.height);
    let started = Instant::now();
    let cpu_started = process_cpu();
    // Batch k + 1 runs while batch k is made durable: a durable node's fsync would otherwise
    // leave the workers idle between batches. A batch counts (progress, failures, the summary)
    // only once it is durable; at most one more waits in the channel.
    let (send, receive) = mpsc::sync_channel::<(u64, u64, PendingCalls)>(1);
    let plain = !out.json && bar.is_hidden();
    let durable = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let result = acknowledge(node, o, &bar, plain, receive, cpu_started);
            // Ended, at the last batch or at a failure: no more batches are wanted.
            stop.store(true, Ordering::Relaxed);
            result
        });
        let mut tick = 0u64;
        while ticks.is_none_or(|n| tick < n) && !stop.load(Ordering::Relaxed) {
            let per_batch = ticks_per_batch(cells);
            let batch = ticks.map_or(per_batch, |n| (n - tick).min(per_batch));
            let calls = tick_calls(tick, batch, o.regions);
            let pending = node
                .call_many_pipelined(&calls)
                .map_err(|e| CliError::new(format!("ticks {tick}..{}: {e}", tick + batch)))?;
            if send.send((tick, batch, pending)).is_err() {
                // The waiter stopped at a failure, which its result reports.
                break;
            }
            tick += batch;
        }
        drop(send);
        waiter
            .join()
            .map_err(|_| CliError::new("the simulation's progress thread panicked"))?
    })?;
    bar.finish_and_clear();
    Ok(Summary {
        ticks: durable,
        elapsed: started.elapsed(),
        cpu: process_cpu().zip(cpu_started).map(|(b, a)| b - a),
    })
}

/// How often the progress goes out as a plain line when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Waits for each batch `(first tick, ticks, calls)` to be durable, in order, and reports
/// it: a failed call ends the run with its tick; otherwise the progress line moves (with
/// `plain`, a line is printed every [`PLAIN_EVERY`] instead). Returns the ticks made durable.
fn acknowledge(
    node: &Node,
    o: &Options,
    bar: &ProgressBar,
    plain: bool,
    batches: mpsc::Receiver<(u64, u64, PendingCalls)>,
    cpu_started: Option<Duration>,
) -> Result<u64> {
    let cells = u64::from(o.width) * u64::from(o.height);
    let every = if plain {
        PLAIN_EVERY
    } else {
        Duration::from_millis(500)
    };
    let mut shown = (Instant::now(), 0u64, cpu_started);
    let mut durable = 0u64;
    for (first, batch, pending) in batches {
        let outcomes = pending
            .wait()
            .map_err(|e| CliError::new(format!("ticks {first}..{}: {e}", first + batch)))?;
        if let Some((i, Outcome::Failed { reason, .. })) =
            outcomes.iter().enumerate().find(|(_, o)| !o.is_committed())
        {
            let failed = first + i as u64 / u64::from(o.regions.max(1));
            return Err(CliError::new(format!("tick {failed} failed: {reason}")));
        }
        durable = first + batch;
        bar.set_position(durable);
        let now = Instant::now();
        let since = now - shown.0;
        if since >= every {
            let done = (durable - shown.1) as f64;
            let secs = since.as_secs_f64();
            let cpu = process_cpu();
            let busy = match (cpu, shown.2) {
                (Some(now), Some(then)) => format!(
                    " · CPU {:.0}% of {} worker{}",
                    (now - then).as_secs_f64() / secs * 100.0,
                    node.workers(),
                    if node.workers() == 1 { "" } else { "s" }
                ),
                _ => String::new(),
            };
            let rate = format!(
                "{:.1} ticks/s · {} cells/s{busy}",
                done / secs,
                si(done * cells as f64 / secs)
            );
            if plain {
                eprintln!("tick {durable} · {rate}");
            }
            bar.set_message(rate);
            shown = (now, durable, cpu);
        }
    }
    Ok(durable)
}

fn report(out: Output, node: &Node, o: &Options, s: &Summary) -> Result<()> {
    // After an even number of ticks the world is in `even` again.
    let digest = match node.call_query("simulation", "digest", &[Value::Bool(s.ticks % 2 == 1)]) {
        Ok(Value::U64(d)) => d,
        Ok(other) => {
            return Err(CliError::new(format!(
                "the digest query returned {other:?}"
            )));
        }
        Err(e) => return Err(CliError::new(format!("cannot read the digest: {e}"))),
    };
    let cells = u64::from(o.width) * u64::from(o.height);
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let per_s = s.ticks as f64 / secs;
    let cpu = s.cpu.map(|c| c.as_secs_f64() / secs * 100.0);
    let stats = node.stats();
    out.done(
        json!({"ticks": s.ticks, "seconds": secs, "ticks_per_s": per_s,
               "cells_per_s": per_s * cells as f64, "workers": node.workers(),
               "cpu_percent": cpu, "windows": stats.windows, "invocations": stats.invocations,
               "digest": format!("{digest:016x}")}),
        || {
            format!(
                "{} ticks in {secs:.2} s: {per_s:.1} ticks/s, {} cells/s on {} worker{}{}\n{} invocations in {} scheduler windows\ndigest {digest:016x} (the same at any worker count)",
                s.ticks,
                si(per_s * cells as f64),
                node.workers(),
                if node.workers() == 1 { "" } else { "s" },
                cpu.map(|c| format!(", CPU {c:.0}%")).unwrap_or_default(),
                stats.invocations,
                stats.windows,
            )
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_bad_ones_say_why() {
        assert_eq!(parse_size("512x256"), Ok((512, 256)));
        assert_eq!(parse_size("64×48"), Ok((64, 48)));
        assert!(parse_size("512").unwrap_err().contains("WIDTHxHEIGHT"));
        assert!(parse_size("ax3").unwrap_err().contains("not a number"));
    }

    #[test]
    fn a_batch_is_whole_ticks_in_order_and_smaller_for_big_worlds() {
        let calls = tick_calls(3, 2, 2);
        let region = |r: u32| interstice_abi::encode(&Value::U32(r));
        let names: Vec<(&str, Vec<u8>)> = calls
            .into_iter()
            .map(|(_, step, args)| (step, args))
            .collect();
        // Tick 3 is odd (reads `odd`), tick 4 even; each has every region, in order.
        assert_eq!(
            names,
            [
                ("step_odd", region(0)),
                ("step_odd", region(1)),
                ("step_even", region(0)),
                ("step_even", region(1))
            ]
        );
        assert_eq!(ticks_per_batch(512 * 256), 16);
        assert_eq!(ticks_per_batch(1024 * 1024), 3);
        assert_eq!(ticks_per_batch(4096 * 4096), 1);
    }
}
