//! Errors of the host API.
//!
//! Two families, kept apart: [`Error::Python`] is the user's code raising an
//! exception (the sandbox is fine and the session goes on); every other
//! variant is the sandbox failing or refusing (bundle, link, compile, a
//! limit, a trap, a bad snapshot).

use std::path::PathBuf;
use std::time::Duration;

/// A boxed source error (wasmtime's and wit-component's errors convert into it).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A Python exception that escaped the user's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonError {
    /// The exception's type name, e.g. `ValueError`.
    pub type_name: String,
    /// `str(exception)`.
    pub message: String,
    /// The formatted traceback, ending with `TypeName: message\n`.
    pub traceback: String,
    /// What the code printed to stdout before it raised.
    pub stdout: String,
    /// What the code printed to stderr before it raised.
    pub stderr: String,
}

impl std::fmt::Display for PythonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.traceback.trim_end().lines().last() {
            Some(last) => write!(f, "Python raised {last}"),
            None => write!(f, "Python raised {}: {}", self.type_name, self.message),
        }
    }
}

/// What a call had written when it was stopped (timeout, cancellation,
/// memory, stack or a trap): nothing the guest printed is lost.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartialOutput {
    /// `sys.stdout` so far.
    pub stdout: String,
    /// `sys.stderr` so far.
    pub stderr: String,
}

/// A name that could not be put in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpicklable {
    /// The variable name.
    pub name: String,
    /// The qualified name of its type.
    pub type_name: String,
    /// Why pickling failed.
    pub reason: String,
}

