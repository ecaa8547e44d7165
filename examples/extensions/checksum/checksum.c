/*
 * checksum: an example C extension (limited API) whose work is done by a
 * shared library shipped beside it, libcrc.so (built from lib/crc.c and
 * named in this module's @dylink.0 `needed` list).
 *
 *   crc32(data: bytes, start: int = 0) -> int
 */
#define Py_LIMITED_API 0x030e0000
#include <Python.h>
#include <stdint.h>

uint32_t crc_update(uint32_t crc, const unsigned char *data, size_t len);

static PyObject *checksum_crc32(PyObject *self, PyObject *args) {
    Py_buffer view;
    unsigned long start = 0;
    if (!PyArg_ParseTuple(args, "y*|k:crc32", &view, &start)) return NULL;
    uint32_t crc = crc_update((uint32_t)start, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(crc);
}

static PyMethodDef checksum_methods[] = {
    {"crc32", checksum_crc32, METH_VARARGS, "crc32(data, start=0) -> int"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef checksum_module = {
    PyModuleDef_HEAD_INIT, "checksum", "CRC-32 from a bundled C library (an eryx example).", -1,
    checksum_methods,
};

PyMODINIT_FUNC PyInit_checksum(void) { return PyModule_Create(&checksum_module); }
