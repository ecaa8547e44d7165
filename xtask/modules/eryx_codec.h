/* Shared by eryx's `_bz2` and `_lzma` modules: output collected in a bytes
 * object that grows as the codec fills it (capped at `max_length` when one
 * is given), and input a decompressor could not take yet, kept for the next
 * call. Written for eryx; the Python-level behaviour follows CPython's
 * documented `_bz2`/`_lzma` API. */
#ifndef ERYX_CODEC_H
#define ERYX_CODEC_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

typedef struct {
    PyObject *buf;  /* bytes, resized as it fills */
    Py_ssize_t used;
    Py_ssize_t max; /* < 0: no cap */
} eryx_out;

static int
eryx_out_init(eryx_out *o, Py_ssize_t max)
{
    Py_ssize_t size = 32 * 1024;
    if (max >= 0 && max < size) {
        size = max;
    }
    o->buf = PyBytes_FromStringAndSize(NULL, size);
    o->used = 0;
    o->max = max;
    return o->buf == NULL ? -1 : 0;
}

/* Room for more output at `*next` (`*avail` bytes, at most `limit`).
 * Returns 0, 1 when the cap is reached (no room), -1 with an exception. */
static int
eryx_out_room(eryx_out *o, char **next, size_t *avail, size_t limit)
{
    Py_ssize_t size = PyBytes_GET_SIZE(o->buf);
    if (o->used == size) {
        if (o->max >= 0 && size >= o->max) {
            return 1;
        }
        Py_ssize_t step = size < 1024 * 1024 ? (size > 0 ? size : 1024) : 1024 * 1024 * 4;
        if (size > PY_SSIZE_T_MAX - step) {
            PyErr_NoMemory();
            return -1;
        }
        Py_ssize_t grown = size + step;
        if (o->max >= 0 && grown > o->max) {
            grown = o->max;
        }
        if (_PyBytes_Resize(&o->buf, grown) < 0) {
            return -1;
        }
        size = grown;
    }
    size_t room = (size_t)(size - o->used);
    *next = PyBytes_AS_STRING(o->buf) + o->used;
    *avail = room < limit ? room : limit;
    return 0;
}

/* The codec wrote up to `next`. */
static void
eryx_out_wrote(eryx_out *o, const char *next)
{
    o->used = next - PyBytes_AS_STRING(o->buf);
}

/* Whether output stopped because the cap was reached. */
static int
eryx_out_full(const eryx_out *o)
{
    return o->max >= 0 && o->used >= o->max;
}

static PyObject *
eryx_out_finish(eryx_out *o)
{
    if (o->used != PyBytes_GET_SIZE(o->buf) && _PyBytes_Resize(&o->buf, o->used) < 0) {
        return NULL;
    }
    PyObject *result = o->buf;
    o->buf = NULL;
    return result;
}

static void
eryx_out_drop(eryx_out *o)
{
    Py_CLEAR(o->buf);
}

/* The input of one decompress call: what was left over from the last call
 * (`*pending`, bytes or NULL) followed by `data`. On success `*owned` holds
 * a new reference to keep alive while the codec reads `*ptr`/`*len` (NULL
 * when `data` is used directly). */
static int
eryx_in_join(PyObject **pending, Py_buffer *data, PyObject **owned,
             const char **ptr, Py_ssize_t *len)
{
    *owned = NULL;
    if (*pending == NULL) {
        *ptr = data->buf;
        *len = data->len;
        return 0;
    }
    Py_ssize_t kept = PyBytes_GET_SIZE(*pending);
    if (data->len > PY_SSIZE_T_MAX - kept) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *joined = PyBytes_FromStringAndSize(NULL, kept + data->len);
    if (joined == NULL) {
        return -1;
    }
    memcpy(PyBytes_AS_STRING(joined), PyBytes_AS_STRING(*pending), kept);
    memcpy(PyBytes_AS_STRING(joined) + kept, data->buf, data->len);
    Py_CLEAR(*pending);
    *owned = joined;
    *ptr = PyBytes_AS_STRING(joined);
    *len = kept + data->len;
    return 0;
}

