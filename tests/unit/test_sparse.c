/* Sparse weight formats in the kernels: every matvec kernel (2:4 f32/f16/bf16,
 * 2:4 4-bit, bitmask f32, and the reference fallbacks of other patterns and
 * value types) against lc_matvec_ref at every ISA level this CPU has, on
 * odd sizes; the row decoder against lc_tensor_to_f32 (bit-exact) and
 * lc_tensor_to_f32 against the dense matrix the encoder was given;
 * per-row determinism under any row split; prefill matmul; stored bytes
 * below dense.
 *
 * Tolerance as tests/unit/test_kernels.c: |y - y_ref| <= cols * 2^-22 *
 * sum_c |W[r,c] x[c]|. */
#include "kernels/kernels.h"
#include "core/tensor.h"
#include "core/sparse.h"
#include "compress/prune.h"
#include "test.h"

#include <math.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545F4914F6CDD1Dull) >> 32);
}
static float frand(void) { return (float)(rnd() >> 8) / 16777216.0f * 2.0f - 1.0f; }

struct cfg {
    int n, m;          /* n = 0: bitmask */
    double density;    /* bitmask: probability a position is kept */
    lc_dtype dt;
    int bits, group;   /* bits = 0: dense values */
    lc_qform qf;
    lc_wfmt fmt;       /* expected view format */
};

/* A random sparse tensor of cfg k; *dense receives what it must decode to. */
static int make(const struct cfg *k, int64_t rows, int64_t cols, lc_tensor *t, float **dense)
{
    size_t n = (size_t)(rows * cols);
    float *W = malloc(n * sizeof *W);
    uint8_t *keep = malloc(n), *codes = malloc(n);
    int64_t ng = k->bits ? rows * (cols / k->group) : 0;
    uint16_t *sc = malloc((size_t)(ng + 1) * 2), *mn = malloc((size_t)(ng + 1) * 2);
    uint8_t *zs = malloc((size_t)ng + 1);
    *dense = malloc(n * sizeof **dense);
    for (size_t i = 0; i < n; i++)
        W[i] = frand(), keep[i] = 0;
    if (k->n) {
        for (size_t g = 0; g < n / (size_t)k->m; g++)
            for (int got = 0; got < k->n;) {
                size_t j = g * (size_t)k->m + rnd() % (unsigned)k->m;
                if (!keep[j])
                    keep[j] = 1, got++;
            }
    } else {
        for (size_t i = 0; i < n; i++)
            keep[i] = (double)(rnd() >> 8) / 16777216.0 < k->density;
    }
    int half = k->bits ? 1 << (k->bits - 1) : 0;
    for (int64_t g = 0; g < ng; g++) {
        sc[g] = lc_f32_to_f16(0.001f + 0.05f * (frand() + 1.0f));
        mn[g] = lc_f32_to_f16(frand() * 0.2f);
        zs[g] = k->bits ? (uint8_t)(rnd() % (1u << k->bits)) : 0;
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            size_t i = (size_t)(r * cols + c);
            float v = 0.f;
            if (k->bits) {
                codes[i] = (uint8_t)(rnd() % (1u << k->bits));
                size_t gi = (size_t)(r * (cols / k->group) + c / k->group);
                float s = lc_f16_to_f32(sc[gi]);
                v = k->qf == LC_QF_MIN ? s * (float)codes[i] + lc_f16_to_f32(mn[gi])
                                       : s * (float)(codes[i] - (k->qf == LC_QF_SYM ? half : zs[gi]));
            } else {
                v = k->dt == LC_DT_F32 ? W[i] : k->dt == LC_DT_F16 ? lc_f16_to_f32(lc_f32_to_f16(W[i]))
                                                                   : lc_bf16_to_f32(lc_f32_to_bf16(W[i]));
            }
            (*dense)[i] = keep[i] ? v : 0.f;
        }
    lc_sparse_qvals q = {k->bits, k->group, k->qf, codes, sc, k->qf == LC_QF_MIN ? mn : NULL,
                         k->qf == LC_QF_ZERO ? zs : NULL};
    int rc = lc_sparse_encode("w", rows, cols, W, keep, k->n, k->m, k->dt, k->bits ? &q : NULL, t);
    free(W), free(keep), free(codes), free(sc), free(mn), free(zs);
    return rc;
}

static const char *cfg_str(const struct cfg *k)
{
    static char buf[96];
    snprintf(buf, sizeof buf, "%d:%d dens %.2f %s bits %d g%d qf %d", k->n, k->m, k->density, lc_dtype_name(k->dt),
             k->bits, k->group, (int)k->qf);
    return buf;
}

