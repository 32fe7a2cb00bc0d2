/*
 * Pruning: magnitude, Wanda, SparseGPT (see prune.h for the definitions and
 * the papers each function follows), RTN of the kept weights, and the
 * container driver behind lc-prune.
 */
#include "compress/prune.h"
#include "core/tensor.h"
#include "core/sparse.h"

#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lapacke.h>

#include "core/lc_cblas.h"

#include "convert/import.h"
#include "model/model.h"

/* ---- parameters ------------------------------------------------------------- */

void lc_prune_params_default(lc_prune_params *p, lc_prune_method method)
{
    memset(p, 0, sizeof *p);
    p->method = method;
    p->sparsity = 0.5;
    p->scope = method == LC_PRUNE_WANDA ? LC_PRUNE_ROW : LC_PRUNE_TENSOR;
    p->sym = 1;
    p->blocksize = 128;
    p->percdamp = 0.01;
}

const char *lc_prune_method_name(lc_prune_method m)
{
    return m == LC_PRUNE_MAGNITUDE ? "magnitude" : m == LC_PRUNE_WANDA ? "wanda" : m == LC_PRUNE_SPARSEGPT ? "sparsegpt" : "?";
}

const char *lc_prune_scope_name(lc_prune_scope s)
{
    return s == LC_PRUNE_ROW ? "row" : s == LC_PRUNE_TENSOR ? "tensor" : s == LC_PRUNE_GLOBAL ? "global" : "?";
}

int lc_prune_params_check(const lc_prune_params *p, int64_t cols)
{
    if (p->method < LC_PRUNE_MAGNITUDE || p->method > LC_PRUNE_SPARSEGPT)
        return lc_error("prune: unknown method %d", (int)p->method);
    if (p->n) {
        if (p->m < 2 || p->m > 16 || p->n < 1 || p->n >= p->m)
            return lc_error("prune: N:M %d:%d invalid (need 1 <= N < M <= 16)", p->n, p->m);
    } else if (!(p->sparsity >= 0 && p->sparsity < 1)) {
        return lc_error("prune: sparsity %g outside [0, 1)", p->sparsity);
    }
    if (p->scope < LC_PRUNE_ROW || p->scope > LC_PRUNE_GLOBAL)
        return lc_error("prune: unknown scope %d", (int)p->scope);
    if (p->scope == LC_PRUNE_GLOBAL && (p->method != LC_PRUNE_MAGNITUDE || p->n))
        return lc_error("prune: global scope is for unstructured magnitude pruning only");
    if (p->bits && (p->bits < 2 || p->bits > 8))
        return lc_error("prune: %d-bit codes not supported (2..8)", p->bits);
    if (p->group < 0)
        return lc_error("prune: group %d negative", p->group);
    if (p->method == LC_PRUNE_SPARSEGPT && (p->blocksize < 1 || !(p->percdamp >= 0) || !isfinite(p->percdamp)))
        return lc_error("prune: SparseGPT block size %d / dampening %g invalid", p->blocksize, p->percdamp);
    if (cols <= 0)
        return 0;
    if (p->n && cols % p->m)
        return lc_error("prune: M = %d does not divide the row length %lld", p->m, (long long)cols);
    if (p->bits) {
        int64_t G = p->group ? p->group : cols;
        if (cols % G)
            return lc_error("prune: group %lld does not divide the row length %lld", (long long)G, (long long)cols);
        if (p->n && G % p->m)
            return lc_error("prune: group %lld is not a multiple of M = %d", (long long)G, p->m);
    }
    return 0;
}

int64_t lc_prune_count(double s, int64_t count)
{
    int64_t k = (int64_t)llround(s * (double)count);
    return k < 0 ? 0 : k > count ? count : k;
}

/* ---- selection ----------------------------------------------------------------
 * A key orders by score, then by index: the bits of a non-negative float
 * compare as its value, the low 32 bits hold the position.  A negative
 * score (PRUNED: a position the input already prunes) comes before every
 * other, so a selection takes those first; 0 and the smallest subnormal
 * share a key. */
#define PRUNED (-1.f)

static inline uint64_t skey(float s, uint32_t idx)
{
    uint32_t b;
    if (s < 0)
        return idx;
    if (!(s > 0))
        s = 0.f; /* +0 for 0, -0, NaN */
    memcpy(&b, &s, 4);
    return (uint64_t)(b ? b : 1) << 32 | idx;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Reorder the distinct keys a[0..n) so that a[0..k) are the k smallest
 * (in any order): iterative quickselect with Hoare partitions around the
 * middle element, deterministic; the selected set is the same as a full
 * sort's. */
static void select_smallest(uint64_t *a, size_t n, size_t k)
{
    if (k == 0 || k >= n)
        return;
    size_t lo = 0, hi = n - 1; /* inclusive; the answer boundary k lies in (lo, hi] */
    while (lo < hi) {
        uint64_t piv = a[lo + (hi - lo) / 2];
        size_t i = lo - 1, j = hi + 1;
        for (;;) {
            do
                i++;
            while (a[i] < piv);
            do
                j--;
            while (a[j] > piv);
            if (i >= j)
                break;
            uint64_t t = a[i];
            a[i] = a[j], a[j] = t;
        }
        /* a[lo..j] <= a[j+1..hi], lo <= j < hi */
        if (k <= j)
            hi = j;
        else if (k == j + 1)
            return;
        else
            lo = j + 1;
    }
}

/* In [i, i+m) of a row with scores sc(j): prune the m - n smallest. */
static void nm_pick(const float *sc, int m, int n, uint8_t *keep)
{
    uint64_t k[16];
    for (int j = 0; j < m; j++)
        k[j] = skey(sc[j], (uint32_t)j);
    qsort(k, (size_t)m, sizeof *k, cmp_u64);
    for (int j = 0; j < m; j++)
        keep[j] = 1;
    for (int j = 0; j < m - n; j++)
        keep[(uint32_t)k[j]] = 0;
}

int lc_prune_scores(const float *W, int64_t rows, int64_t cols, const double *H, float *score)
{
    for (int64_t c = 0; H && c < cols; c++)
        if (!(H[c * cols + c] >= 0) || !isfinite(H[c * cols + c]))
            return lc_error("prune: H[%lld][%lld] = %g is not a non-negative number", (long long)c, (long long)c,
                            H[c * cols + c]);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            float w = W[r * cols + c];
            if (!isfinite(w))
                return lc_error("prune: weight [%lld, %lld] is not finite", (long long)r, (long long)c);
            score[r * cols + c] = H ? (float)(fabs((double)w) * sqrt(H[c * cols + c])) : fabsf(w);
        }
    return 0;
}

