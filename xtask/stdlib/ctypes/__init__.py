"""C data types for Python code in the eryx sandbox.

CPython's own `ctypes` stands on `_ctypes`, a C module built on libffi,
which has no WASI port: the sandbox's CPython has no `_ctypes`, so `import
ctypes` failed, and with it packages that use ctypes only for C type sizes
or structured binary data (sympy reads `sizeof(c_long)` at import).

This is eryx's `ctypes`, written for the sandbox (it replaces the stdlib's
package `__init__` in the bundle): the C data types with wasm32's sizes and
alignments (ILP32: `c_int`, `c_long`, `c_size_t` and pointers are 4 bytes,
`c_longdouble` 16), structures and unions (bit fields, `_pack_`, `_align_`,
`_anonymous_`, big-endian variants), arrays, pointers, `sizeof`,
`alignment`, `byref`, `addressof`, `cast`, `memmove`, `memset`,
`string_at`, `from_buffer`. Addresses are those of a simulated address
space holding only the memory of ctypes objects; an address outside it
raises ValueError. Function pointer types wrap Python callables.

What it cannot have is foreign code: loading a shared library (`CDLL`,
`cdll.NAME`) or calling a function pointer that is not a Python callable
raises OSError saying so; a function looked up by name (in `CDLL(None)`,
`pythonapi`, or as `FUNCTYPE(...)((name, library))`) is not found
(AttributeError, as for a symbol a library lacks).
"""

import math as _math
import struct as _struct
import weakref as _weakref
from bisect import bisect_right as _bisect_right

__version__ = "1.1.0"

RTLD_LOCAL = 0
RTLD_GLOBAL = 256
DEFAULT_MODE = RTLD_LOCAL
SIZEOF_TIME_T = 8

_PTR = 4  # wasm32
_NOTHING = object()


class ArgumentError(Exception):
    """An argument that could not be converted for a function call."""


def _no_foreign_code(what):
    return OSError(
        f"{what}: not available in the eryx sandbox. Its ctypes has the C data "
        "types but no foreign code: CPython for WASI cannot load shared libraries "
        "or call C functions (there is no libffi for WASI). Link a native "
        "extension into the sandbox instead."
    )


# --- memory and the simulated address space ------------------------------


class _Memory:
    """A block of memory: what one ctypes object owns, shared by the views
    of its fields and elements. `refs` keeps the Python objects its pointer
    slots refer to alive, by offset."""

    __slots__ = ("data", "base_", "refs", "keep", "__weakref__")

    def __init__(self, data):
        self.data = data
        self.base_ = None
        self.refs = {}
        self.keep = None

    @property
    def base(self):
        if self.base_ is None:
            self.base_ = _space.allocate(self)
        return self.base_


class _Space:
    """Addresses for blocks, given out on first use, in increasing order
    with a gap between blocks (one past the end is nobody's)."""

    def __init__(self):
        self.bases = []
        self.blocks = {}
        self.next = 0x10000

    def allocate(self, mem):
        base = self.next
        end = base + max(len(mem.data), 1)
        if end >= 1 << 32:
            raise MemoryError("ctypes: the simulated 4 GiB address space is used up")
        self.next = (end + 16 + 15) & ~15
        self.bases.append(base)
        self.blocks[base] = _weakref.ref(mem, lambda _, b=base: self.blocks.pop(b, None))
        return base

    def find(self, address, size):
        if not isinstance(address, int):
            raise TypeError(f"an address must be an int, not {type(address).__name__}")
        i = _bisect_right(self.bases, address) - 1
        if i >= 0:
            base = self.bases[i]
            ref = self.blocks.get(base)
            mem = ref() if ref is not None else None
            if mem is not None and mem.base_ == base and address + size <= base + len(mem.data):
                return mem, address - base
        raise ValueError(
            f"ctypes: no ctypes object's memory at address {address:#x} ({size} bytes): "
            "in the eryx sandbox, addresses are those of ctypes objects only"
        )


_space = _Space()


def _u32(mem, off):
    return int.from_bytes(mem.data[off : off + _PTR], "little")


def _put_u32(mem, off, value):
    mem.data[off : off + _PTR] = (value & 0xFFFFFFFF).to_bytes(_PTR, "little")


def _c_string(mem, off, unit):
    """The NUL-terminated string at `off` (bytes, `unit` bytes per char)."""
    data = mem.data
    end = off
    while end + unit <= len(data) and any(data[end : end + unit]):
        end += unit
    return bytes(data[off:end])


def _new_block(raw):
    return _Memory(bytearray(raw))


# --- codecs of the simple types --------------------------------------------


def _int_codec(size, signed):
    mask = (1 << (8 * size)) - 1

    def get(mem, off, order):
        return int.from_bytes(mem.data[off : off + size], order, signed=signed)

    def put(mem, off, value, order):
        if isinstance(value, float) or not hasattr(value, "__index__"):
            raise TypeError(f"int expected instead of {type(value).__name__}")
        mem.data[off : off + size] = (value.__index__() & mask).to_bytes(size, order)

    return size, size, get, put


def _float_codec(size, fmt):
    def get(mem, off, order):
        return _struct.unpack_from(("<" if order == "little" else ">") + fmt, mem.data, off)[0]

    def put(mem, off, value, order):
        if not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
            raise TypeError(f"must be real number, not {type(value).__name__}")
        _struct.pack_into(("<" if order == "little" else ">") + fmt, mem.data, off, float(value))

    return size, size, get, put


def _quad_bytes(x, order):
    """A float as IEEE binary128 (wasm32's long double)."""
    bits = _struct.unpack("<Q", _struct.pack("<d", x))[0]
    sign, exp, frac = bits >> 63, (bits >> 52) & 0x7FF, bits & ((1 << 52) - 1)
    if exp == 0x7FF:
        e, f = 0x7FFF, frac << 60
    elif exp == 0 and frac == 0:
        e, f = 0, 0
    elif exp == 0:
        top = frac.bit_length() - 1
        e, f = top - 1074 + 16383, (frac << (112 - top)) & ((1 << 112) - 1)
    else:
        e, f = exp - 1023 + 16383, frac << 60
    return ((sign << 127) | (e << 112) | f).to_bytes(16, order)


