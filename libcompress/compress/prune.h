/*
 * Weight pruning: magnitude, Wanda and SparseGPT; unstructured (per row,
 * per tensor, global) and N:M; optionally with the kept weights quantized
 * in the same pass.  Results are stored in the sparse encodings of lc.h
 * (docs/FORMAT.md "sparse_nm", "sparse_mask").
 *
 * Vocabulary.  W is one linear layer's weight, row-major [rows, cols] =
 * [out, in] (y = W x).  A *position* is pruned (set to zero and not stored)
 * or kept (stored, even when its value is zero).  Achieved sparsity is the
 * fraction of pruned positions - weights that were already zero count as
 * kept unless they were selected, so the figure is exactly what was asked:
 *   unstructured: k = round(s * count) positions pruned per row (scope row),
 *                 per tensor (scope tensor) or over all selected tensors
 *                 (scope global, magnitude only);
 *   N:M:          in every group of M consecutive columns of a row exactly
 *                 N positions are kept (sparsity 1 - N/M; 2:4 and 4:8 are
 *                 the usual ones).
 * Ties of the pruning score are broken by position: the lower (row-major)
 * index is pruned first, so results are deterministic.
 *
 * Scores (smaller = pruned first):
 *   magnitude  |W_ij|
 *   Wanda      |W_ij| * ||X_j||_2 = |W_ij| sqrt(H_jj), H = X^T X of the
 *              layer's inputs (Sun et al. 2023, "A Simple and Effective
 *              Pruning Approach for Large Language Models", Eq. 1; compared
 *              per output row, Sec. 3)
 *   SparseGPT  w^2 / [H^-1]_jj^2 (Frantar & Alistarh 2023, "SparseGPT",
 *              Algorithm 1; reference IST-DASLab/sparsegpt, sparsegpt.py
 *              SparseGPT.fasterprune): the OBS reconstruction updates the
 *              remaining weights column by column, the mask being selected
 *              adaptively per block of `blocksize` columns (unstructured) or
 *              per M columns (N:M) from the weights as updated so far.
 *
 * Joint quantization (bits > 0): the kept weights become codes on the grid
 * of quant.h (the same rules as lc_quant_rtn: the binary16 scale rounded
 * away from zero, sym = Q4_0-like, asym = integer zero point), with groups
 * of `group` consecutive *dense* columns of a row (group 0 = the whole row);
 * a group's parameters are chosen from its kept weights.  Magnitude and
 * Wanda quantize after pruning (RTN of the kept weights); SparseGPT
 * quantizes inside its loop, as sparsegpt.py does with its quantizer, so
 * the rounding error is compensated too; its parameters are chosen when the
 * loop reaches a group's first column, from the group's current weights at
 * the positions kept (N:M chunks not yet decided: the positions their
 * current scores would keep).
 *
 * Error model: lc.h.  Output tensors are released by the caller.
 */
#ifndef LC_PRUNE_H
#define LC_PRUNE_H

#include "compress/calib.h"
#include "core/lc.h"
#include "compress/quant.h"

typedef enum lc_prune_method {
    LC_PRUNE_MAGNITUDE = 0,
    LC_PRUNE_WANDA = 1,
    LC_PRUNE_SPARSEGPT = 2,
} lc_prune_method;

/* Where unstructured pruning compares scores. */
typedef enum lc_prune_scope {
    LC_PRUNE_ROW = 0,     /* within each output row (Wanda's default) */
    LC_PRUNE_TENSOR = 1,  /* within each tensor (SparseGPT: within each block of columns, over all rows) */
    LC_PRUNE_GLOBAL = 2,  /* over every selected tensor at once (magnitude only) */
} lc_prune_scope;

typedef struct lc_prune_params {
    lc_prune_method method;
    double sparsity;        /* unstructured: fraction of positions pruned, [0, 1) */
    int n, m;               /* N:M: n kept of every m consecutive columns; n = 0: unstructured */
    lc_prune_scope scope;
    int bits;               /* 0: keep values as they are; 2..8: quantize the kept weights */
    int group;              /* quantization group over dense columns (0 = the whole row) */
    int sym;                /* 1: LC_QF_SYM, 0: LC_QF_ZERO */
    int blocksize;          /* SparseGPT column block (default 128) */
    double percdamp;        /* SparseGPT dampening: percdamp * mean(diag H) (default 0.01) */
} lc_prune_params;

