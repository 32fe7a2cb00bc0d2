/* Unit tests for libcompress/prune.c and the sparse encodings (sparse.c,
 * container.c): exact achieved sparsity for every pattern and scope, N:M
 * structure, Wanda = magnitude under equal activation norms, SparseGPT's
 * output error below magnitude's and Wanda's, encode/decode round trips
 * (dense and quantized kept values) bit-exact against the pruned dense
 * tensor, container round trips, hostile sparse tensors refused.
 * Fixtures come from a fixed-seed PRNG; no assets needed. */
#include "compress/prune.h"
#include "core/tensor.h"
#include "core/sparse.h"

#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/container.h"
#include "test.h"

/* ---- fixtures ------------------------------------------------------------- */

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rng_u64(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_unif(void) { return ((double)(rng_u64() >> 11) + 0.5) / 9007199254740992.0; }
static double rng_norm(void) { return sqrt(-2 * log(rng_unif())) * cos(6.283185307179586 * rng_unif()); }

static float *randn(size_t n, double sd)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(sd * rng_norm());
    return x;
}

/* Correlated inputs X [n, cols] = Z A (A random mixing plus identity) with a
 * few high-variance channels, like LLM activations; H = X^T X. */
static float *make_inputs(int64_t n, int64_t cols, double **H)
{
    float *Z = randn((size_t)(n * cols), 1.0), *A = randn((size_t)(cols * cols), 1.0 / sqrt((double)cols));
    float *X = calloc((size_t)(n * cols), sizeof *X);
    for (int64_t i = 0; i < cols; i++)
        A[i * cols + i] += 0.3f;
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < cols; k++) {
            float z = Z[i * cols + k];
            for (int64_t j = 0; j < cols; j++)
                X[i * cols + j] += z * A[k * cols + j];
        }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < cols; j += 13)
            X[i * cols + j] *= 8.f;
    *H = calloc((size_t)(cols * cols), sizeof **H);
    for (int64_t i = 0; i < n; i++)
        for (int64_t a = 0; a < cols; a++)
            for (int64_t b = 0; b < cols; b++)
                (*H)[a * cols + b] += (double)X[i * cols + a] * X[i * cols + b];
    free(Z), free(A);
    return X;
}

static int kept_of(const lc_tensor *t, int64_t r, int64_t c)
{
    int64_t cols = t->shape[1];
    if (t->enc == LC_ENC_SPARSE_MASK)
        return t->sp_idx[(size_t)r * lc_sparse_mask_row_bytes(cols) + (size_t)(c / 8)] >> (c % 8) & 1;
    /* N:M: is c's position among its group's indices? */
    int ib = lc_sparse_idx_bits(t->sp_m);
    const uint8_t *row = t->sp_idx + (size_t)r * lc_sparse_nm_idx_row_bytes(cols, t->sp_n, t->sp_m);
    for (int j = 0; j < t->sp_n; j++) {
        uint64_t k = (uint64_t)(c / t->sp_m) * t->sp_n + j, bit = k * ib;
        unsigned v = 0;
        for (int b = 0; b < ib; b++, bit++)
            v |= (unsigned)(row[bit >> 3] >> (bit & 7) & 1) << b;
        if ((int64_t)v == c % t->sp_m)
            return 1;
    }
    return 0;
}

static int64_t pruned_in_row(const lc_tensor *t, int64_t r)
{
    int64_t n = 0;
    for (int64_t c = 0; c < t->shape[1]; c++)
        n += !kept_of(t, r, c);
    return n;
}

/* ---- exact sparsity ------------------------------------------------------- */

