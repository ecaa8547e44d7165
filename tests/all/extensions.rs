//! Native extensions, late-linked from a package directory.

use std::path::PathBuf;

use eryx_host::Error;
use eryx_linker::{Extension, LinkError};

use crate::support::{builder, cache_dir, example, example_file, root};

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
    let Error::BadExtension {
        package,
        file,
        error,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (package, file.as_str()),
        (&dir.path().to_path_buf(), "bad.cpython-314-wasm32-wasi.so")
    );
    let msg = error.to_string();
    assert!(
        msg.contains("`/site-packages/bad.cpython-314-wasm32-wasi.so` is not a WebAssembly module")
            && msg.contains("ELF"),
        "{msg}"
    );
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

/// With several packages merged into one `/site-packages`, a file that
/// cannot be linked is named with the wheel it came from, not only by the
/// guest path the linker knows it by.
#[tokio::test]
async fn a_broken_extension_is_named_with_the_wheel_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let good = wheel(
        dir.path(),
        "good-1.0-py3-none-any.whl",
        &[("good.py", b"X = 1\n")],
    );
    let bad = wheel(
        dir.path(),
        "bad-1.0-cp314-cp314-wasi_0_0_0_wasm32.whl",
        &[(
            "badpkg/_core.cpython-314-wasm32-wasi.so",
            b"not wasm at all",
        )],
    );
    let err = builder()
        .package(&good)
        .package(&bad)
        .build()
        .await
        .unwrap_err();
    match &err {
        Error::BadExtension {
            package,
            file,
            error,
        } => {
            assert_eq!(package, &bad);
            assert_eq!(file, "badpkg/_core.cpython-314-wasm32-wasi.so");
            assert!(matches!(**error, LinkError::NotWasm { .. }), "{error:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "`/site-packages/badpkg/_core.cpython-314-wasm32-wasi.so` is not a WebAssembly module \
             (it starts with 6e 6f 74 20); build it for wasm32-wasi as a shared library \
             (`badpkg/_core.cpython-314-wasm32-wasi.so` in the package {})",
            bad.display()
        )
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

/// A sandbox with a package directory and a wheel.
async fn dir_and_wheel(dir: &std::path::Path, whl: &std::path::Path) -> eryx_host::Sandbox {
    builder().package(dir).package(whl).build().await.unwrap()
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
    let mut sb = dir_and_wheel(&plain, &whl).await;
    let out = sb
        .execute("import pkg, helper\nprint(pkg.total(100) + helper.VALUE)")
        .await
        .unwrap();
    assert_eq!(out.stdout, "4957\n");
}

/// Wheels are unpacked once into the cache (`<cache>/wheels/<sha256>/`) and
/// later sets link to that copy; a copy that was damaged since (a file
/// truncated, edited or deleted) is unpacked again, and a changed wheel
/// under the same name is a new entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wheels_are_unpacked_once_into_the_cache_and_damage_is_repaired() {
    use sha2::{Digest, Sha256};
    let tmp = tempfile::tempdir().unwrap();
    // A unique payload: a fresh cache entry for this run.
    let token = format!("{:?}", std::time::SystemTime::now());
    let source = format!("TOKEN = {token:?}\nVALUE = 41\n");
    let make = |value: &str| {
        wheel(
            tmp.path(),
            "cached-1.0-py3-none-any.whl",
            &[
                ("cachedpkg/__init__.py", value.as_bytes()),
                ("cachedpkg/data.txt", b"payload\n"),
            ],
        )
    };
    let whl = make(&source);
    let key = hex(&Sha256::digest(std::fs::read(&whl).unwrap()));
    let unpacked = cache_dir().join("wheels").join(&key[..32]);
    let plain = tmp.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    std::fs::write(plain.join("helper.py"), "ADD = 1\n").unwrap();
    // A sandbox with both packages: what `VALUE + ADD` and the data file say.
    async fn sum_and_data(plain: PathBuf, whl: PathBuf) -> String {
        let mut sb = dir_and_wheel(&plain, &whl).await;
        let code = "import cachedpkg, helper, importlib.resources as r\n\
                    print(cachedpkg.VALUE + helper.ADD, r.files('cachedpkg').joinpath('data.txt').read_text().strip())";
        sb.execute(code).await.unwrap().stdout
    }
    let run = || sum_and_data(plain.clone(), whl.clone());
    // A private directory left by a killed process (no such pid) is swept.
    let orphan = cache_dir().join("wheels/tmp/site-999999999-left");
    std::fs::create_dir_all(&orphan).unwrap();
    assert_eq!(run().await, "42 payload\n");
    assert!(!orphan.exists(), "an orphaned private directory was left");
    let init = unpacked.join("cachedpkg/__init__.py");
    assert_eq!(std::fs::read_to_string(&init).unwrap(), source);
    // Used again: the same copy (same inode), not a new unpack.
    let inode = |p: &std::path::Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).unwrap().ino()
    };
    let before = inode(&init);
    assert_eq!(run().await, "42 payload\n");
    assert_eq!(inode(&init), before, "the cached copy was unpacked again");
    // Damage: truncated, edited in place at the same size, deleted; each
    // time unpacked again.
    std::fs::write(&init, "VALUE = ").unwrap();
    assert_eq!(run().await, "42 payload\n");
    std::fs::write(&init, source.replace("41", "40")).unwrap();
    assert_eq!(run().await, "42 payload\n");
    std::fs::remove_file(unpacked.join("cachedpkg/data.txt")).unwrap();
    assert_eq!(run().await, "42 payload\n");
    // The same file name with other contents; two sandboxes built at once
    // on two threads, both unpacking it, both get it.
    make(&source.replace("41", "99"));
    let (a, b) = (tokio::spawn(run()), tokio::spawn(run()));
    assert_eq!(a.await.unwrap(), "100 payload\n");
    assert_eq!(b.await.unwrap(), "100 payload\n");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

