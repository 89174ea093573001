//! What the real-time callback costs per device period, and what the producer's sanitise and
//! push cost per block. `cargo bench -p interstice-audio --bench callback`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use interstice_audio::{AudioConfig, DeviceSample, SampleFormat, StreamFormat, VirtualDevice};

const FRAMES: u32 = 512;
const BLOCKS: u32 = 16;

fn device(format: SampleFormat) -> (VirtualDevice, interstice_audio::AudioIo) {
    let format = StreamFormat {
        sample_rate: 48_000,
        channels: 2,
        sample_format: format,
    };
    let config = AudioConfig::default()
        .block_frames(FRAMES)
        .target_blocks(BLOCKS);
    VirtualDevice::new(format, None, FRAMES, &config).expect("a virtual device")
}

fn tone() -> Vec<f32> {
    (0..FRAMES * 2)
        .map(|i| (i as f32 * 0.01).sin() * 0.5)
        .collect()
}

/// Times only the callbacks: the ring is refilled, untimed, between batches.
fn render_full<T: DeviceSample + Default>(c: &mut Criterion, name: &str, format: SampleFormat) {
    let (mut dev, mut io) = device(format);
    let block = tone();
    let mut out = vec![T::default(); (FRAMES * 2) as usize];
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                while io.output.wants_block().is_some() {
                    io.output.push_block(&block).expect("a wanted block");
                }
                let n = left.min(u64::from(BLOCKS));
                let start = Instant::now();
                for _ in 0..n {
                    black_box(dev.render(black_box(&mut out[..])));
                }
                total += start.elapsed();
                left -= n;
            }
            total
        })
    });
}

fn bench(c: &mut Criterion) {
    render_full::<f32>(
        c,
        "callback: 512 stereo frames from the ring, f32 device",
        SampleFormat::F32,
    );
    render_full::<i16>(
        c,
        "callback: 512 stereo frames from the ring, i16 device",
        SampleFormat::I16,
    );

    let (mut dev, _io) = device(SampleFormat::F32);
    let mut out = vec![0.0f32; (FRAMES * 2) as usize];
    c.bench_function("callback: 512 stereo frames, empty ring (underrun)", |b| {
        b.iter(|| black_box(dev.render(black_box(&mut out[..]))))
    });

    let (mut dev, mut io) = device(SampleFormat::F32);
    let block = tone();
    c.bench_function(
        "producer: sanitise and push one 512-frame stereo block",
        |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(u64::from(BLOCKS));
                    let start = Instant::now();
                    for _ in 0..n {
                        black_box(io.output.push_block(black_box(&block))).expect("a wanted block");
                    }
                    total += start.elapsed();
                    left -= n;
                    for _ in 0..n {
                        dev.tick();
                    }
                }
                total
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
