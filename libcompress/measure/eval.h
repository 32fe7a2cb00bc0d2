/*
 * Evaluation: perplexity under llama.cpp's `llama-perplexity` protocol,
 * KL divergence / top-1 agreement / RMS Δp against a base model on the same
 * chunks, prefill and decode speed, memory bandwidth.
 *
 * The protocol (tools/perplexity/perplexity.cpp, perplexity() and
 * kl_divergence(), llama.cpp c392e509):
 *   tokens  = BOS + encode(whole text)            (encode adds no BOS)
 *   chunks  = tokens.size() / n_ctx, the tail dropped, at most max_chunks;
 *             chunk c is tokens[c*n_ctx .. (c+1)*n_ctx) with its first token
 *             replaced by BOS, evaluated from position 0 with a fresh cache
 *   scored  = logits at positions first .. n_ctx-2 predict the tokens at
 *             first+1 .. n_ctx-1, where first = n_ctx/2 (LC_SCORE_SECOND_HALF,
 *             n_ctx-1-n_ctx/2 = 255 tokens per chunk at n_ctx 512) or 0
 *             (LC_SCORE_ALL, n_ctx-1 per chunk)
 *   PPL     = exp(mean NLL), NLL accumulated in double; the standard error
 *             is llama.cpp's: PPL * sqrt(var(NLL) / (count-1)).
 * With a base model, per scored position (perplexity.cpp, log_softmax() of
 * the KL mode):
 *   KLD     = sum_i P_base(i) (ln P_base(i) - ln P_model(i))  (mean, median, p99)
 *   top-1   = argmax_model == argmax_base (first maximum on ties)
 *   Δp      = P_model(next) - P_base(next) of the *correct next token*;
 *             RMS Δp = sqrt(mean Δp^2)
 *   ln(PPL/PPL_base) = mean NLL - mean NLL_base, with llama.cpp's uncertainty
 *             (covariance of the two NLL series taken into account).
 * Quantiles use llama.cpp's rule: linear interpolation at q*(n-1) of the
 * sorted values; the median of an even count is the mean of the two middle
 * values.  Log-softmax: max subtraction in f32, exp and sum in double.
 *
 * The protocol and statistics do not depend on the inference core: logits
 * come from an lc_eval_logits_fn callback, so tests drive them with synthetic
 * logits.  lc_eval_model_scorer adapts a loaded lc_model.
 *
 *     lc_eval_protocol p = LC_EVAL_PROTOCOL_DEFAULT;  p.bos_id = cfg->bos_id;
 *     lc_eval_tokens(&tk, p.bos_id, text, len, &toks, &n);
 *     lc_eval_model_scorer ms;  lc_eval_model_scorer_init(&ms, model, p.n_ctx);
 *     lc_eval_source src = {lc_eval_model_logits, &ms};
 *     lc_eval_run(&p, toks, n, vocab, &src, NULL, &res);
 *     lc_eval_model_scorer_release(&ms);  free(toks);
 *
 * Base log-prob cache (optional; the default computes the base on the fly):
 * one record per scored position holds the base's exact NLL of the next
 * token (f64), its exact argmax, and every vocabulary entry's log-prob
 * relative to the top one, d = ln P(i) - ln P(top) in [-32, 0] nats,
 * quantized linearly to 16 bits (code 0 = below -32 nats = probability 0;
 * step 32/65534 = 4.9e-4 nats, error <= 2.4e-4 nats per entry).  The
 * decoded entries are renormalized before use, so the KLD error is second
 * order in the rounding when the model is close to the base: ~1e-8 nats
 * for a model against its own cache, ~1e-5 relative to the mean KLD
 * otherwise (measured in test_eval).  PPL_base, top-1 and
 * Δp use the exact stored values.  Mass below e^-32 of the top token is
 * ignored (< 1e-10 for an 8k vocabulary).  Size: 16 + 2*vocab bytes per
 * scored position, e.g. 502 MB for sqz (vocab 8192) on 120 chunks of 512.
 * llama.cpp, by comparison, keeps only the top 16 nats (REFERENCE.md).
 */
#ifndef LC_EVAL_H
#define LC_EVAL_H

#include "model/infer.h"
#include "core/lc.h"
#include "core/tokenizer.h"

/* ---- protocol ------------------------------------------------------------ */

