/* Integer-activation matvec for 4- and 8-bit weights (see kernels_q8.h). */
#include "kernels/kernels_q8.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int have_vnni(void) { return lc_cpu()->vnni; }
static int have_vbmi(void) { return lc_cpu()->vbmi; }
static int have_vbmi2(void) { return lc_cpu()->vbmi2; }
static int have_avx2(void) { return lc_cpu()->isa >= LC_ISA_AVX2; }

/* Bitmask sparse with 4-bit codes, groups of whole 32-column blocks. */
static int maskq_layout_ok(const lc_wmat *w)
{
    return w->fmt == LC_WF_MASK_Q && w->bits == 4 && w->group % 32 == 0 && w->cols % 32 == 0;
}

/* 2:4 with 4-bit codes in q4x32 blocks, groups of 32 * 2^k columns, rows
 * of whole 128-column steps: the sparse format the integer kernel handles
 * (other N:M layouts keep the f32-activation kernels of sparse.c). */
static int nmq_layout_ok(const lc_wmat *w)
{
    int bpg = w->group / 32;
    return w->fmt == LC_WF_NM_Q && w->sp_n == 2 && w->sp_m == 4 && w->bits == 4 && w->q4x32 && w->group % 32 == 0 &&
           (bpg & (bpg - 1)) == 0 && w->cols % 128 == 0;
}

/* 2:4 with 4-bit codes in q4x32 blocks, groups of whole 32-column blocks,
 * rows of whole 64-column steps: the AVX2 kernel. */
static int nmq_avx2_ok(const lc_wmat *w)
{
    return w->fmt == LC_WF_NM_Q && w->sp_n == 2 && w->sp_m == 4 && w->bits == 4 && w->q4x32 && w->group % 32 == 0 &&
           w->cols % 64 == 0;
}

int lc_q8x_supported(const lc_wmat *w, lc_isa isa)
{
    int vnni = isa >= LC_ISA_AVX512 && have_vnni(), avx2 = isa >= LC_ISA_AVX2 && have_avx2();
    if (w->cols % 32 || w->group % 32)
        return 0;
    if (w->fmt == LC_WF_Q4 || w->fmt == LC_WF_Q8)
        return vnni || avx2;
    if (avx2 && nmq_avx2_ok(w))
        return 1;
    if (!vnni)
        return 0;
    return (nmq_layout_ok(w) && have_vbmi()) || (maskq_layout_ok(w) && have_vbmi2());
}

void lc_xq_release(lc_xq *xq)
{
    free(xq->q);
    free(xq->d);
    free(xq->s);
    free(xq->ds);
    free(xq->qp);
    free(xq->qn);
    memset(xq, 0, sizeof *xq);
}

/* One block of 32: scale, codes, code sum (scalar; the reference). */
static void xq_block_ref(lc_xq *xq, const float *xb, int b)
{
    float amax = 0;
    for (int k = 0; k < 32; k++)
        amax = fmaxf(amax, fabsf(xb[k]));
    float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
    int32_t sum = 0;
    for (int k = 0; k < 32; k++) {
        int q = (int)lrintf(xb[k] * id);
        xq->q[b * 32 + k] = (int8_t)q;
        sum += q;
    }
    xq->d[b] = d;
    xq->s[b] = sum;
    xq->ds[b] = d * (float)sum;
}

/* The same arithmetic, 32 values in two vectors (cvtps rounds to nearest
 * even as lrintf does in the default rounding mode). */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) static void xq_block_avx512(lc_xq *xq, const float *xb,
                                                                                      int b)
{
    __m512 a = _mm512_loadu_ps(xb), c = _mm512_loadu_ps(xb + 16);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(c)));
    float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
    __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, _mm512_set1_ps(id)));
    __m512i qc = _mm512_cvtps_epi32(_mm512_mul_ps(c, _mm512_set1_ps(id)));
    _mm_storeu_si128((__m128i *)(xq->q + b * 32), _mm512_cvtepi32_epi8(qa));
    _mm_storeu_si128((__m128i *)(xq->q + b * 32 + 16), _mm512_cvtepi32_epi8(qc));
    int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qc));
    xq->d[b] = d;
    xq->s[b] = sum;
    xq->ds[b] = d * (float)sum;
}

/* The same arithmetic in AVX2 (llama.cpp's quantize_row_q8_0 order of
 * packing: the two saturating packs interleave 32-bit groups, which one
 * permutation puts back; |q| <= 127, so nothing saturates). */
__attribute__((target("avx2,fma,f16c"))) static void xq_block_avx2(lc_xq *xq, const float *xb, int b)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8), v2 = _mm256_loadu_ps(xb + 16),
           v3 = _mm256_loadu_ps(xb + 24);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float amax = _mm_cvtss_f32(h);
    float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
    __m256 vid = _mm256_set1_ps(id);
    __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vid)), q1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vid));
    __m256i q2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vid)), q3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vid));
    __m256i sv = _mm256_add_epi32(_mm256_add_epi32(q0, q1), _mm256_add_epi32(q2, q3));
    __m256i pk = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
    pk = _mm256_permutevar8x32_epi32(pk, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)(xq->q + b * 32), pk);
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(sv), _mm256_extracti128_si256(sv, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
    int32_t sum = _mm_cvtsi128_si32(t);
    xq->d[b] = d;
    xq->s[b] = sum;
    xq->ds[b] = d * (float)sum;
}

/* The AVX2 layouts of kernels_q8.h: qp swaps the middle 16-byte quarters
 * of each pair of blocks ([b lo | b+1 lo | b hi | b+1 hi]); a last odd
 * block is copied as it is.  qn puts each block's 4-byte groups in the
 * order 0 2 4 6 1 3 5 7. */
