"""The guest side of eryx: runs user code in `__main__` and captures output.

Imported once at interpreter start-up by `liberyx_runtime.so`, as the
module `_eryx_prelude` of the bundle's stdlib (`cargo xtask dist` puts this
file there and compiles it to bytecode), after the runtime has registered
the built-in module `_host` (the world's imports). Its frames are cut from
tracebacks by their file name. The runtime calls `execute`, `clear`,
`snapshot`, `restore` and `sync_environ`, the CLI's code `at_exit`;
everything else is private.
"""

import ast
import builtins
import io
import keyword
import linecache
import sys
import types

import __main__
import _host

# Set only while the host pre-initialises a component (read by the runtime
# before this module loads); sandboxes never see it.
__import__("os").environ.pop("ERYX_PREIMPORT", None)

# The guest has no interpreter binary, so CPython leaves this empty; messages
# that name it (`runpy`'s "python3: No module named ...", argparse's
# "usage: python3 -m tool") read as they do under python3.
sys.executable = "python3"


def _cpu_ns():
    """The sandbox's CPU time in nanoseconds, which the host counts: the
    time the guest's code ran, without its sleeps and its waits for host
    functions. (WASI has no CPU clocks: wasi-libc counted process time from
    the sandbox's start, sleeps included.)"""
    ok, *answer = _host.call("\0cpu", "")
    return int(answer[0]) if ok else 0


def _times(_raw=__import__("os").times):
    """`os.times()` in seconds, its user time the sandbox's CPU time.
    wasi-libc's `times()` counts nanoseconds while `os.times` divides by
    `sysconf("SC_CLK_TCK")` (100): every field came out ten million times
    too large."""
    import os
    elapsed = _raw()[4] * os.sysconf("SC_CLK_TCK") / 1e9
    return os.times_result((_cpu_ns() / 1e9, 0.0, 0.0, 0.0, elapsed))


_times.__name__ = _times.__qualname__ = "times"
_times.__doc__ = __import__("os").times.__doc__
__import__("os").times = _times


def _cpu_clocks():
    """`time.process_time()` and `time.thread_time()` (which the WASI build
    lacks; profilers and benchmarks call it) read the host's count of the
    sandbox's CPU time (`_cpu_ns`): the sandbox's Python runs on one
    thread, so the two are the same clock."""
    import time

    def process_time_ns():
        return _cpu_ns()

    def process_time():
        return _cpu_ns() / 1e9

    def thread_time_ns():
        return _cpu_ns()

    def thread_time():
        return _cpu_ns() / 1e9

    clock_info = time.get_clock_info
    info = types.SimpleNamespace(
        implementation="eryx: the host's count of the sandbox's running time",
        monotonic=True,
        adjustable=False,
        resolution=1e-09,
    )

    def get_clock_info(name):
        if name in ("process_time", "thread_time"):
            return types.SimpleNamespace(**vars(info))
        return clock_info(name)

    for fn, doc in (
        (process_time, "process_time() -> float\n\nThe sandbox's CPU time in seconds (sleeps and waits for host functions not included)."),
        (process_time_ns, "process_time_ns() -> int\n\nThe sandbox's CPU time in nanoseconds."),
        (thread_time, "thread_time() -> float\n\nThe sandbox's CPU time in seconds: its one thread's."),
        (thread_time_ns, "thread_time_ns() -> int\n\nThe sandbox's CPU time in nanoseconds: its one thread's."),
    ):
        fn.__doc__ = doc
        fn.__module__ = "time"
    get_clock_info.__doc__ = clock_info.__doc__
    time.process_time, time.process_time_ns = process_time, process_time_ns
    time.thread_time, time.thread_time_ns = thread_time, thread_time_ns
    time.get_clock_info = get_clock_info


_cpu_clocks()
del _cpu_clocks


def _ids():
    """`os.getuid()`, `os.getgid()` and `os.umask()`, which the WASI build
    lacks (tools that are not written for WASI call them: pytest's
    `tmp_path`). The ids are 0, what `os.stat()` reports as every file's
    owner here. Not `geteuid`: with an effective uid of 0 `tarfile` would
    extract as root and call `os.chown`, which WASI does not have."""
    import os

    for name in ("getuid", "getgid"):
        if not hasattr(os, name):
            fn = lambda: 0  # noqa: E731
            fn.__name__ = fn.__qualname__ = name
            fn.__doc__ = f"Return the current process's {name[3:]} (0 in the sandbox)."
            setattr(os, name, fn)
    if not hasattr(os, "umask"):
        mask = [0o022]

        def umask(new, /):
            """Set the current numeric umask and return the previous umask
            (kept for callers that compute file modes: WASI files have no
            permission bits, so it changes nothing)."""
            old, mask[0] = mask[0], int(new) & 0o777
            return old

        os.umask = umask


_ids()
del _ids


def _system(command):
    """Execute the command in a subshell: here there are no processes, so
    nothing runs. As on a machine without the command, this says so on
    stderr and returns the shell's status for "not found" (127, as a wait
    status): `os.system("clear")` in a script written for a terminal goes
    on instead of ending in `AttributeError` (the WASI build has no
    `os.system`), and code that checks the status sees a failure."""
    if not isinstance(command, (str, bytes, __import__("os").PathLike)):
        raise TypeError(
            f"expected str, bytes or os.PathLike object, not {type(command).__name__}"
        )
    sys.stderr.write(
        f"eryx: os.system({command!r}) did not run: this sandbox runs no "
        "processes (status 127, as for a command that is not found); the "
        "host can offer what the code needs as host functions\n"
    )
    return 127 << 8


if not hasattr(__import__("os"), "system"):
    _system.__name__ = _system.__qualname__ = "system"
    __import__("os").system = _system
del _system


def _terminal():
    """`os.get_terminal_size()` and `os.getlogin()`, which the WASI build
    lacks: scripts that call them directly ended in `AttributeError`.
    There is no terminal here, so the first fails as Linux fails it on a
    descriptor that is not one (`OSError` ENOTTY; EBADF when closed), which
    such scripts catch (`shutil.get_terminal_size()` falls back to
    `COLUMNS` / `LINES`, then 80x24); the second names the sandbox's user,
    as `getpass.getuser()` and `pwd` do."""
    import errno
    import os

    def get_terminal_size(fd=1, /):
        """Return the size of the terminal window as (columns, lines): here
        no descriptor is a terminal, so this raises `OSError` (ENOTTY)."""
        os.fstat(fd)  # EBADF for a descriptor that is not open
        raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))

    def getlogin():
        """Return the name of the user logged in (the sandbox's user)."""
        return __import__("getpass").getuser()

    for fn in (get_terminal_size, getlogin):
        if not hasattr(os, fn.__name__):
            setattr(os, fn.__name__, fn)


_terminal()
del _terminal


def _filesystem_statistics():
    """`os.statvfs` (and with it `shutil.disk_usage`), which WASI lacks:
    libraries check free space before writing caches or downloads. The
    host answers (a host call of a name no host function can have): `/tmp`
    shows its size limit and what is left of it, a mount its host file
    system (read-only when mounted so), the rest is read-only and full."""
    import errno
    import os

    def statvfs(path):
        """Perform a statvfs system call on the given path."""
        if isinstance(path, int):
            os.fstat(path)  # EBADF for a descriptor that is not open
            raise OSError(errno.ENOTSUP, "statvfs of a file descriptor is not supported here; pass its path")
        # FileNotFoundError and the like, as Linux raises them; its device
        # number names the file system, as Linux's f_fsid does.
        device = os.stat(path).st_dev
        ok, *rest = _host.call("\0statvfs", os.path.realpath(os.fsdecode(path)))
        return os.statvfs_result(tuple(__import__("json").loads(rest[0])), {"f_fsid": device})

    if not hasattr(os, "statvfs"):
        os.statvfs = statvfs
        shutil = sys.modules.get("shutil")
        if shutil is not None and not hasattr(shutil, "disk_usage"):
            import importlib

            importlib.reload(shutil)


_filesystem_statistics()
del _filesystem_statistics

# `traceback`, `pickle` and `importlib` are imported when first needed: they
# pull in a dozen modules that start-up does not need.

