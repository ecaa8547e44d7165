"""The group database of the eryx sandbox: one group.

The WASI build of CPython has no `grp`; the sandbox's one group is
`sandbox`, gid 0 (what `os.stat` reports for every file), with the one
user (see `pwd`) in it.
"""

from collections import namedtuple as _namedtuple

__all__ = ["struct_group", "getgrgid", "getgrnam", "getgrall"]


class struct_group(_namedtuple("struct_group", "gr_name gr_passwd gr_gid gr_mem")):
    """An entry of the group database."""

    __slots__ = ()
    n_sequence_fields = n_fields = 4
    n_unnamed_fields = 0


_GROUPS = (struct_group("sandbox", "x", 0, ["sandbox"]),)


def getgrgid(id):
    """The entry of group id `id`."""
    if not isinstance(id, int):
        raise TypeError(f"'{type(id).__name__}' object cannot be interpreted as an integer")
    if not -(2**31) <= id < 2**32:
        raise OverflowError(f"gid {id} is out of range of gid_t")
    for group in _GROUPS:
        if group.gr_gid == id:
            return group
    raise KeyError(f"getgrgid(): gid not found: {id}")


def getgrnam(name):
    """The entry of the group named `name`."""
    if not isinstance(name, str):
        raise TypeError(f"getgrnam() argument must be str, not {type(name).__name__}")
    if "\0" in name:
        raise ValueError("embedded null character")
    name.encode()
    for group in _GROUPS:
        if group.gr_name == name:
            return group
    raise KeyError(f"getgrnam(): name not found: {name!r}")


def getgrall():
    """Every entry."""
    return list(_GROUPS)
