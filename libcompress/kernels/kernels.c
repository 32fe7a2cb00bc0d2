/* Weight-matrix kernels: scalar references, AVX2 and AVX-512 matvecs,
 * row decoding and the sgemm-based prefill matmul.  See kernels.h. */
#include "kernels/kernels.h"
#include "core/tensor.h"

#include <immintrin.h>
#include <string.h>

#include "core/lc_cblas.h"

#define T_AVX2 "avx2,fma,f16c"
#define T_AVX512 "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"
#define INL static inline __attribute__((always_inline))

/* ---- scalar helpers ----------------------------------------------------- */

INL float h2f(uint16_t h) { return lc_f16_to_f32(h); }
INL float bf2f(uint16_t h) { return lc_bf16_to_f32(h); }

/* Integer offset z of group gi (LC_QF_SYM: 2^(b-1); LC_QF_ZERO: stored). */
INL int qzero(const lc_wmat *w, size_t gi)
{
    return w->qform == LC_QF_SYM ? 1 << (w->bits - 1) : w->qform == LC_QF_ZERO ? w->zeros[gi] : 0;
}

static const char *const fmt_names[LC_WF_COUNT] = {"f32", "f16", "bf16", "q8", "q4", "qbits",
                                                   "nm", "nm-q", "mask", "mask-q", "zero"};

const char *lc_wfmt_name(lc_wfmt fmt) { return fmt >= 0 && fmt < LC_WF_COUNT ? fmt_names[fmt] : "?"; }

/* ---- views --------------------------------------------------------------- */

static int base_view(lc_wmat *w, const lc_tensor *t);

int lc_wmat_from_tensor(lc_wmat *w, const lc_tensor *t)
{
    memset(w, 0, sizeof *w);
    if (lc_tensor_has_lowrank(t))
        return lc_error("tensor '%s': a low-rank term needs views for its factors", t->name);
    return lc_wmat_from_tensor_lr(w, t, NULL);
}

int lc_wmat_from_tensor_lr(lc_wmat *w, const lc_tensor *t, lc_wmat fac[2])
{
    memset(w, 0, sizeof *w);
    if (t->ndim < 1 || t->ndim > 2)
        return lc_error("tensor '%s': rank %d is not a matrix", t->name, t->ndim);
    if (lc_tensor_validate(t) || base_view(w, t))
        return -1;
    if (!lc_tensor_has_lowrank(t))
        return 0;
    if (!fac)
        return lc_error("tensor '%s': a low-rank term needs views for its factors", t->name);
    if (base_view(&fac[0], t->lr_a) || base_view(&fac[1], t->lr_b))
        return lc_error_prefix("tensor '%s': low-rank factor", t->name);
    w->lr_rank = t->lr_rank, w->lr_a = &fac[0], w->lr_b = &fac[1];
    return 0;
}

/* The view of t's base (its encoding without the low-rank term). */
static int base_view(lc_wmat *w, const lc_tensor *t)
{
    memset(w, 0, sizeof *w);
    w->rows = lc_tensor_rows(t);
    w->cols = lc_tensor_cols(t);
    w->data = t->data;
    if (t->enc == LC_ENC_LOWRANK) {
        w->fmt = LC_WF_ZERO;
        return 0;
    }
    if (t->enc == LC_ENC_DENSE) {
        w->fmt = t->dtype == LC_DT_F32 ? LC_WF_F32 : t->dtype == LC_DT_F16 ? LC_WF_F16 : LC_WF_BF16;
        w->row_bytes = (size_t)w->cols * lc_dtype_size(t->dtype);
        return 0;
    }
    if (lc_tensor_is_sparse(t))
        return lc_sparse_wmat(w, t);
    if (t->enc != LC_ENC_QUANT)
        return lc_error("tensor '%s': encoding %d not supported by the inference core", t->name, (int)t->enc);
    w->bits = t->bits, w->group = t->group, w->qform = t->qform;
    w->gpr = (int)(w->cols / t->group);
    w->fmt = t->bits == 8 ? LC_WF_Q8 : t->bits == 4 ? LC_WF_Q4 : LC_WF_QBITS;
    w->row_bytes = (size_t)((w->cols * t->bits + 7) / 8);
    w->scales = t->scales, w->mins = t->mins, w->zeros = t->zeros;
    return 0;
}

