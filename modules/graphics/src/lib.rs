//! The graphics example: reducers, tables and input working together around one triangle.
//!
//! Build: `cargo build -p graphics --target wasm32-unknown-unknown --release`; run it with
//! `interstice example graphics` (a window, or off-screen without a display).
//!
//! - `triangle` (one row, id `0`) holds the triangle's colour (linear RGB in 0..=1), its
//!   rotation in degrees and how many clicks it has seen. `init` creates it (orange, upright).
//! - `set_color(r, g, b)` and `rotate(degrees)` change it from outside:
//!   `interstice call_reducer example-graphics graphics set_color 1 0 0`.
//! - The `input` hook changes it from the window: ArrowLeft / ArrowRight turn it by 15°, a
//!   left click moves to the next colour of [`PALETTE`].
//! - The `load` hook creates the GPU resources (shader, pipeline, buffers, bind group) and
//!   keeps their handles in the ephemeral `scene` table; `load` runs at install, upgrade and
//!   node start, when a module's GPU resources are new.
//! - The `render` hook reads both tables and draws what they say: the frame is cleared to
//!   [`CLEAR`] and the triangle drawn in its colour, turned by its rotation, with the frame's
//!   aspect ratio kept. While Space is held (the live input state, which only the render hook
//!   may read) it also spins with the frame's time; nothing of that is written anywhere.

use interstice_sdk::gpu::{
    BindGroup, BindGroupEntry, Buffer, BufferUsage, RenderPipeline, RenderPipelineDesc, Target,
    VertexBufferLayout, VertexFormat, bytes_of,
};
use interstice_sdk::platform::{FrameInfo, InputEvent, MouseButton};
use interstice_sdk::*;

interstice_module!(visibility: Public, authorities: [Gpu, Input]);

/// The triangle: one row, id `0`.
#[table(public)]
#[derive(Clone, Debug, PartialEq)]
pub struct Triangle {
    #[primary_key]
    pub id: u8,
    pub r: f32,
    pub g: f32,
    pub b: f32,
    /// Degrees, counter-clockwise.
    pub rotation: f32,
    pub clicks: u32,
}

/// The GPU resources of the scene, made by `load`. Ephemeral: GPU resources do not outlive the
/// process, so neither do their handles.
#[table(ephemeral)]
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    #[primary_key]
    pub id: u8,
    pub pipeline: RenderPipeline,
    pub vertices: Buffer,
    pub params: Buffer,
    pub group: BindGroup,
}

const ROW: u8 = 0;

/// The frame's clear colour, linear RGBA.
pub const CLEAR: [f64; 4] = [0.0, 0.0, 0.2, 1.0];
/// The colour at install.
pub const START: [f32; 3] = [1.0, 0.5, 0.0];
/// Colours a left click steps through.
pub const PALETTE: [[f32; 3]; 5] = [
    [1.0, 0.5, 0.0],
    [1.0, 0.0, 0.0],
    [0.0, 1.0, 0.0],
    [0.0, 0.4, 1.0],
    [1.0, 1.0, 1.0],
];
/// Degrees an arrow key turns the triangle.
pub const STEP: f32 = 15.0;

/// Positions around the origin, so it turns about its centre.
const VERTICES: [f32; 6] = [0.0, 0.6, -0.52, -0.3, 0.52, -0.3];

const WGSL: &str = r#"
struct Params {
    colour: vec4<f32>,
    // Radians, counter-clockwise.
    angle: f32,
    // height / width: keeps the triangle's shape in any frame.
    aspect: f32,
    pad: vec2<f32>,
};

@group(0) @binding(0) var<uniform> params: Params;

@vertex
fn vs(@location(0) p: vec2<f32>) -> @builtin(position) vec4<f32> {
    let c = cos(params.angle);
    let s = sin(params.angle);
    let turned = vec2<f32>(p.x * c - p.y * s, p.x * s + p.y * c);
    return vec4<f32>(turned.x * params.aspect, turned.y, 0.0, 1.0);
}

@fragment
fn fs() -> @location(0) vec4<f32> {
    return params.colour;
}
"#;

#[reducer(on = "init", writes(triangle))]
fn init(ctx: ReducerContext) -> Result<(), String> {
    let [r, g, b] = START;
    ctx.current.triangle().insert(Triangle {
        id: ROW,
        r,
        g,
        b,
        rotation: 0.0,
        clicks: 0,
    })?;
    Ok(())
}

