//! Python runs: output, stdlib imports, exceptions.

use std::time::Duration;

use eryx_host::Error;

use crate::support::{builder, sandbox, stdout_of};

#[tokio::test]
async fn print_goes_to_stdout() {
    assert_eq!(stdout_of("print(1+1)").await, "2\n");
}

#[tokio::test]
async fn arithmetic_and_big_integers() {
    assert_eq!(
        stdout_of("print(7 * 6, 2 ** 100, 10 / 4, 7 // 2, -7 % 3)").await,
        "42 1267650600228229401496703205376 2.5 3 2\n"
    );
}

#[tokio::test]
async fn multi_line_program_with_functions_and_classes() {
    let code = r#"
class Stack:
    def __init__(self):
        self.items = []
    def push(self, x):
        self.items.append(x)
        return self
    def total(self):
        return sum(self.items)

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

s = Stack().push(fib(10)).push(fib(15))
print(s.total(), [fib(i) for i in range(8)])
"#;
    assert_eq!(stdout_of(code).await, "665 [0, 1, 1, 2, 3, 5, 8, 13]\n");
}

#[tokio::test]
async fn stdout_and_stderr_are_kept_apart() {
    let mut sb = sandbox().await;
    let out = sb
        .execute("import sys\nprint('out 1')\nprint('err 1', file=sys.stderr)\nsys.stdout.write('out 2\\n')")
        .await
        .unwrap();
    assert_eq!(out.stdout, "out 1\nout 2\n");
    assert_eq!(out.stderr, "err 1\n");
}

#[tokio::test]
async fn output_below_sys_stdout_reaches_the_call_in_the_order_written() {
    // `sys.stdout.buffer`, the descriptors (`os.write`, C code, faulthandler)
    // and `sys.__stdout__`: the buffer did not exist, and what reached the
    // descriptors or `sys.__stdout__` was lost without a word.
    let mut sb = sandbox().await;
    let out = sb
        .execute(
            r#"
import faulthandler, os, sys
print("1 print")
sys.stdout.buffer.write("2 buffer é\n".encode())
os.write(sys.stdout.fileno(), b"3 fd\n")
print("4 __stdout__", file=sys.__stdout__)
sys.stdout.write("5 write\n")
os.write(2, b"raw \xff err\n")
faulthandler.dump_traceback(all_threads=False)
sys.stdout.reconfigure(encoding="latin-1")
sys.stdout.buffer.write(b"6 latin-1 \xe9\n")
print(sys.stdout.name, sys.stdout.encoding, sys.__stdout__ is sys.stdout, sys.stdout.isatty())
sys.stdout.reconfigure(encoding="utf-8")  # as in a process, it would stay
try:
    sys.stdout.reconfigure(encoding="no-such-codec")
except LookupError as e:
    print(e, sys.stdout.encoding)
"#,
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "1 print\n2 buffer é\n3 fd\n4 __stdout__\n5 write\n6 latin-1 é\n<stdout> latin-1 True False\n\
         unknown encoding: no-such-codec utf-8\n"
    );
    assert!(
        out.stderr
            .starts_with("raw \u{FFFD} err\nStack (most recent call first):\n")
            && out.stderr.contains("File \"<cell-"),
        "{}",
        out.stderr
    );
    assert!(!out.truncated);
    // The usual way to change stdout's encoding: a new wrapper over its
    // bytes, flushed when the call ends as CPython flushes at exit.
    let out = sb
        .execute(
            "import io, sys\nsys.stdout = io.TextIOWrapper(sys.stdout.detach(), encoding='utf-8')\n\
             print('wrapped ✓')",
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "wrapped ✓\n");
    assert_eq!(stdout_of("print('next call')").await, "next call\n");
}

#[tokio::test]
async fn every_stdlib_module_has_bytecode_that_records_its_guest_path() {
    // `cargo xtask dist` deals the stdlib's sources out to one guest per
    // core; each source outside the test and Tk directories must have come
    // out with its `.pyc`, naming the path the guest imports it from.
    let out = stdout_of(
        "import os, re, sys, importlib.util, marshal\n\
         skip = re.compile(r'/(test|tests|idle_test|idlelib|tkinter|turtledemo|__phello__)/')\n\
         root = sys._stdlib_dir\n\
         n, missing = 0, []\n\
         for d, dirs, files in os.walk(root):\n\
         \x20   dirs[:] = [x for x in dirs if x != '__pycache__']\n\
         \x20   for f in files:\n\
         \x20       p = os.path.join(d, f)\n\
         \x20       if f.endswith('.py') and not skip.search(p):\n\
         \x20           n += 1\n\
         \x20           if not os.path.exists(importlib.util.cache_from_source(p)):\n\
         \x20               missing.append(p)\n\
         with open(importlib.util.cache_from_source(os.path.join(root, 'json/decoder.py')), 'rb') as f:\n\
         \x20   code = marshal.loads(f.read()[16:])\n\
         print(n > 500, missing[:5], code.co_filename)",
    )
    .await;
    assert_eq!(
        out, "True [] /python/lib/python3.14/json/decoder.py\n",
        "sources without bytecode in the bundle"
    );
}

#[tokio::test]
async fn frozen_stdlib_modules_have_their_files_and_sources() {
    // `os`, `codecs`, `posixpath` are frozen into libpython: without
    // `sys._stdlib_dir` they had no `__file__` and no source for inspect.
    let out = stdout_of(
        "import sys, os, codecs, inspect, runpy\n\
         print(sys._stdlib_dir, os.__file__, codecs.__file__, runpy.__file__)\n\
         print(inspect.getsource(os.path.join).splitlines()[0], os.path.isfile(os.__file__))",
    )
    .await;
    assert_eq!(
        out,
        "/python/lib/python3.14 /python/lib/python3.14/os.py /python/lib/python3.14/codecs.py \
         /python/lib/python3.14/runpy.py\ndef join(a, *p): True\n"
    );
}

#[tokio::test]
async fn help_prints_pydocs_text() {
    // `site` defines `help`; the sandbox does not import `site`.
    let out = stdout_of("help(len)\nprint(repr(help))").await;
    assert!(
        out.starts_with("Help on built-in function len in module builtins:\n"),
        "{out}"
    );
    assert!(
        out.contains("Return the number of items in a container."),
        "{out}"
    );
    assert!(
        out.ends_with("help(object) for help about object.\n"),
        "{out}"
    );
}

#[tokio::test]
async fn unicode_output_round_trips() {
    assert_eq!(
        stdout_of("print('héllo wörld ✓ 日本 🐍')").await,
        "héllo wörld ✓ 日本 🐍\n"
    );
    assert_eq!(
        stdout_of("print(len('日本🐍'), '\\u00e9'.upper())").await,
        "3 É\n"
    );
}

#[tokio::test]
async fn stdlib_modules_import_and_work() {
    let code = r#"
import json, re, decimal, datetime, collections, itertools, hashlib
print(json.dumps({"a": [1, 2]}, sort_keys=True))
print(re.findall(r"\d+", "a1b22c333"))
print(decimal.Decimal("0.1") + decimal.Decimal("0.2"))
print(datetime.date(2024, 2, 28) + datetime.timedelta(days=2))
print(collections.Counter("abracadabra").most_common(2))
print(list(itertools.combinations("abc", 2)))
print(hashlib.sha256(b"abc").hexdigest())
"#;
    assert_eq!(
        stdout_of(code).await,
        "{\"a\": [1, 2]}\n['1', '22', '333']\n0.3\n2024-03-01\n[('a', 5), ('b', 2)]\n\
         [('a', 'b'), ('a', 'c'), ('b', 'c')]\n\
         ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
    );
}

#[tokio::test]
async fn bz2_and_lzma_round_trip_and_archives_use_them() {
    let code = r#"
import bz2, lzma, os, shutil, tarfile, zipfile
data = b"eryx " * 50_000 + bytes(range(256)) * 40
for mod in (bz2, lzma):
    packed = mod.compress(data)
    assert mod.decompress(packed) == data and len(packed) < len(data) // 50, mod
# incremental, with an output cap, and data after the stream
d = lzma.LZMADecompressor()
out = d.decompress(lzma.compress(data, check=lzma.CHECK_SHA256) + b"tail", max_length=1000)
print(len(out), d.needs_input, d.eof)
while not d.eof:
    out += d.decompress(b"", 100_000)
print(out == data, d.unused_data, d.check == lzma.CHECK_SHA256)
raw = [{"id": lzma.FILTER_DELTA, "dist": 2}, {"id": lzma.FILTER_LZMA2, "preset": 1}]
assert lzma.decompress(lzma.compress(data, format=lzma.FORMAT_RAW, filters=raw),
                       format=lzma.FORMAT_RAW, filters=raw) == data
with open("data.bin", "wb") as f: f.write(data)
for mode in ("w:bz2", "w:xz"):
    with tarfile.open("a.tar." + mode[2:], mode) as t: t.add("data.bin")
    with tarfile.open("a.tar." + mode[2:]) as t:
        assert t.extractfile("data.bin").read() == data
for method in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
    with zipfile.ZipFile("a.zip", "w", compression=method) as z: z.write("data.bin")
    with zipfile.ZipFile("a.zip") as z: assert z.read("data.bin") == data
shutil.unpack_archive(shutil.make_archive("arch", "bztar", root_dir="/tmp", base_dir="data.bin"), "out")
print(open("out/data.bin", "rb").read() == data)
for bad, mod in ((b"BZh9 junk", bz2), (b"not xz", lzma)):
    try:
        mod.decompress(bad)
    except (OSError, lzma.LZMAError) as e:
        print(type(e).__name__, e)
"#;
    assert_eq!(
        stdout_of(code).await,
        "1000 False False\nTrue b'tail' True\nTrue\nOSError Invalid data stream\n\
         LZMAError Input format not supported by decoder\n"
    );
}

