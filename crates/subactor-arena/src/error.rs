//! The arena's error type.

use std::io;

/// Why an arena could not be built or could not hand out a buffer.
///
/// Every failure is reported as a value: the arena never panics or aborts because a request was
/// too large or memory ran out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArenaError {
    /// Serving the request would map more than the arena's size limit
    /// ([`ArenaConfig::with_max_bytes`](crate::ArenaConfig::with_max_bytes)).
    ///
    /// Retry once buffers have been dropped: memory is given back as soon as it is unused.
    #[error(
        "arena size limit reached: {requested} bytes requested, which needs {needed} more bytes \
         mapped, but {mapped} of the {limit}-byte limit are mapped already ({live} bytes live in \
         buffers)"
    )]
    LimitReached {
        /// The buffer length that was asked for.
        requested: usize,
        /// How many bytes would have had to be mapped to serve it (a whole segment for a small
        /// buffer, the page-rounded length for a large one).
        needed: usize,
        /// The configured limit on mapped bytes.
        limit: usize,
        /// The bytes mapped when the request was refused.
        mapped: usize,
        /// The bytes held by live buffers when the request was refused.
        live: usize,
    },

    /// A range does not lie within its segment (a foreign buffer's address).
    #[error("a buffer of {len} bytes at offset {offset} does not fit a {size}-byte segment")]
    OutOfBounds {
        /// The range's first byte.
        offset: usize,
        /// Its length.
        len: usize,
        /// The segment's size.
        size: usize,
    },

    /// The operating system refused to create or map a segment.
    #[error("could not map a {size}-byte arena segment")]
    Map {
        /// The size of the segment that could not be mapped.
        size: usize,
        /// The underlying error (from `memfd_create`, `ftruncate`, `fcntl` or `mmap`, or an
        /// out-of-memory report from the portable backend).
        #[source]
        source: io::Error,
    },

    /// An [`ArenaConfig`](crate::ArenaConfig) was inconsistent; the message says which setting.
    #[error("invalid arena configuration: {0}")]
    InvalidConfig(String),
}