int lc_prune_select(const float *score, int64_t rows, int64_t cols, const lc_prune_params *p, uint8_t *keep)
{
    if (lc_prune_params_check(p, cols))
        return -1;
    size_t n = (size_t)rows * (size_t)cols;
    memset(keep, 1, n);
    if (p->n) {
        for (size_t g = 0; g < n / (size_t)p->m; g++)
            nm_pick(score + g * (size_t)p->m, p->m, p->n, keep + g * (size_t)p->m);
        return 0;
    }
    if (p->scope == LC_PRUNE_GLOBAL)
        return lc_error("prune: global scope needs every tensor (lc_prune_global_threshold)");
    int per_row = p->scope == LC_PRUNE_ROW;
    size_t len = per_row ? (size_t)cols : n;
    if (len > UINT32_MAX)
        return lc_error("prune: %zu scores exceed the per-tensor selection limit", len);
    int64_t k = lc_prune_count(p->sparsity, (int64_t)len);
    uint64_t *keys = lc_malloc(len * sizeof *keys);
    if (!keys)
        return -1;
    for (size_t base = 0; base < n; base += len) {
        for (size_t i = 0; i < len; i++)
            keys[i] = skey(score[base + i], (uint32_t)i);
        select_smallest(keys, len, (size_t)k);
        for (int64_t i = 0; i < k; i++)
            keep[base + (uint32_t)keys[i]] = 0;
    }
    free(keys);
    return 0;
}

/* k-th smallest (0-based) of a[0..n), a reordered: iterative three-way
 * quickselect (many equal values - zeros - are common), median-of-three
 * pivots, deterministic. */
static float kth_smallest(float *a, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi];
        float piv = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
        int64_t lt = lo, i = lo, gt = hi;
        while (i <= gt) {
            if (a[i] < piv) {
                float t = a[lt];
                a[lt++] = a[i], a[i++] = t;
            } else if (a[i] > piv) {
                float t = a[gt];
                a[gt--] = a[i], a[i] = t;
            } else {
                i++;
            }
        }
        if (k < lt)
            hi = lt - 1;
        else if (k > gt)
            lo = gt + 1;
        else
            return piv;
    }
    return a[k];
}

int lc_prune_global_threshold(float *absw, int64_t n, int64_t k, float *thr, int64_t *ties)
{
    if (k < 0 || k > n)
        return lc_error("prune: %lld of %lld positions cannot be pruned", (long long)k, (long long)n);
    if (k == 0) {
        *thr = -1.f, *ties = 0;
        return 0;
    }
    float t = kth_smallest(absw, n, k - 1);
    int64_t below = 0;
    for (int64_t i = 0; i < n; i++)
        below += absw[i] < t;
    *thr = t;
    *ties = k - below;
    return 0;
}

void lc_prune_mask_global(const float *W, int64_t count, float thr, int64_t *ties, uint8_t *keep)
{
    for (int64_t i = 0; i < count; i++) {
        float a = fabsf(W[i]);
        int pruned = a < thr || (a == thr && *ties > 0);
        if (pruned && a == thr)
            (*ties)--;
        keep[i] = !pruned;
    }
}

/* Quantization output of one tensor: codes per dense position, parameters
 * per group. */
typedef struct qout {
    int G, ngr;
    uint8_t *codes;
    lc_qgrid *prm;
    int fixed;       /* prm is the input's grid: kept weights stay on it (never chosen anew) */
} qout;

/* RTN of the kept weights of Wp (pruned positions ignored): parameters per
 * group from its kept values; Wp's kept values become the dequantized ones. */
static int rtn_kept(float *Wp, const uint8_t *keep, int64_t rows, int64_t cols, const lc_prune_params *p, qout *q)
{
    int maxq = (1 << p->bits) - 1;
    double *x = lc_malloc((size_t)q->G * sizeof *x);
    if (!x)
        return -1;
    for (int64_t r = 0; r < rows; r++)
        for (int g = 0; g < q->ngr; g++) {
            int cnt = 0;
            size_t c0 = (size_t)(r * cols) + (size_t)g * (size_t)q->G;
            for (int j = 0; j < q->G; j++)
                if (keep[c0 + (size_t)j])
                    x[cnt++] = Wp[c0 + (size_t)j];
            lc_qgrid *pg = &q->prm[(size_t)r * (size_t)q->ngr + (size_t)g];
            if (!q->fixed && lc_qgrid_choose(x, cnt, p->bits, p->sym, pg)) {
                free(x);
                return -1;
            }
            for (int j = 0; j < q->G; j++) {
                size_t i = c0 + (size_t)j;
                int u = keep[i] ? lc_qgrid_code(Wp[i], pg, maxq) : pg->z;
                q->codes[i] = (uint8_t)u;
                Wp[i] = keep[i] ? lc_qgrid_deq(u, pg) : 0.f;
            }
        }
    free(x);
    return 0;
}

