//! Run untrusted Python in a WebAssembly sandbox.
//!
//! A [`Sandbox`] is one Python session (CPython 3.14 on WASI) in its own
//! wasmtime store: variables persist across [`Sandbox::execute`] calls,
//! [`Sandbox::snapshot`]/[`Sandbox::restore`] move a session between
//! sandboxes, and [`Limits`] bound time and memory. The guest sees the
//! standard library read-only and nothing else of the host.
//!
//! Every sandbox made from the same bundle shares one engine and one
//! compiled component; compiling it takes seconds once, and is cached on disk.
//!
//! ```no_run
//! # async fn demo() -> Result<(), eryx_host::Error> {
//! let mut sandbox = eryx_host::Sandbox::builder().bundle("target/dist").build().await?;
//! let out = sandbox.execute("x = 20\nprint(x * 2)").await?;
//! assert_eq!(out.stdout, "40\n");
//! let snap = sandbox.snapshot().await?;
//! let mut other = eryx_host::Sandbox::builder().bundle("target/dist").build().await?;
//! other.restore(&snap).await?;
//! assert_eq!(other.execute("x + 1").await?.value.as_deref(), Some("21"));
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![allow(
    unsafe_code,
    reason = "`Component::deserialize` of our own checksummed cache entries, in `engine`"
)]

mod engine;
mod error;
mod sandbox;
mod snapshot;
mod state;

pub use error::{BoxError, Error, PythonError, Unpicklable};
pub use sandbox::{CancelHandle, Limits, Output, Sandbox, SandboxBuilder};
pub use snapshot::Snapshot;
