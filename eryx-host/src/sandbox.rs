//! The [`Sandbox`]: one Python session in its own wasmtime store.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{ComponentNamedList, Lift, Lower, TypedFunc};
use wasmtime::{Store, UpdateDeadline};

use crate::engine::{CacheDir, EPOCH_TICK, Prepared, Progress, STARTUP_LIMIT, prepare};
use crate::mount::{Access, Mount};
use crate::snapshot::Snapshot;
use crate::state::{State, Stop};
use crate::world::{self, Error as GuestError};
use crate::{Error, PythonError, Unpicklable};

/// The options of the empty `execute` that starts the interpreter.
const STARTUP_OPTIONS: world::ExecuteOptions = world::ExecuteOptions {
    output_limit: 0,
    filename: None,
    argv: None,
    at_exit: false,
};

/// How long past its deadline a call blocked in a host call may take before
/// it is dropped (guest code is stopped by the epoch callback on time).
const WATCHDOG_GRACE: Duration = Duration::from_millis(50);

/// The longest time limit a call is given: a longer [`Limits::timeout`]
/// (`Duration::MAX` for "no limit") is cut to a century, which is never
/// reached and keeps the deadline arithmetic from overflowing (it
/// panicked before).
const LONGEST_LIMIT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Resource limits of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time one `execute` (or snapshot/restore) may take. Untrusted
    /// code can loop forever; past this the guest is interrupted, the call
    /// fails with [`Error::Timeout`] and the session is reset. Default 30 s;
    /// `Duration::MAX` (or anything over a century) is a century.
    pub timeout: Duration,
    /// Bytes of linear memory the guest may grow to. Untrusted code can
    /// allocate without bound; Python sees `MemoryError` where CPython can
    /// raise it. Default 256 MiB.
    pub memory_bytes: usize,
    /// Characters of stdout, and of stderr, kept per call. Untrusted code
    /// can print without end; past this the text is cut and
    /// [`Output::truncated`] is set. Default 1 Mi (1,048,576).
    pub output_chars: u32,
    /// Bytes the guest may keep in its scratch directory `/tmp` (also
    /// `TMPDIR` and the working directory): file contents plus 4 KiB per
    /// file, directory or link. Past it writes fail with `ENOSPC`
    /// (`OSError: [Errno 28] No space left on device`). The directory is
    /// private to the sandbox, kept across session resets, and removed when
    /// the sandbox is dropped; snapshots do not include it. `0`: no `/tmp`.
    /// Default 64 MiB.
    pub tmp_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            timeout: Duration::from_secs(30),
            memory_bytes: 256 << 20,
            output_chars: 1 << 20,
            tmp_bytes: 64 << 20,
        }
    }
}

/// What one successful `execute` produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Everything the code wrote to `sys.stdout`.
    pub stdout: String,
    /// Everything the code wrote to `sys.stderr`.
    pub stderr: String,
    /// `repr()` of the last expression statement's value, if the code ended
    /// with one and it was not `None` (as the Python REPL shows it).
    pub value: Option<String>,
    /// Whether stdout or stderr was cut at [`Limits::output_chars`].
    pub truncated: bool,
    /// Set when the code ended with `SystemExit` (`sys.exit(n)`, `exit()`):
    /// the exit status as CPython computes it (`None` → 0, an `int` → itself,
    /// anything else → 1, its text written to `stderr`). Not an error: the
    /// session goes on.
    pub exit_code: Option<i32>,
}

/// Builds a [`Sandbox`].
///
/// Defaults (deny by default):
/// - bundle: none; [`SandboxBuilder::bundle`] is required, with the
///   `ERYX_BUNDLE` environment variable as the documented fallback;
/// - compiled-component cache: `ERYX_CACHE_DIR`, else
///   `$XDG_CACHE_HOME/eryx`, else `$HOME/.cache/eryx`;
/// - limits: [`Limits::default`] (30 s per call, 256 MiB of memory, 64 MiB
///   of `/tmp`);
/// - the guest sees only the standard library, read-only, at
///   `/python/lib/python3.14`, its private `/tmp` (the working directory,
///   `TMPDIR` and `HOME`) and `/dev` (`null`, `zero`, `random`,
///   `urandom`, and `stdin` / `stdout` / `stderr`, the standard streams) (plus
///   [`SandboxBuilder::package`]s at `/site-packages` and
///   [`SandboxBuilder::mount`]s, when given; `/` and the directories
///   above these list them, read-only): no other files, no
///   arguments, no stdin, no host functions, no network (see
///   [`SandboxBuilder::allow_net`]); no environment
///   but `TMPDIR`, `HOME`, `USER=sandbox`, `PWD` and `PYTEST_ADDOPTS`
///   (pytest's output capture without `os.dup`, which WASI lacks) and the
///   variables given to [`SandboxBuilder::env`]; `/tmp` the working
///   directory (see [`SandboxBuilder::working_dir`]);
///   what it writes reaches only the call's [`Output`] (and a streaming
///   callback), never the host's stdio;
/// - pre-initialised (see [`SandboxBuilder::preinit`]), no pre-imports, no
///   instance pool.
#[derive(Clone, Default)]
#[must_use]
pub struct SandboxBuilder {
    bundle: Option<PathBuf>,
    cache: Option<CacheDir>,
    limits: Limits,
    progress: Option<Progress>,
    packages: Vec<PathBuf>,
    mounts: Vec<Mount>,
    stdin: Option<crate::state::GuestStdin>,
    env: Vec<(String, String)>,
    working_dir: Option<String>,
    no_preinit: bool,
    snapshot_policy: crate::SnapshotPolicy,
    preimports: Vec<String>,
    instance_pool: Option<u32>,
    host_fns: std::collections::BTreeMap<String, crate::host_fn::HostFn>,
    allow_net: Vec<String>,
}

