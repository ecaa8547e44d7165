//! End-to-end tests of eryx: real CPython 3.14 in a real wasmtime component,
//! linked from the dist bundle (`cargo xtask test` builds it first).
//!
//! One test binary, so wasmtime is linked once; every test shares one
//! compiled component through `eryx-host`'s per-process memo and the
//! on-disk cache in `target/eryx-cache`.

mod cache;
mod cli;
mod component;
mod concurrency;
mod extensions;
mod host_functions;
mod linker;
mod mounts;
mod network;
mod packages;
mod pool;
mod preinit;
mod python;
mod scratch;
mod scripts;
mod session;
mod support;
mod threats;
