//! Actors' states in the cluster's key-value store (`<prefix>_state`, a JetStream
//! key-value bucket made on first use): what a Python actor whose snapshots are kept in
//! the cluster saves after its messages and restores when it starts again, on any node.
//!
//! A state is stored under a key made from the actor's name (names are unique across the
//! cluster). One that fits in a NATS message is the key's value. A larger one is split
//! into parts stored under `<key>.<slot>.<index>`, and the key's value (the *head*) then
//! says which slot holds the parts, how many there are, their length and checksum.
//! The parts of a new state go to the slot the head does not name, and the head is
//! rewritten last: the switch to a new state is one write, so a reader (or a crash)
//! sees the old state or the new one, never a mix. The slot's parts of an earlier,
//! larger state beyond the new count are left (never read).

use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use subactor_core::{Value, codec};

use crate::handles::holds_pickle;
use crate::{Inner, decode_plain, encode_plain};

/// How long one save or load may take before it fails (NATS unreachable).
const STATE_WAIT: Duration = Duration::from_secs(30);

/// What a state's key holds.
#[derive(Debug, Serialize, Deserialize)]
enum Head {
    /// The whole encoded state.
    Whole(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The encoded state in `parts` parts under `<key>.<slot>.<index>`: `len` bytes
    /// whose FNV-1a hash is `checksum`.
    Parts { slot: u8, parts: u32, len: u64, checksum: u64 },
}

/// An actor's name as a key of a bucket (the registry's, the states'): letters, digits
/// and `-` stay; every other
/// byte becomes `_` and two hex digits (so `_` itself is escaped, and the mapping is
/// one to one). The result holds no `.`, which separates a part's key.
pub(crate) fn key_of(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            key.push(char::from(byte));
        } else {
            key.push_str(&format!("_{byte:02x}"));
        }
    }
    if key.is_empty() { "_".into() } else { key }
}

/// FNV-1a, 64 bits: the parts of a state are checked against the head's hash.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

fn part_key(key: &str, slot: u8, index: u32) -> String {
    format!("{key}.{slot}.{index}")
}

const REFUSED_PICKLE: &str = "the state holds pickled objects, which the cluster keeps only if it is trusted \
                              (unpickling runs code): return plain values from snapshot(), or configure the \
                              cluster as trusted";

impl Inner {
    /// The state bucket, opened (or created) on first use.
    async fn states(&self) -> Result<kv::Store, String> {
        let jetstream = async_nats::jetstream::new(self.client.clone());
        let bucket = format!("{}_state", self.config.prefix);
        self.states
            .get_or_try_init(|| crate::open_bucket(&jetstream, &bucket, self.config.urls.len()))
            .await
            .cloned()
            .map_err(|error| format!("the cluster's state bucket is not available (is JetStream enabled?): {error}"))
    }

    /// `Err` once this node has left the cluster (its tasks have ended).
    fn still_in(&self) -> Result<(), String> {
        if self.left.load(std::sync::atomic::Ordering::Acquire) {
            return Err("this node has left the cluster".into());
        }
        Ok(())
    }