static void test_exact(void)
{
    const int64_t rows = 37, cols = 96;
    double *H;
    float *X = make_inputs(200, cols, &H);
    float *W = randn((size_t)(rows * cols), 0.1);
    /* already-zero weights: 30% of row 0, all of row 1, a few elsewhere */
    for (int64_t c = 0; c < cols; c++) {
        if (c % 10 < 3)
            W[c] = 0.f;
        W[cols + c] = 0.f;
    }
    W[5 * cols + 7] = -0.f;
    const double sps[] = {0.0, 0.1, 0.25, 0.5, 0.7, 0.95};
    for (int method = 0; method < 3; method++)
        for (int scope = 0; scope < 2; scope++)
            for (size_t si = 0; si < sizeof sps / sizeof *sps; si++) {
                lc_prune_params p;
                lc_prune_params_default(&p, (lc_prune_method)method);
                p.scope = (lc_prune_scope)scope;
                p.sparsity = sps[si];
                p.blocksize = 40; /* blocks that do not divide the row */
                lc_tensor t;
                lc_prune_tensor_report rep;
                if (lc_prune_tensor("w", W, rows, cols, method ? H : NULL, &p, NULL, LC_DT_F32, &t, &rep)) {
                    CHECK(0, "%s scope %d s %g: %s", lc_prune_method_name(p.method), scope, p.sparsity, lc_errmsg());
                    continue;
                }
                int64_t want_t = lc_prune_count(p.sparsity, rows * cols), want_r = lc_prune_count(p.sparsity, cols);
                CHECK(rep.pruned == (scope ? want_t : rows * want_r) && rep.total == rows * cols,
                      "%s scope %d s %g: %lld pruned", lc_prune_method_name(p.method), scope, p.sparsity,
                      (long long)rep.pruned);
                CHECK(t.enc == LC_ENC_SPARSE_MASK && t.sp_nnz == rows * cols - rep.pruned, "nnz %lld",
                      (long long)t.sp_nnz);
                int64_t tot = 0;
                for (int64_t r = 0; r < rows; r++) {
                    int64_t pr = pruned_in_row(&t, r);
                    tot += pr;
                    if (!scope && pr != want_r) {
                        CHECK(0, "%s row %lld s %g: %lld pruned, want %lld", lc_prune_method_name(p.method),
                              (long long)r, p.sparsity, (long long)pr, (long long)want_r);
                        break;
                    }
                }
                CHECK(tot == rep.pruned, "mask count %lld vs report %lld", (long long)tot, (long long)rep.pruned);
                /* magnitude prunes zeros first (they tie at 0, lower index first) */
                if (method == 0 && scope == 0 && sps[si] == 0.25) {
                    int ok = 1;
                    for (int64_t c = 0; c < cols; c++)
                        if ((c % 10 < 3) && c < 24 * 10 / 3 && kept_of(&t, 0, c))
                            ok = 0;
                    CHECK(ok, "zeros of row 0 not pruned first");
                }
                lc_tensor_release(&t);
            }
    /* global magnitude: exact over two tensors together, ties included */
    float *W2 = randn(50 * 64, 0.05);
    for (int i = 0; i < 64 * 5; i++)
        W2[i] = 0.f;
    for (int i = 0; i < 40; i++)
        W2[1000 + i] = 0.03125f, W[2 * cols + i] = -0.03125f;
    int64_t total = rows * cols + 50 * 64;
    float *absw = malloc((size_t)total * sizeof *absw);
    for (int sp = 1; sp < 10; sp += 2) {
        for (int64_t i = 0; i < rows * cols; i++)
            absw[i] = fabsf(W[i]);
        for (int64_t i = 0; i < 50 * 64; i++)
            absw[rows * cols + i] = fabsf(W2[i]);
        float thr;
        int64_t ties, k = lc_prune_count(sp / 10.0, total);
        CHECK(lc_prune_global_threshold(absw, total, k, &thr, &ties) == 0, "threshold");
        uint8_t *k1 = malloc((size_t)(rows * cols)), *k2 = malloc(50 * 64);
        lc_prune_mask_global(W, rows * cols, thr, &ties, k1);
        lc_prune_mask_global(W2, 50 * 64, thr, &ties, k2);
        int64_t pr = 0;
        for (int64_t i = 0; i < rows * cols; i++)
            pr += !k1[i];
        for (int64_t i = 0; i < 50 * 64; i++)
            pr += !k2[i];
        CHECK(pr == k && ties == 0, "global s %g: %lld pruned, want %lld (ties left %lld)", sp / 10.0, (long long)pr,
              (long long)k, (long long)ties);
        free(k1), free(k2);
    }
    free(absw), free(W2);
    free(W), free(X), free(H);
}

