/*
 * Weight quantization: round-to-nearest (RTN), GPTQ and the AWQ searches.
 *
 * Everything here works on one linear layer's weight matrix W, row-major
 * [rows, cols] = [out, in] (y = W x), and produces an LC_ENC_QUANT tensor
 * (lc.h, docs/FORMAT.md): groups of `group` consecutive elements along a row
 * share a binary16 scale s and, for asymmetric codes, an integer zero point
 * z.  The library knows nothing of the inference core: calibration enters as
 * a Hessian H = X^T X (any positive multiple; GPTQ's 2/n X^T X is fine) or
 * per-channel mean |x|, accumulated by the caller from the inputs X [n, cols]
 * that the layer sees (lc_quant_hessian and lc_quant_act_absmean do it for an
 * X held in memory).
 *
 * Grid (shared by all methods, so GPTQ and AWQ optimise exactly what RTN
 * stores).  b = bits, half = 2^(b-1), maxq = 2^b - 1:
 *   symmetric  (LC_QF_SYM):  w = s * q, q = u - half in [-half, half - 1].
 *     The grid has one more level on one side; the sign of s puts that
 *     level on the side of the group's largest-magnitude element (as
 *     llama.cpp's Q4_0, d = max / -8: negative scales are normal).
 *   asymmetric (LC_QF_ZERO): w = s * (u - z), u in [0, maxq], z an integer
 *     in [0, maxq]; the range always contains 0 (GPTQ's quant.py).
 * Step size: a group's step is chosen among 9 candidates spread evenly over
 * the interval of steps for which no element is farther than half a step
 * from the grid, the one with the smallest squared error on the group:
 *   sym:  |s| from max(amax/(half+1/2), opp/(half-1/2))   (smallest step)
 *             to   max(amax/half,       opp/(half-1/2))   (extreme exactly
 *         on -half, Q4_0's choice, whenever that does not clip the far side)
 *         with amax the largest |w|, opp the largest |w| on the other side;
 *   asym: s from R/(maxq+1) to R/maxq (quant.py find_params), R =
 *         max(hi,0) - min(lo,0), z the integer that keeps both ends within
 *         half a step (candidates without one are skipped).
 * Each candidate is rounded to binary16 *away from zero* (so the half-step
 * bound survives the rounding) and codes are computed against that rounded
 * scale, u = clamp(rint(w / s16) + z, 0, maxq) (rint: ties to even), so the
 * error that is measured and optimised is the error of what is stored.
 * Every element of an RTN group is within |s16|/2 of its dequantized value.
 * On Gaussian groups of 32 the mean squared error is 5-8% below Q4_0's rule
 * at 3..8 bits (3% above it at 2 bits, where Q4_0's clipping pays) and
 * 14-39% below GPTQ's reference rule (s = 2 amax / maxq); test_quant prints
 * the figures.  An all-zero group gets s = 0 (decodes to 0).  A scale beyond
 * binary16's range (|w| > ~1e5) is refused.  Clipping (trading the
 * half-step bound for a smaller step) is what lc_awq_search_clip does.
 *
 * Shape rules: the group divides the row length (a ragged last group is
 * refused; padding is the caller's decision) and 4-bit rows are a multiple
 * of 32 (the q4x32 packing).  Weights must be finite.
 *
 * Error model: lc.h (0 / -1 + lc_error()).  Outputs are released by the
 * caller (lc_tensor_release); on failure `out` is left released.
 *
 * Example:
 *     lc_quant_params p = {.bits = 4, .group = 128, .sym = 0};
 *     lc_gptq_opts o; lc_gptq_opts_default(&o);
 *     lc_tensor q = {0}; lc_gptq_report rep;
 *     if (lc_quant_gptq(W, rows, cols, H, &p, &o, &q, &rep)) fail(lc_errmsg());
 *     ... lc_tensor_release(&q);
 */
#ifndef LC_QUANT_H
#define LC_QUANT_H

#include <stdint.h>

#include "core/lc.h"
#include "core/tensor.h"

/* What to quantize to. */
typedef struct lc_quant_params {
    int bits;   /* code width, 2..8 */
    int group;  /* elements per group along a row; 0 or -1 = the whole row */
    int sym;    /* 1: LC_QF_SYM; 0: LC_QF_ZERO (integer zero point, GPTQ's convention) */
    int threads; /* RTN: threads over rows (0 or 1: the caller alone); the result does not depend on it */
} lc_quant_params;