/* ---- SparseGPT ------------------------------------------------------------------- */

/* SparseGPT.fasterprune (sparsegpt.py) with exact counts:
 *   dead columns (H_ii = 0): H_ii = 1, W[:, i] = 0;
 *   lambda = percdamp * mean(diag H); U = chol(inv(H + lambda I), upper),
 *   raised x10 on a failed factorisation (as lc_quant_gptq);
 *   per block [i1, i2) of B columns, unstructured: the mask prunes the
 *   smallest w^2 / U_jj^2 of the block's current weights - k_b =
 *   round(s*rows*i2) - round(s*rows*i1) of them over all rows (scope
 *   tensor; the reference's threshold), or round(s*i2) - round(s*i1) in each
 *   row (scope row), so the tensor/row totals are exactly round(s * count);
 *   N:M: at every column i with i % M == 0 the M - N smallest of
 *   w^2 / U_jj^2 over [i, i+M) in each row;
 *   column i: q = 0 (pruned) or w, or its quantized value; err = (w - q) /
 *   U_ii; W[:, i+1:i2] -= err U[i, i+1:i2]; after the block
 *   W[:, i2:] -= Err U[i1:i2, i2:].
 * Works on Wt = W^T in double.  Wout [rows, cols] receives the final
 * weights (0 at pruned positions), keep the mask, q (bits > 0) the codes and
 * parameters. */
