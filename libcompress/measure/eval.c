/* Evaluation: llama-perplexity protocol, KLD against a base, speed,
 * bandwidth.  See eval.h for the protocol and the cache format. */
#define _GNU_SOURCE
#include "measure/eval.h"

#include <errno.h>
#include <gsl/gsl_sort_float.h>
#include <gsl/gsl_statistics_double.h>
#include <gsl/gsl_statistics_float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the base cache is written in native byte order, which must be little-endian"
#endif

/* ---- protocol -------------------------------------------------------------- */

const char *lc_eval_scoring_name(lc_eval_scoring s)
{
    return s == LC_SCORE_ALL ? "all" : "second-half";
}

int lc_eval_scoring_parse(const char *s, lc_eval_scoring *out)
{
    if (!strcmp(s, "second-half"))
        *out = LC_SCORE_SECOND_HALF;
    else if (!strcmp(s, "all"))
        *out = LC_SCORE_ALL;
    else
        return lc_error("unknown scoring rule '%s' (second-half, all)", s);
    return 0;
}

int lc_eval_tokens(lc_tokenizer *tk, int bos_id, const char *text, size_t len, int32_t **out, size_t *n)
{
    int32_t *ids;
    size_t nid;
    *out = NULL, *n = 0;
    if (bos_id < 0 || bos_id >= tk->n_vocab)
        return lc_error("BOS id %d outside the vocabulary (%d)", bos_id, tk->n_vocab);
    if (lc_tokenizer_encode(tk, text, len, &ids, &nid))
        return -1;
    int32_t *t = lc_malloc((nid + 1) * sizeof *t);
    if (!t) {
        free(ids);
        return -1;
    }
    t[0] = bos_id;
    if (nid)
        memcpy(t + 1, ids, nid * sizeof *t);
    free(ids);
    *out = t, *n = nid + 1;
    return 0;
}

static int protocol_check(const lc_eval_protocol *p)
{
    if (p->n_ctx < 2)
        return lc_error("context length %d too small (at least 2)", p->n_ctx);
    if (p->scoring != LC_SCORE_SECOND_HALF && p->scoring != LC_SCORE_ALL)
        return lc_error("unknown scoring rule %d", (int)p->scoring);
    if (p->max_chunks < 0)
        return lc_error("negative chunk count %d", p->max_chunks);
    return 0;
}

int lc_eval_n_chunks(const lc_eval_protocol *p, size_t n_tokens, int *n_chunks)
{
    if (protocol_check(p))
        return -1;
    size_t n = n_tokens / (size_t)p->n_ctx;
    if (n == 0)
        return lc_error("the text has %zu tokens (with BOS), fewer than one chunk of %d", n_tokens, p->n_ctx);
    if (n > INT32_MAX)
        n = INT32_MAX;
    if (p->max_chunks && (size_t)p->max_chunks < n)
        n = (size_t)p->max_chunks;
    *n_chunks = (int)n;
    return 0;
}

int lc_eval_first_scored(const lc_eval_protocol *p)
{
    return p->scoring == LC_SCORE_ALL ? 0 : p->n_ctx / 2;
}

int lc_eval_scored_per_chunk(const lc_eval_protocol *p)
{
    return p->n_ctx - 1 - lc_eval_first_scored(p);
}

void lc_eval_chunk_tokens(const lc_eval_protocol *p, const int32_t *tokens, int c, int32_t *out)
{
    memcpy(out, tokens + (size_t)c * (size_t)p->n_ctx, (size_t)p->n_ctx * sizeof *out);
    out[0] = p->bos_id;
}

/* ---- model adapter ----------------------------------------------------------- */

int lc_eval_model_scorer_init(lc_eval_model_scorer *s, lc_model *m, int n_ctx)
{
    s->model = m;
    s->state = NULL;
    return lc_state_new(m, n_ctx, &s->state);
}

void lc_eval_model_scorer_release(lc_eval_model_scorer *s)
{
    if (s->state)
        lc_state_free(s->state);
    s->state = NULL;
}

int lc_eval_model_logits(void *ctx, const int32_t *tokens, int n, float *logits)
{
    lc_eval_model_scorer *s = ctx;
    return lc_forward(s->model, s->state, tokens, n, 0, logits, LC_LOGITS_ALL);
}

/* ---- statistics ---------------------------------------------------------------- */

double lc_eval_log_softmax(const float *x, int n, double *out)
{
    // max subtraction in f32 as llama.cpp, exp and sum in double
    float mx = x[0];
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        double d = (double)x[i] - (double)mx;
        out[i] = d;
        sum += exp(d);
    }
    double lse = log(sum);
    for (int i = 0; i < n; i++)
        out[i] -= lse;
    return (double)mx + lse;
}

