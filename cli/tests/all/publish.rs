//! `publish`, `call_reducer`, `call_query`, `remove`, `init`, and what they say when things go
//! wrong.

use std::io::{Read, Write};
use std::net::TcpStream;

use interstice_runtime::net::{BlockingClient, ClientConfig, ErrorKind};

use crate::support::{Home, arg, hello_wasm, modules_target, workspace};

#[test]
fn publish_call_query_restart_and_query_again() {
    let home = Home::new();
    home.create("a");
    let node = home.start("a", &["--workers", "2"]);
    let target = modules_target();
    let out = home.ok(&[
        "publish",
        "a",
        arg(&workspace().join("modules/hello")),
        "--target-dir",
        arg(&target),
    ]);
    assert!(out.contains("a: installed hello v0.1.0"), "{out}");

    let out = home.ok(&["call_reducer", "a", "hello", "hello", "Ada"]);
    assert!(out.starts_with("committed"), "{out}");
    // The running node's figures; a build without audio says so when the node starts.
    let show = home.ok(&["node", "show", "a"]);
    assert!(show.contains("state:   running"), "{show}");
    assert!(show.contains("  workers: 2"), "{show}");
    if !cfg!(feature = "audio") {
        let started = node.stdout();
        assert!(started.contains("audio: not in this build"), "{started}");
    }
    let out = home.ok(&["call_query", "a", "hello", "get_greetings"]);
    assert!(out.contains("\"name\": \"Ada\""), "{out}");
    home.ok(&["call_reducer", "a", "hello", "hello", "Grace"]);

    // Arguments are parsed against the signature.
    let out = home.ok(&["call_query", "a", "hello", "greetings_since", "0", "--json"]);
    assert!(out.contains("Grace"), "{out}");
    let err = home.fails(2, &["call_reducer", "a", "hello", "hello"]);
    assert!(err.contains("takes 1 argument(s), 0 given"), "{err}");
    assert!(err.contains("hint: expected hello(name: String)"), "{err}");
    let err = home.fails(2, &["call_query", "a", "hello", "greetings_since", "soon"]);
    assert!(err.contains("argument 1 (`since: i64`)"), "{err}");
    assert!(err.contains("greetings_since(since: i64)"), "{err}");
    let err = home.fails(2, &["call_reducer", "a", "hello", "on_greeting", "{}"]);
    assert!(err.contains("cannot be called directly"), "{err}");
    let err = home.fails(3, &["call_reducer", "a", "nope", "hello"]);
    assert!(err.contains("no module `nope` on `a`"), "{err}");
    assert!(err.contains("hint: modules on `a`: hello"), "{err}");
    let err = home.fails(2, &["call_reducer", "a", "hello", "nope"]);
    assert!(err.contains("hint: reducers: hello(name: String)"), "{err}");

    // A failing reducer reports why, and commits nothing.
    let err = home.fails(3, &["call_reducer", "a", "hello", "hello", ""]);
    assert!(err.contains("failed: name must not be empty"), "{err}");

    let schema = home.ok(&["node", "schema", "a"]);
    assert!(schema.contains("reducer hello(name: String)"), "{schema}");
    assert!(
        schema.contains("query get_greetings() -> Vec<Greetings>"),
        "{schema}"
    );

    // Restart: committed greetings survive.
    drop(node);
    let show = home.ok(&["node", "show", "a"]);
    assert!(show.contains("state:   not running"), "{show}");
    let _node = home.start("a", &[]);
    let out = home.ok(&["call_query", "a", "hello", "get_greetings", "--json"]);
    assert_eq!(crate::support::names(&out), ["Ada", "Grace"]);

    home.ok(&["remove", "a", "hello"]);
    let err = home.fails(3, &["call_query", "a", "hello", "get_greetings"]);
    assert!(err.contains("no module `hello`"), "{err}");
}

#[test]
fn publish_to_two_nodes_at_once_then_the_same_version_again_replaces_it() {
    let home = Home::new();
    home.create("a");
    home.create("b");
    let _a = home.start("a", &[]);
    let _b = home.start("b", &[]);
    let wasm = arg(hello_wasm());
    let out = home.ok(&["publish", "a,b", wasm]);
    assert!(out.contains("a: installed hello v0.1.0"), "{out}");
    assert!(out.contains("b: installed hello v0.1.0"), "{out}");
    let out = home.ok(&["publish", "b,a", wasm]);
    assert!(out.contains("a: replaced hello v0.1.0"), "{out}");
    assert!(out.contains("b: replaced hello v0.1.0"), "{out}");
    assert!(!out.contains("upgraded"), "{out}");
    home.ok(&["call_reducer", "b", "hello", "hello", "Bea"]);
    let out = home.ok(&["call_query", "a", "hello", "get_greetings", "--json"]);
    assert_eq!(out.trim(), "[]", "nodes do not share data");

    // A node that does not answer is unreachable (4), not a refusal (3).
    home.create("down");
    let out = home.fails(4, &["publish", "a,down", wasm]);
    assert!(out.contains("a: replaced hello v0.1.0"), "{out}");
    assert!(out.contains("down: unreachable: cannot connect"), "{out}");
    assert!(out.contains("interstice node start down"), "{out}");
    assert!(out.contains("publishing failed on 1 of 2 node(s)"), "{out}");
}

