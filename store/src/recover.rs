//! Recovery: the newest valid snapshot, then the log after it.
//!
//! Committed history is never discarded silently. Only the torn tail of the last segment (an
//! incomplete final write) is cut without being asked; any other damage makes `Store::open`
//! fail without changing anything on disk, unless `StoreConfig::repair` asks to discard it.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RawRwLock;
use parking_lot::lock_api::ArcRwLockWriteGuard;

use crate::error::{Result, StoreError};
use crate::files;
use crate::log::{self, LogOp, Parsed, SEGMENT_MAGIC};
use crate::snapshot;
use crate::store::{Catalog, Lsn, empty_catalog};
use crate::table::{CatalogEntry, Table, TableData, TableId};

/// What recovery found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The lsn covered by the snapshot that was loaded, if any.
    pub snapshot_lsn: Option<Lsn>,
    /// Snapshots that failed their checks, with the reason. Recovery fell back on an older
    /// snapshot (or on the log from its start), which loses nothing; they were renamed to
    /// `*.corrupt`.
    pub snapshots_rejected: Vec<(PathBuf, String)>,
    /// Log records applied on top of the snapshot.
    pub records_replayed: u64,
    /// Row mutations in those records.
    pub mutations_replayed: u64,
    /// The last lsn recovered.
    pub last_lsn: Lsn,
    /// The largest [`CommitMeta::seq`](crate::CommitMeta::seq) of any transaction record
    /// recovered (from the log, or remembered by the snapshot when the log after it is empty);
    /// `None` when no transaction was ever logged. Catalog records don't count.
    pub last_seq: Option<u64>,
    /// Bytes cut off the log: the torn tail of the last segment, or (with
    /// [`StoreConfig::repair`](crate::StoreConfig::repair)) everything from the damage on,
    /// later segments included.
    pub bytes_truncated: u64,
    /// What was cut, if anything.
    pub corruption: Option<Corruption>,
    /// Files renamed to `*.corrupt` rather than deleted: rejected snapshots, segments after a
    /// repaired corruption, and the bytes a repair cut off a segment.
    pub moved_aside: Vec<PathBuf>,
}

impl RecoveryReport {
    /// One line per thing recovery cut, discarded or rejected, for the node's log (at warning
    /// level: nothing acknowledged was lost unless a line says "repair"). Empty when the
    /// directory was intact.
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .snapshots_rejected
            .iter()
            .map(|(path, reason)| {
                format!(
                    "snapshot {} rejected ({reason}); recovered from an older snapshot and the log instead",
                    path.display()
                )
            })
            .collect();
        if let Some(c) = &self.corruption {
            out.push(c.to_string());
        }
        out
    }
}

/// The log after a point of damage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Loss {
    /// Bytes from the damage to the end of its file, plus every later segment.
    pub bytes: u64,
    /// Checksummed records found in those bytes (a record the damage hit is not counted).
    pub records: u64,
    /// Segment files after the damaged one.
    pub segments: u64,
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes holding {} intact records, in this file and {} later segment files",
            self.bytes, self.records, self.segments
        )
    }
}

/// Damage found in the log, and what recovery cut because of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    pub file: PathBuf,
    /// Where the first record that could not be used starts.
    pub offset: u64,
    pub reason: String,
    /// Bytes removed from `file` (truncated, or the whole file set aside).
    pub bytes_cut: u64,
    /// Everything discarded from the damage on, later segments included.
    pub lost: Loss,
    /// `false`: the torn tail of the last segment (an incomplete final write, never
    /// acknowledged as durable), cut automatically. `true`: damage elsewhere, discarded because
    /// [`StoreConfig::repair`](crate::StoreConfig::repair) asked for it.
    pub repaired: bool,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.repaired {
            write!(
                f,
                "repair discarded the log from byte {} of {} ({}): {}; the discarded bytes are kept as *.corrupt files",
                self.offset,
                self.file.display(),
                self.reason,
                self.lost
            )
        } else {
            write!(
                f,
                "cut a torn write of {} bytes at the end of the log, from byte {} of {} ({})",
                self.bytes_cut,
                self.offset,
                self.file.display(),
                self.reason
            )
        }
    }
}