/* ---- N:M ---------------------------------------------------------------------- */

static void test_nm(void)
{
    const int64_t rows = 19, cols = 64;
    double *H;
    float *X = make_inputs(150, cols, &H);
    float *W = randn((size_t)(rows * cols), 0.1);
    for (int c = 0; c < 16; c++)
        W[3 * cols + c] = 0.f; /* whole groups of zeros still keep N */
    const int nms[][2] = {{2, 4}, {4, 8}, {1, 4}, {3, 8}, {1, 2}};
    for (int method = 0; method < 3; method++)
        for (size_t k = 0; k < sizeof nms / sizeof *nms; k++)
            for (int bits = 0; bits <= 4; bits += 4) {
                lc_prune_params p;
                lc_prune_params_default(&p, (lc_prune_method)method);
                p.n = nms[k][0], p.m = nms[k][1], p.bits = bits, p.group = 32;
                lc_tensor t;
                lc_prune_tensor_report rep;
                if (lc_prune_tensor("w", W, rows, cols, method ? H : NULL, &p, NULL, LC_DT_F32, &t, &rep)) {
                    CHECK(0, "%s %d:%d: %s", lc_prune_method_name(p.method), p.n, p.m, lc_errmsg());
                    continue;
                }
                CHECK(t.enc == LC_ENC_SPARSE_NM && lc_tensor_validate(&t) == 0, "N:M tensor invalid");
                CHECK(rep.pruned == rows * cols / p.m * (p.m - p.n), "%d:%d pruned %lld", p.n, p.m,
                      (long long)rep.pruned);
                float *d = malloc((size_t)(rows * cols) * sizeof *d);
                lc_tensor_to_f32(&t, d);
                int bad = 0;
                for (int64_t r = 0; r < rows; r++)
                    for (int64_t g = 0; g < cols / p.m; g++) {
                        int kept = 0, nz = 0;
                        for (int j = 0; j < p.m; j++) {
                            kept += kept_of(&t, r, g * p.m + j);
                            nz += d[r * cols + g * p.m + j] != 0.f;
                        }
                        bad += kept != p.n || nz > p.n;
                    }
                CHECK(!bad, "%s %d:%d bits %d: %d groups break the pattern", lc_prune_method_name(p.method), p.n, p.m,
                      bits, bad);
                free(d);
                lc_tensor_release(&t);
            }
    free(W), free(X), free(H);
}

/* ---- Wanda with equal norms = magnitude --------------------------------------- */

static void test_wanda_equal(void)
{
    const int64_t rows = 23, cols = 48;
    float *W = randn((size_t)(rows * cols), 1.0);
    double *H = calloc((size_t)(cols * cols), sizeof *H);
    for (int64_t i = 0; i < cols; i++)
        for (int64_t j = 0; j < cols; j++)
            H[i * cols + j] = i == j ? 7.25 : 0.3; /* equal diagonal, any off-diagonal */
    for (int nm = 0; nm < 2; nm++)
        for (int scope = 0; scope < 2; scope++) {
            lc_prune_params pw, pm;
            lc_prune_params_default(&pw, LC_PRUNE_WANDA);
            lc_prune_params_default(&pm, LC_PRUNE_MAGNITUDE);
            pw.scope = pm.scope = (lc_prune_scope)scope;
            pw.sparsity = pm.sparsity = 0.6;
            if (nm)
                pw.n = pm.n = 2, pw.m = pm.m = 4;
            lc_tensor a, b;
            if (lc_prune_tensor("w", W, rows, cols, H, &pw, NULL, LC_DT_F32, &a, NULL) ||
                lc_prune_tensor("w", W, rows, cols, NULL, &pm, NULL, LC_DT_F32, &b, NULL)) {
                CHECK(0, "prune: %s", lc_errmsg());
                continue;
            }
            CHECK(a.sp_idx_bytes == b.sp_idx_bytes && memcmp(a.sp_idx, b.sp_idx, a.sp_idx_bytes) == 0 &&
                      memcmp(a.data, b.data, a.data_bytes) == 0,
                  "wanda with equal norms differs from magnitude (nm %d scope %d)", nm, scope);
            lc_tensor_release(&a), lc_tensor_release(&b);
        }
    free(W), free(H);
}

