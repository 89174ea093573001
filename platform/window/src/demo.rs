//! A driver that draws one triangle: the examples' and benchmark's scene, written against the
//! engine exactly as a module's `render` hook will be through host calls.

use crate::engine::{
    BindingDesc, GpuEngine, PipelineDesc, VertexAttributeDesc, VertexBufferDesc, buffer_usage,
};
use crate::error::{GpuError, Result};
use crate::frame::FrameInfo;
use crate::lane::{Driver, LoopWaker, SharedEngine};
use crate::resources::OwnerId;

/// The triangle's WGSL: positions from a vertex buffer, the colour from a uniform.
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

/// The scene's resources.
#[derive(Debug, Clone, Copy)]
pub struct TriangleScene {
    pub pipeline: u64,
    pub vertices: u64,
    pub colour: u64,
    pub group: u64,
}

impl TriangleScene {
    /// Creates the scene's resources for `owner`: a triangle of `colour` (linear RGBA).
    pub fn create(engine: &mut GpuEngine, owner: OwnerId, colour: [f32; 4]) -> Result<Self> {
        let shader = engine.create_shader_module(owner, TRIANGLE_WGSL)?;
        let pipeline = engine.create_render_pipeline(
            owner,
            &PipelineDesc {
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
            },
        )?;
        let vertices = engine.create_buffer(owner, 24, buffer_usage::VERTEX)?;
        let points: [f32; 6] = [-0.5, -0.5, 0.5, -0.5, 0.0, 0.5];
        engine.write_buffer(owner, vertices, 0, &le_bytes(&points))?;
        let uniform = engine.create_buffer(owner, 16, buffer_usage::UNIFORM)?;
        engine.write_buffer(owner, uniform, 0, &le_bytes(&colour))?;
        let group = engine.create_bind_group(
            owner,
            pipeline,
            0,
            &[BindingDesc::Buffer {
                binding: 0,
                buffer: uniform,
                offset: 0,
                size: 0,
            }],
        )?;
        Ok(TriangleScene {
            pipeline,
            vertices,
            colour: uniform,
            group,
        })
    }

    /// Records the scene into `owner`'s open frame: clear, then the triangle.
    pub fn record(&self, engine: &mut GpuEngine, owner: OwnerId, clear: [f64; 4]) -> Result<()> {
        engine.begin_pass(owner, 0, clear)?;
        engine.set_pipeline(owner, self.pipeline)?;
        engine.set_bind_group(owner, 0, self.group)?;
        engine.set_vertex_buffer(owner, 0, self.vertices, 0, 0)?;
        engine.draw(owner, 0, 3, 0, 1)?;
        engine.end_pass(owner)
    }
}

fn le_bytes(floats: &[f32]) -> Vec<u8> {
    floats.iter().flat_map(|f| f.to_le_bytes()).collect()
}

/// Renders the triangle every frame, as module `owner`.
#[derive(Debug)]
pub struct TriangleDemo {
    pub owner: OwnerId,
    pub colour: [f32; 4],
    pub clear: [f64; 4],
    scene: Option<TriangleScene>,
    /// Frames that ended, and the last error if a frame failed.
    pub ended: u64,
    pub last_error: Option<GpuError>,
    /// Stop the loop once this many frames ended.
    pub stop_after: Option<(u64, LoopWaker)>,
}

impl TriangleDemo {
    /// A red triangle on a dark blue background.
    pub fn new(owner: OwnerId) -> Self {
        TriangleDemo {
            owner,
            colour: [1.0, 0.0, 0.0, 1.0],
            clear: [0.0, 0.0, 0.2, 1.0],
            scene: None,
            ended: 0,
            last_error: None,
            stop_after: None,
        }
    }

    fn render(&mut self, engine: &mut GpuEngine, frame: FrameInfo) -> Result<()> {
        let scene = match self.scene {
            Some(scene) => scene,
            None => *self
                .scene
                .insert(TriangleScene::create(engine, self.owner, self.colour)?),
        };
        engine.begin_frame(self.owner, frame)?;
        scene.record(engine, self.owner, self.clear)?;
        engine.end_frame(self.owner)?;
        Ok(())
    }
}

impl Driver for TriangleDemo {
    fn frame_due(&mut self, engine: &SharedEngine, frame: FrameInfo) {
        let mut engine = engine.lock();
        match self.render(&mut engine, frame) {
            Ok(()) => self.ended += 1,
            Err(e) => {
                // The invocation fails, the loop goes on: exactly what a module's trap does.
                tracing::warn!(frame = frame.number, error = %e, "frame failed");
                engine.abort_frame();
                self.last_error = Some(e);
            }
        }
        if let Some((n, waker)) = &self.stop_after
            && self.ended >= *n
        {
            waker.stop();
        }
    }
}
