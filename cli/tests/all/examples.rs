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
    #[cfg(not(feature = "window"))]
    {
        let err = home.fails(5, &["example", "graphics"]);
        assert!(err.contains("Gpu"), "{err}");
    }
    let runnable = if cfg!(feature = "window") {
        "runnable here: hello, caller, graphics"
    } else {
        "runnable here: hello, caller"
    };
    if !cfg!(feature = "audio") {
        let err = home.fails(5, &["example", "audio"]);
        assert!(err.contains("built without audio"), "{err}");
        assert!(err.contains("--features audio"), "{err}");
        assert!(err.contains(runnable), "{err}");
    }
    let err = home.fails(2, &["example", "nope"]);
    assert!(
        err.contains("examples: hello, caller, graphics, audio"),
        "{err}"
    );
    let err = home.fails(2, &["example", "hello", "--headless"]);
    assert!(err.contains("options of the graphics example"), "{err}");
}

/// `example graphics --headless --frames 3 --screenshot out.png` renders off-screen, writes
/// the last frame and exits, without serving. The pixels are checked by interstice-window's
/// tests; here, that the command does its job and reports it.
#[cfg(feature = "window")]
#[test]
fn example_graphics_renders_frames_off_screen_and_writes_the_last_one() {
    let home = Home::new();
    let png = home.dir.path().join("out.png");
    let png_arg = png.to_str().unwrap();
    let run = home.run(&[
        "--json",
        "example",
        "graphics",
        "--headless",
        "--frames",
        "3",
        "--screenshot",
        png_arg,
    ]);
    if run.code != 0
        && run.stdout.contains("no GPU adapter found")
        && std::env::var("INTERSTICE_NO_GPU").is_ok_and(|v| v == "1")
    {
        eprintln!("GPU test NOT RUN: INTERSTICE_NO_GPU=1 and {}", run.stdout);
        return;
    }
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let last: serde_json::Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["frames"], 3, "{last}");
    assert_eq!(last["rendered"], 3, "{last}");
    assert_eq!(last["failed"], 0, "{last}");
    assert_eq!(last["screenshot"], png_arg, "{last}");
    // A PNG of the frame's size: the signature, then IHDR's width and height (big-endian).
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!(
        (width, height),
        (
            last["width"].as_u64().unwrap() as u32,
            last["height"].as_u64().unwrap() as u32
        )
    );
    // --frames needs --headless: a window runs until it is closed.
    let err = home.fails(2, &["example", "graphics", "--frames", "3"]);
    assert!(err.contains("--headless"), "{err}");
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

/// The last JSON line `interstice --json args` printed, after checking it succeeded.
fn last_json_line(home: &Home, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = home.run(&all);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let last = run.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[test]
fn example_simulation_reaches_the_same_world_on_one_and_two_workers() {
    let home = Home::new();
    let port = free_port().to_string();
    let run = |workers: &str| {
        last_json_line(
            &home,
            &[
                "example",
                "simulation",
                // Three batches (16, 16, 8 ticks), so that one runs while the one before is
                // made durable.
                "--ticks",
                "40",
                "--size",
                "48x32",
                "--regions",
                "4",
                "--workers",
                workers,
                "--port",
                &port,
            ],
        )
    };
    let one = run("1");
    let two = run("2");
    assert_eq!(one["ticks"], 40);
    assert_eq!(two["ticks"], 40);
    assert_eq!(two["workers"], 2);
    assert_eq!(one["digest"], two["digest"], "{one}\n{two}");
    assert_eq!(one["digest"].as_str().map(str::len), Some(16));
    // Options of another example are refused, naming whose they are.
    let err = home.fails(2, &["example", "hello", "--ticks", "3"]);
    assert!(err.contains("options of the simulation example"), "{err}");
    let err = home.fails(2, &["example", "simulation", "--size", "12"]);
    assert!(err.contains("WIDTHxHEIGHT"), "{err}");
}

#[test]
fn bench_measures_every_worker_count_and_draws_the_plot() {
    let home = Home::new();
    let svg = home.dir.path().join("speedup.svg");
    let report = home.json(
        0,
        &[
            "bench",
            "--workload",
            "empty",
            "--workload",
            "contended",
            "--workers",
            "1,2",
            "--seconds",
            "0.2",
            "--repeats",
            "1",
            "--svg",
            svg.to_str().unwrap(),
        ],
    );
    let rows = report["rows"].as_array().unwrap();
    let seen: Vec<(&str, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["workload"].as_str().unwrap(),
                r["workers"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("contended", 1),
            ("contended", 2),
            ("empty", 1),
            ("empty", 2)
        ]
    );
    for row in rows {
        assert!(row["throughput"].as_f64().unwrap() > 0.0, "{row}");
        assert!(
            (0.0..=1.0).contains(&row["serial_commit_share"].as_f64().unwrap()),
            "{row}"
        );
    }
    assert_eq!(rows[0]["speedup"], 1.0);
    // No simulation run, no wasm/native ratio; the native baseline is measured anyway.
    assert!(report["simulation_wasm_over_native"].is_null());
    assert!(report["rule_wasm_over_native"].is_null());
    assert!(report["simulation_wasm_over_native_store"].is_null());
    assert!(report["native_simulation_cells_per_s"].as_f64().unwrap() > 0.0);
    // The machine's own ceiling, per worker count: 1 is 1 by definition.
    let plain = report["plain_threads_speedup"].as_array().unwrap();
    assert_eq!(plain.len(), 2, "{report}");
    assert_eq!(plain[0]["workers"], 1);
    assert_eq!(plain[0]["speedup"], 1.0);
    assert!(plain[1]["speedup"].as_f64().unwrap() > 0.0, "{report}");
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(
        drawn.contains("<svg") && drawn.contains("contended"),
        "{drawn}"
    );
    let err = home.fails(2, &["bench", "--workers", "0"]);
    assert!(err.contains("at least 1"), "{err}");
}

/// The README's main job as an operator runs it: no `--ticks`, output to files. The progress
/// still shows (plain lines, as stderr is no terminal), and stopping the node (SIGTERM, as
/// Ctrl-C) sums the run up with the ticks made durable and the digest.
#[test]
fn example_simulation_logs_progress_and_sums_up_when_stopped() {
    let home = Home::new();
    let mut running = home.example(
        "simulation",
        free_port(),
        &["--size", "48x32", "--regions", "4", "--workers", "2"],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let last_shown = loop {
        let log = std::fs::read_to_string(&running.log).unwrap_or_default();
        let shown = log
            .lines()
            .filter(|l| l.starts_with("tick ") && l.contains(" ticks/s · "))
            .filter_map(|l| l["tick ".len()..].split(' ').next()?.parse::<u64>().ok())
            .next_back();
        if let Some(tick) = shown {
            break tick;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no progress line in a minute:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let pid = running.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = running.child.wait().unwrap();
    let out = running.stdout();
    assert!(status.success(), "{status}\n{out}");
    let summary = out
        .lines()
        .find(|l| l.contains(" ticks in "))
        .unwrap_or_else(|| panic!("no summary after stopping:\n{out}"));
    let ticks: u64 = summary.split(' ').next().unwrap().parse().unwrap();
    assert!(
        ticks >= last_shown,
        "the summary counts every durable tick shown: {summary} after tick {last_shown}"
    );
    assert!(out.contains("\ndigest "), "{out}");
    assert!(
        out.find("stopped").unwrap() < out.find(summary).unwrap(),
        "{out}"
    );
}