#[test]
fn publishing_needs_the_admin_token() {
    let home = Home::new();
    let address = home.create("a");
    let _node = home.start("a", &[]);
    let wasm = std::fs::read(hello_wasm()).unwrap();

    let anonymous = BlockingClient::connect(&address, ClientConfig::default()).unwrap();
    assert!(!anonymous.is_admin());
    let err = anonymous.publish(wasm.clone()).unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Unauthorized), "{err}");
    assert!(err.to_string().contains("admin token"), "{err}");

    // A wrong token is refused at the handshake; the CLI explains.
    let mut cmd = home.cmd();
    let out = cmd
        .env("INTERSTICE_ADMIN_TOKEN", "0000")
        .args(["publish", "a", arg(hello_wasm())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrong admin token"));

    // The token from the node's folder works.
    let admin = BlockingClient::connect(
        &address,
        ClientConfig {
            admin_token: Some(home.token("a")),
            ..ClientConfig::default()
        },
    )
    .unwrap();
    assert!(admin.is_admin());
    admin.publish(wasm).unwrap();
    // hello is public: anyone may call it.
    anonymous
        .call_reducer("hello", "hello", vec![3, b'A', b'd', b'a'])
        .unwrap();
}

#[test]
fn anonymous_publish_is_an_explicit_opt_in() {
    let home = Home::new();
    let address = home.create("open");
    let _node = home.start("open", &["--allow-anonymous-publish"]);
    let anonymous = BlockingClient::connect(&address, ClientConfig::default()).unwrap();
    anonymous
        .publish(std::fs::read(hello_wasm()).unwrap())
        .unwrap();
}

/// The first `init` crate builds the SDK into the home's build cache, with its progress on a
/// piped stderr; a second crate reuses it. The cache is linked to one under `target/`, so
/// later runs of this test find it warm too.
#[test]
fn init_crates_share_one_build_cache_show_progress_and_an_incompatible_upgrade_is_refused() {
    let home = Home::new();
    let cache = workspace().join("target").join("modules-scaffold");
    std::fs::create_dir_all(&cache).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&cache, home.dir.path().join("build-cache")).unwrap();

    let projects = tempfile::tempdir().unwrap();
    // Named like the example so that publishing it over `hello` is an upgrade.
    let crate_dir = projects.path().join("hello");
    let out = home.ok(&["init", arg(&crate_dir)]);
    assert!(out.contains("created module `hello`"), "{out}");
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("crate-type = [\"cdylib\"]"), "{manifest}");
    assert!(manifest.contains("not on crates.io yet"), "{manifest}");
    assert!(crate_dir.join(".cargo/config.toml").is_file());
    let err = home.fails(2, &["init", arg(&crate_dir)]);
    assert!(err.contains("already has a Cargo.toml"), "{err}");

    home.create("a");
    home.create("b");
    let _a = home.start("a", &[]);
    let _b = home.start("b", &[]);
    home.ok(&["publish", "a", arg(hello_wasm())]);
    let run = home.run(&["publish", "a,b", arg(&crate_dir)]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(
            "a: refused: cannot upgrade module `hello`: table `greetings` changed its schema"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("b: installed hello v0.1.0"),
        "{}",
        run.stdout
    );
    // Not a terminal: cargo's lines, as they come.
    assert!(run.stderr.contains("building "), "{}", run.stderr);
    assert!(
        run.stderr.contains("  Finished `release` profile"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("built "), "{}", run.stderr);
    home.ok(&["call_reducer", "b", "hello", "hello", "Scaffold"]);
    let rows = home.ok(&["call_query", "b", "hello", "get_greetings", "--json"]);
    assert_eq!(rows.trim(), r#"[{"id":1,"name":"Scaffold"}]"#);

    // Another crate: only it compiles, the SDK comes from the cache.
    let second = projects.path().join("second");
    home.ok(&["init", arg(&second)]);
    let run = home.run(&["publish", "b", arg(&second)]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("Compiling second"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("Compiling interstice-sdk"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("b: installed second v0.1.0"),
        "{}",
        run.stdout
    );
}

/// Sends raw bytes on a fresh connection, optionally after a valid handshake, then closes it.
fn hostile(address: &str, handshake_first: bool, bytes: &[u8]) {
    let mut stream = TcpStream::connect(address).unwrap();
    if handshake_first {
        // MAGIC, the version, then Hello { kind: Cli, node_id: None, expect_node: None,
        // admin_token: None } in postcard.
        let [v0, v1] = interstice_runtime::net::PROTOCOL_VERSION.to_le_bytes();
        let hello = [b'I', b'S', b'T', b'C', v0, v1, 0, 0, 0, 0];
        stream
            .write_all(&(hello.len() as u32).to_be_bytes())
            .unwrap();
        stream.write_all(&hello).unwrap();
    }
    // The node may close the connection before all of it is written: that is the point.
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
}

#[test]
fn malformed_frames_do_not_hurt_the_node() {
    let home = Home::new();
    let address = home.create("a");
    let node = home.start("a", &[]);
    for handshake_first in [false, true] {
        hostile(
            &address,
            handshake_first,
            &[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff],
        );
        hostile(&address, handshake_first, &[0xff, 0xff, 0xff, 0xff, 0, 0]);
        hostile(&address, handshake_first, &[0, 0, 0, 200, 1, 2, 3]);
        hostile(&address, handshake_first, b"\x00\x00\x00");
        hostile(
            &address,
            handshake_first,
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        home.ok(&["node", "ping", "a"]);
    }
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert!(log.contains("closing connection"), "{log}");
}
