//! The argument types of platform hooks (`render`, `input`, `audio_output`, `audio_input`,
//! `file_changed`), defined once here for the host and the guest.
//!
//! A module receives them as ordinary user types (the SDK defines matching Rust types); the
//! host checks, when the module is published, that the definitions in its schema are exactly
//! these, so both sides agree on the bytes.

use crate::types::{Field, Type, TypeDef, Variant};

/// One frame for the `render` hook of the `Gpu` authority's module.
pub const FRAME_INFO: &str = "FrameInfo";
/// One input event for the `input` hook of the `Input` authority's module.
pub const INPUT_EVENT: &str = "InputEvent";
/// One block of output for the `audio_output` hook of the `Audio` authority's module.
pub const AUDIO_BLOCK: &str = "AudioBlock";
/// One captured buffer for the `audio_input` hook of the `Audio` authority's module.
pub const AUDIO_CAPTURE: &str = "AudioCapture";
/// One change of a watched path for the `file_changed` hook of the `File` authority's module.
pub const FILE_CHANGE: &str = "FileChange";

fn field(name: &str, ty: Type) -> Field {
    Field::new(name, ty)
}

fn named(name: &str) -> Type {
    Type::Named(name.to_owned())
}

fn variant(name: &str, fields: Vec<Field>) -> Variant {
    Variant {
        name: name.to_owned(),
        fields,
    }
}

/// The definitions of platform type `name` and of every type it refers to, in dependency
/// order (`name` last); `None` if it is not a platform type.
pub fn definitions(name: &str) -> Option<Vec<TypeDef>> {
    Some(match name {
        FRAME_INFO => vec![TypeDef::Struct {
            name: FRAME_INFO.into(),
            fields: vec![
                // The frame's number, from 0 when the render loop starts.
                field("number", Type::U64),
                // The target's size in physical pixels.
                field("width", Type::U32),
                field("height", Type::U32),
                // Microseconds since the render loop started: `number × interval` off-screen
                // (so a run is reproducible), the pacer's tick in a window. Not `ctx.now()`,
                // which is the invocation's ingress time.
                field("time", Type::I64),
            ],
        }],
        INPUT_EVENT => vec![
            TypeDef::Enum {
                name: "MouseButton".into(),
                variants: vec![
                    variant("Left", vec![]),
                    variant("Right", vec![]),
                    variant("Middle", vec![]),
                    variant("Back", vec![]),
                    variant("Forward", vec![]),
                    variant("Other", vec![field("code", Type::U16)]),
                ],
            },
            TypeDef::Enum {
                name: "WheelUnit".into(),
                variants: vec![variant("Lines", vec![]), variant("Pixels", vec![])],
            },
            TypeDef::Enum {
                name: INPUT_EVENT.into(),
                variants: vec![
                    variant(
                        "Key",
                        vec![
                            // W3C `code`: where the key is ("KeyA", "ArrowLeft").
                            field("code", Type::String),
                            // W3C `key`: what it means in the layout ("a", "Enter").
                            field("key", Type::String),
                            field("pressed", Type::Bool),
                            field("repeat", Type::Bool),
                        ],
                    ),
                    variant(
                        "MouseButton",
                        vec![
                            field("button", named("MouseButton")),
                            field("pressed", Type::Bool),
                        ],
                    ),
                    variant(
                        "PointerMoved",
                        vec![field("x", Type::F64), field("y", Type::F64)],
                    ),
                    variant("PointerLeft", vec![]),
                    variant(
                        "Wheel",
                        vec![
                            field("dx", Type::F64),
                            field("dy", Type::F64),
                            field("unit", named("WheelUnit")),
                        ],
                    ),
                    variant("Focus", vec![field("focused", Type::Bool)]),
                    variant(
                        "Resized",
                        vec![field("width", Type::U32), field("height", Type::U32)],
                    ),
                    variant("CloseRequested", vec![]),
                    variant(
                        "GamepadConnected",
                        vec![field("pad", Type::U32), field("connected", Type::Bool)],
                    ),
                    variant(
                        "GamepadButton",
                        vec![
                            field("pad", Type::U32),
                            field("button", Type::String),
                            field("pressed", Type::Bool),
                        ],
                    ),
                    variant(
                        "GamepadAxis",
                        vec![
                            field("pad", Type::U32),
                            field("axis", Type::String),
                            field("value", Type::F64),
                        ],
                    ),
                ],
            },
        ],
        AUDIO_BLOCK => vec![TypeDef::Struct {
            name: AUDIO_BLOCK.into(),
            fields: vec![
                // Block `index` covers frames `index × frames ..` of the output stream.
                field("index", Type::U64),
                field("frames", Type::U32),
                field("channels", Type::U16),
                field("sample_rate", Type::U32),
                // Microseconds of output before the block: a function of `index` alone.
                field("time", Type::I64),
            ],
        }],
        AUDIO_CAPTURE => vec![TypeDef::Struct {
            name: AUDIO_CAPTURE.into(),
            fields: vec![
                field("index", Type::U64),
                field("frames", Type::U32),
                field("channels", Type::U16),
                field("sample_rate", Type::U32),
                // Interleaved, `frames × channels` of them, in [-1, 1].
                field("samples", Type::List(Box::new(Type::F32))),
                // Frames the device captured that were dropped before this buffer.
                field("dropped", Type::U64),
            ],
        }],
        FILE_CHANGE => vec![
            TypeDef::Enum {
                name: "FileChangeKind".into(),
                variants: vec![
                    variant("Created", vec![]),
                    variant("Modified", vec![]),
                    variant("Removed", vec![]),
                ],
            },
            TypeDef::Struct {
                name: FILE_CHANGE.into(),
                fields: vec![
                    // Relative to the module's folder.
                    field("path", Type::String),
                    field("kind", named("FileChangeKind")),
                ],
            },
        ],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TypeRegistry;

    #[test]
    fn every_platform_type_is_complete_and_consistent() {
        for name in [
            FRAME_INFO,
            INPUT_EVENT,
            AUDIO_BLOCK,
            AUDIO_CAPTURE,
            FILE_CHANGE,
        ] {
            let defs = definitions(name).unwrap();
            assert_eq!(defs.last().unwrap().name(), name);
            TypeRegistry::new(defs).unwrap();
        }
        assert!(definitions("Greetings").is_none());
    }
}