pub(crate) struct Recovered {
    pub catalog: Catalog,
    pub report: RecoveryReport,
    pub next_lsn: u64,
}

/// Where replay could not go on.
#[derive(Clone)]
struct Problem {
    seg: usize,
    offset: usize,
    reason: String,
    /// The bytes at `offset` are no checksummed record, as a torn write leaves them.
    unframed: bool,
    /// A checksummed record with the wrong lsn: a segment (or the snapshot covering it) is
    /// missing.
    gap: bool,
    /// The record was half applied when it failed, so the catalog is not the prefix's.
    dirty: bool,
}

impl Problem {
    fn new(seg: usize, offset: usize, reason: String) -> Self {
        Problem {
            seg,
            offset,
            reason,
            unframed: false,
            gap: false,
            dirty: false,
        }
    }
}

/// The state after replaying as far as the log allows.
struct Run {
    catalog: Catalog,
    report: RecoveryReport,
    snap_lsn: u64,
    last: u64,
    problem: Option<Problem>,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
    let what = what.into();
    move |e| StoreError::io(what, e)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(io_err(format!("reading {}", path.display())))
}

/// Loads the newest valid snapshot and replays the log after it; see the module docs for
/// what it cuts and what it refuses.
pub(crate) fn recover(dir: &Path, repair: bool) -> Result<Recovered> {
    for entry in fs::read_dir(dir).map_err(io_err(format!("listing {}", dir.display())))? {
        let path = entry.map_err(io_err("listing the store directory"))?.path();
        if path.extension().is_some_and(|e| e == "tmp") {
            fs::remove_file(&path).map_err(io_err(format!("removing {}", path.display())))?;
        }
    }
    let snaps = files::list_files(dir, "snap-", ".snap").map_err(io_err("listing snapshots"))?;
    let segments =
        files::list_files(dir, "log-", ".seg").map_err(io_err("listing log segments"))?;
    let mut run = replay_all(&snaps, &segments, None)?;
    let mut repaired = false;
    if let Some(problem) = run.problem.take() {
        let torn = problem.unframed
            && problem.seg + 1 == segments.len()
            && log::next_record(
                &read(&segments[problem.seg].1)?,
                problem.offset + 1,
                run.last + 1,
            )
            .is_none();
        if torn {
            let lost = Loss {
                bytes: file_len(&segments[problem.seg].1)?.saturating_sub(problem.offset as u64),
                records: 0,
                segments: 0,
            };
            cut(dir, &segments, &problem, lost, false, &mut run.report)?;
        } else {
            let lost = loss_after(&segments, &problem, run.last + 1)?;
            if !repair {
                return Err(refusal(&run, &segments, &problem, lost));
            }
            if problem.dirty {
                // The failed record was half applied: replay again, stopping before it.
                run = replay_all(&snaps, &segments, Some(&problem))?;
            }
            cut(dir, &segments, &problem, lost, true, &mut run.report)?;
            repaired = true;
        }
    }
    // A damaged snapshot that covered more than the log holds had the only copy of the rest.
    for (lsn, path) in &snaps {
        let Some((_, reason)) = run
            .report
            .snapshots_rejected
            .iter()
            .find(|(p, _)| p == path)
        else {
            continue;
        };
        if *lsn > run.last && !repair {
            return Err(StoreError::Corrupt {
                file: path.clone(),
                offset: 0,
                reason: format!(
                    "the snapshot is damaged ({reason}); it covered the log up to lsn {lsn}, but the log ends at lsn {}",
                    run.last
                ),
                would_lose: Loss {
                    bytes: file_len(path)?,
                    records: lsn - run.last,
                    segments: 0,
                },
            });
        }
    }
    for (path, _) in &run.report.snapshots_rejected {
        let aside =
            files::move_aside(path).map_err(io_err(format!("moving {} aside", path.display())))?;
        run.report.moved_aside.push(aside);
    }
    if repaired {
        // History files of discarded lsns would be overwritten by the new log's compaction.
        let hist = files::list_files(dir, "log-", ".hist").map_err(io_err("listing history"))?;
        for (first, path) in hist {
            if first > run.last {
                let aside = files::move_aside(&path)
                    .map_err(io_err(format!("moving {} aside", path.display())))?;
                run.report.moved_aside.push(aside);
            }
        }
    }
    if !run.report.moved_aside.is_empty() {
        files::sync_dir(dir).map_err(io_err("syncing the store directory"))?;
    }
    run.report.last_lsn = Lsn(run.last);
    run.catalog.publish();
    Ok(Recovered {
        catalog: run.catalog,
        report: run.report,
        next_lsn: run.last + 1,
    })
}

