//! How references and buffers cross between nodes: [`ClusterHandles`].
//!
//! A reference travels as its node and id: an actor of this node is remembered in the
//! [`Exports`](subactor_wire::Exports) so that its id resolves again; an actor of another
//! node arrives as a [`NodeRef`](crate::link::NodeRef) that calls that node. Buffers cross
//! by copy (another machine cannot map this one's memory) and arrive as buffers of this
//! runtime's arena.

use std::sync::{Arc, Weak};

use subactor_arena::{Arena, Buffer};
use subactor_core::codec::{BufferAddr, Handles, RefAddr};
use subactor_core::{AnyRef, Value};
use subactor_wire::Exports;

use crate::Inner;

/// The handles of a node's frames.
pub(crate) struct ClusterHandles {
    pub(crate) node: String,
    pub(crate) exports: Arc<Exports>,
    pub(crate) arena: Arena,
    pub(crate) cluster: Weak<Inner>,
}

impl Handles for ClusterHandles {
    fn encode_ref(&self, actor: &AnyRef) -> Result<RefAddr, String> {
        if let Some(node) = actor.node() {
            let node = node.to_owned();
            return Ok(RefAddr {
                node: Some(node),
                id: actor.id().as_u64(),
                name: actor.name().map(str::to_owned),
                placement: actor.placement(),
            });
        }
        if actor.as_remote().is_some() {
            // A reference to an actor that is gone, or of a process actor's parent:
            // nothing another node could reach.
            return Err(format!("{actor:?} cannot be sent to another node"));
        }
        let mut addr = self.exports.export(actor);
        addr.node = Some(self.node.clone());
        Ok(addr)
    }

    fn decode_ref(&self, addr: RefAddr) -> Result<AnyRef, String> {
        match addr.node.as_deref() {
            None => Err("a reference without a node".into()),
            Some(node) if node == self.node => Ok(self.exports.resolve(addr)),
            Some(_) => {
                let cluster = self.cluster.upgrade().ok_or("the cluster has been left")?;
                Ok(cluster.remote_ref(addr))
            }
        }
    }

    fn encode_buffer(&self, buffer: &Buffer) -> Result<BufferAddr, String> {
        Ok(BufferAddr::Bytes(buffer.as_slice().to_vec()))
    }

    fn decode_buffer(&self, addr: BufferAddr) -> Result<Buffer, String> {
        match addr {
            BufferAddr::Bytes(bytes) => {
                self.arena.copy_from(&bytes).map_err(|e| format!("cannot receive a buffer: {e}"))
            }
            BufferAddr::Lent { .. } => Err("a buffer lent by another node cannot be mapped here".into()),
        }
    }
}

/// Whether `value` holds a pickled object anywhere (refused from other nodes unless the
/// cluster is trusted: unpickling runs code).
pub(crate) fn holds_pickle(value: &Value) -> bool {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Pickled(_) => return true,
            Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
                stack.extend(items);
            }
            Value::Dict(pairs) => {
                for (k, v) in pairs {
                    stack.push(k);
                    stack.push(v);
                }
            }
            _ => {}
        }
    }
    false
}
