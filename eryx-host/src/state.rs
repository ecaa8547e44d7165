//! The per-sandbox store data: the WASI context, its resource table and
//! the resource limiter.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::StdinStream;
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

use eryx_linker::layout::{GUEST_STDLIB, SITE_PACKAGES};

use crate::host_fn::{Emitted, HostFns, InFlight};
use crate::net::NetPolicy;
use crate::raw_output::RawOutput;
use crate::scratch::{GUEST_DEV, GUEST_TMP, Handles, Scratch, ScratchView};
use crate::{Access, BoxError, Limits, Mount};

/// The guest's user name (`USER`): what `getpass.getuser()` returns.
const GUEST_USER: &str = "sandbox";
/// pytest's defaults duplicate file descriptors, which WASI cannot do
/// (`os.dup` raises `OSError: [Errno 58] Not supported`): its output
/// capture at the descriptor level (`--capture=fd`) and its faulthandler
/// plugin made `pytest.main()` fail before running a test. These options
/// capture at the `sys.stdout`/`sys.stderr` level instead and leave the
/// plugin out; pytest puts them before its own command line, so options
/// given there (`-s`, `--capture=tee-sys`) still win.
const GUEST_PYTEST_ADDOPTS: &str = "--capture=sys -p no:faulthandler";

/// Store data of one sandbox instance.
pub(crate) struct State {
    wasi: Wasi,
    /// The scratch directory (`/tmp`), if the sandbox has one.
    scratch: Option<Arc<Scratch>>,
    /// Which of this instance's descriptor handles point into `/tmp`.
    handles: Handles,
    /// The caller's mounts (for `os.statvfs`).
    mounts: Vec<Mount>,
    /// Whether file reads may run on the calling thread (no caller mounts,
    /// as for `allow_blocking_current_thread`).
    inline_reads: bool,
    /// Descriptor 0's input again, for `/dev/stdin` (`None`: no stdin).
    stdin: Option<Box<dyn StdinStream>>,
    pub(crate) limits: MemoryLimiter,
    /// What the guest writes to descriptors 1 and 2 below `sys.stdout`
    /// (merged into the call's output; never the host's own stdio).
    pub(crate) raw: RawOutput,
    /// When the running call must stop.
    pub(crate) deadline: Option<Instant>,
    /// Set by a [`crate::CancelHandle`].
    cancel: Arc<AtomicBool>,
    /// Why the epoch callback interrupted the guest, if it did.
    pub(crate) stopped: Option<Stop>,
    /// The status the guest said it exits with (`os._exit(n)`), if it did.
    pub(crate) exiting: Option<i32>,
    /// The host functions the guest may call.
    pub(crate) host_fns: HostFns,
    /// The network allow-list, if the sandbox has one.
    net: Option<Arc<NetPolicy>>,
    /// The guest's TLS connections (see `tls.rs`).
    tls: crate::tls::Sessions,
    /// Calls per host function in the running `execute`.
    pub(crate) host_calls: HashMap<String, u32>,
    /// Output of the running call, as the guest wrote it.
    pub(crate) emitted: Emitted,
    /// Host calls started by the running call and not yet collected.
    pub(crate) inflight: InFlight,
    /// The guest's CPU time (`time.process_time()`).
    pub(crate) cpu: Arc<crate::cpu::CpuClock>,
}

impl crate::world::SandboxImports for State {
    async fn call_host(
        &mut self,
        name: String,
        arguments: String,
    ) -> Result<String, crate::world::HostError> {
        if name == crate::files::STATVFS_CALL {
            let scratch = self.scratch.as_deref();
            return Ok(crate::files::statvfs(&arguments, scratch, &self.mounts));
        }
        if name == crate::cpu::CPU_CALL {
            return Ok(self.cpu.now().as_nanos().to_string());
        }
        if name == crate::files::PRIVATE_CALL {
            let scratch = self.scratch.as_deref();
            return Ok(crate::files::private(&arguments, scratch, &self.mounts));
        }
        if name == crate::tls::TLS_CALL {
            if self.net.is_none() {
                return Err(crate::world::HostError {
                    kind: "no-network".into(),
                    message: String::new(),
                });
            }
            return self.tls.call(&arguments);
        }
        if name == crate::net::REFUSED_CALL {
            return match &self.net {
                Some(policy) => Ok(policy.refused(&arguments)),
                None => Err(crate::world::HostError {
                    kind: "no-network".into(),
                    message: String::new(),
                }),
            };
        }
        if name == crate::net::LOOKUP_CALL {
            let Some(policy) = self.net.clone() else {
                return Err(crate::world::HostError {
                    kind: "no-network".into(),
                    message: String::new(),
                });
            };
            return policy.lookup(&arguments).await;
        }
        crate::host_fn::call(&self.host_fns, &mut self.host_calls, &name, &arguments).await
    }