    /// Keeps `state` under the actor name `name`.
    pub(crate) fn save_state(&self, name: &str, state: &Value) -> Result<(), String> {
        self.still_in()?;
        if !self.config.trusted && holds_pickle(state) {
            return Err(REFUSED_PICKLE.into());
        }
        let bytes = codec::encode(state).map_err(|error| format!("the state cannot be stored: {error}"))?;
        let key = key_of(name);
        let part_size = self.part_size();
        let save = async {
            let bucket = self.states().await?;
            let put_error = |error: kv::PutError| format!("cannot store the state of {name:?}: {error}");
            if bytes.len() + 64 <= part_size {
                let head = encode_plain(&Head::Whole(bytes))?;
                bucket.put(&key, Bytes::from(head)).await.map_err(put_error)?;
                return Ok(());
            }
            // The slot the head does not name.
            let current =
                bucket.get(&key).await.map_err(|error| format!("cannot read the state of {name:?}: {error}"))?;
            let slot = match current.as_deref().map(decode_plain::<Head>) {
                Some(Ok(Head::Parts { slot: 0, .. })) => 1,
                _ => 0,
            };
            let chunks: Vec<&[u8]> = bytes.chunks(part_size).collect();
            let parts = u32::try_from(chunks.len()).map_err(|_| "the state has too many parts".to_owned())?;
            let puts = chunks.iter().zip(0..parts).map(|(chunk, index)| {
                let bucket = bucket.clone();
                let part = part_key(&key, slot, index);
                let chunk = Bytes::copy_from_slice(chunk);
                async move { bucket.put(&part, chunk).await }
            });
            futures_util::future::try_join_all(puts).await.map_err(put_error)?;
            let head = Head::Parts { slot, parts, len: bytes.len() as u64, checksum: checksum(&bytes) };
            bucket.put(&key, Bytes::from(encode_plain(&head)?)).await.map_err(put_error)?;
            Ok(())
        };
        self.handle.block_on(async {
            tokio::time::timeout(STATE_WAIT, save)
                .await
                .unwrap_or_else(|_| Err(format!("storing the state of {name:?} took more than {STATE_WAIT:?}")))
        })
    }

    /// The state kept under the actor name `name`, if any.
    pub(crate) fn load_state(&self, name: &str) -> Result<Option<Value>, String> {
        self.still_in()?;
        let key = key_of(name);
        let load = async {
            let bucket = self.states().await?;
            // A head rewritten while its parts were read: read again.
            for _ in 0..3 {
                let read_error = |error: kv::EntryError| format!("cannot read the state of {name:?}: {error}");
                let Some(head) = bucket.get(&key).await.map_err(read_error)? else { return Ok(None) };
                let head =
                    decode_plain::<Head>(&head).map_err(|e| format!("the state of {name:?} is malformed: {e}"))?;
                let bytes = match head {
                    Head::Whole(bytes) => bytes,
                    Head::Parts { slot, parts, len, checksum: expected } => {
                        let gets = (0..parts).map(|index| {
                            let bucket = bucket.clone();
                            let part = part_key(&key, slot, index);
                            async move { bucket.get(&part).await }
                        });
                        let got = futures_util::future::try_join_all(gets).await.map_err(read_error)?;
                        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 30));
                        for part in got.into_iter().flatten() {
                            bytes.extend_from_slice(&part);
                        }
                        if bytes.len() as u64 != len || checksum(&bytes) != expected {
                            continue;
                        }
                        bytes
                    }
                };
                let state: Value =
                    codec::decode(&bytes).map_err(|e| format!("the state of {name:?} cannot be decoded: {e}"))?;
                if !self.config.trusted && holds_pickle(&state) {
                    return Err(REFUSED_PICKLE.into());
                }
                return Ok(Some(state));
            }
            Err(format!("the state of {name:?} is torn (its parts do not match its head)"))
        };
        self.handle.block_on(async {
            tokio::time::timeout(STATE_WAIT, load)
                .await
                .unwrap_or_else(|_| Err(format!("reading the state of {name:?} took more than {STATE_WAIT:?}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_one_and_hold_only_what_nats_allows() {
        let names = ["counter", "a.b", "a_2e", "a/b", "über", "", "-x", "a b", "_"];
        let keys: Vec<String> = names.iter().map(|n| key_of(n)).collect();
        let unique: std::collections::HashSet<&String> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "{keys:?}");
        for key in &keys {
            assert!(!key.is_empty());
            assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{key}");
        }
        assert_eq!(key_of("counter"), "counter");
        assert_eq!(key_of("a.b"), "a_2eb");
    }

    #[test]
    fn the_checksum_sees_a_changed_byte() {
        assert_ne!(checksum(b"abc"), checksum(b"abd"));
        assert_eq!(checksum(b""), 0xcbf2_9ce4_8422_2325);
    }
}
