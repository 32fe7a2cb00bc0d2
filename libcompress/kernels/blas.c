/* Which OpenBLAS kernels run, and which should (kernels/blas.h). */
#include "kernels/blas.h"
#include "core/cpu.h"
#include "core/lc_cblas.h"

#include <string.h>
#include <strings.h>

const char *lc_blas_core(void)
{
    const char *s = openblas_get_corename();
    return s ? s : "unknown";
}

/* The core OpenBLAS should run on this CPU, or NULL when its generic
 * fallback is already the best it has (no AVX2). */
const char *lc_blas_wanted_core(void)
{
    lc_isa isa = lc_isa_detect();
    return isa == LC_ISA_AVX512 ? "SkylakeX" : isa == LC_ISA_AVX2 ? "Haswell" : NULL;
}

static int core_is_fast(const char *c)
{
    static const char *const fast[] = {"haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"};
    for (size_t i = 0; i < sizeof fast / sizeof *fast; i++)
        if (strcasecmp(c, fast[i]) == 0)
            return 1;
    return 0;
}

int lc_blas_core_ok(void)
{
    const char *want = lc_blas_wanted_core();
    return !want || core_is_fast(lc_blas_core());
}