/// A minimal wasm shared library: `@dylink.0` (mem-info + needed), the given
/// function imports from `env`, and the given exported (empty) functions.
fn dylib(exports: &[&str], imports: &[&str], needed: &[&str]) -> Vec<u8> {
    use wasm_encoder::{
        CodeSection, CustomSection, EntityType, ExportKind, ExportSection, Function,
        FunctionSection, ImportSection, Module, TypeSection,
    };
    let mut dylink = vec![1u8, 4, 0, 0, 0, 0];
    let mut needed_payload = Vec::new();
    leb(&mut needed_payload, needed.len() as u32);
    for n in needed {
        leb(&mut needed_payload, n.len() as u32);
        needed_payload.extend_from_slice(n.as_bytes());
    }
    dylink.push(2);
    leb(&mut dylink, needed_payload.len() as u32);
    dylink.extend_from_slice(&needed_payload);

    let mut module = Module::new();
    module.section(&CustomSection {
        name: "dylink.0".into(),
        data: dylink.as_slice().into(),
    });
    let mut types = TypeSection::new();
    types.ty().function([], []);
    module.section(&types);
    let mut imps = ImportSection::new();
    for name in imports {
        imps.import("env", name, EntityType::Function(0));
    }
    module.section(&imps);
    let mut funcs = FunctionSection::new();
    let mut code = CodeSection::new();
    let mut exps = ExportSection::new();
    for (i, name) in exports.iter().enumerate() {
        funcs.function(0);
        let mut f = Function::new([]);
        f.instructions().end();
        code.function(&f);
        exps.export(name, ExportKind::Func, (imports.len() + i) as u32);
    }
    module.section(&funcs);
    module.section(&exps);
    module.section(&code);
    module.finish()
}

