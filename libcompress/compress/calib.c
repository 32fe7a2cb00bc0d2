/* Sequential layer-wise calibration (see calib.h). */
#include "compress/calib.h"
#include "core/tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/dataset.h"

#include "core/lc_cblas.h"

void lc_calib_opts_default(lc_calib_opts *o)
{
    memset(o, 0, sizeof *o);
    o->text = "calib";
    o->nsamples = 128;
    o->seqlen = 512;
}

int lc_calib_opts_resolve(lc_calib_opts *o)
{
    if (!o->tokens)
        return 0;
    if (o->tokens % o->seqlen)
        return lc_error("--calib-tokens %lld is not a multiple of --seqlen %d", (long long)o->tokens, o->seqlen);
    o->nsamples = (int)(o->tokens / o->seqlen);
    return 0;
}

lc_capture_point lc_calib_point_of(const char *w)
{
    const char *dot = strrchr(w, '.');
    w = dot ? dot + 1 : w;
    if (!strcmp(w, "attn_output"))
        return LC_CAP_ATTN_OUT;
    if (!strcmp(w, "ffn_gate") || !strcmp(w, "ffn_up"))
        return LC_CAP_FFN_IN;
    if (!strcmp(w, "ffn_down"))
        return LC_CAP_FFN_HID;
    return LC_CAP_ATTN_IN;
}

/* Accumulation state for one layer. */
typedef struct acc {
    lc_layer_stats st;
    int whole;          /* run the whole layer in pass 1 (its output is the next input) */
    float *G;           /* [dmax, dmax] per-window x^T x in f32 (ssyrk), added into H in double */
    double *abs_sum[4]; /* running sum |x| per channel */
} acc;

static int capture(void *ud, int layer, lc_capture_point pt, const float *A, int n, int d)
{
    acc *a = ud;
    /* G = A^T A (upper triangle), one window of at most seqlen rows in f32,
     * then added to the double accumulator: f32 error stays at one window */
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, d, n, 1.0f, A, d, 0.0f, a->G, d);
    double *H = a->st.H[pt];
    for (int i = 0; i < d; i++)
        for (int j = i; j < d; j++)
            H[(size_t)i * d + j] += a->G[(size_t)i * d + j];
    double *s = a->abs_sum[pt];
    for (int r = 0; r < n; r++)
        for (int j = 0; j < d; j++)
            s[j] += fabsf(A[(size_t)r * d + j]);
    (void)layer;
    /* pass 1 needs nothing after ffn_down's input: skip ffn_down itself,
     * unless its output is the next layer's input (independent statistics) */
    return pt == LC_CAP_FFN_HID && !a->whole ? 1 : 0;
}

static void acc_free(acc *a)
{
    for (int p = 0; p < 4; p++) {
        free(a->st.H[p]);
        free(a->st.absmean[p]);
        free(a->abs_sum[p]);
    }
    free(a->G);
}

static const char *const LAYER_LINEARS[7] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                              "ffn_gate", "ffn_up", "ffn_down"};

/* Install f32 copies of layer l's non-f32 linears; the originals go to saved[]. */
static int swap_f32(lc_model *m, int l, lc_tensor *saved)
{
    for (int i = 0; i < 7; i++) {
        char name[LC_NAME_MAX];
        snprintf(name, sizeof name, "layers.%d.%s", l, LAYER_LINEARS[i]);
        const lc_tensor *t = lc_model_tensor(m, name);
        lc_tensor_release(&saved[i]);
        if (!t || (t->enc == LC_ENC_DENSE && t->dtype == LC_DT_F32))
            continue;
        lc_tensor f;
        if (lc_tensor_copy(&saved[i], t) || lc_tensor_alloc_dense(&f, name, LC_DT_F32, t->ndim, t->shape))
            return -1;
        int rc = lc_tensor_to_f32(t, f.data) || lc_model_set_tensor(m, &f);
        lc_tensor_release(&f);
        if (rc)
            return -1;
    }
    return 0;
}

static int restore(lc_model *m, lc_tensor *saved)
{
    int rc = 0;
    for (int i = 0; i < 7; i++)
        if (saved[i].ndim) { /* a released slot is zeroed; a low-rank one has no data */
            rc |= lc_model_set_tensor(m, &saved[i]);
            lc_tensor_release(&saved[i]);
        }
    return rc;
}

static int pass2(lc_model *m, lc_state *s, int l, float *X, int ns, int L, int dim)
{
    for (int i = 0; i < ns; i++)
        if (lc_model_layer_forward(m, s, l, X + (size_t)i * L * dim, L, NULL, NULL))
            return -1;
    return 0;
}