impl std::fmt::Debug for SandboxBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxBuilder")
            .field("bundle", &self.bundle)
            .field("cache", &self.cache)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl SandboxBuilder {
    /// A builder with the defaults listed on [`SandboxBuilder`].
    pub fn new() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// The dist bundle directory (made by `cargo xtask dist`, `target/dist`).
    pub fn bundle(mut self, dir: impl Into<PathBuf>) -> SandboxBuilder {
        self.bundle = Some(dir.into());
        self
    }

    /// Where compiled components are cached.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> SandboxBuilder {
        self.cache = Some(CacheDir::Dir(dir.into()));
        self
    }

    /// Compiles the component in memory, without a disk cache.
    pub fn no_cache(mut self) -> SandboxBuilder {
        self.cache = Some(CacheDir::Disabled);
        self
    }

    /// Adds a package: a directory laid out like an unpacked wheel (package
    /// folders and top-level modules, `.py` files and extension `.so`
    /// files), or a `.whl` file. Repeatable. The contents of all packages
    /// appear together, read-only, at `/site-packages` in the guest (on
    /// `sys.path`); every `*.cpython-314-wasm32-wasi.so` / `*.abi3.so` is
    /// validated and linked so that `import` finds it. Two packages that
    /// ship the same file are refused; wheels are unpacked safely (no `..`,
    /// absolute paths or links; size capped).
    pub fn package(mut self, path: impl Into<PathBuf>) -> SandboxBuilder {
        self.packages.push(path.into());
        self
    }

    /// Calls `f` with a message when a long step starts (linking and
    /// compiling the component, on a cache miss). Default: silent.
    pub fn on_progress(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> SandboxBuilder {
        self.progress = Some(Arc::new(f));
        self
    }

    /// The output cap per stream and call (see [`Limits::output_chars`]).
    pub fn output_limit(mut self, chars: u32) -> SandboxBuilder {
        self.limits.output_chars = chars;
        self
    }

    /// Replaces all limits.
    pub fn limits(mut self, limits: Limits) -> SandboxBuilder {
        self.limits = limits;
        self
    }

    /// The wall-clock limit per call (see [`Limits::timeout`]).
    pub fn timeout(mut self, timeout: Duration) -> SandboxBuilder {
        self.limits.timeout = timeout;
        self
    }

    /// The memory limit in bytes (see [`Limits::memory_bytes`]).
    pub fn memory_limit(mut self, bytes: usize) -> SandboxBuilder {
        self.limits.memory_bytes = bytes;
        self
    }

    /// The size limit of the scratch directory `/tmp` (see
    /// [`Limits::tmp_bytes`]; `0` gives the guest no `/tmp`).
    pub fn tmp_limit(mut self, bytes: u64) -> SandboxBuilder {
        self.limits.tmp_bytes = bytes;
        self
    }

    /// Whether to pre-initialise (default: yes). Pre-initialised, the
    /// component is snapshotted once, right after CPython's start-up (and
    /// [`SandboxBuilder::preimport`]s), so every sandbox made from it starts
    /// in ~2 ms instead of running start-up (~60 ms). Building the snapshot
    /// of a new extension set takes a few seconds (cached after); when it
    /// is not ready, [`SandboxBuilder::snapshot_policy`]
    /// says what `build` does.
    pub fn preinit(mut self, on: bool) -> SandboxBuilder {
        self.no_preinit = !on;
        self
    }

    /// What `build` does when the pre-initialised snapshot of its extension
    /// set is not in the cache yet (default:
    /// [`SnapshotPolicy::Background`](crate::SnapshotPolicy::Background):
    /// the sandbox starts Python itself and the snapshot is built on a
    /// background thread for later sandboxes). With
    /// [`SandboxBuilder::preimport`]s the build always waits for the
    /// snapshot, so that a pre-import that fails fails the build.
    pub fn snapshot_policy(mut self, policy: crate::SnapshotPolicy) -> SandboxBuilder {
        self.snapshot_policy = policy;
        self
    }

    /// Uses wasmtime's pooling instance allocator, sized for up to
    /// `max_sandboxes` live sandboxes of this configuration at once (more
    /// fail to build with [`Error::Instantiate`]). It reserves address
    /// space up front (~4 GiB of virtual memory per sandbox) and makes
    /// instantiation reuse pre-mapped slots whose pages stay resident (on
    /// Linux 6.7+ only the pages a dropped sandbox wrote are reset), so a
    /// new sandbox takes fewer page faults: `build()` + first result ~25%
    /// faster than on-demand allocation in `cargo xtask bench`. Default:
    /// off (on-demand allocation, which has no limit on live sandboxes).
    pub fn instance_pool(mut self, max_sandboxes: u32) -> SandboxBuilder {
        self.instance_pool = Some(max_sandboxes);
        self
    }

    /// Modules imported during pre-initialisation (e.g. `["json", "re"]`),
    /// so that sandboxes find them loaded. A package that exports its API
    /// lazily (a module `__getattr__`, as pydantic does for `BaseModel`)
    /// also has the names in its `__all__` looked up then, except those
    /// that are submodules (numpy's `f2py`: name them to pre-import them
    /// too); a lookup that fails is skipped. Names must be dotted
    /// identifiers; one that fails to import fails the build. What the
    /// imports write to `/tmp` is in every sandbox's `/tmp` (counted
    /// against its limit). Ignored with `.preinit(false)`.
    pub fn preimport<I, S>(mut self, modules: I) -> SandboxBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.preimports.extend(modules.into_iter().map(Into::into));
        self
    }

    /// Gives the guest `data` as its standard input (`sys.stdin`,
    /// `input()`). Default: none; reads see end of file. Each new instance
    /// of the sandbox (after a reset) reads it from the start.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> SandboxBuilder {
        self.stdin = Some(crate::state::GuestStdin::Data(data.into().into()));
        self
    }

    /// Gives the guest this process's own standard input, as `python3`
    /// has it: bytes are taken from the host's stdin only when the guest
    /// reads (`input()` on a terminal waits for a line; a pipe is read as
    /// the code consumes it), so nothing is consumed before. What one
    /// instance read is gone for the next (after a reset), and every
    /// sandbox of the process given it shares the one stdin. A read that
    /// waits counts against the call's time limit, and a call that ends
    /// while waiting (a time limit, [`Sandbox::cancel_handle`]) leaves no
    /// read behind: the next line typed goes to whoever reads stdin next
    /// (on Unix, where eryx waits with `poll`). Replaces
    /// [`SandboxBuilder::stdin`]. Meant for command-line tools (the `eryx`
    /// CLI uses it); a server should pass the bytes instead.
    pub fn inherit_stdin(mut self) -> SandboxBuilder {
        self.stdin = Some(crate::state::GuestStdin::Host);
        self
    }

    /// Lets the guest open TCP connections to `host` (repeatable; none by
    /// default: no network). An entry is `HOST` (every port),
    /// `HOST:PORT`, `*.DOMAIN[:PORT]` (every name below the domain), an
    /// IP address, `IPv4:PORT` or `[IPv6]:PORT`. Names are resolved by
    /// the host, only names on the list (the guest's `getaddrinfo` asks
    /// it), and a connection goes through only to an address on the list
    /// or one a listed name resolved to, on the entry's port. No listening
    /// sockets, no UDP. Checked when the sandbox is built
    /// ([`Error::BadNetwork`]).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), eryx_host::Error> {
    /// let mut sandbox = eryx_host::Sandbox::builder()
    ///     .allow_net("api.example.com:443")
    ///     .allow_net("10.0.0.7:8080")
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn allow_net(mut self, host: impl Into<String>) -> SandboxBuilder {
        self.allow_net.push(host.into());
        self
    }

    /// Sets the environment variable `name` to `value` in the guest
    /// (`os.environ`, `os.getenv`, C code's `getenv`), in every instance of
    /// the sandbox, pre-initialised ones too. Repeatable; a later value of
    /// the same name wins, and a name eryx sets itself (`TMPDIR`, `HOME`,
    /// `USER`, `PYTEST_ADDOPTS`) takes the given value instead. Nothing of
    /// the host's own environment reaches the guest otherwise. A name must
    /// be non-empty without `=` or NUL, a value without NUL; checked when
    /// the sandbox is built ([`Error::BadEnv`]).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> SandboxBuilder {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Makes `dir` (a guest path: `/tmp`, or a directory in a mount such as
    /// `/app` or `/app/src`) the working directory each instance of the
    /// sandbox starts in (default `/tmp`), pre-initialised ones too:
    /// relative paths (`open("data.csv")`) and `os.getcwd()` start there,
    /// and `PWD` names it, as a shell's would. The code may `os.chdir`
    /// elsewhere; a new instance (after a time limit) starts in `dir`
    /// again. Checked when the sandbox is built
    /// ([`Error::BadWorkingDir`]): a directory in a mount must exist on the
    /// host, and `/tmp` (an empty scratch directory) has no subdirectories
    /// yet.
    pub fn working_dir(mut self, dir: impl Into<String>) -> SandboxBuilder {
        self.working_dir = Some(dir.into());
        self
    }

    /// Shows the host directory `host` to the guest at `guest` (an absolute
    /// path such as `/data`), read-only or read-write. Repeatable; mounts may
    /// not nest or overlap `/python` and `/site-packages`. The guest cannot
    /// reach anything outside the directory through it: `..` stops at its
    /// root and links pointing out of it are not followed. Checked when the
    /// sandbox is built ([`Error::BadMount`]).
    pub fn mount(
        mut self,
        guest: impl Into<String>,
        host: impl Into<PathBuf>,
        access: Access,
    ) -> SandboxBuilder {
        self.mounts.push(Mount {
            guest: guest.into(),
            host: host.into(),
            access,
        });
        self
    }

    /// Offers the host function `name` to the guest, with the default
    /// [`crate::HostFnLimits`]. In Python it is a built-in name (unless
    /// that would hide a Python built-in such as `open`, or is not an
    /// identifier) and `eryx.<name>` (`from eryx import <name>`, or
    /// `eryx.call("name", ...)` for any name): called where no asyncio
    /// loop runs it returns the result, inside a running loop it is awaited
    /// (`r = await get_weather(city="Oslo")`). `f` receives the keyword
    /// arguments as a JSON object, or the positional ones as a JSON array
    /// (mixing both is a `TypeError` in the guest), and returns a JSON
    /// value or an error whose text becomes the message of the guest's
    /// `eryx.HostError`. Values cross as JSON: `None`, `bool`, `int` (64
    /// bits), finite `float`, `str`, `list`/`tuple`, `dict` with `str`
    /// keys; anything else (bytes, sets, NaN, bigger ints) is a `TypeError`
    /// in the guest before the host is called. Each call runs as its own
    /// tokio task: other sandboxes run meanwhile, a panic is contained, and
    /// awaited calls of one sandbox run at once (`asyncio.gather`). A name
    /// must be non-empty without NUL characters; checked when the sandbox
    /// is built ([`Error::BadFunction`]).
    pub fn function<F, Fut>(self, name: impl Into<String>, f: F) -> SandboxBuilder
    where
        F: Fn(serde_json::Value) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = crate::HostFnResult> + Send + 'static,
    {
        self.function_with_limits(name, crate::HostFnLimits::default(), f)
    }

    /// [`SandboxBuilder::function`] with its own limits (time per call,
    /// calls per `execute`, bytes of arguments and of result).
    pub fn function_with_limits<F, Fut>(
        mut self,
        name: impl Into<String>,
        limits: crate::HostFnLimits,
        f: F,
    ) -> SandboxBuilder
    where
        F: Fn(serde_json::Value) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = crate::HostFnResult> + Send + 'static,
    {
        self.host_fns
            .insert(name.into(), crate::host_fn::HostFn::new(limits, f));
        self
    }

    /// Opens the bundle, links and compiles the component (or loads it from
    /// the cache; once per process per bundle) and instantiates a sandbox.
    pub async fn build(self) -> Result<Sandbox, Error> {
        let dir = match self.bundle {
            Some(dir) => dir,
            None => std::env::var_os("ERYX_BUNDLE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .ok_or(Error::NoBundle)?,
        };
        for (i, m) in self.mounts.iter().enumerate() {
            m.check(&self.mounts[..i])?;
        }
        for (name, value) in &self.env {
            check_env(name, value)?;
        }
        if let Some(name) = self
            .host_fns
            .keys()
            .find(|n| n.is_empty() || n.contains('\0'))
        {
            return Err(Error::BadFunction {
                name: name.clone(),
                reason: "a name must be non-empty, without NUL characters".into(),
            });
        }
        let net = match self.allow_net.is_empty() {
            true => None,
            false => Some(Arc::new(crate::net::NetPolicy::new(&self.allow_net)?)),
        };
        let mut env = self.env;
        if let Some(dir) = &self.working_dir {
            check_working_dir(dir, &self.mounts, self.limits.tmp_bytes > 0)?;
            // The runtime enters `PWD` at an instance's first code.
            env.push(("PWD".into(), dir.clone()));
        }
        let bundle = eryx_linker::Bundle::open(&dir).map_err(eryx_linker::LinkError::from)?;
        let stdlib = bundle.stdlib_dir().map_err(eryx_linker::LinkError::from)?;
        let cache = self.cache.unwrap_or_else(CacheDir::default_location);
        let site = crate::package::SitePackages::assemble(
            &self.packages,
            match &cache {
                CacheDir::Dir(dir) => Some(dir.as_path()),
                CacheDir::Disabled => None,
            },
        )?;
        let progress = self.progress.unwrap_or_else(|| Arc::new(|_: &str| {}));
        if site.owned()
            && let Some(site_dir) = site.dir()
        {
            let base = crate::engine::cache_key(&bundle, &Default::default());
            crate::bytecode::ensure(site_dir, &dir, &base, &cache, &progress).await;
        }
        let extensions = match site.dir() {
            Some(dir) => crate::package::extensions(
                dir,
                match &cache {
                    CacheDir::Dir(d) => Some(d.join("ext-digests")),
                    CacheDir::Disabled => None,
                }
                .as_deref(),
            )
            .map_err(|e| crate::package::with_origin(e, &self.packages))?,
            None => Default::default(),
        };
        let extensions = Arc::new(extensions);
        let identity = crate::engine::cache_key(&bundle, &extensions);
        let preinit = if self.no_preinit {
            None
        } else {
            for m in &self.preimports {
                let ok = !m.is_empty()
                    && m.split('.').all(|part| {
                        part.chars()
                            .next()
                            .is_some_and(|c| c.is_alphabetic() || c == '_')
                            && part.chars().all(|c| c.is_alphanumeric() || c == '_')
                    });
                if !ok {
                    return Err(Error::Preinit {
                        message: format!("`{m}` is not a module name (dotted identifiers only)"),
                    });
                }
            }
            let mut imports = self.preimports.clone();
            imports.sort();
            imports.dedup();
            // Pre-imports may come from the packages, whose Python files
            // are not part of the component's key: key on their content
            // (the wheels' digests when the mount is their checked copy).
            let site_hash = match (imports.is_empty(), site.content_key(), site.dir()) {
                (true, ..) | (false, None, None) => String::new(),
                (false, Some(key), _) => key.to_owned(),
                (false, None, Some(dir)) => crate::package::content_hash(dir)?,
            };
            Some(crate::engine::Preinit {
                stdlib: stdlib.clone(),
                site: site.dir().map(Path::to_path_buf),
                imports,
                site_hash,
            })
        };
        let prepared = prepare(
            &bundle,
            &extensions,
            &cache,
            preinit,
            if self.preimports.is_empty() {
                self.snapshot_policy
            } else {
                crate::SnapshotPolicy::Wait
            },
            self.instance_pool,
            progress,
        )
        .await
        .map_err(|e| crate::package::with_origin(e, &self.packages))?;
        // A mount at `/tmp` replaces the scratch directory.
        let scratch = if self.limits.tmp_bytes == 0
            || self
                .mounts
                .iter()
                .any(|m| m.guest == crate::scratch::GUEST_TMP)
        {
            None
        } else {
            let s = crate::scratch::Scratch::new(self.limits.tmp_bytes).map_err(|e| {
                Error::Instantiate {
                    source: format!("cannot create the scratch directory for /tmp: {e}").into(),
                }
            })?;
            // What the snapshot's pre-imports left in their `/tmp`.
            if let Some(seed) = &prepared.tmp_seed {
                s.plant(seed)
                    .map_err(|e| Error::Instantiate { source: e.into() })?;
            }
            Some(Arc::new(s))
        };
        let mut sandbox = Sandbox {
            prepared,
            host_fns: Arc::new(self.host_fns),
            net,
            sink: None,
            scratch,
            stdlib,
            limits: self.limits,
            identity,
            site: Arc::new(site),
            mounts: self.mounts.into(),
            stdin: self.stdin,
            env: env.into(),
            cancel: Arc::new(AtomicBool::new(false)),
            live: None,
            raw_output: None,
        };
        sandbox.live().await?;
        Ok(sandbox)
    }
}

