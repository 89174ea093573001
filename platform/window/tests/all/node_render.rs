//! The graphics module through a real node: the render hook draws what its table says, and
//! reducers and input change the table.

use interstice_abi::Value;
use interstice_window::{HeadlessConfig, Image, PlatformConfig, WindowPlatform};

use crate::common::assert_close;
use crate::node_common::*;

const CLEAR: [f32; 3] = [0.0, 0.0, 0.2];
const ORANGE: [f32; 3] = [1.0, 0.5, 0.0];
const RED: [f32; 3] = [1.0, 0.0, 0.0];

/// Renders `n` frames and reads the last one back.
fn render(platform: &interstice_window::WindowPlatform, n: u64) -> Image {
    let stats = platform.run_headless(&frames(n)).expect("render loop");
    assert_eq!(stats.frames, n);
    let (_, image) = platform
        .read_frame()
        .expect("readback")
        .expect("a rendered frame");
    image
}

/// Pixels the triangle covers when upright and not when turned by 180°, and the reverse.
const TOP: (u32, u32) = (WIDTH / 2, 13);
const BOTTOM: (u32, u32) = (WIDTH / 2, 34);

fn assert_triangle(image: &Image, colour: [f32; 3], upright: bool) {
    assert_eq!((image.width, image.height), (WIDTH, HEIGHT));
    let px = |(x, y): (u32, u32)| image.pixel(x, y).expect("inside the frame");
    assert_close(px((WIDTH / 2, HEIGHT / 2)), rgba(colour), "centre");
    for corner in [
        (0, 0),
        (WIDTH - 1, 0),
        (0, HEIGHT - 1),
        (WIDTH - 1, HEIGHT - 1),
    ] {
        assert_close(px(corner), rgba(CLEAR), &format!("corner {corner:?}"));
    }
    let (inside, outside) = if upright {
        (TOP, BOTTOM)
    } else {
        (BOTTOM, TOP)
    };
    assert_close(px(inside), rgba(colour), "the tip");
    assert_close(px(outside), rgba(CLEAR), "beyond the base");
    // The hook keeps the shape with the frame's aspect (height / width from its FrameInfo):
    // 21 px from the left edge of the middle row is inside a triangle that was not squeezed.
    assert_close(
        px((25, HEIGHT / 2)),
        rgba(colour),
        "inside the squeezed side",
    );
    assert_close(
        px((21, HEIGHT / 2)),
        rgba(CLEAR),
        "beyond the squeezed side",
    );
}

#[test]
fn the_render_hook_draws_what_the_table_says_and_follows_call_reducer() {
    let Some(platform) = platform(PlatformConfig::default()) else {
        return;
    };
    let node = node(&platform, 2);
    node.install(graphics_wasm()).expect("install graphics");
    // `load` made the scene: a pipeline, two buffers and a bind group (the shader is freed).
    assert_eq!(platform.resources().1.resources, 4);

    assert_triangle(&render(&platform, 3), ORANGE, true);

    let f = |v: f32| Value::F32(v);
    let outcome = node
        .call_reducer_values("graphics", "set_color", &[f(1.0), f(0.0), f(0.0)])
        .expect("call");
    assert!(outcome.is_committed(), "{outcome:?}");
    assert_triangle(&render(&platform, 2), RED, true);

    let outcome = node
        .call_reducer_values("graphics", "rotate", &[f(180.0)])
        .expect("call");
    assert!(outcome.is_committed(), "{outcome:?}");
    assert_triangle(&render(&platform, 2), RED, false);

    // A bad colour is the reducer's error; the table and the picture stay.
    let outcome = node
        .call_reducer_values("graphics", "set_color", &[f(2.0), f(0.0), f(0.0)])
        .expect("call");
    assert!(!outcome.is_committed());
    assert_triangle(&render(&platform, 1), RED, false);

    let frames = platform.frames();
    assert_eq!((frames.rendered, frames.failed, frames.empty), (8, 0, 0));
    let stats = node.authority_stats();
    assert!(
        stats.contains(&("Gpu frames rendered".to_owned(), "8".to_owned())),
        "{stats:?}"
    );

    // Removing the module releases everything it held on the GPU.
    node.remove("graphics").expect("remove");
    assert_eq!(platform.resources().0, 0);
}

#[test]
fn input_turns_and_recolours_the_triangle_in_order() {
    use interstice_window::{InputEvent, MouseButton};
    let Some(platform) = platform(PlatformConfig::default()) else {
        return;
    };
    let node = node(&platform, 2);
    node.install(graphics_wasm()).expect("install graphics");
    let key = |code: &str| InputEvent::Key {
        code: code.into(),
        key: String::new(),
        pressed: true,
        repeat: false,
    };
    // Left, left, right: +15°; a click: the palette's second colour (red). Motion and the
    // release change nothing.
    for event in [
        key("ArrowLeft"),
        key("ArrowLeft"),
        InputEvent::PointerMoved { x: 3.0, y: 4.0 },
        key("ArrowRight"),
        InputEvent::MouseButton {
            button: MouseButton::Left,
            pressed: true,
        },
        InputEvent::MouseButton {
            button: MouseButton::Left,
            pressed: false,
        },
    ] {
        assert_eq!(platform.deliver_input(&event), 1, "one input hook");
    }
    // Everything delivered before this call runs before it.
    let outcome = node
        .call_reducer_values("graphics", "rotate", &[Value::F32(165.0)])
        .expect("call");
    assert!(outcome.is_committed());
    let row = node
        .call_query("graphics", "get_triangle", &[])
        .expect("query");
    let Value::Option(Some(row)) = row else {
        panic!("no triangle: {row:?}")
    };
    assert_eq!(
        *row,
        Value::Struct(vec![
            Value::U8(0),
            Value::F32(1.0),
            Value::F32(0.0),
            Value::F32(0.0),
            Value::F32(180.0),
            Value::U32(1),
        ])
    );
    assert_eq!(platform.input_state().pointer(), Some((3.0, 4.0)));
    assert_triangle(&render(&platform, 1), RED, false);
}

/// As `node start` serves: the platform runs its own render loop from the moment a Gpu module
/// is published, and stops with the platform.
#[test]
fn a_background_platform_renders_what_is_published_to_it() {
    let background = WindowPlatform::headless_in_background(
        PlatformConfig::default(),
        HeadlessConfig {
            width: WIDTH,
            height: HEIGHT,
            rate_hz: 200.0,
            frames: None,
            capture: None,
        },
    );
    let Some(platform) = opened(background) else {
        return;
    };
    let node = node(&platform, 2);
    assert_eq!(platform.frames().rendered, 0, "no loop before a Gpu module");
    node.install(graphics_wasm()).expect("install graphics");
    wait_for("three frames", || platform.frames().rendered >= 3);
    platform.stop();
    let (_, image) = platform.read_frame().expect("read").expect("a frame");
    assert_triangle(&image, ORANGE, true);
}