class _Quitter:
    """`exit()` / `quit()`, as `site` defines them in a normal CPython (the
    sandbox does not import `site`)."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"Use {self.name}() or Ctrl-D (i.e. EOF) to exit"

    def __call__(self, code=None):
        raise SystemExit(code)


builtins.exit = _Quitter("exit")
builtins.quit = _Quitter("quit")


class _Help:
    """`help()`, as `site` defines it (`help(obj)` prints pydoc's text for
    `obj`; pydoc is imported on first use)."""

    def __repr__(self):
        return "Type help() for interactive help, or help(object) for help about object."

    def __call__(self, *args, **kwds):
        import pydoc

        return pydoc.help(*args, **kwds)


builtins.help = _Help()


def _constructors_at_import(imp):
    """Runs each extension module's static constructors when it is first
    imported, just before its `PyInit_*`, as `dlopen` does natively: the
    component's start-up runs before the interpreter exists, so C++ globals
    whose constructors call the Python API could not run there."""
    create_dynamic = imp.create_dynamic
    constructors = _host.constructors

    def create_dynamic_constructed(spec, *args):
        if isinstance(spec.origin, str):
            constructors(spec.origin)
        return create_dynamic(spec, *args)

    create_dynamic_constructed.__name__ = create_dynamic.__name__
    create_dynamic_constructed.__doc__ = create_dynamic.__doc__
    imp.create_dynamic = create_dynamic_constructed


_constructors_at_import(__import__("_imp"))


def _without_self_pipe(loop_class):
    """asyncio's selector loop wakes itself through a `socket.socketpair()`,
    which WASI does not have; with no threads and no signal handlers in the
    sandbox nothing needs waking, so the loop runs without one.

    For the same reason a loop with nothing to wait for (no timer, no file
    descriptor, no host call) while its tasks wait could wait forever (WASI
    traps on such a poll): its selector raises RuntimeError instead."""

    def make_self_pipe(self):
        self._ssock = self._csock = None
        selector = self._selector
        select = selector.select

        def select_or_deadlock(timeout=None):
            if timeout is None and not selector.get_map():
                raise RuntimeError(
                    "deadlock: the event loop's tasks wait for something nothing "
                    "can complete (a future, event or queue no task or timer "
                    "will set): the sandbox has no threads or signals to do it"
                )
            return select(timeout)

        selector.select = select_or_deadlock

    def close_self_pipe(self):
        pass

    def write_to_self(self):
        pass

    loop_class._make_self_pipe = make_self_pipe
    loop_class._close_self_pipe = close_self_pipe
    loop_class._write_to_self = write_to_self


def _thread_pool_inline(module):
    """`concurrent.futures.ThreadPoolExecutor` without threads (WASI has
    none): each task runs on the one thread when it is submitted, once the
    executor's locks are released, so that `executor.map`, `submit` and
    with them `asyncio.to_thread` and `loop.run_in_executor` give their
    results and exceptions as usual, one task after another. A task that
    waits for a later task waits until the time limit stops it."""
    import queue

    executor = module.ThreadPoolExecutor
    submit = executor.submit

    def run_submitted(self):
        ctx = self.__dict__.get("_inline_context")
        if ctx is None:
            ctx = self._create_worker_context()
            try:
                ctx.initialize()
            except BaseException:
                module._base.LOGGER.critical("Exception in initializer:", exc_info=True)
                self._initializer_failed()
                return
            self._inline_context = ctx
        while True:
            try:
                item = self._work_queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item.run(ctx)

    def submit_and_run(self, fn, /, *args, **kwargs):
        future = submit(self, fn, *args, **kwargs)
        run_submitted(self)
        return future

    submit_and_run.__doc__ = submit.__doc__
    executor.submit = submit_and_run
    executor._adjust_thread_count = lambda self: None


def _executor_shutdown_inline(module):
    """asyncio shuts its default executor down from a new thread (at the
    end of `asyncio.run`); without threads its tasks have all run when they
    were submitted, so the shutdown happens on the loop's thread."""

    async def shutdown_default_executor(self, timeout=None):
        self._executor_shutdown_called = True
        if self._default_executor is not None:
            self._default_executor.shutdown(wait=True)

    loop = module.BaseEventLoop
    shutdown_default_executor.__doc__ = loop.shutdown_default_executor.__doc__
    loop.shutdown_default_executor = shutdown_default_executor


def _process_pools_inline(module):
    """`multiprocessing.Pool` and `ThreadPool` without processes or threads:
    eryx's `_eryx_pools` runs each task when it is submitted."""
    import _eryx_pools

    module.Pool = _eryx_pools.Pool
    module.ThreadPool = _eryx_pools.ThreadPool


def _process_pool_executor_inline(module):
    """`ProcessPoolExecutor` on the inline thread pool (`_eryx_pools`)."""
    import _eryx_pools
    import concurrent.futures.thread

    module.ProcessPoolExecutor = _eryx_pools.process_pool_executor(concurrent.futures.thread)


def _threads_deferred(threading):
    """`threading.Thread.start` without threads: eryx's `_eryx_threads`
    (imported when the first thread starts) runs started threads on the
    one thread; see there.

    `threading.local` becomes `_threading_local.local` (imported when first
    named), which keys its data on `current_thread()`: `_thread._local` keys
    it on the OS thread, which every thread here shares."""

    if not hasattr(threading, "get_native_id"):
        # Imported before `_thread` had it (below): the function at least.
        threading.get_native_id = _native_thread_id

    def first_start(self):
        import _eryx_threads

        _eryx_threads.install(threading)
        return threading.Thread.start(self)

    first_start.__doc__ = threading.Thread.start.__doc__
    threading.Thread.start = first_start

    def lazy_local(name):
        if name != "local":
            raise AttributeError(f"module 'threading' has no attribute {name!r}")
        if sys._getframe(1).f_globals.get("__name__") == "asyncio.events":
            # Its `_RunningLoop` only backs the pure-Python fallback of
            # `_asyncio`, which keeps the running loop per thread state;
            # asyncio is imported at start-up, and this keeps
            # `_threading_local` out of idle sandboxes.
            return real_local
        from _threading_local import local

        threading.local = local
        return local

    real_local = threading.local

    del threading.local
    threading.__getattr__ = lazy_local


_FOREVER = (
    "deadlock: {} with nothing to wait for and no timeout would wait forever (the "
    "sandbox has no threads or signals to end it); pass a timeout"
)


def _select_without_forever(module):
    """WASI traps on a poll with no subscriptions and no timeout, which
    would lose the sandbox; `select.select([], [], [])` and a `poll()`
    object with nothing registered raise RuntimeError instead when they are
    asked to wait forever."""
    select = module.select
    poll = module.poll

    def select_(rlist, wlist, xlist, timeout=None):
        if timeout is None and not (rlist or wlist or xlist):
            raise RuntimeError(_FOREVER.format("select()"))
        return select(rlist, wlist, xlist, timeout)

    class Poll:
        __slots__ = ("_poll", "_fds")

        def __init__(self):
            self._poll = poll()
            self._fds = set()

        def register(self, fd, eventmask=module.POLLIN | module.POLLPRI | module.POLLOUT):
            self._poll.register(fd, eventmask)
            self._fds.add(fd if isinstance(fd, int) else fd.fileno())

        def modify(self, fd, eventmask):
            self._poll.modify(fd, eventmask)

        def unregister(self, fd):
            self._poll.unregister(fd)
            self._fds.discard(fd if isinstance(fd, int) else fd.fileno())

        def poll(self, timeout=None):
            if not self._fds and (timeout is None or timeout < 0):
                raise RuntimeError(_FOREVER.format("poll()"))
            return self._poll.poll(timeout)

    select_.__doc__ = select.__doc__
    Poll.__name__ = Poll.__qualname__ = "poll"
    Poll.__module__ = "select"
    module.select = select_
    module.poll = Poll


class _TZifReader:
    """The file `zoneinfo._common.load_data` reads, ending in ValueError
    where CPython 3.14.0's reader would loop forever: it reads the footer's
    TZ string one byte at a time until a newline, and a file truncated
    there gives it empty reads without end. A well-formed file never has a
    one-byte read at its end."""

    __slots__ = ("_file",)

    def __init__(self, file):
        self._file = file

    def read(self, size=-1):
        data = self._file.read(size)
        if size == 1 and not data:
            raise ValueError("Invalid TZif file: the data ends inside its footer")
        return data

    def seek(self, *args):
        return self._file.seek(*args)


def _tzif_reader_checked(module):
    """Two robustness fixes of later 3.14 releases, for CPython 3.14.0's
    TZif reader (`zoneinfo._common.load_data`, which both `zoneinfo`
    implementations call, `ZoneInfo.from_file` on any file included): a
    truncated footer made it loop forever (see `_TZifReader`), and it did
    not check that each transition's local time type index is below the
    file's count of types, so the C `_zoneinfo` read past its array (here
    the sandbox trapped). Both raise ValueError now, as in CPython 3.14.10
    (`test_zoneinfo`'s `test_bad_zones`, `test_invalid_transition_index`)."""
    load_data = module.load_data

    def checked(fobj):
        data = load_data(_TZifReader(fobj))
        trans_idx, utcoff = data[0], data[2]
        if trans_idx and max(trans_idx) >= len(utcoff):
            raise ValueError(
                "Invalid TZif file: a transition names local time type "
                f"{max(trans_idx)}, and the file has {len(utcoff)}"
            )
        return data

    checked.__name__ = checked.__qualname__ = "load_data"
    checked.__doc__ = load_data.__doc__
    module.load_data = checked


