//! How live handles cross a link: the two sides' [`Handles`].
//!
//! The side that owns the actors ([`Exports`]: a process actor's parent) sends each
//! reference as its actor's id and remembers it, so that the id it gets back resolves
//! to the same actor; an id it does not know (any more) resolves to a [`DeadRef`]. The
//! other side ([`Imports`]: the child) turns each id into a [`ProxyRef`] whose every
//! operation is a call across the link.
//!
//! Arena buffers cross as copies of their bytes and arrive as buffers of the receiving
//! side's arena.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use subactor_arena::{Arena, Buffer};
use subactor_core::codec::{BufferAddr, Handles, RefAddr};
use subactor_core::{ActorState, AnyRef, DeadLetters};

use crate::proxy::{Caller, DeadRef, ProxyRef};

fn buffer_out(buffer: &Buffer) -> BufferAddr {
    BufferAddr::Bytes(buffer.as_slice().to_vec())
}

fn buffer_in(arena: &Arena, addr: BufferAddr) -> Result<Buffer, String> {
    match addr {
        BufferAddr::Bytes(bytes) => arena.copy_from(&bytes).map_err(|e| format!("cannot receive a buffer: {e}")),
    }
}

fn addr_of(actor: &AnyRef) -> RefAddr {
    RefAddr { id: actor.id().as_u64(), name: actor.name().map(str::to_owned), placement: actor.placement() }
}

/// The handles of the side that owns the actors: references sent are remembered by id.
pub struct Exports {
    table: Mutex<Table>,
    dead_letters: OnceLock<Arc<DeadLetters>>,
    arena: Arena,
}

struct Table {
    refs: HashMap<u64, AnyRef>,
    /// The table's size after its last sweep of stopped actors.
    swept: usize,
}

impl Exports {
    /// Handles whose buffers arrive in `arena`.
    pub fn new(arena: Arena) -> Exports {
        Exports { table: Mutex::new(Table { refs: HashMap::new(), swept: 0 }), dead_letters: OnceLock::new(), arena }
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

    /// How many references are remembered.
    pub fn len(&self) -> usize {
        self.table().refs.len()
    }

    /// Whether no reference is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Handles for Exports {
    fn encode_ref(&self, actor: &AnyRef) -> Result<RefAddr, String> {
        Ok(self.export(actor))
    }

    fn decode_ref(&self, addr: RefAddr) -> Result<AnyRef, String> {
        if let Some(actor) = self.table().refs.get(&addr.id) {
            return Ok(actor.clone());
        }
        Ok(AnyRef::remote(Arc::new(DeadRef::new(addr, self.dead_letters.get().cloned()))))
    }

    fn encode_buffer(&self, buffer: &Buffer) -> Result<BufferAddr, String> {
        Ok(buffer_out(buffer))
    }

    fn decode_buffer(&self, addr: BufferAddr) -> Result<Buffer, String> {
        buffer_in(&self.arena, addr)
    }
}

/// The handles of the side that reaches the other's actors through calls.
pub struct Imports {
    caller: Arc<dyn Caller>,
    arena: Arena,
}

impl Imports {
    /// Handles whose references call through `caller`, and whose buffers arrive in
    /// `arena`.
    pub fn new(caller: Arc<dyn Caller>, arena: Arena) -> Imports {
        Imports { caller, arena }
    }

    /// The reference `addr` names.
    pub fn import(&self, addr: RefAddr) -> AnyRef {
        AnyRef::remote(Arc::new(ProxyRef::new(addr, Arc::clone(&self.caller))))
    }
}

impl Handles for Imports {
    fn encode_ref(&self, actor: &AnyRef) -> Result<RefAddr, String> {
        let remote = actor.as_remote().ok_or_else(|| format!("{actor:?} cannot be sent across this link"))?;
        if let Some(proxy) = remote.as_any().downcast_ref::<ProxyRef>() {
            return Ok(proxy.addr().clone());
        }
        // A reference to an actor that is gone still names it.
        Ok(addr_of(actor))
    }

    fn decode_ref(&self, addr: RefAddr) -> Result<AnyRef, String> {
        Ok(self.import(addr))
    }

    fn encode_buffer(&self, buffer: &Buffer) -> Result<BufferAddr, String> {
        Ok(buffer_out(buffer))
    }

    fn decode_buffer(&self, addr: BufferAddr) -> Result<Buffer, String> {
        buffer_in(&self.arena, addr)
    }
}

impl std::fmt::Debug for Exports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exports").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Imports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imports").finish_non_exhaustive()
    }
}
