//! A module's bad commands: each fails with a clear error, and the same context then still
//! renders a correct frame.

use interstice_window::engine::{buffer_usage, texture_usage};
use interstice_window::{
    Budget, EngineConfig, GpuEngine, GpuError, HandleFault, OwnerId, ResourceKind,
};

use crate::common::*;

const OWNER: OwnerId = OwnerId(1);

type Hostile = fn(&mut GpuEngine, &Scene) -> GpuError;

/// Runs `hostile` against a context that has the known scene, then checks the scene renders.
fn after(
    config: EngineConfig,
    hostile: impl FnOnce(&mut GpuEngine, &Scene) -> GpuError,
) -> Option<GpuError> {
    let mut engine = engine(config)?;
    let s = scene(&mut engine, OWNER);
    let error = hostile(&mut engine, &s);
    eprintln!("refused with: {error}");
    engine.abort_frame();
    let image = render(&mut engine, OWNER, &s, 100);
    assert_scene(&image);
    Some(error)
}

fn default_after(hostile: impl FnOnce(&mut GpuEngine, &Scene) -> GpuError) -> Option<GpuError> {
    after(EngineConfig::default(), hostile)
}

#[test]
fn invalid_wgsl_is_refused_with_the_compiler_message() {
    let Some(e) = default_after(|g, _| {
        g.create_shader_module(
            OWNER,
            "@vertex fn vs() -> @builtin(position) vec4<f32> { return nope; }",
        )
        .expect_err("invalid WGSL")
    }) else {
        return;
    };
    let GpuError::Validation { during, message } = &e else {
        panic!("{e:?}")
    };
    assert!(during.contains("WGSL"), "{during}");
    assert!(
        message.contains("nope"),
        "the message names the unknown identifier: {message}"
    );
}

#[test]
fn a_pipeline_with_a_missing_entry_point_is_refused() {
    let Some(e) = default_after(|g, _| {
        let shader = g
            .create_shader_module(OWNER, TRIANGLE_WGSL)
            .expect("shader");
        let mut desc = triangle_desc(shader);
        desc.fragment_entry = "missing".into();
        g.create_render_pipeline(OWNER, &desc)
            .expect_err("no such entry point")
    }) else {
        return;
    };
    assert!(
        matches!(&e, GpuError::Validation { message, .. } if message.contains("missing")),
        "{e}"
    );
}

#[test]
fn a_buffer_write_out_of_range_is_refused() {
    let Some(e) = default_after(|g, s| {
        g.write_buffer(OWNER, s.vertices, 16, &[0; 16])
            .expect_err("past the end")
    }) else {
        return;
    };
    assert!(
        matches!(&e, GpuError::Invalid(m) if m.contains("outside buffer")),
        "{e}"
    );
    let Some(e) = default_after(|g, s| {
        g.write_buffer(OWNER, s.vertices, u64::MAX - 3, &[0; 8])
            .expect_err("overflow")
    }) else {
        return;
    };
    assert!(matches!(e, GpuError::Invalid(_)), "{e}");
}

