/* Calls into the guest's LAPACK/BLAS the way scipy's C does: gfortran's
 * names and interface (no CHARACTER lengths, `void` subroutines), plus
 * CBLAS. Matrices cross as flat lists in column-major order. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>

typedef struct { double r, i; } zcomplex;

extern void dgesv_(int *n, int *nrhs, double *a, int *lda, int *ipiv, double *b, int *ldb, int *info);
extern void dsyev_(char *jobz, char *uplo, int *n, double *a, int *lda, double *w, double *work, int *lwork, int *info);
extern void zheev_(char *jobz, char *uplo, int *n, zcomplex *a, int *lda, double *w, zcomplex *work, int *lwork, double *rwork, int *info);
extern void dgesdd_(char *jobz, int *m, int *n, double *a, int *lda, double *s, double *u, int *ldu, double *vt, int *ldvt, double *work, int *lwork, int *iwork, int *info);
extern void dgeev_(char *jobvl, char *jobvr, int *n, double *a, int *lda, double *wr, double *wi, double *vl, int *ldvl, double *vr, int *ldvr, double *work, int *lwork, int *info);
extern void dpotrf_(char *uplo, int *n, double *a, int *lda, int *info);
extern void dgemm_(char *ta, char *tb, int *m, int *n, int *k, double *alpha, double *a, int *lda, double *b, int *ldb, double *beta, double *c, int *ldc);
extern int ilaenv_(int *ispec, char *name, char *opts, int *n1, int *n2, int *n3, int *n4);
extern double dlamch_(char *cmach);
extern double dnrm2_(int *n, double *x, int *incx);
extern void dlartg_(double *f, double *g, double *c, double *s, double *r);
extern void cblas_zdotc_sub(int n, const void *x, int incx, const void *y, int incy, void *dotc);

static int to_doubles(PyObject *seq, double *out, Py_ssize_t n) {
    PyObject *fast = PySequence_Fast(seq, "expected a sequence of numbers");
    if (!fast) return -1;
    if (PySequence_Fast_GET_SIZE(fast) != n) {
        PyErr_Format(PyExc_ValueError, "expected %zd numbers", n);
        Py_DECREF(fast);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(fast, i));
        if (out[i] == -1.0 && PyErr_Occurred()) { Py_DECREF(fast); return -1; }
    }
    Py_DECREF(fast);
    return 0;
}

static PyObject *from_doubles(const double *v, Py_ssize_t n) {
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list && i < n; i++) PyList_SET_ITEM(list, i, PyFloat_FromDouble(v[i]));
    return list;
}

/* solve(n, a, b) -> (x, info): A x = b by LU (dgesv). */
static PyObject *solve(PyObject *self, PyObject *args) {
    int n, nrhs = 1, info = 0;
    PyObject *pa, *pb;
    if (!PyArg_ParseTuple(args, "iOO", &n, &pa, &pb)) return NULL;
    int m = n > 0 ? n : 1;
    double *a = calloc((size_t)m * m, sizeof *a), *b = calloc((size_t)m, sizeof *b);
    int *ipiv = calloc((size_t)m, sizeof *ipiv);
    PyObject *res = NULL;
    if (n > 0 && (to_doubles(pa, a, (Py_ssize_t)n * n) || to_doubles(pb, b, n))) goto done;
    dgesv_(&n, &nrhs, a, &m, ipiv, b, &m, &info);
    res = Py_BuildValue("(Ni)", from_doubles(b, n > 0 ? n : 0), info);
done:
    free(a); free(b); free(ipiv);
    return res;
}