struct Live {
    store: Store<State>,
    exports: world::Sandbox,
}

/// Picks one export's typed function out of the generated bindings.
type Export<P, R> = fn(&world::Sandbox) -> TypedFunc<P, R>;

impl Live {
    /// Calls an export with a deadline of `limit` from now.
    async fn call<P, R>(
        &mut self,
        export: Export<P, R>,
        params: P,
        limit: Duration,
    ) -> Result<R, wasmtime::Error>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let func = export(&self.exports);
        let state = self.store.data_mut();
        let deadline = Instant::now() + limit.min(LONGEST_LIMIT);
        state.deadline = Some(deadline);
        state.stopped = None;
        state.exiting = None;
        state.new_call();
        let cancel = state.cancel_flag();
        let cpu = state.cpu.clone();
        // The epoch callback stops guest *code*; a guest blocked in a host
        // call (e.g. `time.sleep`) is stopped here instead, by dropping the
        // call. Either way the instance is discarded afterwards.
        let watchdog = async {
            loop {
                if cancel.load(Ordering::SeqCst) {
                    return Stop::Cancelled;
                }
                if Instant::now() >= deadline + WATCHDOG_GRACE {
                    return Stop::Timeout;
                }
                tokio::time::sleep(EPOCH_TICK).await;
            }
        };
        let result = tokio::select! {
            r = crate::cpu::CpuTimed::new(func.call_async(&mut self.store, params), cpu) => r,
            stop = watchdog => {
                self.store.data_mut().stopped = Some(stop);
                Err(wasmtime::Error::msg("interrupted while blocked in a host call"))
            }
        };
        self.store.data_mut().deadline = None;
        result
    }

    /// Turns a failed call into the error that says why, with what the
    /// call had printed.
    fn classify(&mut self, e: wasmtime::Error, limits: &Limits) -> Error {
        let state = self.store.data_mut();
        state.merge_raw_output();
        let emitted = std::mem::take(&mut state.emitted);
        let output = crate::PartialOutput {
            stdout: emitted.stdout,
            stderr: emitted.stderr,
        };
        match state.stopped {
            Some(Stop::Timeout) => {
                return Error::Timeout {
                    limit: limits.timeout,
                    output,
                };
            }
            Some(Stop::Cancelled) => return Error::Cancelled { output },
            None => {}
        }
        // libc's `_Exit` (`os._exit`, C's `exit()`) ends the instance
        // through WASI's exit, which wasmtime-wasi raises as this error
        // with 0 or 1; the runtime's `_exit` (`os._exit`) told the exact
        // status first.
        if let Some(wasmtime_wasi::I32Exit(code)) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            // Only if the two agree on success (the import is the guest's
            // word; the exit is what happened).
            let code = match state.exiting.take() {
                Some(told) if (told == 0) == (*code == 0) => told,
                _ => *code,
            };
            return Error::Exited { code, output };
        }
        if let Some(wasmtime::Trap::StackOverflow) = e.downcast_ref::<wasmtime::Trap>() {
            return Error::StackOverflow { output };
        }
        if state.limits_hit() {
            return Error::MemoryLimit {
                limit: limits.memory_bytes,
                output,
            };
        }
        let raw = state.raw_stderr();
        // A C++ exception that no native frame caught leaves the guest as
        // a wasm exception (natively, `std::terminate` would end the
        // process); wasmtime says only "thrown Wasm exception".
        let e = if e.downcast_ref::<wasmtime::ThrownException>().is_some() {
            e.context(
                "native code threw a C++ exception that nothing caught (natively, \
                 std::terminate would end the process): catch it in the extension",
            )
        } else {
            e
        };
        let mut source = e.into_boxed_dyn_error();
        if !raw.trim().is_empty() {
            source = format!("{source:?}\nguest stderr:\n{}", raw.trim_end()).into();
        }
        Error::Trap { source, output }
    }
}

