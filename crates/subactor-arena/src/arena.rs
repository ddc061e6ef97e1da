//! The arena: segment policy, allocation bookkeeping and statistics. Safe code only.
//!
//! # Policy
//!
//! - A request of `len` bytes reserves `len` rounded up to [`BUFFER_ALIGN`] (at least one
//!   granule, so a zero-length buffer still has its own address).
//! - Reservations up to the large threshold are carved from *shared* segments
//!   ([`ArenaConfig::segment_size`] bytes each) by a best-fit [`FreeList`]: the oldest segment
//!   with room wins, and a new segment is mapped only when none has. No system call is made
//!   unless a segment has to be mapped.
//! - Larger reservations get a *dedicated* segment, `len` rounded up to the page size, unmapped
//!   as soon as its buffer is gone.
//! - A shared segment whose last buffer is gone is unmapped, unless fewer than
//!   [`ArenaConfig::keep_empty_segments`] other empty segments are cached, in which case it stays
//!   mapped for reuse. Cached segments are given up when a request would otherwise exceed the
//!   limit, and by [`Arena::trim`].
//! - The limit applies to mapped bytes. Mapping reserves its size in the `bytes_mapped` counter
//!   first (compare-and-swap against the limit), so concurrent requests can never overshoot it.
//!
//! # Zeroing
//!
//! Fresh segments are zero-filled by the backend. Each shared segment remembers the highest
//! offset a buffer has ever been able to write (`high_water`); only the part of a new buffer
//! below it can hold stale bytes and is zeroed, outside the lock, by the buffer itself.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::buffer::{Buffer, BufferMut};
use crate::config::ArenaConfig;
use crate::error::ArenaError;
use crate::freelist::FreeList;
use crate::segment::{Segment, page_size};

/// The alignment of every buffer's first byte, and the granule of reservations: one cache line,
/// and enough for any numpy dtype.
pub const BUFFER_ALIGN: usize = 64;

/// Process-wide segment numbering, so log events of different arenas do not collide.
static NEXT_SEGMENT_ID: AtomicU64 = AtomicU64::new(1);

/// A pool of shared memory handing out [`BufferMut`]s, which freeze into [`Buffer`]s.
///
/// `Arena` is a handle: clones share the same memory, limit and statistics, and it is `Send` and
/// `Sync`. Buffers keep the arena's bookkeeping alive, so they may outlive every handle.
///
/// ```
/// use subactor_arena::Arena;
///
/// let arena = Arena::new();
/// let mut buffer = arena.alloc(5)?;
/// buffer.copy_from_slice(b"hello");
/// let frozen = buffer.freeze();
/// assert_eq!(&frozen[..], b"hello");
/// assert_eq!(arena.stats().buffers_live, 1);
/// drop(frozen);
/// assert_eq!(arena.stats().buffers_live, 0);
/// # Ok::<(), subactor_arena::ArenaError>(())
/// ```
#[derive(Clone)]
pub struct Arena {
    inner: Arc<Inner>,
}

/// A snapshot of an arena's statistics.
///
/// Each field is exact at the moment it is read: counters are updated when a buffer is handed
/// out or its last handle dropped, and when a segment is mapped or unmapped. While other threads
/// allocate, the four fields are read one after the other, not as one atomic snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ArenaStats {
    /// The sum of the lengths of live buffers (as requested, before rounding).
    pub bytes_live: usize,
    /// The number of live allocations. Clones and slices of a buffer share one allocation.
    pub buffers_live: usize,
    /// The number of segments mapped: shared ones (including cached empty ones) and dedicated
    /// ones.
    pub segments_mapped: usize,
    /// The bytes of all mapped segments (plus, for an instant, those being mapped). This is what
    /// the limit applies to.
    pub bytes_mapped: usize,
}

impl Arena {
    /// An arena with the default configuration ([`ArenaConfig::new`]). Nothing is mapped until
    /// the first allocation.
    pub fn new() -> Self {
        Self::from_validated(ArenaConfig::new())
    }

    /// An arena with the given configuration, or [`ArenaError::InvalidConfig`] if its settings
    /// contradict each other.
    pub fn with_config(config: ArenaConfig) -> Result<Self, ArenaError> {
        Ok(Self::from_validated(config.validated()?))
    }

