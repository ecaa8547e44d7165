/*
 * sigmask: an example C extension that blocks signals around its work, as
 * C libraries that start threads do (xz, which cramjam builds, masks every
 * signal in the threads it starts). WASI's libc declares no signal sets or
 * masks; eryx's guest compilers add them (nothing delivers a signal to the
 * guest, so a mask changes nothing and the previous one reads as empty).
 *
 *   guarded(f) -> (result, old_mask_was_empty, blocked_all_ok)
 *       calls f() with every signal blocked, then restores the mask
 *   sets() -> (empty_has_2, full_has_2, added_has_3, deleted_has_3)
 *       what the set functions report
 *   errors() -> (bad_signal_errno, bad_how_errno, bad_how_pthread)
 *       the errors asked-for mistakes get
 */
#include <Python.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>

static PyObject *sigmask_guarded(PyObject *self, PyObject *f) {
    sigset_t all, old;
    sigfillset(&all);
    sigfillset(&old);
    int blocked = pthread_sigmask(SIG_SETMASK, &all, &old);
    int old_empty = !sigismember(&old, SIGINT) && !sigismember(&old, SIGTERM);
    PyObject *result = PyObject_CallNoArgs(f);
    int restored = pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (result == NULL) return NULL;
    return Py_BuildValue("(NOO)", result, old_empty ? Py_True : Py_False,
                         blocked == 0 && restored == 0 ? Py_True : Py_False);
}

static PyObject *sigmask_sets(PyObject *self, PyObject *unused) {
    sigset_t empty, full, some;
    sigemptyset(&empty);
    sigfillset(&full);
    sigemptyset(&some);
    sigaddset(&some, 3);
    int added = sigismember(&some, 3);
    sigdelset(&some, 3);
    return Py_BuildValue("(iiii)", sigismember(&empty, 2), sigismember(&full, 2), added,
                         sigismember(&some, 3));
}

static PyObject *sigmask_errors(PyObject *self, PyObject *unused) {
    sigset_t set;
    sigemptyset(&set);
    errno = 0;
    int bad_signal = sigaddset(&set, 0) == -1 ? errno : 0;
    errno = 0;
    int bad_how = sigprocmask(99, &set, NULL) == -1 ? errno : 0;
    int bad_how_pthread = pthread_sigmask(99, &set, NULL);
    return Py_BuildValue("(iii)", bad_signal, bad_how, bad_how_pthread);
}

static PyMethodDef methods[] = {
    {"guarded", sigmask_guarded, METH_O, "Call f() with every signal blocked."},
    {"sets", sigmask_sets, METH_NOARGS, "What the signal set functions report."},
    {"errors", sigmask_errors, METH_NOARGS, "The errors of mistaken calls."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sigmask", "Signal masks in the guest.", -1, methods,
};

PyMODINIT_FUNC PyInit_sigmask(void) { return PyModule_Create(&module); }