/// Everything that can go wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The user's code raised.
    #[error("{0}")]
    Python(Box<PythonError>),

    /// No bundle was configured.
    #[error(
        "no eryx bundle configured: pass `.bundle(dir)` (CLI: `--bundle DIR`) or set ERYX_BUNDLE; build one with `cargo xtask dist`"
    )]
    NoBundle,

    /// The bundle or the link failed.
    #[error(transparent)]
    Link(#[from] eryx_linker::LinkError),

    /// The wasmtime engine could not be configured.
    #[error("configuring the wasmtime engine failed")]
    Engine {
        /// wasmtime's error.
        #[source]
        source: BoxError,
    },

    /// The component could not be compiled or loaded.
    #[error("compiling the component failed")]
    Compile {
        /// wasmtime's error.
        #[source]
        source: BoxError,
    },

    /// A package directory cannot be read.
    #[error("cannot read the package at {}", path.display())]
    Package {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A package cannot be used.
    #[error("cannot use the package {}: {reason}", path.display())]
    BadPackage {
        /// The directory or wheel.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// An extension module (or library) of a package cannot be used: the
    /// linker's error (which names the file by its guest path, in
    /// `/site-packages`), with the package it came from.
    #[error("{} (`{file}` in the package {})", with_causes(.error), package.display())]
    BadExtension {
        /// The package (directory or wheel) given to
        /// [`crate::SandboxBuilder::package`] that holds the file.
        package: PathBuf,
        /// The file's path in the package.
        file: String,
        /// What is wrong with it (its own causes are part of this error's
        /// message).
        error: Box<eryx_linker::LinkError>,
    },

    /// A directory given to [`crate::SandboxBuilder::mount`] cannot be mounted.
    #[error("cannot mount at `{guest}`: {reason}")]
    BadMount {
        /// The guest path asked for.
        guest: String,
        /// Why, and what to change.
        reason: String,
    },

    /// A variable given to [`crate::SandboxBuilder::env`] cannot be set.
    #[error("cannot set the environment variable {name:?}: {reason}")]
    BadEnv {
        /// The variable's name, as given.
        name: String,
        /// Why, and what to change.
        reason: String,
    },

    /// An entry given to [`crate::SandboxBuilder::allow_net`] is not a host
    /// or address.
    #[error("cannot allow network access to {entry:?}: {reason}")]
    BadNetwork {
        /// The entry, as given.
        entry: String,
        /// Why, and what to give instead.
        reason: String,
    },

    /// A name given to [`crate::SandboxBuilder::function`] cannot name a
    /// host function.
    #[error("cannot offer the host function {name:?}: {reason}")]
    BadFunction {
        /// The name, as given.
        name: String,
        /// Why, and what to change.
        reason: String,
    },

    /// The directory given to [`crate::SandboxBuilder::working_dir`] cannot
    /// be the working directory.
    #[error("cannot make {path:?} the working directory: {reason}")]
    BadWorkingDir {
        /// The guest path, as given.
        path: String,
        /// Why, and what to change.
        reason: String,
    },

    /// [`crate::Sandbox::write_file`] or [`crate::Sandbox::read_file`]
    /// failed.
    #[error("guest file {path:?}: {reason}")]
    File {
        /// The guest path, as given.
        path: String,
        /// Why, and what to change.
        reason: String,
    },

    /// Pre-initialising Python (start-up and pre-imports, snapshotted) failed.
    #[error(
        "pre-initialising Python failed: {message}; build with `.preinit(false)` (CLI: --no-preinit) to start Python in each sandbox instead"
    )]
    Preinit {
        /// What failed.
        message: String,
    },

    /// The compiled-component cache could not be written.
    #[error("cannot write the component cache at {}; pass another `.cache_dir(..)` (or ERYX_CACHE_DIR) or `.no_cache()`", path.display())]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The WASI context or the instance could not be set up.
    #[error("instantiating the sandbox failed")]
    Instantiate {
        /// wasmtime's error.
        #[source]
        source: BoxError,
    },

    /// The memory limit is below the linear memory the sandbox starts with.
    #[error(
        "the memory limit ({limit} bytes) is below the {needed} bytes ({} MiB) of memory the \
         sandbox starts with; raise it with `.memory_limit(..)` / `--memory` (default 256M)",
        needed.div_ceil(1 << 20)
    )]
    MemoryLimitTooSmall {
        /// The limit that was set.
        limit: usize,
        /// The initial linear memory of the sandbox's component.
        needed: usize,
    },

    /// The interpreter failed to start inside the guest.
    #[error("Python failed to start in the sandbox: {message}")]
    GuestInit {
        /// The guest's explanation (and what it wrote to its stderr).
        message: String,
    },

    /// The guest runtime reported an internal error.
    #[error("the eryx runtime failed: {message}")]
    GuestInternal {
        /// The guest's explanation.
        message: String,
    },

    /// The bundle's runtime was built for another sandbox interface.
    #[error(
        "the runtime in the bundle does not match this eryx-host ({detail}); rebuild the bundle with `cargo xtask dist`"
    )]
    RuntimeMismatch {
        /// wasmtime's type-check message, naming the export.
        detail: String,
    },

    /// The guest does not implement the operation.
    #[error("not supported by this eryx runtime: {message}")]
    Unsupported {
        /// The guest's explanation.
        message: String,
    },

    /// `execute` ran past the time limit; the session is lost.
    #[error("execution timed out after {limit:?} (the limit); the session was reset")]
    Timeout {
        /// The configured limit.
        limit: Duration,
        /// What the call printed before it was stopped.
        output: PartialOutput,
    },

    /// The call was cancelled through a [`crate::CancelHandle`]; the session is lost.
    #[error("execution was cancelled; the session was reset")]
    Cancelled {
        /// What the call printed before it was stopped.
        output: PartialOutput,
    },

    /// The guest trapped because it hit the memory limit; the session is lost.
    #[error("the sandbox ran out of memory (limit {limit} bytes); the session was reset")]
    MemoryLimit {
        /// The configured limit in bytes.
        limit: usize,
        /// What the call printed before it was stopped.
        output: PartialOutput,
    },

    /// The guest exhausted its call stack (deep recursion in C code, e.g.
    /// `repr` of a deeply nested list); the session is lost.
    #[error("the sandbox's call stack overflowed (deep recursion); the session was reset")]
    StackOverflow {
        /// What the call printed before it was stopped.
        output: PartialOutput,
    },

    /// The Python process ended itself instead of returning: `os._exit(n)`,
    /// or C code calling `exit()`/`_exit()`; the session is lost (`sys.exit`
    /// is not this: it raises `SystemExit`, which [`Output::exit_code`]
    /// reports and the session survives). `os._exit(n)` and C's `_exit(n)`
    /// give their status `n`; C's `exit(n)` goes through WASI's exit alone,
    /// which carries only success or failure, so its nonzero statuses
    /// arrive as 1.
    ///
    /// [`Output::exit_code`]: crate::Output::exit_code
    #[error(
        "the Python process exited with status {code} (os._exit or exit() in C); the session was reset"
    )]
    Exited {
        /// The exit status (as the code gave it: the CLI exits with its low
        /// 8 bits, as POSIX does).
        code: i32,
        /// What the call printed before it exited.
        output: PartialOutput,
    },

    /// The guest trapped; the session is lost.
    #[error("the sandbox trapped; the session was reset")]
    Trap {
        /// wasmtime's trap, with its backtrace.
        #[source]
        source: BoxError,
        /// What the call printed before it was stopped.
        output: PartialOutput,
    },

    /// Names in the session cannot be pickled (see [`Unpicklable`]).
    #[error("cannot snapshot the session: {}", describe_unpicklable(.0))]
    Unpicklable(Vec<Unpicklable>),

    /// The bytes are not a snapshot this sandbox can restore.
    #[error("invalid snapshot: {reason}")]
    InvalidSnapshot {
        /// What is wrong with it.
        reason: String,
    },
}

/// An error's message followed by its causes'.
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

fn describe_unpicklable(names: &[Unpicklable]) -> String {
    let list: Vec<String> = names
        .iter()
        .map(|u| format!("`{}` ({}: {})", u.name, u.type_name, u.reason))
        .collect();
    format!(
        "{}; delete them, or snapshot with skipping enabled to leave them out",
        list.join(", ")
    )
}

impl Error {
    /// Whether the session (variables, imports) is still there after this
    /// error. False after a timeout, a memory trap or any other trap: the
    /// next call runs on a fresh instance.
    pub fn session_survived(&self) -> bool {
        !matches!(
            self,
            Error::Timeout { .. }
                | Error::Cancelled { .. }
                | Error::MemoryLimit { .. }
                | Error::StackOverflow { .. }
                | Error::Exited { .. }
                | Error::Trap { .. }
        )
    }

    /// What the call printed before it was stopped, for the errors that
    /// stop a call (timeout, cancellation, memory, stack, exit, trap).
    pub fn partial_output(&self) -> Option<&PartialOutput> {
        match self {
            Error::Timeout { output, .. }
            | Error::Cancelled { output }
            | Error::MemoryLimit { output, .. }
            | Error::StackOverflow { output }
            | Error::Exited { output, .. }
            | Error::Trap { output, .. } => Some(output),
            _ => None,
        }
    }
}
