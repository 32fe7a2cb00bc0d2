/*
 * Tests for the evaluation library (eval.h).
 *
 * Protocol and statistics run on synthetic logits from fake scorers and
 * always run.  With $LC_SHARED: sqz-s7 imported from its Hugging Face
 * checkpoint must give PPL 70.762 (+-0.05%) on the first 120 chunks of
 * heldout.txt (REFERENCE.md, llama.cpp F32 70.7620), and KLD 0 / top-1 100%
 * against itself.  Exits non-zero if any check fails.
 */
#define _GNU_SOURCE
#include "measure/eval.h"
#include "convert/import.h"
#include "core/lc.h"
#include "test.h"
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- fake scorers ---------------------------------------------------------- */

#define V 16
#define BOS 1

/* Records every chunk it is given.  Row p puts logit a(p) on the chunk's
 * token p+1 and 0 elsewhere; rows that must never be read are NaN (the
 * last row, and the unscored first half when nan_unscored). */
typedef struct fake {
    int first;           /* first row the protocol reads */
    int calls;
    int32_t seen[16][64];
    int seen_n[16];
    double temp;         /* logits scaled by 1/temp (a "different model") */
    int perturb;         /* add a position-dependent bump to another token */
} fake;

static double a_of(int p) { return 0.5 + 0.01 * p; }

static int fake_logits(void *ctx, const int32_t *tok, int n, float *logits)
{
    fake *f = ctx;
    if (f->calls < 16) {
        memcpy(f->seen[f->calls], tok, (size_t)n * sizeof *tok);
        f->seen_n[f->calls] = n;
    }
    f->calls++;
    for (int p = 0; p < n; p++) {
        float *row = logits + (size_t)p * V;
        if (p < f->first || p == n - 1) {
            for (int i = 0; i < V; i++)
                row[i] = NAN;
            continue;
        }
        for (int i = 0; i < V; i++)
            row[i] = (float)(0.1 * ((i * 7 + p) % 5) / f->temp);
        row[tok[p + 1]] = (float)(a_of(p) / f->temp);
        if (f->perturb && p % 3 == 0)
            row[(tok[p + 1] + 1) % V] = (float)(2.0 + 0.1 * p);
    }
    return 0;
}

/* NLL of row p as the fake scorer builds it (long double reference). */
static double fake_nll(const int32_t *tok, int p, double temp)
{
    long double z = 0, xt = 0;
    for (int i = 0; i < V; i++) {
        long double x = (long double)(float)(0.1 * ((i * 7 + p) % 5) / temp);
        if (i == tok[p + 1])
            x = (long double)(float)(a_of(p) / temp), xt = x;
        z += expl(x);
    }
    return (double)(logl(z) - xt);
}

static void make_tokens(int32_t *t, int n)
{
    t[0] = BOS;
    for (int i = 1; i < n; i++)
        t[i] = 2 + (i * 5 + i / 3) % (V - 2);
}

