//! Snapshots (write, load) and compaction of the log segments they cover.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use interstice_abi::{Persistence, TypeRegistry};

use crate::bytes::{Reader, put_varint};
use crate::files;
use crate::log::{self, LogOp, Parsed, SEGMENT_MAGIC};
use crate::table::{CatalogEntry, Row, Table, TableId};

/// The current snapshot format: version 1 plus the last transaction seq after the table id.
pub(crate) const SNAPSHOT_MAGIC: [u8; 8] = *b"ISTSNP02";
/// The first format, still read (it has no last seq).
pub(crate) const SNAPSHOT_MAGIC_V1: [u8; 8] = *b"ISTSNP01";

pub(crate) fn snapshot_name(lsn: u64) -> String {
    format!("snap-{lsn:020}.snap")
}

/// The state to persist, captured under the store's gate: `Arc` clones of rows, no encoding.
pub(crate) struct Capture {
    pub lsn: u64,
    /// The largest seq of a transaction record up to `lsn`.
    pub last_seq: Option<u64>,
    pub next_table_id: u32,
    pub tables: Vec<CapturedTable>,
}

pub(crate) struct CapturedTable {
    pub id: TableId,
    pub entry: CatalogEntry,
    pub counters: Vec<i128>,
    pub rows: Vec<Row>,
}

/// Writes `tmp`, fsyncs it, renames it into place and fsyncs the directory.
pub(crate) fn write(dir: &Path, capture: &Capture) -> io::Result<PathBuf> {
    let path = dir.join(snapshot_name(capture.lsn));
    let tmp = dir.join(format!("{}.tmp", snapshot_name(capture.lsn)));
    let file = files::owner_only()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)?;
    let mut w = CrcWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        crc: crc32fast::Hasher::new(),
    };
    w.write_all(&SNAPSHOT_MAGIC)?;
    w.write_all(&capture.lsn.to_le_bytes())?;
    w.write_all(&capture.next_table_id.to_le_bytes())?;
    match capture.last_seq {
        None => w.write_all(&[0])?,
        Some(seq) => {
            w.write_all(&[1])?;
            w.write_all(&seq.to_le_bytes())?;
        }
    }
    let mut scratch = Vec::new();
    put_varint(&mut scratch, capture.tables.len() as u64);
    w.write_all(&scratch)?;
    for t in &capture.tables {
        scratch.clear();
        scratch.extend_from_slice(&t.id.0.to_le_bytes());
        let entry = postcard::to_stdvec(&t.entry).map_err(io::Error::other)?;
        put_varint(&mut scratch, entry.len() as u64);
        scratch.extend_from_slice(&entry);
        put_varint(&mut scratch, t.counters.len() as u64);
        for c in &t.counters {
            scratch.extend_from_slice(&c.to_le_bytes());
        }
        scratch.extend_from_slice(&(t.rows.len() as u64).to_le_bytes());
        w.write_all(&scratch)?;
        let mut row_bytes = Vec::new();
        for row in &t.rows {
            row_bytes.clear();
            log::encode_row(row, &mut row_bytes);
            scratch.clear();
            put_varint(&mut scratch, row_bytes.len() as u64);
            w.write_all(&scratch)?;
            w.write_all(&row_bytes)?;
        }
    }
    let crc = w.crc.clone().finalize();
    let mut file = w.inner.into_inner().map_err(|e| e.into_error())?;
    file.write_all(&crc.to_le_bytes())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, &path)?;
    files::sync_dir(dir)?;
    Ok(path)
}

struct CrcWriter<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A snapshot read back and checked.
pub(crate) struct Loaded {
    pub lsn: u64,
    pub last_seq: Option<u64>,
    pub next_table_id: u32,
    pub tables: Vec<Arc<Table>>,
}