static int sparsegpt(const float *W, int64_t rows, int64_t cols, const double *H, const lc_prune_params *p,
                     const uint8_t *prior, float *Wout, uint8_t *keep, qout *q, lc_prune_tensor_report *rep)
{
    if (cols > 32768 || rows <= 0 || (uint64_t)rows * (uint64_t)cols > UINT32_MAX)
        return lc_error("sparsegpt: %lld x %lld weight matrix out of range", (long long)rows, (long long)cols);
    const int n = (int)cols, M = p->m, N = p->n, bits = p->bits, maxq = bits ? (1 << bits) - 1 : 0;
    int B = p->blocksize < n ? p->blocksize : n;
    if (N && B % M) /* blocks hold whole N:M groups */
        B = B < M ? M : B - B % M;
    const size_t nn = (size_t)n * (size_t)n, nw = (size_t)rows * (size_t)n;
    if (lc_quant_check_hessian(H, n, "sparsegpt"))
        return -1;
    for (size_t i = 0; i < nw; i++)
        if (!isfinite(W[i]))
            return lc_error("sparsegpt: weight %zu is not finite", i);
    double *Hp = lc_malloc(nn * sizeof *Hp), *U = lc_malloc(nn * sizeof *U), *Wt = lc_malloc(nw * sizeof *Wt),
           *E = lc_malloc((size_t)B * (size_t)rows * sizeof *E), *xg = NULL;
    uint8_t *dead = lc_calloc((size_t)n, 1);
    size_t nkeys = (size_t)rows * (size_t)B > (size_t)n ? (size_t)rows * (size_t)B : (size_t)n;
    uint64_t *keys = lc_malloc(nkeys * sizeof *keys);
    int rc = -1;
    if (bits && !(xg = lc_malloc((size_t)q->G * sizeof *xg)))
        goto done;
    if (!Hp || !U || !Wt || !E || !dead || !keys)
        goto done;
    int64_t ndead = 0;
    for (int i = 0; i < n; i++) {
        if (H[(size_t)i * n + i] == 0)
            dead[i] = 1, ndead++;
        for (int j = i; j < n; j++)
            Hp[(size_t)i * n + j] = i == j && dead[i] ? 1.0 : H[(size_t)i * n + j];
    }
    double pd = p->percdamp;
    int retries = 0;
    if (lc_quant_damped_hinv(Hp, n, &pd, 10, U, &retries, "sparsegpt"))
        goto done;
    // Wt (n, rows) = W^T, dead columns zero (tiles of 32 rows keep the strided reads in cache)
    for (int64_t r0 = 0; r0 < rows; r0 += 32) {
        int64_t r1 = r0 + 32 < rows ? r0 + 32 : rows;
        for (int c = 0; c < n; c++)
            for (int64_t r = r0; r < r1; r++)
                Wt[(size_t)c * rows + r] = dead[c] ? 0.0 : W[r * n + c];
    }
    memset(keep, 1, nw);
#define GONE(c, r) (prior && !prior[(size_t)(r) * n + (size_t)(c)])
#define SCORE(c, r) (GONE(c, r) ? PRUNED \
                                : (float)(Wt[(size_t)(c) * rows + (r)] * Wt[(size_t)(c) * rows + (r)] / \
                                          (U[(size_t)(c) * n + (c)] * U[(size_t)(c) * n + (c)])))
    double loss = 0;
    for (int i1 = 0; i1 < n; i1 += B) {
        int i2 = i1 + B < n ? i1 + B : n, cnt = i2 - i1;
        if (!N && p->scope == LC_PRUNE_ROW) {
            int64_t kb = lc_prune_count(p->sparsity, i2) - lc_prune_count(p->sparsity, i1);
            for (int64_t r = 0; r < rows; r++) {
                for (int j = 0; j < cnt; j++)
                    keys[j] = skey(SCORE(i1 + j, r), (uint32_t)j);
                select_smallest(keys, (size_t)cnt, (size_t)kb);
                for (int64_t k = 0; k < kb; k++)
                    keep[(size_t)r * n + (size_t)i1 + (uint32_t)keys[k]] = 0;
            }
        } else if (!N) {
            /* the reference's flattened W1 [rows, cnt] order for ties */
            int64_t kb = lc_prune_count(p->sparsity, rows * i2) - lc_prune_count(p->sparsity, rows * i1);
            for (int64_t r = 0; r < rows; r++)
                for (int j = 0; j < cnt; j++)
                    keys[(size_t)r * cnt + j] = skey(SCORE(i1 + j, r), (uint32_t)(r * cnt + j));
            select_smallest(keys, (size_t)rows * (size_t)cnt, (size_t)kb);
            for (int64_t k = 0; k < kb; k++) {
                uint32_t id = (uint32_t)keys[k];
                keep[(size_t)(id / (uint32_t)cnt) * n + (size_t)i1 + id % (uint32_t)cnt] = 0;
            }
        }
        for (int i = i1; i < i2; i++) {
            double *w = Wt + (size_t)i * rows, *e = E + (size_t)(i - i1) * rows;
            const double d = U[(size_t)i * n + i];
            if (N && i % M == 0)
                for (int64_t r = 0; r < rows; r++) {
                    float sc[16];
                    uint8_t kp[16];
                    for (int j = 0; j < M; j++)
                        sc[j] = SCORE(i + j, r);
                    nm_pick(sc, M, N, kp);
                    for (int j = 0; j < M; j++)
                        keep[(size_t)r * n + (size_t)(i + j)] = kp[j];
                }
            if (bits && !q->fixed && i % q->G == 0)
                for (int64_t r = 0; r < rows; r++) {
                    /* the group's parameters from the weights it will keep: decided
                     * positions as decided, later N:M chunks as their current
                     * scores would choose, later unstructured blocks all kept */
                    int cntk = 0;
                    for (int c0 = i; c0 < i + q->G; c0 += N ? M : q->G) {
                        int len = N ? M : q->G;
                        uint8_t kp[16];
                        if (N && c0 > i) {
                            float sc[16];
                            for (int j = 0; j < M; j++)
                                sc[j] = SCORE(c0 + j, r);
                            nm_pick(sc, M, N, kp);
                        }
                        for (int j = 0; j < len; j++) {
                            int kept = (N && c0 > i ? kp[j] : keep[(size_t)r * n + (size_t)(c0 + j)]) && !GONE(c0 + j, r);
                            if (kept)
                                xg[cntk++] = Wt[(size_t)(c0 + j) * rows + r];
                        }
                    }
                    if (lc_qgrid_choose(xg, cntk, bits, p->sym, &q->prm[(size_t)r * q->ngr + (size_t)(i / q->G)]))
                        goto done;
                }
            // q = w, 0 or quant(w); err = (w - q) / U_ii; Losses = (w - q)^2 / U_ii^2 / 2
            for (int64_t r = 0; r < rows; r++) {
                size_t at = (size_t)r * n + (size_t)i;
                double qv = 0;
                if (GONE(i, r)) /* pruned by the input: stays pruned */
                    keep[at] = 0;
                if (keep[at] && bits) {
                    const lc_qgrid *pg = &q->prm[(size_t)r * q->ngr + (size_t)(i / q->G)];
                    int u = lc_qgrid_code(w[r], pg, maxq);
                    q->codes[at] = (uint8_t)u;
                    qv = lc_qgrid_deq(u, pg);
                } else if (keep[at]) {
                    qv = w[r];
                } else if (bits) {
                    q->codes[at] = (uint8_t)q->prm[(size_t)r * q->ngr + (size_t)(i / q->G)].z;
                }
                double err = (w[r] - qv) / d;
                loss += 0.5 * err * err;
                e[r] = err;
                w[r] = qv;
            }
            // W1[:, i+1:i2] -= err x U[i, i+1:i2]; transposed: Wt[i+1:i2] (i2-i-1, rows) -= U[i, i+1:i2]^T e^T
            if (i + 1 < i2)
                cblas_dger(CblasRowMajor, i2 - i - 1, (int)rows, -1.0, U + (size_t)i * n + i + 1, 1, e, 1,
                           Wt + (size_t)(i + 1) * rows, (int)rows);
        }
        // W[:, i2:] -= Err1 @ U[i1:i2, i2:]; transposed: Wt[i2:] (n-i2, rows) -= U[i1:i2, i2:]^T E (cnt, rows)
        if (i2 < n)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n - i2, (int)rows, cnt, -1.0, U + (size_t)i1 * n + i2,
                        n, E, (int)rows, 1.0, Wt + (size_t)i2 * rows, (int)rows);
    }
#undef SCORE
#undef GONE
    for (int64_t r0 = 0; r0 < rows; r0 += 32) {
        int64_t r1 = r0 + 32 < rows ? r0 + 32 : rows;
        for (int c = 0; c < n; c++)
            for (int64_t r = r0; r < r1; r++)
                Wout[r * n + c] = keep[(size_t)r * n + (size_t)c] ? (float)Wt[(size_t)c * rows + r] : 0.f;
    }
    rep->loss = loss;
    rep->percdamp = pd;
    rep->dead_cols = ndead;
    rc = 0;
done:
    free(keys);
    free(dead);
    free(xg);
    free(E);
    free(Wt);
    free(U);
    free(Hp);
    return rc;
}

/* ---- one tensor ---------------------------------------------------------------------- */

/* The mask of magnitude or Wanda: keep_in when the selection was made
 * elsewhere (global scope), else from the scores; inside prior (NULL: dense),
 * whose pruned positions are taken first. */
