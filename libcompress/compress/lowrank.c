/* Low-rank factorization of one weight matrix (compress/lowrank.h). */
#include "compress/lowrank.h"
#include "compress/quant.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/lc_cblas.h"

void lc_lr_params_default(lc_lr_params *p)
{
    memset(p, 0, sizeof *p);
    p->method = LC_LR_WHITEN;
    p->alpha = 0.5;
    p->percdamp = 1e-3;
    p->align = 16;
}

int lc_lowrank_rank(const lc_lr_params *p, int64_t m, int64_t n, const double *s2, int ns, int *k)
{
    int64_t full = m < n ? m : n;
    int set = (p->rank > 0) + (p->ratio > 0) + (p->energy > 0);
    if (set != 1)
        return lc_error("low-rank: give exactly one of a rank, a ratio or an energy");
    if (p->rank > 0) {
        if (p->rank > full)
            return lc_error("rank %d above min(%lld, %lld)", p->rank, (long long)m, (long long)n);
        *k = p->rank;
        return 0;
    }
    if (p->ratio > 0) {
        if (!(p->ratio < 1))
            return lc_error("ratio %g outside (0, 1)", p->ratio);
        int64_t r = (int64_t)floor((double)m * (double)n * (1.0 - p->ratio) / (double)(m + n));
        if (r < 1)
            return lc_error("a ratio of %g leaves less than rank 1 of a %lld x %lld matrix", p->ratio, (long long)m,
                            (long long)n);
        r = r < full ? r : full;
        if (p->align > 1 && r >= 4 * p->align)
            r = r / p->align * p->align;
        *k = (int)r;
        return 0;
    }
    if (!(p->energy <= 1))
        return lc_error("energy %g outside (0, 1]", p->energy);
    double tot = 0, acc = 0;
    for (int i = 0; i < ns; i++)
        tot += s2[i];
    int r = 0;
    while (r < ns && (r == 0 || acc < p->energy * tot))
        acc += s2[r++];
    if (p->align > 1 && r >= 4 * p->align)
        r = (r + p->align - 1) / p->align * p->align;
    r = r < ns ? r : ns;
    *k = r < 1 ? 1 : r;
    return 0;
}

double lc_lowrank_rel_error(const float *W, const float *What, int64_t m, int64_t n, const double *H)
{
    size_t mn = (size_t)(m * n);
    double *D = calloc(2 * mn, sizeof *D), num = 0, den = 0;
    if (!D)
        return NAN;
    for (size_t i = 0; i < mn; i++) {
        D[i] = (double)W[i] - (double)What[i];
        D[mn + i] = W[i];
    }
    if (!H) {
        for (size_t i = 0; i < mn; i++)
            num += D[i] * D[i], den += D[mn + i] * D[mn + i];
    } else {
        double *T = malloc(2 * mn * sizeof *T);
        if (!T) {
            free(D);
            return NAN;
        }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(2 * m), (int)n, (int)n, 1.0, D, (int)n, H,
                    (int)n, 0.0, T, (int)n);
        for (size_t i = 0; i < mn; i++)
            num += D[i] * T[i], den += D[mn + i] * T[mn + i];
        free(T);
    }
    free(D);
    return den > 0 ? num / den : (num > 0 ? INFINITY : 0.0);
}

/* L: the lower Cholesky factor of H + lambda I, lambda = percdamp *
 * mean(diag H), raised x10 on each failure up to 1 (upper triangle zeroed). */
static int whiten_factor(const double *H, int64_t n, double percdamp, double *L, lc_lr_report *rep)
{
    double mean = 0;
    for (int64_t i = 0; i < n; i++)
        mean += H[i * n + i];
    mean /= (double)n;
    if (!(mean > 0) || !isfinite(mean))
        return lc_error("whiten: the calibration Gram matrix has no signal (mean diagonal %g)", mean);
    for (double pd = percdamp;; pd = pd > 0 ? pd * 10 : 1e-6) { /* no damping asked: the first retry adds 1e-6 */
        memcpy(L, H, (size_t)(n * n) * sizeof *L);
        for (int64_t i = 0; i < n; i++)
            L[i * n + i] += pd * mean;
        lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, L, (lapack_int)n);
        if (info == 0) {
            rep->percdamp = pd;
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = i + 1; j < n; j++)
                    L[i * n + j] = 0;
            return 0;
        }
        if (info < 0 || pd >= 1)
            return lc_error("whiten: the Gram matrix is not positive definite: Cholesky failed (LAPACK info %d) "
                            "with dampening %g x mean(diag H)",
                            (int)info, pd);
        rep->damp_retries++;
    }
}