static void test_protocol(void)
{
    int32_t tok[64];
    const int n_ctx = 8, ntok = 3 * 8 + 5; // three chunks and a 5-token tail
    make_tokens(tok, ntok);
    for (int sc = 0; sc < 2; sc++) {
        lc_eval_protocol p = {.n_ctx = n_ctx, .scoring = sc, .bos_id = BOS};
        int first = lc_eval_first_scored(&p), spc = lc_eval_scored_per_chunk(&p);
        CHECK(first == (sc ? 0 : 4), "first scored %d", first);
        CHECK(spc == (sc ? 7 : 3), "scored per chunk %d", spc);
        int nc = -1;
        CHECK(lc_eval_n_chunks(&p, ntok, &nc) == 0 && nc == 3, "chunks %d (tail dropped)", nc);
        fake f = {.first = first, .temp = 1};
        lc_eval_source src = {fake_logits, &f};
        float nll[64];
        lc_eval_run_opts o = {.token_nll = nll};
        lc_eval_result r;
        int rc = lc_eval_run(&p, tok, ntok, V, &src, &o, &r);
        CHECK(rc == 0, "run (%s): %s", lc_eval_scoring_name(sc), lc_errmsg());
        if (rc)
            continue;
        CHECK(f.calls == 3 && r.n_chunks == 3, "calls %d chunks %d", f.calls, r.n_chunks);
        CHECK(r.n_scored == 3 * spc, "scored %lld", (long long)r.n_scored);
        double sum = 0;
        for (int c = 0; c < 3; c++) {
            CHECK(f.seen_n[c] == n_ctx, "chunk length %d", f.seen_n[c]);
            CHECK(f.seen[c][0] == BOS, "chunk %d starts with BOS", c);
            int same = 1;
            for (int i = 1; i < n_ctx; i++)
                same &= f.seen[c][i] == tok[c * n_ctx + i];
            CHECK(same, "chunk %d holds tokens %d..%d", c, c * n_ctx + 1, c * n_ctx + n_ctx - 1);
            for (int i = 0; i < spc; i++) {
                double want = fake_nll(f.seen[c], first + i, 1);
                sum += want;
                CHECK(fabs(nll[c * spc + i] - want) < 1e-6, "chunk %d row %d nll %g want %g", c, first + i,
                      nll[c * spc + i], want);
            }
        }
        CHECK(fabs(r.ppl - exp(sum / (3 * spc))) < 1e-9 * r.ppl, "ppl %.12g want %.12g", r.ppl, exp(sum / (3 * spc)));
        CHECK(r.ppl_stderr > 0 && !r.have_base, "stderr %g", r.ppl_stderr);

        // --chunks bounds the work
        p.max_chunks = 2;
        f = (fake){.first = first, .temp = 1};
        CHECK(lc_eval_run(&p, tok, ntok, V, &src, NULL, &r) == 0 && f.calls == 2 && r.n_chunks == 2 &&
                  r.n_scored == 2 * spc,
              "max_chunks: %d calls", f.calls);
        p.max_chunks = 0;
    }
    // second-half at llama.cpp's n_ctx 512: logits 256..510 predict 257..511
    lc_eval_protocol d = LC_EVAL_PROTOCOL_DEFAULT;
    CHECK(lc_eval_first_scored(&d) == 256 && lc_eval_scored_per_chunk(&d) == 255, "default protocol");
    int nc;
    CHECK(lc_eval_n_chunks(&d, 410 * 512 + 511, &nc) == 0 && nc == 410, "n_chunks %d", nc);
    // too little text, bad tokens, non-finite logits
    lc_eval_protocol p = {.n_ctx = 8, .bos_id = BOS};
    fake f = {.first = 0, .temp = 1};
    lc_eval_source src = {fake_logits, &f};
    lc_eval_result r;
    CHECK(lc_eval_run(&p, tok, 7, V, &src, NULL, &r) == -1 && strstr(lc_errmsg(), "fewer than one chunk"), "%s",
          lc_errmsg());
    tok[3] = V;
    CHECK(lc_eval_run(&p, tok, 16, V, &src, NULL, &r) == -1 && strstr(lc_errmsg(), "outside the vocabulary"), "%s",
          lc_errmsg());
    make_tokens(tok, 16);
    f.first = 6; // the scorer leaves rows 0..5 NaN, but "all" reads them
    p.scoring = LC_SCORE_ALL;
    CHECK(lc_eval_run(&p, tok, 16, V, &src, NULL, &r) == -1 && strstr(lc_errmsg(), "not finite"), "%s", lc_errmsg());
    lc_eval_scoring s;
    CHECK(lc_eval_scoring_parse("all", &s) == 0 && s == LC_SCORE_ALL, "parse all");
    CHECK(lc_eval_scoring_parse("second-half", &s) == 0 && s == LC_SCORE_SECOND_HALF, "parse second-half");
    CHECK(lc_eval_scoring_parse("half", &s) == -1, "parse junk");
}

/* ---- statistics --------------------------------------------------------------- */