static int select_keep(const float *W, int64_t rows, int64_t cols, const double *H, const lc_prune_params *p,
                       const uint8_t *keep_in, const uint8_t *prior, uint8_t *keep)
{
    size_t n = (size_t)rows * (size_t)cols;
    if (keep_in) {
        memcpy(keep, keep_in, n);
    } else {
        float *score = lc_malloc(n * sizeof *score);
        int rc = !score || lc_prune_scores(W, rows, cols, p->method == LC_PRUNE_WANDA ? H : NULL, score);
        for (size_t i = 0; !rc && prior && i < n; i++)
            if (!prior[i])
                score[i] = PRUNED;
        rc = rc || lc_prune_select(score, rows, cols, p, keep);
        free(score);
        if (rc)
            return -1;
    }
    for (size_t i = 0; prior && i < n; i++)
        keep[i] &= prior[i];
    return 0;
}

/* lc_prune_tensor with what the input already is: prior [rows, cols] its
 * kept positions (NULL: dense), which the result stays inside; grid [rows *
 * cols/group] its quantization parameters (NULL: chosen here), on which the
 * kept weights stay (p->bits, group and sym must be the grid's). */
static int prune_tensor(const char *name, const float *W, int64_t rows, int64_t cols, const double *H,
                        const lc_prune_params *p, const uint8_t *keep_in, const uint8_t *prior, const lc_qgrid *grid,
                        lc_dtype dt, lc_tensor *out, lc_prune_tensor_report *rep)
{
    double t0 = lc_now();
    lc_prune_tensor_report rp;
    memset(&rp, 0, sizeof rp);
    memset(out, 0, sizeof *out);
    if (lc_prune_params_check(p, cols))
        return lc_error_prefix("tensor '%s'", name);
    if (rows < 1 || rows > ((int64_t)1 << 40) / cols)
        return lc_error("tensor '%s': %lld x %lld out of range", name, (long long)rows, (long long)cols);
    if (!H && p->method != LC_PRUNE_MAGNITUDE && !keep_in)
        return lc_error("tensor '%s': %s needs calibration statistics", name, lc_prune_method_name(p->method));
    size_t n = (size_t)rows * (size_t)cols;
    uint8_t *keep = lc_malloc(n);
    float *Wp = lc_malloc(n * sizeof *Wp);
    qout q = {0};
    int rc = -1;
    if (!keep || !Wp)
        goto done;
    if (p->bits) {
        q.G = p->group ? p->group : (int)cols;
        q.ngr = (int)(cols / q.G);
        q.codes = lc_malloc(n);
        q.prm = lc_calloc((size_t)rows * (size_t)q.ngr, sizeof *q.prm);
        if (!q.codes || !q.prm)
            goto done;
        if (grid) {
            memcpy(q.prm, grid, (size_t)rows * (size_t)q.ngr * sizeof *q.prm);
            q.fixed = 1;
        }
    }
    if (p->method == LC_PRUNE_SPARSEGPT && !keep_in) {
        if (sparsegpt(W, rows, cols, H, p, prior, Wp, keep, p->bits ? &q : NULL, &rp))
            goto done;
    } else {
        if (select_keep(W, rows, cols, H, p, keep_in, prior, keep))
            goto done;
        for (size_t i = 0; i < n; i++)
            Wp[i] = keep[i] ? W[i] : 0.f;
        if (p->bits && rtn_kept(Wp, keep, rows, cols, p, &q))
            goto done;
    }
    lc_sparse_qvals qv = {0};
    uint16_t *sc = NULL;
    uint8_t *zs = NULL;
    if (p->bits) {
        size_t ng = (size_t)rows * (size_t)q.ngr;
        sc = lc_malloc(ng * 2);
        zs = p->sym ? NULL : lc_malloc(ng);
        if (!sc || (!p->sym && !zs)) {
            free(sc), free(zs);
            goto done;
        }
        for (size_t g = 0; g < ng; g++) {
            sc[g] = q.prm[g].h;
            if (zs)
                zs[g] = (uint8_t)q.prm[g].z;
        }
        qv = (lc_sparse_qvals){p->bits, q.G, p->sym ? LC_QF_SYM : LC_QF_ZERO, q.codes, sc, NULL, zs};
    }
    rc = lc_sparse_encode(name, rows, cols, Wp, keep, p->n, p->m, dt, p->bits ? &qv : NULL, out);
    free(sc), free(zs);
    if (rc)
        goto done;
    int64_t kept = 0;
    for (size_t i = 0; i < n; i++)
        kept += keep[i];
    rp.total = (int64_t)n;
    rp.pruned = (int64_t)n - kept;
    rp.seconds = lc_now() - t0;
done:
    if (rep)
        *rep = rp;
    free(q.codes);
    free(q.prm);
    free(Wp);
    free(keep);
    return rc;
}

int lc_prune_tensor(const char *name, const float *W, int64_t rows, int64_t cols, const double *H,
                    const lc_prune_params *p, const uint8_t *keep_in, lc_dtype dt, lc_tensor *out,
                    lc_prune_tensor_report *rep)
{
    return prune_tensor(name, W, rows, cols, H, p, keep_in, NULL, NULL, dt, out, rep);
}

/* ---- a whole container --------------------------------------------------------------- */

void lc_prune_opts_default(lc_prune_opts *o, lc_prune_method method)
{
    memset(o, 0, sizeof *o);
    lc_prune_params_default(&o->p, method);
    o->dtype = -1;
    lc_calib_opts_default(&o->calib);
    o->model.max_isa = LC_ISA_AVX512;
}

static int matches(const char *name, const char *const *pat, int n)
{
    for (int i = 0; i < n; i++)
        if (fnmatch(pat[i], name, 0) == 0)
            return 1;
    return 0;
}

/* Is `name` pruned?  Default: the seven linears of every decoder layer;
 * --only patterns replace that set; --keep patterns remove from it. */