def _quad_value(raw, order):
    bits = int.from_bytes(raw, order)
    sign, e, f = bits >> 127, (bits >> 112) & 0x7FFF, bits & ((1 << 112) - 1)
    if e == 0x7FFF:
        v = _math.nan if f else _math.inf
    elif e == 0:
        v = _math.ldexp(f, 1 - 16383 - 112)
    else:
        v = _math.ldexp((1 << 112) | f, e - 16383 - 112)
    return -v if sign else v


def _longdouble_codec():
    def get(mem, off, order):
        return _quad_value(mem.data[off : off + 16], order)

    def put(mem, off, value, order):
        if not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
            raise TypeError(f"must be real number, not {type(value).__name__}")
        mem.data[off : off + 16] = _quad_bytes(float(value), order)

    return 16, 16, get, put


def _bool_codec():
    def get(mem, off, order):
        return bool(mem.data[off])

    def put(mem, off, value, order):
        mem.data[off] = 1 if value else 0

    return 1, 1, get, put


def _char_codec():
    def get(mem, off, order):
        return bytes([mem.data[off]])

    def put(mem, off, value, order):
        if isinstance(value, (bytes, bytearray)) and len(value) == 1:
            mem.data[off] = value[0]
        elif isinstance(value, int) and 0 <= value < 256:
            mem.data[off] = value
        else:
            raise TypeError("one character bytes, bytearray or integer expected")

    return 1, 1, get, put


def _wchar_codec():
    def get(mem, off, order):
        return chr(int.from_bytes(mem.data[off : off + 4], order))

    def put(mem, off, value, order):
        if not isinstance(value, str) or len(value) != 1:
            raise TypeError("one character unicode string expected")
        mem.data[off : off + 4] = ord(value).to_bytes(4, order)

    return 4, 4, get, put


def _void_p_codec():
    def get(mem, off, order):
        return _u32(mem, off) or None

    def put(mem, off, value, order):
        if not _put_pointer(mem, off, value, (bytes, str)):
            raise TypeError(f"cannot be converted to pointer: {type(value).__name__}")

    return _PTR, _PTR, get, put


def _put_pointer(mem, off, value, strings):
    """Stores None, an int address or a copy of a string of the `strings`
    types at `off`; False for anything else."""
    mem.refs.pop(off, None)
    if value is None:
        _put_u32(mem, off, 0)
    elif isinstance(value, int):
        _put_u32(mem, off, value)
    elif isinstance(value, strings):
        _string_into(mem, off, value, 1 if isinstance(value, bytes) else 4)
    else:
        return False
    return True


def _wide(raw):
    """The str of a wchar_t string's bytes."""
    return "".join(chr(int.from_bytes(raw[i : i + 4], "little")) for i in range(0, len(raw), 4))


def _string_into(mem, off, value, unit):
    """Stores a pointer to a NUL-terminated copy of `value` at `off`."""
    if unit == 1:
        raw = bytes(value) + b"\0"
    else:
        raw = b"".join(ord(c).to_bytes(4, "little") for c in value) + bytes(4)
    block = _new_block(raw)
    mem.refs[off] = block
    _put_u32(mem, off, block.base)


def _string_codec(unit):
    kind = bytes if unit == 1 else str

    def get(mem, off, order):
        address = _u32(mem, off)
        if not address:
            return None
        block, start = _space.find(address, unit)
        raw = _c_string(block, start, unit)
        return raw if unit == 1 else _wide(raw)

    def put(mem, off, value, order):
        if not _put_pointer(mem, off, value, kind):
            name = "bytes" if unit == 1 else "unicode string"
            raise TypeError(
                f"{name} or integer address expected instead of {type(value).__name__} instance"
            )

    return _PTR, _PTR, get, put


def _object_codec():
    def get(mem, off, order):
        token = _u32(mem, off)
        held = mem.refs.get(off)
        if not token or held is None or held[0] != token:
            raise ValueError("PyObject is NULL")
        return held[1]

    def put(mem, off, value, order):
        token = (id(value) & 0xFFFFFFF0) | 1
        mem.refs[off] = (token, value)
        _put_u32(mem, off, token)

    return _PTR, _PTR, get, put


_CODECS = {
    "c": _char_codec(),
    "b": _int_codec(1, True),
    "B": _int_codec(1, False),
    "h": _int_codec(2, True),
    "H": _int_codec(2, False),
    "v": _int_codec(2, True),
    "i": _int_codec(4, True),
    "I": _int_codec(4, False),
    "l": _int_codec(4, True),
    "L": _int_codec(4, False),
    "q": _int_codec(8, True),
    "Q": _int_codec(8, False),
    "f": _float_codec(4, "f"),
    "d": _float_codec(8, "d"),
    "g": _longdouble_codec(),
    "?": _bool_codec(),
    "u": _wchar_codec(),
    "P": _void_p_codec(),
    "z": _string_codec(1),
    "Z": _string_codec(4),
    "O": _object_codec(),
}
_INTEGER_CODES = "bBhHvqQiIlL?"
# The simple types' codes a memoryview can cast to (wasm32's native sizes
# are ctypes' here: `l` is 4 bytes on both sides).
_MEMORYVIEW_CODES = "cbBhHiIlLqQfd?"
_SIGNED_CODES = "bhvqil"


# --- the base of every C type -----------------------------------------------


