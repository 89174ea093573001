//! Damage recovery must not discard silently: only a torn tail of the last segment is cut on
//! its own; everything else refuses to open until the operator asks for a repair.

use std::fs;
use std::path::{Path, PathBuf};

use interstice_abi::{Persistence, Value};
use interstice_store::{RecoveryReport, Store, StoreConfig, StoreError, TableId};

use crate::util::*;

/// Where one commit's record lies.
struct Placed {
    segment: PathBuf,
    start: u64,
    end: u64,
}

/// A small log in several segments: the catalog record alone in the first, then `n` one-row
/// commits a few per segment. Returns the records' places (index 0: the catalog record) and
/// the rows after each prefix of commits.
struct Built {
    table: TableId,
    records: Vec<Placed>,
    states: Vec<Vec<Vec<Value>>>,
}

/// About two commits per segment.
fn small_segments() -> StoreConfig {
    config().segment_max_bytes(120)
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs
}

fn build(dir: &Path, n: u64) -> Built {
    let (store, _) = Store::open(dir, small_segments()).unwrap();
    let table = create_users(&store, Persistence::Logged);
    let first = segments(dir).pop().unwrap();
    let mut records = vec![Placed {
        end: fs::metadata(&first).unwrap().len(),
        segment: first,
        start: 8,
    }];
    let mut states = vec![rows(&store, table)];
    for i in 1..=n {
        let mut tx = store.begin();
        tx.insert(table, user(0, &format!("user{i}"), i as u32))
            .unwrap();
        let _ = tx.commit(meta(i)).unwrap();
        let segment = segments(dir).pop().unwrap();
        let end = fs::metadata(&segment).unwrap().len();
        let start = match records.last() {
            Some(prev) if prev.segment == segment => prev.end,
            _ => 8,
        };
        records.push(Placed {
            segment,
            start,
            end,
        });
        states.push(rows(&store, table));
    }
    store.close().unwrap();
    Built {
        table,
        records,
        states,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

fn open_rows(dir: &Path, t: TableId, config: StoreConfig) -> (Vec<Vec<Value>>, RecoveryReport) {
    let (store, report) = Store::open(dir, config).unwrap();
    assert_eq!(create_users(&store, Persistence::Logged), t);
    (rows(&store, t), report)
}

/// The names of the files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Flips every byte of `segment` in a copy of `src`: open must refuse, name the record the flip
/// hit and change nothing; a repair must then keep exactly the commits before that record.
fn flip_every_byte_of(src: &Path, built: &Built, segment: &Path) {
    let name = segment.file_name().unwrap();
    let later = segments(src).into_iter().filter(|s| s > segment).count() as u64;
    let len = fs::metadata(segment).unwrap().len();
    for offset in 0..len {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src, dir.path());
        let victim = dir.path().join(name);
        flip(&victim, offset);
        // The record the flip hit (the first of the segment for its magic), in commit order.
        let hit = built
            .records
            .iter()
            .position(|r| r.segment == segment && r.end > offset)
            .unwrap();
        let record_start = if offset < 8 {
            0
        } else {
            built.records[hit].start
        };
        let before = listing(dir.path());
        let err = Store::open(dir.path(), small_segments()).unwrap_err();
        let StoreError::Corrupt {
            file,
            offset: at,
            would_lose,
            ..
        } = &err
        else {
            panic!("flip at {offset}: {err}");
        };
        assert_eq!(file, &victim, "flip at {offset}");
        assert_eq!(*at, record_start, "flip at {offset}");
        assert_eq!(would_lose.segments, later, "flip at {offset}");
        // Every later record is counted, and the hit one too when only the magic was hit.
        let intact_after = (built.records.len() - hit - usize::from(offset >= 8)) as u64;
        assert_eq!(would_lose.records, intact_after, "flip at {offset}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("byte {record_start}")),
            "{message}"
        );
        assert!(message.contains("repair"), "{message}");
        assert_eq!(
            listing(dir.path()),
            before,
            "open changed files: flip at {offset}"
        );

        let (got, report) = open_rows(dir.path(), built.table, small_segments().repair(true));
        // `hit` 0 is the catalog record: without it there is no table, and no rows.
        let want = if hit == 0 {
            Vec::new()
        } else {
            built.states[hit - 1].clone()
        };
        assert_eq!(got, want, "flip at {offset}");
        let corruption = report.corruption.clone().expect("reported");
        assert!(corruption.repaired);
        assert_eq!(
            (corruption.file, corruption.offset),
            (victim.clone(), record_start)
        );
        assert!(report.moved_aside.len() as u64 >= later, "{report:?}");
        assert!(
            report
                .moved_aside
                .iter()
                .all(|p| p.exists() && p.to_string_lossy().ends_with(".corrupt"))
        );
        // Repaired for good: the next open is clean and sees the same rows.
        let (again, report) = open_rows(dir.path(), built.table, small_segments());
        assert_eq!(again, want);
        assert!(report.corruption.is_none());
    }
}

#[test]
fn a_flip_anywhere_in_the_first_or_a_middle_segment_refuses_and_repair_keeps_the_prefix() {
    let src = tempfile::tempdir().unwrap();
    let built = build(src.path(), 8);
    let segs = segments(src.path());
    assert!(segs.len() >= 4, "{segs:?}");
    flip_every_byte_of(src.path(), &built, &segs[0]);
    flip_every_byte_of(src.path(), &built, &segs[segs.len() / 2]);
}

#[test]
fn a_torn_tail_is_cut_at_every_offset_and_reported() {
    let src = tempfile::tempdir().unwrap();
    let built = build(src.path(), 8);
    let last = built.records.last().unwrap();
    let name = last.segment.file_name().unwrap();
    let n = built.states.len() - 1;
    for cut in last.start + 1..last.end {
        for garbage in [None, Some(0u8), Some(0xa5)] {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(src.path(), dir.path());
            let seg = dir.path().join(name);
            let mut bytes = fs::read(&seg).unwrap();
            let at_cut = bytes[cut as usize];
            bytes.truncate(cut as usize);
            // A crash may also leave junk where the rest of the write should be.
            if let Some(g) = garbage {
                bytes.resize(last.end as usize + 16, g);
                bytes[cut as usize] = !at_cut;
            }
            let written = bytes.len() as u64;
            fs::write(&seg, &bytes).unwrap();
            let (got, report) = open_rows(dir.path(), built.table, small_segments());
            assert_eq!(got, built.states[n - 1], "cut at {cut}, {garbage:?}");
            let c = report.corruption.clone().expect("reported");
            assert!(!c.repaired);
            assert_eq!((c.file, c.offset), (seg.clone(), last.start));
            assert_eq!(c.bytes_cut, written - last.start);
            assert_eq!(report.bytes_truncated, written - last.start);
            assert_eq!(fs::metadata(&seg).unwrap().len(), last.start);
            assert!(report.problems()[0].contains("torn write"), "{report:?}");
        }
    }
}

#[test]
fn repair_keeps_the_bytes_it_cuts() {
    let src = tempfile::tempdir().unwrap();
    let built = build(src.path(), 3);
    let n = built.records.len();
    // Commits 1 and 2 share the second segment, commit 3 starts the last: damage commit 2.
    let (prev, last) = (&built.records[n - 2], &built.records[n - 1]);
    assert_ne!(prev.segment, last.segment);
    assert!(
        prev.start > 8,
        "a record precedes the damaged one in its segment"
    );
    flip(&prev.segment, prev.start + 12);
    let damaged = fs::read(&prev.segment).unwrap();
    let err = Store::open(src.path(), small_segments()).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { offset, would_lose, .. }
            if *offset == prev.start && would_lose.records == 1 && would_lose.segments == 1),
        "{err}"
    );
    let (got, report) = open_rows(src.path(), built.table, small_segments().repair(true));
    assert_eq!(got, built.states[n - 3]);
    assert_eq!(fs::metadata(&prev.segment).unwrap().len(), prev.start);
    // The cut bytes are kept beside the segment.
    let tail = report
        .moved_aside
        .iter()
        .find(|p| p.to_string_lossy().contains(".from-"))
        .expect("tail kept");
    assert_eq!(fs::read(tail).unwrap(), damaged[prev.start as usize..]);
}

