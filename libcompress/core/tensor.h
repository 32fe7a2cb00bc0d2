/*
 * Encoding-aware tensor functions: what a tensor of any encoding (dense,
 * quantized, sparse; core/lc.h) occupies, whether it is consistent, how it
 * decodes to f32.  Sparse cases are implemented in core/sparse.c.
 */
#ifndef LC_TENSOR_H
#define LC_TENSOR_H

#include "core/lc.h"

/* Bytes the tensor occupies in the container (data + scales + mins + zeros). */
size_t lc_tensor_stored_bytes(const lc_tensor *t);
/* Human-readable encoding ("f32", "bf16", "q4 sym g32", ...). */
void lc_tensor_encoding_str(const lc_tensor *t, char *buf, size_t n);
/* Check internal consistency: byte counts against shape/encoding. */
int lc_tensor_validate(const lc_tensor *t);
/* Set up a dense tensor with freshly allocated (uninitialised) storage. */
int lc_tensor_alloc_dense(lc_tensor *t, const char *name, lc_dtype dt, int ndim, const int64_t *shape);
/* Set up a quantized tensor (2-D) with allocated codes/scales[/mins|zeros]. */
int lc_tensor_alloc_quant(lc_tensor *t, const char *name, int64_t rows, int64_t cols,
                          int bits, int group, lc_qform qf);
/* A sparse tensor with quantized values (sym or zero-point form) as the
 * dense quantized tensor of the same grid: kept codes as they are, the code
 * of 0 at pruned positions, so it decodes to exactly the same values. */
int lc_tensor_densify(const lc_tensor *t, lc_tensor *out);
/* Deep copy (dst is overwritten, not released). */
int lc_tensor_copy(lc_tensor *dst, const lc_tensor *src);
/* Decode any encoding into f32 (rows*cols floats, caller-allocated). */
int lc_tensor_to_f32(const lc_tensor *t, float *out);
/* Count NaN/Inf values in the decoded tensor (dense or quantized scales). */
int64_t lc_tensor_count_nonfinite(const lc_tensor *t);

#endif