class _CDataType(type):
    """The metaclass behind every C type: `T * n` makes an array type."""

    _eryx_size = 0
    _eryx_align = 1
    _eryx_order = "little"

    def __mul__(cls, length):
        return _array_type(cls, length)

    __rmul__ = __mul__

    def _eryx_layout(cls):
        """`(format, shape)` of this type's buffer as a memoryview can
        cast it, or None for plain bytes."""
        if "_eryx_layout_" not in cls.__dict__:
            layout = None
            code = getattr(cls, "_type_", None)
            if isinstance(cls, _ArrayType) and isinstance(code, _CDataType):
                inner = code._eryx_layout()
                if inner is not None:
                    layout = (inner[0], [cls._length_, *inner[1]])
            elif isinstance(cls, _SimpleType) and cls._eryx_order == "little":
                if isinstance(code, str) and code in _MEMORYVIEW_CODES:
                    layout = (code, [])
            cls._eryx_layout_ = layout
        return cls._eryx_layout_

    def _view(cls, mem, off):
        obj = object.__new__(cls)
        obj._mem = mem
        obj._off = off
        return obj

    def from_buffer(cls, source, offset=0):
        """An instance sharing the memory of a writable buffer."""
        if cls.__dict__.get("_eryx_abstract"):
            raise TypeError("abstract class")
        view = memoryview(source)
        if view.readonly:
            raise TypeError("underlying buffer is not writable")
        view = view.cast("B")
        cls._check_buffer(len(view), offset)
        mem = _Memory(view[offset : offset + cls._eryx_size])
        mem.keep = source
        return cls._view(mem, 0)

    def from_buffer_copy(cls, source, offset=0):
        """An instance holding a copy of a buffer's bytes."""
        if cls.__dict__.get("_eryx_abstract"):
            raise TypeError("abstract class")
        view = memoryview(source).cast("B")
        cls._check_buffer(len(view), offset)
        return cls._view(_new_block(view[offset : offset + cls._eryx_size]), 0)

    def _check_buffer(cls, length, offset):
        if offset < 0:
            raise ValueError("offset cannot be negative")
        if length < offset + cls._eryx_size:
            raise ValueError(
                f"Buffer size too small ({length} instead of at least "
                f"{offset + cls._eryx_size} bytes)"
            )

    def from_address(cls, address):
        """The instance at an address (of this sandbox's ctypes memory)."""
        mem, off = _space.find(address, cls._eryx_size)
        return cls._view(mem, off)

    def in_dll(cls, library, name):
        raise _no_foreign_code(f"{cls.__name__}.in_dll(..., {name!r})")

    def from_param(cls, obj):
        return obj if isinstance(obj, cls) else cls(obj)


class _CData:
    """What every ctypes instance is: a view of `_eryx_size` bytes of a
    memory block (its own, or the block of the object it is part of)."""

    def __new__(cls, *args, **kwargs):
        if getattr(cls, "_eryx_abstract", False) and "_eryx_abstract" in cls.__dict__:
            raise TypeError("abstract class")
        obj = object.__new__(cls)
        obj._mem = _new_block(cls._eryx_size)
        obj._off = 0
        return obj

    def __buffer__(self, flags):
        cls = type(self)
        size = sizeof(self)  # more than the type's after `resize`
        view = memoryview(self._mem.data)[self._off : self._off + size]
        # Typed as CPython's are where a memoryview can say it (simple
        # types and arrays of them, in the platform's byte order), so that
        # `memoryview(x).tolist()` and `numpy.asarray(c_double * 3)` read
        # values, not bytes; structures and swapped types stay bytes.
        layout = cls._eryx_layout()
        if layout is not None and size == cls._eryx_size and size:
            view = view.cast("B").cast(*layout)
        return view

    @property
    def _b_base_(self):
        return None if self._off == 0 and self._mem.keep is None else self._mem

    @property
    def _b_needsfree_(self):
        return self._off == 0 and self._mem.keep is None

    @property
    def _objects(self):
        return self._mem.refs or None

    def __reduce__(self):
        return (_rebuild, (type(self), bytes(self), getattr(self, "__dict__", {})))

    def __ctypes_from_outparam__(self):
        return self


# Where CPython's base of every C type lives: numpy tells ctypes types from
# others by this base's module (`npy_ctypes_check`) and then reads their
# layout from their attributes, through `_ctypes` (eryx's, beside this).
_CData.__module__ = "_ctypes"


def _rebuild(cls, raw, state):
    obj = cls.from_buffer_copy(raw)
    obj.__dict__.update({k: v for k, v in state.items() if k not in ("_mem", "_off")})
    return obj


def _load(ctype, mem, off, order=None):
    """The value a field or element of `ctype` at `off` reads as: a Python
    value for the fundamental simple types, a view object otherwise."""
    if ctype.__dict__.get("_eryx_fundamental"):
        return ctype._eryx_get(mem, off, order or ctype._eryx_order)
    return ctype._view(mem, off)


def _store(ctype, mem, off, value, order=None):
    if ctype.__dict__.get("_eryx_fundamental"):
        if isinstance(value, _SimpleCData) and value._type_ == ctype._type_:
            value = value.value
        elif isinstance(value, _CData):
            raise TypeError(f"{ctype.__name__}: incompatible types, {type(value).__name__} instance")
        ctype._eryx_put(mem, off, value, order or ctype._eryx_order)
        return
    if isinstance(ctype, _PointerType) and not isinstance(value, ctype):
        if value is None:
            mem.refs.pop(off, None)
            _put_u32(mem, off, 0)
            return
        if isinstance(value, Array) and issubclass(value._type_, ctype._type_):
            # An array where a pointer goes: a pointer to its first element.
            mem.refs[off] = value._mem
            _put_u32(mem, off, value._mem.base + value._off)
            return
    if not isinstance(value, ctype):
        if isinstance(value, _CData):
            raise TypeError(
                f"incompatible types, {type(value).__name__} instance instead of "
                f"{ctype.__name__} instance"
            )
        value = ctype(*value) if isinstance(value, tuple) else ctype(value)
    _copy_memory(mem, off, value._mem, value._off, ctype._eryx_size)


def _copy_memory(dst, doff, src, soff, size):
    dst.data[doff : doff + size] = bytes(src.data[soff : soff + size])
    for k in [k for k in dst.refs if doff <= k < doff + size]:
        del dst.refs[k]
    for k, v in list(src.refs.items()):
        if soff <= k < soff + size:
            dst.refs[doff + k - soff] = v


# --- simple types -----------------------------------------------------------


class _SimpleType(_CDataType):
    def __new__(mcls, name, bases, namespace, **kwargs):
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        code = getattr(cls, "_type_", None)
        if code is None:
            cls._eryx_abstract = True
            return cls
        if not isinstance(code, str) or code not in _CODECS:
            raise AttributeError(
                "class must define a '_type_' attribute which must be a single "
                f"character string containing one of '{''.join(_CODECS)}'"
            )
        size, align, get, put = _CODECS[code]
        cls._eryx_size, cls._eryx_align = size, align
        cls._eryx_get, cls._eryx_put = staticmethod(get), staticmethod(put)
        cls._eryx_fundamental = _SimpleCData in bases
        return cls

    @property
    def __ctype_le__(cls):
        return cls if cls._eryx_order == "little" else _swapped(cls, "little")

    @property
    def __ctype_be__(cls):
        return cls if cls._eryx_order == "big" else _swapped(cls, "big")


