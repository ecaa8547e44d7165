//! The language-neutral values that travel over the value stack.
//!
//! The interpreter converts between these and its own objects; the hooks in
//! [`crate::hooks`] convert between these and the canonical ABI.

use std::{boxed::Box, string::String, vec::Vec};

/// A WIT value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `bool`
    Bool(bool),
    /// `char`
    Char(char),
    /// `u8`
    U8(u8),
    /// `s8`
    S8(i8),
    /// `u16`
    U16(u16),
    /// `s16`
    S16(i16),
    /// `u32`
    U32(u32),
    /// `s32`
    S32(i32),
    /// `u64`
    U64(u64),
    /// `s64`
    S64(i64),
    /// `f32`
    F32(f32),
    /// `f64`
    F64(f64),
    /// `string`
    String(String),
    /// `list<u8>`, kept as bytes (the ABI fast path).
    Bytes(Vec<u8>),
    /// Any other `list<T>`.
    List(Vec<Value>),
    /// A record: its fields in declaration order.
    Record(Vec<Value>),
    /// A tuple: its elements in order.
    Tuple(Vec<Value>),
    /// A variant, `option` (0 = none, 1 = some) or `result` (0 = ok,
    /// 1 = err): the case index and its payload, if the case has one.
    Variant(u32, Option<Box<Value>>),
    /// An enum case index.
    Enum(u32),
    /// A flags bit set.
    Flags(u32),
    /// A resource, future or stream handle.
    Handle(u32),
    /// A `map<K, V>`.
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// `none`.
    pub fn none() -> Value {
        Value::Variant(0, None)
    }

    /// `some(v)`.
    pub fn some(v: Value) -> Value {
        Value::Variant(1, Some(Box::new(v)))
    }

    /// An option from a Rust option.
    pub fn option(v: Option<Value>) -> Value {
        v.map_or_else(Value::none, Value::some)
    }

    /// `ok(v)`, or `ok` without payload for `None`.
    pub fn ok(v: Option<Value>) -> Value {
        Value::Variant(0, v.map(Box::new))
    }

    /// `err(v)`, or `err` without payload for `None`.
    pub fn err(v: Option<Value>) -> Value {
        Value::Variant(1, v.map(Box::new))
    }

    /// A variant case with a payload.
    pub fn case(index: u32, payload: Value) -> Value {
        Value::Variant(index, Some(Box::new(payload)))
    }

    /// The name of this value's shape, for error messages.
    pub fn shape(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool",
            Value::Char(_) => "char",
            Value::U8(_) => "u8",
            Value::S8(_) => "s8",
            Value::U16(_) => "u16",
            Value::S16(_) => "s16",
            Value::U32(_) => "u32",
            Value::S32(_) => "s32",
            Value::U64(_) => "u64",
            Value::S64(_) => "s64",
            Value::F32(_) => "f32",
            Value::F64(_) => "f64",
            Value::String(_) => "string",
            Value::Bytes(_) => "list<u8>",
            Value::List(_) => "list",
            Value::Record(_) => "record",
            Value::Tuple(_) => "tuple",
            Value::Variant(..) => "variant",
            Value::Enum(_) => "enum",
            Value::Flags(_) => "flags",
            Value::Handle(_) => "handle",
            Value::Map(_) => "map",
        }
    }
}
