/* `_lzma` for the eryx guest: the accelerator module behind `lzma` (and
 * `.xz` support in tarfile, zipfile's LZMA method, shutil), on liblzma
 * (built from Debian's xz-utils sources by `cargo xtask dist`). Written for
 * eryx to the API `lzma.py` and `zipfile` use: LZMACompressor,
 * LZMADecompressor, LZMAError, is_check_supported, the FORMAT_/CHECK_/
 * FILTER_/MF_/MODE_/PRESET_ constants, filter chains given as lists of
 * dicts, and _encode_filter_properties/_decode_filter_properties. The
 * sandbox has no threads, so no locking. */
#include "eryx_codec.h"

#include <lzma.h>

enum { FORMAT_AUTO, FORMAT_XZ, FORMAT_ALONE, FORMAT_RAW };

#define CHECK_UNKNOWN (LZMA_CHECK_ID_MAX + 1)

typedef struct {
    PyObject *error;
    PyObject *compressor_type;
    PyObject *decompressor_type;
} lzma_state;

static lzma_state *
state_of_module(PyObject *module)
{
    return (lzma_state *)PyModule_GetState(module);
}

/* The module state of the type `tp` (a subclass is fine). */
static lzma_state *
state_of_type(PyTypeObject *tp, PyModuleDef *def)
{
    PyObject *module = PyType_GetModuleByDef(tp, def);
    return module == NULL ? NULL : state_of_module(module);
}

static PyModuleDef lzma_module;

/* Raises the Python error for a liblzma status; -1 on error, 0 otherwise. */
static int
lzma_error(lzma_state *st, lzma_ret ret)
{
    switch (ret) {
    case LZMA_OK:
    case LZMA_GET_CHECK:
    case LZMA_NO_CHECK:
    case LZMA_STREAM_END:
        return 0;
    case LZMA_UNSUPPORTED_CHECK:
        PyErr_SetString(st->error, "Unsupported integrity check");
        return -1;
    case LZMA_MEM_ERROR:
        PyErr_NoMemory();
        return -1;
    case LZMA_MEMLIMIT_ERROR:
        PyErr_SetString(st->error, "Memory usage limit exceeded");
        return -1;
    case LZMA_FORMAT_ERROR:
        PyErr_SetString(st->error, "Input format not supported by decoder");
        return -1;
    case LZMA_OPTIONS_ERROR:
        PyErr_SetString(st->error, "Invalid or unsupported options");
        return -1;
    case LZMA_DATA_ERROR:
        PyErr_SetString(st->error, "Corrupt input data");
        return -1;
    case LZMA_BUF_ERROR:
        PyErr_SetString(st->error, "Insufficient buffer space");
        return -1;
    case LZMA_PROG_ERROR:
        PyErr_SetString(st->error, "Internal error");
        return -1;
    default:
        PyErr_Format(st->error, "Unrecognized error from liblzma: %d", (int)ret);
        return -1;
    }
}

/* ---- filter specifiers ------------------------------------------------ */

