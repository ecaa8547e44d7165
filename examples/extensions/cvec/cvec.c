/*
 * cvec: an example C extension for eryx, written against CPython's limited
 * API (so it builds as cvec.abi3.so). `cargo xtask ext build
 * examples/extensions/cvec` compiles it for wasm32-wasi against CPython
 * 3.14's headers with a pyconfig.h generated from the guest's sysconfigdata.
 *
 *   dot(a, b)    -> float   the dot product of two sequences of numbers
 *   norm(a)      -> float   the Euclidean norm
 *   scale(a, k)  -> list    every element times k
 */
#define Py_LIMITED_API 0x030e0000
#include <Python.h>
#include <math.h>

/* Reads a sequence of numbers into a new C array; NULL with an exception set. */
static double *to_doubles(PyObject *seq, Py_ssize_t *len) {
    PyObject *fast = PySequence_Fast(seq, "expected a sequence of numbers");
    if (fast == NULL) return NULL;
    Py_ssize_t n = PySequence_Size(fast);
    double *out = PyMem_Malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (out == NULL) { Py_DECREF(fast); PyErr_NoMemory(); return NULL; }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_GetItem(fast, i);
        if (item == NULL) { PyMem_Free(out); Py_DECREF(fast); return NULL; }
        out[i] = PyFloat_AsDouble(item);
        Py_DECREF(item);
        if (out[i] == -1.0 && PyErr_Occurred()) { PyMem_Free(out); Py_DECREF(fast); return NULL; }
    }
    Py_DECREF(fast);
    *len = n;
    return out;
}

static PyObject *cvec_dot(PyObject *self, PyObject *args) {
    PyObject *a, *b;
    if (!PyArg_ParseTuple(args, "OO:dot", &a, &b)) return NULL;
    Py_ssize_t na, nb;
    double *x = to_doubles(a, &na);
    if (x == NULL) return NULL;
    double *y = to_doubles(b, &nb);
    if (y == NULL) { PyMem_Free(x); return NULL; }
    if (na != nb) {
        PyMem_Free(x); PyMem_Free(y);
        return PyErr_Format(PyExc_ValueError, "dot: lengths differ (%zd and %zd)", na, nb);
    }
    double acc = 0.0;
    for (Py_ssize_t i = 0; i < na; i++) acc += x[i] * y[i];
    PyMem_Free(x); PyMem_Free(y);
    return PyFloat_FromDouble(acc);
}

static PyObject *cvec_norm(PyObject *self, PyObject *arg) {
    Py_ssize_t n;
    double *x = to_doubles(arg, &n);
    if (x == NULL) return NULL;
    double acc = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) acc += x[i] * x[i];
    PyMem_Free(x);
    return PyFloat_FromDouble(sqrt(acc));
}

static PyObject *cvec_scale(PyObject *self, PyObject *args) {
    PyObject *a;
    double k;
    if (!PyArg_ParseTuple(args, "Od:scale", &a, &k)) return NULL;
    Py_ssize_t n;
    double *x = to_doubles(a, &n);
    if (x == NULL) return NULL;
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *v = PyFloat_FromDouble(x[i] * k);
        if (v == NULL) { Py_CLEAR(out); break; }
        PyList_SetItem(out, i, v);
    }
    PyMem_Free(x);
    return out;
}

static PyMethodDef cvec_methods[] = {
    {"dot", cvec_dot, METH_VARARGS, "dot(a, b) -> float"},
    {"norm", cvec_norm, METH_O, "norm(a) -> float"},
    {"scale", cvec_scale, METH_VARARGS, "scale(a, k) -> list"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef cvec_module = {
    PyModuleDef_HEAD_INIT, "cvec", "Vector kernels in C (an eryx example).", -1, cvec_methods,
};

PyMODINIT_FUNC PyInit_cvec(void) { return PyModule_Create(&cvec_module); }
