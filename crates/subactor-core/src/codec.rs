//! The one place where [`Value`]s become bytes and back.
//!
//! Everything that serialises values (for another process, a file, or a network)
//! goes through [`encode`] and [`decode`], or, for the frames of a link that carry
//! values, [`encode_into`] and [`decode_with`]: the wire format can change in one place.
//! Today it is bincode 2 (pinned to `=2.0.1`: later releases of the crate are empty)
//! through serde, in its standard configuration (variable-length integers, little
//! endian).
//!
//! # Live handles
//!
//! Actor references and arena buffers are live handles of their process. Plain
//! [`encode`] refuses them. A link between processes passes its [`Handles`] to
//! [`encode_into`] and [`decode_with`]: each reference then travels as a [`RefAddr`] and
//! each buffer as a [`BufferAddr`], and the other side turns them back into live
//! handles of its own (a reference that reaches the actor through the link; a buffer).

use std::cell::RefCell;
use std::sync::Arc;

use bincode::config::{self, Configuration};
use serde::Serialize;
use serde::de::DeserializeOwned;
use subactor_arena::Buffer;

use crate::{AnyRef, Placement, Value};

/// How an actor reference travels on a link: what the receiving side needs to reach
/// the actor (through the link it came on) and to show it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefAddr {
    /// The node (runtime of a cluster) the actor lives on; `None` on a link between a
    /// process actor's child and its runtime, where every actor is the runtime's.
    pub node: Option<String>,
    /// The actor's id in the runtime that spawned it.
    pub id: u64,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Where its handlers run.
    pub placement: Placement,
}

/// How an arena buffer travels on a link.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BufferAddr {
    /// Its bytes, copied.
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Lent without a copy: `len` bytes at `offset` of the sender's shared-memory segment
    /// `segment`, whose memfd is descriptor `fd` of the frame the first time that segment
    /// crosses; the receiver tells the sender when it is done with lend `lend`.
    Lent {
        /// The sender's number for this lend.
        lend: u64,
        /// The sender's id of the segment.
        segment: u64,
        /// The index of the segment's memfd among the frame's descriptors, when sent.
        fd: Option<u8>,
        /// The buffer's first byte in the segment.
        offset: u64,
        /// Its length.
        len: u64,
    },
}

/// What a link does with the live handles inside the values it carries.
pub trait Handles: Send + Sync {
    /// How `actor` travels.
    fn encode_ref(&self, actor: &AnyRef) -> Result<RefAddr, String>;
    /// The reference a received address stands for.
    fn decode_ref(&self, addr: RefAddr) -> Result<AnyRef, String>;
    /// How `buffer` travels.
    fn encode_buffer(&self, buffer: &Buffer) -> Result<BufferAddr, String>;
    /// The buffer a received address stands for.
    fn decode_buffer(&self, addr: BufferAddr) -> Result<Buffer, String>;
}

thread_local! {
    /// The handles of the encode or decode running on this thread.
    static HANDLES: RefCell<Option<Arc<dyn Handles>>> = const { RefCell::new(None) };
}

/// Sets this thread's handles for the duration of `f`.
fn with_handles<T>(handles: &Arc<dyn Handles>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<dyn Handles>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            HANDLES.with(|h| *h.borrow_mut() = previous);
        }
    }
    let previous = HANDLES.with(|h| h.borrow_mut().replace(Arc::clone(handles)));
    let _restore = Restore(previous);
    f()
}

/// The handles of the encode or decode running on this thread, if any.
pub(crate) fn current_handles() -> Option<Arc<dyn Handles>> {
    HANDLES.with(|h| h.borrow().clone())
}

/// Encoding or decoding failed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The value could not be encoded.
    #[error("cannot encode value: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    /// The bytes are not an encoded value (truncated, corrupt, or nested too deeply).
    #[error("cannot decode value: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    /// The bytes hold a value followed by more bytes.
    #[error("cannot decode value: {extra} unexpected bytes after the value")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
}

const CONFIG: Configuration = config::standard();

/// Encodes a value into bytes.
///
/// ```
/// use subactor_core::{codec, Value};
///
/// let v = Value::from(vec![1, 2, 3]);
/// let bytes = codec::encode(&v)?;
/// assert_eq!(codec::decode(&bytes)?, v);
/// # Ok::<(), codec::CodecError>(())
/// ```
pub fn encode(value: &Value) -> Result<Vec<u8>, CodecError> {
    Ok(bincode::serde::encode_to_vec(value, CONFIG)?)
}

/// Decodes bytes made by [`encode`]; the whole slice must be one value.
pub fn decode(bytes: &[u8]) -> Result<Value, CodecError> {
    decode_slice(bytes)
}

/// Decodes one item that must fill `bytes`.
///
/// Hostile input can claim a string or byte string longer than the input itself, and
/// bincode allocates what is claimed before it reads. A limit on what may be claimed
/// (bincode counts every primitive at its in-memory size, at most 16 bytes per
/// encoded byte) turns such a claim into an error: the limit is the smallest of a few
/// fixed sizes (bincode takes it as a type parameter) that any valid encoding of this
/// many bytes stays under.
fn decode_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let most = bytes.len().saturating_mul(16);
    macro_rules! within {
        ($($limit:literal),*) => {
            $(if most <= $limit {
                return finish(bincode::serde::decode_from_slice(bytes, CONFIG.with_limit::<$limit>()), bytes.len());
            })*
        };
    }
    within!(
        1_048_576,
        4_194_304,
        16_777_216,
        67_108_864,
        268_435_456,
        1_073_741_824,
        4_294_967_296,
        17_179_869_184,
        68_719_476_736
    );
    finish(bincode::serde::decode_from_slice(bytes, CONFIG.with_limit::<274_877_906_944>()), bytes.len())
}

fn finish<T>(decoded: Result<(T, usize), bincode::error::DecodeError>, len: usize) -> Result<T, CodecError> {
    let (value, used) = decoded?;
    match len - used {
        0 => Ok(value),
        extra => Err(CodecError::TrailingBytes { extra }),
    }
}

/// Appends the encoding of `item` (a frame of a link, holding values) to `out`; the
/// references and buffers inside travel as `handles` says.
pub fn encode_into<T: Serialize + ?Sized>(
    item: &T,
    out: &mut Vec<u8>,
    handles: &Arc<dyn Handles>,
) -> Result<(), CodecError> {
    with_handles(handles, || bincode::serde::encode_into_std_write(item, out, CONFIG))
        .map(drop)
        .map_err(CodecError::Encode)
}

/// Decodes bytes made by [`encode_into`]; the whole slice must be one item. The
/// references and buffers inside become live handles as `handles` says. Malformed,
/// truncated or hostile input is an error, never a panic.
pub fn decode_with<T: DeserializeOwned>(bytes: &[u8], handles: &Arc<dyn Handles>) -> Result<T, CodecError> {
    with_handles(handles, || decode_slice(bytes))
}