_swapped_types = {}


def _swapped(cls, order):
    key = (cls, order)
    if key not in _swapped_types:
        t = type(cls)(cls.__name__, (cls,), {"_eryx_order": order})
        t._eryx_fundamental = cls.__dict__.get("_eryx_fundamental", False)
        _swapped_types[key] = t
    return _swapped_types[key]


class _SimpleCData(_CData, metaclass=_SimpleType):
    """The base of the simple types: one C value, read and written as
    `.value`."""

    def __init__(self, value=_NOTHING):
        if value is not _NOTHING:
            self.value = value

    @property
    def value(self):
        return type(self)._eryx_get(self._mem, self._off, type(self)._eryx_order)

    @value.setter
    def value(self, value):
        type(self)._eryx_put(self._mem, self._off, value, type(self)._eryx_order)

    @value.deleter
    def value(self):
        raise TypeError("value cannot be deleted")

    def __repr__(self):
        cls = type(self)
        if not cls.__dict__.get("_eryx_fundamental") and cls not in _swapped_types.values():
            return f"<{cls.__name__} object at {id(self):#x}>"
        try:
            return f"{cls.__name__}({self.value!r})"
        except ValueError:
            return f"{cls.__name__}(<NULL>)"

    def __bool__(self):
        try:
            return bool(self.value)
        except ValueError:
            return False


class c_char(_SimpleCData):
    _type_ = "c"


class c_wchar(_SimpleCData):
    _type_ = "u"


class c_byte(_SimpleCData):
    _type_ = "b"


class c_ubyte(_SimpleCData):
    _type_ = "B"


class c_short(_SimpleCData):
    _type_ = "h"


class c_ushort(_SimpleCData):
    _type_ = "H"


class c_int(_SimpleCData):
    _type_ = "i"


class c_uint(_SimpleCData):
    _type_ = "I"


class c_long(_SimpleCData):
    _type_ = "l"


class c_ulong(_SimpleCData):
    _type_ = "L"


class c_longlong(_SimpleCData):
    _type_ = "q"


class c_ulonglong(_SimpleCData):
    _type_ = "Q"


class c_float(_SimpleCData):
    _type_ = "f"


class c_double(_SimpleCData):
    _type_ = "d"


class c_longdouble(_SimpleCData):
    _type_ = "g"


class c_bool(_SimpleCData):
    _type_ = "?"


class c_void_p(_SimpleCData):
    _type_ = "P"


class c_char_p(_SimpleCData):
    _type_ = "z"

    def __repr__(self):
        return f"{type(self).__name__}({self.value!r})"


class c_wchar_p(_SimpleCData):
    _type_ = "Z"

    def __repr__(self):
        return f"{type(self).__name__}({self.value!r})"


class py_object(_SimpleCData):
    _type_ = "O"


c_voidp = c_void_p
c_int8, c_uint8 = c_byte, c_ubyte
c_int16, c_uint16 = c_short, c_ushort
c_int32, c_uint32 = c_int, c_uint
c_int64, c_uint64 = c_longlong, c_ulonglong
c_size_t, c_ssize_t = c_uint, c_int
c_time_t = c_int64


# --- arrays -----------------------------------------------------------------


class _ArrayType(_CDataType):
    def __new__(mcls, name, bases, namespace, **kwargs):
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        if "_type_" not in namespace and "_length_" not in namespace:
            if cls.__dict__.get("_eryx_abstract") is None and bases == (_CData,):
                cls._eryx_abstract = True
            return cls
        item = getattr(cls, "_type_", None)
        length = getattr(cls, "_length_", None)
        if not isinstance(item, _CDataType):
            raise TypeError("_type_ must have storage info")
        if not isinstance(length, int) or isinstance(length, bool):
            raise TypeError("The '_length_' attribute must be an integer")
        if length < 0:
            raise ValueError("The '_length_' attribute must not be negative")
        cls._eryx_size = item._eryx_size * length
        cls._eryx_align = item._eryx_align
        cls._eryx_abstract = False
        return cls


class Array(_CData, metaclass=_ArrayType):
    """A fixed-length C array: `c_int * 4` is an array type."""

    def __init__(self, *items):
        if len(items) > self._length_:
            raise IndexError("invalid index")
        for i, v in enumerate(items):
            self[i] = v

    def __len__(self):
        return self._length_

    def _index(self, i):
        if not hasattr(i, "__index__"):
            raise TypeError("indices must be integers")
        i = i.__index__()
        if i < 0:
            i += self._length_
        if not 0 <= i < self._length_:
            raise IndexError("invalid index")
        return i

    def __getitem__(self, i):
        item = self._type_
        if isinstance(i, slice):
            values = [self[j] for j in range(*i.indices(self._length_))]
            if item.__dict__.get("_eryx_fundamental") and item._type_ == "c":
                return b"".join(values)
            if item.__dict__.get("_eryx_fundamental") and item._type_ == "u":
                return "".join(values)
            return values
        return _load(item, self._mem, self._off + self._index(i) * item._eryx_size)

    def __setitem__(self, i, value):
        item = self._type_
        if isinstance(i, slice):
            indices = range(*i.indices(self._length_))
            if len(value) != len(indices):
                raise ValueError("Can only assign sequence of same size")
            for j, v in zip(indices, value):
                self[j] = v
            return
        _store(item, self._mem, self._off + self._index(i) * item._eryx_size, value)

    def __iter__(self):
        for i in range(self._length_):
            yield self[i]

    def _text_unit(self):
        item = self._type_
        if item.__dict__.get("_eryx_fundamental") and item._type_ in "cu":
            return 1 if item._type_ == "c" else 4
        raise AttributeError(f"'{type(self).__name__}' object has no attribute 'value'")

    @property
    def value(self):
        """A char or wchar array's string, up to its first NUL."""
        unit = self._text_unit()
        raw = _c_string(_Memory(bytes(self)), 0, unit)
        return raw if unit == 1 else _wide(raw)

    @value.setter
    def value(self, value):
        unit = self._text_unit()
        if unit == 1:
            if not isinstance(value, bytes):
                raise TypeError(f"bytes expected instead of {type(value).__name__} instance")
            raw = value
        else:
            if not isinstance(value, str):
                raise TypeError(f"unicode string expected instead of {type(value).__name__} instance")
            raw = b"".join(ord(c).to_bytes(4, "little") for c in value)
        if len(raw) > self._eryx_size:
            raise ValueError("byte string too long" if unit == 1 else "string too long")
        if len(raw) < self._eryx_size:
            raw += bytes(unit)
        self._mem.data[self._off : self._off + len(raw)] = raw

    @value.deleter
    def value(self):
        raise TypeError("value cannot be deleted")

    @property
    def raw(self):
        """A char array's bytes, all of them."""
        if self._text_unit() != 1:
            raise AttributeError("raw")
        return bytes(self)

    @raw.setter
    def raw(self, value):
        if self._text_unit() != 1:
            raise AttributeError("raw")
        value = bytes(value)
        if len(value) > self._eryx_size:
            raise ValueError("byte string too long")
        self._mem.data[self._off : self._off + len(value)] = value


