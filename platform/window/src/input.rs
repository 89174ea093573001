//! Typed input events, the input state they build, and their translation from winit.
//!
//! Key codes are the W3C UI Events `code` values ("KeyA", "ArrowLeft", "ShiftLeft": where the
//! key is, whatever the layout), which winit's `KeyCode` variants are named after; `key` is
//! the layout's meaning (the typed text, or a W3C `key` name such as "Enter").

use std::collections::{BTreeMap, BTreeSet};

use winit::event::{ElementState, MouseScrollDelta, WindowEvent};
use winit::keyboard::{Key, PhysicalKey};

/// A mouse button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MouseButton {
    Left,
    Right,
    Middle,
    Back,
    Forward,
    Other(u16),
}

/// Whether a wheel moved in lines (a notched wheel) or pixels (a touchpad).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WheelUnit {
    Lines,
    Pixels,
}

/// One thing the user did, as the Input module receives it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum InputEvent {
    /// A key went down or up; `repeat` is a held key's auto-repeat.
    Key {
        code: String,
        key: String,
        pressed: bool,
        repeat: bool,
    },
    MouseButton {
        button: MouseButton,
        pressed: bool,
    },
    /// The pointer moved, in physical pixels from the window's top-left corner.
    PointerMoved {
        x: f64,
        y: f64,
    },
    /// The pointer left the window.
    PointerLeft,
    /// The wheel turned; positive `dy` scrolls content down.
    Wheel {
        dx: f64,
        dy: f64,
        unit: WheelUnit,
    },
    /// The window gained or lost the keyboard focus.
    Focus {
        focused: bool,
    },
    /// The window's drawable size changed, in physical pixels.
    Resized {
        width: u32,
        height: u32,
    },
    /// The user asked to close the window; the render loop stops.
    CloseRequested,
    /// A game controller was plugged in or removed; `pad` numbers it while it stays connected.
    GamepadConnected {
        pad: u32,
        connected: bool,
    },
    /// A controller button (gilrs names: "South", "LeftTrigger2", "DPadUp", ...).
    GamepadButton {
        pad: u32,
        button: String,
        pressed: bool,
    },
    /// A controller axis moved, to `value` in -1..=1 ("LeftStickX", "RightStickY", ...).
    GamepadAxis {
        pad: u32,
        axis: String,
        value: f64,
    },
}

/// What one controller holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PadState {
    pub buttons: BTreeSet<String>,
    pub axes: BTreeMap<String, f64>,
}

/// What is held and where the pointer is, built from the events in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InputState {
    keys: BTreeSet<String>,
    buttons: BTreeSet<MouseButton>,
    pointer: Option<(f64, f64)>,
    focused: bool,
    size: (u32, u32),
    pads: BTreeMap<u32, PadState>,
}

