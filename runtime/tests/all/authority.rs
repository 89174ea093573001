//! The authority seam (`AuthorityProvider`): an authority built outside the node links host
//! calls, gets its module on a lane of its own, feeds events into the ingress, and is told when its module goes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use interstice_abi::{ABI_VERSION, Authority as Kind, Event, Value, encode};
use interstice_runtime::authority::{AuthorityProvider, Holder, Lane};
use interstice_runtime::testing::{module_importing, probe_schema};
use interstice_runtime::wasm::{HostCall, HostState};
use interstice_runtime::wasmtime::{Caller, Linker};
use interstice_runtime::{EventSink, LoadError, Node, NodeConfig, NodeError};
use interstice_store::Readable;
use parking_lot::Mutex;

// The probe stands for a platform the node does not build in (the File authority is built in).
const IMPORTS: &str = r#"(import "interstice_audio" "ping" (func $ping (param i64) (result i64)))"#;

/// Stands for a platform: counts its host calls and remembers who called them from where.
#[derive(Default)]
struct Probe {
    pings: AtomicU64,
    threads: Mutex<Vec<Option<String>>>,
    attached: Mutex<Vec<String>>,
    detached: Mutex<Vec<String>>,
    sink: Mutex<Option<EventSink>>,
}

struct ProbeAuthority(Arc<Probe>);

impl AuthorityProvider for ProbeAuthority {
    fn kind(&self) -> Kind {
        Kind::Audio
    }

    fn imports(&self) -> Option<&'static str> {
        Some("interstice_audio")
    }

    fn link(&self, linker: &mut Linker<HostState>) -> Result<(), LoadError> {
        let probe = self.0.clone();
        linker
            .func_wrap(
                "interstice_audio",
                "ping",
                move |mut caller: Caller<'_, HostState>,
                      x: i64|
                      -> interstice_runtime::wasmtime::Result<i64> {
                    let mut call = HostCall::new(&mut caller);
                    call.module_or_trap()?;
                    probe.pings.fetch_add(1, Ordering::SeqCst);
                    let thread = std::thread::current().name().map(str::to_owned);
                    probe.threads.lock().push(thread);
                    Ok(x + 1)
                },
            )
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        Ok(())
    }

    fn lane(&self) -> Lane {
        Lane::Thread
    }

    fn admit(&self, schema: &interstice_abi::ModuleSchema) -> Result<(), String> {
        match schema.version.as_str() {
            "6.6.6" => Err("this version is not welcome".into()),
            _ => Ok(()),
        }
    }

    fn attach(&self, holder: Holder) -> Result<(), String> {
        self.0.attached.lock().push(holder.module.clone());
        *self.0.sink.lock() = Some(holder.events);
        Ok(())
    }

    fn detach(&self, module: &str) {
        self.0.detached.lock().push(module.to_owned());
    }
}

/// A module `name`: reducer `ping` calls the host call and stores its answer; `on_connect`
/// runs on `connect` events and stores a constant row.
fn probe_module(name: &str, claims: bool, version: &str) -> Vec<u8> {
    let mut schema = probe_schema(&[("on_connect", None), ("ping", None)]);
    schema.name = name.into();
    schema.version = version.into();
    if claims {
        schema.authorities = vec![Kind::Audio];
    }
    schema.reducers[0].on = Some(Event::Connect);
    schema.reducers[0].args = vec![interstice_abi::Field::new(
        "node",
        interstice_abi::Type::String,
    )];
    module_importing(
        &schema,
        ABI_VERSION,
        IMPORTS,
        &[
            "(drop (call $insert_row)) (i32.const 0)",
            "(drop (call $insert_value (call $ping (i64.const 41)))) (i32.const 0)",
        ],
    )
}