static void xq_layouts(lc_xq *xq)
{
    int nb = xq->n / 32, b = 0;
    for (int k = 0; k < nb; k++)
        for (int gq = 0; gq < 8; gq++)
            memcpy(xq->qn + k * 32 + 4 * (gq / 2 + 4 * (gq % 2)), xq->q + k * 32 + 4 * gq, 4);
    for (; b + 2 <= nb; b += 2) {
        const int8_t *q = xq->q + b * 32;
        int8_t *o = xq->qp + b * 32;
        memcpy(o, q, 16);
        memcpy(o + 16, q + 32, 16);
        memcpy(o + 32, q + 16, 16);
        memcpy(o + 48, q + 48, 16);
    }
    if (b < nb)
        memcpy(xq->qp + b * 32, xq->q + b * 32, 32);
}

int lc_xq_prepare(lc_xq *xq, const float *x, int n)
{
    if (n % 32)
        return lc_error("lc_xq_prepare: %d is not a multiple of 32", n);
    if (n > xq->cap) {
        lc_xq_release(xq);
        xq->q = lc_malloc((size_t)n);
        xq->d = lc_malloc((size_t)(n / 32) * sizeof *xq->d);
        xq->s = lc_malloc((size_t)(n / 32) * sizeof *xq->s);
        xq->ds = lc_malloc((size_t)(n / 32) * sizeof *xq->ds);
        xq->qp = lc_malloc((size_t)n);
        xq->qn = lc_malloc((size_t)n);
        if (!xq->q || !xq->d || !xq->s || !xq->ds || !xq->qp || !xq->qn) {
            lc_xq_release(xq);
            return -1;
        }
        xq->cap = n;
    }
    xq->n = n;
    int fast = have_vnni(), avx2 = have_avx2();
    for (int b = 0; b < n / 32; b++) {
        if (fast)
            xq_block_avx512(xq, x + b * 32, b);
        else if (avx2)
            xq_block_avx2(xq, x + b * 32, b);
        else
            xq_block_ref(xq, x + b * 32, b);
    }
    xq_layouts(xq);
    return 0;
}

/* Scalar quantization of x, for tests of the vector path. */
int lc_xq_prepare_ref(lc_xq *xq, const float *x, int n)
{
    if (lc_xq_prepare(xq, x, n))
        return -1;
    for (int b = 0; b < n / 32; b++)
        xq_block_ref(xq, x + b * 32, b);
    xq_layouts(xq);
    return 0;
}

/* The group parameters of row r, group g: scale, and either the integer
 * offset z (sym/zero) or the f32 min (min form). */
static inline void group_params(const lc_wmat *w, int64_t r, int64_t g, float *s, int *z, float *m)
{
    size_t gi = (size_t)r * (size_t)w->gpr + (size_t)g;
    *s = lc_f16_to_f32(w->scales[gi]);
    *m = 0;
    *z = 0;
    if (w->qform == LC_QF_SYM)
        *z = 1 << (w->bits - 1);
    else if (w->qform == LC_QF_ZERO)
        *z = w->zeros[gi];
    else
        *m = lc_f16_to_f32(w->mins[gi]);
}

/* code k of a 32-code block starting at byte p */
static inline int code_at(const lc_wmat *w, const uint8_t *p, int k)
{
    if (w->fmt == LC_WF_Q8)
        return p[k];
    return k < 16 ? (p[k] & 15) : (p[k - 16] >> 4);
}

/* Sparse 4-bit codes, per 32-column activation block b: the dot product of
 * the block's kept codes with their activations and the sum of those
 * activations S'_b (which replaces S_b in the corrections of kernels_q8.h).
 *   2:4, q4x32 codes: kept value k of a row is code k (block k/32, byte
 *     k%16 of it, low nibble for k%32 < 16) at dense column 4*(k/2) + idx_k,
 *     idx_k the 2-bit field k of the row's index stream; block b holds
 *     values 16b .. 16b+15.
 *   bitmask: row r's kept values are the nibbles row_ptr[r].. of one
 *     LSB-first stream (nibble v = byte v/2, high half for odd v), in column
 *     order; bit c%8 of mask byte c/8 marks column c kept. */
static void sparse_q8x_ref(const lc_wmat *w, const lc_xq *xq, float *y, int64_t r0, int64_t r1)
{
    int nb = (int)(w->cols / 32), bpg = w->group / 32, nm = w->fmt == LC_WF_NM_Q;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *ix = w->idx + (size_t)r * w->idx_row_bytes;
        const uint8_t *row = nm ? w->data + (size_t)r * w->row_bytes : NULL;
        uint64_t v = nm ? 0 : w->row_ptr[r];
        float acc = 0;
        for (int b = 0; b < nb; b++) {
            float s, m;
            int z;
            group_params(w, r, b / bpg, &s, &z, &m);
            int32_t dot = 0, sum = 0;
            if (nm) {
                for (int k = 16 * b; k < 16 * b + 16; k++) {
                    int i = k % 32, u = i < 16 ? row[(k / 32) * 16 + i] & 15 : row[(k / 32) * 16 + i - 16] >> 4;
                    int q = xq->q[4 * (k / 2) + (ix[k / 4] >> (2 * (k % 4)) & 3)];
                    dot += u * q;
                    sum += q;
                }
            } else {
                for (int c = 32 * b; c < 32 * b + 32; c++)
                    if (ix[c / 8] >> (c % 8) & 1) {
                        int u = w->data[v / 2] >> (4 * (v % 2)) & 15, q = xq->q[c];
                        dot += u * q;
                        sum += q;
                        v++;
                    }
            }
            acc += xq->d[b] * (s * (float)(dot - z * sum) + m * (float)sum);
        }
        y[r] = acc;
    }
}

