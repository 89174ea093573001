//! Every way out of the module's folder is refused, with a message that says why; quotas hold.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use interstice_abi::ABI_VERSION;
use interstice_runtime::FileConfig;
use interstice_runtime::testing::{module_importing, probe_schema};

use super::Fixture;

fn assert_contains(message: &str, needle: &str) {
    assert!(
        message.contains(needle),
        "expected `{needle}` in: {message}"
    );
}

#[test]
fn dot_dot_is_refused() {
    let f = Fixture::new();
    let message = f.refused("write", &["../escaped", "x"]);
    assert_contains(&message, "`..` would leave the module's folder");
    assert!(!f.folder().parent().unwrap().join("escaped").exists());
    assert_contains(
        &f.refused("read", &["a/../../../etc/passwd"]),
        "`..` would leave",
    );
    assert_contains(&f.refused("list", &[".."]), "`..` would leave");
}

#[test]
fn absolute_paths_are_refused() {
    let f = Fixture::new();
    let target = f.outside.path().join("abs.txt");
    let message = f.refused("write", &[target.to_str().unwrap(), "x"]);
    assert_contains(&message, "an absolute path");
    assert!(!target.exists());
    assert_contains(&f.refused("read", &["/etc/passwd"]), "an absolute path");
}

#[test]
fn a_symlink_out_is_refused() {
    let f = Fixture::new();
    let secret = f.outside.path().join("secret.txt");
    std::fs::write(&secret, "secret").unwrap();
    symlink(&secret, f.folder().join("out")).unwrap();
    symlink(f.outside.path(), f.folder().join("dir_out")).unwrap();

    assert_contains(&f.refused("read", &["out"]), "`out` is a symbolic link");
    assert_contains(
        &f.refused("read", &["dir_out/secret.txt"]),
        "`dir_out` is a symbolic link",
    );
    assert_contains(&f.refused("write", &["out", "pwned"]), "symbolic link");
    assert_contains(&f.refused("append", &["out", "pwned"]), "symbolic link");
    assert_contains(
        &f.refused("write", &["dir_out/new.txt", "pwned"]),
        "symbolic link",
    );
    assert_contains(&f.refused("list", &["dir_out"]), "symbolic link");
    assert_contains(&f.refused("mkdir", &["dir_out/sub"]), "symbolic link");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret");
    assert!(!f.outside.path().join("new.txt").exists());
    // Listed and described, never followed.
    f.ok("list", &[""]);
    f.ok("stat", &["out"]);
    assert_eq!(
        f.results(),
        [": dir_out/symlink, out/symlink", "out: symlink 0"]
    );
}

/// Swaps `name` for a link to `target` the first time the authority is about to open it.
fn swap_once(name: &'static str, target: &Path) -> FileConfig {
    let armed = Arc::new(AtomicBool::new(true));
    let target = target.to_owned();
    FileConfig {
        before_open: Some(Arc::new(move |folder: &Path, path: &str| {
            if path == name && armed.swap(false, Ordering::SeqCst) {
                let at = folder.join(path);
                std::fs::remove_file(&at).unwrap();
                symlink(&target, &at).unwrap();
            }
        })),
        ..FileConfig::default()
    }
}

#[test]
fn a_symlink_swapped_in_between_check_and_use_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "secret").unwrap();

    // A read: the file was checked, then swapped before it was opened.
    let f = Fixture::with(swap_once("swap.txt", &secret));
    std::fs::write(f.folder().join("swap.txt"), "mine").unwrap();
    assert_contains(&f.refused("read", &["swap.txt"]), "symbolic link");
    assert!(f.results().is_empty());

    // An append, applied after its commit: swapped after the reducer's check.
    let f = Fixture::with(swap_once("swap.txt", &secret));
    std::fs::write(f.folder().join("swap.txt"), "mine").unwrap();
    f.ok("append", &["swap.txt", "pwned"]);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret");
    assert_eq!(f.stat("changes that failed after commit"), "1");

    // A write replaces what is at the path: the link itself, not what it points to.
    let f = Fixture::with(swap_once("swap.txt", &secret));
    std::fs::write(f.folder().join("swap.txt"), "mine").unwrap();
    f.ok("write", &["swap.txt", "new"]);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret");
    let written = f.folder().join("swap.txt");
    assert!(!written.symlink_metadata().unwrap().is_symlink());
    assert_eq!(std::fs::read_to_string(written).unwrap(), "new");
    assert_eq!(f.stat("changes that failed after commit"), "0");
}

#[test]
fn a_device_file_is_refused() {
    let f = Fixture::new();
    symlink("/dev/null", f.folder().join("null")).unwrap();
    assert_contains(&f.refused("read", &["null"]), "`null` is a symbolic link");
    assert_contains(&f.refused("append", &["null", "x"]), "symbolic link");
    assert_contains(&f.refused("write", &["null", "x"]), "symbolic link");
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let f = Fixture::new();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        f.folder().join("pipe"),
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    assert_contains(&f.refused("read", &["pipe"]), "`pipe` is a FIFO");
    assert_contains(&f.refused("append", &["pipe", "x"]), "a FIFO");
    assert_contains(&f.refused("write", &["pipe", "x"]), "a FIFO");
    f.ok("stat", &["pipe"]);
    assert_eq!(f.results(), ["pipe: other 0"]);
}

