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
use wasmtime::{Config, Engine};

use crate::cache::{ComponentCache, FunctionCache, max_bytes_from_env};
use crate::state::State;
use crate::{BoxError, Error};
use eryx_linker::Extension;

/// How often the epoch advances: the granularity of time limits.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How long interpreter start-up (in a sandbox, or while pre-initialising)
/// may take; it is not a user call, so the user's time limit does not apply.
pub(crate) const STARTUP_LIMIT: Duration = Duration::from_secs(120);

/// Everything about the engine configuration that changes compiled code.
const ENGINE_CONFIG_TAG: &str = "cm+cm-async+epoch-interruption+stack/v2";

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
) -> Result<(Engine, Option<Arc<FunctionCache>>), Error> {
    type Engines = HashMap<(Option<PathBuf>, Option<u32>), (Engine, Option<Arc<FunctionCache>>)>;
    static ENGINES: OnceLock<std::sync::Mutex<Engines>> = OnceLock::new();
    let mut engines = ENGINES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = (functions.map(Path::to_path_buf), pool);
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
            .max_core_instances_per_component(64)
            .max_memories_per_component(4)
            .max_tables_per_component(8)
            .max_core_instance_size(8 << 20)
            .max_component_instance_size(8 << 20)
            .table_elements(1 << 16)
            .max_memory_size(1 << 32);
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

/// The cache key of a bundle's compiled component.
pub(crate) fn cache_key(bundle: &eryx_linker::Bundle, extensions: &[Extension]) -> String {
    let mut h = Sha256::new();
    let mut exts: Vec<(&str, String)> = extensions
        .iter()
        .map(|e| (e.guest_path(), eryx_linker::sha256_hex(e.bytes())))
        .collect();
    exts.sort();
    for (path, hash) in exts {
        h.update((path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update(hash.as_bytes());
    }
    for part in [
        bundle.manifest().content_hash().as_str(),
        eryx_linker::VERSION,
        &eryx_linker::LINK_REVISION.to_string(),
        &eryx_linker::sha256_hex(eryx_linker::SANDBOX_WIT.as_bytes()),
        env!("CARGO_PKG_VERSION"),
        "wasmtime-48.0.8",
        ENGINE_CONFIG_TAG,
        std::env::consts::ARCH,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
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
    /// component itself): part of the cache key.
    fn tag(&self) -> String {
        format!("preinit/v1:{}:{}", self.imports.join(","), self.site_hash)
    }
}

/// Runs the pre-initialisation; returns the snapshot component's bytes.
fn preinitialise(engine: &Engine, bytes: &[u8], spec: &Preinit) -> Result<Vec<u8>, Error> {
    use wasmtime::component::Val;

    let err = |what: &str, e: String| Error::Preinit {
        message: format!("{what}: {e}"),
    };
    let limits = crate::Limits {
        timeout: STARTUP_LIMIT,
        ..crate::Limits::default()
    };
    // The runtime imports what `ERYX_PREIMPORT` names during start-up,
    // before it lets go of its WASI handles (see `eryx-runtime`).
    let imports = spec.imports.join(",");
    let env: Vec<(&str, &str)> = if imports.is_empty() {
        Vec::new()
    } else {
        vec![("ERYX_PREIMPORT", imports.as_str())]
    };
    let state = State::new(
        &spec.stdlib,
        spec.site.as_deref(),
        None,
        &[],
        None,
        &env,
        &limits,
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
        None,
    )
    .map_err(|e| err("setting up WASI", e.to_string()))?;
    let mut store = wasmtime::Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    store.epoch_deadline_callback(|_| Ok(wasmtime::UpdateDeadline::Yield(1)));
    store.set_epoch_deadline(1);
    let mut wizer = wasmtime_wizer::Wizer::new();
    wizer.init_func("execute(\"\", {output-limit: 0, filename: none, argv: none})");
    let handle = tokio::runtime::Handle::current();
    let (snapshot, results) = handle
        .block_on(
            wizer.run_component(&mut store, bytes, async |store, component| {
                let mut linker: Linker<State> = Linker::new(store.engine());
                crate::scratch::add_to_linker(&mut linker)?;
                linker.instantiate_async(store, component).await
            }),
        )
        .map_err(|e| err("the pre-initialisation run failed", format!("{e:?}")))?;
    // `execute` returns result<output, error>: start-up failures (e.g. a
    // pre-import that raised) come back as the error's `init` case.
    match results.first() {
        Some(Val::Result(Ok(_))) => Ok(snapshot),
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

fn compile(
    engine: &Engine,
    functions: Option<&FunctionCache>,
    bundle: &eryx_linker::Bundle,
    extensions: &[Extension],
    cache: &CacheDir,
    preinit: Option<&Preinit>,
    progress: &Progress,
) -> Result<Component, Error> {
    // The compiled form also depends on the host: wasmtime's compatibility
    // hash covers the engine configuration and the target's CPU features,
    // so two machines sharing a cache directory do not evict each other.
    let host = {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        h.finish()
    };
    let mut key = eryx_linker::sha256_hex(
        format!("{}\n{host:016x}", cache_key(bundle, extensions)).as_bytes(),
    );
    if let Some(spec) = preinit {
        key = eryx_linker::sha256_hex(format!("{key}\n{}", spec.tag()).as_bytes());
    }
    let components = match cache {
        CacheDir::Dir(dir) => Some(ComponentCache::new(dir.clone(), max_bytes_from_env())),
        CacheDir::Disabled => None,
    };
    if let Some(components) = &components
        && let Some(component) = components.load(engine, &key)
    {
        return Ok(component);
    }
    progress("linking the component");
    let mut bytes = eryx_linker::link_with_extensions(bundle, extensions)?;
    if let Some(functions) = functions {
        functions.start();
    }
    if let Some(spec) = preinit {
        progress("pre-initialising Python (start-up and imports, snapshotted once)");
        bytes = preinitialise(engine, &bytes, spec)?;
    }
    progress(if functions.is_some() {
        "compiling the component (functions compiled before come from the cache)"
    } else {
        "compiling the component (~10 s; no cache)"
    });
    let component = Component::new(engine, &bytes).map_err(|e| Error::Compile {
        source: e.into_boxed_dyn_error(),
    })?;
    if let Some(functions) = functions {
        let stats = functions.flush()?;
        progress(&format!(
            "compiled {} functions, reused {} from the cache",
            stats.compiled, stats.reused
        ));
    }
    if let Some(components) = &components {
        components.store(&key, &component)?;
    }
    Ok(component)
}

fn instantiate_pre(engine: &Engine, component: &Component) -> Result<InstancePre<State>, BoxError> {
    let mut linker: Linker<State> = Linker::new(engine);
    crate::scratch::add_to_linker(&mut linker)?;
    Ok(linker.instantiate_pre(component)?)
}

/// The prepared component for `bundle_dir`, compiled (or loaded) once per
/// process per bundle content.
pub(crate) async fn prepare(
    bundle: &eryx_linker::Bundle,
    extensions: &[Extension],
    cache: &CacheDir,
    preinit: Option<Preinit>,
    pool: Option<u32>,
    progress: Progress,
) -> Result<Arc<Prepared>, Error> {
    static PREPARED: OnceLock<Mutex<HashMap<String, Arc<Prepared>>>> = OnceLock::new();
    let memo = PREPARED.get_or_init(|| Mutex::new(HashMap::new()));
    let key = format!(
        "{}/{}/{pool:?}",
        cache_key(bundle, extensions),
        preinit.as_ref().map_or(String::new(), Preinit::tag)
    );
    let mut memo = memo.lock().await;
    if let Some(p) = memo.get(&key) {
        return Ok(p.clone());
    }
    let functions = match cache {
        CacheDir::Dir(dir) => Some(dir.join("functions")),
        CacheDir::Disabled => None,
    };
    let (engine, functions) = engine(functions.as_deref(), pool)?;
    let (bundle, cache, extensions) = (bundle.clone(), cache.clone(), extensions.to_vec());
    let prepared = tokio::task::spawn_blocking(move || -> Result<Prepared, Error> {
        let component = compile(
            &engine,
            functions.as_deref(),
            &bundle,
            &extensions,
            &cache,
            preinit.as_ref(),
            &progress,
        )?;
        let pre =
            instantiate_pre(&engine, &component).map_err(|source| Error::Instantiate { source })?;
        let exports =
            crate::world::SandboxIndices::new(&pre).map_err(|e| Error::RuntimeMismatch {
                detail: format!("{e:#}"),
            })?;
        Ok(Prepared {
            engine,
            pre,
            exports,
            preinitialised: preinit.is_some(),
        })
    })
    .await
    .map_err(|e| Error::Compile { source: e.into() })??;
    let prepared = Arc::new(prepared);
    memo.insert(key, prepared.clone());
    Ok(prepared)
}
