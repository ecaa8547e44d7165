"""The group database of the eryx sandbox: one group.

The WASI build of CPython has no `grp`; the sandbox's one group is
`sandbox`, gid 0 (what `os.stat` reports for every file), with the one
user (see `pwd`) in it.
"""

from collections import namedtuple as _namedtuple

import _eryx_accounts as _accounts

__all__ = ["struct_group", "getgrgid", "getgrnam", "getgrall"]


class struct_group(_namedtuple("struct_group", "gr_name gr_passwd gr_gid gr_mem")):
    """An entry of the group database."""

    __slots__ = ()
    n_sequence_fields = n_fields = 4
    n_unnamed_fields = 0


_GROUPS = (struct_group("sandbox", "x", 0, ["sandbox"]),)


def getgrgid(id):
    """The entry of group id `id`."""
    _accounts.check_id(id)
    if not -(2**31) <= id < 2**32:
        raise OverflowError(f"gid {id} is out of range of gid_t")
    return _accounts.find(_GROUPS, "gr_gid", id, "getgrgid", "gid")


def getgrnam(name):
    """The entry of the group named `name`."""
    _accounts.check_name(name, "getgrnam")
    return _accounts.find(_GROUPS, "gr_name", name, "getgrnam", "name")


def getgrall():
    """Every entry."""
    return list(_GROUPS)
