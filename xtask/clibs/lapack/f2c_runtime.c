/* The part of f2c's run-time library that translated LAPACK calls: complex
 * arithmetic, integer powers, signs, and Fortran's blank-padded strings
 * (no I/O: LAPACK's only output is XERBLA's, which is C here). Signatures
 * are those f2c's output declares (a wasm call must match its callee's type
 * exactly): `s_copy` and `s_cat` return `int` as its subroutines do. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "f2c.h"
/* Defined under the internal names the translations call
 * (xtask/src/lapack.rs, F2C_RUNTIME). */
#include "eryx_f2c_names.h"

#undef abs
#undef min
#undef max

/* ---- complex ------------------------------------------------------------ */

double c_abs(complex *z) { return hypot(z->r, z->i); }
double z_abs(doublecomplex *z) { return hypot(z->r, z->i); }
double r_imag(complex *z) { return z->i; }
double d_imag(doublecomplex *z) { return z->i; }

void r_cnjg(complex *r, complex *z) {
    real re = z->r, im = z->i;
    r->r = re;
    r->i = -im;
}

void d_cnjg(doublecomplex *r, doublecomplex *z) {
    doublereal re = z->r, im = z->i;
    r->r = re;
    r->i = -im;
}

/* a / b by Smith's scaling (no overflow for large |b|); the result may
 * alias either operand. Division by zero gives IEEE infinities or NaNs. */
static void divide(double ar, double ai, double br, double bi, double *cr, double *ci) {
    if (fabs(br) >= fabs(bi)) {
        if (br == 0.0 && bi == 0.0) {
            *cr = ar / fabs(br);
            *ci = ai / fabs(br);
            return;
        }
        double ratio = bi / br, den = br + bi * ratio;
        *cr = (ar + ai * ratio) / den;
        *ci = (ai - ar * ratio) / den;
    } else {
        double ratio = br / bi, den = bi + br * ratio;
        *cr = (ar * ratio + ai) / den;
        *ci = (ai * ratio - ar) / den;
    }
}

void z_div(doublecomplex *c, doublecomplex *a, doublecomplex *b) {
    double cr, ci;
    divide(a->r, a->i, b->r, b->i, &cr, &ci);
    c->r = cr;
    c->i = ci;
}

void c_div(complex *c, complex *a, complex *b) {
    double cr, ci;
    divide(a->r, a->i, b->r, b->i, &cr, &ci);
    c->r = (real)cr;
    c->i = (real)ci;
}

static void complex_sqrt(double re, double im, double *sr, double *si) {
    double mag = hypot(re, im), t;
    if (mag == 0.0) {
        *sr = 0.0;
        *si = 0.0;
    } else if (re > 0.0) {
        t = sqrt(0.5 * (mag + re));
        *sr = t;
        *si = 0.5 * (im / t);
    } else {
        t = sqrt(0.5 * (mag - re));
        if (im < 0.0) t = -t;
        *sr = 0.5 * (im / t);
        *si = t;
    }
}

void z_sqrt(doublecomplex *r, doublecomplex *z) {
    double sr, si;
    complex_sqrt(z->r, z->i, &sr, &si);
    r->r = sr;
    r->i = si;
}

void c_sqrt(complex *r, complex *z) {
    double sr, si;
    complex_sqrt(z->r, z->i, &sr, &si);
    r->r = (real)sr;
    r->i = (real)si;
}

void z_exp(doublecomplex *r, doublecomplex *z) {
    double m = exp(z->r), im = z->i;
    r->r = m * cos(im);
    r->i = m * sin(im);
}

void c_exp(complex *r, complex *z) {
    double m = exp(z->r), im = z->i;
    r->r = (real)(m * cos(im));
    r->i = (real)(m * sin(im));
}

/* ---- powers ------------------------------------------------------------- */

double pow_dd(doublereal *a, doublereal *b) { return pow(*a, *b); }

static double real_power(double x, integer n) {
    double result = 1.0;
    unsigned long u;
    if (n == 0) return 1.0;
    if (n < 0) {
        x = 1.0 / x;
        u = 0UL - (unsigned long)n;
    } else {
        u = (unsigned long)n;
    }
    for (;;) {
        if (u & 1) result *= x;
        u >>= 1;
        if (!u) break;
        x *= x;
    }
    return result;
}

double pow_di(doublereal *a, integer *n) { return real_power(*a, *n); }
double pow_ri(real *a, integer *n) { return real_power(*a, *n); }

