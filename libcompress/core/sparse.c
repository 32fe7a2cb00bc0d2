/*
 * Sparse tensor encodings (docs/FORMAT.md "sparse_nm", "sparse_mask"):
 * sizes, validation, the reference decoder and the encoder used by lc-prune.
 * The weight-matrix kernels are in kernels/sparse_kernels.c.
 *
 * Layout reminders (lc.h):
 *   N:M   - row r keeps K = cols*N/M values; value k sits in column
 *           (k / N) * M + idx[r][k], idx an idx_bits-wide LSB-first bit
 *           stream per row.  Values: dtype elements [rows, K], or codes
 *           packed per row (q4x32 when bits == 4 and K % 32 == 0, bytes for
 *           8 bits, the LSB-first bit stream otherwise).
 *   mask  - bit c%8 of mask byte r*ceil(cols/8) + c/8 set = column c kept;
 *           row r's kept values are [row_ptr[r], row_ptr[r+1]) of one
 *           array (dtype elements, or one LSB-first code stream).
 *   Quantized values: the parameters of group g cover the dense columns
 *   [g*group, (g+1)*group) of a row, whichever of them are kept.
 */
#include "core/sparse.h"
#include "core/sparse_bits.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- sizes ---------------------------------------------------------------- */

int lc_sparse_idx_bits(int m) { return m <= 2 ? 1 : m <= 4 ? 2 : m <= 8 ? 3 : 4; }

size_t lc_sparse_nm_idx_row_bytes(int64_t cols, int n, int m)
{
    return m > 0 ? bits_bytes(cols / m * n, lc_sparse_idx_bits(m)) : 0;
}

size_t lc_sparse_mask_row_bytes(int64_t cols) { return (size_t)((cols + 7) / 8); }

/* Kept values per row of an N:M tensor. */
static int64_t nm_kept(const lc_tensor *t) { return lc_tensor_cols(t) / t->sp_m * t->sp_n; }

static size_t values_bytes(const lc_tensor *t)
{
    int64_t rows = lc_tensor_rows(t);
    if (!t->bits)
        return (size_t)t->sp_nnz * lc_dtype_size(t->dtype);
    return t->enc == LC_ENC_SPARSE_NM ? (size_t)rows * bits_bytes(nm_kept(t), t->bits) : bits_bytes(t->sp_nnz, t->bits);
}

size_t lc_sparse_stored_bytes(const lc_tensor *t)
{
    size_t n = t->data_bytes + t->sp_idx_bytes;
    if (t->enc == LC_ENC_SPARSE_MASK)
        n += ((size_t)lc_tensor_rows(t) + 1) * 8;
    if (t->bits)
        n += t->n_groups * 2 + (t->qform == LC_QF_MIN ? t->n_groups * 2 : 0) + (t->qform == LC_QF_ZERO ? t->n_groups : 0);
    return n;
}

void lc_sparse_encoding_str(const lc_tensor *t, char *buf, size_t n)
{
    char pat[24], val[32];
    if (t->enc == LC_ENC_SPARSE_NM)
        snprintf(pat, sizeof pat, "%d:%d", t->sp_n, t->sp_m);
    else
        snprintf(pat, sizeof pat, "mask");
    if (t->bits)
        snprintf(val, sizeof val, "q%d-%s-g%d", t->bits,
                 t->qform == LC_QF_SYM ? "sym" : t->qform == LC_QF_MIN ? "min" : "zero", t->group);
    else
        snprintf(val, sizeof val, "%s", lc_dtype_name(t->dtype));
    snprintf(buf, n, "%s+%s", pat, val);
}

/* ---- validation ----------------------------------------------------------------- */

