/* Model-level quantization: selection, calibration, methods, output. */
#include "compress/quantize.h"
#include "core/cpu.h"
#include "core/sparse.h"
#include "core/tensor.h"

#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convert/import.h"
#include "model/model.h"

void lc_quantize_opts_default(lc_quantize_opts *o)
{
    memset(o, 0, sizeof *o);
    o->method = LC_QM_RTN;
    o->p = (lc_quant_params){.bits = 4, .group = 128, .sym = 1};
    lc_gptq_opts_default(&o->gptq);
    lc_awq_opts_default(&o->awq);
    lc_calib_opts_default(&o->calib);
}

/* Bits for a tensor: 0 = leave as is. */
static int bits_for(const lc_quantize_opts *o, const char *name)
{
    for (int i = 0; i < o->n_keep; i++)
        if (fnmatch(o->keep[i], name, 0) == 0)
            return 0;
    int bits = 0;
    if (strcmp(name, "tok_embeddings") == 0)
        bits = o->embed_bits;
    else if (lc_model_is_linear(name) && strcmp(name, "output") != 0)
        bits = o->p.bits;
    else if (strcmp(name, "output") == 0)
        bits = o->embed_bits;
    for (int i = o->n_ovr; i-- > 0;) /* the last matching override wins (docs/OPTIONS.md) */
        if (fnmatch(o->ovr_pat[i], name, 0) == 0)
            return o->ovr_bits[i];
    return bits;
}

static lc_quant_params params_for(const lc_quantize_opts *o, const char *name, int bits)
{
    lc_quant_params p = o->p;
    p.bits = bits;
    p.threads = o->model.n_threads > 0 ? o->model.n_threads : lc_cpu_count();
    if (!lc_model_is_linear(name) || strcmp(name, "output") == 0) /* embedding / head: RTN sym g32 */
        p.group = 32, p.sym = 1;
    return p;
}

/* W as f32 (malloc'd), refusing non-finite weights. */
static float *tensor_f32(const lc_tensor *t)
{
    if (lc_tensor_count_nonfinite(t)) {
        lc_error("tensor '%s' holds NaN or Inf values", t->name);
        return NULL;
    }
    float *w = lc_malloc((size_t)lc_tensor_numel(t) * sizeof *w);
    if (w && lc_tensor_to_f32(t, w)) {
        free(w);
        return NULL;
    }
    return w;
}


/* The structure of a sparse input, kept by the result: its positions. */
typedef struct prior {
    uint8_t *keep;   /* [rows, cols], NULL for a dense input */
    int n, m;        /* N:M, or 0 for a bitmask */
} prior;

static int prior_of(const lc_tensor *t, prior *pr)
{
    memset(pr, 0, sizeof *pr);
    if (!lc_tensor_is_sparse(t))
        return 0;
    if (!(pr->keep = lc_malloc((size_t)(lc_tensor_rows(t) * lc_tensor_cols(t)))) ||
        lc_tensor_positions(t, pr->keep, NULL)) {
        free(pr->keep);
        pr->keep = NULL;
        return -1;
    }
    pr->n = t->enc == LC_ENC_SPARSE_NM ? t->sp_n : 0;
    pr->m = t->enc == LC_ENC_SPARSE_NM ? t->sp_m : 0;
    return 0;
}

/* A quantized dense result q back onto the input's structure: the codes of
 * the kept positions, the same grid (pruned positions held the code of 0). */
static int keep_structure(lc_tensor *q, const prior *pr)
{
    if (!pr->keep)
        return 0;
    lc_tensor s; /* restrict keeps the name */
    if (lc_tensor_restrict(q, pr->keep, pr->n, pr->m, &s))
        return -1;
    lc_tensor_release(q);
    *q = s;
    return 0;
}

/* The grid of a low-rank factor: p's group where it divides the factor's
 * rows (the rank, for A), else 32, else the whole row. */
static int factor_params(const lc_tensor *f, const lc_quant_params *p, lc_quant_params *out)
{
    int64_t cols = lc_tensor_cols(f);
    int g;
    *out = *p;
    if (p->group > 0 && cols % p->group)
        out->group = cols % 32 == 0 ? 32 : 0;
    return lc_quant_params_check(out, cols, &g);
}