static void test_stats(void)
{
    // KL of a distribution with itself is exactly 0
    float x[100];
    double lp[100], lq[100];
    for (int i = 0; i < 100; i++)
        x[i] = (float)sin(i * 1.7) * 5;
    lc_eval_log_softmax(x, 100, lp);
    double s = 0;
    for (int i = 0; i < 100; i++)
        s += exp(lp[i]);
    CHECK(fabs(s - 1) < 1e-12, "softmax sums to %.17g", s);
    CHECK(lc_eval_kld(lp, lp, 100) == 0, "self KLD %g", lc_eval_kld(lp, lp, 100));
    // closed form: P = (1/2, 1/4, 1/4), Q = (1/4, 1/2, 1/4): KL = ln2 / 4
    float xp[3] = {logf(0.5f), logf(0.25f), logf(0.25f)}, xq[3] = {logf(0.25f) + 3, logf(0.5f) + 3, logf(0.25f) + 3};
    lc_eval_log_softmax(xp, 3, lp);
    lc_eval_log_softmax(xq, 3, lq);
    CHECK(fabs(lc_eval_kld(lp, lq, 3) - log(2) / 4) < 1e-7, "KL %.10g want %.10g", lc_eval_kld(lp, lq, 3),
          log(2) / 4);
    // Bernoulli(0.9) || Bernoulli(0.6), probability-0 entries of P ignored
    lp[0] = log(0.9), lp[1] = log(0.1), lp[2] = -INFINITY;
    lq[0] = log(0.6), lq[1] = log(0.3), lq[2] = log(0.1);
    double want = 0.9 * log(0.9 / 0.6) + 0.1 * log(0.1 / 0.3);
    CHECK(fabs(lc_eval_kld(lp, lq, 3) - want) < 1e-12, "KL %.12g want %.12g", lc_eval_kld(lp, lq, 3), want);
    // huge logits stay finite (max subtraction)
    float big[3] = {1e4f, 1e4f - 1, -1e4f};
    lc_eval_log_softmax(big, 3, lp);
    CHECK(isfinite(lp[0]) && isfinite(lp[1]) && fabs(lp[0] - lp[1] - 1) < 1e-9, "stable log-softmax");

    // quantiles as perplexity.cpp's percentile(): index q*(n-1), interpolated
    float v[100];
    for (int i = 0; i < 100; i++)
        v[i] = (float)(100 - i); // 100 .. 1, unsorted
    lc_eval_sort(v, 100);
    CHECK(v[0] == 1 && v[99] == 100, "sorted");
    CHECK(fabs(lc_eval_quantile_sorted(v, 100, 0.99) - 99.01) < 1e-4, "p99 %g", lc_eval_quantile_sorted(v, 100, 0.99));
    CHECK(lc_eval_quantile_sorted(v, 100, 0) == 1 && lc_eval_quantile_sorted(v, 100, 1) == 100, "ends");
    CHECK(lc_eval_median_sorted(v, 100) == 50.5, "median even %g", lc_eval_median_sorted(v, 100));
    CHECK(lc_eval_median_sorted(v, 99) == 50, "median odd %g", lc_eval_median_sorted(v, 99));
    CHECK(lc_eval_quantile_sorted(v, 1, 0.99) == 1, "one value");
}

/* Reference per-position statistics of model (temp 2, perturbed) against
 * base (temp 1), computed directly in long double. */
static void reference_kld(const int32_t *chunk, int first, int spc, double *kld, int *same, double *dp)
{
    fake fm = {.first = 0, .temp = 2, .perturb = 1}, fb = {.first = 0, .temp = 1};
    float lm[64 * V], lb[64 * V];
    fake_logits(&fm, chunk, first + spc + 1, lm);
    fake_logits(&fb, chunk, first + spc + 1, lb);
    for (int i = 0; i < spc; i++) {
        const float *m = lm + (first + i) * V, *b = lb + (first + i) * V;
        long double zm = 0, zb = 0;
        int am = 0, ab = 0;
        for (int k = 0; k < V; k++) {
            zm += expl(m[k]), zb += expl(b[k]);
            am = m[k] > m[am] ? k : am, ab = b[k] > b[ab] ? k : ab;
        }
        long double s = 0;
        for (int k = 0; k < V; k++) {
            long double pb = expl(b[k]) / zb;
            s += pb * (logl(pb) - (m[k] - logl(zm)));
        }
        int t = chunk[first + i + 1];
        kld[i] = (double)s;
        same[i] = am == ab;
        dp[i] = (double)(expl(m[t]) / zm - expl(b[t]) / zb);
    }
}