void lc_matvec_q8x_ref(const lc_wmat *w, const lc_xq *xq, float *y, int64_t r0, int64_t r1)
{
    if (w->fmt == LC_WF_NM_Q || w->fmt == LC_WF_MASK_Q) {
        sparse_q8x_ref(w, xq, y, r0, r1);
        return;
    }
    int nb = (int)(w->cols / 32), bpg = w->group / 32, bb = w->fmt == LC_WF_Q8 ? 32 : 16;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        float acc = 0;
        for (int b = 0; b < nb; b++) {
            float s, m;
            int z;
            group_params(w, r, b / bpg, &s, &z, &m);
            const int8_t *q = xq->q + b * 32;
            int32_t dot = 0;
            for (int k = 0; k < 32; k++)
                dot += code_at(w, row + (size_t)b * bb, k) * q[k];
            acc += xq->d[b] * (s * (float)(dot - z * xq->s[b]) + m * (float)xq->s[b]);
        }
        y[r] = acc;
    }
}

/* Two 32-code blocks as 64 unsigned bytes in code order. */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,f16c"))) static inline __m512i load2(const lc_wmat *w, const uint8_t *p)
{
    if (w->fmt == LC_WF_Q8)
        return _mm512_loadu_si512((const void *)p);
    __m256i v = _mm256_loadu_si256((const __m256i *)p); /* [blk0 16 B | blk1 16 B] */
    __m256i lo = _mm256_and_si256(v, _mm256_set1_epi8(15));
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(15));
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); /* [lo0 lo1 hi0 hi1] */
    return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));        /* [lo0 hi0 lo1 hi1] */
}

/* Groups of 32 * bpg codes with bpg in {1, 2, 4, 8, 16}: 16 blocks at a
 * time, the group parameters loaded once per chunk and spread to the blocks
 * by a lane permutation, the per-block scales s_g d_b in one vector, the
 * per-pair broadcast by another permutation. */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,f16c"))) static void
q8x_fast_avx512(const lc_wmat *w, const lc_xq *xq, float *y, int64_t r0, int64_t r1)
{
    int nb = (int)(w->cols / 32), bb = w->fmt == LC_WF_Q8 ? 32 : 16, bpg = w->group / 32, gpr = w->gpr;
    __m512i pidx[8], gidx;
    for (int p = 0; p < 8; p++)
        pidx[p] = _mm512_inserti64x4(_mm512_set1_epi32(2 * p), _mm256_set1_epi32(2 * p + 1), 1);
    int32_t gi[16];
    for (int j = 0; j < 16; j++)
        gi[j] = j / bpg;
    gidx = _mm512_loadu_si512((const void *)gi);
    float zsym = (float)(1 << (w->bits - 1));
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        size_t goff = (size_t)r * (size_t)gpr;
        __m512 acc = _mm512_setzero_ps(), vcorr = _mm512_setzero_ps();
        for (int b0 = 0; b0 < nb; b0 += 16) {
            int nbk = nb - b0 < 16 ? nb - b0 : 16, g0 = b0 / bpg, ng = (nbk + bpg - 1) / bpg;
            __mmask16 k = (__mmask16)((1u << nbk) - 1), kg = (__mmask16)((1u << ng) - 1);
            __m512 sg = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(kg, w->scales + goff + g0)), og;
            if (w->qform == LC_QF_SYM)
                og = _mm512_mul_ps(sg, _mm512_set1_ps(-zsym));
            else if (w->qform == LC_QF_MIN)
                og = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(kg, w->mins + goff + g0));
            else
                og = _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), sg),
                                   _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(kg, w->zeros + goff + g0))));
            __m512 sv = bpg == 1 ? sg : _mm512_permutexvar_ps(gidx, sg);
            __m512 ov = bpg == 1 ? og : _mm512_permutexvar_ps(gidx, og);
            __m512 sbv = _mm512_maskz_mul_ps(k, sv, _mm512_maskz_loadu_ps(k, xq->d + b0));
            vcorr = _mm512_fmadd_ps(_mm512_maskz_mov_ps(k, ov), _mm512_maskz_loadu_ps(k, xq->ds + b0), vcorr);
            int p = 0;
            for (; 2 * p + 2 <= nbk; p++) {
                int b = b0 + 2 * p;
                __m512i u = load2(w, row + (size_t)b * bb);
                __m512i q = _mm512_loadu_si512((const void *)(xq->q + b * 32));
                __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, q);
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(pidx[p], sbv), acc);
            }
            if (2 * p < nbk) { /* an odd last block */
                int b = b0 + 2 * p;
                const int8_t *q = xq->q + b * 32;
                int32_t dot = 0;
                for (int kk = 0; kk < 32; kk++)
                    dot += code_at(w, row + (size_t)b * bb, kk) * q[kk];
                float sbb[16];
                _mm512_storeu_ps(sbb, sbv);
                vcorr = _mm512_add_ps(vcorr, _mm512_maskz_mov_ps(1, _mm512_set1_ps(sbb[2 * p] * (float)dot)));
            }
        }
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc, vcorr));
    }
}