#[tokio::test]
async fn compression_zstd_works_as_in_python_3_14() {
    // Python 3.14's `compression.zstd` on eryx's `_zstd` (libzstd built
    // into the bundle), and the archive formats that use it.
    let code = r#"
import io, os, shutil, tarfile, zipfile
from compression import zstd
from compression.zstd import (ZstdCompressor, ZstdDecompressor, ZstdDict, ZstdError,
                              CompressionParameter as CP, DecompressionParameter as DP)
data = b"eryx " * 50_000 + bytes(range(256)) * 40
packed = zstd.compress(data, level=19)
assert zstd.decompress(packed) == data and len(packed) < len(data) // 100
print(zstd.zstd_version_info >= (1, 5, 7), zstd.get_frame_info(packed).decompressed_size == len(data))
print(CP.nb_workers.bounds(), DP.window_log_max.bounds()[0] >= 10)
# incremental, with an output cap, and data after the frame
c = ZstdCompressor(options={CP.checksum_flag: 1, CP.compression_level: 5})
frame = c.compress(data[:1000]) + c.compress(data[1000:], c.FLUSH_FRAME)
d = ZstdDecompressor()
out = d.decompress(frame + b"tail", max_length=1000)
print(len(out), d.needs_input, d.eof)
while not d.eof:
    out += d.decompress(b"", 100_000)
print(out == data, d.unused_data)
# dictionaries: trained, digested, as a prefix
samples = [b"colour=%d shape=%d size=%d" % (i % 7, i % 5, i) for i in range(400)]
td = zstd.train_dict(samples, 2048)
for how in (td, td.as_undigested_dict, td.as_prefix):
    assert zstd.decompress(zstd.compress(samples[3], zstd_dict=how), how) == samples[3]
print(td.dict_id > 0, len(td) <= 2048)
# archives
with open("data.bin", "wb") as f: f.write(data)
with tarfile.open("a.tar.zst", "w:zst") as t: t.add("data.bin")
with tarfile.open("a.tar.zst") as t: assert t.extractfile("data.bin").read() == data
with zipfile.ZipFile("a.zip", "w", compression=zipfile.ZIP_ZSTANDARD) as z: z.write("data.bin")
with zipfile.ZipFile("a.zip") as z: assert z.read("data.bin") == data
with zstd.open("f.zst", "wt", encoding="utf-8") as f: f.write("line 1\nline 2\n")
with zstd.open("f.zst", "rt", encoding="utf-8") as f: print(f.readlines())
shutil.unpack_archive(shutil.make_archive("arch", "zstdtar", base_dir="data.bin"), "out")
print(open("out/data.bin", "rb").read() == data)
# what goes wrong says what
for bad in (lambda: zstd.decompress(b"not zstd at all"),
            lambda: zstd.decompress(packed[:-5]),
            lambda: ZstdCompressor(level=99),
            lambda: ZstdCompressor(options={CP.window_log: 100}),
            lambda: ZstdDecompressor(zstd_dict=b"raw bytes")):
    try:
        bad()
    except (ZstdError, ValueError, TypeError) as e:
        print(type(e).__name__, str(e)[:72])
"#;
    assert_eq!(
        stdout_of(code).await,
        "True True\n(0, 0) True\n1000 False False\nTrue b'tail'\nTrue True\n\
         ['line 1\\n', 'line 2\\n']\nTrue\n\
         ZstdError Unable to decompress Zstandard data: Unknown frame descriptor\n\
         ZstdError Compressed data ended before the end-of-stream marker was reached\n\
         ValueError illegal compression level 99; the valid range is [-131072, 22]\n\
         ValueError compression parameter 'window_log' received an illegal value 100; the va\n\
         TypeError zstd_dict argument should be a ZstdDict object (or one of its .as_digest\n"
    );
}

#[tokio::test]
async fn hashlib_derives_keys_without_openssl() {
    // CPython takes `pbkdf2_hmac` and `scrypt` from OpenSSL's `_hashlib`;
    // the WASI build has none, eryx's `_eryx_kdf` stands in.
    let code = r#"
import hashlib, hmac, os
# RFC 6070 (PBKDF2-HMAC-SHA1) and RFC 7914 (scrypt) test vectors
print(hashlib.pbkdf2_hmac("sha1", b"password", b"salt", 4096).hex())
print(hashlib.pbkdf2_hmac("sha1", b"pass\0word", b"sa\0lt", 4096, 16).hex())
print(hashlib.scrypt(b"password", salt=b"NaCl", n=1024, r=8, p=16)[:16].hex())
# against PBKDF2 written out with the stdlib's hmac, every kind of hash
def reference(name, pw, salt, rounds, dklen):
    out, block = b"", 1
    while len(out) < dklen:
        u = t = hmac.new(pw, salt + block.to_bytes(4, "big"), name).digest()
        for _ in range(rounds - 1):
            u = hmac.new(pw, u, name).digest()
            t = bytes(a ^ b for a, b in zip(t, u))
        out, block = out + t, block + 1
    return out[:dklen]
checked = 0
for name in ("sha1", "sha224", "sha256", "sha384", "sha512", "md5", "sha3_256", "blake2s"):
    for n in (0, 1, 63, 64, 65, 128, 129, 300):
        pw, salt = os.urandom(n), os.urandom(n % 70)
        for rounds, dklen in ((1, 7), (3, 100)):
            assert hashlib.pbkdf2_hmac(name, pw, salt, rounds, dklen) == reference(name, pw, salt, rounds, dklen), (name, n)
            checked += 1
print(checked, len(hashlib.pbkdf2_hmac("SHA-512", b"p", b"s", 1)), "pbkdf2_hmac" in hashlib.__all__)
for bad in (lambda: hashlib.pbkdf2_hmac("unknown", b"p", b"s", 1),
            lambda: hashlib.pbkdf2_hmac("sha256", b"p", b"s", 0),
            lambda: hashlib.pbkdf2_hmac("sha256", "p", b"s", 1),
            lambda: hashlib.scrypt(b"p", salt=b"s", n=3, r=8, p=1),
            lambda: hashlib.scrypt(b"p", salt=b"s", n=2**20, r=8, p=1),
            lambda: hashlib.scrypt(b"p", n=2, r=8, p=1)):
    try:
        bad()
    except (ValueError, TypeError) as e:
        print(type(e).__name__, str(e)[:60])
"#;
    assert_eq!(
        stdout_of(code).await,
        "4b007901b765489abead49d926f721d065a429c1\n\
         56fa6aa75548099dcc37d7f03425e0c3\n\
         fdbabe1c9d3472007856e7190d01e9fe\n\
         128 64 True\n\
         ValueError unsupported hash type unknown\n\
         ValueError iteration value must be greater than 0.\n\
         TypeError a bytes-like object is required, not 'str'\n\
         ValueError n must be a power of 2 greater than 1.\n\
         ValueError Invalid parameter combination for n, r, p, maxmem: scrypt wo\n\
         TypeError scrypt() missing required keyword argument 'salt'\n"
    );
}

#[tokio::test]
async fn termios_exists_and_refuses_as_for_a_descriptor_that_is_no_terminal() {
    let code = r#"
import errno, termios, tty, sys
mode = [0, 0, 0, 0, 0, 0, [b"\x00"] * termios.NCCS]
tty.cfmakeraw(mode)
print(mode[2] & termios.CSIZE == termios.CS8, mode[3] & termios.ICANON, termios.TCSAFLUSH)
for fd in (0, 1, sys.stdout, 99):
    try:
        termios.tcgetattr(fd)
    except termios.error as e:
        print(errno.errorcode[e.args[0]])
try:
    tty.setraw(0)
except termios.error as e:
    print("setraw", errno.errorcode[e.args[0]])
try:
    termios.tcgetattr("0")
except TypeError as e:
    print("TypeError")
# `os.get_terminal_size` (absent in the WASI build) fails the same way, so
# the usual fallback runs; `shutil`'s reads `COLUMNS` first.
import os, shutil
for fd in (1, 99):
    try:
        os.get_terminal_size(fd)
    except OSError as e:
        print(errno.errorcode[e.errno])
os.environ["COLUMNS"] = "100"
print(shutil.get_terminal_size().columns, os.getlogin())
"#;
    assert_eq!(
        stdout_of(code).await,
        "True 0 2\nENOTTY\nENOTTY\nENOTTY\nEBADF\nsetraw ENOTTY\nTypeError\n\
         ENOTTY\nEBADF\n100 sandbox\n"
    );
}

