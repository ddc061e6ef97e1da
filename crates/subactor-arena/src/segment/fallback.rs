//! Portable backend: page-aligned heap memory. Used on every platform but Linux, and under Miri.
//!
//! Behaves like the Linux backend inside one process, but there is no file descriptor, so the
//! memory cannot be shared with another process.

use std::alloc::{self, Layout};
use std::io;
use std::ptr::NonNull;

/// Segments of this backend are private to the process.
pub(super) const SHARED_MEMORY: bool = false;

/// The alignment (and size granularity) of fallback segments.
const PAGE_SIZE: usize = 4096;

pub(super) fn page_size() -> usize {
    PAGE_SIZE
}

/// A zeroed heap block of `layout.size()` bytes at `base`.
pub(super) struct Mapping {
    base: NonNull<u8>,
    layout: Layout,
}

// SAFETY: `Mapping` owns its heap block; the raw pointer is only an address. What may be done
// with the memory behind it is governed by the buffer types, which hand out disjoint ranges.
unsafe impl Send for Mapping {}
// SAFETY: see `Send` above; `&Mapping` exposes no interior mutability.
unsafe impl Sync for Mapping {}

impl Mapping {
    pub(super) fn new(size: usize) -> io::Result<Self> {
        if size == 0 {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let layout = Layout::from_size_align(size, PAGE_SIZE)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        // SAFETY: `layout` has a non-zero size (checked above).
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        let base = NonNull::new(ptr).ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        Ok(Self { base, layout })
    }

    /// Other processes' segments cannot be mapped without a shared-memory backend.
    #[cfg(unix)]
    pub(super) fn import(_fd: std::os::fd::OwnedFd, _writable: bool) -> io::Result<Self> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "this platform has no shared-memory segments"))
    }

    pub(super) fn base(&self) -> NonNull<u8> {
        self.base
    }

    pub(super) fn size(&self) -> usize {
        self.layout.size()
    }

    #[cfg(unix)]
    pub(super) fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }

    pub(super) fn close_fd(&mut self) {}
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base` was returned by `alloc_zeroed(self.layout)`, is freed only here, and the
        // owner of this `Mapping` is dropped only once no buffer refers into it.
        unsafe { alloc::dealloc(self.base.as_ptr(), self.layout) };
    }
}
