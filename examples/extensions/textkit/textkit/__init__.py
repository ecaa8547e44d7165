"""textkit: a package that ships two native extension modules.

``textkit/fastsum.cpython-314-wasm32-wasi.so`` and
``textkit/wordcount.cpython-314-wasm32-wasi.so`` are the ``fastsum`` and
``wordcount`` examples (Rust on eryx-cpython-sys), built with
``cargo xtask ext build``; this file is the pure-Python layer on top.
"""

from .fastsum import fast_sum
from .wordcount import count

__all__ = ["count", "fast_sum", "report"]


def report(text):
    """A one-line summary of `text`, computed by both native modules."""
    lines, words, longest = count(text)
    return f"{lines} lines, {words} words, longest {longest!r}, checksum {fast_sum(words)}"
