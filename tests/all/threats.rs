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

#[tokio::test]
async fn sleeping_forever_is_stopped_by_the_time_limit() {
    let mut sb = builder()
        .timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let start = std::time::Instant::now();
    let err = sb
        .execute("import time\ntime.sleep(100)")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(
        sb.execute("print('fresh')").await.unwrap().stdout,
        "fresh\n"
    );
}

#[tokio::test]
async fn runaway_call_is_cancelled_from_another_task() {
    let mut sb = sandbox().await;
    let handle = sb.cancel_handle();
    handle.cancel(); // no call running: a no-op
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        handle.cancel();
        handle.cancel(); // twice: still fine
    });
    let start = std::time::Instant::now();
    let err = sb.execute("while True: pass").await.unwrap_err();
    canceller.await.unwrap();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert!(!err.session_survived());
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(
        sb.execute("1 + 1").await.unwrap().value.as_deref(),
        Some("2")
    );
}

#[tokio::test]
async fn deep_recursion_is_a_recursion_error_or_a_typed_trap() {
    let mut sb = sandbox().await;
    let Error::Python(e) = sb
        .execute("def f(n): return f(n + 1)\nf(0)")
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(e.type_name, "RecursionError");
    let r = sb
        .execute("import sys\nsys.setrecursionlimit(10**6)\ndef g(n): return g(n + 1)\ng(0)")
        .await;
    match r {
        Err(Error::Python(e)) => assert!(
            ["RecursionError", "MemoryError"].contains(&e.type_name.as_str()),
            "{e:?}"
        ),
        Err(e @ (Error::Trap { .. } | Error::MemoryLimit { .. })) => assert!(!e.session_survived()),
        other => panic!("expected a RecursionError or a trap, got {other:?}"),
    }
    assert_eq!(
        sb.execute("print('still here')").await.unwrap().stdout,
        "still here\n"
    );
}

#[tokio::test]
async fn output_flood_is_capped_and_marked_truncated() {
    let mut sb = sandbox().await;
    let out = sb
        .execute(
            "import sys\nfor _ in range(3000): print('x' * 1000)\nprint('e' * 10, file=sys.stderr)",
        )
        .await
        .unwrap();
    assert!(out.truncated);
    assert_eq!(out.stdout.len(), 1 << 20);
    assert_eq!(out.stderr, "eeeeeeeeee\n");
    let out = sb
        .execute("import os\nos.write(1, b'raw bytes\\n')\nprint('ok')")
        .await
        .unwrap();
    assert_eq!(
        out.stdout, "ok\n",
        "os.write(1) must not reach the captured output or the host"
    );
}

#[tokio::test]
async fn no_network_no_subprocess_no_threads() {
    let mut sb = sandbox().await;
    let out = sb
        .execute(
            r#"
def attempt(name, fn):
    try:
        fn()
        print(name, 'ALLOWED')
    except BaseException as e:
        print(name, isinstance(e, (OSError, RuntimeError, ImportError, NotImplementedError, AttributeError)))

def connect():
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(('127.0.0.1', 80))

def resolve():
    import socket
    socket.getaddrinfo('example.com', 80)

def spawn():
    import subprocess
    subprocess.run(['ls'])

def thread():
    import threading
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()

def fork():
    import os
    os.fork()

for name, fn in [('connect', connect), ('resolve', resolve), ('spawn', spawn), ('thread', thread), ('fork', fork)]:
    attempt(name, fn)
"#,
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "connect True\nresolve True\nspawn True\nthread True\nfork True\n"
    );
}
