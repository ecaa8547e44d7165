//! Pre-initialised sandboxes: Python started (and modules imported) once,
//! snapshotted, and every sandbox made from the snapshot.

use eryx_host::Error;

use crate::support::builder;

#[tokio::test]
async fn preimported_modules_are_loaded_but_not_bound() {
    let mut sb = builder()
        .preimport(["json", "email.message"])
        .build()
        .await
        .unwrap();
    let out = sb
        .execute(
            "import sys\n\
             print('json' in sys.modules, 'email.message' in sys.modules, 'json' in globals())\n\
             import os\n\
             print(dict(os.environ))\n\
             import json\n\
             print(json.dumps({'a': [1, 2]}))",
        )
        .await
        .unwrap();
    // The pre-initialisation's ERYX_PREIMPORT is gone; only the sandbox's
    // own TMPDIR, HOME, USER and PYTEST_ADDOPTS are set.
    assert_eq!(
        out.stdout,
        "True True False\n{'TMPDIR': '/tmp', 'HOME': '/tmp', 'USER': 'sandbox', 'PYTEST_ADDOPTS': '--capture=sys -p no:faulthandler', 'PWD': '/tmp'}\n{\"a\": [1, 2]}\n"
    );
    // Files not touched before the snapshot are reachable (the WASI handles
    // of the pre-initialisation run are not reused).
    let out = sb
        .execute("import csv, io\nw = csv.writer(s := io.StringIO())\nw.writerow([1, 'x'])\nprint(s.getvalue().strip())")
        .await
        .unwrap();
    assert_eq!(out.stdout, "1,x\n");
}

#[tokio::test]
async fn sandboxes_from_one_snapshot_are_independent() {
    let mut a = builder().build().await.unwrap();
    let mut b = builder().build().await.unwrap();
    a.execute("import sys\nsys.modules['marker'] = 1\nx = 'a'")
        .await
        .unwrap();
    let out = b
        .execute("import sys\nprint('marker' in sys.modules, 'x' in globals())")
        .await
        .unwrap();
    assert_eq!(out.stdout, "False False\n");
    // Tracebacks number cells from the user's first one, as without it.
    let Error::Python(e) = b.execute("1/0").await.unwrap_err() else {
        panic!()
    };
    assert!(e.traceback.contains("<cell-2>"), "{}", e.traceback);
}

#[tokio::test]
async fn without_preinit_python_starts_in_the_sandbox() {
    let mut sb = builder().preinit(false).build().await.unwrap();
    let out = sb
        .execute("import sys\nprint(sys.version_info[:2])")
        .await
        .unwrap();
    assert_eq!(out.stdout, "(3, 14)\n");
}

#[tokio::test]
async fn bad_preimports_fail_the_build_naming_them() {
    let err = builder()
        .preimport(["os; import evil"])
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Preinit { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("`os; import evil` is not a module name"),
        "{err}"
    );

    let err = builder()
        .preimport(["no_such_module_xyz"])
        .build()
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("pre-import of `no_such_module_xyz` raised ModuleNotFoundError"),
        "{msg}"
    );
    assert!(msg.contains("--no-preinit"), "the fix is named: {msg}");
}

/// A pre-initialised snapshot's objects are immortal (PEP 683: a sandbox
/// does not write their reference counts, so it does not copy their pages);
/// what a sandbox makes is not, and is freed as usual. Python started in
/// the sandbox makes nothing immortal.
#[tokio::test]
async fn a_snapshots_objects_are_immortal_and_a_sandboxs_own_are_not() {
    let code = "import sys, json, weakref, gc\n\
                class Box: pass\n\
                b = Box(); gone = []\n\
                r = weakref.ref(b, lambda _: gone.append(1))\n\
                del b; gc.collect()\n\
                print(sys._is_immortal(json), sys._is_immortal(json.dumps), \
                sys._is_immortal(sys.modules), sys._is_immortal(Box), gone)";
    let mut sb = builder()
        .snapshot_policy(eryx_host::SnapshotPolicy::Wait)
        .build()
        .await
        .unwrap();
    assert!(sb.preinitialised());
    let out = sb.execute(code).await.unwrap();
    assert_eq!(out.stdout, "True True True False [1]\n", "{}", out.stderr);
    let mut plain = builder().preinit(false).build().await.unwrap();
    let out = plain.execute(code).await.unwrap();
    assert_eq!(
        out.stdout, "False False False False [1]\n",
        "{}",
        out.stderr
    );
}

