//! The examples `interstice example` runs: one row each.
//!
//! The build script (`cli/build.rs`, which includes this file) compiles the module of every row
//! to wasm, and the binary carries the bytes, so an installed `interstice` runs its examples
//! with no source checkout around. To add an example, add its crate under `modules/` and a row
//! here.

/// One example.
pub struct Example {
    /// `interstice example <name>`; its node is registered as `example-<name>`.
    pub name: &'static str,
    /// Its module crate, `modules/<module>`, built into the binary. `None` for an example no
    /// build can run yet (see `unavailable`).
    pub module: Option<&'static str>,
    /// The port its node listens on unless `--port` says otherwise.
    pub port: u16,
    /// Printed once its node runs: what to try, with `{node}` for the node's name.
    pub try_it: &'static str,
    /// Why this build cannot run it, when it cannot (exit code 5): a missing module, or a
    /// platform left out of the build (its module is carried all the same).
    pub unavailable: Option<&'static str>,
}

pub const EXAMPLES: &[Example] = &[
    Example {
        name: "hello",
        module: Some("hello"),
        port: 8080,
        try_it: "try, in another shell:\n  interstice call_reducer {node} hello hello Ada\n  interstice call_query {node} hello get_greetings",
        unavailable: None,
    },
    Example {
        name: "caller",
        module: Some("caller"),
        port: 8081,
        try_it: "caller greets the hello node when it connects and records the greetings hello commits;\nstart `interstice example hello` too, then try, in another shell:\n  interstice call_reducer {node} caller greet Ada\n  interstice call_query {node} caller received",
        unavailable: None,
    },
    Example {
        name: "graphics",
        module: Some("graphics"),
        port: 8082,
        try_it: "a triangle whose colour and rotation live in a table: arrow keys turn it, a click recolours it;\nor, in another shell:\n  interstice call_reducer {node} graphics set_color 1 0 0\n  interstice call_reducer {node} graphics rotate 45\n  interstice call_query {node} graphics get_triangle",
        unavailable: WITHOUT_WINDOW,
    },
    Example {
        name: "audio",
        module: Some("audio"),
        port: 8083,
        try_it: "audio plays a 440 Hz tone and records the buffers it captures; try, in another shell:\n  interstice call_reducer {node} audio set_tone 660 0.2\n  interstice call_query {node} audio recent_inputs\n  interstice node show {node}",
        unavailable: if cfg!(feature = "audio") {
            None
        } else {
            Some(
                "this interstice was built without audio: the `audio` example needs the Audio authority; build it with `--features audio` (cpal, which needs libasound2-dev on Linux)",
            )
        },
    },
    Example {
        name: "simulation",
        module: Some("simulation"),
        port: 8084,
        try_it: "the world is stepped tick after tick until Ctrl-C; in another shell:\n  interstice call_query {node} simulation stats false\n  interstice call_query {node} simulation digest false\n  interstice node show {node}",
        unavailable: None,
    },
];

/// The module the binary carries for `interstice bench`, besides the examples'.
pub const BENCH_MODULE: &str = "bench";

/// Why this build cannot run the graphics example, if it cannot.
#[cfg(feature = "window")]
const WITHOUT_WINDOW: Option<&str> = None;
#[cfg(not(feature = "window"))]
const WITHOUT_WINDOW: Option<&str> = Some(
    "the `graphics` example needs the Gpu and Input authorities, and this interstice was built without the `window` feature",
);