/* Stored in ledger rows by name: append only. */
typedef enum lc_eval_scoring {
    LC_SCORE_SECOND_HALF = 0, /* llama-perplexity: positions n_ctx/2 .. n_ctx-2 */
    LC_SCORE_ALL = 1,         /* every position 0 .. n_ctx-2 */
} lc_eval_scoring;

const char *lc_eval_scoring_name(lc_eval_scoring s); /* "second-half", "all" */
int lc_eval_scoring_parse(const char *s, lc_eval_scoring *out);

typedef struct lc_eval_protocol {
    int n_ctx;               /* chunk length (>= 2) */
    lc_eval_scoring scoring;
    int max_chunks;          /* 0 = every whole chunk */
    int bos_id;              /* replaces the first token of every chunk */
} lc_eval_protocol;

#define LC_EVAL_PROTOCOL_DEFAULT ((lc_eval_protocol){.n_ctx = 512, .scoring = LC_SCORE_SECOND_HALF})

/* BOS + encode(text), malloc'd into *out (release with free()). */
int lc_eval_tokens(lc_tokenizer *tk, int bos_id, const char *text, size_t len, int32_t **out, size_t *n);
/* Chunks evaluated for n_tokens tokens (BOS included); -1 if not even one. */
int lc_eval_n_chunks(const lc_eval_protocol *p, size_t n_tokens, int *n_chunks);
/* First position whose logits are scored: n_ctx/2 or 0. */
int lc_eval_first_scored(const lc_eval_protocol *p);
/* Scored positions per chunk: n_ctx - 1 - first. */
int lc_eval_scored_per_chunk(const lc_eval_protocol *p);
/* Tokens of chunk c (n_ctx of them) with the first replaced by BOS. */
void lc_eval_chunk_tokens(const lc_eval_protocol *p, const int32_t *tokens, int c, int32_t *out);

/* ---- logits sources -------------------------------------------------------- */

/* Fill logits (n rows of n_vocab floats, row p predicting token p+1) for
 * one chunk evaluated from position 0 with an empty cache.  Only rows
 * first .. n-2 are read.  Returns 0, or -1 with lc_error() set. */
typedef int (*lc_eval_logits_fn)(void *ctx, const int32_t *tokens, int n, float *logits);

typedef struct lc_eval_source {
    lc_eval_logits_fn fn;
    void *ctx;
} lc_eval_source;

/* Adapter for a loaded model (state for n_ctx positions, logits of every
 * position through lc_forward(..., LC_LOGITS_ALL)). */
typedef struct lc_eval_model_scorer {
    lc_model *model;
    lc_state *state;
} lc_eval_model_scorer;

int lc_eval_model_scorer_init(lc_eval_model_scorer *s, lc_model *m, int n_ctx);
void lc_eval_model_scorer_release(lc_eval_model_scorer *s);
int lc_eval_model_logits(void *ctx, const int32_t *tokens, int n, float *logits);

/* ---- base log-prob cache (format above) ------------------------------------ */

/* What a cache was computed from; every field must match to reuse it. */
typedef struct lc_eval_cache_key {
    char base_digest[17];      /* lc_container_digest of the base */
    char text_digest[17];      /* XXH64 of the text bytes */
    char tokenizer_digest[17]; /* lc_tokenizer_digest */
    int n_ctx;
    int scoring;               /* lc_eval_scoring */
    int n_chunks;
    int n_vocab;
} lc_eval_cache_key;

typedef struct lc_eval_cache lc_eval_cache;

/* Read a cache's key without opening it for use (0, or -1 if unreadable). */
int lc_eval_cache_peek(const char *path, lc_eval_cache_key *key);
/* Open for reading; -1 naming the first field that differs from want. */
int lc_eval_cache_open(const char *path, const lc_eval_cache_key *want, lc_eval_cache **out);
/* Create for writing into PATH.tmp-PID; close() renames it into place. */
int lc_eval_cache_create(const char *path, const lc_eval_cache_key *key, lc_eval_cache **out);
/* Reader: release.  Writer: check that every record was written, flush,
 * publish.  -1 on any failure (a writer's file is then removed). */
int lc_eval_cache_close(lc_eval_cache *c);
/* Discard (a writer's temporary file is removed). */
void lc_eval_cache_abort(lc_eval_cache *c);