/// Cancels the call a [`Sandbox`] is running, from any task or thread.
///
/// The cancelled call returns [`Error::Cancelled`] once the guest has
/// stopped (within one epoch tick, 10 ms); the session is reset. Cancelling
/// when no call runs, or twice, does nothing.
#[derive(Debug, Clone)]
pub struct CancelHandle {
    flag: Arc<AtomicBool>,
}

impl CancelHandle {
    /// Requests cancellation of the running call.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }
}

/// One Python session in its own store and instance.
///
/// Variables, functions and imports persist across [`Sandbox::execute`]
/// calls until [`Sandbox::clear`]. After a trap (timeout, memory, any other)
/// the instance is dropped, the error says the session was reset, and the
/// next call runs on a fresh instance.
pub struct Sandbox {
    prepared: Arc<Prepared>,
    host_fns: crate::host_fn::HostFns,
    /// The network allow-list, if the sandbox has one.
    net: Option<Arc<crate::net::NetPolicy>>,
    /// Where the next call's output goes as it is written.
    sink: Option<crate::host_fn::Sink>,
    scratch: Option<Arc<crate::scratch::Scratch>>,
    stdlib: PathBuf,
    limits: Limits,
    identity: String,
    site: Arc<crate::package::SitePackages>,
    mounts: Arc<[Mount]>,
    stdin: Option<crate::state::GuestStdin>,
    env: Arc<[(String, String)]>,
    cancel: Arc<AtomicBool>,
    live: Option<Live>,
    /// The last call's output, when the guest also wrote below
    /// `sys.stdout` (see `raw_output.rs`).
    raw_output: Option<RawMerged>,
}