static int selected(const lc_prune_opts *o, const char *name)
{
    int sel = o->n_only ? matches(name, o->only, o->n_only)
                        : strncmp(name, "layers.", 7) == 0 && lc_model_is_linear(name);
    return sel && !matches(name, o->keep, o->n_keep);
}

/* A tensor decoded to f32 (malloc'd), or NULL. */
static float *tensor_f32(const lc_tensor *t)
{
    size_t n;
    if (lc_mul_size((size_t)lc_tensor_numel(t), sizeof(float), &n))
        return lc_error("tensor '%s' too large", t->name), NULL;
    float *w = lc_malloc(n);
    if (w && lc_tensor_to_f32(t, w)) {
        free(w);
        return NULL;
    }
    return w;
}

typedef struct pctx {
    const lc_prune_opts *o;
    lc_container *in, *out;
    int n_sel;
    char **names;          /* selected tensors, file order */
    int *sel_at;           /* their input indices */
    int *sel_of;           /* per input tensor: its selection index, or -1 */
    lc_tensor *res;        /* their results, filled as pruned, released once written */
    lc_emitter em;         /* the output, written as soon as each tensor is final */
    lc_prune_report *rep;
    float *gthr;           /* global scope: threshold */
    int64_t gties;         /*               ties still to prune */
} pctx;

static lc_dtype out_dtype(const lc_prune_opts *o, const lc_tensor *t)
{
    if (o->dtype >= 0)
        return (lc_dtype)o->dtype;
    if (t->enc == LC_ENC_DENSE || (lc_tensor_is_sparse(t) && !t->bits))
        return t->dtype;
    return LC_DT_F32;
}


/* Can tensor t (its info, or the whole tensor) be pruned with p?  The
 * refusals of the composition rules (docs/FORMAT.md), before anything is
 * written; with the positions (prior, of a sparse t) also the ones that
 * depend on them. */
static int check_composition(const lc_tensor *t, const lc_prune_params *p, const uint8_t *prior)
{
    char enc[96];
    lc_tensor_encoding_str(t, enc, sizeof enc);
    int64_t rows = lc_tensor_rows(t), cols = lc_tensor_cols(t);
    if (lc_tensor_has_lowrank(t))
        return lc_error("tensor '%s' has a low-rank term (%s): pruning its product would drop the factorization; "
                        "prune before lc-lowrank, or --keep '%s'",
                        t->name, enc, t->name);
    if (lc_tensor_is_quantized(t) && p->bits)
        return lc_error("tensor '%s' is already quantized (%s): lc-prune keeps its codes and grid; drop --bits", t->name,
                        enc);
    if (lc_tensor_is_quantized(t) && p->method == LC_PRUNE_SPARSEGPT && t->qform == LC_QF_MIN)
        return lc_error("tensor '%s' (%s): SparseGPT re-quantizes the kept weights on the input's grid, and a "
                        "min-offset grid (GGUF Q4_1) has no code for 0; use --method magnitude or wanda",
                        t->name, enc);
    if (lc_tensor_is_quantized(t) && p->n && t->group % p->m)
        return lc_error("tensor '%s' (%s) cannot take %d:%d: its quantization groups of %d are not a multiple of %d",
                        t->name, enc, p->n, p->m, t->group, p->m);
    if (lc_tensor_is_sparse(t)) {
        double have = 1.0 - (double)t->sp_nnz / (double)(rows * cols);
        double want = p->n ? 1.0 - (double)p->n / p->m : p->sparsity;
        if (want + 1e-12 < have)
            return lc_error("tensor '%s' (%s) already has sparsity %.6f: asking for %g would undo pruning (the new "
                            "mask must be a subset of the old)",
                            t->name, enc, have, want);
    }
    if (prior && p->n)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c += p->m) {
                int cnt = 0;
                for (int j = 0; j < p->m; j++)
                    cnt += prior[r * cols + c + j];
                if (cnt < p->n)
                    return lc_error("tensor '%s' (%s) violates %d:%d: row %lld, columns %lld..%lld keep %d values", t->name,
                                    enc, p->n, p->m, (long long)r, (long long)c, (long long)(c + p->m - 1), cnt);
            }
    return 0;
}

/* The input's grid as lc_qgrid per group (sym or zero-point forms). */
static lc_qgrid *grid_of(const lc_tensor *t)
{
    lc_qgrid *g = lc_malloc(t->n_groups * sizeof *g);
    for (size_t i = 0; g && i < t->n_groups; i++) {
        g[i].h = t->scales[i];
        g[i].s = lc_f16_to_f32(t->scales[i]);
        g[i].z = t->qform == LC_QF_SYM ? 1 << (t->bits - 1) : t->zeros[i];
    }
    return g;
}

/* Prune tensor t (selected index k) with H (or NULL) into ctx->res[k].
 * Composition: a sparse t prunes further inside its mask; a quantized t
 * keeps its codes (magnitude, Wanda: the kept positions' codes as they are)
 * or its grid (SparseGPT: the kept weights re-quantized on it, with error
 * feedback). */