fn leb(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

async fn build_error(files: &[(&str, Vec<u8>)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    builder()
        .package(dir.path())
        .build()
        .await
        .unwrap_err()
        .to_string()
}

#[tokio::test]
async fn unresolved_imports_are_listed_per_file() {
    let msg = build_error(&[(
        "bad.cpython-314-wasm32-wasi.so",
        dylib(
            &["PyInit_bad"],
            &["PyLong_FromLong", "no_such_symbol", "nor_this_one"],
            &[],
        ),
    )])
    .await;
    assert!(msg.contains("`/site-packages/bad.cpython-314-wasm32-wasi.so` needs symbols nothing provides: no_such_symbol, nor_this_one"), "{msg}");
}

#[tokio::test]
async fn a_needed_library_outside_the_set_is_refused() {
    let msg = build_error(&[(
        "x.cpython-314-wasm32-wasi.so",
        dylib(&["PyInit_x"], &[], &["libfoo.so"]),
    )])
    .await;
    assert!(
        msg.contains("`/site-packages/x.cpython-314-wasm32-wasi.so` needs `libfoo.so`"),
        "{msg}"
    );
}

#[tokio::test]
async fn clashing_exports_are_refused_in_either_order() {
    let a = dylib(&["PyInit_a", "shared_helper"], &[], &[]);
    let b = dylib(&["PyInit_b", "shared_helper"], &[], &[]);
    // A symbol two libraries define clashes when a library imports it
    // (which one it got would depend on the order)...
    let user = dylib(&["PyInit_user"], &["shared_helper"], &[]);
    for files in [
        [
            ("a.cpython-314-wasm32-wasi.so", a.clone()),
            ("b.cpython-314-wasm32-wasi.so", b.clone()),
            ("user.cpython-314-wasm32-wasi.so", user.clone()),
        ],
        [
            ("a.cpython-314-wasm32-wasi.so", b.clone()),
            ("b.cpython-314-wasm32-wasi.so", a.clone()),
            ("user.cpython-314-wasm32-wasi.so", user.clone()),
        ],
    ] {
        let msg = build_error(&files).await;
        assert!(
            msg.contains("`/site-packages/a.cpython-314-wasm32-wasi.so` and `/site-packages/b.cpython-314-wasm32-wasi.so` both export `shared_helper`"),
            "{msg}"
        );
    }
    // ...and not when nothing imports it: each library's own is what
    // `dlsym` finds on its handle, as with libraries loaded `RTLD_LOCAL`.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.cpython-314-wasm32-wasi.so"), &a).unwrap();
    std::fs::write(dir.path().join("b.cpython-314-wasm32-wasi.so"), &b).unwrap();
    builder()
        .package(dir.path())
        .build()
        .await
        .expect("two libraries each defining a symbol that nothing imports");
    // Modules of the same name in two packages are fine: PyInit_* is looked up per library.
    let fastsum = std::fs::read(example("fastsum")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for pkg in ["one", "two"] {
        std::fs::create_dir(dir.path().join(pkg)).unwrap();
        std::fs::write(dir.path().join(pkg).join("__init__.py"), "").unwrap();
        std::fs::write(
            dir.path()
                .join(pkg)
                .join("fastsum.cpython-314-wasm32-wasi.so"),
            &fastsum,
        )
        .unwrap();
    }
    let mut sb = builder().package(dir.path()).build().await.unwrap();
    let out = sb
        .execute("from one import fastsum as f1\nfrom two import fastsum as f2\nprint(f1.fast_sum(10), f2.fast_sum(5), f1.__file__ != f2.__file__)")
        .await
        .unwrap();
    assert_eq!(out.stdout, "45 10 True\n");
}

#[tokio::test]
async fn a_package_with_two_extension_modules() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("textkit");
    std::fs::create_dir(&pkg).unwrap();
    for name in ["fastsum", "wordcount"] {
        std::fs::copy(
            example(name),
            pkg.join(format!("{name}.cpython-314-wasm32-wasi.so")),
        )
        .unwrap();
    }
    std::fs::copy(
        root().join("examples/extensions/textkit/textkit/__init__.py"),
        pkg.join("__init__.py"),
    )
    .unwrap();
    let mut sb = builder().package(dir.path()).build().await.unwrap();
    let out = sb
        .execute("import textkit\nprint(textkit.report('the quick brown fox\\njumps over the extraordinarily lazy dog'))")
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "2 lines, 10 words, longest 'extraordinarily', checksum 45\n"
    );
    let Error::Python(e) = sb.execute("textkit.count(42)").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.type_name, "TypeError");
}

#[tokio::test]
async fn a_panicking_extension_is_contained() {
    let pkg = fastsum_package();
    let mut sb = builder().package(pkg.path()).build().await.unwrap();
    sb.execute("import fastsum\nkept = 1").await.unwrap();
    let err = sb.execute("fastsum.crash()").await.unwrap_err();
    assert!(matches!(err, Error::Trap { .. }), "{err:?}");
    assert!(!err.session_survived());
    // A fresh instance serves the next call, extension included.
    let out = sb
        .execute("import fastsum\nprint(fastsum.fast_sum(4))")
        .await
        .unwrap();
    assert_eq!(out.stdout, "6\n");
}