/* ---- SparseGPT reconstructs better ---------------------------------------------- */

static double out_err(const float *W, const lc_tensor *t, const float *X, int64_t n, int64_t rows, int64_t cols)
{
    float *P = malloc((size_t)(rows * cols) * sizeof *P);
    lc_tensor_to_f32(t, P);
    double e = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = 0; r < rows; r++) {
            double s = 0;
            for (int64_t c = 0; c < cols; c++)
                s += ((double)W[r * cols + c] - P[r * cols + c]) * X[i * cols + c];
            e += s * s;
        }
    free(P);
    return sqrt(e);
}

static void test_sparsegpt_error(void)
{
    const int64_t rows = 48, cols = 128, n = 400;
    double *H;
    float *X = make_inputs(n, cols, &H);
    float *W = randn((size_t)(rows * cols), 0.1);
    for (int nm = 0; nm < 2; nm++)
        for (int bits = 0; bits <= 4; bits += 4) {
            double err[3];
            for (int method = 0; method < 3; method++) {
                lc_prune_params p;
                lc_prune_params_default(&p, (lc_prune_method)method);
                p.scope = LC_PRUNE_ROW;
                if (nm)
                    p.n = 2, p.m = 4;
                p.bits = bits, p.group = 32;
                lc_tensor t;
                if (lc_prune_tensor("w", W, rows, cols, method ? H : NULL, &p, NULL, LC_DT_F32, &t, NULL)) {
                    CHECK(0, "%s: %s", lc_prune_method_name(p.method), lc_errmsg());
                    err[method] = NAN;
                    continue;
                }
                err[method] = out_err(W, &t, X, n, rows, cols);
                lc_tensor_release(&t);
            }
            fprintf(stderr, "  output error %s%s: magnitude %.4g  wanda %.4g  sparsegpt %.4g\n", nm ? "2:4" : "50%",
                    bits ? " + 4-bit" : "", err[0], err[1], err[2]);
            CHECK(err[2] < err[1] && err[2] < err[0], "sparsegpt %.4g not below wanda %.4g / magnitude %.4g", err[2],
                  err[1], err[0]);
        }
    free(W), free(X), free(H);
}

/* ---- round trips ------------------------------------------------------------------ */

static int same_tensor(const lc_tensor *a, const lc_tensor *b)
{
    int64_t rows = a->shape[0];
    return a->enc == b->enc && a->ndim == b->ndim && a->shape[0] == b->shape[0] && a->shape[1] == b->shape[1] &&
           a->dtype == b->dtype && a->bits == b->bits && a->group == b->group && a->qform == b->qform &&
           a->sp_n == b->sp_n && a->sp_m == b->sp_m && a->sp_nnz == b->sp_nnz && a->data_bytes == b->data_bytes &&
           a->sp_idx_bytes == b->sp_idx_bytes && a->n_groups == b->n_groups &&
           (!a->data_bytes || memcmp(a->data, b->data, a->data_bytes) == 0) &&
           memcmp(a->sp_idx, b->sp_idx, a->sp_idx_bytes) == 0 &&
           (!a->sp_row_ptr || memcmp(a->sp_row_ptr, b->sp_row_ptr, ((size_t)rows + 1) * 8) == 0) &&
           (!a->n_groups || memcmp(a->scales, b->scales, a->n_groups * 2) == 0) &&
           (!a->zeros || memcmp(a->zeros, b->zeros, a->n_groups) == 0);
}