/* RTN codes for a factor (symmetric; group 32 where it divides the row). */
static int factor_tensor(const char *name, const float *F, int64_t rows, int64_t cols, int bits, lc_dtype dt,
                         lc_tensor *t)
{
    if (!bits) {
        int64_t sh[2] = {rows, cols};
        size_t k = (size_t)(rows * cols);
        if (lc_tensor_alloc_dense(t, name, dt, 2, sh))
            return -1;
        if (dt == LC_DT_F32)
            memcpy(t->data, F, k * sizeof *F);
        for (size_t i = 0; dt != LC_DT_F32 && i < k; i++)
            ((uint16_t *)t->data)[i] = dt == LC_DT_F16 ? lc_f32_to_f16(F[i]) : lc_f32_to_bf16(F[i]);
        return 0;
    }
    lc_quant_params q = {.bits = bits, .group = cols % 32 == 0 ? 32 : 0, .sym = 1};
    if (bits == 4 && cols % 32)
        return lc_error("%d-bit factors need a multiple of 32 columns (%lld): choose a rank that is a multiple of 32",
                        bits, (long long)cols);
    if (lc_quant_rtn(F, rows, cols, &q, t))
        return -1;
    snprintf(t->name, sizeof t->name, "%s", name);
    return 0;
}

/* What every entry point checks: the shape, the statistics the method
 * needs, finite weights. */
static int check_args(const float *W, int64_t m, int64_t n, const double *H, const float *absmean,
                      const lc_lr_params *p)
{
    if (m < 1 || n < 1 || m > INT32_MAX / 2 || n > INT32_MAX / 2)
        return lc_error("low-rank: bad shape [%lld, %lld]", (long long)m, (long long)n);
    if (p->method == LC_LR_WHITEN && !H)
        return lc_error("whiten needs the calibration Gram matrix");
    if (p->method == LC_LR_ASVD && !absmean)
        return lc_error("asvd needs the inputs' mean |x|");
    if (p->method == LC_LR_ASVD && !(p->alpha >= 0 && p->alpha <= 4))
        return lc_error("asvd: alpha %g outside [0, 4]", p->alpha);
    for (size_t i = 0; i < (size_t)(m * n); i++)
        if (!isfinite(W[i]))
            return lc_error("the weights hold NaN or Inf values");
    return 0;
}

/* M = W S for the method's input transform S (double); L (whiten: the
 * Cholesky factor) or sc (asvd: the scales) are returned for B = C S^-1,
 * owned by the caller (freed also on failure). */
static int transform(const float *W, int64_t m, int64_t n, const double *H, const float *absmean,
                     const lc_lr_params *p, double *M, double **Lp, double **scp, lc_lr_report *rep)
{
    size_t mn = (size_t)(m * n);
    double *L = NULL, *sc = NULL;
    *Lp = *scp = NULL;
    for (size_t i = 0; i < mn; i++)
        M[i] = W[i];
    if (p->method == LC_LR_WHITEN) {
        if (!(*Lp = L = malloc((size_t)(n * n) * sizeof *L))) {
            lc_error("out of memory");
            return -1;
        }
        if (whiten_factor(H, n, p->percdamp, L, rep))
            return -1;
        cblas_dtrmm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, (int)m, (int)n, 1.0, L, (int)n,
                    M, (int)n);
    } else if (p->method == LC_LR_ASVD) {
        if (!(*scp = sc = malloc((size_t)n * sizeof *sc))) {
            lc_error("out of memory");
            return -1;
        }
        double mx = 0;
        for (int64_t j = 0; j < n; j++)
            mx = absmean[j] > mx ? absmean[j] : mx;
        if (!(mx > 0) || !isfinite(mx)) {
            lc_error("asvd: the inputs' mean |x| is zero or not finite");
            return -1;
        }
        for (int64_t j = 0; j < n; j++) { /* a dead channel gets the floor, not a division by 0 */
            double a = absmean[j] > 1e-6 * mx ? absmean[j] : 1e-6 * mx;
            sc[j] = pow(a, p->alpha);
        }
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                M[i * n + j] *= sc[j];
    }
    return 0;
}

