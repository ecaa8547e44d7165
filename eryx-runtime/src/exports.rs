//! The exports of the sandbox world, on Python.
//!
//! [`world`] (generated from `wit/sandbox.wit` by `cargo xtask codegen`)
//! defines the types, the [`world::Exports`] trait and the dispatcher; this
//! module implements the trait with [`crate::python`]. Each export is async
//! in the WIT; `eryx-ffi` runs it to completion and hands its result to
//! `task.return`.

use eryx_ffi::{ExportFunc, Interpreter, Value, Wit};

use crate::python::{Failure, Python};
use crate::world::{self, Error, ExecuteOptions, Output, StateSnapshot};

/// The interpreter type registered with [`eryx_ffi::export!`].
pub struct Runtime;

/// The interpreter, started on first use; a failed start-up is the `init` error.
fn python() -> Result<Python, Error> {
    Python::get().map_err(|f| Error::Init(f.message().to_string()))
}

/// A runtime failure as the WIT's `internal` error, naming the export.
fn internal(export: &str) -> impl FnOnce(Failure) -> Error + '_ {
    move |f| Error::Internal([export, ": ", f.message()].concat())
}

impl world::Exports for Runtime {
    fn execute(code: String, options: ExecuteOptions) -> Result<Output, Error> {
        python()?
            .execute(&code, &options)
            .map_err(internal("execute"))
    }

    fn snapshot_state(skip_unpicklable: bool) -> Result<StateSnapshot, Error> {
        python()?
            .snapshot(skip_unpicklable)
            .map_err(internal("snapshot-state"))?
            .map_err(Error::Unpicklable)
    }

    fn restore_state(data: Vec<u8>) -> Result<(), Error> {
        python()?
            .restore(&data)
            .map_err(internal("restore-state"))?
            .map_err(Error::Snapshot)
    }

    fn clear_state() {
        if let Ok(py) = Python::get()
            && let Err(f) = py.clear()
        {
            eryx_ffi::bug(&["clear-state: ", f.message()].concat());
        }
    }
}

impl Interpreter for Runtime {
    fn initialize(wit: Wit) {
        world::check(wit);
    }

    fn call_export(func: ExportFunc, args: Vec<Value>) -> Option<Value> {
        world::call::<Runtime>(func.name(), args)
    }
}
