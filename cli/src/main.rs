//! `interstice`: create and run nodes, publish modules, call reducers and queries.
//!
//! A thin layer over `interstice-runtime`: `main` parses the command line, `try_main` runs the
//! command, errors print as `error: ...` with a hint and map to an exit code (see `error::code`).

#![forbid(unsafe_code)]

mod commands;
mod cpu;
mod error;
mod examples;
mod home;
mod output;
mod platforms;
mod values;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands::{bench, simulation};
use crate::error::{CliError, Result, code};
use crate::output::Output;

/// Rows are allocated on the worker that runs a reducer and freed on whichever thread drops
/// the last version, so the allocator's cross-thread frees sit on the hot path of parallel
/// reducers; glibc's arenas serialise them (docs/BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "interstice",
    version,
    about = "Run Interstice nodes, publish WebAssembly modules, call their reducers and queries",
    after_help = "Examples:\n  interstice node create local 8080\n  interstice node start local\n  interstice publish local ./my-module\n  interstice call_reducer local my_module hello Ada\n\nData lives in $INTERSTICE_HOME, else the OS data directory.\n\nWith --json, every command prints one JSON document on stdout, errors included\n(`{\"error\": {\"kind\", \"message\", \"hint\", \"code\"}}`); docs/CLI-JSON.md lists the shapes.\n\nExit codes: 0 success, 1 failure, 2 bad usage, 3 the node refused (reducer failed, publish\nrefused, unauthorized), 4 node unreachable, 5 not available in this build.\n"
)]
pub struct Cli {
    /// Print one JSON document on stdout instead of text, errors included (see
    /// docs/CLI-JSON.md).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Manage the nodes this CLI knows (local and remote).
    #[command(subcommand)]
    Node(NodeCommand),
    /// Build a module crate (or take a .wasm file) and install or upgrade it on nodes.
    #[command(
        after_help = "Examples:\n  interstice publish local ./my-module\n  interstice publish a,b modules/hello\n  interstice publish local target/wasm32-unknown-unknown/release/hello.wasm"
    )]
    Publish(PublishArgs),
    /// Remove a module, with its tables and data, from a node.
    #[command(after_help = "Example:\n  interstice remove local hello")]
    Remove { node: String, module: String },
    /// Call a reducer; arguments are parsed against its signature.
    #[command(
        name = "call_reducer",
        visible_alias = "call-reducer",
        after_help = "Examples:\n  interstice call_reducer local hello hello Ada\n  interstice call_reducer local shop add_item '{\"name\": \"pen\", \"price\": 3}'\n\nScalars are written plainly (42, true, Ada); structs, enums, lists and options as JSON."
    )]
    CallReducer(CallArgs),
    /// Run a query and print its value as JSON.
    #[command(
        name = "call_query",
        visible_alias = "call-query",
        after_help = "Examples:\n  interstice call_query local hello get_greetings\n  interstice call_query local hello greetings_since 1700000000000000"
    )]
    CallQuery(CallArgs),
    /// Create a module crate with a hello example, set up to build for WebAssembly.
    #[command(
        after_help = "Example:\n  interstice init my-module && cd my-module && cargo build --release"
    )]
    Init {
        /// Where to create it. By default, the current folder.
        path: Option<PathBuf>,
    },
    /// Write a node's public schema into a module crate's src/bindings/, for typed calls.
    #[command(subcommand)]
    Bindings(BindingsCommand),
    /// Rebuild and reinstall this command from an Interstice source checkout.
    #[command(
        after_help = "Examples:\n  interstice update\n  interstice update --source ~/src/interstice --dry-run"
    )]
    Update {
        /// The checkout to install from. By default, the one this binary was built from.
        #[arg(long)]
        source: Option<PathBuf>,
        /// Print the cargo command instead of running it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run one of the README's examples; their modules are built into this binary.
    #[command(
        after_help = "Examples:\n  interstice example simulation   # every core; progress until Ctrl-C\n  interstice example simulation --workers 2 --ticks 500\n  interstice example hello   # then, in another shell:\n  interstice call_reducer example-hello hello hello Ada\n  interstice example graphics   # a window, or off-screen without a display\n  interstice example graphics --headless --frames 60 --screenshot out.png"
    )]
    Example(ExampleArgs),
    /// Measure throughput: standard workloads on in-memory nodes at 1, 2, 4 … workers.
    #[command(
        long_about = "Measure throughput: the simulation, conflict-free and fully contended transfers, an empty reducer and pipelined remote calls over loopback, each on in-memory nodes at 1, 2, 4 … workers up to the cores. Prints throughput, speedup over one worker, efficiency, the serial commit's share of the time and CPU per invocation, the simulation's tick in plain Rust for comparison, the same tick compiled to wasm and run in one query (the rule alone, without the store), the same step written in plain Rust over the store (what the sandbox and the scheduler cost), and how much faster plain threads run on this machine right now (its own ceiling). Configurations alternate and each figure is the median of the repeats: on a shared machine, compare the ratios of one run.",
        after_help = "Examples:\n  interstice bench\n  interstice bench --workload simulation --workers 1,2,4,8 --svg speedup.svg\n  interstice bench --seconds 1 --repeats 1 --json > bench.json"
    )]
    Bench(BenchArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  interstice completions bash > ~/.local/share/bash-completion/completions/interstice\n  interstice completions zsh > ~/.zfunc/_interstice\n  interstice completions fish > ~/.config/fish/completions/interstice.fish"
    )]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
