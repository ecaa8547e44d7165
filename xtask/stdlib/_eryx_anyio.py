"""anyio's worker threads and blocking portals for the eryx sandbox, which
has no threads.

anyio runs `to_thread.run_sync` (Starlette's and FastAPI's sync endpoints,
`run_in_threadpool`, file responses) on worker threads it starts itself,
and `from_thread.start_blocking_portal` (Starlette's and FastAPI's
`TestClient`) runs an event loop on a thread of its own. Neither thread ever
ran here: a sync endpoint deadlocked the event loop, and `TestClient` said
"This portal is not running". The prelude installs these versions when
anyio's asyncio backend and `anyio.from_thread` are first imported:

- `to_thread.run_sync` calls the function on the event loop's thread, in a
  copy of the context, within the capacity limiter, as a worker would; the
  loop waits for it, as the awaiting task would have. What the function
  calls back through `from_thread.run` has no worker to come from (anyio
  says so).
- A blocking portal keeps an event loop of its own on this thread and runs
  it while a call waits for its result (when the caller, with a portal
  thread, would be blocked anyway): tasks started with `start_task_soon`
  (a `TestClient`'s lifespan) make progress whenever any call runs, and
  the portal's context manager waits for them, or cancels them when its
  body raised, as anyio's does. A portal used from a running event loop
  (a `TestClient` in an async test) sets that loop aside while it runs.
"""

import asyncio
import concurrent.futures
import contextlib
import inspect
from contextvars import copy_context

__all__ = ["install_worker_threads", "install_portals"]


def install_worker_threads(module):
    """Replaces the asyncio backend's `run_sync_in_worker_thread` in the
    module `anyio._backends._asyncio`."""
    backend = module.AsyncIOBackend

    async def run_sync_in_worker_thread(
        cls, func, args, abandon_on_cancel=False, limiter=None
    ):
        await cls.checkpoint()
        async with limiter or cls.current_default_thread_limiter():
            context = copy_context()
            # A worker thread has no async library running in it.
            context.run(module.set_current_async_library, None)
            return context.run(func, *args)

    run_sync_in_worker_thread.__doc__ = backend.run_sync_in_worker_thread.__doc__
    backend.run_sync_in_worker_thread = classmethod(run_sync_in_worker_thread)


class _TaskStatus:
    """What `start_task` hands its function as `task_status`."""

    def __init__(self, future):
        self._future = future

    def started(self, value=None):
        if self._future.done():
            raise RuntimeError("called 'started' twice on the same task status")
        self._future.set_result(value)


class _PortalFuture(concurrent.futures.Future):
    """A portal call's future: asking for its outcome runs the portal's event
    loop until there is one."""

    def __init__(self, portal):
        super().__init__()
        self._portal = portal

    def result(self, timeout=None):
        self._portal._run_until(self)
        return super().result(timeout)

    def exception(self, timeout=None):
        self._portal._run_until(self)
        return super().exception(timeout)