/* Keeps `len` unread bytes at `ptr` for the next call (or drops them). */
static int
eryx_in_keep(PyObject **pending, const char *ptr, Py_ssize_t len)
{
    Py_CLEAR(*pending);
    if (len > 0) {
        *pending = PyBytes_FromStringAndSize(ptr, len);
        if (*pending == NULL) {
            return -1;
        }
    }
    return 0;
}

/* What every decompressor object starts with (its first member). */
typedef struct {
    PyObject_HEAD
    char eof;
    char needs_input;
    PyObject *unused_data; /* bytes after the end of the stream */
    PyObject *pending;     /* input not taken yet, or NULL */
} eryx_decomp;

/* A fresh stream: not at its end, wanting input, nothing left over. */
static int
eryx_decomp_reset(eryx_decomp *d)
{
    d->eof = 0;
    d->needs_input = 1;
    Py_CLEAR(d->pending);
    Py_XSETREF(d->unused_data, PyBytes_FromStringAndSize(NULL, 0));
    return d->unused_data == NULL ? -1 : 0;
}

/* After a decompress loop stopped with `left` bytes unread at `left_at`:
 * at the end of the stream they are `unused_data`, otherwise they are kept
 * for the next call. With input left, or output stopped at the cap (the
 * codec may hold more), the next call makes progress without new data. */
static int
eryx_decomp_settle(eryx_decomp *d, const char *left_at, Py_ssize_t left, const eryx_out *out)
{
    if (d->eof) {
        d->needs_input = 0;
        Py_CLEAR(d->pending);
        Py_XSETREF(d->unused_data, PyBytes_FromStringAndSize(left_at, left));
        return d->unused_data == NULL ? -1 : 0;
    }
    if (eryx_in_keep(&d->pending, left_at, left) < 0) {
        return -1;
    }
    d->needs_input = left == 0 && !eryx_out_full(out);
    return 0;
}

static void
eryx_decomp_clear(eryx_decomp *d)
{
    Py_CLEAR(d->unused_data);
    Py_CLEAR(d->pending);
}

static PyObject *
eryx_decomp_get_eof(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(((eryx_decomp *)op)->eof);
}

static PyObject *
eryx_decomp_get_needs_input(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(((eryx_decomp *)op)->needs_input);
}

static PyObject *
eryx_decomp_get_unused_data(PyObject *op, void *Py_UNUSED(closure))
{
    eryx_decomp *d = (eryx_decomp *)op;
    return d->unused_data == NULL ? PyBytes_FromStringAndSize(NULL, 0)
                                  : Py_NewRef(d->unused_data);
}

/* The getters every decompressor type has. */
#define ERYX_DECOMP_GETSET                                                              \
    {"eof", eryx_decomp_get_eof, NULL, "True once the end-of-stream marker was reached.", \
     NULL},                                                                             \
        {"needs_input", eryx_decomp_get_needs_input, NULL,                              \
         "False if decompress() can give more output without more input.", NULL},       \
        {"unused_data", eryx_decomp_get_unused_data, NULL,                              \
         "Data found after the end of the compressed stream.", NULL}

/* Objects are set up in __new__ (so that `Type.__new__(Type)` is usable):
 * defines `<prefix>_new` calling `<prefix>_init`. */
#define ERYX_NEW_CALLS_INIT(prefix)                                                     \
    static PyObject *prefix##_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)   \
    {                                                                                   \
        PyObject *self = tp->tp_alloc(tp, 0);                                           \
        if (self != NULL && prefix##_init(self, args, kwargs) < 0) {                    \
            Py_CLEAR(self);                                                             \
        }                                                                               \
        return self;                                                                    \
    }

/* `max_length` as the decompressors take it: -1 (or any negative) = no cap. */
static int
eryx_parse_decompress_args(PyObject *args, PyObject *kwargs, Py_buffer *data,
                           Py_ssize_t *max_length)
{
    static char *names[] = {"data", "max_length", NULL};
    *max_length = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|n:decompress", names, data,
                                     max_length)) {
        return -1;
    }
    return 0;
}

#endif