int lc_calib_run(lc_model *m, lc_tokenizer *tk, const lc_calib_opts *o, lc_layer_fn fn, void *ud,
                 lc_calib_report *rep)
{
    memset(rep, 0, sizeof *rep);
    const lc_config *c = lc_model_config(m);
    if (o->nsamples < 1 || o->seqlen < 2)
        return lc_error("calibration: need at least 1 window of 2 tokens (got %d x %d)", o->nsamples, o->seqlen);
    if (o->seqlen > c->max_seq_len)
        return lc_error("calibration: windows of %d tokens exceed the model's context (%d)", o->seqlen,
                        c->max_seq_len);
    double t0 = lc_now();
    lc_text txt;
    if (lc_text_load(o->text, &txt))
        return lc_error_prefix("calibration text");
    int32_t *ids = NULL, *tok = NULL;
    float *X = NULL, *Xc = NULL;
    int64_t *win = NULL;
    lc_state *s = NULL;
    acc a;
    memset(&a, 0, sizeof a);
    lc_tensor saved[7];
    memset(saved, 0, sizeof saved);
    size_t nids;
    int rc = -1;
    if (lc_tokenizer_encode(tk, txt.bytes, txt.len, &ids, &nids))
        goto out;
    snprintf(rep->text_name, sizeof rep->text_name, "%s", txt.name);
    snprintf(rep->text_digest, sizeof rep->text_digest, "%s", txt.digest);
    rep->text_tokens = (int64_t)nids;
    /* non-overlapping windows of seqlen - 1 text tokens, each preceded by BOS */
    int64_t per = o->seqlen - 1, nwin = (int64_t)nids / per;
    if (nwin < o->nsamples) {
        lc_error("calibration text '%s' has %zu tokens: %lld windows of %d, %d asked (use fewer --nsamples, a "
                 "shorter --seqlen or a longer text)",
                 txt.name, nids, (long long)nwin, o->seqlen, o->nsamples);
        goto out;
    }
    int ns = o->nsamples, L = o->seqlen, dim = c->dim;
    size_t rows = (size_t)ns * (size_t)L;
    win = lc_malloc((size_t)ns * sizeof *win);
    tok = lc_malloc(rows * sizeof *tok);
    X = lc_malloc(rows * (size_t)dim * sizeof *X);
    Xc = lc_malloc((size_t)L * (size_t)dim * sizeof *Xc);
    if (!win || !tok || !X || !Xc || lc_sample_indices(nwin, ns, o->seed, win))
        goto out;
    for (int i = 0; i < ns; i++) {
        tok[(size_t)i * L] = c->bos_id >= 0 ? c->bos_id : ids[win[i] * per];
        memcpy(tok + (size_t)i * L + 1, ids + win[i] * per, (size_t)per * sizeof *tok);
    }
    rep->tokens_used = (int64_t)rows;
    rep->nsamples = ns, rep->seqlen = L;
    if (lc_model_embed(m, tok, (int)rows, X) || lc_state_new(m, L, &s))
        goto out;
    int dims[4] = {dim, c->n_heads * c->head_dim, dim, c->ffn_dim}, dmax = 0;
    for (int p = 0; p < 4; p++) {
        dmax = dims[p] > dmax ? dims[p] : dmax;
        a.st.d[p] = dims[p];
        if (!(a.st.H[p] = lc_malloc((size_t)dims[p] * (size_t)dims[p] * sizeof(double))) ||
            !(a.st.absmean[p] = lc_malloc((size_t)dims[p] * sizeof(float))) ||
            !(a.abs_sum[p] = lc_malloc((size_t)dims[p] * sizeof(double))))
            goto out;
    }
    if (!(a.G = lc_malloc((size_t)dmax * (size_t)dmax * sizeof(float))))
        goto out;
    for (int l = 0; l < c->n_layers; l++) {
        double tl = lc_now();
        for (int p = 0; p < 4; p++) {
            memset(a.st.H[p], 0, (size_t)dims[p] * (size_t)dims[p] * sizeof(double));
            memset(a.abs_sum[p], 0, (size_t)dims[p] * sizeof(double));
        }
        a.st.layer = l;
        a.st.n = (int64_t)rows;
        /* pass 1: statistics of the (still uncompressed) layer's inputs, with
         * f32 copies of its weights as in pass 2 */
        if ((o->layer_begin && o->layer_begin(o->hook_ud ? o->hook_ud : ud, m, l)) || swap_f32(m, l, saved))
            goto out;
        a.whole = o->independent;
        for (int i = 0; i < ns; i++) {
            float *Xi = X + (size_t)i * L * dim;
            if (!a.whole) /* else X becomes the uncompressed layer's output, in place */
                Xi = memcpy(Xc, Xi, (size_t)L * dim * sizeof *Xc);
            if (lc_model_layer_forward(m, s, l, Xi, L, capture, &a)) {
                restore(m, saved);
                goto out;
            }
        }
        if (restore(m, saved))
            goto out;
        for (int p = 0; p < 4; p++) {
            int d = dims[p];
            double *H = a.st.H[p];
            for (int i = 0; i < d; i++)
                for (int j = 0; j < i; j++)
                    H[(size_t)i * d + j] = H[(size_t)j * d + i];
            for (int j = 0; j < d; j++)
                a.st.absmean[p][j] = (float)(a.abs_sum[p][j] / (double)rows);
        }
        if (fn(ud, m, l, &a.st))
            goto out;
        /* pass 2: the compressed layer produces the next layer's inputs.  Its
         * weights are run as f32 copies decoded once (the prefill would decode
         * every panel again for every window; the values are the same) and
         * the compressed tensors are put back afterwards. */
        if (!o->independent && l + 1 < c->n_layers &&
            (swap_f32(m, l, saved) || (pass2(m, s, l, X, ns, L, dim) | restore(m, saved))))
            goto out;
        if (o->layer_end && o->layer_end(o->hook_ud ? o->hook_ud : ud, m, l))
            goto out;
        if (o->progress)
            lc_log("calibration: layer %d/%d done (%.1f s, %.1f s total)\n", l + 1, c->n_layers, lc_now() - tl,
                   lc_now() - t0);
    }
    rep->seconds = lc_now() - t0;
    rc = 0;
out:
    for (int i = 0; i < 7; i++)
        lc_tensor_release(&saved[i]);
    acc_free(&a);
    lc_state_free(s);
    free(ids), free(tok), free(X), free(Xc), free(win);
    lc_text_release(&txt);
    return rc;
}

