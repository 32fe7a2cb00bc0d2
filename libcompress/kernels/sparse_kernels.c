/*
 * Weight-matrix kernels of the sparse encodings (core/sparse.c describes the
 * layouts): views, row decoder, reference matvec and the AVX2 / AVX-512
 * matvecs that kernels.c dispatches to.
 */
#include "kernels/kernels.h"
#include "core/tensor.h"
#include "core/sparse.h"
#include "core/sparse_bits.h"

#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define T_AVX2 "avx2,fma,f16c,bmi2,popcnt"
#define T_AVX512 "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,bmi2,popcnt"
#define INL static inline __attribute__((always_inline))

/* ---- kernels: views, row decoder, reference matvec --------------------------------- */

int lc_sparse_wmat(lc_wmat *w, const lc_tensor *t)
{
    /* lc_wmat_from_tensor has validated t and set rows, cols, data */
    if (!t->sp_idx || (t->enc == LC_ENC_SPARSE_MASK && !t->sp_row_ptr))
        return lc_error("tensor '%s': sparse arrays not loaded", t->name);
    int q = t->bits != 0;
    w->fmt = t->enc == LC_ENC_SPARSE_NM ? (q ? LC_WF_NM_Q : LC_WF_NM) : (q ? LC_WF_MASK_Q : LC_WF_MASK);
    w->sp_n = t->sp_n, w->sp_m = t->sp_m;
    w->idx = t->sp_idx;
    w->row_ptr = t->sp_row_ptr;
    w->vdtype = t->dtype;
    w->sp_bytes = lc_tensor_stored_bytes(t);
    if (!w->data) { /* nothing kept: a valid address that is never read */
        static const uint8_t no_values[64];
        w->data = no_values;
    }
    if (t->enc == LC_ENC_SPARSE_NM) {
        int64_t K = w->cols / t->sp_m * t->sp_n;
        w->idx_bits = lc_sparse_idx_bits(t->sp_m);
        w->idx_row_bytes = lc_sparse_nm_idx_row_bytes(w->cols, t->sp_n, t->sp_m);
        w->row_bytes = q ? bits_bytes(K, t->bits) : (size_t)K * lc_dtype_size(t->dtype);
        w->q4x32 = nm_q4x32(t->bits, K);
    } else {
        w->idx_row_bytes = lc_sparse_mask_row_bytes(w->cols);
        w->row_bytes = 0; /* values are addressed through row_ptr */
    }
    if (q) {
        w->bits = t->bits, w->group = t->group, w->qform = t->qform;
        w->gpr = (int)(w->cols / t->group);
        w->scales = t->scales, w->mins = t->mins, w->zeros = t->zeros;
    }
    return 0;
}

INL float wq_deq(const lc_wmat *w, size_t gi, int u)
{
    float s = lc_f16_to_f32(w->scales[gi]);
    if (w->qform == LC_QF_MIN)
        return s * (float)u + lc_f16_to_f32(w->mins[gi]);
    int z = w->qform == LC_QF_SYM ? 1 << (w->bits - 1) : w->zeros[gi];
    return s * (float)(u - z);
}

/* Kept values k0.. of type dt -> dst[0..n) (f32). */
static void values_f32(const void *v, lc_dtype dt, uint64_t k0, size_t n, float *dst)
{
    if (dt == LC_DT_F32) {
        memcpy(dst, (const float *)v + k0, n * sizeof *dst);
    } else {
        const uint16_t *h = (const uint16_t *)v + k0;
        if (dt == LC_DT_F16)
            for (size_t i = 0; i < n; i++)
                dst[i] = lc_f16_to_f32(h[i]);
        else
            for (size_t i = 0; i < n; i++)
                dst[i] = lc_bf16_to_f32(h[i]);
    }
}

/* One row decoded to f32 (prefill panels, embedding rows): the values the
 * reference decoder lc_sparse_to_f32 produces. */
