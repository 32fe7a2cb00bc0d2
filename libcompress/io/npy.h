/*
 * A tiny reader for NumPy .npy files (format 1.0/2.0/3.0), enough for test
 * fixtures: dtypes '<f4', '<f8', '<i4', '<i8', C order, up to 4 dims.  The
 * header is validated (magic, lengths, dict keys, shape against the byte
 * count).  Values are converted on load to double (lc_npy.f) - exact for all
 * four dtypes except i8 beyond 2^53.
 */
#ifndef LC_NPY_H
#define LC_NPY_H

#include <stdint.h>
#include <stddef.h>

typedef struct lc_npy {
    char dtype[4];        /* "<f4", "<f8", "<i4", "<i8" */
    int ndim;
    int64_t shape[4];
    size_t n;             /* number of elements */
    double *f;            /* n values */
} lc_npy;

int lc_npy_read(const char *path, lc_npy *a);
int lc_npy_parse(const uint8_t *buf, size_t len, const char *label, lc_npy *a);
void lc_npy_release(lc_npy *a);

#endif