/// The PyO3 example (`examples/extensions/numstats`, an unchanged `cdylib`
/// PyO3 crate) with its Python wrapper package, as `pip` would lay it out.
fn numstats_package() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("numstats");
    std::fs::create_dir(&pkg).unwrap();
    std::fs::copy(
        root().join("examples/extensions/numstats/python/numstats/__init__.py"),
        pkg.join("__init__.py"),
    )
    .unwrap();
    std::fs::copy(
        example("_native"),
        pkg.join("_native.cpython-314-wasm32-wasi.so"),
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn a_pyo3_extension_runs_with_its_wrapper_package() {
    let pkg = numstats_package();
    let mut sb = builder().package(pkg.path()).build().await.unwrap();
    let out = sb
        .execute(
            "import numstats\n\
             d = numstats.describe([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])\n\
             print(d['count'], d['mean'], round(d['std'], 4), d['min'], d['max'])\n\
             print(numstats.histogram([float(i) for i in range(100)], 4))\n\
             r = numstats.Running()\n\
             for x in (1.0, 2.0, 3.0): r.push(x)\n\
             print(r, r.mean)\n\
             print(numstats.zscores([1.0, 2.0, 3.0]))",
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "8 5.0 2.1381 2.0 9.0\n[25, 25, 25, 25]\nRunning(count=3, mean=2) 2.0\n[-1.0, 0.0, 1.0]\n"
    );
    // PyO3's errors are Python exceptions; the session goes on.
    let Error::Python(e) = sb.execute("numstats.describe([])").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.type_name, "ValueError");
    assert!(e.message.contains("must not be empty"), "{}", e.message);
    let Error::Python(e) = sb.execute("numstats.describe(['x'])").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.type_name, "TypeError");
    assert_eq!(
        sb.execute("numstats.Running().count")
            .await
            .unwrap()
            .value
            .as_deref(),
        Some("0")
    );
}

/// One base bundle, four extension sets in one run: each sandbox imports
/// exactly what it linked.
#[tokio::test]
async fn every_combination_imports_exactly_what_it_linked() {
    let a = fastsum_package();
    let b = numstats_package();
    let probe = "import importlib.util as u\n\
                 print(u.find_spec('fastsum') is not None, u.find_spec('numstats') is not None)";
    let sets: [(&[&std::path::Path], &str); 4] = [
        (&[], "False False\n"),
        (&[a.path()], "True False\n"),
        (&[b.path()], "False True\n"),
        (&[a.path(), b.path()], "True True\n"),
    ];
    for (packages, expected) in sets {
        let mut builder = builder();
        for p in packages {
            builder = builder.package(p);
        }
        let mut sb = builder.build().await.unwrap();
        assert_eq!(sb.execute(probe).await.unwrap().stdout, expected);
        if expected.starts_with("True") {
            let out = sb
                .execute("import fastsum\nprint(fastsum.fast_sum(100))")
                .await
                .unwrap();
            assert_eq!(out.stdout, "4950\n");
        } else {
            let Error::Python(e) = sb.execute("import fastsum").await.unwrap_err() else {
                panic!()
            };
            assert_eq!(e.type_name, "ModuleNotFoundError");
        }
        if expected.ends_with("True\n") {
            let out = sb
                .execute("import numstats\nprint(numstats.describe([1.0, 3.0])['mean'])")
                .await
                .unwrap();
            assert_eq!(out.stdout, "2.0\n");
        }
    }
}

/// The C example (`examples/extensions/cvec`, limited API): built against
/// CPython 3.14's headers with a pyconfig.h generated from the guest's
/// sysconfigdata, installed under the stable-ABI name.
#[tokio::test]
async fn a_c_extension_on_the_limited_api_runs() {
    let so = example_file("cvec.abi3.so");
    let pkg = tempfile::tempdir().unwrap();
    std::fs::copy(&so, pkg.path().join("cvec.abi3.so")).unwrap();
    let mut sb = builder().package(pkg.path()).build().await.unwrap();
    let out = sb
        .execute(
            "import cvec\n\
             print(cvec.dot([1, 2, 3], [4.0, 5.0, 6.0]), cvec.norm((3, 4)), cvec.scale([1, 2], 0.5))\n\
             print(cvec.__file__)",
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "32.0 5.0 [0.5, 1.0]\n/site-packages/cvec.abi3.so\n"
    );
    let Error::Python(e) = sb.execute("cvec.dot([1], [1, 2])").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.type_name, "ValueError");
    assert!(
        e.message.contains("lengths differ (1 and 2)"),
        "{}",
        e.message
    );
    let Error::Python(e) = sb.execute("cvec.norm(['x'])").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.type_name, "TypeError");
}

