//! `subactor_core::codec::decode`: bytes from another process (or a file, or the
//! network) to a `Value`. Whatever the bytes, it returns a value or an error: no panic,
//! no stack overflow, no allocation out of proportion to the input (libFuzzer's memory
//! limit). A value it returns encodes, and decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use subactor_core::codec;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = codec::decode(data) {
        let bytes = codec::encode(&value).expect("a decoded value encodes");
        let again = codec::decode(&bytes).expect("an encoded value decodes");
        assert_eq!(again, value, "the round trip changed the value");
    }
});
