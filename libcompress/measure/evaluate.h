/*
 * One evaluation of a container, as lc-eval runs it: perplexity under the
 * llama-perplexity protocol, the divergence from a base model (loaded, or
 * from a log-prob cache), prefill and decode speed, size and memory fit under
 * a target profile - assembled into one ledger row (measure/ledger.h) and a
 * report for people or programs.
 *
 *     lc_evaluate_opts o;
 *     lc_evaluate_opts_default(&o);
 *     o.text = "heldout"; o.base = "base.h5";
 *     lc_evaluation *ev;
 *     lc_evaluate(c, &o, &ev);             // c: an open container
 *     lc_ledger_add(l, &ev->row, &ev->profile, &ev->ledger_id);
 *     lc_evaluation_report(ev, LC_OUT_TABLE, 1, stdout);
 *     lc_evaluation_free(ev);
 */
#ifndef LC_EVALUATE_H
#define LC_EVALUATE_H

#include "io/table.h"
#include "measure/eval.h"
#include "measure/ledger.h"

typedef struct lc_evaluate_opts {
    const char *text;        /* text set name or file; NULL with speed_only */
    const char *base;        /* base model path, or NULL */
    const char *base_cache;  /* base log-prob cache (read when present, else written) */
    const char *name;        /* model label for the ledger (default: the path) */
    int n_ctx;               /* default 512 */
    int chunks;              /* 0 = all */
    lc_eval_scoring scoring;
    lc_profile profile;      /* the target (lc_profile_find) */
    int threads;             /* 0 = the profile's */
    int isa;                 /* -1 = the profile's */
    int speed_reps;          /* default 5 */
    int no_speed, speed_only;
    const char *night;       /* ledger row's night id, job and command line (NULL = '') */
    const char *job;
    const char *command;
    void (*progress)(void *ctx, int chunk, int n_chunks, double ppl);
    void *progress_ctx;
} lc_evaluate_opts;

/* Everything measured. */
typedef struct lc_evaluation {
    lc_run row;              /* the ledger row */
    lc_profile profile;
    lc_eval_result acc;
    int have_acc;
    lc_eval_speed speed;
    int have_speed;
    int64_t text_bytes, text_tokens;
    char base_label[256];
    const char *base_mode;   /* "on the fly", "on the fly, cache written", "cache" */
    size_t weight_bytes, token_bytes, kv_bytes;
    int fits_ctx;            /* the context the memory fit assumes */
    int64_t ledger_id;       /* 0 until the row is added */
} lc_evaluation;

void lc_evaluate_opts_default(lc_evaluate_opts *o);
/* Evaluate c; *out is released with lc_evaluation_free. */
int lc_evaluate(lc_container *c, const lc_evaluate_opts *o, lc_evaluation **out);
void lc_evaluation_free(lc_evaluation *ev);
/* The report: LC_OUT_TABLE for people, LC_OUT_JSON for programs (CSV is
 * not offered: the ledger is the table).  with_ledger adds the row id. */
int lc_evaluation_report(const lc_evaluation *ev, lc_out_fmt fmt, int with_ledger, FILE *f);

/* The recipe of a container for the ledger: "tool args" per lineage step
 * joined by " | ", without argv[0] and the options that do not change the
 * model (-o/--output FILE, -q/--quiet), so equal recipes compare equal in
 * SQL.  Truncated to cap. */
int lc_recipe_from_lineage(lc_container *c, char *buf, size_t cap);

/* Memory an f32 KV cache of n_ctx tokens takes for this configuration. */
size_t lc_kv_cache_bytes(const lc_config *cfg, int n_ctx);

#endif
