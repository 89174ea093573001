//! Hostile GPU modules through a real node: each mistake fails that frame (or call) with a
//! message naming it, the render loop and the node go on, and removing the module leaves no
//! GPU resource behind.

use std::thread;

use interstice_abi::platform::{self, FRAME_INFO};
use interstice_abi::{ABI_VERSION, Authority, Event, Field, Type, Value, encode};
use interstice_runtime::testing::{module_importing, probe_schema};
use interstice_window::{HeadlessConfig, PlatformConfig};

use crate::common::assert_close;
use crate::node_common::*;

const IMPORTS: &str = r#"
  (import "interstice_gpu" "create_shader_module" (func $shader (param i32 i32) (result i64)))
  (import "interstice_gpu" "create_buffer" (func $buffer (param i64 i32) (result i64)))
  (import "interstice_gpu" "write_buffer" (func $write (param i64 i64 i32 i32) (result i64)))
  (import "interstice_gpu" "create_texture" (func $texture (param i32 i32 i32 i32) (result i64)))
  (import "interstice_gpu" "create_render_pipeline" (func $pipeline (param i32 i32) (result i64)))
  (import "interstice_gpu" "destroy" (func $destroy (param i64) (result i64)))
  (import "interstice_gpu" "begin_pass" (func $begin_pass (param i64 f64 f64 f64 f64) (result i64)))
  (import "interstice_gpu" "set_pipeline" (func $set_pipeline (param i64) (result i64)))
  (import "interstice_gpu" "set_vertex_buffer" (func $set_vertex_buffer (param i32 i64 i64 i64) (result i64)))
  (import "interstice_gpu" "draw" (func $draw (param i32 i32 i32 i32) (result i64)))
  (import "interstice_gpu" "end_pass" (func $end_pass (result i64)))
  (import "interstice_input" "state" (func $input_state (result i64)))
  (global $h (mut i64) (i64.const 0))
  (global $p (mut i64) (i64.const 0))
  (func $many_buffers (result i32)
    (local $i i32)
    (loop $more
      (drop (call $buffer (i64.const 4) (i32.const 4)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 5000))))
    (i32.const 0))
"#;

/// A valid shader whose pipeline needs bind group 0 (a uniform) and vertex buffer 0.
const WGSL: &str = "@group(0) @binding(0) var<uniform> c: vec4<f32>; @vertex fn vs(@location(0) p: vec2<f32>) -> @builtin(position) vec4<f32> { return vec4<f32>(p, 0.0, 1.0); } @fragment fn fs() -> @location(0) vec4<f32> { return c; }";
const WGSL_AT: u32 = 3100;
const BROKEN_AT: u32 = 3000;
const DESC_AT: u32 = 20000;