/// Loads a snapshot; any inconsistency is an error naming what is wrong.
pub(crate) fn load(path: &Path) -> Result<Loaded, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() < SNAPSHOT_MAGIC.len() + 4 {
        return Err("too short to be a snapshot".to_owned());
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != stored {
        return Err("checksum mismatch".to_owned());
    }
    let mut r = Reader::new(body);
    let magic = r.array::<8>()?;
    if magic != SNAPSHOT_MAGIC && magic != SNAPSHOT_MAGIC_V1 {
        return Err("not a snapshot (bad magic)".to_owned());
    }
    let lsn = r.u64()?;
    let next_table_id = r.u32()?;
    let last_seq = if magic == SNAPSHOT_MAGIC_V1 {
        None
    } else {
        match r.u8()? {
            0 => None,
            1 => Some(r.u64()?),
            tag => return Err(format!("invalid last seq tag {tag}")),
        }
    };
    let n_tables = r.varint()?;
    let mut tables = Vec::new();
    for _ in 0..n_tables {
        let id = TableId(r.u32()?);
        let entry: CatalogEntry =
            postcard::from_bytes(r.blob()?).map_err(|e| format!("table {id}: catalog: {e}"))?;
        let table = table_from_entry(id, entry)?;
        let n_counters = r.varint()?;
        let mut counters = Vec::new();
        for _ in 0..n_counters {
            counters.push(r.i128()?);
        }
        if counters.len() != table.auto_inc.len() {
            return Err(format!("table {id}: wrong number of auto_inc counters"));
        }
        let n_rows = r.u64()?;
        {
            let mut data = table.data.write();
            for _ in 0..n_rows {
                let row = decode_row(&table, r.blob()?)?;
                if !data.insert(&table, row) {
                    return Err(format!(
                        "table `{}`: a primary key appears twice",
                        table.name
                    ));
                }
            }
            for (c, v) in data.counters.iter_mut().zip(counters) {
                *c = (*c).max(v);
            }
        }
        tables.push(Arc::new(table));
    }
    if !r.is_empty() {
        return Err("trailing bytes".to_owned());
    }
    Ok(Loaded {
        lsn,
        last_seq,
        next_table_id,
        tables,
    })
}

/// Rebuilds a table from its persisted catalog entry, checking it as a new schema would be.
pub(crate) fn table_from_entry(id: TableId, entry: CatalogEntry) -> Result<Table, String> {
    let registry =
        TypeRegistry::new(entry.types.clone()).map_err(|e| format!("table {id}: types: {e}"))?;
    entry
        .schema
        .validate(&registry)
        .map_err(|e| format!("table {id}: {e}"))?;
    Ok(Table::new(id, entry, Arc::new(registry)))
}

pub(crate) fn decode_row(table: &Table, bytes: &[u8]) -> Result<Row, String> {
    crate::table::decode_row(bytes, &table.types, &table.registry)
        .map_err(|e| format!("table `{}`: row: {e}", table.name))
}

/// Keeps the two newest snapshots (the newest, and the one to fall back on) and turns the log
/// segments the older of them covers into history: Logged-table mutations and catalog changes
/// stay (as `.hist` files), Stateful-table mutations go.
///
/// Compaction trails by one snapshot on purpose: falling back to the previous snapshot needs the
/// complete log after it.
pub(crate) fn retire(dir: &Path, persistence: &HashMap<TableId, Persistence>) -> io::Result<()> {
    let snaps = files::list_files(dir, "snap-", ".snap")?;
    if snaps.len() > 2 {
        for (_, path) in &snaps[..snaps.len() - 2] {
            fs::remove_file(path)?;
        }
    }
    if snaps.len() < 2 {
        return Ok(());
    }
    let covered = snaps[snaps.len() - 2].0;
    let segments = files::list_files(dir, "log-", ".seg")?;
    let mut changed = false;
    for pair in segments.windows(2) {
        let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
        // Every record of this segment precedes the next segment's first.
        if *next_first > covered + 1 {
            break;
        }
        compact_segment(path, persistence)?;
        changed = true;
    }
    if changed {
        files::sync_dir(dir)?;
    }
    Ok(())
}