void lc_sparse_row_f32(const lc_wmat *w, int64_t r, float *out)
{
    int64_t cols = w->cols;
    memset(out, 0, (size_t)cols * sizeof *out);
    const uint8_t *ir = w->idx + (size_t)r * w->idx_row_bytes;
    float buf[256];
    if (w->fmt == LC_WF_NM || w->fmt == LC_WF_NM_Q) {
        int n = w->sp_n, m = w->sp_m;
        int64_t K = cols / m * n;
        const uint8_t *vr = w->data + (size_t)r * w->row_bytes;
        for (int64_t k0 = 0; k0 < K; k0 += 256) {
            int64_t k1 = k0 + 256 < K ? k0 + 256 : K;
            if (w->fmt == LC_WF_NM)
                values_f32(vr, w->vdtype, (uint64_t)k0, (size_t)(k1 - k0), buf);
            for (int64_t k = k0; k < k1; k++) {
                unsigned p = w->idx_bits == 2 ? (ir[k >> 2] >> ((k & 3) * 2)) & 3 : bits_get(ir, w->idx_bits, (uint64_t)k);
                int64_t c = (k / n) * m + p;
                out[c] = w->fmt == LC_WF_NM_Q ? wq_deq(w, (size_t)(r * w->gpr + c / w->group),
                                                       code_get(vr, w->bits, w->q4x32, (uint64_t)k))
                                              : buf[k - k0];
            }
        }
        return;
    }
    uint64_t v = w->row_ptr[r];
    size_t mrb = w->idx_row_bytes;
    for (size_t b = 0; b < mrb; b++) {
        unsigned bits = ir[b];
        while (bits) {
            int64_t c = (int64_t)b * 8 + __builtin_ctz(bits);
            bits &= bits - 1;
            out[c] = w->fmt == LC_WF_MASK_Q ? wq_deq(w, (size_t)(r * w->gpr + c / w->group), code_get(w->data, w->bits, 0, v))
                                            : elem_f32(w->data, w->vdtype, v);
            v++;
        }
    }
}

/* The reference dot product of row r with x: f32 accumulation in column
 * order; for quantized values per group of dense positions, as
 * lc_matvec_ref: s * sum (u - z) x (LC_QF_MIN: s * sum u x + m * sum x, the
 * sums over the group's kept positions). */
float lc_sparse_dot_ref(const lc_wmat *w, int64_t r, const float *x)
{
    const uint8_t *ir = w->idx + (size_t)r * w->idx_row_bytes;
    int quant = w->fmt == LC_WF_NM_Q || w->fmt == LC_WF_MASK_Q;
    float sum = 0.f, gs = 0.f, xs = 0.f;
    int64_t gcur = 0;
    size_t g0 = (size_t)r * (size_t)w->gpr;
#define FLUSH_GROUP()                                                                   \
    do {                                                                                \
        sum += lc_f16_to_f32(w->scales[g0 + (size_t)gcur]) * gs;                        \
        if (w->qform == LC_QF_MIN)                                                      \
            sum += lc_f16_to_f32(w->mins[g0 + (size_t)gcur]) * xs;                      \
        gs = 0.f, xs = 0.f;                                                             \
    } while (0)
#define ACC_CODE(u, c)                                                                  \
    do {                                                                                \
        int64_t g_ = (c) / w->group;                                                    \
        if (g_ != gcur) {                                                               \
            FLUSH_GROUP();                                                              \
            gcur = g_;                                                                  \
        }                                                                               \
        if (w->qform == LC_QF_MIN) {                                                    \
            gs += (float)(u) * x[c];                                                    \
            xs += x[c];                                                                 \
        } else {                                                                        \
            int z_ = w->qform == LC_QF_SYM ? 1 << (w->bits - 1) : w->zeros[g0 + (size_t)g_]; \
            gs += (float)((u) - z_) * x[c];                                             \
        }                                                                               \
    } while (0)
    if (w->fmt == LC_WF_NM || w->fmt == LC_WF_NM_Q) {
        int n = w->sp_n, m = w->sp_m;
        int64_t K = w->cols / m * n;
        const uint8_t *vr = w->data + (size_t)r * w->row_bytes;
        for (int64_t k = 0; k < K; k++) {
            int64_t c = (k / n) * m + bits_get(ir, w->idx_bits, (uint64_t)k);
            if (quant)
                ACC_CODE(code_get(vr, w->bits, w->q4x32, (uint64_t)k), c);
            else
                sum += elem_f32(vr, w->vdtype, (uint64_t)k) * x[c];
        }
    } else {
        uint64_t v = w->row_ptr[r];
        for (int64_t c = 0; c < w->cols; c++)
            if (ir[c >> 3] >> (c & 7) & 1) {
                if (quant)
                    ACC_CODE(code_get(w->data, w->bits, 0, v), c);
                else
                    sum += elem_f32(w->data, w->vdtype, v) * x[c];
                v++;
            }
    }
    if (quant)
        FLUSH_GROUP();
#undef ACC_CODE
#undef FLUSH_GROUP
    return sum;
}

