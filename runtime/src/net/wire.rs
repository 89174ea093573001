//! Frames on a blocking socket, for the server's per-connection threads: the same layout as
//! `tokio_util`'s `LengthDelimitedCodec` (a 4-byte big-endian length, then the bytes), read
//! with a short busy poll before blocking.
//!
//! Why not the tokio codec: an answer's latency on a virtual machine is dominated by waking a
//! halted CPU, once when the request arrives and once in the reactor's hand-off to the worker
//! thread. The worker reading its own socket removes the hand-off, and polling the socket for
//! a few tens of microseconds after each answer, when the next request is most likely to come,
//! removes the other (docs/BENCHMARKS.md, "Network").

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Why a connection's frames cannot be read any further.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("a frame of {len} bytes is over the limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("the connection ended inside a frame")]
    Truncated,
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

    /// Reads into `buf`, polling for up to the budget when nothing is there yet, then blocking.
    fn read(&self, stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        if !self.budget.is_zero() {
            let mine = self.pollers.fetch_add(1, Ordering::Relaxed) < self.max_pollers;
            let polled = mine.then(|| poll_read(stream, buf, self.budget)).flatten();
            self.pollers.fetch_sub(1, Ordering::Relaxed);
            if let Some(read) = polled {
                return read;
            }
        }
        loop {
            match (&*stream).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                read => return read,
            }
        }
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
/// What one read asks the kernel for when no larger frame is pending.
const READ_CHUNK: usize = 64 << 10;
/// A buffer grown for a large frame (a module upload) is given back above this size.
const KEEP_CAPACITY: usize = 1 << 20;

/// Where a [`FrameReader`] gets its bytes: a socket, or chunks given by a test.
pub(crate) trait Source {
    /// Reads into `buf`, like [`Read::read`], polling as `poll` allows.
    fn read_polling(&self, buf: &mut [u8], poll: &BusyPoll) -> io::Result<usize>;
}

impl Source for TcpStream {
    fn read_polling(&self, buf: &mut [u8], poll: &BusyPoll) -> io::Result<usize> {
        poll.read(self, buf)
    }
}

/// Reads frames from a blocking socket.
pub(crate) struct FrameReader<S = TcpStream> {
    stream: S,
    /// Storage; `buf[start..end]` is read and not yet returned.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max: usize,
    /// The least room a read gets, and the buffer's usual size.
    chunk: usize,
}

impl<S: Source> FrameReader<S> {
    /// `already` is what was read past the handshake.
    pub fn new(stream: S, already: &[u8], max: usize) -> FrameReader<S> {
        Self::with_chunk(stream, already, max, READ_CHUNK)
    }

    fn with_chunk(stream: S, already: &[u8], max: usize, chunk: usize) -> FrameReader<S> {
        let mut buf = vec![0; chunk.max(already.len())];
        buf[..already.len()].copy_from_slice(already);
        FrameReader {
            stream,
            buf,
            start: 0,
            end: already.len(),
            max,
            chunk,
        }
    }

    /// The length of the frame at the front of the buffer, if its header is there.
    fn announced(&self) -> Result<Option<usize>, ReadError> {
        let Some(header) = self.buf[self.start..self.end].get(..HEADER) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > self.max {
            return Err(ReadError::TooLong { len, max: self.max });
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
        Ok(Some(&self.buf[begin..begin + len]))
    }

    /// The next frame, waiting for it; `None` when the peer closed the connection between
    /// frames.
    pub fn next(&mut self, poll: &BusyPoll) -> Result<Option<&[u8]>, ReadError> {
        loop {
            if self.complete()?.is_some() {
                return self.buffered();
            }
            if self.fill(poll)? == 0 {
                return if self.start == self.end {
                    Ok(None)
                } else {
                    Err(ReadError::Truncated)
                };
            }
        }
    }

    /// Reads more bytes after the unreturned ones; 0 at the end of the stream.
    fn fill(&mut self, poll: &BusyPoll) -> Result<usize, ReadError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > KEEP_CAPACITY.max(self.chunk) {
                self.buf = vec![0; self.chunk];
            }
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
        if self.buf.len() < needed {
            self.buf.resize(needed, 0);
        }
        let read = self.stream.read_polling(&mut self.buf[self.end..], poll)?;
        self.end += read;
        Ok(read)
    }
}

/// Writes whole frames to a socket shared by several threads; a frame is never interleaved
/// with another.
pub(crate) struct FrameWriter {
    stream: Mutex<TcpStream>,
}

impl FrameWriter {
    pub fn new(stream: TcpStream) -> FrameWriter {
        FrameWriter {
            stream: Mutex::new(stream),
        }
    }

    /// Appends one frame carrying `payload` to `out`, to be sent with [`FrameWriter::send`].
    pub fn frame(out: &mut Vec<u8>, payload: &[u8]) {
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
    }

