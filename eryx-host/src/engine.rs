//! One wasmtime [`Engine`] per process, and one compiled component plus
//! [`InstancePre`] per bundle, shared by every sandbox made from it.
//!
//! Compiling the ~10 MB component takes seconds, so compiled components are
//! cached on disk (see [`crate::cache`]), keyed by the bundle manifest's
//! content hash, the extensions, the linker and wasmtime versions and the
//! engine configuration, and loaded by mapping the file. A new extension set
//! recompiles only the functions never compiled before (Cranelift's
//! incremental cache).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine, Module};

use crate::cache::{ComponentCache, FunctionCache, max_bytes_from_env};
use crate::package::ExtensionSet;
use crate::state::State;
use crate::{BoxError, Error};
use eryx_linker::Extension;

/// How often the epoch advances: the granularity of time limits.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How long interpreter start-up (in a sandbox, or while pre-initialising)
/// may take; it is not a user call, so the user's time limit does not apply.
pub(crate) const STARTUP_LIMIT: Duration = Duration::from_secs(120);

/// Everything about the engine configuration that changes compiled code.
const ENGINE_CONFIG_TAG: &str = "cm+cm-async+epoch-interruption+stack/v2+split/v1+eager-tables";

/// The native (wasm) stack one sandbox call may use. Every level of C
/// recursion in CPython (the JSON decoder, `repr` of nested lists, pickle,
/// the compiler) takes a few hundred bytes of it but only tens of bytes of
/// the 8 MiB shadow stack in linear memory, which is what CPython's own
/// guard watches. At 512 MiB the guard fires first for every recursion
/// tried (it raises `RecursionError` "Stack overflow (used 8176 kB)"), so
/// the session survives; at 48 MiB the JSON decoder trapped at ~150,000
/// levels. It is address space, not memory: pages are touched only as
/// deep as a call really goes.
const WASM_STACK: usize = 512 << 20;

