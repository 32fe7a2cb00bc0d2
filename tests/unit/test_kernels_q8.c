/* Integer-activation matvec: the VNNI and AVX2 kernels against their scalar twin, and
 * the twin against the f32 reference kernel run on the dequantized 8-bit x
 * (which checks the zero-point / min corrections exactly). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_q8.h"
#include "core/tensor.h"
#include "core/sparse.h"
#include "compress/prune.h"
#include "test.h"
#include "core/cpu.h"

static uint64_t rng = 88172645463325252ULL;
static double urand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1.0p-53;
}

/* The three results for one matrix: the vector kernel against the scalar
 * twin, the twin against the f32 reference on the 8-bit x dequantized
 * (exact but for rounding order), and the 8-bit x against the true x. */
static void compare(const lc_wmat *w, lc_xq *xq, const char *what)
{
    int64_t rows = w->rows, cols = w->cols;
    float *x = malloc((size_t)cols * 4), *xd = malloc((size_t)cols * 4);
    float *y0 = malloc((size_t)rows * 4), *y1 = malloc((size_t)rows * 4), *y2 = malloc((size_t)rows * 4);
    for (int64_t c = 0; c < cols; c++)
        x[c] = (float)((urand() - 0.5) * (c % 17 == 0 ? 20 : 2));
    {
        lc_xq xr = {0};
        CHECK(lc_xq_prepare(xq, x, (int)cols) == 0 && lc_xq_prepare_ref(&xr, x, (int)cols) == 0, "prepare");
        CHECK(memcmp(xq->q, xr.q, (size_t)cols) == 0 && memcmp(xq->d, xr.d, (size_t)cols / 8) == 0 &&
                  memcmp(xq->s, xr.s, (size_t)cols / 8) == 0,
              "vector activation quantizer equals the scalar one");
        lc_xq_release(&xr);
    }
    for (int64_t c = 0; c < cols; c++)
        xd[c] = xq->d[c / 32] * (float)xq->q[c];
    lc_matvec_q8x_ref(w, xq, y0, 0, rows);
    lc_matvec_ref(w, xd, y2, 0, rows);
    double d02 = 0, scale = 1e-6;
    for (int64_t r = 0; r < rows; r++) {
        scale = fmax(scale, fabs(y2[r]));
        d02 = fmax(d02, fabs((double)y0[r] - y2[r]));
    }
    /* each vector level this CPU has (AVX-512: VNNI where present) */
    for (lc_isa isa = LC_ISA_AVX2; isa <= lc_cpu()->isa; isa++) {
        for (int64_t r = 0; r < rows; r++)
            y1[r] = NAN;
        /* two calls over a split row range: the result must not depend on it */
        lc_matvec_q8x(w, xq, y1, 0, rows / 2, isa);
        lc_matvec_q8x(w, xq, y1, rows / 2, rows, isa);
        double d01 = 0;
        for (int64_t r = 0; r < rows; r++)
            d01 = fmax(d01, isfinite(y1[r]) ? fabs((double)y0[r] - y1[r]) : INFINITY);
        CHECK(d01 <= 1e-5 * scale, "%s: %s kernel vs ref %g (scale %g)", what, lc_isa_name(isa), d01, scale);
    }
    CHECK(d02 <= 1e-5 * scale, "%s: ref vs f32 on 8-bit x %g (scale %g)", what, d02, scale);
    lc_matvec_ref(w, x, y2, 0, rows);
    double rel = 0, nrm = 0;
    for (int64_t r = 0; r < rows; r++)
        rel += ((double)y0[r] - y2[r]) * ((double)y0[r] - y2[r]), nrm += (double)y2[r] * y2[r];
    CHECK(sqrt(rel / (nrm + 1e-30)) < 0.05, "%s: 8-bit activation error %g", what, sqrt(rel / (nrm + 1e-30)));
    free(x), free(xd), free(y0), free(y1), free(y2);
}

/* Sparse 4-bit codes: 2:4 (lc-prune --nm 2:4 --bits 4) and bitmask
 * (--sparsity S --bits 4, densities from empty to full rows): random kept
 * positions, codes and group parameters. */