int lc_sparse_validate(const lc_tensor *t)
{
    const char *nm = t->name;
    if (t->ndim != 2)
        return lc_error("tensor '%s': sparse tensors must be 2-D (rank %d)", nm, t->ndim);
    int64_t rows = t->shape[0], cols = t->shape[1];
    if (rows > ((int64_t)1 << 32) || cols > ((int64_t)1 << 32))
        return lc_error("tensor '%s': bad shape [%lld, %lld]", nm, (long long)rows, (long long)cols);
    if (t->bits == 0) {
        if (t->dtype != LC_DT_F32 && t->dtype != LC_DT_F16 && t->dtype != LC_DT_BF16)
            return lc_error("tensor '%s': unknown dtype %d", nm, (int)t->dtype);
        if (t->n_groups)
            return lc_error("tensor '%s': scales on unquantized sparse values", nm);
    } else {
        if (t->bits < 2 || t->bits > 8)
            return lc_error("tensor '%s': %d-bit codes not supported (2..8)", nm, t->bits);
        if (t->group < 1 || cols % t->group)
            return lc_error("tensor '%s': group %d does not divide the row length %lld", nm, t->group, (long long)cols);
        if (t->qform != LC_QF_SYM && t->qform != LC_QF_MIN && t->qform != LC_QF_ZERO)
            return lc_error("tensor '%s': unknown quantization form %d", nm, (int)t->qform);
        if (t->n_groups != (size_t)(rows * (cols / t->group)))
            return lc_error("tensor '%s': %zu groups, shape needs %lld", nm, t->n_groups,
                            (long long)(rows * (cols / t->group)));
    }
    if (t->enc == LC_ENC_SPARSE_NM) {
        if (t->sp_m < 2 || t->sp_m > 16 || t->sp_n < 1 || t->sp_n >= t->sp_m)
            return lc_error("tensor '%s': N:M pattern %d:%d invalid (1 <= N < M <= 16)", nm, t->sp_n, t->sp_m);
        if (cols % t->sp_m)
            return lc_error("tensor '%s': M = %d does not divide the row length %lld", nm, t->sp_m, (long long)cols);
        if (t->bits && t->group % t->sp_m)
            return lc_error("tensor '%s': group %d is not a multiple of M = %d", nm, t->group, t->sp_m);
        if (t->sp_nnz != rows * nm_kept(t))
            return lc_error("tensor '%s': %lld kept values, %d:%d needs %lld", nm, (long long)t->sp_nnz, t->sp_n,
                            t->sp_m, (long long)(rows * nm_kept(t)));
        if (t->sp_idx_bytes != (size_t)rows * lc_sparse_nm_idx_row_bytes(cols, t->sp_n, t->sp_m))
            return lc_error("tensor '%s': %zu index bytes, shape needs %zu", nm, t->sp_idx_bytes,
                            (size_t)rows * lc_sparse_nm_idx_row_bytes(cols, t->sp_n, t->sp_m));
    } else if (t->enc == LC_ENC_SPARSE_MASK) {
        if (t->sp_nnz < 0 || t->sp_nnz > rows * cols)
            return lc_error("tensor '%s': %lld kept values outside [0, %lld]", nm, (long long)t->sp_nnz,
                            (long long)(rows * cols));
        if (t->sp_idx_bytes != (size_t)rows * lc_sparse_mask_row_bytes(cols))
            return lc_error("tensor '%s': %zu mask bytes, shape needs %zu", nm, t->sp_idx_bytes,
                            (size_t)rows * lc_sparse_mask_row_bytes(cols));
    } else {
        return lc_error("tensor '%s': not a sparse encoding (%d)", nm, (int)t->enc);
    }
    if (t->data_bytes != values_bytes(t))
        return lc_error("tensor '%s': %zu value bytes, %lld kept values need %zu", nm, t->data_bytes,
                        (long long)t->sp_nnz, values_bytes(t));
    /* contents, when present */
    if (t->zeros)
        for (size_t i = 0; i < t->n_groups; i++)
            if (t->zeros[i] >= (1u << t->bits))
                return lc_error("tensor '%s': zero point %u out of range for %d bits", nm, t->zeros[i], t->bits);
    if (!t->sp_idx)
        return 0;
    if (t->enc == LC_ENC_SPARSE_NM) {
        int n = t->sp_n, m = t->sp_m, ib = lc_sparse_idx_bits(m);
        int64_t K = nm_kept(t);
        size_t rb = lc_sparse_nm_idx_row_bytes(cols, n, m);
        for (int64_t r = 0; r < rows; r++) {
            const uint8_t *row = t->sp_idx + (size_t)r * rb;
            for (int64_t k = 0; k < K; k++) {
                unsigned p = bits_get(row, ib, (uint64_t)k), prev = k % n ? bits_get(row, ib, (uint64_t)k - 1) : 0;
                if (p >= (unsigned)m || (k % n && p <= prev))
                    return lc_error("tensor '%s': row %lld, group %lld: position %u invalid (positions must be "
                                    "increasing and below M = %d)",
                                    nm, (long long)r, (long long)(k / n), p, m);
            }
            if (!pad_clear(row, rb, (uint64_t)K * (uint64_t)ib))
                return lc_error("tensor '%s': row %lld: stray bits after the last index", nm, (long long)r);
        }
        return 0;
    }
    if (!t->sp_row_ptr)
        return lc_error("tensor '%s': mask without row offsets", nm);
    size_t rb = lc_sparse_mask_row_bytes(cols);
    if (t->sp_row_ptr[0] != 0)
        return lc_error("tensor '%s': row_ptr[0] = %llu, not 0", nm, (unsigned long long)t->sp_row_ptr[0]);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = t->sp_idx + (size_t)r * rb;
        uint64_t a = t->sp_row_ptr[r], b = t->sp_row_ptr[r + 1], pc = 0;
        if (b < a || b > (uint64_t)t->sp_nnz)
            return lc_error("tensor '%s': row_ptr[%lld] = %llu out of range (previous %llu, %lld values)", nm,
                            (long long)r + 1, (unsigned long long)b, (unsigned long long)a, (long long)t->sp_nnz);
        for (size_t i = 0; i < rb; i++)
            pc += (uint64_t)__builtin_popcount(row[i]);
        if (!pad_clear(row, rb, (uint64_t)cols))
            return lc_error("tensor '%s': row %lld: mask bits set beyond the last column", nm, (long long)r);
        if (pc != b - a)
            return lc_error("tensor '%s': row %lld: mask keeps %llu values, row_ptr gives %llu", nm, (long long)r,
                            (unsigned long long)pc, (unsigned long long)(b - a));
    }
    if (t->sp_row_ptr[rows] != (uint64_t)t->sp_nnz)
        return lc_error("tensor '%s': row_ptr ends at %llu, %lld values stored", nm,
                        (unsigned long long)t->sp_row_ptr[rows], (long long)t->sp_nnz);
    return 0;
}