enum BindingsCommand {
    /// Add a binding; `module` for a module of the same node, `node` for a remote node.
    #[command(subcommand)]
    Add(BindingsAdd),
}

#[derive(Subcommand, Debug)]
enum BindingsAdd {
    /// Bind a module of the same node: calls run inside the caller's transaction.
    #[command(
        after_help = "Example:\n  interstice bindings add module local hello ./my-module\n  # then, in a reducer declared calls(hello.hello):\n  #   bindings::hello::hello(&ctx, \"Ada\".into())?;"
    )]
    Module {
        node: String,
        module: String,
        /// The module crate. By default, the current folder.
        project_path: Option<PathBuf>,
    },
    /// Bind every public module of a (remote) node: calls are sent when the caller commits,
    /// and its tables can be subscribed to with `on = "<node>.<module>.<table>.insert"`.
    #[command(
        after_help = "Example:\n  interstice bindings add node example-hello ./my-module --name hello_node\n  # then: bindings::hello_node::hello::hello(&ctx, \"Ada\".into())?;\n  #       #[reducer(on = \"hello_node.hello.greetings.insert\")]"
    )]
    Node {
        node: String,
        /// The module crate. By default, the current folder.
        project_path: Option<PathBuf>,
        /// The name the module will use for the node. By default, the node's registered name.
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum NodeCommand {
    /// Create a local node listening on 127.0.0.1:<port>, with its data folder and admin token.
    #[command(after_help = "Example:\n  interstice node create local 8080")]
    Create { name: String, port: u16 },
    /// Register a remote node by address.
    #[command(after_help = "Example:\n  interstice node add prod 10.0.0.5:8080")]
    Add { name: String, address: String },
    /// List the known nodes.
    #[command(after_help = "Example:\n  interstice node list")]
    List,
    /// Forget a node; a local node's data is kept unless --purge.
    #[command(after_help = "Example:\n  interstice node remove old --purge")]
    Remove {
        node: String,
        /// Also delete a local node's data folder and admin token.
        #[arg(long)]
        purge: bool,
    },
    /// Rename a node.
    #[command(after_help = "Example:\n  interstice node rename local dev")]
    Rename { old: String, new: String },
    /// Show a node's id, address and folders.
    #[command(after_help = "Example:\n  interstice node show local")]
    Show { node: String },
    /// Run a local node in the foreground until Ctrl-C (logs: RUST_LOG=info|debug|...).
    #[command(
        after_help = "Examples:\n  interstice node start local\n  RUST_LOG=debug interstice node start local --workers 4"
    )]
    Start(StartArgs),
    /// Check that a node answers, and print the round-trip time.
    #[command(after_help = "Example:\n  interstice node ping local")]
    Ping { node: String },
    /// Check a stopped local node's commit log, and with --truncate discard damaged history.
    #[command(
        after_help = "A node refuses to start when its log is damaged anywhere but in its last, torn\nwrite, and names the file, the offset and what would be lost. This command says the\nsame; with --truncate it cuts the log there and moves what followed aside as *.corrupt\nfiles (never deleted), so the node starts with the history before the damage.\n\nExamples:\n  interstice node repair local\n  interstice node repair local --truncate"
    )]
    Repair {
        node: String,
        /// Discard the history from the first damage on (kept aside as *.corrupt files).
        #[arg(long)]
        truncate: bool,
    },
    /// Print the schemas of a node's modules, or write them as JSON to a file.
    #[command(
        after_help = "Examples:\n  interstice node schema local\n  interstice node schema local --json\n  interstice node schema local schema.json"
    )]
    Schema {
        node: String,
        /// Write the schemas (JSON) to this file instead of printing them.
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct StartArgs {
    node: String,
    /// Worker threads running reducers. By default, the number of cores.
    #[arg(long)]
    workers: Option<usize>,
    /// Let anyone who can reach the node publish and remove modules.
    #[arg(long)]
    allow_anonymous_publish: bool,
    /// Listen on this address instead of the registered one (e.g. 0.0.0.0:8080).
    #[arg(long)]
    listen: Option<String>,
    /// Reach the node a module's bindings call NAME at ADDR instead of the bound address
    /// (repeatable).
    #[arg(long, value_name = "NAME=ADDR")]
    peer: Vec<String>,
    /// Microseconds a connection keeps polling for its next request after an answer before
    /// it sleeps: lower latency for busy clients, a CPU spent meanwhile. 0 never polls.
    #[arg(long, value_name = "MICROS", default_value_t = 50)]
    busy_poll_us: u64,
}

#[derive(Args, Debug)]
struct PublishArgs {
    /// One node, or several separated by commas (`a,b`).
    nodes: String,
    /// A module crate folder, or a built .wasm file.
    module: PathBuf,
    /// Cargo's target directory for the build. By default, one cache shared by every module
    /// build of this CLI ($INTERSTICE_HOME/build-cache).
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Build without optimisations (faster to build, slower to run).
    #[arg(long)]
    debug: bool,
}

#[derive(Args, Debug)]
struct CallArgs {
    node: String,
    module: String,
    function: String,
    /// The arguments, in order (after `--` when one starts with `-` and is not a number).
    #[arg(allow_negative_numbers = true)]
    args: Vec<String>,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Only this workload (repeatable). By default, all of them.
    #[arg(long, value_enum)]
    workload: Vec<bench::Workload>,
    /// Worker counts to run, e.g. `1,2,4,8`. By default 1, 2, 4 … up to the cores.
    #[arg(long, value_delimiter = ',', value_name = "N,N,..")]
    workers: Vec<usize>,
    /// Seconds each configuration is measured, after a short warm-up.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Runs of each configuration; figures are their medians.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Also draw speedup against workers, with the ideal line, into this SVG file.
    #[arg(long, value_name = "PATH")]
    svg: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ExampleArgs {
    /// The example: hello, caller, graphics, audio or simulation.
    name: String,
    /// Listen on this port instead of the example's own (hello=8080, caller=8081,
    /// graphics=8082, audio=8083, simulation=8084).
    #[arg(long)]
    port: Option<u16>,
    /// Run reducers on this many worker threads (default: the machine's cores).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// simulation: stop after N ticks and print a summary and the world's digest, instead of
    /// running and serving until Ctrl-C.
    #[arg(long, value_name = "N")]
    ticks: Option<u64>,
    /// simulation: the world's size in cells (default 512x256).
    #[arg(long, value_name = "WIDTHxHEIGHT", value_parser = simulation::parse_size)]
    size: Option<(u32, u32)>,
    /// simulation: how many bands the world is cut into, each stepped by one reducer call
    /// (default 32); the steps of one tick run in parallel.
    #[arg(long, value_name = "N")]
    regions: Option<u32>,
    /// simulation: the seed that places the first live cells (default 42).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Reach the node a module's bindings call NAME at ADDR instead (repeatable), e.g.
    /// `--peer hello_node=127.0.0.1:9080` for `example caller`.
    #[arg(long, value_name = "NAME=ADDR")]
    peer: Vec<String>,
    /// graphics: render off-screen even when there is a display.
    #[arg(long)]
    headless: bool,
    /// graphics: render this many frames off-screen, then exit instead of serving.
    #[arg(long, value_name = "N", requires = "headless")]
    frames: Option<u64>,
    /// graphics: write the last of the `--frames` frames to this PNG file.
    #[arg(long, value_name = "PATH", requires = "frames")]
    screenshot: Option<PathBuf>,
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
    let out = Output { json: cli.json };
    if let Err(e) = try_main(cli.command, out) {
        if out.json {
            println!("{}", e.to_json());
        } else {
            eprintln!("{e}");
        }
        std::process::exit(e.code);
    }
}

/// Prints clap's error (as JSON when `--json` was asked for) and exits; help and version are
/// printed as clap prints them.
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    let json = std::env::args()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if !json || matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        e.exit();
    }
    let text = e.render().to_string();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let what = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned();
    let hint: Vec<&str> = lines.map(str::trim).collect();
    let mut err = CliError::usage(what);
    if !hint.is_empty() {
        err = err.hint(hint.join("; "));
    }
    println!("{}", err.to_json());
    std::process::exit(code::USAGE);
}