double lc_eval_kld(const double *lp, const double *lq, int n)
{
    // KL(P||Q) = sum_i P(i) (ln P(i) - ln Q(i))
    double s = 0;
    for (int i = 0; i < n; i++)
        if (lp[i] > -INFINITY)
            s += exp(lp[i]) * (lp[i] - lq[i]);
    return s;
}

void lc_eval_sort(float *v, size_t n)
{
    if (n > 1)
        gsl_sort_float(v, 1, n);
}

double lc_eval_quantile_sorted(const float *v, size_t n, double q)
{
    if (q <= 0)
        return v[0];
    if (q >= 1)
        return v[n - 1];
    // gsl: index q*(n-1), linear interpolation (perplexity.cpp's `percentile`)
    return gsl_stats_float_quantile_from_sorted_data(v, 1, n, q);
}

double lc_eval_median_sorted(const float *v, size_t n)
{
    return gsl_stats_float_median_from_sorted_data(v, 1, n);
}

/* Mean and standard error of the mean from sums (perplexity.cpp's
 * mean_and_uncertainty: no error below 11 values). */
static void mean_unc(double sum, double sum2, int64_t count, double *mean, double *unc)
{
    *mean = count ? sum / (double)count : NAN;
    double var = count ? sum2 / (double)count - *mean * *mean : 0;
    *unc = var > 0 && count > 10 ? sqrt(var / (double)(count - 1)) : 0;
}

static int argmax_f(const float *x, int n)
{
    int k = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[k])
            k = i;
    return k;
}

/* ---- base cache ---------------------------------------------------------------- */

#define CACHE_MAGIC "LCEVBASE"
#define CACHE_VERSION 1u
#define CACHE_HEADER 128
#define CACHE_RANGE 32.0f   /* nats below the top log-prob that are kept */
#define CACHE_LEVELS 65535u /* codes 1..65535 span [-RANGE, 0]; 0 = below */
#define REC_HEAD 16         /* f64 nll, i32 argmax, f32 top log-prob */

struct lc_eval_cache {
    FILE *f;
    int writing;
    char *path, *tmp;
    lc_eval_cache_key key;
    int per_chunk;
    size_t rec_bytes;
    int64_t n_records, done;
};

static size_t rec_bytes(int n_vocab) { return REC_HEAD + 2 * (size_t)n_vocab; }

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static int per_chunk_of(int n_ctx, int scoring)
{
    lc_eval_protocol p = {.n_ctx = n_ctx, .scoring = scoring};
    return lc_eval_scored_per_chunk(&p);
}

static int header_parse(const uint8_t *h, const char *path, lc_eval_cache_key *k)
{
    if (memcmp(h, CACHE_MAGIC, 8))
        return lc_error("%s: not an lc-eval base cache", path);
    if (get_u32(h + 8) != CACHE_VERSION)
        return lc_error("%s: base cache version %u, expected %u", path, get_u32(h + 8), CACHE_VERSION);
    uint32_t nv = get_u32(h + 12), nctx = get_u32(h + 16), sc = get_u32(h + 20), nch = get_u32(h + 24);
    uint32_t pc = get_u32(h + 28), lev = get_u32(h + 36);
    float range;
    memcpy(&range, h + 32, 4);
    if (nv < 2 || nv > (1u << 24) || nctx < 2 || nctx > (1u << 24) || sc > 1 || nch < 1 || nch > INT32_MAX)
        return lc_error("%s: corrupt base cache header (vocab %u, n_ctx %u, scoring %u, chunks %u)", path, nv, nctx,
                        sc, nch);
    if ((int)pc != per_chunk_of((int)nctx, (int)sc) || range != CACHE_RANGE || lev != CACHE_LEVELS)
        return lc_error("%s: corrupt base cache header (inconsistent record layout)", path);
    memset(k, 0, sizeof *k);
    for (int i = 0; i < 3; i++) {
        const uint8_t *d = h + 40 + 24 * i;
        char *dst = i == 0 ? k->base_digest : i == 1 ? k->text_digest : k->tokenizer_digest;
        for (int j = 0; j < 16; j++) {
            if (!strchr("0123456789abcdef", d[j]) || !d[j])
                return lc_error("%s: corrupt base cache header (digest)", path);
            dst[j] = (char)d[j];
        }
    }
    k->n_vocab = (int)nv, k->n_ctx = (int)nctx, k->scoring = (int)sc, k->n_chunks = (int)nch;
    return 0;
}

static int cache_read_header(FILE *f, const char *path, lc_eval_cache_key *k)
{
    uint8_t h[CACHE_HEADER];
    if (fread(h, 1, sizeof h, f) != sizeof h)
        return lc_error("%s: not an lc-eval base cache (too short)", path);
    return header_parse(h, path, k);
}

