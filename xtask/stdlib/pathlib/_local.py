"""Where Python 3.13's pathlib defined its path classes.

Pickles made by Python 3.13 name them as `pathlib._local.PosixPath` and so
on; the bundled CPython 3.14.0 moved them to `pathlib` itself and cannot
load such pickles (later 3.14 releases restore this module). eryx adds it
back so that data pickled by 3.13 loads in the sandbox.
"""

from pathlib import (
    Path,
    PosixPath,
    PurePath,
    PurePosixPath,
    PureWindowsPath,
    UnsupportedOperation,
    WindowsPath,
)

__all__ = [
    "UnsupportedOperation",
    "PurePath",
    "PurePosixPath",
    "PureWindowsPath",
    "Path",
    "PosixPath",
    "WindowsPath",
]
