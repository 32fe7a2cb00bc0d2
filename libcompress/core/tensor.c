/* The encoding-aware tensor functions (core/tensor.h): sizes, validation,
 * allocation, copies and the reference decoder.  Sparse encodings are
 * delegated to core/sparse.c. */
#include "core/tensor.h"
#include "core/sparse.h"
#include "core/sparse_bits.h"
#include "core/lc_cblas.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t quant_row_bytes(int64_t cols, int bits) { return (size_t)((cols * bits + 7) / 8); }

static size_t base_stored_bytes(const lc_tensor *t);

size_t lc_tensor_stored_bytes(const lc_tensor *t)
{
    size_t n = t->enc == LC_ENC_LOWRANK ? 0 : base_stored_bytes(t);
    if (lc_tensor_has_lowrank(t) && t->lr_a && t->lr_b)
        n += base_stored_bytes(t->lr_a) + base_stored_bytes(t->lr_b);
    return n;
}

static size_t base_stored_bytes(const lc_tensor *t)
{
    if (t->enc == LC_ENC_DENSE)
        return t->data_bytes;
    if (lc_tensor_is_sparse(t))
        return lc_sparse_stored_bytes(t);
    size_t n = t->data_bytes + t->n_groups * 2;
    if (t->qform == LC_QF_MIN)
        n += t->n_groups * 2;
    if (t->qform == LC_QF_ZERO)
        n += t->n_groups;
    return n;
}

static const char *qform_name(lc_qform q)
{
    return q == LC_QF_SYM ? "sym" : q == LC_QF_MIN ? "min" : q == LC_QF_ZERO ? "zero" : "?";
}

static void base_encoding_str(const lc_tensor *t, char *buf, size_t n)
{
    if (t->enc == LC_ENC_DENSE)
        snprintf(buf, n, "%s", lc_dtype_name(t->dtype));
    else if (lc_tensor_is_sparse(t))
        lc_sparse_encoding_str(t, buf, n);
    else if (t->enc == LC_ENC_LOWRANK)
        snprintf(buf, n, "%s", "");
    else
        snprintf(buf, n, "q%d-%s-g%d", t->bits, qform_name(t->qform), t->group);
}

/* BASE+lrK, or lrK alone; factor values other than f32 in brackets
 * (A's, then B's when they differ): "q3-zero-g128+lr32[q8-sym-g32]". */
void lc_tensor_encoding_str(const lc_tensor *t, char *buf, size_t n)
{
    base_encoding_str(t, buf, n);
    if (!lc_tensor_has_lowrank(t) || !t->lr_a || !t->lr_b)
        return;
    char a[64], b[64], fac[140] = "";
    base_encoding_str(t->lr_a, a, sizeof a);
    base_encoding_str(t->lr_b, b, sizeof b);
    if (strcmp(a, b) != 0)
        snprintf(fac, sizeof fac, "[%s,%s]", a, b);
    else if (strcmp(a, "f32") != 0)
        snprintf(fac, sizeof fac, "[%s]", a);
    size_t used = strlen(buf);
    snprintf(buf + used, n > used ? n - used : 0, "%slr%d%s", used ? "+" : "", t->lr_rank, fac);
}

static int base_validate(const lc_tensor *t);

/* A factor of a low-rank term: 2-D, dense or quantized, no term of its own. */
static int factor_validate(const lc_tensor *t, const lc_tensor *f, const char *which, int64_t rows, int64_t cols)
{
    if (!f)
        return lc_error("tensor '%s': low-rank factor %s missing", t->name, which);
    if (f->ndim != 2 || f->shape[0] != rows || f->shape[1] != cols)
        return lc_error("tensor '%s': low-rank factor %s must be [%lld, %lld]", t->name, which, (long long)rows,
                        (long long)cols);
    if (f->enc != LC_ENC_DENSE && f->enc != LC_ENC_QUANT)
        return lc_error("tensor '%s': low-rank factor %s must be dense or quantized", t->name, which);
    if (f->lr_rank || f->lr_a || f->lr_b)
        return lc_error("tensor '%s': low-rank factor %s has a low-rank term of its own", t->name, which);
    return base_validate(f) ? lc_error_prefix("tensor '%s': low-rank factor %s", t->name, which) : 0;
}