/// The error for damage recovery will not discard on its own.
fn refusal(run: &Run, segments: &[(u64, PathBuf)], problem: &Problem, lost: Loss) -> StoreError {
    // The log restarts after a gap at its very beginning: the snapshot that covered the gap
    // was rejected and no older one has a complete log after it.
    if problem.gap
        && run.last == run.snap_lsn
        && let Some((path, reason)) = run.report.snapshots_rejected.first()
    {
        return StoreError::Corrupt {
            file: path.clone(),
            offset: 0,
            reason: format!(
                "the snapshot is damaged ({reason}), and no older snapshot with a complete log after it is left ({})",
                problem.reason
            ),
            would_lose: lost,
        };
    }
    StoreError::Corrupt {
        file: segments[problem.seg].1.clone(),
        offset: problem.offset as u64,
        reason: problem.reason.clone(),
        would_lose: lost,
    }
}

fn file_len(path: &Path) -> Result<u64> {
    Ok(fs::metadata(path)
        .map_err(io_err(format!("reading the size of {}", path.display())))?
        .len())
}

/// What discarding the log from `problem` on would lose.
fn loss_after(segments: &[(u64, PathBuf)], problem: &Problem, min_lsn: u64) -> Result<Loss> {
    let bytes = read(&segments[problem.seg].1)?;
    let mut loss = Loss {
        bytes: (bytes.len().saturating_sub(problem.offset)) as u64,
        records: log::count_records(&bytes, problem.offset, min_lsn),
        segments: (segments.len() - problem.seg - 1) as u64,
    };
    for (_, path) in &segments[problem.seg + 1..] {
        let bytes = read(path)?;
        loss.bytes += bytes.len() as u64;
        loss.records += log::count_records(&bytes, 0, min_lsn);
    }
    Ok(loss)
}

/// Cuts the log at `problem`: truncates its segment there (or sets the segment aside when
/// nothing valid precedes it) and sets every later segment aside. A repair keeps the bytes it
/// cuts in a `*.corrupt` file; a torn tail is garbage and is simply cut.
fn cut(
    dir: &Path,
    segments: &[(u64, PathBuf)],
    problem: &Problem,
    lost: Loss,
    repaired: bool,
    report: &mut RecoveryReport,
) -> Result<()> {
    let path = &segments[problem.seg].1;
    let len = file_len(path)?;
    let offset = problem.offset as u64;
    let bytes_cut = len.saturating_sub(offset);
    let aside_err = |p: &Path| io_err(format!("moving {} aside", p.display()));
    if problem.offset <= SEGMENT_MAGIC.len() {
        report
            .moved_aside
            .push(files::move_aside(path).map_err(aside_err(path))?);
    } else {
        if repaired {
            let bytes = read(path)?;
            let tail = files::aside_name(path, &format!(".from-{offset}"));
            let mut f = files::owner_only()
                .create_new(true)
                .write(true)
                .open(&tail)
                .map_err(io_err(format!("creating {}", tail.display())))?;
            f.write_all(&bytes[problem.offset..])
                .and_then(|()| f.sync_all())
                .map_err(io_err(format!("writing {}", tail.display())))?;
            report.moved_aside.push(tail);
        }
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_err(format!("opening {}", path.display())))?;
        f.set_len(offset)
            .and_then(|()| f.sync_all())
            .map_err(io_err(format!("truncating {}", path.display())))?;
    }
    for (_, later) in &segments[problem.seg + 1..] {
        report.bytes_truncated += file_len(later)?;
        report
            .moved_aside
            .push(files::move_aside(later).map_err(aside_err(later))?);
    }
    files::sync_dir(dir).map_err(io_err("syncing the store directory"))?;
    report.bytes_truncated += bytes_cut;
    report.corruption = Some(Corruption {
        file: path.clone(),
        offset,
        reason: problem.reason.clone(),
        bytes_cut,
        lost,
        repaired,
    });
    Ok(())
}

