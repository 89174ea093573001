//! Where the authority's streams come from: the system's default devices (cpal), or a
//! [`VirtualDevice`] handed to whoever drives its clock.

use std::sync::mpsc;

use crate::config::{AudioConfig, StreamFormat};
use crate::error::AudioError;
use crate::ring::AudioIo;
use crate::virtual_device::VirtualDevice;

/// Opens the streams of the module holding the Audio authority.
///
/// [`open`](AudioBackend::open) runs on the authority's feeder thread, which keeps what it
/// returns until the module goes (cpal's streams may not move between threads on every
/// platform) and drops it there, which closes the device.
pub trait AudioBackend: Send + Sync + 'static {
    /// Opens the streams, paused: the feeder fills the ring, then calls [`Streams::play`].
    fn open(&self, config: &AudioConfig) -> Result<OpenStreams, AudioError>;
}

/// Open streams, as a backend hands them over.
pub struct OpenStreams {
    /// Keeps the device open; dropping it closes the device.
    pub streams: Box<dyn Streams>,
    /// The lane's side of the engine: the output producer, the capture reader, the counters.
    pub io: AudioIo,
    /// What was opened, for the node's stats (`interstice node show`).
    pub description: String,
}

/// A device's open streams.
pub trait Streams {
    /// Starts the streams; the ring holds its first blocks by then.
    fn play(&self) -> Result<(), AudioError>;
}

/// The default output (and input, when there is one) of the system's default host, through
/// cpal: ALSA on Linux, CoreAudio on macOS, WASAPI on Windows.
#[cfg(feature = "cpal")]
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemBackend;

#[cfg(feature = "cpal")]
impl AudioBackend for SystemBackend {
    fn open(&self, config: &AudioConfig) -> Result<OpenStreams, AudioError> {
        let (device, io) = crate::device::AudioDevice::open_default(config)?;
        let info = device.info();
        let mut description = format!(
            "{} `{}`, {}",
            info.host,
            info.output_device,
            describe(info.output)
        );
        match (&info.input_device, info.input, &info.input_unavailable) {
            (Some(name), Some(format), _) => {
                description.push_str(&format!("; capture from `{name}`, {}", describe(format)));
            }
            (_, _, Some(why)) => description.push_str(&format!("; no capture ({why})")),
            _ => description.push_str("; no capture"),
        }
        Ok(OpenStreams {
            streams: Box::new(device),
            io,
            description,
        })
    }
}

#[cfg(feature = "cpal")]
impl Streams for crate::device::AudioDevice {
    fn play(&self) -> Result<(), AudioError> {
        crate::device::AudioDevice::play(self)
    }
}

/// A [`VirtualDevice`] for each module that attaches, sent to the receiver
/// [`VirtualBackend::new`] returns: whoever receives it is the device's clock, calling
/// [`VirtualDevice::tick`] for each period. For tests and benchmarks without a sound card.
pub struct VirtualBackend {
    output: StreamFormat,
    input: Option<StreamFormat>,
    period_frames: u32,
    devices: mpsc::Sender<VirtualDevice>,
}

impl VirtualBackend {
    /// A backend whose devices play `output` in periods of `period_frames` frames and capture
    /// `input`, when given; each opened device arrives on the receiver.
    pub fn new(
        output: StreamFormat,
        input: Option<StreamFormat>,
        period_frames: u32,
    ) -> (VirtualBackend, mpsc::Receiver<VirtualDevice>) {
        let (devices, receiver) = mpsc::channel();
        let backend = VirtualBackend {
            output,
            input,
            period_frames,
            devices,
        };
        (backend, receiver)
    }
}

impl AudioBackend for VirtualBackend {
    fn open(&self, config: &AudioConfig) -> Result<OpenStreams, AudioError> {
        let (device, io) = VirtualDevice::new(self.output, self.input, self.period_frames, config)?;
        self.devices.send(device).map_err(|_| AudioError::Device {
            during: "handing over the virtual device",
            message: "nobody receives the virtual devices of this backend any more".into(),
        })?;
        let mut description = format!("virtual device, {}", describe(self.output));
        if let Some(input) = self.input {
            description.push_str(&format!("; capture, {}", describe(input)));
        }
        Ok(OpenStreams {
            streams: Box::new(Clocked),
            io,
            description,
        })
    }
}

/// A virtual device's streams: its clock is whoever ticks it.
struct Clocked;

impl Streams for Clocked {
    fn play(&self) -> Result<(), AudioError> {
        Ok(())
    }
}

/// `f32, 2 ch, 48000 Hz`.
pub(crate) fn describe(format: StreamFormat) -> String {
    format!(
        "{}, {} ch, {} Hz",
        format.sample_format, format.channels, format.sample_rate
    )
}