static void test_roundtrip(void)
{
    const int64_t rows = 21, cols = 128;
    float *W = randn((size_t)(rows * cols), 0.2);
    lc_container *c;
    CHECK(lc_container_create_memory(&c) == 0, "memory container: %s", lc_errmsg());
    struct { int n, m, bits, sym; lc_dtype dt; } cases[] = {
        {0, 0, 0, 1, LC_DT_F32}, {0, 0, 0, 1, LC_DT_BF16}, {0, 0, 4, 1, LC_DT_F32}, {0, 0, 4, 0, LC_DT_F32},
        {2, 4, 0, 1, LC_DT_F32}, {4, 8, 0, 1, LC_DT_F16},  {2, 4, 4, 1, LC_DT_F32}, {2, 4, 3, 0, LC_DT_F32},
        {4, 8, 8, 1, LC_DT_F32},
    };
    int nc = (int)(sizeof cases / sizeof *cases);
    lc_tensor *ts = calloc((size_t)nc, sizeof *ts);
    for (int i = 0; i < nc; i++) {
        lc_prune_params p;
        lc_prune_params_default(&p, LC_PRUNE_MAGNITUDE);
        p.scope = LC_PRUNE_ROW;
        p.n = cases[i].n, p.m = cases[i].m, p.bits = cases[i].bits, p.sym = cases[i].sym, p.group = 32;
        char name[32];
        snprintf(name, sizeof name, "t%d", i);
        if (lc_prune_tensor(name, W, rows, cols, NULL, &p, NULL, cases[i].dt, &ts[i], NULL)) {
            CHECK(0, "case %d: %s", i, lc_errmsg());
            continue;
        }
        /* the pruned dense tensor: W at kept positions, 0 elsewhere; with
         * bits, lc_quant_rtn of it (zeros cost nothing on these grids, so its
         * parameters are those of the kept weights alone) */
        float *Wp = malloc((size_t)(rows * cols) * sizeof *Wp), *a = malloc((size_t)(rows * cols) * sizeof *a),
              *b = malloc((size_t)(rows * cols) * sizeof *b);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t k = 0; k < cols; k++)
                Wp[r * cols + k] = kept_of(&ts[i], r, k) ? W[r * cols + k] : 0.f;
        lc_tensor d = {0};
        int64_t shape[2] = {rows, cols};
        int rc;
        if (p.bits) {
            lc_quant_params qp = {p.bits, 32, p.sym, 0};
            rc = lc_quant_rtn(Wp, rows, cols, &qp, &d);
        } else {
            rc = lc_tensor_alloc_dense(&d, "d", cases[i].dt, 2, shape);
            for (int64_t k = 0; !rc && k < rows * cols; k++) {
                if (cases[i].dt == LC_DT_F32)
                    ((float *)d.data)[k] = Wp[k];
                else
                    ((uint16_t *)d.data)[k] = cases[i].dt == LC_DT_F16 ? lc_f32_to_f16(Wp[k]) : lc_f32_to_bf16(Wp[k]);
            }
        }
        CHECK(rc == 0 && lc_tensor_to_f32(&d, a) == 0 && lc_tensor_to_f32(&ts[i], b) == 0, "decode: %s", lc_errmsg());
        /* bit-exact at kept positions; a pruned position decodes to +0 (the dense
         * quantized form gives s * 0, which is -0 for a negative scale) */
        int64_t diff = -1;
        for (int64_t k = 0; k < rows * cols && diff < 0; k++) {
            uint32_t ua, ub;
            memcpy(&ua, &a[k], 4), memcpy(&ub, &b[k], 4);
            if (kept_of(&ts[i], k / cols, k % cols) ? ua != ub : (ub != 0 || a[k] != 0.f))
                diff = k;
        }
        CHECK(diff < 0, "case %d (%d:%d bits %d %s): decode differs from the pruned dense tensor at %lld: %.9g vs %.9g",
              i, p.n, p.m, p.bits, lc_dtype_name(cases[i].dt), (long long)diff, diff < 0 ? 0 : a[diff],
              diff < 0 ? 0 : b[diff]);
        CHECK(lc_tensor_count_nonfinite(&ts[i]) == 0, "nonfinite");
        lc_tensor_release(&d);
        free(Wp), free(a), free(b);
        CHECK(lc_container_write_tensor(c, &ts[i]) == 0, "write case %d: %s", i, lc_errmsg());
    }
    uint8_t *img = NULL;
    size_t len = 0;
    CHECK(lc_container_memory_image(c, &img, &len) == 0, "image: %s", lc_errmsg());
    lc_container_abort(c);
    lc_container *r;
    if (img && lc_container_open_memory(img, len, "img", &r) == 0) {
        for (int i = 0; i < nc; i++) {
            char name[32];
            snprintf(name, sizeof name, "t%d", i);
            lc_tensor t, info;
            CHECK(lc_container_tensor_info(r, name, &info) == 0 &&
                      lc_tensor_stored_bytes(&info) == lc_tensor_stored_bytes(&ts[i]),
                  "info bytes of case %d", i);
            if (lc_container_read_tensor(r, name, &t)) {
                CHECK(0, "read case %d: %s", i, lc_errmsg());
                continue;
            }
            CHECK(same_tensor(&t, &ts[i]), "case %d differs after the container round trip", i);
            lc_tensor_release(&t);
        }
        lc_container_close(r);
    } else {
        CHECK(0, "reopen: %s", lc_errmsg());
    }
    for (int i = 0; i < nc; i++)
        lc_tensor_release(&ts[i]);
    free(ts), free(img), free(W);
}