fn try_main(command: Command, out: Output) -> Result<()> {
    use commands::{bindings, completions, example, init, module, node, publish, schema, update};
    match command {
        Command::Node(cmd) => match cmd {
            NodeCommand::Create { name, port } => node::create(out, &name, port),
            NodeCommand::Add { name, address } => node::add(out, &name, &address),
            NodeCommand::List => node::list(out),
            NodeCommand::Remove { node: n, purge } => node::remove(out, &n, purge),
            NodeCommand::Rename { old, new } => node::rename(out, &old, &new),
            NodeCommand::Show { node: n } => node::show(out, &n),
            NodeCommand::Repair { node: n, truncate } => node::repair(out, &n, truncate),
            NodeCommand::Start(args) => node::start(
                out,
                node::StartOptions {
                    node: args.node,
                    workers: args.workers,
                    allow_anonymous_publish: args.allow_anonymous_publish,
                    listen: args.listen,
                    peers: node::parse_peers(&args.peer)?,
                    busy_poll: std::time::Duration::from_micros(args.busy_poll_us),
                },
            ),
            NodeCommand::Ping { node: n } => node::ping(out, &n),
            NodeCommand::Schema { node: n, out: file } => schema::schema(out, &n, file.as_deref()),
        },
        Command::Publish(args) => publish::publish(
            out,
            publish::PublishOptions {
                nodes: args.nodes,
                module: args.module,
                target_dir: args.target_dir,
                release: !args.debug,
            },
        ),
        Command::Remove { node: n, module: m } => module::remove(out, &n, &m),
        Command::CallReducer(args) => module::call(
            out,
            &args.node,
            &args.module,
            &args.function,
            &args.args,
            false,
        ),
        Command::CallQuery(args) => module::call(
            out,
            &args.node,
            &args.module,
            &args.function,
            &args.args,
            true,
        ),
        Command::Init { path } => init::init(out, path.as_deref()),
        Command::Bindings(BindingsCommand::Add(add)) => match add {
            BindingsAdd::Module {
                node: n,
                module: m,
                project_path,
            } => bindings::add_module(out, &n, &m, project_path.as_deref()),
            BindingsAdd::Node {
                node: n,
                project_path,
                name,
            } => bindings::add_node(out, &n, project_path.as_deref(), name.as_deref()),
        },
        Command::Update { source, dry_run } => update::update(out, source.as_deref(), dry_run),
        Command::Example(args) => {
            let default = simulation::Options::default();
            let asked = args.ticks.is_some()
                || args.size.is_some()
                || args.regions.is_some()
                || args.seed.is_some();
            let (width, height) = args.size.unwrap_or((default.width, default.height));
            let options = example::Options {
                port: args.port,
                peers: node::parse_peers(&args.peer)?,
                workers: args.workers,
                graphics: example::GraphicsOptions {
                    headless: args.headless,
                    frames: args.frames,
                    screenshot: args.screenshot,
                },
                simulation: asked.then_some(simulation::Options {
                    ticks: args.ticks,
                    width,
                    height,
                    regions: args.regions.unwrap_or(default.regions),
                    seed: args.seed.unwrap_or(default.seed),
                }),
            };
            example::run(out, &args.name, options)
        }
        Command::Bench(args) => bench::run(
            out,
            bench::Options {
                workloads: args.workload,
                workers: args.workers,
                seconds: args.seconds,
                repeats: args.repeats,
                svg: args.svg,
            },
        ),
        Command::Completions { shell } => completions::print(out, shell),
    }
}