    fn from_validated(config: ArenaConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                counters: Arc::new(Counters::default()),
                shared: Mutex::new(SharedSegments::default()),
            }),
        }
    }

    /// The effective configuration (segment size rounded up to the page size).
    pub fn config(&self) -> &ArenaConfig {
        &self.inner.config
    }

    /// A new writable buffer of `len` bytes, all zero, whose first byte is aligned to
    /// [`BUFFER_ALIGN`].
    ///
    /// `len` may be zero (the buffer still counts as live). Fails with
    /// [`ArenaError::LimitReached`] if serving it would map more than the limit (any `len` above
    /// the limit, however large, fails this way) and with [`ArenaError::Map`] if the operating
    /// system refuses a new segment.
    pub fn alloc(&self, len: usize) -> Result<BufferMut, ArenaError> {
        let (allocation, dirty) = Inner::allocate(&self.inner, len)?;
        Ok(BufferMut::new(allocation, dirty))
    }

    /// A frozen copy of `bytes`: one allocation, one copy.
    ///
    /// ```
    /// let arena = subactor_arena::Arena::new();
    /// let buffer = arena.copy_from(b"payload")?;
    /// assert_eq!(&buffer[..], b"payload");
    /// # Ok::<(), subactor_arena::ArenaError>(())
    /// ```
    pub fn copy_from(&self, bytes: &[u8]) -> Result<Buffer, ArenaError> {
        let mut buffer = self.alloc(bytes.len())?;
        buffer.copy_from_slice(bytes);
        Ok(buffer.freeze())
    }

    /// The arena's current statistics.
    pub fn stats(&self) -> ArenaStats {
        self.inner.counters.snapshot()
    }

    /// Unmaps every cached empty shared segment now and returns how many there were.
    pub fn trim(&self) -> usize {
        self.inner.release_cached()
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena").field("config", &self.inner.config).field("stats", &self.stats()).finish()
    }
}

/// What every handle and every buffer of one arena share.
pub(crate) struct Inner {
    config: ArenaConfig,
    counters: Arc<Counters>,
    shared: Mutex<SharedSegments>,
}

#[derive(Default)]
struct Counters {
    bytes_live: AtomicUsize,
    buffers_live: AtomicUsize,
    segments_mapped: AtomicUsize,
    bytes_mapped: AtomicUsize,
}

impl Counters {
    fn snapshot(&self) -> ArenaStats {
        ArenaStats {
            bytes_live: self.bytes_live.load(Ordering::Acquire),
            buffers_live: self.buffers_live.load(Ordering::Acquire),
            segments_mapped: self.segments_mapped.load(Ordering::Acquire),
            bytes_mapped: self.bytes_mapped.load(Ordering::Acquire),
        }
    }
}

/// The shared segments of an arena, oldest first.
#[derive(Default)]
struct SharedSegments {
    by_id: BTreeMap<u64, SharedSegment>,
}

struct SharedSegment {
    mapped: Arc<MappedSegment>,
    space: FreeList,
    /// Live allocations in this segment.
    buffers: usize,
    /// No byte at or above this offset has ever been writable through a buffer: still zero.
    high_water: usize,
}

impl SharedSegment {
    /// Records an allocation of `len` bytes at `offset` and returns how many of its leading
    /// bytes may hold stale data.
    fn take(&mut self, offset: usize, len: usize) -> usize {
        self.buffers += 1;
        let dirty = self.high_water.saturating_sub(offset).min(len);
        self.high_water = self.high_water.max(offset + len);
        dirty
    }
}

impl SharedSegments {
    fn empty_count(&self) -> usize {
        self.by_id.values().filter(|s| s.buffers == 0).count()
    }

    /// Removes every empty segment and hands them over for unmapping (outside the lock).
    fn take_empty(&mut self) -> Vec<Arc<MappedSegment>> {
        let empty: Vec<u64> = self.by_id.iter().filter(|(_, s)| s.buffers == 0).map(|(&id, _)| id).collect();
        empty.into_iter().filter_map(|id| self.by_id.remove(&id)).map(|s| s.mapped).collect()
    }
}

/// A segment together with the accounting that must follow its unmapping (none for a
/// foreign segment, which belongs to another process's arena).
pub(crate) struct MappedSegment {
    // Field order matters: the segment is unmapped before `_release` updates the counters.
    segment: Segment,
    _release: Option<Release>,
}

impl MappedSegment {
    pub(crate) fn segment(&self) -> &Segment {
        &self.segment
    }
}

