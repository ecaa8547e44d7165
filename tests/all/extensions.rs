//! Native extensions, late-linked from a package directory.

use std::path::PathBuf;

use eryx_host::Error;
use eryx_linker::{Extension, LinkError};

use crate::support::{builder, root};

/// The example extensions built by `cargo xtask test` (`cargo xtask ext build`).
fn example(name: &str) -> PathBuf {
    let dir = std::env::var_os("ERYX_EXAMPLE_EXTENSIONS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/ext"));
    let path = dir.join(format!("{name}.cpython-314-wasm32-wasi.so"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask ext build examples/extensions/{name}` (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// A package directory holding `fastsum` and a pure-Python helper module.
fn fastsum_package() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        example("fastsum"),
        dir.path().join("fastsum.cpython-314-wasm32-wasi.so"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sums.py"),
        "import fastsum\n\ndef both(n):\n    return fastsum.fast_sum(n), sum(range(n))\n",
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn extension_in_a_package_is_imported_and_runs_native_code() {
    let pkg = fastsum_package();
    let mut sb = builder().package(pkg.path()).build().await.unwrap();
    let out = sb
        .execute("import fastsum, sums\nprint(fastsum.fast_sum(10**6), sums.both(1000), fastsum.__file__)")
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "499999500000 (499500, 499500) /site-packages/fastsum.cpython-314-wasm32-wasi.so\n"
    );
    let Error::Python(e) = sb.execute("fastsum.fast_sum(10**10)").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.type_name, "OverflowError");
    let Error::Python(e) = sb.execute("fastsum.fast_sum('x')").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.type_name, "TypeError");
}

#[tokio::test]
async fn without_the_package_the_extension_is_not_importable() {
    let mut sb = builder().build().await.unwrap();
    let Error::Python(e) = sb.execute("import fastsum").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.type_name, "ModuleNotFoundError");
}

#[tokio::test]
async fn snapshot_taken_with_an_extension_set_is_refused_without_it() {
    let pkg = fastsum_package();
    let mut with = builder().package(pkg.path()).build().await.unwrap();
    with.execute("n = 3").await.unwrap();
    let snap = with.snapshot().await.unwrap();
    let mut without = builder().build().await.unwrap();
    let err = without.restore(&snap).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("different runtime bundle or extension set"),
        "{err}"
    );
}

#[test]
fn extension_names_and_formats_are_checked() {
    let bytes = std::fs::read(example("fastsum")).unwrap();
    let err = Extension::new(
        "/site-packages/fastsum.cpython-313-wasm32-wasi.so",
        bytes.clone(),
    )
    .unwrap_err();
    assert!(matches!(err, LinkError::ExtensionName { .. }));
    assert!(
        err.to_string()
            .contains("built for another Python or platform"),
        "{err}"
    );
    let err = Extension::new("/site-packages/fastsum.so.txt", bytes.clone()).unwrap_err();
    assert!(
        err.to_string().contains("cpython-314-wasm32-wasi.so"),
        "{err}"
    );
    let err =
        Extension::new("/site-packages/native.abi3.so", b"\x7fELF\x02\x01".to_vec()).unwrap_err();
    assert!(
        err.to_string()
            .contains("`/site-packages/native.abi3.so` is not a WebAssembly module"),
        "{err}"
    );
    Extension::new("/site-packages/fastsum.abi3.so", bytes).unwrap();
}

#[tokio::test]
async fn a_native_elf_in_a_package_fails_the_build_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.cpython-314-wasm32-wasi.so"),
        b"\x7fELF\x02\x01\x01\0",
    )
    .unwrap();
    let err = builder().package(dir.path()).build().await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("/site-packages/bad.cpython-314-wasm32-wasi.so") && msg.contains("ELF"),
        "{msg}"
    );
}

/// Writes a wheel (a zip) with the given entries.
fn wheel(dir: &std::path::Path, name: &str, entries: &[(&str, &[u8])]) -> PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    for (entry, bytes) in entries {
        zip.start_file(*entry, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    path
}

#[tokio::test]
async fn a_directory_and_a_wheel_merge_into_site_packages() {
    let native = std::fs::read(example("fastsum")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let whl = wheel(
        tmp.path(),
        "pkg-1.0-cp314-cp314-wasi_0_0_0_wasm32.whl",
        &[
            (
                "pkg/__init__.py",
                b"from . import fastsum\ndef total(n):\n    return fastsum.fast_sum(n)\n",
            ),
            ("pkg/fastsum.cpython-314-wasm32-wasi.so", &native),
            ("pkg-1.0.dist-info/METADATA", b"Name: pkg\nVersion: 1.0\n"),
        ],
    );
    let plain = tmp.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    std::fs::write(plain.join("helper.py"), "VALUE = 7\n").unwrap();
    let mut sb = builder()
        .package(&plain)
        .package(&whl)
        .build()
        .await
        .unwrap();
    let out = sb
        .execute("import pkg, helper\nprint(pkg.total(100) + helper.VALUE)")
        .await
        .unwrap();
    assert_eq!(out.stdout, "4957\n");
}

#[tokio::test]
async fn hostile_or_conflicting_packages_are_refused_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let evil = wheel(
        tmp.path(),
        "evil-1.0-py3-none-any.whl",
        &[("../escape.py", b"x = 1\n")],
    );
    let err = builder().package(&evil).build().await.unwrap_err();
    assert!(err.to_string().contains("escapes the package"), "{err}");
    assert!(
        err.to_string().contains("evil-1.0-py3-none-any.whl"),
        "{err}"
    );

    let a = wheel(
        tmp.path(),
        "a-1.0-py3-none-any.whl",
        &[("same.py", b"x = 1\n")],
    );
    let b = wheel(
        tmp.path(),
        "b-1.0-py3-none-any.whl",
        &[("same.py", b"x = 2\n")],
    );
    let err = builder().package(&a).package(&b).build().await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("same.py") && msg.contains("a-1.0") && msg.contains("b-1.0"),
        "{msg}"
    );

    let not_a_package = tmp.path().join("notes.txt");
    std::fs::write(&not_a_package, "hi").unwrap();
    let err = builder().package(&not_a_package).build().await.unwrap_err();
    assert!(
        err.to_string().contains("not a directory or a .whl file"),
        "{err}"
    );
}
