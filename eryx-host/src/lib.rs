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
//! A session, moved to a second sandbox with a snapshot (the bundle comes
//! from `ERYX_BUNDLE`, which `cargo xtask test` sets; pass `.bundle(dir)`
//! in your own code):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), eryx_host::Error> {
//! use eryx_host::{Error, Sandbox, Snapshot};
//!
//! let mut sandbox = Sandbox::builder().build().await?;
//! let out = sandbox.execute("x = 20\nprint(x * 2)").await?;
//! assert_eq!(out.stdout, "40\n");
//!
//! // Exceptions are errors of their own kind; the session goes on.
//! let Err(Error::Python(e)) = sandbox.execute("1 / 0").await else { panic!() };
//! assert_eq!(e.type_name, "ZeroDivisionError");
//!
//! // Snapshots are bytes with a checked header; restore them anywhere
//! // built the same way.
//! let bytes = sandbox.snapshot().await?.to_bytes();
//! let mut other = Sandbox::builder().build().await?;
//! other.restore(&Snapshot::from_bytes(&bytes)?).await?;
//! assert_eq!(other.execute("x + 1").await?.value.as_deref(), Some("21"));
//! # Ok(()) }
//! ```
//!
//! Host functions ("tools") the guest may call, and its output as it is
//! written:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), eryx_host::Error> {
//! use eryx_host::Sandbox;
//! use serde_json::{Value, json};
//!
//! let mut sandbox = Sandbox::builder()
//!     .function("get_weather", |args: Value| async move {
//!         Ok(json!({"city": args["city"], "temp_c": 21}))
//!     })
//!     .build()
//!     .await?;
//! let out = sandbox
//!     .execute_streaming(
//!         "r = await get_weather(city='Oslo')\nprint(r['temp_c'])",
//!         |chunk| eprint!("{chunk}"),
//!     )
//!     .await?;
//! assert_eq!(out.stdout, "21\n");
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![allow(
    unsafe_code,
    reason = "`Component::deserialize_file` of our own checksummed cache entries, in `cache`"
)]

mod bytecode;
mod cache;
mod cpu;
mod engine;
mod error;
mod files;
mod host_fn;
#[cfg(unix)]
mod host_stdin;
mod mount;
mod net;
mod package;
mod pool;
mod raw_output;
mod sandbox;
mod scratch;
mod snapshot;
mod state;
mod tls;
mod tmp_seed;
mod world;

pub use engine::SnapshotPolicy;
pub use error::{BoxError, Error, PartialOutput, PythonError, Unpicklable};
pub use host_fn::{Chunk, HostFnLimits, HostFnResult, Stream};
pub use mount::{Access, Mount};
pub use pool::SandboxPool;
pub use sandbox::{CancelHandle, Limits, Output, Sandbox, SandboxBuilder};
pub use snapshot::Snapshot;