/* ---- reference decoder ---------------------------------------------------------- */

/* Dequantized value of code u in group gi (lc.h lc_qform). */
static inline float deq(const lc_tensor *t, size_t gi, int u)
{
    float s = lc_f16_to_f32(t->scales[gi]);
    if (t->qform == LC_QF_MIN)
        return s * (float)u + lc_f16_to_f32(t->mins[gi]);
    int z = t->qform == LC_QF_SYM ? 1 << (t->bits - 1) : t->zeros[gi];
    return s * (float)(u - z);
}

/* Every kept position of a valid, loaded sparse tensor, row by row: its row,
 * column, index among the stored values (into `values` for float values)
 * and its code (quantized values; 0 otherwise). */
typedef void (*kept_fn)(void *ud, int64_t r, int64_t c, uint64_t v, int code);

static void for_each_kept(const lc_tensor *t, kept_fn fn, void *ud)
{
    int64_t rows = t->shape[0], cols = t->shape[1];
    if (t->enc == LC_ENC_SPARSE_NM) {
        int n = t->sp_n, m = t->sp_m, ib = lc_sparse_idx_bits(m);
        int64_t K = nm_kept(t);
        size_t irb = lc_sparse_nm_idx_row_bytes(cols, n, m), vrb = t->bits ? bits_bytes(K, t->bits) : 0;
        int q4 = nm_q4x32(t->bits, K);
        for (int64_t r = 0; r < rows; r++) {
            const uint8_t *ir = t->sp_idx + (size_t)r * irb, *vr = (const uint8_t *)t->data + (size_t)r * vrb;
            for (int64_t k = 0; k < K; k++)
                fn(ud, r, (k / n) * m + bits_get(ir, ib, (uint64_t)k), (uint64_t)(r * K + k),
                   t->bits ? code_get(vr, t->bits, q4, (uint64_t)k) : 0);
        }
        return;
    }
    size_t mrb = lc_sparse_mask_row_bytes(cols);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *mr = t->sp_idx + (size_t)r * mrb;
        uint64_t v = t->sp_row_ptr[r];
        for (int64_t c = 0; c < cols; c++)
            if (mr[c >> 3] >> (c & 7) & 1) {
                fn(ud, r, c, v, t->bits ? code_get(t->data, t->bits, 0, v) : 0);
                v++;
            }
    }
}

