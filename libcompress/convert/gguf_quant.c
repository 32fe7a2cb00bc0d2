/*
 * ggml block quantizers for the GGUF exporter: Q4_0, Q4_1, Q8_0, Q4_K, Q6_K,
 * plus the plain F32/F16/BF16 encodings.
 *
 * Each kernel is a port of llama.cpp's reference ("_ref") quantizer in
 * ggml/src/ggml-quants.c, the one llama-quantize uses when no importance
 * matrix is given, so a re-quantized tensor equals what llama-quantize
 * would write from the same f32 values (up to floating-point contraction:
 * ggml may be built with FMA, this file is not).  The block layouts are
 * lc_block_* in gguf.h.  Blocks are written through byte pointers and
 * memcpy (no alignment assumed).
 */
#include "convert/export.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "io/gguf.h"

/* ggml-quants.c GROUP_MAX_EPS: a group whose max |x| is below this is all zero. */
#define GROUP_MAX_EPS 1e-15f

static void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static float rd16f(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return lc_f16_to_f32(v); }

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* ggml-quants.c nearest_int: round to nearest (ties to even) via the
 * 1.5*2^23 trick; valid for |f| <= 4194303. */
static int nearest_int(float f)
{
    float v = f + 12582912.f;
    int i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* quantize_row_q4_0_ref: d = max / -8 where max is the signed value of
 * largest magnitude; q = min(15, trunc(x/d + 8.5)). */
static void quant_q4_0(const float *x, uint8_t *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32, y += sizeof(lc_block_q4_0)) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        wr16(y + offsetof(lc_block_q4_0, d), lc_f32_to_f16(d));
        uint8_t *qs = y + offsetof(lc_block_q4_0, qs);
        for (int j = 0; j < 16; j++) {
            const float x0 = x[j] * id, x1 = x[16 + j] * id;
            const uint8_t q0 = (uint8_t)imin(15, (int8_t)(x0 + 8.5f));
            const uint8_t q1 = (uint8_t)imin(15, (int8_t)(x1 + 8.5f));
            qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

/* quantize_row_q4_1_ref: d = (max - min) / 15, m = min,
 * q = min(15, trunc((x - min)/d + 0.5)). */
static void quant_q4_1(const float *x, uint8_t *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32, y += sizeof(lc_block_q4_1)) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            if (x[j] < min)
                min = x[j];
            if (x[j] > max)
                max = x[j];
        }
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        wr16(y + offsetof(lc_block_q4_1, d), lc_f32_to_f16(d));
        wr16(y + offsetof(lc_block_q4_1, m), lc_f32_to_f16(min));
        uint8_t *qs = y + offsetof(lc_block_q4_1, qs);
        for (int j = 0; j < 16; j++) {
            const float x0 = (x[j] - min) * id, x1 = (x[16 + j] - min) * id;
            const uint8_t q0 = (uint8_t)imin(15, (int8_t)(x0 + 0.5f));
            const uint8_t q1 = (uint8_t)imin(15, (int8_t)(x1 + 0.5f));
            qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

/* quantize_row_q8_0_ref: d = amax / 127, q = roundf(x/d). */
static void quant_q8_0(const float *x, uint8_t *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32, y += sizeof(lc_block_q8_0)) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        wr16(y + offsetof(lc_block_q8_0, d), lc_f32_to_f16(d));
        int8_t *qs = (int8_t *)(y + offsetof(lc_block_q8_0, qs));
        for (int j = 0; j < 32; j++)
            qs[j] = (int8_t)roundf(x[j] * id);
    }
}

/* make_qkx2_quants (ggml-quants.c): weighted asymmetric n-level fit of one
 * group, x ~ scale * L - the_min, searching nstep+1 candidate scales around
 * nmax/(max - min) and refining scale/min by weighted least squares.
 * Returns the scale; *the_min is the (non-negative) offset. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep, int use_mad)
{
    float min = x[0], max = x[0];
    float sum_w = weights[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++)
            L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_mad = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_mad += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = imax(0, imin(nmax, l));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float mad = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                mad += weights[i] * diff;
            }
            if (mad < best_mad) {
                for (int i = 0; i < n; i++)
                    L[i] = Laux[i];
                best_mad = mad;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* get_scale_min_k4 (ggml-quants.c): 6-bit scale/min j of a Q4_K block. */
static void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

/* quantize_row_q4_K_ref: per super-block of 256, eight groups of 32 fitted
 * with make_qkx2_quants (weights av|x| + |x|, 15 levels), their scales and
 * mins quantized to 6 bits against the super-block's d and dmin, then the
 * 4-bit codes recomputed against the quantized scales. */