/// Python 3.13 pickled paths as `pathlib._local.PosixPath` (its classes
/// lived there); the bundled 3.14.0 lacks that module, so such data did not
/// load (`ModuleNotFoundError`) until eryx added it back.
#[tokio::test]
async fn paths_pickled_by_python_3_13_load() {
    let code = r#"
import pathlib, pickle
# pickle.dumps({"out": PosixPath("/tmp/out.csv")}, protocol=4) as 3.13 writes it
data = (b"\x80\x04\x95A\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x03out\x94\x8c\x0epathlib._local"
        b"\x94\x8c\tPosixPath\x94\x93\x94\x8c\x01/\x94\x8c\x03tmp\x94\x8c\x07out.csv\x94\x87\x94R\x94s.")
out = pickle.loads(data)["out"]
print(type(out).__name__, out, out == pathlib.Path("/tmp/out.csv"))
import pathlib._local
print(pathlib._local.PurePosixPath is pathlib.PurePosixPath)
"#;
    assert_eq!(stdout_of(code).await, "PosixPath /tmp/out.csv True\nTrue\n");
}

#[tokio::test]
async fn zoneinfo_has_the_time_zone_database() {
    // WASI has no /usr/share/zoneinfo: the bundle carries PyPI's `tzdata`.
    let code = r#"
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, available_timezones, ZoneInfoNotFoundError
import importlib.metadata
paris = ZoneInfo("Europe/Paris")
print(datetime(2024, 1, 15, 12, tzinfo=paris).isoformat())
print(datetime(2024, 7, 15, 12, tzinfo=paris).isoformat(), datetime(2024, 7, 15, tzinfo=paris).tzname())
# A DST change: 2024-03-10 02:30 does not exist in New York (fold rules).
ny = ZoneInfo("America/New_York")
print(datetime(2024, 3, 10, 7, 30, tzinfo=timezone.utc).astimezone(ny).isoformat())
print(datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=ny).utcoffset())
print(ZoneInfo("Asia/Kolkata").utcoffset(datetime(2020, 1, 1)), ZoneInfo("UTC").key)
zones = available_timezones()
print(len(zones) > 400, {"Europe/London", "Australia/Sydney", "America/Sao_Paulo"} <= zones)
print(importlib.metadata.version("tzdata").startswith("20"))
try:
    ZoneInfo("Mars/Olympus_Mons")
except ZoneInfoNotFoundError as e:
    print(type(e).__name__)
"#;
    assert_eq!(
        stdout_of(code).await,
        "2024-01-15T12:00:00+01:00\n2024-07-15T12:00:00+02:00 CEST\n\
         2024-03-10T03:30:00-04:00\n-1 day, 19:00:00\n5:30:00 UTC\nTrue True\nTrue\n\
         ZoneInfoNotFoundError\n"
    );
}

#[tokio::test]
async fn malformed_time_zone_files_raise_value_error() {
    // CPython 3.14.0's TZif reader looped forever on a truncated footer
    // (this call hit the time limit), and a transition naming a local time
    // type past the file's count made the C `_zoneinfo` read past its
    // array (the sandbox trapped). Both are ValueError, as in 3.14.10; a
    // well-formed file read the same way still loads.
    let code = r#"
import io, struct, zoneinfo, zoneinfo._common, zoneinfo._zoneinfo
from datetime import datetime

def tzif(version, transitions, types, footer=b""):
    # One data block (RFC 8536): header, transition times (32-bit in v1,
    # 64-bit in v2+), their type indices, the types, their names.
    def block(v, wide):
        names = b"STD\0DST\0"
        out = b"TZif" + v + b" " * 15
        out += struct.pack(">6l", 0, 0, 0, len(transitions), len(types), len(names))
        out += struct.pack(f">{len(transitions)}{'q' if wide else 'l'}", *(t for t, _ in transitions))
        out += bytes(i for _, i in transitions)
        for utoff, dst, name in types:
            out += struct.pack(">lbb", utoff, dst, name)
        return out + names
    if version == b"\0":
        return block(version, False)
    return block(version, False) + block(version, True) + footer

types = [(0, 0, 0), (3600, 1, 4)]
good = zoneinfo.ZoneInfo.from_file(io.BytesIO(tzif(b"2", [(1_700_000_000, 1)], types, b"\nDST-1\n")))
print(good.utcoffset(datetime(2020, 1, 1)), good.utcoffset(datetime(2024, 1, 1)))
cases = {
    "truncated footer": tzif(b"2", [(1_700_000_000, 1)], types, b"\nSTD0"),
    "type index 2 of 2": tzif(b"\0", [(1_700_000_000, 2)], types),
}
for what, data in cases.items():
    for impl in (zoneinfo.ZoneInfo, zoneinfo._zoneinfo.ZoneInfo):
        try:
            impl.from_file(io.BytesIO(data))
        except ValueError as e:
            print(what, impl.__module__, "ValueError:", e)
print(zoneinfo._common.load_data.__name__)
"#;
    let out = stdout_of(code).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(lines[0], "0:00:00 1:00:00");
    assert!(lines[1].starts_with("truncated footer"), "{out}");
    assert!(
        lines[1].ends_with("the data ends inside its footer"),
        "{out}"
    );
    assert!(
        lines[3].contains("names local time type 2, and the file has 2"),
        "{out}"
    );
    assert_eq!(lines[5], "load_data");
}

#[tokio::test]
async fn process_clocks_start_with_the_sandbox_home_is_tmp_and_the_user_has_a_name() {
    // A pre-initialised sandbox: what the guest read of the monotonic
    // clock while the snapshot was made must not put its process clocks
    // below zero (they read minus the start-up time before the fix).
    let mut sb = sandbox().await;
    assert!(sb.preinitialised(), "the test needs a snapshot sandbox");
    let code = r#"
import os, time, pathlib
print(0 <= time.process_time() < 60, 0 <= time.process_time_ns(), 0 <= os.times().user < 60)
a = time.process_time(); sum(range(200_000)); b = time.process_time()
print(b > a, time.monotonic() >= 0, abs(os.times().user - time.process_time()) < 1)
print(pathlib.Path.home(), os.path.expanduser("~/.cache/x"))
pathlib.Path.home().joinpath(".config").mkdir()
print(os.path.isdir(os.path.expanduser("~/.config")))
import getpass; print(getpass.getuser())
# The one thread's CPU clock is the process's.
print(0 <= time.thread_time() < 60, time.thread_time_ns() > 0)
"#;
    let out = sb.execute(code).await.expect("running the clock checks");
    assert_eq!(
        out.stdout,
        "True True True\nTrue True True\n/tmp /tmp/.cache/x\nTrue\nsandbox\nTrue True\n"
    );
}

/// The sandbox's machine is `localhost`: wasi-libc said "(none)", which
/// made Message-IDs invalid (`<...@(none)>`: a comment where the domain
/// goes) and was what `platform.node()` and loggers reported.
#[tokio::test]
async fn the_machine_is_called_localhost() {
    let code = r#"
import os, socket, platform, email.utils, email.headerregistry
print(socket.gethostname(), os.uname().nodename, platform.node(), socket.getfqdn(), os.uname().sysname)
msgid = email.utils.make_msgid()
print(msgid.endswith("@localhost>"), email.headerregistry.HeaderRegistry()("Message-ID", msgid).defects)
"#;
    assert_eq!(
        stdout_of(code).await,
        "localhost localhost localhost localhost wasi\nTrue ()\n"
    );
}

/// `SandboxBuilder::env` reaches `os.environ` (and libc's `getenv`) in a
/// pre-initialised sandbox, whose snapshot was made with another
/// environment, in a sandbox that starts Python itself, and in the new
/// instance after a reset; a later value wins, eryx's own defaults can be
/// replaced, and the code's own changes stay for the session.
#[tokio::test]
async fn environment_variables_reach_every_instance() {
    let code = "import os, sys, tempfile\n\
                print(os.environ.get('API_URL'), os.getenv('MODE'), os.environb.get(b'MODE'))\n\
                print(os.path.expanduser('~'), tempfile.gettempdir(), 'ERYX_PREIMPORT' in os.environ)";
    let expected = "http://api.test/v1 second b'second'\n/tmp/home /tmp False\n";
    for preinit in [true, false] {
        let mut sb = builder()
            .preinit(preinit)
            .timeout(Duration::from_secs(2))
            .env("API_URL", "http://api.test/v1")
            .env("MODE", "first")
            .env("MODE", "second")
            .env("HOME", "/tmp/home")
            .build()
            .await
            .unwrap();
        assert_eq!(sb.preinitialised(), preinit);
        let out = sb.execute(code).await.unwrap();
        assert_eq!(out.stdout, expected, "preinit {preinit}: {}", out.stderr);
        let out = sb
            .execute("os.environ['MODE'] = 'changed'; os.environ.pop('API_URL')")
            .await
            .unwrap();
        assert_eq!(out.stderr, "");
        let out = sb
            .execute("print(os.getenv('MODE'), os.getenv('API_URL'))")
            .await
            .unwrap();
        assert_eq!(out.stdout, "changed None\n");
        // A reset (here: a time limit) gives a new instance its own copy.
        let err = sb.execute("while True: pass").await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
        let out = sb.execute(code).await.unwrap();
        assert_eq!(out.stdout, expected, "preinit {preinit}, after a reset");
    }
    // Without any, the environment is eryx's five.
    let out = stdout_of("import os; print(sorted(os.environ))").await;
    assert_eq!(out, "['HOME', 'PWD', 'PYTEST_ADDOPTS', 'TMPDIR', 'USER']\n");
}