struct Release {
    counters: Arc<Counters>,
    id: u64,
    size: usize,
    dedicated: bool,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.counters.segments_mapped.fetch_sub(1, Ordering::AcqRel);
        self.counters.bytes_mapped.fetch_sub(self.size, Ordering::AcqRel);
        tracing::debug!(segment = self.id, size = self.size, dedicated = self.dedicated, "arena segment unmapped");
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, SharedSegments> {
        // The bookkeeping is never left half-updated by a panic (nothing in it panics on valid
        // input), so a poisoned lock still guards consistent data.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Unmaps every cached empty shared segment and returns how many there were.
    fn release_cached(&self) -> usize {
        let released = self.lock().take_empty();
        // Dropped here, after the lock: unmapping is a system call.
        released.len()
    }

    /// Reserves room for `len` bytes and returns the allocation and the number of its leading
    /// bytes that may hold stale data.
    fn allocate(this: &Arc<Self>, len: usize) -> Result<(Allocation, usize), ArenaError> {
        let limit = this.config.max_bytes();
        if len > limit {
            return Err(this.limit_reached(len, len, this.counters.bytes_mapped.load(Ordering::Acquire)));
        }
        // Cannot overflow: `len <= max_bytes <= isize::MAX`.
        let reserved = len.max(1).next_multiple_of(BUFFER_ALIGN);
        let (allocation, dirty) = if reserved > this.config.large_threshold() {
            (Self::allocate_dedicated(this, len)?, 0)
        } else {
            Self::allocate_shared(this, len, reserved)?
        };
        this.counters.bytes_live.fetch_add(len, Ordering::AcqRel);
        this.counters.buffers_live.fetch_add(1, Ordering::AcqRel);
        Ok((allocation, dirty))
    }

    fn allocate_dedicated(this: &Arc<Self>, len: usize) -> Result<Allocation, ArenaError> {
        // Cannot overflow: `len <= isize::MAX`, far from `usize::MAX`. Never zero: a zero-length
        // buffer still gets a page (with a large threshold of 0).
        let size = len.max(1).next_multiple_of(page_size());
        let mapped = match this.map_segment(len, size, true) {
            Err(ArenaError::LimitReached { .. }) if this.release_cached() > 0 => {
                // Cached empty segments were in the way; they are unmapped now. Try once more.
                this.map_segment(len, size, true)?
            }
            other => other?,
        };
        Ok(Allocation {
            owner: Owner::Arena(Arc::clone(this)),
            segment: mapped,
            offset: 0,
            len,
            reserved: size,
            shared: false,
        })
    }

    fn allocate_shared(this: &Arc<Self>, len: usize, reserved: usize) -> Result<(Allocation, usize), ArenaError> {
        let mut shared = this.lock();
        let found = shared.by_id.values_mut().find_map(|segment| {
            let offset = segment.space.alloc(reserved)?;
            let dirty = segment.take(offset, len);
            Some((Arc::clone(&segment.mapped), offset, dirty))
        });
        let (mapped, offset, dirty) = match found {
            Some(found) => found,
            None => {
                // No segment has room: map a new one (under the lock, so that two threads do not
                // both map one for the same shortage). `reserved <= large_threshold <=
                // segment_size`, so the allocation fits at offset 0.
                let size = this.config.segment_size();
                let mapped = this.map_segment(len, size, false)?;
                let mut segment = SharedSegment {
                    mapped: Arc::clone(&mapped),
                    space: FreeList::with_first_allocated(size, reserved),
                    buffers: 0,
                    high_water: 0,
                };
                let dirty = segment.take(0, len);
                shared.by_id.insert(mapped.segment.id(), segment);
                (mapped, 0, dirty)
            }
        };
        drop(shared);
        let allocation =
            Allocation { owner: Owner::Arena(Arc::clone(this)), segment: mapped, offset, len, reserved, shared: true };
        Ok((allocation, dirty))
    }

    /// Maps a segment of `size` bytes for a request of `requested` bytes, within the limit.
    fn map_segment(&self, requested: usize, size: usize, dedicated: bool) -> Result<Arc<MappedSegment>, ArenaError> {
        let limit = self.config.max_bytes();
        self.counters
            .bytes_mapped
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |mapped| {
                mapped.checked_add(size).filter(|&total| total <= limit)
            })
            .map_err(|mapped| self.limit_reached(requested, size, mapped))?;
        let id = NEXT_SEGMENT_ID.fetch_add(1, Ordering::Relaxed);
        match Segment::map(id, size) {
            Ok(segment) => {
                self.counters.segments_mapped.fetch_add(1, Ordering::AcqRel);
                tracing::debug!(segment = id, size, dedicated, "arena segment mapped");
                Ok(Arc::new(MappedSegment {
                    segment,
                    _release: Some(Release { counters: Arc::clone(&self.counters), id, size, dedicated }),
                }))
            }
            Err(source) => {
                self.counters.bytes_mapped.fetch_sub(size, Ordering::AcqRel);
                Err(ArenaError::Map { size, source })
            }
        }
    }

    fn limit_reached(&self, requested: usize, needed: usize, mapped: usize) -> ArenaError {
        ArenaError::LimitReached {
            requested,
            needed,
            limit: self.config.max_bytes(),
            mapped,
            live: self.counters.bytes_live.load(Ordering::Acquire),
        }
    }