/* `value` as an unsigned 32-bit option; -1 with an exception. */
static int
to_u32(PyObject *value, uint32_t *out)
{
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (v == -1 && !overflow && PyErr_Occurred()) {
        return -1;
    }
    if (overflow < 0 || (overflow == 0 && v < 0)) {
        PyErr_SetString(PyExc_ValueError, "value must be positive");
        return -1;
    }
    if (overflow > 0 || v > (long long)UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "Python int too large for C unsigned int");
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* Reads `spec["key"]` into `*out` if present. 1 if read, 0 if absent, -1. */
static int
spec_u32(PyObject *spec, const char *key, uint32_t *out)
{
    PyObject *value;
    int found = PyMapping_GetOptionalItemString(spec, key, &value);
    if (found <= 0) {
        return found;
    }
    int r = to_u32(value, out);
    Py_DECREF(value);
    return r < 0 ? -1 : 1;
}

/* Whether every key of `spec` is in `allowed`; raises ValueError(`msg`). */
static int
spec_keys_only(PyObject *spec, const char *const *allowed, const char *msg)
{
    PyObject *keys = PyMapping_Keys(spec);
    if (keys == NULL) {
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(keys);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = PyList_GET_ITEM(keys, i);
        int ok = 0;
        for (const char *const *a = allowed; *a != NULL && !ok; a++) {
            ok = PyUnicode_Check(k) && PyUnicode_CompareWithASCIIString(k, *a) == 0;
        }
        if (!ok) {
            Py_DECREF(keys);
            PyErr_SetString(PyExc_ValueError, msg);
            return -1;
        }
    }
    Py_DECREF(keys);
    return 0;
}

static int
is_bcj(lzma_vli id)
{
    return id == LZMA_FILTER_X86 || id == LZMA_FILTER_POWERPC || id == LZMA_FILTER_IA64 ||
           id == LZMA_FILTER_ARM || id == LZMA_FILTER_ARMTHUMB || id == LZMA_FILTER_SPARC ||
           id == LZMA_FILTER_ARM64 || id == LZMA_FILTER_RISCV;
}

/* Fills `f` from the dict `spec` (options allocated with PyMem_Malloc). */
static int
parse_filter_spec(lzma_state *st, PyObject *spec, lzma_filter *f)
{
    f->id = LZMA_VLI_UNKNOWN;
    f->options = NULL;
    if (!PyMapping_Check(spec)) {
        PyErr_SetString(PyExc_TypeError, "Filter specifier must be a dict or dict-like object");
        return -1;
    }
    PyObject *id_obj;
    int found = PyMapping_GetOptionalItemString(spec, "id", &id_obj);
    if (found < 0) {
        return -1;
    }
    if (found == 0) {
        PyErr_SetString(PyExc_ValueError, "Filter specifier must have an \"id\" entry");
        return -1;
    }
    unsigned long long id = PyLong_AsUnsignedLongLong(id_obj);
    Py_DECREF(id_obj);
    if (id == (unsigned long long)-1 && PyErr_Occurred()) {
        return -1;
    }
    if (id == LZMA_FILTER_LZMA1 || id == LZMA_FILTER_LZMA2) {
        static const char *const keys[] = {"id", "preset", "dict_size", "lc", "lp",
                                           "pb", "mode", "nice_len", "mf", "depth", NULL};
        if (spec_keys_only(spec, keys, "Invalid filter specifier for LZMA filter") < 0) {
            return -1;
        }
        lzma_options_lzma *o = PyMem_Calloc(1, sizeof(*o));
        if (o == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        f->id = id;
        f->options = o;
        uint32_t preset = LZMA_PRESET_DEFAULT;
        if (spec_u32(spec, "preset", &preset) < 0) {
            return -1;
        }
        if (lzma_lzma_preset(o, preset)) {
            PyErr_Format(st->error, "Invalid compression preset: %u", preset);
            return -1;
        }
        uint32_t mode, mf;
        int has_mode, has_mf;
        if (spec_u32(spec, "dict_size", &o->dict_size) < 0 ||
            spec_u32(spec, "lc", &o->lc) < 0 || spec_u32(spec, "lp", &o->lp) < 0 ||
            spec_u32(spec, "pb", &o->pb) < 0 ||
            (has_mode = spec_u32(spec, "mode", &mode)) < 0 ||
            spec_u32(spec, "nice_len", &o->nice_len) < 0 ||
            (has_mf = spec_u32(spec, "mf", &mf)) < 0 ||
            spec_u32(spec, "depth", &o->depth) < 0) {
            return -1;
        }
        if (has_mode) {
            o->mode = (lzma_mode)mode;
        }
        if (has_mf) {
            o->mf = (lzma_match_finder)mf;
        }
        return 0;
    }
    if (id == LZMA_FILTER_DELTA) {
        static const char *const keys[] = {"id", "dist", NULL};
        if (spec_keys_only(spec, keys, "Invalid filter specifier for delta filter") < 0) {
            return -1;
        }
        lzma_options_delta *o = PyMem_Calloc(1, sizeof(*o));
        if (o == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        f->id = id;
        f->options = o;
        o->type = LZMA_DELTA_TYPE_BYTE;
        o->dist = 1;
        return spec_u32(spec, "dist", &o->dist) < 0 ? -1 : 0;
    }
    if (is_bcj(id)) {
        static const char *const keys[] = {"id", "start_offset", NULL};
        if (spec_keys_only(spec, keys, "Invalid filter specifier for BCJ filter") < 0) {
            return -1;
        }
        lzma_options_bcj *o = PyMem_Calloc(1, sizeof(*o));
        if (o == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        f->id = id;
        f->options = o;
        return spec_u32(spec, "start_offset", &o->start_offset) < 0 ? -1 : 0;
    }
    PyErr_Format(PyExc_ValueError, "Invalid filter ID: %llu", id);
    return -1;
}

static void
free_filters(lzma_filter *filters)
{
    for (int i = 0; i <= LZMA_FILTERS_MAX; i++) {
        if (filters[i].id == LZMA_VLI_UNKNOWN) {
            break;
        }
        PyMem_Free(filters[i].options);
        filters[i].options = NULL;
    }
}

/* A filter chain from a sequence of specifiers; `filters` must have room
 * for LZMA_FILTERS_MAX + 1 entries. On failure everything is freed. */
static int
parse_filter_chain(lzma_state *st, PyObject *chain, lzma_filter *filters)
{
    for (int i = 0; i <= LZMA_FILTERS_MAX; i++) {
        filters[i].id = LZMA_VLI_UNKNOWN;
        filters[i].options = NULL;
    }
    if (!PySequence_Check(chain)) {
        PyErr_SetString(PyExc_TypeError, "filters must be a sequence of dicts");
        return -1;
    }
    PyObject *seq = PySequence_Fast(chain, "filters must be a sequence of dicts");
    if (seq == NULL) {
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > LZMA_FILTERS_MAX) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "Too many filters - liblzma supports a maximum of %d",
                     LZMA_FILTERS_MAX);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (parse_filter_spec(st, PySequence_Fast_GET_ITEM(seq, i), &filters[i]) < 0) {
            Py_DECREF(seq);
            /* The failing entry may hold options already. */
            PyMem_Free(filters[i].options);
            filters[i].options = NULL;
            filters[i].id = LZMA_VLI_UNKNOWN;
            free_filters(filters);
            return -1;
        }
    }
    Py_DECREF(seq);
    filters[n].id = LZMA_VLI_UNKNOWN;
    return 0;
}

/* Adds `key: value` (an unsigned int) to `dict`. */
static int
dict_put_u(PyObject *dict, const char *key, unsigned long long value)
{
    PyObject *v = PyLong_FromUnsignedLongLong(value);
    if (v == NULL) {
        return -1;
    }
    int r = PyDict_SetItemString(dict, key, v);
    Py_DECREF(v);
    return r;
}

/* The specifier dict describing `f` (as _decode_filter_properties gives). */
static PyObject *
build_filter_spec(const lzma_filter *f)
{
    PyObject *spec = PyDict_New();
    if (spec == NULL) {
        return NULL;
    }
    if (dict_put_u(spec, "id", f->id) < 0) {
        goto error;
    }
    if (f->id == LZMA_FILTER_LZMA1) {
        const lzma_options_lzma *o = f->options;
        if (dict_put_u(spec, "lc", o->lc) < 0 || dict_put_u(spec, "lp", o->lp) < 0 ||
            dict_put_u(spec, "pb", o->pb) < 0 || dict_put_u(spec, "dict_size", o->dict_size) < 0) {
            goto error;
        }
    } else if (f->id == LZMA_FILTER_LZMA2) {
        const lzma_options_lzma *o = f->options;
        if (dict_put_u(spec, "dict_size", o->dict_size) < 0) {
            goto error;
        }
    } else if (f->id == LZMA_FILTER_DELTA) {
        const lzma_options_delta *o = f->options;
        if (dict_put_u(spec, "dist", o->dist) < 0) {
            goto error;
        }
    } else if (is_bcj(f->id) && f->options != NULL) {
        const lzma_options_bcj *o = f->options;
        if (dict_put_u(spec, "start_offset", o->start_offset) < 0) {
            goto error;
        }
    }
    return spec;
error:
    Py_DECREF(spec);
    return NULL;
}

/* ---- LZMACompressor --------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    lzma_stream lzs;
    int ready;
    int flushed;
} Compressor;

static int
Compressor_init(PyObject *op, PyObject *args, PyObject *kwargs)
{
    Compressor *self = (Compressor *)op;
    static char *names[] = {"format", "check", "preset", "filters", NULL};
    int format = FORMAT_XZ;
    int check = -1;
    PyObject *preset_obj = Py_None;
    PyObject *filters_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|iiOO:LZMACompressor", names, &format,
                                     &check, &preset_obj, &filters_obj)) {
        return -1;
    }
    lzma_state *st = state_of_type(Py_TYPE(op), &lzma_module);
    if (st == NULL) {
        return -1;
    }
    if (format != FORMAT_XZ && check != -1 && check != LZMA_CHECK_NONE) {
        PyErr_SetString(PyExc_ValueError, "Integrity checks are only supported by FORMAT_XZ");
        return -1;
    }
    if (preset_obj != Py_None && filters_obj != Py_None) {
        PyErr_SetString(PyExc_ValueError, "Cannot specify both preset and filter chain");
        return -1;
    }
    uint32_t preset = LZMA_PRESET_DEFAULT;
    if (preset_obj != Py_None && to_u32(preset_obj, &preset) < 0) {
        return -1;
    }
    if (self->ready) {
        lzma_end(&self->lzs);
        self->ready = 0;
    }
    self->lzs = (lzma_stream)LZMA_STREAM_INIT;
    self->flushed = 0;
    lzma_filter filters[LZMA_FILTERS_MAX + 1];
    int have_filters = filters_obj != Py_None;
    if (have_filters && parse_filter_chain(st, filters_obj, filters) < 0) {
        return -1;
    }
    lzma_ret ret;
    switch (format) {
    case FORMAT_XZ:
        if (check == -1) {
            check = LZMA_CHECK_CRC64;
        }
        ret = have_filters ? lzma_stream_encoder(&self->lzs, filters, (lzma_check)check)
                           : lzma_easy_encoder(&self->lzs, preset, (lzma_check)check);
        break;
    case FORMAT_ALONE: {
        if (have_filters) {
            if (filters[0].id != LZMA_FILTER_LZMA1 || filters[1].id != LZMA_VLI_UNKNOWN) {
                free_filters(filters);
                PyErr_SetString(PyExc_ValueError,
                                "Invalid filter chain for FORMAT_ALONE - must be a single "
                                "LZMA1 filter");
                return -1;
            }
            ret = lzma_alone_encoder(&self->lzs, filters[0].options);
        } else {
            lzma_options_lzma options;
            if (lzma_lzma_preset(&options, preset)) {
                PyErr_Format(st->error, "Invalid compression preset: %u", preset);
                return -1;
            }
            ret = lzma_alone_encoder(&self->lzs, &options);
        }
        break;
    }
    case FORMAT_RAW:
        if (!have_filters) {
            PyErr_SetString(PyExc_ValueError, "Must specify filters for FORMAT_RAW");
            return -1;
        }
        ret = lzma_raw_encoder(&self->lzs, filters);
        break;
    default:
        if (have_filters) {
            free_filters(filters);
        }
        PyErr_Format(PyExc_ValueError, "Invalid container format: %d", format);
        return -1;
    }
    if (have_filters) {
        free_filters(filters);
    }
    if (lzma_error(st, ret) < 0) {
        return -1;
    }
    self->ready = 1;
    return 0;
}

static PyObject *
compress_run(Compressor *self, lzma_state *st, const char *data, Py_ssize_t len,
             lzma_action action)
{
    eryx_out out;
    if (eryx_out_init(&out, -1) < 0) {
        return NULL;
    }
    self->lzs.next_in = (const uint8_t *)data;
    self->lzs.avail_in = (size_t)len;
    for (;;) {
        if (action == LZMA_RUN && self->lzs.avail_in == 0) {
            break;
        }
        char *next;
        size_t avail;
        if (eryx_out_room(&out, &next, &avail, SIZE_MAX) < 0) {
            goto error;
        }
        self->lzs.next_out = (uint8_t *)next;
        self->lzs.avail_out = avail;
        lzma_ret ret = lzma_code(&self->lzs, action);
        eryx_out_wrote(&out, (const char *)self->lzs.next_out);
        if (ret == LZMA_BUF_ERROR && self->lzs.avail_in == 0 && action == LZMA_RUN) {
            break;
        }
        if (lzma_error(st, ret) < 0) {
            goto error;
        }
        if (action == LZMA_FINISH && ret == LZMA_STREAM_END) {
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
    lzma_state *st = state_of_type(Py_TYPE(op), &lzma_module);
    if (st == NULL) {
        return NULL;
    }
    Py_buffer data;
    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    if (!self->ready) {
        PyErr_SetString(PyExc_ValueError, "LZMACompressor was not initialised");
    } else if (self->flushed) {
        PyErr_SetString(PyExc_ValueError, "Compressor has been flushed");
    } else {
        result = compress_run(self, st, data.buf, data.len, LZMA_RUN);
    }
    PyBuffer_Release(&data);
    return result;
}

static PyObject *
Compressor_flush(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    Compressor *self = (Compressor *)op;
    lzma_state *st = state_of_type(Py_TYPE(op), &lzma_module);
    if (st == NULL) {
        return NULL;
    }
    if (!self->ready) {
        PyErr_SetString(PyExc_ValueError, "LZMACompressor was not initialised");
        return NULL;
    }
    if (self->flushed) {
        PyErr_SetString(PyExc_ValueError, "Repeated call to flush()");
        return NULL;
    }
    self->flushed = 1;
    return compress_run(self, st, NULL, 0, LZMA_FINISH);
}

static void
Compressor_dealloc(PyObject *op)
{
    Compressor *self = (Compressor *)op;
    PyTypeObject *tp = Py_TYPE(op);
    if (self->ready) {
        lzma_end(&self->lzs);
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
    {Py_tp_doc, "LZMACompressor(format=FORMAT_XZ, check=-1, preset=None, filters=None)\n\n"
                "Incremental LZMA compressor."},
    {0, NULL},
};

static PyType_Spec Compressor_spec = {
    .name = "_lzma.LZMACompressor",
    .basicsize = sizeof(Compressor),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = Compressor_slots,
};

/* ---- LZMADecompressor ------------------------------------------------- */

typedef struct {
    eryx_decomp base; /* eof, needs_input, unused_data, pending */
    lzma_stream lzs;
    int ready;
    int check;
} Decompressor;

static int
Decompressor_init(PyObject *op, PyObject *args, PyObject *kwargs)
{
    Decompressor *self = (Decompressor *)op;
    static char *names[] = {"format", "memlimit", "filters", NULL};
    int format = FORMAT_AUTO;
    PyObject *memlimit_obj = Py_None;
    PyObject *filters_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|iOO:LZMADecompressor", names, &format,
                                     &memlimit_obj, &filters_obj)) {
        return -1;
    }
    lzma_state *st = state_of_type(Py_TYPE(op), &lzma_module);
    if (st == NULL) {
        return -1;
    }
    uint64_t memlimit = UINT64_MAX;
    if (memlimit_obj != Py_None) {
        if (format == FORMAT_RAW) {
            PyErr_SetString(PyExc_ValueError, "Cannot specify memory limit with FORMAT_RAW");
            return -1;
        }
        memlimit = PyLong_AsUnsignedLongLong(memlimit_obj);
        if (memlimit == (uint64_t)-1 && PyErr_Occurred()) {
            return -1;
        }
    }
    if (format == FORMAT_RAW && filters_obj == Py_None) {
        PyErr_SetString(PyExc_ValueError, "Must specify filters for FORMAT_RAW");
        return -1;
    }
    if (format != FORMAT_RAW && filters_obj != Py_None) {
        PyErr_SetString(PyExc_ValueError, "Cannot specify filters except with FORMAT_RAW");
        return -1;
    }
    if (self->ready) {
        lzma_end(&self->lzs);
        self->ready = 0;
    }
    self->lzs = (lzma_stream)LZMA_STREAM_INIT;
    self->check = LZMA_CHECK_NONE;
    const uint32_t flags = LZMA_TELL_ANY_CHECK | LZMA_TELL_NO_CHECK;
    lzma_ret ret;
    switch (format) {
    case FORMAT_AUTO:
        ret = lzma_auto_decoder(&self->lzs, memlimit, flags);
        self->check = CHECK_UNKNOWN;
        break;
    case FORMAT_XZ:
        ret = lzma_stream_decoder(&self->lzs, memlimit, flags);
        self->check = CHECK_UNKNOWN;
        break;
    case FORMAT_ALONE:
        ret = lzma_alone_decoder(&self->lzs, memlimit);
        break;
    case FORMAT_RAW: {
        lzma_filter filters[LZMA_FILTERS_MAX + 1];
        if (parse_filter_chain(st, filters_obj, filters) < 0) {
            return -1;
        }
        ret = lzma_raw_decoder(&self->lzs, filters);
        free_filters(filters);
        break;
    }
    default:
        PyErr_Format(PyExc_ValueError, "Invalid container format: %d", format);
        return -1;
    }
    if (lzma_error(st, ret) < 0) {
        return -1;
    }
    self->ready = 1;
    return eryx_decomp_reset(&self->base);
}