int lc_tensor_validate(const lc_tensor *t)
{
    if (base_validate(t)) /* for LC_ENC_LOWRANK: the shape alone */
        return -1;
    if (t->enc == LC_ENC_LOWRANK && t->ndim != 2)
        return lc_error("tensor '%s': a low-rank tensor must be 2-D", t->name);
    if (!lc_tensor_has_lowrank(t)) {
        if (t->enc == LC_ENC_LOWRANK || t->lr_a || t->lr_b || t->lr_rank < 0)
            return lc_error("tensor '%s': low-rank rank %d", t->name, t->lr_rank);
        return 0;
    }
    if (t->ndim != 2)
        return lc_error("tensor '%s': a low-rank term needs a 2-D tensor", t->name);
    int64_t rows = t->shape[0], cols = t->shape[1];
    if (t->lr_rank > (rows < cols ? rows : cols))
        return lc_error("tensor '%s': rank %d above min(%lld, %lld)", t->name, t->lr_rank, (long long)rows,
                        (long long)cols);
    return factor_validate(t, t->lr_a, "A", rows, t->lr_rank) || factor_validate(t, t->lr_b, "B", t->lr_rank, cols);
}

static int base_validate(const lc_tensor *t)
{
    if (t->ndim < 1 || t->ndim > LC_MAX_DIMS)
        return lc_error("tensor '%s': rank %d outside [1, %d]", t->name, t->ndim, LC_MAX_DIMS);
    int64_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] <= 0 || t->shape[i] > ((int64_t)1 << 40))
            return lc_error("tensor '%s': dimension %d is %lld", t->name, i, (long long)t->shape[i]);
        if (numel > ((int64_t)1 << 40) / t->shape[i])
            return lc_error("tensor '%s': too many elements", t->name);
        numel *= t->shape[i];
    }
    if (t->enc == LC_ENC_DENSE) {
        if (t->dtype != LC_DT_F32 && t->dtype != LC_DT_F16 && t->dtype != LC_DT_BF16)
            return lc_error("tensor '%s': unknown dtype %d", t->name, (int)t->dtype);
        if (t->data_bytes != (size_t)numel * lc_dtype_size(t->dtype))
            return lc_error("tensor '%s': %zu data bytes, shape needs %zu", t->name, t->data_bytes,
                            (size_t)numel * lc_dtype_size(t->dtype));
        return 0;
    }
    if (lc_tensor_is_sparse(t))
        return lc_sparse_validate(t);
    if (t->enc == LC_ENC_LOWRANK)
        return 0;
    if (t->enc != LC_ENC_QUANT)
        return lc_error("tensor '%s': unknown encoding %d", t->name, (int)t->enc);
    if (t->bits < 2 || t->bits > 8)
        return lc_error("tensor '%s': %d-bit codes not supported (2..8)", t->name, t->bits);
    int64_t cols = lc_tensor_cols(t), rows = lc_tensor_rows(t);
    if (t->group < 1 || cols % t->group)
        return lc_error("tensor '%s': group %d does not divide the row length %lld", t->name, t->group,
                        (long long)cols);
    if (t->bits == 4 && cols % 32)
        return lc_error("tensor '%s': 4-bit rows must be a multiple of 32 (row %lld)", t->name, (long long)cols);
    if (t->qform != LC_QF_SYM && t->qform != LC_QF_MIN && t->qform != LC_QF_ZERO)
        return lc_error("tensor '%s': unknown quantization form %d", t->name, (int)t->qform);
    if (t->data_bytes != (size_t)rows * quant_row_bytes(cols, t->bits))
        return lc_error("tensor '%s': %zu code bytes, shape needs %zu", t->name, t->data_bytes,
                        (size_t)rows * quant_row_bytes(cols, t->bits));
    if (t->n_groups != (size_t)(rows * (cols / t->group)))
        return lc_error("tensor '%s': %zu groups, shape needs %lld", t->name, t->n_groups,
                        (long long)(rows * (cols / t->group)));
    return 0;
}

static int64_t shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

int lc_tensor_alloc_dense(lc_tensor *t, const char *name, lc_dtype dt, int ndim, const int64_t *shape)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    for (int i = 0; i < ndim && i < LC_MAX_DIMS; i++)
        t->shape[i] = shape[i];
    t->enc = LC_ENC_DENSE;
    t->dtype = dt;
    t->data_bytes = (ndim >= 1 && ndim <= LC_MAX_DIMS) ? (size_t)shape_numel(ndim, shape) * lc_dtype_size(dt) : 0;
    if (lc_tensor_validate(t))
        return -1;
    t->data = lc_malloc(t->data_bytes);
    return t->data ? 0 : -1;
}