/// Makes the GPU resources and records their handles.
#[reducer(on = "load", writes(scene))]
fn setup(ctx: ReducerContext) -> Result<(), String> {
    let gpu = ctx.gpu();
    let shader = gpu.create_shader_module(WGSL)?;
    let layout = VertexBufferLayout::new(8).attribute(VertexFormat::Float32x2, 0, 0);
    let pipeline = gpu.create_render_pipeline(
        &RenderPipelineDesc::new(shader, "vs", "fs").vertex_buffer(layout),
    )?;
    // The pipeline keeps what it needs of the shader.
    gpu.destroy(shader)?;
    let vertices = gpu.create_buffer(24, BufferUsage::VERTEX)?;
    gpu.write_buffer(vertices, 0, &bytes_of(&VERTICES))?;
    let params = gpu.create_buffer(32, BufferUsage::UNIFORM)?;
    let group = gpu.create_bind_group(pipeline, 0, &[BindGroupEntry::buffer(0, params)])?;
    let scene = ctx.current.scene();
    scene.clear()?;
    scene.insert(Scene {
        id: ROW,
        pipeline,
        vertices,
        params,
        group,
    })?;
    Ok(())
}

fn triangle(ctx: &ReducerContext) -> Result<Triangle, String> {
    ctx.current
        .triangle()
        .get(ROW)?
        .ok_or_else(|| "the triangle row is missing; reinstall the module".to_owned())
}

/// Sets the triangle's colour, linear RGB in 0..=1.
#[reducer(writes(triangle))]
fn set_color(ctx: ReducerContext, r: f32, g: f32, b: f32) -> Result<(), String> {
    if ![r, g, b].iter().all(|c| (0.0..=1.0).contains(c)) {
        return Err(format!(
            "colour ({r}, {g}, {b}) is outside 0..=1; write e.g. `set_color 1 0.5 0`"
        ));
    }
    let mut row = triangle(&ctx)?;
    (row.r, row.g, row.b) = (r, g, b);
    ctx.current.triangle().update(row)?;
    Ok(())
}

/// Turns the triangle by `degrees`, counter-clockwise.
#[reducer(writes(triangle))]
fn rotate(ctx: ReducerContext, degrees: f32) -> Result<(), String> {
    if !degrees.is_finite() {
        return Err(format!("cannot turn by {degrees} degrees"));
    }
    let mut row = triangle(&ctx)?;
    row.rotation = (row.rotation + degrees).rem_euclid(360.0);
    ctx.current.triangle().update(row)?;
    Ok(())
}

/// Arrow keys turn it, a left click changes its colour; other events change nothing.
#[reducer(on = "input", writes(triangle))]
fn on_input(ctx: ReducerContext, event: InputEvent) -> Result<(), String> {
    let mut row = triangle(&ctx)?;
    match event {
        InputEvent::Key {
            code,
            pressed: true,
            ..
        } if code == "ArrowLeft" => {
            row.rotation = (row.rotation + STEP).rem_euclid(360.0);
        }
        InputEvent::Key {
            code,
            pressed: true,
            ..
        } if code == "ArrowRight" => {
            row.rotation = (row.rotation - STEP).rem_euclid(360.0);
        }
        InputEvent::MouseButton {
            button: MouseButton::Left,
            pressed: true,
        } => {
            row.clicks = row.clicks.wrapping_add(1);
            [row.r, row.g, row.b] = PALETTE[row.clicks as usize % PALETTE.len()];
        }
        _ => return Ok(()),
    }
    ctx.current.triangle().update(row)?;
    Ok(())
}

/// Draws the triangle as the tables say.
#[reducer(on = "render", reads(triangle, scene))]
fn draw(ctx: ReducerContext, frame: FrameInfo) -> Result<(), String> {
    let (Some(t), Some(scene)) = (
        ctx.current.triangle().get(ROW)?,
        ctx.current.scene().get(ROW)?,
    ) else {
        return Ok(());
    };
    let mut degrees = t.rotation;
    if ctx.input().state()?.is_key_down("Space") {
        // 90° a second of frame time, for as long as Space is held.
        degrees += (frame.time as f64 / 1e6 * 90.0 % 360.0) as f32;
    }
    let aspect = if frame.width == 0 {
        1.0
    } else {
        frame.height as f32 / frame.width as f32
    };
    let gpu = ctx.gpu();
    gpu.write_buffer(
        scene.params,
        0,
        &bytes_of(&[t.r, t.g, t.b, 1.0, degrees.to_radians(), aspect, 0.0, 0.0]),
    )?;
    let mut pass = gpu.begin_pass(Target::Frame, CLEAR)?;
    pass.set_pipeline(scene.pipeline)?;
    pass.set_bind_group(0, scene.group)?;
    pass.set_vertex_buffer(0, scene.vertices)?;
    pass.draw(0..3, 0..1)?;
    pass.end()?;
    Ok(())
}

/// The triangle as the table holds it.
#[query]
fn get_triangle(ctx: QueryContext) -> Option<Triangle> {
    ctx.current.triangle().get(ROW).ok().flatten()
}
