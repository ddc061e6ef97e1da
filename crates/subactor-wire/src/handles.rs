//! How live handles cross a link: [`LinkHandles`], one per link and side.
//!
//! **References.** The side that owns the actors (a process actor's parent) sends each
//! reference as its actor's id and remembers it in the runtime's [`Exports`], so that
//! the id it gets back resolves to the same actor; an id it does not know (any more)
//! resolves to a [`DeadRef`]. The other side (the child) turns each id into a
//! [`ProxyRef`] whose every operation is a call across the link.
//!
//! **Buffers** cross without a copy, the same way in both directions: the sender
//! *lends* the buffer — it keeps a handle to it until the receiver says it is done — and
//! sends its segment's id, offset and length; the first time a segment crosses a link
//! (on each of its sockets), its memfd travels with the frame (`SCM_RIGHTS`), and the
//! receiver maps it read-only once ([`ForeignSegment`]). The receiver's buffer over that
//! mapping tells the sender when its last handle is gone (`release`), and the sender drops
//! its handle. A buffer passed on to a third process is lent again by whoever passes it,
//! holding its own borrowed handle meanwhile. When a link goes, so do its lends: the
//! memory of a child that died holding views is given back.
//!
//! Without shared memory (a segment with no memfd), buffers cross as copies.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use serde::Serialize;
use serde::de::DeserializeOwned;
use subactor_arena::{Arena, Buffer, ForeignSegment};
use subactor_core::codec::{self, BufferAddr, Handles, RefAddr};
use subactor_core::{ActorState, AnyRef, DeadLetters};

use crate::LinkError;
use crate::proxy::{Caller, DeadRef, ProxyRef};
use crate::stream::{Frame, FrameWriter, MAX_FDS};

/// The sockets of a link, for keeping track of which segments each has carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The socket of messages and their outcomes.
    Data = 0,
    /// The socket of everything else.
    Control = 1,
}

thread_local! {
    /// The frame being encoded on this thread: its socket, and the descriptors to send
    /// with it.
    static OUTGOING: RefCell<Option<(Channel, Vec<OwnedFd>)>> = const { RefCell::new(None) };
    /// The descriptors of the frame being decoded on this thread (taken as the buffers
    /// that need them are decoded).
    static INCOMING: RefCell<Vec<Option<OwnedFd>>> = const { RefCell::new(Vec::new()) };
}