#define Q8X_MAX_BLOCKS 1024 /* cols up to 32768 on the fast path */

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,f16c"))) static void q8x_avx512(const lc_wmat *w,
                                                                                     const lc_xq *xq, float *y,
                                                                                     int64_t r0, int64_t r1)
{
    int nb = (int)(w->cols / 32), bpg = w->group / 32, bb = w->fmt == LC_WF_Q8 ? 32 : 16;
    if (nb > Q8X_MAX_BLOCKS) {
        lc_matvec_q8x_ref(w, xq, y, r0, r1);
        return;
    }
    float sb[Q8X_MAX_BLOCKS + 1], gs[Q8X_MAX_BLOCKS], go[Q8X_MAX_BLOCKS];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        /* per group: scale s and offset o = m - s z (the term multiplying S_b) */
        const uint16_t *sc16 = w->scales + (size_t)r * (size_t)w->gpr;
        int gpr = w->gpr, g = 0;
        for (; g + 16 <= gpr; g += 16)
            _mm512_storeu_ps(gs + g, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sc16 + g))));
        for (; g < gpr; g++)
            gs[g] = lc_f16_to_f32(sc16[g]);
        /* offsets o = m - s z per group (the term multiplying d_b S_b) */
        if (w->qform == LC_QF_SYM) {
            float z = (float)(1 << (w->bits - 1));
            for (g = 0; g < gpr; g++)
                go[g] = -gs[g] * z;
        } else {
            const uint8_t *zr = w->zeros ? w->zeros + (size_t)r * (size_t)gpr : NULL;
            const uint16_t *mr = w->mins ? w->mins + (size_t)r * (size_t)gpr : NULL;
            for (g = 0; g < gpr; g++)
                go[g] = w->qform == LC_QF_MIN ? lc_f16_to_f32(mr[g]) : -gs[g] * (float)zr[g];
        }
        /* per block: sb = s_g d_b; corr = sum_b o_g d_b S_b */
        float corr = 0;
        if (bpg == 1) {
            __m512 vc = _mm512_setzero_ps();
            int k = 0;
            for (; k + 16 <= nb; k += 16) {
                _mm512_storeu_ps(sb + k, _mm512_mul_ps(_mm512_loadu_ps(gs + k), _mm512_loadu_ps(xq->d + k)));
                vc = _mm512_fmadd_ps(_mm512_loadu_ps(go + k), _mm512_loadu_ps(xq->ds + k), vc);
            }
            for (; k < nb; k++) {
                sb[k] = gs[k] * xq->d[k];
                corr += go[k] * xq->ds[k];
            }
            corr += _mm512_reduce_add_ps(vc);
        } else {
            for (g = 0; g < gpr; g++)
                for (int k = g * bpg; k < (g + 1) * bpg; k++) {
                    sb[k] = gs[g] * xq->d[k];
                    corr += go[g] * xq->ds[k];
                }
        }
        sb[nb] = 0;
        __m512 acc = _mm512_setzero_ps();
        int b = 0;
        for (; b + 2 <= nb; b += 2) {
            __m512i u = load2(w, row + (size_t)b * bb);
            __m512i q = _mm512_loadu_si512((const void *)(xq->q + b * 32));
            __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, q); /* lanes 0-7: blk b, 8-15: b+1 */
            __m512 scv = _mm512_insertf32x8(_mm512_set1_ps(sb[b]), _mm256_set1_ps(sb[b + 1]), 1);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scv, acc);
        }
        float tail = 0;
        if (b < nb) { /* an odd last block */
            const int8_t *q = xq->q + b * 32;
            int32_t dot = 0;
            for (int k = 0; k < 32; k++)
                dot += code_at(w, row + (size_t)b * bb, k) * q[k];
            tail = sb[b] * (float)dot;
        }
        y[r] = _mm512_reduce_add_ps(acc) + tail + corr;
    }
}

/* 2:4 sparse, 4-bit: 128 dense columns (4 activation blocks, 64 kept
 * codes, 32 code bytes, 16 index bytes) per step.  The 64 kept activations
 * are gathered from the 128 quantized ones with one two-register byte
 * permute (vpermt2b); its indices 4*(k/2) + idx_k come from the index
 * stream by vpmultishiftqb (byte k takes bits 2k.. of its qword).  Then
 * vpdpbusd gives per lane (4 kept values; lanes 4i..4i+3 = block i) the
 * code dot product and, against a vector of ones, the kept-activation sum
 * S'; both are scaled per lane: acc += dot * s_g d_b + S' * o_g d_b with
 * o = -s z or m.  Up to 4 rows share the activation loads; each row runs
 * the same arithmetic alone or in a block, so y[r] does not depend on the
 * row split.  Groups of 32 * 2^k columns, rows of whole steps
 * (nmq_layout_ok). */
#define T_VBMI "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,f16c"