/* eigh(n, a) -> eigenvalues ascending (dsyev, workspace query first). */
static PyObject *eigh(PyObject *self, PyObject *args) {
    int n, info = 0, lwork = -1;
    PyObject *pa;
    if (!PyArg_ParseTuple(args, "iO", &n, &pa)) return NULL;
    double *a = malloc(sizeof(double) * n * n), *w = malloc(sizeof(double) * n), q;
    PyObject *res = NULL;
    if (to_doubles(pa, a, (Py_ssize_t)n * n)) goto done;
    dsyev_("N", "U", &n, a, &n, w, &q, &lwork, &info);
    lwork = (int)q;
    double *work = malloc(sizeof(double) * lwork);
    dsyev_("N", "U", &n, a, &n, w, work, &lwork, &info);
    free(work);
    res = info ? PyErr_Format(PyExc_RuntimeError, "dsyev info %d", info) : from_doubles(w, n);
done:
    free(a); free(w);
    return res;
}

/* zeigh(n, re, im) -> eigenvalues of a Hermitian matrix (zheev). */
static PyObject *zeigh(PyObject *self, PyObject *args) {
    int n, info = 0, lwork = -1;
    PyObject *pr, *pi;
    if (!PyArg_ParseTuple(args, "iOO", &n, &pr, &pi)) return NULL;
    double *re = malloc(sizeof(double) * n * n), *im = malloc(sizeof(double) * n * n);
    zcomplex *a = malloc(sizeof(zcomplex) * n * n), q;
    double *w = malloc(sizeof(double) * n), *rwork = malloc(sizeof(double) * (3 * n));
    PyObject *res = NULL;
    if (to_doubles(pr, re, (Py_ssize_t)n * n) || to_doubles(pi, im, (Py_ssize_t)n * n)) goto done;
    for (int i = 0; i < n * n; i++) { a[i].r = re[i]; a[i].i = im[i]; }
    zheev_("N", "L", &n, a, &n, w, &q, &lwork, rwork, &info);
    lwork = (int)q.r;
    zcomplex *work = malloc(sizeof(zcomplex) * lwork);
    zheev_("N", "L", &n, a, &n, w, work, &lwork, rwork, &info);
    free(work);
    res = info ? PyErr_Format(PyExc_RuntimeError, "zheev info %d", info) : from_doubles(w, n);
done:
    free(re); free(im); free(a); free(w); free(rwork);
    return res;
}

/* singular_values(m, n, a) -> singular values descending (dgesdd). */
static PyObject *singular_values(PyObject *self, PyObject *args) {
    int m, n, info = 0, lwork = -1, one = 1;
    PyObject *pa;
    if (!PyArg_ParseTuple(args, "iiO", &m, &n, &pa)) return NULL;
    int k = m < n ? m : n;
    double *a = malloc(sizeof(double) * m * n), *s = malloc(sizeof(double) * k), q, dummy;
    int *iwork = malloc(sizeof(int) * 8 * k);
    PyObject *res = NULL;
    if (to_doubles(pa, a, (Py_ssize_t)m * n)) goto done;
    dgesdd_("N", &m, &n, a, &m, s, &dummy, &one, &dummy, &one, &q, &lwork, iwork, &info);
    lwork = (int)q;
    double *work = malloc(sizeof(double) * lwork);
    dgesdd_("N", &m, &n, a, &m, s, &dummy, &one, &dummy, &one, work, &lwork, iwork, &info);
    free(work);
    res = info ? PyErr_Format(PyExc_RuntimeError, "dgesdd info %d", info) : from_doubles(s, k);
done:
    free(a); free(s); free(iwork);
    return res;
}

/* eig(n, a) -> (real parts, imaginary parts) of the eigenvalues (dgeev). */
static PyObject *eig(PyObject *self, PyObject *args) {
    int n, info = 0, lwork = -1, one = 1;
    PyObject *pa;
    if (!PyArg_ParseTuple(args, "iO", &n, &pa)) return NULL;
    double *a = malloc(sizeof(double) * n * n), *wr = malloc(sizeof(double) * n),
           *wi = malloc(sizeof(double) * n), q, dummy;
    PyObject *res = NULL;
    if (to_doubles(pa, a, (Py_ssize_t)n * n)) goto done;
    dgeev_("N", "N", &n, a, &n, wr, wi, &dummy, &one, &dummy, &one, &q, &lwork, &info);
    lwork = (int)q;
    double *work = malloc(sizeof(double) * lwork);
    dgeev_("N", "N", &n, a, &n, wr, wi, &dummy, &one, &dummy, &one, work, &lwork, &info);
    free(work);
    res = info ? PyErr_Format(PyExc_RuntimeError, "dgeev info %d", info)
               : Py_BuildValue("(NN)", from_doubles(wr, n), from_doubles(wi, n));
done:
    free(a); free(wr); free(wi);
    return res;
}

