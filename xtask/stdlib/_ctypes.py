"""The names `_ctypes` gives to code that imports it directly.

CPython's `_ctypes` is the C module under `ctypes`; the sandbox's CPython
has none (no libffi for WASI), and eryx's `ctypes` is written in Python.
Libraries that recognise ctypes objects by their base classes import
`_ctypes` for them: numpy does, to read a ctypes type as a dtype
(`np.dtype(c_int)`, `np.dtype(MyStructure)`, `np.ctypeslib.as_ctypes_type`).
This module gives them eryx's classes; loading a C library stays
impossible (`dlopen` raises OSError, as `ctypes.CDLL` does).
"""

from ctypes import (  # noqa: F401 - re-exported
    RTLD_GLOBAL,
    RTLD_LOCAL,
    SIZEOF_TIME_T,
    ArgumentError,
    Array,
    POINTER,
    Structure,
    Union,
    _CData,
    _CFuncPtr as CFuncPtr,
    _FUNCFLAG_CDECL as FUNCFLAG_CDECL,
    _FUNCFLAG_PYTHONAPI as FUNCFLAG_PYTHONAPI,
    _FUNCFLAG_USE_ERRNO as FUNCFLAG_USE_ERRNO,
    _FUNCFLAG_USE_LASTERROR as FUNCFLAG_USE_LASTERROR,
    _no_foreign_code,
    _Pointer,
    _SimpleCData,
    addressof,
    alignment,
    byref,
    get_errno,
    pointer,
    resize,
    set_errno,
    sizeof,
)

__version__ = "1.1.0"


def dlopen(name, flag=RTLD_LOCAL):
    """Loading a C library: not available in the sandbox."""
    raise _no_foreign_code(f"dlopen({name!r})")