__attribute__((target(T_VBMI))) static inline void nmq_rows_avx512(const lc_wmat *w, const lc_xq *xq, float *y,
                                                                   int64_t r, int R, const __m512i *lidx)
{
    const int64_t nstep = w->cols / 128;
    const int bpg = w->group / 32, ng = bpg >= 4 ? 1 : 4 / bpg, gpr = w->gpr;
    const __mmask16 kg = (__mmask16)((1u << ng) - 1);
    const __m512i q64 = _mm512_setr_epi64(0, 0, 0, 0, 1, 1, 1, 1);
    /* byte k: shift 2*(k%32); OR base 4*(k/2) after masking to 2 bits */
    const __m512i ctrl = _mm512_set_epi8(62, 60, 58, 56, 54, 52, 50, 48, 46, 44, 42, 40, 38, 36, 34, 32, 30, 28, 26,
                                         24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0, 62, 60, 58, 56, 54, 52, 50, 48,
                                         46, 44, 42, 40, 38, 36, 34, 32, 30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8,
                                         6, 4, 2, 0);
    const __m512i base = _mm512_set_epi8(124, 124, 120, 120, 116, 116, 112, 112, 108, 108, 104, 104, 100, 100, 96, 96,
                                         92, 92, 88, 88, 84, 84, 80, 80, 76, 76, 72, 72, 68, 68, 64, 64, 60, 60, 56, 56,
                                         52, 52, 48, 48, 44, 44, 40, 40, 36, 36, 32, 32, 28, 28, 24, 24, 20, 20, 16, 16,
                                         12, 12, 8, 8, 4, 4, 0, 0);
    const __m512i m3 = _mm512_set1_epi8(3), ones = _mm512_set1_epi8(1), m4 = _mm512_set1_epi8(15);
    const __m512i dlidx = lidx[0], glidx = lidx[1];
    const float zsym = (float)(1 << (w->bits - 1));
    __m512 acc[4];
    const uint8_t *p[4], *ix[4];
#pragma GCC unroll 4
    for (int k = 0; k < R; k++) {
        p[k] = w->data + (size_t)(r + k) * w->row_bytes;
        ix[k] = w->idx + (size_t)(r + k) * w->idx_row_bytes;
        acc[k] = _mm512_setzero_ps();
    }
    for (int64_t j = 0; j < nstep; j++) {
        const __m512i a0 = _mm512_loadu_si512((const void *)(xq->q + 128 * j));
        const __m512i a1 = _mm512_loadu_si512((const void *)(xq->q + 128 * j + 64));
        const __m512 dv = _mm512_permutexvar_ps(dlidx, _mm512_castps128_ps512(_mm_loadu_ps(xq->d + 4 * j)));
        const int64_t g0 = 4 * j / bpg;
#pragma GCC unroll 4
        for (int k = 0; k < R; k++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(p[k] + 32 * j));
            __m256i lo = _mm256_and_si256(v, _mm512_castsi512_si256(m4));
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm512_castsi512_si256(m4));
            __m512i u = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
            u = _mm512_shuffle_i64x2(u, u, _MM_SHUFFLE(3, 1, 2, 0)); /* codes in kept order */
            __m512i iv = _mm512_permutexvar_epi64(q64, _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(ix[k] + 16 * j))));
            __m512i sel = _mm512_ternarylogic_epi32(_mm512_multishift_epi64_epi8(ctrl, iv), m3, base, 0xEA); /* (a & b) | c */
            __m512i xg = _mm512_permutex2var_epi8(a0, sel, a1);
            __m512 dot = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, xg));
            __m512 sum = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, xg));
            size_t goff = (size_t)(r + k) * (size_t)gpr + (size_t)g0;
            __m512 sg = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(kg, w->scales + goff));
            __m512 og;
            if (w->qform == LC_QF_SYM)
                og = _mm512_mul_ps(sg, _mm512_set1_ps(-zsym));
            else if (w->qform == LC_QF_MIN)
                og = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(kg, w->mins + goff));
            else
                og = _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), sg),
                                   _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(kg, w->zeros + goff))));
            __m512 sb = _mm512_mul_ps(_mm512_permutexvar_ps(glidx, sg), dv);
            __m512 ob = _mm512_mul_ps(_mm512_permutexvar_ps(glidx, og), dv);
            acc[k] = _mm512_fmadd_ps(dot, sb, acc[k]);
            acc[k] = _mm512_fmadd_ps(sum, ob, acc[k]);
        }
    }
#pragma GCC unroll 4
    for (int k = 0; k < R; k++)
        y[r + k] = _mm512_reduce_add_ps(acc[k]);
}

__attribute__((target(T_VBMI))) static void nmq_avx512(const lc_wmat *w, const lc_xq *xq, float *y, int64_t r0,
                                                       int64_t r1)
{
    int bpg = w->group / 32;
    int32_t li[2][16];
    for (int l = 0; l < 16; l++) {
        li[0][l] = l / 4;                    /* lane -> activation block of the step */
        li[1][l] = bpg >= 4 ? 0 : l / 4 / bpg; /* lane -> group of the step */
    }
    __m512i lidx[2] = {_mm512_loadu_si512((const void *)li[0]), _mm512_loadu_si512((const void *)li[1])};
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4)
        nmq_rows_avx512(w, xq, y, r, 4, lidx);
    for (; r < r1; r++)
        nmq_rows_avx512(w, xq, y, r, 1, lidx);
}

/* Bitmask sparse, 4-bit codes: per 32-column block, the kept activations
 * are packed to the front by vpcompressb under the block's 32 mask bits;
 * the block's k codes are the next k nibbles of the stream - at most 17
 * bytes, read with a masked load (nothing past them is touched), widened
 * to one byte per nibble and shifted by one nibble for an odd start (one
 * vpermb).  Lanes past k meet zero activations.  Then as for 2:4: dot and
 * kept-activation sum by vpdpbusd, scaled per block in f32 lanes. */
#define T_VBMI2 "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,avx512vbmi2,f16c,fma,popcnt"

__attribute__((target(T_VBMI2))) static void maskq_avx512(const lc_wmat *w, const lc_xq *xq, float *y, int64_t r0,
                                                          int64_t r1)
{
    const int nb = (int)(w->cols / 32), bpg = w->group / 32;
    const __m512i c0f = _mm512_set1_epi16(0x0F0F);
    const __m256i ones = _mm256_set1_epi8(1);
    __m512i shift[2];
    {
        uint8_t id[2][64];
        for (int i = 0; i < 64; i++)
            id[0][i] = (uint8_t)i, id[1][i] = (uint8_t)((i + 1) & 63);
        shift[0] = _mm512_loadu_si512((const void *)id[0]);
        shift[1] = _mm512_loadu_si512((const void *)id[1]);
    }
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *ix = w->idx + (size_t)r * w->idx_row_bytes;
        uint64_t v = w->row_ptr[r];
        size_t goff = (size_t)r * (size_t)w->gpr;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            uint32_t m;
            memcpy(&m, ix + 4 * b, 4);
            int k = __builtin_popcount(m);
            if (!k)
                continue;
            __m256i xc = _mm256_maskz_compress_epi8(m, _mm256_loadu_si256((const __m256i *)(xq->q + 32 * b)));
            int odd = (int)(v & 1), nbytes = (odd + k + 1) >> 1;
            __m256i raw = _mm256_maskz_loadu_epi8((__mmask32)((1ull << nbytes) - 1), w->data + v / 2);
            __m512i wide = _mm512_cvtepu8_epi16(raw);
            __m512i nib = _mm512_ternarylogic_epi32(wide, _mm512_slli_epi16(wide, 4), c0f, 0xA8); /* (a | b) & c */
            __m256i u = _mm512_castsi512_si256(_mm512_permutexvar_epi8(shift[odd], nib));
            __m256i dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, xc);
            __m256i sum = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, xc);
            size_t gi = goff + (size_t)(b / bpg);
            float d = xq->d[b], sc = _cvtsh_ss(w->scales[gi]);
            if (w->qform == LC_QF_MIN) { /* d (s dot + m S') */
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(sc * d), acc);
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(_cvtsh_ss(w->mins[gi]) * d), acc);
            } else { /* d s (dot - z S'), the difference exact in int32 */
                __m256i zs = w->qform == LC_QF_SYM ? _mm256_slli_epi32(sum, w->bits - 1)
                                                   : _mm256_mullo_epi32(sum, _mm256_set1_epi32(w->zeros[gi]));
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(dot, zs)), _mm256_set1_ps(sc * d), acc);
            }
            v += (uint64_t)k;
        }
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        y[r] = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
    }
}

