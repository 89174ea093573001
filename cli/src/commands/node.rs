//! `interstice node ...`: the registry, running a local node, ping and schema.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use interstice_abi::{ModuleSchema, Visibility};
use interstice_runtime::net::{self, Client, ClientConfig, Peers, PeersConfig, ServerConfig};
use interstice_runtime::{AccessPolicy, Node, NodeConfig};

use super::connect;
use crate::error::{CliError, Result};
use crate::home::{Home, NodeEntry, ensure_admin_token};
use crate::runtime;

pub fn create(name: &str, port: u16) -> Result<()> {
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
    println!(
        "created node `{name}` ({}) at {}\n  start it with: interstice node start {name}",
        entry.id, entry.address
    );
    home.nodes.push(entry);
    home.save()
}

pub fn add(name: &str, address: &str) -> Result<()> {
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
    let id = match id {
        Ok(id) => {
            println!("added node `{name}` ({id}) at {address}");
            id
        }
        Err(e) => {
            println!("added node `{name}` at {address} (not reachable now: {e})");
            String::new()
        }
    };
    home.nodes.push(NodeEntry {
        name: name.to_owned(),
        id,
        address: address.to_owned(),
        local: false,
        dir: None,
    });
    home.save()
}

pub fn list() -> Result<()> {
    let home = Home::open()?;
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

pub fn remove(name: &str, purge: bool) -> Result<()> {
    let mut home = Home::open()?;
    let index = home.position(name)?;
    let entry = home.nodes.remove(index);
    home.save()?;
    let dir = home.node_dir(&entry);
    if entry.local && purge {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| CliError::io(format!("cannot delete {}", dir.display()), e))?;
        }
        println!("removed node `{}` and deleted its data", entry.name);
    } else if entry.local {
        println!(
            "removed node `{}`; its data is kept in {} (`--purge` deletes it)",
            entry.name,
            dir.display()
        );
    } else {
        println!("removed node `{}`", entry.name);
    }
    Ok(())
}

pub fn rename(old: &str, new: &str) -> Result<()> {
    let mut home = Home::open()?;
    let index = home.position(old)?;
    home.check_new_name(new)?;
    home.nodes[index].name = new.to_owned();
    home.save()?;
    println!("renamed node `{old}` to `{new}`");
    Ok(())
}