def _sqlite_readers_share(module):
    """SQLite's WASI build locks a database with a lock directory
    (`unix-dotfile`), which lets one connection at a time in: a second
    connection could not even read while a first had begun to write
    (`database is locked`, after `timeout` seconds of waiting), where on
    Linux it reads the last committed state. The runtime's `fcntl` gives
    SQLite's own `unix` VFS the record locks it needs within one process,
    and that VFS keeps a process's connections apart as Linux does; it
    cannot see other processes, so only databases in the sandbox's private
    `/tmp` (the host answers which paths those are) are opened with it.
    Elsewhere (a mount other sandboxes may share) the lock directory stays,
    and so does a `vfs=` the caller chose."""
    import functools

    connect = module.connect

    def unix_vfs(database, uri):
        import os
        from urllib.parse import quote, unquote

        name = os.fsdecode(database)
        if uri:
            if not name.startswith("file:"):
                return None
            body, hash_, fragment = name[5:].partition("#")
            path, q, query = body.partition("?")
            if "vfs=" in query or "mode=memory" in query:
                return None
            if path.startswith("//"):
                authority, _, path = path[2:].partition("/")
                if authority not in ("", "localhost"):
                    return None
                path = "/" + path
            path = unquote(path)
            new = f"file:{body}{'&' if q else '?'}vfs=unix{hash_}{fragment}"
        else:
            path = name
            new = None
        if path in ("", ":memory:"):
            return None
        path = os.path.realpath(path)
        ok, *answer = _host.call("\0private", path)
        if not ok or answer[0] != "true":
            return None
        return new or f"file:{quote(path)}?vfs=unix"

    @functools.wraps(connect)
    def sqlite_connect(database, *args, **kwargs):
        # (A caller passing `uri` positionally, as the 8th argument, is
        # left as it is.)
        if len(args) < 7:
            try:
                target = unix_vfs(database, kwargs.get("uri", False))
            except (TypeError, ValueError, OSError):
                target = None
            if target is not None:
                database = target
                kwargs["uri"] = True
        if not args:
            return connect(database, **kwargs)
        # Positional arguments make `connect` warn (deprecated in 3.14),
        # naming the frame that called it: this one. The warnings are
        # caught and issued again, those that name this frame for the
        # caller's line (a factory's own `__init__` warns for its line).
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            connection = connect(database, *args, **kwargs)
        caller = sys._getframe(1)
        for w in caught:
            if w.filename == _PRELUDE_FILE:
                where = caller.f_code.co_filename, caller.f_lineno, caller.f_globals
            else:
                where = w.filename, w.lineno, {}
            warnings.warn_explicit(
                w.message,
                w.category,
                where[0],
                where[1],
                # (As `warn` names it; `None` would drop the warning.)
                module=where[2].get("__name__") or where[0].removesuffix(".py"),
                registry=where[2].setdefault("__warningregistry__", {}),
            )
        return connection

    module.connect = sqlite_connect


def _cffi_paths_normalized(backend):
    """cffi's `ffi.dlopen(path)` with a path as the sandbox names it: the
    built-in `dlopen` finds a linked library by the exact, normalized path
    it was linked under (`/site-packages/pkg/_x.abi3.so`), so a path with
    `..` in it (pycryptodome's loader asks for
    `.../Crypto/Util/../Util/_cpuid_c.abi3.so`) or relative to the working
    directory was not found. A name without a slash is left to the search
    as before."""
    load_library = backend.load_library

    def load(path=None, *args, **kwargs):
        if isinstance(path, (str, bytes)) and (b"/" if isinstance(path, bytes) else "/") in path:
            import os

            path = os.path.abspath(path)
        return load_library(path, *args, **kwargs)

    load.__name__ = load.__qualname__ = "load_library"
    load.__doc__ = load_library.__doc__
    backend.load_library = load


