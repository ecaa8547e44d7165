/* `_zstd` for the eryx guest: the accelerator module behind Python 3.14's
 * `compression.zstd` (and so `tarfile`'s and `zipfile`'s Zstandard support),
 * on libzstd (built from Debian's libzstd sources by `cargo xtask dist`,
 * without threads: `nb_workers` is bounded to 0).
 * Written for eryx to the API `compression/zstd/__init__.py` and
 * `_zstdfile.py` use and CPython's documentation describes: ZstdCompressor,
 * ZstdDecompressor, ZstdDict, ZstdError, the frame and dictionary-training
 * functions and the parameter constants. The stdlib's own `test_zstd` runs
 * through `cargo xtask compat`. The sandbox runs one Python thread at a
 * time and these functions never release the GIL, so no locking. */
#include "eryx_codec.h"

#include <stdint.h>

#include "zdict.h"
#include "zstd.h"

/* How a ZstdDict is used (the second item of `as_*` tuples). */
enum { DICT_DIGESTED = 0, DICT_UNDIGESTED = 1, DICT_PREFIX = 2 };

typedef struct {
    PyObject *error;           /* ZstdError */
    PyTypeObject *dict_type;   /* ZstdDict */
    PyObject *compressor_type;
    PyObject *decompressor_type;
    PyObject *cparam_type;     /* CompressionParameter, once set */
    PyObject *dparam_type;     /* DecompressionParameter, once set */
} zstd_state;

static struct PyModuleDef zstd_module;

static zstd_state *
state_of_type(PyTypeObject *tp)
{
    PyObject *module = PyType_GetModuleByDef(tp, &zstd_module);
    return module == NULL ? NULL : (zstd_state *)PyModule_GetState(module);
}

/* ---- parameters ------------------------------------------------------- */

typedef struct {
    int key;
    const char *name;
} param_name;

static const param_name cparam_names[] = {
    {ZSTD_c_compressionLevel, "compression_level"},
    {ZSTD_c_windowLog, "window_log"},
    {ZSTD_c_hashLog, "hash_log"},
    {ZSTD_c_chainLog, "chain_log"},
    {ZSTD_c_searchLog, "search_log"},
    {ZSTD_c_minMatch, "min_match"},
    {ZSTD_c_targetLength, "target_length"},
    {ZSTD_c_strategy, "strategy"},
    {ZSTD_c_enableLongDistanceMatching, "enable_long_distance_matching"},
    {ZSTD_c_ldmHashLog, "ldm_hash_log"},
    {ZSTD_c_ldmMinMatch, "ldm_min_match"},
    {ZSTD_c_ldmBucketSizeLog, "ldm_bucket_size_log"},
    {ZSTD_c_ldmHashRateLog, "ldm_hash_rate_log"},
    {ZSTD_c_contentSizeFlag, "content_size_flag"},
    {ZSTD_c_checksumFlag, "checksum_flag"},
    {ZSTD_c_dictIDFlag, "dict_id_flag"},
    {ZSTD_c_nbWorkers, "nb_workers"},
    {ZSTD_c_jobSize, "job_size"},
    {ZSTD_c_overlapLog, "overlap_log"},
    {0, NULL},
};

static const param_name dparam_names[] = {
    {ZSTD_d_windowLogMax, "window_log_max"},
    {0, NULL},
};

static const char *
param_name_of(int compress, int key)
{
    for (const param_name *p = compress ? cparam_names : dparam_names; p->name; p++) {
        if (p->key == key) {
            return p->name;
        }
    }
    return NULL;
}

static ZSTD_bounds
param_bounds(int compress, int key)
{
    return compress ? ZSTD_cParam_getBounds((ZSTD_cParameter)key)
                    : ZSTD_dParam_getBounds((ZSTD_dParameter)key);
}

/* Sets one parameter on a compression (`compress`) or decompression
 * context, checking it against libzstd's bounds first (libzstd clamps some
 * values, e.g. the compression level, instead of refusing them). */
static int
set_param(void *ctx, int compress, int key, int value)
{
    const char *kind = compress ? "compression" : "decompression";
    const char *name = param_name_of(compress, key);
    ZSTD_bounds b = param_bounds(compress, key);
    if (name == NULL || ZSTD_isError(b.error)) {
        PyErr_Format(PyExc_ValueError,
                     "invalid %s parameter 'unknown parameter (key %d)'", kind, key);
        return -1;
    }
    size_t r = 0;
    if (value >= b.lowerBound && value <= b.upperBound) {
        r = compress ? ZSTD_CCtx_setParameter(ctx, (ZSTD_cParameter)key, value)
                     : ZSTD_DCtx_setParameter(ctx, (ZSTD_dParameter)key, value);
    }
    if (value < b.lowerBound || value > b.upperBound || ZSTD_isError(r)) {
        PyErr_Format(PyExc_ValueError,
                     "%s parameter '%s' received an illegal value %d; "
                     "the valid range is [%d, %d]",
                     kind, name, value, b.lowerBound, b.upperBound);
        return -1;
    }
    return 0;
}

/* Applies an `options` dict. `*level` is set when it holds the
 * compression level. */
