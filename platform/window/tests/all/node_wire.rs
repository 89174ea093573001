//! What the SDK writes is what the host reads, and the reverse: pipeline descriptors, bind
//! group entries, input events and the input state, byte for byte.

use interstice_abi::platform::{self, INPUT_EVENT};
use interstice_abi::{Type, TypeRegistry, decode, encode, from_bytes, to_bytes};
use interstice_sdk::gpu as sdk;
use interstice_sdk::input as sdk_input;
use interstice_sdk::platform as sdk_platform;
use interstice_window::node::{input_event_value, input_state_value, wire};
use interstice_window::{BindingDesc, InputEvent, InputState, MouseButton, WheelUnit};

#[test]
fn the_sdk_pipeline_descriptor_decodes_on_the_host() {
    let desc = sdk::RenderPipelineDesc::new(sdk::ShaderModule::from_raw(0x2_0000_0005), "vs", "fs")
        .vertex_buffer(
            sdk::VertexBufferLayout::new(20)
                .attribute(sdk::VertexFormat::Float32x2, 0, 0)
                .attribute(sdk::VertexFormat::Unorm8x4, 8, 1),
        )
        .vertex_buffer(sdk::VertexBufferLayout::new(16).per_instance())
        .topology(sdk::PrimitiveTopology::LineStrip)
        .target_format(sdk::TextureFormat::Rgba16Float)
        .alpha_blend();
    let host = wire::pipeline(&to_bytes(&desc)).expect("decodes");
    assert_eq!(host.shader, 0x2_0000_0005);
    assert_eq!(
        (host.vertex_entry.as_str(), host.fragment_entry.as_str()),
        ("vs", "fs")
    );
    assert_eq!(host.vertex_buffers.len(), 2);
    let attrs: Vec<(u32, u64, u32)> = host.vertex_buffers[0]
        .attributes
        .iter()
        .map(|a| (a.format, a.offset, a.location))
        .collect();
    // Codes are the engine's: Float32x2 is 1, Unorm8x4 12.
    assert_eq!(attrs, [(1, 0, 0), (12, 8, 1)]);
    assert!(host.vertex_buffers[1].per_instance);
    assert_eq!(
        (host.topology, host.target_format, host.alpha_blend),
        (3, 3, true)
    );
}

#[test]
fn the_sdk_bind_group_entries_decode_on_the_host() {
    let entries = vec![
        sdk::BindGroupEntry::buffer(0, sdk::Buffer::from_raw(7)),
        sdk::BindGroupEntry::Texture {
            binding: 1,
            texture: sdk::Texture::from_raw(8),
        },
        sdk::BindGroupEntry::Sampler {
            binding: 2,
            sampler: sdk::Sampler::from_raw(9),
        },
    ];
    assert_eq!(
        wire::bindings(&to_bytes(&entries)).expect("decodes"),
        [
            BindingDesc::Buffer {
                binding: 0,
                buffer: 7,
                offset: 0,
                size: 0
            },
            BindingDesc::Texture {
                binding: 1,
                texture: 8
            },
            BindingDesc::Sampler {
                binding: 2,
                sampler: 9
            },
        ]
    );
}

fn every_event() -> Vec<InputEvent> {
    vec![
        InputEvent::Key {
            code: "ArrowLeft".into(),
            key: "ArrowLeft".into(),
            pressed: true,
            repeat: false,
        },
        InputEvent::Key {
            code: "KeyA".into(),
            key: "a".into(),
            pressed: true,
            repeat: true,
        },
        InputEvent::MouseButton {
            button: MouseButton::Other(9),
            pressed: true,
        },
        InputEvent::MouseButton {
            button: MouseButton::Left,
            pressed: true,
        },
        InputEvent::PointerMoved { x: 1.5, y: -2.0 },
        InputEvent::Wheel {
            dx: 0.0,
            dy: -3.0,
            unit: WheelUnit::Pixels,
        },
        InputEvent::Resized {
            width: 640,
            height: 480,
        },
        InputEvent::GamepadConnected {
            pad: 2,
            connected: true,
        },
        InputEvent::GamepadButton {
            pad: 2,
            button: "South".into(),
            pressed: true,
        },
        InputEvent::GamepadAxis {
            pad: 2,
            axis: "LeftStickX".into(),
            value: -0.25,
        },
        InputEvent::Focus { focused: true },
        InputEvent::Key {
            code: "KeyA".into(),
            key: "a".into(),
            pressed: false,
            repeat: false,
        },
        InputEvent::PointerLeft,
        InputEvent::CloseRequested,
    ]
}

#[test]
fn every_input_event_is_the_abi_input_event_and_the_sdk_reads_it() {
    let registry =
        TypeRegistry::new(platform::definitions(INPUT_EVENT).expect("defs")).expect("registry");
    for event in every_event() {
        let value = input_event_value(&event);
        let bytes = encode(&value);
        // The canonical definition accepts it...
        let decoded = decode(&bytes, &Type::Named(INPUT_EVENT.into()), &registry).expect("abi");
        assert_eq!(decoded, value, "{event:?}");
        // ... and the SDK's type reads the same event.
        let sdk: sdk_platform::InputEvent = from_bytes(&bytes).expect("sdk");
        assert_eq!(to_bytes(&sdk), bytes, "{event:?}");
        let same = match (&event, &sdk) {
            (InputEvent::Key { code, .. }, sdk_platform::InputEvent::Key { code: c, .. }) => {
                code == c
            }
            (InputEvent::MouseButton { .. }, sdk_platform::InputEvent::MouseButton { .. })
            | (InputEvent::PointerMoved { .. }, sdk_platform::InputEvent::PointerMoved { .. })
            | (InputEvent::PointerLeft, sdk_platform::InputEvent::PointerLeft)
            | (InputEvent::Wheel { .. }, sdk_platform::InputEvent::Wheel { .. })
            | (InputEvent::Focus { .. }, sdk_platform::InputEvent::Focus { .. })
            | (InputEvent::Resized { .. }, sdk_platform::InputEvent::Resized { .. })
            | (InputEvent::CloseRequested, sdk_platform::InputEvent::CloseRequested)
            | (
                InputEvent::GamepadConnected { .. },
                sdk_platform::InputEvent::GamepadConnected { .. },
            )
            | (InputEvent::GamepadButton { .. }, sdk_platform::InputEvent::GamepadButton { .. })
            | (InputEvent::GamepadAxis { .. }, sdk_platform::InputEvent::GamepadAxis { .. }) => {
                true
            }
            _ => false,
        };
        assert!(same, "{event:?} became {sdk:?}");
    }
}

#[test]
fn the_host_state_is_what_the_sdk_folds_from_the_same_events() {
    let mut host = InputState::new();
    let mut guest = sdk_input::InputState::default();
    for event in every_event() {
        host.apply(&event);
        let sdk_event: sdk_platform::InputEvent =
            from_bytes(&encode(&input_event_value(&event))).expect("sdk event");
        guest.apply(&sdk_event);
        let bytes = encode(&input_state_value(&host));
        let read: sdk_input::InputState = from_bytes(&bytes).expect("the SDK reads the state");
        assert_eq!(read, guest, "after {event:?}");
    }
    // Some of it held at the end, so the comparison covered non-empty lists.
    assert!(guest.is_button_down(sdk_platform::MouseButton::Left));
    assert_eq!(guest.pads[0].buttons, ["South"]);
}