static int prune_one(pctx *x, int k, const lc_tensor *t, const double *H)
{
    const lc_prune_opts *o = x->o;
    if (t->ndim != 2)
        return lc_error("tensor '%s' is not a matrix", t->name);
    int64_t rows = lc_tensor_rows(t), cols = lc_tensor_cols(t);
    size_t cnt = (size_t)(rows * cols);
    float *W = tensor_f32(t);
    uint8_t *gkeep = NULL, *prior = NULL, *keep = NULL;
    lc_qgrid *grid = NULL;
    if (!W)
        return -1;
    int rc = -1, quant = lc_tensor_is_quantized(t);
    if (lc_tensor_is_sparse(t) && (!(prior = lc_malloc(cnt)) || lc_tensor_positions(t, prior, NULL)))
        goto out;
    if (check_composition(t, &o->p, prior))
        goto out;
    lc_prune_params p = o->p;
    if (quant) { /* the input's grid */
        p.bits = t->bits, p.group = t->group, p.sym = t->qform == LC_QF_SYM;
        if (p.method == LC_PRUNE_SPARSEGPT && !(grid = grid_of(t)))
            goto out;
    }
    if (x->gthr) {
        if (!(gkeep = lc_malloc(cnt)))
            goto out;
        lc_prune_mask_global(W, rows * cols, *x->gthr, &x->gties, gkeep);
        for (size_t i = 0; prior && i < cnt; i++)
            gkeep[i] &= prior[i];
    }
    lc_prune_tensor_report tr;
    memset(&tr, 0, sizeof tr);
    if (quant && p.method != LC_PRUNE_SPARSEGPT) {
        /* the mask from the decoded weights; the kept codes stay exactly */
        double t0 = lc_now();
        if (!(keep = lc_malloc(cnt)) || select_keep(W, rows, cols, H, &p, gkeep, prior, keep))
            goto out;
        if (lc_tensor_restrict(t, keep, p.n, p.m, &x->res[k]))
            goto out;
        tr.total = (int64_t)cnt;
        tr.pruned = (int64_t)cnt - x->res[k].sp_nnz;
        tr.seconds = lc_now() - t0;
    } else if (prune_tensor(t->name, W, rows, cols, H, &p, gkeep, prior, grid, out_dtype(o, t), &x->res[k], &tr)) {
        goto out;
    }
    x->rep->n_tensors++;
    x->rep->pruned += tr.pruned;
    x->rep->total += tr.total;
    x->rep->n_composed += prior || quant;
    char enc[48];
    lc_tensor_encoding_str(&x->res[k], enc, sizeof enc);
    lc_log("lc-prune: %-24s %-18s sparsity %.6f (%lld / %lld pruned)", t->name, enc,
           (double)tr.pruned / (double)tr.total, (long long)tr.pruned, (long long)tr.total);
    if (o->p.method == LC_PRUNE_SPARSEGPT)
        lc_log("  loss %.4g%s", tr.loss, tr.percdamp != o->p.percdamp ? "  (dampening raised)" : "");
    lc_log("  %.2f s\n", tr.seconds);
    rc = 0;
out:
    free(gkeep), free(prior), free(keep), free(grid);
    free(W);
    return rc;
}

static int layer_cb(void *ud, lc_model *m, int layer, const lc_layer_stats *st)
{
    pctx *x = ud;
    char pre[32];
    snprintf(pre, sizeof pre, "layers.%d.", layer);
    for (int k = 0; k < x->n_sel; k++) {
        const char *name = x->names[k];
        if (strncmp(name, pre, strlen(pre)) != 0)
            continue;
        const lc_tensor *t = lc_model_tensor(m, name);
        if (!t)
            return lc_error("tensor '%s' is not a weight of the model", name);
        lc_capture_point pt = lc_calib_point_of(name);
        if (lc_tensor_cols(t) != st->d[pt])
            return lc_error("tensor '%s': %lld columns, its input has %d", name, (long long)lc_tensor_cols(t), st->d[pt]);
        if (prune_one(x, k, t, st->H[pt]) || lc_model_set_tensor(m, &x->res[k]))
            return -1;
    }
    return 0;
}

/* Input tensor i, final: its pruned result, or a copy. */
static int output_one(void *ud, int i)
{
    pctx *x = ud;
    int k = x->sel_of[i];
    if (k < 0)
        return lc_container_copy_tensor(x->in, x->out, lc_container_tensor_name(x->in, i));
    if (!x->res[k].ndim)
        return lc_error("tensor '%s' was not reached by the calibration pass", x->names[k]);
    int rc = lc_container_write_tensor(x->out, &x->res[k]);
    lc_tensor_release(&x->res[k]);
    memset(&x->res[k], 0, sizeof x->res[k]);
    return rc;
}