/* cholesky_info(n, a) -> dpotrf's INFO (k > 0: not positive definite). */
static PyObject *cholesky_info(PyObject *self, PyObject *args) {
    int n, info = 0;
    PyObject *pa;
    if (!PyArg_ParseTuple(args, "iO", &n, &pa)) return NULL;
    double *a = malloc(sizeof(double) * n * n);
    PyObject *res = NULL;
    if (!to_doubles(pa, a, (Py_ssize_t)n * n)) {
        dpotrf_("L", &n, a, &n, &info);
        res = PyLong_FromLong(info);
    }
    free(a);
    return res;
}

/* matmul(m, k, n, a, b) -> a @ b (dgemm, column-major). */
static PyObject *matmul(PyObject *self, PyObject *args) {
    int m, k, n;
    double one = 1.0, zero = 0.0;
    PyObject *pa, *pb;
    if (!PyArg_ParseTuple(args, "iiiOO", &m, &k, &n, &pa, &pb)) return NULL;
    double *a = malloc(sizeof(double) * m * k), *b = malloc(sizeof(double) * k * n),
           *c = calloc((size_t)m * n, sizeof(double));
    PyObject *res = NULL;
    if (!to_doubles(pa, a, (Py_ssize_t)m * k) && !to_doubles(pb, b, (Py_ssize_t)k * n)) {
        dgemm_("N", "N", &m, &n, &k, &one, a, &m, b, &k, &zero, c, &m);
        res = from_doubles(c, (Py_ssize_t)m * n);
    }
    free(a); free(b); free(c);
    return res;
}

/* Small helpers: machine epsilon, a block size, a norm that must not
 * overflow, a plane rotation, a complex dot product through CBLAS. */
static PyObject *helpers(PyObject *self, PyObject *noargs) {
    int ispec = 1, n = 1000, m1 = -1, two = 2, inc = 1;
    double big[2] = {1e300, 1e300}, f = 3.0, g = 4.0, c, s, r;
    zcomplex x[2] = {{1, 2}, {3, 4}}, y[2] = {{5, 6}, {7, 8}}, dot;
    int nb = ilaenv_(&ispec, "DGETRF", " ", &n, &n, &m1, &m1);
    double nrm = dnrm2_(&two, big, &inc);
    dlartg_(&f, &g, &c, &s, &r);
    cblas_zdotc_sub(2, x, 1, y, 1, &dot);
    return Py_BuildValue("{s:d,s:i,s:d,s:(ddd),s:(dd)}", "eps", dlamch_("E"), "nb", nb, "nrm2",
                         nrm, "rotation", c, s, r, "zdotc", dot.r, dot.i);
}

static PyMethodDef methods[] = {
    {"solve", solve, METH_VARARGS, NULL},
    {"eigh", eigh, METH_VARARGS, NULL},
    {"zeigh", zeigh, METH_VARARGS, NULL},
    {"singular_values", singular_values, METH_VARARGS, NULL},
    {"eig", eig, METH_VARARGS, NULL},
    {"cholesky_info", cholesky_info, METH_VARARGS, NULL},
    {"matmul", matmul, METH_VARARGS, NULL},
    {"helpers", helpers, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "lapack_check", NULL, -1, methods};

PyMODINIT_FUNC PyInit_lapack_check(void) { return PyModule_Create(&module); }
