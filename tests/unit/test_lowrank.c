/* Low-rank factorization (compress/lowrank.h), the low-rank term of the
 * container (io/container.c), its kernels against their scalar twins and
 * the dense product (kernels/lowrank.c), and a model that runs it. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "compress/calib.h"
#include "compress/lowrank.h"
#include "compress/quant.h"
#include "convert/import.h"
#include "core/tensor.h"
#include "kernels/kernels.h"
#include "model/infer.h"
#include "model/model.h"
#include "test.h"

static uint64_t rng = 88172645463325252ull;
static double urand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}
static double nrand(void) { return sqrt(-2 * log(urand() + 1e-300)) * cos(6.283185307179586 * urand()); }

/* W [m, n] with a decaying spectrum plus noise. */
static float *make_w(int m, int n)
{
    float *W = malloc((size_t)m * n * sizeof *W);
    int r = m < n ? m : n;
    double *u = malloc((size_t)m * sizeof *u), *v = malloc((size_t)n * sizeof *v);
    memset(W, 0, (size_t)m * n * sizeof *W);
    for (int k = 0; k < r; k++) {
        double s = 1.0 / (1.0 + k);
        for (int i = 0; i < m; i++) u[i] = nrand();
        for (int j = 0; j < n; j++) v[j] = nrand();
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                W[(size_t)i * n + j] += (float)(s * u[i] * v[j] / sqrt((double)n));
    }
    free(u), free(v);
    return W;
}

/* H = X^T X of T correlated rows (a few strong channels); channel `dead`
 * (if >= 0) is always 0, so H is singular. */
static double *make_h(int n, int T, int dead, float *absmean)
{
    double *H = calloc((size_t)n * n, sizeof *H), *x = malloc((size_t)n * sizeof *x);
    for (int j = 0; j < n; j++)
        absmean[j] = 0;
    for (int t = 0; t < T; t++) {
        double common = nrand();
        for (int j = 0; j < n; j++) {
            x[j] = (j % 7 == 0 ? 8.0 : 1.0) * nrand() + 0.5 * common;
            if (j == dead)
                x[j] = 0;
            absmean[j] += (float)(fabs(x[j]) / T);
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                H[(size_t)i * n + j] += x[i] * x[j];
    }
    free(x);
    return H;
}

static double max_rel_diff(const float *a, const float *b, size_t n)
{
    double md = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - b[i]));
        mx = fmax(mx, fabs((double)b[i]));
    }
    return mx > 0 ? md / mx : md;
}