integer pow_ii(integer *a, integer *b) {
    integer x = *a, n = *b, result = 1;
    unsigned long u;
    if (n <= 0) {
        if (n == 0 || x == 1) return 1;
        /* 0 to a negative power has no value: 0 rather than a trap. */
        if (x != -1) return 0;
        n = -n;
    }
    u = (unsigned long)n;
    for (;;) {
        if (u & 1) result *= x;
        u >>= 1;
        if (!u) break;
        x *= x;
    }
    return result;
}

static void complex_power(double ar, double ai, integer n, double *pr, double *pi) {
    double rr = 1.0, ri = 0.0, t;
    unsigned long u;
    if (n == 0) {
        *pr = 1.0;
        *pi = 0.0;
        return;
    }
    if (n < 0) {
        divide(1.0, 0.0, ar, ai, &ar, &ai);
        u = 0UL - (unsigned long)n;
    } else {
        u = (unsigned long)n;
    }
    for (;;) {
        if (u & 1) {
            t = rr * ar - ri * ai;
            ri = rr * ai + ri * ar;
            rr = t;
        }
        u >>= 1;
        if (!u) break;
        t = ar * ar - ai * ai;
        ai = 2.0 * ar * ai;
        ar = t;
    }
    *pr = rr;
    *pi = ri;
}

void pow_zi(doublecomplex *p, doublecomplex *a, integer *b) {
    double pr, pi;
    complex_power(a->r, a->i, *b, &pr, &pi);
    p->r = pr;
    p->i = pi;
}

void pow_ci(complex *p, complex *a, integer *b) {
    double pr, pi;
    complex_power(a->r, a->i, *b, &pr, &pi);
    p->r = (real)pr;
    p->i = (real)pi;
}

/* ---- signs, rounding, logarithms ---------------------------------------- */

double d_sign(doublereal *a, doublereal *b) {
    double x = fabs(*a);
    return *b >= 0 ? x : -x;
}

double r_sign(real *a, real *b) {
    double x = fabs(*a);
    return *b >= 0 ? x : -x;
}

integer i_dnnt(doublereal *x) { return (integer)(*x >= 0 ? floor(*x + 0.5) : -floor(0.5 - *x)); }
integer i_nint(real *x) { return (integer)(*x >= 0 ? floor(*x + 0.5) : -floor(0.5 - *x)); }

double d_lg10(doublereal *x) { return log10(*x); }
double r_lg10(real *x) { return log10(*x); }

/* ---- CHARACTER strings (blank-padded, lengths passed alongside) ---------- */

integer i_len(char *s, ftnlen n) {
    (void)s;
    return n;
}

/* Fortran comparison: the shorter string is padded with blanks. */
integer s_cmp(char *a, char *b, ftnlen la, ftnlen lb) {
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    ftnlen i, n = la < lb ? la : lb;
    for (i = 0; i < n; i++)
        if (x[i] != y[i]) return x[i] - y[i];
    for (; i < la; i++)
        if (x[i] != ' ') return x[i] - ' ';
    for (; i < lb; i++)
        if (y[i] != ' ') return ' ' - y[i];
    return 0;
}

/* a = b, truncated or padded with blanks to la. */
int s_copy(char *a, char *b, ftnlen la, ftnlen lb) {
    ftnlen n = la < lb ? la : lb;
    memmove(a, b, (size_t)(n > 0 ? n : 0));
    if (la > n) memset(a + n, ' ', (size_t)(la - n));
    return 0;
}

/* lp = rpp[0] // rpp[1] // ..., truncated or padded to ll; the pieces may
 * overlap the result. */
int s_cat(char *lp, char **rpp, integer *rnp, integer *np, ftnlen ll) {
    char stack[256];
    char *buf = ll <= (ftnlen)sizeof stack ? stack : malloc((size_t)ll);
    ftnlen at = 0;
    integer i;
    if (!buf) return 0;
    for (i = 0; i < *np && at < ll; i++) {
        ftnlen n = rnp[i];
        if (n > ll - at) n = ll - at;
        if (n > 0) memcpy(buf + at, rpp[i], (size_t)n);
        if (n > 0) at += n;
    }
    if (at < ll) memset(buf + at, ' ', (size_t)(ll - at));
    memcpy(lp, buf, (size_t)ll);
    if (buf != stack) free(buf);
    return 0;
}
