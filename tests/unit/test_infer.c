/*
 * The inference core against golden logits and llama2.c's greedy output.
 *
 * Needs $LC_SHARED (skips with a message on stderr when absent):
 *  - sqz-s7, sqz-m29 (HF directories; GGUF files as a fallback if the HF
 *    importer fails): golden_ids.npy (64 tokens, BOS first) through
 *    lc_forward with LC_LOGITS_ALL, both as one prefill batch and token by
 *    token (decode); max |logit - golden| <= 5e-5 and the same argmax at
 *    every position.  Two runs give bit-identical logits; decode gives the
 *    same bits at 1 and 2 threads; every ISA level passes the golden check
 *    on sqz-s7.
 *  - sqz-s7 GGUF F16/Q8_0/Q4_0/Q4_1: prefill and decode paths agree (the
 *    same quantized weights through sgemm panels and through the SIMD
 *    kernels).
 *  - stories260K: greedy 200 tokens from BOS = expected_greedy_t0_n200.txt,
 *    byte for byte (llama2.c's `run stories260K.bin -z tok512.bin -t 0 -n 200`
 *    output without its final newline).
 */
#include "kernels/blas.h"
#include "io/container.h"
#include "convert/import.h"
#include "model/infer.h"
#include "io/npy.h"
#include "test.h"
#include "common.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];
static const char *shared;

/* Import with `kind` into a temporary container file and open it. */
static lc_container *import_tmp(const char *src, const char *tok, lc_import_kind kind, const char *tag)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.h5", tmpdir, tag);
    lc_container *w, *c;
    lc_import_report rep;
    if (lc_container_create(path, &w))
        return NULL;
    int rc = kind == LC_IMPORT_HF ? lc_import_hf(src, w, &rep)
             : kind == LC_IMPORT_GGUF ? lc_import_gguf(src, w, &rep)
                                      : lc_import_llama2c(src, tok, w, &rep);
    if (rc) {
        lc_container_abort(w);
        return NULL;
    }
    if (lc_container_close(w) || lc_container_open(path, &c))
        return NULL;
    return c;
}

static int f32_act = 1; /* exact kernels unless a test asks for 8-bit activations */

static lc_model *load(lc_container *c, int threads, lc_isa isa)
{
    lc_model_opts o = {.n_threads = threads, .max_isa = isa, .f32_act = f32_act};
    lc_model *m = NULL;
    if (lc_model_load(c, &o, &m))
        CHECK(0, "load: %s", lc_errmsg());
    return m;
}

