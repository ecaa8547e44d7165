/* `fcntl` for the eryx guest, written for eryx to the API CPython documents
 * (the WASI build of CPython has no `fcntl` module; filelock, portalocker,
 * mailbox and many tools import it).
 *
 * What WASI can do is done by wasi-libc: `fcntl()` with F_GETFD/F_SETFD/
 * F_GETFL/F_SETFL (O_NONBLOCK, O_APPEND) and `ioctl()` with FIONREAD/FIONBIO.
 * WASI has no file locks and no duplicate descriptors, so:
 *  - the sandbox is one process: record locks (`lockf`, F_SETLK/F_SETLKW/
 *    F_GETLK) never conflict within a process, as POSIX says, and are
 *    granted; F_GETLK reports the range unlocked;
 *  - `flock` locks belong to the open file: two descriptors of one file in
 *    the sandbox do conflict, as on Linux. A request that would wait for a
 *    lock this sandbox holds could only wait forever (no other thread or
 *    process can release it), so it raises OSError(EDEADLK) at once;
 *    LOCK_NB raises EWOULDBLOCK (BlockingIOError) as usual;
 *  - locks taken in the sandbox are not seen by the host's processes, nor
 *    theirs by the sandbox;
 *  - F_DUPFD/F_DUPFD_CLOEXEC fail with ENOSYS (no dup in WASI). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

/* Linux's values where wasi-libc's headers leave them out. */
#ifndef F_DUPFD
#define F_DUPFD 0
#endif
#ifndef F_GETLK
#define F_GETLK 5
#endif
#ifndef F_SETLK
#define F_SETLK 6
#endif
#ifndef F_SETLKW
#define F_SETLKW 7
#endif
#ifndef F_RDLCK
#define F_RDLCK 0
#define F_WRLCK 1
#define F_UNLCK 2
#endif
#ifndef LOCK_SH
#define LOCK_SH 1
#define LOCK_EX 2
#define LOCK_NB 4
#define LOCK_UN 8
#endif

#define ARG_MAX_BYTES 1024

/* The descriptor of `file` (an int or an object with fileno()) if it is
 * open, with its file's identity in `st`; else -1 with an exception. */
