//! Segments: the only place memory is mapped and unmapped.
//!
//! A [`Segment`] is one contiguous, page-aligned region of memory that stays at the same address
//! from the moment it is mapped until it is dropped. Everything else in the crate works with
//! offsets into segments; this module and [`crate::buffer`] are the only ones that touch raw
//! memory.
//!
//! Two backends sit behind `mod imp`:
//!
//! - **Linux** (`linux.rs`): `memfd_create` + `ftruncate` + `mmap(MAP_SHARED)`. The memfd is kept
//!   open for the segment's lifetime, so the same bytes can be mapped again, by this process or,
//!   once the descriptor is passed over a Unix socket, by another one. Its size is sealed
//!   (`F_SEAL_SHRINK | F_SEAL_GROW`), so whoever maps it may trust the size.
//! - **Everywhere else, and under Miri** (`fallback.rs`): page-aligned, zeroed memory from
//!   [`std::alloc`]. It behaves identically inside one process but has no file descriptor and
//!   cannot be shared with another process ([`Segment::is_shared_memory`] is `false`).

use std::io;
use std::ptr::NonNull;

#[cfg(all(target_os = "linux", not(miri)))]
mod linux;
#[cfg(all(target_os = "linux", not(miri)))]
use linux as imp;

#[cfg(not(all(target_os = "linux", not(miri))))]
mod fallback;
#[cfg(not(all(target_os = "linux", not(miri))))]
use fallback as imp;

/// One mapped region of memory from which buffers are carved.
///
/// A segment is reached through a buffer ([`crate::Buffer::segment`]); it is unmapped when the
/// arena no longer needs it and the last buffer inside it is gone. Its address never changes
/// while it exists.
pub struct Segment {
    id: u64,
    mapping: imp::Mapping,
}

impl Segment {
    /// Maps a new zero-filled segment of `size` bytes.
    ///
    /// `size` must be a non-zero multiple of [`page_size`]; anything else is an
    /// [`io::ErrorKind::InvalidInput`] error.
    pub(crate) fn map(id: u64, size: usize) -> io::Result<Self> {
        if size == 0 || size % page_size() != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("segment size {size} is not a non-zero multiple of the page size"),
            ));
        }
        let mapping = imp::Mapping::new(size)?;
        Ok(Self { id, mapping })
    }

    /// Maps a segment of another process's arena from its memfd (received over a Unix
    /// socket): read-only unless `writable`. Its size is the memfd's, which must be sealed
    /// against shrinking.
    #[cfg(unix)]
    pub(crate) fn import(id: u64, fd: std::os::fd::OwnedFd, writable: bool) -> io::Result<Self> {
        let mapping = imp::Mapping::import(fd, writable)?;
        Ok(Self { id, mapping })
    }

    /// A process-wide unique number naming this segment (in log events, for instance).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The size of the segment in bytes: a multiple of the page size.
    pub fn size(&self) -> usize {
        self.mapping.size()
    }

    /// The address of the segment's first byte. Page-aligned; stable for the segment's lifetime.
    pub fn as_ptr(&self) -> *const u8 {
        self.mapping.base().as_ptr()
    }

    /// The segment's base pointer, with the provenance of the whole mapping.
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.mapping.base()
    }

    /// Whether the segment is backed by a file descriptor that another process can map
    /// (`true` on Linux, `false` with the portable fallback).
    pub fn is_shared_memory(&self) -> bool {
        imp::SHARED_MEMORY
    }

    /// The memfd behind the segment, if there is one (see [`Segment::is_shared_memory`]).
    ///
    /// The descriptor stays owned by the segment. Mapping it again (with `MAP_SHARED`, offset 0,
    /// at most [`Segment::size`] bytes) shows the very bytes the buffers of this segment hold;
    /// to keep it beyond the segment's lifetime, duplicate it
    /// ([`BorrowedFd::try_clone_to_owned`](std::os::fd::BorrowedFd::try_clone_to_owned)).
    #[cfg(unix)]
    pub fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.mapping.fd()
    }

    /// Closes the memfd, keeping the mapping (a segment no other process will map again).
    pub(crate) fn close_fd(&mut self) {
        self.mapping.close_fd();
    }
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("id", &self.id)
            .field("size", &self.size())
            .field("ptr", &self.as_ptr())
            .field("shared_memory", &self.is_shared_memory())
            .finish()
    }
}

/// The granularity of segment sizes: the system's page size (4096 with the fallback backend).
pub fn page_size() -> usize {
    imp::page_size()
}