static size_t base_bytes(const lc_wmat *w);

size_t lc_wmat_bytes(const lc_wmat *w)
{
    size_t n = base_bytes(w);
    if (w->lr_rank)
        n += base_bytes(w->lr_a) + base_bytes(w->lr_b);
    return n;
}

static size_t base_bytes(const lc_wmat *w)
{
    if (w->fmt == LC_WF_ZERO)
        return 0;
    if (w->fmt >= LC_WF_NM)
        return w->sp_bytes;
    size_t n = w->row_bytes * (size_t)w->rows, g = (size_t)w->rows * (size_t)w->gpr;
    if (w->fmt >= LC_WF_Q8)
        n += g * 2 + (w->qform == LC_QF_MIN ? g * 2 : 0) + (w->qform == LC_QF_ZERO ? g : 0);
    return n;
}

void lc_wmat_rows_f32(const lc_wmat *w, int64_t r0, int64_t r1, float *out)
{
    if (w->lr_rank) {
        lc_lowrank_rows_f32(w, r0, r1, out);
        return;
    }
    int64_t n = w->cols;
    if (w->fmt == LC_WF_ZERO) { /* no base: no data */
        memset(out, 0, (size_t)(r1 - r0) * (size_t)n * sizeof *out);
        return;
    }
    for (int64_t r = r0; r < r1; r++, out += n) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        switch (w->fmt) {
        case LC_WF_F32: memcpy(out, row, (size_t)n * 4); break;
        case LC_WF_F16: {
            const uint16_t *h = (const uint16_t *)row;
            for (int64_t c = 0; c < n; c++)
                out[c] = h2f(h[c]);
            break;
        }
        case LC_WF_BF16: {
            const uint16_t *h = (const uint16_t *)row;
            for (int64_t c = 0; c < n; c++)
                out[c] = bf2f(h[c]);
            break;
        }
        case LC_WF_NM:
        case LC_WF_NM_Q:
        case LC_WF_MASK:
        case LC_WF_MASK_Q: lc_sparse_row_f32(w, r, out); break;
        default:
            for (int g = 0; g < w->gpr; g++) {
                size_t gi = (size_t)r * (size_t)w->gpr + (size_t)g;
                float s = h2f(w->scales[gi]), m = w->qform == LC_QF_MIN ? h2f(w->mins[gi]) : 0.f;
                int z = qzero(w, gi);
                for (int64_t c = (int64_t)g * w->group; c < (int64_t)(g + 1) * w->group; c++) {
                    int u = lc_quant_code(row, w->bits, c);
                    out[c] = w->qform == LC_QF_MIN ? s * (float)u + m : s * (float)(u - z);
                }
            }
            break;
        }
    }
}

/* ---- scalar reference twins ---------------------------------------------- */

void lc_matvec_ref(const lc_wmat *w, const float *x, float *y, int64_t r0, int64_t r1)
{
    if (w->lr_rank) {
        lc_lowrank_matvec(w, x, y, r0, r1, LC_ISA_SCALAR, 1);
        return;
    }
    if (w->fmt == LC_WF_ZERO) {
        for (int64_t r = r0; r < r1; r++)
            y[r] = 0.f;
        return;
    }
    int64_t n = w->cols;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        float sum = 0.f;
        switch (w->fmt) {
        case LC_WF_F32: {
            const float *f = (const float *)row;
            for (int64_t c = 0; c < n; c++)
                sum += f[c] * x[c];
            break;
        }
        case LC_WF_F16: {
            const uint16_t *h = (const uint16_t *)row;
            for (int64_t c = 0; c < n; c++)
                sum += h2f(h[c]) * x[c];
            break;
        }
        case LC_WF_BF16: {
            const uint16_t *h = (const uint16_t *)row;
            for (int64_t c = 0; c < n; c++)
                sum += bf2f(h[c]) * x[c];
            break;
        }
        case LC_WF_NM:
        case LC_WF_NM_Q:
        case LC_WF_MASK:
        case LC_WF_MASK_Q: sum = lc_sparse_dot_ref(w, r, x); break;
        default:
            for (int g = 0; g < w->gpr; g++) {
                size_t gi = (size_t)r * (size_t)w->gpr + (size_t)g;
                float s = h2f(w->scales[gi]);
                int z = qzero(w, gi);
                float gs = 0.f, xs = 0.f;
                for (int64_t c = (int64_t)g * w->group; c < (int64_t)(g + 1) * w->group; c++) {
                    int u = lc_quant_code(row, w->bits, c);
                    if (w->qform == LC_QF_MIN) {
                        gs += (float)u * x[c];
                        xs += x[c];
                    } else {
                        gs += (float)(u - z) * x[c];
                    }
                }
                sum += s * gs;
                if (w->qform == LC_QF_MIN)
                    sum += h2f(w->mins[gi]) * xs;
            }
            break;
        }
        y[r] = sum;
    }
}