/// A package that exports its API lazily (PEP 562 `__getattr__`, as
/// pydantic does) has the names in its `__all__` loaded by the pre-import;
/// a name that is a submodule stays on demand, a lookup that fails is
/// skipped, and nothing is bound in the sandbox's namespace.
#[tokio::test]
async fn preimports_load_a_packages_lazy_exports_but_not_its_submodules() {
    let site = tempfile::tempdir().unwrap();
    let pkg = site.path().join("lazy_api");
    std::fs::create_dir(&pkg).unwrap();
    std::fs::write(
        pkg.join("__init__.py"),
        "__all__ = ['Model', 'extras', 'broken', 'Old']\n\
         def __getattr__(name):\n\
         \x20   import importlib, warnings\n\
         \x20   if name == 'Model':\n\
         \x20       return importlib.import_module('._model', __name__).Model\n\
         \x20   if name == 'extras':\n\
         \x20       return importlib.import_module('.extras', __name__)\n\
         \x20   if name == 'Old':\n\
         \x20       warnings.warn('Old is deprecated', FutureWarning, stacklevel=2)\n\
         \x20       return importlib.import_module('._model', __name__).Model\n\
         \x20   if name == 'broken':\n\
         \x20       raise RuntimeError('not available here')\n\
         \x20   raise AttributeError(name)\n",
    )
    .unwrap();
    std::fs::write(pkg.join("_model.py"), "class Model:\n    pass\n").unwrap();
    std::fs::write(pkg.join("extras.py"), "LOADED = True\n").unwrap();
    let mut sb = builder()
        .package(site.path())
        .preimport(["lazy_api"])
        .build()
        .await
        .unwrap();
    assert!(sb.preinitialised());
    let out = sb
        .execute(
            "import sys\n\
             print('lazy_api._model' in sys.modules, 'lazy_api.extras' in sys.modules, \
             'lazy_api' in globals())\n\
             from lazy_api import Model, extras\n\
             print(Model.__name__, extras.LOADED)\n\
             import warnings\n\
             with warnings.catch_warnings(record=True) as caught:\n\
             \x20   warnings.simplefilter('always')\n\
             \x20   import lazy_api\n\
             \x20   lazy_api.Old\n\
             print([str(w.message) for w in caught])",
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout, "True False False\nModel True\n['Old is deprecated']\n",
        "stderr: {}",
        out.stderr
    );
}

/// A sandbox of the package directory `site` with `module` pre-imported,
/// from its snapshot.
async fn preimported(site: &std::path::Path, module: &str) -> eryx_host::Sandbox {
    let sb = builder()
        .package(site)
        .preimport([module])
        .build()
        .await
        .unwrap();
    assert!(sb.preinitialised());
    sb
}

/// A pre-import may write to `/tmp` (matplotlib makes its cache
/// directory there at import, and failed the build when pre-initialising
/// had no `/tmp`): the run has a scratch `/tmp` of its own, and what it
/// leaves there is where the snapshot's Python state expects it: every
/// sandbox of the snapshot starts with its own copy (a directory made by
/// `tempfile.mkdtemp()` at import and kept in a global is usable), links
/// between its files included. What
/// one sandbox changes there, the next does not see; a `/tmp` limit too
/// small for those files fails the build, naming the limit.
#[tokio::test]
async fn a_preimports_tmp_files_are_in_every_sandbox_of_its_snapshot() {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(
        site.path().join("writes_tmp.py"),
        "import os, tempfile\n\
         os.makedirs(os.path.join(os.environ['HOME'], '.cache-dir'), exist_ok=True)\n\
         with open('/tmp/.cache-dir/list.json', 'w') as f:\n\
         \x20   f.write('[1, 2, 3]')\n\
         os.symlink('list.json', '/tmp/.cache-dir/latest')\n\
         SCRATCH = tempfile.mkdtemp()\n\
         with open(os.path.join(SCRATCH, 'state'), 'w') as f:\n\
         \x20   f.write('made at import')\n\
         def state():\n\
         \x20   with open(os.path.join(SCRATCH, 'state')) as f:\n\
         \x20       return f.read()\n",
    )
    .unwrap();
    for _ in 0..2 {
        let mut sb = preimported(site.path(), "writes_tmp").await;
        let out = sb
            .execute(
                "import os, writes_tmp\n\
                 print(open('/tmp/.cache-dir/list.json').read(), writes_tmp.state())\n\
                 print(os.readlink('/tmp/.cache-dir/latest'), open('/tmp/.cache-dir/latest').read())\n\
                 print(sorted(os.listdir('/tmp')) == sorted(['.cache-dir', os.path.basename(writes_tmp.SCRATCH)]))\n\
                 open('/tmp/mine', 'w').write('x')\n\
                 os.remove('/tmp/.cache-dir/list.json')\n\
                 print(len(os.listdir('/tmp')), os.listdir('/tmp/.cache-dir'))",
            )
            .await
            .unwrap();
        assert_eq!(
            out.stdout, "[1, 2, 3] made at import\nlist.json [1, 2, 3]\nTrue\n3 ['latest']\n",
            "stderr: {}",
            out.stderr
        );
    }
    let err = builder()
        .package(site.path())
        .preimport(["writes_tmp"])
        .tmp_limit(4096)
        .build()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("/tmp limit of 4096 bytes: raise it")
            || format!("{err:?}").contains("/tmp limit of 4096 bytes: raise it"),
        "{err:?}"
    );
}