static int
set_options(zstd_state *st, void *ctx, int compress, PyObject *options, int *level)
{
    const char *kind = compress ? "compression" : "decompression";
    if (!PyDict_Check(options)) {
        PyErr_Format(PyExc_TypeError,
                     "options argument should be a dict object, not %.200s",
                     Py_TYPE(options)->tp_name);
        return -1;
    }
    PyObject *other = compress ? st->dparam_type : st->cparam_type;
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(options, &pos, &key, &value)) {
        if (other != NULL && PyObject_TypeCheck(key, (PyTypeObject *)other)) {
            PyErr_Format(PyExc_TypeError,
                         "%s options dictionary key must not be a %s attribute", kind,
                         compress ? "DecompressionParameter" : "CompressionParameter");
            return -1;
        }
        if (!PyLong_Check(key)) {
            PyErr_Format(PyExc_TypeError,
                         "key of the %s options dict should be an int (a %s attribute), "
                         "not %.200s",
                         kind, compress ? "CompressionParameter" : "DecompressionParameter",
                         Py_TYPE(key)->tp_name);
            return -1;
        }
        if (!PyLong_Check(value)) {
            PyErr_Format(PyExc_TypeError,
                         "value of the %s options dict should be an int, not %.200s", kind,
                         Py_TYPE(value)->tp_name);
            return -1;
        }
        int k = PyLong_AsInt(key);
        if (k == -1 && PyErr_Occurred()) {
            return -1;
        }
        int v = PyLong_AsInt(value);
        if (v == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (set_param(ctx, compress, k, v) < 0) {
            return -1;
        }
        if (compress && k == ZSTD_c_compressionLevel) {
            *level = v;
        }
    }
    return 0;
}

/* ---- ZstdDict --------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *content;  /* bytes */
    uint32_t dict_id;
    ZSTD_DDict *ddict;  /* made on first use */
    PyObject *cdicts;   /* {level: capsule of a ZSTD_CDict}, made on first use */
} ZDict;

static int
ZDict_init(PyObject *op, PyObject *args, PyObject *kwargs)
{
    ZDict *self = (ZDict *)op;
    static char *names[] = {"", "is_raw", NULL};
    Py_buffer content;
    int is_raw = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|$p:ZstdDict", names, &content,
                                     &is_raw)) {
        return -1;
    }
    if (content.len < 8) {
        PyBuffer_Release(&content);
        PyErr_SetString(PyExc_ValueError,
                        "Zstandard dictionary content must be at least 8 bytes long");
        return -1;
    }
    uint32_t id = ZSTD_getDictID_fromDict(content.buf, (size_t)content.len);
    if (!is_raw && id == 0) {
        PyBuffer_Release(&content);
        PyErr_SetString(PyExc_ValueError,
                        "invalid Zstandard dictionary (no dictionary header); pass "
                        "is_raw=True to use the content as it is");
        return -1;
    }
    PyObject *bytes = PyBytes_FromStringAndSize(content.buf, content.len);
    PyBuffer_Release(&content);
    if (bytes == NULL) {
        return -1;
    }
    Py_XSETREF(self->content, bytes);
    self->dict_id = id;
    if (self->ddict != NULL) {
        ZSTD_freeDDict(self->ddict);
        self->ddict = NULL;
    }
    Py_CLEAR(self->cdicts);
    return 0;
}

ERYX_NEW_CALLS_INIT(ZDict)

