//! [`Value`]: what crosses from one actor (and one interpreter) to another.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, Hash};

use num_bigint::BigInt;
use serde::{Deserialize, Deserializer, Serialize};

use subactor_arena::Buffer;

use crate::{AnyRef, Down};

/// The deepest nesting of containers a [`Value`] may have.
///
/// Converting a Python object nested deeper than this, or decoding such a value, is an
/// error rather than a stack overflow.
pub const MAX_DEPTH: usize = 512;

/// A value that travels between actors.
///
/// Every variant mirrors a Python built-in type, so a value sent by one interpreter
/// becomes a fresh object of the same type in the receiving one. No Python object ever
/// crosses interpreters: only `Value`s do. A `Value` is plain data (serde-serialisable),
/// so the same value can later cross a process or machine boundary unchanged; see
/// [`crate::codec`].
///
/// Python objects of other types travel as [`Value::Pickled`]: pickled by the sender,
/// unpickled by the receiver.
///
/// # Equality
///
/// `==` is structural, with two rules chosen so that a value always equals its own
/// round trip: floats compare by bit pattern (`NaN == NaN`, `0.0 != -0.0`), and dicts
/// and sets compare as unordered collections. An `Int` equals a `BigInt` of the same
/// number.
///
/// # Example
///
/// ```
/// use subactor_core::Value;
///
/// let v = Value::from(("job", 7, vec![1.5, 2.5]));
/// assert_eq!(v.kind(), "tuple");
/// let (name, n, xs): (String, i64, Vec<f64>) = v.try_into()?;
/// assert_eq!((name.as_str(), n, xs.len()), ("job", 7, 2));
/// # Ok::<(), subactor_core::ValueError>(())
/// ```
#[derive(Clone, Serialize, Deserialize)]
pub enum Value {
    /// Python's `None`.
    None,
    /// `bool`.
    Bool(bool),
    /// An `int` that fits in 64 bits.
    Int(i64),
    /// An `int` of any size. Values that fit in an `i64` are normally [`Value::Int`];
    /// the conversions produce the smallest form.
    BigInt(BigInt),
    /// `float`.
    Float(f64),
    /// `str`.
    Str(String),
    /// `bytes`.
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    /// `list`.
    List(#[serde(deserialize_with = "nested")] Vec<Value>),
    /// `tuple`.
    Tuple(#[serde(deserialize_with = "nested")] Vec<Value>),
    /// `dict`, as key-value pairs in insertion order.
    Dict(#[serde(deserialize_with = "nested")] Vec<(Value, Value)>),
    /// `set`, elements in iteration order.
    Set(#[serde(deserialize_with = "nested")] Vec<Value>),
    /// `frozenset`, elements in iteration order.
    FrozenSet(#[serde(deserialize_with = "nested")] Vec<Value>),
    /// Any other picklable Python object, as produced by `pickle.dumps`.
    Pickled(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A reference to an actor: arrives in Python as a usable `subactor.ActorRef`. Live
    /// references belong to their process; [`crate::codec`] refuses to encode them.
    Actor(AnyRef),
    /// An immutable buffer of the shared-memory arena: crosses actors without a copy and
    /// arrives in Python as a read-only `subactor.Buffer`. Like an actor reference, it is
    /// a live handle; [`crate::codec`] refuses to encode it (copy it into
    /// [`Value::Bytes`] to serialise the contents).
    Buffer(#[serde(with = "live_buffer")] Buffer),
    /// A monitored actor has stopped: what a monitoring Python actor receives (as a
    /// `subactor.Down`), see [`AnyRef::monitor_by`](crate::AnyRef::monitor_by).
    Down(Box<Down>),
}

/// Serde for [`Value::Buffer`]: a live handle never becomes bytes implicitly; a link
/// encodes it as its [`Handles`](crate::codec::Handles) say.
mod live_buffer {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use subactor_arena::Buffer;

    use crate::codec::{BufferAddr, current_handles};

    pub(super) fn serialize<S: Serializer>(buffer: &Buffer, serializer: S) -> Result<S::Ok, S::Error> {
        match current_handles() {
            Some(handles) => handles.encode_buffer(buffer).map_err(serde::ser::Error::custom)?.serialize(serializer),
            None => Err(serde::ser::Error::custom(format!(
                "an arena buffer ({} bytes) is a live handle and cannot be serialised out of its process",
                buffer.len()
            ))),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Buffer, D::Error> {
        let Some(handles) = current_handles() else {
            return Err(serde::de::Error::custom("arena buffers cannot be deserialised"));
        };
        let addr = BufferAddr::deserialize(deserializer)?;
        handles.decode_buffer(addr).map_err(serde::de::Error::custom)
    }
}

impl Value {
    /// The name of this value's Python type (`"int"` for both integer variants,
    /// `"pickle"` for a pickled object).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Set(_) => "set",
            Value::FrozenSet(_) => "frozenset",
            Value::Pickled(_) => "pickle",
            Value::Actor(_) => "ActorRef",
            Value::Buffer(_) => "Buffer",
            Value::Down(_) => "Down",
        }
    }

    /// How deeply containers nest in this value: 0 for a scalar, 1 for a flat list.
    pub fn depth(&self) -> usize {
        // An explicit stack, so that measuring a value never overflows the call stack.
        let mut deepest = 0;
        let mut stack = vec![(self, 0usize)];
        while let Some((value, depth)) = stack.pop() {
            deepest = deepest.max(depth);
            match value {
                Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
                    deepest = deepest.max(depth + 1);
                    stack.extend(items.iter().map(|item| (item, depth + 1)));
                }
                Value::Dict(pairs) => {
                    deepest = deepest.max(depth + 1);
                    for (key, value) in pairs {
                        stack.push((key, depth + 1));
                        stack.push((value, depth + 1));
                    }
                }
                _ => {}
            }
        }
        deepest
    }

    /// Builds an integer value, in its smallest form.
    pub fn int(n: impl Into<BigInt>) -> Value {
        let n = n.into();
        match i64::try_from(&n) {
            Ok(small) => Value::Int(small),
            Err(_) => Value::BigInt(n),
        }
    }

    /// Builds a [`Value::Bytes`].
    pub fn bytes(bytes: impl Into<Vec<u8>>) -> Value {
        Value::Bytes(bytes.into())
    }

    /// Builds a [`Value::Dict`] from key-value pairs.
    pub fn dict<K: Into<Value>, V: Into<Value>>(pairs: impl IntoIterator<Item = (K, V)>) -> Value {
        Value::Dict(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// The value as an `i64`, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::BigInt(n) => i64::try_from(n).ok(),
            _ => None,
        }
    }

    /// The value as a `&str`, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is [`Value::None`].
    pub fn is_none(&self) -> bool {
        matches!(self, Value::None)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Python-like `repr`, which is what users read in logs and errors.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn seq(f: &mut fmt::Formatter<'_>, items: &[Value], open: &str, close: &str) -> fmt::Result {
            f.write_str(open)?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(close)
        }
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(n) => write!(f, "{n}"),
            Value::BigInt(n) => write!(f, "{n}"),
            Value::Float(x) if x.is_nan() => f.write_str("nan"),
            Value::Float(x) if x.is_infinite() => f.write_str(if *x > 0.0 { "inf" } else { "-inf" }),
            Value::Float(x) if x.fract() == 0.0 && x.abs() < 1e16 => write!(f, "{x:.1}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => write!(f, "b{:?}", String::from_utf8_lossy(b)),
            Value::List(items) => seq(f, items, "[", "]"),
            Value::Tuple(items) if items.len() == 1 => write!(f, "({},)", items[0]),
            Value::Tuple(items) => seq(f, items, "(", ")"),
            Value::Dict(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Value::Set(items) if items.is_empty() => f.write_str("set()"),
            Value::Set(items) => seq(f, items, "{", "}"),
            Value::FrozenSet(items) => seq(f, items, "frozenset({", "})"),
            Value::Pickled(b) => write!(f, "<pickled object, {} bytes>", b.len()),
            Value::Actor(actor) => write!(f, "{actor:?}"),
            Value::Buffer(b) => write!(f, "<Buffer, {} bytes>", b.len()),
            Value::Down(down) => write!(f, "<Down {} {}>", down.id, down.reason),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::None, Value::None) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::BigInt(a), Value::BigInt(b)) => a == b,
            (Value::Int(a), Value::BigInt(b)) | (Value::BigInt(b), Value::Int(a)) => BigInt::from(*a) == *b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) | (Value::Pickled(a), Value::Pickled(b)) => a == b,
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => a == b,
            (Value::Set(a), Value::Set(b)) | (Value::FrozenSet(a), Value::FrozenSet(b)) => same_elements(a, b),
            (Value::Dict(a), Value::Dict(b)) => same_elements(a, b),
            (Value::Actor(a), Value::Actor(b)) => a == b,
            (Value::Buffer(a), Value::Buffer(b)) => a == b,
            (Value::Down(a), Value::Down(b)) => a == b,
            _ => false,
        }
    }
}

/// Whether two slices hold the same elements, in any order (a multiset comparison).
fn same_elements<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut used = vec![false; b.len()];
    a.iter().all(|x| {
        let found = b.iter().enumerate().find(|(i, y)| !used[*i] && x == *y).map(|(i, _)| i);
        found.map(|i| used[i] = true).is_some()
    })
}

thread_local! {
    static DECODE_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Deserialises a container, refusing to nest deeper than [`MAX_DEPTH`] so that hostile
/// input cannot overflow the stack.
fn nested<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Exit;
    impl Drop for Exit {
        fn drop(&mut self) {
            DECODE_DEPTH.with(|d| d.set(d.get() - 1));
        }
    }
    let depth = DECODE_DEPTH.with(|d| {
        d.set(d.get() + 1);
        d.get()
    });
    let _exit = Exit;
    if depth > MAX_DEPTH {
        return Err(serde::de::Error::custom(format!("value nests deeper than {MAX_DEPTH} containers")));
    }
    T::deserialize(deserializer)
}

/// A [`Value`] could not be turned into the Rust type asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, found {found}")]
pub struct ValueError {
    /// What the conversion wanted.
    pub expected: &'static str,
    /// The Python type of the value it got (or why the value did not fit).
    pub found: String,
}

/// Converting a `Value` into a `Value` cannot fail; this lets tuples and vectors hold
/// plain `Value`s.
impl From<std::convert::Infallible> for ValueError {
    fn from(never: std::convert::Infallible) -> ValueError {
        match never {}
    }
}

impl ValueError {
    fn new(expected: &'static str, value: &Value) -> ValueError {
        ValueError { expected, found: value.kind().to_owned() }
    }
}

// ---- Rust -> Value ----------------------------------------------------------------

impl From<()> for Value {
    /// `()` is the empty tuple, as in Python.
    fn from((): ()) -> Value {
        Value::Tuple(Vec::new())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

macro_rules! from_small_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Value {
                Value::Int(i64::from(n))
            }
        }
    )*};
}
from_small_int!(i8, i16, i32, i64, u8, u16, u32);

macro_rules! from_wide_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Value {
                Value::int(n)
            }
        }
    )*};
}
from_wide_int!(u64, i128, u128, isize, usize, BigInt);

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float(x)
    }
}