static void check_one(const struct cfg *k, int64_t rows, int64_t cols, lc_isa best)
{
    lc_tensor t;
    lc_wmat w;
    float *want = NULL;
    if (make(k, rows, cols, &t, &want) || lc_wmat_from_tensor(&w, &t)) {
        CHECK(0, "setup %s %lldx%lld: %s", cfg_str(k), (long long)rows, (long long)cols, lc_errmsg());
        free(want);
        return;
    }
    CHECK(w.fmt == k->fmt, "%s: format %s, expected %s", cfg_str(k), lc_wfmt_name(w.fmt), lc_wfmt_name(k->fmt));
    size_t n = (size_t)(rows * cols);
    float *x = malloc(sizeof(float) * (size_t)cols), *ref = malloc(sizeof(float) * (size_t)rows);
    float *y = malloc(sizeof(float) * (size_t)rows), *y2 = malloc(sizeof(float) * (size_t)rows);
    float *dec = malloc(sizeof(float) * n), *dec2 = malloc(sizeof(float) * n);
    for (int64_t c = 0; c < cols; c++)
        x[c] = frand();
    CHECK(lc_tensor_to_f32(&t, dec2) == 0, "to_f32: %s", lc_errmsg());
    CHECK(memcmp(dec2, want, sizeof(float) * n) == 0, "%s %lldx%lld: lc_tensor_to_f32 differs from the encoded matrix",
          cfg_str(k), (long long)rows, (long long)cols);
    lc_wmat_rows_f32(&w, 0, rows, dec);
    CHECK(memcmp(dec, dec2, sizeof(float) * n) == 0, "%s: rows_f32 differs from lc_tensor_to_f32", cfg_str(k));
    CHECK(lc_wmat_bytes(&w) == lc_tensor_stored_bytes(&t), "%s: view bytes %zu, stored %zu", cfg_str(k),
          lc_wmat_bytes(&w), lc_tensor_stored_bytes(&t));
    lc_matvec_ref(&w, x, ref, 0, rows);
    /* the reference against a double dot product of the decoded matrix */
    for (int64_t r = 0; r < rows; r++) {
        double s = 0, sa = 0;
        for (int64_t c = 0; c < cols; c++)
            s += (double)dec[r * cols + c] * x[c], sa += fabs((double)dec[r * cols + c] * x[c]);
        if (!(fabs(s - ref[r]) <= (double)cols * ldexp(1.0, -21) * sa + 1e-30)) {
            CHECK(0, "%s %lldx%lld: ref row %lld = %.9g, decoded dot %.9g", cfg_str(k), (long long)rows,
                  (long long)cols, (long long)r, ref[r], s);
            break;
        }
    }
    for (int isa = LC_ISA_SCALAR; isa <= (int)best; isa++) {
        lc_matvec_fn fn = lc_matvec_kernel(w.fmt, (lc_isa)isa);
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 0 && !fn)
                continue;
            memset(y, 0xff, sizeof(float) * (size_t)rows);
            if (pass == 0)
                fn(&w, x, y, 0, rows);
            else
                lc_matvec(&w, x, y, 0, rows, (lc_isa)isa);
            for (int64_t r = 0; r < rows; r++) {
                double sa = 0;
                for (int64_t c = 0; c < cols; c++)
                    sa += fabs((double)dec[r * cols + c] * x[c]);
                double tol = (double)cols * ldexp(1.0, -22) * sa, d = fabs((double)y[r] - ref[r]);
                if (!(d <= tol)) {
                    CHECK(0, "%s %lldx%lld isa %s (%s): row %lld: %.9g vs ref %.9g (tol %.3g)", cfg_str(k),
                          (long long)rows, (long long)cols, lc_isa_name((lc_isa)isa), pass ? "dispatch" : "kernel",
                          (long long)r, y[r], ref[r], tol);
                    break;
                }
            }
            memset(y2, 0, sizeof(float) * (size_t)rows);
            for (int64_t r0 = 0; r0 < rows;) {
                int64_t r1 = r0 + 1 + (int64_t)(rnd() % 7);
                r1 = r1 > rows ? rows : r1;
                if (pass == 0)
                    fn(&w, x, y2, r0, r1);
                else
                    lc_matvec(&w, x, y2, r0, r1, (lc_isa)isa);
                r0 = r1;
            }
            CHECK(memcmp(y, y2, sizeof(float) * (size_t)rows) == 0, "%s %s: row split changes the result", cfg_str(k),
                  lc_isa_name((lc_isa)isa));
        }
    }
    /* prefill: sgemm over decoded panels */
    int nb = 3;
    float *X = malloc(sizeof(float) * (size_t)(nb * cols)), *Y = malloc(sizeof(float) * (size_t)(nb * rows));
    float *scratch = malloc(sizeof(float) * (size_t)(cols * 5));
    for (int64_t i = 0; i < nb * cols; i++)
        X[i] = frand();
    lc_matmul(&w, X, nb, Y, (int)rows, scratch, (size_t)(cols * 5));
    for (int i = 0; i < nb; i++) {
        lc_matvec_ref(&w, X + i * cols, ref, 0, rows);
        for (int64_t r = 0; r < rows; r++) {
            double sa = 0;
            for (int64_t c = 0; c < cols; c++)
                sa += fabs((double)dec[r * cols + c] * X[i * cols + c]);
            if (!(fabs((double)Y[i * rows + r] - ref[r]) <= (double)cols * ldexp(1.0, -22) * sa)) {
                CHECK(0, "%s matmul row %d,%lld: %.9g vs %.9g", cfg_str(k), i, (long long)r, Y[i * rows + r], ref[r]);
                break;
            }
        }
    }
    free(X), free(Y), free(scratch);
    free(x), free(ref), free(y), free(y2), free(dec), free(dec2), free(want);
    lc_tensor_release(&t);
}