static void test_factor(void)
{
    enum { M = 48, N = 64 };
    float *W = make_w(M, N), absm[N], *D = malloc(M * N * sizeof *D);
    double *H = make_h(N, 400, -1, absm);
    lc_lr_params p;
    lc_lr_report r;
    lc_tensor t;
    static const char *const mn[] = {"svd", "whiten", "asvd"};
    /* full rank reconstructs W */
    for (int meth = 0; meth < 3; meth++) {
        lc_lr_params_default(&p);
        p.method = (lc_lr_method)meth, p.rank = M, p.percdamp = 1e-9;
        CHECK(lc_lowrank_factor("w", W, M, N, H, absm, &p, &t, &r) == 0, "%s full rank: %s", mn[meth], lc_errmsg());
        CHECK(t.enc == LC_ENC_LOWRANK && t.lr_rank == M && lc_tensor_validate(&t) == 0, "%s: a low-rank tensor", mn[meth]);
        lc_tensor_to_f32(&t, D);
        double d = max_rel_diff(D, W, M * N);
        CHECK(d < 2e-5, "%s: full rank reconstructs W (max rel diff %g)", mn[meth], d);
        CHECK(r.energy > 0.999999, "%s: full rank keeps all energy (%g)", mn[meth], r.energy);
        lc_tensor_release(&t);
    }
    /* at rank k, whiten's output error on the data is no larger than svd's or asvd's */
    double err[3];
    for (int meth = 0; meth < 3; meth++) {
        lc_lr_params_default(&p);
        p.method = (lc_lr_method)meth, p.rank = 12, p.percdamp = 1e-6;
        CHECK(lc_lowrank_factor("w", W, M, N, H, absm, &p, &t, &r) == 0, "%s rank 12: %s", mn[meth], lc_errmsg());
        lc_tensor_to_f32(&t, D);
        err[meth] = lc_lowrank_rel_error(W, D, M, N, H);
        CHECK(fabs(err[meth] - r.err) <= 1e-9 + 1e-6 * err[meth], "%s: the report's error is the output error", mn[meth]);
        lc_tensor_release(&t);
    }
    CHECK(err[1] <= err[0] && err[1] <= err[2], "whiten %g <= svd %g, asvd %g", err[1], err[0], err[2]);
    fprintf(stderr, "test_lowrank: rank 12 of 48x64, output error: svd %.4f, asvd %.4f, whiten %.4f\n", err[0], err[2],
            err[1]);
    /* svd is the Frobenius optimum: its weight error is below whiten's */
    lc_lr_params_default(&p);
    p.method = LC_LR_SVD, p.rank = 12;
    lc_lowrank_factor("w", W, M, N, NULL, NULL, &p, &t, &r);
    lc_tensor_to_f32(&t, D);
    double fs = lc_lowrank_rel_error(W, D, M, N, NULL);
    CHECK(fabs(fs - r.err) < 1e-9 + 1e-6 * fs, "svd without H reports the weight error");
    lc_tensor_release(&t);
    p.method = LC_LR_WHITEN;
    lc_lowrank_factor("w", W, M, N, H, absm, &p, &t, &r);
    lc_tensor_to_f32(&t, D);
    CHECK(fs <= lc_lowrank_rel_error(W, D, M, N, NULL) + 1e-12, "svd minimises the weight error");
    lc_tensor_release(&t);
    free(H);

    /* a dead input channel: H singular, the damping path still factors */
    H = make_h(N, 400, 5, absm);
    lc_lr_params_default(&p);
    p.method = LC_LR_WHITEN, p.rank = 12, p.percdamp = 0;
    CHECK(lc_lowrank_factor("w", W, M, N, H, absm, &p, &t, &r) == 0, "singular H: %s", lc_errmsg());
    CHECK(r.damp_retries == 0 && r.percdamp == 0 ? 0 : 1, "singular H took the damping path");
    lc_tensor_release(&t);
    p.percdamp = 1e-12; /* a tiny damping is enough for an exactly dead channel */
    CHECK(lc_lowrank_factor("w", W, M, N, H, absm, &p, &t, &r) == 0, "singular H, tiny damp: %s", lc_errmsg());
    lc_tensor_to_f32(&t, D);
    int finite = 1;
    for (int i = 0; i < M * N; i++)
        finite &= isfinite(D[i]);
    CHECK(finite && r.err < 1, "a valid factorization (finite, error %g) after %d retries at %g", r.err,
          r.damp_retries, r.percdamp);
    fprintf(stderr, "test_lowrank: dead channel, percdamp 1e-12: %d Cholesky retries, damping %g, output error %.4f\n",
            r.damp_retries, r.percdamp, r.err);
    lc_tensor_release(&t);
    float z[N];
    memset(z, 0, sizeof z);
    double *H0 = calloc(N * N, sizeof *H0);
    p.percdamp = 1e-3;
    CHECK(lc_lowrank_factor("w", W, M, N, H0, z, &p, &t, &r) != 0 && strstr(lc_errmsg(), "no signal"),
          "an all-zero Gram is refused: %s", lc_errmsg());
    free(H0);
    free(H);

    /* rank rules */
    int k;
    lc_lr_params_default(&p);
    p.ratio = 0.2, p.align = 1; /* the exact formula */
    CHECK(lc_lowrank_rank(&p, 512, 512, NULL, 0, &k) == 0 && k == 204, "ratio 0.2 of 512x512: k %d (204)", k);
    CHECK(lc_lowrank_rank(&p, 1536, 512, NULL, 0, &k) == 0 && k == 307, "ratio 0.2 of 1536x512: k %d (307)", k);
    p.align = 16; /* the default: down to whole cache lines of f32, a cut of at least the ratio */
    CHECK(lc_lowrank_rank(&p, 512, 512, NULL, 0, &k) == 0 && k == 192, "aligned: k %d (192)", k);
    CHECK(lc_lowrank_rank(&p, 1536, 512, NULL, 0, &k) == 0 && k == 304, "aligned: k %d (304)", k);
    CHECK(lc_lowrank_rank(&p, 100, 60, NULL, 0, &k) == 0 && k == 30, "below 4 x 16 the exact rank: k %d (30)", k);
    p.ratio = 0.9999;
    CHECK(lc_lowrank_rank(&p, 4, 4, NULL, 0, &k) != 0 && strstr(lc_errmsg(), "less than rank 1"),
          "a ratio leaving no rank: %s", lc_errmsg());
    p.ratio = 0, p.rank = 49;
    CHECK(lc_lowrank_rank(&p, 48, 64, NULL, 0, &k) != 0 && strstr(lc_errmsg(), "above min"), "rank above min: %s",
          lc_errmsg());
    p.rank = 3, p.ratio = 0.5;
    CHECK(lc_lowrank_rank(&p, 48, 64, NULL, 0, &k) != 0, "two rank rules refused");
    double s2[5] = {50, 30, 15, 4, 1};
    p.rank = 0, p.ratio = 0, p.energy = 0.95, p.align = 1;
    CHECK(lc_lowrank_rank(&p, 5, 5, s2, 5, &k) == 0 && k == 3, "energy 0.95 of 50/30/15/4/1: k %d (3)", k);
    p.energy = 0.96;
    CHECK(lc_lowrank_rank(&p, 5, 5, s2, 5, &k) == 0 && k == 4, "energy 0.96: k %d (4)", k);
    /* NaN weights */
    lc_lr_params_default(&p);
    p.method = LC_LR_SVD, p.rank = 4;
    W[7] = NAN;
    CHECK(lc_lowrank_factor("w", W, M, N, NULL, NULL, &p, &t, &r) != 0 && strstr(lc_errmsg(), "NaN"),
          "NaN weights refused: %s", lc_errmsg());
    free(W), free(D);
}

