//! `interstice example`: the modules are in the binary.

use crate::support::{Home, bare, binary, free_port, names};

/// The binary copied into an empty folder and run with an empty environment (no PATH, so no
/// cargo; no checkout around): the example still runs, and answers.
#[test]
fn an_installed_binary_runs_the_example_away_from_the_checkout() {
    let home = Home::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("interstice");
    std::fs::copy(binary(), &copy).unwrap();
    let port = free_port();
    let mut cmd = bare(&copy);
    cmd.current_dir(elsewhere.path())
        .env("INTERSTICE_HOME", home.dir.path())
        .env("RUST_LOG", "info")
        .args(["example", "hello", "--port", &port.to_string()]);
    let log = home.dir.path().join("example.log");
    let running = home.spawn_until_answers(cmd, log, "example-hello");

    home.ok(&["call_reducer", "example-hello", "hello", "hello", "Ada"]);
    let out = home.ok(&[
        "call_query",
        "example-hello",
        "hello",
        "get_greetings",
        "--json",
    ]);
    assert_eq!(names(&out), ["Ada"]);
    assert!(
        home.dir
            .path()
            .join("nodes/example-hello/admin_token")
            .is_file()
    );
    let stdout = running.stdout();
    assert!(stdout.contains("installed hello v0.1.0"), "{stdout}");
    assert!(
        stdout.contains(&format!("listening on 127.0.0.1:{port}")),
        "{stdout}"
    );
    drop(running);

    // Again, on the same data: the same version replaces itself, the greeting is still there.
    let mut cmd = bare(&copy);
    cmd.current_dir(elsewhere.path())
        .env("INTERSTICE_HOME", home.dir.path())
        .args(["example", "hello", "--port", &port.to_string()]);
    let running = home.spawn_until_answers(cmd, home.dir.path().join("again.log"), "example-hello");
    let out = home.ok(&[
        "call_query",
        "example-hello",
        "hello",
        "get_greetings",
        "--json",
    ]);
    assert_eq!(names(&out), ["Ada"]);
    assert!(
        running.stdout().contains("replaced hello v0.1.0"),
        "{}",
        running.stdout()
    );
}

#[test]
fn examples_that_need_missing_features_say_so() {
    let home = Home::new();
    let err = home.fails(5, &["example", "graphics"]);
    assert!(err.contains("Gpu"), "{err}");
    assert!(err.contains("runnable here: hello, caller"), "{err}");
    if !cfg!(feature = "audio") {
        let err = home.fails(5, &["example", "audio"]);
        assert!(err.contains("built without audio"), "{err}");
        assert!(err.contains("--features audio"), "{err}");
    }
    let err = home.fails(2, &["example", "nope"]);
    assert!(
        err.contains("examples: hello, caller, graphics, audio"),
        "{err}"
    );
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
