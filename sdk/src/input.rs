//! Input, for the module holding the `Input` authority.
//!
//! Every keyboard, mouse and controller event reaches the module's `input` hook
//! (`#[reducer(on = "input")] fn on_input(ctx: ReducerContext, event: InputEvent)`), in order,
//! through the node's ingress: sequenced, timestamped and logged like any call, so the tables
//! the hook writes replay without a window.
//!
//! `ctx.input().state()` reads the live state (keys and buttons held, the pointer). It is not
//! in the log, so only the `render` hook, which changes no table, may read it. A reducer that
//! needs "what is held" folds the events into a table instead, with [`InputState::apply`]:
//!
//! ```
//! use interstice_sdk::input::InputState;
//! use interstice_sdk::platform::InputEvent;
//! use interstice_sdk::*;
//!
//! interstice_module!(authorities: [Input]);
//!
//! #[table(ephemeral)]
//! pub struct Held {
//!     #[primary_key]
//!     id: u8,
//!     state: InputState,
//! }
//!
//! #[reducer(on = "input", writes(held))]
//! fn on_input(ctx: ReducerContext, event: InputEvent) -> Result<(), String> {
//!     let held = ctx.current.held();
//!     match held.get(0)? {
//!         Some(mut row) => {
//!             row.state.apply(&event);
//!             held.update(row)?;
//!         }
//!         None => {
//!             let mut state = InputState::default();
//!             state.apply(&event);
//!             held.insert(Held { id: 0, state })?;
//!         }
//!     }
//!     Ok(())
//! }
//! ```

use interstice_sdk_macros::interstice_type;

use crate::context::ReducerContext;
use crate::host_calls::result_bytes;
use crate::imports::host_imports;
use crate::platform::{InputEvent, MouseButton};
use crate::{Error, ErrorCode, Result};

mod raw {
    super::host_imports!("interstice_input" {
        fn state = "state"() -> i64;
    });
}

/// Where the pointer is, in physical pixels from the window's top-left corner.
#[interstice_type(builtin)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pointer {
    pub x: f64,
    pub y: f64,
}

/// One controller axis and where it is, in -1..=1.
#[interstice_type(builtin)]
#[derive(Clone, Debug, PartialEq)]
pub struct PadAxis {
    pub axis: String,
    pub value: f64,
}

/// What one connected controller holds.
#[interstice_type(builtin)]
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PadState {
    pub pad: u32,
    /// Held buttons by name, sorted.
    pub buttons: Vec<String>,
    /// Axes that moved, by name, sorted.
    pub axes: Vec<PadAxis>,
}

/// What is held and where the pointer is, as the events so far made it.
#[interstice_type(builtin)]
#[derive(Clone, Debug, PartialEq, Default)]
pub struct InputState {
    /// Held keys by W3C `code` ("KeyA", "ArrowLeft"), sorted.
    pub keys: Vec<String>,
    /// Held mouse buttons, sorted.
    pub buttons: Vec<MouseButton>,
    /// `None` while the pointer is outside the window.
    pub pointer: Option<Pointer>,
    pub focused: bool,
    /// The window's drawable size in physical pixels (0 until the first `Resized`).
    pub width: u32,
    pub height: u32,
    /// Connected controllers, by number.
    pub pads: Vec<PadState>,
}

fn set<T: Ord>(items: &mut Vec<T>, item: T, held: bool) {
    match (items.binary_search(&item), held) {
        (Err(at), true) => items.insert(at, item),
        (Ok(at), false) => {
            items.remove(at);
        }
        _ => {}
    }
}

impl InputState {
    pub fn is_key_down(&self, code: &str) -> bool {
        self.keys.iter().any(|k| k == code)
    }

    pub fn is_button_down(&self, button: MouseButton) -> bool {
        self.buttons.contains(&button)
    }

    fn pad(&mut self, pad: u32) -> &mut PadState {
        let at = match self.pads.binary_search_by_key(&pad, |p| p.pad) {
            Ok(at) => at,
            Err(at) => {
                self.pads.insert(
                    at,
                    PadState {
                        pad,
                        ..PadState::default()
                    },
                );
                at
            }
        };
        &mut self.pads[at]
    }