static void test_kld_run(void)
{
    int32_t tok[64];
    make_tokens(tok, 40);
    for (int sc = 0; sc < 2; sc++) {
        lc_eval_protocol p = {.n_ctx = 12, .scoring = sc, .bos_id = BOS};
        int first = lc_eval_first_scored(&p), spc = lc_eval_scored_per_chunk(&p);
        // model against itself: KLD 0, top-1 100%, RMS dp 0, PPL ratio 1
        fake a = {.first = first, .temp = 1}, b = {.first = first, .temp = 1};
        lc_eval_source sa = {fake_logits, &a}, sb = {fake_logits, &b};
        lc_eval_run_opts o = {.base = &sb, .n_threads = 2};
        lc_eval_result r;
        CHECK(lc_eval_run(&p, tok, 40, V, &sa, &o, &r) == 0, "self run: %s", lc_errmsg());
        CHECK(r.have_base && r.kld_mean == 0 && r.kld_max == 0 && r.kld_p99 == 0, "self KLD %g", r.kld_mean);
        CHECK(r.top1 == 1 && r.rms_dp == 0 && r.ln_ppl_ratio == 0 && r.ppl == r.ppl_base, "self top1 %g rms %g",
              r.top1, r.rms_dp);

        // a different model: every statistic against the direct computation
        fake m = {.first = first, .temp = 2, .perturb = 1};
        lc_eval_source sm = {fake_logits, &m};
        b = (fake){.first = first, .temp = 1};
        for (int nt = 1; nt <= 3; nt += 2) {
            o.n_threads = nt;
            m.calls = b.calls = 0;
            lc_eval_result q;
            CHECK(lc_eval_run(&p, tok, 40, V, &sm, &o, &q) == 0, "run: %s", lc_errmsg());
            int nc = 3;
            double kl[64], dp[64], sk = 0, sdp2 = 0, snllb = 0;
            int same[64], ns = 0;
            float kv[256];
            int n = 0;
            for (int c = 0; c < nc; c++) {
                int32_t ch[12];
                lc_eval_chunk_tokens(&p, tok, c, ch);
                reference_kld(ch, first, spc, kl, same, dp);
                for (int i = 0; i < spc; i++, n++) {
                    sk += kl[i], sdp2 += dp[i] * dp[i], ns += same[i];
                    kv[n] = (float)kl[i];
                    snllb += fake_nll(ch, first + i, 1);
                }
            }
            lc_eval_sort(kv, (size_t)n);
            CHECK(q.n_scored == n, "scored %lld", (long long)q.n_scored);
            CHECK(fabs(q.kld_mean - sk / n) < 1e-9, "kld mean %.12g want %.12g", q.kld_mean, sk / n);
            CHECK(fabs(q.kld_median - lc_eval_median_sorted(kv, n)) < 1e-6, "kld median");
            CHECK(fabs(q.kld_p99 - lc_eval_quantile_sorted(kv, n, 0.99)) < 1e-6, "kld p99");
            CHECK(q.kld_max == q.kld_max && fabs(q.kld_max - kv[n - 1]) < 1e-6, "kld max");
            CHECK(fabs(q.top1 - (double)ns / n) < 1e-12 && ns < n, "top1 %g want %g", q.top1, (double)ns / n);
            CHECK(fabs(q.rms_dp - sqrt(sdp2 / n)) < 1e-9, "rms dp %.12g want %.12g", q.rms_dp, sqrt(sdp2 / n));
            CHECK(fabs(q.ppl_base - exp(snllb / n)) < 1e-9 * q.ppl_base, "ppl base %.12g", q.ppl_base);
            CHECK(fabs(q.ln_ppl_ratio - log(q.ppl / q.ppl_base)) < 1e-12, "ln ratio");
            CHECK(q.kld_stderr > 0 && q.ln_ppl_ratio_stderr > 0 && q.top1_stderr > 0, "uncertainties");
        }
    }
}

/* ---- base cache ------------------------------------------------------------------ */

