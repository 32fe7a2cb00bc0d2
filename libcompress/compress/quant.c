/*
 * Weight quantization: the shared grid, code packing, RTN, calibration
 * statistics, GPTQ and the AWQ searches.  See quant.h for the math and the
 * references each function follows.
 */
#include "compress/quant.h"
#include "core/tensor.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <immintrin.h>
#include <lapacke.h>

#include "core/cpu.h"
#include "core/lc_cblas.h"
#include "core/pool.h"

/* ---- parameters and the grid ---------------------------------------------- */

int lc_quant_params_check(const lc_quant_params *p, int64_t cols, int *group)
{
    if (!p)
        return lc_error("quant: no parameters");
    if (p->bits < 2 || p->bits > 8)
        return lc_error("quant: %d-bit codes not supported (2..8)", p->bits);
    if (cols <= 0 || cols > ((int64_t)1 << 31) - 1)
        return lc_error("quant: row length %lld out of range", (long long)cols);
    int g = p->group;
    if (g == 0 || g == -1)
        g = (int)cols;
    if (g < 1)
        return lc_error("quant: group size %d (use a positive size, or 0 / -1 for one group per row)", p->group);
    if (cols % g)
        return lc_error("quant: group size %d does not divide the row length %lld (last group would be ragged: "
                        "pad the rows or choose another group size)",
                        g, (long long)cols);
    if (p->bits == 4 && cols % 32)
        return lc_error("quant: 4-bit rows must be a multiple of 32 for the q4x32 packing (row length %lld)",
                        (long long)cols);
    if (group)
        *group = g;
    return 0;
}

/* |s| rounded to binary16 away from zero, so the rounded step is never
 * smaller than the one asked for (quant.h: the half-step bound). */
static int f16_away(double s, uint16_t *h)
{
    uint16_t v = lc_f32_to_f16((float)s);
    while ((v & 0x7fff) < 0x7c00 && fabs((double)lc_f16_to_f32(v)) < fabs(s))
        v++; /* sign-magnitude: +1 grows the magnitude for either sign */
    if ((v & 0x7fff) >= 0x7c00)
        return lc_error("quant: scale %g does not fit binary16 (weights too large)", s);
    *h = v;
    return 0;
}

/* The same with F16C conversions (both are exact or round to nearest
 * even, so the bits agree; s is finite here). */
__attribute__((target("f16c"))) static int f16_away_f16c(double s, uint16_t *h)
{
    uint16_t v = (uint16_t)_cvtss_sh((float)s, _MM_FROUND_TO_NEAREST_INT);
    while ((v & 0x7fff) < 0x7c00 && fabs((double)_cvtsh_ss(v)) < fabs(s))
        v++;
    if ((v & 0x7fff) >= 0x7c00)
        return lc_error("quant: scale %g does not fit binary16 (weights too large)", s);
    *h = v;
    return 0;
}


/* Squared error of the group x [G] on the grid of g (s != 0), summed in
 * four lanes (element j into lane j % 4, each lane a chain of fused
 * multiply-adds) and then (l0 + l1) + (l2 + l3): the order of the AVX2
 * twin below, so both give the same bits and the same choice of grid. */
static double group_sse_ref(const double *x, int G, const lc_qgrid *g, int maxq)
{
    double e[4] = {0, 0, 0, 0};
    for (int j = 0; j < G; j++) {
        double d = x[j] - (double)lc_qgrid_deq(lc_qgrid_code(x[j], g, maxq), g);
        e[j % 4] = fma(d, d, e[j % 4]);
    }
    return (e[0] + e[1]) + (e[2] + e[3]);
}

/* Four elements at a time: the code rint(x / s) + z clamped to [0, maxq]
 * (the same double division and rounding as lc_qgrid_code), its value
 * s * (u - z) in float as lc_qgrid_deq, the error in double.
 *
 * floats: every x is a binary32 value; then x * (1 / s) (a multiply, ~5x
 * cheaper than the division) gives the same sum.  Why: s is binary16, so
 * x - s (k + 1/2) is either 0 or at least ~2^-24 |x|, far above the 2^-52
 * error of the reciprocal; the two quotients round to the same integer
 * except at an exact tie x = s (k + 1/2), where both neighbours are
 * equally far, |d| and d * d are the same, and the clamp to [0, maxq] maps
 * both to one code at the ends. */
__attribute__((target("avx2,fma"))) static double group_sse_avx2(const double *x, int G, const lc_qgrid *g,
                                                                 int maxq, int floats);

/* How a grid is chosen: the vector path (exact for any x), the scalar
 * twin, or the vector path for binary32 x (group_sse_avx2). */
enum { QG_AUTO, QG_REF, QG_FLOATS };

static double group_sse(const double *x, int G, const lc_qgrid *g, int maxq, int mode)
{
    return mode != QG_REF && lc_cpu()->isa >= LC_ISA_AVX2 ? group_sse_avx2(x, G, g, maxq, mode == QG_FLOATS)
                                                          : group_sse_ref(x, G, g, maxq);
}

/* lo and hi of x [G] (0, 0 for G = 0); 1 when an element is not finite. */
static int range_ref(const double *x, int G, double *lo, double *hi)
{
    double l = G ? x[0] : 0, h = G ? x[0] : 0;
    int bad = 0;
    for (int j = 0; j < G; j++) {
        bad |= !isfinite(x[j]);
        l = x[j] < l ? x[j] : l;
        h = x[j] > h ? x[j] : h;
    }
    *lo = l, *hi = h;
    return bad;
}

/* The same (min and max are exact, so any order gives the same bits); x * 0
 * is NaN exactly for the non-finite x. */
__attribute__((target("avx2,fma"))) static int range_avx2(const double *x, int G, double *lo, double *hi)
{
    if (G < 4)
        return range_ref(x, G, lo, hi);
    __m256d l = _mm256_loadu_pd(x), h = l, nf = _mm256_setzero_pd(), zero = _mm256_setzero_pd();
    int j = 0;
    for (; j + 4 <= G; j += 4) {
        __m256d v = _mm256_loadu_pd(x + j);
        l = _mm256_min_pd(v, l); /* v < l ? v : l, as range_ref */
        h = _mm256_max_pd(v, h);
        nf = _mm256_or_pd(nf, _mm256_cmp_pd(_mm256_mul_pd(v, zero), zero, _CMP_NEQ_UQ));
    }
    double a[4], b[4];
    _mm256_storeu_pd(a, l);
    _mm256_storeu_pd(b, h);
    int bad = _mm256_movemask_pd(nf) != 0;
    for (int k = 1; k < 4; k++) {
        a[0] = a[k] < a[0] ? a[k] : a[0];
        b[0] = b[k] > b[0] ? b[k] : b[0];
    }
    for (; j < G; j++) {
        bad |= !isfinite(x[j]);
        a[0] = x[j] < a[0] ? x[j] : a[0];
        b[0] = x[j] > b[0] ? x[j] : b[0];
    }
    *lo = a[0], *hi = b[0];
    return bad;
}

