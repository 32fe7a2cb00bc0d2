/* Vectorised exp for softmax and SwiGLU (see vmath.h). */
#include "kernels/vmath.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* Cephes expf: p(r) = 1 + r + r^2 (c0 + c1 r + c2 r^2 + c3 r^3 + c4 r^4 + c5 r^5) */
#define C0 5.0000001201e-1f
#define C1 1.6666665459e-1f
#define C2 4.1665795894e-2f
#define C3 8.3334519073e-3f
#define C4 1.3981999507e-3f
#define C5 1.9875691500e-4f
#define LOG2E 1.44269504088896341f
#define LN2HI 0.693359375f
#define LN2LO -2.12194440e-4f
#define XMIN -87.0f
#define XMAX 88.0f

float lc_expf_ref(float x)
{
    if (x < XMIN)
        return 0.0f;
    if (x > XMAX)
        x = XMAX;
    float n = floorf(x * LOG2E + 0.5f);
    float r = x - n * LN2HI;
    r = r - n * LN2LO;
    float r2 = r * r;
    float p = ((((C5 * r + C4) * r + C3) * r + C2) * r + C1) * r + C0;
    p = p * r2 + r + 1.0f;
    int32_t e = (int32_t)n + 127;
    uint32_t bits = (uint32_t)e << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

void lc_softmax_ref(float *x, int n)
{
    float mx = x[0];
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        x[i] = lc_expf_ref(x[i] - mx);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

void lc_swiglu_ref(float *a, const float *b, int n)
{
    for (int i = 0; i < n; i++)
        a[i] = a[i] / (1.0f + lc_expf_ref(-a[i])) * b[i];
}

/* ---- AVX-512 --------------------------------------------------------------- */

__attribute__((target("avx512f"))) static inline __m512 exp512(__m512 x)
{
    __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(XMIN), _CMP_LT_OQ);
    x = _mm512_min_ps(x, _mm512_set1_ps(XMAX));
    __m512 n = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(LOG2E), _mm512_set1_ps(0.5f)),
                                    _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2LO), r);
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(C5), r, _mm512_set1_ps(C4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C0));
    p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps((__mmask16)~under, p, _mm512_castsi512_ps(e));
}

/* AVX-512: the ragged tail goes through the same vector code under a mask
 * (masked-off lanes are -inf for the max and 0 in the sum). */
__attribute__((target("avx512f"))) static void softmax512(float *x, int n)
{
    __m512 vm = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        vm = _mm512_max_ps(vm, _mm512_loadu_ps(x + i));
    __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
    vm = _mm512_max_ps(vm, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail, x + i));
    __m512 vmx = _mm512_set1_ps(_mm512_reduce_max_ps(vm)), vs = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmx));
        _mm512_storeu_ps(x + i, e);
        vs = _mm512_add_ps(vs, e);
    }
    if (tail) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + i), vmx));
        e = _mm512_maskz_mov_ps(tail, e);
        _mm512_mask_storeu_ps(x + i, tail, e);
        vs = _mm512_add_ps(vs, e);
    }
    double sum = _mm512_reduce_add_ps(vs);
    __m512 inv = _mm512_set1_ps((float)(1.0 / sum));
    for (i = 0; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
    if (tail)
        _mm512_mask_storeu_ps(x + i, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, x + i), inv));
}

__attribute__((target("avx512f"))) static void swiglu512(float *a, const float *b, int n)
{
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 va = _mm512_maskz_loadu_ps(k, a + i);
        __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), va));
        __m512 s = _mm512_div_ps(va, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
        _mm512_mask_storeu_ps(a + i, k, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(k, b + i)));
    }
}

/* ---- AVX2 ------------------------------------------------------------------ */

__attribute__((target("avx2,fma"))) static inline __m256 exp256(__m256 x)
{
    __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(XMIN), _CMP_LT_OQ);
    x = _mm256_min_ps(x, _mm256_set1_ps(XMAX));
    __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(LOG2E), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2LO), r);
    __m256 r2 = _mm256_mul_ps(r, r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(C5), r, _mm256_set1_ps(C4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C0));
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

__attribute__((target("avx2,fma"))) static void softmax256(float *x, int n)
{
    float mx = x[0];
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    __m256 vmx = _mm256_set1_ps(mx), vs = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmx));
        _mm256_storeu_ps(x + i, e);
        vs = _mm256_add_ps(vs, e);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, vs);
    double sum = 0;
    for (int k = 0; k < 8; k++)
        sum += lanes[k];
    for (; i < n; i++) {
        x[i] = lc_expf_ref(x[i] - mx);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (i = 0; i < n; i++)
        x[i] *= inv;
}

__attribute__((target("avx2,fma"))) static void swiglu256(float *a, const float *b, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 va = _mm256_loadu_ps(a + i);
        __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), va));
        __m256 s = _mm256_div_ps(va, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
        _mm256_storeu_ps(a + i, _mm256_mul_ps(s, _mm256_loadu_ps(b + i)));
    }
    lc_swiglu_ref(a + i, b + i, n - i);
}

void lc_softmax(float *x, int n, lc_isa isa)
{
    if (isa >= LC_ISA_AVX512)
        softmax512(x, n);
    else if (isa == LC_ISA_AVX2)
        softmax256(x, n);
    else
        lc_softmax_ref(x, n);
}

void lc_swiglu(float *a, const float *b, int n, lc_isa isa)
{
    if (isa >= LC_ISA_AVX512)
        swiglu512(a, b, n);
    else if (isa == LC_ISA_AVX2)
        swiglu256(a, b, n);
    else
        lc_swiglu_ref(a, b, n);
}