int lc_tensor_alloc_quant(lc_tensor *t, const char *name, int64_t rows, int64_t cols, int bits, int group,
                          lc_qform qf)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = 2;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->enc = LC_ENC_QUANT;
    t->bits = bits;
    t->group = group;
    t->qform = qf;
    if (rows > 0 && cols > 0 && bits > 0 && group > 0) {
        t->data_bytes = (size_t)rows * quant_row_bytes(cols, bits);
        t->n_groups = (size_t)(rows * (cols / group));
    }
    if (lc_tensor_validate(t))
        return -1;
    t->data = lc_malloc(t->data_bytes);
    t->scales = lc_malloc(t->n_groups * 2);
    if (qf == LC_QF_MIN)
        t->mins = lc_malloc(t->n_groups * 2);
    if (qf == LC_QF_ZERO)
        t->zeros = lc_malloc(t->n_groups);
    if (!t->data || !t->scales || (qf == LC_QF_MIN && !t->mins) || (qf == LC_QF_ZERO && !t->zeros)) {
        lc_tensor_release(t);
        return -1;
    }
    return 0;
}

static void *dup_bytes(const void *p, size_t n, int *bad)
{
    if (!p || !n)
        return NULL;
    void *q = lc_malloc(n);
    if (q)
        memcpy(q, p, n);
    else
        *bad = 1;
    return q;
}

int lc_tensor_copy(lc_tensor *dst, const lc_tensor *src)
{
    int bad = 0;
    *dst = *src;
    dst->data = dup_bytes(src->data, src->data_bytes, &bad);
    dst->scales = dup_bytes(src->scales, src->n_groups * 2, &bad);
    dst->mins = dup_bytes(src->mins, src->n_groups * 2, &bad);
    dst->zeros = dup_bytes(src->zeros, src->n_groups, &bad);
    dst->sp_idx = dup_bytes(src->sp_idx, src->sp_idx_bytes, &bad);
    dst->sp_row_ptr = src->sp_row_ptr ? dup_bytes(src->sp_row_ptr, ((size_t)lc_tensor_rows(src) + 1) * 8, &bad) : NULL;
    dst->lr_a = dst->lr_b = NULL;
    const lc_tensor *fs[2] = {src->lr_a, src->lr_b};
    lc_tensor **fd[2] = {&dst->lr_a, &dst->lr_b};
    for (int i = 0; i < 2 && !bad; i++)
        if (fs[i] && (!(*fd[i] = lc_calloc(1, sizeof(lc_tensor))) || lc_tensor_copy(*fd[i], fs[i])))
            bad = 1; /* a failed copy has released itself; the zeroed struct is freed below */
    if (bad) {
        lc_tensor_release(dst);
        return -1;
    }
    return 0;
}

static int base_to_f32(const lc_tensor *t, float *out);

int lc_tensor_to_f32(const lc_tensor *t, float *out)
{
    if (lc_tensor_validate(t))
        return -1;
    if (t->enc == LC_ENC_LOWRANK)
        memset(out, 0, (size_t)lc_tensor_numel(t) * sizeof *out);
    else if (base_to_f32(t, out))
        return -1;
    if (!lc_tensor_has_lowrank(t))
        return 0;
    /* out += A B, one sgemm over the decoded factors */
    int64_t rows = t->shape[0], cols = t->shape[1], k = t->lr_rank;
    float *a = lc_malloc((size_t)(rows * k) * sizeof *a), *b = lc_malloc((size_t)(k * cols) * sizeof *b);
    int rc = -1;
    if (a && b && base_to_f32(t->lr_a, a) == 0 && base_to_f32(t->lr_b, b) == 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)cols, (int)k, 1.0f, a, (int)k, b,
                    (int)cols, 1.0f, out, (int)cols);
        rc = 0;
    }
    free(a), free(b);
    return rc;
}