/// A call's stdout and stderr with the guest's raw output merged in.
struct RawMerged {
    stdout: String,
    stderr: String,
    truncated: bool,
}

impl RawMerged {
    /// The merged streams, each cut at `limit` characters (the guest cut
    /// its own part there; together they may be longer).
    fn into_streams(self, limit: usize) -> (String, String, bool) {
        let cut = |s: String| -> (String, bool) {
            match s.char_indices().nth(limit) {
                Some((at, _)) => (s[..at].to_string(), true),
                None => (s, false),
            }
        };
        let (stdout, a) = cut(self.stdout);
        let (stderr, b) = cut(self.stderr);
        (stdout, stderr, self.truncated || a || b)
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limits", &self.limits)
            .field("live", &self.live.is_some())
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// A builder (see [`SandboxBuilder`] for the defaults).
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::new()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether this sandbox was made from a pre-initialised snapshot
    /// (`false` with `.preinit(false)`, or while a new set's snapshot is
    /// not ready; see [`SandboxBuilder::snapshot_policy`]).
    pub fn preinitialised(&self) -> bool {
        self.prepared.preinitialised
    }

    /// Whether this sandbox's set of extensions can be pre-initialised:
    /// always, now. Sets with C++ exception code (a library that imports
    /// the exception tag) could not be, as wasmtime's wizer cannot read
    /// such a module; their tag imports are now defined while the snapshot
    /// is made (`eryx_linker::hide_tag_imports`).
    #[deprecated(note = "every set can be pre-initialised; this is always true")]
    pub fn snapshottable(&self) -> bool {
        true
    }

    /// A handle that cancels this sandbox's running call from another task.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle {
            flag: self.cancel.clone(),
        }
    }

    /// The live instance, made (and Python started) if there is none.
    async fn live(&mut self) -> Result<&mut Live, Error> {
        if self.live.is_none() {
            let env: Vec<(&str, &str)> = self
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let state = State::new(
                &self.stdlib,
                self.site.dir(),
                self.scratch.clone(),
                &self.mounts,
                self.stdin.as_ref(),
                &env,
                &self.limits,
                self.cancel.clone(),
                Some(self.host_fns.clone()),
                self.net.clone(),
                crate::state::Clock::Running,
            )
            .map_err(|source| Error::Instantiate { source })?;
            let mut store = Store::new(&self.prepared.engine, state);
            store.limiter(|s| &mut s.limits);
            // Every epoch tick: stop on cancellation or past the deadline,
            // otherwise yield to the executor so that a busy guest never
            // starves other tasks.
            store.epoch_deadline_callback(|mut ctx| {
                let state = ctx.data_mut();
                if let Some(stop) = state.should_stop() {
                    state.stopped = Some(stop);
                    return Ok(UpdateDeadline::Interrupt);
                }
                Ok(UpdateDeadline::Yield(1))
            });
            store.set_epoch_deadline(1);
            let instance = self
                .prepared
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| match store.data().limits.refused_initial {
                    Some(needed) => Error::MemoryLimitTooSmall {
                        limit: self.limits.memory_bytes,
                        needed,
                    },
                    None => Error::Instantiate {
                        source: e.into_boxed_dyn_error(),
                    },
                })?;
            let exports = self
                .prepared
                .exports
                .load(&mut store, &instance)
                .map_err(|e| Error::RuntimeMismatch {
                    detail: format!("{e:#}"),
                })?;
            let mut live = Live { store, exports };
            if self.prepared.preinitialised {
                // Python was started before the snapshot this instance
                // was made from.
                self.live = Some(live);
                return Ok(self.live.as_mut().expect("just set"));
            }
            // Start the interpreter now, under its own deadline, so that
            // start-up time never counts against a user call's time limit
            // and a start-up failure surfaces here.
            let started = live
                .call(
                    world::Sandbox::func_execute,
                    (String::new(), STARTUP_OPTIONS),
                    STARTUP_LIMIT,
                )
                .await;
            match started {
                Ok((Ok(_),)) => {}
                Ok((Err(e),)) => {
                    let raw = live.store.data().raw_stderr();
                    return Err(match guest_error(e) {
                        Error::GuestInit { message } if !raw.trim().is_empty() => {
                            Error::GuestInit {
                                message: format!("{message}\n{}", raw.trim_end()),
                            }
                        }
                        other => other,
                    });
                }
                Err(e) => {
                    let limits = Limits {
                        timeout: STARTUP_LIMIT,
                        ..self.limits.clone()
                    };
                    return Err(live.classify(e, &limits));
                }
            }
            self.live = Some(live);
        }
        Ok(self.live.as_mut().expect("just set"))
    }

    /// Calls an export under the time limit; a trap drops the instance.
    async fn call<P, R>(&mut self, export: Export<P, R>, params: P) -> Result<R, Error>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let limits = self.limits.clone();
        // A cancellation requested while no call was running is void.
        self.cancel.store(false, Ordering::SeqCst);
        let sink = self.sink.take();
        self.raw_output = None;
        let live = self.live().await?;
        let state = live.store.data_mut();
        state.host_calls.clear();
        // Calls a previous execution started and never collected stop here.
        state.inflight = Default::default();
        state.emitted = crate::host_fn::Emitted {
            sink,
            ..Default::default()
        };
        state.raw.begin_call(limits.output_chars as usize);
        let result = live.call(export, params, limits.timeout).await;
        match result {
            Ok(r) => {
                let state = live.store.data_mut();
                state.merge_raw_output();
                let emitted = std::mem::take(&mut state.emitted);
                // Only when the guest wrote below `sys.stdout`: then the
                // call's output is the merge, in the order it was written.
                if emitted.raw {
                    let truncated = state.raw.truncated();
                    self.raw_output = Some(RawMerged {
                        stdout: emitted.stdout,
                        stderr: emitted.stderr,
                        truncated,
                    });
                }
                Ok(r)
            }
            Err(e) => {
                let err = live.classify(e, &limits);
                self.live = None;
                Err(err)
            }
        }
    }

    /// Runs `code` in the session's `__main__` namespace, as a cell named
    /// `<cell-N>` in tracebacks. Top-level `await` works (the code runs on
    /// the session's asyncio event loop); the value of a trailing
    /// expression is [`Output::value`].
    ///
    /// A Python exception is [`Error::Python`] (the session goes on); the
    /// other errors are sandbox failures.
    ///
    /// A cell run again (the same source as one of the last 32) reuses its
    /// compiled code, renamed for the new cell, instead of compiling it:
    /// calling a fixed snippet in a loop costs about half as much as new
    /// code each time.
    pub async fn execute(&mut self, code: &str) -> Result<Output, Error> {
        self.execute_with(code, None, None, false).await
    }

    /// Like [`Sandbox::execute`], and passes the output to `on_output` as
    /// the guest writes it (a [`crate::Chunk`] displays as its text; its
    /// `stream` says stdout or stderr), within the output cap. The returned
    /// [`Output`] (or the error) still holds all of it.
    pub async fn execute_streaming(
        &mut self,
        code: &str,
        on_output: impl FnMut(crate::Chunk<'_>) + Send + 'static,
    ) -> Result<Output, Error> {
        self.streaming(on_output, code, None, None, false).await
    }

    /// [`Sandbox::run_script`] with live output, as in
    /// [`Sandbox::execute_streaming`].
    pub async fn run_script_streaming(
        &mut self,
        code: &str,
        filename: &str,
        argv: &[String],
        on_output: impl FnMut(crate::Chunk<'_>) + Send + 'static,
    ) -> Result<Output, Error> {
        let (filename, argv) = (Some(filename.to_owned()), Some(argv.to_vec()));
        self.streaming(on_output, code, filename, argv, false).await
    }

    /// Runs `code` as `python3 FILE ARGS...` runs a program, to its end:
    /// [`Sandbox::run_script_streaming`], then, in the same call, what
    /// `python3` does as it exits (the `atexit` handlers run, files left
    /// open are flushed; what they write is part of the output), unless
    /// the code raised an exception other than `SystemExit`. After such an
    /// exception `python3` prints the traceback before the handlers run:
    /// print it, then call [`Sandbox::run_exit_handlers`]. The handlers
    /// are unregistered as they run, as in CPython; the session goes on.
    pub async fn run_program_streaming(
        &mut self,
        code: &str,
        filename: &str,
        argv: &[String],
        on_output: impl FnMut(crate::Chunk<'_>) + Send + 'static,
    ) -> Result<Output, Error> {
        let (filename, argv) = (Some(filename.to_owned()), Some(argv.to_vec()));
        self.streaming(on_output, code, filename, argv, true).await
    }

    /// What `python3` does as it exits, on its own: runs the `atexit`
    /// handlers registered so far (an exception in one is printed to the
    /// output's stderr and the rest still run) and flushes the files the
    /// code left open. For the end of a program that raised (see
    /// [`Sandbox::run_program_streaming`]) or of an interactive session.
    pub async fn run_exit_handlers(&mut self) -> Result<Output, Error> {
        // The prelude's function (compiled into the stdlib's bytecode): only
        // this line is compiled now.
        const CODE: &str = "__import__('_eryx_prelude').at_exit()\n";
        // Named, so not a numbered cell of the session.
        self.execute_with(CODE, Some("<exit>".to_owned()), None, false)
            .await
    }

    /// Runs `code` as the script `filename` with `sys.argv` set to `argv`
    /// (as `python3 FILE ARGS...` does: pass the file name as `argv[0]`):
    /// `__file__` is `filename` and tracebacks name it. Otherwise like
    /// [`Sandbox::execute`]; the session's namespace is shared.
    pub async fn run_script(
        &mut self,
        code: &str,
        filename: &str,
        argv: &[String],
    ) -> Result<Output, Error> {
        self.execute_with(code, Some(filename.to_owned()), Some(argv.to_vec()), false)
            .await
    }

    /// Writes `data` to the file `path` as the guest sees it: in its
    /// `/tmp` (counted against [`Limits::tmp_bytes`]) or in a read-write
    /// mount. Missing parent directories are made; an existing file is
    /// replaced. For the code's inputs (`/tmp/data.csv`) without a host
    /// directory to mount. The sandbox's `/tmp` lasts as long as the
    /// [`Sandbox`], across resets. Errors: [`Error::File`], naming the path
    /// and the fix (not in `/tmp` or a mount, a read-only mount, no space
    /// left, `..` in the path).
    pub fn write_file(&self, path: &str, data: &[u8]) -> Result<(), Error> {
        crate::files::write(path, data, self.scratch.as_deref(), &self.mounts)
    }

    /// The contents of the file `path` as the guest sees it, in its `/tmp`
    /// or a mount: what the code wrote there (`/tmp/chart.png`). Errors:
    /// [`Error::File`] (no such file, a directory, not in `/tmp` or a
    /// mount, larger than 1 GiB).
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>, Error> {
        crate::files::read(path, self.scratch.as_deref(), &self.mounts)
    }

    /// Runs a small cell that leaves no trace (no `<cell-N>` number, no
    /// variable, no `_`), so that the first call of this instance pays for
    /// the page faults and lazy initialisation a new instance takes on its
    /// first run (measured: ~0.5 ms for `1 + 1`, more for code that touches
    /// more of the interpreter; ~0.1 ms afterwards). A
    /// [`crate::SandboxPool`] does this before it hands a sandbox out.
    pub(crate) async fn warm_up(&mut self) -> Result<(), Error> {
        const WARM_UP: &str = "__import__('linecache').cache.pop('<eryx-warm-up>', None)\nNone\n";
        self.execute_with(WARM_UP, Some("<eryx-warm-up>".to_owned()), None, false)
            .await
            .map(drop)
    }

    /// [`Sandbox::execute_with`] with `on_output` given each write as it
    /// happens (the `*_streaming` calls).
    async fn streaming(
        &mut self,
        on_output: impl FnMut(crate::Chunk<'_>) + Send + 'static,
        code: &str,
        filename: Option<String>,
        argv: Option<Vec<String>>,
        at_exit: bool,
    ) -> Result<Output, Error> {
        self.sink = Some(Box::new(on_output));
        let r = self.execute_with(code, filename, argv, at_exit).await;
        self.sink = None;
        r
    }

    async fn execute_with(
        &mut self,
        code: &str,
        filename: Option<String>,
        argv: Option<Vec<String>>,
        at_exit: bool,
    ) -> Result<Output, Error> {
        let options = world::ExecuteOptions {
            output_limit: self.limits.output_chars,
            filename,
            argv,
            at_exit,
        };
        let (result,) = self
            .call(world::Sandbox::func_execute, (code.to_owned(), options))
            .await?;
        let mut out = result.map_err(guest_error)?;
        if let Some(merged) = self.raw_output.take() {
            let (stdout, stderr, truncated) =
                merged.into_streams(self.limits.output_chars as usize);
            out.stdout = stdout;
            out.stderr = stderr;
            out.truncated |= truncated;
        }
        if let Some(exc) = out.exception {
            return Err(Error::Python(Box::new(PythonError {
                type_name: exc.type_name,
                message: exc.message,
                traceback: exc.traceback,
                stdout: out.stdout,
                stderr: out.stderr,
            })));
        }
        Ok(Output {
            stdout: out.stdout,
            stderr: out.stderr,
            value: out.value,
            truncated: out.truncated,
            exit_code: out.exit_code,
        })
    }

    /// Serialises the session's variables (pickled inside the guest). Fails
    /// with [`Error::Unpicklable`], naming each variable and its type, if
    /// any cannot be pickled; see [`Sandbox::snapshot_skipping`].
    pub async fn snapshot(&mut self) -> Result<Snapshot, Error> {
        self.snapshot_inner(false).await
    }

    /// Like [`Sandbox::snapshot`], but leaves out what cannot be pickled and
    /// lists it in [`Snapshot::skipped`].
    pub async fn snapshot_skipping(&mut self) -> Result<Snapshot, Error> {
        self.snapshot_inner(true).await
    }

    async fn snapshot_inner(&mut self, skip: bool) -> Result<Snapshot, Error> {
        let (result,) = self
            .call(world::Sandbox::func_snapshot_state, (skip,))
            .await?;
        let snap = result.map_err(guest_error)?;
        Ok(Snapshot::new(&self.identity, snap.data, snap.skipped))
    }

    /// Replaces the session's variables with `snapshot`'s. A snapshot that
    /// is corrupt or from an incompatible sandbox fails with
    /// [`Error::InvalidSnapshot`] and leaves the session unchanged.
    pub async fn restore(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        snapshot.check_compatible(&self.identity)?;
        let (result,) = self
            .call(
                world::Sandbox::func_restore_state,
                (snapshot.payload().to_vec(),),
            )
            .await?;
        result.map_err(guest_error)
    }

    /// Empties the session's namespace (imports included).
    pub async fn clear(&mut self) -> Result<(), Error> {
        self.call(world::Sandbox::func_clear_state, ()).await
    }
}

/// Maps the guest's `error` variant onto the host's errors.
/// Whether `name=value` can be an environment variable (see
/// [`SandboxBuilder::env`]).
fn check_env(name: &str, value: &str) -> Result<(), Error> {
    let bad = |reason: &str| {
        Err(Error::BadEnv {
            name: name.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if name.is_empty() {
        return bad("the name is empty; give a name such as `API_URL`");
    }
    if name.contains('=') {
        return bad(
            "a name cannot contain `=` (it separates name and value); pass the value separately",
        );
    }
    if name.contains('\0') || value.contains('\0') {
        return bad("a name or value cannot contain a NUL character");
    }
    Ok(())
}

/// Whether the guest path `dir` can be the working directory (see
/// [`SandboxBuilder::working_dir`]), given the sandbox's checked mounts and
/// whether it has a scratch `/tmp`.
fn check_working_dir(dir: &str, mounts: &[Mount], scratch: bool) -> Result<(), Error> {
    let bad = |reason: String| {
        Err(Error::BadWorkingDir {
            path: dir.to_owned(),
            reason,
        })
    };
    if !crate::mount::is_plain_absolute(dir) {
        return bad(
            "give an absolute guest path without `.`, `..` or a trailing `/`, e.g. `/app`".into(),
        );
    }
    let tmp = crate::scratch::GUEST_TMP;
    let mount = mounts
        .iter()
        .find_map(|m| crate::mount::below(dir, &m.guest).map(|rel| (m, rel)));
    match mount {
        Some((m, rel)) => {
            let host = m.host.join(rel);
            if host.is_dir() {
                Ok(())
            } else {
                bad(format!(
                    "its host directory {} (in the mount at `{}`) does not exist or is not a \
                     directory; create it or name another",
                    host.display(),
                    m.guest
                ))
            }
        }
        None if dir == tmp && scratch => Ok(()),
        None if dir == tmp => bad(format!(
            "this sandbox has no `{tmp}` (its size limit is 0); mount a directory and name it"
        )),
        None if crate::mount::below(dir, tmp).is_some() => bad(format!(
            "the scratch directory `{tmp}` starts empty; use `{tmp}` itself (the code can \
             create a directory there and `os.chdir` into it), or mount a host directory"
        )),
        None => bad(format!(
            "it is in no mount; mount the host directory first (`SandboxBuilder::mount`, CLI \
             `--mount HOST:GUEST`) and name a directory in it, or use `{tmp}`"
        )),
    }
}

fn guest_error(e: GuestError) -> Error {
    match e {
        GuestError::Init(message) => Error::GuestInit { message },
        GuestError::Unsupported(message) => Error::Unsupported { message },
        GuestError::Snapshot(reason) => Error::InvalidSnapshot { reason },
        GuestError::Unpicklable(names) => Error::Unpicklable(
            names
                .into_iter()
                .map(|u| Unpicklable {
                    name: u.name,
                    type_name: u.type_name,
                    reason: u.reason,
                })
                .collect(),
        ),
        GuestError::Internal(message) => Error::GuestInternal { message },
    }
}