static void nm_cases(lc_xq *xq, int have_vnni)
{
    lc_qform forms[3] = {LC_QF_SYM, LC_QF_MIN, LC_QF_ZERO};
    int64_t shapes[5][2] = {{7, 128}, {33, 512}, {16, 1536}, {5, 192}, {3, 96}};
    int groups[4] = {32, 64, 128, 96};
    for (int mask = 0; mask < 2; mask++)
    for (int fi = 0; fi < 3; fi++)
        for (int si = 0; si < 5; si++)
            for (int gi = 0; gi < 4; gi++) {
                int64_t rows = shapes[si][0], cols = shapes[si][1];
                int g = groups[gi];
                if (cols % g || (mask && cols == 96)) /* 96: a 2:4 layout without q4x32 blocks */
                    continue;
                size_t n = (size_t)(rows * cols), ng = n / (size_t)g;
                float *W = malloc(n * 4);
                uint8_t *keep = malloc(n), *codes = malloc(n), *zs = malloc(ng);
                uint16_t *sc = malloc(ng * 2), *mn = malloc(ng * 2);
                for (size_t i = 0; i < n; i++)
                    W[i] = 0, codes[i] = (uint8_t)(urand() * 16);
                if (mask) { /* row r keeps a fraction (r % 5) / 4 (0 .. 1), at random */
                    for (size_t i = 0; i < n; i++) {
                        int64_t r = (int64_t)i / cols;
                        keep[i] = r % 5 == 4 || urand() < (double)(r % 5) / 4;
                    }
                } else {
                    for (size_t i = 0; i < n; i += 4) { /* two of every four, at random */
                        int a = (int)(urand() * 4), b = (a + 1 + (int)(urand() * 3)) % 4;
                        for (int k = 0; k < 4; k++)
                            keep[i + (size_t)k] = k == a || k == b;
                    }
                }
                for (size_t k = 0; k < ng; k++) {
                    sc[k] = lc_f32_to_f16((float)(urand() - 0.5) * 0.02f);
                    mn[k] = lc_f32_to_f16((float)(urand() - 0.5) * 0.1f);
                    zs[k] = (uint8_t)(urand() * 16);
                }
                lc_sparse_qvals q = {4, g, forms[fi], codes, sc, forms[fi] == LC_QF_MIN ? mn : NULL,
                                     forms[fi] == LC_QF_ZERO ? zs : NULL};
                lc_tensor t;
                lc_wmat w;
                CHECK(lc_sparse_encode("w", rows, cols, W, keep, mask ? 0 : 2, mask ? 0 : 4, LC_DT_F32, &q, &t) == 0,
                      "encode: %s", lc_errmsg());
                CHECK(lc_wmat_from_tensor(&w, &t) == 0 && w.fmt == (mask ? LC_WF_MASK_Q : LC_WF_NM_Q), "view: %s",
                      lc_errmsg());
                /* 2:4: the VBMI kernel takes groups of 32 * 2^k and rows of whole
                 * 128-column steps, the AVX2 one any group of whole blocks and rows
                 * of whole 64-column steps (96 columns: 48 kept codes, not whole
                 * q4x32 blocks); the rest stays on the f32 kernels (the twin still
                 * handles it).  Bitmask: any group of whole 32-column blocks, VBMI2. */
                int fits = mask ? __builtin_cpu_supports("avx512vbmi2")
                                : (g & (g - 1)) == 0 && cols % 128 == 0 && __builtin_cpu_supports("avx512vbmi");
                int fits2 = !mask && cols % 64 == 0 && lc_cpu()->isa >= LC_ISA_AVX2;
                const char *pat = mask ? "mask" : "2:4";
                CHECK(lc_q8x_supported(&w, LC_ISA_AVX512) == ((have_vnni && fits) || fits2) &&
                          lc_q8x_supported(&w, LC_ISA_AVX2) == fits2 && !lc_q8x_supported(&w, LC_ISA_SCALAR),
                      "%s 4-bit %lldx%lld g%d on 8-bit activations: %d %d", pat, (long long)rows, (long long)cols, g,
                      fits, fits2);
                char what[96];
                snprintf(what, sizeof what, "%s 4-bit form %d %lldx%lld g%d", pat, (int)forms[fi], (long long)rows,
                         (long long)cols, g);
                if (mask || w.q4x32) /* the twin reads 2:4 codes in q4x32 blocks only */
                    compare(&w, xq, what);
                lc_tensor_release(&t);
                free(W), free(keep), free(codes), free(zs), free(sc), free(mn);
            }
}

int main(void)
{
    test_begin("test_kernels_q8");
    int bits_list[2] = {4, 8};
    lc_qform forms[3] = {LC_QF_SYM, LC_QF_MIN, LC_QF_ZERO};
    int64_t shapes[4][2] = {{7, 96}, {33, 512}, {16, 1536}, {5, 288}};
    int groups[4] = {32, 64, 128, 96};
    lc_xq xq = {0};
    if (lc_cpu()->isa < LC_ISA_AVX2)
        SKIP("vector kernels against the scalar reference: no AVX2 on this CPU, so only the reference "
             "against f32 is checked");
    else if (!lc_cpu()->vnni)
        SKIP("VNNI kernels against the scalar reference: no AVX512-VNNI on this CPU (the AVX2 kernels "
             "for dense and 2:4 codes are checked; bitmask codes run the reference)");
    for (int bi = 0; bi < 2; bi++)
        for (int fi = 0; fi < 3; fi++)
            for (int si = 0; si < 4; si++)
                for (int gi = 0; gi < 4; gi++) {
                    int64_t rows = shapes[si][0], cols = shapes[si][1];
                    int g = groups[gi];
                    if (cols % g || (g == 96 && cols != 288)) /* 288: odd blocks, pairs across groups */
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
                    char what[96];
                    snprintf(what, sizeof what, "bits %d form %d %lldx%lld g%d", bits_list[bi], (int)forms[fi],
                             (long long)rows, (long long)cols, g);
                    compare(&w, &xq, what);
                    lc_tensor_release(&t);
                }
    {
        /* does this CPU run the integer path at all?  (AVX-512 VNNI) */
        lc_tensor t;
        lc_wmat w;
        CHECK(lc_tensor_alloc_quant(&t, "w", 1, 32, 4, 32, LC_QF_SYM) == 0 && lc_wmat_from_tensor(&w, &t) == 0, "q4");
        int vnni = lc_cpu()->vnni && lc_cpu()->isa >= LC_ISA_AVX512;
        CHECK(lc_q8x_supported(&w, LC_ISA_AVX512) == (vnni || lc_cpu()->isa >= LC_ISA_AVX2) &&
                  lc_q8x_supported(&w, LC_ISA_AVX2) == (lc_cpu()->isa >= LC_ISA_AVX2) &&
                  !lc_q8x_supported(&w, LC_ISA_SCALAR),
              "dense 4-bit codes on 8-bit activations where AVX2 or VNNI is there");
        lc_tensor_release(&t);
        nm_cases(&xq, vnni);
    }
    lc_xq_release(&xq);
    return test_end("test_kernels_q8");
}