/* Run ids through the model: prefill (one batch) or decode (one at a time). */
static int run(lc_model *m, const int32_t *ids, int n, float *logits, int decode)
{
    lc_state *s;
    if (lc_state_new(m, n, &s))
        return -1;
    int rc = 0;
    size_t V = (size_t)lc_model_config(m)->vocab_size;
    if (!decode)
        rc = lc_forward(m, s, ids, n, 0, logits, LC_LOGITS_ALL);
    for (int i = 0; decode && !rc && i < n; i++)
        rc = lc_forward(m, s, ids + i, 1, i, logits + i * V, LC_LOGITS_ALL);
    lc_state_free(s);
    return rc;
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

/* Compare against golden: returns max abs diff, counts argmax mismatches. */
static double golden_diff(const float *lg, const lc_npy *gold, int n, int V, int *mismatch)
{
    double mx = 0;
    *mismatch = 0;
    for (int i = 0; i < n; i++) {
        const double *g = gold->f + (size_t)i * V;
        int gb = 0;
        for (int v = 0; v < V; v++) {
            double d = fabs(lg[(size_t)i * V + v] - g[v]);
            mx = d > mx || isnan(d) ? d : mx;
            if (g[v] > g[gb])
                gb = v;
        }
        *mismatch += argmax(lg + (size_t)i * V, V) != gb;
    }
    return mx;
}

static void golden_model(const char *name, const char *gguf)
{
    char dir[512], p[600];
    snprintf(dir, sizeof dir, "%s/models/%s", shared, name);
    lc_container *c = import_tmp(dir, NULL, LC_IMPORT_HF, name);
    if (!c) {
        fprintf(stderr, "test_infer: HF import of %s failed (%s); using %s\n", name, lc_errmsg(), gguf);
        snprintf(p, sizeof p, "%s/models/gguf/%s", shared, gguf);
        c = import_tmp(p, NULL, LC_IMPORT_GGUF, name);
    }
    if (!c) {
        CHECK(0, "%s: import: %s", name, lc_errmsg());
        return;
    }
    lc_npy ids_npy, gold;
    snprintf(p, sizeof p, "%s/golden_ids.npy", dir);
    int ok = lc_npy_read(p, &ids_npy) == 0;
    snprintf(p, sizeof p, "%s/golden_logits.npy", dir);
    ok = ok && lc_npy_read(p, &gold) == 0;
    CHECK(ok, "%s: golden files: %s", name, lc_errmsg());
    lc_model *m = ok ? load(c, 2, LC_ISA_AVX512) : NULL;
    if (!m) {
        lc_container_close(c);
        return;
    }
    int n = (int)ids_npy.n, V = lc_model_config(m)->vocab_size;
    CHECK(gold.ndim == 2 && gold.shape[0] == n && gold.shape[1] == V, "%s: golden logits shape", name);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n; i++)
        ids[i] = (int32_t)ids_npy.f[i];
    size_t nl = (size_t)n * (size_t)V;
    float *a = malloc(nl * sizeof(float)), *b = malloc(nl * sizeof(float));
    for (int decode = 0; decode < 2; decode++) {
        int mis;
        CHECK(run(m, ids, n, a, decode) == 0, "%s: forward: %s", name, lc_errmsg());
        double d = golden_diff(a, &gold, n, V, &mis);
        fprintf(stderr, "test_infer: %s %s (%s, 2 threads): max |logit - golden| = %.3g, argmax mismatches %d/%d\n",
                name, decode ? "decode " : "prefill", lc_isa_name(lc_model_isa(m)), d, mis, n);
        CHECK(d <= 5e-5, "%s %s: max abs diff %g > 5e-5", name, decode ? "decode" : "prefill", d);
        CHECK(mis == 0, "%s %s: %d argmax mismatches", name, decode ? "decode" : "prefill", mis);
        /* determinism: a second run gives the same bits */
        CHECK(run(m, ids, n, b, decode) == 0, "%s: forward: %s", name, lc_errmsg());
        CHECK(memcmp(a, b, nl * sizeof(float)) == 0, "%s %s: two runs differ", name, decode ? "decode" : "prefill");
    }
    /* decode at 1 thread = decode at 2 threads (each row computed by one thread) */
    lc_model *m1 = load(c, 1, LC_ISA_AVX512);
    if (m1) {
        CHECK(run(m1, ids, 16, b, 1) == 0, "%s: forward: %s", name, lc_errmsg());
        CHECK(memcmp(a, b, (size_t)16 * V * sizeof(float)) == 0, "%s: decode differs between 1 and 2 threads", name);
        lc_model_free(m1);
    }
    /* every ISA level on the small model */
    for (int isa = LC_ISA_SCALAR; strcmp(name, "sqz-s7") == 0 && isa < (int)lc_isa_detect(); isa++) {
        lc_model *mi = load(c, 2, (lc_isa)isa);
        int mis = 0;
        if (mi && run(mi, ids, n, a, 1) == 0) {
            double d = golden_diff(a, &gold, n, V, &mis);
            fprintf(stderr, "test_infer: %s decode  (%s): max diff %.3g, argmax mismatches %d\n", name,
                    lc_isa_name((lc_isa)isa), d, mis);
            CHECK(d <= 5e-5 && mis == 0, "%s decode at %s: diff %g, %d mismatches", name, lc_isa_name((lc_isa)isa),
                  d, mis);
        } else {
            CHECK(0, "%s at %s: %s", name, lc_isa_name((lc_isa)isa), lc_errmsg());
        }
        lc_model_free(mi);
    }
    free(ids), free(a), free(b);
    lc_npy_release(&ids_npy), lc_npy_release(&gold);
    lc_model_free(m);
    lc_container_close(c);
}

/* Quantized / half-precision weights: prefill (decoded panels + sgemm) and
 * decode (SIMD kernels on the codes) run the same weights, so they agree
 * to f32 rounding; the argmax agrees with the f32 golden nearly everywhere. */