static PyObject *
Decompressor_decompress(PyObject *op, PyObject *args, PyObject *kwargs)
{
    Decompressor *self = (Decompressor *)op;
    lzma_state *st = state_of_type(Py_TYPE(op), &lzma_module);
    if (st == NULL) {
        return NULL;
    }
    Py_buffer data;
    Py_ssize_t max_length;
    if (eryx_parse_decompress_args(args, kwargs, &data, &max_length) < 0) {
        return NULL;
    }
    if (!self->ready) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "LZMADecompressor was not initialised");
        return NULL;
    }
    if (self->base.eof) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_EOFError, "Already at end of stream");
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
    self->lzs.next_in = (const uint8_t *)in;
    self->lzs.avail_in = (size_t)in_len;
    for (;;) {
        char *next;
        size_t avail;
        int room = eryx_out_room(&out, &next, &avail, SIZE_MAX);
        if (room < 0) {
            goto error;
        }
        if (room > 0) {
            break; /* max_length reached */
        }
        self->lzs.next_out = (uint8_t *)next;
        self->lzs.avail_out = avail;
        lzma_ret ret = lzma_code(&self->lzs, LZMA_RUN);
        eryx_out_wrote(&out, (const char *)self->lzs.next_out);
        if (ret == LZMA_BUF_ERROR && self->lzs.avail_in == 0 && self->lzs.avail_out > 0) {
            break; /* no progress without more input: not an error */
        }
        if (lzma_error(st, ret) < 0) {
            goto error;
        }
        if (ret == LZMA_GET_CHECK || ret == LZMA_NO_CHECK) {
            self->check = lzma_get_check(&self->lzs);
        }
        if (ret == LZMA_STREAM_END) {
            self->base.eof = 1;
            break;
        }
        if (self->lzs.avail_in == 0 && self->lzs.avail_out > 0) {
            break;
        }
    }
    const char *left_at = (const char *)self->lzs.next_in;
    Py_ssize_t left = (Py_ssize_t)self->lzs.avail_in;
    if (eryx_decomp_settle(&self->base, left_at, left, &out) < 0) {
        goto error;
    }
    Py_XDECREF(owned);
    PyBuffer_Release(&data);
    return eryx_out_finish(&out);
