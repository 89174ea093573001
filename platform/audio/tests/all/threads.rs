//! The ring across real threads: whatever the timing, every frame the callback plays is the
//! next frame the producer wrote, and every other frame is counted silence.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use crate::support::device;

#[test]
fn a_producer_thread_and_a_callback_thread_never_lose_or_reorder_frames() {
    let (mut dev, mut io) = device(64, 3, 48);
    let stats = io.stats.clone();
    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let done = done.clone();
        thread::spawn(move || {
            let mut next = 0u32;
            while !done.load(Ordering::Relaxed) {
                match io.output.wants_block() {
                    Some(_) => {
                        let block: Vec<f32> = (0..64)
                            .flat_map(|_| {
                                next += 1;
                                // Values in (0, 1]: never silence, and ordered.
                                let x = (next % 1_000_000) as f32 / 1_000_000.0 + 1e-7;
                                [x, x]
                            })
                            .collect();
                        io.output.push_block(&block).expect("a wanted block");
                    }
                    None => thread::yield_now(),
                }
            }
        })
    };
    // Start the device once the producer has filled the ring, so some frames are heard
    // however the threads are scheduled after that.
    while stats.snapshot().output.ring_fill_frames < 3 * 64 {
        thread::yield_now();
    }
    let mut heard = Vec::new();
    let mut silent = 0u64;
    for _ in 0..4_000 {
        for frame in dev.tick().chunks(2) {
            assert_eq!(frame[0], frame[1], "channels stay together");
            if frame[0] == 0.0 {
                silent += 1;
            } else {
                heard.push(frame[0]);
            }
        }
        if heard.len() % 7 == 0 {
            thread::yield_now();
        }
    }
    done.store(true, Ordering::Relaxed);
    producer.join().expect("the producer thread");
    assert!(heard.len() >= 3 * 64, "the primed ring was heard");
    for (i, &x) in heard.iter().enumerate() {
        let expected = ((i as u32 + 1) % 1_000_000) as f32 / 1_000_000.0 + 1e-7;
        assert_eq!(x, expected, "frame {i} of those heard");
    }
    let stats = stats.snapshot().output;
    assert_eq!(stats.played_frames, heard.len() as u64);
    assert_eq!(stats.underrun_frames, silent);
    assert_eq!(stats.played_frames + stats.underrun_frames, 4_000 * 48);
}