int lc_prune_container(lc_container *in, lc_container *out, const lc_prune_opts *o, lc_prune_report *rep)
{
    double t0 = lc_now();
    memset(rep, 0, sizeof *rep);
    const lc_prune_params *p = &o->p;
    rep->usage_error = 1;
    if (lc_prune_params_check(p, 0))
        return -1;
    rep->usage_error = 0;
    lc_config cfg;
    if (lc_container_read_config(in, &cfg) || lc_container_copy_header(in, out))
        return -1;
    int n = lc_container_n_tensors(in);
    pctx x = {.o = o, .in = in, .out = out, .rep = rep};
    x.names = lc_calloc((size_t)n + 1, sizeof *x.names);
    x.sel_at = lc_calloc((size_t)n + 1, sizeof *x.sel_at);
    x.sel_of = lc_calloc((size_t)n + 1, sizeof *x.sel_of);
    x.res = lc_calloc((size_t)n + 1, sizeof *x.res);
    lc_model *m = NULL;
    lc_tokenizer tk = {0};
    float *absw = NULL, gthr = 0;
    int rc = -1;
    if (!x.names || !x.sel_at || !x.sel_of || !x.res || lc_emitter_init(&x.em, in, cfg.n_layers, output_one, &x))
        goto out;
    /* the selection, checked up front (shapes against the pattern) */
    int64_t gtotal = 0;
    for (int i = 0; i < n; i++) {
        const char *name = lc_container_tensor_name(in, i);
        x.sel_of[i] = -1;
        if (!selected(o, name))
            continue;
        lc_tensor t;
        if (lc_container_tensor_info(in, name, &t))
            goto out;
        rep->usage_error = 1;
        if (t.ndim != 2) {
            lc_error("tensor '%s' is not a matrix (rank %d)", name, t.ndim);
            goto out;
        }
        if (lc_prune_params_check(p, t.shape[1])) {
            lc_error_prefix("tensor '%s'", name);
            goto out;
        }
        if (p->method != LC_PRUNE_MAGNITUDE && strncmp(name, "layers.", 7) != 0) {
            lc_error("tensor '%s': %s needs the statistics of its input, which only the decoder layers' linears "
                     "have (use --method magnitude, or --keep '%s')",
                     name, lc_prune_method_name(p->method), name);
            goto out;
        }
        rep->usage_error = 0; /* a combination the input cannot take is bad input, not usage */
        if (check_composition(&t, p, NULL))
            goto out;
        x.sel_of[i] = x.n_sel;
        x.sel_at[x.n_sel] = i;
        x.names[x.n_sel++] = (char *)name;
        gtotal += lc_tensor_numel(&t);
    }
    if (!x.n_sel) {
        rep->usage_error = 1;
        lc_error("no tensor selected for pruning");
        goto out;
    }
    if (p->scope == LC_PRUNE_GLOBAL && !p->n) {
        /* pass 1: the threshold over every selected weight */
        size_t nb;
        if (lc_mul_size((size_t)gtotal, sizeof *absw, &nb) || !(absw = lc_malloc(nb)))
            goto out;
        int64_t at = 0;
        for (int k = 0; k < x.n_sel; k++) {
            lc_tensor t;
            if (lc_container_read_tensor(in, x.names[k], &t))
                goto out;
            float *w = tensor_f32(&t);
            int64_t cnt = lc_tensor_numel(&t);
            lc_tensor_release(&t);
            if (!w)
                goto out;
            for (int64_t i = 0; i < cnt; i++) {
                if (!isfinite(w[i])) {
                    free(w);
                    lc_error("tensor '%s': weight %lld is not finite", x.names[k], (long long)i);
                    goto out;
                }
                absw[at++] = fabsf(w[i]);
            }
            free(w);
        }
        if (lc_prune_global_threshold(absw, gtotal, lc_prune_count(p->sparsity, gtotal), &gthr, &x.gties))
            goto out;
        free(absw), absw = NULL;
        x.gthr = &gthr;
    }
    if (p->method == LC_PRUNE_MAGNITUDE) {
        for (int k = 0; k < x.n_sel; k++) {
            lc_tensor t;
            if (lc_container_read_tensor(in, x.names[k], &t))
                goto out;
            int r2 = prune_one(&x, k, &t, NULL);
            lc_tensor_release(&t);
            if (r2 || lc_emitter_upto(&x.em, x.sel_at[k]))
                goto out;
        }
    } else {
        lc_model_opts mo = o->model;
        mo.lazy_layers = 1;
        if (lc_container_read_tokenizer(in, &tk) || lc_model_load(in, &mo, &m))
            goto out;
        lc_log("lc-prune: calibrating on '%s' (%d x %d tokens, seed %llu)\n", o->calib.text, o->calib.nsamples,
               o->calib.seqlen, (unsigned long long)o->calib.seed);
        lc_calib_opts co = o->calib;
        co.layer_begin = lc_emitter_layer_begin, co.layer_end = lc_emitter_layer_end, co.hook_ud = &x.em;
        if (lc_calib_run(m, &tk, &co, layer_cb, &x, &rep->calib))
            goto out;
        rep->calibrated = 1;
    }
    /* the rest in input order: pruned results or unchanged copies */
    if (lc_emitter_upto(&x.em, n - 1))
        goto out;
    rep->seconds = lc_now() - t0;
    char pat[96];
    if (p->n)
        snprintf(pat, sizeof pat, "%d:%d", p->n, p->m);
    else
        snprintf(pat, sizeof pat, "unstructured %g per %s", p->sparsity, lc_prune_scope_name(p->scope));
    int k = snprintf(rep->note, sizeof rep->note, "%s %s: %d tensors, achieved sparsity %.6f (%lld of %lld)",
                     lc_prune_method_name(p->method), pat, rep->n_tensors,
                     rep->total ? (double)rep->pruned / (double)rep->total : 0.0, (long long)rep->pruned,
                     (long long)rep->total);
    if (p->bits && k > 0 && (size_t)k < sizeof rep->note)
        k += snprintf(rep->note + k, sizeof rep->note - (size_t)k, "; kept weights %d-bit %s group %d", p->bits,
                      p->sym ? "sym" : "asym", p->group);
    if (rep->n_composed && k > 0 && (size_t)k < sizeof rep->note)
        k += snprintf(rep->note + k, sizeof rep->note - (size_t)k,
                      "; %d sparse or quantized inputs kept their structure and grid", rep->n_composed);
    if (rep->calibrated && k > 0 && (size_t)k < sizeof rep->note)
        snprintf(rep->note + k, sizeof rep->note - (size_t)k, "; calibration %s xxh64:%s, %d x %d = %lld tokens (seed %llu)",
                 rep->calib.text_name, rep->calib.text_digest, rep->calib.nsamples, rep->calib.seqlen,
                 (long long)rep->calib.tokens_used, (unsigned long long)o->calib.seed);
    rc = 0;
out:
    for (int k2 = 0; x.res && k2 < x.n_sel; k2++)
        lc_tensor_release(&x.res[k2]);
    free(x.res);
    free(x.names);
    free(x.sel_at);
    free(x.sel_of);
    lc_emitter_release(&x.em);
    free(absw);
    lc_tokenizer_release(&tk);
    lc_model_free(m);
    return rc;
}