/* A tensor of every low-rank composition the kernels run. */
enum { KM = 72, KN = 96, KR = 40 };
static int make_case(int which, lc_tensor *t)
{
    float *W = make_w(KM, KN);
    lc_lr_params p;
    lc_lr_params_default(&p);
    p.method = LC_LR_SVD, p.rank = KR, p.factor_bits = which == 1 ? 8 : 0;
    int rc = lc_lowrank_factor("m", W, KM, KN, NULL, NULL, &p, t, NULL);
    if (!rc && which >= 2) { /* a base under the term: q4 codes, or f32 */
        lc_tensor base = {0};
        lc_quant_params q = {.bits = 4, .group = 32, .sym = 1};
        rc = which == 2 ? lc_quant_rtn(W, KM, KN, &q, &base)
                        : lc_tensor_alloc_dense(&base, "m", LC_DT_F32, 2, (int64_t[]){KM, KN});
        if (!rc && which == 3)
            memcpy(base.data, W, sizeof(float) * KM * KN);
        base.lr_rank = t->lr_rank, base.lr_a = t->lr_a, base.lr_b = t->lr_b;
        t->lr_a = t->lr_b = NULL;
        lc_tensor_release(t);
        *t = base;
        snprintf(t->name, sizeof t->name, "m");
        rc = rc || lc_tensor_validate(t);
    }
    free(W);
    return rc;
}