/// The process-wide engines: one per function-cache directory (the
/// incremental compilation cache is part of an engine's configuration).
fn engine(
    functions: Option<&Path>,
    pool: Option<u32>,
    exceptions: bool,
) -> Result<(Engine, Option<Arc<FunctionCache>>), Error> {
    type Engines =
        HashMap<(Option<PathBuf>, Option<u32>, bool), (Engine, Option<Arc<FunctionCache>>)>;
    static ENGINES: OnceLock<std::sync::Mutex<Engines>> = OnceLock::new();
    let mut engines = ENGINES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = (functions.map(Path::to_path_buf), pool, exceptions);
    if let Some(found) = engines.get(&key) {
        return Ok(found.clone());
    }
    let engine_err = |e: wasmtime::Error| Error::Engine {
        source: e.into_boxed_dyn_error(),
    };
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    config.epoch_interruption(true);
    // C++ exceptions and C's `longjmp` in extensions are wasm exceptions:
    // each throw allocates an exception object in the GC heap. For a set with such a
    // library the reference-counting collector frees each one when it is
    // caught (the null collector keeps every one, outside the memory limit:
    // 6 million throws grew the process by 140 MB). The others get the null
    // collector: reference counting cost every sandbox ~0.7 ms at creation,
    // ~0.05 ms per call and ~0.3 MiB (bench A/B, 2026-12-02).
    config.wasm_exceptions(true);
    config.collector(if exceptions {
        wasmtime::Collector::DeferredReferenceCounting
    } else {
        wasmtime::Collector::Null
    });
    // For profiling guest code with `perf` (`ERYX_PERF_MAP=1`): wasmtime
    // writes /tmp/perf-PID.map naming every compiled wasm function. It
    // does not change the compiled code.
    if std::env::var_os("ERYX_PERF_MAP").is_some_and(|v| !v.is_empty()) {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    // Tables are filled at instantiation rather than on each element's
    // first use: a new instance's first call (which touches hundreds of
    // CPython's function pointers) got cheaper and instantiation did not
    // get slower (A/B, 5 pairs: new sandbox + first call 1.52-1.89 vs
    // 1.59-2.65 ms; first call in a fresh process 0.8-1.2 vs 1.2-1.9 ms).
    config.table_lazy_init(false);
    // A pre-initialised snapshot's heap is its module's initial memory.
    // wasmtime maps it copy-on-write from the compiled file only when its
    // non-zero bytes cover half of its span or the span is under 16 MiB;
    // otherwise every instance copies it. A temporary allocation high in
    // the heap before the snapshot (a pre-imported module's, or one seen
    // from a snapshot built during a busy test run: 4 MB more scattered
    // data) made each sandbox copy the heap: +1 MiB resident per sandbox,
    // slower instantiation. Snapshot heaps up to 256 MiB are always mapped
    // (the compiled file stores their zero gaps).
    config.memory_guaranteed_dense_image_size(256 << 20);
    config.max_wasm_stack(WASM_STACK);
    config.async_stack_size(WASM_STACK + (1 << 20));
    if let Some(sandboxes) = pool {
        // Every instance's memories, tables and instance data come from
        // slots reserved up front (virtual memory, ~4 GiB per sandbox).
        let sandboxes = sandboxes.max(1);
        let mut limits = wasmtime::PoolingAllocationConfig::new();
        limits
            .total_component_instances(sandboxes)
            .total_core_instances(sandboxes.saturating_mul(32))
            .total_memories(sandboxes.saturating_mul(2))
            .total_tables(sandboxes.saturating_mul(4))
            .total_stacks(sandboxes.saturating_mul(2))
            // One GC heap per sandbox that throws a C++ exception.
            .total_gc_heaps(sandboxes)
            .max_core_instances_per_component(64)
            .max_memories_per_component(4)
            .max_tables_per_component(8)
            .max_core_instance_size(8 << 20)
            .max_component_instance_size(8 << 20)
            .table_elements(1 << 16)
            .max_memory_size(1 << 32)
            // A slot's pages stay mapped when its sandbox is dropped: the
            // kernel's PAGEMAP_SCAN (Linux 6.7+; `Auto` falls back to
            // `madvise` elsewhere) finds the pages the sandbox wrote and
            // only those are copied back from the snapshot, so the next
            // sandbox in the slot takes no page faults for them. Measured
            // (new sandbox + first result, 500 in a row, medians of 4-5
            // interleaved runs): 2.62 -> 2.14 ms against the pool without
            // it, 2.07 -> 1.64-1.70 ms against on-demand allocation; keeping
            // 8, 32 or 128 MiB resident made no difference, and without
            // PAGEMAP_SCAN keeping memory resident was slower (3.69 ms: the
            // whole span is reset).
            .linear_memory_keep_resident(16 << 20)
            .table_keep_resident(512 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(limits));
    }
    let cache = functions.map(|dir| Arc::new(FunctionCache::new(dir.to_path_buf())));
    if let Some(cache) = &cache {
        config
            .enable_incremental_compilation(cache.clone())
            .map_err(engine_err)?;
    }
    let engine = Engine::new(&config).map_err(engine_err)?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("eryx-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(|e| Error::Engine { source: e.into() })?;
    engines.insert(key, (engine.clone(), cache.clone()));
    Ok((engine, cache))
}

/// Receives progress messages of long steps.
pub(crate) type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// A compiled component, ready to instantiate.
pub(crate) struct Prepared {
    pub(crate) engine: Engine,
    pub(crate) pre: InstancePre<State>,
    /// Where the sandbox world's exports are in every instance.
    pub(crate) exports: crate::world::SandboxIndices,
    /// Python is already started in every instance (see [`Preinit`]).
    pub(crate) preinitialised: bool,
    /// What the pre-initialisation left in its `/tmp`: each sandbox's
    /// `/tmp` starts with it.
    pub(crate) tmp_seed: Option<Arc<crate::tmp_seed::TmpSeed>>,
}

/// Where compiled components are kept.
#[derive(Debug, Clone)]
pub(crate) enum CacheDir {
    Dir(PathBuf),
    Disabled,
}

impl CacheDir {
    /// `ERYX_CACHE_DIR`, else `$XDG_CACHE_HOME/eryx`, else `$HOME/.cache/eryx`.
    pub(crate) fn default_location() -> CacheDir {
        let from_env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(dir) = from_env("ERYX_CACHE_DIR") {
            return CacheDir::Dir(dir);
        }
        if let Some(dir) = from_env("XDG_CACHE_HOME") {
            return CacheDir::Dir(dir.join("eryx"));
        }
        match from_env("HOME") {
            Some(home) => CacheDir::Dir(home.join(".cache").join("eryx")),
            None => CacheDir::Disabled,
        }
    }
}

/// What every compiled artifact's key includes: the compiler and its
/// configuration.
const ENGINE_PARTS: [&str; 3] = ["wasmtime-48.0.8", ENGINE_CONFIG_TAG, std::env::consts::ARCH];

/// Feeds `parts` to `h`, each prefixed with its length (so that no two
/// lists of parts hash alike).
fn hash_parts(h: &mut Sha256, parts: &[&str]) {
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
}

/// The cache key of a bundle's compiled component.
pub(crate) fn cache_key(bundle: &eryx_linker::Bundle, extensions: &ExtensionSet) -> String {
    let mut h = Sha256::new();
    let mut exts: Vec<(&str, &str)> = extensions.digests().collect();
    exts.sort();
    for (path, hash) in exts {
        h.update((path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update(hash.as_bytes());
    }
    hash_parts(
        &mut h,
        &[
            bundle.manifest().content_hash().as_str(),
            eryx_linker::VERSION,
            &eryx_linker::LINK_REVISION.to_string(),
            &eryx_linker::sha256_hex(eryx_linker::SANDBOX_WIT.as_bytes()),
            env!("CARGO_PKG_VERSION"),
        ],
    );
    hash_parts(&mut h, &ENGINE_PARTS);
    hex::encode(h.finalize())
}

/// Pre-initialisation: the component is instantiated once at build time,
/// CPython is started (and `imports` imported) in it, and that state is
/// snapshotted into a new component with wasmtime's wizer, so sandboxes
/// made from it skip interpreter start-up.
#[derive(Debug, Clone)]
pub(crate) struct Preinit {
    /// The stdlib directory (mounted as at run time).
    pub(crate) stdlib: PathBuf,
    /// The merged site-packages directory, if any.
    pub(crate) site: Option<PathBuf>,
    /// Modules to import before the snapshot.
    pub(crate) imports: Vec<String>,
    /// The packages' content hash when `imports` may come from them.
    pub(crate) site_hash: String,
}

impl Preinit {
    /// What makes two pre-initialised components differ (beyond the
    /// component itself): part of the cache key. v2: compiled whole. v3:
    /// with the stdlib directory's modification time, which the snapshot's
    /// import system has cached: after the directory changed (a new
    /// `cargo xtask dist`), every instance of an old snapshot re-listed the
    /// whole stdlib, with a host call per file, at its first import
    /// (measured: a first call of 10 ms instead of 2.5). v4: with
    /// [`STDLIB_PREIMPORTS`] (whose names are part of the tag since they
    /// gained `asyncio`: a changed list makes a new snapshot by itself).
    /// v5: made with a frozen monotonic clock and `HOME` set (see
    /// [`crate::state::Clock`]). v6: `USER` set. v7: `PYTEST_ADDOPTS` set.
    /// v8: the exports no module uses pruned ([`eryx_linker::prune_exports`]).
    /// v9: made with a scratch `/tmp`. v10: what the run left in `/tmp`
    /// kept with the snapshot ([`crate::tmp_seed`]). v11: its symbolic
    /// links too (v10's seeds left them out).
    fn tag(&self) -> String {
        let stdlib_mtime = std::fs::metadata(&self.stdlib)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        format!(
            "preinit/v11:{}:{}:{}:{stdlib_mtime}",
            STDLIB_PREIMPORTS.join(","),
            self.imports.join(","),
            self.site_hash
        )
    }
}

/// Standard-library modules every snapshot has imported, so that scripts
/// do not pay for them in each sandbox: importing is executing module code,
/// ~2x slower in the guest than natively (measured in a fresh sandbox: `re`
/// 12 ms, `json` 14.5, `typing` 10, `dataclasses` 24, `pathlib` 17,
/// `asyncio` 82 ms for its 60 modules, most of it executing their code:
/// finding them is 3 ms, unmarshalling 9). None of them keeps per-process
/// randomness (`random`, `tempfile`, `uuid` are not among them: every
/// sandbox of a snapshot would share their state). What they cost in
/// resident memory is what an idle sandbox touches of them, which is little
/// (the bench's RSS per idle sandbox, 10 sandboxes: 3.87-3.90 MiB without
/// `asyncio`, 3.94 with it); a first `asyncio.run` went from 93 ms to 5.
/// The list is part of the snapshot's tag.
const STDLIB_PREIMPORTS: &[&str] = &["re", "json", "typing", "dataclasses", "pathlib", "asyncio"];

/// Runs the pre-initialisation; returns the snapshot component's bytes.
///
/// wizer's steps are taken one by one so that the run itself uses split
/// compilation: instrumenting leaves the libraries' modules as they are
/// (it only adds exports to modules with mutable globals or a memory), so
/// the instrumented component's libraries come compiled from the cache and
/// only its glue is compiled; then the snapshot is taken.
fn preinitialise(
    compiler: &mut Compiler<'_>,
    bytes: &[u8],
    spec: &Preinit,
) -> Result<(Vec<u8>, Option<crate::tmp_seed::TmpSeed>), Error> {
    use wasmtime::component::Val;

    let err = |what: &str, e: String| Error::Preinit {
        message: format!("{what}: {e}"),
    };
    let engine = compiler.engine;
    let limits = crate::Limits {
        timeout: STARTUP_LIMIT,
        ..crate::Limits::default()
    };
    // The runtime imports what `ERYX_PREIMPORT` names during start-up,
    // before it lets go of its WASI handles (see `eryx-runtime`).
    let imports = STDLIB_PREIMPORTS
        .iter()
        .copied()
        .chain(spec.imports.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(",");
    let env = [("ERYX_PREIMPORT", imports.as_str())];
    // A scratch `/tmp` for the run, as sandboxes have: pre-imports may
    // need a writable directory (matplotlib makes its cache dir in
    // `$HOME`, `/tmp`, at import). What they leave there is kept with the
    // snapshot: every sandbox of it starts with those files in its `/tmp`
    // (the snapshot's Python state may name them).
    let scratch = Arc::new(
        crate::scratch::Scratch::new(limits.tmp_bytes)
            .map_err(|e| err("creating the scratch directory for /tmp", e.to_string()))?,
    );
    let state = State::new(
        &spec.stdlib,
        spec.site.as_deref(),
        Some(scratch.clone()),
        &[],
        None,
        &env,
        &limits,
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
        None,
        None,
        crate::state::Clock::Frozen,
    )
    .map_err(|e| err("setting up WASI", e.to_string()))?;
    let mut store = wasmtime::Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    store.epoch_deadline_callback(|_| Ok(wasmtime::UpdateDeadline::Yield(1)));
    store.set_epoch_deadline(1);
    // wizer cannot read a module that imports a tag (C++ extensions import
    // libunwind's): wizer reads a component where those imports are
    // definitions, and the component that runs and the snapshot import
    // them again (see `eryx_linker::hide_tag_imports`).
    let (bytes, hidden) = eryx_linker::hide_tag_imports(bytes)
        .map_err(|e| err("preparing the exception tag imports for the snapshot", e))?;
    let wizer = wasmtime_wizer::Wizer::new();
    let (cx, instrumented) = wizer
        .instrument_component(&bytes)
        .map_err(|e| err("instrumenting the component", format!("{e:?}")))?;
    let instrumented = eryx_linker::restore_tag_imports(&instrumented, &hidden)
        .map_err(|e| err("restoring the exception tag imports for the run", e))?;
    let (run, _) = compiler.compile_split(&instrumented)?;
    let pre = instantiate_pre(engine, &run)
        .map_err(|e| err("linking the instrumented component", e.to_string()))?;
    let handle = tokio::runtime::Handle::current();
    let (snapshot, results) = handle
        .block_on(async {
            let instance = pre.instantiate_async(&mut store).await?;
            let execute = instance
                .get_func(&mut store, "execute")
                .ok_or_else(|| wasmtime::format_err!("the component exports no `execute`"))?;
            let args = [
                Val::String(String::new()),
                Val::Record(vec![
                    ("output-limit".to_string(), Val::U32(0)),
                    ("filename".to_string(), Val::Option(None)),
                    ("argv".to_string(), Val::Option(None)),
                    ("at-exit".to_string(), Val::Bool(false)),
                ]),
            ];
            let mut results = vec![Val::Bool(false)];
            execute.call_async(&mut store, &args, &mut results).await?;
            let mut reader = SnapshotReader {
                store: &mut store,
                instance,
                failed: None,
            };
            let snapshot = wizer.snapshot_component(&cx, &mut reader).await;
            if let Some(e) = reader.failed {
                return Err(e);
            }
            Ok::<_, wasmtime::Error>((snapshot?, results))
        })
        .map_err(|e| err("the pre-initialisation run failed", format!("{e:?}")))?;
    let snapshot = eryx_linker::restore_tag_imports(&snapshot, &hidden)
        .map_err(|e| err("restoring the exception tag imports in the snapshot", e))?;
    // `execute` returns result<output, error>: start-up failures (e.g. a
    // pre-import that raised) come back as the error's `init` case.
    match results.first() {
        Some(Val::Result(Ok(_))) => {
            let seed = crate::tmp_seed::TmpSeed::collect(scratch.path())
                .map_err(|e| err("reading what the pre-imports left in /tmp", e.to_string()))?;
            Ok((snapshot, seed))
        }
        Some(Val::Result(Err(Some(e)))) => match &**e {
            Val::Variant(case, Some(payload)) => match &**payload {
                Val::String(msg) => Err(err(&format!("start-up failed ({case})"), msg.clone())),
                other => Err(err(
                    &format!("start-up failed ({case})"),
                    format!("{other:?}"),
                )),
            },
            other => Err(err("start-up failed", format!("{other:?}"))),
        },
        other => Err(err("Python did not start", format!("{other:?}"))),
    }
}

/// Reads the pre-initialised instance's state for wizer's snapshot: wizer
/// calls the accessor functions its instrumentation exported (a memory's
/// bytes, a global's value). wizer's own reader panics when a call fails;
/// this one records the first failure (a trap, a missing export) and hands
/// wizer an empty value, and [`preinitialise`] then reports the failure and
/// drops the snapshot.
struct SnapshotReader<'a, T: 'static> {
    store: &'a mut wasmtime::Store<T>,
    instance: wasmtime::component::Instance,
    failed: Option<wasmtime::Error>,
}

impl<T: Send> SnapshotReader<'_, T> {
    /// Calls the export `func` of the exported instance `instance`; `None`
    /// (and the failure recorded) if that fails.
    async fn call<R>(&mut self, instance: &str, func: &str) -> Option<R>
    where
        R: wasmtime::component::Lift + Send + Sync + 'static,
    {
        if self.failed.is_some() {
            return None;
        }
        match self.try_call(instance, func).await {
            Ok(value) => Some(value),
            Err(e) => {
                self.failed =
                    Some(e.context(format!("reading `{instance}#{func}` for the snapshot")));
                None
            }
        }
    }

    async fn try_call<R>(&mut self, instance: &str, func: &str) -> wasmtime::Result<R>
    where
        R: wasmtime::component::Lift + Send + Sync + 'static,
    {
        let missing =
            || wasmtime::format_err!("the instrumented component exports no such function");
        let (_, outer) = self
            .instance
            .get_export(&mut *self.store, None, instance)
            .ok_or_else(missing)?;
        let (_, index) = self
            .instance
            .get_export(&mut *self.store, Some(&outer), func)
            .ok_or_else(missing)?;
        let typed = self
            .instance
            .get_typed_func::<(), (R,)>(&mut *self.store, index)?;
        Ok(typed.call_async(&mut *self.store, ()).await?.0)
    }
}

impl<T: Send> wasmtime_wizer::ComponentInstanceState for SnapshotReader<'_, T> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        match self
            .call::<wasmtime::component::WasmList<u8>>(instance, func)
            .await
        {
            Some(list) => contents(list.as_le_slice(&*self.store)),
            None => contents(&[]),
        }
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func).await.unwrap_or_default()
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func).await.unwrap_or_default()
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call::<f32>(instance, func)
            .await
            .map_or(0, f32::to_bits)
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call::<f64>(instance, func)
            .await
            .map_or(0, f64::to_bits)
    }
}