/* Bytes: 2:4 f32 reads 4.25 bytes per kept weight (vs 8 for its two dense
 * ones); 2:4 + 4-bit g32 stores 3.5 bits per dense weight; a 50% mask f32
 * 16 + 1 + row offsets. */
static void check_bytes(void)
{
    struct cfg nm = {2, 4, 0, LC_DT_F32, 0, 0, 0, LC_WF_NM}, nq = {2, 4, 0, LC_DT_F32, 4, 32, LC_QF_SYM, LC_WF_NM_Q};
    lc_tensor t;
    float *d;
    if (make(&nm, 64, 512, &t, &d) == 0) {
        CHECK(lc_tensor_stored_bytes(&t) == 64 * 256 * 4 + 64 * 64, "2:4 f32 bytes %zu", lc_tensor_stored_bytes(&t));
        lc_tensor_release(&t);
    }
    free(d);
    if (make(&nq, 64, 512, &t, &d) == 0) {
        double bpw = 8.0 * (double)lc_tensor_stored_bytes(&t) / (64.0 * 512);
        CHECK(fabs(bpw - 3.5) < 1e-9, "2:4 q4 g32 bpw %g, expected 3.5", bpw);
        char enc[48];
        lc_tensor_encoding_str(&t, enc, sizeof enc);
        CHECK(strcmp(enc, "2:4+q4-sym-g32") == 0, "encoding string '%s'", enc);
        lc_tensor_release(&t);
    }
    free(d);
}