    /// Returns the room of a dropped allocation and applies the empty-segment policy.
    fn release(&self, allocation: &Allocation) {
        if allocation.shared {
            let id = allocation.segment.segment.id();
            let mut shared = self.lock();
            let keep = self.config.keep_empty_segments();
            let now_empty = match shared.by_id.get_mut(&id) {
                Some(segment) => {
                    segment.space.free(allocation.offset, allocation.reserved);
                    segment.buffers -= 1;
                    segment.buffers == 0
                }
                None => false,
            };
            // The segment itself counts among the empty ones now, hence `>`.
            let retired = if now_empty && shared.empty_count() > keep { shared.by_id.remove(&id) } else { None };
            drop(shared);
            // The segment is unmapped once the allocation's own handle goes, right after this.
            drop(retired);
        }
        self.counters.bytes_live.fetch_sub(allocation.len, Ordering::AcqRel);
        self.counters.buffers_live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Who gets an allocation's room back when it is dropped.
enum Owner {
    /// This process's arena.
    Arena(Arc<Inner>),
    /// Another process's arena: the hook tells it (once) that this process is done.
    Foreign(Mutex<Option<Box<dyn FnOnce() + Send>>>),
}

/// One reservation in one segment, owned by exactly one [`BufferMut`] or shared by the
/// [`Buffer`]s frozen from it. Dropping it gives the room back.
pub(crate) struct Allocation {
    owner: Owner,
    /// Keeps the memory mapped for as long as the allocation exists, whatever the arena does.
    segment: Arc<MappedSegment>,
    offset: usize,
    len: usize,
    reserved: usize,
    shared: bool,
}

impl Allocation {
    /// The segment holding the allocation.
    pub(crate) fn segment(&self) -> &Segment {
        self.segment.segment()
    }

    /// The offset of the allocation's first byte in its segment (a multiple of
    /// [`BUFFER_ALIGN`]).
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// The usable length. `offset + len <= segment().size()`.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        match &self.owner {
            Owner::Arena(arena) => arena.release(self),
            Owner::Foreign(hook) => {
                let hook = hook.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some(hook) = hook {
                    hook();
                }
            }
        }
    }
}

/// A segment of another process's arena, mapped here from its memfd: the buffers that
/// process lends this one are views of it.
///
/// Its memory stays mapped while this handle or any buffer over it exists. Which ranges
/// hold live buffers is the other process's business: it lends a buffer, keeps it until
/// told the borrower is done (the `on_release` hook of [`ForeignSegment::buffer`]), and
/// never writes a frozen buffer. Its buffers count in no local arena's statistics.
#[derive(Clone)]
pub struct ForeignSegment {
    mapped: Arc<MappedSegment>,
}

impl ForeignSegment {
    /// Maps the memfd `fd` of another process's arena segment, read-only.
    ///
    /// Fails with [`ArenaError::Map`] when the descriptor is not a memfd sealed against
    /// shrinking (whose size could change under a reader), or cannot be mapped.
    #[cfg(unix)]
    pub fn map(fd: std::os::fd::OwnedFd) -> Result<ForeignSegment, ArenaError> {
        let id = NEXT_SEGMENT_ID.fetch_add(1, Ordering::Relaxed);
        let segment = Segment::import(id, fd, false).map_err(|source| ArenaError::Map { size: 0, source })?;
        tracing::debug!(segment = id, size = segment.size(), "foreign segment mapped");
        Ok(ForeignSegment { mapped: Arc::new(MappedSegment { segment, _release: None }) })
    }

    /// The segment.
    pub fn segment(&self) -> &Segment {
        &self.mapped.segment
    }

    /// A buffer over `len` bytes at `offset` of the segment, lent by its owner;
    /// `on_release` runs once, when the last handle to it (clones and slices included)
    /// is dropped.
    ///
    /// Fails with [`ArenaError::OutOfBounds`] when the range does not lie in the segment.
    pub fn buffer(
        &self,
        offset: usize,
        len: usize,
        on_release: impl FnOnce() + Send + 'static,
    ) -> Result<Buffer, ArenaError> {
        let size = self.segment().size();
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(ArenaError::OutOfBounds { offset, len, size });
        }
        let allocation = Allocation {
            owner: Owner::Foreign(Mutex::new(Some(Box::new(on_release)))),
            segment: Arc::clone(&self.mapped),
            offset,
            len,
            reserved: len,
            shared: false,
        };
        Ok(BufferMut::from_foreign(allocation).freeze())
    }
}

impl fmt::Debug for ForeignSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForeignSegment").field("segment", self.segment()).finish()
    }
}
