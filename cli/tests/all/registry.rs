//! `node create|add|list|show|rename|remove|ping|schema`.

use crate::support::{Home, arg, hello_wasm};

fn uuid_version(id: &str) -> Option<char> {
    (id.len() == 36).then(|| id.chars().nth(14)).flatten()
}

#[test]
fn the_node_registry() {
    let home = Home::new();
    let err = home.fails(1, &["node", "show", "a"]);
    assert!(
        err.contains("error: no node named `a` (no nodes yet)"),
        "{err}"
    );
    assert!(err.contains("hint: `interstice node create"), "{err}");

    home.ok(&["node", "create", "a", "18080"]);
    let err = home.fails(1, &["node", "create", "a", "18081"]);
    assert!(err.contains("already exists"), "{err}");
    let err = home.fails(2, &["node", "create", "c", "18080"]);
    assert!(err.contains("already uses 127.0.0.1:18080"), "{err}");
    home.ok(&["node", "add", "far", "127.0.0.1:1"]);
    let list = home.ok(&["node", "list"]);
    assert!(list.contains("a ") && list.contains("local"), "{list}");
    assert!(list.contains("far") && list.contains("remote"), "{list}");

    let show = home.ok(&["node", "show", "a"]);
    let id = show
        .lines()
        .find_map(|l| l.strip_prefix("id:"))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(uuid_version(&id), Some('4'), "{id}");
    let token = home.token("a");
    assert_eq!(token.len(), 64, "32 random bytes in hex");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = home.dir.path().join("nodes").join(&id).join("admin_token");
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // By id, and by the start of the id, as well as by name.
    assert!(home.ok(&["node", "show", &id]).contains("name:    a"));
    assert!(home.ok(&["node", "show", &id[..8]]).contains("name:    a"));

    home.ok(&["node", "rename", "a", "b"]);
    assert!(home.ok(&["node", "list"]).contains("b "));
    // A remote node that does not answer: no advice to start it here.
    let err = home.fails(4, &["node", "ping", "far"]);
    assert!(
        err.contains("hint: is it running, and is 127.0.0.1:1 reachable"),
        "{err}"
    );
    assert!(!err.contains("node start"), "{err}");
    // A local one: start it.
    let err = home.fails(4, &["node", "ping", "b"]);
    assert!(err.contains("interstice node start b"), "{err}");
    let err = home.fails(2, &["node", "start", "far"]);
    assert!(err.contains("is remote"), "{err}");
    home.ok(&["node", "remove", "far"]);
    let out = home.ok(&["node", "remove", "b", "--purge"]);
    assert!(out.contains("deleted its data"), "{out}");
    assert!(!home.dir.path().join("nodes").join(&id).exists());
    assert!(home.ok(&["node", "list"]).contains("no nodes yet"));
}

#[test]
fn the_schema_summary_shows_authorities() {
    let home = Home::new();
    home.create("a");
    let _a = home.start("a", &[]);
    home.ok(&["publish", "a", arg(hello_wasm())]);
    let schema = home.ok(&["node", "schema", "a"]);
    assert!(
        schema.contains("hello 0.1.0 (public)\n  authorities: none"),
        "{schema}"
    );
    assert!(
        schema.contains("authorities held on this node: none"),
        "{schema}"
    );
}

/// The registry, a node's folder, its data and its admin token are owner-only.
#[cfg(unix)]
#[test]
fn the_home_and_node_folders_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    home.create("a");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let node = std::fs::read_dir(home.dir.path().join("nodes"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(mode(home.dir.path()), 0o700);
    assert_eq!(mode(&node), 0o700);
    assert_eq!(mode(&node.join("data")), 0o700);
    assert_eq!(mode(&node.join("admin_token")), 0o600);
}