static void encoded_paths(const char *file, double tol, int act8)
{
    f32_act = !act8;
    char p[600];
    snprintf(p, sizeof p, "%s/models/gguf/%s", shared, file);
    if (access(p, R_OK)) {
        SKIP("GGUF inference check: %s absent", file);
        return;
    }
    lc_container *c = import_tmp(p, NULL, LC_IMPORT_GGUF, "enc");
    lc_model *m = c ? load(c, 2, LC_ISA_AVX512) : NULL;
    if (!m) {
        CHECK(0, "%s: %s", file, lc_errmsg());
        if (c)
            lc_container_close(c);
        return;
    }
    int32_t ids[32];
    snprintf(p, sizeof p, "%s/models/sqz-s7/golden_ids.npy", shared);
    lc_npy in;
    if (lc_npy_read(p, &in) || in.n < 32) {
        CHECK(0, "golden ids: %s", lc_errmsg());
        lc_model_free(m), lc_container_close(c);
        return;
    }
    for (int i = 0; i < 32; i++)
        ids[i] = (int32_t)in.f[i];
    lc_npy_release(&in);
    size_t V = (size_t)lc_model_config(m)->vocab_size;
    float *a = malloc(32 * V * sizeof(float)), *b = malloc(32 * V * sizeof(float));
    CHECK(run(m, ids, 32, a, 0) == 0 && run(m, ids, 32, b, 1) == 0, "%s: forward: %s", file, lc_errmsg());
    double mx = 0;
    for (size_t i = 0; i < 32 * V; i++)
        mx = fmax(mx, fabs((double)a[i] - b[i]));
    int agree = 0;
    for (int t = 0; t < 32; t++) {
        size_t ia = 0, ib = 0;
        for (size_t v = 1; v < V; v++) {
            ia = a[t * V + v] > a[t * V + ia] ? v : ia;
            ib = b[t * V + v] > b[t * V + ib] ? v : ib;
        }
        agree += ia == ib;
    }
    fprintf(stderr, "test_infer: %s (%s activations): max |prefill - decode| = %.3g, argmax agrees %d/32\n", file,
            act8 ? "8-bit" : "f32", mx, agree);
    CHECK(mx <= tol, "%s: prefill and decode differ by %g > %g", file, mx, tol);
    CHECK(agree >= (act8 ? 30 : 32), "%s: argmax agrees at %d/32 positions", file, agree);
    f32_act = 1;
    free(a), free(b);
    lc_model_free(m);
    lc_container_close(c);
}

struct sink {
    char *buf;
    size_t len, cap;
};

static int sink_emit(void *ctx, const char *text, size_t len)
{
    struct sink *s = ctx;
    if (s->len + len + 1 > s->cap) {
        s->cap = (s->len + len + 1) * 2;
        s->buf = realloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, text, len);
    s->len += len;
    s->buf[s->len] = 0;
    return 0;
}

static void greedy_stories(void)
{
    char bin[600], tok[600], exp[600];
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", shared);
    snprintf(tok, sizeof tok, "%s/models/stories260K/tok512.bin", shared);
    snprintf(exp, sizeof exp, "%s/models/stories260K/expected_greedy_t0_n200.txt", shared);
    lc_container *c = import_tmp(bin, tok, LC_IMPORT_LLAMA2C, "stories");
    lc_tokenizer tk = {0};
    lc_model *m = NULL;
    uint8_t *want = NULL;
    size_t wlen = 0;
    if (!c || lc_container_read_tokenizer(c, &tk) || !(m = load(c, 2, LC_ISA_AVX512)) ||
        lc_read_file(exp, 0, &want, &wlen)) {
        CHECK(0, "stories260K: %s", lc_errmsg());
    } else {
        for (int isa = LC_ISA_SCALAR; isa <= (int)lc_isa_detect(); isa++) {
            lc_model *mi = isa == (int)lc_model_isa(m) ? m : load(c, 2, (lc_isa)isa);
            struct sink s = {0};
            lc_gen_opts o = {.n_gen = 200, .temp = 0, .top_p = 0.9f, .seed = 1};
            lc_gen_stats st;
            CHECK(mi && lc_generate(mi, &tk, "", &o, sink_emit, &s, &st) == 0, "generate: %s", lc_errmsg());
            CHECK(s.len == wlen && memcmp(s.buf, want, wlen) == 0,
                  "stories260K greedy (%s) differs from expected (%zu vs %zu bytes):\n%s", lc_isa_name((lc_isa)isa),
                  s.len, wlen, s.buf ? s.buf : "");
            if (isa == (int)lc_model_isa(m))
                fprintf(stderr, "test_infer: stories260K greedy 200 tokens: %d generated, %s expected file\n",
                        st.n_gen, s.len == wlen && !memcmp(s.buf, want, wlen) ? "identical to" : "DIFFERS from");
            free(s.buf);
            if (mi != m)
                lc_model_free(mi);
        }
        /* sampling is deterministic for a seed */
        struct sink s1 = {0}, s2 = {0};
        lc_gen_opts o = {.n_gen = 60, .temp = 1.0f, .top_p = 0.9f, .seed = 7};
        lc_gen_stats st;
        CHECK(lc_generate(m, &tk, "Once upon", &o, sink_emit, &s1, &st) == 0 &&
                  lc_generate(m, &tk, "Once upon", &o, sink_emit, &s2, &st) == 0,
              "sampling: %s", lc_errmsg());
        CHECK(s1.buf && s2.buf && strcmp(s1.buf, s2.buf) == 0, "same seed, different text");
        CHECK(s1.buf && strncmp(s1.buf, "Once upon", 9) == 0, "prompt echoed: %s", s1.buf ? s1.buf : "");
        free(s1.buf), free(s2.buf);
    }
    free(want);
    lc_tokenizer_release(&tk);
    lc_model_free(m);
    if (c)
        lc_container_close(c);
}

