//! `--json`: every command prints one JSON document on stdout, errors included, in the shapes
//! `docs/CLI-JSON.md` documents.

use serde_json::{Value, json};

use crate::support::{Home, arg, free_port, hello_wasm};

/// `{"error": {kind, message, hint, code}}` with this kind and code.
fn assert_error(doc: &Value, kind: &str, code: i32) {
    let error = &doc["error"];
    assert_eq!(error["kind"], kind, "{doc}");
    assert_eq!(error["code"], code, "{doc}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{doc}"
    );
    assert!(
        error["hint"].is_string() || error["hint"].is_null(),
        "{doc}"
    );
}

/// The JSON lines a long-running command printed, parsed.
fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn every_command_speaks_json() {
    let home = Home::new();
    let port = free_port();
    let created = home.json(0, &["node", "create", "a", &port.to_string()]);
    assert_eq!(created["name"], "a");
    assert_eq!(created["kind"], "local");
    assert_eq!(created["address"], format!("127.0.0.1:{port}"));
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(created["token"].as_str().unwrap().ends_with("admin_token"));

    let added = home.json(0, &["node", "add", "far", "127.0.0.1:1"]);
    assert_eq!(added["kind"], "remote");
    assert_eq!(added["reachable"], false);
    assert_eq!(added["id"], Value::Null);
    assert!(added["unreachable_reason"].is_string());
    // The flag goes anywhere, as for every global flag.
    let list = home.run(&["node", "list", "--json"]);
    let list: Value = serde_json::from_str(&list.stdout).unwrap();
    let names: Vec<&str> = list["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "far"]);
    // `node show` is the node object, and whether it runs (with its figures when it does).
    let mut shown = home.json(0, &["node", "show", &id[..6]]);
    let shown_map = shown.as_object_mut().unwrap();
    assert_eq!(shown_map.remove("running"), Some(json!(false)));
    assert_eq!(shown_map.remove("stats"), Some(Value::Null));
    assert_eq!(shown, created);
    let renamed = home.json(0, &["node", "rename", "far", "far2"]);
    assert_eq!(renamed["old"], "far");
    assert_eq!(renamed["new"], "far2");
    assert_error(&home.json(4, &["node", "ping", "far2"]), "unreachable", 4);
    assert_error(&home.json(1, &["node", "show", "nope"]), "no_such_node", 1);
    assert_error(&home.json(2, &["node", "pin", "a"]), "usage", 2);
    assert_error(&home.json(2, &["node", "create", "x", "0"]), "usage", 2);

    // A node: one JSON line per event.
    let mut start = home.cmd();
    start.args(["--json", "node", "start", "a"]);
    let node = home.spawn_until_answers(start, home.dir.path().join("a.log"), "a");
    let events = lines(&node.stdout());
    assert_eq!(events[0]["event"], "listening", "{events:?}");
    assert_eq!(events[0]["id"], id.as_str());
    assert_eq!(events[0]["modules"], json!([]));
    assert_eq!(events[0]["audio"], json!(cfg!(feature = "audio")));
    let shown = home.json(0, &["node", "show", "a"]);
    assert_eq!(shown["running"], json!(true), "{shown}");
    assert!(shown["stats"]["invocations"].is_string(), "{shown}");
    let ping = home.json(0, &["node", "ping", "a"]);
    assert!(ping["rtt_us"].is_u64(), "{ping}");
    assert_eq!(ping["id"], id.as_str());

    let published = home.json(0, &["publish", "a", arg(hello_wasm())]);
    assert_eq!(
        published["nodes"],
        json!([{"node": "a", "outcome": "installed", "module": "hello", "version": "0.1.0"}])
    );
    assert!(published["build"]["bytes"].as_u64().unwrap() > 0);
    let again = home.json(0, &["publish", "a", arg(hello_wasm())]);
    assert_eq!(again["nodes"][0]["outcome"], "replaced");
    let partial = home.json(4, &["publish", "a,far2", arg(hello_wasm())]);
    assert_error(&partial, "unreachable", 4);
    assert_eq!(partial["nodes"][0]["outcome"], "replaced");
    assert_eq!(partial["nodes"][1]["outcome"], "unreachable");
    assert_eq!(partial["nodes"][1]["error"]["code"], 4);

    let committed = home.json(0, &["call_reducer", "a", "hello", "hello", "Ada"]);
    assert_eq!(committed["outcome"], "committed");
    assert!(committed["seq"].is_u64());
    let failed = home.json(3, &["call_reducer", "a", "hello", "hello", ""]);
    assert_error(&failed, "reducer_failed", 3);
    assert_eq!(failed["outcome"], "failed");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("must not be empty")
    );
    assert_error(
        &home.json(2, &["call_reducer", "a", "hello", "hello"]),
        "usage",
        2,
    );
    assert_error(
        &home.json(3, &["call_query", "a", "nope", "q"]),
        "not_found",
        3,
    );
    let rows = home.json(0, &["call_query", "a", "hello", "get_greetings"]);
    assert_eq!(rows[0]["name"], "Ada");

    let schema = home.json(0, &["node", "schema", "a"]);
    assert_eq!(schema["admin"], true);
    assert_eq!(schema["modules"][0]["name"], "hello");
    let file = home.dir.path().join("schema.json");
    let written = home.json(0, &["node", "schema", "a", arg(&file)]);
    assert_eq!(written["modules"], 1);
    assert!(file.is_file());

    let project = tempfile::tempdir().unwrap();
    let init = home.json(0, &["init", arg(&project.path().join("m"))]);
    assert_eq!(init["module"], "m");
    assert!(
        init["files"]
            .as_array()
            .unwrap()
            .contains(&json!("Cargo.toml"))
    );
    let crate_dir = project.path().join("m");
    let bound = home.json(
        0,
        &["bindings", "add", "module", "a", "hello", arg(&crate_dir)],
    );
    assert_eq!(bound["binding"], "module");
    assert!(bound["written"].as_str().unwrap().ends_with("hello.toml"));
    assert!(!bound["usage"].as_array().unwrap().is_empty());
    let bound = home.json(
        0,
        &[
            "bindings",
            "add",
            "node",
            "a",
            arg(&crate_dir),
            "--name",
            "h",
        ],
    );
    assert_eq!(bound["binding"], "node");
    assert_eq!(bound["modules"], json!(["hello"]));

    let removed = home.json(0, &["remove", "a", "hello"]);
    assert_eq!(removed, json!({"node": "a", "removed": "hello"}));
    drop(node);

    let update = home.json(0, &["update", "--dry-run"]);
    assert_eq!(update["dry_run"], true);
    assert!(
        update["command"]
            .as_array()
            .unwrap()
            .contains(&json!("install"))
    );
    let completions = home.json(0, &["completions", "fish"]);
    assert!(
        completions["script"]
            .as_str()
            .unwrap()
            .contains("complete -c interstice")
    );
    // An example this build cannot run (the Audio authority is a cargo feature).
    if !cfg!(feature = "audio") {
        assert_error(&home.json(5, &["example", "audio"]), "unavailable", 5);
    }
    assert_error(&home.json(2, &["example", "nope"]), "usage", 2);

    let removed = home.json(0, &["node", "remove", "far2"]);
    assert_eq!(removed["removed"], "far2");
    assert_eq!(removed["data_deleted"], false);
}

#[test]
fn an_example_prints_json_lines() {
    let home = Home::new();
    let mut cmd = home.cmd();
    cmd.args([
        "--json",
        "example",
        "hello",
        "--port",
        &free_port().to_string(),
    ]);
    let running =
        home.spawn_until_answers(cmd, home.dir.path().join("example.log"), "example-hello");
    let events = lines(&running.stdout());
    assert_eq!(events[0]["event"], "installed", "{events:?}");
    assert_eq!(events[0]["module"], "hello");
    assert_eq!(events[1]["event"], "listening", "{events:?}");
    assert_eq!(events[1]["node"], "example-hello");
}