#[test]
fn a_socket_is_refused() {
    let f = Fixture::new();
    let _listener = std::os::unix::net::UnixListener::bind(f.folder().join("sock")).unwrap();
    assert_contains(&f.refused("read", &["sock"]), "`sock` is a socket");
    assert_contains(&f.refused("write", &["sock", "x"]), "a socket");
}

#[test]
fn a_hard_link_is_not_read_or_appended_to() {
    let f = Fixture::new();
    let shared = f.outside.path().join("shared.txt");
    std::fs::write(&shared, "shared").unwrap();
    if std::fs::hard_link(&shared, f.folder().join("linked")).is_err() {
        // Two file systems: the module's folder cannot hold such a link at all.
        return;
    }
    assert_contains(&f.refused("read", &["linked"]), "other hard links");
    assert_contains(&f.refused("append", &["linked", "x"]), "other hard links");
    // Replaced, not written through.
    f.ok("write", &["linked", "mine"]);
    assert_eq!(std::fs::read_to_string(&shared).unwrap(), "shared");
}

#[test]
fn a_nul_byte_is_refused() {
    let f = Fixture::new();
    assert_contains(&f.refused("write", &["a\0b", "x"]), "a NUL byte");
    assert_contains(&f.refused("read", &["a\0b"]), "a NUL byte");
    assert!(std::fs::read_dir(f.folder()).unwrap().next().is_none());
}

#[test]
fn over_long_names_are_refused() {
    let f = Fixture::new();
    let long = "n".repeat(256);
    assert_contains(
        &f.refused("write", &[&long, "x"]),
        "a name of 256 bytes, more than 255",
    );
    let deep = ["d"; 600].join("/");
    assert_contains(
        &f.refused("read", &[&deep]),
        "1199 bytes long, more than 1024",
    );
    let many = ["d"; 40].join("/");
    assert_contains(&f.refused("mkdir", &[&many]), "40 components deep");
    // At the limit is fine.
    f.ok("write", &[&"n".repeat(255), "x"]);
}

#[test]
fn other_malformed_paths_and_the_nodes_own_names_are_refused() {
    let f = Fixture::new();
    assert_contains(&f.refused("write", &["a//b", "x"]), "an empty component");
    assert_contains(&f.refused("write", &["./a", "x"]), "a `.` component");
    assert_contains(
        &f.refused("write", &[".interstice-tmp-0", "x"]),
        "are the node's",
    );
    assert_contains(
        &f.refused("remove", &[""]),
        "the module's folder itself cannot be removed",
    );
}

#[test]
fn quotas_on_bytes_and_entries_hold() {
    let f = Fixture::with(FileConfig {
        max_bytes: 100,
        max_entries: 3,
        ..FileConfig::default()
    });
    let sixty = "x".repeat(60);
    let fifty = "y".repeat(50);
    f.ok("write", &["a", &sixty]);
    assert_contains(
        &f.refused("write", &["b", &fifty]),
        "would bring the module's folder to 110 bytes, over its quota of 100 (FileConfig::max_bytes)",
    );
    // Replacing a file counts the difference.
    f.ok("write", &["a", &"z".repeat(90)]);
    assert_contains(&f.refused("append", &["a", &"w".repeat(11)]), "101 bytes");
    f.ok("mkdir", &["d"]);
    f.ok("write", &["d/x", "1"]);
    assert_contains(
        &f.refused("write", &["c", "1"]),
        "4 files and folders, over its quota of 3 (FileConfig::max_entries)",
    );
    // Removing makes room; what is over the quota may still shrink.
    f.ok("remove", &["d/x"]);
    f.ok("write", &["c", "1"]);
    assert_eq!(f.stat("bytes"), "91 of 100");
    assert_eq!(f.stat("entries"), "3 of 3");
    // Files put there from outside count once the module is attached again.
    std::fs::write(f.folder().join("d").join("big"), "q".repeat(9)).unwrap();
    f.node.publish(super::wasm()).unwrap();
    assert_eq!(f.stat("bytes"), "100 of 100");
    assert_contains(&f.refused("append", &["c", "1"]), "101 bytes");
}

#[test]
fn a_module_using_file_calls_must_claim_the_authority() {
    let f = Fixture::new();
    let mut schema = probe_schema(&[("read", None)]);
    schema.name = "sneaky".into();
    let wasm = module_importing(
        &schema,
        ABI_VERSION,
        r#"(import "interstice_file" "read" (func $read (param i32 i32) (result i64)))"#,
        &["(drop (call $read (i32.const 0) (i32.const 0))) (i32.const 0)"],
    );
    let message = f.node.install(&wasm).unwrap_err().to_string();
    assert_contains(
        &message,
        "imports `interstice_file` host calls without claiming",
    );
    assert_contains(&message, "add `File`");
}

#[test]
fn queries_read_files_and_reducers_are_planned_with_the_file_table() {
    let f = Fixture::new();
    f.ok("write", &["note", "hi"]);
    let peek = |path: &str| {
        f.node
            .call_query("files", "peek", &[interstice_abi::Value::from(path)])
            .unwrap()
    };
    assert_eq!(
        peek("note"),
        interstice_abi::Value::Option(Some(Box::new("hi".into())))
    );
    assert_eq!(peek("missing"), interstice_abi::Value::Option(None));
    // Declared or not, every reducer of the module writes `__files` for the scheduler.
    for reducer in ["read", "append", "mkdir", "changed"] {
        let (_, writes) = f.node.planned_access("files", reducer).unwrap();
        assert!(
            writes.contains(&"files.__files".to_owned()),
            "{reducer}: {writes:?}"
        );
    }
}
