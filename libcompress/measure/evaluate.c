/* One evaluation of a container (measure/evaluate.h). */
#define _GNU_SOURCE
#include "measure/evaluate.h"
#include "core/lc.h"
#include "io/dataset.h"
#include "model/describe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void lc_evaluate_opts_default(lc_evaluate_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_ctx = 512;
    o->isa = -1;
    o->speed_reps = 5;
    lc_profile_find("laptop-2c", NULL, &o->profile);
}

size_t lc_kv_cache_bytes(const lc_config *cfg, int n_ctx)
{
    return 2 * sizeof(float) * (size_t)cfg->n_layers * (size_t)cfg->n_kv_heads * (size_t)cfg->head_dim *
           (size_t)n_ctx;
}

/* ---- the recipe ------------------------------------------------------------------ */

/* Next shell word of an lc_argv_join string (plain, or single-quoted with
 * '\'' for an embedded quote): [*s, *end) holds it quoted as stored. */
static const char *next_word(const char *s, const char **end)
{
    while (*s == ' ')
        s++;
    if (!*s)
        return NULL;
    const char *p = s;
    int q = 0;
    for (; *p && (q || *p != ' '); p++) {
        if (*p == '\'')
            q = !q;
        else if (*p == '\\' && !q && p[1])
            p++;
    }
    *end = p;
    return s;
}

static int word_is(const char *w, const char *e, const char *s) { return (size_t)(e - w) == strlen(s) && !strncmp(w, s, e - w); }

int lc_recipe_from_lineage(lc_container *c, char *buf, size_t cap)
{
    lc_lineage_row *rows;
    size_t n, k = 0;
    if (lc_container_read_lineage(c, &rows, &n))
        return -1;
    buf[0] = 0;
    for (size_t i = 0; i < n && k < cap; i++) {
        k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? " | " : "", rows[i].tool);
        const char *e, *w = next_word(rows[i].args, &e); // argv[0]
        while (w && (w = next_word(e, &e)) && k < cap) {
            if (word_is(w, e, "-o") || word_is(w, e, "--output")) {
                if (!next_word(e, &e))
                    break;
                continue;
            }
            if (word_is(w, e, "-q") || word_is(w, e, "--quiet") || !strncmp(w, "--output=", 9))
                continue;
            k += (size_t)snprintf(buf + k, cap - k, " %.*s", (int)(e - w), w);
        }
    }
    lc_lineage_free(rows, n);
    return 0;
}

/* An opened container with its configuration and tokenizer. */
struct model_in {
    lc_container *c;
    int owned;
    lc_config cfg;
    lc_tokenizer tk;
    char tok_digest[17];
};

static int model_in_init(lc_container *c, int owned, struct model_in *m)
{
    memset(m, 0, sizeof *m);
    m->c = c, m->owned = owned;
    if (lc_container_read_config(m->c, &m->cfg) || lc_container_read_tokenizer(m->c, &m->tk))
        return -1;
    lc_tokenizer_digest(&m->tk, m->tok_digest);
    return 0;
}

static int model_open(const char *path, struct model_in *m)
{
    lc_container *c;
    memset(m, 0, sizeof *m);
    if (lc_container_open(path, &c))
        return -1;
    return model_in_init(c, 1, m);
}

static void model_close(struct model_in *m)
{
    if (m->c && m->owned)
        lc_container_close(m->c);
    lc_tokenizer_release(&m->tk);
    memset(m, 0, sizeof *m);
}

/* ---- the evaluation -------------------------------------------------------------- */

