//! The audio example (`interstice example audio`): holds the `Audio` authority, plays a tone
//! whose frequency and volume are in a table, and logs the buffers it captures.
//!
//! Build: `cargo build -p audio --target wasm32-unknown-unknown --release`.
//!
//! What a host test can observe:
//! - `play`, the `audio_output` hook, fills block `n` with a sine at `tone.frequency` Hz and
//!   amplitude `tone.volume`, the same on every channel. Its phase is a function of the
//!   frame's place in the stream (`n × frames + i`), so consecutive blocks join without a
//!   click while the tone holds, whatever order or instance they run in. Before `init` has
//!   run, the tone is 440 Hz at 0.25.
//! - `set_tone(frequency, volume)` changes it: frequency in 1..=20000 Hz, volume in 0..=1;
//!   anything else fails with a message saying so.
//! - `record`, the `audio_input` hook, keeps each captured buffer's peak, RMS and dropped
//!   frames in `inputs` (slot `index % 64`: the last 64 buffers) and adds it to
//!   `input_totals` row `0`; about once a second of capture it logs a line.

use std::f64::consts::TAU;

use interstice_sdk::platform::{AudioBlock, AudioCapture};
use interstice_sdk::*;

interstice_module!(visibility: Public, authorities: [Audio]);

/// The tone `play` plays: one row, id `0`.
#[table(public)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tone {
    #[primary_key]
    pub id: u32,
    /// Hz.
    pub frequency: f64,
    /// Amplitude, 0..=1.
    pub volume: f64,
}

/// The last 64 captured buffers, by `index % 64`.
#[table(public)]
#[derive(Clone, Debug, PartialEq)]
pub struct Inputs {
    #[primary_key]
    pub slot: u32,
    pub index: u64,
    pub frames: u32,
    pub channels: u16,
    pub peak: f32,
    pub rms: f32,
    /// Frames the device dropped before this buffer (the node fell behind).
    pub dropped: u64,
}

/// Everything captured so far: one row, id `0`.
#[table(public, name = "input_totals")]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InputTotals {
    #[primary_key]
    pub id: u32,
    pub buffers: u64,
    pub frames: u64,
    pub dropped: u64,
}

const ROW: u32 = 0;
const SLOTS: u64 = 64;

/// The tone before `init` has run (or if its row is deleted).
pub const DEFAULT_TONE: Tone = Tone {
    id: ROW,
    frequency: 440.0,
    volume: 0.25,
};

#[reducer(on = "init", writes(tone, input_totals))]
fn init(ctx: ReducerContext) -> Result<(), String> {
    ctx.current.tone().insert(DEFAULT_TONE)?;
    ctx.current.input_totals().insert(InputTotals {
        id: ROW,
        buffers: 0,
        frames: 0,
        dropped: 0,
    })?;
    Ok(())
}

/// Fills one block of output with the tone.
#[reducer(on = "audio_output", reads(tone))]
fn play(ctx: ReducerContext, block: AudioBlock) -> Result<(), String> {
    let tone = ctx.current.tone().get(ROW)?.unwrap_or(DEFAULT_TONE);
    ctx.audio().write(&render(&tone, &block))?;
    Ok(())
}

/// Sets the tone: `interstice call_reducer example-audio audio set_tone 660 0.2`.
#[reducer(writes(tone))]
fn set_tone(ctx: ReducerContext, frequency: f64, volume: f64) -> Result<(), String> {
    if !(1.0..=20_000.0).contains(&frequency) {
        return Err(format!(
            "frequency {frequency} Hz is out of range; give 1 to 20000 Hz"
        ));
    }
    if !(0.0..=1.0).contains(&volume) {
        return Err(format!("volume {volume} is out of range; give 0 to 1"));
    }
    let tone = Tone {
        id: ROW,
        frequency,
        volume,
    };
    let table = ctx.current.tone();
    if table.get(ROW)?.is_some() {
        table.update(tone)?;
    } else {
        table.insert(tone)?;
    }
    ctx.log(&format!("tone: {frequency} Hz at volume {volume}"));
    Ok(())
}

/// Keeps what one captured buffer held.
#[reducer(on = "audio_input", writes(inputs, input_totals))]
fn record(ctx: ReducerContext, capture: AudioCapture) -> Result<(), String> {
    let (peak, rms) = levels(&capture.samples);
    let row = Inputs {
        slot: (capture.index % SLOTS) as u32,
        index: capture.index,
        frames: capture.frames,
        channels: capture.channels,
        peak,
        rms,
        dropped: capture.dropped,
    };
    let inputs = ctx.current.inputs();
    if inputs.get(row.slot)?.is_some() {
        inputs.update(row)?;
    } else {
        inputs.insert(row)?;
    }
    let totals = ctx.current.input_totals();
    let kept = totals.get(ROW)?;
    let mut sum = kept.unwrap_or(InputTotals {
        id: ROW,
        buffers: 0,
        frames: 0,
        dropped: 0,
    });
    sum.buffers += 1;
    sum.frames += u64::from(capture.frames);
    sum.dropped += capture.dropped;
    if kept.is_some() {
        totals.update(sum)?;
    } else {
        totals.insert(sum)?;
    }
    // About once a second of captured sound, a function of the index alone.
    let per_second = (u64::from(capture.sample_rate) / u64::from(capture.frames.max(1))).max(1);
    if capture.index.is_multiple_of(per_second) {
        ctx.log(&format!(
            "input buffer {}: {} frames × {} ch, peak {peak:.3}, rms {rms:.3}, {} frames dropped so far",
            capture.index, capture.frames, capture.channels, sum.dropped
        ));
    }
    Ok(())
}

