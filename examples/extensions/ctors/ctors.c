/*
 * ctors: an example C extension whose static constructor calls the Python
 * API, as C++ globals with constructors do (pybind11 modules, matplotlib's
 * enum tables). Natively the constructor runs when the module is
 * `dlopen`ed, i.e. at its first import, with the interpreter running; eryx
 * runs it at the same point.
 *
 *   state() -> (runs, python_was_running, greeting)
 *       how many times the constructor ran, whether the interpreter was
 *       running then, and the str it made (None if it could not)
 */
#include <Python.h>

static int runs;
static int python_was_running;
static PyObject *greeting;

__attribute__((constructor)) static void make_greeting(void) {
    runs++;
    python_was_running = Py_IsInitialized();
    if (python_was_running) {
        greeting = PyUnicode_FromString("made by a static constructor");
    }
}

static PyObject *ctors_state(PyObject *self, PyObject *unused) {
    return Py_BuildValue("(iiO)", runs, python_was_running, greeting ? greeting : Py_None);
}

static PyMethodDef methods[] = {
    {"state", ctors_state, METH_NOARGS, "(runs, python_was_running, greeting)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ctors", "A static constructor that calls the Python API.", -1, methods,
};

PyMODINIT_FUNC PyInit_ctors(void) {
    return PyModule_Create(&module);
}
