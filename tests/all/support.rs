//! Shared set-up: where the bundle and the cache are, and a sandbox maker.

use std::path::PathBuf;

use eryx_host::{Sandbox, SandboxBuilder};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The dist bundle: `ERYX_BUNDLE`, else `target/dist`.
pub fn bundle() -> PathBuf {
    let dir = std::env::var_os("ERYX_BUNDLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/dist"));
    assert!(
        dir.join("manifest.json").is_file(),
        "no bundle at {}: run `cargo xtask dist` (or run the tests with `cargo xtask test`)",
        dir.display()
    );
    dir
}

/// A builder on the test bundle and cache.
pub fn builder() -> SandboxBuilder {
    let cache = std::env::var_os("ERYX_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/eryx-cache"));
    Sandbox::builder().bundle(bundle()).cache_dir(cache)
}

/// A fresh sandbox with default limits.
pub async fn sandbox() -> Sandbox {
    builder().build().await.expect("building a sandbox")
}

/// Runs `code` in a fresh sandbox and returns its stdout.
pub async fn stdout_of(code: &str) -> String {
    let mut sb = sandbox().await;
    match sb.execute(code).await {
        Ok(out) => out.stdout,
        Err(e) => panic!("executing {code:?} failed: {e}\n{e:?}"),
    }
}