/// A compiled component and the compiled library modules it imports (see
/// `eryx_linker::split`).
pub(crate) struct Compiled {
    component: Component,
    modules: Vec<(String, Module)>,
    /// A snapshot's `/tmp` (see [`crate::tmp_seed`]).
    tmp: Option<Arc<crate::tmp_seed::TmpSeed>>,
}

/// What a compilation did, for the progress line.
#[derive(Default)]
struct Work {
    modules: usize,
    module_bytes: usize,
}

/// The cache key of one library module: its content and the host.
fn module_key(sha256: &str, host: u64) -> String {
    let mut h = Sha256::new();
    hash_parts(&mut h, &["module/v1"]);
    hash_parts(&mut h, &ENGINE_PARTS);
    hash_parts(&mut h, &[&format!("{host:016x}")]);
    // The module's digest (the linker and the bundle's manifest know it;
    // text that is not one is hashed as it is: another key, never a wrong
    // one).
    match hex::decode(sha256) {
        Ok(digest) if digest.len() == 32 => h.update(digest),
        _ => h.update(sha256.as_bytes()),
    }
    hex::encode(h.finalize())
}

/// A note in a component's check file: "this import is that module entry".
const IMPORT_NOTE: &str = "import";

/// The note in a snapshot's check file naming the entry of the `/tmp` its
/// pre-initialisation left (`tmp <key>`).
const TMP_NOTE: &str = "tmp";

