"""Memory-mapped file objects, for the eryx sandbox.

The WASI build of CPython has no `mmap` module: WASI cannot map files into
memory. pandas, `numpy.memmap` and many file-format readers import it, so
eryx provides this one, with CPython's interface, over a copy:

- A map of a file holds the mapped range in guest memory, read with
  `os.pread` when the map is made. Reads never see later changes made to the
  file by other means.
- A writable shared map (`ACCESS_WRITE`, or `MAP_SHARED` with `PROT_WRITE`)
  writes every change made through its methods straight to the file with
  `os.pwrite`, and writes the whole range back on `flush()` and `close()`
  (changes made through an exported buffer, e.g. a numpy array over it,
  reach the file then).
- WASI has no `dup()`: a map opens its file again by the path of the Python
  file object whose descriptor it was given, so the file may be closed
  before the map (as with CPython). A descriptor from `os.open` has no such
  object: the map then writes through that descriptor, which must stay open
  until the map is closed (a write after it was closed raises `ValueError`
  saying so).
- `ACCESS_COPY` / `MAP_PRIVATE` maps and anonymous maps (`fileno=-1`) are
  private memory.
"""

import errno as _errno
import operator as _operator
import os as _os
import sys as _sys

__all__ = [
    "mmap",
    "error",
    "PAGESIZE",
    "ALLOCATIONGRANULARITY",
    "ACCESS_DEFAULT",
    "ACCESS_READ",
    "ACCESS_WRITE",
    "ACCESS_COPY",
    "MAP_SHARED",
    "MAP_PRIVATE",
    "MAP_ANON",
    "MAP_ANONYMOUS",
    "PROT_READ",
    "PROT_WRITE",
    "PROT_EXEC",
]

error = OSError

ACCESS_DEFAULT = 0
ACCESS_READ = 1
ACCESS_WRITE = 2
ACCESS_COPY = 3

# Linux's values (what CPython's constants are on the platforms code is
# written for).
PROT_READ = 1
PROT_WRITE = 2
PROT_EXEC = 4
MAP_SHARED = 1
MAP_PRIVATE = 2
MAP_ANONYMOUS = MAP_ANON = 0x20

MADV_NORMAL = 0
MADV_RANDOM = 1
MADV_SEQUENTIAL = 2
MADV_WILLNEED = 3
MADV_DONTNEED = 4


def _page_size():
    try:
        return _os.sysconf("SC_PAGESIZE")
    except (AttributeError, ValueError, OSError):
        return 65536


PAGESIZE = ALLOCATIONGRANULARITY = _page_size()

_CLOSED_FD = (
    "mmap: the file descriptor this map was made from was closed or reused; WASI has no dup() "
    "and it has no Python file object to reopen the file by (it came from os.open), so keep it "
    "open until the map is closed (or map it with access=ACCESS_COPY)"
)


def _dup(fd, file_id, write):
    """A descriptor of the file open as `fd` that the map owns, as CPython's
    `dup()` gives it: WASI has no `dup`, so the file is opened again by the
    path of the Python file object that holds `fd` (found among the live
    objects). Without one (a descriptor from `os.open`, or a file renamed
    since), `fd` itself, not owned: then it must stay open."""
    import gc
    import io

    for obj in gc.get_objects():
        if not isinstance(obj, io.FileIO):
            continue
        try:
            if obj.closed or obj.fileno() != fd or not isinstance(obj.name, (str, bytes)):
                continue
            path = _os.path.abspath(obj.name)
            own = _os.open(path, _os.O_RDWR if write else _os.O_RDONLY)
        except (OSError, ValueError):
            continue
        try:
            st = _os.fstat(own)
        except OSError:
            st = None
        if st is not None and (st.st_dev, st.st_ino) == file_id:
            return own, True
        _os.close(own)
    return fd, False


def _index(value, what=None):
    return _operator.index(value)


def _absolute(start, stop, step):
    """A slice of what `slice.indices` gave that means the same when applied
    again (`indices` uses -1 for "before index 0", which a slice reads as
    "the last")."""
    r = range(start, stop, step)
    if not r:
        return slice(0, 0, 1)
    end = r[-1] + (1 if step > 0 else -1)
    return slice(r[0], end if end >= 0 else None, step)