/* AVX2, dense 4- and 8-bit codes (kernels_q8.h).  Per row: the block dot
 * products scaled by s_g d_b in eight f32 lanes, plus the correction
 * sum_g o'_g DS_g with DS_g = sum of d_b S_b over the group's blocks (the
 * same for every row) and o' = o + 128 s for 8-bit codes (their signed
 * form).  Each row's arithmetic is its own: y[r] does not depend on the
 * row split. */
#define T_AVX2 "avx2,fma,f16c"
/* Software prefetch distance in bytes along the codes (one row ahead for
 * 2048 4-bit columns): 1B-shape 4-bit decode at 1 thread, AMD EPYC,
 * 2026-12-03, alternating runs: 0 B 20.0-21.3 tok/s, 1024 B 22.7-22.9. */
#define Q8X_PREFETCH 1024

__attribute__((target(T_AVX2))) static inline float hsum8(__m256 v)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

/* The horizontal sums of v[0..7] in one vector, ((e0 + e1) + (e2 + e3)) +
 * ((e4 + e5) + (e6 + e7)) for each: the same arithmetic in every slot. */
__attribute__((target(T_AVX2))) static inline __m256 hsum8x8(const __m256 *v)
{
    __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
    __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* Row r's group scales s_g into gs, and its correction sum_g o'_g DS_g
 * with o'_g = s_g extra + (m_g, -s_g z_g or -s_g 2^(bits-1)), in one pass
 * (the scales are converted once). */
__attribute__((target(T_AVX2))) static float scales_corr_avx2(const lc_wmat *w, int64_t r, const float *dsg,
                                                              float extra, float *gs)
{
    int gpr = w->gpr, g = 0;
    size_t goff = (size_t)r * (size_t)gpr;
    const uint16_t *sc = w->scales + goff;
    float zs = w->qform == LC_QF_SYM ? (float)(1 << (w->bits - 1)) : 0.0f;
    __m256 acc = _mm256_setzero_ps();
    for (; g + 8 <= gpr; g += 8) {
        __m256 sv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sc + g))), o;
        _mm256_storeu_ps(gs + g, sv);
        if (w->qform == LC_QF_MIN)
            o = _mm256_fmadd_ps(sv, _mm256_set1_ps(extra),
                                _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w->mins + goff + g))));
        else if (w->qform == LC_QF_ZERO)
            o = _mm256_mul_ps(sv, _mm256_sub_ps(_mm256_set1_ps(extra),
                                                _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
                                                    _mm_loadl_epi64((const __m128i *)(w->zeros + goff + g))))));
        else
            o = sv; /* times extra - zs below */
        acc = _mm256_fmadd_ps(o, _mm256_loadu_ps(dsg + g), acc);
    }
    float c = hsum8(acc);
    if (w->qform == LC_QF_SYM)
        c *= extra - zs;
    for (; g < gpr; g++) {
        float sg = _cvtsh_ss(sc[g]), o;
        gs[g] = sg;
        if (w->qform == LC_QF_MIN)
            o = sg * extra + _cvtsh_ss(w->mins[goff + g]);
        else if (w->qform == LC_QF_ZERO)
            o = sg * (extra - (float)w->zeros[goff + g]);
        else
            o = sg * (extra - zs);
        c += o * dsg[g];
    }
    return c;
}

/* gof[b] = the group of block b (no division per block and row). */
static void block_groups(int nb, int bpg, uint16_t *gof)
{
    for (int b = 0; b < nb; b++)
        gof[b] = (uint16_t)(b / bpg);
}

/* sd[b] = s_g(b) d_b for the nb blocks of a row, gs its group scales,
 * gof[b] the group of block b (block_groups). */
__attribute__((target(T_AVX2))) static void block_scales_avx2(const float *gs, const float *d, int nb, int bpg,
                                                              const uint16_t *gof, float *sd)
{
    int b = 0;
    if (bpg == 1)
        for (; b + 8 <= nb; b += 8)
            _mm256_storeu_ps(sd + b, _mm256_mul_ps(_mm256_loadu_ps(gs + b), _mm256_loadu_ps(d + b)));
    for (; b < nb; b++)
        sd[b] = gs[gof[b]] * d[b];
}

/* One row: the block dot products scaled by sd[b] = s_g(b) d_b, in two
 * accumulators (even and odd steps: the adds do not wait on each other).
 * 4-bit: two blocks per step ([b | b+1], 16 code bytes each); 8-bit:
 * w = u - 128 signed, |w| . (sign(w) q).  The rows are read in order, one
 * stream (blocks of rows at once ran slower here: the streams defeat the
 * hardware prefetcher). */