/* A tensor that is its low-rank term alone, with RTN-quantized factors
 * (the composition: lc-lowrank | lc-quant). */
static int quantize_factors(const lc_tensor *t, const lc_quant_params *p, lc_tensor *out)
{
    if (lc_tensor_copy(out, t))
        return -1;
    lc_tensor *fs[2] = {out->lr_a, out->lr_b};
    for (int i = 0; i < 2; i++) {
        lc_quant_params fp;
        lc_tensor q = {0};
        float *w = tensor_f32(fs[i]);
        int rc = !w || factor_params(fs[i], p, &fp) || lc_quant_rtn(w, lc_tensor_rows(fs[i]), lc_tensor_cols(fs[i]), &fp, &q);
        free(w);
        if (rc) {
            lc_tensor_release(out);
            return lc_error_prefix("%s: factor %s", t->name, i ? "B" : "A");
        }
        snprintf(q.name, sizeof q.name, "%s", fs[i]->name);
        lc_tensor_release(fs[i]);
        *fs[i] = q;
    }
    return 0;
}

/* Can tensor t (its info) take `bits` with p?  The refusals of the
 * composition rules, before anything is written. */
static int check_composition(const lc_tensor *t, const lc_quant_params *p, const lc_quantize_opts *o)
{
    char enc[96];
    lc_tensor_encoding_str(t, enc, sizeof enc);
    if (lc_tensor_has_lowrank(t)) {
        if (t->enc != LC_ENC_LOWRANK)
            return lc_error("tensor '%s' has a low-rank term over a base (%s): lc-quant quantizes the factors of a "
                            "tensor that is its term alone; quantize before lc-lowrank --compensate, or --keep '%s'",
                            t->name, enc, t->name);
        if (o->method == LC_QM_AWQ)
            return lc_error("tensor '%s' (%s): AWQ scales a dense weight's input channels; use rtn or gptq (the "
                            "factors are quantized with RTN), or --keep '%s'",
                            t->name, enc, t->name);
        if ((lc_tensor_is_quantized(t->lr_a) || lc_tensor_is_quantized(t->lr_b)) && !o->requantize)
            return lc_error("tensor '%s' (%s): its factors are already quantized; pass --requantize to quantize "
                            "them anew, or --keep '%s'",
                            t->name, enc, t->name);
        lc_quant_params fp;
        for (int i = 0; i < 2; i++)
            if (factor_params(i ? t->lr_b : t->lr_a, p, &fp))
                return lc_error_prefix("tensor '%s' (%s), factor %s", t->name, enc, i ? "B" : "A");
        return 0;
    }
    if (lc_tensor_is_quantized(t) && !o->requantize)
        return lc_error("tensor '%s' is already quantized (%s): lc-quant would round its codes again; pass "
                        "--requantize to dequantize it and quantize anew (the lineage says so), or --keep '%s'",
                        t->name, enc, t->name);
    if (t->enc == LC_ENC_SPARSE_NM && p->group > 0 && p->group % t->sp_m)
        return lc_error("tensor '%s' (%s) cannot take %d-bit codes in groups of %d: on %d:%d the group must be a "
                        "multiple of %d",
                        t->name, enc, p->bits, p->group, t->sp_n, t->sp_m, t->sp_m);
    return 0;
}

/* ---- calibration-driven methods ---------------------------------------------- */

typedef struct qctx {
    const lc_quantize_opts *o;
    lc_container *in, *out;
    lc_model *m;
    lc_emitter em;           /* the output, written as soon as each tensor is final */
    int n_lowrank;
    lc_tensor *norms;        /* AWQ: modified norms, one per layer * 2 (attn, ffn), name "" if untouched */
    int n_linears;
    int n_sparse;            /* of them, sparse inputs that kept their structure */
    int damp_retries;
    double max_damp;
    double err_rtn, err_method;  /* AWQ: summed output errors before/after */
} qctx;