impl InputState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one event into the state.
    ///
    /// Losing the focus releases every key and button: their key-up events go to whichever
    /// window has the focus, so keeping them would leave keys stuck down.
    pub fn apply(&mut self, event: &InputEvent) {
        match event {
            InputEvent::Key { code, pressed, .. } => {
                if *pressed {
                    self.keys.insert(code.clone());
                } else {
                    self.keys.remove(code);
                }
            }
            InputEvent::MouseButton { button, pressed } => {
                if *pressed {
                    self.buttons.insert(*button);
                } else {
                    self.buttons.remove(button);
                }
            }
            InputEvent::PointerMoved { x, y } => self.pointer = Some((*x, *y)),
            InputEvent::PointerLeft => self.pointer = None,
            InputEvent::Focus { focused } => {
                self.focused = *focused;
                if !focused {
                    self.keys.clear();
                    self.buttons.clear();
                }
            }
            InputEvent::Resized { width, height } => self.size = (*width, *height),
            InputEvent::GamepadConnected { pad, connected } => {
                if *connected {
                    self.pads.entry(*pad).or_default();
                } else {
                    self.pads.remove(pad);
                }
            }
            InputEvent::GamepadButton {
                pad,
                button,
                pressed,
            } => {
                let buttons = &mut self.pads.entry(*pad).or_default().buttons;
                if *pressed {
                    buttons.insert(button.clone());
                } else {
                    buttons.remove(button);
                }
            }
            InputEvent::GamepadAxis { pad, axis, value } => {
                self.pads
                    .entry(*pad)
                    .or_default()
                    .axes
                    .insert(axis.clone(), *value);
            }
            InputEvent::Wheel { .. } | InputEvent::CloseRequested => {}
        }
    }

    pub fn is_key_down(&self, code: &str) -> bool {
        self.keys.contains(code)
    }

    /// Held keys by code, in name order.
    pub fn keys_down(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(String::as_str)
    }

    pub fn is_button_down(&self, button: MouseButton) -> bool {
        self.buttons.contains(&button)
    }

    pub fn buttons_down(&self) -> impl Iterator<Item = MouseButton> + '_ {
        self.buttons.iter().copied()
    }

    /// Where the pointer is, or `None` while it is outside the window.
    pub fn pointer(&self) -> Option<(f64, f64)> {
        self.pointer
    }

    pub fn focused(&self) -> bool {
        self.focused
    }

    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    /// Connected controllers by number, with what each holds.
    pub fn pads(&self) -> &BTreeMap<u32, PadState> {
        &self.pads
    }
}

/// The event a winit window event becomes, if it is input.
pub fn translate(event: &WindowEvent) -> Option<InputEvent> {
    Some(match event {
        WindowEvent::KeyboardInput { event, .. } => translate_key(
            event.physical_key,
            &event.logical_key,
            event.state,
            event.repeat,
        ),
        WindowEvent::MouseInput { state, button, .. } => InputEvent::MouseButton {
            button: translate_button(*button),
            pressed: *state == ElementState::Pressed,
        },
        WindowEvent::CursorMoved { position, .. } => InputEvent::PointerMoved {
            x: position.x,
            y: position.y,
        },
        WindowEvent::CursorLeft { .. } => InputEvent::PointerLeft,
        WindowEvent::MouseWheel { delta, .. } => match delta {
            MouseScrollDelta::LineDelta(dx, dy) => InputEvent::Wheel {
                dx: f64::from(*dx),
                dy: f64::from(*dy),
                unit: WheelUnit::Lines,
            },
            MouseScrollDelta::PixelDelta(p) => InputEvent::Wheel {
                dx: p.x,
                dy: p.y,
                unit: WheelUnit::Pixels,
            },
        },
        WindowEvent::Focused(focused) => InputEvent::Focus { focused: *focused },
        WindowEvent::Resized(size) => InputEvent::Resized {
            width: size.width,
            height: size.height,
        },
        WindowEvent::CloseRequested => InputEvent::CloseRequested,
        _ => return None,
    })
}

/// A key event's translation; split out because winit's `KeyEvent` cannot be built outside
/// winit, so tests reach the key logic here.
pub fn translate_key(
    physical: PhysicalKey,
    logical: &Key,
    state: ElementState,
    repeat: bool,
) -> InputEvent {
    let code = match physical {
        // The variant names are the W3C `code` values.
        PhysicalKey::Code(code) => format!("{code:?}"),
        PhysicalKey::Unidentified(_) => "Unidentified".to_string(),
    };
    let key = match logical {
        Key::Character(text) => text.to_string(),
        Key::Named(named) => format!("{named:?}"),
        Key::Dead(_) => "Dead".to_string(),
        Key::Unidentified(_) => "Unidentified".to_string(),
    };
    InputEvent::Key {
        code,
        key,
        pressed: state == ElementState::Pressed,
        repeat,
    }
}

pub fn translate_button(button: winit::event::MouseButton) -> MouseButton {
    use winit::event::MouseButton as W;
    match button {
        W::Left => MouseButton::Left,
        W::Right => MouseButton::Right,
        W::Middle => MouseButton::Middle,
        W::Back => MouseButton::Back,
        W::Forward => MouseButton::Forward,
        W::Other(n) => MouseButton::Other(n),
    }
}