/* Codes of x [G] on g (lc_qgrid_code for each), four at a time. */
__attribute__((target("avx2,fma"))) static void group_codes_avx2(const double *x, int G, const lc_qgrid *g,
                                                                 int maxq, uint8_t *u)
{
    int j = 0;
    if (g->s != 0.f) {
        const __m256d sv = _mm256_set1_pd((double)g->s), zv = _mm256_set1_pd((double)g->z);
        const __m256d hi = _mm256_set1_pd((double)maxq), zero = _mm256_setzero_pd();
        for (; j + 4 <= G; j += 4) {
            __m256d q = _mm256_round_pd(_mm256_div_pd(_mm256_loadu_pd(x + j), sv),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            q = _mm256_min_pd(_mm256_max_pd(_mm256_add_pd(q, zv), zero), hi);
            __m128i c = _mm256_cvtpd_epi32(q); /* 4 x int32 in 0..255 */
            c = _mm_shuffle_epi8(c, _mm_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
            int32_t v = _mm_cvtsi128_si32(c);
            memcpy(u + j, &v, 4);
        }
    }
    for (; j < G; j++)
        u[j] = (uint8_t)lc_qgrid_code(x[j], g, maxq);
}

#define LCQ_STEPS 8

/* ---- the grid search with AVX2 ------------------------------------------------
 * qgrid_choose's candidates and errors in one AVX2 function (no switch
 * between legacy SSE and AVX code per candidate, no structure stored and
 * reloaded): the same steps, the same choice (test_quant checks it against
 * the scalar path). */

/* (a0 + a1) + (a2 + a3), in registers. */
__attribute__((target("avx2,fma"), always_inline)) static inline double sum4_ordered(__m256d a)
{
    __m128d p = _mm_hadd_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1)); /* a0 + a1, a2 + a3 */
    return _mm_cvtsd_f64(_mm_add_sd(p, _mm_unpackhi_pd(p, p)));
}

/* group_sse_avx2's sum from element j on, with acc so far.  After every 16
 * elements the partial sum, in the final order, is compared with stop and
 * returned once it is at least stop: every term is >= 0 and rounding is
 * monotone, so the whole sum would be too, and a caller that keeps a grid
 * only when its error is below stop makes the same choice. */
__attribute__((target("avx2,fma"), always_inline)) static inline double sse_from(const double *x, int G,
                                                                                 const lc_qgrid *g, int maxq,
                                                                                 int floats, double stop, int j,
                                                                                 __m256d acc)
{
    const __m256d sv = _mm256_set1_pd((double)g->s), zv = _mm256_set1_pd((double)g->z);
    const __m256d iv = _mm256_set1_pd(1.0 / (double)g->s);
    const __m256d hi = _mm256_set1_pd((double)maxq), zero = _mm256_setzero_pd();
    const __m128 sf = _mm_set1_ps(g->s);
    for (; j + 4 <= G; j += 4) {
        __m256d xv = _mm256_loadu_pd(x + j);
        __m256d r = floats ? _mm256_mul_pd(xv, iv) : _mm256_div_pd(xv, sv);
        __m256d q = _mm256_round_pd(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q = _mm256_min_pd(_mm256_max_pd(_mm256_add_pd(q, zv), zero), hi);
        __m256d d = _mm256_sub_pd(xv, _mm256_cvtps_pd(_mm_mul_ps(sf, _mm256_cvtpd_ps(_mm256_sub_pd(q, zv)))));
        acc = _mm256_fmadd_pd(d, d, acc);
        if (((j + 4) & 15) == 0 && j + 4 < G) {
            double part = sum4_ordered(acc);
            if (part >= stop)
                return part;
        }
    }
    double e[4];
    _mm256_storeu_pd(e, acc);
    for (; j < G; j++) {
        double d = x[j] - (double)lc_qgrid_deq(lc_qgrid_code(x[j], g, maxq), g);
        e[j % 4] = fma(d, d, e[j % 4]);
    }
    return (e[0] + e[1]) + (e[2] + e[3]);
}

__attribute__((target("avx2,fma"))) static double group_sse_avx2(const double *x, int G, const lc_qgrid *g,
                                                                 int maxq, int floats)
{
    return sse_from(x, G, g, maxq, floats, INFINITY, 0, _mm256_setzero_pd());
}

/* Two grids at once (*e1, *e2; INFINITY for one that reached stop): two
 * independent chains of fused multiply-adds, where one alone waits on its
 * own latency; when one reaches stop the other goes on alone. */
__attribute__((target("avx2,fma"), always_inline)) static inline void sse2_from(const double *x, int G,
                                                                                const lc_qgrid *g1,
                                                                                const lc_qgrid *g2, int maxq,
                                                                                int floats, double stop,
                                                                                double *e1, double *e2)
{
    const __m256d s1 = _mm256_set1_pd((double)g1->s), z1 = _mm256_set1_pd((double)g1->z);
    const __m256d s2 = _mm256_set1_pd((double)g2->s), z2 = _mm256_set1_pd((double)g2->z);
    const __m256d i1 = _mm256_set1_pd(1.0 / (double)g1->s), i2 = _mm256_set1_pd(1.0 / (double)g2->s);
    const __m256d hi = _mm256_set1_pd((double)maxq), zero = _mm256_setzero_pd();
    const __m128 f1 = _mm_set1_ps(g1->s), f2 = _mm_set1_ps(g2->s);
    __m256d a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd();
    int j = 0;
    for (; j + 4 <= G; j += 4) {
        __m256d xv = _mm256_loadu_pd(x + j);
        __m256d r1 = floats ? _mm256_mul_pd(xv, i1) : _mm256_div_pd(xv, s1);
        __m256d r2 = floats ? _mm256_mul_pd(xv, i2) : _mm256_div_pd(xv, s2);
        __m256d q1 = _mm256_round_pd(r1, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256d q2 = _mm256_round_pd(r2, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q1 = _mm256_min_pd(_mm256_max_pd(_mm256_add_pd(q1, z1), zero), hi);
        q2 = _mm256_min_pd(_mm256_max_pd(_mm256_add_pd(q2, z2), zero), hi);
        __m256d d1 = _mm256_sub_pd(xv, _mm256_cvtps_pd(_mm_mul_ps(f1, _mm256_cvtpd_ps(_mm256_sub_pd(q1, z1)))));
        __m256d d2 = _mm256_sub_pd(xv, _mm256_cvtps_pd(_mm_mul_ps(f2, _mm256_cvtpd_ps(_mm256_sub_pd(q2, z2)))));
        a1 = _mm256_fmadd_pd(d1, d1, a1);
        a2 = _mm256_fmadd_pd(d2, d2, a2);
        if (((j + 4) & 15) == 0 && j + 4 < G) {
            int out1 = sum4_ordered(a1) >= stop, out2 = sum4_ordered(a2) >= stop;
            if (out1 || out2) {
                *e1 = out1 ? INFINITY : sse_from(x, G, g1, maxq, floats, stop, j + 4, a1);
                *e2 = out2 ? INFINITY : sse_from(x, G, g2, maxq, floats, stop, j + 4, a2);
                return;
            }
        }
    }
    *e1 = sse_from(x, G, g1, maxq, floats, stop, j, a1);
    *e2 = sse_from(x, G, g2, maxq, floats, stop, j, a2);
}

/* f16_away of sk[0..7], eight at a time: round to nearest, then one step
 * away from zero while the result is below |sk| (as f16_away's loop). */
__attribute__((target("avx2,fma,f16c"), always_inline)) static inline int f16_away8(const double *sk, uint16_t *h)
{
    const __m256d absm = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
    __m256d a = _mm256_loadu_pd(sk), b = _mm256_loadu_pd(sk + 4);
    __m256d aa = _mm256_and_pd(a, absm), ab = _mm256_and_pd(b, absm);
    __m128i v = _mm256_cvtps_ph(_mm256_set_m128(_mm256_cvtpd_ps(b), _mm256_cvtpd_ps(a)), _MM_FROUND_TO_NEAREST_INT);
    for (;;) {
        __m256 back = _mm256_cvtph_ps(v);
        __m256d ba = _mm256_and_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(back)), absm);
        __m256d bb = _mm256_and_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(back, 1)), absm);
        /* below |sk| and finite (an infinity is never below) */
        __m256i la = _mm256_castpd_si256(_mm256_cmp_pd(ba, aa, _CMP_LT_OQ));
        __m256i lb = _mm256_castpd_si256(_mm256_cmp_pd(bb, ab, _CMP_LT_OQ));
        /* eight 64-bit masks -> eight 16-bit ones */
        __m128i m = _mm_packs_epi32(_mm_packs_epi32(_mm256_castsi256_si128(la), _mm256_extracti128_si256(la, 1)),
                                    _mm_packs_epi32(_mm256_castsi256_si128(lb), _mm256_extracti128_si256(lb, 1)));
        if (_mm_testz_si128(m, m))
            break;
        v = _mm_sub_epi16(v, m); /* +1 where below */
    }
    _mm_storeu_si128((__m128i *)h, v);
    __m128i inf = _mm_cmpgt_epi16(_mm_and_si128(v, _mm_set1_epi16(0x7fff)), _mm_set1_epi16(0x7bff));
    return _mm_testz_si128(inf, inf) ? 0 : -1;
}