/// The cached component for `key` with every module it imports, or `None`
/// if any part is missing or damaged.
fn load_cached(cache: &ComponentCache, engine: &Engine, key: &str) -> Option<Compiled> {
    let (component, notes) = cache.load::<Component>(engine, key)?;
    let mut modules = Vec::new();
    let mut tmp = None;
    for note in notes {
        let mut words = note.split(' ');
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some(IMPORT_NOTE), Some(name), Some(module_key), None) => {
                let (module, _) = cache.load::<Module>(engine, module_key)?;
                modules.push((name.to_string(), module));
            }
            (Some(TMP_NOTE), Some(seed_key), None, None) => {
                let (seed, _) = cache.load::<crate::tmp_seed::TmpSeed>(engine, seed_key)?;
                tmp = Some(Arc::new(seed));
            }
            _ => return None,
        }
    }
    Some(Compiled {
        component,
        modules,
        tmp,
    })
}

fn compile_err(e: wasmtime::Error) -> Error {
    Error::Compile {
        source: e.into_boxed_dyn_error(),
    }
}

/// Compiles linked components split (see `eryx_linker::split`): each
/// library module once, from the cache when it was compiled before.
struct Compiler<'a> {
    engine: &'a Engine,
    cache: Option<ComponentCache>,
    /// The host part of module keys (see [`module_key`]).
    host: u64,
    progress: &'a Progress,
    work: Work,
    /// Module entries used so far: never evicted by this compilation.
    keep: Vec<PathBuf>,
}