int lc_eval_cache_peek(const char *path, lc_eval_cache_key *key)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return lc_error("cannot open '%s': %s", path, strerror(errno));
    int rc = cache_read_header(f, path, key);
    fclose(f);
    return rc;
}

static void cache_free(lc_eval_cache *c)
{
    if (!c)
        return;
    if (c->f)
        fclose(c->f);
    if (c->tmp)
        lc_tmp_discard(c->tmp);
    free(c->tmp);
    free(c->path);
    free(c);
}

static lc_eval_cache *cache_new(const char *path, const lc_eval_cache_key *k)
{
    lc_eval_cache *c = lc_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->path = strdup(path);
    if (!c->path) {
        free(c);
        lc_error("out of memory");
        return NULL;
    }
    c->key = *k;
    c->per_chunk = per_chunk_of(k->n_ctx, k->scoring);
    c->rec_bytes = rec_bytes(k->n_vocab);
    c->n_records = (int64_t)k->n_chunks * c->per_chunk;
    return c;
}

int lc_eval_cache_open(const char *path, const lc_eval_cache_key *want, lc_eval_cache **out)
{
    *out = NULL;
    lc_eval_cache_key k;
    FILE *f = fopen(path, "rb");
    if (!f)
        return lc_error("cannot open '%s': %s", path, strerror(errno));
    if (cache_read_header(f, path, &k)) {
        fclose(f);
        return -1;
    }
    const char *what = NULL;
    char have[64] = "", need[64] = "";
#define DIFF_S(field, name)                                                          \
    if (!what && want->field[0] && strcmp(k.field, want->field)) {                   \
        what = name;                                                                 \
        snprintf(have, sizeof have, "%s", k.field);                                  \
        snprintf(need, sizeof need, "%s", want->field);                              \
    }
#define DIFF_I(field, name)                                                          \
    if (!what && k.field != want->field) {                                           \
        what = name;                                                                 \
        snprintf(have, sizeof have, "%d", k.field);                                  \
        snprintf(need, sizeof need, "%d", want->field);                              \
    }
    DIFF_S(base_digest, "base model digest")
    DIFF_S(text_digest, "text digest")
    DIFF_S(tokenizer_digest, "tokenizer digest")
    DIFF_I(n_vocab, "vocabulary size")
    DIFF_I(n_ctx, "n_ctx")
    DIFF_I(n_chunks, "chunk count")
    if (!what && k.scoring != want->scoring) {
        what = "scoring rule";
        snprintf(have, sizeof have, "%s", lc_eval_scoring_name(k.scoring));
        snprintf(need, sizeof need, "%s", lc_eval_scoring_name(want->scoring));
    }
#undef DIFF_S
#undef DIFF_I
    if (what) {
        fclose(f);
        return lc_error("%s: base cache does not match this evaluation: %s is %s, this run needs %s "
                        "(delete the file or name another)",
                        path, what, have, need);
    }
    lc_eval_cache *c = cache_new(path, &k);
    if (!c) {
        fclose(f);
        return -1;
    }
    c->f = f;
    size_t body, total;
    struct stat st;
    if (lc_mul_size((size_t)c->n_records, c->rec_bytes, &body) || lc_add_size(body, CACHE_HEADER, &total) ||
        fstat(fileno(f), &st) || (uint64_t)st.st_size != (uint64_t)total) {
        cache_free(c);
        return lc_error("%s: base cache is truncated or has extra bytes (expected %zu bytes)", path,
                        (size_t)CACHE_HEADER + (size_t)k.n_chunks * (size_t)per_chunk_of(k.n_ctx, k.scoring) *
                                                   rec_bytes(k.n_vocab));
    }
    *out = c;
    return 0;
}

