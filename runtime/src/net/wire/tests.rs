//! The frame readers, writer and codec against scripted peers and real sockets.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::{TcpListener, TcpStream};

use proptest::prelude::*;

use super::*;

/// Gives its chunks one read at a time (a chunk larger than the buffer is split), then
/// the end of the stream, or a timeout if the reader has a deadline: a peer that went
/// quiet.
struct Chunks(RefCell<VecDeque<Vec<u8>>>);

impl Chunks {
    fn of(chunks: impl IntoIterator<Item = Vec<u8>>) -> Chunks {
        Chunks(RefCell::new(chunks.into_iter().collect()))
    }
}

impl Source for Chunks {
    fn read_until(
        &mut self,
        buf: &mut [u8],
        _: &BusyPoll,
        deadline: Option<Instant>,
    ) -> io::Result<usize> {
        let mut chunks = self.0.borrow_mut();
        let Some(chunk) = chunks.front_mut() else {
            return match deadline {
                Some(_) => Err(io::ErrorKind::TimedOut.into()),
                None => Ok(0),
            };
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

fn limits(max_frame: usize) -> ReadLimits {
    ReadLimits {
        max_frame,
        frame_timeout: Duration::from_secs(60),
        budget: None,
    }
}

fn header(len: usize) -> Vec<u8> {
    (len as u32).to_be_bytes().to_vec()
}

/// Runs `test` on a thread and fails if it has not returned within a minute: what these
/// tests check is that something does not wait forever.
fn hang_guard(what: &str, test: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        test();
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => thread.join().unwrap(),
        // The thread panicked: join says why.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => thread.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("hung: {what}"),
    }
}

fn no_poll() -> BusyPoll {
    BusyPoll::new(Duration::ZERO, 0)
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
        let mut reader =
            FrameReader::with_chunk(Chunks::of(chunks), &stream[..already], limits(300), chunk);
        let mut got = Vec::new();
        while let Some(frame) = reader.next(&no_poll(), None).unwrap() {
            got.push(frame.to_vec());
            while batch && reader.has_frame() {
                got.push(reader.buffered().unwrap().unwrap().to_vec());
            }
        }
        prop_assert_eq!(got, payloads);
    }
}

#[test]
fn a_header_announcing_a_large_frame_costs_only_the_bytes_that_came() {
    let mut first = header(60 << 20);
    first.extend_from_slice(&[1; 10]);
    let mut reader = FrameReader::new(Chunks::of([first]), &[], limits(64 << 20));
    let err = reader.next(&no_poll(), None).unwrap_err();
    assert!(matches!(err, ReadError::Slow { received: 14, .. }), "{err}");
    assert_eq!(reader.buf.len(), READ_CHUNK);
}

/// Checks, at every read, that the buffer is at most twice what was given so far.
struct Watched {
    inner: Chunks,
    given: usize,
    chunk: usize,
}

impl Source for Watched {
    fn read_until(
        &mut self,
        buf: &mut [u8],
        poll: &BusyPoll,
        deadline: Option<Instant>,
    ) -> io::Result<usize> {
        // One frame: the buffer starts at the first byte given.
        let total = self.given + buf.len();
        assert!(
            total <= self.chunk.max(2 * self.given),
            "a buffer of {total} bytes after {} received",
            self.given
        );
        let n = self.inner.read_until(buf, poll, deadline)?;
        self.given += n;
        Ok(n)
    }
}

#[test]
fn a_large_frame_grows_the_buffer_with_the_bytes_received() {
    let mut stream = Vec::new();
    FrameWriter::frame(&mut stream, &[5; 100_000]);
    let chunks = stream.chunks(1000).map(<[u8]>::to_vec);
    let source = Watched {
        inner: Chunks::of(chunks),
        given: 0,
        chunk: 100,
    };
    let mut reader = FrameReader::with_chunk(source, &[], limits(1 << 20), 100);
    assert_eq!(
        reader.next(&no_poll(), None).unwrap().unwrap().len(),
        100_000
    );
    assert_eq!(reader.next(&no_poll(), None).unwrap(), None);
    assert_eq!(
        reader.buf.len(),
        100,
        "the usual buffer once the frame is done"
    );
}

#[test]
fn a_flood_of_small_frames_keeps_the_usual_buffer() {
    let mut stream = Vec::new();
    for i in 0..10_000u32 {
        FrameWriter::frame(&mut stream, &i.to_le_bytes());
    }
    let chunks = stream.chunks(333).map(<[u8]>::to_vec);
    let mut reader = FrameReader::with_chunk(Chunks::of(chunks), &[], limits(100), 100);
    let mut count = 0;
    while reader.next(&no_poll(), None).unwrap().is_some() {
        count += 1;
        assert_eq!(reader.buf.len(), 100);
    }
    assert_eq!(count, 10_000);
}

#[test]
fn frames_share_the_budget_and_one_that_cannot_get_memory_fails_in_its_time() {
    hang_guard("the frame deadline while waiting for memory", || {
        let budget = Arc::new(FrameBudget::new(1000));
        let limited = ReadLimits {
            max_frame: 10_000,
            frame_timeout: Duration::from_millis(50),
            budget: Some(budget.clone()),
        };
        let partial = |n: usize| {
            let mut bytes = header(5000);
            bytes.extend(std::iter::repeat_n(1, n - HEADER));
            Chunks::of([bytes])
        };
        // 700 bytes: the buffer grew from 100 to 800, taking 700.
        let mut first = FrameReader::with_chunk(partial(700), &[], limited.clone(), 100);
        assert!(matches!(
            first.next(&no_poll(), None),
            Err(ReadError::Slow { .. })
        ));
        assert_eq!(budget.available(), 300);
        // The second gets 100 and 200, then waits for 400 in vain.
        let mut second = FrameReader::with_chunk(partial(700), &[], limited.clone(), 100);
        let err = second.next(&no_poll(), None).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::NoMemory {
                    len: 5000,
                    budget: 1000,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(budget.available(), 0);
        drop(first);
        drop(second);
        assert_eq!(budget.available(), 1000);

        // A whole frame larger than the budget's remainder gets it once another gives back.
        let taken = Arc::new(FrameBudget::new(1000));
        assert!(taken.take(900, Instant::now()));
        let waiting = ReadLimits {
            frame_timeout: Duration::from_secs(60),
            budget: Some(taken.clone()),
            ..limited
        };
        let giver = {
            let taken = taken.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                taken.give(900);
            })
        };
        let mut stream = Vec::new();
        FrameWriter::frame(&mut stream, &[2; 600]);
        FrameWriter::frame(&mut stream, b"next");
        let mut reader = FrameReader::with_chunk(Chunks::of([stream]), &[], waiting, 100);
        assert_eq!(reader.next(&no_poll(), None).unwrap().unwrap().len(), 600);
        assert_eq!(reader.next(&no_poll(), None).unwrap(), Some(&b"next"[..]));
        giver.join().unwrap();
        assert_eq!(
            taken.available(),
            1000,
            "given back once the frame was done"
        );

        // The admin's frames are not counted.
        let mut stream = Vec::new();
        FrameWriter::frame(&mut stream, &[3; 9000]);
        let mut admin = FrameReader::with_chunk(Chunks::of([stream]), &[], limits(10_000), 100);
        assert_eq!(admin.next(&no_poll(), None).unwrap().unwrap().len(), 9000);
    });
}