/// Encodes `item` and sends it on `channel` as one frame, with the segments its buffers
/// need and `extra` descriptors (in that order).
pub fn send<T: Serialize>(
    writer: &FrameWriter,
    channel: Channel,
    item: &T,
    handles: &Arc<dyn Handles>,
    extra: &[BorrowedFd<'_>],
) -> Result<(), LinkError> {
    let previous = OUTGOING.with(|out| out.borrow_mut().replace((channel, Vec::new())));
    let mut body = Vec::new();
    let encoded = codec::encode_into(item, &mut body, handles);
    let (_, fds) =
        OUTGOING.with(|out| std::mem::replace(&mut *out.borrow_mut(), previous)).unwrap_or((channel, Vec::new()));
    encoded.map_err(|e| LinkError::Encode(e.to_string()))?;
    let mut all: Vec<BorrowedFd<'_>> = extra.to_vec();
    all.extend(fds.iter().map(AsFd::as_fd));
    writer.send(&body, &all)
}

/// Decodes a received frame. The buffers inside take the descriptors they need from
/// the frame; the others stay in `frame.fds` (in order) for the caller.
pub fn decode<T: DeserializeOwned>(frame: &mut Frame, handles: &Arc<dyn Handles>) -> Result<T, LinkError> {
    let fds: Vec<Option<OwnedFd>> = std::mem::take(&mut frame.fds).into_iter().map(Some).collect();
    let previous = INCOMING.with(|slot| std::mem::replace(&mut *slot.borrow_mut(), fds));
    let decoded = codec::decode_with(frame.body(), handles);
    let left = INCOMING.with(|slot| std::mem::replace(&mut *slot.borrow_mut(), previous));
    frame.fds = left.into_iter().flatten().collect();
    decoded.map_err(|e| LinkError::Malformed(e.to_string()))
}

/// The references to this side's actors that went across links: resolves the ids that
/// come back. One per runtime.
pub struct Exports {
    table: Mutex<Table>,
    dead_letters: OnceLock<Arc<DeadLetters>>,
}

struct Table {
    refs: HashMap<u64, AnyRef>,
    /// The table's size after its last sweep of stopped actors.
    swept: usize,
}

impl Default for Exports {
    fn default() -> Exports {
        Exports { table: Mutex::new(Table { refs: HashMap::new(), swept: 0 }), dead_letters: OnceLock::new() }
    }
}

impl Exports {
    /// An empty table.
    pub fn new() -> Exports {
        Exports::default()
    }

    /// Where references to actors that are gone record what is sent to them (the
    /// first sink given stays).
    pub fn set_dead_letters(&self, sink: Arc<DeadLetters>) {
        let _ = self.dead_letters.set(sink);
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers `actor`, so that its id resolves to it.
    pub fn export(&self, actor: &AnyRef) -> RefAddr {
        let mut table = self.table();
        table.refs.entry(actor.id().as_u64()).or_insert_with(|| actor.clone());
        if table.refs.len() > 2 * table.swept.max(64) {
            table.refs.retain(|_, actor| actor.state() != ActorState::Stopped);
            table.swept = table.refs.len();
        }
        addr_of(actor)
    }

    /// The actor `addr` names: the one exported under its id, or one that has stopped.
    pub fn resolve(&self, addr: RefAddr) -> AnyRef {
        if let Some(actor) = self.table().refs.get(&addr.id) {
            return actor.clone();
        }
        AnyRef::remote(Arc::new(DeadRef::new(addr, self.dead_letters.get().cloned())))
    }

    /// How many references are remembered.
    pub fn len(&self) -> usize {
        self.table().refs.len()
    }

    /// Whether no reference is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The address of a local actor.
pub fn addr_of(actor: &AnyRef) -> RefAddr {
    RefAddr { node: None, id: actor.id().as_u64(), name: actor.name().map(str::to_owned), placement: actor.placement() }
}

/// Which side of a link the references are on.
enum Refs {
    /// This side owns the actors.
    Owner(Arc<Exports>),
    /// This side reaches them through calls.
    Borrower(Arc<dyn Caller>),
}

/// The handles of one side of one link: references as [`Exports`] or [`ProxyRef`]s,
/// buffers lent and borrowed (see the module docs).
pub struct LinkHandles {
    refs: Refs,
    buffers: Lending,
}

struct Lending {
    /// Where buffers that arrive as copies land.
    arena: Arena,
    /// Buffers lent to the peer, by lend id.
    lent: Mutex<HashMap<u64, Buffer>>,
    next_lend: AtomicU64,
    /// The segments (by local id) whose memfd each socket has carried to the peer.
    sent: [Mutex<HashSet<u64>>; 2],
    /// The peer's segments mapped here, by the peer's id.
    mapped: Mutex<HashMap<u64, ForeignSegment>>,
    /// Tells the peer that this side is done with one of its lends. Borrowed buffers
    /// hold it weakly: once the link is gone, there is no one to tell.
    release: OnceLock<Arc<dyn Fn(u64) + Send + Sync>>,
}

impl LinkHandles {
    /// The handles of the side that owns the actors (`exports`: the runtime's table).
    pub fn owner(exports: Arc<Exports>, arena: Arena) -> LinkHandles {
        LinkHandles { refs: Refs::Owner(exports), buffers: Lending::new(arena) }
    }

    /// The handles of the side whose references call through `caller`.
    pub fn borrower(caller: Arc<dyn Caller>, arena: Arena) -> LinkHandles {
        LinkHandles { refs: Refs::Borrower(caller), buffers: Lending::new(arena) }
    }

    /// Sets how this side tells the peer it is done with a buffer the peer lent
    /// (usually a frame on the control socket). Called from whichever thread drops the
    /// last handle.
    pub fn set_release(&self, release: impl Fn(u64) + Send + Sync + 'static) {
        let _ = self.buffers.release.set(Arc::new(release));
    }

    /// The peer is done with lend `lend`: drops this side's handle to it.
    pub fn released(&self, lend: u64) {
        let buffer = lock(&self.buffers.lent).remove(&lend);
        drop(buffer);
    }

    /// Drops every lend and every mapping of this link (its peer has gone).
    pub fn close(&self) {
        let lent = std::mem::take(&mut *lock(&self.buffers.lent));
        drop(lent);
        lock(&self.buffers.mapped).clear();
    }

    /// How many buffers are lent to the peer.
    pub fn lent(&self) -> usize {
        lock(&self.buffers.lent).len()
    }

    /// The reference `addr` names, on the borrower's side.
    pub fn import(&self, addr: RefAddr) -> AnyRef {
        match &self.refs {
            Refs::Borrower(caller) => AnyRef::remote(Arc::new(ProxyRef::new(addr, Arc::clone(caller)))),
            Refs::Owner(exports) => exports.resolve(addr),
        }
    }
}

impl Lending {
    fn new(arena: Arena) -> Lending {
        Lending {
            arena,
            lent: Mutex::default(),
            next_lend: AtomicU64::new(1),
            sent: [Mutex::default(), Mutex::default()],
            mapped: Mutex::default(),
            release: OnceLock::new(),
        }
    }

    fn encode(&self, buffer: &Buffer) -> Result<BufferAddr, String> {
        let segment = buffer.segment();
        let Some(fd) = segment.fd() else {
            return Ok(BufferAddr::Bytes(buffer.as_slice().to_vec()));
        };
        let id = segment.id();
        let fd_index = OUTGOING.with(|out| -> Result<Option<u8>, String> {
            let mut out = out.borrow_mut();
            let Some((channel, fds)) = out.as_mut() else {
                return Err("a buffer can only be sent in a frame of a link".into());
            };
            if !lock(&self.sent[*channel as usize]).insert(id) {
                return Ok(None);
            }
            if fds.len() >= MAX_FDS {
                lock(&self.sent[*channel as usize]).remove(&id);
                return Err(format!("more than {MAX_FDS} new shared-memory segments in one message"));
            }
            fds.push(fd.try_clone_to_owned().map_err(|e| format!("cannot share a segment: {e}"))?);
            Ok(Some(u8::try_from(fds.len() - 1).unwrap_or(u8::MAX)))
        })?;
        let lend = self.next_lend.fetch_add(1, Ordering::Relaxed);
        lock(&self.lent).insert(lend, buffer.clone());
        Ok(BufferAddr::Lent {
            lend,
            segment: id,
            fd: fd_index,
            offset: buffer.segment_offset() as u64,
            len: buffer.len() as u64,
        })
    }

    fn decode(&self, addr: BufferAddr) -> Result<Buffer, String> {
        let (lend, segment, fd, offset, len) = match addr {
            BufferAddr::Bytes(bytes) => {
                return self.arena.copy_from(&bytes).map_err(|e| format!("cannot receive a buffer: {e}"));
            }
            BufferAddr::Lent { lend, segment, fd, offset, len } => (lend, segment, fd, offset, len),
        };
        let mapped = {
            let mut mapped = lock(&self.mapped);
            if let Some(index) = fd {
                let owned = INCOMING.with(|fds| fds.borrow_mut().get_mut(usize::from(index)).and_then(Option::take));
                let owned =
                    owned.ok_or_else(|| format!("segment {segment}'s descriptor {index} is not in the frame"))?;
                if let std::collections::hash_map::Entry::Vacant(slot) = mapped.entry(segment) {
                    slot.insert(ForeignSegment::map(owned).map_err(|e| format!("cannot map a shared buffer: {e}"))?);
                }
            }
            mapped
                .get(&segment)
                .cloned()
                .ok_or_else(|| format!("a buffer of segment {segment}, which never arrived"))?
        };
        let offset = usize::try_from(offset).map_err(|e| e.to_string())?;
        let len = usize::try_from(len).map_err(|e| e.to_string())?;
        let release: Weak<dyn Fn(u64) + Send + Sync> = match self.release.get() {
            Some(release) => Arc::downgrade(release),
            None => Weak::<fn(u64)>::new(),
        };
        mapped
            .buffer(offset, len, move || {
                if let Some(release) = release.upgrade() {
                    release(lend);
                }
            })
            .map_err(|e| format!("a malformed shared buffer: {e}"))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Handles for LinkHandles {
    fn encode_ref(&self, actor: &AnyRef) -> Result<RefAddr, String> {
        match &self.refs {
            Refs::Owner(exports) => Ok(exports.export(actor)),
            Refs::Borrower(_) => {
                let remote = actor.as_remote().ok_or_else(|| format!("{actor:?} cannot be sent across this link"))?;
                if let Some(proxy) = remote.as_any().downcast_ref::<ProxyRef>() {
                    return Ok(proxy.addr().clone());
                }
                // A reference to an actor that is gone still names it.
                Ok(addr_of(actor))
            }
        }
    }

    fn decode_ref(&self, addr: RefAddr) -> Result<AnyRef, String> {
        Ok(self.import(addr))
    }

    fn encode_buffer(&self, buffer: &Buffer) -> Result<BufferAddr, String> {
        self.buffers.encode(buffer)
    }

    fn decode_buffer(&self, addr: BufferAddr) -> Result<Buffer, String> {
        self.buffers.decode(addr)
    }
}

impl std::fmt::Debug for Exports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exports").field("refs", &self.len()).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LinkHandles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkHandles").field("lent", &self.lent()).finish_non_exhaustive()
    }
}
