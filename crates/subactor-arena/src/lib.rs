//! subactor's shared-memory arena: buffers that are written once, then frozen into immutable,
//! reference-counted handles any thread (and, later, any process) can read without copying.
//!
//! The arena knows nothing about actors or Python. The host builds on it: a frozen [`Buffer`]
//! becomes a read-only buffer-protocol object in any interpreter, and `subactor.alloc(n)` hands
//! out a [`BufferMut`] whose `.freeze()` is [`BufferMut::freeze`].
//!
//! # A buffer's life
//!
//! 1. [`Arena::alloc`] returns a [`BufferMut`]: `len` zero bytes, writable through `&mut [u8]`,
//!    seen by no one else.
//! 2. [`BufferMut::freeze`] turns it into a [`Buffer`] over the *same* bytes at the *same*
//!    address. Nothing is copied.
//! 3. A `Buffer` is cloned and sliced at the cost of an atomic increment, sent to other threads,
//!    and read everywhere at one stable address.
//! 4. When the last `Buffer` (or the unfrozen `BufferMut`) of an allocation is dropped, its memory
//!    goes back to the arena, and a segment with no buffers left is unmapped (see below).
//!
//! ```
//! use std::thread;
//! use subactor_arena::{Arena, ArenaConfig};
//!
//! let arena = Arena::with_config(ArenaConfig::new().with_max_bytes(256 << 20))?;
//!
//! // Fill a buffer once...
//! let mut buffer = arena.alloc(1024)?;
//! for (i, byte) in buffer.iter_mut().enumerate() {
//!     *byte = i as u8;
//! }
//! // ...freeze it without copying...
//! let frozen = buffer.freeze();
//! let address = frozen.as_ptr() as usize;
//!
//! // ...and read it from another thread, at the same address.
//! let clone = frozen.clone();
//! let seen = thread::spawn(move || (clone.as_ptr() as usize, clone[255]))
//!     .join()
//!     .expect("reader thread");
//! assert_eq!(seen, (address, 255));
//!
//! // Slices share the memory too.
//! let tail = frozen.slice(1000..);
//! assert_eq!(tail.len(), 24);
//! assert_eq!(tail.as_ptr() as usize, address + 1000);
//!
//! let stats = arena.stats();
//! assert_eq!((stats.buffers_live, stats.bytes_live), (1, 1024));
//! drop((frozen, tail));
//! assert_eq!(arena.stats().buffers_live, 0);
//! # Ok::<(), subactor_arena::ArenaError>(())
//! ```
//!
//! # Where the memory comes from
//!
//! Memory is mapped in **segments** ([`Segment`]). On Linux a segment is a memfd
//! (`memfd_create` + `ftruncate`, size sealed) mapped once with `mmap(MAP_SHARED)`; its file
//! descriptor stays open ([`Segment::fd`]) so that another process can map the very same bytes:
//! a buffer is fully described by `(segment fd, `[`Buffer::segment_offset`]`, `[`Buffer::len`]`)`.
//!
//! - **Small buffers** (up to [`ArenaConfig::large_threshold`], 1 MiB by default) are carved out
//!   of shared segments ([`ArenaConfig::segment_size`], 64 MiB by default) by a best-fit free
//!   list that coalesces on free. Allocating one costs a lock and a few B-tree operations, never a
//!   system call, except when every segment is full and a new one is mapped.
//! - **Large buffers** get a dedicated segment, their length rounded up to the page size,
//!   unmapped when the buffer is gone.
//! - **Alignment:** every buffer starts on a [`BUFFER_ALIGN`] (64-byte) boundary; reservations
//!   are rounded up to 64 bytes, so a zero-length buffer is allowed and still has an address of
//!   its own.
//! - **Zeroing:** a new buffer is all zeros. Fresh segments are zero already, so only bytes that
//!   an earlier buffer may have written are cleared.
//! - **Returning segments:** when the last buffer of a shared segment goes, the segment is
//!   unmapped, unless fewer than [`ArenaConfig::keep_empty_segments`] (default 1) other empty
//!   segments are kept, in which case it stays mapped for reuse, so that a steady trickle of
//!   small buffers does not map and unmap a segment each time. Cached segments show in the
//!   statistics, count towards the limit, are given up automatically when a request would
//!   otherwise exceed it, and can be released with [`Arena::trim`]. With
//!   `with_keep_empty_segments(0)`, an arena whose buffers are all gone maps nothing.
//!
//! # Limits and errors
//!
//! [`ArenaConfig::with_max_bytes`] (1 GiB by default) bounds the bytes mapped at once. A request
//! that would exceed it fails with [`ArenaError::LimitReached`], which says how much was asked,
//! how much would have been mapped, the limit, and what is mapped and live; the same request
//! succeeds once enough buffers are dropped. Nothing in the arena panics or aborts on a request,
//! however large; the operating system's refusals come back as [`ArenaError::Map`] with the
//! `io::Error` as its source.
//!
//! # Statistics
//!
//! [`Arena::stats`] reads exact counters ([`ArenaStats`]): live bytes and buffers, mapped
//! segments and bytes. Segments mapped and unmapped are also reported as `tracing` debug events.
//!
//! # Platforms
//!
//! The memfd backend is Linux only. Elsewhere (and under Miri) segments are page-aligned, zeroed
//! heap blocks from [`std::alloc`]: the arena works the same within one process, but its memory
//! cannot be shared with another ([`Segment::is_shared_memory`] is `false`, [`Segment::fd`] is
//! `None`).
//!
//! # Unsafe code and how it is checked
//!
//! `unsafe` lives in two modules: `segment` (mapping and unmapping) and `buffer` (turning a
//! range of a segment into a slice), each with the argument for its soundness written down. The
//! allocator's bookkeeping (`freelist`, `arena`, `config`) is `#![forbid(unsafe_code)]`.
//!
//! - **Miri.** Under `cfg(miri)` the portable backend is selected, so everything but the memfd
//!   backend (bookkeeping, reference counts, slicing, freezing, the multi-threaded stress test,
//!   the doc examples) runs under Miri: `cargo +nightly miri test -p subactor-arena`. Miri needs
//!   a nightly toolchain with the `miri` and `rust-src` components
//!   (`rustup component add miri rust-src --toolchain nightly`); it is not shipped for stable.
//!   The `shm` tests are compiled out there, since Miri cannot run `memfd_create` or map a file.
//!   The integration tests scale themselves down under Miri (a few minutes in all).
//! - **AddressSanitizer** works with the stable toolchain:
//!   `RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address"
//!   cargo test -p subactor-arena --target x86_64-unknown-linux-gnu` (without `RUSTDOCFLAGS`
//!   the doc tests fail to link). ASan watches the heap (the bookkeeping, the `Arc`s, the
//!   fallback's blocks), not the inside of memfd mappings, which it does not know about.

mod arena;
mod buffer;
mod config;
mod error;
mod freelist;
pub mod ring;
mod segment;

pub use arena::{Arena, ArenaStats, BUFFER_ALIGN, ForeignSegment};
pub use buffer::{Buffer, BufferMut};
pub use config::ArenaConfig;
pub use error::ArenaError;
pub use ring::{Ring, RingError, RingReader, RingWriter};
pub use segment::{Segment, page_size};
