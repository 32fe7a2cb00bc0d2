/*
 * Weight-matrix kernels of the inference core.
 *
 * A linear layer y = W x keeps W in its stored encoding.  `lc_wmat` is a
 * read-only view of one [rows, cols] matrix in any encoding (it borrows the
 * tensor's buffers; nothing is copied).  Three operations run on a view:
 *
 *     lc_matvec(w, x, y, r0, r1, isa)    // y[r] = W[r,:] . x  for r in [r0, r1)   (decode)
 *     lc_wmat_rows_f32(w, r0, r1, out)   // decode rows [r0, r1) to f32            (prefill panels)
 *     lc_matmul(w, X, n, Y, ldy, ...)    // Y[n, rows] = X[n, cols] W^T via sgemm   (prefill)
 *
 * Every fast matvec has a scalar reference twin (lc_matvec_ref) computing
 * the same sum in plain C; tests/unit/test_kernels.c compares them for every
 * format and every ISA the CPU supports.
 *
 * Per-row determinism: the SIMD kernels compute each row with the same
 * accumulator layout and reduction order whether the row falls in an
 * unrolled multi-row block or in the tail, so y[r] does not depend on how
 * rows are split across threads.
 *
 * Adding an encoding (e.g. N:M or bitmask sparse, composed with quant):
 *   1. add an lc_wfmt value and its fields (a union member below, e.g. the
 *      index/mask arrays of a sparse row) ;
 *   2. a case in lc_wmat_from_tensor() that validates and fills the view ;
 *   3. a row decoder (case in lc_wmat_rows_f32, used for prefill panels and
 *      for the embedding lookup) and a reference matvec (case in
 *      lc_matvec_ref) ;
 *   4. optionally SIMD kernels: one function per ISA, registered in the
 *      dispatch table in kernels.c.  Without them the format runs on its
 *      reference kernel at every ISA level - correct, only slower.
 *   5. add the format to the loop in tests/unit/test_kernels.c.
 */
#ifndef LC_KERNELS_H
#define LC_KERNELS_H

#include "core/cpu.h"
#include "core/tensor.h"
#include "core/lc.h"

/* Storage formats a matvec kernel understands.  Not stored in files. */
typedef enum lc_wfmt {
    LC_WF_F32 = 0,   /* dense binary32 */
    LC_WF_F16,       /* dense IEEE binary16 */
    LC_WF_BF16,      /* dense bfloat16 */
    LC_WF_Q8,        /* 8-bit codes, one byte each */
    LC_WF_Q4,        /* 4-bit codes, GGUF Q4_0 block packing (32 codes in 16 bytes) */
    LC_WF_QBITS,     /* 2,3,5,6,7-bit codes, little-endian bit stream per row */
    LC_WF_NM,        /* N:M sparse, kept values of type vdtype (lc.h LC_ENC_SPARSE_NM) */
    LC_WF_NM_Q,      /* N:M sparse, kept values as quantized codes */
    LC_WF_MASK,      /* bitmask sparse, kept values of type vdtype (LC_ENC_SPARSE_MASK) */
    LC_WF_MASK_Q,    /* bitmask sparse, kept values as quantized codes */
    LC_WF_ZERO,      /* no base: all zeros (a tensor that is its low-rank term alone) */
    LC_WF_COUNT
} lc_wfmt;

typedef struct lc_wmat {
    int64_t rows, cols;
    lc_wfmt fmt;
    const uint8_t *data;   /* row r starts at data + r * row_bytes */
    size_t row_bytes;
    /* quantized formats (LC_WF_Q8, LC_WF_Q4, LC_WF_QBITS); see lc_qform in lc.h */
    int bits, group, gpr;  /* code width, group length, groups per row */
    lc_qform qform;
    const uint16_t *scales; /* binary16 [rows, gpr] */
    const uint16_t *mins;   /* binary16 [rows, gpr], LC_QF_MIN */
    const uint8_t *zeros;   /* [rows, gpr], LC_QF_ZERO */
    /* sparse formats (LC_WF_NM .. LC_WF_MASK_Q; layout in lc.h).  N:M: row r's
     * values (or codes) at data + r * row_bytes; mask: row r's values are
     * [row_ptr[r], row_ptr[r+1]) of one array at data (row_bytes = 0).
     * Quantized: bits/group/gpr/qform/scales/... as above, groups over dense
     * columns. */
    int sp_n, sp_m, idx_bits;
    lc_dtype vdtype;           /* LC_WF_NM / LC_WF_MASK: type of the kept values */
    int q4x32;                 /* LC_WF_NM_Q: codes in q4x32 blocks (else bytes / bit stream) */
    const uint8_t *idx;        /* N:M positions or mask, idx_row_bytes per row */
    size_t idx_row_bytes;
    const uint64_t *row_ptr;   /* mask: first kept value of each row [rows + 1] */
    size_t sp_bytes;           /* bytes as stored (lc_tensor_stored_bytes) */
    /* Low-rank term: W = base + A B, A [rows, lr_rank], B [lr_rank, cols],
     * views kept by the caller of lc_wmat_from_tensor_lr (dense or
     * quantized formats).  The base is the rest of the view (LC_WF_ZERO when
     * there is none).  lr_rank 0: no term. */
    int lr_rank;
    const struct lc_wmat *lr_a, *lr_b;
} lc_wmat;

/* View a 2-D tensor (or a 1-D one as a single row).  The tensor must outlive
 * the view.  Fails for encodings the kernels do not handle, and for a
 * tensor with a low-rank term, whose factor views need a home: */
int lc_wmat_from_tensor(lc_wmat *w, const lc_tensor *t);
/* The same for any tensor; the factors' views go to fac[0] (A) and fac[1]
 * (B), which must outlive w (and stay where they are). */
