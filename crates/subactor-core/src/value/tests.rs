use std::collections::{BTreeMap, HashMap};

use num_bigint::BigInt;
use proptest::prelude::*;

use crate::testing::any_value;
use crate::value::MAX_DEPTH;
use crate::{Value, ValueError, codec};

proptest! {
    #[test]
    fn every_value_round_trips_through_the_codec(value in any_value()) {
        let bytes = codec::encode(&value).expect("encode");
        let back = codec::decode(&bytes).expect("decode");
        prop_assert_eq!(back, value);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic(value in any_value(), cut in 0usize..64) {
        let bytes = codec::encode(&value).expect("encode");
        if cut < bytes.len() {
            prop_assert!(codec::decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn integers_take_their_smallest_form(n in any::<i128>()) {
        let v = Value::from(n);
        match (&v, i64::try_from(n)) {
            (Value::Int(small), Ok(expected)) => prop_assert_eq!(*small, expected),
            (Value::BigInt(big), Err(_)) => prop_assert_eq!(big, &BigInt::from(n)),
            _ => prop_assert!(false, "{n} became {v:?}"),
        }
        prop_assert_eq!(i128::try_from(v).expect("fits"), n);
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = codec::encode(&Value::from(1)).expect("encode");
    bytes.push(0);
    assert!(matches!(codec::decode(&bytes), Err(codec::CodecError::TrailingBytes { extra: 1 })));
}

/// A length prefix that claims more bytes than the input holds (here ~145 PB, and
/// `u64::MAX`) is an error, for every string and byte string a value can hold. bincode's
/// owned decoding allocates the claimed length before reading: a 10-byte message used to
/// abort the receiving process (found by the `codec_decode` fuzz target).
#[test]
fn a_length_prefix_longer_than_the_input_is_an_error() {
    let claims: [&[u8]; 2] = [
        &[253, 0xff, 0xff, 0x02, 0xff, 0xff, 0xff, 0x05, 0x02],
        &[253, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    ];
    // Str, Bytes, Pickled; a Down's name; a Down's StartFailed, Panicked and Failed reasons.
    let heads: [&[u8]; 6] = [&[5], &[6], &[12], &[15, 7, 1], &[15, 7, 0, 2], &[15, 7, 0, 4]];
    for head in heads {
        for claim in claims {
            let bytes = [head, claim, b"abc"].concat();
            assert!(codec::decode(&bytes).is_err(), "{bytes:?}");
        }
    }
    // The same prefixes with their bytes present decode.
    let fine = [5, 3, b'a', b'b', b'c'];
    assert_eq!(codec::decode(&fine).expect("decode"), Value::from("abc"));
}

/// Every input that ever crashed a fuzz target of the decoder (`fuzz/regressions/`)
/// decodes to an error or to a value that round-trips.
#[test]
fn fuzz_regressions_of_the_decoder() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/codec_decode");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|name| name.to_string_lossy().starts_with('.')) {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        if let Ok(value) = codec::decode(&bytes) {
            let again = codec::encode(&value).expect("encode");
            assert_eq!(codec::decode(&again).expect("decode"), value, "{}", path.display());
        }
        count += 1;
    }
    assert!(count > 0, "no regression inputs in {}", dir.display());
}

#[test]
fn decoding_refuses_hostile_nesting() {
    let mut deep = Value::None;
    for _ in 0..MAX_DEPTH + 1 {
        deep = Value::List(vec![deep]);
    }
    let bytes = codec::encode(&deep).expect("encoding has no depth limit");
    let err = codec::decode(&bytes).expect_err("too deep");
    assert!(err.to_string().contains("deeper than 512"), "{err}");

    // The limit itself is fine, and the depth counter is reset after an error.
    let mut ok = Value::None;
    for _ in 0..MAX_DEPTH {
        ok = Value::List(vec![ok]);
    }
    assert_eq!(ok.depth(), MAX_DEPTH);
    assert_eq!(codec::decode(&codec::encode(&ok).expect("encode")).expect("decode"), ok);
}

#[test]
fn equality_follows_python_where_it_matters() {
    assert_eq!(Value::Float(f64::NAN), Value::Float(f64::NAN));
    assert_ne!(Value::Float(0.0), Value::Float(-0.0));
    assert_eq!(Value::dict([(1, "a"), (2, "b")]), Value::dict([(2, "b"), (1, "a")]));
    assert_eq!(Value::Set(vec![1.into(), 2.into()]), Value::Set(vec![2.into(), 1.into()]));
    assert_ne!(Value::Set(vec![1.into(), 1.into()]), Value::Set(vec![1.into(), 2.into()]));
    assert_ne!(Value::List(vec![1.into(), 2.into()]), Value::List(vec![2.into(), 1.into()]));
    assert_eq!(Value::Int(5), Value::BigInt(BigInt::from(5)));
    assert_ne!(Value::Set(vec![]), Value::FrozenSet(vec![]));
}

#[test]
fn rust_conversions_both_ways() {
    let map: HashMap<String, i64> = [("a".to_owned(), 1)].into_iter().collect();
    let back: HashMap<String, i64> = Value::from(map.clone()).try_into().expect("dict");
    assert_eq!(back, map);

    let tree: BTreeMap<i64, Vec<String>> = [(1, vec!["x".to_owned()])].into_iter().collect();
    let back: BTreeMap<i64, Vec<String>> = Value::from(tree.clone()).try_into().expect("dict");
    assert_eq!(back, tree);

    assert_eq!(Value::from(Some(3)), Value::Int(3));
    assert_eq!(Value::from(None::<i32>), Value::None);
    assert_eq!(Option::<i64>::try_from(Value::None), Ok(None));
    assert_eq!(Value::from(()), Value::Tuple(vec![]));
    assert_eq!(Value::from(&b"ab"[..]), Value::Bytes(b"ab".to_vec()));
    assert_eq!(Value::from(u64::MAX).kind(), "int");
    assert!(matches!(Value::from(u64::MAX), Value::BigInt(_)));
    assert_eq!(f64::try_from(Value::Int(3)), Ok(3.0));

    let err = u8::try_from(Value::Int(300)).expect_err("too big");
    assert_eq!(err, ValueError { expected: "an int that fits in u8", found: "300".to_owned() });
    let err = String::try_from(Value::Int(1)).expect_err("not a str");
    assert_eq!(err.to_string(), "expected str, found int");
    let err = <(i64, i64)>::try_from(Value::from((1, 2, 3))).expect_err("wrong length");
    assert_eq!(err.found, "tuple of length 3");
}

#[test]
fn display_reads_like_python() {
    let v = Value::from((1, "a", 2.0, None::<i64>, true, vec![Value::Bytes(b"x".to_vec())]));
    assert_eq!(v.to_string(), r#"(1, "a", 2.0, None, True, [b"x"])"#);
    assert_eq!(Value::from((1,)).to_string(), "(1,)");
    assert_eq!(Value::Set(vec![]).to_string(), "set()");
}

#[test]
fn a_length_claimed_beyond_the_input_is_an_error_not_an_allocation() {
    // Bytes (variant 6) and a str (variant 5) claiming about 4.5e18 bytes, and a
    // claim just past the input.
    for bytes in [
        &[6u8, 0xfd, 0x40, 0xce, 0x97, 0xf5, 0xa4, 0xa6, 0x4a, 0x3e][..],
        &[5u8, 0xfd, 0x40, 0xce, 0x97, 0xf5, 0xa4, 0xa6, 0x4a, 0x3e][..],
        &[6u8, 0xfb, 0xff, 0xff, 1, 2, 3][..],
    ] {
        assert!(crate::codec::decode(bytes).is_err(), "{bytes:?}");
    }
}
