//! The frames of a process actor's link (`subactor_wire`): bytes from a child process,
//! which may be hostile or half-written when it dies. Two layers, each fed the input:
//!
//! - the stream's framing: the bytes arrive on a real Unix socket whose writer then
//!   closes, and the reader parses frames (`[length: u32][fd count: u8]` headers, bodies)
//!   until it reports the end or an error: no panic, no hang, and no frame claiming
//!   descriptors that never came;
//! - each frame body, and the input itself, decoded as the link's items (`Call`, the
//!   messages and requests a side sends, and `Answer`, their outcomes), with handles that
//!   refuse references and buffers as a closed link's do: a value or an error.
#![no_main]

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use subactor_core::AnyRef;
use subactor_core::codec::{BufferAddr, Handles, RefAddr};
use subactor_wire::handles::decode;
use subactor_wire::{Answer, Call, Frame, LinkError, stream};

/// Handles of a link that carries no live handle.
struct Refusing;

impl Handles for Refusing {
    fn encode_ref(&self, _actor: &AnyRef) -> Result<RefAddr, String> {
        Err("no reference travels here".into())
    }
    fn decode_ref(&self, _addr: RefAddr) -> Result<AnyRef, String> {
        Err("no reference travels here".into())
    }
    fn encode_buffer(&self, _buffer: &subactor_arena::Buffer) -> Result<BufferAddr, String> {
        Err("no buffer travels here".into())
    }
    fn decode_buffer(&self, _addr: BufferAddr) -> Result<subactor_arena::Buffer, String> {
        Err("no buffer travels here".into())
    }
}

fn handles() -> &'static Arc<dyn Handles> {
    static HANDLES: OnceLock<Arc<dyn Handles>> = OnceLock::new();
    HANDLES.get_or_init(|| Arc::new(Refusing))
}

fn decode_items(body: &[u8]) {
    let _ = decode::<Call>(&mut Frame::from_body(body.to_vec()), handles());
    let _ = decode::<Answer>(&mut Frame::from_body(body.to_vec()), handles());
}

fuzz_target!(|data: &[u8]| {
    decode_items(data);

    let (ours, theirs) = stream::socketpair().expect("a socket pair");
    let (_writer, mut reader) = stream::split(ours, Duration::ZERO).expect("a link's halves");
    {
        let mut peer = UnixStream::from(theirs);
        // libFuzzer's inputs are a few KiB: the socket's buffer holds all of it.
        peer.write_all(data).expect("the bytes fit the socket's buffer");
    }
    // The peer is closed: every frame is there, and then the end.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut frames = 0usize;
    loop {
        match reader.recv(Some(deadline)) {
            Ok(frame) => {
                assert!(frame.fds.is_empty(), "no descriptor was sent, yet a frame has some");
                frames += 1;
                assert!(frames <= data.len() / 5, "more frames than the input has headers");
                decode_items(frame.body());
            }
            Err(LinkError::Closed | LinkError::Malformed(_)) => break,
            Err(other) => panic!("a closed peer is the end of the stream or malformed, not {other:?}"),
        }
    }
});