fn escaped(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// The pipeline descriptor of [`WGSL`], its shader handle (the first 8 bytes) left at 0 for
/// the module to fill in.
fn pipeline_desc() -> Vec<u8> {
    let unit = |variant| Value::Enum {
        variant,
        fields: vec![],
    };
    encode(&Value::Struct(vec![
        Value::U64(0),
        Value::from("vs"),
        Value::from("fs"),
        Value::List(vec![Value::Struct(vec![
            Value::U64(8),
            Value::Bool(false),
            Value::List(vec![Value::Struct(vec![
                unit(1),
                Value::U64(0),
                Value::U32(0),
            ])]),
        ])]),
        unit(0),
        unit(0),
        Value::Bool(false),
    ]))
}

/// Module `name` holding Gpu and Input: its render hook `draw` runs `render`, its reducer
/// `poke` runs `poke`. Both return success whatever the host calls answered, so what fails is
/// what the host decided.
fn hostile_module(name: &str, render: &str, poke: &str) -> Vec<u8> {
    let mut schema = probe_schema(&[("draw", None), ("poke", None)]);
    schema.name = name.into();
    schema.authorities = vec![Authority::Gpu, Authority::Input];
    schema
        .types
        .extend(platform::definitions(FRAME_INFO).expect("FrameInfo"));
    schema.reducers[0].on = Some(Event::Render);
    schema.reducers[0].args = vec![Field::new("frame", Type::Named(FRAME_INFO.into()))];
    let desc = pipeline_desc();
    let imports = format!(
        "{IMPORTS}\n  (data (i32.const {BROKEN_AT}) \"fn broken(\")\n  (data (i32.const {WGSL_AT}) \"{}\")\n  (data (i32.const {DESC_AT}) \"{}\")",
        escaped(WGSL.as_bytes()),
        escaped(&desc),
    );
    let render = render
        .replace("$WGSL_LEN", &WGSL.len().to_string())
        .replace("$DESC_LEN", &desc.len().to_string());
    let wasm = module_importing(&schema, ABI_VERSION, &imports, &[&render, poke]);
    assert!(!wasm.is_empty(), "the WAT of {name} parses");
    wasm
}

const OPEN_PASS: &str = "(drop (call $begin_pass (i64.const 0) (f64.const 0) (f64.const 0) (f64.const 0) (f64.const 1)))";
const OPEN_PASS_BODY: &str = "(drop (call $begin_pass (i64.const 0) (f64.const 0) (f64.const 0) (f64.const 0) (f64.const 1))) (i32.const 0)";

/// (what, render hook body, what the frame's failure says)
fn cases() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "invalid WGSL",
            format!("(drop (call $shader (i32.const {BROKEN_AT}) (i32.const 10))) (i32.const 0)"),
            "gpu.create_shader_module: wgpu validation failed while compiling the WGSL shader",
        ),
        (
            "a write past the end of a buffer",
            "(drop (call $write (call $buffer (i64.const 16) (i32.const 4)) (i64.const 8) (i32.const 3000) (i32.const 16))) (i32.const 0)".into(),
            "gpu.write_buffer: write of 16 bytes at offset 8 is outside buffer",
        ),
        (
            "an unknown handle",
            "(drop (call $write (i64.const 0x77) (i64.const 0) (i32.const 3000) (i32.const 4))) (i32.const 0)".into(),
            "buffer handle 0x77 refused: no such resource was ever created",
        ),
        (
            "a freed handle",
            "(global.set $h (call $buffer (i64.const 16) (i32.const 4))) (drop (call $destroy (global.get $h))) (drop (call $write (global.get $h) (i64.const 0) (i32.const 3000) (i32.const 4))) (i32.const 0)".into(),
            "refused: the resource was freed",
        ),
        (
            "a texture past the budget",
            // 8192² of rgba16 float: 512 MiB, twice the default budget.
            "(drop (call $texture (i32.const 8192) (i32.const 8192) (i32.const 3) (i32.const 1))) (i32.const 0)".into(),
            "GPU memory budget exceeded: 536870912 more bytes requested",
        ),
        (
            "thousands of resources",
            "(call $many_buffers)".into(),
            "too many GPU resources: a module may hold at most 4096",
        ),
        (
            "a draw without a pipeline",
            format!("{OPEN_PASS} (drop (call $draw (i32.const 0) (i32.const 3) (i32.const 0) (i32.const 1))) (drop (call $end_pass)) (i32.const 0)"),
            "gpu.draw: draw without a pipeline; call set_pipeline first",
        ),
        (
            "a pass left open",
            format!("{OPEN_PASS} (i32.const 0)"),
            "the frame ended with a pass still open",
        ),
        (
            "a draw wgpu refuses (bind group 0 never set)",
            format!(
                "(i64.store (i32.const {DESC_AT}) (call $shader (i32.const {WGSL_AT}) (i32.const $WGSL_LEN))) \
                 (global.set $p (call $pipeline (i32.const {DESC_AT}) (i32.const $DESC_LEN))) \
                 (global.set $h (call $buffer (i64.const 24) (i32.const 1))) \
                 {OPEN_PASS} \
                 (drop (call $set_pipeline (global.get $p))) \
                 (drop (call $set_vertex_buffer (i32.const 0) (global.get $h) (i64.const 0) (i64.const 0))) \
                 (drop (call $draw (i32.const 0) (i32.const 3) (i32.const 0) (i32.const 1))) \
                 (drop (call $end_pass)) (i32.const 0)"
            ),
            "wgpu validation failed while encoding frame",
        ),
    ]
}