/// Loads the newest snapshot that checks out and replays the log after it, up to the first
/// record it cannot use (or up to `stop`).
fn replay_all(
    snaps: &[(u64, PathBuf)],
    segments: &[(u64, PathBuf)],
    stop: Option<&Problem>,
) -> Result<Run> {
    let mut report = RecoveryReport::default();
    let mut catalog = empty_catalog();
    let mut snap_lsn = 0;
    for (_, path) in snaps.iter().rev() {
        match snapshot::load(path) {
            Ok(loaded) => {
                snap_lsn = loaded.lsn;
                report.last_seq = loaded.last_seq;
                catalog.next_id = loaded.next_table_id;
                for t in loaded.tables {
                    catalog.by_name.insert(t.name.clone(), t.id);
                    catalog.by_id.insert(t.id, t);
                }
                report.snapshot_lsn = Some(Lsn(loaded.lsn));
                break;
            }
            Err(reason) => report.snapshots_rejected.push((path.clone(), reason)),
        }
    }
    let mut last = snap_lsn;
    let mut problem = None;
    'segments: for (i, (_, path)) in segments.iter().enumerate() {
        // Skip segments entirely covered by the snapshot.
        if segments
            .get(i + 1)
            .is_some_and(|(next_first, _)| *next_first <= snap_lsn + 1)
        {
            continue;
        }
        let bytes = read(path)?;
        if bytes.get(..SEGMENT_MAGIC.len()) != Some(&SEGMENT_MAGIC[..]) {
            let mut p = Problem::new(i, 0, "bad segment header".to_owned());
            p.unframed = true;
            problem = Some(p);
            break;
        }
        let mut offset = SEGMENT_MAGIC.len();
        // Reused by every record of the segment (its steps borrow the segment's bytes).
        let mut steps = Vec::new();
        loop {
            if let Some(stop) = stop
                && (stop.seg, stop.offset) == (i, offset)
            {
                problem = Some(Problem::new(i, offset, stop.reason.clone()));
                break 'segments;
            }
            let (rec, next) = match log::parse_record(&bytes, offset) {
                Parsed::End => break,
                Parsed::Bad(reason) => {
                    let mut p = Problem::new(i, offset, reason);
                    p.unframed = true;
                    problem = Some(p);
                    break 'segments;
                }
                Parsed::Record(rec, next) => (rec, next),
            };
            if rec.lsn <= snap_lsn && last == snap_lsn {
                offset = next;
                continue;
            }
            if rec.lsn != last + 1 {
                let mut p = Problem::new(
                    i,
                    offset,
                    format!(
                        "expected lsn {}, found {}: the log segments (or the snapshot) holding the records in between are missing",
                        last + 1,
                        rec.lsn
                    ),
                );
                p.gap = true;
                problem = Some(p);
                break 'segments;
            }
            // Frame the whole record before applying any of it.
            if let Err(reason) = parse_ops(rec.ops, &mut steps) {
                problem = Some(Problem::new(i, offset, reason));
                break 'segments;
            }
            let catalog_record = matches!(steps.first(), Some(Step::Create(..) | Step::Drop(_)));
            match replay(&mut catalog, &mut steps) {
                Ok(n) => report.mutations_replayed += n,
                Err(reason) => {
                    let mut p = Problem::new(i, offset, reason);
                    p.dirty = true;
                    problem = Some(p);
                    break 'segments;
                }
            }
            report.records_replayed += 1;
            if !catalog_record {
                report.last_seq = Some(report.last_seq.map_or(rec.seq, |s| s.max(rec.seq)));
            }
            last = rec.lsn;
            offset = next;
        }
    }
    Ok(Run {
        catalog,
        report,
        snap_lsn,
        last,
        problem,
    })
}

/// One op of a record, framed; catalog entries decoded.
enum Step<'a> {
    Create(TableId, CatalogEntry),
    Drop(TableId),
    /// A row or counter op.
    Data(LogOp<'a>),
}