static int accuracy(const lc_evaluate_opts *o, struct model_in *mi, lc_model *m, const lc_model_opts *mo, lc_run *row,
                    lc_evaluation *r)
{
    lc_text text = {0};
    size_t tlen, ntok = 0;
    int32_t *tok = NULL;
    struct model_in bi = {0};
    lc_model *bm = NULL;
    lc_eval_cache *cache = NULL;
    lc_eval_model_scorer ms = {0}, bs = {0};
    int rc = -1;
    if (lc_text_load(o->text, &text))
        goto done;
    tlen = text.len;
    r->text_bytes = (int64_t)tlen;
    snprintf(row->text_digest, sizeof row->text_digest, "%s", text.digest);
    snprintf(row->dataset, sizeof row->dataset, "%s", text.name);
    lc_eval_protocol p = {.n_ctx = o->n_ctx, .scoring = o->scoring, .max_chunks = o->chunks,
                          .bos_id = mi->cfg.bos_id};
    if (lc_eval_tokens(&mi->tk, p.bos_id, text.bytes, tlen, &tok, &ntok)) {
        lc_error_prefix("%s", o->text);
        goto done;
    }
    r->text_tokens = (int64_t)ntok;
    int n_chunks;
    if (lc_eval_n_chunks(&p, ntok, &n_chunks)) {
        lc_error_prefix("%s", o->text);
        goto done;
    }
    /* the base: from a matching cache, else loaded (and written to the cache) */
    lc_eval_cache_key key = {.n_ctx = p.n_ctx, .scoring = p.scoring, .n_chunks = n_chunks,
                             .n_vocab = mi->cfg.vocab_size};
    snprintf(key.text_digest, sizeof key.text_digest, "%s", row->text_digest);
    snprintf(key.tokenizer_digest, sizeof key.tokenizer_digest, "%s", mi->tok_digest);
    if (o->base) {
        if (model_open(o->base, &bi))
            goto done;
        if (strcmp(bi.tok_digest, mi->tok_digest) || bi.cfg.vocab_size != mi->cfg.vocab_size) {
            lc_error("%s: the base model has a different tokenizer (digest %s, model %s)", o->base, bi.tok_digest,
                     mi->tok_digest);
            goto done;
        }
        snprintf(key.base_digest, sizeof key.base_digest, "%s", lc_container_digest(bi.c));
        snprintf(r->base_label, sizeof r->base_label, "%s", o->base);
    }
    if (o->base_cache && access(o->base_cache, F_OK) == 0) {
        if (lc_eval_cache_open(o->base_cache, &key, &cache))
            goto done;
        if (!o->base) {
            lc_eval_cache_key have;
            if (lc_eval_cache_peek(o->base_cache, &have))
                goto done;
            snprintf(key.base_digest, sizeof key.base_digest, "%s", have.base_digest);
            snprintf(r->base_label, sizeof r->base_label, "%s", o->base_cache);
        }
        r->base_mode = "cache";
    } else if (o->base) {
        if (lc_model_load(bi.c, mo, &bm) || lc_eval_model_scorer_init(&bs, bm, p.n_ctx))
            goto done;
        if (o->base_cache && lc_eval_cache_create(o->base_cache, &key, &cache))
            goto done;
        r->base_mode = o->base_cache ? "on the fly, cache written" : "on the fly";
    }
    if (key.base_digest[0])
        snprintf(row->base_digest, sizeof row->base_digest, "%s", key.base_digest);

    if (lc_eval_model_scorer_init(&ms, m, p.n_ctx))
        goto done;
    lc_eval_source src = {lc_eval_model_logits, &ms}, base = {lc_eval_model_logits, &bs};
    lc_eval_run_opts ro = {.base = bm ? &base : NULL, .cache = cache, .n_threads = lc_model_threads(m),
                           .progress = o->progress, .progress_ctx = o->progress_ctx};
    if (lc_eval_run(&p, tok, ntok, mi->cfg.vocab_size, &src, &ro, &r->acc))
        goto done;
    if (cache) {
        lc_eval_cache *c = cache;
        cache = NULL;
        if (lc_eval_cache_close(c))
            goto done;
    }
    r->have_acc = 1;
    row->n_ctx = p.n_ctx;
    snprintf(row->scoring, sizeof row->scoring, "%s", lc_eval_scoring_name(p.scoring));
    row->tokens_scored = r->acc.n_scored;
    row->chunks = r->acc.n_chunks;
    row->ppl = r->acc.ppl;
    row->ppl_stderr = r->acc.ppl_stderr;
    if (r->acc.have_base) {
        row->kld_mean = r->acc.kld_mean;
        row->kld_median = r->acc.kld_median;
        row->kld_p99 = r->acc.kld_p99;
        row->top1 = r->acc.top1;
        row->rms_dp = r->acc.rms_dp;
        row->ln_ppl_ratio = r->acc.ln_ppl_ratio;
        row->kld_stderr = r->acc.kld_stderr;
        row->top1_stderr = r->acc.top1_stderr;
    }
    rc = 0;
done:
    if (cache)
        lc_eval_cache_abort(cache);
    lc_eval_model_scorer_release(&ms);
    lc_eval_model_scorer_release(&bs);
    if (bm)
        lc_model_free(bm);
    model_close(&bi);
    free(tok);
    lc_text_release(&text);
    return rc;
}