/// A file a pre-import opened and kept (a logging `FileHandler`, a data
/// file read line by line) is open in every sandbox of the snapshot, at
/// its position: its descriptor did not survive the snapshot, and a
/// handler's lines went into the next file the sandbox's code opened
/// instead. One opened from a bare descriptor is closed there (a
/// `ValueError`, not a write elsewhere), and so is a SQLite connection to
/// a database file (it read another file as its database); one to an
/// in-memory database keeps working.
#[tokio::test]
async fn files_a_preimport_keeps_open_are_open_in_its_sandboxes() {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("lines.txt"), "one\ntwo\nthree\n").unwrap();
    std::fs::write(
        site.path().join("keeps_files.py"),
        "import logging, os\n\
         log = logging.getLogger('keeps_files')\n\
         log.addHandler(logging.FileHandler('/tmp/app.log'))\n\
         log.setLevel(logging.INFO)\n\
         log.info('at import')\n\
         DATA = open(os.path.join(os.path.dirname(__file__), 'lines.txt'))\n\
         FIRST = DATA.readline()\n\
         RAW = os.fdopen(os.open('/tmp/raw.bin', os.O_WRONLY | os.O_CREAT), 'wb')\n\
         import sqlite3\n\
         DB = sqlite3.connect('/tmp/cache.db')\n\
         DB.execute('create table t(x)'); DB.commit()\n\
         MEM = sqlite3.connect(':memory:')\n\
         MEM.execute('create table t(x)'); MEM.execute('insert into t values (7)')\n",
    )
    .unwrap();
    for _ in 0..2 {
        let mut sb = preimported(site.path(), "keeps_files").await;
        let out = sb
            .execute(
                "import keeps_files as k\n\
                 mine = [open(f'/tmp/mine{i}.txt', 'w') for i in range(4)]\n\
                 k.log.info('in the sandbox')\n\
                 for f in mine: f.close()\n\
                 print([open(f'/tmp/mine{i}.txt').read() for i in range(4)])\n\
                 print(repr(open('/tmp/app.log').read()))\n\
                 print(repr(k.FIRST), repr(k.DATA.readline()))\n\
                 try:\n\
                 \x20   k.RAW.write(b'x')\n\
                 except ValueError as e:\n\
                 \x20   print('ValueError', e)\n\
                 try:\n\
                 \x20   k.DB.execute('select * from t')\n\
                 except Exception as e:\n\
                 \x20   print(type(e).__name__, e)\n\
                 print(k.MEM.execute('select x from t').fetchall())\n",
            )
            .await
            .unwrap();
        assert_eq!(
            out.stdout,
            "['', '', '', '']\n'at import\\nin the sandbox\\n'\n'one\\n' 'two\\n'\n\
             ValueError write to closed file\n\
             ProgrammingError Cannot operate on a closed database.\n[(7,)]\n",
            "stderr: {}",
            out.stderr
        );
    }
}