#[test]
fn a_quiet_peer_is_idle_between_frames_and_slow_inside_one() {
    let mut reader = FrameReader::new(Chunks::of([]), &[], limits(100));
    let idle = Duration::from_secs(300);
    let err = reader.next(&no_poll(), Some(idle)).unwrap_err();
    assert!(matches!(err, ReadError::Idle(d) if d == idle), "{err}");

    let mut partial = header(50);
    partial.extend_from_slice(&[1, 2, 3]);
    let mut reader = FrameReader::new(Chunks::of([partial]), &[], limits(100));
    let err = reader.next(&no_poll(), Some(idle)).unwrap_err();
    assert!(
        matches!(
            err,
            ReadError::Slow {
                len: 50,
                received: 7,
                ..
            }
        ),
        "{err}"
    );
}

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

fn socket(stream: TcpStream) -> Socket {
    Socket::new(Arc::new(stream))
}

fn writer(stream: TcpStream) -> FrameWriter {
    FrameWriter::new(Arc::new(stream), Duration::from_secs(60)).unwrap()
}

#[test]
fn frames_split_across_reads_and_packed_into_one_come_out_whole() {
    let (client, server) = pair();
    let writer = writer(client);
    let poll = BusyPoll::new(Duration::from_micros(50), 1);
    let mut reader = FrameReader::new(socket(server), &[0, 0, 0, 2, b'h'], limits(16));
    // The rest of the first frame, then two frames in one write.
    let mut out = vec![b'i'];
    FrameWriter::frame(&mut out, b"");
    FrameWriter::frame(&mut out, b"there");
    writer.send(&out).unwrap();
    assert_eq!(reader.next(&poll, None).unwrap(), Some(&b"hi"[..]));
    assert_eq!(reader.next(&poll, None).unwrap(), Some(&b""[..]));
    assert_eq!(reader.buffered().unwrap(), Some(&b"there"[..]));
    assert_eq!(reader.buffered().unwrap(), None);
    drop(writer);
    assert_eq!(reader.next(&poll, None).unwrap(), None);
}