static void test_kernels(void)
{
    static const char *const cname[] = {"lr f32", "lr q8", "q4+lr", "f32+lr"};
    lc_isa top = lc_isa_detect();
    for (int which = 0; which < 4; which++) {
        lc_tensor t;
        CHECK(make_case(which, &t) == 0, "%s: %s", cname[which], lc_errmsg());
        char enc[96];
        lc_tensor_encoding_str(&t, enc, sizeof enc);
        fprintf(stderr, "test_lowrank: kernels on %s\n", enc);
        float *D = malloc(sizeof(float) * KM * KN), *R = malloc(sizeof(float) * KM * KN);
        lc_tensor_to_f32(&t, D);
        lc_wmat w, fac[2];
        CHECK(lc_wmat_from_tensor(&w, &t) != 0, "%s: a view without factor homes is refused", cname[which]);
        CHECK(lc_wmat_from_tensor_lr(&w, &t, fac) == 0, "%s view: %s", cname[which], lc_errmsg());
        CHECK(lc_wmat_bytes(&w) == lc_tensor_stored_bytes(&t), "%s: view bytes = stored bytes", cname[which]);
        lc_wmat_rows_f32(&w, 0, KM, R);
        CHECK(max_rel_diff(R, D, KM * KN) < 1e-5, "%s: row decoder = lc_tensor_to_f32", cname[which]);
        float x[KN], yd[KM], yr[KM], yf[KM];
        for (int j = 0; j < KN; j++)
            x[j] = (float)nrand();
        for (int i = 0; i < KM; i++) {
            double s = 0;
            for (int j = 0; j < KN; j++)
                s += (double)D[i * KN + j] * x[j];
            yd[i] = (float)s;
        }
        lc_matvec_ref(&w, x, yr, 0, KM);
        CHECK(max_rel_diff(yr, yd, KM) < 1e-4, "%s: reference matvec = dense product", cname[which]);
        for (int isa = 0; isa <= (int)top; isa++) {
            for (int i = 0; i < KM; i++)
                yf[i] = NAN;
            lc_matvec(&w, x, yf, 0, 30, (lc_isa)isa);
            lc_matvec(&w, x, yf, 30, KM, (lc_isa)isa);
            CHECK(max_rel_diff(yf, yr, KM) < 1e-5, "%s at %s: matvec (split rows) = its scalar twin", cname[which],
                  lc_isa_name((lc_isa)isa));
            /* the decode loop's form: t = B x once, then base + A t per row range */
            float tt[KR], ya[KM];
            lc_matvec(w.lr_b, x, tt, 0, KR, (lc_isa)isa);
            lc_wmat base = lc_wmat_base(&w);
            lc_matvec(&base, x, ya, 0, KM, (lc_isa)isa);
            lc_lowrank_add(&w, tt, ya, 0, KM, (lc_isa)isa);
            CHECK(max_rel_diff(ya, yr, KM) < 1e-5, "%s at %s: two-step decode = twin", cname[which],
                  lc_isa_name((lc_isa)isa));
        }
        /* prefill: Y = X W^T, with scratch that fits, that forces chunks, and too little */
        enum { NX = 9 };
        float X[NX * KN], Yd[NX * KM], Y[NX * KM], scratch[KN * 8 + KR * NX];
        for (int i = 0; i < NX * KN; i++)
            X[i] = (float)nrand();
        for (int i = 0; i < NX; i++)
            for (int r = 0; r < KM; r++) {
                double s = 0;
                for (int j = 0; j < KN; j++)
                    s += (double)X[i * KN + j] * D[r * KN + j];
                Yd[i * KM + r] = (float)s;
            }
        size_t sizes[3] = {sizeof scratch / sizeof *scratch, KN + 2 * KR, KN};
        for (int si = 0; si < 3; si++) {
            for (int i = 0; i < NX * KM; i++)
                Y[i] = NAN;
            lc_matmul(&w, X, NX, Y, KM, scratch, sizes[si]);
            CHECK(max_rel_diff(Y, Yd, NX * KM) < 1e-4, "%s: prefill (scratch %zu floats) = dense product",
                  cname[which], sizes[si]);
        }
        free(D), free(R);
        lc_tensor_release(&t);
    }
}

