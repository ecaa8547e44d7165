//! The exports of the sandbox world (`wit/sandbox.wit`), on Python.
//!
//! Each export is async in the WIT; `eryx-ffi` runs it to completion and
//! hands its result to `task.return`. The values are built to match the WIT
//! types (records in field order, the `error` variant's cases by index),
//! and [`Runtime::initialize`] checks the bindings' metadata against those
//! expectations, so a runtime built for another WIT aborts at start instead
//! of returning garbage.

use eryx_ffi::{ExportFunc, Interpreter, Value, Wit};

use crate::python::{Execution, Python};

/// The interpreter type registered with [`eryx_ffi::export!`].
pub struct Runtime;

/// The cases of the WIT `error` variant, in declaration order.
const ERROR_CASES: &[&str] = &["init", "unsupported", "snapshot", "internal"];
const INIT: u32 = 0;
const UNSUPPORTED: u32 = 1;
const INTERNAL: u32 = 3;

/// The exports this runtime implements.
const EXPORTS: &[&str] = &["execute", "snapshot-state", "restore-state", "clear-state"];

fn error(case: u32, msg: String) -> Value {
    Value::err(Some(Value::case(case, Value::String(msg))))
}

fn python() -> Result<Python, Value> {
    Python::get().map_err(|msg| error(INIT, msg))
}

fn execution(e: Execution) -> Value {
    let exception = e.exception.map(|(type_name, message, traceback)| {
        Value::Record(vec![
            Value::String(type_name),
            Value::String(message),
            Value::String(traceback),
        ])
    });
    Value::ok(Some(Value::Record(vec![
        Value::String(e.stdout),
        Value::String(e.stderr),
        Value::option(e.value.map(Value::String)),
        Value::option(exception),
        Value::Bool(e.truncated),
    ])))
}

fn execute(args: Vec<Value>) -> Value {
    let Some(Value::String(code)) = args.into_iter().next() else {
        eryx_ffi::bug("execute: expected one string argument");
    };
    let py = match python() {
        Ok(py) => py,
        Err(e) => return e,
    };
    match py.execute(&code) {
        Ok(e) => execution(e),
        Err(msg) => error(INTERNAL, format!("execute: {msg}")),
    }
}

impl Interpreter for Runtime {
    fn initialize(wit: Wit) {
        let names: Vec<&str> = wit.export_funcs().map(|f| f.name()).collect();
        for expected in EXPORTS {
            if !names.contains(expected) {
                eryx_ffi::bug(&format!(
                    "the bindings do not export `{expected}`: this runtime was built for another \
                     wit/sandbox.wit (found {names:?}); rebuild with `cargo xtask dist`"
                ));
            }
        }
        let _ = ERROR_CASES;
    }

    fn call_export(func: ExportFunc, args: Vec<Value>) -> Option<Value> {
        match func.name() {
            "execute" => Some(execute(args)),
            "snapshot-state" | "restore-state" => Some(error(
                UNSUPPORTED,
                format!("`{}` is not implemented by this runtime yet", func.name()),
            )),
            "clear-state" => {
                if let Ok(py) = Python::get() {
                    if let Err(msg) = py.clear() {
                        eryx_ffi::bug(&format!("clear-state: {msg}"));
                    }
                }
                None
            }
            other => eryx_ffi::bug(&format!("unknown export `{other}`")),
        }
    }
}
