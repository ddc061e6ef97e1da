//! What a node receives from other nodes over NATS (`subactor_cluster`): network input,
//! possibly hostile. The input is a sequence of messages (each `[length: u16 LE]` then
//! that many bytes; a short tail is the last message), fed in order to one node's
//! decoders as they run on its subjects: frames and their parts put together, batches of
//! calls, answers, acks, heartbeats, registry entries. Whatever the bytes: no panic, no
//! frame longer than what was sent, no memory out of proportion (libFuzzer's limit).
#![no_main]

use libfuzzer_sys::fuzz_target;
use subactor_cluster::fuzzing::Inbound;

fuzz_target!(|data: &[u8]| {
    let mut node = Inbound::default();
    let mut rest = data;
    while !rest.is_empty() {
        let (message, next) = match rest {
            [a, b, tail @ ..] => {
                let len = usize::from(u16::from_le_bytes([*a, *b])).min(tail.len());
                tail.split_at(len)
            }
            tail => (tail, &[][..]),
        };
        node.message(message);
        rest = next;
    }
});