static void test_cache(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/lc-test-eval-%ld.cache", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (long)getpid());
    int32_t tok[64];
    make_tokens(tok, 40);
    lc_eval_protocol p = {.n_ctx = 12, .scoring = LC_SCORE_SECOND_HALF, .bos_id = BOS};
    int first = lc_eval_first_scored(&p);
    lc_eval_cache_key k = {.base_digest = "0123456789abcdef", .text_digest = "00000000000000aa",
                           .tokenizer_digest = "00000000000000bb", .n_ctx = 12, .scoring = 0, .n_chunks = 3,
                           .n_vocab = V};
    fake m = {.first = first, .temp = 2, .perturb = 1}, b = {.first = first, .temp = 1};
    lc_eval_source sm = {fake_logits, &m}, sb = {fake_logits, &b};
    lc_eval_cache *c;
    lc_eval_result exact, cached, self;
    CHECK(lc_eval_cache_create(path, &k, &c) == 0, "create: %s", lc_errmsg());
    lc_eval_run_opts o = {.base = &sb, .cache = c};
    CHECK(lc_eval_run(&p, tok, 40, V, &sm, &o, &exact) == 0, "write run: %s", lc_errmsg());
    CHECK(access(path, F_OK) != 0, "not published before close");
    CHECK(lc_eval_cache_close(c) == 0, "close: %s", lc_errmsg());
    CHECK(access(path, F_OK) == 0, "published");

    lc_eval_cache_key pk;
    CHECK(lc_eval_cache_peek(path, &pk) == 0 && !strcmp(pk.base_digest, k.base_digest) && pk.n_chunks == 3, "peek");
    CHECK(lc_eval_cache_open(path, &k, &c) == 0, "open: %s", lc_errmsg());
    o = (lc_eval_run_opts){.cache = c};
    b.calls = 0;
    CHECK(lc_eval_run(&p, tok, 40, V, &sm, &o, &cached) == 0, "read run: %s", lc_errmsg());
    lc_eval_cache_close(c);
    CHECK(b.calls == 0, "base not run when cached");
    CHECK(cached.ppl_base == exact.ppl_base && cached.top1 == exact.top1 && cached.rms_dp == exact.rms_dp,
          "exact fields from the cache");
    CHECK(fabs(cached.kld_mean - exact.kld_mean) < 2e-5 * exact.kld_mean, "cached KLD %.10g exact %.10g",
          cached.kld_mean, exact.kld_mean);
    // the base against its own cache: KLD ~ quantization^2
    CHECK(lc_eval_cache_open(path, &k, &c) == 0, "open: %s", lc_errmsg());
    o.cache = c;
    b = (fake){.first = first, .temp = 1};
    CHECK(lc_eval_run(&p, tok, 40, V, &sb, &o, &self) == 0, "self run: %s", lc_errmsg());
    lc_eval_cache_close(c);
    CHECK(fabs(self.kld_mean) < 1e-7 && self.top1 == 1 && self.rms_dp == 0, "self via cache: KLD %g", self.kld_mean);

    // mismatches are named
    lc_eval_cache_key k2 = k;
    strcpy(k2.text_digest, "00000000000000cc");
    CHECK(lc_eval_cache_open(path, &k2, &c) == -1 && strstr(lc_errmsg(), "text digest"), "%s", lc_errmsg());
    k2 = k, k2.n_chunks = 2;
    CHECK(lc_eval_cache_open(path, &k2, &c) == -1 && strstr(lc_errmsg(), "chunk count"), "%s", lc_errmsg());
    k2 = k, k2.scoring = 1;
    CHECK(lc_eval_cache_open(path, &k2, &c) == -1 && strstr(lc_errmsg(), "scoring"), "%s", lc_errmsg());
    // truncated file, junk file
    CHECK(truncate(path, 1000) == 0, "truncate");
    CHECK(lc_eval_cache_open(path, &k, &c) == -1 && strstr(lc_errmsg(), "truncated"), "%s", lc_errmsg());
    FILE *f = fopen(path, "wb");
    fputs("hello", f);
    fclose(f);
    CHECK(lc_eval_cache_open(path, &k, &c) == -1 && strstr(lc_errmsg(), "not an lc-eval base cache"), "%s",
          lc_errmsg());
    unlink(path);
    // an aborted writer leaves nothing
    CHECK(lc_eval_cache_create(path, &k, &c) == 0, "create");
    lc_eval_cache_abort(c);
    CHECK(access(path, F_OK) != 0, "abort leaves nothing");
    // an incomplete writer is refused
    CHECK(lc_eval_cache_create(path, &k, &c) == 0, "create");
    CHECK(lc_eval_cache_close(c) == -1 && strstr(lc_errmsg(), "incomplete") && access(path, F_OK) != 0, "%s",
          lc_errmsg());
}

/* ---- the real model ----------------------------------------------------------------- */

static int import_mem(const char *dir, lc_container **out)
{
    lc_container *w;
    lc_import_report rep;
    uint8_t *img;
    size_t len;
    if (lc_container_create_memory(&w))
        return -1;
    if (lc_import_hf(dir, w, &rep) || lc_container_add_lineage(w, NULL, "lc-import", 0, NULL, rep.digest, NULL) ||
        lc_container_memory_image(w, &img, &len)) {
        lc_container_abort(w);
        return -1;
    }
    lc_container_abort(w);
    int rc = lc_container_open_memory(img, len, "sqz-s7", out);
    free(img);
    return rc;
}