/* Check p against a row length (bits range, group divides cols, 4-bit
 * needs cols % 32 == 0) and return the effective group size (cols for
 * per-row) in *group. */
int lc_quant_params_check(const lc_quant_params *p, int64_t cols, int *group);

/* ---- packing (docs/FORMAT.md "Packing of a row's codes") ----------------- */

/* Bytes of one packed row: ceil(cols * bits / 8). */
size_t lc_quant_row_bytes(int64_t cols, int bits);

/* codes [rows, cols] (one unsigned code < 2^bits per byte) -> packed
 * [rows, lc_quant_row_bytes(cols, bits)]: q4x32 for 4 bits, bytes for 8,
 * the LSB-first bit stream otherwise.  Refuses out-of-range codes and
 * 4-bit rows that are not a multiple of 32.  Unused trailing bits are 0. */
int lc_quant_pack_codes(const uint8_t *codes, int64_t rows, int64_t cols, int bits, uint8_t *packed);
/* The inverse: packed rows -> one code per byte. */
int lc_quant_unpack_codes(const uint8_t *packed, int64_t rows, int64_t cols, int bits, uint8_t *codes);

/* ---- RTN ------------------------------------------------------------------ */

/* Round-to-nearest: W [rows, cols] -> out (allocated here with
 * lc_tensor_alloc_quant, name "" - set out->name afterwards).  Grid and
 * scale rule: top of this file. */
int lc_quant_rtn(const float *W, int64_t rows, int64_t cols, const lc_quant_params *p, lc_tensor *out);

/* One group's parameters on the grid: binary16 scale h (s = its value) and
 * zero point z (half for the symmetric form, so both forms decode as
 * s * (u - z)).  Shared by every method that quantizes (RTN, GPTQ, AWQ,
 * SparseGPT's joint pass, lc-prune's RTN of the kept weights). */
typedef struct lc_qgrid {
    float s;
    int z;
    uint16_t h;
} lc_qgrid;

/* The parameters of the G values x (the Grid rule above; G == 0 gives
 * s = 0, nothing to represent). */
int lc_qgrid_choose(const double *x, int G, int bits, int sym, lc_qgrid *g);
/* The same with the scalar error sums (the AVX2 path's twin, for tests:
 * both give the same grid bit for bit). */
int lc_qgrid_choose_ref(const double *x, int G, int bits, int sym, lc_qgrid *g);
/* The same grid, faster, when every x[j] is a binary32 value (RTN's input,
 * or its clipped copy): the error sums multiply by 1/s instead of dividing,
 * which gives the same bits for such x (quant.c, group_sse_avx2). */
int lc_qgrid_choose_floats(const double *x, int G, int bits, int sym, lc_qgrid *g);
/* The squared error of x [G] on g (s != 0) as the chooser sums it: path 0
 * scalar, 1 vector, 2 vector for binary32 x (tests compare the three). */
double lc_qgrid_sse(const double *x, int G, const lc_qgrid *g, int bits, int path);

/* Code of x: u = clamp(rint(x / s) + z, 0, maxq), in double so the rounding
 * does not depend on whether x came from f32 input or a double working
 * copy.  s = 0 (an all-zero group) gives z, which decodes to 0. */
static inline int lc_qgrid_code(double x, const lc_qgrid *g, int maxq)
{
    if (g->s == 0.f)
        return g->z;
    double q = __builtin_rint(x / (double)g->s) + g->z;
    return q < 0 ? 0 : q > maxq ? maxq : (int)q;
}

/* Dequantized value, computed exactly as lc_tensor_to_f32 does. */
static inline float lc_qgrid_deq(int u, const lc_qgrid *g) { return g->s * (float)(u - g->z); }

/* RTN with clipping (AWQ's auto_clip): before the group's parameters are
 * chosen its elements are clamped to [-clip[g], clip[g]], g = the group's
 * index in row-major order (rows * cols/group entries, as
 * lc_awq_search_clip returns).  clip == NULL is plain RTN. */
int lc_quant_rtn_clip(const float *W, int64_t rows, int64_t cols, const lc_quant_params *p, const float *clip,
                      lc_tensor *out);

/* ---- calibration statistics ---------------------------------------------- */

