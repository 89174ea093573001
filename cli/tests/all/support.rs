//! Helpers: a CLI home per test, nodes as child processes, the modules the tests publish.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use interstice_build::{BuildOptions, TargetDir, build_module};

/// How long a command that should end by itself may run (a build of the examples included).
const COMMAND_PATIENCE: std::time::Duration = std::time::Duration::from_secs(300);

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where the tests build modules: one cache, shared with the build script and the runtime's
/// tests (the `cargo test` running us holds the lock on the workspace's target directory).
pub fn modules_target() -> PathBuf {
    workspace().join("target").join("modules")
}

/// `modules/<name>` built with `features`, written to a .wasm file once per test binary run.
fn built(name: &str, features: &[&str]) -> PathBuf {
    let options = BuildOptions {
        target_dir: TargetDir::Shared(modules_target()),
        features: features.iter().map(|f| (*f).to_owned()).collect(),
        ..BuildOptions::default()
    };
    let wasm = build_module(&workspace().join("modules").join(name), &options)
        .unwrap_or_else(|e| panic!("building modules/{name} {features:?}: {e}"));
    let dir = std::env::temp_dir().join(format!("interstice-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}-{}.wasm", features.join("-")));
    std::fs::write(&path, wasm).unwrap();
    path
}

/// hello.wasm.
pub fn hello_wasm() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| built("hello", &[]))
}

/// twins.wasm: two bindings with a `Greetings` each, and its own.
pub fn twins_wasm() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| built("twins", &[]))
}

/// twins.wasm with the `conflict` feature: it panics while describing itself.
pub fn conflicting_twins_wasm() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| built("twins", &["conflict"]))
}

/// The `interstice` binary cargo built for these tests.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_interstice"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A path as an argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// One CLI home (a temporary `INTERSTICE_HOME`).
pub struct Home {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(binary());
        cmd.env("INTERSTICE_HOME", self.dir.path())
            .env_remove("INTERSTICE_ADMIN_TOKEN")
            .env("RUST_LOG", "warn");
        cmd
    }

    /// Runs `interstice args` to its end. A command that does not end within
    /// [`COMMAND_PATIENCE`] (one that serves when it should have refused) is killed and fails
    /// the test, instead of hanging the suite.
    pub fn run(&self, args: &[&str]) -> Run {
        let child = self
            .cmd()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(child.wait_with_output()));
        let Ok(output) = finished.recv_timeout(COMMAND_PATIENCE) else {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!(
                "`interstice {}` was still running after {COMMAND_PATIENCE:?}",
                args.join(" ")
            );
        };
        let Output {
            status,
            stdout,
            stderr,
        } = output.unwrap();
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
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
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
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

    /// Runs with `--json`, expects exit code `code`, and returns the one JSON document on
    /// stdout.
    pub fn json(&self, code: i32, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let run = self.run(&all);
        assert_eq!(
            run.code,
            code,
            "`interstice {}`:\n{}\n{}",
            all.join(" "),
            run.stdout,
            run.stderr
        );
        serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "`interstice {}` printed no single JSON document ({e}):\n{}",
                all.join(" "),
                run.stdout
            )
        })
    }

    /// `node create` on a free port; returns the address.
    pub fn create(&self, name: &str) -> String {
        let port = free_port();
        self.ok(&["node", "create", name, &port.to_string()]);
        format!("127.0.0.1:{port}")
    }

    /// `node start` as a child process, returned once it answers `node ping`.
    pub fn start(&self, name: &str, extra: &[&str]) -> Running {
        let log = self.dir.path().join(format!("{name}.log"));
        let mut cmd = self.cmd();
        cmd.args(["node", "start", name]).args(extra);
        self.spawn_until_answers(cmd, log, name)
    }

    /// `example <name> --port <port> [extra]` as a child process, returned once it answers.
    pub fn example(&self, name: &str, port: u16, extra: &[&str]) -> Running {
        let log = self.dir.path().join(format!("example-{name}-{port}.log"));
        let mut cmd = self.cmd();
        cmd.args(["example", name, "--port", &port.to_string()])
            .args(extra)
            .env("RUST_LOG", "info");
        self.spawn_until_answers(cmd, log, &format!("example-{name}"))
    }

    /// Spawns `cmd` (a node process, stderr to `log`, stdout to `log.out`) and waits until
    /// node `name` answers.
    pub fn spawn_until_answers(&self, mut cmd: Command, log: PathBuf, name: &str) -> Running {
        let child = cmd
            .stdout(std::fs::File::create(log.with_extension("out")).unwrap())
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

    pub fn token(&self, name: &str) -> String {
        let show = self.json(0, &["node", "show", name]);
        std::fs::read_to_string(show["token"].as_str().unwrap()).unwrap()
    }

    /// Runs `args` until its stdout satisfies `check`; fails the test after a minute.
    pub fn until(&self, args: &[&str], check: impl Fn(&str) -> bool) -> String {
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

/// A node process, killed when dropped.
pub struct Running {
    pub child: Child,
    /// Its stderr; its stdout is beside it, with the extension `out`.
    pub log: PathBuf,
}

impl Running {
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.log.with_extension("out")).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `name` fields of a JSON list of rows, in order.
pub fn names(json: &str) -> Vec<String> {
    let rows: serde_json::Value = serde_json::from_str(json).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A process that inherits nothing: the copied binary of the examples test.
pub fn bare(binary: &Path) -> Command {
    let mut cmd = Command::new(binary);
    cmd.env_clear().stdin(Stdio::null());
    cmd
}