/* Defaults: sparsity 0.5, unstructured; scope row for Wanda, tensor for
 * magnitude and SparseGPT (as their reference implementations); no
 * quantization (sym when bits are set), blocksize 128, percdamp 0.01. */
void lc_prune_params_default(lc_prune_params *p, lc_prune_method method);
/* Check p, and p against a row length when cols > 0 (M divides it, the
 * group divides it and is a multiple of M). */
int lc_prune_params_check(const lc_prune_params *p, int64_t cols);
const char *lc_prune_method_name(lc_prune_method m);
const char *lc_prune_scope_name(lc_prune_scope s);

/* Positions pruned out of `count` at sparsity s: round(s * count). */
int64_t lc_prune_count(double sparsity, int64_t count);

/* ---- one tensor ----------------------------------------------------------- */

/* Scores of magnitude (H == NULL) or Wanda (H = X^T X, [cols, cols]):
 * score [rows, cols]. */
int lc_prune_scores(const float *W, int64_t rows, int64_t cols, const double *H, float *score);

/* keep [rows, cols] (1 kept, 0 pruned) from scores, for p's pattern and
 * scope (row or tensor; N:M ignores the scope). */
int lc_prune_select(const float *score, int64_t rows, int64_t cols, const lc_prune_params *p, uint8_t *keep);

/* Global magnitude threshold: k = round(s * n) of the n values |w| in
 * absw are pruned: those below *thr and the first *ties equal to it (in
 * tensor order, row-major), as lc_prune_mask_global applies them.  absw is
 * reordered. */
int lc_prune_global_threshold(float *absw, int64_t n, int64_t k, float *thr, int64_t *ties);
void lc_prune_mask_global(const float *W, int64_t count, float thr, int64_t *ties, uint8_t *keep);

/* What happened to one tensor. */
typedef struct lc_prune_tensor_report {
    int64_t pruned, total;  /* positions */
    double loss;            /* SparseGPT: sum of (w - q)^2 / [U]_ii^2 / 2, as the reference's Losses */
    double percdamp;        /* SparseGPT: dampening used */
    int64_t dead_cols;      /* SparseGPT: columns with H_ii = 0 */
    double seconds;
} lc_prune_tensor_report;

/* Prune one matrix and encode the result: W [rows, cols] f32 (not
 * modified); H = X^T X [cols, cols] for Wanda and SparseGPT (NULL for
 * magnitude); keep_in: a mask decided elsewhere (global scope), else NULL.
 * Kept values are stored as dt when p->bits == 0.  out is
 * LC_ENC_SPARSE_NM for N:M, LC_ENC_SPARSE_MASK otherwise; rep may be
 * NULL. */
int lc_prune_tensor(const char *name, const float *W, int64_t rows, int64_t cols, const double *H,
                    const lc_prune_params *p, const uint8_t *keep_in, lc_dtype dt, lc_tensor *out,
                    lc_prune_tensor_report *rep);

/* ---- a whole container ---------------------------------------------------- */

typedef struct lc_prune_opts {
    lc_prune_params p;
    const char *const *only;  /* glob patterns of tensors to prune (NULL/0: every linear of the decoder layers) */
    int n_only;
    const char *const *keep;  /* glob patterns of tensors never pruned */
    int n_keep;
    int dtype;                /* value type of the output (lc_dtype), -1 = the input's (f32 for encoded input) */
    lc_calib_opts calib;      /* Wanda and SparseGPT */
    lc_model_opts model;      /* threads and ISA for the calibration forward passes */
} lc_prune_opts;

void lc_prune_opts_default(lc_prune_opts *o, lc_prune_method method);

typedef struct lc_prune_report {
    int n_tensors;            /* tensors pruned */
    int64_t pruned, total;    /* positions over those tensors */
    int calibrated;           /* calib is filled */
    int n_composed;           /* pruned tensors that were sparse or quantized already (kept inside, on their grid) */
    int usage_error;          /* the failure was the parameters not fitting the selection (a usage error) */
    lc_calib_report calib;
    double seconds;
    char note[512];           /* for the lineage row */
} lc_prune_report;

/* Prune the selected tensors of `in` into `out` (which receives the header,
 * every tensor in input order - pruned or copied unchanged - but not the
 * lineage: the caller adds its row with rep->note).  One line per pruned
 * tensor (its exact achieved sparsity) goes to stderr through lc_log. */
int lc_prune_container(lc_container *in, lc_container *out, const lc_prune_opts *o, lc_prune_report *rep);

#endif