    fn call_host_bytes(&mut self, name: String, data: Vec<u8>) -> Vec<u8> {
        let outcome = if name != crate::tls::TLS_CALL {
            Err(crate::world::HostError {
                kind: "not-found".into(),
                message: format!("no host call `{name}` takes bytes"),
            })
        } else if self.net.is_none() {
            Err(crate::world::HostError {
                kind: "no-network".into(),
                message: String::new(),
            })
        } else {
            // The text arguments, a NUL, the payload (see the WIT).
            let at = data.iter().position(|&b| b == 0).unwrap_or(data.len());
            match std::str::from_utf8(&data[..at]) {
                Ok(arguments) => self
                    .tls
                    .call_bytes(arguments, data.get(at + 1..).unwrap_or(&[])),
                Err(_) => Err(crate::world::HostError {
                    kind: "internal".into(),
                    message: "call-host-bytes: the arguments are not UTF-8".into(),
                }),
            }
        };
        match outcome {
            Ok(mut result) => {
                result.insert(0, 0);
                result
            }
            Err(e) => {
                let mut answer = vec![1];
                answer.extend_from_slice(e.kind.as_bytes());
                answer.push(b'\n');
                answer.extend_from_slice(e.message.as_bytes());
                answer
            }
        }
    }

    fn start_host_call(&mut self, name: String, arguments: String) -> u32 {
        self.inflight
            .start(&self.host_fns, &mut self.host_calls, &name, &arguments)
    }

    async fn wait_host_calls(
        &mut self,
        ids: Vec<u32>,
        timeout_ms: Option<u64>,
    ) -> Vec<crate::world::HostCallDone> {
        let timeout = timeout_ms.map(Duration::from_millis);
        self.inflight
            .wait(&ids, timeout)
            .await
            .into_iter()
            .map(|(id, outcome)| crate::world::HostCallDone { id, outcome })
            .collect()
    }

    fn host_functions(&mut self) -> Vec<String> {
        self.host_fns.keys().cloned().collect()
    }

    fn emit_output(&mut self, fd: u8, text: String) {
        self.merge_raw_output();
        self.emitted.push(fd, &text);
    }

    fn memory_limit(&mut self) -> u64 {
        self.limits.max_bytes as u64
    }

    fn exiting(&mut self, status: i32) {
        self.exiting = Some(status);
    }

    fn set_memory_limit(&mut self, bytes: u64) -> u64 {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        self.limits.max_bytes = bytes.min(self.limits.ceiling);
        self.limits.max_bytes as u64
    }
}

/// Why the host interrupted the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Timeout,
    Cancelled,
}

/// The WASI context and its resource table (a field of its own, so that
/// the filesystem view can borrow it beside the scratch state).
struct Wasi {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Wasi {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}

/// The monotonic clock a store's guest reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clock {
    /// Real time, from 0 when the store is made: a sandbox's.
    Running,
    /// Stands at 0: the pre-initialising store's. What the guest reads of
    /// the monotonic clock while a snapshot is made stays in the snapshot:
    /// wasi-libc's emulated process clocks take their start there, and
    /// every sandbox's clock starts again from 0, so `time.process_time()`
    /// and `os.times()` read negative (minus the start-up time) in every
    /// sandbox of a snapshot made with a running clock. With this clock
    /// the snapshot's start is 0, the sandbox's first instant.
    Frozen,
}

/// A monotonic clock that stands at 0 (see [`Clock::Frozen`]).
struct FrozenClock;

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        0
    }
}

/// What the guest reads as its standard input (fd 0, `sys.stdin`).
#[derive(Clone, Debug)]
pub(crate) enum GuestStdin {
    /// These bytes, then end of file; each new instance reads them from
    /// the start (a `Bytes` clone: no copy per instance).
    Data(bytes::Bytes),
    /// The host process's own stdin, read as the guest asks for it.
    Host,
}

