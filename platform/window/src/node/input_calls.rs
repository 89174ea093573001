//! The `interstice_input` host call, and input as the ABI encodes it.
//!
//! `state() -> i64` leaves the live input state in the result buffer (the SDK's
//! `interstice_sdk::input::InputState`). The live state is not part of the ingress: a reducer
//! that read it would not replay the same, so only the `render` hook (which changes no table)
//! may read it. Reducers get every event through the `input` hook, in order and logged, and
//! fold what they need into tables (`InputState::apply` in the SDK does the folding).

use interstice_abi::{Event, Value, encode};
use interstice_runtime::wasm::{HostCall, HostState};
use interstice_runtime::wasmtime::{self, Caller, Linker};
use interstice_runtime::{CallFailure, HostCallError, LoadError};

use super::{INPUT_IMPORTS, Shared};
use crate::input::{InputEvent, InputState, MouseButton, WheelUnit};

/// `MouseButton`: `Left | Right | Middle | Back | Forward | Other { code: u16 }`.
fn button_value(button: MouseButton) -> Value {
    let (variant, fields) = match button {
        MouseButton::Left => (0, vec![]),
        MouseButton::Right => (1, vec![]),
        MouseButton::Middle => (2, vec![]),
        MouseButton::Back => (3, vec![]),
        MouseButton::Forward => (4, vec![]),
        MouseButton::Other(code) => (5, vec![Value::U16(code)]),
    };
    Value::Enum { variant, fields }
}

/// An input event as the `input` hook receives it: `interstice_abi::platform::INPUT_EVENT`,
/// whose variants are this crate's `InputEvent`'s, in the same order.
pub fn input_event_value(event: &InputEvent) -> Value {
    let (variant, fields) = match event {
        InputEvent::Key {
            code,
            key,
            pressed,
            repeat,
        } => (
            0,
            vec![
                Value::from(code.as_str()),
                Value::from(key.as_str()),
                Value::Bool(*pressed),
                Value::Bool(*repeat),
            ],
        ),
        InputEvent::MouseButton { button, pressed } => {
            (1, vec![button_value(*button), Value::Bool(*pressed)])
        }
        InputEvent::PointerMoved { x, y } => (2, vec![Value::F64(*x), Value::F64(*y)]),
        InputEvent::PointerLeft => (3, vec![]),
        InputEvent::Wheel { dx, dy, unit } => (
            4,
            vec![
                Value::F64(*dx),
                Value::F64(*dy),
                Value::Enum {
                    variant: match unit {
                        WheelUnit::Lines => 0,
                        WheelUnit::Pixels => 1,
                    },
                    fields: vec![],
                },
            ],
        ),
        InputEvent::Focus { focused } => (5, vec![Value::Bool(*focused)]),
        InputEvent::Resized { width, height } => (6, vec![Value::U32(*width), Value::U32(*height)]),
        InputEvent::CloseRequested => (7, vec![]),
        InputEvent::GamepadConnected { pad, connected } => {
            (8, vec![Value::U32(*pad), Value::Bool(*connected)])
        }
        InputEvent::GamepadButton {
            pad,
            button,
            pressed,
        } => (
            9,
            vec![
                Value::U32(*pad),
                Value::from(button.as_str()),
                Value::Bool(*pressed),
            ],
        ),
        InputEvent::GamepadAxis { pad, axis, value } => (
            10,
            vec![
                Value::U32(*pad),
                Value::from(axis.as_str()),
                Value::F64(*value),
            ],
        ),
    };
    Value::Enum { variant, fields }
}

/// The live state as the SDK's `InputState` reads it: `{ keys: [String], buttons:
/// [MouseButton], pointer: Option<{ x: f64, y: f64 }>, focused: bool, width: u32, height: u32,
/// pads: [{ pad: u32, buttons: [String], axes: [{ axis: String, value: f64 }] }] }`, every list
/// in order.
pub fn input_state_value(state: &InputState) -> Value {
    let strings =
        |items: &mut dyn Iterator<Item = &str>| Value::List(items.map(Value::from).collect());
    let (width, height) = state.size();
    Value::Struct(vec![
        strings(&mut state.keys_down()),
        Value::List(state.buttons_down().map(button_value).collect()),
        Value::Option(
            state
                .pointer()
                .map(|(x, y)| Box::new(Value::Struct(vec![Value::F64(x), Value::F64(y)]))),
        ),
        Value::Bool(state.focused()),
        Value::U32(width),
        Value::U32(height),
        Value::List(
            state
                .pads()
                .iter()
                .map(|(pad, held)| {
                    Value::Struct(vec![
                        Value::U32(*pad),
                        strings(&mut held.buttons.iter().map(String::as_str)),
                        Value::List(
                            held.axes
                                .iter()
                                .map(|(axis, value)| {
                                    Value::Struct(vec![
                                        Value::from(axis.as_str()),
                                        Value::F64(*value),
                                    ])
                                })
                                .collect(),
                        ),
                    ])
                })
                .collect(),
        ),
    ])
}

/// Links `interstice_input.state`.
pub(super) fn link(
    linker: &mut Linker<HostState>,
    shared: &std::sync::Arc<Shared>,
) -> Result<(), LoadError> {
    let s = shared.clone();
    linker
        .func_wrap(
            INPUT_IMPORTS,
            "state",
            move |mut caller: Caller<'_, HostState>| {
                let mut call = HostCall::new(&mut caller);
                let module = call.module_or_trap()?;
                let holds = s
                    .input
                    .lock()
                    .holder
                    .as_ref()
                    .is_some_and(|(holder, _)| *holder == module);
                if !holds {
                    return Err(call.fail(CallFailure::Denied(format!(
                    "input.state: module `{module}` does not hold the Input authority; claim it \
                     with interstice_module!(authorities: [Input])"
                ))));
                }
                if call.hook() != Some(&Event::Render) {
                    return Err(call.fail(CallFailure::Denied(
                    "input.state reads the live input state, which is not in the node's log, so \
                     only the render hook (which changes no table) may read it; in reducers, \
                     fold the events the input hook receives into a table (InputState::apply)"
                        .into(),
                )));
                }
                let bytes = encode(&input_state_value(&s.input.lock().state));
                let ret: Result<Vec<u8>, HostCallError> = Ok(bytes);
                call.finish(ret)
            },
        )
        .map_err(|e: wasmtime::Error| LoadError::Engine(e.to_string()))?;
    Ok(())
}