typedef struct {
    const lc_tensor *t;
    float *out;
} to_f32_ctx;

static void put_f32(void *ud, int64_t r, int64_t c, uint64_t v, int code)
{
    const to_f32_ctx *x = ud;
    const lc_tensor *t = x->t;
    int64_t cols = t->shape[1];
    x->out[r * cols + c] = t->bits ? deq(t, (size_t)(r * (cols / t->group) + c / t->group), code)
                                   : elem_f32(t->data, t->dtype, v);
}

int lc_sparse_to_f32(const lc_tensor *t, float *out)
{
    if (lc_sparse_validate(t))
        return -1;
    if (!t->sp_idx || (!t->data && t->data_bytes))
        return lc_error("tensor '%s': sparse arrays not loaded", t->name);
    memset(out, 0, (size_t)(t->shape[0] * t->shape[1]) * sizeof *out);
    to_f32_ctx x = {t, out};
    for_each_kept(t, put_f32, &x);
    return 0;
}

/* ---- composition ------------------------------------------------------------------- */

typedef struct {
    int64_t cols;
    uint8_t *keep, *codes;
} positions_ctx;

static void put_position(void *ud, int64_t r, int64_t c, uint64_t v, int code)
{
    const positions_ctx *x = ud;
    x->keep[r * x->cols + c] = 1;
    if (x->codes)
        x->codes[r * x->cols + c] = (uint8_t)code;
}

int lc_tensor_positions(const lc_tensor *t, uint8_t *keep, uint8_t *codes)
{
    if (t->ndim != 2)
        return lc_error("tensor '%s' is not a matrix", t->name);
    int64_t rows = t->shape[0], cols = t->shape[1];
    size_t n = (size_t)(rows * cols);
    int quant = lc_tensor_is_quantized(t);
    if (t->enc == LC_ENC_DENSE || t->enc == LC_ENC_QUANT) {
        memset(keep, 1, n);
        if (codes && quant) {
            size_t rb = (size_t)((cols * t->bits + 7) / 8);
            for (int64_t r = 0; r < rows; r++)
                for (int64_t c = 0; c < cols; c++)
                    codes[r * cols + c] = (uint8_t)lc_quant_code((const uint8_t *)t->data + (size_t)r * rb, t->bits, c);
        }
        return 0;
    }
    if (lc_sparse_validate(t))
        return -1;
    if (!t->sp_idx || (!t->data && t->data_bytes))
        return lc_error("tensor '%s': sparse arrays not loaded", t->name);
    memset(keep, 0, n);
    if (codes)
        memset(codes, 0, n);
    positions_ctx x = {cols, keep, quant ? codes : NULL};
    for_each_kept(t, put_position, &x);
    return 0;
}

