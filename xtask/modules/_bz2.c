/* `_bz2` for the eryx guest: the accelerator module behind `bz2`, on
 * libbzip2 (built from Debian's bzip2 sources by `cargo xtask dist`).
 * Written for eryx to the API `bz2.py` and `_compression` use:
 * BZ2Compressor(compresslevel=9).compress/flush and
 * BZ2Decompressor().decompress(data, max_length=-1) with eof, unused_data
 * and needs_input. The sandbox has no threads, so no locking. */
#include "eryx_codec.h"

#include <limits.h>

#include "bzlib.h"

typedef struct {
    PyObject *compressor_type;
    PyObject *decompressor_type;
} bz2_state;

static bz2_state *
module_state(PyObject *module)
{
    return (bz2_state *)PyModule_GetState(module);
}

/* Raises the Python error for a libbzip2 status; returns -1 (or 0 for a
 * status that is not an error). */
static int
bz2_error(int status)
{
    switch (status) {
    case BZ_OK:
    case BZ_RUN_OK:
    case BZ_FLUSH_OK:
    case BZ_FINISH_OK:
    case BZ_STREAM_END:
        return 0;
    case BZ_PARAM_ERROR:
        PyErr_SetString(PyExc_ValueError,
                        "Internal error - invalid parameters passed to libbzip2");
        return -1;
    case BZ_MEM_ERROR:
        PyErr_NoMemory();
        return -1;
    case BZ_DATA_ERROR:
    case BZ_DATA_ERROR_MAGIC:
        PyErr_SetString(PyExc_OSError, "Invalid data stream");
        return -1;
    case BZ_IO_ERROR:
        PyErr_SetString(PyExc_OSError, "Unknown I/O error");
        return -1;
    case BZ_UNEXPECTED_EOF:
        PyErr_SetString(PyExc_EOFError,
                        "Compressed file ended before the logical end-of-stream was detected");
        return -1;
    case BZ_SEQUENCE_ERROR:
        PyErr_SetString(PyExc_RuntimeError,
                        "Internal error - Invalid sequence of commands sent to libbzip2");
        return -1;
    default:
        PyErr_Format(PyExc_OSError, "Unrecognized error from libbzip2: %d", status);
        return -1;
    }
}

/* ---- BZ2Compressor ---------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    bz_stream bzs;
    int ready;   /* bzs initialised */
    int flushed;
} Compressor;

static int
Compressor_init(PyObject *op, PyObject *args, PyObject *kwargs)
{
    Compressor *self = (Compressor *)op;
    static char *names[] = {"compresslevel", NULL};
    int level = 9;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|i:BZ2Compressor", names, &level)) {
        return -1;
    }
    if (level < 1 || level > 9) {
        PyErr_SetString(PyExc_ValueError, "compresslevel must be between 1 and 9");
        return -1;
    }
    if (self->ready) {
        BZ2_bzCompressEnd(&self->bzs);
        self->ready = 0;
    }
    memset(&self->bzs, 0, sizeof(self->bzs));
    if (bz2_error(BZ2_bzCompressInit(&self->bzs, level, 0, 0)) < 0) {
        return -1;
    }
    self->ready = 1;
    self->flushed = 0;
    return 0;
}

/* Runs the compressor over `len` bytes at `data` with `action`. */
static PyObject *
compress_run(Compressor *self, const char *data, Py_ssize_t len, int action)
{
    eryx_out out;
    if (eryx_out_init(&out, -1) < 0) {
        return NULL;
    }
    self->bzs.next_in = (char *)data;
    self->bzs.avail_in = 0;
    for (;;) {
        if (self->bzs.avail_in == 0 && len > 0) {
            size_t chunk = (size_t)len < UINT_MAX ? (size_t)len : UINT_MAX;
            self->bzs.avail_in = (unsigned int)chunk;
            len -= (Py_ssize_t)chunk;
        }
        if (action == BZ_RUN && self->bzs.avail_in == 0) {
            break;
        }
        char *next;
        size_t avail;
        if (eryx_out_room(&out, &next, &avail, UINT_MAX) < 0) {
            goto error;
        }
        self->bzs.next_out = next;
        self->bzs.avail_out = (unsigned int)avail;
        int status = BZ2_bzCompress(&self->bzs, action);
        eryx_out_wrote(&out, self->bzs.next_out);
        if (bz2_error(status) < 0) {
            goto error;
        }
        if (action == BZ_FINISH && status == BZ_STREAM_END) {
            break;
        }
    }
    return eryx_out_finish(&out);
error:
    eryx_out_drop(&out);
    return NULL;
}

