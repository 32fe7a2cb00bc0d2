/*
 * Vector math for the inference core: exp-based softmax and SiLU gating,
 * with AVX-512 and AVX2 versions and a scalar reference twin that uses the
 * same polynomial (so every ISA level agrees to a few ulp).
 *
 * exp(x) = 2^n * p(r), x = n ln2 + r, |r| <= ln2/2, p a degree-6
 * polynomial (Cephes expf coefficients); relative error < 2e-7 over
 * [-87, 88]; inputs below -87 give 0.
 */
#ifndef LC_VMATH_H
#define LC_VMATH_H

#include "core/cpu.h"
#include "core/lc.h"

/* x[0..n) = softmax(x) in place (max subtracted, sum in f32 lanes then double);
 * n >= 1. */
void lc_softmax(float *x, int n, lc_isa isa);
void lc_softmax_ref(float *x, int n);
/* a[i] = silu(a[i]) * b[i] = a / (1 + exp(-a)) * b */
void lc_swiglu(float *a, const float *b, int n, lc_isa isa);
void lc_swiglu_ref(float *a, const float *b, int n);
/* scalar exp with the same polynomial (the reference) */
float lc_expf_ref(float x);

#endif
