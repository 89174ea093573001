//! The real device, through cpal (feature `cpal`): default output, and input when there is one.
//!
//! cpal runs each stream's callback on a thread of its own; the closures installed here do
//! nothing but call [`OutputCallback::render`] or [`CaptureCallback::record`] and count errors.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use crate::capture::CaptureCallback;
use crate::config::{AudioConfig, StreamFormat};
use crate::error::AudioError;
use crate::output::OutputCallback;
use crate::ring::{AudioIo, capture_ring, output_ring};
use crate::sample::{DeviceSample, SampleFormat};
use crate::stats::DeviceCounters;

/// What was opened, as negotiated with the device.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceInfo {
    /// The cpal host (e.g. `ALSA`).
    pub host: String,
    /// The output device's name.
    pub output_device: String,
    /// The output stream's format.
    pub output: StreamFormat,
    /// The output period the device reported, in frames.
    pub output_buffer_frames: Option<u32>,
    /// The input device's name, when capture is open.
    pub input_device: Option<String>,
    /// The input stream's format, when capture is open.
    pub input: Option<StreamFormat>,
    /// Why capture is not open, when it was asked for and is not.
    pub input_unavailable: Option<String>,
}

/// Open device streams. Dropping it stops them and releases the device.
pub struct AudioDevice {
    output: cpal::Stream,
    input: Option<cpal::Stream>,
    info: DeviceInfo,
}

impl AudioDevice {
    /// Opens the default host's default output (and default input when `config` asks for
    /// capture and one exists; a failure there leaves output running and is reported in
    /// [`DeviceInfo::input_unavailable`]). The streams start paused: fill the ring through
    /// [`AudioIo::output`] first, then call [`play`](Self::play), so the first callbacks do
    /// not underrun.
    pub fn open_default(config: &AudioConfig) -> Result<(AudioDevice, AudioIo), AudioError> {
        config.validate()?;
        let host = cpal::default_host();
        let host_name = host.id().name().to_string();
        let device = host
            .default_output_device()
            .ok_or_else(|| AudioError::NoOutputDevice {
                host: host_name.clone(),
                reason: "the host names no default output device".to_string(),
            })?;
        // ALSA always names a `default` device; whether it can play shows only here.
        let supported = device
            .default_output_config()
            .map_err(|e| AudioError::NoOutputDevice {
                host: host_name.clone(),
                reason: format!("the default device `{device}` cannot play ({e})"),
            })?;
        let (format, sample_format) = usable_output_format(&device, &supported)?;
        let stream_config = stream_config(&supported, config);
        let (producer, callback) = output_ring(format, config)?;
        let counters = callback.shared.clone();
        let output = build_output(&device, stream_config, sample_format, callback)
            .map_err(device_error("opening the output stream"))?;
        let output_buffer_frames = output.buffer_size().ok().filter(|&n| n > 0);
        counters
            .device
            .buffer_frames
            .store(output_buffer_frames.unwrap_or(0), Relaxed);

        let mut info = DeviceInfo {
            host: host_name,
            output_device: device.to_string(),
            output: format,
            output_buffer_frames,
            input_device: None,
            input: None,
            input_unavailable: None,
        };
        let (input, reader) = if config.capture {
            match open_input(&host, config) {
                Ok((stream, reader, name)) => {
                    info.input_device = Some(name);
                    info.input = Some(reader.format());
                    (Some(stream), Some(reader))
                }
                Err(why) => {
                    info.input_unavailable = Some(why);
                    (None, None)
                }
            }
        } else {
            (None, None)
        };
        let device = AudioDevice {
            output,
            input,
            info,
        };
        Ok((device, AudioIo::new(producer, reader)))
    }

    /// Starts the streams.
    pub fn play(&self) -> Result<(), AudioError> {
        self.output
            .play()
            .map_err(device_error("starting the output stream"))?;
        if let Some(input) = &self.input {
            input
                .play()
                .map_err(device_error("starting the input stream"))?;
        }
        Ok(())
    }

    /// Pauses the streams (where the backend can); the rings keep what they hold.
    pub fn pause(&self) -> Result<(), AudioError> {
        self.output
            .pause()
            .map_err(device_error("pausing the output stream"))?;
        if let Some(input) = &self.input {
            input
                .pause()
                .map_err(device_error("pausing the input stream"))?;
        }
        Ok(())
    }

    /// What was negotiated.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }
}

fn device_error(during: &'static str) -> impl Fn(cpal::Error) -> AudioError {
    move |e| AudioError::Device {
        during,
        message: e.to_string(),
    }
}

fn engine_format(format: cpal::SampleFormat) -> Option<SampleFormat> {
    Some(match format {
        cpal::SampleFormat::F32 => SampleFormat::F32,
        cpal::SampleFormat::F64 => SampleFormat::F64,
        cpal::SampleFormat::I8 => SampleFormat::I8,
        cpal::SampleFormat::I16 => SampleFormat::I16,
        cpal::SampleFormat::I32 => SampleFormat::I32,
        cpal::SampleFormat::I64 => SampleFormat::I64,
        cpal::SampleFormat::U8 => SampleFormat::U8,
        cpal::SampleFormat::U16 => SampleFormat::U16,
        cpal::SampleFormat::U32 => SampleFormat::U32,
        cpal::SampleFormat::U64 => SampleFormat::U64,
        _ => return None,
    })
}