static PyObject *
Compressor_compress(PyObject *op, PyObject *arg)
{
    Compressor *self = (Compressor *)op;
    Py_buffer data;
    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    if (!self->ready) {
        PyErr_SetString(PyExc_ValueError, "BZ2Compressor was not initialised");
    } else if (self->flushed) {
        PyErr_SetString(PyExc_ValueError, "Compressor has been flushed");
    } else {
        result = compress_run(self, data.buf, data.len, BZ_RUN);
    }
    PyBuffer_Release(&data);
    return result;
}

static PyObject *
Compressor_flush(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    Compressor *self = (Compressor *)op;
    if (!self->ready) {
        PyErr_SetString(PyExc_ValueError, "BZ2Compressor was not initialised");
        return NULL;
    }
    if (self->flushed) {
        PyErr_SetString(PyExc_ValueError, "Repeated call to flush()");
        return NULL;
    }
    self->flushed = 1;
    return compress_run(self, NULL, 0, BZ_FINISH);
}

static void
Compressor_dealloc(PyObject *op)
{
    Compressor *self = (Compressor *)op;
    PyTypeObject *tp = Py_TYPE(op);
    if (self->ready) {
        BZ2_bzCompressEnd(&self->bzs);
    }
    tp->tp_free(op);
    Py_DECREF(tp);
}

ERYX_NEW_CALLS_INIT(Compressor)

static PyMethodDef Compressor_methods[] = {
    {"compress", Compressor_compress, METH_O,
     "compress(data) -> bytes\n\nFeeds data to the compressor; returns what it "
     "produced so far (possibly nothing)."},
    {"flush", Compressor_flush, METH_NOARGS,
     "flush() -> bytes\n\nFinishes the stream; the compressor cannot be used after."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Compressor_slots[] = {
    {Py_tp_new, Compressor_new},
    {Py_tp_dealloc, Compressor_dealloc},
    {Py_tp_methods, Compressor_methods},
    {Py_tp_doc, "BZ2Compressor(compresslevel=9)\n\nIncremental bzip2 compressor."},
    {0, NULL},
};

static PyType_Spec Compressor_spec = {
    .name = "_bz2.BZ2Compressor",
    .basicsize = sizeof(Compressor),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = Compressor_slots,
};

/* ---- BZ2Decompressor -------------------------------------------------- */

typedef struct {
    eryx_decomp base; /* eof, needs_input, unused_data, pending */
    bz_stream bzs;
    int ready;
    char failed; /* a codec error happened: the stream is unusable */
} Decompressor;

static int
Decompressor_init(PyObject *op, PyObject *args, PyObject *kwargs)
{
    Decompressor *self = (Decompressor *)op;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "BZ2Decompressor() takes no keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTuple(args, ":BZ2Decompressor")) {
        return -1;
    }
    if (self->ready) {
        BZ2_bzDecompressEnd(&self->bzs);
        self->ready = 0;
    }
    memset(&self->bzs, 0, sizeof(self->bzs));
    if (bz2_error(BZ2_bzDecompressInit(&self->bzs, 0, 0)) < 0) {
        return -1;
    }
    self->ready = 1;
    self->failed = 0;
    return eryx_decomp_reset(&self->base);
}

static PyObject *
Decompressor_decompress(PyObject *op, PyObject *args, PyObject *kwargs)
{
    Decompressor *self = (Decompressor *)op;
    Py_buffer data;
    Py_ssize_t max_length;
    if (eryx_parse_decompress_args(args, kwargs, &data, &max_length) < 0) {
        return NULL;
    }
    if (!self->ready) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "BZ2Decompressor was not initialised");
        return NULL;
    }
    if (self->base.eof) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_EOFError, "End of stream already reached");
        return NULL;
    }
    if (self->failed) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "Cannot decompress after a previous error");
        return NULL;
    }
    PyObject *owned;
    const char *in;
    Py_ssize_t in_len;
    if (eryx_in_join(&self->base.pending, &data, &owned, &in, &in_len) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    eryx_out out;
    if (eryx_out_init(&out, max_length) < 0) {
        goto error;
    }
    /* Input is fed in chunks of at most UINT_MAX bytes; `rest` is what
     * has not been handed to libbzip2 yet. */
    Py_ssize_t rest = in_len;
    self->bzs.next_in = (char *)in;
    self->bzs.avail_in = 0;
    for (;;) {
        if (self->bzs.avail_in == 0 && rest > 0) {
            size_t chunk = (size_t)rest < UINT_MAX ? (size_t)rest : UINT_MAX;
            self->bzs.avail_in = (unsigned int)chunk;
            rest -= (Py_ssize_t)chunk;
        }
        char *next;
        size_t avail;
        int room = eryx_out_room(&out, &next, &avail, UINT_MAX);
        if (room < 0) {
            goto error;
        }
        if (room > 0) {
            break; /* max_length reached */
        }
        self->bzs.next_out = next;
        self->bzs.avail_out = (unsigned int)avail;
        int status = BZ2_bzDecompress(&self->bzs);
        eryx_out_wrote(&out, self->bzs.next_out);
        if (bz2_error(status) < 0) {
            goto error;
        }
        if (status == BZ_STREAM_END) {
            self->base.eof = 1;
            break;
        }
        if (self->bzs.avail_in == 0 && rest == 0 && self->bzs.avail_out > 0) {
            break; /* all input taken and nothing more to give */
        }
    }
    Py_ssize_t left = (Py_ssize_t)self->bzs.avail_in + rest;
    const char *left_at = self->bzs.next_in;
    if (eryx_decomp_settle(&self->base, left_at, left, &out) < 0) {
        goto error;
    }
    Py_XDECREF(owned);
    PyBuffer_Release(&data);
    return eryx_out_finish(&out);
error:
    self->failed = 1;
    self->base.needs_input = 0;
    Py_CLEAR(self->base.pending);
    eryx_out_drop(&out);
    Py_XDECREF(owned);
    PyBuffer_Release(&data);
    return NULL;
}

