//! Arena configuration.

#![forbid(unsafe_code)]

use crate::error::ArenaError;
use crate::segment::page_size;

const MIB: usize = 1024 * 1024;

/// How an [`Arena`](crate::Arena) maps and carves memory.
///
/// Built with [`ArenaConfig::new`] (the defaults) and the `with_*` methods; checked by
/// [`Arena::with_config`](crate::Arena::with_config).
///
/// ```
/// use subactor_arena::{Arena, ArenaConfig};
///
/// let config = ArenaConfig::new()
///     .with_segment_size(8 << 20)
///     .with_large_threshold(256 << 10)
///     .with_max_bytes(256 << 20)
///     .with_keep_empty_segments(0);
/// let arena = Arena::with_config(config)?;
/// assert_eq!(arena.config().segment_size(), 8 << 20);
/// # Ok::<(), subactor_arena::ArenaError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArenaConfig {
    segment_size: usize,
    large_threshold: usize,
    max_bytes: usize,
    keep_empty_segments: usize,
}

impl ArenaConfig {
    /// The default size of a shared segment: 64 MiB.
    pub const DEFAULT_SEGMENT_SIZE: usize = 64 * MIB;
    /// The default large-buffer threshold: 1 MiB.
    pub const DEFAULT_LARGE_THRESHOLD: usize = MIB;
    /// The default limit on mapped bytes: 1 GiB.
    pub const DEFAULT_MAX_BYTES: usize = 1024 * MIB;
    /// The default number of empty shared segments kept mapped for reuse: 1.
    pub const DEFAULT_KEEP_EMPTY_SEGMENTS: usize = 1;

    /// The defaults: 64 MiB segments, buffers above 1 MiB in segments of their own, a 1 GiB limit
    /// on mapped bytes, one empty segment kept for reuse.
    pub fn new() -> Self {
        Self {
            segment_size: Self::DEFAULT_SEGMENT_SIZE,
            large_threshold: Self::DEFAULT_LARGE_THRESHOLD,
            max_bytes: Self::DEFAULT_MAX_BYTES,
            keep_empty_segments: Self::DEFAULT_KEEP_EMPTY_SEGMENTS,
        }
    }

    /// Sets the size of the shared segments small buffers are carved from. Rounded up to the
    /// page size when the arena is built; must be at least the large threshold and at most the
    /// limit.
    pub fn with_segment_size(mut self, bytes: usize) -> Self {
        self.segment_size = bytes;
        self
    }

    /// Sets the large-buffer threshold: a buffer longer than this (after rounding up to
    /// [`BUFFER_ALIGN`](crate::BUFFER_ALIGN)) gets a segment of its own, sized to fit and
    /// unmapped as soon as the buffer is gone. `0` gives every buffer its own segment.
    pub fn with_large_threshold(mut self, bytes: usize) -> Self {
        self.large_threshold = bytes;
        self
    }

    /// Sets the limit on the bytes the arena maps at once (shared and dedicated segments,
    /// including cached empty ones). A request that would exceed it fails with
    /// [`ArenaError::LimitReached`]. At most `isize::MAX`.
    pub fn with_max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Sets how many empty shared segments stay mapped for reuse instead of being unmapped when
    /// their last buffer goes. `0` unmaps every segment as soon as it is empty. Cached segments
    /// count towards the limit, are given up when a request would otherwise exceed it, and can be
    /// released explicitly with [`Arena::trim`](crate::Arena::trim).
    pub fn with_keep_empty_segments(mut self, count: usize) -> Self {
        self.keep_empty_segments = count;
        self
    }

    /// The size of a shared segment.
    pub fn segment_size(&self) -> usize {
        self.segment_size
    }

    /// Buffers longer than this get a segment of their own.
    pub fn large_threshold(&self) -> usize {
        self.large_threshold
    }

    /// The limit on mapped bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// How many empty shared segments stay mapped for reuse.
    pub fn keep_empty_segments(&self) -> usize {
        self.keep_empty_segments
    }

    /// Checks the settings and rounds the segment size up to the page size.
    pub(crate) fn validated(mut self) -> Result<Self, ArenaError> {
        let invalid = |message: String| Err(ArenaError::InvalidConfig(message));
        if self.max_bytes > isize::MAX as usize {
            return invalid(format!("max_bytes ({}) exceeds isize::MAX", self.max_bytes));
        }
        if self.segment_size == 0 {
            return invalid("segment_size must not be zero".to_owned());
        }
        let page = page_size();
        self.segment_size = match self.segment_size.checked_next_multiple_of(page) {
            Some(size) => size,
            None => return invalid(format!("segment_size ({}) is too large", self.segment_size)),
        };
        if self.segment_size > self.max_bytes {
            return invalid(format!(
                "segment_size ({}, page-rounded) exceeds max_bytes ({})",
                self.segment_size, self.max_bytes
            ));
        }
        if self.large_threshold > self.segment_size {
            return invalid(format!(
                "large_threshold ({}) exceeds segment_size ({})",
                self.large_threshold, self.segment_size
            ));
        }
        Ok(self)
    }
}

impl Default for ArenaConfig {
    fn default() -> Self {
        Self::new()
    }
}
