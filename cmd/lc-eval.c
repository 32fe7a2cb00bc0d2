/* lc-eval: perplexity, KL divergence against a base, speed and size of a
 * container; one ledger row per run. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "core/tensor.h"
#include "io/dataset.h"
#include "measure/eval.h"
#include "measure/ledger.h"

static const char usage[] =
    "usage: lc-eval [options] [MODEL|-]\n"
    "Evaluate a libcompress container with the reference inference core: perplexity\n"
    "(llama.cpp's llama-perplexity protocol), KL divergence, top-1 agreement and RMS dp\n"
    "against a base model, prefill/decode speed, peak memory, stored size and bits per\n"
    "weight.  Writes the report to stdout and one row to the ledger.  Reads the model\n"
    "from stdin when MODEL is '-' or absent.\n"
    "\n"
    "Accuracy:\n"
    "  -t, --text NAME|FILE   evaluation text: a file, or a name from datasets/manifest.txt\n"
    "                         (heldout, wikitext2, ...); required unless --speed-only\n"
    "  -c, --ctx N            chunk length n_ctx (default 512)\n"
    "      --chunks N         evaluate only the first N chunks (default: all)\n"
    "      --score RULE       second-half (default, as llama-perplexity) or all\n"
    "      --base FILE        base model for KLD, top-1 agreement, RMS dp, ln(PPL/PPL_base)\n"
    "      --base-cache FILE  reuse the base's log-probs from FILE when it matches this\n"
    "                         run (base, text, tokenizer, n_ctx, scoring, chunks); write it\n"
    "                         when FILE does not exist (16-bit log-probs, 2 bytes x vocab\n"
    "                         per scored token; see lc-eval(1))\n"
    "Speed:\n"
    "      --speed-reps R     repetitions of the prefill/decode timing (default 5)\n"
    "      --no-speed         skip the speed measurement\n"
    "      --speed-only       skip the accuracy evaluation\n"
    "      --bandwidth        only measure the memory bandwidth (streaming read) and exit\n"
    "Target:\n"
    "  -p, --profile NAME     target profile: threads, ISA cap, memory budget (default laptop-2c)\n"
    "      --profiles FILE    profiles file (overrides built-ins; default $LC_PROFILES)\n"
    "  -T, --threads N        threads (overrides the profile)\n"
    "      --isa LEVEL        ISA cap: scalar, avx2, avx512 (overrides the profile)\n"
    "Output:\n"
    "  -j, --json             machine-readable report\n"
    "      --pass             copy the input container to stdout unchanged (after a\n"
    "                         successful evaluation); the report goes to stderr\n"
    "      --progress         show progress on stderr even when it is not a terminal\n"
    "      --db PATH          ledger database (default $LC_LEDGER_DB, else results/ledger.db)\n"
    "      --no-ledger        do not write a ledger row\n"
    "      --name LABEL       model name for the ledger (default: the file name)\n"
    "  -q, --quiet            no progress or log lines on stderr\n"
    "  -h, --help             this text\n"
    "  -V, --version          print the version\n";

/* Options, as parsed from the command line. */
struct opts {
    const char *input;      /* model path or "-" */
    const char *text;       /* --text */
    const char *base;       /* --base */
    const char *base_cache; /* --base-cache */
    const char *profile;    /* --profile */
    const char *profiles;   /* --profiles */
    const char *db;         /* --db (NULL = default) */
    const char *name;       /* --name */
    int n_ctx;              /* --ctx */
    int chunks;             /* --chunks, 0 = all */
    lc_eval_scoring scoring;
    int threads;            /* --threads, 0 = the profile's */
    int isa;                /* --isa, -1 = the profile's */
    int speed_reps;
    int no_speed, speed_only, bandwidth;
    int json, pass, progress, no_ledger, quiet;
};

static int usage_error(const char *msg)
{
    fprintf(stderr, "lc-eval: %s\nTry 'lc-eval --help' for more information.\n", msg);
    return 2;
}