static void sparse_ref(const lc_wmat *w, const float *x, float *y, int64_t r0, int64_t r1)
{
    for (int64_t r = r0; r < r1; r++)
        y[r] = lc_sparse_dot_ref(w, r, x);
}

/* ---- SIMD kernels --------------------------------------------------------------------
 * 2:4 with f32, f16 or bf16 values.  Row r's values k .. k+15 belong to dense columns
 * 2k .. 2k+31 (8 groups of 4); their 16 two-bit positions are one 32-bit
 * word of the index row.  Lane j takes x[4*(j/2) + pos_j] - a two-register
 * permute (AVX-512 vpermt2ps) of those 32 x values, so the kernel reads
 * 4 + 0.25 bytes per kept weight instead of 8 per two dense ones.
 * Up to 4 rows share each x load; every row runs the same arithmetic
 * whether it is in a block of 4 or alone, so results do not depend on the
 * row split.  A row tail (K % 16 values) is added in scalar code. */

static int nm24_ok(const lc_wmat *w) { return w->sp_n == 2 && w->sp_m == 4; }

/* 16 (AVX-512) or 8 (AVX2) kept values from element j of a row, as f32 */
INL __attribute__((target(T_AVX512))) __m512 ldv512(int dt, const uint8_t *v, int64_t j)
{
    switch (dt) {
    case LC_DT_F16: return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)v + j)));
    case LC_DT_BF16:
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)v + j))), 16));
    default: return _mm512_loadu_ps((const float *)v + j);
    }
}

INL __attribute__((target(T_AVX2))) __m256 ldv256(int dt, const uint8_t *v, int64_t j)
{
    switch (dt) {
    case LC_DT_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)v + j)));
    case LC_DT_BF16:
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)v + j))), 16));
    default: return _mm256_loadu_ps((const float *)v + j);
    }
}

/* positions word -> lane indices into the 32 floats (x0 | x1) */
INL __attribute__((target(T_AVX512))) __m512i nm24_idx512(uint32_t word)
{
    const __m512i sh = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i base = _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 28, 28);
    /* (word >> 2j) & 3 | base_j in one ternary-logic op (A & B | C = 0xea) */
    return _mm512_ternarylogic_epi32(_mm512_srlv_epi32(_mm512_set1_epi32((int)word), sh), _mm512_set1_epi32(3), base,
                                     0xea);
}

INL uint32_t ld_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

INL uint16_t ld_u16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* scalar tail of a 2:4 row from value k0 on */
INL float nm24_tail(const lc_wmat *w, int64_t r, int64_t k0, const float *x)
{
    const uint8_t *ir = w->idx + (size_t)r * w->idx_row_bytes, *v = w->data + (size_t)r * w->row_bytes;
    int64_t K = w->cols / 2;
    float s = 0.f;
    for (int64_t k = k0; k < K; k++)
        s += elem_f32(v, w->vdtype, (uint64_t)k) * x[(k / 2) * 4 + ((ir[k >> 2] >> ((k & 3) * 2)) & 3)];
    return s;
}

INL __attribute__((target(T_AVX512))) void nm24_512(const lc_wmat *w, const float *x, float *y, int64_t r, int R,
                                                   int dt)
{
    __m512 a0[4], a1[4];
    const uint8_t *v[4], *ix[4];
#pragma GCC unroll 4
    for (int k = 0; k < R; k++) {
        v[k] = w->data + (size_t)(r + k) * w->row_bytes;
        ix[k] = w->idx + (size_t)(r + k) * w->idx_row_bytes;
        a0[k] = _mm512_setzero_ps(), a1[k] = _mm512_setzero_ps();
    }
    int64_t K = w->cols / 2, j = 0;
    for (; j + 32 <= K; j += 32) {
        const float *xp = x + 2 * j;
        __m512 x0 = _mm512_loadu_ps(xp), x1 = _mm512_loadu_ps(xp + 16);
        __m512 x2 = _mm512_loadu_ps(xp + 32), x3 = _mm512_loadu_ps(xp + 48);
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            __m512 g0 = _mm512_permutex2var_ps(x0, nm24_idx512(ld_u32(ix[k] + j / 4)), x1);
            __m512 g1 = _mm512_permutex2var_ps(x2, nm24_idx512(ld_u32(ix[k] + j / 4 + 4)), x3);
            a0[k] = _mm512_fmadd_ps(ldv512(dt, v[k], j), g0, a0[k]);
            a1[k] = _mm512_fmadd_ps(ldv512(dt, v[k], j + 16), g1, a1[k]);
        }
    }
    if (j + 16 <= K) {
        __m512 x0 = _mm512_loadu_ps(x + 2 * j), x1 = _mm512_loadu_ps(x + 2 * j + 16);
#pragma GCC unroll 4
        for (int k = 0; k < R; k++)
            a0[k] = _mm512_fmadd_ps(ldv512(dt, v[k], j),
                                    _mm512_permutex2var_ps(x0, nm24_idx512(ld_u32(ix[k] + j / 4)), x1), a0[k]);
        j += 16;
    }