/// The device's default output format when the engine converts to it; otherwise the same
/// rate and channels in a format it does convert (24-bit and DSD formats are not converted),
/// preferring f32.
fn usable_output_format(
    device: &cpal::Device,
    supported: &cpal::SupportedStreamConfig,
) -> Result<(StreamFormat, SampleFormat), AudioError> {
    let mut format = StreamFormat {
        sample_rate: supported.sample_rate(),
        channels: supported.channels(),
        sample_format: SampleFormat::F32,
    };
    if let Some(sample_format) = engine_format(supported.sample_format()) {
        format.sample_format = sample_format;
        format.validate()?;
        return Ok((format, sample_format));
    }
    let ranges = device
        .supported_output_configs()
        .map_err(device_error("listing the output configurations"))?;
    let mut candidates: Vec<SampleFormat> = ranges
        .filter(|r| r.channels() == format.channels && r.contains_rate(format.sample_rate))
        .filter_map(|r| engine_format(r.sample_format()))
        .collect();
    candidates.sort_by_key(|f| *f != SampleFormat::F32);
    match candidates.first() {
        Some(&sample_format) => {
            format.sample_format = sample_format;
            format.validate()?;
            Ok((format, sample_format))
        }
        None => Err(AudioError::UnsupportedFormat {
            format,
            reason: "none of its sample formats at this rate is one the engine converts \
                     (f32, f64, 8/16/32/64-bit integers)",
        }),
    }
}

/// The default config, with a period of `block_frames` when asked for and supported.
fn stream_config(
    supported: &cpal::SupportedStreamConfig,
    config: &AudioConfig,
) -> cpal::StreamConfig {
    let mut stream = supported.config();
    if config.fixed_device_buffer
        && let cpal::SupportedBufferSize::Range { min, max } = *supported.buffer_size()
        && (min..=max).contains(&config.block_frames)
    {
        stream.buffer_size = cpal::BufferSize::Fixed(config.block_frames);
    }
    stream
}

/// Calls `$run::<T>(args)` for the Rust type of an engine sample format.
macro_rules! with_sample_type {
    ($format:expr, $run:ident ( $($arg:expr),* )) => {
        match $format {
            SampleFormat::F32 => $run::<f32>($($arg),*),
            SampleFormat::F64 => $run::<f64>($($arg),*),
            SampleFormat::I8 => $run::<i8>($($arg),*),
            SampleFormat::I16 => $run::<i16>($($arg),*),
            SampleFormat::I32 => $run::<i32>($($arg),*),
            SampleFormat::I64 => $run::<i64>($($arg),*),
            SampleFormat::U8 => $run::<u8>($($arg),*),
            SampleFormat::U16 => $run::<u16>($($arg),*),
            SampleFormat::U32 => $run::<u32>($($arg),*),
            SampleFormat::U64 => $run::<u64>($($arg),*),
        }
    };
}

fn build_output(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    format: SampleFormat,
    callback: OutputCallback,
) -> Result<cpal::Stream, cpal::Error> {
    fn typed<T: DeviceSample + cpal::SizedSample>(
        device: &cpal::Device,
        config: cpal::StreamConfig,
        mut callback: OutputCallback,
    ) -> Result<cpal::Stream, cpal::Error> {
        let errors = callback.shared.clone();
        device.build_output_stream::<T, _, _>(
            config,
            move |data, _| {
                callback.render(data);
            },
            count_errors(errors, |s| &s.device),
            None,
        )
    }
    with_sample_type!(format, typed(device, config, callback))
}

fn build_input(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    format: SampleFormat,
    callback: CaptureCallback,
) -> Result<cpal::Stream, cpal::Error> {
    fn typed<T: DeviceSample + cpal::SizedSample>(
        device: &cpal::Device,
        config: cpal::StreamConfig,
        mut callback: CaptureCallback,
    ) -> Result<cpal::Stream, cpal::Error> {
        let errors = callback.shared.clone();
        device.build_input_stream::<T, _, _>(
            config,
            move |data, _| {
                callback.record(data);
            },
            count_errors(errors, |s| &s.device),
            None,
        )
    }
    with_sample_type!(format, typed(device, config, callback))
}

/// An error callback that only counts: it may run on the real-time thread.
fn count_errors<S: Send + Sync + 'static>(
    shared: Arc<S>,
    counters: fn(&S) -> &DeviceCounters,
) -> impl FnMut(cpal::Error) + Send + 'static {
    move |_| {
        counters(&shared).errors.fetch_add(1, Relaxed);
    }
}

/// Opens the default input; any failure is a reason, not an error: output plays without it.
fn open_input(
    host: &cpal::Host,
    config: &AudioConfig,
) -> Result<(cpal::Stream, crate::capture::CaptureReader, String), String> {
    let device = host
        .default_input_device()
        .ok_or_else(|| "no default input device".to_string())?;
    let supported = device
        .default_input_config()
        .map_err(|e| format!("reading the default input configuration: {e}"))?;
    let sample_format = engine_format(supported.sample_format()).ok_or_else(|| {
        format!(
            "the input's sample format {} is not one the engine converts",
            supported.sample_format()
        )
    })?;
    let format = StreamFormat {
        sample_rate: supported.sample_rate(),
        channels: supported.channels(),
        sample_format,
    };
    let (callback, reader) = capture_ring(format, config).map_err(|e| e.to_string())?;
    let counters = callback.shared.clone();
    let stream_config = stream_config(&supported, config);
    let stream = build_input(&device, stream_config, sample_format, callback)
        .map_err(|e| format!("opening the input stream: {e}"))?;
    let frames = stream.buffer_size().ok().unwrap_or(0);
    counters.device.buffer_frames.store(frames, Relaxed);
    Ok((stream, reader, device.to_string()))
}
