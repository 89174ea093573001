//! Game controllers through gilrs (feature `gamepad`: gilrs needs `libudev-dev` to build on
//! Linux, which a bare machine lacks).

pub use gilrs;
use gilrs::{Axis, Button, EventType, Gilrs};

use crate::input::InputEvent;

/// The controllers of the machine, polled from the window loop.
#[derive(Debug)]
pub struct Gamepads {
    gilrs: Gilrs,
}

impl Gamepads {
    /// Opens the controller subsystem; `None` (logged) where the platform has none.
    pub fn open() -> Option<Self> {
        match Gilrs::new() {
            Ok(gilrs) => Some(Gamepads { gilrs }),
            Err(e) => {
                tracing::warn!(error = %e, "game controllers are not available");
                None
            }
        }
    }

    /// Every event since the last poll, in order.
    pub fn poll(&mut self, mut each: impl FnMut(InputEvent)) {
        while let Some(event) = self.gilrs.next_event() {
            let pad = u32::try_from(usize::from(event.id)).unwrap_or(u32::MAX);
            if let Some(e) = translate(pad, &event.event) {
                each(e);
            }
        }
    }
}

/// The input event a gilrs event becomes, if any.
pub fn translate(pad: u32, event: &EventType) -> Option<InputEvent> {
    Some(match event {
        EventType::ButtonPressed(b, _) => button(pad, *b, true),
        EventType::ButtonReleased(b, _) => button(pad, *b, false),
        EventType::AxisChanged(a, value, _) => axis(pad, *a, *value),
        EventType::Connected => InputEvent::GamepadConnected {
            pad,
            connected: true,
        },
        EventType::Disconnected => InputEvent::GamepadConnected {
            pad,
            connected: false,
        },
        _ => return None,
    })
}

pub fn button(pad: u32, button: Button, pressed: bool) -> InputEvent {
    InputEvent::GamepadButton {
        pad,
        button: format!("{button:?}"),
        pressed,
    }
}

pub fn axis(pad: u32, axis: Axis, value: f32) -> InputEvent {
    InputEvent::GamepadAxis {
        pad,
        axis: format!("{axis:?}"),
        value: f64::from(value.clamp(-1.0, 1.0)),
    }
}
