use interstice_window::engine::{buffer_usage, texture_usage};
use interstice_window::{EngineConfig, OwnerId, Released, Usage};

use crate::common::*;

#[test]
fn release_all_leaves_zero_resources_and_bytes_and_spares_other_modules() {
    let Some(mut engine) = engine(EngineConfig::default()) else {
        return;
    };
    let (a, b) = (OwnerId(1), OwnerId(2));
    let sa = scene(&mut engine, a);
    let sb = scene(&mut engine, b);
    let texture = engine
        .create_texture(a, 32, 16, 1, texture_usage::SAMPLED)
        .expect("texture");
    engine.create_sampler(a, true, false).expect("sampler");
    let before = engine.usage(a);
    // shader, pipeline, 2 buffers, bind group (scene) + texture + sampler.
    assert_eq!(before.resources, 7);
    assert_eq!(before.bytes, 24 + 16 + 32 * 16 * 4);

    // A frame of `a` in progress is dropped with its resources.
    engine.begin_frame(a, frame(0)).expect("frame");
    record(&mut engine, a, &sa).expect("record");
    let released = engine.release_owner(a);
    assert_eq!(
        released,
        Released {
            bytes: before.bytes,
            resources: 7
        }
    );
    assert_eq!(engine.usage(a), Usage::default());
    assert!(
        engine.end_frame(a).is_err(),
        "the dropped frame cannot be ended"
    );
    assert!(engine.write_buffer(a, sa.vertices, 0, &[0; 4]).is_err());
    assert!(engine.destroy(a, texture).is_err());
    assert_eq!(engine.resources().live(), 5, "b's scene is intact");

    // b still renders, and a (reinstalled) starts from nothing.
    assert_scene(&render(&mut engine, b, &sb, 1));
    let sa = scene(&mut engine, a);
    assert_eq!(engine.usage(a).resources, 5);
    assert_scene(&render(&mut engine, a, &sa, 2));
    engine.release_owner(a);
    engine.release_owner(b);
    assert_eq!(engine.resources().live(), 0);
    assert_eq!(engine.usage(b), Usage::default());
    assert!(engine.create_buffer(b, 4, buffer_usage::VERTEX).is_ok());
}
