//! Shared set-up: where the bundle, the cache, the example extensions and
//! the CLI are, and a sandbox maker. Every missing input fails the test
//! with the command that makes it; nothing is skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use eryx_host::{Sandbox, SandboxBuilder};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `$var` as a path, else `root()/default`.
fn dir_from_env(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(default))
}

/// The dist bundle: `ERYX_BUNDLE`, else `target/dist`.
pub fn bundle() -> PathBuf {
    let dir = dir_from_env("ERYX_BUNDLE", "target/dist");
    assert!(
        dir.join("manifest.json").is_file(),
        "no bundle at {}: run `cargo xtask dist` (or run the tests with `cargo xtask test`)",
        dir.display()
    );
    dir
}

/// The shared compiled-component cache: `ERYX_CACHE_DIR`, else `target/eryx-cache`.
pub fn cache_dir() -> PathBuf {
    dir_from_env("ERYX_CACHE_DIR", "target/eryx-cache")
}

/// A built example extension file (e.g. `fastsum.cpython-314-wasm32-wasi.so`),
/// from `ERYX_EXAMPLE_EXTENSIONS`, else `target/ext`.
pub fn example_file(file: &str) -> PathBuf {
    let path = dir_from_env("ERYX_EXAMPLE_EXTENSIONS", "target/ext").join(file);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask test` (it builds examples/extensions/* with `cargo xtask ext build`)",
        path.display()
    );
    path
}

/// The full-API example extension module `name`.
pub fn example(name: &str) -> PathBuf {
    example_file(&format!("{name}{}", eryx_linker::layout::EXTENSION_SUFFIX))
}

/// A builder on the test bundle and cache. It waits for a new set's
/// snapshot, so that every test knows which path it takes (the background
/// policies have their own tests in `preinit.rs` and `cli.rs`).
pub fn builder() -> SandboxBuilder {
    Sandbox::builder()
        .bundle(bundle())
        .cache_dir(cache_dir())
        .snapshot_policy(eryx_host::SnapshotPolicy::Wait)
}

/// A fresh sandbox with default limits.
pub async fn sandbox() -> Sandbox {
    builder().build().await.expect("building a sandbox")
}

/// A fresh sandbox whose calls may take half a second (for time-limit tests).
pub async fn short_lived_sandbox() -> Sandbox {
    builder()
        .timeout(std::time::Duration::from_millis(500))
        .build()
        .await
        .expect("building a sandbox")
}

/// Runs `code` in a fresh sandbox and returns its stdout.
pub async fn stdout_of(code: &str) -> String {
    let mut sb = sandbox().await;
    match sb.execute(code).await {
        Ok(out) => out.stdout,
        Err(e) => panic!("executing {code:?} failed: {e}\n{e:?}"),
    }
}

/// The `eryx` CLI binary: `ERYX_CLI`, else `target/debug/eryx`.
pub fn eryx_exe() -> PathBuf {
    let exe = dir_from_env("ERYX_CLI", "target/debug/eryx");
    assert!(
        exe.is_file(),
        "no eryx CLI at {}: run the tests with `cargo xtask test` (it builds the CLI with `--features cli`)",
        exe.display()
    );
    exe
}

/// The CLI on the test bundle, with `cache` as its cache directory; it
/// waits for a new set's snapshot (`ERYX_SNAPSHOT=wait`) rather than
/// leaving a background process to build it.
pub fn eryx_command(cache: &Path) -> Command {
    let mut cmd = Command::new(eryx_exe());
    cmd.arg("--bundle")
        .arg(bundle())
        .env("ERYX_CACHE_DIR", cache)
        .env("ERYX_SNAPSHOT", "wait");
    cmd
}

/// Starts the CLI with `args` on the shared cache, its stdin, stdout and
/// stderr piped.
pub fn spawn_eryx(args: &[&str]) -> std::process::Child {
    eryx_command(&cache_dir())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the eryx CLI")
}

/// Runs the CLI with `args` and `stdin` (closed when `None`).
pub fn eryx(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = spawn_eryx(args);
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// Lossy UTF-8 of a process's output.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A private cache directory whose function cache is borrowed (hard links)
/// from the shared one, so a compile there takes seconds, not a minute.
pub fn private_cache() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let functions = dir.path().join("functions");
    std::fs::create_dir_all(&functions).unwrap();
    if let Ok(entries) = std::fs::read_dir(cache_dir().join("functions")) {
        for entry in entries.flatten() {
            let to = functions.join(entry.file_name());
            if std::fs::hard_link(entry.path(), &to).is_err() {
                let _ = std::fs::copy(entry.path(), &to);
            }
        }
    }
    dir
}

/// A builder for a set of its own: the shared bundle, the cache at `cache`,
/// the package at `package` (e.g. a [`renamed_fastsum_package`] in a
/// [`private_cache`], a set no earlier run compiled).
pub fn new_set_builder(cache: &Path, package: &Path) -> SandboxBuilder {
    Sandbox::builder()
        .bundle(bundle())
        .cache_dir(cache)
        .package(package)
}

/// A package directory holding the `fastsum` example extension renamed to
/// `name` (seven characters: the module name, `PyInit_*` and the file name
/// are rewritten in place), so that its extension set is new to every
/// cache and to this process.
pub fn renamed_fastsum_package(name: &str) -> tempfile::TempDir {
    const FROM: &[u8] = b"fastsum";
    assert_eq!(name.len(), FROM.len(), "{name} must have 7 characters");
    let mut bytes = std::fs::read(example("fastsum")).unwrap();
    let mut i = 0;
    while i + FROM.len() <= bytes.len() {
        if &bytes[i..i + FROM.len()] == FROM {
            bytes[i..i + FROM.len()].copy_from_slice(name.as_bytes());
            i += FROM.len();
        } else {
            i += 1;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path()
            .join(format!("{name}{}", eryx_linker::layout::EXTENSION_SUFFIX)),
        bytes,
    )
    .unwrap();
    dir
}

/// A name for [`renamed_fastsum_package`] no earlier run used.
pub fn fresh_extension_name(prefix: char) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{prefix}{:06x}", (nanos ^ (nanos >> 24)) & 0xff_ffff)
}
