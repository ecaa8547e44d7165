/* LAPACK's default error handler, in a file of its own so that a program
 * that defines `xerbla_` (numpy's linalg raises a Python error from its
 * own) replaces it: an archive member is only linked when a symbol it
 * defines is still missing. The reference XERBLA stops the program, which
 * here would end the sandbox's interpreter; this one prints the reference
 * message and returns, and the routine returns with INFO < 0. */
#include <stdio.h>

#include "f2c.h"

int xerbla_(char *srname, integer *info) {
    fprintf(stderr, " ** On entry to %s parameter number %ld had an illegal value\n", srname,
            (long)*info);
    return 0;
}