/* ---- hostile files -------------------------------------------------------------------- */

/* Write a sparse tensor to a file, then overwrite one dataset of it. */
static char *hostile_file(const lc_tensor *t, const char *dset, const void *buf, hid_t mtype, hsize_t count)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/test_prune_%d.h5", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    lc_container *c;
    if (lc_container_create(path, &c) || lc_container_write_tensor(c, t) || lc_container_close(c))
        return NULL;
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    char full[128];
    snprintf(full, sizeof full, "tensors/%s/%s", t->name, dset);
    hid_t d = -1;
    if (count) { /* replace by a dataset of another size */
        H5Ldelete(f, full, H5P_DEFAULT);
        hid_t sp = H5Screate_simple(1, &count, NULL);
        d = H5Dcreate2(f, full, mtype == H5T_NATIVE_UINT64 ? H5T_STD_U64LE : H5T_STD_U8LE, sp, H5P_DEFAULT,
                       H5P_DEFAULT, H5P_DEFAULT);
        H5Sclose(sp);
    } else {
        d = H5Dopen2(f, full, H5P_DEFAULT);
    }
    int ok = d >= 0 && (!buf || H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0); /* NULL: never written */
    if (d >= 0)
        H5Dclose(d);
    H5Fclose(f);
    return ok ? path : NULL;
}

static void expect_refused(const char *path, const char *what, const char *needle)
{
    lc_container *c;
    lc_tensor t;
    if (!path) {
        CHECK(0, "%s: could not build the file", what);
        return;
    }
    if (lc_container_open(path, &c)) {
        CHECK(0, "%s: open: %s", what, lc_errmsg());
        return;
    }
    int rc = lc_container_read_tensor(c, "w", &t);
    CHECK(rc != 0, "%s: accepted", what);
    if (rc)
        CHECK(strstr(lc_errmsg(), needle) != NULL, "%s: message '%s' lacks '%s'", what, lc_errmsg(), needle);
    else
        lc_tensor_release(&t);
    lc_container_close(c);
    unlink(path);
}

