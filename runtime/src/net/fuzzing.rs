//! What the fuzz target `frames` in `fuzz/` runs, and the test that replays its corpus: bytes
//! from a socket, cut into frames and read as the node reads them. Not part of the API.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::proto::{self, Hello, RequestFrame, ResponseFrame, Welcome};
use super::wire::{FrameCodec, too_long};

/// The frame decoder (`FrameCodec`) fed `data` in pieces whose size the first byte picks,
/// with a 4 KiB limit, then every frame read as a request, an answer and either handshake.
/// A frame either decodes or is refused as too long with its length and the limit; what
/// reads as a message writes back to the same message; nothing panics.
pub fn frames(data: &[u8]) {
    let Some((&step, data)) = data.split_first() else {
        return;
    };
    const MAX: usize = 4096;
    let mut codec = FrameCodec::new(MAX);
    let mut buf = BytesMut::new();
    let mut taken = 0;
    for piece in data.chunks(usize::from(step).max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    taken += 4 + frame.len();
                    messages(&frame);
                    let mut again = BytesMut::new();
                    codec
                        .encode(frame.clone().freeze(), &mut again)
                        .expect("a frame that was read can be written");
                    assert_eq!(codec.decode(&mut again).ok().flatten(), Some(frame));
                }
                Ok(None) => break,
                Err(e) => {
                    let (len, max) = too_long(&e).expect("only a long frame is refused");
                    assert!(len > max && max == MAX, "{len} > {max}");
                    return;
                }
            }
        }
    }
    assert_eq!(taken + buf.len(), data.len(), "bytes were lost or made up");
}

fn messages(frame: &[u8]) {
    if let Ok(request) = proto::decode::<RequestFrame>(frame) {
        let again = proto::decode::<RequestFrame>(&proto::encode(&request));
        assert_eq!(again.ok(), Some(request));
    }
    if let Ok(response) = proto::decode::<ResponseFrame>(frame) {
        let again = proto::decode::<ResponseFrame>(&proto::encode(&response));
        assert_eq!(again.ok(), Some(response));
    }
    if let Ok(hello) = proto::decode_handshake::<Hello>(frame) {
        let again = proto::decode_handshake::<Hello>(&proto::encode_handshake(&hello));
        assert_eq!(again.ok(), Some(hello));
    }
    if let Ok(welcome) = proto::decode_handshake::<Welcome>(frame) {
        let again = proto::decode_handshake::<Welcome>(&proto::encode_handshake(&welcome));
        assert_eq!(again.ok(), Some(welcome));
    }
}
