//! `interstice node ...`: the registry, running a local node, ping and schema.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use interstice_runtime::net::{self, Client, ClientConfig, Peers, PeersConfig, ServerConfig};
use interstice_runtime::{AccessPolicy, Node, NodeConfig, NodeError};
use serde_json::json;

use super::connect;
use crate::error::{CliError, Result};
use crate::home::{Home, NodeEntry, ensure_admin_token};
use crate::output::Output;
use crate::platforms::Platforms;
use crate::runtime;

pub fn create(out: Output, name: &str, port: u16) -> Result<()> {
    let mut home = Home::open()?;
    home.check_new_name(name)?;
    if port == 0 {
        return Err(CliError::usage("port 0 is not a fixed port").hint("pick a port, e.g. 8080"));
    }
    let address = format!("127.0.0.1:{port}");
    if let Some(other) = home.nodes.iter().find(|n| n.address == address) {
        return Err(
            CliError::usage(format!("node `{}` already uses {address}", other.name))
                .hint("pick another port"),
        );
    }
    let entry = NodeEntry {
        name: name.to_owned(),
        id: uuid::Uuid::new_v4().to_string(),
        address,
        local: true,
        dir: None,
    };
    let dir = home.node_dir(&entry);
    crate::home::create_private_dir(&dir)
        .and_then(|()| crate::home::create_private_dir(&dir.join("data")))
        .map_err(|e| CliError::io(format!("cannot create {}", dir.display()), e))?;
    ensure_admin_token(&dir)?;
    home.nodes.push(entry.clone());
    home.save()?;
    out.done(home.node_json(&entry), || {
        format!(
            "created node `{name}` ({}) at {}\n  start it with: interstice node start {name}",
            entry.id, entry.address
        )
    });
    Ok(())
}

pub fn add(out: Output, name: &str, address: &str) -> Result<()> {
    let mut home = Home::open()?;
    home.check_new_name(name)?;
    if !address.contains(':') {
        return Err(CliError::usage(format!("`{address}` has no port"))
            .hint("write the address as host:port, e.g. 10.0.0.5:8080"));
    }
    // Learn the node's id now if it answers; otherwise on first contact.
    let config = ClientConfig {
        connect_timeout: Duration::from_secs(2),
        ..ClientConfig::default()
    };
    let id = runtime()?
        .block_on(Client::connect(address, config))
        .map(|c| c.node_id().to_owned());
    let (id, unreachable) = match id {
        Ok(id) => (id, None),
        Err(e) => (String::new(), Some(e.to_string())),
    };
    let entry = NodeEntry {
        name: name.to_owned(),
        id,
        address: address.to_owned(),
        local: false,
        dir: None,
    };
    home.nodes.push(entry.clone());
    home.save()?;
    let mut doc = home.node_json(&entry);
    doc["reachable"] = unreachable.is_none().into();
    doc["unreachable_reason"] = unreachable.clone().into();
    out.done(doc, || match &unreachable {
        None => format!("added node `{name}` ({}) at {address}", entry.id),
        Some(e) => format!("added node `{name}` at {address} (not reachable now: {e})"),
    });
    Ok(())
}

pub fn list(out: Output) -> Result<()> {
    let home = Home::open()?;
    if out.json {
        let nodes: Vec<_> = home.nodes.iter().map(|n| home.node_json(n)).collect();
        println!("{}", json!({ "nodes": nodes }));
        return Ok(());
    }
    if home.nodes.is_empty() {
        println!("no nodes yet; `interstice node create <name> <port>` makes one");
        return Ok(());
    }
    let width = home
        .nodes
        .iter()
        .map(|n| n.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{:width$}  {:36}  {:21}  kind", "name", "id", "address");
    for n in &home.nodes {
        let id = if n.id.is_empty() { "(unknown)" } else { &n.id };
        let kind = if n.local { "local" } else { "remote" };
        println!("{:width$}  {id:36}  {:21}  {kind}", n.name, n.address);
    }
    Ok(())
}

pub fn remove(out: Output, name: &str, purge: bool) -> Result<()> {
    let mut home = Home::open()?;
    let index = home.position(name)?;
    let entry = home.nodes.remove(index);
    home.save()?;
    let dir = home.node_dir(&entry);
    let purged = entry.local && purge;
    if purged && dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| CliError::io(format!("cannot delete {}", dir.display()), e))?;
    }
    let doc = json!({
        "removed": entry.name,
        "id": crate::output::or_null(&entry.id),
        "kind": if entry.local { "local" } else { "remote" },
        "data_deleted": purged,
        "kept_data": (entry.local && !purged).then(|| dir.display().to_string()),
    });
    out.done(doc, || {
        if purged {
            format!("removed node `{}` and deleted its data", entry.name)
        } else if entry.local {
            format!(
                "removed node `{}`; its data is kept in {} (`--purge` deletes it)",
                entry.name,
                dir.display()
            )
        } else {
            format!("removed node `{}`", entry.name)
        }
    });
    Ok(())
}