int lc_tensor_restrict(const lc_tensor *t, const uint8_t *keep, int n, int m, lc_tensor *out)
{
    memset(out, 0, sizeof *out);
    if (t->ndim != 2)
        return lc_error("tensor '%s' is not a matrix", t->name);
    int64_t rows = t->shape[0], cols = t->shape[1];
    size_t cnt = (size_t)(rows * cols);
    int quant = lc_tensor_is_quantized(t);
    if (quant && t->group <= 0)
        return lc_error("tensor '%s': quantized without a group size", t->name);
    uint8_t *have = lc_malloc(cnt), *codes = quant ? lc_malloc(cnt) : NULL;
    float *W = quant ? NULL : lc_malloc(cnt * sizeof *W);
    int rc = -1;
    if (!have || (quant && !codes) || (!quant && !W))
        goto out;
    if (lc_tensor_positions(t, have, codes))
        goto out;
    for (size_t i = 0; i < cnt; i++)
        if (keep[i] && !have[i]) {
            lc_error("tensor '%s': position (%lld, %lld) is kept but the input does not store it", t->name,
                     (long long)(i / (size_t)cols), (long long)(i % (size_t)cols));
            goto out;
        }
    if (quant) {
        lc_sparse_qvals qv = {t->bits, t->group, t->qform, codes, t->scales, t->mins, t->zeros};
        rc = lc_sparse_encode(t->name, rows, cols, NULL, keep, n, m, LC_DT_F32, &qv, out);
    } else {
        /* the values of a float tensor go back to their own dtype exactly */
        if (t->enc == LC_ENC_DENSE)
            for (size_t i = 0; i < cnt; i++)
                W[i] = elem_f32(t->data, t->dtype, i);
        else if (lc_sparse_to_f32(t, W))
            goto out;
        rc = lc_sparse_encode(t->name, rows, cols, W, keep, n, m, t->dtype, NULL, out);
    }
out:
    free(have), free(codes), free(W);
    return rc;
}

int64_t lc_sparse_count_nonfinite(const lc_tensor *t)
{
    int64_t bad = 0;
    if (t->bits) {
        for (size_t i = 0; t->scales && i < t->n_groups; i++) {
            bad += (t->scales[i] & 0x7c00) == 0x7c00;
            if (t->mins)
                bad += (t->mins[i] & 0x7c00) == 0x7c00;
        }
        return bad;
    }
    if (!t->data)
        return 0;
    if (t->dtype == LC_DT_F32) {
        const float *f = t->data;
        for (int64_t i = 0; i < t->sp_nnz; i++)
            bad += !isfinite(f[i]);
    } else {
        const uint16_t *h = t->data;
        uint16_t mask = t->dtype == LC_DT_F16 ? 0x7c00 : 0x7f80;
        for (int64_t i = 0; i < t->sp_nnz; i++)
            bad += (h[i] & mask) == mask;
    }
    return bad;
}

/* ---- encoder ----------------------------------------------------------------------- */