class BlockingPortal:
    """anyio's `BlockingPortal` on this thread: see the module's doc."""

    def __init__(self):
        self._loop = asyncio.new_event_loop()
        self._tasks = set()
        self._stopped = False

    def _drive(self, make_awaitable):
        """Runs the portal's loop until what `make_awaitable()` gives is
        done; an event loop running on this thread (and its current task)
        is set aside meanwhile, as if the portal had a thread of its own."""
        if self._loop.is_running():
            raise RuntimeError("This method cannot be called from the event loop thread")
        outer = asyncio.events._get_running_loop()
        outer_task = None
        if outer is not None:
            outer_task = asyncio.tasks._swap_current_task(outer, None)
        asyncio.events._set_running_loop(None)
        try:
            return self._loop.run_until_complete(make_awaitable())
        finally:
            asyncio.events._set_running_loop(outer)
            if outer is not None:
                asyncio.tasks._swap_current_task(outer, outer_task)

    def _run_until(self, future):
        """Runs the portal's loop until `future` (a concurrent future) is
        done."""
        if future.done():
            return
        try:
            self._drive(lambda: asyncio.shield(asyncio.wrap_future(future, loop=self._loop)))
        except BaseException:
            # The outcome is the future's, read by the caller; only a
            # failure of the loop itself goes on from here (its deadlock
            # error: the call's task waits for what nothing will do). The
            # caller gives the call up, so its task is cancelled, or the
            # portal's end would wait for it too.
            if not future.done():
                future.cancel()
                raise

    async def _finish(self):
        # A task's own done callbacks (which drop it from the set) may run
        # after those of what awaited it: ask each whether it is done.
        while pending := [t for t in self._tasks if not t.done()]:
            await asyncio.gather(*pending, return_exceptions=True)
        await self._loop.shutdown_asyncgens()

    def _check_running(self):
        if self._stopped:
            raise RuntimeError("This portal is not running")

    def _spawn(self, func, args, kwargs, name, future):
        # As anyio's portal: the future stays pending while its task runs
        # (so that the caller may still cancel it) and is cancelled with it.
        async def run():
            try:
                value = func(*args, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
            except BaseException as e:
                if not future.done() and not isinstance(e, asyncio.CancelledError):
                    future.set_exception(e)
                if not isinstance(e, Exception):
                    raise
            else:
                if not future.done():
                    future.set_result(value)

        def finished(task):
            if task.cancelled() and not future.done():
                future.cancel()
                future.set_running_or_notify_cancel()

        if future.cancelled():
            return
        task = self._loop.create_task(run(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(finished)
        future.add_done_callback(lambda f: f.cancelled() and task.cancel())

    def call(self, func, *args):
        """Calls `func(*args)` (awaiting what it returns) in the portal's
        event loop and returns its result."""
        return self.start_task_soon(func, *args).result()

    def start_task_soon(self, func, *args, name=None):
        """Starts `func(*args)` as a task in the portal's event loop; returns
        a future of its result."""
        self._check_running()
        future = _PortalFuture(self)
        self._spawn(func, args, {}, name, future)
        return future

    def start_task(self, func, *args, name=None):
        """Starts `func(*args, task_status=...)` as a task and waits until it
        calls `task_status.started(value)`: returns (future, value)."""
        self._check_running()
        started = _PortalFuture(self)
        future = _PortalFuture(self)

        def propagate(f):
            if not started.done():
                if f.cancelled():
                    started.cancel()
                elif f.exception() is not None:
                    started.set_exception(f.exception())
                else:
                    started.set_exception(
                        RuntimeError("Task exited without calling task_status.started()")
                    )

        future.add_done_callback(propagate)
        self._spawn(func, args, {"task_status": _TaskStatus(started)}, name, future)
        return future, started.result()

    @contextlib.contextmanager
    def wrap_async_context_manager(self, cm):
        """Uses the async context manager `cm` from synchronous code."""
        value = self.call(cm.__aenter__)
        try:
            yield value
        except BaseException as e:
            if not self.call(cm.__aexit__, type(e), e, e.__traceback__):
                raise
        else:
            self.call(cm.__aexit__, None, None, None)

    def stop(self, cancel_remaining=False):
        """Stops the portal: waits for its tasks to finish, or cancels them
        first when `cancel_remaining`."""
        self._stopped = True
        if cancel_remaining:
            for task in list(self._tasks):
                task.cancel()
        try:
            self._drive(self._finish)
        finally:
            self._loop.close()


def install_portals(module):
    """Replaces `start_blocking_portal` in the module `anyio.from_thread`."""
    original = module.start_blocking_portal

    @contextlib.contextmanager
    def start_blocking_portal(backend="asyncio", backend_options=None, *, name=None):
        if backend != "asyncio":
            raise NotImplementedError(
                f"the {backend!r} backend: the sandbox's blocking portals run asyncio "
                "on the calling thread (it has no threads)"
            )
        portal = BlockingPortal()
        cancel_remaining = False
        try:
            yield portal
        except BaseException:
            cancel_remaining = True
            raise
        finally:
            portal.stop(cancel_remaining)

    start_blocking_portal.__doc__ = original.__doc__
    module.start_blocking_portal = start_blocking_portal