#pragma GCC unroll 4
    for (int k = 0; k < R; k++)
        y[r + k] = _mm512_reduce_add_ps(_mm512_add_ps(a0[k], a1[k])) + nm24_tail(w, r + k, j, x);
}

__attribute__((target(T_AVX512))) void lc_matvec_nm_avx512(const lc_wmat *w, const float *x, float *y, int64_t r0,
                                                            int64_t r1)
{
    if (!nm24_ok(w)) {
        sparse_ref(w, x, y, r0, r1);
        return;
    }
    int64_t r = r0;
#define NM24_ROWS(KERNEL, DT)                                                                            \
    do {                                                                                                 \
        for (; r + 4 <= r1; r += 4)                                                                      \
            KERNEL(w, x, y, r, 4, DT);                                                                   \
        for (; r < r1; r++)                                                                              \
            KERNEL(w, x, y, r, 1, DT);                                                                   \
    } while (0)
    if (w->vdtype == LC_DT_F32)
        NM24_ROWS(nm24_512, LC_DT_F32);
    else if (w->vdtype == LC_DT_F16)
        NM24_ROWS(nm24_512, LC_DT_F16);
    else
        NM24_ROWS(nm24_512, LC_DT_BF16);
}

INL __attribute__((target(T_AVX2))) float hsum256s(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 8 positions (16 bits) -> lane indices into x0 | x1 (8 + 8 floats); lanes
 * 4..7 index 8..15, whose low 3 bits select inside x1 */
INL __attribute__((target(T_AVX2))) __m256 nm24_gather256(uint32_t word16, __m256 x0, __m256 x1)
{
    const __m256i sh = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    const __m256i base = _mm256_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12);
    __m256i p = _mm256_add_epi32(
        _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)word16), sh), _mm256_set1_epi32(3)), base);
    return _mm256_blend_ps(_mm256_permutevar8x32_ps(x0, p), _mm256_permutevar8x32_ps(x1, p), 0xf0);
}

INL __attribute__((target(T_AVX2))) void nm24_256(const lc_wmat *w, const float *x, float *y, int64_t r, int R,
                                                 int dt)
{
    __m256 a0[4], a1[4];
    const uint8_t *v[4], *ix[4];
#pragma GCC unroll 4
    for (int k = 0; k < R; k++) {
        v[k] = w->data + (size_t)(r + k) * w->row_bytes;
        ix[k] = w->idx + (size_t)(r + k) * w->idx_row_bytes;
        a0[k] = _mm256_setzero_ps(), a1[k] = _mm256_setzero_ps();
    }
    int64_t K = w->cols / 2, j = 0;
    for (; j + 16 <= K; j += 16) {
        const float *xp = x + 2 * j;
        __m256 x0 = _mm256_loadu_ps(xp), x1 = _mm256_loadu_ps(xp + 8);
        __m256 x2 = _mm256_loadu_ps(xp + 16), x3 = _mm256_loadu_ps(xp + 24);
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            uint32_t wd = ld_u32(ix[k] + j / 4);
            a0[k] = _mm256_fmadd_ps(ldv256(dt, v[k], j), nm24_gather256(wd & 0xffff, x0, x1), a0[k]);
            a1[k] = _mm256_fmadd_ps(ldv256(dt, v[k], j + 8), nm24_gather256(wd >> 16, x2, x3), a1[k]);
        }
    }
    if (j + 8 <= K) {
        __m256 x0 = _mm256_loadu_ps(x + 2 * j), x1 = _mm256_loadu_ps(x + 2 * j + 8);
#pragma GCC unroll 4
        for (int k = 0; k < R; k++)
            a0[k] = _mm256_fmadd_ps(ldv256(dt, v[k], j), nm24_gather256(ld_u16(ix[k] + j / 4), x0, x1), a0[k]);
        j += 8;
    }