static const char *const LINEARS[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

/* Quantize one matrix (already scaled for AWQ) and install it. */
static int install(lc_model *m, const char *name, const float *W, int64_t rows, int64_t cols, const double *H,
                   const lc_quant_params *p, const float *clip, qctx *q)
{
    lc_tensor t = {0};
    int rc;
    /* the weight it replaces is the input's: a sparse one keeps its structure */
    const lc_tensor *cur = lc_model_tensor(m, name);
    prior pr;
    if (!cur || prior_of(cur, &pr))
        return cur ? lc_error_prefix("%s", name) : lc_error("%s: not loaded", name);
    if (q->o->method == LC_QM_GPTQ) {
        lc_gptq_report r;
        lc_gptq_opts go = q->o->gptq;
        go.keep = pr.keep;
        rc = lc_quant_gptq(W, rows, cols, H, p, &go, &t, &r);
        if (!rc) {
            q->damp_retries += r.damp_retries;
            q->max_damp = r.percdamp > q->max_damp ? r.percdamp : q->max_damp;
            if (r.damp_retries)
                lc_log("lc-quant: %s: Cholesky failed, dampening raised to %g\n", name, r.percdamp);
        }
    } else {
        rc = lc_quant_rtn_clip(W, rows, cols, p, clip, &t);
    }
    snprintf(t.name, sizeof t.name, "%s", name);
    if (!rc && keep_structure(&t, &pr))
        rc = -1;
    q->n_sparse += pr.keep != NULL;
    free(pr.keep);
    if (rc) {
        lc_tensor_release(&t);
        return lc_error_prefix("%s", name);
    }
    rc = lc_model_set_tensor(m, &t);
    lc_tensor_release(&t);
    q->n_linears++;
    return rc;
}

/* H' = S^-1 H S^-1 for inputs divided by s. */
static double *scaled_h(const double *H, const float *s, int d)
{
    double *h = lc_malloc((size_t)d * (size_t)d * sizeof *h);
    if (h)
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++)
                h[(size_t)i * d + j] = H[(size_t)i * d + j] / ((double)s[i] * (double)s[j]);
    return h;
}

/* AWQ for one group of linears sharing an input: scale search on the
 * stacked weights, fold 1/s into the producer (`prev`: a norm vector of d
 * floats or the rows of a linear), clip search, quantize, install. */
static int awq_group(lc_model *m, int layer, const char *const *names, int nw, float **Ws, const int64_t *rows,
                     int64_t d, const double *H, const float *absmean, float *prev_norm, float *prev_rows,
                     int64_t prev_cols, const int *bits, qctx *q)
{
    int64_t R = 0;
    for (int i = 0; i < nw; i++)
        R += rows[i];
    float *stack = lc_malloc((size_t)R * (size_t)d * sizeof *stack), *s = lc_malloc((size_t)d * sizeof *s);
    double *Hs = NULL;
    int rc = -1;
    if (!stack || !s)
        goto out;
    for (int i = 0, r = 0; i < nw; r += (int)rows[i], i++)
        memcpy(stack + (size_t)r * d, Ws[i], (size_t)rows[i] * (size_t)d * sizeof *stack);
    lc_quant_params p0 = q->o->p;
    p0.bits = bits[0];
    lc_awq_report rep;
    if (lc_awq_search_scales(stack, R, d, H, absmean, &p0, &q->o->awq, s, &rep))
        goto out;
    q->err_rtn += rep.err_base, q->err_method += rep.err_best;
    /* fold: W' = W diag(s); producer /= s (so the layer's function is unchanged) */
    for (int i = 0; i < nw; i++)
        for (int64_t r = 0; r < rows[i]; r++)
            for (int64_t j = 0; j < d; j++)
                Ws[i][r * d + j] *= s[j];
    if (prev_norm)
        for (int64_t j = 0; j < d; j++)
            prev_norm[j] /= s[j];
    if (prev_rows)
        for (int64_t j = 0; j < d; j++)
            for (int64_t k = 0; k < prev_cols; k++)
                prev_rows[j * prev_cols + k] /= s[j];
    if (!(Hs = scaled_h(H, s, (int)d)))
        goto out;
    for (int i = 0; i < nw; i++) {
        lc_quant_params p = q->o->p;
        p.bits = bits[i];
        int g;
        if (lc_quant_params_check(&p, d, &g))
            goto out;
        float *clip = lc_malloc((size_t)rows[i] * (size_t)(d / g) * sizeof *clip);
        char name[LC_NAME_MAX];
        lc_layer_tensor_name(name, sizeof name, layer, names[i]);
        int r2 = !clip || lc_awq_search_clip(Ws[i], rows[i], d, Hs, &p, &q->o->awq, clip, NULL) ||
                 install(m, name, Ws[i], rows[i], d, Hs, &p, clip, q);
        free(clip);
        if (r2)
            goto out;
    }
    rc = 0;
out:
    free(stack), free(s), free(Hs);
    return rc;
}