fn values(node: &Node, table: &str) -> Vec<u64> {
    let id = node.store().table_id(table).unwrap();
    node.store()
        .read()
        .scan(id)
        .unwrap()
        .map(|row| match row[1] {
            Value::U64(v) => v,
            ref other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_module_claiming_an_authority_the_node_lacks_is_refused() {
    let node = Node::open(NodeConfig::default()).unwrap();
    let err = node
        .install(&probe_module("probe", true, "0.1.0"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            NodeError::Load(LoadError::AuthorityMissing {
                authority: Kind::Audio,
                ..
            })
        ),
        "{err}"
    );
    assert!(node.schemas().is_empty());
}

#[test]
fn an_authority_links_host_calls_gets_a_lane_feeds_events_and_releases_its_module() {
    let probe = Arc::new(Probe::default());
    let node = Node::open(NodeConfig {
        authorities: vec![Arc::new(ProbeAuthority(probe.clone()))],
        ..NodeConfig::default()
    })
    .unwrap();

    // Admission: the authority may refuse a module before anything is installed.
    let err = node
        .install(&probe_module("probe", true, "6.6.6"))
        .unwrap_err();
    assert!(err.to_string().contains("not welcome"), "{err}");
    assert!(probe.attached.lock().is_empty());

    node.install(&probe_module("probe", true, "0.1.0")).unwrap();
    assert_eq!(*probe.attached.lock(), ["probe"]);

    // Its host call, on its lane.
    assert!(
        node.call_reducer("probe", "ping", &[])
            .unwrap()
            .is_committed()
    );
    assert_eq!(probe.pings.load(Ordering::SeqCst), 1);
    assert_eq!(values(&node, "probe.items"), [42]);
    assert_eq!(
        *probe.threads.lock(),
        [Some("interstice-lane-audio".to_owned())]
    );

    // Its events enter the ingress and are run by the node's own thread.
    let sink = probe.sink.lock().clone().unwrap();
    assert_eq!(
        sink.submit(&Event::Connect, encode(&Value::from("peer")))
            .unwrap(),
        1
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while values(&node, "probe.items").len() < 2 {
        assert!(Instant::now() < deadline, "the event never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(values(&node, "probe.items"), [42, 7]);

    // Exclusive: a second claimant is refused; so is a module using its host calls without
    // claiming it.
    let err = node
        .install(&probe_module("other", true, "0.1.0"))
        .unwrap_err();
    assert!(
        matches!(&err, NodeError::AuthorityTaken { holder, .. } if holder == "probe"),
        "{err}"
    );
    let err = node
        .install(&probe_module("sneaky", false, "0.1.0"))
        .unwrap_err();
    assert!(
        err.to_string().contains("without claiming the authority"),
        "{err}"
    );

    // An upgrade detaches and attaches again; removal detaches.
    node.publish(&probe_module("probe", true, "0.2.0")).unwrap();
    assert_eq!(*probe.detached.lock(), ["probe"]);
    assert_eq!(*probe.attached.lock(), ["probe", "probe"]);
    node.remove("probe").unwrap();
    assert_eq!(*probe.detached.lock(), ["probe", "probe"]);
    // Another module may claim it now.
    node.install(&probe_module("other", true, "0.1.0")).unwrap();
    // Closing the node releases it too (a platform's device and threads go with the node).
    drop(node);
    assert_eq!(*probe.detached.lock(), ["probe", "probe", "other"]);
}

#[test]
fn a_lane_exists_only_while_a_module_holds_its_authority() {
    let probe = Arc::new(Probe::default());
    let node = Node::open(NodeConfig {
        authorities: vec![Arc::new(ProbeAuthority(probe))],
        ..NodeConfig::default()
    })
    .unwrap();
    // The authority is provided, but no module holds it: no lane thread.
    assert!(node.lanes().is_empty(), "{:?}", node.lanes());
    node.install(&probe_module("probe", true, "0.1.0")).unwrap();
    assert_eq!(node.lanes(), ["audio"]);
    // An upgrade replaces the lane; the module's calls run on the new one.
    node.publish(&probe_module("probe", true, "0.2.0")).unwrap();
    assert_eq!(node.lanes(), ["audio"]);
    assert!(
        node.call_reducer("probe", "ping", &[])
            .unwrap()
            .is_committed()
    );
    node.remove("probe").unwrap();
    assert!(node.lanes().is_empty(), "{:?}", node.lanes());
}

/// Stands for a platform that must run its module's invocations on a thread it owns (winit's
/// event loop on the main thread): it gets the lane's driver and runs them itself.
struct OwnThread {
    owner: Mutex<Option<std::thread::JoinHandle<()>>>,
    probe: Arc<Probe>,
}

impl AuthorityProvider for OwnThread {
    fn kind(&self) -> Kind {
        Kind::Audio
    }

    fn imports(&self) -> Option<&'static str> {
        ProbeAuthority(self.probe.clone()).imports()
    }

    fn link(&self, linker: &mut Linker<HostState>) -> Result<(), LoadError> {
        ProbeAuthority(self.probe.clone()).link(linker)
    }

    fn lane(&self) -> Lane {
        Lane::Driven
    }

    fn attach(&self, holder: Holder) -> Result<(), String> {
        let driver = holder.lane.ok_or("a driven lane comes with its driver")?;
        let thread = std::thread::Builder::new()
            .name("the-owners-thread".into())
            .spawn(move || {
                // An event loop would do its own work between these.
                while driver.wait(None) {
                    driver.run_pending();
                }
            })
            .map_err(|e| e.to_string())?;
        *self.owner.lock() = Some(thread);
        Ok(())
    }

    fn detach(&self, _module: &str) {
        // The lane is closed after this returns, which ends the owner's loop; joined later.
    }
}

/// A driven lane: the authority's own thread runs its module's invocations.
#[test]
fn a_driven_lane_runs_its_modules_invocations_on_the_owners_thread() {
    let probe = Arc::new(Probe::default());
    let authority = Arc::new(OwnThread {
        owner: Mutex::new(None),
        probe: probe.clone(),
    });
    let node = Node::open(NodeConfig {
        authorities: vec![authority.clone()],
        ..NodeConfig::default()
    })
    .unwrap();
    node.install(&probe_module("probe", true, "0.1.0")).unwrap();
    for _ in 0..3 {
        assert!(
            node.call_reducer("probe", "ping", &[])
                .unwrap()
                .is_committed()
        );
    }
    assert_eq!(
        *probe.threads.lock(),
        vec![Some("the-owners-thread".to_owned()); 3]
    );
    node.remove("probe").unwrap();
    // Closing the lane ended the owner's loop.
    let owner = authority.owner.lock().take().unwrap();
    owner.join().unwrap();
}

/// Stands for the Gpu platform: counts the frames its authority finished.
#[derive(Default)]
struct Screen {
    finished: Mutex<Vec<bool>>,
    sink: Mutex<Option<EventSink>>,
}

struct ScreenAuthority(Arc<Screen>);

impl AuthorityProvider for ScreenAuthority {
    fn kind(&self) -> Kind {
        Kind::Gpu
    }

    fn attach(&self, holder: Holder) -> Result<(), String> {
        *self.0.sink.lock() = Some(holder.events);
        Ok(())
    }

    fn finish_hook(&self, _module: &str, event: &Event, ok: bool) -> Result<(), String> {
        assert_eq!(*event, Event::Render);
        self.0.finished.lock().push(ok);
        Ok(())
    }
}

/// `render` hooks are read-only, like queries, and their authority finishes each frame.
#[test]
fn render_hooks_only_read_and_their_authority_finishes_each_frame() {
    use interstice_abi::platform;
    let screen = Arc::new(Screen::default());
    let node = Node::open(NodeConfig {
        authorities: vec![Arc::new(ScreenAuthority(screen.clone()))],
        ..NodeConfig::default()
    })
    .unwrap();
    let mut schema = probe_schema(&[("draw", None), ("scribble", None)]);
    schema.authorities = vec![Kind::Gpu];
    schema
        .types
        .extend(platform::definitions(platform::FRAME_INFO).unwrap());
    for reducer in &mut schema.reducers {
        reducer.on = Some(Event::Render);
        reducer.args = vec![interstice_abi::Field::new(
            "frame",
            interstice_abi::Type::Named(platform::FRAME_INFO.into()),
        )];
    }
    // `draw` only reads; `scribble` tries to insert a row.
    let wasm = interstice_runtime::testing::module(
        &schema,
        ABI_VERSION,
        &["(i32.const 0)", "(drop (call $insert_row)) (i32.const 0)"],
    );
    node.install(&wasm).unwrap();
    let frame = interstice_abi::encode(&Value::Struct(vec![
        Value::U64(0),
        Value::U32(64),
        Value::U32(48),
        Value::I64(0),
    ]));
    let sink = screen.sink.lock().clone().unwrap();
    assert_eq!(sink.submit(&Event::Render, frame).unwrap(), 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    while screen.finished.lock().len() < 2 {
        assert!(Instant::now() < deadline, "the frame never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    // `draw` succeeded; `scribble` trapped on its write and its frame is finished as failed.
    assert_eq!(*screen.finished.lock(), [true, false]);
    assert!(values(&node, "probe.items").is_empty());
}
