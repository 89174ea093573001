//! The real device path (cpal, ALSA) without a sound card.
//!
//! ALSA's `file` plugin can stand in for the default device: it writes what is played into a
//! file, over the `null` device, which does not keep time. Here the file is a named pipe,
//! shrunk to one page, that a reader thread empties at the device's rate (never faster), so
//! the stream runs at real time like a sound card and the samples come back for measuring.
//! ALSA reads `ALSA_CONFIG_PATH` once per process, so each test runs its body in a child
//! process (this test binary again, filtered to the one test) with the variable set.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use interstice_audio::{AudioConfig, AudioDevice, AudioError, AudioStats, SampleFormat};

use crate::support::{RATE, Tone, fill, frequency};

/// How long a child test may run before it is killed and failed (each plays 3 s of audio).
const CHILD_PATIENCE: Duration = Duration::from_secs(240);

/// How long the reader waits for the device or the producer to move before giving up.
const STALL: Duration = Duration::from_secs(60);

/// Set in the child: the directory holding the pipe and the ALSA configuration.
const CHILD_DIR: &str = "INTERSTICE_AUDIO_TEST_DIR";

/// ALSA's default device writes into `<dir>/out.fifo`, over the `null` device.
const FILE_DEVICE: &str =
    "pcm.!default { type file; slave.pcm \"null\"; file \"{fifo}\"; format \"raw\" }";

/// Playback as above; capture reads the file `<dir>/in.raw` (ALSA's `infile`). Capture over
/// `null` does not keep time either, and a pipe cannot pace it (the plugin takes what a read
/// returns and pads the rest with silence), so the capture test reads a whole file at once.
const FILE_DUPLEX: &str = "pcm.!default { type asym; \
    playback.pcm { type file; slave.pcm \"null\"; file \"{fifo}\"; format \"raw\" } \
    capture.pcm { type file; slave.pcm \"null\"; file \"/dev/null\"; infile \"{dir}/in.raw\"; format \"raw\" } }";

/// Runs `body` in a child process whose ALSA configuration is the system's plus `device`
/// (`{fifo}` stands for the named pipe `<dir>/out.fifo`, `{dir}` for the directory).
fn in_child(test: &str, device: &str, body: fn(&Path)) {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        body(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let fifo = dir.path().join("out.fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("a named pipe");
    let conf = dir.path().join("asound.conf");
    std::fs::write(
        &conf,
        format!(
            "</usr/share/alsa/alsa.conf>\n{}\n",
            device
                .replace("{fifo}", &fifo.display().to_string())
                .replace("{dir}", &dir.path().display().to_string())
        ),
    )
    .expect("the ALSA configuration");
    let exe = std::env::current_exe().expect("the test binary");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("ALSA_CONFIG_PATH", &conf)
        .env(CHILD_DIR, dir.path())
        .stdout(File::create(&out_path).expect("the child's stdout"))
        .stderr(File::create(&err_path).expect("the child's stderr"))
        .spawn()
        .expect("the child test process");
    // A watchdog, not a measurement: a stream that stops must fail the test, never hang CI.
    let deadline = Instant::now() + CHILD_PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    print!("{stdout}");
    eprint!("{stderr}");
    let status = status.unwrap_or_else(|| {
        panic!("the child test was still running after {CHILD_PATIENCE:?}: the stream stalled")
    });
    assert!(status.success(), "the child test failed");
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test; is `{test}` its name?"
    );
}

/// Reads the pipe in periods of `period` frames, sleeping one period between reads, until
/// `frames` frames have come; says so on `done`, then reads on until the writer closes.
///
/// With `gate`, the reader is a sound card that never outruns the producer: before each read
/// it waits until the producer has written enough that no callback this read can release
/// will find the ring short. A loaded machine then slows the stream instead of starving it,
/// so an underrun here can only be the engine's own fault. (Underruns of a slow producer are
/// tested on the virtual device, whose clock is the test's.)
fn read_paced(
    fifo: PathBuf,
    frames: usize,
    done: mpsc::Sender<()>,
    gate: Option<mpsc::Receiver<AudioStats>>,
) -> Vec<u8> {
    let period = 256usize;
    let bytes_per_frame = 2 * 4;
    // Does not block: `hold_pipe` keeps a writer open until ALSA has its own.
    let mut pipe = File::open(&fifo).expect("the pipe opens");
    let Ok(stats) = gate.map(|g| g.recv()).transpose() else {
        return Vec::new(); // The test failed before the stream started.
    };
    let mut read = 0u64;
    let pace = Duration::from_nanos(period as u64 * 1_000_000_000 / u64::from(RATE));
    // Waits until the producer has written enough for the read ending at frame `read`: read +
    // in the pipe + in flight + the callback this read may release. `false` when it wrote
    // nothing for `stall`.
    let producer_ahead = |read: u64, stall: Duration| {
        let Some(stats) = &stats else {
            return true;
        };
        let mut last = (written(stats), Instant::now());
        while written(stats) < read + 512 + 512 + 512 {
            if written(stats) != last.0 {
                last = (written(stats), Instant::now());
            } else if last.1.elapsed() > stall {
                return false;
            }
            thread::sleep(Duration::from_micros(200));
        }
        true
    };
    let mut data = vec![0u8; frames * bytes_per_frame];
    for chunk in data.chunks_mut(period * bytes_per_frame) {
        read += period as u64;
        if !producer_ahead(read, STALL) {
            return Vec::new(); // The producer stopped: the test will say so.
        }
        if !readable_within(&pipe, STALL) || pipe.read_exact(chunk).is_err() {
            // The device closed early: the test that wanted these frames will say so.
            return Vec::new();
        }
        thread::sleep(pace);
    }
    let _ = done.send(());
    // Still at the device's pace and still behind the producer: the test reads the counters
    // after `done`, and an ungated read in between on a loaded machine could starve the ring
    // (CI saw one underrun so). Once the producer has written nothing for a second, the node
    // is closing: read on, so that the writer can close.
    let mut sink = vec![0u8; period * bytes_per_frame];
    let mut producing = true;
    loop {
        read += period as u64;
        producing = producing && producer_ahead(read, Duration::from_secs(1));
        match pipe.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => thread::sleep(pace),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("reading the pipe: {e}"),
        }
    }
    data
}