static int parse_int(const char *opt, const char *s, long lo, long hi, int *out)
{
    long v;
    if (lc_parse_long(opt, s, lo, hi, &v))
        return usage_error(lc_errmsg());
    *out = (int)v;
    return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
    enum { O_CHUNKS = 256, O_SCORE, O_CACHE, O_REPS, O_NOSPEED, O_SPEEDONLY, O_BW, O_PROFILES, O_ISA, O_PASS,
           O_PROGRESS, O_DB, O_NOLEDGER, O_NAME };
    static const struct option lo[] = {
        {"text", 1, 0, 't'},         {"ctx", 1, 0, 'c'},           {"chunks", 1, 0, O_CHUNKS},
        {"score", 1, 0, O_SCORE},    {"base", 1, 0, 'b'},          {"base-cache", 1, 0, O_CACHE},
        {"speed-reps", 1, 0, O_REPS}, {"no-speed", 0, 0, O_NOSPEED}, {"speed-only", 0, 0, O_SPEEDONLY},
        {"bandwidth", 0, 0, O_BW},   {"profile", 1, 0, 'p'},       {"profiles", 1, 0, O_PROFILES},
        {"threads", 1, 0, 'T'},      {"isa", 1, 0, O_ISA},         {"json", 0, 0, 'j'},
        {"pass", 0, 0, O_PASS},      {"progress", 0, 0, O_PROGRESS}, {"db", 1, 0, O_DB},
        {"no-ledger", 0, 0, O_NOLEDGER}, {"name", 1, 0, O_NAME},   {"quiet", 0, 0, 'q'},
        {"help", 0, 0, 'h'},         {"version", 0, 0, 'V'},       {0, 0, 0, 0}};
    int c, rc;
    *o = (struct opts){.input = "-", .profile = "laptop-2c", .n_ctx = 512, .isa = -1, .speed_reps = 5};
    while ((c = getopt_long(argc, argv, "t:c:p:T:jqhV", lo, NULL)) != -1) {
        rc = 0;
        switch (c) {
        case 't': o->text = optarg; break;
        case 'c': rc = parse_int("--ctx", optarg, 2, 1 << 20, &o->n_ctx); break;
        case O_CHUNKS: rc = parse_int("--chunks", optarg, 1, INT32_MAX, &o->chunks); break;
        case O_SCORE:
            if (lc_eval_scoring_parse(optarg, &o->scoring))
                return usage_error(lc_errmsg());
            break;
        case 'b': o->base = optarg; break;
        case O_CACHE: o->base_cache = optarg; break;
        case O_REPS: rc = parse_int("--speed-reps", optarg, 1, 1000, &o->speed_reps); break;
        case O_NOSPEED: o->no_speed = 1; break;
        case O_SPEEDONLY: o->speed_only = 1; break;
        case O_BW: o->bandwidth = 1; break;
        case 'p': o->profile = optarg; break;
        case O_PROFILES: o->profiles = optarg; break;
        case 'T': rc = parse_int("--threads", optarg, 1, 1024, &o->threads); break;
        case O_ISA: {
            lc_isa isa;
            if (lc_isa_parse(optarg, &isa))
                return usage_error(lc_errmsg());
            o->isa = (int)isa;
            break;
        }
        case 'j': o->json = 1; break;
        case O_PASS: o->pass = 1; break;
        case O_PROGRESS: o->progress = 1; break;
        case O_DB: o->db = optarg; break;
        case O_NOLEDGER: o->no_ledger = 1; break;
        case O_NAME: o->name = optarg; break;
        case 'q': o->quiet = 1; lc_set_quiet(1); break;
        case 'h': fputs(usage, stdout); return 1;
        case 'V': puts("lc-eval " LC_VERSION); return 1;
        default: fputs("Try 'lc-eval --help' for more information.\n", stderr); return 2;
        }
        if (rc)
            return rc;
    }
    if (argc - optind > 1)
        return usage_error("expected at most one MODEL");
    if (optind < argc)
        o->input = argv[optind];
    if (o->speed_only && o->no_speed)
        return usage_error("--speed-only and --no-speed exclude each other");
    if (o->bandwidth && (o->pass || optind < argc))
        return usage_error("--bandwidth takes no model");
    if (!o->speed_only && !o->bandwidth && !o->text)
        return usage_error("--text FILE is required (or --speed-only)");
    if (o->speed_only && (o->text || o->base || o->base_cache))
        return usage_error("--speed-only takes no --text, --base or --base-cache");
    if (o->base_cache && !o->base && access(o->base_cache, F_OK) != 0)
        return usage_error("--base-cache FILE does not exist yet: give --base to create it");
    return 0;
}