#[test]
fn unknown_freed_foreign_and_wrong_kind_handles_are_refused() {
    let fault = |e: GpuError| match e {
        GpuError::BadHandle { fault, .. } => fault,
        other => panic!("expected a refused handle, got {other:?}"),
    };
    let Some(e) = default_after(|g, _| {
        g.write_buffer(OWNER, 0xdead_0000_0099, 0, &[0; 4])
            .expect_err("never created")
    }) else {
        return;
    };
    assert_eq!(fault(e), HandleFault::Unknown);

    let Some(e) = default_after(|g, _| {
        let b = g
            .create_buffer(OWNER, 16, buffer_usage::VERTEX)
            .expect("buffer");
        g.destroy(OWNER, b).expect("free");
        g.write_buffer(OWNER, b, 0, &[0; 4]).expect_err("freed")
    }) else {
        return;
    };
    assert_eq!(fault(e), HandleFault::Freed);

    // The freed slot is reused by the next resource; the old handle still names the old one.
    let Some(e) = default_after(|g, _| {
        let old = g
            .create_buffer(OWNER, 16, buffer_usage::VERTEX)
            .expect("buffer");
        g.destroy(OWNER, old).expect("free");
        let new = g
            .create_buffer(OWNER, 16, buffer_usage::VERTEX)
            .expect("buffer");
        assert_ne!(old, new);
        assert_eq!(old as u32, new as u32, "same slot, new generation");
        g.write_buffer(OWNER, old, 0, &[0; 4]).expect_err("stale")
    }) else {
        return;
    };
    assert_eq!(fault(e), HandleFault::Freed);

    let Some(e) = default_after(|g, s| {
        let other = OwnerId(2);
        g.begin_frame(other, frame(0)).expect("frame");
        g.begin_pass(other, 0, CLEAR).expect("pass");
        g.set_pipeline(other, s.pipeline)
            .expect_err("another module's pipeline")
    }) else {
        return;
    };
    assert_eq!(fault(e), HandleFault::Foreign);

    let Some(e) = default_after(|g, s| {
        g.write_buffer(OWNER, s.pipeline, 0, &[0; 4])
            .expect_err("a pipeline")
    }) else {
        return;
    };
    assert_eq!(
        fault(e),
        HandleFault::WrongKind(ResourceKind::RenderPipeline)
    );

    let Some(e) = default_after(|g, s| {
        g.destroy(OwnerId(3), s.vertices)
            .expect_err("not its buffer")
    }) else {
        return;
    };
    assert_eq!(fault(e), HandleFault::Foreign);
}