__attribute__((target("avx2,fma,f16c"))) static int choose_steps_avx2(const double *x, int G, int maxq, int half,
                                                                     int sym, double lo, double hi, double smin,
                                                                     double smax, double sign, int floats,
                                                                     lc_qgrid *g)
{
    double sk[LCQ_STEPS + 1];
    uint16_t h[LCQ_STEPS + 1];
    for (int k = 0; k <= LCQ_STEPS; k++)
        sk[k] = sign * (smin + (smax - smin) * k / LCQ_STEPS);
    if (f16_away8(sk, h) || f16_away_f16c(sk[LCQ_STEPS], &h[LCQ_STEPS])) {
        for (int k = 0; k <= LCQ_STEPS; k++) /* the message of the first that overflows */
            if (f16_away(sk[k], &h[k]))
                return -1;
        return lc_error("quant: a scale does not fit binary16");
    }
    lc_qgrid cand[LCQ_STEPS + 1];
    int nc = 0;
    for (int k = 0; k <= LCQ_STEPS; k++) {
        if (k > 0 && h[k] == h[k - 1])
            continue;
        float s = _cvtsh_ss(h[k]);
        int z = half;
        if (!sym) {
            double zz = ceil(-lo / (double)s - 0.5);
            if (zz > maxq + 0.5 - hi / (double)s)
                continue;
            z = zz < 0 ? 0 : zz > maxq ? maxq : (int)zz;
        }
        cand[nc++] = (lc_qgrid){s, z, h[k]};
    }
    /* in order, so ties keep the smaller step; the best before a pair is a
     * safe stop for both (best only falls) */
    double best = INFINITY;
    for (int i = 0; i < nc; i += 2) {
        double e1, e2 = INFINITY;
        if (i + 1 < nc)
            sse2_from(x, G, &cand[i], &cand[i + 1], maxq, floats, best, &e1, &e2);
        else
            e1 = sse_from(x, G, &cand[i], maxq, floats, best, 0, _mm256_setzero_pd());
        if (e1 < best)
            best = e1, *g = cand[i];
        if (e2 < best)
            best = e2, *g = cand[i + 1];
    }
    if (best == INFINITY) /* cannot happen (see qgrid_choose); refuse rather than guess */
        return lc_error("quant: no step size fits a group (range %g .. %g)", lo, hi);
    return 0;
}

/* Parameters of one group x [G] (quant.h "Grid"): among LCQ_STEPS + 1 step
 * sizes spread over the interval where no element is farther than half a
 * step from the grid, the one with the smallest squared error.
 *   sym:  |s| in [max(amax/(half+1/2), opp/(half-1/2)), max(amax/half, opp/(half-1/2))];
 *         the upper end puts the extreme exactly on -half (llama.cpp Q4_0)
 *         whenever that does not clip the other side.
 *   asym: s in [R/(maxq+1), R/maxq], R = max(hi,0) - min(lo,0), with the
 *         integer z that keeps both ends within half a step (when one
 *         exists); the upper end is quant.py's find_params.
 * Ties keep the smallest step.  Deterministic: a function of x only. */
static int qgrid_choose(const double *x, int G, int bits, int sym, lc_qgrid *g, int mode)
{
    const int half = 1 << (bits - 1), maxq = (1 << bits) - 1;
    const int vec = mode != QG_REF && lc_cpu()->isa >= LC_ISA_AVX2; /* once: lc_cpu() costs a pthread_once */
    double lo, hi;
    if (vec ? range_avx2(x, G, &lo, &hi) : range_ref(x, G, &lo, &hi))
        return lc_error("quant: non-finite weights in a group");
    if (lo > 0 || !sym)
        lo = fmin(lo, 0);
    if (hi < 0 || !sym)
        hi = fmax(hi, 0);
    if (lo == 0 && hi == 0) { /* all zero: s = 0 decodes to 0 */
        *g = (lc_qgrid){0.f, sym ? half : 0, 0};
        return 0;
    }
    double smin, smax, sign = 1;
    if (sym) {
        /* the extra level -half goes to the side of the largest magnitude:
         * w = s q with s < 0 when that element is positive */
        double amax = hi > -lo ? hi : -lo, opp = hi > -lo ? -lo : hi;
        sign = hi > -lo ? -1 : 1;
        smin = fmax(amax / (half + 0.5), opp / (half - 0.5));
        smax = fmax(amax / half, opp / (half - 0.5));
    } else {
        smin = (hi - lo) / (maxq + 1);
        smax = (hi - lo) / maxq;
    }
    if (vec)
        return choose_steps_avx2(x, G, maxq, half, sym, lo, hi, smin, smax, sign, mode == QG_FLOATS, g);
    double best = INFINITY;
    uint16_t prev = 0;
    for (int k = 0; k <= LCQ_STEPS; k++) {
        lc_qgrid c = {0};
        double sk = sign * (smin + (smax - smin) * k / LCQ_STEPS);
        if (f16_away(sk, &c.h))
            return -1;
        if (k > 0 && c.h == prev)
            continue;
        prev = c.h;
        c.s = lc_f16_to_f32(c.h);
        if (sym) {
            c.z = half;
        } else {
            /* z with lo and hi within half a step: -lo/s - 1/2 <= z <= maxq + 1/2 - hi/s */
            double s = c.s, z = ceil(-lo / s - 0.5);
            if (z > maxq + 0.5 - hi / s)
                continue; /* never at k = LCQ_STEPS (s >= R/maxq) */
            c.z = z < 0 ? 0 : z > maxq ? maxq : (int)z;
        }
        double e = group_sse_ref(x, G, &c, maxq);
        if (e < best) {
            best = e;
            *g = c;
        }
    }
    if (best == INFINITY) /* cannot happen (see above); refuse rather than guess */
        return lc_error("quant: no step size fits a group (range %g .. %g)", lo, hi);
    return 0;
}

