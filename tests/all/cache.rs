//! The compiled-component cache, through the CLI in fresh processes: an
//! entry is reused, and a damaged or foreign entry is recompiled, never run.

use std::path::{Path, PathBuf};

use crate::support::{eryx_command, private_cache};

fn run(cache: &Path, code: &str) -> String {
    let out = eryx_command(cache).args(["-c", code]).output().unwrap();
    assert!(
        out.status.success(),
        "eryx failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    v.sort();
    v
}

#[test]
fn damaged_or_foreign_entries_are_recompiled_not_run() {
    let cache = private_cache();
    assert_eq!(run(cache.path(), "print(6 * 7)"), "42\n");
    let cwasm = entries(cache.path());
    assert_eq!(cwasm.len(), 1, "one compiled component: {cwasm:?}");
    let entry = &cwasm[0];
    let good = std::fs::read(entry).unwrap();
    let check = std::fs::read_to_string(entry.with_extension("check")).unwrap();
    assert!(check.starts_with("xxh3-128 "), "{check}");

    // Reused as it is.
    let before = std::fs::metadata(entry).unwrap().len();
    assert_eq!(run(cache.path(), "print(1 + 1)"), "2\n");
    assert_eq!(
        std::fs::read(entry).unwrap(),
        good,
        "a good entry is reused"
    );
    assert_eq!(before, good.len() as u64);

    // Truncated: recompiled, and the entry is whole again.
    std::fs::write(entry, &good[..good.len() / 2]).unwrap();
    assert_eq!(
        run(cache.path(), "print('after truncation')"),
        "after truncation\n"
    );
    assert!(std::fs::read(entry).unwrap().len() > good.len() / 2 + 1024);

    // Same length, foreign bytes (one flipped byte deep inside the code):
    // the checksum catches it and the entry is rebuilt.
    let mut foreign = good.clone();
    let i = foreign.len() / 3;
    foreign[i] ^= 0xff;
    std::fs::write(entry, &foreign).unwrap();
    assert_eq!(
        run(cache.path(), "print('after corruption')"),
        "after corruption\n"
    );
    // Rebuilt (a pre-initialised snapshot is not byte-for-byte
    // reproducible, so compare with the corruption, not the original).
    let rebuilt = std::fs::read(entry).unwrap();
    assert_ne!(rebuilt, foreign);
    assert_eq!(run(cache.path(), "print('again')"), "again\n");
    assert_eq!(
        std::fs::read(entry).unwrap(),
        rebuilt,
        "the rebuilt entry is reused"
    );

    // A missing check file means an incomplete entry: recompiled too.
    std::fs::remove_file(entry.with_extension("check")).unwrap();
    assert_eq!(run(cache.path(), "print('no check')"), "no check\n");
    assert!(entry.with_extension("check").is_file());
}

#[test]
fn cache_size_is_capped() {
    let cache = private_cache();
    // A cap far below one compiled component (~26 MB): the entry just
    // written is kept, everything older (here: the function packs) goes.
    let out = eryx_command(cache.path())
        .args(["-c", "print('capped')"])
        .env("ERYX_CACHE_MAX_MB", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"capped\n");
    assert_eq!(entries(cache.path()).len(), 1, "the new entry stays");
    let packs = std::fs::read_dir(cache.path().join("functions"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(packs, 0, "older files were evicted to honour the cap");
}
