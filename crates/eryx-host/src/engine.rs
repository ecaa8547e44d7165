//! One wasmtime [`Engine`] per process, and one compiled component plus
//! [`InstancePre`] per bundle, shared by every sandbox made from it.
//!
//! Compiling the ~10 MB component takes seconds, so compiled artifacts are
//! cached on disk, keyed by the bundle manifest's content hash, the linker
//! and wasmtime versions and the engine configuration. An entry is trusted
//! only if its sha256 (stored next to it) matches; otherwise it is rebuilt.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine};

use crate::state::State;
use crate::{BoxError, Error};
use eryx_linker::Extension;

/// How often the epoch advances: the granularity of time limits.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Everything about the engine configuration that changes compiled code.
const ENGINE_CONFIG_TAG: &str = "cm+cm-async+epoch-interruption/v1";

fn engine() -> Result<&'static Engine, Error> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.wasm_component_model_async(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| format!("{e:?}"))?;
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
            .map_err(|e| e.to_string())?;
        Ok(engine)
    });
    engine.as_ref().map_err(|msg| Error::Engine {
        source: msg.clone().into(),
    })
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

/// Loads a cached compiled component if it exists and its checksum matches.
fn load_cached(engine: &Engine, path: &Path) -> Option<Component> {
    let bytes = std::fs::read(path).ok()?;
    let expected = std::fs::read_to_string(path.with_extension("sha256")).ok()?;
    if hex_sha256(&bytes) != expected.trim() {
        return None;
    }
    // SAFETY: the bytes were produced by `Component::serialize` of this
    // wasmtime version (the key includes the version and the engine config)
    // and written by this crate; the checksum written after them matches, so
    // the file is complete and unmodified. wasmtime additionally checks its
    // own header for version and configuration compatibility.
    unsafe { Component::deserialize(engine, &bytes) }.ok()
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let cache_err = |source| Error::Cache {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(cache_err)?;
    tmp.write_all(bytes).map_err(cache_err)?;
    tmp.persist(path).map_err(|e| cache_err(e.error))?;
    Ok(())
}

fn store_cached(dir: &Path, path: &Path, component: &Component) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Cache {
        path: dir.to_path_buf(),
        source,
    })?;
    let bytes = component.serialize().map_err(|e| Error::Compile {
        source: e.into_boxed_dyn_error(),
    })?;
    write_atomically(dir, path, &bytes)?;
    // The checksum is written last: its presence marks a complete entry.
    write_atomically(
        dir,
        &path.with_extension("sha256"),
        hex_sha256(&bytes).as_bytes(),
    )
}

fn compile(
    engine: &Engine,
    bundle: &eryx_linker::Bundle,
    extensions: &[Extension],
    cache: &CacheDir,
    progress: &Progress,
) -> Result<Component, Error> {
    let key = cache_key(bundle, extensions);
    let cached = match cache {
        CacheDir::Dir(dir) => Some((dir.clone(), dir.join(format!("{key}.cwasm")))),
        CacheDir::Disabled => None,
    };
    if let Some((_, path)) = &cached
        && let Some(component) = load_cached(engine, path)
    {
        return Ok(component);
    }
    progress("linking the component");
    let bytes = eryx_linker::link_with_extensions(bundle, extensions)?;
    progress("compiling the component (once per bundle and wasmtime version; ~10 s)");
    let component = Component::new(engine, &bytes).map_err(|e| Error::Compile {
        source: e.into_boxed_dyn_error(),
    })?;
    if let Some((dir, path)) = &cached {
        store_cached(dir, path, &component)?;
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
    let engine = engine()?.clone();
    let (bundle, cache, extensions) = (bundle.clone(), cache.clone(), extensions.to_vec());
    let prepared = tokio::task::spawn_blocking(move || -> Result<Prepared, Error> {
        let component = compile(&engine, &bundle, &extensions, &cache, &progress)?;
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
