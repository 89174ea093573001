use interstice_window::{
    BindingDesc, EngineConfig, FrameInfo, GpuEngine, GpuError, Image, OwnerId, PipelineDesc,
    VertexAttributeDesc, VertexBufferDesc, engine::buffer_usage,
};

pub const WIDTH: u32 = 64;
pub const HEIGHT: u32 = 48;
/// Linear clear colour and triangle colour; 0 and 1 are exact in sRGB too.
pub const CLEAR: [f64; 4] = [0.0, 0.0, 1.0, 1.0];
pub const CLEAR_RGBA: [u8; 4] = [0, 0, 255, 255];
pub const TRIANGLE: [f32; 4] = [1.0, 0.0, 0.0, 1.0];
pub const TRIANGLE_RGBA: [u8; 4] = [255, 0, 0, 255];
/// Rasterisers may differ by a rounding step per channel.
pub const TOLERANCE: u8 = 2;

pub const TRIANGLE_WGSL: &str = r#"
@group(0) @binding(0) var<uniform> colour: vec4<f32>;

@vertex
fn vs(@location(0) position: vec2<f32>) -> @builtin(position) vec4<f32> {
    return vec4<f32>(position, 0.0, 1.0);
}

@fragment
fn fs() -> @location(0) vec4<f32> {
    return colour;
}
"#;

/// An engine on whatever adapter the machine has, or `None` when `INTERSTICE_NO_GPU=1` says
/// there is none. Without that variable a missing adapter fails the test with the install hint.
pub fn engine(config: EngineConfig) -> Option<GpuEngine> {
    match GpuEngine::headless(config) {
        Ok(engine) => {
            eprintln!("adapter: {}", engine.gpu().describe());
            Some(engine)
        }
        Err(e @ GpuError::NoAdapter { .. }) if no_gpu_declared() => {
            eprintln!("GPU test NOT RUN: INTERSTICE_NO_GPU=1 and {e}");
            None
        }
        Err(e) => {
            panic!("{e}\n(set INTERSTICE_NO_GPU=1 only on a machine that cannot have a GPU stack)")
        }
    }
}

fn no_gpu_declared() -> bool {
    std::env::var("INTERSTICE_NO_GPU").is_ok_and(|v| v == "1")
}

pub struct Scene {
    pub pipeline: u64,
    pub vertices: u64,
    pub colour: u64,
    pub group: u64,
}

pub fn vertex_bytes(points: &[[f32; 2]]) -> Vec<u8> {
    points
        .iter()
        .flatten()
        .flat_map(|f| f.to_le_bytes())
        .collect()
}

pub fn triangle_desc(shader: u64) -> PipelineDesc {
    PipelineDesc {
        shader,
        vertex_entry: "vs".into(),
        fragment_entry: "fs".into(),
        vertex_buffers: vec![VertexBufferDesc {
            stride: 8,
            per_instance: false,
            attributes: vec![VertexAttributeDesc {
                format: 1,
                offset: 0,
                location: 0,
            }],
        }],
        topology: 0,
        target_format: 0,
        alpha_blend: false,
    }
}

/// The resources of the known scene: a centred triangle with its colour in a uniform.
pub fn scene(engine: &mut GpuEngine, owner: OwnerId) -> Scene {
    let shader = engine
        .create_shader_module(owner, TRIANGLE_WGSL)
        .expect("shader");
    let pipeline = engine
        .create_render_pipeline(owner, &triangle_desc(shader))
        .expect("pipeline");
    let vertices = engine
        .create_buffer(owner, 24, buffer_usage::VERTEX)
        .expect("vertex buffer");
    engine
        .write_buffer(
            owner,
            vertices,
            0,
            &vertex_bytes(&[[-0.5, -0.5], [0.5, -0.5], [0.0, 0.5]]),
        )
        .expect("vertices");
    let colour = engine
        .create_buffer(owner, 16, buffer_usage::UNIFORM)
        .expect("uniform");
    let bytes: Vec<u8> = TRIANGLE.iter().flat_map(|f| f.to_le_bytes()).collect();
    engine
        .write_buffer(owner, colour, 0, &bytes)
        .expect("colour");
    let group = engine
        .create_bind_group(
            owner,
            pipeline,
            0,
            &[BindingDesc::Buffer {
                binding: 0,
                buffer: colour,
                offset: 0,
                size: 0,
            }],
        )
        .expect("bind group");
    Scene {
        pipeline,
        vertices,
        colour,
        group,
    }
}

pub fn frame(number: u64) -> FrameInfo {
    FrameInfo {
        number,
        width: WIDTH,
        height: HEIGHT,
        time_ns: number * 16_666_667,
    }
}

/// Records the scene's commands into an open frame.
pub fn record(engine: &mut GpuEngine, owner: OwnerId, s: &Scene) -> interstice_window::Result<()> {
    engine.begin_pass(owner, 0, CLEAR)?;
    engine.set_pipeline(owner, s.pipeline)?;
    engine.set_bind_group(owner, 0, s.group)?;
    engine.set_vertex_buffer(owner, 0, s.vertices, 0, 0)?;
    engine.draw(owner, 0, 3, 0, 1)?;
    engine.end_pass(owner)
}

/// Renders the scene as frame `number` and reads it back.
pub fn render(engine: &mut GpuEngine, owner: OwnerId, s: &Scene, number: u64) -> Image {
    engine
        .begin_frame(owner, frame(number))
        .expect("begin frame");
    record(engine, owner, s).expect("record");
    let done = engine.end_frame(owner).expect("end frame");
    assert_eq!(done.number, number);
    let (read, image) = engine
        .read_frame()
        .expect("readback")
        .expect("a frame is ready");
    assert_eq!(read, number);
    image
}

pub fn assert_close(actual: [u8; 4], expected: [u8; 4], what: &str) {
    let close = actual
        .iter()
        .zip(expected)
        .all(|(a, e)| a.abs_diff(e) <= TOLERANCE);
    assert!(
        close,
        "{what}: got {actual:?}, expected {expected:?} ±{TOLERANCE}"
    );
}

/// The centre is the triangle, the corners are the clear colour.
pub fn assert_scene(image: &Image) {
    assert_eq!((image.width, image.height), (WIDTH, HEIGHT));
    let px = |x, y| image.pixel(x, y).expect("inside the image");
    assert_close(px(WIDTH / 2, HEIGHT / 2), TRIANGLE_RGBA, "centre");
    for (x, y) in [
        (0, 0),
        (WIDTH - 1, 0),
        (0, HEIGHT - 1),
        (WIDTH - 1, HEIGHT - 1),
    ] {
        assert_close(px(x, y), CLEAR_RGBA, &format!("corner ({x}, {y})"));
    }
}