impl Compiler<'_> {
    /// The compiled component and modules, and the notes its cache entry
    /// needs to find the modules again.
    fn compile_split(&mut self, bytes: &[u8]) -> Result<(Compiled, Vec<String>), Error> {
        let split = eryx_linker::split(bytes, eryx_linker::SPLIT_MIN_BYTES)?;
        let hashes: Vec<String> = split
            .modules
            .iter()
            .map(|m| eryx_linker::sha256_hex(&bytes[m.range.clone()]))
            .collect();
        let modules = split
            .modules
            .iter()
            .zip(&hashes)
            .map(|(m, sha256)| (m.name.as_str(), &bytes[m.range.clone()], sha256.as_str()))
            .collect();
        self.compile_with(&split.component, modules, HashMap::new())
    }

    /// [`Self::compile_split`] of a component split at the link (see
    /// `eryx_linker::link_split`), with the modules [`preload`] has ready.
    fn compile_linked(
        &mut self,
        linked: &eryx_linker::SplitLink<'_>,
        preloaded: Preloaded,
    ) -> Result<(Compiled, Vec<String>), Error> {
        let modules = linked
            .modules
            .iter()
            .map(|m| (m.name.as_str(), &*m.bytes, m.sha256.as_str()))
            .collect();
        self.work.modules += preloaded.work.modules;
        self.work.module_bytes += preloaded.work.module_bytes;
        self.compile_with(&linked.component, modules, preloaded.modules)
    }

    /// Compiles `component` and the modules it imports (by name, with their
    /// bytes and sha256 in hex), taking those in `ready` (by sha256) as
    /// they are.
    fn compile_with(
        &mut self,
        component: &[u8],
        imported: Vec<(&str, &[u8], &str)>,
        mut ready: HashMap<String, (String, Module)>,
    ) -> Result<(Compiled, Vec<String>), Error> {
        let mut modules = Vec::new();
        let mut notes = Vec::new();
        for (name, module_bytes, sha256) in imported {
            let (key, module) = match ready.remove(sha256) {
                Some(found) => found,
                None => {
                    let key = module_key(sha256, self.host);
                    let cache = self.cache.as_ref();
                    let (module, work) =
                        library_module(self.engine, cache, &key, module_bytes, self.progress)?;
                    self.work.modules += work.modules;
                    self.work.module_bytes += work.module_bytes;
                    (key, module)
                }
            };
            if let Some(cache) = &self.cache {
                let (path, check) = cache.entry(&key);
                self.keep.extend([path, check]);
            }
            notes.push(format!("{IMPORT_NOTE} {name} {key}"));
            modules.push((name.to_string(), module));
        }
        self.work.modules += 1;
        self.work.module_bytes += component.len();
        let component = Component::new(self.engine, component).map_err(compile_err)?;
        Ok((
            Compiled {
                component,
                modules,
                tmp: None,
            },
            notes,
        ))
    }
}

/// A library module from the cache, or compiled (and stored) if it is not
/// there; what compiling it cost.
fn library_module(
    engine: &Engine,
    cache: Option<&ComponentCache>,
    key: &str,
    bytes: &[u8],
    progress: &Progress,
) -> Result<(Module, Work), Error> {
    if let Some((module, _)) = cache.and_then(|c| c.load::<Module>(engine, key)) {
        return Ok((module, Work::default()));
    }
    progress(&format!(
        "compiling a library module ({:.1} MB, once)",
        bytes.len() as f64 / 1e6
    ));
    let module = Module::new(engine, bytes).map_err(compile_err)?;
    if let Some(cache) = cache {
        // The component's store, after the link, trims once.
        cache.store_untrimmed(key, &module, &[])?;
    }
    let work = Work {
        modules: 1,
        module_bytes: bytes.len(),
    };
    Ok((module, work))
}

/// Library modules made ready while the component is linked.
#[derive(Default)]
struct Preloaded {
    /// By the sha256 of their bytes: the cache key and the module.
    modules: HashMap<String, (String, Module)>,
    work: Work,
}

/// Gets the library modules a new set will import ready while its
/// component is linked (on another core: the link is single-threaded):
/// the bundle's big libraries that are in the cache already (by the
/// manifest's hashes; their bytes are read by the link) and the
/// extensions' big modules, loaded or compiled. What it misses (a
/// library's first compilation, libc: its linked bytes lose their WIT
/// metadata) the compilation after the link does. Measured on numpy's
/// set: ~50 ms of loads off a new set's path.
fn preload(
    engine: &Engine,
    cache: Option<&ComponentCache>,
    host: u64,
    bundle: &eryx_linker::Bundle,
    extensions: &[Extension],
    progress: &Progress,
) -> Result<Preloaded, Error> {
    use eryx_linker::bundle::Role;
    let mut out = Preloaded::default();
    let big = |size: usize| size >= eryx_linker::SPLIT_MIN_BYTES;
    if let Some(cache) = cache {
        for file in &bundle.manifest().files {
            let library = matches!(file.role, Role::Runtime | Role::Library | Role::Extension);
            if !library || !big(usize::try_from(file.size).unwrap_or(usize::MAX)) {
                continue;
            }
            let key = module_key(&file.sha256, host);
            if let Some((module, _)) = cache.load::<Module>(engine, &key) {
                out.modules.insert(file.sha256.clone(), (key, module));
            }
        }
    }
    for ext in extensions {
        if !big(ext.bytes().len()) || out.modules.contains_key(ext.sha256()) {
            continue;
        }
        let key = module_key(ext.sha256(), host);
        let (module, work) = library_module(engine, cache, &key, ext.bytes(), progress)?;
        out.work.modules += work.modules;
        out.work.module_bytes += work.module_bytes;
        out.modules.insert(ext.sha256().to_string(), (key, module));
    }
    Ok(out)
}

