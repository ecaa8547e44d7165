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
    // own TMPDIR is set.
    assert_eq!(
        out.stdout,
        "True True False\n{'TMPDIR': '/tmp'}\n{\"a\": [1, 2]}\n"
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

/// A new extension set with the default policy: the first sandbox starts
/// Python itself (no waiting for a snapshot), the snapshot is built on a
/// background thread, and sandboxes built once it is ready use it.
#[tokio::test]
async fn a_new_sets_snapshot_is_built_in_the_background() {
    let name = crate::support::fresh_extension_name('b');
    let package = crate::support::renamed_fastsum_package(&name);
    let cache = crate::support::private_cache();
    let make = || {
        eryx_host::Sandbox::builder()
            .bundle(crate::support::bundle())
            .cache_dir(cache.path())
            .package(package.path())
    };
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
        eryx_host::Sandbox::builder()
            .bundle(crate::support::bundle())
            .cache_dir(cache.path())
            .package(package.path())
            .snapshot_policy(eryx_host::SnapshotPolicy::Skip)
    };
    let mut sb = skip().build().await.unwrap();
    assert!(!sb.preinitialised());
    let code = format!("import {name}\nprint({name}.fast_sum(10))");
    assert_eq!(sb.execute(&code).await.unwrap().stdout, "45\n");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(!skip().build().await.unwrap().preinitialised());
}