/* Can the SIMD quant kernels handle this matrix?  (Q8: whole 16-code steps
 * per group; Q4: whole 32-code blocks per group.) */
static int quant_fast_ok(const lc_wmat *w)
{
    return (w->fmt == LC_WF_Q8 && w->group % 16 == 0) || (w->fmt == LC_WF_Q4 && w->group % 32 == 0);
}

/* ---- AVX-512 ----------------------------------------------------------------
 * Dense: per row two accumulators over 32-column steps, then one 16-column
 * step into the first, a masked tail into the second, reduce(a0 + a1).
 * Up to 4 rows share each load of x.  The per-row arithmetic is identical
 * for R = 1..4, so results do not depend on the row split. */

INL __attribute__((target(T_AVX512))) __m512 ld512(int fmt, const uint8_t *row, int64_t c)
{
    switch (fmt) {
    case LC_WF_F16: return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + c)));
    case LC_WF_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + c))), 16));
    default: return _mm512_loadu_ps((const float *)row + c);
    }
}

INL __attribute__((target(T_AVX512))) __m512 ld512m(int fmt, const uint8_t *row, int64_t c, __mmask16 m)
{
    switch (fmt) {
    case LC_WF_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + c));
    case LC_WF_BF16:
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + c)), 16));
    default: return _mm512_maskz_loadu_ps(m, (const float *)row + c);
    }
}

INL __attribute__((target(T_AVX512))) void dense512(const lc_wmat *w, const float *x, float *y, int64_t r, int R,
                                                   int fmt)
{
    __m512 a0[4], a1[4];
    const uint8_t *p[4];
#pragma GCC unroll 4
    for (int k = 0; k < R; k++) {
        p[k] = w->data + (size_t)(r + k) * w->row_bytes;
        a0[k] = _mm512_setzero_ps(), a1[k] = _mm512_setzero_ps();
    }
    int64_t c = 0, n = w->cols;
    for (; c + 32 <= n; c += 32) {
        __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            a0[k] = _mm512_fmadd_ps(ld512(fmt, p[k], c), x0, a0[k]);
            a1[k] = _mm512_fmadd_ps(ld512(fmt, p[k], c + 16), x1, a1[k]);
        }
    }
    if (c + 16 <= n) {
        __m512 x0 = _mm512_loadu_ps(x + c);
#pragma GCC unroll 4
        for (int k = 0; k < R; k++)
            a0[k] = _mm512_fmadd_ps(ld512(fmt, p[k], c), x0, a0[k]);
        c += 16;
    }
    if (c < n) {
        __mmask16 m = (__mmask16)((1u << (n - c)) - 1);
        __m512 x0 = _mm512_maskz_loadu_ps(m, x + c);
#pragma GCC unroll 4
        for (int k = 0; k < R; k++)
            a1[k] = _mm512_fmadd_ps(ld512m(fmt, p[k], c, m), x0, a1[k]);
    }
#pragma GCC unroll 4
    for (int k = 0; k < R; k++)
        y[r + k] = _mm512_reduce_add_ps(_mm512_add_ps(a0[k], a1[k]));
}

#define DENSE512(NAME, FMT)                                                                              \
    static __attribute__((target(T_AVX512))) void NAME(const lc_wmat *w, const float *x, float *y,      \
                                                       int64_t r0, int64_t r1)                          \
    {                                                                                                    \
        int64_t r = r0;                                                                                  \
        for (; r + 4 <= r1; r += 4)                                                                      \
            dense512(w, x, y, r, 4, FMT);                                                                \
        for (; r < r1; r++)                                                                              \
            dense512(w, x, y, r, 1, FMT);                                                                \
    }