static void test_container(void)
{
    lc_tensor t[2];
    CHECK(make_case(1, &t[0]) == 0 && make_case(2, &t[1]) == 0, "cases: %s", lc_errmsg());
    snprintf(t[1].name, sizeof t[1].name, "n");
    lc_container *w, *r;
    uint8_t *img;
    size_t len;
    CHECK(lc_container_create_memory(&w) == 0, "create");
    CHECK(lc_container_format_version(w) == 1, "a new file is format 1");
    for (int i = 0; i < 2; i++)
        CHECK(lc_container_write_tensor(w, &t[i]) == 0, "write %d: %s", i, lc_errmsg());
    CHECK(lc_container_format_version(w) == 2, "a low-rank term raises it to 2");
    lc_container_memory_image(w, &img, &len);
    lc_container_close(w);
    CHECK(lc_container_open_memory(img, len, "lr", &r) == 0, "open: %s", lc_errmsg());
    CHECK(lc_container_format_version(r) == 2, "read back as format 2");
    for (int i = 0; i < 2; i++) {
        lc_tensor b, info;
        CHECK(lc_container_tensor_info(r, t[i].name, &info) == 0 && info.lr_rank == KR &&
                  lc_tensor_stored_bytes(&info) == lc_tensor_stored_bytes(&t[i]),
              "info %d: rank and bytes: %s", i, lc_errmsg());
        lc_tensor_release(&info);
        CHECK(lc_container_read_tensor(r, t[i].name, &b) == 0, "read %d: %s", i, lc_errmsg());
        float *a = malloc(sizeof(float) * KM * KN), *c = malloc(sizeof(float) * KM * KN);
        lc_tensor_to_f32(&t[i], a), lc_tensor_to_f32(&b, c);
        CHECK(memcmp(a, c, sizeof(float) * KM * KN) == 0, "tensor %d round-trips bit for bit", i);
        char e1[96], e2[96];
        lc_tensor_encoding_str(&t[i], e1, sizeof e1), lc_tensor_encoding_str(&b, e2, sizeof e2);
        CHECK(strcmp(e1, e2) == 0, "encoding %s = %s", e1, e2);
        free(a), free(c);
        lc_tensor_release(&b);
    }
    char e[96];
    lc_tensor_encoding_str(&t[1], e, sizeof e);
    CHECK(strcmp(e, "q4-sym-g32+lr40") == 0, "composed name '%s'", e);
    lc_tensor_encoding_str(&t[0], e, sizeof e);
    CHECK(strcmp(e, "lr40[q8-sym-g32,q8-sym-row]") == 0 || strncmp(e, "lr40[q8-sym-g", 13) == 0, "factor name '%s'", e);
    lc_container_close(r);
    /* a copy keeps the term */
    lc_tensor cp;
    CHECK(lc_tensor_copy(&cp, &t[1]) == 0 && cp.lr_a != t[1].lr_a && cp.lr_rank == KR, "deep copy");
    lc_tensor_release(&cp);
    /* inconsistent terms are refused by validation (and so by the writer) */
    t[1].lr_rank = KR + 1;
    CHECK(lc_tensor_validate(&t[1]) != 0 && strstr(lc_errmsg(), "factor"), "rank vs factor shape: %s", lc_errmsg());
    t[1].lr_rank = KR;
    lc_tensor *keep = t[1].lr_b;
    t[1].lr_b = NULL;
    CHECK(lc_tensor_validate(&t[1]) != 0 && strstr(lc_errmsg(), "missing"), "missing factor: %s", lc_errmsg());
    t[1].lr_b = keep;
    free(img);
    for (int i = 0; i < 2; i++)
        lc_tensor_release(&t[i]);
}

/* A synthetic model with some linears replaced by low-rank terms gives the
 * logits of the same model with their products installed densely. */
