//! `SandboxPool`: ready sandboxes, each fresh.

use eryx_host::SandboxPool;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_hands_out_fresh_started_sandboxes_and_refills() {
    let pool = SandboxPool::new(crate::support::builder(), 2)
        .await
        .unwrap();
    pool.filled().await;
    assert_eq!(pool.ready(), 2);

    let mut a = pool.get().await.unwrap();
    a.execute("secret = 'from a'").await.unwrap();
    let mut b = pool.get().await.unwrap();
    // More than the pool holds: made on demand, never an error.
    let mut c = pool.get().await.unwrap();
    for sb in [&mut b, &mut c] {
        let out = sb.execute("'secret' in globals()").await.unwrap();
        assert_eq!(
            out.value.as_deref(),
            Some("False"),
            "no state leaks between sandboxes"
        );
    }
    pool.filled().await;
    assert_eq!(pool.ready(), 2, "the pool refills in the background");
    assert_eq!(
        a.execute("secret").await.unwrap().value.as_deref(),
        Some("'from a'")
    );
}

/// wasmtime's pooling allocator: sandboxes come from pre-reserved slots;
/// past the configured number, building fails with a typed error.
#[tokio::test]
async fn pooling_allocator_serves_up_to_its_size() {
    let mut a = crate::support::builder()
        .instance_pool(2)
        .build()
        .await
        .unwrap();
    let mut b = crate::support::builder()
        .instance_pool(2)
        .build()
        .await
        .unwrap();
    // Marks in `a`'s memory: a variable, interpreter state and 4 MiB of
    // pages written past the snapshot's.
    a.execute("x = 1\nimport sys\nsys.slot_mark = 'a'\nbig = b'Z' * (4 << 20)")
        .await
        .unwrap();
    assert_eq!(
        b.execute("'x' in globals()")
            .await
            .unwrap()
            .value
            .as_deref(),
        Some("False")
    );
    let err = crate::support::builder()
        .instance_pool(2)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err, eryx_host::Error::Instantiate { .. }),
        "{err:?}"
    );
    drop(a);
    // A slot freed is a slot reusable, and comes back as the snapshot left
    // it (its pages are kept resident and reset in place).
    let mut c = crate::support::builder()
        .instance_pool(2)
        .build()
        .await
        .unwrap();
    assert_eq!(
        c.execute("6 * 7").await.unwrap().value.as_deref(),
        Some("42")
    );
    assert_eq!(
        c.execute("import sys\n('x' in globals(), hasattr(sys, 'slot_mark'))")
            .await
            .unwrap()
            .value
            .as_deref(),
        Some("(False, False)")
    );
}

/// A pooled sandbox has run a warm-up call; the session shows no trace of
/// it: the user's first cell is `<cell-1>`, `_` is unset, no name was added
/// to `__main__` and `linecache` does not hold its source.
#[tokio::test]
async fn the_pools_warm_up_leaves_no_trace_in_the_session() {
    let pool = SandboxPool::new(crate::support::builder(), 1)
        .await
        .unwrap();
    let mut sb = pool.get().await.unwrap();
    let out = sb
        .execute(
            "print(sorted(k for k in globals() if not k.startswith('__')))\n\
             print(hasattr(__import__('builtins'), '_'))\n\
             print([k for k in __import__('linecache').cache if 'warm' in k])",
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "[]\nFalse\n[]\n");
    let eryx_host::Error::Python(e) = sb.execute("1/0").await.unwrap_err() else {
        panic!("expected a Python error")
    };
    assert!(e.traceback.contains("<cell-2>"), "{}", e.traceback);
}