static void
ZDict_dealloc(PyObject *op)
{
    ZDict *self = (ZDict *)op;
    PyTypeObject *tp = Py_TYPE(op);
    if (self->ddict != NULL) {
        ZSTD_freeDDict(self->ddict);
    }
    Py_CLEAR(self->cdicts);
    Py_CLEAR(self->content);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyObject *
ZDict_repr(PyObject *op)
{
    ZDict *self = (ZDict *)op;
    return PyUnicode_FromFormat("<ZstdDict dict_id=%u dict_size=%zd>",
                                (unsigned int)self->dict_id,
                                self->content ? PyBytes_GET_SIZE(self->content) : 0);
}

static Py_ssize_t
ZDict_len(PyObject *op)
{
    ZDict *self = (ZDict *)op;
    return self->content ? PyBytes_GET_SIZE(self->content) : 0;
}

static PyObject *
ZDict_get_content(PyObject *op, void *Py_UNUSED(closure))
{
    ZDict *self = (ZDict *)op;
    return self->content ? Py_NewRef(self->content) : PyBytes_FromStringAndSize(NULL, 0);
}

static PyObject *
ZDict_get_id(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLong(((ZDict *)op)->dict_id);
}

static PyObject *
ZDict_get_as(PyObject *op, void *closure)
{
    return Py_BuildValue("(Oi)", op, (int)(intptr_t)closure);
}

static void
free_cdict(PyObject *capsule)
{
    ZSTD_freeCDict(PyCapsule_GetPointer(capsule, "eryx._zstd.CDict"));
}

/* The dictionary digested for compression at `level` (owned by `self`). */
static ZSTD_CDict *
ZDict_cdict(zstd_state *st, ZDict *self, int level)
{
    if (self->cdicts == NULL && (self->cdicts = PyDict_New()) == NULL) {
        return NULL;
    }
    PyObject *key = PyLong_FromLong(level);
    if (key == NULL) {
        return NULL;
    }
    PyObject *found = PyDict_GetItemWithError(self->cdicts, key);
    if (found != NULL) {
        Py_DECREF(key);
        return PyCapsule_GetPointer(found, "eryx._zstd.CDict");
    }
    ZSTD_CDict *cdict = NULL;
    if (!PyErr_Occurred()) {
        cdict = ZSTD_createCDict(PyBytes_AS_STRING(self->content),
                                 (size_t)PyBytes_GET_SIZE(self->content), level);
        if (cdict == NULL) {
            PyErr_SetString(st->error, "Failed to create a ZSTD_CDict instance from "
                                       "Zstandard dictionary content.");
        }
    }
    if (cdict == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    PyObject *capsule = PyCapsule_New(cdict, "eryx._zstd.CDict", free_cdict);
    if (capsule == NULL) {
        ZSTD_freeCDict(cdict);
        Py_DECREF(key);
        return NULL;
    }
    int failed = PyDict_SetItem(self->cdicts, key, capsule);
    Py_DECREF(key);
    Py_DECREF(capsule);
    return failed < 0 ? NULL : cdict;
}

/* The dictionary digested for decompression (owned by `self`). */
static ZSTD_DDict *
ZDict_ddict(zstd_state *st, ZDict *self)
{
    if (self->ddict == NULL) {
        self->ddict = ZSTD_createDDict(PyBytes_AS_STRING(self->content),
                                       (size_t)PyBytes_GET_SIZE(self->content));
        if (self->ddict == NULL) {
            PyErr_SetString(st->error, "Failed to get a ZSTD_DDict instance from "
                                       "Zstandard dictionary content.");
        }
    }
    return self->ddict;
}

/* A `zstd_dict` argument: a ZstdDict, or one of its `as_*` tuples. */
static int
parse_dict(zstd_state *st, PyObject *arg, ZDict **dict, int *how)
{
    if (PyObject_TypeCheck(arg, st->dict_type)) {
        *dict = (ZDict *)arg;
        *how = DICT_DIGESTED;
        return 0;
    }
    if (PyTuple_Check(arg) && PyTuple_GET_SIZE(arg) == 2 &&
        PyObject_TypeCheck(PyTuple_GET_ITEM(arg, 0), st->dict_type) &&
        PyLong_Check(PyTuple_GET_ITEM(arg, 1))) {
        int t = PyLong_AsInt(PyTuple_GET_ITEM(arg, 1));
        if (t == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (t == DICT_DIGESTED || t == DICT_UNDIGESTED || t == DICT_PREFIX) {
            *dict = (ZDict *)PyTuple_GET_ITEM(arg, 0);
            *how = t;
            return 0;
        }
    }
    PyErr_Format(PyExc_TypeError,
                 "zstd_dict argument should be a ZstdDict object (or one of its "
                 ".as_digested_dict, .as_undigested_dict, .as_prefix), not %.200s",
                 Py_TYPE(arg)->tp_name);
    return -1;
}

static PyMethodDef ZDict_methods[] = {
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef ZDict_getset[] = {
    {"dict_content", ZDict_get_content, NULL, "The content of the dictionary, as bytes.",
     NULL},
    {"dict_id", ZDict_get_id, NULL,
     "The dictionary's ID (0 for a raw-content dictionary without one).", NULL},
    {"as_digested_dict", ZDict_get_as, NULL,
     "Use the dictionary digested (slower to load, faster to use).",
     (void *)(intptr_t)DICT_DIGESTED},
    {"as_undigested_dict", ZDict_get_as, NULL,
     "Use the dictionary undigested (loaded again by each compressor).",
     (void *)(intptr_t)DICT_UNDIGESTED},
    {"as_prefix", ZDict_get_as, NULL, "Use the dictionary's content as a prefix.",
     (void *)(intptr_t)DICT_PREFIX},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot ZDict_slots[] = {
    {Py_tp_new, ZDict_new},
    {Py_tp_dealloc, ZDict_dealloc},
    {Py_tp_repr, ZDict_repr},
    {Py_sq_length, ZDict_len},
    {Py_tp_methods, ZDict_methods},
    {Py_tp_getset, ZDict_getset},
    {Py_tp_doc, "ZstdDict(dict_content, /, *, is_raw=False)\n\nA Zstandard dictionary."},
    {0, NULL},
};

static PyType_Spec ZDict_spec = {
    .name = "compression.zstd.ZstdDict",
    .basicsize = sizeof(ZDict),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = ZDict_slots,
};

/* ---- ZstdCompressor --------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    ZSTD_CCtx *cctx;
    PyObject *dict; /* the ZstdDict in use, kept alive (a prefix is not copied) */
    int dict_how;
    int level;
    int last_mode;
} Compressor;

/* Checks and sets the `level` argument. */
static int
set_level(Compressor *self, PyObject *level)
{
    if (!PyLong_Check(level)) {
        PyErr_Format(PyExc_TypeError, "level should be an int, not %.200s",
                     Py_TYPE(level)->tp_name);
        return -1;
    }
    int lo = ZSTD_minCLevel(), hi = ZSTD_maxCLevel();
    int value = PyLong_AsInt(level);
    if (value == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            return -1;
        }
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError,
                     "illegal compression level; the valid range is [%d, %d]", lo, hi);
        return -1;
    }
    if (value < lo || value > hi) {
        PyErr_Format(PyExc_ValueError,
                     "illegal compression level %d; the valid range is [%d, %d]", value, lo,
                     hi);
        return -1;
    }
    size_t r = ZSTD_CCtx_setParameter(self->cctx, ZSTD_c_compressionLevel, value);
    if (ZSTD_isError(r)) {
        PyErr_Format(PyExc_ValueError, "cannot set compression level %d: %s", value,
                     ZSTD_getErrorName(r));
        return -1;
    }
    self->level = value;
    return 0;
}

/* Puts the dictionary on the context (again after each frame for a
 * prefix, which libzstd forgets at the end of a frame). */
static int
compressor_load_dict(zstd_state *st, Compressor *self)
{
    if (self->dict == NULL) {
        return 0;
    }
    ZDict *d = (ZDict *)self->dict;
    const char *buf = PyBytes_AS_STRING(d->content);
    size_t len = (size_t)PyBytes_GET_SIZE(d->content);
    size_t r;
    switch (self->dict_how) {
    case DICT_DIGESTED: {
        ZSTD_CDict *cdict = ZDict_cdict(st, d, self->level);
        if (cdict == NULL) {
            return -1;
        }
        r = ZSTD_CCtx_refCDict(self->cctx, cdict);
        break;
    }
    case DICT_UNDIGESTED:
        r = ZSTD_CCtx_loadDictionary(self->cctx, buf, len);
        break;
    default:
        r = ZSTD_CCtx_refPrefix(self->cctx, buf, len);
        break;
    }
    if (ZSTD_isError(r)) {
        PyErr_Format(st->error, "Unable to load the Zstandard dictionary: %s",
                     ZSTD_getErrorName(r));
        return -1;
    }
    return 0;
}

static int
Compressor_init(PyObject *op, PyObject *args, PyObject *kwargs)
{
    Compressor *self = (Compressor *)op;
    zstd_state *st = state_of_type(Py_TYPE(op));
    if (st == NULL) {
        return -1;
    }
    static char *names[] = {"level", "options", "zstd_dict", NULL};
    PyObject *level = Py_None, *options = Py_None, *zstd_dict = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOO:ZstdCompressor", names, &level,
                                     &options, &zstd_dict)) {
        return -1;
    }
    if (level != Py_None && options != Py_None) {
        PyErr_SetString(PyExc_TypeError, "only one of level or options should be used");
        return -1;
    }
    ZDict *dict = NULL;
    int how = DICT_DIGESTED;
    if (zstd_dict != Py_None && parse_dict(st, zstd_dict, &dict, &how) < 0) {
        return -1;
    }
    if (self->cctx == NULL) {
        self->cctx = ZSTD_createCCtx();
        if (self->cctx == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    } else {
        ZSTD_CCtx_reset(self->cctx, ZSTD_reset_session_and_parameters);
    }
    self->level = ZSTD_CLEVEL_DEFAULT;
    self->last_mode = ZSTD_e_end;
    Py_CLEAR(self->dict);
    if (level != Py_None && set_level(self, level) < 0) {
        return -1;
    }
    if (options != Py_None && set_options(st, self->cctx, 1, options, &self->level) < 0) {
        return -1;
    }
    if (dict != NULL) {
        self->dict = Py_NewRef((PyObject *)dict);
        self->dict_how = how;
        if (compressor_load_dict(st, self) < 0) {
            Py_CLEAR(self->dict);
            return -1;
        }
    }
    return 0;
}

ERYX_NEW_CALLS_INIT(Compressor)

/* Compresses `len` bytes at `data` with end directive `mode`. */
static PyObject *
compress_run(Compressor *self, const void *data, size_t len, int mode)
{
    zstd_state *st = state_of_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    if (self->cctx == NULL) {
        PyErr_SetString(PyExc_ValueError, "ZstdCompressor was not initialised");
        return NULL;
    }
    eryx_out out;
    if (eryx_out_init(&out, -1) < 0) {
        return NULL;
    }
    ZSTD_inBuffer in = {data, len, 0};
    for (;;) {
        char *next;
        size_t avail;
        if (eryx_out_room(&out, &next, &avail, SIZE_MAX) < 0) {
            goto error;
        }
        ZSTD_outBuffer ob = {next, avail, 0};
        size_t r = ZSTD_compressStream2(self->cctx, &ob, &in, (ZSTD_EndDirective)mode);
        eryx_out_wrote(&out, next + ob.pos);
        if (ZSTD_isError(r)) {
            /* The frame is abandoned: the next call starts a new one. */
            ZSTD_CCtx_reset(self->cctx, ZSTD_reset_session_only);
            self->last_mode = ZSTD_e_end;
            PyErr_Format(st->error, "Unable to compress Zstandard data: %s",
                         ZSTD_getErrorName(r));
            if (self->dict_how == DICT_PREFIX) {
                PyObject *exc = PyErr_GetRaisedException();
                (void)compressor_load_dict(st, self);
                PyErr_SetRaisedException(exc);
            }
            goto error;
        }
        if (mode == ZSTD_e_continue ? in.pos == in.size : r == 0) {
            break;
        }
    }
    self->last_mode = mode;
    if (mode == ZSTD_e_end && self->dict != NULL && self->dict_how == DICT_PREFIX &&
        compressor_load_dict(st, self) < 0) {
        goto error;
    }
    return eryx_out_finish(&out);
error:
    eryx_out_drop(&out);
    return NULL;
}

static PyObject *
Compressor_compress(PyObject *op, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"data", "mode", NULL};
    Py_buffer data;
    int mode = ZSTD_e_continue;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|i:compress", names, &data, &mode)) {
        return NULL;
    }
    PyObject *result = NULL;
    if (mode != ZSTD_e_continue && mode != ZSTD_e_flush && mode != ZSTD_e_end) {
        PyErr_SetString(PyExc_ValueError,
                        "mode argument wrong value, it should be one of "
                        "ZstdCompressor.CONTINUE, ZstdCompressor.FLUSH_BLOCK, "
                        "ZstdCompressor.FLUSH_FRAME");
    } else {
        result = compress_run((Compressor *)op, data.buf, (size_t)data.len, mode);
    }
    PyBuffer_Release(&data);
    return result;
}