/* ---- running an evaluation ------------------------------------------------- */

typedef struct lc_eval_result {
    /* protocol */
    int n_ctx;
    lc_eval_scoring scoring;
    int n_chunks;
    int64_t n_scored;         /* tokens scored */
    /* perplexity */
    double nll_mean;          /* nats per token */
    double ppl, ppl_stderr;
    /* against the base (have_base) */
    int have_base;
    double ppl_base, ppl_base_stderr;
    double ln_ppl_ratio, ln_ppl_ratio_stderr;
    double kld_mean, kld_stderr, kld_median, kld_p99, kld_max;
    double top1, top1_stderr; /* fractions in [0, 1] */
    double rms_dp, rms_dp_stderr;
    double mean_dp;
    double seconds;           /* wall time of lc_eval_run */
} lc_eval_result;

/* Called after every chunk (progress display). */
typedef void (*lc_eval_progress_fn)(void *ctx, int chunk, int n_chunks, double running_ppl);

typedef struct lc_eval_run_opts {
    const lc_eval_source *base;  /* base model on the fly, or NULL */
    lc_eval_cache *cache;        /* reader: base from the cache; writer: filled
                                    from `base` as it runs; or NULL */
    lc_eval_progress_fn progress;
    void *progress_ctx;
    float *token_nll;            /* optional: n_chunks * scored_per_chunk NLLs */
    int n_threads;               /* threads for the log-softmax/KLD work (0 = 1);
                                    results do not depend on it */
} lc_eval_run_opts;

/* Evaluate `model` on tokens (BOS + text, see lc_eval_tokens).  opts may be
 * NULL (perplexity only).  All logits must be finite. */
int lc_eval_run(const lc_eval_protocol *p, const int32_t *tokens, size_t n_tokens, int n_vocab,
                const lc_eval_source *model, const lc_eval_run_opts *opts, lc_eval_result *out);

/* ---- statistics (exposed for tests) ----------------------------------------- */

/* out[i] = x[i] - logsumexp(x), in double; returns logsumexp(x). */
double lc_eval_log_softmax(const float *x, int n, double *out);
/* KL(P || Q) in nats from log-probabilities; entries with lp = -inf
 * (probability 0) contribute nothing. */
double lc_eval_kld(const double *lp, const double *lq, int n);
/* Sort v ascending in place, then llama.cpp's quantile: linear interpolation
 * at q*(n-1) (q <= 0: minimum, q >= 1: maximum); n > 0. */
void lc_eval_sort(float *v, size_t n);
double lc_eval_quantile_sorted(const float *v, size_t n, double q);
/* Median of sorted values (mean of the two middle ones for even n). */
double lc_eval_median_sorted(const float *v, size_t n);

/* ---- speed ------------------------------------------------------------------ */

#define LC_EVAL_MAX_REPS 100   /* most repetitions of one speed measurement */

typedef struct lc_eval_speed {
    int reps;                    /* 1..LC_EVAL_MAX_REPS */
    int prefill_tokens;          /* one lc_forward of this many tokens from position 0 */
    int decode_tokens;           /* n == 1 steps after a short prompt */
    double prefill_tok_s, prefill_spread;   /* median, (max-min)/median */
    double decode_tok_s, decode_spread;
    double prefill_rep[LC_EVAL_MAX_REPS];   /* tok/s of each repetition, in run order */
    double decode_rep[LC_EVAL_MAX_REPS];
} lc_eval_speed;

/* Time prefill (n_prefill tokens, logits of the last only) and decode
 * (n_decode greedy steps after an 8-token prompt), reps times each after one
 * warm-up; tokens are a fixed pseudo-random sequence.  n_prefill is capped
 * at the model's max_seq_len. */
int lc_eval_measure_speed(lc_model *m, int reps, int n_prefill, int n_decode, lc_eval_speed *out);

/* Streaming-read memory bandwidth in bytes/s: n_threads threads sum disjoint
 * slices of a `bytes` buffer (>> L3 to measure DRAM), best of reps. */
int lc_eval_bandwidth(int n_threads, size_t bytes, int reps, double *bytes_per_s);

/* Peak resident set size of this process in bytes (getrusage ru_maxrss). */
int64_t lc_eval_peak_rss(void);

#endif
