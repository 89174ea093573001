//! The commit log: record format, segment files, group commit.
//!
//! See `store/DESIGN.md` for the byte layout.

use interstice_abi::varint_len;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use interstice_abi::Value;
use parking_lot::{Condvar, Mutex};

use crate::bytes::{Reader, put_varint};
use crate::error::{Result, StoreError, WriteFailure};
use crate::table::TableId;

/// The first 8 bytes of every segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"ISTLOG01";
pub(crate) const RECORD_HEADER: usize = 8;
/// lsn, seq and timestamp at the start of every body.
const RECORD_FIXED: usize = 24;
/// The largest body the 32-bit length can frame.
pub(crate) const MAX_BODY: usize = u32::MAX as usize;
/// Under `EveryCommit`, the buffer is handed to the OS (without fsync) once it holds this much
/// and nobody has waited for it.
const EVERY_COMMIT_WRITE_OUT: usize = 1 << 20;
/// The default limit on one applied transaction's record.
pub(crate) const DEFAULT_MAX_RECORD: usize = 1 << 30;

/// The bytes a record with `meta_len` bytes of meta and `ops_len` bytes of ops takes, header
/// included.
pub(crate) fn record_len(meta_len: usize, ops_len: usize) -> usize {
    RECORD_HEADER + RECORD_FIXED + varint_len(meta_len as u64) + meta_len + ops_len
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum OpKind {
    Insert = 1,
    Update = 2,
    Delete = 3,
    Counter = 4,
    CreateTable = 5,
    DropTable = 6,
}

impl OpKind {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => OpKind::Insert,
            2 => OpKind::Update,
            3 => OpKind::Delete,
            4 => OpKind::Counter,
            5 => OpKind::CreateTable,
            6 => OpKind::DropTable,
            _ => return None,
        })
    }
}

/// A row is encoded as the struct of its columns: their encodings back to back.
pub(crate) fn encode_row(row: &[Value], out: &mut Vec<u8>) {
    for v in row {
        interstice_abi::encode_into(v, out);
    }
}

/// Appends an op carrying a blob (a row, a key or a catalog entry).
pub(crate) fn put_op(out: &mut Vec<u8>, kind: OpKind, table: TableId, blob: &[u8]) {
    put_op_with(out, kind, table, blob.len(), |out| {
        out.extend_from_slice(blob)
    });
}

/// The bytes of an op with a blob of `len` bytes, at most: its kind, its table (a varint of
/// a `u32`) and the blob's length and bytes.
pub(crate) fn op_len(len: usize) -> usize {
    1 + varint_len(u64::from(u32::MAX)) + varint_len(len as u64) + len
}

/// Appends an op whose blob of `len` bytes `write` appends: a row encoded straight into the
/// record, not into a buffer first and copied after.
pub(crate) fn put_op_with(
    out: &mut Vec<u8>,
    kind: OpKind,
    table: TableId,
    len: usize,
    write: impl FnOnce(&mut Vec<u8>),
) {
    out.reserve(op_len(len));
    let op = out.len();
    out.push(kind as u8);
    put_varint(out, u64::from(table.0));
    put_varint(out, len as u64);
    let start = out.len();
    write(out);
    // `len` comes from `encoded_len`, which the codec's tests hold to the encoder. Should they
    // ever disagree, the op is written again with the length of what was written: a wrong
    // prefix would make a committed record unreadable, and recovery would drop it.
    let written = out.len() - start;
    debug_assert_eq!(written, len, "the blob's announced length");
    if written != len {
        let blob = out.split_off(start);
        out.truncate(op);
        put_op(out, kind, table, &blob);
    }
}