DENSE512(matvec_f32_avx512, LC_WF_F32)
DENSE512(matvec_f16_avx512, LC_WF_F16)
DENSE512(matvec_bf16_avx512, LC_WF_BF16)

/* Quantized, AVX-512: per group, per row, g = sum over the group of
 * (u - z) * x (or u * x and sum x for LC_QF_MIN) in one vector; then
 * acc += s * g (+ m * sum x).  Codes are widened to int32 and converted. */
INL __attribute__((target(T_AVX512))) void quant512(const lc_wmat *w, const float *x, float *y, int64_t r, int R,
                                                   int bits, int qf)
{
    __m512 acc[4];
    const uint8_t *p[4];
#pragma GCC unroll 4
    for (int k = 0; k < R; k++) {
        p[k] = w->data + (size_t)(r + k) * w->row_bytes;
        acc[k] = _mm512_setzero_ps();
    }
    const __m512i m4 = _mm512_set1_epi32(15);
    for (int g = 0; g < w->gpr; g++) {
        int64_t c0 = (int64_t)g * w->group, c1 = c0 + w->group;
        __m512 ga[4], xs = _mm512_setzero_ps();
        __m512i zv[4];
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            ga[k] = _mm512_setzero_ps();
            zv[k] = _mm512_set1_epi32(qzero(w, (size_t)(r + k) * (size_t)w->gpr + (size_t)g));
        }
        if (bits == 8) {
            for (int64_t c = c0; c < c1; c += 16) {
                __m512 xv = _mm512_loadu_ps(x + c);
                if (qf == LC_QF_MIN)
                    xs = _mm512_add_ps(xs, xv);
#pragma GCC unroll 4
                for (int k = 0; k < R; k++) {
                    __m512i u = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p[k] + c)));
                    if (qf != LC_QF_MIN)
                        u = _mm512_sub_epi32(u, zv[k]);
                    ga[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(u), xv, ga[k]);
                }
            }
        } else {
            for (int64_t c = c0; c < c1; c += 32) {
                __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);
                if (qf == LC_QF_MIN)
                    xs = _mm512_add_ps(xs, _mm512_add_ps(x0, x1));
#pragma GCC unroll 4
                for (int k = 0; k < R; k++) {
                    __m512i e = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p[k] + c / 2)));
                    __m512i lo = _mm512_and_si512(e, m4), hi = _mm512_srli_epi32(e, 4);
                    if (qf != LC_QF_MIN)
                        lo = _mm512_sub_epi32(lo, zv[k]), hi = _mm512_sub_epi32(hi, zv[k]);
                    ga[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo), x0, ga[k]);
                    ga[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi), x1, ga[k]);
                }
            }
        }
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            size_t gi = (size_t)(r + k) * (size_t)w->gpr + (size_t)g;
            acc[k] = _mm512_fmadd_ps(_mm512_set1_ps(h2f(w->scales[gi])), ga[k], acc[k]);
            if (qf == LC_QF_MIN)
                acc[k] = _mm512_fmadd_ps(_mm512_set1_ps(h2f(w->mins[gi])), xs, acc[k]);
        }
    }
#pragma GCC unroll 4
    for (int k = 0; k < R; k++)
        y[r + k] = _mm512_reduce_add_ps(acc[k]);
}

#define QUANT_BODY(KERNEL, BITS)                                                                         \
    {                                                                                                    \
        if (!quant_fast_ok(w)) {                                                                         \
            lc_matvec_ref(w, x, y, r0, r1);                                                              \
            return;                                                                                      \
        }                                                                                                \
        int64_t r = r0;                                                                                  \
        if (w->qform == LC_QF_MIN) {                                                                     \
            for (; r + 4 <= r1; r += 4)                                                                  \
                KERNEL(w, x, y, r, 4, BITS, LC_QF_MIN);                                                  \
            for (; r < r1; r++)                                                                          \
                KERNEL(w, x, y, r, 1, BITS, LC_QF_MIN);                                                  \
        } else {                                                                                         \
            for (; r + 4 <= r1; r += 4)                                                                  \
                KERNEL(w, x, y, r, 4, BITS, LC_QF_SYM);                                                  \
            for (; r < r1; r++)                                                                          \
                KERNEL(w, x, y, r, 1, BITS, LC_QF_SYM);                                                  \
        }                                                                                                \
    }