__attribute__((target(T_AVX2))) static float row_dot_avx2(const lc_wmat *w, const lc_xq *xq, const uint8_t *row,
                                                          const float *sd)
{
    const int nb = (int)(w->cols / 32);
    const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(15), x80 = _mm256_set1_epi8((char)0x80);
    const __m256i lanes = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    __m256 acc = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int b = 0;
    if (w->fmt == LC_WF_Q4) {
        for (; b + 2 <= nb; b += 2) {
            if ((b & 3) == 0)
                _mm_prefetch((const char *)row + (size_t)b * 16 + Q8X_PREFETCH, _MM_HINT_T0);
            __m256i v = _mm256_loadu_si256((const __m256i *)(row + (size_t)b * 16));
            __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            __m256i p = _mm256_add_epi16(
                _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(xq->qp + b * 32))),
                _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(xq->qp + b * 32 + 32))));
            __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
            __m256 sv = _mm256_permutevar8x32_ps(
                _mm256_castps128_ps256(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(sd + b)))), lanes);
            if (b & 2)
                acc1 = _mm256_fmadd_ps(dot, sv, acc1);
            else
                acc = _mm256_fmadd_ps(dot, sv, acc);
        }
        if (b < nb) { /* an odd last block */
            __m128i v = _mm_loadu_si128((const __m128i *)(row + (size_t)b * 16));
            __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
            __m256i p = _mm256_maddubs_epi16(u, _mm256_loadu_si256((const __m256i *)(xq->q + b * 32)));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones)), _mm256_set1_ps(sd[b]), acc);
        }
    } else {
        for (; b < nb; b++) {
            if ((b & 1) == 0)
                _mm_prefetch((const char *)row + (size_t)b * 32 + Q8X_PREFETCH, _MM_HINT_T0);
            __m256i wv = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(row + (size_t)b * 32)), x80);
            __m256i q = _mm256_loadu_si256((const __m256i *)(xq->q + b * 32));
            __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(q, wv));
            __m256 d = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
            if (b & 1)
                acc1 = _mm256_fmadd_ps(d, _mm256_set1_ps(sd[b]), acc1);
            else
                acc = _mm256_fmadd_ps(d, _mm256_set1_ps(sd[b]), acc);
        }
    }
    return hsum8(_mm256_add_ps(acc, acc1));
}

__attribute__((target(T_AVX2))) static void q8x_avx2(const lc_wmat *w, const lc_xq *xq, float *y, int64_t r0,
                                                     int64_t r1)
{
    int nb = (int)(w->cols / 32), bpg = w->group / 32, gpr = w->gpr;
    if (nb > Q8X_MAX_BLOCKS) {
        lc_matvec_q8x_ref(w, xq, y, r0, r1);
        return;
    }
    float dsg[Q8X_MAX_BLOCKS], gs[Q8X_MAX_BLOCKS], sd[Q8X_MAX_BLOCKS];
    uint16_t gof[Q8X_MAX_BLOCKS];
    block_groups(nb, bpg, gof);
    for (int g = 0, b = 0; g < gpr; g++) {
        float t = 0;
        for (int k = 0; k < bpg; k++, b++)
            t += xq->ds[b];
        dsg[g] = t;
    }
    for (int64_t r = r0; r < r1; r++) {
        /* sd[b] = s_g(b) d_b, and the row's correction */
        float corr = scales_corr_avx2(w, r, dsg, w->fmt == LC_WF_Q4 ? 0.0f : 128.0f, gs);
        block_scales_avx2(gs, xq->d, nb, bpg, gof, sd);
        y[r] = row_dot_avx2(w, xq, w->data + (size_t)r * w->row_bytes, sd) + corr;
    }
}

/* One 64-column step j of a 2:4 row (nmq_avx2): acc + the step's scaled
 * dot products (and kept-activation sums for the zero-point and min forms). */
__attribute__((target(T_AVX2))) static inline __m256 nmq_step_avx2(const lc_xq *xq, const uint8_t *row,
                                                                   const uint8_t *ix, const float *sd, const float *od,
                                                                   int j, int sym, __m256 acc)
{
    /* byte p of a lane: base 4 (p % 4), and 0x80 (vpshufb writes 0) where
     * the other block supplies it: the first block for p % 8 < 4 */
    const __m256i vca = _mm256_setr_epi8(0, 4, 8, 12, -128, -124, -120, -116, 0, 4, 8, 12, -128, -124, -120, -116, 0,
                                         4, 8, 12, -128, -124, -120, -116, 0, 4, 8, 12, -128, -124, -120, -116);
    const __m256i vcb = _mm256_setr_epi8(-128, -124, -120, -116, 0, 4, 8, 12, -128, -124, -120, -116, 0, 4, 8, 12,
                                         -128, -124, -120, -116, 0, 4, 8, 12, -128, -124, -120, -116, 0, 4, 8, 12);
    /* codes in the gathered order: lane byte p of copy j (j = 2 lane + p / 8)
     * is kept value 4 (p % 8) + j, code byte 4 (p % 4) + j, low nibble for
     * p % 8 < 4 (the even 32-bit lanes), high nibble for the odd ones */
    const __m256i perm = _mm256_setr_epi8(0, 4, 8, 12, 0, 4, 8, 12, 1, 5, 9, 13, 1, 5, 9, 13, 2, 6, 10, 14, 2, 6,
                                          10, 14, 3, 7, 11, 15, 3, 7, 11, 15);
    const __m256i shifts = _mm256_setr_epi64x(0, 2, 4, 6), m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(15);
    const __m256i ones16 = _mm256_set1_epi16(1);
    int64_t iw;
    memcpy(&iw, ix + 8 * j, 8);
    __m256i t = _mm256_and_si256(_mm256_srlv_epi64(_mm256_set1_epi64x(iw), shifts), m3);
    __m256i ga = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(xq->qn + 64 * j)), _mm256_or_si256(t, vca));
    __m256i gb =
        _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(xq->qn + 64 * j + 32)), _mm256_or_si256(t, vcb));
    __m256i gx = _mm256_or_si256(ga, gb);
    __m256i c = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(row + 16 * j))), perm);
    __m256i u = _mm256_and_si256(_mm256_blend_epi32(c, _mm256_srli_epi16(c, 4), 0xAA), m4);
    double pair; /* (sd[2j], sd[2j+1]) as one 64-bit lane (memcpy: no aliasing of float as double) */
    memcpy(&pair, sd + 2 * j, 8);
    __m256 sv = _mm256_castpd_ps(_mm256_set1_pd(pair));
    if (sym) { /* (u - 8) q: both products fit int16 (|pair| <= 3810) */
        __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u, gx), _mm256_maddubs_epi16(_mm256_set1_epi8(8), gx));
        return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones16)), sv, acc);
    }
    __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(u, gx), ones16);
    __m256i sum = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), gx), ones16);
    memcpy(&pair, od + 2 * j, 8);
    __m256 ov = _mm256_castpd_ps(_mm256_set1_pd(pair));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), ov, _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), sv, acc));
}