pub(crate) fn put_counter(out: &mut Vec<u8>, table: TableId, column: usize, value: i128) {
    out.push(OpKind::Counter as u8);
    put_varint(out, u64::from(table.0));
    put_varint(out, column as u64);
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_drop(out: &mut Vec<u8>, table: TableId) {
    out.push(OpKind::DropTable as u8);
    put_varint(out, u64::from(table.0));
}

/// Appends a whole record: header (length, checksum) and body. Fails, appending nothing, with
/// the record's length when its body is too long for the 32-bit length.
pub(crate) fn encode_record(
    out: &mut Vec<u8>,
    lsn: u64,
    seq: u64,
    timestamp: u64,
    meta: &[u8],
    ops: &[u8],
) -> Result<(), usize> {
    let total = record_len(meta.len(), ops.len());
    if total - RECORD_HEADER > MAX_BODY {
        return Err(total);
    }
    out.reserve(total);
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER]);
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&timestamp.to_le_bytes());
    put_varint(out, meta.len() as u64);
    out.extend_from_slice(meta);
    out.extend_from_slice(ops);
    let len = (out.len() - start - RECORD_HEADER) as u32;
    let len_bytes = len.to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len_bytes);
    crc.update(&out[start + RECORD_HEADER..]);
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + 8].copy_from_slice(&crc.finalize().to_le_bytes());
    Ok(())
}

/// A record read back from a segment.
#[derive(Debug)]
pub(crate) struct RecordView<'a> {
    pub lsn: u64,
    pub seq: u64,
    pub timestamp: u64,
    pub meta: &'a [u8],
    pub ops: &'a [u8],
}

pub(crate) enum Parsed<'a> {
    Record(RecordView<'a>, usize),
    /// Clean end of the segment.
    End,
    /// Torn or corrupt at this offset: nothing from here on may be applied.
    Bad(String),
}

/// Parses the record at `offset` of a segment's bytes; returns it and the next offset.
pub(crate) fn parse_record(buf: &[u8], offset: usize) -> Parsed<'_> {
    let rest = &buf[offset.min(buf.len())..];
    if rest.is_empty() {
        return Parsed::End;
    }
    if rest.len() < RECORD_HEADER {
        return Parsed::Bad(format!(
            "torn record header ({} of {RECORD_HEADER} bytes)",
            rest.len()
        ));
    }
    let len_bytes: [u8; 4] = [rest[0], rest[1], rest[2], rest[3]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if rest.len() - RECORD_HEADER < len {
        return Parsed::Bad(format!(
            "torn record: {len} bytes announced, {} present",
            rest.len() - RECORD_HEADER
        ));
    }
    let body = &rest[RECORD_HEADER..RECORD_HEADER + len];
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(body);
    if hasher.finalize() != crc {
        return Parsed::Bad("checksum mismatch".to_owned());
    }
    let mut r = Reader::new(body);
    let parsed = (|| -> Result<RecordView<'_>, String> {
        let lsn = r.u64()?;
        let seq = r.u64()?;
        let timestamp = r.u64()?;
        let meta = r.blob()?;
        Ok(RecordView {
            lsn,
            seq,
            timestamp,
            meta,
            ops: &body[r.pos..],
        })
    })();
    match parsed {
        Ok(view) => Parsed::Record(view, offset + RECORD_HEADER + len),
        Err(reason) => Parsed::Bad(format!("malformed record: {reason}")),
    }
}