double lc_qgrid_sse(const double *x, int G, const lc_qgrid *g, int bits, int path)
{
    return group_sse(x, G, g, (1 << bits) - 1, path == 0 ? QG_REF : path == 1 ? QG_AUTO : QG_FLOATS);
}

int lc_qgrid_choose(const double *x, int G, int bits, int sym, lc_qgrid *g)
{
    return qgrid_choose(x, G, bits, sym, g, QG_AUTO);
}

int lc_qgrid_choose_ref(const double *x, int G, int bits, int sym, lc_qgrid *g)
{
    return qgrid_choose(x, G, bits, sym, g, QG_REF);
}

int lc_qgrid_choose_floats(const double *x, int G, int bits, int sym, lc_qgrid *g)
{
    return qgrid_choose(x, G, bits, sym, g, QG_FLOATS);
}

/* ---- packing -------------------------------------------------------------- */

size_t lc_quant_row_bytes(int64_t cols, int bits) { return (size_t)((cols * bits + 7) / 8); }

static int pack_check(int64_t rows, int64_t cols, int bits)
{
    if (bits < 2 || bits > 8)
        return lc_error("quant: %d-bit codes not supported (2..8)", bits);
    if (rows < 0 || cols <= 0 || cols > ((int64_t)1 << 40) / bits)
        return lc_error("quant: cannot pack %lld x %lld codes", (long long)rows, (long long)cols);
    if (bits == 4 && cols % 32)
        return lc_error("quant: 4-bit rows must be a multiple of 32 for the q4x32 packing (row length %lld)",
                        (long long)cols);
    return 0;
}

/* One q4x32 row (the layout below), 32 codes at a time; 1 when a code does
 * not fit 4 bits (the caller then names it). */
__attribute__((target("avx2"))) static int pack4_avx2(const uint8_t *u, int64_t cols, uint8_t *o)
{
    __m128i any = _mm_setzero_si128();
    for (int64_t b = 0; b < cols / 32; b++) {
        __m128i lo = _mm_loadu_si128((const __m128i *)(u + b * 32));
        __m128i up = _mm_loadu_si128((const __m128i *)(u + b * 32 + 16));
        any = _mm_or_si128(any, _mm_or_si128(lo, up));
        /* codes < 16: shifting the 16-bit lanes by 4 moves nothing across bytes */
        _mm_storeu_si128((__m128i *)(o + b * 16), _mm_or_si128(lo, _mm_slli_epi16(up, 4)));
    }
    return !_mm_testz_si128(any, _mm_set1_epi8((char)0xf0));
}

int lc_quant_pack_codes(const uint8_t *codes, int64_t rows, int64_t cols, int bits, uint8_t *packed)
{
    if (pack_check(rows, cols, bits))
        return -1;
    size_t rb = lc_quant_row_bytes(cols, bits);
    int lim = 1 << bits, vec4 = bits == 4 && lc_cpu()->isa >= LC_ISA_AVX2;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *u = codes + r * cols;
        uint8_t *o = packed + (size_t)r * rb;
        if (vec4 && !pack4_avx2(u, cols, o))
            continue;
        for (int64_t j = 0; j < cols; j++)
            if (u[j] >= lim)
                return lc_error("quant: code %d at row %lld column %lld does not fit %d bits", u[j], (long long)r,
                                (long long)j, bits);
        if (bits == 8) {
            memcpy(o, u, (size_t)cols);
        } else if (bits == 4) {
            /* q4x32: byte j of a block = code j | code j+16 << 4 (GGUF Q4_0) */
            for (int64_t b = 0; b < cols / 32; b++)
                for (int j = 0; j < 16; j++)
                    o[b * 16 + j] = (uint8_t)(u[b * 32 + j] | u[b * 32 + j + 16] << 4);
        } else {
            /* LSB-first bit stream: code j in bits j*b .. j*b+b-1 */
            uint64_t acc = 0;
            int nacc = 0;
            size_t k = 0;
            for (int64_t j = 0; j < cols; j++) {
                acc |= (uint64_t)u[j] << nacc;
                nacc += bits;
                while (nacc >= 8) {
                    o[k++] = (uint8_t)acc;
                    acc >>= 8;
                    nacc -= 8;
                }
            }
            if (nacc > 0)
                o[k++] = (uint8_t)acc;
        }
    }
    return 0;
}

int lc_quant_unpack_codes(const uint8_t *packed, int64_t rows, int64_t cols, int bits, uint8_t *codes)
{
    if (pack_check(rows, cols, bits))
        return -1;
    size_t rb = lc_quant_row_bytes(cols, bits);
    unsigned mask = (1u << bits) - 1;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *in = packed + (size_t)r * rb;
        uint8_t *u = codes + r * cols;
        if (bits == 8) {
            memcpy(u, in, (size_t)cols);
        } else if (bits == 4) {
            for (int64_t b = 0; b < cols / 32; b++)
                for (int j = 0; j < 16; j++) {
                    u[b * 32 + j] = in[b * 16 + j] & 15;
                    u[b * 32 + j + 16] = in[b * 16 + j] >> 4;
                }
        } else {
            uint64_t acc = 0;
            int nacc = 0;
            size_t k = 0;
            for (int64_t j = 0; j < cols; j++) {
                while (nacc < bits) {
                    acc |= (uint64_t)in[k++] << nacc;
                    nacc += 8;
                }
                u[j] = (uint8_t)(acc & mask);
                acc >>= bits;
                nacc -= bits;
            }
        }
    }
    return 0;
}

/* ---- RTN ------------------------------------------------------------------ */

static int lcq_check_finite(const char *what, const float *x, size_t n)
{
    if (lc_count_nonfinite_f32(x, n) == 0) /* vectorized; the loop below names the first */
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return lc_error("quant: %s element %zu is not finite", what, i);
    return 0;
}

/* One group of RTN: x [G] clamped to [-clip, clip] (clip < 0: none) ->
 * parameters g, codes u [G], and (if deq) the dequantized values.  xd is
 * scratch of G doubles. */
/* xd [G] = x clamped to [-clip, clip] (clip < 0: none), in double; four at
 * a time (min and max are exact: the same values). */
__attribute__((target("avx2"))) static void widen_avx2(const float *x, int G, float clip, double *xd)
{
    int j = 0;
    if (clip >= 0) {
        const __m256d c = _mm256_set1_pd((double)clip), nc = _mm256_set1_pd(-(double)clip);
        for (; j + 4 <= G; j += 4)
            _mm256_storeu_pd(xd + j, _mm256_max_pd(nc, _mm256_min_pd(c, _mm256_cvtps_pd(_mm_loadu_ps(x + j)))));
        for (; j < G; j++)
            xd[j] = fmax(-(double)clip, fmin((double)clip, (double)x[j]));
    } else {
        for (; j + 4 <= G; j += 4)
            _mm256_storeu_pd(xd + j, _mm256_cvtps_pd(_mm_loadu_ps(x + j)));
        for (; j < G; j++)
            xd[j] = (double)x[j];
    }
}