/// The `sigmask` example: C that blocks every signal around its work (as
/// xz does in the threads it starts) compiles for the guest, whose libc
/// declares no signal sets or masks, and runs: the sets answer as POSIX
/// says, a mask change is accepted, and mistakes get `EINVAL`.
#[tokio::test]
async fn c_that_masks_signals_builds_and_runs() {
    let pkg = tempfile::tempdir().unwrap();
    let file = "sigmask.cpython-314-wasm32-wasi.so";
    std::fs::copy(example_file(file), pkg.path().join(file)).unwrap();
    let mut sb = builder().package(pkg.path()).build().await.unwrap();
    let out = sb
        .execute(
            "import errno, sigmask\n\
             print(sigmask.guarded(lambda: 6 * 7))\n\
             print(sigmask.sets())\n\
             print(sigmask.errors() == (errno.EINVAL,) * 3)\n\
             try:\n    sigmask.guarded(lambda: 1 / 0)\n\
             except ZeroDivisionError as e:\n    print('raised', e)",
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "(42, True, True)\n(0, 1, 1, 0)\nTrue\nraised division by zero\n"
    );
}

/// The `ctors` example: a static constructor that calls the Python API runs
/// when the module is first imported, with the interpreter running, and
/// only once (natively `dlopen` runs it then; the component's start-up,
/// before the interpreter exists, must not).
#[tokio::test]
async fn an_extensions_static_constructors_run_at_its_first_import() {
    let pkg = tempfile::tempdir().unwrap();
    let file = "ctors.cpython-314-wasm32-wasi.so";
    std::fs::copy(example_file(file), pkg.path().join(file)).unwrap();
    let mut sb = builder().package(pkg.path()).build().await.unwrap();
    let out = sb
        .execute(
            "import sys, ctors\n\
             print(ctors.state())\n\
             del sys.modules['ctors']\n\
             import ctors\n\
             print(ctors.state())",
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "(1, 1, 'made by a static constructor')\n(1, 1, 'made by a static constructor')\n"
    );
    // A path that names no library is CPython's to report, as natively.
    let Error::Python(e) = sb
        .execute(
            "import _imp, types\n\
             _imp.create_dynamic(types.SimpleNamespace(name='x', origin='/site-packages/x\\0.so'))",
        )
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(e.type_name, "ValueError", "{}", e.message);
    assert!(e.message.contains("null"), "{}", e.message);
}

/// The `checksum` example: a C extension whose `@dylink.0` needs
/// `libcrc.so`, a plain C library shipped in the same package.
fn checksum_package(with_library: bool) -> tempfile::TempDir {
    let pkg = tempfile::tempdir().unwrap();
    std::fs::copy(
        example_file("checksum.abi3.so"),
        pkg.path().join("checksum.abi3.so"),
    )
    .unwrap();
    if with_library {
        std::fs::create_dir(pkg.path().join("checksum.libs")).unwrap();
        std::fs::copy(
            example_file("libcrc.so"),
            pkg.path().join("checksum.libs/libcrc.so"),
        )
        .unwrap();
    }
    pkg
}

#[tokio::test]
async fn a_library_an_extension_needs_by_name_is_linked_from_its_package() {
    let pkg = checksum_package(true);
    let mut sb = builder().package(pkg.path()).build().await.unwrap();
    let out = sb
        .execute(
            "import binascii, checksum\n\
             data = bytes(range(256)) * 100\n\
             print(checksum.crc32(data) == binascii.crc32(data), checksum.crc32(b'hello world'))",
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "True 222957957\n");
    // The library is linked, not importable.
    let Error::Python(e) = sb.execute("import libcrc").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.type_name, "ModuleNotFoundError");
    assert!(e.message.contains("linked here: checksum"), "{}", e.message);

    // Without it, the build names what is missing.
    let without = checksum_package(false);
    let msg = builder()
        .package(without.path())
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`/site-packages/checksum.abi3.so` needs `libcrc.so`"),
        "{msg}"
    );

    // Two packages shipping a library of the same name: refused, naming both.
    let other = tempfile::tempdir().unwrap();
    std::fs::copy(
        pkg.path().join("checksum.libs/libcrc.so"),
        other.path().join("libcrc.so"),
    )
    .unwrap();
    let msg = builder()
        .package(pkg.path())
        .package(other.path())
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("a second library named `libcrc.so`"), "{msg}");
}