/// The end of the checksummed record with lsn at least `min_lsn` that starts at `offset`, if
/// one does. Cheap on garbage: the length and lsn are checked before the checksum, so it can be
/// tried at every offset of a damaged region.
pub(crate) fn probe_record(buf: &[u8], offset: usize, min_lsn: u64) -> Option<usize> {
    const FIXED: usize = 24; // lsn, seq, timestamp
    let rest = buf.get(offset..)?;
    if rest.len() < RECORD_HEADER + FIXED {
        return None;
    }
    let len_bytes: [u8; 4] = [rest[0], rest[1], rest[2], rest[3]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len < FIXED || len > rest.len() - RECORD_HEADER {
        return None;
    }
    let mut lsn = [0; 8];
    lsn.copy_from_slice(&rest[RECORD_HEADER..RECORD_HEADER + 8]);
    let lsn = u64::from_le_bytes(lsn);
    // Lsns far beyond the log's end are garbage that happens to fit.
    if lsn < min_lsn || lsn - min_lsn > 1 << 40 {
        return None;
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(&rest[RECORD_HEADER..RECORD_HEADER + len]);
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    (hasher.finalize() == crc).then_some(offset + RECORD_HEADER + len)
}

/// The first checksummed record with lsn at least `min_lsn` found at or after `offset`, as
/// (start, end).
pub(crate) fn next_record(buf: &[u8], offset: usize, min_lsn: u64) -> Option<(usize, usize)> {
    (offset..buf.len()).find_map(|at| probe_record(buf, at, min_lsn).map(|end| (at, end)))
}

/// How many checksummed records with lsn at least `min_lsn` can be found in `buf` from
/// `offset` on, skipping over damaged bytes.
pub(crate) fn count_records(buf: &[u8], mut offset: usize, min_lsn: u64) -> u64 {
    let mut n = 0;
    while let Some((_, end)) = next_record(buf, offset, min_lsn) {
        n += 1;
        offset = end;
    }
    n
}

/// One mutation inside a record.
#[derive(Debug)]
pub(crate) enum LogOp<'a> {
    Insert(TableId, &'a [u8]),
    Update(TableId, &'a [u8]),
    Delete(TableId, &'a [u8]),
    Counter(TableId, usize, i128),
    CreateTable(TableId, &'a [u8]),
    DropTable(TableId),
}

impl LogOp<'_> {
    pub fn table(&self) -> TableId {
        match *self {
            LogOp::Insert(t, _)
            | LogOp::Update(t, _)
            | LogOp::Delete(t, _)
            | LogOp::Counter(t, _, _)
            | LogOp::CreateTable(t, _)
            | LogOp::DropTable(t) => t,
        }
    }
}

/// Iterates over the ops of a record body, each with its raw bytes (for compaction).
pub(crate) struct OpIter<'a> {
    r: Reader<'a>,
}

pub(crate) fn ops(bytes: &[u8]) -> OpIter<'_> {
    OpIter {
        r: Reader::new(bytes),
    }
}

impl<'a> Iterator for OpIter<'a> {
    type Item = Result<(LogOp<'a>, &'a [u8]), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.r.is_empty() {
            return None;
        }
        let start = self.r.pos;
        let r = &mut self.r;
        let op = (|| -> Result<LogOp<'a>, String> {
            let kind = r.u8()?;
            let kind = OpKind::from_u8(kind).ok_or_else(|| format!("unknown op kind {kind}"))?;
            let table = TableId(r.varint_u32()?);
            Ok(match kind {
                OpKind::Insert => LogOp::Insert(table, r.blob()?),
                OpKind::Update => LogOp::Update(table, r.blob()?),
                OpKind::Delete => LogOp::Delete(table, r.blob()?),
                OpKind::CreateTable => LogOp::CreateTable(table, r.blob()?),
                OpKind::Counter => {
                    let col = r.varint_u32()? as usize;
                    LogOp::Counter(table, col, r.i128()?)
                }
                OpKind::DropTable => LogOp::DropTable(table),
            })
        })();
        Some(match op {
            Ok(op) => Ok((op, &self.r.bytes[start..self.r.pos])),
            Err(e) => {
                // Stop after an error: the rest cannot be framed.
                self.r.pos = self.r.bytes.len();
                Err(e)
            }
        })
    }
}

pub(crate) fn segment_name(first_lsn: u64) -> String {
    format!("log-{first_lsn:020}.seg")
}

/// When commits become durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Nothing is reported durable before an fsync covers it, and every waiter gets its fsync
    /// as soon as the disk allows: [`Store::log`](crate::Store::log) only buffers the record
    /// (no fsync on the committing thread); the first caller of
    /// [`Store::wait_durable`](crate::Store::wait_durable) writes out everything buffered and
    /// fsyncs once, covering every record logged so far, and callers whose record it covers
    /// return with it; records logged during that fsync go into the next one (group commit).
    /// [`Transaction::commit`](crate::Transaction::commit) waits. Records nobody waits for are
    /// handed to the OS once 1 MiB is buffered, and fsynced by the next waiter.
    EveryCommit,
    /// A flusher thread writes and fsyncs at most `max_delay` after the first unflushed record,
    /// or as soon as `max_bytes` are waiting: one fsync for many transactions. Use
    /// [`Store::wait_durable`](crate::Store::wait_durable) before telling a client "committed".
    ///
    /// A caller that waits for durability (a node answering a call does) waits for the next
    /// flush, up to `max_delay`: under load [`EveryCommit`](Self::EveryCommit) already shares
    /// one fsync among everything waiting and answers sooner. `Batched` caps how many fsyncs
    /// a second the disk sees, for disks where that matters more than latency.
    Batched {
        max_delay: Duration,
        max_bytes: usize,
    },
    /// Records are handed to the OS at every commit but never fsynced (tests, benchmarks): a
    /// process crash loses nothing, a power cut may.
    Off,
}