/* ---- the emitter ---------------------------------------------------------- */

int lc_emitter_init(lc_emitter *e, lc_container *in, int n_layers, int (*fn)(void *ud, int i), void *ud)
{
    memset(e, 0, sizeof *e);
    e->in = in, e->n = lc_container_n_tensors(in), e->n_layers = n_layers, e->fn = fn, e->ud = ud;
    if (!(e->layer_of = lc_calloc((size_t)e->n + 1, sizeof *e->layer_of)) ||
        !(e->last_of = lc_calloc((size_t)n_layers + 1, sizeof *e->last_of)))
        return -1;
    for (int l = 0; l < n_layers; l++)
        e->last_of[l] = -1;
    int seen = 0;
    for (int i = 0; i < e->n; i++) {
        int l;
        if (sscanf(lc_container_tensor_name(in, i), "layers.%d.", &l) == 1 && l >= 0 && l < n_layers)
            e->layer_of[i] = l, e->last_of[l] = i, seen = 1;
        else
            e->layer_of[i] = seen ? n_layers : -1;
    }
    return 0;
}

int lc_emitter_upto(lc_emitter *e, int i)
{
    while (e->next < e->n && e->next <= i)
        if (e->fn(e->ud, e->next++))
            return -1;
    return 0;
}

int lc_emitter_layer(lc_emitter *e, int l)
{
    while (e->next < e->n && e->layer_of[e->next] <= l)
        if (e->fn(e->ud, e->next++))
            return -1;
    return 0;
}

int lc_emitter_layer_out(const lc_emitter *e, int l)
{
    return l >= 0 && l < e->n_layers && e->next > e->last_of[l];
}

int lc_emitter_layer_begin(void *emitter, lc_model *m, int l)
{
    lc_emitter *e = emitter;
    return lc_model_load_layer(m, e->in, l);
}

int lc_emitter_layer_end(void *emitter, lc_model *m, int l)
{
    lc_emitter *e = emitter;
    if (lc_emitter_layer(e, l))
        return -1;
    if (lc_emitter_layer_out(e, l))
        lc_model_drop_layer(m, l);
    return 0;
}

void lc_emitter_release(lc_emitter *e)
{
    free(e->layer_of);
    free(e->last_of);
    memset(e, 0, sizeof *e);
}