static void
Decompressor_dealloc(PyObject *op)
{
    Decompressor *self = (Decompressor *)op;
    PyTypeObject *tp = Py_TYPE(op);
    if (self->ready) {
        BZ2_bzDecompressEnd(&self->bzs);
    }
    eryx_decomp_clear(&self->base);
    tp->tp_free(op);
    Py_DECREF(tp);
}

ERYX_NEW_CALLS_INIT(Decompressor)

static PyMethodDef Decompressor_methods[] = {
    {"decompress", (PyCFunction)(void (*)(void))Decompressor_decompress,
     METH_VARARGS | METH_KEYWORDS,
     "decompress(data, max_length=-1) -> bytes\n\nDecompresses data, returning at "
     "most max_length bytes when it is not negative; input that could not be used "
     "yet is kept for the next call."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Decompressor_getset[] = {
    ERYX_DECOMP_GETSET,
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Decompressor_slots[] = {
    {Py_tp_new, Decompressor_new},
    {Py_tp_dealloc, Decompressor_dealloc},
    {Py_tp_methods, Decompressor_methods},
    {Py_tp_getset, Decompressor_getset},
    {Py_tp_doc, "BZ2Decompressor()\n\nIncremental bzip2 decompressor (one stream)."},
    {0, NULL},
};

static PyType_Spec Decompressor_spec = {
    .name = "_bz2.BZ2Decompressor",
    .basicsize = sizeof(Decompressor),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = Decompressor_slots,
};

/* ---- module ----------------------------------------------------------- */

static int
bz2_exec(PyObject *module)
{
    bz2_state *st = module_state(module);
    st->compressor_type = PyType_FromModuleAndSpec(module, &Compressor_spec, NULL);
    if (st->compressor_type == NULL ||
        PyModule_AddType(module, (PyTypeObject *)st->compressor_type) < 0) {
        return -1;
    }
    st->decompressor_type = PyType_FromModuleAndSpec(module, &Decompressor_spec, NULL);
    if (st->decompressor_type == NULL ||
        PyModule_AddType(module, (PyTypeObject *)st->decompressor_type) < 0) {
        return -1;
    }
    return 0;
}

static int
bz2_traverse(PyObject *module, visitproc visit, void *arg)
{
    bz2_state *st = module_state(module);
    Py_VISIT(st->compressor_type);
    Py_VISIT(st->decompressor_type);
    return 0;
}

static int
bz2_clear(PyObject *module)
{
    bz2_state *st = module_state(module);
    Py_CLEAR(st->compressor_type);
    Py_CLEAR(st->decompressor_type);
    return 0;
}

static void
bz2_free(void *module)
{
    bz2_clear((PyObject *)module);
}

static PyModuleDef_Slot bz2_slots[] = {
    {Py_mod_exec, bz2_exec},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    {0, NULL},
};

static struct PyModuleDef bz2_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_bz2",
    .m_doc = "bzip2 compression (eryx build, on libbzip2).",
    .m_size = sizeof(bz2_state),
    .m_slots = bz2_slots,
    .m_traverse = bz2_traverse,
    .m_clear = bz2_clear,
    .m_free = bz2_free,
};

PyMODINIT_FUNC
PyInit__bz2(void)
{
    return PyModuleDef_Init(&bz2_module);
}