/// The cache key of a component (with the host and pre-initialisation).
fn component_key(
    engine: &Engine,
    bundle: &eryx_linker::Bundle,
    extensions: &ExtensionSet,
    preinit: Option<&Preinit>,
) -> (String, u64) {
    // The compiled form also depends on the host: wasmtime's compatibility
    // hash covers the engine configuration and the target's CPU features,
    // so two machines sharing a cache directory do not evict each other.
    // wasmtime leaves one setting that changes the compiled form out of
    // that hash: whether a snapshot's heap gets a copy-on-write image.
    let host = {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        engine.get_memory_guaranteed_dense_image_size().hash(&mut h);
        h.finish()
    };
    let mut key = eryx_linker::sha256_hex(
        format!("{}\n{host:016x}", cache_key(bundle, extensions)).as_bytes(),
    );
    if let Some(spec) = preinit {
        key = eryx_linker::sha256_hex(format!("{key}\n{}", spec.tag()).as_bytes());
    }
    (key, host)
}

fn component_cache(cache: &CacheDir) -> Option<ComponentCache> {
    match cache {
        CacheDir::Dir(dir) => Some(ComponentCache::new(dir.clone(), max_bytes_from_env())),
        CacheDir::Disabled => None,
    }
}

/// The compiled component from the cache, if it is there.
fn cached(
    engine: &Engine,
    bundle: &eryx_linker::Bundle,
    extensions: &ExtensionSet,
    cache: &CacheDir,
    preinit: Option<&Preinit>,
) -> Option<Compiled> {
    let (key, _) = component_key(engine, bundle, extensions, preinit);
    load_cached(&component_cache(cache)?, engine, &key)
}

/// Removes the lock file it holds when dropped.
struct BuildLock(PathBuf);

impl Drop for BuildLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// How long a snapshot build may hold its lock before others ignore it.
const LOCK_STALE: Duration = Duration::from_secs(600);

/// Takes the lock on building `key` in `cache` (so that two processes do
/// not build one snapshot twice); while another process holds it, waits
/// for that one's entry, returning it when it appears.
fn lock_or_wait(
    cache: &ComponentCache,
    engine: &Engine,
    key: &str,
) -> (Option<BuildLock>, Option<Compiled>) {
    let (path, _) = cache.entry(key);
    let lock = path.with_extension("lock");
    let started = std::time::Instant::now();
    loop {
        let _ = std::fs::create_dir_all(lock.parent().unwrap_or(Path::new(".")));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(mut file) => {
                use std::io::Write;
                let _ = write!(file, "{}", std::process::id());
                return (Some(BuildLock(lock)), None);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let age = std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok());
                if age.is_none_or(|a| a > LOCK_STALE)
                    || started.elapsed() > LOCK_STALE
                    || holder_is_gone(&lock)
                {
                    let _ = std::fs::remove_file(&lock);
                    continue;
                }
                std::thread::sleep(Duration::from_millis(100));
                if let Some(found) = load_cached(cache, engine, key) {
                    return (None, Some(found));
                }
            }
            // No lock to be had (e.g. a read-only directory): build anyway.
            Err(_) => return (None, None),
        }
    }
}

/// Whether the process that wrote its id into `lock` has exited (Linux:
/// no `/proc/<pid>`), e.g. a snapshot builder that was killed: its lock
/// need not be waited out.
fn holder_is_gone(lock: &Path) -> bool {
    std::fs::read_to_string(lock)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .is_some_and(crate::scratch::process_is_gone)
}

fn compile(
    engine: &Engine,
    functions: Option<&FunctionCache>,
    bundle: &eryx_linker::Bundle,
    extensions: &ExtensionSet,
    cache: &CacheDir,
    preinit: Option<&Preinit>,
    progress: &Progress,
) -> Result<Compiled, Error> {
    let (key, host) = component_key(engine, bundle, extensions, preinit);
    let mut compiler = Compiler {
        engine,
        cache: component_cache(cache),
        host,
        progress,
        work: Work::default(),
        keep: Vec::new(),
    };
    if let Some(components) = &compiler.cache
        && let Some(found) = load_cached(components, engine, &key)
    {
        return Ok(found);
    }
    let mut _lock = None;
    if preinit.is_some()
        && let Some(components) = &compiler.cache
    {
        let (lock, found) = lock_or_wait(components, engine, &key);
        if let Some(found) = found {
            return Ok(found);
        }
        _lock = lock;
    }
    let started = std::time::Instant::now();
    // Read (those the digest memo knew) and validated only now.
    let extensions = &extensions.load()?;
    progress("linking the component");
    if preinit.is_none() {
        // Linked split: the big modules never go into a component; those
        // it will import are loaded (or compiled) meanwhile.
        if let Some(functions) = functions {
            functions.start();
        }
        let cache = compiler.cache.as_ref();
        let (linked, preloaded) = std::thread::scope(|s| {
            let loader = s.spawn(|| preload(engine, cache, host, bundle, extensions, progress));
            let linked = eryx_linker::link_split(bundle, extensions, eryx_linker::SPLIT_MIN_BYTES);
            let preloaded = loader
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (linked, preloaded)
        });
        let (linked, preloaded) = (linked?, preloaded?);
        progress(compiling_note(functions));
        let (compiled, notes) = compiler.compile_linked(&linked, preloaded)?;
        return finish(&mut compiler, functions, started, &key, compiled, &notes);
    }
    let mut bytes = eryx_linker::link_with_extensions(bundle, extensions)?;
    if let Some(functions) = functions {
        functions.start();
    }
    let mut tmp = None;
    if let Some(spec) = preinit {
        progress("pre-initialising Python (start-up and imports, snapshotted once)");
        let seed;
        (bytes, seed) = preinitialise(&mut compiler, &bytes, spec)?;
        tmp = seed.map(Arc::new);
        // Compiled whole and never linked again: the exports no module
        // uses go (fewer names for every fresh process to read back).
        bytes = eryx_linker::prune_exports(&bytes).component;
    }
    progress(compiling_note(functions));
    // The pre-initialised component is what every later sandbox of the set
    // is made from, so it is compiled whole: instantiating imported modules
    // resolves their ~1,000 imports by name each time (measured: 1.8 vs
    // 1.1 ms per new sandbox, 17-20 vs 11-15 ms per fresh `eryx -c`). It is
    // built in the background by default, off the first result's path;
    // its functions mostly come from the function cache.
    let component = Component::new(engine, &bytes).map_err(compile_err)?;
    compiler.work.modules += 1;
    compiler.work.module_bytes += bytes.len();
    let mut notes = Vec::new();
    if let (Some(seed), Some(cache)) = (&tmp, &compiler.cache) {
        // Its own entry, stored first: the snapshot's check file names it.
        let seed_key = format!("{key}-tmp");
        cache.store_untrimmed(&seed_key, &**seed, &[])?;
        compiler
            .keep
            .extend(<[PathBuf; 2]>::from(cache.entry(&seed_key)));
        notes.push(format!("{TMP_NOTE} {seed_key}"));
    }
    let compiled = Compiled {
        component,
        modules: Vec::new(),
        tmp,
    };
    finish(&mut compiler, functions, started, &key, compiled, &notes)
}