/// Whether `pipe` has bytes (or its end) within `patience`.
fn readable_within(pipe: &File, patience: Duration) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let timeout = Timespec {
        tv_sec: patience.as_secs() as i64,
        tv_nsec: 0,
    };
    let mut fds = [PollFd::new(pipe, PollFlags::IN)];
    matches!(poll(&mut fds, Some(&timeout)), Ok(n) if n > 0)
}

/// Opens the pipe and sizes it to one page (512 frames: with the period cpal has in flight,
/// the device can then render at most 1024 frames beyond what was read) before ALSA opens
/// it, since a pipe cannot shrink below what it holds and sizing it after the device's first
/// write would race with the device. The descriptor (a writer too) keeps the pipe, and its
/// size, until ALSA holds its own: drop it once the device is open, so the reader sees the
/// end when the device closes.
fn hold_pipe(fifo: &Path) -> rustix::fd::OwnedFd {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(fifo, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .expect("the pipe opens");
    rustix::pipe::fcntl_setpipe_size(&fd, 4096).expect("a one-page pipe");
    fd
}

/// Frames the producer has pushed so far.
fn written(stats: &AudioStats) -> u64 {
    let output = stats.snapshot().output;
    output.played_frames + output.ring_fill_frames
}

fn decode(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn a_tone_plays_through_alsa_at_its_frequency_without_underruns() {
    in_child(
        "device::a_tone_plays_through_alsa_at_its_frequency_without_underruns",
        FILE_DEVICE,
        tone_body,
    );
}

/// Three seconds of blocks of 512 frames, 8 blocks (85 ms) ahead: 440 Hz, then 660 Hz from
/// block 141 (1.5 s).
fn tone_body(dir: &Path) {
    const BLOCK: u32 = 512;
    const SWITCH: u64 = 141;
    let frames = 3 * RATE as usize;
    let (done_tx, done_rx) = mpsc::channel();
    let fifo = dir.join("out.fifo");
    let (stats_tx, stats_rx) = mpsc::channel();
    let held = hold_pipe(&fifo);
    let reader = thread::spawn(move || read_paced(fifo, frames, done_tx, Some(stats_rx)));

    let config = AudioConfig::default()
        .block_frames(BLOCK)
        .target_blocks(8)
        .capture(false);
    let (device, mut io) = AudioDevice::open_default(&config).expect("ALSA's file device opens");
    drop(held);
    stats_tx.send(io.stats.clone()).expect("the reader waits");
    let info = device.info().clone();
    println!("negotiated: {info:?}");
    assert_eq!(info.output.sample_format, SampleFormat::F32);
    assert_eq!((info.output.channels, info.output.sample_rate), (2, RATE));
    assert!(info.input.is_none());
    assert_eq!(
        info.output_buffer_frames,
        Some(BLOCK),
        "the block size is the period"
    );

    let mut tone = Tone::new(440.0);
    let mut block = |index: u64| {
        if index == SWITCH {
            tone.freq = 660.0;
        }
        tone.block(BLOCK, 2, RATE)
    };
    fill(&mut io, &mut block);
    device.play().expect("the stream starts");
    let stats = loop {
        fill(&mut io, &mut block);
        match done_rx.try_recv() {
            // Disconnected: the reader gave up; its result says why.
            Ok(()) | Err(mpsc::TryRecvError::Disconnected) => break io.stats.snapshot().output,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        let wait = io.output.time_until_wanted();
        thread::sleep(wait.clamp(Duration::from_micros(500), Duration::from_millis(5)));
    };
    drop(device);
    let samples = decode(&reader.join().expect("the reader thread"));
    assert_eq!(samples.len(), frames * 2, "the device stopped early");
    println!("stats: {stats:?}");

    assert_eq!(stats.underruns, 0, "{stats:?}");
    assert_eq!(stats.device_errors, 0, "{stats:?}");
    assert!(stats.played_frames >= frames as u64);
    assert!(samples.chunks(2).all(|f| f[0] == f[1]));
    let switch = SWITCH as usize * BLOCK as usize * 2;
    let before = frequency(&samples[..switch], 2, RATE);
    let after = frequency(&samples[switch..], 2, RATE);
    println!("measured {before:.4} Hz, then {after:.4} Hz");
    assert!((before - 440.0).abs() < 0.5, "measured {before} Hz");
    assert!((after - 660.0).abs() < 0.5, "measured {after} Hz");
    // The first frame written is the first frame of block 0: nothing was lost at the start.
    let first: Vec<f32> = Tone::new(440.0).block(4, 2, RATE);
    assert_eq!(samples[..8], first[..]);
}

#[test]
fn a_machine_without_a_device_gets_a_typed_error() {
    in_child(
        "device::a_machine_without_a_device_gets_a_typed_error",
        "pcm.!default { type hw; card 99 }",
        |_| {
            let config = AudioConfig::default().capture(false);
            let err = AudioDevice::open_default(&config)
                .err()
                .expect("no device to open");
            println!("{err}");
            assert!(matches!(err, AudioError::NoOutputDevice { .. }), "{err:?}");
            assert!(err.to_string().contains("ALSA_CONFIG_PATH"), "{err}");
        },
    );
}

#[test]
fn captured_audio_arrives_as_buffers_in_order() {
    in_child(
        "device::captured_audio_arrives_as_buffers_in_order",
        FILE_DUPLEX,
        capture_body,
    );
}

/// One second of a 440 Hz tone in the capture file comes out as numbered buffers of 1024
/// frames that carry it unchanged, in order. The ring holds 64 buffers (1.4 s), more than the
/// file, since the unpaced capture delivers it all at once.
fn capture_body(dir: &Path) {
    const BLOCK: u32 = 1024;
    let tone: Vec<f32> = Tone::new(440.0).block(RATE, 2, RATE);
    let bytes: Vec<u8> = tone.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(dir.join("in.raw"), bytes).expect("the capture file");
    let (done_tx, _done_rx) = mpsc::channel();
    let out_fifo = dir.join("out.fifo");
    let held = hold_pipe(&out_fifo);
    let _player = thread::spawn(move || read_paced(out_fifo, RATE as usize, done_tx, None));

    let config = AudioConfig::default()
        .block_frames(BLOCK)
        .capture_blocks(64);
    let (device, mut io) = AudioDevice::open_default(&config).expect("ALSA's file devices open");
    drop(held);
    println!("negotiated: {:?}", device.info());
    let input = device.info().input.expect("capture is open");
    assert_eq!(input.sample_format, SampleFormat::F32);
    assert_eq!((input.channels, input.sample_rate), (2, RATE));
    let mut reader = io.input.take().expect("a capture reader");
    fill(&mut io, |_| vec![0.0; BLOCK as usize * 2]);
    device.play().expect("the streams start");
    let whole = tone.len() / (BLOCK as usize * 2);
    let mut captured = Vec::new();
    let mut index = 0;
    while index < whole as u64 {
        match reader.take_buffer() {
            Some(buffer) => {
                assert_eq!(buffer.index, index);
                assert_eq!(buffer.first_frame, index * u64::from(BLOCK));
                captured.extend_from_slice(&buffer.samples);
                index += 1;
            }
            None => thread::sleep(Duration::from_millis(1)),
        }
    }
    drop(device);
    println!("stats: {:?}", io.stats.snapshot());
    assert_eq!(captured[..], tone[..captured.len()]);
}

#[cfg(feature = "authority")]
#[test]
fn a_node_plays_the_audio_module_through_alsa() {
    in_child(
        "device::a_node_plays_the_audio_module_through_alsa",
        FILE_DEVICE,
        node_body,
    );
}

/// The real `modules/audio` in a node holding the Audio authority on ALSA's default device:
/// three seconds of blocks of 512 frames, 8 ahead; 440 Hz from the table, then, once half of
/// it has played, `set_tone 660 0.2`.
#[cfg(feature = "authority")]
fn node_body(dir: &Path) {
    use std::sync::Arc;
    use std::time::Instant;

    use interstice_abi::Value;
    use interstice_audio::{AudioAuthority, SystemBackend};
    use interstice_runtime::{Node, NodeConfig};

    const BLOCK: usize = 512;
    let wasm = crate::node::audio_wasm();
    let frames = 3 * RATE as usize;
    let (done_tx, done_rx) = mpsc::channel();
    let fifo = dir.join("out.fifo");
    let (stats_tx, stats_rx) = mpsc::channel();
    let held = hold_pipe(&fifo);
    let reader = thread::spawn(move || read_paced(fifo, frames, done_tx, Some(stats_rx)));

    let config = AudioConfig::default()
        .block_frames(BLOCK as u32)
        .target_blocks(8)
        .capture(false);
    let audio = AudioAuthority::new(SystemBackend, config).expect("a valid configuration");
    let node = Node::open(NodeConfig {
        authorities: vec![Arc::new(audio.clone())],
        ..NodeConfig::default()
    })
    .expect("the node opens");
    node.install(wasm).expect("the audio module installs");
    let device = audio.device().expect("ALSA's file device opens");
    drop(held);
    println!("device: {device}");
    assert!(device.contains("f32, 2 ch, 48000 Hz"), "{device}");
    let stats = audio.engine_stats().expect("open");
    stats_tx.send(stats.clone()).expect("the reader waits");

    let deadline = Instant::now() + Duration::from_secs(120);
    while stats.snapshot().output.played_frames < frames as u64 / 2 {
        assert!(Instant::now() < deadline, "the device stopped playing");
        thread::sleep(Duration::from_millis(5));
    }
    let outcome = node
        .call_reducer_values("audio", "set_tone", &[Value::F64(660.0), Value::F64(0.2)])
        .expect("the call reaches the node");
    assert!(outcome.is_committed(), "{outcome:?}");
    // An error here is the reader giving up; the sample count below says so.
    let _ = done_rx.recv();
    let output = stats.snapshot().output;
    println!("stats: {output:?}\nhooks: {:?}", audio.hook_stats());
    for (label, value) in node.authority_stats() {
        println!("  {label}: {value}");
    }
    // Closing the node closes the device, which ends the reader.
    drop(node);
    let samples = decode(&reader.join().expect("the reader thread"));
    assert_eq!(samples.len(), frames * 2, "the device stopped early");

    assert_eq!(output.underruns, 0, "{output:?}");
    assert_eq!(output.device_errors, 0, "{output:?}");
    assert_eq!(output.blocks_silenced, 0, "{output:?}");
    let peak = |b: usize| {
        samples[b * BLOCK * 2..(b + 1) * BLOCK * 2]
            .iter()
            .fold(0.0f32, |m, s| m.max(s.abs()))
    };
    let blocks = frames / BLOCK;
    let switch = (0..blocks)
        .find(|&b| (peak(b) - 0.2).abs() < 0.01)
        .expect("the new tone is heard");
    assert!(switch >= blocks / 2 - 1, "the tone changed before the call");
    assert!((0..switch).all(|b| (peak(b) - 0.25).abs() < 0.01));
    let before = frequency(&samples[..switch * BLOCK * 2], 2, RATE);
    let after = frequency(&samples[switch * BLOCK * 2..], 2, RATE);
    println!("switched at block {switch} of {blocks}: {before:.4} Hz, then {after:.4} Hz");
    assert!((before - 440.0).abs() < 0.5, "measured {before} Hz");
    assert!((after - 660.0).abs() < 0.5, "measured {after} Hz");
}