static PyObject *
Compressor_flush(PyObject *op, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"mode", NULL};
    int mode = ZSTD_e_end;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|i:flush", names, &mode)) {
        return NULL;
    }
    if (mode != ZSTD_e_flush && mode != ZSTD_e_end) {
        PyErr_SetString(PyExc_ValueError,
                        "mode argument wrong value, it should be "
                        "ZstdCompressor.FLUSH_FRAME or ZstdCompressor.FLUSH_BLOCK");
        return NULL;
    }
    return compress_run((Compressor *)op, NULL, 0, mode);
}

static PyObject *
Compressor_set_pledged_input_size(PyObject *op, PyObject *size)
{
    Compressor *self = (Compressor *)op;
    zstd_state *st = state_of_type(Py_TYPE(op));
    if (st == NULL) {
        return NULL;
    }
    unsigned long long value = ZSTD_CONTENTSIZE_UNKNOWN;
    if (size != Py_None) {
        if (!PyLong_Check(size)) {
            PyErr_Format(PyExc_TypeError, "size should be an int or None, not %.200s",
                         Py_TYPE(size)->tp_name);
            return NULL;
        }
        value = PyLong_AsUnsignedLongLong(size);
        if (value == (unsigned long long)-1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
                return NULL;
            }
            PyErr_Clear();
        }
        if (value >= ZSTD_CONTENTSIZE_ERROR) {
            PyErr_Format(PyExc_ValueError,
                         "size argument should be a positive int less than %llu (or None "
                         "for an unknown size)",
                         (unsigned long long)ZSTD_CONTENTSIZE_ERROR);
            return NULL;
        }
    }
    if (self->cctx == NULL) {
        PyErr_SetString(PyExc_ValueError, "ZstdCompressor was not initialised");
        return NULL;
    }
    if (self->last_mode != ZSTD_e_end) {
        PyErr_SetString(PyExc_ValueError,
                        "set_pledged_input_size() method must be called when "
                        "last_mode == FLUSH_FRAME");
        return NULL;
    }
    size_t r = ZSTD_CCtx_setPledgedSrcSize(self->cctx, value);
    if (ZSTD_isError(r)) {
        PyErr_Format(st->error, "Unable to set the pledged uncompressed content size: %s",
                     ZSTD_getErrorName(r));
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Compressor_get_last_mode(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(((Compressor *)op)->last_mode);
}

static void
Compressor_dealloc(PyObject *op)
{
    Compressor *self = (Compressor *)op;
    PyTypeObject *tp = Py_TYPE(op);
    if (self->cctx != NULL) {
        ZSTD_freeCCtx(self->cctx);
    }
    Py_CLEAR(self->dict);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyMethodDef Compressor_methods[] = {
    {"compress", (PyCFunction)(void (*)(void))Compressor_compress,
     METH_VARARGS | METH_KEYWORDS,
     "compress(data, mode=ZstdCompressor.CONTINUE) -> bytes\n\nCompresses data; "
     "FLUSH_BLOCK also flushes a block, FLUSH_FRAME also ends the frame."},
    {"flush", (PyCFunction)(void (*)(void))Compressor_flush, METH_VARARGS | METH_KEYWORDS,
     "flush(mode=ZstdCompressor.FLUSH_FRAME) -> bytes\n\nFlushes what is buffered: "
     "ends the frame (FLUSH_FRAME) or the block (FLUSH_BLOCK)."},
    {"set_pledged_input_size", Compressor_set_pledged_input_size, METH_O,
     "set_pledged_input_size(size)\n\nThe uncompressed size of the next frame (None: "
     "unknown); only between frames."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Compressor_getset[] = {
    {"last_mode", Compressor_get_last_mode, NULL,
     "The mode of the last compress() or flush() call (FLUSH_FRAME at first).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Compressor_slots[] = {
    {Py_tp_new, Compressor_new},
    {Py_tp_dealloc, Compressor_dealloc},
    {Py_tp_methods, Compressor_methods},
    {Py_tp_getset, Compressor_getset},
    {Py_tp_doc, "ZstdCompressor(level=None, options=None, zstd_dict=None)\n\n"
                "Incremental Zstandard compressor."},
    {0, NULL},
};

static PyType_Spec Compressor_spec = {
    .name = "compression.zstd.ZstdCompressor",
    .basicsize = sizeof(Compressor),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = Compressor_slots,
};

/* ---- ZstdDecompressor ------------------------------------------------- */

typedef struct {
    eryx_decomp base; /* eof, needs_input, unused_data, pending */
    ZSTD_DCtx *dctx;
    PyObject *dict;   /* the ZstdDict in use, kept alive */
    char failed;      /* a codec error happened: the frame is unusable */
} Decompressor;

static int
Decompressor_init(PyObject *op, PyObject *args, PyObject *kwargs)
{
    Decompressor *self = (Decompressor *)op;
    zstd_state *st = state_of_type(Py_TYPE(op));
    if (st == NULL) {
        return -1;
    }
    static char *names[] = {"zstd_dict", "options", NULL};
    PyObject *zstd_dict = Py_None, *options = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:ZstdDecompressor", names,
                                     &zstd_dict, &options)) {
        return -1;
    }
    ZDict *dict = NULL;
    int how = DICT_DIGESTED;
    if (zstd_dict != Py_None && parse_dict(st, zstd_dict, &dict, &how) < 0) {
        return -1;
    }
    if (self->dctx == NULL) {
        self->dctx = ZSTD_createDCtx();
        if (self->dctx == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    } else {
        ZSTD_DCtx_reset(self->dctx, ZSTD_reset_session_and_parameters);
    }
    self->failed = 0;
    Py_CLEAR(self->dict);
    if (options != Py_None && set_options(st, self->dctx, 0, options, NULL) < 0) {
        return -1;
    }
    if (dict != NULL) {
        const char *buf = PyBytes_AS_STRING(dict->content);
        size_t len = (size_t)PyBytes_GET_SIZE(dict->content);
        size_t r;
        if (how == DICT_DIGESTED) {
            ZSTD_DDict *ddict = ZDict_ddict(st, dict);
            if (ddict == NULL) {
                return -1;
            }
            r = ZSTD_DCtx_refDDict(self->dctx, ddict);
        } else if (how == DICT_UNDIGESTED) {
            r = ZSTD_DCtx_loadDictionary(self->dctx, buf, len);
        } else {
            r = ZSTD_DCtx_refPrefix(self->dctx, buf, len);
        }
        if (ZSTD_isError(r)) {
            PyErr_Format(st->error, "Unable to load the Zstandard dictionary: %s",
                         ZSTD_getErrorName(r));
            return -1;
        }
        self->dict = Py_NewRef((PyObject *)dict);
    }
    return eryx_decomp_reset(&self->base);
}

ERYX_NEW_CALLS_INIT(Decompressor)

static PyObject *
Decompressor_decompress(PyObject *op, PyObject *args, PyObject *kwargs)
{
    Decompressor *self = (Decompressor *)op;
    zstd_state *st = state_of_type(Py_TYPE(op));
    if (st == NULL) {
        return NULL;
    }
    Py_buffer data;
    Py_ssize_t max_length;
    if (eryx_parse_decompress_args(args, kwargs, &data, &max_length) < 0) {
        return NULL;
    }
    if (self->dctx == NULL) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "ZstdDecompressor was not initialised");
        return NULL;
    }
    if (self->base.eof) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_EOFError, "Already at the end of a Zstandard frame.");
        return NULL;
    }
    if (self->failed) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "Cannot decompress after a previous error");
        return NULL;
    }
    PyObject *owned;
    const char *in_ptr;
    Py_ssize_t in_len;
    if (eryx_in_join(&self->base.pending, &data, &owned, &in_ptr, &in_len) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    eryx_out out;
    if (eryx_out_init(&out, max_length) < 0) {
        goto error;
    }
    ZSTD_inBuffer in = {in_ptr, (size_t)in_len, 0};
    for (;;) {
        char *next;
        size_t avail;
        int full = eryx_out_room(&out, &next, &avail, SIZE_MAX);
        if (full < 0) {
            goto error;
        }
        if (full) {
            /* At max_length: one more call with no room still takes input
             * that gives no output (frame headers, skippable frames, the
             * checksum), so that the end of a frame is seen. */
            next = PyBytes_AS_STRING(out.buf) + out.used;
            avail = 0;
        }
        ZSTD_outBuffer ob = {next, avail, 0};
        size_t r = ZSTD_decompressStream(self->dctx, &ob, &in);
        eryx_out_wrote(&out, next + ob.pos);
        if (ZSTD_isError(r)) {
            PyErr_Format(st->error, "Unable to decompress Zstandard data: %s",
                         ZSTD_getErrorName(r));
            goto error;
        }
        if (r == 0) {
            self->base.eof = 1;
            break;
        }
        if (full || (in.pos == in.size && ob.pos < ob.size)) {
            break;
        }
    }
    if (eryx_decomp_settle(&self->base, in_ptr + in.pos, (Py_ssize_t)(in.size - in.pos),
                           &out) < 0) {
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
    if (self->dctx != NULL) {
        ZSTD_freeDCtx(self->dctx);
    }
    Py_CLEAR(self->dict);
    eryx_decomp_clear(&self->base);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyMethodDef Decompressor_methods[] = {
    {"decompress", (PyCFunction)(void (*)(void))Decompressor_decompress,
     METH_VARARGS | METH_KEYWORDS,
     "decompress(data, max_length=-1) -> bytes\n\nDecompresses data (one frame), "
     "returning at most max_length bytes when it is not negative; input that could not "
     "be used yet is kept for the next call."},
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
    {Py_tp_doc, "ZstdDecompressor(zstd_dict=None, options=None)\n\n"
                "Incremental Zstandard decompressor (one frame)."},
    {0, NULL},
};

static PyType_Spec Decompressor_spec = {
    .name = "compression.zstd.ZstdDecompressor",
    .basicsize = sizeof(Decompressor),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = Decompressor_slots,
};

/* ---- functions -------------------------------------------------------- */

static zstd_state *
module_state(PyObject *module)
{
    return (zstd_state *)PyModule_GetState(module);
}

static PyObject *
zstd_get_frame_info(PyObject *module, PyObject *arg)
{
    Py_buffer frame;
    if (PyObject_GetBuffer(arg, &frame, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    unsigned long long size = ZSTD_getFrameContentSize(frame.buf, (size_t)frame.len);
    unsigned int id = ZSTD_getDictID_fromFrame(frame.buf, (size_t)frame.len);
    PyBuffer_Release(&frame);
    if (size == ZSTD_CONTENTSIZE_ERROR) {
        PyErr_SetString(module_state(module)->error,
                        "Error when getting information from the header of a Zstandard "
                        "frame. Make sure the frame_buffer argument starts from the "
                        "beginning of a frame, and its length not less than the frame "
                        "header (6~18 bytes).");
        return NULL;
    }
    if (size == ZSTD_CONTENTSIZE_UNKNOWN) {
        return Py_BuildValue("(OI)", Py_None, id);
    }
    return Py_BuildValue("(KI)", size, id);
}

static PyObject *
zstd_get_frame_size(PyObject *module, PyObject *arg)
{
    Py_buffer frame;
    if (PyObject_GetBuffer(arg, &frame, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    size_t size = ZSTD_findFrameCompressedSize(frame.buf, (size_t)frame.len);
    PyBuffer_Release(&frame);
    if (ZSTD_isError(size)) {
        PyErr_Format(module_state(module)->error,
                     "Error when finding the compressed size of a Zstandard frame. Make "
                     "sure the frame_buffer argument starts from the beginning of a frame, "
                     "and its length not less than this complete frame. Zstd error "
                     "message: %s.",
                     ZSTD_getErrorName(size));
        return NULL;
    }
    return PyLong_FromSize_t(size);
}

/* The sample sizes for training: a tuple of ints adding up to `total`.
 * Returns a PyMem array (NULL with an exception). */
static size_t *
sample_sizes(PyObject *sizes, Py_ssize_t total, unsigned int *count)
{
    Py_ssize_t n = PyTuple_GET_SIZE(sizes);
    if ((size_t)n > UINT_MAX) {
        PyErr_SetString(PyExc_ValueError, "too many samples");
        return NULL;
    }
    size_t *out = PyMem_Malloc(sizeof(size_t) * (size_t)(n > 0 ? n : 1));
    if (out == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    size_t sum = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        size_t v = PyLong_AsSize_t(PyTuple_GET_ITEM(sizes, i));
        if (v == (size_t)-1 && PyErr_Occurred()) {
            if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError,
                             "items in samples_sizes should be ints between 0 and %zu",
                             (size_t)SIZE_MAX);
            }
            PyMem_Free(out);
            return NULL;
        }
        out[i] = v;
        sum += v;
        if (sum < v) {
            sum = SIZE_MAX;
        }
    }
    if (sum != (size_t)total) {
        PyMem_Free(out);
        PyErr_SetString(PyExc_ValueError,
                        "The samples size tuple doesn't match the concatenation's size.");
        return NULL;
    }
    *count = (unsigned int)n;
    return out;
}

static PyObject *
zstd_train_dict(PyObject *module, PyObject *args)
{
    PyObject *samples, *sizes;
    Py_ssize_t dict_size;
    if (!PyArg_ParseTuple(args, "O!O!n:train_dict", &PyBytes_Type, &samples, &PyTuple_Type,
                          &sizes, &dict_size)) {
        return NULL;
    }
    if (dict_size <= 0) {
        PyErr_SetString(PyExc_ValueError, "dict_size argument should be positive number.");
        return NULL;
    }
    unsigned int count;
    size_t *each = sample_sizes(sizes, PyBytes_GET_SIZE(samples), &count);
    if (each == NULL) {
        return NULL;
    }
    PyObject *dict = PyBytes_FromStringAndSize(NULL, dict_size);
    if (dict == NULL) {
        PyMem_Free(each);
        return NULL;
    }
    size_t r = ZDICT_trainFromBuffer(PyBytes_AS_STRING(dict), (size_t)dict_size,
                                     PyBytes_AS_STRING(samples), each, count);
    PyMem_Free(each);
    if (ZDICT_isError(r)) {
        Py_DECREF(dict);
        PyErr_Format(module_state(module)->error,
                     "Unable to train the Zstandard dictionary: %s", ZDICT_getErrorName(r));
        return NULL;
    }
    if (_PyBytes_Resize(&dict, (Py_ssize_t)r) < 0) {
        return NULL;
    }
    return dict;
}

static PyObject *
zstd_finalize_dict(PyObject *module, PyObject *args)
{
    PyObject *custom, *samples, *sizes;
    Py_ssize_t dict_size;
    int level;
    if (!PyArg_ParseTuple(args, "O!O!O!ni:finalize_dict", &PyBytes_Type, &custom,
                          &PyBytes_Type, &samples, &PyTuple_Type, &sizes, &dict_size,
                          &level)) {
        return NULL;
    }
    if (dict_size <= 0) {
        PyErr_SetString(PyExc_ValueError, "dict_size argument should be positive number.");
        return NULL;
    }
    unsigned int count;
    size_t *each = sample_sizes(sizes, PyBytes_GET_SIZE(samples), &count);
    if (each == NULL) {
        return NULL;
    }
    PyObject *dict = PyBytes_FromStringAndSize(NULL, dict_size);
    if (dict == NULL) {
        PyMem_Free(each);
        return NULL;
    }
    ZDICT_params_t params;
    memset(&params, 0, sizeof(params));
    params.compressionLevel = level;
    size_t r = ZDICT_finalizeDictionary(
        PyBytes_AS_STRING(dict), (size_t)dict_size, PyBytes_AS_STRING(custom),
        (size_t)PyBytes_GET_SIZE(custom), PyBytes_AS_STRING(samples), each, count, params);
    PyMem_Free(each);
    if (ZDICT_isError(r)) {
        Py_DECREF(dict);
        PyErr_Format(module_state(module)->error,
                     "Unable to finalize the Zstandard dictionary: %s",
                     ZDICT_getErrorName(r));
        return NULL;
    }
    if (_PyBytes_Resize(&dict, (Py_ssize_t)r) < 0) {
        return NULL;
    }
    return dict;
}

static PyObject *
zstd_get_param_bounds(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"parameter", "is_compress", NULL};
    int parameter, is_compress;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ip:get_param_bounds", names, &parameter,
                                     &is_compress)) {
        return NULL;
    }
    ZSTD_bounds b = param_bounds(is_compress, parameter);
    if (ZSTD_isError(b.error)) {
        PyErr_Format(module_state(module)->error,
                     "Error when getting bounds of Zstandard %s parameter %d: %s",
                     is_compress ? "compression" : "decompression", parameter,
                     ZSTD_getErrorName(b.error));
        return NULL;
    }
    return Py_BuildValue("(ii)", b.lowerBound, b.upperBound);
}

static PyObject *
zstd_set_parameter_types(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"c_parameter_type", "d_parameter_type", NULL};
    PyObject *c, *d;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!:set_parameter_types", names,
                                     &PyType_Type, &c, &PyType_Type, &d)) {
        return NULL;
    }
    zstd_state *st = module_state(module);
    Py_XSETREF(st->cparam_type, Py_NewRef(c));
    Py_XSETREF(st->dparam_type, Py_NewRef(d));
    Py_RETURN_NONE;
}

