//! Sessions: state across calls, clear, snapshot and restore.

use eryx_host::{Error, Snapshot};

use crate::support::sandbox;

#[tokio::test]
async fn variables_persist_between_calls() {
    let mut sb = sandbox().await;
    sb.execute("x = 41\nimport json\ndef inc(v):\n    return v + 1")
        .await
        .unwrap();
    assert_eq!(
        sb.execute("print(inc(x), json.dumps([x]))")
            .await
            .unwrap()
            .stdout,
        "42 [41]\n"
    );
}

#[tokio::test]
async fn a_cell_run_again_behaves_as_a_fresh_one() {
    // A cell run again reuses its compiled code (the prelude's `_compiled`):
    // its results, and the cell names in tracebacks and in the functions it
    // defines (two levels deep here), must be the new cell's.
    let mut sb = sandbox().await;
    let code = "n = globals().get('n', 0) + 1\n\
                def f():\n    def g():\n        return 1 / (n - 2)\n    return g()\n\
                f()";
    let first = sb.execute(code).await.unwrap();
    assert_eq!(first.value.as_deref(), Some("-1.0"));
    let Error::Python(e) = sb.execute(code).await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.type_name, "ZeroDivisionError");
    assert!(
        e.traceback.contains("File \"<cell-2>\", line 4, in g")
            && e.traceback.contains("return 1 / (n - 2)")
            && !e.traceback.contains("<cell-1>"),
        "{}",
        e.traceback
    );
    assert_eq!(
        sb.execute(code).await.unwrap().value.as_deref(),
        Some("1.0")
    );
    let names = sb
        .execute("f.__code__.co_filename, [c for c in f.__code__.co_consts if hasattr(c, 'co_filename')][0].co_filename")
        .await
        .unwrap();
    assert_eq!(names.value.as_deref(), Some("('<cell-3>', '<cell-3>')"));
    // The same source as an expression cell and after `clear()`.
    assert_eq!(
        sb.execute("n * 2").await.unwrap().value.as_deref(),
        Some("6")
    );
    sb.clear().await.unwrap();
    assert_eq!(
        sb.execute(code).await.unwrap().value.as_deref(),
        Some("-1.0")
    );
}

#[tokio::test]
async fn sandboxes_do_not_share_state() {
    let mut a = sandbox().await;
    let mut b = sandbox().await;
    a.execute("secret = 1").await.unwrap();
    let Error::Python(e) = b.execute("secret").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.type_name, "NameError");
}

#[tokio::test]
async fn clear_empties_the_namespace() {
    let mut sb = sandbox().await;
    sb.execute("x = 1").await.unwrap();
    sb.clear().await.unwrap();
    let Error::Python(e) = sb.execute("x").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.type_name, "NameError");
    assert_eq!(
        sb.execute("__name__").await.unwrap().value.as_deref(),
        Some("'__main__'")
    );
}

#[tokio::test]
async fn snapshot_restores_into_another_sandbox() {
    let mut a = sandbox().await;
    a.execute("import json\ndata = {'k': [1, 2, 3]}\nn = 7")
        .await
        .unwrap();
    let snap = a.snapshot().await.unwrap();
    let bytes = snap.to_bytes();
    let mut b = sandbox().await;
    b.restore(&Snapshot::from_bytes(&bytes).unwrap())
        .await
        .unwrap();
    let out = b.execute("print(json.dumps(data), n)").await.unwrap();
    assert_eq!(out.stdout, "{\"k\": [1, 2, 3]} 7\n");
}

#[tokio::test]
async fn unpicklable_names_are_reported_by_name_or_skipped_and_listed() {
    let mut sb = sandbox().await;
    sb.execute("ok = 1\ngen = (i for i in range(3))\ndef f(): pass")
        .await
        .unwrap();
    let Error::Unpicklable(names) = sb.snapshot().await.unwrap_err() else {
        panic!()
    };
    let mut found: Vec<(&str, &str)> = names
        .iter()
        .map(|u| (u.name.as_str(), u.type_name.as_str()))
        .collect();
    found.sort();
    assert_eq!(found, [("f", "function"), ("gen", "generator")]);
    let snap = sb.snapshot_skipping().await.unwrap();
    let mut skipped = snap.skipped().to_vec();
    skipped.sort();
    assert_eq!(skipped, ["f", "gen"]);
    let mut other = sandbox().await;
    other.restore(&snap).await.unwrap();
    assert_eq!(
        other.execute("ok").await.unwrap().value.as_deref(),
        Some("1")
    );
}