#pragma GCC unroll 4
    for (int k = 0; k < R; k++)
        y[r + k] = hsum256s(_mm256_add_ps(a0[k], a1[k])) + nm24_tail(w, r + k, j, x);
}

__attribute__((target(T_AVX2))) void lc_matvec_nm_avx2(const lc_wmat *w, const float *x, float *y, int64_t r0,
                                                        int64_t r1)
{
    if (!nm24_ok(w)) {
        sparse_ref(w, x, y, r0, r1);
        return;
    }
    int64_t r = r0;
    if (w->vdtype == LC_DT_F32)
        NM24_ROWS(nm24_256, LC_DT_F32);
    else if (w->vdtype == LC_DT_F16)
        NM24_ROWS(nm24_256, LC_DT_F16);
    else
        NM24_ROWS(nm24_256, LC_DT_BF16);
}

/* 2:4 with 4-bit codes in q4x32 blocks (32 kept codes in 16 bytes: byte i
 * holds code i low, code i + 16 high), forms sym and zero.  Values
 * j0 .. j0+15 (one nibble half of a block) span dense columns
 * 2*j0 .. 2*j0+31.  Needs kept values per group (group/2) a multiple of 16
 * (AVX-512) or 8 (AVX2): each chunk then lies in one group, and the group
 * sum is scaled once, as lc_sparse_dot_ref does. */
static int nm24_q4_ok(const lc_wmat *w, int chunk)
{
    return w->sp_n == 2 && w->sp_m == 4 && w->bits == 4 && w->q4x32 && w->qform != LC_QF_MIN &&
           (w->group / 2) % chunk == 0;
}

INL int wq_zero(const lc_wmat *w, size_t gi)
{
    return w->qform == LC_QF_SYM ? 1 << (w->bits - 1) : w->zeros[gi];
}

/* AVX-512: one q4x32 block (32 kept codes, 64 dense columns) per step,
 * widened once; codes become float (u - z) through a 16-entry table in a
 * register (vpermps) instead of subtract + convert. */
INL __attribute__((target(T_AVX512))) void nm24q4_512(const lc_wmat *w, const float *x, float *y, int64_t r, int R)
{
    __m512 acc[4], ga[4], lut[4];
    const uint8_t *p[4], *ix[4];
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i m4 = _mm512_set1_epi32(15);
#pragma GCC unroll 4
    for (int k = 0; k < R; k++) {
        p[k] = w->data + (size_t)(r + k) * w->row_bytes;
        ix[k] = w->idx + (size_t)(r + k) * w->idx_row_bytes;
        acc[k] = _mm512_setzero_ps(), ga[k] = _mm512_setzero_ps();
        lut[k] = _mm512_sub_ps(iota, _mm512_set1_ps((float)wq_zero(w, (size_t)(r + k) * (size_t)w->gpr)));
    }
    const int64_t kg = w->group / 2, K = w->cols / 2;
    for (int64_t j0 = 0; j0 < K; j0 += 32) {
        const float *xp = x + 2 * j0;
        __m512 x0 = _mm512_loadu_ps(xp), x1 = _mm512_loadu_ps(xp + 16);
        __m512 x2 = _mm512_loadu_ps(xp + 32), x3 = _mm512_loadu_ps(xp + 48);
        __m512i e[4];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const int64_t jc = j0 + 16 * h;
#pragma GCC unroll 4
            for (int k = 0; k < R; k++) {
                __m512i u;
                if (h == 0) {
                    e[k] = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p[k] + j0 / 2)));
                    u = _mm512_and_si512(e[k], m4);
                } else {
                    u = _mm512_srli_epi32(e[k], 4);
                }
                __m512 xg = _mm512_permutex2var_ps(h ? x2 : x0, nm24_idx512(ld_u32(ix[k] + jc / 4)), h ? x3 : x1);
                ga[k] = _mm512_fmadd_ps(_mm512_permutexvar_ps(u, lut[k]), xg, ga[k]);
            }
            if ((jc + 16) % kg == 0) { /* group end: acc += s * sum, next group's table */
                size_t g = (size_t)(jc / kg);
#pragma GCC unroll 4
                for (int k = 0; k < R; k++) {
                    size_t gi = (size_t)(r + k) * (size_t)w->gpr + g;
                    acc[k] = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(w->scales[gi])), ga[k], acc[k]);
                    ga[k] = _mm512_setzero_ps();
                    if (w->qform == LC_QF_ZERO && (int)g + 1 < w->gpr)
                        lut[k] = _mm512_sub_ps(iota, _mm512_set1_ps((float)w->zeros[gi + 1]));
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int k = 0; k < R; k++)
        y[r + k] = _mm512_reduce_add_ps(acc[k]);
}