#[test]
fn oversized_and_truncated_frames_are_errors() {
    let (mut client, server) = pair();
    let mut reader = FrameReader::new(socket(server), &[], limits(16));
    client.write_all(&[0, 0, 1, 0]).unwrap();
    let err = reader.next(&no_poll(), None).unwrap_err();
    assert!(
        matches!(err, ReadError::TooLong { len: 256, max: 16 }),
        "{err}"
    );

    let (mut client, server) = pair();
    let mut reader = FrameReader::new(socket(server), &[], limits(16));
    client.write_all(&[0, 0, 0, 8, 1, 2]).unwrap();
    drop(client);
    assert!(matches!(
        reader.next(&no_poll(), None),
        Err(ReadError::Truncated)
    ));
}

/// The deadlines hold on a real socket, whose read timeout is set lazily.
#[test]
fn a_socket_that_stays_quiet_times_out() {
    hang_guard("the read deadlines", || {
        let (mut client, server) = pair();
        let quick = ReadLimits {
            frame_timeout: Duration::from_millis(30),
            ..limits(16)
        };
        let mut reader = FrameReader::new(socket(server), &[], quick);
        let idle = Duration::from_millis(30);
        assert!(matches!(
            reader.next(&no_poll(), Some(idle)),
            Err(ReadError::Idle(_))
        ));
        client.write_all(&[0, 0, 0, 2, b'o']).unwrap();
        let err = reader.next(&no_poll(), None).unwrap_err();
        assert!(matches!(err, ReadError::Slow { len: 2, .. }), "{err}");
    });
}

#[test]
fn a_peer_that_reads_nothing_fails_the_write_in_its_time() {
    hang_guard("the write timeout", || {
        let (_client, server) = pair();
        let writer = FrameWriter::new(Arc::new(server), Duration::from_millis(50)).unwrap();
        // Far more than the socket buffers of both ends hold.
        let err = writer.send(&vec![0; 64 << 20]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().contains("read nothing"), "{err}");
    });
}

#[test]
fn a_large_frame_is_read_in_full_and_its_buffer_given_back() {
    let (client, server) = pair();
    let writer = writer(client);
    let poll = BusyPoll::new(Duration::from_micros(10), 1);
    let mut reader = FrameReader::new(socket(server), &[], limits(8 << 20));
    let big = vec![7u8; 3 << 20];
    let sender = std::thread::spawn(move || {
        let mut out = Vec::new();
        FrameWriter::frame(&mut out, &big);
        FrameWriter::frame(&mut out, b"after");
        writer.send(&out).unwrap();
    });
    let frame = reader.next(&poll, None).unwrap().unwrap();
    assert_eq!(frame.len(), 3 << 20);
    assert!(frame.iter().all(|&b| b == 7));
    assert_eq!(reader.next(&poll, None).unwrap(), Some(&b"after"[..]));
    sender.join().unwrap();
    assert_eq!(reader.next(&poll, None).unwrap(), None);
    assert_eq!(reader.buf.len(), READ_CHUNK);
}

#[test]
fn the_codec_reserves_nothing_for_an_announced_frame_and_names_a_long_one() {
    let mut codec = FrameCodec::new(2 << 20);
    let mut src = BytesMut::new();
    src.extend_from_slice(&header(1 << 20));
    src.extend_from_slice(&[1; 10]);
    assert_eq!(codec.decode(&mut src).unwrap(), None);
    assert!(src.capacity() < 1 << 20, "{} reserved", src.capacity());
    // The rest arrives: one frame, then the start of the next.
    src.extend_from_slice(&vec![1; (1 << 20) - 10]);
    src.extend_from_slice(&header(3));
    assert_eq!(codec.decode(&mut src).unwrap().unwrap().len(), 1 << 20);
    assert_eq!(codec.decode(&mut src).unwrap(), None);
    src.extend_from_slice(b"abc");
    assert_eq!(&codec.decode(&mut src).unwrap().unwrap()[..], b"abc");

    let mut small = FrameCodec::new(16 << 10);
    let mut src = BytesMut::from(&header(64 << 20)[..]);
    let err = small.decode(&mut src).unwrap_err();
    assert_eq!(too_long(&err), Some((64 << 20, 16 << 10)), "{err}");

    let mut out = BytesMut::new();
    small.encode(Bytes::from_static(b"hi"), &mut out).unwrap();
    assert_eq!(&out[..], &[0, 0, 0, 2, b'h', b'i']);
}
