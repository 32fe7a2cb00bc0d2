/* Model-level low-rank factorization: selection, calibration, output. */
#include "compress/factorize.h"
#include "core/tensor.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

void lc_factorize_opts_default(lc_factorize_opts *o)
{
    memset(o, 0, sizeof *o);
    lc_lr_params_default(&o->p);
    lc_calib_opts_default(&o->calib);
}

static const char *const LINEARS[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

static int selected(const lc_factorize_opts *o, const char *name)
{
    if (strncmp(name, "layers.", 7) != 0 || !lc_model_is_linear(name))
        return 0;
    for (int i = 0; i < o->n_keep; i++)
        if (fnmatch(o->keep[i], name, 0) == 0)
            return 0;
    return 1;
}

/* What the run did, for the report and the note. */
typedef struct fctx {
    const lc_factorize_opts *o;
    int n_layers;
    int *ranks;              /* [n_layers][7], 0 = kept */
    int64_t params_in, params_out;
    int damp_retries;
    double max_damp;
    int done;                /* tensors factored so far (progress) */
    int total;
    lc_container *in;        /* compensation: the quantized input */
    lc_tensor *comp;         /* compensation: the results, by container tensor index */
    double err_before, err_after; /* compensation: summed relative output errors */
    int spectra;             /* allocation, first pass: only the spectra */
    double **s2;             /* allocation: each tensor's spectrum, by container index */
    int *rank_of;            /* allocation: the chosen rank, by container index (0 = none) */
    lc_container *out;
    lc_model *m;             /* the calibrated model (whiten, asvd) */
    int lazy;                /* m holds one layer: each goes out once factored */
    lc_emitter em;           /* the output, in input order */
} fctx;

static int tensor_index(lc_container *c, const char *name)
{
    for (int k = 0; k < lc_container_n_tensors(c); k++)
        if (strcmp(lc_container_tensor_name(c, k), name) == 0)
            return k;
    return -1;
}

/* One more tensor factored: the totals of the note. */
static void account(fctx *f, const lc_lr_report *r, int64_t m, int64_t n)
{
    f->params_in += m * n;
    f->params_out += (int64_t)r->rank * (m + n);
    f->damp_retries += r->damp_retries;
    if (r->percdamp > f->max_damp)
        f->max_damp = r->percdamp;
    f->done++;
}

static int factor_one(fctx *f, const char *name, const lc_tensor *t, const double *H, const float *absmean,
                      lc_tensor *out)
{
    int64_t m = lc_tensor_rows(t), n = lc_tensor_cols(t);
    float *W = lc_malloc((size_t)(m * n) * sizeof *W);
    lc_lr_report r;
    int idx = tensor_index(f->in, name);
    lc_lr_params p = f->o->p;
    if (f->rank_of && idx >= 0)
        p.rank = f->rank_of[idx], p.ratio = p.energy = 0;
    p.factor_dtype = t->enc == LC_ENC_DENSE ? t->dtype : LC_DT_F32; /* factors as precise as the weights */
    if (f->spectra) { /* allocation's first pass: the spectrum alone */
        int64_t full = m < n ? m : n;
        int rc = !W || idx < 0 || !(f->s2[idx] = lc_malloc((size_t)full * sizeof(double))) || lc_tensor_to_f32(t, W) ||
                 lc_lowrank_spectrum(W, m, n, H, absmean, &p, f->s2[idx], &r);
        free(W);
        memset(out, 0, sizeof *out);
        if (!rc && ++f->done % 8 == 0)
            lc_log("lc-lowrank: spectra of %d/%d tensors\n", f->done, f->total);
        return rc ? lc_error_prefix("%s", name) : 0;
    }
    int rc = !W || lc_tensor_to_f32(t, W) || lc_lowrank_factor(name, W, m, n, H, absmean, &p, out, &r);
    free(W);
    if (rc)
        return lc_error_prefix("%s", name);
    int layer, which = -1;
    char what[32];
    if (sscanf(name, "layers.%d.%31s", &layer, what) == 2 && layer >= 0 && layer < f->n_layers)
        for (int i = 0; i < 7; i++)
            if (strcmp(what, LINEARS[i]) == 0)
                which = i;
    if (which >= 0)
        f->ranks[layer * 7 + which] = r.rank;
    account(f, &r, m, n);
    lc_log("lc-lowrank: [%d/%d] %s [%lld x %lld]: rank %d, energy kept %.4f, %s error %.4g%s\n", f->done, f->total,
           name, (long long)m, (long long)n, r.rank, r.energy, H ? "output" : "weight", r.err,
           r.damp_retries ? " (Cholesky retried with more dampening)" : "");
    return 0;
}

/* W (the reference's) - Q (the input's) ~ A B, attached to Q. */
static int compensate_one(fctx *f, const char *name, const lc_tensor *ref, const double *H, lc_tensor *q)
{
    int64_t m = lc_tensor_rows(ref), n = lc_tensor_cols(ref);
    size_t mn = (size_t)(m * n);
    float *W = lc_malloc(mn * sizeof *W), *Q = lc_malloc(mn * sizeof *Q);
    lc_tensor lr = {0};
    lc_lr_report r;
    int rc = -1;
    if (!W || !Q || lc_tensor_to_f32(ref, W) || lc_container_read_tensor(f->in, name, q) || lc_tensor_to_f32(q, Q))
        goto out;
    double before = lc_lowrank_rel_error(W, Q, m, n, H);
    for (size_t i = 0; i < mn; i++)
        W[i] -= Q[i]; /* W is the error now */
    lc_lr_params p = f->o->p;
    p.method = LC_LR_WHITEN;
    if (lc_lowrank_factor(name, W, m, n, H, NULL, &p, &lr, &r))
        goto out;
    q->lr_rank = lr.lr_rank, q->lr_a = lr.lr_a, q->lr_b = lr.lr_b;
    lr.lr_a = lr.lr_b = NULL;
    if (lc_tensor_validate(q) || lc_tensor_to_f32(ref, W) || lc_tensor_to_f32(q, Q))
        goto out;
    double after = lc_lowrank_rel_error(W, Q, m, n, H);
    f->err_before += before, f->err_after += after;
    account(f, &r, m, n);
    char enc[96];
    lc_tensor_encoding_str(q, enc, sizeof enc);
    lc_log("lc-lowrank: [%d/%d] %s [%lld x %lld]: %s, output error %.4g -> %.4g\n", f->done, f->total, name,
           (long long)m, (long long)n, enc, before, after);
    rc = 0;
out:
    free(W), free(Q);
    lc_tensor_release(&lr);
    if (rc) {
        lc_tensor_release(q);
        lc_error_prefix("%s", name);
    }
    return rc;
}

static int layer_cb(void *ud, lc_model *m, int layer, const lc_layer_stats *st)
{
    fctx *f = ud;
    if (f->o->compensate) {
        for (int i = 0; i < 7; i++) {
            char name[LC_NAME_MAX];
            lc_layer_tensor_name(name, sizeof name, layer, LINEARS[i]);
            int idx = tensor_index(f->in, name);
            if (idx < 0 || !selected(f->o, name))
                continue;
            const lc_tensor *ref = lc_model_tensor(m, name);
            if (!ref || compensate_one(f, name, ref, st->H[lc_calib_point_of(LINEARS[i])], &f->comp[idx]))
                return ref ? -1 : lc_error("%s: not in the reference", name);
        }
        return 0; /* the reference model stays as it is: its statistics feed every layer */
    }
    for (int i = 0; i < 7; i++) {
        char name[LC_NAME_MAX];
        lc_layer_tensor_name(name, sizeof name, layer, LINEARS[i]);
        if (!selected(f->o, name))
            continue;
        const lc_tensor *t = lc_model_tensor(m, name);
        if (!t)
            return lc_error("%s: not loaded", name);
        lc_capture_point pt = lc_calib_point_of(LINEARS[i]);
        lc_tensor out;
        if (factor_one(f, name, t, st->H[pt], st->absmean[pt], &out))
            return -1;
        if (f->spectra)
            continue;
        int rc = lc_model_set_tensor(m, &out);
        lc_tensor_release(&out);
        if (rc)
            return -1;
    }
    return 0;
}

/* The refusals of the composition rules, before anything is written. */
static int check_input(const lc_tensor *t, const lc_factorize_opts *o)
{
    char enc[96];
    lc_tensor_encoding_str(t, enc, sizeof enc);
    if (t->ndim != 2)
        return lc_error("tensor '%s' is not a matrix", t->name);
    if (o->compensate) {
        int k;
        if (lc_tensor_has_lowrank(t) || t->enc == LC_ENC_LOWRANK)
            return lc_error("tensor '%s' already has a low-rank term (%s): --compensate adds one to a quantized "
                            "or sparse tensor",
                            t->name, enc);
        if (t->enc == LC_ENC_DENSE)
            return lc_error("tensor '%s' is dense (%s): --compensate corrects the error of quantization or "
                            "pruning; factor a dense tensor without it, or --keep '%s'",
                            t->name, enc, t->name);
        if (lc_lowrank_rank(&o->p, t->shape[0], t->shape[1], NULL, 0, &k))
            return lc_error_prefix("tensor '%s'", t->name);
        lc_tensor r;
        if (lc_container_tensor_info(o->reference, t->name, &r))
            return lc_error_prefix("--reference");
        int same = r.ndim == 2 && r.shape[0] == t->shape[0] && r.shape[1] == t->shape[1];
        lc_tensor_release(&r);
        return same ? 0 : lc_error("tensor '%s': the reference's shape differs", t->name);
    }
    if (lc_tensor_has_lowrank(t) || t->enc == LC_ENC_LOWRANK)
        return lc_error("tensor '%s' already has a low-rank term (%s): lc-lowrank factors dense weights; --keep '%s' "
                        "leaves it as it is",
                        t->name, enc, t->name);
    if (t->enc != LC_ENC_DENSE)
        return lc_error("tensor '%s' is %s: factoring it would drop its %s; factor the dense model first and "
                        "quantize or prune after, or --keep '%s'",
                        t->name, enc, lc_tensor_is_sparse(t) ? "sparsity" : "quantization", t->name);
    int k;
    if (o->p.energy <= 0 && !o->target_bpw && !o->budget &&
        lc_lowrank_rank(&o->p, t->shape[0], t->shape[1], NULL, 0, &k))
        return lc_error_prefix("tensor '%s'", t->name);
    return 0;
}

/* "attn_q 204, attn_k 102/103/..." : one rank per kind when every layer got
 * the same, else the layers' ranks in order. */
static void ranks_note(const fctx *f, char *note, size_t nn)
{
    size_t k = strlen(note);
    int first = 1;
#define PUT(...) (k += (size_t)snprintf(note + k, nn > k ? nn - k : 0, __VA_ARGS__), k = k < nn ? k : nn)
    PUT("; ranks:");
    for (int i = 0; i < 7; i++) {
        int same = 1, any = 0;
        for (int l = 0; l < f->n_layers; l++) {
            any |= f->ranks[l * 7 + i] != 0;
            same &= f->ranks[l * 7 + i] == f->ranks[i];
        }
        if (!any)
            continue;
        PUT("%s %s ", first ? "" : ",", LINEARS[i]);
        first = 0;
        for (int l = 0; l < (same ? 1 : f->n_layers); l++)
            PUT("%s%d", l ? "/" : "", f->ranks[l * 7 + i]);
    }
    if (first)
        PUT(" none");
#undef PUT
}

/* --target-bpw / --budget: every selected tensor's spectrum (a calibration
 * pass for whiten, the weights alone for svd), then the exact allocation. */
static int allocate(fctx *f, lc_container *in, lc_model *m, lc_tokenizer *tk, lc_calib_report *cr)
{
    const lc_factorize_opts *o = f->o;
    int n = lc_container_n_tensors(in), count = 0, rc = -1, exact = 0;
    if (o->p.method == LC_LR_ASVD)
        return lc_error("--target-bpw and --budget allocate on the whitened (whiten) or plain (svd) spectrum, not asvd's");
    f->s2 = lc_calloc((size_t)n, sizeof *f->s2);
    f->rank_of = lc_calloc((size_t)n, sizeof *f->rank_of);
    const double **s2 = lc_calloc((size_t)n, sizeof *s2);
    int64_t *rows = lc_calloc((size_t)n, sizeof *rows), *cols = lc_calloc((size_t)n, sizeof *cols);
    int *idx = lc_calloc((size_t)n, sizeof *idx), *ranks = lc_calloc((size_t)n, sizeof *ranks);
    if (!f->s2 || !f->rank_of || !s2 || !rows || !cols || !idx || !ranks)
        goto out;
    f->spectra = 1, f->done = 0;
    if (m) {
        lc_log("lc-lowrank: allocation: spectra on '%s' (%d x %d tokens)\n", o->calib.text, o->calib.nsamples,
               o->calib.seqlen);
        if (lc_calib_run(m, tk, &o->calib, layer_cb, f, cr))
            goto out;
    } else {
        for (int i = 0; i < n; i++) {
            const char *name = lc_container_tensor_name(in, i);
            lc_tensor t, dummy;
            if (!selected(o, name))
                continue;
            if (lc_container_read_tensor(in, name, &t))
                goto out;
            int r2 = factor_one(f, name, &t, NULL, NULL, &dummy);
            lc_tensor_release(&t);
            if (r2)
                goto out;
        }
    }
    int64_t params = 0;
    lc_dtype dtype = LC_DT_F32; /* the factors' float type: the weights' (factor_one) */
    for (int i = 0; i < n; i++) {
        if (!f->s2[i])
            continue;
        lc_tensor t;
        if (lc_container_tensor_info(in, lc_container_tensor_name(in, i), &t))
            goto out;
        /* relative: each tensor's error as a fraction of its output energy
         * tr(W H W^T), so that layers with small inputs are not starved */
        int64_t full = t.shape[0] < t.shape[1] ? t.shape[0] : t.shape[1];
        double tot = 0;
        for (int64_t k = 0; k < full; k++)
            tot += f->s2[i][k];
        for (int64_t k = 0; tot > 0 && k < full; k++)
            f->s2[i][k] /= tot;
        rows[count] = t.shape[0], cols[count] = t.shape[1], s2[count] = f->s2[i], idx[count++] = i;
        params += t.shape[0] * t.shape[1];
        if (t.enc == LC_ENC_DENSE)
            dtype = t.dtype;
        lc_tensor_release(&t);
    }
    /* bytes per factor element: f32, or codes plus a binary16 scale per 32 */
    double bpe = o->p.factor_bits ? o->p.factor_bits / 8.0 + 2.0 / 32 : (double)lc_dtype_size(dtype);
    double bytes = o->budget > 0 ? o->budget : o->target_bpw * (double)params / 8.0, err;
    int64_t minside = INT64_MAX;
    for (int t = 0; t < count; t++)
        minside = rows[t] < minside ? rows[t] : minside, minside = cols[t] < minside ? cols[t] : minside;
    int step = minside >= 256 ? (o->p.align > 1 ? o->p.align : 8) : 1;
    if (lc_lowrank_allocate(count, s2, rows, cols, bytes / bpe, step, ranks, &err, &exact))
        goto out;
    for (int t = 0; t < count; t++)
        f->rank_of[idx[t]] = ranks[t];
    lc_log("lc-lowrank: allocation: %d tensors, %.0f bytes of factors (%.3f bits per weight of them); ranks from 1 "
           "and multiples of %d, %s; summed truncation error %.6g\n",
           count, bytes, 8.0 * bytes / (double)params, step, exact ? "exact" : "costs coarsened to fit the table", err);
    f->spectra = 0, f->done = 0;
    rc = 0;
out:
    for (int i = 0; f->s2 && i < n; i++)
        free(f->s2[i]);
    free(f->s2);
    f->s2 = NULL;
    free(s2), free(rows), free(cols), free(idx), free(ranks);
    return rc;
}

/* The reference must be an ancestor of the input: its digest is the input
 * of one of the input's lineage rows. */
static int check_ancestor(lc_container *in, lc_container *ref)
{
    lc_lineage_row *rows;
    size_t n;
    const char *d = lc_container_digest(ref);
    if (!d || lc_container_read_lineage(in, &rows, &n))
        return -1;
    char want[32];
    snprintf(want, sizeof want, "xxh64:%s", d);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found |= rows[i].input && strcmp(rows[i].input, want) == 0;
    lc_lineage_free(rows, n);
    if (!found)
        return lc_error("--reference %s (xxh64:%s) is not an ancestor of %s: no lineage row of the input read it",
                        lc_container_path(ref), d, lc_container_path(in));
    return 0;
}

/* Input tensor i, final: a copy, a compensated or factored tensor. */
static int output_one(void *ud, int i)
{
    fctx *f = ud;
    const char *name = lc_container_tensor_name(f->in, i);
    if (!selected(f->o, name))
        return lc_container_copy_tensor(f->in, f->out, name);
    if (f->o->compensate)
        return f->comp[i].ndim ? lc_container_write_tensor(f->out, &f->comp[i]) : lc_error("%s: not compensated", name);
    if (f->m) {
        const lc_tensor *mt = lc_model_tensor(f->m, name);
        return mt ? lc_container_write_tensor(f->out, mt) : lc_error("%s: not loaded", name);
    }
    lc_tensor t, lr;
    if (lc_container_read_tensor(f->in, name, &t))
        return -1;
    int rc = factor_one(f, name, &t, NULL, NULL, &lr) || lc_container_write_tensor(f->out, &lr) ? -1 : 0;
    lc_tensor_release(&t);
    lc_tensor_release(&lr);
    return rc;
}

int lc_factorize_model(lc_container *in, lc_container *out, const lc_factorize_opts *o, char *note, size_t nn)
{
    lc_config cfg;
    if (lc_container_read_config(in, &cfg) || lc_container_copy_header(in, out))
        return -1;
    fctx f = {.o = o, .n_layers = cfg.n_layers};
    int n = lc_container_n_tensors(in);
    if (o->compensate && check_ancestor(in, o->reference))
        return -1;
    for (int i = 0; i < n; i++) {
        const char *name = lc_container_tensor_name(in, i);
        if (!selected(o, name))
            continue;
        lc_tensor t;
        if (lc_container_tensor_info(in, name, &t))
            return -1;
        int rc = check_input(&t, o);
        lc_tensor_release(&t);
        if (rc)
            return -1;
        f.total++;
    }
    if (!(f.ranks = lc_calloc((size_t)(7 * cfg.n_layers), sizeof *f.ranks)))
        return -1;
    lc_model *m = NULL;
    lc_tokenizer tk = {0};
    lc_calib_report cr;
    memset(&cr, 0, sizeof cr);
    int calib = o->p.method != LC_LR_SVD || o->compensate, rc = -1;
    if (o->compensate && !(f.comp = lc_calloc((size_t)n, sizeof *f.comp)))
        goto out;
    f.in = in, f.out = out;
    if (lc_emitter_init(&f.em, in, cfg.n_layers, output_one, &f))
        goto out;
    if (calib) {
        /* one layer at a time, except where the calibration runs twice
         * (allocation) or on another model (compensation) */
        lc_container *src = o->compensate ? o->reference : in;
        lc_model_opts mo = o->model;
        f.lazy = mo.lazy_layers = !o->compensate && !(o->target_bpw > 0 || o->budget > 0);
        if (lc_container_read_tokenizer(src, &tk) || lc_model_load(src, &mo, &m))
            goto out;
        f.m = o->compensate ? NULL : m;
    }
    if ((o->target_bpw > 0 || o->budget > 0) && allocate(&f, in, m, &tk, &cr))
        goto out;
    if (calib) {
        lc_log("lc-lowrank: calibrating on '%s' (%d x %d tokens)\n", o->calib.text, o->calib.nsamples, o->calib.seqlen);
        lc_calib_opts co = o->calib;
        if (f.lazy)
            co.layer_begin = lc_emitter_layer_begin, co.layer_end = lc_emitter_layer_end, co.hook_ud = &f.em;
        if (lc_calib_run(m, &tk, &co, layer_cb, &f, &cr))
            goto out;
        lc_log("lc-lowrank: calibration text %s (xxh64 %s): %lld tokens used of %lld, %.1f s\n", cr.text_name,
               cr.text_digest, (long long)cr.tokens_used, (long long)cr.text_tokens, cr.seconds);
    }
    if (lc_emitter_upto(&f.em, n - 1))
        goto out;
    static const char *const mname[] = {"svd", "whiten (SVD-LLM)", "asvd"};
    char rule[96];
    if (o->p.rank > 0)
        snprintf(rule, sizeof rule, "rank %d", o->p.rank);
    else if (o->p.ratio > 0)
        snprintf(rule, sizeof rule, "ratio %g (parameters removed)", o->p.ratio);
    else if (o->budget > 0)
        snprintf(rule, sizeof rule, "ranks allocated for a budget of %.0f bytes", o->budget);
    else if (o->target_bpw > 0)
        snprintf(rule, sizeof rule, "ranks allocated for %g bits per weight", o->target_bpw);
    else
        snprintf(rule, sizeof rule, "energy %g", o->p.energy);
    int k;
    if (o->compensate)
        k = snprintf(note, nn,
                     "compensation (whitened SVD of W - Q(W) against the reference xxh64:%s), %s: %d linears, "
                     "factor parameters %lld (%.2f%% of theirs); summed relative output error %.4g -> %.4g",
                     lc_container_digest(o->reference), rule, f.done, (long long)f.params_out,
                     f.params_in ? 100.0 * (double)f.params_out / (double)f.params_in : 0.0, f.err_before,
                     f.err_after);
    else
        k = snprintf(note, nn, "%s, %s: %d linears factored, their parameters %lld -> %lld (%.1f%%)",
                     mname[o->p.method], rule, f.done, (long long)f.params_in, (long long)f.params_out,
                     f.params_in ? 100.0 * (double)f.params_out / (double)f.params_in : 0.0);
    if (o->p.method == LC_LR_ASVD && !o->compensate && k > 0 && (size_t)k < nn)
        k += snprintf(note + k, nn - (size_t)k, "; alpha %g", o->p.alpha);
    if (o->p.factor_bits && k > 0 && (size_t)k < nn)
        k += snprintf(note + k, nn - (size_t)k, "; factors %d-bit RTN sym", o->p.factor_bits);
    if (calib && k > 0 && (size_t)k < nn)
        k += snprintf(note + k, nn - (size_t)k, "; calibration %s xxh64:%s, %d x %d = %lld tokens (seed %llu), %s",
                      cr.text_name, cr.text_digest, cr.nsamples, cr.seqlen, (long long)cr.tokens_used,
                      (unsigned long long)o->calib.seed,
                      o->calib.independent ? "statistics of the original model" : "sequential statistics");
    if ((o->p.method == LC_LR_WHITEN || o->compensate) && k > 0 && (size_t)k < nn)
        k += snprintf(note + k, nn - (size_t)k, "; Gram dampening %g x mean diag%s", f.max_damp,
                      f.damp_retries ? " (raised after a failed Cholesky)" : "");
    if (!o->compensate)
        ranks_note(&f, note, nn);
    rc = 0;
out:
    for (int i = 0; f.comp && i < n; i++)
        lc_tensor_release(&f.comp[i]);
    free(f.rank_of);
    free(f.comp);
    free(f.ranks);
    lc_emitter_release(&f.em);
    lc_tokenizer_release(&tk);
    lc_model_free(m);
    return rc;
}
