/* Every matvec kernel against its scalar reference twin, for every format
 * and every ISA level this CPU supports; row decoding against
 * lc_tensor_to_f32; the sgemm matmul against the reference; per-row
 * determinism under any row split.
 *
 * Tolerance: |y - y_ref| <= cols * 2^-22 * sum_c |W[r,c] x[c]|, about twice
 * the worst-case bound of two f32 summations of `cols` terms in different
 * orders (each <= (cols - 1) * 2^-24 * sum |terms|). */
#include "kernels/kernels.h"
#include "core/tensor.h"
#include "test.h"

#include <math.h>
#include <string.h>

static uint64_t rng = 0x1234567887654321ull;
static uint32_t rnd(void)
{
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545F4914F6CDD1Dull) >> 32);
}
static float frand(void) { return (float)(rnd() >> 8) / 16777216.0f * 2.0f - 1.0f; } /* [-1, 1) */

/* A random tensor in the given format. */
static int make_tensor(lc_tensor *t, lc_wfmt fmt, int64_t rows, int64_t cols, int bits, int group, lc_qform qf)
{
    memset(t, 0, sizeof *t);
    if (fmt <= LC_WF_BF16) {
        lc_dtype dt = fmt == LC_WF_F32 ? LC_DT_F32 : fmt == LC_WF_F16 ? LC_DT_F16 : LC_DT_BF16;
        int64_t shape[2] = {rows, cols};
        if (lc_tensor_alloc_dense(t, "w", dt, 2, shape))
            return -1;
        for (int64_t i = 0; i < rows * cols; i++) {
            float v = frand();
            if (dt == LC_DT_F32)
                ((float *)t->data)[i] = v;
            else if (dt == LC_DT_F16)
                ((uint16_t *)t->data)[i] = lc_f32_to_f16(v);
            else
                ((uint16_t *)t->data)[i] = lc_f32_to_bf16(v);
        }
        return 0;
    }
    if (lc_tensor_alloc_quant(t, "w", rows, cols, bits, group, qf))
        return -1;
    for (size_t i = 0; i < t->data_bytes; i++)
        ((uint8_t *)t->data)[i] = (uint8_t)rnd();
    for (size_t g = 0; g < t->n_groups; g++) {
        t->scales[g] = lc_f32_to_f16(0.001f + 0.05f * (frand() + 1.0f));
        if (t->mins)
            t->mins[g] = lc_f32_to_f16(frand() * 0.2f);
        if (t->zeros)
            t->zeros[g] = (uint8_t)(rnd() % (1u << bits));
    }
    return 0;
}

struct cfg {
    lc_wfmt fmt;
    int bits, group;
    lc_qform qf;
};

static void check_one(const struct cfg *k, int64_t rows, int64_t cols, lc_isa best)
{
    lc_tensor t;
    lc_wmat w;
    if (make_tensor(&t, k->fmt, rows, cols, k->bits, k->group, k->qf) || lc_wmat_from_tensor(&w, &t)) {
        CHECK(0, "setup: %s", lc_errmsg());
        return;
    }
    CHECK(w.fmt == k->fmt, "format %d, expected %d", (int)w.fmt, (int)k->fmt);
    float *x = malloc(sizeof(float) * (size_t)cols), *ref = malloc(sizeof(float) * (size_t)rows);
    float *y = malloc(sizeof(float) * (size_t)rows), *y2 = malloc(sizeof(float) * (size_t)rows);
    float *dec = malloc(sizeof(float) * (size_t)(rows * cols)), *dec2 = malloc(sizeof(float) * (size_t)(rows * cols));
    for (int64_t c = 0; c < cols; c++)
        x[c] = frand();
    /* row decoding = lc_tensor_to_f32 */
    lc_wmat_rows_f32(&w, 0, rows, dec);
    CHECK(lc_tensor_to_f32(&t, dec2) == 0, "to_f32");
    CHECK(memcmp(dec, dec2, sizeof(float) * (size_t)(rows * cols)) == 0, "%s rows_f32 differs from lc_tensor_to_f32",
          lc_wfmt_name(k->fmt));
    lc_matvec_ref(&w, x, ref, 0, rows);
    for (int isa = LC_ISA_SCALAR; isa <= (int)best; isa++) {
        lc_matvec_fn fn = lc_matvec_kernel(k->fmt, (lc_isa)isa);
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 0 && !fn)
                continue;
            memset(y, 0xff, sizeof(float) * (size_t)rows);
            if (pass == 0)
                fn(&w, x, y, 0, rows);
            else
                lc_matvec(&w, x, y, 0, rows, (lc_isa)isa);
            double worst = 0;
            for (int64_t r = 0; r < rows; r++) {
                double sa = 0;
                for (int64_t c = 0; c < cols; c++)
                    sa += fabs((double)dec[r * cols + c] * x[c]);
                double tol = (double)cols * ldexp(1.0, -22) * sa, d = fabs((double)y[r] - ref[r]);
                if (!(d <= tol) && worst >= 0) {
                    CHECK(0, "%s bits %d g%d qf %d %lldx%lld isa %s (%s): row %lld: %.9g vs ref %.9g (tol %.3g)",
                          lc_wfmt_name(k->fmt), k->bits, k->group, (int)k->qf, (long long)rows, (long long)cols,
                          lc_isa_name((lc_isa)isa), pass ? "dispatch" : "kernel", (long long)r, y[r], ref[r], tol);
                    worst = -1;
                }
            }
            /* per-row determinism: any split gives the same bits */
            memset(y2, 0, sizeof(float) * (size_t)rows);
            for (int64_t r0 = 0; r0 < rows;) {
                int64_t r1 = r0 + 1 + (int64_t)(rnd() % 7);
                if (r1 > rows)
                    r1 = rows;
                if (pass == 0)
                    fn(&w, x, y2, r0, r1);
                else
                    lc_matvec(&w, x, y2, r0, r1, (lc_isa)isa);
                r0 = r1;
            }
            CHECK(memcmp(y, y2, sizeof(float) * (size_t)rows) == 0, "%s %s: row split changes the result",
                  lc_wfmt_name(k->fmt), lc_isa_name((lc_isa)isa));
        }
    }
    /* prefill matmul (sgemm, panels for non-f32) against the reference */
    int n = 3;
    float *X = malloc(sizeof(float) * (size_t)(n * cols)), *Y = malloc(sizeof(float) * (size_t)(n * rows));
    float *scratch = malloc(sizeof(float) * (size_t)(cols * 5));
    for (int64_t i = 0; i < n * cols; i++)
        X[i] = frand();
    lc_matmul(&w, X, n, Y, (int)rows, scratch, (size_t)(cols * 5)); /* 5-row panels */
    for (int i = 0; i < n; i++) {
        lc_matvec_ref(&w, X + i * cols, ref, 0, rows);
        for (int64_t r = 0; r < rows; r++) {
            double sa = 0;
            for (int64_t c = 0; c < cols; c++)
                sa += fabs((double)dec[r * cols + c] * X[i * cols + c]);
            double tol = (double)cols * ldexp(1.0, -22) * sa;
            if (!(fabs((double)Y[i * rows + r] - ref[r]) <= tol)) {
                CHECK(0, "%s matmul row %d,%lld: %.9g vs %.9g", lc_wfmt_name(k->fmt), i, (long long)r,
                      Y[i * rows + r], ref[r]);
                break;
            }
        }
    }
    free(X), free(Y), free(scratch);
    free(x), free(ref), free(y), free(y2), free(dec), free(dec2);
    lc_tensor_release(&t);
}