_array_types = {}


def _array_type(item, length):
    if not hasattr(length, "__index__"):
        raise TypeError(f"can't multiply sequence by non-int of type '{type(length).__name__}'")
    length = length.__index__()
    if length < 0:
        raise ValueError(f"Array length must be >= 0, not {length}")
    key = (item, length)
    if key not in _array_types:
        _array_types[key] = _ArrayType(
            f"{item.__name__}_Array_{length}", (Array,), {"_type_": item, "_length_": length}
        )
    return _array_types[key]


def ARRAY(typ, length):
    """`typ * length` (kept for old code)."""
    return typ * length


# --- structures and unions --------------------------------------------------


class CField:
    """A field of a structure or union: where it lies, read and written
    through attribute access on instances."""

    __slots__ = ("name", "type", "offset", "size", "bit_size", "bit_offset", "_order")

    def __init__(self, name, ctype, offset, size, bit_size, bit_offset, order):
        self.name, self.type, self.offset, self.size = name, ctype, offset, size
        self.bit_size, self.bit_offset, self._order = bit_size, bit_offset, order

    byte_offset = property(lambda self: self.offset)
    byte_size = property(lambda self: self.size)
    is_bitfield = property(lambda self: self.bit_size is not None)

    def _moved(self, by):
        return CField(self.name, self.type, self.offset + by, self.size, self.bit_size,
                      self.bit_offset, self._order)

    def _shift(self):
        if self._order == "little":
            return self.bit_offset
        return self.size * 8 - self.bit_offset - self.bit_size

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        off = obj._off + self.offset
        if self.bit_size is None:
            return _load(self.type, obj._mem, off, self._order)
        unit = int.from_bytes(obj._mem.data[off : off + self.size], self._order)
        v = (unit >> self._shift()) & ((1 << self.bit_size) - 1)
        code = self.type._type_
        if code in _SIGNED_CODES and v >> (self.bit_size - 1):
            v -= 1 << self.bit_size
        return bool(v) if code == "?" else v

    def __set__(self, obj, value):
        off = obj._off + self.offset
        if self.bit_size is None:
            _store(self.type, obj._mem, off, value, self._order)
            return
        if not hasattr(value, "__index__"):
            raise TypeError(f"int expected instead of {type(value).__name__}")
        mask = ((1 << self.bit_size) - 1) << self._shift()
        unit = int.from_bytes(obj._mem.data[off : off + self.size], self._order)
        unit = (unit & ~mask) | ((value.__index__() << self._shift()) & mask)
        obj._mem.data[off : off + self.size] = unit.to_bytes(self.size, self._order)

    def __delete__(self, obj):
        raise TypeError("cannot delete field")

    def __repr__(self):
        if self.bit_size is None:
            return f"<Field type={self.type.__name__}, ofs={self.offset}, size={self.size}>"
        return (f"<Field type={self.type.__name__}, ofs={self.offset}:{self.bit_offset}, "
                f"bits={self.bit_size}>")


def _align_up(n, a):
    return (n + a - 1) // a * a


def _with_order(ctype, order):
    """The field type as stored in a structure of the other byte order."""
    if order == "little" or ctype._eryx_order == order:
        return ctype
    if isinstance(ctype, _SimpleType):
        return _swapped(ctype, order)
    if isinstance(ctype, _ArrayType):
        return _with_order(ctype._type_, order) * ctype._length_
    if isinstance(ctype, _StructType):
        raise TypeError("This type does not support other endian")
    return ctype


class _StructType(_CDataType):
    def __new__(mcls, name, bases, namespace, **kwargs):
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        type.__setattr__(cls, "_eryx_final", False)
        if "_fields_" in namespace:
            # Through the metaclass's `__setattr__`, as `_ctypes` does: the
            # stdlib's `ctypes._endian` swaps field types there.
            setattr(cls, "_fields_", namespace["_fields_"])
        else:
            base = cls.__mro__[1]
            type.__setattr__(cls, "_eryx_fields", list(getattr(base, "_eryx_fields", [])))
        return cls

    def __setattr__(cls, name, value):
        if name == "_fields_":
            if cls.__dict__.get("_eryx_final"):
                raise AttributeError("_fields_ is final")
            type.__setattr__(cls, name, value)
            _lay_out(cls, value)
            return
        type.__setattr__(cls, name, value)


