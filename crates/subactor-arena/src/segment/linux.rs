//! Linux backend: memfd-backed shared mappings.

use std::ffi::c_void;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::{self, NonNull};

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};

/// Segments of this backend can be mapped by other processes through their memfd.
pub(super) const SHARED_MEMORY: bool = true;

/// The name every arena memfd carries (visible as `/memfd:subactor-arena` in `/proc/PID/fd`).
const MEMFD_NAME: &std::ffi::CStr = c"subactor-arena";

pub(super) fn page_size() -> usize {
    rustix::param::page_size()
}

/// A memfd of `size` bytes, mapped once, read-write and shared, at `base`.
pub(super) struct Mapping {
    base: NonNull<u8>,
    size: usize,
    /// The memfd; `None` once closed (`close_fd`): the mapping stays.
    fd: Option<OwnedFd>,
}

// SAFETY: `Mapping` owns its mapping and descriptor; the raw pointer is only an address. Moving
// the owner to another thread, or sharing `&Mapping` between threads, hands out nothing but that
// address and a borrowed descriptor; what may be done with the memory behind it is governed by
// the buffer types, which hand out disjoint ranges.
unsafe impl Send for Mapping {}
// SAFETY: see `Send` above; `&Mapping` exposes no interior mutability.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Creates and maps a memfd of `size` bytes (non-zero, page-multiple: checked by the caller).
    pub(super) fn new(size: usize) -> io::Result<Self> {
        let fd = rustix::fs::memfd_create(MEMFD_NAME, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
        let len = u64::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        rustix::fs::ftruncate(&fd, len)?;
        // The size is final: no process mapping this memfd can be surprised by SIGBUS after a
        // shrink. Further seals (a write seal, say) remain possible.
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW)?;
        // SAFETY: a null hint lets the kernel choose fresh address space, so no existing memory
        // is replaced; `fd` is a memfd exactly `size` bytes long (sealed against shrinking), so
        // the whole mapping is backed and reading or writing it cannot fault.
        let addr = unsafe {
            rustix::mm::mmap(ptr::null_mut(), size, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, &fd, 0)
        }?;
        let base = NonNull::new(addr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned a null address"))?;
        Ok(Self { base, size, fd: Some(fd) })
    }

    /// Maps a memfd received from another process: the whole of it, shared, read-only
    /// unless `writable`. The memfd must be sealed against shrinking (as the arena's are),
    /// so that no access within its size can fault.
    pub(super) fn import(fd: OwnedFd, writable: bool) -> io::Result<Self> {
        let seals = rustix::fs::fcntl_get_seals(&fd)?;
        if !seals.contains(SealFlags::SHRINK) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the memfd is not sealed against shrinking"));
        }
        let size = usize::try_from(rustix::fs::fstat(&fd)?.st_size)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the memfd has a negative size"))?;
        if size == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the memfd is empty"));
        }
        let prot = if writable { ProtFlags::READ | ProtFlags::WRITE } else { ProtFlags::READ };
        // SAFETY: a null hint lets the kernel choose fresh address space, so no existing memory
        // is replaced; `fd` is a memfd of exactly `size` bytes, sealed against shrinking, so
        // the whole mapping stays backed and reading it cannot fault.
        let addr = unsafe { rustix::mm::mmap(ptr::null_mut(), size, prot, MapFlags::SHARED, &fd, 0) }?;
        let base = NonNull::new(addr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned a null address"))?;
        Ok(Self { base, size, fd: Some(fd) })
    }

    pub(super) fn base(&self) -> NonNull<u8> {
        self.base
    }

    pub(super) fn size(&self) -> usize {
        self.size
    }

    pub(super) fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(AsFd::as_fd)
    }

    pub(super) fn close_fd(&mut self) {
        self.fd = None;
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base` and `size` are exactly what `mmap` returned and were given, the mapping
        // has not been unmapped before (this is the only place that does it), and the owner of
        // this `Mapping` (the arena's segment) is dropped only once no buffer refers into it.
        let result = unsafe { rustix::mm::munmap(self.base.as_ptr().cast::<c_void>(), self.size) };
        if let Err(error) = result {
            tracing::warn!(%error, size = self.size, "munmap of an arena segment failed");
        }
        // `fd` closes itself after this.
    }
}