pub fn rename(out: Output, old: &str, new: &str) -> Result<()> {
    let mut home = Home::open()?;
    let index = home.position(old)?;
    home.check_new_name(new)?;
    let old = std::mem::replace(&mut home.nodes[index].name, new.to_owned());
    home.save()?;
    out.done(
        json!({"old": old, "new": new, "node": home.node_json(&home.nodes[index])}),
        || format!("renamed node `{old}` to `{new}`"),
    );
    Ok(())
}

pub fn show(out: Output, name: &str) -> Result<()> {
    let home = Home::open()?;
    let n = home.find(name)?;
    let figures = running_figures(&home, n);
    if out.json {
        let mut doc = home.node_json(n);
        doc["running"] = figures.is_ok().into();
        doc["stats"] = match &figures {
            Ok(figures) => figures
                .iter()
                .map(|(label, value)| (label.clone(), json!(value)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            Err(_) => serde_json::Value::Null,
        };
        println!("{doc}");
        return Ok(());
    }
    println!("name:    {}", n.name);
    println!(
        "id:      {}",
        if n.id.is_empty() {
            "(unknown until reached)"
        } else {
            &n.id
        }
    );
    println!("address: {}", n.address);
    println!("kind:    {}", if n.local { "local" } else { "remote" });
    if n.local {
        let dir = home.node_dir(n);
        println!("data:    {}", dir.join("data").display());
        println!("token:   {}", dir.join("admin_token").display());
    }
    match figures {
        Ok(figures) => {
            println!("state:   running");
            for (label, value) in figures {
                println!("  {label}: {value}");
            }
        }
        Err(why) => println!("state:   not running, or not reachable ({why})"),
    }
    Ok(())
}

/// `node repair`: opens a stopped local node's store, repairing it with `truncate`, and says
/// what recovery found.
pub fn repair(out: Output, name: &str, truncate: bool) -> Result<()> {
    use interstice_store::{Store, StoreConfig, StoreError};
    let home = Home::open()?;
    let entry = home.find(name)?.clone();
    if !entry.local {
        return Err(CliError::usage(format!(
            "node `{name}` is remote ({}); repair it where it runs",
            entry.address
        )));
    }
    let dir = home.node_dir(&entry).join("data").join("store");
    if !dir.exists() {
        out.done(
            json!({"node": name, "problems": [], "repaired": false}),
            || format!("node `{name}` has no commit log yet: nothing to check"),
        );
        return Ok(());
    }
    match Store::open(&dir, StoreConfig::default().repair(truncate)) {
        Ok((store, report)) => {
            let problems = report.problems();
            let _ = store.close();
            out.done(
                json!({
                    "node": name,
                    "problems": problems,
                    "repaired": truncate && !problems.is_empty(),
                    "records": report.records_replayed,
                    "moved_aside": report.moved_aside.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                }),
                || {
                    if problems.is_empty() {
                        format!(
                            "node `{name}`: the commit log is intact ({} records)",
                            report.records_replayed
                        )
                    } else {
                        let mut text = format!("node `{name}`:");
                        for p in &problems {
                            text.push_str(&format!("\n  {p}"));
                        }
                        text
                    }
                },
            );
            Ok(())
        }
        Err(e @ StoreError::Corrupt { .. }) => Err(CliError::new(format!("node `{name}`: {e}"))
            .hint(format!(
                "`interstice node repair {name} --truncate` discards it (the discarded bytes are kept aside as *.corrupt files); restore the folder from a backup instead if you have one"
            ))),
        Err(StoreError::Locked { .. }) => Err(CliError::new(format!(
            "node `{name}` is running"
        ))
        .hint("stop it first: repair works on a stopped node")),
        Err(e) => Err(CliError::new(format!("cannot open the log of node `{name}`: {e}"))),
    }
}

/// The figures of the node, when it answers: its counters, then each platform authority's
/// (audio underruns, ring fill, latency…).
fn running_figures(
    home: &Home,
    node: &NodeEntry,
) -> std::result::Result<Vec<(String, String)>, String> {
    let config = ClientConfig {
        admin_token: home.admin_token(node).map_err(|e| e.to_string())?,
        expect_node: (!node.id.is_empty()).then(|| node.id.clone()),
        connect_timeout: Duration::from_secs(2),
        ..ClientConfig::default()
    };
    runtime()
        .map_err(|e| e.to_string())?
        .block_on(async {
            let client = Client::connect(&node.address, config).await?;
            client.stats().await
        })
        .map_err(|e| e.to_string())
}

pub struct StartOptions {
    pub node: String,
    pub workers: Option<usize>,
    pub allow_anonymous_publish: bool,
    pub listen: Option<String>,
    /// Address overrides for node bindings, by name.
    pub peers: HashMap<String, String>,
    pub busy_poll: Duration,
}

/// Parses `--peer NAME=ADDR` options.
pub fn parse_peers(options: &[String]) -> Result<HashMap<String, String>> {
    options
        .iter()
        .map(|option| match option.split_once('=') {
            Some((name, addr)) if !name.is_empty() && addr.contains(':') => {
                Ok((name.to_owned(), addr.to_owned()))
            }
            _ => Err(
                CliError::usage(format!("`--peer {option}` is not NAME=HOST:PORT"))
                    .hint("e.g. --peer hello_node=127.0.0.1:8080"),
            ),
        })
        .collect()
}

pub fn start(out: Output, options: StartOptions) -> Result<()> {
    let home = Home::open()?;
    let entry = home.find(&options.node)?.clone();
    if !entry.local {
        return Err(CliError::usage(format!(
            "node `{}` is remote ({}); it runs elsewhere",
            entry.name, entry.address
        ))
        .hint("`interstice node create <name> <port>` makes a node that runs here"));
    }
    let dir = home.node_dir(&entry);
    let platforms = Platforms::serving();
    let node = open_node(
        &dir,
        options.workers,
        options.allow_anonymous_publish,
        &platforms,
    )?;
    serve_until_stopped(
        out,
        &entry,
        &dir,
        node,
        Serve {
            listen: options.listen.as_deref().unwrap_or(&entry.address),
            allow_anonymous_publish: options.allow_anonymous_publish,
            peers: options.peers,
            busy_poll: options.busy_poll,
        },
    )
}

/// How to serve a node.
pub struct Serve<'a> {
    pub listen: &'a str,
    pub allow_anonymous_publish: bool,
    pub peers: HashMap<String, String>,
    /// See `ServerConfig::busy_poll`.
    pub busy_poll: Duration,
}

pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, not for log files and pipes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// Opens the node stored in `dir/data`, granting the authorities of `platforms`.
pub fn open_node(
    dir: &Path,
    workers: Option<usize>,
    allow_anonymous_publish: bool,
    platforms: &Platforms,
) -> Result<Arc<Node>> {
    init_logging();
    let mut config = NodeConfig {
        data_dir: Some(dir.join("data")),
        policy: AccessPolicy {
            allow_anonymous_publish,
        },
        authorities: platforms.authorities(),
        ..NodeConfig::default()
    };
    if let Some(workers) = workers {
        if workers == 0 {
            return Err(CliError::usage("--workers must be at least 1"));
        }
        config.workers = workers;
    }
    #[cfg(feature = "audio")]
    config
        .authorities
        .push(Arc::new(interstice_audio::AudioAuthority::system()));
    Node::open(config).map_err(|e| {
        let hint = open_hint(&e);
        CliError::new(format!("cannot open the node in {}: {e}", dir.display())).hint(hint)
    })
}

/// What to do when a node does not open, from why it did not.
fn open_hint(e: &NodeError) -> String {
    use interstice_store::StoreError;
    let io_kind = match e {
        NodeError::Io { source, .. } | NodeError::Store(StoreError::Io { source, .. }) => {
            Some(source.kind())
        }
        _ => None,
    };
    match (e, io_kind) {
        (NodeError::Store(StoreError::Locked { .. }), _) => {
            "is another `interstice node start` running on the same node?".into()
        }
        (NodeError::Store(StoreError::Corrupt { .. }), _) => {
            "`interstice node repair <node>` says what is damaged; with --truncate it discards the damaged history so that the node starts".into()
        }
        (_, Some(std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem)) => {
            "the node's folder must be writable by this user: check its permissions and that its file system is not mounted read-only".into()
        }
        (_, Some(std::io::ErrorKind::StorageFull)) => {
            "the disk is full: free some space and start the node again".into()
        }
        _ => "the message above says what is wrong; `interstice node show <node>` gives the node's folder".into(),
    }
}

/// Serves `node` on `listen`, and connects to the nodes its modules depend on, until Ctrl-C or
/// SIGTERM.
pub fn serve_until_stopped(
    out: Output,
    entry: &NodeEntry,
    dir: &Path,
    node: Arc<Node>,
    serve: Serve<'_>,
) -> Result<()> {
    let Serve {
        listen,
        allow_anonymous_publish,
        peers,
        busy_poll,
    } = serve;
    let token = ensure_admin_token(dir)?;
    let installed: Vec<(String, String)> = node
        .schemas()
        .iter()
        .map(|s| (s.name.clone(), s.version.clone()))
        .collect();
    let config = ServerConfig {
        node_id: entry.id.clone(),
        admin_token: Some(token),
        busy_poll,
        ..ServerConfig::default()
    };
    let peers_config = PeersConfig {
        node_id: entry.id.clone(),
        addresses: peers,
        ..PeersConfig::default()
    };
    runtime()?.block_on(async move {
        let server = net::serve(node.clone(), listen, config)
            .await
            .map_err(|e| {
                CliError::new(format!(
                    "node `{}` cannot listen on {listen}: {e}",
                    entry.name
                ))
                .hint("is another process using that port? `--listen` picks another address")
            })?;
        let modules: Vec<String> = installed
            .iter()
            .map(|(name, version)| format!("{name} {version}"))
            .collect();
        let remotes = node.remote_nodes();
        out.event(
            json!({
                "event": "listening",
                "node": entry.name,
                "id": entry.id,
                "address": server.local_addr().to_string(),
                "modules": installed
                    .iter()
                    .map(|(name, version)| json!({"name": name, "version": version}))
                    .collect::<Vec<_>>(),
                "anonymous_publish": allow_anonymous_publish,
                "audio": cfg!(feature = "audio"),
                "peers": remotes.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
                "workers": node.workers(),
                "lanes": node.lanes(),
                "data_dir": dir.join("data").display().to_string(),
            }),
            format_args!(
                "node `{}` ({}) listening on {}; modules: {}\n  {} worker{} for reducers{}; data in {}",
                entry.name,
                entry.id,
                server.local_addr(),
                if modules.is_empty() {
                    "none".to_owned()
                } else {
                    modules.join(", ")
                },
                node.workers(),
                if node.workers() == 1 { "" } else { "s" },
                match node.lanes() {
                    lanes if lanes.is_empty() => String::new(),
                    lanes => format!(", lanes of their own: {}", lanes.join(", ")),
                },
                dir.join("data").display()
            ),
        );
        if allow_anonymous_publish {
            out.say("anyone who can reach this node may publish and remove modules");
        }
        say_platforms(out, &node);
        for name in peers_config.addresses.keys() {
            if !remotes.iter().any(|r| &r.name == name) {
                eprintln!(
                    "warning: --peer {name}=...: no installed module binds a node named `{name}` (yet)"
                );
            }
        }
        let peers = Peers::start(node.clone(), peers_config);
        for remote in remotes {
            out.say(format_args!(
                "module bindings name node `{}`; connecting to it (reconnecting as needed)",
                remote.name
            ));
        }
        out.say("press Ctrl-C to stop");
        stopped().await;
        out.event(
            json!({"event": "stopping", "node": entry.name}),
            format_args!("stopping node `{}`", entry.name),
        );
        peers.shutdown().await;
        server.shutdown().await;
        out.event(json!({"event": "stopped", "node": entry.name}), "stopped");
        Ok(())
    })
}

/// Says which platforms this build lacks, and the devices of those a module holds.
fn say_platforms(out: Output, node: &Node) {
    if !cfg!(feature = "audio") {
        out.say(
            "audio: not in this build; modules that claim the Audio authority are refused \
             (build interstice with `--features audio`, which needs libasound2-dev on Linux)",
        );
    }
    for (label, value) in node.authority_stats() {
        if let Some(kind) = label.strip_suffix(" device") {
            out.say(format_args!("{}: {value}", kind.to_lowercase()));
        }
    }
}

async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

pub fn ping(out: Output, name: &str) -> Result<()> {
    let home = Home::open()?;
    let entry = home.find(name)?.clone();
    runtime()?.block_on(async {
        let client = connect(&home, &entry).await?;
        let rtt = client.ping().await.map_err(|e| CliError::net(&entry, e))?;
        out.done(
            json!({
                "node": entry.name,
                "id": client.node_id(),
                "address": entry.address,
                "rtt_us": u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX),
            }),
            || {
                format!(
                    "pong from `{}` ({}) at {} in {} µs",
                    entry.name,
                    client.node_id(),
                    entry.address,
                    rtt.as_micros()
                )
            },
        );
        Ok(())
    })
}

#[cfg(test)]
mod open_hint_tests {
    use super::*;

    fn io(kind: std::io::ErrorKind) -> NodeError {
        NodeError::Io {
            context: "cannot create".into(),
            source: std::io::Error::from(kind),
        }
    }

    /// A read-only or unwritable folder is not "another node running".
    #[test]
    fn the_hint_follows_the_cause() {
        let locked = NodeError::Store(interstice_store::StoreError::Locked { dir: "/x".into() });
        assert!(open_hint(&locked).contains("another"));
        for kind in [
            std::io::ErrorKind::PermissionDenied,
            std::io::ErrorKind::ReadOnlyFilesystem,
        ] {
            let hint = open_hint(&io(kind));
            assert!(hint.contains("writable"), "{hint}");
            assert!(!hint.contains("another"), "{hint}");
        }
        assert!(open_hint(&io(std::io::ErrorKind::StorageFull)).contains("disk is full"));
    }
}
