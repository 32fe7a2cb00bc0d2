/* The low-rank term of a weight view (kernels.h "Low-rank term"):
 * W = base + A B.  The product A B is never formed: decode computes
 * t = B x and then A t, prefill two sgemm calls. */
#include "kernels/kernels.h"

#include <string.h>

#include "core/lc_cblas.h"

#define ADD_CHUNK 64 /* rows of A t per pass (a stack buffer) */

static void mv(const lc_wmat *w, const float *x, float *y, int64_t r0, int64_t r1, lc_isa isa, int ref)
{
    if (ref)
        lc_matvec_ref(w, x, y, r0, r1);
    else
        lc_matvec(w, x, y, r0, r1, isa);
}

/* Rows [a, b) of a factor (dense or quantized: rows are uniform) as a
 * view of its own, so that its kernel writes rows 0.. of a small buffer. */
static lc_wmat factor_rows(const lc_wmat *f, int64_t a, int64_t b)
{
    lc_wmat v = *f;
    size_t g = (size_t)a * (size_t)f->gpr;
    v.rows = b - a;
    v.data = f->data + (size_t)a * f->row_bytes;
    v.scales = f->scales ? f->scales + g : NULL;
    v.mins = f->mins ? f->mins + g : NULL;
    v.zeros = f->zeros ? f->zeros + g : NULL;
    return v;
}

static void add_rows(const lc_wmat *w, const float *t, float *y, int64_t r0, int64_t r1, lc_isa isa, int ref)
{
    float buf[ADD_CHUNK];
    for (int64_t a = r0; a < r1; a += ADD_CHUNK) {
        int64_t b = a + ADD_CHUNK < r1 ? a + ADD_CHUNK : r1;
        lc_wmat part = factor_rows(w->lr_a, a, b);
        mv(&part, t, buf, 0, b - a, isa, ref);
        for (int64_t r = a; r < b; r++)
            y[r] += buf[r - a];
    }
}

void lc_lowrank_add(const lc_wmat *w, const float *t, float *y, int64_t r0, int64_t r1, lc_isa isa)
{
    add_rows(w, t, y, r0, r1, isa, 0);
}

void lc_lowrank_matvec(const lc_wmat *w, const float *x, float *y, int64_t r0, int64_t r1, lc_isa isa, int ref)
{
    float t[w->lr_rank];
    mv(w->lr_b, x, t, 0, w->lr_rank, isa, ref);
    lc_wmat base = lc_wmat_base(w);
    mv(&base, x, y, r0, r1, isa, ref);
    add_rows(w, t, y, r0, r1, isa, ref);
}

/* Exact decode, for the reference path and the embedding: base rows, plus
 * sum_j A[r, j] B[j, :] in column order of j. */
void lc_lowrank_rows_f32(const lc_wmat *w, int64_t r0, int64_t r1, float *out)
{
    int64_t n = w->cols, k = w->lr_rank;
    lc_wmat base = lc_wmat_base(w);
    lc_wmat_rows_f32(&base, r0, r1, out);
    float a[k], b[n];
    for (int64_t r = r0; r < r1; r++, out += n) {
        lc_wmat_rows_f32(w->lr_a, r, r + 1, a);
        for (int64_t j = 0; j < k; j++) {
            lc_wmat_rows_f32(w->lr_b, j, j + 1, b);
            for (int64_t c = 0; c < n; c++)
                out[c] += a[j] * b[c];
        }
    }
}

/* Y = X base^T, then T = X B^T [n', k] in chunks of rows of X that fit the
 * scratch beside a factor's decoding panel, and Y += T A^T. */
void lc_lowrank_matmul(const lc_wmat *w, const float *X, int n, float *Y, int ldy, float *scratch, size_t scratch_floats)
{
    lc_wmat base = lc_wmat_base(w);
    int64_t k = w->lr_rank, panel = w->cols > k ? w->cols : k;
    lc_matmul_beta(&base, X, n, Y, ldy, 0.0f, scratch, scratch_floats);
    int64_t chunk = scratch_floats > (size_t)(panel + k) ? (int64_t)((scratch_floats - (size_t)panel) / (size_t)k) : 0;
    if (chunk < 1) { /* no room for T: row by row through the decode kernels */
        for (int i = 0; i < n; i++) {
            float t[k];
            lc_matvec(w->lr_b, X + (size_t)i * (size_t)w->cols, t, 0, k, LC_ISA_SCALAR);
            add_rows(w, t, Y + (size_t)i * (size_t)ldy, 0, w->rows, LC_ISA_SCALAR, 0);
        }
        return;
    }
    float *T = scratch, *P = scratch + (size_t)chunk * (size_t)k;
    size_t pf = scratch_floats - (size_t)chunk * (size_t)k;
    for (int i0 = 0; i0 < n; i0 += (int)chunk) {
        int m = n - i0 < chunk ? n - i0 : (int)chunk;
        lc_matmul_beta(w->lr_b, X + (size_t)i0 * (size_t)w->cols, m, T, (int)k, 0.0f, P, pf);
        lc_matmul_beta(w->lr_a, T, m, Y + (size_t)i0 * (size_t)ldy, ldy, 1.0f, P, pf);
    }
}
