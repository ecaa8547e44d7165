"""The password database of the eryx sandbox: one user.

The WASI build of CPython has no `pwd` (WASI has no users). The sandbox
has one: `sandbox`, uid 0 (the owner `os.stat` reports for every file),
home `/tmp` (also `HOME`), as `USER` names it. With it, `getpass`,
`pathlib.Path.owner()`, `os.path.expanduser("~sandbox")` and `tarfile`'s
owner names work.
"""

from collections import namedtuple as _namedtuple

import _eryx_accounts as _accounts

__all__ = ["struct_passwd", "getpwuid", "getpwnam", "getpwall"]


class struct_passwd(
    _namedtuple("struct_passwd", "pw_name pw_passwd pw_uid pw_gid pw_gecos pw_dir pw_shell")
):
    """An entry of the password database."""

    __slots__ = ()
    n_sequence_fields = n_fields = 7
    n_unnamed_fields = 0


_USERS = (struct_passwd("sandbox", "x", 0, 0, "eryx sandbox", "/tmp", "/bin/sh"),)


def getpwuid(uid):
    """The entry of user id `uid`."""
    _accounts.check_id(uid)
    return _accounts.find(_USERS, "pw_uid", uid, "getpwuid", "uid")


def getpwnam(name):
    """The entry of the user named `name`."""
    _accounts.check_name(name, "getpwnam")
    return _accounts.find(_USERS, "pw_name", name, "getpwnam", "name")


def getpwall():
    """Every entry."""
    return list(_USERS)
