//! Hostile or broken input: the host survives, errors are typed and clear.

use std::time::Duration;

use eryx_host::{Error, Snapshot};

use crate::support::{builder, sandbox};

#[tokio::test]
async fn infinite_loop_is_stopped_by_the_time_limit() {
    let mut sb = builder()
        .timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    sb.execute("warm = 1").await.unwrap();
    let start = std::time::Instant::now();
    let err = sb.execute("while True:\n    pass").await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(err, Error::Timeout { limit } if limit == Duration::from_millis(500)),
        "{err:?}"
    );
    assert!(!err.session_survived());
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    // The next call runs on a fresh instance: the old session is gone.
    let Error::Python(e) = sb.execute("warm").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.type_name, "NameError");
}

#[tokio::test]
async fn memory_bomb_gets_memory_error_and_the_host_lives() {
    let mut sb = builder().memory_limit(64 << 20).build().await.unwrap();
    let r = sb.execute("x = bytearray(200 * 1024 * 1024)").await;
    match r {
        Err(Error::Python(e)) => assert_eq!(e.type_name, "MemoryError"),
        Err(Error::MemoryLimit { limit }) => assert_eq!(limit, 64 << 20),
        other => panic!("expected MemoryError or MemoryLimit, got {other:?}"),
    }
    assert_eq!(
        sb.execute("print('alive')").await.unwrap().stdout,
        "alive\n"
    );
}

#[tokio::test]
async fn guest_sees_no_host_files_or_environment() {
    let mut sb = sandbox().await;
    let out = sb
        .execute(
            r#"
import os
print(dict(os.environ))
for path in ['/etc/passwd', '/root', '/work', '/tmp', '/']:
    try:
        os.listdir(path)
        print(path, 'VISIBLE')
    except OSError as e:
        print(path, type(e).__name__)
try:
    open('/python/lib/python3.14/os.py', 'a')
    print('stdlib WRITABLE')
except OSError as e:
    print('stdlib', type(e).__name__)
"#,
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "{}\n/etc/passwd FileNotFoundError\n/root FileNotFoundError\n/work FileNotFoundError\n/tmp FileNotFoundError\n/ FileNotFoundError\nstdlib PermissionError\n"
    );
}

#[tokio::test]
async fn corrupt_snapshots_are_refused_and_the_session_is_unchanged() {
    let mut sb = sandbox().await;
    sb.execute("keep = 'me'").await.unwrap();
    let good = sb.snapshot().await.unwrap().to_bytes();
    assert!(matches!(
        Snapshot::from_bytes(b"hello"),
        Err(Error::InvalidSnapshot { .. })
    ));
    assert!(matches!(
        Snapshot::from_bytes(&good[..good.len() - 1]),
        Err(Error::InvalidSnapshot { .. })
    ));
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let err = Snapshot::from_bytes(&flipped).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    assert_eq!(
        sb.execute("keep").await.unwrap().value.as_deref(),
        Some("'me'")
    );
}