static void test_real(const char *shared)
{
    char dir[1024], txt[1024], ids[1024];
    snprintf(dir, sizeof dir, "%s/models/sqz-s7", shared);
    snprintf(txt, sizeof txt, "%s/data/heldout/heldout.txt", shared);
    snprintf(ids, sizeof ids, "%s/data/heldout/heldout.txt.sqz8k.ids.i32", shared);
    lc_container *c = NULL;
    lc_model *m = NULL;
    lc_tokenizer tk = {0};
    lc_config cfg;
    uint8_t *text = NULL, *ref = NULL;
    size_t tlen, rlen, n = 0;
    int32_t *tok = NULL;
    double t0 = lc_now();
    if (import_mem(dir, &c) || lc_container_read_config(c, &cfg) || lc_container_read_tokenizer(c, &tk) ||
        lc_read_file(txt, 0, &text, &tlen) || lc_read_file(ids, 0, &ref, &rlen)) {
        CHECK(0, "setup: %s", lc_errmsg());
        goto done;
    }
    lc_model_opts mo = {.n_threads = 0, .max_isa = LC_ISA_AVX512};
    if (lc_model_load(c, &mo, &m)) {
        CHECK(0, "load: %s", lc_errmsg());
        goto done;
    }
    CHECK(lc_eval_tokens(&tk, cfg.bos_id, (char *)text, tlen, &tok, &n) == 0, "tokens: %s", lc_errmsg());
    CHECK(n == rlen / 4 + 1 && tok[0] == cfg.bos_id && !memcmp(tok + 1, ref, rlen), "BOS + sentencepiece ids (%zu)",
          n);
    fprintf(stderr, "test_eval: import + tokenize %.1f s\n", lc_now() - t0);

    lc_eval_protocol p = LC_EVAL_PROTOCOL_DEFAULT;
    p.bos_id = cfg.bos_id;
    p.max_chunks = 120;
    lc_eval_model_scorer ms = {0}, ms2 = {0};
    if (lc_eval_model_scorer_init(&ms, m, p.n_ctx) || lc_eval_model_scorer_init(&ms2, m, p.n_ctx)) {
        CHECK(0, "scorer: %s", lc_errmsg());
        goto rel;
    }
    lc_eval_source src = {lc_eval_model_logits, &ms}, base = {lc_eval_model_logits, &ms2};
    lc_eval_result r;
    lc_eval_run_opts o = {.n_threads = 2};
    if (lc_eval_run(&p, tok, n, cfg.vocab_size, &src, &o, &r) == 0) {
        fprintf(stderr, "test_eval: sqz-s7 heldout 120 chunks: PPL %.4f +/- %.4f (%lld tokens, %.1f s)\n", r.ppl,
                r.ppl_stderr, (long long)r.n_scored, r.seconds);
        /* llama-perplexity F32: 70.7620 (REFERENCE.md); measured within 2e-6 */
        CHECK(fabs(r.ppl / 70.7620 - 1) < 1e-5, "PPL %.4f, reference 70.7620 (tolerance 0.001%%)", r.ppl);
        CHECK(r.n_scored == 120 * 255, "scored %lld", (long long)r.n_scored);
    } else {
        CHECK(0, "run: %s", lc_errmsg());
    }
    // the model against itself, a few chunks
    p.max_chunks = 3;
    o.base = &base;
    if (lc_eval_run(&p, tok, n, cfg.vocab_size, &src, &o, &r) == 0)
        CHECK(r.kld_mean == 0 && r.top1 == 1 && r.rms_dp == 0 && r.ppl == r.ppl_base, "self: KLD %g top1 %g",
              r.kld_mean, r.top1);
    else
        CHECK(0, "self run: %s", lc_errmsg());

    lc_eval_speed sp;
    CHECK(lc_eval_measure_speed(m, 1, 64, 8, &sp) == 0 && sp.prefill_tok_s > 0 && sp.decode_tok_s > 0, "speed: %s",
          lc_errmsg());
rel:
    lc_eval_model_scorer_release(&ms2);
    lc_eval_model_scorer_release(&ms);
done:
    free(tok);
    free(ref);
    free(text);
    lc_tokenizer_release(&tk);
    if (m)
        lc_model_free(m);
    if (c)
        lc_container_close(c);
}

int main(int argc, char **argv)
{
    test_begin("test_eval");
    lc_blas_ensure(argc, argv); // re-executes with OPENBLAS_CORETYPE set (DESIGN.md)
    test_protocol();
    test_stats();
    test_kld_run();
    test_cache();
    double bw = 0;
    CHECK(lc_eval_bandwidth(2, 8 << 20, 2, &bw) == 0 && bw > 1e8, "bandwidth %g", bw);
    CHECK(lc_eval_peak_rss() > 0, "peak rss");
    const char *shared = test_shared();
    if (shared)
        test_real(shared);
    else
        SKIP("real-model tests: LC_SHARED not set or without models");
    return test_end("test_eval");
}