/// A new extension set with the default policy: the first sandbox starts
/// Python itself (no waiting for a snapshot), the snapshot is built on a
/// background thread, and sandboxes built once it is ready use it.
#[tokio::test]
async fn a_new_sets_snapshot_is_built_in_the_background() {
    let name = crate::support::fresh_extension_name('b');
    let package = crate::support::renamed_fastsum_package(&name);
    let cache = crate::support::private_cache();
    let make = || crate::support::new_set_builder(cache.path(), package.path());
    let code = format!("import {name}\nprint({name}.fast_sum(100))");
    let mut first = make().build().await.unwrap();
    assert!(!first.preinitialised(), "the first sandbox does not wait");
    assert_eq!(first.execute(&code).await.unwrap().stdout, "4950\n");
    let started = std::time::Instant::now();
    let mut later = loop {
        let sb = make().build().await.unwrap();
        if sb.preinitialised() {
            break sb;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(300),
            "the snapshot was not ready after 300 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(later.execute(&code).await.unwrap().stdout, "4950\n");

    // `Skip`: no snapshot, and none is started.
    let name = crate::support::fresh_extension_name('s');
    let package = crate::support::renamed_fastsum_package(&name);
    let skip = || {
        crate::support::new_set_builder(cache.path(), package.path())
            .snapshot_policy(eryx_host::SnapshotPolicy::Skip)
    };
    let mut sb = skip().build().await.unwrap();
    assert!(!sb.preinitialised());
    let code = format!("import {name}\nprint({name}.fast_sum(10))");
    assert_eq!(sb.execute(&code).await.unwrap().stdout, "45\n");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(!skip().build().await.unwrap().preinitialised());
}

/// Copies a directory tree as hard links (the files are shared, the
/// directories are the copy's own).
fn link_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            link_tree(&entry.path(), &target);
        } else {
            std::fs::hard_link(entry.path(), &target).unwrap();
        }
    }
}

/// A snapshot holds the import system's view of the stdlib directory; when
/// the directory changes, the old snapshot is not used (with the default
/// policy the sandbox starts Python itself while a new one is made), and a
/// module added to it is found.
#[tokio::test]
async fn a_changed_stdlib_directory_is_not_served_from_an_old_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("dist");
    link_tree(&crate::support::bundle(), &bundle);
    let b = |policy| builder().bundle(&bundle).snapshot_policy(policy);
    let sb = b(eryx_host::SnapshotPolicy::Wait).build().await.unwrap();
    assert!(sb.preinitialised());
    let sb = b(eryx_host::SnapshotPolicy::Skip).build().await.unwrap();
    assert!(
        sb.preinitialised(),
        "the snapshot is reused while nothing changed"
    );
    let stdlib = std::fs::read_dir(bundle.join("python/lib"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("os.py").is_file())
        .expect("the stdlib directory of the bundle");
    std::fs::write(stdlib.join("eryx_added_module.py"), "VALUE = 5\n").unwrap();
    let mut sb = b(eryx_host::SnapshotPolicy::Skip).build().await.unwrap();
    assert!(!sb.preinitialised(), "an old snapshot was used");
    let out = sb
        .execute("import eryx_added_module\nprint(eryx_added_module.VALUE)")
        .await
        .unwrap();
    assert_eq!(out.stdout, "5\n");
}

/// A snapshot comes with the common stdlib modules imported (scripts do not
/// pay ~10-80 ms each for them), but none that keeps per-process randomness:
/// two sandboxes of one snapshot draw different numbers.
#[tokio::test]
async fn common_stdlib_modules_come_imported_but_not_shared_randomness() {
    let mut a = builder().build().await.unwrap();
    let mut b = builder().build().await.unwrap();
    assert!(a.preinitialised(), "the suite's snapshot is built by then");
    let check = "import sys\n\
                 print([m in sys.modules for m in ('re', 'json', 'typing', 'dataclasses', 'pathlib', 'asyncio')])\n\
                 print([m for m in ('random', 'tempfile', 'uuid', 'secrets') if m in sys.modules])\n\
                 import random\n\
                 random.random()";
    let out_a = a.execute(check).await.unwrap();
    let out_b = b.execute(check).await.unwrap();
    assert_eq!(out_a.stdout, "[True, True, True, True, True, True]\n[]\n");
    assert_ne!(
        out_a.value, out_b.value,
        "both sandboxes drew the same number"
    );
    // And the pre-imported modules work as imported ones do.
    let out = a
        .execute("import json, re, dataclasses\n@dataclasses.dataclass\nclass P:\n    x: int\njson.dumps(re.findall(r'\\d', str(P(42))))")
        .await
        .unwrap();
    assert_eq!(out.value.as_deref(), Some("'[\"4\", \"2\"]'"));
}

/// A snapshot's heap is mapped copy-on-write from its memory image (a
/// private, writable mapping), not copied into every sandbox. wasmtime's
/// default only does that when the heap's non-zero bytes cover at least
/// half of its span; one snapshot built during a busy test run did not, and
/// every sandbox of it held its own copy (+1 MiB resident each).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_snapshots_heap_is_mapped_copy_on_write() {
    let builder = builder().snapshot_policy(eryx_host::SnapshotPolicy::Wait);
    assert_heap_image_at_least(builder, "x = 1", 1 << 20).await;
}

