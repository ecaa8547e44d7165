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
    for code in [
        "open('/data/new.txt', 'w')",
        "open('/data/in.txt', 'a')",
        "import os; os.remove('/data/in.txt')",
        "import os; os.mkdir('/data/d')",
    ] {
        let Err(Error::Python(e)) = sb.execute(code).await else {
            panic!("{code} succeeded on a read-only mount")
        };
        assert!(
            ["PermissionError", "OSError"].contains(&e.type_name.as_str()),
            "{code}: {}",
            e.type_name
        );
    }
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
         PermissionError\nPermissionError\nFileNotFoundError\n",
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