int lc_eval_cache_create(const char *path, const lc_eval_cache_key *key, lc_eval_cache **out)
{
    *out = NULL;
    if (key->n_vocab < 2 || key->n_ctx < 2 || key->n_chunks < 1 || (key->scoring != 0 && key->scoring != 1) ||
        strlen(key->base_digest) != 16 || strlen(key->text_digest) != 16 || strlen(key->tokenizer_digest) != 16)
        return lc_error("%s: incomplete base cache key", path);
    lc_eval_cache *c = cache_new(path, key);
    if (!c)
        return -1;
    c->writing = 1;
    size_t n = strlen(path) + LC_TMP_EXTRA;
    if (!(c->tmp = malloc(n)) || lc_tmp_path(path, c->tmp, n)) {
        cache_free(c);
        return lc_error("out of memory");
    }
    c->f = fopen(c->tmp, "wb");
    if (!c->f) {
        lc_error("cannot create '%s': %s", c->tmp, strerror(errno));
        free(c->tmp);
        c->tmp = NULL;
        cache_free(c);
        return -1;
    }
    uint8_t h[CACHE_HEADER] = {0};
    memcpy(h, CACHE_MAGIC, 8);
    put_u32(h + 8, CACHE_VERSION);
    put_u32(h + 12, (uint32_t)key->n_vocab);
    put_u32(h + 16, (uint32_t)key->n_ctx);
    put_u32(h + 20, (uint32_t)key->scoring);
    put_u32(h + 24, (uint32_t)key->n_chunks);
    put_u32(h + 28, (uint32_t)c->per_chunk);
    float range = CACHE_RANGE;
    memcpy(h + 32, &range, 4);
    put_u32(h + 36, CACHE_LEVELS);
    memcpy(h + 40, key->base_digest, 16);
    memcpy(h + 64, key->text_digest, 16);
    memcpy(h + 88, key->tokenizer_digest, 16);
    if (fwrite(h, 1, sizeof h, c->f) != sizeof h) {
        lc_error("cannot write '%s': %s", c->tmp, strerror(errno));
        cache_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

int lc_eval_cache_close(lc_eval_cache *c)
{
    if (!c)
        return 0;
    int rc = 0;
    if (c->writing) {
        if (c->done != c->n_records)
            rc = lc_error("%s: base cache incomplete (%lld of %lld records)", c->path, (long long)c->done,
                          (long long)c->n_records);
        else if (fflush(c->f) || ferror(c->f) || fsync(fileno(c->f)))
            rc = lc_error("cannot write '%s': %s", c->tmp, strerror(errno));
        FILE *f = c->f;
        c->f = NULL;
        if (fclose(f) && !rc)
            rc = lc_error("cannot write '%s': %s", c->tmp, strerror(errno));
        if (!rc && (rc = lc_publish(c->tmp, c->path)) != 0) {
            free(c->tmp); /* lc_publish removed it */
            c->tmp = NULL;
        }
        if (!rc) {
            free(c->tmp);
            c->tmp = NULL;
        }
    }
    cache_free(c);
    return rc;
}

void lc_eval_cache_abort(lc_eval_cache *c) { cache_free(c); }

/* Quantize one position's base log-probs (normalized, top = the argmax of
 * the base logits, so lb[top] is the largest)
 * into a record: d = lb - lb[top] in [-RANGE, 0] -> 1 + round((d+RANGE)/step). */
static void rec_encode(uint8_t *rec, const double *lb, int n, double nll, int top)
{
    const double step = CACHE_RANGE / (CACHE_LEVELS - 1);
    float ftop = (float)lb[top];
    int32_t t = top;
    memcpy(rec, &nll, 8);
    memcpy(rec + 8, &t, 4);
    memcpy(rec + 12, &ftop, 4);
    uint8_t *q = rec + REC_HEAD;
    for (int i = 0; i < n; i++) {
        double d = lb[i] - lb[top];
        uint16_t code = 0;
        if (d >= -(double)CACHE_RANGE) {
            double v = 1 + nearbyint((d + CACHE_RANGE) / step);
            code = v > CACHE_LEVELS ? CACHE_LEVELS : (uint16_t)v;
        }
        memcpy(q + 2 * (size_t)i, &code, 2);
    }
}

/* Decode a record into renormalized log-probs (-inf for code 0). */
static int rec_decode(const uint8_t *rec, int n, double *lb, double *nll, int *top)
{
    const double step = CACHE_RANGE / (CACHE_LEVELS - 1);
    int32_t t;
    memcpy(nll, rec, 8);
    memcpy(&t, rec + 8, 4);
    if (t < 0 || t >= n || !isfinite(*nll) || *nll < -1e-6)
        return lc_error("corrupt record (argmax %d, nll %g)", (int)t, *nll);
    *top = t;
    const uint8_t *q = rec + REC_HEAD;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        uint16_t code;
        memcpy(&code, q + 2 * (size_t)i, 2);
        if (code) {
            lb[i] = (code - 1) * step - CACHE_RANGE;
            sum += exp(lb[i]);
        } else {
            lb[i] = -INFINITY;
        }
    }
    if (!(sum >= 1.0 - 1e-12))
        return lc_error("corrupt record (no entry at the top)");
    double lse = log(sum);
    for (int i = 0; i < n; i++)
        lb[i] -= lse;
    return 0;
}

/* ---- running an evaluation ------------------------------------------------------ */

/* Per scored position of the current chunk. */
typedef struct pos_out {
    double nll, nll_b, kld, dp;
    int same_top;
} pos_out;

typedef struct chunk_job {
    int n_vocab, first, spc;
    const int32_t *tok;        /* chunk tokens */
    const float *logits;       /* model, n_ctx rows */
    const float *blogits;      /* base on the fly, or NULL */
    uint8_t *recs;             /* cache records of this chunk (read or to write), or NULL */
    int read_cache;            /* recs hold the base */
    int have_base;
    pos_out *out;              /* spc */
    int n_threads;
    char err[256];
    int failed;
    pthread_mutex_t mu;
} chunk_job;

typedef struct chunk_worker {
    chunk_job *job;
    int k;
    double *lm, *lb;           /* n_vocab scratch each */
    pthread_t th;
} chunk_worker;

static void job_fail(chunk_job *j, const char *msg)
{
    pthread_mutex_lock(&j->mu);
    if (!j->failed)
        snprintf(j->err, sizeof j->err, "%s", msg);
    j->failed = 1;
    pthread_mutex_unlock(&j->mu);
}

static void *chunk_work(void *arg)
{
    chunk_worker *w = arg;
    chunk_job *j = w->job;
    const int V = j->n_vocab;
    for (int i = w->k; i < j->spc; i += j->n_threads) {
        int p = j->first + i, t = j->tok[p + 1];
        const float *row = j->logits + (size_t)p * V;
        pos_out *o = &j->out[i];
        lc_eval_log_softmax(row, V, w->lm);
        o->nll = -w->lm[t];
        if (!isfinite(o->nll)) {
            char m[128];
            snprintf(m, sizeof m, "model logits at position %d are not finite", p);
            job_fail(j, m);
            return NULL;
        }
        if (!j->have_base)
            continue;
        int top_b = 0;
        uint8_t *rec = j->recs ? j->recs + (size_t)i * rec_bytes(V) : NULL;
        if (j->read_cache) {
            if (rec_decode(rec, V, w->lb, &o->nll_b, &top_b)) {
                job_fail(j, lc_errmsg());
                return NULL;
            }
        } else {
            const float *brow = j->blogits + (size_t)p * V;
            lc_eval_log_softmax(brow, V, w->lb);
            o->nll_b = -w->lb[t];
            top_b = argmax_f(brow, V);
            if (!isfinite(o->nll_b)) {
                char m[128];
                snprintf(m, sizeof m, "base logits at position %d are not finite", p);
                job_fail(j, m);
                return NULL;
            }
            if (rec)
                rec_encode(rec, w->lb, V, o->nll_b, top_b);
        }
        o->kld = lc_eval_kld(w->lb, w->lm, V);
        o->same_top = argmax_f(row, V) == top_b;
        o->dp = exp(-o->nll) - exp(-o->nll_b);
    }
    return NULL;
}

static int run_chunk(chunk_job *j, chunk_worker *w)
{
    j->failed = 0;
    if (j->n_threads == 1) {
        chunk_work(&w[0]);
    } else {
        int started = 0;
        for (int k = 1; k < j->n_threads; k++) {
            if (pthread_create(&w[k].th, NULL, chunk_work, &w[k])) {
                job_fail(j, "cannot start a thread");
                break;
            }
            started = k;
        }
        chunk_work(&w[0]);
        for (int k = 1; k <= started; k++)
            pthread_join(w[k].th, NULL);
    }
    return j->failed ? lc_error("%s", j->err) : 0;
}

int lc_eval_run(const lc_eval_protocol *p, const int32_t *tokens, size_t n_tokens, int n_vocab,
                const lc_eval_source *model, const lc_eval_run_opts *opts, lc_eval_result *out)
{
    static const lc_eval_run_opts none = {0};
    if (!opts)
        opts = &none;
    memset(out, 0, sizeof *out);
    int n_chunks;
    if (lc_eval_n_chunks(p, n_tokens, &n_chunks))
        return -1;
    if (n_vocab < 2)
        return lc_error("vocabulary of %d entries", n_vocab);
    if (p->bos_id < 0 || p->bos_id >= n_vocab)
        return lc_error("BOS id %d outside the vocabulary (%d)", p->bos_id, n_vocab);
    for (size_t i = 0; i < (size_t)n_chunks * (size_t)p->n_ctx; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return lc_error("token %d at %zu outside the vocabulary (%d)", (int)tokens[i], i, n_vocab);
    lc_eval_cache *cache = opts->cache;
    int read_cache = cache && !cache->writing;
    int have_base = opts->base || read_cache;
    if (cache && cache->writing && !opts->base)
        return lc_error("writing a base cache needs the base model");
    if (cache && (cache->key.n_ctx != p->n_ctx || cache->key.scoring != (int)p->scoring ||
                  cache->key.n_chunks != n_chunks || cache->key.n_vocab != n_vocab))
        return lc_error("%s: base cache protocol (n_ctx %d, %s, %d chunks, vocab %d) differs from this run's "
                        "(n_ctx %d, %s, %d chunks, vocab %d)",
                        cache->path, cache->key.n_ctx, lc_eval_scoring_name(cache->key.scoring), cache->key.n_chunks,
                        cache->key.n_vocab, p->n_ctx, lc_eval_scoring_name(p->scoring), n_chunks, n_vocab);

    const int first = lc_eval_first_scored(p), spc = lc_eval_scored_per_chunk(p);
    const int64_t total = (int64_t)n_chunks * spc;
    int nt = opts->n_threads > 0 ? opts->n_threads : 1;
    if (nt > spc)
        nt = spc > 0 ? spc : 1;
    size_t logit_n;
    if (lc_mul_size((size_t)p->n_ctx, (size_t)n_vocab, &logit_n) || logit_n > SIZE_MAX / sizeof(float))
        return lc_error("n_ctx %d x vocab %d too large", p->n_ctx, n_vocab);

    double t0 = lc_now();
    int rc = -1;
    int32_t *chunk = lc_malloc((size_t)p->n_ctx * sizeof *chunk);
    float *logits = lc_malloc(logit_n * sizeof(float));
    float *blogits = opts->base && !read_cache ? lc_malloc(logit_n * sizeof(float)) : NULL;
    uint8_t *recs = cache ? lc_malloc((size_t)spc * rec_bytes(n_vocab)) : NULL;
    pos_out *po = lc_calloc((size_t)spc, sizeof *po);
    float *kld_v = have_base ? lc_malloc((size_t)total * sizeof(float)) : NULL;
    float *dp_v = have_base ? lc_malloc((size_t)total * sizeof(float)) : NULL;
    chunk_worker *w = lc_calloc((size_t)nt, sizeof *w);
    chunk_job job = {.n_vocab = n_vocab, .first = first, .spc = spc, .tok = chunk, .logits = logits,
                     .blogits = blogits, .recs = recs, .read_cache = read_cache, .have_base = have_base, .out = po,
                     .n_threads = nt};
    pthread_mutex_init(&job.mu, NULL);
    if (!chunk || !logits || (opts->base && !read_cache && !blogits) || (cache && !recs) || !po ||
        (have_base && (!kld_v || !dp_v)) || !w)
        goto done;
    for (int k = 0; k < nt; k++) {
        w[k].job = &job, w[k].k = k;
        w[k].lm = lc_malloc((size_t)n_vocab * sizeof(double));
        w[k].lb = lc_malloc((size_t)n_vocab * sizeof(double));
        if (!w[k].lm || !w[k].lb)
            goto done;
    }

    // sums as in perplexity.cpp's kl_divergence_result, accumulated in position order
    double s_nll = 0, s_nll2 = 0, s_b = 0, s_b2 = 0, s_nb = 0, s_kld = 0, s_kld2 = 0, s_dp = 0, s_dp2 = 0, s_dp4 = 0;
    double kld_max = -INFINITY;
    int64_t count = 0, same = 0;
    for (int c = 0; c < n_chunks; c++) {
        lc_eval_chunk_tokens(p, tokens, c, chunk);
        if (model->fn(model->ctx, chunk, p->n_ctx, logits)) {
            lc_error_prefix("chunk %d", c + 1);
            goto done;
        }
        if (blogits && opts->base->fn(opts->base->ctx, chunk, p->n_ctx, blogits)) {
            lc_error_prefix("base model, chunk %d", c + 1);
            goto done;
        }
        if (read_cache && fread(recs, rec_bytes(n_vocab), (size_t)spc, cache->f) != (size_t)spc) {
            lc_error("%s: cannot read chunk %d of the base cache", cache->path, c + 1);
            goto done;
        }
        if (run_chunk(&job, w)) {
            if (read_cache)
                lc_error_prefix("%s: chunk %d", cache->path, c + 1);
            goto done;
        }
        if (cache && cache->writing) {
            if (fwrite(recs, rec_bytes(n_vocab), (size_t)spc, cache->f) != (size_t)spc) {
                lc_error("cannot write '%s': %s", cache->tmp, strerror(errno));
                goto done;
            }
        }
        if (cache)
            cache->done += spc;
        for (int i = 0; i < spc; i++, count++) {
            const pos_out *o = &po[i];
            s_nll += o->nll, s_nll2 += o->nll * o->nll;
            if (opts->token_nll)
                opts->token_nll[count] = (float)o->nll;
            if (!have_base)
                continue;
            s_b += o->nll_b, s_b2 += o->nll_b * o->nll_b, s_nb += o->nll * o->nll_b;
            s_kld += o->kld, s_kld2 += o->kld * o->kld;
            kld_max = o->kld > kld_max ? o->kld : kld_max;
            double d2 = o->dp * o->dp;
            s_dp += o->dp, s_dp2 += d2, s_dp4 += d2 * d2;
            same += o->same_top;
            kld_v[count] = (float)o->kld;
            dp_v[count] = (float)o->dp;
        }
        if (opts->progress)
            opts->progress(opts->progress_ctx, c + 1, n_chunks, exp(s_nll / (double)count));
    }

    out->n_ctx = p->n_ctx;
    out->scoring = p->scoring;
    out->n_chunks = n_chunks;
    out->n_scored = count;
    double unc;
    mean_unc(s_nll, s_nll2, count, &out->nll_mean, &unc);
    {
        // perplexity(): stderr of the mean NLL without the count > 10 rule
        double var = s_nll2 / (double)count - out->nll_mean * out->nll_mean;
        unc = var > 0 && count > 1 ? sqrt(var / (double)(count - 1)) : 0;
    }
    out->ppl = exp(out->nll_mean);
    out->ppl_stderr = out->ppl * unc;
    if (have_base) {
        double mb, ub, ua;
        mean_unc(s_nll, s_nll2, count, &out->nll_mean, &ua);
        mean_unc(s_b, s_b2, count, &mb, &ub);
        out->have_base = 1;
        out->ppl_base = exp(mb);
        out->ppl_base_stderr = out->ppl_base * ub;
        double cov = count >= 10 ? (s_nb / (double)count - out->nll_mean * mb) / (double)(count - 1) : 0;
        out->ln_ppl_ratio = out->nll_mean - mb;
        double v = ua * ua + ub * ub - 2 * cov;
        out->ln_ppl_ratio_stderr = v > 0 ? sqrt(v) : 0;
        mean_unc(s_kld, s_kld2, count, &out->kld_mean, &out->kld_stderr);
        out->kld_max = kld_max;
        lc_eval_sort(kld_v, (size_t)count);
        out->kld_median = lc_eval_median_sorted(kld_v, (size_t)count);
        out->kld_p99 = lc_eval_quantile_sorted(kld_v, (size_t)count, 0.99);
        double mse, mse_unc, dpu;
        mean_unc(s_dp2, s_dp4, count, &mse, &mse_unc);
        out->rms_dp = sqrt(mse);
        out->rms_dp_stderr = out->rms_dp > 0 ? 0.5 / out->rms_dp * mse_unc : 0;
        mean_unc(s_dp, s_dp2, count, &out->mean_dp, &dpu);
        out->top1 = (double)same / (double)count;
        out->top1_stderr = count > 1 ? sqrt(out->top1 * (1 - out->top1) / (double)(count - 1)) : 0;
    }
    out->seconds = lc_now() - t0;
    rc = 0;
done:
    if (w)
        for (int k = 0; k < nt; k++)
            free(w[k].lm), free(w[k].lb);
    pthread_mutex_destroy(&job.mu);
    free(w);
    free(dp_v);
    free(kld_v);
    free(po);
    free(recs);
    free(blogits);
    free(logits);
    free(chunk);
    return rc;
}

/* ---- speed ---------------------------------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median and (max-min)/median of v (sorted in place). */
static void median_spread(double *v, int n, double *med, double *spread)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    *med = gsl_stats_median_from_sorted_data(v, 1, (size_t)n); /* the one median (GSL), as for KLD */
    *spread = *med > 0 ? (v[n - 1] - v[0]) / *med : 0;
}

int lc_eval_measure_speed(lc_model *m, int reps, int n_prefill, int n_decode, lc_eval_speed *out)
{
    const lc_config *cfg = lc_model_config(m);
    const int prompt = 8, V = cfg->vocab_size;
    memset(out, 0, sizeof *out);
    if (reps < 1 || reps > LC_EVAL_MAX_REPS || n_prefill < 1 || n_decode < 1)
        return lc_error("speed: reps (1..%d), prefill and decode counts must be positive", LC_EVAL_MAX_REPS);
    if (n_prefill > cfg->max_seq_len)
        n_prefill = cfg->max_seq_len;
    if (prompt + n_decode > cfg->max_seq_len)
        n_decode = cfg->max_seq_len - prompt;
    if (n_decode < 1)
        return lc_error("speed: max_seq_len %d too short to measure decoding", cfg->max_seq_len);
    int n_state = n_prefill > prompt + n_decode ? n_prefill : prompt + n_decode;
    lc_state *s = NULL;
    int rc = -1;
    int32_t *toks = lc_malloc((size_t)n_prefill * sizeof *toks);
    float *logits = lc_malloc((size_t)V * sizeof *logits);
    double *pre = lc_calloc((size_t)reps, sizeof *pre), *dec = lc_calloc((size_t)reps, sizeof *dec);
    if (!toks || !logits || !pre || !dec || lc_state_new(m, n_state, &s))
        goto done;
    // fixed pseudo-random tokens (LCG), BOS first
    uint32_t x = 12345;
    for (int i = 0; i < n_prefill; i++) {
        x = x * 1664525u + 1013904223u;
        toks[i] = (int32_t)((x >> 8) % (uint32_t)V);
    }
    toks[0] = cfg->bos_id;
    for (int r = -1; r < reps; r++) { // r = -1: warm-up
        double t0 = lc_now();
        if (lc_forward(m, s, toks, n_prefill, 0, logits, LC_LOGITS_LAST))
            goto done;
        double t1 = lc_now();
        int np = prompt < n_prefill ? prompt : n_prefill;
        if (lc_forward(m, s, toks, np, 0, logits, LC_LOGITS_LAST))
            goto done;
        int32_t tok = argmax_f(logits, V);
        double t2 = lc_now();
        for (int i = 0; i < n_decode; i++) {
            if (lc_forward(m, s, &tok, 1, np + i, logits, LC_LOGITS_LAST))
                goto done;
            tok = argmax_f(logits, V);
        }
        double t3 = lc_now();
        if (r >= 0) {
            pre[r] = n_prefill / (t1 - t0 > 1e-9 ? t1 - t0 : 1e-9);
            dec[r] = n_decode / (t3 - t2 > 1e-9 ? t3 - t2 : 1e-9);
        }
    }
    out->reps = reps;
    out->prefill_tokens = n_prefill;
    out->decode_tokens = n_decode;
    memcpy(out->prefill_rep, pre, (size_t)reps * sizeof *pre);
    memcpy(out->decode_rep, dec, (size_t)reps * sizeof *dec);
    median_spread(pre, reps, &out->prefill_tok_s, &out->prefill_spread);
    median_spread(dec, reps, &out->decode_tok_s, &out->decode_spread);
    rc = 0;
done:
    if (s)
        lc_state_free(s);
    free(dec);
    free(pre);
    free(logits);
    free(toks);
    return rc;
}

/* ---- bandwidth -------------------------------------------------------------------- */

typedef struct bw_arg {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
    pthread_t th;
} bw_arg;

static void *bw_read(void *arg)
{
    bw_arg *a = arg;
    // eight independent accumulators: the loop is bound by loads, not adds
    uint64_t s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= a->n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += a->p[i + k];
    for (; i < a->n; i++)
        s[0] += a->p[i];
    a->sum = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
    return NULL;
}

int lc_eval_bandwidth(int n_threads, size_t bytes, int reps, double *bytes_per_s)
{
    if (n_threads < 1 || n_threads > 1024 || reps < 1 || bytes < 4096)
        return lc_error("bandwidth: bad parameters (threads %d, %zu bytes, %d reps)", n_threads, bytes, reps);
    size_t n = bytes / sizeof(uint64_t);
    uint64_t *buf = lc_malloc(n * sizeof *buf);
    bw_arg *a = lc_calloc((size_t)n_threads, sizeof *a);
    if (!buf || !a) {
        free(buf);
        free(a);
        return -1;
    }
    for (size_t i = 0; i < n; i++) // touch every page with non-zero data
        buf[i] = i;
    double best = 0;
    volatile uint64_t sink = 0;
    int rc = 0;
    for (int r = 0; r < reps && !rc; r++) {
        double t0 = lc_now();
        int started = 0;
        for (int k = 0; k < n_threads; k++) {
            size_t lo = n * (size_t)k / (size_t)n_threads, hi = n * (size_t)(k + 1) / (size_t)n_threads;
            a[k].p = buf + lo, a[k].n = hi - lo;
            if (k && pthread_create(&a[k].th, NULL, bw_read, &a[k])) {
                rc = lc_error("bandwidth: cannot start a thread");
                break;
            }
            started = k;
        }
        bw_read(&a[0]);
        for (int k = 1; k <= started; k++)
            pthread_join(a[k].th, NULL);
        double dt = lc_now() - t0;
        for (int k = 0; k <= started; k++)
            sink += a[k].sum;
        if (dt > 0 && (double)(n * sizeof *buf) / dt > best)
            best = (double)(n * sizeof *buf) / dt;
    }
    (void)sink;
    free(a);
    free(buf);
    if (rc)
        return -1;
    *bytes_per_s = best;
    return 0;
}

int64_t lc_eval_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru))
        return -1;
    return (int64_t)ru.ru_maxrss * 1024; // Linux: kilobytes
}