/// The same for a snapshot whose heap is sparse: a pre-imported module that
/// touched the far end of a 24 MiB block it then freed leaves one non-zero
/// byte high above the rest of the heap. wasmtime's default heuristic
/// would copy such a heap into every sandbox.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_sparse_snapshot_heap_is_still_mapped_copy_on_write() {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(
        site.path().join("sparse_heap.py"),
        "_block = bytearray(24 << 20)\n_block[-1] = 1\n_after = bytearray(4096)\ndel _block\n",
    )
    .unwrap();
    let builder = builder().package(site.path()).preimport(["sparse_heap"]);
    assert_heap_image_at_least(builder, "import sparse_heap", 24 << 20).await;
}

/// Builds a pre-initialised sandbox, runs `code` in it and checks that this
/// process maps a memory image of at least `bytes` copy-on-write.
#[cfg(target_os = "linux")]
async fn assert_heap_image_at_least(builder: eryx_host::SandboxBuilder, code: &str, bytes: u64) {
    let mut sb = builder.build().await.unwrap();
    assert!(sb.preinitialised());
    sb.execute(code).await.unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let largest = largest_cow_image(&maps);
    assert!(
        largest >= bytes,
        "no copy-on-write mapping of {bytes} bytes or more for a snapshot's heap \
         (largest: {largest} bytes):\n{maps}"
    );
}

/// The largest private, writable mapping of a memory image in a
/// `/proc/self/maps` listing: a snapshot's heap mapped copy-on-write, from
/// the compiled file (`.cwasm`) when it was loaded from the cache, from
/// wasmtime's `memfd` when it was compiled in this process.
#[cfg(target_os = "linux")]
fn largest_cow_image(maps: &str) -> u64 {
    maps.lines()
        .filter(|l| {
            (l.ends_with(".cwasm") || l.contains("/memfd:wasm-memory-image"))
                && l.split_whitespace().nth(1) == Some("rw-p")
        })
        .filter_map(|l| {
            let (start, end) = l.split_whitespace().next()?.split_once('-')?;
            Some(u64::from_str_radix(end, 16).ok()? - u64::from_str_radix(start, 16).ok()?)
        })
        .max()
        .unwrap_or(0)
}

/// The prelude is a module of the bundle's stdlib: a bundle without it
/// fails with an error that names it and the command that makes a bundle,
/// and the host goes on.
#[tokio::test]
async fn a_bundle_without_the_prelude_fails_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("dist");
    link_tree(&crate::support::bundle(), &bundle);
    let stdlib = std::fs::read_dir(bundle.join("python/lib"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("os.py").is_file())
        .expect("the stdlib directory of the bundle");
    std::fs::remove_file(stdlib.join("_eryx_prelude.py")).unwrap();
    for entry in std::fs::read_dir(stdlib.join("__pycache__")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("_eryx_prelude.") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let started = async {
        let mut sb = builder().bundle(&bundle).preinit(false).build().await?;
        sb.execute("print(1)").await
    };
    let err = started.await.expect_err("a bundle without its prelude ran");
    let msg = err.to_string();
    assert!(
        msg.contains("_eryx_prelude") && msg.contains("cargo xtask dist"),
        "{msg}"
    );
    // The shared bundle still works.
    let out = builder().build().await.unwrap().execute("print(2)").await;
    assert_eq!(out.unwrap().stdout, "2\n");
}

/// The snapshot was taken after a warm-up call (so that what a first call
/// makes once is in it); a sandbox made from it shows no trace of that
/// call: no variable, no `_`, no source in `linecache`, no cached finder
/// for `/site-packages`, its first cell `<cell-1>`, its output its own and
/// the host's functions bound (they are each sandbox's, not the
/// snapshot's).
#[tokio::test]
async fn the_snapshots_warm_up_leaves_no_trace_in_a_sandbox() {
    let mut sb = builder()
        .function("ping", |_: serde_json::Value| async move {
            Ok(serde_json::json!("pong"))
        })
        .build()
        .await
        .unwrap();
    assert!(sb.preinitialised());
    let out = sb
        .execute(
            "import sys\n\
             print(sorted(k for k in globals() if not k.startswith('__')))\n\
             print(hasattr(__import__('builtins'), '_'))\n\
             print([k for k in __import__('linecache').cache if 'warm' in k])\n\
             print('/site-packages' in sys.path_importer_cache)\n\
             print(ping())",
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "['sys']\nFalse\n[]\nFalse\npong\n");
    let Error::Python(e) = sb.execute("1/0").await.unwrap_err() else {
        panic!("expected a Python error")
    };
    assert!(e.traceback.contains("<cell-2>"), "{}", e.traceback);
}
