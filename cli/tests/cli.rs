//! End to end through the real `interstice` binary: nodes are child processes on loopback, each
//! test with its own `INTERSTICE_HOME`.

// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use interstice_runtime::build::{BuildOptions, build_module};
use interstice_runtime::net::{BlockingClient, ClientConfig, ErrorKind};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where test builds of modules go; the `cargo test` running us holds the lock on ours.
fn modules_target() -> PathBuf {
    workspace().join("target").join("modules")
}

/// hello.wasm, built once per test binary.
fn hello_wasm() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let options = BuildOptions {
            target_dir: Some(modules_target()),
            ..BuildOptions::default()
        };
        let wasm = build_module(&workspace().join("modules").join("hello"), &options)
            .unwrap_or_else(|e| panic!("building modules/hello: {e}"));
        let dir = std::env::temp_dir().join(format!("interstice-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hello.wasm");
        std::fs::write(&path, wasm).unwrap();
        path
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One CLI home (a temporary `INTERSTICE_HOME`).
struct Home {
    dir: tempfile::TempDir,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("interstice").unwrap();
        cmd.env("INTERSTICE_HOME", self.dir.path())
            .env_remove("INTERSTICE_ADMIN_TOKEN")
            .env("RUST_LOG", "warn");
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = self.cmd().args(args).output().unwrap();
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(
            run.code,
            0,
            "`interstice {}` failed:\n{}\n{}",
            args.join(" "),
            run.stdout,
            run.stderr
        );
        run.stdout
    }

    /// Runs and expects exit code `code`; returns stdout and stderr together.
    fn fails(&self, code: i32, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(
            run.code,
            code,
            "`interstice {}`:\n{}\n{}",
            args.join(" "),
            run.stdout,
            run.stderr
        );
        format!("{}{}", run.stdout, run.stderr)
    }

    /// `node create` on a free port; returns the address.
    fn create(&self, name: &str) -> String {
        let port = free_port();
        self.ok(&["node", "create", name, &port.to_string()]);
        format!("127.0.0.1:{port}")
    }

    /// `node start` as a child process, returned once it answers `node ping`.
    fn start(&self, name: &str, extra: &[&str]) -> Running {
        let log = self.dir.path().join(format!("{name}.log"));
        let mut cmd = self.cmd();
        cmd.args(["node", "start", name]).args(extra);
        self.spawn_until_answers(cmd, log, name)
    }

    /// Spawns `cmd` (a node process, stderr to `log`) and waits until node `name` answers.
    fn spawn_until_answers(&self, mut cmd: Command, log: PathBuf, name: &str) -> Running {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut running = Running { child, log };
        loop {
            if let Some(status) = running.child.try_wait().unwrap() {
                panic!(
                    "node `{name}` exited ({status}):\n{}",
                    std::fs::read_to_string(&running.log).unwrap_or_default()
                );
            }
            if self.run(&["node", "ping", name]).code == 0 {
                return running;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn token(&self, name: &str) -> String {
        let show = self.ok(&["node", "show", name]);
        let path = show
            .lines()
            .find_map(|l| l.strip_prefix("token:"))
            .unwrap()
            .trim()
            .to_owned();
        std::fs::read_to_string(path).unwrap()
    }
}

/// A node process, killed when dropped.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn publish_call_query_restart_and_query_again() {
    let home = Home::new();
    home.create("a");
    let node = home.start("a", &["--workers", "2"]);
    let target = modules_target();
    let out = home.ok(&[
        "publish",
        "a",
        workspace().join("modules/hello").to_str().unwrap(),
        "--target-dir",
        target.to_str().unwrap(),
    ]);
    assert!(out.contains("a: installed hello v0.1.0"), "{out}");

    let out = home.ok(&["call_reducer", "a", "hello", "hello", "Ada"]);
    assert!(out.starts_with("committed"), "{out}");
    let out = home.ok(&["call_query", "a", "hello", "get_greetings"]);
    assert!(out.contains("\"name\": \"Ada\""), "{out}");

    // Scripts get JSON.
    let out = home.ok(&["call_query", "a", "hello", "get_greetings", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(rows[0]["name"], "Ada");
    let out = home.ok(&["call_reducer", "a", "hello", "hello", "Grace", "--json"]);
    let outcome: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(outcome["outcome"], "committed");

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
    let _node = home.start("a", &[]);
    let out = home.ok(&["call_query", "a", "hello", "get_greetings", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ada", "Grace"]);

    home.ok(&["remove", "a", "hello"]);
    let err = home.fails(3, &["call_query", "a", "hello", "get_greetings"]);
    assert!(err.contains("no module `hello`"), "{err}");
}

#[test]
fn publish_to_two_nodes_at_once_and_upgrade() {
    let home = Home::new();
    home.create("a");
    home.create("b");
    let _a = home.start("a", &[]);
    let _b = home.start("b", &[]);
    let wasm = hello_wasm().to_str().unwrap();
    let out = home.ok(&["publish", "a,b", wasm]);
    assert!(out.contains("a: installed hello v0.1.0"), "{out}");
    assert!(out.contains("b: installed hello v0.1.0"), "{out}");
    let out = home.ok(&["publish", "b,a", wasm]);
    assert!(
        out.contains("a: upgraded hello from v0.1.0 to v0.1.0"),
        "{out}"
    );
    assert!(
        out.contains("b: upgraded hello from v0.1.0 to v0.1.0"),
        "{out}"
    );
    home.ok(&["call_reducer", "b", "hello", "hello", "Bea"]);
    let out = home.ok(&["call_query", "a", "hello", "get_greetings", "--json"]);
    assert_eq!(out.trim(), "[]", "nodes do not share data");
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
        .args(["publish", "a", hello_wasm().to_str().unwrap()])
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

#[test]
fn init_scaffold_builds_and_an_incompatible_upgrade_is_refused() {
    let home = Home::new();
    let projects = tempfile::tempdir().unwrap();
    // Named like the example so that publishing it over `hello` is an upgrade.
    let crate_dir = projects.path().join("hello");
    let out = home.ok(&["init", crate_dir.to_str().unwrap()]);
    assert!(out.contains("created module `hello`"), "{out}");
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("crate-type = [\"cdylib\"]"), "{manifest}");
    assert!(manifest.contains("not on crates.io yet"), "{manifest}");
    assert!(crate_dir.join(".cargo/config.toml").is_file());
    let err = home.fails(2, &["init", crate_dir.to_str().unwrap()]);
    assert!(err.contains("already has a Cargo.toml"), "{err}");

    home.create("a");
    home.create("b");
    let _a = home.start("a", &[]);
    let _b = home.start("b", &[]);
    home.ok(&["publish", "a", hello_wasm().to_str().unwrap()]);
    // Its own target dir: its package is also called `hello`.
    let target = workspace().join("target").join("modules-scaffold");
    let out = home.fails(
        3,
        &[
            "publish",
            "a,b",
            crate_dir.to_str().unwrap(),
            "--target-dir",
            target.to_str().unwrap(),
        ],
    );
    assert!(
        out.contains(
            "a: refused: cannot upgrade module `hello`: table `greetings` changed its schema"
        ),
        "{out}"
    );
    assert!(out.contains("b: installed hello v0.1.0"), "{out}");
    assert!(out.contains("publishing failed on 1 of 2 node(s)"), "{out}");
    home.ok(&["call_reducer", "b", "hello", "hello", "Scaffold"]);
    let rows = home.ok(&["call_query", "b", "hello", "get_greetings", "--json"]);
    assert_eq!(rows.trim(), r#"[{"id":1,"name":"Scaffold"}]"#);
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
    // By id as well as by name.
    assert!(home.ok(&["node", "show", &id]).contains("name:    a"));

    home.ok(&["node", "rename", "a", "b"]);
    assert!(home.ok(&["node", "list"]).contains("b "));
    let err = home.fails(4, &["node", "ping", "far"]);
    assert!(err.contains("hint: is it running?"), "{err}");
    let err = home.fails(2, &["node", "start", "far"]);
    assert!(err.contains("is remote"), "{err}");
    home.ok(&["node", "remove", "far"]);
    let out = home.ok(&["node", "remove", "b", "--purge"]);
    assert!(out.contains("deleted its data"), "{out}");
    assert!(!home.dir.path().join("nodes").join(&id).exists());
    assert!(home.ok(&["node", "list"]).contains("no nodes yet"));
}

fn uuid_version(id: &str) -> Option<char> {
    (id.len() == 36).then(|| id.chars().nth(14)).flatten()
}

#[test]
fn examples_that_need_missing_features_say_so() {
    let home = Home::new();
    let err = home.fails(5, &["example", "graphics"]);
    assert!(err.contains("Gpu"), "{err}");
    let err = home.fails(5, &["example", "audio"]);
    assert!(err.contains("Audio"), "{err}");
    let err = home.fails(2, &["example", "nope"]);
    assert!(
        err.contains("examples: hello, caller, graphics, audio"),
        "{err}"
    );
}

impl Home {
    /// `example <name> --port <port> [extra]` as a child process, returned once it answers.
    fn example(&self, name: &str, port: u16, extra: &[&str]) -> Running {
        let log = self.dir.path().join(format!("example-{name}-{port}.log"));
        let mut cmd = self.cmd();
        cmd.args(["example", name, "--port", &port.to_string()])
            .args(extra)
            .env("RUST_LOG", "info")
            // Built into the shared test target dir through CARGO_TARGET_DIR.
            .env("CARGO_TARGET_DIR", modules_target());
        // The example registers its node before building; wait until it answers.
        self.spawn_until_answers(cmd, log, &format!("example-{name}"))
    }

    /// Runs `args` until its stdout satisfies `check`; fails the test after a minute.
    fn until(&self, args: &[&str], check: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.ok(args);
            if check(&out) {
                return out;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "`interstice {}` never satisfied the test; last output:\n{out}",
                args.join(" ")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The `name` fields of a JSON list of rows, in order.
fn names(json: &str) -> Vec<String> {
    let rows: serde_json::Value = serde_json::from_str(json).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

/// `connected` of each row of caller's `connections`, in order.
fn connected(json: &str) -> Vec<bool> {
    let rows: serde_json::Value = serde_json::from_str(json).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["connected"].as_bool().unwrap())
        .collect()
}

#[test]
fn example_caller_sees_example_hello_and_reconnects_after_it_restarts() {
    let home = Home::new();
    let hello_port = free_port();
    let caller_port = free_port();
    let hello = home.example("hello", hello_port, &[]);
    let peer = format!("hello_node=127.0.0.1:{hello_port}");
    let caller = home.example("caller", caller_port, &["--peer", &peer]);
    let received = [
        "call_query",
        "example-caller",
        "caller",
        "received",
        "--json",
    ];
    let connections = [
        "call_query",
        "example-caller",
        "caller",
        "connections",
        "--json",
    ];

    // Connecting greets hello; hello's insert comes back through the remote subscription.
    home.until(&received, |out| names(out) == ["caller"]);
    home.ok(&["call_reducer", "example-caller", "caller", "greet", "Ada"]);
    home.ok(&["call_reducer", "example-hello", "hello", "hello", "Bob"]);
    home.until(&received, |out| names(out) == ["caller", "Ada", "Bob"]);
    let greetings = home.ok(&[
        "call_query",
        "example-hello",
        "hello",
        "get_greetings",
        "--json",
    ]);
    assert_eq!(names(&greetings), ["caller", "Ada", "Bob"]);

    // Hello stops: caller's `disconnect` hook fires.
    drop(hello);
    home.until(&connections, |out| connected(out) == [true, false]);
    // Hello comes back on the same data: caller reconnects by itself and greets it again.
    let hello = home.example("hello", hello_port, &[]);
    home.until(&connections, |out| connected(out) == [true, false, true]);
    home.until(&received, |out| {
        names(out) == ["caller", "Ada", "Bob", "caller"]
    });
    let log = std::fs::read_to_string(&caller.log).unwrap();
    assert!(log.contains("connected to peer"), "{log}");
    assert!(log.contains("disconnected from peer"), "{log}");
    drop((hello, caller));
}

#[test]
fn bindings_add_writes_the_public_schema_that_modules_caller_is_bound_with() {
    let home = Home::new();
    home.create("a");
    let _a = home.start("a", &[]);
    home.ok(&["publish", "a", hello_wasm().to_str().unwrap()]);
    let project = tempfile::tempdir().unwrap();
    let err = home.fails(
        2,
        &[
            "bindings",
            "add",
            "node",
            "a",
            project.path().to_str().unwrap(),
        ],
    );
    assert!(err.contains("not a module crate"), "{err}");
    std::fs::write(
        project.path().join("Cargo.toml"),
        "[package]\nname = \"m\"\n",
    )
    .unwrap();
    let out = home.ok(&[
        "bindings",
        "add",
        "node",
        "a",
        project.path().to_str().unwrap(),
        "--name",
        "hello_node",
    ]);
    assert!(
        out.contains("bindings::hello_node::hello::hello(&ctx, name: String)"),
        "{out}"
    );
    assert!(
        out.contains("on = \"hello_node.hello.greetings.insert\""),
        "{out}"
    );
    let node =
        std::fs::read_to_string(project.path().join("src/bindings/node_hello_node.toml")).unwrap();
    let binding: interstice_abi::NodeBinding = toml::from_str(&node).unwrap();
    assert_eq!(binding.name, "hello_node");
    assert_eq!(binding.modules.len(), 1);
    let hello = &binding.modules[0];
    // The public view: private tables and subscribed reducers are not part of it.
    assert!(hello.table("greetings").is_some());
    assert!(hello.table("stats").is_none());
    assert!(hello.reducers.iter().all(|r| r.on.is_none()));
    // What modules/caller was bound with, modulo the address and the node id.
    let checked_in: interstice_abi::NodeBinding = toml::from_str(
        &std::fs::read_to_string(
            workspace().join("modules/caller/src/bindings/node_hello_node.toml"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        checked_in.modules, binding.modules,
        "regenerate modules/caller's binding"
    );

    home.ok(&[
        "bindings",
        "add",
        "module",
        "a",
        "hello",
        project.path().to_str().unwrap(),
    ]);
    let module: interstice_abi::ModuleSchema = toml::from_str(
        &std::fs::read_to_string(project.path().join("src/bindings/hello.toml")).unwrap(),
    )
    .unwrap();
    assert_eq!(&module, hello);
    let err = home.fails(
        3,
        &[
            "bindings",
            "add",
            "module",
            "a",
            "nope",
            project.path().to_str().unwrap(),
        ],
    );
    assert!(err.contains("no public module `nope`"), "{err}");
}

#[test]
fn update_installs_from_the_checkout() {
    let home = Home::new();
    let out = home.ok(&["update", "--dry-run"]);
    assert!(out.contains("\"install\" \"--path\""), "{out}");
    assert!(out.contains("cli"), "{out}");
    let empty = tempfile::tempdir().unwrap();
    let err = home.fails(2, &["update", "--source", empty.path().to_str().unwrap()]);
    assert!(err.contains("not an Interstice checkout"), "{err}");
}

#[test]
fn example_hello_serves_the_hello_module() {
    let home = Home::new();
    let port = free_port();
    let running = home.example("hello", port, &[]);
    home.ok(&["call_reducer", "example-hello", "hello", "hello", "Ada"]);
    let out = home.ok(&["call_query", "example-hello", "hello", "get_greetings"]);
    assert!(out.contains("Ada"), "{out}");
    assert!(
        home.dir
            .path()
            .join("nodes/example-hello/admin_token")
            .is_file()
    );
    drop(running);
}

#[test]
fn every_command_has_help_with_an_example() {
    let home = Home::new();
    for args in [
        vec!["--help"],
        vec!["node", "create", "--help"],
        vec!["node", "start", "--help"],
        vec!["publish", "--help"],
        vec!["call_reducer", "--help"],
        vec!["call_query", "--help"],
        vec!["init", "--help"],
        vec!["example", "--help"],
        vec!["bindings", "add", "node", "--help"],
        vec!["bindings", "add", "module", "--help"],
        vec!["update", "--help"],
    ] {
        let out = home.ok(&args);
        assert!(out.contains("Example"), "{args:?}: {out}");
    }
}
