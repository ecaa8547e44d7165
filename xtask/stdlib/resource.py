"""Resource usage and limits of the eryx sandbox.

The WASI build of CPython has no `resource` (WASI has no rlimits). The
sandbox is one process with one memory, and the host enforces its memory
limit; this module reports and sets that limit:

- `RLIMIT_AS` and `RLIMIT_DATA` start at the embedder's memory limit
  (`SandboxBuilder::memory_limit`, `eryx --memory`), soft and hard. Lowering
  either is enforced by the host: growing memory past the lower soft limit
  fails (CPython raises MemoryError). A hard limit can be lowered, never
  raised, and no limit can go above the embedder's.
- The other limits start unlimited (`RLIM_INFINITY`) and keep what is set
  (with the same soft/hard rules) without enforcing it: the host's time
  limit stands in for `RLIMIT_CPU`, and there are no processes, core files
  or signals.
- `getrusage(RUSAGE_SELF)`: `ru_utime` is the sandbox's CPU clock
  (`time.process_time()`), `ru_maxrss` the size of its memory in KiB (wasm
  memory never shrinks, so its size is its peak); the counters WASI cannot
  see are 0. `RUSAGE_CHILDREN` is all zeros (no children).
"""

import time as _time
from collections import namedtuple as _namedtuple

import _host

__all__ = [
    "error",
    "getpagesize",
    "getrlimit",
    "getrusage",
    "setrlimit",
    "struct_rusage",
]

error = OSError

RLIM_INFINITY = -1

# Linux's numbering, which code written for Linux may have hard-coded.
RLIMIT_CPU = 0
RLIMIT_FSIZE = 1
RLIMIT_DATA = 2
RLIMIT_STACK = 3
RLIMIT_CORE = 4
RLIMIT_RSS = 5
RLIMIT_NPROC = 6
RLIMIT_NOFILE = 7
RLIMIT_OFILE = RLIMIT_NOFILE
RLIMIT_MEMLOCK = 8
RLIMIT_AS = 9
RLIMIT_LOCKS = 10
RLIMIT_SIGPENDING = 11
RLIMIT_MSGQUEUE = 12
RLIMIT_NICE = 13
RLIMIT_RTPRIO = 14
RLIMIT_RTTIME = 15
_RESOURCES = range(16)
_MEMORY = (RLIMIT_AS, RLIMIT_DATA)

RUSAGE_SELF = 0
RUSAGE_CHILDREN = -1
RUSAGE_THREAD = 1


class struct_rusage(
    _namedtuple(
        "struct_rusage",
        "ru_utime ru_stime ru_maxrss ru_ixrss ru_idrss ru_isrss ru_minflt ru_majflt "
        "ru_nswap ru_inblock ru_oublock ru_msgsnd ru_msgrcv ru_nsignals ru_nvcsw ru_nivcsw",
    )
):
    """Resource usage, as `getrusage` returns it."""

    __slots__ = ()
    n_sequence_fields = n_fields = 16
    n_unnamed_fields = 0


# resource -> [soft, hard]; memory limits are read from the host when first
# asked for (not at import: a snapshot may import this module).
_limits = {}


def _current(resource):
    if resource not in _limits:
        if resource in _MEMORY:
            limit = _host.memory()[0]
            _limits[resource] = [limit, limit]
        else:
            _limits[resource] = [RLIM_INFINITY, RLIM_INFINITY]
    return _limits[resource]


def _check_resource(resource):
    if not isinstance(resource, int):
        raise TypeError(f"'{type(resource).__name__}' object cannot be interpreted as an integer")
    if not -(1 << 31) <= resource < (1 << 31):
        raise OverflowError("Python int too large to convert to C int")
    if resource not in _RESOURCES:
        raise ValueError("invalid resource specified")


def getrlimit(resource, /):
    """The (soft, hard) limits of `resource`."""
    _check_resource(resource)
    return tuple(_current(resource))


def _above(a, b):
    """Whether limit `a` is above limit `b` (RLIM_INFINITY above all)."""
    if a == RLIM_INFINITY:
        return b != RLIM_INFINITY
    return b != RLIM_INFINITY and a > b


def setrlimit(resource, limits, /):
    """Sets the (soft, hard) limits of `resource`."""
    _check_resource(resource)
    limits = tuple(limits)
    if len(limits) != 2:
        raise ValueError("expected a tuple of 2 integers")
    soft, hard = limits
    for value in (soft, hard):
        if not isinstance(value, int):
            raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
        if value < RLIM_INFINITY:
            raise ValueError("Cannot convert negative int")
        if value >= 1 << 64:
            raise OverflowError("Python int too large to convert to C unsigned long long")
    current = _current(resource)
    if _above(soft, hard):
        raise ValueError("current limit exceeds maximum limit")
    if _above(hard, current[1]):
        raise ValueError("not allowed to raise maximum limit")
    current[0], current[1] = soft, hard
    if resource in _MEMORY:
        softs = [_current(r)[0] for r in _MEMORY]
        finite = [s for s in softs if s != RLIM_INFINITY]
        # Unlimited here means the embedder's limit, which always applies.
        _host.memory(min(finite) if finite else 1 << 62)


def getrusage(who, /):
    """Resource usage of the sandbox (`RUSAGE_SELF`) or of its children."""
    if who in (RUSAGE_SELF, RUSAGE_THREAD):
        size = _host.memory()[1]
        return struct_rusage(_time.process_time(), 0.0, size // 1024, *([0] * 13))
    if who == RUSAGE_CHILDREN:
        return struct_rusage(0.0, 0.0, *([0] * 14))
    raise ValueError("invalid who parameter")


def getpagesize():
    """The size of a page of the sandbox's memory (a WebAssembly page)."""
    return 65536