static void test_model(void)
{
    lc_container *w, *r;
    lc_import_report rep;
    uint8_t *img;
    size_t len;
    lc_container_create_memory(&w);
    CHECK(lc_import_synthetic(5, w, &rep) == 0, "synthetic: %s", lc_errmsg());
    lc_container_memory_image(w, &img, &len);
    lc_container_close(w);
    lc_container_open_memory(img, len, "syn", &r);
    free(img);
    lc_model *m, *d;
    lc_model_opts o = {.n_threads = 2, .max_isa = LC_ISA_AVX512};
    CHECK(lc_model_load(r, &o, &m) == 0 && lc_model_load(r, &o, &d) == 0, "load: %s", lc_errmsg());
    const lc_config *c = lc_model_config(m);
    static const char *const which[] = {"attn_q", "attn_v", "ffn_up", "ffn_down"};
    for (int l = 0; l < c->n_layers; l++)
        for (int i = 0; i < 4; i++) {
            char name[LC_NAME_MAX];
            lc_layer_tensor_name(name, sizeof name, l, which[i]);
            const lc_tensor *t = lc_model_tensor(m, name);
            int64_t rows = lc_tensor_rows(t), cols = lc_tensor_cols(t);
            float *W = malloc(sizeof(float) * (size_t)(rows * cols));
            lc_tensor_to_f32(t, W);
            lc_lr_params p;
            lc_lr_params_default(&p);
            p.method = LC_LR_SVD, p.rank = (int)(rows < cols ? rows : cols) / 3;
            lc_tensor lr, dense;
            CHECK(lc_lowrank_factor(name, W, rows, cols, NULL, NULL, &p, &lr, NULL) == 0, "%s: %s", name, lc_errmsg());
            lc_tensor_alloc_dense(&dense, name, LC_DT_F32, 2, (int64_t[]){rows, cols});
            lc_tensor_to_f32(&lr, dense.data);
            CHECK(lc_model_set_tensor(m, &lr) == 0 && lc_model_set_tensor(d, &dense) == 0, "install %s: %s", name,
                  lc_errmsg());
            lc_tensor_release(&lr), lc_tensor_release(&dense);
            free(W);
        }
    enum { N = 24 };
    int32_t tok[N];
    for (int i = 0; i < N; i++)
        tok[i] = (int32_t)((i * 53 + 7) % c->vocab_size);
    size_t V = (size_t)c->vocab_size;
    float *lm = malloc(N * V * sizeof(float)), *ld = malloc(N * V * sizeof(float)), *step = malloc(V * sizeof(float));
    lc_state *s1, *s2;
    CHECK(lc_state_new(m, 64, &s1) == 0 && lc_state_new(d, 64, &s2) == 0, "states");
    CHECK(lc_forward(m, s1, tok, N, 0, lm, LC_LOGITS_ALL) == 0 && lc_forward(d, s2, tok, N, 0, ld, LC_LOGITS_ALL) == 0,
          "prefill: %s", lc_errmsg());
    CHECK(max_rel_diff(lm, ld, N * V) < 1e-4, "prefill: low-rank = its dense product (%g)", max_rel_diff(lm, ld, N * V));
    /* decode token by token: the two-step matvec path of the decode loop */
    double worst = 0;
    for (int i = 0; i < N; i++) {
        CHECK(lc_forward(m, s1, tok + i, 1, i, step, LC_LOGITS_LAST) == 0, "decode %d", i);
        worst = fmax(worst, max_rel_diff(step, ld + (size_t)i * V, V));
    }
    CHECK(worst < 1e-3, "decode: low-rank = dense prefill (%g)", worst);
    CHECK(lc_model_bytes_per_token(m) < lc_model_bytes_per_token(d), "fewer bytes per token with the factors");
    free(lm), free(ld), free(step);
    lc_state_free(s1), lc_state_free(s2);
    lc_model_free(m), lc_model_free(d);
    lc_container_close(r);
}

/* On sqz-s7's calibration data, whiten's output error is no larger than
 * plain SVD's, tensor by tensor. */
typedef struct {
    int checked, worse;
    double worst;
} real_ctx;