def _lay_out(cls, fields):
    if not isinstance(fields, (list, tuple)):
        raise TypeError("_fields_ must be a sequence of pairs")
    union = cls._eryx_union
    # `_swappedbytes_` marks the stdlib's `ctypes._endian` structures.
    big = cls._eryx_order == "big" or hasattr(cls, "_swappedbytes_")
    order = "big" if big else "little"
    pack = cls.__dict__.get("_pack_", 0)
    if not isinstance(pack, int) or pack < 0:
        raise ValueError("_pack_ must be a non-negative integer")
    base = cls.__mro__[1]
    all_fields = list(getattr(base, "_eryx_fields", []))
    size = base._eryx_size if all_fields else 0
    align = base._eryx_align if all_fields else 1
    bits = size * 8
    for i, desc in enumerate(fields):
        if not isinstance(desc, tuple) or len(desc) not in (2, 3):
            raise TypeError("'_fields_' must be a sequence of (name, C type) pairs")
        name, ctype = desc[0], desc[1]
        if not isinstance(name, str):
            raise TypeError("field name must be a str")
        if not isinstance(ctype, _CDataType) or ctype in (_SimpleCData, Array, Structure, Union):
            raise TypeError(f"second item in _fields_ tuple (index {i}) must be a C type")
        ctype = _with_order(ctype, order)
        a = ctype._eryx_align if not pack else min(pack, ctype._eryx_align)
        if len(desc) == 3:
            nbits = desc[2]
            if not isinstance(ctype, _SimpleType) or ctype._type_ not in _INTEGER_CODES:
                raise TypeError(f"bit fields not allowed for type {ctype.__name__}")
            width = ctype._eryx_size * 8
            if not isinstance(nbits, int) or not 0 <= nbits <= width:
                raise ValueError(f"number of bits invalid for bit field {name!r}")
            if union:
                start, unit = 0, 0
            else:
                unit = bits // (a * 8) * (a * 8)
                start = bits
                if nbits == 0 or bits + nbits > unit + width:
                    start = unit = _align_up(bits, a * 8)
                bits = start + nbits
            align = max(align, a)
            if nbits == 0:
                continue
            field = CField(name, ctype, unit // 8, ctype._eryx_size, nbits, start - unit, order)
            size = max(size, unit // 8 + ctype._eryx_size) if union else size
        else:
            offset = 0 if union else _align_up((bits + 7) // 8, a)
            if not union:
                bits = (offset + ctype._eryx_size) * 8
            size = max(size, offset + ctype._eryx_size)
            align = max(align, a)
            field = CField(name, ctype, offset, ctype._eryx_size, None, 0, ctype._eryx_order)
        if not union:
            size = max(size, (bits + 7) // 8)
        type.__setattr__(cls, name, field)
        all_fields.append(field)
    forced = cls.__dict__.get("_align_", 0)
    if forced:
        align = max(align, forced)
    type.__setattr__(cls, "_eryx_size", _align_up(size, align))
    type.__setattr__(cls, "_eryx_align", align)
    type.__setattr__(cls, "_eryx_fields", all_fields)
    type.__setattr__(cls, "_eryx_final", True)
    for name in cls.__dict__.get("_anonymous_", ()):
        field = cls.__dict__.get(name)
        if not isinstance(field, CField):
            raise AttributeError(f"'{name}' is specified in _anonymous_ but not in _fields_")
        for inner in getattr(field.type, "_eryx_fields", []):
            type.__setattr__(cls, inner.name, inner._moved(field.offset))


class _StructUnionBase(_CData):
    def __init__(self, *args, **kwargs):
        fields = type(self)._eryx_fields
        if len(args) > len(fields):
            raise TypeError("too many initializers")
        for field, value in zip(fields, args):
            setattr(self, field.name, value)
        for name, value in kwargs.items():
            setattr(self, name, value)


class Structure(_StructUnionBase, metaclass=_StructType):
    """A C struct: subclass it and set `_fields_`."""

    _eryx_union = False
    _eryx_abstract = True


class Union(_StructUnionBase, metaclass=_StructType):
    """A C union: subclass it and set `_fields_`."""

    _eryx_union = True
    _eryx_abstract = True


class BigEndianStructure(Structure):
    """A structure whose fields are stored big-endian."""

    _eryx_order = "big"
    _eryx_abstract = True


class BigEndianUnion(Union):
    """A union whose fields are stored big-endian."""

    _eryx_order = "big"
    _eryx_abstract = True


LittleEndianStructure = Structure
LittleEndianUnion = Union


# --- pointers ---------------------------------------------------------------


class _PointerType(_CDataType):
    _eryx_size = _PTR
    _eryx_align = _PTR


class _Pointer(_CData, metaclass=_PointerType):
    """The base of pointer types: `POINTER(c_int)`."""

    _eryx_abstract = True

    def __init__(self, target=_NOTHING):
        if target is not _NOTHING:
            self.contents = target

    def _address(self):
        return _u32(self._mem, self._off)

    @property
    def contents(self):
        address = self._address()
        if not address:
            raise ValueError("NULL pointer access")
        mem, off = _space.find(address, self._type_._eryx_size)
        return self._type_._view(mem, off)

    @contents.deleter
    def contents(self):
        raise TypeError("Pointer does not support item deletion")

    @contents.setter
    def contents(self, target):
        if not isinstance(target, self._type_):
            raise TypeError(f"expected {self._type_.__name__} instead of {type(target).__name__}")
        self._mem.refs[self._off] = target._mem
        _put_u32(self._mem, self._off, target._mem.base + target._off)

    def _element(self, i):
        address = self._address()
        if not address:
            raise ValueError("NULL pointer access")
        size = self._type_._eryx_size
        return _space.find(address + i.__index__() * size, size)

    def __getitem__(self, i):
        if isinstance(i, slice):
            # Raw indices: a pointer has no length to count from the end.
            step = 1 if i.step is None else i.step
            if step == 0:
                raise ValueError("slice step cannot be zero")
            if step < 0 and i.start is None:
                raise ValueError("slice start is required for step < 0")
            if i.stop is None:
                raise ValueError("slice stop is required")
            start = 0 if i.start is None else i.start
            values = [self[j] for j in range(start, i.stop, step)]
            code = getattr(self._type_, "_type_", None)
            if code == "c":
                return b"".join(values)
            return "".join(values) if code == "u" else values
        return _load(self._type_, *self._element(i))

    def __setitem__(self, i, value):
        _store(self._type_, *self._element(i), value)

    def __bool__(self):
        return self._address() != 0

    def __repr__(self):
        return f"<{type(self).__name__} object at {id(self):#x}>"


_pointer_types = {}


def POINTER(ctype):
    """The type of pointers to `ctype`."""
    if ctype is None:
        return c_void_p
    if ctype not in _pointer_types:
        name = ctype if isinstance(ctype, str) else ctype.__name__
        t = _PointerType(f"LP_{name}", (_Pointer,), {"_type_": ctype})
        _pointer_types[ctype] = t
    return _pointer_types[ctype]


def pointer(obj):
    """A pointer to `obj`."""
    if not isinstance(obj, _CData):
        raise TypeError("_type_ must have storage info")
    return POINTER(type(obj))(obj)


# --- functions on C data ------------------------------------------------------


class _CArgObject:
    """What `byref` returns: a reference to an object (and an offset)."""

    __slots__ = ("_obj", "_offset")

    def __init__(self, obj, offset):
        self._obj, self._offset = obj, offset

    def __repr__(self):
        return f"<cparam 'P' ({self._obj!r})>"


def sizeof(obj_or_type):
    """The size in bytes of a C type or instance (wasm32's)."""
    if isinstance(obj_or_type, _CDataType):
        return obj_or_type._eryx_size
    if isinstance(obj_or_type, _CData):
        return len(obj_or_type._mem.data) if obj_or_type._off == 0 else type(obj_or_type)._eryx_size
    raise TypeError("this type has no size")


def alignment(obj_or_type):
    """The alignment in bytes of a C type or instance (wasm32's)."""
    cls = obj_or_type if isinstance(obj_or_type, _CDataType) else type(obj_or_type)
    if not isinstance(cls, _CDataType):
        raise TypeError("no alignment info")
    return cls._eryx_align


def byref(obj, offset=0):
    """A light-weight pointer to `obj`, for passing by reference."""
    if not isinstance(obj, _CData):
        raise TypeError(f"byref() argument must be a ctypes instance, not '{type(obj).__name__}'")
    return _CArgObject(obj, offset)


def addressof(obj):
    """The address of an instance's memory (in the sandbox's simulated
    address space)."""
    if not isinstance(obj, _CData):
        raise TypeError("invalid type")
    return obj._mem.base + obj._off


def resize(obj, size):
    """Sets the size of the memory an instance owns, never below its type's
    (its address changes as it grows)."""
    if not isinstance(obj, _CData):
        raise TypeError("excepted ctypes instance")
    if size < type(obj)._eryx_size:
        raise ValueError(f"minimum size is {type(obj)._eryx_size}")
    if obj._off != 0 or not isinstance(obj._mem.data, bytearray):
        raise ValueError("Memory cannot be resized because this object doesn't own it")
    if size > len(obj._mem.data):
        obj._mem.data.extend(bytes(size - len(obj._mem.data)))
        obj._mem.base_ = None
    else:
        del obj._mem.data[size:]


def _address_of(arg):
    """The address an argument to memmove and friends stands for."""
    if arg is None:
        return 0
    if isinstance(arg, int):
        return arg
    if isinstance(arg, _CArgObject):
        return addressof(arg._obj) + arg._offset
    if isinstance(arg, _Pointer):
        return arg._address()
    if isinstance(arg, _SimpleCData) and arg._type_ in ("P", "z", "Z"):
        return _u32(arg._mem, arg._off)
    if isinstance(arg, _CFuncPtr):
        # A function pointer stands for the function's address (scipy's
        # LowLevelCallable casts one to c_void_p).
        return _u32(arg._mem, arg._off)
    if isinstance(arg, _CData):
        return addressof(arg)
    raise ArgumentError(f"don't know how to convert {type(arg).__name__} to a pointer")


def _memory_at(arg, size):
    if isinstance(arg, (bytes, bytearray)):
        if len(arg) < size:
            raise ValueError(f"ctypes: {size} bytes asked of a {len(arg)}-byte object")
        return _Memory(bytearray(arg)), 0
    return _space.find(_address_of(arg), size)


def memmove(dst, src, count):
    """Copies `count` bytes from `src` to `dst`; returns `dst`'s address."""
    smem, soff = _memory_at(src, count)
    dmem, doff = _memory_at(dst, count)
    dmem.data[doff : doff + count] = bytes(smem.data[soff : soff + count])
    return dmem.base + doff


def memset(dst, c, count):
    """Fills `count` bytes at `dst` with `c`; returns `dst`'s address."""
    dmem, doff = _memory_at(dst, count)
    dmem.data[doff : doff + count] = bytes([c & 0xFF]) * count
    return dmem.base + doff


def string_at(ptr, size=-1):
    """The bytes at `ptr`: `size` of them, or up to the first NUL."""
    if size >= 0:
        mem, off = _memory_at(ptr, size)
        return bytes(mem.data[off : off + size])
    mem, off = _memory_at(ptr, 1)
    return _c_string(mem, off, 1)


def wstring_at(ptr, size=-1):
    """The wide string at `ptr`: `size` characters, or up to the first NUL."""
    if size >= 0:
        mem, off = _memory_at(ptr, size * 4)
        raw = bytes(mem.data[off : off + size * 4])
    else:
        mem, off = _memory_at(ptr, 4)
        raw = _c_string(mem, off, 4)
    return _wide(raw)


def memoryview_at(ptr, size, readonly=False):
    """A memoryview of `size` bytes at `ptr`."""
    if size < 0:
        raise ValueError("negative size")
    mem, off = _memory_at(ptr, size)
    view = memoryview(mem.data)[off : off + size]
    return view.toreadonly() if readonly else view


def cast(obj, typ):
    """`obj` (an instance, pointer or address) as a pointer of type `typ`."""
    if not (isinstance(typ, (_PointerType, _FuncPtrType)) or (
            isinstance(typ, _SimpleType) and typ._type_ in ("P", "z", "Z"))):
        raise TypeError("cast() argument 2 must be a pointer type, not " + getattr(typ, "__name__", str(typ)))
    address = _address_of(obj)
    result = typ()
    _put_u32(result._mem, result._off, address)
    if isinstance(obj, _CData):
        result._mem.refs[result._off] = obj._mem
    return result


def _text_buffer(item, kind, init, size):
    if isinstance(init, kind):
        buf = (item * (len(init) + 1 if size is None else size))()
        buf.value = init
        return buf
    if isinstance(init, int):
        return (item * init)()
    raise TypeError(type(init).__name__)


def create_string_buffer(init, size=None):
    """A mutable `c_char` array: from bytes (plus a NUL), or of a size."""
    return _text_buffer(c_char, bytes, init, size)


c_buffer = create_string_buffer


def create_unicode_buffer(init, size=None):
    """A mutable `c_wchar` array: from a str (plus a NUL), or of a size."""
    return _text_buffer(c_wchar, str, init, size)


_errno = 0


def get_errno():
    """ctypes' private copy of errno."""
    return _errno


def set_errno(value):
    """Sets ctypes' private copy of errno; returns the old value."""
    global _errno
    old, _errno = _errno, value
    return old


# --- function pointers and libraries ------------------------------------------

_FUNCFLAG_CDECL = 0x1
_FUNCFLAG_PYTHONAPI = 0x4
_FUNCFLAG_USE_ERRNO = 0x8
_FUNCFLAG_USE_LASTERROR = 0x10


class _FuncPtrType(_CDataType):
    _eryx_size = _PTR
    _eryx_align = _PTR


class _CFuncPtr(_CData, metaclass=_FuncPtrType):
    """A function pointer. One made from a Python callable can be called
    (arguments and result converted through `argtypes` and `restype`);
    there are no C functions to point at."""

    _argtypes_ = ()
    _restype_ = None
    _flags_ = _FUNCFLAG_CDECL

    def __init__(self, *args):
        self._callable = None
        self.errcheck = None
        self.argtypes = self._argtypes_
        self.restype = self._restype_
        if not args:
            return
        target = args[0]
        if isinstance(target, int):
            _put_u32(self._mem, self._off, target)
        elif isinstance(target, tuple):
            # `(name, library)`: the library has no symbols here (one that
            # could not be loaded raised OSError already), and a missing
            # symbol is an AttributeError in CPython's ctypes too, which
            # code that probes for a C function catches.
            raise AttributeError(
                f"function {target[0]!r} not found: the eryx sandbox has no C "
                "symbols for ctypes to call"
            )
        elif callable(target):
            self._callable = target
            _put_u32(self._mem, self._off, (id(target) & 0xFFFFFFF0) | 1)
        else:
            raise TypeError("argument must be callable or integer function address")

    def __bool__(self):
        return self._callable is not None or _u32(self._mem, self._off) != 0

    def __call__(self, *args):
        if self._callable is None:
            raise _no_foreign_code("calling a C function pointer")
        argtypes = self.argtypes or ()
        if argtypes and len(args) != len(argtypes):
            raise TypeError(f"this function takes {len(argtypes)} argument(s) ({len(args)} given)")
        converted = [
            t(a).value if isinstance(t, _SimpleType) and t.__dict__.get("_eryx_fundamental")
            and not isinstance(a, _CData) else a
            for t, a in zip(argtypes, args)
        ] + list(args[len(argtypes):])
        result = self._callable(*converted)
        restype = self.restype
        if isinstance(restype, _SimpleType) and restype.__dict__.get("_eryx_fundamental") and result is not None:
            result = restype(result).value
        if self.errcheck is not None:
            result = self.errcheck(result, self, args)
        return result


_function_types = {}


def _function_type(restype, argtypes, flags):
    key = (restype, argtypes, flags)
    if key not in _function_types:
        _function_types[key] = _FuncPtrType(
            "CFunctionType",
            (_CFuncPtr,),
            {"_argtypes_": argtypes, "_restype_": restype, "_flags_": flags},
        )
    return _function_types[key]


def CFUNCTYPE(restype, *argtypes, use_errno=False, use_last_error=False):
    """A C function pointer type (for callbacks written in Python)."""
    flags = _FUNCFLAG_CDECL
    if use_errno:
        flags |= _FUNCFLAG_USE_ERRNO
    if use_last_error:
        flags |= _FUNCFLAG_USE_LASTERROR
    return _function_type(restype, argtypes, flags)


def PYFUNCTYPE(restype, *argtypes):
    """A function pointer type following the Python C API's conventions."""
    return _function_type(restype, argtypes, _FUNCFLAG_CDECL | _FUNCFLAG_PYTHONAPI)


class CDLL:
    """A shared library. None can be loaded in the sandbox; `CDLL(None)`,
    the program itself, loads and has no symbols (so code that probes it
    with `hasattr` goes on, as `ctypes.util` does)."""

    _func_flags_ = _FUNCFLAG_CDECL
    _func_restype_ = c_int

    def __init__(self, name, mode=DEFAULT_MODE, handle=None, use_errno=False,
                 use_last_error=False, winmode=None):
        if name is not None:
            raise _no_foreign_code(f"loading the shared library {name!r}")
        self._name = name
        self._handle = 0

    def __repr__(self):
        return f"<{type(self).__name__} '{self._name}', no symbols in the eryx sandbox>"

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"function {name!r} not found: the eryx sandbox has no C symbols for "
            "ctypes to call"
        )

    __getitem__ = __getattr__


class PyDLL(CDLL):
    """A shared library following the Python C API's conventions."""


class LibraryLoader:
    """`cdll.NAME` / `cdll.LoadLibrary(NAME)`: loads nothing here."""

    def __init__(self, dlltype):
        self._dlltype = dlltype

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._dlltype(name)

    def __getitem__(self, name):
        return self._dlltype(name)

    def LoadLibrary(self, name):
        return self._dlltype(name)


cdll = LibraryLoader(CDLL)
pydll = LibraryLoader(PyDLL)


class _NoPythonAPI(PyDLL):
    """`ctypes.pythonapi`: CPython's C API as a library, whose functions
    ctypes cannot call here. Each lookup raises AttributeError, as for a
    symbol a library lacks, so code that probes for a C API function with
    `except AttributeError` (pycryptodome does) takes its other way."""

    def __init__(self):
        super().__init__(None)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"function {name!r} not found: ctypes.pythonapi has no C functions "
            "to call in the eryx sandbox (no foreign code); a native extension "
            "linked into the sandbox can call the C API"
        )

    __getitem__ = __getattr__

    def __repr__(self):
        return "<ctypes.pythonapi: no C functions in the eryx sandbox>"


pythonapi = _NoPythonAPI()