#[test]
fn a_texture_past_the_budget_is_refused_before_it_is_allocated() {
    let config = EngineConfig {
        budget: Budget {
            max_bytes: 1 << 20,
            max_resources: 64,
        },
        ..EngineConfig::default()
    };
    let Some(e) = after(config, |g, _| {
        let before = g.usage(OWNER);
        let e = g
            .create_texture(OWNER, 1024, 1024, 1, texture_usage::SAMPLED)
            .expect_err("4 MiB in a 1 MiB budget");
        assert_eq!(g.usage(OWNER), before, "nothing was accounted");
        // What fits still fits.
        let small = g
            .create_texture(OWNER, 256, 256, 1, texture_usage::SAMPLED)
            .expect("256 KiB");
        assert_eq!(g.usage(OWNER).bytes, before.bytes + 256 * 256 * 4);
        g.destroy(OWNER, small).expect("free");
        assert_eq!(g.usage(OWNER), before);
        e
    }) else {
        return;
    };
    assert!(
        matches!(
            e,
            GpuError::OverBudget {
                requested: 4_194_304,
                budget: 1_048_576,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn thousands_of_resources_hit_the_cap() {
    let cap = 2_000;
    let config = EngineConfig {
        budget: Budget {
            max_bytes: 1 << 30,
            max_resources: cap,
        },
        ..EngineConfig::default()
    };
    let Some(e) = after(config, |g, _| {
        let held = g.usage(OWNER).resources;
        let mut made = Vec::new();
        let error = loop {
            match g.create_buffer(OWNER, 4, buffer_usage::UNIFORM) {
                Ok(h) => made.push(h),
                Err(e) => break e,
            }
            assert!(made.len() <= cap as usize, "the cap was not enforced");
        };
        assert_eq!(made.len() as u32 + held, cap);
        for h in made {
            g.destroy(OWNER, h).expect("free");
        }
        error
    }) else {
        return;
    };
    assert_eq!(e, GpuError::TooManyResources { limit: cap });
}

#[test]
fn draw_without_a_pipeline_is_refused() {
    let Some(e) = default_after(|g, s| {
        g.begin_frame(OWNER, frame(0)).expect("frame");
        g.begin_pass(OWNER, 0, CLEAR).expect("pass");
        g.set_vertex_buffer(OWNER, 0, s.vertices, 0, 0)
            .expect("vertices");
        g.draw(OWNER, 0, 3, 0, 1).expect_err("no pipeline")
    }) else {
        return;
    };
    assert!(
        matches!(&e, GpuError::Command(m) if m.contains("set_pipeline")),
        "{e}"
    );
}

#[test]
fn bad_pass_structure_and_bounds_are_refused_by_the_host() {
    let cases: [(&str, Hostile); 6] = [
        ("outside a frame", |g, _| {
            g.begin_pass(OWNER, 0, CLEAR).expect_err("no frame")
        }),
        ("outside a pass", |g, s| {
            g.begin_frame(OWNER, frame(0)).expect("frame");
            g.set_pipeline(OWNER, s.pipeline).expect_err("no pass")
        }),
        ("a pass left open", |g, _| {
            g.begin_frame(OWNER, frame(0)).expect("frame");
            g.begin_pass(OWNER, 0, CLEAR).expect("pass");
            g.end_frame(OWNER).expect_err("open pass")
        }),
        ("too many vertices for the buffer", |g, s| {
            g.begin_frame(OWNER, frame(0)).expect("frame");
            g.begin_pass(OWNER, 0, CLEAR).expect("pass");
            g.set_pipeline(OWNER, s.pipeline).expect("pipeline");
            g.set_vertex_buffer(OWNER, 0, s.vertices, 0, 0)
                .expect("vertices");
            g.draw(OWNER, 0, 4, 0, 1).expect_err("3 vertices bound")
        }),
        ("a vertex range that overflows", |g, s| {
            g.begin_frame(OWNER, frame(0)).expect("frame");
            g.begin_pass(OWNER, 0, CLEAR).expect("pass");
            g.set_pipeline(OWNER, s.pipeline).expect("pipeline");
            g.draw(OWNER, u32::MAX, 2, 0, 1).expect_err("overflow")
        }),
        ("a uniform buffer as vertex buffer", |g, s| {
            g.begin_frame(OWNER, frame(0)).expect("frame");
            g.begin_pass(OWNER, 0, CLEAR).expect("pass");
            g.set_vertex_buffer(OWNER, 0, s.colour, 0, 0)
                .expect_err("not VERTEX")
        }),
    ];
    for (what, case) in cases {
        let Some(e) = default_after(case) else { return };
        assert!(matches!(e, GpuError::Command(_)), "{what}: {e:?}");
    }
}

#[test]
fn what_only_wgpu_can_judge_fails_the_frame_through_the_error_scope() {
    // The pipeline needs bind group 0; the host does not track layouts, wgpu does.
    let Some(e) = default_after(|g, s| {
        g.begin_frame(OWNER, frame(0)).expect("frame");
        g.begin_pass(OWNER, 0, CLEAR).expect("pass");
        g.set_pipeline(OWNER, s.pipeline).expect("pipeline");
        g.set_vertex_buffer(OWNER, 0, s.vertices, 0, 0)
            .expect("vertices");
        g.draw(OWNER, 0, 3, 0, 1).expect("recorded");
        g.end_pass(OWNER).expect("end pass");
        g.end_frame(OWNER).expect_err("no bind group")
    }) else {
        return;
    };
    assert!(
        matches!(&e, GpuError::Validation { during, .. } if during.contains("frame 0")),
        "{e}"
    );
}

#[test]
fn a_buffer_freed_after_it_was_recorded_fails_that_frame() {
    let Some(e) = default_after(|g, s| {
        let extra = g
            .create_buffer(OWNER, 24, buffer_usage::VERTEX)
            .expect("buffer");
        g.begin_frame(OWNER, frame(0)).expect("frame");
        g.begin_pass(OWNER, 0, CLEAR).expect("pass");
        g.set_pipeline(OWNER, s.pipeline).expect("pipeline");
        g.set_bind_group(OWNER, 0, s.group).expect("group");
        g.set_vertex_buffer(OWNER, 0, extra, 0, 0)
            .expect("vertices");
        g.draw(OWNER, 0, 3, 0, 1).expect("draw");
        g.end_pass(OWNER).expect("end pass");
        g.destroy(OWNER, extra).expect("free");
        g.end_frame(OWNER).expect_err("destroyed buffer")
    }) else {
        return;
    };
    assert!(matches!(e, GpuError::Validation { .. }), "{e}");
}