static PyMethodDef zstd_functions[] = {
    {"get_frame_info", zstd_get_frame_info, METH_O,
     "get_frame_info(frame_buffer) -> (decompressed_size or None, dictionary_id)"},
    {"get_frame_size", zstd_get_frame_size, METH_O,
     "get_frame_size(frame_buffer) -> int\n\nThe size of the first frame in the buffer."},
    {"train_dict", zstd_train_dict, METH_VARARGS,
     "train_dict(samples_bytes, samples_sizes, dict_size) -> bytes"},
    {"finalize_dict", zstd_finalize_dict, METH_VARARGS,
     "finalize_dict(custom_dict_bytes, samples_bytes, samples_sizes, dict_size, "
     "compression_level) -> bytes"},
    {"get_param_bounds", (PyCFunction)(void (*)(void))zstd_get_param_bounds,
     METH_VARARGS | METH_KEYWORDS,
     "get_param_bounds(parameter, is_compress) -> (lower, upper)"},
    {"set_parameter_types", (PyCFunction)(void (*)(void))zstd_set_parameter_types,
     METH_VARARGS | METH_KEYWORDS,
     "set_parameter_types(c_parameter_type, d_parameter_type)\n\nThe enums that options "
     "keys are checked against."},
    {NULL, NULL, 0, NULL},
};

