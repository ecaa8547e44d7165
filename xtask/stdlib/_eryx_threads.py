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
    and a thread that waits for the code that started it waits until the
    time limit stops it."""
    Thread = threading.Thread
    is_alive = Thread.is_alive
    wait = threading.Condition.wait
    event_wait = threading.Event.wait

    def wait_after_threads(self, timeout=None):
        # The threads run with the lock released (a queue's producer needs
        # it), and the wait then ends as a wakeup would: callers re-check
        # what they wait for (a queue does), and nothing could notify later.
        if not any(not t.daemon for t in pending):
            return wait(self, timeout)
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        saved = self._release_save()
        try:
            run_pending()
        finally:
            self._acquire_restore(saved)
        return True

    def event_wait_after_threads(self, timeout=None):
        if pending:
            run_pending()
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
        threading._active[ident] = self
        try:
            self.run()
        except BaseException:
            self._invoke_excepthook(self)
        finally:
            self._eryx_state = "done"
            if previous is not None:
                threading._active[ident] = previous

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


def run_pending():
    """Runs the non-daemon threads started and not yet run."""
    while True:
        waiting = [t for t in pending if not t.daemon]
        if not waiting:
            return
        waiting[0]._eryx_run_now()