    /// Folds one event in, as the host folds its live state: losing the focus releases every
    /// key and button (their key-up goes to the window that has the focus).
    pub fn apply(&mut self, event: &InputEvent) {
        match event {
            InputEvent::Key { code, pressed, .. } => set(&mut self.keys, code.clone(), *pressed),
            InputEvent::MouseButton { button, pressed } => {
                set(&mut self.buttons, *button, *pressed)
            }
            InputEvent::PointerMoved { x, y } => self.pointer = Some(Pointer { x: *x, y: *y }),
            InputEvent::PointerLeft => self.pointer = None,
            InputEvent::Focus { focused } => {
                self.focused = *focused;
                if !focused {
                    self.keys.clear();
                    self.buttons.clear();
                }
            }
            InputEvent::Resized { width, height } => {
                self.width = *width;
                self.height = *height;
            }
            InputEvent::GamepadConnected { pad, connected } => {
                if *connected {
                    self.pad(*pad);
                } else {
                    self.pads.retain(|p| p.pad != *pad);
                }
            }
            InputEvent::GamepadButton {
                pad,
                button,
                pressed,
            } => set(&mut self.pad(*pad).buttons, button.clone(), *pressed),
            InputEvent::GamepadAxis { pad, axis, value } => {
                let axes = &mut self.pad(*pad).axes;
                match axes.binary_search_by(|a| a.axis.as_str().cmp(axis)) {
                    Ok(at) => axes[at].value = *value,
                    Err(at) => axes.insert(
                        at,
                        PadAxis {
                            axis: axis.clone(),
                            value: *value,
                        },
                    ),
                }
            }
            InputEvent::Wheel { .. } | InputEvent::CloseRequested => {}
        }
    }
}

/// Input, as the module holding the `Input` authority sees it. Get it with
/// [`ReducerContext::input`].
#[derive(Clone, Copy, Debug)]
pub struct Input {
    _private: (),
}

impl ReducerContext {
    /// Input: the live state for the render hook. See [`crate::input`].
    pub fn input(&self) -> Input {
        Input { _private: () }
    }
}

impl Input {
    /// The live input state. The `render` hook only (of a module holding `Gpu` and `Input`);
    /// anywhere else the invocation fails, because the live state is not in the node's log.
    pub fn state(&self) -> Result<InputState> {
        // SAFETY: no arguments.
        let bytes = result_bytes(unsafe { raw::state() })?;
        interstice_abi::from_bytes(&bytes).map_err(|e| {
            Error::new(
                ErrorCode::BadInput,
                format!("the host's input state does not decode: {e}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: &str, pressed: bool) -> InputEvent {
        InputEvent::Key {
            code: code.into(),
            key: String::new(),
            pressed,
            repeat: false,
        }
    }

    #[test]
    fn events_fold_into_sorted_held_sets() {
        let mut s = InputState::default();
        for e in [
            key("KeyW", true),
            key("ArrowLeft", true),
            key("KeyW", true),
            InputEvent::MouseButton {
                button: MouseButton::Right,
                pressed: true,
            },
            InputEvent::PointerMoved { x: 3.0, y: 4.0 },
            InputEvent::GamepadAxis {
                pad: 1,
                axis: "LeftStickX".into(),
                value: 0.5,
            },
        ] {
            s.apply(&e);
        }
        assert_eq!(s.keys, ["ArrowLeft", "KeyW"]);
        assert!(s.is_button_down(MouseButton::Right));
        assert_eq!(s.pointer, Some(Pointer { x: 3.0, y: 4.0 }));
        assert_eq!(s.pads[0].axes[0].value, 0.5);
        s.apply(&key("KeyW", false));
        assert_eq!(s.keys, ["ArrowLeft"]);
        s.apply(&InputEvent::Focus { focused: false });
        assert!(s.keys.is_empty() && s.buttons.is_empty());
    }
}