error:
    /* liblzma keeps failing on a stream that failed once. */
    self->base.needs_input = 0;
    Py_CLEAR(self->base.pending);
    eryx_out_drop(&out);
    Py_XDECREF(owned);
    PyBuffer_Release(&data);
    return NULL;
}

static PyObject *
Decompressor_get_check(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(((Decompressor *)op)->check);
}

static void
Decompressor_dealloc(PyObject *op)
{
    Decompressor *self = (Decompressor *)op;
    PyTypeObject *tp = Py_TYPE(op);
    if (self->ready) {
        lzma_end(&self->lzs);
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
    {"check", Decompressor_get_check, NULL,
     "ID of the integrity check used by the stream (CHECK_UNKNOWN until known).", NULL},
    ERYX_DECOMP_GETSET,
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Decompressor_slots[] = {
    {Py_tp_new, Decompressor_new},
    {Py_tp_dealloc, Decompressor_dealloc},
    {Py_tp_methods, Decompressor_methods},
    {Py_tp_getset, Decompressor_getset},
    {Py_tp_doc, "LZMADecompressor(format=FORMAT_AUTO, memlimit=None, filters=None)\n\n"
                "Incremental LZMA decompressor (one stream)."},
    {0, NULL},
};

static PyType_Spec Decompressor_spec = {
    .name = "_lzma.LZMADecompressor",
    .basicsize = sizeof(Decompressor),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = Decompressor_slots,
};

/* ---- module functions ------------------------------------------------- */

static PyObject *
is_check_supported(PyObject *module, PyObject *arg)
{
    int id = PyLong_AsInt(arg);
    if (id == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return PyBool_FromLong(id >= 0 && lzma_check_is_supported((lzma_check)id));
}

static PyObject *
encode_filter_properties(PyObject *module, PyObject *spec)
{
    lzma_state *st = state_of_module(module);
    lzma_filter f[2];
    if (parse_filter_spec(st, spec, &f[0]) < 0) {
        PyMem_Free(f[0].options);
        return NULL;
    }
    f[1].id = LZMA_VLI_UNKNOWN;
    uint32_t size;
    PyObject *result = NULL;
    if (lzma_error(st, lzma_properties_size(&size, &f[0])) == 0) {
        result = PyBytes_FromStringAndSize(NULL, size);
        if (result != NULL &&
            lzma_error(st, lzma_properties_encode(&f[0], (uint8_t *)PyBytes_AS_STRING(result))) <
                0) {
            Py_CLEAR(result);
        }
    }
    PyMem_Free(f[0].options);
    return result;
}

static PyObject *
decode_filter_properties(PyObject *module, PyObject *args)
{
    lzma_state *st = state_of_module(module);
    unsigned long long id;
    Py_buffer props;
    if (!PyArg_ParseTuple(args, "Ky*:_decode_filter_properties", &id, &props)) {
        return NULL;
    }
    lzma_filter f = {.id = id, .options = NULL};
    lzma_ret ret = lzma_properties_decode(&f, NULL, props.buf, (size_t)props.len);
    PyBuffer_Release(&props);
    if (lzma_error(st, ret) < 0) {
        return NULL;
    }
    PyObject *spec = build_filter_spec(&f);
    /* liblzma allocated the options with its default allocator (malloc). */
    free(f.options);
    return spec;
}

static PyMethodDef lzma_functions[] = {
    {"is_check_supported", is_check_supported, METH_O,
     "is_check_supported(check_id) -> bool\n\nWhether this build of liblzma supports "
     "the integrity check."},
    {"_encode_filter_properties", encode_filter_properties, METH_O,
     "_encode_filter_properties(filter) -> bytes\n\nThe raw properties of a filter "
     "specifier (as in .7z and .zip headers)."},
    {"_decode_filter_properties", decode_filter_properties, METH_VARARGS,
     "_decode_filter_properties(filter_id, encoded_props) -> dict\n\nThe filter "
     "specifier for raw properties."},
    {NULL, NULL, 0, NULL},
};

/* ---- module ----------------------------------------------------------- */

static int
add_constants(PyObject *module)
{
    static const struct {
        const char *name;
        unsigned long long value;
    } constants[] = {
        {"FORMAT_AUTO", FORMAT_AUTO},
        {"FORMAT_XZ", FORMAT_XZ},
        {"FORMAT_ALONE", FORMAT_ALONE},
        {"FORMAT_RAW", FORMAT_RAW},
        {"CHECK_NONE", LZMA_CHECK_NONE},
        {"CHECK_CRC32", LZMA_CHECK_CRC32},
        {"CHECK_CRC64", LZMA_CHECK_CRC64},
        {"CHECK_SHA256", LZMA_CHECK_SHA256},
        {"CHECK_ID_MAX", LZMA_CHECK_ID_MAX},
        {"CHECK_UNKNOWN", CHECK_UNKNOWN},
        {"FILTER_LZMA1", LZMA_FILTER_LZMA1},
        {"FILTER_LZMA2", LZMA_FILTER_LZMA2},
        {"FILTER_DELTA", LZMA_FILTER_DELTA},
        {"FILTER_X86", LZMA_FILTER_X86},
        {"FILTER_IA64", LZMA_FILTER_IA64},
        {"FILTER_ARM", LZMA_FILTER_ARM},
        {"FILTER_ARMTHUMB", LZMA_FILTER_ARMTHUMB},
        {"FILTER_SPARC", LZMA_FILTER_SPARC},
        {"FILTER_POWERPC", LZMA_FILTER_POWERPC},
        {"MF_HC3", LZMA_MF_HC3},
        {"MF_HC4", LZMA_MF_HC4},
        {"MF_BT2", LZMA_MF_BT2},
        {"MF_BT3", LZMA_MF_BT3},
        {"MF_BT4", LZMA_MF_BT4},
        {"MODE_FAST", LZMA_MODE_FAST},
        {"MODE_NORMAL", LZMA_MODE_NORMAL},
        {"PRESET_DEFAULT", LZMA_PRESET_DEFAULT},
        {"PRESET_EXTREME", LZMA_PRESET_EXTREME},
    };
    for (size_t i = 0; i < sizeof(constants) / sizeof(constants[0]); i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(constants[i].value);
        if (v == NULL || PyModule_Add(module, constants[i].name, v) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
lzma_exec(PyObject *module)
{
    lzma_state *st = state_of_module(module);
    if (add_constants(module) < 0) {
        return -1;
    }
    st->error = PyErr_NewExceptionWithDoc("_lzma.LZMAError",
                                          "Call to liblzma failed.", NULL, NULL);
    if (st->error == NULL || PyModule_AddObjectRef(module, "LZMAError", st->error) < 0) {
        return -1;
    }
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
lzma_traverse(PyObject *module, visitproc visit, void *arg)
{
    lzma_state *st = state_of_module(module);
    Py_VISIT(st->error);
    Py_VISIT(st->compressor_type);
    Py_VISIT(st->decompressor_type);
    return 0;
}

static int
lzma_clear(PyObject *module)
{
    lzma_state *st = state_of_module(module);
    Py_CLEAR(st->error);
    Py_CLEAR(st->compressor_type);
    Py_CLEAR(st->decompressor_type);
    return 0;
}

static void
lzma_free(void *module)
{
    lzma_clear((PyObject *)module);
}

static PyModuleDef_Slot lzma_slots[] = {
    {Py_mod_exec, lzma_exec},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    {0, NULL},
};

static PyModuleDef lzma_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_lzma",
    .m_doc = "LZMA and XZ compression (eryx build, on liblzma).",
    .m_size = sizeof(lzma_state),
    .m_methods = lzma_functions,
    .m_slots = lzma_slots,
    .m_traverse = lzma_traverse,
    .m_clear = lzma_clear,
    .m_free = lzma_free,
};

PyMODINIT_FUNC
PyInit__lzma(void)
{
    return PyModuleDef_Init(&lzma_module);
}