impl Default for Durability {
    fn default() -> Self {
        Durability::Batched {
            max_delay: Duration::from_millis(2),
            max_bytes: 1 << 20,
        }
    }
}

/// Why the store refuses commits, once something went wrong that memory cannot take back.
#[derive(Default)]
pub(crate) struct Poison {
    flag: AtomicBool,
    reason: Mutex<Option<(String, Option<WriteFailure>)>>,
}

impl Poison {
    /// Records the first reason; later ones are consequences of it.
    pub fn set(&self, reason: String, cause: Option<WriteFailure>) {
        let mut r = self.reason.lock();
        if r.is_none() {
            *r = Some((reason, cause));
        }
        self.flag.store(true, Ordering::Release);
    }

    /// The error every refused operation returns, if poisoned.
    pub fn error(&self) -> Option<StoreError> {
        if !self.flag.load(Ordering::Acquire) {
            return None;
        }
        let (reason, cause) = self.reason.lock().clone().unwrap_or_default();
        Some(StoreError::Poisoned { reason, cause })
    }

    pub fn check(&self) -> Result<()> {
        match self.error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Fails writes of the log once it has written `after_bytes` bytes, with an OS error code:
/// lets tests see what a full or read-only disk does without one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[doc(hidden)]
pub struct FailWrites {
    pub after_bytes: u64,
    pub os_error: i32,
}

struct Segment {
    file: Arc<File>,
    size: u64,
}

pub(crate) struct LogState {
    pub next_lsn: u64,
    buf: Vec<u8>,
    buf_first_lsn: u64,
    buf_last_lsn: u64,
    buf_since: Option<Instant>,
    written_lsn: u64,
    /// Record bytes handed to the OS since the store was opened.
    written_bytes: u64,
    seg: Option<Segment>,
    pub bytes_since_snapshot: u64,
    pub commits_since_snapshot: u64,
    pub last_snapshot_lsn: u64,
    /// The largest `CommitMeta::seq` of a transaction record in the log (or the snapshot it
    /// continues); `None` before the first one. Catalog records don't count.
    pub last_seq: Option<u64>,
    shutdown: bool,
}

/// The log writer, shared by committers and the flusher thread.
///
/// Lock order: `sync` before `state`. `state` is held only to append to the buffer or to hand
/// it to the OS (and, rarely, to roll a segment); fsync of the current segment happens outside
/// it so committers keep appending while the disk works.
pub(crate) struct Log {
    pub state: Mutex<LogState>,
    flusher_cv: Condvar,
    sync: Mutex<()>,
    durable: AtomicU64,
    durable_mx: Mutex<()>,
    durable_cv: Condvar,
    /// fsyncs of segments since open, and records that became durable: group commit's yield.
    pub fsyncs: AtomicU64,
    pub records_durable: AtomicU64,
    pub poison: Arc<Poison>,
    pub durability: Durability,
    segment_max: u64,
    /// `None` for an in-memory store: lsns are assigned, nothing is written.
    pub dir: Option<PathBuf>,
    fail_writes: Option<FailWrites>,
}

/// Where the log continues after recovery.
pub(crate) struct LogStart {
    pub next_lsn: u64,
    pub last_snapshot_lsn: u64,
    pub last_seq: Option<u64>,
}

impl Log {
    pub fn new(
        dir: Option<PathBuf>,
        start: LogStart,
        durability: Durability,
        segment_max: u64,
        poison: Arc<Poison>,
        fail_writes: Option<FailWrites>,
    ) -> Self {
        let LogStart {
            next_lsn,
            last_snapshot_lsn,
            last_seq,
        } = start;
        Log {
            state: Mutex::new(LogState {
                next_lsn,
                buf: Vec::new(),
                buf_first_lsn: 0,
                buf_last_lsn: 0,
                buf_since: None,
                written_lsn: next_lsn - 1,
                written_bytes: 0,
                seg: None,
                bytes_since_snapshot: 0,
                commits_since_snapshot: 0,
                last_snapshot_lsn,
                last_seq,
                shutdown: false,
            }),
            flusher_cv: Condvar::new(),
            sync: Mutex::new(()),
            durable: AtomicU64::new(next_lsn - 1),
            durable_mx: Mutex::new(()),
            durable_cv: Condvar::new(),
            fsyncs: AtomicU64::new(0),
            records_durable: AtomicU64::new(0),
            poison,
            durability,
            segment_max,
            dir,
            fail_writes,
        }
    }

    pub fn durable_lsn(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Appends a record to the buffer; returns its length. The caller assigned `lsn` and
    /// checked the record's length against [`MAX_BODY`].
    pub fn append(
        &self,
        st: &mut LogState,
        lsn: u64,
        seq: u64,
        timestamp: u64,
        meta: &[u8],
        ops: &[u8],
    ) -> Result<usize> {
        let before = st.buf.len();
        encode_record(&mut st.buf, lsn, seq, timestamp, meta, ops).map_err(|bytes| {
            StoreError::TransactionTooLarge {
                bytes: bytes as u64,
                limit: (MAX_BODY + RECORD_HEADER) as u64,
            }
        })?;
        if before == 0 {
            st.buf_first_lsn = lsn;
            st.buf_since = Some(Instant::now());
        }
        st.buf_last_lsn = lsn;
        let n = st.buf.len() - before;
        st.bytes_since_snapshot += n as u64;
        Ok(n)
    }

    /// After an append: do what the durability policy asks.
    pub fn after_append(
        &self,
        mut st: parking_lot::MutexGuard<'_, LogState>,
        lsn: u64,
    ) -> Result<()> {
        match self.durability {
            Durability::Off => {
                let written = self.write_out(&mut st)?;
                drop(st);
                self.set_durable(written);
                Ok(())
            }
            Durability::EveryCommit => {
                // Only buffered: `wait_durable` writes and fsyncs everything buffered at once,
                // so the commits waiting meanwhile share one fsync. When nobody waits, a big
                // buffer is handed to the OS (unsynced) to keep memory bounded.
                if st.buf.len() >= EVERY_COMMIT_WRITE_OUT {
                    self.write_out(&mut st)?;
                }
                Ok(())
            }
            Durability::Batched { max_bytes, .. } => {
                let len = st.buf.len();
                if len >= 4 * max_bytes.max(1) {
                    // The disk is not keeping up: make this committer wait rather than let
                    // the buffer grow without bound.
                    drop(st);
                    return self.make_durable(lsn);
                }
                if len >= max_bytes || st.buf_first_lsn == lsn {
                    self.flusher_cv.notify_one();
                }
                Ok(())
            }
        }
    }

    /// Hands the buffer to the OS, opening or rolling segments; returns the last lsn written.
    pub fn write_out(&self, st: &mut LogState) -> Result<u64> {
        let r = self.write_out_inner(st);
        r.map_err(|e| self.fail("writing the commit log", e))
    }

    fn write_out_inner(&self, st: &mut LogState) -> io::Result<u64> {
        let Some(dir) = &self.dir else {
            st.buf.clear();
            st.written_lsn = st.next_lsn - 1;
            return Ok(st.written_lsn);
        };
        if st.buf.is_empty() {
            return Ok(st.written_lsn);
        }
        if st.seg.as_ref().is_some_and(|s| s.size >= self.segment_max)
            && let Some(old) = st.seg.take()
        {
            old.file.sync_data()?;
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        if st.seg.is_none() {
            let path = dir.join(segment_name(st.buf_first_lsn));
            let mut file = crate::files::owner_only()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&path)?;
            file.write_all(&SEGMENT_MAGIC)?;
            file.sync_all()?;
            crate::files::sync_dir(dir)?;
            st.seg = Some(Segment {
                file: Arc::new(file),
                size: SEGMENT_MAGIC.len() as u64,
            });
        }
        if let Some(fail) = self.fail_writes
            && st.written_bytes + st.buf.len() as u64 > fail.after_bytes
        {
            return Err(io::Error::from_raw_os_error(fail.os_error));
        }
        if let Some(seg) = &mut st.seg {
            (&*seg.file).write_all(&st.buf)?;
            seg.size += st.buf.len() as u64;
        }
        st.written_bytes += st.buf.len() as u64;
        st.buf.clear();
        st.buf_since = None;
        st.written_lsn = st.buf_last_lsn;
        Ok(st.written_lsn)
    }

    /// Writes and fsyncs everything up to at least `lsn`. Concurrent callers share fsyncs: whoever
    /// holds `sync` flushes everything buffered so far.
    pub fn make_durable(&self, lsn: u64) -> Result<()> {
        let _sync = self.sync.lock();
        self.poison.check()?;
        if self.durable_lsn() >= lsn {
            return Ok(());
        }
        let (file, written) = {
            let mut st = self.state.lock();
            let written = self.write_out(&mut st)?;
            (st.seg.as_ref().map(|s| s.file.clone()), written)
        };
        if let Some(file) = file {
            file.sync_data()
                .map_err(|e| self.fail("fsyncing the commit log", e))?;
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        self.set_durable(written);
        Ok(())
    }

    /// Writes the buffer, fsyncs and closes the current segment, so the next record starts a
    /// new one. Called under `state` when a snapshot is captured.
    pub fn roll(&self, st: &mut LogState) -> Result<()> {
        let written = self.write_out(st)?;
        if let Some(seg) = st.seg.take() {
            seg.file
                .sync_data()
                .map_err(|e| self.fail("fsyncing the commit log", e))?;
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        self.set_durable(written);
        Ok(())
    }

    fn fail(&self, what: &str, e: io::Error) -> StoreError {
        let kind = WriteFailure::of(&e);
        self.poison.set(
            format!("{what} failed ({e}). {}", kind.remedy()),
            Some(kind),
        );
        self.durable_cv.notify_all();
        StoreError::LogWrite {
            context: what.to_owned(),
            kind,
            source: e,
        }
    }

    fn set_durable(&self, lsn: u64) {
        let before = self.durable.fetch_max(lsn, Ordering::AcqRel);
        if before < lsn {
            self.records_durable
                .fetch_add(lsn - before, Ordering::Relaxed);
            let _g = self.durable_mx.lock();
            self.durable_cv.notify_all();
        }
    }

    /// Blocks until `lsn` is durable (or the store is poisoned).
    pub fn wait_durable(&self, lsn: u64) -> Result<()> {
        let mut g = self.durable_mx.lock();
        loop {
            if self.durable_lsn() >= lsn {
                return Ok(());
            }
            self.poison.check()?;
            if !matches!(self.durability, Durability::Batched { .. }) {
                // Without a flusher nobody else will make it durable: do it here.
                drop(g);
                self.make_durable(lsn)?;
                g = self.durable_mx.lock();
                continue;
            }
            self.durable_cv.wait_for(&mut g, Duration::from_millis(50));
        }
    }

    /// The flusher thread of `Durability::Batched`.
    pub fn run_flusher(self: Arc<Self>) {
        let Durability::Batched {
            max_delay,
            max_bytes,
        } = self.durability
        else {
            return;
        };
        loop {
            let target = {
                let mut st = self.state.lock();
                while st.buf.is_empty() && !st.shutdown {
                    self.flusher_cv.wait(&mut st);
                }
                if st.buf.is_empty() && st.shutdown {
                    return;
                }
                let deadline = st.buf_since.unwrap_or_else(Instant::now) + max_delay;
                while !st.shutdown && st.buf.len() < max_bytes && Instant::now() < deadline {
                    self.flusher_cv.wait_until(&mut st, deadline);
                }
                st.buf_last_lsn
            };
            if self.make_durable(target).is_err() {
                // Poisoned: committers see the error; nothing more to flush.
                return;
            }
        }
    }

    pub fn shutdown(&self) {
        self.state.lock().shutdown = true;
        self.flusher_cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_len_is_the_encoded_length() {
        for meta in [0usize, 1, 127, 128, 16_383, 16_384, 70_000] {
            for ops in [0usize, 5, 300] {
                let mut out = vec![7; 3];
                encode_record(&mut out, 1, 2, 3, &vec![1; meta], &vec![2; ops]).unwrap();
                assert_eq!(
                    out.len() - 3,
                    record_len(meta, ops),
                    "meta {meta}, ops {ops}"
                );
            }
        }
    }
}