/* ---- helpers --------------------------------------------------------------- */

static void progress_cb(void *ctx, int chunk, int n, double ppl)
{
    int tty = *(int *)ctx;
    fprintf(stderr, tty ? "\rlc-eval: chunk %d/%d  PPL %.4f " : "lc-eval: chunk %d/%d  PPL %.4f\n", chunk, n, ppl);
    if (tty && chunk == n)
        fputc('\n', stderr);
}

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

/* Recipe from the lineage: "tool args" per step joined by " | ", without
 * argv[0] and the options that do not change the model (-o/--output FILE,
 * -q/--quiet), so equal recipes compare equal in SQL. */
static int recipe_of(lc_container *c, char *buf, size_t cap)
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

/* Stored tensor bytes and weight count over every tensor. */
static int size_of(lc_container *c, int64_t *bytes, int64_t *weights)
{
    *bytes = *weights = 0;
    for (int i = 0; i < lc_container_n_tensors(c); i++) {
        lc_tensor t;
        if (lc_container_tensor_info(c, lc_container_tensor_name(c, i), &t))
            return -1;
        *bytes += (int64_t)lc_tensor_stored_bytes(&t);
        *weights += lc_tensor_numel(&t);
    }
    return 0;
}

/* An opened container with its configuration and tokenizer. */
struct model_in {
    lc_container *c;
    uint8_t *image;     /* stdin bytes (for --pass), or NULL */
    size_t image_len;
    lc_config cfg;
    lc_tokenizer tk;
    char tok_digest[17];
};

static int model_open(const char *path, int keep_image, struct model_in *m)
{
    memset(m, 0, sizeof *m);
    if (strcmp(path, "-") == 0 && keep_image) {
        if (isatty(STDIN_FILENO))
            return lc_error("no input: stdin is a terminal (give a container path or pipe one in)");
        if (lc_read_file("-", 0, &m->image, &m->image_len))
            return -1;
        if (m->image_len == 0)
            return lc_error("<stdin>: empty input");
        if (lc_container_open_memory(m->image, m->image_len, "<stdin>", &m->c))
            return -1;
    } else if (lc_container_open(path, &m->c)) {
        return -1;
    }
    if (lc_container_read_config(m->c, &m->cfg) || lc_container_read_tokenizer(m->c, &m->tk))
        return -1;
    lc_tokenizer_digest(&m->tk, m->tok_digest);
    return 0;
}

static void model_close(struct model_in *m)
{
    if (m->c)
        lc_container_close(m->c);
    lc_tokenizer_release(&m->tk);
    free(m->image);
    memset(m, 0, sizeof *m);
}

/* Copy a file to stdout (checked). */
static int emit_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return lc_error("cannot open '%s': %s", path, strerror(errno));
    char buf[1 << 16];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(buf, 1, sizeof buf, f)) > 0)
        rc = lc_cli_emit(buf, n);
    if (!rc && ferror(f))
        rc = lc_error("cannot read '%s': %s", path, strerror(errno));
    fclose(f);
    return rc;
}

static void json_num(FILE *f, const char *key, double v, const char *fmt)
{
    fprintf(f, ", \"%s\": ", key);
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs("null", f);
}

/* ---- the evaluation ----------------------------------------------------------- */