static int rtn_group(const float *x, int G, int bits, int sym, float clip, double *xd, lc_qgrid *g, uint8_t *u,
                     float *deq)
{
    int maxq = (1 << bits) - 1;
    const int vec = lc_cpu()->isa >= LC_ISA_AVX2;
    if (vec)
        widen_avx2(x, G, clip, xd);
    else if (clip >= 0)
        for (int j = 0; j < G; j++)
            xd[j] = fmax(-(double)clip, fmin((double)clip, (double)x[j]));
    else
        for (int j = 0; j < G; j++)
            xd[j] = (double)x[j];
    if (lc_qgrid_choose_floats(xd, G, bits, sym, g)) /* xd holds binary32 values */
        return -1;
    if (vec)
        group_codes_avx2(xd, G, g, maxq, u);
    else
        for (int j = 0; j < G; j++)
            u[j] = (uint8_t)lc_qgrid_code(xd[j], g, maxq);
    for (int j = 0; deq && j < G; j++)
        deq[j] = lc_qgrid_deq(u[j], g);
    return 0;
}

static int lcq_alloc_out(lc_tensor *out, int64_t rows, int64_t cols, const lc_quant_params *p, int G)
{
    if (rows <= 0 || rows > ((int64_t)1 << 40) / cols)
        return lc_error("quant: %lld x %lld weight matrix out of range", (long long)rows, (long long)cols);
    return lc_tensor_alloc_quant(out, "", rows, cols, p->bits, G, p->sym ? LC_QF_SYM : LC_QF_ZERO);
}

static void lcq_store_param(lc_tensor *out, size_t gi, const lc_qgrid *g)
{
    out->scales[gi] = g->h;
    if (out->zeros)
        out->zeros[gi] = (uint8_t)g->z;
}

/* Rows [a, b) of RTN; the first failing row is kept in bad_row (a
 * worker's error message is its thread's: the caller re-runs that row). */
typedef struct rtn_job {
    const float *W, *clip;
    int64_t cols;
    const lc_quant_params *p;
    int G;
    size_t ngr;
    uint8_t *codes;
    lc_tensor *out;
    _Atomic int64_t bad_row; /* INT64_MAX: none */
} rtn_job;

static int rtn_rows(rtn_job *j, int64_t a, int64_t b, double *xd)
{
    for (int64_t r = a; r < b; r++)
        for (size_t g = 0; g < j->ngr; g++) {
            size_t gi = (size_t)r * j->ngr + g;
            lc_qgrid prm;
            int64_t off = r * j->cols + (int64_t)g * j->G;
            if (rtn_group(j->W + off, j->G, j->p->bits, j->p->sym, j->clip ? j->clip[gi] : -1.f, xd, &prm,
                          j->codes + off, NULL))
                return (int)(r - a) + 1;
            lcq_store_param(j->out, gi, &prm);
        }
    /* pack here, in parallel (rows are independent in every packing) */
    size_t rb = lc_quant_row_bytes(j->cols, j->p->bits);
    if (b > a && lc_quant_pack_codes(j->codes + a * j->cols, b - a, j->cols, j->p->bits,
                                     (uint8_t *)j->out->data + (size_t)a * rb))
        return 1;
    return 0;
}

static void rtn_chunk(void *ctx, long a, long b)
{
    rtn_job *j = ctx;
    double *xd = malloc((size_t)j->G * sizeof *xd);
    int64_t bad = a;
    if (!xd || (bad = rtn_rows(j, a, b, xd)) != 0) {
        int64_t row = xd ? a + bad - 1 : a, cur = atomic_load(&j->bad_row);
        while (row < cur && !atomic_compare_exchange_weak(&j->bad_row, &cur, row))
            ;
    }
    free(xd);
}

int lc_quant_rtn_clip(const float *W, int64_t rows, int64_t cols, const lc_quant_params *p, const float *clip,
                      lc_tensor *out)
{
    memset(out, 0, sizeof *out);
    int G;
    if (!W || lc_quant_params_check(p, cols, &G) || lcq_alloc_out(out, rows, cols, p, G))
        return W ? -1 : lc_error("quant: no weights");
    size_t n = (size_t)rows * (size_t)cols, ngr = (size_t)(cols / G);
    uint8_t *codes = lc_malloc(n);
    double *xd = lc_malloc((size_t)G * sizeof *xd);
    lc_pool *pool = NULL;
    if (!codes || !xd || lcq_check_finite("weight", W, n))
        goto fail;
    for (size_t gi = 0; clip && gi < (size_t)rows * ngr; gi++)
        if (!(clip[gi] >= 0) || !isfinite(clip[gi])) {
            lc_error("quant: clip value %zu is %g (need a finite value >= 0)", gi, (double)clip[gi]);
            goto fail;
        }
    rtn_job j = {.W = W, .clip = clip, .cols = cols, .p = p, .G = G, .ngr = ngr, .codes = codes, .out = out,
                 .bad_row = INT64_MAX};
    if (p->threads > 1 && rows >= 64 && lc_pool_new(p->threads, &pool) == 0) {
        lc_pool_for(pool, (long)rows, 16, rtn_chunk, &j);
        lc_pool_free(pool);
        /* the first failing row again, on this thread, for its message */
        if (j.bad_row != INT64_MAX && rtn_rows(&j, j.bad_row, j.bad_row + 1, xd) == 0)
            lc_error("quant: out of memory");
        if (j.bad_row != INT64_MAX)
            goto fail;
    } else if (rtn_rows(&j, 0, rows, xd)) {
        goto fail;
    }
    free(xd);
    free(codes);
    return 0;
fail:
    free(xd);
    free(codes);
    lc_tensor_release(out);
    return -1;
}

int lc_quant_rtn(const float *W, int64_t rows, int64_t cols, const lc_quant_params *p, lc_tensor *out)
{
    return lc_quant_rtn_clip(W, rows, cols, p, NULL, out);
}

/* ---- calibration statistics ----------------------------------------------- */

int lc_quant_hessian(const float *X, int64_t n, int64_t cols, double *H)
{
    if (!X || !H || n < 0 || cols <= 0 || cols > (1 << 20))
        return lc_error("quant: bad arguments to lc_quant_hessian (%lld x %lld)", (long long)n, (long long)cols);
    if (n == 0)
        return 0;
    /* Chunks of up to CHUNK rows go through cblas_ssyrk (f32, ~5x faster
     * than dsyrk here; GPTQ's reference accumulates in f32 throughout) and
     * are added to H in double, so long calibration runs do not lose
     * precision: S (cols, cols) = Xc^T Xc, upper triangle; H += S. */
    enum { CHUNK = 2048 };
    float *S = lc_malloc((size_t)cols * (size_t)cols * sizeof *S);
    if (!S)
        return -1;
    for (int64_t r0 = 0; r0 < n; r0 += CHUNK) {
        int64_t m = n - r0 < CHUNK ? n - r0 : CHUNK;
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)cols, (int)m, 1.f, X + r0 * cols, (int)cols, 0.f, S,
                    (int)cols);
        for (int64_t i = 0; i < cols; i++)
            for (int64_t j = i; j < cols; j++)
                H[i * cols + j] += S[i * cols + j];
    }
    for (int64_t i = 0; i < cols; i++)
        for (int64_t j = 0; j < i; j++)
            H[i * cols + j] = H[j * cols + i];
    free(S);
    return 0;
}