__attribute__((target(T_AVX512))) void lc_matvec_nmq_avx512(const lc_wmat *w, const float *x, float *y, int64_t r0,
                                                             int64_t r1)
{
    if (!nm24_q4_ok(w, 16)) {
        sparse_ref(w, x, y, r0, r1);
        return;
    }
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4)
        nm24q4_512(w, x, y, r, 4);
    for (; r < r1; r++)
        nm24q4_512(w, x, y, r, 1);
}

INL __attribute__((target(T_AVX2))) void nm24q4_256(const lc_wmat *w, const float *x, float *y, int64_t r, int R)
{
    __m256 acc[4];
    const uint8_t *p[4], *ix[4];
#pragma GCC unroll 4
    for (int k = 0; k < R; k++) {
        p[k] = w->data + (size_t)(r + k) * w->row_bytes;
        ix[k] = w->idx + (size_t)(r + k) * w->idx_row_bytes;
        acc[k] = _mm256_setzero_ps();
    }
    const int64_t kg = w->group / 2;
    const __m256i m4 = _mm256_set1_epi32(15);
    for (int g = 0; g < w->gpr; g++) {
        __m256 ga[4];
        __m256i zv[4];
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            ga[k] = _mm256_setzero_ps();
            zv[k] = _mm256_set1_epi32(wq_zero(w, (size_t)(r + k) * (size_t)w->gpr + (size_t)g));
        }
        for (int64_t j0 = g * kg; j0 < (g + 1) * kg; j0 += 8) {
            __m256 x0 = _mm256_loadu_ps(x + 2 * j0), x1 = _mm256_loadu_ps(x + 2 * j0 + 8);
            const int in = (int)(j0 % 32), hi = in >= 16;
            const size_t boff = (size_t)(j0 / 32) * 16 + (size_t)(in % 16);
#pragma GCC unroll 4
            for (int k = 0; k < R; k++) {
                __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p[k] + boff)));
                e = hi ? _mm256_srli_epi32(e, 4) : _mm256_and_si256(e, m4);
                __m256 c = _mm256_cvtepi32_ps(_mm256_sub_epi32(e, zv[k]));
                ga[k] = _mm256_fmadd_ps(c, nm24_gather256(ld_u16(ix[k] + j0 / 4), x0, x1), ga[k]);
            }
        }
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            size_t gi = (size_t)(r + k) * (size_t)w->gpr + (size_t)g;
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w->scales[gi])), ga[k], acc[k]);
        }
    }
#pragma GCC unroll 4
    for (int k = 0; k < R; k++)
        y[r + k] = hsum256s(acc[k]);
}

__attribute__((target(T_AVX2))) void lc_matvec_nmq_avx2(const lc_wmat *w, const float *x, float *y, int64_t r0,
                                                         int64_t r1)
{
    if (!nm24_q4_ok(w, 8)) {
        sparse_ref(w, x, y, r0, r1);
        return;
    }
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4)
        nm24q4_256(w, x, y, r, 4);
    for (; r < r1; r++)
        nm24q4_256(w, x, y, r, 1);
}

/* Bitmask, f32 values.  Per 16 columns (AVX-512): the 16 mask bits expand
 * the next popcount values into their lanes (vexpandps), zeros elsewhere;
 * AVX2: per 8 columns a table permutes the next popcount values (a masked
 * load, so nothing past the array is touched) into place, pruned lanes
 * taking lane 7, which the masked load left zero whenever any lane is
 * pruned.  Columns past the last multiple of 16 (8) run in scalar code. */

static int mask_f32_ok(const lc_wmat *w) { return w->vdtype == LC_DT_F32; }

