"""eryx: `threading.Thread` in the sandbox, installed by the prelude when
the first thread starts."""


def install(threading):
    """`threading.Thread` without threads (WASI has none; `start()` raised
    "can't start new thread"): a started thread runs its `run()` on the one
    thread when something waits for it: in `join()`; when the code would
    block otherwise (a `Condition`/`Event`/`queue` wait, `time.sleep`),
    the non-daemon threads started so far run first; and a non-daemon
    thread still not run runs at the end of the execution that started it
    (as a program waits for its non-daemon threads before it exits). While
    it runs, `current_thread()` is that thread; an exception goes to
    `threading.excepthook` as from a real thread. A daemon thread nobody
    joins never runs (rich's and tqdm's refresh threads end when joined),
    unless a wait without a timeout has nothing else to run (a daemon
    worker fed by a queue). A thread that waits without a timeout for the
    code that started it cannot go on (that code continues only when the
    thread returns): it ends there, silently if it is a daemon (as daemon
    threads end when a program exits), else with `ThreadBlocked` reported
    to `threading.excepthook`."""
    Thread = threading.Thread
    is_alive = Thread.is_alive
    wait = threading.Condition.wait
    event_wait = threading.Event.wait

    def wait_after_threads(self, timeout=None):
        # The threads run with the lock released (a queue's producer needs
        # it), and the wait then ends as a wakeup would: callers re-check
        # what they wait for (a queue does), and nothing could notify later.
        # Without a timeout, daemon threads run too: nothing else could.
        forever = timeout is None
        if not any(forever or not t.daemon for t in pending):
            if forever and running:
                raise ThreadBlocked(
                    f"{running[-1].name} waits (without a timeout) for code that "
                    "can only run after it returns: the sandbox runs threads one "
                    "at a time on one thread (WASI has none)"
                )
            # On the main thread, a wait nothing can end raises RuntimeError
            # (eryx-runtime's `pthread_cond_wait`).
            return wait(self, timeout)
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        saved = self._release_save()
        try:
            run_pending(daemon=forever)
        finally:
            self._acquire_restore(saved)
        return True

    def event_wait_after_threads(self, timeout=None):
        if pending:
            run_pending(daemon=timeout is None)
        return event_wait(self, timeout)

    wait_after_threads.__doc__ = wait.__doc__
    event_wait_after_threads.__doc__ = event_wait.__doc__
    threading.Condition.wait = wait_after_threads
    threading.Event.wait = event_wait_after_threads
    import time

    sleep = time.sleep

    def sleep_after_threads(seconds, /):
        if pending:
            run_pending()
        return sleep(seconds)

    sleep_after_threads.__doc__ = sleep.__doc__
    time.sleep = sleep_after_threads

    def start(self):
        if not self._initialized:
            raise RuntimeError("thread.__init__() not called")
        if self._started.is_set():
            raise RuntimeError("threads can only be started once")
        if self._context is None:
            # As a real start: the thread runs in a copy of the starter's
            # context (`-X thread_inherit_context`) or an empty one, so its
            # `ContextVar.set` calls do not leak into the starter's.
            import contextvars, sys

            inherit = sys.flags.thread_inherit_context
            self._context = contextvars.copy_context() if inherit else contextvars.Context()
        self._eryx_state = "pending"
        self._started.set()
        pending.append(self)

    def run_now(self):
        if self.__dict__.get("_eryx_state") != "pending":
            return
        self._eryx_state = "running"
        pending.remove(self)
        ident = threading.get_ident()
        previous = threading._active.get(ident)
        self._ident = ident
        if hasattr(self, "_native_id"):
            self._native_id = threading.get_native_id()
        threading._active[ident] = self
        running.append(self)
        try:
            self._context.run(self.run)
        except ThreadBlocked:
            if not self.daemon:
                self._invoke_excepthook(self)
        except BaseException:
            self._invoke_excepthook(self)
        finally:
            self._eryx_state = "done"
            running.pop()
            if previous is not None:
                threading._active[ident] = previous
            else:
                del threading._active[ident]

    def join(self, timeout=None):
        if not self._initialized:
            raise RuntimeError("Thread.__init__() not called")
        if not self._started.is_set():
            raise RuntimeError("cannot join thread before it is started")
        if self.__dict__.get("_eryx_state") == "running":
            raise RuntimeError("cannot join current thread")
        run_now(self)

    def alive(self):
        state = self.__dict__.get("_eryx_state")
        return is_alive(self) if state is None else state != "done"

    Thread.start = start
    Thread.join = join
    Thread.is_alive = alive
    Thread._eryx_run_now = run_now


#: Threads started and not yet run.
pending = []
#: The threads running now, innermost last (one runs inside another's wait).
running = []


class ThreadBlocked(BaseException):
    """Ends a thread that waits, without a timeout, for something only the
    code that started it (suspended until the thread returns) could do. A
    `BaseException`, so that `except Exception` in the thread's loop does
    not retry the wait forever."""


def run_pending(daemon=False):
    """Runs the non-daemon threads started and not yet run (with `daemon`,
    the daemon ones too)."""
    while True:
        waiting = [t for t in pending if daemon or not t.daemon]
        if not waiting:
            return
        waiting[0]._eryx_run_now()