/* ---- module ----------------------------------------------------------- */

static int
add_ints(PyObject *module)
{
    static const struct {
        const char *name;
        int value;
    } ints[] = {
        {"ZSTD_c_compressionLevel", ZSTD_c_compressionLevel},
        {"ZSTD_c_windowLog", ZSTD_c_windowLog},
        {"ZSTD_c_hashLog", ZSTD_c_hashLog},
        {"ZSTD_c_chainLog", ZSTD_c_chainLog},
        {"ZSTD_c_searchLog", ZSTD_c_searchLog},
        {"ZSTD_c_minMatch", ZSTD_c_minMatch},
        {"ZSTD_c_targetLength", ZSTD_c_targetLength},
        {"ZSTD_c_strategy", ZSTD_c_strategy},
        {"ZSTD_c_enableLongDistanceMatching", ZSTD_c_enableLongDistanceMatching},
        {"ZSTD_c_ldmHashLog", ZSTD_c_ldmHashLog},
        {"ZSTD_c_ldmMinMatch", ZSTD_c_ldmMinMatch},
        {"ZSTD_c_ldmBucketSizeLog", ZSTD_c_ldmBucketSizeLog},
        {"ZSTD_c_ldmHashRateLog", ZSTD_c_ldmHashRateLog},
        {"ZSTD_c_contentSizeFlag", ZSTD_c_contentSizeFlag},
        {"ZSTD_c_checksumFlag", ZSTD_c_checksumFlag},
        {"ZSTD_c_dictIDFlag", ZSTD_c_dictIDFlag},
        {"ZSTD_c_nbWorkers", ZSTD_c_nbWorkers},
        {"ZSTD_c_jobSize", ZSTD_c_jobSize},
        {"ZSTD_c_overlapLog", ZSTD_c_overlapLog},
        {"ZSTD_d_windowLogMax", ZSTD_d_windowLogMax},
        {"ZSTD_fast", ZSTD_fast},
        {"ZSTD_dfast", ZSTD_dfast},
        {"ZSTD_greedy", ZSTD_greedy},
        {"ZSTD_lazy", ZSTD_lazy},
        {"ZSTD_lazy2", ZSTD_lazy2},
        {"ZSTD_btlazy2", ZSTD_btlazy2},
        {"ZSTD_btopt", ZSTD_btopt},
        {"ZSTD_btultra", ZSTD_btultra},
        {"ZSTD_btultra2", ZSTD_btultra2},
        {"ZSTD_CLEVEL_DEFAULT", ZSTD_CLEVEL_DEFAULT},
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        if (PyModule_AddIntConstant(module, ints[i].name, ints[i].value) < 0) {
            return -1;
        }
    }
    if (PyModule_Add(module, "ZSTD_DStreamOutSize", PyLong_FromSize_t(ZSTD_DStreamOutSize())) <
            0 ||
        PyModule_AddStringConstant(module, "zstd_version", ZSTD_versionString()) < 0 ||
        PyModule_AddIntConstant(module, "zstd_version_number", ZSTD_versionNumber()) < 0) {
        return -1;
    }
    return 0;
}

