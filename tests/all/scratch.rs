//! The sandbox's private scratch directory: `/tmp`, `TMPDIR` and the
//! working directory, bounded by `Limits::tmp_bytes` (`--tmp-size`).

use eryx_host::{Access, Error};

use crate::support::{builder, eryx, sandbox, text};

#[tokio::test]
async fn tmp_is_writable_and_is_the_working_directory() {
    let mut sb = sandbox().await;
    let out = sb
        .execute(
            r#"
import os, tempfile, json
print(os.getcwd(), os.environ['TMPDIR'], tempfile.gettempdir())
with tempfile.NamedTemporaryFile('w+', suffix='.json') as f:
    json.dump({'a': 1}, f); f.flush(); f.seek(0)
    print(json.load(f), os.path.dirname(f.name))
d = tempfile.mkdtemp()
with open(os.path.join(d, 'x.txt'), 'w') as f: f.write('x' * 100_000)
with open('relative.txt', 'w') as f: f.write('here')
print(os.path.getsize(os.path.join(d, 'x.txt')), open('/tmp/relative.txt').read())
"#,
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout, "/tmp /tmp /tmp\n{'a': 1} /tmp\n100000 here\n",
        "{}",
        out.stderr
    );
    // Files stay for the session.
    let out = sb
        .execute("print(open('relative.txt').read())")
        .await
        .unwrap();
    assert_eq!(out.stdout, "here\n");
}

#[tokio::test]
async fn a_full_tmp_is_enospc_and_frees_on_delete() {
    let mut sb = builder().tmp_limit(1 << 20).build().await.unwrap();
    let out = sb
        .execute(
            r#"
import errno, os
def fill(path, chunk):
    n = 0
    try:
        with open(path, 'wb') as f:
            while True:
                f.write(chunk); f.flush(); n += 1
    except OSError as e:
        return n, e.errno == errno.ENOSPC, e.strerror
print(fill('big', b'x' * 65536))
os.remove('big')
with open('again', 'wb') as f: f.write(b'y' * 500_000)
print(os.path.getsize('again'))
try:
    with open('more', 'wb') as f: f.write(b'z' * 600_000)
except OSError as e:
    print('write', errno.errorcode[e.errno])
try:
    for i in range(1000): os.mkdir(f'd{i}')
except OSError as e:
    print('mkdir', errno.errorcode[e.errno])
try:
    os.truncate('again', 10 << 20)
except OSError as e:
    print('truncate', errno.errorcode[e.errno])
"#,
        )
        .await
        .unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}\n{}", out.stdout, out.stderr);
    // 1 MiB minus the file's entry: 15 full chunks of 64 KiB fit.
    assert_eq!(lines[0], "(15, True, 'No space left on device')");
    assert_eq!(lines[1], "500000");
    assert_eq!(lines[2], "write ENOSPC");
    assert_eq!(lines[3], "mkdir ENOSPC");
    assert_eq!(lines[4], "truncate ENOSPC");
    // The sandbox goes on.
    assert_eq!(sb.execute("print(2 + 2)").await.unwrap().stdout, "4\n");
}

#[tokio::test]
async fn sandboxes_never_see_each_others_tmp() {
    let mut a = sandbox().await;
    let mut b = sandbox().await;
    a.execute("open('/tmp/secret', 'w').write('a')")
        .await
        .unwrap();
    let out = b
        .execute("import os; print(os.listdir('/tmp'))")
        .await
        .unwrap();
    assert_eq!(out.stdout, "[]\n");
}

#[tokio::test]
async fn tmp_outlives_a_session_reset() {
    let mut sb = crate::support::short_lived_sandbox().await;
    sb.execute("open('kept', 'w').write('still here')")
        .await
        .unwrap();
    let err = sb.execute("while True: pass").await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    let out = sb
        .execute("import os; print(os.getcwd(), open('kept').read())")
        .await
        .unwrap();
    assert_eq!(out.stdout, "/tmp still here\n");
}

