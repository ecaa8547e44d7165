"""Process pools for the eryx sandbox, which has no processes.

WASI has no `fork` or `spawn`, so `multiprocessing.Pool` (and its
`ThreadPool`, `multiprocessing.dummy.Pool`) and
`concurrent.futures.ProcessPoolExecutor` would fail when made. The
sandbox's versions run each task in its one process, when it is submitted
(`imap` when its result is asked for), one after another: results, their
order, exceptions and callbacks are what the real pools give; nothing runs
in parallel, and tasks share the interpreter's state (arguments are not
pickled). The prelude puts them in place when `multiprocessing.pool` or
`concurrent.futures.process` is first imported. `multiprocessing.Process`
is not replaced: a process that talks to its parent through pipes or
queues cannot run inline.
"""

import itertools
import os

__all__ = ["Pool", "ThreadPool", "process_pool_executor"]


class ApplyResult:
    """The result of `apply_async`/`map_async`: computed when it was made."""

    def __init__(self, compute, callback=None, error_callback=None):
        try:
            self._value = compute()
            self._success = True
        except Exception as e:
            self._value = e
            self._success = False
        if self._success and callback is not None:
            callback(self._value)
        elif not self._success and error_callback is not None:
            error_callback(self._value)

    def ready(self):
        return True

    def successful(self):
        return self._success

    def wait(self, timeout=None):
        pass

    def get(self, timeout=None):
        if self._success:
            return self._value
        raise self._value


AsyncResult = MapResult = ApplyResult


class IMapIterator:
    """The iterator `imap`/`imap_unordered` return: each result is computed
    when it is asked for."""

    def __init__(self, results):
        self._results = results

    def __iter__(self):
        return self

    def next(self, timeout=None):
        return next(self._results)

    __next__ = next


class Pool:
    """`multiprocessing.Pool`, running every task in the sandbox's process."""

    def __init__(self, processes=None, initializer=None, initargs=(),
                 maxtasksperchild=None, context=None):
        if processes is not None and processes < 1:
            raise ValueError("Number of processes must be at least 1")
        if maxtasksperchild is not None and (
            not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0
        ):
            raise ValueError("maxtasksperchild must be a positive int or None")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._processes = processes or os.cpu_count() or 1
        self._state = "RUN"
        if initializer is not None:
            initializer(*initargs)

    def __repr__(self):
        return f"<{type(self).__module__}.{type(self).__qualname__} state={self._state} pool_size={self._processes}>"

    def _check_running(self):
        if self._state != "RUN":
            raise ValueError("Pool not running")

    def apply(self, func, args=(), kwds={}):
        self._check_running()
        return func(*args, **kwds)

    def apply_async(self, func, args=(), kwds={}, callback=None, error_callback=None):
        self._check_running()
        return ApplyResult(lambda: func(*args, **kwds), callback, error_callback)

    def map(self, func, iterable, chunksize=None):
        self._check_running()
        return list(map(func, iterable))

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        self._check_running()
        return ApplyResult(lambda: list(map(func, iterable)), callback, error_callback)

    def starmap(self, func, iterable, chunksize=None):
        self._check_running()
        return list(itertools.starmap(func, iterable))

    def starmap_async(self, func, iterable, chunksize=None, callback=None,
                      error_callback=None):
        self._check_running()
        return ApplyResult(lambda: list(itertools.starmap(func, iterable)), callback,
                           error_callback)

    def imap(self, func, iterable, chunksize=1):
        self._check_running()
        return IMapIterator(map(func, iterable))

    imap_unordered = imap

    def close(self):
        if self._state == "RUN":
            self._state = "CLOSE"

    def terminate(self):
        self._state = "TERMINATE"

    def join(self):
        if self._state == "RUN":
            raise ValueError("Pool is still running")

    def __enter__(self):
        self._check_running()
        return self

    def __exit__(self, *exc):
        self.terminate()


class ThreadPool(Pool):
    """`multiprocessing.pool.ThreadPool` (and `multiprocessing.dummy.Pool`)."""

    def __init__(self, processes=None, initializer=None, initargs=()):
        super().__init__(processes, initializer, initargs)


def process_pool_executor(thread_module):
    """`ProcessPoolExecutor` on the sandbox's inline thread pool."""

    class ProcessPoolExecutor(thread_module.ThreadPoolExecutor):
        """`concurrent.futures.ProcessPoolExecutor`, running every task in
        the sandbox's process when it is submitted."""

        def __init__(self, max_workers=None, mp_context=None, initializer=None,
                     initargs=(), *, max_tasks_per_child=None):
            if max_workers is not None and max_workers <= 0:
                raise ValueError("max_workers must be greater than 0")
            if max_tasks_per_child is not None and (
                not isinstance(max_tasks_per_child, int) or max_tasks_per_child <= 0
            ):
                raise ValueError("max_tasks_per_child must be >= 1")
            super().__init__(max_workers, initializer=initializer, initargs=initargs)

        def map(self, fn, *iterables, timeout=None, chunksize=1, buffersize=None):
            if chunksize < 1:
                raise ValueError("chunksize must be >= 1.")
            return super().map(fn, *iterables, timeout=timeout, chunksize=chunksize,
                               buffersize=buffersize)

        def terminate_workers(self):
            self.shutdown(wait=False, cancel_futures=True)

        def kill_workers(self):
            self.shutdown(wait=False, cancel_futures=True)

    ProcessPoolExecutor.__module__ = "concurrent.futures.process"
    return ProcessPoolExecutor