int lc_quant_act_absmean(const float *X, int64_t n, int64_t cols, float *out)
{
    if (!X || !out || n <= 0 || cols <= 0)
        return lc_error("quant: bad arguments to lc_quant_act_absmean (%lld x %lld)", (long long)n, (long long)cols);
    double *acc = lc_calloc((size_t)cols, sizeof *acc);
    if (!acc)
        return -1;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < cols; j++)
            acc[j] += fabs((double)X[i * cols + j]);
    for (int64_t j = 0; j < cols; j++)
        out[j] = (float)(acc[j] / (double)n);
    free(acc);
    return 0;
}

/* ---- AWQ ------------------------------------------------------------------ */

void lc_awq_opts_default(lc_awq_opts *o)
{
    o->n_grid = 20;
    o->n_clip_grid = 20;
    o->max_shrink = 0.5;
}

static int awq_args(const float *W, int64_t rows, int64_t cols, const double *H, const lc_quant_params *p,
                    const lc_awq_opts *o, int *G)
{
    if (!W || !H)
        return lc_error("awq: missing weights or Hessian");
    if (lc_quant_params_check(p, cols, G))
        return -1;
    if (rows <= 0 || rows > ((int64_t)1 << 40) / cols || cols > (1 << 20))
        return lc_error("awq: %lld x %lld weight matrix out of range", (long long)rows, (long long)cols);
    if (o->n_grid < 1 || o->n_grid > 1000 || o->n_clip_grid < 1 || o->n_clip_grid > 1000)
        return lc_error("awq: grid sizes %d / %d outside 1..1000", o->n_grid, o->n_clip_grid);
    if (!(o->max_shrink >= 0 && o->max_shrink < 1))
        return lc_error("awq: max_shrink %g outside [0, 1)", o->max_shrink);
    if (lcq_check_finite("weight", W, (size_t)rows * (size_t)cols))
        return -1;
    for (int64_t i = 0; i < cols * cols; i++)
        if (!isfinite(H[i]))
            return lc_error("awq: Hessian element %lld is not finite", (long long)i);
    return 0;
}

/* Upper triangle of H (double) as a float matrix for ssymm. */
static float *hess_f32(const double *H, int64_t cols)
{
    float *Hf = lc_malloc((size_t)cols * (size_t)cols * sizeof *Hf);
    if (Hf)
        for (int64_t i = 0; i < cols; i++)
            for (int64_t j = 0; j < cols; j++)
                Hf[i * cols + j] = (float)H[i <= j ? i * cols + j : j * cols + i];
    return Hf;
}

/* sum_r d_r^T H d_r for D [rows, cols]: DH = D H (ssymm), then <D, DH>. */
static double quad_err(const float *D, const float *Hf, int64_t rows, int64_t cols, int64_t ldh, float *DH)
{
    cblas_ssymm(CblasRowMajor, CblasRight, CblasUpper, (int)rows, (int)cols, 1.f, Hf, (int)ldh, D, (int)cols, 0.f,
                DH, (int)cols);
    double e = 0;
    for (int64_t i = 0; i < rows * cols; i++)
        e += (double)D[i] * (double)DH[i];
    return e;
}

int lc_awq_search_scales(const float *W, int64_t rows, int64_t cols, const double *H, const float *absmean,
                         const lc_quant_params *p, const lc_awq_opts *o, float *scales, lc_awq_report *rep)
{
    lc_awq_opts def;
    if (!o) {
        lc_awq_opts_default(&def);
        o = &def;
    }
    int G;
    if (awq_args(W, rows, cols, H, p, o, &G))
        return -1;
    if (!absmean || !scales)
        return lc_error("awq: missing activation statistics or output");
    for (int64_t j = 0; j < cols; j++)
        if (!(absmean[j] >= 0) || !isfinite(absmean[j]))
            return lc_error("awq: mean |x| of channel %lld is %g", (long long)j, (double)absmean[j]);
    size_t n = (size_t)rows * (size_t)cols;
    float *Hf = hess_f32(H, cols), *Ws = lc_malloc(n * 4), *Q = lc_malloc(n * 4), *D = lc_malloc(n * 4),
          *DH = lc_malloc(n * 4), *s = lc_malloc((size_t)cols * 4);
    lc_tensor t = {0};
    int rc = -1;
    if (!Hf || !Ws || !Q || !D || !DH || !s)
        goto done;
    double best = INFINITY, best_alpha = 0, base = 0;
    for (int k = 0; k < o->n_grid; k++) {
        /* auto_scale.py: s = x_max^ratio clamp(1e-4), s /= sqrt(max s * min s) */
        double alpha = (double)k / o->n_grid, smax = 0, smin = INFINITY;
        for (int64_t j = 0; j < cols; j++) {
            double v = fmax(pow((double)absmean[j], alpha), 1e-4);
            s[j] = (float)v;
            smax = fmax(smax, v);
            smin = fmin(smin, v);
        }
        double norm = sqrt(smax * smin);
        for (int64_t j = 0; j < cols; j++)
            s[j] = (float)((double)s[j] / norm);
        // W (rows, cols) * s (cols) -> Ws; Q = deq(RTN(Ws)) / s; D = W - Q
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < cols; j++)
                Ws[r * cols + j] = W[r * cols + j] * s[j];
        if (lc_quant_rtn(Ws, rows, cols, p, &t) || lc_tensor_to_f32(&t, Q))
            goto done;
        lc_tensor_release(&t);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < cols; j++)
                D[r * cols + j] = W[r * cols + j] - Q[r * cols + j] / s[j];
        double e = quad_err(D, Hf, rows, cols, cols, DH);
        if (k == 0)
            base = e;
        if (e < best) {
            best = e;
            best_alpha = alpha;
            memcpy(scales, s, (size_t)cols * 4);
        }
    }
    if (rep) {
        rep->alpha = best_alpha;
        rep->err_base = base;
        rep->err_best = best;
    }
    rc = 0;
done:
    lc_tensor_release(&t);
    free(s);
    free(DH);
    free(D);
    free(Q);
    free(Ws);
    free(Hf);
    return rc;
}

