//! When the next frame is due.
//!
//! One frame at a time: while a frame is still being rendered or waits to be shown, ticks are
//! skipped (and counted) rather than queued, so a slow module or a blocking present lowers the
//! frame rate instead of piling render invocations in front of the reducers.

use std::time::{Duration, Instant};

use crate::frame::FrameInfo;

/// What the loop should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Render this frame.
    Due(FrameInfo),
    /// Nothing before this instant.
    WaitUntil(Instant),
    /// The previous frame is still busy; wait for it to finish (the loop is woken then).
    WaitForFrame,
}

/// A fixed-rate frame clock.
#[derive(Debug, Clone)]
pub struct FramePacer {
    interval: Duration,
    start: Option<Instant>,
    next_due: Option<Instant>,
    number: u64,
    skipped: u64,
    size: (u32, u32),
    logical_time: bool,
}

impl FramePacer {
    /// Frames every `interval` at `size`; with `logical_time`, a frame's time is
    /// `number × interval` (reproducible headless runs), else the wall time since the start.
    pub fn new(interval: Duration, size: (u32, u32), logical_time: bool) -> Self {
        FramePacer {
            interval: interval.max(Duration::from_micros(100)),
            start: None,
            next_due: None,
            number: 0,
            skipped: 0,
            size,
            logical_time,
        }
    }

    /// A pacer at `hz` frames per second.
    pub fn at_rate(hz: f64, size: (u32, u32), logical_time: bool) -> Self {
        let hz = if hz.is_finite() && hz > 0.0 { hz } else { 60.0 };
        FramePacer::new(Duration::from_secs_f64(1.0 / hz), size, logical_time)
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Frames from now on have this size (the window was resized).
    pub fn resize(&mut self, size: (u32, u32)) {
        self.size = size;
    }

    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    /// Ticks that passed while the previous frame was busy or the loop was late.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Frames handed out so far.
    pub fn frames(&self) -> u64 {
        self.number
    }

    /// Decides at `now`; `busy` says the previous frame is not rendered or shown yet.
    pub fn poll(&mut self, now: Instant, busy: bool) -> Pace {
        let start = *self.start.get_or_insert(now);
        let due = *self.next_due.get_or_insert(now);
        if now < due {
            return Pace::WaitUntil(due);
        }
        if busy {
            return Pace::WaitForFrame;
        }
        if self.size.0 == 0 || self.size.1 == 0 {
            // A minimised window: nothing to draw into.
            self.next_due = Some(now + self.interval);
            return Pace::WaitUntil(now + self.interval);
        }
        let number = self.number;
        self.number += 1;
        let mut next = due + self.interval;
        if next <= now {
            let behind = now.duration_since(next).as_nanos() / self.interval.as_nanos() + 1;
            let behind = u32::try_from(behind).unwrap_or(u32::MAX);
            self.skipped += u64::from(behind);
            next += self.interval * behind;
        }
        self.next_due = Some(next);
        let time = if self.logical_time {
            self.interval
                .saturating_mul(u32::try_from(number).unwrap_or(u32::MAX))
        } else {
            now.duration_since(start)
        };
        Pace::Due(FrameInfo {
            number,
            width: self.size.0,
            height: self.size.1,
            time_ns: u64::try_from(time.as_nanos()).unwrap_or(u64::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(p: Pace) -> FrameInfo {
        match p {
            Pace::Due(f) => f,
            other => panic!("expected a due frame, got {other:?}"),
        }
    }

    #[test]
    fn frames_come_at_the_rate_with_logical_time() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = FramePacer::new(ms(10), (64, 32), true);
        let f0 = due(p.poll(t0, false));
        assert_eq!((f0.number, f0.width, f0.height, f0.time_ns), (0, 64, 32, 0));
        assert_eq!(p.poll(t0 + ms(5), false), Pace::WaitUntil(t0 + ms(10)));
        let f1 = due(p.poll(t0 + ms(10), false));
        assert_eq!((f1.number, f1.time_ns), (1, 10_000_000));
    }

    #[test]
    fn a_busy_frame_skips_ticks_instead_of_queueing_them() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = FramePacer::new(ms(10), (8, 8), true);
        due(p.poll(t0, false));
        assert_eq!(p.poll(t0 + ms(10), true), Pace::WaitForFrame);
        // Free again at 45 ms: one frame now; the ticks at 20, 30 and 40 ms are skipped.
        let f = due(p.poll(t0 + ms(45), false));
        assert_eq!(f.number, 1);
        assert_eq!(p.skipped(), 3);
        assert_eq!(p.poll(t0 + ms(46), false), Pace::WaitUntil(t0 + ms(50)));
    }

    #[test]
    fn a_minimised_window_renders_nothing_and_resize_applies_to_the_next_frame() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = FramePacer::new(ms(10), (0, 0), false);
        assert!(matches!(p.poll(t0, false), Pace::WaitUntil(_)));
        p.resize((100, 50));
        let f = due(p.poll(t0 + ms(10), false));
        assert_eq!(
            (f.number, f.width, f.height, f.time_ns),
            (0, 100, 50, 10_000_000)
        );
    }
}
