//! Frames: a 4-byte big-endian length, then that many bytes. [`FrameReader`] and
//! [`FrameWriter`] carry them on the blocking sockets of the server's per-connection threads,
//! reading with a short busy poll before blocking; [`FrameCodec`] carries them on tokio
//! sockets (the server's handshake, the client).
//!
//! Why the server's threads read their own sockets: an answer's latency on a virtual machine is
//! dominated by waking a halted CPU, once when the request arrives and once in the reactor's
//! hand-off to the worker thread. The worker reading its own socket removes the hand-off, and
//! polling the socket for a few tens of microseconds after each answer, when the next request
//! is most likely to come, removes the other (docs/BENCHMARKS.md, "Network").
//!
//! Memory follows the bytes received, never the length a header announces: a reader's buffer
//! grows, at most doubling, only once the bytes it holds fill it, so a peer that announces a
//! 64 MiB frame and sends 10 bytes costs the reader's usual buffer. What a server's readers hold
//! beyond that usual buffer comes from one [`FrameBudget`] (docs/RELIABILITY.md, "Network").

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use parking_lot::{Condvar, Mutex};
use tokio_util::codec::{Decoder, Encoder};

/// Why a connection's frames cannot be read any further.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("a frame of {len} bytes is over the limit of {max} bytes")]
    TooLong { len: usize, max: usize },
    #[error("the connection ended inside a frame")]
    Truncated,
    #[error("no request for {0:?}")]
    Idle(Duration),
    #[error("a frame of {len} bytes did not arrive within {after:?} ({received} bytes came)")]
    Slow {
        len: usize,
        received: usize,
        after: Duration,
    },
    #[error(
        "no memory for a frame of {len} bytes within {after:?}: frames of other connections hold all of the node's frame memory ({budget} bytes)"
    )]
    NoMemory {
        len: usize,
        after: Duration,
        budget: usize,
    },
}

/// How long a reader may poll before it blocks, and how many may poll at once: polling burns a
/// CPU, so on a busy node only a few connections do it and the others block at once.
pub(crate) struct BusyPoll {
    pub budget: Duration,
    pub max_pollers: usize,
    pollers: AtomicUsize,
}

impl BusyPoll {
    pub fn new(budget: Duration, max_pollers: usize) -> BusyPoll {
        BusyPoll {
            budget,
            max_pollers,
            pollers: AtomicUsize::new(0),
        }
    }

    /// Polls `stream` for up to the budget, if this reader may; `None` when nothing came (or
    /// it may not poll), and the caller blocks.
    fn poll(&self, stream: &TcpStream, buf: &mut [u8]) -> Option<io::Result<usize>> {
        if self.budget.is_zero() {
            return None;
        }
        let mine = self.pollers.fetch_add(1, Ordering::Relaxed) < self.max_pollers;
        let polled = mine.then(|| poll_read(stream, buf, self.budget)).flatten();
        self.pollers.fetch_sub(1, Ordering::Relaxed);
        polled
    }
}