#[tokio::test]
async fn no_tmp_when_the_limit_is_zero() {
    let mut sb = builder().tmp_limit(0).build().await.unwrap();
    let Err(Error::Python(e)) = sb.execute("import tempfile; tempfile.mkstemp()").await else {
        panic!("tempfile worked without /tmp")
    };
    assert_eq!(e.type_name, "FileNotFoundError", "{}", e.message);
    assert!(
        e.message.contains("No usable temporary directory"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn moving_between_a_mount_and_tmp_copies() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "data").unwrap();
    let mut sb = builder()
        .tmp_limit(1 << 20)
        .mount("/out", host.path(), Access::ReadWrite)
        .build()
        .await
        .unwrap();
    let out = sb
        .execute(
            r#"
import errno, os, shutil
try:
    os.rename('/out/in.txt', '/tmp/in.txt')
except OSError as e:
    print(errno.errorcode[e.errno])
shutil.move('/out/in.txt', '/tmp/in.txt')
print(open('/tmp/in.txt').read(), os.path.exists('/out/in.txt'))
shutil.copy('/tmp/in.txt', '/out/back.txt')
"#,
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "EXDEV\ndata False\n", "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(host.path().join("back.txt")).unwrap(),
        "data"
    );
}

/// `stat` of a symbolic link describes its target, identity included
/// (wasi-libc gave the link's own inode; the runtime's `stat` mends it, so
/// C code and `DirEntry.stat()` get it too): `shutil.copyfile` onto a link to
/// its source raises `SameFileError` as on Linux, where it used to empty
/// the file; in `/tmp` and in a mount.
#[tokio::test]
async fn stat_through_a_link_is_its_targets_and_copying_onto_it_is_refused() {
    let host = tempfile::tempdir().unwrap();
    let mut sb = builder()
        .tmp_limit(1 << 20)
        .mount("/data", host.path(), Access::ReadWrite)
        .build()
        .await
        .unwrap();
    let out = sb
        .execute(
            r#"
import os, pathlib, shutil
for d in ("/tmp", "/data"):
    open(f"{d}/data.txt", "w").write("precious")
    os.mkdir(f"{d}/dir")
    os.symlink("data.txt", f"{d}/link.txt")
    os.symlink("dir", f"{d}/dirlink")
    os.symlink("missing", f"{d}/dangling")
    same = (os.path.samefile(f"{d}/data.txt", f"{d}/link.txt"), os.path.samefile(f"{d}/dir", f"{d}/dirlink"),
            pathlib.Path(f"{d}/link.txt").samefile(f"{d}/data.txt"),
            os.stat(f"{d}/link.txt").st_ino != os.lstat(f"{d}/link.txt").st_ino,
            # C code's stat too: scandir's entries, through the runtime's `stat`.
            next(e for e in os.scandir(d) if e.name == "link.txt").stat().st_ino == os.stat(f"{d}/data.txt").st_ino)
    try:
        shutil.copyfile(f"{d}/data.txt", f"{d}/link.txt")
    except shutil.SameFileError:
        same += ("SameFileError",)
    try:
        os.stat(f"{d}/dangling")
    except FileNotFoundError:
        same += ("FileNotFoundError",)
    print(d, *same, open(f"{d}/data.txt").read(), os.path.isdir(f"{d}/dirlink"))
# It is in the sets that `os.fwalk`, `shutil.copystat` and the like check.
print(os.stat in os.supports_dir_fd, os.stat in os.supports_fd, os.stat in os.supports_follow_symlinks)
"#,
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "/tmp True True True True True SameFileError FileNotFoundError precious True\n\
         /data True True True True True SameFileError FileNotFoundError precious True\n\
         True True True\n",
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn a_mount_at_tmp_replaces_the_scratch_directory() {
    let host = tempfile::tempdir().unwrap();
    let mut sb = builder()
        .mount("/tmp", host.path(), Access::ReadWrite)
        .build()
        .await
        .unwrap();
    sb.execute("open('made-in-guest', 'w').write('1')")
        .await
        .unwrap();
    assert!(host.path().join("made-in-guest").is_file());
    let Err(Error::BadMount { reason, .. }) = builder()
        .mount("/tmp/data", host.path(), Access::ReadOnly)
        .build()
        .await
    else {
        panic!("a mount inside /tmp was accepted")
    };
    assert!(reason.contains("scratch directory"), "{reason}");
}

#[test]
fn cli_tmp_size() {
    let out = eryx(
        &[
            "--tmp-size",
            "256K",
            "-c",
            "with open('f', 'wb') as f: f.write(b'x' * 300_000)",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    let out = eryx(&["-c", "import os; print(os.getcwd())"], None);
    assert_eq!(text(&out.stdout), "/tmp\n");
}

#[tokio::test]
async fn dev_null_swallows_writes_and_reads_empty() {
    let mut sb = sandbox().await;
    let out = sb
        .execute(
            r#"
import contextlib, logging, os
with open(os.devnull, "w") as f: print("x" * 100_000, file=f)
with open(os.devnull, "ab") as f: f.write(b"y")
fd = os.open(os.devnull, os.O_WRONLY | os.O_TRUNC); os.write(fd, b"abc"); os.close(fd)
with contextlib.redirect_stdout(open(os.devnull, "w")): print("hidden")
logging.basicConfig(filename=os.devnull); logging.error("nothing")
print(sorted(os.listdir("/dev")), repr(open(os.devnull, "rb").read()), os.stat(os.devnull).st_size)
for what in (lambda: open("/dev/other", "w"), lambda: os.remove(os.devnull),
             lambda: os.mkdir("/dev/d")):
    try:
        what()
    except PermissionError:
        print("refused")
"#,
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "['null', 'random', 'stderr', 'stdin', 'stdout', 'urandom', 'zero'] b'' 0\n\
         refused\nrefused\nrefused\n",
        "{}",
        out.stderr
    );
}

/// `/dev/stdout` and `/dev/stderr` write where descriptors 1 and 2 do (the
/// call's output, in order with `print`'s) however they are opened and
/// written; `/dev/stdin` reads the sandbox's stdin and shares its progress
/// with `sys.stdin`, as on Linux (they were missing: `PermissionError` for
/// the two outputs, `FileNotFoundError` for stdin).
#[tokio::test]
async fn dev_stdin_stdout_and_stderr_are_the_standard_streams() {
    let mut sb = builder().stdin("abcdef\n").build().await.unwrap();
    let out = sb
        .execute(
            r#"
import errno, logging, os, stat, sys
fd = os.open("/dev/stdin", os.O_RDONLY); print(os.read(fd, 3)); os.close(fd)
print(repr(sys.stdin.read()), repr(open("/dev/stdin").read()))
print("one")
with open("/dev/stdout", "w") as f: f.write("two\n")
print("three")
fd = os.open("/dev/stdout", os.O_WRONLY | os.O_APPEND); os.write(fd, b"four\n")
os.pwrite(fd, b"five\n", 1000); os.close(fd)
log = logging.getLogger("x"); log.addHandler(logging.FileHandler("/dev/stderr"))
log.error("six")
print(stat.S_ISCHR(os.stat("/dev/stdout").st_mode), open("/dev/stderr", "rb").read())
try:
    os.pread(os.open("/dev/stdin", os.O_RDONLY), 4, 0)
except OSError as e:
    print(e.errno == errno.ESPIPE)
"#,
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout, "b'abc'\n'def\\n' ''\none\ntwo\nthree\nfour\nfive\nTrue b''\nTrue\n",
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr, "six\n");
    // Without a stdin, `/dev/stdin` is at its end, as descriptor 0 is.
    let mut sb = sandbox().await;
    let out = sb
        .execute("print(repr(open('/dev/stdin').read()), repr(open('/dev/stdin', 'rb').read(9)))")
        .await
        .unwrap();
    assert_eq!(out.stdout, "'' b''\n", "{}", out.stderr);
}

/// `/dev/zero` reads zeros and `/dev/urandom` / `/dev/random` random bytes,
/// through every way of reading (buffered, `os.read`, `readinto`, a large
/// read past one host read); writes to them vanish, as on Linux.
#[tokio::test]
async fn dev_zero_and_urandom_read_as_on_linux() {
    let mut sb = sandbox().await;
    let out = sb
        .execute(
            r#"
import os
with open("/dev/zero", "rb") as f:
    print(f.read(5), len(f.read(3 << 20)), set(f.read(3 << 20)))
with open("/dev/urandom", "rb") as f:
    a, b = f.read(32), f.read(32)
    print(len(a), len(b), a != b, len(set(f.read(1 << 16))) > 200)
fd = os.open("/dev/random", os.O_RDONLY)
c = os.read(fd, 16); buf = bytearray(16); n = os.readinto(fd, buf)
os.close(fd)
print(len(c), n, any(c) and any(buf) and c != bytes(buf))
with open("/dev/urandom", "wb") as f: print(f.write(b"entropy"))
with open("/dev/zero", "w") as f: f.write("gone")
print(open("/dev/zero", "rb").read(2), os.stat("/dev/urandom").st_size)
"#,
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "b'\\x00\\x00\\x00\\x00\\x00' 3145728 {0}\n32 32 True True\n16 16 True\n7\nb'\\x00\\x00' 0\n",
        "{}",
        out.stderr
    );
}

/// Files are read on the calling thread when the sandbox has no caller
/// mounts (a stream of our own over `pread`): a file larger than one read
/// comes back whole, from any offset, and a stdlib file matches its size.
#[tokio::test]
async fn files_read_whole_from_any_offset() {
    let mut sb = sandbox().await;
    let out = sb
        .execute(
            "import json, os\n\
             p = json.__file__\n\
             print(len(open(p, 'rb').read()) == os.stat(p).st_size)\n\
             data = bytes(range(256)) * 20000\n\
             open('/tmp/big.bin', 'wb').write(data)\n\
             print(open('/tmp/big.bin', 'rb').read() == data)\n\
             with open('/tmp/big.bin', 'rb') as f:\n\
             \x20   f.seek(5_000_000)\n\
             \x20   print(f.read(3) == data[5_000_000:5_000_003], len(f.read()))\n\
             print(open('/tmp/big.bin').read(0) == '')",
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "True\nTrue\nTrue 119997\nTrue\n");
}

/// Files show the permission bits a fresh file has on Linux (WASI has
/// none: every mode read `0o000`), through every stat call, so archives
/// made in the sandbox record modes that extract to readable files.
#[tokio::test]
async fn files_have_permission_bits_and_archives_keep_them() {
    let mut sb = sandbox().await;
    let out = sb
        .execute(
            r#"
import os, stat, tarfile, zipfile
open("/tmp/p", "w").write("x")
os.mkdir("/tmp/d")
os.symlink("p", "/tmp/ln")
mode = lambda st: stat.filemode(st.st_mode)
print(mode(os.stat("/tmp/p")), mode(os.stat("/tmp/d")), mode(os.stat(os.__file__)))
print(mode(os.lstat("/tmp/ln")), mode(os.stat("/tmp/ln")))
fd = os.open("/tmp/p", os.O_RDONLY)
print(os.fstat(fd) == os.stat("/tmp/p"), os.fstat(fd).st_size)
os.close(fd)
dfd = os.open("/tmp", os.O_RDONLY)
print(mode(os.stat("d", dir_fd=dfd)), mode(os.stat("ln", dir_fd=dfd, follow_symlinks=False)))
os.close(dfd)
print(sorted(mode(e.stat(follow_symlinks=False)) for e in os.scandir("/tmp")))
with zipfile.ZipFile("/tmp/a.zip", "w") as z:
    z.write("/tmp/p", "p")
print(oct(zipfile.ZipFile("/tmp/a.zip").getinfo("p").external_attr >> 16))
with tarfile.open("/tmp/a.tar", "w") as t:
    t.add("/tmp/d", "d")
    t.add("/tmp/p", "d/p")
print([oct(m.mode) for m in tarfile.open("/tmp/a.tar")])
try:
    os.stat("/tmp/missing")
except FileNotFoundError:
    print("missing")
"#,
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "-rw-r--r-- drwxr-xr-x -rw-r--r--\n\
         lrwxrwxrwx -rw-r--r--\n\
         True 1\n\
         drwxr-xr-x lrwxrwxrwx\n\
         ['-rw-r--r--', 'drwxr-xr-x', 'lrwxrwxrwx']\n\
         0o100644\n\
         ['0o755', '0o644']\n\
         missing\n",
        "{}",
        out.stderr
    );
}

/// `/dev`'s files are character devices, as on Linux, however they are
/// reached: `stat`, an open descriptor, a listing, a path relative to an
/// open `/dev` (which reads as the device too); `isatty` stays false.
#[tokio::test]
async fn dev_files_are_character_devices() {
    let mut sb = sandbox().await;
    let out = sb
        .execute(
            r#"
import os, stat, pathlib
print(stat.filemode(os.stat("/dev/null").st_mode), pathlib.Path("/dev/urandom").is_char_device())
fd = os.open(os.devnull, os.O_RDWR)
print(stat.S_ISCHR(os.fstat(fd).st_mode), os.isatty(fd), os.write(fd, b"x"), os.read(fd, 4))
os.close(fd)
print(sorted((e.name, e.is_file()) for e in os.scandir("/dev")))
d = os.open("/dev", os.O_RDONLY)
z = os.open("zero", os.O_RDONLY, dir_fd=d)
print(os.read(z, 2), stat.S_ISCHR(os.stat("random", dir_fd=d).st_mode))
os.close(z)
os.close(d)
"#,
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "crw-rw-rw- True\n\
         True False 1 b''\n\
         [('null', False), ('random', False), ('stderr', False), ('stdin', False), \
         ('stdout', False), ('urandom', False), ('zero', False)]\n\
         b'\\x00\\x00' True\n",
        "{}",
        out.stderr
    );
}

/// `Sandbox::write_file` / `read_file`: the host gives the code its inputs
/// in `/tmp` (parent directories made) and takes back what it wrote; a
/// read-write mount works too, a read-only one refuses writes.
#[tokio::test]
async fn the_host_writes_and_reads_guest_files() {
    let dir = tempfile::tempdir().unwrap();
    let ro = tempfile::tempdir().unwrap();
    let mut sb = builder()
        .mount("/out", dir.path(), Access::ReadWrite)
        .mount("/ro", ro.path(), Access::ReadOnly)
        .build()
        .await
        .unwrap();
    sb.write_file("/tmp/in/data.csv", b"a,b\n1,2\n").unwrap();
    let out = sb
        .execute(
            "import csv\nrows = list(csv.DictReader(open('/tmp/in/data.csv')))\n\
             open('/tmp/result.bin', 'wb').write(bytes(range(256)))\n\
             open('/out/report.txt', 'w').write(str(rows))\nprint(rows)",
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "[{'a': '1', 'b': '2'}]\n", "{}", out.stderr);
    assert_eq!(
        sb.read_file("/tmp/result.bin").unwrap(),
        (0..=255).collect::<Vec<u8>>()
    );
    assert_eq!(
        sb.read_file("/out/report.txt").unwrap(),
        b"[{'a': '1', 'b': '2'}]"
    );
    // Replacing a file; a mount's file reaches the host directory.
    sb.write_file("/tmp/in/data.csv", b"new").unwrap();
    sb.write_file("/out/sub/from_host.txt", b"x").unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("sub/from_host.txt")).unwrap(),
        b"x"
    );
    let out = sb
        .execute("print(open('/tmp/in/data.csv').read(), open('/out/sub/from_host.txt').read())")
        .await
        .unwrap();
    assert_eq!(out.stdout, "new x\n");
    let refused = |r: Result<(), Error>, says: &str| {
        let err = r.unwrap_err();
        assert!(matches!(err, Error::File { .. }), "{err:?}");
        assert!(err.to_string().contains(says), "{says}: {err}");
    };
    refused(sb.write_file("/ro/x", b"x"), "read-only");
    refused(sb.write_file("tmp/x", b"x"), "absolute guest path");
    refused(sb.write_file("/tmp/../etc/x", b"x"), "without `.` or `..`");
    refused(
        sb.write_file("/etc/passwd", b"x"),
        "neither in `/tmp` nor in a mount",
    );
    refused(sb.read_file("/tmp/missing").map(drop), "no such file");
    refused(sb.read_file("/tmp/in").map(drop), "directory");
    assert!(std::fs::read_dir(ro.path()).unwrap().next().is_none());
}

/// A link the code made cannot lead the host's `write_file` out of `/tmp`,
/// and writes count against `/tmp`'s limit.
#[tokio::test]
async fn host_file_writes_stay_in_tmp_and_its_budget() {
    let outside = tempfile::tempdir().unwrap();
    let mut sb = builder()
        .tmp_limit(64 << 10)
        .mount("/m", outside.path(), Access::ReadWrite)
        .build()
        .await
        .unwrap();
    let out = sb
        .execute(
            "import os\nfor target, name in [('..', 'up'), ('../m', 'tom')]:\n    \
             try:\n        os.symlink(target, '/tmp/' + name); print('made', name)\n    \
             except OSError as e:\n        print(name, type(e).__name__)",
        )
        .await
        .unwrap();
    for name in ["up", "tom"] {
        if out.stdout.contains(&format!("made {name}")) {
            let err = sb
                .write_file(&format!("/tmp/{name}/escaped.txt"), b"x")
                .unwrap_err();
            assert!(matches!(err, Error::File { .. }), "{err:?}");
        }
    }
    assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
    let err = sb
        .write_file("/tmp/big", &vec![0u8; 100 << 10])
        .unwrap_err();
    assert!(err.to_string().contains("no space left"), "{err}");
    sb.write_file("/tmp/small", &[1u8; 1000]).unwrap();
    let out = sb
        .execute("import os; print(os.path.getsize('/tmp/small'))")
        .await
        .unwrap();
    assert_eq!(out.stdout, "1000\n");
}

/// `os.statvfs` / `shutil.disk_usage` (which WASI lacks): `/tmp` is its
/// size limit and what is left of it, a mount its host file system
/// (read-only when mounted so), the rest read-only; `f_fsid` is the file
/// system's device number; errors as on Linux.
#[tokio::test]
async fn disk_usage_reports_tmp_budget_and_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let mut sb = builder()
        .tmp_limit(1 << 20)
        .mount("/rw", dir.path(), Access::ReadWrite)
        .mount("/ro", dir.path(), Access::ReadOnly)
        .build()
        .await
        .unwrap();
    let out = sb
        .execute(
            r#"
import os, shutil
before = shutil.disk_usage("/tmp")
open("/tmp/blob", "wb").write(bytes(100_000))
after = shutil.disk_usage("/tmp")
print(before.total, before.free, after.free, before.free - after.free >= 100_000)
rw, ro = os.statvfs("/rw"), os.statvfs("/ro")
print(rw.f_blocks > 0, rw.f_flag, ro.f_flag, os.statvfs("/python/lib/python3.14").f_flag)
# f_fsid (by name only, as on Linux) names the file system: the device.
print(type(rw.f_fsid) is int, rw.f_fsid == ro.f_fsid == os.stat("/rw").st_dev)
for bad in ("/tmp/missing", 1):
    try:
        os.statvfs(bad)
    except OSError as e:
        print(type(e).__name__)
"#,
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "1048576 1048576 942080 True\nTrue 0 1 1\nTrue True\nFileNotFoundError\nOSError\n",
        "{}",
        out.stderr
    );
}
