//! The host's view of the sandbox world, generated from this crate's copy of
//! `wit/sandbox.wit` by wasmtime's `bindgen!`: the guest's types (`Output`,
//! `Error`, ...) and its exports (`func_execute`, ...) exist once, here, and
//! a change to the WIT fails to compile wherever it is not handled.
//!
//! The exports are `async` in the WIT; the sandbox calls them through the
//! typed functions (`func_*`) with `call_async`, one call at a time per
//! store, under its own deadline and watchdog (see `sandbox.rs`). The
//! imports (host functions, live output) are implemented on the store's
//! `State` (`state.rs`, `host_fn.rs`).

wasmtime::component::bindgen!({
    path: "wit/sandbox.wit",
    world: "sandbox",
    imports: { "call-host": async, "wait-host-calls": async },
});