/// `PYTHONPATH` and `PYTHONWARNINGS` given with `env` take effect as in
/// `python3` (CPython's isolated start-up, and a snapshot's, ignore them).
#[tokio::test]
async fn pythonpath_and_pythonwarnings_take_effect() {
    let lib = tempfile::tempdir().unwrap();
    std::fs::write(
        lib.path().join("shared_lib.py"),
        "VALUE = 'from the mount'\n",
    )
    .unwrap();
    for preinit in [true, false] {
        let mut sb = builder()
            .preinit(preinit)
            .mount("/lib", lib.path(), eryx_host::Access::ReadOnly)
            .env("PYTHONPATH", "/lib")
            .env("PYTHONWARNINGS", "error::UserWarning")
            .build()
            .await
            .unwrap();
        let out = sb
            .execute(
                "import sys, warnings, shared_lib\n\
                 print(shared_lib.VALUE, sys.path[0], sys.warnoptions)\n\
                 try:\n    warnings.warn('careful')\nexcept UserWarning as e:\n    print('raised', e)",
            )
            .await
            .unwrap();
        assert_eq!(
            out.stdout, "from the mount /lib ['error::UserWarning']\nraised careful\n",
            "preinit {preinit}: {}",
            out.stderr
        );
    }
}

/// `TZ` gives local time as on Linux: `time.localtime`, `mktime`,
/// `strftime("%Z")`, the `time` module's zone attributes, naive
/// `datetime`s and `.astimezone()` follow it (libc's own functions are
/// UTC-only in WASI), in a pre-initialised sandbox and in one that starts
/// Python itself; `time.tzset()` takes a changed `TZ`; without one, UTC.
#[tokio::test]
async fn tz_gives_local_time() {
    let code = r#"
import datetime, time, zoneinfo
t = 1751371200  # 2025-07-01 12:00 UTC
print(time.tzname, time.timezone, time.altzone, time.daylight)
print(time.strftime("%Y-%m-%d %H:%M %Z %z", time.localtime(t)), time.localtime(t).tm_isdst)
print(time.mktime(time.localtime(t)) == t, time.mktime((2025, 1, 1, 0, 0, 0, 0, 1, -1)))
# 02:30 on 2025-10-26 comes twice; the DST flag picks which.
print(time.mktime((2025, 10, 26, 2, 30, 0, 0, 1, 1)), time.mktime((2025, 10, 26, 2, 30, 0, 0, 1, 0)))
print(datetime.datetime.fromtimestamp(t), datetime.datetime(2025, 1, 1).timestamp())
now = datetime.datetime.now().astimezone()
print(now.utcoffset() == datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Berlin")).utcoffset())
import os
os.environ["TZ"] = "Australia/Sydney"
time.tzset()
print(time.tzname, time.timezone, time.localtime(t).tm_hour)
# A POSIX rule, as glibc reads `TZ`.
os.environ["TZ"] = "EST+05EDT,M3.2.0,M11.1.0"
time.tzset()
print(time.tzname, time.altzone, time.localtime(t).tm_hour)
# Neither a zone nor a rule: UTC, as glibc gives.
os.environ["TZ"] = "No/Such,,Zone"
time.tzset()
print(time.tzname, time.localtime(t).tm_hour)
"#;
    let expected = "('CET', 'CEST') -3600 -7200 1\n\
                    2025-07-01 14:00 CEST +0200 1\n\
                    True 1735686000.0\n\
                    1761438600.0 1761442200.0\n\
                    2025-07-01 14:00:00 1735686000.0\n\
                    True\n\
                    ('AEST', 'AEDT') -36000 22\n\
                    ('EST', 'EDT') 14400 8\n\
                    ('UTC', 'UTC') 12\n";
    for preinit in [true, false] {
        let mut sb = builder()
            .preinit(preinit)
            .env("TZ", "Europe/Berlin")
            .build()
            .await
            .unwrap();
        let out = sb.execute(code).await.unwrap();
        assert_eq!(out.stdout, expected, "preinit {preinit}: {}", out.stderr);
    }
    let out = stdout_of(
        "import time, datetime\nprint(time.tzname, time.localtime(0).tm_hour, \
         datetime.datetime.fromtimestamp(0))",
    )
    .await;
    assert_eq!(out, "('UTC', 'UTC') 0 1970-01-01 00:00:00\n");
}

#[tokio::test]
async fn environment_variables_that_cannot_be_set_are_refused_by_name() {
    for (name, value, says) in [
        ("", "x", "the name is empty"),
        ("A=B", "x", "cannot contain `=`"),
        ("NUL", "a\0b", "NUL"),
    ] {
        let err = builder().env(name, value).build().await.unwrap_err();
        let Error::BadEnv { name: got, reason } = &err else {
            panic!("{name:?}: {err:?}");
        };
        assert_eq!(got, name);
        assert!(reason.contains(says), "{name:?}: {reason}");
        assert!(err.to_string().contains(&format!("{name:?}")), "{err}");
    }
}

/// `platform` describes the sandbox without an interpreter binary to read:
/// `libc_ver()` scanned the file `sys.executable` names and raised
/// `FileNotFoundError` (CPython's `test_time` did not load).
#[tokio::test]
async fn platform_works_without_an_interpreter_binary() {
    let out = stdout_of(
        "import platform, sys\nprint(sys.executable, platform.libc_ver(), platform.system(), \
         platform.machine())",
    )
    .await;
    assert_eq!(out, "python3 ('', '') wasi wasm32\n");
}

#[tokio::test]
async fn pwd_and_grp_know_the_sandbox_user() {
    // WASI has no user database; the sandbox has one user (uid 0, what
    // `os.stat` reports as every file's owner), so owner names work.
    let code = r#"
import grp, io, os, pathlib, pwd, tarfile
me = pwd.getpwuid(os.getuid())
print(me.pw_name, me.pw_dir, pwd.getpwnam("sandbox").pw_uid, grp.getgrgid(os.getgid()).gr_name)
print(os.path.expanduser("~sandbox/data"), pathlib.Path("/tmp").owner(), pathlib.Path("/tmp").group())
pathlib.Path("f.txt").write_text("x")
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    t.add("f.txt")
print(tarfile.open(fileobj=io.BytesIO(buf.getvalue())).getmember("f.txt").uname)
for lookup in (lambda: pwd.getpwuid(1000), lambda: grp.getgrnam("wheel")):
    try:
        lookup()
    except KeyError as e:
        print("KeyError", e)
"#;
    assert_eq!(
        stdout_of(code).await,
        "sandbox /tmp 0 sandbox\n/tmp/data sandbox sandbox\nsandbox\n\
         KeyError 'getpwuid(): uid not found: 1000'\nKeyError \"getgrnam(): name not found: 'wheel'\"\n"
    );
}

#[tokio::test]
async fn fcntl_sets_descriptor_flags_and_locks_files_within_the_sandbox() {
    // eryx's fcntl: descriptor flags through wasi-libc; flock locks belong
    // to the open file (a second descriptor conflicts, as on Linux), and a
    // wait that nothing could end raises EDEADLK instead of hanging;
    // record locks never conflict within the one process.
    let code = r#"
import errno, fcntl, mailbox, os, struct
p = "/tmp/locked"
f = open(p, "w")
g = open(p, "r")
print(fcntl.fcntl(f, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY)
fcntl.fcntl(f, fcntl.F_SETFL, fcntl.fcntl(f, fcntl.F_GETFL) | os.O_NONBLOCK)
print(os.get_blocking(f.fileno()))
fcntl.flock(f, fcntl.LOCK_EX)
fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
try:
    fcntl.flock(g, fcntl.LOCK_SH | fcntl.LOCK_NB)
except BlockingIOError as e:
    print("BlockingIOError", e.errno == errno.EWOULDBLOCK)
try:
    fcntl.flock(g, fcntl.LOCK_SH)
except OSError as e:
    print("OSError", e.errno == errno.EDEADLK)
f.close()  # closing releases its lock
fcntl.flock(g, fcntl.LOCK_SH | fcntl.LOCK_NB)
fcntl.lockf(g, fcntl.LOCK_SH | fcntl.LOCK_NB, 10, 0, os.SEEK_SET)
lk = fcntl.fcntl(g, fcntl.F_GETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))
print(struct.unpack_from("h", lk)[0] == fcntl.F_UNLCK)
for bad in (lambda: fcntl.fcntl(12345, fcntl.F_GETFD), lambda: fcntl.flock(g, 99),
            lambda: fcntl.fcntl(g, fcntl.F_DUPFD, 0)):
    try:
        bad()
    except OSError as e:
        print(errno.errorcode[e.errno])
box = mailbox.mbox("/tmp/box")
box.lock()
box.add(mailbox.mboxMessage("Subject: hi\n\nbody\n"))
box.flush()
box.unlock()
print([m["subject"] for m in mailbox.mbox("/tmp/box")])
"#;
    assert_eq!(
        stdout_of(code).await,
        "True\nFalse\nBlockingIOError True\nOSError True\nTrue\nEBADF\nEINVAL\nENOSYS\n['hi']\n"
    );
}

#[tokio::test]
async fn mmap_maps_files_and_writes_back_like_cpython() {
    // WASI cannot map files; eryx's mmap keeps the range in guest memory
    // and writes a shared map's changes to the file (through its own
    // descriptor: the file may be closed first, as with CPython).
    let code = r#"
import mmap, os
with open("f.bin", "wb") as f:
    f.write(b"hello world\nline two\n")
with open("f.bin", "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
print(m[:5], m[0], len(m), m.readline(), m.find(b"two"), m.size())
m[0:5] = b"HELLO"
view = memoryview(m)
view[6] = ord("W")
view.release()
m.seek(0, 2); m.resize(24); m[-3:] = b"end"
m.close()
print(open("f.bin", "rb").read())
with open("f.bin", "rb") as f:
    r = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
try:
    r[0] = 1
except TypeError as e:
    print("TypeError:", e)
c = mmap.mmap(os.open("f.bin", os.O_RDONLY), 5, access=mmap.ACCESS_COPY)
c[:] = b"xxxxx"
print(r[:5], c[:5], open("f.bin", "rb").read(5))
a = mmap.mmap(-1, 8)
a.write(b"abc")
print(a[:4], a.tell(), b"b" in a, repr(a))
fd = os.open("f.bin", os.O_RDWR)
raw = mmap.mmap(fd, 5)
os.close(fd)
try:
    raw[0] = 65
except ValueError as e:
    print("ValueError:", str(e).split(";")[0])
"#;
    assert_eq!(
        stdout_of(code).await,
        "b'hello' 104 21 b'hello world\\n' 17 21\n\
         b'HELLO World\\nline two\\nend'\n\
         TypeError: mmap can't modify a readonly memory map.\n\
         b'HELLO' b'xxxxx' b'HELLO'\n\
         b'abc\\x00' 3 True <mmap.mmap closed=False, access=ACCESS_DEFAULT, length=8, pos=3, offset=0>\n\
         ValueError: mmap: the file descriptor this map was made from was closed or reused\n"
    );
}

#[tokio::test]
async fn small_objects_come_from_pools_that_go_back_for_large_allocations() {
    // CPython's WASI build has no pymalloc; eryx's runtime serves the
    // PyMem/PyObject domains from 16 KiB pools in 256 KiB arenas. Freed
    // arenas must go back to libc: a million strings (~70 MB of pools) are
    // freed and then a 100 MB bytearray must fit in the same 160 MiB,
    // three times over, with a string kept between rounds (the printed
    // round number, which once pinned an arena in the middle). tracemalloc, which wraps the domains, still sees
    // the allocations; resizing moves blocks between pools and libc.
    let mut sb = crate::support::builder()
        .memory_limit(160 << 20)
        .build()
        .await
        .unwrap();
    let code = r#"
import gc, tracemalloc
for round in range(3):
    a = [str(i) * 3 for i in range(1_000_000)]
    total = sum(map(len, a))
    del a
    gc.collect()
    print(round, end=" ")
    b = bytearray(100_000_000)
    b[-1] = 7
    del b
print(total)
tracemalloc.start()
kept = [object() for _ in range(10_000)]
current, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
print(current >= 10_000 * 8, peak >= current)
s = b""
for i in range(2000):
    s += bytes([i % 256])
t = bytearray(b"x" * 600)
del t[10:]
t += b"y" * 1000
print(len(s), s[-3:], bytes(t[:12]), len(t))
"#;
    assert_eq!(
        sb.execute(code).await.unwrap().stdout,
        "0 1 2 17666670\nTrue True\n2000 b'\\xcd\\xce\\xcf' b'xxxxxxxxxxyy' 1010\n"
    );
}

#[tokio::test]
async fn started_threads_run_when_joined_or_at_the_end_of_the_execution() {
    // WASI has no threads (start() raised "can't start new thread", which
    // broke rich's progress bars): a started thread runs when joined, or,
    // if non-daemon, before the starter would block (a queue's get, a
    // sleep in a polling loop) or at the end of the execution; its
    // exception goes to threading.excepthook. A refresher that loops until
    // an event is set (rich's pattern) ends when stopped and joined. WASI's
    // CPython has no `get_native_id`: one OS thread, one id (the pid).
    let code = r#"
import threading, queue
out = []
t = threading.Thread(target=lambda n: out.append((n, threading.current_thread().name)), args=(1,), name="w1")
print(t.is_alive(), end=" "); t.start(); print(t.is_alive(), out, end=" "); t.join(); print(t.is_alive(), out)
hooked = []
threading.excepthook = lambda args: hooked.append((args.exc_type.__name__, args.thread.name))
def boom(): raise ValueError("in thread")
b = threading.Thread(target=boom, name="boomer"); b.start(); b.join(); print(hooked)
stop, ticks = threading.Event(), []
def refresher():
    while not stop.wait(0.01):
        ticks.append(1)
r = threading.Thread(target=refresher, daemon=True); r.start(); stop.set(); r.join(); print(ticks)
tm = threading.Timer(0.01, lambda: out.append("timer")); tm.start(); tm.join(); print(out[-1])
q = queue.Queue()
p = threading.Thread(target=lambda: [q.put(i) for i in range(3)]); p.start(); p.join()
print([q.get() for _ in range(3)])
try:
    threading.Thread(target=print).join()
except RuntimeError as e:
    print(e)
import time
results = queue.Queue()
threading.Thread(target=lambda: [results.put(i * i) for i in range(3)]).start()
print("consumer got", [results.get() for _ in range(3)])
flag = []
threading.Thread(target=flag.append, args=("set",)).start()
while not flag:
    time.sleep(0.01)
print("poller saw", flag)
ready = threading.Event()
threading.Thread(target=ready.set).start()
print("event", ready.wait(), threading.Event().wait(0.01))
import os
seen = []
n = threading.Thread(target=lambda: seen.append(threading.current_thread().native_id)); n.start(); n.join()
print("native ids", {threading.get_native_id(), threading.main_thread().native_id, n.native_id, *seen} == {os.getpid()})
threading.Thread(target=lambda: print("non-daemon ran at the end")).start()
threading.Thread(target=lambda: print("daemon never ran"), daemon=True).start()
print("main done")
"#;
    assert_eq!(
        stdout_of(code).await,
        "False True [] False [(1, 'w1')]\n\
         [('ValueError', 'boomer')]\n\
         []\n\
         timer\n\
         [0, 1, 2]\n\
         cannot join thread before it is started\n\
         consumer got [0, 1, 4]\n\
         poller saw ['set']\n\
         event True False\n\
         native ids True\n\
         main done\n\
         non-daemon ran at the end\n"
    );
}

#[tokio::test]
async fn thread_locals_are_per_thread_and_waits_that_cannot_end_raise() {
    // threading.local keyed its data on the OS thread, which every thread
    // here shares. A wait without a timeout that nothing could end (a lock
    // acquired twice, an empty queue, a future no task completes) trapped
    // in wasi-libc and reset the session; it now raises RuntimeError where
    // the code waits. A daemon worker fed through a queue (the queue docs'
    // example) runs when the main thread waits for it; a thread waiting for
    // the code that started it ends (ThreadBlocked, to the excepthook).
    let mut sb = sandbox().await;
    let code = r#"
import threading, queue, asyncio, sys
# asyncio (imported at start-up) does not pull the pure-Python locals in.
print("_threading_local" in sys.modules)
local = threading.local(); local.x = "main"; seen = []
def w():
    seen.append(getattr(local, "x", None)); local.x = "thread"
t = threading.Thread(target=w); t.start(); t.join()
print(seen, local.x)
import contextvars
var = contextvars.ContextVar("var", default="unset"); var.set("main")
def v():
    seen.append(var.get()); var.set("thread")
t = threading.Thread(target=v); t.start(); t.join()
print(seen[-1], var.get())
q, done = queue.Queue(), []
def worker():
    while True:
        done.append(q.get() * 2); q.task_done()
threading.Thread(target=worker, daemon=True).start()
for i in range(4): q.put(i)
q.join(); print("worker did", done)
hooked = []
threading.excepthook = lambda a: hooked.append((a.thread.name, a.exc_type.__name__))
ev = threading.Event()
t = threading.Thread(target=ev.wait, name="waiter"); t.start(); t.join()
print(hooked, t.is_alive())
lock = threading.Lock(); lock.acquire()
for wait in (lock.acquire, queue.Queue().get):
    try: wait()
    except RuntimeError as e: print(str(e)[:33])
print(lock.acquire(timeout=0.01))
async def stuck(): await asyncio.get_running_loop().create_future()
try: asyncio.run(stuck())
except RuntimeError as e: print(str(e)[:33])
"#;
    assert_eq!(
        sb.execute(code).await.unwrap().stdout,
        "False\n\
         [None] main\n\
         unset main\n\
         worker did [0, 2, 4, 6]\n\
         [('waiter', 'ThreadBlocked')] False\n\
         deadlock: this wait could never e\n\
         deadlock: this wait could never e\n\
         False\n\
         deadlock: the event loop's tasks \n"
    );
    // The session lives on.
    assert_eq!(sb.execute("print(local.x)").await.unwrap().stdout, "main\n");
}

#[tokio::test]
async fn select_and_poll_that_would_wait_forever_raise_and_the_session_goes_on() {
    // WASI traps on a poll with nothing to wait for and no timeout, which
    // lost the session; select(), poll() and the selectors built on them
    // raise instead, and waits that can end still work.
    let mut sb = sandbox().await;
    let code = r#"
import select, selectors, os, tempfile
for wait in (lambda: select.select([], [], []), lambda: select.poll().poll(),
             lambda: select.poll().poll(-1), lambda: selectors.DefaultSelector().select()):
    try: wait()
    except RuntimeError as e: print(e)
print(select.select([], [], [], 0.01))
p = select.poll()
print(type(p).__name__, p.poll(0))
with tempfile.TemporaryFile() as f:
    p.register(f, select.POLLIN); print(p.poll() == [(f.fileno(), select.POLLIN)])
    p.unregister(f.fileno())
    r, w, x = select.select([f], [], []); print(r == [f])
try: p.poll()
except RuntimeError as e: print(type(e).__name__)
"#;
    let forever = |what: &str| {
        format!(
            "deadlock: {what} with nothing to wait for and no timeout would wait forever (the \
             sandbox has no threads or signals to end it); pass a timeout\n"
        )
    };
    assert_eq!(
        sb.execute(code).await.unwrap().stdout,
        format!(
            "{}{}{}{}([], [], [])\npoll []\nTrue\nTrue\nRuntimeError\n",
            forever("select()"),
            forever("poll()"),
            forever("poll()"),
            forever("poll()"),
        )
    );
    assert_eq!(sb.execute("print(1 + 1)").await.unwrap().stdout, "2\n");
}

#[tokio::test]
async fn process_pools_run_their_tasks_inline_with_real_results_errors_and_callbacks() {
    // WASI has no processes: multiprocessing.Pool (and ThreadPool,
    // multiprocessing.dummy) and ProcessPoolExecutor run each task in the
    // sandbox's process when it is submitted; results, order, exceptions,
    // callbacks and initializers are the real pools'.
    let code = r#"
import multiprocessing as mp, concurrent.futures as cf, asyncio, math
def sq(x): return x * x
def boom(x):
    if x == 3: raise ValueError(f"bad {x}")
    return x
def init(tag): print("init", tag)
seen = []
with mp.Pool(4, initializer=init, initargs=("w",)) as p:
    print(p.map(sq, range(5)), p.starmap(pow, [(2, 3), (3, 2)]), p.apply(sq, (7,)))
    r = p.apply_async(sq, (6,), callback=seen.append); print(r.get(), r.ready(), r.successful(), seen)
    print(list(p.imap(sq, range(3))), sorted(p.imap_unordered(sq, range(3))))
    e = p.map_async(boom, range(5), error_callback=lambda e: seen.append(repr(e)))
    try: e.get(1)
    except ValueError as x: print("ValueError", x, e.successful(), seen[-1])
try: p.map(sq, [1])
except ValueError as x: print(x)
from multiprocessing.dummy import Pool as TP
with TP(2) as t: print(t.map(len, ["ab", "c"]))
with cf.ProcessPoolExecutor(max_workers=2) as ex:
    print(list(ex.map(sq, range(4), chunksize=2)), ex.submit(math.factorial, 5).result())
    f = ex.submit(boom, 3); print(type(f.exception()).__name__)
async def main():
    loop = asyncio.get_running_loop()
    with cf.ProcessPoolExecutor() as ex:
        return await asyncio.gather(*(loop.run_in_executor(ex, sq, i) for i in range(3)))
print(asyncio.run(main()))
print(mp.cpu_count(), cf.ProcessPoolExecutor.__module__)
"#;
    assert_eq!(
        stdout_of(code).await,
        "init w\n\
         [0, 1, 4, 9, 16] [8, 9] 49\n\
         36 True True [36]\n\
         [0, 1, 4] [0, 1, 4]\n\
         ValueError bad 3 False ValueError('bad 3')\n\
         Pool not running\n\
         [2, 1]\n\
         [0, 1, 4, 9] 120\n\
         ValueError\n\
         [0, 1, 4]\n\
         1 concurrent.futures.process\n"
    );
}

#[tokio::test]
async fn thread_pools_and_to_thread_run_their_tasks_without_threads() {
    // WASI has no threads: a ThreadPoolExecutor runs each task when it is
    // submitted (results, exceptions, initializers, nested submits as
    // usual), so asyncio.to_thread and run_in_executor work, and
    // asyncio.run's executor shutdown needs no thread either.
    let code = r#"
import asyncio, concurrent.futures as cf, threading, time
with cf.ThreadPoolExecutor(max_workers=4) as ex:
    print(list(ex.map(lambda x: x * x, range(5))))
    futs = [ex.submit(pow, 2, i) for i in range(4)]
    print(sorted(f.result() for f in cf.as_completed(futs)))
    print(type(ex.submit(lambda: 1 / 0).exception()).__name__)
    print(ex.submit(lambda: ex.submit(str, 7).result() + "+outer").result())
seen = []
with cf.ThreadPoolExecutor(initializer=seen.append, initargs=("init",)) as ex:
    ex.submit(int); ex.submit(int)
print(seen)
def fail(): raise ValueError("no")
with cf.ThreadPoolExecutor(initializer=fail) as ex:
    print(type(ex.submit(int).exception()).__name__)
async def main():
    a = await asyncio.to_thread(sum, [1, 2, 3])
    b = await asyncio.get_running_loop().run_in_executor(None, len, "abcd")
    c = await asyncio.gather(*(asyncio.to_thread(time.sleep, 0.01) for _ in range(3)))
    return a, b, c
print(asyncio.run(main()))
threading.Thread(target=print, args=("a Thread runs at the end",)).start()
"#;
    let mut sb = sandbox().await;
    let out = sb
        .execute(code)
        .await
        .expect("running the thread-pool script");
    assert_eq!(
        out.stdout,
        "[0, 1, 4, 9, 16]\n[1, 2, 4, 8]\nZeroDivisionError\n7+outer\n['init']\n\
         BrokenThreadPool\n(6, 4, [None, None, None])\na Thread runs at the end\n"
    );
    // The initializer's failure is logged as CPython's pool logs it.
    assert!(
        out.stderr.contains("Exception in initializer:"),
        "{}",
        out.stderr
    );
    // Top-level await in a session cell.
    let out = sb
        .execute("import asyncio\nawait asyncio.to_thread(max, 3, 9)")
        .await
        .expect("awaiting to_thread in a cell");
    assert_eq!(out.value.as_deref(), Some("9"));
}

#[tokio::test]
async fn ctypes_has_c_data_types_but_no_foreign_code() {
    // The WASI build has no `_ctypes` (libffi has no WASI port): eryx's own
    // `ctypes` gives the data types with wasm32's layout, and says so when
    // code asks for a C library or calls a C function pointer.
    let code = r#"
import ctypes, ctypes.util, ctypes._endian
from ctypes import *
print([sizeof(t) for t in (c_char, c_short, c_int, c_long, c_longlong, c_size_t, c_void_p, c_double, c_longdouble, c_wchar)])
print(c_int(2**31).value, c_ubyte(-1).value, c_long(5), c_longdouble(0.1).value == 0.1)
class POINT(Structure):
    _fields_ = [("x", c_int), ("y", c_int)]
class RECT(Structure):
    _fields_ = [("a", POINT), ("b", POINT), ("tag", c_char), ("d", c_double)]
r = RECT(POINT(1, 2), (3, 4), b"z")
r.a.x = 10
print(r.a.x, r.b.y, r.tag, sizeof(RECT), alignment(RECT), RECT.d.offset, bytes(r)[:4])
class BF(Structure):
    _fields_ = [("a", c_uint, 3), ("b", c_int, 5), ("c", c_ubyte), ("d", c_int, 30)]
b = BF(5, -3, 7, 100)
print(b.a, b.b, b.c, b.d, sizeof(BF), bytes(b).hex())
class U(Union):
    _fields_ = [("i", c_uint), ("b", c_ubyte * 4)]
print(list(U(0x01020304).b))
for base in (BigEndianStructure, ctypes._endian.BigEndianStructure):
    class BE(base):
        _fields_ = [("x", c_uint16), ("y", c_uint32), ("c", c_uint16 * 2)]
    print(bytes(BE(1, 2, (7, 8))).hex(), end=" ")
print()
class Packed(Structure):
    _pack_ = 1
    _fields_ = [("a", c_char), ("b", c_int)]
print(sizeof(Packed), Packed.b.offset)
class Node(Structure): pass
Node._fields_ = [("value", c_int), ("next", POINTER(Node))]
tail = Node(2, None); head = Node(1, pointer(tail))
print(head.next.contents.value, bool(tail.next))
arr = (c_int * 5)(1, 2, 3)
buf = create_string_buffer(b"hello", 8)
p = cast(arr, POINTER(c_int)); p[4] = 9
memmove(buf, b"HE", 2)
print(list(arr), arr[1:3], buf.value, buf.raw, string_at(addressof(buf), 3), c_char_p(b"abc").value)
ba = bytearray(8); c_int.from_buffer(ba, 4).value = -1
print(ba.hex(), c_int.from_buffer_copy(b"\x02\x00\x00\x00").value, py_object([1]).value)
add = CFUNCTYPE(c_int, c_int, c_int)(lambda a, b: a + b)
print(add(2, 3), add(2**31, 0), ctypes.util.find_library("c"))
for bad in (lambda: CDLL("libc.so.6"), lambda: cdll.LoadLibrary("libm.so"),
            lambda: CFUNCTYPE(c_int)(0x1234)()):
    try:
        bad()
    except OSError as e:
        print("OSError", "not available in the eryx sandbox" in str(e))
# A function looked up by name is not found, as a symbol a library lacks:
# code probing for one (pycryptodome, for `PyBytes_FromStringAndSize`)
# catches AttributeError and takes its other way.
for missing in (lambda: CDLL(None).printf, lambda: pythonapi.Py_IncRef,
                lambda: PYFUNCTYPE(py_object, c_ssize_t)(("PyBytes_FromStringAndSize", pythonapi))):
    try:
        missing()
    except AttributeError as e:
        print("AttributeError", e if "printf" in str(e) else str(e).split(":")[0])
try:
    c_int.from_address(0x10)
except ValueError as e:
    print("ValueError", "ctypes objects only" in str(e))
# `dllist()` (3.14; threadpoolctl's way to list libraries): the extension
# modules loaded, as CPython's has no WASI version.
import _bz2
print([p for p in ctypes.util.dllist() if "_bz2" in p])
"#;
    assert_eq!(
        stdout_of(code).await,
        "[1, 2, 4, 4, 8, 4, 4, 8, 16, 4]\n\
         -2147483648 255 c_long(5) True\n\
         10 4 b'z' 32 8 24 b'\\n\\x00\\x00\\x00'\n\
         5 -3 7 100 8 ed07000064000000\n\
         [4, 3, 2, 1]\n\
         000100000000000200070008 000100000000000200070008 \n\
         5 1\n\
         2 False\n\
         [1, 2, 3, 0, 9] [2, 3] b'HEllo' b'HEllo\\x00\\x00\\x00' b'HEl' b'abc'\n\
         00000000ffffffff 2 [1]\n\
         5 -2147483648 None\n\
         OSError True\nOSError True\nOSError True\n\
         AttributeError function 'printf' not found: the eryx sandbox has no C symbols for ctypes to call\n\
         AttributeError function 'Py_IncRef' not found\n\
         AttributeError function 'PyBytes_FromStringAndSize' not found\n\
         ValueError True\n\
         ['/python/lib/python3.14/_bz2.cpython-314-wasm32-wasi.so']\n"
    );
}

/// ctypes objects' buffers: typed as CPython's where a memoryview can say
/// it (simple types, arrays of them), bytes otherwise, and as large as
/// `resize` made them (CPython's test_io fills such buffers); `_ctypes`
/// imports (numpy looks up ctypes' base classes there) and loads no library.
#[tokio::test]
async fn ctypes_buffers_are_typed_and_follow_resize() {
    let code = r#"
from ctypes import *
m = memoryview((c_double * 2)(0.5, 2))
print(m.format, m.shape, m.tolist(), memoryview(c_int(-7)).tolist(), memoryview(c_char(b"x")).tolist())
grid = ((c_int * 3) * 2)()
grid[1][2] = 7
print(memoryview(grid).shape, memoryview(grid).tolist(), memoryview(c_int.__ctype_be__(1)).format)
class Empty(Structure):
    pass
e = Empty()
resize(e, 5)
memoryview(e).cast("B")[:] = b"abcde"
print(sizeof(e), bytes(e), c_int.from_buffer(grid, 20).value, bytes(c_short(258)))
resize(e, 2)
print(sizeof(e), bytes(e))
import _ctypes
print(issubclass(c_int, _ctypes._SimpleCData), issubclass(type(grid), _ctypes.Array), _ctypes.sizeof(c_long))
try:
    _ctypes.dlopen("libc.so.6")
except OSError as e:
    print("OSError", "not available in the eryx sandbox" in str(e))
"#;
    assert_eq!(
        stdout_of(code).await,
        "d (2,) [0.5, 2.0] -7 b'x'\n\
         (2, 3) [[0, 0, 0], [0, 0, 7]] B\n\
         5 b'abcde' 7 b'\\x02\\x01'\n\
         2 b'ab'\n\
         True True 4\n\
         OSError True\n"
    );
}

#[tokio::test]
async fn ssl_imports_and_configures_contexts_but_has_no_tls_without_network() {
    // No OpenSSL in the WASI build: eryx's `_ssl` lets `ssl` import (and
    // the packages that import it at the top), with contexts that behave
    // as CPython's; starting TLS in a sandbox without network says why it
    // is not available (tests/all/network.rs: TLS with network).
    let code = r#"
import ssl, asyncio.sslproto
ctx = ssl.create_default_context()
print(ctx.verify_mode == ssl.CERT_REQUIRED, ctx.check_hostname, ssl.Purpose.SERVER_AUTH.oid)
try:
    ctx.verify_mode = ssl.CERT_NONE
except ValueError as e:
    print("ValueError", e)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.TLSv1_2
ctx.set_alpn_protocols(["h2", "http/1.1"])
print(ctx.verify_mode.name, ctx.minimum_version.name, bool(ctx.options & ssl.OP_NO_SSLv3))
try:
    ssl.create_default_context(cafile="/tmp/missing.pem")
except FileNotFoundError:
    print("FileNotFoundError")
bio = ssl.MemoryBIO(); bio.write(b"abc"); print(bio.read(2), bio.pending)
try:
    ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.com")
except ssl.SSLError as e:
    print("SSLError", e)
print(asyncio.sslproto.ssl is ssl, len(ssl.RAND_bytes(8)))
"#;
    assert_eq!(
        stdout_of(code).await,
        "True True 1.3.6.1.5.5.7.3.1\n\
         ValueError Cannot set verify_mode to CERT_NONE when check_hostname is enabled.\n\
         CERT_NONE TLSv1_2 True\n\
         FileNotFoundError\n\
         b'ab' 1\n\
         SSLError TLS to a peer: TLS is not available in this eryx sandbox: it has no network \
         (the host can allow hosts: `SandboxBuilder::allow_net`, `eryx --allow-net HOST:PORT`)\n\
         True 8\n"
    );
}

#[tokio::test]
async fn exception_gives_traceback_and_the_sandbox_goes_on() {
    let mut sb = sandbox().await;
    let err = sb
        .execute("print('before')\ndef f():\n    raise ValueError('boom')\nf()")
        .await
        .unwrap_err();
    let Error::Python(e) = err else {
        panic!("expected a Python error, got {err:?}")
    };
    assert_eq!(e.type_name, "ValueError");
    assert_eq!(e.message, "boom");
    assert_eq!(e.stdout, "before\n");
    assert!(
        e.traceback
            .starts_with("Traceback (most recent call last):\n"),
        "{}",
        e.traceback
    );
    assert!(
        e.traceback
            .contains("line 3, in f\n    raise ValueError('boom')"),
        "{}",
        e.traceback
    );
    assert!(
        e.traceback.ends_with("ValueError: boom\n"),
        "{}",
        e.traceback
    );
    assert!(
        !e.traceback.contains("_eryx_prelude"),
        "prelude frames leak: {}",
        e.traceback
    );
    assert_eq!(
        sb.execute("print('after')").await.unwrap().stdout,
        "after\n"
    );
}

#[tokio::test]
async fn syntax_error_is_a_python_error() {
    let mut sb = sandbox().await;
    let Error::Python(e) = sb.execute("x = = 1").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.type_name, "SyntaxError");
    assert!(
        e.traceback.ends_with("SyntaxError: invalid syntax\n"),
        "{}",
        e.traceback
    );
}

#[tokio::test]
async fn last_expression_value_is_reported() {
    let mut sb = sandbox().await;
    assert_eq!(sb.execute("1+1").await.unwrap().value.as_deref(), Some("2"));
    assert_eq!(
        sb.execute("x = 'a'\nx * 3").await.unwrap().value.as_deref(),
        Some("'aaa'")
    );
    assert_eq!(sb.execute("None").await.unwrap().value, None);
    assert_eq!(sb.execute("y = 5").await.unwrap().value, None);
}

/// Cells whose last statement is, or only looks like, an expression: the
/// value is Python's (the last statement, if it is an expression), whichever
/// way the prelude compiled the cell (the source as it is, or through `ast`).
#[tokio::test]
async fn trailing_value_follows_the_last_statement_in_tricky_cells() {
    let cases: &[(&str, Option<&str>)] = &[
        ("x = 1", None),
        ("x = 2\nx * 3", Some("6")),
        ("import os; os.sep", Some("'/'")),
        ("import os; x = 1", None),
        ("x = 1; x", Some("1")),
        ("a = [1,\n 2]\na", Some("[1, 2]")),
        ("x = 5\nx\n# a comment\n\n", Some("5")),
        ("if 1:\n    y = 5\nelse:\n    y = 6\ny", Some("5")),
        ("if 1:\n    y = 5\nelse:\n    y", None),
        ("for i in range(2): i", None),
        ("@(lambda f: 7)\ndef g(): pass\ng", Some("7")),
        ("@(lambda f: 7)\n\ndef g():\n    return 1", None),
        ("a, *b = 1, 2, 3\nb", Some("[2, 3]")),
        ("x = [1]\n*x, 2", Some("(1, 2)")),
        ("x: int = 3\nx", Some("3")),
        ("x: int = 3", None),
        ("x: int", None),
        ("s = [1, 2, 3]\ns[1:2]", Some("[2]")),
        ("(y := 4)", Some("4")),
        ("f = lambda x=1: x\nf()", Some("1")),
        ("type X = int", None),
        ("z = 1\nz == 1", Some("True")),
        ("z = 1\nz <= 1", Some("True")),
        ("d = {}\nd['k'] = 1\nd", Some("{'k': 1}")),
        ("d = {0: 1}\nd[0] += 1 if d else 0", None),
        ("s = '''\nx = 1\n'''\ns", Some("'\\nx = 1\\n'")),
        ("s = '''\nx = 1\n'''", None),
        ("str('''\nx = 1''')", Some("'\\nx = 1'")),
        ("v = 3\n(v\n)", Some("3")),
        ("v = 3\nv \\\n + 1", Some("4")),
        ("v = 3 + \\\n1", None),
        ("'abc'", Some("'abc'")),
        ("class C:\n    pass\nC.__name__", Some("'C'")),
        (
            "try:\n    1/0\nexcept ZeroDivisionError:\n    r = 9\nr",
            Some("9"),
        ),
        ("try:\n    q = 1\nfinally:\n    q = 2", None),
        ("a = 1\r\na\r\n", Some("1")),
        ("import asyncio\nawait asyncio.sleep(0, 7)", Some("7")),
        ("from __future__ import annotations\n8", Some("8")),
        ("match 3:\n    case 3:\n        m = 1\nm", Some("1")),
        ("match = 2\nmatch", Some("2")),
        // Characters outside ASCII before the split: it is made in
        // characters, not bytes.
        ("é = 'ü'\né * 2", Some("'üü'")),
        ("# ünïcode comment ✓\nπ = 3\nπ + 1", Some("4")),
        ("s = '日本'\n\ns", Some("'日本'")),
        ("x = 1\nelsewhere = 2\nelsewhere", Some("2")),
        ("x = 1\nelse_ = 2\nelse_ + x", Some("3")),
        ("lambda: 1", Some("<function <lambda> at")),
        ("v = 1\nv if v else 2", Some("1")),
        ("k = [0]\nk[0] == 0", Some("True")),
        ("k = {}\nk.get('a', 1) or 2", Some("1")),
        ("n = 2\nn >> 1", Some("1")),
        ("n = 2\nn >>= 1\nn", Some("1")),
        ("not_ = 1\nnot not_", Some("False")),
        ("assert 1, 'a=b'", None),
        ("del_ = 5\ndel_", Some("5")),
    ];
    let mut sb = sandbox().await;
    for (code, want) in cases {
        let out = sb
            .execute(code)
            .await
            .unwrap_or_else(|e| panic!("{code:?}: {e}"));
        match (out.value.as_deref(), *want) {
            // A function's repr has its address.
            (Some(got), Some(want)) if want.ends_with(" at") => {
                assert!(got.starts_with(want), "cell {code:?}: {got}")
            }
            (got, want) => assert_eq!(got, want, "cell {code:?}"),
        }
    }
}

/// The runtime's reading of where a cell's last statement begins
/// (`eryx-runtime/src/cell.rs`) never changes what a cell does: over every
/// pair of these lines (1,600 cells), the value or exception of the cell is
/// what the prelude's exact path (`ast`, no split) gives. A wrong split
/// would show as a lost value (an expression taken for a statement) or a
/// different error.
#[tokio::test]
async fn splitting_cells_gives_what_the_exact_path_gives() {
    let lines = [
        "x = 1",
        "x += 2",
        "x",
        "x * 2",
        "y: int = 3",
        "(x, y)",
        "x == 1",
        "x <= 2",
        "d = {'k': 1}",
        "d['k'] += 1",
        "d['k']",
        "import os",
        "os.sep",
        "pass",
        "if x:\n    z = 1\nelse:\n    z = 2",
        "z",
        "def f(a=1):\n    return a",
        "f()",
        "@(lambda g: 7)\ndef h(): return 5",
        "h",
        "for i in range(2): i",
        "s = '''\nq = 1\n'''",
        "s",
        "é = 'ü'",
        "é * 2",
        "a = 1; a",
        "lambda: 0",
        "not x",
        "x if x else 0",
        "# a comment",
        "",
        "n = 4\nn >> 1",
        "[*range(2)]",
        "*range(2), 3",
        "try:\n    1/0\nexcept ZeroDivisionError:\n    e = 'caught'",
        "class C:\n    k = 1",
        "C.k",
        "match x:\n    case _:\n        m = x",
        "v = 3 + \\\n 1",
        "(v\n)",
    ];
    // Function reprs carry their addresses.
    let strip = |s: &str| s.split(" at 0x").next().unwrap_or_default().to_string();
    let mut sb = sandbox().await;
    let mut cells = 0;
    for a in lines {
        for b in lines {
            let code = format!("{a}\n{b}");
            sb.clear().await.unwrap();
            let literal = serde_json::to_string(&code).unwrap();
            let reference = format!(
                "import _eryx_prelude as _p\n\
                 _ns = {{'__name__': '__main__', '__builtins__': __builtins__}}\n\
                 try:\n    _v = _p._run({literal}, '<ref>', _ns, None)\n    \
                 _r = 'value ' + ('None' if _v is None else repr(_v))\n\
                 except BaseException as _e:\n    _r = 'error ' + type(_e).__name__\n\
                 print(_r)"
            );
            let want = sb
                .execute(&reference)
                .await
                .unwrap_or_else(|e| panic!("reference run of {code:?}: {e}"))
                .stdout;
            sb.clear().await.unwrap();
            let got = match sb.execute(&code).await {
                Ok(out) => format!("value {}", out.value.as_deref().unwrap_or("None")),
                Err(Error::Python(e)) => format!("error {}", e.type_name),
                Err(e) => panic!("{code:?}: {e}"),
            };
            assert_eq!(strip(&got), strip(want.trim_end()), "cell {code:?}");
            cells += 1;
        }
    }
    assert_eq!(cells, lines.len() * lines.len());
}

/// Tracebacks name the lines of the cell, also for its last statement.
#[tokio::test]
async fn tracebacks_name_the_cells_lines() {
    let mut sb = sandbox().await;
    for (code, lines) in [
        ("x = 1\ny = 2\n\n1/0", &["line 4"][..]),
        ("def f():\n    return 1/0\n\nf()", &["line 4", "line 2"][..]),
        (
            "def f():\n    return 1/0\n\nr = f()",
            &["line 4", "line 2"][..],
        ),
        ("x = 1\nif x:\n    1/0", &["line 3"][..]),
        ("s = 'ünï'\n\n1/0", &["line 3"][..]),
        ("s = 'ünï'\n\nlen(s) / 0", &["line 3", "len(s) / 0"][..]),
    ] {
        let Error::Python(e) = sb.execute(code).await.unwrap_err() else {
            panic!("{code:?}")
        };
        for line in lines {
            assert!(e.traceback.contains(line), "{code:?}: {}", e.traceback);
        }
    }
}

/// `sys.stdout` / `sys.stderr` kept from one cell still write into a later
/// cell's output: a `logging` handler set up once logs in every call.
#[tokio::test]
async fn streams_kept_from_an_earlier_cell_write_to_the_current_output() {
    let mut sb = sandbox().await;
    sb.execute(
        "import logging, sys\nlog = logging.getLogger('t')\n\
         log.addHandler(logging.StreamHandler())\nkept = sys.stdout",
    )
    .await
    .unwrap();
    let out = sb
        .execute("log.warning('hello'); kept.write('to stdout')")
        .await
        .unwrap();
    assert_eq!(out.stderr, "hello\n");
    assert_eq!(out.stdout, "to stdout");
    let out = sb.execute("log.warning('again')").await.unwrap();
    assert_eq!(out.stderr, "again\n");
}