    /// Writes `frames` (made by [`FrameWriter::frame`]) with as few system calls as the
    /// socket allows.
    pub fn send(&self, frames: &[u8]) -> io::Result<()> {
        let mut stream = self.stream.lock();
        stream.write_all(frames)?;
        stream.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::net::{TcpListener, TcpStream};

    use proptest::prelude::*;

    use super::*;

    /// Gives its chunks one read at a time (a chunk larger than the buffer is split), then
    /// the end of the stream.
    struct Chunks(RefCell<VecDeque<Vec<u8>>>);

    impl Source for Chunks {
        fn read_polling(&self, buf: &mut [u8], _: &BusyPoll) -> io::Result<usize> {
            let mut chunks = self.0.borrow_mut();
            let Some(chunk) = chunks.front_mut() else {
                return Ok(0);
            };
            let n = chunk.len().min(buf.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            chunk.drain(..n);
            if chunk.is_empty() {
                chunks.pop_front();
            }
            Ok(n)
        }
    }

    proptest! {
        /// However the stream is cut into reads, and whatever came with the handshake, the
        /// frames come out whole and in order, the batched ones without touching the source.
        #[test]
        fn any_cut_of_the_stream_gives_back_the_frames(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
            cuts in prop::collection::vec(1usize..400, 1..40),
            already in 0usize..64,
            batch in any::<bool>(),
            chunk in 1usize..100,
        ) {
            let mut stream = Vec::new();
            for payload in &payloads {
                FrameWriter::frame(&mut stream, payload);
            }
            let already = already.min(stream.len());
            let mut chunks = VecDeque::new();
            let mut rest = &stream[already..];
            for &cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at(cut.min(rest.len()));
                chunks.push_back(chunk.to_vec());
                rest = tail;
            }
            let poll = BusyPoll::new(Duration::ZERO, 0);
            let mut reader =
                FrameReader::with_chunk(Chunks(RefCell::new(chunks)), &stream[..already], 300, chunk);
            let mut got = Vec::new();
            while let Some(frame) = reader.next(&poll).unwrap() {
                got.push(frame.to_vec());
                while batch && reader.has_frame() {
                    got.push(reader.buffered().unwrap().unwrap().to_vec());
                }
            }
            prop_assert_eq!(got, payloads);
        }
    }

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn frames_split_across_reads_and_packed_into_one_come_out_whole() {
        let (client, server) = pair();
        let writer = FrameWriter::new(client);
        let poll = BusyPoll::new(Duration::from_micros(50), 1);
        let mut reader = FrameReader::new(server, &[0, 0, 0, 2, b'h'], 16);
        // The rest of the first frame, then two frames in one write.
        let mut out = vec![b'i'];
        FrameWriter::frame(&mut out, b"");
        FrameWriter::frame(&mut out, b"there");
        writer.send(&out).unwrap();
        assert_eq!(reader.next(&poll).unwrap(), Some(&b"hi"[..]));
        assert_eq!(reader.next(&poll).unwrap(), Some(&b""[..]));
        assert_eq!(reader.buffered().unwrap(), Some(&b"there"[..]));
        assert_eq!(reader.buffered().unwrap(), None);
        drop(writer);
        assert_eq!(reader.next(&poll).unwrap(), None);
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors() {
        let (mut client, server) = pair();
        let poll = BusyPoll::new(Duration::ZERO, 0);
        let mut reader = FrameReader::new(server, &[], 16);
        client.write_all(&[0, 0, 1, 0]).unwrap();
        let err = reader.next(&poll).unwrap_err();
        assert!(
            matches!(err, ReadError::TooLong { len: 256, max: 16 }),
            "{err}"
        );

        let (mut client, server) = pair();
        let mut reader = FrameReader::new(server, &[], 16);
        client.write_all(&[0, 0, 0, 8, 1, 2]).unwrap();
        drop(client);
        assert!(matches!(reader.next(&poll), Err(ReadError::Truncated)));
    }

    #[test]
    fn a_large_frame_is_read_in_full_and_its_buffer_given_back() {
        let (client, server) = pair();
        let writer = FrameWriter::new(client);
        let poll = BusyPoll::new(Duration::from_micros(10), 1);
        let mut reader = FrameReader::new(server, &[], 8 << 20);
        let big = vec![7u8; 3 << 20];
        let sender = std::thread::spawn(move || {
            let mut out = Vec::new();
            FrameWriter::frame(&mut out, &big);
            FrameWriter::frame(&mut out, b"after");
            writer.send(&out).unwrap();
        });
        let frame = reader.next(&poll).unwrap().unwrap();
        assert_eq!(frame.len(), 3 << 20);
        assert!(frame.iter().all(|&b| b == 7));
        assert_eq!(reader.next(&poll).unwrap(), Some(&b"after"[..]));
        sender.join().unwrap();
        assert_eq!(reader.next(&poll).unwrap(), None);
        assert!(reader.buf.len() <= KEEP_CAPACITY);
    }
}