/// Non-blocking reads until one succeeds or `budget` has passed (`None`). The flag is per call,
/// so the socket stays blocking for the writers that share it.
#[cfg(unix)]
fn poll_read(stream: &TcpStream, buf: &mut [u8], budget: Duration) -> Option<io::Result<usize>> {
    use rustix::io::Errno;
    use rustix::net::{RecvFlags, recv};
    let deadline = Instant::now() + budget;
    loop {
        match recv(stream, &mut *buf, RecvFlags::DONTWAIT) {
            Ok((read, _)) => return Some(Ok(read)),
            Err(Errno::AGAIN | Errno::INTR) => {}
            Err(e) => return Some(Err(e.into())),
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::hint::spin_loop();
    }
}

#[cfg(not(unix))]
fn poll_read(_: &TcpStream, _: &mut [u8], _: Duration) -> Option<io::Result<usize>> {
    None
}

const HEADER: usize = 4;
/// A reader's usual buffer: what one read asks the kernel for, and all that frames up to this
/// size ever need. Larger frames borrow from the [`FrameBudget`].
pub(crate) const READ_CHUNK: usize = 64 << 10;

/// Where a [`FrameReader`] gets its bytes: a socket, or chunks given by a test.
pub(crate) trait Source {
    /// Reads into `buf`, like [`Read::read`], polling as `poll` allows; fails with
    /// [`io::ErrorKind::TimedOut`] once `deadline` has passed with nothing read.
    fn read_until(
        &mut self,
        buf: &mut [u8],
        poll: &BusyPoll,
        deadline: Option<Instant>,
    ) -> io::Result<usize>;
}

/// A connection's socket as its reader sees it.
pub(crate) struct Socket {
    stream: Arc<TcpStream>,
    /// The read timeout set on the socket. Setting it is a system call, so it is set again only
    /// when it is far from what the next deadline needs.
    armed: Option<Duration>,
}

impl Socket {
    pub fn new(stream: Arc<TcpStream>) -> Socket {
        Socket {
            stream,
            armed: None,
        }
    }

    /// Makes a blocking read return near `wait` (`None`: whenever data comes).
    fn arm(&mut self, wait: Option<Duration>) -> io::Result<()> {
        let wait = wait.map(|w| w.max(Duration::from_millis(1)));
        let close_enough = match (self.armed, wait) {
            (None, None) => true,
            // Waking up for nothing now and then is cheaper than a system call per read.
            (Some(armed), None) => armed >= Duration::from_secs(1),
            (None, Some(_)) => false,
            (Some(armed), Some(wait)) => armed >= wait / 2 && armed <= wait + wait / 8,
        };
        if !close_enough {
            self.stream.set_read_timeout(wait)?;
            self.armed = wait;
        }
        Ok(())
    }
}

impl Source for Socket {
    fn read_until(
        &mut self,
        buf: &mut [u8],
        poll: &BusyPoll,
        deadline: Option<Instant>,
    ) -> io::Result<usize> {
        if let Some(read) = poll.poll(&self.stream, buf) {
            return read;
        }
        loop {
            let wait = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    Some(left)
                }
                None => None,
            };
            self.arm(wait)?;
            match (&*self.stream).read(buf) {
                // The read timeout ran out (`WouldBlock` on unix, `TimedOut` on windows): the
                // deadline says whether that is the end.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                    ) => {}
                read => return read,
            }
        }
    }
}

/// Memory for the frames that do not fit a reader's usual buffer, shared by the readers of a
/// server's connections (all but the admin's). A reader takes from it as its buffer grows and
/// gives back when the frame is done; one that cannot get what it needs waits, until the
/// deadline of its frame.
pub(crate) struct FrameBudget {
    total: usize,
    left: Mutex<usize>,
    freed: Condvar,
}

impl FrameBudget {
    pub fn new(total: usize) -> FrameBudget {
        FrameBudget {
            total,
            left: Mutex::new(total),
            freed: Condvar::new(),
        }
    }

    /// Takes `bytes`, waiting until `deadline` for them; `false` if they did not come in time.
    fn take(&self, bytes: usize, deadline: Instant) -> bool {
        let mut left = self.left.lock();
        while *left < bytes {
            if self.freed.wait_until(&mut left, deadline).timed_out() && *left < bytes {
                return false;
            }
        }
        *left -= bytes;
        true
    }

    fn give(&self, bytes: usize) {
        if bytes > 0 {
            *self.left.lock() += bytes;
            self.freed.notify_all();
        }
    }

    /// What is not taken.
    #[cfg(test)]
    pub fn available(&self) -> usize {
        *self.left.lock()
    }
}

/// What a [`FrameReader`] accepts.
#[derive(Clone)]
pub(crate) struct ReadLimits {
    /// The longest frame.
    pub max_frame: usize,
    /// How long a frame may take to arrive, from the reader's first wait for its rest.
    pub frame_timeout: Duration,
    /// Where memory beyond the usual buffer comes from; `None`: it is not counted (the
    /// admin's connections).
    pub budget: Option<Arc<FrameBudget>>,
}

/// Reads frames from a blocking socket.
pub(crate) struct FrameReader<S = Socket> {
    stream: S,
    /// Storage; `buf[start..end]` is read and not yet returned.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The least room a read gets, and the buffer's usual size.
    chunk: usize,
    limits: ReadLimits,
    /// What `buf` holds beyond its usual size, taken from the budget.
    charged: usize,
    /// When the reader first waited for the rest of the frame at the front.
    frame_started: Option<Instant>,
}

