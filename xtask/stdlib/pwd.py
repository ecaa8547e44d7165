"""The password database of the eryx sandbox: one user.

The WASI build of CPython has no `pwd` (WASI has no users). The sandbox
has one: `sandbox`, uid 0 (the owner `os.stat` reports for every file),
home `/tmp` (also `HOME`), as `USER` names it. With it, `getpass`,
`pathlib.Path.owner()`, `os.path.expanduser("~sandbox")` and `tarfile`'s
owner names work.
"""

from collections import namedtuple as _namedtuple

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
    if not isinstance(uid, int):
        raise TypeError(f"'{type(uid).__name__}' object cannot be interpreted as an integer")
    for user in _USERS:
        if user.pw_uid == uid:
            return user
    raise KeyError(f"getpwuid(): uid not found: {uid}")


def getpwnam(name):
    """The entry of the user named `name`."""
    if not isinstance(name, str):
        raise TypeError(f"getpwnam() argument must be str, not {type(name).__name__}")
    if "\0" in name:
        raise ValueError("embedded null character")
    name.encode()
    for user in _USERS:
        if user.pw_name == name:
            return user
    raise KeyError(f"getpwnam(): name not found: {name!r}")


def getpwall():
    """Every entry."""
    return list(_USERS)