static void test_vec(lc_isa best)
{
    float a[77], b[77], y[77], y2[77];
    for (int i = 0; i < 77; i++)
        a[i] = frand(), b[i] = frand(), y[i] = y2[i] = frand();
    for (int n = 1; n <= 77; n += 7) {
        float ref = 0, sa = 0;
        for (int i = 0; i < n; i++)
            ref += a[i] * b[i], sa += fabsf(a[i] * b[i]);
        for (int isa = 0; isa <= (int)best; isa++) {
            float d = lc_vdot(a, b, n, (lc_isa)isa);
            CHECK(fabsf(d - ref) <= (float)n * 2.4e-7f * sa, "vdot n=%d %s: %g vs %g", n, lc_isa_name((lc_isa)isa),
                  d, ref);
        }
    }
    for (int isa = 0; isa <= (int)best; isa++) {
        memcpy(y2, y, sizeof y);
        lc_vaxpy(y2, 0.37f, a, 77, (lc_isa)isa);
        for (int i = 0; i < 77; i++)
            CHECK(fabsf(y2[i] - (y[i] + 0.37f * a[i])) <= 1e-6f, "vaxpy %s at %d", lc_isa_name((lc_isa)isa), i);
    }
}


int main(void)
{
    test_begin("test_kernels");
    lc_isa best = lc_isa_detect();
    if (best < LC_ISA_AVX2)
        SKIP("AVX2 and AVX-512 kernels against the reference: this CPU has neither");
    else if (best < LC_ISA_AVX512)
        SKIP("AVX-512 kernels against the reference: this CPU has AVX2 only");
    fprintf(stderr, "test_kernels: ISA levels scalar..%s\n", lc_isa_name(best));
    static const struct cfg cfgs[] = {
        {LC_WF_F32, 0, 0, 0},           {LC_WF_F16, 0, 0, 0},          {LC_WF_BF16, 0, 0, 0},
        {LC_WF_Q8, 8, 32, LC_QF_SYM},   {LC_WF_Q8, 8, 16, LC_QF_MIN},  {LC_WF_Q8, 8, 64, LC_QF_ZERO},
        {LC_WF_Q8, 8, 8, LC_QF_SYM},    {LC_WF_Q4, 4, 32, LC_QF_SYM},  {LC_WF_Q4, 4, 32, LC_QF_MIN},
        {LC_WF_Q4, 4, 64, LC_QF_ZERO},  {LC_WF_Q4, 4, 128, LC_QF_SYM}, {LC_WF_QBITS, 3, 32, LC_QF_ZERO},
        {LC_WF_QBITS, 2, 16, LC_QF_SYM}, {LC_WF_QBITS, 6, 32, LC_QF_MIN},
    };
    static const int64_t rows[] = {1, 3, 4, 5, 7, 18, 37};
    static const int64_t cols[] = {8, 16, 32, 33, 47, 64, 100, 128, 257, 512};
    for (size_t k = 0; k < sizeof cfgs / sizeof *cfgs; k++)
        for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
            for (size_t j = 0; j < sizeof cols / sizeof *cols; j++) {
                if (cfgs[k].fmt >= LC_WF_Q8 && cols[j] % cfgs[k].group)
                    continue;
                check_one(&cfgs[k], rows[i], cols[j], best);
            }
    check_one(&cfgs[0], 67, 1023, best);
    check_one(&cfgs[7], 67, 1024, best);
    test_vec(best);
    return test_end("test_kernels");
}
