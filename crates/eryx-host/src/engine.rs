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

/// Everything about the engine configuration that changes compiled code.
const ENGINE_CONFIG_TAG: &str = "cm+cm-async+epoch-interruption/v1";

/// The process-wide engines: one per function-cache directory (the
/// incremental compilation cache is part of an engine's configuration).
fn engine(functions: Option<&Path>) -> Result<(Engine, Option<Arc<FunctionCache>>), Error> {
    type Engines = HashMap<Option<PathBuf>, (Engine, Option<Arc<FunctionCache>>)>;
    static ENGINES: OnceLock<std::sync::Mutex<Engines>> = OnceLock::new();
    let mut engines = ENGINES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = functions.map(Path::to_path_buf);
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

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The cache key of a bundle's compiled component.
pub(crate) fn cache_key(bundle: &eryx_linker::Bundle, extensions: &[Extension]) -> String {
    let mut h = Sha256::new();
    let mut exts: Vec<(&str, String)> = extensions
        .iter()
        .map(|e| (e.guest_path(), hex_sha256(e.bytes())))
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
        &hex_sha256(eryx_linker::SANDBOX_WIT.as_bytes()),
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

fn compile(
    engine: &Engine,
    functions: Option<&FunctionCache>,
    bundle: &eryx_linker::Bundle,
    extensions: &[Extension],
    cache: &CacheDir,
    progress: &Progress,
) -> Result<Component, Error> {
    let key = cache_key(bundle, extensions);
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
    let bytes = eryx_linker::link_with_extensions(bundle, extensions)?;
    progress(if functions.is_some() {
        "compiling the component (functions compiled before come from the cache)"
    } else {
        "compiling the component (~10 s; no cache)"
    });
    if let Some(functions) = functions {
        functions.start();
    }
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
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Ok(linker.instantiate_pre(component)?)
}

/// The prepared component for `bundle_dir`, compiled (or loaded) once per
/// process per bundle content.
pub(crate) async fn prepare(
    bundle: &eryx_linker::Bundle,
    extensions: &[Extension],
    cache: &CacheDir,
    progress: Progress,
) -> Result<Arc<Prepared>, Error> {
    static PREPARED: OnceLock<Mutex<HashMap<String, Arc<Prepared>>>> = OnceLock::new();
    let memo = PREPARED.get_or_init(|| Mutex::new(HashMap::new()));
    let key = cache_key(bundle, extensions);
    let mut memo = memo.lock().await;
    if let Some(p) = memo.get(&key) {
        return Ok(p.clone());
    }
    let functions = match cache {
        CacheDir::Dir(dir) => Some(dir.join("functions")),
        CacheDir::Disabled => None,
    };
    let (engine, functions) = engine(functions.as_deref())?;
    let (bundle, cache, extensions) = (bundle.clone(), cache.clone(), extensions.to_vec());
    let prepared = tokio::task::spawn_blocking(move || -> Result<Prepared, Error> {
        let component = compile(
            &engine,
            functions.as_deref(),
            &bundle,
            &extensions,
            &cache,
            &progress,
        )?;
        let pre =
            instantiate_pre(&engine, &component).map_err(|source| Error::Instantiate { source })?;
        Ok(Prepared { engine, pre })
    })
    .await
    .map_err(|e| Error::Compile { source: e.into() })??;
    let prepared = Arc::new(prepared);
    memo.insert(key, prepared.clone());
    Ok(prepared)
}
