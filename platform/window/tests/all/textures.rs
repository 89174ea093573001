//! Textures and samplers: pixels written by the module and passes that draw into a texture.

use interstice_window::engine::texture_usage;
use interstice_window::{BindingDesc, EngineConfig, GpuEngine, GpuError, OwnerId, PipelineDesc};

use crate::common::*;

const OWNER: OwnerId = OwnerId(1);

/// A screen-covering triangle that shows a texture.
const SHOW_WGSL: &str = r#"
@group(0) @binding(0) var picture: texture_2d<f32>;
@group(0) @binding(1) var picture_sampler: sampler;

struct Out {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

@vertex
fn vs(@builtin(vertex_index) i: u32) -> Out {
    let uv = vec2<f32>(f32((i << 1u) & 2u), f32(i & 2u));
    var out: Out;
    out.position = vec4<f32>(uv.x * 2.0 - 1.0, 1.0 - uv.y * 2.0, 0.0, 1.0);
    out.uv = uv;
    return out;
}

@fragment
fn fs(in: Out) -> @location(0) vec4<f32> {
    return textureSample(picture, picture_sampler, in.uv);
}
"#;

/// A pipeline and bind group that show `texture` on the frame.
fn show(
    engine: &mut GpuEngine,
    texture: u64,
    target_format: u32,
) -> interstice_window::Result<(u64, u64)> {
    let shader = engine.create_shader_module(OWNER, SHOW_WGSL)?;
    let pipeline = engine.create_render_pipeline(
        OWNER,
        &PipelineDesc {
            shader,
            vertex_entry: "vs".into(),
            fragment_entry: "fs".into(),
            vertex_buffers: vec![],
            topology: 0,
            target_format,
            alpha_blend: false,
        },
    )?;
    let sampler = engine.create_sampler(OWNER, false, false)?;
    let group = engine.create_bind_group(
        OWNER,
        pipeline,
        0,
        &[
            BindingDesc::Texture {
                binding: 0,
                texture,
            },
            BindingDesc::Sampler {
                binding: 1,
                sampler,
            },
        ],
    )?;
    Ok((pipeline, group))
}

fn draw_fullscreen(
    engine: &mut GpuEngine,
    pipeline: u64,
    group: u64,
) -> interstice_window::Result<()> {
    engine.set_pipeline(OWNER, pipeline)?;
    engine.set_bind_group(OWNER, 0, group)?;
    engine.draw(OWNER, 0, 3, 0, 1)
}

#[test]
fn written_texels_are_sampled_into_the_frame() {
    let Some(mut engine) = engine(EngineConfig::default()) else {
        return;
    };
    let texture = engine
        .create_texture(OWNER, 2, 2, 0, texture_usage::SAMPLED)
        .expect("texture");
    let texels: [[u8; 4]; 4] = [
        [255, 0, 0, 255],
        [0, 255, 0, 255],
        [0, 0, 255, 255],
        [255, 255, 255, 255],
    ];
    let bytes: Vec<u8> = texels.iter().flatten().copied().collect();
    assert!(
        engine.write_texture(OWNER, texture, &bytes[..12]).is_err(),
        "a short write is refused"
    );
    engine.write_texture(OWNER, texture, &bytes).expect("write");
    let (pipeline, group) = show(&mut engine, texture, 0).expect("pipeline");
    engine.begin_frame(OWNER, frame(0)).expect("frame");
    engine.begin_pass(OWNER, 0, CLEAR).expect("pass");
    draw_fullscreen(&mut engine, pipeline, group).expect("draw");
    engine.end_pass(OWNER).expect("end pass");
    engine.end_frame(OWNER).expect("end frame");
    let (_, image) = engine.read_frame().expect("read").expect("frame");
    let quadrant = |qx: u32, qy: u32| {
        image
            .pixel(WIDTH / 4 + qx * WIDTH / 2, HEIGHT / 4 + qy * HEIGHT / 2)
            .expect("pixel")
    };
    assert_close(quadrant(0, 0), texels[0], "top left");
    assert_close(quadrant(1, 0), texels[1], "top right");
    assert_close(quadrant(0, 1), texels[2], "bottom left");
    assert_close(quadrant(1, 1), texels[3], "bottom right");
}

#[test]
fn a_pass_draws_into_a_texture_that_a_later_pass_shows() {
    let Some(mut engine) = engine(EngineConfig::default()) else {
        return;
    };
    let texture = engine
        .create_texture(
            OWNER,
            16,
            16,
            0,
            texture_usage::SAMPLED | texture_usage::RENDER_ATTACHMENT,
        )
        .expect("texture");
    let (pipeline, group) = show(&mut engine, texture, 0).expect("pipeline");
    engine.begin_frame(OWNER, frame(0)).expect("frame");
    engine
        .begin_pass(OWNER, texture, [0.0, 1.0, 0.0, 1.0])
        .expect("pass into the texture");
    engine.end_pass(OWNER).expect("end");
    engine.begin_pass(OWNER, 0, CLEAR).expect("frame pass");
    draw_fullscreen(&mut engine, pipeline, group).expect("draw");
    engine.end_pass(OWNER).expect("end");
    engine.end_frame(OWNER).expect("end frame");
    let (_, image) = engine.read_frame().expect("read").expect("frame");
    for (x, y) in [(0, 0), (WIDTH / 2, HEIGHT / 2), (WIDTH - 1, HEIGHT - 1)] {
        assert_close(
            image.pixel(x, y).expect("pixel"),
            [0, 255, 0, 255],
            "the texture's green",
        );
    }
}

#[test]
fn pass_targets_must_be_drawable_and_match_the_pipeline_format() {
    let Some(mut engine) = engine(EngineConfig::default()) else {
        return;
    };
    let sampled_only = engine
        .create_texture(OWNER, 4, 4, 0, texture_usage::SAMPLED)
        .expect("texture");
    let linear = engine
        .create_texture(
            OWNER,
            4,
            4,
            1,
            texture_usage::SAMPLED | texture_usage::RENDER_ATTACHMENT,
        )
        .expect("texture");
    // A pipeline that draws rgba8 (not sRGB), used on the sRGB frame.
    let (pipeline, _) = show(&mut engine, linear, 1).expect("pipeline");
    engine.begin_frame(OWNER, frame(0)).expect("frame");
    let e = engine
        .begin_pass(OWNER, sampled_only, CLEAR)
        .expect_err("not a render attachment");
    assert!(
        matches!(&e, GpuError::Command(m) if m.contains("RENDER_ATTACHMENT")),
        "{e}"
    );
    engine.begin_pass(OWNER, 0, CLEAR).expect("frame pass");
    let e = engine
        .set_pipeline(OWNER, pipeline)
        .expect_err("format mismatch");
    assert!(
        matches!(&e, GpuError::Command(m) if m.contains("Rgba8Unorm")),
        "{e}"
    );
    assert!(
        engine.create_texture(OWNER, 4, 4, 99, 0).is_err(),
        "unknown format"
    );
    assert!(
        engine.create_texture(OWNER, 0, 4, 0, 0).is_err(),
        "empty texture"
    );
    assert!(
        engine.create_texture(OWNER, 1 << 20, 4, 0, 0).is_err(),
        "past the device limit"
    );
}