static int
open_fd(PyObject *file, struct stat *st)
{
    int fd = PyObject_AsFileDescriptor(file);
    if (fd < 0) {
        return -1;
    }
    if (fstat(fd, st) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return fd;
}

/* The lock kind of a flock()/lockf() operation (LOCK_SH, LOCK_EX or
 * LOCK_UN, LOCK_NB aside), or -1 with OSError(EINVAL) set. */
static int
lock_kind(int op)
{
    int kind = op & ~LOCK_NB;
    if (kind != LOCK_SH && kind != LOCK_EX && kind != LOCK_UN) {
        errno = EINVAL;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return kind;
}

/* ---- flock: locks of open files, held in this sandbox ---- */

typedef struct {
    int fd;
    dev_t dev;
    ino_t ino;
    int exclusive;
} held_lock;

static held_lock *held = NULL;
static Py_ssize_t n_held = 0;

/* Whether the entry still describes an open descriptor of that file (a
 * descriptor closed without LOCK_UN releases its lock, as closing does). */
static int
still_held(const held_lock *h)
{
    struct stat st;
    return fstat(h->fd, &st) == 0 && st.st_dev == h->dev && st.st_ino == h->ino;
}

static void
drop_lock(Py_ssize_t i)
{
    held[i] = held[n_held - 1];
    n_held--;
}

static PyObject *
fcntl_flock(PyObject *module, PyObject *args)
{
    PyObject *file;
    int op;
    if (!PyArg_ParseTuple(args, "Oi:flock", &file, &op)) {
        return NULL;
    }
    struct stat st;
    int fd = open_fd(file, &st);
    if (fd < 0) {
        return NULL;
    }
    int kind = lock_kind(op);
    if (kind < 0) {
        return NULL;
    }
    Py_ssize_t mine = -1;
    for (Py_ssize_t i = n_held - 1; i >= 0; i--) {
        if (!still_held(&held[i])) {
            drop_lock(i);
        }
    }
    for (Py_ssize_t i = 0; i < n_held; i++) {
        if (held[i].dev != st.st_dev || held[i].ino != st.st_ino) {
            continue;
        }
        if (held[i].fd == fd) {
            mine = i;
            continue;
        }
        if (kind != LOCK_UN && (kind == LOCK_EX || held[i].exclusive)) {
            if (op & LOCK_NB) {
                errno = EWOULDBLOCK;
                return PyErr_SetFromErrno(PyExc_OSError);
            }
            PyObject *exc = PyObject_CallFunction(
                PyExc_OSError, "is", EDEADLK,
                "flock() would wait forever: another descriptor in this sandbox holds a "
                "lock on the same file, and nothing else runs to release it");
            if (exc != NULL) {
                PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
                Py_DECREF(exc);
            }
            return NULL;
        }
    }
    if (kind == LOCK_UN) {
        if (mine >= 0) {
            drop_lock(mine);
        }
        Py_RETURN_NONE;
    }
    if (mine >= 0) {
        held[mine].exclusive = kind == LOCK_EX;
        Py_RETURN_NONE;
    }
    held_lock *grown = PyMem_RawRealloc(held, (size_t)(n_held + 1) * sizeof(held_lock));
    if (grown == NULL) {
        return PyErr_NoMemory();
    }
    held = grown;
    held[n_held].fd = fd;
    held[n_held].dev = st.st_dev;
    held[n_held].ino = st.st_ino;
    held[n_held].exclusive = kind == LOCK_EX;
    n_held++;
    Py_RETURN_NONE;
}

/* ---- lockf: record locks, which never conflict within one process ---- */

static PyObject *
fcntl_lockf(PyObject *module, PyObject *args)
{
    PyObject *file, *len = NULL, *start = NULL;
    int cmd, whence = 0;
    if (!PyArg_ParseTuple(args, "Oi|OOi:lockf", &file, &cmd, &len, &start, &whence)) {
        return NULL;
    }
    struct stat st;
    int fd = open_fd(file, &st);
    if (fd < 0) {
        return NULL;
    }
    if (lock_kind(cmd) < 0) {
        return NULL;
    }
    if (whence < 0 || whence > 2) {
        errno = EINVAL;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

/* ---- fcntl and ioctl ---- */

static int
is_lock_command(int cmd)
{
    return cmd == F_GETLK || cmd == F_SETLK || cmd == F_SETLKW;
}

static PyObject *
fcntl_fcntl(PyObject *module, PyObject *args)
{
    PyObject *file, *arg = NULL;
    int cmd;
    if (!PyArg_ParseTuple(args, "Oi|O:fcntl", &file, &cmd, &arg)) {
        return NULL;
    }
    int fd = PyObject_AsFileDescriptor(file);
    if (fd < 0) {
        return NULL;
    }
    if (arg != NULL && !PyLong_Check(arg)) {
        Py_buffer view;
        if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError,
                            "fcntl() argument 3 must be an integer, a bytes-like object, or a string");
            return NULL;
        }
        char buf[ARG_MAX_BYTES];
        if (view.len > ARG_MAX_BYTES) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_ValueError, "fcntl argument 3 is too long");
            return NULL;
        }
        Py_ssize_t n = view.len;
        memcpy(buf, view.buf, (size_t)n);
        PyBuffer_Release(&view);
        struct stat st;
        if (open_fd(file, &st) < 0) {
            return NULL;
        }
        if (!is_lock_command(cmd)) {
            errno = EINVAL;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (cmd == F_GETLK && n >= (Py_ssize_t)sizeof(short)) {
            short unlocked = F_UNLCK;
            memcpy(buf, &unlocked, sizeof(short));
        }
        return PyBytes_FromStringAndSize(buf, n);
    }
    long value = 0;
    if (arg != NULL) {
        value = PyLong_AsLong(arg);
        if (value == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (is_lock_command(cmd)) {
        /* A lock command needs a struct flock, not an integer. */
        errno = EINVAL;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (cmd == F_DUPFD
#ifdef F_DUPFD_CLOEXEC
        || cmd == F_DUPFD_CLOEXEC
#endif
    ) {
        errno = ENOSYS;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    int ret = fcntl(fd, cmd, (int)value);
    if (ret < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLong(ret);
}

static PyObject *
fcntl_ioctl(PyObject *module, PyObject *args)
{
    PyObject *file, *arg = NULL;
    unsigned long request;
    int mutate = 1;
    if (!PyArg_ParseTuple(args, "Ok|Op:ioctl", &file, &request, &arg, &mutate)) {
        return NULL;
    }
    int fd = PyObject_AsFileDescriptor(file);
    if (fd < 0) {
        return NULL;
    }
    if (arg != NULL && !PyLong_Check(arg)) {
        Py_buffer view;
        int writable = PyObject_GetBuffer(arg, &view, PyBUF_WRITABLE) == 0;
        if (!writable) {
            PyErr_Clear();
            if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
                PyErr_Clear();
                PyErr_SetString(PyExc_TypeError,
                                "ioctl() argument 3 must be an integer, a bytes-like object, or a string");
                return NULL;
            }
        }
        char buf[ARG_MAX_BYTES + 1];
        if (view.len > ARG_MAX_BYTES && !(writable && mutate)) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_ValueError, "ioctl argument 3 is too long");
            return NULL;
        }
        char *target = (writable && mutate) ? (char *)view.buf : buf;
        if (target == buf) {
            memcpy(buf, view.buf, (size_t)view.len);
        }
        int ret = ioctl(fd, request, target);
        Py_ssize_t n = view.len;
        PyBuffer_Release(&view);
        if (ret < 0) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (writable && mutate) {
            return PyLong_FromLong(ret);
        }
        return PyBytes_FromStringAndSize(buf, n);
    }
    int value = 0;
    if (arg != NULL) {
        value = PyLong_AsInt(arg);
        if (value == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (request == FIONREAD) {
        /* It writes through its argument: an integer is no place to write. */
        errno = EFAULT;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    int ret = request == FIONBIO ? ioctl(fd, request, &value) : ioctl(fd, request, value);
    if (ret < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLong(ret);
}

static PyMethodDef methods[] = {
    {"fcntl", fcntl_fcntl, METH_VARARGS,
     "fcntl(fd, cmd, arg=0, /)\n--\n\nPerform the operation cmd on file descriptor fd."},
    {"ioctl", fcntl_ioctl, METH_VARARGS,
     "ioctl(fd, request, arg=0, mutate_flag=True, /)\n--\n\nPerform the operation request on fd."},
    {"flock", fcntl_flock, METH_VARARGS,
     "flock(fd, operation, /)\n--\n\nLock or unlock the open file fd (see the module's notes)."},
    {"lockf", fcntl_lockf, METH_VARARGS,
     "lockf(fd, cmd, len=0, start=0, whence=0, /)\n--\n\nA record lock; within the "
     "sandbox's one process it never conflicts."},
    {NULL, NULL, 0, NULL},
};

static int
exec_module(PyObject *m)
{
    struct {
        const char *name;
        long value;
    } constants[] = {
        {"LOCK_SH", LOCK_SH},
        {"LOCK_EX", LOCK_EX},
        {"LOCK_NB", LOCK_NB},
        {"LOCK_UN", LOCK_UN},
        {"F_DUPFD", F_DUPFD},
#ifdef F_DUPFD_CLOEXEC
        {"F_DUPFD_CLOEXEC", F_DUPFD_CLOEXEC},
#endif
        {"F_GETFD", F_GETFD},
        {"F_SETFD", F_SETFD},
        {"F_GETFL", F_GETFL},
        {"F_SETFL", F_SETFL},
        {"F_GETLK", F_GETLK},
        {"F_SETLK", F_SETLK},
        {"F_SETLKW", F_SETLKW},
        {"F_RDLCK", F_RDLCK},
        {"F_WRLCK", F_WRLCK},
        {"F_UNLCK", F_UNLCK},
        {"FD_CLOEXEC", FD_CLOEXEC},
        {"FIONREAD", FIONREAD},
        {"FIONBIO", FIONBIO},
    };
    for (size_t i = 0; i < sizeof(constants) / sizeof(constants[0]); i++) {
        if (PyModule_AddIntConstant(m, constants[i].name, constants[i].value) < 0) {
            return -1;
        }
    }
    return 0;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "fcntl",
    .m_doc = "File-descriptor control for the eryx sandbox (see the notes in its source: "
             "locks are the sandbox's own, WASI has no dup).",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit_fcntl(void)
{
    return PyModuleDef_Init(&module_def);
}