static void test_hostile(void)
{
    const int64_t rows = 6, cols = 64;
    float *W = randn((size_t)(rows * cols), 1.0);
    lc_prune_params p;
    lc_prune_params_default(&p, LC_PRUNE_MAGNITUDE);
    lc_tensor m, nm;
    p.scope = LC_PRUNE_ROW;
    int rc = lc_prune_tensor("w", W, rows, cols, NULL, &p, NULL, LC_DT_F32, &m, NULL);
    p.n = 2, p.m = 4;
    rc |= lc_prune_tensor("w", W, rows, cols, NULL, &p, NULL, LC_DT_F32, &nm, NULL);
    CHECK(rc == 0, "setup: %s", lc_errmsg());
    if (rc)
        return;
    /* the untouched file reads back */
    char *ok = hostile_file(&m, "row_ptr", m.sp_row_ptr, H5T_NATIVE_UINT64, 0);
    lc_container *c;
    lc_tensor t;
    CHECK(ok && lc_container_open(ok, &c) == 0 && lc_container_read_tensor(c, "w", &t) == 0, "clean file: %s",
          lc_errmsg());
    if (ok) {
        lc_tensor_release(&t);
        lc_container_close(c);
        unlink(ok);
    }
    uint64_t rp[7];
    memcpy(rp, m.sp_row_ptr, sizeof rp);
    rp[3] = 1ull << 60;
    expect_refused(hostile_file(&m, "row_ptr", rp, H5T_NATIVE_UINT64, 0), "row_ptr out of range", "row_ptr");
    memcpy(rp, m.sp_row_ptr, sizeof rp);
    rp[2] += 1, rp[3] -= 1; /* sums still right, rows shifted */
    expect_refused(hostile_file(&m, "row_ptr", rp, H5T_NATIVE_UINT64, 0), "row_ptr against mask", "mask keeps");
    memcpy(rp, m.sp_row_ptr, sizeof rp);
    rp[0] = 1;
    expect_refused(hostile_file(&m, "row_ptr", rp, H5T_NATIVE_UINT64, 0), "row_ptr[0] != 0", "row_ptr[0]");
    uint8_t mask[6 * 8];
    memcpy(mask, m.sp_idx, sizeof mask);
    mask[9] ^= 0x10; /* one more (or fewer) kept in row 1: popcount != values */
    expect_refused(hostile_file(&m, "mask", mask, H5T_NATIVE_UINT8, 0), "mask popcount", "mask keeps");
    expect_refused(hostile_file(&m, "row_ptr", rp, H5T_NATIVE_UINT64, 5), "short row_ptr", "elements");
    expect_refused(hostile_file(&m, "values", W, H5T_NATIVE_UINT8, 11), "values count", "elements");
    /* the right extent but no bytes behind it: refused before allocating */
    expect_refused(hostile_file(&m, "mask", NULL, H5T_NATIVE_UINT8, m.sp_idx_bytes), "unwritten mask", "never written");
    uint8_t idx[6 * 8];
    memcpy(idx, nm.sp_idx, sizeof idx);
    idx[4] = 0xff; /* positions 3,3 in two groups: not increasing */
    expect_refused(hostile_file(&nm, "indices", idx, H5T_NATIVE_UINT8, 0), "bad N:M indices", "position");
    memcpy(idx, nm.sp_idx, sizeof idx);
    idx[0] = (uint8_t)((idx[0] & 0xf0) | 0x1 | (0x0 << 2)); /* positions 1, 0: decreasing */
    expect_refused(hostile_file(&nm, "indices", idx, H5T_NATIVE_UINT8, 0), "decreasing N:M indices", "position");
    expect_refused(hostile_file(&nm, "indices", idx, H5T_NATIVE_UINT8, 47), "short indices", "elements");
    /* random corruption of each array (same sizes): refused cleanly, or
     * accepted only as a consistent tensor that decodes */
    for (int it = 0; it < 120; it++) {
        const lc_tensor *src = it % 2 ? &nm : &m;
        int which = (int)(rng_u64() % 3);
        const char *dset = which == 0 ? (src == &m ? "mask" : "indices") : which == 1 ? "values" : "row_ptr";
        if (src == &nm && which == 2)
            dset = "indices";
        size_t nb = !strcmp(dset, "values") ? (size_t)src->sp_nnz * 4 : !strcmp(dset, "row_ptr") ? 7 * 8 : src->sp_idx_bytes;
        uint8_t *buf = malloc(nb);
        memcpy(buf, !strcmp(dset, "values") ? src->data : !strcmp(dset, "row_ptr") ? (void *)src->sp_row_ptr : src->sp_idx,
               nb);
        for (int f = 0; f < 1 + (int)(rng_u64() % 3); f++)
            buf[rng_u64() % nb] ^= (uint8_t)(1u << (rng_u64() % 8));
        hid_t mt = !strcmp(dset, "values") ? H5T_NATIVE_FLOAT : !strcmp(dset, "row_ptr") ? H5T_NATIVE_UINT64 : H5T_NATIVE_UINT8;
        char *path = hostile_file(src, dset, buf, mt, 0);
        free(buf);
        if (!path || lc_container_open(path, &c)) {
            CHECK(0, "corruption %d: setup", it);
            continue;
        }
        lc_error("%s", ""); /* so that a refusal without a message of its own is caught */
        if (lc_container_read_tensor(c, "w", &t) == 0) {
            float *d = malloc((size_t)(rows * cols) * sizeof *d);
            CHECK(lc_tensor_validate(&t) == 0 && lc_tensor_to_f32(&t, d) == 0, "corruption %d: accepted but invalid", it);
            free(d);
            lc_tensor_release(&t);
        } else {
            /* the refusal says which tensor and why (not the "unknown error" of no message) */
            CHECK(strstr(lc_errmsg(), "tensor 'w': row") && !strstr(lc_errmsg(), "tensor 'w': tensor 'w'"),
                  "corruption %d: message '%s'", it, lc_errmsg());
        }
        lc_container_close(c);
        unlink(path);
    }
    lc_tensor_release(&m), lc_tensor_release(&nm);
    free(W);
}