/// The progress line before compiling.
fn compiling_note(functions: Option<&FunctionCache>) -> &'static str {
    if functions.is_some() {
        "compiling the component (functions compiled before come from the cache)"
    } else {
        "compiling the component (no cache)"
    }
}

/// After a compilation: the progress line saying what it did, and the
/// component into the cache.
fn finish(
    compiler: &mut Compiler<'_>,
    functions: Option<&FunctionCache>,
    started: std::time::Instant,
    key: &str,
    compiled: Compiled,
    notes: &[String],
) -> Result<Compiled, Error> {
    if let Some(functions) = functions {
        let stats = functions.flush()?;
        let work = &compiler.work;
        (compiler.progress)(&format!(
            "compiled {} new module{} ({:.1} MB) in {} ms: {} functions compiled, {} from the cache",
            work.modules,
            if work.modules == 1 { "" } else { "s" },
            work.module_bytes as f64 / 1e6,
            started.elapsed().as_millis(),
            stats.compiled,
            stats.reused
        ));
    }
    if let Some(cache) = &compiler.cache {
        cache.store(key, &compiled.component, notes, &compiler.keep)?;
    }
    Ok(compiled)
}

fn instantiate_pre(engine: &Engine, compiled: &Compiled) -> Result<InstancePre<State>, BoxError> {
    let mut linker: Linker<State> = Linker::new(engine);
    crate::scratch::add_to_linker(&mut linker)?;
    for (name, module) in &compiled.modules {
        linker.root().module(name, module)?;
    }
    Ok(linker.instantiate_pre(&compiled.component)?)
}

/// What `build` does when the pre-initialised snapshot of its extension set
/// is not in the cache yet (see [`crate::SandboxBuilder::snapshot_policy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotPolicy {
    /// Build the snapshot now: `build` returns when it is ready (a few
    /// seconds for a new extension set, more the first time a bundle is
    /// used).
    Wait,
    /// Start Python in the sandbox itself (a new set's first sandbox is
    /// ready in a fraction of a second) and build the snapshot on a
    /// background thread of this process; sandboxes built after it is ready
    /// use it. The default.
    #[default]
    Background,
    /// Start Python in the sandbox and leave the snapshot unbuilt
    /// ([`crate::Sandbox::preinitialised`] says which one a sandbox got;
    /// the `eryx` CLI builds the snapshot in a separate process after its
    /// run).
    Skip,
}

type Memo = Mutex<HashMap<String, Arc<Prepared>>>;

/// Prepared components of this process, by configuration.
fn memo() -> &'static Memo {
    static PREPARED: OnceLock<Memo> = OnceLock::new();
    PREPARED.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Snapshots being built in the background (by memo key).
fn pending() -> &'static std::sync::Mutex<std::collections::HashSet<String>> {
    static PENDING: OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> = OnceLock::new();
    PENDING.get_or_init(Default::default)
}

fn memo_key(
    bundle: &eryx_linker::Bundle,
    extensions: &ExtensionSet,
    preinit: Option<&Preinit>,
    pool: Option<u32>,
) -> String {
    format!(
        "{}/{}/{pool:?}",
        cache_key(bundle, extensions),
        preinit.map_or(String::new(), Preinit::tag)
    )
}

/// Everything one compilation needs, owned (it runs on another thread).
#[derive(Clone)]
struct Job {
    engine: Engine,
    functions: Option<Arc<FunctionCache>>,
    bundle: eryx_linker::Bundle,
    extensions: Arc<ExtensionSet>,
    cache: CacheDir,
    preinit: Option<Preinit>,
    progress: Progress,
}

impl Job {
    /// Compiles (or loads) and links the component; with `cached_only`,
    /// `None` unless it is in the cache.
    fn run(&self, cached_only: bool) -> Result<Option<Prepared>, Error> {
        let compiled = if cached_only {
            match cached(
                &self.engine,
                &self.bundle,
                &self.extensions,
                &self.cache,
                self.preinit.as_ref(),
            ) {
                Some(c) => c,
                None => return Ok(None),
            }
        } else {
            compile(
                &self.engine,
                self.functions.as_deref(),
                &self.bundle,
                &self.extensions,
                &self.cache,
                self.preinit.as_ref(),
                &self.progress,
            )?
        };
        let pre = instantiate_pre(&self.engine, &compiled)
            .map_err(|source| Error::Instantiate { source })?;
        let exports =
            crate::world::SandboxIndices::new(&pre).map_err(|e| Error::RuntimeMismatch {
                detail: format!("{e:#}"),
            })?;
        Ok(Some(Prepared {
            engine: self.engine.clone(),
            pre,
            exports,
            preinitialised: self.preinit.is_some(),
            tmp_seed: compiled.tmp.clone(),
        }))
    }