/// Rewrites one segment as a history file, record by record: a segment is up to
/// `segment_max_bytes` (64 MiB by default) and reading it whole would cost that much memory,
/// freshly zeroed by the kernel, on every compaction.
fn compact_segment(path: &Path, persistence: &HashMap<TableId, Persistence>) -> io::Result<()> {
    let file = fs::File::open(path)?;
    let mut left = file.metadata()?.len();
    let mut input = BufReader::with_capacity(1 << 20, file);
    let tmp = path.with_extension("hist.tmp");
    let mut out: Option<BufWriter<fs::File>> = None;
    let (mut record, mut kept, mut rewritten) = (Vec::new(), Vec::new(), Vec::new());
    let mut magic = [0u8; SEGMENT_MAGIC.len()];
    let segment = read_all_or_nothing(&mut input, &mut magic, &mut left)? && magic == SEGMENT_MAGIC;
    while segment && next_record(&mut input, &mut record, &mut left)? {
        let Parsed::Record(rec, _) = log::parse_record(&record, 0) else {
            break;
        };
        kept.clear();
        let mut all = true;
        for op in log::ops(rec.ops) {
            let Ok((op, raw)) = op else {
                all = false;
                break;
            };
            // Unknown tables were dropped before this run: keep their history.
            let keep = matches!(op, LogOp::CreateTable(..) | LogOp::DropTable(..))
                || persistence.get(&op.table()) != Some(&Persistence::Stateful);
            if keep {
                kept.extend_from_slice(raw);
            } else {
                all = false;
            }
        }
        let bytes: &[u8] = if all {
            &record
        } else if kept.is_empty() {
            continue;
        } else {
            rewritten.clear();
            // Never longer than the record it comes from, so it always fits.
            match log::encode_record(
                &mut rewritten,
                rec.lsn,
                rec.seq,
                rec.timestamp,
                rec.meta,
                &kept,
            ) {
                Ok(_) => &rewritten,
                Err(_) => &record,
            }
        };
        let w = match &mut out {
            Some(w) => w,
            None => {
                let f = files::owner_only()
                    .create(true)
                    .write(true)
                    .truncate(true)
                    .open(&tmp)?;
                let mut w = BufWriter::with_capacity(1 << 20, f);
                w.write_all(&SEGMENT_MAGIC)?;
                out.insert(w)
            }
        };
        w.write_all(bytes)?;
    }
    if let Some(w) = out {
        let f = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path.with_extension("hist"))?;
        if let Some(dir) = path.parent() {
            files::sync_dir(dir)?;
        }
    }
    fs::remove_file(path)
}

/// Reads the next record of a segment, header and body, into `record`. `false` at the clean
/// end, and at a torn or impossible one (a length beyond what is `left` of the file): as in
/// recovery, nothing after it counts. The length is checked against the file before anything
/// is allocated for it, so a damaged one cannot ask for gigabytes.
fn next_record(input: &mut impl Read, record: &mut Vec<u8>, left: &mut u64) -> io::Result<bool> {
    record.resize(log::RECORD_HEADER, 0);
    if !read_all_or_nothing(input, record, left)? {
        return Ok(false);
    }
    let len = u64::from(u32::from_le_bytes([
        record[0], record[1], record[2], record[3],
    ]));
    if len > *left {
        return Ok(false);
    }
    record.resize(log::RECORD_HEADER + len as usize, 0);
    read_all_or_nothing(input, &mut record[log::RECORD_HEADER..], left)
}

/// Fills `buf` from `input`; `false` if the input ends first (at its start or partway).
fn read_all_or_nothing(input: &mut impl Read, buf: &mut [u8], left: &mut u64) -> io::Result<bool> {
    match input.read_exact(buf) {
        Ok(()) => {
            *left = left.saturating_sub(buf.len() as u64);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_reads_record_by_record_and_stops_at_a_damaged_length() {
        let dir = tempfile::tempdir().unwrap();
        let segment = dir.path().join("log-00000000000000000001.seg");
        let mut bytes = SEGMENT_MAGIC.to_vec();
        for lsn in 1..=2 {
            log::encode_record(&mut bytes, lsn, lsn, 0, b"", b"").unwrap();
        }
        let whole = bytes.clone();
        // A header announcing 4 GiB in a file of a few bytes: nothing is allocated for it, and
        // nothing after it is read.
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        log::encode_record(&mut bytes, 3, 3, 0, b"", b"").unwrap();
        fs::write(&segment, &bytes).unwrap();

        compact_segment(&segment, &HashMap::new()).unwrap();
        assert!(!segment.exists(), "the segment is gone once compacted");
        let history = fs::read(segment.with_extension("hist")).unwrap();
        assert_eq!(
            history, whole,
            "the two records before the damage, unchanged"
        );
    }

    #[test]
    fn a_segment_with_nothing_to_keep_leaves_no_history() {
        let dir = tempfile::tempdir().unwrap();
        let segment = dir.path().join("log-00000000000000000001.seg");
        // A torn first header: no record at all.
        let mut bytes = SEGMENT_MAGIC.to_vec();
        bytes.extend_from_slice(&[5, 0, 0]);
        fs::write(&segment, &bytes).unwrap();
        compact_segment(&segment, &HashMap::new()).unwrap();
        assert!(!segment.exists());
        assert!(!segment.with_extension("hist").exists());
        assert!(!segment.with_extension("hist.tmp").exists());
    }
}