int lc_awq_search_clip(const float *W, int64_t rows, int64_t cols, const double *H, const lc_quant_params *p,
                       const lc_awq_opts *o, float *clip, lc_awq_report *rep)
{
    lc_awq_opts def;
    if (!o) {
        lc_awq_opts_default(&def);
        o = &def;
    }
    int G;
    if (awq_args(W, rows, cols, H, p, o, &G))
        return -1;
    if (!clip)
        return lc_error("awq: no output for the clip values");
    int64_t ngr = cols / G;
    int nk = (int)floor(o->max_shrink * o->n_clip_grid + 1e-9);
    size_t n = (size_t)rows * (size_t)G;
    float *Hf = hess_f32(H, cols), *D = lc_malloc(n * 4), *DH = lc_malloc(n * 4), *amax = lc_malloc((size_t)rows * 4),
          *deq = lc_malloc((size_t)G * 4);
    double *best = lc_malloc((size_t)rows * sizeof *best);
    double *xd = lc_malloc((size_t)G * sizeof *xd);
    uint8_t *u = lc_malloc((size_t)G);
    int rc = -1;
    if (!Hf || !D || !DH || !amax || !deq || !best || !xd || !u)
        goto done;
    double base = 0, tot = 0;
    for (int64_t g = 0; g < ngr; g++) {
        const float *Hg = Hf + g * G * cols + g * G; /* diagonal block (G, G), leading dimension cols */
        for (int64_t r = 0; r < rows; r++) {
            const float *x = W + r * cols + g * G;
            float a = 0;
            for (int j = 0; j < G; j++)
                a = fmaxf(a, fabsf(x[j]));
            amax[r] = a;
        }
        for (int k = 0; k <= nk; k++) {
            /* auto_clip.py: max_val = org_max_val * (1 - i_s / n_grid) */
            double ratio = 1.0 - (double)k / o->n_clip_grid;
            for (int64_t r = 0; r < rows; r++) {
                lc_qgrid prm;
                const float *x = W + r * cols + g * G;
                if (rtn_group(x, G, p->bits, p->sym, (float)(ratio * amax[r]), xd, &prm, u, deq))
                    goto done;
                for (int j = 0; j < G; j++)
                    D[r * G + j] = x[j] - deq[j];
            }
            // per-row error d_r^T H_gg d_r: DH (rows, G) = D (rows, G) H_gg (G, G)
            cblas_ssymm(CblasRowMajor, CblasRight, CblasUpper, (int)rows, G, 1.f, Hg, (int)cols, D, G, 0.f, DH, G);
            for (int64_t r = 0; r < rows; r++) {
                double e = 0;
                for (int j = 0; j < G; j++)
                    e += (double)D[r * G + j] * (double)DH[r * G + j];
                if (k == 0) {
                    base += e;
                    best[r] = e;
                    clip[r * ngr + g] = (float)(ratio * amax[r]);
                } else if (e < best[r]) {
                    best[r] = e;
                    clip[r * ngr + g] = (float)(ratio * amax[r]);
                }
            }
        }
        for (int64_t r = 0; r < rows; r++)
            tot += best[r];
    }
    if (rep) {
        rep->alpha = 0;
        rep->err_base = base;
        rep->err_best = tot;
    }
    rc = 0;
done:
    free(u);
    free(xd);
    free(best);
    free(deq);
    free(amax);
    free(DH);
    free(D);
    free(Hf);
    return rc;
}

/* ---- GPTQ ----------------------------------------------------------------- */

void lc_gptq_opts_default(lc_gptq_opts *o)
{
    o->percdamp = 0.01;
    o->max_percdamp = 10;
    o->block_size = 128;
    o->act_order = 0;
    o->static_groups = 0;
    o->keep = NULL;
}

/* Reverse the n*n array a: for a matrix that is J a J (J the reversal
 * permutation, rows and columns reversed). */