impl<S: Source> FrameReader<S> {
    /// `already` is what was read past the handshake.
    pub fn new(stream: S, already: &[u8], limits: ReadLimits) -> FrameReader<S> {
        Self::with_chunk(stream, already, limits, READ_CHUNK)
    }

    fn with_chunk(stream: S, already: &[u8], limits: ReadLimits, chunk: usize) -> FrameReader<S> {
        let mut buf = vec![0; chunk.max(already.len())];
        buf[..already.len()].copy_from_slice(already);
        FrameReader {
            stream,
            buf,
            start: 0,
            end: already.len(),
            chunk,
            limits,
            charged: 0,
            frame_started: None,
        }
    }

    /// The length of the frame at the front of the buffer, if its header is there.
    fn announced(&self) -> Result<Option<usize>, ReadError> {
        let Some(header) = self.buf[self.start..self.end].get(..HEADER) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > self.limits.max_frame {
            return Err(ReadError::TooLong {
                len,
                max: self.limits.max_frame,
            });
        }
        Ok(Some(len))
    }

    /// The length of the frame at the front of the buffer, if all of it is there.
    fn complete(&self) -> Result<Option<usize>, ReadError> {
        Ok(self
            .announced()?
            .filter(|len| self.end - self.start >= HEADER + len))
    }

    /// Whether the next call of [`buffered`](Self::buffered) has something to say (a frame,
    /// or why there will be none).
    pub fn has_frame(&self) -> bool {
        !matches!(self.complete(), Ok(None))
    }

    /// The next frame if it is already read, without touching the socket.
    pub fn buffered(&mut self) -> Result<Option<&[u8]>, ReadError> {
        let Some(len) = self.complete()? else {
            return Ok(None);
        };
        let begin = self.start + HEADER;
        self.start = begin + len;
        self.frame_started = None;
        Ok(Some(&self.buf[begin..begin + len]))
    }