static const char *const LIN[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

static int real_layer(void *ud, lc_model *m, int layer, const lc_layer_stats *st)
{
    real_ctx *c = ud;
    for (int i = 0; i < 7; i++) {
        char name[LC_NAME_MAX];
        lc_layer_tensor_name(name, sizeof name, layer, LIN[i]);
        const lc_tensor *t = lc_model_tensor(m, name);
        int64_t rows = lc_tensor_rows(t), cols = lc_tensor_cols(t);
        float *W = malloc(sizeof(float) * (size_t)(rows * cols)), *D = malloc(sizeof(float) * (size_t)(rows * cols));
        lc_tensor_to_f32(t, W);
        const double *H = st->H[lc_calib_point_of(LIN[i])];
        double e[2];
        for (int k = 0; k < 2; k++) {
            lc_lr_params p;
            lc_lr_params_default(&p);
            p.method = k ? LC_LR_WHITEN : LC_LR_SVD, p.ratio = 0.2;
            lc_tensor lr;
            lc_lr_report rep;
            CHECK(lc_lowrank_factor(name, W, rows, cols, H, NULL, &p, &lr, &rep) == 0, "%s: %s", name, lc_errmsg());
            e[k] = rep.err;
            lc_tensor_release(&lr);
        }
        CHECK(e[1] <= e[0], "%s: whiten output error %g above svd's %g", name, e[1], e[0]);
        c->checked++;
        c->worst = fmax(c->worst, e[1] / e[0]);
        free(W), free(D);
    }
    return 0;
}

static void test_real(void)
{
    const char *sh = test_shared();
    if (!sh) {
        SKIP("whiten vs svd on sqz-s7's calibration data: no LC_SHARED models");
        return;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/models/sqz-s7", sh);
    lc_container *w, *r;
    lc_import_report rep;
    uint8_t *img;
    size_t len;
    lc_container_create_memory(&w);
    CHECK(lc_import_hf(dir, w, &rep) == 0, "import: %s", lc_errmsg());
    lc_container_memory_image(w, &img, &len);
    lc_container_close(w);
    lc_container_open_memory(img, len, "s7", &r);
    free(img);
    lc_model *m;
    lc_tokenizer tk;
    lc_model_opts mo = {.n_threads = 2, .max_isa = LC_ISA_AVX512};
    CHECK(lc_model_load(r, &mo, &m) == 0 && lc_container_read_tokenizer(r, &tk) == 0, "load: %s", lc_errmsg());
    lc_calib_opts o;
    lc_calib_opts_default(&o);
    o.nsamples = 16, o.seqlen = 256, o.independent = 1;
    real_ctx c = {0, 0, 0};
    lc_calib_report cr;
    CHECK(lc_calib_run(m, &tk, &o, real_layer, &c, &cr) == 0, "calibration: %s", lc_errmsg());
    CHECK(c.checked == 7 * lc_model_config(m)->n_layers, "every linear (%d)", c.checked);
    fprintf(stderr, "test_lowrank: sqz-s7 ratio 0.2, %d linears: whiten/svd output error at worst %.3f\n", c.checked,
            c.worst);
    lc_tokenizer_release(&tk);
    lc_model_free(m);
    lc_container_close(r);
}

/* The allocation is the exact optimum: brute force over every choice. */
static void test_allocate(void)
{
    enum { T = 3 };
    int64_t m[T] = {6, 8, 5}, n[T] = {7, 4, 9};
    double sp[T][8], *s2[T];
    for (int t = 0; t < T; t++) {
        s2[t] = sp[t];
        double v = 10.0 * (t + 1);
        for (int i = 0; i < 8; i++)
            sp[t][i] = v, v *= 0.3 + 0.2 * t;
    }
    int worse = 0, tried = 0;
    for (double budget = 18; budget <= 160; budget += 7) {
        int ranks[T], exact;
        double err;
        if (lc_lowrank_allocate(T, (const double *const *)s2, m, n, budget, 1, ranks, &err, &exact)) {
            CHECK(budget < 13 + 12 + 14, "only a budget below rank 1 fails (%g): %s", budget, lc_errmsg());
            continue;
        }
        double best = INFINITY, cost = 0, e = 0;
        for (int a = 1; a <= 3; a++)      /* caps: floor(m n / (m + n)) = 3, 2, 3 */
            for (int b = 1; b <= 2; b++)
                for (int c = 1; c <= 3; c++) {
                    int k[T] = {a, b, c};
                    double cs = 0, es = 0;
                    for (int t = 0; t < T; t++) {
                        cs += (double)k[t] * (double)(m[t] + n[t]);
                        for (int i = k[t]; i < (m[t] < n[t] ? m[t] : n[t]); i++)
                            es += sp[t][i];
                    }
                    if (cs <= budget && es < best)
                        best = es;
                }
        for (int t = 0; t < T; t++) {
            cost += (double)ranks[t] * (double)(m[t] + n[t]);
            for (int i = ranks[t]; i < (m[t] < n[t] ? m[t] : n[t]); i++)
                e += sp[t][i];
        }
        tried++;
        worse += cost > budget || fabs(e - best) > 1e-9 || fabs(err - e) > 1e-9 || !exact;
    }
    CHECK(tried > 10 && worse == 0, "allocation = brute-force optimum within the budget (%d of %d differ)", worse, tried);
    int r[T], ex;
    double err;
    CHECK(lc_lowrank_allocate(T, (const double *const *)s2, m, n, 20, 1, r, &err, &ex) != 0 &&
              strstr(lc_errmsg(), "below what rank 1 takes"),
          "a budget below rank 1: %s", lc_errmsg());
}

int main(int argc, char **argv)
{
    test_begin("test_lowrank");
    lc_blas_ensure(argc, argv);
    test_factor();
    test_allocate();
    test_kernels();
    test_container();
    test_model();
    test_real();
    return test_end("test_lowrank");
}