/* Everything measured, for the report and the ledger row. */
struct measured {
    lc_eval_result acc;
    int have_acc;
    lc_eval_speed speed;
    int have_speed;
    int64_t text_bytes, text_tokens;
    char base_label[256];
    const char *base_mode;   /* "on the fly", "cache written", "cache" */
    size_t weight_bytes, token_bytes, kv_bytes;
    int fits_ctx;
    int64_t ledger_id;
};

static int bandwidth_only(const struct opts *o, FILE *f)
{
    lc_profile prof;
    if (lc_profile_find(o->profile, o->profiles, &prof))
        return -1;
    int nt = o->threads ? o->threads : prof.threads;
    const size_t bytes = (size_t)1 << 30; // 4x the 260 MiB L3 measured here
    double bw;
    if (lc_eval_bandwidth(nt, bytes, 5, &bw))
        return -1;
    if (o->json)
        fprintf(f, "{\"bandwidth_bytes_s\": %.6g, \"threads\": %d, \"buffer_bytes\": %zu}\n", bw, nt, bytes);
    else
        fprintf(f, "bandwidth: %.2f GB/s (streaming read of %zu MiB, %d thread%s, best of 5)\n", bw / 1e9,
                bytes >> 20, nt, nt == 1 ? "" : "s");
    return 0;
}