int lc_sparse_encode(const char *name, int64_t rows, int64_t cols, const float *W, const uint8_t *keep, int n, int m,
                     lc_dtype dt, const lc_sparse_qvals *q, lc_tensor *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    if (rows < 1 || cols < 1 || rows > ((int64_t)1 << 32) || cols > ((int64_t)1 << 32) ||
        rows > ((int64_t)1 << 40) / cols)
        return lc_error("tensor '%s': %lld x %lld out of range", name, (long long)rows, (long long)cols);
    out->ndim = 2;
    out->shape[0] = rows, out->shape[1] = cols;
    out->enc = n ? LC_ENC_SPARSE_NM : LC_ENC_SPARSE_MASK;
    out->dtype = dt;
    out->sp_n = n, out->sp_m = n ? m : 0;
    if (q) {
        out->bits = q->bits, out->group = q->group, out->qform = q->qform;
        out->n_groups = q->group > 0 && cols % q->group == 0 ? (size_t)(rows * (cols / q->group)) : 0;
    }
    int64_t nnz = 0;
    for (int64_t i = 0; i < rows * cols; i++)
        nnz += keep[i] != 0;
    out->sp_nnz = nnz;
    if (n) {
        if (m < 2 || m > 16 || n >= m || cols % m)
            return lc_error("tensor '%s': N:M %d:%d does not fit rows of %lld", name, n, m, (long long)cols);
        for (int64_t g = 0; g < rows * cols / m; g++) {
            int cnt = 0;
            for (int j = 0; j < m; j++)
                cnt += keep[g * m + j] != 0;
            if (cnt != n)
                return lc_error("tensor '%s': group %lld keeps %d values, %d:%d needs %d", name, (long long)g, cnt, n, m,
                                n);
        }
        out->sp_idx_bytes = (size_t)rows * lc_sparse_nm_idx_row_bytes(cols, n, m);
    } else {
        out->sp_idx_bytes = (size_t)rows * lc_sparse_mask_row_bytes(cols);
    }
    out->data_bytes = values_bytes(out);
    if (lc_sparse_validate(out))
        return -1;
    int bits = out->bits;
    size_t ng = out->n_groups;
    out->data = out->data_bytes ? lc_calloc(out->data_bytes, 1) : NULL;
    out->sp_idx = lc_calloc(out->sp_idx_bytes, 1);
    if (!n)
        out->sp_row_ptr = lc_malloc(((size_t)rows + 1) * 8);
    if (bits) {
        out->scales = lc_malloc(ng * 2);
        if (out->qform == LC_QF_MIN)
            out->mins = lc_malloc(ng * 2);
        if (out->qform == LC_QF_ZERO)
            out->zeros = lc_malloc(ng);
    }
    if ((out->data_bytes && !out->data) || !out->sp_idx || (!n && !out->sp_row_ptr) || (bits && !out->scales) ||
        (out->qform == LC_QF_MIN && bits && !out->mins) || (out->qform == LC_QF_ZERO && bits && !out->zeros)) {
        lc_tensor_release(out);
        return -1;
    }
    if (bits) {
        memcpy(out->scales, q->scales, ng * 2);
        if (out->mins)
            memcpy(out->mins, q->mins, ng * 2);
        if (out->zeros)
            memcpy(out->zeros, q->zeros, ng);
    }
    int maxq = bits ? (1 << bits) - 1 : 0;
    uint64_t v = 0; /* kept value index (row-major) */
    int64_t K = n ? cols / m * n : 0;
    size_t irb = n ? lc_sparse_nm_idx_row_bytes(cols, n, m) : lc_sparse_mask_row_bytes(cols);
    size_t vrb = n && bits ? bits_bytes(K, bits) : 0;
    int ib = n ? lc_sparse_idx_bits(m) : 0, q4 = n ? nm_q4x32(bits, K) : 0;
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *ir = out->sp_idx + (size_t)r * irb;
        if (!n)
            out->sp_row_ptr[r] = v;
        int64_t k = 0; /* kept index within the row */
        for (int64_t c = 0; c < cols; c++) {
            size_t i = (size_t)(r * cols + c);
            if (!keep[i])
                continue;
            if (n)
                bits_put(ir, ib, (uint64_t)k, (unsigned)(c % m));
            else
                ir[c >> 3] |= (uint8_t)(1u << (c & 7));
            if (bits) {
                if (q->codes[i] > maxq) {
                    lc_tensor_release(out);
                    return lc_error("tensor '%s': code %u out of range for %d bits", name, q->codes[i], bits);
                }
                if (n)
                    code_put((uint8_t *)out->data + (size_t)r * vrb, bits, q4, (uint64_t)k, q->codes[i]);
                else
                    code_put(out->data, bits, 0, v, q->codes[i]);
            } else if (dt == LC_DT_F32) {
                ((float *)out->data)[v] = W[i];
            } else {
                ((uint16_t *)out->data)[v] = dt == LC_DT_F16 ? lc_f32_to_f16(W[i]) : lc_f32_to_bf16(W[i]);
            }
            k++, v++;
        }
    }
    if (!n)
        out->sp_row_ptr[rows] = v;
    if (lc_sparse_validate(out)) {
        lc_tensor_release(out);
        return -1;
    }
    return 0;
}