/* AVX2, 2:4 sparse 4-bit codes (kernels_q8.h): 64 columns per step, the
 * kept activations gathered from qn by two vpshufb under indices from the
 * shifted index word; per row the block scales sd[b] = s_g(b) d_b and, for
 * the zero-point and min forms, od[b] = o_g(b) d_b (o = -s z or m) against
 * the kept-activation sums.  The 32-bit lanes alternate between the step's
 * two blocks, so one 64-bit broadcast of (sd[2j], sd[2j+1]) scales them.
 * Two accumulators (even and odd steps); y[r] does not depend on the row
 * split. */
__attribute__((target(T_AVX2))) static void nmq_avx2(const lc_wmat *w, const lc_xq *xq, float *y, int64_t r0,
                                                     int64_t r1)
{
    const int nb = (int)(w->cols / 32), nstep = nb / 2, bpg = w->group / 32, sym = w->qform == LC_QF_SYM;
    if (nb > Q8X_MAX_BLOCKS) {
        sparse_q8x_ref(w, xq, y, r0, r1);
        return;
    }
    float gs[Q8X_MAX_BLOCKS], sd[Q8X_MAX_BLOCKS], od[Q8X_MAX_BLOCKS];
    uint16_t gof[Q8X_MAX_BLOCKS];
    block_groups(nb, bpg, gof);
    __m256 rs[8];
    int nr = 0;
    for (int64_t r = r0; r < r1; r++) {
        const int gpr = w->gpr;
        const size_t goff = (size_t)r * (size_t)gpr;
        int g = 0;
        for (; g + 8 <= gpr; g += 8)
            _mm256_storeu_ps(gs + g, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w->scales + goff + g))));
        for (; g < gpr; g++)
            gs[g] = _cvtsh_ss(w->scales[goff + g]);
        block_scales_avx2(gs, xq->d, nb, bpg, gof, sd);
        if (!sym)
            for (int b = 0; b < nb; b++) {
                size_t gi = goff + gof[b];
                float o = w->qform == LC_QF_MIN ? _cvtsh_ss(w->mins[gi]) : -gs[gof[b]] * (float)w->zeros[gi];
                od[b] = o * xq->d[b];
            }
        const uint8_t *row = w->data + (size_t)r * w->row_bytes, *ix = w->idx + (size_t)r * w->idx_row_bytes;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        int j = 0;
        for (; j + 2 <= nstep; j += 2) {
            if ((j & 3) == 0)
                _mm_prefetch((const char *)row + (size_t)j * 16 + Q8X_PREFETCH, _MM_HINT_T0);
            if ((j & 7) == 0)
                _mm_prefetch((const char *)ix + (size_t)j * 8 + Q8X_PREFETCH / 2, _MM_HINT_T0);
            acc0 = nmq_step_avx2(xq, row, ix, sd, od, j, sym, acc0);
            acc1 = nmq_step_avx2(xq, row, ix, sd, od, j + 1, sym, acc1);
        }
        if (j < nstep)
            acc0 = nmq_step_avx2(xq, row, ix, sd, od, j, sym, acc0);
        /* rows are short (512 columns: 8 steps), so their sums go eight at a time */
        rs[nr++] = _mm256_add_ps(acc0, acc1);
        if (nr == 8 || r + 1 == r1) {
            for (int k = nr; k < 8; k++)
                rs[k] = _mm256_setzero_ps();
            float o[8];
            _mm256_storeu_ps(o, hsum8x8(rs));
            memcpy(y + r + 1 - nr, o, (size_t)nr * sizeof *o);
            nr = 0;
        }
    }
}

void lc_matvec_q8x(const lc_wmat *w, const lc_xq *xq, float *y, int64_t r0, int64_t r1, lc_isa isa)
{
    int bpg = w->group / 32;
    if (isa > lc_cpu()->isa)
        isa = lc_cpu()->isa;
    if (isa < LC_ISA_AVX512 || !have_vnni()) {
        if (isa >= LC_ISA_AVX2 && (w->fmt == LC_WF_Q4 || w->fmt == LC_WF_Q8))
            q8x_avx2(w, xq, y, r0, r1);
        else if (isa >= LC_ISA_AVX2 && nmq_avx2_ok(w))
            nmq_avx2(w, xq, y, r0, r1);
        else
            lc_matvec_q8x_ref(w, xq, y, r0, r1);
        return;
    }
    if (w->fmt == LC_WF_MASK_Q) {
        if (have_vbmi2() && maskq_layout_ok(w))
            maskq_avx512(w, xq, y, r0, r1);
        else
            sparse_q8x_ref(w, xq, y, r0, r1);
        return;
    }
    if (w->fmt == LC_WF_NM_Q) {
        if (have_vbmi() && nmq_layout_ok(w))
            nmq_avx512(w, xq, y, r0, r1);
        else if (nmq_avx2_ok(w))
            nmq_avx2(w, xq, y, r0, r1);
        else
            sparse_q8x_ref(w, xq, y, r0, r1);
        return;
    }
    if (bpg == 1 || bpg == 2 || bpg == 4 || bpg == 8 || bpg == 16)
        q8x_fast_avx512(w, xq, y, r0, r1);
    else
        q8x_avx512(w, xq, y, r0, r1);
}