void lc_evaluation_free(lc_evaluation *ev) { free(ev); }

/* "v1,v2,..." with 6 significant digits (LC_EVAL_MAX_REPS of them fit). */
static void reps_text(const double *v, int n, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%.6g", i ? "," : "", v[i]);
}

static int set_text(char *dst, size_t cap, const char *src, const char *what)
{
    if (!src)
        return 0;
    if (strlen(src) >= cap)
        return lc_error("%s longer than %zu bytes", what, cap - 1);
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

int lc_evaluate(lc_container *c, const lc_evaluate_opts *o, lc_evaluation **out)
{
    *out = NULL;
    const lc_profile *prof = &o->profile;
    lc_model_opts mo = {.n_threads = o->threads ? o->threads : prof->threads,
                        .max_isa = o->isa >= 0 ? (lc_isa)o->isa : (lc_isa)prof->isa};
    struct model_in mi;
    lc_model *m = NULL;
    lc_evaluation *r = lc_calloc(1, sizeof *r); /* ~6 KB of strings */
    int rc = -1;
    if (!r)
        return -1;
    r->base_mode = "";
    r->profile = *prof;
    lc_run *w = &r->row;
    lc_run_init(w);
    if (!o->speed_only && !o->text) {
        free(r);
        return lc_error("no evaluation text (or ask for speed only)");
    }
    if (model_in_init(c, 0, &mi))
        goto done;
    const char *path = lc_container_path(c);
    snprintf(w->model_name, sizeof w->model_name, "%s", o->name ? o->name : path ? path : "-");
    snprintf(w->model_digest, sizeof w->model_digest, "%s", lc_container_digest(c));
    snprintf(w->tokenizer_digest, sizeof w->tokenizer_digest, "%s", mi.tok_digest);
    snprintf(w->profile, sizeof w->profile, "%s", prof->name);
    if (lc_recipe_from_lineage(c, w->recipe, sizeof w->recipe) ||
        lc_container_stored_size(c, &w->stored_bytes, &w->n_weights))
        goto done;
    w->bpw = w->n_weights ? 8.0 * (double)w->stored_bytes / (double)w->n_weights : NAN;
    if (lc_model_load(c, &mo, &m))
        goto done;
    w->threads = lc_model_threads(m);
    snprintf(w->isa, sizeof w->isa, "%s", lc_isa_name(lc_model_isa(m)));
    r->weight_bytes = lc_model_weight_bytes(m);
    r->token_bytes = lc_model_bytes_per_token(m);
    /* fits: weights as held in memory + an f32 KV cache for the profile's
     * context (capped at the model's max_seq_len) within the budget */
    r->fits_ctx = prof->n_ctx < mi.cfg.max_seq_len || mi.cfg.max_seq_len <= 0 ? prof->n_ctx : mi.cfg.max_seq_len;
    r->kv_bytes = lc_kv_cache_bytes(&mi.cfg, r->fits_ctx);
    w->fits_budget = (int64_t)(r->weight_bytes + r->kv_bytes) <= prof->mem_budget;

    if (!o->speed_only && accuracy(o, &mi, m, &mo, w, r))
        goto done;
    if (!o->no_speed) {
        if (lc_eval_measure_speed(m, o->speed_reps, 512, 128, &r->speed))
            goto done;
        r->have_speed = 1;
        w->prefill_tok_s = r->speed.prefill_tok_s;
        w->prefill_tok_s_spread = r->speed.prefill_spread;
        w->decode_tok_s = r->speed.decode_tok_s;
        w->decode_tok_s_spread = r->speed.decode_spread;
        w->speed_reps = r->speed.reps;
        reps_text(r->speed.prefill_rep, r->speed.reps, w->prefill_reps, sizeof w->prefill_reps);
        reps_text(r->speed.decode_rep, r->speed.reps, w->decode_reps, sizeof w->decode_reps);
    }
    if (set_text(w->night, sizeof w->night, o->night, "night id") ||
        set_text(w->job, sizeof w->job, o->job, "job name") ||
        set_text(w->command, sizeof w->command, o->command, "command line"))
        goto done;
    w->peak_rss = lc_eval_peak_rss();
    if (gethostname(w->host, sizeof w->host - 1))
        w->host[0] = 0;
    snprintf(w->build, sizeof w->build, "%s", LC_VERSION);
    lc_utc_time(time(NULL), w->time, sizeof w->time);
    rc = 0;
done:
    if (m)
        lc_model_free(m);
    model_close(&mi);
    if (rc)
        free(r);
    else
        *out = r;
    return rc;
}

/* ---- reports -------------------------------------------------------------------- */

static int report_text(FILE *f, const lc_evaluation *r, int with_ledger)
{
    const lc_run *w = &r->row;
    const lc_profile *pr = &r->profile;
    fprintf(f, "model:       %s (digest %s)\n", w->model_name, w->model_digest);
    fprintf(f, "recipe:      %s\n", w->recipe[0] ? w->recipe : "(no lineage)");
    fprintf(f, "size:        %lld weights, %lld bytes stored (%.2f MiB), %.3f bits per weight\n",
            (long long)w->n_weights, (long long)w->stored_bytes, (double)w->stored_bytes / 1048576.0, w->bpw);
    fprintf(f, "profile:     %s: %d thread%s, ISA %s, budget %.0f MiB, fits: %s "
               "(weights %.1f MiB + f32 KV cache for %d tokens %.1f MiB)\n",
            w->profile, w->threads, w->threads == 1 ? "" : "s", w->isa, (double)pr->mem_budget / 1048576.0,
            w->fits_budget ? "yes" : "no", (double)r->weight_bytes / 1048576.0, r->fits_ctx,
            (double)r->kv_bytes / 1048576.0);
    if (r->have_acc) {
        const lc_eval_result *a = &r->acc;
        fprintf(f, "text:        %s (digest %s, %lld bytes, %lld tokens with BOS; tokenizer %s)\n", w->dataset,
                w->text_digest, (long long)r->text_bytes, (long long)r->text_tokens, w->tokenizer_digest);
        fprintf(f, "protocol:    n_ctx %d, %s scoring, %d chunk%s, %lld tokens scored\n", a->n_ctx,
                lc_eval_scoring_name(a->scoring), a->n_chunks, a->n_chunks == 1 ? "" : "s", (long long)a->n_scored);
        fprintf(f, "perplexity:  %.4f +/- %.5f  (mean NLL %.6f nats)\n", a->ppl, a->ppl_stderr, a->nll_mean);
        if (a->have_base) {
            fprintf(f, "base:        %s (digest %s, %s)\n", r->base_label, w->base_digest, r->base_mode);
            fprintf(f, "  PPL(base)         %.4f +/- %.5f\n", a->ppl_base, a->ppl_base_stderr);
            fprintf(f, "  ln(PPL/PPL_base)  %.6f +/- %.6f\n", a->ln_ppl_ratio, a->ln_ppl_ratio_stderr);
            fprintf(f, "  KLD               mean %.6f +/- %.6f  median %.6f  p99 %.6f  max %.6f\n", a->kld_mean,
                    a->kld_stderr, a->kld_median, a->kld_p99, a->kld_max);
            fprintf(f, "  top-1 agreement   %.3f +/- %.3f %%\n", 100 * a->top1, 100 * a->top1_stderr);
            fprintf(f, "  RMS dp            %.3f +/- %.3f %%  (mean dp %.3f %%)\n", 100 * a->rms_dp,
                    100 * a->rms_dp_stderr, 100 * a->mean_dp);
        }
        fprintf(f, "eval time:   %.1f s\n", a->seconds);
    }
    if (r->have_speed) {
        const lc_eval_speed *s = &r->speed;
        fprintf(f, "speed:       prefill %.1f tok/s (%d tokens, spread %.1f%%), decode %.1f tok/s (%d tokens, spread "
                   "%.1f%%), median of %d\n",
                s->prefill_tok_s, s->prefill_tokens, 100 * s->prefill_spread, s->decode_tok_s, s->decode_tokens,
                100 * s->decode_spread, s->reps);
    }
    fprintf(f, "memory:      peak RSS %.1f MiB; weights in memory %.1f MiB; %.2f MiB read per decoded token\n",
            (double)w->peak_rss / 1048576.0, (double)r->weight_bytes / 1048576.0, (double)r->token_bytes / 1048576.0);
    if (with_ledger)
        fprintf(f, "ledger:      row %lld\n", (long long)r->ledger_id);
    return ferror(f) ? lc_error("cannot write the report") : 0;
}

static int report_json(FILE *f, const lc_evaluation *r, int with_ledger)
{
    const lc_run *w = &r->row;
    const lc_profile *pr = &r->profile;
    json_t *doc = json_pack("{s:o, s:s, s:o, s:{s:I, s:I, s:o, s:I, s:I}, s:{s:o, s:i, s:s, s:I, s:b, s:I, s:i}}",
                            "model", lc_json_string(w->model_name), "model_digest", w->model_digest, "recipe",
                            lc_json_string(w->recipe), "size", "weights", (json_int_t)w->n_weights, "stored_bytes",
                            (json_int_t)w->stored_bytes, "bpw", lc_json_number(w->bpw), "weight_bytes",
                            (json_int_t)r->weight_bytes, "bytes_per_token", (json_int_t)r->token_bytes, "profile",
                            "name", lc_json_string(w->profile), "threads", w->threads, "isa", w->isa, "mem_budget",
                            (json_int_t)pr->mem_budget, "fits", w->fits_budget == 1, "kv_bytes",
                            (json_int_t)r->kv_bytes, "fits_ctx", r->fits_ctx);
    if (doc && r->have_acc) {
        const lc_eval_result *a = &r->acc;
        json_object_set_new(doc, "text",
                            json_pack("{s:o, s:s, s:I, s:I, s:s}", "file", lc_json_string(w->dataset), "digest",
                                      w->text_digest, "bytes", (json_int_t)r->text_bytes, "tokens",
                                      (json_int_t)r->text_tokens, "tokenizer_digest", w->tokenizer_digest));
        json_object_set_new(doc, "protocol",
                            json_pack("{s:i, s:s, s:i, s:I}", "n_ctx", a->n_ctx, "scoring",
                                      lc_eval_scoring_name(a->scoring), "chunks", a->n_chunks, "tokens_scored",
                                      (json_int_t)a->n_scored));
        json_object_set_new(doc, "perplexity",
                            json_pack("{s:o, s:o, s:o, s:o}", "ppl", lc_json_number(a->ppl), "stderr",
                                      lc_json_number(a->ppl_stderr), "nll_mean", lc_json_number(a->nll_mean), "seconds",
                                      lc_json_number(a->seconds)));
        if (a->have_base) {
            json_t *b = json_pack("{s:o, s:s, s:s}", "file", lc_json_string(r->base_label), "digest", w->base_digest,
                                  "mode", r->base_mode);
            const struct {
                const char *k;
                double v;
            } nums[] = {{"ppl_base", a->ppl_base},         {"ppl_base_stderr", a->ppl_base_stderr},
                        {"ln_ppl_ratio", a->ln_ppl_ratio}, {"ln_ppl_ratio_stderr", a->ln_ppl_ratio_stderr},
                        {"kld_mean", a->kld_mean},         {"kld_stderr", a->kld_stderr},
                        {"kld_median", a->kld_median},     {"kld_p99", a->kld_p99},
                        {"kld_max", a->kld_max},           {"top1", a->top1},
                        {"top1_stderr", a->top1_stderr},   {"rms_dp", a->rms_dp},
                        {"rms_dp_stderr", a->rms_dp_stderr}, {"mean_dp", a->mean_dp}};
            for (size_t i = 0; b && i < sizeof nums / sizeof *nums; i++)
                json_object_set_new(b, nums[i].k, lc_json_number(nums[i].v));
            json_object_set_new(doc, "base", b);
        }
    }
    if (doc && r->have_speed) {
        const lc_eval_speed *s = &r->speed;
        json_object_set_new(doc, "speed",
                            json_pack("{s:i, s:i, s:o, s:o, s:i, s:o, s:o}", "reps", s->reps, "prefill_tokens",
                                      s->prefill_tokens, "prefill_tok_s", lc_json_number(s->prefill_tok_s),
                                      "prefill_spread", lc_json_number(s->prefill_spread), "decode_tokens",
                                      s->decode_tokens, "decode_tok_s", lc_json_number(s->decode_tok_s),
                                      "decode_spread", lc_json_number(s->decode_spread)));
    }
    if (doc)
        json_object_set_new(doc, "peak_rss", json_integer(w->peak_rss));
    if (doc && with_ledger)
        json_object_set_new(doc, "ledger_row", json_integer(r->ledger_id));
    return lc_json_write(doc, f);
}

int lc_evaluation_report(const lc_evaluation *ev, lc_out_fmt fmt, int with_ledger, FILE *f)
{
    return fmt == LC_OUT_JSON ? report_json(f, ev, with_ledger) : report_text(f, ev, with_ledger);
}
