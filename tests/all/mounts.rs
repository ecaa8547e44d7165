//! Host directories mounted into the guest (`SandboxBuilder::mount`,
//! `--mount`): read-only and read-write access, and no way out of a mount.

use eryx_host::{Access, Error};

use crate::support::{builder, eryx, text};

fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "hello from the host\n").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/deep.txt"), "deep").unwrap();
    dir
}

#[tokio::test]
async fn read_only_mounts_can_be_read_not_written() {
    let dir = data_dir();
    let mut sb = builder()
        .mount("/data", dir.path(), Access::ReadOnly)
        .build()
        .await
        .unwrap();
    let out = sb
        .execute("import os\nprint(open('/data/in.txt').read(), sorted(os.listdir('/data')), open('/data/sub/deep.txt').read())")
        .await
        .unwrap();
    assert_eq!(out.stdout, "hello from the host\n ['in.txt', 'sub'] deep\n");
    // As on a read-only filesystem on Linux: `EROFS`, an `OSError` that
    // is no `PermissionError` (wasmtime-wasi's own answer is `EPERM`).
    for code in [
        "open('/data/new.txt', 'w')",
        "open('/data/in.txt', 'a')",
        "import os; os.remove('/data/in.txt')",
        "import os; os.mkdir('/data/d')",
        "import os; os.rmdir('/data/sub')",
        "import os; os.rename('/data/in.txt', '/data/out.txt')",
        "import os; os.utime('/data/in.txt')",
        "import os; os.symlink('in.txt', '/data/link')",
    ] {
        let Err(Error::Python(e)) = sb.execute(code).await else {
            panic!("{code} succeeded on a read-only mount")
        };
        assert_eq!(e.type_name, "OSError", "{code}: {}", e.message);
        assert!(
            e.message.contains("Read-only file system"),
            "{code}: {}",
            e.message
        );
    }
    let out = sb
        .execute(
            "import errno\ntry:\n    open('/data/new.txt', 'w')\n\
             except OSError as e:\n    print(e.errno == errno.EROFS, isinstance(e, PermissionError))",
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "True False\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("in.txt")).unwrap(),
        "hello from the host\n"
    );
    assert!(!dir.path().join("new.txt").exists());
}

#[tokio::test]
async fn read_write_mounts_reach_the_host_directory() {
    let dir = data_dir();
    let mut sb = builder()
        .mount("/out", dir.path(), Access::ReadWrite)
        .build()
        .await
        .unwrap();
    sb.execute(
        "import os, json\n\
         os.makedirs('/out/results/a', exist_ok=True)\n\
         with open('/out/results/a/r.json', 'w') as f: json.dump({'ok': True}, f)\n\
         os.rename('/out/in.txt', '/out/moved.txt')",
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("results/a/r.json")).unwrap(),
        "{\"ok\": true}"
    );
    assert!(dir.path().join("moved.txt").is_file());
    assert!(!dir.path().join("in.txt").exists());
}

#[tokio::test]
async fn nothing_outside_a_mount_is_reachable() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let dir = data_dir();
    // Links that point out of the mount, relative and absolute.
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        dir.path().join("abs-link"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../../../etc/passwd",
        dir.path().join("rel-link"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("dir-link")).unwrap();
    let mut sb = builder()
        .mount("/data", dir.path(), Access::ReadWrite)
        .build()
        .await
        .unwrap();
    for path in [
        "/data/../etc/passwd",
        "/data/sub/../../../../etc/passwd",
        "/data/abs-link",
        "/data/rel-link",
        "/data/dir-link/secret.txt",
        "/etc/passwd",
        "/tmp",
    ] {
        let code = format!("open({path:?}).read()");
        match sb.execute(&code).await {
            Err(Error::Python(e)) => {
                assert!(
                    [
                        "FileNotFoundError",
                        "PermissionError",
                        "OSError",
                        "IsADirectoryError",
                        "NotADirectoryError"
                    ]
                    .contains(&e.type_name.as_str()),
                    "{path}: {} {}",
                    e.type_name,
                    e.message
                );
                let host = dir.path().to_str().unwrap();
                assert!(
                    !e.message.contains(host) && !e.traceback.contains(host),
                    "{path}: the host path leaked: {}",
                    e.message
                );
            }
            other => panic!("{path} was readable: {other:?}"),
        }
    }
    // Writing through a link does not reach outside either.
    assert!(
        sb.execute("open('/data/dir-link/new.txt', 'w').write('x')")
            .await
            .is_err()
    );
    assert!(!outside.path().join("new.txt").exists());
}

