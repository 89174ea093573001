//! What the fuzz target `log_record` in `fuzz/` runs, and the test that replays its corpus:
//! arbitrary bytes become a commit log that recovery must refuse or recover, never panic on.
//! Not part of the API.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::log::{SEGMENT_MAGIC, encode_record, segment_name};
use crate::{Store, StoreConfig};

/// Recovery of a log built from `data`: chunks of `[len: u16][meta len: u8][meta][ops]`,
/// each framed as a record with lsn 1, 2, … and a valid checksum (so that what is inside a
/// record is reached), then whatever is left appended raw (a torn or garbled tail). Opening
/// recovers or refuses with an error; opening again gives the same answer, since a refusal
/// changes nothing and a recovery leaves a log that recovers to the same records.
pub fn recover_log(data: &[u8]) {
    let mut segment = SEGMENT_MAGIC.to_vec();
    let mut rest = data;
    let mut lsn = 1;
    while let [a, b, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*a, *b])).min(tail.len());
        let (body, next) = tail.split_at(len);
        rest = next;
        let Some((&meta_len, body)) = body.split_first() else {
            break;
        };
        let (meta, ops) = body.split_at(usize::from(meta_len).min(body.len()));
        if encode_record(&mut segment, lsn, lsn - 1, lsn * 1000, meta, ops).is_err() {
            return;
        }
        lsn += 1;
    }
    segment.extend_from_slice(rest);

    let dir = Scratch::new();
    if std::fs::create_dir_all(&dir.0).is_err()
        || std::fs::write(dir.0.join(segment_name(1)), &segment).is_err()
    {
        return;
    }
    let first = Store::open(&dir.0, StoreConfig::default()).map(|(store, report)| {
        drop(store);
        report.records_replayed
    });
    let again = Store::open(&dir.0, StoreConfig::default()).map(|(store, report)| {
        drop(store);
        report.records_replayed
    });
    match (first, again) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "a recovered log recovers the same records again"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "a refusal changed the log"),
        (a, b) => panic!("opening twice gave {a:?}, then {b:?}"),
    }
}

/// A directory of its own under the system's temporary one, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("interstice-fuzz-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
