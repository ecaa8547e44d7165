/* dup() for libxml2 in the eryx guest. WASI has no dup(); libxml2 calls it
 * in two places: to keep a file it opened past its own close() of the
 * descriptor it got from open(), and to write "-" to stdout. This shim
 * (libxml2 is compiled with dup(x) and close(x) mapped here) counts the
 * references to a descriptor instead: dup() returns the same descriptor
 * with one more reference, close() drops one and closes the descriptor
 * with the last. Only libxml2's own calls go through it. Written for eryx. */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* This file is compiled with libxml2's flags, which map these names here
 * (unistd.h's own declaration of close() included). */
#undef dup
#undef close
int close(int fd);

static unsigned *refs = NULL; /* extra references, by descriptor */
static int nrefs = 0;

int
eryx_xml2_dup(int fd)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        errno = EBADF;
        return -1;
    }
    if (fd >= nrefs) {
        int n = fd + 16;
        unsigned *grown = realloc(refs, (size_t)n * sizeof(unsigned));
        if (grown == NULL) {
            errno = ENOMEM;
            return -1;
        }
        for (int i = nrefs; i < n; i++) {
            grown[i] = 0;
        }
        refs = grown;
        nrefs = n;
    }
    refs[fd]++;
    return fd;
}

int
eryx_xml2_close(int fd)
{
    if (fd >= 0 && fd < nrefs && refs[fd] > 0) {
        refs[fd]--;
        return 0;
    }
    return close(fd);
}