#[test]
fn a_missing_segment_refuses_and_repair_keeps_what_precedes_it() {
    let src = tempfile::tempdir().unwrap();
    let built = build(src.path(), 8);
    let segs = segments(src.path());
    let gone = &segs[2];
    let first_missing = built
        .records
        .iter()
        .position(|r| &r.segment == gone)
        .unwrap();
    fs::remove_file(gone).unwrap();
    let err = Store::open(src.path(), small_segments()).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { file, offset: 8, .. } if file == &segs[3]),
        "{err}"
    );
    assert!(err.to_string().contains("missing"), "{err}");
    let (got, report) = open_rows(src.path(), built.table, small_segments().repair(true));
    assert_eq!(got, built.states[first_missing - 1]);
    assert_eq!(report.moved_aside.len(), segs.len() - 3);
}

#[test]
fn a_damaged_snapshot_with_nothing_to_fall_back_on_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let t;
    {
        let (store, _) = open(dir.path());
        t = create_users(&store, Persistence::Logged);
        for round in 0..3u64 {
            let mut tx = store.begin();
            tx.insert(t, user(round + 1, &format!("u{round}"), 1))
                .unwrap();
            let _ = tx.commit(meta(round + 1)).unwrap();
            store.snapshot().unwrap();
        }
    }
    let snaps: Vec<PathBuf> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .collect();
    assert_eq!(snaps.len(), 2);
    for snap in &snaps {
        flip(snap, 20);
    }
    let err = Store::open(dir.path(), config()).unwrap_err();
    let StoreError::Corrupt { file, .. } = &err else {
        panic!("{err}");
    };
    assert!(snaps.contains(file), "{err}");
    assert!(err.to_string().contains("snapshot"), "{err}");
    // The operator accepts the loss: nothing before the damage survives.
    let (store, report) = Store::open(dir.path(), config().repair(true)).unwrap();
    assert_eq!(report.snapshots_rejected.len(), 2);
    assert!(report.corruption.is_some_and(|c| c.repaired));
    assert_eq!(create_users(&store, Persistence::Logged), t);
    assert!(rows(&store, t).is_empty());
    let mut tx = store.begin();
    tx.insert(t, user(9, "after", 1)).unwrap();
    let _ = tx.commit(meta(9)).unwrap();
    drop(store);
    let (store, report) = open(dir.path());
    assert!(report.corruption.is_none());
    let t = create_users(&store, Persistence::Logged);
    assert_eq!(rows(&store, t), vec![user(9, "after", 1)]);
}

#[test]
fn a_bad_record_in_the_last_segment_with_an_intact_one_after_it_refuses() {
    let src = tempfile::tempdir().unwrap();
    let built = build(src.path(), 4);
    let n = built.records.len();
    let (bad, after) = (&built.records[n - 2], &built.records[n - 1]);
    assert_eq!(
        bad.segment, after.segment,
        "the last two commits share a segment"
    );
    // Damage the body, then the length: either way an intact record follows.
    for offset in [bad.start + 20, bad.start + 1] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        flip(&dir.path().join(bad.segment.file_name().unwrap()), offset);
        let err = Store::open(dir.path(), small_segments()).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { offset, would_lose, .. }
                if *offset == bad.start && would_lose.records == 1 && would_lose.segments == 0),
            "{err}"
        );
    }
}