int lc_wmat_from_tensor_lr(lc_wmat *w, const lc_tensor *t, lc_wmat fac[2]);
/* Bytes of the matrix as stored (codes + scales + mins + zeros). */
size_t lc_wmat_bytes(const lc_wmat *w);

/* Decode rows [r0, r1) to f32: out[(r - r0) * cols + c].  Scalar, exact
 * (the same values lc_tensor_to_f32 produces). */
void lc_wmat_rows_f32(const lc_wmat *w, int64_t r0, int64_t r1, float *out);

/* y[r] = sum_c W[r,c] x[c] for r in [r0, r1) (y indexed by absolute row).
 * isa is the level to use (already capped by the caller); formats without a
 * kernel at that level use the next lower one. */
void lc_matvec(const lc_wmat *w, const float *x, float *y, int64_t r0, int64_t r1, lc_isa isa);
/* The scalar reference twin: plain loops, f32 accumulation in column order
 * (per group for quantized formats: y += s * sum_g (u - z) x, or
 * s * sum_g u x + m * sum_g x for LC_QF_MIN). */
void lc_matvec_ref(const lc_wmat *w, const float *x, float *y, int64_t r0, int64_t r1);
/* Per-format entry points, exposed for tests: the kernel actually run for
 * (fmt, isa) - NULL when that level has no kernel of its own. */
typedef void (*lc_matvec_fn)(const lc_wmat *w, const float *x, float *y, int64_t r0, int64_t r1);
lc_matvec_fn lc_matvec_kernel(lc_wfmt fmt, lc_isa isa);
const char *lc_wfmt_name(lc_wfmt fmt);

/* Prefill: Y[i, r] = sum_c X[i, c] W[r, c] for i < n, r < rows
 * (Y row stride ldy).  F32 weights go straight to cblas_sgemm; other
 * formats are decoded to f32 in row panels of at most `scratch_floats`
 * elements (scratch is caller-provided, >= cols floats) and each panel is one
 * sgemm.  X is [n, cols] contiguous. */
void lc_matmul(const lc_wmat *w, const float *X, int n, float *Y, int ldy, float *scratch, size_t scratch_floats);

/* Sparse formats (libcompress/sparse.c): the view (called by
 * lc_wmat_from_tensor after validation), the row decoder and reference dot
 * product behind lc_wmat_rows_f32 / lc_matvec_ref, and the SIMD kernels
 * in the dispatch table (2:4 f32/f16/bf16, 2:4 4-bit, bitmask f32, bitmask
 * 4-bit; other patterns and value types fall back to the reference inside
 * them). */
int lc_sparse_wmat(lc_wmat *w, const lc_tensor *t);
void lc_sparse_row_f32(const lc_wmat *w, int64_t r, float *out);
float lc_sparse_dot_ref(const lc_wmat *w, int64_t r, const float *x);
void lc_matvec_nm_avx2(const lc_wmat *w, const float *x, float *y, int64_t r0, int64_t r1);
void lc_matvec_nm_avx512(const lc_wmat *w, const float *x, float *y, int64_t r0, int64_t r1);
void lc_matvec_nmq_avx2(const lc_wmat *w, const float *x, float *y, int64_t r0, int64_t r1);
void lc_matvec_nmq_avx512(const lc_wmat *w, const float *x, float *y, int64_t r0, int64_t r1);
void lc_matvec_mask_avx2(const lc_wmat *w, const float *x, float *y, int64_t r0, int64_t r1);
void lc_matvec_mask_avx512(const lc_wmat *w, const float *x, float *y, int64_t r0, int64_t r1);
void lc_matvec_maskq_avx2(const lc_wmat *w, const float *x, float *y, int64_t r0, int64_t r1);

/* Low-rank term (kernels/lowrank.c).  A matvec is two steps: t = B x once
 * (rank floats; lc_matvec on *w->lr_b), then, for any row range,
 * y[r] = base[r,:] . x + A[r,:] . t.  lc_lowrank_add does the second half:
 * y[r] += A[r,:] . t for r in [r0, r1).  lc_matvec and lc_matvec_ref on a
 * view with a term do both steps themselves (t recomputed per call, with
 * the same kernels, or the reference ones); the decode loop calls
 * lc_lowrank_add so that t is computed once per token.  Prefill
 * (lc_matmul) is base sgemm + T = X B^T + Y += T A^T. */
void lc_lowrank_add(const lc_wmat *w, const float *t, float *y, int64_t r0, int64_t r1, lc_isa isa);
void lc_lowrank_matvec(const lc_wmat *w, const float *x, float *y, int64_t r0, int64_t r1, lc_isa isa, int ref);
void lc_lowrank_rows_f32(const lc_wmat *w, int64_t r0, int64_t r1, float *out);
void lc_lowrank_matmul(const lc_wmat *w, const float *X, int n, float *Y, int ldy, float *scratch, size_t scratch_floats);
/* The view without its term (the base alone). */
static inline lc_wmat lc_wmat_base(const lc_wmat *w)
{
    lc_wmat b = *w;
    b.lr_rank = 0, b.lr_a = b.lr_b = NULL;
    return b;
}
/* Y[n, rows] = X W^T + beta Y, any format without a term (lc_matmul's body). */
void lc_matmul_beta(const lc_wmat *w, const float *X, int n, float *Y, int ldy, float beta, float *scratch,
                    size_t scratch_floats);

/* Small vector helpers with SIMD paths (isa capped by caller). */
float lc_vdot(const float *a, const float *b, int n, lc_isa isa);
/* y += a * x */
void lc_vaxpy(float *y, float a, const float *x, int n, lc_isa isa);

#endif