#[test]
fn hostile_gpu_modules_fail_their_frame_with_a_message_and_leak_nothing() {
    let Some(platform) = platform(PlatformConfig::default()) else {
        return;
    };
    let node = node(&platform, 2);
    // One render loop for the whole test: it must survive every module below.
    let looping = platform.clone();
    let render_loop = thread::spawn(move || {
        looping.run_headless(&HeadlessConfig {
            width: WIDTH,
            height: HEIGHT,
            rate_hz: 500.0,
            frames: None,
            capture: None,
        })
    });
    for (i, (what, render, expected)) in cases().into_iter().enumerate() {
        let name = format!("hostile{i}");
        let failed = platform.frames().failed;
        node.install(&hostile_module(&name, &render, "(i32.const 0)"))
            .unwrap_or_else(|e| panic!("{what}: install: {e}"));
        wait_for(what, || platform.frames().failed > failed);
        let failure = platform.last_failure().expect("a failure");
        assert!(failure.contains(expected), "{what}: {failure}");
        if what == "thousands of resources" {
            assert_eq!(platform.resources().1.resources, 4096, "{what}");
        }
        node.remove(&name).expect("remove");
        assert_eq!(platform.resources().0, 0, "{what}: leaked");
    }

    // Frame commands outside the render hook, and the live input state in a reducer, are
    // refused: the invocation fails.
    let poke = |name: &str, body: &str| {
        node.install(&hostile_module(name, "(i32.const 0)", body))
            .expect("install");
        let outcome = node.call_reducer(name, "poke", &[]).expect("call");
        node.remove(name).expect("remove");
        match outcome {
            interstice_runtime::Outcome::Failed { reason, .. } => reason.to_string(),
            other => panic!("{name}: {other:?}"),
        }
    };
    let reason = poke("outside", &format!("{OPEN_PASS} (i32.const 0)"));
    assert!(
        reason.contains("gpu.begin_pass records into a frame, which only the render hook does"),
        "{reason}"
    );
    let reason = poke("peeking", "(drop (call $input_state)) (i32.const 0)");
    assert!(
        reason.contains("only the render hook (which changes no table) may read it"),
        "{reason}"
    );
    // Using the GPU without claiming Gpu, or claiming it while another module holds it, is
    // refused when the module is published.
    let mut sneaky = hostile_module("sneaky", "(i32.const 0)", "(i32.const 0)");
    node.install(&hostile_module(
        "first_claim",
        "(i32.const 0)",
        "(i32.const 0)",
    ))
    .expect("install");
    let err = node.install(&sneaky).expect_err("a second claimant");
    assert!(err.to_string().contains("first_claim"), "{err}");
    node.remove("first_claim").expect("remove");
    sneaky = {
        let mut schema = probe_schema(&[("poke", None)]);
        schema.name = "sneaky".into();
        module_importing(&schema, ABI_VERSION, IMPORTS, &[OPEN_PASS_BODY])
    };
    let err = node.install(&sneaky).expect_err("no claim");
    assert!(
        err.to_string().contains("without claiming the authority"),
        "{err}"
    );

    // One render hook per module: a second is refused before anything is installed.
    let two_hooks = {
        let mut schema = probe_schema(&[("draw", None), ("draw_more", None)]);
        schema.name = "two_hooks".into();
        schema.authorities = vec![Authority::Gpu];
        schema
            .types
            .extend(platform::definitions(FRAME_INFO).expect("FrameInfo"));
        for hook in &mut schema.reducers {
            hook.on = Some(Event::Render);
            hook.args = vec![Field::new("frame", Type::Named(FRAME_INFO.into()))];
        }
        module_importing(
            &schema,
            ABI_VERSION,
            IMPORTS,
            &["(i32.const 0)", "(i32.const 0)"],
        )
    };
    let err = node.install(&two_hooks).expect_err("two render hooks");
    assert!(err.to_string().contains("has 2: draw, draw_more"), "{err}");

    // A reducer may make resources; they are the module's until it goes.
    node.install(&hostile_module(
        "maker",
        "(i32.const 0)",
        "(drop (call $buffer (i64.const 64) (i32.const 4))) (i32.const 0)",
    ))
    .expect("install");
    assert!(
        node.call_reducer("maker", "poke", &[])
            .expect("call")
            .is_committed()
    );
    assert_eq!(platform.resources().0, 1);
    node.remove("maker").expect("remove");
    assert_eq!(platform.resources().0, 0);

    // The same node and loop then render the graphics module correctly.
    node.install(graphics_wasm()).expect("install graphics");
    let rendered = platform.frames().rendered;
    wait_for("a graphics frame", || {
        platform.frames().rendered > rendered + 1
    });
    platform.stop();
    render_loop
        .join()
        .expect("the loop thread")
        .expect("the loop ran to its stop");
    let (_, image) = platform.read_frame().expect("read").expect("a frame");
    let px = image.pixel(WIDTH / 2, HEIGHT / 2).expect("centre");
    assert_close(px, rgba([1.0, 0.5, 0.0]), "centre");
}
