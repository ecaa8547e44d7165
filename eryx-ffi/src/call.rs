//! The call context (`cx`): a value stack plus the memory that must outlive
//! the canonical-ABI lowering of a call.

use std::alloc::Layout;

use crate::{Value, Wit};

/// One stack slot: a value, or an iterator the bindings are draining.
pub(crate) enum Slot {
    Value(Value),
    ListIter(std::vec::IntoIter<Value>),
    MapIter(std::vec::IntoIter<(Value, Value)>),
}

/// The context of one call through the bindings.
///
/// Created by `wit_dylib_export_start` (or for an import call), passed to
/// every push/pop hook as `cx`, and dropped when the call is over: at
/// `wit_dylib_export_finish` for sync exports, right after `task.return` for
/// async ones. Memory handed out by `pop_string`/`pop_list` and buffers
/// registered with `dealloc_bytes(defer = true)` live until then.
pub struct Call {
    pub(crate) wit: Wit,
    pub(crate) stack: Vec<Slot>,
    /// Owned buffers whose addresses were handed to the bindings.
    pub(crate) keep: Vec<Vec<u8>>,
    /// `cabi_realloc` buffers to free when the call is dropped.
    pub(crate) deferred: Vec<(*mut u8, Layout)>,
}

impl Call {
    pub(crate) fn new(wit: Wit) -> Call {
        Call {
            wit,
            stack: Vec::new(),
            keep: Vec::new(),
            deferred: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, v: Value) {
        self.stack.push(Slot::Value(v));
    }

    pub(crate) fn pop(&mut self) -> Value {
        match self.stack.pop() {
            Some(Slot::Value(v)) => v,
            Some(_) => crate::bug("expected a value on the stack, found an iterator"),
            None => crate::bug("pop from an empty value stack"),
        }
    }

    /// Pops `n` values pushed in order (the last one on top).
    pub(crate) fn pop_n(&mut self, n: usize) -> Vec<Value> {
        if self.stack.len() < n {
            crate::bug("too few values on the stack");
        }
        let start = self.stack.len() - n;
        self.stack
            .drain(start..)
            .map(|s| match s {
                Slot::Value(v) => v,
                _ => crate::bug("expected a value on the stack, found an iterator"),
            })
            .collect()
    }

    pub(crate) fn top_mut(&mut self) -> &mut Slot {
        match self.stack.last_mut() {
            Some(s) => s,
            None => crate::bug("empty value stack"),
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        for (ptr, layout) in self.deferred.drain(..) {
            // SAFETY: registered by `dealloc_bytes(defer = true)`: a live
            // `cabi_realloc` allocation of exactly this layout, freed once.
            unsafe { std::alloc::dealloc(ptr, layout) };
        }
    }
}
