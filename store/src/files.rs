//! Files of the store directory: listing, setting aside, syncing.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Options for a new file of the store: readable and writable by its owner only (rows may be
/// private data; the directory is owner-only too, this guards files copied out of it).
pub(crate) fn owner_only() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates `dir` (and missing parents) accessible by its owner only; an existing directory is
/// left as it is.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Files of `dir` named `<prefix><number><ext>`, sorted by number.
pub(crate) fn list_files(dir: &Path, prefix: &str, ext: &str) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(num) = name
            .strip_prefix(prefix)
            .and_then(|n| n.strip_suffix(ext))
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push((num, path));
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A free name next to `path` ending in `.corrupt`: `<name><tag>.corrupt`, or with a number
/// before `.corrupt` when that exists already, so nothing set aside is ever overwritten.
pub(crate) fn aside_name(path: &Path, tag: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut n = 1u32;
    loop {
        let candidate = if n == 1 {
            path.with_file_name(format!("{name}{tag}.corrupt"))
        } else {
            path.with_file_name(format!("{name}{tag}.{n}.corrupt"))
        };
        if !candidate.exists() {
            return candidate;
        }
        n += 1;
    }
}

/// Renames `path` to a free `*.corrupt` name; returns the new name. The caller syncs the
/// directory.
pub(crate) fn move_aside(path: &Path) -> io::Result<PathBuf> {
    let aside = aside_name(path, "");
    fs::rename(path, &aside)?;
    Ok(aside)
}
