"""numstats: statistics over floats, computed natively (a PyO3 extension).

The native part is ``numstats._native``; this wrapper adds a pure-Python
convenience on top, like most packages with a native core do.
"""

from ._native import Running, describe, histogram

__all__ = ["Running", "describe", "histogram", "zscores"]


def zscores(values):
    """Each value's distance from the mean, in standard deviations."""
    d = describe(values)
    if d["std"] == 0:
        return [0.0 for _ in values]
    return [(v - d["mean"]) / d["std"] for v in values]