impl From<f32> for Value {
    fn from(x: f32) -> Value {
        Value::Float(f64::from(x))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<Buffer> for Value {
    fn from(buffer: Buffer) -> Value {
        Value::Buffer(buffer)
    }
}

impl From<&[u8]> for Value {
    /// A byte slice becomes `bytes` (a `Vec<u8>` becomes a `list` of ints; use
    /// [`Value::bytes`] for those).
    fn from(b: &[u8]) -> Value {
        Value::Bytes(b.to_vec())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::None, Into::into)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Value {
        Value::List(items.into_iter().map(Into::into).collect())
    }
}

impl<K: Into<Value>, V: Into<Value>, S> From<HashMap<K, V, S>> for Value {
    fn from(map: HashMap<K, V, S>) -> Value {
        Value::dict(map)
    }
}

impl<K: Into<Value>, V: Into<Value>> From<BTreeMap<K, V>> for Value {
    fn from(map: BTreeMap<K, V>) -> Value {
        Value::dict(map)
    }
}

impl<T: Into<Value>, S> From<HashSet<T, S>> for Value {
    fn from(set: HashSet<T, S>) -> Value {
        Value::Set(set.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Value>> From<BTreeSet<T>> for Value {
    fn from(set: BTreeSet<T>) -> Value {
        Value::Set(set.into_iter().map(Into::into).collect())
    }
}

macro_rules! tuples {
    ($(($($name:ident),+)),+) => {$(
        impl<$($name: Into<Value>),+> From<($($name,)+)> for Value {
            #[allow(non_snake_case)]
            fn from(($($name,)+): ($($name,)+)) -> Value {
                Value::Tuple(vec![$($name.into()),+])
            }
        }

        impl<$($name: TryFrom<Value>),+> TryFrom<Value> for ($($name,)+)
        where
            $(ValueError: From<<$name as TryFrom<Value>>::Error>,)+
        {
            type Error = ValueError;
            #[allow(non_snake_case)]
            fn try_from(value: Value) -> Result<Self, ValueError> {
                const LEN: usize = [$(stringify!($name)),+].len();
                match value {
                    Value::Tuple(items) | Value::List(items) if items.len() == LEN => {
                        let mut items = items.into_iter();
                        $(let $name = $name::try_from(items.next().unwrap_or(Value::None)).map_err(ValueError::from)?;)+
                        Ok(($($name,)+))
                    }
                    other => Err(ValueError {
                        expected: concat!("a sequence of ", stringify!($($name),+)),
                        found: describe_len(&other),
                    }),
                }
            }
        }
    )+};
}
tuples!((A), (A, B), (A, B, C), (A, B, C, D), (A, B, C, D, E), (A, B, C, D, E, F));

fn describe_len(value: &Value) -> String {
    match value {
        Value::Tuple(items) | Value::List(items) => {
            format!("{} of length {}", value.kind(), items.len())
        }
        _ => value.kind().to_owned(),
    }
}

// ---- Value -> Rust ----------------------------------------------------------------

impl TryFrom<Value> for bool {
    type Error = ValueError;
    fn try_from(value: Value) -> Result<bool, ValueError> {
        match value {
            Value::Bool(b) => Ok(b),
            other => Err(ValueError::new("bool", &other)),
        }
    }
}

impl TryFrom<Value> for BigInt {
    type Error = ValueError;
    fn try_from(value: Value) -> Result<BigInt, ValueError> {
        match value {
            Value::Int(n) => Ok(BigInt::from(n)),
            Value::BigInt(n) => Ok(n),
            other => Err(ValueError::new("int", &other)),
        }
    }
}

macro_rules! try_into_int {
    ($($t:ty),*) => {$(
        impl TryFrom<Value> for $t {
            type Error = ValueError;
            fn try_from(value: Value) -> Result<$t, ValueError> {
                let expected = concat!("an int that fits in ", stringify!($t));
                match &value {
                    Value::Int(n) => <$t>::try_from(*n).map_err(|_| ValueError { expected, found: n.to_string() }),
                    Value::BigInt(n) => <$t>::try_from(n).map_err(|_| ValueError { expected, found: n.to_string() }),
                    other => Err(ValueError::new(expected, other)),
                }
            }
        }
    )*};
}
try_into_int!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

impl TryFrom<Value> for f64 {
    type Error = ValueError;
    /// Floats, and ints that convert exactly.
    fn try_from(value: Value) -> Result<f64, ValueError> {
        match value {
            Value::Float(x) => Ok(x),
            #[allow(clippy::cast_precision_loss)]
            Value::Int(n) if n.unsigned_abs() <= (1 << 53) => Ok(n as f64),
            other => Err(ValueError::new("float", &other)),
        }
    }
}

impl TryFrom<Value> for String {
    type Error = ValueError;
    fn try_from(value: Value) -> Result<String, ValueError> {
        match value {
            Value::Str(s) => Ok(s),
            other => Err(ValueError::new("str", &other)),
        }
    }
}

impl<T: TryFrom<Value, Error = ValueError>> TryFrom<Value> for Option<T> {
    type Error = ValueError;
    fn try_from(value: Value) -> Result<Option<T>, ValueError> {
        match value {
            Value::None => Ok(None),
            other => T::try_from(other).map(Some),
        }
    }
}

impl<T: TryFrom<Value>> TryFrom<Value> for Vec<T>
where
    ValueError: From<T::Error>,
{
    type Error = ValueError;
    /// From a list, tuple, set or frozenset.
    fn try_from(value: Value) -> Result<Vec<T>, ValueError> {
        match value {
            Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
                items.into_iter().map(|item| T::try_from(item).map_err(ValueError::from)).collect()
            }
            other => Err(ValueError::new("a list, tuple or set", &other)),
        }
    }
}

impl<K, V, S> TryFrom<Value> for HashMap<K, V, S>
where
    K: TryFrom<Value, Error = ValueError> + Eq + Hash,
    V: TryFrom<Value, Error = ValueError>,
    S: BuildHasher + Default,
{
    type Error = ValueError;
    fn try_from(value: Value) -> Result<HashMap<K, V, S>, ValueError> {
        match value {
            Value::Dict(pairs) => pairs.into_iter().map(|(k, v)| Ok((K::try_from(k)?, V::try_from(v)?))).collect(),
            other => Err(ValueError::new("dict", &other)),
        }
    }
}

impl<K, V> TryFrom<Value> for BTreeMap<K, V>
where
    K: TryFrom<Value, Error = ValueError> + Ord,
    V: TryFrom<Value, Error = ValueError>,
{
    type Error = ValueError;
    fn try_from(value: Value) -> Result<BTreeMap<K, V>, ValueError> {
        match value {
            Value::Dict(pairs) => pairs.into_iter().map(|(k, v)| Ok((K::try_from(k)?, V::try_from(v)?))).collect(),
            other => Err(ValueError::new("dict", &other)),
        }
    }
}

#[cfg(test)]
mod tests;