static int layer_cb(void *ud, lc_model *m, int layer, const lc_layer_stats *st)
{
    qctx *q = ud;
    const lc_quantize_opts *o = q->o;
    char name[LC_NAME_MAX];
    float *W[7] = {0};
    int64_t rows[7], cols[7];
    int bits[7], rc = -1;
    for (int i = 0; i < 7; i++) {
        lc_layer_tensor_name(name, sizeof name, layer, LINEARS[i]);
        const lc_tensor *t = lc_model_tensor(m, name);
        if (!t)
            return lc_error("%s: not loaded", name);
        bits[i] = bits_for(o, name);
        rows[i] = lc_tensor_rows(t), cols[i] = lc_tensor_cols(t);
        if (!(W[i] = tensor_f32(t)))
            goto out;
    }
    if (o->method == LC_QM_GPTQ) {
        for (int i = 0; i < 7; i++) {
            lc_layer_tensor_name(name, sizeof name, layer, LINEARS[i]);
            if (!bits[i] || lc_tensor_has_lowrank(lc_model_tensor(m, name)))
                continue; /* low-rank factors: RTN when written */
            lc_layer_tensor_name(name, sizeof name, layer, LINEARS[i]);
            lc_quant_params p = params_for(o, name, bits[i]);
            if (install(m, name, W[i], rows[i], cols[i], st->H[lc_calib_point_of(LINEARS[i])], &p, NULL, q))
                goto out;
        }
    } else { /* AWQ: q/k/v after attn_norm, gate/up after ffn_norm, down after up; attn_output (GQA: v and
              * o differ in shape, so no v->o scaling, as llm-awq) gets clipping only */
        lc_tensor *an = &q->norms[2 * layer], *fn = &q->norms[2 * layer + 1];
        int all = bits[0] && bits[1] && bits[2], allf = bits[4] && bits[5];
        if (all && awq_group(m, layer, LINEARS, 3, W, rows, cols[0], st->H[LC_CAP_ATTN_IN],
                             st->absmean[LC_CAP_ATTN_IN], an->data, NULL, 0, bits, q))
            goto out;
        /* down first: its scales fold into up's rows before gate/up are quantized */
        if (bits[6] && bits[5] &&
            awq_group(m, layer, LINEARS + 6, 1, W + 6, rows + 6, cols[6], st->H[LC_CAP_FFN_HID],
                      st->absmean[LC_CAP_FFN_HID], NULL, W[5], cols[5], bits + 6, q))
            goto out;
        if (allf && awq_group(m, layer, LINEARS + 4, 2, W + 4, rows + 4, cols[4], st->H[LC_CAP_FFN_IN],
                              st->absmean[LC_CAP_FFN_IN], fn->data, NULL, 0, bits + 4, q))
            goto out;
        /* whatever a group did not cover: clip + RTN on its own */
        int done[7] = {all, all, all, 0, allf, allf, bits[6] && bits[5]};
        for (int i = 0; i < 7; i++) {
            if (!bits[i] || done[i])
                continue;
            lc_layer_tensor_name(name, sizeof name, layer, LINEARS[i]);
            lc_quant_params p = params_for(o, name, bits[i]);
            int g;
            if (lc_quant_params_check(&p, cols[i], &g))
                goto out;
            float *clip = lc_malloc((size_t)rows[i] * (size_t)(cols[i] / g) * sizeof *clip);
            const double *H = st->H[lc_calib_point_of(LINEARS[i])];
            int r2 = !clip || lc_awq_search_clip(W[i], rows[i], cols[i], H, &p, &o->awq, clip, NULL) ||
                     install(m, name, W[i], rows[i], cols[i], H, &p, clip, q);
            free(clip);
            if (r2)
                goto out;
        }
        if (lc_model_set_tensor(m, an) || lc_model_set_tensor(m, fn))
            goto out;
        /* an unquantized up whose rows absorbed down's scales */
        if (!bits[5] && bits[6]) {
            lc_error("AWQ: layers.%d.ffn_down is quantized but ffn_up is kept: keep both or neither", layer);
            goto out;
        }
    }
    rc = 0;
out:
    for (int i = 0; i < 7; i++)
        free(W[i]);
    return rc;
}