static __attribute__((target(T_AVX512))) void matvec_q8_avx512(const lc_wmat *w, const float *x, float *y,
                                                               int64_t r0, int64_t r1)
QUANT_BODY(quant512, 8)
static __attribute__((target(T_AVX512))) void matvec_q4_avx512(const lc_wmat *w, const float *x, float *y,
                                                               int64_t r0, int64_t r1)
QUANT_BODY(quant512, 4)

/* ---- AVX2 -----------------------------------------------------------------
 * Same structure, 8 lanes: two accumulators over 16-column steps, one 8-column
 * step into the first, a scalar tail added after the vector reduction. */

INL __attribute__((target(T_AVX2))) float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INL __attribute__((target(T_AVX2))) __m256 ld256(int fmt, const uint8_t *row, int64_t c)
{
    switch (fmt) {
    case LC_WF_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + c)));
    case LC_WF_BF16:
        return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + c))), 16));
    default: return _mm256_loadu_ps((const float *)row + c);
    }
}

INL float ld1(int fmt, const uint8_t *row, int64_t c)
{
    switch (fmt) {
    case LC_WF_F16: return h2f(((const uint16_t *)row)[c]);
    case LC_WF_BF16: return bf2f(((const uint16_t *)row)[c]);
    default: return ((const float *)row)[c];
    }
}

INL __attribute__((target(T_AVX2))) void dense256(const lc_wmat *w, const float *x, float *y, int64_t r, int R,
                                                 int fmt)
{
    __m256 a0[4], a1[4];
    const uint8_t *p[4];
#pragma GCC unroll 4
    for (int k = 0; k < R; k++) {
        p[k] = w->data + (size_t)(r + k) * w->row_bytes;
        a0[k] = _mm256_setzero_ps(), a1[k] = _mm256_setzero_ps();
    }
    int64_t c = 0, n = w->cols;
    for (; c + 16 <= n; c += 16) {
        __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            a0[k] = _mm256_fmadd_ps(ld256(fmt, p[k], c), x0, a0[k]);
            a1[k] = _mm256_fmadd_ps(ld256(fmt, p[k], c + 8), x1, a1[k]);
        }
    }
    if (c + 8 <= n) {
        __m256 x0 = _mm256_loadu_ps(x + c);
#pragma GCC unroll 4
        for (int k = 0; k < R; k++)
            a0[k] = _mm256_fmadd_ps(ld256(fmt, p[k], c), x0, a0[k]);
        c += 8;
    }
#pragma GCC unroll 4
    for (int k = 0; k < R; k++) {
        float s = hsum256(_mm256_add_ps(a0[k], a1[k]));
        for (int64_t j = c; j < n; j++)
            s += ld1(fmt, p[k], j) * x[j];
        y[r + k] = s;
    }
}

#define DENSE256(NAME, FMT)                                                                              \
    static __attribute__((target(T_AVX2))) void NAME(const lc_wmat *w, const float *x, float *y, int64_t r0, \
                                                     int64_t r1)                                         \
    {                                                                                                    \
        int64_t r = r0;                                                                                  \
        for (; r + 4 <= r1; r += 4)                                                                      \
            dense256(w, x, y, r, 4, FMT);                                                                \
        for (; r < r1; r++)                                                                              \
            dense256(w, x, y, r, 1, FMT);                                                                \
    }
DENSE256(matvec_f32_avx2, LC_WF_F32)
DENSE256(matvec_f16_avx2, LC_WF_F16)
DENSE256(matvec_bf16_avx2, LC_WF_BF16)

