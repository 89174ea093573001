//! `interstice node ...`: the registry, running a local node, ping and schema.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use interstice_runtime::net::{self, Client, ClientConfig, Peers, PeersConfig, ServerConfig};
use interstice_runtime::{AccessPolicy, Node, NodeConfig};
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
    std::fs::create_dir_all(dir.join("data"))
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
    if out.json {
        println!("{}", home.node_json(n));
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
    Ok(())
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
    Node::open(config).map_err(|e| {
        CliError::new(format!("cannot open the node in {}: {e}", dir.display()))
            .hint("is another `interstice node start` running on the same node?")
    })
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
                "peers": remotes.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
            }),
            format_args!(
                "node `{}` ({}) listening on {}; modules: {}",
                entry.name,
                entry.id,
                server.local_addr(),
                if modules.is_empty() {
                    "none".to_owned()
                } else {
                    modules.join(", ")
                }
            ),
        );
        if allow_anonymous_publish {
            out.say("anyone who can reach this node may publish and remove modules");
        }
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