/* ---- parameters ------------------------------------------------------------------------ */

static void test_params(void)
{
    lc_prune_params p;
    lc_prune_params_default(&p, LC_PRUNE_WANDA);
    CHECK(p.scope == LC_PRUNE_ROW && p.sparsity == 0.5 && lc_prune_params_check(&p, 64) == 0, "wanda defaults");
    p.sparsity = 1.0;
    CHECK(lc_prune_params_check(&p, 0) != 0, "sparsity 1 accepted");
    p.sparsity = 0.5, p.n = 2, p.m = 4;
    CHECK(lc_prune_params_check(&p, 66) != 0, "M not dividing the row accepted");
    p.n = 4;
    CHECK(lc_prune_params_check(&p, 64) != 0, "N = M accepted");
    p.n = 0, p.scope = LC_PRUNE_GLOBAL;
    CHECK(lc_prune_params_check(&p, 0) != 0, "global wanda accepted");
    CHECK(lc_prune_count(0.5, 7) == 4 && lc_prune_count(0.29, 100) == 29 && lc_prune_count(0.0, 9) == 0, "counts");
}

int main(void)
{
    test_begin("test_prune");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    test_params();
    test_exact();
    test_nm();
    test_wanda_equal();
    test_sparsegpt_error();
    test_roundtrip();
    test_hostile();
    return test_end("test_prune");
}
