/* Seeded sampling with GSL (kept apart from OpenBLAS's cblas.h, which
 * conflicts with GSL's headers). */
#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdlib.h>

#include "compress/calib.h"

int lc_sample_indices(int64_t n, int k, uint64_t seed, int64_t *out)
{
    if (k < 0 || n < k)
        return lc_error("cannot choose %d of %lld", k, (long long)n);
    gsl_set_error_handler_off();
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r)
        return lc_error("out of memory");
    gsl_rng_set(r, (unsigned long)(seed ^ (seed >> 32)));
    long *src = malloc((size_t)(n ? n : 1) * sizeof *src), *dst = malloc((size_t)(k ? k : 1) * sizeof *dst);
    if (!src || !dst) {
        free(src), free(dst), gsl_rng_free(r);
        return lc_error("out of memory");
    }
    for (int64_t i = 0; i < n; i++)
        src[i] = (long)i;
    /* gsl_ran_choose keeps the input order: the result is sorted */
    if (k)
        gsl_ran_choose(r, dst, (size_t)k, src, (size_t)n, sizeof *src);
    for (int i = 0; i < k; i++)
        out[i] = dst[i];
    free(src), free(dst);
    gsl_rng_free(r);
    return 0;
}