static int
zstd_exec(PyObject *module)
{
    zstd_state *st = module_state(module);
    st->error = PyErr_NewExceptionWithDoc("compression.zstd.ZstdError",
                                          "An error in the Zstandard library.", NULL, NULL);
    if (st->error == NULL || PyModule_AddObjectRef(module, "ZstdError", st->error) < 0) {
        return -1;
    }
    st->dict_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &ZDict_spec, NULL);
    if (st->dict_type == NULL || PyModule_AddType(module, st->dict_type) < 0) {
        return -1;
    }
    st->compressor_type = PyType_FromModuleAndSpec(module, &Compressor_spec, NULL);
    if (st->compressor_type == NULL ||
        PyModule_AddType(module, (PyTypeObject *)st->compressor_type) < 0) {
        return -1;
    }
    static const struct {
        const char *name;
        int value;
    } modes[] = {
        {"CONTINUE", ZSTD_e_continue},
        {"FLUSH_BLOCK", ZSTD_e_flush},
        {"FLUSH_FRAME", ZSTD_e_end},
    };
    for (size_t i = 0; i < 3; i++) {
        PyObject *v = PyLong_FromLong(modes[i].value);
        if (v == NULL) {
            return -1;
        }
        int failed = PyObject_SetAttrString(st->compressor_type, modes[i].name, v);
        Py_DECREF(v);
        if (failed < 0) {
            return -1;
        }
    }
    st->decompressor_type = PyType_FromModuleAndSpec(module, &Decompressor_spec, NULL);
    if (st->decompressor_type == NULL ||
        PyModule_AddType(module, (PyTypeObject *)st->decompressor_type) < 0) {
        return -1;
    }
    return add_ints(module);
}