int lc_lowrank_factor(const char *name, const float *W, int64_t m, int64_t n, const double *H, const float *absmean,
                      const lc_lr_params *p, lc_tensor *out, lc_lr_report *rep)
{
    memset(out, 0, sizeof *out);
    lc_lr_report r0;
    if (!rep)
        rep = &r0;
    memset(rep, 0, sizeof *rep);
    if (check_args(W, m, n, H, absmean, p))
        return -1;
    size_t mn = (size_t)(m * n);
    int64_t full = m < n ? m : n;
    double *M = malloc(mn * sizeof *M), *L = NULL, *sc = NULL, *s = malloc((size_t)full * sizeof *s);
    double *U = malloc((size_t)(m * full) * sizeof *U), *VT = malloc((size_t)(full * n) * sizeof *VT);
    float *A = NULL, *B = NULL, *What = NULL;
    int rc = -1, k = 0;
    if (!M || !s || !U || !VT) {
        lc_error("out of memory");
        goto out;
    }
    if (transform(W, m, n, H, absmean, p, M, &L, &sc, rep))
        goto out;
    lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int)m, (lapack_int)n, M, (lapack_int)n, s, U,
                                     (lapack_int)full, VT, (lapack_int)n);
    if (info != 0) {
        lc_error("SVD failed (LAPACK dgesdd info %d)", (int)info);
        goto out;
    }
    for (int64_t i = 0; i < full; i++)
        M[i] = s[i] * s[i]; /* M is free now: the squared spectrum */
    if (lc_lowrank_rank(p, m, n, M, (int)full, &k))
        goto out;
    double tot = 0, kept = 0;
    for (int64_t i = 0; i < full; i++)
        tot += M[i], kept += i < k ? M[i] : 0;
    rep->rank = k;
    rep->energy = tot > 0 ? kept / tot : 1.0;
    /* A = U_k sqrt(S_k); C = sqrt(S_k) V_k^T, then B = C S^-1 */
    A = malloc((size_t)(m * k) * sizeof *A), B = malloc((size_t)k * (size_t)n * sizeof *B);
    if (!A || !B) {
        lc_error("out of memory");
        goto out;
    }
    for (int64_t i = 0; i < m; i++)
        for (int j = 0; j < k; j++)
            A[i * k + j] = (float)(U[i * full + j] * sqrt(s[j]));
    for (int j = 0; j < k; j++)
        for (int64_t c = 0; c < n; c++)
            VT[j * n + c] *= sqrt(s[j]);
    if (L)
        cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, k, (int)n, 1.0, L, (int)n, VT,
                    (int)n);
    if (sc)
        for (int j = 0; j < k; j++)
            for (int64_t c = 0; c < n; c++)
                VT[j * n + c] /= sc[c];
    for (size_t i = 0; i < (size_t)k * (size_t)n; i++)
        B[i] = (float)VT[i];
    snprintf(out->name, sizeof out->name, "%s", name);
    out->ndim = 2, out->shape[0] = m, out->shape[1] = n;
    out->enc = LC_ENC_LOWRANK;
    out->lr_rank = k;
    if (!(out->lr_a = lc_calloc(1, sizeof *out->lr_a)) || !(out->lr_b = lc_calloc(1, sizeof *out->lr_b)) ||
        factor_tensor("lowrank_a", A, m, k, p->factor_bits, p->factor_dtype, out->lr_a) ||
        factor_tensor("lowrank_b", B, k, n, p->factor_bits, p->factor_dtype, out->lr_b) || lc_tensor_validate(out))
        goto out;
    if (!(What = malloc(mn * sizeof *What)) || lc_tensor_to_f32(out, What)) {
        if (!What)
            lc_error("out of memory");
        goto out;
    }
    rep->err = lc_lowrank_rel_error(W, What, m, n, H);
    rc = 0;
out:
    free(M), free(L), free(sc), free(s), free(U), free(VT), free(A), free(B), free(What);
    if (rc)
        lc_tensor_release(out);
    return rc;
}

int lc_lowrank_spectrum(const float *W, int64_t m, int64_t n, const double *H, const float *absmean,
                        const lc_lr_params *p, double *s2, lc_lr_report *rep)
{
    lc_lr_report r0;
    if (!rep)
        rep = &r0;
    memset(rep, 0, sizeof *rep);
    if (check_args(W, m, n, H, absmean, p))
        return -1;
    size_t mn = (size_t)(m * n);
    int64_t full = m < n ? m : n;
    double *M = malloc(mn * sizeof *M), *L = NULL, *sc = NULL, *s = malloc((size_t)full * sizeof *s), dummy = 0;
    int rc = -1;
    if (!M || !s)
        lc_error("out of memory");
    else if (transform(W, m, n, H, absmean, p, M, &L, &sc, rep) == 0) {
        lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', (lapack_int)m, (lapack_int)n, M, (lapack_int)n, s,
                                         &dummy, (lapack_int)full, &dummy, (lapack_int)n); /* not referenced */
        if (info != 0) {
            lc_error("SVD failed (LAPACK dgesdd info %d)", (int)info);
        } else {
            for (int64_t i = 0; i < full; i++)
                s2[i] = s[i] * s[i];
            rc = 0;
        }
    }
    free(M), free(L), free(sc), free(s);
    return rc;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b, b = t;
    }
    return a;
}

