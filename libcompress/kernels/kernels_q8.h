/*
 * Integer-activation matvec for 4- and 8-bit weights (decode).
 *
 * The activation vector x is quantized once per matvec to 8 bits in blocks
 * of 32 (q = round(x / d), d = max|x| / 127, as llama.cpp's Q8_0), and each
 * 32-weight block is an exact integer dot product sum(u * q) (AVX-512 VNNI
 * vpdpbusd: unsigned codes times signed activations into int32):
 *     W . x = sum_b s_g(b) d_b (sum_k u_k q_k - z_g S_b)        (sym, zero)
 *           = sum_b d_b (s_g(b) sum_k u_k q_k + m_g S_b)         (min)
 * with S_b = sum_k q_k of the block, z = 2^(bits-1) for symmetric codes.
 * The weights are exactly the stored ones; only x carries the 8-bit
 * rounding (relative error ~0.4% per block), which is why evaluation
 * (prefill, lc_forward with n > 1) keeps f32 activations.
 *
 * 2:4 sparse weights with 4-bit codes (lc-prune --nm 2:4 --bits 4) run on
 * the same activations: each 32-column block's 16 kept activations are
 * gathered with a byte permute (AVX-512 VBMI vpermt2b, indices from the
 * stored 2-bit positions by vpmultishiftqb), and S_b becomes the sum of the
 * kept activations of the block, S'_b (a second vpdpbusd against ones).
 *
 * On AVX2 (no VNNI) dense 4- and 8-bit codes run on the same activations
 * with vpmaddubsw (unsigned times signed bytes into int16 pairs) and
 * vpmaddwd against ones, as llama.cpp's Q4_0 x Q8_0 dot product: 4-bit
 * codes (0..15) meet the activations directly (|pair| <= 3810); 8-bit
 * codes are made signed, w = u - 128, and meet sign(w) q as |w| (|pair|
 * <= 32512, no saturation), the 128 S_b coming back in the correction
 * term.  For 4-bit codes two blocks share one 32-byte load: the low
 * nibbles of both blocks meet the activations in qp, where each pair of
 * blocks has its 16-byte halves interleaved to match.
 *
 * 2:4 on AVX2 gathers with vpshufb, which reads within 16-byte lanes:
 * per 64 columns (2 activation blocks, 32 kept codes, 16 code bytes, 8
 * index bytes) the 64-bit index word is shifted by 0, 2, 4, 6 bits in its
 * four copies (vpsrlvq), so byte m of copy j holds idx of kept value
 * 4m + j, whose column is 8m + 4(j/2) + idx: in the activations laid out
 * as qn (each block's even 4-column groups in its low lane, odd ones in
 * its high lane) that is byte 4(m%4) + idx of the lane j/2 of block
 * m/4 - one vpshufb per block, the two OR-ed.  The codes are put in the
 * same order by a fixed vpshufb.  Symmetric codes meet the activations as
 * (u - 2^(bits-1)) through two vpmaddubsw; the zero-point and min forms
 * take the kept-activation sum S'_b as a second product.
 *
 * Bitmask sparse 4-bit weights (lc-prune --sparsity S --bits 4) pack each
 * block's kept activations to the front with vpcompressb (AVX512_VBMI2)
 * and meet them with the block's next k codes of the row's nibble stream.
 *
 * lc_matvec_q8x_ref is the scalar twin (same integer sums, float
 * accumulation per block); tests/unit/test_kernels_q8.c compares them.
 */
#ifndef LC_KERNELS_Q8_H
#define LC_KERNELS_Q8_H

#include "kernels/kernels.h"

typedef struct lc_xq {
    int n;            /* elements (a multiple of 32) */
    int8_t *q;        /* [n] */
    float *d;         /* [n / 32] block scales */
    int32_t *s;       /* [n / 32] sum of q in the block */
    float *ds;        /* [n / 32] d * s */
    int8_t *qp;       /* [n] AVX2: q with the middle 16-byte quarters of each 64 swapped */
    int8_t *qn;       /* [n] AVX2, 2:4: each block's 4-byte groups as 0 2 4 6 1 3 5 7 */
    int cap;          /* allocated elements */
} lc_xq;

/* Can (w) run on 8-bit activations at level isa?  4- or 8-bit codes with
 * groups a multiple of 32 (AVX2, or AVX-512 VNNI), or 2:4 sparse 4-bit
 * codes in q4x32 blocks with groups a multiple of 32 and rows a multiple
 * of 64 (AVX2; on AVX-512 VNNI and VBMI groups of 32 * 2^k and rows a
 * multiple of 128 take the VBMI kernel), or bitmask sparse 4-bit codes with groups a
 * multiple of 32 (AVX-512 VNNI and VBMI2); else the f32 kernels are
 * faster. */
int lc_q8x_supported(const lc_wmat *w, lc_isa isa);
/* Quantize x [n] into xq (grows its buffers; n must be a multiple of 32). */
int lc_xq_prepare(lc_xq *xq, const float *x, int n);
/* The same with the scalar reference quantizer (tests). */
int lc_xq_prepare_ref(lc_xq *xq, const float *x, int n);
void lc_xq_release(lc_xq *xq);
/* y[r] = W[r,:] . x for r in [r0, r1) from the quantized x, with the
 * kernels of level isa (capped by the CPU; the reference where none fits). */
void lc_matvec_q8x(const lc_wmat *w, const lc_xq *xq, float *y, int64_t r0, int64_t r1, lc_isa isa);
void lc_matvec_q8x_ref(const lc_wmat *w, const lc_xq *xq, float *y, int64_t r0, int64_t r1);

#endif