class mmap:
    """mmap(fileno, length[, flags[, prot[, access[, offset[, trackfd]]]]])

    Maps `length` bytes of the file open as `fileno` (all of it from
    `offset` when `length` is 0), or anonymous memory when `fileno` is -1.
    See the module's documentation for how the sandbox's maps relate to
    their files."""

    def __new__(
        cls,
        fileno,
        length,
        flags=MAP_SHARED,
        prot=PROT_WRITE | PROT_READ,
        access=ACCESS_DEFAULT,
        offset=0,
        *,
        trackfd=True,
    ):
        # All of it in `__new__`, as CPython's type does it (subclasses
        # call `mmap.__new__(cls, -1, ...)`).
        self = object.__new__(cls)
        self._buf = None
        fileno = _index(fileno, "fileno")
        length = _index(length, "length")
        offset = _index(offset, "offset")
        if length < 0:
            raise OverflowError("memory mapped length must be positive")
        if offset < 0:
            raise OverflowError("memory mapped offset must be positive")
        if length > _sys.maxsize:
            raise OverflowError("Python int too large to convert to C ssize_t")
        if access != ACCESS_DEFAULT and (
            flags != MAP_SHARED or prot != (PROT_WRITE | PROT_READ)
        ):
            raise ValueError("mmap can't specify both access and flags, prot.")
        if access not in (ACCESS_DEFAULT, ACCESS_READ, ACCESS_WRITE, ACCESS_COPY):
            raise ValueError("mmap invalid access parameter.")
        # `_access` is what was asked for (repr, resize); `_mode` what the
        # memory does: read-only, private copy, or shared with the file.
        mode = access
        if access == ACCESS_DEFAULT:
            if not prot & PROT_WRITE:
                mode = ACCESS_READ
            elif flags & MAP_PRIVATE:
                mode = ACCESS_COPY
            else:
                mode = ACCESS_WRITE
        if offset % ALLOCATIONGRANULARITY:
            raise OSError(_errno.EINVAL, "Invalid argument")
        self._access = access
        self._mode = mode
        self._offset = offset
        self._fd = -1
        self._own_fd = False
        self._file_id = None
        self._exports = 0
        self._pos = 0
        self._trackfd = trackfd
        self._anonymous = fileno == -1 or bool(flags & MAP_ANONYMOUS)
        if self._anonymous:
            if length == 0:
                raise OSError(_errno.EINVAL, "Invalid argument")
            self._buf = bytearray(length)
            return self
        st = _os.fstat(fileno)
        size = st.st_size
        if length == 0:
            if size == 0:
                raise ValueError("cannot mmap an empty file")
            if offset >= size:
                raise ValueError("mmap offset is greater than file size")
            if size - offset > _sys.maxsize:
                raise ValueError("mmap length is too large")
            length = size - offset
        elif offset > size or size - offset < length:
            raise ValueError("mmap length is greater than file size")
        data = bytearray()
        while len(data) < length:
            chunk = _os.pread(fileno, min(length - len(data), 1 << 24), offset + len(data))
            if not chunk:
                break
            data += chunk
        data.extend(bytes(length - len(data)))
        self._buf = data
        if mode == ACCESS_WRITE or trackfd:
            self._file_id = (st.st_dev, st.st_ino)
            self._fd, self._own_fd = _dup(fileno, self._file_id, mode == ACCESS_WRITE)
        return self

    # -- state -------------------------------------------------------------

    @property
    def closed(self):
        return self._buf is None

    def _data(self):
        if self._buf is None:
            raise ValueError("mmap closed or invalid")
        return self._buf

    def _writable(self):
        buf = self._data()
        if self._mode == ACCESS_READ:
            raise TypeError("mmap can't modify a readonly memory map.")
        return buf

    def _shared(self):
        return self._mode == ACCESS_WRITE and self._fd >= 0

    def _check_fd(self):
        try:
            st = _os.fstat(self._fd)
        except OSError:
            raise ValueError(_CLOSED_FD) from None
        if (st.st_dev, st.st_ino) != self._file_id:
            raise ValueError(_CLOSED_FD)

    def _write_through(self, start, end):
        """Writes `[start, end)` of the map to its file (shared maps)."""
        if not self._shared() or start >= end:
            return
        self._check_fd()
        view = memoryview(self._buf)[start:end]
        try:
            done = 0
            while done < len(view):
                done += _os.pwrite(self._fd, view[done:], self._offset + start + done)
        finally:
            view.release()

    # -- the sequence and buffer protocols -------------------------------

    def __len__(self):
        return len(self._data())

    def __getitem__(self, key):
        # Indices are converted first: their `__index__` may close the map.
        if isinstance(key, slice):
            indices = key.indices(len(self._data()))
            return bytes(self._data()[_absolute(*indices)])
        i = _index(key, "mmap indices")
        buf = self._data()
        if i < 0:
            i += len(buf)
        if not 0 <= i < len(buf):
            raise IndexError("mmap index out of range")
        return buf[i]

    def __setitem__(self, key, value):
        self._writable()
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self._data()))
            if isinstance(value, int):
                raise TypeError("mmap slice assignment must be bytes")
            data = memoryview(value).cast("B")
            # Converting may have run code that closed or resized the map.
            buf = self._writable()
            touched = range(*_absolute(start, stop, step).indices(len(buf)))
            if len(data) != len(touched):
                raise IndexError("mmap slice assignment is wrong size")
            buf[_absolute(touched.start, touched.stop, touched.step)] = data
            if touched:
                lo, hi = min(touched[0], touched[-1]), max(touched[0], touched[-1]) + 1
                self._write_through(lo, hi)
            return
        i = _index(key, "mmap indices")
        if isinstance(value, (bytes, bytearray, str)) or not hasattr(value, "__index__"):
            raise TypeError("mmap item value must be an int")
        value = value.__index__()
        buf = self._writable()
        if i < 0:
            i += len(buf)
        if not 0 <= i < len(buf):
            raise IndexError("mmap index out of range")
        if not 0 <= value <= 255:
            raise ValueError("mmap item value must be in range(0, 256)")
        buf[i] = value
        self._write_through(i, i + 1)

    def __delitem__(self, key):
        raise TypeError("mmap object doesn't support item deletion")

    def __buffer__(self, flags):
        view = memoryview(self._data())
        if self._mode == ACCESS_READ:
            view = view.toreadonly()
        self._exports += 1
        return view

    def __release_buffer__(self, view):
        self._exports -= 1
        view.release()

    def __iter__(self):
        buf = self._data()
        for i in range(len(buf)):
            yield bytes((buf[i],))

    def __enter__(self):
        self._data()
        return self

    def __exit__(self, *exc):
        self.close()

    def __reduce__(self):
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")

    def __repr__(self):
        name = type(self).__module__ + "." + type(self).__qualname__
        if self._buf is None:
            return f"<{name} closed=True>"
        access = ("ACCESS_DEFAULT", "ACCESS_READ", "ACCESS_WRITE", "ACCESS_COPY")[self._access]
        return (
            f"<{name} closed=False, access={access}, length={len(self._buf)}, "
            f"pos={self._pos}, offset={self._offset}>"
        )

    # -- file-like methods -----------------------------------------------

    def close(self):
        """Closes the map; a shared map's contents are written back first."""
        if self._buf is None:
            return
        if self._exports:
            raise BufferError("cannot close exported pointers exist")
        try:
            if self._shared():
                self._write_through(0, len(self._buf))
        finally:
            self._buf = None
            if self._own_fd:
                self._own_fd = False
                try:
                    _os.close(self._fd)
                except OSError:
                    pass

    def flush(self, offset=0, size=None):
        """Writes `size` bytes from `offset` (all by default) back to the file."""
        buf = self._data()
        offset = _index(offset, "offset")
        size = len(buf) - offset if size is None else _index(size, "size")
        if offset < 0 or size < 0 or offset + size > len(buf):
            raise ValueError("flush values out of range")
        if self._mode in (ACCESS_READ, ACCESS_COPY):
            return None
        self._write_through(offset, offset + size)
        return None

    def madvise(self, option, start=0, length=None):
        """Accepted and ignored (the map is ordinary memory)."""
        start = _index(start, "start")
        length = None if length is None else _index(length, "length")
        buf = self._data()
        if not 0 <= start < len(buf):
            raise ValueError("madvise start out of bounds")
        if length is not None and length < 0:
            raise ValueError("madvise length invalid")
        if length is not None and start + length > _sys.maxsize:
            raise OverflowError("madvise length too large")
        return None

    def move(self, dest, src, count):
        """Copies `count` bytes from `src` to `dest` within the map."""
        dest, src, count = (_index(v, "arguments") for v in (dest, src, count))
        buf = self._writable()
        if min(dest, src, count) < 0 or max(dest, src) + count > len(buf):
            raise ValueError("source, destination, or count out of range")
        buf[dest : dest + count] = buf[src : src + count]
        self._write_through(dest, dest + count)

    def read(self, n=None):
        """Up to `n` bytes (all that remain by default) from the position."""
        n = None if n is None else _index(n, "n")
        buf = self._data()
        remaining = max(len(buf) - self._pos, 0)
        n = remaining if n is None or n < 0 else min(n, remaining)
        data = bytes(buf[self._pos : self._pos + n])
        self._pos += n
        return data

    def read_byte(self):
        buf = self._data()
        if self._pos >= len(buf):
            raise ValueError("read byte out of range")
        self._pos += 1
        return buf[self._pos - 1]

    def readline(self):
        buf = self._data()
        end = buf.find(b"\n", self._pos)
        end = len(buf) if end < 0 else end + 1
        data = bytes(buf[self._pos : end])
        self._pos = max(end, self._pos)
        return data

    def write(self, data):
        """Writes `data` at the position; returns the number of bytes."""
        buf = self._writable()
        data = memoryview(data).cast("B")
        if self._pos > len(buf) or len(buf) - self._pos < len(data):
            raise ValueError("data out of range")
        start = self._pos
        buf[start : start + len(data)] = data
        self._pos += len(data)
        self._write_through(start, start + len(data))
        return len(data)

    def write_byte(self, byte):
        byte = _index(byte, "byte")
        buf = self._writable()
        if self._pos >= len(buf):
            raise ValueError("write byte out of range")
        buf[self._pos] = byte
        self._pos += 1
        self._write_through(self._pos - 1, self._pos)

    def seek(self, pos, whence=0):
        buf = self._data()
        pos = _index(pos, "pos")
        if whence == 0:
            where = pos
        elif whence == 1:
            where = self._pos + pos
        elif whence == 2:
            where = len(buf) + pos
        else:
            raise ValueError("unknown seek type")
        if not 0 <= where <= len(buf):
            raise ValueError("seek out of range")
        self._pos = where
        return where

    def seekable(self):
        return True

    def tell(self):
        self._data()
        return self._pos

    def _bounds(self, start, end):
        start = None if start is None else _index(start, "start")
        end = None if end is None else _index(end, "end")
        n = len(self._data())
        start = self._pos if start is None else start
        end = n if end is None else end
        if start < 0:
            start = max(start + n, 0)
        if end < 0:
            end = max(end + n, 0)
        return min(start, n), min(end, n)

    def find(self, sub, start=None, end=None):
        start, end = self._bounds(start, end)
        return self._buf.find(sub, start, end)

    def rfind(self, sub, start=None, end=None):
        start, end = self._bounds(start, end)
        return self._buf.rfind(sub, start, end)

    def size(self):
        """The size of the mapped file (of the map, for an anonymous one)."""
        buf = self._data()
        if not self._trackfd:
            raise OSError(_errno.EBADF, "Bad file descriptor (the map was made with trackfd=False)")
        if self._anonymous:
            return len(buf)
        self._check_fd()
        return _os.fstat(self._fd).st_size

    def resize(self, newsize):
        """Changes the map's length (and a shared map's file, to match)."""
        buf = self._data()
        newsize = _index(newsize, "new size")
        if self._access in (ACCESS_READ, ACCESS_COPY):
            raise TypeError("mmap can't resize a readonly or copy-on-write memory map.")
        if not self._trackfd:
            raise ValueError("mmap can't resize with trackfd=False.")
        if newsize < 0:
            raise ValueError("new size out of range")
        if self._exports:
            raise BufferError("mmap can't resize with extant buffers exported.")
        if not self._anonymous:
            self._check_fd()
            _os.ftruncate(self._fd, self._offset + newsize)
        if newsize < len(buf):
            del buf[newsize:]
        else:
            buf.extend(bytes(newsize - len(buf)))
        self._pos = min(self._pos, newsize)

    def __del__(self):
        if getattr(self, "_buf", None) is not None and not self._exports:
            try:
                self.close()
            except Exception:
                pass
