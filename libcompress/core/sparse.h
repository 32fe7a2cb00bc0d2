#ifndef LC_SPARSE_H
#define LC_SPARSE_H

#include "core/lc.h"

/*
 * Sparse encodings (core/sparse.c): the cases of the lc_tensor_* functions (core/tensor.h) for LC_ENC_SPARSE_NM and
 * LC_ENC_SPARSE_MASK.  lc_sparse_validate checks the counts against the
 * shape and, when the arrays are present, their contents (positions
 * increasing inside each group, mask popcounts = row_ptr steps, no stray
 * padding bits), so that decoders and kernels may trust them. */
int lc_sparse_validate(const lc_tensor *t);
size_t lc_sparse_stored_bytes(const lc_tensor *t);
void lc_sparse_encoding_str(const lc_tensor *t, char *buf, size_t n);
int lc_sparse_to_f32(const lc_tensor *t, float *out);
int64_t lc_sparse_count_nonfinite(const lc_tensor *t);
/* Bits of one N:M position index: ceil(log2 m). */
int lc_sparse_idx_bits(int m);
/* Bytes of one row's N:M indices / kept codes, and of one mask row. */
size_t lc_sparse_nm_idx_row_bytes(int64_t cols, int n, int m);
size_t lc_sparse_mask_row_bytes(int64_t cols);

/* Quantized kept values for lc_sparse_encode: one code per dense position
 * (read at kept positions only) and the parameters of each group of
 * `group` dense positions [rows, cols/group]. */
typedef struct lc_sparse_qvals {
    int bits, group;
    lc_qform qform;
    const uint8_t *codes;
    const uint16_t *scales;
    const uint16_t *mins;   /* LC_QF_MIN */
    const uint8_t *zeros;   /* LC_QF_ZERO */
} lc_sparse_qvals;

/* Encode W [rows, cols] with the kept positions of keep (nonzero = kept):
 * n > 0 gives LC_ENC_SPARSE_NM (every group of m must keep exactly n),
 * n == 0 LC_ENC_SPARSE_MASK.  Values are W's as dt, or q's codes. */
int lc_sparse_encode(const char *name, int64_t rows, int64_t cols, const float *W, const uint8_t *keep, int n, int m,
                     lc_dtype dt, const lc_sparse_qvals *q, lc_tensor *out);

/* ---- composition (docs/FORMAT.md "Composition") -------------------------- */

/* The positions a matrix stores: keep [rows, cols] = 1 where t holds a
 * value (every position of a dense or quantized matrix), and for quantized
 * values (codes non-NULL) the code at each kept position (0 elsewhere). */
int lc_tensor_positions(const lc_tensor *t, uint8_t *keep, uint8_t *codes);

/* t's values at the positions keep marks, which t must all store, as a
 * sparse tensor: N:M when n > 0 (every group of m keeps exactly n), else a
 * bitmask.  Nothing is rounded again: float values keep their dtype, codes
 * and group parameters are copied as they are. */
int lc_tensor_restrict(const lc_tensor *t, const uint8_t *keep, int n, int m, lc_tensor *out);

#endif