/// A tokio runtime for the commands that talk to nodes.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::io("cannot start the async runtime", e).code(code::FAILURE))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn readme_commands_parse() {
        for line in [
            "interstice node create a 8080",
            "interstice node add b 10.0.0.5:8080",
            "interstice node list",
            "interstice node remove a",
            "interstice node rename a b",
            "interstice node show a",
            "interstice node start a --workers 2 --allow-anonymous-publish",
            "interstice node ping a",
            "interstice node schema a out.json",
            "interstice publish a,b modules/hello",
            "interstice remove a hello",
            "interstice call_reducer a hello hello Ada",
            "interstice call_query a hello get_greetings --json",
            "interstice --json node list",
            "interstice node schema a --json",
            "interstice completions bash",
            "interstice call_reducer a m r -5",
            "interstice call_reducer a m r --json -- -name",
            "interstice init",
            "interstice example hello",
            "interstice example caller --port 9081 --peer hello_node=127.0.0.1:9080",
            "interstice node start a --peer hello_node=127.0.0.1:9080",
            "interstice bindings add module a hello",
            "interstice bindings add module a hello ./m",
            "interstice bindings add node a ./m --name hello_node",
            "interstice update --dry-run",
        ] {
            let args: Vec<&str> = line.split(' ').collect();
            Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }

    #[test]
    fn flags_after_arguments_are_flags() {
        let cli = Cli::try_parse_from([
            "interstice",
            "call_reducer",
            "a",
            "m",
            "r",
            "-5",
            "x",
            "--json",
        ])
        .unwrap();
        assert!(cli.json);
        match cli.command {
            Command::CallReducer(args) => assert_eq!(args.args, ["-5", "x"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_command_has_an_example() {
        fn walk(cmd: &clap::Command, path: &str) {
            for sub in cmd.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.has_subcommands() {
                    walk(sub, &path);
                } else {
                    let after = sub
                        .get_after_help()
                        .map(|s| s.to_string())
                        .unwrap_or_default();
                    assert!(after.contains("interstice "), "`{path}` has no example");
                }
            }
        }
        walk(&Cli::command(), "interstice");
    }
}
