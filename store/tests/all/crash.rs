//! Torn writes and corruption in the commit log.

use std::fs;
use std::path::{Path, PathBuf};

use interstice_abi::{Persistence, Value};
use interstice_store::{RecoveryReport, Store, StoreConfig, StoreError, TableId};

use crate::util::*;

/// The newest segment of the log.
fn last_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs.pop().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Commits `n` one-row transactions; returns the segment size after each commit and the
/// expected rows after each prefix.
fn build(dir: &Path, n: u64) -> (TableId, Vec<u64>, Vec<Vec<Vec<Value>>>) {
    let (store, _) = open(dir);
    let t = create_users(&store, Persistence::Logged);
    // The catalog record sits in its own segment; data starts a new one (8-byte header).
    let mut sizes = vec![8];
    let mut states = vec![rows(&store, t)];
    for i in 1..=n {
        let mut tx = store.begin();
        tx.insert(t, user(0, &format!("user{i}"), i as u32))
            .unwrap();
        if i % 3 == 0 {
            tx.delete(t, &Value::U64(i - 1)).unwrap();
        }
        let _ = tx.commit(meta(i)).unwrap();
        sizes.push(fs::metadata(last_segment(dir)).unwrap().len());
        states.push(rows(&store, t));
    }
    store.close().unwrap();
    (t, sizes, states)
}

fn recovered_rows(dir: &Path, t: TableId) -> (Vec<Vec<Value>>, RecoveryReport) {
    recovered_rows_with(dir, t, config())
}

fn recovered_rows_with(
    dir: &Path,
    t: TableId,
    config: StoreConfig,
) -> (Vec<Vec<Value>>, RecoveryReport) {
    let (store, report) = Store::open(dir, config).unwrap();
    assert_eq!(create_users(&store, Persistence::Logged), t);
    (rows(&store, t), report)
}

#[test]
fn a_torn_last_record_is_cut_at_every_offset() {
    let src = tempfile::tempdir().unwrap();
    let (t, sizes, states) = build(src.path(), 4);
    let seg_name = last_segment(src.path()).file_name().unwrap().to_owned();
    let (start, end) = (sizes[3], sizes[4]);
    for cut in start..end {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        let seg = dir.path().join(&seg_name);
        let f = fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        let (got, report) = recovered_rows(dir.path(), t);
        assert_eq!(got, states[3], "cut at {cut}");
        assert_eq!(report.bytes_truncated, cut - start, "cut at {cut}");
        assert_eq!(report.corruption.is_some(), cut > start, "cut at {cut}");
        assert_eq!(fs::metadata(&seg).unwrap().len(), start);
    }
    // After a repair the store appends and recovers normally.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(src.path(), dir.path());
    let seg = dir.path().join(&seg_name);
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(end - 3)
        .unwrap();
    {
        let (store, _) = open(dir.path());
        let mut tx = store.begin();
        tx.insert(t, user(0, "after", 1)).unwrap();
        let _ = tx.commit(meta(99)).unwrap();
    }
    let (got, report) = recovered_rows(dir.path(), t);
    assert!(report.corruption.is_none());
    assert_eq!(got.len(), states[3].len() + 1);
}

#[test]
fn a_flipped_byte_keeps_only_the_records_before_it() {
    let src = tempfile::tempdir().unwrap();
    let (t, sizes, states) = build(src.path(), 9);
    let seg_name = last_segment(src.path()).file_name().unwrap().to_owned();
    // Every byte of the middle record, and a few elsewhere.
    let offsets: Vec<u64> = (sizes[4]..sizes[5])
        .chain([sizes[1] + 3, sizes[8] + 20])
        .collect();
    for offset in offsets {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        let seg = dir.path().join(&seg_name);
        let mut bytes = fs::read(&seg).unwrap();
        bytes[offset as usize] ^= 0x40;
        fs::write(&seg, &bytes).unwrap();
        let damaged = sizes.iter().position(|&s| s > offset).unwrap();
        if damaged < sizes.len() - 1 {
            // Intact records follow: no torn write, so open refuses and changes nothing.
            let err = Store::open(dir.path(), config()).unwrap_err();
            let StoreError::Corrupt {
                file, offset: at, ..
            } = &err
            else {
                panic!("flip at {offset}: {err}");
            };
            assert_eq!((file, *at), (&seg, sizes[damaged - 1]), "flip at {offset}");
            assert_eq!(fs::read(&seg).unwrap(), bytes, "flip at {offset}");
        }
        let (got, report) = recovered_rows_with(dir.path(), t, config().repair(true));
        assert_eq!(got, states[damaged - 1], "flip at {offset}");
        let corruption = report.corruption.expect("corruption reported");
        assert_eq!(corruption.offset, sizes[damaged - 1]);
    }
}

#[test]
fn segments_after_a_corrupt_one_are_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let config = config().segment_max_bytes(200);
    let expected_prefix;
    let t;
    {
        let (store, _) = Store::open(dir.path(), config.clone()).unwrap();
        t = create_users(&store, Persistence::Logged);
        for i in 1..=30 {
            let mut tx = store.begin();
            tx.insert(t, user(0, &format!("user{i}"), 1)).unwrap();
            let _ = tx.commit(meta(i)).unwrap();
        }
        expected_prefix = rows(&store, t);
    }
    let mut segs: Vec<PathBuf> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    assert!(segs.len() > 4, "{segs:?}");
    // Damage the header of the third segment's first record.
    let victim = &segs[2];
    let mut bytes = fs::read(victim).unwrap();
    bytes[10] ^= 0xff;
    fs::write(victim, bytes).unwrap();
    let err = Store::open(dir.path(), config.clone()).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { file, offset: 8, .. } if file == victim),
        "{err}"
    );
    let (store, report) = Store::open(dir.path(), config.repair(true)).unwrap();
    assert_eq!(report.moved_aside.len(), segs.len() - 2);
    assert!(
        report
            .moved_aside
            .iter()
            .all(|p| p.to_string_lossy().ends_with(".corrupt"))
    );
    let t2 = create_users(&store, Persistence::Logged);
    assert_eq!(t2, t);
    let got = rows(&store, t);
    assert!(got.len() < expected_prefix.len());
    assert_eq!(got[..], expected_prefix[..got.len()]);
}