#define ALLOC_MAX_UNITS 4000000 /* budget cells of the DP; beyond, costs are coarsened */

int lc_lowrank_allocate(int count, const double *const *s2, const int64_t *m, const int64_t *n, double budget,
                        int step, int *ranks, double *err_out, int *exact)
{
    if (count < 1 || step < 1)
        return lc_error("low-rank allocation: nothing to allocate");
    /* options: rank 1 and every multiple of step up to min(m, n) (and below the dense size) */
    int *nopt = lc_calloc((size_t)count, sizeof *nopt);
    int **opt = lc_calloc((size_t)count, sizeof *opt);
    double min_cost = 0;
    int64_t unit = 0;
    int rc = -1;
    uint16_t *choice = NULL;
    double *dp = NULL, *next = NULL;
    if (!nopt || !opt)
        goto out;
    for (int t = 0; t < count; t++) {
        int64_t full = m[t] < n[t] ? m[t] : n[t], cap = m[t] * n[t] / (m[t] + n[t]);
        if (cap > full)
            cap = full;
        if (cap < 1)
            cap = 1;
        if (!(opt[t] = lc_malloc((size_t)(cap / step + 2) * sizeof **opt)))
            goto out;
        opt[t][nopt[t]++] = 1;
        for (int64_t k = step; k <= cap; k += step)
            if (k > 1)
                opt[t][nopt[t]++] = (int)k;
        if (nopt[t] > 65535) {
            lc_error("low-rank allocation: %d ranks for one tensor (use a larger step)", nopt[t]);
            goto out;
        }
        min_cost += (double)(m[t] + n[t]);
        unit = gcd64(unit, m[t] + n[t]); /* every cost is k (m + n) */
    }
    if (budget < min_cost) {
        lc_error("a budget of %.0f factor elements is below what rank 1 takes (%.0f)", budget, min_cost);
        goto out;
    }
    *exact = 1;
    while (budget / (double)unit > ALLOC_MAX_UNITS) /* costs rounded up: never over the budget */
        unit *= 2, *exact = 0;
    int64_t B = (int64_t)(budget / (double)unit);
    size_t cells = (size_t)(B + 1);
    dp = lc_malloc(cells * sizeof *dp), next = lc_malloc(cells * sizeof *next);
    choice = lc_malloc((size_t)count * cells * sizeof *choice);
    if (!dp || !next || !choice)
        goto out;
    for (size_t b = 0; b < cells; b++)
        dp[b] = 0; /* no tensor yet: no error, whatever is left */
    for (int t = 0; t < count; t++) {
        int64_t full = m[t] < n[t] ? m[t] : n[t];
        double total = 0;
        for (int64_t i = 0; i < full; i++)
            total += s2[t][i];
        for (size_t b = 0; b < cells; b++)
            next[b] = INFINITY;
        for (int j = 0; j < nopt[t]; j++) {
            int k = opt[t][j];
            double kept = 0;
            for (int i = 0; i < k; i++)
                kept += s2[t][i];
            double e = total - kept > 0 ? total - kept : 0;
            int64_t c = ((int64_t)k * (m[t] + n[t]) + unit - 1) / unit;
            for (int64_t b = c; b <= B; b++)
                if (dp[b - c] + e < next[b]) {
                    next[b] = dp[b - c] + e;
                    choice[(size_t)t * cells + (size_t)b] = (uint16_t)j;
                }
        }
        double *tmp = dp;
        dp = next, next = tmp;
    }
    if (!isfinite(dp[B])) {
        lc_error("a budget of %.0f factor elements is below what rank 1 takes (%.0f)", budget, min_cost);
        goto out;
    }
    *err_out = dp[B];
    for (int t = count - 1, b = (int)B; t >= 0; t--) {
        int k = opt[t][choice[(size_t)t * cells + (size_t)b]];
        ranks[t] = k;
        b -= (int)(((int64_t)k * (m[t] + n[t]) + unit - 1) / unit);
    }
    rc = 0;
out:
    for (int t = 0; opt && t < count; t++)
        free(opt[t]);
    free(opt), free(nopt), free(dp), free(next), free(choice);
    return rc;
}