pub fn show(name: &str) -> Result<()> {
    let home = Home::open()?;
    let n = home.find(name)?;
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

pub fn start(options: StartOptions) -> Result<()> {
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
    let node = open_node(&dir, options.workers, options.allow_anonymous_publish)?;
    serve_until_stopped(
        &entry,
        &dir,
        node,
        Serve {
            listen: options.listen.as_deref().unwrap_or(&entry.address),
            peers: options.peers,
            busy_poll: options.busy_poll,
        },
    )
}

/// How to serve a node.
pub struct Serve<'a> {
    pub listen: &'a str,
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

/// Opens the node stored in `dir/data`.
pub fn open_node(
    dir: &Path,
    workers: Option<usize>,
    allow_anonymous_publish: bool,
) -> Result<Arc<Node>> {
    init_logging();
    let mut config = NodeConfig {
        data_dir: Some(dir.join("data")),
        policy: AccessPolicy {
            allow_anonymous_publish,
        },
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
    entry: &NodeEntry,
    dir: &Path,
    node: Arc<Node>,
    serve: Serve<'_>,
) -> Result<()> {
    let Serve {
        listen,
        peers,
        busy_poll,
    } = serve;
    let token = ensure_admin_token(dir)?;
    let modules: Vec<String> = node
        .schemas()
        .iter()
        .map(|s| format!("{} {}", s.name, s.version))
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
        println!(
            "node `{}` ({}) listening on {}; modules: {}",
            entry.name,
            entry.id,
            server.local_addr(),
            if modules.is_empty() {
                "none".to_owned()
            } else {
                modules.join(", ")
            }
        );
        if node.policy().allow_anonymous_publish {
            println!("anyone who can reach this node may publish and remove modules");
        }
        let remotes = node.remote_nodes();
        for name in peers_config.addresses.keys() {
            if !remotes.iter().any(|r| &r.name == name) {
                eprintln!(
                    "warning: --peer {name}=...: no installed module binds a node named `{name}` (yet)"
                );
            }
        }
        let peers = Peers::start(node.clone(), peers_config);
        for remote in remotes {
            println!(
                "module bindings name node `{}`; connecting to it (reconnecting as needed)",
                remote.name
            );
        }
        println!("press Ctrl-C to stop");
        stopped().await;
        println!("stopping node `{}`", entry.name);
        peers.shutdown().await;
        server.shutdown().await;
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

pub fn ping(name: &str) -> Result<()> {
    let home = Home::open()?;
    let entry = home.find(name)?.clone();
    runtime()?.block_on(async {
        let client = connect(&home, &entry).await?;
        let rtt = client
            .ping()
            .await
            .map_err(|e| CliError::net(&entry.name, e))?;
        println!(
            "pong from `{}` ({}) at {} in {} µs",
            entry.name,
            client.node_id(),
            entry.address,
            rtt.as_micros()
        );
        Ok(())
    })
}

pub fn schema(name: &str, out: Option<&Path>, json: bool) -> Result<()> {
    let home = Home::open()?;
    let entry = home.find(name)?.clone();
    let (schemas, admin) = runtime()?.block_on(async {
        let client = connect(&home, &entry).await?;
        let schemas = client
            .schema()
            .await
            .map_err(|e| CliError::net(&entry.name, e))?;
        Ok::<_, CliError>((schemas, client.is_admin()))
    })?;
    let text = serde_json::to_string_pretty(&schemas)
        .map_err(|e| CliError::new(format!("cannot write the schemas as JSON: {e}")))?;
    if let Some(out) = out {
        std::fs::write(out, text + "\n")
            .map_err(|e| CliError::io(format!("cannot write {}", out.display()), e))?;
        println!(
            "wrote {} module schema(s) to {}",
            schemas.len(),
            out.display()
        );
    } else if json {
        println!("{text}");
    } else {
        if schemas.is_empty() {
            println!("no modules on `{}`", entry.name);
        }
        for schema in &schemas {
            print!("{}", summary(schema));
        }
        if !admin {
            println!("(public view: private modules and tables are not shown)");
        }
    }
    Ok(())
}

fn vis(v: Visibility) -> &'static str {
    match v {
        Visibility::Public => "public",
        Visibility::Private => "private",
    }
}

/// A human-readable summary of one module.
fn summary(schema: &ModuleSchema) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} {} ({})",
        schema.name,
        schema.version,
        vis(schema.visibility)
    );
    if !schema.authorities.is_empty() {
        let _ = writeln!(s, "  authorities: {:?}", schema.authorities);
    }
    for t in &schema.tables {
        let columns: Vec<String> = t
            .columns
            .iter()
            .map(|c| {
                let mut col = format!("{}: {}", c.name, c.ty);
                if c.name == t.primary_key {
                    col.push_str(" [primary key]");
                }
                if c.auto_inc {
                    col.push_str(" [auto_inc]");
                }
                col
            })
            .collect();
        let _ = writeln!(
            s,
            "  table {} ({:?}, {}): {}",
            t.name,
            t.persistence,
            vis(t.visibility),
            columns.join(", ")
        );
    }
    for r in &schema.reducers {
        let mut line = format!("  reducer {}", crate::values::signature(&r.name, &r.args));
        if let Some(on) = &r.on {
            let _ = write!(line, "  on {on}");
        }
        if let Some(a) = &r.access {
            for (what, list) in [
                ("reads", &a.reads),
                ("writes", &a.writes),
                ("calls", &a.calls),
            ] {
                if !list.is_empty() {
                    let _ = write!(line, "  {what}({})", list.join(", "));
                }
            }
        }
        let _ = writeln!(s, "{line}");
    }
    for q in &schema.queries {
        let _ = writeln!(
            s,
            "  query {} -> {}",
            crate::values::signature(&q.name, &q.args),
            q.returns
        );
    }
    s
}