static void quant_q4_K(const float *x, uint8_t *y, int64_t nb)
{
    uint8_t L[LC_QK_K], Laux[32];
    float weights[32], mins[LC_QK_K / 32], scales[LC_QK_K / 32];
    for (int64_t i = 0; i < nb; i++, x += LC_QK_K, y += sizeof(lc_block_q4_K)) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < LC_QK_K / 32; j++) {
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++)
                sum_x2 += x[32 * j + l] * x[32 * j + l];
            float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; l++)
                weights[l] = av_x + fabsf(x[32 * j + l]);
            scales[j] = make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20, 0);
            if (scales[j] > max_scale)
                max_scale = scales[j];
            if (mins[j] > max_min)
                max_min = mins[j];
        }
        uint8_t *sc = y + offsetof(lc_block_q4_K, scales);
        memset(sc, 0, LC_K_SCALE_SIZE);
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < LC_QK_K / 32; j++) {
            uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
            uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
            ls = (uint8_t)imin(63, ls);
            lm = (uint8_t)imin(63, lm);
            if (j < 4) {
                sc[j] = ls;
                sc[j + 4] = lm;
            } else {
                sc[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                sc[j - 4] |= (uint8_t)((ls >> 4) << 6);
                sc[j - 0] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        wr16(y + offsetof(lc_block_q4_K, d), lc_f32_to_f16(max_scale / 63.f));
        wr16(y + offsetof(lc_block_q4_K, dmin), lc_f32_to_f16(max_min / 63.f));
        const float dd = rd16f(y + offsetof(lc_block_q4_K, d)), ddmin = rd16f(y + offsetof(lc_block_q4_K, dmin));
        for (int j = 0; j < LC_QK_K / 32; j++) {
            uint8_t s, m;
            get_scale_min_k4(j, sc, &s, &m);
            const float d = dd * s;
            if (!d)
                continue;
            const float dm = ddmin * m;
            for (int ii = 0; ii < 32; ii++) {
                int l = nearest_int((x[32 * j + ii] + dm) / d);
                L[32 * j + ii] = (uint8_t)imax(0, imin(15, l));
            }
        }
        uint8_t *q = y + offsetof(lc_block_q4_K, qs);
        for (int j = 0; j < LC_QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

/* make_qx_quants (ggml-quants.c) with rmse_type 1 and no importance
 * weights, as quantize_row_q6_K_ref calls it: symmetric fit of n values to
 * levels [-nmax, nmax-1] weighted by x^2, trying 19 scales around
 * -nmax/max.  Codes are stored offset by nmax. */
static float make_qx_quants_rmse1(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++)
            L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = imax(-nmax, imin(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = imax(-nmax, imin(nmax - 1, l));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* quantize_row_q6_K_ref: sixteen groups of 16 fitted with make_qx_quants
 * (32 levels each side), their scales quantized to int8 against the
 * super-block's d = max_scale / -128, 6-bit codes recomputed against them. */
static void quant_q6_K(const float *x, uint8_t *y, int64_t nb)
{
    int8_t L[LC_QK_K];
    float scales[LC_QK_K / 16];
    for (int64_t i = 0; i < nb; i++, x += LC_QK_K, y += sizeof(lc_block_q6_K)) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < LC_QK_K / 16; ib++) {
            const float scale = make_qx_quants_rmse1(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            if (fabsf(scale) > max_abs_scale) {
                max_abs_scale = fabsf(scale);
                max_scale = scale;
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(y, 0, sizeof(lc_block_q6_K));
            continue;
        }
        float iscale = -128.f / max_scale;
        wr16(y + offsetof(lc_block_q6_K, d), lc_f32_to_f16(1 / iscale));
        const float dd = rd16f(y + offsetof(lc_block_q6_K, d));
        int8_t *sc = (int8_t *)(y + offsetof(lc_block_q6_K, scales));
        for (int ib = 0; ib < LC_QK_K / 16; ib++)
            sc[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < LC_QK_K / 16; j++) {
            float d = dd * sc[j];
            if (!d)
                continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(imax(-32, imin(31, l)) + 32);
            }
        }
        uint8_t *ql = y + offsetof(lc_block_q6_K, ql), *qh = y + offsetof(lc_block_q6_K, qh);
        for (int j = 0; j < LC_QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                  ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

int lc_ggml_can_quantize(uint32_t type)
{
    switch (type) {
    case LC_GGML_F32: case LC_GGML_F16: case LC_GGML_BF16:
    case LC_GGML_Q4_0: case LC_GGML_Q4_1: case LC_GGML_Q8_0: case LC_GGML_Q4_K: case LC_GGML_Q6_K:
        return 1;
    default:
        return 0;
    }
}

int lc_ggml_quantize(uint32_t type, const float *x, void *dst, int64_t n)
{
    const lc_ggml_type_info *ti = lc_ggml_type_get(type);
    if (!ti || !lc_ggml_can_quantize(type))
        return lc_error("cannot encode ggml type %s", ti ? ti->name : "?");
    if (n < 0 || n % ti->block)
        return lc_error("cannot encode %lld elements as %s: not a multiple of %d", (long long)n, ti->name, ti->block);
    uint8_t *y = dst;
    const int64_t nb = n / ti->block;
    switch (type) {
    case LC_GGML_F32: memcpy(y, x, (size_t)n * 4); break;
    case LC_GGML_F16: for (int64_t i = 0; i < n; i++) wr16(y + 2 * i, lc_f32_to_f16(x[i])); break;
    case LC_GGML_BF16: for (int64_t i = 0; i < n; i++) wr16(y + 2 * i, lc_f32_to_bf16(x[i])); break;
    case LC_GGML_Q4_0: quant_q4_0(x, y, nb); break;
    case LC_GGML_Q4_1: quant_q4_1(x, y, nb); break;
    case LC_GGML_Q8_0: quant_q8_0(x, y, nb); break;
    case LC_GGML_Q4_K: quant_q4_K(x, y, nb); break;
    case LC_GGML_Q6_K: quant_q6_K(x, y, nb); break;
    }
    return 0;
}
