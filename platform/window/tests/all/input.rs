use interstice_window::input::{translate, translate_key};
use interstice_window::{InputEvent, InputState, MouseButton, WheelUnit};
use winit::dpi::{PhysicalPosition, PhysicalSize};
use winit::event::{DeviceId, ElementState, MouseScrollDelta, TouchPhase, WindowEvent};
use winit::keyboard::{Key, KeyCode, NamedKey, PhysicalKey};

fn key(code: &str, pressed: bool) -> InputEvent {
    InputEvent::Key {
        code: code.into(),
        key: code.into(),
        pressed,
        repeat: false,
    }
}

#[test]
fn keys_translate_to_w3c_codes_and_layout_keys() {
    let e = translate_key(
        PhysicalKey::Code(KeyCode::KeyQ),
        &Key::Character("a".into()),
        ElementState::Pressed,
        false,
    );
    assert_eq!(
        e,
        InputEvent::Key {
            code: "KeyQ".into(),
            key: "a".into(),
            pressed: true,
            repeat: false
        }
    );
    let e = translate_key(
        PhysicalKey::Code(KeyCode::ArrowLeft),
        &Key::Named(NamedKey::ArrowLeft),
        ElementState::Released,
        true,
    );
    assert_eq!(
        e,
        InputEvent::Key {
            code: "ArrowLeft".into(),
            key: "ArrowLeft".into(),
            pressed: false,
            repeat: true
        }
    );
}

#[test]
fn window_events_translate_to_input_events() {
    let device_id = DeviceId::dummy();
    let cases = [
        (
            WindowEvent::MouseInput {
                device_id,
                state: ElementState::Pressed,
                button: winit::event::MouseButton::Right,
            },
            Some(InputEvent::MouseButton {
                button: MouseButton::Right,
                pressed: true,
            }),
        ),
        (
            WindowEvent::CursorMoved {
                device_id,
                position: PhysicalPosition::new(12.5, 7.0),
            },
            Some(InputEvent::PointerMoved { x: 12.5, y: 7.0 }),
        ),
        (
            WindowEvent::MouseWheel {
                device_id,
                delta: MouseScrollDelta::LineDelta(0.0, -2.0),
                phase: TouchPhase::Moved,
            },
            Some(InputEvent::Wheel {
                dx: 0.0,
                dy: -2.0,
                unit: WheelUnit::Lines,
            }),
        ),
        (
            WindowEvent::MouseWheel {
                device_id,
                delta: MouseScrollDelta::PixelDelta(PhysicalPosition::new(3.0, 4.0)),
                phase: TouchPhase::Moved,
            },
            Some(InputEvent::Wheel {
                dx: 3.0,
                dy: 4.0,
                unit: WheelUnit::Pixels,
            }),
        ),
        (
            WindowEvent::Focused(false),
            Some(InputEvent::Focus { focused: false }),
        ),
        (
            WindowEvent::Resized(PhysicalSize::new(640, 480)),
            Some(InputEvent::Resized {
                width: 640,
                height: 480,
            }),
        ),
        (
            WindowEvent::CloseRequested,
            Some(InputEvent::CloseRequested),
        ),
        (
            WindowEvent::CursorLeft { device_id },
            Some(InputEvent::PointerLeft),
        ),
        (WindowEvent::RedrawRequested, None),
    ];
    for (event, expected) in cases {
        assert_eq!(translate(&event), expected, "{event:?}");
    }
}

#[test]
fn state_tracks_keys_buttons_and_pointer() {
    let mut s = InputState::new();
    for e in [
        key("KeyW", true),
        key("ShiftLeft", true),
        InputEvent::MouseButton {
            button: MouseButton::Left,
            pressed: true,
        },
        InputEvent::PointerMoved { x: 3.0, y: 4.0 },
        key("KeyW", false),
        InputEvent::Resized {
            width: 10,
            height: 20,
        },
    ] {
        s.apply(&e);
    }
    assert_eq!(s.keys_down().collect::<Vec<_>>(), ["ShiftLeft"]);
    assert!(s.is_key_down("ShiftLeft") && !s.is_key_down("KeyW"));
    assert_eq!(s.buttons_down().collect::<Vec<_>>(), [MouseButton::Left]);
    assert_eq!(s.pointer(), Some((3.0, 4.0)));
    assert_eq!(s.size(), (10, 20));
    s.apply(&InputEvent::PointerLeft);
    assert_eq!(s.pointer(), None);
}

#[test]
fn losing_focus_releases_everything_held() {
    let mut s = InputState::new();
    s.apply(&InputEvent::Focus { focused: true });
    s.apply(&key("Space", true));
    s.apply(&InputEvent::MouseButton {
        button: MouseButton::Middle,
        pressed: true,
    });
    assert!(s.focused() && s.is_key_down("Space"));
    s.apply(&InputEvent::Focus { focused: false });
    assert!(!s.focused());
    assert_eq!(s.keys_down().count(), 0);
    assert!(!s.is_button_down(MouseButton::Middle));
}