INL __attribute__((target(T_AVX2))) void quant256(const lc_wmat *w, const float *x, float *y, int64_t r, int R,
                                                 int bits, int qf)
{
    __m256 acc[4];
    const uint8_t *p[4];
#pragma GCC unroll 4
    for (int k = 0; k < R; k++) {
        p[k] = w->data + (size_t)(r + k) * w->row_bytes;
        acc[k] = _mm256_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi32(15);
    for (int g = 0; g < w->gpr; g++) {
        int64_t c0 = (int64_t)g * w->group, c1 = c0 + w->group;
        __m256 ga[4], xs = _mm256_setzero_ps();
        __m256i zv[4];
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            ga[k] = _mm256_setzero_ps();
            zv[k] = _mm256_set1_epi32(qzero(w, (size_t)(r + k) * (size_t)w->gpr + (size_t)g));
        }
        if (bits == 8) {
            for (int64_t c = c0; c < c1; c += 16) {
                __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
                if (qf == LC_QF_MIN)
                    xs = _mm256_add_ps(xs, _mm256_add_ps(x0, x1));
#pragma GCC unroll 4
                for (int k = 0; k < R; k++) {
                    __m256i u0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p[k] + c)));
                    __m256i u1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p[k] + c + 8)));
                    if (qf != LC_QF_MIN)
                        u0 = _mm256_sub_epi32(u0, zv[k]), u1 = _mm256_sub_epi32(u1, zv[k]);
                    ga[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(u0), x0, ga[k]);
                    ga[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(u1), x1, ga[k]);
                }
            }
        } else {
            for (int64_t c = c0; c < c1; c += 32) {
                __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
                __m256 x2 = _mm256_loadu_ps(x + c + 16), x3 = _mm256_loadu_ps(x + c + 24);
                if (qf == LC_QF_MIN)
                    xs = _mm256_add_ps(xs, _mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3)));
#pragma GCC unroll 4
                for (int k = 0; k < R; k++) {
                    __m128i b = _mm_loadu_si128((const __m128i *)(p[k] + c / 2));
                    __m256i e0 = _mm256_cvtepu8_epi32(b), e1 = _mm256_cvtepu8_epi32(_mm_srli_si128(b, 8));
                    __m256i l0 = _mm256_and_si256(e0, m4), l1 = _mm256_and_si256(e1, m4);
                    __m256i h0 = _mm256_srli_epi32(e0, 4), h1 = _mm256_srli_epi32(e1, 4);
                    if (qf != LC_QF_MIN) {
                        l0 = _mm256_sub_epi32(l0, zv[k]), l1 = _mm256_sub_epi32(l1, zv[k]);
                        h0 = _mm256_sub_epi32(h0, zv[k]), h1 = _mm256_sub_epi32(h1, zv[k]);
                    }
                    ga[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(l0), x0, ga[k]);
                    ga[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(l1), x1, ga[k]);
                    ga[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(h0), x2, ga[k]);
                    ga[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(h1), x3, ga[k]);
                }
            }
        }
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            size_t gi = (size_t)(r + k) * (size_t)w->gpr + (size_t)g;
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w->scales[gi])), ga[k], acc[k]);
            if (qf == LC_QF_MIN)
                acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w->mins[gi])), xs, acc[k]);
        }
    }
#pragma GCC unroll 4
    for (int k = 0; k < R; k++)
        y[r + k] = hsum256(acc[k]);
}

static __attribute__((target(T_AVX2))) void matvec_q8_avx2(const lc_wmat *w, const float *x, float *y, int64_t r0,
                                                           int64_t r1)
QUANT_BODY(quant256, 8)
static __attribute__((target(T_AVX2))) void matvec_q4_avx2(const lc_wmat *w, const float *x, float *y, int64_t r0,
                                                           int64_t r1)
QUANT_BODY(quant256, 4)

/* ---- dispatch -------------------------------------------------------------- */

/* [format][isa]; NULL = no kernel of its own at that level. */
static const lc_matvec_fn kernels[LC_WF_COUNT][3] = {
    [LC_WF_F32] = {lc_matvec_ref, matvec_f32_avx2, matvec_f32_avx512},
    [LC_WF_F16] = {lc_matvec_ref, matvec_f16_avx2, matvec_f16_avx512},
    [LC_WF_BF16] = {lc_matvec_ref, matvec_bf16_avx2, matvec_bf16_avx512},
    [LC_WF_Q8] = {lc_matvec_ref, matvec_q8_avx2, matvec_q8_avx512},
    [LC_WF_Q4] = {lc_matvec_ref, matvec_q4_avx2, matvec_q4_avx512},
    [LC_WF_QBITS] = {lc_matvec_ref, NULL, NULL},
    [LC_WF_NM] = {lc_matvec_ref, lc_matvec_nm_avx2, lc_matvec_nm_avx512},
    [LC_WF_NM_Q] = {lc_matvec_ref, lc_matvec_nmq_avx2, lc_matvec_nmq_avx512},
    [LC_WF_MASK] = {lc_matvec_ref, lc_matvec_mask_avx2, lc_matvec_mask_avx512},
    [LC_WF_MASK_Q] = {lc_matvec_ref, lc_matvec_maskq_avx2, NULL},
    [LC_WF_ZERO] = {lc_matvec_ref, NULL, NULL},
};