static void reverse_both(double *a, size_t nn)
{
    for (size_t i = 0, j = nn - 1; i < j; i++, j--) {
        double t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* In place: A (n, n), row-major, upper triangle = a symmetric positive
 * definite H -> upper triangle = U with H^-1 = U^T U, the Hinv of gptq.py's
 * cholesky(H); cholesky_inverse; cholesky(upper=True).  One factorisation
 * and one triangular inverse instead of three steps: J H J = L L^T (dpotrf)
 * gives H = R R^T with R = J L J upper triangular, so H^-1 = R^-T R^-1 and
 * U = R^-1 = J L^-1 J (dtrtri), the unique Cholesky factor, as in the
 * reference.  Storage: reversing the array maps the row-major upper
 * triangle onto the row-major lower one, which is LAPACK's column-major
 * upper triangle holding L^T; dtrtri leaves L^-T there, i.e. L^-1 in the
 * row-major lower triangle, and reversing again puts J L^-1 J in the
 * row-major upper triangle.  The lower triangle is left as scratch.
 * Returns LAPACK's info (> 0: not positive definite). */
static lapack_int chol_inv_upper(double *A, int n)
{
    reverse_both(A, (size_t)n * (size_t)n);
    lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', n, A, n);
    if (info == 0)
        info = LAPACKE_dtrtri(LAPACK_COL_MAJOR, 'U', 'N', n, A, n);
    reverse_both(A, (size_t)n * (size_t)n);
    return info;
}

int lc_quant_check_hessian(const double *H, int n, const char *who)
{
    for (int i = 0; i < n; i++) {
        for (int j = i; j < n; j++)
            if (!isfinite(H[(size_t)i * n + j]))
                return lc_error("%s: H[%d][%d] is not finite", who, i, j);
        if (H[(size_t)i * n + i] < 0)
            return lc_error("%s: H[%d][%d] = %g is negative (H must be X^T X)", who, i, i, H[(size_t)i * n + i]);
    }
    return 0;
}

int lc_quant_damped_hinv(const double *Hp, int n, double *percdamp, double max_percdamp, double *U, int *retries,
                         const char *who)
{
    size_t nn = (size_t)n * (size_t)n;
    double mean = 0, pd = *percdamp;
    for (int i = 0; i < n; i++)
        mean += Hp[(size_t)i * n + i] / n;
    *retries = 0;
    for (;;) {
        memcpy(U, Hp, nn * sizeof *U);
        for (int i = 0; i < n; i++)
            U[(size_t)i * n + i] += pd * mean;
        lapack_int info = chol_inv_upper(U, n);
        for (int i = 0; info == 0 && i < n; i++)
            if (!(U[(size_t)i * n + i] > 0) || !isfinite(U[(size_t)i * n + i]))
                info = i + 1; /* overflowed: as ill-conditioned as a failure */
        if (info < 0)
            return lc_error("%s: LAPACK rejected argument %d", who, (int)-info);
        if (info == 0)
            break;
        double next = fmax(pd * 10, 1e-6);
        if (next > max_percdamp)
            return lc_error("%s: H is not positive definite: Cholesky failed (LAPACK info %d) with dampening %g x "
                            "mean(diag H) after %d increase(s); limit %g",
                            who, (int)info, pd, *retries, max_percdamp);
        pd = next;
        (*retries)++;
    }
    *percdamp = pd;
    return 0;
}

typedef struct diag_idx {
    double d;
    int i;
} diag_idx;

/* act_order: descending diag(H), ties in column order (a stable order, so
 * the permutation is deterministic). */
static int cmp_diag_desc(const void *a, const void *b)
{
    const diag_idx *x = a, *y = b;
    if (x->d != y->d)
        return x->d > y->d ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

int lc_quant_gptq(const float *W, int64_t rows, int64_t cols, const double *H, const lc_quant_params *p,
                  const lc_gptq_opts *o, lc_tensor *out, lc_gptq_report *rep)
{
    double t0 = lc_now();
    memset(out, 0, sizeof *out);
    if (rep)
        memset(rep, 0, sizeof *rep);
    lc_gptq_opts def;
    if (!o) {
        lc_gptq_opts_default(&def);
        o = &def;
    }
    int G;
    if (!W || !H)
        return lc_error("gptq: missing weights or Hessian");
    if (lc_quant_params_check(p, cols, &G))
        return -1;
    if (cols > 32768 || rows <= 0 || rows > ((int64_t)1 << 40) / cols)
        return lc_error("gptq: %lld x %lld weight matrix out of range (at most 32768 columns)", (long long)rows,
                        (long long)cols);
    if (!(o->percdamp >= 0) || !isfinite(o->percdamp))
        return lc_error("gptq: dampening %g must be finite and >= 0", o->percdamp);
    if (!(o->max_percdamp >= o->percdamp) || !isfinite(o->max_percdamp))
        return lc_error("gptq: dampening limit %g below the dampening %g", o->max_percdamp, o->percdamp);
    if (o->block_size < 1)
        return lc_error("gptq: block size %d must be positive", o->block_size);
    const int n = (int)cols, B = o->block_size < n ? o->block_size : n, maxq = (1 << p->bits) - 1;
    const int ngr = n / G, statg = o->static_groups || o->act_order || G == n;
    const size_t nn = (size_t)n * (size_t)n, nw = (size_t)rows * (size_t)n;
    if (lc_quant_check_hessian(H, n, "gptq"))
        return -1;
    if (lcq_check_finite("weight", W, nw))
        return -1;

    double *Hp = lc_calloc(nn, sizeof *Hp), *U = lc_malloc(nn * sizeof *U), *Wt = lc_malloc(nw * sizeof *Wt),
           *E = lc_malloc((size_t)B * (size_t)rows * sizeof *E),
           *gb = statg ? lc_malloc((size_t)G * sizeof *gb) : lc_malloc((size_t)G * (size_t)rows * sizeof *gb);
    diag_idx *ord = lc_malloc((size_t)n * sizeof *ord);
    int *perm = lc_malloc((size_t)n * sizeof *perm);
    uint8_t *dead = lc_calloc((size_t)n, 1), *codes = lc_malloc(nw);
    lc_qgrid *prm = lc_malloc((size_t)rows * (size_t)ngr * sizeof *prm);
    int rc = -1;
    if (!Hp || !U || !Wt || !E || !gb || !ord || !perm || !dead || !codes || !prm ||
        lcq_alloc_out(out, rows, cols, p, G))
        goto done;

    /* gptq.py: dead = diag(H) == 0; H[dead, dead] = 1; W[:, dead] = 0 */
    int64_t ndead = 0;
    for (int i = 0; i < n; i++)
        if (H[(size_t)i * n + i] == 0)
            dead[i] = 1, ndead++;

    /* Static parameters (static groups, act-order, or one group per row):
     * from the original weights, dead columns as 0, original column order. */
    if (statg)
        for (int64_t r = 0; r < rows; r++)
            for (int g = 0; g < ngr; g++) {
                for (int j = 0; j < G; j++)
                    gb[j] = dead[g * G + j] || (o->keep && !o->keep[r * n + g * G + j]) ? 0.0 : W[r * n + g * G + j];
                if (lc_qgrid_choose(gb, G, p->bits, p->sym, &prm[r * ngr + g]))
                    goto done;
            }

    /* perm[k] = original column quantized k-th (act_order: argsort(diag H, descending)) */
    for (int i = 0; i < n; i++)
        ord[i] = (diag_idx){dead[i] ? 1.0 : H[(size_t)i * n + i], i};
    if (o->act_order)
        qsort(ord, (size_t)n, sizeof *ord, cmp_diag_desc);
    for (int i = 0; i < n; i++)
        perm[i] = ord[i].i;

    /* Hp = H[perm][:, perm], upper triangle (of H and Hp), dead diagonal = 1 */
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++) {
            size_t a = (size_t)perm[i], b = (size_t)perm[j];
            double v = a <= b ? H[a * n + b] : H[b * n + a];
            Hp[(size_t)i * n + j] = a == b && dead[a] ? 1.0 : v;
        }

    /* U = chol(inv(Hp + lambda I), upper); lambda raised x10 while it fails */
    double pd = o->percdamp;
    int retries = 0;
    if (lc_quant_damped_hinv(Hp, n, &pd, o->max_percdamp, U, &retries, "gptq"))
        goto done;

    /* Wt (n, rows): Wt[k] is original column perm[k], dead columns zeroed
     * (in tiles of 32 rows of W, so the strided reads stay in cache) */
    for (int64_t r0 = 0; r0 < rows; r0 += 32) {
        int64_t r1 = r0 + 32 < rows ? r0 + 32 : rows;
        for (int k = 0; k < n; k++) {
            int c = perm[k];
            for (int64_t r = r0; r < r1; r++)
                Wt[(size_t)k * rows + r] = dead[c] ? 0.0 : W[r * n + c];
        }
    }

    /* Algorithm 1 with lazy batch updates (gptq.py fasterquant) */
    double loss = 0;
    for (int i1 = 0; i1 < n; i1 += B) {
        int i2 = i1 + B < n ? i1 + B : n;
        for (int i = i1; i < i2; i++) {
            double *w = Wt + (size_t)i * rows, *e = E + (size_t)(i - i1) * rows;
            const double d = U[(size_t)i * n + i];
            const int c = perm[i], g = c / G;
            if (!statg && c % G == 0) {
                /* the group's parameters from its current (updated) weights:
                 * gb (rows, G) = Wt[i:i+G]^T */
                for (int k = 0; k < G; k++)
                    for (int64_t r = 0; r < rows; r++)
                        gb[(size_t)r * G + k] = o->keep && !o->keep[r * n + c + k] ? 0.0 : Wt[(size_t)(i + k) * rows + r];
                for (int64_t r = 0; r < rows; r++)
                    if (lc_qgrid_choose(gb + (size_t)r * G, G, p->bits, p->sym, &prm[r * ngr + g]))
                        goto done;
            }
            // q = quant(w); err = (w - q) / U_ii; Losses = (w - q)^2 / U_ii^2 / 2
            for (int64_t r = 0; r < rows; r++) {
                const lc_qgrid *pg = &prm[r * ngr + g];
                /* a pruned position (keep) becomes the code of 0; its whole
                 * weight is error, fed to the kept ones */
                int u = o->keep && !o->keep[r * n + c] ? pg->z : lc_qgrid_code(w[r], pg, maxq);
                codes[(size_t)r * n + c] = (uint8_t)u;
                double err = (w[r] - (double)lc_qgrid_deq(u, pg)) / d;
                loss += 0.5 * err * err;
                e[r] = err;
            }
            // W1[:, i+1:i2] -= err (rows) x U[i, i+1:i2]; transposed: Wt[i+1:i2] (i2-i-1, rows) -= U[i, i+1:i2]^T e^T
            if (i + 1 < i2)
                cblas_dger(CblasRowMajor, i2 - i - 1, (int)rows, -1.0, U + (size_t)i * n + i + 1, 1, e, 1,
                           Wt + (size_t)(i + 1) * rows, (int)rows);
        }
        // W[:, i2:] -= Err1 @ U[i1:i2, i2:]; transposed: Wt[i2:] (n-i2, rows) -= U[i1:i2, i2:]^T E (i2-i1, rows)
        if (i2 < n)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n - i2, (int)rows, i2 - i1, -1.0,
                        U + (size_t)i1 * n + i2, n, E, (int)rows, 1.0, Wt + (size_t)i2 * rows, (int)rows);
    }

    for (size_t gi = 0; gi < (size_t)rows * ngr; gi++)
        lcq_store_param(out, gi, &prm[gi]);
    if (lc_quant_pack_codes(codes, rows, cols, p->bits, out->data))
        goto done;
    if (rep) {
        rep->loss = loss;
        rep->percdamp = pd;
        rep->damp_retries = retries;
        rep->dead_cols = ndead;
        rep->seconds = lc_now() - t0;
    }
    rc = 0;
done:
    if (rc)
        lc_tensor_release(out);
    free(prm);
    free(codes);
    free(dead);
    free(perm);
    free(ord);
    free(gb);
    free(E);
    free(Wt);
    free(U);
    free(Hp);
    return rc;
}
