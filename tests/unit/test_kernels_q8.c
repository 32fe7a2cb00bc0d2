/* Integer-activation matvec: the VNNI kernel against its scalar twin, and
 * the twin against the f32 reference kernel run on the dequantized 8-bit x
 * (which checks the zero-point / min corrections exactly). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_q8.h"
#include "test.h"

static uint64_t rng = 88172645463325252ULL;
static double urand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1.0p-53;
}

int main(void)
{
    int bits_list[2] = {4, 8};
    lc_qform forms[3] = {LC_QF_SYM, LC_QF_MIN, LC_QF_ZERO};
    int64_t shapes[3][2] = {{7, 96}, {33, 512}, {16, 1536}};
    int groups[3] = {32, 64, 128};
    lc_xq xq = {0};
    for (int bi = 0; bi < 2; bi++)
        for (int fi = 0; fi < 3; fi++)
            for (int si = 0; si < 3; si++)
                for (int gi = 0; gi < 3; gi++) {
                    int64_t rows = shapes[si][0], cols = shapes[si][1];
                    int g = groups[gi];
                    if (cols % g)
                        continue;
                    lc_tensor t;
                    CHECK(lc_tensor_alloc_quant(&t, "w", rows, cols, bits_list[bi], g, forms[fi]) == 0, "alloc");
                    for (size_t k = 0; k < t.data_bytes; k++)
                        ((uint8_t *)t.data)[k] = (uint8_t)(urand() * 256);
                    for (size_t k = 0; k < t.n_groups; k++) {
                        t.scales[k] = lc_f32_to_f16((float)(urand() - 0.5) * 0.02f);
                        if (t.mins)
                            t.mins[k] = lc_f32_to_f16((float)(urand() - 0.5) * 0.1f);
                        if (t.zeros)
                            t.zeros[k] = (uint8_t)(urand() * (1 << bits_list[bi]));
                    }
                    lc_wmat w;
                    CHECK(lc_wmat_from_tensor(&w, &t) == 0, "view: %s", lc_errmsg());
                    float *x = malloc((size_t)cols * 4), *xd = malloc((size_t)cols * 4);
                    float *y0 = malloc((size_t)rows * 4), *y1 = malloc((size_t)rows * 4), *y2 = malloc((size_t)rows * 4);
                    for (int64_t c = 0; c < cols; c++)
                        x[c] = (float)((urand() - 0.5) * (c % 17 == 0 ? 20 : 2));
                    {
                        lc_xq xr = {0};
                        CHECK(lc_xq_prepare(&xq, x, (int)cols) == 0 && lc_xq_prepare_ref(&xr, x, (int)cols) == 0,
                              "prepare");
                        CHECK(memcmp(xq.q, xr.q, (size_t)cols) == 0 && memcmp(xq.d, xr.d, (size_t)cols / 8) == 0 &&
                                  memcmp(xq.s, xr.s, (size_t)cols / 8) == 0,
                              "vector activation quantizer equals the scalar one");
                        lc_xq_release(&xr);
                    }
                    for (int64_t c = 0; c < cols; c++)
                        xd[c] = xq.d[c / 32] * (float)xq.q[c];
                    lc_matvec_q8x_ref(&w, &xq, y0, 0, rows);
                    lc_matvec_q8x(&w, &xq, y1, 0, rows);
                    lc_matvec_ref(&w, xd, y2, 0, rows);
                    double d01 = 0, d02 = 0, scale = 1e-6;
                    for (int64_t r = 0; r < rows; r++) {
                        scale = fmax(scale, fabs(y2[r]));
                        d01 = fmax(d01, fabs((double)y0[r] - y1[r]));
                        d02 = fmax(d02, fabs((double)y0[r] - y2[r]));
                    }
                    CHECK(d01 <= 1e-5 * scale, "bits %d form %d %lldx%lld g%d: vnni vs ref %g (scale %g)",
                          bits_list[bi], (int)forms[fi], (long long)rows, (long long)cols, g, d01, scale);
                    CHECK(d02 <= 1e-5 * scale, "bits %d form %d %lldx%lld g%d: ref vs f32 on 8-bit x %g (scale %g)",
                          bits_list[bi], (int)forms[fi], (long long)rows, (long long)cols, g, d02, scale);
                    /* and the 8-bit x stays close to the true product */
                    lc_matvec_ref(&w, x, y2, 0, rows);
                    double rel = 0, nrm = 0;
                    for (int64_t r = 0; r < rows; r++)
                        rel += ((double)y0[r] - y2[r]) * ((double)y0[r] - y2[r]), nrm += (double)y2[r] * y2[r];
                    CHECK(sqrt(rel / (nrm + 1e-30)) < 0.05, "8-bit activation error %g", sqrt(rel / (nrm + 1e-30)));
                    free(x), free(xd), free(y0), free(y1), free(y2);
                    lc_tensor_release(&t);
                }
    lc_xq_release(&xq);
    return test_end("test_kernels_q8");
}