/* ---- driver ---------------------------------------------------------------------- */

static int write_rtn(lc_container *out, const lc_tensor *t, int bits, const lc_quantize_opts *o, int *n_sparse,
                     int *n_lowrank)
{
    if (lc_tensor_has_lowrank(t)) {
        lc_quant_params p = params_for(o, t->name, bits);
        lc_tensor fq;
        int rc = quantize_factors(t, &p, &fq) || lc_container_write_tensor(out, &fq);
        lc_tensor_release(&fq);
        ++*n_lowrank;
        return rc;
    }
    float *w = tensor_f32(t);
    prior pr;
    if (!w || prior_of(t, &pr)) {
        free(w);
        return -1;
    }
    lc_quant_params p = params_for(o, t->name, bits);
    lc_tensor q = {0};
    int rc = lc_quant_rtn(w, lc_tensor_rows(t), lc_tensor_cols(t), &p, &q);
    free(w);
    snprintf(q.name, sizeof q.name, "%s", t->name);
    if (!rc && keep_structure(&q, &pr))
        rc = -1;
    *n_sparse += pr.keep != NULL;
    free(pr.keep);
    if (rc) {
        lc_tensor_release(&q);
        return lc_error_prefix("%s", t->name);
    }
    rc = lc_container_write_tensor(out, &q);
    lc_tensor_release(&q);
    return rc;
}

/* Input tensor i, final: an AWQ norm, a calibrated linear from the model,
 * RTN, or a copy. */
static int output_one(void *ud, int i)
{
    qctx *q = ud;
    const lc_quantize_opts *o = q->o;
    const char *name = lc_container_tensor_name(q->in, i);
    int bits = bits_for(o, name), nl = 0;
    const lc_tensor *mt = q->m ? lc_model_tensor(q->m, name) : NULL;
    if (q->m)
        nl = lc_model_config(q->m)->n_layers;
    for (int k = 0; q->norms && k < 2 * nl; k++)
        if (strcmp(q->norms[k].name, name) == 0)
            return lc_container_write_tensor(q->out, &q->norms[k]);
    if (bits && mt && !lc_tensor_has_lowrank(mt) && strncmp(name, "layers.", 7) == 0 && lc_model_is_linear(name))
        return lc_container_write_tensor(q->out, mt); /* calibrated result (layer_cb installed every one) */
    if (!bits)
        return lc_container_copy_tensor(q->in, q->out, name);
    lc_tensor t; /* RTN; a low-rank tensor's factors (layer_cb leaves them) */
    if (lc_container_read_tensor(q->in, name, &t))
        return -1;
    int rc = write_rtn(q->out, &t, bits, o, &q->n_sparse, &q->n_lowrank);
    lc_tensor_release(&t);
    return rc;
}