int main(void)
{
    test_begin("test_sparse");
    lc_isa best = lc_isa_detect();
    if (best < LC_ISA_AVX2)
        SKIP("AVX2 and AVX-512 kernels against the reference: this CPU has neither");
    else if (best < LC_ISA_AVX512)
        SKIP("AVX-512 kernels against the reference: this CPU has AVX2 only");
    fprintf(stderr, "test_sparse: ISA levels scalar..%s\n", lc_isa_name(best));
    static const struct cfg nm_cfgs[] = {
        {2, 4, 0, LC_DT_F32, 0, 0, 0, LC_WF_NM},          {4, 8, 0, LC_DT_F32, 0, 0, 0, LC_WF_NM},
        {1, 4, 0, LC_DT_F32, 0, 0, 0, LC_WF_NM},          {2, 4, 0, LC_DT_BF16, 0, 0, 0, LC_WF_NM},
        {3, 8, 0, LC_DT_F16, 0, 0, 0, LC_WF_NM},          {2, 4, 0, LC_DT_F16, 0, 0, 0, LC_WF_NM},          {2, 4, 0, LC_DT_F32, 4, 32, LC_QF_SYM, LC_WF_NM_Q},
        {2, 4, 0, LC_DT_F32, 4, 64, LC_QF_ZERO, LC_WF_NM_Q}, {2, 4, 0, LC_DT_F32, 4, 16, LC_QF_SYM, LC_WF_NM_Q},
        {2, 4, 0, LC_DT_F32, 4, 128, LC_QF_MIN, LC_WF_NM_Q}, {2, 4, 0, LC_DT_F32, 3, 8, LC_QF_ZERO, LC_WF_NM_Q},
        {4, 8, 0, LC_DT_F32, 8, 32, LC_QF_SYM, LC_WF_NM_Q},
        /* every code width a tool can write under an N:M pattern (composition) */
        {2, 4, 0, LC_DT_F32, 2, 32, LC_QF_SYM, LC_WF_NM_Q}, {2, 4, 0, LC_DT_F32, 5, 32, LC_QF_SYM, LC_WF_NM_Q},
        {2, 4, 0, LC_DT_F32, 6, 16, LC_QF_ZERO, LC_WF_NM_Q}, {4, 8, 0, LC_DT_F32, 7, 8, LC_QF_SYM, LC_WF_NM_Q},
        {2, 4, 0, LC_DT_F32, 8, 128, LC_QF_ZERO, LC_WF_NM_Q},
    };
    static const struct cfg mask_cfgs[] = {
        {0, 0, 0.5, LC_DT_F32, 0, 0, 0, LC_WF_MASK},      {0, 0, 0.1, LC_DT_F32, 0, 0, 0, LC_WF_MASK},
        {0, 0, 0.97, LC_DT_F32, 0, 0, 0, LC_WF_MASK},     {0, 0, 0.5, LC_DT_BF16, 0, 0, 0, LC_WF_MASK},
        {0, 0, 0.0, LC_DT_F32, 0, 0, 0, LC_WF_MASK},      {0, 0, 0.5, LC_DT_F32, 4, 32, LC_QF_SYM, LC_WF_MASK_Q},
        {0, 0, 0.3, LC_DT_F32, 3, 1, LC_QF_ZERO, LC_WF_MASK_Q}, {0, 0, 0.6, LC_DT_F32, 8, 16, LC_QF_MIN, LC_WF_MASK_Q},
        {0, 0, 0.4, LC_DT_F32, 4, 8, LC_QF_ZERO, LC_WF_MASK_Q}, {0, 0, 0.7, LC_DT_F32, 4, 16, LC_QF_MIN, LC_WF_MASK_Q},
        {0, 0, 0.97, LC_DT_F32, 4, 8, LC_QF_SYM, LC_WF_MASK_Q}, {0, 0, 0.02, LC_DT_F32, 4, 8, LC_QF_ZERO, LC_WF_MASK_Q},
        /* every code width under a bitmask */
        {0, 0, 0.5, LC_DT_F32, 2, 8, LC_QF_SYM, LC_WF_MASK_Q},  {0, 0, 0.5, LC_DT_F32, 5, 32, LC_QF_SYM, LC_WF_MASK_Q},
        {0, 0, 0.5, LC_DT_F32, 6, 16, LC_QF_ZERO, LC_WF_MASK_Q}, {0, 0, 0.5, LC_DT_F32, 7, 32, LC_QF_MIN, LC_WF_MASK_Q},
    };
    static const int64_t rows[] = {1, 3, 4, 5, 7, 13};
    static const int64_t nm_cols[] = {8, 24, 40, 64, 72, 128, 136, 192, 264, 320};
    static const int64_t mask_cols[] = {1, 7, 8, 13, 16, 31, 33, 47, 64, 100, 257};
    for (size_t k = 0; k < sizeof nm_cfgs / sizeof *nm_cfgs; k++)
        for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
            for (size_t j = 0; j < sizeof nm_cols / sizeof *nm_cols; j++) {
                int64_t c = nm_cols[j];
                if (c % nm_cfgs[k].m || (nm_cfgs[k].bits && c % nm_cfgs[k].group))
                    continue;
                check_one(&nm_cfgs[k], rows[i], c, best);
            }
    for (size_t k = 0; k < sizeof mask_cfgs / sizeof *mask_cfgs; k++)
        for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
            for (size_t j = 0; j < sizeof mask_cols / sizeof *mask_cols; j++) {
                if (mask_cfgs[k].bits && mask_cols[j] % mask_cfgs[k].group)
                    continue;
                check_one(&mask_cfgs[k], rows[i], mask_cols[j], best);
            }
    check_one(&nm_cfgs[0], 67, 1024, best);
    check_one(&nm_cfgs[5], 67, 1536, best);
    check_one(&mask_cfgs[0], 67, 1023, best);
    check_bytes();
    return test_end("test_sparse");
}
