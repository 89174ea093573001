use interstice_window::{EngineConfig, OwnerId};

use crate::common::*;

#[test]
fn a_triangle_renders_off_screen_with_known_pixels() {
    let Some(mut engine) = engine(EngineConfig::default()) else {
        return;
    };
    let owner = OwnerId(1);
    let s = scene(&mut engine, owner);
    let image = render(&mut engine, owner, &s, 0);
    assert_scene(&image);
    // Below the triangle's base (y = -0.5 in clip space, row 36 of 48) is clear colour.
    assert_close(
        image.pixel(WIDTH / 2, HEIGHT - 6).expect("pixel"),
        CLEAR_RGBA,
        "below",
    );
}

#[test]
fn frames_are_written_as_png_that_decode_to_the_same_pixels() {
    let Some(mut engine) = engine(EngineConfig::default()) else {
        return;
    };
    let owner = OwnerId(1);
    let s = scene(&mut engine, owner);
    let image = render(&mut engine, owner, &s, 0);
    let mut bytes = Vec::new();
    image.write_png(&mut bytes).expect("png");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("png header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("png data");
    assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
    assert_eq!(&pixels[..info.buffer_size()], &image.rgba[..]);
}

#[test]
fn a_frame_renders_at_a_new_size_after_a_resize() {
    let Some(mut engine) = engine(EngineConfig::default()) else {
        return;
    };
    let owner = OwnerId(1);
    let s = scene(&mut engine, owner);
    render(&mut engine, owner, &s, 0);
    let mut info = frame(1);
    (info.width, info.height) = (300, 20);
    engine.begin_frame(owner, info).expect("begin");
    record(&mut engine, owner, &s).expect("record");
    engine.end_frame(owner).expect("end");
    let (_, image) = engine.read_frame().expect("read").expect("ready");
    assert_eq!((image.width, image.height), (300, 20));
    assert_close(
        image.pixel(150, 10).expect("centre"),
        TRIANGLE_RGBA,
        "centre",
    );
    assert_close(image.pixel(0, 0).expect("corner"), CLEAR_RGBA, "corner");
}