int lc_quantize_model(lc_container *in, lc_container *out, const lc_quantize_opts *o, char *note, size_t nn)
{
    lc_config cfg;
    if (lc_container_read_config(in, &cfg) || lc_container_copy_header(in, out))
        return -1;
    /* check every selected tensor's shape against the parameters up front */
    int n = lc_container_n_tensors(in), n_sel = 0, n_requant = 0;
    for (int i = 0; i < n; i++) {
        const char *name = lc_container_tensor_name(in, i);
        int bits = bits_for(o, name);
        lc_tensor t;
        if (!bits)
            continue;
        if (lc_container_tensor_info(in, name, &t))
            return -1;
        lc_quant_params p = params_for(o, name, bits);
        int g;
        if (t.ndim != 2 || lc_quant_params_check(&p, lc_tensor_cols(&t), &g))
            return t.ndim != 2 ? lc_error("%s: not a matrix", name) : lc_error_prefix("%s", name);
        if (check_composition(&t, &p, o))
            return -1;
        n_requant += lc_tensor_is_quantized(&t);
        n_sel++;
    }
    lc_model *m = NULL;
    lc_tokenizer tk = {0};
    qctx q = {.o = o, .in = in, .out = out};
    lc_calib_report cr;
    memset(&cr, 0, sizeof cr);
    int rc = -1;
    if (lc_emitter_init(&q.em, in, cfg.n_layers, output_one, &q))
        goto out;
    if (o->method != LC_QM_RTN) {
        lc_model_opts mo = o->model;
        mo.lazy_layers = 1;
        if (lc_container_read_tokenizer(in, &tk) || lc_model_load(in, &mo, &m))
            goto out;
        q.m = m;
        if (o->method == LC_QM_AWQ) {
            if (!(q.norms = lc_calloc((size_t)(2 * cfg.n_layers), sizeof *q.norms)))
                goto out;
            for (int l = 0; l < cfg.n_layers; l++)
                for (int k = 0; k < 2; k++) {
                    char name[LC_NAME_MAX];
                    lc_layer_tensor_name(name, sizeof name, l, k ? "ffn_norm" : "attn_norm");
                    lc_tensor t;
                    int64_t shape[1] = {cfg.dim};
                    if (lc_container_read_tensor(in, name, &t))
                        goto out;
                    int r2 = lc_tensor_alloc_dense(&q.norms[2 * l + k], name, LC_DT_F32, 1, shape) ||
                             lc_tensor_to_f32(&t, q.norms[2 * l + k].data);
                    lc_tensor_release(&t);
                    if (r2)
                        goto out;
                }
        }
        lc_log("lc-quant: calibrating on '%s' (%d x %d tokens)\n", o->calib.text, o->calib.nsamples, o->calib.seqlen);
        lc_calib_opts co = o->calib;
        co.layer_begin = lc_emitter_layer_begin, co.layer_end = lc_emitter_layer_end, co.hook_ud = &q.em;
        if (lc_calib_run(m, &tk, &co, layer_cb, &q, &cr))
            goto out;
        lc_log("lc-quant: calibration text %s (xxh64 %s): %lld tokens used of %lld, %.1f s\n", cr.text_name,
               cr.text_digest, (long long)cr.tokens_used, (long long)cr.text_tokens, cr.seconds);
    }
    if (lc_emitter_upto(&q.em, n - 1))
        goto out;
    static const char *const mname[] = {"rtn", "gptq", "awq"};
    int k = snprintf(note, nn, "%s %d-bit %s group %d: %d tensors quantized", mname[o->method], o->p.bits,
                     o->p.sym ? "sym" : "asym", o->p.group, n_sel);
    if (o->method != LC_QM_RTN && k > 0 && (size_t)k < nn)
        k += snprintf(note + k, nn - (size_t)k, "; calibration %s xxh64:%s, %d x %d = %lld tokens (seed %llu)",
                      cr.text_name, cr.text_digest, cr.nsamples, cr.seqlen, (long long)cr.tokens_used,
                      (unsigned long long)o->calib.seed);
    if (q.damp_retries && k > 0 && (size_t)k < nn)
        k += snprintf(note + k, nn - (size_t)k, "; Cholesky retries %d, dampening up to %g", q.damp_retries,
                      q.max_damp);
    if (o->method == LC_QM_AWQ && k > 0 && (size_t)k < nn)
        k += snprintf(note + k, nn - (size_t)k, "; AWQ scale search output error %.4g -> %.4g", q.err_rtn, q.err_method);
    if (q.n_sparse && k > 0 && (size_t)k < nn)
        k += snprintf(note + k, nn - (size_t)k, "; %d sparse tensors kept their structure (kept weights quantized)",
                      q.n_sparse);
    if (q.n_lowrank && k > 0 && (size_t)k < nn)
        k += snprintf(note + k, nn - (size_t)k, "; %d low-rank tensors: their factors quantized (RTN)", q.n_lowrank);
    if (n_requant && k > 0 && (size_t)k < nn)
        snprintf(note + k, nn - (size_t)k, "; --requantize: %d already quantized tensors dequantized first", n_requant);
    rc = 0;
out:
    if (q.norms)
        for (int i = 0; i < 2 * cfg.n_layers; i++)
            lc_tensor_release(&q.norms[i]);
    free(q.norms);
    lc_emitter_release(&q.em);
    lc_tokenizer_release(&tk);
    lc_model_free(m);
    return rc;
}
