"""Runs one CPython test module inside the eryx sandbox and writes a JSON
summary to /tmp/compat-result.json (on the host: a scratch directory that
`cargo xtask compat` mounts read-write at /tmp).

Run as `eryx --mount TESTS:/compat --mount SCRATCH:/tmp:rw -c RUNNER MODULE`.
"""

import io
import json
import os
import sys
import time
import traceback
import unittest

sys.path.insert(0, "/compat")
os.chdir("/tmp")
name = sys.argv[1]


class Collect(unittest.TextTestResult):
    """Counts passes, and saves the summary every few seconds, so that a
    module stopped by the time limit still reports what it ran."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = 0
        self.saved = time.monotonic()

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1

    def startTest(self, test):
        super().startTest(test)
        # Read by the host if the sandbox dies in this test.
        with open("/tmp/compat-current", "w") as f:
            f.write(str(getattr(test, "id", lambda: test)()))

    def stopTest(self, test):
        super().stopTest(test)
        if time.monotonic() - self.saved > 5:
            self.saved = time.monotonic()
            save(partial=True)


def last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def describe(exc):
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def fill():
    if result is None:
        return
    summary["run"] = result.testsRun
    summary["passed"] = result.passed
    summary["skipped"] = len(result.skipped)
    for kind, items in (("failures", result.failures), ("errors", result.errors)):
        summary[kind] = [{"test": str(getattr(test, "id", lambda: test)()),
                          "detail": last_line(text), "traceback": text[-2000:]}
                         for test, text in items]


def save(partial=False):
    fill()
    summary["partial"] = partial
    summary["seconds"] = round(time.monotonic() - start, 2)
    with open("/tmp/compat-result.json.tmp", "w") as f:
        json.dump(summary, f)
    os.replace("/tmp/compat-result.json.tmp", "/tmp/compat-result.json")


summary = {"module": name, "run": 0, "passed": 0, "failures": [], "errors": [], "skipped": 0,
           "load_error": None, "skipped_module": None, "runner_error": None}
start = time.monotonic()
result = None
try:
    suite = unittest.defaultTestLoader.loadTestsFromName("test." + name)
except unittest.SkipTest as exc:
    # The module skips itself as a whole (e.g. "requires subprocess").
    summary["skipped_module"] = str(exc)
except BaseException as exc:  # noqa: BLE001 - reported, not raised
    summary["load_error"] = describe(exc)
else:
    # Tests that stopped an earlier run of this module (`cargo xtask compat`
    # runs the rest without them).
    try:
        with open("/tmp/compat-skip.json") as f:
            skip = set(json.load(f))
    except FileNotFoundError:
        skip = set()

    def without(tests):
        kept = unittest.TestSuite()
        for test in tests:
            if isinstance(test, unittest.TestSuite):
                kept.addTest(without(test))
            elif str(getattr(test, "id", lambda: test)()) not in skip:
                kept.addTest(test)
        return kept

    if skip:
        suite = without(suite)
    stream = io.StringIO()
    result = Collect(unittest.runner._WritelnDecorator(stream), False, 0)
    try:
        suite.run(result)
    except BaseException as exc:  # noqa: BLE001 - e.g. MemoryError outside a test
        summary["runner_error"] = describe(exc)


save()
