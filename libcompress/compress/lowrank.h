/*
 * Low-rank factorization of one linear layer's weight W [m, n] (y = W x):
 * W ~ A B with A [m, k] and B [k, n], written as a tensor whose encoding is
 * its low-rank term alone (LC_ENC_LOWRANK, docs/FORMAT.md).
 *
 * Methods (all one truncated SVD, LAPACKE dgesdd in double, of W S for an
 * input transform S, then A = U_k sqrt(S_k), B = sqrt(S_k) V_k^T S^-1):
 *   LC_LR_SVD    S = I: the Frobenius-optimal rank-k approximation.
 *   LC_LR_WHITEN SVD-LLM's truncation-aware whitening: S = L, the Cholesky
 *                factor of the calibration Gram matrix H = X^T X (double).
 *                ||(W - A B) X^T||_F^2 = ||(W - A B) L||_F^2 is then the
 *                sum of the discarded squared singular values, so the
 *                truncation is optimal for the output error on the data.
 *                H is damped by percdamp * mean(diag H) (a zero input
 *                channel makes H singular), raised x10 on each failed
 *                Cholesky up to 1.  B is computed by a triangular solve
 *                (dtrsm), never with an explicit inverse.
 *   LC_LR_ASVD   ASVD's diagonal scaling: S = diag(mean|x|^alpha).
 *
 * Rank: `rank`, or `ratio` (the fraction of W's parameters removed:
 * k = floor(m n (1 - ratio) / (m + n)), rounded down to a multiple of
 * `align`), or `energy` (the smallest k whose singular values keep that
 * fraction of sum s^2 of W S, rounded up).  Exactly one.  The rounding
 * makes every f32 factor row whole 64-byte lines: on sqz-m29 at a 20% cut
 * it decodes ~5% faster than the exact ranks (204/136/307) with 2% fewer
 * bytes.
 *
 * Factors are floats of factor_dtype, or with factor_bits RTN codes
 * (symmetric, group 32 along the row where 32 divides it, else the whole
 * row).
 */
#ifndef LC_LOWRANK_H
#define LC_LOWRANK_H

#include "core/lc.h"
#include "core/tensor.h"

typedef enum lc_lr_method { LC_LR_SVD = 0, LC_LR_WHITEN = 1, LC_LR_ASVD = 2 } lc_lr_method;

typedef struct lc_lr_params {
    lc_lr_method method;
    int rank;           /* > 0: exactly this rank */
    double ratio;       /* in (0, 1): fraction of the parameters removed */
    double energy;      /* in (0, 1]: fraction of the spectrum's energy kept */
    double alpha;       /* ASVD exponent (default 0.5) */
    double percdamp;    /* whiten: initial damping of H, fraction of mean(diag H) (default 1e-3) */
    int align;          /* ratio/energy ranks of at least 4 x align are rounded to a multiple of it
                         * (down for ratio, up for energy): whole cache lines per factor row
                         * (default 16; 1 = the exact formula) */
    int factor_bits;    /* 0: float factors of factor_dtype; 2..8: RTN codes */
    lc_dtype factor_dtype; /* float factors: f32 (default), f16 or bf16 (lc-lowrank: the input's dtype) */
} lc_lr_params;

void lc_lr_params_default(lc_lr_params *p);

typedef struct lc_lr_report {
    int rank;
    double energy;      /* fraction of sum s^2 of W S that the kept values hold */
    double err;         /* relative output error tr(dW H dW^T) / tr(W H W^T) with H, else ||dW||^2 / ||W||^2 */
    int damp_retries;   /* whiten: Cholesky failures before it succeeded */
    double percdamp;    /* whiten: the damping used */
} lc_lr_report;

/* The rank p asks for on an m x n matrix; s2 (descending squared singular
 * values, ns of them) is needed for `energy` only.  -1 with a message when
 * the request cannot be met (a rank above min(m, n), a ratio that leaves
 * less than rank 1). */
int lc_lowrank_rank(const lc_lr_params *p, int64_t m, int64_t n, const double *s2, int ns, int *k);

/* Factor W (finite, row-major [m, n]).  H [n, n] (sum of x x^T) is needed
 * by LC_LR_WHITEN and absmean [n] by LC_LR_ASVD; with H the report's error
 * is the output error on the data (any method).  out is allocated here:
 * name copied from `name`, enc LC_ENC_LOWRANK. */
int lc_lowrank_factor(const char *name, const float *W, int64_t m, int64_t n, const double *H, const float *absmean,
                      const lc_lr_params *p, lc_tensor *out, lc_lr_report *rep);

/* The squared singular values (min(m, n) of them, descending) of W S, the
 * matrix the method truncates: for whiten, the output error on the data of
 * rank k is the sum of those past k. */
int lc_lowrank_spectrum(const float *W, int64_t m, int64_t n, const double *H, const float *absmean,
                        const lc_lr_params *p, double *s2, lc_lr_report *rep);

/* Ranks across `count` tensors [m_t, n_t] with spectra s2[t] that minimise
 * the summed truncation error sum_t sum_{i >= k_t} s2[t][i] subject to
 * sum_t k_t (m_t + n_t) <= budget (factor elements): an exact dynamic
 * program over each tensor's ranks {1, step, 2 step, ...} below the dense
 * size, costs in units of the gcd of all (m_t + n_t).  When the budget
 * has more than 4 million such units the unit is doubled until it fits and
 * costs are rounded up (*exact = 0; the budget still holds).  -1 when
 * rank 1 everywhere already exceeds the budget. */
int lc_lowrank_allocate(int count, const double *const *s2, const int64_t *m, const int64_t *n, double budget,
                        int step, int *ranks, double *err, int *exact);

/* Relative error of What against W: tr(dW H dW^T) / tr(W H W^T), or the
 * squared Frobenius ratio when H is NULL. */
double lc_lowrank_rel_error(const float *W, const float *What, int64_t m, int64_t n, const double *H);

#endif