/// The current tone.
#[query(reads(tone))]
fn current_tone(ctx: QueryContext) -> Result<Tone, Error> {
    Ok(ctx.current.tone().get(ROW)?.unwrap_or(DEFAULT_TONE))
}

/// The last captured buffers, oldest first.
#[query(reads(inputs))]
fn recent_inputs(ctx: QueryContext) -> Vec<Inputs> {
    let mut rows: Vec<Inputs> = ctx.current.inputs().scan().collect();
    rows.sort_by_key(|r| r.index);
    rows
}

/// What was captured so far.
#[query(reads(input_totals))]
fn totals(ctx: QueryContext) -> Result<Option<InputTotals>, Error> {
    ctx.current.input_totals().get(ROW)
}

/// Block `block` of `tone`: interleaved, the same sample on every channel.
pub fn render(tone: &Tone, block: &AudioBlock) -> Vec<f32> {
    let channels = usize::from(block.channels);
    let rate = f64::from(block.sample_rate.max(1));
    let first = block.index * u64::from(block.frames);
    let mut out = Vec::with_capacity(block.frames as usize * channels);
    for i in 0..u64::from(block.frames) {
        // Whole cycles since frame 0 drop out, so the phase is exact for any stream position.
        let cycles = (tone.frequency * (first + i) as f64 / rate).fract();
        let sample = (tone.volume * (TAU * cycles).sin()) as f32;
        out.extend(std::iter::repeat_n(sample, channels));
    }
    out
}

/// Peak and RMS of `samples`.
pub fn levels(samples: &[f32]) -> (f32, f32) {
    let peak = samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (energy / samples.len().max(1) as f64).sqrt() as f32;
    (peak, rms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 48_000;

    fn block(index: u64, frames: u32) -> AudioBlock {
        AudioBlock {
            index,
            frames,
            channels: 2,
            sample_rate: RATE,
            time: 0,
        }
    }

    /// Frequency of channel 0, from the first and last rising zero crossing.
    fn frequency(samples: &[f32]) -> f64 {
        let mono: Vec<f64> = samples.chunks(2).map(|f| f64::from(f[0])).collect();
        let crossings: Vec<f64> = (1..mono.len())
            .filter(|&i| mono[i - 1] < 0.0 && mono[i] >= 0.0)
            .map(|i| (i - 1) as f64 + -mono[i - 1] / (mono[i] - mono[i - 1]))
            .collect();
        let span = crossings[crossings.len() - 1] - crossings[0];
        (crossings.len() - 1) as f64 * f64::from(RATE) / span
    }

    #[test]
    fn blocks_rendered_one_by_one_are_one_continuous_tone() {
        let tone = Tone {
            id: 0,
            frequency: 660.0,
            volume: 0.2,
        };
        let mut stream = Vec::new();
        // Out of order on purpose: each block depends on its index only.
        let mut blocks: Vec<(u64, Vec<f32>)> = [3, 0, 2, 1, 5, 4]
            .iter()
            .map(|&i| (i, render(&tone, &block(i, 480))))
            .collect();
        blocks.sort_by_key(|(i, _)| *i);
        for (_, samples) in &blocks {
            stream.extend_from_slice(samples);
        }
        let whole = render(&tone, &block(0, 480 * 6));
        assert_eq!(stream, whole);
        assert!((frequency(&stream) - 660.0).abs() < 0.01);
        assert!(stream.chunks(2).all(|f| f[0] == f[1]));
        let (peak, _) = levels(&stream);
        assert!((peak - 0.2).abs() < 0.001, "{peak}");
    }

    #[test]
    fn the_phase_stays_exact_far_into_the_stream() {
        // 440 Hz at 48 kHz is 11 cycles every 1200 frames: a block five hours in must equal
        // the same frames of the first period.
        let far = render(&DEFAULT_TONE, &block(1_700_000, 512));
        let shift = (1_700_000u64 * 512 % 1200) as usize;
        let reference = render(&DEFAULT_TONE, &block(0, 1200 + 512));
        for (a, b) in far.iter().zip(&reference[shift * 2..]) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn levels_are_peak_and_rms() {
        assert_eq!(levels(&[0.5, -1.0, 0.5, 0.0]), (1.0, (1.5f32 / 4.0).sqrt()));
        assert_eq!(levels(&[]), (0.0, 0.0));
    }

    #[test]
    fn the_schema_claims_audio_and_has_one_output_hook() {
        const REGISTER: &[extern "C" fn()] = &[
            __interstice_register_table_tone,
            __interstice_register_table_inputs,
            __interstice_register_table_input_totals,
            __interstice_register_reducer_init,
            __interstice_register_reducer_play,
            __interstice_register_reducer_record,
            __interstice_register_reducer_set_tone,
            __interstice_register_query_current_tone,
            __interstice_register_query_recent_inputs,
            __interstice_register_query_totals,
        ];
        REGISTER.iter().for_each(|register| register());
        let schema = __private::schema(&__INTERSTICE_MODULE);
        schema.validate(__private::abi::ABI_VERSION).unwrap();
        assert_eq!(schema.name, "audio");
        assert_eq!(schema.authorities, [__private::abi::Authority::Audio]);
        let hooks: Vec<(&str, String)> = schema
            .reducers
            .iter()
            .filter_map(|r| Some((r.name.as_str(), r.on.as_ref()?.to_string())))
            .collect();
        assert_eq!(
            hooks,
            [
                ("init", "init".to_owned()),
                ("play", "audio_output".to_owned()),
                ("record", "audio_input".to_owned())
            ]
        );
    }
}