def _connect_says_why(module):
    """A connection the sandbox refuses (its address not on the network
    allow-list, or no network at all) raised WASI's bare `PermissionError:
    [Errno 2] Permission denied`; it now names the address and what the
    host can do. `connect_ex` still returns the errno."""
    cls = module.socket
    connect = cls.connect

    def connect_or_say_why(self, address):
        try:
            return connect(self, address)
        except PermissionError as e:
            if not (isinstance(address, tuple) and len(address) >= 2):
                raise
            host, port = address[0], address[1]
            ok, *answer = _host.call("\0refused", f"{host} {port}")
            if ok:
                message = answer[0]
            else:
                message = (
                    f"no network in this sandbox (connecting to {host}:{port}); the host can "
                    "allow hosts (`SandboxBuilder::allow_net`, `eryx --allow-net HOST:PORT`)"
                )
            raise PermissionError(e.errno, message) from None

    init = cls.__init__

    def init_or_say_why(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except PermissionError as e:
            ok, *_ = _host.call("\0refused", "")
            if ok:
                message = (
                    "only TCP sockets are available in this sandbox (its network allows "
                    "TCP connections to the hosts on its allow-list)"
                )
            else:
                message = (
                    "no network in this sandbox (creating a socket); the host can allow "
                    "hosts (`SandboxBuilder::allow_net`, `eryx --allow-net HOST:PORT`)"
                )
            raise PermissionError(e.errno, message) from None

    def no_server(method):
        def server_or_say_why(self, *args):
            try:
                return method(self, *args)
            except PermissionError as e:
                raise PermissionError(
                    e.errno,
                    f"{method.__name__}: this sandbox cannot accept connections (no "
                    "listening sockets, no binding to an address); it connects out only, "
                    "to the hosts on its network allow-list",
                ) from None

        return server_or_say_why

    patched = [(connect_or_say_why, connect), (init_or_say_why, init)]
    patched += [(no_server(cls.bind), cls.bind), (no_server(cls.listen), cls.listen)]
    for fn, original in patched:
        fn.__name__ = original.__name__
        fn.__qualname__ = f"socket.{original.__name__}"
        fn.__doc__ = original.__doc__
        setattr(cls, original.__name__, fn)


def _dllist_of_loaded_extensions(module):
    """`ctypes.util.dllist()` (new in 3.14), which CPython defines through
    `dl_iterate_phdr` and so not for WASI: the shared libraries loaded so
    far, here the extension modules imported (the component's own libraries,
    libpython and libc, are not files). threadpoolctl lists libraries with
    it and otherwise warns "Could not find dl_iterate_phdr" on every
    scikit-learn `KMeans`."""
    if hasattr(module, "dllist"):
        return

    def dllist():
        """Return a list of loaded shared libraries in the current process."""
        seen = []
        for m in list(sys.modules.values()):
            path = getattr(m, "__file__", None)
            if isinstance(path, str) and path.endswith(".so") and path not in seen:
                seen.append(path)
        return seen

    module.dllist = dllist


class _PatchOnImport:
    """Patches a few stdlib modules when they are first imported (so that
    sessions that never use them do not pay for importing them)."""

    patches = {
        "asyncio.selector_events": lambda m: _without_self_pipe(m.BaseSelectorEventLoop),
        "asyncio.base_events": _executor_shutdown_inline,
        "concurrent.futures.thread": _thread_pool_inline,
        "concurrent.futures.process": _process_pool_executor_inline,
        "multiprocessing.pool": _process_pools_inline,
        "threading": _threads_deferred,
        "sqlite3.dbapi2": _sqlite_readers_share,
        "zoneinfo._common": _tzif_reader_checked,
        "_cffi_backend": _cffi_paths_normalized,
        "socket": _connect_says_why,
        "ctypes.util": _dllist_of_loaded_extensions,
        # Third-party, but under half the async web stack: see _eryx_anyio.
        "anyio._backends._asyncio": lambda m: __import__("_eryx_anyio").install_worker_threads(m),
        "anyio.from_thread": lambda m: __import__("_eryx_anyio").install_portals(m),
    }

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        patch = cls.patches.get(fullname)
        if patch is None:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def _native_thread_id():
    """`threading.get_native_id()`, which CPython for WASI leaves out (it
    has no threads): the sandbox runs on one OS thread, so every thread has
    one native id, as the main thread on Linux has: the process id. Code
    that names files by it (scipy's tests) or reports it runs unchanged."""
    import os

    return os.getpid()


import _thread

if not hasattr(_thread, "get_native_id"):
    # Before `threading` is imported: it then has `get_native_id` and
    # `Thread.native_id`, as on Linux.
    _thread.get_native_id = _native_thread_id
sys.meta_path.insert(0, _PatchOnImport)
if "threading" in sys.modules:
    _threads_deferred(sys.modules["threading"])
if "socket" in sys.modules:
    _connect_says_why(sys.modules["socket"])
# Built into this libpython (and imported by asyncio at start-up anyway).
import select as _select

_select_without_forever(_select)
del _select


def _lookups_by_the_host(module):
    """Name lookups go to the host. WASI's own lookup is off (a lookup of
    any name would leak data through DNS; its error read "[Errno -4]
    Non-recoverable error", what `requests`, `httpx` and `urllib` showed for
    any URL, even `127.0.0.1`): the host resolves names on the sandbox's
    network allow-list (`SandboxBuilder::allow_net`, `eryx --allow-net`),
    and says why it will not otherwise. IP literals and `None` are answered
    here, as libc does without asking a resolver. The reverse lookups
    (`gethostbyaddr`, `getnameinfo` of a name) keep WASI's error, with the
    same explanation."""

    eai_fail = getattr(module, "EAI_FAIL", -4)
    eai_noname = getattr(module, "EAI_NONAME", -2)
    services = {"http": 80, "https": 443, "ftp": 21, "ssh": 22, "smtp": 25,
                "domain": 53, "pop3": 110, "imap": 143, "ldap": 389,
                "submission": 587, "imaps": 993, "pop3s": 995, "postgresql": 5432,
                "mysql": 3306, "redis": 6379, "http-alt": 8080}
    no_network = (
        "no network in this sandbox ({}); the host can allow names "
        "(`SandboxBuilder::allow_net`, `eryx --allow-net HOST:PORT`) or offer "
        "what the code needs as host functions"
    )

    def numeric(host):
        for family in (module.AF_INET, module.AF_INET6):
            try:
                module.inet_pton(family, host)
            except (OSError, ValueError):
                continue
            return family
        return None

    def resolve(host, port, flags):
        """[(family, address)] of `host` (a str)."""
        if host is None:
            passive = flags & module.AI_PASSIVE
            return [(module.AF_INET6, "::" if passive else "::1"),
                    (module.AF_INET, "0.0.0.0" if passive else "127.0.0.1")]
        literal = host.split("%", 1)[0]
        family = numeric(literal)
        if family is not None:
            return [(family, literal)]
        if flags & module.AI_NUMERICHOST:
            raise module.gaierror(eai_noname, "Name or service not known")
        ok, *answer = _host.call("\0lookup", f"{host}\n{'' if port is None else port}")
        if not ok:
            kind, message = answer
            if kind == "no-network":
                raise module.gaierror(eai_fail, no_network.format(f"looking up {host!r}"))
            if kind == "denied":
                raise module.gaierror(eai_fail, message)
            raise module.gaierror(eai_noname, message)
        return [(module.AF_INET6 if ":" in a else module.AF_INET, a)
                for a in answer[0].split("\n") if a]

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if isinstance(host, (bytes, bytearray)):
            host = bytes(host).decode("ascii")
        elif isinstance(host, str) and not host.isascii():
            host = host.encode("idna").decode("ascii")
        elif host is not None and not isinstance(host, str):
            raise TypeError("getaddrinfo() argument 1 must be string or None")
        if isinstance(port, (bytes, bytearray)):
            port = bytes(port).decode("ascii")
        if isinstance(port, str):
            if port.isdigit():
                port = int(port)
            elif port in services:
                port = services[port]
            else:
                raise module.gaierror(getattr(module, "EAI_SERVICE", -8),
                                      "Servname not supported for ai_socktype")
        elif port is not None and not isinstance(port, int):
            raise OSError("Int or String expected")
        if family not in (0, module.AF_INET, module.AF_INET6):
            raise module.gaierror(getattr(module, "EAI_FAMILY", -6),
                                  "ai_family not supported")
        kinds = [(module.SOCK_STREAM, module.IPPROTO_TCP),
                 (module.SOCK_DGRAM, module.IPPROTO_UDP)]
        out = []
        for fam, address in resolve(host, port, flags):
            if family and fam != family:
                continue
            for kind, kind_proto in kinds:
                if (type and type != kind) or (proto and kind_proto and proto != kind_proto):
                    continue
                sockaddr = (address, port or 0) if fam == module.AF_INET else (address, port or 0, 0, 0)
                canon = host if (flags & module.AI_CANONNAME and not out) else ""
                out.append((fam, kind, proto or kind_proto, canon or "", sockaddr))
        if not out:
            raise module.gaierror(getattr(module, "EAI_ADDRFAMILY", -9),
                                  "Address family for hostname not supported")
        return out

    def gethostbyname(host):
        return getaddrinfo(host, None, module.AF_INET, module.SOCK_STREAM)[0][4][0]

    def gethostbyname_ex(host):
        found = getaddrinfo(host, None, module.AF_INET, module.SOCK_STREAM)
        return (host, [], [r[4][0] for r in found])

    def denied(lookup):
        def wrapper(*args, **kwargs):
            try:
                return lookup(*args, **kwargs)
            except OSError as e:
                what = f"looking up {args[0]!r}" if args else "a name lookup"
                raise type(e)(e.errno, no_network.format(what)) from None

        return wrapper

    socket = sys.modules.get("socket")
    for name, fn in (("getaddrinfo", getaddrinfo), ("gethostbyname", gethostbyname),
                     ("gethostbyname_ex", gethostbyname_ex),
                     ("gethostbyaddr", denied(module.gethostbyaddr)),
                     ("getnameinfo", denied(module.getnameinfo))):
        original = getattr(module, name)
        fn.__name__ = fn.__qualname__ = name
        fn.__doc__ = original.__doc__
        setattr(module, name, fn)
        # `socket` copied these from `_socket` if it was imported first
        # (its `getaddrinfo` calls `_socket`'s at each call).
        if socket is not None and getattr(socket, name, None) is original:
            setattr(socket, name, fn)


# Built in, and imported by asyncio at start-up.
import _socket

_lookups_by_the_host(_socket)


def _host_name(_socket):
    """The machine's name is `localhost`. WASI has none, and wasi-libc
    answered "(none)" (Linux's name for a host whose name was never set):
    `email.utils.make_msgid()` put it in Message-IDs (`<...@(none)>`, a
    comment where the domain belongs), and `platform.node()`,
    `socket.getfqdn()` and loggers reported it."""
    import os

    if _socket.gethostname() != "(none)":
        return
    uname = os.uname

    def os_uname():
        r = uname()
        return os.uname_result((r.sysname, "localhost", r.release, r.version, r.machine))

    def gethostname():
        return "localhost"

    for fn, original in ((os_uname, uname), (gethostname, _socket.gethostname)):
        fn.__name__ = fn.__qualname__ = original.__name__
        fn.__doc__ = original.__doc__
    os.uname = os_uname
    socket = sys.modules.get("socket")
    if socket is not None and socket.gethostname is _socket.gethostname:
        socket.gethostname = gethostname
    _socket.gethostname = gethostname


_host_name(_socket)
del _socket, _host_name


#: How many executed sources stay registered with `linecache`, so that
#: tracebacks can show the lines of recent cells.
_SOURCES_KEPT = 64

_PRELUDE_FILE = __file__
_counter = 0
#: The file names of the cells whose sources `linecache` keeps, oldest first.
_cell_names = __import__("collections").deque()


class _CaptureBuffer(io.BufferedIOBase):
    """`sys.stdout.buffer`: bytes written here are decoded (the text
    stream's encoding; bytes it cannot decode become U+FFFD, since the
    output is text) and written to the text stream, in order with it."""

    def __init__(self, text):
        self._text = text
        self._decoder = None

    def _reset_decoder(self):
        self._decoder = None

    @property
    def name(self):
        return self._text.name

    @property
    def mode(self):
        return "wb"

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        return self._text.fileno()

    def write(self, b):
        data = bytes(memoryview(b))
        if self._decoder is None:
            import codecs

            self._decoder = codecs.getincrementaldecoder(self._text.encoding)("replace")
        text = self._decoder.decode(data)
        if text:
            self._text.write(text)
        return len(data)

    def flush(self):
        pass


class _Capture(io.TextIOBase):
    """A text stream that keeps at most `limit` characters and passes what
    it keeps to the host as it is written (`fd` 1 or 2), so the host can
    show it live and still has it if the call is stopped.

    It has what code expects of `sys.stdout`: `buffer` (bytes), `fileno()`
    (the host merges what is written to the descriptor into the same
    output, in order), `name`, `reconfigure()`, `detach()`."""

    def __init__(self, fd):
        self._fd = fd
        self._encoding = "utf-8"
        self._errors = "strict"
        self.buffer = _CaptureBuffer(self)
        self._parts = []
        self._size = 0
        self._limit = 0
        self.truncated = False

    def reset(self, limit):
        """Starts a call: empty, keeping at most `limit` characters (a
        stream still empty from the last call is left as it is)."""
        if self._size or self.truncated or self._limit != limit:
            self._parts = []
            self._size = 0
            self._limit = limit
            self.truncated = False

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        return self._fd

    @property
    def name(self):
        return "<stdout>" if self._fd == 1 else "<stderr>"

    @property
    def mode(self):
        return "w"

    @property
    def encoding(self):
        return self._encoding

    @property
    def errors(self):
        return self._errors

    @property
    def line_buffering(self):
        return False

    @property
    def write_through(self):
        # What is written is passed on at once.
        return True

    def reconfigure(
        self, *, encoding=None, errors=None, newline=None, line_buffering=None, write_through=None
    ):
        """As `TextIOWrapper.reconfigure`: the encoding (checked) and errors
        handler apply to bytes written to `buffer`; text is passed on as
        it is written, so the rest has nothing to change."""
        if encoding is not None:
            import codecs

            codecs.lookup(encoding)
            self._encoding = encoding
            if errors is None:
                errors = "strict"
        if errors is not None:
            self._errors = errors
        self.buffer._reset_decoder()

    def detach(self):
        """`sys.stdout.detach()` (to wrap the bytes stream in a new
        `TextIOWrapper`): returns `buffer`. This stream keeps working, since
        it is the sandbox's output for every call."""
        return self.buffer

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        room = self._limit - self._size
        if len(s) > room:
            self.truncated = True
            s = s[:room] if room > 0 else ""
        if s:
            self._parts.append(s)
            self._size += len(s)
            _host.emit(self._fd, s)
        return len(s)

    def getvalue(self):
        return "".join(self._parts)


#: `sys.stdout` and `sys.stderr` during every call: the same two objects, so
#: a stream kept from an earlier cell (a `logging` handler, `print(file=)`)
#: still writes into the current call's output.
_STDOUT = _Capture(1)
_STDERR = _Capture(2)
# As in CPython, where they are the streams `sys.stdout` and `sys.stderr`
# start as: code that writes to them, or restores `sys.stdout =
# sys.__stdout__`, writes into the call's output.
sys.__stdout__ = _STDOUT
sys.__stderr__ = _STDERR


_SITE_PACKAGES = "/site-packages"


def _linked_extensions():
    """Module names of the native extensions linked into this sandbox (all
    extension files under /site-packages are linked when it is built)."""
    found = []
    try:
        import os

        for root, _dirs, files in os.walk(_SITE_PACKAGES):
            for f in files:
                if f.endswith(".so"):
                    rel = os.path.relpath(os.path.join(root, f), _SITE_PACKAGES)
                    found.append(rel.split(".", 1)[0].replace("/", "."))
    except OSError:
        pass
    return sorted(found)


def _not_found_hint(exc):
    """For an import that found nothing: say what this sandbox links."""
    linked = _linked_extensions()
    have = ", ".join(linked) if linked else "none"
    return (
        f"{exc}: no package of this sandbox provides it, and no native extension of that name "
        f"was linked (linked here: {have}); add it with `.package(...)` / `--package`"
    )


#: Built in advance: formatting needs memory that a MemoryError may not leave.
_NO_MEMORY_TO_DESCRIBE = {
    "type_name": "MemoryError",
    "message": "",
    "traceback": "MemoryError (the heap was too full to format the traceback)\n",
}


def _describe(exc):
    """The WIT `python-exception` record (as a dict) without the prelude's frames."""
    import traceback

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == _PRELUDE_FILE:
        tb = tb.tb_next
    try:
        message = str(exc)
        if type(exc) is ModuleNotFoundError and exc.name and "." not in exc.name:
            message = _not_found_hint(exc)
            exc.msg = message
            exc.args = (message,)
    except BaseException:
        message = "<exception str() failed>"
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except BaseException:
        text = f"{type(exc).__qualname__}: {message}\n"
    return {"type_name": type(exc).__qualname__, "message": message, "traceback": text}


def _exit_code(exc, err):
    """The exit status of a `SystemExit`, as CPython computes it; a message
    code is written to `err` (the captured stderr), as CPython prints it."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int) and not isinstance(code, bool):
        return max(-(2**31), min(code, 2**31 - 1))
    try:
        err.write(f"{code}\n")
    except BaseException:
        pass
    return 1


_loop = None


def _run_coroutine(coro):
    """Runs a coroutine of a cell with top-level `await` to completion on the
    session's event loop (made on first use, kept across cells)."""
    global _loop
    import asyncio

    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_loop)
    return _loop.run_until_complete(coro)


