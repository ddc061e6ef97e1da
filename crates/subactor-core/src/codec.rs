//! The one place where [`Value`]s become bytes and back.
//!
//! Everything that serialises values (for another process, a file, or a network)
//! goes through [`encode`] and [`decode`], so the wire format can change in one place.
//! Today it is bincode 2 (pinned to `=2.0.1`: later releases of the crate are empty)
//! through serde, in its standard configuration (variable-length integers, little
//! endian).

use bincode::config::{self, Configuration};

use crate::Value;

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
    let (value, used) = bincode::serde::decode_from_slice(bytes, CONFIG)?;
    match bytes.len() - used {
        0 => Ok(value),
        extra => Err(CodecError::TrailingBytes { extra }),
    }
}