static int
zstd_traverse(PyObject *module, visitproc visit, void *arg)
{
    zstd_state *st = module_state(module);
    Py_VISIT(st->error);
    Py_VISIT(st->dict_type);
    Py_VISIT(st->compressor_type);
    Py_VISIT(st->decompressor_type);
    Py_VISIT(st->cparam_type);
    Py_VISIT(st->dparam_type);
    return 0;
}

static int
zstd_clear(PyObject *module)
{
    zstd_state *st = module_state(module);
    Py_CLEAR(st->error);
    Py_CLEAR(st->dict_type);
    Py_CLEAR(st->compressor_type);
    Py_CLEAR(st->decompressor_type);
    Py_CLEAR(st->cparam_type);
    Py_CLEAR(st->dparam_type);
    return 0;
}

static void
zstd_free(void *module)
{
    zstd_clear((PyObject *)module);
}

static PyModuleDef_Slot zstd_slots[] = {
    {Py_mod_exec, zstd_exec},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    {0, NULL},
};

static struct PyModuleDef zstd_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_zstd",
    .m_doc = "Zstandard (libzstd) for compression.zstd, built for eryx.",
    .m_size = sizeof(zstd_state),
    .m_methods = zstd_functions,
    .m_slots = zstd_slots,
    .m_traverse = zstd_traverse,
    .m_clear = zstd_clear,
    .m_free = zstd_free,
};

PyMODINIT_FUNC
PyInit__zstd(void)
{
    return PyModuleDef_Init(&zstd_module);
}
