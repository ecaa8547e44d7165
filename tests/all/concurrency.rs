//! Many sandboxes at once: one engine, one compiled component, no cross-talk.

use std::time::Duration;

use eryx_host::Error;

use crate::support::builder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_sandboxes_with_a_looper_a_hog_and_a_raiser() {
    let mut tasks = Vec::new();
    for i in 0..32usize {
        tasks.push(tokio::spawn(async move {
            let mut sb = builder()
                .timeout(Duration::from_secs(2))
                .memory_limit(64 << 20)
                .build()
                .await
                .unwrap();
            let r = match i {
                0 => sb.execute("while True: pass").await,
                1 => sb.execute("x = bytearray(500 * 1024 * 1024)").await,
                2 => sb.execute("raise KeyError('k2')").await,
                _ => sb.execute(&format!("me = {i}\nprint(me * 2)")).await,
            };
            (i, r.map(|o| o.stdout))
        }));
    }
    for t in tasks {
        let (i, r) = t.await.unwrap();
        match (i, r) {
            (0, Err(Error::Timeout { .. })) => {}
            (1, Err(Error::Python(e))) if e.type_name == "MemoryError" => {}
            (1, Err(Error::MemoryLimit { .. })) => {}
            (2, Err(Error::Python(e))) if e.type_name == "KeyError" => {}
            (i, Ok(out)) if i > 2 => assert_eq!(out, format!("{}\n", i * 2)),
            (i, other) => panic!("sandbox {i}: unexpected {other:?}"),
        }
    }
}