static int accuracy(const struct opts *o, struct model_in *mi, lc_model *m, const lc_model_opts *mo, lc_run *row,
                    struct measured *r)
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
    // the base: from a matching cache, else loaded (and written to the cache)
    lc_eval_cache_key key = {.n_ctx = p.n_ctx, .scoring = p.scoring, .n_chunks = n_chunks,
                             .n_vocab = mi->cfg.vocab_size};
    snprintf(key.text_digest, sizeof key.text_digest, "%s", row->text_digest);
    snprintf(key.tokenizer_digest, sizeof key.tokenizer_digest, "%s", mi->tok_digest);
    if (o->base) {
        if (model_open(o->base, 0, &bi))
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
    int tty = isatty(STDERR_FILENO);
    lc_eval_run_opts ro = {.base = bm ? &base : NULL, .cache = cache, .n_threads = lc_model_threads(m)};
    if (!o->quiet && (tty || o->progress))
        ro.progress = progress_cb, ro.progress_ctx = &tty;
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

static void report_text(FILE *f, const struct opts *o, const lc_run *w, const lc_profile *pr, const struct measured *r)
{
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
    if (!o->no_ledger)
        fprintf(f, "ledger:      row %lld\n", (long long)r->ledger_id);
}

static void report_json(FILE *f, const struct opts *o, const lc_run *w, const lc_profile *pr, const struct measured *r)
{
    fprintf(f, "{\"model\": ");
    lc_fput_json_str(f, w->model_name);
    fprintf(f, ", \"model_digest\": \"%s\", \"recipe\": ", w->model_digest);
    lc_fput_json_str(f, w->recipe);
    fprintf(f, ",\n \"size\": {\"weights\": %lld, \"stored_bytes\": %lld, \"bpw\": %.6g, \"weight_bytes\": %zu, "
               "\"bytes_per_token\": %zu}",
            (long long)w->n_weights, (long long)w->stored_bytes, w->bpw, r->weight_bytes, r->token_bytes);
    fprintf(f, ",\n \"profile\": {\"name\": ");
    lc_fput_json_str(f, w->profile);
    fprintf(f, ", \"threads\": %d, \"isa\": \"%s\", \"mem_budget\": %lld, \"fits\": %s, \"kv_bytes\": %zu, "
               "\"fits_ctx\": %d}",
            w->threads, w->isa, (long long)pr->mem_budget, w->fits_budget ? "true" : "false", r->kv_bytes,
            r->fits_ctx);
    if (r->have_acc) {
        const lc_eval_result *a = &r->acc;
        fprintf(f, ",\n \"text\": {\"file\": ");
        lc_fput_json_str(f, w->dataset);
        fprintf(f, ", \"digest\": \"%s\", \"bytes\": %lld, \"tokens\": %lld, \"tokenizer_digest\": \"%s\"}",
                w->text_digest, (long long)r->text_bytes, (long long)r->text_tokens, w->tokenizer_digest);
        fprintf(f, ",\n \"protocol\": {\"n_ctx\": %d, \"scoring\": \"%s\", \"chunks\": %d, \"tokens_scored\": %lld}",
                a->n_ctx, lc_eval_scoring_name(a->scoring), a->n_chunks, (long long)a->n_scored);
        fprintf(f, ",\n \"perplexity\": {\"ppl\": %.10g, \"stderr\": %.6g, \"nll_mean\": %.10g, \"seconds\": %.3f}",
                a->ppl, a->ppl_stderr, a->nll_mean, a->seconds);
        if (a->have_base) {
            fprintf(f, ",\n \"base\": {\"file\": ");
            lc_fput_json_str(f, r->base_label);
            fprintf(f, ", \"digest\": \"%s\", \"mode\": \"%s\"", w->base_digest, r->base_mode);
            json_num(f, "ppl_base", a->ppl_base, "%.10g");
            json_num(f, "ppl_base_stderr", a->ppl_base_stderr, "%.6g");
            json_num(f, "ln_ppl_ratio", a->ln_ppl_ratio, "%.8g");
            json_num(f, "ln_ppl_ratio_stderr", a->ln_ppl_ratio_stderr, "%.6g");
            json_num(f, "kld_mean", a->kld_mean, "%.8g");
            json_num(f, "kld_stderr", a->kld_stderr, "%.6g");
            json_num(f, "kld_median", a->kld_median, "%.8g");
            json_num(f, "kld_p99", a->kld_p99, "%.8g");
            json_num(f, "kld_max", a->kld_max, "%.8g");
            json_num(f, "top1", a->top1, "%.8g");
            json_num(f, "top1_stderr", a->top1_stderr, "%.6g");
            json_num(f, "rms_dp", a->rms_dp, "%.8g");
            json_num(f, "rms_dp_stderr", a->rms_dp_stderr, "%.6g");
            json_num(f, "mean_dp", a->mean_dp, "%.8g");
            fputc('}', f);
        }
    }
    if (r->have_speed) {
        const lc_eval_speed *s = &r->speed;
        fprintf(f, ",\n \"speed\": {\"reps\": %d, \"prefill_tokens\": %d, \"prefill_tok_s\": %.6g, "
                   "\"prefill_spread\": %.4g, \"decode_tokens\": %d, \"decode_tok_s\": %.6g, \"decode_spread\": %.4g}",
                s->reps, s->prefill_tokens, s->prefill_tok_s, s->prefill_spread, s->decode_tokens, s->decode_tok_s,
                s->decode_spread);
    }
    fprintf(f, ",\n \"peak_rss\": %lld", (long long)w->peak_rss);
    if (!o->no_ledger)
        fprintf(f, ", \"ledger_row\": %lld", (long long)r->ledger_id);
    fprintf(f, "}\n");
}

static int run(const struct opts *o, FILE *f)
{
    if (o->bandwidth)
        return bandwidth_only(o, f);
    if (o->pass && isatty(STDOUT_FILENO))
        return lc_error("refusing to write a binary container to a terminal (--pass needs a pipe or a file)");
    lc_profile prof;
    if (lc_profile_find(o->profile, o->profiles, &prof))
        return -1;
    lc_model_opts mo = {.n_threads = o->threads ? o->threads : prof.threads,
                        .max_isa = o->isa >= 0 ? (lc_isa)o->isa : (lc_isa)prof.isa};
    struct model_in mi;
    struct measured r = {.base_mode = ""};
    lc_model *m = NULL;
    lc_ledger *led = NULL;
    lc_run *w = malloc(sizeof *w); // ~6 KB of strings
    int rc = -1;
    if (!w)
        return lc_error("out of memory");
    lc_run_init(w);
    if (model_open(o->input, o->pass, &mi))
        goto done;
    const char *path = lc_container_path(mi.c);
    snprintf(w->model_name, sizeof w->model_name, "%s", o->name ? o->name : path ? path : o->input);
    snprintf(w->model_digest, sizeof w->model_digest, "%s", lc_container_digest(mi.c));
    snprintf(w->tokenizer_digest, sizeof w->tokenizer_digest, "%s", mi.tok_digest);
    snprintf(w->profile, sizeof w->profile, "%s", prof.name);
    if (recipe_of(mi.c, w->recipe, sizeof w->recipe) || size_of(mi.c, &w->stored_bytes, &w->n_weights))
        goto done;
    w->bpw = w->n_weights ? 8.0 * (double)w->stored_bytes / (double)w->n_weights : NAN;
    if (lc_model_load(mi.c, &mo, &m))
        goto done;
    w->threads = lc_model_threads(m);
    snprintf(w->isa, sizeof w->isa, "%s", lc_isa_name(lc_model_isa(m)));
    r.weight_bytes = lc_model_weight_bytes(m);
    r.token_bytes = lc_model_bytes_per_token(m);
    // fits: weights as held in memory + an f32 KV cache for the profile's
    // context (capped at the model's max_seq_len) within the budget
    r.fits_ctx = prof.n_ctx < mi.cfg.max_seq_len || mi.cfg.max_seq_len <= 0 ? prof.n_ctx : mi.cfg.max_seq_len;
    r.kv_bytes = 2 * sizeof(float) * (size_t)mi.cfg.n_layers * (size_t)mi.cfg.n_kv_heads * (size_t)mi.cfg.head_dim *
                 (size_t)r.fits_ctx;
    w->fits_budget = (int64_t)(r.weight_bytes + r.kv_bytes) <= prof.mem_budget;

    if (!o->speed_only && accuracy(o, &mi, m, &mo, w, &r))
        goto done;
    if (!o->no_speed) {
        if (lc_eval_measure_speed(m, o->speed_reps, 512, 128, &r.speed))
            goto done;
        r.have_speed = 1;
        w->prefill_tok_s = r.speed.prefill_tok_s;
        w->prefill_tok_s_spread = r.speed.prefill_spread;
        w->decode_tok_s = r.speed.decode_tok_s;
        w->decode_tok_s_spread = r.speed.decode_spread;
        w->speed_reps = r.speed.reps;
    }
    w->peak_rss = lc_eval_peak_rss();
    gethostname(w->host, sizeof w->host - 1);
    snprintf(w->build, sizeof w->build, "%s", LC_VERSION);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(w->time, sizeof w->time, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!o->no_ledger) {
        if (lc_ledger_open(o->db, &led) || lc_ledger_add(led, w, &prof, &r.ledger_id)) {
            lc_error_prefix("ledger");
            goto done;
        }
    }
    (o->json ? report_json : report_text)(f, o, w, &prof, &r);
    rc = 0;
done:
    if (led)
        lc_ledger_close(led);
    if (m)
        lc_model_free(m);
    if (!rc && o->pass) { // keep the input until it has been copied
        lc_container_close(mi.c);
        mi.c = NULL;
        rc = mi.image ? lc_cli_emit((const char *)mi.image, mi.image_len) : emit_file(o->input);
    }
    model_close(&mi);
    free(w);
    return rc;
}

int main(int argc, char **argv)
{
    lc_blas_ensure(argc, argv); // re-executes with OPENBLAS_CORETYPE set when needed (DESIGN.md)
    static char **args; // lc_cli_init's argv copy lives until exit
    struct opts o;
    args = lc_cli_init(argc, argv);
    (void)args;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        fprintf(stderr, "lc-eval: out of memory\n");
        return 1;
    }
    // with --pass the report goes to stderr after the image went to stdout
    rc = run(&o, f);
    fclose(f);
    if (!rc) {
        if (o.pass) {
            if (!o.quiet && (fwrite(buf, 1, len, stderr) != len || fflush(stderr)))
                rc = lc_error("cannot write the report to stderr");
        } else {
            rc = lc_cli_emit(buf, len);
        }
    }
    free(buf);
    if (rc) {
        fprintf(stderr, "lc-eval: %s\n", lc_errmsg());
        return 1;
    }
    return 0;
}
