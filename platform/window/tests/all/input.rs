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

#[test]
fn controllers_are_tracked_per_pad_until_disconnected() {
    let mut s = InputState::new();
    for e in [
        InputEvent::GamepadConnected {
            pad: 0,
            connected: true,
        },
        InputEvent::GamepadButton {
            pad: 0,
            button: "South".into(),
            pressed: true,
        },
        InputEvent::GamepadAxis {
            pad: 0,
            axis: "LeftStickX".into(),
            value: -0.5,
        },
        InputEvent::GamepadButton {
            pad: 1,
            button: "East".into(),
            pressed: true,
        },
        InputEvent::GamepadButton {
            pad: 1,
            button: "East".into(),
            pressed: false,
        },
    ] {
        s.apply(&e);
    }
    let pad0 = &s.pads()[&0];
    assert!(pad0.buttons.contains("South"));
    assert_eq!(pad0.axes.get("LeftStickX"), Some(&-0.5));
    assert!(s.pads()[&1].buttons.is_empty());
    s.apply(&InputEvent::GamepadConnected {
        pad: 0,
        connected: false,
    });
    assert!(!s.pads().contains_key(&0));
}

#[cfg(feature = "gamepad")]
#[test]
fn gilrs_events_translate_to_gamepad_events() {
    use interstice_window::gamepad;
    use interstice_window::gamepad::gilrs::{Axis, Button, EventType};
    assert_eq!(
        gamepad::button(2, Button::DPadUp, true),
        InputEvent::GamepadButton {
            pad: 2,
            button: "DPadUp".into(),
            pressed: true
        }
    );
    assert_eq!(
        gamepad::axis(2, Axis::RightStickY, 3.0),
        InputEvent::GamepadAxis {
            pad: 2,
            axis: "RightStickY".into(),
            value: 1.0
        },
        "clamped to -1..=1"
    );
    assert_eq!(
        gamepad::translate(1, &EventType::Disconnected),
        Some(InputEvent::GamepadConnected {
            pad: 1,
            connected: false
        })
    );
    assert_eq!(gamepad::translate(1, &EventType::Dropped), None);
}