static int base_to_f32(const lc_tensor *t, float *out)
{
    int64_t n = lc_tensor_numel(t);
    if (t->enc == LC_ENC_DENSE) {
        if (t->dtype == LC_DT_F32) {
            memcpy(out, t->data, (size_t)n * 4);
        } else {
            const uint16_t *h = t->data;
            if (t->dtype == LC_DT_F16)
                lc_f16_to_f32_n(h, out, (size_t)n);
            else
                for (int64_t i = 0; i < n; i++)
                    out[i] = lc_bf16_to_f32(h[i]);
        }
        return 0;
    }
    if (lc_tensor_is_sparse(t))
        return lc_sparse_to_f32(t, out);
    int64_t rows = lc_tensor_rows(t), cols = lc_tensor_cols(t), gpr = cols / t->group;
    size_t rb = quant_row_bytes(cols, t->bits);
    int half = 1 << (t->bits - 1);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = (const uint8_t *)t->data + (size_t)r * rb;
        for (int64_t g = 0; g < gpr; g++) {
            size_t gi = (size_t)(r * gpr + g);
            float s = lc_f16_to_f32(t->scales[gi]);
            float m = t->qform == LC_QF_MIN ? lc_f16_to_f32(t->mins[gi]) : 0.f;
            int z = t->qform == LC_QF_SYM ? half : t->qform == LC_QF_ZERO ? t->zeros[gi] : 0;
            for (int64_t j = g * t->group; j < (g + 1) * t->group; j++) {
                int u = lc_quant_code(row, t->bits, j);
                out[r * cols + j] = t->qform == LC_QF_MIN ? s * (float)u + m : s * (float)(u - z);
            }
        }
    }
    return 0;
}

static int64_t base_count_nonfinite(const lc_tensor *t);

int64_t lc_tensor_count_nonfinite(const lc_tensor *t)
{
    int64_t bad = t->enc == LC_ENC_LOWRANK ? 0 : base_count_nonfinite(t);
    if (t->lr_a)
        bad += base_count_nonfinite(t->lr_a);
    if (t->lr_b)
        bad += base_count_nonfinite(t->lr_b);
    return bad;
}

static int64_t base_count_nonfinite(const lc_tensor *t)
{
    int64_t bad = 0;
    if (t->enc == LC_ENC_DENSE) {
        int64_t n = lc_tensor_numel(t);
        /* f16: exponent 0x1f; bf16: exponent 0xff */
        if (t->dtype == LC_DT_F32)
            return (int64_t)lc_count_nonfinite_f32(t->data, (size_t)n);
        return (int64_t)lc_count_nonfinite_h16(t->data, (size_t)n, t->dtype == LC_DT_F16 ? 0x7c00 : 0x7f80);
    }
    if (lc_tensor_is_sparse(t))
        return lc_sparse_count_nonfinite(t);
    for (size_t i = 0; i < t->n_groups; i++) {
        bad += (t->scales[i] & 0x7c00) == 0x7c00;
        if (t->mins)
            bad += (t->mins[i] & 0x7c00) == 0x7c00;
    }
    return bad;
}

int lc_tensor_densify(const lc_tensor *t, lc_tensor *out)
{
    memset(out, 0, sizeof *out);
    if ((t->enc != LC_ENC_SPARSE_NM && t->enc != LC_ENC_SPARSE_MASK) || !t->bits)
        return lc_error("tensor '%s': not sparse with quantized values", t->name);
    if (t->qform == LC_QF_MIN)
        return lc_error("tensor '%s': a min-offset grid has no code for 0", t->name);
    int64_t rows = lc_tensor_rows(t), cols = lc_tensor_cols(t);
    size_t n = (size_t)(rows * cols);
    uint8_t *keep = lc_malloc(n), *codes = lc_malloc(n);
    int rc = -1;
    if (!keep || !codes || lc_tensor_positions(t, keep, codes) ||
        lc_tensor_alloc_quant(out, t->name, rows, cols, t->bits, t->group, t->qform))
        goto done;
    memcpy(out->scales, t->scales, t->n_groups * 2);
    if (t->qform == LC_QF_ZERO)
        memcpy(out->zeros, t->zeros, t->n_groups);
    size_t rb = quant_row_bytes(cols, t->bits);
    int64_t gpr = cols / t->group;
    memset(out->data, 0, out->data_bytes);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            size_t i = (size_t)(r * cols + c);
            unsigned u = keep[i] ? codes[i]
                         : t->qform == LC_QF_SYM ? 1u << (t->bits - 1)
                                                 : t->zeros[(size_t)(r * gpr + c / t->group)];
            code_put((uint8_t *)out->data + (size_t)r * rb, t->bits, t->bits == 4, (uint64_t)c, u);
        }
    rc = 0;
done:
    if (rc)
        lc_tensor_release(out);
    free(keep), free(codes);
    return rc;
}