#[tokio::test]
async fn the_root_lists_what_the_sandbox_holds_and_nothing_more() {
    // `/` was no directory at all (`os.listdir("/")` raised
    // FileNotFoundError): now it and the directories above each preopen
    // can be listed, read-only and empty but for the way down.
    let dir = data_dir();
    let mut sb = builder()
        .mount("/mnt/data", dir.path(), Access::ReadOnly)
        .build()
        .await
        .unwrap();
    let out = sb
        .execute(
            r#"
import os, pathlib
print(sorted(os.listdir("/")), os.listdir("/mnt"), os.listdir("/python/lib"))
print(sorted(os.listdir("/mnt/data")) == sorted(os.listdir("/mnt/data/")), os.path.isdir("/"))
print([p for p, dirs, files in os.walk("/") if files and p.startswith("/mnt")])
print(sorted(str(p) for p in pathlib.Path("/").iterdir()))
for attempt in (lambda: open("/new.txt", "w"), lambda: os.mkdir("/mnt/other"), lambda: open("/etc/passwd")):
    try:
        attempt()
    except OSError as e:
        print(type(e).__name__)
"#,
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "['dev', 'mnt', 'python', 'tmp'] ['data'] ['python3.14']\n\
         True True\n\
         ['/mnt/data', '/mnt/data/sub']\n\
         ['/dev', '/mnt', '/python', '/tmp']\n\
         OSError\nOSError\nFileNotFoundError\n",
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn bad_mounts_are_refused_naming_the_fix() {
    let dir = data_dir();
    for (guest, why) in [
        ("data", "absolute"),
        ("/python/lib", "overlaps `/python`"),
        ("/site-packages", "overlaps `/site-packages`"),
        ("/a/../b", "plain"),
    ] {
        let err = builder()
            .mount(guest, dir.path(), Access::ReadOnly)
            .build()
            .await
            .unwrap_err();
        assert!(matches!(err, Error::BadMount { .. }), "{guest}: {err:?}");
        assert!(err.to_string().contains(why), "{guest}: {err}");
    }
    let err = builder()
        .mount("/data", dir.path().join("missing"), Access::ReadOnly)
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is not a directory"), "{err}");
}

/// `SandboxBuilder::working_dir`: relative paths, `os.getcwd()` and `PWD`
/// start in the given directory in a pre-initialised sandbox (whose
/// snapshot started in `/tmp`) and in one that starts Python itself, and
/// again in the new instance after a reset; the code's own `chdir` holds
/// for the session.
#[tokio::test]
async fn the_working_dir_is_where_every_instance_starts() {
    let dir = data_dir();
    let code = "import os\nprint(os.getcwd(), os.environ['PWD'], open('deep.txt').read(), \
                os.path.abspath('x'))";
    let expected = "/data/sub /data/sub deep /data/sub/x\n";
    for preinit in [true, false] {
        let mut sb = builder()
            .preinit(preinit)
            .timeout(std::time::Duration::from_secs(2))
            .mount("/data", dir.path(), Access::ReadOnly)
            .working_dir("/data/sub")
            .build()
            .await
            .unwrap();
        assert_eq!(sb.preinitialised(), preinit);
        let out = sb.execute(code).await.unwrap();
        assert_eq!(out.stdout, expected, "preinit {preinit}: {}", out.stderr);
        let out = sb
            .execute("os.chdir('..'); print(open('in.txt').read(), end='')")
            .await
            .unwrap();
        assert_eq!(out.stdout, "hello from the host\n");
        let err = sb.execute("while True: pass").await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
        let out = sb.execute(code).await.unwrap();
        assert_eq!(out.stdout, expected, "preinit {preinit}, after a reset");
    }
    // The default: /tmp.
    let out = crate::support::stdout_of("import os; print(os.getcwd(), os.environ['PWD'])").await;
    assert_eq!(out, "/tmp /tmp\n");
}

#[tokio::test]
async fn bad_working_dirs_are_refused_naming_the_fix() {
    let dir = data_dir();
    for (wd, says) in [
        ("data", "absolute guest path"),
        ("/data/../etc", "without `.`, `..`"),
        ("/data/missing", "does not exist"),
        ("/data/in.txt", "is not a directory"),
        ("/elsewhere", "in no mount"),
        ("/tmp/work", "starts empty"),
    ] {
        let err = builder()
            .mount("/data", dir.path(), Access::ReadOnly)
            .working_dir(wd)
            .build()
            .await
            .unwrap_err();
        let Error::BadWorkingDir { path, reason } = &err else {
            panic!("{wd}: {err:?}");
        };
        assert_eq!(path, wd);
        assert!(reason.contains(says), "{wd}: {reason}");
    }
    let err = builder()
        .tmp_limit(0)
        .working_dir("/tmp")
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("has no `/tmp`"), "{err}");
}

/// The CLI runs in this process's working directory's guest path when a
/// mount shows it, as `python3` runs in the shell's: `-m` finds the
/// project's packages, `-c` its files; `-w` picks another; `-P` leaves the
/// directory off `sys.path`.
#[test]
fn cli_runs_in_the_mounted_working_directory() {
    let dir = data_dir();
    std::fs::create_dir(dir.path().join("tool")).unwrap();
    std::fs::write(dir.path().join("tool/__init__.py"), "").unwrap();
    std::fs::write(
        dir.path().join("tool/__main__.py"),
        "import os, sys\nprint(os.getcwd(), sys.path[0], sys.argv[1:], open('in.txt').read(), end='')\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = crate::support::eryx_command(&crate::support::cache_dir())
            .current_dir(dir.path())
            .args(["--mount", ".:/app"])
            .args(args)
            .output()
            .unwrap();
        (text(&out.stdout), text(&out.stderr))
    };
    let (out, err) = run(&["-m", "tool", "a"]);
    assert_eq!(out, "/app /app ['a'] hello from the host\n", "{err}");
    let (out, err) = run(&[
        "-c",
        "import os, sys; print(os.getcwd(), repr(sys.path[0]))",
    ]);
    assert_eq!(out, "/app ''\n", "{err}");
    let (out, err) = run(&["-w", "/app/sub", "-c", "print(open('deep.txt').read())"]);
    assert_eq!(out, "deep\n", "{err}");
    let (out, err) = run(&["-P", "-m", "tool"]);
    assert!(err.contains("No module named tool"), "{out}{err}");
    let (_, err) = run(&["-w", "/nowhere", "-c", "1"]);
    assert!(
        err.contains("\"/nowhere\"") && err.contains("in no mount"),
        "{err}"
    );
}

#[test]
fn cli_mount_flag() {
    let dir = data_dir();
    let spec = format!("{}:/data", dir.path().display());
    let out = eryx(
        &[
            "--mount",
            &spec,
            "-c",
            "print(open('/data/in.txt').read(), end='')",
        ],
        None,
    );
    assert_eq!(
        text(&out.stdout),
        "hello from the host\n",
        "{}",
        text(&out.stderr)
    );
    let spec = format!("{}:/w:rw", dir.path().display());
    let out = eryx(
        &[
            "--mount",
            &spec,
            "-c",
            "open('/w/cli.txt', 'w').write('from the cli')",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("cli.txt")).unwrap(),
        "from the cli"
    );
    let out = eryx(&["--mount", "nocolon", "-c", "1"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("HOST:GUEST"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn file_names_and_text_files_are_utf8_in_the_guest_and_on_the_host() {
    // UTF-8 mode (PEP 540): with WASI's C locale the file system encoding
    // was ASCII and `open("café.txt")` raised UnicodeEncodeError.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("données.csv"), "ville\nZürich\n").unwrap();
    let mut sb = builder()
        .mount("/data", dir.path(), Access::ReadWrite)
        .build()
        .await
        .unwrap();
    let out = sb
        .execute(
            r#"
import os, sys, locale
print(sys.flags.utf8_mode, sys.getfilesystemencoding(), locale.getpreferredencoding(False))
print(os.listdir("/data"), open("/data/données.csv").read().split())
with open("/data/日本 ✓.txt", "w") as f:
    f.write("東京\n")
with open("/tmp/café.txt", "w") as f:
    f.write("crème")
print(sorted(os.listdir("/tmp")), open("/tmp/café.txt", "rb").read())
"#,
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "1 utf-8 utf-8\n['données.csv'] ['ville', 'Zürich']\n['café.txt'] b'cr\\xc3\\xa8me'\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("日本 ✓.txt")).unwrap(),
        "東京\n"
    );
}

/// SQLite in the private `/tmp` locks as on Linux (a reader sees the last
/// commit while another connection writes; a second writer is refused; no
/// lock directory), through the runtime's `fcntl` record locks and the
/// `unix` VFS; on a mount (also one that replaces `/tmp`), which other
/// sandboxes may share, the WASI
/// build's lock directory stays (a reader waits for the writer), and it
/// keeps two sandboxes on one database apart.
#[tokio::test]
async fn sqlite_readers_share_a_private_database_and_mounts_keep_the_lock_directory() {
    let dir = tempfile::tempdir().unwrap();
    let code = r#"
import os, sqlite3
def trial(path):
    w = sqlite3.connect(path, isolation_level=None)
    w.execute("create table if not exists t(x)")
    w.execute("insert into t values (0)")
    w.execute("begin immediate")
    w.execute("insert into t values (1)")
    lockdir = os.path.exists(path + ".lock")
    r = sqlite3.connect(path, timeout=0)
    try:
        seen = r.execute("select count(*) from t").fetchone()[0]
    except sqlite3.OperationalError as e:
        seen = str(e)
    try:
        r.execute("insert into t values (2)")
        second = "written"
    except sqlite3.OperationalError as e:
        second = str(e)
    w.execute("commit")
    after = r.execute("select count(*) from t").fetchone()[0]
    check = r.execute("pragma integrity_check").fetchone()[0]
    print(path, lockdir, seen, second, after, check)
trial("/tmp/w?eird#name.db")
trial("data.db")
trial("/data/shared.db")
# The deprecation warnings of positional arguments still name the caller.
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    sqlite3.connect(":memory:", 1.0)
print(sorted({(w.filename, w.category.__name__) for w in caught}), len(caught))
"#;
    let mut sb = builder()
        .mount("/data", dir.path(), Access::ReadWrite)
        .build()
        .await
        .unwrap();
    let out = sb.execute(code).await.unwrap();
    assert_eq!(
        out.stdout,
        "/tmp/w?eird#name.db False 1 database is locked 2 ok\n\
         data.db False 1 database is locked 2 ok\n\
         /data/shared.db True database is locked database is locked 2 ok\n\
         [('<cell-1>', 'DeprecationWarning')] 2\n",
        "{}",
        out.stderr
    );
    // A second sandbox on the mounted database waits for the first's lock
    // directory: what keeps sandboxes that share a mount apart.
    let mut first = builder()
        .mount("/data", dir.path(), Access::ReadWrite)
        .build()
        .await
        .unwrap();
    let mut second = builder()
        .mount("/data", dir.path(), Access::ReadWrite)
        .build()
        .await
        .unwrap();
    first
        .execute(
            "import sqlite3\n\
             w = sqlite3.connect('/data/shared.db', isolation_level=None)\n\
             w.execute('begin immediate')\n\
             w.execute('insert into t values (3)')",
        )
        .await
        .unwrap();
    let out = second
        .execute(
            "import sqlite3\n\
             try:\n    sqlite3.connect('/data/shared.db', timeout=0).execute('select 1 from t').fetchall()\n\
             except sqlite3.OperationalError as e:\n    print(e)",
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "database is locked\n");
    first.execute("w.execute('commit')").await.unwrap();
    let out = second
        .execute(
            "sqlite3.connect('/data/shared.db').execute('select count(*) from t').fetchone()[0]",
        )
        .await
        .unwrap();
    assert_eq!(out.value.as_deref(), Some("3"));
    // A host directory mounted at `/tmp` is not private either.
    let tmp = tempfile::tempdir().unwrap();
    let mut sb = builder()
        .mount("/tmp", tmp.path(), Access::ReadWrite)
        .build()
        .await
        .unwrap();
    let out = sb
        .execute(&format!(
            "{}\ntrial('/tmp/t.db')",
            code.replace("trial(\"", "# (\"")
        ))
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "[('<cell-1>', 'DeprecationWarning')] 2\n\
         /tmp/t.db True database is locked database is locked 2 ok\n",
        "{}",
        out.stderr
    );
}

/// With a caller mount, reads of files go through the host's blocking pool
/// (`OffloadedReader`); the end of a file ends only the read that met it.
/// A descriptor read to its end while the file was empty reads what is
/// written later, as on Linux (wasmtime-wasi's own stream stayed at its
/// end: a second SQLite connection opened on a new database saw an empty
/// file and failed "file is not a database").
#[tokio::test]
async fn with_a_mount_a_file_read_to_its_end_reads_what_is_written_later() {
    let dir = data_dir();
    let mut sb = builder()
        .mount("/data", dir.path(), Access::ReadWrite)
        .build()
        .await
        .unwrap();
    let out = sb
        .execute(
            r#"
import sqlite3
for path in ("/tmp/grow.txt", "/data/grow.txt"):
    w = open(path, "w+")
    r = open(path)
    first = r.read()
    w.write("hello")
    w.flush()
    print(path, repr(first), repr(r.read()), repr(r.read()))
for path in ("/tmp/new.db", "/data/new.db"):
    a = sqlite3.connect(path, isolation_level=None)
    b = sqlite3.connect(path, isolation_level=None)
    a.execute("create table t(x)")
    a.execute("insert into t values (1)")
    print(path, b.execute("select * from t").fetchall())
print(open("/data/in.txt").read(), end="")
"#,
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "/tmp/grow.txt '' 'hello' ''\n\
         /data/grow.txt '' 'hello' ''\n\
         /tmp/new.db [(1,)]\n\
         /data/new.db [(1,)]\n\
         hello from the host\n",
        "{}",
        out.stderr
    );
}