lc_matvec_fn lc_matvec_kernel(lc_wfmt fmt, lc_isa isa)
{
    if (fmt < 0 || fmt >= LC_WF_COUNT || isa < LC_ISA_SCALAR || isa > LC_ISA_AVX512)
        return NULL;
    return kernels[fmt][isa];
}

void lc_matvec(const lc_wmat *w, const float *x, float *y, int64_t r0, int64_t r1, lc_isa isa)
{
    if (w->lr_rank) {
        lc_lowrank_matvec(w, x, y, r0, r1, isa, 0);
        return;
    }
    int i = isa > LC_ISA_AVX512 ? LC_ISA_AVX512 : isa < 0 ? 0 : (int)isa;
    while (i > 0 && !kernels[w->fmt][i])
        i--;
    kernels[w->fmt][i](w, x, y, r0, r1);
}

/* ---- vector helpers -------------------------------------------------------- */

static __attribute__((target(T_AVX512))) float vdot512(const float *a, const float *b, int n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static __attribute__((target(T_AVX2))) float vdot256(const float *a, const float *b, int n)
{
    __m256 s0 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum256(s0);
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

float lc_vdot(const float *a, const float *b, int n, lc_isa isa)
{
    if (isa >= LC_ISA_AVX512)
        return vdot512(a, b, n);
    if (isa == LC_ISA_AVX2)
        return vdot256(a, b, n);
    float s = 0.f;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static __attribute__((target(T_AVX512))) void vaxpy512(float *y, float a, const float *x, int n)
{
    __m512 av = _mm512_set1_ps(a);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m,
                              _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

static __attribute__((target(T_AVX2))) void vaxpy256(float *y, float a, const float *x, int n)
{
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] = __builtin_fmaf(a, x[i], y[i]);
}

void lc_vaxpy(float *y, float a, const float *x, int n, lc_isa isa)
{
    if (isa >= LC_ISA_AVX512)
        vaxpy512(y, a, x, n);
    else if (isa == LC_ISA_AVX2)
        vaxpy256(y, a, x, n);
    else
        for (int i = 0; i < n; i++)
            y[i] += a * x[i];
}

/* ---- prefill ----------------------------------------------------------------- */

void lc_matmul(const lc_wmat *w, const float *X, int n, float *Y, int ldy, float *scratch, size_t scratch_floats)
{
    if (w->lr_rank)
        lc_lowrank_matmul(w, X, n, Y, ldy, scratch, scratch_floats);
    else
        lc_matmul_beta(w, X, n, Y, ldy, 0.0f, scratch, scratch_floats);
}

void lc_matmul_beta(const lc_wmat *w, const float *X, int n, float *Y, int ldy, float beta, float *scratch,
                    size_t scratch_floats)
{
    int rows = (int)w->rows, cols = (int)w->cols;
    if (w->fmt == LC_WF_ZERO) {
        for (int i = 0; i < n; i++)
            for (int r = 0; r < rows; r++)
                Y[(size_t)i * (size_t)ldy + (size_t)r] = beta == 0.0f ? 0.0f : beta * Y[(size_t)i * (size_t)ldy + (size_t)r];
        return;
    }
    if (w->fmt == LC_WF_F32) {
        /* Y [n, rows] = X [n, cols] . W^T (W [rows, cols] row-major) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, rows, cols, 1.0f, X, cols, (const float *)w->data,
                    cols, beta, Y, ldy);
        return;
    }
    /* Other encodings: decode a panel of rows to f32, one sgemm per panel. */
    int64_t panel = (int64_t)(scratch_floats / (size_t)cols);
    if (panel < 1)
        panel = 1;
    for (int64_t r0 = 0; r0 < rows; r0 += panel) {
        int64_t r1 = r0 + panel < rows ? r0 + panel : rows;
        lc_wmat_rows_f32(w, r0, r1, scratch);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (int)(r1 - r0), cols, 1.0f, X, cols, scratch, cols,
                    beta, Y + r0, ldy);
    }
}