#[tokio::test]
async fn a_missing_module_names_what_this_sandbox_links() {
    let pkg = fastsum_package();
    let mut sb = builder().package(pkg.path()).build().await.unwrap();
    let Error::Python(e) = sb.execute("import numstats").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.type_name, "ModuleNotFoundError");
    assert!(
        e.message.contains("No module named 'numstats'")
            && e.message
                .contains("no native extension of that name was linked")
            && e.message.contains("linked here: fastsum"),
        "{}",
        e.message
    );
    // Code that probes for optional modules still gets a plain ImportError.
    let out = sb
        .execute("try:\n    import numstats\nexcept ImportError:\n    print('fallback')")
        .await
        .unwrap();
    assert_eq!(out.stdout, "fallback\n");
}

/// An extension's SHA-256 (the set's cache key is made of them) is
/// remembered in `<cache>/ext-digests/` by the file's stamp, with what the
/// engine needs to know of it, so a process that finds the same unchanged
/// file does not read it again; the memo holds exactly the digest the
/// linker computes, and a rewritten file (new stamp) gets an entry of its
/// own.
#[tokio::test]
async fn extension_digests_are_remembered_by_the_files_stamp() {
    let pkg = fastsum_package();
    let so = pkg.path().join("fastsum.cpython-314-wasm32-wasi.so");
    // A custom section with a nonce: a digest no other test's file has
    // (tests run side by side on the same cache).
    let nonce = format!("{:?}", std::time::SystemTime::now());
    let name = b"eryx-test-nonce";
    let mut bytes = std::fs::read(&so).unwrap();
    bytes.push(0);
    bytes.push(u8::try_from(1 + name.len() + nonce.len()).unwrap());
    bytes.push(u8::try_from(name.len()).unwrap());
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(nonce.as_bytes());
    std::fs::write(&so, &bytes).unwrap();
    let digest = Extension::new(
        "/site-packages/fastsum.cpython-314-wasm32-wasi.so",
        bytes.clone(),
    )
    .unwrap()
    .sha256()
    .to_owned();
    // A remembered digest: only a well-formed one, only once.
    let ext = Extension::new("/site-packages/fastsum.cpython-314-wasm32-wasi.so", bytes).unwrap();
    assert!(!ext.remember_sha256("not a digest"));
    assert!(!ext.remember_sha256(&digest.to_uppercase()));
    assert!(ext.remember_sha256(&digest));
    assert!(!ext.remember_sha256(&"0".repeat(64)));
    assert_eq!(ext.sha256(), digest);
    let memo = cache_dir().join("ext-digests");
    let holding = || {
        std::fs::read_dir(&memo)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| {
                        std::fs::read_to_string(e.path())
                            .is_ok_and(|t| t == format!("{digest}\n-\n"))
                    })
                    .map(|e| e.file_name())
                    .collect::<std::collections::BTreeSet<_>>()
            })
            .unwrap_or_default()
    };
    let before = holding();
    let run = || async {
        let mut sb = builder().package(pkg.path()).build().await.unwrap();
        sb.execute("import fastsum\nprint(fastsum.fast_sum(10))")
            .await
            .unwrap()
            .stdout
    };
    assert_eq!(run().await, "45\n");
    let first = holding();
    assert_eq!(first.difference(&before).count(), 1, "one new memo entry");
    // The same file again: its entry is used, no new one.
    assert_eq!(run().await, "45\n");
    assert_eq!(holding(), first);
    // The file written again (same bytes, new stamp): a new entry, with
    // the same digest.
    let bytes = std::fs::read(&so).unwrap();
    std::fs::remove_file(&so).unwrap();
    std::fs::write(&so, bytes).unwrap();
    assert_eq!(run().await, "45\n");
    assert_eq!(holding().difference(&first).count(), 1);
}
