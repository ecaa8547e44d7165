//! The exports of the sandbox world (`wit/sandbox.wit`), on Python.
//!
//! Each export is async in the WIT; `eryx-ffi` runs it to completion and
//! hands its result to `task.return`. The values are built to match the WIT
//! types (records in field order, the `error` variant's cases by index),
//! and [`Runtime::initialize`] checks the bindings' metadata against those
//! expectations, so a runtime built for another WIT aborts at start instead
//! of returning garbage.

use eryx_ffi::{ExportFunc, Interpreter, Value, Wit};

use crate::python::{Execution, Python, Snapshot};

/// The interpreter type registered with [`eryx_ffi::export!`].
pub struct Runtime;

/// The cases of the WIT `error` variant, in declaration order.
const ERROR_CASES: &[&str] = &["init", "unsupported", "snapshot", "unpicklable", "internal"];
const INIT: u32 = 0;
const SNAPSHOT: u32 = 2;
const UNPICKLABLE: u32 = 3;
const INTERNAL: u32 = 4;

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
    let [Value::String(code), Value::U32(output_limit)] = <[Value; 2]>::try_from(args)
        .unwrap_or_else(|_| eryx_ffi::bug("execute: expected (string, u32)"))
    else {
        eryx_ffi::bug("execute: expected (string, u32)");
    };
    let py = match python() {
        Ok(py) => py,
        Err(e) => return e,
    };
    match py.execute(&code, output_limit) {
        Ok(e) => execution(e),
        Err(msg) => error(INTERNAL, format!("execute: {msg}")),
    }
}

fn snapshot(args: Vec<Value>) -> Value {
    let Some(Value::Bool(skip)) = args.into_iter().next() else {
        eryx_ffi::bug("snapshot-state: expected one bool argument");
    };
    let py = match python() {
        Ok(py) => py,
        Err(e) => return e,
    };
    match py.snapshot(skip) {
        Ok(Snapshot::Taken { data, skipped }) => Value::ok(Some(Value::Record(vec![
            Value::Bytes(data),
            Value::List(skipped.into_iter().map(Value::String).collect()),
        ]))),
        Ok(Snapshot::Unpicklable(names)) => Value::err(Some(Value::case(
            UNPICKLABLE,
            Value::List(
                names
                    .into_iter()
                    .map(|(name, ty, reason)| {
                        Value::Record(vec![
                            Value::String(name),
                            Value::String(ty),
                            Value::String(reason),
                        ])
                    })
                    .collect(),
            ),
        ))),
        Err(msg) => error(INTERNAL, format!("snapshot-state: {msg}")),
    }
}

fn restore(args: Vec<Value>) -> Value {
    let Some(Value::Bytes(data)) = args.into_iter().next() else {
        eryx_ffi::bug("restore-state: expected one list<u8> argument");
    };
    let py = match python() {
        Ok(py) => py,
        Err(e) => return e,
    };
    match py.restore(&data) {
        Ok(Ok(())) => Value::ok(None),
        Ok(Err(why)) => error(SNAPSHOT, why),
        Err(msg) => error(INTERNAL, format!("restore-state: {msg}")),
    }
}

/// Checks that the bindings' `error` variant has the cases this runtime
/// builds by index.
fn check_error_cases(wit: Wit) {
    let Some(variant) = (0..wit.variant_count()).find(|&i| wit.variant_name(i) == Some("error"))
    else {
        eryx_ffi::bug("cannot find the `error` variant in the bindings' metadata");
    };
    let found: Vec<&str> = wit.variant_case_names(variant).collect();
    if found != ERROR_CASES {
        eryx_ffi::bug(&format!(
            "the bindings' `error` cases are {found:?}, this runtime builds {ERROR_CASES:?}: \
             rebuild with `cargo xtask dist`"
        ));
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
        check_error_cases(wit);
    }

    fn call_export(func: ExportFunc, args: Vec<Value>) -> Option<Value> {
        match func.name() {
            "execute" => Some(execute(args)),
            "snapshot-state" => Some(snapshot(args)),
            "restore-state" => Some(restore(args)),
            "clear-state" => {
                if let Ok(py) = Python::get()
                    && let Err(msg) = py.clear()
                {
                    eryx_ffi::bug(&format!("clear-state: {msg}"));
                }
                None
            }
            other => eryx_ffi::bug(&format!("unknown export `{other}`")),
        }
    }
}