INL float mask_tail(const lc_wmat *w, int64_t r, int64_t c0, const float *v, const float *x)
{
    const uint8_t *mr = w->idx + (size_t)r * w->idx_row_bytes;
    float s = 0.f;
    for (int64_t c = c0; c < w->cols; c++)
        if (mr[c >> 3] >> (c & 7) & 1)
            s += *v++ * x[c];
    return s;
}

INL __attribute__((target(T_AVX512))) void mask512(const lc_wmat *w, const float *x, float *y, int64_t r, int R)
{
    __m512 a0[4], a1[4];
    const float *v[4];
    const uint8_t *mr[4];
#pragma GCC unroll 4
    for (int k = 0; k < R; k++) {
        v[k] = (const float *)w->data + w->row_ptr[r + k];
        mr[k] = w->idx + (size_t)(r + k) * w->idx_row_bytes;
        a0[k] = _mm512_setzero_ps(), a1[k] = _mm512_setzero_ps();
    }
    int64_t c = 0, n = w->cols;
    for (; c + 32 <= n; c += 32) {
        __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            uint32_t mb = ld_u32(mr[k] + c / 8);
            __mmask16 m0 = (__mmask16)(mb & 0xffff), m1 = (__mmask16)(mb >> 16);
            a0[k] = _mm512_fmadd_ps(_mm512_maskz_expandloadu_ps(m0, v[k]), x0, a0[k]);
            v[k] += __builtin_popcount(m0);
            a1[k] = _mm512_fmadd_ps(_mm512_maskz_expandloadu_ps(m1, v[k]), x1, a1[k]);
            v[k] += __builtin_popcount(m1);
        }
    }
    if (c + 16 <= n) {
        __m512 x0 = _mm512_loadu_ps(x + c);
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            __mmask16 m0 = (__mmask16)ld_u16(mr[k] + c / 8);
            a0[k] = _mm512_fmadd_ps(_mm512_maskz_expandloadu_ps(m0, v[k]), x0, a0[k]);
            v[k] += __builtin_popcount(m0);
        }
        c += 16;
    }
#pragma GCC unroll 4
    for (int k = 0; k < R; k++)
        y[r + k] = _mm512_reduce_add_ps(_mm512_add_ps(a0[k], a1[k])) + mask_tail(w, r + k, c, v[k], x);
}

__attribute__((target(T_AVX512))) void lc_matvec_mask_avx512(const lc_wmat *w, const float *x, float *y, int64_t r0,
                                                              int64_t r1)
{
    if (!mask_f32_ok(w)) {
        sparse_ref(w, x, y, r0, r1);
        return;
    }
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4)
        mask512(w, x, y, r, 4);
    for (; r < r1; r++)
        mask512(w, x, y, r, 1);
}

/* expand[m][lane]: rank of lane among the set bits of m, or 7 when unset */
static int32_t mask_expand[256][8];
static void mask_expand_init(void)
{
    for (int m = 0; m < 256; m++)
        for (int l = 0, k = 0; l < 8; l++)
            mask_expand[m][l] = m >> l & 1 ? k++ : 7;
}

INL __attribute__((target(T_AVX2))) __m256 mask_vals256(const float *v, unsigned mb, int cnt)
{
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 raw = _mm256_maskload_ps(v, _mm256_cmpgt_epi32(_mm256_set1_epi32(cnt), iota));
    return _mm256_permutevar8x32_ps(raw, _mm256_loadu_si256((const __m256i *)mask_expand[mb]));
}

INL __attribute__((target(T_AVX2))) void mask256(const lc_wmat *w, const float *x, float *y, int64_t r, int R)
{
    __m256 a0[4], a1[4];
    const float *v[4];
    const uint8_t *mr[4];
#pragma GCC unroll 4
    for (int k = 0; k < R; k++) {
        v[k] = (const float *)w->data + w->row_ptr[r + k];
        mr[k] = w->idx + (size_t)(r + k) * w->idx_row_bytes;
        a0[k] = _mm256_setzero_ps(), a1[k] = _mm256_setzero_ps();
    }
    int64_t c = 0, n = w->cols;
    for (; c + 16 <= n; c += 16) {
        __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            unsigned b0 = mr[k][c / 8], b1 = mr[k][c / 8 + 1];
            int n0 = __builtin_popcount(b0), n1 = __builtin_popcount(b1);
            a0[k] = _mm256_fmadd_ps(mask_vals256(v[k], b0, n0), x0, a0[k]);
            a1[k] = _mm256_fmadd_ps(mask_vals256(v[k] + n0, b1, n1), x1, a1[k]);
            v[k] += n0 + n1;
        }
    }
    if (c + 8 <= n) {
        __m256 x0 = _mm256_loadu_ps(x + c);
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            unsigned b0 = mr[k][c / 8];
            int n0 = __builtin_popcount(b0);
            a0[k] = _mm256_fmadd_ps(mask_vals256(v[k], b0, n0), x0, a0[k]);
            v[k] += n0;
        }
        c += 8;
    }
