//! What platform hooks receive: `#[reducer(on = "render")]` gets a [`FrameInfo`], `"input"` an
//! [`InputEvent`], `"audio_output"` an [`AudioBlock`], `"audio_input"` an [`AudioCapture`] and
//! `"file_changed"` a [`FileChange`]. The host checks that a module's definitions of these are
//! exactly the platform's (`interstice_abi::platform`).

use interstice_sdk_macros::interstice_type;

/// A frame the `render` hook draws.
#[interstice_type(builtin)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// From 0 when the render loop starts.
    pub number: u64,
    /// The target's size in physical pixels.
    pub width: u32,
    pub height: u32,
    /// Microseconds since the render loop started: `number × interval` off-screen (so a run
    /// is reproducible), the pacer's tick in a window. Animate with this, not `ctx.now()`
    /// (the invocation's ingress time).
    pub time: i64,
}

/// A mouse button.
#[interstice_type(builtin)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MouseButton {
    Left,
    Right,
    Middle,
    Back,
    Forward,
    Other { code: u16 },
}

/// Whether a wheel moved in lines (a notched wheel) or pixels (a touchpad).
#[interstice_type(builtin)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WheelUnit {
    Lines,
    Pixels,
}

/// One thing the user did, as the `input` hook receives it, in the order it happened.
#[interstice_type(builtin)]
#[derive(Clone, Debug, PartialEq)]
pub enum InputEvent {
    /// A key went down or up; `code` is where the key is (W3C: "KeyA", "ArrowLeft"), `key`
    /// what it means in the layout ("a", "Enter"); `repeat` is a held key's auto-repeat.
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
    PointerLeft,
    /// The wheel turned; positive `dy` scrolls content down.
    Wheel {
        dx: f64,
        dy: f64,
        unit: WheelUnit,
    },
    Focus {
        focused: bool,
    },
    /// The drawable size changed, in physical pixels.
    Resized {
        width: u32,
        height: u32,
    },
    /// The user asked to close the window; the render loop stops.
    CloseRequested,
    GamepadConnected {
        pad: u32,
        connected: bool,
    },
    GamepadButton {
        pad: u32,
        button: String,
        pressed: bool,
    },
    /// An axis moved, to `value` in -1..=1.
    GamepadAxis {
        pad: u32,
        axis: String,
        value: f64,
    },
}

/// A block of sound the `audio_output` hook fills: `frames × channels` interleaved samples at
/// `sample_rate`, covering frames `index × frames ..` of the output stream.
#[interstice_type(builtin)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioBlock {
    pub index: u64,
    pub frames: u32,
    pub channels: u16,
    pub sample_rate: u32,
    /// Microseconds of output before the block (`index × frames` frames at `sample_rate`):
    /// a function of `index` alone. `ctx.now()` is when the node queued the block.
    pub time: i64,
}

/// A buffer the device captured, as the `audio_input` hook receives it.
#[interstice_type(builtin)]
#[derive(Clone, Debug, PartialEq)]
pub struct AudioCapture {
    pub index: u64,
    pub frames: u32,
    pub channels: u16,
    pub sample_rate: u32,
    /// Interleaved, `frames × channels`, in [-1, 1].
    pub samples: Vec<f32>,
    /// Frames captured but dropped before this buffer (the hook fell behind).
    pub dropped: u64,
}

/// What happened to a watched path.
#[interstice_type(builtin)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileChangeKind {
    Created,
    Modified,
    Removed,
}

/// A change of a watched path, as the `file_changed` hook receives it.
#[interstice_type(builtin)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChange {
    /// Relative to the module's folder.
    pub path: String,
    pub kind: FileChangeKind,
}

#[cfg(test)]
mod tests {
    use interstice_abi::{IntersticeType, TypeDefs, platform};

    use super::*;

    fn defs<T: IntersticeType>() -> Vec<interstice_abi::TypeDef> {
        let mut defs = TypeDefs::new();
        T::collect_defs(&mut defs);
        defs.into_sorted()
    }

    fn canonical(name: &str) -> Vec<interstice_abi::TypeDef> {
        let mut defs = platform::definitions(name).unwrap();
        defs.sort_by(|a, b| a.name().cmp(b.name()));
        defs
    }

    /// The host refuses a hook whose argument is defined otherwise, so these must match.
    #[test]
    fn the_sdk_types_are_the_platform_types() {
        assert_eq!(defs::<FrameInfo>(), canonical(platform::FRAME_INFO));
        assert_eq!(defs::<InputEvent>(), canonical(platform::INPUT_EVENT));
        assert_eq!(defs::<AudioBlock>(), canonical(platform::AUDIO_BLOCK));
        assert_eq!(defs::<AudioCapture>(), canonical(platform::AUDIO_CAPTURE));
        assert_eq!(defs::<FileChange>(), canonical(platform::FILE_CHANGE));
    }
}