    /// Runs the job without stalling the async executor's other tasks for
    /// long. A cache hit (`cached_only`: mapping and checking the file
    /// takes a few ms) runs in place: on the calling task of a
    /// current-thread runtime, with `block_in_place` on a multi-threaded
    /// one (the worker's other tasks move to other workers); the hand-off
    /// to tokio's blocking pool, a new thread with its own malloc arena,
    /// cost a fresh `eryx -c` ~0.6 ms of its ~9.5. Anything that may
    /// compile goes to the blocking pool, so that a caller's timeout or
    /// `select!` around `build()` still fires during a compile.
    async fn run_blocking(self, cached_only: bool) -> Result<Option<Prepared>, Error> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        if cached_only {
            match Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(RuntimeFlavor::MultiThread) => {
                    return tokio::task::block_in_place(|| self.run(cached_only));
                }
                Ok(RuntimeFlavor::CurrentThread) => return self.run(cached_only),
                _ => {}
            }
        }
        tokio::task::spawn_blocking(move || self.run(cached_only))
            .await
            .map_err(|e| Error::Compile { source: e.into() })?
    }
}

/// Builds the snapshot of `job`'s set on a thread of its own (with its own
/// async runtime, so that it outlives the caller's); when it is ready,
/// sandboxes built afterwards in this process use it. A failure is
/// reported through the progress callback and not retried in this process.
fn build_in_background(job: Job, key: String) {
    let progress = job.progress.clone();
    let spawned = std::thread::Builder::new()
        .name("eryx-snapshot".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    (job.progress)(&format!("cannot build the snapshot in the background: {e}"));
                    return;
                }
            };
            let _entered = runtime.enter();
            let progress = job.progress.clone();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(false)));
            match result {
                Ok(Ok(Some(prepared))) => {
                    runtime
                        .block_on(memo().lock())
                        .insert(key.clone(), Arc::new(prepared));
                    pending().lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
                    progress("the pre-initialised snapshot is ready: new sandboxes use it");
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => progress(&format!(
                    "building the pre-initialised snapshot failed (sandboxes start Python themselves): {e}"
                )),
                Err(_) => progress(
                    "building the pre-initialised snapshot panicked (sandboxes start Python themselves)",
                ),
            }
        });
    if let Err(e) = spawned {
        progress(&format!("cannot start the snapshot thread: {e}"));
    }
}

/// The prepared component for a bundle and extension set, compiled (or
/// loaded) once per process per configuration.
pub(crate) async fn prepare(
    bundle: &eryx_linker::Bundle,
    extensions: &Arc<ExtensionSet>,
    cache: &CacheDir,
    preinit: Option<Preinit>,
    policy: SnapshotPolicy,
    pool: Option<u32>,
    progress: Progress,
) -> Result<Arc<Prepared>, Error> {
    // A set with a library that throws wasm exceptions (C++ built with
    // exceptions, C's `longjmp`) gets the engine whose collector frees
    // thrown objects.
    let throws = extensions.uses_exceptions();
    let key = memo_key(bundle, extensions, preinit.as_ref(), pool);
    let mut memo = memo().lock().await;
    if let Some(p) = memo.get(&key) {
        return Ok(p.clone());
    }
    let functions = match cache {
        CacheDir::Dir(dir) => Some(dir.join("functions")),
        CacheDir::Disabled => None,
    };
    let (engine, functions) = engine(functions.as_deref(), pool, throws)?;
    let job = Job {
        engine,
        functions,
        bundle: bundle.clone(),
        extensions: extensions.clone(),
        cache: cache.clone(),
        preinit,
        progress,
    };
    if job.preinit.is_some() && policy != SnapshotPolicy::Wait {
        if let Some(prepared) = job.clone().run_blocking(true).await? {
            let prepared = Arc::new(prepared);
            memo.insert(key, prepared.clone());
            return Ok(prepared);
        }
        // Not ready: this sandbox starts Python itself.
        let plain_key = memo_key(bundle, extensions, None, pool);
        let plain = match memo.get(&plain_key) {
            Some(p) => p.clone(),
            None => {
                let plain_job = Job {
                    preinit: None,
                    ..job.clone()
                };
                let p = Arc::new(plain_job.run_blocking(false).await?.ok_or_else(|| {
                    Error::Compile {
                        source: "the component was not compiled".into(),
                    }
                })?);
                memo.insert(plain_key, p.clone());
                p
            }
        };
        if policy == SnapshotPolicy::Background
            && pending()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.clone())
        {
            build_in_background(job, key);
        }
        return Ok(plain);
    }
    let prepared = Arc::new(
        job.run_blocking(false)
            .await?
            .ok_or_else(|| Error::Compile {
                source: "the component was not compiled".into(),
            })?,
    );
    memo.insert(key, prepared.clone());
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use super::SnapshotReader;
    use wasmtime_wizer::ComponentInstanceState as _;

    /// A read wizer asks for that the instance cannot serve (here: an
    /// empty component, which exports no accessor) is recorded with the
    /// function's name, answered with an empty value, and not retried.
    #[test]
    fn a_failed_snapshot_read_is_recorded_not_a_panic() {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        let engine = wasmtime::Engine::new(&config).unwrap();
        // `(component)`: the preamble alone.
        let empty = wasmtime::component::Component::new(&engine, b"\0asm\x0d\x00\x01\x00").unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::component::Linker::new(&engine)
            .instantiate(&mut store, &empty)
            .unwrap();
        let mut reader = SnapshotReader {
            store: &mut store,
            instance,
            failed: None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (value, bytes) = runtime.block_on(async {
            let value = reader
                .call_func_ret_s32("wasmtime:wizer/access", "global-0")
                .await;
            let mut bytes = None;
            reader
                .call_func_ret_list_u8("wasmtime:wizer/access", "memory-0", |b| {
                    bytes = Some(b.to_vec())
                })
                .await;
            (value, bytes)
        });
        assert_eq!(value, 0);
        assert_eq!(bytes.as_deref(), Some(&[][..]));
        let message = format!("{:#}", reader.failed.expect("the failure is recorded"));
        assert!(
            message.contains("reading `wasmtime:wizer/access#global-0` for the snapshot")
                && message.contains("exports no such function"),
            "{message}"
        );
    }
}
