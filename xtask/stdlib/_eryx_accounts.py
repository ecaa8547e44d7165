"""What eryx's `pwd` and `grp` share: argument checks as CPython's
modules make them, and the lookup in a table of one entry each."""


def find(entries, field, value, function, what):
    """The entry whose `field` is `value`, else KeyError as CPython says it."""
    for entry in entries:
        if getattr(entry, field) == value:
            return entry
    shown = repr(value) if isinstance(value, str) else value
    raise KeyError(f"{function}(): {what} not found: {shown}")


def check_id(value):
    """A user or group id must be an int."""
    if not isinstance(value, int):
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")


def check_name(value, function):
    """A name must be a str that C could take."""
    if not isinstance(value, str):
        raise TypeError(f"{function}() argument must be str, not {type(value).__name__}")
    if "\0" in value:
        raise ValueError("embedded null character")
    value.encode()