_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def _compile_cell(code, filename, split):
    """Compiles a cell: (statements, last), a list of code objects to run in
    order and the code of a trailing expression whose value the call
    returns, or None.

    `split` is the runtime's reading of the source (`eryx-runtime/src/
    cell.rs`): `2 * start + expression` when the cell's last statement
    begins on a line of its own at character `start`, else None. Then the
    lines before it are compiled as they are, and the statement after as
    many newlines (so tracebacks name its line), in `eval` mode if it is an
    expression. Otherwise (also for a carriage return or a `__future__`
    import, which must stay with the whole cell), and when either part does
    not compile, the cell goes through `ast`, which gives the same result at
    about twice the cost (AST objects made and read back): so syntax errors
    are reported from the whole cell.
    """
    if split is not None and "\r" not in code and "__future__" not in code:
        start, expression = divmod(split, 2)
        try:
            return _compile_split(code, filename, start, expression)
        except SyntaxError:
            pass
    tree = compile(code, filename, "exec", ast.PyCF_ONLY_AST | _FLAGS)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = compile(ast.Expression(tree.body.pop().value), filename, "eval", _FLAGS)
    return [compile(tree, filename, "exec", _FLAGS)], last


def _compile_split(code, filename, start, expression):
    """`_compile_cell` along the runtime's split; raises SyntaxError when a
    part does not compile on its own."""
    statements = []
    if start:
        head = code[:start]
        if not head.isspace():
            statements.append(compile(head, filename, "exec", _FLAGS))
        tail = "\n" * code.count("\n", 0, start) + code[start:]
    else:
        tail = code
    if expression:
        return statements, compile(tail, filename, "eval", _FLAGS)
    statements.append(compile(tail, filename, "exec", _FLAGS))
    return statements, None


#: Cells compiled before, keyed by source and split, newest last: a cell run
#: again (an embedder calling the same snippet in a loop, a notebook cell
#: run twice) reuses their code objects, given the new cell's file name,
#: instead of compiling the source again; compiling is most of what a small
#: cell costs (measured in the guest: ~45 of ~85 us for `pass`). The code
#: objects are immutable, so a reused one behaves as a fresh compile, except
#: that a `SyntaxWarning` the compiler gave (an invalid escape sequence) is
#: not given again for the same cell.
_compiled = {}
_COMPILED_KEPT = 32
#: Longer sources are not kept (the cache's memory stays small).
_COMPILED_SOURCE_MAX = 16 << 10


_CodeType = types.CodeType


def _refiled(code, filename):
    """`code` (and the code objects nested in it) with `co_filename` set."""
    consts = code.co_consts
    for c in consts:
        if type(c) is _CodeType:
            consts = tuple(
                _refiled(c, filename) if type(c) is _CodeType else c for c in consts
            )
            return code.replace(co_filename=filename, co_consts=consts)
    return code.replace(co_filename=filename)


def _compile_cached(code, filename, split):
    """`_compile_cell`, through `_compiled`."""
    key = (code, split)
    found = _compiled.pop(key, None)
    if found is None:
        found = _compile_cell(code, filename, split)
        if len(code) <= _COMPILED_SOURCE_MAX:
            if len(_compiled) >= _COMPILED_KEPT:
                del _compiled[next(iter(_compiled))]
            _compiled[key] = found
        return found
    _compiled[key] = found
    statements, last = found
    return (
        [_refiled(body, filename) for body in statements],
        None if last is None else _refiled(last, filename),
    )


def _run(code, filename, namespace, split, cell=False):
    """Compiles and runs `code`; returns the value of a trailing expression.
    A `cell` (numbered by `execute`) may reuse an earlier compile."""
    if cell:
        statements, last = _compile_cached(code, filename, split)
    else:
        statements, last = _compile_cell(code, filename, split)
    for body in statements:
        result = eval(body, namespace)
        if body.co_flags & _CO_COROUTINE:
            _run_coroutine(result)
    if last is None:
        return None
    result = eval(last, namespace)
    if last.co_flags & _CO_COROUTINE:
        result = _run_coroutine(result)
    return result


# ---- host functions ----------------------------------------------------

class HostError(Exception):
    """A call to a host function failed. `function` names it; `kind` is
    `not-found`, `arguments`, `failed`, `panicked`, `timeout`, `limit` or
    `result`."""

    def __init__(self, function, kind, message):
        super().__init__(message)
        self.function = function
        self.kind = kind


class HostFunctionNotFound(HostError, LookupError):
    """No host function of that name was given to this sandbox."""


class HostTimeout(HostError, TimeoutError):
    """The host function ran past its time limit."""


class HostLimitExceeded(HostError):
    """Too many calls, or arguments or a result too large."""


class HostValueError(HostError, TypeError):
    """Arguments or a result that are not JSON values."""


_HOST_ERRORS = {
    "not-found": HostFunctionNotFound,
    "timeout": HostTimeout,
    "limit": HostLimitExceeded,
    "arguments": HostValueError,
    "result": HostValueError,
}

#: Largest and smallest integers that cross to the host exactly.
_INT_RANGE = (-(1 << 63), (1 << 64) - 1)


