//! Proptest strategies for [`Value`] (feature `proptest`), shared by the workspace's
//! tests.

use num_bigint::{BigInt, Sign};
use proptest::prelude::*;

use crate::Value;

/// Integers of every size: small ones and ones far beyond 64 bits, both signs.
pub fn any_int() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Int),
        (any::<bool>(), prop::collection::vec(any::<u32>(), 1..6)).prop_map(|(negative, digits)| {
            let sign = if negative { Sign::Minus } else { Sign::Plus };
            Value::int(BigInt::new(sign, digits) * BigInt::from(u64::MAX))
        }),
    ]
}

/// Every scalar kind except pickles.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any_int(),
        any::<f64>().prop_map(Value::Float),
        any::<String>().prop_map(Value::Str),
        any::<Vec<u8>>().prop_map(Value::Bytes),
    ]
}

/// Every kind of value, nested up to four levels, as Rust can build them (dicts and
/// sets may hold duplicate or unhashable elements, pickles are arbitrary bytes).
pub fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![6 => scalar(), 1 => any::<Vec<u8>>().prop_map(Value::Pickled)];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Tuple),
            prop::collection::vec((inner.clone(), inner.clone()), 0..8).prop_map(Value::Dict),
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Set),
            prop::collection::vec(inner, 0..8).prop_map(Value::FrozenSet),
        ]
    })
}

/// Values that survive a trip through Python unchanged: as [`any_value`], but set
/// elements and dict keys are distinct strings (Python would merge equal keys such as
/// `1`, `1.0` and `True`, and refuses unhashable ones), and no arbitrary pickles.
pub fn python_value() -> impl Strategy<Value = Value> {
    let leaf = scalar();
    let keys = || prop::collection::btree_set(any::<String>(), 0..6);
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Tuple),
            (keys(), prop::collection::vec(inner, 6))
                .prop_map(|(keys, values)| { Value::Dict(keys.into_iter().map(Value::Str).zip(values).collect()) }),
            keys().prop_map(|keys| Value::Set(keys.into_iter().map(Value::Str).collect())),
            keys().prop_map(|keys| Value::FrozenSet(keys.into_iter().map(Value::Str).collect())),
        ]
    })
}