#pragma GCC unroll 4
    for (int k = 0; k < R; k++)
        y[r + k] = hsum256s(_mm256_add_ps(a0[k], a1[k])) + mask_tail(w, r + k, c, v[k], x);
}

__attribute__((target(T_AVX2))) void lc_matvec_mask_avx2(const lc_wmat *w, const float *x, float *y, int64_t r0,
                                                          int64_t r1)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, mask_expand_init);
    if (!mask_f32_ok(w)) {
        sparse_ref(w, x, y, r0, r1);
        return;
    }
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4)
        mask256(w, x, y, r, 4);
    for (; r < r1; r++)
        mask256(w, x, y, r, 1);
}

/* Bitmask with 4-bit codes (AVX2, f32 activations - the path for CPUs
 * without the integer kernels of kernels_q8.c).  Per 8 columns: the next
 * popcount nibbles of the row's code stream (one unaligned 64-bit read,
 * shifted by a nibble for an odd start) are spread into 8 lanes by
 * variable shifts, moved to their columns by the mask_expand permutation,
 * and pruned lanes are cleared; the lane sums (u - z) x (MIN: u x and x)
 * are scaled once per group, as lc_sparse_dot_ref does.  Needs groups and
 * rows of whole 8-column steps. */
static int maskq4_ok(const lc_wmat *w) { return w->bits == 4 && w->group % 8 == 0 && w->cols % 8 == 0; }

/* 8 nibbles of the stream from nibble v (bytes past the array read as 0) */
INL uint32_t nib8(const uint8_t *d, uint64_t v, size_t nbytes)
{
    size_t o = (size_t)(v >> 1);
    uint64_t q = 0;
    if (o + 8 <= nbytes)
        memcpy(&q, d + o, 8);
    else if (o < nbytes)
        memcpy(&q, d + o, nbytes - o);
    return (uint32_t)(q >> (4 * (v & 1)));
}

__attribute__((target(T_AVX2))) void lc_matvec_maskq_avx2(const lc_wmat *w, const float *x, float *y, int64_t r0,
                                                           int64_t r1)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, mask_expand_init);
    if (!maskq4_ok(w)) {
        sparse_ref(w, x, y, r0, r1);
        return;
    }
    const size_t nbytes = (size_t)((w->row_ptr[w->rows] * 4 + 7) / 8);
    const __m256i sh = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28), m15 = _mm256_set1_epi32(15);
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const int min = w->qform == LC_QF_MIN;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *mr = w->idx + (size_t)r * w->idx_row_bytes;
        uint64_t v = w->row_ptr[r];
        size_t g0 = (size_t)r * (size_t)w->gpr;
        __m256 acc = _mm256_setzero_ps();
        for (int g = 0; g < w->gpr; g++) {
            __m256 ga = _mm256_setzero_ps(), xa = _mm256_setzero_ps();
            __m256 zf = _mm256_set1_ps(min ? 0.f : (float)wq_zero(w, g0 + (size_t)g));
            for (int64_t c = (int64_t)g * w->group; c < (int64_t)(g + 1) * w->group; c += 8) {
                unsigned mb = mr[c / 8];
                if (!mb)
                    continue;
                __m256i u = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)nib8(w->data, v, nbytes)), sh), m15);
                u = _mm256_permutevar8x32_epi32(u, _mm256_loadu_si256((const __m256i *)mask_expand[mb]));
                __m256 sel = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)mb), bit), bit));
                __m256 xv = _mm256_and_ps(_mm256_loadu_ps(x + c), sel);
                ga = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(u), zf), xv, ga);
                if (min)
                    xa = _mm256_add_ps(xa, xv);
                v += (uint64_t)__builtin_popcount(mb);
            }
            acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w->scales[g0 + (size_t)g])), ga, acc);
            if (min)
                acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w->mins[g0 + (size_t)g])), xa, acc);
        }
        y[r] = hsum256s(acc);
    }
}