def _check_json(value, path="argument"):
    """Raises TypeError unless `value` is a JSON value the host reads back
    unchanged: None, bool, int in 64 bits, finite float, str, list/tuple,
    dict with str keys."""
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
            raise TypeError(f"{path}: integers passed to the host must fit in 64 bits")
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TypeError(f"{path}: {value!r} is not a JSON number")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_json(v, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{path}: dict keys passed to the host must be str, not {type(k).__name__}")
            _check_json(v, f"{path}[{k!r}]")
        return
    raise TypeError(
        f"{path}: {type(value).__name__} cannot be passed to the host "
        "(JSON values only: None, bool, int, float, str, list, dict)"
    )


def _plain_json(value):
    """Whether `value` is made of exactly the JSON types (no subclasses)
    within `_check_json`'s limits: the fast pass over a call's arguments.
    Anything else goes through `_check_json`, which accepts it or says
    which element is wrong."""
    t = type(value)
    if t is str or t is bool or value is None:
        return True
    if t is int:
        return _INT_RANGE[0] <= value <= _INT_RANGE[1]
    if t is float:
        return value - value == 0.0  # not NaN or an infinity
    if t is list or t is tuple:
        for v in value:
            if not _plain_json(v):
                return False
        return True
    if t is dict:
        for k, v in value.items():
            if type(k) is not str or not _plain_json(v):
                return False
        return True
    return False


_codec = None


def _json_codec():
    """(encode, scan): compact JSON text of a checked value, and the C
    scanner that reads the host's JSON. Made once: `json.dumps` with
    separators builds a new encoder in every call, and `json.loads` adds
    its own layers; the two were ~12 us of a host call's ~20."""
    global _codec
    if _codec is None:
        import json
        from json import encoder

        # As `json.dumps(value, separators=(",", ":"))` does it (`_json` is
        # built into libpython), minus the circular-reference markers
        # (`_check_json` walked the value).
        chunks = encoder.c_make_encoder(
            None, json.JSONEncoder().default, encoder.encode_basestring_ascii,
            None, ":", ",", False, False, True,
        )

        def encode(value, _join="".join, _chunks=chunks):
            return _join(_chunks(value, 0))

        _codec = (encode, json.JSONDecoder().scan_once)
    return _codec


def _encode(name, args, kwargs):
    if args:
        if kwargs:
            raise TypeError(f"{name}(): pass positional or keyword arguments, not both")
        payload = list(args)
    elif kwargs:
        payload = kwargs
    else:
        return "{}"
    if not _plain_json(payload):
        _check_json(payload, f"{name}()")
    return _json_codec()[0](payload)


def _outcome(name, ok, rest):
    if ok:
        text = rest[0]
        try:
            value, end = _json_codec()[1](text, 0)
            if end == len(text):
                return value
        except (StopIteration, ValueError):
            pass
        import json

        return json.loads(text)  # says what is wrong with it
    kind, message = rest
    raise _HOST_ERRORS.get(kind, HostError)(name, kind, message)


def _call_host(name, args, kwargs):
    ok, *rest = _host.call(name, _encode(name, args, kwargs))
    return _outcome(name, ok, rest)


#: Awaited host calls still running: id -> the future awaiting it.
_awaited = {}


class _HostSelector:
    """An event loop's selector while host calls are awaited: the loop waits
    for them (their results resolve the awaiting futures) instead of for
    file descriptors, which the sandbox does not have. This is what lets
    `asyncio.gather` of host calls run them at once."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def select(self, timeout=None):
        if not _awaited:
            return self._inner.select(timeout)
        ms = -1 if timeout is None else max(0, int(timeout * 1000))
        for cid, ok, *rest in _host.wait(tuple(_awaited), ms):
            fut = _awaited.pop(cid, None)
            if fut is not None and not fut.done():
                fut.set_result((ok, rest))
        return []


async def _call_awaited(name, args, kwargs):
    payload = _encode(name, args, kwargs)
    loop = sys.modules["asyncio"].get_running_loop()
    selector = getattr(loop, "_selector", None)
    if selector is None:  # not a selector loop: call and wait
        ok, *rest = _host.call(name, payload)
        return _outcome(name, ok, rest)
    if not isinstance(selector, _HostSelector):
        loop._selector = _HostSelector(selector)
    cid = _host.start(name, payload)
    fut = loop.create_future()
    _awaited[cid] = fut
    try:
        ok, rest = await fut
    finally:
        # Cancelled: the host's task ends with the execution at the latest.
        _awaited.pop(cid, None)
    return _outcome(name, ok, rest)


class HostFunction:
    """A function of the host. Called where no asyncio event loop runs, it
    returns the result; inside a running loop it returns an awaitable
    (`await get_weather(city="Oslo")`). Keyword arguments reach the host as
    a JSON object, positional ones as a JSON array."""

    __slots__ = ("__name__",)

    def __init__(self, name):
        self.__name__ = name

    def __repr__(self):
        return f"<host function {self.__name__}>"

    def __call__(self, *args, **kwargs):
        asyncio = sys.modules.get("asyncio")
        if asyncio is not None and asyncio.events._get_running_loop() is not None:
            return self._call_async(args, kwargs)
        return _call_host(self.__name__, args, kwargs)

    def _call_async(self, args, kwargs):
        return _call_awaited(self.__name__, args, kwargs)


def _host_module():
    """The `eryx` module: the host functions by name, `call()`,
    `functions()` and the exception types."""
    mod = types.ModuleType("eryx", "Functions of the host that runs this sandbox.")
    for cls in (HostError, HostFunctionNotFound, HostTimeout, HostLimitExceeded, HostValueError):
        cls.__module__ = "eryx"
        setattr(mod, cls.__name__, cls)
    mod.HostFunction = HostFunction
    mod.call = lambda name, /, *args, **kwargs: _call_host(name, args, kwargs)
    mod.functions = lambda: list(_host.functions())
    return mod


sys.modules["eryx"] = _host_module()
_host_bound = False


def _bind_host_functions():
    """Makes each host function an attribute of `eryx` and, unless that
    would hide a Python built-in (`open`, `print`, ...) or is not a name, a
    built-in name too (once per instance: a snapshot is taken before the
    host is known)."""
    global _host_bound
    _host_bound = True
    mod = sys.modules["eryx"]
    for name in _host.functions():
        f = HostFunction(name)
        setattr(mod, name, f)
        if name.isidentifier() and not keyword.iskeyword(name) and not hasattr(builtins, name):
            setattr(builtins, name, f)
    _python_variables()


def _python_variables():
    """`PYTHONPATH`, `PYTHONWARNINGS`, `TZ` and `PWD` from the sandbox's environment
    (`SandboxBuilder::env`, `eryx -e`), which CPython's isolated start-up
    ignores (and a snapshot's start-up never saw): once per instance, at
    its first code, as `python3` applies them at start-up (the path's
    entries before the stdlib; the warning options before any `-W`)."""
    import os

    path = os.environ.get("PYTHONPATH")
    if path:
        sys.path[0:0] = [p for p in path.split(os.pathsep) if p]
    options = [o for o in os.environ.get("PYTHONWARNINGS", "").split(",") if o]
    if options:
        import warnings

        sys.warnoptions[0:0] = options
        warnings._processoptions(options)
    # The `time` module's zone attributes follow the sandbox's `TZ` (the
    # module was set up without it).
    if os.environ.get("TZ"):
        _tzset()
    # The working directory (`SandboxBuilder::working_dir`, `eryx -w`): the
    # runtime starts every instance in /tmp.
    pwd = os.environ.get("PWD")
    if pwd and pwd != os.getcwd():
        try:
            os.chdir(pwd)
        except OSError as e:
            print(
                f"eryx: cannot enter the working directory {pwd!r} ({e.strerror}); "
                f"staying in {os.getcwd()}",
                file=sys.stderr,
            )


#: The zones `TZ` has named (`None`: not one `zoneinfo` knows), and each
#: abbreviation as the `bytes` (NUL-terminated inside) whose text libc's
#: `struct tm` points at (kept for good: a `struct tm` may outlive any call).
_zones = {}
_abbreviations = {}
_zone_modules_loaded = None


def _zone_modules():
    """The C `_datetime` and `_zoneinfo` modules, imported at the first use
    of local time (not at start-up: each instance would carry them, ~0.3
    MiB measured), even while the code has swapped in the pure-Python
    `datetime` (CPython's tests run with `sys.modules["_datetime"] = None`),
    whose zones the C types refuse: `_zoneinfo` takes the C types from
    `datetime.datetime_CAPI` as it loads, so `datetime` is the C module
    while it does. The code's own `sys.modules` entries are put back."""
    global _zone_modules_loaded
    if _zone_modules_loaded is None:
        names = ("datetime", "_datetime", "_zoneinfo")
        saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
        try:
            import _datetime

            sys.modules["datetime"] = _datetime
            import _zoneinfo

            _zone_modules_loaded = _datetime, _zoneinfo
        finally:
            for n in names:
                sys.modules.pop(n, None)
            sys.modules.update(saved)
    return _zone_modules_loaded


def _local_zone():
    """The zone `TZ` names: an IANA key (`Europe/Berlin`) or, as glibc
    reads it, a POSIX rule (`EST+05EDT,M3.2.0,M11.1.0`); `None` for
    neither."""
    import os

    name = os.environ.get("TZ", "").removeprefix(":")
    if name not in _zones:
        try:
            _zones[name] = _zone_modules()[1].ZoneInfo(name)
        except Exception:
            _zones[name] = _posix_zone(name)
    return _zones[name]


def _posix_zone(rule):
    """A zone following the POSIX `TZ` rule `rule` at all times, or `None`
    if `zoneinfo` cannot read it: a TZif file (RFC 8536) without
    transitions, whose footer is the rule."""
    import io
    import struct

    # No transitions; one local time type (UTC, named "UTC"), as data
    # blocks of version 1 and 2 both.
    header = b"TZif2" + bytes(15) + struct.pack(">6l", 0, 0, 0, 0, 1, 4)
    block = header + struct.pack(">lBB", 0, 0, 0) + b"UTC\0"
    try:
        return _zone_modules()[1].ZoneInfo.from_file(io.BytesIO(block + block + b"\n" + rule.encode() + b"\n"), key=rule)
    except Exception:
        return None


def local_time(data):
    """Local time in the zone `TZ` names, for libc's `localtime_r` and
    `mktime` (the runtime's `zone_time`). `data` is a `time_t` (8 bytes) or
    a `struct tm`'s nine `int`s (year since 1900, month 0-11 and the rest
    in any range, normalised as C's `mktime` does; its DST flag picks
    between an hour that comes twice). Returns the `time_t` and the whole
    `struct tm` (with the UTC offset and the address of the abbreviation's
    text) packed as wasi-libc lays them out; `None` for a zone `zoneinfo`
    does not know or a time outside `datetime`'s range (libc then gives
    UTC)."""
    try:
        zone = _local_zone()
        if zone is None:
            return None
        import struct

        c_datetime = _zone_modules()[0]
        datetime, timedelta = c_datetime.datetime, c_datetime.timedelta

        if len(data) == 8:
            (t,) = struct.unpack("<q", data)
            dt = datetime.fromtimestamp(t, zone)
        else:
            second, minute, hour, day, month, year, _, _, isdst = struct.unpack("<9i", data)
            years, month = divmod(month, 12)
            wall = datetime(year + 1900 + years, month + 1, 1) + timedelta(
                days=day - 1, hours=hour, minutes=minute, seconds=second
            )
            dt = wall.replace(tzinfo=zone)
            later = dt.replace(fold=1)
            if isdst >= 0 and bool(dt.dst()) != bool(isdst) and bool(later.dst()) == bool(isdst):
                dt = later
            t = int(dt.timestamp())
            dt = datetime.fromtimestamp(t, zone)
        abbreviation = dt.tzname() or ""
        text = _abbreviations.setdefault(abbreviation, abbreviation.encode())
        # The address of a `bytes`' text: CPython's size of it counts the
        # header before the text, the text and its NUL.
        address = id(text) + sys.getsizeof(text) - len(text) - 1
        tm = dt.timetuple()
        return struct.pack(
            "<q10iI", t, tm.tm_sec, tm.tm_min, tm.tm_hour, tm.tm_mday, tm.tm_mon - 1,
            tm.tm_year - 1900, (tm.tm_wday + 1) % 7, tm.tm_yday - 1, 1 if dt.dst() else 0,
            int(dt.utcoffset().total_seconds()), address,
        )
    except Exception:
        return None


def _tzset():
    """`time.tzset()`, which WASI's CPython lacks: sets `time.timezone`,
    `altzone`, `daylight` and `tzname` from the zone `TZ` names now, as
    CPython does on a platform without `tzname` (from local time in January
    and July of this year). Local time itself follows `TZ` at once."""
    import time

    year = (365 * 24 + 6) * 3600
    t = int(time.time()) // year * year
    jan, jul = time.localtime(t), time.localtime(t + year // 2)
    jan_zone, jul_zone = -jan.tm_gmtoff, -jul.tm_gmtoff
    if jan_zone < jul_zone:  # the southern hemisphere: DST in January
        jan, jul, jan_zone, jul_zone = jul, jan, jul_zone, jan_zone
    time.timezone, time.altzone = jan_zone, jul_zone
    time.daylight = int(jan_zone != jul_zone)
    time.tzname = (jan.tm_zone, jul.tm_zone)


# For code that changes `TZ` (at load: part of the snapshot, not a page
# each instance copies).
__import__("time").tzset = _tzset


#: `inspect.CO_COROUTINE`: set on code compiled from top-level `await`.
_CO_COROUTINE = 0x80


def sync_environ(*entries):
    """Makes `os.environ` (and `os.environb`) the instance's environment,
    given as libc's `NAME=VALUE` entries in bytes, without calling `putenv`
    (libc has them already). Called by the runtime before the first call of
    an instance made from a pre-initialised snapshot: CPython filled the
    dict when the snapshot's Python started, with the environment of that
    start. Then it opens again the files the pre-imports left open
    (`_reattach_files`)."""
    import os

    data = os.environ._data  # the dict behind both mappings (`posix.environ`)
    data.clear()
    for entry in entries:
        name, eq, value = entry.partition(b"=")
        if eq and name not in data:  # as CPython: the first of a name wins
            data[name] = value
    if _detached:
        _reattach_files()


def execute(code, output_limit, filename=None, argv=None, split=None, exiting=False):
    """Runs `code` in `__main__`, keeping `output_limit` characters per stream.

    With `filename` the code runs as that script (`__file__`, tracebacks);
    with `argv`, `sys.argv` is set first; `split` is the runtime's reading of
    the source (see `_compile_cell`); with `exiting` (the WIT option
    `at-exit`), `at_exit` runs after the code unless it raised an exception
    other than `SystemExit`. Returns the WIT `output` record as a dict keyed
    by its field names (the runtime reads it by name, see
    `eryx-runtime/src/world.rs`).
    """
    global _counter
    namespace = __main__.__dict__
    cell = filename is None
    if cell:
        # Only the user's cells are numbered, from 1: not the empty call that
        # starts the interpreter, nor a pool's warm-up call (named).
        if code:
            _counter += 1
            filename = f"<cell-{_counter}>"
            # Only the last `_SOURCES_KEPT` cells' sources are kept.
            _cell_names.append(filename)
            if len(_cell_names) > _SOURCES_KEPT:
                linecache.cache.pop(_cell_names.popleft(), None)
        else:
            filename = f"<cell-{_counter}>"
    elif not filename.startswith("<"):
        # A script file (`<string>`, `<stdin>` are not files: as in CPython,
        # they set no `__file__`).
        namespace["__file__"] = filename
    if argv is not None:
        sys.argv = list(argv)
    # Where tracebacks find the source.
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    if code and not _host_bound:
        _bind_host_functions()
    # The host forgets the calls an earlier execution left running.
    if _awaited:
        _awaited.clear()
    out, err = _STDOUT, _STDERR
    out.reset(output_limit)
    err.reset(output_limit)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    value = None
    exception = None
    exit_code = None
    try:
        result = _run(code, filename, namespace, split, cell)
        if result is not None:
            builtins._ = result
            value = repr(result)
        threads = sys.modules.get("_eryx_threads")
        if threads is not None and threads.pending:
            threads.run_pending()
    except SystemExit as exc:
        exit_code = _exit_code(exc, err)
    except BaseException as exc:
        exiting = False
        try:
            exception = _describe(exc)
        except MemoryError:
            # The user's objects still fill the heap: report the exception
            # without formatting a traceback.
            exception = _NO_MEMORY_TO_DESCRIBE
    finally:
        if exiting:
            # An exception in a handler is printed by `atexit` itself (as in
            # CPython); one out of `at_exit` itself (no memory left, or code
            # that broke `atexit`) is reported.
            try:
                at_exit()
            except BaseException as exc:
                err.write(f"Exception ignored while exiting: {exc!r}\n")
        # A stream the code put in place (`TextIOWrapper(sys.stdout.buffer)`)
        # may hold text it has not passed on yet: CPython flushes at exit.
        if sys.stdout is not out or sys.stderr is not err:
            for stream in (sys.stdout, sys.stderr):
                if stream is not out and stream is not err:
                    try:
                        stream.flush()
                    except Exception:
                        pass
        sys.stdout, sys.stderr = saved
    return {
        "stdout": out.getvalue(),
        "stderr": err.getvalue(),
        "value": value,
        "exception": exception,
        "truncated": out.truncated or err.truncated,
        "exit_code": exit_code,
    }


def at_exit():
    """What `python3` does as it exits: `execute` with `exiting` (the WIT
    option `at-exit`: `Sandbox::run_program_streaming`) calls it after the
    code, `Sandbox::run_exit_handlers` after code that raised. It runs the
    `atexit` handlers (an exception in one is printed by `atexit` and does
    not stop the rest), then flushes the files the code left open, as
    CPython's finalisation does when it frees them. Compiled with the rest
    of the prelude, so the call compiles one line, not this function."""
    import atexit
    import gc

    atexit._run_exitfuncs()
    _flush_writers(gc.get_objects())


def _flush_writers(objects):
    """Flushes the open text and buffered writers among `objects`."""
    kinds = (io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom)
    # `type`, not `isinstance`: asking a dead `weakref.proxy` for its class
    # raises `ReferenceError` (protobuf leaves such proxies behind).
    for f in [o for o in objects if issubclass(type(o), kinds)]:
        try:
            f.closed or f.flush()
        except Exception:
            pass


def clear():
    """Empties `__main__` back to a fresh module namespace."""
    namespace = __main__.__dict__
    namespace.clear()
    namespace.update(__name__="__main__", __doc__=None, __builtins__=builtins)
    if hasattr(builtins, "_"):
        del builtins._
    _compiled.clear()


#: The version of the payload `snapshot` produces (inside the host's header).
SNAPSHOT_PAYLOAD_VERSION = 1


_pickler = None


def _session_pickler():
    """A pickler that refuses objects pickling by reference to `__main__`.

    Functions and classes defined in the session pickle as "`__main__.name`",
    which does not exist in the sandbox that restores them; refusing them
    here turns a restore-time surprise into a snapshot-time error that names
    the variable.
    """
    global _pickler
    if _pickler is None:
        import pickle

        class _SessionPickler(pickle.Pickler):
            def reducer_override(self, obj):
                if isinstance(obj, (type, types.FunctionType)) and getattr(obj, "__module__", None) == "__main__":
                    raise pickle.PicklingError(
                        f"{obj.__qualname__} is defined in the session; snapshots keep data, not code"
                    )
                return NotImplemented

        _pickler = _SessionPickler
    return _pickler


def _dumps(obj):
    buf = io.BytesIO()
    _session_pickler()(buf, protocol=5).dump(obj)
    return buf.getvalue()


def _user_names(namespace):
    for name, value in namespace.items():
        if name.startswith("__") and name.endswith("__"):
            continue
        if name == "_":
            continue
        yield name, value


def _unpicklable(name, type_name, reason):
    return {"name": name, "type_name": type_name, "reason": reason}


def snapshot(skip_unpicklable):
    """Pickles the user's names in `__main__`.

    Returns ("ok", a WIT `state-snapshot` record) or ("unpicklable", a list
    of WIT `unpicklable` records), records as dicts keyed by field name.
    """
    modules = {}
    values = {}
    for name, value in _user_names(__main__.__dict__):
        if isinstance(value, types.ModuleType):
            modules[name] = value.__name__
        else:
            values[name] = value
    skipped = []
    try:
        data = _dumps(values)
    except Exception:
        bad = []
        for name, value in values.items():
            try:
                _dumps(value)
            except Exception as exc:
                bad.append(_unpicklable(name, type(value).__qualname__, f"{type(exc).__name__}: {exc}"))
        if not bad:
            # Each value pickles alone but not together (e.g. recursion depth).
            bad.append(_unpicklable("<namespace>", "dict", "the namespace as a whole cannot be pickled"))
        if not skip_unpicklable or bad[0]["name"] == "<namespace>":
            return ("unpicklable", bad)
        for entry in bad:
            del values[entry["name"]]
            skipped.append(entry["name"])
        data = _dumps(values)
    import pickle

    payload = pickle.dumps(
        {"version": SNAPSHOT_PAYLOAD_VERSION, "modules": modules, "values": data, "skipped": skipped},
        protocol=5,
    )
    return ("ok", {"data": payload, "skipped": skipped})


def restore(payload):
    """Replaces `__main__`'s user names with a snapshot's.

    Everything is decoded and imported first; the namespace is only touched
    once that succeeded, so a bad snapshot leaves the session as it was.
    Returns None, or a message saying why the snapshot cannot be restored.
    """
    import importlib
    import pickle

    try:
        state = pickle.loads(payload)
        if not isinstance(state, dict) or state.get("version") != SNAPSHOT_PAYLOAD_VERSION:
            return "the snapshot payload has an unknown layout or version"
        new = {}
        for name, module in state["modules"].items():
            new[name] = importlib.import_module(module)
        values = pickle.loads(state["values"])
        if not isinstance(values, dict):
            return "the snapshot payload's values are not a namespace"
        new.update(values)
    except Exception as exc:
        return f"the snapshot cannot be restored: {type(exc).__name__}: {exc}"
    clear()
    __main__.__dict__.update(new)
    return None


def preimport(name):
    """Imports the module `name` while the sandbox is pre-initialised.

    A package that loads its public names lazily (PEP 562 `__getattr__`, as
    pydantic does for `BaseModel` and the rest of its API) would otherwise
    leave the work to every run: the names in its `__all__` that are not
    bound yet are looked up once here, so the snapshot has them loaded. A
    name that is also a submodule (numpy's `f2py`, `testing`) is left to be
    imported on demand, as the package meant (pre-import it by name to have
    it loaded); one whose lookup fails stays unresolved, silently. Warnings
    raised by the lookups are not shown (a deprecated alias in `__all__`).
    """
    import importlib
    import importlib.util
    import warnings

    module = importlib.import_module(name)
    names = getattr(module, "__all__", None)
    if isinstance(names, (list, tuple)):
        package = hasattr(module, "__path__")
        lazy = [n for n in names if isinstance(n, str) and n not in vars(module)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for attr in lazy:
                try:
                    if package and importlib.util.find_spec(f"{name}.{attr}") is not None:
                        continue
                    getattr(module, attr)
                except Exception:
                    pass
    # The import system remembers a finder per path entry. Imports that
    # missed the stdlib also looked in `/site-packages`, which at this point
    # is absent or another package set's (a snapshot without pre-imports of
    # the user's own is shared by every set): its entry is dropped, so each
    # sandbox looks at its own. The stdlib's stays (its listing is part of
    # what the snapshot saves).
    sys.path_importer_cache.pop(_SITE_PACKAGES, None)


#: What `_warm_up` runs: two statements, the last an expression (as the
#: runtime splits it: `2 * start + 1`), printing.
_WARM_UP = "pass\nprint(1 + 1)\n", 2 * 5 + 1


def _warm_up():
    """Runs a call as every sandbox's first one does, once, before a
    pre-initialised snapshot is taken: compiling and running a small cell
    that prints, and an import that looks along `sys.path` and misses. The
    state that first use leaves (bytecode the interpreter specialised,
    type caches, objects made once on demand) is then part of the
    snapshot instead of being made again by each sandbox, in pages each
    would copy. It leaves nothing else: a named run (not a numbered
    cell), no output kept (a limit of 0), the host's functions not bound
    (they are each sandbox's), no source in `linecache`, no finder for
    `/site-packages` (see `preimport`)."""
    global _host_bound
    import importlib.machinery

    code, split = _WARM_UP
    _host_bound = True
    try:
        execute(code, 0, "<eryx-warm-up>", None, split)
        importlib.machinery.PathFinder.find_spec("_eryx_warm_up")
    finally:
        _host_bound = False
        linecache.cache.pop("<eryx-warm-up>", None)
        sys.path_importer_cache.pop(_SITE_PACKAGES, None)


#: Files the pre-imports left open, as `(raw FileIO, path, mode, position)`:
#: closed before the snapshot and opened again in each instance made from
#: it (see `_detach_files`).
_detached = []


def _detach_files():
    """Before a pre-initialised snapshot: a file descriptor does not survive
    it. In the instances made from the snapshot its number names nothing,
    or, worse, the next file the sandbox opens (a pre-import's logging
    `FileHandler` wrote its lines into a file the sandbox's code had just
    opened). So each file object still open (descriptor above 2) is
    flushed, its position noted, and closed; `_reattach_files` opens it
    again by name (what the pre-imports wrote to `/tmp` is in every
    sandbox's `/tmp`). One opened from a bare descriptor stays closed:
    using it raises `ValueError`, not a write elsewhere; so does a SQLite
    connection to a database file."""
    import gc
    import os

    objects = gc.get_objects()
    _flush_writers(objects)
    for o in objects:
        if not issubclass(type(o), io.FileIO) or o.closed:
            continue
        try:
            fd = o.fileno()
        except Exception:
            continue
        if fd <= 2:
            continue
        name = getattr(o, "name", None)
        try:
            position = os.lseek(fd, 0, os.SEEK_CUR)
        except OSError:
            position = None
        if isinstance(name, str):
            _detached.append((o, name, o.mode, position))
        try:
            o.close()
        except OSError:
            pass
    # SQLite keeps its own descriptor, which cannot be opened again here: a
    # connection to a database file is closed (using it raises
    # `ProgrammingError`; before, it read another file as its database).
    # One to an in-memory database has none and stays as it is.
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None:
        for o in objects:
            if not issubclass(type(o), sqlite3.Connection):
                continue
            try:
                files = [row[2] for row in o.execute("pragma database_list")]
            except Exception:
                continue
            if any(files):
                try:
                    o.close()
                except Exception:
                    pass


def _reattach_files():
    """In an instance made from a pre-initialised snapshot, before its first
    call: opens again what `_detach_files` closed (same object, path, mode
    and position; append mode appends). A file that is gone stays closed."""
    import os

    for raw, name, mode, position in _detached:
        if "+" in mode:
            flags = os.O_RDWR
        elif mode.startswith("r"):
            flags = os.O_RDONLY
        else:
            flags = os.O_WRONLY
        if mode.startswith("a"):
            flags |= os.O_APPEND
        try:
            fd = os.open(name, flags)
        except OSError:
            continue
        try:
            # A closed FileIO may be initialised again; given a descriptor,
            # "w" does not truncate.
            raw.__init__(fd, mode, closefd=True)
            raw.name = name
            if position is not None and not mode.startswith("a"):
                os.lseek(fd, position, os.SEEK_SET)
        except Exception:
            os.close(fd)
    _detached.clear()


def settle(reachable):
    """`gc.collect(); gc.freeze()` at the end of start-up (see the runtime's
    `freeze_startup_objects`). With `reachable` (when pre-initialising),
    `_warm_up` runs first, and it returns a tuple of every
    object reachable from the collector's objects (found through
    `gc.get_referents`: modules, functions, code, types, dicts and the
    strings, numbers and tuples they hold), which the runtime then makes
    immortal; it is not among them itself."""
    import gc

    if reachable:
        _warm_up()
        _detach_files()
    gc.collect()
    found = None
    if reachable:
        # Breadth first, `found` its own work list: each object is listed
        # once (what is allocated here stays in the snapshot's heap).
        found = gc.get_objects()
        seen = set(map(id, found))
        i = 0
        while i < len(found):
            for obj in gc.get_referents(found[i]):
                key = id(obj)
                if key not in seen:
                    seen.add(key)
                    found.append(obj)
            i += 1
        del seen
        found = tuple(found)
    gc.freeze()
    return found