/* H [cols, cols] += X^T X for inputs X [n, cols]: f32 cblas_ssyrk over
 * chunks of 2048 rows, summed into H in double (so many calls / long
 * calibration runs do not lose precision; relative error ~1e-6 of
 * sqrt(H_ii H_jj)).  H must be initialised and symmetric, e.g. zeroed; both
 * triangles are written.  GPTQ's add_batch scales by 2/nsamples; any positive scale
 * gives the same GPTQ result except for the meaning of the reported loss. */
int lc_quant_hessian(const float *X, int64_t n, int64_t cols, double *H);
/* Per-channel mean |x| of X [n, cols] -> out [cols] (AWQ's get_act_scale). */
int lc_quant_act_absmean(const float *X, int64_t n, int64_t cols, float *out);

/* ---- GPTQ ----------------------------------------------------------------- */

/* Options of lc_quant_gptq.  Fill with lc_gptq_opts_default, then change
 * fields; NULL means the defaults. */
typedef struct lc_gptq_opts {
    double percdamp;      /* lambda = percdamp * mean(diag H) is added to the diagonal (default 0.01; 0 allowed) */
    double max_percdamp;  /* when a Cholesky fails, percdamp is raised x10 (from at least 1e-6) up to this (default 10) */
    int block_size;       /* lazy-batch block B (default 128) */
    int act_order;        /* quantize columns by descending diag(H) ("desc_act"); implies static_groups */
    int static_groups;    /* group parameters from the original weights, up front */
    const uint8_t *keep;  /* [rows, cols] (original column order) or NULL: a sparse matrix's kept positions.
                           * Pruned positions get the code of 0 and all their weight is error, so the
                           * feedback moves kept weights only (SparseGPT's masked update); group
                           * parameters see pruned positions as 0, which gives the grid of the kept
                           * weights alone (0 is on every grid and costs no error). */
} lc_gptq_opts;

void lc_gptq_opts_default(lc_gptq_opts *o);

/* What lc_quant_gptq did. */
typedef struct lc_gptq_report {
    double loss;          /* sum of the reference's Losses: sum over rows and columns of (w - q)^2 / (2 [U]_ii^2) */
    double percdamp;      /* dampening actually used (differs from the request after retries) */
    int damp_retries;     /* Cholesky failures that raised the dampening */
    int64_t dead_cols;    /* columns with H_ii == 0 (set to zero weight) */
    double seconds;       /* wall time */
} lc_gptq_report;

/* H = X^T X of a layer's inputs [n, n], as GPTQ and SparseGPT take it: the
 * upper triangle finite and the diagonal non-negative ("who: ..." errors). */
int lc_quant_check_hessian(const double *H, int n, const char *who);

/* The inverse-Hessian factor shared by GPTQ and SparseGPT: U (n, n,
 * row-major upper triangle; lower triangle scratch) = chol(inv(Hp + lambda
 * I), upper) with lambda = percdamp * mean(diag Hp), Hp's upper triangle
 * symmetric positive semi-definite.  On a failed factorisation percdamp is
 * raised x10 (from at least 1e-6) up to max_percdamp, then an error
 * prefixed with `who`.  On success *percdamp is the dampening used and
 * *retries the number of increases. */
int lc_quant_damped_hinv(const double *Hp, int n, double *percdamp, double max_percdamp, double *U, int *retries,
                         const char *who);

/* GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for
 * Generative Pre-trained Transformers", Algorithm 1), following the
 * reference GPTQ.fasterquant (IST-DASLab/gptq, gptq.py):
 *   - dead columns (H_ii == 0): H_ii = 1, W[:, i] = 0;
 *   - act_order: columns permuted by descending diag(H) (stable order for
 *     ties); with groups the parameters are static (static_groups=True in
 *     the reference), computed up front from the weights in original column
 *     order, so the stored tensor keeps the original column order and
 *     inference needs no permutation;
 *   - lambda = percdamp * mean(diag H) on the diagonal; U = upper Cholesky
 *     factor of H^-1 in double.  The reference takes three steps (cholesky,
 *     cholesky_inverse, cholesky upper); this takes two with the same
 *     result: J H J = L L^T (dpotrf, J the reversal permutation), then
 *     U = J L^-1 J (dtrtri).  When a factorisation fails the dampening is
 *     raised x10 (from at least 1e-6) and retried, up to max_percdamp, then
 *     an error names the last attempt; rep says what was used;
 *   - blocks of B columns: inside a block, column i is quantized,
 *     err = (w - q) / U_ii, and the rest of the block is updated
 *     w_j -= err U_ij; after the block, W[:, i2:] -= Err @ U[i1:i2, i2:]
 *     (cblas_dgemm);
 *   - groups (without static groups): the parameters of a group are chosen
 *     when the loop reaches its first column, from the weights as updated so
 *     far (the reference reads the block-start copy of the block being
 *     processed; this reads the current values, which are the ones rounded;
 *     the two agree when the group starts a block).  Per-row parameters
 *     (group 0/-1) are chosen up front.
 * The working copy of W and all of H's algebra are in double.  W [rows, cols]
 * f32, H [cols, cols] double (symmetric, X^T X or 2/n X^T X; only the upper
 * triangle is read), neither modified.  Memory: about 2 cols^2 + 2 rows cols
 * doubles.  Time: O(cols^3 + rows cols^2), BLAS-bound; 0.05 s for a
 * 1536 x 512 and 0.13-0.2 s for a 512 x 1536 matrix on one core here.  out is allocated here (as lc_quant_rtn); rep may be NULL.
 * With H = identity (no correlation) the codes equal lc_quant_rtn's. */
int lc_quant_gptq(const float *W, int64_t rows, int64_t cols, const double *H, const lc_quant_params *p,
                  const lc_gptq_opts *o, lc_tensor *out, lc_gptq_report *rep);

/* ---- AWQ ------------------------------------------------------------------ */

/* Options of the AWQ searches; lc_awq_opts_default, NULL = defaults. */
typedef struct lc_awq_opts {
    int n_grid;           /* scale search: alpha = k / n_grid, k = 0..n_grid-1 (default 20) */
    int n_clip_grid;      /* clip search: ratio = 1 - k / n_clip_grid (default 20) */
    double max_shrink;    /* clip search: smallest ratio is 1 - max_shrink (default 0.5) */
} lc_awq_opts;

void lc_awq_opts_default(lc_awq_opts *o);

typedef struct lc_awq_report {
    double alpha;         /* scale search: best alpha (0 = no scaling) */
    double err_base;      /* output error before the search (alpha 0 / no clipping) */
    double err_best;      /* output error of the choice returned */
} lc_awq_report;

/* AWQ activation-aware scale search (Lin et al. 2023, "AWQ: Activation-aware
 * Weight Quantization", Sec. 3.2; llm-awq auto_scale.py
 * _search_module_scale): for alpha on the grid, s = absmean^alpha (clamped
 * to >= 1e-4), normalised s /= sqrt(max(s) * min(s)); W' = W diag(s) is
 * RTN-quantized with p and Wq = Q(W') diag(s)^-1; the output error
 *     E = sum over the calibration rows x of ||(W - Wq) x||^2
 *       = sum_r (w_r - wq_r)^T H (w_r - wq_r)
 * is evaluated with H = X^T X [cols, cols].  W [rows, cols] may be several
 * linears sharing one input stacked along rows (q, k, v).  absmean [cols] is
 * the per-channel mean |x| (lc_quant_act_absmean).  Writes the best scales
 * to scales [cols]; the caller multiplies W's columns by them and divides
 * the previous operation's output (RMSNorm weight or previous linear's rows)
 * by them, then quantizes.  rep may be NULL. */
int lc_awq_search_scales(const float *W, int64_t rows, int64_t cols, const double *H, const float *absmean,
                         const lc_quant_params *p, const lc_awq_opts *o, float *scales, lc_awq_report *rep);

/* AWQ clipping search (llm-awq auto_clip.py _search_module_clip): for each
 * group, max |w| is shrunk by the ratios 1, 1 - 1/n, ..., 1 - max_shrink
 * (n = n_clip_grid), the group is clamped and RTN-quantized, and the ratio
 * with the smallest output error of that group, d^T H_gg d (H_gg the
 * group's diagonal block of H = X^T X), is kept.  Writes clip
 * [rows * cols/group] (absolute values, for lc_quant_rtn_clip).  Apply it to
 * the already scaled weights and H (H' = S^-1 H S^-1) when combining with
 * lc_awq_search_scales.  rep->alpha is unused; errors are summed over all
 * groups. */
int lc_awq_search_clip(const float *W, int64_t rows, int64_t cols, const double *H, const lc_quant_params *p,
                       const lc_awq_opts *o, float *clip, lc_awq_report *rep);

#endif