    /// The next frame, waiting for it; `None` when the peer closed the connection between
    /// frames. Fails with [`ReadError::Idle`] when no frame began within `idle` (`None`: wait
    /// as long as it takes), and with [`ReadError::Slow`] when a frame that began takes longer
    /// than the frame timeout.
    pub fn next(
        &mut self,
        poll: &BusyPoll,
        idle: Option<Duration>,
    ) -> Result<Option<&[u8]>, ReadError> {
        let mut idle_deadline = None;
        loop {
            if self.complete()?.is_some() {
                return self.buffered();
            }
            let deadline = if self.start == self.end {
                idle.map(|idle| *idle_deadline.get_or_insert_with(|| Instant::now() + idle))
            } else {
                Some(self.frame_deadline())
            };
            match self.fill(poll, deadline) {
                Ok(0) => {
                    return if self.start == self.end {
                        Ok(None)
                    } else {
                        Err(ReadError::Truncated)
                    };
                }
                Ok(_) => {}
                Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(if self.start == self.end {
                        ReadError::Idle(idle.unwrap_or_default())
                    } else {
                        ReadError::Slow {
                            len: self.announced()?.unwrap_or(0),
                            received: self.end - self.start,
                            after: self.limits.frame_timeout,
                        }
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn frame_deadline(&mut self) -> Instant {
        *self.frame_started.get_or_insert_with(Instant::now) + self.limits.frame_timeout
    }

    /// Reads more bytes after the unreturned ones; 0 at the end of the stream.
    fn fill(&mut self, poll: &BusyPoll, deadline: Option<Instant>) -> Result<usize, ReadError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.shrink();
        }
        // The frame in progress must fit after `start`; reads should not get small either.
        let needed = HEADER + self.announced()?.unwrap_or(0);
        if self.start > 0
            && (self.buf.len() - self.end < self.chunk / 2 || self.buf.len() - self.start < needed)
        {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // Only bytes received fill the buffer up, so growing only when it is full, at most
        // doubling, keeps it under twice what the peer sent, whatever the header announced.
        if self.end == self.buf.len() && self.buf.len() < needed {
            let grown = needed.min(self.buf.len().saturating_mul(2).max(HEADER));
            self.charge(grown - self.buf.len(), needed - HEADER)?;
            self.buf.reserve_exact(grown - self.buf.len());
            self.buf.resize(grown, 0);
        }
        let read = self
            .stream
            .read_until(&mut self.buf[self.end..], poll, deadline)?;
        self.end += read;
        Ok(read)
    }

    /// Takes `bytes` more from the budget for a frame of `len` bytes, waiting for them until
    /// the frame's deadline.
    fn charge(&mut self, bytes: usize, len: usize) -> Result<(), ReadError> {
        let deadline = self.frame_deadline();
        let Some(budget) = &self.limits.budget else {
            return Ok(());
        };
        if !budget.take(bytes, deadline) {
            return Err(ReadError::NoMemory {
                len,
                after: self.limits.frame_timeout,
                budget: budget.total,
            });
        }
        self.charged += bytes;
        Ok(())
    }

    /// Back to the usual buffer once a large frame is done, giving its memory back.
    fn shrink(&mut self) {
        if self.buf.len() > self.chunk {
            self.buf.truncate(self.chunk);
            self.buf.shrink_to_fit();
            self.give_back();
        }
    }
}

impl<S> FrameReader<S> {
    fn give_back(&mut self) {
        if let Some(budget) = &self.limits.budget {
            budget.give(std::mem::take(&mut self.charged));
        }
    }
}

impl<S> Drop for FrameReader<S> {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// Writes whole frames to a socket shared by several threads; a frame is never interleaved
/// with another.
pub(crate) struct FrameWriter {
    stream: Arc<TcpStream>,
    lock: Mutex<()>,
    timeout: Duration,
}

impl FrameWriter {
    /// A write that makes no progress for `timeout` (the peer reads nothing) fails.
    pub fn new(stream: Arc<TcpStream>, timeout: Duration) -> io::Result<FrameWriter> {
        let timeout = timeout.max(Duration::from_millis(1));
        stream.set_write_timeout(Some(timeout))?;
        Ok(FrameWriter {
            stream,
            lock: Mutex::new(()),
            timeout,
        })
    }

    /// Appends one frame carrying `payload` to `out`, to be sent with [`FrameWriter::send`].
    /// The caller checks the payload against the frame limit.
    pub fn frame(out: &mut Vec<u8>, payload: &[u8]) {
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
    }

    /// Writes `frames` (made by [`FrameWriter::frame`]) with as few system calls as the
    /// socket allows. Fails with [`io::ErrorKind::TimedOut`] when the peer read nothing for the
    /// write timeout; what was written of `frames` is then lost, so the connection must end.
    pub fn send(&self, frames: &[u8]) -> io::Result<()> {
        let _one_at_a_time = self.lock.lock();
        match (&*self.stream).write_all(frames) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the peer read nothing for {:?}", self.timeout),
                ))
            }
            written => written,
        }
    }
}

/// [`Decoder`] and [`Encoder`] of frames on tokio sockets. Unlike `tokio_util`'s
/// `LengthDelimitedCodec`, it reserves nothing for a frame before its bytes arrive (`Framed`
/// grows its buffer as they do) and a frame over the limit fails with
/// [`ReadError::TooLong`], which names its length and the limit.
pub(crate) struct FrameCodec {
    /// The longest frame decoded.
    pub max: usize,
}

impl FrameCodec {
    pub fn new(max: usize) -> FrameCodec {
        FrameCodec { max }
    }
}

/// The length and limit of a frame that was too long, from a [`FrameCodec`] error.
pub(crate) fn too_long(e: &io::Error) -> Option<(usize, usize)> {
    match e.get_ref()?.downcast_ref::<ReadError>()? {
        ReadError::TooLong { len, max } => Some((*len, *max)),
        _ => None,
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        let Some(&[a, b, c, d]) = src.get(..HEADER) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([a, b, c, d]) as usize;
        if len > self.max {
            let e = ReadError::TooLong { len, max: self.max };
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        if src.len() < HEADER + len {
            return Ok(None);
        }
        src.advance(HEADER);
        Ok(Some(src.split_to(len)))
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = io::Error;

    fn encode(&mut self, payload: Bytes, dst: &mut BytesMut) -> io::Result<()> {
        let len = u32::try_from(payload.len()).map_err(|_| {
            let e = ReadError::TooLong {
                len: payload.len(),
                max: u32::MAX as usize,
            };
            io::Error::new(io::ErrorKind::InvalidInput, e)
        })?;
        dst.reserve(HEADER + payload.len());
        dst.put_u32(len);
        dst.extend_from_slice(&payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