static void bad_calls(void)
{
    lc_model *m = NULL;
    lc_state *s = NULL;
    char p[600];
    snprintf(p, sizeof p, "%s/models/stories260K/stories260K.bin", shared);
    char tk[600];
    snprintf(tk, sizeof tk, "%s/models/stories260K/tok512.bin", shared);
    lc_container *c = import_tmp(p, tk, LC_IMPORT_LLAMA2C, "bad");
    if (!c || !(m = load(c, 1, LC_ISA_AVX512)) || lc_state_new(m, 8, &s)) {
        CHECK(0, "setup: %s", lc_errmsg());
    } else {
        float lg[512];
        int32_t t[2] = {1, 600};
        CHECK(lc_forward(m, s, t, 2, 0, lg, LC_LOGITS_LAST) == -1, "token out of range accepted");
        CHECK(lc_forward(m, s, t, 1, 8, lg, LC_LOGITS_LAST) == -1, "position past the context accepted");
        CHECK(lc_forward(m, s, t, 1, 0, lg, 7) == -1, "bad selector accepted");
        lc_state *s2;
        CHECK(lc_state_new(m, 100000, &s2) == -1, "context beyond max_seq_len accepted");
    }
    lc_state_free(s);
    lc_model_free(m);
    if (c)
        lc_container_close(c);
}

int main(int argc, char **argv)
{
    test_begin("test_infer");
    lc_blas_ensure(argc, argv);
    shared = test_shared();
    if (!shared) {
        SKIP("inference against golden logits: LC_SHARED models not found");
        return test_end("test_infer");
    }
    snprintf(tmpdir, sizeof tmpdir, "%s/lc-test-infer.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    lc_set_quiet(1);
    fprintf(stderr, "test_infer: OpenBLAS core %s, ISA %s\n", lc_blas_core(), lc_isa_name(lc_isa_detect()));
    greedy_stories();
    bad_calls();
    golden_model("sqz-s7", "sqz-s7.f16.gguf");
    golden_model("sqz-m29", "sqz-m29.bf16.gguf");
    encoded_paths("sqz-s7.f16.gguf", 1e-3, 0);
    encoded_paths("sqz-s7.q8_0.gguf", 1e-3, 0);
    encoded_paths("sqz-s7.q4_0.gguf", 1e-3, 0);
    encoded_paths("sqz-s7.q4_1.gguf", 1e-3, 0);
    /* decode's default for 4/8-bit weights: 8-bit activations (kernels_q8.h);
     * the rounding of x moves logits by a few tenths at most */
    encoded_paths("sqz-s7.q8_0.gguf", 0.5, 1);
    encoded_paths("sqz-s7.q4_0.gguf", 0.5, 1);
    encoded_paths("sqz-s7.q4_1.gguf", 0.5, 1);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_infer: cannot remove %s\n", tmpdir);
    return test_end("test_infer");
}