/// Frames every op of a record (catalog records, seq 0, hold exactly one create or drop op;
/// transaction records only row and counter ops).
fn parse_ops<'a>(ops: &'a [u8], out: &mut Vec<Step<'a>>) -> Result<(), String> {
    out.clear();
    for op in log::ops(ops) {
        let (op, _) = op?;
        out.push(match op {
            LogOp::CreateTable(id, blob) => Step::Create(
                id,
                postcard::from_bytes(blob).map_err(|e| format!("catalog entry: {e}"))?,
            ),
            LogOp::DropTable(id) => Step::Drop(id),
            op => Step::Data(op),
        });
    }
    Ok(())
}

/// Applies the ops of one record. Returns the number of row mutations.
fn replay(catalog: &mut Catalog, ops: &mut Vec<Step<'_>>) -> Result<u64, String> {
    let mut n = 0;
    // The table of the previous mutation, write-locked: a record's ops usually come in runs
    // on one table, so a run takes the lock once. Recovery runs alone, so nobody waits.
    let mut cached: Option<(Arc<Table>, ArcRwLockWriteGuard<RawRwLock, TableData>)> = None;
    let inserts = ops
        .iter()
        .filter(|s| matches!(s, Step::Data(LogOp::Insert(..))))
        .count();
    for step in ops.drain(..) {
        let op = match step {
            Step::Create(id, entry) => {
                cached = None;
                if id.0 < catalog.next_id || catalog.by_id.contains_key(&id) {
                    return Err(format!("table {id} is created twice"));
                }
                let t = snapshot::table_from_entry(id, entry)?;
                catalog.next_id = id.0 + 1;
                catalog.by_name.insert(t.name.clone(), id);
                catalog.by_id.insert(id, Arc::new(t));
                continue;
            }
            Step::Drop(id) => {
                cached = None;
                if let Some(t) = catalog.by_id.remove(&id) {
                    catalog.by_name.remove(&t.name);
                }
                continue;
            }
            Step::Data(op) => op,
        };
        let id = op.table();
        if cached.as_ref().is_none_or(|(t, _)| t.id != id) {
            cached = None;
            match catalog.by_id.get(&id) {
                Some(t) => {
                    let mut data = t.data.write_arc();
                    if inserts > 1 {
                        data.by_pk.reserve(inserts);
                    }
                    cached = Some((t.clone(), data));
                }
                // A table dropped later in the log; ids are never reused. (A counter of an
                // unknown table is ignored, as it always was.)
                None if id.0 < catalog.next_id || matches!(op, LogOp::Counter(..)) => {}
                None => return Err(format!("mutation of unknown table {id}")),
            }
        }
        match op {
            LogOp::Insert(_, bytes) | LogOp::Update(_, bytes) | LogOp::Delete(_, bytes) => {
                n += 1;
                let Some((t, data)) = cached.as_mut() else {
                    continue;
                };
                match op {
                    LogOp::Insert(..) => {
                        let row = snapshot::decode_row(t, bytes)?;
                        if !data.insert(t, row) {
                            return Err(format!("insert of an existing key into `{}`", t.name));
                        }
                    }
                    LogOp::Update(..) => {
                        let row = snapshot::decode_row(t, bytes)?;
                        if data.replace(t, row).is_none() {
                            return Err(format!("update of a missing key in `{}`", t.name));
                        }
                    }
                    _ => {
                        let key = interstice_abi::decode(bytes, &t.types[t.pk], &t.registry)
                            .map_err(|e| format!("key: {e}"))?;
                        if data.remove(t, &key).is_none() {
                            return Err(format!("delete of a missing key in `{}`", t.name));
                        }
                    }
                }
            }
            LogOp::Counter(_, col, value) => {
                if let Some((t, data)) = cached.as_mut()
                    && let Some(k) = t.auto_inc.iter().position(|&c| c == col)
                {
                    data.counters[k] = data.counters[k].max(value);
                }
            }
            LogOp::CreateTable(..) | LogOp::DropTable(_) => {}
        }
    }
    Ok(n)
}
