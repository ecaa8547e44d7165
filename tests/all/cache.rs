//! The compiled-component cache, through the CLI in fresh processes: an
//! entry is reused, and a damaged or foreign entry is recompiled, never run.

use std::path::{Path, PathBuf};

use crate::support::{eryx_command, private_cache};

/// Runs `code` without pre-initialisation: the split component (its
/// library modules are entries of their own) is what gets damaged here.
/// A pre-initialised component is one entry loaded the same way.
fn run(cache: &Path, code: &str) -> String {
    eryx_ok(cache, &["--no-preinit", "-c", code])
}

/// The CLI's stdout for `args`, which must succeed.
fn eryx_ok(cache: &Path, args: &[&str]) -> String {
    let out = eryx_command(cache).args(args).output().unwrap();
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

/// The cached component (the entry whose check file lists the library
/// modules it imports) and those module entries.
fn component_and_modules(cache: &Path) -> (PathBuf, Vec<PathBuf>) {
    let mut found = Vec::new();
    for entry in entries(cache) {
        let check = std::fs::read_to_string(entry.with_extension("check")).unwrap();
        let modules: Vec<PathBuf> = check
            .lines()
            .skip(1)
            .map(|l| {
                let key = l.split(' ').nth(2).expect("import NAME KEY");
                cache.join(format!("{key}.cwasm"))
            })
            .collect();
        if !modules.is_empty() {
            found.push((entry, modules));
        }
    }
    assert_eq!(found.len(), 1, "one compiled component: {found:?}");
    found.pop().unwrap()
}

/// Writes `bytes` as the entry with a check line that matches them (as a
/// complete entry from another build would have).
fn replace_with_valid_check(entry: &Path, bytes: &[u8]) {
    std::fs::write(entry, bytes).unwrap();
    let check = entry.with_extension("check");
    let old = std::fs::read_to_string(&check).unwrap();
    let mut lines: Vec<String> = old.lines().map(str::to_string).collect();
    lines[0] = format!(
        "xxh3-128 {:032x} {}",
        xxhash_rust::xxh3::xxh3_128(bytes),
        bytes.len()
    );
    std::fs::write(check, lines.join("\n")).unwrap();
}

#[test]
fn damaged_or_foreign_entries_are_recompiled_not_run() {
    let cache = private_cache();
    assert_eq!(run(cache.path(), "print(6 * 7)"), "42\n");
    let (component, modules) = component_and_modules(cache.path());
    // libpython, libc, the runtime, _bz2 and _lzma are compiled once each
    // and imported by the component.
    assert!(modules.len() >= 3, "{modules:?}");
    for m in &modules {
        assert!(m.is_file(), "module entry {m:?} exists");
    }
    let check = std::fs::read_to_string(component.with_extension("check")).unwrap();
    assert!(check.starts_with("xxh3-128 "), "{check}");
    let largest = modules
        .iter()
        .max_by_key(|m| std::fs::metadata(m).unwrap().len())
        .unwrap()
        .clone();
    let good = std::fs::read(&component).unwrap();
    let good_module = std::fs::read(&largest).unwrap();

    // Reused as they are.
    assert_eq!(run(cache.path(), "print(1 + 1)"), "2\n");
    assert_eq!(
        std::fs::read(&component).unwrap(),
        good,
        "a good entry is reused"
    );
    assert_eq!(std::fs::read(&largest).unwrap(), good_module);

    for entry in [&component, &largest] {
        let good = std::fs::read(entry).unwrap();
        // Truncated: recompiled, and the entry is whole again.
        std::fs::write(entry, &good[..good.len() / 2]).unwrap();
        assert_eq!(
            run(cache.path(), "print('after truncation')"),
            "after truncation\n"
        );
        assert!(std::fs::read(entry).unwrap().len() > good.len() / 2 + 1024);

        // Same length, foreign bytes (one flipped byte deep inside the
        // code): the checksum catches it and the entry is rebuilt.
        let good = std::fs::read(entry).unwrap();
        let mut foreign = good.clone();
        let i = foreign.len() / 3;
        foreign[i] ^= 0xff;
        std::fs::write(entry, &foreign).unwrap();
        assert_eq!(
            run(cache.path(), "print('after corruption')"),
            "after corruption\n"
        );
        let rebuilt = std::fs::read(entry).unwrap();
        assert_ne!(rebuilt, foreign);

        // Compiled by another wasmtime (its engine section names major
        // version 47), with a check line that matches: wasmtime's own
        // header check refuses it and the entry is rebuilt.
        let at = rebuilt
            .windows(4)
            .position(|w| w == b"\x00\x0248")
            .expect("the engine section's version");
        let mut other_version = rebuilt.clone();
        other_version[at + 3] = b'7';
        replace_with_valid_check(entry, &other_version);
        assert_eq!(
            run(cache.path(), "print('after a foreign version')"),
            "after a foreign version\n"
        );
        assert_ne!(std::fs::read(entry).unwrap(), other_version);
        let rebuilt = std::fs::read(entry).unwrap();
        assert_eq!(run(cache.path(), "print('again')"), "again\n");
        assert_eq!(
            std::fs::read(entry).unwrap(),
            rebuilt,
            "the rebuilt entry is reused"
        );
    }

    // A missing check file means an incomplete entry: recompiled too.
    std::fs::remove_file(largest.with_extension("check")).unwrap();
    assert_eq!(run(cache.path(), "print('no check')"), "no check\n");
    assert!(largest.with_extension("check").is_file());
}

#[test]
fn cache_size_is_capped() {
    let cache = private_cache();
    // A cap far below one compiled libpython (~23 MB): the entries just
    // written are kept, everything older (here: the function packs) goes.
    let out = eryx_command(cache.path())
        .args(["--no-preinit", "-c", "print('capped')"])
        .env("ERYX_CACHE_MAX_MB", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"capped\n");
    // The component and the modules this run used stay; older files go.
    let (component, modules) = component_and_modules(cache.path());
    assert!(component.is_file());
    assert!(modules.iter().all(|m| m.is_file()), "{modules:?}");
    let packs = std::fs::read_dir(cache.path().join("functions"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(packs, 0, "older files were evicted to honour the cap");
}

/// A snapshot build's lock left by a process that died (killed mid-build)
/// is not waited out: the next build that needs the snapshot takes over.
#[test]
fn a_dead_builders_lock_is_taken_over() {
    let cache = private_cache();
    let snapshot_run = |code: &str| {
        let out = eryx_ok(cache.path(), &["--json", "-c", code]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["preinitialised"], true);
    };
    // The compiled libraries first, so that the snapshot is the large entry
    // the pre-initialising run adds (libpython's module is large too).
    eryx_ok(cache.path(), &["--no-preinit", "-c", "1"]);
    let before = entries(cache.path());
    snapshot_run("1");
    // The pre-initialised component: a new entry that imports no modules.
    let snapshot = entries(cache.path())
        .into_iter()
        .filter(|e| !before.contains(e))
        .find(|e| {
            let check = std::fs::read_to_string(e.with_extension("check")).unwrap();
            check.lines().count() == 1 && std::fs::metadata(e).unwrap().len() > 10 << 20
        })
        .expect("a pre-initialised component entry");
    std::fs::remove_file(snapshot.with_extension("check")).unwrap();
    std::fs::remove_file(&snapshot).unwrap();
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(snapshot.with_extension("lock"), pid.to_string()).unwrap();
    let started = std::time::Instant::now();
    snapshot_run("2");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(300),
        "waited for a dead process's lock"
    );
    assert!(snapshot.is_file(), "the snapshot was rebuilt");
    assert!(
        !snapshot.with_extension("lock").exists(),
        "and the lock released"
    );
}

/// The `/tmp` a pre-import left is its own entry next to the snapshot's
/// (named in the snapshot's check file): damaged (a flipped byte) or
/// foreign (garbage with a matching check line), the snapshot is made
/// again and the sandbox still finds the file where the pre-import put it.
#[test]
fn a_damaged_tmp_seed_entry_makes_the_snapshot_again() {
    let cache = private_cache();
    let site = tempfile::tempdir().unwrap();
    std::fs::write(
        site.path().join("seeded.py"),
        "import os, tempfile\nD = tempfile.mkdtemp()\n\
         open(os.path.join(D, 'x'), 'w').write('seeded')\n",
    )
    .unwrap();
    let site = site.path().to_str().unwrap();
    let args = [
        "--package",
        site,
        "--preimport",
        "seeded",
        "-c",
        "import os, seeded; print(open(os.path.join(seeded.D, 'x')).read())",
    ];
    assert_eq!(eryx_ok(cache.path(), &args), "seeded\n");
    let seeds: Vec<PathBuf> = entries(cache.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("-tmp.cwasm"))
        .collect();
    assert_eq!(seeds.len(), 1, "{seeds:?}");
    let seed = &seeds[0];
    let good = std::fs::read(seed).unwrap();
    assert!(good.starts_with(b"ERYXTMP1"));
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 0xff;
    std::fs::write(seed, &flipped).unwrap();
    assert_eq!(eryx_ok(cache.path(), &args), "seeded\n");
    // Made again (by a new run: `mkdtemp` picked another name).
    let again = std::fs::read(seed).unwrap();
    assert!(again.starts_with(b"ERYXTMP1") && again != flipped);
    replace_with_valid_check(seed, b"not a seed");
    assert_eq!(eryx_ok(cache.path(), &args), "seeded\n");
    assert!(std::fs::read(seed).unwrap().starts_with(b"ERYXTMP1"));
}
