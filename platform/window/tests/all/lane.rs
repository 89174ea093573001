//! The headless render loop: paced frames, PNG capture, and jobs from other threads run
//! through the drain hook, as the node's scheduler will run render invocations.

use std::sync::{Arc, mpsc};

use parking_lot::Mutex;

use interstice_window::demo::{TriangleDemo, TriangleScene};
use interstice_window::engine::buffer_usage;
use interstice_window::{
    Capture, Driver, EngineConfig, FrameInfo, GpuEngine, HeadlessConfig, HeadlessLoop, LoopWaker,
    OwnerId, SharedEngine,
};

use crate::common::*;

#[test]
fn the_headless_loop_renders_paced_frames_and_writes_them_as_png() {
    let Some(engine) = engine(EngineConfig::default()) else {
        return;
    };
    let engine = Arc::new(Mutex::new(engine));
    let dir = tempfile::tempdir().expect("temp dir");
    let config = HeadlessConfig {
        width: WIDTH,
        height: HEIGHT,
        rate_hz: 1000.0,
        frames: Some(4),
        capture: Some(Capture {
            dir: dir.path().to_path_buf(),
            every: 2,
        }),
    };
    let mut demo = TriangleDemo::new(OwnerId(1));
    demo.clear = CLEAR;
    let stats = HeadlessLoop::new()
        .run(&engine, &config, &mut demo)
        .expect("loop");
    assert_eq!(demo.last_error, None);
    assert_eq!((stats.frames, demo.ended, stats.captured), (4, 4, 2));
    for n in [0, 2] {
        let path = dir.path().join(format!("frame-{n:06}.png"));
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(&path).expect("png written"),
        ));
        let mut reader = decoder.read_info().expect("header");
        let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
        reader.next_frame(&mut pixels).expect("data");
        let at = |x: u32, y: u32| {
            let i = ((y * WIDTH + x) * 4) as usize;
            [pixels[i], pixels[i + 1], pixels[i + 2], pixels[i + 3]]
        };
        assert_close(at(WIDTH / 2, HEIGHT / 2), TRIANGLE_RGBA, "centre");
        assert_close(at(0, 0), CLEAR_RGBA, "corner");
    }
    assert!(
        !dir.path().join("frame-000001.png").exists(),
        "every 2nd frame only"
    );
}

type Job = Box<dyn FnOnce(&mut GpuEngine) + Send>;

/// Render invocations and other jobs queued as the node's scheduler would, run from `drain`.
struct Queued {
    jobs: mpsc::Receiver<Job>,
    renders: mpsc::Sender<Job>,
    scene: Option<TriangleScene>,
    frames_seen: Vec<FrameInfo>,
    jobs_run: u32,
    waker: LoopWaker,
}

impl Driver for Queued {
    fn frame_due(&mut self, _: &SharedEngine, frame: FrameInfo) {
        self.frames_seen.push(frame);
        let owner = OwnerId(1);
        let scene = self.scene;
        self.renders
            .send(Box::new(move |engine: &mut GpuEngine| {
                let Some(scene) = scene else {
                    return engine.abort_frame();
                };
                engine.begin_frame(owner, frame).expect("begin");
                scene.record(engine, owner, CLEAR).expect("record");
                engine.end_frame(owner).expect("end");
            }))
            .expect("queue");
    }

    fn drain(&mut self, engine: &SharedEngine) {
        let mut engine = engine.lock();
        while let Ok(job) = self.jobs.try_recv() {
            job(&mut engine);
            self.jobs_run += 1;
        }
        // Stop once the producer's six jobs ran and three frames rendered.
        let produced_done = engine.usage(OwnerId(9)).resources == 6;
        if produced_done && self.frames_seen.len() >= 3 && engine.frame_outstanding().is_none() {
            self.waker.stop();
        }
    }
}

#[test]
fn jobs_from_other_threads_run_on_the_lane_through_the_drain_hook() {
    let Some(mut engine) = engine(EngineConfig::default()) else {
        return;
    };
    let scene =
        TriangleScene::create(&mut engine, OwnerId(1), [1.0, 0.0, 0.0, 1.0]).expect("scene");
    let lane = HeadlessLoop::new();
    let (tx, rx) = mpsc::channel::<Job>();
    let mut driver = Queued {
        jobs: rx,
        renders: tx.clone(),
        scene: Some(scene),
        frames_seen: Vec::new(),
        jobs_run: 0,
        waker: lane.waker(),
    };
    let waker = lane.waker();
    let producer = std::thread::spawn(move || {
        for _ in 0..6 {
            tx.send(Box::new(|engine: &mut GpuEngine| {
                engine
                    .create_buffer(OwnerId(9), 16, buffer_usage::UNIFORM)
                    .expect("buffer");
            }))
            .expect("send");
            waker.wake();
        }
    });
    let config = HeadlessConfig {
        width: WIDTH,
        height: HEIGHT,
        rate_hz: 500.0,
        // A bound in case the stop never comes: the assertions below then fail, not hang.
        frames: Some(5_000),
        ..HeadlessConfig::default()
    };
    let engine = Arc::new(Mutex::new(engine));
    let stats = lane.run(&engine, &config, &mut driver).expect("loop");
    let engine = engine.lock();
    producer.join().expect("producer");
    assert_eq!(
        engine.usage(OwnerId(9)).resources,
        6,
        "every job ran on the lane"
    );
    assert_eq!(
        driver.jobs_run as usize,
        6 + driver.frames_seen.len(),
        "renders ran as jobs too"
    );
    // Frames are numbered in order and their time is number × interval (reproducible).
    for (i, f) in driver.frames_seen.iter().enumerate() {
        assert_eq!(f.number, i as u64);
        assert_eq!(f.time_ns, i as u64 * 2_000_000);
    }
    assert_eq!(stats.frames as usize, driver.frames_seen.len());
    let (_, image) = engine.read_frame().expect("read").expect("the last frame");
    assert_scene(&image);
}
