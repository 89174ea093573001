//! Faults injected into a real node process: kill -9 under load, and a damaged commit log.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use interstice_abi::{Value, encode};
use interstice_runtime::net::{BlockingClient, ClientConfig, ReducerOutcome};

use crate::support::{Home, arg, hello_wasm, names};

/// The commit log segments of local node `name`, oldest first.
fn segments(home: &Home, name: &str) -> Vec<PathBuf> {
    let show = home.json(0, &["node", "show", name]);
    let store = Path::new(show["data"].as_str().unwrap()).join("store");
    let mut segments: Vec<PathBuf> = std::fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    segments
}

/// The offsets of the records of a segment (after its 8-byte magic), by their length prefix.
fn records(segment: &[u8]) -> Vec<usize> {
    let mut at = 8;
    let mut starts = Vec::new();
    while at + 8 <= segment.len() {
        starts.push(at);
        let len = u32::from_le_bytes(segment[at..at + 4].try_into().unwrap()) as usize;
        at += 8 + len;
    }
    starts
}

/// `interstice args` that must exit by itself within a minute; returns (code, stderr).
fn run_to_exit(home: &Home, args: &[&str]) -> (i32, String) {
    let mut child = home
        .cmd()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            return (status.code().unwrap_or(-1), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`interstice {}` did not exit", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Damage in the middle of the log (not a torn last write) stops the node with the file, the
/// offset and what would be lost; `node repair --truncate` discards it, and the node starts
/// with the history before the damage.
#[test]
fn a_damaged_log_stops_the_node_until_the_operator_repairs_it() {
    let home = Home::new();
    home.create("a");
    {
        let _a = home.start("a", &[]);
        home.ok(&["publish", "a", arg(hello_wasm())]);
        for name in ["one", "two", "three", "four", "five", "six"] {
            home.ok(&["call_reducer", "a", "hello", "hello", name]);
        }
    }
    // Damage a record of the last segment that has records after it.
    let last = segments(&home, "a").pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    let starts = records(&bytes);
    assert!(starts.len() >= 4, "{} records", starts.len());
    let victim = starts[starts.len() / 2];
    bytes[victim + 12] ^= 0x40;
    std::fs::write(&last, &bytes).unwrap();

    let (code, stderr) = run_to_exit(&home, &["node", "start", "a"]);
    assert_eq!(code, 1, "{stderr}");
    let file = last.file_name().unwrap().to_str().unwrap();
    assert!(stderr.contains(file), "{stderr}");
    assert!(
        stderr.contains(&format!("corrupt at byte {victim}")),
        "{stderr}"
    );
    assert!(stderr.contains("would discard"), "{stderr}");
    assert!(stderr.contains("node repair"), "{stderr}");

    let (code, stderr) = run_to_exit(&home, &["node", "repair", "a"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("--truncate"), "{stderr}");
    // Nothing changed on disk before the operator said so.
    assert_eq!(std::fs::read(&last).unwrap(), bytes);

    let out = home.ok(&["node", "repair", "a", "--truncate"]);
    assert!(out.contains(file), "{out}");
    let _a = home.start("a", &[]);
    let greeted = names(&home.ok(&["call_query", "a", "hello", "get_greetings", "--json"]));
    assert!(greeted.len() < 6, "{greeted:?}");
    assert_eq!(
        greeted,
        ["one", "two", "three", "four", "five", "six"][..greeted.len()]
    );
}

/// A node killed at random moments under pipelined load keeps every commit it acknowledged,
/// each once, through every restart.
#[test]
fn kill_minus_nine_under_load_loses_no_acknowledged_commit() {
    let home = Home::new();
    let address = home.create("a");
    {
        let _a = home.start("a", &[]);
        home.ok(&["publish", "a", arg(hello_wasm())]);
    }
    let token = home.token("a");
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let rounds = 8;
    for round in 0..rounds {
        let node = home.start("a", &[]);
        let stop = Arc::new(AtomicBool::new(false));
        let loader = {
            let (address, token) = (address.clone(), token.clone());
            let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
            std::thread::spawn(move || load(&address, &token, round, &acknowledged, &stop))
        };
        // Kill it somewhere between 50 and 400 ms into the load.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(50 + rng % 350));
        let mut node = node;
        node.child.kill().unwrap();
        node.child.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        loader.join().unwrap();
    }
    let _a = home.start("a", &[]);
    let greeted = names(&home.ok(&["call_query", "a", "hello", "get_greetings", "--json"]));
    let unique: BTreeSet<&String> = greeted.iter().collect();
    assert_eq!(unique.len(), greeted.len(), "a commit applied twice");
    let acknowledged = acknowledged.lock().unwrap();
    assert!(
        acknowledged.len() > 50,
        "only {} acknowledged",
        acknowledged.len()
    );
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|n| !unique.contains(n))
        .collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}

/// Pipelines `hello` calls with names unique to `round` until stopped or disconnected, and
/// records the names the node acknowledged as committed.
fn load(
    address: &str,
    token: &str,
    round: u32,
    acknowledged: &Mutex<BTreeSet<String>>,
    stop: &AtomicBool,
) {
    let config = ClientConfig {
        admin_token: Some(token.to_owned()),
        ..ClientConfig::default()
    };
    let Ok(client) = BlockingClient::connect(address, config) else {
        return;
    };
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let batch: Vec<String> = (0..32).map(|i| format!("r{round}-{}", n + i)).collect();
        n += 32;
        // 32 calls in flight at once.
        let calls = batch.iter().map(|name| {
            let args = encode(&Value::String(name.clone()));
            client.client().call_reducer("hello", "hello", args)
        });
        let outcomes = client.block_on(futures_util::future::join_all(calls));
        let mut gone = false;
        for (name, outcome) in batch.into_iter().zip(outcomes) {
            match outcome {
                Ok(ReducerOutcome::Committed { .. }) => {
                    acknowledged.lock().unwrap().insert(name);
                }
                Ok(ReducerOutcome::Failed { reason, .. }) => panic!("{name}: {reason}"),
                Err(_) => gone = true,
            }
        }
        if gone {
            return;
        }
    }
}