impl State {
    /// Deny by default: no env but `TMPDIR`, `HOME`, `USER`,
    /// `PYTEST_ADDOPTS` and `env` (whose values win over these four), no
    /// args, no stdin
    /// (unless given), stdout and stderr into [`RawOutput`] (merged into the
    /// call's output), no
    /// network; the stdlib and the packages read-only, the scratch
    /// directory at `/tmp` (when given) and the caller's mounts.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site per kind of store; a struct would only rename them"
    )]
    pub(crate) fn new(
        stdlib: &std::path::Path,
        package: Option<&std::path::Path>,
        scratch: Option<Arc<Scratch>>,
        mounts: &[Mount],
        stdin: Option<&GuestStdin>,
        env: &[(&str, &str)],
        limits: &Limits,
        cancel: Arc<AtomicBool>,
        host_fns: Option<HostFns>,
        net: Option<Arc<NetPolicy>>,
        clock: Clock,
    ) -> Result<State, BoxError> {
        let raw = RawOutput::default();
        let mut builder = WasiCtx::builder();
        // Each is given twice: to WASI for descriptor 0 and to `/dev/stdin`
        // (the two share their progress: a `MemoryInputPipe`'s clones share
        // one buffer, the others read the one process stdin).
        let stdin: Option<Box<dyn StdinStream>> = match stdin {
            None => None,
            Some(GuestStdin::Data(data)) => {
                let pipe = MemoryInputPipe::new(data.clone());
                builder.stdin(pipe.clone());
                Some(Box::new(pipe))
            }
            // Read only when the guest asks and only what is there, so
            // nothing is taken from the host's stdin before the code reads
            // it, nor after a call that ended while waiting for input.
            Some(GuestStdin::Host) => {
                #[cfg(unix)]
                let host = || crate::host_stdin::HostStdin;
                #[cfg(not(unix))]
                let host = std::io::stdin;
                builder.stdin(host());
                Some(Box::new(host()))
            }
        };
        builder
            .stdout(raw.stream(1))
            .stderr(raw.stream(2))
            // TCP only with an allow-list, every address checked against
            // it; names are resolved by the host (`LOOKUP_CALL`), never
            // through WASI (see `net.rs`).
            .allow_tcp(net.is_some())
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            // File operations run on the calling thread instead of a
            // `spawn_blocking` round trip each (imports stat, open and read
            // a dozen times per module: importing two extensions took 2.3
            // ms, now 0.7). Only without caller mounts: the stdlib, the
            // packages, `/tmp` and `/dev` hold regular files, while a
            // mounted host directory may hold a FIFO whose `open` blocks
            // until a writer comes, and the call's time limit must still
            // be able to drop it.
            .allow_blocking_current_thread(mounts.is_empty());
        // `tempfile` and friends find the scratch directory by `TMPDIR` (set
        // in every store, the pre-initialising one too; the runtime reads
        // the environment again in an instance made from a snapshot). The
        // runtime makes it the working directory.
        //
        // `Path.home()` raises and `expanduser("~")` is left as it is
        // without `HOME` (there is no password database either): caches and
        // config files that libraries keep under `~` go to `/tmp`.
        //
        // `getpass.getuser()` looks at `LOGNAME`, `USER`, ... and then the
        // password database, which WASI has none of: it raised "No
        // username set in the environment" (libraries name cache and lock
        // files after the user with it).
        let mut vars: Vec<(&str, &str)> = vec![
            ("TMPDIR", GUEST_TMP),
            ("HOME", GUEST_TMP),
            ("USER", GUEST_USER),
            ("PYTEST_ADDOPTS", GUEST_PYTEST_ADDOPTS),
            // The working directory, as a shell keeps it; the runtime
            // enters another one given here (`SandboxBuilder::working_dir`).
            ("PWD", GUEST_TMP),
        ];
        // One entry per name (libc's `getenv` would find the first of two),
        // the caller's value winning.
        for &(k, v) in env {
            match vars.iter_mut().find(|(name, _)| *name == k) {
                Some(slot) => slot.1 = v,
                None => vars.push((k, v)),
            }
        }
        for (k, v) in vars {
            builder.env(k, v);
        }
        if let Some(policy) = &net {
            let policy = policy.clone();
            builder.socket_addr_check(move |addr, usage| {
                let ok = policy.permits(addr, usage);
                Box::pin(std::future::ready(ok))
            });
        }
        if let Clock::Frozen = clock {
            builder.monotonic_clock(FrozenClock);
        }
        builder.preopened_dir(stdlib, GUEST_STDLIB, FsPerms::ReadOnly)?;
        if let Some(dir) = package {
            builder.preopened_dir(dir, SITE_PACKAGES, FsPerms::ReadOnly)?;
        }
        if let Some(s) = &scratch {
            builder.preopened_dir(s.path(), GUEST_TMP, FsPerms::ReadWrite)?;
        }
        builder.preopened_dir(crate::scratch::dev_dir()?, GUEST_DEV, FsPerms::ReadOnly)?;
        let mut guest_paths = vec![GUEST_STDLIB, GUEST_DEV];
        guest_paths.extend(package.map(|_| SITE_PACKAGES));
        guest_paths.extend(scratch.as_ref().map(|_| GUEST_TMP));
        guest_paths.extend(mounts.iter().map(|m| m.guest.as_str()));
        builder.preopened_dir(
            crate::scratch::root_dir(&guest_paths)?,
            "/",
            FsPerms::ReadOnly,
        )?;
        for m in mounts {
            let perms = match m.access {
                Access::ReadOnly => FsPerms::ReadOnly,
                Access::ReadWrite => FsPerms::ReadWrite,
            };
            builder.preopened_dir(&m.host, &m.guest, perms)?;
        }
        let limits = MemoryLimiter {
            max_bytes: limits.memory_bytes,
            ceiling: limits.memory_bytes,
            hit: false,
            refused_initial: None,
        };
        Ok(State {
            wasi: Wasi {
                ctx: builder.build(),
                table: ResourceTable::new(),
            },
            scratch,
            handles: Handles::default(),
            mounts: mounts.to_vec(),
            inline_reads: mounts.is_empty(),
            stdin,
            limits,
            raw,
            deadline: None,
            cancel,
            stopped: None,
            exiting: None,
            host_fns: host_fns.unwrap_or_default(),
            net,
            tls: Default::default(),
            host_calls: HashMap::new(),
            emitted: Emitted::default(),
            inflight: InFlight::default(),
            cpu: Arc::default(),
        })
    }

    /// The filesystem as the guest sees it (writes under `/tmp` counted).
    pub(crate) fn scratch_view(&mut self) -> ScratchView<'_> {
        ScratchView {
            fs: self.wasi.filesystem(),
            scratch: self.scratch.as_ref(),
            handles: &mut self.handles,
            inline_reads: self.inline_reads,
            raw: &self.raw,
            stdin: &mut self.stdin,
        }
    }

    /// The flag a [`crate::CancelHandle`] sets.
    pub(crate) fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// Whether the running call must stop now, and why.
    pub(crate) fn should_stop(&self) -> Option<Stop> {
        if self.cancel.load(Ordering::SeqCst) {
            return Some(Stop::Cancelled);
        }
        match self.deadline {
            Some(d) if Instant::now() >= d => Some(Stop::Timeout),
            _ => None,
        }
    }

    /// Whether the guest was refused memory since the current call began
    /// and has not been granted any since (a refusal the guest survived,
    /// e.g. as a `MemoryError` it caught and then allocated on, does not
    /// make a later trap a memory one).
    pub(crate) fn limits_hit(&self) -> bool {
        self.limits.hit
    }

    /// Forgets refusals of earlier calls (at the start of a call).
    pub(crate) fn new_call(&mut self) {
        self.limits.hit = false;
    }

    /// The latest of what the guest wrote to its raw stderr, lossily
    /// decoded (for error messages).
    pub(crate) fn raw_stderr(&self) -> String {
        self.raw.stderr_tail()
    }

    /// Moves the guest's raw output written since the last merge into the
    /// call's output (before Python-level output that came after it).
    pub(crate) fn merge_raw_output(&mut self) {
        for (fd, text) in self.raw.drain() {
            self.emitted.push_raw(fd, &text);
        }
    }
}

/// Caps linear memory and remembers whether a grow was refused, so a trap
/// that follows can be reported as [`crate::Error::MemoryLimit`].
pub(crate) struct MemoryLimiter {
    /// The limit in force: the embedder's, or a lower one the guest set
    /// (`resource.setrlimit`).
    max_bytes: usize,
    /// The embedder's limit: the guest cannot set one above it.
    ceiling: usize,
    hit: bool,
    /// The size of an initial memory that the limit refused (the
    /// instance could not even be made): see [`crate::Error::MemoryLimitTooSmall`].
    pub(crate) refused_initial: Option<usize>,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            if current == 0 {
                self.refused_initial = Some(desired);
            }
            return Ok(false);
        }
        // Memory granted after a refusal: the guest got past it (Python
        // caught the `MemoryError` and went on allocating), so a trap that
        // follows is not the refusal's. A trap that a refusal causes (an
        // abort where an allocation failed) comes before any further grow.
        self.hit = false;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million entries is far beyond
        // what CPython and its extensions use.
        Ok(desired <= 1 << 20)
    }
}
